--[[
  token blueprint: the ao Standard Token.

  Handlers: Info, Balance, Balances, Transfer (Debit-Notice / Credit-Notice, X- tags forwarded, Cast = no
  notices), Mint (only the process itself), Total-Supply, Burn. Balances are decimal strings handled with
  bint(256). Re-loading keeps the existing Balances, TotalSupply, Name, Ticker, Logo and Denomination.
  A failed transfer leaves Balances exactly as it was.
]]
local bint = require('.bint')(256)
local json = require('json')

local function toBalance(value) return tostring(bint(value)) end
local function add(a, b) return tostring(bint(a) + bint(b)) end
local function sub(a, b) return tostring(bint(a) - bint(b)) end

local function reply(msg, out)
  if msg.reply then return msg.reply(out) end
  out.Target = msg.From
  return ao.send(out)
end

local function quantityOf(msg)
  assert(type(msg.Quantity) == 'string', 'Quantity is required!')
  local q = bint(msg.Quantity)
  assert(q > bint(0), 'Quantity must be greater than 0')
  return q
end

Variant = "0.0.3"
Denomination = Denomination or 12
Balances = Balances or { [ao.id] = toBalance("10000" .. string.rep("0", Denomination)) }
TotalSupply = TotalSupply or toBalance("10000" .. string.rep("0", Denomination))
Name = Name or 'Points Coin'
Ticker = Ticker or 'PNTS'
Logo = Logo or 'SBCCXwwecBlDqRLUjb8dYABExTJXLieawf7m2aBJ-KY'

Handlers.add('info', Handlers.utils.hasMatchingTag('Action', 'Info'), function(msg)
  reply(msg, { Name = Name, Ticker = Ticker, Logo = Logo, Denomination = tostring(Denomination) })
end)

Handlers.add('balance', Handlers.utils.hasMatchingTag('Action', 'Balance'), function(msg)
  local account = msg.Tags.Recipient or msg.Tags.Target or msg.From
  local balance = Balances[account] or "0"
  reply(msg, { Balance = balance, Ticker = Ticker, Account = account, Data = balance })
end)

Handlers.add('balances', Handlers.utils.hasMatchingTag('Action', 'Balances'), function(msg)
  reply(msg, { Data = json.encode(Balances) })
end)

Handlers.add('transfer', Handlers.utils.hasMatchingTag('Action', 'Transfer'), function(msg)
  assert(type(msg.Recipient) == 'string', 'Recipient is required!')
  local qty = quantityOf(msg)
  local have = bint(Balances[msg.From] or "0")
  if qty <= have then
    Balances[msg.From] = sub(have, qty)
    Balances[msg.Recipient] = add(Balances[msg.Recipient] or "0", qty)
    if not msg.Cast then
      local debit = {
        Action = 'Debit-Notice', Recipient = msg.Recipient, Quantity = msg.Quantity,
        Data = Colors.gray .. "You transferred " .. Colors.blue .. msg.Quantity .. Colors.gray .. " to "
          .. Colors.green .. msg.Recipient .. Colors.reset
      }
      local credit = {
        Target = msg.Recipient, Action = 'Credit-Notice', Sender = msg.From, Quantity = msg.Quantity,
        Data = Colors.gray .. "You received " .. Colors.blue .. msg.Quantity .. Colors.gray .. " from "
          .. Colors.green .. msg.From .. Colors.reset
      }
      for name, value in pairs(msg.Tags) do
        if type(name) == 'string' and name:sub(1, 2) == "X-" then
          debit[name] = value
          credit[name] = value
        end
      end
      reply(msg, debit)
      ao.send(credit)
    end
  else
    reply(msg, { Action = 'Transfer-Error', ['Message-Id'] = msg.Id, Error = 'Insufficient Balance!' })
  end
end)

Handlers.add('mint', Handlers.utils.hasMatchingTag('Action', 'Mint'), function(msg)
  local qty = quantityOf(msg)
  if msg.From == ao.id then
    Balances[msg.From] = add(Balances[msg.From] or "0", qty)
    TotalSupply = add(TotalSupply, qty)
    reply(msg, { Data = Colors.gray .. "Successfully minted " .. Colors.blue .. msg.Quantity .. Colors.reset })
  else
    reply(msg, {
      Action = 'Mint-Error', ['Message-Id'] = msg.Id,
      Error = 'Only the Process Id can mint new ' .. Ticker .. ' tokens!'
    })
  end
end)

Handlers.add('totalSupply', Handlers.utils.hasMatchingTag('Action', 'Total-Supply'), function(msg)
  assert(msg.From ~= ao.id, 'Cannot call Total-Supply from the same process!')
  reply(msg, { Action = 'Total-Supply', Data = TotalSupply, Ticker = Ticker })
end)

Handlers.add('burn', Handlers.utils.hasMatchingTag('Action', 'Burn'), function(msg)
  local qty = quantityOf(msg)
  assert(qty <= bint(Balances[msg.From] or "0"), 'Quantity must be less than or equal to the current balance!')
  Balances[msg.From] = sub(Balances[msg.From], qty)
  TotalSupply = sub(TotalSupply, qty)
  reply(msg, { Data = Colors.gray .. "Successfully burned " .. Colors.blue .. msg.Quantity .. Colors.reset })
end)
