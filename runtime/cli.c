/*
 * cli.c - the `luacluster` command: flags and environment in, then only the
 * public API (luacluster.h), as any embedding program would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_config.h"
#include "luacluster.h"

static void usage(FILE *out) {
  fprintf(out,
    "usage: luacluster [options] app.lua [args...]\n"
    "       luacluster start [options] CONF [args...]\n"
    "       luacluster check CONF\n"
    "       luacluster status [--json|--watch|--cluster] | reload | upgrade |\n"
    "                  stop |"
    "                  scale N  [app.lua | --config CONF | --control PATH]\n"
    "\n"
    "Runs app.lua. Without -w the script is the master: it forks its own\n"
    "workers with cluster.fork(). With -w the master runs no Lua and keeps\n"
    "N workers running app.lua.\n"
    "\n"
    "options:\n"
    "  -w, --workers N|max     managed mode with N workers (max: one per CPU);\n"
    "                          also LUACLUSTER_WORKERS\n"
    "  --sched POLICY          rr (default), none, reuseport or sticky;\n"
    "                          also LUACLUSTER_SCHED_POLICY\n"
    "  --kill-timeout MS       managed: grace before SIGKILL on stop (5000)\n"
    "  --listen-timeout MS     managed: time a new worker has to get ready\n"
    "                          (10000)\n"
    "  --wait-ready            managed: ready means process.send(\"ready\")\n"
    "  --max-memory SIZE       managed: restart a worker over SIZE RSS\n"
    "                          (e.g. 200M, 1G)\n"
    "  --heartbeat-timeout MS  managed: restart a worker whose loop stops\n"
    "                          answering for MS (0: off, else at least 400)\n"
    "  --min-uptime MS         managed: a worker that exits sooner failed\n"
    "                          quickly (1000)\n"
    "  --max-restarts N        managed: quick failures in a row before an\n"
    "                          instance is errored, no longer restarted (10;\n"
    "                          0: no limit); all errored: the master exits 1\n"
    "  --max-message-size N    largest IPC message in bytes (64 MiB)\n"
    "  --control PATH          managed: the control socket (default\n"
    "                          /tmp/luacluster-UID/APP-HASH.sock)\n"
    "  --metrics ADDR:PORT     managed: serve Prometheus metrics there\n"
    "  --shared NAME=SIZE      a shared dict, require(\"shared\").NAME in\n"
    "                          every worker (e.g. cache=64m; repeatable)\n"
    "  --log FILE              runtime log lines and the app's output go to\n"
    "                          FILE (appended); SIGUSR1 reopens it; also\n"
    "                          LUACLUSTER_LOG\n"
    "  --redis URL             several hosts as one cluster: their masters\n"
    "                          meet at redis://[user:password@]host[:port][/db];\n"
    "                          broadcasts and publishes reach every host; also\n"
    "                          LUACLUSTER_REDIS\n"
    "  --cluster-name NAME     the cluster's name (default: the app script's\n"
    "                          name); also LUACLUSTER_CLUSTER_NAME\n"
    "\n"
    "commands (to a running managed master, found by its app script, by\n"
    "--control, or as the only one running):\n"
    "  status [--json]         workers: id, pid, state, uptime, restarts,\n"
    "                          RSS, CPU, requests (--watch: every second;\n"
    "                          --cluster: every host's, through Redis)\n"
    "  reload                  zero-downtime rolling reload (as SIGUSR2)\n"
    "  upgrade                 run the binary again, with no downtime: a new\n"
    "                          master takes the sockets over (as SIGURG)\n"
    "  stop                    graceful stop (as SIGTERM)\n"
    "  scale N                 run N workers from now on\n"
    "\n"
    "config file (a Lua table; flags override it, it overrides LUACLUSTER_*):\n"
    "  start CONF              run what CONF says\n"
    "  check CONF              check CONF and its app script, run nothing\n"
    "  -h, --help              this help\n"
    "  -v, --version           the version\n");
}

static int parse_uint(const char *flag, const char *s, unsigned long long *out) {
  char *end;
  unsigned long long v;

  if (s == NULL || *s == '\0') {
    fprintf(stderr, "luacluster: %s needs a value\n", flag);
    return -1;
  }
  if (*s < '0' || *s > '9') { /* strtoull takes "-5" and " 5" too */
    fprintf(stderr, "luacluster: %s: not a number: %s\n", flag, s);
    return -1;
  }
  v = strtoull(s, &end, 10);
  switch (*end) {
  case 'k': case 'K': v <<= 10; end++; break;
  case 'm': case 'M': v <<= 20; end++; break;
  case 'g': case 'G': v <<= 30; end++; break;
  default: break;
  }
  if (*end != '\0') {
    fprintf(stderr, "luacluster: %s: not a number: %s\n", flag, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* Values a flag cannot mean: a clear message rather than a surprise. */
static int check_range(const char *flag, unsigned long long v) {
  const char *why = NULL;

  int ms = strstr(flag, "timeout") != NULL || !strcmp(flag, "--min-uptime");

  if (ms && v > 86400000ULL)
    why = "ms is more than a day";
  else if (!strcmp(flag, "--max-restarts") && v > 1000000)
    why = "is more than a million";
  else if (!strcmp(flag, "--heartbeat-timeout") && v > 0 && v < 400)
    why = "must be 0 (off) or at least 400 ms: the master pings a quarter "
          "of it apart, at most every 100 ms";
  else if (!strcmp(flag, "--listen-timeout") && v == 0)
    why = "must be more than 0 ms";
  else if (!strcmp(flag, "--max-message-size") && (v == 0 || v > 0xffffffffULL))
    why = "must be from 1 byte to 4 GiB";
  if (why == NULL)
    return 0;
  fprintf(stderr, "luacluster: %s %llu %s\n", flag, v, why);
  return -1;
}

static int parse_workers(const char *s, int *out) {
  unsigned long long n;

  if (s != NULL && strcmp(s, "max") == 0) {
    *out = LC_WORKERS_MAX;
    return 0;
  }
  if (parse_uint("--workers", s, &n) != 0 || n == 0 || n > 4096) {
    fprintf(stderr, "luacluster: --workers wants a count (1-4096) or max\n");
    return -1;
  }
  *out = (int)n;
  return 0;
}

/* Parses flags up to the script (--shared ones into dicts); returns the
 * script's index, or -1 to exit with *code. */
static int parse(int argc, char **argv, lc_options *opts,
                 lc_cli_shared_list *dicts, int *code) {
  unsigned long long v;
  char why[256];
  const char *env;
  int i;

  *code = 1;
  env = getenv("LUACLUSTER_LOG");
  /* A config file's log (already in opts) beats the environment. */
  if (env != NULL && *env != '\0' && opts->log_path == NULL)
    opts->log_path = env;
  env = getenv("LUACLUSTER_REDIS");
  if (env != NULL && *env != '\0' && opts->redis_url == NULL)
    opts->redis_url = env;
  env = getenv("LUACLUSTER_CLUSTER_NAME");
  if (env != NULL && *env != '\0' && opts->cluster_name == NULL)
    opts->cluster_name = env;
  env = getenv("LUACLUSTER_WORKERS");
  /* A config file's workers (already in opts) beat the environment. */
  if (env != NULL && *env != '\0' && opts->workers == 0 &&
      parse_workers(env, &opts->workers) != 0)
    return -1;
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      *code = 0;
      return -1;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--version")) {
      printf("luacluster %s\n", lc_version());
      *code = 0;
      return -1;
    } else if (!strcmp(a, "-w") || !strcmp(a, "--workers")) {
      if (parse_workers(val, &opts->workers) != 0)
        return -1;
      i++;
    } else if (!strcmp(a, "--sched")) {
      if (val == NULL) {
        fprintf(stderr, "luacluster: --sched needs a policy\n");
        return -1;
      }
      opts->sched_policy = val;
      i++;
    } else if (!strcmp(a, "--log")) {
      if (val == NULL || *val == '\0') {
        fprintf(stderr, "luacluster: --log needs a file\n");
        return -1;
      }
      opts->log_path = val;
      i++;
    } else if (!strcmp(a, "--control")) {
      if (val == NULL) {
        fprintf(stderr, "luacluster: --control needs a path\n");
        return -1;
      }
      opts->control_path = val;
      i++;
    } else if (!strcmp(a, "--metrics")) {
      if (val == NULL || strrchr(val, ':') == NULL) {
        fprintf(stderr, "luacluster: --metrics wants ADDRESS:PORT\n");
        return -1;
      }
      opts->metrics = val;
      i++;
    } else if (!strcmp(a, "--redis") || !strcmp(a, "--cluster-name")) {
      if (val == NULL || *val == '\0') {
        fprintf(stderr, "luacluster: %s needs a value\n", a);
        return -1;
      }
      if (a[2] == 'r')
        opts->redis_url = val;
      else
        opts->cluster_name = val;
      i++;
    } else if (!strcmp(a, "--shared")) {
      if (lc_cli_shared_parse(val, dicts, why, sizeof(why)) != 0) {
        fprintf(stderr, "luacluster: --shared %s\n", why);
        return -1;
      }
      i++;
    } else if (!strcmp(a, "--wait-ready")) {
      opts->wait_ready = 1;
    } else if (!strcmp(a, "--kill-timeout") || !strcmp(a, "--listen-timeout") ||
               !strcmp(a, "--heartbeat-timeout") ||
               !strcmp(a, "--min-uptime") || !strcmp(a, "--max-restarts") ||
               !strcmp(a, "--max-memory") || !strcmp(a, "--max-message-size")) {
      if (parse_uint(a, val, &v) != 0 || check_range(a, v) != 0)
        return -1;
      if (!strcmp(a, "--kill-timeout"))
        opts->kill_timeout_ms = (unsigned)v;
      else if (!strcmp(a, "--listen-timeout"))
        opts->listen_timeout_ms = (unsigned)v;
      else if (!strcmp(a, "--heartbeat-timeout"))
        opts->heartbeat_timeout_ms = (unsigned)v;
      else if (!strcmp(a, "--min-uptime"))
        opts->min_uptime_ms = (unsigned)v;
      else if (!strcmp(a, "--max-restarts"))
        opts->max_restarts = (unsigned)v;
      else if (!strcmp(a, "--max-memory"))
        opts->max_memory = (size_t)v;
      else
        opts->max_message_size = (size_t)v;
      i++;
    } else {
      fprintf(stderr, "luacluster: unknown option %s (try --help)\n", a);
      return -1;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "luacluster: no app script given (try --help)\n");
    return -1;
  }
  return i;
}

