/*
 * http_agent.c - agents: per host:port pools of client connections, the
 * queue of requests waiting for one, and the loop handles every agent of
 * the process shares (http_client.h).
 *
 * Idle connections are a stack: the most recently used is handed out
 * first, so the least used sink to the bottom and time out (closed before
 * the server's own keep-alive timeout ends them under a request). A
 * connection being made belongs to the request that asked for it; if that
 * request goes away first, the connection serves whoever waits, or idles.
 *
 * Work that must not run inside an API call (errors found there, aborts,
 * resumed reads, serving the queue after a connection went away) is put on
 * a deferred list, run from a check handle; an idle handle keeps the loop
 * from blocking while the list is not empty. A timer checks the deadlines
 * of requests that wait without a connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client_int.h"

#define SWEEP_MS 250

void lc__http_agent_options_init(lc__http_agent_options *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->keep_alive = 0;
  opts->max_sockets = 256;
  opts->max_free_sockets = 256;
  opts->max_queue = 1024;
  opts->free_timeout_ms = 4000;
  opts->connect_timeout_ms = 10000;
}

/* The client's shared parts ------------------------------------------------ */

static void client_process(lc__http_client *cl);

static void on_check(uv_check_t *handle) {
  client_process(handle->data);
}

static void on_idle(uv_idle_t *handle) { (void)handle; }

static void on_handle_closed(uv_handle_t *handle) {
  lc__http_client *cl = handle->data;

  cl->open--;
}

/* The shutdown walk: the handles go; what they held is freed by
 * client_free once the loop is closed. */
static void client_close(uv_handle_t *handle) {
  lc__http_client *cl = handle->data;

  if (uv_is_closing((uv_handle_t *)&cl->check))
    return;
  uv_close((uv_handle_t *)&cl->check, on_handle_closed);
  uv_close((uv_handle_t *)&cl->idle, on_handle_closed);
  uv_close((uv_handle_t *)&cl->sweep, on_handle_closed);
}

static void agent_free(lc__http_agent *agent);

/* After the loop: requests that still wait close (their users let go),
 * then the agents go. */
static void client_free(void *arg) {
  lc__core *core = arg;
  lc__http_client *cl = core->http_client;

  while (cl->reqs != NULL) {
    lc__http_request *req = cl->reqs;
    req->done = 1;
    req->queued = 0;
    req->deferred = 0;
    lc__http_request_free(req);
  }
  while (cl->agents != NULL)
    agent_free(cl->agents);
  free(cl);
  core->http_client = NULL;
}

static lc__http_client *client_of(lc__core *core) {
  lc__http_client *cl = core->http_client;

  if (cl != NULL)
    return cl;
  cl = calloc(1, sizeof(*cl));
  if (cl == NULL || lc__core_on_close(core, client_free, core) != 0) {
    free(cl);
    return NULL;
  }
  cl->owner.close = client_close;
  cl->core = core;
  uv_check_init(&core->loop, &cl->check);
  uv_idle_init(&core->loop, &cl->idle);
  uv_timer_init(&core->loop, &cl->sweep);
  uv_unref((uv_handle_t *)&cl->check);
  uv_unref((uv_handle_t *)&cl->sweep);
  cl->check.data = cl->idle.data = cl->sweep.data = cl;
  cl->open = 3;
  core->http_client = cl;
  return cl;
}

static void client_arm(lc__http_client *cl) {
  if (cl->armed || cl->core->shutting_down)
    return;
  cl->armed = 1;
  uv_check_start(&cl->check, on_check);
  uv_idle_start(&cl->idle, on_idle);
}

void lc__http_client_link(lc__http_client *cl, lc__http_request *req) {
  req->lnext = cl->reqs;
  if (cl->reqs != NULL)
    cl->reqs->lprev = req;
  cl->reqs = req;
}

void lc__http_client_unlink(lc__http_client *cl, lc__http_request *req) {
  if (req->lprev != NULL)
    req->lprev->lnext = req->lnext;
  else
    cl->reqs = req->lnext;
  if (req->lnext != NULL)
    req->lnext->lprev = req->lprev;
}

void lc__http_client_defer(lc__http_client *cl, lc__http_request *req,
                           int what) {
  if (req->deferred == 0) {
    req->dnext = NULL;
    if (cl->deferred_tail != NULL)
      cl->deferred_tail->dnext = req;
    else
      cl->deferred = req;
    cl->deferred_tail = req;
  }
  req->deferred |= what;
  client_arm(cl);
}

void lc__http_client_undefer(lc__http_client *cl, lc__http_request *req) {
  lc__http_request **pp, *prev = NULL;

  for (pp = &cl->deferred; *pp != NULL; prev = *pp, pp = &(*pp)->dnext) {
    if (*pp == req) {
      *pp = req->dnext;
      if (cl->deferred_tail == req)
        cl->deferred_tail = prev;
      break;
    }
  }
  req->deferred = 0;
}

