-- Arrays of bytes (1-based Lua tables of integers 0..255), the key and data
-- type of the MAC and KDF functions.

local Queue = require(".crypto.util.queue")
local Stream = require(".crypto.util.stream")

local format, concat = string.format, table.concat

local Array = {}

function Array.size(a) return #a end

function Array.fromString(s)
  local out = {}
  for i = 1, #s, 4096 do
    local chunk = { s:byte(i, math.min(i + 4095, #s)) }
    for j = 1, #chunk do out[i + j - 1] = chunk[j] end
  end
  return out
end

function Array.toString(a)
  return Stream.packBytes(a, #a)
end

function Array.fromStream(stream)
  return Stream.toArray(stream)
end

function Array.readFromQueue(queue, size)
  local out = {}
  for i = 1, size do out[i] = queue.pop() end
  return out
end

function Array.writeToQueue(queue, a)
  for i = 1, #a do queue.push(a[i]) end
end

function Array.toStream(a)
  return Stream.fromArray(a)
end

function Array.fromHex(hex)
  local out = {}
  for i = 1, #hex - 1, 2 do
    local v = tonumber(hex:sub(i, i + 1), 16)
    if v == nil then error("invalid hex string", 2) end
    out[#out + 1] = v
  end
  return out
end

function Array.toHex(a)
  local out = {}
  for i = 1, #a do out[i] = format("%02X", a[i]) end
  return concat(out)
end

function Array.concat(a, b)
  local out = {}
  for i = 1, #a do out[i] = a[i] end
  for i = 1, #b do out[#a + i] = b[i] end
  return out
end

function Array.truncate(a, newSize)
  local out = {}
  for i = 1, math.min(newSize, #a) do out[i] = a[i] end
  return out
end

function Array.XOR(a, b)
  local out = {}
  for k, v in pairs(a) do out[k] = v ~ b[k] end
  return out
end

-- out[k] = sbox[input[k]]
function Array.substitute(input, sbox)
  local out = {}
  for k, v in pairs(input) do out[k] = sbox[v] end
  return out
end

-- out[k] = input[pbox[k]]
function Array.permute(input, pbox)
  local out = {}
  for k, v in pairs(pbox) do out[k] = input[v] end
  return out
end

function Array.copy(input)
  local out = {}
  for k, v in pairs(input) do out[k] = v end
  return out
end

-- input[start..stop] (1-based, negative indices count from the end).
function Array.slice(input, start, stop)
  local n = #input
  start = start or 1
  stop = stop or n
  if start < 0 then start = n + start + 1 end
  if stop < 0 then stop = n + stop + 1 end
  local out = {}
  for i = start, stop do out[i - start + 1] = input[i] end
  return out
end

Array.Queue = Queue

return Array
