-- luacluster.boot: runs first in every Lua state, before the app script.
-- It makes the globals an app expects: process, cluster, http, net,
-- console, the timer functions, and os.cpus() / os.hostname().

local core = require("luacluster.core")

-- Everything C tells Lua arrives here: object:_native(event, ...).
core.set_dispatcher(function(obj, event, ...)
  return obj:_native(event, ...)
end)

process = require("process")
cluster = require("cluster")
net = require("net")
http = require("http")
console = require("console")

local timers = require("timers")
setTimeout = timers.setTimeout
setInterval = timers.setInterval
setImmediate = timers.setImmediate
clearTimeout = timers.clearTimeout
clearInterval = timers.clearInterval
clearImmediate = timers.clearImmediate

os.cpus = core.cpus
os.hostname = core.hostname

-- The script's arguments, as the standalone lua interpreter gives them.
arg = { [0] = core.script }
for i, a in ipairs(core.args) do arg[i] = a end
