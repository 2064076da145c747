/*
 * signals.c - signal names, and process.on("SIGxxx") for Lua.
 *
 * A uv_signal_t only records the signal; the Lua handler runs from the loop.
 * Watchers are unref'd: listening for a signal does not keep a process
 * alive, as in Node.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct {
  const char *name;
  int num;
} signal_names[] = {
    {"SIGHUP", SIGHUP},     {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT},
    {"SIGILL", SIGILL},     {"SIGTRAP", SIGTRAP},   {"SIGABRT", SIGABRT},
    {"SIGBUS", SIGBUS},     {"SIGFPE", SIGFPE},     {"SIGKILL", SIGKILL},
    {"SIGUSR1", SIGUSR1},   {"SIGSEGV", SIGSEGV},   {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE},   {"SIGALRM", SIGALRM},   {"SIGTERM", SIGTERM},
    {"SIGCHLD", SIGCHLD},   {"SIGCONT", SIGCONT},   {"SIGSTOP", SIGSTOP},
    {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},   {"SIGTTOU", SIGTTOU},
    {"SIGURG", SIGURG},     {"SIGXCPU", SIGXCPU},   {"SIGXFSZ", SIGXFSZ},
    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH},
    {"SIGIO", SIGIO},       {"SIGSYS", SIGSYS},
};

int lc__signal_number(const char *name) {
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(signal_names); i++)
    if (strcmp(signal_names[i].name, name) == 0)
      return signal_names[i].num;
  return 0;
}

const char *lc__signal_name(int signum) {
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(signal_names); i++)
    if (signal_names[i].num == signum)
      return signal_names[i].name;
  return "SIGUNKNOWN";
}

/* Lua watchers ----------------------------------------------------------- */

typedef struct lc__sigwatch {
  lc__owner owner;
  uv_signal_t signal;
} lc__sigwatch;

static lc__sigwatch *watches[65];
static int handler_ref = LUA_NOREF;

static void sigwatch_on_close(uv_handle_t *handle) {
  lc__sigwatch *w = handle->data;

  if (watches[w->signal.signum] == w)
    watches[w->signal.signum] = NULL;
  free(w);
}

static void sigwatch_close(uv_handle_t *handle) {
  uv_close(handle, sigwatch_on_close);
}

static void on_signal(uv_signal_t *handle, int signum) {
  lua_State *L = lc__rt->L;

  (void)handle;
  lc__lua_push_ref(L, handler_ref);
  lua_pushstring(L, lc__signal_name(signum));
  lc__lua_call(L, 1, 0);
}

static int check_signal(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int signum = lc__signal_number(name);

  if (signum <= 0 || signum >= (int)LC__ARRAY_SIZE(watches))
    return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
  if (signum == SIGKILL || signum == SIGSTOP)
    return luaL_argerror(L, idx, lua_pushfstring(L, "%s cannot be caught", name));
  return signum;
}

/* core.signal_watch(name): the handler gets name on each delivery. */
static int signal_watch(lua_State *L) {
  int signum = check_signal(L, 1);
  lc__sigwatch *w = watches[signum];
  int err;

  if (w != NULL)
    return 0;
  w = calloc(1, sizeof(*w));
  if (w == NULL)
    return luaL_error(L, "out of memory");
  w->owner.close = sigwatch_close;
  uv_signal_init(&lc__rt->loop, &w->signal);
  w->signal.data = w;
  err = uv_signal_start(&w->signal, on_signal, signum);
  if (err) {
    uv_close((uv_handle_t *)&w->signal, sigwatch_on_close);
    return luaL_error(L, "cannot watch %s: %s", lua_tostring(L, 1),
                      uv_strerror(err));
  }
  uv_unref((uv_handle_t *)&w->signal);
  watches[signum] = w;
  return 0;
}

/* core.signal_unwatch(name): back to the default action. */
static int signal_unwatch(lua_State *L) {
  int signum = check_signal(L, 1);
  lc__sigwatch *w = watches[signum];

  if (w != NULL) {
    watches[signum] = NULL;
    uv_close((uv_handle_t *)&w->signal, sigwatch_on_close);
  }
  return 0;
}

static int set_signal_handler(lua_State *L) {
  return lc__lua_set_handler(L, &handler_ref);
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

void lc__core_signals(lua_State *L) {
  static const luaL_Reg fns[] = {{"signal_watch", signal_watch},
                                 {"signal_unwatch", signal_unwatch},
                                 {"set_signal_handler", set_signal_handler},
                                 {"kill", core_kill},
                                 {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
