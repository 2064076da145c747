/*
 * core.h - the state of one luacluster process, as the C core sees it.
 *
 * Every core function takes the lc__core it works for (as libuv passes the
 * loop): the loop, this process's role and options, and the parts it runs:
 * the worker table and shared listeners (a master), the link to the master
 * (a worker), the servers and connections (anyone). No Lua header reaches
 * the core: the build gives runtime/core/ no LuaJIT include path. What the
 * core has to tell the bindings goes through callback tables they fill.
 */
#ifndef LC_CORE_H
#define LC_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
#include "owner.h"

#define LC__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Environment a worker is started with. */
#define LC__ENV_WORKER_ID "LUACLUSTER_WORKER_ID"
#define LC__ENV_CHANNEL_FD "LUACLUSTER_CHANNEL_FD"
#define LC__ENV_MASTER_PID "LUACLUSTER_MASTER_PID"
#define LC__ENV_EXEC "LUACLUSTER_EXEC"
#define LC__ENV_ARGC "LUACLUSTER_ARGC"
#define LC__ENV_INSTANCE "LUACLUSTER_INSTANCE"
#define LC__ENV_SCHED "LUACLUSTER_SCHED_POLICY"
#define LC__ENV_WORKERS "LUACLUSTER_WORKERS"
#define LC__ENV_MAX_MESSAGE "LUACLUSTER_MAX_MESSAGE_SIZE"
#define LC__ENV_CONTROL "LUACLUSTER_CONTROL"
/* Given by an old master to the new one in a binary upgrade (upgrade.c). */
#define LC__ENV_UPGRADE_FROM "LUACLUSTER_UPGRADE_FROM"
#define LC__ENV_UPGRADE_FD "LUACLUSTER_UPGRADE_FD"
#define LC__ENV_CONTROL_FD "LUACLUSTER_CONTROL_FD"
#define LC__ENV_LOG "LUACLUSTER_LOG"

/* The descriptor a worker finds its channel on. */
#define LC__CHANNEL_CHILD_FD 3

/* Exit code of a worker that must not be restarted (a fatal setup error). */
#define LC__EXIT_FATAL 78

/* Passed as workers: one per CPU (the public LC_WORKERS_MAX). */
#define LC__WORKERS_MAX (-1)

enum lc__role {
  LC__ROLE_MASTER = 1, /* script mode: the app runs here and forks */
  LC__ROLE_WORKER,     /* started by a master, talks over a channel */
  LC__ROLE_MANAGER     /* managed mode: a C-only master */
};

enum lc__sched {
  LC__SCHED_RR = 1,
  LC__SCHED_NONE,
  LC__SCHED_REUSEPORT,
  LC__SCHED_STICKY
};

/* The options the core acts on (copied from the public lc_options). */
typedef struct lc__core_options {
  int workers;                   /* managed mode: N, or LC__WORKERS_MAX */
  size_t max_message_size;       /* largest IPC payload */
  unsigned kill_timeout_ms;      /* grace before SIGKILL */
  unsigned listen_timeout_ms;    /* a new worker's time to get ready */
  unsigned heartbeat_timeout_ms; /* 0: no heartbeat checks */
  size_t max_memory;             /* RSS limit, 0: none */
  int wait_ready;                /* ready = process.send("ready") */
  const char *control_path;      /* NULL: derived from the script */
  const char *metrics;           /* "addr:port" of the metrics endpoint */
  const char *log_path;          /* --log FILE, or NULL */
  unsigned min_uptime_ms;        /* sooner exits are quick failures */
  unsigned max_restarts;         /* quick failures before "errored"; 0: none */
  unsigned ipc_spin_us;          /* channels may poll this long for an answer
                                    (LUACLUSTER_IPC_SPIN_US, default 50) */
  const char *redis_url;         /* --redis: masters of several hosts meet
                                    there (cluster_redis.h), or NULL */
  const char *cluster_name;      /* and the cluster's name */
} lc__core_options;

typedef struct lc__supervisor lc__supervisor;
typedef struct lc__dispatch lc__dispatch;
typedef struct lc__worker_link lc__worker_link;
typedef struct lc__manager lc__manager;
typedef struct lc__tcp lc__tcp;
typedef struct lc__http_state lc__http_state;
typedef struct lc__dns lc__dns;
typedef struct lc__http_client lc__http_client;
typedef struct lc__cleanup lc__cleanup;
typedef struct lc__notify_state lc__notify_state;
typedef struct lc__activation lc__activation;
typedef struct lc__upgrade lc__upgrade;
typedef struct lc__metrics lc__metrics;
typedef struct lc__dicts lc__dicts;
typedef struct lc__bus lc__bus;
typedef struct lc__cluster lc__cluster;
typedef struct lc__tls lc__tls;

