-- @aos-py/ascii-table: render rows as an aligned plain-text table.
-- Depends on @aos-py/strings (installed by apm right after this package, so it
-- is required when a function runs, not when this file loads).
--
--   local T = require("@aos-py/ascii-table")
--   print(T.render({ { "alice", 10 }, { "bob", 2500 } }, { "Who", "Balance" }))
--   Who   | Balance
--   ------+--------
--   alice |      10
--   bob   |    2500
--
--   T.fromMap(Balances, { "Account", "Balance" })  -- a key -> value map, sorted by key
local T = { _version = "1.0.0" }

local function strings()
  return require("@aos-py/strings")
end

-- rows: list of lists; header: optional list. Numbers are right-aligned.
function T.render(rows, header)
  local S = strings()
  local all = {}
  if header then all[#all + 1] = header end
  for _, row in ipairs(rows) do all[#all + 1] = row end
  local widths, numeric = {}, {}
  for r, row in ipairs(all) do
    for c, cell in ipairs(row) do
      widths[c] = math.max(widths[c] or 0, S.width(tostring(cell)))
      if not (header and r == 1) then
        local isNumber = type(cell) == "number" or tonumber(cell) ~= nil
        numeric[c] = (numeric[c] == nil or numeric[c]) and isNumber
      end
    end
  end
  local lines = {}
  for r, row in ipairs(all) do
    local isHeader = header and r == 1
    local cells = {}
    for c = 1, #widths do
      local cell = tostring(row[c] == nil and "" or row[c])
      cells[c] = (numeric[c] and not isHeader) and S.padLeft(cell, widths[c]) or S.padRight(cell, widths[c])
    end
    lines[#lines + 1] = (table.concat(cells, " | "):gsub("%s+$", ""))
    if isHeader then
      local rule = {}
      for c = 1, #widths do rule[c] = string.rep("-", widths[c]) end
      lines[#lines + 1] = table.concat(rule, "-+-")
    end
  end
  return table.concat(lines, "\n")
end

-- A key -> value map as a two-column table sorted by key.
function T.fromMap(map, header)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local rows = {}
  for _, k in ipairs(keys) do rows[#rows + 1] = { k, map[k] } end
  return T.render(rows, header)
end

return T
