-- http: an HTTP/1.1 server (also the global `http`). Parsing, limits,
-- keep-alive and response framing are C (runtime/http.c, lua_http.c); this
-- module is the req/res objects.
--
--   http.createServer(function(req, res)
--     res:setHeader("Content-Type", "text/plain")
--     res:finish("hello " .. req.url)
--   end):listen(8080)
--
-- req: method, url, httpVersion, headers (lower-case keys), socket
-- (remoteAddress, remotePort); events "data", "end", "aborted", "close".
-- res: statusCode, statusMessage, setHeader, getHeader, hasHeader,
-- removeHeader, getHeaders, writeHead(status[, message][, headers]),
-- write(chunk) (false once 16 KiB wait to be sent: then "drain"),
-- finish([chunk]) (also res["end"]), headersSent, finished; events "finish",
-- "close" (after finish, or when the client went away first), "drain".
--
-- A handler that raises an error answers its client 500 (or drops the
-- connection when the head already went out), logs the traceback, and the
-- server goes on serving everyone else.

local core = require("luacluster.core")
local events = require("events")
local header_list = require("luacluster.headers")
local net = require("net")
local spawn = require("luacluster.coroutines").spawn
local timers = require("timers")

local EventEmitter = events.EventEmitter
local lower, tostring, type, pairs = string.lower, tostring, type, pairs
local http_write = core.http_write

local http = {}

http.STATUS_CODES = setmetatable({}, {
  __index = function(_, code) return core.http_status_text(code) end,
})

-- Requests -------------------------------------------------------------------------

local IncomingMessage = EventEmitter.extend({})
http.IncomingMessage = IncomingMessage

local Socket = {}
-- TLS's fields and methods on an https request's socket (lua/https.lua
-- fills this table).
http._tls_socket = {}

Socket.__index = function(self, key)
  if key == "remoteAddress" or key == "remotePort" then
    local ip, port = core.http_peer(rawget(self, "_conn"))
    rawset(self, "remoteAddress", ip)
    rawset(self, "remotePort", port)
    return rawget(self, key)
  end
  local f = http._tls_socket[key]
  if f then return f(self) end
end

IncomingMessage.__index = function(self, key)
  if key == "socket" or key == "connection" then
    local s = setmetatable({ _conn = rawget(self, "_conn") }, Socket)
    rawset(self, "socket", s)
    rawset(self, "connection", s)
    return s
  end
  return IncomingMessage[key]
end

-- C tells a request "data" (a body chunk), "end" and "aborted" (the client
-- went away before its response finished: the response hears "close").
function IncomingMessage:_native(event, ...)
  if event == "end" then
    self.complete = true
  elseif event == "aborted" then
    self.aborted = true
    self:emit("aborted")
    local res = rawget(self, "_res")
    if res then res:emit("close") end
    return self:emit("close")
  end
  return self:emit(event, ...)
end

-- What arrived while nobody listened (a handler that waited before reading
-- the body) goes to the listeners when they come, on the next iteration.
local function hand_over(self)
  self._handing = false
  local pending = self._pending
  if pending and self:listenerCount("data") > 0 then
    self._pending = nil
    for i = 1, #pending do self:emit("data", pending[i]) end
  end
  if self._ended and not self._pending and self:listenerCount("end") > 0 then
    self._ended = nil
    self.complete = true
    self:emit("end")
  end
end

for _, name in ipairs({ "on", "once", "addListener" }) do
  local add = EventEmitter[name]
  IncomingMessage[name] = function(self, event, fn)
    add(self, event, fn)
    if (event == "data" or event == "end") and not self._handing and
       (rawget(self, "_pending") or rawget(self, "_ended")) then
      self._handing = true
      timers.setImmediate(hand_over, self)
    end
    return self
  end
end

-- Responses --------------------------------------------------------------------------

local ServerResponse = EventEmitter.extend({})
http.ServerResponse = ServerResponse

-- Headers live in a flat list {name, value, ...}: a response has few, and a
-- flat list goes to C as is.
function ServerResponse:setHeader(name, value)
  if self.headersSent then error("cannot set headers after they are sent", 2) end
  value = header_list.check(name, value, 2)
  local h = self._h
  if not h then
    self._h = { name, value }
  else
    header_list.set(h, name, value)
  end
  return self
end

function ServerResponse:getHeader(name)
  return self._h and header_list.get(self._h, name)
end

function ServerResponse:hasHeader(name) return self:getHeader(name) ~= nil end

function ServerResponse:removeHeader(name)
  if self._h then header_list.remove(self._h, name) end
end

function ServerResponse:getHeaders()
  local out = {}
  local h = self._h or {}
  for i = 1, #h, 2 do out[lower(h[i])] = h[i + 1] end
  return out
end

function ServerResponse:getHeaderNames()
  local out = {}
  local h = self._h or {}
  for i = 1, #h, 2 do out[#out + 1] = lower(h[i]) end
  return out
