-- The master-side cluster API, end to end: real masters fork real workers,
-- and every assertion reads what they print and how they exit.
local lc = require("lc")

local run = lc.run

describe("cluster (master side)", function()
  after_each(lc.cleanup)

  it("numbers workers from 1 and never reuses an id after workers exit", function()
    local p = run([[
      if cluster.isMaster then
        local exited = 0
        local a, b, c = cluster.fork(), cluster.fork(), cluster.fork()
        print("FIRST", a.id, b.id, c.id)
        cluster.on("exit", function(w)
          exited = exited + 1
          if exited == 3 then
            local d, e = cluster.fork(), cluster.fork()
            print("AGAIN", d.id, e.id)
          end
        end)
      else
        process.exit(0)
      end
    ]])
    assert.are.same({ "1", "2", "3" }, { p:wait_for("FIRST\t(%d+)\t(%d+)\t(%d+)") })
    assert.are.same({ "4", "5" }, { p:wait_for("AGAIN\t(%d+)\t(%d+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("keeps cluster.workers keyed by id and empties it as workers exit", function()
    local p = run([[
      if cluster.isMaster then
        local function count()
          local n = 0
          for _ in pairs(cluster.workers) do n = n + 1 end
          return n
        end
        local a, b = cluster.fork(), cluster.fork()
        print("WORKERS", count(), cluster.workers[1] == a, cluster.workers[2] == b)
        cluster.on("exit", function(w)
          print("GONE", w.id, cluster.workers[w.id] == nil, count())
        end)
      else
        process.exit(0)
      end
    ]])
    assert.are.same({ "2", "true", "true" }, { p:wait_for("WORKERS\t(%d+)\t(%a+)\t(%a+)") })
    p:wait_for("GONE\t%d\t%a+\t0")
    assert.are.equal(2, p:count("GONE\t%d\ttrue\t%d"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("emits fork, online, message, disconnect and exit in order on cluster and on the worker", function()
    local p = run([[
      if cluster.isMaster then
        local on_cluster, on_worker = {}, {}
        for _, e in ipairs({ "fork", "online", "message", "disconnect", "exit" }) do
          cluster.on(e, function(w) on_cluster[#on_cluster + 1] = e .. ":" .. w.id end)
        end
        local w = cluster.fork()
        for _, e in ipairs({ "online", "message", "disconnect", "exit" }) do
          w:on(e, function() on_worker[#on_worker + 1] = e end)
        end
        w:on("message", function(msg)
          print("MESSAGE", msg.text)
          w:disconnect()
        end)
        process.on("exit", function()
          print("CLUSTER", table.concat(on_cluster, ","))
          print("WORKER", table.concat(on_worker, ","))
        end)
      else
        process.send({ text = "hi" })
      end
    ]])
    assert.are.equal("hi", p:wait_for("MESSAGE\t(%S+)"))
    assert.are.equal(0, p:wait_exit())
    assert.are.equal("fork:1,online:1,message:1,disconnect:1,exit:1", p:wait_for("CLUSTER\t(%S+)"))
    assert.are.equal("online,message,disconnect,exit", p:wait_for("WORKER\t(%S+)"))
  end)

  it("reports process.exit(3) in a worker as code 3 and no signal, not after disconnect", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("exit", function(code, signal)
          print("WORKER EXIT", code, signal, w.exitedAfterDisconnect)
        end)
        cluster.on("exit", function(w, code, signal)
          print("CLUSTER EXIT", w.id, code, signal)
        end)
      else
        process.exit(3)
      end
    ]])
    assert.are.same({ "3", "nil", "false" }, { p:wait_for("WORKER EXIT\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.same({ "1", "3", "nil" }, { p:wait_for("CLUSTER EXIT\t(%d+)\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("reports a worker killed with worker:kill('SIGKILL') as code nil, signal SIGKILL", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function() w:kill("SIGKILL") end)
        cluster.on("exit", function(w, code, signal)
          print("EXIT", code, signal, w.exitedAfterDisconnect)
        end)
      else
        setInterval(function() end, 1000)
      end
    ]])
    -- Node 20: kill() only signals; the worker did not disconnect itself.
    assert.are.same({ "nil", "SIGKILL", "false" }, { p:wait_for("EXIT\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("reports a worker killed from outside with process.kill(pid, 'SIGKILL') as a crash", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function() process.kill(w.process.pid, "SIGKILL") end)
        cluster.on("exit", function(w, code, signal)
          print("EXIT", code, signal, w.exitedAfterDisconnect)
        end)
      else
        setInterval(function() end, 1000)
      end
    ]])
    assert.are.same({ "nil", "SIGKILL", "false" }, { p:wait_for("EXIT\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("sets exitedAfterDisconnect after worker:disconnect() and a SIGTERM drain, not after a crash", function()
    local p = run([[
      if cluster.isMaster then
        local how = { [1] = "disconnect", [2] = "kill", [3] = "crash" }
        for i = 1, 3 do cluster.fork({ HOW = how[i] }) end
        cluster.on("online", function(w)
          if w.id == 1 then w:disconnect() elseif w.id == 2 then w:kill() end
        end)
        cluster.on("exit", function(w, code, signal)
          print("EXIT", how[w.id], code, signal, w.exitedAfterDisconnect)
        end)
      else
        if process.env.HOW == "crash" then
          setTimeout(function() error("worker crashed on purpose") end, 1)
        elseif process.env.HOW == "kill" then
          setInterval(function() end, 1000)
        end
      end
    ]])
    assert.are.same({ "0", "nil", "true" }, { p:wait_for("EXIT\tdisconnect\t(%S+)\t(%S+)\t(%S+)") })
    -- SIGTERM is a stop: the worker drains, disconnects itself, exits 0.
    assert.are.same({ "0", "nil", "true" }, { p:wait_for("EXIT\tkill\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.same({ "1", "nil", "false" }, { p:wait_for("EXIT\tcrash\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("moves worker.state through none, online, disconnecting, disconnected and dead", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        print("FORKED", w.state)
        w:on("online", function()
          print("ONLINE", w.state)
          w:disconnect()
          print("DISCONNECTING", w.state)
        end)
        w:on("disconnect", function() print("DISCONNECTED", w.state) end)
        w:on("exit", function() print("DEAD", w.state) end)
      end
    ]])
    assert.are.equal("none", p:wait_for("FORKED\t(%S+)"))
    assert.are.equal("online", p:wait_for("ONLINE\t(%S+)"))
    assert.are.equal("disconnecting", p:wait_for("DISCONNECTING\t(%S+)"))
    assert.are.equal("disconnected", p:wait_for("DISCONNECTED\t(%S+)"))
    assert.are.equal("dead", p:wait_for("DEAD\t(%S+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("answers isConnected() and isDead() as the worker lives, disconnects and dies", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function()
          print("ONLINE", w:isConnected(), w:isDead())
          w:disconnect()
        end)
        w:on("disconnect", function() print("DISCONNECT", w:isConnected()) end)
        w:on("exit", function() print("EXIT", w:isConnected(), w:isDead()) end)
      end
    ]])
    assert.are.same({ "true", "false" }, { p:wait_for("ONLINE\t(%a+)\t(%a+)") })
    assert.are.equal("false", p:wait_for("DISCONNECT\t(%a+)"))
    assert.are.same({ "false", "true" }, { p:wait_for("EXIT\t(%a+)\t(%a+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("calls cluster.disconnect(fn) once every worker is disconnected, then exits 0 on its own", function()
    local p = run([[
      if cluster.isMaster then
        local online = 0
        cluster.fork()
        cluster.fork()
        cluster.on("online", function()
          online = online + 1
          if online == 2 then
            cluster.disconnect(function()
              local connected = 0
              for _, w in pairs(cluster.workers) do
                if w:isConnected() then connected = connected + 1 end
              end
              print("ALL DISCONNECTED", connected)
            end)
          end
        end)
        cluster.on("exit", function(w, code)
          print("EXIT", w.id, code, w.exitedAfterDisconnect)
        end)
      else
        process.on("disconnect", function() print("WORKER SAW DISCONNECT", cluster.worker.id) end)
      end
    ]])
    assert.are.equal("0", p:wait_for("ALL DISCONNECTED\t(%d+)"))
    assert.are.equal(0, p:wait_exit())
    assert.are.equal(2, p:count("EXIT\t%d\t0\ttrue"))
    assert.are.equal(2, p:count("WORKER SAW DISCONNECT\t%d"))
  end)

  it("passes fork(env) and the master's process.env changes to the worker's process.env", function()
    local p = run([[
      if cluster.isMaster then
        process.env.SET_IN_MASTER = "from master"
        local w = cluster.fork({ GIVEN_TO_FORK = "from fork", FROM_OUTSIDE = "overridden" })
        w:on("message", function(env)
          print("ENV", env.fork, env.master, env.outside)
          w:disconnect()
        end)
      else
        process.send({ fork = process.env.GIVEN_TO_FORK, master = process.env.SET_IN_MASTER,
                       outside = process.env.FROM_OUTSIDE })
      end
    ]], nil, { env = { FROM_OUTSIDE = "outside" } })
    assert.are.same({ "from fork", "from master", "overridden" },
                    { p:wait_for("ENV\t([^\t]+)\t([^\t]+)\t([^\t\n]+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("gives workers the master's environment when fork() has no env", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("exit", function(code) print("EXIT", code) end)
      else
        print("WORKER SEES", process.env.FROM_OUTSIDE)
        process.exit(0)
      end
    ]], nil, { env = { FROM_OUTSIDE = "outside value" } })
    assert.are.equal("outside value", p:wait_for("WORKER SEES\t([^\n]+)"))
    assert.are.equal("0", p:wait_for("EXIT\t(%d+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("passes numbers and booleans in fork(env) as strings and leaves out what the master removed", function()
    local p = run([[
      if cluster.isMaster then
        process.env.REMOVED_IN_MASTER = nil
        cluster.fork({ A_NUMBER = 42, A_BOOLEAN = true })
      else
        print("WORKER ENV", process.env.A_NUMBER, process.env.A_BOOLEAN, process.env.REMOVED_IN_MASTER)
        process.exit(0)
      end
    ]], nil, { env = { REMOVED_IN_MASTER = "still here" } })
    assert.are.same({ "42", "true", "nil" }, { p:wait_for("WORKER ENV\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("runs setupMaster's exec with its args as the worker's process.argv and arg, and emits setup", function()
    local worker_src = [[
      print("OTHER SCRIPT", cluster.isWorker, process.argv[2]:match("[^/]+$"),
            process.argv[3], process.argv[4], arg[0]:match("[^/]+$"), arg[1], arg[2], #process.argv)
      process.exit(0)
    ]]
    local p = run([[
      if cluster.isMaster then
        local dir = process.argv[2]:match("^(.*)/[^/]+$")
        cluster.on("setup", function(settings)
          print("SETUP", settings.exec:match("[^/]+$"), table.concat(settings.args, ","))
        end)
        cluster.setupMaster({ exec = dir .. "/other.lua", args = { "one", "two" } })
        cluster.fork()
        cluster.on("exit", function(w, code) print("EXIT", code) end)
      else
        print("APP SCRIPT RAN IN THE WORKER")
      end
    ]], { "master-arg" }, { siblings = { ["other.lua"] = worker_src } })
    assert.are.same({ "other.lua", "one,two" }, { p:wait_for("SETUP\t(%S+)\t(%S+)") })
    assert.are.same({ "true", "other.lua", "one", "two", "other.lua", "one", "two", "4" },
      { p:wait_for("OTHER SCRIPT\t(%a+)\t(%S+)\t(%S+)\t(%S+)\t(%S+)\t(%S+)\t(%S+)\t(%d+)") })
    assert.are.equal("0", p:wait_for("EXIT\t(%d+)"))
    assert.are.equal(0, p:wait_exit())
    assert.is_nil(p:output():find("APP SCRIPT RAN IN THE WORKER", 1, true))
  end)

  it("gives workers the master's own arguments when setupMaster has no args", function()
    local p = run([[
      if cluster.isMaster then
        cluster.fork()
      else
        print("WORKER ARGS", #arg, "[" .. table.concat(arg, "|") .. "]", #process.argv)
        process.exit(0)
      end
    ]], { "alpha", "--help", "", "two words", "-w" })
    assert.are.same({ "5", "alpha|--help||two words|-w", "7" },
                    { p:wait_for("WORKER ARGS\t(%d+)\t%[([^\n]*)%]\t(%d+)") })
    assert.are.equal(0, p:wait_exit())
  end)
  it("merges successive setupMaster calls and also answers to setupPrimary", function()
    local p = run([[
      if cluster.isMaster then
        cluster.setupPrimary({ args = { "from-setup" } })
        cluster.setupMaster({ silent = false })
        print("SETTINGS", table.concat(cluster.settings.args, ","), cluster.settings.silent,
              cluster.settings.exec == process.argv[2])
        cluster.fork()
      else
        print("WORKER ARG", arg[1])
        process.exit(0)
      end
    ]], { "from-command-line" })
    assert.are.same({ "from-setup", "false", "true" }, { p:wait_for("SETTINGS\t(%S+)\t(%a+)\t(%a+)") })
    assert.are.equal("from-setup", p:wait_for("WORKER ARG\t(%S+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("hides a silent worker's print output but still gets its messages", function()
    local p = run([[
      if cluster.isMaster then
        cluster.setupMaster({ silent = true })
        local w = cluster.fork()
        w:on("message", function(msg) print("MASTER GOT", msg) end)
        w:on("exit", function(code) print("EXIT", code) end)
      else
        print("PRINTED BY A SILENT WORKER")
        process.send("sent by a silent worker")
        process.exit(0)
      end
    ]])
    assert.are.equal("sent by a silent worker", p:wait_for("MASTER GOT\t([^\n]+)"))
    assert.are.equal("0", p:wait_for("EXIT\t(%d+)"))
    assert.are.equal(0, p:wait_exit())
    assert.is_nil(p:output():find("PRINTED BY A SILENT WORKER", 1, true))
  end)

  it("sets isMaster, isPrimary and isWorker in the master and in a worker", function()
    local p = run([[
      print(cluster.isMaster and "MASTER" or "WORKER", cluster.isMaster, cluster.isPrimary, cluster.isWorker)
      if cluster.isMaster then
        cluster.fork()
      else
        process.exit(0)
      end
    ]])
    assert.are.same({ "true", "true", "false" }, { p:wait_for("MASTER\t(%a+)\t(%a+)\t(%a+)") })
    assert.are.same({ "false", "false", "true" }, { p:wait_for("WORKER\t(%a+)\t(%a+)\t(%a+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("gives a worker cluster.worker with its id, send and isConnected", function()
    local p = run([[
      if cluster.isMaster then
        print("MASTER HAS NO cluster.worker", cluster.worker == nil)
        cluster.fork()
        cluster.fork()
        cluster.on("message", function(w, msg)
          print("FROM", w.id, msg.id, msg.connected)
          w:disconnect()
        end)
      else
        cluster.worker:send({ id = cluster.worker.id, connected = cluster.worker:isConnected() })
      end
    ]])
    assert.are.equal("true", p:wait_for("MASTER HAS NO cluster.worker\t(%a+)"))
    assert.are.same({ "1", "true" }, { p:wait_for("FROM\t1\t(%d+)\t(%a+)") })
    assert.are.same({ "2", "true" }, { p:wait_for("FROM\t2\t(%d+)\t(%a+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("lets a worker disconnect itself with cluster.worker:disconnect() and exit 0 after disconnect", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("disconnect", function() print("MASTER SAW DISCONNECT") end)
        cluster.on("exit", function(w, code, signal)
          print("EXIT", code, signal, w.exitedAfterDisconnect)
        end)
      else
        cluster.worker:on("disconnect", function()
          print("WORKER DISCONNECTED", cluster.worker:isConnected())
        end)
        cluster.worker:disconnect()
      end
    ]])
    assert.are.equal("false", p:wait_for("WORKER DISCONNECTED\t(%a+)"))
    p:wait_for("MASTER SAW DISCONNECT")
    assert.are.same({ "0", "nil", "true" }, { p:wait_for("EXIT\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("refuses cluster.fork() in a worker", function()
    local p = run([[
      if cluster.isMaster then
        cluster.fork()
      else
        local ok, err = pcall(cluster.fork)
        print("FORK IN WORKER", ok, err)
        process.exit(0)
      end
    ]])
    local ok, err = p:wait_for("FORK IN WORKER\t(%a+)\t([^\n]*)")
    assert.are.equal("false", ok)
    assert.is_truthy(err:find("only for the master", 1, true), err)
    assert.are.equal(0, p:wait_exit())
  end)

  it("delivers every message a worker sent before it called process.exit", function()
    local p = run([[
      if cluster.isMaster then
        local got = 0
        local w = cluster.fork()
        w:on("message", function(msg) if msg.i == got + 1 then got = got + 1 end end)
        w:on("exit", function(code) print("EXIT", code, got) end)
      else
        for i = 1, 200 do process.send({ i = i, pad = string.rep("x", 1000) }) end
        process.exit(0)
      end
    ]])
    assert.are.same({ "0", "200" }, { p:wait_for("EXIT\t(%d+)\t(%d+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("reports a worker whose script throws at the top level as exit code 1", function()
    local p = run([[
      if cluster.isMaster then
        cluster.on("exit", function(w, code, signal)
          print("EXIT", code, signal, w.exitedAfterDisconnect)
        end)
        cluster.fork()
      else
        error("worker failed while loading")
      end
    ]])
    assert.are.same({ "1", "nil", "false" }, { p:wait_for("EXIT\t(%S+)\t(%S+)\t(%S+)") })
    assert.is_truthy(p:output():find("worker failed while loading", 1, true))
    assert.are.equal(0, p:wait_exit())
  end)

  it("reports the process.exitCode a worker ends with", function()
    local p = run([[
      if cluster.isMaster then
        cluster.on("exit", function(w, code, signal) print("EXIT", code, signal) end)
        cluster.fork()
      else
        process.exitCode = 6
        cluster.worker:disconnect()
      end
    ]])
    assert.are.same({ "6", "nil" }, { p:wait_for("EXIT\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("calls cluster.disconnect(fn) even when there are no workers", function()
    local p = run([[
      cluster.disconnect(function() print("DISCONNECT DONE", next(cluster.workers)) end)
      print("CALLED")
    ]])
    p:wait_for("CALLED\nDISCONNECT DONE\tnil\n")
    assert.are.equal(0, p:wait_exit())
  end)

  it("takes its workers down when the master calls process.exit", function()
    local p = run([[
      if cluster.isMaster then
        cluster.fork()
        cluster.fork()
        cluster.on("online", function(w)
          print("ONLINE", w.id, w.process.pid)
          if w.id == 2 then setTimeout(function() process.exit(3) end, 10) end
        end)
      else
        setInterval(function() end, 1000)
      end
    ]])
    local pid1 = tonumber((p:wait_for("ONLINE\t1\t(%d+)")))
    local pid2 = tonumber((p:wait_for("ONLINE\t2\t(%d+)")))
    assert.are.equal(3, p:wait_exit())
    for _, pid in ipairs({ pid1, pid2 }) do
      lc.wait_until(function() return not lc.alive(pid) end, 2000, "worker " .. pid .. " to go")
    end
  end)

  it("takes its workers down when the master is killed with SIGKILL", function()
    local p = run([[
      if cluster.isMaster then
        cluster.fork()
        cluster.on("online", function(w) print("ONLINE", w.id, w.process.pid) end)
      else
        setInterval(function() end, 1000)
      end
    ]])
    local pid = tonumber((p:wait_for("ONLINE\t1\t(%d+)")))
    p:kill("SIGKILL")
    assert.are.same({ nil, "SIGKILL" }, { p:wait_exit() })
    lc.wait_until(function() return not lc.alive(pid) end, 2000, "worker " .. pid .. " to go")
  end)

  it("brings one worker per CPU online when the master forks #os.cpus() workers", function()
    local p = run([[
      if cluster.isMaster then
        local cpus, online = #os.cpus(), 0
        print("CPUS", cpus)
        for _ = 1, cpus do cluster.fork() end
        cluster.on("online", function()
          online = online + 1
          if online == cpus then
            print("ONLINE", online)
            cluster.disconnect()
          end
        end)
      end
    ]])
    local cpus = tonumber((p:wait_for("CPUS\t(%d+)")))
    assert.is_true(cpus >= 1)
    assert.are.equal(cpus, tonumber((p:wait_for("ONLINE\t(%d+)"))))
    assert.are.equal(0, p:wait_exit())
  end)

  it("finds a module beside the app in master and worker when started from another directory", function()
    local app, dir = lc.write_app([[
      local helper = require("helper")
      print(cluster.isMaster and "MASTER" or "WORKER", helper.name, process.cwd())
      if cluster.isMaster then cluster.fork() else process.exit(0) end
    ]], { ["helper.lua"] = 'return { name = "helper-beside-the-app" }' })
    local parent, base = dir:match("^(.*)/([^/]+)$")
    local p = lc.start({ base .. "/" .. app:match("[^/]+$") }, { cwd = parent })
    assert.are.same({ "helper-beside-the-app", parent }, { p:wait_for("MASTER\t(%S+)\t(%S+)") })
    assert.are.same({ "helper-beside-the-app", parent }, { p:wait_for("WORKER\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("finds a module beside an absolute app path when the cwd is elsewhere", function()
    local p = run([[
      local helper = require("helper")
      print(cluster.isMaster and "MASTER" or "WORKER", helper.name)
      if cluster.isMaster then cluster.fork() else process.exit(0) end
    ]], nil, { cwd = "/", siblings = { ["helper.lua"] = 'return { name = "found" }' } })
    assert.are.equal("found", p:wait_for("MASTER\t(%S+)"))
    assert.are.equal("found", p:wait_for("WORKER\t(%S+)"))
    assert.are.equal(0, p:wait_exit())
  end)
end)
