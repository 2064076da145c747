/*
 * test_cluster.c - the multi-host pieces with no Redis: --redis URLs
 * (redis_url.c), cluster names, and the envelope a master puts around a bus
 * record on a Redis channel (cluster_redis.c): round trips, and what a
 * master must refuse from a channel.
 */
#include <string.h>

#include "cluster_redis.h"
#include "message.h"
#include "redis_url.h"
#include "test.h"

static void urls_that_parse(void) {
  lc__redis_url u;
  char why[400];

  CHECK_EQ_INT(lc__redis_url_parse("redis://127.0.0.1", &u, why, sizeof(why)), 0);
  CHECK_EQ_STR(u.host, "127.0.0.1");
  CHECK_EQ_INT(u.port, 6379);
  CHECK_EQ_INT(u.db, 0);
  CHECK(!u.has_password);
  CHECK_EQ_INT(lc__redis_url_parse("redis://cache.internal:6380/3", &u, why,
                                   sizeof(why)), 0);
  CHECK_EQ_STR(u.host, "cache.internal");
  CHECK_EQ_INT(u.port, 6380);
  CHECK_EQ_INT(u.db, 3);
  CHECK_EQ_INT(lc__redis_url_parse("redis://:s3cret@h/", &u, why, sizeof(why)), 0);
  CHECK_EQ_STR(u.username, "");
  CHECK_EQ_STR(u.password, "s3cret");
  CHECK(u.has_password);
  /* %XX escapes in the user and password, an IPv6 address in brackets */
  CHECK_EQ_INT(lc__redis_url_parse("redis://app%3a1:p%40ss%2F@[::1]:7000", &u,
                                   why, sizeof(why)), 0);
  CHECK_EQ_STR(u.username, "app:1");
  CHECK_EQ_STR(u.password, "p@ss/");
  CHECK_EQ_STR(u.host, "::1");
  CHECK_EQ_INT(u.port, 7000);
}

static void urls_refused(void) {
  static const struct {
    const char *url;
    const char *why;
  } bad[] = {
      {"127.0.0.1:6379", "redis://[user:password@]host"},
      {"http://h", "redis://[user:password@]host"},
      {"rediss://h", "TLS"},
      {"redis://", "no host"},
      {"redis://:6379", "no host"},
      {"redis://h:0", "port"},
      {"redis://h:65536", "port"},
      {"redis://h:12x", "port"},
      {"redis://h/db", "database number"},
      {"redis://h/-1", "database number"},
      {"redis://user@h", "user:password"},
      {"redis://u:p%4@h", "user:password"},
      {"redis://u:p%zz@h", "user:password"},
      {"redis://[::1", "]"},
      {"redis://[::1]x", "after the address"},
      {"redis://h o", "characters"},
  };
  lc__redis_url u;
  char why[400];
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int r = lc__redis_url_parse(bad[i].url, &u, why, sizeof(why));
    CHECK_EQ_INT(r, -1);
    if (r == -1 && strstr(why, bad[i].why) == NULL) {
      fprintf(stderr, "  %s: \"%s\" does not say \"%s\"\n", bad[i].url, why,
              bad[i].why);
      CHECK(0);
    }
  }
  CHECK_EQ_INT(lc__redis_url_parse(NULL, &u, why, sizeof(why)), -1);
}

static void cluster_names(void) {
  char long_name[LC__CLUSTER_NAME_MAX + 2];

  CHECK(lc__cluster_name_ok("shop"));
  CHECK(lc__cluster_name_ok("shop-eu.1_b"));
  CHECK(!lc__cluster_name_ok(""));
  CHECK(!lc__cluster_name_ok("a b"));
  CHECK(!lc__cluster_name_ok("a:b")); /* ':' separates the Redis names */
  memset(long_name, 'n', sizeof(long_name));
  long_name[LC__CLUSTER_NAME_MAX] = '\0';
  CHECK(lc__cluster_name_ok(long_name));
  long_name[LC__CLUSTER_NAME_MAX] = 'n';
  long_name[LC__CLUSTER_NAME_MAX + 1] = '\0';
  CHECK(!lc__cluster_name_ok(long_name));
}

static const uint8_t NODE[LC__CLUSTER_NODE_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8};

