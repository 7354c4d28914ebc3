-- The aos crypto library: digests, MACs, KDFs and the byte utilities they use.
-- Ciphers: AES and ISAAC; random = the ISAAC generator.

local cipher = require(".crypto.cipher.init")

return {
  _version = "0.0.1",
  digest = require(".crypto.digest.init"),
  cipher = cipher,
  random = cipher.issac.random,
  mac = require(".crypto.mac.init"),
  kdf = require(".crypto.kdf.init"),
  utils = require(".crypto.util.init"),
}
