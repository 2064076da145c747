-- require("redis") when things go wrong: Redis down at start, killed and
-- started again, a command that gets no reply in time, a connection that
-- stays silent, a wrong password, a name that does not resolve, the
-- offline queue's bound.
local lc = require("lc")
local rs = require("redis_server")
local sd = require("sd")

local line = lc.field

local function count(out, key)
  return select(2, ("\n" .. out):gsub("\n" .. key:gsub("%p", "%%%0") .. "\t", ""))
end

-- An app whose client (options opts, port arg[1]) reports every event;
-- body runs in a timer callback; the app exits 0 at its end.
local function app(body, opts)
  return [[
local redis = require("redis")
local PORT = tonumber(arg[1])
local opts = ]] .. (opts or "{}") .. [[

opts.port = opts.port or PORT
local db = redis.createClient(opts)
for _, e in ipairs({ "connect", "ready", "end" }) do
  db:on(e, function() print("EVENT", e) end)
end
db:on("error", function(err) print("ERROR", err.code, err.message) end)
db:on("reconnecting", function(info) print("RECONNECTING", info.attempt) end)
local function elapsed(t0) return (process.hrtimeNs() - t0) / 1e6 end
setTimeout(function()
]] .. body .. [[

  process.exit(0)
end, 1)
]]
end

local function finish(p)
  local code = p:wait_exit(20000)
  local out = p:output()
  assert.are.equal(0, code, out)
  return out
end

