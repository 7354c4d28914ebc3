--
-- Host hooks of one process of the `aos test` in-memory node (aos_py/testing/sim.py).
--
-- Run once in each process's Lua state, outside any message, by the test host (never by
-- process code). Returns a table of functions the host calls directly:
--   send(msg_json)      -> the outbox message this process's ao.send builds for msg (JSON),
--                          with the process's own Reference counter, as aolite's send does
--   set_globals(json)   -> assign spawn tags (and Owner / Name) as process globals, as aolite does
--   after_boot()        -> drop the spawn message from the Inbox (aolite processes boot without one)
--   install_eval()      -> the EvalRequest / EvalResponse handlers aolite adds to every process
--   eval_first() / eval_restore()  -> the EvalRequest handler first while an eval runs, then back in place
--   serialize(value)    -> `return <Lua constructor>` text of a value (functions dropped, cycles cut)
--   use_module(name)    -> aolite's Module tag: the Lua module `name` becomes the process module
--
local json = require("json")
local hooks = {}

local type, pairs, ipairs, tostring, pcall, error = type, pairs, ipairs, tostring, pcall, error
local format, concat, sort = string.format, table.concat, table.sort
local math_type = math.type

local function the_ao()
  if type(ao) == "table" and type(ao.send) == "function" then return ao end
  return package.loaded[".ao"]
end

function hooks.send(msg_json)
  local msg = json.decode(msg_json)
  local a = the_ao()
  local saved = a.outbox
  a.outbox = { Output = {}, Messages = {}, Spawns = {}, Assignments = {} }
  local ok, err = pcall(a.send, msg)
  local out = a.outbox.Messages[1]
  a.outbox = saved
  if not ok then error(err, 0) end
  return json.encode(out)
end

function hooks.set_globals(globals_json)
  for k, v in pairs(json.decode(globals_json)) do
    _G[k] = v
  end
end

function hooks.after_boot()
  if type(Inbox) == "table" and type(Inbox[1]) == "table" and Inbox[1].Id == the_ao().id then
    table.remove(Inbox, 1)
  end
end

-------------------------------------------------------------------------------
-- Values as Lua source: the spec's Lua state (another Lua state) loads the text.
-------------------------------------------------------------------------------
local function number_text(v)
  if math_type(v) == "integer" then return tostring(v) end
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "math.huge" end
  if v == -math.huge then return "(-math.huge)" end
  return format("%.17g", v)
end

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function is_bint(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.isbint) == "function" and mt.isbint(v)
end

