/*
 * http_server.c - the HTTP/1.1 server protocol over a connection
 * (http_server.h).
 *
 * One request is answered at a time per connection, in order: when a
 * response is still being written (asynchronously) as the next pipelined
 * request arrives, parsing pauses and the unread bytes wait; they are
 * parsed once the response finishes. Responses written while the
 * connection is reading are batched and sent with one write at the end of
 * the read, so pipelined requests get one write for many answers. A client
 * that pipelines and does not read its answers is not read from either:
 * once 64 KiB of answers wait to be sent, parsing pauses until they are out.
 *
 * Deadlines (tcp.c's sweeper) stand for: the idle keep-alive timeout
 * between requests, the header timeout while a head arrives (slow clients
 * get 408), the request timeout while a handler runs, and the grace given
 * to idle connections when the server closes.
 *
 * Closing the server (or a worker's disconnect) never resets a connection:
 * a busy one gets "Connection: close" on its current response; an idle one
 * is closed after a short grace, or answered with "Connection: close" if a
 * request arrives first. Nothing after an answer that says "Connection:
 * close" is read. A client's FIN after whole requests gets them answered
 * first; a FIN inside a request aborts it, as it can never end.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_server.h"

#define DRAIN_GRACE_MS 1000
#define HIGH_WATER_MARK (16 * 1024)
#define READ_PAUSE_AT (64 * 1024) /* answers waiting: stop reading requests */
#define KEEP_OUT_BUFFER_MAX (256 * 1024)

struct lc__http_conn {
  lc__conn *c;
  lc__http_server *cfg;
  lc__http_reader reader;
  lc__buf pending; /* unparsed bytes, kept while parsing is paused */
  lc__buf out;     /* response bytes waiting for the end of this read */
  void *data;      /* the user's */
  uint32_t seq;    /* the request being answered */
  int in_read;     /* inside on_read: flush at its end */
  int busy;        /* a request is being answered */
  int complete;    /* its whole request has been read */
  int head_sent;
  int chunked;
  int no_body;
  int64_t declared; /* the response's Content-Length, or -1 */
  uint64_t body_sent;
  int keep_alive;  /* the current request allows another */
  int close_after; /* end the connection after the current response */
  int draining;    /* the server is closing */
  int paused;      /* parsing waits for a response to finish */
  int peer_done;   /* the client sent FIN: close once answered (what it
                      pipelined before; a pending answer is aborted) */
  int client_close; /* the client did not allow another request */
  int want_drain;  /* the user waits for on_drain */
  int out_full;    /* parsing waits for the answers to be sent */
  int armed;       /* which deadline is set (ARM_*) */
  int major, minor;
  int head_request;
  lc__http_conn *resume_next; /* in the resume queue */
  int queued;
  uint64_t started_ms; /* when the current request's head arrived */
};

/* Connections whose parsing resumes at the next loop iteration (a response
 * finished from outside a read: resuming inline would run the next
 * request's handler inside the previous response's finish()). */
struct lc__http_state {
  lc__owner owner;
  uv_check_t check;
  uv_idle_t idle;
  int open; /* handles not closed yet */
  lc__http_conn *head;
};

static void hconn_feed(lc__http_conn *h, const char *data, size_t len);
static void hconn_flush(lc__http_conn *h);
static int hconn_cut_short(lc__http_conn *h);

void lc__http_server_init(lc__http_server *server,
                          const lc__http_server_cb *cb) {
  memset(server, 0, sizeof(*server));
  lc__http_limits_init(&server->limits);
  server->keep_alive_timeout_ms = 5000;
  server->headers_timeout_ms = 60000;
  server->request_timeout_ms = 300000;
  server->cb = cb;
}

/* Deadlines ------------------------------------------------------------------- */

enum { ARM_NONE, ARM_IDLE, ARM_HEAD, ARM_REQUEST, ARM_DRAIN, ARM_SEND };

