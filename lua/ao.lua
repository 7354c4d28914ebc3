--
-- .ao: the process's view of the network (module version 0.0.6): its id and
-- module, authorities, and the outbox of messages, spawns and assignments that
-- a message produces.
--
local oldao = ao or {}
local errorsite = require(".errorsite")
-- the positions aos 2.0.4 reports for these errors
local raiseSendArg = errorsite(".ao", 367)
local raiseProcesses = errorsite(".ao", 821)
local raiseMessage = errorsite(".ao", 823)

local ao = {
  _version = "0.0.6",
  id = oldao.id or "",
  _module = oldao._module or "",
  authorities = oldao.authorities or {},
  reference = oldao.reference or 0,
  outbox = oldao.outbox or { Output = {}, Messages = {}, Spawns = {}, Assignments = {} },
  -- tags never copied onto the message: aos's list, plus (aos-py) the fields the scheduler sets, so that
  -- a sender cannot set a message's Id, its Timestamp (the process's os.time()) or its slot by a tag
  nonExtractableTags = {
    "Data-Protocol", "Variant", "From-Process", "From-Module", "Type",
    "From", "Owner", "Anchor", "Target", "Data", "Tags", "Read-Only",
    "Id", "Timestamp", "Block-Height", "Nonce", "Epoch", "Hash-Chain", "Signature", "Module", "Cron",
  },
  nonForwardableTags = {
    "Data-Protocol", "Variant", "From-Process", "From-Module", "Type",
    "From", "Owner", "Anchor", "Target", "Tags", "TagArray", "Hash-Chain",
    "Timestamp", "Nonce", "Epoch", "Signature", "Forwarded-By", "Pushed-For",
    "Read-Only", "Cron", "Block-Height", "Reference", "Id", "Reply-To",
  },
  Nonce = oldao.Nonce,
}

