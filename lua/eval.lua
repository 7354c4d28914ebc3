--
-- .eval: the Eval handler. Only the process Owner may evaluate code; the code
-- is compiled first as an expression (`return <code>`), then as a statement.
--
local stringify = require(".stringify")

return function(ao)
  return function(msg)
    -- the local is named expr: aos reports a missing Data as
    -- "attempt to concatenate a nil value (local 'expr')"
    local expr = msg.Data
    local func, err = load("return " .. expr, "aos", "t", _G)
    local output, e = "", nil
    if err then
      func, err = load(expr, "aos", "t", _G)
    end
    if func then
      output, e = func()
    else
      ao.outbox.Error = err
      return
    end
    if e then
      ao.outbox.Error = e
      return
    end
    if output then
      if type(output) == "table" then
        output = stringify.format(output)
      else
        output = tostring(output)
      end
      if HANDLER_PRINT_LOGS then
        table.insert(HANDLER_PRINT_LOGS, output)
      end
    end
  end
end
