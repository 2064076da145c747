-- luacluster.errors: Node's error objects for the Node-style calls.
--
--   err.code     "ECONNREFUSED", "ETIMEDOUT", "ENOTFOUND", "ECONNRESET", ...
--   err.message  "connect ECONNREFUSED 127.0.0.1:9" (names the address)
--   and what Node adds where it has it: address, port, hostname, syscall.
--
-- tostring(err) is its message. The top-to-bottom calls return strings
-- instead ("timeout", "closed", "connection refused").

local setmetatable, pairs = setmetatable, pairs

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.message end

local errors = { Error = Error }

function errors.new(code, message, fields)
  local e = { code = code, message = message or code }
  for k, v in pairs(fields or {}) do e[k] = v end
  return setmetatable(e, Error)
end

function errors.is(v) return getmetatable(v) == Error end

return errors
