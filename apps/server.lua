-- The HTTP server every worker of apps/cluster.lua runs (required beside it,
-- as Node's require('./server')). Run alone, it is a one-process server:
--   luacluster apps/server.lua        or   luacluster -w max apps/server.lua
local http = require("http")

local port = tonumber(os.getenv("PORT")) or 8080

local server = http.createServer(function(req, res)
  res:setHeader("Content-Type", "application/json")
  res:finish(('{"pid":%d,"url":"%s"}'):format(process.pid, req.url))
end)

server:listen(port, function() print("listening on " .. port) end)

return server
