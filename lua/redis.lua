-- redis: a Redis client in C (one connection per client, shared by every
-- request of the worker; lua_redis.c, core/redis*.c), Node redis's names.
--
--   local redis = require("redis")
--   local db = redis.createClient({ url = "redis://127.0.0.1:6379/0" })
--
--   local v, err = db:get("k")                 -- in a coroutine: waits
--   db:set("k", "v", "EX", 60, function(err, ok) end)   -- or a callback
--   local n = db:call("incrby", "hits", 5)     -- any command by name
--
-- Every lower-case name is a command (db:hset, db:zrangebyscore, ...): the
-- method is made the first time it is looked up. Arguments are strings,
-- numbers, or tables spread into arguments (a list's items, a map's keys
-- and values). Replies: strings, numbers, nil, tables for arrays (a nil
-- inside one is redis.null), hgetall a map; an error reply is nil, err (a
-- string) or, with a callback, fn(err) with err.code and err.message.
--
-- Commands issued in one loop iteration leave in one write. A lost
-- connection comes back by itself (backoff with jitter), AUTH and SELECT
-- again, subscriptions renewed; commands issued meanwhile wait (at most
-- maxOfflineQueue of them, each at most commandTimeout).
--
-- Events (Node redis's): connect, ready, error(err), end, reconnecting(
-- {delay=, attempt=}), message(channel, message), pmessage(pattern,
-- channel, message). An error with no listener is logged.

local core = require("luacluster.core")
local R = require("luacluster.redis")
local events = require("events")
local errors = require("luacluster.errors")
local coroutines = require("luacluster.coroutines")
local timers = require("timers")
local url = require("url")

local EventEmitter = events.EventEmitter
local type, tostring, tonumber, pairs, select, setmetatable, rawset, error =
  type, tostring, tonumber, pairs, select, setmetatable, rawset, error
local find, match = string.find, string.match

R.setup(coroutines.spawn, function(fn, code, message)
  timers.setImmediate(fn, errors.new(code, message))
end, errors.Error)

local ccall = R.methods.call
local cexec = R.methods.exec

local redis = { null = R.null }

-- The defaults (README: "Redis").
redis.defaults = {
  host = "127.0.0.1",
  port = 6379,
  db = 0,
  connectTimeout = 10000,   -- ms to connect, AUTH and SELECT
  commandTimeout = 10000,   -- ms for a reply (0: wait forever)
  retryDelay = 100,         -- ms before the first reconnect, doubling ...
  maxRetryDelay = 2000,     -- ... up to this (each minus a random half)
  maxOfflineQueue = 10000,  -- commands waiting for a connection
  maxReplySize = 64 * 1024 * 1024, -- bytes of one reply
}

-- redis://[user:password@]host[:port][/db]
local function parse_url(s)
  local u = url.parse(s)
  if u.protocol == "rediss:" then
    error("rediss:// (TLS) is not supported", 4)
  end
  if u.protocol ~= "redis:" or not u.hostname or u.hostname == "" then
    error("a Redis url looks like redis://[user:password@]host[:port][/db], got " ..
          tostring(s), 4)
  end
  local o = { host = u.hostname, port = tonumber(u.port) }
  local db = u.pathname and match(u.pathname, "^/(%d+)$")
  if u.pathname and u.pathname ~= "/" and not db then
    error("a Redis url's path is a database number, got " .. u.pathname, 4)
  end
  o.db = tonumber(db)
  if u.auth then
    local user, password = match(u.auth, "^([^:]*):(.*)$")
    if not user then error("a Redis url's user needs a password: user:password@", 4) end
    if user ~= "" then o.username = user end
    o.password = password
  end
  return o
end

local function options(a, b, c)
  local o = {}
  for k, v in pairs(redis.defaults) do o[k] = v end
  local given
  if type(a) == "table" then
    given = a
  elseif type(a) == "string" then
    given = b or {}
    for k, v in pairs(parse_url(a)) do o[k] = v end
  elseif type(a) == "number" then
    o.port = a
    if type(b) == "string" then o.host, given = b, c else given = b end
  elseif a ~= nil then
    error("createClient([url | port[, host]][, options]) got a " .. type(a), 3)
  end
  if given then
    if type(given) ~= "table" then error("redis options must be a table", 3) end
    if given.url then
      for k, v in pairs(parse_url(given.url)) do o[k] = v end
    end
    for k, v in pairs(given) do
      if k ~= "url" then o[k] = v end
    end
  end
  if o.enableOfflineQueue == false then o.maxOfflineQueue = 0 end
  return o
end

-- Clients -------------------------------------------------------------------------

local Client = {}
Client.__index = Client

-- A command as a method: made once per name, on first use.
local function command(name)
  return function(self, ...)
    return ccall(self._h, name, ...)
  end
end

setmetatable(Client, { __index = function(t, k)
  local v = EventEmitter[k]
  if v == nil and type(k) == "string" and find(k, "^[a-z][a-z0-9_]*$") then
    v = command(k)
  end
  if v ~= nil then rawset(t, k, v) end
  return v
end })

function redis.createClient(a, b, c)
  local o = options(a, b, c)
  local self = setmetatable({ options = o, connected = false, ready = false,
                              closing = false }, Client)
  self._h = R.new(self, o)
  return self
