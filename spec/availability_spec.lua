-- Availability under load (issue 4): reloads, crashes, stops, health checks.
-- Load comes from wrk on 127.0.0.1; every request is counted.
local lc = require("lc")

-- A worker app for managed mode: answers after a short delay (so requests
-- are in flight when things happen), and has a few switches for the tests.
local SERVER = [[
  local delay = tonumber(os.getenv("DELAY_MS") or "0")
  local hog
  local server = http.createServer(function(req, res)
    if req.url == "/grow" then
      hog = {}
      for i = 1, 400000 do hog[i] = ("x"):rep(64) .. i end
      res:finish("grown\n")
    elseif req.url == "/hang" then
      res:finish("hanging " .. process.pid .. "\n")
      setTimeout(function() print("HANGING " .. process.pid) while true do end end, 10)
    elseif delay > 0 then
      setTimeout(function() res:finish("pid " .. process.pid .. "\n") end, delay)
    else
      res:finish("pid " .. process.pid .. "\n")
    end
  end)
  server:listen(0, "127.0.0.1", function()
    print("PORT " .. server:address().port .. " pid " .. process.pid ..
          " instance " .. tostring(process.env.LUACLUSTER_INSTANCE))
  end)
]]

local function pids_serving(p)
  local pids = {}
  for pid in p:output():gmatch("PORT %d+ pid (%d+)") do pids[#pids + 1] = tonumber(pid) end
  return pids
end

local function start_managed(n, extra, env)
  local app = lc.write_app(SERVER)
  local control = lc.tmpdir() .. "/ctl" .. tostring(lc.now()):gsub("%.", "") .. ".sock"
  local args = { "-w", tostring(n), "--control", control }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  args[#args + 1] = app
  local p = lc.start(args, { env = env })
  local port = p:port()
  lc.wait_until(function() return #pids_serving(p) >= n end, 5000,
                function() return n .. " workers listening:\n" .. p:output() end)
  return p, port, control
end

local function command(control, ...)
  local argv = { lc.bin, ... }
  argv[#argv + 1] = "--control"
  argv[#argv + 1] = control
  local c = lc.spawn(argv)
  local code = c:wait_exit(30000)
  return code, c:output()
end

local function cpu_ticks(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("*l")
  f:close()
  local fields = {}
  for x in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
  return tonumber(fields[12]) + tonumber(fields[13]) -- utime + stime
end

describe("availability", function()
  after_each(lc.cleanup)

  it("loses no request in a rolling reload under load, and replaces every pid", function()
    local p, port, control = start_managed(2, nil, { DELAY_MS = 2 })
    local before = pids_serving(p)
    local load = lc.load(port, { seconds = 4, connections = 16 })
    lc.sleep(1000) -- pacing: a second of load before acting
    local code, out = command(control, "reload")
    assert.are.equal(0, code, out)
    assert.matches("reloaded 2 worker", out)
    local r = load:result()
    assert.is_true(r.requests > 1000, r.output)
    assert.are.equal(0, r.failed, r.output)
    assert.are.equal(0, r.errors.connect, r.output)
    local after = pids_serving(p)
    assert.are.equal(4, #after)
    for _, old in ipairs(before) do
      lc.wait_until(function() return not lc.alive(old) end, 3000, "old worker " .. old .. " to exit")
    end
  end)

  it("reloads on SIGUSR2 too", function()
    local p = start_managed(2)
    p:kill("SIGUSR2")
    p:wait_for("reloaded 2 worker")
    assert.are.equal(4, #pids_serving(p))
  end)

  it("keeps the old workers when the new code cannot start, and says why", function()
    local app, dir = lc.write_app([[
      local f = io.open(os.getenv("FLAG"))
      if f then f:close() error("new code is broken") end
      local server = http.createServer(function(req, res) res:finish("ok\n") end)
      server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port .. " pid " .. process.pid) end)
    ]])
    local flag = dir .. "/broken"
    local control = dir .. "/ctl.sock"
    local p = lc.start({ "-w", "2", "--control", control, app }, { env = { FLAG = flag } })
    local port = p:port()
    lc.wait_until(function() return #pids_serving(p) == 2 end)
    io.open(flag, "w"):close()
    local code, out = command(control, "reload")
    assert.are.equal(1, code)
    assert.matches("exited with code 1", out)
    assert.matches("reload failed", p:output())
    -- still served by the old workers
    for _ = 1, 4 do
      local res = assert(lc.http(port, "GET", "/"))
      assert.are.equal(200, res.status)
    end
    assert.are.equal(2, #pids_serving(p))
  end)

  it("fails a reload whose new worker never gets ready within --listen-timeout", function()
    local app, dir = lc.write_app([[
      if os.getenv("LUACLUSTER_WORKER_ID") ~= "1" and os.getenv("LUACLUSTER_WORKER_ID") ~= "2" then
        return -- the new code never listens
      end
      local server = http.createServer(function(req, res) res:finish("ok\n") end)
      server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port .. " pid " .. process.pid) end)
    ]])
    local control = dir .. "/ctl.sock"
    local p = lc.start({ "-w", "2", "--listen-timeout", "500", "--control", control, app })
    local port = p:port()
    lc.wait_until(function() return #pids_serving(p) == 2 end)
    local t0 = lc.now()
    local code, out = command(control, "reload")
    assert.are.equal(1, code)
    assert.matches("not ready within 500 ms", out)
    assert.is_true(lc.now() - t0 < 3000)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
  end)

  it("waits for process.send('ready') with --wait-ready", function()
    local app, dir = lc.write_app([[
      local server = http.createServer(function(req, res) res:finish("ok\n") end)
      server:listen(0, "127.0.0.1", function()
        print("PORT " .. server:address().port .. " pid " .. process.pid)
        setTimeout(function() print("READY " .. process.pid) process.send("ready") end, 300)
      end)
    ]])
    local control = dir .. "/ctl.sock"
    local p = lc.start({ "-w", "1", "--wait-ready", "--control", control, app })
    p:port()
    local code, out = command(control, "reload")
    assert.are.equal(0, code, out)
    -- the new worker was ready (its READY line) before the old one left
    local out2 = p:output()
    local new_pid = pids_serving(p)[2]
    local ready_at = out2:find("READY " .. new_pid, 1, true)
    local replaced_at = out2:find("replaces", 1, true)
    assert.is_truthy(ready_at)
    assert.is_truthy(replaced_at)
    assert.is_true(ready_at < replaced_at)
  end)

  it("loses under 0.1% of requests when a random worker is killed every second for 10 s", function()
    local p, port = start_managed(2)
    local load = lc.load(port, { seconds = 11, connections = 8 })
    local killed = 0
    for _ = 1, 10 do
      lc.sleep(1000) -- pacing: one kill a second
      local pids = {}
      for _, pid in ipairs(lc.children(p.pid)) do pids[#pids + 1] = pid end
      if #pids > 0 then
        lc.kill(pids[math.random(#pids)], "SIGKILL")
        killed = killed + 1
      end
    end
    local r = load:result()
    assert.are.equal(10, killed)
    assert.is_true(r.requests > 10000, r.output)
    assert.is_true(r.failed / r.requests < 0.001,
                   ("%d of %d failed:\n%s"):format(r.failed, r.requests, r.output))
    assert.are.equal(0, r.errors.connect, r.output)
  end)

  it("backs off a worker that crashes on start while the others serve, with the master idle", function()
    local app = lc.write_app([[
      if process.env.LUACLUSTER_INSTANCE == "1" then error("cannot start") end
      local server = http.createServer(function(req, res) res:finish("ok\n") end)
      server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port .. " pid " .. process.pid) end)
    ]])
    local p = lc.start({ "-w", "2", app })
    local port = p:port()
    local t0, ticks0 = lc.now(), cpu_ticks(p.pid)
    p:wait_for("restarting in 150 ms")
    p:wait_for("restarting in 337 ms", 5000)
    for _ = 1, 20 do
      assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    end
    lc.wait_until(function() return lc.now() - t0 > 2500 end)
    local cpu = (cpu_ticks(p.pid) - ticks0) / 100 / ((lc.now() - t0) / 1000)
    assert.is_true(cpu < 0.1, "master used " .. cpu * 100 .. "% of a core")
    -- far fewer restarts than a tight loop would make
    local restarts = p:count("%[worker%d+%] started")
    assert.is_true(restarts < 15, restarts .. " starts in 2.5 s")
  end)

  it("answers every accepted request when stopped with SIGTERM under load", function()
    local p, port = start_managed(2, nil, { DELAY_MS = 50 })
    local results = lc.clients(port, 16, 4)
    lc.sleep(1000) -- pacing: a second of load before acting
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit(10000))
    local r = results()
    assert.is_true(r.ok > 100, r.output)
    -- every client ends refused (the server is gone); none lost an answer
    assert.are.equal(16, r.refused, r.output)
    assert.are.equal(0, r.lost, r.output)
  end)

  it("kills workers still busy after --kill-timeout on stop", function()
    local app = lc.write_app([[
      local server = http.createServer(function(req, res) print("GOT " .. req.url) end) -- never answers
      server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
    ]])
    local p = lc.start({ "-w", "1", "--kill-timeout", "400", app })
    local port = p:port()
    local conn = assert(lc.connect(port))
    conn:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    p:wait_for("GOT /")
    local t0 = lc.now()
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit(5000))
    local took = lc.now() - t0
    assert.is_true(took >= 350 and took < 2500, "stop took " .. took .. " ms")
    assert.matches("still busy after 400 ms", p:output())
    conn:close()
  end)

  it("replaces a worker over --max-memory gracefully", function()
    local p, port = start_managed(1, { "--max-memory", "40M" })
    local first = pids_serving(p)[1]
    assert.are.equal(200, assert(lc.http(port, "GET", "/grow", { timeout = 10000 })).status)
    p:wait_for("over the %-%-max%-memory 40 MiB", 5000)
    lc.wait_until(function() return #pids_serving(p) == 2 end, 5000)
    lc.wait_until(function() return not lc.alive(first) end, 5000)
    local res = assert(lc.http(port, "GET", "/"))
    assert.are.equal("pid " .. pids_serving(p)[2] .. "\n", res.body)
    assert.matches("pid " .. first .. " exited with code 0", p:output())
  end)

  it("restarts a worker whose event loop stops answering heartbeats", function()
    local p, port = start_managed(1, { "--heartbeat-timeout", "1000" })
    local first = pids_serving(p)[1]
    assert.are.equal(200, assert(lc.http(port, "GET", "/hang")).status)
    p:wait_for("no heartbeat for %d+ ms", 5000)
    lc.wait_until(function() return #pids_serving(p) == 2 end, 5000)
    assert.is_false(lc.alive(first))
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
  end)

  it("gives connections a dead worker never read to another worker", function()
    local p, port = start_managed(2)
    local pids = pids_serving(p)
    -- One worker gets stuck (a busy loop); connections routed to it wait,
    -- unread, in its channel.
    local stuck = assert(lc.connect(port))
    stuck:send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    local hung = assert(stuck:read_response(3000))
    local stuck_pid = assert(tonumber(hung.body:match("hanging (%d+)")))
    p:wait_for("HANGING " .. stuck_pid)
    local conns = {}
    for i = 1, 6 do
      conns[i] = assert(lc.connect(port))
      conns[i]:send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    end
    local answered, waiting = 0, {}
    for i = 1, 6 do
      local res = conns[i]:read_response(300)
      if res then answered = answered + 1 else waiting[#waiting + 1] = conns[i] end
    end
    assert.is_true(#waiting > 0, "no connection went to the stuck worker")
    assert.is_truthy(stuck_pid == pids[1] or stuck_pid == pids[2])
    lc.kill(stuck_pid, "SIGKILL")
    for _, c in ipairs(waiting) do
      local res, why = c:read_response(5000)
      assert.is_truthy(res, "a connection the dead worker held was lost: " .. tostring(why))
      assert.are.equal(200, res.status)
    end
  end)

  it("leaves no worker alive when the master is killed with SIGKILL", function()
    local p = start_managed(2)
    local workers = lc.children(p.pid)
    assert.are.equal(2, #workers)
    p:kill("SIGKILL")
    p:wait_exit()
    for _, pid in ipairs(workers) do
      lc.wait_until(function() return not lc.alive(pid) end, 2000, "worker " .. pid .. " to die")
    end
  end)

  it("shows the workers in `luacluster status` and scales them", function()
    local p, port, control = start_managed(2)
    for _ = 1, 5 do lc.http(port, "GET", "/") end
    local code, out = command(control, "status")
    assert.are.equal(0, code, out)
    assert.matches("id%s+instance%s+pid%s+state%s+uptime%s+restarts%s+rss%s+cpu%s+requests", out)
    for _, pid in ipairs(pids_serving(p)) do assert.matches(" " .. pid .. " ", out) end
    code, out = command(control, "status", "--json")
    assert.are.equal(0, code, out)
    local json = require("cjson").decode(out)
    assert.are.equal(2, #json.workers)
    assert.are.equal("listening", json.workers[1].state)
    assert.is_true(json.workers[1].rss > 0)
    -- requests handled reach status with the next heartbeat
    lc.wait_until(function()
      local _, o = command(control, "status", "--json")
      local j = require("cjson").decode(o)
      return j.workers[1].requests + j.workers[2].requests >= 5
    end, 4000, "request counts in status")
    code, out = command(control, "scale", "3")
    assert.are.equal(0, code, out)
    lc.wait_until(function() return #pids_serving(p) == 3 end)
    code, out = command(control, "stop")
    assert.are.equal(0, code, out)
    assert.matches("stopped", out)
    assert.are.equal(0, p:wait_exit())
  end)
end)

describe("rolling restart written in Lua, the Node way", function()
  after_each(lc.cleanup)

  it("drops no request under load", function()
    local app = lc.write_app([[
      if cluster.isMaster then
        for _ = 1, 2 do cluster.fork() end
        local ready = 0
        cluster.on("listening", function(worker, address)
          ready = ready + 1
          if ready == 2 then print("PORT " .. address.port) end
        end)
        -- On SIGUSR2: one at a time, disconnect a worker, fork its
        -- replacement when it has exited, wait until the replacement listens.
        process.on("SIGUSR2", function()
          local old = {}
          for _, w in pairs(cluster.workers) do old[#old + 1] = w end
          local function step(i)
            local w = old[i]
            if not w then print("RESTARTED") return end
            w:once("exit", function()
              local fresh = cluster.fork()
              fresh:once("listening", function() step(i + 1) end)
            end)
            w:disconnect()
          end
          step(1)
        end)
      else
        local server = http.createServer(function(req, res)
          setTimeout(function() res:finish("pid " .. process.pid .. "\n") end, 2)
        end)
        server:listen(0, "127.0.0.1")
      end
    ]])
    local p = lc.start({ app })
    local port = p:port()
    local load = lc.load(port, { seconds = 4, connections = 16 })
    lc.sleep(1000) -- pacing: a second of load before acting
    p:kill("SIGUSR2")
    p:wait_for("RESTARTED", 5000)
    local r = load:result()
    assert.is_true(r.requests > 1000, r.output)
    assert.are.equal(0, r.failed + r.errors.connect, r.output)
  end)
end)