static int is_command(const char *s) {
  return !strcmp(s, "status") || !strcmp(s, "reload") || !strcmp(s, "stop") ||
         !strcmp(s, "scale") || !strcmp(s, "upgrade");
}

/* `status --watch`: the table again every second, until the master goes
 * (or Ctrl-C), as PM2's monit. */
static int watch(const lc_options *opts, int n, char **args) {
  int tty = isatty(STDOUT_FILENO), code;

  for (;;) {
    if (tty)
      fputs("\033[H\033[2J", stdout);
    code = lc_command(opts, n, args);
    fflush(stdout);
    if (code != 0)
      return code;
    sleep(1);
  }
}

/* luacluster status [--json|--watch] | reload | upgrade | stop | scale N
 *   [app.lua] [--control P] [--config CONF] */
static int command(int argc, char **argv) {
  lc_options opts;
  lc_cli_config *cfg = NULL;
  char *args[3], err[512];
  int n = 0, i, watching = 0, code;

  lc_options_init(&opts);
  args[n++] = argv[1];
  for (i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json") && n < 3)
      args[n++] = argv[i];
    else if (!strcmp(argv[i], "--cluster") && !strcmp(argv[1], "status") &&
             n < 3)
      args[n++] = argv[i];
    else if (!strcmp(argv[i], "--watch") && !strcmp(argv[1], "status"))
      watching = 1;
    else if (!strcmp(argv[i], "--control") && i + 1 < argc)
      opts.control_path = argv[++i];
    else if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) &&
             i + 1 < argc && cfg == NULL) {
      /* The config's control socket, or its app's. */
      const char *control = opts.control_path;
      cfg = lc_cli_config_load(argv[++i], &opts, err, sizeof(err));
      if (cfg == NULL) {
        fprintf(stderr, "luacluster: %s\n", err);
        return 1;
      }
      if (control != NULL)
        opts.control_path = control;
    }
    else if (!strcmp(argv[1], "scale") && n == 1)
      args[n++] = argv[i];
    else if (opts.script == NULL && argv[i][0] != '-')
      opts.script = argv[i];
    else {
      fprintf(stderr, "luacluster %s: unexpected %s\n", argv[1], argv[i]);
      lc_cli_config_free(cfg);
      return 1;
    }
  }
  code = watching ? watch(&opts, n, args) : lc_command(&opts, n, args);
  lc_cli_config_free(cfg);
  return code;
}

