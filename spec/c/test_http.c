/*
 * test_http.c - the HTTP request reader and response writer, driven with
 * bytes only: every callback is written into a transcript, so a request can
 * be checked against the text it should produce and two ways of feeding the
 * same bytes can be compared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "http_codec.h"
#include "test.h"

/* What the callbacks saw, and when they should pause. */
typedef struct rec {
  lc__buf log;
  int in_body; /* body pieces of one request are one transcript entry */
  int pause_head, pause_body, pause_complete;
  int paused;
  int heads, bodies, completes;
  int keep_alive, expect_continue, upgrade;
  size_t nheaders;
} rec;

static void log_str(rec *t, const char *s) { lc__buf_puts(&t->log, s); }

static int rec_head(void *arg, const lc__http_head *h) {
  rec *t = arg;
  char line[128];
  size_t i;

  snprintf(line, sizeof(line), "HEAD %s ", h->method);
  log_str(t, line);
  lc__buf_append(&t->log, h->url, h->url_len);
  snprintf(line, sizeof(line), " %d.%d ka=%d ec=%d up=%d\n", h->major, h->minor,
           h->keep_alive, h->expect_continue, h->upgrade);
  log_str(t, line);
  for (i = 0; i < h->nheaders; i++) {
    lc__buf_append(&t->log, h->headers[i].name, h->headers[i].name_len);
    log_str(t, ": ");
    lc__buf_append(&t->log, h->headers[i].value, h->headers[i].value_len);
    log_str(t, "\n");
  }
  t->heads++;
  t->keep_alive = h->keep_alive;
  t->expect_continue = h->expect_continue;
  t->upgrade = h->upgrade;
  t->nheaders = h->nheaders;
  if (t->pause_head)
    t->paused = 1;
  return t->pause_head;
}

static int rec_body(void *arg, const char *data, size_t len) {
  rec *t = arg;

  if (!t->in_body)
    log_str(t, "BODY ");
  t->in_body = 1;
  lc__buf_append(&t->log, data, len);
  t->bodies++;
  if (t->pause_body)
    t->paused = 1;
  return t->pause_body;
}

static int rec_complete(void *arg) {
  rec *t = arg;

  log_str(t, t->in_body ? "\nEND\n" : "END\n");
  t->in_body = 0;
  t->completes++;
  if (t->pause_complete)
    t->paused = 1;
  return t->pause_complete;
}

static const lc__http_reader_cb rec_cb = {rec_head, rec_body, rec_complete};

/* A reader with the default limits writing into t. */
typedef struct fixture {
  lc__http_limits limits;
  lc__http_reader r;
  rec t;
} fixture;

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof(*f));
  lc__http_limits_init(&f->limits);
  lc__http_reader_init(&f->r, &f->limits, &rec_cb, &f->t);
}

static void fixture_free(fixture *f) {
  lc__http_reader_free(&f->r);
  lc__buf_free(&f->t.log);
}

/* NUL-terminated transcript. */
static const char *transcript(fixture *f) {
  lc__buf_append(&f->t.log, "", 1);
  f->t.log.len--;
  return f->t.log.base;
}

/* Feeds one piece, resuming after each pause; returns the status. */
static int feed_piece(fixture *f, const char *p, size_t len) {
  size_t n;
  int status = 0;

  while (len > 0) {
    n = lc__http_reader_feed(&f->r, p, len, &status);
    if (status != 0)
      return status;
    if (f->t.paused) {
      f->t.paused = 0;
      lc__http_reader_resume(&f->r);
    } else if (n != len) {
      return -1; /* neither paused nor failed: the reader lost bytes */
    }
    p += n;
    len -= n;
  }
  return 0;
}

static int feed_str(fixture *f, const char *s) {
  return feed_piece(f, s, strlen(s));
}

/* Feeds s cut at the given points (ascending), returns the transcript. */
static char *run_split(const char *s, const size_t *cuts, size_t ncuts,
                       int pauses) {
  fixture f;
  size_t len = strlen(s), from = 0, i, to;
  char *out;
  int status = 0;

  fixture_init(&f);
  f.t.pause_head = f.t.pause_body = f.t.pause_complete = pauses;
  for (i = 0; i <= ncuts && status == 0; i++) {
    to = i < ncuts ? cuts[i] : len;
    status = feed_piece(&f, s + from, to - from);
    from = to;
  }
  if (status != 0)
    log_str(&f.t, "FAILED\n");
  out = strdup(transcript(&f));
  fixture_free(&f);
  return out;
}

static void reads_headers_lowercased(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "GET /a?b=1 HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "X-Mixed-CASE: Keep This Case  \r\n"
                            "Empty:\r\n"
                            "\r\n"),
               0);
  CHECK_EQ_STR(transcript(&f), "HEAD GET /a?b=1 1.1 ka=1 ec=0 up=0\n"
                               "host: example.com\n"
                               "x-mixed-case: Keep This Case\n"
                               "empty: \n"
                               "END\n");
  fixture_free(&f);
}

