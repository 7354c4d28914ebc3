--
-- The host bridge of one aos-py process (not a requirable module).
--
-- Run once per Lua state by aos_py.runtime with:
--   load_source(path, chunkname) -> chunk | nil   the bundled library (lua/), compiled
--   resolve_data(id)  -> host path | nil    the read-only /data/<id> mount
--   make_llama()      -> call(method, ...)  the `_llama` host module, or nil
--   budget, step                            instructions per message (nil = no limit), hook interval
-- It makes the state deterministic and sandboxed, installs the module
-- searcher, loads .process and returns (entry, ctl) where
--   entry(msg_src, env_src) -> ok, json_text | error_text, gas
-- takes the message and env as Lua table constructors and returns the result
-- of process.handle encoded as JSON.
--
local load_source, resolve_data, make_llama, budget, step = ...

local type, select, error, pcall, tostring, setmetatable = type, select, error, pcall, tostring, setmetatable
local raw_load = load
local sethook = debug.sethook
local co_create, co_resume, co_running = coroutine.create, coroutine.resume, coroutine.running
local io_open = io.open
local os_date = os.date
local floor = math.floor
local pack, unpack = table.pack, table.unpack

-------------------------------------------------------------------------------
-- No Python object is reachable from Lua.
-------------------------------------------------------------------------------
python = nil
package.loaded.python = nil

-------------------------------------------------------------------------------
-- Compute budget: a count hook on every thread (hooks are per coroutine in
-- Lua 5.3, so coroutine.create / wrap install it on each new coroutine).
-- Once the budget is spent the hook fires on every instruction of every
-- thread it reaches, so a pcall loop cannot swallow the error.
-------------------------------------------------------------------------------
local ctl = { used = 0, budget = budget, exhausted = false }
local STEP = step or 1000
local BUDGET_ERROR = "compute budget exceeded: the message ran more than "
  .. tostring(budget) .. " Lua instructions"

local hook
hook = function()
  local used = ctl.used + STEP
  ctl.used = used
  if used > ctl.budget then
    ctl.exhausted = true
    sethook(co_running(), hook, "", 1)
    error(BUDGET_ERROR, 0)
  end
end

local function arm(co)
  if budget then
    sethook(co, hook, "", STEP)
  end
  return co
end

coroutine.create = function(f)
  return arm(co_create(f))
end

