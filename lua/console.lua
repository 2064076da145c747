-- console: the app's own log lines, in the runtime's format and attributable
-- to the process that wrote them (also the global `console`):
--
--   (host-1234) [2026-11-23 14:00:00.123] [WARN] [worker3] - cache miss 42
--
-- console.log / console.info (INFO), console.warn (WARN), console.error
-- (ERROR), console.debug (DEBUG). Arguments are turned into strings and
-- joined with spaces; LUACLUSTER_LOG_LEVEL filters them as it filters the
-- runtime's lines (INFO and DEBUG go to stdout, WARN and ERROR to stderr).
-- print() stays the raw stdout it is in Lua.

local core = require("luacluster.core")

local select, tostring, concat = select, tostring, table.concat

local function line(...)
  local n = select("#", ...)
  if n == 1 then return tostring((...)) end
  local parts = { ... }
  for i = 1, n do parts[i] = tostring(parts[i]) end
  return concat(parts, " ", 1, n)
end

local console = {}

function console.log(...) core.log("info", line(...)) end
console.info = console.log
function console.warn(...) core.log("warn", line(...)) end
function console.error(...) core.log("error", line(...)) end
function console.debug(...) core.log("debug", line(...)) end

return console
