-- Crash loops end (managed mode): an instance whose worker keeps failing
-- right after it starts is "errored" after --max-restarts quick failures
-- (within --min-uptime), shown so in status and logged once; when every
-- instance is errored the master exits 1. Heartbeats are paced by their
-- timeout, so a short --heartbeat-timeout never kills a healthy worker.
local lc = require("lc")

local function status(app)
  local q = lc.start({ "status", app })
  assert.are.equal(0, q:wait_exit(5000))
  return q:output()
end

describe("crash loops", function()
  after_each(lc.cleanup)

  it("gives up on instances that fail at start, and exits 1 when all have", function()
    local p, stderr = lc.start_split({ "-w", "2", "--max-restarts", "3", "--min-uptime", "1000",
                                       lc.write_app([[require("no_such_module")]]) })
    assert.are.equal(1, p:wait_exit(20000))
    local err = stderr()
    -- Each instance ran 1 + 3 times; each failure's traceback once.
    local tracebacks = 0
    for _ in err:gmatch("module 'no_such_module' not found") do tracebacks = tracebacks + 1 end
    assert.are.equal(8, tracebacks, err)
    local errored = 0
    for _ in err:gmatch("instance %d errored") do errored = errored + 1 end
    assert.are.equal(2, errored, err)
    assert.is_truthy(err:find("no instance can run: exiting", 1, true), err)
  end)

  it("shows an errored instance in status while the others serve", function()
    local app = lc.write_app([[
      if process.env.LUACLUSTER_INSTANCE == "1" then error("instance 1 cannot start") end
      local s = http.createServer(function(req, res) res:finish("ok") end)
      s:listen(0, "127.0.0.1", function() print("PORT " .. s:address().port) end)
    ]])
    local p = lc.start({ "-w", "2", "--max-restarts", "2", app })
    local port = p:port()
    p:wait_for("instance 1 errored")
    local out = status(app)
    assert.is_truthy(out:match("\n%-%s+1%s+%-%s+errored%s"), out)
    assert.is_truthy(out:match("\n%d+%s+0%s+%d+%s+listening%s"), out)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    -- Given up for good: nothing more starts, and it was said once.
    local started = p:count("started, pid")
    lc.sleep(500)
    assert.are.equal(started, p:count("started, pid"))
    assert.are.equal(1, p:count("instance 1 errored"))
    assert.is_false(p:poll())
    local json = lc.start({ "status", "--json", app })
    json:wait_exit(5000)
    assert.is_truthy(json:output():find('"instance":1,"pid":null,"state":"errored"', 1, true),
                     json:output())
  end)

  it("counts only failures in a row: a worker that stayed up resets the count", function()
    -- Instance 0 stays up 300 ms each time, above --min-uptime 200.
    local p = lc.start({ "-w", "1", "--max-restarts", "1", "--min-uptime", "200",
                         lc.write_app([[setTimeout(function() os.exit(1) end, 300)]]) })
    lc.wait_until(function() return p:count("started, pid") >= 4 end, 10000,
                  function() return "four starts; output:\n" .. p:output() end)
    assert.are.equal(0, p:count("errored"))
    assert.is_false(p:poll())
  end)

  it("does not kill a healthy idle worker with a short --heartbeat-timeout", function()
    local p = lc.start({ "-w", "1", "--heartbeat-timeout", "500",
                         lc.write_app([[setInterval(function() end, 1000) print("UP")]]) })
    p:wait_for("UP")
    lc.sleep(2500)
    assert.are.equal(0, p:count("no heartbeat"), p:output())
    assert.are.equal(1, p:count("started, pid"), p:output())
  end)

  it("still kills a stuck worker within about its --heartbeat-timeout", function()
    local p = lc.start({ "-w", "1", "--heartbeat-timeout", "500",
                         lc.write_app([[
                           print("UP " .. process.env.LUACLUSTER_INSTANCE)
                           if not os.getenv("STUCK_DONE") then
                             setTimeout(function() while true do end end, 200)
                           end
                         ]]) })
    p:wait_for("UP")
    local t0 = lc.now()
    p:wait_for("no heartbeat for %d+ ms", 5000)
    assert.is_true(lc.now() - t0 < 2000, "killed after " .. (lc.now() - t0) .. " ms")
  end)

  it("rejects heartbeat timeouts and limits that mean nothing, with a clear message", function()
    local app = lc.write_app("print('RAN')")
    for _, case in ipairs({
      { { "--heartbeat-timeout", "50" }, "at least 400 ms" },
      { { "--kill-timeout", "99999999999" }, "more than a day" },
      { { "--max-restarts", "2abc" }, "not a number" },
      { { "--min-uptime", "-5" }, "not a number" },
    }) do
      local args = { "-w", "1" }
      for _, a in ipairs(case[1]) do args[#args + 1] = a end
      args[#args + 1] = app
      local p, stderr = lc.start_split(args)
      assert.are.equal(1, p:wait_exit())
      assert.is_truthy(stderr():find(case[1][1], 1, true), stderr())
      assert.is_truthy(stderr():find(case[2], 1, true), stderr())
      assert.are.equal("", p:output())
    end
  end)
end)
