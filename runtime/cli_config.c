/*
 * cli_config.c - `luacluster start CONF` and `luacluster check CONF`: the
 * config file is Lua, run in a plain Lua state of its own. It returns a
 * table, or sets globals, with these keys (the flags' names):
 *
 *   app = "server.lua"            the app script (beside the config file
 *                                 unless absolute); required
 *   args = {"--port", "8080"}     its arguments
 *   workers = 4 | "max"           managed mode (absent: script mode)
 *   sched = "rr"                  rr, none, reuseport, sticky
 *   kill_timeout = 5000, listen_timeout = 10000, heartbeat_timeout = 0 (ms)
 *   wait_ready = true
 *   max_memory = "200M", max_message_size = "64M"   (or bytes)
 *   env = {NAME = "value"}        set for the master and every worker
 *   control = "/run/app.sock"     the control socket
 *   metrics = "127.0.0.1:9100"    the Prometheus endpoint
 *   shared = {cache = "64m"}      shared dicts (--shared cache=64m)
 *   redis = "redis://host:6379"   several hosts as one cluster (--redis)
 *   cluster_name = "shop"         its name (--cluster-name)
 *
 * Every key is checked, and a wrong one is named with what it wants. Only
 * the public API is used here.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "cli_config.h"

struct lc_cli_config {
  lua_State *L; /* holds the strings opts points to */
  char *path;
  char *app;
  char **argv;
  int argc;
  const lc_options *opts;
  lc_cli_shared_list shared;
  char summary[512];
};

typedef int (*key_fn)(lc_cli_config *cfg, lc_options *opts, char *why,
                      size_t n);

/* The value being checked is at the top of cfg->L's stack. */
static const char *string_value(lc_cli_config *cfg) {
  return lua_type(cfg->L, -1) == LUA_TSTRING ? lua_tostring(cfg->L, -1) : NULL;
}

static const char *describe(lua_State *L) {
  static char out[96];

  if (lua_type(L, -1) == LUA_TSTRING)
    snprintf(out, sizeof(out), "\"%.60s\"", lua_tostring(L, -1));
  else if (lua_type(L, -1) == LUA_TNUMBER)
    snprintf(out, sizeof(out), "%.14g", lua_tonumber(L, -1));
  else
    snprintf(out, sizeof(out), "a %s", luaL_typename(L, -1));
  return out;
}

