-- The shared port (DESIGN 4): workers listening on one address through the
-- master, with each scheduling policy, and what happens around it.
local lc = require("lc")

-- A script-mode cluster of `workers` HTTP workers answering their pid.
-- `setup` runs in the master before it forks (e.g. to set the policy).
local function cluster_app(setup, workers, host)
  return lc.write_app(([[
if cluster.isMaster then
  %s
  print("POLICY " .. cluster.schedulingPolicy)
  local n = 0
  cluster.on("listening", function(worker, address)
    n = n + 1
    print(("LISTENING id=%%d pid=%%d address=%%s port=%%d type=%%s"):format(worker.id,
      worker.process.pid, address.address, address.port, tostring(address.addressType)))
    if n == %d then print("PORT " .. address.port) end
  end)
  for _ = 1, %d do cluster.fork() end
else
  local server = http.createServer(function(req, res)
    res:finish(tostring(process.pid))
  end)
  server:listen(0, %q, function()
    print("WORKER_LISTENING pid=" .. process.pid .. " port=" .. server:address().port)
  end)
end
]]):format(setup or "", workers or 2, workers or 2, host or "127.0.0.1"))
end

-- The pid that answers a request on a new connection.
local function pid_of(port, host)
  local res, why = lc.http(port, "GET", "/", { host = host })
  assert(res, "request failed: " .. tostring(why))
  assert.are.equal(200, res.status)
  return tonumber(res.body)
end

-- pid -> count over n connections.
local function spread(port, n, host)
  local seen = {}
  for _ = 1, n do
    local pid = pid_of(port, host)
    seen[pid] = (seen[pid] or 0) + 1
  end
  return seen
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Connects until both pids have answered (at most `max` connections).
local function both_answer(port, max)
  local seen, n = {}, 0
  for i = 1, max do
    seen[pid_of(port)] = true
    n = #keys(seen)
    if n == 2 then return seen, i end
  end
  return seen, max
end

