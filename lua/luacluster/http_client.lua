-- luacluster.http_client: the HTTP/1.1 client, Node's names (http.request,
-- http.get, http.Agent, http.globalAgent) and fetch for top-to-bottom code.
-- Connections, pooling, framing and parsing are C (core/http/http_client.c,
-- http_agent.c); this module is the request and response objects.
--
--   http.get("http://127.0.0.1:8081/users/1", function(res)
--     local body = {}
--     res:on("data", function(c) body[#body + 1] = c end)
--     res:on("end", function() print(res.statusCode, table.concat(body)) end)
--   end)
--
--   local res, err = fetch("http://127.0.0.1:8081/x", { timeout = 2000 })
--
-- http.request(url | options[, options][, fn(res)]) -> ClientRequest.
-- options: protocol ("http:", or "https:": lua/https.lua), host /
-- hostname, port, path, method,
-- headers, agent (an Agent, false for a connection of its own, nil for
-- globalAgent), timeout (ms idle: "timeout" event, else an ETIMEDOUT
-- error), maxHeaderSize, maxHeadersCount, maxBodySize (0: none).
-- ClientRequest: setHeader, getHeader, hasHeader, removeHeader,
-- write(chunk) (false once 16 KiB wait: then "drain"), finish([chunk])
-- (also ["end"]), abort(), destroy([err]), setTimeout(ms[, fn]),
-- reusedSocket; events response(res), error(err), timeout, drain, close.
-- The response (an IncomingMessage): statusCode, statusMessage, headers
-- (lower-case keys), httpVersion, complete; pause(), resume(); events
-- data, end, aborted, error, close.

local core = require("luacluster.core")
local events = require("events")
local errors = require("luacluster.errors")
local header_list = require("luacluster.headers")

local EventEmitter = events.EventEmitter
local type, tostring, tonumber, pairs, setmetatable, error =
  type, tostring, tonumber, pairs, setmetatable, error
local lower, upper, sub, find, match =
  string.lower, string.upper, string.sub, string.find, string.match

local M = {}
local NONE = {} -- an empty table for absent options (never written)

-- Agents -------------------------------------------------------------------------

local Agent = {}
Agent.__index = Agent
M.Agent = Agent

-- The defaults, bounded where Node's are not (README: "HTTP client").
Agent.defaultOptions = {
  keepAlive = false,          -- Node's new Agent(); globalAgent turns it on
  maxSockets = 256,           -- per host:port (Node: Infinity)
  maxFreeSockets = 256,       -- idle ones kept per host:port (Node: 256)
  maxQueue = 1024,            -- requests waiting per host:port (Node: no bound)
  freeSocketTimeout = 4000,   -- idle ms before closing (under the usual 5 s)
  connectTimeout = 10000,     -- ms for a connection to be made
  timeout = 60000,            -- idle ms of a request before "timeout"
}

function Agent.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("Agent options must be a table", 2) end
  local o = {}
  for k, v in pairs(Agent.defaultOptions) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  if o.maxSockets == math.huge then o.maxSockets = 1e9 end
  if o.maxQueue == math.huge then o.maxQueue = 1e9 end
  local self = setmetatable({ options = o, keepAlive = o.keepAlive and true or false,
                              maxSockets = o.maxSockets, maxFreeSockets = o.maxFreeSockets,
                              timeout = o.timeout }, Agent)
  self._handle = core.http_agent(o)
  return self
end
setmetatable(Agent, { __call = function(_, opts) return Agent.new(opts) end })

-- stats([host, port]) -> {sockets=, free=, queued=, connections=}
function Agent:stats(host, port) return self._handle:stats(host, port) end

-- destroy(): closes the idle connections (requests in flight finish).
function Agent:destroy() self._handle:destroy() end

M.globalAgent = Agent.new({ keepAlive = true })
-- https.globalAgent: the same kind of agent; its pools are per TLS
-- context too.
M.httpsGlobalAgent = Agent.new({ keepAlive = true })
M.httpsGlobalAgent.defaultPort = 443
-- agent = false: a connection of its own, closed after the response.
local one_shot_agent

local function agent_for(agent, secure)
  if agent == nil then return secure and M.httpsGlobalAgent or M.globalAgent end
  if agent == false then
    one_shot_agent = one_shot_agent or Agent.new({ keepAlive = false, maxSockets = 1e9 })
    return one_shot_agent
  end
  if getmetatable(agent) ~= Agent then error("agent must be an http.Agent or false", 3) end
  return agent
end

-- URLs --------------------------------------------------------------------------------

local function host_header(host, port, secure)
  if find(host, ":", 1, true) then host = "[" .. host .. "]" end
  if port == (secure and 443 or 80) then return host end
  return host .. ":" .. port
end

-- "http(s)://host:port" -> {host=, port=, secure=}; nil, why when it is not one.
local function parse_origin(url, origin)
  local scheme, authority = match(origin, "^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "not an absolute http:// url: " .. url end
  scheme = lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported protocol " .. scheme .. ": " .. url
  end
  local secure = scheme == "https"
  if find(authority, "@", 1, true) then return nil, "credentials in the url are not supported" end
  local host, port
  if sub(authority, 1, 1) == "[" then
    host, port = match(authority, "^%[([^%]]+)%]:?(%d*)$")
  else
    host, port = match(authority, "^([^:]+):?(%d*)$")
  end
  if not host or host == "" then return nil, "no host in url: " .. url end
  port = port ~= "" and tonumber(port) or (secure and 443 or 80)
  if port < 1 or port > 65535 then return nil, "bad port in url: " .. url end
  return { host = host, port = port, secure = secure,
           host_header = host_header(host, port, secure) }
end

-- Origins parsed before, so a client calling the same few hosts parses
-- each once; bounded (emptied when full).
local origins, norigins = {}, 0

-- "http://host:port/path?q" -> {host=, port=, host_header=}, path; or nil,
-- why when it is not such a url.
local function parse_url(url)
  if type(url) ~= "string" then return nil, "url must be a string" end
  local s = find(url, "://", 1, true)
  local cut, q, h
  if s then -- the origin ends at the first "/", "?" or "#" (plain finds)
    cut, q, h = find(url, "/", s + 3, true), find(url, "?", s + 3, true), find(url, "#", s + 3, true)
    if q and (not cut or q < cut) then cut = q end
    if h and (not cut or h < cut) then cut = h end
  end
  local origin = cut and sub(url, 1, cut - 1) or url
  local o = origins[origin]
  if not o then
    local why
    o, why = parse_origin(url, origin)
    if not o then return nil, why end
    if norigins >= 256 then origins, norigins = {}, 0 end
    origins[origin] = o
    norigins = norigins + 1
  end
  local path = cut and sub(url, cut) or "/"
  local hash = find(path, "#", 1, true)
  if hash then path = sub(path, 1, hash - 1) end
  if path == "" then path = "/" elseif sub(path, 1, 1) ~= "/" then path = "/" .. path end
  return o, path
end
M.parse_url = parse_url

-- Headers: a flat list {name, value, ...} (luacluster.headers).
local function set_header(list, name, value)
  header_list.set(list, name, header_list.check(name, value, 3))
end

-- A table's keys are distinct already: its headers go in as they are.
local function flat_headers(headers)
  local list, n = {}, 0
  for k, v in pairs(headers or NONE) do
    if type(v) ~= "string" then
      local one = {}
      set_header(one, k, v) -- checks, and makes numbers strings
      v = one[2]
    elseif type(k) ~= "string" then
      error("header name must be a string", 3)
    end
    list[n + 1], list[n + 2] = k, v
    n = n + 2
  end
  return list
end

-- Responses ------------------------------------------------------------------------

local IncomingMessage = EventEmitter.extend({})
M.IncomingMessage = IncomingMessage

-- pause() stops reading the response (backpressure); resume() goes on.
function IncomingMessage:pause()
  local req = self.req
  if req._handle and not req._closed then req._handle:pause(true) end
  self.isPaused = true
  return self
end

function IncomingMessage:resume()
  local req = self.req
  if req._handle and not req._closed then req._handle:pause(false) end
  self.isPaused = false
  return self
end

function IncomingMessage:setEncoding() return self end

-- Requests ----------------------------------------------------------------------------

local ClientRequest = EventEmitter.extend({})
M.ClientRequest = ClientRequest

function ClientRequest:setHeader(name, value)
  if self.headersSent then error("cannot set headers after they are sent", 2) end
  set_header(self._headers, name, value)
  return self
end

function ClientRequest:getHeader(name) return header_list.get(self._headers, name) end

function ClientRequest:hasHeader(name) return self:getHeader(name) ~= nil end

function ClientRequest:removeHeader(name)
  if self.headersSent then error("cannot remove headers after they are sent", 2) end
  header_list.remove(self._headers, name)
end

local function send(self, chunk, finish)
  if self._closed or self.destroyed then return false end
  if self.finished then
    if finish then return false end
    error("write after end", 3)
  end
  if chunk ~= nil and type(chunk) ~= "string" then chunk = tostring(chunk) end
  local ok, below
  if not self.headersSent then
    ok, below = self._handle:send(self.path, self._host_header, self._headers, chunk, finish)
    self.headersSent = true
  else
    ok, below = self._handle:send(nil, nil, nil, chunk, finish)
  end
  if finish then self.finished = true end
  return ok and below
end

function ClientRequest:write(chunk) return send(self, chunk, false) end

function ClientRequest:finish(chunk)
  send(self, chunk, true)
  return self
end
ClientRequest["end"] = ClientRequest.finish

-- Tells err to the response if one is under way (Node: "aborted", then
-- the response's "error"), else to the request; logged when no one listens.
local function fail(self, err)
  local res = self.res
  local target = self
  if res and not res.complete then
    res.aborted = true
    res:emit("aborted")
    if res:listenerCount("error") > 0 then target = res end
  end
  if target:listenerCount("error") > 0 then
    target:emit("error", err)
  else
    core.log("warn", ("http request %s %s://%s%s: %s (no 'error' listener)")
             :format(self.method, self._scheme, self._host_header, self.path, err.message))
  end
end

-- destroy([err]) / abort(): ends the request now; its connection closes.
function ClientRequest:destroy(err)
  if self._closed or self.destroyed then return self end
  self.destroyed = true
  self._handle:abort()
  if err ~= nil then
    if not errors.is(err) then
      err = errors.new(type(err) == "table" and err.code or "ERR_DESTROYED", tostring(err))
    end
    fail(self, err)
  end
  return self
end

function ClientRequest:abort()
  if self._closed or self.destroyed then return end
  self.aborted = true
  self:emit("abort")
  self:destroy()
end

-- setTimeout(ms[, fn]): "timeout" after ms without activity; with no
-- listener the request fails with ETIMEDOUT.
function ClientRequest:setTimeout(ms, fn)
  if fn then self:once("timeout", fn) end
  if not self._closed then self._handle:set_timeout(tonumber(ms) or 0) end
  return self
end

function ClientRequest:setNoDelay() return self end

local request_fields = {
  reusedSocket = function(self) return not self._closed and self._handle:reused() end,
}
ClientRequest.__index = function(self, key)
  local f = request_fields[key]
  if f then return f(self) end
  return ClientRequest[key]
end

-- What C tells a request.
function ClientRequest:_native(event, a, b, c, d)
  if event == "response" then
    local res = setmetatable({ statusCode = a, statusMessage = b, httpVersion = c,
                               headers = d, req = self, complete = false }, IncomingMessage)
    self.res = res
    self:emit("response", res)
  elseif event == "data" then
    local res = self.res
    if res._events then res:emit("data", a) end
  elseif event == "end" then
    local res = self.res
    res.complete = true
    if res._events then res:emit("end") end
  elseif event == "error" then
    fail(self, errors.new(a, b, { host = self.host, port = self.port }))
  elseif event == "timeout" then
    if self:listenerCount("timeout") > 0 then
      self:emit("timeout")
    else
      self:destroy(errors.new("ETIMEDOUT", "request timed out after " ..
                              tostring(self.timeout) .. " ms"))
    end
  elseif event == "drain" then
    self:emit("drain")
  elseif event == "close" then
    self._closed = true
    local res = self.res
    if res then
      if not res.complete and not res.aborted then
        res.aborted = true
        res:emit("aborted")
      end
      res:emit("close")
    end
    self:emit("close")
  end
end

-- (url | options[, options][, fn]) -> options, fn
local function request_args(a, b, c)
  local opts, fn = {}, nil
  if type(a) == "string" then
    local u, path = parse_url(a)
    if not u then error(path, 3) end
    opts.host, opts.port, opts.path = u.host, u.port, path
    opts.protocol = u.secure and "https:" or "http:"
    if type(b) == "table" then
      for k, v in pairs(b) do opts[k] = v end
      fn = c
    else
      fn = b
    end
  elseif type(a) == "table" then
    for k, v in pairs(a) do opts[k] = v end
    fn = b
  else
    error("http.request needs a url or an options table", 3)
  end
  if fn ~= nil and type(fn) ~= "function" then error("callback must be a function", 3) end
  return opts, fn
end

-- HTTPS: the TLS options a request may give over its agent's (Node's).
local TLS_OPTIONS = { "ca", "cert", "key", "passphrase", "rejectUnauthorized",
                      "minVersion", "maxVersion", "ciphers", "ciphersuites",
                      "handshakeTimeout" }
local ALPN_HTTP = { "http/1.1" }
local tls_module

-- The client context of an HTTPS request: its own TLS options over its
-- agent's (contexts are cached by their options: lua/tls.lua).
local function tls_for(opts, agent)
  tls_module = tls_module or require("tls")
  local own = false
  for _, k in ipairs(TLS_OPTIONS) do
    if opts[k] ~= nil then own = true break end
  end
  if not own and agent._tls_ctx then return agent._tls_ctx end
  local o, ao = {}, agent.options or NONE
  for _, k in ipairs(TLS_OPTIONS) do
    local v = opts[k]
    if v == nil then v = ao[k] end
    o[k] = v
  end
  local ctx = tls_module._client_context(o, ALPN_HTTP)
  if not own then agent._tls_ctx = ctx end
  return ctx
end

-- http.request (secure false) and https.request (true).
function M._request(secure, ...)
  local opts, fn = request_args(...)
  local want = secure and "https:" or "http:"
  if opts.protocol and opts.protocol ~= want then
    error(('Protocol "%s" not supported. Expected "%s"'):format(tostring(opts.protocol), want), 3)
  end
  local host = opts.hostname or opts.host or "localhost"
  if type(host) ~= "string" then error("host must be a string", 2) end
  -- host may carry a port ("example.com:8080") when port is not given, or
  -- be an IPv6 address in brackets (looked at only when it has a colon)
  if find(host, ":", 1, true) then
    local h, p = match(host, "^([^:]+):(%d+)$")
    if h and not opts.port then host, opts.port = h, tonumber(p) end
    host = match(host, "^%[(.*)%]$") or host
  end
  local port = tonumber(opts.port or (secure and 443 or 80))
  if not port or port < 1 or port > 65535 or port % 1 ~= 0 then
    error("port must be an integer 1-65535, got " .. tostring(opts.port), 3)
  end
  local method = opts.method and upper(opts.method) or "GET"
  local path = opts.path or "/"
  local agent = agent_for(opts.agent, secure)
  local timeout = opts.timeout or agent.timeout
  -- every field the request will have, so the table is made at its size
  local self = setmetatable({ method = method, path = path, host = host, port = port,
                              agent = agent, timeout = timeout, finished = false,
                              headersSent = false, _headers = flat_headers(opts.headers),
                              _host_header = opts.setHost == false and ""
                                             or host_header(host, port, secure),
                              _scheme = secure and "https" or "http", _handle = false },
                            ClientRequest)
  -- C reads the limits at once and keeps nothing: the common case (only the
  -- agent's timeout) reuses one table per agent
  local limits
  if opts.timeout == nil and not (opts.maxHeaderSize or opts.maxHeadersCount or
                                  opts.maxBodySize or secure) then
    limits = agent._limits
    if not limits or limits.timeout ~= timeout then
      limits = { timeout = timeout }
      agent._limits = limits
    end
  else
    limits = {
      timeout = timeout, maxHeaderSize = opts.maxHeaderSize,
      maxHeadersCount = opts.maxHeadersCount, maxBodySize = opts.maxBodySize,
      tls = secure and tls_for(opts, agent) or nil,
      servername = secure and opts.servername or nil,
    }
  end
  self._handle = core.http_request(agent._handle, self, host, port, method, limits)
  if fn then self:on("response", fn) end -- "response" comes once: no wrapper
  return self
end

function M.request(...) return M._request(false, ...) end

function M.get(...)
  local req = M._request(false, ...)
  req:finish()
  return req
end

-- fetch ---------------------------------------------------------------------------

-- fetch(url[, {method=, headers=, body=, timeout=, agent=, maxBodySize=}])
--   -> {status=, statusText=, headers=, body=} or nil, err
-- Waits in the running coroutine for the whole response. timeout is the
-- idle time in ms (30 s by default); the body is refused past maxBodySize
-- (8 MiB by default). An https:// url goes through https.globalAgent,
-- verified (the TLS options of https.request apply: ca,
-- rejectUnauthorized, servername, ...).
M.FETCH_TIMEOUT = 30000

function M.fetch(url, opts)
  local u, path = parse_url(url)
  if not u then return nil, path end
  opts = opts or NONE
  if type(opts) ~= "table" then error("fetch options must be a table", 2) end
  local method = opts.method and upper(opts.method) or "GET"
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then body = tostring(body) end
  local agent = agent_for(opts.agent, u.secure)
  local headers = opts.headers and flat_headers(opts.headers) or NONE
  local ctx = u.secure and tls_for(opts, agent) or nil
  return core.fetch(agent._handle, u.host, u.port, method, path, u.host_header,
                    headers, body, opts.timeout or M.FETCH_TIMEOUT,
                    opts.maxBodySize, opts.maxHeaderSize, opts.maxHeadersCount,
                    ctx, ctx and opts.servername or nil)
end

return M
