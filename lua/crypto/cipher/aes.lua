-- AES (FIPS 197) with 128/192/256-bit keys in ECB, CBC, CFB, OFB and CTR
-- modes, zero padding, as aos's crypto.cipher.aes offers it:
--
--   local e = aes.encrypt(data, key, iv, mode, keyLength)   -- mode "CBC", 128 bits by default
--   aes.decrypt(e.asHex(), key, iv, mode, keyLength).asString()
--
-- The IV defaults to 16 zero bytes. Input is padded with zero bytes to a whole
-- number of blocks (so decrypting gives the data followed by those zeros).
-- Results are {asBytes, asHex (upper case), asString}.

local Result = require(".crypto.util.result")
local Hex = require(".crypto.util.hex")

local byte, char, rep, concat = string.byte, string.char, string.rep, table.concat

-- S-box and its inverse, built from the GF(2^8) inverse and the affine map.
local SBOX, INV = {}, {}
local MUL2, MUL3, MUL9, MUL11, MUL13, MUL14 = {}, {}, {}, {}, {}, {}
do
  local function xtime(a)
    a = a << 1
    if a & 0x100 ~= 0 then a = a ~ 0x11B end
    return a
  end
  local function mul(a, b)
    local r = 0
    while b > 0 do
      if b & 1 ~= 0 then r = r ~ a end
      a = xtime(a)
      b = b >> 1
    end
    return r
  end
  -- inverses through the powers of the generator 3
  local exp, log = {}, {}
  local g = 1
  for i = 0, 254 do
    exp[i], log[g] = g, i
    g = g ~ xtime(g)
  end
  local inverse = { [0] = 0 }
  for a = 1, 255 do inverse[a] = exp[(255 - log[a]) % 255] end
  for a = 0, 255 do
    local x = inverse[a]
    local s = x
    for _ = 1, 4 do
      x = ((x << 1) | (x >> 7)) & 0xFF
      s = s ~ x
    end
    s = s ~ 0x63
    SBOX[a] = s
    INV[s] = a
    MUL2[a], MUL3[a] = mul(a, 2), mul(a, 3)
    MUL9[a], MUL11[a], MUL13[a], MUL14[a] = mul(a, 9), mul(a, 11), mul(a, 13), mul(a, 14)
  end
end

-- Round keys as a flat 0-based byte array of 16 * (rounds + 1) bytes.
local function expandKey(key)
  local nk = #key // 4
  local rounds = nk + 6
  local w = {}
  for i = 0, #key - 1 do w[i] = byte(key, i + 1) end
  local rcon = 1
  for i = nk, 4 * (rounds + 1) - 1 do
    local t0, t1, t2, t3 = w[4 * i - 4], w[4 * i - 3], w[4 * i - 2], w[4 * i - 1]
    if i % nk == 0 then
      t0, t1, t2, t3 = SBOX[t1] ~ rcon, SBOX[t2], SBOX[t3], SBOX[t0]
      rcon = rcon << 1
      if rcon & 0x100 ~= 0 then rcon = rcon ~ 0x11B end
    elseif nk > 6 and i % nk == 4 then
      t0, t1, t2, t3 = SBOX[t0], SBOX[t1], SBOX[t2], SBOX[t3]
    end
    local b = 4 * (i - nk)
    w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3] = w[b] ~ t0, w[b + 1] ~ t1, w[b + 2] ~ t2, w[b + 3] ~ t3
  end
  return w, rounds
end

-- The state is a 0-based array of 16 bytes in column order.
local function encryptBlock(s, w, rounds)
  for i = 0, 15 do s[i] = s[i] ~ w[i] end
  local t = {}
  for r = 1, rounds do
    -- SubBytes + ShiftRows
    for c = 0, 3 do
      for row = 0, 3 do
        t[4 * c + row] = SBOX[s[4 * ((c + row) % 4) + row]]
      end
    end
    if r < rounds then
      for c = 0, 3 do
        local a0, a1, a2, a3 = t[4 * c], t[4 * c + 1], t[4 * c + 2], t[4 * c + 3]
        s[4 * c] = MUL2[a0] ~ MUL3[a1] ~ a2 ~ a3
        s[4 * c + 1] = a0 ~ MUL2[a1] ~ MUL3[a2] ~ a3
        s[4 * c + 2] = a0 ~ a1 ~ MUL2[a2] ~ MUL3[a3]
        s[4 * c + 3] = MUL3[a0] ~ a1 ~ a2 ~ MUL2[a3]
      end
    else
      for i = 0, 15 do s[i] = t[i] end
    end
    local k = 16 * r
    for i = 0, 15 do s[i] = s[i] ~ w[k + i] end
  end
  return s
end

