-- net: TCP servers and sockets (also the global `net`).
--
--   net.createServer(function(socket)
--     socket:on("data", function(chunk) socket:write(chunk) end)
--   end):listen(7000, "127.0.0.1")
--
-- In a worker, listen() shares the port through the master (DESIGN 4);
-- elsewhere it binds directly. Sockets: write(data) -> false when buffered
-- past 16 KiB (then "drain"), finish([data]) (also ["end"]), destroy(),
-- setTimeout(ms[, fn]), remoteAddress, remotePort; events data, end, close,
-- error, drain, timeout.

local core = require("luacluster.core")
local events = require("events")
local timers = require("timers")

local EventEmitter = events.EventEmitter

local net = {}

-- Servers -----------------------------------------------------------------------

local Server = EventEmitter.extend({})
net.Server = Server

function Server.new(kind, class)
  local self = setmetatable({}, class or Server)
  self._handle = core.server(kind or "net")
  self.listening = false
  return self
end

-- listen(port[, host][, backlog][, fn]) or listen{port=, host=, backlog=, ipv6Only=};
-- listen() and listen(fn) take a free port (0), as in Node.
function Server:listen(port, host, backlog, fn)
  local opts
  if type(port) == "function" then
    port, host, backlog, fn = nil, nil, nil, port
  end
  if type(port) == "table" then
    opts = port
    fn = host
  else
    if type(host) == "function" then host, backlog, fn = nil, nil, host end
    if type(backlog) == "function" then backlog, fn = nil, backlog end
    opts = { port = port, host = host, backlog = backlog }
  end
  local p = tonumber(opts.port or 0)
  if not p or p < 0 or p > 65535 or p % 1 ~= 0 then
    error("port must be an integer 0-65535, got " .. tostring(opts.port), 2)
  end
  if fn then self:once("listening", fn) end
  if self._configure then self:_configure() end
  -- An error says what it was about (Node: "listen EADDRINUSE: address
  -- already in use 127.0.0.1:8080").
  self._listen_host = opts.host or "0.0.0.0"
  self._listen_port = p
  local status, msg, code = self._handle:listen(self, opts.host, p, opts.backlog,
                                                 opts.ipv6Only)
  if not status then
    -- Node reports listen errors as an "error" event, not a throw.
    timers.setImmediate(function() self:_native("error", msg, code) end)
  elseif status == "listening" then
    timers.setImmediate(function() self:_native("listening") end)
  end
  return self
end

function Server:_native(event, a, b)
  if event == "connection" then
    return self:_connection(a)
  elseif event == "listening" then
    self.listening = true
    local ip, port = self._handle:address()
    self._address = ip and { address = ip, port = port,
                             family = ip:find(":", 1, true) and "IPv6" or "IPv4" }
    self:emit("listening")
  elseif event == "error" then
    local host, port = self._listen_host, self._listen_port
    local where = host:find(":", 1, true) and ("[" .. host .. "]:" .. port)
                  or (host .. ":" .. port)
    local err = { message = ("listen %s: %s %s"):format(b, a, where), code = b,
                  syscall = "listen", address = host, port = port }
    setmetatable(err, { __tostring = function(e) return e.message end })
    self:emit("error", err)
  elseif event == "close" then
    self.listening = false
    self:emit("close")
  end
end

-- address() -> {address=, port=, family=} once listening.
function Server:address() return self._address end

-- close([fn]): stops accepting; "close" once every connection has ended.
function Server:close(fn)
  if fn then self:once("close", fn) end
  self._handle:close()
  return self
end

function Server:getConnections(fn)
  local n = self._handle:connections()
  if fn then timers.setImmediate(function() fn(nil, n) end) end
  return n
end

-- Sockets ------------------------------------------------------------------------

local Socket = EventEmitter.extend({})
net.Socket = Socket

local socket_fields = {
  remoteAddress = function(s) local ip = s._handle:peer() return ip end,
  remotePort = function(s) local _, port = s._handle:peer() return port end,
  bufferSize = function(s) return s._handle:buffered() end,
}
Socket.__index = function(self, key)
  local f = socket_fields[key]
  if f then
    if rawget(self, "_closed") then return nil end
    local v = f(self)
    if key ~= "bufferSize" then rawset(self, key, v) end
    return v
  end
  return Socket[key]
end

function Server:_connection(handle)
  local sock = setmetatable({ _handle = handle }, Socket)
  self:emit("connection", sock)
  return sock
end

-- Data that comes before anyone listens (a connection listener that waits
-- first) is kept, reading paused past 64 KiB, and handed over on the next
-- iteration once a "data" listener comes, as Node's paused streams do.
local KEEP_MAX = 64 * 1024

local function hand_over(self)
  self._handing = false
  local pending = self._pending
  if not pending or self:listenerCount("data") == 0 then return end
  self._pending, self._pending_bytes = nil, nil
  if self._held and not self._closed then
    self._held = nil
    self._handle:resume()
  end
  for i = 1, #pending do self:emit("data", pending[i]) end
  if self._ended then
    self._ended = nil
    self:emit("end")
  end
end

for _, name in ipairs({ "on", "once", "addListener" }) do
  local add = EventEmitter[name]
  Socket[name] = function(self, event, fn)
    add(self, event, fn)
    if event == "data" and rawget(self, "_pending") and not self._handing then
      self._handing = true
      timers.setImmediate(hand_over, self)
    end
    return self
  end
end

function Socket:_native(event, a, b)
  if event == "data" then
    local pending = self._pending
    if pending or self:listenerCount("data") == 0 then
      pending = pending or {}
      pending[#pending + 1] = a
      self._pending = pending
      self._pending_bytes = (self._pending_bytes or 0) + #a
      if self._pending_bytes > KEEP_MAX and not self._held then
        self._held = true
        self._handle:pause()
      end
      return
    end
    self:emit("data", a)
  elseif event == "end" then
    if self._pending then self._ended = true return end
    self:emit("end")
  elseif event == "close" then
    self._closed = true
    self:emit("close", a)
  elseif event == "error" then
    local err = setmetatable({ message = a, code = b },
      { __tostring = function(e) return e.code .. ": " .. e.message end })
    if self:listenerCount("error") > 0 then self:emit("error", err) end
  elseif event == "drain" then
    self:emit("drain")
  elseif event == "timeout" then
    self:emit("timeout")
  end
end

function Socket:write(data, fn)
  if self._closed then error("write after the socket closed", 2) end
  local ok = self._handle:write(tostring(data))
  if fn then timers.setImmediate(fn) end
  return ok
end

function Socket:finish(data)
  if not self._closed then self._handle:finish(data and tostring(data)) end
  return self
end
Socket["end"] = Socket.finish

function Socket:destroy()
  if not self._closed then self._handle:destroy() end
  return self
end

-- setTimeout(ms[, fn]): "timeout" after ms without activity (0 turns it off).
function Socket:setTimeout(ms, fn)
  if fn then self:once("timeout", fn) end
  if not self._closed then self._handle:set_timeout(ms) end
  return self
end

function Socket:setNoDelay(on)
  if not self._closed then self._handle:set_no_delay(on ~= false) end
  return self
end

function Socket:pause() if not self._closed then self._handle:pause() end return self end
function Socket:resume() if not self._closed then self._handle:resume() end return self end

function net.createServer(opts, fn)
  if type(opts) == "function" then fn, opts = opts, nil end
  local server = Server.new("net")
  if fn then server:on("connection", fn) end
  return server
end

-- Outbound sockets: net.connect, net.createConnection, net.isIP.
require("luacluster.net_client")(net)

return net
