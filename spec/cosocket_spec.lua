-- net.tcp(): OpenResty-style cosockets, top to bottom in coroutines,
-- against a server in the same process and against a real redis-server.
local lc = require("lc")

local run = lc.run_ok

local line = lc.field

-- A server in the app: each connection's data is handled by on_data(sock,
-- chunk); connections are counted. The test body runs in a timer once it
-- listens, with the port as PORT.
local function app(on_data, body)
  return [[
local stats = { connections = 0, closed = 0 }
local handler = ]] .. on_data .. [[

local server
server = net.createServer(function(sock)
  stats.connections = stats.connections + 1
  sock:on("data", function(chunk) handler(sock, chunk) end)
  sock:on("close", function() stats.closed = stats.closed + 1 end)
end):listen(0, "127.0.0.1", function()
  local PORT = server:address().port
  setTimeout(function()
]] .. body .. [[

    process.exit(0)
  end, 1)
end)
]]
end

describe("net.tcp() cosockets", function()
  after_each(lc.cleanup)

  it("receives lines, byte counts, everything until close, and up to a pattern", function()
    local out = run(app([[function(sock, chunk)
      if chunk:find("GO", 1, true) then
        sock:write("one\r\ntwo\nthree-bytes:abc")
        sock:write("head--MARK--tail--MARK--rest")
        sock:finish(" and the end")
      end
    end]], [[
    local s = net.tcp()
    s:settimeout(2000)
    print("CONNECT", s:connect("127.0.0.1", PORT))
    print("SEND", s:send({ "G", "O" }))
    print("LINE1", s:receive("*l"))
    print("LINE2", s:receive())
    print("COUNT", s:receive(12), s:receive(3))
    local until_mark = s:receiveuntil("--MARK--")
    print("UNTIL", until_mark(), until_mark())
    print("ALL", s:receive("*a"))
    print("AFTER", s:receive("*a"))
    print("CLOSED", s:receive("*l"))
    ]]))
    assert.are.equal("1", line(out, "CONNECT"))
    assert.are.equal("2", line(out, "SEND"))
    assert.are.equal("one", line(out, "LINE1"))
    assert.are.equal("two", line(out, "LINE2"))
    assert.are.equal("three-bytes:\tabc", line(out, "COUNT"))
    assert.are.equal("head\ttail", line(out, "UNTIL"))
    assert.are.equal("rest and the end", line(out, "ALL"))
    assert.are.equal("", line(out, "AFTER"))
    assert.are.equal("nil\tclosed\t", line(out, "CLOSED"))
  end)

  it("reads up to a pattern in pieces of a size, inclusive or not", function()
    local out = run(app([[function(sock) sock:write("abcdefghij--END--xyz--END--") end]], [[
    local s = net.tcp()
    s:settimeout(2000)
    s:connect("127.0.0.1", PORT)
    s:send("x")
    local read = s:receiveuntil("--END--")
    local pieces = {}
    while true do
      local data, err = read(4)
      if not data then
        pieces[#pieces + 1] = "(" .. tostring(err) .. ")"
        break
      end
      pieces[#pieces + 1] = data
    end
    print("PIECES", table.concat(pieces, ","))
    print("INCLUSIVE", s:receiveuntil("--END--", { inclusive = true })())
    ]]))
    assert.are.equal("abcd,efgh,ij,(nil)", line(out, "PIECES"))
    assert.are.equal("xyz--END--", line(out, "INCLUSIVE"))
  end)

  it("times out a receive with the partial data and stays usable", function()
    local out = run(app([[function(sock, chunk)
      if chunk == "half" then sock:write("no line end") end
      if chunk == "more" then sock:write("complete\n") end
    end]], [[
    local s = net.tcp()
    s:settimeouts(1000, 1000, 300)
    s:connect("127.0.0.1", PORT)
    s:send("half")
    local t0 = process.hrtimeNs()
    print("TIMEOUT", s:receive("*l"))
    print("WAITED", math.floor((process.hrtimeNs() - t0) / 1e6))
    s:send("more")
    print("AGAIN", s:receive("*l"))
    ]]))
    assert.are.equal("nil\ttimeout\tno line end", line(out, "TIMEOUT"))
    local ms = tonumber(line(out, "WAITED"))
    assert.is_true(ms >= 250 and ms < 5000, "waited " .. ms .. " ms") -- 300, not 60 s
    assert.are.equal("complete", line(out, "AGAIN"))
  end)

  it("reuses pooled connections with setkeepalive and counts the reuses", function()
    local out = run(app([[function(sock, chunk) sock:write("pong\n") end]], [[
    for i = 1, 5 do
      local s = net.tcp()
      assert(s:connect("127.0.0.1", PORT))
      s:send("ping")
      s:receive("*l")
      print("REUSED" .. i, s:getreusedtimes())
      print("KEEP" .. i, s:setkeepalive(10000, 2))
    end
    print("CONNECTIONS", stats.connections)
    -- unread data is refused (and the connection closed)
    local s = net.tcp()
    s:connect("127.0.0.1", PORT)
    s:send("ping")
    sleep(100)
    print("UNREAD", s:setkeepalive())
    while stats.closed < 1 do sleep(10) end -- the server saw that close
    -- an idle pooled connection closes after its idle time
    local t = net.tcp()
    t:connect("127.0.0.1", PORT)
    t:setkeepalive(300)
    local closed = stats.closed
    sleep(900)
    print("IDLE_CLOSED", stats.closed - closed)
    ]]))
    assert.are.equal("0", line(out, "REUSED1"))
    assert.are.equal("4", line(out, "REUSED5"))
    assert.are.equal("1", line(out, "KEEP5"))
    assert.are.equal("1", line(out, "CONNECTIONS"))
    assert.are.equal("nil\tunread data in buffer", line(out, "UNREAD"))
    assert.are.equal("1", line(out, "IDLE_CLOSED"))
  end)

  it("answers refused, unknown hosts, busy sockets and closed ones with strings", function()
    local out = run(app([[function() end]], [[
    print("REFUSED", net.tcp():connect("127.0.0.1", 1))
    print("DNS", net.tcp():connect("nonexistent.invalid", 80))
    local s = net.tcp()
    s:settimeout(500)
    s:connect("127.0.0.1", PORT)
    setTimeout(function() print("BUSY", s:receive("*l")) end, 10)
    print("FIRST", s:receive("*l"))
    print("CLOSE", s:close())
    print("CLOSE_AGAIN", s:close())
    print("SEND_CLOSED", s:send("x"))
    ]]))
    assert.are.equal("nil\tconnection refused", line(out, "REFUSED"))
    assert.are.equal("nil\tnonexistent.invalid could not be resolved (ENOTFOUND)", line(out, "DNS"))
    assert.are.equal("nil\tsocket busy reading", line(out, "BUSY"))
    assert.are.equal("nil\ttimeout\t", line(out, "FIRST"))
    assert.are.equal("1", line(out, "CLOSE"))
    assert.are.equal("nil\tclosed", line(out, "CLOSE_AGAIN"))
    assert.are.equal("nil\tclosed", line(out, "SEND_CLOSED"))
  end)

  it("raises an error that says so when used outside a coroutine", function()
    local out = run([[
      local ok, err = pcall(function() return net.tcp():connect("127.0.0.1", 1) end)
      print("MAIN", ok, err)
    ]])
    assert.is_truthy(line(out, "MAIN"):match("^false\t.*must run inside a coroutine"))
  end)

  it("runs a RESP client written the OpenResty way against redis-server", function()
    local port, redis
    for _ = 1, 20 do
      port = 20000 + math.random(0, 9999)
      redis = lc.spawn({ "redis-server", "--port", tostring(port), "--save", "",
                         "--appendonly", "no", "--bind", "127.0.0.1" })
      local ok = pcall(function() redis:wait_for("Ready to accept connections", 5000) end)
      if ok then break end
      redis = nil
    end
    assert.is_truthy(redis, "redis-server did not start")
    local out = run([[
      local function command(sock, ...)
        local args = { ... }
        local parts = { "*" .. #args .. "\r\n" }
        for _, a in ipairs(args) do parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n" end
        local ok, err = sock:send(parts)
        if not ok then return nil, err end
        local line, rerr = sock:receive("*l")
        if not line then return nil, rerr end
        local kind, rest = line:sub(1, 1), line:sub(2)
        if kind == "$" then
          if rest == "-1" then return false end
          local data = sock:receive(tonumber(rest) + 2)
          return data:sub(1, -3)
        end
        return rest
      end
      setTimeout(function()
        for i = 1, 3 do
          local red = net.tcp()
          red:settimeout(2000)
          assert(red:connect("127.0.0.1", tonumber(arg[1])))
          print("PING" .. i, command(red, "PING"))
          print("SET" .. i, command(red, "SET", "k", "value " .. i))
          print("GET" .. i, command(red, "GET", "k"))
          print("REUSED" .. i, red:getreusedtimes())
          red:setkeepalive(10000, 10)
        end
        process.exit(0)
      end, 1)
    ]], { tostring(port) })
    assert.are.equal("PONG", line(out, "PING1"))
    assert.are.equal("OK", line(out, "SET2"))
    assert.are.equal("value 3", line(out, "GET3"))
    assert.are.equal("2", line(out, "REUSED3"))
  end)
end)
