-- cluster: Node's cluster module (also the global `cluster`).
--
-- In the master: cluster.fork([env]) -> worker, cluster.workers, setupMaster
-- / setupPrimary, settings, schedulingPolicy, disconnect([fn]); events fork,
-- online, listening, message, disconnect, exit, setup.
-- In a worker: cluster.worker (itself) with send, disconnect, isConnected.
-- Everywhere: broadcast, publish, subscribe, unsubscribe; requests
-- (luacluster.messaging).
--
-- The work is C's (supervisor, channel, dispatch); this module keeps the
-- objects and turns C's notifications into events.

local core = require("luacluster.core")
local events = require("events")
local process = require("process")
local timers = require("timers")
local spawn = require("luacluster.coroutines").spawn
local messaging = require("luacluster.messaging")

local EventEmitter = events.EventEmitter
local is_record = messaging.is_record

local cluster = events.bind({})

cluster.isMaster = core.role == "master"
cluster.isPrimary = cluster.isMaster
cluster.isWorker = not cluster.isMaster
cluster.SCHED_RR = "rr"
cluster.SCHED_NONE = "none"
cluster.SCHED_REUSEPORT = "reuseport"
cluster.SCHED_STICKY = "sticky"
cluster.schedulingPolicy = core.sched_policy()
cluster.settings = {}
cluster.workers = {}

-- Worker objects ---------------------------------------------------------------

local Worker = EventEmitter.extend({})
cluster.Worker = Worker

local function new_worker(fields)
  local w = setmetatable(fields, Worker)
  w.exitedAfterDisconnect = false
  return w
end

-- In the master -----------------------------------------------------------------

local function master_worker_methods()
  function Worker:send(msg, fn)
    return self._handle:send(msg, fn and function(err) spawn(fn, err) end)
  end

  function Worker:disconnect()
    self.exitedAfterDisconnect = true
    if self.state ~= "dead" and self.state ~= "disconnected" then
      self.state = "disconnecting"
    end
    self._handle:disconnect()
    return self
  end

  -- kill([signal]): signals the worker (default "SIGTERM", which it takes
  -- as a stop: it drains, disconnects itself and exits 0). As in Node 20,
  -- only a worker that disconnects itself counts as exitedAfterDisconnect:
  -- after kill("SIGKILL") it stays false.
  function Worker:kill(signal)
    if self.state ~= "dead" then
      self._handle:kill(signal or "SIGTERM")
    end
  end
  Worker.destroy = Worker.kill

  function Worker:isConnected()
    return self._handle:info().connected
  end

  function Worker:isDead()
    return self.state == "dead"
  end
end

local function merged_settings()
  local s = cluster.settings
  local args = s.args
  if args == nil then
    args = {}
    for i, a in ipairs(core.args) do args[i] = a end
  end
  return {
    exec = s.exec or core.script,
    args = args,
    silent = s.silent or false,
  }
end

-- setupMaster{exec=, args=, silent=}: what later forks run. Without args,
-- they are process.argv's as it is now (Node); "setup" is emitted on the
-- next tick, so a listener added right after the call hears it.
function cluster.setupMaster(settings)
  settings = settings or {}
  if settings.exec ~= nil and type(settings.exec) ~= "string" then
    error("settings.exec must be a path", 2)
  end
  for k, v in pairs(settings) do cluster.settings[k] = v end
  if cluster.settings.args == nil then
    local args = {}
    for i = 3, #process.argv do args[#args + 1] = process.argv[i] end
    cluster.settings.args = args
  end
  local s = merged_settings()
  for k, v in pairs(s) do
    if cluster.settings[k] == nil then cluster.settings[k] = v end
  end
  local snapshot = {}
  for k, v in pairs(cluster.settings) do snapshot[k] = v end
  timers.setImmediate(function() cluster:emit("setup", snapshot) end)
end
cluster.setupPrimary = cluster.setupMaster

-- cluster.disconnect() callbacks: run once every worker has disconnected
-- and exited, with cluster.workers empty (Node).
local disconnect_waiters = {}

local function check_all_gone()
  if next(cluster.workers) ~= nil or #disconnect_waiters == 0 then return end
  local waiters = disconnect_waiters
  disconnect_waiters = {}
  for _, fn in ipairs(waiters) do fn() end
end

local function emit_fork(worker)
  if worker._fork_pending then
    worker._fork_pending = nil
    cluster:emit("fork", worker)
  end
end

