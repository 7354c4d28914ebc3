--
-- require("aolite") inside an `aos test` spec: aolite 0.5's API on a fresh in-memory AO node
-- (aos_py/testing/sim.py) whose processes are aos-py process runtimes (aos 2.0.4 semantics).
--
-- Loaded by the spec host with (call, bundled): call(name, ...) reaches the Python node and returns
-- ok, values... (ok false: values[1] is the error text); bundled(name) loads a module of the aos
-- library (json, utils, bint) privately.
--
local call, bundled = ...

local json = bundled("json")
local utils = bundled(".utils")

local type, pairs, ipairs, tostring, error, select = type, pairs, ipairs, tostring, error, select
local pack, unpack = table.pack, table.unpack

local M = { _version = "0.5.1", _aos_py = true }

-- Every API function raises at its caller's line (level 3: past this helper and the API function).
local function host(name, ...)
  local r = pack(call(name, ...))
  if not r[1] then
    error(tostring(r[2]), 3)
  end
  return unpack(r, 2, r.n)
end

local function encode(value, what)
  local ok, text = pcall(json.encode, value)
  if not ok then
    error(what .. " cannot be encoded: " .. tostring(text), 3)
  end
  return text
end

-------------------------------------------------------------------------------
-- Messages live in the Python node; each crosses once and is cached here (by id and revision:
-- a message is rewritten once, when its target handles it).
-------------------------------------------------------------------------------
local cache = {}

-- rev nil: whatever the message is now (always asks the node)
local function fetch(id, rev)
  local c = cache[id]
  if c and rev ~= nil and c.rev == rev then return c.msg end
  local text, r = host("message", id)
  if not text then return nil end
  local msg = json.decode(text)
  cache[id] = { rev = r, msg = msg }
  return msg
end

local function entries(text)
  if not text then return nil end
  return json.decode(text)
end

local function matches(msg, spec)
  if spec == nil then return true end
  return utils.matchesSpec(msg, spec) and true or false
end

