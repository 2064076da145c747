-- The `luacluster` command: flags, errors a person sees, and managed mode
-- (`-w N`: the C supervisor keeps N workers, restarts them, stops them on
-- SIGTERM/SIGINT).
local lc = require("lc")

local start_split = lc.start_split

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- A managed-mode app: says which worker and instance it is, stays up, and
-- stops when the master disconnects it (as a server closing would).
local WORKER_APP = [[
  print("INSTANCE", cluster.worker.id, process.env.LUACLUSTER_INSTANCE, process.pid)
  local keep = setInterval(function() end, 1000)
  process.on("disconnect", function() clearInterval(keep) end)
]]

-- Waits for n "[workerK] started, pid: P" lines; returns {[K] = P}.
local function started(p, n)
  lc.wait_until(function()
    p:poll()
    return p:count("%[worker%d+%] started, pid: %d+") >= n
  end, 5000, function() return n .. " started workers; output:\n" .. p:output() end)
  local pids = {}
  for id, pid in p:output():gmatch("%[worker(%d+)%] started, pid: (%d+)") do
    pids[tonumber(id)] = tonumber(pid)
  end
  return pids
end

local function is_child(parent, pid)
  for _, k in ipairs(lc.children(parent)) do
    if k == pid then return true end
  end
  return false
end

local function nproc()
  local f = io.popen("env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc")
  local n = tonumber(f:read("*l"))
  f:close()
  return n
end

