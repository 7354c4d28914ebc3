-- The bit32-style library the crypto code was written against.
return bit32 or require(".bit32")
