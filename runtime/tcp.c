/*
 * tcp.c - servers and connections in the serving process (see tcp.h).
 *
 * Reads land in one shared 64 KiB buffer (protocols parse synchronously and
 * copy only what must outlive the callback). Writes try uv_try_write() first
 * and queue a copy of the rest. Timeouts are deadlines checked by one
 * sweeper timer rather than a timer per connection. A connection that ends
 * after a response is shut down for writing and read until the peer's FIN
 * (a lingering close), so a client's last request is never answered with a
 * reset.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcp.h"

#define READ_BUFFER_SIZE (64 * 1024)
#define SWEEP_MS 250
#define LINGER_MS 2000

typedef struct lc__tcp_state {
  lc__server *servers;
  uint32_t next_id;
  uint64_t requests; /* handled by servers already freed */
  int draining;
  void (*drained)(lc_runtime *rt);
  struct {
    lc__owner owner;
    uv_timer_t timer;
    int started;
  } sweeper;
  char read_buffer[READ_BUFFER_SIZE];
} lc__tcp_state;

static lc__tcp_state *tcp_state;

static lc__tcp_state *state(void) {
  if (tcp_state == NULL) {
    tcp_state = calloc(1, sizeof(*tcp_state));
    if (tcp_state != NULL)
      tcp_state->next_id = 1;
  }
  return tcp_state;
}

static void server_check_closed(lc__server *s);
static void drain_check(lc_runtime *rt);

/* Deadlines ------------------------------------------------------------------ */

static void on_sweep(uv_timer_t *timer) {
  uint64_t now = uv_now(timer->loop);
  lc__server *s;
  lc__conn *c, *next;
  int armed = 0;

  for (s = tcp_state->servers; s != NULL; s = s->next) {
    for (c = s->conns; c != NULL; c = next) {
      next = c->next;
      if (c->deadline_ms == 0 || c->closing)
        continue;
      if (now >= c->deadline_ms) {
        c->deadline_ms = 0;
        s->ops->on_timeout(c);
      }
      armed |= c->deadline_ms != 0;
    }
  }
  if (!armed) {
    uv_timer_stop(timer);
    tcp_state->sweeper.started = 0;
  }
}

static void sweeper_owner_close(uv_handle_t *handle) { uv_close(handle, NULL); }

static void sweeper_start(lc_runtime *rt) {
  lc__tcp_state *st = state();

  if (st->sweeper.started)
    return;
  if (st->sweeper.owner.close == NULL) {
    st->sweeper.owner.close = sweeper_owner_close;
    uv_timer_init(&rt->loop, &st->sweeper.timer);
    st->sweeper.timer.data = &st->sweeper;
    /* Connections keep the loop alive, not their deadlines. */
    uv_unref((uv_handle_t *)&st->sweeper.timer);
  }
  st->sweeper.started = 1;
  uv_timer_start(&st->sweeper.timer, on_sweep, SWEEP_MS, SWEEP_MS);
}

void lc__conn_set_timeout(lc__conn *c, uint64_t ms) {
  c->timeout_ms = ms;
  if (ms == 0) {
    c->deadline_ms = 0;
    return;
  }
  c->deadline_ms = uv_now(c->tcp.loop) + ms;
  sweeper_start(lc__rt);
}

void lc__conn_touch(lc__conn *c) {
  if (c->timeout_ms != 0)
    c->deadline_ms = uv_now(c->tcp.loop) + c->timeout_ms;
}

/* Connections ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  buf->base = tcp_state->read_buffer;
  buf->len = sizeof(tcp_state->read_buffer);
}

static void on_conn_closed(uv_handle_t *handle) {
  lc__conn *c = handle->data;
  lc__server *s = c->server;

  if (s != NULL) {
    s->ops->on_close(c);
    if (c->prev != NULL)
      c->prev->next = c->next;
    else
      s->conns = c->next;
    if (c->next != NULL)
      c->next->prev = c->prev;
    s->nconns--;
    server_check_closed(s);
  }
  free(c);
}

void lc__conn_close(lc__conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  c->deadline_ms = 0;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void conn_owner_close(uv_handle_t *handle) {
  lc__conn_close(handle->data);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  lc__conn *c = stream->data;

  if (nread > 0) {
    lc__conn_touch(c);
    if (c->shutdown) /* lingering: the answer is sent, discard the rest */
      return;
    c->server->ops->on_read(c, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0)
    return;
  if (nread == UV_EOF) {
    c->eof = 1;
    uv_read_stop(stream);
    c->reading = 0;
    if (c->shutdown)
      lc__conn_close(c);
    else
      c->server->ops->on_eof(c);
    return;
  }
  c->server->ops->on_error(c, (int)nread);
  lc__conn_close(c);
}

