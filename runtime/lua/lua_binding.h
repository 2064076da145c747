/*
 * lua_binding.h - what the Lua bindings share: the runtime object (the core
 * plus a Lua state), the one protected-call path from C into Lua, and the
 * one way to bind a C object to a Lua userdata (lua_handle.c).
 *
 * Bindings check arguments, call the core, push results. The core reaches
 * Lua only through the callback tables these files fill; everything Lua
 * hears goes through lc__lua_emit(): dispatcher(object, event, ...), where
 * the dispatcher (set once by lua/luacluster/boot.lua) calls
 * object:_native(event, ...).
 */
#ifndef LC_LUA_BINDING_H
#define LC_LUA_BINDING_H

#include <lua.h>
#include <lauxlib.h>

#include "luacluster.h"
#include "channel.h"
#include "core.h"
#include "tls.h"

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

/* A shared dict declared with lc_shared_dict(), created by lc_run(). */
typedef struct lc__dict_decl {
  char *name;
  size_t size;
  struct lc__dict_decl *next;
} lc__dict_decl;
#define LC__CODEC_POOL 32

/* The message codec's state (lua_message.c): registry refs. */
typedef struct lc__codec {
  int reset_ref, encode_ref, ref_ref;  /* string.buffer's methods */
  int new_ref;                         /* buffer.new */
  int reader_ref, address_ref;         /* the decoding buffer and pointer */
  int set_ref, decode_ref;             /* and its methods */
  const char **address;                /* the pointer cdata's payload */
  int buffer_ref;                      /* the buffer encodes go into */
  size_t next_size;                    /* for a new one: the last handed off */
  int pool[LC__CODEC_POOL];            /* buffers back from the channel */
  size_t pool_len[LC__CODEC_POOL];     /* and what each last held */
  int npool;
  size_t pool_bytes;
} lc__codec;

typedef struct lc__immediates lc__immediates;
typedef struct lc__signal_watch lc__signal_watch;
typedef struct lc__lua_link lc__lua_link;
typedef struct lc__copools lc__copools;

#define LC__MAX_SIGNAL 65

struct lc_runtime {
  lc__core core;     /* the C core's state; core.loop is the loop */
  lc_options opts;   /* strings below are the runtime's own copies */
  char *script;      /* absolute path of the app script */
  char *script_dir;  /* its directory, for require() */
  char **args;       /* script arguments */
  int nargs;
  char *exe_path;    /* this executable, as argv[0] for workers */
  char *cluster_name; /* a master's cluster (--redis), as resolved */
  lc__preload *preloads;
  lc__hook *hooks;
  lc__dict_decl *dicts; /* in the order declared */

  lua_State *L;      /* NULL in a managed-mode master, and once closed */
  int dispatcher_ref; /* dispatcher(object, event, ...) */
  int traceback_ref;  /* lc__lua_call's message handler, made once */
  int process_ref;    /* the process object: signals, exit, errors */
  int worker_ref;     /* cluster.worker in a worker: channel events */
  int waker_ref;      /* waker(thread, ...): resumes a waiting coroutine */
  int http_names_ref; /* strings every HTTP request uses (lua_http.c) */
  struct {
    const char *name; /* an event name C emits (a literal: its address) */
    int ref;          /* the interned Lua string */
  } event_names[32];  /* so lc__lua_emit() does not hash it every time */
  lc__immediates *immediates;
  lc__signal_watch *signals[LC__MAX_SIGNAL];
  lc__lua_link *link; /* a worker's channel, as Lua sees it */
  lc__copools *cosocket_pools; /* idle cosocket connections (lua_cosocket.c) */
  struct {
    int *refs;
    size_t n, cap;
  } dead_refs; /* registry refs to drop from the loop (lc__lua_unref) */
  lc__codec codec;    /* the message codec */
  int bus_record_ref; /* core.BUS: the metatable of bus records */
  int bus_ref;        /* what hears other hosts' publishes (a master) */
};