/* Several requests in one stream: every way of cutting it reads the same. */
static const char *split_stream =
    "GET /first HTTP/1.1\r\nHost: a\r\nUser-Agent: split-test/1.0\r\n\r\n"
    "POST /form HTTP/1.1\r\nHost: a\r\n"
    "Content-Length: 11\r\nX-A: 1\r\n\r\nhello world"
    "PUT /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n"
    "GET /last HTTP/1.0\r\nConnection: keep-alive\r\nEmpty:\r\n\r\n";

static const char *split_expected =
    "HEAD GET /first 1.1 ka=1 ec=0 up=0\nhost: a\nuser-agent: split-test/1.0\n"
    "END\n"
    "HEAD POST /form 1.1 ka=1 ec=0 up=0\nhost: a\ncontent-length: 11\nx-a: 1\n"
    "BODY hello world\nEND\n"
    "HEAD PUT /up 1.1 ka=1 ec=0 up=0\nhost: a\ntransfer-encoding: chunked\n"
    "BODY abc0123456789abcdef\nEND\n"
    "HEAD GET /last 1.0 ka=1 ec=0 up=0\nconnection: keep-alive\nempty: \n"
    "END\n";

static void same_callbacks_for_every_split(void) {
  size_t len = strlen(split_stream), i, j, cuts[2];
  size_t *bytes = malloc(len * sizeof(size_t));
  char *out;
  int diffs = 0;

  out = run_split(split_stream, NULL, 0, 0);
  CHECK_EQ_STR(out, split_expected);
  free(out);
  for (i = 1; i < len; i++) {
    cuts[0] = i;
    out = run_split(split_stream, cuts, 1, (int)(i & 1));
    diffs += strcmp(out, split_expected) != 0;
    free(out);
  }
  for (i = 1; i < len; i += 3)
    for (j = i + 1; j < len; j += 5) {
      cuts[0] = i;
      cuts[1] = j;
      out = run_split(split_stream, cuts, 2, 0);
      diffs += strcmp(out, split_expected) != 0;
      free(out);
    }
  for (i = 0; i < len; i++)
    bytes[i] = i + 1;
  out = run_split(split_stream, bytes, len - 1, 0);
  CHECK_EQ_STR(out, split_expected);
  free(out);
  out = run_split(split_stream, bytes, len - 1, 1);
  CHECK_EQ_STR(out, split_expected);
  free(out);
  free(bytes);
  CHECK_EQ_INT(diffs, 0);
}

static void header_value_split_across_feeds_is_joined(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Lo"), 0);
  CHECK_EQ_INT(feed_str(&f, "ng-Name: abc"), 0);
  CHECK_EQ_INT(feed_str(&f, "def"), 0);
  CHECK_EQ_INT(feed_str(&f, "ghi\r\n\r\n"), 0);
  CHECK_EQ_STR(transcript(&f),
               "HEAD GET / 1.1 ka=1 ec=0 up=0\n"
               "host: a\nx-long-name: abcdefghi\nEND\n");
  fixture_free(&f);
}

static void pipelined_requests_pause_and_resume(void) {
  const char *one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const char *two = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  const char *three = "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
  char all[256];
  size_t len, n;
  int status;
  fixture f;

  snprintf(all, sizeof(all), "%s%s%s", one, two, three);
  len = strlen(all);
  fixture_init(&f);
  f.t.pause_complete = 1;

  n = lc__http_reader_feed(&f.r, all, len, &status);
  CHECK_EQ_INT(status, 0);
  CHECK_EQ_INT(n, strlen(one));
  CHECK_EQ_INT(f.t.completes, 1);
  /* Paused: nothing more is read until resumed. */
  CHECK_EQ_INT(lc__http_reader_feed(&f.r, all + n, len - n, &status), 0);
  CHECK_EQ_INT(status, 0);
  CHECK_EQ_INT(f.t.heads, 1);

  lc__http_reader_resume(&f.r);
  n += lc__http_reader_feed(&f.r, all + n, len - n, &status);
  CHECK_EQ_INT(n, strlen(one) + strlen(two));
  CHECK_EQ_INT(f.t.completes, 2);

  lc__http_reader_resume(&f.r);
  n += lc__http_reader_feed(&f.r, all + n, len - n, &status);
  CHECK_EQ_INT(n, len);
  CHECK_EQ_INT(f.t.completes, 3);
  CHECK_EQ_STR(transcript(&f),
               "HEAD GET /1 1.1 ka=1 ec=0 up=0\nhost: a\nEND\n"
               "HEAD GET /2 1.1 ka=1 ec=0 up=0\nhost: a\nEND\n"
               "HEAD GET /3 1.1 ka=1 ec=0 up=0\nhost: a\nEND\n");
  fixture_free(&f);
}

/* Bad bytes behind a request whose answer is pending are not looked at
 * until it is answered: that request's response must not be cut short. */
