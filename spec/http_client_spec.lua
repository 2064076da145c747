-- The HTTP client in Node's style (http.request, http.get, http.Agent)
-- against spec/helpers/upstream.py, a Python upstream started per test.
local lc = require("lc")

-- Runs an app with the upstream's port as arg[1]; returns its output once
-- it exits (the apps end with process.exit).
local function run(source, port, timeout)
  return lc.run_ok(source, { tostring(port) }, timeout)
end

-- The value printed on a "key<TAB>value" line.
local line = lc.field

-- A GET that collects the body: get(path[, opts], fn(res, body)).
local PRELUDE = [[
local port = tonumber(arg[1])
local base = "http://127.0.0.1:" .. port
local function get(path, opts, fn)
  if type(opts) == "function" then fn, opts = opts, {} end
  local o = { host = "127.0.0.1", port = port, path = path }
  for k, v in pairs(opts) do o[k] = v end
  local req = http.get(o, function(res)
    local body = {}
    res:on("data", function(c) body[#body + 1] = c end)
    res:on("end", function() fn(res, table.concat(body)) end)
  end)
  return req
end
]]

describe("http client", function()
  after_each(lc.cleanup)

  it("reads Content-Length, chunked, close-delimited and HTTP/1.0 bodies", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local paths = { "/hello", "/chunked", "/close-delimited", "/http10" }
      local left = #paths
      for _, path in ipairs(paths) do
        get(path, function(res, body)
          print(path, res.statusCode, res.statusMessage, res.httpVersion, body, res.complete)
          left = left - 1
          if left == 0 then process.exit(0) end
        end)
      end
    ]], port)
    assert.are.equal("200\tOK\t1.1\thello\ttrue", line(out, "/hello"))
    assert.are.equal("200\tOK\t1.1\tone,two,three\ttrue", line(out, "/chunked"))
    assert.are.equal("200\tOK\t1.1\tuntil the close\ttrue", line(out, "/close-delimited"))
    assert.are.equal("200\tOK\t1.0\told style\ttrue", line(out, "/http10"))
  end)

  it("gives lower-cased headers, skips 1xx responses and reads no body after HEAD", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      get("/informational", function(res, body)
        print("INFO", res.statusCode, res.statusMessage, body, tostring(res.headers.link))
        get("/head", { method = "HEAD" }, function(res2, body2)
          print("HEAD", res2.statusCode, res2.headers["content-length"], #body2)
          get("/hello", function(res3, body3)
            print("AFTER", body3, res3.headers["x-served"])
            process.exit(0)
          end)
        end)
      end)
    ]], port)
    assert.are.equal("201\tCreated\tfinal\tnil", line(out, "INFO"))
    assert.are.equal("200\t1000\t0", line(out, "HEAD"))
    -- The HEAD answer left the connection usable: the next request reused it.
    assert.are.equal("hello\t3", line(out, "AFTER"))
  end)

  it("sends headers, a Content-Length body, and a streamed body chunked", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local cjson = require("cjson")
      local function post(path, parts, headers, fn)
        local req = http.request({ host = "127.0.0.1", port = port, method = "POST",
                                   path = path, headers = headers }, function(res)
          local body = {}
          res:on("data", function(c) body[#body + 1] = c end)
          res:on("end", function() fn(cjson.decode(table.concat(body))) end)
        end)
        for i = 1, #parts - 1 do req:write(parts[i]) end
        req:finish(parts[#parts])
      end
      post("/echo", { "whole" }, { ["X-Num"] = 7, ["X-List"] = { "a", "b" } }, function(e)
        print("WHOLE", e.method, e.body, e.headers["content-length"],
              tostring(e.headers["transfer-encoding"]), e.headers["x-num"], e.headers["x-list"],
              e.headers.host, e.headers.connection)
        post("/echo", { "one,", "two,", "three" }, {}, function(e2)
          print("STREAM", e2.body, e2.headers["transfer-encoding"], tostring(e2.headers["content-length"]))
          process.exit(0)
        end)
      end)
    ]], port)
    assert.are.equal("POST\twhole\t5\tnil\t7\ta, b\t127.0.0.1:" .. port .. "\tkeep-alive",
                     line(out, "WHOLE"))
    assert.are.equal("one,two,three\tchunked\tnil", line(out, "STREAM"))
  end)

  it("pauses reading a response and resumes it (backpressure)", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      http.get(base .. "/big-body/4000000", function(res)
        local n, paused, resumed, during = 0, false, false, 0
        res:on("data", function(c)
          if paused and not resumed then during = during + #c end
          n = n + #c
          if n > 500000 and not paused then
            paused = true
            res:pause()
            setTimeout(function()
              print("DURING", during)
              resumed = true
              res:resume()
            end, 300)
          end
        end)
        res:on("end", function() print("TOTAL", n) process.exit(0) end)
      end)
    ]], port)
    assert.are.equal("0", line(out, "DURING"))
    assert.are.equal("4000000", line(out, "TOTAL"))
  end)

  it("returns false from write past 16 KiB and emits drain once it went out", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local req = http.request({ host = "127.0.0.1", port = port, method = "POST", path = "/echo" },
        function(res)
          local n = 0
          res:on("data", function(c) n = n + #c end)
          res:on("end", function() print("ECHOED", n > 1000000) process.exit(0) end)
        end)
      local chunk = string.rep("x", 64 * 1024)
      local writes = 0
      local function pump()
        while writes < 20 do
          writes = writes + 1
          if not req:write(chunk) then
            print("BACKPRESSURE", writes)
            return req:once("drain", pump)
          end
        end
        req:finish()
      end
      pump()
    ]], port)
    assert.is_truthy(line(out, "BACKPRESSURE"))
    assert.are.equal("true", line(out, "ECHOED"))
  end)

  it("reuses kept-alive connections, most recently used first", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local n = 0
      local function next_one()
        n = n + 1
        if n > 10 then
          local s = http.globalAgent:stats("127.0.0.1", port)
          print("STATS", s.connections, s.sockets, s.free)
          return process.exit(0)
        end
        local req = get("/hello", function(res) next_one() end)
        req:on("response", function() if n > 1 then print("REUSED", req.reusedSocket) end end)
      end
      next_one()
    ]], port)
    assert.are.equal("1\t1\t1", line(out, "STATS"))
    assert.is_nil(out:match("REUSED\tfalse"))
    local connections = lc.upstream_stats(port)
    assert.are.equal(2, connections) -- ours, and the stats request's own
  end)

  it("opens one connection per concurrent request up to maxSockets, then queues", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local agent = http.Agent({ keepAlive = true, maxSockets = 3 })
      local done = 0
      for i = 1, 9 do
        get("/delay/100", { agent = agent }, function()
          done = done + 1
          if done == 9 then
            local s = agent:stats()
            print("STATS", s.connections, s.sockets, s.free, s.queued)
            process.exit(0)
          end
        end)
      end
      setTimeout(function()
        local s = agent:stats()
        print("WHILE", s.sockets, s.queued)
      end, 50)
    ]], port)
    assert.are.equal("3\t6", line(out, "WHILE"))
    assert.are.equal("3\t3\t3\t0", line(out, "STATS"))
  end)

  it("refuses a request past the queue's bound, and times out one that waits too long", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local agent = http.Agent({ keepAlive = true, maxSockets = 1, maxQueue = 2 })
      local results, left = {}, 4
      local function done()
        left = left - 1
        if left == 0 then
          print("RESULTS", table.concat(results, ","))
          process.exit(0)
        end
      end
      for i = 1, 4 do
        local req = get("/delay/400", { agent = agent, timeout = i == 3 and 300 or 5000 },
                        function(res, body) results[i] = i .. ":" .. body done() end)
        req:on("error", function(err) results[i] = i .. ":" .. err.code done() end)
      end
    ]], port)
    -- 1 runs, 2 and 3 wait, 4 is refused; 3 would wait 800 ms (1 and 2
    -- take 400 ms each) and fails after its 300 ms; 2 runs after 1
    assert.are.equal("1:slept 400,2:slept 400,3:ETIMEDOUT,4:ERR_QUEUE_FULL", line(out, "RESULTS"))
  end)

  it("closes every connection after its response without keep-alive (agent false)", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      get("/echo", { agent = false }, function(res, body)
        print("CONNECTION", require("cjson").decode(body).headers.connection)
        get("/hello", { agent = false }, function()
          get("/hello", { agent = false }, function() process.exit(0) end)
        end)
      end)
    ]], port)
    assert.are.equal("close", line(out, "CONNECTION"))
    assert.are.equal(4, (lc.upstream_stats(port)))
  end)

  it("closes idle connections before the server's Keep-Alive timeout", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      get("/keep-alive-hint/2", function()
        local t0 = process.hrtimeNs()
        print("FREE", http.globalAgent:stats().free)
        local timer = setInterval(function()
          if http.globalAgent:stats().sockets == 0 then
            print("CLOSED_AFTER", math.floor((process.hrtimeNs() - t0) / 1e6))
            process.exit(0)
          end
        end, 50)
      end)
    ]], port)
    assert.are.equal("1", line(out, "FREE"))
    -- "timeout=2": closed about a second in, before the server would
    local ms = tonumber(line(out, "CLOSED_AFTER"))
    assert.is_true(ms >= 900 and ms < 2000, "closed after " .. ms .. " ms")
  end)

  it("retries an idempotent request once when its reused connection was closed", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      -- /drop-next answers, then the server drops the connection's next
      -- request unanswered: the stale keep-alive connection race.
      get("/drop-next", function()
        local req = get("/hello", function(res, body)
          print("GET", res.statusCode, body)
          get("/drop-next", function()
            local post = http.request({ host = "127.0.0.1", port = port, method = "POST",
                                        path = "/echo" })
            post:on("error", function(err) print("POST", err.code, err.message) process.exit(0) end)
            post:on("response", function() print("POST answered") process.exit(0) end)
            post:finish("not idempotent")
          end)
        end)
        req:on("error", function(err) print("GET error", err.code) process.exit(0) end)
      end)
    ]], port)
    assert.are.equal("200\thello", line(out, "GET"))
    assert.are.equal("ECONNRESET\tsocket hang up", line(out, "POST"))
    -- /drop-next, the dropped GET, its retry (on a second connection, which
    -- /drop-next and the dropped POST reuse); the stats request counts too
    local connections, requests = lc.upstream_stats(port)
    assert.are.equal(5, requests - 1)
    assert.are.equal(2, connections - 1)
  end)

  it("emits timeout and lets a listener decide; without one the request fails ETIMEDOUT", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local with = get("/never", { timeout = 300 }, function() end)
      with:on("timeout", function()
        print("TIMEOUT event")
        with:destroy()
      end)
      with:on("close", function()
        local without = get("/never", { timeout = 300 }, function() end)
        without:on("error", function(err) print("ERROR", err.code) end)
        without:on("close", function() process.exit(0) end)
      end)
    ]], port)
    assert.is_truthy(out:match("TIMEOUT event"))
    assert.are.equal("ETIMEDOUT", line(out, "ERROR"))
  end)

  it("counts the timeout as idle time: a slow answer that keeps coming is not cut", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local t0 = process.hrtimeNs()
      local req = get("/drip/12", { timeout = 500 }, function(res, body)
        print("BODY", body, math.floor((process.hrtimeNs() - t0) / 1e6) > 1000)
        process.exit(0)
      end)
      req:on("timeout", function() print("TIMED OUT") process.exit(0) end)
      setTimeout(function() end, 3000)
    ]], port)
    assert.is_nil(out:match("TIMED OUT"))
    assert.are.equal("............\ttrue", line(out, "BODY"))
  end)

  it("aborts a request: no response, a close, and the connection is not reused", function()
    local _, port = lc.upstream()
    local out = run(PRELUDE .. [[
      local req = get("/delay/300", function() print("RESPONSE") end)
      req:on("close", function()
        print("CLOSED", req.aborted, req.destroyed)
        setTimeout(function()
          print("SOCKETS", http.globalAgent:stats().sockets)
          process.exit(0)
        end, 50)
      end)
      setTimeout(function() req:abort() end, 50)
    ]], port)
    assert.is_nil(out:match("RESPONSE"))
    assert.are.equal("true\ttrue", line(out, "CLOSED"))
    assert.are.equal("0", line(out, "SOCKETS"))
  end)

  it("works against Python's own http.server (HTTP/1.0, close-delimited)", function()
    local dir = lc.tmpdir() .. "/pyserve"
    os.execute("mkdir -p " .. dir .. " && printf 'from python' > " .. dir .. "/file.txt")
    local py = lc.spawn({ "python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                          "--directory", dir })
    local port = tonumber(py:wait_for("port (%d+)", 10000))
    local out = run(PRELUDE .. [[
      get("/file.txt", function(res, body)
        print("PY", res.statusCode, res.httpVersion, body)
        get("/missing", function(res2) print("MISSING", res2.statusCode) process.exit(0) end)
      end)
    ]], port)
    assert.are.equal("200\t1.0\tfrom python", line(out, "PY"))
    assert.are.equal("404", line(out, "MISSING"))
  end)
end)
