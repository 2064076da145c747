-- The availability benchmark's worker app (managed mode):
--   PORT=8080 DELAY_MS=5 luacluster -w 2 bench/availability/app.lua
-- An HTTP hello world that answers after DELAY_MS (default 5) so that
-- requests are in flight when a reload, a kill or a stop happens. With
-- CRASH_INSTANCE=K, the worker of instance K (LUACLUSTER_INSTANCE) throws at
-- startup, every time it is restarted.
local port = tonumber(os.getenv("PORT")) or 8080
local delay = tonumber(os.getenv("DELAY_MS") or "5") or 5
local instance = process.env.LUACLUSTER_INSTANCE
local crash = os.getenv("CRASH_INSTANCE")

if crash and crash ~= "" and crash == instance then
  error("instance " .. instance .. " cannot start")
end

local body = "Hello, world!\n"
local server = http.createServer(function(req, res)
  setTimeout(function()
    res:setHeader("Content-Type", "text/plain")
    res:finish(body)
  end, delay)
end)
server:listen(port, "127.0.0.1", function()
  print("listening on " .. port .. " pid " .. process.pid .. " instance " .. tostring(instance))
end)