void lc__conn_pause(lc__conn *c) {
  if (c->reading && !c->closing) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

void lc__conn_resume(lc__conn *c) {
  if (!c->reading && !c->closing && !c->eof) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = 1;
  }
}

typedef struct lc__write_req {
  uv_write_t req;
  lc__conn *c;
  char data[];
} lc__write_req;

static void on_write(uv_write_t *req, int status) {
  lc__write_req *wr = (lc__write_req *)req;
  lc__conn *c = wr->c;

  free(wr);
  c->pending_writes--;
  if (c->closing)
    return;
  if (c->close_when_written && c->pending_writes == 0 && status == 0) {
    lc__conn_close(c);
    return;
  }
  if (status < 0) {
    if (c->server != NULL)
      c->server->ops->on_error(c, status);
    lc__conn_close(c);
    return;
  }
  if (c->pending_writes == 0 && c->server != NULL)
    c->server->ops->on_drain(c);
}

int lc__conn_write(lc__conn *c, const char *data, size_t len) {
  lc__write_req *wr;
  uv_buf_t buf;
  int n, err;

  if (c->closing || c->shutdown)
    return UV_EPIPE;
  if (len == 0)
    return 0;
  if (c->pending_writes == 0) {
    buf = uv_buf_init((char *)data, (unsigned)len);
    n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n == (int)len)
      return 0;
    if (n < 0 && n != UV_EAGAIN)
      return n;
    if (n > 0) {
      data += n;
      len -= (size_t)n;
    }
  }
  wr = malloc(sizeof(*wr) + len);
  if (wr == NULL)
    return UV_ENOMEM;
  wr->c = c;
  memcpy(wr->data, data, len);
  buf = uv_buf_init(wr->data, (unsigned)len);
  err = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (err) {
    free(wr);
    return err;
  }
  c->pending_writes++;
  return 0;
}

size_t lc__conn_write_queue(const lc__conn *c) {
  return c->tcp.write_queue_size;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  lc__conn *c = req->data;

  free(req);
  if (c->closing)
    return;
  if (status < 0 || c->eof) {
    lc__conn_close(c);
    return;
  }
  /* Read (and drop) until the peer's FIN, for a while. */
  c->timeout_ms = LINGER_MS;
  lc__conn_set_timeout(c, LINGER_MS);
  lc__conn_resume(c);
}

void lc__conn_shutdown(lc__conn *c) {
  uv_shutdown_t *req;

  if (c->closing || c->shutdown)
    return;
  c->shutdown = 1;
  req = malloc(sizeof(*req));
  if (req == NULL) {
    lc__conn_close(c);
    return;
  }
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    lc__conn_close(c);
  }
}

void lc__conn_close_when_written(lc__conn *c) {
  if (c->pending_writes == 0)
    lc__conn_close(c);
  else
    c->close_when_written = 1;
}

int lc__conn_peer(lc__conn *c, char *ip, size_t size, int *port) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  int err = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);

  if (err)
    return err;
  lc__sockaddr_ip(&ss, ip, size);
  if (port != NULL)
    *port = lc__sockaddr_port(&ss);
  return 0;
}

static lc__conn *conn_new(lc__server *s) {
  lc__conn *c = calloc(1, sizeof(*c));

  if (c == NULL)
    return NULL;
  c->owner.close = conn_owner_close;
  uv_tcp_init(&s->rt->loop, &c->tcp);
  c->tcp.data = c;
  c->server = s;
  c->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  return c;
}

static void conn_start(lc__conn *c) {
  lc__server *s = c->server;

  /* TCP_NODELAY comes from the listening socket (listen.c). */
  if (s->timeout_ms > 0)
    lc__conn_set_timeout(c, s->timeout_ms);
  s->ops->on_open(c);
  lc__conn_resume(c);
}

static void on_connection(uv_stream_t *listener, int status) {
  lc__server *s = listener->data;
  lc__conn *c;

  if (status < 0) {
    lc__log(LC__LOG_WARN, "accept on %s:%d failed: %s", s->addr, s->port,
            uv_strerror(status));
    return;
  }
  c = conn_new(s);
  if (c == NULL)
    return;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    lc__conn_close(c);
    return;
  }
  conn_start(c);
}

