--[[
  @sam/Llama-Herder 1.1.0: the client of the Llama Herder (fully onchain LLM inference).

    APM.install("@sam/Llama-Herder")             -- or apm.install(...)
    Llama = require("@sam/Llama-Herder")
    Llama.run("<|user|>\nTell me a story.<|end|>\n<|assistant|>\n", 20, function(text) print(text) end)

  API
    Llama.run(prompt, tokens, callback?, { Fee = n?, Multiplier = m? }?)
        Pays the herder in wAR for `tokens` tokens of output from `prompt` (apply the model's chat
        template yourself). `callback(text)` runs once with the answer; without one the answer is
        printed as "LlamaHerder response: <text>" (when Llama.printResponses). Returns the request's
        reference (a string), or nil when it first has to ask the herder for prices (it then sends
        the payment as soon as the prices arrive).
    Llama.getPrices(callback?)     asks the herder for its prices; callback() runs when they arrive.
    Llama.calculateFee(prompt, tokens, opts?)
        The payment in wAR base units (an integer): (feeBase + feeToken * (tokens + words)) *
        lastMultiplier, times feeBump when the herder's queue is not empty; opts.Fee replaces it and
        opts.Multiplier multiplies it. nil when the prices are unknown and no Fee is given.
    Llama.countWords(prompt)       the words the herder charges for (runs of ASCII letters/digits).
    Llama.pricesKnown()            whether the herder's prices have arrived.
    Llama.herder, Llama.token      the herder and wAR token ids. By default the values of the
        process's `Llama-Herder` and `Wrapped-AR` spawn tags, else the AO network's ids.
    Llama.feeBase, Llama.feeToken, Llama.lastMultiplier, Llama.queueLength
                                   the herder's last price info (nil until it arrives).
    Llama.feeBump (1.005), Llama.printResponses (true), Llama.reference (the next reference),
    Llama.pending (reference -> request not yet answered).

  Messages: payments go to the token as Action=Transfer, Recipient=<herder>, Quantity,
  X-Prompt, X-Tokens and X-Reference; the herder answers Info-Response and Inference-Response
  (only messages From the herder are believed). A refund from the herder (a wAR Credit-Notice whose
  Sender is the herder, with X-Reason and the X-Reference of a pending request) and a wAR
  Transfer-Error (the process holds too little wAR) are reported and drop the request.

  Changes from the reference client (1.0.x): a static Fee works before any prices are known;
  "prices known" does not depend on a non-zero Base-Fee; arguments are checked with clear errors;
  refunds and failed payments are reported instead of leaving a callback waiting forever; the ids
  follow the node's spawn tags. Loading sets the global `Llama` only when it is not already set,
  and reloading keeps the counter, pending requests and prices.
]]

local PACKAGE = "@sam/Llama-Herder"
local NETWORK_HERDER = "wh5vB2IbqmIBUqgodOaTvByNFDPr73gbUq1bVOUtCrw"
local NETWORK_TOKEN = "xU9zFkq3X2ZQ6olwNVvr1vUWIjc3kXTWr7xKQD6dh10"

-- Reuse the table of an earlier load, so that references, callbacks and prices survive a reload.
local Llama = package.loaded[PACKAGE]
if type(Llama) ~= "table" or Llama._package ~= PACKAGE then
  if type(_G.Llama) == "table" and _G.Llama._package == PACKAGE then
    Llama = _G.Llama
  else
    Llama = {}
  end
end
Llama._package = PACKAGE
Llama._version = "1.1.0"

-------------------------------------------------------------------------------
-- ids

-- The value of a spawn tag of this process (names compared case-insensitively). aos turns
-- Process.Tags into a name -> value map and keeps the list as TagArray; accept either form.
local function processTag(name)
  local env = type(ao) == "table" and ao.env or nil
  local process = type(env) == "table" and env.Process or nil
  if type(process) ~= "table" then return nil end
  local wanted = name:lower()
  for _, tags in ipairs({ process.TagArray, process.Tags }) do
    if type(tags) == "table" then
      for k, v in pairs(tags) do
        local n, value = k, v
        if type(v) == "table" then n, value = v.name, v.value end
        if type(n) == "string" and n:lower() == wanted and type(value) == "string" and value ~= "" then
          return value
        end
      end
    end
  end
  return nil
end

Llama.herder = Llama.herder or processTag("Llama-Herder") or NETWORK_HERDER
Llama.token = Llama.token or processTag("Wrapped-AR") or NETWORK_TOKEN

-------------------------------------------------------------------------------
-- state

