/*
 * http_client.c - the HTTP/1.1 client (http_client.h): requests, and the
 * protocol over the connections an agent keeps (http_agent.c).
 *
 * A request keeps its bytes (head and body as framed) in one buffer. While
 * a retry is possible (an idempotent request, under 64 KiB, no response
 * byte yet) the buffer is kept whole after it is written, so it can go out
 * again on a new connection; otherwise it is dropped as it is written.
 *
 * The response is read by the codec's response reader on the connection.
 * Its completion pauses the reader so that the request is finished outside
 * the parser: the connection goes back to the agent first (so a request
 * made in on_end can reuse it at once), then on_end and on_close run.
 *
 * Nothing is called back from inside an lc__http_request_* call: errors
 * found there, aborts and resumed reads go through the client's deferred
 * list, run from a check handle in the same loop iteration.
 */
#include <stdlib.h>
#include <string.h>

#include "http_client_int.h"

#define HIGH_WATER_MARK (16 * 1024)
#define RETRY_KEEP_MAX (64 * 1024)

/* Deferred work (client->deferred). */
#define DEFER_FINISH 1 /* tell the error (if any), then close */
#define DEFER_RESUME 2 /* feed what a paused response left */
#define DEFER_DRAIN 4  /* the body waiting for a connection went out */

/* Requests ------------------------------------------------------------------ */

void *lc__http_request_data(lc__http_request *req) { return req->data; }

int lc__http_request_reused(const lc__http_request *req) {
  return req->reused;
}

static int method_is(const char *method, const char *const *list, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (strcmp(method, list[i]) == 0)
      return 1;
  return 0;
}

static int is_idempotent(const char *method) {
  static const char *const list[] = {"GET",    "HEAD",    "PUT",
                                     "DELETE", "OPTIONS", "TRACE"};

  return method_is(method, list, sizeof(list) / sizeof(list[0]));
}

int lc__http_request_new(lc__http_agent *agent,
                         const lc__http_request_options *opts,
                         const lc__http_request_cb *cb, void *data,
                         lc__http_request **out) {
  lc__http_request *req;
  size_t host_len = opts->host ? strlen(opts->host) : 0;

  *out = NULL;
  if (host_len == 0 || host_len >= sizeof(req->host) || opts->port <= 0 ||
      opts->port > 65535 || opts->method == NULL)
    return UV_EINVAL;
  req = calloc(1, sizeof(*req));
  if (req == NULL)
    return UV_ENOMEM;
  req->agent = agent;
  req->cb = cb;
  req->data = data;
  req->limits = opts->limits;
  req->timeout_ms = opts->timeout_ms;
  memcpy(req->host, opts->host, host_len + 1);
  req->port = opts->port;
  if (opts->tls != NULL) {
    req->tls = opts->tls;
    lc__tls_ctx_ref(req->tls);
    snprintf(req->servername, sizeof(req->servername), "%s",
             opts->servername != NULL ? opts->servername : opts->host);
  }
  req->head_request = strcmp(opts->method, "HEAD") == 0;
  req->idempotent = is_idempotent(opts->method);
  /* A retry needs a reused connection: only keep-alive agents have any. */
  req->keep_out = req->idempotent && agent->opts.keep_alive;
  lc__http_client_link(agent->client, req);
  agent->refs++;
  *out = req;
  return 0;
}

/* The last word: on_close, then the memory. */
void lc__http_request_free(lc__http_request *req) {
  lc__http_agent *agent = req->agent;

  if (req->deferred != 0)
    lc__http_client_undefer(agent->client, req);
  lc__http_client_unlink(agent->client, req);
  req->cb->on_close(req);
  lc__buf_free(&req->out);
  lc__tls_ctx_unref(req->tls);
  free(req);
  lc__http_agent_unref(agent);
}

/* Takes the request off its connection (which the caller closes or
 * reuses) or out of its queue. */
