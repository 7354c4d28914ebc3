-- HMAC (RFC 2104) over the Stream digests: createHmac(dataStream, keyArray, alg)
-- with alg "sha1" (default), "sha256" or "md5".

local Stream = require(".crypto.util.stream")
local Array = require(".crypto.util.array")
local Result = require(".crypto.util.result")

local rep, char, byte, concat = string.rep, string.char, string.byte, table.concat

local DIGESTS = {
  sha1 = ".crypto.digest.sha1",
  sha256 = ".crypto.digest.sha2_256",
  sha2_256 = ".crypto.digest.sha2_256",
  md5 = ".crypto.digest.md5",
}

local M = {}

-- A string -> raw digest function for an algorithm name (block size 64).
function M.hasher(algorithm)
  local name = DIGESTS[algorithm or "sha1"]
  if not name then
    error("unsupported HMAC algorithm '" .. tostring(algorithm) .. "' (use sha1, sha256 or md5)", 3)
  end
  local digest = require(name)
  return function(s) return digest(Stream.fromString(s)).asString() end
end

local function xorPad(key, v)
  local out = {}
  for i = 1, #key do out[i] = char(byte(key, i) ~ v) end
  return concat(out)
end

-- Raw HMAC of two strings.
function M.raw(hash, key, message)
  if #key > 64 then key = hash(key) end
  key = key .. rep("\0", 64 - #key)
  return hash(xorPad(key, 0x5c) .. hash(xorPad(key, 0x36) .. message))
end

local function asString(v, what)
  if type(v) == "string" then return v end
  if type(v) == "table" then return Array.toString(v) end
  if type(v) == "function" then return Stream.toString(v) end
  error(what .. " must be a Stream, an Array or a string, got " .. type(v), 3)
end

function M.createHmac(data, key, algorithm)
  local hash = M.hasher(algorithm)
  return Result(M.raw(hash, asString(key, "key"), asString(data, "data")))
end

return M
