/*
 * An embedding example: a C program that runs a luacluster app, gives
 * every Lua state its own C module, "greeter", and declares a shared dict,
 * require("shared").greetings, that the master and its workers share.
 *
 *   build/embed_example apps/embed/app.lua
 *
 * Workers are new processes of this same program, which preloads the module
 * before lc_run(): so require("greeter") works in the master and in every
 * worker.
 */
#include <stdio.h>
#include <lauxlib.h>

#include "luacluster.h"

/* greeter.hello(name) -> "hello, name (from C)" */
static int greeter_hello(lua_State *L) {
  const char *name = luaL_optstring(L, 1, "world");

  lua_pushfstring(L, "hello, %s (from C)", name);
  return 1;
}

static int luaopen_greeter(lua_State *L) {
  static const luaL_Reg fns[] = {{"hello", greeter_hello}, {NULL, NULL}};

  lua_newtable(L);
  luaL_register(L, NULL, fns);
  lua_pushliteral(L, "embed_example");
  lua_setfield(L, -2, "host");
  return 1;
}

int main(int argc, char **argv) {
  lc_options opts;
  lc_runtime *rt;
  int err, code;

  if (argc < 2) {
    fprintf(stderr, "usage: %s app.lua [args...]\n", argv[0]);
    return 1;
  }
  lc_options_init(&opts);
  opts.script = argv[1];
  opts.argc = argc - 2;
  opts.argv = argv + 2;
  err = lc_new(&rt, &opts);
  if (err) {
    fprintf(stderr, "embed_example: %s\n", lc_strerror(err));
    return 1;
  }
  lc_preload(rt, "greeter", luaopen_greeter);
  lc_shared_dict(rt, "greetings", 1 << 20);
  code = lc_run(rt);
  lc_free(rt);
  return code;
}
