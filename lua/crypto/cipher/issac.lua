-- ISAAC (Bob Jenkins' cryptographic PRNG) and the printable-ASCII Vigenere
-- cipher built on it, as aos offers them under crypto.cipher.issac:
--
--   issac.encrypt(msg, key).asHex(), issac.decrypt(cipherText, key).asString()
--   issac.random(min, max, seed), issac.getRandom(), issac.getRandomChar()
--
-- Keys and seeds are strings; their first 256 bytes seed the generator.
-- The cipher shifts each character in the printable range 32..126 by a random
-- amount (mod 95), so only printable ASCII round-trips.

local Result = require(".crypto.util.result")

local M32 = 0xFFFFFFFF

local mm, rsl = {}, {}
local aa, bb, cc = 0, 0, 0
local count = 0

-- One round: 256 new results into rsl.
local function generate()
  cc = (cc + 1) & M32
  bb = (bb + cc) & M32
  for i = 0, 255 do
    local x = mm[i]
    local k = i & 3
    if k == 0 then aa = aa ~ (aa << 13)
    elseif k == 1 then aa = aa ~ (aa >> 6)
    elseif k == 2 then aa = aa ~ (aa << 2)
    else aa = aa ~ (aa >> 16) end
    aa = (mm[(i + 128) & 255] + aa) & M32
    local y = (mm[(x >> 2) & 255] + aa + bb) & M32
    mm[i] = y
    bb = (mm[(y >> 10) & 255] + x) & M32
    rsl[i] = bb
  end
  count = 0
end

local SHIFTS = { 11, -2, 8, -16, 10, -4, 8, -9 }

-- Jenkins' mixing of eight 32-bit words (0-based table).
local function mix(a)
  for j = 0, 7 do
    local s = SHIFTS[j + 1]
    local nxt = a[(j + 1) & 7]
    if s > 0 then
      a[j] = (a[j] ~ (nxt << s)) & M32
    else
      a[j] = (a[j] ~ (nxt >> -s)) & M32
    end
    a[(j + 3) & 7] = (a[(j + 3) & 7] + a[j]) & M32
    a[(j + 1) & 7] = (nxt + a[(j + 2) & 7]) & M32
  end
end

local function init(useSeed)
  local a = {}
  for j = 0, 7 do a[j] = 0x9e3779b9 end
  aa, bb, cc = 0, 0, 0
  for _ = 1, 4 do mix(a) end
  for pass = 1, useSeed and 2 or 1 do
    local src = pass == 1 and rsl or mm
    for i = 0, 255, 8 do
      if useSeed then
        for j = 0, 7 do a[j] = (a[j] + src[i + j]) & M32 end
      end
      mix(a)
      for j = 0, 7 do mm[i + j] = a[j] end
    end
  end
  generate()
end

local issac = {}

-- Seed from the bytes of a string (one byte per seed word, as aos does).
function issac.seedIsaac(seed, useSeed)
  if type(seed) ~= "string" then error("ISAAC seed must be a string", 2) end
  for i = 0, 255 do
    mm[i] = 0
    rsl[i] = seed:byte(i + 1) or 0
  end
  init(useSeed ~= false)
end

function issac.getRandom()
  local r = rsl[count]
  count = count + 1
  if count > 255 then generate() end
  return r
end

function issac.getRandomChar()
  return issac.getRandom() % 95 + 32
end

-- A random integer in [min, max] (0 and 2^31 - 1 by default). Without a seed
-- the generator is seeded from math.random, which aos seeds per process.
function issac.random(min, max, seed)
  min = min or 0
  max = max or 0x7FFFFFFF
  if math.type(min) ~= "integer" or math.type(max) ~= "integer" or max < min then
    error("random expects integers min <= max", 2)
  end
  if seed ~= nil then
    issac.seedIsaac(tostring(seed), true)
  else
    issac.seedIsaac(tostring(math.random(0x7FFFFFFF)), true)
  end
  return issac.getRandom() % (max - min + 1) + min
end

local function shift(ch, by, decrypting)
  if decrypting then by = -by end
  return 32 + (ch - 32 + by) % 95
end

local function transform(text, key, decrypting)
  if type(text) ~= "string" then error("ISAAC cipher input must be a string", 3) end
  if type(key) ~= "string" then error("ISAAC key must be a string", 3) end
  issac.seedIsaac(key, true)
  local out = {}
  for i = 1, #text do
    out[i] = string.char(shift(text:byte(i), issac.getRandomChar(), decrypting))
  end
  return table.concat(out)
end

function issac.encrypt(msg, key)
  return Result(transform(msg, key, false), true)
end

-- cipherText is the encrypted string (asString() of encrypt's result).
function issac.decrypt(cipherText, key)
  return Result(transform(cipherText, key, true), true)
end

return issac
