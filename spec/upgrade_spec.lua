-- Binary upgrade with no downtime (`luacluster upgrade`, SIGURG): the master
-- execs its binary again with its listening sockets; the new master starts
-- its workers, the old one drains and exits. Under load nothing is refused
-- or lost; a new binary that cannot start leaves the old master serving.
local lc = require("lc")
local cjson = require("cjson")

local SERVER = [[
  local server = http.createServer(function(req, res)
    setTimeout(function() res:finish("pid " .. process.pid .. "\n") end, 2)
  end)
  server:listen(tonumber(os.getenv("PORT") or "0"), "127.0.0.1", function()
    print("PORT " .. server:address().port .. " pid " .. process.pid)
  end)
]]

local function control_path()
  return lc.tmpdir() .. "/ctl" .. tostring(lc.now()):gsub("%.", "") .. ".sock"
end

local function command(control, ...)
  local argv = { lc.bin, ... }
  argv[#argv + 1] = "--control"
  argv[#argv + 1] = control
  local c, err = lc.start_split({ select(2, unpack(argv)) })
  local code = c:wait_exit(60000)
  return code, c:output(), err()
end

local function status(control)
  local code, out = command(control, "status", "--json")
  assert.are.equal(0, code, out)
  return cjson.decode(out)
end

-- A copy of the binary the test may replace, as a package update would.
local function own_binary()
  local dir = lc.tmpdir() .. "/bin" .. tostring(lc.now()):gsub("%.", "")
  assert(os.execute("mkdir -p '" .. dir .. "' && cp '" .. lc.bin .. "' '" .. dir .. "/luacluster'") == 0)
  return dir .. "/luacluster"
end

-- Replaces path by a new file with this content (renamed over it, so a
-- running copy is not touched).
local function replace(path, content, mode)
  local f = assert(io.open(path .. ".new", "w"))
  f:write(content)
  f:close()
  assert(os.execute("chmod " .. (mode or "755") .. " '" .. path .. ".new' && mv '" ..
                    path .. ".new' '" .. path .. "'") == 0)
end

local function start(bin, n, extra)
  local control = control_path()
  local app = lc.write_app(SERVER)
  local argv = { bin, "-w", tostring(n), "--control", control }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = app
  local p = lc.spawn(argv)
  local port = p:port()
  lc.wait_until(function() return p:count("PORT %d+ pid") >= n end, 5000, "workers")
  return p, port, control
end

describe("luacluster upgrade", function()
  after_each(lc.cleanup)

  it("replaces the master and its workers under load with no request lost or refused", function()
    local p, port, control = start(lc.bin, 2)
    local old = status(control)
    assert.are.equal(p.pid, old.master.pid)
    local wait = lc.clients(port, 4, 4)
    lc.sleep(1000)
    local code, out, err = command(control, "upgrade")
    assert.are.equal(0, code, out .. err)
    assert.matches("upgraded: new master pid %d+", out)
    local new_pid = tonumber(out:match("new master pid (%d+)"))
    -- the old master drains and leaves (exit 0); the new one answers on
    -- the same control socket with its own workers
    assert.are.equal(0, p:wait_exit(10000))
    local new = status(control)
    assert.are.equal(new_pid, new.master.pid)
    assert.are.equal(2, #new.workers)
    for _, w in ipairs(new.workers) do
      for _, o in ipairs(old.workers) do assert.are_not.equal(o.pid, w.pid) end
      assert.are.equal("listening", w.state)
    end
    local sum = wait()
    assert.are.equal(0, sum.lost, sum.output)
    assert.are.equal(0, sum.refused, sum.output)
    assert.is_true(sum.ok > 100, sum.output)
    -- the new master's workers answer
    local res = assert(lc.http(port, "GET", "/"))
    local pid = tonumber(res.body:match("pid (%d+)"))
    local found = false
    for _, w in ipairs(new.workers) do found = found or w.pid == pid end
    assert.is_true(found)
    -- and it stops as any master does, taking the control socket with it
    code, out = command(control, "stop")
    assert.are.equal(0, code, out)
    lc.wait_until(function() return not lc.alive(new_pid) end, 10000, "the new master to exit")
  end)

  it("upgrades again, and on SIGURG", function()
    local p, port, control = start(lc.bin, 1)
    p:kill(23) -- SIGURG
    assert.are.equal(0, p:wait_exit(10000))
    local second = status(control).master.pid
    assert.are_not.equal(p.pid, second)
    local code, out = command(control, "upgrade")
    assert.are.equal(0, code, out)
    lc.wait_until(function() return not lc.alive(second) end, 10000, "the second master to exit")
    assert.are_not.equal(second, status(control).master.pid)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
  end)

  it("keeps the old master serving when the new binary fails to start", function()
    local bin = own_binary()
    local p, port, control = start(bin, 2)
    local before = status(control)
    replace(bin, "#!/bin/sh\necho broken build >&2\nexit 3\n")
    local code, out, err = command(control, "upgrade")
    assert.are.equal(1, code, out)
    assert.matches("the new master exited with code 3 before it was ready; this one %(pid "
                   .. p.pid .. "%) keeps serving", err)
    -- nothing changed: same master, same workers, still serving
    assert.is_false(p:poll())
    local after = status(control)
    assert.are.equal(p.pid, after.master.pid)
    assert.are.same({ before.workers[1].pid, before.workers[2].pid },
                    { after.workers[1].pid, after.workers[2].pid })
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
    -- a good binary afterwards upgrades as usual
    assert(os.execute("cp '" .. lc.bin .. "' '" .. bin .. ".new' && mv '" .. bin .. ".new' '" .. bin .. "'") == 0)
    code, out = command(control, "upgrade")
    assert.are.equal(0, code, out)
    assert.are.equal(0, p:wait_exit(10000))
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
  end)

  it("gives up on a new master that never gets ready, and stops it", function()
    local bin = own_binary()
    local p, port, control = start(bin, 1, { "--listen-timeout", "500" })
    replace(bin, "#!/bin/sh\necho \"HUNG $$\"\nexec sleep 60\n")
    local code, _, err = command(control, "upgrade")
    assert.are.equal(1, code)
    assert.matches("was not ready within 1000 ms", err)
    local hung = tonumber(p:wait_for("HUNG (%d+)"))
    lc.wait_until(function() return not lc.alive(hung) end, 5000, "the hung new master to be stopped")
    assert.is_false(p:poll())
    assert.are.equal(p.pid, status(control).master.pid)
    assert.are.equal(200, assert(lc.http(port, "GET", "/")).status)
  end)

  it("refuses an upgrade while one is under way", function()
    local bin = own_binary()
    local _, _, control = start(bin, 1, { "--listen-timeout", "1500" })
    replace(bin, "#!/bin/sh\nexec sleep 60\n")
    local first = lc.spawn({ lc.bin, "upgrade", "--control", control })
    lc.wait_until(function()
      local _, out = command(control, "status")
      return out:match("master pid") ~= nil
    end)
    local code, _, err
    lc.wait_until(function()
      code, _, err = command(control, "upgrade")
      return err:match("an upgrade is in progress")
    end, 3000, "the second upgrade to be refused")
    assert.are.equal(1, code)
    assert.are.equal(1, first:wait_exit(10000))
  end)
end)
