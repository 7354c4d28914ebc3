--
-- .default: the handler for messages nobody else claimed. It keeps the
-- message in the Inbox and announces it with a "New Message From ..." line.
--
local json = require("json")

local function abbreviate(from)
  if type(from) ~= "string" then return "unknown" end
  return from:sub(1, 3) .. "..." .. from:sub(-3)
end

return function(insertInbox)
  return function(msg)
    insertInbox(msg)
    local txt = Colors.gray .. "New Message From " .. Colors.green .. abbreviate(msg.From)
      .. Colors.gray .. ": "
    if msg.Action then
      txt = txt .. Colors.gray .. "Action = " .. Colors.blue .. tostring(msg.Action):sub(1, 20) .. Colors.reset
    else
      local data = msg.Data
      if type(data) == "table" then
        data = json.encode(data)
      elseif data ~= nil then
        data = tostring(data)
      end
      txt = txt .. Colors.gray .. "Data = " .. Colors.blue .. (data and data:sub(1, 20) or "") .. Colors.reset
    end
    print(txt)
  end
end