Llama.feeBump = Llama.feeBump or 1.005
Llama.printResponses = true
Llama.reference = Llama.reference or 0
Llama.pending = Llama.pending or {}
Llama.infoCallbacks = Llama.infoCallbacks or {}
-- feeBase, feeToken, lastMultiplier and queueLength stay nil until the herder's Info-Response

local function say(text)
  local c = type(Colors) == "table" and Colors or {}
  print((c.gray or "") .. "LlamaHerder: " .. (c.reset or "") .. text)
end

local function warn(text)
  local c = type(Colors) == "table" and Colors or {}
  print((c.red or "") .. "LlamaHerder: " .. text .. (c.reset or ""))
end

-------------------------------------------------------------------------------
-- arguments and fees

local function checkPrompt(fn, prompt)
  if type(prompt) ~= "string" then
    error(fn .. ": prompt must be a string, got " .. type(prompt), 3)
  end
  if prompt == "" then
    error(fn .. ": prompt must not be empty", 3)
  end
end

local function checkTokens(fn, tokens)
  if type(tokens) ~= "number" or tokens ~= tokens or tokens < 1 or tokens ~= math.floor(tokens)
      or tokens == math.huge then
    error(fn .. ": tokens must be a positive integer, got " .. (type(tokens) == "string" and string.format("%q", tokens)
      or tostring(tokens)), 3)
  end
  return math.tointeger(tokens) or tokens
end

