/*
 * fuzz_http_server.c - libFuzzer target for the HTTP server protocol
 * (core/http/http_server.c) over a real connection, not only its parser.
 *
 * Each input gets a core of its own and an HTTP server that adopts one end
 * of a socketpair; the other end is the client. The input's first bytes
 * are its script:
 *
 *   [0] flags: small limits, the client half-closes or closes at the end,
 *       the server closes early or late, the client holds its reads, the
 *       size of streamed chunks
 *   [1..2] how the handler answers each request (3 bits a request, five
 *       requests a cycle): at its end, from a zero-ms timer, at its head,
 *       streamed, refused (503), never, dropped after its head, or first
 *       with a bad header
 *   [3..5] where the rest is cut into up to four writes
 *
 * The rest goes in as those writes, the loop running until the connection
 * is quiet between them, so pipelining, pausing and resuming run. There
 * are no deadlines (every timeout is 0), so a run takes microseconds.
 *
 * Checks: the bytes back parse as HTTP responses (http-parser in response
 * mode, a HEAD's response without a body); there are never more final
 * responses than requests, but for one error answer to a request no
 * handler saw; the handler's responses come in request order; nothing
 * follows a "Connection: close" response; once the client half-closed,
 * the connection ends (a response still pending then is cut short: the
 * request is aborted, as Node does); and
 * ASan finds nothing, leaks included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "http_server.h"

#define MAX_PIECES 4
#define MAX_TURNS 20000
#define QUIET_TURNS 3
#define MAX_SEQ 64
#define STREAM_CHUNKS 8
#define CONTROL_BYTES 6

enum {
  FLAG_SMALL_LIMITS = 1,
  FLAG_HALF_CLOSE = 2,
  FLAG_SERVER_CLOSE_EARLY = 4,
  FLAG_SERVER_CLOSE_LATE = 8,
  FLAG_CLIENT_CLOSE = 16,
  FLAG_HOLD_READS = 32 /* bits 6-7: streamed chunk size */
};

enum {
  ANSWER_AT_END,
  ANSWER_FROM_TIMER,
  ANSWER_AT_HEAD,
  ANSWER_STREAMED,
  ANSWER_REFUSE,
  ANSWER_NEVER,
  ANSWER_DROP,
  ANSWER_BAD_HEADER_FIRST
};

typedef struct fuzz {
  lc__core core;
  lc__http_server cfg;
  lc__server *server;
  lc__http_conn *hc; /* the connection, once a request came and until closed */
  unsigned modes;
  unsigned flags;
  unsigned events; /* callbacks and bytes seen: progress */
  int closed;      /* the connection's on_close ran */
  int timers;      /* zero-ms timers not fired yet */
  int in_request;  /* between on_request and on_end */
  int heads;       /* requests the handler saw */
  char is_head[MAX_SEQ];
  int unanswered; /* left so on purpose */
  int dropped;    /* a response cut short on purpose */
  uint32_t stream_seq;
  int stream_left;
  int stream_waits; /* for on_drain */
  size_t chunk_size;
  /* The client's end */
  int peer;
  int hold;
  int peer_eof;
  http_parser parser;
  int finals;    /* final responses read */
  int continues; /* 100 Continue responses read */
  int close_seen; /* a final response said the connection ends */
  int last_status;
  unsigned xseq; /* the X-Seq of the response being read, 0 if none */
  int in_xseq;
  int in_value;
} fuzz;

static const char zeros[32 * 1024];

static fuzz *fuzz_of(lc__http_conn *hc) {
  return lc__http_conn_server(hc)->data;
}

static int mode_of(const fuzz *f, uint32_t seq) {
  return (int)((f->modes >> (3 * ((seq - 1) % 5))) & 7);
}

/* Writes to request seq's response; every answer carries its seq. */
static void respond(fuzz *f, uint32_t seq, const char *chunk, size_t len,
                    int finish) {
  char value[16];
  lc__http_header header = {"X-Seq", 5, value, 0};
  lc__http_reply reply = {200, NULL, &header, 1};
  int rc;

  header.value_len = (size_t)snprintf(value, sizeof(value), "%u", seq);
  rc = lc__http_respond(f->hc, seq, &reply, chunk, len, finish);
  if (rc != 0 && rc != LC__HTTP_GONE)
    abort();
}

