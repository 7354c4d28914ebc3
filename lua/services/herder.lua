--[[
  Llama Herder: sells LLM inference for wAR and hands the work to a herd of worker processes.

  Loaded by the node as `ServiceConfig = {...}` followed by this file; re-loading keeps the queue, the
  busy table and the counters. ServiceConfig fields:
    Token (wAR process id; only its Credit-Notices start work), Workers ({pid, ...}: the herd, replacing the
    current one), Model (model data id),
    ModelName (text for Info), BaseFee (1), TokenFee (1), Timeout (ms, 120000), MaxTokens (512),
    MaxPromptBytes (4096), MaxQueue (1000).

  Protocol (tag names as aos 2.0.4 normalises them):
    Info                  -> Info-Response: Name, Version, Base-Fee, Token-Fee, Last-Multiplier, Queue-Length,
                             Model, Model-Name; Data = blurb naming the served model.
    Credit-Notice (From = Token; Sender, Quantity, X-Prompt, X-Tokens, X-Reference)
                          -> queued by multiplier = Quantity / needed, needed = BaseFee + (words + tokens) * TokenFee;
                             an unpaid or invalid request is refunded in full to Sender: Token gets
                             Transfer{Recipient, Quantity, X-Reason, X-Reference, X-Needed (insufficient only)}.
    to a worker           <- Inference{Tokens, Job-Id, Data = prompt}. (Not `Reference`: aos 2.0.4's ao.send puts
                             its own counter in a Reference tag ahead of ours, and the first tag of a name wins.)
    Inference-Response (from the busy worker, Job-Id = its current job)
                          -> client gets Inference-Response{X-Reference, Data}; the worker is idle again.
    Inference-Error (Job-Id, Error) from the busy worker -> the client is refunded, X-Reason = "Worker error: ...".
    Any message / Cron    -> jobs running longer than Timeout ms (msg.Timestamp) are dropped, the client is
                             refunded (X-Reason "Worker timed out") and the worker reclaimed.
    Owner only: Add-Worker{Worker}, Remove-Worker{Worker}, Set-Model{Model-Id, Model-Name} (sends Init{Model-Id}
    to every worker); each answers <Action>-Response. Anyone: Herd-Status -> Herd-Status-Response (JSON Data).
]]

local bint = require('.bint')(256)
local json = require('json')

HerderVersion = "0.3"

local cfg = type(ServiceConfig) == "table" and ServiceConfig or {}

local function intOr(value, default)
  local n = math.tointeger(tonumber(value))
  if n == nil then return default end
  return n
end

Herder = Herder or {}
Herder.Token = cfg.Token or Herder.Token
Herder.Model = cfg.Model or Herder.Model
Herder.ModelName = cfg.ModelName or Herder.ModelName
Herder.BaseFee = intOr(cfg.BaseFee, Herder.BaseFee or 1)
Herder.TokenFee = intOr(cfg.TokenFee, Herder.TokenFee or 1)
Herder.Timeout = intOr(cfg.Timeout, Herder.Timeout or 120000)
Herder.MaxTokens = intOr(cfg.MaxTokens, Herder.MaxTokens or 512)
Herder.MaxPromptBytes = intOr(cfg.MaxPromptBytes, Herder.MaxPromptBytes or 4096)
Herder.MaxQueue = intOr(cfg.MaxQueue, Herder.MaxQueue or 1000)

Workers = Workers or {}        -- worker pids, in the order they joined
Busy = Busy or {}              -- worker pid -> running job
Queue = Queue or {}            -- waiting jobs, highest multiplier first
WorkerStats = WorkerStats or {} -- worker pid -> { jobs = n, freed = sequence number of the last release }
LastMultiplier = LastMultiplier or 1
JobsDone = JobsDone or 0
JobCounter = JobCounter or 0
FreeCounter = FreeCounter or 0

local function short(id)
  id = tostring(id or "?")
  return id:sub(1, 6)
end

local function isWorker(pid)
  for _, w in ipairs(Workers) do
    if w == pid then return true end
  end
  return false
end

local function stats(pid)
  local s = WorkerStats[pid]
  if not s then
    s = { jobs = 0, freed = 0 }
    WorkerStats[pid] = s
  end
  return s
end

local function addWorker(pid)
  if type(pid) ~= "string" or pid == "" or isWorker(pid) then return false end
  table.insert(Workers, pid)
  stats(pid)
  return true
end

-- ServiceConfig.Workers, when given, is the herd (a removed worker finishes the job it is running).
if type(cfg.Workers) == "table" then
  Workers = {}
  for _, w in ipairs(cfg.Workers) do addWorker(w) end
end

