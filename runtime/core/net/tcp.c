/*
 * tcp.c - servers and connections in the process that uses them (tcp.h).
 *
 * Reads land in one shared 64 KiB buffer (protocols parse synchronously and
 * copy only what must outlive the callback). Writes try uv_try_write() first
 * and queue a copy of the rest. Timeouts are deadlines checked by one
 * sweeper timer rather than a timer per connection. A connection that ends
 * after a response is shut down for writing and read until the peer's FIN
 * (a lingering close), so a client's last request is never answered with a
 * reset. Lingering is bounded in time (from its start, whatever arrives)
 * and in bytes: a client that trickles or floods cannot hold it.
 *
 * A server that accepts itself polls its listening socket and calls
 * accept4(). Out of descriptors (EMFILE), it stops accepting for a moment
 * and tries again, clients waiting in the backlog meanwhile, as nginx does,
 * rather than closing them (libuv's own way).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sd_notify.h"
#include "sockets.h"
#include "tcp.h"
#include "tls.h"

#define READ_BUFFER_SIZE (64 * 1024)
#define SWEEP_MS 250
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (256 * 1024)
#define ACCEPTS_PER_WAKEUP 64
#define ACCEPT_PAUSE_MS 100

struct lc__tcp {
  lc__owner owner; /* first: the sweeper's data points here */
  lc__core *core;
  lc__server *servers;
  lc__conn *conns; /* every open connection, served or not */
  uint32_t next_id;
  uint64_t requests; /* handled by servers already freed */
  void (*drained)(lc__core *core); /* set while draining */
  struct {
    uv_timer_t timer;
    int init;
    int started;
  } sweeper;
  struct lc__accept_pause {
    lc__owner owner; /* the timer's data points here */
    uv_timer_t timer;
    lc__tcp *tcp;
    int init;
    int on; /* out of descriptors: no server accepts until it fires */
  } pause;
  char read_buffer[READ_BUFFER_SIZE];
};

static void server_check_closed(lc__server *s);
static void drain_check(lc__tcp *tcp);

/* Who hears the socket's events: the connection's filter, else its
 * protocol. */
static const lc__conn_ops *events_of(const lc__conn *c) {
  return c->filter != NULL ? &c->filter->events : c->ops;
}

/* After the loop walk closed every handle: free what is left. */
static void tcp_free(void *arg) {
  lc__core *core = arg;

  while (core->tcp->servers != NULL)
    lc__server_free(core->tcp->servers);
  free(core->tcp);
  core->tcp = NULL;
}

static lc__tcp *tcp_of(lc__core *core) {
  if (core->tcp == NULL) {
    lc__tcp *tcp = calloc(1, sizeof(*tcp));
    if (tcp == NULL || lc__core_on_close(core, tcp_free, core) != 0) {
      free(tcp);
      return NULL;
    }
    tcp->core = core;
    tcp->next_id = 1;
    core->tcp = tcp;
  }
  return core->tcp;
}

/* Deadlines ------------------------------------------------------------------ */

static void on_sweep(uv_timer_t *timer) {
  lc__tcp *tcp = timer->data;
  uint64_t now = uv_now(timer->loop);
  lc__conn *c, *next;
  int armed = 0;

  for (c = tcp->conns; c != NULL; c = next) {
    next = c->next;
    if (c->deadline_ms == 0 || c->closing)
      continue;
    if (now >= c->deadline_ms) {
      c->deadline_ms = 0;
      if (c->connecting) {
        events_of(c)->on_error(c, UV_ETIMEDOUT);
        lc__conn_close(c);
        continue;
      }
      events_of(c)->on_timeout(c);
    }
    armed |= c->deadline_ms != 0;
  }
  if (!armed) {
    uv_timer_stop(timer);
    tcp->sweeper.started = 0;
  }
}

static void sweeper_owner_close(uv_handle_t *handle) { uv_close(handle, NULL); }