static void bad_bytes_wait_behind_a_paused_request(void) {
  const char *one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  char all[128];
  size_t len, n;
  int status;
  fixture f;

  snprintf(all, sizeof(all), "%s\n\rGET /2 HTTP/1.1\r\n\r\n", one);
  len = strlen(all);
  fixture_init(&f);
  f.t.pause_complete = 1;
  n = lc__http_reader_feed(&f.r, all, len, &status);
  CHECK_EQ_INT(status, 0);
  CHECK_EQ_INT(n, strlen(one));
  CHECK_EQ_INT(f.t.completes, 1);
  lc__http_reader_resume(&f.r);
  lc__http_reader_feed(&f.r, all + n, len - n, &status);
  CHECK_EQ_INT(status, 400);
  fixture_free(&f);
}

static void pause_in_head_holds_the_body(void) {
  const char *req = "POST / HTTP/1.1\r\nHost: a\r\n"
                    "Content-Length: 4\r\n\r\nabcd";
  size_t len = strlen(req), n;
  int status;
  fixture f;

  fixture_init(&f);
  f.t.pause_head = 1;
  n = lc__http_reader_feed(&f.r, req, len, &status);
  CHECK_EQ_INT(status, 0);
  CHECK_EQ_INT(f.t.heads, 1);
  CHECK_EQ_INT(f.t.bodies, 0);
  CHECK(n < len - 4 + 1);
  lc__http_reader_resume(&f.r);
  n += lc__http_reader_feed(&f.r, req + n, len - n, &status);
  CHECK_EQ_INT(n, len);
  CHECK_EQ_INT(f.t.completes, 1);
  CHECK_EQ_STR(transcript(&f), "HEAD POST / 1.1 ka=1 ec=0 up=0\nhost: a\n"
                               "content-length: 4\nBODY abcd\nEND\n");
  fixture_free(&f);
}

static void chunked_request_body_is_decoded(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "POST /c HTTP/1.1\r\nHost: a\r\n"
                            "Transfer-Encoding: chunked\r\n"
                            "\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n"
                            "0\r\nX-Trailer: ignored\r\n\r\n"),
               0);
  CHECK_EQ_STR(transcript(&f), "HEAD POST /c 1.1 ka=1 ec=0 up=0\nhost: a\n"
                               "transfer-encoding: chunked\n"
                               "BODY hello world\nEND\n");
  CHECK(lc__http_reader_idle(&f.r));
  fixture_free(&f);
}

/* Feeds a request line with a url of n bytes. */
static int feed_url_of(fixture *f, size_t n, const char *rest) {
  char *url = malloc(n + 1);
  int status;

  memset(url, 'a', n);
  url[0] = '/';
  url[n] = '\0';
  status = feed_str(f, "GET ");
  if (status == 0)
    status = feed_str(f, url);
  if (status == 0)
    status = feed_str(f, rest);
  free(url);
  return status;
}

static void url_over_limit_is_414(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_url_of(&f, 8192, " HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
  CHECK_EQ_INT(f.t.heads, 1);
  fixture_free(&f);

  /* Refused before the request line ends. */
  fixture_init(&f);
  CHECK_EQ_INT(feed_url_of(&f, 8193, ""), 414);
  CHECK(lc__http_reader_error(&f.r) != NULL);
  CHECK_EQ_INT(f.t.heads, 0);
  fixture_free(&f);
}

static void header_block_over_limit_is_431(void) {
  char piece[1000];
  size_t fed = 0;
  int status = 0;
  fixture f;

  /* A header value that never ends is refused once it passes the limit. */
  fixture_init(&f);
  memset(piece, 'v', sizeof(piece));
  CHECK_EQ_INT(feed_str(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Endless: "), 0);
  while (status == 0 && fed < 100000) {
    status = feed_piece(&f, piece, sizeof(piece));
    fed += sizeof(piece);
  }
  CHECK_EQ_INT(status, 431);
  CHECK(fed <= 17000);
  CHECK_EQ_STR(lc__http_reader_error(&f.r), "header block too large");
  CHECK_EQ_INT(f.t.heads, 0);
  fixture_free(&f);

  /* Just under the limit is fine. */
  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "), 0);
  for (fed = 0; fed < 16000; fed += 1000)
    CHECK_EQ_INT(feed_piece(&f, piece, 1000), 0);
  CHECK_EQ_INT(feed_str(&f, "\r\n\r\n"), 0);
  CHECK_EQ_INT(f.t.heads, 1);
  fixture_free(&f);
}

/* Feeds a GET with n headers; returns the status. */
static int feed_headers(fixture *f, int n) {
  char line[64];
  int i, status = feed_str(f, "GET / HTTP/1.0\r\n");

  for (i = 0; i < n && status == 0; i++) {
    snprintf(line, sizeof(line), "X-H%d: %d\r\n", i, i);
    status = feed_str(f, line);
  }
  return status ? status : feed_str(f, "\r\n");
}

static void too_many_headers_is_431(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_headers(&f, 100), 0);
  CHECK_EQ_INT(f.t.nheaders, 100);
  fixture_free(&f);

  fixture_init(&f);
  CHECK_EQ_INT(feed_headers(&f, 101), 431);
  CHECK_EQ_INT(f.t.heads, 0);
  fixture_free(&f);
}

static void content_length_over_limit_is_413(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "POST / HTTP/1.1\r\nHost: a\r\n"
                            "Content-Length: 1048577\r\n"
                            "\r\nsome body bytes"),
               413);
  CHECK_EQ_INT(f.t.heads, 0);
  CHECK_EQ_INT(f.t.bodies, 0);
  fixture_free(&f);

  /* At the limit the request goes through. */
  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "POST / HTTP/1.1\r\nHost: a\r\n"
                            "Content-Length: 1048576\r\n"
                            "\r\nsome body bytes"),
               0);
  CHECK_EQ_INT(f.t.heads, 1);
  fixture_free(&f);

  /* 0 means no limit. */
  fixture_init(&f);
  f.limits.max_body_size = 0;
  CHECK_EQ_INT(feed_str(&f, "POST / HTTP/1.1\r\nHost: a\r\n"
                            "Content-Length: 99999999\r\n"
                            "\r\nabc"),
               0);
  CHECK_EQ_INT(f.t.heads, 1);
  fixture_free(&f);
}

