-- luacluster.message: the Lua half of the message codec
-- (runtime/lua/lua_message.c does the rest).
--
-- Messages cross between processes in LuaJIT's string.buffer format. These
-- pieces let C encode into a buffer it reuses and hand the bytes to the
-- channel where they lie, and decode a message where it lies in the
-- channel's read buffer, without making a Lua string of either.

local buffer = require("string.buffer")
local ffi = require("ffi")

local message = {}

message.reader = buffer.new()

-- Encoding, driven from C the same way: reset(buf), encode(buf, value),
-- then ref(buf) -> pointer, length of the bytes.
message.new_buffer = buffer.new
message.reset = message.reader.reset
message.encode = message.reader.encode
message.ref = message.reader.ref

-- Decoding, driven from C without a Lua frame or an allocation: C writes
-- the bytes' address into `address` (a pointer cdata made once), then calls
-- set(reader, address, length) and decode(reader). The next set() lets go
-- of the bytes.
message.address = ffi.new("const char *")
message.set = message.reader.set
message.decode = message.reader.decode

return message
