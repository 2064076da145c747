/*
 * redis.c - a Redis client's life: options, connecting (a lookup through
 * dns.c when the host is a name, then tcp.c), the set-up of each
 * connection, reconnecting, quitting and closing (redis.h).
 *
 *   CONNECTING --set-up answered--> READY --connection lost--> WAITING
 *        ^                                                       |
 *        +-------------------- backoff timer --------------------+
 *
 * Every connection attempt starts from the retry timer, the first one too,
 * so nothing is called back from inside lc__redis_new(). A new connection
 * first sends its set-up (AUTH, SELECT, CLIENT SETNAME, the renewed
 * subscriptions) ahead of the commands that waited, bounded by
 * connect_timeout_ms; when the set-up is answered the client is ready and
 * the waiting commands go out. A refused AUTH or SELECT is not a reason to
 * retry at once: the error is reported, waiting and new commands fail with
 * the server's words, and the next attempt comes after the longest backoff
 * (a password fixed on the server is picked up, no reconnect storm).
 *
 * The delay before attempt n is min(max, first * 2^(n-1)), of which a
 * random half is taken off ("equal jitter"), so the clients of many
 * workers do not come back at the same instant.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"
#include "sockets.h"

/* Set-up commands, told apart by their reply (lc__redis_cmd.expect). */
enum { SETUP_AUTH = 1, SETUP_SELECT, SETUP_NAME };

static const lc__conn_ops redis_conn_ops;
static void connect_start(lc__redis *r);
static void maybe_finish(lc__redis *r);

void lc__redis_options_init(lc__redis_options *o) {
  memset(o, 0, sizeof(*o));
  o->host = "127.0.0.1";
  o->port = 6379;
  o->connect_timeout_ms = 10000;
  o->command_timeout_ms = 10000;
  o->retry_delay_ms = 100;
  o->max_retry_delay_ms = 2000;
  o->max_offline = 10000;
  o->max_reply = 64 * 1024 * 1024;
}

void *lc__redis_data(const lc__redis *r) { return r->data; }
int lc__redis_state(const lc__redis *r) { return r->state; }
const char *lc__redis_last_error(const lc__redis *r) { return r->last_msg; }
void lc__redis_get_stats(const lc__redis *r, lc__redis_stats *out) {
  *out = r->stats;
}

/* Every state change goes through here: the process's counts of open and
 * ready clients (core->stats, for the master's metrics) follow it. */
static void set_state(lc__redis *r, int state) {
  lc__req_stats *st = &r->core->stats;

  if (r->state == 0)
    st->redis_clients++;
  if (r->state == LC__REDIS_READY)
    st->redis_ready--;
  if (state == LC__REDIS_READY)
    st->redis_ready++;
  if (state == LC__REDIS_CLOSED)
    st->redis_clients--;
  r->state = state;
}

const char *lc__redis_words(lc__redis *r, int status) {
  if (status == r->fatal && r->fatal != 0)
    return r->fatal_msg;
  switch (status) {
  case UV_ECANCELED:
    return "client closed";
  case UV_ENOBUFS:
    return "offline queue full";
  case UV_EMSGSIZE:
    return "reply too large";
  case UV_EAI_NONAME:
  case UV_EAI_NODATA:
    snprintf(r->words, sizeof(r->words), "%s could not be resolved (%s)",
             r->opts.host, lc__dns_error_code(status));
    return r->words;
  default:
    return lc__conn_strerror(status);
  }
}

/* Keeping the loop alive ------------------------------------------------------- */

static void set_handle_ref(uv_handle_t *h, int on) {
  if (on)
    uv_ref(h);
  else
    uv_unref(h);
}

void lc__redis_update_ref(lc__redis *r) {
  int want = r->allow_ref && r->state != LC__REDIS_CLOSED &&
             (r->npending > 0 || r->quitting || r->first_connect ||
              r->subscribed || lc__redis_subscriptions(r) > 0);

  if (want == r->refd)
    return;
  r->refd = want;
  set_handle_ref((uv_handle_t *)&r->timer, want);
  set_handle_ref((uv_handle_t *)&r->retry, want);
  if (r->conn != NULL)
    set_handle_ref((uv_handle_t *)&r->conn->tcp, want);
}

void lc__redis_set_ref(lc__redis *r, int ref) {
  r->allow_ref = ref != 0;
  lc__redis_update_ref(r);
}

/* Errors and retries ---------------------------------------------------------- */

/* Tells the owner about an error, unless it is the one told last. */
static void report(lc__redis *r, int err, const char *message) {
  if (err == r->last_err && strcmp(message, r->last_msg) == 0)
    return;
  r->last_err = err;
  /* a longer message is cut (the precision says so to the compiler) */
  snprintf(r->last_msg, sizeof(r->last_msg), "%.255s", message);
  if (r->ev->on_error != NULL && !r->core->shutting_down)
    r->ev->on_error(r, err, r->last_msg);
}