static void chunked_body_over_limit_is_413(void) {
  const char *req = "POST / HTTP/1.1\r\nHost: a\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  fixture f;

  fixture_init(&f);
  f.limits.max_body_size = 10;
  CHECK_EQ_INT(feed_str(&f, req), 413);
  CHECK_EQ_INT(f.t.completes, 0);
  fixture_free(&f);

  /* An oversize chunk is refused at its size line, before its data. */
  fixture_init(&f);
  f.limits.max_body_size = 10;
  CHECK_EQ_INT(feed_str(&f, "POST / HTTP/1.1\r\nHost: a\r\n"
                            "Transfer-Encoding: chunked\r\n"
                            "\r\n5\r\nhello\r\n6\r\n"),
               413);
  CHECK_EQ_STR(transcript(&f), "HEAD POST / 1.1 ka=1 ec=0 up=0\nhost: a\n"
                               "transfer-encoding: chunked\nBODY hello");
  fixture_free(&f);

  fixture_init(&f);
  f.limits.max_body_size = 11;
  CHECK_EQ_INT(feed_str(&f, req), 0);
  CHECK_EQ_INT(f.t.completes, 1);
  fixture_free(&f);
}

static void malformed_request_is_400(void) {
  const char *bad[] = {
      "BLAH / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/x.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nNo-Colon\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12x\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  size_t i;
  int status;
  fixture f;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    fixture_init(&f);
    CHECK_EQ_INT(feed_str(&f, bad[i]), 400);
    CHECK(lc__http_reader_error(&f.r) != NULL);
    /* Dead from now on. */
    CHECK_EQ_INT(
        lc__http_reader_feed(&f.r, "GET / HTTP/1.1\r\n\r\n", 18, &status), 0);
    CHECK_EQ_INT(status, 400);
    CHECK_EQ_INT(f.t.completes, 0);
    fixture_free(&f);
  }
}

static void expect_continue_is_reported(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "POST / HTTP/1.1\r\nHost: a\r\n"
                            "Expect: 100-Continue\r\n"
                            "Content-Length: 1\r\n\r\n"),
               0);
  CHECK_EQ_INT(f.t.heads, 1);
  CHECK_EQ_INT(f.t.expect_continue, 1);
  CHECK_EQ_INT(feed_str(&f, "x"), 0);
  CHECK_EQ_INT(feed_str(&f, "POST / HTTP/1.1\r\nHost: a\r\n"
                            "Content-Length: 0\r\n\r\n"), 0);
  CHECK_EQ_INT(f.t.heads, 2);
  CHECK_EQ_INT(f.t.expect_continue, 0);
  fixture_free(&f);
}

static int keep_alive_of(const char *req) {
  fixture f;
  int ka;

  fixture_init(&f);
  f.t.keep_alive = -1;
  CHECK_EQ_INT(feed_str(&f, req), 0);
  ka = f.t.keep_alive;
  fixture_free(&f);
  return ka;
}

