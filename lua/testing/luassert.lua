--
-- luassert's common forms for `aos test` specs (written for aos-py; not luassert's code).
--
--   assert(v, msg)                       plain Lua assert (a failure is reported as a failed test)
--   assert.are.equal(expected, actual)   ==           assert.are.same(expected, actual)   deep equality
--   assert.is_nil / is_not_nil / is_true / is_false / truthy / falsy / is_string ... (type checks)
--   assert.has_error(fn[, expected])     assert.has_no.errors(fn)
--   assert.matches(pattern, s[, init, plain])        assert.near(expected, actual, tolerance)
--   assert.unique(list[, deep])          assert.spy(s).was.called([n]) / was.called_with(...)
-- Every name takes the is / are / was / has / does / not / no words, chained (assert.is_not.equal)
-- or joined with underscores (assert.is_not_equal, assert.has_no_errors).
--
-- A failure raises a table { __assertion = true, message, expected, actual } that the runner reports.
--
local fmt = ...   -- value formatter shared with the runner

local type, pairs, ipairs, tostring, select, error, rawequal = type, pairs, ipairs, tostring, select, error, rawequal
local pack, unpack = table.pack, table.unpack

local luassert = {}
local assertions = {}   -- name -> { fn = function(state, args) -> ok, expected, actual, message, neg_message }

local FAILURE = {}
FAILURE.__index = FAILURE
FAILURE.__tostring = function(f)
  local s = f.message
  if f.expected ~= nil or f.actual ~= nil then
    s = s .. "\nExpected: " .. tostring(f.expected) .. "\nPassed in: " .. tostring(f.actual)
  end
  return s
end

local function fail(message, expected, actual)
  error(setmetatable({ __assertion = true, message = message, expected = expected, actual = actual }, FAILURE), 0)
end
luassert.fail_with = fail

-- deep comparison; returns true, or false and the path of the first difference
local function deepsame(a, b, path, seen)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false, path end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in pairs(a) do
    local ok, where = deepsame(v, b[k], path .. "[" .. fmt(k) .. "]", seen)
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "[" .. fmt(k) .. "]" end
  end
  return true
end
luassert.deepsame = deepsame

local function register(names, fn)
  for _, name in ipairs(names) do assertions[name] = fn end
end

-------------------------------------------------------------------------------
-- the assertions: fn(args) -> passed, info where info = { expected =, actual =, message =, negated = }
-------------------------------------------------------------------------------

register({ "equal", "equals" }, function(a)
  local e, v = a[1], a[2]
  return e == v, {
    message = "Expected objects to be equal.",
    negated = "Expected objects to not be equal.",
    expected = fmt(e), actual = fmt(v), n = 2,
  }
end)

register({ "same" }, function(a)
  local e, v = a[1], a[2]
  local ok, where = deepsame(e, v, "")
  local msg = "Expected objects to be the same."
  if not ok and where and where ~= "" then
    msg = "Expected objects to be the same (first difference at " .. where .. ")."
  end
  return ok, { message = msg, negated = "Expected objects to not be the same.",
    expected = fmt(e), actual = fmt(v), n = 2 }
end)

register({ "near" }, function(a)
  local e, v, tol = a[1], a[2], a[3]
  local ok = type(e) == "number" and type(v) == "number" and type(tol) == "number" and math.abs(e - v) <= tol
  return ok, { message = "Expected values to be near (within " .. tostring(tol) .. ").",
    negated = "Expected values to not be near (within " .. tostring(tol) .. ").",
    expected = fmt(e), actual = fmt(v), n = 3 }
end)

local function valueCheck(names, test, what)
  register(names, function(a)
    return test(a[1]), { message = "Expected " .. fmt(a[1]) .. " to be " .. what .. ".",
      negated = "Expected " .. fmt(a[1]) .. " to not be " .. what .. ".",
      expected = what, actual = fmt(a[1]), n = 1 }
  end)
end

valueCheck({ "nil" }, function(v) return v == nil end, "nil")
valueCheck({ "true" }, function(v) return v == true end, "true")
valueCheck({ "false" }, function(v) return v == false end, "false")
valueCheck({ "truthy" }, function(v) return v ~= nil and v ~= false end, "truthy")
valueCheck({ "falsy" }, function(v) return v == nil or v == false end, "falsy")
for _, t in ipairs({ "boolean", "number", "string", "table", "function", "userdata", "thread" }) do
  valueCheck({ t }, function(v) return type(v) == t end, "a " .. t)
