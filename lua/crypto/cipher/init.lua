-- Ciphers. Only AES is provided (aos also has issac, morus and norx).
return {
  _version = "0.0.1",
  aes = require(".crypto.cipher.aes"),
}