static void http10_keep_alive_rules(void) {
  fixture f;

  CHECK_EQ_INT(keep_alive_of("GET / HTTP/1.0\r\n\r\n"), 0);
  CHECK_EQ_INT(
      keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 1);
  CHECK_EQ_INT(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
  CHECK_EQ_INT(keep_alive_of("GET / HTTP/1.1\r\nHost: a\r\n"
                             "Connection: close\r\n\r\n"), 0);

  /* After a last request, what follows is not read (RFC 7230 6.6). */
  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, "GET /a HTTP/1.0\r\n\r\n"
                            "GET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
               0);
  CHECK_EQ_INT(feed_str(&f, "GET /c HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
  CHECK_EQ_INT(f.t.heads, 1);
  CHECK_EQ_INT(f.t.completes, 1);
  fixture_free(&f);
}

static void upgrade_request_closes_and_ignores_the_rest(void) {
  const char *req = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                    "Upgrade: websocket\r\n\r\n\x81\x05hello";
  size_t n;
  int status;
  fixture f;

  fixture_init(&f);
  n = lc__http_reader_feed(&f.r, req, strlen(req), &status);
  CHECK_EQ_INT(status, 0);
  CHECK_EQ_INT(n, strlen(req));
  CHECK_EQ_INT(f.t.upgrade, 1);
  CHECK_EQ_INT(f.t.keep_alive, 0);
  CHECK_EQ_INT(f.t.completes, 1);
  CHECK_EQ_INT(
      lc__http_reader_feed(&f.r, "GET / HTTP/1.1\r\n\r\n", 18, &status), 18);
  CHECK_EQ_INT(status, 0);
  CHECK_EQ_INT(f.t.heads, 1);
  fixture_free(&f);
}

static void idle_and_in_head_follow_the_request(void) {
  fixture f;

  fixture_init(&f);
  CHECK(lc__http_reader_idle(&f.r));
  CHECK(!lc__http_reader_in_head(&f.r));
  CHECK_EQ_INT(feed_str(&f, "PO"), 0);
  CHECK(!lc__http_reader_idle(&f.r));
  CHECK(lc__http_reader_in_head(&f.r));
  CHECK_EQ_INT(feed_str(&f, "ST / HTTP/1.1\r\nHost: a\r\n"
                            "Content-Length: 2\r\n\r\n"), 0);
  CHECK(!lc__http_reader_idle(&f.r));
  CHECK(!lc__http_reader_in_head(&f.r));
  CHECK_EQ_INT(feed_str(&f, "ok"), 0);
  CHECK(lc__http_reader_idle(&f.r));
  CHECK(!lc__http_reader_in_head(&f.r));
  fixture_free(&f);
}

static void reuses_buffers_across_requests(void) {
  const char *req = "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
  char *head_base;
  lc__http_header *fields;
  int i;
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed_str(&f, req), 0);
  head_base = f.r.head.base;
  fields = f.r.fields;
  for (i = 0; i < 100; i++)
    CHECK_EQ_INT(feed_str(&f, req), 0);
  CHECK_EQ_INT(f.t.completes, 101);
  CHECK(f.r.head.base == head_base);
  CHECK(f.r.fields == fields);
  fixture_free(&f);
}

/* Strict framing (http_framing.c) ------------------------------------------ */

/* The status req gets fed whole (bytewise 0) or one byte at a time; *heads
 * says how many heads reached the app. */
static int status_of(const char *req, int bytewise, int *heads) {
  size_t len = strlen(req), i;
  int status = 0;
  fixture f;

  fixture_init(&f);
  if (!bytewise)
    status = feed_piece(&f, req, len);
  for (i = 0; bytewise && i < len && status == 0; i++)
    status = feed_piece(&f, req + i, 1);
  *heads = f.t.heads;
  fixture_free(&f);
  return status;
}

/* req is refused with status before its head reaches the app, whole and
 * byte by byte. */
static void check_refused(const char *req, int status) {
  int heads, bytewise;

  for (bytewise = 0; bytewise < 2; bytewise++) {
    if (status_of(req, bytewise, &heads) != status || heads != 0)
      fprintf(stderr, "  refusing (bytewise %d): %s\n", bytewise, req);
    CHECK_EQ_INT(status_of(req, bytewise, &heads), status);
    CHECK_EQ_INT(heads, 0);
  }
}

static void check_accepted(const char *req, int nheads) {
  int heads, bytewise;

  for (bytewise = 0; bytewise < 2; bytewise++) {
    CHECK_EQ_INT(status_of(req, bytewise, &heads), 0);
    CHECK_EQ_INT(heads, nheads);
  }
}

static void whitespace_before_colon_is_400(void) {
  /* The smuggling case: http-parser would frame the body by this header. */
  check_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"
                "hello", 400);
  check_refused("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400);
  check_accepted("GET / HTTP/1.1\r\nHost: a\r\nX-Ok!#$%&'*+.^_`|~: 1\r\n\r\n",
                 1);
}

static void chunk_data_must_end_in_crlf(void) {
  int heads;

  /* The head went to the app; the body is refused at the bad bytes. */
  CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: a\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhelloXX0\r\n\r\n", 0, &heads), 400);
  CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: a\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\rX0\r\n\r\n", 1, &heads), 400);
  CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: a\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\nX0\r\n\r\n", 1, &heads), 400);
  check_accepted("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n5\r\nhello\r\n0\r\n\r\n", 1);
}

static void http11_needs_exactly_one_host(void) {
  check_refused("GET / HTTP/1.1\r\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  check_refused("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", 400);
  check_accepted("GET / HTTP/1.0\r\n\r\n", 1);
  check_accepted("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 1);
}

static void other_versions_are_505(void) {
  fixture f;

  check_refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
  check_refused("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
  check_refused("GET / HTTP/0.9\r\n\r\n", 505);
  check_refused("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400);
  check_refused("GET /\r\n\r\n", 400);
  fixture_init(&f);
  feed_str(&f, "GET / HTTP/3.0\r\n\r\n");
  CHECK_EQ_STR(lc__http_reader_error(&f.r), "HTTP version not supported");
  fixture_free(&f);
}

static void lines_end_in_crlf_only(void) {
  check_refused("GET / HTTP/1.1\nHost: a\n\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
  /* A CR alone: http-parser would eat the byte after it. */
  check_refused("GET / HTTP/1.1\r\nHost: a\r\nX: 1\rY: 2\r\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\nX:\rY: 2\r\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\n\rX", 400);
  check_refused("GET / HTTP/1.1\rXHost: a\r\n\r\n", 400);
  check_refused("\rXGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400);
  /* Empty lines before a request line are allowed (RFC 9112 2.2). */
  check_accepted("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1);
}

static void chunk_lines_end_in_crlf_only(void) {
  const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                     "\r\n\r\n";
  const char *bad[] = {"5\rXhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
                       "0\rX\r\n", "0\r\nX-T: 1\rY\r\n\r\n", "0\r\n\rX",
                       "5;a=\x01\r\nhello\r\n0\r\n\r\n", "g\r\n",
                       "5x\r\nhello\r\n0\r\n\r\n"};
  char req[256];
  size_t i;
  int heads, bytewise;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    for (bytewise = 0; bytewise < 2; bytewise++) {
      snprintf(req, sizeof(req), "%s%s", head, bad[i]);
      CHECK_EQ_INT(status_of(req, bytewise, &heads), 400);
    }
  snprintf(req, sizeof(req), "%s%s", head,
           "5;name=\"v\" \t\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
           "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
  check_accepted(req, 2);
}

static void obs_fold_is_400(void) {
  check_refused("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n", 400);
  check_refused("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n\tb\r\n\r\n",
                400);
  check_refused("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);
}

/* A request after a body is checked as strictly as the first. */
static void pipelined_requests_are_each_checked(void) {
  int heads, bytewise;

  for (bytewise = 0; bytewise < 2; bytewise++) {
    CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3"
                           "\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n"
                           "Content-Length : 3\r\n\r\nabc",
                           bytewise, &heads),
                 400);
    CHECK_EQ_INT(heads, 1);
  }
}

/* Response writing --------------------------------------------------------- */

static void response_init(lc__http_response *res, int status, int minor,
                          int64_t length) {
  memset(res, 0, sizeof(*res));
  res->status = status;
  res->major = 1;
  res->minor = minor;
  res->keep_alive = 1;
  res->content_length = length;
}

/* The head as a string, with the Date value replaced by "D". */
static char *head_text(lc__http_response *res, const lc__http_header *h,
                       size_t n) {
  lc__buf out = LC__BUF_INIT;
  const char *date = lc__http_date();
  char *s, *at;

  if (lc__http_write_head(&out, res, h, n) != 0) {
    lc__buf_free(&out);
    return strdup("EINVAL");
  }
  lc__buf_append(&out, "", 1);
  s = strdup(out.base);
  at = strstr(s, date);
  if (at != NULL) {
    *at = 'D';
    memmove(at + 1, at + strlen(date), strlen(at + strlen(date)) + 1);
  }
  lc__buf_free(&out);
  return s;
}

static const lc__http_header text_plain[] = {
    {"Content-Type", 12, "text/plain", 10}};

static void writes_content_length_when_known(void) {
  lc__http_response res;
  char *s;

  response_init(&res, 200, 1, 5);
  s = head_text(&res, text_plain, 1);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  "Date: D\r\nContent-Length: 5\r\n\r\n");
  CHECK_EQ_INT(res.chunked, 0);
  CHECK_EQ_INT(res.no_body, 0);
  CHECK_EQ_INT(res.keep_alive, 1);
  free(s);
}

static void chunks_unknown_length_for_http11(void) {
  lc__http_response res;
  char *s;

  response_init(&res, 404, 1, -1);
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 404 Not Found\r\nDate: D\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n");
  CHECK_EQ_INT(res.chunked, 1);
  CHECK_EQ_INT(res.keep_alive, 1);
  free(s);
}

static void closes_unknown_length_for_http10(void) {
  lc__http_response res;
  char *s;

  response_init(&res, 200, 0, -1);
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nDate: D\r\nConnection: close\r\n\r\n");
  CHECK_EQ_INT(res.chunked, 0);
  CHECK_EQ_INT(res.keep_alive, 0);
  free(s);

  /* A known length keeps an HTTP/1.0 keep-alive connection open. */
  response_init(&res, 200, 0, 2);
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 2\r\n"
                  "Connection: keep-alive\r\n\r\n");
  CHECK_EQ_INT(res.keep_alive, 1);
  free(s);
}

static void head_response_has_no_body(void) {
  lc__http_response res;
  char *s;

  response_init(&res, 200, 1, 1234);
  res.head_request = 1;
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 1234\r\n\r\n");
  CHECK_EQ_INT(res.no_body, 1);
  CHECK_EQ_INT(res.chunked, 0);
  free(s);

  response_init(&res, 200, 1, -1);
  res.head_request = 1;
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nDate: D\r\n\r\n");
  CHECK_EQ_INT(res.chunked, 0);
  CHECK_EQ_INT(res.keep_alive, 1);
  free(s);

  response_init(&res, 204, 1, 0);
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 204 No Content\r\nDate: D\r\n\r\n");
  CHECK_EQ_INT(res.no_body, 1);
  free(s);

  response_init(&res, 304, 1, -1);
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 304 Not Modified\r\nDate: D\r\n\r\n");
  CHECK_EQ_INT(res.no_body, 1);
  CHECK_EQ_INT(res.chunked, 0);
  free(s);
}

static void app_connection_close_wins(void) {
  const lc__http_header close[] = {{"connection", 10, "Close", 5}};
  lc__http_response res;
  char *s;

  response_init(&res, 200, 1, 0);
  s = head_text(&res, close, 1);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nconnection: Close\r\nDate: D\r\n"
                  "Content-Length: 0\r\n\r\n");
  CHECK_EQ_INT(res.keep_alive, 0);
  free(s);

  /* Closing by the writer's own choice says so. */
  response_init(&res, 200, 1, 0);
  res.keep_alive = 0;
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n");
  free(s);
}

static void app_framing_headers_win(void) {
  const lc__http_header length[] = {{"Content-Length", 14, "3", 1},
                                    {"Date", 4, "whenever", 8}};
  const lc__http_header te[] = {{"Transfer-Encoding", 17, "gzip, chunked", 13}};
  lc__http_response res;
  char *s;

  response_init(&res, 200, 1, -1);
  s = head_text(&res, length, 2);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nDate: whenever\r\n"
                  "\r\n");
  CHECK_EQ_INT(res.chunked, 0);
  CHECK_EQ_INT(res.keep_alive, 1);
  free(s);

  response_init(&res, 200, 1, 10);
  s = head_text(&res, te, 1);
  CHECK_EQ_STR(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
                  "Date: D\r\n\r\n");
  CHECK_EQ_INT(res.chunked, 1);
  free(s);
}

static void rejects_header_injection(void) {
  const lc__http_header bad[][1] = {
      {{"X-A", 3, "ok\r\nSet-Cookie: evil=1", 23}},
      {{"X-A", 3, "line\nfeed", 9}},
      {{"X-A", 3, "nul\0byte", 8}},
      {{"X-A\r\nX-B", 8, "v", 1}},
      {{"Bad Name", 8, "v", 1}},
      {{"Bad:Name", 8, "v", 1}},
      {{"", 0, "v", 1}},
  };
  lc__http_response res;
  lc__buf out = LC__BUF_INIT;
  size_t i;

  lc__buf_puts(&out, "before");
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    response_init(&res, 200, 1, 0);
    CHECK_EQ_INT(lc__http_write_head(&out, &res, bad[i], 1), UV_EINVAL);
    CHECK_EQ_INT(out.len, 6);
  }
  response_init(&res, 200, 1, 0);
  res.reason = "OK\r\nX-Evil: 1";
  CHECK_EQ_INT(lc__http_write_head(&out, &res, NULL, 0), UV_EINVAL);
  CHECK_EQ_INT(out.len, 6);
  response_init(&res, 200, 1, 0);
  CHECK_EQ_INT(lc__http_write_head(&out, &res, text_plain, 1), 0);
  CHECK(out.len > 6);
  lc__buf_free(&out);
}

static void custom_reason_is_written(void) {
  lc__http_response res;
  char *s;

  response_init(&res, 299, 1, 0);
  res.reason = "Fine Enough";
  s = head_text(&res, NULL, 0);
  CHECK_EQ_STR(s, "HTTP/1.1 299 Fine Enough\r\nDate: D\r\nContent-Length: 0\r\n"
                  "\r\n");
  free(s);
}

static void chunk_framing(void) {
  lc__buf out = LC__BUF_INIT;

  CHECK_EQ_INT(lc__http_write_chunk(&out, "hello", 5), 0);
  CHECK_EQ_INT(lc__http_write_chunk(&out, "", 0), 0);
  CHECK_EQ_INT(lc__http_write_chunk(&out, "abcdefghijklmnopqrstuvwxyz", 26), 0);
  CHECK_EQ_INT(lc__http_write_last_chunk(&out), 0);
  lc__buf_append(&out, "", 1);
  CHECK_EQ_STR(out.base, "5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                         "0\r\n\r\n");
  lc__buf_free(&out);
}

static void continue_line(void) {
  lc__buf out = LC__BUF_INIT;

  CHECK_EQ_INT(lc__http_write_continue(&out), 0);
  lc__buf_append(&out, "", 1);
  CHECK_EQ_STR(out.base, "HTTP/1.1 100 Continue\r\n\r\n");
  lc__buf_free(&out);
}

/* Parses the error response with http-parser in response mode. */
typedef struct parsed_response {
  int complete;
  int connection_close;
  size_t body_len;
  char body[128];
} parsed_response;

static int pr_body(http_parser *p, const char *at, size_t len) {
  parsed_response *pr = p->data;

  if (pr->body_len + len < sizeof(pr->body)) {
    memcpy(pr->body + pr->body_len, at, len);
    pr->body_len += len;
  }
  return 0;
}

static int pr_complete(http_parser *p) {
  parsed_response *pr = p->data;

  pr->complete = 1;
  pr->connection_close = !http_should_keep_alive(p);
  return 0;
}

static void error_response_is_complete(void) {
  http_parser_settings settings;
  parsed_response pr;
  http_parser p;
  lc__buf out = LC__BUF_INIT;

  CHECK_EQ_INT(lc__http_write_error(&out, 431, 0), 0);
  CHECK(memcmp(out.base, "HTTP/1.1 431 Request Header Fields Too Large\r\n",
               46) == 0);
  memset(&settings, 0, sizeof(settings));
  memset(&pr, 0, sizeof(pr));
  settings.on_body = pr_body;
  settings.on_message_complete = pr_complete;
  http_parser_init(&p, HTTP_RESPONSE);
  p.data = &pr;
  CHECK_EQ_INT(http_parser_execute(&p, &settings, out.base, out.len), out.len);
  CHECK_EQ_INT(p.status_code, 431);
  /* Complete by its Content-Length, not by the connection closing. */
  CHECK_EQ_INT(pr.complete, 1);
  CHECK_EQ_INT(pr.connection_close, 1);
  CHECK_EQ_STR(pr.body, "431 Request Header Fields Too Large\n");
  lc__buf_free(&out);
}

/* Answering HEAD: the same head, Content-Length included, and no body. */
static void error_response_to_head_has_no_body(void) {
  lc__buf get = LC__BUF_INIT, head = LC__BUF_INIT;
  const char *end;

  CHECK_EQ_INT(lc__http_write_error(&get, 503, 0), 0);
  CHECK_EQ_INT(lc__http_write_error(&head, 503, 1), 0);
  end = memmem(get.base, get.len, "\r\n\r\n", 4);
  CHECK(end != NULL);
  if (end != NULL) /* the Date may differ, its length does not */
    CHECK_EQ_INT(head.len, (size_t)(end + 4 - get.base));
  CHECK(memmem(head.base, head.len, "\r\nContent-Length: 24\r\n", 22) != NULL);
  CHECK(head.len > 4 && memcmp(head.base + head.len - 4, "\r\n\r\n", 4) == 0);
  lc__buf_free(&get);
  lc__buf_free(&head);
}

static void date_format(void) {
  char expected[64];
  const char *date;
  struct tm tm;
  time_t before, after;
  int tries = 0;

  do {
    before = time(NULL);
    date = lc__http_date();
    after = time(NULL);
  } while (before != after && ++tries < 5);
  gmtime_r(&before, &tm);
  /* The C locale is in force: strftime's names are English here. */
  strftime(expected, sizeof(expected), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  CHECK_EQ_STR(date, expected);
  CHECK_EQ_INT(strlen(date), 29);
}

static void status_text_covers_common_codes(void) {
  CHECK_EQ_STR(lc__http_status_text(200), "OK");
  CHECK_EQ_STR(lc__http_status_text(404), "Not Found");
  CHECK_EQ_STR(lc__http_status_text(413), "Payload Too Large");
  CHECK_EQ_STR(lc__http_status_text(414), "URI Too Long");
  CHECK_EQ_STR(lc__http_status_text(431), "Request Header Fields Too Large");
  CHECK_EQ_STR(lc__http_status_text(505), "HTTP Version Not Supported");
  CHECK_EQ_STR(lc__http_status_text(799), "Unknown");
}

int main(void) {
  RUN(reads_headers_lowercased);
  RUN(same_callbacks_for_every_split);
  RUN(header_value_split_across_feeds_is_joined);
  RUN(pipelined_requests_pause_and_resume);
  RUN(bad_bytes_wait_behind_a_paused_request);
  RUN(pause_in_head_holds_the_body);
  RUN(chunked_request_body_is_decoded);
  RUN(url_over_limit_is_414);
  RUN(header_block_over_limit_is_431);
  RUN(too_many_headers_is_431);
  RUN(content_length_over_limit_is_413);
  RUN(chunked_body_over_limit_is_413);
  RUN(malformed_request_is_400);
  RUN(expect_continue_is_reported);
  RUN(http10_keep_alive_rules);
  RUN(upgrade_request_closes_and_ignores_the_rest);
  RUN(idle_and_in_head_follow_the_request);
  RUN(reuses_buffers_across_requests);
  RUN(whitespace_before_colon_is_400);
  RUN(chunk_data_must_end_in_crlf);
  RUN(http11_needs_exactly_one_host);
  RUN(other_versions_are_505);
  RUN(lines_end_in_crlf_only);
  RUN(chunk_lines_end_in_crlf_only);
  RUN(obs_fold_is_400);
  RUN(pipelined_requests_are_each_checked);
  RUN(writes_content_length_when_known);
  RUN(chunks_unknown_length_for_http11);
  RUN(closes_unknown_length_for_http10);
  RUN(head_response_has_no_body);
  RUN(app_connection_close_wins);
  RUN(app_framing_headers_win);
  RUN(rejects_header_injection);
  RUN(custom_reason_is_written);
  RUN(chunk_framing);
  RUN(continue_line);
  RUN(error_response_is_complete);
  RUN(error_response_to_head_has_no_body);
  RUN(date_format);
  RUN(status_text_covers_common_codes);
  TEST_EXIT();
}