local function decryptBlock(s, w, rounds)
  local k = 16 * rounds
  for i = 0, 15 do s[i] = s[i] ~ w[k + i] end
  local t = {}
  for r = rounds - 1, 0, -1 do
    -- InvShiftRows + InvSubBytes
    for c = 0, 3 do
      for row = 0, 3 do
        t[4 * ((c + row) % 4) + row] = INV[s[4 * c + row]]
      end
    end
    k = 16 * r
    for i = 0, 15 do t[i] = t[i] ~ w[k + i] end
    if r > 0 then
      for c = 0, 3 do
        local a0, a1, a2, a3 = t[4 * c], t[4 * c + 1], t[4 * c + 2], t[4 * c + 3]
        s[4 * c] = MUL14[a0] ~ MUL11[a1] ~ MUL13[a2] ~ MUL9[a3]
        s[4 * c + 1] = MUL9[a0] ~ MUL14[a1] ~ MUL11[a2] ~ MUL13[a3]
        s[4 * c + 2] = MUL13[a0] ~ MUL9[a1] ~ MUL14[a2] ~ MUL11[a3]
        s[4 * c + 3] = MUL11[a0] ~ MUL13[a1] ~ MUL9[a2] ~ MUL14[a3]
      end
    else
      for i = 0, 15 do s[i] = t[i] end
    end
  end
  return s
end

local function toState(str, pos)
  local s = {}
  for i = 0, 15 do s[i] = byte(str, pos + i) end
  return s
end

local function fromState(s)
  return char(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
    s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15])
end

local function xorBlock(a, b)
  local out = {}
  for i = 1, 16 do out[i] = char(byte(a, i) ~ byte(b, i)) end
  return concat(out)
end

local function increment(counter)
  local bytes = { byte(counter, 1, 16) }
  for i = 16, 1, -1 do
    bytes[i] = (bytes[i] + 1) & 0xFF
    if bytes[i] ~= 0 then break end
  end
  return char(table.unpack(bytes))
end

local function setup(key, iv, mode, keyLength)
  if type(key) ~= "string" then error("AES key must be a string", 3) end
  keyLength = keyLength or 128
  if keyLength ~= 128 and keyLength ~= 192 and keyLength ~= 256 then
    error("AES keyLength must be 128, 192 or 256", 3)
  end
  if #key ~= keyLength // 8 then
    error(string.format("AES-%d needs a %d-byte key, got %d bytes", keyLength, keyLength // 8, #key), 3)
  end
  iv = iv or rep("\0", 16)
  if type(iv) ~= "string" or #iv ~= 16 then error("AES iv must be a 16-byte string", 3) end
  mode = mode or "CBC"
  if mode ~= "CBC" and mode ~= "ECB" and mode ~= "CFB" and mode ~= "OFB" and mode ~= "CTR" then
    error("unknown AES mode '" .. tostring(mode) .. "' (use CBC, ECB, CFB, OFB or CTR)", 3)
  end
  local w, rounds = expandKey(key)
  local function enc(block) return fromState(encryptBlock(toState(block, 1), w, rounds)) end
  local function dec(block) return fromState(decryptBlock(toState(block, 1), w, rounds)) end
  return enc, dec, iv, mode
end

local function pad(data)
  local extra = (-#data) % 16
  return data .. rep("\0", extra)
end

local function run(data, enc, dec, iv, mode, decrypting)
  local out = {}
  local prev = iv
  for pos = 1, #data, 16 do
    local block = data:sub(pos, pos + 15)
    local o
    if mode == "ECB" then
      o = decrypting and dec(block) or enc(block)
    elseif mode == "CBC" then
      if decrypting then
        o = xorBlock(dec(block), prev)
        prev = block
      else
        o = enc(xorBlock(block, prev))
        prev = o
      end
    elseif mode == "CFB" then
      o = xorBlock(block, enc(prev))
      prev = decrypting and block or o
    elseif mode == "OFB" then
      prev = enc(prev)
      o = xorBlock(block, prev)
    else -- CTR
      o = xorBlock(block, enc(prev))
      prev = increment(prev)
    end
    out[#out + 1] = o
  end
  return concat(out)
end

local aes = {}

function aes.encrypt(data, key, iv, mode, keyLength)
  if type(data) ~= "string" then error("AES data must be a string", 2) end
  local enc, dec, v, m = setup(key, iv, mode, keyLength)
  return Result(run(pad(data), enc, dec, v, m, false), true)
end

-- cipher is the hex text of the encrypted data (as asHex() gives it).
function aes.decrypt(cipher, key, iv, mode, keyLength)
  if type(cipher) ~= "string" then error("AES cipher text must be a hex string", 2) end
  local ok, raw = pcall(Hex.hexToString, cipher)
  if not ok then error("AES cipher text must be a hex string", 2) end
  local enc, dec, v, m = setup(key, iv, mode, keyLength)
  return Result(run(pad(raw), enc, dec, v, m, true), true)
end

return aes
