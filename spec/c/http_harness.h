/*
 * http_harness.h - what the HTTP server tests stand on: a core with a real
 * loop, an HTTP server bound on 127.0.0.1 port 0 whose handlers write what
 * they see into a transcript and answer as the test chose (at once, from a
 * timer, or when the test says), and plain non-blocking client sockets
 * whose bytes are read back as HTTP responses with http-parser.
 *
 * Nothing runs on its own: WAIT_UNTIL polls the loop's descriptor and the
 * clients' sockets, runs the loop and reads the clients until a condition
 * holds or WAIT_MS pass. Include test.h first.
 */
#ifndef LC_HTTP_HARNESS_H
#define LC_HTTP_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#include "http_server.h"

#define WAIT_MS 5000
#define MAX_REQUESTS 16
#define MAX_RESPONSES 16
#define MAX_CLIENTS 4

/* Clients ------------------------------------------------------------------ */

typedef struct response {
  int status;
  char connection[32]; /* its Connection header, "" without one */
  char body[128];      /* the start of the body */
  size_t body_len;     /* all of it */
} response;

typedef struct client {
  int fd;   /* -1 once the test closed it */
  int hold; /* leave the bytes in the socket: a client that does not read */
  int sent_head; /* its requests are HEADs: responses carry no body */
  int closed_by_answer; /* a response said "Connection: close" */
  int eof;
  int reset; /* the connection ended with ECONNRESET */
  int parse_error;
  size_t received;
  http_parser parser;
  char field[32]; /* the header name being read, lower-cased */
  size_t field_len;
  int in_value;
  response res[MAX_RESPONSES];
  int nres; /* complete responses */
} client;

static int client_on_message_begin(http_parser *p) {
  client *cl = p->data;

  /* Nothing may follow an answer that ended the connection (Debian's
   * http-parser is not strict and would read on). */
  if (cl->nres == MAX_RESPONSES || cl->closed_by_answer)
    return -1;
  memset(&cl->res[cl->nres], 0, sizeof(cl->res[0]));
  return 0;
}

static int client_on_header_field(http_parser *p, const char *at, size_t n) {
  client *cl = p->data;
  size_t i;

  if (cl->in_value)
    cl->field_len = 0;
  cl->in_value = 0;
  for (i = 0; i < n && cl->field_len + 1 < sizeof(cl->field); i++)
    cl->field[cl->field_len++] =
        at[i] >= 'A' && at[i] <= 'Z' ? (char)(at[i] | 0x20) : at[i];
  cl->field[cl->field_len] = '\0';
  return 0;
}

static int client_on_header_value(http_parser *p, const char *at, size_t n) {
  client *cl = p->data;
  response *r = &cl->res[cl->nres];
  size_t have = strlen(r->connection);

  cl->in_value = 1;
  if (strcmp(cl->field, "connection") == 0 &&
      have + n < sizeof(r->connection))
    memcpy(r->connection + have, at, n);
  return 0;
}

static int client_on_headers_complete(http_parser *p) {
  client *cl = p->data;

  cl->res[cl->nres].status = (int)p->status_code;
  cl->field_len = 0;
  cl->in_value = 0;
  return cl->sent_head ? 1 : 0; /* 1: no body follows */
}

static int client_on_body(http_parser *p, const char *at, size_t n) {
  client *cl = p->data;
  response *r = &cl->res[cl->nres];

  if (r->body_len < sizeof(r->body) - 1) {
    size_t room = sizeof(r->body) - 1 - r->body_len;
    memcpy(r->body + r->body_len, at, n < room ? n : room);
  }
  r->body_len += n;
  return 0;
}

static int client_on_message_complete(http_parser *p) {
  client *cl = p->data;

  if (p->status_code >= 200 && !http_should_keep_alive(p))
    cl->closed_by_answer = 1;
  cl->nres++;
  return 0;
}

static const http_parser_settings client_parser_settings = {
    .on_message_begin = client_on_message_begin,
    .on_header_field = client_on_header_field,
    .on_header_value = client_on_header_value,
    .on_headers_complete = client_on_headers_complete,
    .on_body = client_on_body,
    .on_message_complete = client_on_message_complete,
};

static void client_parse(client *cl, const char *data, size_t len) {
  if (cl->parse_error)
    return;
  http_parser_execute(&cl->parser, &client_parser_settings, data, len);
  if (HTTP_PARSER_ERRNO(&cl->parser) != HPE_OK) {
    fprintf(stderr, "response parse error: %s\n",
            http_errno_description(HTTP_PARSER_ERRNO(&cl->parser)));
    cl->parse_error = 1;
  }
}

/* Reads what the socket holds; notes the end and how it ended. */
static void client_read(client *cl) {
  char buf[65536];
  ssize_t n;

  while (cl->fd >= 0 && !cl->hold && !cl->eof) {
    n = recv(cl->fd, buf, sizeof(buf), 0);
    if (n > 0) {
      cl->received += (size_t)n;
      client_parse(cl, buf, (size_t)n);
    } else if (n == 0) {
      cl->eof = 1;
      client_parse(cl, NULL, 0); /* a truncated response is an error */
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN)
        cl->eof = cl->reset = 1;
      break;
    }
  }
}

