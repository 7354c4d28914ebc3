-- The aos crypto library: digests, MACs, KDFs and the byte utilities they use.
-- Of the ciphers only AES is provided.

return {
  _version = "0.0.1",
  digest = require(".crypto.digest.init"),
  cipher = require(".crypto.cipher.init"),
  mac = require(".crypto.mac.init"),
  kdf = require(".crypto.kdf.init"),
  utils = require(".crypto.util.init"),
}
