-- luacluster.boot: runs first in every Lua state, before the app script.
-- It makes the globals an app expects: process, cluster, http, net, dns,
-- url, querystring, crypto, console, the timer functions, and os.cpus() /
-- os.hostname().

local core = require("luacluster.core")

-- Everything C tells Lua arrives here: object:_native(event, ...).
core.set_dispatcher(function(obj, event, ...)
  return obj:_native(event, ...)
end)

process = require("process")
cluster = require("cluster")
net = require("net")
http = require("http")
url = require("url")
querystring = require("querystring")
crypto = require("crypto")
dns = require("dns")
console = require("console")

local timers = require("timers")
setTimeout = timers.setTimeout
setInterval = timers.setInterval
setImmediate = timers.setImmediate
clearTimeout = timers.clearTimeout
clearInterval = timers.clearInterval
clearImmediate = timers.clearImmediate

-- Calls that wait, for code running in a coroutine (handlers, listeners,
-- timer callbacks: luacluster.coroutines).
local coroutines = require("luacluster.coroutines")
sleep = coroutines.sleep
fetch = require("luacluster.http_client").fetch

os.cpus = core.cpus
os.hostname = core.hostname

-- The script's arguments, as the standalone lua interpreter gives them.
arg = { [0] = core.script }
for i, a in ipairs(core.args) do arg[i] = a end
