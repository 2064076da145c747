/*
 * internal.h - the runtime's private structures and lc__ prototypes.
 *
 * Nothing here is visible to embedders; include/luacluster.h is the public
 * surface. Each group of prototypes names the file that implements it.
 */
#ifndef LC_INTERNAL_H
#define LC_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

#include "luacluster.h"
#include "buf.h"
#include "channel.h"
#include "frame.h"

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

/* The descriptor a worker finds its channel on. */
#define LC__CHANNEL_CHILD_FD 3

/* Exit code of a worker that must not be restarted (a fatal setup error). */
#define LC__EXIT_FATAL 78

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

typedef struct lc__preload {
  char *name;
  lua_CFunction open;
  struct lc__preload *next;
} lc__preload;

typedef struct lc__hook {
  void (*fn)(lua_State *L, void *arg);
  void *arg;
  struct lc__hook *next;
} lc__hook;

typedef struct lc__supervisor lc__supervisor;
typedef struct lc__dispatch lc__dispatch;
typedef struct lc__wside lc__wside;
typedef struct lc__manager lc__manager;

struct lc_runtime {
  lc_options opts;   /* strings below are the runtime's own copies */
  char *script;      /* absolute path of the app script */
  char *script_dir;  /* its directory, for require() */
  char **args;       /* script arguments */
  int nargs;
  char *exe_path;    /* this executable, as argv[0] for workers */
  char *control_path;
  lc__preload *preloads;
  lc__hook *hooks;

  uv_loop_t loop;
  lua_State *L; /* NULL in a managed-mode master */
  int role;
  int sched;
  int worker_id; /* in a worker; 0 in a master */
  int instance;  /* a managed worker's slot, else -1 */
  int exit_code;
  int exiting;       /* process.exit() or a fatal error: call no more Lua */
  int shutting_down; /* closing every handle before lua_close() */
  int loop_closed;   /* lc__loop_shutdown() ran */
  uint64_t start_ns;

  lc__supervisor *sup;     /* master: the worker table */
  lc__dispatch *dispatch;  /* master: shared listening sockets */
  lc__wside *wside;        /* worker: the channel to the master */
  lc__manager *manager;    /* managed mode: the policy over the workers */
};

/* The runtime this process runs (one per process). */
extern lc_runtime *lc__rt;

/* log.c ------------------------------------------------------------------ */
enum lc__log_level { LC__LOG_DEBUG, LC__LOG_INFO, LC__LOG_WARN, LC__LOG_ERROR };

/* Sets the name log lines carry ("master", "worker3"). */
void lc__log_init(const char *who);
/* One runtime log line: (host-pid) [time] [LEVEL] [who] - message. */
void lc__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int lc__log_level_from_name(const char *name);

/* lua_state.c ------------------------------------------------------------ */
/* Creates the app's Lua state: libraries, bundled modules, preloads, hooks. */
lua_State *lc__lua_open(lc_runtime *rt);
/* Loads and runs the app script. 0, or an exit code when it cannot. */
int lc__lua_run_app(lc_runtime *rt);
/*
 * Calls the function below nargs arguments with a traceback handler. A Lua
 * error is reported (process "uncaughtException", else logged and the
 * process exits 1); process.exit() passes through quietly. Returns 0 when
 * the call succeeded, leaving nresults values; else leaves nothing.
 */
int lc__lua_call(lua_State *L, int nargs, int nresults);
/* Sentinel error value process.exit() raises to unwind the Lua stack. */
void lc__lua_push_exit_sentinel(lua_State *L);
int lc__lua_is_exit_sentinel(lua_State *L, int idx);
/* Ends the process's loop with code: no more Lua is called. */
void lc__exit(lc_runtime *rt, int code);
/* Pushes a registry ref (or nil for LUA_NOREF). */
void lc__lua_push_ref(lua_State *L, int ref);
/* Unrefs *ref if set and clears it. */
void lc__lua_unref(lua_State *L, int *ref);
/* For core.set_*_handler(fn): keeps the function at 1 in *ref. */
int lc__lua_set_handler(lua_State *L, int *ref);
int lc__core_set_uncaught_handler(lua_State *L);

/* lua_core.c ------------------------------------------------------------- */
/* The "luacluster.core" module: primitives the Lua modules build on. */
int lc__open_core(lua_State *L);
/* Each area adds its functions to the core table on top of the stack. */
void lc__core_process(lua_State *L);
void lc__core_timers(lua_State *L);
void lc__core_signals(lua_State *L);
void lc__core_cluster(lua_State *L);
void lc__core_json(lua_State *L);
void lc__core_net(lua_State *L);
/* Gives Lua its "beforeExit" when the loop runs dry; 1 if Lua was told. */
int lc__lua_loop_end(lc_runtime *rt);
/* process.exitCode after the "exit" event, at a natural end. */
int lc__lua_exit_code(lc_runtime *rt);
/* Emits process "exit" with code (an uncaught error ends the process). */
void lc__lua_exit_event(lc_runtime *rt, int code);
/* The JSON codec every message goes through (json.c). */
int lc__json_encode(lua_State *L, int idx, const char **out, size_t *len);
int lc__json_decode(lua_State *L, const char *s, size_t len);
void lc__json_free(void);

