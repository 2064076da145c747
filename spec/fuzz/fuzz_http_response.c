/*
 * fuzz_http_response.c - libFuzzer target for the client's half of the
 * codec: the response reader and the request writer.
 *
 * The input is fed to a response reader in pieces cut where its own bytes
 * say, with callbacks that pause now and then, some responses answering
 * HEAD, and the stream's end told at the end. The reader must never
 * consume more than it was given, must answer only with the statuses it
 * promises, must deliver no 1xx and no method, and must stay dead after an
 * error. Then slices of the input become a method, path and header for
 * the request writer, which must refuse them or write one well-framed head.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http_codec.h"
#include "reader_fuzz.h"

typedef struct ctx {
  const lc__http_limits *limits;
  fuzz_pauser pause; /* which callbacks pause */
  int in_response;
  uint64_t body;
} ctx;

static int on_head(void *arg, const lc__http_head *h) {
  ctx *c = arg;

  if (c->in_response || h->method != NULL || h->status < 200 ||
      h->status > 999 || h->nheaders > c->limits->max_headers)
    abort();
  c->in_response = 1;
  c->body = 0;
  return fuzz_maybe_pause(&c->pause);
}

static int on_body(void *arg, const char *data, size_t len) {
  ctx *c = arg;

  if (!c->in_response || len == 0 || data == NULL)
    abort();
  c->body += len;
  if (c->limits->max_body_size != 0 && c->body > c->limits->max_body_size)
    abort();
  return fuzz_maybe_pause(&c->pause);
}

static int on_complete(void *arg) {
  ctx *c = arg;

  if (!c->in_response)
    abort();
  c->in_response = 0;
  return fuzz_maybe_pause(&c->pause);
}

static const lc__http_reader_cb callbacks = {on_head, on_body, on_complete};

static int status_is_promised(int status) {
  return status == 400 || status == 413 || status == 431;
}

static void fuzz_reader(const uint8_t *data, size_t size) {
  lc__http_limits limits;
  lc__http_reader r;
  size_t cuts[FUZZ_PIECES + 1], i, from;
  int status = 0;
  ctx c;

  lc__http_limits_init(&limits);
  if (size > 0 && (data[0] & 1)) {
    limits.max_header_size = 256;
    limits.max_headers = 4;
    limits.max_body_size = 32;
  }
  memset(&c, 0, sizeof(c));
  c.limits = &limits;
  c.pause.seed = size > 1 ? data[1] : 0;
  lc__http_reader_init_response(&r, &limits, &callbacks, &c);
  lc__http_reader_expect(&r, size > 0 && (data[0] & 2));

  fuzz_cuts(data, size, cuts);
  from = 0;
  for (i = 0; i <= FUZZ_PIECES && status == 0; i++) {
    status = fuzz_feed_piece(&r, &c.pause, status_is_promised,
                             (const char *)data + from, cuts[i] - from);
    from = cuts[i];
  }
  if (status == 0) {
    lc__http_reader_resume(&r);
    status = lc__http_reader_eof(&r);
    if (status != 0 && !status_is_promised(status))
      abort();
    if (status == 0 && c.in_response && !c.pause.paused)
      abort(); /* the end of the stream left a response open */
  }
  lc__http_reader_free(&r);
}

static void fuzz_writer(const uint8_t *data, size_t size) {
  lc__http_request_line req;
  lc__http_header h;
  lc__buf out = LC__BUF_INIT;
  char method[16];
  size_t mlen, plen, rest;
  const char *sp;
  int rc;

  if (size < 4)
    return;
  mlen = data[0] % 8 < size - 1 ? data[0] % 8 : size - 1;
  memcpy(method, data + 1, mlen);
  method[mlen] = '\0';
  rest = size - 1 - mlen;
  mlen = strlen(method); /* the method ends at a NUL, as C strings do */
  plen = rest > 0 ? data[size - 1] % (rest + 1) : 0;
  memset(&req, 0, sizeof(req));
  req.method = method;
  req.path = (const char *)data + 1 + (size - 1 - rest);
  req.path_len = plen;
  req.host = "h";
  req.host_len = 1;
  req.content_length = (data[size - 1] & 1) ? (int64_t)size : -1;
  req.keep_alive = (data[size - 1] >> 1) & 1;
  h.name = "X-Fuzz";
  h.name_len = 6;
  h.value = req.path + plen;
  h.value_len = rest - plen;
  rc = lc__http_write_request_head(&out, &req, &h, 1);
  if (rc == UV_EINVAL) {
    if (out.len != 0)
      abort();
  } else if (rc == 0) {
    if (!fuzz_crlf_ok(out.base, out.len) || out.len < 4 ||
        memcmp(out.base + out.len - 4, "\r\n\r\n", 4) != 0)
      abort();
    /* The request line is the method, one space, the path, one space. */
    sp = memchr(out.base, ' ', out.len);
    if (sp == NULL || (size_t)(sp - out.base) != mlen ||
        memcmp(sp + 1 + plen, " HTTP/1.1\r\n", 11) != 0)
      abort();
    if (req.chunked != (req.content_length < 0))
      abort();
  } else {
    abort();
  }
  lc__buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_reader(data, size);
  fuzz_writer(data, size);
  return 0;
}