/* The runtime a binding function runs for (its upvalue 1). */
#define lc__lua_rt(L) ((lc_runtime *)lua_touserdata((L), lua_upvalueindex(1)))

/* Registers fns into the table on top, each with the runtime as upvalue. */
void lc__lua_register(lua_State *L, lc_runtime *rt, const luaL_Reg *fns);

/* lua_state.c ------------------------------------------------------------ */
/* Creates the app's Lua state: libraries, bundled modules, preloads, hooks. */
lua_State *lc__lua_open(lc_runtime *rt);
/* Loads and runs the app script. 0, or an exit code when it cannot. */
int lc__lua_run_app(lc_runtime *rt);
/* The runtime a state belongs to (a registry lookup: not for hot paths). */
lc_runtime *lc__lua_runtime_of(lua_State *L);
/* Closes the Lua state (after the loop: nothing calls into it any more). */
void lc__lua_close(lc_runtime *rt);
/* The script loads (its syntax is right), or a one-line error: 0 or -1. */
int lc__lua_check_script(const char *path);
/*
 * Calls the function below nargs arguments with a traceback handler. A Lua
 * error is reported (process "uncaughtException", else logged and the
 * process exits 1); process.exit() passes through quietly. Returns 0 when
 * the call succeeded, leaving nresults values; else leaves nothing.
 */
int lc__lua_call(lc_runtime *rt, int nargs, int nresults);
/* dispatcher(object at obj_ref, event, <nargs values on the stack>), through
 * lc__lua_call(). -1 (and the values popped) when there is no one to tell. */
int lc__lua_emit(lc_runtime *rt, int obj_ref, const char *event, int nargs,
                 int nresults);
/*
 * Coroutines (lua/luacluster/coroutines.lua runs user code in pooled ones).
 * A binding that waits holds the running coroutine (an error if L is the
 * main thread: `what` names the call) and yields; when the wait ends, C
 * calls lc__lua_wake() from the loop with the nargs values on top, which
 * resumes it through the waker (so a coroutine that finishes goes back to
 * the pool, and an error in it is reported). Wake never runs inside the
 * binding call that started the wait.
 */
int lc__lua_hold_thread(lua_State *L, const char *what, int *thread_ref);
/* Raises the error hold_thread would (before anything is made). */
void lc__lua_check_coroutine(lua_State *L, const char *what);
int lc__lua_wake(lc_runtime *rt, int *thread_ref, int nargs);
/* Reports the error at err_idx with its traceback at trace_idx as uncaught
 * (process "uncaughtException", else log and exit 1); 1 when exiting. */
int lc__lua_report(lc_runtime *rt, lua_State *L, int err_idx, int trace_idx);
/* Sentinel error value process.exit() raises to unwind the Lua stack. */
void lc__lua_push_exit_sentinel(lua_State *L);
int lc__lua_is_exit_sentinel(lua_State *L, int idx);
/* Pushes a registry ref (or nil for LUA_NOREF). */
void lc__lua_push_ref(lua_State *L, int ref);
/* Keeps the value at idx in *ref (dropping what *ref held). */
void lc__lua_set_ref(lua_State *L, int *ref, int idx);
/* Unrefs *ref if set and clears it; nothing once the state is closed.
 * Safe from anywhere: the slot is freed on the next call into Lua from the
 * loop (the main thread's stack may not be usable now). */
void lc__lua_unref(lc_runtime *rt, int *ref);
/* The same from a function called from Lua, with the L it was given. */
void lc__lua_unref_in(lua_State *L, int *ref);
/* Pushes nil, message, code ("ECONNREFUSED"): a failed call's results. */
int lc__lua_push_error(lua_State *L, int err);
/* An error as the top-to-bottom calls return it, in OpenResty's words:
 * "timeout", "closed", "connection refused", ...; else libuv's message. */
const char *lc__lua_err_text(int err);