static void request_detach(lc__http_request *req) {
  if (req->cc != NULL) {
    req->cc->req = NULL;
    req->cc->reader.limits = &req->agent->limits;
    req->cc = NULL;
  }
  if (req->queued)
    lc__http_pool_dequeue(req->pool, req);
}

/* Fails the request from the loop: on_error, on_close. */
void lc__http_request_fail(lc__http_request *req, int err,
                           const char *reason) {
  if (req->done)
    return;
  req->done = 1;
  request_detach(req);
  if (!req->agent->client->core->shutting_down)
    req->cb->on_error(req, err, reason);
  lc__http_request_free(req);
}

/* Fails the request from inside an API call: told from the loop. */
void lc__http_request_fail_later(lc__http_request *req, int err,
                                 const char *reason) {
  lc__http_cconn *cc = req->cc;

  if (req->done)
    return;
  req->done = 1;
  req->err = err;
  req->reason = reason;
  request_detach(req);
  if (cc != NULL)
    lc__http_cconn_close(cc);
  lc__http_client_defer(req->agent->client, req, DEFER_FINISH);
}

void lc__http_request_abort(lc__http_request *req) {
  if (req->done)
    return;
  req->err = 0;
  lc__http_request_fail_later(req, 0, NULL);
}

void lc__http_request_set_timeout(lc__http_request *req, uint64_t ms) {
  req->timeout_ms = ms;
  if (req->cc != NULL && req->cc->connected)
    lc__conn_set_timeout(req->cc->c, ms);
  else if (req->deadline != 0 || req->queued)
    lc__http_request_arm(req);
}

/* A request waiting for a connection counts its timeout itself. */
void lc__http_request_arm(lc__http_request *req) {
  req->deadline = req->timeout_ms
                      ? uv_now(&req->agent->client->core->loop) + req->timeout_ms
                      : 0;
  if (req->deadline != 0)
    lc__http_client_sweep_start(req->agent->client);
}

/* Whether a failure on the request's connection may be retried. */
static int can_retry(const lc__http_request *req, const lc__http_cconn *cc) {
  return cc->served > 0 && !cc->response_bytes && req->keep_out &&
         !req->retried && !req->responded;
}

/* Fails req, whose connection cc is broken: the connection leaves the
 * pool first, so the user sees the pool as it is. */
static void fail_on(lc__http_cconn *cc, lc__http_request *req, int err,
                    const char *reason) {
  request_detach(req);
  lc__http_cconn_close(cc);
  lc__http_request_fail(req, err, reason);
}

/* The connection failed under the request before any response byte: on a
 * reused connection an idempotent request goes once more on a new one. */
static void request_lost(lc__http_request *req, lc__http_cconn *cc, int err,
                         int later) {
  if (can_retry(req, cc)) {
    request_detach(req);
    lc__http_cconn_close(cc);
    req->retried = 1;
    req->out_sent = 0;
    lc__http_pool_open(req->pool, req);
    return;
  }
  if (later)
    lc__http_request_fail_later(req, err, "socket hang up");
  else
    fail_on(cc, req, err, "socket hang up");
}

/* Writes what the request has that its connection has not sent. */
void lc__http_request_flush(lc__http_request *req) {
  lc__http_cconn *cc = req->cc;
  size_t n = req->out.len - req->out_sent;
  int err;

  if (cc == NULL || !cc->connected || n == 0)
    return;
  err = lc__conn_write(cc->c, req->out.base + req->out_sent, n);
  if (err) {
    request_lost(req, cc, err, 1);
    return;
  }
  req->out_sent = req->out.len;
  if (!req->keep_out) {
    lc__buf_reset(&req->out);
    req->out_sent = 0;
  }
  /* Written at once: no write callback will say so. */
  if (req->want_drain && lc__conn_write_queue(cc->c) == 0)
    lc__http_client_defer(req->agent->client, req, DEFER_DRAIN);
}

