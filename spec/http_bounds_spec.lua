-- The HTTP server's reading is bounded whatever a client does: the
-- lingering close after an answer that ends the connection (a 400, say)
-- lasts a fixed time and reads a fixed number of bytes, and a client that
-- pipelines requests without reading the answers stops being read from,
-- without a request being lost.
local ffi = require("ffi")
local bit = require("bit")
local lc = require("lc")

pcall(ffi.cdef, "typedef void (*lc_spec_sighandler)(int); " ..
                "lc_spec_sighandler signal(int sig, lc_spec_sighandler fn);")
pcall(ffi.cdef, "int fcntl(int fd, int cmd, ...);")
-- Writes into a connection the server closed must fail, not kill us.
ffi.C.signal(13, ffi.cast("lc_spec_sighandler", 1))

local F_GETFL, F_SETFL, O_NONBLOCK = 3, 4, 2048
local SOL_SOCKET, SO_SNDBUF, SO_RCVBUF = 1, 7, 8
local POLLIN, POLLOUT = 1, 4
local EAGAIN = 11

local BODY = ("x"):rep(2040) .. "<<DONE>>"

local APP = ([[
local server = http.createServer(function(req, res)
  res:finish(%q)
end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]]):format(BODY)

local function set_nonblocking(fd)
  local flags = ffi.C.fcntl(fd, F_GETFL)
  ffi.C.fcntl(fd, F_SETFL, ffi.new("int", bit.bor(flags, O_NONBLOCK)))
end

local function set_buffers(fd, size)
  local v = ffi.new("int[1]", size)
  ffi.C.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, v, 4)
  ffi.C.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, v, 4)
end

-- Writes what the socket takes without blocking: bytes written, or nil and
-- errno when it failed.
local function try_write(fd, data, off)
  local n = ffi.C.write(fd, ffi.cast("const char *", data) + off, #data - off)
  if n < 0 then
    local e = ffi.errno()
    if e == EAGAIN then return 0 end
    return nil, e
  end
  return tonumber(n)
end

local function wait_fd(fd, events, ms)
  local pfd = ffi.new("struct pollfd[1]")
  pfd[0].fd = fd
  pfd[0].events = events
  return ffi.C.poll(pfd, 1, ms) > 0 and pfd[0].revents or 0
end

describe("HTTP reading is bounded", function()
  local p, port

  before_each(function()
    p = lc.start({ lc.write_app(APP) })
    port = p:port()
  end)
  after_each(lc.cleanup)

  -- A connection that got a 400 and is now lingering.
  local function after_bad_request()
    local conn = assert(lc.connect(port))
    conn:send("BAD REQUEST\r\n\r\n")
    local res = assert(conn:read_response(5000))
    assert.are.equal(400, res.status)
    return conn
  end

  it("ends a lingering close on time while a client trickles bytes", function()
    local conn = after_bad_request()
    local start = lc.now()
    local failed_at
    while lc.now() - start < 8000 do
      if not try_write(conn.fd, "x", 0) then
        failed_at = lc.now() - start
        break
      end
      lc.sleep(100)
    end
    conn:close()
    -- Lingering lasts 2 s from its start; the write after the close fails
    -- once the reset to the one before it is back.
    assert.is_truthy(failed_at, "the server was still reading after 8 s")
    assert.is_true(failed_at < 4000, "closed after " .. tostring(failed_at) .. " ms")
  end)

  it("stops reading a lingering connection that floods it", function()
    local conn = after_bad_request()
    local chunk = ("y"):rep(65536)
    local written, start, err = 0, lc.now(), nil
    while written < 256 * 1048576 and lc.now() - start < 15000 do
      local n, e = try_write(conn.fd, chunk, 0)
      if not n then err = e break end
      written = written + n
    end
    conn:close()
    -- Past 256 KiB dropped, the server closes: what we got out is that
    -- plus the sockets' buffers, far from what we tried.
    assert.is_truthy(err, ("still accepted after %d bytes"):format(written))
    assert.is_true(written < 64 * 1048576, ("%d bytes accepted"):format(written))
  end)

  it("stops reading a pipelining client that does not read, and answers every request", function()
    local conn = assert(lc.connect(port))
    set_buffers(conn.fd, 65536)
    set_nonblocking(conn.fd)
    local req = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " .. ("p"):rep(360) .. "\r\n\r\n"
    local limit = 48 * 1048576
    local sent, off = 0, 0 -- whole requests written; bytes of the next
    local blocked = false
    while (sent * #req) < limit do
      local n = assert(try_write(conn.fd, req, off))
      off = off + n
      if off == #req then sent, off = sent + 1, 0 end
      if n == 0 and wait_fd(conn.fd, POLLOUT, 1000) == 0 then
        blocked = true
        break
      end
    end
    assert.is_true(blocked, ("the server read all %d requests without "
                            .. "the answers being read"):format(sent))
    assert.is_true(sent * #req < 16 * 1048576, sent .. " requests read before blocking")
    -- Now read: every request written, the partial one finished too, is
    -- answered.
    local expected = sent + (off > 0 and 1 or 0)
    local done, tail = 0, ""
    local buf = ffi.new("char[65536]")
    local deadline = lc.now() + 60000
    while done < expected and lc.now() < deadline do
      if off > 0 then
        local n = assert(try_write(conn.fd, req, off))
        off = off + n
        if off == #req then off = 0 end
      end
      if bit.band(wait_fd(conn.fd, POLLIN, 1000), POLLIN) ~= 0 then
        local n = tonumber(ffi.C.read(conn.fd, buf, 65536))
        assert.is_true(n > 0, "the server closed the connection")
        local data = tail .. ffi.string(buf, n)
        for _ in data:gmatch("<<DONE>>") do done = done + 1 end
        tail = data:sub(-7)
      end
    end
    conn:close()
    assert.are.equal(expected, done)
  end)
end)
