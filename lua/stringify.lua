--
-- .stringify: the coloured, human-oriented table format used by print and by
-- Eval results (module version 0.0.1).
--
local stringify = { _version = "0.0.1" }

stringify.colors = {
  red = "\27[31m",
  green = "\27[32m",
  blue = "\27[34m",
  reset = "\27[0m",
}

local colors = stringify.colors

--- Whether t is 1..n in pairs order with only number and string values.
function stringify.isSimpleArray(tbl)
  local arrayIndex = 1
  for k, v in pairs(tbl) do
    if k ~= arrayIndex or (type(v) ~= "number" and type(v) ~= "string") then
      return false
    end
    arrayIndex = arrayIndex + 1
  end
  return true
end

-- pairs() order of string keys depends on the Lua state's hash seed; keep the
-- order of the other keys and put the string keys into sorted order in the
-- slots they occupy, so that the same table always prints the same way.
local function orderedKeys(tbl)
  local keys, n = {}, 0
  local strs, ns = {}, 0
  for k in pairs(tbl) do
    n = n + 1
    keys[n] = k
    if type(k) == "string" then
      ns = ns + 1
      strs[ns] = k
    end
  end
  if ns > 1 then
    table.sort(strs)
    local j = 0
    for i = 1, n do
      if type(keys[i]) == "string" then
        j = j + 1
        keys[i] = strs[j]
      end
    end
  end
  return keys, n
end

local function scalar(v)
  if type(v) == "string" then
    return colors.green .. '"' .. v .. '"' .. colors.reset
  end
  return colors.blue .. tostring(v) .. colors.reset
end

--- Format a table for display; `indent` is the current indentation.
function stringify.format(tbl, indent, visited)
  indent = indent or 0
  local toIndent = string.rep(" ", indent)
  local toIndentChild = string.rep(" ", indent + 2)

  if stringify.isSimpleArray(tbl) then
    local items = {}
    for _, v in ipairs(tbl) do
      items[#items + 1] = scalar(v)
    end
    return "{ " .. table.concat(items, ", ") .. " }"
  end

  visited = visited or {}
  visited[tbl] = true
  local result = {}
  local isArray = true
  local arrayIndex = 1
  local keys, n = orderedKeys(tbl)
  for i = 1, n do
    local k = keys[i]
    local v = tbl[k]
    if isArray then
      if k == arrayIndex then
        arrayIndex = arrayIndex + 1
        if type(v) == "table" then
          v = stringify.format(v, indent + 2)
        else
          v = scalar(v)
        end
        result[#result + 1] = toIndentChild .. v
      else
        isArray = false
        result = {}
      end
    end
    if not isArray then
      if type(v) == "table" then
        if visited[v] then
          v = "<circular reference>"
        else
          v = stringify.format(v, indent + 2, visited)
        end
      else
        v = scalar(v)
      end
      result[#result + 1] = toIndentChild .. colors.red .. k .. colors.reset .. " = " .. v
    end
  end
  if isArray then
    return "{\n" .. table.concat(result, ",\n") .. "\n" .. toIndent .. " }"
  end
  return "{\n " .. table.concat(result, ",\n ") .. "\n" .. toIndent .. "}"
end

return stringify
