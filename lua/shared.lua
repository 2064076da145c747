-- shared: the shared dicts, OpenResty's ngx.shared.DICT across every
-- process of the cluster (reached with require("shared"), not a global).
--
--   luacluster -w 4 --shared cache=64m app.lua
--   local shared = require("shared")
--   shared.cache:set("user:42", { id = 42, roles = { "admin" } }, 30)
--   local user = shared.cache:get("user:42")      -- the table, decoded
--
-- A dict is shared memory the master created (runtime/core/shdict/).
-- The methods call its C functions directly through LuaJIT's FFI, as
-- lua-resty-core does, with buffers made once per process: a get or set
-- allocates nothing but the value it returns. Names, arguments, returns
-- and error strings are OpenResty's; tables are stored encoded with
-- LuaJIT's string.buffer and decoded on get.

local ffi = require("ffi")
local buffer = require("string.buffer")
local native = require("luacluster.shared")

ffi.cdef [[
typedef struct lc__shdict lc__shdict;
typedef struct lc__shdict_value {
  int type; int stale; uint32_t flags; double number; size_t len;
} lc__shdict_value;
typedef struct lc__shdict_input {
  int type; double number; const void *data; size_t len;
} lc__shdict_input;
int lc__shdict_get(lc__shdict *d, const char *key, size_t key_len, int stale,
                   lc__shdict_value *out, void *buf, size_t cap);
int lc__shdict_store(lc__shdict *d, int op, const char *key, size_t key_len,
                     int type, const void *data, size_t len, double number,
                     int64_t ttl_ms, uint32_t flags, int *forcible);
int lc__shdict_incr(lc__shdict *d, const char *key, size_t key_len, double by,
                    int has_init, double init, int64_t init_ttl_ms,
                    double *result, int *forcible);
int lc__shdict_cas(lc__shdict *d, const char *key, size_t key_len,
                   const lc__shdict_input *expected,
                   const lc__shdict_input *new_value, int64_t ttl_ms,
                   uint32_t flags, int *forcible);
int lc__shdict_ttl(lc__shdict *d, const char *key, size_t key_len,
                   int64_t *ttl_ms);
int lc__shdict_expire(lc__shdict *d, const char *key, size_t key_len,
                      int64_t ttl_ms);
int lc__shdict_push(lc__shdict *d, const char *key, size_t key_len, int end,
                    int type, const void *data, size_t len, double number,
                    size_t *count);
int lc__shdict_pop(lc__shdict *d, const char *key, size_t key_len, int end,
                   lc__shdict_value *out, void *buf, size_t cap);
int lc__shdict_llen(lc__shdict *d, const char *key, size_t key_len,
                    size_t *count);
int lc__shdict_flush_all(lc__shdict *d);
int lc__shdict_flush_expired(lc__shdict *d, size_t max, size_t *count);
size_t lc__shdict_capacity(const lc__shdict *d);
size_t lc__shdict_free_space(lc__shdict *d);
const char *lc__shdict_strerror(int code);
]]

local C = ffi.C
if not pcall(function() return C.lc__shdict_get end) then
  error("shared: this program does not export luacluster's functions to the " ..
        "FFI (link it with -Wl,-E: CMake's ENABLE_EXPORTS)", 2)
end

local ffi_string, ffi_cast = ffi.string, ffi.cast
local type, tostring, tonumber, pcall, error = type, tostring, tonumber, pcall, error
local setmetatable = setmetatable

-- The core's value types and codes (runtime/core/shdict/shdict.h).
local T_NIL, T_BOOLEAN, T_NUMBER, T_STRING, T_TABLE = 0, 1, 3, 4, 6
local SET, ADD, REPLACE, SAFE = 0, 1, 2, 4
local LEFT, RIGHT = 0, 1
local E_NOTFOUND, E_TOOSMALL = -4201, -4213
local KEY_MAX = 65535

