-- @aos-py/strings: small string helpers.
--   local S = require("@aos-py/strings")
--   S.split("a,b,,c", ",")  --> { "a", "b", "", "c" }
--   S.trim("  x ")          --> "x"
--   S.padRight("ab", 4)     --> "ab  "      S.padLeft("7", 3, "0") --> "007"
--   S.startsWith("abc", "ab"), S.endsWith("abc", "bc")  --> true, true
--   S.width("héllo")        --> 5 (UTF-8 characters, not bytes)
local S = { _version = "1.0.0" }

function S.split(s, sep)
  sep = sep or ","
  assert(type(s) == "string", "split: string expected")
  assert(type(sep) == "string" and sep ~= "", "split: non-empty separator expected")
  local parts, start = {}, 1
  while true do
    local i, j = s:find(sep, start, true)
    if not i then
      parts[#parts + 1] = s:sub(start)
      return parts
    end
    parts[#parts + 1] = s:sub(start, i - 1)
    start = j + 1
  end
end

function S.trim(s)
  return (tostring(s):gsub("^%s+", ""):gsub("%s+$", ""))
end

function S.startsWith(s, prefix)
  return s:sub(1, #prefix) == prefix
end

function S.endsWith(s, suffix)
  return suffix == "" or s:sub(-#suffix) == suffix
end

-- Display width: the number of UTF-8 characters (invalid UTF-8 counts bytes).
function S.width(s)
  s = tostring(s)
  return utf8.len(s) or #s
end

function S.padRight(s, n, fill)
  s = tostring(s)
  return s .. string.rep(fill or " ", n - S.width(s))
end

function S.padLeft(s, n, fill)
  s = tostring(s)
  return string.rep(fill or " ", n - S.width(s)) .. s
end

return S
