-- require("redis") pub/sub: subscribe and psubscribe on a client of their
-- own, messages as events, unsubscribing, renewal after redis-server
-- restarts, and a subscriber that keeps its process alive.
local lc = require("lc")
local rs = require("redis_server")

local line = lc.field

local function app(body)
  return [[
local redis = require("redis")
local PORT = tonumber(arg[1])
local db = redis.createClient({ port = PORT, retryDelay = 20, maxRetryDelay = 100 })
local sub = db:duplicate()
local got = {}
sub:on("message", function(channel, message) got[#got + 1] = channel .. "=" .. message end)
sub:on("pmessage", function(pattern, channel, message)
  got[#got + 1] = pattern .. ":" .. channel .. "=" .. message
end)
local function wait_for(n)
  for _ = 1, 400 do if #got >= n then return true end sleep(5) end
end
setTimeout(function()
]] .. body .. [[

  process.exit(0)
end, 1)
]]
end

describe("redis pub/sub", function()
  local server

  before_each(function() server = rs.start() end)
  after_each(function() server:stop() lc.cleanup() end)

  it("delivers messages and pattern messages, and stops after unsubscribing", function()
    local p = lc.run(app([[
      print("SUB", sub:subscribe("news", "sport"))
      print("PSUB", sub:psubscribe("price.*"))
      print("RECEIVERS", db:publish("news", "hello"), db:publish("price.eur", "1.1"),
            (db:publish("weather", "rain")))
      db:publish("sport", "goal")
      wait_for(3)
      print("GOT", table.concat(got, ","))
      print("UNSUB", sub:unsubscribe("news"))
      db:publish("news", "unheard")
      db:publish("sport", "heard")
      wait_for(4)
      print("GOT2", table.concat(got, ",", 4))
      sub:subscribe("cb", function(err, n) print("CB", err, n) end)
      print("ALL", sub:unsubscribe(), sub:punsubscribe())
      local ok, err = pcall(sub.subscribe, sub)
      print("REFUSED", ok, err)
    ]]), { tostring(server.port) })
    assert.are.equal(0, p:wait_exit(15000), p:output())
    local out = p:output()
    assert.are.equal("2\tnil", line(out, "SUB"))
    assert.are.equal("3\tnil", line(out, "PSUB"))
    assert.are.equal("1\t1\t0", line(out, "RECEIVERS"))
    assert.are.equal("news=hello,price.*:price.eur=1.1,sport=goal", line(out, "GOT"))
    assert.are.equal("2\tnil", line(out, "UNSUB"))
    assert.are.equal("sport=heard", line(out, "GOT2"))
    assert.are.equal("nil\t3", line(out, "CB"))
    assert.are.equal("1\t0\tnil", line(out, "ALL"))
    assert.is_truthy(line(out, "REFUSED"):match("^false\t.*subscribe needs at least one channel"))
  end)

  it("renews the subscriptions after redis-server is killed and started again", function()
    local p = lc.run(app([[
      sub:subscribe("a")
      sub:psubscribe("b.*")
      db:publish("a", "1")
      wait_for(1)
      print("KILL_NOW")
      while sub.connected do sleep(5) end
      while not sub.ready do sleep(5) end
      -- renewed before the commands that waited: publish until heard
      for i = 1, 200 do
        if db:publish("a", "2") == 1 and db:publish("b.x", "3") == 1 then break end
        sleep(10)
      end
      wait_for(3)
      print("GOT", table.concat(got, ","))
    ]]), { tostring(server.port) })
    p:wait_for("KILL_NOW")
    server:kill()
    server:restart()
    assert.are.equal(0, p:wait_exit(15000), p:output())
    assert.are.equal("a=1,a=2,b.*:b.x=3", line(p:output(), "GOT"))
  end)

  it("keeps a subscribed process alive until it unsubscribes", function()
    local p = lc.run([[
      local redis = require("redis")
      local sub = redis.createClient({ port = tonumber(arg[1]) })
      sub:on("message", function(channel, message)
        print("MESSAGE", channel, message)
        if message == "last" then sub:unsubscribe() end
      end)
      sub:subscribe("ch", function() print("SUBSCRIBED") end)
    ]], { tostring(server.port) })
    p:wait_for("SUBSCRIBED")
    server:cli("PUBLISH", "ch", "first")
    p:wait_for("MESSAGE\tch\tfirst")
    assert.is_false(p:poll())
    server:cli("PUBLISH", "ch", "last")
    assert.are.equal(0, p:wait_exit(5000))
  end)
end)
