-- crypto: hashes, HMACs and random values with Node's names (also the
-- global `crypto`). The work is OpenSSL's, in runtime/lua/lua_crypto.c.
--
--   crypto.createHash("sha256"):update("a"):update("b"):digest("hex")
--   crypto.createHmac("sha256", secret):update(msg):digest("base64url")
--   crypto.hash("sha1", data)            -- one shot, hex by default
--   crypto.randomBytes(16), crypto.randomUUID()
--   crypto.timingSafeEqual(a, b)
--
-- Digests come as raw bytes (no encoding, "binary" or "latin1"), "hex",
-- "base64" or "base64url" (unpadded). A digest object is finished by
-- digest(); using it again raises "Digest already called".

local c = require("luacluster.crypto")
local timers = require("timers")

local crypto = {
  createHash = c.createHash,
  createHmac = c.createHmac,
  hash = c.hash,
  randomUUID = c.randomUUID,
  timingSafeEqual = c.timingSafeEqual,
}

-- randomBytes(size[, fn]): with a callback (Node's async form) the bytes
-- arrive as fn(nil, bytes) on a later loop iteration; a bad size is still
-- an error at once, as in Node.
function crypto.randomBytes(size, fn)
  if fn == nil then return c.randomBytes(size) end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'randomBytes' (function expected, got " .. type(fn) .. ")", 2)
  end
  local bytes = c.randomBytes(size)
  timers.setImmediate(fn, nil, bytes)
end

return crypto
