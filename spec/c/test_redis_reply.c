/*
 * test_redis_reply.c - the Redis client's bytes-only parts (redis_reply.c):
 * the command encoder against hiredis's redisFormatCommandArgv, and the
 * reply parser against hiredis's own reader: every reply type, nesting,
 * replies cut at every byte, several in one read, the size bound (a long
 * string, many elements, a declared length that never comes), and
 * protocol errors.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis.h"
#include "redis_compare.h"
#include "test.h"

#define MiB (1024 * 1024)

/* Encoding --------------------------------------------------------------------- */

static void check_encoding(int argc, const char **argv, const size_t *lens) {
  lc__buf b = LC__BUF_INIT;
  char *theirs = NULL;
  int i, n = redisFormatCommandArgv(&theirs, argc, argv, lens);

  CHECK_EQ_INT(lc__redis_encode_header(&b, argc), 0);
  for (i = 0; i < argc; i++)
    CHECK_EQ_INT(lc__redis_encode_arg(&b, argv[i], lens[i]), 0);
  CHECK_EQ_INT(lc__buf_size(&b), n);
  CHECK(n > 0 && memcmp(lc__buf_data(&b), theirs, (size_t)n) == 0);
  redisFreeCommand(theirs);
  lc__buf_free(&b);
}

static void encodes_as_hiredis_does(void) {
  const char *a1[] = {"GET", "key"};
  size_t l1[] = {3, 3};
  const char *a2[] = {"SET", "k\r\n\0x", ""};
  size_t l2[] = {3, 6, 0};
  const char *a3[13];
  size_t l3[13];
  char *big = malloc(100000);
  int i;

  check_encoding(2, a1, l1);
  check_encoding(3, a2, l2);
  memset(big, 'x', 100000);
  for (i = 0; i < 13; i++) {
    a3[i] = big;
    l3[i] = (size_t)(i * 7919) % 100000;
  }
  check_encoding(13, a3, l3);
  free(big);
}

/* Parsing ----------------------------------------------------------------------- */

/* Turns '|' into CR LF, so the test's RESP reads on one line. */
static size_t resp(const char *text, char *out) {
  size_t n = 0;

  for (; *text; text++) {
    if (*text == '|') {
      out[n++] = '\r';
      out[n++] = '\n';
    } else {
      out[n++] = *text;
    }
  }
  return n;
}

/* Feeds bytes in pieces of `step` and checks each reply against hiredis's
 * default reader on the same bytes. Returns the replies seen. */
static int parse_like_hiredis(const char *bytes, size_t len, size_t step) {
  lc__redis_parser *p = lc__redis_parser_new(MiB);
  redisReader *h = redisReaderCreate();
  const lc__redis_reply *ours;
  void *theirs;
  size_t off;
  int seen = 0, n;

  redisReaderFeed(h, bytes, len);
  for (off = 0; off < len; off += step) {
    size_t piece = len - off < step ? len - off : step;
    CHECK_EQ_INT(lc__redis_parser_feed(p, bytes + off, piece), 0);
    while ((n = lc__redis_parser_next(p, &ours)) == 1) {
      CHECK_EQ_INT(redisReaderGetReply(h, &theirs), REDIS_OK);
      CHECK(theirs != NULL && redis_same(ours, theirs));
      freeReplyObject(theirs);
      seen++;
    }
    CHECK_EQ_INT(n, 0);
  }
  lc__redis_parser_free(p);
  redisReaderFree(h);
  return seen;
}

static void parses_every_type(void) {
  char buf[512];
  size_t n = resp("+OK|-ERR wrong|:42|:-7|$5|hello|$0||$-1|*-1|*0|"
                  "*3|$1|a|*2|:1|$-1|*1|*1|+deep|"
                  "$6|a\r\nb\tc|",
                  buf);
  size_t step;

  for (step = 1; step <= n; step++)
    CHECK_EQ_INT(parse_like_hiredis(buf, n, step), 11);
}

static void keeps_nil_and_nesting_shape(void) {
  lc__redis_parser *p = lc__redis_parser_new(MiB);
  const lc__redis_reply *r;
  char buf[128];
  size_t n = resp("*3|$-1|*2|:5|+x|$2|hi|", buf);

  lc__redis_parser_feed(p, buf, n);
  CHECK_EQ_INT(lc__redis_parser_next(p, &r), 1);
  CHECK_EQ_INT(r->type, LC__REDIS_ARRAY);
  CHECK_EQ_INT(r->len, 3);
  CHECK_EQ_INT(r->element[0]->type, LC__REDIS_NIL);
  CHECK_EQ_INT(r->element[1]->element[0]->integer, 5);
  CHECK_EQ_STR(r->element[1]->element[1]->str, "x");
  CHECK_EQ_INT(r->element[1]->element[1]->type, LC__REDIS_STATUS);
  CHECK_EQ_STR(r->element[2]->str, "hi");
  CHECK_EQ_INT(lc__redis_parser_next(p, &r), 0);
  lc__redis_parser_free(p);
}

