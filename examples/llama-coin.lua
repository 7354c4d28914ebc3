--[[
  Llama Coin ($LLAMA): the Llama Land token. Nobody can mint it; whitelisted granters (the Llama
  King, a banker) pay it out with Action = Grant.

  Load it into its own process:
    aos llama-coin   then   .load examples/llama-coin.lua
  Let the King's process grant:
    GrantWhitelist["<the King's process id>"] = true
  (or, from the owner's wallet, Send({ Target = <coin>, Action = "Add-Granter", Granter = "<id>" })).

  Handlers
    Grant      from a whitelisted granter: Recipient, Quantity (integer string, in units of 10^-12
               LLAMA). Credits the recipient, grows the supply and sends the recipient a Grant-Notice
               (Sender = the granter, Quantity, every X- tag copied). Anyone else gets a Grant-Error.
    Add-Granter / Remove-Granter   owner only: tag Granter.
    Info       Name, Ticker, Logo, Denomination ("12").
    Balance    Recipient, else Target, else the sender: Balance, Ticker, Account, Data = balance.
    Balances   Data = JSON account -> balance.
    Transfer   Recipient, Quantity: Debit-Notice to the sender, Credit-Notice to the recipient (X- tags
               copied); too little balance gives Transfer-Error and changes nothing.
]]
local bint = require(".bint")(256)
local json = require("json")

Name = Name or "Llama Coin"
Ticker = Ticker or "LLAMA"
Logo = Logo or ""
Denomination = Denomination or 12
Balances = Balances or {}
TotalSupply = TotalSupply or "0"
GrantWhitelist = GrantWhitelist or {}

local function quantityOf(msg)
  local q = msg.Quantity
  if type(q) ~= "string" or not q:match("^%d+$") then
    return nil, "Quantity must be a whole number of units, as a string"
  end
  local n = bint(q)
  if n <= bint(0) then return nil, "Quantity must be greater than 0" end
  return n
end

local function add(a, b) return tostring(bint(a) + bint(b)) end

local function copyX(msg, out)
  for name, value in pairs(msg.Tags or {}) do
    if type(name) == "string" and name:sub(1, 2) == "X-" then out[name] = value end
  end
  return out
end

local function answer(msg, out)
  if msg.reply then return msg.reply(out) end
  out.Target = msg.From
  return ao.send(out)
end

Handlers.add("LlamaCoin.Grant", "Grant", function(msg)
  if not GrantWhitelist[msg.From] then
    answer(msg, { Action = "Grant-Error", Error = "Only whitelisted granters can grant " .. Ticker })
    return
  end
  local q, err = quantityOf(msg)
  if not q or type(msg.Recipient) ~= "string" or msg.Recipient == "" then
    answer(msg, { Action = "Grant-Error", Error = err or "Recipient is required" })
    return
  end
  Balances[msg.Recipient] = add(Balances[msg.Recipient] or "0", q)
  TotalSupply = add(TotalSupply, q)
  ao.send(copyX(msg, {
    Target = msg.Recipient, Action = "Grant-Notice", Sender = msg.From, Quantity = tostring(q),
    Data = "You were granted " .. tostring(q) .. " " .. Ticker .. " units by " .. msg.From,
  }))
end)

Handlers.add("LlamaCoin.Add-Granter", "Add-Granter", function(msg)
  if msg.From ~= Owner then return print("Add-Granter refused: only the owner may add granters") end
  GrantWhitelist[msg.Granter or ""] = msg.Granter and true or nil
end)

Handlers.add("LlamaCoin.Remove-Granter", "Remove-Granter", function(msg)
  if msg.From ~= Owner then return print("Remove-Granter refused: only the owner may remove granters") end
  GrantWhitelist[msg.Granter or ""] = nil
end)

Handlers.add("LlamaCoin.Info", "Info", function(msg)
  answer(msg, { Name = Name, Ticker = Ticker, Logo = Logo, Denomination = tostring(Denomination) })
end)

Handlers.add("LlamaCoin.Balance", "Balance", function(msg)
  local account = msg.Tags.Recipient or msg.Tags.Target or msg.From
  local balance = Balances[account] or "0"
  answer(msg, { Balance = balance, Ticker = Ticker, Account = account, Data = balance })
end)

Handlers.add("LlamaCoin.Balances", "Balances", function(msg)
  answer(msg, { Data = json.encode(Balances) })
end)

Handlers.add("LlamaCoin.Transfer", "Transfer", function(msg)
  local q, err = quantityOf(msg)
  if not q or type(msg.Recipient) ~= "string" or msg.Recipient == "" then
    answer(msg, { Action = "Transfer-Error", ["Message-Id"] = msg.Id, Error = err or "Recipient is required" })
    return
  end
  local have = bint(Balances[msg.From] or "0")
  if q > have then
    answer(msg, { Action = "Transfer-Error", ["Message-Id"] = msg.Id, Error = "Insufficient Balance!" })
    return
  end
  Balances[msg.From] = tostring(have - q)
  Balances[msg.Recipient] = add(Balances[msg.Recipient] or "0", q)
  answer(msg, copyX(msg, { Action = "Debit-Notice", Recipient = msg.Recipient, Quantity = tostring(q),
    Data = "You transferred " .. tostring(q) .. " to " .. msg.Recipient }))
  ao.send(copyX(msg, { Target = msg.Recipient, Action = "Credit-Notice", Sender = msg.From, Quantity = tostring(q),
    Data = "You received " .. tostring(q) .. " from " .. msg.From }))
end)

return Ticker .. " ready (Denomination " .. Denomination .. ")"
