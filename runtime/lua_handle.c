/*
 * lua_handle.c - the userdata/ref/close rules every Lua-facing handle follows:
 *
 * 1. The userdata is a box holding a pointer to a malloc'd struct that embeds
 *    the libuv handle; handle->data points at the struct.
 * 2. While C may call back, the struct holds a registry ref to its userdata
 *    (pin) and to its callback; the close callback drops them.
 * 3. Memory is freed only in the close callback. __gc on an open handle
 *    starts the close; __gc after a close only forgets the box.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void lhandle_on_close(uv_handle_t *handle) {
  lc__lhandle *h = handle->data;
  lua_State *L = lc__rt->L;

  if (h->on_free != NULL)
    h->on_free(h);
  if (L != NULL) {
    lc__lua_unref(L, &h->self_ref);
    lc__lua_unref(L, &h->cb_ref);
  }
  if (h->box != NULL)
    *h->box = NULL;
  free(h);
}

static void lhandle_close(uv_handle_t *handle) {
  lc__lhandle_close(handle->data);
}

void *lc__lhandle_new(lua_State *L, size_t size, size_t handle_offset,
                      const char *mt) {
  lc__lhandle **box;
  lc__lhandle *h = calloc(1, size);

  if (h == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  h->owner.close = lhandle_close;
  h->handle = (uv_handle_t *)((char *)h + handle_offset);
  h->self_ref = LUA_NOREF;
  h->cb_ref = LUA_NOREF;
  box = lua_newuserdata(L, sizeof(*box));
  *box = h;
  h->box = box;
  luaL_getmetatable(L, mt);
  lua_setmetatable(L, -2);
  return h;
}

void *lc__lhandle_check(lua_State *L, int idx, const char *mt) {
  lc__lhandle **box = luaL_checkudata(L, idx, mt);

  if (*box == NULL || uv_is_closing((*box)->handle))
    luaL_error(L, "%s is closed", mt);
  return *box;
}

void lc__lhandle_pin(lua_State *L, lc__lhandle *h, int idx) {
  if (h->self_ref != LUA_NOREF)
    return;
  lua_pushvalue(L, idx);
  h->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void lc__lhandle_unpin(lua_State *L, lc__lhandle *h) {
  lc__lua_unref(L, &h->self_ref);
}

void lc__lhandle_set_cb(lua_State *L, lc__lhandle *h, int idx) {
  luaL_checktype(L, idx, LUA_TFUNCTION);
  lc__lua_unref(L, &h->cb_ref);
  lua_pushvalue(L, idx);
  h->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void lc__lhandle_close(lc__lhandle *h) {
  if (!uv_is_closing(h->handle))
    uv_close(h->handle, lhandle_on_close);
}

int lc__lhandle_gc(lua_State *L) {
  lc__lhandle **box = lua_touserdata(L, 1);

  if (box != NULL && *box != NULL) {
    (*box)->box = NULL;
    lc__lhandle_close(*box);
    *box = NULL;
  }
  return 0;
}

void lc__lhandle_push(lua_State *L, lc__lhandle *h) {
  lc__lua_push_ref(L, h->self_ref);
}