local function checkOptions(fn, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(fn .. ": options must be a table such as { Fee = 100 } or { Multiplier = 2 }, got " .. type(opts), 3)
  end
  for _, key in ipairs({ "Fee", "Multiplier" }) do
    local v = opts[key]
    if v ~= nil then
      local n = tonumber(v)
      if n == nil or n ~= n or n <= 0 or n == math.huge then
        error(fn .. ": " .. key .. " must be a positive number, got " .. tostring(v), 3)
      end
    end
  end
  return opts
end

--- The number of words the herder charges for: runs of ASCII letters and digits (Lua %w+).
function Llama.countWords(prompt)
  local n = 0
  for _ in tostring(prompt):gmatch("%w+") do n = n + 1 end
  return n
end

--- Whether the herder's prices are known (a Base-Fee of 0 counts as known).
function Llama.pricesKnown()
  return type(Llama.feeBase) == "number" and type(Llama.feeToken) == "number"
end

local function fee(prompt, tokens, opts)
  local f
  if opts.Fee ~= nil then
    f = tonumber(opts.Fee)
  else
    if not Llama.pricesKnown() then return nil end
    f = (Llama.feeBase + Llama.feeToken * (tokens + Llama.countWords(prompt))) * (Llama.lastMultiplier or 1)
    if (Llama.queueLength or 0) > 0 then
      f = f * Llama.feeBump
    end
  end
  if opts.Multiplier ~= nil then
    f = f * tonumber(opts.Multiplier)
  end
  local q = math.floor(f)
  return math.tointeger(q) or q
end

--- The payment for a request in wAR base units, or nil when prices are unknown and no Fee is given.
function Llama.calculateFee(prompt, tokens, opts)
  checkPrompt("Llama.calculateFee", prompt)
  tokens = checkTokens("Llama.calculateFee", tokens)
  opts = checkOptions("Llama.calculateFee", opts)
  return fee(prompt, tokens, opts)
end

local function quantityString(q)
  if math.type(q) == "integer" then return tostring(q) end
  return string.format("%.0f", q)
end

-------------------------------------------------------------------------------
-- requests

--- Ask the herder for its prices; `callback()` runs once they arrive.
function Llama.getPrices(callback)
  if callback ~= nil and type(callback) ~= "function" then
    error("Llama.getPrices: callback must be a function, got " .. type(callback), 2)
  end
  if callback then
    table.insert(Llama.infoCallbacks, callback)
  end
  ao.send({ Target = Llama.herder, Action = "Info" })
end

--- Pay the herder for an inference; see the header for the arguments.
function Llama.run(prompt, tokens, callback, opts)
  checkPrompt("Llama.run", prompt)
  tokens = checkTokens("Llama.run", tokens)
  if callback ~= nil and type(callback) ~= "function" then
    error("Llama.run: callback must be a function, got " .. type(callback), 2)
  end
  opts = checkOptions("Llama.run", opts)

  local q = fee(prompt, tokens, opts)
  if q == nil then
    -- no prices yet: fetch them, then try again
    Llama.getPrices(function() Llama.run(prompt, tokens, callback, opts) end)
    return nil
  end
  if q < 1 then
    error("Llama.run: the fee comes to " .. quantityString(q) .. " wAR units; a payment must be at least 1", 2)
  end

  local ref = tostring(Llama.reference)
  Llama.reference = Llama.reference + 1
  local quantity = quantityString(q)
  Llama.pending[ref] = {
    callback = callback,
    quantity = quantity,
    tokens = tokens,
    words = Llama.countWords(prompt),
    paid = false,
    timestamp = type(os.time) == "function" and os.time() or nil,
  }
  ao.send({
    Target = Llama.token,
    Action = "Transfer",
    Recipient = Llama.herder,
    Quantity = quantity,
    ["X-Prompt"] = prompt,
    ["X-Tokens"] = tostring(tokens),
    ["X-Reference"] = ref,
  })
  return ref
end

-------------------------------------------------------------------------------
-- handlers

local function fromHerder(msg, action)
  return msg.Action == action and msg.From == Llama.herder
end

Handlers.add("LlamaHerder.Info-Response",
  function(msg) return fromHerder(msg, "Info-Response") end,
  function(msg)
    local base, perToken = tonumber(msg["Base-Fee"]), tonumber(msg["Token-Fee"])
    if base == nil or perToken == nil then
      warn("the herder's price info has no numeric Base-Fee and Token-Fee; requests stay pending")
      return
    end
    say("Handling new price info...")
    Llama.feeBase = base
    Llama.feeToken = perToken
    Llama.lastMultiplier = tonumber(msg["Last-Multiplier"]) or 1
    Llama.queueLength = tonumber(msg["Queue-Length"]) or 0
    local callbacks = Llama.infoCallbacks
    Llama.infoCallbacks = {}
    for _, cb in ipairs(callbacks) do
      local ok, err = pcall(cb)
      if not ok then warn("a price callback failed: " .. tostring(err)) end
    end
  end)

Handlers.add("LlamaHerder.Inference-Response",
  function(msg) return fromHerder(msg, "Inference-Response") end,
  function(msg)
    local ref = msg["X-Reference"]
    local job = ref and Llama.pending[ref] or nil
    local text = msg.Data
    if job then Llama.pending[ref] = nil end
    if job and job.callback then
      local ok, err = pcall(job.callback, text)
      if not ok then warn("the callback of request " .. ref .. " failed: " .. tostring(err)) end
    elseif Llama.printResponses then
      print("LlamaHerder response: " .. tostring(text))
    end
  end)

-- A Debit-Notice for one of our payments: the herder has been paid. The notice is not consumed
-- ("continue"), so aos still shows it as usual.
Handlers.add("LlamaHerder.Paid",
  function(msg)
    if msg.Action == "Debit-Notice" and msg.From == Llama.token and msg.Recipient == Llama.herder
        and Llama.pending[msg["X-Reference"] or ""] ~= nil then
      return "continue"
    end
    return false
  end,
  function(msg)
    Llama.pending[msg["X-Reference"]].paid = true
  end)

-- The herder gave a payment back (too little paid, invalid or expired request).
Handlers.add("LlamaHerder.Refund",
  function(msg)
    return msg.Action == "Credit-Notice" and msg.From == Llama.token and msg.Sender == Llama.herder
      and msg["X-Reason"] ~= nil and Llama.pending[msg["X-Reference"] or ""] ~= nil
  end,
  function(msg)
    local ref = msg["X-Reference"]
    Llama.pending[ref] = nil
    local line = "request " .. ref .. " refunded: " .. tostring(msg["X-Reason"]) .. " (" .. tostring(msg.Quantity)
      .. " wAR units returned"
    if msg["X-Needed"] then line = line .. "; the herder needs " .. tostring(msg["X-Needed"]) end
    warn(line .. ")")
  end)

-- The token refused a payment. It answers with the X-Reference of the Transfer when it replies with
-- msg.reply; an older token sends none, and then the oldest payment not yet debited is the one.
local function failedJob(msg)
  local ref = msg["X-Reference"]
  if ref ~= nil then
    local job = Llama.pending[ref]
    if job and not job.paid then return ref end
    return nil
  end
  local best
  for r, job in pairs(Llama.pending) do
    if not job.paid and (best == nil or (tonumber(r) or math.huge) < (tonumber(best) or math.huge)) then
      best = r
    end
  end
  return best
end

Handlers.add("LlamaHerder.Transfer-Error",
  function(msg)
    return msg.Action == "Transfer-Error" and msg.From == Llama.token and failedJob(msg) ~= nil
  end,
  function(msg)
    local ref = failedJob(msg)
    local job = Llama.pending[ref]
    Llama.pending[ref] = nil
    warn("transfer error: request " .. ref .. " was not paid: this process holds too little wAR to pay "
      .. tostring(job.quantity) .. " units to the herder (" .. tostring(msg.Error or "Insufficient Balance!")
      .. "). Fund the process (e.g. .faucet) and run it again.")
  end)

if _G.Llama == nil then
  _G.Llama = Llama
end

return Llama
