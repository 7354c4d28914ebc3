--
-- busted's spec API for `aos test` (written for aos-py; not busted's code): describe / context,
-- it / spec / test, pending, before_each / after_each, setup / teardown (lazy_ and strict_ forms),
-- finally, insulate / expose, and luassert's assert, spy, stub, mock and match as globals.
--
-- Loaded by the spec host with (report, clock, options, fmt, luassert, source):
--   report(status, line, name, message, expected, actual, ms, detail)  one call per test
--     status: "pass" | "fail" (an assertion) | "error" (any other error) | "pending"
--   options.filter  run only tests whose full name contains it (plain text or a Lua pattern)
--   options.bail    stop at the first failure
--   source          the spec file's chunk source ("@path"): errors are located in that file
-- Returns { run = function() ... end, handler = <error handler>, api = <busted table> }.
--
local report, clock, options, fmt, luassert, source = ...

local type, pairs, ipairs, tostring, xpcall, error = type, pairs, ipairs, tostring, xpcall, error
local insert, concat = table.insert, table.concat

local filter = options.filter
local bail = options.bail

local function newBlock(name, parent, line)
  return { name = name, parent = parent, line = line, children = {},
    setup = {}, teardown = {}, strict_setup = {}, strict_teardown = {}, before_each = {}, after_each = {} }
end

local root = newBlock(nil, nil, 0)
local current = root
local running = nil
local stopped = false

-- the line in the spec file of the innermost frame that runs there (from `level` up)
local function specLine(level)
  for l = level + 1, 200 do
    local info = debug.getinfo(l, "Sl")
    if not info then break end
    if info.source == source and info.currentline and info.currentline > 0 then
      return info.currentline
    end
  end
  return nil
end

