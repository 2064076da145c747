-- luacluster.coroutines: user code runs in pooled coroutines, so calls that
-- wait (fetch, sleep, dns.lookup, cosockets) read top to bottom.
--
-- Request handlers, connection listeners, timer callbacks, message and
-- event listeners are started with spawn(fn, ...). A coroutine whose
-- function returns without yielding goes back to a pool and runs the next
-- one: when nothing waits, a callback costs one resume and one yield. A
-- coroutine that waits is held by whatever it waits on (C keeps a ref to
-- it) and is resumed through wake(), from the loop, never from inside the
-- call that started the wait.
--
-- An error raised in a coroutine, before or after a wait, takes the path of
-- every uncaught error: process "uncaughtException", else the traceback is
-- logged and the process exits 1.

local core = require("luacluster.core")

local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
local status, running = coroutine.status, coroutine.running
local traceback, type, tostring, getmetatable, error =
  debug.traceback, type, tostring, getmetatable, error
local uncaught, EXIT = core.uncaught, core.EXIT

local M = {}

-- What a pooled coroutine yields once its function has returned.
local DONE = {}
-- Idle coroutines kept for reuse; more than this are left to the collector.
local POOL_MAX = 256

local pool, npool = {}, 0
-- The pooled coroutine running now; nil on the main thread.
local current = nil

local function body(fn, ...)
  fn(...)
  return body(yield(DONE))
end

-- The message of an error value, as the runtime's own traceback handler
-- words it.
local function message(err)
  local t = type(err)
  if t == "string" or t == "number" then return tostring(err) end
  local mt = getmetatable(err)
  if mt and mt.__tostring then return tostring(err) end
  return "(error object is a " .. t .. " value)"
end

-- After a resume: back to the pool, still waiting, or failed.
local function settle(co, prev, ok, what, ...)
  current = prev
  if ok then
    if what == DONE and npool < POOL_MAX then
      npool = npool + 1
      pool[npool] = co
    end
    return
  end
  -- process.exit() unwinds through here quietly; any other error is
  -- reported, and unwinds the caller too when it ends the process.
  if what == EXIT or uncaught(what, traceback(co, message(what))) then
    error(EXIT, 0)
  end
end

-- Runs fn(...) in a coroutine from the pool, now.
function M.spawn(fn, ...)
  local co
  if npool > 0 then
    co = pool[npool]
    pool[npool] = nil
    npool = npool - 1
  else
    co = create(body)
  end
  local prev = current
  current = co
  return settle(co, prev, resume(co, fn, ...))
end

-- Resumes co, which waits, with the wait's results.
function M.wake(co, ...)
  if status(co) ~= "suspended" then return end
  local prev = current
  current = co
  return settle(co, prev, resume(co, ...))
end
core.set_waker(M.wake)

-- Whether a pooled coroutine is running (listeners then run inline).
function M.inside() return current ~= nil end

-- The running coroutine, or an error naming `what` when on the main thread.
function M.running(what, level)
  local co = running()
  if co == nil then
    error(what .. " waits, so it must run inside a coroutine (a request " ..
          "handler, a listener or a timer callback), not in the main chunk",
          (level or 2) + 1)
  end
  return co
end

-- Waits for start(done) to call done(...): returns what done got. done is
-- called from the loop (a C callback), never inside start.
function M.await(what, start, ...)
  local co = M.running(what, 3)
  start(function(...) return M.wake(co, ...) end, ...)
  return yield()
end

-- sleep(ms): the running coroutine waits ms milliseconds.
function M.sleep(ms)
  ms = tonumber(ms)
  if not ms or ms < 0 or ms ~= ms then
    error("sleep(ms) needs a number of milliseconds >= 0", 2)
  end
  local co = M.running("sleep()")
  local t = core.timer()
  t:start(ms, 0, function() M.wake(co) end)
  yield()
end

return M