-- Lua runs two kinds of code with hooks switched off, where the budget cannot stop it:
--   * the message handler of xpcall when the error came from the budget hook itself (the hook is still
--     "running" when Lua calls the handler): once the budget is spent, handlers are not called at all;
--   * __gc finalizers (run from the collector, and at lua_close under the host's lock): a process's
--     tables are never marked for finalization (the metatable's __gc is set after setmetatable, which
--     Lua 5.3 ignores for marking; getmetatable still shows it).
local raw_xpcall, raw_setmetatable, rawget_, rawset_ = xpcall, setmetatable, rawget, rawset
xpcall = function(f, handler, ...)
  if type(handler) ~= "function" then
    return raw_xpcall(f, handler, ...)
  end
  return raw_xpcall(f, function(e)
    if ctl.exhausted then return e end
    return handler(e)
  end, ...)
end
_G.setmetatable = function(t, mt)   -- (the global: `setmetatable` is a local here)
  local gc = type(mt) == "table" and rawget_(mt, "__gc") or nil
  if gc == nil then
    return raw_setmetatable(t, mt)
  end
  rawset_(mt, "__gc", nil)
  local ok, res = pcall(raw_setmetatable, t, mt)
  rawset_(mt, "__gc", gc)
  if not ok then error(res, 2) end
  return res
end

coroutine.wrap = function(f)
  local co = arm(co_create(f))
  return function(...)
    local res = pack(co_resume(co, ...))
    if res[1] then
      return unpack(res, 2, res.n)
    end
    local err = res[2]
    if type(err) == "string" then
      error(err, 2)
    end
    error(err, 0)
  end
end

-------------------------------------------------------------------------------
-- Sandbox.
-------------------------------------------------------------------------------
local function unavailable(name)
  return function()
    error(name .. " is not available in an aos process", 2)
  end
end

-- Only text chunks: precompiled bytecode is never loaded.
load = function(chunk, chunkname, mode, ...)
  if select("#", ...) > 0 then
    return raw_load(chunk, chunkname, "t", (...))
  end
  return raw_load(chunk, chunkname, "t")
end

-- /data/<id> -> host path (read-only), or nil.
local function data_file(path)
  if type(path) ~= "string" then return nil end
  local id = path:match("^/data/([%w%-_%.]+)$")
  if not id or id == "." or id == ".." then return nil end
  if not resolve_data then return nil end
  local host = resolve_data(id)
  if type(host) ~= "string" then return nil end
  return host
end

local function is_data_path(path)
  return type(path) == "string" and path:sub(1, 6) == "/data/"
end

io.open = function(path, mode)
  mode = mode or "r"
  if not is_data_path(path) then
    error("io.open: only /data/<id> paths can be opened in an aos process (got " .. tostring(path) .. ")", 2)
  end
  if mode ~= "r" and mode ~= "rb" then
    error("io.open: /data is read-only (mode '" .. tostring(mode) .. "')", 2)
  end
  local host = data_file(path)
  if not host then
    return nil, path .. ": No such file or directory", 2
  end
  return io_open(host, "rb")
end

io.lines = function(path, ...)
  if path == nil then
    error("io.lines: standard input is not available in an aos process", 2)
  end
  local f, err = io.open(path, "r")
  if not f then error(err, 2) end
  local formats = pack(...)
  return function()
    local r = pack(f:read(unpack(formats, 1, formats.n)))
    if r[1] == nil then f:close() end
    return unpack(r, 1, r.n)
  end
end

local null_file = setmetatable({}, { __name = "FILE*", __tostring = function() return "file (null)" end })
function null_file.write(self) return self end
function null_file.read() return nil end
function null_file.lines() return function() return nil end end
function null_file.flush(self) return self end
function null_file.close() return true end
function null_file.seek() return 0 end
function null_file.setvbuf() return true end

-- io.write output goes nowhere, as in aos.
io.write = function() return null_file end
io.read = function() return nil end
io.stdout, io.stderr, io.stdin = null_file, null_file, null_file
io.input = function() return null_file end
io.output = function() return null_file end
io.close = function(f)
  if f == nil then return true end
  return f:close()
end
io.popen = unavailable("io.popen")
io.tmpfile = unavailable("io.tmpfile")

loadfile = function(path, mode, ...)
  local host = is_data_path(path) and data_file(path)
  if not is_data_path(path) then
    error("loadfile: only /data/<id> paths can be loaded in an aos process (got " .. tostring(path) .. ")", 2)
  end
  if not host then
    return nil, "cannot open " .. path
  end
  local f = io_open(host, "rb")
  if not f then return nil, "cannot open " .. path end
  local src = f:read("a")
  f:close()
  return load(src, "@" .. path, mode, ...)
end

dofile = function(path)
  local f, err = loadfile(path)
  if not f then error(err, 2) end
  return f()
end

os.execute = unavailable("os.execute")
os.exit = unavailable("os.exit")
os.remove = unavailable("os.remove")
os.rename = unavailable("os.rename")
os.tmpname = unavailable("os.tmpname")
os.setlocale = function() return "C" end
os.getenv = function() return nil end
-- No wall clock: os.time() is the message Timestamp once a message runs.
os.time = function() return 0 end
os.clock = function() return 0.0 end
-- os.date is always UTC and, without a time, uses the message time (seconds).
os.date = function(format, t)
  format = format or "%c"
  if type(format) == "string" and format:sub(1, 1) ~= "!" then
    format = "!" .. format
  end
  if t == nil then
    local now = tonumber(os.time()) or 0
    t = floor(now / 1000)
  end
  return os_date(format, t)
end

package.loadlib = unavailable("package.loadlib")
package.searchpath = unavailable("package.searchpath")
package.path = ""
package.cpath = ""

debug.sethook = unavailable("debug.sethook")
debug.gethook = unavailable("debug.gethook")
debug.getregistry = unavailable("debug.getregistry")
debug.getupvalue = unavailable("debug.getupvalue")
debug.setupvalue = unavailable("debug.setupvalue")
debug.upvaluejoin = unavailable("debug.upvaluejoin")
debug.getlocal = unavailable("debug.getlocal")
debug.setlocal = unavailable("debug.setlocal")
debug.getuservalue = unavailable("debug.getuservalue")
debug.setuservalue = unavailable("debug.setuservalue")
debug.debug = unavailable("debug.debug")

-- Before the first message math.random is a fixed stub (the process seeds it).
math.random = function() return 0.5 end
math.randomseed = function() end

-------------------------------------------------------------------------------
-- Module loading: `.a.b` / `a.b` -> lua/a/b.lua or lua/a/b/init.lua, loaded
-- with the required name as chunk name ([string ".handlers"]:N:).
-------------------------------------------------------------------------------
local function bundle_searcher(name)
  if type(name) ~= "string" then return nil end
  local path = name:gsub("^%.", ""):gsub("%.", "/")
  if path == "" or path:find("^_") or path:find("/_") then
    return "\n\tno bundled module '" .. name .. "'"
  end
  -- precompiled by the host from the bundled sources (or the source text)
  local src = load_source(path .. ".lua", name) or load_source(path .. "/init.lua", name)
  if not src then
    return "\n\tmodule " .. name .. " not found"
  end
  local chunk, err = raw_load(src, name, "bt")
  if not chunk then
    error("error loading module '" .. name .. "':\n\t" .. err, 0)
  end
  return chunk, name
end

local preload_searcher = package.searchers[1]
package.searchers[1] = preload_searcher
package.searchers[2] = bundle_searcher
package.searchers[3] = nil
package.searchers[4] = nil

if make_llama then
  package.preload["_llama"] = function()
    local call = make_llama()
    local M = {}
    -- the host's log / progress callbacks: kept here and called with the events each host call reports
    -- (the host never calls into Lua while it works)
    local callbacks = {}
    local function play(r)
      for i = 3, r.n, 3 do
        local fn = callbacks[r[i]]
        if fn then fn(r[i + 1], r[i + 2]) end
      end
    end
    for _, method in ipairs({
      "load", "set_prompt", "next", "run", "add", "stop", "info", "save_state",
      "load_state", "clear_state", "set_log_level", "set_callbacks",
    }) do
      M[method] = function(...)
        if method == "set_callbacks" then
          local on_log, on_progress = ...
          callbacks = { type(on_log) == "function" and on_log or nil,
                        type(on_progress) == "function" and on_progress or nil }
        end
        local r = table.pack(call(method, ...))
        if r.n > 2 then play(r) end
        if not r[1] then error(r[2], 2) end
        return r[2]
      end
    end
    return M
  end
end

-------------------------------------------------------------------------------
-- Lua 5.3 compatibility that aos expects (bit32, math.pow and friends).
-------------------------------------------------------------------------------
do
  local ok, b32 = pcall(require, ".bit32")
  if ok then bit32 = b32 end
  local okm, mc = pcall(require, ".mathcompat")
  if okm and type(mc) == "table" then
    for k, v in pairs(mc) do
      if math[k] == nil then math[k] = v end
    end
  end
end

-------------------------------------------------------------------------------
-- The process and the entry point.
-------------------------------------------------------------------------------
if budget then sethook(hook, "", STEP) end

local process = require(".process")
local json = require("json")

-- `handle(msgJSON, envJSON)` as the reference module exports it.
function handle(msgJSON, envJSON)
  local ok, msg = pcall(json.decode, msgJSON)
  if not ok then
    print(msg)
    return ""
  end
  local envArg = json.decode(envJSON)
  local status, response = pcall(process.handle, msg, envArg)
  local okEnc, out = pcall(json.encode, { ok = status, response = response })
  if not okEnc then
    print(out)
    return ""
  end
  return out
end

local env_cache_src, env_cache_fn

local function run(msg, env_src)
  if env_src ~= env_cache_src then
    local env_fn, env_err = raw_load(env_src, "=env", "t", nil)
    if not env_fn then
      return false, "invalid env: " .. env_err, 0
    end
    env_cache_src, env_cache_fn = env_src, env_fn
  end
  local ok, res = pcall(process.handle, msg, env_cache_fn())
  local untouched = process.untouched == true
  process.untouched = nil   -- (a flag for this message only: no trace in the process's state)
  if not ok then
    -- untouched: it failed before it could change anything lasting (the runtime need not be rebuilt)
    return false, tostring(res), ctl.used, untouched
  end
  local okEnc, out = pcall(json.encode_result, res)
  if not okEnc then
    return false, tostring(out), ctl.used
  end
  return true, out, ctl.used
end

-- entry(msg_src, env_src): the message as the source of a table constructor.
local function entry(msg_src, env_src)
  if budget then sethook(hook, "", STEP) end
  ctl.used = 0
  local msg_fn, err = raw_load(msg_src, "=message", "t", nil)
  if not msg_fn then
    return false, "invalid message: " .. err, 0
  end
  return run(msg_fn(), env_src)
end

-- entry_flat(env_src, nroot, ntags, k1, v1, ..., name1, value1, ...): a message
-- whose fields are all scalars plus a Tags list of name/value pairs, passed as
-- arguments (no compile step).
local function entry_flat(env_src, nroot, ntags, ...)
  if budget then sethook(hook, "", STEP) end
  ctl.used = 0
  local a = { ... }
  local msg = {}
  local i = 1
  for _ = 1, nroot do
    msg[a[i]] = a[i + 1]
    i = i + 2
  end
  if ntags >= 0 then
    local tags = {}
    for j = 1, ntags do
      tags[j] = { name = a[i], value = a[i + 1] }
      i = i + 2
    end
    msg.Tags = tags
  end
  return run(msg, env_src)
end

-- state_dump(): the process's global state as canonical text (sorted keys,
-- shared tables written once), for comparing a process with a replay of its
-- log. Functions and coroutines appear by kind only; the standard library and
-- the bundled modules' functions do not vary between replays.
local LIBRARIES = {
  string = true, table = true, math = true, io = true, os = true, coroutine = true,
  debug = true, utf8 = true, package = true, bit32 = true, _G = true,
}

local function state_dump()
  local out, n = {}, 0
  local seen, ids = {}, 0
  local function emit(s)
    n = n + 1
    out[n] = s
  end
  local function key_less(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    if ta == "boolean" then return (not a) and b end
    return false
  end
  local function scalar(v)
    local t = type(v)
    if t == "string" then return string.format("%q", v) end
    if t == "number" then
      if math.type(v) == "integer" then return tostring(v) end
      return string.format("%.17g", v)
    end
    if t == "boolean" or t == "nil" then return tostring(v) end
    return "<" .. t .. ">"
  end
  local function walk(v, top)
    if type(v) ~= "table" then
      emit(scalar(v))
      return
    end
    if seen[v] then
      emit("@" .. seen[v])
      return
    end
    ids = ids + 1
    seen[v] = ids
    local keys = {}
    for k in pairs(v) do
      if not (top and LIBRARIES[k]) then keys[#keys + 1] = k end
    end
    table.sort(keys, key_less)
    emit("{")
    for _, k in ipairs(keys) do
      if type(k) == "table" then walk(k, false) else emit(scalar(k)) end
      emit("=")
      walk(v[k], false)
      emit(";")
    end
    emit("}")
  end
  walk(_G, true)
  return table.concat(out)
end

-- the loading garbage goes now, not later in some message's time
collectgarbage()

return entry, ctl, entry_flat, state_dump
