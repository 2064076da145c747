-- Signals as a terminal and systemd send them: to the whole process group,
-- workers included. A worker told to stop (SIGTERM, SIGINT) finishes its
-- in-flight requests first; SIGUSR1 never kills anyone; SIGHUP reloads a
-- managed cluster and a worker ignores it; an app's own listener replaces
-- the default.
local lc = require("lc")

-- A server whose /slow answers after 400 ms; it says when a request
-- arrived, and keeps an interval running (a worker with timers must still
-- stop once drained).
local SERVER = [[
local keep = setInterval(function() end, 1000)
local server = http.createServer(function(req, res)
  print("GOT " .. req.url .. " " .. process.pid)
  if req.url == "/slow" then
    setTimeout(function() res:finish("done " .. process.pid) end, 400)
  else
    res:finish("fast " .. process.pid)
  end
end)
server:listen(tonumber(process.env.PORT) or 0, "127.0.0.1", function()
  print("PORT " .. server:address().port)
end)
]]

-- A master that forks n workers running SERVER and stops as hello.lua does.
local SCRIPT = [[
if cluster.isMaster then
  for _ = 1, tonumber(process.env.N or 1) do cluster.fork() end
  cluster.on("exit", function(w, code, signal)
    print("EXIT " .. w.id .. " " .. tostring(code) .. " " .. tostring(signal) ..
          " " .. tostring(w.exitedAfterDisconnect))
  end)
  local function stop()
    print("MASTER STOPPING")
    cluster.disconnect(function() process.exit(0) end)
  end
  process.on("SIGINT", stop)
  process.on("SIGTERM", stop)
else
]] .. SERVER .. [[
end
]]

-- Starts n requests to /slow and waits until each reached a handler.
local function in_flight(p, port, n)
  local conns = {}
  for i = 1, n do
    conns[i] = assert(lc.connect(port))
    conns[i]:send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
  end
  lc.wait_until(function() return p:count("GOT /slow") >= n end, 5000,
                function() return n .. " requests in flight; output:\n" .. p:output() end)
  return conns
end

local function all_answered(conns)
  for _, conn in ipairs(conns) do
    local res, why = conn:read_response(5000)
    assert.is_truthy(res, why)
    assert.are.equal(200, res.status)
    assert.is_truthy(res.body:match("^done "), res.body)
    conn:close()
  end
end

describe("signals", function()
  after_each(lc.cleanup)

  it("finishes in-flight requests when the whole group gets SIGINT (managed mode)", function()
    local p = lc.start({ "-w", "2", "--kill-timeout", "10000", lc.write_app(SERVER) })
    local port = p:port()
    lc.wait_until(function() return p:count("PORT %d+") >= 2 end, 5000)
    local conns = in_flight(p, port, 4)
    lc.kill(-p.pid, "SIGINT") -- Ctrl-C in a terminal
    all_answered(conns)
    assert.are.equal(0, p:wait_exit(5000))
    local out = p:output()
    assert.is_falsy(out:find("killing it", 1, true), out)
    assert.is_falsy(out:find("killed by", 1, true), out)
  end)

  it("finishes in-flight requests when the whole group gets SIGTERM (script mode)", function()
    local p = lc.start({ lc.write_app(SCRIPT) }, { env = { N = 2 } })
    local port = p:port()
    lc.wait_until(function() return p:count("PORT %d+") >= 2 end, 5000)
    local conns = in_flight(p, port, 4)
    lc.kill(-p.pid, "SIGTERM") -- systemd's KillMode=control-group
    all_answered(conns)
    assert.are.equal(0, p:wait_exit(5000))
    assert.are.equal(2, p:count("EXIT %d+ 0 nil true"), p:output())
  end)

  it("drains a worker sent SIGTERM on its own, then it exits 0 despite its timers", function()
    local p = lc.start({ lc.write_app(SCRIPT) }, { env = { N = 1 } })
    local port = p:port()
    local conns = in_flight(p, port, 2)
    local pid = tonumber(p:output():match("GOT /slow (%d+)"))
    lc.kill(pid, "SIGTERM")
    all_answered(conns)
    assert.are.equal("0 nil true", p:wait_for("EXIT 1 (%S+ %S+ %S+)"))
    assert.is_truthy(p:output():find("SIGTERM: finishing in-flight requests", 1, true))
  end)

  it("lets an app's own SIGTERM listener replace the drain", function()
    local p = lc.start({ lc.write_app([[
      if cluster.isMaster then
        cluster.fork()
        cluster.on("exit", function() print("WORKER EXITED") end)
      else
        process.on("SIGTERM", function() print("APP SIGTERM " .. process.pid) end)
      ]] .. SERVER .. [[
      end
    ]]) })
    local port = p:port()
    local pid = tonumber(assert(lc.http(port, "GET", "/")).body:match("fast (%d+)"))
    lc.kill(pid, "SIGTERM")
    p:wait_for("APP SIGTERM " .. pid)
    local res = assert(lc.http(port, "GET", "/"))
    assert.are.equal("fast " .. pid, res.body)
    assert.are.equal(0, p:count("WORKER EXITED"))
  end)

  it("never dies of SIGUSR1: a managed master, a script's master and its worker", function()
    local managed = lc.start({ "-w", "1", lc.write_app(SERVER) })
    local port = managed:port()
    managed:kill("SIGUSR1")
    managed:wait_for("no log file to reopen")
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    assert.is_false(managed:poll())

    local script = lc.start({ lc.write_app(SCRIPT) }, { env = { N = 1 } })
    port = script:port()
    local pid = tonumber(assert(lc.http(port, "GET", "/")).body:match("fast (%d+)"))
    script:kill("SIGUSR1")
    lc.kill(pid, "SIGUSR1")
    lc.wait_until(function() return script:count("no log file to reopen") >= 2 end, 5000,
                  function() return "two SIGUSR1 lines; output:\n" .. script:output() end)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    assert.is_true(lc.alive(pid))
    assert.is_false(script:poll())
  end)

  it("reloads a managed cluster on SIGHUP; a worker ignores SIGHUP", function()
    local p = lc.start({ "-w", "2", lc.write_app(SERVER) })
    local port = p:port()
    lc.wait_until(function() return p:count("PORT %d+") >= 2 end, 5000)
    local before = {}
    for pid in p:output():gmatch("started, pid: (%d+)") do before[#before + 1] = tonumber(pid) end
    -- A worker that gets SIGHUP (a terminal hanging up) goes on serving.
    lc.kill(before[1], "SIGHUP")
    p:wait_for("SIGHUP ignored")
    assert.is_true(lc.alive(before[1]))
    p:kill("SIGHUP")
    p:wait_for("reloaded 2 worker")
    lc.wait_until(function() return not lc.alive(before[1]) and not lc.alive(before[2]) end, 5000)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    assert.is_false(p:poll())
  end)
end)