-- The LISTEN sockets on a port: a list of {pid = true, ...}, one per socket.
local function listen_sockets(port)
  local f = assert(io.popen(("ss -ltnpH 'sport = :%d' 2>/dev/null"):format(port)))
  local out = f:read("*a")
  f:close()
  local sockets = {}
  for line in out:gmatch("[^\n]+") do
    local pids = {}
    for pid in line:gmatch("pid=(%d+)") do pids[tonumber(pid)] = true end
    sockets[#sockets + 1] = pids
  end
  return sockets, out
end

-- The worker pids of a script-mode cluster, from their "listening" lines.
local function worker_pids(p, n)
  lc.wait_until(function() return p:count("LISTENING id=") >= n end, 5000,
    function() return n .. " workers listening; output:\n" .. p:output() end)
  local pids = {}
  for pid in p:output():gmatch("LISTENING id=%d+ pid=(%d+)") do pids[#pids + 1] = tonumber(pid) end
  table.sort(pids)
  return pids
end

describe("dispatch", function()
  after_each(lc.cleanup)

  it("gives two workers listening on port 0 the same port, with listening in master and worker", function()
    local p = lc.start({ cluster_app() })
    local port = p:port()
    local out = p:output()
    local ids, ports = {}, {}
    for id, pid, addr, wport in out:gmatch("LISTENING id=(%d+) pid=(%d+) address=(%S+) port=(%d+)") do
      ids[#ids + 1] = tonumber(id)
      ports[#ports + 1] = tonumber(wport)
      assert.are.equal("127.0.0.1", addr)
      assert.are_not.equal(p.pid, tonumber(pid))
    end
    table.sort(ids)
    assert.are.same({ 1, 2 }, ids)
    assert.are.same({ port, port }, ports)
    assert.are_not.equal(0, port)
    -- the workers' own servers emitted "listening" with that port
    lc.wait_until(function() return p:count("WORKER_LISTENING pid=%d+ port=" .. port .. "\n") == 2 end,
      3000, function() return "both workers' listening; output:\n" .. p:output() end)
  end)

  it("rr (the default) takes turns: both workers answer", function()
    local p = lc.start({ cluster_app() })
    local port = p:port()
    p:wait_for("POLICY rr")
    local pids = worker_pids(p, 2)
    local seen = spread(port, 40)
    assert.are.same(pids, keys(seen))
    assert.is_true(seen[pids[1]] >= 15 and seen[pids[2]] >= 15,
      ("uneven: %d / %d"):format(seen[pids[1]], seen[pids[2]]))
    -- the master alone accepts
    local sockets, raw = listen_sockets(port)
    assert.are.equal(1, #sockets, raw)
    assert.are.same({ [p.pid] = true }, sockets[1])
  end)

  it("none: the workers accept on the shared socket themselves, and both get connections", function()
    local p = lc.start({ cluster_app('cluster.schedulingPolicy = "none"') })
    local port = p:port()
    p:wait_for("POLICY none")
    local pids = worker_pids(p, 2)
    local seen, tries = both_answer(port, 200)
    assert.are.same(pids, keys(seen), "after " .. tries .. " connections")
    local sockets, raw = listen_sockets(port)
    assert.are.equal(1, #sockets, raw)
    assert.is_true(sockets[1][pids[1]] and sockets[1][pids[2]], raw)
  end)

  it("reuseport: each worker has its own socket on the port, and both get connections", function()
    local p = lc.start({ cluster_app('cluster.schedulingPolicy = "reuseport"') })
    local port = p:port()
    p:wait_for("POLICY reuseport")
    local pids = worker_pids(p, 2)
    local seen, tries = both_answer(port, 200)
    assert.are.same(pids, keys(seen), "after " .. tries .. " connections")
    local sockets, raw = listen_sockets(port)
    assert.are.equal(2, #sockets, raw)
  end)

  it("sticky keeps one client on one worker", function()
    local p = lc.start({ cluster_app('cluster.schedulingPolicy = "sticky"') })
    local port = p:port()
    p:wait_for("POLICY sticky")
    local pids = worker_pids(p, 2)
    local seen = spread(port, 40)
    local got = keys(seen)
    assert.are.equal(1, #got)
    assert.are.equal(40, seen[got[1]])
    assert.is_truthy(got[1] == pids[1] or got[1] == pids[2])
  end)

  it("takes the policy from LUACLUSTER_SCHED_POLICY", function()
    local p = lc.start({ cluster_app() }, { env = { LUACLUSTER_SCHED_POLICY = "sticky" } })
    local port = p:port()
    p:wait_for("POLICY sticky")
    worker_pids(p, 2)
    assert.are.equal(1, #keys(spread(port, 30)))
  end)

  describe("managed mode (-w 2 --sched)", function()
    local WORKER = lc.write_app([[
local server = http.createServer(function(req, res) res:finish(tostring(process.pid)) end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]])

    local function managed(policy)
      local p = lc.start({ "-w", "2", "--sched", policy, WORKER })
      local port = p:port()
      lc.wait_until(function() return p:count("PORT " .. port .. "\n") == 2 end, 5000,
        function() return "two workers on port " .. port .. "; output:\n" .. p:output() end)
      return p, port
    end

    it("rr: both workers answer", function()
      local _, port = managed("rr")
      assert.are.equal(2, #keys(spread(port, 40)))
    end)

    it("none: both workers answer", function()
      local _, port = managed("none")
      local seen, tries = both_answer(port, 200)
      assert.are.equal(2, #keys(seen), "after " .. tries .. " connections")
    end)

    it("reuseport: both workers answer", function()
      local _, port = managed("reuseport")
      local seen, tries = both_answer(port, 200)
      assert.are.equal(2, #keys(seen), "after " .. tries .. " connections")
      local sockets, raw = listen_sockets(port)
      assert.are.equal(2, #sockets, raw)
    end)

    it("sticky: one client, one worker", function()
      local _, port = managed("sticky")
      local seen = spread(port, 40)
      assert.are.equal(1, #keys(seen))
    end)
  end)

  it("a script that never forks listens by itself, in one process", function()
    local p = lc.start({ lc.write_app([[
local server = http.createServer(function(req, res) res:finish(tostring(process.pid)) end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]]) })
    local port = p:port()
    assert.are.equal(p.pid, pid_of(port))
    assert.are.same({}, lc.children(p.pid))
    local sockets, raw = listen_sockets(port)
    assert.are.equal(1, #sockets, raw)
    assert.are.same({ [p.pid] = true }, sockets[1])
  end)

  it("serves workers listening on ::1 over IPv6", function()
    local p = lc.start({ cluster_app(nil, 2, "::1") })
    local port = p:port()
    -- ::1 must work on this machine; a failure here is a failure
    local conn, err = lc.connect(port, "::1")
    assert.is_truthy(conn, "connect to [::1]:" .. port .. ": " .. tostring(err))
    conn:close()
    local _, addr, atype = p:wait_for("LISTENING id=%d+ pid=(%d+) address=(%S+) port=%d+ type=(%S+)")
    assert.are.equal("::1", addr)
    assert.are.equal("6", atype)
    local seen = spread(port, 10, "::1")
    assert.are.equal(2, #keys(seen))
    -- not on IPv4
    assert.is_nil((lc.connect(port, "127.0.0.1")))
  end)

  it("listens on a host name (localhost)", function()
    local p = lc.start({ cluster_app(nil, 2, "localhost") })
    local port = p:port()
    local addr = p:wait_for("LISTENING id=%d+ pid=%d+ address=(%S+)")
    assert.is_truthy(addr == "127.0.0.1" or addr == "::1", addr)
    assert.are.equal(2, #keys(spread(port, 10, addr)))
  end)

  describe("EADDRINUSE", function()
    local HOG = [[
local port = tonumber(os.getenv("TAKEN_PORT"))
local server = http.createServer(function(req, res) res:finish("second") end)
server:on("error", function(err) print("ERROR " .. tostring(err.code)) end)
server:listen(port, "127.0.0.1", function() print("LISTENING_TOO") end)
]]

    it("reaches a standalone server as an error event, and the process exits 0", function()
      local cl = lc.start({ cluster_app() })
      local port = cl:port()
      local p = lc.start({ lc.write_app(HOG) }, { env = { TAKEN_PORT = port } })
      assert.are.equal("EADDRINUSE", (p:wait_for("ERROR (%S+)")))
      assert.are.equal(0, p:wait_exit(5000))
      assert.are.equal(0, p:count("LISTENING_TOO"))
      -- the cluster still owns the port
      assert.are_not.equal(p.pid, pid_of(port))
    end)

    it("reaches a worker whose port another process holds", function()
      local holder = lc.start({ lc.write_app([[
local server = net.createServer(function() end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]]) })
      local port = holder:port()
      local p = lc.start({ lc.write_app([[
if cluster.isMaster then
  cluster.fork()
  cluster.on("listening", function() print("MASTER_SAW_LISTENING") end)
else
  local server = http.createServer(function(req, res) res:finish("worker") end)
  server:on("error", function(err)
    print("WORKER_ERROR " .. tostring(err.code))
    process.exit(0)
  end)
  server:listen(tonumber(os.getenv("TAKEN_PORT")), "127.0.0.1")
end
]]) }, { env = { TAKEN_PORT = port } })
      assert.are.equal("EADDRINUSE", (p:wait_for("WORKER_ERROR (%S+)")))
      assert.are.equal(0, p:count("MASTER_SAW_LISTENING"))
      assert.is_true(lc.alive(holder.pid))
    end)
  end)

  it("rr: a client connecting while the only worker is being replaced is served by the new one", function()
    local p = lc.start({ lc.write_app([[
if cluster.isMaster then
  cluster.on("listening", function(worker, address)
    print("LISTENING pid=" .. worker.process.pid)
    print("PORT " .. address.port)
  end)
  cluster.on("exit", function(worker)
    print("EXITED pid=" .. worker.process.pid)
    cluster.fork({ SLOW_START = "1" })
  end)
  cluster.fork()
else
  local server = http.createServer(function(req, res) res:finish(tostring(process.pid)) end)
  local delay = os.getenv("SLOW_START") and 800 or 0
  setTimeout(function() server:listen(0, "127.0.0.1") end, delay)
end
]]) })
    local port = p:port()
    local old = pid_of(port)
    assert.is_true(lc.kill(old, "SIGKILL"))
    p:wait_for("EXITED pid=" .. old)
    -- the gap: the replacement is not listening yet
    local conn, err = lc.connect(port)
    assert.is_truthy(conn, "refused during the gap: " .. tostring(err))
    conn:send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.are.equal(1, p:count("LISTENING pid="))
    local res = assert(conn:read_response(5000))
    conn:close()
    assert.are.equal(200, res.status)
    local new = tonumber(res.body)
    assert.are_not.equal(old, new)
    p:wait_for("LISTENING pid=" .. new)
  end)

  it("routes nothing to a disconnecting worker; no request fails", function()
    local p = lc.start({ lc.write_app([[
if cluster.isMaster then
  local n = 0
  cluster.on("listening", function(worker, address)
    n = n + 1
    if n == 2 then print("PORT " .. address.port) end
  end)
  -- the worker holding a slow request is the one to disconnect: it stays
  -- alive, and busy (so not even its own unlisten reaches the master),
  -- while that request runs
  cluster.on("message", function(worker, msg)
    if msg == "holding" then
      setTimeout(function() -- the worker is busy by then
        worker:disconnect()
        print("DISCONNECTING pid=" .. worker.process.pid .. " state=" .. worker.state)
      end, 200)
    end
  end)
  cluster.on("exit", function(worker) print("EXITED pid=" .. worker.process.pid) end)
  cluster.fork()
  cluster.fork()
else
  local server = http.createServer(function(req, res)
    if req.url == "/hold" then
      process.send("holding")
      setTimeout(function() -- once the message is out
        local t0 = os.clock()
        while os.clock() - t0 < 2 do end
        res:finish(tostring(process.pid))
      end, 50)
    else
      res:finish(tostring(process.pid))
    end
  end)
  server:listen(0, "127.0.0.1")
end
]]) })
    local port = p:port()
    assert.are.equal(2, #keys(spread(port, 10)))
    local hold = assert(lc.connect(port))
    hold:send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    local gone = tonumber((p:wait_for("DISCONNECTING pid=(%d+) state=disconnecting")))
    local seen = spread(port, 30)
    local got = keys(seen)
    assert.are.same({ got[1] }, got)
    assert.are_not.equal(gone, got[1])
    -- it was there to take them, and was not given any
    assert.is_true(lc.alive(gone))
    assert.are.equal(0, p:count("EXITED"))
    -- its request in flight ends normally
    local res = assert(hold:read_response(5000))
    assert.are.equal(200, res.status)
    assert.are.equal(gone, tonumber(res.body))
    hold:close()
    p:wait_for("EXITED pid=" .. gone)
    assert.are.equal(20, spread(port, 20)[got[1]])
  end)
end)
