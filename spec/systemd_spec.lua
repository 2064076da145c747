-- Running under systemd: the notify protocol (Type=notify) against a
-- datagram socket the spec opens, and socket activation, both with
-- systemd-socket-activate and with descriptors passed the same way by hand
-- (so the spec can hold the socket while the master restarts).
local lc = require("lc")
local sd = require("sd")
local cjson = require("cjson")

-- Listens on PORT after DELAY_MS (so "ready" is late enough to tell from
-- "started"), and says which worker it is.
local SERVER = [[
  local port = tonumber(os.getenv("PORT") or "0")
  local delay = tonumber(os.getenv("DELAY_MS") or "0")
  setTimeout(function()
    local server = http.createServer(function(req, res)
      res:finish("pid " .. process.pid .. " notify " .. tostring(os.getenv("NOTIFY_SOCKET"))
                 .. " listen " .. tostring(os.getenv("LISTEN_FDS")))
    end)
    server:listen(port, "127.0.0.1", function()
      print("PORT " .. server:address().port .. " pid " .. process.pid)
    end)
  end, delay)
]]

local function control_path()
  return lc.tmpdir() .. "/ctl" .. tostring(lc.now()):gsub("%.", "") .. ".sock"
end

local function status(control)
  local c = lc.spawn({ lc.bin, "status", "--json", "--control", control })
  local code = c:wait_exit(10000)
  if code ~= 0 then return nil, c:output() end
  return cjson.decode(c:output())
end