-- messages for [{id, rev}] entries, newest first (fromFirst: oldest first), at most `count`
local function collect(list, spec, fromFirst, count)
  local out = {}
  if not list then return out end
  local n = #list
  local first, last, step = n, 1, -1
  if fromFirst then first, last, step = 1, n, 1 end
  for i = first, last, step do
    local e = list[i]
    local msg = fetch(e[1], e[2])
    if msg and matches(msg, spec) then
      out[#out + 1] = msg
      if count and #out >= count then break end
    end
  end
  return out
end

-------------------------------------------------------------------------------
-- aolite 0.5 API
-------------------------------------------------------------------------------

--- spawnProcess(id, sourceOrModulePath, tags[, opts]) -> process descriptor.
-- opts (aos-py): { blueprints = {...}, packages = {...}, owner = "..." }.
function M.spawnProcess(processId, dataOrPath, tags, opts)
  if type(processId) ~= "string" then
    error("processId must be defined", 2)
  end
  if tags ~= nil and type(tags) ~= "table" then
    error("`initEnv` must be a table", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("spawnProcess options must be a table", 2)
  end
  local tagsJSON = tags ~= nil and encode(tags, "tags") or nil
  local optsJSON = opts ~= nil and encode(opts, "options") or nil
  host("spawn", processId, dataOrPath, tagsJSON, optsJSON, package.path)
  return M.process(processId)
end

--- A descriptor of a process: its id, and `env`, whose fields read the process's globals (by eval).
function M.process(processId)
  local env = setmetatable({}, {
    __index = function(_, key)
      if type(key) ~= "string" or not key:match("^[%a_][%w_]*$") then return nil end
      local ok, value = pcall(M.eval, processId, key)
      if ok then return value end
      return nil
    end,
  })
  return { id = processId, Id = processId, env = env }
end

function M.send(msg)
  if type(msg) ~= "table" then error("send needs a message table", 2) end
  if type(msg.From) ~= "string" then error("From must be defined", 2) end
  if type(msg.Target) ~= "string" then error("Target must be defined", 2) end
  local id = host("send", encode(msg, "the message"))
  return fetch(id)
end

function M.queue(msg)
  if type(msg) ~= "table" then error("queue needs a message table", 2) end
  if type(msg.From) ~= "string" then error("From must be defined", 2) end
  if type(msg.Target) ~= "string" then error("Target must be defined", 2) end
  local id = host("queue", encode(msg, "the message"))
  return fetch(id)
end

function M.eval(processId, expression)
  if type(processId) ~= "string" then error("processId must be defined", 2) end
  local src = host("eval", processId, tostring(expression))
  if not src then return nil end
  local env = {
    __bint = function(s)
      local ok, bint = pcall(bundled, ".bint")
      if ok then return bint(256).new(s) end
      return s
    end,
    math = math,
  }
  local fn = assert(load(src, "=eval result", "t", env))
  return fn()
end

function M.getAllMsgs(processId, matchSpec)
  host("autorun")
  local list = entries(host("history", processId))
  if not list then return nil end
  return collect(list, matchSpec, false)
end

function M.getFirstMsg(processId, matchSpec)
  host("autorun")
  return collect(entries(host("history", processId)), matchSpec, true, 1)[1]
end

function M.getLastMsg(processId, matchSpec)
  host("autorun")
  return collect(entries(host("history", processId)), matchSpec, false, 1)[1]
end

function M.getMsgs(matchSpec)
  return collect(entries(host("ids")), matchSpec, true)
end

function M.getMsgById(messageId)
  if messageId == nil then return nil end
  return fetch(tostring(messageId))
end

function M.clearAllMessages(processId)
  if processId == nil then error("processId must be provided", 2) end
  host("clear_messages", processId)
  return true
end

function M.clearAllProcesses()
  host("clear_all")
  cache = {}
end

function M.runScheduler(cycles)
  host("run", cycles)
end

function M.setAutoSchedule(mode)
  if type(mode) ~= "boolean" then error("setAutoSchedule expects a boolean", 2) end
  host("set_auto", mode)
end

function M.isAutoSchedule()
  return host("is_auto")
end

function M.listQueueMessages(processId)
  local list = entries(host("queued", processId))
  if not list then return nil end
  return collect(list, nil, true)
end

function M.reorderQueue(processId, newOrderIds)
  if type(newOrderIds) ~= "table" then error("newOrderIds must be a list of message ids", 2) end
  host("reorder", processId, encode(newOrderIds, "newOrderIds"))
end

function M.setMessageLog(path)
  host("set_message_log", path)
end

function M.getMessageLog()
  return host("get_message_log")
end

function M.setPrintProcessOutput(mode)
  if type(mode) ~= "boolean" then error("setPrintProcessOutput expects a boolean", 2) end
  host("set_print", mode)
end

function M.isPrintProcessOutput()
  return host("is_print")
end

-------------------------------------------------------------------------------
-- Beyond aolite (aos-py)
-------------------------------------------------------------------------------

--- Evaluate a Lua file in a process, like `.load FILE` (its requires resolve like the spec's).
function M.load(processId, path)
  host("load_file", processId, path)
end

function M.loadBlueprint(processId, name)
  host("load_blueprint", processId, name)
end

--- Install a shipped APM package ("@sam/Llama-Herder"), dependencies first. Returns "name@version".
function M.installPackage(processId, name)
  return host("install_package", processId, name)
end

--- The message clock (ms; every message's Timestamp) and block height.
function M.getTimestamp() return host("get_timestamp") end
function M.setTimestamp(ms) host("set_timestamp", ms) end
--- Move the clock forward; processes spawned with a Cron-Interval tag get the ticks that fall due.
function M.advanceTime(ms) return host("advance_time", ms) end
function M.getBlockHeight() return host("get_block_height") end
function M.setBlockHeight(n) host("set_block_height", n) end

--- One cron message to a process (its Cron-Tag-<Name> spawn tags as <Name> tags, plus `tags`).
function M.tick(processId, tags)
  local id = host("tick", processId, tags ~= nil and encode(tags, "tags") or nil)
  return fetch(id)
end
M.cron = M.tick

--- A process's prints (Output of every message it handled, colours removed), oldest first.
function M.getPrints(processId)
  return json.decode(host("prints", processId))
end

--- All of a process's prints as one text.
function M.getOutput(processId)
  return host("output", processId)
end

--- The Error of every message that failed in a process (handler errors), oldest first.
function M.getErrors(processId)
  return json.decode(host("errors", processId))
end

--- The full result of the last message a process handled ({Output, Messages, Spawns, Assignments, Error}).
function M.getLastResult(processId)
  local text = host("last_result", processId)
  if not text then return nil end
  return json.decode(text)
end

function M.clearOutput(processId)
  host("clear_output", processId)
end

--- The node's services: APM registry (shipped packages), wAR, Llama Herder and workers (demo model).
function M.startServices(workers)
  return json.decode(host("start_services", workers))
end

function M.services()
  local text = host("services")
  if not text then return nil end
  return json.decode(text)
end

--- Credit a process with wAR from the services' token (default 1 wAR); it gets a Credit-Notice.
function M.faucet(processId, amount)
  return json.decode(host("faucet", processId, amount ~= nil and tostring(amount) or nil))
end

--- Ids of the processes on the node.
function M.listProcesses()
  return json.decode(host("processes"))
end

return M
