-- bit32: the Lua 5.2 bitwise library on 32-bit unsigned values, written for
-- Lua 5.3 (whose own build here lacks the compatibility copy). Arguments are
-- taken as Lua 5.3's compat bit32 takes them: any integer (or a float/string
-- with an exact integer value), reduced modulo 2^32; results are integers in
-- [0, 2^32 - 1].

local tointeger = math.tointeger
local type, tonumber, error, select = type, tonumber, error, select

local NBITS = 32
local ALLONES = 0xFFFFFFFF

local function argerror(i, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", i, fname, msg), 3)
end

local function checkint(v, i, fname)
  local n = v
  if type(n) == "string" then n = tonumber(n) end
  if type(n) ~= "number" then
    argerror(i, fname, "number expected, got " .. (v == nil and "no value" or type(v)))
  end
  local k = tointeger(n)
  if k == nil then argerror(i, fname, "number has no integer representation") end
  return k
end

local bit32 = {}

function bit32.band(...)
  local r = ALLONES
  for i = 1, select("#", ...) do r = r & checkint((select(i, ...)), i, "band") end
  return r & ALLONES
end

function bit32.bor(...)
  local r = 0
  for i = 1, select("#", ...) do r = r | checkint((select(i, ...)), i, "bor") end
  return r & ALLONES
end

function bit32.bxor(...)
  local r = 0
  for i = 1, select("#", ...) do r = r ~ checkint((select(i, ...)), i, "bxor") end
  return r & ALLONES
end

function bit32.btest(...)
  local r = ALLONES
  for i = 1, select("#", ...) do r = r & checkint((select(i, ...)), i, "btest") end
  return (r & ALLONES) ~= 0
end

function bit32.bnot(x)
  return (~checkint(x, 1, "bnot")) & ALLONES
end

-- Shift left by a positive count, right by a negative one; 32 or more clears.
local function shift(r, i)
  if i < 0 then
    i = -i
    r = r & ALLONES
    if i >= NBITS then return 0 end
    return r >> i
  end
  if i >= NBITS then return 0 end
  return (r << i) & ALLONES
end

function bit32.lshift(x, disp)
  return shift(checkint(x, 1, "lshift"), checkint(disp, 2, "lshift"))
end

function bit32.rshift(x, disp)
  return shift(checkint(x, 1, "rshift"), -checkint(disp, 2, "rshift"))
end

function bit32.arshift(x, disp)
  local r = checkint(x, 1, "arshift") & ALLONES
  local i = checkint(disp, 2, "arshift")
  if i < 0 or (r & 0x80000000) == 0 then
    return shift(r, -i)
  end
  if i >= NBITS then return ALLONES end
  return ((r >> i) | ~(ALLONES >> i)) & ALLONES
end

local function rotate(r, d)
  local i = d & (NBITS - 1)
  r = r & ALLONES
  if i ~= 0 then r = (r << i) | (r >> (NBITS - i)) end
  return r & ALLONES
end

function bit32.lrotate(x, disp)
  return rotate(checkint(x, 1, "lrotate"), checkint(disp, 2, "lrotate"))
end

function bit32.rrotate(x, disp)
  return rotate(checkint(x, 1, "rrotate"), -checkint(disp, 2, "rrotate"))
end

local function fieldargs(fname, farg, f, w)
  f = checkint(f, farg, fname)
  if w == nil then w = 1 else w = checkint(w, farg + 1, fname) end
  if f < 0 then argerror(farg, fname, "field cannot be negative") end
  if w <= 0 then argerror(farg + 1, fname, "width must be positive") end
  if f + w > NBITS then error("trying to access non-existent bits", 3) end
  return f, w
end

local function mask(w)
  return ALLONES >> (NBITS - w)
end

function bit32.extract(x, field, width)
  local r = checkint(x, 1, "extract") & ALLONES
  local f, w = fieldargs("extract", 2, field, width)
  return (r >> f) & mask(w)
end

function bit32.replace(x, v, field, width)
  local r = checkint(x, 1, "replace") & ALLONES
  local val = checkint(v, 2, "replace") & ALLONES
  local f, w = fieldargs("replace", 3, field, width)
  local m = mask(w)
  return ((r & ~(m << f)) | ((val & m) << f)) & ALLONES
end

return bit32
