-- net: raw TCP servers and sockets end to end.
local ffi = require("ffi")
local lc = require("lc")

pcall(ffi.cdef, "int getsockname(int fd, void *addr, unsigned int *len);")

-- The client's own port, to compare with the server's socket.remotePort.
local function local_port(conn)
  local addr = ffi.new("struct sockaddr_in")
  local len = ffi.new("unsigned int[1]", ffi.sizeof(addr))
  assert(ffi.C.getsockname(conn.fd, addr, len) == 0)
  return bit.bor(bit.lshift(bit.band(addr.sin_port, 0xff), 8), bit.rshift(addr.sin_port, 8))
end

local ECHO = [[
local server = net.createServer(function(sock)
  print("CONN " .. sock.remoteAddress .. " " .. sock.remotePort)
  sock:on("data", function(data)
    if data:find("QUIT", 1, true) then
      sock:finish("bye\n")
    elseif data:find("DESTROY", 1, true) then
      sock:destroy()
    else
      print("WRITE " .. tostring(sock:write(data)))
    end
  end)
  sock:on("end", function() print("END") end)
  sock:on("close", function(had_error) print("CLOSE " .. tostring(had_error)) end)
end)
server:listen(0, "127.0.0.1", function()
  print("PORT " .. server:address().port)
end)
]]

local function start(src)
  local p = lc.start({ lc.write_app(src) })
  return p, p:port()
end

describe("net", function()
  after_each(lc.cleanup)

  it("echoes data, and emits end then close when the client ends", function()
    local p, port = start(ECHO)
    local conn = assert(lc.connect(port))
    conn:send("hello")
    assert.are.equal("hello", conn:recv(5000))
    p:wait_for("WRITE true")
    conn:send("again")
    assert.are.equal("again", conn:recv(5000))
    conn:shutdown()
    -- the server ends its side too (no half-open by default)
    assert.is_true(conn:closed_within(3000))
    p:wait_for("END\nCLOSE false")
    conn:close()
  end)

  it("gives the socket's remote address and port", function()
    local p, port = start(ECHO)
    local conn = assert(lc.connect(port))
    local ip, rport = p:wait_for("CONN (%S+) (%d+)")
    assert.are.equal("127.0.0.1", ip)
    assert.are.equal(local_port(conn), tonumber(rport))
    conn:close()
  end)

  it("finish(data) writes the data, then ends the server's side", function()
    local p, port = start(ECHO)
    local conn = assert(lc.connect(port))
    conn:send("QUIT")
    local data, why = conn:read_all(3000)
    assert.are.equal("bye\n", data)
    assert.are.equal("closed", why)
    conn:close()
    p:wait_for("CLOSE false")
  end)

  it("destroy() closes the connection at once", function()
    local p, port = start(ECHO)
    local conn = assert(lc.connect(port))
    conn:send("DESTROY")
    assert.is_true(conn:closed_within(3000))
    p:wait_for("CLOSE")
    conn:close()
  end)

  it("emits timeout after setTimeout(ms) of inactivity, and activity pushes it", function()
    local p, port = start([[
local server = net.createServer(function(sock)
  sock:setTimeout(400)
  sock:on("data", function(d) sock:write(d) end)
  sock:on("timeout", function()
    print("TIMEOUT")
    sock:destroy()
  end)
end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]])
    local conn = assert(lc.connect(port))
    local t0 = lc.now()
    -- active for 1 s: no timeout while it talks
    for i = 1, 5 do
      if i > 1 then lc.sleep(200) end -- pacing
      conn:send("ping" .. i)
      assert.are.equal("ping" .. i, conn:recv(2000))
    end
    assert.are.equal(0, p:count("TIMEOUT"))
    local quiet = lc.now()
    assert.is_true(conn:closed_within(3000))
    local idle = lc.now() - quiet
    assert.is_true(idle >= 300, ("closed after %d ms idle"):format(idle))
    assert.is_true(lc.now() - t0 >= 800)
    p:wait_for("TIMEOUT")
    conn:close()
  end)

  it("returns false from write past the buffer and emits drain once the client reads", function()
    local total = 8 * 1024 * 1024
    local p, port = start(([[
local TOTAL = %d
local chunk = string.rep("x", 65536)
local server = net.createServer(function(sock)
  local sent, drains, full = 0, 0, 0
  local function pump()
    while sent < TOTAL do
      sent = sent + #chunk
      if not sock:write(chunk) then
        full = full + 1
        print("FULL " .. full .. " at " .. sent)
        return -- until "drain"
      end
    end
    print("ALL_WRITTEN drains=" .. drains .. " full=" .. full)
    sock:finish()
  end
  sock:on("drain", function()
    drains = drains + 1
    pump()
  end)
  pump()
end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]]):format(total))
    local conn = assert(lc.connect(port))
    -- not reading: the server's writes back up
    local at = tonumber(p:wait_for("FULL 1 at (%d+)"))
    assert.is_true(at < total, "write never returned false")
    assert.are.equal(0, p:count("ALL_WRITTEN"))
    local received = 0
    local deadline = lc.now() + 15000
    while lc.now() < deadline do
      local data, why = conn:recv(deadline - lc.now())
      if not data then
        assert.are.equal("closed", why)
        break
      end
      received = received + #data
    end
    assert.are.equal(total, received)
    local drains, fulls = p:wait_for("ALL_WRITTEN drains=(%d+) full=(%d+)")
    assert.is_true(tonumber(drains) >= 1)
    assert.are.equal(tonumber(fulls), tonumber(drains))
    conn:close()
  end)

  it("close() stops accepting and emits close once the open connections end", function()
    local p, port = start([[
local server
server = net.createServer(function(sock)
  sock:on("data", function(d) sock:write(d) end)
  server:close(function() print("SERVER_CLOSED") end)
  print("CLOSING")
end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]])
    local conn = assert(lc.connect(port))
    p:wait_for("CLOSING")
    -- the listener is gone: a new client is refused
    lc.wait_until(function() return not lc.connect(port) end, 2000, "the port to close")
    -- the open connection still works, and holds the close back
    conn:send("still here")
    assert.are.equal("still here", conn:recv(3000))
    assert.are.equal(0, p:count("SERVER_CLOSED"))
    conn:shutdown()
    assert.is_true(conn:closed_within(3000))
    p:wait_for("SERVER_CLOSED")
    conn:close()
    -- nothing keeps the process alive now
    assert.are.equal(0, p:wait_exit(3000))
  end)

  it("serves from cluster workers sharing one port", function()
    local p, port = start([[
if cluster.isMaster then
  cluster.fork()
  cluster.fork()
  local seen = 0
  cluster.on("listening", function(worker, address)
    seen = seen + 1
    if seen == 2 then print("PORT " .. address.port) end
  end)
else
  net.createServer(function(sock)
    sock:on("data", function(d) sock:write(process.pid .. ":" .. d) end)
  end):listen(0, "127.0.0.1")
end
]])
    local pids = {}
    for i = 1, 10 do
      local conn = assert(lc.connect(port))
      conn:send("msg" .. i)
      local reply = assert(conn:recv(3000))
      local pid, echoed = reply:match("^(%d+):(.*)$")
      assert.are.equal("msg" .. i, echoed)
      pids[pid] = true
      conn:close()
    end
    local n = 0
    for pid in pairs(pids) do
      n = n + 1
      assert.are_not.equal(tostring(p.pid), pid)
    end
    assert.are.equal(2, n)
  end)
end)
