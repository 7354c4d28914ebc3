--[[
  broken-require: shows how aos-py reports an error inside a required file.

  In aos:   .load examples/broken-require/main.lua
  The error names lib.lua and its line 5, with a source frame, although the process saw one bundled chunk.
]]
local lib = require("lib")
return lib.settings()