/* A whole number in [min, max]. */
static int whole(lua_State *L, double min, double max, double *out) {
  double v;

  if (lua_type(L, -1) != LUA_TNUMBER)
    return -1;
  v = lua_tonumber(L, -1);
  if (v != (double)(long long)v || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

/* Bytes: a whole number, or a string like "200M" (k, M, G). */
static int size_value(lua_State *L, unsigned long long *out) {
  const char *s;
  char *end;
  double v;

  if (whole(L, 0, 1e15, &v) == 0) {
    *out = (unsigned long long)v;
    return 0;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    return -1;
  s = lua_tostring(L, -1);
  if (!isdigit((unsigned char)s[0]))
    return -1;
  *out = strtoull(s, &end, 10);
  switch (*end) {
  case 'k': case 'K': *out <<= 10; end++; break;
  case 'm': case 'M': *out <<= 20; end++; break;
  case 'g': case 'G': *out <<= 30; end++; break;
  default: break;
  }
  return *end == '\0' ? 0 : -1;
}

static int key_app(lc_cli_config *cfg, lc_options *opts, char *why,
                   size_t n) {
  const char *app = string_value(cfg);
  const char *slash = strrchr(cfg->path, '/');
  size_t len;

  if (app == NULL || app[0] == '\0') {
    snprintf(why, n, "wants the path of the app script, got %s",
             describe(cfg->L));
    return -1;
  }
  free(cfg->app);
  if (app[0] == '/' || slash == NULL) {
    cfg->app = strdup(app);
  } else {
    len = (size_t)(slash - cfg->path) + 1 + strlen(app) + 1;
    cfg->app = malloc(len);
    if (cfg->app != NULL)
      snprintf(cfg->app, len, "%.*s/%s", (int)(slash - cfg->path), cfg->path,
               app);
  }
  opts->script = cfg->app;
  return cfg->app != NULL ? 0 : -1;
}

static int key_args(lc_cli_config *cfg, lc_options *opts, char *why,
                    size_t n) {
  lua_State *L = cfg->L;
  int i, count;

  if (lua_type(L, -1) != LUA_TTABLE) {
    snprintf(why, n, "wants a list of strings, got %s", describe(L));
    return -1;
  }
  count = (int)lua_objlen(L, -1);
  free(cfg->argv);
  cfg->argv = calloc((size_t)count + 1, sizeof(char *));
  if (cfg->argv == NULL)
    return -1;
  for (i = 1; i <= count; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
      snprintf(why, n, "[%d] wants a string, got %s", i, describe(L));
      lua_pop(L, 1);
      return -1;
    }
    /* The string stays in the table, which the registry holds. */
    lua_tostring(L, -1);
    lua_rawseti(L, -2, i);
    lua_rawgeti(L, -1, i);
    cfg->argv[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  cfg->argc = count;
  opts->argc = count;
  opts->argv = cfg->argv;
  return 0;
}

static int key_workers(lc_cli_config *cfg, lc_options *opts, char *why,
                       size_t n) {
  const char *s = string_value(cfg);
  double v;

  if (s != NULL && strcmp(s, "max") == 0) {
    opts->workers = LC_WORKERS_MAX;
    return 0;
  }
  if (whole(cfg->L, 1, 4096, &v) != 0) {
    snprintf(why, n, "wants a count from 1 to 4096 or \"max\", got %s",
             describe(cfg->L));
    return -1;
  }
  opts->workers = (int)v;
  return 0;
}

static int key_sched(lc_cli_config *cfg, lc_options *opts, char *why,
                     size_t n) {
  static const char *names[] = {"rr", "none", "reuseport", "sticky"};
  const char *s = string_value(cfg);
  size_t i;

  for (i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcmp(s, names[i]) == 0) {
      opts->sched_policy = s;
      return 0;
    }
  }
  snprintf(why, n, "wants rr, none, reuseport or sticky, got %s",
           describe(cfg->L));
  return -1;
}

static int ms_value(lc_cli_config *cfg, unsigned *out, char *why, size_t n) {
  double v;

  if (whole(cfg->L, 0, 86400000.0, &v) != 0) {
    snprintf(why, n, "wants milliseconds (a whole number up to a day), got "
             "%s", describe(cfg->L));
    return -1;
  }
  *out = (unsigned)v;
  return 0;
}

static int key_kill_timeout(lc_cli_config *cfg, lc_options *opts, char *why,
                            size_t n) {
  return ms_value(cfg, &opts->kill_timeout_ms, why, n);
}

static int key_listen_timeout(lc_cli_config *cfg, lc_options *opts,
                              char *why, size_t n) {
  return ms_value(cfg, &opts->listen_timeout_ms, why, n);
}

static int key_heartbeat_timeout(lc_cli_config *cfg, lc_options *opts,
                                 char *why, size_t n) {
  return ms_value(cfg, &opts->heartbeat_timeout_ms, why, n);
}

static int key_min_uptime(lc_cli_config *cfg, lc_options *opts, char *why,
                          size_t n) {
  return ms_value(cfg, &opts->min_uptime_ms, why, n);
}

static int key_max_restarts(lc_cli_config *cfg, lc_options *opts, char *why,
                            size_t n) {
  double v;

  if (whole(cfg->L, 0, 1000000.0, &v) != 0) {
    snprintf(why, n, "wants a count (0: restart for ever), got %s",
             describe(cfg->L));
    return -1;
  }
  opts->max_restarts = (unsigned)v;
  return 0;
}

static int key_log(lc_cli_config *cfg, lc_options *opts, char *why,
                   size_t n) {
  const char *s = string_value(cfg);

  if (s == NULL || s[0] == '\0') {
    snprintf(why, n, "wants a file path, got %s", describe(cfg->L));
    return -1;
  }
  opts->log_path = s;
  return 0;
}

static int key_wait_ready(lc_cli_config *cfg, lc_options *opts, char *why,
                          size_t n) {
  if (lua_type(cfg->L, -1) != LUA_TBOOLEAN) {
    snprintf(why, n, "wants true or false, got %s", describe(cfg->L));
    return -1;
  }
  opts->wait_ready = lua_toboolean(cfg->L, -1);
  return 0;
}

static int size_key(lc_cli_config *cfg, size_t *out, char *why, size_t n) {
  unsigned long long v;

  if (size_value(cfg->L, &v) != 0) {
    snprintf(why, n, "wants a size in bytes (a number, or \"200M\", "
             "\"1G\"), got %s", describe(cfg->L));
    return -1;
  }
  *out = (size_t)v;
  return 0;
}

static int key_max_memory(lc_cli_config *cfg, lc_options *opts, char *why,
                          size_t n) {
  return size_key(cfg, &opts->max_memory, why, n);
}

static int key_max_message_size(lc_cli_config *cfg, lc_options *opts,
                                 char *why, size_t n) {
  return size_key(cfg, &opts->max_message_size, why, n);
}

static int valid_env_name(const char *s) {
  if (!isalpha((unsigned char)*s) && *s != '_')
    return 0;
  while (*++s)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return 0;
  return 1;
}

static int key_env(lc_cli_config *cfg, lc_options *opts, char *why,
                   size_t n) {
  lua_State *L = cfg->L;
  int t;

  (void)opts;
  if (lua_type(L, -1) != LUA_TTABLE) {
    snprintf(why, n, "wants a table of NAME = value, got %s", describe(L));
    return -1;
  }
  /* Checked first, set after: a bad entry sets nothing. */
  for (int pass = 0; pass < 2; pass++) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      t = lua_type(L, -1);
      if (lua_type(L, -2) != LUA_TSTRING || !valid_env_name(lua_tostring(L, -2))) {
        lua_pop(L, 1);
        snprintf(why, n, "wants variable names as keys, got %s", describe(L));
        lua_pop(L, 1);
        return -1;
      }
      if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN) {
        snprintf(why, n, "%s wants a string, number or boolean, got %s",
                 lua_tostring(L, -2), describe(L));
        lua_pop(L, 2);
        return -1;
      }
      if (pass == 1)
        setenv(lua_tostring(L, -2),
               t == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "true" : "false")
                                 : lua_tostring(L, -1), 1);
      lua_pop(L, 1);
    }
  }
  return 0;
}

