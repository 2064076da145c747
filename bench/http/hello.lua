-- The benchmark's hello world: a worker script for managed mode.
--   PORT=8080 luacluster -w 2 --sched rr bench/http/hello.lua
-- Every worker serves PORT; the master (C, no Lua) owns the socket and
-- dispatches connections by the chosen policy.
local port = tonumber(os.getenv("PORT")) or 8080
local body = "Hello, world!\n"

http.createServer(function(req, res)
  res:setHeader("Content-Type", "text/plain")
  res:finish(body)
end):listen(port)