end
valueCheck({ "integer" }, function(v) return math.type(v) == "integer" end, "an integer")
valueCheck({ "float" }, function(v) return math.type(v) == "float" end, "a float")

register({ "unique" }, function(a)
  local list, deep = a[1], a[2]
  local ok = true
  if type(list) ~= "table" then ok = false
  else
    local keys = {}
    for k in pairs(list) do keys[#keys + 1] = k end
    for i = 1, #keys do
      for j = i + 1, #keys do
        local x, y = list[keys[i]], list[keys[j]]
        if (deep and deepsame(x, y, "")) or x == y then ok = false end
      end
    end
  end
  return ok, { message = "Expected object to have unique values.",
    negated = "Expected object to not have unique values.", expected = "unique values", actual = fmt(list), n = 1 }
end)

register({ "match", "matches", "matching" }, function(a)
  local pattern, s, init, plain = a[1], a[2], a[3], a[4]
  local ok = false
  if type(pattern) == "string" and (type(s) == "string" or type(s) == "number") then
    ok = string.find(tostring(s), pattern, init, plain) ~= nil
  end
  return ok, { message = "Expected strings to match.", negated = "Expected strings not to match.",
    expected = "matching " .. fmt(pattern), actual = fmt(s), n = 2 }
end)

-- the message of an error value, without the "file:line: " that error() adds (luassert does the same)
local function errtext(err)
  if type(err) == "string" then
    return (err:gsub("^.-:%d+: ", "", 1))
  end
  return err
end

register({ "error", "errors", "error_matches", "error_match" }, function(a, name)
  local fn, expected = a[1], a[2]
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call) then
    return false, { message = "has_error expects a function.", negated = "has_error expects a function.",
      expected = "a function", actual = fmt(fn), n = 2 }
  end
  local ok, err = pcall(fn)
  if ok then
    return false, { message = "Expected an error.", negated = "Expected no error.",
      expected = expected ~= nil and ("error " .. fmt(expected)) or "an error", actual = "no error", n = 2 }
  end
  if type(err) == "table" and err.__assertion then err = err.message end
  if expected == nil then
    return true, { message = "Expected an error.", negated = "Expected no error.",
      expected = "no error", actual = "error " .. fmt(errtext(err)), n = 2 }
  end
  local got = errtext(err)
  local same
  if name == "error_matches" or name == "error_match" then
    same = type(got) == "string" and type(expected) == "string" and got:find(expected, a[3], a[4]) ~= nil
  elseif type(expected) == "table" and type(err) == "table" then
    same = deepsame(expected, err, "")
  else
    same = got == expected or err == expected
  end
  return same, { message = "Expected a different error.", negated = "Expected no error like this.",
    expected = "error " .. fmt(expected), actual = "error " .. fmt(got), n = 2 }
end)

-------------------------------------------------------------------------------
-- spies and stubs
-------------------------------------------------------------------------------
local spies = setmetatable({}, { __mode = "k" })
local spy = {}

