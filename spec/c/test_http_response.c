/*
 * test_http_response.c - the client's half of the codec: the response
 * reader (same rules and limits as the request reader) and the request
 * writer, driven with bytes only. Callbacks write a transcript, so a
 * response is checked against the text it should produce.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http_codec.h"
#include "test.h"

typedef struct rec {
  lc__buf log;
  int in_body;
  int pause_body;
  int paused;
  int completes;
} rec;

static void log_str(rec *t, const char *s) { lc__buf_puts(&t->log, s); }

static int rec_head(void *arg, const lc__http_head *h) {
  rec *t = arg;
  char line[128];
  size_t i;

  snprintf(line, sizeof(line), "STATUS %d ", h->status);
  log_str(t, line);
  lc__buf_append(&t->log, h->url, h->url_len);
  snprintf(line, sizeof(line), " %d.%d ka=%d%s\n", h->major, h->minor,
           h->keep_alive, h->method == NULL ? "" : " METHOD?");
  log_str(t, line);
  for (i = 0; i < h->nheaders; i++) {
    lc__buf_append(&t->log, h->headers[i].name, h->headers[i].name_len);
    log_str(t, ": ");
    lc__buf_append(&t->log, h->headers[i].value, h->headers[i].value_len);
    log_str(t, "\n");
  }
  return 0;
}

static int rec_body(void *arg, const char *data, size_t len) {
  rec *t = arg;

  if (!t->in_body)
    log_str(t, "BODY ");
  t->in_body = 1;
  lc__buf_append(&t->log, data, len);
  if (t->pause_body)
    t->paused = 1;
  return t->pause_body;
}

static int rec_complete(void *arg) {
  rec *t = arg;

  log_str(t, t->in_body ? "\nEND\n" : "END\n");
  t->in_body = 0;
  t->completes++;
  return 0;
}

static const lc__http_reader_cb rec_cb = {rec_head, rec_body, rec_complete};

typedef struct fixture {
  lc__http_limits limits;
  lc__http_reader r;
  rec t;
} fixture;

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof(*f));
  lc__http_limits_init(&f->limits);
  lc__http_reader_init_response(&f->r, &f->limits, &rec_cb, &f->t);
}

static void fixture_free(fixture *f) {
  lc__http_reader_free(&f->r);
  lc__buf_free(&f->t.log);
}

static const char *transcript(fixture *f) {
  lc__buf_append(&f->t.log, "", 1);
  f->t.log.len--;
  return f->t.log.base;
}

/* Feeds s in pieces of `step` bytes (0: at once), resuming after pauses. */
static int feed(fixture *f, const char *s, size_t step) {
  size_t len = strlen(s), n, piece;
  int status = 0;

  while (len > 0) {
    piece = step == 0 || step > len ? len : step;
    n = lc__http_reader_feed(&f->r, s, piece, &status);
    if (status != 0)
      return status;
    if (f->t.paused) {
      f->t.paused = 0;
      lc__http_reader_resume(&f->r);
    } else if (n != piece) {
      return -1;
    }
    s += n;
    len -= n;
  }
  return 0;
}

static void reads_content_length_and_chunked_alike(void) {
  static const char *stream =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"
      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  static const char *expected =
      "STATUS 200 OK 1.1 ka=1\ncontent-length: 5\nx-a: 1\nBODY hello\nEND\n"
      "STATUS 404 Not Found 1.1 ka=1\ntransfer-encoding: chunked\n"
      "BODY abcde\nEND\n";
  size_t step;

  for (step = 0; step < 8; step++) {
    fixture f;
    fixture_init(&f);
    f.t.pause_body = (int)(step & 1);
    CHECK_EQ_INT(feed(&f, stream, step), 0);
    CHECK_EQ_STR(transcript(&f), expected);
    CHECK(lc__http_reader_keep_alive(&f.r));
    fixture_free(&f);
  }
}