static uint64_t next_random(lc__redis *r) {
  /* xorshift64: jitter, not secrets */
  r->rng ^= r->rng << 13;
  r->rng ^= r->rng >> 7;
  r->rng ^= r->rng << 17;
  return r->rng;
}

static uint64_t backoff(lc__redis *r) {
  uint64_t delay = r->opts.retry_delay_ms, half;
  unsigned i;

  if (r->fatal)
    return r->opts.max_retry_delay_ms;
  for (i = 1; i < r->attempt && delay < r->opts.max_retry_delay_ms; i++)
    delay *= 2;
  if (delay > r->opts.max_retry_delay_ms)
    delay = r->opts.max_retry_delay_ms;
  half = delay / 2;
  return delay - (half > 0 ? next_random(r) % (half + 1) : 0);
}

static void on_retry(uv_timer_t *timer) { connect_start(timer->data); }

static void schedule_retry(lc__redis *r) {
  uint64_t delay;

  r->attempt++;
  delay = backoff(r);
  set_state(r, LC__REDIS_WAITING);
  r->first_connect = 0;
  lc__redis_update_ref(r);
  if (r->ev->on_reconnecting != NULL && !r->core->shutting_down)
    r->ev->on_reconnecting(r, delay, r->attempt);
  if (r->state == LC__REDIS_WAITING)
    uv_timer_start(&r->retry, on_retry, delay, 0);
}

static void connect_failed(lc__redis *r, int err, const char *message) {
  report(r, err, message);
  if (r->state == LC__REDIS_CONNECTING)
    schedule_retry(r);
}

/* The connection --------------------------------------------------------------- */

static void conn_open(lc__redis *r, const struct sockaddr_storage *ss) {
  char message[320];
  int err;

  err = lc__conn_connect(r->core, (const struct sockaddr *)ss, NULL,
                         &redis_conn_ops, r, r->opts.connect_timeout_ms,
                         &r->conn);
  if (err) {
    snprintf(message, sizeof(message), "connect %s %s", uv_err_name(err),
             r->where);
    connect_failed(r, err, message);
    return;
  }
  set_handle_ref((uv_handle_t *)&r->conn->tcp, r->refd);
}

static void on_resolved(lc__dns_req *req, int status,
                        const struct addrinfo *res, void *data) {
  lc__redis *r = data;
  struct sockaddr_storage ss;
  char message[320];

  (void)req;
  r->dns = NULL;
  if (status == 0)
    status = lc__dns_pick(res, r->opts.port, &ss);
  if (status != 0) {
    snprintf(message, sizeof(message), "getaddrinfo %s %s",
             lc__dns_error_code(status), r->opts.host);
    connect_failed(r, status, message);
    return;
  }
  conn_open(r, &ss);
}

static void connect_start(lc__redis *r) {
  struct sockaddr_storage ss;
  char message[320];
  int err;

  set_state(r, LC__REDIS_CONNECTING);
  if (lc__dns_numeric(r->opts.host, r->opts.port, &ss) == 0) {
    conn_open(r, &ss);
    return;
  }
  err = lc__dns_lookup(r->core, r->opts.host, 0, on_resolved, r, &r->dns);
  if (err) {
    snprintf(message, sizeof(message), "getaddrinfo %s %s", uv_err_name(err),
             r->opts.host);
    connect_failed(r, err, message);
  }
}

void lc__redis_conn_reset(lc__redis *r, int err, const char *message) {
  char line[320];

  if (r->conn == NULL || r->conn->closing)
    return;
  r->conn_err = err;
  r->reset = 1;
  snprintf(line, sizeof(line), "%s: %s", r->where, message);
  report(r, err, line);
  lc__conn_close(r->conn);
}

static void become_ready(lc__redis *r) {
  lc__conn_set_timeout(r->conn, 0);
  set_state(r, LC__REDIS_READY);
  r->established = 1;
  r->attempt = 0;
  r->fatal = 0;
  r->last_err = 0;
  r->last_msg[0] = '\0';
  r->first_connect = 0;
  lc__redis_update_ref(r);
  if (r->ev->on_ready != NULL)
    r->ev->on_ready(r);
  if (r->state == LC__REDIS_READY && r->ring.count > r->ring.nsent)
    lc__redis_flush_soon(r);
}

