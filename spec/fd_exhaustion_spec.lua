-- Running out of file descriptors is a load condition, never a wedge: under
-- a low RLIMIT_NOFILE the master pauses accepting and tries again, a worker
-- that cannot receive a connection hands it back (it goes to another worker
-- or waits in the master), a worker that accepts itself pauses too, no
-- worker exits, and every client is answered once descriptors are free, in
-- all four scheduling policies.
local lc = require("lc")

-- Each request takes 50 ms, so a few hundred clients at once need more
-- descriptors than anyone has. WORKER_NOFILE lowers a worker's own limit.
local APP = [[
local ffi = require("ffi")
ffi.cdef("struct lc_rlimit { unsigned long cur, max; };" ..
         "int setrlimit(int resource, const struct lc_rlimit *rl);")
if process.env.WORKER_NOFILE then
  local n = tonumber(process.env.WORKER_NOFILE)
  assert(ffi.C.setrlimit(7, ffi.new("struct lc_rlimit", n, n)) == 0)
end
local server = http.createServer(function(req, res)
  setTimeout(function() res:finish("ok " .. process.pid) end, 50)
end)
server:listen(0, "127.0.0.1", function() print("PORT " .. server:address().port) end)
]]

local CLIENTS = 300

-- `luacluster -w 2 --sched policy` under `ulimit -n nofile`.
local function start(policy, nofile, env)
  local app = lc.write_app(APP)
  local p = lc.spawn({ "/bin/sh", "-c", 'ulimit -n ' .. nofile .. ' && exec "$@"', "sh",
                       lc.bin, "-w", "2", "--sched", policy, app }, { env = env })
  local port = p:port()
  lc.wait_until(function() return p:count("PORT %d+") >= 2 end, 5000)
  return p, port
end

-- CLIENTS clients each send a request at once; all must be answered.
local function storm(port)
  local conns = {}
  for i = 1, CLIENTS do
    conns[i] = assert(lc.connect(port))
    assert(conns[i]:send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
  end
  local deadline, answered = lc.now() + 30000, 0
  for _, conn in ipairs(conns) do
    local res = conn:read_response(math.max(1, deadline - lc.now()))
    if res and res.status == 200 then answered = answered + 1 end
    conn:close()
  end
  return answered
end

local function serves(port)
  -- Everyone left: the next client is answered at once.
  local res, why = lc.http(port, "GET", "/after", { timeout = 3000 })
  assert.is_truthy(res, why)
  assert.are.equal(200, res.status)
end

local function nobody_died(p)
  local out = p:output()
  assert.is_false(p:poll(), out)
  assert.are.equal(0, p:count("exited with code"), out)
  assert.are.equal(0, p:count("killed by"), out)
  assert.are.equal(0, p:count("channel"), out)
  assert.are.equal(2, p:count("started, pid"), out)
end

describe("out of file descriptors", function()
  after_each(lc.cleanup)

  for _, policy in ipairs({ "rr", "sticky", "none", "reuseport" }) do
    it("keeps serving a cluster under ulimit -n 64 (" .. policy .. ")", function()
      local p, port = start(policy, 64)
      assert.are.equal(CLIENTS, storm(port))
      serves(port)
      nobody_died(p)
      p:wait_for("out of file descriptors")
    end)

    it("keeps serving when the workers' own limit is low (" .. policy .. ")", function()
      local p, port = start(policy, 4096, { WORKER_NOFILE = 32 })
      assert.are.equal(CLIENTS, storm(port))
      serves(port)
      nobody_died(p)
      p:wait_for("out of file descriptors")
    end)
  end
end)
