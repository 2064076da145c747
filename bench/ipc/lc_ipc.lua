-- bench/ipc/lc_ipc.lua - luacluster's side of the IPC benchmark (run by
-- bench/ipc/run; node_ipc.js does the same with Node's cluster module).
--
--   luacluster bench/ipc/lc_ipc.lua [small=N] [rt=N] [big=N] [huge=N] [forks=N]
--
-- (also BENCH_SMALL, BENCH_RT, BENCH_BIG, BENCH_HUGE, BENCH_FORKS in the
-- environment).
-- Measures, in this order:
--   fork_online_ms  median time from cluster.fork() to the worker's "online"
--   idle_rss_kb     VmRSS of an idle worker 500 ms after it is online
--   small_per_s     ~50-byte JSON objects master -> worker, one way: from the
--                   first send until the worker has them all and says "done"
--   rt_per_s        round trips, one message in flight
--   big_per_s       64 KiB messages master -> worker, one way
--   huge_per_s      1 MiB messages master -> worker, one way
-- and prints one line: RESULT {json}.
--
-- One-way bursts stop when send() returns false and go on at "drain" (a
-- luacluster channel refuses to queue without bound; Node's queues all).

local function param(name, default)
  for i = 3, #process.argv do
    local k, v = process.argv[i]:match("^(%w+)=(%d+)$")
    if k == name then return tonumber(v) end
  end
  return tonumber(process.env["BENCH_" .. name:upper()]) or default
end

local N_SMALL = param("small", 200000)
local N_RT = param("rt", 20000)
local N_BIG = param("big", 4000)
local N_HUGE = param("huge", 400)
local FORKS = param("forks", 20)
local SMALL_BATCH, BIG_BATCH, HUGE_BATCH = 1000, 16, 4

local BIG_DATA = string.rep("x", 65536 - 20) -- the JSON object is 64 KiB

-- The worker: "bench" counts and answers, "idle" does nothing. -------------------
if cluster.isWorker then
  if process.env.BENCH_ROLE == "bench" then
    local want, count = 0, 0
    process.on("message", function(m)
      local t = m.t
      if t == "p" then
        process.send(m)
      elseif t == "s" or t == "b" or t == "h" then
        count = count + 1
        if count == want then process.send({ t = "done" }) end
      elseif t == "start" then
        want, count = m.n, 0
      end
    end)
  end
  return
end

-- The master. ----------------------------------------------------------------------
local function now_ms() return process.hrtimeNs() / 1e6 end

local function median(list)
  table.sort(list)
  local n = #list
  if n % 2 == 1 then return list[(n + 1) / 2] end
  return (list[n / 2] + list[n / 2 + 1]) / 2
end

local function rss_kb(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local results = { small_n = N_SMALL, rt_n = N_RT, big_n = N_BIG, huge_n = N_HUGE,
                  forks = FORKS }
local phases, next_phase = {}, nil
next_phase = function()
  local phase = table.remove(phases, 1)
  if phase then phase() end
end

-- fork -> online, one at a time.
phases[#phases + 1] = function()
  local lat = {}
  local function one()
    local t0 = now_ms()
    local w = cluster.fork({ BENCH_ROLE = "idle" })
    w:on("online", function()
      lat[#lat + 1] = now_ms() - t0
      w:kill("SIGKILL")
    end)
    w:on("exit", function()
      if #lat < FORKS then one() else
        results.fork_online_ms = median(lat)
        next_phase()
      end
    end)
  end
  one()
end

-- Idle worker RSS.
phases[#phases + 1] = function()
  local w = cluster.fork({ BENCH_ROLE = "idle" })
  w:on("online", function()
    setTimeout(function()
      results.idle_rss_kb = rss_kb(w.process.pid)
      w:kill("SIGKILL")
    end, 500)
  end)
  w:on("exit", next_phase)
end

-- Throughput, with one bench worker.
local bench, on_reply
phases[#phases + 1] = function()
  bench = cluster.fork({ BENCH_ROLE = "bench" })
  bench:on("message", function(m) on_reply(m) end)
  bench:on("online", next_phase)
end

-- Sends n messages made by make(i), batch per loop turn; done() on "done".
local function one_way(n, batch, make, done)
  local t0 = now_ms()
  on_reply = function(m)
    if m.t == "done" then done(now_ms() - t0) end
  end
  bench:send({ t = "start", n = n })
  local sent = 0
  local burst
  burst = function()
    local last, room = math.min(n, sent + batch), true
    while sent < last and room do
      sent = sent + 1
      room = bench:send(make(sent))
    end
    if sent < n then
      if room then setImmediate(burst) else bench:once("drain", burst) end
    end
  end
  burst()
end

phases[#phases + 1] = function()
  one_way(N_SMALL, SMALL_BATCH, function(i)
    return { t = "s", seq = i, data = "abcdefghijklmnopqrst" }
  end, function(ms)
    results.small_per_s = N_SMALL / ms * 1000
    next_phase()
  end)
end

phases[#phases + 1] = function()
  local t0 = now_ms()
  on_reply = function(m)
    if m.seq < N_RT then
      bench:send({ t = "p", seq = m.seq + 1 })
    else
      results.rt_per_s = N_RT / (now_ms() - t0) * 1000
      next_phase()
    end
  end
  bench:send({ t = "p", seq = 1 })
end

phases[#phases + 1] = function()
  one_way(N_BIG, BIG_BATCH, function(i)
    return { t = "b", seq = i, data = BIG_DATA }
  end, function(ms)
    results.big_per_s = N_BIG / ms * 1000
    next_phase()
  end)
end

phases[#phases + 1] = function()
  -- Made here: the idle worker measured above must not carry it.
  local HUGE_DATA = string.rep("y", 1048576 - 20) -- the object is 1 MiB
  one_way(N_HUGE, HUGE_BATCH, function(i)
    return { t = "h", seq = i, data = HUGE_DATA }
  end, function(ms)
    results.huge_per_s = N_HUGE / ms * 1000
    next_phase()
  end)
end

phases[#phases + 1] = function()
  local keys = {}
  for k in pairs(results) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = ('"%s":%.6g'):format(k, results[k]) end
  print("RESULT {" .. table.concat(parts, ",") .. "}")
  bench:kill("SIGKILL")
end

next_phase()
