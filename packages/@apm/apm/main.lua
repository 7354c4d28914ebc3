-- @apm/apm: the APM client the registry serves in reply to APM.Update, i.e. what
-- `.load-blueprint apm` and apm.update() install. It is aos-py's own client
-- module (lua/apm.lua, which every process on an aos-py node has), loaded afresh:
-- it takes over the running client's apm.ID and apm.installed, registers the
-- APM.*Response handlers, sets the globals apm and APM (an alias) and returns apm.

package.loaded[".apm"] = nil
local apm = require(".apm")
apm._version = "2.1.0"
return apm