/* supervisor.c ----------------------------------------------------------- */
typedef struct lc__worker lc__worker;

enum lc__worker_state {
  LC__W_STARTING = 0,
  LC__W_ONLINE,
  LC__W_LISTENING,
  LC__W_DISCONNECTING,
  LC__W_DISCONNECTED,
  LC__W_DEAD
};

/* What happens to a worker, told to its owner (Lua binding or manager). */
typedef struct lc__worker_events {
  void (*on_online)(lc__worker *w);
  void (*on_listening)(lc__worker *w, const char *addr, int port);
  void (*on_message)(lc__worker *w, const char *json, size_t len);
  void (*on_disconnect)(lc__worker *w);
  void (*on_exit)(lc__worker *w, int64_t code, int signal);
  void (*on_error)(lc__worker *w, int err, const char *reason);
  void (*on_pong)(lc__worker *w, uint64_t seq, uint64_t requests);
  /* Bytes written to this worker so far went up to `written`. */
  void (*on_written)(lc__worker *w, uint64_t written);
} lc__worker_events;

typedef struct lc__worker_spec {
  const char *exec;  /* script the worker runs */
  char **args;       /* its arguments */
  int nargs;
  char **env;        /* "K=V" strings, NULL-terminated; NULL = inherit */
  int silent;        /* worker stdout/stderr go to /dev/null */
  int instance;      /* managed slot or -1 */
} lc__worker_spec;

/* A connection handed to a worker and not yet acknowledged: the master keeps
 * its own descriptor, to give it to another worker if this one dies first. */
typedef struct lc__inflight {
  uint64_t ticket;
  int fd;
  uint32_t listener;
  uint32_t hash;
} lc__inflight;

struct lc__worker {
  lc__owner owner; /* first: process.data points here */
  lc_runtime *rt;
  int id;
  int instance;
  int state;
  int pid;
  int exited_after_disconnect;
  int dead;            /* the process exited */
  int ready;           /* listening, or said "ready" (managed mode) */
  int process_open;    /* the uv_process_t is not closed yet */
  int owner_refs;      /* owners still holding this struct */
  int64_t exit_code;
  int exit_signal;
  uint64_t started_ms;
  uint64_t requests;   /* last count a heartbeat reported */
  uint64_t last_pong_ms;
  uv_process_t process;
  lc__channel channel;
  lc__inflight *inflight; /* connections sent, not yet acknowledged */
  size_t ninflight, cap_inflight;
  const lc__worker_events *ev;
  void *data;          /* the owner's */
  lc__worker *next;
};

struct lc__supervisor {
  lc_runtime *rt;
  lc__worker *workers; /* live and not yet released */
  int next_id;
  int alive;           /* workers whose process has not exited */
};

int lc__supervisor_init(lc_runtime *rt);
void lc__supervisor_close(lc_runtime *rt);
/* Starts a worker. On success *out holds one owner reference. */
int lc__worker_spawn(lc_runtime *rt, const lc__worker_spec *spec,
                     const lc__worker_events *ev, void *data,
                     lc__worker **out);
/* Sends a user message (JSON). 0, UV_EMSGSIZE, UV_EPIPE. */
int lc__worker_send(lc__worker *w, const char *json, size_t len);
/* Graceful: no new connections; the worker finishes and disconnects. */
void lc__worker_disconnect(lc__worker *w);
int lc__worker_kill(lc__worker *w, int signum);
int lc__worker_connected(const lc__worker *w);
/* Drops an owner reference; the struct is freed when nothing holds it. */
void lc__worker_release(lc__worker *w);
const char *lc__worker_state_name(int state);

/* dispatch.c ------------------------------------------------------------- */
int lc__dispatch_init(lc_runtime *rt);
void lc__dispatch_close(lc_runtime *rt);
/* A worker asked to share addr:port for its server. */
void lc__dispatch_listen(lc__worker *w, const lc__control *req);
void lc__dispatch_unlisten(lc__worker *w, uint32_t server_id);
/* The worker stops taking connections (draining or gone). */
void lc__dispatch_worker_gone(lc__worker *w);
/* A HANDLE frame that never left: its descriptor is a copy, dropped here. */
void lc__dispatch_unsent(lc__worker *w, const lc__control *c, int fd);
/* The worker took (or refused) the connection with this ticket. */
void lc__dispatch_accepted(lc__worker *w, uint64_t ticket, int status);
/* The worker's channel ended: what it never acknowledged goes elsewhere. */
void lc__dispatch_channel_closed(lc__worker *w);
/* Workers alive changed: listeners keep the loop alive only with workers. */
void lc__dispatch_update_refs(lc_runtime *rt);
/* Managed stop: hand out the connections already waiting, then close every
 * listening socket (clients are refused rather than left waiting). */