static void sweeper_start(lc__tcp *tcp) {
  if (tcp->sweeper.started)
    return;
  if (!tcp->sweeper.init) {
    tcp->sweeper.init = 1;
    tcp->owner.close = sweeper_owner_close;
    uv_timer_init(&tcp->core->loop, &tcp->sweeper.timer);
    tcp->sweeper.timer.data = tcp;
    /* Connections keep the loop alive, not their deadlines. */
    uv_unref((uv_handle_t *)&tcp->sweeper.timer);
  }
  tcp->sweeper.started = 1;
  uv_timer_start(&tcp->sweeper.timer, on_sweep, SWEEP_MS, SWEEP_MS);
}

void lc__conn_set_timeout(lc__conn *c, uint64_t ms) {
  c->timeout_ms = ms;
  if (ms == 0) {
    c->deadline_ms = 0;
    return;
  }
  c->deadline_ms = uv_now(c->tcp.loop) + ms;
  sweeper_start(c->core->tcp);
}

void lc__conn_touch(lc__conn *c) {
  if (c->timeout_ms != 0)
    c->deadline_ms = uv_now(c->tcp.loop) + c->timeout_ms;
}

/* Connections ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  lc__conn *c = handle->data;

  (void)suggested;
  buf->base = c->core->tcp->read_buffer;
  buf->len = READ_BUFFER_SIZE;
}

static void conn_unlink(lc__conn *c) {
  lc__tcp *tcp = c->core->tcp;

  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    tcp->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
}

static void on_conn_closed(uv_handle_t *handle) {
  lc__conn *c = handle->data;
  lc__server *s = c->server;

  events_of(c)->on_close(c);
  conn_unlink(c);
  if (s != NULL) {
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
    if (c->shutdown) {
      /* Lingering: the answer is sent, the rest is dropped, up to a point. */
      c->linger_bytes += (size_t)nread;
      if (c->linger_bytes > LINGER_MAX_BYTES)
        lc__conn_close(c);
      return;
    }
    events_of(c)->on_read(c, buf->base, (size_t)nread);
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
      events_of(c)->on_eof(c);
    return;
  }
  events_of(c)->on_error(c, (int)nread);
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
    events_of(c)->on_error(c, status);
    lc__conn_close(c);
    return;
  }
  if (c->pending_writes == 0)
    events_of(c)->on_drain(c);
}

int lc__conn_write(lc__conn *c, const char *data, size_t len) {
  if (c->filter != NULL)
    return c->filter->write(c, data, len);
  return lc__conn_write_raw(c, data, len);
}

int lc__conn_write_raw(lc__conn *c, const char *data, size_t len) {
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
  /* Read (and drop) until the peer's FIN, for a while: the deadline is
   * fixed now, reads do not push it. */
  lc__conn_set_timeout(c, LINGER_MS);
  c->timeout_ms = 0;
  lc__conn_resume(c);
}

void lc__conn_shutdown(lc__conn *c) {
  uv_shutdown_t *req;

  if (c->closing || c->shutdown)
    return;
  if (c->filter != NULL)
    c->filter->end(c);
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
  if (c->filter != NULL && !c->closing && !c->shutdown)
    c->filter->end(c);
  if (c->pending_writes == 0)
    lc__conn_close(c);
  else
    c->close_when_written = 1;
}

void lc__conn_set_filter(lc__conn *c, const lc__conn_filter *filter,
                         void *data) {
  c->filter = filter;
  c->filter_data = data;
}

void lc__conn_end_of_stream(lc__conn *c) {
  lc__conn_pause(c);
  c->eof = 1;
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

int lc__conn_local(lc__conn *c, char *ip, size_t size, int *port) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  int err = uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len);

  if (err)
    return err;
  lc__sockaddr_ip(&ss, ip, size);
  if (port != NULL)
    *port = lc__sockaddr_port(&ss);
  return 0;
}

/* A connection of server s (NULL when it has none), linked into the
 * process's list. */
