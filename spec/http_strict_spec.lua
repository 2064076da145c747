-- Strict request framing (RFC 9112) on top of the lenient http-parser: the
-- requests a front end and this server could read differently are refused
-- with 400 (or 505 for another HTTP version) and a close, the app never sees
-- them, and the server goes on serving.
local lc = require("lc")

local APP = [[
local server = http.createServer(function(req, res)
  print("REQUEST " .. req.method .. " " .. req.url)
  local n = 0
  req:on("data", function(chunk) n = n + #chunk end)
  req:on("end", function() res:finish("ok " .. n) end)
end)
server:listen(0, "127.0.0.1", function()
  print("PORT " .. server:address().port)
end)
]]

describe("strict HTTP framing", function()
  local p, port

  before_each(function()
    p = lc.start({ lc.write_app(APP) })
    port = p:port()
  end)
  after_each(lc.cleanup)

  -- Sends bytes on a new connection; returns the response and whether the
  -- server closed the connection after it.
  local function raw(bytes)
    local conn = assert(lc.connect(port))
    conn:send(bytes)
    local res, why = conn:read_response(5000)
    local closed = res and conn:closed_within(3000)
    conn:close()
    return res, why, closed
  end

  local function refused(bytes, status)
    local res, why, closed = raw(bytes)
    assert.is_truthy(res, why)
    assert.are.equal(status or 400, res.status)
    assert.is_true(closed)
  end

  local function serves_still()
    local res = assert(lc.http(port, "GET", "/after"))
    assert.are.equal(200, res.status)
  end

  it("refuses whitespace between a header name and its colon (no smuggled request)", function()
    -- Read leniently, the body would be 5 bytes and "GET /smuggled" a
    -- second request on the connection.
    refused("POST /first HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n" ..
            "helloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
    serves_still()
    assert.are.equal(0, p:count("REQUEST POST /first"))
    assert.are.equal(0, p:count("/smuggled"))
  end)

  it("refuses chunk data not followed by CRLF", function()
    refused("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" ..
            "5\r\nhelloXX0\r\n\r\n")
    serves_still()
  end)

  it("refuses an HTTP/1.1 request without Host, and any request with two", function()
    refused("GET /nohost HTTP/1.1\r\n\r\n")
    refused("GET /twohosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    refused("GET /twohosts10 HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n")
    serves_still()
    assert.are.equal(0, p:count("REQUEST GET /nohost"))
    assert.are.equal(0, p:count("REQUEST GET /twohosts"))
    -- HTTP/1.0 without Host is fine.
    local res = raw("GET /ten HTTP/1.0\r\n\r\n")
    assert.are.equal(200, res.status)
  end)

  it("answers 505 to HTTP versions other than 1.0 and 1.1", function()
    for _, v in ipairs({ "2.0", "1.2", "0.9", "3.0" }) do
      refused("GET /v HTTP/" .. v .. "\r\nHost: a\r\n\r\n", 505)
    end
    serves_still()
    assert.are.equal(0, p:count("REQUEST GET /v"))
  end)

  it("refuses bare LF line ends, a CR alone and folded header lines", function()
    refused("GET /lf HTTP/1.1\nHost: a\n\n")
    refused("GET /cr HTTP/1.1\r\nHost: a\r\nX: 1\rY: 2\r\n\r\n")
    refused("GET /fold HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n")
    serves_still()
    assert.are.equal(0, p:count("REQUEST GET /lf"))
    assert.are.equal(0, p:count("REQUEST GET /cr"))
    assert.are.equal(0, p:count("REQUEST GET /fold"))
  end)

  it("answers the good requests pipelined before a bad one, then refuses it", function()
    local conn = assert(lc.connect(port))
    conn:send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n" ..
              "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" ..
              "GET /three HTTP/1.1\r\nHost : a\r\n\r\n")
    local one = assert(conn:read_response(5000))
    local two = assert(conn:read_response(5000))
    local three = assert(conn:read_response(5000))
    assert.are.same({ 200, "ok 0" }, { one.status, one.body })
    assert.are.same({ 200, "ok 3" }, { two.status, two.body })
    assert.are.equal(400, three.status)
    assert.is_true(conn:closed_within(3000))
    conn:close()
  end)
end)
