/*
 * lua_state.c - the app's Lua state: creation, the bundled modules, require
 * beside the app, and the one protected-call path every C->Lua call takes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>

#include "lua_binding.h"
#include "lua_bundle.h"

extern int luaopen_cjson(lua_State *L);

/* Registry keys. */
static char exit_sentinel_key;
static char last_error_key;
static char runtime_key;

void lc__lua_push_exit_sentinel(lua_State *L) {
  lua_pushlightuserdata(L, &exit_sentinel_key);
}

int lc__lua_is_exit_sentinel(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA &&
         lua_touserdata(L, idx) == &exit_sentinel_key;
}

void lc__lua_register(lua_State *L, lc_runtime *rt, const luaL_Reg *fns) {
  lua_pushlightuserdata(L, rt);
  luaL_setfuncs(L, fns, 1);
}

void lc__lua_push_ref(lua_State *L, int ref) {
  if (ref == LUA_NOREF || ref == LUA_REFNIL)
    lua_pushnil(L);
  else
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}

void lc__lua_set_ref(lua_State *L, int *ref, int idx) {
  lua_pushvalue(L, idx);
  if (*ref != LUA_NOREF && *ref != LUA_REFNIL) {
    lua_rawseti(L, LUA_REGISTRYINDEX, *ref);
    return;
  }
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void lc__lua_unref_in(lua_State *L, int *ref) {
  if (*ref != LUA_NOREF && *ref != LUA_REFNIL)
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
}

/* Refs dropped where the main thread's stack may not be touched (a binding
 * called from a coroutine: the main thread is suspended inside its
 * resume) wait here; the next call into Lua from the loop frees them. */
static void drop_refs(lc_runtime *rt) {
  while (rt->dead_refs.n > 0)
    luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->dead_refs.refs[--rt->dead_refs.n]);
}

void lc__lua_unref(lc_runtime *rt, int *ref) {
  int ref_ = *ref, *grown;
  size_t cap;

  *ref = LUA_NOREF;
  if (rt->L == NULL || ref_ == LUA_NOREF || ref_ == LUA_REFNIL)
    return;
  if (rt->dead_refs.n == rt->dead_refs.cap) {
    cap = rt->dead_refs.cap ? rt->dead_refs.cap * 2 : 64;
    grown = realloc(rt->dead_refs.refs, cap * sizeof(*grown));
    if (grown == NULL) {
      luaL_unref(rt->L, LUA_REGISTRYINDEX, ref_); /* no room: now */
      return;
    }
    rt->dead_refs.refs = grown;
    rt->dead_refs.cap = cap;
  }
  rt->dead_refs.refs[rt->dead_refs.n++] = ref_;
}

int lc__lua_push_error(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, uv_strerror(err));
  lua_pushstring(L, uv_err_name(err));
  return 3;
}

const char *lc__lua_err_text(int err) { return lc__conn_strerror(err); }

/* Message handler: keeps the error value for the uncaught handler and turns
 * it into a string with a traceback. */
