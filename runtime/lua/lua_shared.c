/*
 * lua_shared.c - the "luacluster.shared" module under lua/shared.lua: the
 * process's shared dicts by name, shared.define() in a script-mode master,
 * and get_keys. The hot operations (get, set, incr, ...) do not come
 * through here: lua/shared.lua calls the core's functions directly with
 * LuaJIT's FFI, as lua-resty-core does, which saves the Lua C API's stack
 * work on every call.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_binding.h"
#include "shared_dicts.h"

/*
 * What lua/shared.lua calls through the FFI (ffi.C.lc__shdict_*). The
 * executable exports its symbols (ENABLE_EXPORTS, -Wl,-E), but a static
 * link only keeps the objects something refers to, and nothing else in C
 * calls some of these: this table is that reference.
 */
#define FFI_SYMBOL(fn) ((void (*)(void))(fn))
void (*const lc__shdict_ffi_symbols[])(void) = {
    FFI_SYMBOL(lc__shdict_get),         FFI_SYMBOL(lc__shdict_store),
    FFI_SYMBOL(lc__shdict_incr),        FFI_SYMBOL(lc__shdict_cas),
    FFI_SYMBOL(lc__shdict_ttl),         FFI_SYMBOL(lc__shdict_expire),
    FFI_SYMBOL(lc__shdict_push),        FFI_SYMBOL(lc__shdict_pop),
    FFI_SYMBOL(lc__shdict_llen),        FFI_SYMBOL(lc__shdict_flush_all),
    FFI_SYMBOL(lc__shdict_flush_expired), FFI_SYMBOL(lc__shdict_capacity),
    FFI_SYMBOL(lc__shdict_free_space),  FFI_SYMBOL(lc__shdict_max_value),
    FFI_SYMBOL(lc__shdict_strerror),    FFI_SYMBOL(lc__shdict_check),
    FFI_SYMBOL(lc__shdict_repairs),     FFI_SYMBOL(lc__shdict_segments),
};

/* Pushes {name = dict (a light userdata the FFI casts), ...} and the
 * names in the order they were defined. */
static int shared_dicts(lua_State *L) {
  lc__core *core = &lc__lua_rt(L)->core;
  int i, n = lc__dicts_count(core);

  lua_createtable(L, 0, n);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lua_pushlightuserdata(L, lc__dicts_at(core, i));
    lua_setfield(L, -3, lc__dicts_name(core, i));
    lua_pushstring(L, lc__dicts_name(core, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 2;
}

/* define(name, bytes) -> dict: script mode, in the master, before the
 * first fork. Raises the reason otherwise. */
static int shared_define(lua_State *L) {
  lc__core *core = &lc__lua_rt(L)->core;
  const char *name = luaL_checkstring(L, 1);
  lua_Number size = luaL_checknumber(L, 2);
  char err[256];

  if (size < 0 || size > (lua_Number)LC__DICT_MAX_SIZE)
    size = 0; /* out of range either way: the core says so */
  if (lc__dicts_define(core, name, (size_t)size, err, sizeof(err)) != 0)
    return luaL_error(L, "shared.define: %s", err);
  lua_pushlightuserdata(L, lc__dicts_find(core, name));
  return 1;
}

/* The dict a light userdata from dicts()/define() is. */
static lc__shdict *check_dict(lua_State *L, int idx) {
  lc__shdict *d = lua_touserdata(L, idx);

  if (lua_type(L, idx) != LUA_TLIGHTUSERDATA || d == NULL)
    luaL_argerror(L, idx, "a shared dict expected");
  return d;
}

/* get_keys(dict, max) -> {key, ...}: the core copies the keys out one
 * segment at a time (each segment's lock held only for its own walk); the
 * table is built after, with no lock held. */
static int shared_get_keys(lua_State *L) {
  lc__shdict *d = check_dict(L, 1);
  lua_Number max = luaL_optnumber(L, 2, 1024);
  size_t bytes, count, i, off = 0;
  uint16_t len;
  char *keys;
  int rc;

  if (max < 0)
    return luaL_argerror(L, 2, "a count expected (0 for all)");
  rc = lc__shdict_get_keys(d, (size_t)max, &keys, &bytes, &count);
  if (rc != 0)
    return luaL_error(L, "get_keys: %s", lc__shdict_strerror(rc));
  lua_createtable(L, (int)count, 0);
  for (i = 0; i < count && off + 2 <= bytes; i++) {
    memcpy(&len, keys + off, 2);
    lua_pushlstring(L, keys + off + 2, len);
    lua_rawseti(L, -2, (int)i + 1);
    off += 2 + (size_t)len;
  }
  free(keys);
  return 1;
}

int lc__open_shared(lua_State *L) {
  static const luaL_Reg fns[] = {{"dicts", shared_dicts},
                                 {"define", shared_define},
                                 {"get_keys", shared_get_keys},
                                 {NULL, NULL}};

  lua_newtable(L);
  lc__lua_register(L, lc__lua_runtime_of(L), fns);
  return 1;
}
