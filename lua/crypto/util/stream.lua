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

-- The whole stream as a string.
function Stream.toString(stream)
  return pack(Stream.readerAt(".crypto.util.stream", 31)(stream))
end

-- A stream of array[1], array[2], ... up to the first nil. The values are
-- read now: changing the array later does not change the stream. (toString
-- and toArray read their streams with readerAt, below, sited at the lines
-- their errors have always named.)
function Stream.fromArray(array)
  local q = Queue()
  local i = 1
  while array[i] ~= nil do
    q.push(array[i])
    i = i + 1
  end
  return q.pop
end

-- The whole stream as an array of bytes.
function Stream.toArray(stream)
  return (Stream.readerAt(".crypto.util.stream", 50)(stream))
end

-- A stream of the bytes that hex spells as digit pairs (an odd last digit
-- is ignored). A pair that is not hex raises "invalid hex string" here,
-- before any byte is read, since the stream is built in full at once: the
-- caller, not the reader, gets the error.
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


-- readerAt(chunkname, line) -> function(stream) -> bytes, n: reads every byte
-- of a stream into an array. A stream that cannot be called fails as a generic
-- for at that line of that module would, so each caller keeps its error text.
local readers = {}
function Stream.readerAt(chunkname, line)
  local byLine = readers[chunkname]
  if not byLine then
    byLine = {}
    readers[chunkname] = byLine
  end
  local read = byLine[line]
  if not read then
    read = load(string.rep("\n", line - 1)
      .. "local bytes, n = {}, 0 for b in (...) do n = n + 1 bytes[n] = b end return bytes, n",
      chunkname, "t")
    byLine[line] = read
  end
  return read
end

return Stream
