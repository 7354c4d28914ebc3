-- SHA-256 (FIPS 180-4) of a Stream: sha2_256(stream).asHex().

local Common = require(".crypto.digest.common")

local unpack, pack = string.unpack, string.pack
local M32 = 0xFFFFFFFF

-- first 32 bits of the fractional parts of the cube roots of the first 64 primes
local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function digest(msg)
  msg = Common.pad(msg, 64, ">I8")
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  local w = {}
  for pos = 1, #msg, 64 do
    for i = 1, 16 do w[i] = unpack(">I4", msg, pos + 4 * i - 4) end
    for i = 17, 64 do
      local x, y = w[i - 15], w[i - 2]
      local s0 = ((x >> 7) | (x << 25)) ~ ((x >> 18) | (x << 14)) ~ (x >> 3)
      local s1 = ((y >> 17) | (y << 15)) ~ ((y >> 19) | (y << 13)) ~ (y >> 10)
      w[i] = (w[i - 16] + (s0 & M32) + w[i - 7] + (s1 & M32)) & M32
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 1, 64 do
      local S1 = (((e >> 6) | (e << 26)) ~ ((e >> 11) | (e << 21)) ~ ((e >> 25) | (e << 7))) & M32
      local ch = (e & f) ~ (~e & g)
      local t1 = h + S1 + (ch & M32) + K[i] + w[i]
      local S0 = (((a >> 2) | (a << 30)) ~ ((a >> 13) | (a << 19)) ~ ((a >> 22) | (a << 10))) & M32
      local maj = (a & b) ~ (a & c) ~ (b & c)
      h, g, f = g, f, e
      e = (d + t1) & M32
      d, c, b = c, b, a
      a = (t1 + S0 + maj) & M32
    end
    h0 = (h0 + a) & M32
    h1 = (h1 + b) & M32
    h2 = (h2 + c) & M32
    h3 = (h3 + d) & M32
    h4 = (h4 + e) & M32
    h5 = (h5 + f) & M32
    h6 = (h6 + g) & M32
    h7 = (h7 + h) & M32
  end
  return pack(">I4I4I4I4I4I4I4I4", h0, h1, h2, h3, h4, h5, h6, h7)
end

-- (a stream that cannot be called fails from the position it always has)
return Common.streamed(digest, ".crypto.digest.sha2_256", 61)