static lc__conn *conn_new(lc__core *core, lc__server *s,
                          const lc__conn_ops *ops) {
  lc__tcp *tcp = tcp_of(core);
  lc__conn *c = tcp ? calloc(1, sizeof(*c)) : NULL;

  if (c == NULL)
    return NULL;
  c->owner.close = conn_owner_close;
  c->core = core;
  c->ops = ops;
  uv_tcp_init(&core->loop, &c->tcp);
  c->tcp.data = c;
  c->next = tcp->conns;
  if (tcp->conns != NULL)
    tcp->conns->prev = c;
  tcp->conns = c;
  c->server = s;
  if (s != NULL)
    s->nconns++;
  return c;
}

/* The ops of a connection that failed before its protocol heard of it. */
static void silent_conn(lc__conn *c) { (void)c; }
static void silent_read(lc__conn *c, const char *data, size_t len) {
  (void)c, (void)data, (void)len;
}
static void silent_error(lc__conn *c, int err) { (void)c, (void)err; }
static const lc__conn_ops silent_ops = {
    silent_conn, silent_read, silent_conn,  silent_conn,
    silent_conn, silent_conn, silent_error, silent_conn};

static void conn_start(lc__conn *c) {
  lc__server *s = c->server;

  if (s->filter != NULL) {
    c->filter = s->filter;
    if (s->filter->attach(c, s->filter_arg) != 0) {
      c->filter = NULL;
      c->ops = &silent_ops;
      lc__conn_close(c);
      return;
    }
  }
  /* TCP_NODELAY comes from the listening socket (sockets.c). */
  if (s->timeout_ms > 0)
    lc__conn_set_timeout(c, s->timeout_ms);
  events_of(c)->on_open(c);
  if (!c->closing)
    lc__conn_resume(c);
}

void lc__server_adopt(lc__server *s, int fd) {
  lc__conn *c = conn_new(s->core, s, s->ops);

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

/* Outbound connections ---------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status) {
  lc__conn *c = req->data;

  if (c->closing) /* closed while connecting (UV_ECANCELED) */
    return;
  c->connecting = 0;
  c->deadline_ms = 0;
  c->timeout_ms = 0;
  if (status < 0) {
    events_of(c)->on_error(c, status);
    lc__conn_close(c);
    return;
  }
  /* Requests and answers are small writes: send them at once. */
  uv_tcp_nodelay(&c->tcp, 1);
  events_of(c)->on_open(c);
  if (!c->closing)
    lc__conn_resume(c);
}

int lc__conn_connect(lc__core *core, const struct sockaddr *addr,
                     const struct sockaddr *local, const lc__conn_ops *ops,
                     void *data, uint64_t timeout_ms, lc__conn **out) {
  lc__conn *c = conn_new(core, NULL, ops);
  int err;

  *out = NULL;
  if (c == NULL)
    return UV_ENOMEM;
  c->data = data;
  err = local != NULL ? uv_tcp_bind(&c->tcp, local, 0) : 0;
  if (err == 0) {
    c->connect_req.data = c;
    err = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect);
  }
  if (err) {
    /* Nothing is called back: the caller reports err. */
    c->ops = &silent_ops;
    lc__conn_close(c);
    return err;
  }
  c->connecting = 1;
  if (timeout_ms > 0)
    lc__conn_set_timeout(c, timeout_ms);
  *out = c;
  return 0;
}

/* Accepting ------------------------------------------------------------------- */

static void on_acceptable(uv_poll_t *handle, int status, int events);

static void server_poll(lc__server *s, int on) {
  if (on && (s->core->tcp->pause.on || s->state != LC__SERVER_LISTENING))
    return;
  if (!s->has_listener || s->polling == on ||
      uv_is_closing((uv_handle_t *)&s->listener))
    return;
  s->polling = on;
  if (on)
    uv_poll_start(&s->listener, UV_READABLE, on_acceptable);
  else
    uv_poll_stop(&s->listener);
}

static void on_accept_pause_over(uv_timer_t *timer) {
  lc__tcp *tcp = ((struct lc__accept_pause *)timer->data)->tcp;
  lc__server *s;

  tcp->pause.on = 0;
  for (s = tcp->servers; s != NULL; s = s->next)
    server_poll(s, 1);
}

static void pause_owner_close(uv_handle_t *handle) { uv_close(handle, NULL); }