function spy.new(fn)
  local s = { calls = {}, returnvals = {} }
  s.callback = fn
  function s.clear(self)
    (self or s).calls = {}
    return self or s
  end
  function s.revert(self) return self or s end
  setmetatable(s, {
    __call = function(_, ...)
      local args = pack(...)
      s.calls[#s.calls + 1] = { vals = args, refs = args }
      if s.callback then
        local r = pack(s.callback(...))
        s.returnvals[#s.returnvals + 1] = r
        return unpack(r, 1, r.n)
      end
    end,
  })
  spies[s] = true
  return s
end

-- Put spy `s` in target[key]; s:revert() puts the original back.
local function install(target, key, s)
  local original = target[key]
  s.revert = function(self)
    target[key] = original
    return self or s
  end
  target[key] = s
  return s
end

function spy.on(target, key)
  return install(target, key, spy.new(target[key]))
end

function spy.is_spy(v) return spies[v] == true end

local function stub(target, key, ...)
  local values = pack(...)
  local s = spy.new(function() return unpack(values, 1, values.n) end)
  if target == nil then return s end
  return install(target, key, s)
end

local stubmod = setmetatable({ new = stub }, { __call = function(_, ...) return stub(...) end })

local function args_same(call, want)
  if call.vals.n ~= want.n then
    -- trailing nils are not significant
    local n1, n2 = call.vals.n, want.n
    while n1 > 0 and call.vals[n1] == nil do n1 = n1 - 1 end
    while n2 > 0 and want[n2] == nil do n2 = n2 - 1 end
    if n1 ~= n2 then return false end
  end
  for i = 1, math.max(call.vals.n, want.n) do
    local w = want[i]
    if type(w) == "table" and w.__matcher then
      if not w.test(call.vals[i]) then return false end
    elseif not deepsame(w, call.vals[i], "") then
      return false
    end
  end
  return true
end

local function spyCheck(names, test)
  register(names, function(a, _, subject)
    local s = subject
    if not spies[s] then
      return false, { message = "Expected a spy.", negated = "Expected a spy.", expected = "a spy", actual = fmt(s) }
    end
    return test(s, a)
  end)
end

spyCheck({ "called" }, function(s, a)
  local n = a[1]
  local count = #s.calls
  local ok = (n == nil and count > 0) or (n ~= nil and count == n)
  return ok, { message = "Expected the spy to be called" .. (n and (" " .. n .. " time(s)") or "") .. ".",
    negated = "Expected the spy not to be called" .. (n and (" " .. n .. " time(s)") or "") .. ".",
    expected = n and (tostring(n) .. " call(s)") or "called", actual = tostring(count) .. " call(s)" }
end)

spyCheck({ "called_with" }, function(s, a)
  local want = pack(unpack(a, 1, a.n))
  local ok = false
  for _, c in ipairs(s.calls) do
    if args_same(c, want) then ok = true break end
  end
  local last = s.calls[#s.calls]
  return ok, { message = "Expected the spy to be called with the given arguments.",
    negated = "Expected the spy not to be called with the given arguments.",
    expected = fmt({ unpack(want, 1, want.n) }),
    actual = last and fmt({ unpack(last.vals, 1, last.vals.n) }) or "no calls" }
end)

spyCheck({ "returned_with" }, function(s, a)
  local want = pack(unpack(a, 1, a.n))
  local ok = false
  for _, r in ipairs(s.returnvals) do
    if args_same({ vals = r }, want) then ok = true break end
  end
  return ok, { message = "Expected the spy to have returned the given values.",
    negated = "Expected the spy not to have returned the given values.",
    expected = fmt({ unpack(want, 1, want.n) }), actual = tostring(#s.returnvals) .. " return(s)" }
end)

-------------------------------------------------------------------------------
-- matchers (for called_with): match._, match.is_string(), match.is_table(), match.is_truthy(), ...
-------------------------------------------------------------------------------
local match = {}
local function matcher(test, name) return { __matcher = true, test = test, name = name } end
match._ = matcher(function() return true end, "_")
for _, t in ipairs({ "boolean", "number", "string", "table", "function", "userdata", "thread", "nil" }) do
  match["is_" .. t] = function() return matcher(function(v) return type(v) == t end, "is_" .. t) end
end
match.is_truthy = function() return matcher(function(v) return v ~= nil and v ~= false end, "is_truthy") end
match.is_falsy = function() return matcher(function(v) return v == nil or v == false end, "is_falsy") end
match.is_true = function() return matcher(function(v) return v == true end, "is_true") end
match.is_false = function() return matcher(function(v) return v == false end, "is_false") end
match.is_equal = function(x) return matcher(function(v) return v == x end, "is_equal") end
match.equals = match.is_equal
match.is_same = function(x) return matcher(function(v) return deepsame(x, v, "") end, "is_same") end
match.same = match.is_same
match.is_matching = function(p) return matcher(function(v) return type(v) == "string" and v:find(p) ~= nil end, "is_matching") end
match.matches = match.is_matching
match.is_not_nil = function() return matcher(function(v) return v ~= nil end, "is_not_nil") end

-------------------------------------------------------------------------------
-- chains: assert.is_not.equal, assert.are.same, assert.has_no.errors, assert.spy(s).was.called()
-------------------------------------------------------------------------------
local MODIFIERS = {
  is = true, are = true, was = true, has = true, does = true, to = true, be = true, ["have"] = true,
  the = true, a = true, an = true, it = true, that = true, with_ = true,
}
local NEGATIONS = { ["not"] = true, no = true }

local function split(key)
  local parts = {}
  for part in key:gmatch("[^_]+") do parts[#parts + 1] = part end
  return parts
end

local makeChain

local function runAssertion(name, negated, subject, ...)
  local args = pack(...)
  local a = assertions[name]
  local passed, info = a(args, name, subject)
  passed = passed and true or false
  if negated then passed = not passed end
  if passed then
    if subject ~= nil then return subject end
    return ...
  end
  local custom
  if info.n then custom = args[info.n + 1] end
  if name == "near" or name == "match" or name == "matches" or name == "matching" then
    custom = args[(name == "near" and 4) or 5]
    if name ~= "near" and type(args[3]) == "string" and args[4] == nil then custom = args[3] end
  end
  local message = negated and info.negated or info.message
  if type(custom) == "string" then message = custom end
  local expected, actual = info.expected, info.actual
  if negated and expected ~= nil then
    if name == "error" or name == "errors" then
      expected = "no error"
    else
      expected = "not " .. tostring(expected)
    end
  end
  fail(message, expected, actual)
end

local function resolve(key, negated, subject)
  if type(key) ~= "string" then return nil end
  key = key:lower()
  if assertions[key] then
    return function(...) return runAssertion(key, negated, subject, ...) end
  end
  local parts = split(key)
  local i = 1
  local neg = negated
  while i <= #parts and (MODIFIERS[parts[i]] or NEGATIONS[parts[i]]) do
    if NEGATIONS[parts[i]] then neg = not neg end
    i = i + 1
  end
  if i > #parts then
    return makeChain(neg, subject)
  end
  local name = table.concat(parts, "_", i)
  if assertions[name] then
    return function(...) return runAssertion(name, neg, subject, ...) end
  end
  -- "not_called" style: a trailing negation inside the name
  if parts[i] and NEGATIONS[parts[i]] then
    name = table.concat(parts, "_", i + 1)
    if assertions[name] then
      return function(...) return runAssertion(name, not neg, subject, ...) end
    end
  end
  return nil
end

makeChain = function(negated, subject)
  return setmetatable({}, {
    __index = function(_, key)
      local r = resolve(key, negated, subject)
      if r == nil then
        error("luassert: unknown assertion or modifier '" .. tostring(key) .. "'", 2)
      end
      return r
    end,
  })
end

local assert_mt = {
  __index = function(_, key)
    if key == "spy" or key == "stub" then
      return function(s) return makeChain(false, s) end
    end
    if key == "register" then
      return function(_, kind, name, fn, positive, negative)
        if kind == "assertion" then luassert.register(kind, name, fn, positive, negative) end
      end
    end
    local r = resolve(key, false, nil)
    if r == nil then
      error("luassert: unknown assertion or modifier '" .. tostring(key) .. "'", 2)
    end
    return r
  end,
  __call = function(_, v, message, ...)
    if v == nil or v == false then
      fail(type(message) == "string" and message or (message ~= nil and tostring(message)) or "assertion failed!")
    end
    return v, message, ...
  end,
}

local assert = setmetatable({}, assert_mt)

--- luassert's extension point: register(kind, name, fn(state, args) -> bool, positive_msg, negative_msg)
function luassert.register(kind, name, fn, positive, negative)
  assertions[name] = function(args)
    local ok = fn({}, args, 1)
    return ok, { message = type(positive) == "string" and positive or ("assertion " .. name .. " failed"),
      negated = type(negative) == "string" and negative or ("assertion " .. name .. " failed"),
      expected = args.n >= 1 and fmt(args[1]) or nil, actual = args.n >= 2 and fmt(args[2]) or nil, n = args.n }
  end
end

luassert.assert = assert
luassert.spy = spy
luassert.stub = stubmod
luassert.match = match
luassert.mock = function(t, dostub)
  for k, v in pairs(t) do
    if type(v) == "function" then
      if dostub then stub(t, k) else spy.on(t, k) end
    end
  end
  return t
end

return luassert
