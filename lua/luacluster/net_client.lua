-- luacluster.net_client: net.connect / net.createConnection, Node's names.
--
--   local sock = net.connect({ host = "127.0.0.1", port = 7000 }, function()
--     sock:write("ping\n")
--   end)
--   sock:on("data", function(chunk) print(chunk) end)
--
-- net.connect(port[, host][, fn]) or net.connect{port=, host=, timeout=,
-- localAddress=, family=, connectTimeout=}; fn listens for "connect".
-- host defaults to "localhost" and is looked up on the thread pool.
-- The socket is a net.Socket (write, finish, destroy, setTimeout,
-- setNoDelay, setKeepAlive, pause, resume, remoteAddress, remotePort,
-- localAddress, localPort) with the events connect, ready, data, end,
-- close(hadError), error, timeout, drain. Writes made before the connection
-- is up wait for it. Errors name the address: err.code "ECONNREFUSED",
-- err.message "connect ECONNREFUSED 127.0.0.1:9"; one with no "error"
-- listener is logged (Node would end the process).

local core = require("luacluster.core")
local dns = require("dns")
local errors = require("luacluster.errors")
local timers = require("timers")

local type, tostring, tonumber, setmetatable, rawget, rawset =
  type, tostring, tonumber, setmetatable, rawget, rawset

-- A connect that does not finish by then fails with ETIMEDOUT.
local CONNECT_TIMEOUT = 10000

