--[[
  chat blueprint: a DevChat client for rooms made with the chatroom blueprint.

  Rooms maps a room name to the room's process id (Rooms["Getting-Started"] = "<pid>", or Join("<pid>")).
  List(), Join(room, nick), Say(text, room), Replay(n, room), Leave(room), Tip(quantity, room), help().
  Broadcasts arrive as Broadcast-Notice messages and print as [nick@room]> text.
]]
Chat = Chat or {}
Chat.Rooms = Chat.Rooms or Rooms or {}
Rooms = Chat.Rooms
Chat.Joined = Chat.Joined or {}
Chat.Log = Chat.Log or {}
Chat.LastRoom = Chat.LastRoom
Chat.Nick = Chat.Nick or Name or "anon"
Chat.TipToken = Chat.TipToken
Chat.LogLimit = Chat.LogLimit or 100

local function roomId(room)
  room = room or Chat.LastRoom
  assert(room, "Which room? Join one first, or pass its name.")
  local id = Chat.Rooms[room] or room
  assert(#id == 43, "Unknown room '" .. tostring(room) .. "': set Rooms['" .. tostring(room) .. "'] = '<room process id>'")
  return id
end

local function roomName(id)
  for name, pid in pairs(Chat.Rooms) do
    if pid == id then return name end
  end
  return id:sub(1, 6)
end

function List()
  local lines = {}
  for name, id in pairs(Chat.Rooms) do
    lines[#lines + 1] = (Chat.Joined[id] and "* " or "  ") .. name .. " (" .. id .. ")"
  end
  table.sort(lines)
  if #lines == 0 then return "No rooms yet: Rooms['name'] = '<room process id>'" end
  return "Rooms (* = joined):\n" .. table.concat(lines, "\n")
end

function Join(room, nick)
  local id = roomId(room)
  if nick then Chat.Nick = nick end
  if not Chat.Rooms[room] and room ~= id then Chat.Rooms[room] = id end
  Chat.Joined[id] = true
  Chat.LastRoom = room or id
  ao.send({ Target = id, Action = "Register", Nickname = Chat.Nick })
  return "Registering with room " .. roomName(id) .. " as " .. Chat.Nick
end

function Say(text, room)
  local id = roomId(room)
  ao.send({ Target = id, Action = "Broadcast", Nickname = Chat.Nick, Data = tostring(text) })
  return "Broadcasting to " .. roomName(id)
end

function Leave(room)
  local id = roomId(room)
  Chat.Joined[id] = nil
  ao.send({ Target = id, Action = "Unregister" })
  return "Leaving " .. roomName(id)
end

function Replay(n, room)
  local id = roomId(room)
  local log = Chat.Log[id] or {}
  n = math.min(n or 3, #log)
  local out = {}
  for i = #log - n + 1, #log do out[#out + 1] = log[i] end
  return table.concat(out, "\n")
end

function Tip(quantity, room)
  local id = roomId(room)
  local last = Chat.LastBroadcaster and Chat.LastBroadcaster[id]
  assert(last, "Nobody has spoken in " .. roomName(id) .. " yet")
  assert(Chat.TipToken, "Set Chat.TipToken = '<token process id>' first")
  ao.send({ Target = Chat.TipToken, Action = "Transfer", Recipient = last, Quantity = tostring(quantity or 1) })
  return "Tipping " .. last .. " " .. tostring(quantity or 1)
end

function help()
  return [[
Chat: List() | Join(room, nick) | Say(text, room) | Replay(n, room) | Leave(room) | Tip(quantity, room)
Rooms["name"] = "<room process id>" adds a room (rooms are processes running the chatroom blueprint).]]
end

Handlers.add("chat.broadcast", Handlers.utils.hasMatchingTag("Action", "Broadcast-Notice"), function(msg)
  local line = Colors.gray .. "[" .. Colors.blue .. (msg.Nickname or "?") .. Colors.gray .. "@"
    .. Colors.green .. roomName(msg.From) .. Colors.gray .. "]> " .. Colors.reset .. tostring(msg.Data)
  Chat.Log[msg.From] = Chat.Log[msg.From] or {}
  local log = Chat.Log[msg.From]
  log[#log + 1] = line
  if #log > Chat.LogLimit then table.remove(log, 1) end
  Chat.LastBroadcaster = Chat.LastBroadcaster or {}
  Chat.LastBroadcaster[msg.From] = msg.Broadcaster
  print(line)
end)

if Chat.Rooms["Getting-Started"] and not Chat.Joined[Chat.Rooms["Getting-Started"]] then
  Join("Getting-Started")
end
return help()
