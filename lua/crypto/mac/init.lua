local hmac = require(".crypto.mac.hmac")
return {
  _version = "0.0.1",
  createHmac = hmac.createHmac,
}
