--
-- json: JSON encoding and decoding for aos processes (module version 0.2.0).
--
-- Encoding follows the aos conventions: numbers use "%.14g", an empty table
-- is an array ("[]"), function values inside objects are skipped, and bytes
-- >= 127 pass through unescaped. Object keys are written in sorted order so
-- that the same table always encodes to the same text.
--
local json = { _version = "0.2.0" }

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local error, select, rawget, next = error, select, rawget, next
local getmetatable = getmetatable
local concat, sort = table.concat, table.sort
local byte, char, sub, find, format, gsub = string.byte, string.char, string.sub, string.find, string.format, string.gsub
local floor, huge = math.floor, math.huge

-- Raise from the positions aos's json module reports ([string "json"]:261: ...).
local function site(line)
  return load(string.rep("\n", line - 1) .. "error((...), 1)", "json", "t")
end
local raiseMixed, raiseSparse = site(83), site(91)
local raiseNumber, raiseType = site(149), site(183)
local raiseDecode, raiseDecodeArg = site(261), site(597)

-------------------------------------------------------------------------------
-- Encode
-------------------------------------------------------------------------------

local escapes = {
  ["\\"] = "\\\\", ["\""] = "\\\"", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for i = 0, 31 do
  local c = char(i)
  if not escapes[c] then
    escapes[c] = format("\\u%04x", i)
  end
end

local ESCAPE_PATTERN = '[%z\1-\31\\"]'
-- matches a whole string that needs no escaping: one anchored scan is about
-- twice as fast as looking for the first character that needs escaping
local CLEAN_PATTERN = '^[^%z\1-\31\\"]*$'

local function encode_string(s)
  if not find(s, CLEAN_PATTERN) then
    s = gsub(s, ESCAPE_PATTERN, escapes)
  end
  return '"' .. s .. '"'
end

-- '"key":' for object keys (keys repeat a lot: name, value, Target, ...)
local key_cache, key_cache_size = {}, 0
local function encode_key(k)
  local e = key_cache[k]
  if e then return e end
  e = encode_string(k) .. ":"
  if key_cache_size < 4096 then
    key_cache[k] = e
    key_cache_size = key_cache_size + 1
  end
  return e
end

local function number_text(val)
  if val ~= val or val <= -huge or val >= huge then
    raiseNumber("unexpected number value '" .. tostring(val) .. "'")
  end
  return format("%.14g", val)
end

-- The prompt (full of colour codes) is escaped on every message: remember
-- the last long string escaped.
local last_raw, last_escaped = nil, nil
local function escape_cached(s)
  if s == last_raw then return last_escaped end
  local e = gsub(s, ESCAPE_PATTERN, escapes)
  if #s > 32 then
    last_raw, last_escaped = s, e
  end
  return e
end

local encode_table

-- Appends the JSON text of val to out (after position n); returns the new n.
-- `stack[1..depth-1]` are the tables being encoded around val.
local function encode(val, stack, depth, out, n)
  local t = type(val)
  if t == "string" then
    if not find(val, CLEAN_PATTERN) then
      val = escape_cached(val)
    end
    out[n + 1] = '"'
    out[n + 2] = val
    out[n + 3] = '"'
    return n + 3
  elseif t == "table" then
    return encode_table(val, stack, depth, out, n)
  elseif t == "number" then
    out[n + 1] = number_text(val)
    return n + 1
  elseif t == "boolean" then
    out[n + 1] = val and "true" or "false"
    return n + 1
  elseif t == "nil" then
    out[n + 1] = "null"
    return n + 1
  end
  raiseType("unexpected type '" .. t .. "'")
end

-- A {name = <string>, value = <string>} pair (message tags): written directly.
local function encode_pair(v, out, n)
  local name, value = v.name, v.value
  if type(name) ~= "string" or type(value) ~= "string" then return nil end
  local k1 = next(v)
  local k2 = next(v, k1)
  if next(v, k2) ~= nil then return nil end
  if not find(name, CLEAN_PATTERN) then name = escape_cached(name) end
  if not find(value, CLEAN_PATTERN) then value = escape_cached(value) end
  out[n + 1] = '{"name":"'
  out[n + 2] = name
  out[n + 3] = '","value":"'
  out[n + 4] = value
  out[n + 5] = '"}'
  return n + 5
end

encode_table = function(val, stack, depth, out, n)
  if next(val) == nil then
    out[n + 1] = "[]"
    return n + 1
  end
  -- a cycle makes the depth grow without bound: look for one only when deep
  if depth > 32 then
    for i = 1, depth - 1 do
      if stack[i] == val then error("circular reference") end
    end
  end
  stack[depth] = val
  local inner = depth + 1
  if rawget(val, 1) ~= nil or next(val) == nil then
    -- array: every key must be a number and the keys must be 1..#val
    local count = 0
    for k in pairs(val) do
      if type(k) ~= "number" then
        raiseMixed("invalid table: mixed or invalid key types")
      end
      count = count + 1
    end
    if count ~= #val then
      raiseSparse("invalid table: sparse array")
    end
    out[n + 1] = "["
    n = n + 1
    for i = 1, count do
      if i > 1 then
        out[n + 1] = ","
        n = n + 1
      end
      local v = val[i]
      local tv = type(v)
      if tv == "string" then
        if not find(v, CLEAN_PATTERN) then v = escape_cached(v) end
        out[n + 1] = '"'
        out[n + 2] = v
        out[n + 3] = '"'
        n = n + 3
      elseif tv == "table" then
        n = encode_pair(v, out, n) or encode_table(v, stack, inner, out, n)
      else
        n = encode(v, stack, inner, out, n)
      end
    end
    out[n + 1] = "]"
    return n + 1
  end
  -- object: string keys only, function values skipped, keys in sorted order
  local nk, k1, k2, keys = 0, nil, nil, nil
  for k, v in pairs(val) do
    if type(k) ~= "string" then
      raiseMixed("invalid table: mixed or invalid key types")
    end
    if type(v) ~= "function" then
      nk = nk + 1
      if nk == 1 then
        k1 = k
      elseif nk == 2 then
        k2 = k
      elseif nk == 3 then
        keys = { k1, k2, k }
      else
        keys[nk] = k
      end
    end
  end
  if nk > 2 then
    sort(keys)
  elseif nk == 2 then
    if k2 < k1 then k1, k2 = k2, k1 end
    keys = { k1, k2 }
  elseif nk == 1 then
    keys = { k1 }
  else
    out[n + 1] = "{}"
    return n + 1
  end
  out[n + 1] = "{"
  n = n + 1
  for i = 1, nk do
    local k = keys[i]
    if i > 1 then
      out[n + 1] = ","
      n = n + 1
    end
    out[n + 1] = key_cache[k] or encode_key(k)
    local v = val[k]
    if type(v) == "string" then
      if not find(v, CLEAN_PATTERN) then v = escape_cached(v) end
      out[n + 2] = '"'
      out[n + 3] = v
      out[n + 4] = '"'
      n = n + 4
    else
      n = encode(v, stack, inner, out, n + 1)
    end
  end
  out[n + 1] = "}"
  return n + 1
end

-- One output buffer is reused between calls (not while an encode is running:
-- a __pairs metamethod could call json.encode again).
local buffer, stack_buffer, busy = {}, {}, false

--- Encode a Lua value as JSON text.
function json.encode(val)
  if type(val) ~= "table" then
    local out = {}
    local n = encode(val, nil, 1, out, 0)
    if n == 1 then return out[1] end
    return concat(out, "", 1, n)
  end
  if busy then
    local out = {}
    return concat(out, "", 1, encode_table(val, {}, 1, out, 0))
  end
  busy = true
  local ok, n = pcall(encode_table, val, stack_buffer, 1, buffer, 0)
  busy = false
  if not ok then
    error(n, 0)
  end
  local text = concat(buffer, "", 1, n)
  if n > 4096 then buffer = {} end
  return text
end

-------------------------------------------------------------------------------
-- handle() results (used by the host): the same JSON as json.encode, written
-- with the known fields in a fixed order instead of sorting keys at run time.
-------------------------------------------------------------------------------

local RESULT_ORDER = { "Output", "Messages", "Spawns", "Assignments", "Error" }
local RESULT_KEYS = { Output = true, Messages = true, Spawns = true, Assignments = true, Error = true }
local OUTBOX_ORDER = { "Target", "Data", "Anchor", "Tags" }
local OUTBOX_KEYS = { Target = true, Data = true, Anchor = true, Tags = true }
local LIST_FIELDS = { Messages = true, Spawns = true }

-- The Tags of an outbox message when they are a plain list of plain
-- {name = <string>, value = <string>} tables, written in one loop (the same
-- text as the general encoder writes). Returns nil for anything else, which
-- then goes through the general encoder.
local function encode_tag_list(list, out, n)
  if type(list) ~= "table" or getmetatable(list) ~= nil then return nil end
  local count = 0
  for _ in next, list do count = count + 1 end
  if count == 0 then return nil end
  local m = n + 1
  out[m] = "["
  for i = 1, count do
    local p = rawget(list, i)   -- all of 1..count present: those are the only keys
    if type(p) ~= "table" or getmetatable(p) ~= nil then return nil end
    local name, value = rawget(p, "name"), rawget(p, "value")
    if type(name) ~= "string" or type(value) ~= "string" then return nil end
    local k1 = next(p)
    if next(p, next(p, k1)) ~= nil then return nil end
    if not find(name, CLEAN_PATTERN) then name = escape_cached(name) end
    if not find(value, CLEAN_PATTERN) then value = escape_cached(value) end
    out[m + 1] = i == 1 and '{"name":"' or ',{"name":"'
    out[m + 2] = name
    out[m + 3] = '","value":"'
    out[m + 4] = value
    out[m + 5] = '"}'
    m = m + 5
  end
  out[m + 1] = "]"
  return m + 1
end

-- A list of outbox messages ({Target, Data, Anchor, Tags}); anything else
-- goes through the general encoder.
local function encode_outbox(list, stack, out, n)
  if type(list) ~= "table" then
    return encode(list, stack, 2, out, n)
  end
  local count = 0
  for k, m in pairs(list) do
    if type(k) ~= "number" or type(m) ~= "table" or next(m) == nil then
      return encode_table(list, stack, 2, out, n)
    end
    for mk, mv in pairs(m) do
      if not OUTBOX_KEYS[mk] or type(mv) == "function" then
        return encode_table(list, stack, 2, out, n)
      end
    end
    count = count + 1
  end
  if count == 0 then
    out[n + 1] = "[]"
    return n + 1
  end
  if count ~= #list then
    return encode_table(list, stack, 2, out, n)
  end
  stack[2] = list
  out[n + 1] = "["
  n = n + 1
  for i = 1, count do
    local m = list[i]
    stack[3] = m
    out[n + 1] = i > 1 and ",{" or "{"
    n = n + 1
    local first = true
    for j = 1, 4 do
      local key = OUTBOX_ORDER[j]
      local v = m[key]
      if v ~= nil then
        out[n + 1] = first and (key_cache[key] or encode_key(key)) or ("," .. (key_cache[key] or encode_key(key)))
        first = false
        n = (key == "Tags" and encode_tag_list(v, out, n + 1)) or encode(v, stack, 4, out, n + 1)
      end
    end
    out[n + 1] = "}"
    n = n + 1
  end
  out[n + 1] = "]"
  return n + 1
end

local function encode_result_into(res, stack, out)
  stack[1] = res
  local n = 1
  out[1] = "{"
  local first = true
  for j = 1, 5 do
    local key = RESULT_ORDER[j]
    local v = res[key]
    if v ~= nil then
      out[n + 1] = first and (key_cache[key] or encode_key(key)) or ("," .. (key_cache[key] or encode_key(key)))
      first = false
      if LIST_FIELDS[key] then
        n = encode_outbox(v, stack, out, n + 1)
      else
        n = encode(v, stack, 2, out, n + 1)
      end
    end
  end
  out[n + 1] = "}"
  return n + 1
end

--- JSON text of a handle() result (equal to json.encode(res) as JSON values).
function json.encode_result(res)
  if type(res) ~= "table" or busy or next(res) == nil then
    return json.encode(res)
  end
  for k, v in pairs(res) do
    if not RESULT_KEYS[k] or type(v) == "function" then
      return json.encode(res)
    end
  end
  busy = true
  local ok, n = pcall(encode_result_into, res, stack_buffer, buffer)
  busy = false
  if not ok then
    error(n, 0)
  end
  local text = concat(buffer, "", 1, n)
  if n > 4096 then buffer = {} end
  return text
end

-------------------------------------------------------------------------------
-- Decode
-------------------------------------------------------------------------------

local function decode_error(str, idx, msg)
  local line, col = 1, 1
  for i = 1, idx - 1 do
    col = col + 1
    if byte(str, i) == 10 then
      line = line + 1
      col = 1
    end
  end
  raiseDecode(format("%s at line %d col %d", msg, line, col))
end

local function skip_space(str, i)
  local _, e = find(str, "^[ \n\r\t]*", i)
  return e + 1
end

local literals = { ["true"] = true, ["false"] = false, ["null"] = nil }

local function codepoint_to_utf8(n)
  if n <= 0x7f then
    return char(n)
  elseif n <= 0x7ff then
    return char(floor(n / 64) + 192, n % 64 + 128)
  elseif n <= 0xffff then
    return char(floor(n / 4096) + 224, floor(n % 4096 / 64) + 128, n % 64 + 128)
  elseif n <= 0x10ffff then
    return char(floor(n / 262144) + 240, floor(n % 262144 / 4096) + 128,
      floor(n % 4096 / 64) + 128, n % 64 + 128)
  end
  error(format("invalid unicode codepoint '%x'", n))
end

local simple_escapes = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }

