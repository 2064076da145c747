-- luacluster.cosocket: net.tcp(), TCP sockets with OpenResty's cosocket
-- names, for code that runs top to bottom in a coroutine (handlers,
-- listeners, timer callbacks). The socket is C (lua_cosocket.c); this adds
-- receiveuntil's iterator.
--
--   local s = net.tcp()
--   s:settimeouts(1000, 1000, 5000)       -- connect, send, read (ms)
--   assert(s:connect("127.0.0.1", 6379))   -- 1 | nil, err
--   s:send("PING\r\n")                    -- bytes | nil, err
--   local line = s:receive("*l")          -- "*l", "*a", n: data | nil, err, partial
--   local read = s:receiveuntil("\r\n--boundary")
--   local data = read()                   -- data before the pattern
--   s:setkeepalive(60000, 30)             -- into the pool (or s:close())
--   local session = s:sslhandshake(nil, "example.com")  -- TLS from here on
--
-- Errors are OpenResty's strings: "timeout", "closed", "connection
-- refused", "socket busy reading", ... Timeouts default to 60 s each.

local core = require("luacluster.core")

local methods = core.cosocket_methods

-- receiveuntil(pattern[, {inclusive=}]) -> iterator([size]).
-- Without size the iterator returns the data before the next pattern.
-- With size it returns that data in pieces of at most size bytes, then
-- nil (no error) once the pattern was read; the next call reads on.
function methods:receiveuntil(pattern, opts)
  if type(pattern) ~= "string" or pattern == "" then
    error("receiveuntil needs a non-empty pattern", 2)
  end
  local inclusive = opts and opts.inclusive and true or false
  local sock, found = self, false
  return function(size)
    if found then
      found = false
      return nil
    end
    local data, err, partial = sock:_receive_until(pattern, size, inclusive)
    if data == nil then return nil, err, partial end
    if size and err then found = true end
    return data
  end
end

local tls_module

-- sslhandshake([reused_session][, server_name][, ssl_verify][,
-- send_status_req][, options]) -> session | true | nil, err: TLS over the
-- connected socket (OpenResty's call). The server's certificate is
-- checked against the system's CAs (or options.ca) and server_name
-- unless ssl_verify is false (OpenResty checks only when it is true).
-- reused_session: a session from an earlier sslhandshake to resume, or
-- false to get true back instead of a session. options: tls.connect's
-- (ca, cert, key, minVersion, ciphers, ...). send_status_req (OCSP) is
-- not supported and ignored.
function methods:sslhandshake(reused_session, server_name, ssl_verify, send_status_req, options)
  tls_module = tls_module or require("tls")
  if options ~= nil and type(options) ~= "table" then
    error("sslhandshake options must be a table", 2)
  end
  if server_name ~= nil and type(server_name) ~= "string" then
    error("server_name must be a string", 2)
  end
  local o = {}
  for k, v in pairs(options or {}) do o[k] = v end
  o.rejectUnauthorized = ssl_verify ~= false
  local ctx = tls_module._client_context(o)
  local session = type(reused_session) == "userdata" and reused_session or nil
  return self:_sslhandshake(ctx, server_name, session, reused_session ~= false)
end

return function() return core.tcp() end