end

-- call(name, args...[, fn]): any command by name.
function Client:call(name, ...)
  if type(name) ~= "string" or name == "" then
    error("call(name, ...) needs a command name", 2)
  end
  return ccall(self._h, name, ...)
end

local function to_map(list)
  local m = {}
  for i = 1, #list, 2 do m[list[i]] = list[i + 1] end
  return m
end

-- hgetall(key[, fn]): the hash as a table of fields to values.
function Client:hgetall(key, fn)
  if type(fn) == "function" then
    return ccall(self._h, "hgetall", key, function(err, v)
      return fn(err, v and to_map(v))
    end)
  end
  local v, err = ccall(self._h, "hgetall", key)
  return v and to_map(v), err
end

local function subscription(kind)
  return function(self, first, ...)
    if first == nil then return self._h:subscribe(kind) end
    if type(first) == "table" then
      local names = { unpack(first) }
      local n = #names
      for i = 1, select("#", ...) do names[n + i] = select(i, ...) end
      return self._h:subscribe(kind, unpack(names, 1, n + select("#", ...)))
    end
    return self._h:subscribe(kind, first, ...)
  end
end
-- subscribe(channel, ...[, fn]) -> the count of subscriptions, once
-- confirmed; messages come as "message" (and "pmessage") events.
Client.subscribe = subscription(1)
Client.psubscribe = subscription(2)
Client.unsubscribe = subscription(3)
Client.punsubscribe = subscription(4)

-- quit(): QUIT after what is queued, then the client closes.
function Client:quit()
  self.closing = true
  self._h:quit()
  return true
end

-- disconnect(): closes now; commands without a reply fail.
function Client:disconnect()
  self.closing = true
  self._h:close()
end

-- unref()/ref(): whether the client may keep the process alive while it
-- has commands in flight or subscriptions (an idle one never does).
function Client:unref() self._h:set_ref(false) return self end
function Client:ref() self._h:set_ref(true) return self end

-- stats() -> {commands=, writes=, replies=, connections=}: what the
-- client did so far (commands / writes: the pipelining at work).
function Client:stats() return self._h:stats() end

-- duplicate([options]): a new client with this one's options (and these).
function Client:duplicate(overrides)
  local o = {}
  for k, v in pairs(self.options) do o[k] = v end
  for k, v in pairs(overrides or {}) do o[k] = v end
  return redis.createClient(o)
end

-- The C side's events.
function Client:_native(event, a, b, c)
  if event == "message" then
    return self:emit("message", a, b)
  elseif event == "pmessage" then
    return self:emit("pmessage", c, a, b)
  elseif event == "connect" then
    self.connected = true
    return self:emit("connect")
  elseif event == "ready" then
    self.ready = true
    return self:emit("ready")
  elseif event == "end" then
    self.connected, self.ready = false, false
    return self:emit("end")
  elseif event == "reconnecting" then
    return self:emit("reconnecting", { delay = a, attempt = b })
  elseif event == "error" then
    if self:listenerCount("error") > 0 then return self:emit("error", a) end
    core.log("warn", "redis " .. tostring(self.options.host) .. ":" ..
             tostring(self.options.port) .. ": " .. a.message .. " (no 'error' listener)")
  end
end

-- Transactions -------------------------------------------------------------------

local Multi = {}
Multi.__index = Multi

local function queued(name)
  return function(self, ...)
    local n = select("#", ...)
    local cmd = { name, ... }
    for i = 1, n do
      if cmd[i + 1] == nil then
        error("bad argument #" .. i .. " to '" .. name .. "' (string or number expected, got nil)", 2)
      end
    end
    self._queue[#self._queue + 1] = cmd
    return self
  end
end

setmetatable(Multi, { __index = function(t, k)
  if type(k) == "string" and find(k, "^[a-z][a-z0-9_]*$") then
    local v = queued(k)
    rawset(t, k, v)
    return v
  end
end })

-- multi([commands]): a transaction; its commands are kept here and sent
-- with exec() as MULTI ... EXEC in one write (no other request's command
-- comes between them).
function Client:multi(commands)
  local m = setmetatable({ _client = self, _queue = {} }, Multi)
  for _, cmd in ipairs(commands or {}) do m._queue[#m._queue + 1] = cmd end
  return m
end

function Multi:discard()
  self._queue = {}
  return self
end

-- hgetall replies become maps, as outside a transaction.
local function shape(q, replies)
  if type(replies) ~= "table" then return replies end
  for i, cmd in ipairs(q) do
    if cmd[1] == "hgetall" and type(replies[i]) == "table" then
      replies[i] = to_map(replies[i])
    end
  end
  return replies
end

-- exec([fn]) -> the list of replies (an error reply in it is an error
-- object), or nil when a WATCHed key changed.
function Multi:exec(fn)
  local q = self._queue
  self._queue = {}
  local h = self._client._h
  if type(fn) == "function" then
    return cexec(h, q, function(err, replies) return fn(err, shape(q, replies)) end)
  end
  local replies, err = cexec(h, q)
  return shape(q, replies), err
end

return redis
