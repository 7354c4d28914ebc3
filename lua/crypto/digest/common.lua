-- What the Merkle-Damgard digests (md2, md4, md5, sha1, sha2_256, sha2_512)
-- share: reading a Stream, padding the message, and returning the raw digest
-- as the {asBytes, asHex, asString} object.

local Stream = require(".crypto.util.stream")
local Result = require(".crypto.util.result")

local pack, packsize, rep = string.pack, string.packsize, string.rep

local M = {}

-- msg followed by 0x80, zeros, and its length in bits packed with
-- lengthFormat (e.g. ">I8"), making a whole number of blockSize-byte blocks.
function M.pad(msg, blockSize, lengthFormat)
  local len = #msg
  local zeros = (blockSize - 1 - packsize(lengthFormat) - len) % blockSize
  return msg .. "\128" .. rep("\0", zeros) .. pack(lengthFormat, len * 8)
end

-- The Stream digest built on compress (a string -> raw digest string). A
-- stream that cannot be called fails from line `line` of module `chunkname`,
-- the position that digest has always reported (md5's is aos's own).
function M.streamed(compress, chunkname, line)
  local read = Stream.readerAt(chunkname, line)
  return function(stream)
    return Result(compress(Stream.packBytes(read(stream))))
  end
end

return M