/* Data segments this client received (Linux >= 4.6): TCP_INFO continues
 * past glibc's struct tcp_info with counters glibc does not declare. */
struct tcp_info_counters {
  struct tcp_info base;
  uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
  uint32_t segs_out, segs_in, notsent_bytes, min_rtt;
  uint32_t data_segs_in, data_segs_out;
};

static long client_data_segments_in(client *cl) {
  struct tcp_info_counters ti;
  socklen_t len = sizeof(ti);

  memset(&ti, 0, sizeof(ti));
  if (getsockopt(cl->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
      len < offsetof(struct tcp_info_counters, data_segs_out))
    return -1;
  return (long)ti.data_segs_in;
}

/* Ends the connection with a reset (SO_LINGER 0), as a killed peer may. */
static void client_reset(client *cl) {
  struct linger lg = {1, 0};

  setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(cl->fd);
  cl->fd = -1;
}

static void client_close(client *cl) {
  close(cl->fd);
  cl->fd = -1;
}

/* The server ------------------------------------------------------------------ */

typedef struct request {
  lc__http_conn *hc; /* NULL once its connection closed */
  uint32_t seq;
  char url[64];
  char body[64]; /* the start of the body */
  size_t body_len;
  int ended;
} request;

typedef struct harness harness;
typedef void (*handler_fn)(harness *h, request *r);

struct harness {
  lc__core core;
  lc__http_server cfg;
  lc__server *server;
  int server_closed;
  int refuse;          /* a status on_request answers with, 0: none */
  handler_fn on_end;   /* what a handler does with a whole request */
  handler_fn on_drain; /* ... and when a backlogged response may go on */
  uint64_t delays[MAX_REQUESTS]; /* answer_later: request i's delay */
  request req[MAX_REQUESTS];
  int nreq;
  lc__buf events; /* one line per callback, and one per answer */
  size_t streamed; /* body bytes stream_until_backlogged wrote */
  client clients[MAX_CLIENTS];
  int nclients;
};

static void note(harness *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(harness *h, const char *fmt, ...) {
  char line[256];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  lc__buf_puts(&h->events, line);
  lc__buf_puts(&h->events, "\n");
}

/* The transcript, NUL-terminated. */
static const char *events(harness *h) {
  lc__buf_append(&h->events, "", 1);
  h->events.len--;
  return lc__buf_data(&h->events);
}

static harness *harness_of(lc__http_conn *hc) {
  return lc__http_conn_server(hc)->data;
}

/* The request hc is answering now. */
static request *request_of(harness *h, lc__http_conn *hc) {
  uint32_t seq = lc__http_conn_seq(hc);
  int i;

  for (i = h->nreq - 1; i >= 0; i--)
    if (h->req[i].hc == hc && h->req[i].seq == seq)
      return &h->req[i];
  return NULL;
}

/* Answers r with 200 and its url as the body; the result of the respond. */
static int answer(harness *h, request *r) {
  lc__http_reply reply = {200, NULL, NULL, 0};

  note(h, "answer %s", r->url);
  return lc__http_respond(r->hc, r->seq, &reply, r->url, strlen(r->url), 1);
}

static void answer_now(harness *h, request *r) { CHECK_EQ_INT(answer(h, r), 0); }

/* A timer that answers a request after the delay set for it. */
typedef struct later {
  lc__owner owner; /* first: the shutdown walk closes it */
  uv_timer_t timer;
  harness *h;
  request *r;
} later;

static void later_free(uv_handle_t *handle) { free(handle->data); }

static void later_close(uv_handle_t *handle) { uv_close(handle, later_free); }

static void later_fire(uv_timer_t *timer) {
  later *l = timer->data;

  CHECK_EQ_INT(answer(l->h, l->r), 0);
  uv_close((uv_handle_t *)timer, later_free);
}

static void answer_later(harness *h, request *r) {
  later *l = calloc(1, sizeof(*l));

  l->owner.close = later_close;
  l->h = h;
  l->r = r;
  uv_timer_init(&h->core.loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, later_fire, h->delays[r - h->req], 0);
}

static int test_on_request(lc__http_conn *hc, const lc__http_head *head) {
  harness *h = harness_of(hc);
  request *r;

  if (h->nreq == MAX_REQUESTS)
    return 503;
  r = &h->req[h->nreq++];
  r->hc = hc;
  r->seq = lc__http_conn_seq(hc);
  snprintf(r->url, sizeof(r->url), "%.*s", (int)head->url_len, head->url);
  note(h, "request %s %s", head->method, r->url);
  return h->refuse;
}

static void test_on_body(lc__http_conn *hc, const char *data, size_t len) {
  request *r = request_of(harness_of(hc), hc);

  if (r->body_len < sizeof(r->body) - 1) {
    size_t room = sizeof(r->body) - 1 - r->body_len;
    memcpy(r->body + r->body_len, data, len < room ? len : room);
  }
  r->body_len += len;
}

static void test_on_end(lc__http_conn *hc) {
  harness *h = harness_of(hc);
  request *r = request_of(h, hc);

  r->ended = 1;
  note(h, "end");
  if (h->on_end != NULL)
    h->on_end(h, r);
}

static void test_on_abort(lc__http_conn *hc) { note(harness_of(hc), "abort"); }

static void test_on_drain(lc__http_conn *hc) {
  harness *h = harness_of(hc);

  note(h, "drain");
  if (h->on_drain != NULL)
    h->on_drain(h, request_of(h, hc));
}

static void test_on_close(lc__http_conn *hc) {
  harness *h = harness_of(hc);
  int i;

  note(h, "close");
  for (i = 0; i < h->nreq; i++)
    if (h->req[i].hc == hc)
      h->req[i].hc = NULL;
}

static const lc__http_server_cb test_cb = {test_on_request, test_on_body,
                                           test_on_end,     test_on_abort,
                                           test_on_drain,   test_on_close};

static void on_server_closed(lc__server *s) {
  ((harness *)s->data)->server_closed = 1;
}

/* A core and an HTTP server listening on 127.0.0.1 (a free port) whose
 * handlers answer at once; a test changes h->cfg or h->on_end after. */
static void harness_init(harness *h) {
  memset(h, 0, sizeof(*h));
  CHECK_EQ_INT(lc__core_init(&h->core), 0);
  lc__http_server_init(&h->cfg, &test_cb);
  h->on_end = answer_now;
  h->server = lc__server_new(&h->core, &lc__http_server_conn_ops, &h->cfg, h);
  h->server->on_closed = on_server_closed;
  CHECK_EQ_INT(lc__server_bind(h->server, "127.0.0.1", 0, 64, 0), 0);
  CHECK(h->server->port > 0);
}

/* Closes the clients, then every handle of the core and the core. */
static void harness_free(harness *h) {
  int i;

  for (i = 0; i < h->nclients; i++)
    if (h->clients[i].fd >= 0)
      client_close(&h->clients[i]);
  lc__core_close(&h->core);
  lc__buf_free(&h->events);
}

/* A client connected to the server (rcvbuf > 0: its receive buffer size). */
static client *client_connect(harness *h, int rcvbuf) {
  client *cl = &h->clients[h->nclients++];
  struct sockaddr_in sa;

  memset(cl, 0, sizeof(*cl));
  cl->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0)
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)h->server->port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* The kernel completes the handshake into the listen backlog. */
  CHECK_EQ_INT(connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  fcntl(cl->fd, F_SETFL, O_NONBLOCK);
  http_parser_init(&cl->parser, HTTP_RESPONSE);
  cl->parser.data = cl;
  return cl;
}

/* Waiting ------------------------------------------------------------------- */

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/*
 * One turn: waits (at most until `until`, at most 50 ms) for the loop or a
 * client to have something, runs the loop without blocking and reads the
 * clients. 0 once `until` has passed.
 */
static int pump(harness *h, uint64_t until) {
  struct pollfd fds[1 + MAX_CLIENTS];
  uint64_t now = now_ms();
  int n = 0, i, timeout;

  if (now >= until)
    return 0;
  timeout = until - now < 50 ? (int)(until - now) : 50;
  i = uv_backend_timeout(&h->core.loop);
  if (i >= 0 && i < timeout)
    timeout = i;
  fds[n].fd = uv_backend_fd(&h->core.loop);
  fds[n++].events = POLLIN;
  for (i = 0; i < h->nclients; i++) {
    client *cl = &h->clients[i];
    if (cl->fd >= 0 && !cl->hold && !cl->eof) {
      fds[n].fd = cl->fd;
      fds[n++].events = POLLIN;
    }
  }
  poll(fds, (nfds_t)n, timeout);
  uv_run(&h->core.loop, UV_RUN_NOWAIT);
  for (i = 0; i < h->nclients; i++)
    client_read(&h->clients[i]);
  return 1;
}

/* Runs the loop and the clients for ms (a client trickling bytes). */
static void pump_for(harness *h, uint64_t ms) {
  uint64_t until = now_ms() + ms;

  while (pump(h, until))
    ;
}

/* Runs the loop and the clients until cond holds; a failed check if it
 * does not within WAIT_MS. */
#define WAIT_UNTIL(h, cond)                                                    \
  do {                                                                         \
    uint64_t until_ = now_ms() + WAIT_MS;                                      \
    while (!(cond) && pump((h), until_))                                       \
      ;                                                                        \
    CHECK(cond);                                                               \
  } while (0)

/* Sends all of len bytes, running the loop while the socket is full. */
static void client_send(harness *h, client *cl, const char *data, size_t len) {
  uint64_t until = now_ms() + WAIT_MS;
  ssize_t n;

  while (len > 0) {
    n = send(cl->fd, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      fprintf(stderr, "send: %s\n", strerror(errno));
      CHECK(0);
      return;
    } else if (!pump(h, until)) {
      CHECK(len == 0);
      return;
    }
  }
}

static void client_send_str(harness *h, client *cl, const char *s) {
  client_send(h, cl, s, strlen(s));
}

#endif
