-- Formatting helpers, loaded as require("fmt") through fmt/init.lua.
local M = {}

function M.label(name, value)
  return Colors.gray .. name .. " = " .. Colors.green .. tostring(value) .. Colors.reset
end

return M
