--[[
  Llama King: subjects beg for $LLAMA; the King has each plea graded 0-5 by the Llama Herder's model
  and grants 1, 5, 10, 20 or 100 LLAMA for grades 1..5 (nothing for 0).

  Setup (in the King's own process):
    .load-blueprint apm
    APM.install("@sam/Llama-Herder")
    .faucet                                     -- the King pays the herder in wAR
    LlamaCoin = "<the Llama Coin process id>"   -- examples/llama-coin.lua; pays the grants
    .load examples/llama-king.lua
  and in the Llama Coin process let the King grant:  GrantWhitelist["<the King's id>"] = true

  A plea is a wAR payment to the King (at least PleaPrice units) with X-Petition (1-250 chars) and
  optionally X-Sender-Name (up to 20 chars):
    Send({ Target = "<wAR id>", Action = "Transfer", Recipient = "<King id>", Quantity = "25000000000",
           ["X-Petition"] = "Oh great King, ...", ["X-Sender-Name"] = "Alice" })
  The King answers the petitioner with Action = Petition-Verdict (tags Grade, Grant; Data = his words)
  and sends Action = Grant to LlamaCoin. A bad plea is refunded at once. At most KingSlots pleas are
  graded at a time (the rest wait); a plea with no verdict within KingTimeoutMs (measured with message
  timestamps: any message, e.g. Cron, moves the King's clock) frees its slot and is refunded.
]]

local json = require("json")

local LlamaHerder = package.loaded["@sam/Llama-Herder"]
if type(LlamaHerder) ~= "table" or type(LlamaHerder.run) ~= "function" then
  print("Llama King needs the @sam/Llama-Herder package, and wAR to pay for the grading. Run:\n"
    .. "  .load-blueprint apm\n"
    .. "  APM.install(\"@sam/Llama-Herder\")\n"
    .. "  .faucet\n"
    .. "then .load this file again.")
  return "Llama King is not ready: @sam/Llama-Herder is not installed"
end

LlamaCoin = LlamaCoin                       -- set it to the Llama Coin process id
PleaPrice = PleaPrice or "25000000000"      -- 0.025 wAR, in wAR units
KingSlots = KingSlots or 3                  -- pleas graded at the same time
KingTimeoutMs = KingTimeoutMs or 600000     -- a plea with no verdict after this long is refunded
GradeTokens = GradeTokens or 80
KingPayouts = KingPayouts or { 1, 5, 10, 20, 100 }   -- LLAMA for grades 1..5
KingJobs = KingJobs or {}                   -- plea id -> plea being graded
KingQueue = KingQueue or {}                 -- pleas waiting for a slot
KingVerdicts = KingVerdicts or {}           -- { petitioner, name, grade, grant, comment }

local LLAMA = 1000000000000                 -- 10^12 units (Denomination 12)
local CONFUSED = "Your plea confused me immensely..."

local function say(text)
  print("Llama King: " .. text)
end

local function trim(s)
  return (tostring(s or ""):gsub("^%s+", ""):gsub("%s+$", ""))
end

local function now(msg)
  return tonumber(msg and msg.Timestamp) or tonumber(os.time()) or 0
end

local function gradingPrompt(name, petition)
  return "<|system|>\nYou are the Llama King of Llama Land, harsh and eccentric. A subject begs you for "
    .. "$LLAMA coins. Grade the plea from 0 (worthless) to 5 (magnificent). Reply only with JSON: "
    .. "{\"response\": \"<your royal answer, one sentence>\", \"grade\": <0 to 5>}<|end|>\n"
    .. "<|user|>\n" .. name .. " pleads: " .. petition .. "<|end|>\n"
    .. "<|assistant|>\n"
end

--- The grade (0..5) and the King's words from the model's answer: the JSON grade, else the first
-- digit, else grade 1 and a confused reply.
function ParseVerdict(text)
  text = tostring(text or "")
  local stop = text:find("<|end|>", 1, true)
  if stop then text = text:sub(1, stop - 1) end
  local grade, comment
  local object = text:match("%b{}")
  if object then
    local ok, v = pcall(json.decode, object)
    if ok and type(v) == "table" then
      grade = tonumber(v.grade or v.Grade)
      if type(v.response) == "string" and trim(v.response) ~= "" then comment = trim(v.response) end
    end
  end
  grade = grade or tonumber(text:match('"[Gg]rade"%s*:%s*"?(%-?%d+)'))
  if grade == nil then
    grade = tonumber(text:match("%d"))
  end
  if grade == nil then
    return 1, CONFUSED
  end
  grade = math.max(0, math.min(5, math.floor(grade)))
  if comment == nil then
    comment = trim(text:gsub("%b{}", ""):match("[^\n]*"))
    if comment == "" then comment = CONFUSED end
  end
  return math.tointeger(grade) or grade, comment
end

local function refund(petitioner, quantity, reason, id)
  ao.send({
    Target = LlamaHerder.token, Action = "Transfer", Recipient = petitioner, Quantity = quantity,
    ["X-Reason"] = reason, ["X-Reference"] = "llama-king-refund-" .. id,
  })
end

local function inFlight()
  local n = 0
  for _ in pairs(KingJobs) do n = n + 1 end
  return n
end

local dispatch

local function onVerdict(id, text, msg)
  local job = KingJobs[id]
  if not job then
    say("a late verdict for plea " .. id .. " is ignored (the plea expired and was refunded)")
    return
  end
  KingJobs[id] = nil
  local grade, comment = ParseVerdict(text)
  local grant = "0"
  if grade >= 1 then
    grant = tostring(KingPayouts[grade] * LLAMA)
    if LlamaCoin then
      ao.send({
        Target = LlamaCoin, Action = "Grant", Recipient = job.petitioner, Quantity = grant,
        ["X-Grade"] = tostring(grade), ["X-Petition-Id"] = id,
      })
    else
      say("LlamaCoin is not set, so the grant of " .. grant .. " units to " .. job.petitioner .. " was not paid")
    end
  end
  table.insert(KingVerdicts, { petitioner = job.petitioner, name = job.name, grade = grade, grant = grant,
    comment = comment })
  say(job.name .. ", " .. comment .. " I grade your plea " .. grade .. "/5"
    .. (grade >= 1 and (" and grant you " .. KingPayouts[grade] .. " $LLAMA.") or ": no $LLAMA for you."))
  ao.send({ Target = job.petitioner, Action = "Petition-Verdict", Grade = tostring(grade), Grant = grant,
    Data = comment })
  dispatch(now(msg))
end

dispatch = function(t)
  while inFlight() < KingSlots and #KingQueue > 0 do
    local job = table.remove(KingQueue, 1)
    job.started = t
    KingJobs[job.id] = job
    local ok, ref = pcall(LlamaHerder.run, gradingPrompt(job.name, job.petition), GradeTokens, function(text)
      onVerdict(job.id, text)
    end)
    if ok then
      job.ref = ref
    else
      KingJobs[job.id] = nil
      say("I cannot consider " .. job.name .. "'s plea now (" .. tostring(ref) .. "); it is refunded")
      refund(job.petitioner, job.quantity, "The King could not consider your plea", job.id)
    end
  end
end

local function expire(t)
  local expired = {}
  for id, job in pairs(KingJobs) do
    if job.started and t - job.started >= KingTimeoutMs then table.insert(expired, id) end
  end
  table.sort(expired)
  for _, id in ipairs(expired) do
    local job = KingJobs[id]
    KingJobs[id] = nil
    say(job.name .. ", I could not make up my mind in time; your payment is returned")
    refund(job.petitioner, job.quantity, "The King took too long", id)
  end
  if #expired > 0 then dispatch(t) end
end

local function atLeast(q, min)
  if type(q) ~= "string" or not q:match("^%d+$") then return false end
  q, min = q:gsub("^0+", ""), tostring(min):gsub("^0+", "")
  if #q ~= #min then return #q > #min end
  return q >= min
end

-- Every message moves the King's clock: expired pleas are refunded before anything else happens.
Handlers.prepend("LlamaKing.Clock", function() return "continue" end, function(msg)
  if next(KingJobs) ~= nil then expire(now(msg)) end
end)

Handlers.add("LlamaKing.Cron", "Cron", function() end)

Handlers.add("LlamaKing.Petition",
  function(msg)
    return msg.Action == "Credit-Notice" and msg.From == LlamaHerder.token and msg["X-Petition"] ~= nil
  end,
  function(msg)
    local petitioner, quantity = msg.Sender, msg.Quantity
    local petition = trim(msg["X-Petition"])
    local name = trim(msg["X-Sender-Name"])
    if name == "" then name = tostring(petitioner):sub(1, 6) end
    local problem
    if #petition < 1 or #petition > 250 then
      problem = "A petition must be 1 to 250 characters long"
    elseif #name > 20 then
      problem = "A name must be at most 20 characters long"
    elseif not atLeast(quantity, PleaPrice) then
      problem = "A plea costs " .. PleaPrice .. " wAR units"
    end
    if problem then
      say("I will not hear this plea: " .. problem)
      refund(petitioner, quantity, problem, msg.Id)
      return
    end
    table.insert(KingQueue, { id = msg.Id, petitioner = petitioner, name = name, petition = petition,
      quantity = quantity })
    say(name .. ", please allow me a few minutes to consider your plea...")
    dispatch(now(msg))
  end)

return "Llama King ready" .. (LlamaCoin and "" or " (set LlamaCoin to pay the grants)")
