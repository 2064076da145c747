-- timers: setTimeout, setInterval, setImmediate and their clear functions
-- (also globals). A timer is a libuv timer; the returned Timeout object has
-- ref(), unref(), hasRef(), refresh() and close() as in Node.

local core = require("luacluster.core")

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
  t:start(wait, 0, function() call() end)
  return t
end

function timers.setInterval(fn, ms, ...)
  local call = bind_args(fn, ...)
  local t = core.timer()
  local wait = delay(ms)
  t:start(wait, wait, function() call() end)
  return t
end

local function clear(t)
  if t ~= nil and type(t) == "userdata" then t:close() end
end
timers.clearTimeout = clear
timers.clearInterval = clear

-- Immediates run after I/O in the iteration they were queued in, in order;
-- those queued while running wait for the next iteration (as in Node).
local queue, head, tail = {}, 1, 0

local Immediate = {}
Immediate.__index = Immediate
function Immediate:ref() return self end
function Immediate:unref() return self end
function Immediate:hasRef() return not self._cleared end

local function run_immediates()
  local last = tail
  while head <= last do
    local im = queue[head]
    queue[head] = nil
    head = head + 1
    if not im._cleared then
      im._cleared = true
      im._fn()
    end
  end
  return head <= tail
end

function timers.setImmediate(fn, ...)
  local im = setmetatable({ _fn = bind_args(fn, ...) }, Immediate)
  tail = tail + 1
  queue[tail] = im
  core.immediates_arm(run_immediates)
  return im
end

function timers.clearImmediate(im)
  if type(im) == "table" then im._cleared = true end
end

return timers
