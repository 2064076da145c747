-- apps/sessions.lua: two masters (two luacluster processes, as two hosts
-- would run), two workers each, one redis-server: a login on one worker is
-- known to all four.
local lc = require("lc")
local rs = require("redis_server")
local cjson = require("cjson")

describe("apps/sessions.lua", function()
  local server

  before_each(function() server = rs.start() end)
  after_each(function() server:stop() lc.cleanup() end)

  local function host(name)
    local p = lc.start({ "-w", "2", lc.source .. "/apps/sessions.lua" }, { env = {
      PORT = 0, HOST_NAME = name, REDIS_URL = "redis://127.0.0.1:" .. server.port .. "/0" } })
    local port = tonumber(p:wait_for("sessions listening on (%d+)", 10000))
    lc.wait_until(function() return p:count("sessions listening on") == 2 end, 10000, "two workers")
    return port
  end

  local function call(port, method, path, cookie)
    local res = assert(lc.http(port, method, path, { headers = { Cookie = cookie } }))
    return res, cjson.decode(res.body)
  end

  it("logs in on one worker of one host and is recognised by every worker of both", function()
    local a, b = host("host-a"), host("host-b")
    local res, body = call(a, "POST", "/login?user=alice")
    assert.are.equal(200, res.status)
    local cookie = res.headers["set-cookie"]:match("^(sid=%x+);")
    assert.is_truthy(cookie)
    local seen = {}
    for _ = 1, 40 do
      for _, port in ipairs({ a, b }) do
        local r, me = call(port, "GET", "/me", cookie)
        assert.are.equal(200, r.status)
        assert.are.equal("alice", me.user)
        seen[me.served_by.host .. "/" .. me.served_by.worker] = true
      end
      if seen["host-a/1"] and seen["host-a/2"] and seen["host-b/1"] and seen["host-b/2"] then break end
    end
    assert.are.same({ ["host-a/1"] = true, ["host-a/2"] = true, ["host-b/1"] = true,
                      ["host-b/2"] = true }, seen)
    -- the session is in Redis, with its expiry
    local sid = cookie:match("sid=(%x+)")
    assert.is_truthy(server:cli("GET", "session:" .. sid):find('"user":"alice"', 1, true))
    assert.is_true(tonumber(server:cli("TTL", "session:" .. sid)) > 3000)
    -- a stranger, and a logout on the other host
    assert.are.equal(401, (call(b, "GET", "/me", "sid=0123abcd")).status)
    assert.are.equal(401, (call(a, "GET", "/me")).status)
    assert.are.equal(200, (call(b, "POST", "/logout", cookie)).status)
    assert.are.equal(401, (call(a, "GET", "/me", cookie)).status)
    assert.are.equal(400, (call(a, "POST", "/login")).status)
  end)
end)
