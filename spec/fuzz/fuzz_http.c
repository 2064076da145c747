/*
 * fuzz_http.c - libFuzzer target for the HTTP reader and writer.
 *
 * The input is fed to a reader in pieces cut where its own bytes say, with
 * callbacks that pause now and then; the reader must never consume more
 * than it was given, must answer only with the statuses it promises, must
 * stay dead after an error, and must hand over only heads that keep the
 * strict framing rules (token names, HTTP/1.0 or 1.1, one Host in 1.1). Then slices of the input become a header
 * name and value for the writer, which must refuse them or write them
 * without a bare CR or LF.
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
  int in_request; /* between on_head and on_complete */
} ctx;

static int is_tchar(char c) {
  return c != '\0' && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* What the framing checker promises about a head that reaches the app. */
static void check_head_is_strict(const lc__http_head *h) {
  size_t i, j, hosts = 0;

  if (h->major != 1 || h->minor > 1)
    abort();
  for (i = 0; i < h->nheaders; i++) {
    if (h->headers[i].name_len == 0)
      abort();
    for (j = 0; j < h->headers[i].name_len; j++)
      if (!is_tchar(h->headers[i].name[j])) /* lower-cased tokens */
        abort();
    for (j = 0; j < h->headers[i].value_len; j++)
      if (h->headers[i].value[j] == '\r' || h->headers[i].value[j] == '\n')
        abort();
    hosts += h->headers[i].name_len == 4 &&
             memcmp(h->headers[i].name, "host", 4) == 0;
  }
  if (hosts > 1 || (h->minor == 1 && hosts != 1))
    abort();
}

static int on_head(void *arg, const lc__http_head *h) {
  ctx *c = arg;

  if (c->in_request || h->method == NULL || h->url_len == 0 ||
      h->url_len > c->limits->max_url_size ||
      h->nheaders > c->limits->max_headers)
    abort();
  check_head_is_strict(h);
  if (h->upgrade && h->keep_alive)
    abort();
  c->in_request = 1;
  return fuzz_maybe_pause(&c->pause);
}

static int on_body(void *arg, const char *data, size_t len) {
  ctx *c = arg;

  if (!c->in_request || len == 0 || data == NULL)
    abort();
  return fuzz_maybe_pause(&c->pause);
}

static int on_complete(void *arg) {
  ctx *c = arg;

  if (!c->in_request)
    abort();
  c->in_request = 0;
  return fuzz_maybe_pause(&c->pause);
}

static const lc__http_reader_cb callbacks = {on_head, on_body, on_complete};

static int status_is_promised(int status) {
  return status == 400 || status == 413 || status == 414 || status == 431 ||
         status == 505;
}

static void fuzz_reader(const uint8_t *data, size_t size) {
  lc__http_limits limits;
  lc__http_reader r;
  size_t cuts[FUZZ_PIECES + 1], i, from;
  ctx c;

  lc__http_limits_init(&limits);
  /* Small limits on some inputs, so every refusal is reachable. */
  if (size > 0 && (data[0] & 1)) {
    limits.max_header_size = 256;
    limits.max_url_size = 64;
    limits.max_headers = 4;
    limits.max_body_size = 32;
  }
  memset(&c, 0, sizeof(c));
  c.limits = &limits;
  c.pause.seed = size > 1 ? data[1] : 0;
  lc__http_reader_init(&r, &limits, &callbacks, &c);

  fuzz_cuts(data, size, cuts);
  from = 0;
  for (i = 0; i <= FUZZ_PIECES; i++) {
    if (fuzz_feed_piece(&r, &c.pause, status_is_promised,
                        (const char *)data + from, cuts[i] - from) != 0)
      break;
    from = cuts[i];
  }
  if (lc__http_reader_idle(&r) && lc__http_reader_in_head(&r))
    abort();
  lc__http_reader_free(&r);
}

/* "<hex size>\r\n<data>\r\n" and nothing else. */
static int chunk_ok(const char *s, size_t n, const uint8_t *data, size_t size) {
  size_t i, v = 0;

  for (i = 0; i < n; i++) {
    if (s[i] >= '0' && s[i] <= '9')
      v = v * 16 + (size_t)(s[i] - '0');
    else if (s[i] >= 'a' && s[i] <= 'f')
      v = v * 16 + (size_t)(s[i] - 'a' + 10);
    else
      break;
  }
  return i > 0 && v == size && n == i + 2 + size + 2 &&
         memcmp(s + i, "\r\n", 2) == 0 && memcmp(s + i + 2, data, size) == 0 &&
         memcmp(s + n - 2, "\r\n", 2) == 0;
}

static void fuzz_writer(const uint8_t *data, size_t size) {
  lc__http_response res;
  lc__http_header h[2];
  lc__buf out = LC__BUF_INIT;
  size_t name_len, value_len;
  char *line;
  int rc;

  if (size < 2)
    return;
  name_len = data[0] % 16 < size - 1 ? data[0] % 16 : size - 1;
  value_len = size - 1 - name_len;
  h[0].name = (const char *)data + 1;
  h[0].name_len = name_len;
  h[0].value = (const char *)data + 1 + name_len;
  h[0].value_len = value_len;
  h[1].name = "X-Fixed";
  h[1].name_len = 7;
  h[1].value = "1";
  h[1].value_len = 1;

  memset(&res, 0, sizeof(res));
  res.status = 200 + data[0] % 8;
  res.major = 1;
  res.minor = data[size - 1] & 1;
  res.keep_alive = (data[size - 1] >> 1) & 1;
  res.head_request = (data[size - 1] >> 2) & 1;
  res.content_length = (data[size - 1] & 8) ? (int64_t)size : -1;
  rc = lc__http_write_head(&out, &res, h, 2);
  if (rc == UV_EINVAL) {
    if (out.len != 0)
      abort();
  } else if (rc == 0) {
    if (!fuzz_crlf_ok(out.base, out.len))
      abort();
    if (out.len < 4 || memcmp(out.base + out.len - 4, "\r\n\r\n", 4) != 0)
      abort();
    /* The given header is there as one whole line. */
    line = malloc(name_len + value_len + 5);
    line[0] = '\n';
    memcpy(line + 1, h[0].name, name_len);
    memcpy(line + 1 + name_len, ": ", 2);
    memcpy(line + 3 + name_len, h[0].value, value_len);
    memcpy(line + 3 + name_len + value_len, "\r\n", 2);
    if (memmem(out.base, out.len, line, name_len + value_len + 5) == NULL)
      abort();
    free(line);
    if (res.no_body && res.chunked)
      abort();
  } else {
    abort();
  }

  lc__buf_reset(&out);
  if (lc__http_write_chunk(&out, (const char *)data, size) != 0 ||
      !chunk_ok(out.base, out.len, data, size))
    abort();
  lc__buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_reader(data, size);
  fuzz_writer(data, size);
  return 0;
}
