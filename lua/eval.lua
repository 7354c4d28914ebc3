--
-- .eval: the Eval handler. Only the process Owner may evaluate code; the code
-- is compiled first as an expression (`return <code>`), then as a statement.
--
-- aos reports two Eval failures at positions of its .eval module: a missing
-- Data as `[string ".eval"]:33: attempt to concatenate a nil value (local
-- 'expr')`, and `error(msg, 2)` in evaluated code as `[string ".eval"]:47:`.
-- The compile and the call are therefore placed on those lines of a chunk
-- named ".eval" (built below), so error texts match aos's.
--
local stringify = require(".stringify")

local lines = {}
for i = 1, 60 do lines[i] = "" end
lines[1] = "local stringify = ..."
lines[2] = "return function(ao, msg)"
lines[3] = "  local expr = msg.Data"
lines[33] = "  local func, err = load('return ' .. expr, 'aos', 't', _G)"
lines[34] = "  local output, e = '', nil"
lines[35] = "  if err then func, err = load(expr, 'aos', 't', _G) end"
lines[36] = "  if not func then ao.outbox.Error = err return end"
lines[47] = "  output, e = func()"
lines[48] = "  if e then ao.outbox.Error = e return end"
lines[49] = "  if output then"
lines[50] = "    if type(output) == 'table' then output = stringify.format(output) else output = tostring(output) end"
lines[51] = "    if HANDLER_PRINT_LOGS then table.insert(HANDLER_PRINT_LOGS, output) end"
lines[52] = "  end"
lines[53] = "end"

local evaluate = assert(load(table.concat(lines, "\n"), ".eval", "t"))(stringify)

--- eval(ao) -> the handler that evaluates msg.Data for the owner.
return function(ao)
  return function(msg)
    return evaluate(ao, msg)
  end
end
