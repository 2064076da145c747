/*
 * test_http_server.c - the HTTP/1.1 server protocol (core/http/http_server.c)
 * over real sockets: pipelining order and write batching, keep-alive and
 * closing, the three deadlines, backpressure, the server's close, bad input
 * and request bodies. Each test starts its own core and server
 * (http_harness.h), talks to it with plain client sockets and closes all.
 */
#include "test.h"

#include "http_harness.h"

#define GET(url) "GET " url " HTTP/1.1\r\nHost: t\r\n\r\n"

/* Pipelining ------------------------------------------------------------------ */

/* The handlers would answer in reverse order (the later the request, the
 * shorter its delay), but a request reaches its handler only once the one
 * before it is answered, so the answers go out in request order. */
static void pipelined_requests_are_answered_in_order(void) {
  harness h;
  client *cl;

  harness_init(&h);
  h.on_end = answer_later;
  h.delays[0] = 150;
  h.delays[1] = 50;
  h.delays[2] = 0;
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/1") GET("/2") GET("/3"));
  WAIT_UNTIL(&h, cl->nres == 3);
  CHECK_EQ_STR(cl->res[0].body, "/1");
  CHECK_EQ_STR(cl->res[1].body, "/2");
  CHECK_EQ_STR(cl->res[2].body, "/3");
  CHECK_EQ_STR(events(&h), "request GET /1\nend\nanswer /1\n"
                           "request GET /2\nend\nanswer /2\n"
                           "request GET /3\nend\nanswer /3\n");
  CHECK(!cl->eof);
  harness_free(&h);
}

/* Requests that arrive in one read and are answered in their handlers go
 * out as one write: the client receives one data segment for all four. */
static void pipelined_synchronous_answers_share_one_write(void) {
  harness h;
  client *cl;
  long before;

  harness_init(&h);
  cl = client_connect(&h, 0);
  before = client_data_segments_in(cl);
  CHECK(before >= 0);
  client_send_str(&h, cl, GET("/a") GET("/b") GET("/c") GET("/d"));
  WAIT_UNTIL(&h, cl->nres == 4);
  CHECK_EQ_STR(cl->res[0].body, "/a");
  CHECK_EQ_STR(cl->res[3].body, "/d");
  CHECK_EQ_INT(client_data_segments_in(cl) - before, 1);
  harness_free(&h);
}

/* Keep-alive and closing ----------------------------------------------------- */

static void keep_alive_serves_two_requests_on_one_connection(void) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/first"));
  WAIT_UNTIL(&h, cl->nres == 1);
  client_send_str(&h, cl, GET("/second"));
  WAIT_UNTIL(&h, cl->nres == 2);
  CHECK_EQ_STR(cl->res[0].connection, "");
  CHECK_EQ_STR(cl->res[1].body, "/second");
  CHECK(h.req[0].hc != NULL && h.req[0].hc == h.req[1].hc);
  CHECK_EQ_INT(h.req[1].seq, h.req[0].seq + 1);
  CHECK(!cl->eof);
  harness_free(&h);
}

static void http10_request_without_keep_alive_closes(void) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, "GET /old HTTP/1.0\r\n\r\n");
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_STR(cl->res[0].body, "/old");
  CHECK_EQ_STR(cl->res[0].connection, "close");
  CHECK(!cl->reset && !cl->parse_error);
  WAIT_UNTIL(&h, strstr(events(&h), "close\n") != NULL);
  harness_free(&h);
}

static void connection_close_ends_after_the_answer_without_reset(void) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl,
                  "GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_INT(cl->res[0].status, 200);
  CHECK_EQ_STR(cl->res[0].connection, "close");
  CHECK(!cl->reset && !cl->parse_error);
  harness_free(&h);
}

/* Deadlines ------------------------------------------------------------------- */

