-- https: HTTP over TLS, Node's names. The server is http's with TLS under
-- its connections (the same C HTTP server: core/tls/tls.h puts TLS between
-- the socket and the protocol); the client is http's with a TLS context
-- per set of options.
--
--   local function slurp(p) local f = assert(io.open(p)) local s = f:read("*a") f:close() return s end
--   https.createServer({ key = slurp("key.pem"), cert = slurp("cert.pem") }, function(req, res)
--     res:finish("hello over " .. req.socket:getProtocol())
--   end):listen(8443)
--
--   local res, err = fetch("https://example.com/")   -- verified against the system's CAs
--
-- https.createServer(options[, fn]): options are tls's (key, cert, ca,
-- passphrase, sni, SNICallback, minVersion, ciphers, handshakeTimeout,
-- sessionTimeout, requestCert, ...) and http's (keepAliveTimeout, ...);
-- ALPN offers "http/1.1". https.request / https.get: http's, plus the TLS
-- options ca, cert, key, passphrase, rejectUnauthorized (true),
-- servername, minVersion, maxVersion, ciphers; port 443 by default.
-- https.Agent(options): an http.Agent whose TLS options (the same) are its
-- requests' defaults; connections are pooled per host, port and options.

local core = require("luacluster.core")
local http = require("http")
local tls = require("tls")
local client = require("luacluster.http_client")

local https = {}

https.Server = http.Server

function https.createServer(opts, fn)
  if type(opts) ~= "table" then
    error("https.createServer needs options with key and cert", 2)
  end
  local server = http.createServer(opts, fn)
  rawset(server, "_context", tls._server_context(opts, { "http/1.1" }))
  rawset(server, "_options", opts)
  rawset(server, "addContext", tls._add_context)
  core.tls_server_use(server._handle, server._context)
  return server
end

-- An https request's socket (req.socket): what TLS settled on, with
-- tls.TLSSocket's names.
local function info(s)
  local i = rawget(s, "_tls")
  if i == nil then
    i = core.http_tls(rawget(s, "_conn")) or false
    rawset(s, "_tls", i)
  end
  return i or nil
end

local socket_methods = {
  getProtocol = function(s) local i = info(s) return i and i.protocol end,
  getCipher = function(s)
    local i = info(s)
    return i and { name = i.cipher, standardName = i.cipher, version = i.protocol }
  end,
  isSessionReused = function(s) local i = info(s) return i and i.reused or false end,
  getPeerCertificate = function(s) return core.http_tls(rawget(s, "_conn"), "cert") or {} end,
}
local fields = http._tls_socket
for name, f in pairs(socket_methods) do
  fields[name] = function() return f end
end
fields.encrypted = function(s) return info(s) and true or nil end
fields.authorized = function(s) local i = info(s) return i and i.authorized or false end
fields.authorizationError = function(s) local i = info(s) return i and i.authorizationError end
fields.alpnProtocol = function(s) local i = info(s) return i and i.alpnProtocol or false end
fields.servername = function(s) local i = info(s) return i and i.servername end

function https.request(...) return client._request(true, ...) end

function https.get(...)
  local req = client._request(true, ...)
  req:finish()
  return req
end

-- https.Agent(options): http.Agent with TLS defaults for its requests.
https.Agent = setmetatable({}, {
  __call = function(_, opts)
    local agent = client.Agent.new(opts)
    agent.defaultPort = 443
    return agent
  end,
})
https.Agent.new = function(opts) return https.Agent(opts) end
https.globalAgent = client.httpsGlobalAgent

return https
