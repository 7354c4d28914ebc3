--[[
  arena blueprint: a framework for round-based arena games.

  States: Not-Started -> Waiting (players register and pay) -> Playing -> back to Waiting. Time moves with the
  message Timestamp (send cron ticks: spawn with --cron and run .monitor, or send Action=Tick).
  Entry: send PaymentQty of PaymentToken to this process (a Credit-Notice from PaymentToken) and Register.
  Listeners (Listen / Unlisten) get every announcement. eliminatePlayer(eliminated, eliminator) moves the
  eliminated player's stake to the eliminator; when one player (or none) is left or the game time is over,
  each player's winnings (plus BonusQty to the last survivor) are paid out with token Transfers.
  Games override onGameStart(), onGameEnd(), onTick(msg) and use Players[pid] = {energy, health, ...}.
]]
local json = require('json')

GameMode = GameMode or "Not-Started"
StateChangeTime = StateChangeTime or nil
WaitTime = WaitTime or 2 * 60 * 1000
GameTime = GameTime or 20 * 60 * 1000
Now = Now or nil
MinimumPlayers = MinimumPlayers or 2
PaymentToken = PaymentToken or nil
PaymentQty = PaymentQty or 1
BonusQty = BonusQty or 0
Waiting = Waiting or {}
Players = Players or {}
Listeners = Listeners or {}
Rewards = Rewards or {}

onGameStart = onGameStart or function() end
onGameEnd = onGameEnd or function() end
onTick = onTick or function(msg) end
playerInitState = playerInitState or function() return { energy = 100, health = 100 } end

function announce(event, description)
  for _, listener in ipairs(Listeners) do
    ao.send({ Target = listener, Action = "Announcement", Event = event, Data = description })
  end
  print(Colors.gray .. "Announcement: " .. Colors.green .. event .. Colors.gray .. " " .. description .. Colors.reset)
end

local function sendReward(recipient, qty, reason)
  if qty <= 0 then return end
  if PaymentToken then
    ao.send({ Target = PaymentToken, Action = "Transfer", Recipient = recipient, Quantity = tostring(qty),
      Reason = reason })
  end
  Rewards[recipient] = (Rewards[recipient] or 0) + qty
end

local function countPaid()
  local n = 0
  for _, paid in pairs(Waiting) do if paid then n = n + 1 end end
  return n
end

local function countPlayers()
  local n = 0
  for _ in pairs(Players) do n = n + 1 end
  return n
end

function startWaitingPeriod()
  GameMode = "Waiting"
  StateChangeTime = Now + WaitTime
  announce("Started-Waiting-Period", "The game is about to begin! Send your token to take part.")
end

function startGamePeriod()
  if countPaid() < MinimumPlayers then
    announce("Not-Enough-Players", "Not enough players registered! Restarting...")
    for player, paid in pairs(Waiting) do
      if paid then Waiting[player] = false; sendReward(player, PaymentQty, "Refund") end
    end
    startWaitingPeriod()
    return
  end
  GameMode = "Playing"
  StateChangeTime = Now + GameTime
  Players = {}
  for player, paid in pairs(Waiting) do
    if paid then Players[player] = playerInitState() end
  end
  Winnings = {}
  for player in pairs(Players) do Winnings[player] = PaymentQty end
  announce("Started-Game", "The game has started. Good luck!")
  onGameStart()
end

function eliminatePlayer(eliminated, eliminator)
  if not Players[eliminated] then return end
  if eliminator and Winnings[eliminator] then
    Winnings[eliminator] = Winnings[eliminator] + (Winnings[eliminated] or 0)
  end
  Winnings[eliminated] = 0
  Players[eliminated] = nil
  ao.send({ Target = eliminated, Action = "Eliminated", Eliminator = eliminator })
  announce("Player-Eliminated", eliminated .. " was eliminated by " .. tostring(eliminator) .. "!")
  if countPlayers() <= 1 then endGame() end
end

function endGame()
  local survivor = nil
  for player in pairs(Players) do survivor = player end
  for player, qty in pairs(Winnings or {}) do
    local bonus = (countPlayers() == 1 and player == survivor) and BonusQty or 0
    sendReward(player, qty + bonus, "Winnings")
  end
  onGameEnd()
  Players = {}
  Winnings = {}
  Waiting = {}
  announce("Game-Ended", "Congratulations! The game has ended." .. (survivor and (" Winner: " .. survivor) or ""))
  startWaitingPeriod()
end

local function tick(msg)
  Now = msg.Timestamp
  if GameMode == "Not-Started" then
    startWaitingPeriod()
  elseif StateChangeTime and Now >= StateChangeTime then
    if GameMode == "Waiting" then startGamePeriod() elseif GameMode == "Playing" then endGame() end
  end
  if GameMode == "Playing" then onTick(msg) end
end

Handlers.prepend("arena.timers", function() return "continue" end, function(msg)
  if msg.Action == "Tick" or msg.Action == "Cron" then return end
  Now = msg.Timestamp
  if StateChangeTime and Now >= StateChangeTime and GameMode ~= "Not-Started" then tick(msg) end
end)

Handlers.add("arena.tick", function(msg) return msg.Action == "Tick" or msg.Action == "Cron" end, tick)

Handlers.add("arena.payment", function(msg)
  return msg.Action == "Credit-Notice" and PaymentToken ~= nil and msg.From == PaymentToken
end, function(msg)
  local qty = tonumber(msg.Quantity) or 0
  if qty >= PaymentQty and GameMode ~= "Playing" then
    Waiting[msg.Sender] = true
    ao.send({ Target = msg.Sender, Action = "Payment-Received" })
    announce("Player-Ready", msg.Sender .. " is ready to play!")
  else
    sendReward(msg.Sender, qty, "Refund")
  end
end)

Handlers.add("arena.register", Handlers.utils.hasMatchingTag("Action", "Register"), function(msg)
  if Waiting[msg.From] == nil then Waiting[msg.From] = (PaymentToken == nil) end
  msg.reply({ Action = "Registered", Data = PaymentToken and ("Send " .. PaymentQty .. " of " .. PaymentToken
    .. " to play") or "Registered: you are in the next game" })
end)

Handlers.add("arena.unregister", Handlers.utils.hasMatchingTag("Action", "Unregister"), function(msg)
  if Waiting[msg.From] and PaymentToken then sendReward(msg.From, PaymentQty, "Refund") end
  Waiting[msg.From] = nil
  msg.reply({ Action = "Unregistered" })
end)

Handlers.add("arena.listen", Handlers.utils.hasMatchingTag("Action", "Listen"), function(msg)
  for _, l in ipairs(Listeners) do if l == msg.From then return end end
  table.insert(Listeners, msg.From)
  msg.reply({ Action = "Listening" })
end)

Handlers.add("arena.unlisten", Handlers.utils.hasMatchingTag("Action", "Unlisten"), function(msg)
  for i, l in ipairs(Listeners) do if l == msg.From then table.remove(Listeners, i) break end end
end)

Handlers.add("arena.state", Handlers.utils.hasMatchingTag("Action", "GetGameState"), function(msg)
  msg.reply({ Action = "GameState", Data = json.encode({
    GameMode = GameMode, TimeRemaining = StateChangeTime and Now and (StateChangeTime - Now) or nil,
    Players = Players, Waiting = Waiting }) })
end)

return "Arena loaded: GameMode " .. GameMode
