/*
 * lua_core.c - the "luacluster.core" module: one table of C primitives that
 * the Lua modules in lua/ build the Node-style API on. Each area of the
 * runtime adds its own functions (lc__core_*).
 */
#include "internal.h"

static int exit_handler_ref = LUA_NOREF;

/* core.set_exit_handler(fn): fn("beforeExit") when the loop runs dry,
 * fn("exit") -> exit code at the end. */
static int set_exit_handler(lua_State *L) {
  return lc__lua_set_handler(L, &exit_handler_ref);
}

int lc__lua_loop_end(lc_runtime *rt) {
  if (exit_handler_ref == LUA_NOREF || rt->exiting)
    return 0;
  lc__lua_push_ref(rt->L, exit_handler_ref);
  lua_pushliteral(rt->L, "beforeExit");
  lc__lua_call(rt->L, 1, 0);
  return 1;
}

int lc__lua_exit_code(lc_runtime *rt) {
  int code = 0;

  if (exit_handler_ref == LUA_NOREF)
    return 0;
  lc__lua_push_ref(rt->L, exit_handler_ref);
  lua_pushliteral(rt->L, "exit");
  if (lc__lua_call(rt->L, 1, 1) == 0) {
    code = (int)lua_tointeger(rt->L, -1);
    lua_pop(rt->L, 1);
  }
  /* An uncaught error in an exit listener decides the code. */
  return rt->exiting ? rt->exit_code : code;
}

void lc__lua_exit_event(lc_runtime *rt, int code) {
  lua_State *L = rt->L;
  int base = lua_gettop(L);

  if (exit_handler_ref == LUA_NOREF)
    return;
  /* Not through lc__lua_call: an error here is only logged. */
  lc__lua_push_ref(L, exit_handler_ref);
  lua_pushliteral(L, "exit");
  lua_pushinteger(L, code);
  if (lua_pcall(L, 2, 0, 0) != 0 && !lc__lua_is_exit_sentinel(L, -1))
    lc__log(LC__LOG_ERROR, "error in an exit listener: %s",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  lua_settop(L, base);
}

int lc__open_core(lua_State *L) {
  lua_newtable(L);
  lc__core_process(L);
  lc__core_timers(L);
  lc__core_signals(L);
  lc__core_json(L);
  lc__core_cluster(L);
  lc__core_net(L);
  lua_pushcfunction(L, set_exit_handler);
  lua_setfield(L, -2, "set_exit_handler");
  return 1;
}