/* luacluster check CONF: nginx -t. */
static int check(int argc, char **argv) {
  lc_options opts;
  lc_cli_config *cfg;
  char err[512];

  if (argc != 3) {
    fprintf(stderr, "luacluster: usage: luacluster check CONF\n");
    return 1;
  }
  lc_options_init(&opts);
  cfg = lc_cli_config_load(argv[2], &opts, err, sizeof(err));
  if (cfg == NULL || lc_cli_config_check_app(cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "luacluster: %s\n", err);
    fprintf(stderr, "luacluster: %s: check failed\n", argv[2]);
    lc_cli_config_free(cfg);
    return 1;
  }
  printf("luacluster: %s: ok (%s)\n", argv[2], lc_cli_config_summary(cfg));
  lc_cli_config_free(cfg);
  return 0;
}

/*
 * luacluster start [options] CONF [args...]: the config file first, then
 * the flags over it; args after CONF replace the config's. Returns the
 * index of CONF in argv, or -1 to exit with *code; *cfg holds the config.
 */
static int start(int argc, char **argv, lc_options *opts, lc_cli_config **cfg,
                 lc_cli_shared_list *dicts, int *code) {
  lc_cli_shared_list scratch_dicts;
  lc_options scratch;
  char err[512];
  int i;

  /* Where CONF is (the flags before it are checked on the way). */
  lc_options_init(&scratch);
  scratch_dicts.n = 0;
  i = parse(argc - 1, argv + 1, &scratch, &scratch_dicts, code);
  if (i < 0)
    return -1;
  i++;
  *cfg = lc_cli_config_load(argv[i], opts, err, sizeof(err));
  if (*cfg == NULL) {
    fprintf(stderr, "luacluster: %s\n", err);
    *code = 1;
    return -1;
  }
  parse(argc - 1, argv + 1, opts, dicts, code);
  if (i + 1 < argc) {
    opts->argc = argc - i - 1;
    opts->argv = argv + i + 1;
  }
  return i;
}