static void idle_keep_alive_connection_is_closed_after_its_timeout(void) {
  harness h;
  client *cl;
  uint64_t answered;

  harness_init(&h);
  h.cfg.keep_alive_timeout_ms = 200;
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/a"));
  WAIT_UNTIL(&h, cl->nres == 1);
  answered = now_ms();
  WAIT_UNTIL(&h, cl->eof);
  CHECK(now_ms() - answered >= 150);
  CHECK(!cl->reset && !cl->parse_error);
  WAIT_UNTIL(&h, strstr(events(&h), "close\n") != NULL);
  harness_free(&h);
}

/* A client sending a header line every 50 ms never completes its head: the
 * deadline counts from the head's first byte and is not pushed by the
 * trickle, so the client gets 408. */
static void trickling_head_gets_408(void) {
  harness h;
  client *cl;
  uint64_t start, elapsed;
  int lines = 0;

  harness_init(&h);
  h.cfg.headers_timeout_ms = 300;
  cl = client_connect(&h, 0);
  start = now_ms();
  client_send_str(&h, cl, "GET /slow HTTP/1.1\r\n");
  while (cl->nres == 0 && !cl->eof && now_ms() - start < WAIT_MS) {
    client_send_str(&h, cl, "X-Trickle: 1\r\n");
    lines++;
    pump_for(&h, 50);
  }
  elapsed = now_ms() - start;
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_INT(cl->res[0].status, 408);
  CHECK_EQ_STR(cl->res[0].connection, "close");
  /* Not before the deadline (the loop's clock may lag a few ms), and
   * while the client kept sending: a pushed deadline would never pass. */
  CHECK(elapsed >= 250);
  CHECK(lines >= 5);
  WAIT_UNTIL(&h, cl->eof);
  CHECK(!cl->reset);
  CHECK_EQ_STR(events(&h), ""); /* the head never reached a handler */
  harness_free(&h);
}

/* A handler that never answers: the client gets 408 and the connection
 * ends; the handler's late answer goes nowhere. */
static void unanswered_request_gets_408_and_a_late_answer_is_gone(void) {
  harness h;
  client *cl;

  harness_init(&h);
  h.cfg.request_timeout_ms = 200;
  h.on_end = NULL;
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/never"));
  WAIT_UNTIL(&h, cl->nres == 1);
  CHECK_EQ_INT(cl->res[0].status, 408);
  CHECK_EQ_STR(cl->res[0].connection, "close");
  WAIT_UNTIL(&h, cl->eof);
  CHECK(!cl->reset);
  /* The server lingers for the client's FIN: the connection is still
   * there, the request is not. */
  CHECK(h.req[0].hc != NULL);
  if (h.req[0].hc != NULL)
    CHECK_EQ_INT(answer(&h, &h.req[0]), LC__HTTP_GONE);
  client_close(cl);
  WAIT_UNTIL(&h, strstr(events(&h), "close\n") != NULL);
  CHECK_EQ_STR(events(&h),
               "request GET /never\nend\nanswer /never\nclose\n");
  harness_free(&h);
}

/* Backpressure ---------------------------------------------------------------- */

#define STREAM_CHUNK (16 * 1024)
#define STREAM_MAX (64 * 1024 * 1024)

/* Streams 16 KiB chunks until the response is backlogged. */
static void stream_until_backlogged(harness *h, request *r) {
  static const char chunk[STREAM_CHUNK];
  lc__http_reply reply = {200, NULL, NULL, 0};

  while (h->streamed < STREAM_MAX) {
    if (lc__http_backlogged(r->hc)) {
      note(h, "backlogged");
      return;
    }
    CHECK_EQ_INT(lc__http_respond(r->hc, r->seq, &reply, chunk, STREAM_CHUNK, 0),
                 0);
    h->streamed += STREAM_CHUNK;
  }
  note(h, "never backlogged");
}

static void finish_stream(harness *h, request *r) {
  note(h, "finish");
  CHECK_EQ_INT(lc__http_respond(r->hc, r->seq, NULL, "end", 3, 1), 0);
  h->streamed += 3;
}