static int traceback(lua_State *L) {
  const char *msg;

  if (lc__lua_is_exit_sentinel(L, 1))
    return 1;
  lua_pushlightuserdata(L, &last_error_key);
  lua_pushvalue(L, 1);
  lua_rawset(L, LUA_REGISTRYINDEX);

  msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Asks process:_native("uncaughtException", err, trace) whether a listener
 * took the error (the values at err_idx and trace_idx of L). */
static int uncaught_handled(lc_runtime *rt, lua_State *L, int err_idx,
                            int trace_idx) {
  int tb, handled = 0;

  if (rt->process_ref == LUA_NOREF || rt->core.exiting)
    return 0;
  lua_pushcfunction(L, traceback);
  tb = lua_gettop(L);
  lc__lua_push_ref(L, rt->dispatcher_ref);
  lc__lua_push_ref(L, rt->process_ref);
  lua_pushliteral(L, "uncaughtException");
  lua_pushvalue(L, err_idx);
  lua_pushvalue(L, trace_idx);
  if (lua_pcall(L, 4, 1, tb) == 0)
    handled = lua_toboolean(L, -1);
  else if (!lc__lua_is_exit_sentinel(L, -1))
    lc__log(LC__LOG_ERROR, "error in uncaughtException handler: %s",
            lua_tostring(L, -1));
  lua_settop(L, tb - 1);
  return handled;
}

/* Gives an error to process "uncaughtException"; if nobody handles it the
 * process logs it with its traceback and exits 1, as Node does. Returns 1
 * when the process is exiting. */
static int report_error(lc_runtime *rt, lua_State *L, int err_idx,
                        int trace_idx) {
  const char *trace = lua_tostring(L, trace_idx);

  if (!uncaught_handled(rt, L, err_idx, trace_idx) && !rt->core.exiting) {
    lc__log(LC__LOG_ERROR, "uncaught error: %s", trace ? trace : "?");
    /* As Node: "exit" listeners run, with code 1, then the process ends. */
    rt->core.exit_code = 1;
    lc__lua_exit_event(rt, 1);
    if (!rt->core.exiting)
      lc__core_exit(&rt->core, 1);
  }
  return rt->core.exiting;
}

int lc__lua_report(lc_runtime *rt, lua_State *L, int err_idx, int trace_idx) {
  return report_error(rt, L, err_idx, trace_idx);
}

int lc__lua_call(lc_runtime *rt, int nargs, int nresults) {
  lua_State *L = rt->L;
  int base = lua_gettop(L) - nargs;
  int r;

  drop_refs(rt);
  if (rt->core.exiting) {
    lua_pop(L, nargs + 1);
    return -1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->traceback_ref);
  lua_insert(L, base);
  r = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (r == 0)
    return 0;
  if (!lc__lua_is_exit_sentinel(L, -1)) {
    /* The error value the handler kept, below its traceback. */
    lua_pushlightuserdata(L, &last_error_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    report_error(rt, L, lua_gettop(L), lua_gettop(L) - 1);
    lua_pop(L, 1);
    lua_pushlightuserdata(L, &last_error_key);
    lua_pushnil(L);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 1);
  return -1;
}

int lc__lua_wake(lc_runtime *rt, int *thread_ref, int nargs) {
  lua_State *L = rt->L;

  if (L == NULL || *thread_ref == LUA_NOREF || rt->core.exiting ||
      rt->waker_ref == LUA_NOREF) {
    if (L != NULL)
      lua_pop(L, nargs);
    lc__lua_unref(rt, thread_ref);
    return -1;
  }
  lc__lua_push_ref(L, rt->waker_ref);
  lc__lua_push_ref(L, *thread_ref);
  lc__lua_unref(rt, thread_ref);
  /* waker, thread below the arguments */
  lua_insert(L, -2 - nargs);
  lua_insert(L, -2 - nargs);
  return lc__lua_call(rt, nargs + 1, 0);
}

void lc__lua_check_coroutine(lua_State *L, const char *what) {
  if (lua_pushthread(L))
    luaL_error(L, "%s waits, so it must run inside a coroutine (a request "
                  "handler, a listener or a timer callback), not in the main "
                  "chunk", what);
  lua_pop(L, 1);
}

int lc__lua_hold_thread(lua_State *L, const char *what, int *thread_ref) {
  lc__lua_check_coroutine(L, what);
  lua_pushthread(L);
  lc__lua_set_ref(L, thread_ref, -1);
  lua_pop(L, 1);
  return 0;
}

/* Pushes an event name. Names are string literals, so their address finds
 * the Lua string made the first time in a small cache. */
static void push_event(lc_runtime *rt, lua_State *L, const char *event) {
  size_t slot = ((uintptr_t)event >> 3) % LC__ARRAY_SIZE(rt->event_names);

  if (rt->event_names[slot].name == event) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->event_names[slot].ref);
    return;
  }
  lua_pushstring(L, event);
  if (rt->event_names[slot].name != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, rt->event_names[slot].ref);
  lua_pushvalue(L, -1);
  rt->event_names[slot].ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rt->event_names[slot].name = event;
}

int lc__lua_emit(lc_runtime *rt, int obj_ref, const char *event, int nargs,
                 int nresults) {
  lua_State *L = rt->L;

  if (obj_ref == LUA_NOREF || rt->core.exiting || L == NULL) {
    if (L != NULL)
      lua_pop(L, nargs);
    return -1;
  }
  lc__lua_push_ref(L, rt->dispatcher_ref);
  lc__lua_push_ref(L, obj_ref);
  push_event(rt, L, event);
  /* dispatcher, object, event below the arguments */
  lua_insert(L, -3 - nargs);
  lua_insert(L, -3 - nargs);
  lua_insert(L, -3 - nargs);
  return lc__lua_call(rt, nargs + 2, nresults);
}

