-- Arithmetic, bitwise and comparison operators of a bint class (see .bint).
-- Installed into each class by `.bint` with the word-level helpers it shares:
-- require(".bint.ops")(bint, W).

local math_type, tointeger, floor = math.type, math.tointeger, math.floor

local WORDBITS = 32
local M32 = 0xFFFFFFFF

return function(bint, W)
  local n, bits = W.n, W.bits
  local raw, copy, setzero, iszero, isneg, negate = W.raw, W.copy, W.setzero, W.iszero, W.isneg, W.negate
  local divsmall, ucompare, scompare = W.divsmall, W.ucompare, W.scompare
  local isbint, tobint, tonum, checkbint = W.isbint, W.tobint, W.tonumber, W.checkbint

  -- arithmetic ----------------------------------------------------------------

  local longdiv

  local function add(x, y)
    local z = raw()
    local carry = 0
    for i = 1, n do
      local v = x[i] + y[i] + carry
      z[i] = v & M32
      carry = v >> 32
    end
    return z
  end

  local function sub(x, y)
    local z = raw()
    local borrow = 0
    for i = 1, n do
      local v = x[i] - y[i] - borrow
      if v < 0 then
        z[i] = v + (1 << 32)
        borrow = 1
      else
        z[i] = v
        borrow = 0
      end
    end
    return z
  end

  local function mul(x, y)
    local z = setzero(raw())
    for i = 1, n do
      local a = x[i]
      if a ~= 0 then
        local carry = 0
        for j = 1, n - i + 1 do
          local k = i + j - 1
          local p = a * y[j] -- the unsigned 64-bit product, bit for bit
          local lo = (p & M32) + z[k] + carry
          carry = (p >> 32) + (lo >> 32)
          z[k] = lo & M32
        end
      end
    end
    return z
  end

  -- shift left / right (logical) by s >= 0 bits, new value
  local function shl(x, s)
    local z = setzero(raw())
    if s >= bits then return z end
    local w, b = s // WORDBITS, s % WORDBITS
    for i = n, w + 1, -1 do
      local v = x[i - w] << b
      if b > 0 and i - w - 1 >= 1 then v = v | (x[i - w - 1] >> (WORDBITS - b)) end
      z[i] = v & M32
    end
    return z
  end

  local function shr(x, s)
    local z = setzero(raw())
    if s >= bits then return z end
    local w, b = s // WORDBITS, s % WORDBITS
    for i = 1, n - w do
      local v = x[i + w] >> b
      if b > 0 and i + w + 1 <= n then v = v | (x[i + w + 1] << (WORDBITS - b)) end
      z[i] = v & M32
    end
    return z
  end

  -- Long division (Knuth's algorithm D) on 16-bit digits, so that every
  -- intermediate product and sum fits a Lua integer. x >= y > 2^31 here.
  local B, DMASK = 1 << 16, 0xFFFF

  local function digits(x)
    local d = {}
    for i = 1, n do
      d[2 * i - 2] = x[i] & DMASK
      d[2 * i - 1] = x[i] >> 16
    end
    local len = 2 * n
    while len > 1 and d[len - 1] == 0 do len = len - 1 end
    return d, len
  end

  local function fromdigits(d, len)
    local z = setzero(raw())
    for i = 0, len - 1 do
      local w = i // 2 + 1
      if i % 2 == 0 then z[w] = z[w] | d[i] else z[w] = z[w] | (d[i] << 16) end
    end
    return z
  end

  function longdiv(x, y)
    local u, m = digits(x)
    local v, dn = digits(y)
    -- normalise so that the top digit of v has its high bit set
    local s = 0
    while (v[dn - 1] << s) & 0x8000 == 0 do s = s + 1 end
    local vn, un = {}, {}
    for i = dn - 1, 1, -1 do
      vn[i] = ((v[i] << s) | (v[i - 1] >> (16 - s))) & DMASK
    end
    vn[0] = (v[0] << s) & DMASK
    un[m] = u[m - 1] >> (16 - s)
    for i = m - 1, 1, -1 do
      un[i] = ((u[i] << s) | (u[i - 1] >> (16 - s))) & DMASK
    end
    un[0] = (u[0] << s) & DMASK
    local q = {}
    local vtop, vnext = vn[dn - 1], vn[dn - 2]
    for j = m - dn, 0, -1 do
      local num = un[j + dn] * B + un[j + dn - 1]
      local qhat, rhat = num // vtop, num % vtop
      while qhat >= B or qhat * vnext > rhat * B + un[j + dn - 2] do
        qhat = qhat - 1
        rhat = rhat + vtop
        if rhat >= B then break end
      end
      -- multiply and subtract
      local k = 0
      for i = 0, dn - 1 do
        local p = qhat * vn[i]
        local t = un[i + j] - k - (p & DMASK)
        un[i + j] = t & DMASK
        k = (p >> 16) - (t // B)
      end
      local t = un[j + dn] - k
      un[j + dn] = t
      if t < 0 then
        -- qhat was one too large: add back
        qhat = qhat - 1
        k = 0
        for i = 0, dn - 1 do
          t = un[i + j] + vn[i] + k
          un[i + j] = t & DMASK
          k = t >> 16
        end
        un[j + dn] = (un[j + dn] + k) & DMASK
      end
      q[j] = qhat
    end
    local r = {}
    for i = 0, dn - 1 do
      r[i] = ((un[i] >> s) | (un[i + 1] << (16 - s))) & DMASK
    end
    return fromdigits(q, m - dn + 1), fromdigits(r, dn)
  end

  -- Unsigned quotient and remainder (both new values).
  local function udivmod(x, y)
    if iszero(y) then error("attempt to divide by zero", 3) end
    local small = true
    for i = 2, n do if y[i] ~= 0 then small = false break end end
    if small and y[1] < (1 << 31) then
      local q = copy(x)
      local r = divsmall(q, y[1])
      local rz = setzero(raw())
      rz[1] = r
      return q, rz
    end
    if ucompare(x, y) < 0 then return setzero(raw()), copy(x) end
    return longdiv(x, y)
  end

  local function absval(x)
    if isneg(x) then return negate(copy(x)) end
    return x
  end

  function bint.udivmod(x, y)
    return udivmod(checkbint(x), checkbint(y))
  end
  function bint.udiv(x, y) return (udivmod(checkbint(x), checkbint(y))) end
  function bint.umod(x, y)
    local _, r = udivmod(checkbint(x), checkbint(y))
    return r
  end

  -- Truncated division: the quotient rounds toward zero, the remainder has x's sign.
  function bint.tdivmod(x, y)
    local ix, iy = tobint(x), tobint(y)
    if not (ix and iy) then
      local a, b = tonum(x), tonum(y)
      local q = a / b
      q = q < 0 and math.ceil(q) or floor(q)
      return q, math.fmod(a, b)
    end
    if isneg(ix) and bint.isminusone(iy) and ucompare(ix, bint.mininteger()) == 0 then
      error("division overflow")
    end
    local q, r = udivmod(absval(ix), absval(iy))
    if isneg(ix) ~= isneg(iy) then negate(q) end
    if isneg(ix) then negate(r) end
    return q, r
  end
  function bint.tdiv(x, y) return (bint.tdivmod(x, y)) end
  function bint.tmod(x, y)
    local _, r = bint.tdivmod(x, y)
    return r
  end

  -- Floor division: the quotient rounds down, the remainder has y's sign.
  function bint.idivmod(x, y)
    local ix, iy = tobint(x), tobint(y)
    if not (ix and iy) then
      local a, b = tonum(x), tonum(y)
      return a // b, a % b
    end
    local q, r = udivmod(absval(ix), absval(iy))
    local nx, ny = isneg(ix), isneg(iy)
    if nx ~= ny then
      negate(q)
      if not iszero(r) then
        q = sub(q, bint.one())
        r = sub(absval(iy), r)
      end
    end
    if ny and not iszero(r) then negate(r) end
    return q, r
  end

  local function binop(intop, numop)
    return function(x, y)
      local ix, iy = tobint(x), tobint(y)
      if ix and iy then return intop(ix, iy) end
      return numop(tonum(x), tonum(y))
    end
  end

  bint.__add = binop(add, function(a, b) return a + b end)
  bint.__sub = binop(sub, function(a, b) return a - b end)
  bint.__mul = binop(mul, function(a, b) return a * b end)
  bint.__idiv = function(x, y) return (bint.idivmod(x, y)) end
  bint.__mod = function(x, y)
    local _, r = bint.idivmod(x, y)
    return r
  end
  bint.__div = function(x, y) return tonum(x) / tonum(y) end
  bint.__pow = function(x, y) return tonum(x) ^ tonum(y) end
  bint.__unm = function(x) return negate(copy(x)) end

  function bint.add(x, y) return bint.__add(x, y) end
  function bint.sub(x, y) return bint.__sub(x, y) end
  function bint.mul(x, y) return bint.__mul(x, y) end

  function bint.abs(x)
    local ix = tobint(x)
    if ix then return copy(absval(ix)) end
    return math.abs(x)
  end

  function bint.inc(x)
    local ix = tobint(x)
    if ix then return add(ix, bint.one()) end
    return x + 1
  end

  function bint.dec(x)
    local ix = tobint(x)
    if ix then return sub(ix, bint.one()) end
    return x - 1
  end

  function bint.floor(x)
    if isbint(x) then return copy(x) end
    return bint.new(floor(tonumber(x)))
  end

  function bint.ceil(x)
    if isbint(x) then return copy(x) end
    return bint.new(math.ceil(tonumber(x)))
  end

  -- x^y for an integer y >= 0, wrapping.
  function bint.ipow(x, y)
    x = checkbint(x)
    y = checkbint(y)
    if isneg(y) then error("exponent must be non-negative", 2) end
    local result = bint.one()
    local base = copy(x)
    local e = copy(y)
    while not iszero(e) do
      if e[1] & 1 == 1 then result = mul(result, base) end
      e = shr(e, 1)
      if not iszero(e) then base = mul(base, base) end
    end
    return result
  end

  -- x^y mod m (unsigned).
  function bint.upowmod(x, y, m)
    x, y, m = checkbint(x), checkbint(y), checkbint(m)
    if bint.isone(m) then return bint.zero() end
    local result = bint.one()
    local _, base = udivmod(x, m)
    local e = copy(y)
    -- operands below m may overflow the width when multiplied: work in
    -- double width
    local wide = require(".bint")(bits * 2)
    local function mulmod(a, b)
      local wa, wb, wm = wide.fromle(bint.tole(a)), wide.fromle(bint.tole(b)), wide.fromle(bint.tole(m))
      local _, r = wide.udivmod(wa * wb, wm)
      return bint.fromle(wide.tole(r))
    end
    while not iszero(e) do
      if e[1] & 1 == 1 then result = mulmod(result, base) end
      e = shr(e, 1)
      base = mulmod(base, base)
    end
    return result
  end

  -- bitwise ---------------------------------------------------------------------

  local function bitop(f)
    return function(x, y)
      local ix, iy = checkbint(x), checkbint(y)
      local z = raw()
      for i = 1, n do z[i] = f(ix[i], iy[i]) & M32 end
      return z
    end
  end
  bint.__band = bitop(function(a, b) return a & b end)
  bint.__bor = bitop(function(a, b) return a | b end)
  bint.__bxor = bitop(function(a, b) return a ~ b end)

  bint.__bnot = function(x)
    local z = raw()
    for i = 1, n do z[i] = (~x[i]) & M32 end
    return z
  end

  local function shiftcount(y)
    local s
    if isbint(y) then s = bint.tointeger(y) else s = tointeger(tonumber(y)) end
    if s == nil then error("value has no integer representation") end
    return s
  end

  bint.__shl = function(x, y)
    x = checkbint(x)
    local s = shiftcount(y)
    if s < 0 then return shr(x, -s) end
    return shl(x, s)
  end

  bint.__shr = function(x, y)
    x = checkbint(x)
    local s = shiftcount(y)
    if s < 0 then return shl(x, -s) end
    return shr(x, s)
  end

  function bint.band(x, y) return bint.__band(x, y) end
  function bint.bor(x, y) return bint.__bor(x, y) end
  function bint.bxor(x, y) return bint.__bxor(x, y) end
  function bint.bnot(x) return bint.__bnot(checkbint(x)) end
  function bint.shl(x, y) return bint.__shl(x, y) end
  function bint.shr(x, y) return bint.__shr(x, y) end

  -- Keep the low y bits.
  function bint.bwrap(x, y)
    x = checkbint(x)
    local s = shiftcount(y)
    if s <= 0 then return bint.zero() end
    if s >= bits then return copy(x) end
    return shr(shl(x, bits - s), bits - s)
  end

  function bint.brol(x, y)
    x = checkbint(x)
    local s = shiftcount(y) % bits
    if s == 0 then return copy(x) end
    return bint.__bor(shl(x, s), shr(x, bits - s))
  end

  function bint.bror(x, y)
    x = checkbint(x)
    local s = shiftcount(y) % bits
    if s == 0 then return copy(x) end
    return bint.__bor(shr(x, s), shl(x, bits - s))
  end

  -- comparisons -------------------------------------------------------------------

  bint.__eq = function(x, y)
    for i = 1, n do if x[i] ~= y[i] then return false end end
    return true
  end

  bint.__lt = binop(function(a, b) return scompare(a, b) < 0 end, function(a, b) return a < b end)
  bint.__le = binop(function(a, b) return scompare(a, b) <= 0 end, function(a, b) return a <= b end)
  -- eq also accepts plain numbers (== between a bint and a number is always false).
  bint.eq = binop(function(a, b) return scompare(a, b) == 0 end, function(a, b) return a == b end)

  function bint.lt(x, y) return bint.__lt(x, y) end
  function bint.le(x, y) return bint.__le(x, y) end

  function bint.ult(x, y) return ucompare(checkbint(x), checkbint(y)) < 0 end
  function bint.ule(x, y) return ucompare(checkbint(x), checkbint(y)) <= 0 end

  bint.max = binop(function(a, b) return copy(scompare(a, b) >= 0 and a or b) end,
    function(a, b) return bint.parse(math.max(a, b)) end)
  bint.min = binop(function(a, b) return copy(scompare(a, b) <= 0 and a or b) end,
    function(a, b) return bint.parse(math.min(a, b)) end)

  -- in-place variants (self is updated and returned) ----------------------------

  local function assign(self, z)
    for i = 1, n do self[i] = z[i] end
    return self
  end

  function bint._assign(self, y) return assign(self, checkbint(y)) end
  function bint._add(self, y) return assign(self, bint.__add(self, checkbint(y))) end
  function bint._sub(self, y) return assign(self, bint.__sub(self, checkbint(y))) end
  function bint._band(self, y) return assign(self, bint.__band(self, y)) end
  function bint._bor(self, y) return assign(self, bint.__bor(self, y)) end
  function bint._bxor(self, y) return assign(self, bint.__bxor(self, y)) end
  function bint._bnot(self) return assign(self, bint.__bnot(self)) end
  function bint._unm(self) return negate(self) end
  function bint._inc(self) return assign(self, bint.inc(self)) end
  function bint._dec(self) return assign(self, bint.dec(self)) end
  function bint._abs(self)
    if isneg(self) then negate(self) end
    return self
  end
  function bint._shlone(self) return assign(self, shl(self, 1)) end
  function bint._shrone(self) return assign(self, shr(self, 1)) end
end