describe("redis when things go wrong", function()
  after_each(function() lc.cleanup() end)

  it("says Redis is down at start, keeps commands waiting, and connects when it comes up", function()
    local port = sd.free_port()
    local p = lc.run(app([[
      print("WAITING")
      local v, err = db:set("k", "v")
      print("SET", v, err)
      print("GET", (db:get("k")))
    ]], "{ retryDelay = 20, maxRetryDelay = 100 }"), { tostring(port) })
    p:wait_for("RECONNECTING\t3")
    local server = rs.start_on(port)
    local out = finish(p)
    server:stop()
    -- one error for the whole outage, not one per attempt
    assert.are.equal(1, count(out, "ERROR"))
    assert.are.equal("ECONNREFUSED\tconnect ECONNREFUSED 127.0.0.1:" .. port, line(out, "ERROR"))
    assert.are.equal("OK\tnil", line(out, "SET"))
    assert.are.equal("v", line(out, "GET"))
    assert.is_truthy(out:find("EVENT\tconnect\nEVENT\tready\n", 1, true))
  end)

  it("fails commands past maxOfflineQueue at once, and the waiting ones after commandTimeout", function()
    local port = sd.free_port()
    local out = finish(lc.run(app([[
      local results = {}
      for i = 1, 5 do
        db:get("k", function(err) results[#results + 1] = i .. ":" .. err.message end)
      end
      sleep(100)
      print("EARLY", table.concat(results, ","))
      sleep(400)
      print("LATE", table.concat(results, ","))
      local t0 = process.hrtimeNs()
      local v, err = db:get("k")
      local ms = elapsed(t0)
      print("WAITED", v, err, ms >= 250 and ms < 2000)
      local quick = redis.createClient({ port = PORT, enableOfflineQueue = false })
      sleep(50)
      print("NO_QUEUE", quick:get("k"))
      quick:disconnect()
    ]], "{ maxOfflineQueue = 3, commandTimeout = 300, retryDelay = 20, maxRetryDelay = 50 }"),
      { tostring(port) }))
    assert.are.equal("4:offline queue full,5:offline queue full", line(out, "EARLY"))
    assert.are.equal("nil\tconnection refused\ttrue", line(out, "WAITED"))
    assert.are.equal("4:offline queue full,5:offline queue full,1:connection refused," ..
                     "2:connection refused,3:connection refused", line(out, "LATE"))
    assert.are.equal("nil\tconnection refused", line(out, "NO_QUEUE"))
  end)

  it("never sends a command that failed before it could be written", function()
    local port = sd.free_port()
    local p = lc.run(app([[
      -- no server yet: the command fails with the reason, unsent
      print("OFFLINE", db:set("offline", "sent?"))
      print("START_NOW")
      while not db.ready do sleep(5) end
      -- a new connection's AUTH waits on a sleeping server: a command
      -- issued meanwhile times out before it could be written
      local blocker = db:duplicate({ commandTimeout = 0 })
      local slept = false
      blocker:ping()
      blocker:debug("sleep", 0.8, function() slept = true end)
      sleep(50)
      local late = db:duplicate()
      print("SETUP", late:set("during-setup", "sent?"))
      while not (slept and late.ready) do sleep(5) end
      print("NEVER_SENT", (db:exists("offline")), (db:exists("during-setup")), (late:ping()))
      blocker:quit()
      late:quit()
    ]], "{ password = 'secret', commandTimeout = 300, retryDelay = 20, maxRetryDelay = 50 }"),
      { tostring(port) })
    p:wait_for("START_NOW")
    local server = rs.start_on(port, { "--requirepass", "secret" })
    local out = finish(p)
    server:stop()
    assert.are.equal("nil\tconnection refused", line(out, "OFFLINE"))
    assert.are.equal("nil\ttimeout", line(out, "SETUP"))
    assert.are.equal("0\t0\tPONG", line(out, "NEVER_SENT"))
  end)

  it("reconnects after redis-server is killed and started again", function()
    local server = rs.start()
    local p = lc.run(app([[
      print("SET1", db:set("k", "before"))
      db:debug("sleep", 5, function(err, v) print("IN_FLIGHT", err and err.code, v) end)
      sleep(50)
      print("KILL_NOW")
      while db.connected do sleep(5) end
      -- issued while Redis is down: sent once it is back
      local v, err = db:set("k", "during")
      print("SET2", v, err)
      print("GET", (db:get("k")), db:stats().connections)
    ]], "{ retryDelay = 20, maxRetryDelay = 100 }"), { tostring(server.port) })
    p:wait_for("KILL_NOW")
    server:kill()
    p:wait_for("RECONNECTING\t2")
    server:restart()
    local out = finish(p)
    server:stop()
    assert.are.equal("OK\tnil", line(out, "SET1"))
    assert.are.equal("ECONNRESET\tnil", line(out, "IN_FLIGHT"))
    assert.are.equal("OK\tnil", line(out, "SET2"))
    assert.are.equal("during\t2", line(out, "GET"))
    assert.is_truthy(out:find("EVENT\tend\n", 1, true))
    assert.are.equal(2, select(2, out:gsub("EVENT\tready\n", "")))
  end)

  it("times a command out, drops its late reply, and replaces a connection that stays silent", function()
    local server = rs.start()
    local out = finish(lc.run(app([[
      db:set("k", "value of k")
      local blocker = db:duplicate({ commandTimeout = 0 })
      blocker:ping()
      -- the server sleeps 0.6 s: the GET times out at 0.4 s, its reply
      -- comes at 0.6 s and must be dropped, not given to the next command
      blocker:debug("sleep", 0.6, function() print("SLEPT") end)
      sleep(20)
      db:get("k", function(e) print("CB_TIMEOUT", e and e.code) end)
      local t0 = process.hrtimeNs()
      local v, err = db:get("k")
      local ms = elapsed(t0)
      print("TIMEOUT", v, err, ms >= 350 and ms < 600)
      sleep(700)
      print("NEXT", (db:set("k2", "second")), (db:get("k2")), db:stats().connections)

      -- paused for 1.5 s: a timed-out command whose reply stays away for
      -- another commandTimeout means the connection is broken
      blocker:client("pause", 1500, "all")
      sleep(20)
      print("PAUSED", db:get("k"))
      sleep(1600)
      print("AFTER", (db:get("k")), db:stats().connections >= 2)
      blocker:quit()
    ]], "{ commandTimeout = 400 }"), { tostring(server.port) }))
    server:stop()
    assert.are.equal("nil\ttimeout\ttrue", line(out, "TIMEOUT"))
    assert.are.equal("ETIMEDOUT", line(out, "CB_TIMEOUT"))
    assert.are.equal("OK\tsecond\t1", line(out, "NEXT"))
    assert.are.equal("nil\ttimeout", line(out, "PAUSED"))
    assert.is_truthy(out:find("ERROR\tETIMEDOUT\t127.0.0.1:" .. server.port .. ": no reply for too long", 1, true), out)
    assert.are.equal("value of k\ttrue", line(out, "AFTER"))
  end)

  it("reports a wrong password once and retries slowly, without a reconnect storm", function()
    local server = rs.start({ "--requirepass", "secret" })
    local before = nil
    server.password = "secret"
    before = server:info("total_connections_received")
    local out = finish(lc.run(app([[
      print("BAD", db:get("k"))
      db:get("k", function(err) print("BAD_CB", err.code) end)
      sleep(1000)
      local good = redis.createClient({ port = PORT, password = "secret" })
      print("GOOD", good:set("k", "v"))
      good:acl("setuser", "alice", "on", ">pw", "~*", "+@all")
      local alice = redis.createClient("redis://alice:pw@127.0.0.1:" .. PORT .. "/0")
      print("ACL", (alice:acl("whoami")), (alice:get("k")))
      local anon = redis.createClient({ port = PORT })
      print("NOAUTH", anon:get("k"))
      for _, c in ipairs({ good, alice, anon }) do c:quit() end
      db:disconnect()
    ]], "{ password = 'wrong', retryDelay = 50, maxRetryDelay = 300 }"),
      { tostring(server.port) }))
    local attempts = server:info("total_connections_received") - before
    server:stop()
    local wrongpass = "WRONGPASS invalid username-password pair or user is disabled."
    assert.are.equal("nil\t" .. wrongpass, line(out, "BAD"))
    assert.are.equal("WRONGPASS", line(out, "BAD_CB"))
    assert.are.equal(1, count(out, "ERROR"))
    assert.are.equal("WRONGPASS\t" .. wrongpass, line(out, "ERROR"))
    -- about 1 s at one attempt per 300 ms, and three good clients
    assert.is_true(attempts <= 10, "connections: " .. attempts)
    assert.are.equal("OK\tnil", line(out, "GOOD"))
    assert.are.equal("alice\tv", line(out, "ACL"))
    assert.are.equal("nil\tNOAUTH Authentication required.", line(out, "NOAUTH"))
  end)

  it("looks names up through the loop, and says when one does not resolve", function()
    local server = rs.start()
    local out = finish(lc.run(app([[
      print("LOCALHOST", db:ping())
      local lost = redis.createClient({ host = "no-such-host.invalid", commandTimeout = 200 })
      lost:on("error", function(err) print("DNS_ERROR", err.code, err.message) end)
      print("LOST", lost:get("k"))
      lost:disconnect()
    ]], "{ host = 'localhost' }"), { tostring(server.port) }))
    server:stop()
    assert.are.equal("PONG\tnil", line(out, "LOCALHOST"))
    assert.are.equal("ENOTFOUND\tgetaddrinfo ENOTFOUND no-such-host.invalid", line(out, "DNS_ERROR"))
    assert.are.equal("nil\tno-such-host.invalid could not be resolved (ENOTFOUND)", line(out, "LOST"))
  end)
end)
