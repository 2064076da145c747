-- hex: encode (lower-case) and decode (either case) bytes as hexadecimal
-- (C, in runtime/lua/lua_encoding.c). decode returns the bytes, or nil and
-- why (an odd length, a character that is not a hex digit).

local c = require("luacluster.crypto")

return {
  encode = c.hex_encode,
  decode = c.hex_decode,
}