-- Made once: what every call passes to C and reads back.
local out = ffi.new("lc__shdict_value")
local forcible = ffi.new("int[1]")
local number = ffi.new("double[1]")
local count = ffi.new("size_t[1]")
local ttl_out = ffi.new("int64_t[1]")
local expected_in = ffi.new("lc__shdict_input")
local new_in = ffi.new("lc__shdict_input")
local buf_size = 16384
local buf = ffi.new("uint8_t[?]", buf_size)  -- values are copied out here
local encoder, old_encoder, decoder = buffer.new(), buffer.new(), buffer.new()

local messages = {}
local function message(rc)
  local m = messages[rc]
  if not m then
    m = ffi_string(C.lc__shdict_strerror(rc))
    messages[rc] = m
  end
  return m
end

local function grow(need)
  local size = buf_size
  while size < need do size = size * 2 end
  buf = ffi.new("uint8_t[?]", size)
  buf_size = size
end

-- Tables get returned, with the bytes they were decoded from: cas
-- compares a table from get by those bytes. An app changes the table it
-- read before it calls cas, and string.buffer's encoding of a table is not
-- canonical anyway (its order is the hash part's).
local read_from = setmetatable({}, { __mode = "k" })

local function decode(len)
  decoder:set(buf, len)
  local t = decoder:decode()
  if type(t) == "table" then read_from[t] = ffi_string(buf, len) end
  return t
end

-- The value `out` describes, its bytes in buf.
local function value_of()
  local t = out.type
  if t == T_NUMBER then return out.number end
  if t == T_STRING then return ffi_string(buf, out.len) end
  if t == T_BOOLEAN then return out.number ~= 0 end
  return decode(tonumber(out.len))
end

-- A table as bytes: pointer, length (valid until the encoder's next use),
-- or nil and why.
local function encode(enc, t)
  enc:reset()
  local ok, err = pcall(enc.encode, enc, t)
  if not ok then
    if tostring(err):find("too deep", 1, true) then
      err = "a cycle, or tables nested too deep"
    end
    return nil, "bad value type (" .. tostring(err) .. ")"
  end
  return enc:ref()
end

-- Arguments -----------------------------------------------------------------

-- Error levels: these run inside a method (or a helper it tail-called),
-- which the app called; level 3 is the app's line.
local function zone(self)
  local d = type(self) == "table" and self[1]
  if not d then error('bad "zone" argument', 3) end
  return d
end

-- The key as a string, or nil and OpenResty's error.
local function check_key(key)
  if type(key) ~= "string" then
    if key == nil then return nil, "nil key" end
    key = tostring(key)
  end
  local n = #key
  if n == 0 then return nil, "empty key" end
  if n > KEY_MAX then return nil, "key too long" end
  return key
end

-- Seconds (fractions too) to the core's milliseconds; 0 = never.
local function ms(seconds)
  local v = seconds * 1000
  if v > 0 and v < 1 then return 1 end -- a positive exptime expires
  if v > 1e15 then return 1e15 end     -- 31,000 years
  return v
end

local function check_exptime(exptime, what)
  if exptime == nil then return 0 end
  if type(exptime) ~= "number" or not (exptime >= 0) then
    error('bad "' .. what .. '" argument', 3)
  end
  return ms(exptime)
end

local function check_flags(flags)
  if flags == nil then return 0 end
  if type(flags) ~= "number" or flags < 0 or flags > 4294967295 or
     flags % 1 ~= 0 then
    error('bad "flags" argument', 3)
  end
  return flags
end

-- The strings a cas input points into, held until the call returns (a
-- pointer in a struct does not keep its string alive).
local pinned = {}

-- Fills a cas input from a Lua value: true, or nil and why for what cannot
-- be stored.
local function input(into, v, enc, slot)
  local t = type(v)
  into.data, into.len, into.number = nil, 0, 0
  if t == "string" then
    pinned[slot] = v
    into.type, into.data, into.len = T_STRING, ffi_cast("const void *", v), #v
  elseif t == "number" then
    into.type, into.number = T_NUMBER, v
  elseif t == "boolean" then
    into.type, into.number = T_BOOLEAN, v and 1 or 0
  elseif v == nil then
    into.type = T_NIL
  elseif t == "table" then
    local bytes = enc == old_encoder and read_from[v]
    if bytes then
      pinned[slot] = bytes
      into.type, into.data, into.len = T_TABLE, ffi_cast("const void *", bytes), #bytes
      return true
    end
    local p, len = encode(enc, v)
    if not p then return nil, len end
    into.type, into.data, into.len = T_TABLE, p, len
  else
    return nil, "bad value type"
  end
  return true
end

-- Reading -------------------------------------------------------------------

local Dict = {}
Dict.__index = Dict

-- get or pop into out/buf, growing buf while the value does not fit.
local function fetch(d, key, stale)
  local rc = C.lc__shdict_get(d, key, #key, stale, out, buf, buf_size)
  while rc == E_TOOSMALL do
    grow(tonumber(out.len))
    rc = C.lc__shdict_get(d, key, #key, stale, out, buf, buf_size)
  end
  return rc
end

-- dict:get(key) -> value, flags (flags only when not 0); nil when absent.
function Dict.get(self, key)
  local d = zone(self)
  local k, err = check_key(key)
  if not k then return nil, err end
  local rc = fetch(d, k, 0)
  if rc ~= 0 then
    if rc == E_NOTFOUND then return nil end
    return nil, message(rc)
  end
  local v, flags = value_of(), out.flags
  if flags ~= 0 then return v, flags end
  return v
end

-- dict:get_stale(key) -> value, flags, stale: an expired value too, until
-- its memory is reused.
function Dict.get_stale(self, key)
  local d = zone(self)
  local k, err = check_key(key)
  if not k then return nil, err end
  local rc = fetch(d, k, 1)
  if rc ~= 0 then
    if rc == E_NOTFOUND then return nil end
    return nil, message(rc)
  end
  local v, flags = value_of(), out.flags
  return v, flags ~= 0 and flags or nil, out.stale ~= 0
end

-- Writing -------------------------------------------------------------------

local function store(d, op, key, v, exptime, flags)
  local ttl = check_exptime(exptime, "exptime")
  flags = check_flags(flags)
  local k, err = check_key(key)
  if not k then return nil, err end
  local t, rc = type(v)
  if t == "string" then
    rc = C.lc__shdict_store(d, op, k, #k, T_STRING, v, #v, 0, ttl, flags, forcible)
  elseif t == "number" then
    rc = C.lc__shdict_store(d, op, k, #k, T_NUMBER, nil, 0, v, ttl, flags, forcible)
  elseif t == "boolean" then
    rc = C.lc__shdict_store(d, op, k, #k, T_BOOLEAN, nil, 0, v and 1 or 0, ttl,
                            flags, forcible)
  elseif v == nil then
    rc = C.lc__shdict_store(d, op, k, #k, T_NIL, nil, 0, 0, ttl, flags, forcible)
  elseif t == "table" then
    local p, len = encode(encoder, v)
    if not p then return nil, len end
    rc = C.lc__shdict_store(d, op, k, #k, T_TABLE, p, len, 0, ttl, flags, forcible)
  else
    return nil, "bad value type"
  end
  if rc == 0 then return true, nil, forcible[0] == 1 end
  return false, message(rc), forcible[0] == 1
end

-- set/safe_set/add/safe_add/replace(key, value[, exptime[, flags]])
--   -> ok, err, forcible
function Dict.set(self, key, v, exptime, flags)
  return store(zone(self), SET, key, v, exptime, flags)
end

function Dict.safe_set(self, key, v, exptime, flags)
  return store(zone(self), SET + SAFE, key, v, exptime, flags)
end

function Dict.add(self, key, v, exptime, flags)
  return store(zone(self), ADD, key, v, exptime, flags)
end

function Dict.safe_add(self, key, v, exptime, flags)
  return store(zone(self), ADD + SAFE, key, v, exptime, flags)
end

function Dict.replace(self, key, v, exptime, flags)
  return store(zone(self), REPLACE, key, v, exptime, flags)
end

function Dict.delete(self, key)
  return store(zone(self), SET, key, nil)
end

local function check_number(v, what)
  if type(v) == "number" then return v end
  local n = tonumber(v)
  if not n then
    error("bad " .. what .. " arg: number expected, got " .. type(v), 3)
  end
  return n
end

-- dict:incr(key, value[, init[, init_ttl]]) -> new value (and nil,
-- forcible with init); nil, "not found" / "not a number".
function Dict.incr(self, key, value, init, init_ttl)
  local d = zone(self)
  local k, err = check_key(key)
  if not k then return nil, err end
  value = check_number(value, "value")
  local ttl = 0
  if init then init = check_number(init, "init") end
  if init_ttl ~= nil then
    init_ttl = check_number(init_ttl, "init_ttl")
    if not (init_ttl >= 0) then error('bad "init_ttl" argument', 2) end
    if not init then error('must provide "init" when providing "init_ttl"', 2) end
    ttl = ms(init_ttl)
  end
  local rc = C.lc__shdict_incr(d, k, #k, value, init and 1 or 0, init or 0, ttl,
                               number, forcible)
  if rc ~= 0 then return nil, message(rc) end
  if not init then return number[0] end
  return number[0], nil, forcible[0] == 1
end

-- dict:cas(key, old, new[, exptime[, flags]]) -> ok, err, forcible: new
-- is stored only if the key's value is still old (nil: absent); err is
-- "changed" or "not found" otherwise. A table from get is compared by the
-- bytes it was read from.
function Dict.cas(self, key, old, new, exptime, flags)
  local d = zone(self)
  local ttl = check_exptime(exptime, "exptime")
  flags = check_flags(flags)
  local k, err = check_key(key)
  if not k then return nil, err end
  local ok, why = input(expected_in, old, old_encoder, 1)
  if ok then ok, why = input(new_in, new, encoder, 2) end
  local rc = ok and C.lc__shdict_cas(d, k, #k, expected_in, new_in, ttl, flags, forcible)
  pinned[1], pinned[2] = nil, nil
  if not ok then return nil, why end
  if rc == 0 then return true, nil, forcible[0] == 1 end
  return false, message(rc), forcible[0] == 1
end

-- dict:ttl(key) -> seconds left (0: never expires); nil, "not found".
function Dict.ttl(self, key)
  local d = zone(self)
  local k, err = check_key(key)
  if not k then return nil, err end
  local rc = C.lc__shdict_ttl(d, k, #k, ttl_out)
  if rc ~= 0 then return nil, message(rc) end
  return tonumber(ttl_out[0]) / 1000
end

-- dict:expire(key, exptime) -> true; nil, "not found".
function Dict.expire(self, key, exptime)
  local d = zone(self)
  if exptime == nil then error('bad "exptime" argument', 2) end
  local ttl = check_exptime(exptime, "exptime")
  local k, err = check_key(key)
  if not k then return nil, err end
  local rc = C.lc__shdict_expire(d, k, #k, ttl)
  if rc ~= 0 then return nil, message(rc) end
  return true
end

-- Lists ---------------------------------------------------------------------

local function push(self, side, key, v)
  local d = zone(self)
  local k, err = check_key(key)
  if not k then return nil, err end
  local t, rc = type(v)
  if t == "string" then
    rc = C.lc__shdict_push(d, k, #k, side, T_STRING, v, #v, 0, count)
  elseif t == "number" then
    rc = C.lc__shdict_push(d, k, #k, side, T_NUMBER, nil, 0, v, count)
  elseif t == "boolean" then
    rc = C.lc__shdict_push(d, k, #k, side, T_BOOLEAN, nil, 0, v and 1 or 0, count)
  elseif t == "table" then
    local p, len = encode(encoder, v)
    if not p then return nil, len end
    rc = C.lc__shdict_push(d, k, #k, side, T_TABLE, p, len, 0, count)
  else
    return nil, "bad value type"
  end
  if rc ~= 0 then return nil, message(rc) end
  return tonumber(count[0])
end

local function pop(self, side, key)
  local d = zone(self)
  local k, err = check_key(key)
  if not k then return nil, err end
  local rc = C.lc__shdict_pop(d, k, #k, side, out, buf, buf_size)
  while rc == E_TOOSMALL do
    grow(tonumber(out.len))
    rc = C.lc__shdict_pop(d, k, #k, side, out, buf, buf_size)
  end
  if rc ~= 0 then
    if rc == E_NOTFOUND then return nil end
    return nil, message(rc)
  end
  return value_of()
end

-- lpush/rpush(key, value) -> the list's length; lpop/rpop(key) -> value
-- (nil when empty or absent); llen(key) -> length (0 when absent).
function Dict.lpush(self, key, v) return push(self, LEFT, key, v) end
function Dict.rpush(self, key, v) return push(self, RIGHT, key, v) end
function Dict.lpop(self, key) return pop(self, LEFT, key) end
function Dict.rpop(self, key) return pop(self, RIGHT, key) end

function Dict.llen(self, key)
  local d = zone(self)
  local k, err = check_key(key)
  if not k then return nil, err end
  local rc = C.lc__shdict_llen(d, k, #k, count)
  if rc ~= 0 then return nil, message(rc) end
  return tonumber(count[0])
end

-- The whole dict ------------------------------------------------------------

function Dict.flush_all(self)
  C.lc__shdict_flush_all(zone(self))
end

-- dict:flush_expired([max]) -> how many expired entries were freed.
function Dict.flush_expired(self, max)
  local d = zone(self)
  if max ~= nil and (type(max) ~= "number" or max < 0) then
    error('bad "max_count" argument', 2)
  end
  C.lc__shdict_flush_expired(d, max or 0, count)
  return tonumber(count[0])
end

-- dict:get_keys([max]) -> up to max live keys (1024 by default, 0: all).
function Dict.get_keys(self, max)
  zone(self)
  if max ~= nil and (type(max) ~= "number" or max < 0) then
    error('bad "max_count" argument', 2)
  end
  return native.get_keys(self[2], max or 1024)
end

function Dict.capacity(self)
  return tonumber(C.lc__shdict_capacity(zone(self)))
end

function Dict.free_space(self)
  return tonumber(C.lc__shdict_free_space(zone(self)))
end

function Dict.__tostring(self)
  return "shared dict: " .. self.name
end

-- The module ----------------------------------------------------------------

local dicts, names = native.dicts()
local shared = {}
local define

local function add(name, handle)
  rawset(shared, name, setmetatable({ ffi_cast("lc__shdict *", handle), handle,
                                      name = name }, Dict))
end

-- shared.NAME for a name nobody defined is an error naming those that are.
setmetatable(shared, {
  __index = function(_, name)
    if name == "define" then return define end
    local list = #names > 0 and table.concat(names, ", ") or
                 "none; declare one with --shared NAME=SIZE"
    error(("no shared dict %q (defined: %s)"):format(tostring(name), list), 2)
  end,
})

local UNITS = { [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3 }

-- shared.define(name, size) -> dict: script mode, in the master, before
-- the first cluster.fork(). size is bytes, or a string like "64m".
function define(name, size)
  if type(name) ~= "string" then
    error("shared.define: bad name (a string expected, got " .. type(name) .. ")", 2)
  end
  local bytes = type(size) == "number" and size or nil
  if type(size) == "string" then
    local n, unit = size:match("^(%d+)([kKmMgG]?)$")
    bytes = n and tonumber(n) * UNITS[unit:lower()]
  end
  if not bytes then
    error(("shared.define: bad size %s (bytes, or a string like \"64m\")")
          :format(tostring(size)), 2)
  end
  local ok, handle = pcall(native.define, name, bytes)
  if not ok then error(handle, 2) end
  add(name, handle)
  names[#names + 1] = name
  return rawget(shared, name)
end

for _, name in ipairs(names) do add(name, dicts[name]) end

return shared