local parse

local function parse_string(str, i)
  -- i points at the opening quote
  local j = i + 1
  local parts, np = nil, 0
  while true do
    local s, e = find(str, '["\\%z\1-\31]', j)
    if not s then
      decode_error(str, i, "expected closing quote for string")
    end
    local c = byte(str, s)
    if c == 34 then -- closing quote
      if not parts then return sub(str, i + 1, s - 1), s + 1 end
      np = np + 1; parts[np] = sub(str, j, s - 1)
      return concat(parts, "", 1, np), s + 1
    elseif c == 92 then -- backslash
      parts = parts or {}
      np = np + 1; parts[np] = sub(str, j, s - 1)
      local esc = sub(str, s + 1, s + 1)
      if esc == "u" then
        local hex = str:match("^%x%x%x%x", s + 2)
        if not hex then decode_error(str, s, "invalid unicode escape in string") end
        local n1 = tonumber(hex, 16)
        local nexti = s + 6
        if n1 >= 0xd800 and n1 <= 0xdbff then
          local hex2 = str:match("^\\u(%x%x%x%x)", nexti)
          if hex2 then
            local n2 = tonumber(hex2, 16)
            if n2 >= 0xdc00 and n2 <= 0xdfff then
              n1 = (n1 - 0xd800) * 0x400 + (n2 - 0xdc00) + 0x10000
              nexti = nexti + 6
            end
          end
        end
        np = np + 1; parts[np] = codepoint_to_utf8(n1)
        j = nexti
      else
        local r = simple_escapes[esc]
        if not r then
          decode_error(str, s, "invalid escape char '" .. esc .. "' in string")
        end
        np = np + 1; parts[np] = r
        j = s + 2
      end
    else
      decode_error(str, s, "control character in string")
    end
  end
