--[[
  The token blueprint (lua/blueprints/token.lua) on aolite's API: `aos test examples/tests`.
  Each test gets a fresh token process (the blueprint pre-installed) and two holders.
]]
local aolite = require("aolite")

local ONE = "1000000000000"          -- 1 token: Denomination 12

local function balance(account)
  aolite.send({ From = account, Target = "token", Action = "Balance" })
  return aolite.getLastMsg(account, { From = "token", Balance = "_" }).Balance
end

describe("token blueprint", function()
  before_each(function()
    aolite.clearAllProcesses()
    aolite.spawnProcess("token", nil, { Name = "Test Coin" }, { blueprints = { "token" } })
    aolite.spawnProcess("alice", nil)
    aolite.spawnProcess("bob", nil)
  end)

  it("answers Info with its name, ticker and denomination", function()
    aolite.send({ From = "alice", Target = "token", Action = "Info" })
    local info = aolite.getLastMsg("alice")
    assert.are.equal("token", info.From)
    assert.are.equal("Test Coin", info.Name)
    assert.are.equal("PNTS", info.Ticker)
    assert.are.equal("12", info.Denomination)
  end)

  it("starts with the whole supply held by the token itself", function()
    local supply = "10000" .. string.rep("0", 12)
    assert.are.equal(supply, aolite.eval("token", "Balances[ao.id]"))
    assert.are.equal(supply, aolite.eval("token", "TotalSupply"))
    assert.are.equal("0", balance("alice"))
  end)

  it("mints only for itself and reports Total-Supply", function()
    aolite.eval("token", 'Send({ Target = ao.id, Action = "Mint", Quantity = "' .. ONE .. '" })')
    assert.are.equal("10001" .. string.rep("0", 12), aolite.eval("token", "TotalSupply"))
    aolite.send({ From = "alice", Target = "token", Action = "Mint", Quantity = ONE })
    local refused = aolite.getLastMsg("alice", { Action = "Mint-Error" })
    assert.is_not_nil(refused)
    assert.matches("Only the Process Id can mint", refused.Error)
    aolite.send({ From = "alice", Target = "token", Action = "Total-Supply" })
    assert.are.equal("10001" .. string.rep("0", 12), aolite.getLastMsg("alice", { Action = "Total-Supply" }).Data)
  end)

  describe("Transfer", function()
    before_each(function()
      -- the token holds the supply: it pays alice 1 token with an ordinary Transfer
      aolite.eval("token", 'Send({ Target = ao.id, Action = "Transfer", Recipient = "alice", Quantity = "' .. ONE .. '" })')
      assert.are.equal(ONE, balance("alice"))
    end)

    it("moves the quantity and sends a Debit-Notice and a Credit-Notice", function()
      aolite.send({ From = "alice", Target = "token", Action = "Transfer", Recipient = "bob",
        Quantity = "400000000000", ["X-Memo"] = "lunch" })
      local debit = aolite.getLastMsg("alice", { Action = "Debit-Notice" })
      local credit = aolite.getLastMsg("bob", { Action = "Credit-Notice" })
      assert.are.equal("bob", debit.Recipient)
      assert.are.equal("400000000000", debit.Quantity)
      assert.are.equal("alice", credit.Sender)
      assert.are.equal("lunch", credit["X-Memo"])   -- X- tags are forwarded
      assert.are.equal("600000000000", balance("alice"))
      assert.are.equal("400000000000", balance("bob"))
    end)

    it("refuses more than the balance and changes nothing", function()
      aolite.send({ From = "alice", Target = "token", Action = "Transfer", Recipient = "bob", Quantity = "2" .. ONE })
      local err = aolite.getLastMsg("alice", { Action = "Transfer-Error" })
      assert.are.equal("Insufficient Balance!", err.Error)
      assert.is_nil(aolite.getLastMsg("bob", { Action = "Credit-Notice" }))
      assert.are.equal(ONE, balance("alice"))
    end)

    it("keeps the total of all balances equal to the supply", function()
      for i = 1, 5 do
        aolite.send({ From = "alice", Target = "token", Action = "Transfer", Recipient = "bob", Quantity = tostring(i) })
      end
      aolite.send({ From = "alice", Target = "token", Action = "Balances" })
      local balances = require("json").decode(aolite.getLastMsg("alice").Data)
      local sum = 0
      for _, v in pairs(balances) do sum = sum + tonumber(v) end
      assert.are.equal(tonumber(aolite.eval("token", "TotalSupply")), sum)
      assert.are.equal("15", balances.bob)
    end)

    it("fails a transfer without a Recipient as a handler error", function()
      aolite.send({ From = "alice", Target = "token", Action = "Transfer", Quantity = "1" })
      local errors = aolite.getErrors("token")
      assert.are.equal(1, #errors)
      assert.matches("Recipient is required!", errors[1], 1, true)
    end)
  end)

  it("burns from the sender's balance", function()
    aolite.eval("token", 'Balances["alice"] = "10"')
    aolite.send({ From = "alice", Target = "token", Action = "Burn", Quantity = "4" })
    assert.are.equal("6", balance("alice"))
    assert.are.equal("9999" .. string.rep("9", 11) .. "6", aolite.eval("token", "TotalSupply"))
  end)
end)
