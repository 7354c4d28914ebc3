--[[
  counter-project: a multi-file aos program for `.load`.

  In aos:   .load examples/counter-project/main.lua
  Then:     Send({ Target = ao.id, Action = "Increment", By = "5" })
            Send({ Target = ao.id, Action = "Count" })
  Shows:    requires resolved next to the requiring file (lib/counter.lua requires "fmt", found as
            lib/fmt/init.lua), one Eval for the whole project, and the deployed-files tree.
]]
local counter = require("lib.counter")

Handlers.add("counter.increment", Handlers.utils.hasMatchingTag("Action", "Increment"), function(msg)
  local value = counter.increment(tonumber(msg.By) or 1)
  print(counter.describe())
  msg.reply({ Action = "Counted", Count = tostring(value) })
end)

Handlers.add("counter.count", Handlers.utils.hasMatchingTag("Action", "Count"), function(msg)
  print(counter.describe())
  msg.reply({ Action = "Counted", Count = tostring(counter.value()) })
end)

return "counter ready: " .. counter.describe()