static void body_until_close_ends_at_eof(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of "
                        "it",
                    0),
               0);
  CHECK_EQ_INT(f.t.completes, 0);
  CHECK_EQ_INT(lc__http_reader_eof(&f.r), 0);
  CHECK_EQ_STR(transcript(&f),
               "STATUS 200 OK 1.1 ka=0\nconnection: close\nBODY all of it\n"
               "END\n");
  CHECK(!lc__http_reader_keep_alive(&f.r));
  fixture_free(&f);
}

static void eof_inside_a_body_is_an_error(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345",
                    0),
               0);
  CHECK_EQ_INT(lc__http_reader_eof(&f.r), 400);
  CHECK_EQ_STR(lc__http_reader_error(&f.r),
               "connection closed before the end of the body");
  CHECK_EQ_INT(f.t.completes, 0);
  fixture_free(&f);

  fixture_init(&f);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nContent-Le", 0), 0);
  CHECK_EQ_INT(lc__http_reader_eof(&f.r), 400);
  CHECK_EQ_STR(lc__http_reader_error(&f.r), "connection closed inside the head");
  fixture_free(&f);

  /* Between responses, a close is no error. */
  fixture_init(&f);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 204 No Content\r\n\r\n", 0), 0);
  CHECK_EQ_INT(lc__http_reader_eof(&f.r), 0);
  fixture_free(&f);
}

static void head_answer_has_no_body(void) {
  fixture f;

  fixture_init(&f);
  lc__http_reader_expect(&f.r, 1);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 0),
               0);
  CHECK_EQ_INT(f.t.completes, 1);
  CHECK(lc__http_reader_keep_alive(&f.r));
  lc__http_reader_expect(&f.r, 0);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0),
               0);
  CHECK_EQ_STR(transcript(&f),
               "STATUS 200 OK 1.1 ka=1\ncontent-length: 1000\nEND\n"
               "STATUS 200 OK 1.1 ka=1\ncontent-length: 2\nBODY ok\nEND\n");
  fixture_free(&f);
}

static void informational_responses_are_skipped(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed(&f,
                    "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                    3),
               0);
  CHECK_EQ_STR(transcript(&f),
               "STATUS 201 Created 1.1 ka=1\ncontent-length: 2\nBODY ok\nEND\n");
  fixture_free(&f);

  fixture_init(&f);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                    0),
               400);
  fixture_free(&f);
}

static void no_content_and_not_modified_have_no_body(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 204 No Content\r\n\r\n"
                        "HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
                    0),
               0);
  CHECK_EQ_INT(f.t.completes, 2);
  CHECK(lc__http_reader_keep_alive(&f.r));
  fixture_free(&f);
}

static void limits_apply_to_responses(void) {
  fixture f;
  char big[600];

  fixture_init(&f);
  f.limits.max_header_size = 256;
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nX-Big: ", 0), 0);
  CHECK_EQ_INT(feed(&f, big, 0), 431);
  fixture_free(&f);

  fixture_init(&f);
  f.limits.max_headers = 2;
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0),
               431);
  fixture_free(&f);

  fixture_init(&f);
  f.limits.max_body_size = 4;
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0),
               413);
  fixture_free(&f);

  fixture_init(&f);
  f.limits.max_body_size = 4;
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n3\r\n",
                    0),
               413);
  fixture_free(&f);

  /* A body that ends with the connection has no length at its head: it is
   * counted as it comes (the HTTP client fuzzer found it unbounded). */
  fixture_init(&f);
  f.limits.max_body_size = 4;
  CHECK_EQ_INT(feed(&f, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc", 0),
               0);
  CHECK_EQ_INT(feed(&f, "de", 0), 413);
  fixture_free(&f);
}

static void malformed_responses_are_refused(void) {
  static const char *bad[] = {
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "SMTP ready\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 0 OK\r\nContent-Length: 0\r\n\r\n", /* no such status */
      "HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n",
      /* a 1xx has no body: what follows its head is the next response */
      "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhello",
  };
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    fixture f;
    fixture_init(&f);
    CHECK_EQ_INT(feed(&f, bad[i], 0), 400);
    CHECK(lc__http_reader_error(&f.r) != NULL);
    fixture_free(&f);
  }
}