/* lua_core.c: the "luacluster.core" module ------------------------------- */
int lc__open_core(lua_State *L);
/* The "luacluster.crypto" module (lua_crypto.c): hashes, HMAC, random. */
int lc__open_crypto(lua_State *L);
/* The "luacluster.shared" module (lua_shared.c): the shared dicts' names
 * and what lua/shared.lua does not do through the FFI. */
int lc__open_shared(lua_State *L);
/* The "luacluster.redis" module (lua_redis.c): Redis clients for lua/redis.lua. */
int lc__open_redis(lua_State *L);
/* Each area adds its functions to the core table on top of the stack. */
void lc__core_process(lua_State *L, lc_runtime *rt);
void lc__core_timers(lua_State *L, lc_runtime *rt);
void lc__core_signals(lua_State *L, lc_runtime *rt);
void lc__core_cluster(lua_State *L, lc_runtime *rt);
void lc__core_message(lua_State *L, lc_runtime *rt);
void lc__core_net(lua_State *L, lc_runtime *rt);
void lc__core_http(lua_State *L, lc_runtime *rt);
void lc__core_dns(lua_State *L, lc_runtime *rt);
void lc__core_tcp_client(lua_State *L, lc_runtime *rt);
void lc__core_http_client(lua_State *L, lc_runtime *rt);
void lc__core_cosocket(lua_State *L, lc_runtime *rt);
void lc__core_bus(lua_State *L, lc_runtime *rt);
void lc__core_tls(lua_State *L, lc_runtime *rt);
/* Gives Lua its "beforeExit" when the loop runs dry; 1 if Lua was told. */
int lc__lua_loop_end(lc_runtime *rt);
/* process.exitCode after the "exit" event, at a natural end. */
int lc__lua_exit_code(lc_runtime *rt);
/* Emits process "exit" with code (an uncaught error ends the process). */
void lc__lua_exit_event(lc_runtime *rt, int code);

/* lua_tls.c: TLS for every binding ---------------------------------------- */
/* An error's Node code and words: TLS errors, dns errors, libuv's. */
const char *lc__lua_err_name(int err, char *buf, size_t size);
const char *lc__lua_err_message(int err, char *buf, size_t size);
/* The context of the TlsContext at idx (a Lua error if it is not one). */
lc__tls_ctx *lc__lua_check_tls_ctx(lua_State *L, int idx);
/* The session of the TlsSession at idx, or NULL. */
lc__tls_session *lc__lua_test_tls_session(lua_State *L, int idx);
/* Push what a TLS connection settled on, its peer's certificate, its
 * session (a TlsSession) — or nil (not TLS, or not open). */
int lc__lua_push_tls_info(lua_State *L, lc__conn *c);
int lc__lua_push_peer_cert(lua_State *L, lc__conn *c);
int lc__lua_push_tls_session(lua_State *L, lc__conn *c);

/* lua_message.c: the codec every message goes through -------------------- */
/* A message ready for the channel: a frame type, its bytes, and, when the
 * bytes are sent where they lie, how the channel gives them back. */
typedef struct lc__lua_msg {
  int type; /* LC__FRAME_MESSAGE or LC__FRAME_STRING */
  const char *data;
  size_t len;
  lc__channel_release_cb release; /* NULL: copied at once by the send */
  void *arg;
} lc__lua_msg;

/* Encodes the value at idx; raises "cannot send message: <why>" for a value
 * that cannot cross. The bytes are valid until the next encode. */
void lc__message_encode(lua_State *L, lc_runtime *rt, int idx,
                        lc__lua_msg *m);
/* Gives back what encode kept for a send that failed. */
void lc__message_unkeep(lc__lua_msg *m);
/* Pushes the value a message carries (0), or an error message (-1). */
int lc__message_decode(lc_runtime *rt, lua_State *L, int type,
                       const char *data, size_t len);

