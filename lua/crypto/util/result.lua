-- The object every digest, MAC and KDF returns: asBytes(), asHex(), asString().

local format = string.format

return function(raw, upperHex)
  local fmt = upperHex and "%02X" or "%02x"
  return {
    asString = function() return raw end,
    asBytes = function() return { raw:byte(1, -1) } end,
    asHex = function()
      return (raw:gsub(".", function(c) return format(fmt, c:byte()) end))
    end,
  }
end
