-- Stopping and reloading never wait on idle work: a managed worker exits
-- once its connections are done, whatever timers it has, and a client that
-- hung up mid-request is let go (its request hears "aborted", its response
-- "close", as in Node) instead of holding the worker until --kill-timeout.
local lc = require("lc")

local APP = [[
local ticks = 0
setInterval(function() ticks = ticks + 1 end, 50)
local server = http.createServer(function(req, res)
  print("GOT " .. req.url .. " " .. process.pid)
  req:on("aborted", function() print("ABORTED " .. req.url) end)
  req:on("close", function() print("REQ CLOSE " .. req.url) end)
  res:on("close", function() print("RES CLOSE " .. req.url .. " " .. tostring(res.finished)) end)
  if req.url == "/hang" then return end -- never answers
  res:finish("ok " .. process.pid)
end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
process.on("exit", function(code) print("WORKER EXIT " .. process.pid .. " " .. code) end)
]]

local function workers(p, n)
  lc.wait_until(function() return p:count("PORT %d+") >= n end, 5000,
                function() return n .. " workers listening; output:\n" .. p:output() end)
  local pids = {}
  for pid in p:output():gmatch("started, pid: (%d+)") do pids[#pids + 1] = tonumber(pid) end
  return pids
end

describe("stop and reload", function()
  after_each(lc.cleanup)

  it("stops a managed cluster whose workers have intervals at once, not at --kill-timeout", function()
    local p = lc.start({ "-w", "2", "--kill-timeout", "20000", lc.write_app(APP) })
    local port = p:port()
    workers(p, 2)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    local t0 = lc.now()
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit(10000))
    assert.is_true(lc.now() - t0 < 3000, "stopped after " .. (lc.now() - t0) .. " ms")
    local out = p:output()
    assert.is_falsy(out:find("still busy", 1, true), out)
    -- The workers ended their loop the ordinary way: "exit" listeners ran.
    assert.are.equal(2, p:count("WORKER EXIT %d+ 0"), out)
  end)

  it("reloads workers with intervals without waiting for --kill-timeout", function()
    local p = lc.start({ "-w", "2", "--kill-timeout", "20000", lc.write_app(APP) })
    p:port()
    local old = workers(p, 2)
    local t0 = lc.now()
    p:kill("SIGUSR2")
    p:wait_for("reloaded 2 worker")
    lc.wait_until(function() return not lc.alive(old[1]) and not lc.alive(old[2]) end, 5000,
                  function() return "the old workers to exit; output:\n" .. p:output() end)
    assert.is_true(lc.now() - t0 < 5000, "old workers gone after " .. (lc.now() - t0) .. " ms")
    assert.is_falsy(p:output():find("still busy", 1, true), p:output())
  end)

  it("tells a handler its client hung up, and does not wait for it on stop", function()
    local p = lc.start({ "-w", "1", "--kill-timeout", "20000", lc.write_app(APP) })
    local port = p:port()
    local conn = assert(lc.connect(port))
    conn:send("GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
    p:wait_for("GOT /hang")
    conn:close() -- the client goes away mid-request
    p:wait_for("ABORTED /hang")
    p:wait_for("RES CLOSE /hang false")
    p:wait_for("REQ CLOSE /hang")
    local t0 = lc.now()
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit(10000))
    assert.is_true(lc.now() - t0 < 3000, "stopped after " .. (lc.now() - t0) .. " ms")
    assert.is_falsy(p:output():find("still busy", 1, true), p:output())
  end)

  it("tells a handler its client reset the connection", function()
    local p = lc.start({ lc.write_app(APP) })
    local port = p:port()
    local conn = assert(lc.connect(port))
    conn:send("GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
    p:wait_for("GOT /hang")
    conn:reset()
    p:wait_for("ABORTED /hang")
    p:wait_for("RES CLOSE /hang false")
  end)

  it("emits the response's close after finish, and no aborted", function()
    local p = lc.start({ lc.write_app(APP) })
    local port = p:port()
    local res = assert(lc.http(port, "GET", "/fine"))
    assert.are.equal(200, res.status)
    p:wait_for("RES CLOSE /fine true")
    assert.are.equal(0, p:count("ABORTED"))
  end)
end)
