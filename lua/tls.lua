-- tls: TLS servers and connections with Node's names (tls.createServer,
-- tls.connect, tls.createSecureContext). The handshake, the records and
-- the checks are C on OpenSSL (core/tls/tls.h, lua_tls.c); sockets are net's.
--
--   tls.createServer({ key = KEY, cert = CERT }, function(socket)
--     socket:write("hello " .. socket:getProtocol() .. "\n")
--     socket:finish()
--   end):listen(8443)
--
--   local s = tls.connect(8443, "example.com", { ca = CA }, function()
--     print(s.authorized, s.alpnProtocol)
--   end)
--
-- Context options (PEM strings, not paths): key, cert (the certificate,
-- then its chain), ca (a string or a list), passphrase, ciphers (TLS 1.2),
-- ciphersuites (TLS 1.3), minVersion ("TLSv1.2", the default, or
-- "TLSv1.3"), maxVersion, ALPNProtocols ({"http/1.1"}), handshakeTimeout
-- (ms, 10000), sessionTimeout (s, 300); a server's requestCert and
-- rejectUnauthorized (check client certificates), sni (a table of names ->
-- contexts or options) and SNICallback(servername[, cb]); a client's
-- rejectUnauthorized (true: the server's certificate and name are
-- checked), servername, session.

local core = require("luacluster.core")
local net = require("net")

local type, pairs, ipairs, tostring, setmetatable, rawget, rawset, concat =
  type, pairs, ipairs, tostring, setmetatable, rawget, rawset, table.concat

local tls = {}

tls.DEFAULT_MIN_VERSION = "TLSv1.2"
tls.DEFAULT_MAX_VERSION = "TLSv1.3"

-- Contexts ------------------------------------------------------------------------

local SecureContext = {}
SecureContext.__index = SecureContext
tls.SecureContext = SecureContext