local function command(control, ...)
  local argv = { lc.bin, ... }
  argv[#argv + 1] = "--control"
  argv[#argv + 1] = control
  local c = lc.spawn(argv)
  local code = c:wait_exit(30000)
  return code, c:output()
end

local notify_count = 0
local function notify_socket(abstract)
  notify_count = notify_count + 1
  if abstract then
    return sd.notify_socket(("@lcspec-notify-%d-%d"):format(sd.my_pid(), notify_count))
  end
  return sd.notify_socket(("%s/notify%d.sock"):format(lc.tmpdir(), notify_count))
end

describe("Type=notify", function()
  local sock
  after_each(function()
    lc.cleanup()
    if sock then sock:close() sock = nil end
  end)

  it("says READY=1 only once every worker listens, then STOPPING=1", function()
    sock = notify_socket()
    local control = control_path()
    local app = lc.write_app(SERVER)
    local started = lc.now()
    local p = lc.start({ "-w", "2", "--control", control, app },
                       { env = { NOTIFY_SOCKET = sock.path, DELAY_MS = 600 } })
    local i, text = sock:wait_for("READY=1")
    assert.is_true(lc.now() - started >= 600, "READY came before the workers listened")
    assert.matches("STATUS=[^\n]*2 worker%(s%) ready", text)
    -- at that moment both workers listen
    local st = assert(status(control))
    assert.are.equal(2, #st.workers)
    for _, w in ipairs(st.workers) do assert.are.equal("listening", w.state) end
    for j = 1, i - 1 do
      assert.is_nil(sock:messages()[j]:match("READY=1"))
    end
    -- workers get neither the socket nor anything to say to it
    local port = p:port()
    local res = assert(lc.http(port, "GET", "/"))
    assert.matches("notify nil", res.body)
    p:kill("SIGTERM")
    sock:wait_for("STOPPING=1", 5000, i)
    assert.are.equal(0, p:wait_exit())
  end)

  it("brackets a reload with RELOADING=1 and READY=1", function()
    sock = notify_socket()
    local control = control_path()
    local app = lc.write_app(SERVER)
    local p = lc.start({ "-w", "2", "--control", control, app },
                       { env = { NOTIFY_SOCKET = sock.path } })
    local ready = sock:wait_for("READY=1")
    local before = assert(status(control))
    p:kill("SIGUSR2")
    local reloading, text = sock:wait_for("RELOADING=1", 5000, ready)
    assert.matches("MONOTONIC_USEC=%d+", text)
    local again = sock:wait_for("READY=1", 10000, reloading)
    assert.is_true(again > reloading)
    -- READY=1 came once the reload was done: both serving workers are new
    -- ones (an old one may still be listed while it drains its requests)
    local after = assert(status(control))
    local serving = 0
    for _, w in ipairs(after.workers) do
      if w.state == "listening" then
        serving = serving + 1
        for _, old in ipairs(before.workers) do assert.are_not.equal(old.pid, w.pid) end
      end
    end
    assert.are.equal(2, serving)
    local code, out = command(control, "reload")
    assert.are.equal(0, code, out)
    sock:wait_for("RELOADING=1", 5000, again)
  end)

  it("reaches an abstract socket and feeds the watchdog every half period", function()
    sock = notify_socket(true)
    local app = lc.write_app(SERVER)
    local p = lc.start({ "-w", "1", "--control", control_path(), app },
                       { env = { NOTIFY_SOCKET = sock.path, WATCHDOG_USEC = 200000 } })
    sock:wait_for("READY=1")
    local t0 = lc.now()
    lc.wait_until(function()
      local n = 0
      for _, m in ipairs(sock:messages()) do n = n + (m == "WATCHDOG=1" and 1 or 0) end
      return n >= 5
    end, 3000, "five WATCHDOG=1 pings")
    -- 5 pings at 100 ms: about half a second, not one per second
    assert.is_true(lc.now() - t0 < 1500)
    p:kill("SIGTERM")
    p:wait_exit()
  end)

  it("ignores a watchdog meant for another process", function()
    sock = notify_socket()
    local app = lc.write_app(SERVER)
    local p = lc.start({ "-w", "1", "--control", control_path(), app },
                       { env = { NOTIFY_SOCKET = sock.path, WATCHDOG_USEC = 100000, WATCHDOG_PID = 1 } })
    local i = sock:wait_for("READY=1")
    p:kill("SIGTERM")
    sock:wait_for("STOPPING=1", 5000, i)
    for _, m in ipairs(sock:messages()) do assert.are_not.equal("WATCHDOG=1", m) end
    p:wait_exit()
  end)

  it("says READY=1 in script mode once the forked workers listen", function()
    sock = notify_socket()
    local app = lc.write_app([[
      if cluster.isMaster then
        for _ = 1, 2 do cluster.fork() end
        process.on("SIGTERM", function() cluster.disconnect() end)
      else
        setTimeout(function()
          http.createServer(function(req, res) res:finish("ok") end):listen(0, "127.0.0.1")
          print("LISTENING " .. process.pid)
        end, 500)
      end
    ]])
    local started = lc.now()
    local p = lc.start({ app }, { env = { NOTIFY_SOCKET = sock.path } })
    sock:wait_for("READY=1")
    assert.is_true(lc.now() - started >= 500)
    assert.are.equal(2, p:count("LISTENING"))
    p:kill("SIGTERM")
    sock:wait_for("STOPPING=1")
    p:wait_exit()
  end)
end)

describe("socket activation", function()
  local held = {}
  after_each(function()
    lc.cleanup()
    for _, fd in ipairs(held) do sd.close(fd) end
    held = {}
  end)

  it("serves on sockets systemd-socket-activate passes", function()
    local port = sd.free_port()
    local app = lc.write_app(SERVER)
    local p = lc.spawn({ "systemd-socket-activate", "-l", "127.0.0.1:" .. port,
                         "-E", "PORT=" .. port,
                         lc.bin, "-w", "2", "--control", control_path(), app })
    -- it execs luacluster at the first connection, which waits in the backlog
    local res
    lc.wait_until(function()
      res = lc.http(port, "GET", "/", { timeout = 10000 })
      return res
    end, 10000, "systemd-socket-activate listening")
    assert.are.equal(200, res.status)
    p:wait_for("passed a listening socket for 127.0.0.1:" .. port)
    assert.matches("listen nil", res.body)
  end)

  it("keeps the port across a restart of the master: clients wait, none is refused", function()
    local fd, port = sd.listen_socket(0)
    held[#held + 1] = fd
    local inode = sd.socket_inode(sd.my_pid(), fd)
    local app = lc.write_app(SERVER)
    local p = sd.start_activated({ "-w", "2", "--control", control_path(), app }, { fd },
                                 { env = { PORT = port } })
    lc.wait_until(function() return p:count("PORT %d+") >= 2 end, 5000, "workers listening")
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    -- the master took the passed socket: it holds it (moved off fd 3), and
    -- the workers it forked do not
    local master = p.pid
    assert.is_true(sd.socket_inodes(master)[inode], "the master holds the passed socket")
    assert.are_not.equal(inode, sd.socket_inode(master, 3))
    for pid in p:output():gmatch("PORT %d+ pid (%d+)") do
      assert.is_nil(sd.socket_inodes(pid)[inode], "worker " .. pid .. " inherited it")
    end
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit())
    -- no master now, but the port is still ours: a client waits in the backlog
    local conn = assert(lc.connect(port))
    conn:send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local p2 = sd.start_activated({ "-w", "1", "--control", control_path(), app }, { fd },
                                  { env = { PORT = port } })
    local res = assert(conn:read_response(10000))
    conn:close()
    assert.are.equal(200, res.status)
    p2:wait_for("PORT %d+ pid")
    p2:kill("SIGTERM")
    assert.are.equal(0, p2:wait_exit())
  end)

  it("binds what it was not passed, and ignores descriptors meant for another pid", function()
    local fd, port = sd.listen_socket(0)
    held[#held + 1] = fd
    local app = lc.write_app(SERVER)
    -- LISTEN_PID names another process: the socket is not ours to use, so
    -- listening on its port fails as for any port in use
    local p = lc.start({ "-w", "1", "--control", control_path(), app },
                       { fds = { fd }, env = { PORT = port, LISTEN_FDS = 1, LISTEN_PID = 1 } })
    p:wait_for("cannot listen on 127.0.0.1:" .. port .. ": address already in use")
    p:kill("SIGTERM")
    p:wait_exit()
    -- a port nobody passed is bound as usual next to a passed one
    local p2 = sd.start_activated({ "-w", "1", "--control", control_path(), app }, { fd },
                                  { env = { PORT = 0 } })
    local other = p2:port()
    assert.are_not.equal(port, other)
    assert.are.equal(200, assert(lc.http(other, "GET", "/")).status)
  end)

  it("serves a single-process script on the passed socket", function()
    local fd, port = sd.listen_socket(0)
    held[#held + 1] = fd
    local app = lc.write_app(SERVER)
    local p = sd.start_activated({ app }, { fd }, { env = { PORT = port } })
    p:wait_for("PORT " .. port)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    p:kill("SIGTERM")
  end)
end)
