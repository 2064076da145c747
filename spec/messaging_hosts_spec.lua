-- Cluster messaging across hosts: two masters with the same --cluster-name
-- and their own control sockets stand for two hosts sharing one real
-- redis-server. Broadcasts and publishes reach all four workers exactly
-- once, `status --cluster` lists both hosts, and Redis killed and started
-- again mid-run stops only the remote delivery, which comes back.
local lc = require("lc")
local rs = require("redis_server")
local sd = require("sd")
local cjson = require("cjson")

-- Each worker prints what reaches it; GET /send?id=X broadcasts and
-- publishes X from whichever worker takes the request.
local APP = [[
local name = process.env.TAG .. process.env.LUACLUSTER_INSTANCE
process.on("message", function(m)
  if type(m) == "table" and m.kind == "bcast" then print(("%s BCAST %s"):format(name, m.text)) end
end)
cluster.subscribe("news", function(m, from, host)
  print(("%s NEWS %s from %s at %s"):format(name, m.text, tostring(from), host))
end)
http.createServer(function(req, res)
  local id = req.url:match("^/send%?id=(%w+)")
  if id then
    cluster.broadcast({ kind = "bcast", text = id .. "@" .. name })
    cluster.publish("news", { text = id .. "@" .. name })
  end
  res:finish(name)
end):listen(tonumber(process.env.PORT), "127.0.0.1")
]]

