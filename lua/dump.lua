--
-- .dump: Dump(value, indent, padding, filter) writes a value as Lua literal
-- text with sorted keys, so the output is stable and comparable.
--
local keywords = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

local function keyText(k)
  if type(k) == "string" then
    if k:match("^[%a_][%w_]*$") and not keywords[k] then
      return k
    end
    return "[" .. string.format("%q", k) .. "]"
  end
  if type(k) == "number" or type(k) == "boolean" then
    return "[" .. tostring(k) .. "]"
  end
  return "[" .. string.format("%q", tostring(k)) .. "]"
end

local function keyLess(a, b)
  local na, nb = type(a) == "number", type(b) == "number"
  if na and nb then return a < b end
  if na ~= nb then return na end
  return keyText(a) < keyText(b)
end

local function valueText(v, indent, padding, filter, seen)
  local t = type(v)
  if t == "string" then
    return (string.format("%q", v))
  elseif t == "number" or t == "boolean" or t == "nil" then
    return tostring(v)
  elseif t ~= "table" then
    return (string.format("%q", tostring(v)))
  end
  if seen[v] then
    return '"<circular reference>"'
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then return "{}" end
  table.sort(keys, keyLess)
  seen[v] = true
  local items = {}
  local inner = padding + indent
  for _, k in ipairs(keys) do
    local item = v[k]
    if not filter or filter(item, k, v) ~= false then
      items[#items + 1] = keyText(k) .. " = " .. valueText(item, indent, inner, filter, seen)
    end
  end
  seen[v] = nil
  if #items == 0 then return "{}" end
  if indent == 0 then
    return "{ " .. table.concat(items, ", ") .. " }"
  end
  local pad = string.rep(" ", inner)
  return "{\n" .. pad .. table.concat(items, ",\n" .. pad) .. "\n" .. string.rep(" ", padding) .. "}"
end

--- Lua literal text of `value` (tables with sorted keys; 4-space indent).
return function(value, indent, padding, filter)
  indent = indent or 4
  padding = padding or 0
  if type(value) ~= "table" then
    return (string.format("%q", tostring(value)))
  end
  return valueText(value, indent, padding, filter, {})
end