/* Out of descriptors: no server accepts for ACCEPT_PAUSE_MS. */
static void accept_pause(lc__core *core) {
  lc__tcp *tcp = core->tcp;
  lc__server *s;

  if (tcp->pause.on)
    return;
  tcp->pause.on = 1;
  for (s = tcp->servers; s != NULL; s = s->next)
    server_poll(s, 0);
  if (lc__log_due(&core->fds_logged_ms, 1000))
    lc__log(LC__LOG_WARN, "out of file descriptors: accepting again in %d ms",
            ACCEPT_PAUSE_MS);
  if (!tcp->pause.init) {
    tcp->pause.init = 1;
    tcp->pause.owner.close = pause_owner_close;
    tcp->pause.tcp = tcp;
    uv_timer_init(&core->loop, &tcp->pause.timer);
    tcp->pause.timer.data = &tcp->pause;
    uv_unref((uv_handle_t *)&tcp->pause.timer);
  }
  uv_timer_start(&tcp->pause.timer, on_accept_pause_over, ACCEPT_PAUSE_MS, 0);
}

static void on_acceptable(uv_poll_t *handle, int status, int events) {
  lc__server *s = handle->data;
  int i, fd;

  (void)events;
  if (status < 0) {
    if (lc__log_due(&s->core->fds_logged_ms, 1000))
      lc__log(LC__LOG_WARN, "accept on %s:%d failed: %s", s->addr, s->port,
              uv_strerror(status));
    return;
  }
  for (i = 0; i < ACCEPTS_PER_WAKEUP && s->polling; i++) {
    fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE)
        accept_pause(s->core);
      else if (errno != EAGAIN && errno != EWOULDBLOCK &&
               lc__log_due(&s->core->fds_logged_ms, 1000))
        lc__log(LC__LOG_WARN, "accept on %s:%d failed: %s", s->addr, s->port,
                strerror(errno));
      return;
    }
    lc__server_adopt(s, fd);
  }
}

/* Servers ------------------------------------------------------------------ */

static void server_owner_close(uv_handle_t *handle) {
  lc__server_close(handle->data);
}

lc__server *lc__server_new(lc__core *core, const lc__conn_ops *ops,
                           void *proto, void *data) {
  lc__tcp *tcp = tcp_of(core);
  lc__server *s = tcp ? calloc(1, sizeof(*s)) : NULL;

  if (s == NULL)
    return NULL;
  s->owner.close = server_owner_close;
  s->core = core;
  s->id = tcp->next_id++;
  s->ops = ops;
  s->proto = proto;
  s->data = data;
  s->next = tcp->servers;
  tcp->servers = s;
  return s;
}

lc__server *lc__server_find(lc__core *core, uint32_t id) {
  lc__server *s;

  for (s = core->tcp ? core->tcp->servers : NULL; s != NULL; s = s->next)
    if (s->id == id)
      return s;
  return NULL;
}

static void on_listener_closed(uv_handle_t *handle) {
  lc__server *s = handle->data;

  close(s->listen_fd);
  s->listen_fd = -1;
  s->has_listener = 0;
  s->polling = 0;
  server_check_closed(s);
}

int lc__server_accept_on(lc__server *s, int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int err;

  /* Listening already (sockets.c, or the master's); this sets our backlog. */
  if (listen(fd, s->backlog > 0 ? s->backlog : 511) != 0) {
    err = uv_translate_sys_error(errno);
    close(fd);
    return err;
  }
  err = uv_poll_init(&s->core->loop, &s->listener, fd);
  if (err) {
    close(fd);
    return err;
  }
  s->listener.data = s;
  s->listen_fd = fd;
  s->has_listener = 1;
  if (s->port == 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
    s->port = lc__sockaddr_port(&ss);
    lc__sockaddr_ip(&ss, s->addr, sizeof(s->addr));
  }
  s->state = LC__SERVER_LISTENING;
  server_poll(s, 1);
  return 0;
}

/* A socket passed at start (socket activation) for this address, taken
 * instead of binding; UV_ENOENT when there is none. */
