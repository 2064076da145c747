-- The top-to-bottom style: every kind of callback the runtime calls runs
-- in a pooled coroutine, so sleep, fetch, dns.lookup and cosockets wait
-- there; errors after a wait take the usual uncaught path.
local lc = require("lc")

local function run(source, args, timeout)
  local p = lc.run(source, args)
  local code = p:wait_exit(timeout or 20000)
  return p:output(), code
end

local line = lc.field

describe("coroutines", function()
  after_each(lc.cleanup)

  it("let timer, interval and immediate callbacks wait", function()
    local out, code = run([[
      local t0 = process.hrtimeNs()
      local function ms() return math.floor((process.hrtimeNs() - t0) / 1e6) end
      setTimeout(function(a, b) sleep(100) print("TIMEOUT", a, b, ms() >= 95) end, 1, "x", "y")
      setImmediate(function() sleep(50) print("IMMEDIATE", ms() >= 45) end)
      local n = 0
      local iv
      iv = setInterval(function()
        n = n + 1
        if n == 2 then clearInterval(iv) sleep(20) print("INTERVAL", n) end
      end, 10)
      setTimeout(function() process.exit(0) end, 400)
    ]])
    assert.are.equal(0, code, out)
    assert.are.equal("x\ty\ttrue", line(out, "TIMEOUT"))
    assert.are.equal("true", line(out, "IMMEDIATE"))
    assert.are.equal("2", line(out, "INTERVAL"))
  end)

  it("let request handlers, connection and data listeners wait, and still answer", function()
    local p = lc.run([[
      local http_server, net_server
      http_server = http.createServer(function(req, res)
        sleep(30)
        local address = dns.lookup("localhost")
        local body = {}
        req:on("data", function(c) sleep(5) body[#body + 1] = c end)
        req:on("end", function()
          sleep(5)
          res:finish(req.method .. " " .. address .. " " .. table.concat(body))
        end)
      end)
      net_server = net.createServer(function(sock)
        sleep(50) -- the socket was already returned to the runtime: data waits
        sock:on("data", function(d) sleep(10) sock:finish("late " .. d) end)
      end)
      http_server:listen(0, "127.0.0.1", function()
        net_server:listen(0, "127.0.0.1", function()
          print("PORTS " .. http_server:address().port .. " " .. net_server:address().port)
        end)
      end)
    ]])
    local hp, np = p:wait_for("PORTS (%d+) (%d+)")
    local res = assert(lc.http(tonumber(hp), "POST", "/", { body = "payload" }))
    assert.are.equal(200, res.status)
    assert.are.equal("POST 127.0.0.1 payload", res.body)
    local conn = assert(lc.connect(tonumber(np)))
    conn:send("ping")
    local got = conn:read_all(3000)
    assert.are.equal("late ping", got)
  end)

  it("let message listeners wait, in the master and in a worker", function()
    local out, code = run([[
      if cluster.isMaster then
        local w = cluster.fork()
        w:on("message", function(msg)
          sleep(20)
          print("MASTER_GOT", msg.echo)
          w:disconnect()
        end)
        w:on("online", function() sleep(10) w:send({ text = "hello" }) end)
        cluster.on("exit", function() process.exit(0) end)
      else
        process.on("message", function(msg)
          sleep(20)
          process.send({ echo = msg.text .. " back" })
        end)
      end
    ]])
    assert.are.equal(0, code, out)
    assert.are.equal("hello back", line(out, "MASTER_GOT"))
  end)

  it("runs each listener of an event in its own coroutine, so one waiting does not hold the next", function()
    local out, code = run([[
      local EventEmitter = require("events").EventEmitter
      local e = EventEmitter.new()
      local order = {}
      e:on("go", function() sleep(50) order[#order + 1] = "slow" end)
      e:on("go", function() order[#order + 1] = "fast" end)
      e:emit("go")
      setTimeout(function()
        print("ORDER", table.concat(order, ","))
        -- emitted inside a coroutine, listeners run inline: the emitter waits
        local f = EventEmitter.new()
        f:on("go", function() sleep(20) order[#order + 1] = "inline" end)
        f:emit("go")
        order[#order + 1] = "after"
        print("INLINE", table.concat(order, ","))
        process.exit(0)
      end, 100)
    ]])
    assert.are.equal(0, code, out)
    assert.are.equal("fast,slow", line(out, "ORDER"))
    assert.are.equal("fast,slow,inline,after", line(out, "INLINE"))
  end)

  it("reuses a coroutine whose callback did not wait, and not one that waits", function()
    local out, code = run([[
      local seen = {}
      setImmediate(function() seen[1] = coroutine.running() end)
      setTimeout(function()
        seen[2] = coroutine.running()
        setTimeout(function()
          seen[3] = coroutine.running()
          sleep(10)
        end, 1)
        setTimeout(function()
          seen[4] = coroutine.running()
          print("POOLED", seen[1] == seen[2], seen[3] ~= seen[4])
          process.exit(0)
        end, 5)
      end, 10)
    ]])
    assert.are.equal(0, code, out)
    assert.are.equal("true\ttrue", line(out, "POOLED"))
  end)

  it("reports an error raised after a wait to uncaughtException, with its traceback", function()
    local out, code = run([[
      process.on("uncaughtException", function(err, trace)
        print("CAUGHT", err)
        print("TRACE", (trace:gsub("\n", " | ")))
        process.exit(0)
      end)
      setTimeout(function()
        sleep(10)
        error("broken after the wait")
      end, 1)
    ]])
    assert.are.equal(0, code, out)
    assert.is_truthy(line(out, "CAUGHT"):match("app%.lua:%d+: broken after the wait$"))
    assert.is_truthy(line(out, "TRACE"):match("stack traceback:.*app%.lua:%d+"))
  end)

  it("logs an uncaught error after a wait and exits 1, as before", function()
    local out, code = run([[
      setTimeout(function()
        sleep(10)
        local t = nil
        print(t.field)
      end, 1)
      setInterval(function() end, 1000)
    ]])
    assert.are.equal(1, code, out)
    assert.is_truthy(out:match("uncaught error: [^\n]*app%.lua:%d+: attempt to index local 't'"))
    assert.is_truthy(out:match("stack traceback:"))
  end)

  it("answers 500 for a handler that fails after a wait, and goes on serving", function()
    local p = lc.run([[
      local server
      server = http.createServer(function(req, res)
        sleep(10)
        if req.url == "/fail" then error("late failure") end
        res:finish("fine")
      end):listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
    ]])
    local port = p:port()
    local res = assert(lc.http(port, "GET", "/fail"))
    assert.are.equal(500, res.status)
    res = assert(lc.http(port, "GET", "/ok"))
    assert.are.equal("fine", res.body)
    assert.is_truthy(p:output():match("request handler failed for GET /fail: [^\n]*late failure"))
  end)

  it("ends the process from a coroutine with process.exit after a wait", function()
    local out, code = run([[
      process.on("exit", function(c) print("EXIT", c) end)
      setTimeout(function() sleep(10) process.exit(7) end, 1)
    ]])
    assert.are.equal(7, code, out)
    assert.are.equal("7", line(out, "EXIT"))
  end)
end)
