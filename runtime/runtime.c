/*
 * runtime.c - the public API (luacluster.h): options, the runtime object,
 * and lc_run(), which picks this process's role and runs it:
 *
 *   worker   the environment names a channel descriptor: the master started
 *            us; run the app script (LUACLUSTER_EXEC) with cluster.isWorker;
 *   manager  workers > 0: the C supervisor keeps N workers, no Lua here;
 *   master   script mode: the app runs here and forks workers itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_redis.h"
#include "control.h"
#include "dispatch.h"
#include "redis_url.h"
#include "lua_binding.h"
#include "manager.h"
#include "sd_notify.h"
#include "shared_dicts.h"
#include "supervisor.h"
#include "worker_link.h"

void lc_options_init(lc_options *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->max_message_size = 64 * 1024 * 1024;
  opts->kill_timeout_ms = 5000;
  opts->listen_timeout_ms = 10000;
  opts->min_uptime_ms = 1000;
  opts->max_restarts = 10;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int lc_new(lc_runtime **out, const lc_options *opts) {
  lc_runtime *rt;
  int i;

  *out = NULL;
  rt = calloc(1, sizeof(*rt));
  if (rt == NULL)
    return UV_ENOMEM;
  rt->opts = *opts;
  rt->opts.script = dup_or_null(opts->script);
  rt->opts.sched_policy = dup_or_null(opts->sched_policy);
  rt->opts.control_path = dup_or_null(opts->control_path);
  rt->opts.metrics = dup_or_null(opts->metrics);
  rt->opts.log_path = dup_or_null(opts->log_path);
  rt->opts.redis_url = dup_or_null(opts->redis_url);
  rt->opts.cluster_name = dup_or_null(opts->cluster_name);
  rt->opts.argv = NULL;
  rt->opts.argc = 0;
  if (rt->opts.max_message_size == 0)
    rt->opts.max_message_size = 64 * 1024 * 1024;
  if (rt->opts.max_message_size > UINT32_MAX)
    rt->opts.max_message_size = UINT32_MAX;
  rt->nargs = opts->argc > 0 ? opts->argc : 0;
  rt->args = calloc((size_t)rt->nargs + 1, sizeof(char *));
  if (rt->args == NULL) {
    lc_free(rt);
    return UV_ENOMEM;
  }
  for (i = 0; i < rt->nargs; i++)
    rt->args[i] = strdup(opts->argv[i]);
  rt->core.instance = -1;
  *out = rt;
  return 0;
}

int lc_preload(lc_runtime *rt, const char *name, lua_CFunction open) {
  lc__preload *p = calloc(1, sizeof(*p)), **tail;

  if (p == NULL || (p->name = strdup(name)) == NULL) {
    free(p);
    return UV_ENOMEM;
  }
  p->open = open;
  for (tail = &rt->preloads; *tail != NULL; tail = &(*tail)->next)
    ;
  *tail = p;
  return 0;
}

int lc_on_state(lc_runtime *rt, void (*fn)(lua_State *L, void *arg),
                void *arg) {
  lc__hook *h = calloc(1, sizeof(*h)), **tail;

  if (h == NULL)
    return UV_ENOMEM;
  h->fn = fn;
  h->arg = arg;
  for (tail = &rt->hooks; *tail != NULL; tail = &(*tail)->next)
    ;
  *tail = h;
  return 0;
}

int lc_shared_dict(lc_runtime *rt, const char *name, size_t size) {
  lc__dict_decl *d, **tail;

  if (name == NULL || !lc__dict_name_valid(name))
    return UV_EINVAL;
  if (size < LC_SHARED_DICT_MIN || size > LC_SHARED_DICT_MAX)
    return UV_ERANGE;
  for (tail = &rt->dicts; *tail != NULL; tail = &(*tail)->next) {
    if (strcmp((*tail)->name, name) == 0) {
      (*tail)->size = size;
      return 0;
    }
  }
  d = calloc(1, sizeof(*d));
  if (d == NULL || (d->name = strdup(name)) == NULL) {
    free(d);
    return UV_ENOMEM;
  }
  d->size = size;
  *tail = d;
  return 0;
}

static void free_args(lc_runtime *rt) {
  int i;

  if (rt->args != NULL)
    for (i = 0; i < rt->nargs; i++)
      free(rt->args[i]);
  free(rt->args);
  rt->args = NULL;
  rt->nargs = 0;
}

void lc_free(lc_runtime *rt) {
  lc__dict_decl *d;
  lc__preload *p;
  lc__hook *h;

  if (rt == NULL)
    return;
  while ((d = rt->dicts) != NULL) {
    rt->dicts = d->next;
    free(d->name);
    free(d);
  }
  while ((p = rt->preloads) != NULL) {
    rt->preloads = p->next;
    free(p->name);
    free(p);
  }
  while ((h = rt->hooks) != NULL) {
    rt->hooks = h->next;
    free(h);
  }
  free_args(rt);
  free((char *)rt->opts.script);
  free((char *)rt->opts.sched_policy);
  free((char *)rt->opts.control_path);
  free((char *)rt->opts.metrics);
  free((char *)rt->opts.log_path);
  free((char *)rt->opts.redis_url);
  free((char *)rt->opts.cluster_name);
  free(rt->cluster_name);
  free(rt->script);
  free(rt->script_dir);
  free(rt->exe_path);
  free(rt);
}

const char *lc_strerror(int err) { return uv_strerror(err); }
const char *lc_err_name(int err) { return uv_err_name(err); }
const char *lc_version(void) { return LC_VERSION_STRING; }

/* Setup -------------------------------------------------------------------- */

