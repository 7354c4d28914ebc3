--[[
  Llama Joker: asks the Llama Herder for a one-line joke and prints it.

  Setup (once per process; the jokes are paid in wAR from this process's balance):
    .load-blueprint apm
    APM.install("@sam/Llama-Herder")
    .faucet
  Then:
    .load examples/llama-joker.lua          -- tells a joke about userContent ("cats")
  and for more jokes send a message with an X-JokeTopic tag (aos 2.0.4 delivers the name as
  X-Joketopic), e.g. from this process:
    Send({ Target = ao.id, Action = "Joke", ["X-JokeTopic"] = "dogs" })
  The joke is printed as "Ok, I think I've got a good one: ..." and sent back to whoever asked
  (Action = Joke-Response).
]]

local LlamaHerder = package.loaded["@sam/Llama-Herder"]
if type(LlamaHerder) ~= "table" or type(LlamaHerder.run) ~= "function" then
  print("Llama Joker needs the @sam/Llama-Herder package, and wAR to pay for the jokes. Run:\n"
    .. "  .load-blueprint apm\n"
    .. "  APM.install(\"@sam/Llama-Herder\")\n"
    .. "  .faucet\n"
    .. "then .load this file again.")
  return "Llama Joker is not ready: @sam/Llama-Herder is not installed"
end

local userContent = "cats"

JokeTokens = JokeTokens or 40
Jokes = Jokes or {}          -- the jokes told, in order: { topic, joke }

local function jokePrompt(topic)
  return "<|system|>\nTell a joke on the given topic, on one line<|end|>\n"
    .. "<|user|>\nTopic: " .. topic .. "<|end|>\n"
    .. "<|assistant|>\n"
end

-- The first line of the answer, without the end-of-turn marker.
local function firstLine(text)
  text = tostring(text or "")
  local stop = text:find("<|end|>", 1, true)
  if stop then text = text:sub(1, stop - 1) end
  text = text:gsub("^%s+", "")
  local nl = text:find("\n", 1, true)
  if nl then text = text:sub(1, nl - 1) end
  return (text:gsub("%s+$", ""))
end

local function tellJoke(topic, requester)
  LlamaHerder.run(jokePrompt(topic), JokeTokens, function(text)
    local joke = firstLine(text)
    local line
    if joke == "" then
      line = "Sorry, nothing funny about '" .. topic .. "' comes to mind."
    else
      line = "Ok, I think I've got a good one: " .. joke
    end
    table.insert(Jokes, { topic = topic, joke = joke })
    print(line)
    if requester and requester ~= ao.id then
      ao.send({ Target = requester, Action = "Joke-Response", Topic = topic, Data = line })
    end
  end)
end

Handlers.add("Joke",
  function(msg) return msg["X-Joketopic"] ~= nil end,
  function(msg)
    local topic = tostring(msg["X-Joketopic"]):gsub("^%s+", ""):gsub("%s+$", "")
    if #topic < 1 or #topic > 20 then
      print("A joke topic must be 1 to 20 characters long.")
      if msg.From ~= ao.id then
        ao.send({ Target = msg.From, Action = "Joke-Error", Error = "A joke topic must be 1 to 20 characters long." })
      end
      return
    end
    print("A joke about '" .. topic .. "' huh? Let me think...")
    tellJoke(topic, msg.From)
  end)

print("A joke about '" .. userContent .. "' huh? Let me think...")
tellJoke(userContent, nil)

return "Llama Joker ready: send X-JokeTopic for more jokes"
