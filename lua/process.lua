-- process: this process, Node style (also the global `process`).
--
-- process.pid, ppid, argv, env, exitCode, exit([code]), send(msg[, fn]) (in
-- a worker), on("message"|"disconnect"|"exit"|"beforeExit"|
-- "uncaughtException"|"SIGxxx", fn), memoryUsage(), uptime(), hrtime([prev]),
-- cwd(), chdir(dir), kill(pid[, signal]).

local core = require("luacluster.core")
local events = require("events")
local spawn = require("luacluster.coroutines").spawn

local process = events.bind({})

process.pid = core.pid()
process.ppid = core.ppid()
process.version = core.version
process.execPath = core.exe_path
process.exitCode = nil

-- Node's argv: the executable, the script, then the script's arguments.
process.argv = { core.exe_path, core.script }
for i, a in ipairs(core.args) do process.argv[i + 2] = a end

-- A plain table: changes are what cluster.fork() passes to new workers.
process.env = core.environ()

function process.cwd() return core.cwd() end
function process.chdir(dir) core.chdir(dir) end
function process.uptime() return core.uptime() end
function process.kill(pid, signal) core.kill(pid, signal or "SIGTERM") return true end

-- hrtime() -> {seconds, nanoseconds}; hrtime(prev) -> the time since prev.
function process.hrtime(prev)
  local s, ns = core.hrtime()
  if prev then
    s, ns = s - prev[1], ns - prev[2]
    if ns < 0 then s, ns = s - 1, ns + 1e9 end
  end
  return { s, ns }
end

-- The monotonic clock in nanoseconds, as a number (Node's hrtime.bigint()).
function process.hrtimeNs()
  local s, ns = core.hrtime()
  return s * 1e9 + ns
end

function process.memoryUsage()
  local heap = collectgarbage("count") * 1024
  return { rss = core.rss(), heapUsed = heap, heapTotal = heap, external = 0 }
end

-- exit([code]): emits "exit" then ends the process at once. Messages
-- already sent to the master are flushed first.
local exiting = false
function process.exit(code)
  if code ~= nil then process.exitCode = code end
  code = process.exitCode or 0
  if not exiting then
    exiting = true
    process:_emit_here("exit", code)
  end
  core.exit(process.exitCode or code)
end

if core.role == "worker" then
  -- send(msg[, fn(err)]): worker -> master; msg is any value that can cross
  -- (see the README's Messages). false once 1 MiB waits: "drain" follows.
  function process.send(msg, fn)
    return core.send(msg, fn and function(err) spawn(fn, err) end)
  end
  function process.connected() return core.connected() end
end

-- Signals: a listener for "SIGxxx" replaces the default action (as in Node);
-- removing the last one restores it.
local base_on, base_off = process.on, process.off
local function is_signal(name) return type(name) == "string" and name:match("^SIG[%u%d]+$") end

local function on(name, fn)
  base_on(name, fn)
  if is_signal(name) then core.signal_watch(name) end
  return process
end

local function off(name, fn)
  base_off(name, fn)
  if is_signal(name) and process:listenerCount(name) == 0 then
    core.signal_unwatch(name)
  end
  return process
end

local function module_call(f)
  return function(first, ...)
    if first == process then return f(...) end
    return f(first, ...)
  end
end
process.on = module_call(on)
process.addListener = process.on
process.off = module_call(off)
process.removeListener = process.off
local base_once = process.once
process.once = module_call(function(name, fn)
  base_once(name, fn)
  if is_signal(name) then core.signal_watch(name) end
  return process
end)

-- What C tells the process: a signal, an uncaught error (returns whether a
-- listener took it), the loop running dry, the end.
function process._native(_, event, a, b)
  if event == "signal" then
    process:emit(a, a)
    if process:listenerCount(a) == 0 then core.signal_unwatch(a) end
  elseif event == "uncaughtException" then
    -- Errors no one caught go to "uncaughtException" listeners; without one
    -- the runtime logs the traceback and exits 1.
    if process:listenerCount("uncaughtException") == 0 then return false end
    process:_emit_here("uncaughtException", a, b)
    return true
  elseif event == "beforeExit" then
    process:emit("beforeExit", process.exitCode or 0)
  elseif event == "exit" then
    if a then process.exitCode = a end
    if not exiting then
      exiting = true
      process:_emit_here("exit", process.exitCode or 0)
    end
    return process.exitCode or 0
  end
end
core.set_process(process)

return process
