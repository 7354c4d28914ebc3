--
-- .assignment: which assignments (messages whose Target is another process)
-- this process accepts (module version 0.1.0). Nothing is accepted by default.
--
local Assignment = { _version = "0.1.0" }

local utils = require(".utils")

local function findIndexByName(list, name)
  for i, o in ipairs(list) do
    if o.name == name then return i end
  end
  return nil
end

--- Install addAssignable / removeAssignable / isAssignment / isAssignable on `ao`.
function Assignment.init(ao)
  ao.assignables = ao.assignables or {}

  ao.addAssignable = ao.addAssignable or function(...)
    local name, matchSpec
    if select("#", ...) == 1 then
      matchSpec = ...
    else
      name, matchSpec = ...
      assert(type(name) == "string", "MatchSpec name MUST be a string")
    end
    if name then
      local idx = findIndexByName(ao.assignables, name)
      if idx then
        ao.assignables[idx].pattern = matchSpec
        return
      end
    end
    table.insert(ao.assignables, { pattern = matchSpec, name = name })
  end

  ao.removeAssignable = ao.removeAssignable or function(name)
    local idx
    if type(name) == "string" then
      idx = findIndexByName(ao.assignables, name)
    else
      assert(type(name) == "number", "index MUST be a number")
      idx = name
    end
    if idx == nil or idx <= 0 or idx > #ao.assignables then return end
    table.remove(ao.assignables, idx)
  end

  ao.isAssignment = ao.isAssignment or function(msg)
    return msg.Target ~= ao.id
  end

  ao.isAssignable = ao.isAssignable or function(msg)
    for _, a in pairs(ao.assignables) do
      if utils.matchesSpec(msg, a.pattern) then return true end
    end
    return false
  end
end

return Assignment
