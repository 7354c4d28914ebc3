--[[
  Herd worker: runs LLM inference for one Llama Herder.

  Loaded by the node as `ServiceConfig = {...}` followed by this file; re-loading keeps the counters.
  ServiceConfig fields: Herder (herder pid; the only sender of Inference), Model (model data id, loaded from
  /data/<id> on load), MaxTokens (512).

  Protocol (tag names as aos 2.0.4 normalises them):
    Init{Model-Id} (from the Owner or the Herder) -> loads /data/<Model-Id> (the current model without the tag;
                   a model already loaded is kept);
                   replies Worker-Initialized{Model-Id}, or Init-Error{Model-Id, Error}.
    Inference{Tokens, Job-Id, Data = prompt} (from the Herder only)
                -> Inference-Response{Job-Id, Tokens = pieces generated, Data = text},
                   or Inference-Error{Job-Id, Error} on any failure.
                   (The job id is not in a `Reference` tag: ao.send sets its own Reference first.)
    Info        -> Info-Response{Name = Llama-Worker, Herder, Model, Jobs-Done}.
]]

local cfg = type(ServiceConfig) == "table" and ServiceConfig or {}

Worker = Worker or {}
Worker.Herder = cfg.Herder or Worker.Herder
Worker.MaxTokens = math.tointeger(tonumber(cfg.MaxTokens)) or Worker.MaxTokens or 512
Worker.Model = cfg.Model or Worker.Model
JobsDone = JobsDone or 0

local function short(id)
  return tostring(id or "?"):sub(1, 6)
end

-- Load a model; returns true, or false and the error text.
local function loadModel(model)
  local ok, err = pcall(function()
    Llama = require("llama")
    Llama.logLevel = 2
    Llama.logToStderr = false
    Llama.load("/data/" .. model)
  end)
  if ok then
    Worker.Model = model
    Worker.Loaded = model
    print("Worker: model " .. model .. " loaded")
    return true
  end
  err = tostring(err)   -- a failed load leaves the previous model in place
  print("Worker: cannot load " .. model .. ": " .. err)
  return false, err
end

local function generate(prompt, limit)
  if not Worker.Loaded then error("no model loaded", 0) end
  Llama.setPrompt(prompt)
  local pieces, n = {}, 0
  while n < limit do
    local piece = Llama.next()
    if piece == nil then break end
    n = n + 1
    pieces[n] = piece
  end
  return table.concat(pieces), n
end

Handlers.add("Worker.Init", { Action = "Init" }, function(msg)
  if msg.From ~= Owner and msg.From ~= Worker.Herder then
    print("Worker: Init from " .. short(msg.From) .. " refused")
    return
  end
  local model = msg.Tags["Model-Id"] or Worker.Model
  if type(model) ~= "string" or model == "" then
    ao.send({ Target = msg.From, Action = "Init-Error", Error = "No Model-Id given" })
    return
  end
  local ok, err = true, nil
  if Worker.Loaded ~= model then ok, err = loadModel(model) end
  if ok then
    ao.send({ Target = msg.From, Action = "Worker-Initialized", ["Model-Id"] = model })
  else
    ao.send({ Target = msg.From, Action = "Init-Error", ["Model-Id"] = model, Error = err })
  end
end)

Handlers.add("Worker.Inference", { Action = "Inference" }, function(msg)
  if not Worker.Herder or msg.From ~= Worker.Herder then
    print("Worker: Inference from " .. short(msg.From) .. " ignored (not the herder)")
    return
  end
  local reference = msg.Tags["Job-Id"]
  local ok, text, n = pcall(function()
    local tokens = math.tointeger(tonumber(msg.Tags.Tokens))
    if not tokens or tokens < 1 then error("invalid Tokens: " .. tostring(msg.Tags.Tokens), 0) end
    local prompt = msg.Data
    if type(prompt) ~= "string" or prompt == "" then error("empty prompt", 0) end
    return generate(prompt, math.min(tokens, Worker.MaxTokens))
  end)
  if ok then
    JobsDone = JobsDone + 1
    print("Worker: job " .. tostring(reference) .. " done, " .. n .. " pieces")
    ao.send({ Target = msg.From, Action = "Inference-Response", ["Job-Id"] = reference, Tokens = tostring(n),
      Data = text })
  else
    local err = tostring(text):sub(1, 500)
    print("Worker: job " .. tostring(reference) .. " failed: " .. err)
    ao.send({ Target = msg.From, Action = "Inference-Error", ["Job-Id"] = reference, Error = err })
  end
end)

Handlers.add("Worker.Info", { Action = "Info" }, function(msg)
  ao.send({ Target = msg.From, Action = "Info-Response", Name = "Llama-Worker", Herder = Worker.Herder,
    Model = Worker.Loaded, ["Jobs-Done"] = tostring(JobsDone) })
end)

if cfg.Model then
  loadModel(cfg.Model)
end
print("Herd worker: herder " .. short(Worker.Herder) .. ", model " .. tostring(Worker.Loaded))
