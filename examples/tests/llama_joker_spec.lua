--[[
  examples/llama-joker.lua against the node's real services, in the spec's in-memory node:
  aolite.startServices() spawns the APM registry (with the shipped packages), the wAR token, the
  Llama Herder and two workers serving the demo model; aolite.faucet() pays a process in wAR.
  Run from the project root: `aos test examples/tests`.
]]
local aolite = require("aolite")

local JOKER = "examples/llama-joker.lua"

-- a process with the herder client installed and 1 wAR to pay for jokes
local function joker(id)
  aolite.spawnProcess(id, nil, nil, { packages = { "@sam/Llama-Herder" } })
  aolite.faucet(id, 1)
  return id
end

local function warBalance(account)
  return tonumber(aolite.eval("wAR", 'Balances["' .. account .. '"] or "0"'))
end

describe("Llama Joker", function()
  setup(function()
    local ids = aolite.startServices()
    assert.are.equal("llama-herder", ids.herder)
    assert.are.equal(2, #ids.workers)
  end)

  it("tells a joke about cats when it is loaded, paid in wAR", function()
    joker("joker")
    assert.are.equal(10 ^ 12, warBalance("joker"))
    aolite.load("joker", JOKER)
    local out = aolite.getOutput("joker")
    assert.matches("A joke about 'cats' huh? Let me think...", out, 1, true)
    assert.matches("Ok, I think I've got a good one: %S+", out)
    local jokes = aolite.eval("joker", "Jokes")
    assert.are.equal(1, #jokes)
    assert.are.equal("cats", jokes[1].topic)
    assert.is_true(#jokes[1].joke > 0)
    -- the client paid the herder: 1 + (words + tokens) x 1 base units
    local fee = aolite.eval("joker", [[return require("@sam/Llama-Herder").calculateFee(
      "<|system|>\nTell a joke on the given topic, on one line<|end|>\n<|user|>\nTopic: cats<|end|>\n<|assistant|>\n", 40)]])
    assert.is_true(fee > 40)
    assert.are.equal(10 ^ 12 - fee, warBalance("joker"))
  end)

  it("answers an X-JokeTopic request with a Joke-Response", function()
    joker("joker2")
    aolite.load("joker2", JOKER)
    aolite.spawnProcess("fan", nil)
    aolite.send({ From = "fan", Target = "joker2", Action = "Joke", ["X-JokeTopic"] = "dogs" })
    local answer = aolite.getLastMsg("fan", { Action = "Joke-Response" })
    assert.is_not_nil(answer)
    assert.are.equal("dogs", answer.Topic)
    assert.is_truthy(answer.Data:find("^Ok, I think I've got a good one: ") or answer.Data:find("^Sorry, nothing funny"))
    assert.are.equal(2, #aolite.eval("joker2", "Jokes"))
  end)

  it("refuses a topic longer than 20 characters", function()
    joker("joker3")
    aolite.load("joker3", JOKER)
    aolite.spawnProcess("heckler", nil)
    aolite.send({ From = "heckler", Target = "joker3", Action = "Joke",
      ["X-JokeTopic"] = "a topic that is far too long" })
    local refusal = aolite.getLastMsg("heckler", { Action = "Joke-Error" })
    assert.are.equal("A joke topic must be 1 to 20 characters long.", refusal.Error)
    assert.is_nil(aolite.getLastMsg("heckler", { Action = "Joke-Response" }))
  end)

  it("says what it needs when the herder client is not installed", function()
    aolite.spawnProcess("plain", nil)
    aolite.load("plain", JOKER)
    assert.matches("needs the @sam/Llama-Herder package", aolite.getOutput("plain"), 1, true)
    assert.is_nil(aolite.eval("plain", "Jokes"))
  end)

  it("installs the herder client through APM from the local registry", function()
    aolite.spawnProcess("apm-user", nil, nil, { blueprints = { "apm" } })
    aolite.eval("apm-user", 'APM.install("@sam/Llama-Herder")')
    assert.matches("Downloaded @sam/Llama%-Herder@", aolite.getOutput("apm-user"))
    assert.are.equal("table", aolite.eval("apm-user", 'type(require("@sam/Llama-Herder"))'))
    assert.are.equal("llama-herder", aolite.eval("apm-user", 'require("@sam/Llama-Herder").herder'))
  end)
end)