static int bind_passed(lc__server *s, int port, int *fd) {
  int reuseport, listening;

  *fd = lc__activation_take(s->core, s->host, port, &reuseport, &listening);
  if (*fd < 0)
    return UV_ENOENT;
  s->port = port;
  return 0;
}

int lc__server_bind(lc__server *s, const char *host, int port, int backlog,
                    uint32_t flags) {
  struct sockaddr_storage ss;
  int fd, err;

  snprintf(s->host, sizeof(s->host), "%s", host ? host : "");
  s->backlog = backlog;
  s->flags = flags;
  err = bind_passed(s, port, &fd);
  if (err == UV_ENOENT)
    err = lc__listen_socket(s->host, port, backlog, flags, &fd, &s->port);
  if (err)
    return err;
  if (lc__resolve(s->host, s->port, &ss) == 0)
    lc__sockaddr_ip(&ss, s->addr, sizeof(s->addr));
  return lc__server_accept_on(s, fd);
}

/* The last connection or the listener went: the server is closed. */
static void server_check_closed(lc__server *s) {
  if (s->state != LC__SERVER_CLOSING || s->nconns > 0 || s->has_listener)
    return;
  s->state = LC__SERVER_CLOSED;
  if (s->on_closed != NULL && !s->core->shutting_down)
    s->on_closed(s);
  if (s->core->tcp->drained != NULL)
    drain_check(s->core->tcp);
}

void lc__server_close(lc__server *s) {
  lc__conn *conn, *next;

  if (s->state == LC__SERVER_CLOSING || s->state == LC__SERVER_CLOSED)
    return;
  if (s->on_unlisten != NULL && s->state != LC__SERVER_NEW)
    s->on_unlisten(s);
  s->state = LC__SERVER_CLOSING;
  if (s->has_listener && !uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  s->polling = 0;
  for (conn = s->core->tcp->conns; conn != NULL; conn = next) {
    next = conn->next;
    if (conn->server == s && !conn->closing)
      events_of(conn)->on_server_close(conn);
  }
  server_check_closed(s);
}

void lc__server_free(lc__server *s) {
  lc__tcp *tcp = s->core->tcp;
  lc__server **pp;
  lc__conn *c;

  for (pp = &tcp->servers; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  for (c = tcp->conns; c != NULL; c = c->next)
    if (c->server == s)
      c->server = NULL;
  tcp->requests += s->requests;
  if (s->filter != NULL)
    s->filter->release(s->filter_arg);
  if (s->on_free != NULL)
    s->on_free(s);
  free(s);
}

/* Draining (a worker's disconnect) ---------------------------------------- */

static void drain_check(lc__tcp *tcp) {
  lc__server *s;
  void (*done)(lc__core *);

  for (s = tcp->servers; s != NULL; s = s->next)
    if (s->state != LC__SERVER_CLOSED && s->state != LC__SERVER_NEW)
      return;
  done = tcp->drained;
  tcp->drained = NULL;
  done(tcp->core);
}

void lc__servers_drain(lc__core *core, void (*done)(lc__core *core)) {
  lc__tcp *tcp = tcp_of(core);
  lc__server *s, *next;

  if (tcp == NULL) {
    done(core);
    return;
  }
  tcp->drained = done;
  for (s = tcp->servers; s != NULL; s = next) {
    next = s->next;
    lc__server_close(s);
  }
  if (tcp->drained != NULL)
    drain_check(tcp);
}

uint64_t lc__servers_requests(lc__core *core) {
  lc__server *s;
  uint64_t n;

  if (core->tcp == NULL)
    return 0;
  n = core->tcp->requests;
  for (s = core->tcp->servers; s != NULL; s = s->next)
    n += s->requests;
  return n;
}

const char *lc__conn_strerror(int err) {
  if (lc__tls_is_error(err))
    return "handshake failed";
  switch (err) {
  case UV_ETIMEDOUT:
    return "timeout";
  case UV_EOF:
  case UV_EPIPE:
  case UV_ENOTCONN:
    return "closed";
  case UV_ECONNREFUSED:
    return "connection refused";
  case UV_ECONNRESET:
    return "connection reset by peer";
  default:
    return uv_strerror(err);
  }
}
