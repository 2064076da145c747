-- The TLS benchmark's hello world: an HTTPS worker script for managed mode.
--   PORT=8443 CERT=cert.pem KEY=key.pem luacluster -w 2 bench/tls/hello.lua
-- Every worker serves PORT over TLS; the master (C, no Lua) owns the
-- socket, dispatches connections round robin and gives every worker the
-- same session ticket keys.
local https = require("https")
local function slurp(p) local f = assert(io.open(p)) local s = f:read("*a") f:close() return s end
local port = tonumber(os.getenv("PORT")) or 8443
local body = "Hello, world!\n"

https.createServer({ key = slurp(os.getenv("KEY")), cert = slurp(os.getenv("CERT")) },
  function(req, res)
    res:setHeader("Content-Type", "text/plain")
    res:finish(body)
  end):listen(port)
