/*
 * test_bus.c - cluster messaging's pieces with no processes: the topic ->
 * subscribers table the master routes by (bus_topics.c), and the bus
 * record (bus.c): round trips, and the malformed records a master or a
 * worker must refuse.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bus.h"
#include "message.h"
#include "test.h"

#define T(s) s, strlen(s)

/* The topic table ------------------------------------------------------------ */

static void topics_add_and_find(void) {
  lc__bus_topics t;
  const lc__bus_topic *topic;

  lc__bus_topics_init(&t);
  CHECK(lc__bus_topics_find(&t, T("prices")) == NULL);
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("prices"), 3), 2); /* new topic */
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("prices"), 1), 1); /* joins */
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("prices"), 3), 0); /* already */
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("prices"), 0), 1); /* the master */
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("news"), 2), 2);
  CHECK_EQ_INT(t.count, 2);
  topic = lc__bus_topics_find(&t, T("prices"));
  CHECK(topic != NULL);
  CHECK_EQ_INT(topic->nsubs, 3);
  /* kept sorted, whatever the order they came in */
  CHECK_EQ_INT(topic->subs[0], 0);
  CHECK_EQ_INT(topic->subs[1], 1);
  CHECK_EQ_INT(topic->subs[2], 3);
  CHECK(lc__bus_topic_has(topic, 0));
  CHECK(lc__bus_topic_has(topic, 3));
  CHECK(!lc__bus_topic_has(topic, 2));
  CHECK(!lc__bus_topic_has(NULL, 1));
  /* names are bytes: a prefix, or the same bytes with a NUL, differ */
  CHECK(lc__bus_topics_find(&t, T("price")) == NULL);
  CHECK(lc__bus_topics_find(&t, "prices\0", 7) == NULL);
  CHECK_EQ_INT(lc__bus_topics_add(&t, "a\0b", 3, 1), 2);
  CHECK(lc__bus_topics_find(&t, "a\0b", 3) != NULL);
  CHECK(lc__bus_topics_find(&t, "a\0c", 3) == NULL);
  lc__bus_topics_free(&t);
}

static void topics_refuse_bad_names(void) {
  lc__bus_topics t;
  char *big = malloc(LC__BUS_TOPIC_MAX + 1);

  memset(big, 'x', LC__BUS_TOPIC_MAX + 1);
  lc__bus_topics_init(&t);
  CHECK_EQ_INT(lc__bus_topics_add(&t, "", 0, 1), UV_EINVAL);
  CHECK_EQ_INT(lc__bus_topics_add(&t, big, LC__BUS_TOPIC_MAX + 1, 1),
               UV_EINVAL);
  CHECK_EQ_INT(lc__bus_topics_add(&t, big, LC__BUS_TOPIC_MAX, 1), 2);
  CHECK_EQ_INT(t.count, 1);
  lc__bus_topics_free(&t);
  free(big);
}

static void topics_remove(void) {
  lc__bus_topics t;

  lc__bus_topics_init(&t);
  CHECK_EQ_INT(lc__bus_topics_remove(&t, T("none"), 1), 0); /* empty table */
  lc__bus_topics_add(&t, T("a"), 1);
  lc__bus_topics_add(&t, T("a"), 2);
  CHECK_EQ_INT(lc__bus_topics_remove(&t, T("a"), 3), 0); /* not there */
  CHECK_EQ_INT(lc__bus_topics_remove(&t, T("b"), 1), 0);
  CHECK_EQ_INT(lc__bus_topics_remove(&t, T("a"), 1), 1);
  CHECK(!lc__bus_topic_has(lc__bus_topics_find(&t, T("a")), 1));
  CHECK(lc__bus_topic_has(lc__bus_topics_find(&t, T("a")), 2));
  /* the last subscriber takes the topic with it */
  CHECK_EQ_INT(lc__bus_topics_remove(&t, T("a"), 2), 2);
  CHECK(lc__bus_topics_find(&t, T("a")) == NULL);
  CHECK_EQ_INT(t.count, 0);
  lc__bus_topics_free(&t);
}

