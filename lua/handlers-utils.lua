--
-- .handlers-utils: ready-made patterns and handlers (module version 0.0.2).
--
local _utils = { _version = "0.0.2" }

local utils = require(".utils")

--- Pattern: the tag `name` equals `value`.
function _utils.hasMatchingTag(name, value)
  assert(type(name) == "string" and type(value) == "string", "invalid arguments: (name : string, value : string)")
  return function(msg)
    return msg.Tags[name] == value
  end
end

--- Pattern: the tag `name` equals one of `values`.
function _utils.hasMatchingTagOf(name, values)
  assert(type(name) == "string" and type(values) == "table", "invalid arguments: (name : string, values : string[])")
  return function(msg)
    for _, value in ipairs(values) do
      local r = _utils.hasMatchingTag(name, value)(msg)
      if r ~= 0 and r ~= false and r ~= "skip" then
        return r
      end
    end
    return 0
  end
end

--- Pattern: the message Data equals `value`.
function _utils.hasMatchingData(value)
  assert(type(value) == "string", "invalid arguments: (value : string)")
  return function(msg)
    return msg.Data == value
  end
end

--- Handler: reply to the sender with `input` (a Data string or a message table).
function _utils.reply(input)
  assert(type(input) == "table" or type(input) == "string", "invalid arguments: (input : table or string)")
  return function(msg)
    if type(input) == "string" then
      msg.reply({ Data = input })
      return
    end
    msg.reply(input)
  end
end

--- Pattern wrapper: whatever `pattern` accepts continues to later handlers.
function _utils.continue(pattern)
  return function(msg)
    local r = utils.matchesSpec(msg, pattern)
    if not r or r == 0 or r == "skip" then
      return r
    end
    return 1
  end
end

return _utils
