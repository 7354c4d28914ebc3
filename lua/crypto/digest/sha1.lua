-- SHA-1 (FIPS 180-4) of a Stream: sha1(stream).asHex().

local Common = require(".crypto.digest.common")

local unpack, pack = string.unpack, string.pack
local M32 = 0xFFFFFFFF

local function digest(msg)
  msg = Common.pad(msg, 64, ">I8")
  local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
  local w = {}
  for pos = 1, #msg, 64 do
    for i = 0, 15 do w[i] = unpack(">I4", msg, pos + 4 * i) end
    for i = 16, 79 do
      local x = w[i - 3] ~ w[i - 8] ~ w[i - 14] ~ w[i - 16]
      w[i] = ((x << 1) | (x >> 31)) & M32
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then f, k = (b & c) | (~b & d), 0x5A827999
      elseif i < 40 then f, k = b ~ c ~ d, 0x6ED9EBA1
      elseif i < 60 then f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
      else f, k = b ~ c ~ d, 0xCA62C1D6 end
      local t = ((((a << 5) | (a >> 27)) & M32) + (f & M32) + e + k + w[i]) & M32
      e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & M32, a, t
    end
    h0 = (h0 + a) & M32
    h1 = (h1 + b) & M32
    h2 = (h2 + c) & M32
    h3 = (h3 + d) & M32
    h4 = (h4 + e) & M32
  end
  return pack(">I4I4I4I4I4", h0, h1, h2, h3, h4)
end

-- (a stream that cannot be called fails from the position it always has)
return Common.streamed(digest, ".crypto.digest.sha1", 41)
