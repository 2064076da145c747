/*
 * lua_process.c - process and os primitives for lua/process.lua and boot:
 * pid, environment, clocks, memory, CPUs, exit, runtime log lines.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua_binding.h"

extern char **environ;

static int core_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_os_getpid());
  return 1;
}

static int core_ppid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_os_getppid());
  return 1;
}

/* core.environ() -> {NAME = value} */
static int core_environ(lua_State *L) {
  char **e;
  const char *eq;

  lua_newtable(L);
  for (e = environ; *e != NULL; e++) {
    eq = strchr(*e, '=');
    if (eq == NULL)
      continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  return 1;
}

static int core_cwd(lua_State *L) {
  char buf[4096];
  size_t len = sizeof(buf);
  int err = uv_cwd(buf, &len);

  if (err)
    return luaL_error(L, "cwd: %s", uv_strerror(err));
  lua_pushlstring(L, buf, len);
  return 1;
}

static int core_chdir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  int err = uv_chdir(dir);

  if (err)
    return luaL_error(L, "chdir %s: %s", dir, uv_strerror(err));
  return 0;
}

/* core.hrtime() -> seconds, nanoseconds (monotonic) */
static int core_hrtime(lua_State *L) {
  uint64_t ns = uv_hrtime();

  lua_pushnumber(L, (lua_Number)(ns / 1000000000u));
  lua_pushnumber(L, (lua_Number)(ns % 1000000000u));
  return 2;
}

/* core.uptime() -> seconds since the runtime started */
static int core_uptime(lua_State *L) {
  lua_pushnumber(L, (lua_Number)(uv_hrtime() - lc__lua_rt(L)->core.start_ns) / 1e9);
  return 1;
}

/* core.now() -> the loop's millisecond clock */
static int core_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_now(&lc__lua_rt(L)->core.loop));
  return 1;
}

/* core.rss() -> resident set size in bytes */
static int core_rss(lua_State *L) {
  size_t rss = 0;

  uv_resident_set_memory(&rss);
  lua_pushnumber(L, (lua_Number)rss);
  return 1;
}

/* core.exit(code): stops the loop and unwinds the Lua stack. */
static int core_exit(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 0);

  lc__core_exit(&lc__lua_rt(L)->core, code);
  lc__lua_push_exit_sentinel(L);
  return lua_error(L);
}

/* core.cpus() -> { {model=, speed=, times={user=,nice=,sys=,idle=,irq=}} } */
static int core_cpus(lua_State *L) {
  uv_cpu_info_t *cpus;
  int count, i, err;

  err = uv_cpu_info(&cpus, &count);
  if (err || count <= 0) {
    /* Containers may hide /proc/cpuinfo: still say how many there are. */
    count = (int)uv_available_parallelism();
    lua_createtable(L, count, 0);
    for (i = 0; i < count; i++) {
      lua_createtable(L, 0, 2);
      lua_pushliteral(L, "unknown");
      lua_setfield(L, -2, "model");
      lua_pushinteger(L, 0);
      lua_setfield(L, -2, "speed");
      lua_rawseti(L, -2, i + 1);
    }
    return 1;
  }
  lua_createtable(L, count, 0);
  for (i = 0; i < count; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, cpus[i].model ? cpus[i].model : "unknown");
    lua_setfield(L, -2, "model");
    lua_pushinteger(L, cpus[i].speed);
    lua_setfield(L, -2, "speed");
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, (lua_Number)cpus[i].cpu_times.user);
    lua_setfield(L, -2, "user");
    lua_pushnumber(L, (lua_Number)cpus[i].cpu_times.nice);
    lua_setfield(L, -2, "nice");
    lua_pushnumber(L, (lua_Number)cpus[i].cpu_times.sys);
    lua_setfield(L, -2, "sys");
    lua_pushnumber(L, (lua_Number)cpus[i].cpu_times.idle);
    lua_setfield(L, -2, "idle");
    lua_pushnumber(L, (lua_Number)cpus[i].cpu_times.irq);
    lua_setfield(L, -2, "irq");
    lua_setfield(L, -2, "times");
    lua_rawseti(L, -2, i + 1);
  }
  uv_free_cpu_info(cpus, count);
  return 1;
}

static int core_hostname(lua_State *L) {
  char buf[256];
  size_t len = sizeof(buf);
  int err = uv_os_gethostname(buf, &len);

  if (err)
    return luaL_error(L, "hostname: %s", uv_strerror(err));
  lua_pushlstring(L, buf, len);
  return 1;
}

/* core.log(level, message): a runtime-format log line. */
static int core_log(lua_State *L) {
  int level = lc__log_level_from_name(luaL_checkstring(L, 1));

  lc__log(level < 0 ? LC__LOG_INFO : level, "%s", luaL_checkstring(L, 2));
  return 0;
}

void lc__core_process(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg fns[] = {
      {"pid", core_pid},       {"ppid", core_ppid},
      {"environ", core_environ}, {"cwd", core_cwd},
      {"chdir", core_chdir},   {"hrtime", core_hrtime},
      {"uptime", core_uptime}, {"now", core_now},
      {"rss", core_rss},       {"exit", core_exit},
      {"cpus", core_cpus},     {"hostname", core_hostname},
      {"log", core_log},
      {NULL, NULL}};
  int i;

  lc__lua_register(L, rt, fns);

  lua_pushstring(L, rt->core.role == LC__ROLE_WORKER ? "worker" : "master");
  lua_setfield(L, -2, "role");
  lua_pushinteger(L, rt->core.worker_id);
  lua_setfield(L, -2, "worker_id");
  lua_pushstring(L, rt->exe_path);
  lua_setfield(L, -2, "exe_path");
  lua_pushstring(L, rt->script);
  lua_setfield(L, -2, "script");
  lua_createtable(L, rt->nargs, 0);
  for (i = 0; i < rt->nargs; i++) {
    lua_pushstring(L, rt->args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "args");
  lua_pushstring(L, LC_VERSION_STRING);
  lua_setfield(L, -2, "version");
}