static int key_control(lc_cli_config *cfg, lc_options *opts, char *why,
                       size_t n) {
  const char *s = string_value(cfg);

  if (s == NULL || s[0] == '\0' || strlen(s) >= 108) {
    snprintf(why, n, "wants a socket path (under 108 bytes), got %s",
             describe(cfg->L));
    return -1;
  }
  opts->control_path = s;
  return 0;
}

static int key_metrics(lc_cli_config *cfg, lc_options *opts, char *why,
                       size_t n) {
  const char *s = string_value(cfg);
  const char *colon = s ? strrchr(s, ':') : NULL;
  char *end;
  long port = colon ? strtol(colon + 1, &end, 10) : -1;

  if (colon == NULL || colon == s || *end != '\0' || port < 0 ||
      port > 65535) {
    snprintf(why, n, "wants \"ADDRESS:PORT\" (\"127.0.0.1:9100\"), got %s",
             describe(cfg->L));
    return -1;
  }
  opts->metrics = s;
  return 0;
}

/* Shared dicts ------------------------------------------------------------- */

/* lc_shared_dict()'s rules (luacluster.h). */
static int valid_dict_name(const char *s) {
  size_t i, len = strlen(s);

  if (len == 0 || len > 64 || isdigit((unsigned char)s[0]) || s[0] == '-' ||
      strcmp(s, "define") == 0)
    return 0;
  for (i = 0; i < len; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
      return 0;
  return 1;
}

int lc_cli_shared_check(const char *name, unsigned long long size, char *why,
                        size_t n) {
  if (!valid_dict_name(name)) {
    snprintf(why, n, "bad name \"%.70s\" (1 to 64 letters, digits, _ or -, "
             "not starting with a digit or -, not \"define\")", name);
    return -1;
  }
  if (size < LC_SHARED_DICT_MIN || size > LC_SHARED_DICT_MAX) {
    snprintf(why, n, "%s: a shared dict's size is from 32k to 128g, got %llu "
             "bytes", name, size);
    return -1;
  }
  return 0;
}

/* Adds (or resizes) name in list. */
static int shared_add(lc_cli_shared_list *list, const char *name, size_t size,
                      char *why, size_t n) {
  int i;

  for (i = 0; i < list->n && strcmp(list->dicts[i].name, name) != 0; i++)
    ;
  if (i == LC_CLI_SHARED_MAX) {
    snprintf(why, n, "more than %d shared dicts", LC_CLI_SHARED_MAX);
    return -1;
  }
  snprintf(list->dicts[i].name, sizeof(list->dicts[i].name), "%.64s", name);
  list->dicts[i].size = size;
  if (i == list->n)
    list->n++;
  return 0;
}

/* "64m", "1g", "65536": bytes, or -1. */
static int parse_size(const char *s, unsigned long long *out) {
  char *end;

  if (!isdigit((unsigned char)s[0]))
    return -1;
  errno = 0;
  *out = strtoull(s, &end, 10);
  switch (*end) {
  case 'k': case 'K': *out <<= 10; end++; break;
  case 'm': case 'M': *out <<= 20; end++; break;
  case 'g': case 'G': *out <<= 30; end++; break;
  default: break;
  }
  return *end == '\0' && errno == 0 ? 0 : -1;
}

int lc_cli_shared_parse(const char *arg, lc_cli_shared_list *list, char *why,
                        size_t n) {
  const char *eq = arg != NULL ? strchr(arg, '=') : NULL;
  unsigned long long size;
  char name[80];

  if (eq == NULL || (size_t)(eq - arg) >= sizeof(name) ||
      parse_size(eq + 1, &size) != 0) {
    snprintf(why, n, "wants NAME=SIZE (cache=64m; k, m or g), got \"%.80s\"",
             arg != NULL ? arg : "");
    return -1;
  }
  snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
  if (lc_cli_shared_check(name, size, why, n) != 0)
    return -1;
  return shared_add(list, name, (size_t)size, why, n);
}

static int key_shared(lc_cli_config *cfg, lc_options *opts, char *why,
                      size_t n) {
  lua_State *L = cfg->L;
  unsigned long long size;
  const char *name;

  (void)opts;
  if (lua_type(L, -1) != LUA_TTABLE) {
    snprintf(why, n, "wants a table of NAME = SIZE (cache = \"64m\"), got %s",
             describe(L));
    return -1;
  }
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 1);
      snprintf(why, n, "wants dict names as keys, got %s", describe(L));
      lua_pop(L, 1);
      return -1;
    }
    name = lua_tostring(L, -2);
    if (size_value(L, &size) != 0) {
      snprintf(why, n, "%s: wants a size (bytes, or \"64m\", \"1g\"), got %s",
               name, describe(L));
      lua_pop(L, 2);
      return -1;
    }
    if (lc_cli_shared_check(name, size, why, n) != 0 ||
        shared_add(&cfg->shared, name, (size_t)size, why, n) != 0) {
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

const lc_cli_shared_list *lc_cli_config_shared(const lc_cli_config *cfg) {
  return &cfg->shared;
}

/* redis and cluster_name: strings lc_options_check() takes. */
static int key_cluster_string(lc_cli_config *cfg, lc_options *opts,
                              const char **field, char *why, size_t n) {
  const char *s = string_value(cfg);
  char sub[512];
  const char *colon;

  if (s == NULL || s[0] == '\0') {
    snprintf(why, n, "wants a string, got %s", describe(cfg->L));
    return -1;
  }
  *field = s;
  if (lc_options_check(opts, sub, sizeof(sub)) != 0) {
    colon = strstr(sub, ": ");
    snprintf(why, n, "%s", colon ? colon + 2 : sub);
    return -1;
  }
  return 0;
}

static int key_redis(lc_cli_config *cfg, lc_options *opts, char *why,
                     size_t n) {
  return key_cluster_string(cfg, opts, &opts->redis_url, why, n);
}

static int key_cluster_name(lc_cli_config *cfg, lc_options *opts, char *why,
                            size_t n) {
  return key_cluster_string(cfg, opts, &opts->cluster_name, why, n);
}

static const struct {
  const char *name;
  key_fn fn;
} keys[] = {
    {"app", key_app},
    {"args", key_args},
    {"workers", key_workers},
    {"sched", key_sched},
    {"kill_timeout", key_kill_timeout},
    {"listen_timeout", key_listen_timeout},
    {"heartbeat_timeout", key_heartbeat_timeout},
    {"min_uptime", key_min_uptime},
    {"max_restarts", key_max_restarts},
    {"log", key_log},
    {"wait_ready", key_wait_ready},
    {"max_memory", key_max_memory},
    {"max_message_size", key_max_message_size},
    {"env", key_env},
    {"control", key_control},
    {"metrics", key_metrics},
    {"shared", key_shared},
    {"redis", key_redis},
    {"cluster_name", key_cluster_name},
};

/* Checks the table at the top of the stack into opts. */
static int read_table(lc_cli_config *cfg, lc_options *opts, char *err,
                      size_t errsize) {
  lua_State *L = cfg->L;
  char why[256];
  size_t i;

  /* app first: env and the rest may be wrong, but say the important one. */
  lua_getfield(L, -1, "app");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    snprintf(err, errsize, "%s: app: missing (the app script to run)",
             cfg->path);
    return -1;
  }
  lua_pop(L, 1);
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    lua_getfield(L, -1, keys[i].name);
    if (!lua_isnil(L, -1) && keys[i].fn(cfg, opts, why, sizeof(why)) != 0) {
      snprintf(err, errsize, "%s: %s: %s", cfg->path, keys[i].name, why);
      lua_pop(L, 1);
      return -1;
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    for (i = 0; lua_type(L, -1) == LUA_TSTRING &&
                i < sizeof(keys) / sizeof(keys[0]); i++)
      if (strcmp(lua_tostring(L, -1), keys[i].name) == 0)
        break;
    if (lua_type(L, -1) != LUA_TSTRING || i == sizeof(keys) / sizeof(keys[0])) {
      snprintf(err, errsize, "%s: unknown key %s (known: app, args, "
               "workers, sched, kill_timeout, listen_timeout, "
               "heartbeat_timeout, wait_ready, max_memory, max_message_size, "
               "env, control, metrics, shared, redis, cluster_name)", cfg->path,
               describe(L));
      lua_pop(L, 1);
      return -1;
    }
  }
  return 0;
}