/* The config's dicts, then the flags' (a name in both: the flag's size). */
static int declare_dicts(lc_runtime *rt, const lc_cli_config *cfg,
                         const lc_cli_shared_list *flags) {
  const lc_cli_shared_list *lists[2] = {cfg ? lc_cli_config_shared(cfg) : NULL,
                                        flags};
  const lc_cli_shared *d;
  int i, j, err;

  for (i = 0; i < 2; i++) {
    for (j = 0; lists[i] != NULL && j < lists[i]->n; j++) {
      d = &lists[i]->dicts[j];
      if ((err = lc_shared_dict(rt, d->name, d->size)) != 0) {
        fprintf(stderr, "luacluster: shared dict %s: %s\n", d->name,
                lc_strerror(err));
        return -1;
      }
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  lc_cli_shared_list dicts;
  lc_options opts;
  lc_cli_config *cfg = NULL;
  lc_runtime *rt;
  char why[512];
  int i, code, err;
  int worker = getenv("LUACLUSTER_WORKER_ID") != NULL;

  dicts.n = 0;
  if (argc > 1 && is_command(argv[1]) && !worker)
    return command(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "check") && !worker)
    return check(argc, argv);
  lc_options_init(&opts);
  /* A worker is started as "luacluster app.lua args": the runtime reads
   * its real orders from the environment, so skip the flags. */
  if (worker) {
    i = argc > 1 ? 1 : argc;
  } else if (argc > 1 && !strcmp(argv[1], "start")) {
    if (start(argc, argv, &opts, &cfg, &dicts, &code) < 0)
      return code;
  } else {
    i = parse(argc, argv, &opts, &dicts, &code);
    if (i < 0)
      return code;
  }
  if (!worker && lc_options_check(&opts, why, sizeof(why)) != 0) {
    fprintf(stderr, "luacluster: %s\n", why);
    lc_cli_config_free(cfg);
    return 1;
  }
  if (cfg == NULL) {
    opts.script = i < argc ? argv[i] : NULL;
    opts.argc = i < argc ? argc - i - 1 : 0;
    opts.argv = argv + i + 1;
  }

  err = lc_new(&rt, &opts);
  if (err == 0 && declare_dicts(rt, cfg, &dicts) != 0) {
    lc_cli_config_free(cfg);
    lc_free(rt);
    return 1;
  }
  /* lc_new and lc_shared_dict copied what they need from the config. */
  lc_cli_config_free(cfg);
  if (err) {
    fprintf(stderr, "luacluster: %s\n", lc_strerror(err));
    return 1;
  }
  code = lc_run(rt);
  lc_free(rt);
  return code;
}
