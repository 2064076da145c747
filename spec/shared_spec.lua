-- The shared dict's Lua API (lua/shared.lua) in one process: OpenResty's
-- ngx.shared.DICT names, returns and error strings, tables, TTLs, LRU
-- eviction, lists, cas, get_keys; declaring dicts with --shared and
-- shared.define. Several processes: shared_cluster_spec.lua; crashes:
-- shared_crash_spec.lua.
local lc = require("lc")
local cjson = require("cjson")

-- Runs body as an app with `shared`, `d` (shared.d), a table R and S(...),
-- which turns results into one string ("nil not found"); returns R as the
-- app left it. The app runs under `luacluster --shared d=SIZE` (1m unless
-- said).
local PRELUDE = [[
local cjson = require('cjson')
local shared = require('shared')
local d = rawget(shared, 'd')
local R = {}
local function S(...)
  local t = {}
  for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end
  return table.concat(t, ' ')
end
]]

local function run(body, flags, bin)
  local app = lc.write_app(PRELUDE .. body ..
                           "\nif not R.later then print('RESULT ' .. cjson.encode(R)) end\n")
  local argv = { bin or lc.bin }
  for _, f in ipairs(flags or { "--shared", "d=1m" }) do argv[#argv + 1] = f end
  argv[#argv + 1] = app
  local p = lc.spawn(argv)
  local line = p:wait_for("RESULT ([^\n]*)\n", 20000)
  assert.are.equal(0, p:wait_exit(10000), p:output())
  return cjson.decode(line), p
end

describe("shared dicts: values", function()
  after_each(lc.cleanup)

  it("keeps strings, numbers, booleans and tables, with their flags", function()
    local r = run([[
      R.set = S(d:set("s", "hello"))
      R.s = S(d:get("s"))
      d:set("n", 1.5, 0, 7)
      R.n = S(d:get("n"))
      d:set("yes", true) d:set("no", false)
      R.bools = S(d:get("yes"), d:get("no"))
      d:set("t", { name = "ann", roles = { "admin", "dev" }, deep = { a = { b = { c = 42 } } },
                   [10] = true, n = 1 / 3 }, 0, 4294967295)
      local t, flags = d:get("t")
      R.t = S(t.name, t.roles[1], t.roles[2], #t.roles, t.deep.a.b.c, t[10], t.n == 1 / 3, flags)
      R.fresh = S(d:get("t") ~= d:get("t"))
      R.empty = S(d:set("e", ""), d:get("e") == "", d:set("et", {}), next(d:get("et")))
      R.binary = S(d:set("b", "a\0b\255"), d:get("b") == "a\0b\255")
      R.numkey = S(d:set(42, "answer"), d:get("42"), d:get(42))
      R.missing = S(d:get("nope"))
      R.delete = S(d:delete("s"), d:get("s"), d:delete("s"))
      R.set_nil = S(d:set("n", nil), d:get("n"))
    ]])
    assert.are.equal("true nil false", r.set)
    assert.are.equal("hello", r.s)
    assert.are.equal("1.5 7", r.n)
    assert.are.equal("true false", r.bools)
    assert.are.equal("ann admin dev 2 42 true true 4294967295", r.t)
    assert.are.equal("true", r.fresh) -- each get decodes a new table
    assert.are.equal("true true true nil", r.empty)
    assert.are.equal("true true", r.binary)
    assert.are.equal("true answer answer", r.numkey)
    assert.are.equal("nil", r.missing)
    assert.are.equal("true nil true nil false", r.delete)
    assert.are.equal("true nil", r.set_nil)
  end)

  it("round-trips 1 MiB values, strings and tables, and refuses what no segment holds", function()
    -- 64m: 16 segments of 4 MiB; a value lives in one segment.
    local r = run([[
      local big = string.rep("0123456789abcdef", 65536)
      R.size = #big
      R.set = S(d:set("big", big))
      R.same = d:get("big") == big
      local t = { payload = big, list = {} }
      for i = 1, 1000 do t.list[i] = { i = i, s = tostring(i) } end
      R.tset = S(d:set("bigt", t))
      local u = d:get("bigt")
      R.tsame = u.payload == big and #u.list == 1000 and u.list[777].s == "777"
      R.huge = S(d:set("huge", string.rep("x", 5 * 1048576)))
      R.hugelist = S(d:rpush("hl", string.rep("x", 5 * 1048576)))
      R.after = S(d:get("huge"), d:get("big") == big)
      local key = string.rep("k", 65535)
      R.max_key = S(d:set(key, 1), d:get(key))
    ]], { "--shared", "d=64m" })
    assert.are.equal(1048576, r.size)
    assert.are.equal("true nil false", r.set)
    assert.is_true(r.same)
    assert.are.equal("true nil false", r.tset)
    assert.is_true(r.tsame)
    assert.are.equal("false value too large false", r.huge)
    assert.are.equal("nil value too large", r.hugelist)
    assert.are.equal("nil true", r.after)
    assert.are.equal("true 1", r.max_key)
  end)

  it("answers OpenResty's error strings, and raises where OpenResty raises", function()
    local r = run([[
      R.nil_key = S(d:get(nil)) .. "|" .. S(d:set(nil, 1)) .. "|" .. S(d:incr(nil, 1))
      R.empty_key = S(d:get("")) .. "|" .. S(d:set("", 1)) .. "|" .. S(d:lpush("", 1))
      local long = string.rep("k", 65536)
      R.long_key = S(d:get(long)) .. "|" .. S(d:set(long, 1)) .. "|" .. S(d:ttl(long))
      R.bad_type = S(d:set("f", print)) .. "|" .. S(d:set("u", io.stdout)) .. "|" ..
                   S(d:set("c", coroutine.create(print))) .. "|" .. S(d:lpush("l", print))
      R.nested_fn = S(d:set("nf", { ok = 1, fn = print }))
      R.nested_ud = S(d:set("nu", { { io.stdout } }))
      local cycle = {} cycle.self = cycle
      R.cycle = S(d:set("cy", cycle))
      R.unset = S(d:get("nf"), d:get("cy"))
      d:set("x", 1)
      R.add = S(d:add("x", 2)) .. "|" .. S(d:safe_add("x", 2)) .. "|" .. S(d:add("new", 2))
      R.add_nil = S(d:add("y", nil)) .. "|" .. S(d:replace("x", nil))
      R.replace = S(d:replace("nope", 1)) .. "|" .. S(d:replace("x", 3), d:get("x"))
      d:set("str", "abc")
      R.incr = S(d:incr("str", 1)) .. "|" .. S(d:incr("none", 1)) .. "|" ..
               S(d:incr("x", 2)) .. "|" .. S(d:incr("x", "0.5")) .. "|" .. S(d:incr("i", 1, 10))
      R.incr_init_ttl = S(d:incr("it", 5, 0, 100), d:ttl("it") > 99 and d:ttl("it") <= 100)
      R.ttl = S(d:ttl("none")) .. "|" .. S(d:expire("none", 1)) .. "|" .. S(d:ttl("x"))
      d:rpush("list", 1)
      R.list = S(d:get("list")) .. "|" .. S(d:lpush("str", 1)) .. "|" .. S(d:llen("str")) ..
               "|" .. S(d:lpop("str")) .. "|" .. S(d:incr("list", 1))
      local function raises(f) local ok, e = pcall(f) return ok and "no error" or e end
      R.raise = {
        exptime = raises(function() d:set("k", 1, -1) end),
        exptime_type = raises(function() d:set("k", 1, "soon") end),
        exptime_nan = raises(function() d:set("k", 1, 0 / 0) end),
        flags = raises(function() d:set("k", 1, 0, -1) end),
        flags_frac = raises(function() d:set("k", 1, 0, 1.5) end),
        zone = raises(function() d.get("k") end),
        incr_value = raises(function() d:incr("k", "x") end),
        init = raises(function() d:incr("k", 1, {}) end),
        init_ttl = raises(function() d:incr("k", 1, 0, -1) end),
        init_ttl_alone = raises(function() d:incr("k", 1, nil, 10) end),
        expire_nil = raises(function() d:expire("x") end),
        expire_neg = raises(function() d:expire("x", -5) end),
        keys = raises(function() d:get_keys(-1) end),
        unknown = raises(function() return shared.nope end),
        define_name = raises(function() shared.define(7, "1m") end),
        define_size = raises(function() shared.define("q", "lots") end),
      }
    ]])
    assert.are.equal("nil nil key|nil nil key|nil nil key", r.nil_key)
    assert.are.equal("nil empty key|nil empty key|nil empty key", r.empty_key)
    assert.are.equal("nil key too long|nil key too long|nil key too long", r.long_key)
    assert.are.equal("nil bad value type|nil bad value type|nil bad value type|nil bad value type",
                     r.bad_type)
    assert.are.equal("nil bad value type (cannot serialize 'function')", r.nested_fn)
    assert.are.equal("nil bad value type (cannot serialize 'userdata')", r.nested_ud)
    assert.are.equal("nil bad value type (a cycle, or tables nested too deep)", r.cycle)
    assert.are.equal("nil nil", r.unset)
    assert.are.equal("false exists false|false exists false|true nil false", r.add)
    assert.are.equal("false attempt to add or replace nil values false|" ..
                     "false attempt to add or replace nil values false", r.add_nil)
    assert.are.equal("false not found false|true 3", r.replace)
    assert.are.equal("nil not a number|nil not found|5|5.5|11 nil false", r.incr)
    assert.are.equal("5 true", r.incr_init_ttl)
    assert.are.equal("nil not found|nil not found|0", r.ttl)
    assert.are.equal("nil value is a list|nil value not a list|nil value not a list|" ..
                     "nil value not a list|nil not a number", r.list)
    local e = r.raise
    assert.matches('app%.lua:%d+: bad "exptime" argument$', e.exptime)
    assert.matches('bad "exptime" argument$', e.exptime_type)
    assert.matches('bad "exptime" argument$', e.exptime_nan)
    assert.matches('app%.lua:%d+: bad "flags" argument$', e.flags)
    assert.matches('bad "flags" argument$', e.flags_frac)
    assert.matches('app%.lua:%d+: bad "zone" argument$', e.zone)
    assert.matches("app%.lua:%d+: bad value arg: number expected, got string$", e.incr_value)
    assert.matches("bad init arg: number expected, got table$", e.init)
    assert.matches('bad "init_ttl" argument$', e.init_ttl)
    assert.matches('must provide "init" when providing "init_ttl"$', e.init_ttl_alone)
    assert.matches('bad "exptime" argument$', e.expire_nil)
    assert.matches('bad "exptime" argument$', e.expire_neg)
    assert.matches('bad "max_count" argument$', e.keys)
    assert.matches('app%.lua:%d+: no shared dict "nope" %(defined: d%)$', e.unknown)
    assert.matches("shared%.define: bad name %(a string expected, got number%)$", e.define_name)
    assert.matches('shared%.define: bad size lots %(bytes, or a string like "64m"%)$', e.define_size)
  end)

  it("names the dicts that exist when an unknown one is asked for", function()
    local r = run([[
      local ok, err = pcall(function() return shared.cahce end)
      R.err = err
      R.rawget = S(rawget(shared, "cahce"))
      local names = {}
      for name, dict in pairs(shared) do names[#names + 1] = name .. "=" .. tostring(dict) end
      table.sort(names)
      R.names = table.concat(names, " ")
    ]], { "--shared", "cache=1m", "--shared", "hits=64k", "--shared", "d=1m" })
    assert.matches('no shared dict "cahce" %(defined: cache, hits, d%)$', r.err)
    assert.are.equal("nil", r.rawget)
    assert.are.equal("cache=shared dict: cache d=shared dict: d hits=shared dict: hits", r.names)
    local none = run([[
      local ok, err = pcall(function() return shared.cache end)
      R.err = err
    ]], {})
    assert.matches('no shared dict "cache" %(defined: none; declare one with %-%-shared NAME=SIZE%)$',
                   none.err)
  end)
end)

describe("shared dicts: time", function()
  after_each(lc.cleanup)

  it("expires values after their exptime (seconds, with milliseconds), and get_stale still sees them", function()
    local r = run([[
      R.later = true
      local t0 = process.hrtimeNs()
      d:set("short", "v", 0.15)
      d:set("long", "w", 60)
      d:set("never", "x")
      d:set("tiny", "y", 0.0001) -- under a millisecond: still expires
      R.ttl = S(d:ttl("short") > 0.1 and d:ttl("short") <= 0.15, d:ttl("long") > 59, d:ttl("never"))
      R.before = S(d:get("short"))
      local function poll()
        if d:get("short") ~= nil then return setTimeout(poll, 5) end
        R.after_ms = (process.hrtimeNs() - t0) / 1e6
        R.after = S(d:get("short"), d:ttl("short"), d:get("tiny"))
        R.stale = S(d:get_stale("short"))
        R.long = S(d:get("long"), d:get("never"))
        R.keys = table.concat((function() local k = d:get_keys(0) table.sort(k) return k end)(), ",")
        R.flushed = d:flush_expired()
        R.stale_after_flush = S(d:get_stale("short"))
        R.expire = S(d:expire("long", 0.05), d:ttl("long") <= 0.05, d:expire("never", 0), d:ttl("never"))
        setTimeout(function()
          R.expired_by_expire = S(d:get("long"))
          d:flush_all()
          R.flush_all = S(d:get("never"), d:get_stale("never"), #d:get_keys())
          print("RESULT " .. cjson.encode(R))
        end, 80)
      end
      poll()
    ]])
    assert.are.equal("true true 0", r.ttl)
    assert.are.equal("v", r.before)
    assert.is_true(r.after_ms >= 149, "expired early: " .. r.after_ms)
    assert.are.equal("nil nil nil", r.after)
    assert.are.equal("v nil true", r.stale)
    assert.are.equal("w x", r.long)
    assert.are.equal("long,never", r.keys)
    assert.are.equal(2, r.flushed) -- short and tiny
    assert.are.equal("nil", r.stale_after_flush)
    assert.are.equal("true true true 0", r.expire)
    assert.are.equal("nil", r.expired_by_expire)
    assert.are.equal("nil x 0", r.flush_all)
  end)
end)

describe("shared dicts: memory", function()
  after_each(lc.cleanup)

  it("evicts the least recently used entries when full, and says so (forcible)", function()
    -- 64k: one segment; 1 KiB values, so about 50 fit.
    local r = run([[
      local v = string.rep("v", 1024)
      R.capacity = d:capacity()
      R.free_before = d:free_space()
      local first_forcible
      for i = 1, 200 do
        if i % 10 == 0 then d:get("key1") end -- read again and again: kept
        local ok, err, forcible = d:set("key" .. i, v)
        assert(ok, err)
        if forcible and not first_forcible then first_forcible = i end
      end
      R.first_forcible = first_forcible
      R.key1 = S(d:get("key1") ~= nil)
      R.key2 = S(d:get("key2"))
      R.last = S(d:get("key200") == v)
      R.free_after = d:free_space()
      local count = #d:get_keys(0)
      R.count = count
      R.safe_set = S(d:safe_set("another", v))
      R.safe_add = S(d:safe_add("another", v))
      R.safe_replace = S(d:safe_set("key200", "short"), d:get("key200"))
      R.set_after = S(d:set("another", v .. v))
    ]], { "--shared", "d=64k" })
    assert.are.equal(65536, r.capacity)
    assert.is_true(r.free_before > 50000 and r.free_before < 65536, tostring(r.free_before))
    assert.is_number(r.first_forcible)
    assert.is_true(r.first_forcible > 30 and r.first_forcible < 65, tostring(r.first_forcible))
    assert.are.equal("true", r.key1)
    assert.are.equal("nil", r.key2)
    assert.are.equal("true", r.last)
    assert.is_true(r.free_after < 2048, tostring(r.free_after))
    assert.is_true(r.count > 30 and r.count < 65, tostring(r.count))
    assert.are.equal("false no memory false", r.safe_set)
    assert.are.equal("false no memory false", r.safe_add)
    assert.are.equal("true short", r.safe_replace)
    assert.are.equal("true nil true", r.set_after)
  end)
end)

describe("shared dicts: lists", function()
  after_each(lc.cleanup)

  it("pushes and pops at both ends, and a list goes when emptied", function()
    local r = run([[
      R.push = S(d:rpush("q", "a"), d:rpush("q", 2), d:lpush("q", "z"), d:rpush("q", { t = 1 }),
                 d:rpush("q", true))
      R.llen = S(d:llen("q"), d:llen("none"))
      local t = select(1, d:lpop("q"))
      R.pops = S(t, d:lpop("q"), d:rpop("q"), d:rpop("q").t, d:lpop("q"), d:lpop("q"))
      R.gone = S(d:get("q"), d:llen("q"), d:lpop("q"), #d:get_keys())
      for i = 1, 1000 do d:rpush("big", i) end
      local sum = 0
      while true do local v = d:lpop("big") if not v then break end sum = sum + v end
      R.sum = sum
      d:rpush("ttl", 1)
      R.list_ttl = S(d:expire("ttl", 10), d:ttl("ttl") > 9)
    ]])
    assert.are.equal("1 2 3 4 5", r.push)
    assert.are.equal("5 0", r.llen)
    assert.are.equal("z a true 1 2 nil", r.pops)
    assert.are.equal("nil 0 nil 0", r.gone)
    assert.are.equal(500500, r.sum)
    assert.are.equal("true true", r.list_ttl)
  end)
end)

describe("shared dicts: cas and get_keys", function()
  after_each(lc.cleanup)

  it("stores only over the value it was given (cas), tables from get included", function()
    local r = run([[
      d:set("n", 1)
      R.num = S(d:cas("n", 1, 2)) .. "|" .. S(d:cas("n", 1, 3)) .. "|" .. S(d:get("n"))
      R.absent = S(d:cas("new", nil, "first")) .. "|" .. S(d:cas("new", nil, "second")) ..
                 "|" .. S(d:get("new"))
      R.missing = S(d:cas("nope", 1, 2))
      R.delete = S(d:cas("new", "first", nil), d:get("new"))
      R.types = S(d:set("b", true), d:cas("b", 1, false)) .. "|" .. S(d:cas("b", true, "s"), d:get("b"))
      d:set("t", { count = 0, items = { a = 1, b = 2, c = 3 } })
      for i = 1, 50 do
        local v = d:get("t")
        v.count = v.count + 1
        v.items["k" .. i] = i
        assert(d:cas("t", v, v))
      end
      local t = d:get("t")
      R.table_count = t.count
      local stale = d:get("t")
      d:cas("t", d:get("t"), { count = -1 })
      R.table_stale = S(select(2, d:cas("t", stale, { count = -2 })), d:get("t").count)
      local ok = d:cas("n", 2, 5, 30, 9)
      local v, flags = d:get("n")
      R.ttl_flags = S(ok, v, flags, d:ttl("n") > 29)
      R.bad = S(d:cas("n", 5, print))
    ]])
    assert.are.equal("true nil false|false changed false|2", r.num)
    assert.are.equal("true nil false|false changed false|first", r.absent)
    assert.are.equal("false not found false", r.missing)
    assert.are.equal("true nil", r.delete)
    assert.are.equal("true false changed false|true s", r.types)
    assert.are.equal(50, r.table_count)
    assert.are.equal("changed -1", r.table_stale)
    assert.are.equal("true 5 9 true", r.ttl_flags)
    assert.are.equal("nil bad value type", r.bad)
  end)

  it("lists live keys, 1024 unless told (0: all)", function()
    local r = run([[
      d:set("gone", 1, 0.001)
      for i = 1, 3000 do d:set("k" .. i, i) end
      while d:get("gone") do end
      local seen, all = {}, d:get_keys(0)
      for _, k in ipairs(all) do seen[k] = true end
      local complete = true
      for i = 1, 3000 do complete = complete and seen["k" .. i] == true end
      R.counts = S(#d:get_keys(), #d:get_keys(10), #all, complete)
    ]], { "--shared", "d=4m" })
    assert.are.equal("1024 10 3000 true", r.counts)
  end)
end)

describe("shared dicts: declaring", function()
  after_each(lc.cleanup)

  it("shared.define makes a dict in a script-mode master, which its workers share", function()
    local r = run([[
      local cluster = require("cluster")
      R.later = true
      if cluster.isWorker then
        local _, err = pcall(shared.define, "mine", "1m")
        shared.sessions:set("worker", "hi")
        process.send({ read = shared.sessions:get("from"), define = err })
        return
      end
      local s = shared.define("sessions", "256k")
      R.define = S(s, s:capacity(), rawget(shared, "sessions") == s)
      R.again = select(2, pcall(shared.define, "sessions", "1m"))
      R.bad = select(2, pcall(shared.define, "1st", "1m"))
      R.small = select(2, pcall(shared.define, "small", 1000))
      s:set("from", "master")
      local w = cluster.fork()
      R.after_fork = select(2, pcall(shared.define, "late", "1m"))
      w:on("message", function(msg)
        R.worker = msg
        R.seen = S(s:get("from"), s:get("worker"))
        print("RESULT " .. cjson.encode(R))
        w:disconnect()
      end)
    ]], {})
    assert.are.equal("shared dict: sessions 262144 true", r.define)
    assert.matches("shared%.define: shared dict sessions is defined already$", r.again)
    assert.matches('shared%.define: shared dict "1st": bad name', r.bad)
    assert.matches("shared%.define: shared dict small: size 1000 bytes is out of range %(32k to 128g%)$",
                   r.small)
    assert.matches("shared%.define: too late: shared dicts are defined before the first worker is forked",
                   r.after_fork)
    assert.are.equal("master hi", r.seen)
    -- the worker read the master's value, and cannot define one itself
    assert.are.equal("master", r.worker.read)
    assert.matches("only the master defines shared dicts", r.worker.define)
  end)
  it("refuses a bad --shared with a one-line error before anything starts", function()
    local app = lc.write_app("print('RAN')\n")
    local cases = {
      { { "--shared", "cache" }, '^luacluster: %-%-shared wants NAME=SIZE %(cache=64m; k, m or g%), got "cache"\n$' },
      { { "--shared" }, '^luacluster: %-%-shared wants NAME=SIZE %(cache=64m; k, m or g%), got ".*app%.lua"\n$' },
      { { "--shared", "cache=lots" }, 'got "cache=lots"\n$' },
      { { "--shared", "cache=64x" }, 'got "cache=64x"\n$' },
      { { "--shared", "cache=1k" }, "^luacluster: %-%-shared cache: a shared dict's size is from 32k to 128g, got 1024 bytes\n$" },
      { { "--shared", "cache=200g" }, "size is from 32k to 128g, got 214748364800 bytes\n$" },
      { { "--shared", "9lives=1m" }, '^luacluster: %-%-shared bad name "9lives" %(1 to 64 letters, digits, _ or %-, not starting with a digit or %-, not "define"%)\n$' },
      { { "--shared", "define=1m" }, 'bad name "define"' },
      { { "--shared", "a.b=1m" }, 'bad name "a.b"' },
      { { "--shared", ("x"):rep(65) .. "=1m" }, "bad name" },
    }
    for _, case in ipairs(cases) do
      local argv = {}
      for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
      argv[#argv + 1] = app
      local p, err = lc.start_split(argv)
      assert.are.equal(1, p:wait_exit(), table.concat(case[1], " "))
      assert.matches(case[2], err())
      assert.are.equal("", p:output())
    end
  end)

  it("takes --shared and a config file's shared = {...}: workers see both, a flag's size wins", function()
    local app, dir = lc.write_app([[
      local shared = require("shared")
      local names = {}
      for name, dict in pairs(shared) do names[#names + 1] = name .. "=" .. dict:capacity() end
      table.sort(names)
      print("DICTS " .. (require("cluster").isMaster and "master " or "worker ") .. table.concat(names, " "))
      if require("cluster").isMaster then require("cluster").fork() else process.exit(0) end
    ]])
    local conf = dir .. "/app.conf.lua"
    local f = assert(io.open(conf, "w"))
    f:write('return { app = "app.lua", shared = { cache = "1m", sessions = 65536 } }\n')
    f:close()
    local p = lc.start({ "start", "--shared", "cache=2m", "--shared", "extra=64k", conf })
    assert.are.equal("cache=2097152 extra=65536 sessions=65536", p:wait_for("DICTS master ([^\n]*)\n"))
    assert.are.equal("cache=2097152 extra=65536 sessions=65536", p:wait_for("DICTS worker ([^\n]*)\n"))
    assert.are.equal(0, p:wait_exit())
    local c, err = lc.start_split({ "check", conf })
    assert.are.equal(0, c:wait_exit(), err())
    assert.matches("ok %(app .*, script mode, shared dicts [a-z, ]+%)", c:output())
    -- a name given twice: the last size
    local q = lc.start({ "--shared", "cache=1m", "--shared", "cache=128k", app })
    assert.are.equal("cache=131072", q:wait_for("DICTS master ([^\n]*)\n"))
    assert.are.equal(0, q:wait_exit())
  end)

  it("calls the core through the FFI in luacluster and in an embedding program (lc_shared_dict)", function()
    local app = lc.write_app([[
      local ffi = require("ffi")
      local shared = require("shared")
      local cluster = require("cluster")
      local d = rawget(shared, "greetings") or shared.d
      local where = cluster.isMaster and "master" or "worker"
      print(("FFI %s %s %s %d"):format(where, tostring(ffi.C.lc__shdict_get ~= nil),
        tostring(ffi.C.lc__shdict_incr ~= nil), d:incr("seen", 1, 0)))
      if cluster.isMaster then cluster.fork() else process.exit(0) end
    ]])
    local p = lc.start({ "--shared", "d=64k", app })
    assert.are.equal("true true 1", p:wait_for("FFI master ([^\n]*)\n"))
    assert.are.equal("true true 2", p:wait_for("FFI worker ([^\n]*)\n"))
    assert.are.equal(0, p:wait_exit())
    local e = lc.spawn({ lc.embed_bin, app })
    assert.are.equal("true true 1", e:wait_for("FFI master ([^\n]*)\n"))
    assert.are.equal("true true 2", e:wait_for("FFI worker ([^\n]*)\n"))
    assert.are.equal(0, e:wait_exit())
  end)
  it("gives workers their master's dicts whatever LUACLUSTER_SHARED the environment held", function()
    local app = lc.write_app([[
      local cluster = require("cluster")
      local shared = require("shared")
      local names = {}
      for name in pairs(shared) do names[#names + 1] = name end
      print(("ENV %s %s %s"):format(cluster.isMaster and "master" or "worker",
        table.concat(names, ","), tostring(os.getenv("LUACLUSTER_SHARED"))))
      if cluster.isMaster then
        cluster.fork({ LUACLUSTER_SHARED = "evil:3:65536" })
      else
        shared.d:set("ok", true)
        process.exit(0)
      end
    ]])
    local p = lc.start({ "--shared", "d=64k", app }, { env = { LUACLUSTER_SHARED = "stale:4:65536" } })
    assert.are.equal("d nil", p:wait_for("ENV master ([^\n]*)\n"))
    assert.are.equal("d nil", p:wait_for("ENV worker ([^\n]*)\n"))
    assert.are.equal(0, p:wait_exit())
    -- the worker's descriptors: the channel and the one dict, nothing else
    local q = lc.start({ "--shared", "a=64k", "--shared", "b=64k", lc.write_app([[
      local cluster = require("cluster")
      if cluster.isMaster then cluster.fork() return end
      local fds = {}
      for fd in io.popen("ls /proc/" .. process.pid .. "/fd"):read("*a"):gmatch("%d+") do
        local target = io.popen("readlink /proc/" .. process.pid .. "/fd/" .. fd):read("*l") or ""
        if target:match("memfd") then fds[#fds + 1] = fd .. "=" .. target:match("luacluster:%w+") end
      end
      table.sort(fds)
      print("MEMFDS " .. table.concat(fds, " "))
      process.exit(0)
    ]]) })
    assert.are.equal("4=luacluster:a 5=luacluster:b", q:wait_for("MEMFDS ([^\n]*)\n"))
    assert.are.equal(0, q:wait_exit())
  end)
end)