/* A response with a header that cannot be sent: refused, nothing written. */
static void respond_bad_header(fuzz *f, uint32_t seq) {
  lc__http_header header = {"X-Bad", 5, "a\r\nb", 4};
  lc__http_reply reply = {200, NULL, &header, 1};
  int rc = lc__http_respond(f->hc, seq, &reply, "x", 1, 1);

  if (rc != UV_EINVAL && rc != LC__HTTP_GONE)
    abort();
}

/* Streaming: a chunk at a time until backlogged (then on_drain goes on). */
static void stream_on(fuzz *f) {
  while (f->stream_left > 0 && f->hc != NULL) {
    if (lc__http_backlogged(f->hc)) {
      f->stream_waits = 1;
      return;
    }
    f->stream_left--;
    respond(f, f->stream_seq, zeros, f->chunk_size, f->stream_left == 0);
  }
}

/* Zero-ms timers: an answer, or the rest of a stream. */
typedef struct later {
  lc__owner owner; /* first: the shutdown walk closes it */
  uv_timer_t timer;
  fuzz *f;
  uint32_t seq;
  int stream;
} later;

static void later_free(uv_handle_t *handle) { free(handle->data); }

static void later_close(uv_handle_t *handle) { uv_close(handle, later_free); }

static void later_fire(uv_timer_t *timer) {
  later *l = timer->data;
  fuzz *f = l->f;

  f->timers--;
  f->events++;
  if (l->stream)
    stream_on(f);
  else if (f->hc != NULL)
    respond(f, l->seq, "later", 5, 1);
  uv_close((uv_handle_t *)timer, later_free);
}

static void start_later(fuzz *f, uint32_t seq, int stream) {
  later *l = calloc(1, sizeof(*l));

  if (l == NULL)
    abort();
  l->owner.close = later_close;
  l->f = f;
  l->seq = seq;
  l->stream = stream;
  uv_timer_init(&f->core.loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, later_fire, 0, 0);
  f->timers++;
}

/* The server's callbacks ------------------------------------------------------ */

static int on_request(lc__http_conn *hc, const lc__http_head *head) {
  fuzz *f = fuzz_of(hc);
  uint32_t seq = lc__http_conn_seq(hc);

  f->events++;
  if (f->in_request || (f->hc != NULL && f->hc != hc))
    abort();
  f->hc = hc;
  f->in_request = 1;
  if (seq != (uint32_t)f->heads + 1)
    abort(); /* requests are numbered in order, none skipped */
  if (f->heads < MAX_SEQ)
    f->is_head[f->heads] = strcmp(head->method, "HEAD") == 0;
  f->heads++;
  switch (mode_of(f, seq)) {
  case ANSWER_AT_HEAD:
    respond(f, seq, "head", 4, 1);
    break;
  case ANSWER_REFUSE:
    return 503;
  case ANSWER_NEVER:
    f->unanswered++;
    break;
  }
  return 0;
}

static void on_body(lc__http_conn *hc, const char *data, size_t len) {
  fuzz *f = fuzz_of(hc);

  f->events++;
  if (!f->in_request || len == 0 || data == NULL)
    abort();
}

static void on_end(lc__http_conn *hc) {
  fuzz *f = fuzz_of(hc);
  uint32_t seq = lc__http_conn_seq(hc);

  f->events++;
  if (!f->in_request)
    abort();
  f->in_request = 0;
  switch (mode_of(f, seq)) {
  case ANSWER_AT_END:
    respond(f, seq, "end", 3, 1);
    break;
  case ANSWER_FROM_TIMER:
    start_later(f, seq, 0);
    break;
  case ANSWER_STREAMED:
    f->stream_seq = seq;
    f->stream_left = STREAM_CHUNKS;
    respond(f, seq, zeros, f->chunk_size, 0);
    start_later(f, seq, 1);
    break;
  case ANSWER_DROP:
    respond(f, seq, "part", 4, 0);
    f->dropped = 1;
    lc__http_conn_destroy(hc);
    break;
  case ANSWER_BAD_HEADER_FIRST:
    respond_bad_header(f, seq);
    respond(f, seq, "fixed", 5, 1);
    break;
  }
}

