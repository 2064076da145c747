-- bench/shdict/bench.lua: the loop both peers run, luacluster's workers
-- (bench/shdict/app.lua) and nginx's (bench/shdict/nginx.conf), on a dict
-- with OpenResty's methods. Each phase runs for `seconds` in every worker
-- at once (a barrier in a second dict lines them up) and reports
-- operations per second:
--
--   set    d:set(key, 16-byte string)        over 1024 keys
--   get    d:get(key)                        the same keys
--   incr   d:incr(key, 1, 0)                 1024 other keys
--   tset   d:set(key, a small table)         luacluster: the table itself
--   tget   d:get(key) -> the table           (string.buffer); nginx: the
--                                            table through cjson
--   hset   d:set("hot", i)                   one key: no key lookup to
--   hincr  d:incr("hotn", 1, 0)              speak of, one lock for all
local ffi = require("ffi")
local cjson = require("cjson")

pcall(ffi.cdef, "struct lc_bench_ts { long s; long ns; };")
pcall(ffi.cdef, "int clock_gettime(int clk, struct lc_bench_ts *ts);")
pcall(ffi.cdef, "int usleep(unsigned int usec);")
local C = ffi.C
local ts = ffi.new("struct lc_bench_ts")

local function now()
  C.clock_gettime(1, ts)
  return tonumber(ts.s) + tonumber(ts.ns) * 1e-9
end

local N = 1024
local keys, counters, tkeys = {}, {}, {}
for i = 1, N do
  keys[i] = "key:" .. i
  counters[i] = "count:" .. i
  tkeys[i] = "user:" .. i
end
local value = "0123456789abcdef"
local user = { id = 42, name = "user 42", email = "u42@example.com",
               roles = { "admin", "dev" }, active = true, score = 12.5 }

-- Each worker goes through the keys in an order of its own, as requests
-- of different clients would: in one order, two workers walking in
-- lockstep would meet on the same key at every step.
local function shuffle(list, seed)
  local out, x = {}, seed
  for i = 1, #list do out[i] = list[i] end
  for i = #out, 2, -1 do
    x = (x * 1103515245 + 12345) % 2147483648
    local j = x % i + 1
    out[i], out[j] = out[j], out[i]
  end
  return out
end

return function(opts)
  local d, ctl, workers = opts.dict, opts.ctl, opts.workers
  local seed = ctl:incr("seed", 1, 0)
  keys, counters, tkeys = shuffle(keys, seed), shuffle(counters, seed), shuffle(tkeys, seed)
  local native = opts.tables == "native"
  local encode, decode = cjson.encode, cjson.decode

  local ops = {
    set = function() for i = 1, N do d:set(keys[i], value) end end,
    get = function() for i = 1, N do d:get(keys[i]) end end,
    incr = function() for i = 1, N do d:incr(counters[i], 1, 0) end end,
    tset = native and function() for i = 1, N do d:set(tkeys[i], user) end end
                  or function() for i = 1, N do d:set(tkeys[i], encode(user)) end end,
    tget = native and function() for i = 1, N do local _ = d:get(tkeys[i]).id end end
                  or function() for i = 1, N do local _ = decode(d:get(tkeys[i])).id end end,
    hset = function() for i = 1, N do d:set("hot", i) end end,
    hincr = function() for _ = 1, N do d:incr("hotn", 1, 0) end end,
  }

  for phase, name in ipairs(opts.ops or { "set", "get", "incr", "tset", "tget", "hset", "hincr" }) do
    -- every worker starts the phase together
    local gate = "phase" .. phase
    ctl:incr(gate, 1, 0)
    while ctl:get(gate) < workers do C.usleep(100) end
    local fn, count = ops[name], 0
    fn() -- warm: the keys exist, the trace is compiled
    local t0 = now()
    local t1 = t0
    while t1 - t0 < opts.seconds do
      fn()
      count = count + N
      t1 = now()
    end
    opts.report(("op=%s ops=%d secs=%.4f"):format(name, count, t1 - t0))
  end
  -- a check that the work was done
  local t = d:get(tkeys[1])
  assert(d:get(keys[1]) == value and d:get(counters[1]) > 1, "the work was not done")
  assert((native and t or decode(t)).name == "user 42")
end