end

-- writeHead(status[, message][, headers]): headers is a table name -> value.
function ServerResponse:writeHead(status, message, headers)
  if self.headersSent then error("writeHead after the head was sent", 2) end
  if type(message) == "table" then message, headers = nil, message end
  status = tonumber(status)
  if not status or status < 100 or status > 999 or status % 1 ~= 0 then
    error("invalid status code " .. tostring(status), 2)
  end
  self.statusCode = status
  if message then self.statusMessage = message end
  if headers then
    for k, v in pairs(headers) do self:setHeader(k, v) end
  end
  return self
end

local function send(self, chunk, finish)
  if self.finished then error("write after end", 3) end
  -- Strings, and numbers as Lua's own string arguments take them; anything
  -- else is a mistake that must not go out as "table: 0x...".
  local t = type(chunk)
  if chunk ~= nil and t ~= "string" and t ~= "number" then
    error(("res:%s: the chunk must be a string, got a %s")
          :format(finish and "finish" or "write", t), 3)
  end
  -- http_write raises on a bad header: nothing is sent then, and _fail()
  -- can still answer 500.
  local ok, below = http_write(self._conn, self._seq, self.statusCode,
                               self.statusMessage, self._h, chunk, finish, self)
  self.headersSent = true
  if finish then
    self.finished = true
    self.writableEnded = true
    self:emit("finish")
    self:emit("close")
  end
  return ok and below
end

function ServerResponse:write(chunk)
  return send(self, chunk, false)
end

function ServerResponse:finish(chunk)
  send(self, chunk, true)
  return self
end
ServerResponse["end"] = ServerResponse.finish

-- C tells a response "drain" once what write() buffered has gone out.
function ServerResponse:_native(event)
  if event == "drain" then self:emit("drain") end
end

-- destroy(): drops the connection now (Node's res.destroy()): for an
-- answer that cannot be completed, so the client does not take it whole.
function ServerResponse:destroy()
  if self.finished then return self end
  self.finished = true
  core.http_destroy(self._conn)
  return self
end

-- A handler failed: 500 if nothing went out yet, else drop the connection.
function ServerResponse:_fail()
  if self.finished then return end
  if self.headersSent then
    self.finished = true
    core.http_destroy(self._conn)
    return
  end
  self._h = { "Content-Type", "text/plain" }
  self.statusCode = 500
  self.statusMessage = nil
  self:finish("Internal Server Error\n")
end

-- Servers -----------------------------------------------------------------------------

local Server = setmetatable({}, { __index = net.Server })
Server.__index = Server
http.Server = Server

local settings = {
  keepAliveTimeout = true, headersTimeout = true, requestTimeout = true,
  maxHeaderSize = true, maxUrlSize = true, maxHeadersCount = true,
  maxBodySize = true,
}

-- Limits and timeouts are settable as server fields (Node's names), or as
-- createServer options; they reach C at once.
Server.__newindex = function(self, key, value)
  if settings[key] then
    self._handle:configure({ [key] = value })
  else
    rawset(self, key, value)
  end
end

local server_index = Server.__index
Server.__index = function(self, key)
  if settings[key] then return rawget(self, "_handle"):configure({})[key] end
  return server_index[key]
end

local traceback = debug.traceback

-- Runs in a pooled coroutine: the handler may wait (fetch, sleep, ...), and
-- an error before or after a wait answers 500.
local function handle(server, req, res)
  local ok, err = xpcall(server.emit, traceback, server, "request", req, res)
  if not ok then
    if err == core.EXIT then error(err, 0) end -- process.exit()
    core.log("error", "request handler failed for " .. req.method .. " " ..
             req.url .. ": " .. tostring(err))
    res:_fail()
  end
end

function Server:_native(event, a, b)
  if event ~= "request" then
    return net.Server._native(self, event, a, b)
  end
  local req = setmetatable(a, IncomingMessage)
  local res = setmetatable({ _conn = req._conn, _seq = req._seq, statusCode = 200,
                             req = req, headersSent = false, finished = false },
                           ServerResponse)
  req._res = res
  spawn(handle, self, req, res)
end

-- The client: http.request, http.get, http.Agent, http.globalAgent
-- (lua/luacluster/http_client.lua).
local client = require("luacluster.http_client")
http.request = client.request
http.get = client.get
http.Agent = client.Agent
http.globalAgent = client.globalAgent
http.ClientRequest = client.ClientRequest

function http.createServer(opts, fn)
  if type(opts) == "function" then fn, opts = opts, nil end
  local self = net.Server.new("http", Server)
  -- Looked up on every request: as the instance's own fields, they skip
  -- the __index function that serves the settings.
  rawset(self, "_native", Server._native)
  rawset(self, "emit", Server.emit)
  for k, v in pairs(opts or {}) do
    if settings[k] then self[k] = v end
  end
  if fn then self:on("request", fn) end
  return self
end

return http