return function(net)
  local Socket = net.Socket
  local ClientSocket = setmetatable({}, { __index = Socket })

  local fields = {
    remoteAddress = function(s) local ip = s._handle:peer() return ip end,
    remotePort = function(s) local _, port = s._handle:peer() return port end,
    localAddress = function(s) local ip = s._handle:local_address() return ip end,
    localPort = function(s) local _, port = s._handle:local_address() return port end,
    bufferSize = function(s) return s._handle:buffered() end,
  }
  ClientSocket.__index = function(self, key)
    local f = fields[key]
    if f then
      -- Known once connected; gone once closed.
      if rawget(self, "_closed") or rawget(self, "connecting") ~= false then return nil end
      local v = f(self)
      if key ~= "bufferSize" then rawset(self, key, v) end
      return v
    end
    return ClientSocket[key]
  end

  local function fail(self, code, message)
    local err = errors.new(code, message, {
      address = self._address, port = self._port,
      syscall = self.connecting and "connect" or nil,
    })
    if self:listenerCount("error") > 0 then
      self:emit("error", err)
    else
      core.log("warn", "socket to " .. tostring(self._host) .. ":" ..
               tostring(self._port) .. ": " .. err.message .. " (no 'error' listener)")
    end
  end

  function ClientSocket:_native(event, a, b, c)
    if event == "connect" then
      self.connecting = false
      if self._idle then self._handle:set_timeout(self._idle) end
      self:emit("connect")
      self:emit("ready")
    elseif event == "error" and c then
      -- TLS (tls.connect): the message is OpenSSL's ("certificate has
      -- expired"), the code Node's ("CERT_HAS_EXPIRED").
      fail(self, b, a)
      self.connecting = false
    elseif event == "error" then
      local where = (self._address or self._host) .. ":" .. tostring(self._port)
      local message = (self.connecting and "connect " or "") .. b .. " " .. where
      if b == "ETIMEDOUT" and self.connecting then message = "connect ETIMEDOUT " .. where end
      fail(self, b, message)
      self.connecting = false
    elseif event == "close" then
      self.connecting = false
      self._closed = true
      self.destroyed = true
      self:emit("close", a)
    else
      return Socket._native(self, event, a, b)
    end
  end

  -- Before the address is known (a lookup), calls are kept and replayed.
  local function later(self, method, ...)
    local q = rawget(self, "_queued")
    if not q then q = {} self._queued = q end
    q[#q + 1] = { method, select("#", ...), ... }
  end

  local function replay(self)
    local q = self._queued
    self._queued = nil
    for _, call in ipairs(q or {}) do
      call[1](self, unpack(call, 3, 2 + call[2]))
    end
  end

  function ClientSocket:write(data, fn)
    if self._closed then error("write after the socket closed", 2) end
    if not self._handle then
      later(self, Socket.write, data, fn)
      return false
    end
    return Socket.write(self, data, fn)
  end

  function ClientSocket:finish(data)
    if not self._handle and not self._closed then
      later(self, Socket.finish, data)
      return self
    end
    return Socket.finish(self, data)
  end
  ClientSocket["end"] = ClientSocket.finish

  -- setTimeout(ms[, fn]): "timeout" after ms without activity, counted
  -- once connected (the connect has its own bound, connectTimeout).
  function ClientSocket:setTimeout(ms, fn)
    if fn then self:once("timeout", fn) end
    ms = tonumber(ms) or 0
    self._idle = ms > 0 and ms or nil
    if self.connecting == false and not self._closed then self._handle:set_timeout(ms) end
    return self
  end

  function ClientSocket:setKeepAlive(enable, delay)
    if not self._handle then later(self, ClientSocket.setKeepAlive, enable, delay) return self end
    if not self._closed then self._handle:set_keep_alive(enable ~= false, tonumber(delay) or 0) end
    return self
  end

  for _, m in ipairs({ "setNoDelay", "pause", "resume" }) do
    ClientSocket[m] = function(self, ...)
      if not self._handle then later(self, Socket[m], ...) return self end
      return Socket[m](self, ...)
    end
  end

  function ClientSocket:destroy(err)
    if self._closed then return self end
    if not self._handle then
      -- Still looking the name up: nothing to close but the object.
      self._queued = nil
      self._closed = true
      self.destroyed = true
      self.connecting = false
      timers.setImmediate(function()
        if err then fail(self, err.code or "ERR", tostring(err)) end
        self:emit("close", err ~= nil)
      end)
      return self
    end
    return Socket.destroy(self)
  end

  local function start(self, address, port, opts)
    if self._closed then return end
    self._address = address
    local handle, message, code = core.tcp_connect(self, address, port,
      tonumber(opts.connectTimeout) or CONNECT_TIMEOUT, opts.localAddress)
    if not handle then
      timers.setImmediate(function()
        fail(self, code, "connect " .. code .. " " .. address .. ":" .. port)
        self.connecting = false
        self._closed = true
        self:emit("close", true)
      end)
      return
    end
    self._handle = handle
    local t = opts._tls
    if t then
      -- tls.connect: the handshake follows the connect; "connect" comes
      -- once it is done.
      local ok, message, code = core.tls_start(handle, t.ctx, t.servername,
                                               t.session, t.timeout)
      if not ok then
        handle:destroy()
        timers.setImmediate(function()
          fail(self, code, message)
        end)
        return
      end
    end
    replay(self)
  end

  local function args(a, b, c)
    if type(a) == "table" then return a, b end
    if type(b) == "function" then b, c = nil, b end
    return { port = a, host = b }, c
  end

  -- connect(port[, host][, fn]) or connect(options[, fn]) -> Socket
  function net.connect(...)
    local opts, fn = args(...)
    local port = tonumber(opts.port)
    if not port or port < 1 or port > 65535 or port % 1 ~= 0 then
      error("port must be an integer 1-65535, got " .. tostring(opts.port), 2)
    end
    local host = opts.host or "localhost"
    if type(host) ~= "string" then error("host must be a string", 2) end
    local self = setmetatable({ connecting = true, _host = host, _port = port }, ClientSocket)
    if fn then self:once("connect", fn) end
    if opts.timeout then self:setTimeout(opts.timeout) end
    if core.ip_family(host) ~= 0 then
      start(self, host, port, opts)
    else
      dns.lookup(host, { family = opts.family }, function(err, address)
        if err then
          if not self._closed then
            fail(self, err.code, err.message)
            self.connecting = false
            self._closed = true
            self:emit("close", true)
          end
          return
        end
        start(self, address, port, opts)
      end)
    end
    return self
  end
  net.createConnection = net.connect
  net.ClientSocket = ClientSocket

  -- net.tcp(): a cosocket (lua/luacluster/cosocket.lua).
  net.tcp = require("luacluster.cosocket")

  function net.isIP(s) return core.ip_family(s) end
  function net.isIPv4(s) return core.ip_family(s) == 4 end
  function net.isIPv6(s) return core.ip_family(s) == 6 end
end
