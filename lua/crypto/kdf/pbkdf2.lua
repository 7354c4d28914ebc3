-- PBKDF2 (RFC 8018) with HMAC: pbkdf2(passwordArray, saltArray, iterations,
-- keyLen, digest) with digest "sha1" (default), "sha256" or "md5".
-- asHex() is upper-case, as aos prints it.

local Array = require(".crypto.util.array")
local Result = require(".crypto.util.result")
local hmac = require(".crypto.mac.hmac")

local pack, byte, char, concat = string.pack, string.byte, string.char, table.concat

local function toString(v, what)
  if type(v) == "string" then return v end
  if type(v) == "table" then return Array.toString(v) end
  error(what .. " must be an Array or a string, got " .. type(v), 3)
end

local function xorInto(acc, s)
  for i = 1, #s do acc[i] = acc[i] ~ byte(s, i) end
end

local function pbkdf2(password, salt, iterations, keyLen, digest)
  local hash = hmac.hasher(digest)
  password = toString(password, "password")
  salt = toString(salt, "salt")
  if math.type(iterations) ~= "integer" or iterations < 1 then
    error("iterations must be a positive integer", 2)
  end
  if math.type(keyLen) ~= "integer" or keyLen < 1 then
    error("keyLen must be a positive integer", 2)
  end
  local out = {}
  local block = 1
  local total = 0
  while total < keyLen do
    local u = hmac.raw(hash, password, salt .. pack(">I4", block))
    local acc = { byte(u, 1, -1) }
    for _ = 2, iterations do
      u = hmac.raw(hash, password, u)
      xorInto(acc, u)
    end
    out[#out + 1] = char(table.unpack(acc))
    total = total + #u
    block = block + 1
  end
  return Result(concat(out):sub(1, keyLen), true)
end

return pbkdf2