end

local function parse_number(str, i)
  local _, e = find(str, "^[^ \t\r\n%]},]*", i)
  local s = sub(str, i, e)
  local n = tonumber(s)
  if not n or find(s, "^0[xX]") or find(s, "^-0[xX]") then
    decode_error(str, i, "invalid number '" .. s .. "'")
  end
  return n, e + 1
end

local function parse_literal(str, i)
  local _, e = find(str, "^%a*", i)
  local word = sub(str, i, e)
  if word ~= "true" and word ~= "false" and word ~= "null" then
    decode_error(str, i, "invalid literal '" .. word .. "'")
  end
  return literals[word], e + 1
end

local function parse_array(str, i)
  local res, n = {}, 0
  i = i + 1
  while true do
    i = skip_space(str, i)
    if byte(str, i) == 93 then -- ]
      return res, i + 1
    end
    local x
    x, i = parse(str, i)
    n = n + 1
    res[n] = x
    i = skip_space(str, i)
    local c = byte(str, i)
    i = i + 1
    if c == 93 then return res, i end
    if c ~= 44 then decode_error(str, i, "expected ']' or ','") end
  end
end

local function parse_object(str, i)
  local res = {}
  i = i + 1
  while true do
    i = skip_space(str, i)
    local c = byte(str, i)
    if c == 125 then -- }
      return res, i + 1
    end
    if c ~= 34 then
      decode_error(str, i, "expected string for key")
    end
    local key
    key, i = parse_string(str, i)
    i = skip_space(str, i)
    if byte(str, i) ~= 58 then
      decode_error(str, i, "expected ':' after key")
    end
    i = skip_space(str, i + 1)
    local val
    val, i = parse(str, i)
    res[key] = val
    i = skip_space(str, i)
    c = byte(str, i)
    i = i + 1
    if c == 125 then return res, i end
    if c ~= 44 then decode_error(str, i, "expected '}' or ','") end
  end
end

parse = function(str, i)
  local c = byte(str, i)
  if c == 34 then return parse_string(str, i)
  elseif c == 123 then return parse_object(str, i)
  elseif c == 91 then return parse_array(str, i)
  elseif c == 45 or (c and c >= 48 and c <= 57) then return parse_number(str, i)
  elseif c == 116 or c == 102 or c == 110 then return parse_literal(str, i)
  end
  decode_error(str, i, "unexpected character '" .. sub(str, i, i) .. "'")
end

--- Decode JSON text into a Lua value (integers stay integers; null becomes nil).
function json.decode(str)
  if type(str) ~= "string" then
    raiseDecodeArg("expected argument of type string, got " .. type(str))
  end
  local res, idx = parse(str, skip_space(str, 1))
  idx = skip_space(str, idx)
  if idx <= #str then
    decode_error(str, idx, "trailing garbage")
  end
  return res
end

return json
