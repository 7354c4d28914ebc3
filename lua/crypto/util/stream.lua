-- Streams: functions that return the next byte on each call and nil at the end.
-- The Merkle-Damgard digests (md2, md4, md5, sha1, sha2_256) read their input
-- from a Stream, e.g. crypto.utils.stream.fromString("abc").

local Queue = require(".crypto.util.queue")

local char, concat, unpack = string.char, table.concat, table.unpack

local Stream = {}

function Stream.fromString(s)
  local i = 0
  return function()
    i = i + 1
    return s:byte(i)
  end
end

-- Bytes (integers 0..255) to a string, in slices small enough for unpack.
local function pack(bytes, n)
  local parts = {}
  for i = 1, n, 4096 do
    parts[#parts + 1] = char(unpack(bytes, i, math.min(i + 4095, n)))
  end
  return concat(parts)
end
Stream.packBytes = pack

function Stream.toString(stream)
  local bytes, n = {}, 0
  for b in stream do
    n = n + 1
    bytes[n] = b
  end
  return pack(bytes, n)
end

function Stream.fromArray(array)
  local q = Queue()
  local i = 1
  while array[i] ~= nil do
    q.push(array[i])
    i = i + 1
  end
  return q.pop
end

function Stream.toArray(stream)
  local out, n = {}, 0
  for b in stream do
    n = n + 1
    out[n] = b
  end
  return out
end

function Stream.fromHex(hex)
  local q = Queue()
  for i = 1, #hex - 1, 2 do
    local v = tonumber(hex:sub(i, i + 1), 16)
    if v == nil then error("invalid hex string", 2) end
    q.push(v)
  end
  return q.pop
end

function Stream.toHex(stream)
  local out, n = {}, 0
  for b in stream do
    n = n + 1
    out[n] = string.format("%02X", b)
  end
  return concat(out)
end

return Stream
