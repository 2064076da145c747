-- The process global and os additions, end to end: what a script sees of
-- its own process, how it exits, signals and uncaught errors.
local lc = require("lc")

local run = lc.run

-- Starts `luacluster app.lua` with stderr in a file of its own; returns the
-- process (its output is stdout only), the stderr file's path and the app.
local function run_split(source)
  local app = lc.write_app(source)
  local p, _, err = lc.start_split({ app })
  return p, err, app
end

local function my_pid()
  return tonumber(lc.read_file("/proc/self/stat"):match("^(%d+)"))
end

describe("process", function()
  after_each(lc.cleanup)

  it("has pid and ppid of the master, and a worker's ppid is the master's pid", function()
    local p = run([[
      if cluster.isMaster then
        print("MASTER", process.pid, process.ppid)
        local w = cluster.fork()
        print("FORKED PID", w.process.pid)
      else
        print("WORKER", process.pid, process.ppid)
        process.exit(0)
      end
    ]])
    local pid, ppid = p:wait_for("MASTER\t(%d+)\t(%d+)")
    assert.are.equal(p.pid, tonumber(pid))
    assert.are.equal(my_pid(), tonumber(ppid))
    local wpid, wppid = p:wait_for("WORKER\t(%d+)\t(%d+)")
    assert.are.equal(p.pid, tonumber(wppid))
    assert.are.equal(p:wait_for("FORKED PID\t(%d+)"), wpid)
    assert.are.equal(0, p:wait_exit())
  end)

  it("has argv as {exe, script, args...}, the global arg and the chunk's ...", function()
    local p, app = run([[
      print("ARGV", #process.argv, process.argv[1], process.argv[2], process.argv[3], process.argv[4])
      print("ARG", arg[0], arg[1], arg[2], #arg)
      print("VARARGS", select("#", ...), ...)
    ]], { "one", "two words" })
    local n, exe, script, a1, a2 = p:wait_for("ARGV\t(%d+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\n]+)")
    assert.are.equal("4", n)
    local real_bin = io.popen("readlink -f '" .. lc.bin .. "'"):read("*l")
    assert.are.equal(real_bin, exe)
    assert.are.equal(app, script)
    assert.are.same({ "one", "two words" }, { a1, a2 })
    assert.are.same({ app, "one", "two words", "2" },
                    { p:wait_for("ARG\t([^\t]+)\t([^\t]+)\t([^\t]+)\t(%d+)") })
    assert.are.same({ "2", "one", "two words" }, { p:wait_for("VARARGS\t(%d+)\t([^\t]+)\t([^\n]+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("has the environment in process.env", function()
    local p = run([[
      print("ENV", process.env.LCSPEC_VALUE, process.env.LCSPEC_UNSET)
    ]], nil, { env = { LCSPEC_VALUE = "hello there" } })
    assert.are.same({ "hello there", "nil" }, { p:wait_for("ENV\t([^\t]+)\t(%S+)") })
    assert.are.equal(0, p:wait_exit())
  end)

  it("answers cwd() with the directory it was started in", function()
    local dir = lc.tmpdir()
    local p = run([[ print("CWD", process.cwd()) ]], nil, { cwd = dir })
    assert.are.equal(dir, p:wait_for("CWD\t([^\n]+)"))
    assert.are.equal(0, p:wait_exit())
  end)

  it("reports a resident set size above zero in memoryUsage()", function()
    local p = run([[
      local m = process.memoryUsage()
      print("RSS", m.rss, m.heapUsed > 0)
    ]])
    local rss, heap = p:wait_for("RSS\t(%d+)\t(%a+)")
    assert.is_true(tonumber(rss) > 0)
    assert.are.equal("true", heap)
    assert.are.equal(0, p:wait_exit())
  end)

  it("has an uptime() that grows", function()
    local p = run([[
      local first = process.uptime()
      local start = process.hrtime()
      repeat local d = process.hrtime(start) until d[1] * 1e9 + d[2] >= 50e6
      print("UPTIME", first, process.uptime())
    ]])
    local first, later = p:wait_for("UPTIME\t(%S+)\t(%S+)")
    first, later = tonumber(first), tonumber(later)
    assert.is_true(first >= 0 and first < 5)
    assert.is_true(later - first >= 0.05 and later - first < 1,
                   ("uptime went from %s to %s in 50 ms"):format(first, later))
    assert.are.equal(0, p:wait_exit())
  end)

  it("measures time with hrtime() and hrtime(prev)", function()
    local p = run([[
      local start = process.hrtime()
      print("START", start[1], start[2])
      local t0 = os.clock()
      repeat until os.clock() - t0 >= 0.03
      local d = process.hrtime(start)
      local now = process.hrtime()
      print("DIFF", d[1], d[2], (now[1] - start[1]) * 1e9 + (now[2] - start[2]))
    ]])
    local s, ns = p:wait_for("START\t(%d+)\t(%d+)")
    assert.is_true(tonumber(s) >= 0)
    assert.is_true(tonumber(ns) >= 0 and tonumber(ns) < 1e9)
    local ds, dns, later = p:wait_for("DIFF\t(%d+)\t(%d+)\t(%d+)")
    local elapsed = tonumber(ds) * 1e9 + tonumber(dns)
    assert.is_true(tonumber(dns) < 1e9)
    -- 30 ms of CPU time took at least 30 ms of monotonic time.
    assert.is_true(elapsed >= 30e6 and elapsed < 5e9, "elapsed ns: " .. elapsed)
    -- hrtime(start) is the same clock read as hrtime() minus start, a moment earlier.
    assert.is_true(tonumber(later) >= elapsed and tonumber(later) - elapsed < 1e6,
                   ("hrtime(start) %d, hrtime() - start %s"):format(elapsed, later))
    assert.are.equal(0, p:wait_exit())
  end)

  it("exits with the code given to process.exit(code) and runs nothing after it", function()
    local p = run([[
      process.on("exit", function(code) print("EXIT EVENT", code) end)
      setTimeout(function()
        process.exit(7)
        print("AFTER EXIT")
      end, 1)
      setTimeout(function() print("LATER TIMER") end, 30)
    ]])
    assert.are.equal(7, p:wait_exit())
    assert.are.equal("7", p:wait_for("EXIT EVENT\t(%d+)"))
    assert.is_nil(p:output():find("AFTER EXIT", 1, true))
    assert.is_nil(p:output():find("LATER TIMER", 1, true))
  end)

  it("exits with process.exitCode when the loop runs dry", function()
    local p = run([[
      process.on("exit", function(code) print("EXIT EVENT", code) end)
      setTimeout(function() process.exitCode = 5 end, 1)
    ]])
    assert.are.equal(5, p:wait_exit())
    assert.are.equal("5", p:wait_for("EXIT EVENT\t(%d+)"))
  end)

  it("runs the exit event with 0 at a natural end", function()
    local p = run([[
      process.on("exit", function(code) print("EXIT EVENT", code) end)
      print("MAIN DONE")
    ]])
    assert.are.equal(0, p:wait_exit())
    assert.is_truthy(p:output():find("MAIN DONE\nEXIT EVENT\t0\n", 1, true))
  end)

  it("runs the exit event with code 1 when an uncaught error ends the process", function()
    local p = run([[
      process.on("exit", function(code) print("EXIT EVENT", code) end)
      setTimeout(function() error("nobody catches this") end, 1)
    ]])
    assert.are.equal(1, p:wait_exit())
    assert.are.equal("1", p:wait_for("EXIT EVENT\t(%d+)"))
  end)

  it("emits beforeExit when the loop runs dry, and again after work it schedules", function()
    local p = run([[
      local n = 0
      process.on("beforeExit", function(code)
        n = n + 1
        print("BEFORE EXIT", n, code)
        if n == 1 then
          setTimeout(function() print("MORE WORK") end, 1)
        end
      end)
      process.on("exit", function(code) print("EXIT EVENT", code) end)
    ]])
    assert.are.equal(0, p:wait_exit())
    assert.is_truthy(p:output():find(
      "BEFORE EXIT\t1\t0\nMORE WORK\nBEFORE EXIT\t2\t0\nEXIT EVENT\t0\n", 1, true), p:output())
  end)

  it("does not emit beforeExit on process.exit()", function()
    local p = run([[
      process.on("beforeExit", function() print("BEFORE EXIT") end)
      process.on("exit", function(code) print("EXIT EVENT", code) end)
      setTimeout(function() process.exit(0) end, 1)
    ]])
    assert.are.equal(0, p:wait_exit())
    assert.are.equal("0", p:wait_for("EXIT EVENT\t(%d+)"))
    assert.is_nil(p:output():find("BEFORE EXIT", 1, true))
  end)

  it("runs a SIGUSR2 listener on each SIGUSR2 and keeps running", function()
    local p = run([[
      local n = 0
      process.on("SIGUSR2", function(name)
        n = n + 1
        print("GOT", name, n)
      end)
      setInterval(function() end, 1000)
      print("READY")
    ]])
    p:wait_for("READY")
    lc.kill(p.pid, "SIGUSR2")
    p:wait_for("GOT\tSIGUSR2\t1")
    lc.kill(p.pid, "SIGUSR2")
    p:wait_for("GOT\tSIGUSR2\t2")
    assert.is_false(p:poll())
    assert.is_true(lc.alive(p.pid))
  end)

  it("restores SIGUSR2's default action when its listener is removed", function()
    local p = run([[
      local function on_usr2()
        print("GOT SIGUSR2")
        process.off("SIGUSR2", on_usr2)
        print("REMOVED")
      end
      process.on("SIGUSR2", on_usr2)
      setInterval(function() end, 1000)
      print("READY")
    ]])
    p:wait_for("READY")
    lc.kill(p.pid, "SIGUSR2")
    p:wait_for("REMOVED")
    lc.kill(p.pid, "SIGUSR2")
    local code, signal = p:wait_exit()
    assert.is_nil(code)
    assert.are.equal("SIGUSR2", signal)
    assert.are.equal(1, p:count("GOT SIGUSR2"))
  end)

  it("is not kept alive by a signal listener alone", function()
    local p = run([[
      process.on("SIGUSR2", function() print("GOT SIGUSR2") end)
      print("LISTENING")
    ]])
    assert.are.equal(0, p:wait_exit(1000))
    p:wait_for("LISTENING")
  end)

  it("runs a process.once('SIGUSR2') listener once, then the default action applies", function()
    local p = run([[
      process.once("SIGUSR2", function(name) print("ONCE", name) end)
      setInterval(function() end, 1000)
      print("READY")
    ]])
    p:wait_for("READY")
    lc.kill(p.pid, "SIGUSR2")
    p:wait_for("ONCE\tSIGUSR2")
    lc.kill(p.pid, "SIGUSR2")
    local code, signal = p:wait_exit()
    assert.is_nil(code)
    assert.are.equal("SIGUSR2", signal)
    assert.are.equal(1, p:count("ONCE"))
  end)

  for _, sig in ipairs({ "SIGHUP", "SIGTERM", "SIGINT" }) do
    it("runs a " .. sig .. " listener instead of the default action", function()
      local p = run(([[
        process.on("%s", function(name)
          print("HANDLED", name)
          process.exit(0)
        end)
        setInterval(function() end, 1000)
        print("READY")
      ]]):format(sig))
      p:wait_for("READY")
      lc.kill(p.pid, sig)
      assert.are.equal(0, p:wait_exit())
      assert.are.equal(sig, p:wait_for("HANDLED\t(%u+)"))
    end)
  end

  it("gives an error thrown in a timer to uncaughtException and keeps running", function()
    local p = run([[
      process.on("uncaughtException", function(err)
        print("CAUGHT", err)
      end)
      setTimeout(function() error("boom in a timer") end, 1)
      setTimeout(function() print("STILL RUNNING") end, 30)
    ]])
    assert.is_truthy(p:wait_for("CAUGHT\t([^\n]*boom in a timer)"))
    p:wait_for("STILL RUNNING")
    assert.are.equal(0, p:wait_exit())
  end)

  it("gives an error at the top level to an uncaughtException listener set before it", function()
    local p = run([[
      process.on("uncaughtException", function(err) print("CAUGHT", err) end)
      setTimeout(function() print("TIMER STILL RUNS") end, 5)
      error("boom at the top")
      print("AFTER THE ERROR")
    ]])
    assert.is_truthy(p:wait_for("CAUGHT\t([^\n]*boom at the top)"))
    p:wait_for("TIMER STILL RUNS")
    assert.are.equal(0, p:wait_exit())
    assert.is_nil(p:output():find("AFTER THE ERROR", 1, true))
  end)

  it("prints a traceback to stderr and exits 1 on an uncaught error in a callback", function()
    local p, err_file = run_split([[
      setTimeout(function() error("boom in a callback") end, 1)
      setTimeout(function() print("SHOULD NOT RUN") end, 50)
    ]])
    assert.are.equal(1, p:wait_exit())
    local stderr = lc.read_file(err_file)
    assert.is_truthy(stderr:find("boom in a callback", 1, true), stderr)
    assert.is_truthy(stderr:find("stack traceback", 1, true), stderr)
    assert.is_nil(p:output():find("SHOULD NOT RUN", 1, true))
    assert.is_nil(p:output():find("boom", 1, true))
  end)

  it("exits 1 with the error and its location on an error at the top level", function()
    local p, err_file, app = run_split([[
      print("BEFORE")
      error("boom at the top")
      print("AFTER")
    ]])
    assert.are.equal(1, p:wait_exit())
    local stderr = lc.read_file(err_file)
    assert.is_truthy(stderr:find(app .. ":2: boom at the top", 1, true), stderr)
    assert.are.equal("BEFORE\n", p:output())
  end)

  it("crashes only the worker whose event listener throws; the master keeps running", function()
    local p = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("online", function() w:send("explode") end)
        cluster.on("exit", function(w, code, signal)
          print("EXIT", w.id, code, signal)
          setTimeout(function() print("MASTER STILL RUNNING") end, 20)
        end)
      else
        process.on("message", function(msg)
          error("listener blew up on " .. msg)
        end)
      end
    ]])
    assert.are.same({ "1", "1", "nil" }, { p:wait_for("EXIT\t(%d+)\t(%S+)\t(%S+)") })
    p:wait_for("MASTER STILL RUNNING")
    assert.are.equal(0, p:wait_exit())
    assert.is_truthy(p:output():find("%[ERROR%] %[worker1%] %- [^\n]*listener blew up on explode"), p:output())
    assert.is_truthy(p:output():find("stack traceback", 1, true))
  end)

  it("lists the CPUs with os.cpus(), each with a model", function()
    local p = run([[
      local cpus = os.cpus()
      local models = 0
      for _, c in ipairs(cpus) do
        if type(c.model) == "string" and #c.model > 0 then models = models + 1 end
      end
      print("CPUS", #cpus, models)
    ]])
    local n, models = p:wait_for("CPUS\t(%d+)\t(%d+)")
    assert.is_true(tonumber(n) >= 1)
    assert.are.equal(n, models)
    assert.are.equal(0, p:wait_exit())
  end)

  it("answers os.hostname() with the machine's host name", function()
    local p = run([[ print("HOST", os.hostname()) ]])
    local host = lc.read_file("/proc/sys/kernel/hostname"):gsub("%s+$", "")
    assert.is_true(#host > 0)
    assert.are.equal(host, p:wait_for("HOST\t([^\n]+)"))
    assert.are.equal(0, p:wait_exit())
  end)
end)