/* A client that does not read: the response backlogs, drain comes only
 * once the client reads, and the whole body arrives. */
static void streamed_response_backlogs_until_the_client_reads(void) {
  harness h;
  client *cl;

  harness_init(&h);
  h.on_end = stream_until_backlogged;
  h.on_drain = finish_stream;
  cl = client_connect(&h, 4096);
  cl->hold = 1;
  client_send_str(&h, cl, GET("/big"));
  WAIT_UNTIL(&h, strstr(events(&h), "backlogged\n") != NULL);
  pump_for(&h, 50);
  CHECK_EQ_STR(events(&h), "request GET /big\nend\nbacklogged\n");
  cl->hold = 0;
  WAIT_UNTIL(&h, cl->nres == 1);
  CHECK_EQ_STR(events(&h),
               "request GET /big\nend\nbacklogged\ndrain\nfinish\n");
  CHECK_EQ_INT(cl->res[0].status, 200);
  CHECK_EQ_INT(cl->res[0].body_len, h.streamed);
  CHECK(h.streamed > STREAM_CHUNK);
  harness_free(&h);
}

/* The server's close ----------------------------------------------------------- */

static void server_close_during_a_request_ends_the_connection_after_it(void) {
  harness h;
  client *cl;

  harness_init(&h);
  h.on_end = NULL;
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/busy"));
  WAIT_UNTIL(&h, h.nreq == 1 && h.req[0].ended);
  lc__server_close(h.server);
  CHECK(!h.server_closed);
  CHECK_EQ_INT(answer(&h, &h.req[0]), 0);
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_STR(cl->res[0].body, "/busy");
  CHECK_EQ_STR(cl->res[0].connection, "close");
  CHECK(!cl->reset && !cl->parse_error);
  client_close(cl);
  WAIT_UNTIL(&h, h.server_closed);
  harness_free(&h);
}

static void server_close_ends_an_idle_connection_after_a_grace(void) {
  harness h;
  client *cl;
  uint64_t closed_at;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/a"));
  WAIT_UNTIL(&h, cl->nres == 1);
  closed_at = now_ms();
  lc__server_close(h.server);
  WAIT_UNTIL(&h, cl->eof);
  CHECK(now_ms() - closed_at >= 900);
  CHECK(!cl->reset && !cl->parse_error);
  WAIT_UNTIL(&h, h.server_closed);
  harness_free(&h);
}

static void request_on_an_idle_connection_after_server_close_gets_close(void) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/before"));
  WAIT_UNTIL(&h, cl->nres == 1);
  CHECK_EQ_STR(cl->res[0].connection, "");
  lc__server_close(h.server);
  client_send_str(&h, cl, GET("/after"));
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 2);
  CHECK_EQ_STR(cl->res[1].body, "/after");
  CHECK_EQ_STR(cl->res[1].connection, "close");
  CHECK(!cl->reset && !cl->parse_error);
  harness_free(&h);
}

/* Two pipelined requests after the server's close: the first is answered
 * with "Connection: close" and the second never reaches a handler, since
 * nothing may follow that answer. */
static void nothing_is_answered_after_a_close_answer(void) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl, GET("/before"));
  WAIT_UNTIL(&h, cl->nres == 1);
  lc__server_close(h.server);
  client_send_str(&h, cl, GET("/a") GET("/next"));
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 2);
  CHECK_EQ_STR(cl->res[1].body, "/a");
  CHECK_EQ_STR(cl->res[1].connection, "close");
  CHECK(!cl->reset && !cl->parse_error);
  CHECK(strstr(events(&h), "/next") == NULL);
  harness_free(&h);
}

/* A handler that answers at the head with "Connection: close": the rest
 * of the request is not read, so a bad body gets no second answer. */
