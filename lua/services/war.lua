--[[
  wAR: the node's Wrapped AR token, an ao token-standard process (the mid-2024 aos token blueprint surface).

  Loaded by the node as an Eval from the process owner: `ServiceConfig = { ... }` followed by this source.
  ServiceConfig fields (all optional): Name ("Wrapped AR"), Ticker ("wAR"), Denomination ("12"), Logo.
  Evaluating it again (an upgrade or a new ServiceConfig) keeps Balances and TotalSupply and replaces
  the handlers, which are registered under fixed names.

  Handlers (Action → reply, always to msg.From, every tag value a string):
    Info          Name, Ticker, Logo, Denomination, Total-Supply
    Balance       Balance, Ticker, Account (Recipient, else a Target tag, else the sender); Data = balance
    Balances      Data = JSON object address → decimal string
    Transfer      Debit-Notice to the sender and Credit-Notice to the recipient (X-* tags copied to both),
                  none when Cast is present; Transfer-Error (Message-Id, Error) when the balance is short
    Mint          Owner or the process itself only (else Mint-Error); credits Recipient (default: the
                  minter), grows TotalSupply and sends the recipient a Credit-Notice (Sender = ao.id)
    Total-Supply  Action = Total-Supply, Data = supply, Ticker
    Burn          destroys the sender's tokens; Data = "Successfully burned <q>", Quantity, Ticker

  Quantities are decimal integer strings only ("0x10", "1e3", "1.5", "-5", "0" are refused with a handler
  error) and all arithmetic is exact bint(256); balances are stored as canonical decimal strings.
]]

local bint = require('.bint')(256)
local json = require('json')

-- settings ---------------------------------------------------------------------------------------------

local config = type(ServiceConfig) == 'table' and ServiceConfig or {}

local function setting(key, default)
  local v = config[key]
  if v == nil or v == '' then return default end
  return tostring(v)
end

TokenInfo = {
  Name = setting('Name', 'Wrapped AR'),
  Ticker = setting('Ticker', 'wAR'),
  Denomination = setting('Denomination', '12'),
  Logo = setting('Logo', ''),
}

-- state (kept across reloads) --------------------------------------------------------------------------

Balances = Balances or {}
TotalSupply = TotalSupply or '0'

-- integer strings --------------------------------------------------------------------------------------

-- At most 70 digits per quantity and a supply below 10^72, so that no sum ever nears 2^255 (bint(256)
-- wraps silently).
local MAX_DIGITS = 70
local MAX_SUPPLY = bint('1' .. string.rep('0', 72))

-- A quantity tag as a positive bint, or a handler error that says what is wrong with it.
local function quantity(value)
  if type(value) ~= 'string' or value == '' then
    error('Quantity is required!', 0)
  end
  if value:match('^%-%d+$') then
    error('Quantity must be greater than 0', 0)
  end
  if not value:match('^%d+$') then
    error('Quantity must be a decimal integer string, got "' .. value .. '"', 0)
  end
  local digits = value:gsub('^0+', '')
  if digits == '' then
    error('Quantity must be greater than 0', 0)
  end
  if #digits > MAX_DIGITS then
    error('Quantity is too large (at most ' .. MAX_DIGITS .. ' digits)', 0)
  end
  return bint(digits)
end

-- A stored balance (a decimal string; tolerate a number or bint left by older code).
local function balanceOf(account)
  local v = Balances[account]
  if v == nil then return bint.zero() end
  return bint(tostring(v))
end

local function str(b)
  return tostring(b)
end

-- messages ---------------------------------------------------------------------------------------------

local C = Colors or {}
local gray, blue, green, reset = C.gray or '', C.blue or '', C.green or '', C.reset or ''

-- The `X-*` tags of msg (first occurrence of each name wins), for forwarding into notices.
local function xTags(msg)
  local out, seen = {}, {}
  for _, tag in ipairs(msg.TagArray or {}) do
    local name = tag.name
    if type(name) == 'string' and name:sub(1, 2) == 'X-' and not seen[name] then
      seen[name] = true
      out[name] = tostring(tag.value)
    end
  end
  return out
end

-- Reply to the sender, carrying the request's X-Reference (or Reference) so that a caller's
-- `Send(...).receive()` / `onReply` resolves.
local function reply(msg, out)
  out.Target = msg.From
  local ref = msg['X-Reference'] or msg.Reference
  if ref ~= nil and out['X-Reference'] == nil then out['X-Reference'] = tostring(ref) end
  return ao.send(out)
end