static int gone_count;
static char gone_names[8][16];

static void on_gone(const char *name, size_t len, void *arg) {
  CHECK(arg == &gone_count);
  if (gone_count < 8 && len < 16) {
    memcpy(gone_names[gone_count], name, len);
    gone_names[gone_count][len] = '\0';
  }
  gone_count++;
}

static void topics_remove_all(void) {
  lc__bus_topics t;

  lc__bus_topics_init(&t);
  lc__bus_topics_add(&t, T("a"), 7);
  lc__bus_topics_add(&t, T("b"), 7);
  lc__bus_topics_add(&t, T("b"), 8);
  lc__bus_topics_add(&t, T("c"), 8);
  gone_count = 0;
  /* worker 7 goes: it leaves a and b; a has no one left */
  CHECK_EQ_INT(lc__bus_topics_remove_all(&t, 7, on_gone, &gone_count), 2);
  CHECK_EQ_INT(gone_count, 1);
  CHECK_EQ_STR(gone_names[0], "a");
  CHECK(lc__bus_topics_find(&t, T("a")) == NULL);
  CHECK(lc__bus_topic_has(lc__bus_topics_find(&t, T("b")), 8));
  CHECK(!lc__bus_topic_has(lc__bus_topics_find(&t, T("b")), 7));
  CHECK_EQ_INT(lc__bus_topics_remove_all(&t, 7, NULL, NULL), 0);
  CHECK_EQ_INT(lc__bus_topics_remove_all(&t, 8, NULL, NULL), 2);
  CHECK_EQ_INT(t.count, 0);
  lc__bus_topics_free(&t);
}

/* Many topics and subscribers: the table grows, every pair is found, and
 * removing them in another order leaves nothing. */
static void topics_many(void) {
  lc__bus_topics t;
  char name[32];
  int i, s, ok = 1;

  lc__bus_topics_init(&t);
  for (i = 0; i < 5000; i++) {
    snprintf(name, sizeof(name), "topic-%d", i);
    for (s = (i * 7) % 5; s < 40; s += 5)
      if (lc__bus_topics_add(&t, name, strlen(name), s) < 1)
        ok = 0;
  }
  CHECK(ok);
  CHECK_EQ_INT(t.count, 5000);
  CHECK(t.nbuckets >= 5000);
  for (i = 0; i < 5000; i++) {
    const lc__bus_topic *topic;
    snprintf(name, sizeof(name), "topic-%d", i);
    topic = lc__bus_topics_find(&t, name, strlen(name));
    if (topic == NULL || topic->nsubs != 8)
      ok = 0;
    for (s = 0; topic != NULL && s < 40; s++)
      if (lc__bus_topic_has(topic, s) != (s % 5 == (i * 7) % 5))
        ok = 0;
  }
  CHECK(ok);
  for (s = 39; s >= 0; s--)
    lc__bus_topics_remove_all(&t, s, NULL, NULL);
  CHECK_EQ_INT(t.count, 0);
  lc__bus_topics_free(&t);
}

/* The table holds at most LC__BUS_MAX_TOPICS topics; joining one that
 * exists still works at the bound. */
static void topics_bounded(void) {
  lc__bus_topics t;
  char name[32];
  int i, ok = 1;

  lc__bus_topics_init(&t);
  for (i = 0; i < LC__BUS_MAX_TOPICS; i++) {
    snprintf(name, sizeof(name), "t%d", i);
    if (lc__bus_topics_add(&t, name, strlen(name), 1) != 2)
      ok = 0;
  }
  CHECK(ok);
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("one more"), 1), UV_ENOSPC);
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("t5"), 2), 1);
  CHECK_EQ_INT(lc__bus_topics_remove(&t, T("t5"), 1), 1);
  CHECK_EQ_INT(lc__bus_topics_remove(&t, T("t5"), 2), 2);
  CHECK_EQ_INT(lc__bus_topics_add(&t, T("one more"), 1), 2);
  lc__bus_topics_free(&t);
}

