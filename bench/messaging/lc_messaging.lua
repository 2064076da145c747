-- bench/messaging/lc_messaging.lua - luacluster's side of the messaging
-- benchmark (run by bench/messaging/run; node_messaging.js does the same
-- with Node's cluster module and a loop of worker.send).
--
--   luacluster bench/messaging/lc_messaging.lua [bcast=N] [rt=N] [conc=N]
--
-- Two workers. Measures, in this order:
--   master_bcast_per_s  deliveries/s of cluster.broadcast() from the master
--                       (N broadcasts x 2 workers)
--   worker_bcast_per_s  deliveries/s of cluster.broadcast() from worker 1,
--                       relayed by the master to both workers
--   rt_per_s            process.request() round trips/s, one at a time
--   rt_conc_per_s       the same with `conc` requests in flight
--   down_rt_per_s       worker:request() round trips/s (master -> worker),
--                       one at a time
-- and prints one line: RESULT {json}.
--
-- Broadcasts flow under a window: receivers acknowledge every ACK messages,
-- and the sender keeps at most WINDOW unacknowledged (the same on both
-- sides), so neither side measures a queue growing without bound.

local function param(name, default)
  for i = 3, #process.argv do
    local k, v = process.argv[i]:match("^(%w+)=(%d+)$")
    if k == name then return tonumber(v) end
  end
  return default
end

local N_BCAST = param("bcast", 200000)
local N_RT = param("rt", 20000)
local CONC = param("conc", 64)
local ACK, WINDOW, BATCH = 2000, 20000, 1000
local MSG_DATA = "abcdefghijklmnopqrst"

-- Sends n broadcasts with send(i), BATCH per loop turn, while fewer than
-- WINDOW are unacknowledged (acked() says how many are); send() false
-- (a full channel) waits for process "drain".
local function windowed(n, send, acked, on_credit)
  local sent = 0
  local function burst()
    local last, room = math.min(n, sent + BATCH, acked() + WINDOW), true
    while sent < last and room do
      sent = sent + 1
      room = send(sent)
    end
    if sent < n then
      if not room then process:once("drain", burst)
      elseif sent - acked() >= WINDOW then on_credit(burst)
      else setImmediate(burst) end
    end
  end
  burst()
end

if cluster.isWorker then
  local count, want = 0, 0
  local credit_waiter, credit = nil, 0
  process.on("message", function(m)
    local t = m.t
    if t == "b" then
      count = count + 1
      if count % ACK == 0 or count == want then process.send({ t = "ack", n = count }) end
    elseif t == "start" then
      count, want = 0, m.n
    elseif t == "credit" then
      credit = m.n
      if credit_waiter then local f = credit_waiter credit_waiter = nil f() end
    elseif t == "wbcast" then
      windowed(m.n, function(i) return cluster.broadcast({ t = "b", seq = i, data = MSG_DATA }) end,
               function() return credit end,
               function(f) credit_waiter = f end)
    elseif t == "rt" then
      local t0 = process.hrtimeNs()
      for i = 1, m.n do process.request(i) end
      process.send({ t = "rt_done", ms = (process.hrtimeNs() - t0) / 1e6 })
    elseif t == "rt_conc" then
      local t0, left = process.hrtimeNs(), m.conc
      for _ = 1, m.conc do
        setImmediate(function()
          for i = 1, m.n / m.conc do process.request(i) end
          left = left - 1
          if left == 0 then
            process.send({ t = "rt_done", ms = (process.hrtimeNs() - t0) / 1e6 })
          end
        end)
      end
    end
  end)
  process.on("request", function(msg, reply) reply(msg) end)
  process.send({ t = "ready" })
  return
end

-- The master. ---------------------------------------------------------------------
local function now_ms() return process.hrtimeNs() / 1e6 end

cluster.on("request", function(_, msg, reply) reply(msg) end)

local workers, ready = {}, 0
local results = { bcast_n = N_BCAST, rt_n = N_RT, conc = CONC }
local phases, next_phase = {}, nil
next_phase = function()
  local phase = table.remove(phases, 1)
  if phase then setImmediate(phase) end
end

local on_msg
for i = 1, 2 do
  local w = cluster.fork()
  workers[i] = w
  w:on("message", function(m)
    if m.t == "ready" then
      ready = ready + 1
      if ready == 2 then next_phase() end
    else
      on_msg(w, m)
    end
  end)
end

-- Broadcast phases: acks from both workers; done when both have all.
local function bcast_phase(key, start)
  return function()
    local acked, waiter = { 0, 0 }, nil
    local t0
    for _, w in ipairs(workers) do w:send({ t = "start", n = N_BCAST }) end
    local function min_acked() return math.min(acked[1], acked[2]) end
    on_msg = function(w, m)
      if m.t ~= "ack" then return end
      acked[w.id] = m.n
      local low = min_acked()
      if low == N_BCAST then
        results[key] = N_BCAST * 2 / (now_ms() - t0) * 1000
        return next_phase()
      end
      if key == "worker_bcast_per_s" then
        workers[1]:send({ t = "credit", n = low })
      elseif waiter then
        local f = waiter
        waiter = nil
        f()
      end
    end
    t0 = now_ms()
    start(min_acked, function(f) waiter = f end)
  end
end

phases[#phases + 1] = bcast_phase("master_bcast_per_s", function(acked, on_credit)
  windowed(N_BCAST, function(i) return cluster.broadcast({ t = "b", seq = i, data = MSG_DATA }) or true end,
           acked, on_credit)
end)

phases[#phases + 1] = bcast_phase("worker_bcast_per_s", function()
  workers[1]:send({ t = "wbcast", n = N_BCAST })
end)

local function rt_phase(key, m)
  return function()
    on_msg = function(_, r)
      if r.t == "rt_done" then
        results[key] = N_RT / r.ms * 1000
        next_phase()
      end
    end
    workers[1]:send(m)
  end
end
phases[#phases + 1] = rt_phase("rt_per_s", { t = "rt", n = N_RT })
phases[#phases + 1] = rt_phase("rt_conc_per_s", { t = "rt_conc", n = N_RT, conc = CONC })

phases[#phases + 1] = function()
  local w = workers[1]
  local t0 = now_ms()
  for i = 1, N_RT do w:request(i) end
  results.down_rt_per_s = N_RT / (now_ms() - t0) * 1000
  next_phase()
end

phases[#phases + 1] = function()
  local keys = {}
  for k in pairs(results) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = ('"%s":%.6g'):format(k, results[k]) end
  print("RESULT {" .. table.concat(parts, ",") .. "}")
  for _, w in ipairs(workers) do w:kill("SIGKILL") end
end