-- createSecureContext(options) -> a context for servers (SNI, addContext)
-- and clients (connect's secureContext); each role's C context is made
-- the first time it is used, so wrong options raise there.
function tls.createSecureContext(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("createSecureContext options must be a table", 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  return setmetatable({ _opts = o }, SecureContext)
end

local server_context, client_context

function SecureContext:_server()
  local c = rawget(self, "_server_ctx")
  if not c then
    c = server_context(self._opts)
    self._server_ctx = c
  end
  return c
end

function SecureContext:_client()
  local c = rawget(self, "_client_ctx")
  if not c then
    c = client_context(self._opts)
    self._client_ctx = c
  end
  return c
end

-- What an SNI entry or callback gave: a SecureContext, a TlsContext, or
-- options (made once per table).
local from_options = setmetatable({}, { __mode = "k" })

local function as_server(v, parent)
  if getmetatable(v) == SecureContext then return v:_server() end
  if type(v) == "userdata" then return v end
  if type(v) ~= "table" then error("an SNI context must be a table of options", 3) end
  local c = from_options[v]
  if not c then
    local o = {}
    -- What the names share unless they say otherwise: protocols, versions.
    for _, k in ipairs({ "ALPNProtocols", "minVersion", "maxVersion", "ciphers",
                         "ciphersuites", "handshakeTimeout", "sessionTimeout" }) do
      o[k] = parent and parent[k]
    end
    for k, val in pairs(v) do o[k] = val end
    c = server_context(o)
    from_options[v] = c
  end
  return c
end

-- A server's C context from options: its certificate, its SNI names (the
-- `sni` table) and callback, ALPN (alpn when the options have none).
function server_context(opts, alpn)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.ALPNProtocols == nil then o.ALPNProtocols = alpn end
  local c = core.tls_context(true, o)
  for name, v in pairs(opts.sni or {}) do
    if type(name) ~= "string" then error("sni keys must be host names", 3) end
    c:add_name(name, as_server(v, o))
  end
  local cb = opts.SNICallback
  if cb ~= nil then
    if type(cb) ~= "function" then error("SNICallback must be a function", 3) end
    -- Node's SNICallback(servername, cb(err, ctx)); returning the context
    -- works too. It must answer before it returns: the handshake waits
    -- for nothing.
    c:set_sni(function(servername)
      local picked
      local r = cb(servername, function(err, ctx) if not err then picked = ctx end end)
      picked = r ~= nil and r or picked
      if picked == nil then return nil end
      return as_server(picked, o)
    end)
  end
  return c
end
tls._server_context = server_context

-- Client contexts are cached by their options: loading the system's CAs
-- is done once, and connections with the same options share resumable
-- sessions.
local CLIENT_KEYS = { "ca", "cert", "key", "passphrase", "rejectUnauthorized",
                      "minVersion", "maxVersion", "ciphers", "ciphersuites",
                      "ALPNProtocols", "handshakeTimeout" }
local client_cache, nclient = {}, 0

local function key_part(k, v)
  if k == "rejectUnauthorized" then return v == false and "f" or "t" end
  if v == nil then return "" end
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = tostring(v[i]) end
    return concat(parts, "\1")
  end
  return tostring(v)
end

-- The client context for opts (alpn when they name no protocols).
function client_context(opts, alpn)
  local parts = {}
  for i, k in ipairs(CLIENT_KEYS) do
    local v = opts[k]
    if k == "ALPNProtocols" and v == nil then v = alpn end
    parts[i] = key_part(k, v)
  end
  local key = concat(parts, "\0")
  local c = client_cache[key]
  if not c then
    local o = {}
    for _, k in ipairs(CLIENT_KEYS) do o[k] = opts[k] end
    if o.ALPNProtocols == nil then o.ALPNProtocols = alpn end
    c = core.tls_context(false, o)
    if nclient >= 64 then client_cache, nclient = {}, 0 end
    client_cache[key] = c
    nclient = nclient + 1
  end
  return c
end
tls._client_context = client_context

-- What a TLS socket tells about itself ------------------------------------------------

local function info(self)
  local i = rawget(self, "_tls_info")
  if i == nil and not rawget(self, "_closed") and self._handle then
    i = core.tls_info(self._handle)
    if i then rawset(self, "_tls_info", i) end
  end
  return i or {}
end

-- Fields a TLS socket reads from its connection (Node's).
local tls_fields = {
  encrypted = function() return true end,
  authorized = function(s) return info(s).authorized or false end,
  authorizationError = function(s) return info(s).authorizationError end,
  alpnProtocol = function(s) return info(s).alpnProtocol or false end,
  servername = function(s) return info(s).servername end,
}

-- Methods both kinds of TLS socket have.
local methods = {}
function methods:getProtocol() return info(self).protocol end
function methods:getCipher()
  local i = info(self)
  return i.cipher and { name = i.cipher, standardName = i.cipher, version = i.protocol }
end
function methods:isSessionReused() return info(self).reused or false end
function methods:getPeerCertificate()
  if rawget(self, "_closed") or not self._handle then return {} end
  return core.tls_peer_cert(self._handle) or {}
end
-- getSession() -> a session to give connect's `session` (resumes it).
function methods:getSession()
  if rawget(self, "_closed") or not self._handle then return nil end
  return core.tls_session(self._handle)
end

-- A class over base (a socket class whose __index is a function).
local function tls_class(base)
  local class = setmetatable({}, { __index = base })
  for k, f in pairs(methods) do class[k] = f end
  local base_index = base.__index
  class.__index = function(self, key)
    local f = tls_fields[key]
    if f then return f(self) end
    local m = rawget(class, key)
    if m ~= nil then return m end
    return base_index(self, key)
  end
  return class
end

local TLSSocket = tls_class(net.Socket)
tls.TLSSocket = TLSSocket

-- Servers -------------------------------------------------------------------------------

local Server = setmetatable({}, { __index = net.Server })
Server.__index = Server
tls.Server = Server

-- createServer(options[, fn(socket)]): fn listens for "secureConnection",
-- which comes once a client's handshake is done. Handshakes that fail
-- (or time out, or are not TLS) never reach the app: they are closed and
-- logged at debug level.
function tls.createServer(opts, fn)
  if type(opts) ~= "table" then error("tls.createServer needs options with key and cert", 2) end
  local self = net.Server.new("net", Server)
  self._context = server_context(opts)
  self._options = opts
  core.tls_server_use(self._handle, self._context)
  if fn then self:on("secureConnection", fn) end
  return self
end

function Server:_connection(handle)
  local sock = setmetatable({ _handle = handle }, TLSSocket)
  self:emit("secureConnection", sock)
  return sock
end

-- addContext(hostname, context | options): SNI for hostname ("*.example.com"
-- for one label more) gives that certificate.
local function add_context(self, hostname, context)
  if type(hostname) ~= "string" then error("hostname must be a string", 2) end
  self._context:add_name(hostname, as_server(context, self._options))
end
Server.addContext = add_context
tls._add_context = add_context

-- Clients ---------------------------------------------------------------------------------

local TLSClientSocket = tls_class(net.ClientSocket)
tls.TLSClientSocket = TLSClientSocket

function TLSClientSocket:_native(event, a, b, c)
  if event == "connect" then
    net.ClientSocket._native(self, event)
    self:emit("secureConnect")
    return
  end
  if event == "error" and c and b == "ERR_TLS_CERT_ALTNAME_INVALID" then
    a = a .. ": Host: " .. tostring(self._servername) .. " is not in the cert's altnames"
  end
  return net.ClientSocket._native(self, event, a, b, c)
end

local function connect_args(a, b, c, d)
  if type(a) == "table" then return a, b end
  local opts = {}
  if type(c) == "table" then
    for k, v in pairs(c) do opts[k] = v end
    c = d
  elseif type(b) == "table" then
    for k, v in pairs(b) do opts[k] = v end
    b, c = nil, c
  end
  if type(b) == "function" then b, c = nil, b end
  opts.port = opts.port or a
  opts.host = opts.host or b
  return opts, c
end

-- connect(port[, host][, options][, fn]) or connect(options[, fn]) ->
-- TLSSocket; fn listens for "secureConnect". The server's certificate is
-- checked against the system's CAs (or `ca`), and its names against
-- `servername` (default: host; an IP address is checked as one) unless
-- rejectUnauthorized is false.
function tls.connect(...)
  local opts, fn = connect_args(...)
  local host = opts.host or "localhost"
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local ctx = opts.secureContext and opts.secureContext:_client()
              or client_context(opts)
  local servername = opts.servername or host
  o._tls = { ctx = ctx, servername = servername, session = opts.session,
             timeout = opts.handshakeTimeout }
  local sock = net.connect(o)
  setmetatable(sock, TLSClientSocket)
  sock._servername = servername
  if fn then sock:once("secureConnect", fn) end
  return sock
end
tls.createConnection = tls.connect

return tls