local function formatMultiplier(m)
  if math.type(m) == "integer" then return tostring(m) end
  if m == math.floor(m) and m < 2 ^ 53 then return tostring(math.tointeger(m)) end
  return string.format("%.14g", m)
end

local function countWords(text)
  local n = 0
  for _ in string.gmatch(text, "%w+") do n = n + 1 end
  return n
end

local function timestampOf(msg)
  return tonumber(msg.Timestamp)
end

-- A full refund of `quantity` to `client` through the token, with the reason (and any extra X- tags).
local function refund(client, quantity, reference, reason, extra)
  local out = {
    Target = Herder.Token, Action = "Transfer", Recipient = client, Quantity = quantity,
    ["X-Reason"] = reason,
  }
  if reference and reference ~= "" then out["X-Reference"] = reference end
  for k, v in pairs(extra or {}) do out[k] = v end
  print("Herder: refund " .. quantity .. " to " .. short(client) .. " (" .. reason .. ")")
  ao.send(out)
end

-- Workers that are idle, longest idle first (ties: join order).
local function idleWorkers()
  local idle = {}
  for i, w in ipairs(Workers) do
    if not Busy[w] then table.insert(idle, { pid = w, freed = stats(w).freed, order = i }) end
  end
  table.sort(idle, function(a, b)
    if a.freed ~= b.freed then return a.freed < b.freed end
    return a.order < b.order
  end)
  return idle
end

