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

return function() return core.tcp() end
