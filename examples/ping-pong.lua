--[[
  ping-pong: answer every Ping with a Pong, and print the Pongs you receive.

  Load it in two terminals (two processes on the same node):
    terminal 1:  aos alice   then   .load examples/ping-pong.lua
    terminal 2:  aos bob     then   .load examples/ping-pong.lua
                 Send({ Target = "<alice's process id>", Action = "Ping" })
  Bob's prompt shows "Pong from ..." live, and Alice's shows the Ping, without pressing Enter.
]]
Pings = Pings or 0

Handlers.add("ping", Handlers.utils.hasMatchingTag("Action", "Ping"), function(msg)
  Pings = Pings + 1
  print(Colors.gray .. "Ping #" .. Pings .. " from " .. Colors.blue .. msg.From .. Colors.reset)
  msg.reply({ Action = "Pong", Data = "pong #" .. Pings })
end)

Handlers.add("pong", Handlers.utils.hasMatchingTag("Action", "Pong"), function(msg)
  print(Colors.green .. "Pong from " .. msg.From .. ": " .. tostring(msg.Data) .. Colors.reset)
end)

return "ping-pong handlers ready"
