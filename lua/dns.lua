-- dns: name lookups on libuv's thread pool (also the global `dns`); the
-- loop never waits for a resolver.
--
--   dns.lookup("example.com", function(err, address, family) ... end)
--   dns.lookup("example.com", { family = 6 }, fn)
--   dns.lookup("example.com", { all = true }, function(err, list) ... end)
--
-- Without a callback, in a coroutine (a handler, listener or timer
-- callback), it waits and returns the result:
--
--   local address, family = dns.lookup("example.com")   -- or nil, err
--
-- Addresses come IPv4 first (Node's "ipv4first" order). Errors carry
-- Node's codes: err.code == "ENOTFOUND" for a name that does not exist.

local core = require("luacluster.core")
local errors = require("luacluster.errors")
local spawn = require("luacluster.coroutines").spawn

local type, error, tostring = type, error, tostring

local dns = {}

local FAMILIES = { [0] = 0, [4] = 4, [6] = 6, IPv4 = 4, IPv6 = 6 }

local function options(opts)
  if opts == nil then return 0, false end
  if type(opts) ~= "table" then opts = { family = opts } end
  local family = FAMILIES[opts.family or 0]
  if not family then
    error("family must be 0, 4, 6, \"IPv4\" or \"IPv6\", got " .. tostring(opts.family), 3)
  end
  return family, opts.all and true or false
end

-- lookup(host[, options][, fn(err, address, family)])
function dns.lookup(host, opts, fn)
  if type(opts) == "function" then fn, opts = opts, nil end
  if type(host) ~= "string" or host == "" then
    error("host must be a non-empty string, got " .. tostring(host), 2)
  end
  local family, all = options(opts)
  if fn == nil then return core.dns_lookup(host, family, all) end
  if type(fn) ~= "function" then error("callback must be a function", 2) end
  core.dns_lookup(host, family, all, function(code, message, result, fam)
    if code then
      spawn(fn, errors.new(code, message, { hostname = host, syscall = "getaddrinfo" }))
    else
      spawn(fn, nil, result, fam)
    end
  end)
end

return dns