void lc__dispatch_stop(lc_runtime *rt);
int lc__sched_from_name(const char *name);
const char *lc__sched_name(int sched);

/* lua_cluster.c: what the worker's channel brings to Lua ------------------ */
void lc__lua_worker_message(lc_runtime *rt, const char *json, size_t len);
void lc__lua_worker_written(lc_runtime *rt, uint64_t written);
void lc__lua_worker_disconnect(lc_runtime *rt);
void lc__lua_cluster_close(lua_State *L);

/* wside.c: the worker's side of its channel ------------------------------- */
int lc__wside_init(lc_runtime *rt, int fd);
void lc__wside_close(lc_runtime *rt);
/* Worker -> master user message (JSON). */
int lc__wside_send(lc_runtime *rt, const char *json, size_t len);
int lc__wside_send_control(lc_runtime *rt, const lc__control *c);
/* Starts the worker's disconnect: close servers, drain, close channel. */
void lc__wside_disconnect(lc_runtime *rt);
int lc__wside_connected(lc_runtime *rt);
void lc__wside_flush(lc_runtime *rt, int timeout_ms);
int lc__wside_disconnecting(lc_runtime *rt);
/* Makes the channel's on_written run at the end of this iteration. */
void lc__wside_kick(lc_runtime *rt);
/* Bytes ever queued on the channel (a send callback's offset). */
uint64_t lc__wside_queued(lc_runtime *rt);
/* Ends the channel because the master broke the protocol. */
void lc__wside_fail(lc_runtime *rt, const char *reason);

/* tcp.c: this process's servers (see tcp.h) ------------------------------- */
void lc__servers_on_control(lc_runtime *rt, const lc__control *c, int fd);
/* Closes every server, lets connections finish, then calls done. */
void lc__servers_drain(lc_runtime *rt, void (*done)(lc_runtime *rt));
uint64_t lc__servers_requests(lc_runtime *rt);
void lc__servers_free(lc_runtime *rt);

/* listen.c ---------------------------------------------------------------- */
#define LC__SOCK_REUSEPORT 1
#define LC__SOCK_IPV6ONLY 2
#define LC__SOCK_NO_LISTEN 4
struct sockaddr_storage;
int lc__resolve(const char *host, int port, struct sockaddr_storage *ss);
int lc__sockaddr_port(const struct sockaddr_storage *ss);
void lc__sockaddr_ip(const struct sockaddr_storage *ss, char *out,
                     size_t size);
/* A listening (or, with LC__SOCK_NO_LISTEN, bound) non-blocking socket. */
int lc__listen_socket(const char *host, int port, int backlog, int flags,
                      int *out_fd, int *out_port);

/* manager.c: managed mode (-w N) ------------------------------------------ */
int lc__manager_run(lc_runtime *rt);

/* loop.c ----------------------------------------------------------------- */
/* Closes every handle, runs their close callbacks and closes the loop. */
void lc__loop_shutdown(lc_runtime *rt);

/* lua_handle.c: Lua userdata over a libuv handle (luv's rules) ---------- */
typedef struct lc__lhandle {
  lc__owner owner;
  struct lc__lhandle **box; /* the userdata's slot; NULL once collected */
  uv_handle_t *handle;
  int self_ref; /* the userdata, held while C may call back */
  int cb_ref;   /* the main Lua callback */
  void (*on_free)(struct lc__lhandle *h); /* extra cleanup before free */
} lc__lhandle;

/* Allocates a zeroed struct of `size` (starting with lc__lhandle) whose
 * handle is at `handle`, pushes its userdata with metatable `mt`. */
void *lc__lhandle_new(lua_State *L, size_t size, size_t handle_offset,
                      const char *mt);
/* The struct behind the userdata at idx, or a Lua error if it is closed. */
void *lc__lhandle_check(lua_State *L, int idx, const char *mt);
/* Holds (or drops) the userdata at idx alive while C may call back. */
void lc__lhandle_pin(lua_State *L, lc__lhandle *h, int idx);
void lc__lhandle_unpin(lua_State *L, lc__lhandle *h);
/* Sets the callback from the function at idx. */
void lc__lhandle_set_cb(lua_State *L, lc__lhandle *h, int idx);
/* Starts closing; refs are dropped and memory freed in the close callback. */
void lc__lhandle_close(lc__lhandle *h);
/* __gc for every such userdata. */
int lc__lhandle_gc(lua_State *L);
/* Pushes the userdata of a pinned handle (or nil). */
void lc__lhandle_push(lua_State *L, lc__lhandle *h);

/* signals.c -------------------------------------------------------------- */
int lc__signal_number(const char *name);
const char *lc__signal_name(int signum);

/* errors --------------------------------------------------------------- */
const char *lc__strerror(int err);

#endif
