-- SHA3-256/512 (FIPS 202) and the original Keccak-256/512 (Ethereum's keccak256),
-- on plain strings: sha3_256(s).asHex(). Lanes are 64-bit Lua integers.

local Result = require(".crypto.util.result")

local unpack, pack, rep, char = string.unpack, string.pack, string.rep, string.char

-- Round constants from the degree-8 LFSR of the Keccak reference.
local RC = {}
do
  local function rcbit(t)
    t = t % 255
    if t == 0 then return 1 end
    local r = 1
    for _ = 1, t do
      r = r << 1
      if r & 0x100 ~= 0 then r = r ~ 0x171 end
    end
    return r & 1
  end
  for i = 0, 23 do
    local v = 0
    for j = 0, 6 do
      if rcbit(j + 7 * i) == 1 then v = v | (1 << ((1 << j) - 1)) end
    end
    RC[i + 1] = v
  end
end

-- Rotation offsets and pi destinations, per lane index x + 5y.
local ROT, DEST = {}, {}
do
  ROT[0] = 0
  local x, y = 1, 0
  for t = 0, 23 do
    ROT[x + 5 * y] = ((t + 1) * (t + 2) // 2) % 64
    x, y = y, (2 * x + 3 * y) % 5
  end
  for x0 = 0, 4 do
    for y0 = 0, 4 do
      DEST[x0 + 5 * y0] = y0 + 5 * ((2 * x0 + 3 * y0) % 5)
    end
  end
end

local function rotl(v, n)
  if n == 0 then return v end
  return (v << n) | (v >> (64 - n))
end

local function keccakf(A)
  local C, B = {}, {}
  for round = 1, 24 do
    for x = 0, 4 do
      C[x] = A[x] ~ A[x + 5] ~ A[x + 10] ~ A[x + 15] ~ A[x + 20]
    end
    for x = 0, 4 do
      local d = C[(x + 4) % 5] ~ rotl(C[(x + 1) % 5], 1)
      for y = 0, 20, 5 do A[x + y] = A[x + y] ~ d end
    end
    for i = 0, 24 do
      B[DEST[i]] = rotl(A[i], ROT[i])
    end
    for y = 0, 20, 5 do
      local b0, b1, b2, b3, b4 = B[y], B[y + 1], B[y + 2], B[y + 3], B[y + 4]
      A[y] = b0 ~ (~b1 & b2)
      A[y + 1] = b1 ~ (~b2 & b3)
      A[y + 2] = b2 ~ (~b3 & b4)
      A[y + 3] = b3 ~ (~b4 & b0)
      A[y + 4] = b4 ~ (~b0 & b1)
    end
    A[0] = A[0] ~ RC[round]
  end
end

local function hash(msg, outBytes, domain)
  if type(msg) ~= "string" then
    error("expected a string to hash, got " .. type(msg), 3)
  end
  local rate = 200 - 2 * outBytes
  local padLen = rate - #msg % rate
  if padLen == 1 then
    msg = msg .. char(domain | 0x80)
  else
    msg = msg .. char(domain) .. rep("\0", padLen - 2) .. "\128"
  end
  local A = {}
  for i = 0, 24 do A[i] = 0 end
  local lanes = rate // 8
  for pos = 1, #msg, rate do
    for i = 0, lanes - 1 do
      A[i] = A[i] ~ unpack("<i8", msg, pos + 8 * i)
    end
    keccakf(A)
  end
  local out = {}
  for i = 0, outBytes // 8 - 1 do out[i + 1] = pack("<i8", A[i]) end
  return Result(table.concat(out))
end

return {
  sha3_256 = function(s) return hash(s, 32, 0x06) end,
  sha3_512 = function(s) return hash(s, 64, 0x06) end,
  keccak256 = function(s) return hash(s, 32, 0x01) end,
  keccak512 = function(s) return hash(s, 64, 0x01) end,
}