local function handler(err)
  local rec = {}
  if type(err) == "table" and err.__pending then
    rec.pending = true
    rec.message = err.message
  elseif type(err) == "table" and err.__assertion then
    rec.assertion = true
    rec.message = err.message
    rec.expected = err.expected
    rec.actual = err.actual
  elseif type(err) == "string" then
    rec.message = err
  else
    local mt = getmetatable(err)
    if type(err) == "table" and mt and mt.__tostring then
      rec.message = tostring(err)
    else
      rec.message = fmt(err)
    end
  end
  rec.line = specLine(2)
  local lines = {}
  for line in debug.traceback("", 2):gmatch("[^\n]+") do
    if not (line:find('[string "testing.', 1, true) or line:find("<python>", 1, true)
      or line:find("[C]: in function 'error'", 1, true) or line:find("[C]: in function 'xpcall'", 1, true)
      or line:find("(...tail calls...)", 1, true) or line == "stack traceback:" or line:match("^%s*$")) then
      lines[#lines + 1] = line
    end
  end
  rec.traceback = #lines > 0 and ("stack traceback:\n" .. table.concat(lines, "\n")) or nil
  return rec
end

local function fullName(block, name)
  local parts = {}
  local b = block
  while b and b.name do
    insert(parts, 1, b.name)
    b = b.parent
  end
  if name then parts[#parts + 1] = name end
  return concat(parts, " ")
end

local function selected(name)
  if not filter or filter == "" then return true end
  if name:find(filter, 1, true) then return true end
  local ok, found = pcall(string.find, name, filter)
  return ok and found ~= nil
end

-------------------------------------------------------------------------------
-- the DSL
-------------------------------------------------------------------------------
local api = {}

function api.describe(name, fn)
  local block = newBlock(tostring(name), current, specLine(1) or 0)
  insert(current.children, { kind = "block", block = block })
  if type(fn) ~= "function" then return end
  local prev = current
  current = block
  local ok, rec = xpcall(fn, handler)
  current = prev
  if not ok then
    insert(block.children, { kind = "broken", rec = rec, line = rec.line or block.line })
  end
end
api.context = api.describe
api.insulate = api.describe
api.expose = api.describe

function api.it(name, fn)
  if running then
    error("it() cannot be nested inside another test", 2)
  end
  insert(current.children, { kind = "test", name = tostring(name), fn = fn, line = specLine(1) or 0,
    block = current, pending = type(fn) ~= "function" })
end
api.spec = api.it
api.test = api.it

function api.pending(name, fn)
  if running then
    error({ __pending = true, message = name ~= nil and tostring(name) or nil }, 0)
  end
  insert(current.children, { kind = "test", name = tostring(name), line = specLine(1) or 0,
    block = current, pending = true })
end

local function hook(list)
  return function(fn)
    if type(fn) ~= "function" then error("a hook needs a function", 2) end
    insert(current[list], fn)
  end
end
api.before_each = hook("before_each")
api.after_each = hook("after_each")
api.setup = hook("setup")
api.lazy_setup = api.setup
api.teardown = hook("teardown")
api.lazy_teardown = api.teardown
api.strict_setup = hook("strict_setup")
api.strict_teardown = hook("strict_teardown")

function api.finally(fn)
  if not running then error("finally() is only allowed inside a test", 2) end
  insert(running.finally, fn)
end

function api.randomize() end

-------------------------------------------------------------------------------
-- running
-------------------------------------------------------------------------------
local function emit(status, line, name, rec, ms)
  local message, expected, actual, detail
  if rec then
    message, expected, actual, detail = rec.message, rec.expected, rec.actual, rec.traceback
  end
  report(status, line or 0, name, message, expected, actual, ms or 0, detail)
  if (status == "fail" or status == "error") and bail then
    stopped = true
  end
end

local function hasTests(block)
  for _, c in ipairs(block.children) do
    if c.kind == "test" and selected(fullName(block, c.name)) then return true end
    if c.kind == "broken" then return true end
    if c.kind == "block" and hasTests(c.block) then return true end
  end
  return false
end

local function failAll(block, rec, what)
  for _, c in ipairs(block.children) do
    if c.kind == "test" and selected(fullName(block, c.name)) then
      emit("error", rec.line or c.line, fullName(block, c.name),
        { message = what .. ": " .. tostring(rec.message), traceback = rec.traceback }, 0)
    elseif c.kind == "block" then
      failAll(c.block, rec, what)
    end
  end
end

local function runTest(test, chain)
  local name = fullName(test.block, test.name)
  if test.pending then
    emit("pending", test.line, name, nil, 0)
    return
  end
  local t0 = clock()
  running = { finally = {} }
  local rec
  for _, b in ipairs(chain) do
    for _, fn in ipairs(b.before_each) do
      local ok, r = xpcall(fn, handler)
      if not ok then rec = r break end
    end
    if rec then break end
  end
  if not rec then
    local ok, r = xpcall(test.fn, handler)
    if not ok then rec = r end
  end
  for i = #chain, 1, -1 do
    for _, fn in ipairs(chain[i].after_each) do
      local ok, r = xpcall(fn, handler)
      if not ok and not rec then rec = r end
    end
  end
  for _, fn in ipairs(running.finally) do
    local ok, r = xpcall(fn, handler)
    if not ok and not rec then rec = r end
  end
  running = nil
  local ms = (clock() - t0) * 1000
  if not rec then
    emit("pass", test.line, name, nil, ms)
  elseif rec.pending then
    emit("pending", test.line, name, rec, ms)
  elseif rec.assertion then
    emit("fail", rec.line or test.line, name, rec, ms)
  else
    emit("error", rec.line or test.line, name, rec, ms)
  end
end

local function runHooks(list)
  for _, fn in ipairs(list) do
    local ok, rec = xpcall(fn, handler)
    if not ok then return rec end
  end
  return nil
end

local function runBlock(block, chain)
  local strict = #block.strict_setup > 0 or #block.strict_teardown > 0
  local any = hasTests(block)
  if not any and not strict then return end
  local setupErr = runHooks(block.strict_setup)
  if not setupErr and any then setupErr = runHooks(block.setup) end
  for _, c in ipairs(block.children) do
    if stopped then break end
    if c.kind == "block" then
      if setupErr then
        failAll(c.block, setupErr, "setup failed")
      else
        local sub = { table.unpack(chain) }
        sub[#sub + 1] = c.block
        runBlock(c.block, sub)
      end
    elseif c.kind == "test" then
      if selected(fullName(block, c.name)) then
        if setupErr then
          emit("error", setupErr.line or c.line, fullName(block, c.name),
            { message = "setup failed: " .. tostring(setupErr.message), traceback = setupErr.traceback }, 0)
        else
          runTest(c, chain)
        end
      end
    elseif c.kind == "broken" then
      emit("error", c.line, fullName(block, nil), c.rec, 0)
    end
  end
  local tdErr = nil
  if any then tdErr = runHooks(block.teardown) end
  tdErr = runHooks(block.strict_teardown) or tdErr
  if tdErr then
    emit("error", tdErr.line or block.line, fullName(block, "(teardown)"), tdErr, 0)
  end
end

local M = { api = api, handler = handler }

function M.run()
  runBlock(root, { root })
end

function M.install(env)
  for k, v in pairs(api) do env[k] = v end
  env.assert = luassert.assert
  env.spy = luassert.spy
  env.stub = luassert.stub
  env.mock = luassert.mock
  env.match = luassert.match
  env.busted = api
end

return M