/* A worker's script arguments are the last LUACLUSTER_ARGC words of its
 * command line (the master put them there): whatever main() did with argv,
 * the worker sees what the master asked for. */
static int worker_args_from_cmdline(lc_runtime *rt, int argc) {
  char buf[65536];
  char *words[4096];
  ssize_t n;
  int fd, count = 0, i;
  char *p;

  fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return UV_ENOENT;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return UV_EIO;
  buf[n] = '\0';
  for (p = buf; p < buf + n && count < (int)LC__ARRAY_SIZE(words);
       p += strlen(p) + 1)
    words[count++] = p;
  if (argc > count)
    argc = count;
  free_args(rt);
  rt->args = calloc((size_t)argc + 1, sizeof(char *));
  if (rt->args == NULL)
    return UV_ENOMEM;
  for (i = 0; i < argc; i++)
    rt->args[i] = strdup(words[count - argc + i]);
  rt->nargs = argc;
  return 0;
}

static int resolve_script(lc_runtime *rt, const char *path) {
  char real[PATH_MAX], dir[PATH_MAX];

  if (path == NULL || path[0] == '\0') {
    fprintf(stderr, "luacluster: no app script given (try luacluster --help)\n");
    return -1;
  }
  if (realpath(path, real) == NULL) {
    fprintf(stderr, "luacluster: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (access(real, R_OK) != 0) {
    fprintf(stderr, "luacluster: cannot read %s: %s\n", path, strerror(errno));
    return -1;
  }
  snprintf(dir, sizeof(dir), "%s", real);
  rt->script = strdup(real);
  rt->script_dir = strdup(dirname(dir));
  return rt->script && rt->script_dir ? 0 : -1;
}

static int choose_sched(lc_runtime *rt) {
  const char *name = rt->opts.sched_policy;

  if (name == NULL)
    name = getenv(LC__ENV_SCHED);
  if (name == NULL || name[0] == '\0')
    name = "rr";
  rt->core.sched = lc__sched_from_name(name);
  if (rt->core.sched == 0) {
    fprintf(stderr,
            "luacluster: unknown scheduling policy '%s' (rr, none, reuseport "
            "or sticky)\n",
            name);
    return -1;
  }
  return 0;
}

int lc_options_check(const lc_options *opts, char *why, size_t n) {
  lc__redis_url url;
  char sub[300];

  if (opts->redis_url != NULL &&
      lc__redis_url_parse(opts->redis_url, &url, sub, sizeof(sub)) != 0) {
    snprintf(why, n, "--redis: %s", sub);
    return -1;
  }
  if (opts->cluster_name != NULL && !lc__cluster_name_ok(opts->cluster_name)) {
    snprintf(why, n, "--cluster-name: 1 to 64 letters, digits, '.', '_' or "
             "'-', got \"%.100s\"", opts->cluster_name);
    return -1;
  }
  return 0;
}

/* A master's cluster (--redis): the options checked, and the name it goes
 * by (the script's file name without ".lua" when none is given). */
static int choose_cluster(lc_runtime *rt) {
  char why[400], name[LC__CLUSTER_NAME_MAX + 1];
  const char *base;
  size_t len, i;

  if (lc_options_check(&rt->opts, why, sizeof(why)) != 0) {
    fprintf(stderr, "luacluster: %s\n", why);
    return -1;
  }
  if (rt->opts.redis_url == NULL)
    return 0;
  if (rt->opts.cluster_name != NULL) {
    rt->cluster_name = strdup(rt->opts.cluster_name);
    return rt->cluster_name != NULL ? 0 : -1;
  }
  base = strrchr(rt->script, '/');
  base = base ? base + 1 : rt->script;
  len = strlen(base);
  if (len > 4 && strcmp(base + len - 4, ".lua") == 0)
    len -= 4;
  if (len > LC__CLUSTER_NAME_MAX)
    len = LC__CLUSTER_NAME_MAX;
  for (i = 0; i < len; i++)
    name[i] = strchr(LC__CLUSTER_NAME_CHARS, base[i]) ? base[i] : '_';
  name[len] = '\0';
  rt->cluster_name = strdup(len > 0 ? name : "luacluster");
  return rt->cluster_name != NULL ? 0 : -1;
}

/* What the core needs from the options, the script and the environment. */
static void fill_core(lc_runtime *rt) {
  lc__core *core = &rt->core;

  core->opts.workers = rt->opts.workers;
  core->opts.max_message_size = rt->opts.max_message_size;
  core->opts.kill_timeout_ms = rt->opts.kill_timeout_ms;
  core->opts.listen_timeout_ms = rt->opts.listen_timeout_ms;
  core->opts.heartbeat_timeout_ms = rt->opts.heartbeat_timeout_ms;
  core->opts.max_memory = rt->opts.max_memory;
  core->opts.wait_ready = rt->opts.wait_ready;
  core->opts.control_path = rt->opts.control_path;
  core->opts.metrics = rt->opts.metrics;
  core->opts.log_path = rt->opts.log_path;
  core->opts.min_uptime_ms = rt->opts.min_uptime_ms;
  core->opts.max_restarts = rt->opts.max_restarts;
  core->opts.redis_url = rt->opts.redis_url;
  core->opts.cluster_name = rt->cluster_name;
  core->script = rt->script;
  core->args = rt->args;
  core->nargs = rt->nargs;
  core->exe_path = rt->exe_path;
}

static int setup(lc_runtime *rt) {
  const char *id = getenv(LC__ENV_WORKER_ID);
  const char *fd = getenv(LC__ENV_CHANNEL_FD);
  const char *script = rt->opts.script;
  char exe[PATH_MAX];
  size_t len = sizeof(exe);
  char who[32];
  int err;

  rt->core.role = LC__ROLE_MASTER;
  if (id != NULL && fd != NULL) {
    const char *instance = getenv(LC__ENV_INSTANCE);
    const char *argc = getenv(LC__ENV_ARGC);
    rt->core.role = LC__ROLE_WORKER;
    rt->core.worker_id = atoi(id);
    rt->core.instance = instance ? atoi(instance) : -1;
    if (getenv(LC__ENV_EXEC) != NULL)
      script = getenv(LC__ENV_EXEC);
    /* Both ends of a channel must agree on the limit. */
    if (getenv(LC__ENV_MAX_MESSAGE) != NULL)
      rt->opts.max_message_size = strtoull(getenv(LC__ENV_MAX_MESSAGE), NULL, 10);
    if (argc != NULL && worker_args_from_cmdline(rt, atoi(argc)) != 0)
      return -1;
    /* The master's --log: the worker reopens it on SIGUSR1 too. */
    free((char *)rt->opts.log_path);
    rt->opts.log_path = dup_or_null(getenv(LC__ENV_LOG));
  } else if (rt->opts.workers != 0) {
    rt->core.role = LC__ROLE_MANAGER;
  }
  if (rt->core.role == LC__ROLE_MASTER && rt->opts.metrics != NULL) {
    fprintf(stderr, "luacluster: --metrics is served by a managed master: "
            "add -w N\n");
    return -1;
  }
  if (rt->core.role == LC__ROLE_WORKER)
    snprintf(who, sizeof(who), "worker%d", rt->core.worker_id);
  else
    snprintf(who, sizeof(who), "master");
  lc__log_init(who);
  if (rt->opts.log_path != NULL && rt->opts.log_path[0] != '/' &&
      uv_cwd(exe, &len) == 0) {
    /* Workers reopen it on SIGUSR1 wherever the app has gone since. */
    char *abs = malloc(strlen(exe) + strlen(rt->opts.log_path) + 2);
    if (abs != NULL) {
      sprintf(abs, "%s/%s", exe, rt->opts.log_path);
      free((char *)rt->opts.log_path);
      rt->opts.log_path = abs;
    }
    len = sizeof(exe);
  }
  if (rt->opts.log_path != NULL && (err = lc__log_open(rt->opts.log_path))) {
    fprintf(stderr, "luacluster: cannot open the log file %s: %s\n",
            rt->opts.log_path, uv_strerror(err));
    return -1;
  }

  if (uv_exepath(exe, &len) != 0)
    snprintf(exe, sizeof(exe), "luacluster");
  rt->exe_path = strdup(exe);
  if (resolve_script(rt, script) != 0 || choose_sched(rt) != 0 ||
      (rt->core.role != LC__ROLE_WORKER && choose_cluster(rt) != 0))
    return -1;
  fill_core(rt);
  return 0;
}

/* The shared dicts: a worker attaches its master's; a master creates the
 * declared ones (adopting what an upgrading master passed). */
static int open_dicts(lc_runtime *rt) {
  lc__core *core = &rt->core;
  lc__dict_decl *decl;
  char err[256];

  if (lc__dicts_init(core, err, sizeof(err)) != 0) {
    lc__log(LC__LOG_ERROR, "cannot attach the shared dicts: %s", err);
    return -1;
  }
  if (core->role == LC__ROLE_WORKER)
    return 0;
  for (decl = rt->dicts; decl != NULL; decl = decl->next) {
    if (lc__dicts_define(core, decl->name, decl->size, err, sizeof(err))) {
      fprintf(stderr, "luacluster: %s\n", err);
      return -1;
    }
  }
  lc__dicts_drop_unclaimed(core);
  return 0;
}

/* Roles ------------------------------------------------------------------------ */

/* Runs the loop until nothing is left, giving Lua its beforeExit say. */
static void run_loop(lc_runtime *rt) {
  lc__core *core = &rt->core;

  while (!core->exiting && !core->finished) {
    uv_run(&core->loop, UV_RUN_DEFAULT);
    if (core->exiting || core->finished || !lc__lua_loop_end(rt) ||
        !uv_loop_alive(&core->loop))
      break;
  }
}

/* The parts a role needs before its Lua state: the link to the master (a
 * worker), or the worker table and shared listeners (a master). */
static int open_role(lc_runtime *rt) {
  lc__core *core = &rt->core;
  int err;

  if (core->role == LC__ROLE_WORKER) {
    err = lc__link_open(core, atoi(getenv(LC__ENV_CHANNEL_FD)));
    if (err) {
      lc__log(LC__LOG_ERROR, "cannot open the channel to the master: %s",
              uv_strerror(err));
      return LC__EXIT_FATAL;
    }
    return 0;
  }
  err = lc__supervisor_init(core);
  if (err == 0)
    err = lc__dispatch_init(core);
  if (err) {
    lc__log(LC__LOG_ERROR, "cannot start the master: %s", uv_strerror(err));
    return 1;
  }
  return 0;
}

static void close_lua(void *arg) { lc__lua_close(arg); }

static int run_lua_role(lc_runtime *rt) {
  lc__core *core = &rt->core;
  int code = open_role(rt);

  if (code != 0)
    return code;
  /* Before any Lua runs: a listener the app (or a hook) adds replaces the
   * default action it finds in place. */
  if (lc__signals_open(core) != 0)
    return 1;
  if (lc__core_on_close(core, close_lua, rt) != 0 || lc__lua_open(rt) == NULL)
    return 1;
  if (core->role == LC__ROLE_WORKER && lc__lua_link_open(rt) != 0)
    return 1;
  code = lc__lua_run_app(rt);
  if (code == 0) {
    if (core->role == LC__ROLE_MASTER)
      lc__notify_script_started(core);
    run_loop(rt);
    if (core->role == LC__ROLE_MASTER)
      lc__notify(core, "STOPPING=1");
    code = core->exiting ? core->exit_code : lc__lua_exit_code(rt);
  }
  lc__link_flush(core, 1000);
  return code;
}

int lc_run(lc_runtime *rt) {
  int code;

  /* A write to a closed socket is an error to handle, not a death. */
  signal(SIGPIPE, SIG_IGN);
  /* Lines, not blocks: output of several processes in a pipe stays whole
   * and nothing is lost when a worker is killed. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  if (setup(rt) != 0)
    return rt->core.role == LC__ROLE_WORKER ? LC__EXIT_FATAL : 1;
  if (lc__core_init(&rt->core) != 0)
    return 1;
  /* A master takes what a service manager (or the master it replaces)
   * passed it before anything can leak to a worker. */
  if (rt->core.role != LC__ROLE_WORKER &&
      (lc__activation_init(&rt->core) != 0 || lc__notify_init(&rt->core) != 0))
    lc__log(LC__LOG_WARN, "continuing without the service manager's socket "
            "or descriptors");
  if (open_dicts(rt) != 0)
    code = rt->core.role == LC__ROLE_WORKER ? LC__EXIT_FATAL : 1;
  else if (rt->core.role == LC__ROLE_MANAGER)
    /* The script must load before any worker is started: a broken one is
     * a one-line error here, not a crash loop. */
    code = lc__lua_check_script(rt->script) != 0 ? 1 : lc__manager_run(&rt->core);
  else
    code = run_lua_role(rt);
  lc__core_close(&rt->core);
  fflush(stdout);
  fflush(stderr);
  return code;
}

int lc_command(const lc_options *opts, int argc, char **argv) {
  return lc__control_command(opts->control_path, opts->script, argc, argv);
}