/* Sets the deadline for the connection's state, when the state changed. */
static void hconn_arm(lc__http_conn *h) {
  uint64_t ms;
  int armed;

  if (h->c->shutdown || h->c->closing)
    return;
  if (h->busy) {
    armed = ARM_REQUEST;
    ms = h->cfg->request_timeout_ms;
  } else if (h->out_full) {
    /* Waiting on a client that does not read: as long as for a handler. */
    armed = ARM_SEND;
    ms = h->cfg->request_timeout_ms;
  } else if (lc__http_reader_in_head(&h->reader)) {
    armed = ARM_HEAD;
    ms = h->cfg->headers_timeout_ms;
  } else if (h->draining) {
    armed = ARM_DRAIN;
    ms = DRAIN_GRACE_MS;
  } else {
    armed = ARM_IDLE;
    ms = h->cfg->keep_alive_timeout_ms;
  }
  if (armed == h->armed)
    return;
  h->armed = armed;
  lc__conn_set_timeout(h->c, ms);
  /* A head's deadline is fixed from its first byte: a slow client
   * trickling bytes must not push it. */
  if (armed == ARM_HEAD)
    h->c->timeout_ms = 0;
}

/* Resuming after a response --------------------------------------------------- */

static void on_resume_check(uv_check_t *handle) {
  lc__http_state *st = handle->data;
  lc__http_conn *h;

  while ((h = st->head) != NULL) {
    st->head = h->resume_next;
    h->queued = 0;
    h->resume_next = NULL;
    if (h->c->closing || h->busy)
      continue;
    lc__http_reader_resume(&h->reader);
    h->paused = 0;
    h->in_read = 1;
    if (lc__buf_size(&h->pending) > 0) {
      /* Parse a copy: parsing may pause again and keep the rest. */
      lc__buf rest = h->pending;
      memset(&h->pending, 0, sizeof(h->pending));
      hconn_feed(h, lc__buf_data(&rest), lc__buf_size(&rest));
      lc__buf_free(&rest);
    }
    h->in_read = 0;
    hconn_flush(h);
    if (hconn_cut_short(h))
      continue;
    if (!h->busy && !h->c->closing)
      hconn_arm(h);
    if (!h->paused && !h->c->closing)
      lc__conn_resume(h->c);
  }
  uv_check_stop(&st->check);
  uv_idle_stop(&st->idle);
}

static void on_resume_idle(uv_idle_t *handle) { (void)handle; }

static void state_on_closed(uv_handle_t *handle) {
  lc__http_state *st = handle->data;

  /* Two handles: the memory goes with the second. */
  if (--st->open == 0)
    free(st);
}

static void state_close(uv_handle_t *handle) {
  lc__http_state *st = handle->data;

  uv_close((uv_handle_t *)&st->check, state_on_closed);
  uv_close((uv_handle_t *)&st->idle, state_on_closed);
}

static void state_forget(void *arg) {
  ((lc__core *)arg)->http = NULL;
}

static lc__http_state *state_of(lc__core *core) {
  lc__http_state *st = core->http;

  if (st != NULL)
    return st;
  st = calloc(1, sizeof(*st));
  if (st == NULL || lc__core_on_close(core, state_forget, core) != 0) {
    free(st);
    return NULL;
  }
  st->owner.close = state_close;
  uv_check_init(&core->loop, &st->check);
  uv_idle_init(&core->loop, &st->idle);
  st->check.data = st;
  st->idle.data = st;
  st->open = 2;
  core->http = st;
  return st;
}

static void hconn_schedule_resume(lc__http_conn *h) {
  lc__http_state *st;

  if (h->queued)
    return;
  st = state_of(h->c->core);
  if (st == NULL) {
    lc__conn_close(h->c);
    return;
  }
  h->queued = 1;
  h->resume_next = st->head;
  st->head = h;
  uv_check_start(&st->check, on_resume_check);
  uv_idle_start(&st->idle, on_resume_idle);
}

static void hconn_forget_resume(lc__http_conn *h) {
  lc__http_conn **pp;

  for (pp = &h->c->core->http->head; *pp != NULL; pp = &(*pp)->resume_next) {
    if (*pp == h) {
      *pp = h->resume_next;
      break;
    }
  }
  h->queued = 0;
}

/* Statistics (the heartbeat reports them) ------------------------------------ */