-- What C tells a worker object in the master.
local function on_worker_event(worker, event, a, b)
  emit_fork(worker)
  if event == "online" then
    worker.state = "online"
    worker:emit("online")
    cluster:emit("online", worker)
  elseif event == "listening" then
    local address = { address = a, port = b, addressType = a:find(":", 1, true) and 6 or 4 }
    worker.state = "listening"
    worker:emit("listening", address)
    cluster:emit("listening", worker, address)
  elseif event == "messages" then
    -- a[1..b], in order; a.next says how far this got, so after an error
    -- in a listener the runtime goes on with the rest.
    local i = a.next or 1
    while i <= b do
      local m = a[i]
      i = i + 1
      a.next = i
      if is_record(m) then
        messaging.from_worker(worker, m)
      else
        worker:emit("message", m)
        cluster:emit("message", worker, m)
      end
    end
  elseif event == "drain" then
    worker:emit("drain")
  elseif event == "disconnect" then
    messaging.closed(worker)
    if worker.state ~= "dead" then worker.state = "disconnected" end
    worker:emit("disconnect")
    cluster:emit("disconnect", worker)
  elseif event == "exit" then
    worker.state = "dead"
    worker.exitedAfterDisconnect = worker._handle:info().exitedAfterDisconnect
    worker.process.exitCode = a
    worker.process.signalCode = b
    cluster.workers[worker.id] = nil
    worker:emit("exit", a, b)
    cluster:emit("exit", worker, a, b)
    check_all_gone()
  elseif event == "error" then
    -- the runtime has logged it; listeners may act on it
    if worker:listenerCount("error") > 0 then worker:emit("error", a) end
  end
end

-- fork([env]) -> worker: a new process running the app script (or
-- settings.exec) with cluster.isWorker; env adds to process.env.
function cluster.fork(env)
  if not cluster.isMaster then error("cluster.fork() is only for the master", 2) end
  if env ~= nil and type(env) ~= "table" then error("env must be a table", 2) end
  core.sched_policy(cluster.schedulingPolicy)
  local s = merged_settings()
  local child_env = {}
  for k, v in pairs(process.env) do child_env[k] = v end
  for k, v in pairs(env or {}) do child_env[k] = v end
  local worker = new_worker({ state = "none" })
  local handle = core.fork({ exec = s.exec, args = s.args, env = child_env,
                             silent = s.silent }, worker)
  local info = handle:info()
  worker._handle = handle
  worker.id = info.id
  worker.process = {
    pid = info.pid,
    kill = function(_, signal) return handle:kill(signal or "SIGTERM") end,
  }
  cluster.workers[worker.id] = worker
  -- "fork" comes on the next tick (Node), and always before anything the
  -- worker itself makes happen, however fast it starts.
  worker._fork_pending = true
  timers.setImmediate(function() emit_fork(worker) end)
  return worker
end

-- disconnect([fn]): disconnects every worker; fn runs once every worker has
-- disconnected and exited (cluster.workers is empty then).
function cluster.disconnect(fn)
  if not cluster.isMaster then error("cluster.disconnect() is only for the master", 2) end
  if fn ~= nil and type(fn) ~= "function" then error("callback must be a function", 2) end
  for _, w in pairs(cluster.workers) do
    if w.state ~= "disconnected" and w.state ~= "dead" then w:disconnect() end
  end
  if fn then
    disconnect_waiters[#disconnect_waiters + 1] = fn
    if next(cluster.workers) == nil then timers.setImmediate(check_all_gone) end
  end
end

-- In a worker ---------------------------------------------------------------------

local function worker_side()
  local me = new_worker({
    id = core.worker_id,
    process = process,
    state = "online",
  })

  function me:send(msg, fn) return process.send(msg, fn) end

  function me:disconnect()
    self.exitedAfterDisconnect = true
    self.state = "disconnecting"
    core.disconnect()
    return self
  end

  -- kill(): as Node's worker.kill() in a worker: disconnect (the master
  -- counts it as exitedAfterDisconnect), then exit 0.
  function me:kill()
    if not core.connected() then process.exit(0) end
    process:once("disconnect", function() process.exit(0) end)
    self:disconnect()
  end
  me.destroy = me.kill

  function me:isConnected() return core.connected() end
  function me:isDead() return false end

  -- process.disconnect(): this worker's disconnect, as in Node; and the
  -- process's "error" events reach cluster.worker's listeners.
  function process.disconnect() return me:disconnect() end
  process.on("error", function(...) me:emit("error", ...) end)

  -- What the channel to the master tells this worker.
  function me._native(_, event, list, n)
    if event == "messages" then
      -- list[1..n], in order (see the master's side).
      local i = list.next or 1
      while i <= n do
        local m = list[i]
        i = i + 1
        list.next = i
        if is_record(m) then
          messaging.from_master(m)
        else
          process:emit("message", m)
          me:emit("message", m)
        end
      end
    elseif event == "drain" then
      process:emit("drain")
      me:emit("drain")
    elseif event == "disconnect" then
      messaging.closed(nil)
      me.state = "disconnected"
      me:emit("disconnect")
      process:emit("disconnect")
    end
  end
  core.set_worker(me)

  cluster.worker = me
end

if cluster.isMaster then
  master_worker_methods()
  Worker._native = on_worker_event
else
  worker_side()
end
-- Beyond Node: broadcast, publish/subscribe, request/reply.
messaging.install(cluster, process, Worker)

return cluster