static size_t envelope(char *out, const lc__bus_record *rec) {
  size_t n = lc__cluster_envelope(out, NODE, rec);

  if (rec->body_len > 0)
    memcpy(out + n, rec->body, rec->body_len);
  return n + rec->body_len;
}

static void envelopes_round_trip(void) {
  char buf[LC__CLUSTER_ENVELOPE_HEAD + LC__BUS_HEAD_MAX + 64];
  uint8_t node[LC__CLUSTER_NODE_SIZE];
  lc__bus_record r, back;
  size_t n;

  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_PUBLISH;
  r.kind = LC__FRAME_STRING;
  r.from = 3;
  r.host = "web-1:77";
  r.host_len = 8;
  r.topic = "prices";
  r.topic_len = 6;
  r.body = "1.08";
  r.body_len = 4;
  n = envelope(buf, &r);
  CHECK(memcmp(buf, "LCB1", 4) == 0);
  CHECK_EQ_INT(lc__cluster_open_envelope(buf, n, node, &back), 0);
  CHECK(memcmp(node, NODE, sizeof(NODE)) == 0);
  CHECK_EQ_INT(back.op, LC__BUS_PUBLISH);
  CHECK_EQ_INT(back.from, 3);
  CHECK_EQ_INT(back.host_len, 8);
  CHECK(memcmp(back.host, "web-1:77", 8) == 0);
  CHECK(memcmp(back.topic, "prices", 6) == 0);
  CHECK(memcmp(back.body, "1.08", 4) == 0);

  r.op = LC__BUS_BROADCAST;
  r.topic = NULL;
  r.topic_len = 0;
  n = envelope(buf, &r);
  CHECK_EQ_INT(lc__cluster_open_envelope(buf, n, node, &back), 0);
  CHECK_EQ_INT(back.op, LC__BUS_BROADCAST);
}

static void envelopes_refused(void) {
  char buf[LC__CLUSTER_ENVELOPE_HEAD + LC__BUS_HEAD_MAX + 64];
  uint8_t node[LC__CLUSTER_NODE_SIZE];
  lc__bus_record r, back;
  size_t n;

  /* not ours at all */
  CHECK_EQ_INT(lc__cluster_open_envelope("hello", 5, node, &back),
               LC__BUS_ESHORT);
  CHECK_EQ_INT(lc__cluster_open_envelope("LCB1", 4, node, &back),
               LC__BUS_ESHORT);
  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_BROADCAST;
  r.kind = LC__FRAME_MESSAGE;
  r.host = "h:1";
  r.host_len = 3;
  r.body = "\x13"; /* not a string.buffer tag */
  r.body_len = 1;
  n = envelope(buf, &r);
  CHECK_EQ_INT(lc__cluster_open_envelope(buf, n, node, &back),
               LC__MESSAGE_ETAG);
  buf[0] = 'X';
  CHECK_EQ_INT(lc__cluster_open_envelope(buf, n, node, &back),
               LC__BUS_ESHORT);
  /* no host: a master always names itself */
  r.kind = LC__FRAME_STRING;
  r.host = NULL;
  r.host_len = 0;
  n = envelope(buf, &r);
  CHECK_EQ_INT(lc__cluster_open_envelope(buf, n, node, &back),
               LC__BUS_EFIELD);
  /* only broadcasts and publishes cross hosts */
  r.op = LC__BUS_REQUEST;
  r.host = "h:1";
  r.host_len = 3;
  n = envelope(buf, &r);
  CHECK_EQ_INT(lc__cluster_open_envelope(buf, n, node, &back),
               LC__BUS_EFIELD);
  r.op = LC__BUS_SUBSCRIBE;
  r.kind = 0;
  r.topic = "t";
  r.topic_len = 1;
  r.body_len = 0;
  n = envelope(buf, &r);
  CHECK_EQ_INT(lc__cluster_open_envelope(buf, n, node, &back),
               LC__BUS_EFIELD);
}

int main(void) {
  RUN(urls_that_parse);
  RUN(urls_refused);
  RUN(cluster_names);
  RUN(envelopes_round_trip);
  RUN(envelopes_refused);
  TEST_EXIT();
}