/* The client went away (or half-closed) while an answer was pending: that
 * answer may end mid-body at the close (Node's rule, which the server
 * follows). */
static void on_abort(lc__http_conn *hc) {
  fuzz *f = fuzz_of(hc);

  f->events++;
  f->dropped = 1;
}

static void on_drain(lc__http_conn *hc) {
  fuzz *f = fuzz_of(hc);

  f->events++;
  if (f->stream_waits) {
    f->stream_waits = 0;
    stream_on(f);
  }
}

static void on_close(lc__http_conn *hc) {
  fuzz *f = fuzz_of(hc);

  f->events++;
  f->closed = 1;
  f->hc = NULL;
  f->in_request = 0;
}

static const lc__http_server_cb server_cb = {on_request, on_body,  on_end,
                                             on_abort,   on_drain, on_close};

/* The client's end: responses --------------------------------------------------- */

static int res_begin(http_parser *p) {
  fuzz *f = p->data;

  if (f->close_seen)
    abort(); /* bytes after a response that ended the connection */
  f->xseq = 0;
  f->in_xseq = 0;
  f->in_value = 0;
  return 0;
}

static int res_field(http_parser *p, const char *at, size_t len) {
  fuzz *f = p->data;

  /* X-Seq is written in one piece; a name split across reads is not it. */
  f->in_xseq = len == 5 && strncasecmp(at, "x-seq", 5) == 0;
  f->in_value = 0;
  return 0;
}

static int res_value(http_parser *p, const char *at, size_t len) {
  fuzz *f = p->data;
  size_t i;

  if (!f->in_xseq)
    return 0;
  for (i = 0; i < len; i++)
    if (at[i] >= '0' && at[i] <= '9')
      f->xseq = f->xseq * 10 + (unsigned)(at[i] - '0');
  return 0;
}

static int res_headers_complete(http_parser *p) {
  fuzz *f = p->data;

  f->last_status = p->status_code;
  if (p->status_code < 200) {
    if (p->status_code != 100 || ++f->continues > f->heads)
      abort();
    return 0;
  }
  /* The answer to a HEAD has no body, whatever its headers say. */
  if (f->finals < MAX_SEQ && f->finals < f->heads && f->is_head[f->finals])
    return 1;
  return 0;
}

static int res_complete(http_parser *p) {
  fuzz *f = p->data;

  if (p->status_code < 200)
    return 0;
  f->finals++;
  /* A handler's answer is its request's: they come back in order. */
  if (f->xseq != 0 && f->xseq != (unsigned)f->finals)
    abort();
  if (f->finals > f->heads + 1)
    abort();
  /* One more answer than requests seen: the core's refusal of a request
   * no handler saw; it ends the connection. */
  if (f->finals == f->heads + 1 &&
      (f->xseq != 0 || p->status_code < 400 || http_should_keep_alive(p)))
    abort();
  if (!http_should_keep_alive(p))
    f->close_seen = 1;
  return 0;
}

static const http_parser_settings response_settings = {
    .on_message_begin = res_begin,
    .on_header_field = res_field,
    .on_header_value = res_value,
    .on_headers_complete = res_headers_complete,
    .on_message_complete = res_complete,
};

static void parse_responses(fuzz *f, const char *data, size_t len) {
  enum http_errno err;

  http_parser_execute(&f->parser, &response_settings, data, len);
  err = HTTP_PARSER_ERRNO(&f->parser);
  if (err == HPE_OK)
    return;
  /* A response cut short on purpose ends mid-body at the close. */
  if (len == 0 && err == HPE_INVALID_EOF_STATE && f->dropped)
    return;
  fprintf(stderr, "bad response bytes: %s\n", http_errno_description(err));
  abort();
}

