--
-- .utils: small functional helpers and the message pattern matcher used by
-- Handlers (module version 0.0.5, aos 2.0.4 semantics).
--
local utils = { _version = "0.0.5" }

local type, pairs, ipairs, select, tostring = type, pairs, ipairs, select, tostring
local errorsite = require(".errorsite")
local unpack = table.unpack

local function isArray(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

--- Curry `fn` to `arity` arguments (default: its declared parameter count).
-- A partial call that supplies several arguments keeps only the first of them,
-- exactly as aos does; programs written for aos depend on that shape.
function utils.curry(fn, arity)
  assert(type(fn) == "function", "function is required as first argument")
  arity = arity or debug.getinfo(fn, "u").nparams
  if arity < 2 then return fn end
  return function(...)
    local args = { ... }
    if #args >= arity then
      return fn(unpack(args))
    end
    local first = args[1]
    return utils.curry(function(...)
      return fn(first, ...)
    end, arity - #args)
  end
end

--- concat(a)(b): the elements of a followed by those of b.
utils.concat = utils.curry(function(a, b)
  assert(type(a) == "table", "first argument should be a table that is an array")
  assert(isArray(a), "first argument should be a table that is an array")
  if not isArray(b) then
    errorsite(".utils", 379)("second argument should be a table that is an array")
  end
  local result = {}
  for i = 1, #a do result[#result + 1] = a[i] end
  for i = 1, #b do result[#result + 1] = b[i] end
  return result
end, 2)

--- reduce(fn, initial, t): fold t from the left; a nil initial uses t[1].
utils.reduce = utils.curry(function(fn, initial, t)
  assert(type(fn) == "function", "first argument should be a function that accepts (result, value, key)")
  assert(type(t) == "table" and isArray(t), "third argument should be a table that is an array")
  local result = initial
  for k, v in pairs(t) do
    if result == nil then
      result = v
    else
      result = fn(result, v, k)
    end
  end
  return result
end, 3)

--- map(fn, t): a new array of fn(value, index).
utils.map = utils.curry(function(fn, data)
  assert(type(fn) == "function", "first argument should be a unary function")
  if not isArray(data) then
    errorsite(".utils", 469)("second argument should be an Array")
  end
  local result = {}
  for i = 1, #data do
    result[i] = fn(data[i], i)
  end
  return result
end, 2)

--- filter(fn, t): the elements for which fn(value) is truthy.
utils.filter = utils.curry(function(fn, data)
  assert(type(fn) == "function", "first argument should be a unary function")
  assert(type(data) == "table" and isArray(data), "second argument should be an Array")
  local result = {}
  for i = 1, #data do
    local v = data[i]
    if fn(v) then result[#result + 1] = v end
  end
  return result
end, 2)

--- find(fn, t): the first value for which fn(value) is truthy.
utils.find = utils.curry(function(fn, t)
  assert(type(fn) == "function", "first argument should be a unary function")
  assert(type(t) == "table", "second argument should be a table that is an array")
  for _, v in pairs(t) do
    if fn(v) then return v end
  end
end, 2)

--- propEq(name, value, object): object[name] == value.
utils.propEq = utils.curry(function(propName, value, object)
  assert(type(propName) == "string", "first argument should be a string")
  if type(value) ~= "string" then
    errorsite(".utils", 585)("second argument should be a string")
  end
  assert(type(object) == "table", "third argument should be a table<object>")
  return object[propName] == value
end, 3)

--- reverse(t): a new array in reverse order.
function utils.reverse(data)
  assert(type(data) == "table", "argument needs to be a table that is an array")
  local result = {}
  for i = #data, 1, -1 do
    result[#result + 1] = data[i]
  end
  return result
end

--- compose(f, g, h)(x) == f(g(h(x))).
utils.compose = utils.curry(function(...)
  local fns = { ... }
  local n = select("#", ...)
  return function(v)
    local result = v
    for i = n, 1, -1 do
      result = fns[i](result)
    end
    return result
  end
end, 2)

--- prop(name, object): object[name].
utils.prop = utils.curry(function(propName, object)
  return object[propName]
end, 2)

--- includes(value, array): whether the array holds value.
utils.includes = utils.curry(function(val, t)
  assert(type(t) == "table", "argument needs to be a table")
  assert(isArray(t), "argument should be a table that is an array")
  for _, v in ipairs(t) do
    if v == val then return true end
  end
  return false
end, 2)

--- keys(t): the keys of t (pairs order).
function utils.keys(t)
  assert(type(t) == "table", "argument needs to be a table")
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  return keys
end

--- values(t): the values of t (pairs order).
function utils.values(t)
  assert(type(t) == "table", "argument needs to be a table")
  local values = {}
  for _, v in pairs(t) do values[#values + 1] = v end
  return values
end

local specials = "[%^%$%(%)%%%.%[%]%*%+%?]"

--- Whether `value` satisfies a value pattern: "_" (present), a function, a Lua
-- pattern (unanchored), a plain string (equality) or a table of alternatives.
-- Strings are compared case-insensitively.
function utils.matchesPattern(pattern, value, msg)
  if not pattern then return false end
  if pattern == "_" then return true end
  local tp = type(pattern)
  if tp == "function" then
    if pattern(value, msg) then return true end
    return false
  end
  if tp == "string" then
    local tv = type(value)
    if tv ~= "string" and tv ~= "number" then return false end
    local p = pattern:lower()
    local v = tostring(value):lower()
    if p:find(specials) then
      return v:match(p) ~= nil
    end
    return v == p
  end
  if tp == "table" then
    for _, sub in pairs(pattern) do
      if utils.matchesPattern(sub, value, msg) then return true end
    end
  end
  return false
end

--- Whether `msg` matches a handler spec: a function (its raw verdict), a table
-- of key -> value pattern (every key must be present at the message root), or
-- a string (the Action).
function utils.matchesSpec(msg, spec)
  local ts = type(spec)
  if ts == "function" then
    return spec(msg)
  elseif ts == "table" then
    for key, pattern in pairs(spec) do
      local v = msg[key]
      if not v then return false end
      if not utils.matchesPattern(pattern, v, msg) then return false end
    end
    return true
  elseif ts == "string" then
    return msg.Action ~= nil and msg.Action == spec
  end
  return false
end

local normcache, normcount = {}, 0

--- normalize("x_custom_tag") == "X-Custom-Tag": the 2.0.4 tag name form.
function utils.normalize(s)
  if type(s) ~= "string" then return s end
  local hit = normcache[s]
  if hit then return hit end
  local r = s:gsub("_", "-"):lower():gsub("^%l", string.upper):gsub("%-%l", string.upper)
  if normcount >= 2048 then normcache, normcount = {}, 0 end
  normcache[s] = r
  normcount = normcount + 1
  return r
end

--- capitalize("foo-bar") == "Foo-bar".
function utils.capitalize(s)
  if type(s) ~= "string" or s == "" then return s end
  return s:sub(1, 1):upper() .. s:sub(2):lower()
end

return utils
