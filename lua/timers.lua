-- timers: setTimeout, setInterval, setImmediate and their clear functions
-- (also globals). A timer is a libuv timer; the returned Timeout object has
-- ref(), unref(), hasRef(), refresh() and close() as in Node. Callbacks run
-- in pooled coroutines (luacluster.coroutines), so they may wait.

local core = require("luacluster.core")
local spawn = require("luacluster.coroutines").spawn

local select, unpack, type, error = select, unpack, type, error

local timers = {}

local function bind_args(fn, ...)
  if type(fn) ~= "function" then
    error("callback must be a function, got " .. type(fn), 3)
  end
  local n = select("#", ...)
  if n == 0 then return fn end
  local args = { ... }
  return function() return fn(unpack(args, 1, n)) end
end

-- Node turns delays below 1 ms (or not numbers) into 1 ms.
local function delay(ms)
  ms = tonumber(ms) or 1
  if ms < 1 or ms ~= ms then ms = 1 end
  return ms
end

function timers.setTimeout(fn, ms, ...)
  local call = bind_args(fn, ...)
  local t = core.timer()
  local wait = delay(ms)
  t:start(wait, 0, function() spawn(call) end)
  return t
end

function timers.setInterval(fn, ms, ...)
  local call = bind_args(fn, ...)
  local t = core.timer()
  local wait = delay(ms)
  t:start(wait, wait, function() spawn(call) end)
  return t
end

local function clear(t)
  if t ~= nil and type(t) == "userdata" then t:close() end
end
timers.clearTimeout = clear
timers.clearInterval = clear

-- Immediates run after I/O in the iteration they were queued in, in order;
-- those queued while running wait for the next iteration (as in Node). Only
-- ref'd ones keep the process alive.
local queue, head, tail = {}, 1, 0
local refed = 0

local Immediate = {}
Immediate.__index = Immediate

local function settle(im)
  if not im._done then
    im._done = true
    if im._ref then refed = refed - 1 end
  end
end

function Immediate:ref()
  if not self._done and not self._ref then
    self._ref = true
    refed = refed + 1
    core.immediates_arm(timers._run, true)
  end
  return self
end

function Immediate:unref()
  if not self._done and self._ref then
    self._ref = false
    refed = refed - 1
    core.immediates_arm(timers._run, refed > 0)
  end
  return self
end

function Immediate:hasRef() return not self._done and self._ref end

function timers._run()
  local last = tail
  while head <= last do
    local im = queue[head]
    queue[head] = nil
    head = head + 1
    if not im._done then
      settle(im)
      spawn(im._fn)
    end
  end
  return head <= tail, refed > 0
end

function timers.setImmediate(fn, ...)
  local im = setmetatable({ _fn = bind_args(fn, ...), _ref = true }, Immediate)
  tail = tail + 1
  queue[tail] = im
  refed = refed + 1
  core.immediates_arm(timers._run, true)
  return im
end

function timers.clearImmediate(im)
  if type(im) == "table" and getmetatable(im) == Immediate then settle(im) end
end

return timers
