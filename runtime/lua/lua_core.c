/*
 * lua_core.c - the "luacluster.core" module: one table of C primitives that
 * the Lua modules in lua/ build the Node-style API on. Each area of the
 * runtime adds its own functions (lc__core_*), every one with the runtime
 * as its upvalue.
 */
#include "lua_binding.h"

/* core.set_dispatcher(fn): fn(object, event, ...) hears every event. */
static int set_dispatcher(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lc__lua_set_ref(L, &lc__lua_rt(L)->dispatcher_ref, 1);
  return 0;
}

/* core.set_process(process): signals, errors and exit go to its _native. */
static int set_process(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lc__lua_set_ref(L, &lc__lua_rt(L)->process_ref, 1);
  return 0;
}

/* core.set_waker(fn): fn(thread, ...) resumes a coroutine whose wait ended. */
static int set_waker(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lc__lua_set_ref(L, &lc__lua_rt(L)->waker_ref, 1);
  return 0;
}

/* core.uncaught(err, traceback) -> exiting: an error raised in a coroutine
 * takes the path of any uncaught error (lc__lua_call's). */
static int uncaught(lua_State *L) {
  luaL_checkstring(L, 2);
  lua_pushboolean(L, lc__lua_report(lc__lua_rt(L), L, 1, 2));
  return 1;
}

int lc__lua_loop_end(lc_runtime *rt) {
  if (rt->process_ref == LUA_NOREF || rt->core.exiting)
    return 0;
  lc__lua_emit(rt, rt->process_ref, "beforeExit", 0, 0);
  return 1;
}

int lc__lua_exit_code(lc_runtime *rt) {
  lua_State *L = rt->L;
  int code = 0;

  if (lc__lua_emit(rt, rt->process_ref, "exit", 0, 1) == 0) {
    code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  /* An uncaught error in an exit listener decides the code. */
  return rt->core.exiting ? rt->core.exit_code : code;
}

void lc__lua_exit_event(lc_runtime *rt, int code) {
  lua_State *L = rt->L;
  int base = lua_gettop(L);

  if (rt->process_ref == LUA_NOREF)
    return;
  /* Not through lc__lua_call: an error here is only logged. */
  lc__lua_push_ref(L, rt->dispatcher_ref);
  lc__lua_push_ref(L, rt->process_ref);
  lua_pushliteral(L, "exit");
  lua_pushinteger(L, code);
  if (lua_pcall(L, 3, 0, 0) != 0 && !lc__lua_is_exit_sentinel(L, -1))
    lc__log(LC__LOG_ERROR, "error in an exit listener: %s",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  lua_settop(L, base);
}

int lc__open_core(lua_State *L) {
  static const luaL_Reg fns[] = {{"set_dispatcher", set_dispatcher},
                                 {"set_process", set_process},
                                 {"set_waker", set_waker},
                                 {"uncaught", uncaught},
                                 {NULL, NULL}};
  lc_runtime *rt = lc__lua_runtime_of(L);

  lua_newtable(L);
  lc__lua_register(L, rt, fns);
  /* What process.exit() raises to unwind: coroutines pass it on. */
  lc__lua_push_exit_sentinel(L);
  lua_setfield(L, -2, "EXIT");
  lc__core_process(L, rt);
  lc__core_timers(L, rt);
  lc__core_signals(L, rt);
  lc__core_message(L, rt);
  lc__core_cluster(L, rt);
  lc__core_bus(L, rt);
  lc__core_net(L, rt);
  lc__core_http(L, rt);
  lc__core_dns(L, rt);
  lc__core_tcp_client(L, rt);
  lc__core_http_client(L, rt);
  lc__core_cosocket(L, rt);
  lc__core_tls(L, rt);
  return 1;
}