describe("luacluster (the command)", function()
  after_each(lc.cleanup)

  it("prints usage with --help and exits 0", function()
    local p, stderr = start_split({ "--help" })
    assert.are.equal(0, p:wait_exit())
    assert.is_truthy(p:output():match("^usage: luacluster"), p:output())
    assert.is_truthy(p:output():find("--workers", 1, true))
    assert.are.equal("", stderr())
  end)

  it("prints usage with -h too", function()
    local p = start_split({ "-h" })
    assert.are.equal(0, p:wait_exit())
    assert.is_truthy(p:output():match("^usage: luacluster"), p:output())
  end)

  it("prints its version with --version and -v and exits 0", function()
    for _, flag in ipairs({ "--version", "-v" }) do
      local p = start_split({ flag })
      assert.are.equal(0, p:wait_exit())
      assert.is_truthy(p:output():match("^luacluster %d+%.%d+%.%d+[^\n]*\n$"), p:output())
    end
  end)

  it("exits 1 with a one-line error when no script is given", function()
    local p, stderr = start_split({})
    assert.are.equal(1, p:wait_exit())
    local l = lines(stderr())
    assert.are.equal(1, #l, stderr())
    assert.is_truthy(l[1]:find("no app script", 1, true), l[1])
    assert.are.equal("", p:output())
  end)

  it("exits 1 with exactly one line naming a script that does not exist", function()
    local missing = lc.tmpdir() .. "/no-such-app.lua"
    local p, stderr = start_split({ missing })
    assert.are.equal(1, p:wait_exit())
    local l = lines(stderr())
    assert.are.equal(1, #l, stderr())
    assert.is_truthy(l[1]:find(missing, 1, true), l[1])
    assert.are.equal("", p:output())
  end)

  it("exits 1 with one line giving file:line for a script with a syntax error", function()
    local app = lc.write_app("local ok = 1\nlocal x = = 2\nprint('RAN')\n")
    local p, stderr = start_split({ app })
    assert.are.equal(1, p:wait_exit())
    local l = lines(stderr())
    assert.are.equal(1, #l, stderr())
    assert.is_truthy(l[1]:find(app .. ":2:", 1, true), l[1])
    assert.are.equal("", p:output())
  end)

  it("exits 1 naming an unknown option", function()
    local app = lc.write_app("print('RAN')")
    local p, stderr = start_split({ "--no-such-flag", app })
    assert.are.equal(1, p:wait_exit())
    assert.is_truthy(stderr():find("--no-such-flag", 1, true), stderr())
    assert.are.equal("", p:output())
  end)

  it("rejects --sched with an unknown policy", function()
    local app = lc.write_app("print('RAN')")
    local p, stderr = start_split({ "--sched", "bogus", app })
    assert.are.equal(1, p:wait_exit())
    assert.is_truthy(stderr():find("bogus", 1, true), stderr())
    assert.are.equal("", p:output())
  end)

  it("rejects an unknown policy in LUACLUSTER_SCHED_POLICY", function()
    local app = lc.write_app("print('RAN')")
    local p, stderr = start_split({ app }, { env = { LUACLUSTER_SCHED_POLICY = "bogus" } })
    assert.are.equal(1, p:wait_exit())
    assert.is_truthy(stderr():find("bogus", 1, true), stderr())
    assert.are.equal("", p:output())
  end)

  it("rejects a worker count that is missing, zero or not a number", function()
    local app = lc.write_app("print('RAN')")
    for _, args in ipairs({ { "-w", "0", app }, { "-w", "lots", app }, { "-w" } }) do
      local p, stderr = start_split(args)
      assert.are.equal(1, p:wait_exit())
      assert.is_truthy(stderr():find("workers", 1, true), stderr())
      assert.are.equal("", p:output())
    end
  end)

  it("exits 1 with one line and starts no worker when the managed app has a syntax error", function()
    local app = lc.write_app("local x = = 2\n")
    local p, stderr = start_split({ "-w", "2", app })
    assert.are.equal(1, p:wait_exit())
    local l = lines(stderr())
    assert.are.equal(1, #l, stderr())
    assert.is_truthy(l[1]:find(app .. ":1:", 1, true), l[1])
    assert.is_nil(p:output():find("started, pid", 1, true))
  end)

  it("starts two workers with -w 2, children of the master", function()
    local p = lc.start({ "-w", "2", lc.write_app(WORKER_APP) })
    p:wait_for("No%. of worker processes: 2\n")
    local pids = started(p, 2)
    assert.is_truthy(pids[1] and pids[2], p:output())
    for _, pid in pairs(pids) do
      assert.is_true(lc.alive(pid))
      assert.is_true(is_child(p.pid, pid), "worker " .. pid .. " is not a child of " .. p.pid)
    end
    p:wait_for("INSTANCE\t1\t%d\t" .. pids[1])
    p:wait_for("INSTANCE\t2\t%d\t" .. pids[2])
    assert.are.equal(2, p:count("%[worker%d+%] started"))
  end)

  it("starts the workers LUACLUSTER_WORKERS asks for without -w", function()
    local p = lc.start({ lc.write_app(WORKER_APP) }, { env = { LUACLUSTER_WORKERS = "2" } })
    p:wait_for("No%. of worker processes: 2\n")
    local pids = started(p, 2)
    for id, pid in pairs(pids) do
      assert.is_true(is_child(p.pid, pid), "worker " .. pid .. " is not a child of " .. p.pid)
      p:wait_for("INSTANCE\t" .. id .. "\t%d\t" .. pid)
    end
    assert.are.equal(2, p:count("%[worker%d+%] started"))
  end)

  it("starts one worker per CPU with -w max", function()
    local n = nproc()
    local p = lc.start({ "-w", "max", lc.write_app(WORKER_APP) })
    assert.are.equal(n, tonumber((p:wait_for("No%. of worker processes: (%d+)"))))
    local pids = started(p, n)
    for id = 1, n do
      assert.is_true(pids[id] ~= nil and is_child(p.pid, pids[id]), p:output())
    end
  end)

  it("gives each managed worker LUACLUSTER_INSTANCE 0..N-1", function()
    local p = lc.start({ "-w", "3", lc.write_app(WORKER_APP) })
    started(p, 3)
    local seen = {}
    lc.wait_until(function() return p:count("INSTANCE\t%d+\t%d+\t%d+") == 3 end, 5000,
                  function() return "three INSTANCE lines; output:\n" .. p:output() end)
    for _, inst in p:output():gmatch("INSTANCE\t(%d+)\t(%d+)") do seen[#seen + 1] = tonumber(inst) end
    table.sort(seen)
    assert.are.same({ 0, 1, 2 }, seen)
  end)

  it("replaces a worker killed with SIGKILL by worker3 with a new pid and the same instance", function()
    local p = lc.start({ "-w", "2", lc.write_app(WORKER_APP) })
    local pids = started(p, 2)
    local instance = p:wait_for("INSTANCE\t2\t(%d+)\t" .. pids[2])
    p:wait_for("INSTANCE\t1\t%d+\t" .. pids[1])
    lc.kill(pids[2], "SIGKILL")
    local new_pid = tonumber((p:wait_for("%[worker3%] started, pid: (%d+)")))
    assert.are_not.equal(pids[2], new_pid)
    assert.is_true(lc.alive(new_pid))
    assert.is_true(is_child(p.pid, new_pid))
    assert.are.equal(instance, p:wait_for("INSTANCE\t3\t(%d+)\t" .. new_pid))
    assert.is_true(lc.alive(pids[1]))
    assert.is_false(p:poll())
  end)

  for _, sig in ipairs({ "SIGTERM", "SIGINT" }) do
    it("stops every worker and exits 0 on " .. sig, function()
      local p = lc.start({ "-w", "2", lc.write_app(WORKER_APP) })
      local pids = started(p, 2)
      p:wait_for("INSTANCE\t1\t%d+\t" .. pids[1])
      p:wait_for("INSTANCE\t2\t%d+\t" .. pids[2])
      p:kill(sig)
      assert.are.equal(0, p:wait_exit(3000))
      for _, pid in pairs(pids) do
        lc.wait_until(function() return not lc.alive(pid) end, 1000, "worker " .. pid .. " to go")
      end
      assert.are.equal(0, p:count("%[worker3%] started"))
    end)
  end

  it("kills workers that do not stop within --kill-timeout, then exits 0", function()
    -- Timers do not hold a stopping worker (it exits once drained); a
    -- loop that never returns does.
    local stubborn = lc.write_app([[
      print("UP", cluster.worker.id)
      process.on("disconnect", function() while true do end end)
    ]])
    local p = lc.start({ "--kill-timeout", "100", "-w", "2", stubborn })
    local pids = started(p, 2)
    p:wait_for("UP\t1")
    p:wait_for("UP\t2")
    local t0 = lc.now()
    p:kill("SIGTERM")
    assert.are.equal(0, p:wait_exit(3000))
    assert.is_true(lc.now() - t0 >= 90, "stopped before the kill timeout")
    for _, pid in pairs(pids) do
      lc.wait_until(function() return not lc.alive(pid) end, 1000, "worker " .. pid .. " to go")
    end
  end)

  it("stops at once on a second SIGINT", function()
    -- Timers do not hold a stopping worker (it exits once drained); a
    -- loop that never returns does.
    local stubborn = lc.write_app([[
      print("UP", cluster.worker.id)
      process.on("disconnect", function() while true do end end)
    ]])
    local p = lc.start({ "--kill-timeout", "20000", "-w", "2", stubborn })
    local pids = started(p, 2)
    p:wait_for("UP\t1")
    p:wait_for("UP\t2")
    p:kill("SIGINT")
    p:wait_for("stopping")
    p:kill("SIGINT")
    assert.are.equal(0, p:wait_exit(2000))
    for _, pid in pairs(pids) do
      lc.wait_until(function() return not lc.alive(pid) end, 1000, "worker " .. pid .. " to go")
    end
  end)

  it("restarts a crash-looping worker after growing delays", function()
    -- Immediately, then after 100, 150 and 225 ms: worker5 starts at least
    -- 475 ms after worker2 (by the log lines' own clock).
    local p = lc.start({ "-w", "1", lc.write_app([[error("crashes on start")]]) })
    p:wait_for("%[worker5%] started", 5000)
    local function at(id)
      local h, m, sec = p:output():match("(%d%d):(%d%d):(%d%d%.%d%d%d)%] %[INFO%] %[master%] %- %[worker" .. id .. "%] started")
      return (tonumber(h) * 60 + tonumber(m)) * 60 + tonumber(sec)
    end
    local gap = (at(5) - at(2)) * 1000
    if gap < 0 then gap = gap + 86400000 end
    assert.is_true(gap >= 450, ("worker2 to worker5 took %d ms"):format(gap))
    assert.is_false(p:poll())
  end)

  it("does not restart a worker that exits with code 78, and exits 1 when none is left", function()
    local p = lc.start({ "-w", "1", lc.write_app([[
      print("UP", cluster.worker.id)
      process.exit(78)
    ]]) })
    assert.are.equal(1, p:wait_exit())
    assert.are.equal(1, p:count("UP\t%d"))
    assert.are.equal(0, p:count("%[worker2%] started"))
  end)
end)