static void reuses_its_arena(void) {
  lc__redis_parser *p = lc__redis_parser_new(MiB);
  const lc__redis_reply *r;
  char buf[64];
  size_t n = resp("*2|$3|abc|:1|", buf);
  int i;

  /* Thousands of replies through one parser: the same memory, the same
   * answers. */
  for (i = 0; i < 5000; i++) {
    lc__redis_parser_feed(p, buf, n);
    CHECK_EQ_INT(lc__redis_parser_next(p, &r), 1);
    CHECK_EQ_STR(r->element[0]->str, "abc");
  }
  lc__redis_parser_free(p);
}

static void refuses_a_long_string(void) {
  lc__redis_parser *p = lc__redis_parser_new(1000);
  const lc__redis_reply *r;
  char head[] = "$5000\r\n", chunk[512];
  int i, n = 0;

  memset(chunk, 'x', sizeof(chunk));
  lc__redis_parser_feed(p, head, strlen(head));
  CHECK_EQ_INT(lc__redis_parser_next(p, &r), 0);
  /* Refused once what it holds passes the bound, not after 5000 bytes. */
  for (i = 0; i < 10 && n == 0; i++) {
    lc__redis_parser_feed(p, chunk, sizeof(chunk));
    n = lc__redis_parser_next(p, &r);
  }
  CHECK_EQ_INT(n, UV_EMSGSIZE);
  CHECK(i <= 2);
  lc__redis_parser_free(p);
}

static void refuses_many_elements(void) {
  lc__redis_parser *p = lc__redis_parser_new(4096);
  const lc__redis_reply *r;
  char buf[64];
  size_t n = resp("*1000000|", buf);
  int i, got = 0;

  lc__redis_parser_feed(p, buf, n);
  CHECK_EQ_INT(lc__redis_parser_next(p, &r), 0);
  for (i = 0; i < 1000 && got == 0; i++) {
    lc__redis_parser_feed(p, ":1\r\n", 4);
    got = lc__redis_parser_next(p, &r);
  }
  CHECK_EQ_INT(got, UV_EMSGSIZE);
  lc__redis_parser_free(p);
}

static void a_declared_length_costs_nothing(void) {
  lc__redis_parser *p = lc__redis_parser_new(MiB);
  const lc__redis_reply *r;
  char buf[64];
  size_t n = resp("*2147483647|$2147483647|", buf);

  lc__redis_parser_feed(p, buf, n);
  CHECK_EQ_INT(lc__redis_parser_next(p, &r), 0);
  lc__redis_parser_free(p);
}

static void a_reply_at_the_bound_is_taken(void) {
  size_t len = 900 * 1024;
  lc__redis_parser *p = lc__redis_parser_new(MiB);
  const lc__redis_reply *r;
  char *bytes = malloc(len + 32);
  int n = sprintf(bytes, "$%zu\r\n", len);

  memset(bytes + n, 'y', len);
  memcpy(bytes + n + len, "\r\n", 2);
  lc__redis_parser_feed(p, bytes, (size_t)n + len + 2);
  CHECK_EQ_INT(lc__redis_parser_next(p, &r), 1);
  CHECK_EQ_INT(r->len, len);
  free(bytes);
  lc__redis_parser_free(p);
}

static void says_what_is_not_resp(void) {
  static const char *bad[] = {"?what\r\n", "$abc\r\n", "*-5\r\n", ":12x\r\n",
                              "$-2\r\n"};
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(bad); i++) {
    lc__redis_parser *p = lc__redis_parser_new(MiB);
    const lc__redis_reply *r;
    lc__redis_parser_feed(p, bad[i], strlen(bad[i]));
    CHECK_EQ_INT(lc__redis_parser_next(p, &r), UV_EPROTO);
    CHECK(lc__redis_parser_error(p)[0] != '\0');
    lc__redis_parser_free(p);
  }
}

int main(void) {
  RUN(encodes_as_hiredis_does);
  RUN(parses_every_type);
  RUN(keeps_nil_and_nesting_shape);
  RUN(reuses_its_arena);
  RUN(refuses_a_long_string);
  RUN(refuses_many_elements);
  RUN(a_declared_length_costs_nothing);
  RUN(a_reply_at_the_bound_is_taken);
  RUN(says_what_is_not_resp);
  TEST_EXIT();
}