/* A connection the master accepted for this server. */
static void adopt_connection(lc__server *s, int fd) {
  lc__conn *c = conn_new(s);

  if (c == NULL) {
    close(fd);
    return;
  }
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
    lc__conn_close(c);
    return;
  }
  conn_start(c);
}

/* Servers ------------------------------------------------------------------ */

static void server_owner_close(uv_handle_t *handle) {
  lc__server_close(handle->data);
}

lc__server *lc__server_new(lc_runtime *rt, const lc__conn_ops *ops,
                           void *data) {
  lc__tcp_state *st = state();
  lc__server *s = calloc(1, sizeof(*s));

  if (s == NULL || st == NULL) {
    free(s);
    return NULL;
  }
  s->owner.close = server_owner_close;
  s->rt = rt;
  s->id = st->next_id++;
  s->ops = ops;
  s->data = data;
  s->next = st->servers;
  st->servers = s;
  return s;
}

static lc__server *find_server(uint32_t id) {
  lc__server *s;

  for (s = tcp_state ? tcp_state->servers : NULL; s != NULL; s = s->next)
    if (s->id == id)
      return s;
  return NULL;
}

static int server_accept_on(lc__server *s, int fd) {
  int err;

  uv_tcp_init(&s->rt->loop, &s->listener);
  s->listener.data = s;
  s->has_listener = 1;
  err = uv_tcp_open(&s->listener, fd);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&s->listener,
                    s->backlog > 0 ? s->backlog : 511, on_connection);
  if (err) {
    /* the handle owns fd now; it closes with the server */
    return err;
  }
  if (s->port == 0) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0) {
      s->port = lc__sockaddr_port(&ss);
      lc__sockaddr_ip(&ss, s->addr, sizeof(s->addr));
    }
  }
  return 0;
}

static void tell_master_listening(lc__server *s) {
  lc__control c;

  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_LISTENING;
  c.server_id = s->id;
  c.port = s->port;
  snprintf(c.addr, sizeof(c.addr), "%s", s->addr);
  lc__wside_send_control(s->rt, &c);
}

int lc__server_listen(lc__server *s, const char *host, int port, int backlog,
                      uint32_t flags) {
  struct sockaddr_storage ss;
  lc__control c;
  int fd, err;

  if (s->state != LC__SERVER_NEW)
    return UV_EALREADY;
  snprintf(s->host, sizeof(s->host), "%s", host ? host : "");
  s->port = port;
  s->backlog = backlog;
  s->flags = flags;

  if (s->rt->role == LC__ROLE_WORKER && lc__wside_connected(s->rt)) {
    if (lc__wside_disconnecting(s->rt))
      return UV_ECANCELED;
    s->shared = 1;
    s->state = LC__SERVER_BINDING;
    memset(&c, 0, sizeof(c));
    c.cmd = LC__CTL_LISTEN;
    c.server_id = s->id;
    c.port = port;
    c.backlog = (uint32_t)backlog;
    c.flags = flags;
    snprintf(c.addr, sizeof(c.addr), "%s", s->host);
    err = lc__wside_send_control(s->rt, &c);
    if (err)
      s->state = LC__SERVER_NEW;
    return err ? err : 1;
  }

  err = lc__listen_socket(s->host, port, backlog,
                          (flags & LC__LISTEN_IPV6ONLY) ? LC__SOCK_IPV6ONLY : 0,
                          &fd, &s->port);
  if (err)
    return err;
  if (lc__resolve(s->host, s->port, &ss) == 0)
    lc__sockaddr_ip(&ss, s->addr, sizeof(s->addr));
  err = server_accept_on(s, fd);
  if (err) {
    uv_close((uv_handle_t *)&s->listener, NULL);
    s->has_listener = 0;
    return err;
  }
  s->state = LC__SERVER_LISTENING;
  return 0;
}