/* Runs the file: its returned table, or the globals it set. */
static int run_file(lc_cli_config *cfg, char *err, size_t errsize) {
  lua_State *L = cfg->L;

  if (luaL_loadfile(L, cfg->path) != 0) {
    snprintf(err, errsize, "%s", lua_tostring(L, -1));
    return -1;
  }
  /* Its globals go to a table of their own (reading _G's still works). */
  lua_newtable(L);
  lua_newtable(L);
  lua_pushvalue(L, LUA_GLOBALSINDEX);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_insert(L, -3); /* env, chunk, env */
  lua_setfenv(L, -2);
  if (lua_pcall(L, 0, 1, 0) != 0) {
    snprintf(err, errsize, "%s", lua_tostring(L, -1));
    return -1;
  }
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_remove(L, -2);
  } else if (lua_isnil(L, -1)) {
    lua_pop(L, 1); /* the globals it set */
    lua_pushnil(L);
    lua_setmetatable(L, -2);
  } else {
    snprintf(err, errsize, "%s: wants a table of settings (return { app = "
             "... }), got %s", cfg->path, describe(L));
    return -1;
  }
  /* Keep it (and so every string opts points to) until the state goes. */
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "luacluster.config");
  return 0;
}

lc_cli_config *lc_cli_config_load(const char *path, lc_options *opts,
                                  char *err, size_t errsize) {
  lc_cli_config *cfg = calloc(1, sizeof(*cfg));

  if (cfg == NULL || (cfg->path = strdup(path)) == NULL ||
      (cfg->L = luaL_newstate()) == NULL) {
    snprintf(err, errsize, "%s: out of memory", path);
    lc_cli_config_free(cfg);
    return NULL;
  }
  luaL_openlibs(cfg->L);
  cfg->opts = opts;
  if (access(path, R_OK) != 0) {
    snprintf(err, errsize, "cannot read %s: %s", path, strerror(errno));
    lc_cli_config_free(cfg);
    return NULL;
  }
  if (run_file(cfg, err, errsize) != 0 ||
      read_table(cfg, opts, err, errsize) != 0) {
    lc_cli_config_free(cfg);
    return NULL;
  }
  return cfg;
}

