/*
 * lua_signals.c - process.on("SIGxxx") and process.kill() for Lua.
 *
 * A uv_signal_t only records the signal; the Lua handler runs from the loop.
 * Watchers are unref'd: listening for a signal does not keep a process
 * alive, as in Node.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lua_binding.h"

/* Lua watchers ----------------------------------------------------------- */

struct lc__signal_watch {
  lc__owner owner;
  uv_signal_t signal;
  lc_runtime *rt;
  int signum;
};

static void sigwatch_on_close(uv_handle_t *handle) {
  lc__signal_watch *w = handle->data;

  if (w->rt->signals[w->signum] == w)
    w->rt->signals[w->signum] = NULL;
  free(w);
}

static void sigwatch_close(uv_handle_t *handle) {
  uv_close(handle, sigwatch_on_close);
}

/* process:_native("signal", name) */
static void on_signal(uv_signal_t *handle, int signum) {
  lc__signal_watch *w = handle->data;
  lc_runtime *rt = w->rt;

  lua_pushstring(rt->L, lc__signal_name(signum));
  lc__lua_emit(rt, rt->process_ref, "signal", 1, 0);
}

static int check_signal(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int signum = lc__signal_number(name);

  if (signum <= 0 || signum >= LC__MAX_SIGNAL)
    return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
  if (signum == SIGKILL || signum == SIGSTOP)
    return luaL_argerror(L, idx, lua_pushfstring(L, "%s cannot be caught", name));
  return signum;
}

/* core.signal_watch(name): process hears "signal" on each delivery. */
static int signal_watch(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  int signum = check_signal(L, 1);
  lc__signal_watch *w = rt->signals[signum];
  int err;

  if (w != NULL)
    return 0;
  w = calloc(1, sizeof(*w));
  if (w == NULL)
    return luaL_error(L, "out of memory");
  w->owner.close = sigwatch_close;
  w->rt = rt;
  w->signum = signum;
  uv_signal_init(&rt->core.loop, &w->signal);
  w->signal.data = w;
  err = uv_signal_start(&w->signal, on_signal, signum);
  if (err) {
    uv_close((uv_handle_t *)&w->signal, sigwatch_on_close);
    return luaL_error(L, "cannot watch %s: %s", lua_tostring(L, 1),
                      uv_strerror(err));
  }
  uv_unref((uv_handle_t *)&w->signal);
  rt->signals[signum] = w;
  lc__signal_default(&rt->core, signum, 0); /* the listener replaces it */
  return 0;
}

/* core.signal_unwatch(name): back to the default action. */
static int signal_unwatch(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  int signum = check_signal(L, 1);
  lc__signal_watch *w = rt->signals[signum];

  if (w != NULL) {
    rt->signals[signum] = NULL;
    uv_close((uv_handle_t *)&w->signal, sigwatch_on_close);
  }
  lc__signal_default(&rt->core, signum, 1);
  return 0;
}

/* core.kill(pid, name|number) */
static int core_kill(lua_State *L) {
  int pid = (int)luaL_checkinteger(L, 1);
  int signum = SIGTERM;
  int err;

  if (lua_type(L, 2) == LUA_TNUMBER)
    signum = (int)lua_tointeger(L, 2);
  else if (!lua_isnoneornil(L, 2)) {
    signum = lc__signal_number(luaL_checkstring(L, 2));
    if (signum == 0)
      return luaL_argerror(L, 2, "unknown signal");
  }
  err = uv_kill(pid, signum);
  if (err)
    return luaL_error(L, "kill %d: %s", pid, uv_strerror(err));
  return 0;
}

void lc__core_signals(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg fns[] = {{"signal_watch", signal_watch},
                                 {"signal_unwatch", signal_unwatch},
                                 {"kill", core_kill},
                                 {NULL, NULL}};
  lc__lua_register(L, rt, fns);
}