-- Starts a managed master of cluster "shop" as host `tag`.
local function host(tag, app, redis_port, extra)
  local port = sd.free_port()
  local control = lc.tmpdir() .. "/" .. tag .. "-" .. port .. ".sock"
  local url = "redis://" .. (tostring(redis_port):find("@") and redis_port or "127.0.0.1:" .. redis_port)
  local args = { "-w", "2", "--redis", url,
                 "--cluster-name", "shop", "--control", control }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  args[#args + 1] = app
  local port2 = sd.free_port()
  local p = lc.start(args, { env = { TAG = tag, PORT = port, PORT2 = port2 } })
  return { proc = p, port = port, port2 = port2, control = control, tag = tag }
end

-- Lines "NAME KIND ID@..." every process printed for message id.
local function seen(hosts, kind, id)
  local who = {}
  for _, h in ipairs(hosts) do
    for name in h.proc:output():gmatch("\n?(%u%d) " .. kind .. " " .. id .. "@") do
      who[#who + 1] = name
    end
  end
  table.sort(who)
  return table.concat(who, " ")
end

local function numsub(server, channel)
  return tonumber(server:cli("PUBSUB", "NUMSUB", channel):match("\n(%d+)")) or 0
end

-- Both masters subscribed to the broadcast channel and to "news".
local function subscribed(server, n)
  lc.wait_until(function()
    return numsub(server, "luacluster:shop:broadcast") == n and
           numsub(server, "luacluster:shop:topic:news") == n
  end, 10000, "both masters to subscribe")
end

-- Both workers of host h listen (so they have subscribed: a worker's
-- subscription reaches its master before its listening does).
local function ready(h)
  lc.wait_until(function()
    local p = lc.start({ "status", "--control", h.control })
    p:wait_exit(10000)
    return select(2, p:output():gsub(" listening ", "")) == 2
  end, 10000, "both workers of host " .. h.tag .. " to listen")
end

local function get(h, path)
  local res = lc.wait_until(function() return (lc.http(h.port, "GET", path)) end,
                            5000, "an answer from " .. h.tag)
  assert.are.equal(200, res.status)
end

local function status(h, ...)
  local p = lc.start({ "status", "--control", h.control, ... })
  local code = p:wait_exit(10000)
  return code, p:output()
end

describe("cluster messaging across hosts", function()
  after_each(lc.cleanup)

  it("reaches every worker of both hosts once, lists both, and survives Redis going away", function()
    local server = rs.start()
    local app = lc.write_app(APP)
    local a = host("A", app, server.port)
    local b = host("B", app, server.port)
    ready(a)
    ready(b)
    subscribed(server, 2)
    a.proc:wait_for("cluster shop: joined through Redis")
    b.proc:wait_for("cluster shop: joined through Redis")

    -- one broadcast and one publish, from a worker of host A
    get(a, "/send?id=m1")
    local all = "A0 A1 B0 B1"
    lc.wait_until(function() return seen({ a, b }, "BCAST", "m1") == all end, 5000,
                  function() return "m1 broadcast everywhere: " .. seen({ a, b }, "BCAST", "m1") end)
    lc.wait_until(function() return seen({ a, b }, "NEWS", "m1") == all end, 5000,
                  function() return "m1 published everywhere: " .. seen({ a, b }, "NEWS", "m1") end)
    -- `from` is the sending worker, `host` the sending master
    assert.truthy(b.proc:output():match("B%d NEWS m1@A%d from %d at [^\n]*:" .. a.proc.pid))

    -- status --cluster: both hosts, their workers
    local code, out = status(a, "--cluster")
    assert.are.equal(0, code, out)
    assert.truthy(out:match("cluster shop: 2 hosts"), out)
    assert.truthy(out:match("host [^\n]*:" .. a.proc.pid .. " %(this one%)"), out)
    assert.truthy(out:match("host [^\n]*:" .. b.proc.pid .. ", updated"), out)
    code, out = status(b, "--cluster", "--json")
    assert.are.equal(0, code, out)
    local doc = cjson.decode(out)
    assert.are.equal("shop", doc.cluster)
    assert.are.equal(2, #doc.hosts)
    local pids = {}
    for _, h in ipairs(doc.hosts) do
      pids[#pids + 1] = h.pid
      assert.are.equal("managed", h.mode)
      assert.are.equal(2, #h.status.workers)
    end
    table.sort(pids)
    assert.same({ math.min(a.proc.pid, b.proc.pid), math.max(a.proc.pid, b.proc.pid) }, pids)

    -- Redis goes away: each host still delivers its own messages
    server:kill()
    a.proc:wait_for("lost Redis at 127%.0%.0%.1:%d+: messages from the other hosts stop")
    get(a, "/send?id=m2")
    get(b, "/send?id=m3")
    lc.wait_until(function() return seen({ a, b }, "BCAST", "m2") == "A0 A1" end, 5000,
                  function() return "m2 on host A: " .. seen({ a, b }, "BCAST", "m2") end)
    lc.wait_until(function() return seen({ a, b }, "NEWS", "m3") == "B0 B1" end, 5000,
                  function() return "m3 on host B: " .. seen({ a, b }, "NEWS", "m3") end)
    a.proc:wait_for("dropped until it is back %(local delivery goes on%)")
    code, out = status(a, "--cluster")
    assert.are.equal(1, code)
    assert.truthy(out:match("Redis at 127%.0%.0%.1:%d+ is not reachable"), out)
    -- and serves HTTP as before
    get(b, "/")

    -- Redis is back: remote delivery resumes
    server:restart()
    subscribed(server, 2)
    a.proc:wait_for("Redis at 127%.0%.0%.1:%d+ is back: broadcasts and publishes reach the other hosts again")
    b.proc:wait_for("Redis at 127%.0%.0%.1:%d+ is back: broadcasts and publishes reach the other hosts again")
    get(b, "/send?id=m4")
    lc.wait_until(function() return seen({ a, b }, "BCAST", "m4") == all end, 5000,
                  function() return "m4 broadcast everywhere: " .. seen({ a, b }, "BCAST", "m4") end)
    lc.wait_until(function() return seen({ a, b }, "NEWS", "m4") == all end, 5000,
                  function() return "m4 published everywhere: " .. seen({ a, b }, "NEWS", "m4") end)
    -- what was sent while Redis was away never arrives (at most once)
    assert.are.equal("A0 A1", seen({ a, b }, "BCAST", "m2"))
    assert.are.equal("B0 B1", seen({ a, b }, "BCAST", "m3"))
    -- both registered again
    lc.wait_until(function()
      local c, o = status(a, "--cluster")
      return c == 0 and o:match("cluster shop: 2 hosts")
    end, 10000, "both hosts registered again")

    -- a master that stops leaves the cluster at once
    b.proc:kill("SIGTERM")
    assert.are.equal(0, b.proc:wait_exit(10000))
    code, out = status(a, "--cluster")
    assert.are.equal(0, code, out)
    assert.truthy(out:match("cluster shop: 1 host "), out)
    assert.falsy(out:match(":" .. b.proc.pid), out)
  end)

  it("bounds what waits for a Redis that does not answer, and says when it keeps up again", function()
    local server = rs.start()
    local app = lc.write_app(APP .. [[
local counted = 0
process.on("message", function(m)
  if type(m) == "table" and m.kind == "count" then
    counted = counted + 1
    if counted % 1000 == 0 then print(name .. " COUNT " .. counted) end
  end
end)
http.createServer(function(req, res)
  local n = tonumber(req.url:match("^/flood%?n=(%d+)"))
  local i = 0
  local function burst()
    while i < n do
      i = i + 1
      if not cluster.broadcast({ kind = "count" }) then return process:once("drain", burst) end
    end
  end
  burst()
  res:finish("flooding")
end):listen(tonumber(process.env.PORT2), "127.0.0.1")
]])
    local a = host("A", app, server.port)
    local b = host("B", app, server.port)
    ready(a)
    ready(b)
    subscribed(server, 2)
    -- Redis stops answering: what waits for it is bounded
    server.proc:kill("SIGSTOP")
    local res = lc.http(a.port2, "GET", "/flood?n=15000")
    assert.are.equal(200, res.status)
    a.proc:wait_for("Redis at 127%.0%.0%.1:%d+: not keeping up: broadcasts and publishes for other hosts are dropped")
    -- the host's own workers get everything meanwhile
    lc.wait_until(function() return a.proc:count("A%d COUNT 15000") == 2 end, 10000,
                  function() return "host A's workers to count 15000:\n" .. a.proc:output() end)
    server.proc:kill("SIGCONT")
    a.proc:wait_for("Redis at 127%.0%.0%.1:%d+ keeps up again", 10000)
    -- host B got what was let through: 10000 (the bound), not 15000
    lc.wait_until(function() return b.proc:count("B%d COUNT 10000") == 2 end, 10000,
                  function() return "host B's workers to count 10000:\n" .. b.proc:output() end)
    assert.are.equal(0, b.proc:count("COUNT 11000"))
  end)

  it("lets a script-mode master publish to and hear from the other host, and drops foreign messages", function()
    local server = rs.start()
    local a = host("A", lc.write_app(APP), server.port)
    ready(a)
    local port = sd.free_port()
    local m = lc.start({ "--redis", "redis://127.0.0.1:" .. server.port, "--cluster-name", "shop",
                         lc.write_app([[
      cluster.subscribe("news", function(m, from, host)
        print(("MASTER NEWS %s from %s at %s"):format(m.text, tostring(from), host))
        if m.text:match("^go@") then
          cluster.publish("news", { text = "reply@M0" })
          cluster.broadcast({ kind = "bcast", text = "reply@M0" })
        end
      end)
      local w = cluster.fork()
      w:on("message", function() end)
      http.createServer(function(_, res) res:finish("ok") end):listen(0)
    ]]) }, { env = { TAG = "M", PORT = port } })
    lc.wait_until(function()
      return numsub(server, "luacluster:shop:topic:news") == 2 and
             numsub(server, "luacluster:shop:broadcast") == 2
    end, 10000, "both masters to subscribe")
    get(a, "/send?id=go")
    m:wait_for("MASTER NEWS go@A%d from %d at [^\n]*:" .. a.proc.pid)
    lc.wait_until(function() return seen({ a }, "NEWS", "reply") == "A0 A1" end, 5000,
                  function() return "the master's publish on host A:\n" .. a.proc:output() end)
    lc.wait_until(function() return seen({ a }, "BCAST", "reply") == "A0 A1" end, 5000,
                  "the master's broadcast on host A")
    assert.truthy(a.proc:output():match("A%d NEWS reply@M0 from master at [^\n]*:" .. m.pid))

    -- status --cluster shows the script-mode master too
    lc.wait_until(function()
      local _, out = status(a, "--cluster")
      return out:match("cluster shop: 2 hosts") and out:match("%(script mode%)")
    end, 10000, "the script-mode master in status --cluster")

    -- something that is not ours on our channel: dropped, said, nothing breaks
    server:cli("PUBLISH", "luacluster:shop:broadcast", "hello from redis-cli")
    a.proc:wait_for("dropped a message on luacluster:shop:broadcast that is not a luacluster message")
    m:wait_for("dropped a message on luacluster:shop:broadcast that is not a luacluster message")
    get(a, "/send?id=after")
    lc.wait_until(function() return seen({ a }, "BCAST", "after") == "A0 A1" end, 5000, "a broadcast after")
    m:wait_for("MASTER NEWS after@A")
  end)

  it("starts with Redis down or refusing it, serves locally, and joins once Redis is there", function()
    local redis_port = sd.free_port()
    local a = host("A", lc.write_app(APP), redis_port)
    a.proc:wait_for("cluster: Redis at 127%.0%.0%.1:" .. redis_port .. " %(subscriber%): connect ECONNREFUSED")
    ready(a)
    get(a, "/send?id=local")
    lc.wait_until(function() return seen({ a }, "BCAST", "local") == "A0 A1" end, 5000, "local broadcast")
    lc.wait_until(function() return seen({ a }, "NEWS", "local") == "A0 A1" end, 5000, "local publish")
    local code, out = status(a, "--cluster")
    assert.are.equal(1, code)
    assert.truthy(out:match("is not reachable: connect ECONNREFUSED"), out)

    local server = rs.start_on(redis_port)
    a.proc:wait_for("cluster shop: joined through Redis at 127%.0%.0%.1:" .. redis_port, 10000)
    lc.wait_until(function()
      local c, o = status(a, "--cluster")
      return c == 0 and o:match("cluster shop: 1 host ")
    end, 10000, "the host registered")
    local _ = server

    -- a wrong password: said, and local delivery goes on
    local locked = rs.start({ "--requirepass", "right" })
    local b = host("B", lc.write_app(APP), ":wrong@127.0.0.1:" .. locked.port)
    b.proc:wait_for("cluster: Redis at 127%.0%.0%.1:%d+ %([a-z]+%): [^\n]*WRONGPASS")
    ready(b)
    get(b, "/send?id=pw")
    lc.wait_until(function() return seen({ b }, "BCAST", "pw") == "B0 B1" end, 5000, "local broadcast")
  end)

  it("refuses a bad --redis or --cluster-name, and status --cluster without one", function()
    local app = lc.write_app(APP)
    local p, err = lc.start_split({ "--redis", "localhost:6379", app })
    assert.are.equal(1, p:wait_exit(5000))
    assert.truthy(err():match("^luacluster: %-%-redis: a Redis URL looks like redis://"), err())
    p, err = lc.start_split({ "--redis", "redis://h", "--cluster-name", "a/b", app })
    assert.are.equal(1, p:wait_exit(5000))
    assert.truthy(err():match("%-%-cluster%-name: 1 to 64 letters, digits, '%.', '_' or '%-', got \"a/b\""), err())
    p, err = lc.start_split({ app }, { env = { LUACLUSTER_REDIS = "http://x" } })
    assert.are.equal(1, p:wait_exit(5000))
    assert.truthy(err():match("%-%-redis: a Redis URL looks like"), err())

    local alone = { control = lc.tmpdir() .. "/alone.sock" }
    lc.start({ "-w", "1", "--control", alone.control, app }, { env = { TAG = "A", PORT = sd.free_port() } })
    lc.wait_until(function() return status(alone) == 0 end, 5000, "the master's control socket")
    local code, out = status(alone, "--cluster")
    assert.are.equal(1, code)
    assert.truthy(out:match("this master is not in a cluster %(it runs without %-%-redis%)"), out)
  end)
end)
