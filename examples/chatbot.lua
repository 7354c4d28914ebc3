--[[
  Chatbot: a multi-turn chat with the Llama Herder's model, one conversation per sender.

  Setup:
    .load-blueprint apm
    APM.install("@sam/Llama-Herder")
    .faucet                                  -- every answer is paid in wAR from this process
    .load examples/chatbot.lua
  Talk to it from any process (or from this one):
    Send({ Target = "<chatbot id>", Action = "Chat", Data = "Hello! Who are you?" })
  It answers the sender with Action = Chat-Response, Data = the answer. Action = Chat-Reset forgets
  the sender's conversation. The prompt carries the conversation in the Phi-3 chat layout, keeping only
  the newest ChatMaxTurns messages and at most ChatMaxPromptChars characters of history.
]]

local LlamaHerder = package.loaded["@sam/Llama-Herder"]
if type(LlamaHerder) ~= "table" or type(LlamaHerder.run) ~= "function" then
  print("The chatbot needs the @sam/Llama-Herder package, and wAR to pay for the answers. Run:\n"
    .. "  .load-blueprint apm\n"
    .. "  APM.install(\"@sam/Llama-Herder\")\n"
    .. "  .faucet\n"
    .. "then .load this file again.")
  return "Chatbot is not ready: @sam/Llama-Herder is not installed"
end

ChatSystem = ChatSystem or "You are a friendly llama who lives on the permaweb. Answer briefly, in one or two sentences."
ChatTokens = ChatTokens or 60
ChatMaxTurns = ChatMaxTurns or 8              -- messages (user and assistant) kept per sender
ChatMaxPromptChars = ChatMaxPromptChars or 1500
ChatMaxMessageChars = ChatMaxMessageChars or 500
Conversations = Conversations or {}           -- sender -> { { role = "user" | "assistant", text = ... }, ... }
ChatTimeoutMs = ChatTimeoutMs or 600000       -- stop waiting for an answer after this long
ChatWaiting = ChatWaiting or {}               -- sender -> timestamp of the question being answered

local function trim(s)
  return (tostring(s or ""):gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The answer up to the end of the assistant's turn.
local function cleanAnswer(text)
  text = tostring(text or "")
  for _, marker in ipairs({ "<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>" }) do
    local at = text:find(marker, 1, true)
    if at then text = text:sub(1, at - 1) end
  end
  return trim(text)
end

local function remember(history, role, text)
  table.insert(history, { role = role, text = text })
  while #history > ChatMaxTurns do table.remove(history, 1) end
end

--- The Phi-3 prompt for a conversation (the newest turns that fit ChatMaxPromptChars).
function ChatPrompt(history)
  local turns, size = {}, 0
  for i = #history, 1, -1 do
    local turn = "<|" .. history[i].role .. "|>\n" .. history[i].text .. "<|end|>\n"
    if size + #turn > ChatMaxPromptChars and #turns > 0 then break end
    table.insert(turns, 1, turn)
    size = size + #turn
  end
  return "<|system|>\n" .. ChatSystem .. "<|end|>\n" .. table.concat(turns) .. "<|assistant|>\n"
end

Handlers.add("Chat", "Chat", function(msg)
  local sender = msg.From
  local text = trim(msg.Data)
  local function answer(data)
    ao.send({ Target = sender, Action = "Chat-Response", Data = data })
  end
  if text == "" then return answer("Say something and I will answer.") end
  if #text > ChatMaxMessageChars then
    return answer("That is too long for me; please keep messages under " .. ChatMaxMessageChars .. " characters.")
  end
  local t = tonumber(msg.Timestamp) or 0
  if ChatWaiting[sender] and t - ChatWaiting[sender] < ChatTimeoutMs then
    return answer("I am still thinking about your last message; ask again when I have answered.")
  end
  local history = Conversations[sender] or {}
  Conversations[sender] = history
  remember(history, "user", text)
  ChatWaiting[sender] = t
  local ok, err = pcall(LlamaHerder.run, ChatPrompt(history), ChatTokens, function(reply)
    ChatWaiting[sender] = nil
    reply = cleanAnswer(reply)
    if reply == "" then reply = "..." end
    remember(history, "assistant", reply)
    answer(reply)
  end)
  if not ok then
    ChatWaiting[sender] = nil
    table.remove(history)
    print("Chatbot: could not ask the herder: " .. tostring(err))
    answer("Sorry, I cannot think right now.")
  end
end)

Handlers.add("Chat-Reset", "Chat-Reset", function(msg)
  Conversations[msg.From] = nil
  ChatWaiting[msg.From] = nil
  ao.send({ Target = msg.From, Action = "Chat-Response", Data = "Let's start over." })
end)

return "Chatbot ready: send Action = Chat with your message as Data"
