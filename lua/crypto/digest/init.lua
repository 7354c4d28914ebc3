local sha2 = require(".crypto.digest.sha2")
local sha3 = require(".crypto.digest.sha3")

return {
  _version = "0.0.1",
  md2 = require(".crypto.digest.md2"),
  md4 = require(".crypto.digest.md4"),
  md5 = require(".crypto.digest.md5"),
  sha1 = require(".crypto.digest.sha1"),
  sha2_256 = sha2.sha2_256,
  sha2_512 = sha2.sha2_512,
  sha3_256 = sha3.sha3_256,
  sha3_512 = sha3.sha3_512,
  keccak256 = sha3.keccak256,
  keccak512 = sha3.keccak512,
  blake2b = require(".crypto.digest.blake2b"),
}