static void peer_read(fuzz *f) {
  char buf[64 * 1024];
  ssize_t n;

  while (!f->hold && !f->peer_eof && f->peer >= 0) {
    n = recv(f->peer, buf, sizeof(buf), 0);
    if (n > 0) {
      f->events++;
      parse_responses(f, buf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      f->peer_eof = 1;
      f->events++;
      parse_responses(f, NULL, 0);
    } else if (errno == EAGAIN) {
      break;
    }
  }
}

/* Running ------------------------------------------------------------------------ */

/* Runs the loop and reads the client until nothing has happened for a few
 * turns and no timer is pending: the protocol waits for the client. */
static void run_until_quiet(fuzz *f) {
  int turns, quiet = 0;
  unsigned before;

  for (turns = 0; quiet < QUIET_TURNS; turns++) {
    if (turns == MAX_TURNS)
      abort(); /* it never settles: a busy loop */
    before = f->events;
    uv_run(&f->core.loop, UV_RUN_NOWAIT);
    peer_read(f);
    quiet = f->events == before && f->timers == 0 ? quiet + 1 : 0;
  }
}

/* Writes one piece, as much as the server takes. */
static void send_piece(fuzz *f, const uint8_t *p, size_t len) {
  ssize_t n;
  int stuck = 0;

  while (len > 0 && stuck < 2) {
    n = send(f->peer, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      stuck = 0;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return; /* the server closed its end */
    } else {
      stuck++; /* paused: it reads again once it answered */
    }
    run_until_quiet(f);
  }
}

static void fuzz_setup(fuzz *f, const uint8_t *data) {
  int fds[2];

  memset(f, 0, sizeof(*f));
  f->flags = data[0];
  f->modes = (unsigned)data[1] | (unsigned)data[2] << 8;
  f->chunk_size = (size_t)4096 << ((f->flags >> 6) & 3);
  f->hold = (f->flags & FLAG_HOLD_READS) != 0;
  if (lc__core_init(&f->core) != 0)
    abort();
  lc__http_server_init(&f->cfg, &server_cb);
  f->cfg.keep_alive_timeout_ms = 0; /* no deadlines: nothing waits */
  f->cfg.headers_timeout_ms = 0;
  f->cfg.request_timeout_ms = 0;
  if (f->flags & FLAG_SMALL_LIMITS) {
    f->cfg.limits.max_header_size = 256;
    f->cfg.limits.max_url_size = 64;
    f->cfg.limits.max_headers = 4;
    f->cfg.limits.max_body_size = 32;
  }
  f->server = lc__server_new(&f->core, &lc__http_server_conn_ops, &f->cfg, f);
  if (f->server == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
    abort();
  lc__server_adopt(f->server, fds[0]);
  f->peer = fds[1];
  if (fcntl(f->peer, F_SETFL, O_NONBLOCK) != 0)
    abort();
  http_parser_init(&f->parser, HTTP_RESPONSE);
  f->parser.data = f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t cuts[MAX_PIECES], from, to, len, i;
  fuzz f;

  if (size < CONTROL_BYTES)
    return 0;
  fuzz_setup(&f, data);
  len = size - CONTROL_BYTES;
  for (i = 0; i < MAX_PIECES - 1; i++)
    cuts[i] = len * data[3 + i] / 256;
  cuts[MAX_PIECES - 1] = len;
  data += CONTROL_BYTES;

  from = 0;
  for (i = 0; i < MAX_PIECES; i++) {
    to = cuts[i] > from ? cuts[i] : from;
    send_piece(&f, data + from, to - from);
    from = to;
    if (i == 0 && (f.flags & FLAG_SERVER_CLOSE_EARLY))
      lc__server_close(f.server);
  }
  if (f.flags & FLAG_SERVER_CLOSE_LATE)
    lc__server_close(f.server);
  f.hold = 0;
  run_until_quiet(&f);
  if (f.flags & FLAG_HALF_CLOSE) {
    shutdown(f.peer, SHUT_WR);
    run_until_quiet(&f);
    /* Every request was answered: nothing keeps the connection. */
    if (!f.closed && f.unanswered == 0)
      abort();
  }
  if (f.flags & FLAG_CLIENT_CLOSE) {
    close(f.peer);
    f.peer = -1;
    run_until_quiet(&f);
  }
  if (f.peer >= 0)
    close(f.peer);
  lc__core_close(&f.core);
  return 0;
}
