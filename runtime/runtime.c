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

#include "internal.h"

lc_runtime *lc__rt;

void lc_options_init(lc_options *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->max_message_size = 64 * 1024 * 1024;
  opts->kill_timeout_ms = 5000;
  opts->listen_timeout_ms = 10000;
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
  rt->instance = -1;
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
  lc__preload *p;
  lc__hook *h;

  if (rt == NULL)
    return;
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
  free(rt->script);
  free(rt->script_dir);
  free(rt->exe_path);
  free(rt->control_path);
  if (lc__rt == rt)
    lc__rt = NULL;
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
  rt->sched = lc__sched_from_name(name);
  if (rt->sched == 0) {
    fprintf(stderr,
            "luacluster: unknown scheduling policy '%s' (rr, none, reuseport "
            "or sticky)\n",
            name);
    return -1;
  }
  return 0;
}

static int setup(lc_runtime *rt) {
  const char *id = getenv(LC__ENV_WORKER_ID);
  const char *fd = getenv(LC__ENV_CHANNEL_FD);
  const char *script = rt->opts.script;
  char exe[PATH_MAX];
  size_t len = sizeof(exe);
  char who[32];

  rt->role = LC__ROLE_MASTER;
  if (id != NULL && fd != NULL) {
    const char *instance = getenv(LC__ENV_INSTANCE);
    const char *argc = getenv(LC__ENV_ARGC);
    rt->role = LC__ROLE_WORKER;
    rt->worker_id = atoi(id);
    rt->instance = instance ? atoi(instance) : -1;
    if (getenv(LC__ENV_EXEC) != NULL)
      script = getenv(LC__ENV_EXEC);
    /* Both ends of a channel must agree on the limit. */
    if (getenv(LC__ENV_MAX_MESSAGE) != NULL)
      rt->opts.max_message_size = strtoull(getenv(LC__ENV_MAX_MESSAGE), NULL, 10);
    if (argc != NULL && worker_args_from_cmdline(rt, atoi(argc)) != 0)
      return -1;
  } else if (rt->opts.workers != 0) {
    rt->role = LC__ROLE_MANAGER;
  }
  if (rt->role == LC__ROLE_WORKER)
    snprintf(who, sizeof(who), "worker%d", rt->worker_id);
  else
    snprintf(who, sizeof(who), "master");
  lc__log_init(who);

  if (uv_exepath(exe, &len) != 0)
    snprintf(exe, sizeof(exe), "luacluster");
  rt->exe_path = strdup(exe);
  if (resolve_script(rt, script) != 0 || choose_sched(rt) != 0)
    return -1;
  return 0;
}

/* Roles ------------------------------------------------------------------------ */

/* Runs the loop until nothing is left, giving Lua its beforeExit say. */
static void run_loop(lc_runtime *rt) {
  while (!rt->exiting) {
    uv_run(&rt->loop, UV_RUN_DEFAULT);
    if (rt->exiting || !lc__lua_loop_end(rt) || !uv_loop_alive(&rt->loop))
      break;
  }
}

static int run_lua_role(lc_runtime *rt) {
  int code;

  if (rt->role == LC__ROLE_WORKER) {
    int err = lc__wside_init(rt, atoi(getenv(LC__ENV_CHANNEL_FD)));
    if (err) {
      lc__log(LC__LOG_ERROR, "cannot open the channel to the master: %s",
              uv_strerror(err));
      return LC__EXIT_FATAL;
    }
  } else if (lc__supervisor_init(rt) != 0 || lc__dispatch_init(rt) != 0) {
    return 1;
  }
  rt->L = lc__lua_open(rt);
  if (rt->L == NULL) {
    code = 1;
  } else {
    code = lc__lua_run_app(rt);
    if (code == 0) {
      run_loop(rt);
      code = rt->exiting ? rt->exit_code : lc__lua_exit_code(rt);
    }
  }
  if (rt->wside != NULL)
    lc__wside_flush(rt, 1000);
  lc__loop_shutdown(rt);
  lc__servers_free(rt);
  if (rt->L != NULL) {
    lc__lua_cluster_close(rt->L);
    lua_close(rt->L);
    rt->L = NULL;
  }
  lc__json_free();
  lc__wside_close(rt);
  lc__dispatch_close(rt);
  lc__supervisor_close(rt);
  return code;
}

int lc_run(lc_runtime *rt) {
  int code;

  lc__rt = rt;
  rt->start_ns = uv_hrtime();
  /* A write to a closed socket is an error to handle, not a death. */
  signal(SIGPIPE, SIG_IGN);
  /* Lines, not blocks: output of several processes in a pipe stays whole
   * and nothing is lost when a worker is killed. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  if (setup(rt) != 0)
    return rt->role == LC__ROLE_WORKER ? LC__EXIT_FATAL : 1;
  if (uv_loop_init(&rt->loop) != 0)
    return 1;
  if (rt->role == LC__ROLE_MANAGER)
    code = lc__manager_run(rt);
  else
    code = run_lua_role(rt);
  lc__loop_shutdown(rt); /* if a role returned early */
  fflush(stdout);
  fflush(stderr);
  return code;
}
