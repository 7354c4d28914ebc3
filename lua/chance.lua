-- MT19937 (the standard 32-bit Mersenne Twister), which aos uses to make
-- math.random deterministic per process: seed(n) = init_genrand(n & 0xffffffff),
-- random() = next 32-bit output * 2^-32, integer(min, max) scales random().

local N, M = 624, 397
local MATRIX_A = 0x9908B0DF
local UPPER, LOWER = 0x80000000, 0x7FFFFFFF

local mt = {}
local mti = N + 1

local chance = {}

function chance.seed(seed)
  if math.type(seed) == "float" and seed == math.floor(seed) and seed == seed then
    seed = math.tointeger(math.fmod(seed, 4294967296.0))
  else
    seed = math.tointeger(seed)
  end
  if seed == nil then
    error("seed must be an integer", 2)
  end
  mt[0] = seed & 0xFFFFFFFF
  for i = 1, N - 1 do
    local prev = mt[i - 1]
    mt[i] = (1812433253 * (prev ~ (prev >> 30)) + i) & 0xFFFFFFFF
  end
  mti = N
end

local function twist()
  for k = 0, N - 1 do
    local y = (mt[k] & UPPER) | (mt[(k + 1) % N] & LOWER)
    local v = mt[(k + M) % N] ~ (y >> 1)
    if y & 1 ~= 0 then v = v ~ MATRIX_A end
    mt[k] = v
  end
  mti = 0
end

-- The next 32-bit output (seeds with 5489, as MT19937 does, if never seeded).
function chance.genrand_int32()
  if mti >= N then
    if mti == N + 1 then chance.seed(5489) end
    twist()
  end
  local y = mt[mti]
  mti = mti + 1
  y = y ~ (y >> 11)
  y = y ~ ((y << 7) & 0x9D2C5680)
  y = y ~ ((y << 15) & 0xEFC60000)
  y = y ~ (y >> 18)
  return y
end

function chance.random()
  return chance.genrand_int32() * (1.0 / 4294967296.0)
end

function chance.integer(min, max)
  assert(max >= min, "max must bigger than min")
  return math.floor(chance.random() * (max - min + 1) + min)
end

return chance