static void http10_response_without_length_reads_to_close(void) {
  fixture f;

  fixture_init(&f);
  CHECK_EQ_INT(feed(&f, "HTTP/1.0 200 OK\r\n\r\nold", 0), 0);
  CHECK_EQ_INT(lc__http_reader_eof(&f.r), 0);
  CHECK_EQ_STR(transcript(&f), "STATUS 200 OK 1.0 ka=0\nBODY old\nEND\n");
  fixture_free(&f);
}

/* Request writing ---------------------------------------------------------- */

static const char *write_request(lc__buf *out, const char *method,
                                 const char *path, int64_t length, int ka,
                                 const lc__http_header *h, size_t n,
                                 int *chunked) {
  lc__http_request_line req;

  memset(&req, 0, sizeof(req));
  req.method = method;
  req.path = path;
  req.path_len = strlen(path);
  req.host = "example.com:8080";
  req.host_len = strlen(req.host);
  req.content_length = length;
  req.keep_alive = ka;
  lc__buf_reset(out);
  if (lc__http_write_request_head(out, &req, h, n) != 0)
    return NULL;
  if (chunked != NULL)
    *chunked = req.chunked;
  lc__buf_append(out, "", 1);
  return out->base;
}

static void request_heads(void) {
  lc__buf out = LC__BUF_INIT;
  lc__http_header h[2] = {{"Accept", 6, "*/*", 3}, {"Host", 4, "other", 5}};
  int chunked = -1;

  CHECK_EQ_STR(write_request(&out, "GET", "/a?b=1", 0, 1, h, 1, &chunked),
               "GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
               "Accept: */*\r\nConnection: keep-alive\r\n\r\n");
  CHECK_EQ_INT(chunked, 0);
  CHECK_EQ_STR(write_request(&out, "POST", "/", 0, 0, NULL, 0, NULL),
               "POST / HTTP/1.1\r\nHost: example.com:8080\r\n"
               "Content-Length: 0\r\nConnection: close\r\n\r\n");
  CHECK_EQ_STR(write_request(&out, "PUT", "/x", 5, 1, &h[1], 1, NULL),
               "PUT /x HTTP/1.1\r\nHost: other\r\nContent-Length: 5\r\n"
               "Connection: keep-alive\r\n\r\n");
  CHECK_EQ_STR(write_request(&out, "POST", "/s", -1, 1, NULL, 0, &chunked),
               "POST /s HTTP/1.1\r\nHost: example.com:8080\r\n"
               "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
  CHECK_EQ_INT(chunked, 1);
  lc__buf_free(&out);
}

static void request_writer_refuses_injection(void) {
  lc__buf out = LC__BUF_INIT;
  lc__http_header bad = {"X", 1, "a\r\nB: c", 7};

  CHECK(write_request(&out, "GET", "/a b", 0, 1, NULL, 0, NULL) == NULL);
  CHECK(write_request(&out, "GET", "/a\r\nX: y", 0, 1, NULL, 0, NULL) == NULL);
  CHECK(write_request(&out, "G ET", "/", 0, 1, NULL, 0, NULL) == NULL);
  CHECK(write_request(&out, "GET", "", 0, 1, NULL, 0, NULL) == NULL);
  CHECK(write_request(&out, "GET", "/", 0, 1, &bad, 1, NULL) == NULL);
  CHECK_EQ_INT((int)out.len, 0);
  lc__buf_free(&out);
}

int main(void) {
  RUN(reads_content_length_and_chunked_alike);
  RUN(body_until_close_ends_at_eof);
  RUN(eof_inside_a_body_is_an_error);
  RUN(head_answer_has_no_body);
  RUN(informational_responses_are_skipped);
  RUN(no_content_and_not_modified_have_no_body);
  RUN(limits_apply_to_responses);
  RUN(malformed_responses_are_refused);
  RUN(http10_response_without_length_reads_to_close);
  RUN(request_heads);
  RUN(request_writer_refuses_injection);
  TEST_EXIT();
}
