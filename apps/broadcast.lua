-- The master owns a value and broadcasts it to every worker every 10 s
-- (BROADCAST_MS to change); workers serve the latest value they got.
--   luacluster apps/broadcast.lua   then   curl http://127.0.0.1:8080/
local port = tonumber(os.getenv("PORT")) or 8080
local every = tonumber(os.getenv("BROADCAST_MS")) or 10000

if cluster.isMaster then
  local version = 0
  local function broadcast()
    version = version + 1
    local value = { version = version, at = os.date("!%Y-%m-%dT%H:%M:%SZ") }
    for _, worker in pairs(cluster.workers) do worker:send(value) end
  end
  for _ = 1, #os.cpus() do cluster.fork() end
  -- A worker that comes online gets the current value at once.
  cluster.on("online", function(worker)
    worker:send({ version = version, at = os.date("!%Y-%m-%dT%H:%M:%SZ") })
  end)
  setInterval(broadcast, every)
else
  local latest = { version = 0 }
  process.on("message", function(value) latest = value end)
  http.createServer(function(req, res)
    res:setHeader("Content-Type", "application/json")
    res:finish(('{"version":%d,"at":"%s","worker":%d}'):format(
      latest.version, latest.at or "", cluster.worker.id))
  end):listen(port)
end
