local M = {}

function M.settings()
  local config = nil -- forgot to load it
  return config.name
end

return M
