-- base64: encode and decode (C, in runtime/lua/lua_encoding.c). Node spells
-- these Buffer.from(s).toString("base64") and Buffer.from(s, "base64").
--
--   base64.encode(s)      -- standard alphabet, padded
--   base64.encodeURL(s)   -- URL alphabet ("-", "_"), no padding (Node's base64url)
--   base64.decode(s)      -- s, or nil and why
--
-- decode accepts either alphabet, with or without padding, and skips ASCII
-- whitespace (so a PEM body decodes as it is); any other stray character is
-- an error naming its position.

local c = require("luacluster.crypto")

return {
  encode = c.base64_encode,
  encodeURL = c.base64url_encode,
  decode = c.base64_decode,
}
