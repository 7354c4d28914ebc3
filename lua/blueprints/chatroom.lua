--[[
  chatroom blueprint: a minimal room server.

  Register (optional Nickname tag) / Unregister members; Broadcast sends a Broadcast-Notice carrying the
  text, the broadcaster and their nickname to every member. Members is a list of process ids.
]]
Members = Members or {}
Nicknames = Nicknames or {}

local function indexOf(list, value)
  for i, v in ipairs(list) do
    if v == value then return i end
  end
  return nil
end

Handlers.add("Register", Handlers.utils.hasMatchingTag("Action", "Register"), function(msg)
  if not indexOf(Members, msg.From) then
    table.insert(Members, msg.From)
  end
  if msg.Nickname then Nicknames[msg.From] = msg.Nickname end
  print(msg.From .. " Registered")
  msg.reply({ Data = "Registered." })
end)

Handlers.add("Unregister", Handlers.utils.hasMatchingTag("Action", "Unregister"), function(msg)
  local i = indexOf(Members, msg.From)
  if i then table.remove(Members, i) end
  Nicknames[msg.From] = nil
  print(msg.From .. " Unregistered")
  msg.reply({ Data = "Unregistered." })
end)

Handlers.add("Broadcast", Handlers.utils.hasMatchingTag("Action", "Broadcast"), function(msg)
  local nick = msg.Nickname or Nicknames[msg.From] or (msg.From:sub(1, 3) .. "..." .. msg.From:sub(-3))
  for _, member in ipairs(Members) do
    ao.send({ Target = member, Action = "Broadcast-Notice", Broadcaster = msg.From, Nickname = nick, Data = msg.Data })
  end
  msg.reply({ Data = "Broadcasted." })
end)