/* The record -------------------------------------------------------------------- */

/* string.buffer's encoding of the table {1}, as LuaJIT writes it: a table
 * with an array part from t[1] (tag 08+4) of two slots (t[0] unused), then
 * the number 1.0. */
static const char table_of_one[] = {0x0c, 0x02, 0x07, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, (char)0xf0, 0x3f};

static size_t put_record(char *out, const lc__bus_record *r) {
  size_t n = lc__bus_head(out, r);

  if (r->body_len > 0)
    memcpy(out + n, r->body, r->body_len);
  return n + r->body_len;
}

static void record_round_trips(void) {
  char buf[LC__BUS_HEAD_MAX + 64];
  lc__bus_record r, back;
  size_t n;

  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_PUBLISH;
  r.kind = LC__FRAME_MESSAGE;
  r.from = 0x01020304u;
  r.id = 0;
  r.host = "web-1:4242";
  r.host_len = strlen(r.host);
  r.topic = "prices";
  r.topic_len = 6;
  r.body = table_of_one;
  r.body_len = sizeof(table_of_one);
  n = put_record(buf, &r);
  CHECK_EQ_INT(n, LC__BUS_HEAD_SIZE + 10 + 6 + sizeof(table_of_one));
  /* big-endian from, whatever the host's byte order */
  CHECK_EQ_INT((unsigned char)buf[8], 0x01);
  CHECK_EQ_INT((unsigned char)buf[11], 0x04);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), 0);
  CHECK_EQ_INT(back.op, LC__BUS_PUBLISH);
  CHECK_EQ_INT(back.kind, LC__FRAME_MESSAGE);
  CHECK_EQ_INT(back.from, 0x01020304u);
  CHECK_EQ_INT(back.host_len, 10);
  CHECK(memcmp(back.host, "web-1:4242", 10) == 0);
  CHECK_EQ_INT(back.topic_len, 6);
  CHECK(memcmp(back.topic, "prices", 6) == 0);
  CHECK_EQ_INT(back.body_len, sizeof(table_of_one));
  CHECK(memcmp(back.body, table_of_one, sizeof(table_of_one)) == 0);

  /* an error reply: a string body, the flag, the id */
  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_REPLY;
  r.kind = LC__FRAME_STRING;
  r.flags = LC__BUS_ERROR;
  r.id = 0xfffffffeu;
  r.body = "timeout";
  r.body_len = 7;
  n = put_record(buf, &r);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), 0);
  CHECK_EQ_INT(back.flags, LC__BUS_ERROR);
  CHECK_EQ_INT(back.id, 0xfffffffeu);
  CHECK(back.host == NULL && back.topic == NULL);
  CHECK_EQ_INT(back.body_len, 7);

  /* a subscription: a topic, no body */
  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_SUBSCRIBE;
  r.topic = "x";
  r.topic_len = 1;
  n = put_record(buf, &r);
  CHECK_EQ_INT(n, LC__BUS_HEAD_SIZE + 1);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), 0);
  CHECK_EQ_INT(back.body_len, 0);
}

/* Parses a copy of rec with byte `at` set to `v`. */
static int parse_with(const lc__bus_record *rec, size_t at, int v) {
  char buf[LC__BUS_HEAD_MAX + 64];
  lc__bus_record back;
  size_t n = put_record(buf, rec);

  buf[at] = (char)v;
  return lc__bus_parse(buf, n, &back);
}