static void pool_serve(lc__http_pool *pool);

/* Runs the deferred work, including what it defers in turn. */
static void client_process(lc__http_client *cl) {
  lc__http_request *req;
  lc__http_pool *pool;
  int what;

  for (;;) {
    if ((req = cl->deferred) != NULL) {
      cl->deferred = req->dnext;
      if (cl->deferred == NULL)
        cl->deferred_tail = NULL;
      what = req->deferred;
      req->deferred = 0;
      lc__http_request_deferred(req, what);
    } else if ((pool = cl->serve) != NULL) {
      cl->serve = pool->serve_next;
      pool->serve_scheduled = 0;
      pool_serve(pool);
      lc__http_agent_unref(pool->agent);
    } else {
      break;
    }
  }
  cl->armed = 0;
  uv_check_stop(&cl->check);
  uv_idle_stop(&cl->idle);
}

/* Deadlines of requests without a connection (queued, or while the name
 * is looked up). */
static void on_sweep(uv_timer_t *timer) {
  lc__http_client *cl = timer->data;
  uint64_t now = uv_now(timer->loop);
  lc__http_request *req, *next;
  int armed = 0;

  for (req = cl->reqs; req != NULL; req = next) {
    next = req->lnext;
    if (req->deadline == 0 || req->done)
      continue;
    if (now >= req->deadline) {
      req->deadline = 0;
      req->cb->on_timeout(req); /* may free req, never next's */
      continue;
    }
    armed = 1;
  }
  if (!armed) {
    uv_timer_stop(timer);
    cl->sweeping = 0;
  }
}

