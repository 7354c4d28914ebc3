-- The SHA-2 family under one name, as aos's `.crypto.digest.sha2` exposes it.
return {
  sha2_256 = require(".crypto.digest.sha2_256"),
  sha2_512 = require(".crypto.digest.sha2_512"),
}
