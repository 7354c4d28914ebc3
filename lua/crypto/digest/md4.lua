-- MD4 (RFC 1320) of a Stream: md4(stream).asHex().

local Common = require(".crypto.digest.common")

local unpack, pack = string.unpack, string.pack
local M32 = 0xFFFFFFFF

local function rotl(x, s)
  return ((x << s) | (x >> (32 - s))) & M32
end

local R2_ORDER = { 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15 }
local R3_ORDER = { 0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15 }
local S1 = { 3, 7, 11, 19 }
local S2 = { 3, 5, 9, 13 }
local S3 = { 3, 9, 11, 15 }

local function digest(msg)
  msg = Common.pad(msg, 64, "<I8")
  local h0, h1, h2, h3 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
  local X = {}
  for pos = 1, #msg, 64 do
    for i = 0, 15 do X[i] = unpack("<I4", msg, pos + 4 * i) end
    local a, b, c, d = h0, h1, h2, h3
    for i = 0, 15 do
      local f = (b & c) | (~b & d)
      local t = rotl((a + (f & M32) + X[i]) & M32, S1[i % 4 + 1])
      a, b, c, d = d, t, b, c
    end
    for i = 0, 15 do
      local g = (b & c) | (b & d) | (c & d)
      local t = rotl((a + g + X[R2_ORDER[i + 1]] + 0x5A827999) & M32, S2[i % 4 + 1])
      a, b, c, d = d, t, b, c
    end
    for i = 0, 15 do
      local h = b ~ c ~ d
      local t = rotl((a + h + X[R3_ORDER[i + 1]] + 0x6ED9EBA1) & M32, S3[i % 4 + 1])
      a, b, c, d = d, t, b, c
    end
    h0 = (h0 + a) & M32
    h1 = (h1 + b) & M32
    h2 = (h2 + c) & M32
    h3 = (h3 + d) & M32
  end
  return pack("<I4I4I4I4", h0, h1, h2, h3)
end

-- (a stream that cannot be called fails from the position it always has)
return Common.streamed(digest, ".crypto.digest.md4", 52)