int lc_cli_config_check_app(lc_cli_config *cfg, char *err, size_t errsize) {
  if (access(cfg->app, R_OK) != 0) {
    snprintf(err, errsize, "%s: app: cannot read %s: %s", cfg->path,
             cfg->app, strerror(errno));
    return -1;
  }
  if (luaL_loadfile(cfg->L, cfg->app) != 0) {
    snprintf(err, errsize, "%s: app: %s", cfg->path,
             lua_tostring(cfg->L, -1));
    lua_pop(cfg->L, 1);
    return -1;
  }
  lua_pop(cfg->L, 1);
  return 0;
}

const char *lc_cli_config_summary(lc_cli_config *cfg) {
  const lc_options *o = cfg->opts;
  char workers[32];
  size_t len;
  int i;

  if (o->workers == LC_WORKERS_MAX)
    snprintf(workers, sizeof(workers), "one worker per CPU");
  else if (o->workers > 0)
    snprintf(workers, sizeof(workers), "%d worker(s)", o->workers);
  else
    snprintf(workers, sizeof(workers), "script mode");
  snprintf(cfg->summary, sizeof(cfg->summary), "app %s, %s%s%s%s%s",
           cfg->app, workers, o->sched_policy ? ", sched " : "",
           o->sched_policy ? o->sched_policy : "",
           o->metrics ? ", metrics on " : "", o->metrics ? o->metrics : "");
  for (i = 0; i < cfg->shared.n; i++) {
    len = strlen(cfg->summary);
    snprintf(cfg->summary + len, sizeof(cfg->summary) - len, "%s%s",
             i ? ", " : ", shared dicts ", cfg->shared.dicts[i].name);
  }
  return cfg->summary;
}

void lc_cli_config_free(lc_cli_config *cfg) {
  if (cfg == NULL)
    return;
  if (cfg->L != NULL)
    lua_close(cfg->L);
  free(cfg->argv);
  free(cfg->app);
  free(cfg->path);
  free(cfg);
}