static int write_head(lc__http_request *req, const lc__http_request_line *line,
                      const lc__http_header *headers, size_t nheaders,
                      int64_t length) {
  lc__http_request_line l = *line;
  int err;

  l.content_length = length;
  l.keep_alive = req->agent->opts.keep_alive;
  err = lc__http_write_request_head(&req->out, &l, headers, nheaders);
  if (err)
    return err;
  req->chunked = l.chunked;
  req->head_sent = 1;
  return 0;
}

int lc__http_request_send(lc__http_request *req,
                          const lc__http_request_line *line,
                          const lc__http_header *headers, size_t nheaders,
                          const char *body, size_t len, int finish) {
  int first = !req->head_sent, err;

  if (req->done || req->finished)
    return LC__HTTP_GONE;
  if (first) {
    err = write_head(req, line, headers, nheaders, finish ? (int64_t)len : -1);
    if (err)
      return err;
  }
  if (len > 0 && !req->head_request) {
    if (req->chunked)
      err = lc__http_write_chunk(&req->out, body, len);
    else
      err = lc__buf_append(&req->out, body, len);
    if (err)
      return err;
  }
  if (finish) {
    req->finished = 1;
    if (req->chunked && lc__http_write_last_chunk(&req->out) != 0)
      return UV_ENOMEM;
  }
  if (req->out.len > RETRY_KEEP_MAX)
    req->keep_out = 0;
  if (first)
    lc__http_pool_acquire(req);
  else
    lc__http_request_flush(req);
  return 0;
}

int lc__http_request_backlogged(lc__http_request *req) {
  size_t waiting = req->out.len - req->out_sent;

  if (req->done)
    return 0;
  if (req->cc != NULL && req->cc->c != NULL)
    waiting += lc__conn_write_queue(req->cc->c);
  if (waiting < HIGH_WATER_MARK)
    return 0;
  req->want_drain = 1;
  return 1;
}

void lc__http_request_pause(lc__http_request *req, int pause) {
  lc__http_cconn *cc = req->cc;

  req->user_paused = pause;
  if (cc == NULL || cc->c == NULL)
    return;
  if (pause) {
    lc__conn_pause(cc->c);
  } else if (cc->paused) {
    lc__http_client_defer(req->agent->client, req, DEFER_RESUME);
  } else if (cc->connected) {
    lc__conn_resume(cc->c);
  }
}

/* The response --------------------------------------------------------------- */

/* "Keep-Alive: timeout=5": the server closes idle connections after 5 s;
 * ours close a second before. Returns ms, or 0 without a hint. */
static uint64_t keep_alive_hint(const lc__http_head *head) {
  const char *v, *p;
  size_t i;
  long n;

  for (i = 0; i < head->nheaders; i++) {
    if (head->headers[i].name_len != 10 ||
        memcmp(head->headers[i].name, "keep-alive", 10) != 0)
      continue;
    v = head->headers[i].value;
    for (p = v; p + 8 <= v + head->headers[i].value_len; p++) {
      if (lc__http_case_equal(p, "timeout=", 8)) {
        n = strtol(p + 8, NULL, 10);
        if (n <= 0)
          return 1;
        return n > 1 ? (uint64_t)(n - 1) * 1000 : 500;
      }
    }
  }
  return 0;
}

static int rd_head(void *arg, const lc__http_head *head) {
  lc__http_cconn *cc = arg;
  lc__http_request *req = cc->req;
  uint64_t hint = keep_alive_hint(head);

  if (req == NULL)
    return 1;
  if (hint != 0)
    cc->free_timeout_ms = hint;
  req->responded = 1;
  /* No retry once the answer started: the sent bytes may go. */
  if (req->keep_out) {
    req->keep_out = 0;
    if (req->out_sent == req->out.len) {
      lc__buf_reset(&req->out);
      req->out_sent = 0;
    }
  }
  if (req->cb->on_response(req, head) == 1 || req->user_paused)
    return 1;
  return cc->req != req; /* aborted inside: stop */
}

static int rd_body(void *arg, const char *data, size_t len) {
  lc__http_cconn *cc = arg;
  lc__http_request *req = cc->req;

  if (req == NULL)
    return 1;
  if (req->cb->on_body(req, data, len) == 1 || req->user_paused)
    return 1;
  return cc->req != req;
}