local function dispatch(msg)
  local idle = idleWorkers()
  local i = 1
  while i <= #idle and #Queue > 0 do
    local worker = idle[i].pid
    local job = table.remove(Queue, 1)
    ao.send({ Target = worker, Action = "Inference", Tokens = tostring(job.tokens), ["Job-Id"] = job.id,
      Data = job.prompt })
    Busy[worker] = {
      id = job.id, client = job.client, reference = job.reference, tokens = job.tokens,
      started = timestampOf(msg) or job.received, quantity = job.quantity, multiplier = job.multiplier,
    }
    LastMultiplier = job.multiplier
    print("Herder: job " .. job.id .. " (" .. job.tokens .. " tokens, " .. formatMultiplier(job.multiplier)
      .. "x) -> " .. short(worker) .. ", queued " .. #Queue)
    i = i + 1
  end
end

local function release(worker)
  Busy[worker] = nil
  FreeCounter = FreeCounter + 1
  stats(worker).freed = FreeCounter
end

-- Reclaim every worker whose job has run longer than the timeout; returns how many were reclaimed.
local function reclaimExpired(msg, spare)
  local now = timestampOf(msg)
  if not now then return 0 end
  local expired = {}
  for worker, job in pairs(Busy) do
    job.started = job.started or now   -- (a job dispatched by a message without a clock starts now)
    if worker ~= spare and now - job.started > Herder.Timeout then
      table.insert(expired, worker)
    end
  end
  table.sort(expired)
  for _, worker in ipairs(expired) do
    local job = Busy[worker]
    print("Herder: worker " .. short(worker) .. " timed out on job " .. job.id)
    release(worker)
    refund(job.client, job.quantity, job.reference, "Worker timed out")
  end
  return #expired
end

-- true when job a goes before job b: a strictly higher multiplier (compared exactly, a.q/a.n > b.q/b.n)
local function higher(a, b)
  return bint(a.quantity) * bint(b.needed) > bint(b.quantity) * bint(a.needed)
end

local function enqueue(job)
  local pos = #Queue + 1
  for i, other in ipairs(Queue) do
    if higher(job, other) then
      pos = i
      break
    end
  end
  table.insert(Queue, pos, job)
end

-- The request's quantity as a canonical decimal string (positive, at most 70 digits, as wAR allows), or nil.
local function parseQuantity(text)
  if type(text) ~= "string" or not text:match("^%d+$") then return nil end
  local digits = text:gsub("^0+", "")
  if digits == "" or #digits > 70 then return nil end
  return digits
end

local function startInference(msg)
  local client = msg.Tags.Sender or msg.Sender
  local quantity = msg.Tags.Quantity or msg.Quantity
  local reference = msg.Tags["X-Reference"] or ""
  local prompt = msg.Tags["X-Prompt"]
  local tokensText = msg.Tags["X-Tokens"]
  if type(client) ~= "string" or client == "" then
    print("Herder: Credit-Notice without Sender ignored")
    return
  end
  local q = parseQuantity(quantity)
  if not q then
    if type(quantity) == "string" and quantity ~= "" then
      refund(client, quantity, reference, "Invalid quantity")
    else
      print("Herder: Credit-Notice without Quantity ignored")
    end
    return
  end
  if tokensText == nil or tokensText == "" then
    return refund(client, q, reference, "Missing X-Tokens")
  end
  local digits = string.match(tokensText, "^%s*(%d+)%s*$")
  if not digits then
    return refund(client, q, reference, "Invalid X-Tokens")
  end
  local tokens = math.tointeger(tonumber(digits)) or math.maxinteger
  if tokens < 1 then
    return refund(client, q, reference, "X-Tokens must be at least 1")
  end
  if tokens > Herder.MaxTokens then
    return refund(client, q, reference, "Too many tokens (max " .. Herder.MaxTokens .. ")")
  end
  if prompt == nil or prompt == "" then
    return refund(client, q, reference, "Missing X-Prompt")
  end
  if #prompt > Herder.MaxPromptBytes then
    return refund(client, q, reference, "Prompt too long (max " .. Herder.MaxPromptBytes .. " bytes)")
  end
  local needed = Herder.BaseFee + (countWords(prompt) + tokens) * Herder.TokenFee
  if bint(q) < bint(needed) then
    print("Insufficient payment: " .. q)
    return refund(client, q, reference, "Insufficient payment", { ["X-Needed"] = tostring(needed) })
  end
  if #Queue >= Herder.MaxQueue then
    return refund(client, q, reference, "Queue full")
  end
  JobCounter = JobCounter + 1
  local job = {
    id = tostring(JobCounter), client = client, reference = reference, prompt = prompt, tokens = tokens,
    quantity = q, needed = needed, multiplier = tonumber(q) / needed, received = timestampOf(msg),
  }
  enqueue(job)
  print("Herder: job " .. job.id .. " from " .. short(client) .. " queued (" .. formatMultiplier(job.multiplier)
    .. "x, ref " .. (reference ~= "" and reference or "-") .. ")")
end

-- The busy job a worker's reply belongs to, or nil (with a log line) for replies we do not expect.
local function jobFor(msg, kind)
  local job = Busy[msg.From]
  if not job then
    print("Herder: " .. kind .. " not from a busy worker (" .. short(msg.From) .. "), ignored")
    return nil
  end
  local ref = msg.Tags["Job-Id"]
  if ref ~= nil and ref ~= job.id then
    print("Herder: " .. kind .. " for stale job " .. tostring(ref) .. " from " .. short(msg.From) .. ", ignored")
    return nil
  end
  return job
end

local function isOwner(msg)
  return msg.From == Owner
end

local function workerStates()
  local out = {}
  for _, w in ipairs(Workers) do
    -- model: what the worker last reported loading (absent until it answers an Init)
    table.insert(out, { id = w, state = Busy[w] and "busy" or "idle", jobs = stats(w).jobs, model = stats(w).model })
  end
  return out
end

local function infoBlurb()
  local name = Herder.ModelName or "an LLM"
  local model = Herder.Model and (" (model " .. Herder.Model .. ")") or ""
  return "A decentralized service for LLM inference with " .. name .. model .. ". Pay wAR with X-Prompt, "
    .. "X-Tokens and X-Reference tags; fee = Base-Fee + (words + tokens) * Token-Fee."
end

local function initWorkers(targets)
  if not Herder.Model then return end
  for _, w in ipairs(targets) do
    ao.send({ Target = w, Action = "Init", ["Model-Id"] = Herder.Model })
  end
end

-- Every message (and every Cron tick) first reclaims timed-out workers, then refills them.
Handlers.prepend("Herder.Timeouts", function() return "continue" end, function(msg)
  local spare = nil
  if msg.Tags.Action == "Inference-Response" then
    -- a busy worker answering its own job is served, not reclaimed, even when late
    local job = Busy[msg.From]
    local ref = msg.Tags["Job-Id"]
    if job and (ref == nil or ref == job.id) then spare = msg.From end
  end
  if reclaimExpired(msg, spare) > 0 then dispatch(msg) end
end)

Handlers.add("Herder.Cron", { Action = "Cron" }, function() end)

Handlers.add("Herder.Info", { Action = "Info" }, function(msg)
  ao.send({
    Target = msg.From, Action = "Info-Response", Name = "Llama-Herder", Version = HerderVersion,
    ["Base-Fee"] = tostring(Herder.BaseFee), ["Token-Fee"] = tostring(Herder.TokenFee),
    ["Last-Multiplier"] = formatMultiplier(LastMultiplier), ["Queue-Length"] = tostring(#Queue),
    Model = Herder.Model, ["Model-Name"] = Herder.ModelName, Data = infoBlurb(),
  })
end)

Handlers.add("Herder.Credit-Notice", { Action = "Credit-Notice" }, function(msg)
  if not Herder.Token or msg.From ~= Herder.Token then
    print("Herder: Credit-Notice from " .. short(msg.From) .. " (not the token) ignored")
    return
  end
  startInference(msg)
  dispatch(msg)
end)

Handlers.add("Herder.Token-Notices", function(msg)
  local action = msg.Tags.Action
  return msg.From == Herder.Token and (action == "Debit-Notice" or action == "Transfer-Error")
end, function(msg)
  if msg.Tags.Action == "Transfer-Error" then
    print("Herder: refund failed: " .. tostring(msg.Tags.Error))
  end
end)

Handlers.add("Herder.Inference-Response", { Action = "Inference-Response" }, function(msg)
  local job = jobFor(msg, "Inference-Response")
  if not job then return end
  local out = { Target = job.client, Action = "Inference-Response", Data = msg.Data or "" }
  if job.reference ~= "" then out["X-Reference"] = job.reference end
  ao.send(out)
  local now = timestampOf(msg)
  local took = (now and job.started) and (now - job.started) or 0
  print("Herder: job " .. job.id .. " done by " .. short(msg.From) .. " in " .. took .. " ms")
  release(msg.From)
  stats(msg.From).jobs = stats(msg.From).jobs + 1
  JobsDone = JobsDone + 1
  dispatch(msg)
end)

Handlers.add("Herder.Inference-Error", { Action = "Inference-Error" }, function(msg)
  local job = jobFor(msg, "Inference-Error")
  if not job then return end
  release(msg.From)
  refund(job.client, job.quantity, job.reference, "Worker error: " .. tostring(msg.Tags.Error or "unknown"))
  dispatch(msg)
end)

Handlers.add("Herder.Worker-Replies", function(msg)
  local action = msg.Tags.Action
  return (action == "Worker-Initialized" or action == "Init-Error") and isWorker(msg.From)
end, function(msg)
  if msg.Tags.Action == "Init-Error" then
    print("Herder: worker " .. short(msg.From) .. " failed to load: " .. tostring(msg.Tags.Error))
  else
    stats(msg.From).model = msg.Tags["Model-Id"]
    print("Herder: worker " .. short(msg.From) .. " ready")
  end
end)

local function admin(action, fn)
  Handlers.add("Herder." .. action, { Action = action }, function(msg)
    if not isOwner(msg) then
      print("Herder: " .. action .. " from " .. short(msg.From) .. " refused (owner only)")
      return
    end
    local reply = fn(msg)
    reply.Target = msg.From
    reply.Action = action .. "-Response"
    ao.send(reply)
  end)
end

admin("Add-Worker", function(msg)
  local w = msg.Tags.Worker
  if not addWorker(w) then
    return { Worker = w, Result = "unchanged", Data = "Worker missing or already in the herd" }
  end
  initWorkers({ w })
  dispatch(msg)
  return { Worker = w, Result = "added", Data = "Worker " .. w .. " added" }
end)

admin("Remove-Worker", function(msg)
  local w = msg.Tags.Worker
  for i, pid in ipairs(Workers) do
    if pid == w then
      table.remove(Workers, i)
      -- a job it is running still completes (or times out); it just gets no new work
      return { Worker = w, Result = "removed", Data = "Worker " .. w .. " removed" }
    end
  end
  return { Worker = w, Result = "unchanged", Data = "Worker not in the herd" }
end)

admin("Set-Model", function(msg)
  local model = msg.Tags["Model-Id"]
  if type(model) ~= "string" or model == "" then
    return { Result = "unchanged", Data = "Model-Id is required" }
  end
  Herder.Model = model
  Herder.ModelName = msg.Tags["Model-Name"] or Herder.ModelName
  initWorkers(Workers)
  return { ["Model-Id"] = model, ["Model-Name"] = Herder.ModelName, Result = "set",
    Data = "Model set to " .. model }
end)

Handlers.add("Herder.Herd-Status", { Action = "Herd-Status" }, function(msg)
  local queue = {}
  for _, job in ipairs(Queue) do
    table.insert(queue, { id = job.id, client = job.client, reference = job.reference, tokens = job.tokens,
      quantity = job.quantity, multiplier = job.multiplier })
  end
  ao.send({
    Target = msg.From, Action = "Herd-Status-Response",
    Data = json.encode({
      model = Herder.Model, modelName = Herder.ModelName, baseFee = Herder.BaseFee, tokenFee = Herder.TokenFee,
      lastMultiplier = LastMultiplier, queue = queue, workers = workerStates(), jobsDone = JobsDone,
      timeout = Herder.Timeout,
    }),
  })
end)

initWorkers(Workers)
dispatch({ Timestamp = os.time() })
print("Llama-Herder " .. HerderVersion .. ": " .. #Workers .. " workers, " .. #Queue .. " queued, token "
  .. short(Herder.Token))
