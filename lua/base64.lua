-- Base64 encoding and decoding (RFC 4648 alphabet by default), with custom
-- alphabets through makeencoder / makedecoder, as aos's `.base64` offers.

local char, byte, concat = string.char, string.byte, table.concat
local type, error = type, error

local base64 = {}

-- An encoder maps 0..63 to alphabet bytes and 64 to the padding byte.
function base64.makeencoder(s62, s63, spad)
  local encoder = {}
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  for i = 1, 62 do encoder[i - 1] = byte(alphabet, i) end
  encoder[62] = byte(s62 or "+")
  encoder[63] = byte(s63 or "/")
  encoder[64] = byte(spad or "=")
  return encoder
end

-- A decoder maps alphabet bytes back to 0..63 (the padding byte maps to 64).
function base64.makedecoder(s62, s63, spad)
  local decoder = {}
  for code, b in pairs(base64.makeencoder(s62, s63, spad)) do
    decoder[b] = code
  end
  return decoder
end

local DEFAULT_ENCODER = base64.makeencoder()
local DEFAULT_DECODER = base64.makedecoder()

function base64.encode(str, encoder)
  if type(str) ~= "string" then
    error("base64.encode expects a string, got " .. type(str), 2)
  end
  encoder = encoder or DEFAULT_ENCODER
  local out, n = {}, 0
  local len = #str
  local full = len - len % 3
  for i = 1, full, 3 do
    local a, b, c = byte(str, i, i + 2)
    local v = a * 0x10000 + b * 0x100 + c
    n = n + 1
    out[n] = char(encoder[v >> 18], encoder[(v >> 12) & 63], encoder[(v >> 6) & 63], encoder[v & 63])
  end
  local rest = len - full
  if rest == 2 then
    local a, b = byte(str, full + 1, full + 2)
    local v = a * 0x10000 + b * 0x100
    n = n + 1
    out[n] = char(encoder[v >> 18], encoder[(v >> 12) & 63], encoder[(v >> 6) & 63], encoder[64])
  elseif rest == 1 then
    local v = byte(str, full + 1) * 0x10000
    n = n + 1
    out[n] = char(encoder[v >> 18], encoder[(v >> 12) & 63], encoder[64], encoder[64])
  end
  return concat(out)
end

-- Characters outside the alphabet (line breaks, spaces) are skipped; decoding
-- stops at the first padding character.
function base64.decode(b64, decoder)
  if type(b64) ~= "string" then
    error("base64.decode expects a string, got " .. type(b64), 2)
  end
  decoder = decoder or DEFAULT_DECODER
  local out, n = {}, 0
  local acc, bits = 0, 0
  for i = 1, #b64 do
    local v = decoder[byte(b64, i)]
    if v == 64 then break end
    if v then
      acc = (acc << 6) | v
      bits = bits + 6
      if bits >= 8 then
        bits = bits - 8
        n = n + 1
        out[n] = (acc >> bits) & 0xFF
        acc = acc & ((1 << bits) - 1)
      end
    end
  end
  local parts = {}
  for i = 1, n, 4096 do
    parts[#parts + 1] = char(table.unpack(out, i, math.min(i + 4095, n)))
  end
  return concat(parts)
end

return base64