static void record_refuses_malformed(void) {
  char buf[LC__BUS_HEAD_MAX + 64];
  lc__bus_record r, back;
  size_t n;

  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_BROADCAST;
  r.kind = LC__FRAME_MESSAGE;
  r.body = table_of_one;
  r.body_len = sizeof(table_of_one);
  n = put_record(buf, &r);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), 0);
  /* cut anywhere in the head */
  CHECK_EQ_INT(lc__bus_parse(buf, 0, &back), LC__BUS_ESHORT);
  CHECK_EQ_INT(lc__bus_parse(buf, LC__BUS_HEAD_SIZE - 1, &back),
               LC__BUS_ESHORT);
  /* cut in the body: the message check catches it */
  CHECK_EQ_INT(lc__bus_parse(buf, n - 1, &back), LC__MESSAGE_ESHORT);
  /* ops, kinds, flags, reserved bytes */
  CHECK_EQ_INT(parse_with(&r, 0, 0), LC__BUS_EOP);
  CHECK_EQ_INT(parse_with(&r, 0, LC__BUS_OP_MAX), LC__BUS_EOP);
  CHECK_EQ_INT(parse_with(&r, 1, 0), LC__BUS_EFIELD);
  CHECK_EQ_INT(parse_with(&r, 1, LC__FRAME_CONTROL), LC__BUS_EFIELD);
  CHECK_EQ_INT(parse_with(&r, 2, LC__BUS_ERROR), LC__BUS_EFIELD);
  CHECK_EQ_INT(parse_with(&r, 2, 2), LC__BUS_EFIELD);
  CHECK_EQ_INT(parse_with(&r, 6, 1), LC__BUS_EFIELD);
  CHECK_EQ_INT(parse_with(&r, 7, 1), LC__BUS_EFIELD);
  /* a host or topic longer than the record */
  CHECK_EQ_INT(parse_with(&r, 3, 200), LC__BUS_ESHORT);
  CHECK_EQ_INT(parse_with(&r, 4, 1), LC__BUS_ESHORT);
  /* a broadcast has no topic; the bytes it claims as one are not there */
  CHECK_EQ_INT(parse_with(&r, 5, 1), LC__BUS_EFIELD);
  /* a body that is not string.buffer's format */
  r.body = "\x13";
  r.body_len = 1;
  n = put_record(buf, &r);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), LC__MESSAGE_ETAG);
  /* the same bytes as a string are fine */
  r.kind = LC__FRAME_STRING;
  n = put_record(buf, &r);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), 0);

  /* a publish needs a topic; a subscription has no body */
  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_PUBLISH;
  r.kind = LC__FRAME_STRING;
  n = put_record(buf, &r);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), LC__BUS_EFIELD);
  r.op = LC__BUS_SUBSCRIBE;
  r.kind = 0;
  r.topic = "t";
  r.topic_len = 1;
  r.body = "x";
  r.body_len = 1;
  n = put_record(buf, &r);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), LC__BUS_EFIELD);
  /* an error flag only on a string reply */
  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_REPLY;
  r.kind = LC__FRAME_MESSAGE;
  r.flags = LC__BUS_ERROR;
  r.body = table_of_one;
  r.body_len = sizeof(table_of_one);
  n = put_record(buf, &r);
  CHECK_EQ_INT(lc__bus_parse(buf, n, &back), LC__BUS_EFIELD);

  CHECK(strstr(lc__bus_strerror(LC__BUS_EOP), "operation") != NULL);
  CHECK(strstr(lc__bus_strerror(LC__MESSAGE_ETAG), "tag") != NULL);
}

/* A topic over the limit is never written. */
static void record_send_refuses_long_topic(void) {
  lc__bus_record r;
  char *big = malloc(LC__BUS_TOPIC_MAX + 1);

  memset(big, 't', LC__BUS_TOPIC_MAX + 1);
  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_PUBLISH;
  r.kind = LC__FRAME_STRING;
  r.topic = big;
  r.topic_len = LC__BUS_TOPIC_MAX + 1;
  CHECK_EQ_INT(lc__bus_send(NULL, &r, NULL, NULL), UV_EINVAL);
  free(big);
}

int main(void) {
  RUN(topics_add_and_find);
  RUN(topics_refuse_bad_names);
  RUN(topics_remove);
  RUN(topics_remove_all);
  RUN(topics_many);
  RUN(topics_bounded);
  RUN(record_round_trips);
  RUN(record_refuses_malformed);
  RUN(record_send_refuses_long_topic);
  TEST_EXIT();
}
