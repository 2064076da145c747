/*
 * luacluster.h - run Lua apps on every core, embedded in your own program.
 *
 * A program that embeds luacluster fills an lc_options, creates a runtime,
 * preloads its own Lua C modules, and runs it:
 *
 *     lc_options opts;
 *     lc_runtime *rt;
 *     lc_options_init(&opts);
 *     opts.script = "app.lua";
 *     if (lc_new(&rt, &opts) != 0) ...;
 *     lc_preload(rt, "mymod", luaopen_mymod);
 *     code = lc_run(rt);
 *     lc_free(rt);
 *
 * Workers are new processes of the same executable (/proc/self/exe) running
 * the same main(); lc_run() notices from the environment that it is a worker
 * and plays that role instead. So whatever the program preloads is there in
 * the master and in every worker, as long as main() preloads it before
 * calling lc_run().
 *
 * Functions that can fail return 0 or a negative error code; lc_strerror()
 * and lc_err_name() describe it. Nothing here is thread-safe: use one
 * runtime per process, from one thread.
 */
#ifndef LUACLUSTER_H
#define LUACLUSTER_H

#include <stddef.h>
#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LC_VERSION_MAJOR 0
#define LC_VERSION_MINOR 1
#define LC_VERSION_PATCH 0
#define LC_VERSION_STRING "0.1.0"

/* Passed as lc_options.workers: one worker per CPU. */
#define LC_WORKERS_MAX (-1)

typedef struct lc_runtime lc_runtime;

/*
 * What the runtime runs and how. Always fill it with lc_options_init() first,
 * so that fields added in later versions get their defaults.
 */
typedef struct lc_options {
  /* The app script (required). Relative paths are taken from the current
   * directory; require() looks beside it first. */
  const char *script;
  /* Arguments after the script, as the app sees them in process.argv. */
  int argc;
  char **argv;
  /* 0: script mode, the script runs in the master and forks workers itself.
   * N > 0 or LC_WORKERS_MAX: managed mode, the master runs no Lua and keeps
   * N workers running the script. */
  int workers;
  /* "rr", "none", "reuseport" or "sticky"; NULL means the environment's
   * LUACLUSTER_SCHED_POLICY, else "rr". */
  const char *sched_policy;
  /* Largest IPC message payload in bytes; a bigger send is refused. */
  size_t max_message_size;
  /* Managed mode: milliseconds a stopping worker may take before SIGKILL. */
  unsigned kill_timeout_ms;
  /* Managed mode: milliseconds a new worker may take to become ready. */
  unsigned listen_timeout_ms;
  /* Managed mode: a worker is ready when it sends "ready", not when it
   * listens. */
  int wait_ready;
  /* Managed mode: restart a worker whose RSS passes this (bytes, 0 = off). */
  size_t max_memory;
  /* Managed mode: restart a worker whose loop misses heartbeats for this
   * many milliseconds (0 = off). */
  unsigned heartbeat_timeout_ms;
  /* Managed mode: the control socket `luacluster status|reload|stop|scale`
   * talk to; NULL means the default derived from the script's path. */
  const char *control_path;
  /* Managed mode: "addr:port" to serve Prometheus metrics on (NULL: none). */
  const char *metrics;
  /* Where stdout and stderr go (the runtime's log lines and the app's
   * output), appended, in the master and every worker; SIGUSR1 reopens it
   * (for logrotate). NULL: the inherited stdout and stderr. */
  const char *log_path;
  /* Managed mode: a worker that exits sooner than this many milliseconds
   * after it started failed quickly (PM2's min_uptime; 1000). */
  unsigned min_uptime_ms;
  /* Managed mode: after this many quick failures in a row an instance is
   * "errored" and not restarted; when every instance is, the master exits 1
   * (PM2's max_restarts; 10; 0: restart for ever, with backoff). */
  unsigned max_restarts;
  /* Several hosts as one cluster: the Redis server their masters meet at,
   * "redis://[user:password@]host[:port][/db]" (NULL: this host alone).
   * Broadcasts and publishes then reach every worker of every host, and
   * each master registers itself there. */
  const char *redis_url;
  /* The cluster's name: masters with the same Redis and the same name are
   * one cluster (NULL: the app script's file name without ".lua"). 1 to 64
   * letters, digits, '.', '_' or '-'. */
  const char *cluster_name;
} lc_options;

/* Fills opts with the defaults. */
void lc_options_init(lc_options *opts);

/* 0 when the options that can be checked without running anything are
 * right (the Redis URL, the cluster name), else -1 with why[0, n) saying
 * which is wrong and what it wants. lc_run() checks them too. */
int lc_options_check(const lc_options *opts, char *why, size_t n);

/*
 * Creates a runtime for opts (copied; opts may be freed afterwards).
 * Returns 0 and sets *rt, or a negative error code.
 */
int lc_new(lc_runtime **rt, const lc_options *opts);

/*
 * Makes `require(name)` return open()'s result in every Lua state the
 * runtime creates: the master's and every worker's.
 */
int lc_preload(lc_runtime *rt, const char *name, lua_CFunction open);

/*
 * Calls hook(L, arg) on every new Lua state, after the runtime's modules are
 * loaded and before the app script runs. Several hooks run in the order
 * they were added.
 */
int lc_on_state(lc_runtime *rt, void (*hook)(lua_State *L, void *arg),
                void *arg);

/* The sizes lc_shared_dict() accepts, in bytes. */
#define LC_SHARED_DICT_MIN ((size_t)32 << 10)  /* 32 KiB */
#define LC_SHARED_DICT_MAX ((size_t)128 << 30) /* 128 GiB */

/*
 * Declares a shared dict: `size` bytes of shared memory (rounded up to
 * pages) that the master creates before any worker starts, and that every
 * Lua state, the master's and every worker's, sees as
 * require("shared").name (OpenResty's lua_shared_dict; `--shared
 * name=size` on the command line). The dict is the master's: it survives
 * worker crashes, restarts and reloads. Call it before lc_run(); in a
 * worker it is ignored (the worker gets its master's dicts). Declaring a
 * name again replaces its size. A name is 1 to 64 letters, digits, '_' or
 * '-', not starting with a digit or '-', and not "define". Returns 0, or
 * a negative error code: EINVAL for the name, ERANGE for the size (see
 * lc_err_name()). A dict that cannot be created (no memory) makes lc_run()
 * fail with a one-line error.
 */
int lc_shared_dict(lc_runtime *rt, const char *name, size_t size);

/*
 * Runs the app until it is done and returns the process exit code (0 on
 * success, 1 when the script is missing, broken or fails). Call it once.
 */
int lc_run(lc_runtime *rt);

/*
 * Talks to a running managed-mode master, as `luacluster status` does:
 * argv is {"status"[, "--json"]}, {"reload"}, {"stop"} or {"scale", "N"}.
 * The master is found by opts->control_path, else LUACLUSTER_CONTROL, else
 * the control socket of opts->script, else the only one running. Prints
 * the answer to stdout (errors to stderr); returns the exit code.
 */
int lc_command(const lc_options *opts, int argc, char **argv);

/* Frees the runtime. */
void lc_free(lc_runtime *rt);

/* "address already in use" for an error code. */
const char *lc_strerror(int err);

/* "EADDRINUSE" for an error code. */
const char *lc_err_name(int err);

/* "0.1.0". */
const char *lc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* LUACLUSTER_H */
