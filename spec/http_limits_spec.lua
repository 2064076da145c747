-- The HTTP server's limits and timeouts, each at its default and at a
-- configured value, and malformed requests: a bad request gets its status
-- and a close, and the server goes on answering everyone else.
local ffi = require("ffi")
local lc = require("lc")

-- A client writing into a connection the server already closed must see
-- EPIPE, not die of SIGPIPE (the runtime ignores it too, so the children
-- inherit nothing new).
pcall(ffi.cdef, "typedef void (*lc_spec_sighandler)(int); " ..
                "lc_spec_sighandler signal(int sig, lc_spec_sighandler fn);")
ffi.C.signal(13, ffi.cast("lc_spec_sighandler", 1))

-- config: nil (defaults), or {style = "options"|"fields", [setting] = value}
local function start(config)
  local opts, fields = {}, {}
  for k, v in pairs(config or {}) do
    if k ~= "style" then
      local line = ("%s = %s"):format(k, v)
      if config.style == "fields" then
        fields[#fields + 1] = "server." .. line
      else
        opts[#opts + 1] = line
      end
    end
  end
  local app = ([[
local server = http.createServer({ %s }, function(req, res)
  if req.url == "/hang" then return end -- never answers
  local n = 0
  req:on("data", function(chunk) n = n + #chunk end)
  req:on("end", function() res:finish("ok " .. n) end)
end)
%s
server:listen(0, "127.0.0.1", function()
  print("PORT " .. server:address().port)
end)
]]):format(table.concat(opts, ", "), table.concat(fields, "\n"))
  local p = lc.start({ lc.write_app(app) })
  return p, p:port()
end

-- One raw request on a new connection; the response (or nil, why) and
-- whether the server closed the connection after it.
local function raw(port, bytes, check_close)
  local conn = assert(lc.connect(port))
  conn:send(bytes)
  local res, why = conn:read_response(5000)
  local closed = res and check_close and conn:closed_within(3000)
  conn:close()
  return res, why, closed
end

local function request(path, headers, extra)
  return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n%s"):format(path, headers or "",
                                                               extra or "")
end

-- The server still answers a normal request on a new connection.
local function still_serves(port)
  local res = assert(lc.http(port, "GET", "/after"))
  assert.are.equal(200, res.status)
  assert.are.equal("ok 0", res.body)
end

local function assert_refused(port, bytes, status)
  local res, why, closed = raw(port, bytes, true)
  assert.is_truthy(res, "no response: " .. tostring(why))
  assert.are.equal(status, res.status)
  assert.are.equal("close", res.headers["connection"])
  assert.is_true(closed, "the connection stayed open after " .. status)
  still_serves(port)
end

local function assert_served(port, bytes)
  local res, why = raw(port, bytes)
  assert.is_truthy(res, "no response: " .. tostring(why))
  assert.are.equal(200, res.status)
  return res
end

local function headers_of(n, value_size)
  local lines = {}
  for i = 1, n do
    lines[i] = ("X-H%d: %s\r\n"):format(i, string.rep("v", value_size or 1))
  end
  return table.concat(lines)
end

describe("http limits", function()
  after_each(lc.cleanup)

  describe("maxHeaderSize", function()
    it("answers 431 to a header block over 16 KiB by default, and serves one under it", function()
      local _, port = start()
      assert_served(port, request("/", "X-Big: " .. string.rep("a", 15 * 1024) .. "\r\n"))
      assert_refused(port, request("/", "X-Big: " .. string.rep("a", 17 * 1024) .. "\r\n"), 431)
    end)

    it("answers 431 over a configured size (createServer option)", function()
      local _, port = start({ maxHeaderSize = 2048 })
      assert_served(port, request("/", "X-Big: " .. string.rep("a", 1500) .. "\r\n"))
      assert_refused(port, request("/", "X-Big: " .. string.rep("a", 2100) .. "\r\n"), 431)
    end)

    it("answers 431 over a size set as a server field", function()
      local _, port = start({ style = "fields", maxHeaderSize = 2048 })
      assert_served(port, request("/", "X-Big: " .. string.rep("a", 1500) .. "\r\n"))
      assert_refused(port, request("/", "X-Big: " .. string.rep("a", 2100) .. "\r\n"), 431)
    end)
  end)

  describe("maxUrlSize", function()
    it("answers 414 to a URL over 8 KiB by default, and serves one under it", function()
      local _, port = start()
      assert_served(port, request("/" .. string.rep("u", 7 * 1024)))
      assert_refused(port, request("/" .. string.rep("u", 8 * 1024 + 10)), 414)
    end)

    it("answers 414 over a configured size", function()
      local _, port = start({ style = "fields", maxUrlSize = 512 })
      assert_served(port, request("/" .. string.rep("u", 400)))
      assert_refused(port, request("/" .. string.rep("u", 600)), 414)
    end)
  end)

  describe("maxHeadersCount", function()
    it("answers 431 to more than 100 headers by default, and serves 100", function()
      local _, port = start()
      -- Host is one of them
      assert_served(port, request("/", headers_of(99)))
      assert_refused(port, request("/", headers_of(100)), 431)
    end)

    it("answers 431 over a configured count", function()
      local _, port = start({ maxHeadersCount = 10 })
      assert_served(port, request("/", headers_of(9)))
      assert_refused(port, request("/", headers_of(10)), 431)
    end)
  end)

  describe("maxBodySize", function()
    local function post(len, body)
      return ("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"):format(len,
        body or "")
    end

    local function chunked_head()
      return "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    end

    -- Streams chunks of chunk_size until the server answers; returns the
    -- response and how many body bytes were sent.
    local function stream_chunks(port, chunk_size, max_bytes)
      local conn = assert(lc.connect(port))
      conn:send(chunked_head())
      local sent = 0
      local chunk = ("%x\r\n%s\r\n"):format(chunk_size, string.rep("c", chunk_size))
      while sent < max_bytes do
        if not conn:send(chunk) then break end
        sent = sent + chunk_size
        local data = conn:recv(20)
        if data then
          conn.buf = data
          break
        end
      end
      local res, why = conn:read_response(5000)
      local closed = res and conn:closed_within(3000)
      conn:close()
      return res, why, closed, sent
    end

    it("answers 413 to a Content-Length over 1 MiB by default, and takes 1 MiB", function()
      local _, port = start()
      local res = assert_served(port, post(1048576, string.rep("b", 1048576)))
      assert.are.equal("ok 1048576", res.body)
      assert_refused(port, post(1048577), 413)
    end)

    it("answers 413 to a chunked body that grows over 1 MiB by default", function()
      local _, port = start()
      local res, why, closed, sent = stream_chunks(port, 65536, 4 * 1048576)
      assert.is_truthy(res, "no response: " .. tostring(why))
      assert.are.equal(413, res.status)
      assert.is_true(closed)
      assert.is_true(sent >= 1048576 and sent <= 1048576 + 2 * 65536, "sent " .. sent)
      still_serves(port)
    end)

    it("answers 413 over a configured size, by Content-Length and by chunks", function()
      local _, port = start({ maxBodySize = 1000 })
      local res = assert_served(port, post(1000, string.rep("b", 1000)))
      assert.are.equal("ok 1000", res.body)
      assert_refused(port, post(1001), 413)
      -- under the limit in chunks
      res = assert_served(port, chunked_head() .. "1f4\r\n" .. string.rep("c", 500) ..
                                "\r\n1f4\r\n" .. string.rep("c", 500) .. "\r\n0\r\n\r\n")
      assert.are.equal("ok 1000", res.body)
      local res2, why, closed, sent = stream_chunks(port, 300, 100000)
      assert.is_truthy(res2, "no response: " .. tostring(why))
      assert.are.equal(413, res2.status)
      assert.is_true(closed)
      assert.is_true(sent <= 1200 + 300, "sent " .. sent)
      still_serves(port)
    end)
  end)

  describe("keepAliveTimeout", function()
    local function idle_close_after(port)
      local conn = assert(lc.connect(port))
      conn:send(request("/"))
      local res = assert(conn:read_response(5000))
      assert.are.equal(200, res.status)
      local t0 = lc.now()
      return conn, t0
    end

    it("closes an idle keep-alive connection after 5 s by default", function()
      local _, port = start()
      local conn, t0 = idle_close_after(port)
      assert.is_true(conn:closed_within(8000), "still open after 8 s")
      local elapsed = lc.now() - t0
      assert.is_true(elapsed >= 4900, ("closed after %d ms"):format(elapsed))
      conn:close()
    end)

    it("closes an idle keep-alive connection after a configured timeout, not before", function()
      local _, port = start({ style = "fields", keepAliveTimeout = 300 })
      local conn, t0 = idle_close_after(port)
      assert.is_true(conn:closed_within(2000), "still open after 2 s")
      local elapsed = lc.now() - t0
      assert.is_true(elapsed >= 250, ("closed after %d ms"):format(elapsed))
      conn:close()
    end)

    it("counts the idle time from the last response, not from the connect", function()
      local _, port = start({ keepAliveTimeout = 400 })
      local conn = assert(lc.connect(port))
      for _ = 1, 4 do -- 4 x 200 ms of requests: past 400 ms in all
        conn:send(request("/"))
        assert.are.equal(200, assert(conn:read_response(5000)).status)
        lc.sleep(200) -- pacing
      end
      conn:send(request("/"))
      assert.are.equal(200, assert(conn:read_response(5000)).status)
      conn:close()
    end)
  end)

  describe("headersTimeout", function()
    it("answers 408 to a client that trickles its header block past the timeout", function()
      local p, port = start({ headersTimeout = 500 })
      local conn = assert(lc.connect(port))
      conn:send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
      local t0 = lc.now()
      local got, why
      while lc.now() - t0 < 5000 do
        conn:send("a") -- a byte every 100 ms must not push the deadline
        got, why = conn:recv(100)
        if got or why == "closed" then break end
      end
      local elapsed = lc.now() - t0
      assert.is_truthy(got or why == "closed", "nothing after 5 s of trickling")
      if got then
        conn.buf = got
        local res = assert(conn:read_response(2000))
        assert.are.equal(408, res.status)
      end
      assert.is_true(elapsed >= 400 and elapsed < 2000, ("answered after %d ms"):format(elapsed))
      conn:close()
      local _ = p
      still_serves(port)
    end)
  end)

  describe("requestTimeout", function()
    it("answers 408 when the handler does not answer in time", function()
      local _, port = start({ requestTimeout = 300 })
      local conn = assert(lc.connect(port))
      conn:send(request("/hang"))
      local t0 = lc.now()
      local res = assert(conn:read_response(3000))
      local elapsed = lc.now() - t0
      assert.are.equal(408, res.status)
      assert.is_true(elapsed >= 250, ("answered after %d ms"):format(elapsed))
      assert.is_true(conn:closed_within(2000))
      conn:close()
      still_serves(port)
    end)
  end)

  describe("malformed requests", function()
    it("answers 400 and closes on a garbage request line", function()
      local _, port = start()
      assert_refused(port, "THIS IS NOT HTTP\r\n\r\n", 400)
    end)

    it("answers 400 and closes on a header line without a colon", function()
      local _, port = start()
      assert_refused(port, "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400)
    end)

    it("answers 400 and closes on an invalid chunk size", function()
      local _, port = start()
      assert_refused(port, "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
                           "zz\r\nhello\r\n0\r\n\r\n", 400)
    end)

    it("answers 400 and closes on a bad Content-Length", function()
      local _, port = start()
      assert_refused(port, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n", 400)
      assert_refused(port, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" ..
                           "Content-Length: 6\r\n\r\nhello!", 400)
    end)
  end)
end)

describe("http server settings", function()
  after_each(lc.cleanup)

  it("reads back the defaults and what was set, with Node's field names", function()
    local app = lc.write_app([[
      local s = http.createServer({ maxBodySize = 2048 }, function(req, res) res:finish() end)
      s.keepAliveTimeout = 1234
      print("SETTINGS", s.keepAliveTimeout, s.headersTimeout, s.requestTimeout,
            s.maxHeaderSize, s.maxUrlSize, s.maxHeadersCount, s.maxBodySize)
    ]])
    local p = lc.start({ app })
    assert.are.same({ "1234", "60000", "300000", "16384", "8192", "100", "2048" },
      { p:wait_for("SETTINGS\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)") })
    assert.are.equal(0, p:wait_exit())
  end)
end)
