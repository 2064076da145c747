/*
 * json.c - the message codec: lua-cjson, linked in, called from C.
 *
 * The runtime keeps its own cjson instance (cjson.new()) so an app that
 * reconfigures require("cjson") does not change what goes over the wire.
 * Sparse arrays become objects rather than errors; functions, userdata,
 * cycles (too deep) and NaN are refused with cjson's message.
 */
#include "internal.h"

extern int luaopen_cjson(lua_State *L);

static int encode_ref = LUA_NOREF;
static int decode_ref = LUA_NOREF;

int lc__json_encode(lua_State *L, int idx, const char **out, size_t *len) {
  if (idx < 0)
    idx = lua_gettop(L) + idx + 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, encode_ref);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != 0)
    return -1;
  *out = lua_tolstring(L, -1, len);
  return 0;
}

int lc__json_decode(lua_State *L, const char *s, size_t len) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
  lua_pushlstring(L, s, len);
  return lua_pcall(L, 1, 1, 0) != 0 ? -1 : 0;
}

static int json_encode(lua_State *L) {
  const char *s;
  size_t len;

  luaL_checkany(L, 1);
  if (lc__json_encode(L, 1, &s, &len) != 0)
    return lua_error(L);
  return 1;
}

static int json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);

  if (lc__json_decode(L, s, len) != 0)
    return lua_error(L);
  return 1;
}

void lc__core_json(lua_State *L) {
  if (encode_ref == LUA_NOREF) {
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "encode_sparse_array");
    lua_pushboolean(L, 1);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "encode");
    encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "decode");
    decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "null");
    lua_setfield(L, -4, "null");
    lua_pop(L, 2);
  }
  lua_pushcfunction(L, json_encode);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, json_decode);
  lua_setfield(L, -2, "decode");
}