static int rd_complete(void *arg) {
  lc__http_cconn *cc = arg;

  cc->complete = 1;
  return 1; /* finish outside the parser */
}

const lc__http_reader_cb lc__http_client_reader_cb = {rd_head, rd_body,
                                                      rd_complete};

/* The whole response was read: the connection goes back (or closes), then
 * the request hears the end and closes. */
static void response_done(lc__http_cconn *cc, int clean) {
  lc__http_request *req = cc->req;
  lc__http_agent *agent = req->agent;
  int keep;

  cc->complete = 0;
  lc__http_reader_resume(&cc->reader);
  keep = clean && agent->opts.keep_alive && !agent->closed &&
         lc__http_reader_keep_alive(&cc->reader) && req->finished &&
         req->out_sent == req->out.len && cc->c != NULL && !cc->c->closing &&
         !cc->c->eof && lc__buf_size(&cc->pending) == 0;
  cc->served++;
  req->done = 1;
  request_detach(req);
  lc__http_pool_release(cc, keep);
  req->cb->on_end(req);
  lc__http_request_free(req);
}

/* A reader error: the response is refused. */
static void response_refused(lc__http_cconn *cc, int status) {
  lc__http_request *req = cc->req;
  const char *reason = lc__http_reader_error(&cc->reader);
  int err = status == 431   ? LC__HTTP_EHEADERSIZE
            : status == 413 ? LC__HTTP_EBODYSIZE
                            : LC__HTTP_EBADRESPONSE;

  lc__log(LC__LOG_DEBUG, "bad response from %s:%d (%d): %s", req->host,
          req->port, status, reason ? reason : "?");
  fail_on(cc, req, err, reason);
}

/* Feeds response bytes; keeps what a pause leaves. */
static void cc_feed(lc__http_cconn *cc, const char *data, size_t len) {
  lc__http_request *req = cc->req;
  size_t used;
  int status = 0;

  used = lc__http_reader_feed(&cc->reader, data, len, &status);
  if (cc->req != req || req == NULL) {
    /* aborted from a callback: the connection is closing */
    return;
  }
  if (status != 0) {
    response_refused(cc, status);
    return;
  }
  if (cc->complete) {
    /* Bytes after the response were not asked for: no reuse. */
    response_done(cc, used == len);
    return;
  }
  if (used < len || cc->reader.paused) {
    /* Paused by the user: keep the rest until lc__http_request_pause(0). */
    if (used < len &&
        lc__buf_append(&cc->pending, data + used, len - used) != 0) {
      fail_on(cc, req, UV_ENOMEM, NULL);
      return;
    }
    cc->paused = 1;
    lc__conn_pause(cc->c);
  }
}

/* The server ended the stream (after any paused bytes were read). */
static void cc_end_of_stream(lc__http_cconn *cc) {
  lc__http_request *req = cc->req;

  if (!cc->response_bytes) {
    request_lost(req, cc, UV_ECONNRESET, 0);
    return;
  }
  if (lc__http_reader_eof(&cc->reader) != 0) {
    /* Cut short: a close inside the head or the body. */
    fail_on(cc, req, UV_ECONNRESET, lc__http_reader_error(&cc->reader));
    return;
  }
  if (cc->req != req)
    return;
  if (cc->complete) {
    response_done(cc, 0); /* a body that ended with the connection */
    return;
  }
  /* Nothing but informational responses came. */
  fail_on(cc, req, UV_ECONNRESET, "socket hang up");
}

