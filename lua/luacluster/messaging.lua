-- luacluster.messaging: cluster messaging beyond Node (cluster.lua installs
-- it): broadcast, publish/subscribe and request/reply.
--
--   cluster.broadcast(msg)                 every worker's process "message"
--   cluster.publish(topic, msg)            every subscriber of topic
--   cluster.subscribe(topic, fn(msg, from, host)) / cluster.unsubscribe(topic[, fn])
--   process.request(msg[, {timeout=}][, fn(err, reply)])   worker -> master
--   worker:request(msg[, {timeout=}][, fn(err, reply)])    master -> worker
--   cluster.on("request", fn(worker, msg, reply)) / process.on("request", fn(msg, reply))
--
-- The master routes everything in C (runtime/core/messaging/bus.c), also in managed
-- mode. What arrives here comes in the channel's batches as records marked
-- core.BUS, in order with the messages. Requests wait in one table with
-- one timer, armed for the nearest deadline (a heap of deadlines).

local core = require("luacluster.core")
local coroutines = require("luacluster.coroutines")
local timers = require("timers")
local buffer = require("string.buffer")

local spawn, wake, running = coroutines.spawn, coroutines.wake, coroutines.running
local yield = coroutine.yield
local type, error, tostring, pairs, getmetatable, floor =
  type, error, tostring, pairs, getmetatable, math.floor

local M = {}

M.BUS = core.BUS
M.DEFAULT_TIMEOUT = 10000

local TOPIC_MAX = core.BUS_TOPIC_MAX
local MASTER = "master"

-- This host's name in `from` and `host` arguments: the machine's name and
-- its master's pid (two masters may share a machine).
local master_pid = core.role == "master" and core.pid() or core.ppid()
M.host = core.hostname() .. ":" .. master_pid

