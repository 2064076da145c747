-- bench/redis: GETs through luacluster's Redis client, one process, one
-- client (one connection): CONC coroutines each calling db:get in a loop.
--   REDIS_PORT=6379 N=100000 CONC=64 luacluster bench/redis/lc_get.lua
-- WARMUP GETs go first; prints "RESULT <GET/s>" and "BATCH <commands per
-- write>".
local redis = require("redis")

local n = tonumber(os.getenv("N")) or 100000
local conc = tonumber(os.getenv("CONC")) or 1
local warmup = tonumber(os.getenv("WARMUP")) or math.floor(n / 10)
local db = redis.createClient({ port = tonumber(os.getenv("REDIS_PORT")) or 6379 })

-- Runs count GETs, conc at a time; then after(elapsed seconds).
local function run(count, after)
  local left, running, t0 = count, conc, process.hrtimeNs()
  for _ = 1, conc do
    setImmediate(function()
      while left > 0 do
        left = left - 1
        local v, err = db:get("bench:key")
        if not v then error("GET: " .. tostring(err)) end
      end
      running = running - 1
      if running == 0 then after((process.hrtimeNs() - t0) / 1e9) end
    end)
  end
end

setTimeout(function()
  assert(db:set("bench:key", "value-0123456789"))
  run(warmup, function()
    local before = db:stats()
    run(n, function(seconds)
      local after = db:stats()
      print(("RESULT %.0f"):format(n / seconds))
      print(("BATCH %.1f"):format((after.commands - before.commands) / (after.writes - before.writes)))
      process.exit(0)
    end)
  end)
end, 1)