local function toSet(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local nonExtractable = toSet(ao.nonExtractableTags)
local nonForwardable = toSet(ao.nonForwardableTags)
local reservedSendKeys = toSet({ "Target", "Data", "Anchor", "Tags", "From" })

local function padZero32(n)
  return string.format("%032d", n)
end

local function isArray(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

-- Root keys become tags in a stable order (sorted by name), so that the same
-- message always produces the same outbox bytes.
local function keyLess(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "string" or ta == "number" then return a < b end
  return tostring(a) < tostring(b)
end

local function sortedKeys(t, skip)
  local keys, n = {}, 0
  for k in pairs(t) do
    if not skip[k] then
      n = n + 1
      keys[n] = k
    end
  end
  if n > 1 then table.sort(keys, keyLess) end
  return keys
end

local function appendTags(tags, msg, skip)
  for _, k in ipairs(sortedKeys(msg, skip)) do
    tags[#tags + 1] = { name = k, value = msg[k] }
  end
  if msg.Tags then
    if isArray(msg.Tags) then
      for _, o in ipairs(msg.Tags) do
        tags[#tags + 1] = o
      end
    else
      for _, k in ipairs(sortedKeys(msg.Tags, {})) do
        tags[#tags + 1] = { name = k, value = msg.Tags[k] }
      end
    end
  end
end

local function copy(t)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  return r
end

function ao.clone(obj, seen)
  if type(obj) ~= "table" then return obj end
  seen = seen or {}
  if seen[obj] then return seen[obj] end
  local res = {}
  seen[obj] = res
  for k, v in pairs(obj) do
    res[ao.clone(k, seen)] = ao.clone(v, seen)
  end
  return setmetatable(res, getmetatable(obj))
end

-- Authority tag values are re-read on every message; split each value once.
local splitCache, splitCount = {}, 0
local function splitAuthorities(value)
  local parts = splitCache[value]
  if parts then return parts end
  parts = {}
  for part in value:gmatch("[^,]+") do
    parts[#parts + 1] = part
  end
  if splitCount < 64 then
    splitCache[value] = parts
    splitCount = splitCount + 1
  end
  return parts
end

--- Called at the start of every message with the environment.
function ao.init(env)
  local ptags = env.Process.Tags
  if ao.id == "" then ao.id = env.Process.Id end
  if ao._module == "" and type(ptags) == "table" then
    for _, o in ipairs(ptags) do
      if o.name == "Module" then ao._module = o.value end
    end
  end
  if type(ptags) == "table" then
    for _, o in ipairs(ptags) do
      if o.name == "Authority" and type(o.value) == "string" then
        for _, part in ipairs(splitAuthorities(o.value)) do
          local present = false
          for _, a in ipairs(ao.authorities) do
            if a == part then present = true break end
          end
          if not present then table.insert(ao.authorities, part) end
        end
      end
    end
  end
  ao.outbox = { Output = {}, Messages = {}, Spawns = {}, Assignments = {} }
  ao.env = env
end

--- Copy the extractable tags to the message root (the last duplicate wins).
function ao.normalize(msg)
  if type(msg.Tags) ~= "table" then return msg end
  for _, o in ipairs(msg.Tags) do
    if not nonExtractable[o.name] then
      msg[o.name] = o.value
    end
  end
  return msg
end

--- A deep copy of msg without the keys that must not be forwarded.
function ao.sanitize(msg)
  local newMsg = ao.clone(msg)
  for k in pairs(newMsg) do
    if nonForwardable[k] then newMsg[k] = nil end
  end
  return newMsg
end

--- Add a line to the outbox Output.
function ao.log(txt)
  if type(ao.outbox.Output) == "string" then
    ao.outbox.Output = { ao.outbox.Output }
  end
  table.insert(ao.outbox.Output, txt)
end

--- Queue a message; returns it with `onReply([from,] fn)` and `receive([from])`.
function ao.send(msg)
  if type(msg) ~= "table" then raiseSendArg("msg should be a table") end
  ao.reference = ao.reference + 1
  local referenceString = tostring(ao.reference)
  local message = {
    Target = msg.Target,
    Data = msg.Data,
    Anchor = padZero32(ao.reference),
    Tags = {
      { name = "Data-Protocol", value = "ao" },
      { name = "Variant", value = "ao.TN.1" },
      { name = "Type", value = "Message" },
      { name = "Reference", value = referenceString },
    },
  }
  appendTags(message.Tags, msg, reservedSendKeys)
  local extended = copy(message)
  table.insert(ao.outbox.Messages, message)
  extended.onReply = function(...)
    local from, resolver
    if select("#", ...) >= 2 then
      from, resolver = ...
    else
      from = message.Target
      resolver = ...
    end
    Handlers.once({ From = from, ["X-Reference"] = referenceString }, resolver)
  end
  extended.receive = function(...)
    local from = message.Target
    if select("#", ...) >= 1 and (...) ~= nil then
      from = ...
    end
    return Handlers.receive({ From = from, ["X-Reference"] = referenceString })
  end
  return extended
end

--- Queue a spawn of `module`; returns it with `onReply(fn)` and `receive()`.
function ao.spawn(module, msg)
  assert(type(module) == "string", "Module source id is required!")
  assert(type(msg) == "table", "Message must be a table")
  ao.reference = ao.reference + 1
  local spawnRef = tostring(ao.reference)
  local spawn = {
    Data = msg.Data or "NODATA",
    Anchor = padZero32(ao.reference),
    Tags = {
      { name = "Data-Protocol", value = "ao" },
      { name = "Variant", value = "ao.TN.1" },
      { name = "Type", value = "Process" },
      { name = "From-Process", value = ao.id },
      { name = "From-Module", value = ao._module },
      { name = "Module", value = module },
      { name = "Reference", value = spawnRef },
    },
  }
  appendTags(spawn.Tags, msg, reservedSendKeys)
  local extended = copy(spawn)
  table.insert(ao.outbox.Spawns, spawn)
  local spec = { Action = "Spawned", From = ao.id, Reference = spawnRef }
  extended.onReply = function(callback)
    Handlers.once(spec, callback)
  end
  extended.receive = function()
    return Handlers.receive(spec)
  end
  return extended
end

--- Queue an assignment of message `Message` to `Processes`.
function ao.assign(assignment)
  assert(type(assignment) == "table", "assignment should be a table")
  if type(assignment.Processes) ~= "table" then raiseProcesses("Processes should be a table") end
  if type(assignment.Message) ~= "string" then raiseMessage("Message should be a string") end
  table.insert(ao.outbox.Assignments, assignment)
end

--- Whether the message comes from (or was signed by) an authority.
function ao.isTrusted(msg)
  for _, a in ipairs(ao.authorities) do
    if msg.From == a or msg.Owner == a then return true end
  end
  return false
end

--- Parse a routing hint out of a From-Process value (`<pid>&hint=<h>&ttl=<t>`).
function ao.registerHint(msg)
  local fromProcess = msg and msg["From-Process"]
  if type(fromProcess) ~= "string" then return end
  local pid, hint, ttl = fromProcess:match("^([^&]+)&hint=([^&]+)&ttl=(%d+)")
  if not pid then return end
  ao._hints = ao._hints or {}
  local count = 0
  for _ in pairs(ao._hints) do count = count + 1 end
  if count >= 1000 and not ao._hints[pid] then return end
  ao._hints[pid] = { hint = hint, ttl = tonumber(ttl) }
end

function ao.clearOutbox()
  ao.outbox = { Output = {}, Messages = {}, Spawns = {}, Assignments = {} }
end

--- The handle() result for this message.
function ao.result(result)
  if ao.outbox.Error or result.Error then
    return { Error = result.Error or ao.outbox.Error }
  end
  return {
    Output = result.Output or ao.outbox.Output,
    Messages = ao.outbox.Messages,
    Spawns = ao.outbox.Spawns,
    Assignments = ao.outbox.Assignments,
  }
end

return ao