local function check_topic(topic, level)
  if type(topic) ~= "string" or #topic == 0 or #topic > TOPIC_MAX then
    error("topic must be a string of 1 to " .. TOPIC_MAX .. " bytes, got " ..
          (type(topic) == "string" and #topic .. " bytes" or type(topic)), level + 1)
  end
end

-- Publish and subscribe --------------------------------------------------------

-- topic -> list of listeners (copied on change, so a listener may
-- unsubscribe while a message is delivered).
local topics = {}

local function deliver(topic, msg, from, host)
  local list = topics[topic]
  if not list then return end -- unsubscribed since it was sent
  for i = 1, #list do spawn(list[i], msg, from, host) end
end

-- A copy of v, as a receiver in another process would get it.
local function copy(v)
  if type(v) ~= "table" then return v end
  return buffer.decode(buffer.encode(v))
end

function M.subscribe(topic, fn)
  check_topic(topic, 2)
  if type(fn) ~= "function" then error("listener must be a function, got " .. type(fn), 2) end
  local old = topics[topic]
  if not old then
    core.bus_subscribe(topic, true)
    topics[topic] = { fn }
    return fn
  end
  local new = {}
  for i = 1, #old do new[i] = old[i] end
  new[#new + 1] = fn
  topics[topic] = new
  return fn
end

-- unsubscribe(topic[, fn]): fn, or every listener of topic; true when
-- something was removed.
function M.unsubscribe(topic, fn)
  check_topic(topic, 2)
  local old = topics[topic]
  if not old then return false end
  local new, removed = {}, false
  for i = 1, #old do
    if fn ~= nil and (removed or old[i] ~= fn) then
      new[#new + 1] = old[i]
    else
      removed = true
    end
  end
  if not removed then return false end
  if #new == 0 then
    topics[topic] = nil
    core.bus_subscribe(topic, false)
  else
    topics[topic] = new
  end
  return true
end

function M.publish(topic, msg)
  check_topic(topic, 2)
  local ok = core.bus_publish(topic, msg)
  -- The master hears its own publish as any subscriber does: later, and
  -- a copy (workers hear it through the router).
  if core.role == "master" and topics[topic] then
    timers.setImmediate(deliver, topic, copy(msg), MASTER, M.host)
  end
  return ok
end

function M.broadcast(msg)
  return core.bus_broadcast(msg)
end

-- Requests -------------------------------------------------------------------

local function now_ms()
  local s, ns = core.hrtime()
  return s * 1000 + ns / 1e6
end

-- Pending requests, {id=, deadline=, fn= or co=, worker=}, in a ring
-- indexed by id (ids only grow, so a reply for one that ended finds another
-- id there, or none): an array, where a table keyed by ever-growing ids
-- would rehash all the time. It doubles when an id's slot is still taken.
local ring, ring_size, npending, last_id = {}, 64, 0, 0
-- Pending entries by deadline (a binary heap; settled ones are skipped
-- when they reach the top, and dropped when they are most of it).
local heap, nheap = {}, 0
local timer, armed_at = nil, nil

local function find(id)
  local e = ring[id % ring_size + 1]
  if e ~= nil and e.id == id then return e end
  return nil
end

local function ring_grow()
  local old, old_size = ring, ring_size
  ring, ring_size = {}, old_size * 2
  for i = 1, old_size do
    local e = old[i]
    if e ~= nil then ring[e.id % ring_size + 1] = e end
  end
end

local function ring_add(e)
  while ring[e.id % ring_size + 1] ~= nil do ring_grow() end
  ring[e.id % ring_size + 1] = e
end

local function heap_push(e)
  nheap = nheap + 1
  local i = nheap
  while i > 1 do
    local parent = floor(i / 2)
    if heap[parent].deadline <= e.deadline then break end
    heap[i] = heap[parent]
    i = parent
  end
  heap[i] = e
end

local function heap_pop()
  local top, last = heap[1], heap[nheap]
  heap[nheap] = nil
  nheap = nheap - 1
  if nheap > 0 then
    local i = 1
    while true do
      local c = i * 2
      if c > nheap then break end
      if c < nheap and heap[c + 1].deadline < heap[c].deadline then c = c + 1 end
      if last.deadline <= heap[c].deadline then break end
      heap[i] = heap[c]
      i = c
    end
    heap[i] = last
  end
  return top
end

-- Drops the settled entries: the live ones are pushed again.
local function heap_compact()
  local live, n = {}, 0
  for i = 1, nheap do
    local e = heap[i]
    if not e.settled then n = n + 1 live[n] = e end
    heap[i] = nil
  end
  nheap = 0
  for i = 1, n do heap_push(live[i]) end
end

local on_timer

local function arm()
  while nheap > 0 and heap[1].settled do heap_pop() end
  if nheap == 0 then
    if timer then timer:stop() end
    armed_at = nil
    return
  end
  local at = heap[1].deadline
  if armed_at == at then return end
  timer = timer or core.timer()
  armed_at = at
  local wait = at - now_ms()
  timer:start(wait > 0 and wait or 0, 0, on_timer)
end

-- Ends request e with its answer (err nil) or an error; a request ends once.
local function settle(e, err, value)
  if e.settled then return end
  e.settled = true
  ring[e.id % ring_size + 1] = nil
  npending = npending - 1
  if nheap > 2 * npending + 64 then heap_compact() end
  if e.co then
    if err ~= nil then wake(e.co, nil, err) else wake(e.co, value) end
  elseif err ~= nil then
    spawn(e.fn, err)
  else
    spawn(e.fn, nil, value)
  end
end

on_timer = function()
  armed_at = nil
  local now = now_ms() + 1
  while nheap > 0 and heap[1].deadline <= now do
    local e = heap_pop()
    if not e.settled then settle(e, "timeout") end
  end
  arm()
end

local function next_id()
  repeat last_id = last_id % 4294967295 + 1 until find(last_id) == nil
  return last_id
end

local function request_args(opts, fn, what)
  if type(opts) == "function" and fn == nil then opts, fn = nil, opts end
  local timeout = M.DEFAULT_TIMEOUT
  if opts ~= nil then
    if type(opts) ~= "table" then error("options must be a table", 4) end
    if opts.timeout ~= nil then
      timeout = opts.timeout
      if type(timeout) ~= "number" or not (timeout > 0) or timeout > 2^31 then
        error("timeout must be a number of milliseconds > 0, got " .. tostring(timeout), 4)
      end
    end
  end
  if fn ~= nil and type(fn) ~= "function" then error("callback must be a function", 4) end
  local co = fn == nil and running(what, 4) or nil
  return timeout, fn, co
end

-- Sends a request with send(id) (false: the peer is gone) and waits for
-- its answer: returns it (or nil, err) in a coroutine, or calls fn later.
local function request(send, worker, opts, fn, what)
  local timeout, co
  timeout, fn, co = request_args(opts, fn, what)
  local id = next_id()
  if not send(id) then
    if co then return nil, "closed" end
    timers.setImmediate(fn, "closed")
    return
  end
  local e = { id = id, deadline = now_ms() + timeout, fn = fn, co = co, worker = worker,
              settled = false }
  ring_add(e)
  npending = npending + 1
  heap_push(e)
  if armed_at == nil or e.deadline < armed_at then arm() end
  if co then return yield() end
end

-- A reply came: from worker (nil: from the master).
local function on_reply(rec, worker)
  local e = find(rec.id)
  if e == nil or e.worker ~= worker then return end -- late: dropped
  settle(e, rec.err, rec.msg)
  if npending == 0 then arm() end
end

-- The channel to worker (nil: to the master) ended: its requests fail.
function M.closed(worker)
  local gone = {}
  for i = 1, ring_size do
    local e = ring[i]
    if e ~= nil and e.worker == worker then gone[#gone + 1] = e end
  end
  for _, e in ipairs(gone) do settle(e, "closed") end
  if #gone > 0 then arm() end
end

-- The function a request's listeners answer with: reply(value[, err]);
-- the first answer goes, later ones return false.
local function replier(id, handle)
  local done = false
  return function(value, err)
    if done then return false end
    if err ~= nil then err = tostring(err) end
    local ok = core.bus_reply(id, value, err, handle)
    done = true
    return ok
  end
end

-- Installing -------------------------------------------------------------------

-- In the master: records that came from worker.
local function from_worker(cluster, worker, rec)
  local op = rec.op
  if op == "publish" then
    deliver(rec.topic, rec.msg, rec.from, rec.host or M.host)
  elseif op == "request" then
    if cluster:listenerCount("request") + worker:listenerCount("request") == 0 then
      core.bus_reply(rec.id, nil, "no request listener", worker._handle)
      return
    end
    local reply = replier(rec.id, worker._handle)
    worker:emit("request", rec.msg, reply)
    cluster:emit("request", worker, rec.msg, reply)
  elseif op == "reply" then
    on_reply(rec, worker)
  end
end

-- In a worker: records that came from the master.
local function from_master(process, rec)
  local op = rec.op
  if op == "publish" then
    deliver(rec.topic, rec.msg, rec.from, rec.host or M.host)
  elseif op == "request" then
    if process:listenerCount("request") == 0 then
      core.bus_reply(rec.id, nil, "no request listener")
      return
    end
    process:emit("request", rec.msg, replier(rec.id, nil))
  elseif op == "reply" then
    on_reply(rec, nil)
  end
end

function M.install(cluster, process, Worker)
  cluster.host = M.host
  cluster.broadcast = M.broadcast
  cluster.publish = M.publish
  cluster.subscribe = M.subscribe
  cluster.unsubscribe = M.unsubscribe
  if core.role == "master" then
    function Worker:request(msg, opts, fn)
      local handle = self._handle
      return request(function(id) return core.bus_request(id, msg, handle) end,
                     self, opts, fn, "worker:request()")
    end
    M.from_worker = function(worker, rec) return from_worker(cluster, worker, rec) end
    -- what other hosts publish to the master's topics
    core.bus_listen({ _native = function(_, _, rec)
      deliver(rec.topic, rec.msg, rec.from, rec.host)
    end })
  else
    function process.request(msg, opts, fn)
      return request(function(id) core.bus_request(id, msg) return true end,
                     nil, opts, fn, "process.request()")
    end
    M.from_master = function(rec) return from_master(process, rec) end
  end
end

-- Whether a batch item is a bus record rather than a message.
function M.is_record(m)
  return type(m) == "table" and getmetatable(m) == M.BUS
end

return M
