--
-- One-line text of a Lua value for test reports: strings quoted, tables as sorted constructors
-- (nested up to 3 levels, long ones cut), numbers as Lua writes them.
--
local type, pairs, tostring, format = type, pairs, tostring, string.format
local concat, sort = table.concat, table.sort

local MAX = 240

local function quote(s)
  local q = format("%q", s):gsub("\\\n", "\\n"):gsub("\r", "\\r")
  return q
end

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local fmt

local function fmt_table(t, depth, seen)
  if seen[t] then return "<cycle>" end
  local mt = getmetatable(t)
  if mt and mt.__tostring then
    local ok, s = pcall(tostring, t)
    if ok then return s end
  end
  if depth > 3 then return "{...}" end
  seen[t] = true
  local keys, n = {}, 0
  for k in pairs(t) do
    n = n + 1
    keys[n] = k
  end
  sort(keys, key_less)
  local parts = {}
  local len = #t
  local seq = len == n
  for i, k in ipairs(keys) do
    local v = t[k]
    if seq then
      parts[i] = fmt(v, depth + 1, seen)
    elseif type(k) == "string" and k:match("^[%a_][%w_]*$") then
      parts[i] = k .. " = " .. fmt(v, depth + 1, seen)
    else
      parts[i] = "[" .. fmt(k, depth + 1, seen) .. "] = " .. fmt(v, depth + 1, seen)
    end
    if #parts > 40 then
      parts[#parts + 1] = "..."
      break
    end
  end
  seen[t] = nil
  if #parts == 0 then return "{}" end
  return "{ " .. concat(parts, ", ") .. " }"
end

fmt = function(v, depth, seen)
  local t = type(v)
  if t == "string" then
    return quote(v)
  elseif t == "table" then
    return fmt_table(v, depth or 0, seen or {})
  elseif t == "number" then
    if math.type(v) == "float" and v == math.floor(v) and v > -1e15 and v < 1e15 then
      return format("%.1f", v)
    end
    return tostring(v)
  end
  return tostring(v)
end

return function(v)
  local s = fmt(v, 0, {})
  if #s > MAX then s = s:sub(1, MAX - 3) .. "..." end
  return s
end