/* Requests a process served, how long they took, and its Redis clients (the
 * heartbeat carries them to the master for its metrics). */
#define LC__STATS_BUCKETS 12
typedef struct lc__req_stats {
  uint64_t requests;  /* answered */
  uint64_t in_flight; /* being answered now */
  uint64_t duration_us_sum;
  /* answered within each bound of lc__stats_bounds_ms (not cumulative);
   * the last one counts the slower rest */
  uint64_t buckets[LC__STATS_BUCKETS];
  uint64_t redis_clients; /* Redis clients open (created, not yet closed) */
  uint64_t redis_ready;   /* of those, connected and ready for commands */
} lc__req_stats;
typedef struct lc__signals lc__signals;

typedef struct lc__core {
  uv_loop_t loop;
  lc__core_options opts;
  int role;
  int sched;
  int worker_id;       /* in a worker; 0 in a master */
  int instance;        /* a managed worker's slot, else -1 */
  const char *script;  /* absolute path of the app script */
  char **args;         /* its arguments */
  int nargs;
  const char *exe_path;
  uint64_t start_ns;
  unsigned long long fds_logged_ms; /* "out of file descriptors", at most 1/s */

  int exit_code;
  int exiting;       /* an exit was asked: call no more into the app */
  int finished;      /* nothing more to do (a stopped worker drained): the
                        loop ends as if it ran dry, whatever timers remain */
  int shutting_down; /* closing every handle: close callbacks tell no one */
  int loop_closed;   /* lc__loop_shutdown() ran */

  lc__supervisor *sup;    /* master: the worker table */
  lc__dispatch *dispatch; /* master: shared listening sockets */
  lc__bus *bus;           /* master: cluster messaging's router (bus.h) */
  lc__cluster *cluster;   /* master with --redis: the other hosts */
  lc__worker_link *link;  /* worker: the channel to the master */
  lc__manager *manager;   /* managed mode: the policy over the workers */
  lc__tcp *tcp;           /* servers and connections */
  lc__http_state *http;   /* HTTP connections' shared parts */
  lc__dns *dns;           /* name lookups in flight */
  lc__http_client *http_client; /* the HTTP client's shared parts */
  lc__signals *signals;   /* the default actions on signals (signals.c) */
  lc__cleanup *cleanups;  /* run by lc__core_close(), last added first */
  lc__notify_state *notify;   /* master: the service manager's socket */
  lc__activation *activation; /* master: listening sockets passed at start */
  lc__upgrade *upgrade;       /* managed: a binary upgrade in progress */
  lc__metrics *metrics;       /* managed: the --metrics endpoint */
  lc__dicts *dicts;           /* the shared dicts (shared_dicts.h) */
  lc__tls *tls;               /* TLS: shared buffers, ticket keys (tls.h) */
  lc__req_stats stats;        /* HTTP requests this process served */
} lc__core;

/* Sets up the loop and the fields every role needs. 0 or a UV_E* code. */
int lc__core_init(lc__core *core);

/*
 * Registers fn(arg) to run when the core closes, after the loop's handles
 * are closed: each part frees what it allocated. Last registered runs first.
 * 0 or UV_ENOMEM.
 */
int lc__core_on_close(lc__core *core, void (*fn)(void *arg), void *arg);

/* Closes every handle (loop.c), then runs the cleanups. */
void lc__core_close(lc__core *core);

/* Ends the process's loop with code: nothing more is called back. */
void lc__core_exit(lc__core *core, int code);

/* The process is done (a stopped worker drained): its loop ends as if it
 * ran dry, the app's "exit" listeners run, whatever timers remain. */
void lc__core_finish(lc__core *core);

/* Closes every handle, runs their close callbacks and closes the loop. */
void lc__loop_shutdown(lc__core *core);

/* signals.c: names of signals both ways ("SIGTERM" <-> 15; 0 / "SIGUNKNOWN"). */
int lc__signal_number(const char *name);
const char *lc__signal_name(int signum);
/* The process's default actions on signals its app does not take (see
 * signals.c); 0 or a UV_E* code. */
int lc__signals_open(lc__core *core);
/* The app listens for signum (on = 0) or stopped listening (on = 1): its
 * listener replaces the default action. */
void lc__signal_default(lc__core *core, int signum, int on);

/* Scheduling policy names ("rr", ...): 0 / "rr" for unknown. */
int lc__sched_from_name(const char *name);
const char *lc__sched_name(int sched);

#endif