/* lua_cluster.c: a worker's channel, as Lua sees it ---------------------- */
int lc__lua_link_open(lc_runtime *rt);
/* What lua_bus.c shares with it: the core worker behind the Worker handle
 * at idx (a Lua error if closed); the hard cap on what may wait for a peer
 * (worker id, 0 for the master); a send error raised in words; and, after
 * a send to the master, pushing whether its backlog is below the
 * high-water mark (else "drain" follows). */
struct lc__worker *lc__lua_check_worker(lua_State *L, int idx);
void lc__lua_check_backlog(lua_State *L, uint64_t backlog, int id);
void lc__lua_send_error(lua_State *L, int err, size_t len);
int lc__lua_link_pushed(lua_State *L, lc_runtime *rt);

/* lua_bus.c: cluster messaging ------------------------------------------- */
struct lc__bus_record;
/* Pushes a bus record that arrived as a table marked core.BUS (0), or the
 * reason its message does not decode (-1). */
int lc__lua_bus_push(lc_runtime *rt, lua_State *L,
                     const struct lc__bus_record *rec);

/* lua_handle.c: C objects behind Lua userdata (luv's rules) ------------- */

typedef struct lc__lua_handle lc__lua_handle;

/* One kind of handle: its metatable's name and how to start closing it
 * (the close must end in lc__lua_handle_release()). */
typedef struct lc__lua_type {
  const char *name;
  void (*close)(lc__lua_handle *h);
} lc__lua_type;

/*
 * The head of every binding object. The userdata is a box holding a pointer
 * to the object, which lives in malloc'd memory:
 *   - while C may call back, self_ref holds the Lua object events go to
 *     (the userdata, or the Lua table that owns it) and cb_ref a callback;
 *   - the object is freed only by lc__lua_handle_release(), from the close
 *     path of what it wraps (a libuv close callback, or the core's);
 *   - __gc on a box whose object is still open starts its close.
 */
struct lc__lua_handle {
  lc__owner owner; /* for objects that are a libuv handle's data */
  lc_runtime *rt;
  const lc__lua_type *type;
  lc__lua_handle **box; /* the userdata's slot; NULL once collected */
  int self_ref;
  int cb_ref;
  int closing;
};

/* Allocates a zeroed object of `size` (starting with lc__lua_handle) and
 * pushes its userdata. */
void *lc__lua_handle_new(lua_State *L, lc_runtime *rt,
                         const lc__lua_type *type, size_t size);
/* Pushes a userdata for an object made without one (lazily). */
void lc__lua_handle_push_new(lua_State *L, lc__lua_handle *h);
/* The object behind the userdata at idx; a Lua error if closed. */
void *lc__lua_handle_check(lua_State *L, int idx, const lc__lua_type *type);
/* The object behind the userdata at idx, or NULL if closed. */
void *lc__lua_handle_test(lua_State *L, int idx, const lc__lua_type *type);
/* Holds the Lua object at idx while C may call back (events go to it). */
void lc__lua_handle_pin(lua_State *L, lc__lua_handle *h, int idx);
void lc__lua_handle_unpin(lc__lua_handle *h);
/* Keeps the function at idx as the handle's callback. */
void lc__lua_handle_set_cb(lua_State *L, lc__lua_handle *h, int idx);
/* Starts closing (once): the type's close; release follows. */
void lc__lua_handle_close(lc__lua_handle *h);
/* The close path's end: drops the refs, clears the box, frees. */
void lc__lua_handle_release(lc__lua_handle *h);
/* Emits event to the pinned object (see lc__lua_emit). */
int lc__lua_handle_emit(lc__lua_handle *h, const char *event, int nargs,
                        int nresults);
/* Makes the metatable for a type: methods (with the runtime upvalue) as
 * __index, and the shared __gc. */
void lc__lua_handle_class(lua_State *L, lc_runtime *rt,
                          const lc__lua_type *type, const luaL_Reg *methods);

#endif