void lc__http_client_sweep_start(lc__http_client *cl) {
  if (cl->sweeping || cl->core->shutting_down)
    return;
  cl->sweeping = 1;
  uv_timer_start(&cl->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

/* Agents ----------------------------------------------------------------------- */

lc__http_agent *lc__http_agent_new(lc__core *core,
                                   const lc__http_agent_options *opts) {
  lc__http_client *cl = client_of(core);
  lc__http_agent *agent = cl ? calloc(1, sizeof(*agent)) : NULL;

  if (agent == NULL)
    return NULL;
  agent->client = cl;
  agent->opts = *opts;
  lc__http_limits_init(&agent->limits);
  if (agent->opts.max_sockets == 0)
    agent->opts.max_sockets = 1;
  agent->refs = 1;
  agent->next = cl->agents;
  if (cl->agents != NULL)
    cl->agents->prev = agent;
  cl->agents = agent;
  return agent;
}

void lc__http_agent_set_free_hook(lc__http_agent *agent,
                                  void (*on_free)(void *data), void *data) {
  agent->on_free = on_free;
  agent->free_data = data;
}

static void agent_free(lc__http_agent *agent) {
  lc__http_client *cl = agent->client;
  lc__http_pool *pool;

  while ((pool = agent->pools) != NULL) {
    agent->pools = pool->next;
    lc__tls_ctx_unref(pool->tls);
    free(pool);
  }
  if (agent->prev != NULL)
    agent->prev->next = agent->next;
  else
    cl->agents = agent->next;
  if (agent->next != NULL)
    agent->next->prev = agent->prev;
  if (agent->on_free != NULL)
    agent->on_free(agent->free_data);
  free(agent);
}

void lc__http_agent_unref(lc__http_agent *agent) {
  /* At shutdown client_free frees what is left, in its order. */
  if (--agent->refs == 0 && !agent->client->core->shutting_down)
    agent_free(agent);
}

void lc__http_agent_close(lc__http_agent *agent) {
  lc__http_pool *pool;

  if (agent->closed)
    return;
  agent->closed = 1;
  for (pool = agent->pools; pool != NULL; pool = pool->next)
    while (pool->free != NULL)
      lc__http_cconn_close(pool->free);
  lc__http_agent_unref(agent);
}

void lc__http_agent_stats_get(lc__http_agent *agent, const char *host,
                              int port, lc__http_agent_stats *out) {
  lc__http_pool *pool;

  memset(out, 0, sizeof(*out));
  for (pool = agent->pools; pool != NULL; pool = pool->next) {
    if (host != NULL && (pool->port != port || strcmp(pool->host, host) != 0))
      continue;
    out->sockets += pool->nconns;
    out->free += pool->nfree;
    out->queued += pool->nqueued;
    out->connections += pool->opened;
  }
}

/* Pools ------------------------------------------------------------------------ */

/* The pool of the request's host:port, TLS context and server name. */
static lc__http_pool *pool_of(lc__http_agent *agent,
                              const lc__http_request *req) {
  lc__http_pool *pool;

  for (pool = agent->pools; pool != NULL; pool = pool->next)
    if (pool->port == req->port && pool->tls == req->tls &&
        strcmp(pool->host, req->host) == 0 &&
        strcmp(pool->servername, req->servername) == 0)
      return pool;
  pool = calloc(1, sizeof(*pool));
  if (pool == NULL)
    return NULL;
  pool->agent = agent;
  snprintf(pool->host, sizeof(pool->host), "%s", req->host);
  pool->port = req->port;
  if (req->tls != NULL) {
    pool->tls = req->tls;
    lc__tls_ctx_ref(pool->tls);
    memcpy(pool->servername, req->servername, sizeof(pool->servername));
  }
  pool->next = agent->pools;
  agent->pools = pool;
  return pool;
}

/* Gives waiting requests the connections there are, from the loop. */
static void pool_schedule_serve(lc__http_pool *pool) {
  lc__http_client *cl = pool->agent->client;

  if (pool->serve_scheduled || pool->queue == NULL || cl->core->shutting_down)
    return;
  pool->serve_scheduled = 1;
  pool->agent->refs++;
  pool->serve_next = cl->serve;
  cl->serve = pool;
  client_arm(cl);
}

static lc__http_cconn *pool_pop_free(lc__http_pool *pool) {
  lc__http_cconn *cc = pool->free;

  if (cc != NULL) {
    pool->free = cc->next_free;
    cc->next_free = NULL;
    cc->in_free = 0;
    pool->nfree--;
  }
  return cc;
}

static void pool_enqueue(lc__http_pool *pool, lc__http_request *req) {
  req->next = NULL;
  if (pool->queue_tail != NULL)
    pool->queue_tail->next = req;
  else
    pool->queue = req;
  pool->queue_tail = req;
  pool->nqueued++;
  req->queued = 1;
  lc__http_request_arm(req);
}

static lc__http_request *pool_take(lc__http_pool *pool) {
  lc__http_request *req = pool->queue;

  if (req != NULL)
    lc__http_pool_dequeue(pool, req);
  return req;
}

void lc__http_pool_dequeue(lc__http_pool *pool, lc__http_request *req) {
  lc__http_request **pp, *prev = NULL;

  for (pp = &pool->queue; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
    if (*pp == req) {
      *pp = req->next;
      if (pool->queue_tail == req)
        pool->queue_tail = prev;
      pool->nqueued--;
      break;
    }
  }
  req->queued = 0;
  req->next = NULL;
  req->deadline = 0;
}

/* Puts req on cc: the reader expects its answer, the deadline is its own. */
static void cconn_attach(lc__http_cconn *cc, lc__http_request *req) {
  cc->req = req;
  cc->response_bytes = 0;
  cc->complete = 0;
  req->cc = cc;
  req->reused = cc->served > 0;
  if (cc->c != NULL)
    uv_ref((uv_handle_t *)&cc->c->tcp);
  cc->reader.limits = &req->limits;
  lc__http_reader_expect(&cc->reader, req->head_request);
  if (cc->connected) {
    req->deadline = 0;
    lc__conn_set_timeout(cc->c, req->timeout_ms);
    lc__http_request_flush(req);
  } else {
    lc__http_request_arm(req);
  }
}

static void pool_serve(lc__http_pool *pool) {
  lc__http_agent *agent = pool->agent;
  lc__http_cconn *cc;

  while (pool->queue != NULL) {
    if ((cc = pool_pop_free(pool)) != NULL)
      cconn_attach(cc, pool_take(pool));
    else if (pool->nconns < agent->opts.max_sockets)
      lc__http_pool_open(pool, pool_take(pool));
    else
      break;
  }
}

void lc__http_pool_acquire(lc__http_request *req) {
  lc__http_agent *agent = req->agent;
  lc__http_pool *pool = pool_of(agent, req);
  lc__http_cconn *cc;

  if (pool == NULL) {
    lc__http_request_fail_later(req, UV_ENOMEM, NULL);
    return;
  }
  req->pool = pool;
  if ((cc = pool_pop_free(pool)) != NULL) {
    cconn_attach(cc, req);
  } else if (pool->nconns < agent->opts.max_sockets) {
    lc__http_pool_open(pool, req);
  } else if (pool->nqueued < agent->opts.max_queue) {
    pool_enqueue(pool, req);
  } else {
    lc__http_request_fail_later(req, LC__HTTP_EQUEUEFULL, NULL);
  }
}

void lc__http_pool_release(lc__http_cconn *cc, int keep) {
  lc__http_pool *pool = cc->pool;
  lc__http_agent *agent = cc->agent;
  lc__http_request *next;

  if (pool == NULL || !keep) {
    lc__http_cconn_close(cc);
    return;
  }
  if ((next = pool_take(pool)) != NULL) {
    cconn_attach(cc, next);
    return;
  }
  if (!agent->opts.keep_alive || agent->closed ||
      pool->nfree >= agent->opts.max_free_sockets) {
    lc__http_cconn_close(cc);
    return;
  }
  cc->next_free = pool->free;
  cc->in_free = 1;
  pool->free = cc;
  pool->nfree++;
  /* An idle connection does not keep the process alive (as Node's). */
  uv_unref((uv_handle_t *)&cc->c->tcp);
  lc__conn_set_timeout(cc->c, cc->free_timeout_ms != 0
                                  ? cc->free_timeout_ms
                                  : agent->opts.free_timeout_ms);
}

/* Connections ------------------------------------------------------------------ */

static void cconn_fail(lc__http_cconn *cc, int err) {
  lc__http_request *req = cc->req;

  cc->dns = NULL;
  if (req != NULL) {
    req->cc = NULL;
    cc->req = NULL;
    lc__http_request_fail_later(req, err, NULL);
  }
  lc__http_cconn_close(cc);
}

static void cconn_connect(lc__http_cconn *cc,
                          const struct sockaddr_storage *addr) {
  lc__http_agent *agent = cc->agent;
  uint64_t timeout = agent->opts.connect_timeout_ms;
  int err;

  if (cc->req != NULL && cc->req->timeout_ms != 0 &&
      cc->req->timeout_ms < timeout)
    timeout = cc->req->timeout_ms;
  err = lc__conn_connect(agent->client->core, (const struct sockaddr *)addr,
                         NULL, &lc__http_client_conn_ops, cc, timeout, &cc->c);
  if (err == 0 && cc->pool->tls != NULL) {
    /* HTTPS: the handshake follows the connect, bounded alike. */
    lc__tls_client_options o;

    memset(&o, 0, sizeof(o));
    o.servername = cc->pool->servername;
    o.handshake_timeout_ms = agent->opts.connect_timeout_ms;
    err = lc__tls_client_start(cc->c, cc->pool->tls, &o);
  }
  if (err)
    cconn_fail(cc, err);
}

static void on_resolved(lc__dns_req *dreq, int status,
                        const struct addrinfo *res, void *data) {
  lc__http_cconn *cc = data;
  struct sockaddr_storage ss;

  (void)dreq;
  cc->dns = NULL;
  if (status == 0 && cc->pool != NULL)
    status = lc__dns_pick(res, cc->pool->port, &ss);
  if (status != 0 || cc->pool == NULL) {
    cconn_fail(cc, status != 0 ? status : UV_ECANCELED);
    return;
  }
  cconn_connect(cc, &ss);
}

void lc__http_pool_open(lc__http_pool *pool, lc__http_request *req) {
  lc__http_agent *agent = pool->agent;
  struct sockaddr_storage ss;
  lc__http_cconn *cc = calloc(1, sizeof(*cc));
  int err;

  if (cc == NULL) {
    if (req != NULL)
      lc__http_request_fail_later(req, UV_ENOMEM, NULL);
    return;
  }
  cc->agent = agent;
  cc->pool = pool;
  agent->refs++;
  pool->nconns++;
  pool->opened++;
  lc__http_reader_init_response(&cc->reader, &agent->limits,
                                &lc__http_client_reader_cb, cc);
  if (req != NULL)
    cconn_attach(cc, req);
  if (lc__dns_numeric(pool->host, pool->port, &ss) == 0) {
    cconn_connect(cc, &ss);
    return;
  }
  err = lc__dns_lookup(agent->client->core, pool->host, 0, on_resolved, cc,
                       &cc->dns);
  if (err)
    cconn_fail(cc, err);
}

void lc__http_cconn_leave(lc__http_cconn *cc) {
  lc__http_pool *pool = cc->pool;
  lc__http_cconn **pp;

  if (pool == NULL)
    return;
  if (cc->in_free) {
    for (pp = &pool->free; *pp != NULL; pp = &(*pp)->next_free) {
      if (*pp == cc) {
        *pp = cc->next_free;
        break;
      }
    }
    cc->in_free = 0;
    pool->nfree--;
  }
  cc->pool = NULL;
  pool->nconns--;
  pool_schedule_serve(pool);
}

void lc__http_cconn_close(lc__http_cconn *cc) {
  lc__http_cconn_leave(cc);
  if (cc->c != NULL) {
    lc__conn_close(cc->c); /* freed by its on_close */
  } else if (cc->dns != NULL) {
    lc__dns_cancel(cc->dns);
    lc__http_cconn_free(cc);
  } else {
    lc__http_cconn_free(cc);
  }
}

void lc__http_cconn_free(lc__http_cconn *cc) {
  lc__http_agent *agent = cc->agent;

  if (cc->req != NULL) {
    cc->req->cc = NULL;
    cc->req = NULL;
  }
  lc__http_reader_free(&cc->reader);
  lc__buf_free(&cc->pending);
  free(cc);
  lc__http_agent_unref(agent);
}
