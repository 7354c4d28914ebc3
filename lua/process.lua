--
-- .process: the aos process (version 2.0.4). process.handle(msg, env) runs one
-- message through trust checks and the handler chain and returns the result
-- {Output, Messages, Spawns, Assignments} or {Error}.
--
local process = { _version = "2.0.4" }

Colors = {
  red = "\27[31m",
  green = "\27[32m",
  blue = "\27[34m",
  reset = "\27[0m",
  gray = "\27[90m",
}
Bell = "\7"

Dump = require(".dump")
Utils = require(".utils")
Handlers = require(".handlers")
local stringify = require(".stringify")
local assignment = require(".assignment")
-- A bundled module may be missing from a stripped-down library; any other
-- failure to load it is a bug and is raised.
local function optional(name)
  local ok, mod = pcall(require, name)
  if ok then return true, mod end
  if type(mod) == "string" and mod:find("module '" .. name .. "' not found", 1, true) then
    return false, mod
  end
  error(mod, 0)
end

local chance_ok, chance = optional(".chance")
json = require("json")
ao = require(".ao")
package.loaded["ao"] = ao
assignment.init(ao)

local eval = require(".eval")
local default = require(".default")
local boot = require(".boot")

-- The prompt text is rebuilt only when the name or the Inbox size changed.
local prompt = {}
function Prompt()
  local count = #Inbox
  local c = Colors
  local p = prompt
  if Name == p.name and count == p.count and c.green == p.green and c.gray == p.gray
    and c.blue == p.blue and c.red == p.red and c.reset == p.reset then
    return p.text
  end
  prompt = {
    name = Name, count = count, green = c.green, gray = c.gray, blue = c.blue, red = c.red, reset = c.reset,
    text = c.green .. Name .. c.gray .. "@" .. c.blue .. "aos-" .. process._version
      .. c.gray .. "[Inbox:" .. c.red .. tostring(count) .. c.gray .. "]" .. c.reset .. "> ",
  }
  return prompt.text
end

function Version()
  print("version: " .. process._version)
end

--- print logs only its first argument, coloured by type, into the message log.
print = function(a)
  if type(a) == "table" then
    a = stringify.format(a)
  elseif type(a) == "boolean" then
    a = Colors.blue .. tostring(a) .. Colors.reset
  elseif a == nil then
    a = Colors.red .. "nil" .. Colors.reset
  elseif type(a) == "number" then
    a = Colors.green .. tostring(a) .. Colors.reset
  end
  if HANDLER_PRINT_LOGS then
    local out = ao.outbox.Output
    if type(out) == "table" and out.data ~= nil then
      out.data = out.data .. "\n" .. a
    else
      ao.outbox.Output = { data = a, prompt = Prompt(), print = true }
    end
    table.insert(HANDLER_PRINT_LOGS, a)
    return nil
  end
  return a
end

--- Tags array -> name/value map (the first duplicate wins).
function Tab(msg)
  local inputs = {}
  local tags = msg.Tags
  if type(tags) ~= "table" then return inputs end
  for _, o in ipairs(tags) do
    if inputs[o.name] == nil then
      inputs[o.name] = o.value
    end
  end
  return inputs
end

local function findTag(tags, name)
  if type(tags) ~= "table" then return nil end
  for _, o in ipairs(tags) do
    if o.name == name then return o.value end
  end
  return nil
end

