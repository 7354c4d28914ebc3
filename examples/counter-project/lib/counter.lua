-- The counter's state lives in a global so it survives re-loading the project.
local fmt = require("fmt")

CounterValue = CounterValue or 0

local M = {}

function M.increment(by)
  assert(by > 0, "increment must be positive")
  CounterValue = CounterValue + by
  return CounterValue
end

function M.value()
  return CounterValue
end

function M.describe()
  return fmt.label("count", CounterValue)
end

return M
