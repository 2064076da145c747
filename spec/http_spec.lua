-- The HTTP/1.1 server end to end: a real luacluster process, raw sockets.
local lc = require("lc")

-- One app answers every route the tests need; each test starts its own.
local APP = [[
local function dump(req)
  local names = {}
  for k in pairs(req.headers) do names[#names + 1] = k end
  table.sort(names)
  local lines = {
    "method=" .. req.method, "url=" .. req.url, "version=" .. req.httpVersion,
    "remote=" .. tostring(req.socket.remoteAddress),
    "remotePort=" .. tostring(req.socket.remotePort),
  }
  for _, k in ipairs(names) do lines[#lines + 1] = "h:" .. k .. "=" .. req.headers[k] end
  return table.concat(lines, "\n") .. "\n"
end

local routes = {}

routes["/status"] = function(req, res)
  res.statusCode = 404
  res:setHeader("X-Number", 5)
  res:setHeader("X-Case", "first")
  res:setHeader("x-case", "second") -- same header, any case: replaced
  res:finish("number=" .. tostring(res:getHeader("x-number")) ..
             " case=" .. tostring(res:getHeader("X-CASE")))
end

routes["/cookies"] = function(req, res)
  -- one name, many lines: more than the binding's stack array holds
  local cookies = {}
  for i = 1, 100 do cookies[i] = "c" .. i .. "=" .. i end
  res:setHeader("Set-Cookie", cookies)
  res:finish("ok")
end

routes["/writehead"] = function(req, res)
  res:setHeader("X-Before", "kept")
  res:writeHead(202, { ["X-Two"] = "2", ["Content-Type"] = "text/x-test" })
  res:finish("code=" .. res.statusCode .. " two=" .. tostring(res:getHeader("x-two")))
end

routes["/slow"] = function(req, res)
  setTimeout(function() res:finish("slow " .. req.url) end, 200)
end

routes["/chunked"] = function(req, res)
  res:write("one,")
  res:write("two,")
  res:finish("three")
end

routes["/body"] = function(req, res)
  local parts = {}
  req:on("data", function(chunk) parts[#parts + 1] = chunk end)
  req:on("end", function()
    local body = table.concat(parts)
    res:finish(("chunks=%d len=%d body=%s"):format(#parts, #body, body))
  end)
end

routes["/error"] = function(req, res)
  error("boom in the handler")
end

routes["/error-after-write"] = function(req, res)
  res:write("partial")
  error("late boom")
end

routes["/alias"] = function(req, res)
  res["end"](res, "via the end alias")
end

routes["/inject"] = function(req, res)
  res:setHeader("X-Bad", "a\r\nInjected: yes")
  res:finish("must not be sent")
end

routes["/write-after-end"] = function(req, res)
  res:finish("done")
  local ok, err = pcall(res.write, res, "more")
  print("WRITE_AFTER_END " .. tostring(ok) .. " " .. tostring(err))
end

local server = http.createServer(function(req, res)
  local route = routes[req.url]
  if route then return route(req, res) end
  res:setHeader("Content-Type", "text/plain")
  res:finish(dump(req))
end)
server:listen(0, "127.0.0.1", function()
  print("PORT " .. server:address().port)
end)
]]

local function start()
  local p = lc.start({ lc.write_app(APP) })
  return p, p:port()
end

-- "k=v" lines of a /dump body as a table.
local function fields(body)
  local t = {}
  for k, v in body:gmatch("([^\n=]+)=([^\n]*)\n") do t[k] = v end
  return t
end

local function get(path, headers, version)
  local lines = { ("GET %s HTTP/%s"):format(path, version or "1.1"), "Host: 127.0.0.1" }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = h end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

local DATE = "^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$"

describe("http server", function()
  after_each(lc.cleanup)

  it("gives the handler method, url, version, lower-cased headers and the peer address", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send("GET /dump?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Mixed-CASE: Value One\r\n" ..
              "ACCEPT: text/plain\r\n\r\n")
    local res = assert(conn:read_response(5000))
    assert.are.equal(200, res.status)
    local f = fields(res.body)
    assert.are.equal("GET", f.method)
    assert.are.equal("/dump?a=1", f.url)
    assert.are.equal("1.1", f.version)
    assert.are.equal("127.0.0.1", f.remote)
    assert.is_truthy(tonumber(f.remotePort))
    assert.are.equal("Value One", f["h:x-mixed-case"])
    assert.are.equal("text/plain", f["h:accept"])
    assert.are.equal("127.0.0.1", f["h:host"])
    assert.is_nil(f["h:X-Mixed-CASE"])
    conn:close()
  end)

  it("adds Content-Length and Date to a response the app finished in one go", function()
    local _, port = start()
    local res = assert(lc.http(port, "GET", "/dump"))
    assert.are.equal(200, res.status)
    assert.are.equal(tostring(#res.body), res.headers["content-length"])
    assert.is_nil(res.headers["transfer-encoding"])
    assert.is_truthy(res.headers["date"]:match(DATE))
    assert.are.equal("text/plain", res.headers["content-type"])
  end)

  it("sends statusCode and headers set with setHeader, readable with getHeader", function()
    local _, port = start()
    local res = assert(lc.http(port, "GET", "/status"))
    assert.are.equal(404, res.status)
    assert.are.equal("Not Found", res.reason)
    assert.are.equal("5", res.headers["x-number"])
    assert.are.equal("second", res.headers["x-case"])
    assert.are.equal("number=5 case=second", res.body)
    -- one X-Case line, not two
    local _, n = res.raw_head:lower():gsub("x%-case:", "")
    assert.are.equal(1, n)
  end)

  it("sends a header given a list of values as one line per value, a hundred of them too", function()
    local _, port = start()
    local res = assert(lc.http(port, "GET", "/cookies"))
    assert.are.equal(200, res.status)
    local seen = {}
    for v in res.raw_head:gmatch("[Ss]et%-[Cc]ookie: ([^\r]*)\r\n") do seen[#seen + 1] = v end
    assert.are.equal(100, #seen)
    assert.are.equal("c1=1", seen[1])
    assert.are.equal("c100=100", seen[100])
  end)

  it("sends the status and headers given to writeHead, with those set before", function()
    local _, port = start()
    local res = assert(lc.http(port, "GET", "/writehead"))
    assert.are.equal(202, res.status)
    assert.are.equal("2", res.headers["x-two"])
    assert.are.equal("text/x-test", res.headers["content-type"])
    assert.are.equal("kept", res.headers["x-before"])
    assert.are.equal("code=202 two=2", res.body)
  end)

  it("answers several requests on one keep-alive connection", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    local peer_ports = {}
    for i = 1, 3 do
      conn:send(get("/dump?n=" .. i))
      local res = assert(conn:read_response(5000))
      assert.are.equal(200, res.status)
      assert.are_not.equal("close", res.headers["connection"])
      local f = fields(res.body)
      assert.are.equal("/dump?n=" .. i, f.url)
      peer_ports[i] = f.remotePort
    end
    -- the server saw one connection
    assert.are.equal(peer_ports[1], peer_ports[2])
    assert.are.equal(peer_ports[1], peer_ports[3])
    conn:close()
  end)

  it("answers pipelined requests in order, a slow one in the middle included", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send(get("/dump?first") .. get("/slow") .. get("/dump?third") .. get("/dump?fourth"))
    local r1 = assert(conn:read_response(5000))
    local r2 = assert(conn:read_response(5000))
    local r3 = assert(conn:read_response(5000))
    local r4 = assert(conn:read_response(5000))
    assert.are.equal("/dump?first", fields(r1.body).url)
    assert.are.equal("slow /slow", r2.body)
    assert.are.equal("/dump?third", fields(r3.body).url)
    assert.are.equal("/dump?fourth", fields(r4.body).url)
    for _, r in ipairs({ r1, r2, r3, r4 }) do assert.are.equal(200, r.status) end
    -- and nothing more came
    assert.are.equal("", conn.buf)
    local extra = conn:recv(100)
    assert.is_nil(extra)
    conn:close()
  end)

  it("sends a chunked response when the app writes before finishing", function()
    local _, port = start()
    local res = assert(lc.http(port, "GET", "/chunked"))
    assert.are.equal(200, res.status)
    assert.are.equal("chunked", res.headers["transfer-encoding"])
    assert.is_nil(res.headers["content-length"])
    assert.are.equal("one,two,three", res.body)
    assert.are.equal(3, res.chunks)
  end)

  it("delivers a chunked request body through data and end", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    lc.sleep(100) -- pacing: the second chunk arrives in a later read
    conn:send("6\r\n world\r\n0\r\n\r\n")
    local res = assert(conn:read_response(5000))
    assert.are.equal(200, res.status)
    local chunks, len, body = res.body:match("^chunks=(%d+) len=(%d+) body=(.*)$")
    assert.are.equal("hello world", body)
    assert.are.equal("11", len)
    assert.is_true(tonumber(chunks) >= 2)
    conn:close()
  end)

  it("streams a Content-Length body in pieces as it arrives", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    local body = string.rep("a", 3000) .. string.rep("b", 3000)
    conn:send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: " .. #body .. "\r\n\r\n" ..
              body:sub(1, 3000))
    lc.sleep(100) -- pacing
    conn:send(body:sub(3001))
    local res = assert(conn:read_response(5000))
    local chunks, len, got = res.body:match("^chunks=(%d+) len=(%d+) body=(.*)$")
    assert.are.equal(body, got)
    assert.are.equal("6000", len)
    assert.is_true(tonumber(chunks) >= 2)
    conn:close()
  end)

  it("answers HTTP/1.0 with Content-Length and closes the connection", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send(get("/dump", nil, "1.0"))
    local res = assert(conn:read_response(5000))
    assert.are.equal(200, res.status)
    assert.are.equal("1.0", fields(res.body).version)
    assert.are.equal(tostring(#res.body), res.headers["content-length"])
    assert.are.equal("close", res.headers["connection"])
    assert.is_true(conn:closed_within(2000))
    conn:close()
  end)

  it("ends an HTTP/1.0 body of unknown length by closing, not with chunks", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send(get("/chunked", nil, "1.0"))
    local res = assert(conn:read_response(5000))
    assert.are.equal(200, res.status)
    assert.is_nil(res.headers["transfer-encoding"])
    assert.is_nil(res.headers["content-length"])
    assert.are.equal("one,two,three", res.body) -- read until the close
    conn:close()
  end)

  it("keeps an HTTP/1.0 connection open when the client sent Connection: keep-alive", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send(get("/dump?one", { "Connection: keep-alive" }, "1.0"))
    local res = assert(conn:read_response(5000))
    assert.are.equal("keep-alive", res.headers["connection"]:lower())
    assert.is_false(conn:closed_within(300))
    conn:send(get("/dump?two", { "Connection: keep-alive" }, "1.0"))
    local res2 = assert(conn:read_response(5000))
    assert.are.equal("/dump?two", fields(res2.body).url)
    conn:close()
  end)

  it("answers HEAD with the headers a GET would get and no body", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send("HEAD /dump HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    local res = assert(conn:read_response(5000, true))
    assert.are.equal(200, res.status)
    assert.is_truthy(tonumber(res.headers["content-length"]) > 0)
    assert.are.equal("text/plain", res.headers["content-type"])
    -- no body bytes: the next response starts right after the head
    conn:send(get("/dump?after-head"))
    local res2 = assert(conn:read_response(5000))
    assert.are.equal(200, res2.status)
    assert.are.equal("/dump?after-head", fields(res2.body).url)
    conn:close()
  end)

  it("closes the connection after the response when the client sent Connection: close", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send(get("/dump", { "Connection: close" }))
    local res = assert(conn:read_response(5000))
    assert.are.equal(200, res.status)
    assert.are.equal("close", res.headers["connection"])
    assert.is_true(conn:closed_within(2000))
    conn:close()
  end)

  it("sends 100 Continue to a request that expects it, then the final response", function()
    local _, port = start()
    local conn = assert(lc.connect(port))
    conn:send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    local cont = assert(conn:read_response(2000))
    assert.are.equal(100, cont.status)
    assert.are.equal("HTTP/1.1 100 Continue\r\n\r\n", cont.raw_head)
    conn:send("hello")
    local res = assert(conn:read_response(5000))
    assert.are.equal(200, res.status)
    assert.is_truthy(res.body:match("body=hello$"))
    conn:close()
  end)

  it("answers 500 when the handler raises, logs the traceback, and goes on serving", function()
    local p, port = start()
    local res = assert(lc.http(port, "GET", "/error"))
    assert.are.equal(500, res.status)
    p:wait_for("boom in the handler")
    p:wait_for("stack traceback")
    local again = assert(lc.http(port, "GET", "/dump?after-error"))
    assert.are.equal(200, again.status)
    assert.are.equal("/dump?after-error", fields(again.body).url)
  end)

  it("drops the connection of a handler that fails after its head went out; others go on", function()
    local p, port = start()
    local other = assert(lc.connect(port))
    other:send(get("/dump?before"))
    assert.are.equal(200, assert(other:read_response(5000)).status)

    local conn = assert(lc.connect(port))
    conn:send(get("/error-after-write"))
    local data, why = conn:read_all(3000)
    -- dropped: whatever of the 200 went out, never a 500 after it, never
    -- a complete chunked body
    assert.are.equal("closed", why)
    assert.is_truthy(data == "" or data:match("^HTTP/1.1 200 "), data)
    assert.is_nil(data:find(" 500 ", 1, true))
    assert.is_nil(data:find("0\r\n\r\n", 1, true))
    p:wait_for("late boom")

    other:send(get("/dump?after"))
    local res = assert(other:read_response(5000))
    assert.are.equal("/dump?after", fields(res.body).url)
    other:close()
    conn:close()
  end)

  it("finishes a response through the res[\"end\"] alias", function()
    local _, port = start()
    local res = assert(lc.http(port, "GET", "/alias"))
    assert.are.equal(200, res.status)
    assert.are.equal("via the end alias", res.body)
  end)

  it("refuses a header value holding CR LF: the handler raises and the client gets 500", function()
    local p, port = start()
    local conn = assert(lc.connect(port))
    conn:send(get("/inject"))
    local res, why, raw = conn:read_response(3000)
    p:wait_for("invalid header")
    assert.is_nil((raw or ""):find("Injected", 1, true))
    assert.is_truthy(res, "no response to the request (" .. tostring(why) .. ")")
    assert.are.equal(500, res.status)
    assert.is_nil(res.headers["injected"])
    assert.is_nil(res.body:find("must not be sent", 1, true))
    conn:close()
  end)

  it("raises \"write after end\" when the app writes after finishing", function()
    local p, port = start()
    local res = assert(lc.http(port, "GET", "/write-after-end"))
    assert.are.equal(200, res.status)
    assert.are.equal("done", res.body)
    local msg = p:wait_for("WRITE_AFTER_END false ([^\n]*)")
    assert.is_truthy(msg:find("write after end", 1, true))
  end)

  it("signals backpressure: write returns false past 16 KiB buffered, then drain", function()
    local p = lc.start({ lc.write_app([[
      local chunk = ("x"):rep(65536)
      local s = http.createServer(function(req, res)
        local sent, falses, drains = 0, 0, 0
        local function pump()
          while sent < 8 * 1024 * 1024 do
            sent = sent + #chunk
            if not res:write(chunk) then falses = falses + 1 return end
          end
          res:finish()
          print("DONE", falses, drains)
        end
        res:on("drain", function() drains = drains + 1 pump() end)
        pump()
      end)
      s:listen(0, "127.0.0.1", function() print("PORT " .. s:address().port) end)
    ]]) })
    local c = assert(lc.connect(p:port()))
    c:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    local res = assert(c:read_response(20000))
    assert.are.equal(200, res.status)
    assert.are.equal(8 * 1024 * 1024, #res.body)
    local falses, drains = p:wait_for("DONE\t(%d+)\t(%d+)")
    assert.is_true(tonumber(falses) > 0)
    assert.are.equal(falses, drains)
  end)
end)