void lc__redis_setup_reply(lc__redis *r, const lc__redis_cmd *c,
                           const lc__redis_reply *reply) {
  if (reply->type == LC__REDIS_ERROR) {
    /* A configuration the server refuses: say so, fail what waits. */
    r->fatal = c->expect == SETUP_AUTH ? UV_EACCES : UV_EINVAL;
    snprintf(r->fatal_msg, sizeof(r->fatal_msg), "%s", reply->str);
    report(r, r->fatal, r->fatal_msg);
    lc__redis_fail_all(r, r->fatal);
    r->conn_err = r->fatal;
    r->reset = 1;
    if (r->conn != NULL && !r->conn->closing)
      lc__conn_close(r->conn);
    return;
  }
  if (--r->setup_left == 0 && r->state == LC__REDIS_CONNECTING)
    become_ready(r);
}

static int setup_add(lc__redis_setup *s, int what, int argc, ...) {
  const char *argv[3];
  size_t lens[3];
  va_list ap;
  int i;

  va_start(ap, argc);
  for (i = 0; i < argc; i++) {
    argv[i] = va_arg(ap, const char *);
    lens[i] = strlen(argv[i]);
  }
  va_end(ap);
  return lc__redis_setup_add(s, KIND_SETUP, argc, argv, lens, (uint32_t)what);
}

static int setup(lc__redis *r) {
  const lc__redis_options *o = &r->opts;
  lc__redis_setup s;
  char db[24];
  int err = 0;

  memset(&s, 0, sizeof(s));
  if (o->password != NULL && o->username != NULL)
    err = setup_add(&s, SETUP_AUTH, 3, "AUTH", o->username, o->password);
  else if (o->password != NULL)
    err = setup_add(&s, SETUP_AUTH, 2, "AUTH", o->password);
  if (err == 0 && o->db != 0) {
    snprintf(db, sizeof(db), "%d", o->db);
    err = setup_add(&s, SETUP_SELECT, 2, "SELECT", db);
  }
  if (err == 0 && o->name != NULL)
    err = setup_add(&s, SETUP_NAME, 3, "CLIENT", "SETNAME", o->name);
  r->setup_left = (int)s.n;
  if (err == 0)
    err = lc__redis_pubsub_renew(r, &s);
  if (err == 0 && s.n > 0)
    return lc__redis_setup_send(r, &s);
  lc__buf_free(&s.bytes);
  return err;
}

static void conn_on_open(lc__conn *c) {
  lc__redis *r = c->data;
  int err;

  r->parser = lc__redis_parser_new(r->opts.max_reply);
  if (r->parser == NULL) {
    lc__redis_conn_reset(r, UV_ENOMEM, "out of memory");
    return;
  }
  r->opened = 1;
  r->stats.connections++;
  if (r->ev->on_connect != NULL)
    r->ev->on_connect(r);
  if (r->state != LC__REDIS_CONNECTING || c->closing)
    return;
  err = setup(r);
  if (err) {
    lc__redis_conn_reset(r, err, "sending the set-up");
    return;
  }
  if (r->setup_left == 0)
    become_ready(r);
  else
    lc__conn_set_timeout(c, r->opts.connect_timeout_ms);
}

static void conn_on_read(lc__conn *c, const char *data, size_t len) {
  lc__redis_on_bytes(c->data, data, len);
}

static void conn_on_eof(lc__conn *c) {
  lc__redis *r = c->data;

  r->conn_err = UV_EOF;
  lc__conn_close(c);
}

static void conn_on_timeout(lc__conn *c) {
  lc__redis_conn_reset(c->data, UV_ETIMEDOUT, "no answer to AUTH/SELECT");
}

static void conn_on_drain(lc__conn *c) { (void)c; }

static void conn_on_error(lc__conn *c, int err) {
  lc__redis *r = c->data;
  char message[320];

  r->conn_err = err;
  if (!r->opened) {
    snprintf(message, sizeof(message), "connect %s %s", uv_err_name(err),
             r->where);
    report(r, err, message);
  }
}

static void conn_on_close(lc__conn *c) {
  lc__redis *r = c->data;
  int err = r->conn_err != 0 ? r->conn_err : UV_EOF;
  int reset = r->reset, opened = r->opened;
  char message[640]; /* where (300 bytes) and a failure's words (320) */

  r->conn = NULL;
  r->conn_err = 0;
  r->reset = 0;
  r->opened = 0;
  if (r->state < LC__REDIS_CLOSING)
    set_state(r, LC__REDIS_WAITING);
  lc__redis_parser_free(r->parser);
  r->parser = NULL;
  r->setup_left = 0;
  r->subscribed = 0;
  lc__redis_fail_sent(r, err);
  if (r->core->shutting_down) {
    maybe_finish(r);
    return;
  }
  if (r->established) {
    r->established = 0;
    if (r->ev->on_end != NULL)
      r->ev->on_end(r);
  }
  if (r->state >= LC__REDIS_CLOSING) {
    maybe_finish(r);
    return;
  }
  if (r->quitting) {
    lc__redis_close(r);
    return;
  }
  if (opened && err != UV_EOF && !reset) {
    snprintf(message, sizeof(message), "%s %s: %s", uv_err_name(err),
             r->where, lc__redis_words(r, err));
    report(r, err, message);
  }
  schedule_retry(r);
}

