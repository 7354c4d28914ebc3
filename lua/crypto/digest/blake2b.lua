-- BLAKE2b (RFC 7693) of a string, with optional digest length (1..64 bytes,
-- default 64) and key (up to 64 bytes): blake2b(s, outlen, key).asHex().

local Result = require(".crypto.util.result")

local unpack, pack, rep = string.unpack, string.pack, string.rep

local IV = {
  0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
  0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
}

local SIGMA = {
  { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
  { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
  { 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
  { 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
  { 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
  { 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
  { 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
  { 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
  { 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
  { 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
}

local function rotr(x, n)
  return (x >> n) | (x << (64 - n))
end

local v, m = {}, {}

local function G(a, b, c, d, x, y)
  local va, vb, vc, vd = v[a], v[b], v[c], v[d]
  va = va + vb + x
  vd = rotr(vd ~ va, 32)
  vc = vc + vd
  vb = rotr(vb ~ vc, 24)
  va = va + vb + y
  vd = rotr(vd ~ va, 16)
  vc = vc + vd
  vb = rotr(vb ~ vc, 63)
  v[a], v[b], v[c], v[d] = va, vb, vc, vd
end

local function compress(h, block, pos, count, last)
  for i = 0, 15 do m[i] = unpack("<i8", block, pos + 8 * i) end
  for i = 0, 7 do
    v[i] = h[i + 1]
    v[i + 8] = IV[i + 1]
  end
  v[12] = v[12] ~ count
  if last then v[14] = ~v[14] end
  for r = 0, 11 do
    local s = SIGMA[r % 10 + 1]
    G(0, 4, 8, 12, m[s[1]], m[s[2]])
    G(1, 5, 9, 13, m[s[3]], m[s[4]])
    G(2, 6, 10, 14, m[s[5]], m[s[6]])
    G(3, 7, 11, 15, m[s[7]], m[s[8]])
    G(0, 5, 10, 15, m[s[9]], m[s[10]])
    G(1, 6, 11, 12, m[s[11]], m[s[12]])
    G(2, 7, 8, 13, m[s[13]], m[s[14]])
    G(3, 4, 9, 14, m[s[15]], m[s[16]])
  end
  for i = 0, 7 do
    h[i + 1] = h[i + 1] ~ v[i] ~ v[i + 8]
  end
end

local function blake2b(data, outlen, key)
  if type(data) ~= "string" then
    error("blake2b expects a string, got " .. type(data), 2)
  end
  outlen = outlen or 64
  key = key or ""
  if math.type(outlen) ~= "integer" or outlen < 1 or outlen > 64 then
    error("blake2b: outlen must be an integer from 1 to 64", 2)
  end
  if type(key) ~= "string" or #key > 64 then
    error("blake2b: key must be a string of at most 64 bytes", 2)
  end
  local h = {}
  for i = 1, 8 do h[i] = IV[i] end
  h[1] = h[1] ~ 0x01010000 ~ (#key << 8) ~ outlen
  if #key > 0 then
    data = key .. rep("\0", 128 - #key) .. data
  end
  local n = #data
  local count = 0
  local pos = 1
  while n - pos + 1 > 128 do
    count = count + 128
    compress(h, data, pos, count, false)
    pos = pos + 128
  end
  local tail = data:sub(pos)
  count = count + #tail
  compress(h, tail .. rep("\0", 128 - #tail), 1, count, true)
  local raw = pack("<i8i8i8i8i8i8i8i8", table.unpack(h)):sub(1, outlen)
  return Result(raw)
end

return blake2b