/* The master's answers and descriptors for this worker's servers. */
void lc__servers_on_control(lc_runtime *rt, const lc__control *c, int fd) {
  lc__server *s = find_server(c->server_id);
  int err;

  if (c->cmd == LC__CTL_CONNECTION) {
    lc__control ack;
    memset(&ack, 0, sizeof(ack));
    ack.cmd = LC__CTL_ACCEPTED;
    ack.ticket = c->ticket;
    /* Also while closing: the master sent it before it knew. A server
     * that is gone refuses it, and the master gives it to another. */
    if (s != NULL && s->state != LC__SERVER_CLOSED) {
      adopt_connection(s, fd);
    } else {
      close(fd);
      ack.status = UV_ECANCELED;
    }
    /* Sent before this connection is first read (the channel flushes
     * before the loop polls again): a worker that dies unacknowledged has
     * read nothing from it. */
    lc__wside_send_control(rt, &ack);
    return;
  }
  if (s == NULL || s->state != LC__SERVER_BINDING) {
    if (fd >= 0)
      close(fd);
    return;
  }
  if (c->cmd == LC__CTL_LISTEN_REPLY) {
    if (c->status < 0) {
      s->state = LC__SERVER_NEW;
      s->on_listening(s, c->status);
      return;
    }
    s->port = c->port;
    snprintf(s->addr, sizeof(s->addr), "%s", c->addr);
    if (c->value == LC__SCHED_NONE || c->value == LC__SCHED_REUSEPORT)
      return; /* the socket to accept on follows */
    s->state = LC__SERVER_LISTENING;
    tell_master_listening(s);
    s->on_listening(s, 0);
    return;
  }
  /* LC__CTL_LISTENER */
  err = server_accept_on(s, fd);
  if (err) {
    s->state = LC__SERVER_NEW;
    uv_close((uv_handle_t *)&s->listener, NULL);
    s->has_listener = 0;
    s->on_listening(s, err);
    return;
  }
  s->state = LC__SERVER_LISTENING;
  tell_master_listening(s);
  s->on_listening(s, 0);
}

static void on_listener_closed(uv_handle_t *handle) {
  lc__server *s = handle->data;

  s->has_listener = 0;
  server_check_closed(s);
}

/* The last connection or the listener went: the server is closed. */
static void server_check_closed(lc__server *s) {
  if (s->state != LC__SERVER_CLOSING || s->nconns > 0 || s->has_listener)
    return;
  s->state = LC__SERVER_CLOSED;
  if (s->on_closed != NULL && !s->rt->shutting_down)
    s->on_closed(s);
  if (tcp_state != NULL && tcp_state->draining)
    drain_check(s->rt);
}

void lc__server_close(lc__server *s) {
  lc__control c;
  lc__conn *conn, *next;

  if (s->state == LC__SERVER_CLOSING || s->state == LC__SERVER_CLOSED)
    return;
  if (s->shared && s->state != LC__SERVER_NEW && lc__wside_connected(s->rt)) {
    memset(&c, 0, sizeof(c));
    c.cmd = LC__CTL_UNLISTEN;
    c.server_id = s->id;
    lc__wside_send_control(s->rt, &c);
  }
  s->state = LC__SERVER_CLOSING;
  if (s->has_listener && !uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  for (conn = s->conns; conn != NULL; conn = next) {
    next = conn->next;
    if (!conn->closing)
      s->ops->on_server_close(conn);
  }
  server_check_closed(s);
}

void lc__server_free(lc__server *s) {
  lc__server **pp;

  for (pp = &tcp_state->servers; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  tcp_state->requests += s->requests;
  if (s->on_free != NULL)
    s->on_free(s);
  free(s);
}

/* Draining (disconnect) --------------------------------------------------- */

static void drain_check(lc_runtime *rt) {
  lc__server *s;
  void (*done)(lc_runtime *);

  for (s = tcp_state->servers; s != NULL; s = s->next)
    if (s->state != LC__SERVER_CLOSED && s->state != LC__SERVER_NEW)
      return;
  done = tcp_state->drained;
  tcp_state->draining = 0;
  tcp_state->drained = NULL;
  if (done != NULL)
    done(rt);
}

void lc__servers_drain(lc_runtime *rt, void (*done)(lc_runtime *rt)) {
  lc__tcp_state *st = state();
  lc__server *s, *next;

  st->draining = 1;
  st->drained = done;
  for (s = st->servers; s != NULL; s = next) {
    next = s->next;
    lc__server_close(s);
  }
  if (st->draining)
    drain_check(rt);
}

uint64_t lc__servers_requests(lc_runtime *rt) {
  uint64_t n;
  lc__server *s;

  (void)rt;
  if (tcp_state == NULL)
    return 0;
  n = tcp_state->requests;
  for (s = tcp_state->servers; s != NULL; s = s->next)
    n += s->requests;
  return n;
}

void lc__servers_free(lc_runtime *rt) {
  (void)rt;
  /* After the loop walk: every handle is closed, servers are the
   * bindings' to free; whatever is left goes now. */
  if (tcp_state == NULL)
    return;
  while (tcp_state->servers != NULL)
    lc__server_free(tcp_state->servers);
  free(tcp_state);
  tcp_state = NULL;
}
