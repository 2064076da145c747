-- Hello world on every core: luacluster apps/hello.lua
-- The master forks one worker per CPU; every worker serves the same port
-- (PORT, default 8080), and the master brings back any worker that dies.

local port = tonumber(os.getenv("PORT")) or 8080

if cluster.isMaster then
  local cpus = #os.cpus()
  print(("master %d: starting %d workers on http://127.0.0.1:%d/"):format(process.pid, cpus, port))
  for _ = 1, cpus do cluster.fork() end

  cluster.on("listening", function(worker, address)
    print(("worker %d (pid %d) listening on port %d"):format(worker.id, worker.process.pid, address.port))
  end)
  cluster.on("exit", function(worker, code, signal)
    if not worker.exitedAfterDisconnect then
      print(("worker %d died (%s): starting another"):format(worker.id, signal or code))
      cluster.fork()
    end
  end)
  -- Ctrl-C or SIGTERM: let every worker finish what it is doing, then exit.
  local function stop()
    print("stopping")
    cluster.disconnect(function() process.exit(0) end)
  end
  process.on("SIGINT", stop)
  process.on("SIGTERM", stop)
else
  http.createServer(function(req, res)
    res:setHeader("Content-Type", "text/plain")
    res:finish("Hello, world! (worker " .. cluster.worker.id .. ", pid " .. process.pid .. ")\n")
  end):listen(port)
end