local function write(v, out, seen, depth)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = format("%q", v)
  elseif t == "number" then
    out[#out + 1] = number_text(v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    if is_bint(v) then
      out[#out + 1] = "__bint(" .. format("%q", tostring(v)) .. ")"
      return
    end
    if seen[v] or depth > 100 then
      out[#out + 1] = "nil"
      return
    end
    seen[v] = true
    local keys = {}
    for k in pairs(v) do
      local tk = type(k)
      if tk == "string" or tk == "number" or tk == "boolean" then keys[#keys + 1] = k end
    end
    sort(keys, key_less)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      local val = v[k]
      local tv = type(val)
      if tv ~= "function" and tv ~= "thread" and tv ~= "userdata" then
        out[#out + 1] = "["
        write(k, out, seen, depth + 1)
        out[#out + 1] = "]="
        write(val, out, seen, depth + 1)
        out[#out + 1] = ","
      end
    end
    out[#out + 1] = "}"
    seen[v] = nil
  else
    out[#out + 1] = "nil"
  end
end

function hooks.serialize(v)
  local out = { "return " }
  write(v, out, {}, 0)
  return concat(out)
end

-------------------------------------------------------------------------------
-- aolite's eval: an EvalRequest message from the process to itself, answered by an
-- EvalResponse (Data: the value as Lua source, or Error) that the process ignores.
-------------------------------------------------------------------------------
local function evaluate(expr)
  if type(expr) ~= "string" then
    return false, "Compilation error: no expression"
  end
  local fn, err = load("return " .. expr, "EvalRequest", "t", _G)
  if not fn then
    fn, err = load(expr, "EvalRequest", "t", _G)
  end
  if not fn then
    return false, "Compilation error: " .. tostring(err)
  end
  local ok, res = pcall(fn)
  if not ok then
    return false, "Runtime error: " .. tostring(res)
  end
  return true, res
end

-- While an eval runs, its handler goes first (a prepended catch-all handler cannot swallow it); then it
-- goes back to where it was.
local evalIndex
function hooks.eval_first()
  evalIndex = nil
  if type(Handlers) ~= "table" or type(Handlers.list) ~= "table" then return end
  for i, h in ipairs(Handlers.list) do
    if h.name == "EvalRequestHandler" then
      if i > 1 then
        table.insert(Handlers.list, 1, table.remove(Handlers.list, i))
        evalIndex = i
      end
      return
    end
  end
end

function hooks.eval_restore()
  if not evalIndex or type(Handlers) ~= "table" or type(Handlers.list) ~= "table" then return end
  local h = Handlers.list[1]
  if h and h.name == "EvalRequestHandler" then
    table.insert(Handlers.list, math.min(evalIndex, #Handlers.list), table.remove(Handlers.list, 1))
  end
  evalIndex = nil
end

function hooks.install_eval()
  local a = the_ao()
  Handlers.append("EvalRequestHandler", function(m)
    return m.Action == "EvalRequest" and m.From == a.id
  end, function(m)
    hooks.eval_restore()          -- the code sees Handlers.list as it is
    local ok, res = evaluate(m.Data)
    if ok then
      a.send({ Target = m.From, Action = "EvalResponse", ["X-Reference"] = m.Reference,
        Data = hooks.serialize(res) })
    else
      a.send({ Target = m.From, Action = "EvalResponse", ["X-Reference"] = m.Reference,
        Error = tostring(res), Data = "" })
    end
  end)
  Handlers.prepend("EvalResponseHandler", function(m)
    return m.Action == "EvalResponse" and m.From == a.id
  end, function() end)
end

-- A custom process module (aolite's Module tag naming a Lua module): its handle(msg, env)
-- replaces process.handle. It may fill ao.outbox (ao.send) or return an outbox-shaped table.
function hooks.use_module(name)
  local process = package.loaded[".process"]
  local original = process.handle
  -- the module's own require(".process") reaches the reference implementation
  local reference = setmetatable({ handle = original }, { __index = process })
  package.loaded[".process"] = reference
  local ok, custom = pcall(require, name)
  if not ok or type(custom) ~= "table" or type(custom.handle) ~= "function" then
    package.loaded[".process"] = process     -- not a process module: the reference one stays
    if not ok and not tostring(custom):find("not found", 1, true) then
      return false, tostring(custom)         -- found, but it fails to load
    end
    return false
  end
  local a = the_ao()
  process.handle = function(msg, env)
    a.outbox = { Output = {}, Messages = {}, Spawns = {}, Assignments = {} }
    a.env = env.Process and env or a.env
    a.id = (env.Process and env.Process.Id) or a.id
    local res = custom.handle(msg, env)
    if type(res) == "table" and (res.Messages or res.Spawns or res.Assignments or res.Output or res.Error) then
      if res.Error then return { Error = res.Error } end
      local messages = res.Messages or {}
      if #messages == 0 and #a.outbox.Messages > 0 then messages = a.outbox.Messages end
      return {
        Output = res.Output or a.outbox.Output or {},
        Messages = messages,
        Spawns = res.Spawns or a.outbox.Spawns or {},
        Assignments = res.Assignments or a.outbox.Assignments or {},
      }
    end
    if a.outbox.Error then return { Error = a.outbox.Error } end
    return {
      Output = a.outbox.Output or {},
      Messages = a.outbox.Messages or {},
      Spawns = a.outbox.Spawns or {},
      Assignments = a.outbox.Assignments or {},
    }
  end
  return true
end

return hooks
