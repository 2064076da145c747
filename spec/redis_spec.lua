-- require("redis") against a real redis-server: replies mapped to Lua,
-- both call styles, one write per loop iteration, arguments, limits,
-- transactions, duplicate().
local lc = require("lc")
local rs = require("redis_server")

local line = lc.field

-- Runs body in a timer callback (a coroutine) with redis, db (a client of
-- server, options opts) and PORT in scope; the app exits 0 at its end.
local function run(server, body, opts, timeout)
  local src = [[
local redis = require("redis")
local PORT = tonumber(arg[1])
local opts = ]] .. (opts or "{}") .. [[

opts.port = opts.port or PORT
local db = redis.createClient(opts)
setTimeout(function()
]] .. body .. [[

  process.exit(0)
end, 1)
]]
  local p = lc.run(src, { tostring(server.port) })
  local code = p:wait_exit(timeout or 20000)
  local out = p:output()
  assert.are.equal(0, code, out)
  return out
end

describe("redis", function()
  local server

  setup(function() server = rs.start() end)
  teardown(function() server:stop() lc.cleanup() end)
  before_each(function() server:cli("FLUSHALL") end)

  it("maps every reply type to Lua", function()
    local out = run(server, [[
      print("STATUS", db:set("k", "v"))
      print("BULK", db:get("k"))
      print("NIL", db:get("absent"))
      print("INT", db:incrby("n", 41), type(db:incr("n")))
      print("EMPTY", #db:lrange("absent", 0, -1))
      local nested = db:eval("return {1, {2, 'x', {'deep'}}, false, 'y'}", 0)
      print("NESTED", #nested, nested[1], nested[2][2], nested[2][3][1],
            nested[3] == redis.null, nested[4])
      print("ERROR", db:hget("k", "f"))
      local e = db:eval("return {1, redis.error_reply('MY fault')}", 0)
      print("NESTED_ERR", e[2].code, e[2].message, tostring(e[2]))
      local bin = "a\0b\r\nc"
      db:set("bin", bin)
      print("BINARY", db:get("bin") == bin, #db:get("bin"))
      print("STATUS_ARRAY", db:eval("return {redis.status_reply('FINE')}", 0)[1])
    ]])
    assert.are.equal("OK\tnil", line(out, "STATUS"))
    assert.are.equal("v\tnil", line(out, "BULK"))
    assert.are.equal("nil\tnil", line(out, "NIL"))
    assert.are.equal("41\tnumber", line(out, "INT"))
    assert.are.equal("0", line(out, "EMPTY"))
    assert.are.equal("4\t1\tx\tdeep\ttrue\ty", line(out, "NESTED"))
    assert.are.equal("nil\tWRONGTYPE Operation against a key holding the wrong kind of value",
                     line(out, "ERROR"))
    assert.are.equal("MY\tMY fault\tMY fault", line(out, "NESTED_ERR"))
    assert.are.equal("true\t6", line(out, "BINARY"))
    assert.are.equal("FINE", line(out, "STATUS_ARRAY"))
  end)

  it("waits in a coroutine, or calls back fn(err, value) in one", function()
    local out = run(server, [[
      db:set("k", "v")
      local done = 0
      db:get("k", function(err, v)
        -- the callback runs in a coroutine of its own: it may wait too
        print("CB", err, v, (db:incr("in-callback")))
        done = done + 1
      end)
      db:hget("k", "f", function(err, v)
        print("CBERR", err.code, err.message, v)
        done = done + 1
      end)
      while done < 2 do sleep(5) end
      local ok, e = pcall(function() return db.get end)
      print("METHOD", ok, type(e))
    ]])
    assert.are.equal("nil\tv\t1", line(out, "CB"))
    assert.are.equal("WRONGTYPE\tWRONGTYPE Operation against a key holding the wrong kind of value\tnil",
                     line(out, "CBERR"))
    assert.are.equal("true\tfunction", line(out, "METHOD"))
  end)

  it("raises an error that says so when called without a callback outside a coroutine", function()
    local p = lc.run([[
      local db = require("redis").createClient({ port = tonumber(arg[1]) })
      local ok, err = pcall(db.get, db, "k")
      print("MAIN", ok, err)
      db:quit()
    ]], { tostring(server.port) })
    assert.are.equal(0, p:wait_exit(10000))
    assert.is_truthy(line(p:output(), "MAIN"):match("^false\t.*must run inside a coroutine"))
  end)

  it("sends what one loop iteration issued in one write, answering in order", function()
    local out = run(server, [[
      db:ping()
      local before = db:stats()
      local got, n = {}, 5000
      for i = 1, n do
        db:incr("counter", function(err, v) got[#got + 1] = v end)
      end
      while #got < n do sleep(5) end
      local after = db:stats()
      local in_order = true
      for i = 1, n do if got[i] ~= i then in_order = false end end
      print("BURST", after.writes - before.writes, after.commands - before.commands, in_order)

      -- many coroutines at once, each waiting for each of its replies
      local finished, wrong = 0, 0
      for c = 1, 200 do
        setImmediate(function()
          for i = 1, 20 do
            if db:incr("co:" .. c) ~= i then wrong = wrong + 1 end
            db:rpush("log:" .. c, i)
          end
          finished = finished + 1
        end)
      end
      while finished < 200 do sleep(5) end
      local ordered = true
      for c = 1, 200, 37 do
        local l = db:lrange("log:" .. c, 0, -1)
        for i = 1, 20 do if tonumber(l[i]) ~= i then ordered = false end end
      end
      local s = db:stats()
      print("CONCURRENT", wrong, ordered, s.connections, s.commands / s.writes > 10)
    ]])
    assert.are.equal("1\t5000\ttrue", line(out, "BURST"))
    assert.are.equal("0\ttrue\t1\ttrue", line(out, "CONCURRENT"))
  end)

  it("spreads tables into arguments and refuses what cannot be sent", function()
    local out = run(server, [[
      db:rpush("l", { "a", "b" }, "c", { 1, 2.5 })
      print("LIST", table.concat(db:lrange("l", 0, -1), ","))
      db:hset("h", { f = "v", n = 7 })
      local h = db:hgetall("h")
      print("MAP", h.f, h.n)
      db:set("x", 0.1)
      print("FLOAT", db:get("x"), db:set("y", 2^53 + 2), (db:get("y")))
      db:zadd("z", math.huge, "top", -math.huge, "bottom")
      print("INF", table.concat(db:zrange("z", 0, -1), ","))
      local function try(...)
        local ok, err = pcall(...)
        return (tostring(err):gsub("^.-:%d+: ", ""))
      end
      print("NAN", try(db.set, db, "k", 0 / 0))
      print("NESTED", try(db.set, db, "k", { { 1 } }))
      print("BOOL", try(db.set, db, "k", true))
      print("NIL", try(db.set, db, "k", nil, "EX"))
      print("FN", try(db.set, db, print, "v"))
      print("AFTER", (db:get("k")), (db:ping()))
    ]])
    assert.are.equal("a,b,c,1,2.5", line(out, "LIST"))
    assert.are.equal("v\t7", line(out, "MAP"))
    assert.are.equal("0.1\tOK\t9007199254740994", line(out, "FLOAT"))
    assert.are.equal("bottom,top", line(out, "INF"))
    assert.are.equal("bad argument #2 to 'set' (NaN cannot be sent to Redis)", line(out, "NAN"))
    assert.are.equal("bad argument #2 to 'set' (a nested table cannot be sent to Redis)", line(out, "NESTED"))
    assert.are.equal("bad argument #2 to 'set' (string or number expected, got boolean)", line(out, "BOOL"))
    assert.are.equal("bad argument #2 to 'set' (string or number expected, got nil)", line(out, "NIL"))
    assert.are.equal("bad argument #1 to 'set' (string or number expected, got function)", line(out, "FN"))
    assert.are.equal("nil\tPONG", line(out, "AFTER"))
  end)

  it("fails a reply over maxReplySize, replaces the connection and goes on", function()
    local out = run(server, [[
      db:on("error", function(err) print("EVENT", err.code, err.message) end)
      db:set("big", string.rep("x", 5000))
      db:set("small", "fine")
      local v, err = db:get("big")
      print("BIG", v, err)
      print("NEXT", (db:get("small")), db:stats().connections)
      db:get("big", function(e) print("CODE", e.code) end)
      sleep(50)
    ]], "{ maxReplySize = 1000 }")
    assert.are.equal("nil\treply too large", line(out, "BIG"))
    assert.are.equal("fine\t2", line(out, "NEXT"))
    assert.are.equal("ERR_REPLY_TOO_LARGE", line(out, "CODE"))
    assert.is_truthy(line(out, "EVENT"):match("^ERR_REPLY_TOO_LARGE\t127%.0%.0%.1:%d+: a reply over maxReplySize$"))
    -- one event per reply refused (the second GET of "big" below too)
    assert.are.equal(2, select(2, out:gsub("EVENT\t", "")))
  end)

  it("runs transactions whole: exec's replies, errors inside, EXECABORT, WATCH", function()
    local out = run(server, [[
      db:set("s", "text")
      local r = db:multi():set("a", 1):incr("a"):hset("h", "f", "v"):hgetall("h"):incr("s"):exec()
      print("EXEC", r[1], r[2], r[3], r[4].f, r[5].code)
      local t = db:multi()
      t:set("b", 1)
      t:nosuchcommand()
      print("ABORT", t:exec())
      print("UNTOUCHED", db:get("b"))
      -- WATCH is per connection: a client of its own
      local tx = db:duplicate()
      tx:watch("w")
      db:set("w", "changed by someone else")
      print("WATCHED", tx:multi():set("w", "mine"):exec())
      print("W", db:get("w"))
      tx:watch("w")
      print("UNCHANGED", tx:multi():set("w", "mine"):exec()[1], (db:get("w")))
      tx:multi():get("w"):exec(function(err, res) print("CB", err, res[1]) end)
      sleep(50)
      tx:quit()
    ]])
    assert.are.equal("OK\t2\t1\tv\tERR", line(out, "EXEC"))
    assert.is_truthy(line(out, "ABORT"):match("^nil\tEXECABORT"))
    assert.are.equal("nil\tnil", line(out, "UNTOUCHED"))
    assert.are.equal("nil\tnil", line(out, "WATCHED"))
    assert.are.equal("changed by someone else\tnil", line(out, "W"))
    assert.are.equal("OK\tmine", line(out, "UNCHANGED"))
    assert.are.equal("nil\tmine", line(out, "CB"))
  end)

  it("selects the database and names the connection from its options", function()
    local out = run(server, [[
      db:set("where", "db0")
      local other = db:duplicate({ db = 3, name = "worker-a" })
      print("DB3", other:get("where"), other:set("where", "db3"), (db:get("where")))
      print("NAME", (other:client("getname")))
      local byurl = redis.createClient({ url = "redis://127.0.0.1:" .. PORT .. "/3" })
      print("URL", (byurl:get("where")))
      local bad = pcall(redis.createClient, "rediss://127.0.0.1:1")
      local ok, err = pcall(redis.createClient, "http://x")
      print("BADURL", bad, (tostring(err):gsub("^.-:%d+: ", "")))
      other:quit()
      byurl:quit()
    ]])
    assert.are.equal("nil\tOK\tdb0", line(out, "DB3"))
    assert.are.equal("worker-a", line(out, "NAME"))
    assert.are.equal("db3", line(out, "URL"))
    assert.are.equal("false\ta Redis url looks like redis://[user:password@]host[:port][/db], got http://x",
                     line(out, "BADURL"))
  end)

  it("fails the commands of a client that quit or was closed", function()
    local out = run(server, [[
      local c = redis.createClient({ port = PORT })
      print("BEFORE", c:ping())
      c:quit()
      print("AFTER_QUIT", c:ping())
      local d = redis.createClient({ port = PORT })
      d:ping()
      local pending = {}
      d:debug("sleep", 0.2, function(err) pending[1] = err and err.code end)
      d:disconnect()
      sleep(20)
      print("CLOSED", pending[1], d:ping())
      d:get("k", function(err) print("LATE", err.code, err.message) end)
      sleep(20)
    ]])
    assert.are.equal("PONG\tnil", line(out, "BEFORE"))
    assert.are.equal("nil\tclient closed", line(out, "AFTER_QUIT"))
    assert.are.equal("ERR_CLIENT_CLOSED\tnil\tclient closed", line(out, "CLOSED"))
    assert.are.equal("ERR_CLIENT_CLOSED\tclient closed", line(out, "LATE"))
  end)

  it("keeps the process alive only while it has work", function()
    -- No quit: the app ends once its last reply came.
    local p = lc.run([[
      local db = require("redis").createClient({ port = tonumber(arg[1]) })
      db:set("k", "v", function(err, ok) print("SET", err, ok) end)
      process.on("exit", function() print("EXIT", db.ready) end)
    ]], { tostring(server.port) })
    assert.are.equal(0, p:wait_exit(10000))
    assert.are.equal("nil\tOK", line(p:output(), "SET"))
    assert.are.equal("true", line(p:output(), "EXIT"))
  end)
end)
