-- Hex text <-> byte strings.

local format, concat = string.format, table.concat

local Hex = {}

-- Lower-case hex of s. With ln, a newline follows every ln bytes; sep goes
-- between the other bytes.
function Hex.stringToHex(s, ln, sep)
  if #s == 0 then return "" end
  if not ln then
    return (s:gsub(".", function(c) return format("%02x", c:byte()) end))
  end
  sep = sep or ""
  local out = {}
  for i = 1, #s - 1 do
    out[i] = format("%02x", s:byte(i)) .. ((i % ln == 0) and "\n" or sep)
  end
  out[#s] = format("%02x", s:byte(#s))
  return concat(out)
end

-- Upper-case hex of s.
function Hex.ascii2hex(s)
  return (s:gsub(".", function(c) return format("%02X", c:byte()) end))
end

-- Bytes of a hex string (either case); whitespace is ignored.
function Hex.hexToString(h)
  if type(h) ~= "string" then error("hexToString expects a string, got " .. type(h), 2) end
  h = h:gsub("%s", "")
  if #h % 2 == 1 or h:find("[^%x]") then
    error("invalid hex string", 2)
  end
  return (h:gsub("%x%x", function(pair) return string.char(tonumber(pair, 16)) end))
end

return Hex
