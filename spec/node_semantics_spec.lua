-- Node's cluster and net semantics, as Node's own cluster tests check them,
-- and listen errors that say which address and port failed.
local lc = require("lc")

local function run(src, args)
  local p = lc.run(src, args)
  return p
end

describe("Node's semantics", function()
  after_each(lc.cleanup)

  it("sets worker.process.exitCode and signalCode after exit, and exports cluster.Worker", function()
    local p = run([[
      if cluster.isMaster then
        local a = cluster.fork({ HOW = "exit3" })
        local b = cluster.fork({ HOW = "wait" })
        print("CLASS", getmetatable(a) == cluster.Worker, type(cluster.Worker.kill))
        b:on("online", function() b:kill("SIGKILL") end)
        cluster.on("exit", function(w)
          print("EXIT", w.id, tostring(w.process.exitCode), tostring(w.process.signalCode))
        end)
      elseif process.env.HOW == "exit3" then
        process.exit(3)
      else
        setInterval(function() end, 1000)
      end
    ]])
    assert.are.same({ "true", "function" }, { p:wait_for("CLASS\t(%a+)\t(%a+)") })
    assert.are.same({ "3", "nil" }, { p:wait_for("EXIT\t1\t(%S+)\t(%S+)") })
    assert.are.same({ "nil", "SIGKILL" }, { p:wait_for("EXIT\t2\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("has process.disconnect() in a worker; disconnect and exit follow", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("disconnect", function() print("MASTER DISCONNECT") end)
        w:on("exit", function(code) print("EXIT", code, w.exitedAfterDisconnect) end)
      else
        process.on("disconnect", function() print("WORKER DISCONNECT") end)
        process.disconnect()
      end
    ]])
    p:wait_for("WORKER DISCONNECT")
    p:wait_for("MASTER DISCONNECT")
    assert.are.same({ "0", "true" }, { p:wait_for("EXIT\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("counts a worker's own kill() as exitedAfterDisconnect, the master's kill('SIGKILL') not", function()
    local p = run([[
      if cluster.isMaster then
        local own = cluster.fork({ HOW = "own" })
        local killed = cluster.fork({ HOW = "wait" })
        killed:on("online", function() killed:kill("SIGKILL") end)
        cluster.on("exit", function(w, code, signal)
          print("EXIT", w.id, tostring(code), tostring(signal), w.exitedAfterDisconnect)
        end)
      elseif process.env.HOW == "own" then
        setInterval(function() end, 1000)
        cluster.worker:kill()
      else
        setInterval(function() end, 1000)
      end
    ]])
    assert.are.same({ "0", "nil", "true" }, { p:wait_for("EXIT\t1\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.same({ "nil", "SIGKILL", "false" }, { p:wait_for("EXIT\t2\t(%S+)\t(%S+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("takes listen(fn) and listen() as port 0, and lets a closed server listen again", function()
    local p = run([[
      local a = net.createServer(function() end)
      a:listen(function()
        print("FN", a:address().port > 0)
        local b = net.createServer(function() end)
        b:on("listening", function()
          print("BARE", b:address().port > 0)
          a:close(function()
            a:listen(0, "127.0.0.1", function()
              print("AGAIN", a:address().port > 0)
              a:close()
              b:close()
            end)
          end)
        end)
        b:listen()
      end)
    ]])
    assert.are.equal("true", p:wait_for("FN\t(%a+)"))
    assert.are.equal("true", p:wait_for("BARE\t(%a+)"))
    assert.are.equal("true", p:wait_for("AGAIN\t(%a+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("lets a closed server in a worker listen again through the master", function()
    local p = run([[
      if cluster.isMaster then
        cluster.fork()
      else
        local s = http.createServer(function(req, res) res:finish("again") end)
        s:listen(0, "127.0.0.1", function()
          s:close(function()
            s:listen(0, "127.0.0.1", function() print("PORT " .. s:address().port) end)
          end)
        end)
      end
    ]])
    local port = p:port()
    assert.are.equal("again", assert(lc.http(port, "GET", "/")).body)
  end)

  it("emits setup on the next tick, with args from process.argv at the call", function()
    local p = run([[
      if cluster.isMaster then
        process.argv[3] = "changed"
        cluster.setupPrimary({})
        cluster.on("setup", function(settings)
          print("SETUP", settings.args[1], #settings.args)
          cluster.fork()
        end)
      else
        print("WORKER ARGV", process.argv[3])
        process.exit(0)
      end
    ]], { "original", "second" })
    assert.are.same({ "changed", "2" }, { p:wait_for("SETUP\t(%S+)\t(%d+)") })
    assert.are.equal("changed", p:wait_for("WORKER ARGV\t(%S+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("calls cluster.disconnect's callback after every worker disconnected and exited", function()
    local p = run([[
      if cluster.isMaster then
        local exits = 0
        for _ = 1, 3 do cluster.fork() end
        cluster.on("exit", function() exits = exits + 1 end)
        cluster.on("online", function()
          if next(cluster.workers, nil) and exits == 0 then
            local online = 0
            for _, w in pairs(cluster.workers) do
              if w.state == "online" then online = online + 1 end
            end
            if online == 3 then
              cluster.disconnect(function()
                print("DONE", exits, next(cluster.workers) == nil)
              end)
            end
          end
        end)
      else
        -- Slow to exit after its disconnect.
        process.on("disconnect", function() setTimeout(function() end, 200) end)
      end
    ]])
    assert.are.same({ "3", "true" }, { p:wait_for("DONE\t(%d+)\t(%a+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("passes process:emit('error', e) in a worker to cluster.worker's error listeners", function()
    local p = run([[
      if cluster.isMaster then
        cluster.fork()
      else
        cluster.worker:on("error", function(e) print("WORKER ERROR", e) process.exit(0) end)
        process:emit("error", "boom")
      end
    ]])
    assert.are.equal("boom", p:wait_for("WORKER ERROR\t(%S+)"))
    assert.are.equal(0, p:wait_exit())
  end)
end)

describe("listen errors in script mode", function()
  after_each(lc.cleanup)

  it("names the address and port that is in use", function()
    local holder = lc.run([[
      local s = net.createServer(function() end)
      s:listen(0, "127.0.0.1", function() print("PORT " .. s:address().port) end)
    ]])
    local port = holder:port()
    local p, stderr = lc.start_split({ lc.write_app(([[
      local s = http.createServer(function() end)
      s:listen(%d, "127.0.0.1")
    ]]):format(port)) })
    assert.are.equal(1, p:wait_exit())
    assert.is_truthy(stderr():find("listen EADDRINUSE: address already in use 127.0.0.1:" .. port, 1, true),
                     stderr())
  end)

  it("names them in the error object and in a worker's error too", function()
    local p = run([[
      if cluster.isMaster then
        cluster.fork()
      else
        local s = net.createServer(function() end)
        s:on("error", function(e)
          print("ERR", e.code, e.syscall, e.address, e.port, tostring(e))
          process.exit(0)
        end)
        s:listen(8, "192.0.2.1") -- TEST-NET-1: not an address of ours
      end
    ]])
    local code, syscall, addr, port, text = p:wait_for("ERR\t(%S+)\t(%S+)\t(%S+)\t(%d+)\t([^\n]*)")
    assert.are.same({ "EADDRNOTAVAIL", "listen", "192.0.2.1", "8" }, { code, syscall, addr, port })
    assert.are.equal("listen EADDRNOTAVAIL: address not available 192.0.2.1:8", text)
  end)
end)
