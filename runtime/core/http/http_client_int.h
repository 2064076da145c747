/*
 * http_client_int.h - what http_client.c (requests and the protocol on a
 * connection) and http_agent.c (agents, their pools of connections, the
 * client's shared loop handles) share. Not for other parts: they use
 * http_client.h.
 */
#ifndef LC_HTTP_CLIENT_INT_H
#define LC_HTTP_CLIENT_INT_H

#include "dns.h"
#include "http_client.h"

typedef struct lc__http_pool lc__http_pool;
typedef struct lc__http_cconn lc__http_cconn;

/* What every agent of the process shares (core->http_client). */
struct lc__http_client {
  lc__owner owner; /* first: the handles' data points here */
  uv_check_t check;
  uv_idle_t idle;   /* keeps the loop from blocking while work is deferred */
  uv_timer_t sweep; /* deadlines of requests waiting for a connection */
  int open;         /* handles not closed yet */
  int armed;
  int sweeping;
  lc__core *core;
  lc__http_agent *agents;
  lc__http_request *reqs;     /* every request not freed */
  lc__http_request *deferred; /* with work for the loop, in order */
  lc__http_request *deferred_tail;
  lc__http_pool *serve;       /* pools to give waiting requests connections */
};

struct lc__http_agent {
  lc__http_client *client;
  lc__http_agent_options opts;
  lc__http_limits limits; /* an idle connection's reader's */
  lc__http_pool *pools;
  size_t refs; /* its owner (until closed), live requests and connections */
  int closed;
  void (*on_free)(void *data);
  void *free_data;
  lc__http_agent *prev, *next;
};

/* The connections and waiting requests of one host:port (and, for HTTPS,
 * one TLS context and server name). */
struct lc__http_pool {
  lc__http_agent *agent;
  char host[256];
  int port;
  lc__tls_ctx *tls;      /* a reference, or NULL */
  char servername[256];
  lc__http_cconn *free; /* idle, most recently used first */
  size_t nconns, nfree;
  lc__http_request *queue, *queue_tail;
  size_t nqueued;
  uint64_t opened;
  int serve_scheduled;
  lc__http_pool *serve_next;
  lc__http_pool *next;
};

/* A client connection (its lc__conn's data once connecting). */
struct lc__http_cconn {
  lc__http_agent *agent;
  lc__http_pool *pool; /* NULL once it left the pool */
  lc__conn *c;         /* NULL while the name is looked up */
  lc__dns_req *dns;
  lc__http_request *req; /* being answered; NULL when idle */
  lc__http_reader reader;
  lc__buf pending; /* response bytes a pause left */
  unsigned served; /* responses read: > 0 means a reused connection */
  int connected;
  int paused;
  int complete;       /* the reader finished a response */
  int response_bytes; /* some byte of the current response arrived */
  int in_free;
  uint64_t free_timeout_ms; /* the server's hint, else the agent's */
  lc__http_cconn *next_free;
};

struct lc__http_request {
  lc__http_agent *agent;
  lc__http_pool *pool;
  lc__http_cconn *cc;
  const lc__http_request_cb *cb;
  void *data;
  lc__http_limits limits;
  uint64_t timeout_ms;
  uint64_t deadline; /* while waiting for a connection */
  char host[256];
  int port;
  lc__tls_ctx *tls;      /* a reference, or NULL */
  char servername[256];
  lc__buf out;      /* request bytes not yet sent (all of them, keep_out) */
  size_t out_sent;  /* bytes of out given to the connection */
  int head_sent;    /* the head is in out */
  int finished;     /* the body's end is in out */
  int chunked;
  int head_request;
  int idempotent;
  int keep_out;     /* keep out whole for a retry */
  int retried;
  int reused;       /* sent on a connection that served before */
  int responded;    /* the response's head arrived */
  int done;         /* over: only on_close is left */
  int user_paused;
  int want_drain;
  int queued;
  int deferred;     /* DEFER_* bits while on the deferred list */
  int err;          /* the error a deferred finish tells */
  const char *reason;
  lc__http_request *next;      /* in its pool's queue */
  lc__http_request *dnext;     /* in the deferred list */
  lc__http_request *lprev, *lnext; /* in the client's list */
};

extern const lc__http_reader_cb lc__http_client_reader_cb;
extern const lc__conn_ops lc__http_client_conn_ops;

/* http_client.c */
void lc__http_request_free(lc__http_request *req);
void lc__http_request_fail(lc__http_request *req, int err, const char *reason);
void lc__http_request_fail_later(lc__http_request *req, int err,
                                 const char *reason);
void lc__http_request_flush(lc__http_request *req);
void lc__http_request_arm(lc__http_request *req);
void lc__http_request_deferred(lc__http_request *req, int what);

/* http_agent.c */
void lc__http_client_link(lc__http_client *client, lc__http_request *req);
void lc__http_client_unlink(lc__http_client *client, lc__http_request *req);
void lc__http_client_defer(lc__http_client *client, lc__http_request *req,
                           int what);
void lc__http_client_undefer(lc__http_client *client, lc__http_request *req);
void lc__http_client_sweep_start(lc__http_client *client);
void lc__http_agent_unref(lc__http_agent *agent);
/* Gives the request a connection: an idle one, a new one, or a place in
 * the queue (or fails it when the queue is full). */
void lc__http_pool_acquire(lc__http_request *req);
/* A new connection for req (NULL: for whoever waits). */
void lc__http_pool_open(lc__http_pool *pool, lc__http_request *req);
/* A connection is free: the next waiting request, the idle list, or
 * closed (keep 0). */
void lc__http_pool_release(lc__http_cconn *cc, int keep);
void lc__http_pool_dequeue(lc__http_pool *pool, lc__http_request *req);
/* Leaves the pool (idempotent); closes; frees. */
void lc__http_cconn_leave(lc__http_cconn *cc);
void lc__http_cconn_close(lc__http_cconn *cc);
void lc__http_cconn_free(lc__http_cconn *cc);

#endif
