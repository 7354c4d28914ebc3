--[[
  examples/ping-pong.lua on aolite's API: two processes load the same file (a dotted module path,
  resolved from the current directory like require) and play ping-pong.
  Run from the project root: `aos test examples/tests`.
]]
local aolite = require("aolite")

describe("ping-pong example", function()
  before_each(function()
    aolite.clearAllProcesses()
    aolite.setAutoSchedule(true)
    aolite.spawnProcess("alice", "examples.ping-pong")
    aolite.spawnProcess("bob", "examples.ping-pong")
  end)

  it("loads and says so", function()
    assert.matches("ping%-pong handlers ready", aolite.getOutput("alice"))
    assert.are.same({ "ping", "pong" }, aolite.eval("alice", [[
      local names = {}
      for _, h in ipairs(Handlers.list) do
        if h.name == "ping" or h.name == "pong" then names[#names + 1] = h.name end
      end
      return names
    ]]))
  end)

  it("answers a Ping with a numbered Pong", function()
    aolite.send({ From = "bob", Target = "alice", Action = "Ping" })
    local pong = aolite.getLastMsg("bob")
    assert.are.equal("Pong", pong.Action)
    assert.are.equal("alice", pong.From)
    assert.are.equal("pong #1", pong.Data)
    assert.are.equal(1, aolite.eval("alice", "Pings"))
    assert.are.equal(0, aolite.eval("bob", "Pings"))
  end)

  it("prints the Ping it got and the Pong that came back", function()
    aolite.send({ From = "bob", Target = "alice", Action = "Ping" })
    assert.matches("Ping #1 from bob", aolite.getOutput("alice"), 1, true)
    assert.matches("Pong from alice: pong #1", aolite.getOutput("bob"), 1, true)
  end)

  it("exchanges five messages in order", function()
    for _ = 1, 5 do
      aolite.send({ From = "bob", Target = "alice", Action = "Ping" })
    end
    local pongs = aolite.getAllMsgs("bob", { Action = "Pong" })   -- newest first, as aolite returns them
    assert.are.equal(5, #pongs)
    assert.are.equal("pong #5", pongs[1].Data)
    assert.are.equal("pong #1", aolite.getFirstMsg("bob", { Action = "Pong" }).Data)
    assert.are.equal(5, #aolite.getMsgs({ From = "alice", Action = "Pong" }))
  end)

  it("runs queued messages in the order the queue is given", function()
    aolite.setAutoSchedule(false)
    aolite.spawnProcess("carol", "examples.ping-pong")
    local first = aolite.queue({ From = "bob", Target = "alice", Action = "Ping" })
    local second = aolite.queue({ From = "carol", Target = "alice", Action = "Ping" })
    local queued = aolite.listQueueMessages("alice")
    assert.are.equal(2, #queued)
    assert.are.equal(first.Id, queued[1].Id)
    aolite.reorderQueue("alice", { second.Id, first.Id })
    aolite.runScheduler()
    assert.are.equal("pong #1", aolite.getLastMsg("carol", { Action = "Pong" }).Data)
    assert.are.equal("pong #2", aolite.getLastMsg("bob", { Action = "Pong" }).Data)
    assert.are.same({}, aolite.listQueueMessages("alice"))
  end)
end)
