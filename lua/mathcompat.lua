-- The math functions Lua 5.2 had and Lua 5.3 keeps only under LUA_COMPAT_5_2
-- (pow, ldexp, frexp, cosh, sinh, tanh, log10). aos code and its crypto modules call
-- them, and the Lua 5.3 used here is built without that compat layer.

local exp, abs, floor, huge = math.exp, math.abs, math.floor, math.huge
local type, tonumber, error = type, tonumber, error

local function num(v, i, fname)
  local n = v
  if type(n) == "string" then n = tonumber(n) end
  if type(n) ~= "number" then
    error(string.format("bad argument #%d to '%s' (number expected, got %s)", i, fname,
      v == nil and "no value" or type(v)), 3)
  end
  return n
end

local M = {}

function M.pow(x, y)
  return num(x, 1, "pow") ^ num(y, 2, "pow")
end

-- m * 2^e, computed in steps so that neither factor overflows or underflows
-- on the way when the result itself is representable.
function M.ldexp(m, e)
  m = num(m, 1, "ldexp") + 0.0
  local k = math.tointeger(num(e, 2, "ldexp"))
  if k == nil then
    error("bad argument #2 to 'ldexp' (number has no integer representation)", 2)
  end
  if m == 0 or m ~= m or m == huge or m == -huge then return m end
  while k > 1000 do
    m = m * 2.0 ^ 1000
    k = k - 1000
    if m == huge or m == -huge then return m end
  end
  while k < -1000 do
    m = m * 2.0 ^ -1000
    k = k + 1000
    if m == 0 then return m end
  end
  return m * 2.0 ^ k
end

-- Returns m, e with x = m * 2^e and 0.5 <= |m| < 1 (m = x, e = 0 for 0, inf, nan).
function M.frexp(x)
  x = num(x, 1, "frexp") + 0.0
  if x == 0 or x ~= x or x == huge or x == -huge then return x, 0 end
  local e = 0
  local a = abs(x)
  if a < 2.0 ^ -1000 then
    a = a * 2.0 ^ 1000
    e = -1000
  end
  local k = floor(math.log(a, 2)) + 1
  local m = a * 2.0 ^ -k
  -- log2 can be off by one at the edges; settle it exactly.
  while m >= 1.0 do m = m / 2; k = k + 1 end
  while m < 0.5 do m = m * 2; k = k - 1 end
  e = e + k
  if x < 0 then m = -m end
  return m, math.tointeger(e)
end

function M.cosh(x)
  x = num(x, 1, "cosh")
  local ex = exp(abs(x))
  return (ex + 1 / ex) / 2
end

function M.sinh(x)
  x = num(x, 1, "sinh")
  local a = abs(x)
  local r
  if a < 1e-5 then
    r = a + a * a * a / 6
  else
    local ex = exp(a)
    r = (ex - 1 / ex) / 2
  end
  if x < 0 then r = -r end
  return r
end

function M.tanh(x)
  x = num(x, 1, "tanh")
  local a = abs(x)
  local r
  if a > 22 then
    r = 1.0
  elseif a < 1e-5 then
    r = a - a * a * a / 3
  else
    local e2 = exp(2 * a)
    r = (e2 - 1) / (e2 + 1)
  end
  if x < 0 then r = -r end
  return r
end

function M.log10(x)
  return math.log(num(x, 1, "log10"), 10)
end

return M