/* package.preload loader for one bundled module (upvalue: its index). */
static int load_bundled(lua_State *L) {
  const lc__bundle_entry *e = &lc__bundle[lua_tointeger(L, lua_upvalueindex(1))];

  if (luaL_loadbuffer(L, (const char *)e->data, e->size, e->name) != 0)
    return lua_error(L);
  lua_pushstring(L, e->name);
  lua_call(L, 1, 1);
  return 1;
}

static void set_preload(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, fn);
  lua_setfield(L, -2, name);
  lua_pop(L, 2);
}

/* require() looks beside the app first, as Node's require('./x'). */
static void set_paths(lua_State *L, const char *dir) {
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pushfstring(L, "%s/?.so;", dir);
  lua_getfield(L, -2, "cpath");
  lua_concat(L, 2);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
}

static void set_bundled(lua_State *L) {
  size_t i;

  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  for (i = 0; i < lc__bundle_count; i++) {
    lua_pushinteger(L, (lua_Integer)i);
    lua_pushcclosure(L, load_bundled, 1);
    lua_setfield(L, -2, lc__bundle[i].name);
  }
  lua_pop(L, 2);
}

lua_State *lc__lua_open(lc_runtime *rt) {
  lua_State *L = luaL_newstate();
  lc__preload *p;
  lc__hook *h;

  if (L == NULL)
    return NULL;
  rt->L = L;
  rt->dispatcher_ref = rt->process_ref = rt->worker_ref = LUA_NOREF;
  rt->waker_ref = rt->bus_record_ref = rt->bus_ref = LUA_NOREF;
  rt->http_names_ref = LUA_NOREF;
  memset(rt->event_names, 0, sizeof(rt->event_names));
  lua_pushcfunction(L, traceback);
  rt->traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  memset(&rt->codec, 0, sizeof(rt->codec));
  rt->codec.encode_ref = rt->codec.decode_ref = rt->codec.new_ref = LUA_NOREF;
  rt->codec.buffer_ref = LUA_NOREF;
  luaL_openlibs(L);
  lua_pushlightuserdata(L, &runtime_key);
  lua_pushlightuserdata(L, rt);
  lua_rawset(L, LUA_REGISTRYINDEX);
  set_bundled(L);
  set_preload(L, "luacluster.core", lc__open_core);
  set_preload(L, "cjson", luaopen_cjson);
  set_preload(L, "luacluster.crypto", lc__open_crypto);
  set_preload(L, "luacluster.shared", lc__open_shared);
  set_preload(L, "luacluster.redis", lc__open_redis);
  for (p = rt->preloads; p != NULL; p = p->next)
    set_preload(L, p->name, p->open);
  set_paths(L, rt->script_dir);

  /* The boot module makes the globals (process, cluster, timers, ...). */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luacluster.boot");
  if (lua_pcall(L, 1, 0, 0) != 0) {
    lc__log(LC__LOG_ERROR, "cannot start the Lua runtime: %s",
            lua_tostring(L, -1));
    lc__lua_close(rt);
    return NULL;
  }
  for (h = rt->hooks; h != NULL; h = h->next)
    h->fn(L, h->arg);
  return L;
}

/* The runtime of a state (for lua_core.c's opener, which has no upvalue). */
lc_runtime *lc__lua_runtime_of(lua_State *L) {
  lc_runtime *rt;

  lua_pushlightuserdata(L, &runtime_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  rt = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}

void lc__lua_close(lc_runtime *rt) {
  lua_State *L = rt->L;

  if (L == NULL)
    return;
  /* Refs are dropped as the state goes: nothing may touch it from now. */
  rt->L = NULL;
  lua_close(L);
  free(rt->dead_refs.refs);
  memset(&rt->dead_refs, 0, sizeof(rt->dead_refs));
}

int lc__lua_run_app(lc_runtime *rt) {
  lua_State *L = rt->L;
  int i, r;

  r = luaL_loadfile(L, rt->script);
  if (r != 0) {
    /* One line: "luacluster: app.lua:3: '=' expected near 'x'". */
    fprintf(stderr, "luacluster: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return rt->core.role == LC__ROLE_WORKER ? LC__EXIT_FATAL : 1;
  }
  for (i = 0; i < rt->nargs; i++)
    lua_pushstring(L, rt->args[i]);
  lc__lua_call(rt, rt->nargs, 0);
  return 0;
}

int lc__lua_check_script(const char *path) {
  lua_State *L = luaL_newstate();
  int ok;

  if (L == NULL)
    return -1;
  ok = luaL_loadfile(L, path) == 0;
  if (!ok)
    fprintf(stderr, "luacluster: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return ok ? 0 : -1;
}
