--
-- .boot: the _boot handler that runs on the spawn message. With
-- `On-Boot = Data` it evaluates the spawn message's Data; with another value
-- it evaluates the file /data/<value> (a read-only data mount).
--
local eval = require(".eval")

return function(ao)
  return function(msg)
    if #Inbox == 0 then
      table.insert(Inbox, msg)
    end
    local onBoot = msg.Tags["On-Boot"]
    if onBoot == "Data" then
      eval(ao)(msg)
    elseif onBoot then
      local file = io.open("/data/" .. onBoot)
      if not file then
        error("On-Boot: could not open /data/" .. onBoot)
      end
      local code = file:read("a")
      file:close()
      eval(ao)({ Data = code })
    end
  end
end
