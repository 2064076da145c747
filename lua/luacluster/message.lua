-- luacluster.message: the Lua half of the message codec
-- (runtime/lua/lua_message.c does the rest).
--
-- Messages cross between processes in LuaJIT's string.buffer format. These
-- functions let C encode into a buffer it reuses and hand the bytes to the
-- channel where they lie, and decode a message where it lies in the
-- channel's read buffer, without making a Lua string of either.

local buffer = require("string.buffer")
local ffi = require("ffi")

local cast = ffi.cast
local bytes_t = ffi.typeof("const char *")
local reader = buffer.new()

local message = {}

-- encode(buf, value) -> pointer, length: value encoded into buf.
function message.encode(buf, value)
  buf:reset()
  buf:encode(value)
  return buf:ref()
end

-- decode(address, length) -> value, from bytes C has checked (message.c).
function message.decode(address, length)
  -- The next set() lets go of these bytes.
  return reader:set(cast(bytes_t, address), length):decode()
end

message.new_buffer = buffer.new

return message
