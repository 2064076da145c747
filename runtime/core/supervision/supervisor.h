/*
 * supervisor.h - the master's worker table: spawn, channel, exit.
 *
 * The supervisor turns what arrives on a worker's channel and the process's
 * exit into lc__worker_events for the worker's owner: the Lua cluster module
 * in script mode, the manager in managed mode. Policy (when to restart,
 * reload, stop) belongs to the owners, not here.
 */
#ifndef LC_SUPERVISOR_H
#define LC_SUPERVISOR_H

#include "bus.h"
#include "channel.h"
#include "core.h"

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
  /* A user message: type LC__FRAME_MESSAGE (checked: message.h) or
   * LC__FRAME_STRING, its bytes valid during the call. */
  void (*on_message)(lc__worker *w, int type, const char *data, size_t len);
  void (*on_disconnect)(lc__worker *w);
  void (*on_exit)(lc__worker *w, int64_t code, int signal);
  void (*on_error)(lc__worker *w, int err, const char *reason);
  void (*on_pong)(lc__worker *w, uint64_t seq, uint64_t requests);
  /* Bytes written to this worker so far went up to `written`. */
  void (*on_written)(lc__worker *w, uint64_t written);
  /* The messages since the last call are all there is for now: before any
   * other event of this worker, and after each read. Owners that hand
   * messages on in batches do it here. Optional. */
  void (*on_messages_end)(lc__worker *w);
  /* Cluster messaging the master's app hears (bus.h): a REQUEST or REPLY
   * from w, or a PUBLISH from w to a topic the master subscribed to; in
   * order with w's messages. Optional: without it the master answers
   * requests with an error. */
  void (*on_bus)(lc__worker *w, const lc__bus_record *rec);
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
  lc__core *core;
  int id;
  int instance;
  int state;
  int pid;
  int exited_after_disconnect;
  int dead;            /* the process exited */
  int ready;           /* listening, or said "ready" (managed mode) */
  int process_open;    /* the uv_process_t is not closed yet */
  int owner_refs;      /* owners still holding this struct */
  int ticket_keys;     /* it was given the TLS ticket keys */
  int64_t exit_code;
  int exit_signal;
  uint64_t started_ms;
  uint64_t requests;   /* last count a heartbeat reported */
  lc__req_stats stats; /* and the rest of what it reported */
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
  lc__worker *workers; /* live and not yet released */
  int next_id;
  int alive;           /* workers whose process has not exited */
};

int lc__supervisor_init(lc__core *core);
/* Starts a worker. On success *out holds one owner reference. */
int lc__worker_spawn(lc__core *core, const lc__worker_spec *spec,
                     const lc__worker_events *ev, void *data,
                     lc__worker **out);
/* Sends a user message (lc__channel_send_message). 0, UV_EMSGSIZE,
 * UV_EPIPE, UV_ENOMEM. */
int lc__worker_send(lc__worker *w, int type, const char *data, size_t len,
                    lc__channel_release_cb release, void *arg);
/* Graceful: no new connections; the worker finishes and disconnects. */
void lc__worker_disconnect(lc__worker *w);
int lc__worker_kill(lc__worker *w, int signum);
/* Sends the TLS session ticket keys (tls.h) to a worker; and the current
 * ones again to every worker that had them (a rotation). */
void lc__worker_send_ticket_keys(lc__worker *w);
void lc__workers_send_ticket_keys(lc__core *core);
/* Sends signum to every live worker (SIGUSR1: they reopen their logs). */
void lc__workers_signal(lc__core *core, int signum);
int lc__worker_connected(const lc__worker *w);
/* Drops an owner reference; the struct is freed when nothing holds it. */
void lc__worker_release(lc__worker *w);
const char *lc__worker_state_name(int state);

#endif