local function notice(target, fields, forwarded)
  local out = { Target = target }
  for k, v in pairs(forwarded) do out[k] = v end
  for k, v in pairs(fields) do out[k] = v end
  return ao.send(out)
end

local function action(name)
  return Handlers.utils.hasMatchingTag('Action', name)
end

-- handlers ---------------------------------------------------------------------------------------------

Handlers.add('info', action('Info'), function(msg)
  reply(msg, {
    Name = TokenInfo.Name,
    Ticker = TokenInfo.Ticker,
    Logo = TokenInfo.Logo,
    Denomination = TokenInfo.Denomination,
    ['Total-Supply'] = str(bint(TotalSupply)),
  })
end)

Handlers.add('balance', action('Balance'), function(msg)
  local account = msg.Recipient or msg.Tags.Target or msg.From
  local bal = str(balanceOf(account))
  reply(msg, { Balance = bal, Ticker = TokenInfo.Ticker, Account = account, Data = bal })
end)

Handlers.add('balances', action('Balances'), function(msg)
  local data = next(Balances) == nil and '{}' or json.encode(Balances)
  reply(msg, { Data = data })
end)

Handlers.add('transfer', action('Transfer'), function(msg)
  local recipient = msg.Recipient
  if type(recipient) ~= 'string' or recipient == '' then
    error('Recipient is required!', 0)
  end
  local q = quantity(msg.Quantity)
  local have = balanceOf(msg.From)
  if have < q then
    reply(msg, {
      Action = 'Transfer-Error',
      ['Message-Id'] = msg.Id,
      Error = 'Insufficient Balance!',
    })
    return
  end
  local qs = str(q)
  Balances[msg.From] = str(have - q)
  Balances[recipient] = str(balanceOf(recipient) + q)
  if msg.Cast then return end
  local fwd = xTags(msg)
  notice(msg.From, {
    Action = 'Debit-Notice',
    Recipient = recipient,
    Quantity = qs,
    Data = gray .. 'You transferred ' .. blue .. qs .. gray .. ' to ' .. green .. recipient .. reset,
  }, fwd)
  notice(recipient, {
    Action = 'Credit-Notice',
    Sender = msg.From,
    Quantity = qs,
    Data = gray .. 'You received ' .. blue .. qs .. gray .. ' from ' .. green .. msg.From .. reset,
  }, fwd)
end)

Handlers.add('mint', action('Mint'), function(msg)
  if msg.From ~= ao.id and msg.From ~= Owner then
    reply(msg, {
      Action = 'Mint-Error',
      ['Message-Id'] = msg.Id,
      Error = 'Only the Process Id can mint new ' .. TokenInfo.Ticker .. ' tokens!',
    })
    return
  end
  local q = quantity(msg.Quantity)
  local recipient = msg.Recipient
  if recipient == nil or recipient == '' then recipient = msg.From end
  local supply = bint(TotalSupply) + q
  if supply > MAX_SUPPLY then
    error('Mint would take the total supply beyond 10^72', 0)
  end
  local qs = str(q)
  TotalSupply = str(supply)
  Balances[recipient] = str(balanceOf(recipient) + q)
  reply(msg, {
    Recipient = recipient,
    Quantity = qs,
    Data = gray .. 'Successfully minted ' .. blue .. qs .. gray .. ' to ' .. green .. recipient .. reset,
  })
  if msg.Cast then return end
  notice(recipient, {
    Action = 'Credit-Notice',
    Sender = ao.id,
    Quantity = qs,
    Data = gray .. 'You received ' .. blue .. qs .. gray .. ' from ' .. green .. ao.id .. reset,
  }, xTags(msg))
end)

Handlers.add('totalSupply', action('Total-Supply'), function(msg)
  if msg.From == ao.id then
    error('Cannot call Total-Supply from the same process!', 0)
  end
  reply(msg, { Action = 'Total-Supply', Data = str(bint(TotalSupply)), Ticker = TokenInfo.Ticker })
end)

Handlers.add('burn', action('Burn'), function(msg)
  local q = quantity(msg.Quantity)
  local have = balanceOf(msg.From)
  if have < q then
    error('Quantity must be less than or equal to the current balance!', 0)
  end
  local qs = str(q)
  Balances[msg.From] = str(have - q)
  TotalSupply = str(bint(TotalSupply) - q)
  reply(msg, {
    Quantity = qs,
    Ticker = TokenInfo.Ticker,
    Data = gray .. 'Successfully burned ' .. blue .. qs .. reset,
  })
end)

return TokenInfo.Name .. ' (' .. TokenInfo.Ticker .. ') loaded; total supply ' .. TotalSupply
