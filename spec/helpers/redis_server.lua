-- redis_server: a real redis-server for a spec, on a free 127.0.0.1 port,
-- with persistence off. It belongs to the spec that starts it: stop() (or
-- lc.cleanup(), which kills every process a spec started) ends it.
--
--   local rs = require("redis_server")
--   local server = rs.start({ "--requirepass", "secret" })
--   server.port
--   server:cli("SET", "k", "v")     -- redis-cli's raw answer, a string
--   server:kill()                   -- SIGKILL, as a crash
--   server:restart()                -- again on the same port
--   rs.start_on(port)               -- on a port chosen before
--   server:stop()

local lc = require("lc")
local sd = require("sd")

local M = {}
local Server = {}
Server.__index = Server

local function spawn(port, extra)
  local argv = { "redis-server", "--port", tostring(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--protected-mode", "no",
                 "--enable-debug-command", "yes" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local p = lc.spawn(argv)
  local ok = pcall(function() p:wait_for("Ready to accept connections", 5000) end)
  if ok then return p end
  p:kill("SIGKILL")
  pcall(function() p:wait_exit(2000) end)
  return nil
end

-- Starts a server on a free port (extra: more redis-server arguments).
function M.start(extra)
  for _ = 1, 20 do
    local port = sd.free_port()
    local p = spawn(port, extra)
    if p then return setmetatable({ port = port, proc = p, extra = extra }, Server) end
  end
  error("redis-server did not start")
end

-- Starts a server on a given port (a client may be waiting for it there).
function M.start_on(port, extra)
  local server = setmetatable({ port = port, extra = extra }, Server)
  server:restart()
  return server
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs one command with redis-cli; returns its raw output without the
-- last newline. opts.auth: the password.
function Server:cli(...)
  local parts = { "redis-cli", "-p", tostring(self.port), "--raw" }
  if self.password then
    parts[#parts + 1] = "--no-auth-warning -a " .. quote(self.password)
  end
  for _, a in ipairs({ ... }) do parts[#parts + 1] = quote(a) end
  local f = io.popen(table.concat(parts, " ") .. " 2>&1")
  local out = f:read("*a")
  f:close()
  return (out:gsub("\n$", ""))
end

-- A field of INFO (e.g. "total_connections_received"), as a number.
function Server:info(field)
  return tonumber(self:cli("INFO"):match(field .. ":(%d+)"))
end

function Server:kill()
  self.proc:kill("SIGKILL")
  self.proc:wait_exit(5000)
end

function Server:stop()
  self.proc:kill("SIGTERM")
  pcall(function() self.proc:wait_exit(5000) end)
  if not self.proc.exited then self:kill() end
end

-- Starts it again on the same port (waiting for the port to be free).
function Server:restart(extra)
  self.extra = extra or self.extra
  lc.wait_until(function()
    local p = spawn(self.port, self.extra)
    if p then self.proc = p end
    return p
  end, 10000, "redis-server to start again on port " .. self.port)
end

return M