local function insertInbox(msg)
  table.insert(Inbox, msg)
  local overflow = #Inbox - 10000
  if overflow > 0 then
    if overflow == 1 then
      table.remove(Inbox, 1)
    else
      table.move(Inbox, overflow + 1, #Inbox + 0, 1)
      for i = #Inbox, #Inbox - overflow + 1, -1 do Inbox[i] = nil end
    end
  end
end

-- math.random after the first message: MT19937 seeded from the first message.
local function seededRandom(...)
  local n = select("#", ...)
  if n == 0 then
    return chance.random()
  elseif n == 1 then
    return chance.integer(1, (...))
  elseif n == 2 then
    local lo, hi = ...
    return chance.integer(lo, hi)
  end
  return chance.random()
end

local function byteSum(s)
  local sum = 0
  for i = 1, #s do sum = sum + s:byte(i) end
  return sum
end

local function initializeState(msg, env)
  if not Seeded and chance_ok then
    local seedSource = msg.Owner .. msg.Module .. msg.Id
    chance.seed(tonumber(msg["Block-Height"] .. tostring(byteSum(seedSource))))
    math.random = seededRandom
    Seeded = true
  end
  Errors = Errors or {}
  Inbox = Inbox or {}
  if not Owner and msg.Id == env.Process.Id then
    Owner = findTag(env.Process.Tags, "From-Process") or msg.From
  end
  if not Name then
    Name = findTag(env.Process.Tags, "Name") or "aos"
  end
end

local normalize = Utils.normalize

-- Root keys and tag names in the 2.0.4 form (in place: messages from the
-- network already use it, so usually nothing moves).
local settled = {} -- names already in normal form (bounded)
local settledCount = 0
local function normalizeKeys(msg)
  local renames
  for k in pairs(msg) do
    if settled[k] then goto continue end
    local nk = normalize(k)
    if nk == k then
      if settledCount < 1024 then
        settled[k] = true
        settledCount = settledCount + 1
      end
    else
      renames = renames or {}
      renames[#renames + 1] = k
    end
    ::continue::
  end
  if renames then
    for _, k in ipairs(renames) do
      local v = msg[k]
      msg[k] = nil
      msg[normalize(k)] = v
    end
  end
  local out = msg
  if type(out.Tags) == "table" then
    for _, o in ipairs(out.Tags) do
      if type(o) == "table" then
        local name = o.name
        if name ~= nil and not settled[name] then
          local nn = normalize(name)
          if nn == name then
            if settledCount < 1024 then
              settled[name] = true
              settledCount = settledCount + 1
            end
          else
            o.name = nn
          end
        end
      end
    end
  end
  return out
end

-- The traceback printed for a failed handler: the frame of process.handle
-- (the frames below it belong to the host bridge, and aos drops them too),
-- written as aos 2.0.4 writes it.
local HANDLER_TRACEBACK = "stack traceback:\n\t[string \".process\"]:965: in function '.process.handle'"

local function attachReplyForward(msg)
  msg.reply = function(replyMsg)
    replyMsg.Target = msg["Reply-To"] or (replyMsg.Target or msg.From)
    replyMsg["X-Reference"] = msg["X-Reference"] or msg.Reference
    replyMsg["X-Origin"] = msg["X-Origin"] or nil
    return ao.send(replyMsg)
  end
  msg.forward = function(target, forwardMsg)
    local newMsg = ao.sanitize(msg)
    forwardMsg = forwardMsg or {}
    for k, v in pairs(forwardMsg) do
      newMsg[k] = v
    end
    newMsg.Target = target
    newMsg["Reply-To"] = msg["Reply-To"] or msg.From
    newMsg["X-Reference"] = msg["X-Reference"] or msg.Reference
    newMsg["X-Origin"] = msg["X-Origin"] or msg.From
    newMsg.reply = nil
    newMsg.forward = nil
    ao.send(newMsg)
  end
end

-- A table Data is sent as JSON (the caller's table is updated in place).
local rawSend, rawSpawn = ao.send, ao.spawn
ao.send = function(msg)
  if type(msg) == "table" and type(msg.Data) == "table" then
    msg["Content-Type"] = "application/json"
    msg.Data = json.encode(msg.Data)
  end
  return rawSend(msg)
end
ao.spawn = function(module, msg)
  if type(msg) == "table" and type(msg.Data) == "table" then
    msg["Content-Type"] = "application/json"
    msg.Data = json.encode(msg.Data)
  end
  return rawSpawn(module, msg)
end

--- Send a message; returns {output, receive, onReply}.
function Send(msg)
  if type(msg) == "table" and not msg.Target then
    print("WARN: No target specified for message. Data will be stored, but no process will receive it.")
  end
  local result = ao.send(msg)
  return {
    output = "Message added to outbox",
    receive = result.receive,
    onReply = result.onReply,
  }
end

--- Spawn a process ([module,] msg); returns {output, receive} (and .after).
function Spawn(...)
  local module, spawnMsg
  if select("#", ...) == 1 then
    spawnMsg = ...
    module = ao._module
  else
    module, spawnMsg = ...
  end
  if not spawnMsg then spawnMsg = {} end
  local result = ao.spawn(module, spawnMsg)
  -- `after` (the onReply of the spawn) is reachable but not listed, so the
  -- printed result keeps its aos shape.
  return setmetatable({
    output = "Spawn process request added to outbox",
    receive = result.receive,
  }, { __index = { after = result.onReply } })
end

--- Queue an assignment.
function Assign(assignment_)
  ao.assign(assignment_)
  print("Assignment added to outbox.")
  return "Assignment added to outbox."
end

--- Wait for a message matching `pattern` (inside a handler).
function Receive(pattern)
  return Handlers.receive(pattern)
end

-- The error text of a failed message. A non-string error value cannot be
-- concatenated, and aos then fails the whole call with
-- `[string ".process"]:945: attempt to concatenate a table value (local 'result')`
-- (963 outside Eval); the concatenation runs at those positions here too.
local function concatAt(line)
  return load(string.rep("\n", line - 1) .. "local logs, banner, result = ... return logs .. banner .. result",
    ".process", "t")
end
local errorText945, errorText963 = concatAt(945), concatAt(963)

-- The system handlers are the same functions on every message.
local function evalPattern(m)
  return m.Action == "Eval" and Owner == m.From
end
local function bootPattern(m)
  return m.Tags.Type == "Process" and Owner == m.From
end
local function defaultPattern()
  return true
end
local evalHandler = eval(ao)
local defaultHandler = default(insertInbox)

function process.handle(msg, _)
  -- until the trust checks, a message can change nothing lasting in a process that has booted: if it
  -- fails before them (a malformed message, Data that is not the JSON it claims), the host keeps the state
  process.untouched = Owner ~= nil and Inbox ~= nil
  local env = _.Process and _ or _.env
  ao.init(env)
  msg = normalizeKeys(msg)
  ao.normalize(msg)
  ao.id = env.Process.Id
  initializeState(msg, env)
  HANDLER_PRINT_LOGS = {}

  local timestamp = msg.Timestamp
  os.time = function() return timestamp end

  msg.TagArray = msg.Tags
  msg.Tags = Tab(msg)
  env.Process.TagArray = env.Process.Tags
  env.Process.Tags = Tab(env.Process)

  if msg.Tags["Content-Type"] == "application/json" then
    msg.Data = json.decode(msg.Data or "{}")
  end
  process.untouched = false

  Errors = Errors or {}
  -- (ao.init has just given this message a fresh outbox)

  if msg.From ~= msg.Owner and not ao.isTrusted(msg) then
    print("Message is not trusted! From: " .. tostring(msg.From) .. " - Owner: " .. tostring(msg.Owner))
    return ao.result({})
  end

  if ao.isAssignment(msg) and not ao.isAssignable(msg) then
    if msg.From ~= ao.id then
      Send({ Target = msg.From, Data = "Assignment is not trusted by this process!" })
    end
    print("Assignment is not trusted! From: " .. tostring(msg.From) .. " - Owner: " .. tostring(msg.Owner))
    return ao.result({})
  end

  Handlers.add("_eval", evalPattern, evalHandler)

  if msg.Id == env.Process.Id then
    Handlers.once("_boot", bootPattern, boot(ao))
  end

  Handlers.append("_default", defaultPattern, defaultHandler)

  attachReplyForward(msg)

  local co = coroutine.create(function()
    return pcall(Handlers.evaluate, msg, env)
  end)
  local _, status, result = coroutine.resume(co)

  -- Keep the coroutine while it may wake up again; drop finished ones.
  table.insert(Handlers.coroutines, co)
  for i, x in ipairs(Handlers.coroutines) do
    if coroutine.status(x) == "dead" then
      table.remove(Handlers.coroutines, i)
    end
  end

  if not status then
    if msg.Action == "Eval" then
      table.insert(Errors, result)
      local printData = table.concat(HANDLER_PRINT_LOGS, "\n")
      return { Error = errorText945(printData, "\n\n" .. Colors.red .. "error:\n" .. Colors.reset, result) }
    end
    if msg.Action then
      print(Colors.red .. "Error" .. Colors.gray .. " handling message with Action = " .. msg.Action .. Colors.reset)
    else
      print(Colors.red .. "Error" .. Colors.gray .. " handling message " .. Colors.reset)
    end
    print(Colors.green .. result .. Colors.reset)
    print("\n" .. Colors.gray .. HANDLER_TRACEBACK .. Colors.reset)
    local printData = table.concat(HANDLER_PRINT_LOGS, "\n")
    return ao.result({ Error = errorText963(printData, "\n\n" .. Colors.red .. "error:\n" .. Colors.reset, result) })
  end

  local response
  if msg.Action == "Eval" then
    response = ao.result({
      Output = {
        data = table.concat(HANDLER_PRINT_LOGS, "\n"),
        prompt = Prompt(),
        test = Dump(HANDLER_PRINT_LOGS),
      },
    })
  else
    response = ao.result({
      Output = {
        data = table.concat(HANDLER_PRINT_LOGS, "\n"),
        prompt = Prompt(),
        print = true,
      },
    })
  end
  HANDLER_PRINT_LOGS = {}
  ao.Nonce = msg.Nonce
  return response
end

-- aos loads .crypto together with the process; here it is loaded on first
-- use (package.loaded['.crypto.init'] included), which keeps idle processes small.
do
  local lazy = { [".crypto.init"] = true }
  local loading = {}
  local mt = getmetatable(package.loaded) or {}
  mt.__index = function(_, name)
    if lazy[name] and not loading[name] then
      loading[name] = true
      local ok, mod = pcall(require, name)
      loading[name] = nil
      if ok then return mod end
    end
    return nil
  end
  setmetatable(package.loaded, mt)
end

-- The built-in APM client registers its handlers and sets json / base64.
local apm_ok, apm_mod = optional(".apm")
if apm_ok then
  apm = apm_mod
end
if base64 == nil then
  local ok, b64 = optional(".base64")
  if ok then base64 = b64 end
end

return process