static int answer_at_head(lc__http_conn *hc, const lc__http_head *head) {
  harness *h = harness_of(hc);

  test_on_request(hc, head);
  CHECK_EQ_INT(answer(h, &h->req[h->nreq - 1]), 0);
  return 0;
}

static void nothing_is_read_after_an_early_close_answer(void) {
  lc__http_server_cb cb = test_cb;
  harness h;
  client *cl;

  harness_init(&h);
  cb.on_request = answer_at_head;
  h.cfg.cb = &cb;
  cl = client_connect(&h, 0);
  client_send_str(&h, cl,
                  "POST /early HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  "Transfer-Encoding: chunked\r\n\r\nnot a chunk\r\n");
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_INT(cl->res[0].status, 200);
  CHECK_EQ_STR(cl->res[0].connection, "close");
  CHECK(!cl->reset && !cl->parse_error);
  harness_free(&h);
}

/* Bad input ---------------------------------------------------------------------- */

/* Sends s and expects one error answer with status, then the end. */
static void expect_refusal(harness *h, const char *s, int status) {
  client *cl = client_connect(h, 0);

  client_send_str(h, cl, s);
  WAIT_UNTIL(h, cl->eof);
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_INT(cl->res[0].status, status);
  CHECK_EQ_STR(cl->res[0].connection, "close");
  CHECK(!cl->reset && !cl->parse_error);
}

static void malformed_request_gets_400_and_close(void) {
  harness h;

  harness_init(&h);
  expect_refusal(&h, "BREW /pot HTTP/1.1\r\n\r\n", 400);
  CHECK_EQ_STR(events(&h), "");
  harness_free(&h);
}

static void oversized_header_gets_431(void) {
  harness h;
  char req[4096];
  char value[2000];

  harness_init(&h);
  h.cfg.limits.max_header_size = 1024;
  memset(value, 'v', sizeof(value) - 1);
  value[sizeof(value) - 1] = '\0';
  snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: %s\r\n\r\n", value);
  expect_refusal(&h, req, 431);
  CHECK_EQ_STR(events(&h), "");
  harness_free(&h);
}

static void body_over_the_limit_gets_413(void) {
  harness h;

  harness_init(&h);
  h.cfg.limits.max_body_size = 16;
  expect_refusal(&h, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", 413);
  CHECK_EQ_STR(events(&h), "");
  harness_free(&h);
}

/* A HEAD refused by its handler (503: nobody listens) gets the error's
 * head and no body, else the client would read it as a next response. */
static void refused_head_request_gets_an_answer_without_a_body(void) {
  harness h;
  client *cl;

  harness_init(&h);
  h.refuse = 503;
  cl = client_connect(&h, 0);
  cl->sent_head = 1;
  client_send_str(&h, cl, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n");
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_INT(cl->res[0].status, 503);
  CHECK_EQ_STR(cl->res[0].connection, "close");
  CHECK_EQ_INT(cl->res[0].body_len, 0);
  CHECK(!cl->reset && !cl->parse_error);
  harness_free(&h);
}

/* The client goes away inside a request's body: the request is aborted
 * and the connection closed, whether it reset or half-closed. */
static void client_gone_mid_body(int reset) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl,
                  "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
                  "0123456789");
  WAIT_UNTIL(&h, h.nreq == 1 && h.req[0].body_len == 10);
  if (reset)
    client_reset(cl);
  else
    shutdown(cl->fd, SHUT_WR);
  WAIT_UNTIL(&h, strstr(events(&h), "close\n") != NULL);
  CHECK_EQ_STR(events(&h), "request POST /upload\nabort\nclose\n");
  CHECK(h.req[0].hc == NULL);
  harness_free(&h);
}

static void client_reset_mid_request_aborts_then_closes(void) {
  client_gone_mid_body(1);
}

static void client_half_close_mid_request_aborts_then_closes(void) {
  client_gone_mid_body(0);
}

/* A half-close that cuts short a request still waiting behind a pipelined
 * one: the first is answered, the second aborted. */
static void half_close_mid_pipelined_request_aborts_it(void) {
  harness h;
  client *cl;

  harness_init(&h);
  h.on_end = NULL;
  cl = client_connect(&h, 0);
  client_send_str(&h, cl,
                  GET("/1") "POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc");
  WAIT_UNTIL(&h, h.nreq == 1 && h.req[0].ended);
  shutdown(cl->fd, SHUT_WR);
  pump_for(&h, 20);
  CHECK_EQ_INT(answer(&h, &h.req[0]), 0);
  WAIT_UNTIL(&h, cl->eof);
  CHECK_EQ_INT(cl->nres, 1);
  CHECK_EQ_STR(cl->res[0].body, "/1");
  CHECK(!cl->reset && !cl->parse_error);
  WAIT_UNTIL(&h, strstr(events(&h), "close\n") != NULL);
  CHECK_EQ_STR(events(&h), "request GET /1\nend\nanswer /1\n"
                           "request POST /2\nabort\nclose\n");
  harness_free(&h);
}

/* Request bodies --------------------------------------------------------------- */

static void chunked_body_arrives_through_on_body_and_on_end(void) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl,
                  "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "3\r\nabc\r\n5\r\nde");
  WAIT_UNTIL(&h, h.nreq == 1 && h.req[0].body_len == 5);
  CHECK(!h.req[0].ended);
  client_send_str(&h, cl, "fgh\r\n0\r\n\r\n");
  WAIT_UNTIL(&h, cl->nres == 1);
  CHECK_EQ_STR(h.req[0].body, "abcdefgh");
  CHECK_EQ_STR(events(&h), "request POST /c\nend\nanswer /c\n");
  harness_free(&h);
}

