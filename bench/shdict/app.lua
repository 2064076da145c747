-- bench/shdict/app.lua: luacluster's side of bench/shdict/run, in script
-- mode: the master forks BENCH_WORKERS workers, each runs bench.lua on the
-- shared dict d (ctl holds the barrier) and prints its results.
--   luacluster --shared d=64m --shared ctl=64k bench/shdict/app.lua
local cluster = require("cluster")
local workers = tonumber(os.getenv("BENCH_WORKERS")) or 1

if cluster.isMaster then
  for _ = 1, workers do cluster.fork() end
  return
end

local shared = require("shared")
require("bench")({
  dict = shared.d, ctl = shared.ctl, workers = workers,
  seconds = tonumber(os.getenv("BENCH_SECONDS")) or 2, tables = "native",
  report = function(line) print("RESULT " .. line) end,
})
process.exit(0)