const unsigned lc__stats_bounds_ms[LC__STATS_BUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

/* Timed with the loop's clock (milliseconds, read once per iteration), as
 * nginx's $request_time: two clock reads per request would cost more than
 * a hello-world handler. */
static void stats_begin(lc__http_conn *h) {
  h->started_ms = uv_now(&h->c->core->loop);
  h->c->core->stats.in_flight++;
}

/* The request being answered is over: answered (counted, timed) or not. */
static void stats_end(lc__http_conn *h, int answered) {
  lc__req_stats *st = &h->c->core->stats;
  uint64_t us = (uv_now(&h->c->core->loop) - h->started_ms) * 1000;
  size_t i;

  if (st->in_flight > 0)
    st->in_flight--;
  if (!answered)
    return;
  st->requests++;
  st->duration_us_sum += us;
  for (i = 0; i < LC__STATS_BUCKETS - 1; i++)
    if (us <= (uint64_t)lc__stats_bounds_ms[i] * 1000)
      break;
  st->buckets[i]++;
}

/* Responses ------------------------------------------------------------------- */

/* Answers a bad or timed-out request and ends the connection; when part
 * of a response is already out, there is nothing to do but drop it. */
static void hconn_error(lc__http_conn *h, int status) {
  if (h->busy && h->head_sent) {
    lc__conn_close(h->c);
    return;
  }
  /* A HEAD this connection reported gets no body; one refused before its
   * head was read cannot be told from another method. */
  lc__http_write_error(&h->out, status, h->busy && h->head_request);
  if (h->busy)
    stats_end(h, 1);
  h->busy = 0;
  h->close_after = 1;
  hconn_flush(h);
}

/* Answers waiting to be sent (batched or queued) are past the point where
 * reading more requests stops. */
static int hconn_output_full(lc__http_conn *h) {
  return lc__buf_size(&h->out) + lc__conn_write_queue(h->c) >= READ_PAUSE_AT;
}

/* Parsing paused for answers to go out: it resumes once they have. */
static void hconn_maybe_unblock(lc__http_conn *h) {
  if (!h->out_full || lc__conn_write_queue(h->c) > 0 || h->c->closing)
    return;
  h->out_full = 0;
  h->armed = ARM_NONE;
  hconn_schedule_resume(h);
}

/* Sends what is batched; ends the connection when the response says so. */
static void hconn_flush(lc__http_conn *h) {
  lc__conn *c = h->c;

  if (lc__buf_size(&h->out) > 0) {
    int err = lc__conn_write(c, lc__buf_data(&h->out), lc__buf_size(&h->out));
    lc__buf_reset(&h->out);
    if (h->out.cap > KEEP_OUT_BUFFER_MAX)
      lc__buf_free(&h->out);
    if (err) {
      lc__conn_close(c);
      return;
    }
  }
  hconn_maybe_unblock(h);
  if (h->busy || c->closing)
    return;
  if (h->close_after && h->client_close && h->complete &&
      lc__buf_size(&h->pending) == 0) {
    /* The client asked to close and sent nothing more: close once the
     * answer is out, as nginx does; no lingering needed. */
    lc__conn_close_when_written(c);
  } else if (h->close_after ||
             (h->peer_done && !h->paused && lc__buf_size(&h->pending) == 0)) {
    lc__conn_shutdown(c);
  }
}

/* The current response is complete. */
static void hconn_response_done(lc__http_conn *h) {
  stats_end(h, 1);
  h->busy = 0;
  h->head_sent = 0;
  h->armed = ARM_NONE;
  if (h->c->server != NULL)
    h->c->server->requests++;
  if (h->close_after)
    return; /* the flush shuts the connection down */
  if (h->complete && h->paused) {
    if (h->in_read) {
      lc__http_reader_resume(&h->reader);
      h->paused = 0;
    } else {
      hconn_schedule_resume(h);
    }
  }
  hconn_arm(h);
}

/* The Content-Length the app declared: -1 when none (or Transfer-Encoding
 * frames the body instead), UV_EINVAL when it is not a number or two
 * disagree. */
static int64_t declared_length(const lc__http_reply *head) {
  const lc__http_header *hd;
  int64_t found = -1, v;
  size_t i, j;

  for (i = 0; i < head->nheaders; i++) {
    hd = &head->headers[i];
    if (hd->name_len == 17 && !strncasecmp(hd->name, "transfer-encoding", 17))
      return -1;
  }
  for (i = 0; i < head->nheaders; i++) {
    hd = &head->headers[i];
    if (hd->name_len != 14 || strncasecmp(hd->name, "content-length", 14))
      continue;
    if (hd->value_len == 0 || hd->value_len > 18)
      return UV_EINVAL;
    for (v = 0, j = 0; j < hd->value_len; j++) {
      if (hd->value[j] < '0' || hd->value[j] > '9')
        return UV_EINVAL;
      v = v * 10 + (hd->value[j] - '0');
    }
    if (found >= 0 && found != v)
      return UV_EINVAL;
    found = v;
  }
  return found;
}

static int hconn_write_head(lc__http_conn *h, const lc__http_reply *head,
                            int64_t content_length) {
  lc__http_response res;
  int err;

  memset(&res, 0, sizeof(res));
  res.status = head->status;
  res.reason = head->reason;
  res.major = h->major;
  res.minor = h->minor;
  res.head_request = h->head_request;
  res.keep_alive = h->keep_alive && !h->close_after;
  res.content_length = content_length;
  err = lc__http_write_head(&h->out, &res, head->headers, head->nheaders);
  if (err)
    return err;
  h->head_sent = 1;
  h->chunked = res.chunked;
  h->no_body = res.no_body;
  if (!res.keep_alive)
    h->close_after = 1;
  return 0;
}

/* The body may not pass the length the head declared: bytes past it would
 * be read as the next response on a keep-alive connection. */
static int hconn_check_length(lc__http_conn *h, const lc__http_reply *head,
                              size_t len, int finish) {
  if (!h->head_sent) {
    h->declared = declared_length(head);
    if (h->declared == UV_EINVAL)
      return UV_EINVAL;
    /* HEAD, 1xx, 204 and 304 carry no body: the writer drops it. */
    if (h->head_request || head->status < 200 || head->status == 204 ||
        head->status == 304)
      h->declared = -1;
  }
  if (h->declared < 0)
    return 0;
  if (h->body_sent + len > (uint64_t)h->declared) {
    h->close_after = 1; /* what follows cannot be trusted: end with it */
    return LC__HTTP_TOO_LONG;
  }
  if (finish && h->body_sent + len < (uint64_t)h->declared) {
    lc__log(LC__LOG_WARN, "response ended after %llu of its %lld declared "
            "bytes: closing the connection",
            (unsigned long long)(h->body_sent + len), (long long)h->declared);
    h->close_after = 1; /* the client waits for bytes that never come */
  }
  return 0;
}

int lc__http_respond(lc__http_conn *h, uint32_t seq,
                     const lc__http_reply *head, const char *chunk,
                     size_t len, int finish) {
  int err;

  if (h == NULL || h->seq != seq || !h->busy || h->c->closing)
    return LC__HTTP_GONE;
  err = hconn_check_length(h, head, len, finish);
  if (err)
    return err;
  if (!h->head_sent) {
    err = hconn_write_head(h, head, finish ? (int64_t)len : -1);
    if (err)
      return err;
  }
  h->body_sent += len;
  if (len > 0 && !h->no_body) {
    if (h->chunked)
      lc__http_write_chunk(&h->out, chunk, len);
    else
      lc__buf_append(&h->out, chunk, len);
  }
  if (finish) {
    if (h->chunked && !h->no_body)
      lc__http_write_last_chunk(&h->out);
    hconn_response_done(h);
  }
  /* Batched until the end of the read, unless a body streams out. */
  if (!h->in_read || lc__buf_size(&h->out) >= HIGH_WATER_MARK)
    hconn_flush(h);
  return 0;
}

int lc__http_backlogged(lc__http_conn *h) {
  if (h->c->closing || lc__conn_write_queue(h->c) < HIGH_WATER_MARK)
    return 0;
  h->want_drain = 1;
  return 1;
}

void lc__http_conn_destroy(lc__http_conn *h) {
  lc__conn *c = h->c;

  if (c->closing || c->shutdown)
    return;
  /* What is batched goes out, then the connection ends the way a "close"
   * response does: nothing more is answered, and the client reads what
   * was sent before it sees the end. */
  h->close_after = 1;
  h->seq++; /* the handler's late writes go nowhere */
  if (lc__buf_size(&h->out) > 0) {
    int err = lc__conn_write(c, lc__buf_data(&h->out), lc__buf_size(&h->out));
    lc__buf_reset(&h->out);
    if (err) {
      lc__conn_close(c);
      return;
    }
  }
  lc__conn_shutdown(c);
}

uint32_t lc__http_conn_seq(const lc__http_conn *h) { return h->seq; }

int lc__http_conn_peer(lc__http_conn *h, char *ip, size_t size, int *port) {
  return lc__conn_peer(h->c, ip, size, port);
}

void **lc__http_conn_data(lc__http_conn *h) { return &h->data; }

lc__server *lc__http_conn_server(lc__http_conn *h) { return h->c->server; }

lc__conn *lc__http_conn_conn(lc__http_conn *h) { return h->c; }

/* Reading --------------------------------------------------------------------- */

/* Reading stops once the connection closes or its answer said "Connection:
 * close": nothing after that answer is read, not even the rest of the read
 * it came in (http_on_read drops later reads). */
static int hconn_done_reading(const lc__http_conn *h) {
  return h->c->closing || (h->close_after && !h->busy);
}

static int on_head(void *arg, const lc__http_head *head) {
  lc__http_conn *h = arg;
  int status;

  h->seq++;
  h->busy = 1;
  stats_begin(h);
  h->armed = ARM_NONE;
  h->complete = 0;
  h->head_sent = 0;
  h->declared = -1;
  h->body_sent = 0;
  h->keep_alive = head->keep_alive;
  h->major = head->major;
  h->minor = head->minor;
  h->head_request = head->method[0] == 'H' && strcmp(head->method, "HEAD") == 0;
  h->client_close = !head->keep_alive;
  if (h->draining || !head->keep_alive)
    h->close_after = 1;
  hconn_arm(h);
  if (head->expect_continue && head->major == 1 && head->minor >= 1)
    lc__http_write_continue(&h->out);
  status = h->c->server != NULL ? h->cfg->cb->on_request(h, head) : 503;
  if (status != 0) {
    hconn_error(h, status);
    return 1;
  }
  return hconn_done_reading(h);
}

static int on_body(void *arg, const char *data, size_t len) {
  lc__http_conn *h = arg;

  h->cfg->cb->on_body(h, data, len);
  return hconn_done_reading(h);
}

static int on_complete(void *arg) {
  lc__http_conn *h = arg;

  h->complete = 1;
  h->cfg->cb->on_end(h);
  if (h->c->closing || h->close_after)
    return 1; /* no next request: the answer ends the connection */
  if (h->busy) {
    /* Answer in order: the next request waits for this response. */
    h->paused = 1;
    return 1;
  }
  if (hconn_output_full(h)) {
    /* The client is not reading its answers: stop reading its requests. */
    h->paused = 1;
    h->out_full = 1;
    return 1;
  }
  return 0;
}

static const lc__http_reader_cb reader_cb = {on_head, on_body, on_complete};

/* The client sent FIN inside a request's body: that request can never
 * end, so it is aborted (on_abort, on_close) rather than left waiting for
 * the request timeout. 1 if the connection closes. */
static int hconn_cut_short(lc__http_conn *h) {
  if (!h->peer_done || !h->busy || h->complete)
    return 0;
  lc__conn_close(h->c);
  return 1;
}

static void hconn_feed(lc__http_conn *h, const char *data, size_t len) {
  size_t used;
  int status = 0;

  used = lc__http_reader_feed(&h->reader, data, len, &status);
  if (status != 0) {
    lc__log(LC__LOG_DEBUG, "bad request (%d): %s", status,
            lc__http_reader_error(&h->reader));
    hconn_error(h, status);
    return;
  }
  if (used < len && !h->c->closing && !h->close_after) {
    /* Paused: keep the rest for when the response is done. */
    lc__buf_append(&h->pending, data + used, len - used);
    lc__conn_pause(h->c);
  }
  if (!h->busy)
    hconn_arm(h);
}

/* Connection ops -------------------------------------------------------------- */

static void http_on_open(lc__conn *c) {
  lc__http_conn *h = calloc(1, sizeof(*h));

  if (h == NULL) {
    lc__conn_close(c);
    return;
  }
  h->c = c;
  h->cfg = c->server->proto;
  lc__http_reader_init(&h->reader, &h->cfg->limits, &reader_cb, h);
  c->data = h;
  if (c->server->state == LC__SERVER_CLOSING)
    h->draining = 1;
  hconn_arm(h);
}

static void http_on_read(lc__conn *c, const char *data, size_t len) {
  lc__http_conn *h = c->data;

  if (h == NULL || (h->close_after && !h->busy))
    return; /* answered with close: the rest is not read */
  if (h->paused) {
    lc__buf_append(&h->pending, data, len);
    lc__conn_pause(c);
    return;
  }
  h->in_read = 1;
  hconn_feed(h, data, len);
  h->in_read = 0;
  hconn_flush(h);
}

static void http_on_eof(lc__conn *c) {
  lc__http_conn *h = c->data;

  if (h != NULL && h->busy) {
    /* The client went away while its answer was pending (Node's rule for
     * a server that does not keep half-open connections): the app hears
     * "aborted", a late answer goes nowhere, and the connection ends after
     * what is queued. A drain never waits on it. */
    h->busy = 0;
    h->seq++;
    h->cfg->cb->on_abort(h);
    lc__conn_close_when_written(c);
    return;
  }
  /* The client is done sending: answer what it sent, then close. */
  if (h != NULL && (h->paused || lc__buf_size(&h->pending) > 0)) {
    h->peer_done = 1;
    return;
  }
  lc__conn_close(c);
}

static void http_on_timeout(lc__conn *c) {
  lc__http_conn *h = c->data;

  if (c->shutdown || h == NULL) {
    lc__conn_close(c);
    return;
  }
  if (!h->busy && lc__http_reader_in_head(&h->reader)) {
    hconn_error(h, 408); /* a slow client must not hold the worker */
    return;
  }
  if (h->busy && !h->head_sent) {
    lc__log(LC__LOG_WARN, "request timed out after %llu ms: answering 408",
            (unsigned long long)h->cfg->request_timeout_ms);
    h->seq++; /* the handler's late answer goes nowhere */
    hconn_error(h, 408);
    return;
  }
  lc__conn_close(c);
}

static void http_on_drain(lc__conn *c) {
  lc__http_conn *h = c->data;

  if (h == NULL)
    return;
  hconn_maybe_unblock(h);
  if (!h->want_drain)
    return;
  h->want_drain = 0;
  h->cfg->cb->on_drain(h);
}

static void http_on_server_close(lc__conn *c) {
  lc__http_conn *h = c->data;

  if (h == NULL)
    return;
  h->draining = 1;
  h->armed = ARM_NONE;
  if (h->busy || !lc__http_reader_idle(&h->reader) ||
      lc__buf_size(&h->pending) > 0)
    h->close_after = 1; /* "Connection: close" on the current response */
  else
    hconn_arm(h); /* idle: closed after a short grace */
}

static void http_on_error(lc__conn *c, int err) {
  (void)c;
  (void)err; /* a client that went away: nothing to tell anyone */
}

static void http_on_close(lc__conn *c) {
  lc__http_conn *h = c->data;

  if (h == NULL)
    return;
  c->data = NULL;
  if (h->queued)
    hconn_forget_resume(h);
  if (h->busy)
    stats_end(h, 0);
  if (!c->core->shutting_down && h->busy)
    h->cfg->cb->on_abort(h);
  h->cfg->cb->on_close(h);
  lc__http_reader_free(&h->reader);
  lc__buf_free(&h->pending);
  lc__buf_free(&h->out);
  free(h);
}

const lc__conn_ops lc__http_server_conn_ops = {
    http_on_open,  http_on_read,         http_on_eof,   http_on_timeout,
    http_on_drain, http_on_server_close, http_on_error, http_on_close};
