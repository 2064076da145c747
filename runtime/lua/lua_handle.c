/*
 * lua_handle.c - the one way a C object is bound to Lua (lua_binding.h):
 *
 * 1. The userdata is a box holding a pointer to a malloc'd object that
 *    starts with an lc__lua_handle; the C side (a libuv handle's data, a
 *    core object's data) points at the object too.
 * 2. While C may call back, the object holds a registry ref to the Lua
 *    object its events go to (pin) and to its callback; release drops them.
 * 3. Memory is freed only by release, at the end of the wrapped thing's
 *    close path. __gc on an open object starts the close; __gc after a
 *    close only forgets the box.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_binding.h"

static void push_box(lua_State *L, lc__lua_handle *h) {
  lc__lua_handle **box = lua_newuserdata(L, sizeof(*box));

  *box = h;
  h->box = box;
  luaL_getmetatable(L, h->type->name);
  lua_setmetatable(L, -2);
}

void *lc__lua_handle_new(lua_State *L, lc_runtime *rt,
                         const lc__lua_type *type, size_t size) {
  lc__lua_handle *h = calloc(1, size);

  if (h == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  h->rt = rt;
  h->type = type;
  h->self_ref = LUA_NOREF;
  h->cb_ref = LUA_NOREF;
  push_box(L, h);
  return h;
}

void lc__lua_handle_push_new(lua_State *L, lc__lua_handle *h) {
  push_box(L, h);
}

/* The box at idx if it is a userdata of this type, else a Lua error. The
 * type is found at its metatable's [1] (set by lc__lua_handle_class):
 * luaL_checkudata would hash the metatable's name on every call. */
static lc__lua_handle **check_box(lua_State *L, int idx,
                                  const lc__lua_type *type) {
  lc__lua_handle **box = lua_touserdata(L, idx);
  int ok = 0;

  if (box != NULL && lua_getmetatable(L, idx)) {
    lua_rawgeti(L, -1, 1);
    ok = lua_touserdata(L, -1) == (void *)type;
    lua_pop(L, 2);
  }
  if (!ok)
    luaL_typerror(L, idx, type->name);
  return box;
}

void *lc__lua_handle_test(lua_State *L, int idx, const lc__lua_type *type) {
  lc__lua_handle **box = check_box(L, idx, type);

  if (*box == NULL || (*box)->closing)
    return NULL;
  return *box;
}

void *lc__lua_handle_check(lua_State *L, int idx, const lc__lua_type *type) {
  lc__lua_handle *h = lc__lua_handle_test(L, idx, type);

  if (h == NULL)
    luaL_error(L, "%s is closed", type->name + sizeof("luacluster.") - 1);
  return h;
}

void lc__lua_handle_pin(lua_State *L, lc__lua_handle *h, int idx) {
  if (h->self_ref == LUA_NOREF)
    lc__lua_set_ref(L, &h->self_ref, idx);
}

void lc__lua_handle_unpin(lc__lua_handle *h) {
  lc__lua_unref(h->rt, &h->self_ref);
}

void lc__lua_handle_set_cb(lua_State *L, lc__lua_handle *h, int idx) {
  luaL_checktype(L, idx, LUA_TFUNCTION);
  lc__lua_set_ref(L, &h->cb_ref, idx);
}

void lc__lua_handle_close(lc__lua_handle *h) {
  if (h->closing)
    return;
  h->closing = 1;
  h->type->close(h);
}

void lc__lua_handle_release(lc__lua_handle *h) {
  lc__lua_unref(h->rt, &h->self_ref);
  lc__lua_unref(h->rt, &h->cb_ref);
  if (h->box != NULL)
    *h->box = NULL;
  free(h);
}

int lc__lua_handle_emit(lc__lua_handle *h, const char *event, int nargs,
                        int nresults) {
  return lc__lua_emit(h->rt, h->self_ref, event, nargs, nresults);
}

static int handle_gc(lua_State *L) {
  lc__lua_handle **box = lua_touserdata(L, 1);
  lc__lua_handle *h = box != NULL ? *box : NULL;

  if (h != NULL) {
    h->box = NULL;
    *box = NULL;
    lc__lua_handle_close(h);
  }
  return 0;
}

void lc__lua_handle_class(lua_State *L, lc_runtime *rt,
                          const lc__lua_type *type, const luaL_Reg *methods) {
  if (luaL_newmetatable(L, type->name)) {
    lua_pushlightuserdata(L, (void *)type);
    lua_rawseti(L, -2, 1);
    lua_newtable(L);
    lc__lua_register(L, rt, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