/* Feeds what a paused response left (from the loop, deferred). */
static void cc_resume(lc__http_cconn *cc) {
  lc__http_request *req = cc->req;
  lc__buf rest;

  if (req == NULL || req->user_paused || !cc->paused)
    return;
  cc->paused = 0;
  lc__http_reader_resume(&cc->reader);
  rest = cc->pending;
  memset(&cc->pending, 0, sizeof(cc->pending));
  if (lc__buf_size(&rest) > 0)
    cc_feed(cc, lc__buf_data(&rest), lc__buf_size(&rest));
  lc__buf_free(&rest);
  if (cc->req != req || cc->paused || cc->c == NULL || cc->c->closing)
    return;
  if (cc->c->eof)
    cc_end_of_stream(cc);
  else
    lc__conn_resume(cc->c);
}

/* Deferred work, from the client's check handle. */
void lc__http_request_deferred(lc__http_request *req, int what) {
  if (what & DEFER_FINISH) {
    if (req->err != 0 && !req->agent->client->core->shutting_down)
      req->cb->on_error(req, req->err, req->reason);
    lc__http_request_free(req);
    return;
  }
  if ((what & DEFER_DRAIN) && req->want_drain && !req->done) {
    req->want_drain = 0;
    req->cb->on_drain(req);
  }
  if ((what & DEFER_RESUME) && !req->done && req->cc != NULL)
    cc_resume(req->cc);
}

/* Connection ops -------------------------------------------------------------- */

static void cc_on_open(lc__conn *c) {
  lc__http_cconn *cc = c->data;

  cc->connected = 1;
  if (cc->req == NULL) {
    /* Its request went away while it connected: someone else's now. */
    lc__http_pool_release(cc, cc->pool != NULL);
    return;
  }
  /* From now on the connection's deadline is the request's. */
  cc->req->deadline = 0;
  lc__conn_set_timeout(c, cc->req->timeout_ms);
  lc__http_request_flush(cc->req);
}

static void cc_on_read(lc__conn *c, const char *data, size_t len) {
  lc__http_cconn *cc = c->data;

  if (cc->req == NULL) {
    /* An idle connection has nothing to say: whatever it is, drop it. */
    lc__http_cconn_close(cc);
    return;
  }
  cc->response_bytes = 1;
  if (cc->paused) {
    lc__buf_append(&cc->pending, data, len);
    lc__conn_pause(c);
    return;
  }
  cc_feed(cc, data, len);
}

static void cc_on_eof(lc__conn *c) {
  lc__http_cconn *cc = c->data;

  if (cc->req == NULL) {
    /* The server closed an idle connection (its keep-alive timeout). */
    lc__http_cconn_close(cc);
    return;
  }
  if (cc->paused)
    return; /* read the rest first (cc_resume) */
  cc_end_of_stream(cc);
}


static void cc_on_timeout(lc__conn *c) {
  lc__http_cconn *cc = c->data;

  if (cc->req == NULL) {
    lc__http_cconn_close(cc); /* idle too long */
    return;
  }
  cc->req->cb->on_timeout(cc->req);
}

static void cc_on_drain(lc__conn *c) {
  lc__http_cconn *cc = c->data;
  lc__http_request *req = cc->req;

  if (req != NULL && req->want_drain) {
    req->want_drain = 0;
    req->cb->on_drain(req);
  }
}

static void cc_on_server_close(lc__conn *c) { (void)c; }

static void cc_on_error(lc__conn *c, int err) {
  lc__http_cconn *cc = c->data;
  lc__http_request *req = cc->req;

  if (req == NULL) {
    lc__http_cconn_leave(cc);
    return;
  }
  if (!cc->connected) {
    fail_on(cc, req, err, NULL); /* refused, timed out, ... */
    return;
  }
  request_lost(req, cc, err, 0);
}

static void cc_on_close(lc__conn *c) {
  lc__http_cconn *cc = c->data;

  if (cc->req != NULL)
    lc__http_request_fail(cc->req, UV_ECONNRESET, "socket hang up");
  lc__http_cconn_leave(cc);
  lc__http_cconn_free(cc);
}

const lc__conn_ops lc__http_client_conn_ops = {
    cc_on_open,  cc_on_read,         cc_on_eof,   cc_on_timeout,
    cc_on_drain, cc_on_server_close, cc_on_error, cc_on_close};
