-- One worker per CPU, each running server.lua: luacluster apps/cluster.lua
local cluster = require("cluster")

if cluster.isMaster then
  for _ = 1, #os.cpus() do cluster.fork() end
  cluster.on("exit", function(worker, code, signal)
    print(("worker %d exited (%s)"):format(worker.id, signal or code))
    if not worker.exitedAfterDisconnect then cluster.fork() end
  end)
else
  require("server")
end
