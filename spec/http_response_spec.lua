-- Responses that would lie about themselves: a body past the declared
-- Content-Length (on a keep-alive connection the surplus parses as another
-- response), a second finish(), and chunks that are not strings. Each is a
-- Lua error in the handler; nothing false reaches the client.
local lc = require("lc")

local INJECTED = "\r\n\r\nHTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Length: 0\r\n\r\n"

local APP = ([[
local INJECTED = %q
local routes = {}

routes["/lie-finish"] = function(req, res)
  res:setHeader("Content-Length", 5)
  res:finish("hello" .. INJECTED)
end

routes["/lie-write"] = function(req, res)
  res:setHeader("Content-Length", "5")
  res:write("hel")
  res:write("lo" .. INJECTED)
  res:finish()
end

routes["/lie-caught"] = function(req, res)
  res:setHeader("Content-Length", 5)
  res:write("hel")
  local ok, err = pcall(res.write, res, "lo" .. INJECTED)
  print("CAUGHT " .. tostring(ok) .. " " .. tostring(err))
  res:finish("lo")
end

routes["/short"] = function(req, res)
  res:setHeader("Content-Length", 10)
  res:finish("hello")
end

routes["/exact"] = function(req, res)
  res:setHeader("Content-Length", 5)
  res:write("hel")
  res:finish("lo")
end

routes["/bad-length"] = function(req, res)
  res:setHeader("Content-Length", "five")
  res:finish("hello")
end

routes["/finish-twice"] = function(req, res)
  res:finish("once")
  local ok, err = pcall(res.finish, res)
  print("TWICE " .. tostring(ok) .. " " .. tostring(err))
  ok, err = pcall(res.finish, res, "more")
  print("TWICE_CHUNK " .. tostring(ok) .. " " .. tostring(err))
end

routes["/not-strings"] = function(req, res)
  local ok, err = pcall(res.write, res, true)
  print("WRITE_TRUE " .. tostring(ok) .. " " .. tostring(err))
  ok, err = pcall(res.finish, res, {})
  print("FINISH_TABLE " .. tostring(ok) .. " " .. tostring(err))
  res:write(42)
  res:finish("ok")
end

local server = http.createServer(function(req, res) routes[req.url](req, res) end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]]):format(INJECTED)

describe("HTTP responses that would lie", function()
  local p, port

  before_each(function()
    p = lc.start({ lc.write_app(APP) })
    port = p:port()
  end)
  after_each(lc.cleanup)

  local function get(conn, path)
    assert(conn:send("GET " .. path .. " HTTP/1.1\r\nHost: a\r\n\r\n"))
  end

  it("never writes past the Content-Length given with finish()", function()
    local conn = assert(lc.connect(port))
    get(conn, "/lie-finish")
    local res = assert(conn:read_response(5000))
    -- The handler raised before anything went out: a 500, then a close.
    assert.are.equal(500, res.status)
    local rest = conn:read_all(3000)
    assert.is_falsy(rest:find("X-Injected", 1, true), rest)
    assert.is_truthy(p:wait_for("write past the declared Content%-Length"))
    conn:close()
  end)

  it("never writes past the Content-Length across write() calls, and closes", function()
    local conn = assert(lc.connect(port))
    get(conn, "/lie-write")
    get(conn, "/exact")
    local all, why = conn:read_all(3000)
    assert.are.equal("closed", why)
    assert.is_truthy(all:find("Content-Length: 5\r\n", 1, true), all)
    assert.is_truthy(all:match("\r\n\r\nhel$"), all)
    assert.is_falsy(all:find("X-Injected", 1, true), all)
    conn:close()
  end)

  it("lets a handler that catches the error finish right, then closes", function()
    local conn = assert(lc.connect(port))
    get(conn, "/lie-caught")
    local res = assert(conn:read_response(5000))
    assert.are.same({ 200, "hello" }, { res.status, res.body })
    assert.is_true(conn:closed_within(3000))
    assert.are.equal("false", p:wait_for("CAUGHT (%a+) "))
    conn:close()
  end)

  it("closes a connection whose response ends short of its Content-Length", function()
    local conn = assert(lc.connect(port))
    get(conn, "/short")
    get(conn, "/exact")
    local all, why = conn:read_all(3000)
    assert.are.equal("closed", why)
    assert.is_truthy(all:match("Content%-Length: 10\r\n.*\r\n\r\nhello$"), all)
    conn:close()
  end)

  it("keeps the connection when the body matches its Content-Length", function()
    local conn = assert(lc.connect(port))
    get(conn, "/exact")
    get(conn, "/exact")
    for _ = 1, 2 do
      local res = assert(conn:read_response(5000))
      assert.are.same({ 200, "hello" }, { res.status, res.body })
    end
    conn:close()
  end)

  it("refuses a Content-Length that is not a number", function()
    local res = assert(lc.http(port, "GET", "/bad-length"))
    assert.are.equal(500, res.status)
  end)

  it("raises 'write after end' on a second finish(), with or without a chunk", function()
    local conn = assert(lc.connect(port))
    get(conn, "/finish-twice")
    local res = assert(conn:read_response(5000))
    assert.are.equal("once", res.body)
    assert.is_truthy(p:wait_for("TWICE false [^\n]*write after end"))
    assert.is_truthy(p:wait_for("TWICE_CHUNK false [^\n]*write after end"))
    conn:close()
  end)

  it("raises on a chunk that is not a string instead of sending its tostring()", function()
    local conn = assert(lc.connect(port))
    get(conn, "/not-strings")
    local res = assert(conn:read_response(5000))
    assert.are.same({ 200, "42ok" }, { res.status, res.body })
    assert.is_truthy(p:wait_for("WRITE_TRUE false [^\n]*must be a string, got a boolean"))
    assert.is_truthy(p:wait_for("FINISH_TABLE false [^\n]*must be a string, got a table"))
    conn:close()
  end)
end)
