-- events: Node's EventEmitter for Lua.
--
--   local Emitter = require("events").EventEmitter
--   local obj = Emitter.new()
--   obj:on("data", function(x) ... end)
--   obj:emit("data", 42)
--
-- Listener lists are copied on change, never on emit, so a listener may add
-- or remove listeners while an event is being emitted. An "error" event
-- with no listener raises its argument, as in Node.
--
-- Emitted outside any coroutine (an event from the runtime, or the main
-- chunk), each listener runs in a coroutine of its own from the pool, so it
-- may wait (fetch, sleep, ...); an error in it is reported (with a
-- traceback) to process "uncaughtException", and the process exits if
-- nothing handles it. Emitted inside a coroutine, listeners run inline, and
-- an error propagates to whoever emitted.

local coroutines = require("luacluster.coroutines")

local type, error, setmetatable = type, error, setmetatable
local spawn, inside = coroutines.spawn, coroutines.inside

local EventEmitter = {}
EventEmitter.__index = EventEmitter

local function check_listener(fn)
  if type(fn) ~= "function" then
    error("listener must be a function, got " .. type(fn), 3)
  end
end

function EventEmitter.new(obj)
  return setmetatable(obj or {}, EventEmitter)
end

-- Makes `class` (a table used as a metatable) inherit the emitter methods.
function EventEmitter.extend(class)
  class.__index = class
  return setmetatable(class, { __index = EventEmitter })
end

local function add(self, name, fn, prepend)
  check_listener(fn)
  local all = self._events
  if not all then
    all = {}
    self._events = all
  end
  local old = all[name]
  if not old then
    all[name] = { fn }
  else
    local new = {}
    local n = #old
    for i = 1, n do new[i] = old[i] end
    if prepend then
      table.insert(new, 1, fn)
    else
      new[n + 1] = fn
    end
    all[name] = new
  end
  return self
end

function EventEmitter:on(name, fn) return add(self, name, fn, false) end
EventEmitter.addListener = EventEmitter.on

function EventEmitter:prependListener(name, fn) return add(self, name, fn, true) end

function EventEmitter:once(name, fn)
  check_listener(fn)
  local fired = false
  local wrapper
  wrapper = function(...)
    if fired then return end
    fired = true
    self:off(name, wrapper)
    return fn(...)
  end
  self._once = self._once or setmetatable({}, { __mode = "k" })
  self._once[wrapper] = fn
  return add(self, name, wrapper, false)
end

-- Removes fn (or a once() wrapper of fn) from name's listeners.
function EventEmitter:off(name, fn)
  local all = self._events
  local old = all and all[name]
  if not old then return self end
  local once = self._once
  local new, removed = {}, false
  for i = 1, #old do
    local l = old[i]
    if not removed and (l == fn or (once and once[l] == fn)) then
      removed = true
    else
      new[#new + 1] = l
    end
  end
  all[name] = #new > 0 and new or nil
  return self
end
EventEmitter.removeListener = EventEmitter.off

function EventEmitter:removeAllListeners(name)
  if name == nil then
    self._events = nil
  elseif self._events then
    self._events[name] = nil
  end
  return self
end

function EventEmitter:listenerCount(name)
  local list = self._events and self._events[name]
  return list and #list or 0
end

function EventEmitter:listeners(name)
  local list = self._events and self._events[name]
  local copy = {}
  for i = 1, list and #list or 0 do copy[i] = list[i] end
  return copy
end

function EventEmitter:emit(name, ...)
  local all = self._events
  local list = all and all[name]
  if not list then
    if name == "error" then
      local err = ...
      error(err == nil and "unhandled 'error' event" or err, 2)
    end
    return false
  end
  local n = #list
  if inside() then
    if n == 1 then
      list[1](...)
    else
      for i = 1, n do list[i](...) end
    end
  elseif n == 1 then
    spawn(list[1], ...)
  else
    for i = 1, n do spawn(list[i], ...) end
  end
  return true
end

-- Calls name's listeners here and now, in whatever runs (the runtime's
-- own "exit" and "uncaughtException": they must finish before it goes on).
function EventEmitter:_emit_here(name, ...)
  local list = self._events and self._events[name]
  if not list then return false end
  for i = 1, #list do list[i](...) end
  return true
end

-- Gives a module table emitter functions that work both as module.on(...)
-- and module:on(...): Node's idiom is the dot, Lua's habit the colon.
local function bind(module)
  local methods = { "on", "addListener", "once", "off", "removeListener",
                    "removeAllListeners", "emit", "listenerCount", "listeners",
                    "prependListener", "_emit_here" }
  for _, m in ipairs(methods) do
    local method = EventEmitter[m]
    module[m] = function(first, ...)
      if first == module then
        return method(module, ...)
      end
      return method(module, first, ...)
    end
  end
  return module
end

return {
  EventEmitter = EventEmitter,
  bind = bind,
}
