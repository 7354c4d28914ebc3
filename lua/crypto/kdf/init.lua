return {
  _version = "0.0.1",
  pbkdf2 = require(".crypto.kdf.pbkdf2"),
}
