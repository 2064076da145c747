-- fetch and the HTTP client's answers to bad input, top to bottom, against
-- spec/helpers/upstream.py; and the proof that a worker waiting on
-- upstreams keeps serving.
local lc = require("lc")

local function run(source, port, timeout)
  return lc.run_ok(source, { tostring(port) }, timeout)
end

local line = lc.field

describe("fetch", function()
  after_each(lc.cleanup)

  it("returns status, statusText, lower-cased headers and the body", function()
    local _, port = lc.upstream()
    local out = run([[
      local base = "http://127.0.0.1:" .. arg[1]
      setTimeout(function()
        local res = fetch(base .. "/hello")
        print("HELLO", res.status, res.statusText, res.headers["content-length"], res.body)
        local echo = fetch(base .. "/echo?q=1", { method = "put", body = "payload",
                                                  headers = { ["X-Test"] = "yes" } })
        local e = require("cjson").decode(echo.body)
        print("ECHO", e.method, e.target, e.body, e.headers["x-test"], e.headers["content-length"])
        local created = fetch(base .. "/informational")
        print("CREATED", created.status, created.statusText, created.body)
        local chunked = fetch(base .. "/chunked")
        print("CHUNKED", chunked.body)
        process.exit(0)
      end, 1)
    ]], port)
    assert.are.equal("200\tOK\t5\thello", line(out, "HELLO"))
    assert.are.equal("PUT\t/echo?q=1\tpayload\tyes\t7", line(out, "ECHO"))
    assert.are.equal("201\tCreated\tfinal", line(out, "CREATED"))
    assert.are.equal("one,two,three", line(out, "CHUNKED"))
  end)

  it("answers every kind of bad input with nil and a reason, and the pool recovers", function()
    local _, port = lc.upstream()
    local out = run([[
      local base = "http://127.0.0.1:" .. arg[1]
      setTimeout(function()
        local cases = {
          { "unknown-host", "http://nonexistent.invalid/" },
          { "refused", "http://127.0.0.1:1/" },
          { "mid-close", base .. "/mid-close" },
          { "malformed", base .. "/malformed" },
          { "garbage", base .. "/garbage" },
          { "big-header", base .. "/big-header/20000" },
          { "big-body", base .. "/big-body/2000", { maxBodySize = 1000 } },
          { "never", base .. "/never", { timeout = 500 } },
          { "not-http", "ftp://127.0.0.1/" },
          { "https-to-http", (base:gsub("^http:", "https:")) .. "/hello", { timeout = 500 } },
        }
        for _, c in ipairs(cases) do
          local t0 = process.hrtimeNs()
          local res, err = fetch(c[2], c[3])
          print(c[1], tostring(res), err, math.floor((process.hrtimeNs() - t0) / 1e6))
          -- the next request through the same agent works
          local ok = fetch(base .. "/hello")
          print(c[1] .. "-then", ok and ok.body)
        end
        local s = http.globalAgent:stats("127.0.0.1", tonumber(arg[1]))
        print("POOL", s.sockets, s.free, s.queued)
        process.exit(0)
      end, 1)
    ]], port)
    local function check(name, err)
      local res, got = line(out, name):match("^(%S+)\t([^\t]*)\t")
      assert.are.equal("nil", res, name)
      assert.are.equal(err, got, name)
      assert.are.equal("hello", line(out, name .. "-then"), name)
    end
    check("unknown-host", "nonexistent.invalid could not be resolved (ENOTFOUND)")
    check("refused", "connection refused")
    check("mid-close", "closed")
    check("malformed", "bad response")
    check("garbage", "bad response")
    check("big-header", "response header too large")
    check("big-body", "response body too large")
    check("never", "timeout")
    check("not-http", "unsupported protocol ftp: ftp://127.0.0.1/")
    -- TLS to a server that waits for an HTTP head: the hello is never
    -- answered (tls_spec has a server that answers it with HTTP)
    check("https-to-http", "timeout")
    -- the timeout came after its 500 ms (deadlines are checked 4 times a
    -- second), not after fetch's 30 s default: the bound leaves room for a
    -- loaded machine and the sanitizer build
    local ms = tonumber(line(out, "never"):match("(%d+)$"))
    assert.is_true(ms >= 450 and ms < 5000, "timed out after " .. ms .. " ms")
    assert.are.equal("1\t1\t0", line(out, "POOL"))
  end)

  it("raises an error that says so outside a coroutine, and for bad headers", function()
    local _, port = lc.upstream()
    local out = run([[
      local ok, err = pcall(fetch, "http://127.0.0.1:" .. arg[1] .. "/hello")
      print("MAIN", ok, err)
      setTimeout(function()
        local ok2, err2 = pcall(fetch, "http://127.0.0.1:" .. arg[1] .. "/hello",
                                { headers = { ["X-Bad"] = "a\r\nInjected: 1" } })
        print("HEADER", ok2, err2)
        local ok3, err3 = pcall(sleep, -1)
        print("SLEEP", ok3, err3)
        process.exit(0)
      end, 1)
    ]], port)
    assert.is_truthy(line(out, "MAIN"):match("^false\t.*fetch%(%) waits, so it must run inside a coroutine"))
    assert.is_truthy(line(out, "HEADER"):match("^false\t.*invalid request"))
    assert.is_truthy(line(out, "SLEEP"):match("^false\t.*sleep%(ms%) needs a number"))
  end)

  it("exits cleanly with requests in flight, queued, idle in pools and names being looked up", function()
    local _, port = lc.upstream()
    -- Under the sanitizer build a leak or a bad free here fails the exit code.
    local out = run([[
      local base = "http://127.0.0.1:" .. arg[1]
      local agent = http.Agent({ keepAlive = true, maxSockets = 1 })
      setTimeout(function()
        assert(fetch(base .. "/hello"))               -- an idle pooled connection
        local s = net.tcp()
        assert(s:connect("127.0.0.1", tonumber(arg[1])))
        s:setkeepalive(10000)                         -- an idle cosocket
        for i = 1, 3 do                               -- one in flight, two queued
          local req = http.get({ host = "127.0.0.1", port = tonumber(arg[1]), path = "/never",
                                 agent = agent })
          req:on("error", function() end)
        end
        setImmediate(function() fetch(base .. "/delay/5000") end)
        setImmediate(function() dns.lookup("localhost") end)
        net.connect(tonumber(arg[1]), "localhost")
        local paused = http.get(base .. "/big-body/3000000", function(res)
          res:on("data", function() res:pause() end)
        end)
        sleep(300)
        print("EXITING")
        process.exit(0)
      end, 1)
    ]], port)
    assert.is_truthy(out:match("EXITING"))
  end)

  it("keeps a worker serving while 20 requests wait on a slow upstream", function()
    local _, up = lc.upstream()
    local app = lc.write_app([[
      local upstream = "http://127.0.0.1:" .. os.getenv("UPSTREAM")
      local server
      server = http.createServer(function(req, res)
        if req.url == "/health" then return res:finish("ok") end
        local r, err = fetch(upstream .. "/delay/500", { timeout = 5000 })
        if not r then res.statusCode = 502 return res:finish(err) end
        res:finish(r.body)
      end):listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
    ]])
    -- one worker (managed mode)
    local p = lc.start({ "-w", "1", app }, { env = { UPSTREAM = up } })
    local port = p:port(10000)

    local conns = {}
    local t0 = lc.now()
    for i = 1, 20 do
      conns[i] = assert(lc.connect(port))
      conns[i]:send("GET /slow/" .. i .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    end
    lc.sleep(100) -- the 20 are waiting on the upstream now
    local h0 = lc.now()
    local health = assert(lc.http(port, "GET", "/health"))
    local health_ms = lc.now() - h0
    assert.are.equal("ok", health.body)
    for i = 1, 20 do
      local res = assert(conns[i]:read_response(5000))
      assert.are.equal(200, res.status)
      assert.are.equal("slept 500", res.body)
      conns[i]:close()
    end
    local total = lc.now() - t0
    assert.is_true(total < 2000, "20 requests took " .. total .. " ms")
    assert.is_true(health_ms < 250, "health answered in " .. health_ms .. " ms")
  end)
end)