static void conn_on_server_close(lc__conn *c) { (void)c; }

static const lc__conn_ops redis_conn_ops = {
    conn_on_open,  conn_on_read,          conn_on_eof,   conn_on_timeout,
    conn_on_drain, conn_on_server_close, conn_on_error, conn_on_close};

/* Making and ending a client ------------------------------------------------------ */

static void client_free(lc__redis *r) {
  lc__buf_free(&r->out);
  lc__redis_ring_free(&r->ring);
  lc__redis_pubsub_free(r);
  free(r->failed);
  free((char *)r->opts.host);
  free((char *)r->opts.username);
  free((char *)r->opts.password);
  free((char *)r->opts.name);
  free(r);
}

/* Every handle is closed and the connection gone: tell the owner, free. */
static void maybe_finish(lc__redis *r) {
  if (r->state != LC__REDIS_CLOSING || r->handles_open > 0 || r->conn != NULL)
    return;
  lc__redis_fail_all(r, UV_ECANCELED);
  set_state(r, LC__REDIS_CLOSED);
  if (r->ev->on_close != NULL)
    r->ev->on_close(r);
  client_free(r);
}

static void on_handle_closed(uv_handle_t *handle) {
  lc__redis *r = handle->data;

  r->handles_open--;
  maybe_finish(r);
}

void lc__redis_close(lc__redis *r) {
  if (r->state >= LC__REDIS_CLOSING)
    return;
  set_state(r, LC__REDIS_CLOSING);
  if (r->dns != NULL) {
    lc__dns_cancel(r->dns);
    r->dns = NULL;
  }
  if (r->conn != NULL && !r->conn->closing)
    lc__conn_close(r->conn);
  lc__redis_fail_all(r, UV_ECANCELED);
  uv_close((uv_handle_t *)&r->flusher, on_handle_closed);
  uv_close((uv_handle_t *)&r->timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->retry, on_handle_closed);
}

void lc__redis_quit(lc__redis *r) {
  static const char *quit[] = {"QUIT"};
  static const size_t quit_len[] = {4};

  if (r->state >= LC__REDIS_CLOSING || r->quitting)
    return;
  if (r->conn == NULL || r->conn->closing ||
      lc__redis_internal(r, KIND_QUIT, 1, quit, quit_len, 0) != 0) {
    lc__redis_close(r);
    return;
  }
  r->quitting = 1;
  lc__redis_update_ref(r);
}

static void redis_owner_close(uv_handle_t *handle) {
  lc__redis_close(handle->data);
}

static char *copy_option(const char *s, int *err) {
  char *copy;

  if (s == NULL)
    return NULL;
  copy = strdup(s);
  if (copy == NULL)
    *err = UV_ENOMEM;
  return copy;
}

int lc__redis_new(lc__core *core, const lc__redis_options *o,
                  const lc__redis_events *ev, void *data, lc__redis **out) {
  lc__redis *r;
  int err = 0;

  *out = NULL;
  if (o->host == NULL || o->host[0] == '\0' || strlen(o->host) > 255 ||
      o->port < 1 || o->port > 65535 || o->db < 0 || o->max_reply < 64 ||
      o->retry_delay_ms == 0 || o->max_retry_delay_ms < o->retry_delay_ms ||
      (o->username != NULL && o->password == NULL))
    return UV_EINVAL;
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return UV_ENOMEM;
  r->opts = *o;
  r->opts.host = copy_option(o->host, &err);
  r->opts.username = copy_option(o->username, &err);
  r->opts.password = copy_option(o->password, &err);
  r->opts.name = copy_option(o->name, &err);
  if (err) {
    client_free(r);
    return err;
  }
  r->owner.close = redis_owner_close;
  r->core = core;
  r->ev = ev;
  r->data = data;
  r->allow_ref = 1;
  r->refd = 1;
  r->first_connect = 1;
  r->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)r;
  if (r->rng == 0)
    r->rng = 1;
  snprintf(r->where, sizeof(r->where),
           strchr(o->host, ':') ? "[%s]:%d" : "%s:%d", o->host, o->port);
  uv_idle_init(&core->loop, &r->flusher);
  uv_timer_init(&core->loop, &r->timer);
  uv_timer_init(&core->loop, &r->retry);
  r->flusher.data = r->timer.data = r->retry.data = r;
  r->handles_open = 3;
  /* An active idle handle only keeps the loop from blocking. */
  uv_unref((uv_handle_t *)&r->flusher);
  set_state(r, LC__REDIS_CONNECTING);
  uv_timer_start(&r->retry, on_retry, 0, 0);
  *out = r;
  return 0;
}
