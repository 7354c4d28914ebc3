-- Ciphers: AES and ISAAC (aos also has morus and norx, not provided here).
return {
  _version = "0.0.1",
  aes = require(".crypto.cipher.aes"),
  issac = require(".crypto.cipher.issac"),
}
