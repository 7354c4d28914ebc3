-- bint: fixed-width two's complement integers of any multiple of 32 bits, the
-- API of lua-bint 0.5.1 as aos programs use it (token balances are bint(256)).
--
--   local bint = require('.bint')(256)
--   tostring(bint('123456789012345678901234567890') + 1)
--
-- A value is a table of 32-bit words, least significant first (so printing it
-- or json-encoding it shows the word array, as in aos). Arithmetic wraps modulo
-- 2^bits. `/` and `^` give Lua floats; use bint.ipow for integer powers. Mixed
-- operations with an integer (or integral float) convert it to a bint; with any
-- other number they fall back to float arithmetic.

local math_type, tointeger, floor = math.type, math.tointeger, math.floor
local type, getmetatable, setmetatable, error, tostring = type, getmetatable, setmetatable, error, tostring
local concat, byte, char, format = table.concat, string.byte, string.char, string.format

local WORDBITS = 32
local M32 = 0xFFFFFFFF

local memo = {}

local function newclass(bits)
  local n = bits // WORDBITS
  local TOPBIT = 1 << (WORDBITS - 1)

  local bint = {}
  bint.__index = bint
  bint.bits = bits

  local function raw()
    return setmetatable({}, bint)
  end

  local function isbint(x)
    return getmetatable(x) == bint
  end

  local function copy(x)
    local z = raw()
    for i = 1, n do z[i] = x[i] end
    return z
  end

  -- word constructors ---------------------------------------------------------

  local function fromint(v)
    -- a Lua integer, sign-extended to the full width
    local z = raw()
    z[1] = v & M32
    if n > 1 then z[2] = (v >> 32) & M32 end
    local fill = v < 0 and M32 or 0
    for i = 3, n do z[i] = fill end
    return z
  end

  local function setzero(z)
    for i = 1, n do z[i] = 0 end
    return z
  end

  function bint.zero() return setzero(raw()) end

  function bint.one()
    local z = setzero(raw())
    z[1] = 1
    return z
  end

  function bint.maxinteger()
    local z = raw()
    for i = 1, n - 1 do z[i] = M32 end
    z[n] = M32 >> 1
    return z
  end

  function bint.mininteger()
    local z = setzero(raw())
    z[n] = TOPBIT
    return z
  end

  -- in-place helpers on word arrays ------------------------------------------

  local function iszero(x)
    for i = 1, n do if x[i] ~= 0 then return false end end
    return true
  end

  local function isneg(x) return x[n] & TOPBIT ~= 0 end

  local function negate(z) -- in place: z = -z
    local carry = 1
    for i = 1, n do
      local v = ((~z[i]) & M32) + carry
      z[i] = v & M32
      carry = v >> 32
    end
    return z
  end

  -- z = z * m + a for small m, a (m < 2^31, a < 2^32), in place
  local function mulsmall_add(z, m, a)
    local carry = a
    for i = 1, n do
      local v = z[i] * m + carry
      z[i] = v & M32
      carry = v >> 32
    end
    return z
  end

  -- z = z // d in place for 0 < d < 2^31; returns the remainder (z unsigned)
  local function divsmall(z, d)
    local rem = 0
    for i = n, 1, -1 do
      local cur = (rem << 32) | z[i]
      z[i] = cur // d
      rem = cur % d
    end
    return rem
  end

  local function ucompare(x, y) -- -1, 0, 1 as unsigned values
    for i = n, 1, -1 do
      local a, b = x[i], y[i]
      if a ~= b then return a < b and -1 or 1 end
    end
    return 0
  end

  local function scompare(x, y)
    local nx, ny = isneg(x), isneg(y)
    if nx ~= ny then return nx and -1 or 1 end
    return ucompare(x, y)
  end

  -- conversions ---------------------------------------------------------------

  -- Integral floats beyond the 64-bit range still convert exactly (via their
  -- decimal expansion); other floats do not.
  local frombase

  function bint.frominteger(x)
    if math_type(x) == "integer" then return fromint(x) end
    if math_type(x) == "float" and x == floor(x) and x - x == 0 then
      local i = tointeger(x)
      if i then return fromint(i) end
      return frombase(format("%.0f", x), 10)
    end
    return nil
  end

  function bint.fromuinteger(x)
    local i = tointeger(x)
    if i == nil then return nil end
    local z = setzero(raw())
    z[1] = i & M32
    if n > 1 then z[2] = (i >> 32) & M32 end
    return z
  end

  local function checkbase(base)
    if math_type(base) ~= "integer" or base < 2 or base > 36 then
      error("base must be an integer from 2 to 36", 3) -- at the caller of frombase / tobase
    end
  end

  -- How many base digits go in one word step, and base^step (below 2^31).
  local function wordstep(base)
    local step, mul = 1, base
    while mul * base < (1 << 31) do
      step = step + 1
      mul = mul * base
    end
    return step, mul
  end

  local DIGITS = {}
  for i = 0, 9 do DIGITS[byte("0") + i] = i end
  for i = 0, 25 do
    DIGITS[byte("a") + i] = 10 + i
    DIGITS[byte("A") + i] = 10 + i
  end

  -- Digits in base 2..36 with an optional sign; nil when not a number.
  frombase = function(s, base)
    if type(s) ~= "string" then return nil end
    base = base or 10
    checkbase(base)
    local sign, digits = s:match("^([-+]?)([%w]+)$")
    if not digits then return nil end
    local z = setzero(raw())
    local step = wordstep(base)
    local len = #digits
    if base == 10 then
      -- decimal: validate once, then convert 9-digit slices natively
      if digits:find("%D") then return nil end
      local first = (len - 1) % 9 + 1
      mulsmall_add(z, 1, tonumber(digits:sub(1, first)))
      local i = first + 1
      while i <= len do
        mulsmall_add(z, 1000000000, tonumber(digits:sub(i, i + 8)))
        i = i + 9
      end
      if sign == "-" then negate(z) end
      return z
    end
    local i = 1
    while i <= len do
      local j = i + step - 1
      if j > len then j = len end
      local acc, m = 0, 1
      for k = i, j do
        local d = DIGITS[byte(digits, k)]
        if d == nil or d >= base then return nil end
        acc = acc * base + d
        m = m * base
      end
      mulsmall_add(z, m, acc)
      i = j + 1
    end
    if sign == "-" then negate(z) end
    return z
  end
  bint.frombase = frombase

  local PREFIXED = { { "^([-+]?)0[xX](%w+)$", 16 }, { "^([-+]?)0[bB](%w+)$", 2 } }

  function bint.fromstring(s)
    if type(s) ~= "string" then return nil end
    for i = 1, #PREFIXED do
      local sign, body = s:match(PREFIXED[i][1])
      if body then
        local z = frombase(body, PREFIXED[i][2])
        if z and sign == "-" then negate(z) end
        return z
      end
    end
    return frombase(s, 10)
  end

  -- A bint for x (a bint is returned as is, or copied when clone is set),
  -- or nil when x is not an integer value.
  local function tobint(x, clone)
    if isbint(x) then
      if clone then return copy(x) end
      return x
    end
    if type(x) == "number" then return bint.frominteger(x) end
    if type(x) == "string" then return bint.fromstring(x) end
    return nil
  end
  bint.tobint = tobint

  function bint.parse(x, clone)
    local z = tobint(x, clone)
    if z == nil then return tonumber(x) end
    return z
  end

  -- A bint from a number with its fractional part dropped (nil when not a number).
  function bint.trunc(x)
    if isbint(x) then return copy(x) end
    x = tonumber(x)
    if x == nil then return nil end
    if math_type(x) == "float" then x = math.modf(x) end
    return bint.frominteger(x)
  end

  function bint.new(x)
    local z = tobint(x, true)
    if z == nil then error("value cannot be represented by a bint") end
    return z
  end

  -- (lua-bint's wording, kept so that error texts match)
  local function checkbint(x)
    local z = tobint(x)
    if z == nil then error("value has not integer representation") end
    return z
  end

  -- The low 64 bits as a Lua integer (wrapping).
  function bint.tointeger(x)
    if isbint(x) then
      local v = x[1]
      if n > 1 then v = v | (x[2] << 32) elseif isneg(x) then v = v - (1 << 32) end
      return v
    end
    if type(x) == "number" then return tointeger(x) end
    return nil
  end
  bint.touinteger = bint.tointeger

  local DEC_CHUNK = 1000000000

  -- Whether x (signed) fits a Lua integer.
  local function fits64(x)
    local neg = isneg(x)
    local fill = neg and M32 or 0
    for i = 3, n do
      if x[i] ~= fill then return false end
    end
    if n >= 2 and (x[2] & TOPBIT ~= 0) ~= neg then return false end
    return true
  end

  -- Digits of x in base 2..36; signed (with '-') for base 10 unless unsigned
  -- is given, two's complement for other bases unless unsigned == false.
  function bint.tobase(x, base, unsigned)
    x = checkbint(x)
    base = base or 10
    checkbase(base)
    if unsigned == nil then unsigned = base ~= 10 end
    if base == 10 and not unsigned and n >= 2 and fits64(x) then
      return tostring(x[1] | (x[2] << 32))
    end
    local z = copy(x)
    local neg = false
    if not unsigned and isneg(z) then
      neg = true
      negate(z)
    end
    if iszero(z) then return "0" end
    local step, chunk = wordstep(base)
    if base == 10 then step, chunk = 9, DEC_CHUNK end
    local parts = {}
    while not iszero(z) do
      local r = divsmall(z, chunk)
      if base == 10 then
        parts[#parts + 1] = format("%09d", r)
      else
        local digits = {}
        for k = step, 1, -1 do
          local d = r % base
          digits[k] = d < 10 and char(48 + d) or char(87 + d)
          r = r // base
        end
        parts[#parts + 1] = concat(digits)
      end
    end
    local s = {}
    for k = #parts, 1, -1 do s[#s + 1] = parts[k] end
    local out = concat(s):gsub("^0+", "")
    if neg then out = "-" .. out end
    return out
  end

  -- x as a Lua integer when it fits in 64 bits, else the nearest float.
  function bint.tonumber(x)
    if isbint(x) then
      if fits64(x) then return bint.tointeger(x) end
      return tonumber(bint.tobase(x, 10)) + 0.0
    end
    return tonumber(x)
  end
  local tonum = bint.tonumber

  -- s without the zero bytes that `zeros` matches, but at least one byte.
  local function trimmed(s, zeros)
    s = s:gsub(zeros, "")
    if s == "" then s = "\0" end
    return s
  end

  -- Little/big-endian byte strings of the full width.
  function bint.tole(x, trim)
    x = checkbint(x)
    local out = {}
    for i = 1, n do out[i] = string.pack("<I4", x[i]) end
    local s = concat(out)
    if trim then s = trimmed(s, "\0+$") end
    return s
  end

  function bint.tobe(x, trim)
    local s = bint.tole(x):reverse()
    if trim then s = trimmed(s, "^\0+") end
    return s
  end

  function bint.fromle(s)
    if type(s) ~= "string" then error("buffer is not a string", 2) end
    local z = setzero(raw())
    for i = 1, math.min(#s, n * 4) do
      local w = (i - 1) // 4 + 1
      z[w] = z[w] | (byte(s, i) << (8 * ((i - 1) % 4)))
    end
    return z
  end

  function bint.frombe(s)
    if type(s) ~= "string" then error("buffer is not a string", 2) end
    return bint.fromle(s:reverse())
  end

  -- predicates ----------------------------------------------------------------

  function bint.isbint(x) return isbint(x) end

  function bint.type(x)
    if isbint(x) then return "bint" end
    return math_type(x)
  end

  function bint.isintegral(x)
    return isbint(x) or math_type(x) == "integer"
  end

  function bint.isnumeric(x)
    return isbint(x) or type(x) == "number"
  end

  function bint.iszero(x)
    if isbint(x) then return iszero(x) end
    return x == 0
  end

  function bint.isone(x)
    if isbint(x) then
      if x[1] ~= 1 then return false end
      for i = 2, n do if x[i] ~= 0 then return false end end
      return true
    end
    return x == 1
  end

  function bint.isminusone(x)
    if isbint(x) then
      for i = 1, n do if x[i] ~= M32 then return false end end
      return true
    end
    return x == -1
  end

  function bint.isneg(x)
    if isbint(x) then return isneg(x) end
    return x < 0
  end

  function bint.ispos(x)
    if isbint(x) then return not isneg(x) and not iszero(x) end
    return x > 0
  end

  function bint.iseven(x)
    if isbint(x) then return x[1] & 1 == 0 end
    return math.abs(x) % 2 == 0
  end

  function bint.isodd(x)
    if isbint(x) then return x[1] & 1 == 1 end
    return math.abs(x) % 2 == 1
  end

  -- operators (.bint.ops) -----------------------------------------------------

  require(".bint.ops")(bint, {
    n = n, bits = bits, raw = raw, copy = copy, setzero = setzero, iszero = iszero,
    isneg = isneg, negate = negate, divsmall = divsmall, ucompare = ucompare,
    scompare = scompare, isbint = isbint, tobint = tobint, tonumber = tonum,
    checkbint = checkbint,
  })

  bint.__tostring = function(x) return bint.tobase(x, 10) end

  function bint.tostring(x, base, unsigned)
    return bint.tobase(x, base, unsigned)
  end

  setmetatable(bint, {
    __call = function(_, x) return bint.new(x) end,
  })

  return bint
end

-- require('.bint')(bits[, wordbits]) -> the class for that width (memoised).
return function(bits, wordbits)
  bits = bits or 256
  if math_type(bits) ~= "integer" or bits < WORDBITS or bits % WORDBITS ~= 0 then
    error("bitsize is not multiple of word bitsize", 2)
  end
  if wordbits ~= nil and wordbits ~= WORDBITS then
    error("only 32-bit words are supported", 2)
  end
  local class = memo[bits]
  if not class then
    class = newclass(bits)
    memo[bits] = class
  end
  return class
end
