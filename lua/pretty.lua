--
-- .pretty: pretty.tprint(t) writes `key: value` lines, one space of
-- indentation per nesting level (module version 0.0.1).
--
local pretty = { _version = "0.0.1" }

function pretty.tprint(tbl, indent)
  indent = indent or 0
  local out = {}
  for k, v in pairs(tbl) do
    local prefix = string.rep(" ", indent) .. tostring(k) .. ": "
    if type(v) == "table" then
      out[#out + 1] = prefix .. "\n" .. pretty.tprint(v, indent + 1)
    else
      out[#out + 1] = prefix .. tostring(v) .. "\n"
    end
  end
  return table.concat(out)
end

return pretty