static void expect_100_continue_gets_continue_before_the_body(void) {
  harness h;
  client *cl;

  harness_init(&h);
  cl = client_connect(&h, 0);
  client_send_str(&h, cl,
                  "POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                  "Expect: 100-continue\r\n\r\n");
  WAIT_UNTIL(&h, cl->nres == 1);
  CHECK_EQ_INT(cl->res[0].status, 100);
  CHECK(!h.req[0].ended);
  client_send_str(&h, cl, "hello");
  WAIT_UNTIL(&h, cl->nres == 2);
  CHECK_EQ_INT(cl->res[1].status, 200);
  CHECK_EQ_STR(h.req[0].body, "hello");
  harness_free(&h);
}

int main(void) {
  RUN(pipelined_requests_are_answered_in_order);
  RUN(pipelined_synchronous_answers_share_one_write);
  RUN(keep_alive_serves_two_requests_on_one_connection);
  RUN(http10_request_without_keep_alive_closes);
  RUN(connection_close_ends_after_the_answer_without_reset);
  RUN(idle_keep_alive_connection_is_closed_after_its_timeout);
  RUN(trickling_head_gets_408);
  RUN(unanswered_request_gets_408_and_a_late_answer_is_gone);
  RUN(streamed_response_backlogs_until_the_client_reads);
  RUN(server_close_during_a_request_ends_the_connection_after_it);
  RUN(server_close_ends_an_idle_connection_after_a_grace);
  RUN(request_on_an_idle_connection_after_server_close_gets_close);
  RUN(nothing_is_answered_after_a_close_answer);
  RUN(nothing_is_read_after_an_early_close_answer);
  RUN(malformed_request_gets_400_and_close);
  RUN(oversized_header_gets_431);
  RUN(body_over_the_limit_gets_413);
  RUN(refused_head_request_gets_an_answer_without_a_body);
  RUN(client_reset_mid_request_aborts_then_closes);
  RUN(client_half_close_mid_request_aborts_then_closes);
  RUN(half_close_mid_pipelined_request_aborts_it);
  RUN(chunked_body_arrives_through_on_body_and_on_end);
  RUN(expect_100_continue_gets_continue_before_the_body);
  TEST_EXIT();
}
