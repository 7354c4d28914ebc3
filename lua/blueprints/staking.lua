--[[
  staking blueprint: stake tokens held in Balances (from the token blueprint), unstake after a delay.

  Stake (Quantity, Unstake-Delay in blocks) moves Quantity from Balances into Stakers; Unstake (Quantity) queues
  it in Unstaking until the block height reaches the staker's unstake_at; a finalization handler that runs on
  every message pays released stakes back into Balances. Stakers replies with the Stakers table as JSON.
]]
local bint = require('.bint')(256)
local json = require('json')

-- As in aos, it loads without the token blueprint and fails only when used; a note says what is missing.
local NEEDS_BALANCES = "staking needs Balances: load the token blueprint (.load-blueprint token)"
if Balances == nil then
  print("Note: " .. NEEDS_BALANCES .. " before staking.")
end
Stakers = Stakers or {}
Unstaking = Unstaking or {}
DefaultUnstakeDelay = DefaultUnstakeDelay or 1000

local function quantityOf(msg)
  assert(type(msg.Quantity) == 'string', 'Quantity is required!')
  local q = bint(msg.Quantity)
  assert(q > bint(0), 'Quantity must be greater than 0')
  return q
end

local function height(msg)
  return tonumber(msg['Block-Height']) or 0
end

Handlers.stake = function(msg)
  local qty = quantityOf(msg)
  -- aos normalises tag names, so an "UnstakeDelay" tag arrives as Unstakedelay
  local delay = tonumber(msg["Unstake-Delay"] or msg.Unstakedelay or msg.UnstakeDelay) or DefaultUnstakeDelay
  assert(Balances, NEEDS_BALANCES)
  local balance = bint(Balances[msg.From] or "0")
  assert(qty <= balance, "Insufficient balance to stake")
  Balances[msg.From] = tostring(balance - qty)
  local staker = Stakers[msg.From] or { amount = "0" }
  staker.amount = tostring(bint(staker.amount) + qty)
  staker.unstake_at = height(msg) + delay
  Stakers[msg.From] = staker
  msg.reply({ Action = "Stake-Notice", Quantity = tostring(qty), Data = "Successfully staked " .. tostring(qty) })
end

Handlers.unstake = function(msg)
  local qty = quantityOf(msg)
  local staker = Stakers[msg.From]
  assert(staker and qty <= bint(staker.amount), "Insufficient staked amount")
  staker.amount = tostring(bint(staker.amount) - qty)
  local pending = Unstaking[msg.From]
  Unstaking[msg.From] = {
    amount = tostring(bint(pending and pending.amount or "0") + qty),
    release_at = staker.unstake_at,
  }
  if bint(staker.amount) == bint(0) then Stakers[msg.From] = nil end
  msg.reply({ Action = "Unstake-Notice", Quantity = tostring(qty),
    Data = "Unstaking " .. tostring(qty) .. " until block " .. tostring(Unstaking[msg.From].release_at) })
end

local function finalize(msg)
  local now = height(msg)
  for address, info in pairs(Unstaking) do
    if now >= info.release_at then
      assert(Balances, NEEDS_BALANCES)
      Balances[address] = tostring(bint(Balances[address] or "0") + bint(info.amount))
      Unstaking[address] = nil
    end
  end
end

Handlers.add("staking.stake", Handlers.utils.hasMatchingTag("Action", "Stake"), Handlers.stake)
Handlers.add("staking.unstake", Handlers.utils.hasMatchingTag("Action", "Unstake"), Handlers.unstake)
Handlers.add("staking.stakers", Handlers.utils.hasMatchingTag("Action", "Stakers"), function(msg)
  msg.reply({ Action = "Stakers", Data = json.encode(Stakers) })
end)
Handlers.prepend("staking.finalize", function() return "continue" end, finalize)
