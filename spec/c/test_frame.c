/*
 * test_frame.c - the IPC frame codec (frame.c) with bytes only: headers,
 * frames cut anywhere, frames back to back, the size limit, garbage, and
 * the checks on control records. The checks on a message's bytes
 * (message.c) are in test_message.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "test.h"

#define MAX_PAYLOAD (1024 * 1024)

/* Writes a frame (header and payload) at out; returns its size. */
static size_t put_frame(char *out, int type, const char *payload,
                        uint32_t len) {
  lc__frame_header(out, type, len);
  memcpy(out + LC__FRAME_HEADER_SIZE, payload, len);
  return LC__FRAME_HEADER_SIZE + len;
}

static lc__control valid_control(void) {
  lc__control c;

  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_LISTEN;
  c.server_id = 7;
  c.port = 8080;
  c.backlog = 511;
  c.value = 0x0102030405060708ull;
  snprintf(c.addr, sizeof(c.addr), "127.0.0.1");
  return c;
}

static void header_round_trips(void) {
  static const uint32_t lens[] = {0,     1,     255,        256,
                                  65535, 65536, 0x01020304, 0xfffffffeu};
  static const int types[] = {LC__FRAME_MESSAGE, LC__FRAME_CONTROL,
                              LC__FRAME_HANDLE, LC__FRAME_STRING,
                              LC__FRAME_BUS, LC__FRAME_TLS_KEYS};
  char h[LC__FRAME_HEADER_SIZE];
  lc__frame f;
  size_t i, t;

  for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
      uint32_t len = lens[i];

      lc__frame_header(h, types[t], len);
      CHECK(h[0] == 'L' && h[1] == 'C');
      CHECK_EQ_INT((unsigned char)h[2], types[t]);
      CHECK_EQ_INT(h[3], 0);
      /* Big-endian, whatever the host's byte order. */
      CHECK_EQ_INT((unsigned char)h[4], len >> 24);
      CHECK_EQ_INT((unsigned char)h[7], len & 0xff);
      /* The length read back is exactly len: allowed at a limit of len,
       * refused at len - 1. */
      if (len > 0) {
        CHECK_EQ_INT(lc__frame_parse(h, sizeof(h), len, &f), 0);
        CHECK_EQ_INT(lc__frame_parse(h, sizeof(h), len - 1, &f),
                     LC__FRAME_ETOOBIG);
      }
      if (len <= 65536) {
        char *buf = calloc(1, LC__FRAME_HEADER_SIZE + len);
        memcpy(buf, h, sizeof(h));
        memset(&f, 0, sizeof(f));
        CHECK_EQ_INT(lc__frame_parse(buf, LC__FRAME_HEADER_SIZE + len,
                                     MAX_PAYLOAD, &f), 1);
        CHECK_EQ_INT(f.type, types[t]);
        CHECK_EQ_INT(f.payload_len, len);
        CHECK_EQ_INT(f.size, LC__FRAME_HEADER_SIZE + len);
        CHECK(f.payload == buf + LC__FRAME_HEADER_SIZE);
        free(buf);
      }
    }
  }
}

static void whole_frame_parses_with_its_payload(void) {
  char buf[LC__FRAME_HEADER_SIZE + 300];
  char payload[300];
  lc__frame f;
  size_t i, n;

  for (i = 0; i < sizeof(payload); i++)
    payload[i] = (char)(i * 7 + 3);
  n = put_frame(buf, LC__FRAME_CONTROL, payload, sizeof(payload));
  CHECK_EQ_INT(lc__frame_parse(buf, n, MAX_PAYLOAD, &f), 1);
  CHECK_EQ_INT(f.type, LC__FRAME_CONTROL);
  CHECK_EQ_INT(f.payload_len, sizeof(payload));
  CHECK_EQ_INT(f.size, n);
  CHECK(f.payload == buf + LC__FRAME_HEADER_SIZE);
  CHECK(memcmp(f.payload, payload, sizeof(payload)) == 0);
}

static void split_frame_needs_more_until_complete(void) {
  char buf[LC__FRAME_HEADER_SIZE + 1000];
  char payload[1000];
  lc__frame f;
  size_t i, n;
  int r;

  for (i = 0; i < sizeof(payload); i++)
    payload[i] = (char)i;
  n = put_frame(buf, LC__FRAME_MESSAGE, payload, sizeof(payload));
  for (i = 0; i < n; i++) {
    /* A copy of exactly i bytes, so a read past them is caught by ASan. */
    char *part = malloc(i ? i : 1);
    memcpy(part, buf, i);
    r = lc__frame_parse(part, i, MAX_PAYLOAD, &f);
    if (r != 0)
      fprintf(stderr, "  prefix of %zu bytes gave %d\n", i, r);
    CHECK_EQ_INT(r, 0);
    free(part);
  }
  CHECK_EQ_INT(lc__frame_parse(buf, n, MAX_PAYLOAD, &f), 1);
  CHECK_EQ_INT(f.size, n);
}

static void frames_back_to_back_parse_one_by_one(void) {
  static const struct {
    int type;
    uint32_t len;
  } want[] = {{LC__FRAME_MESSAGE, 0},
              {LC__FRAME_CONTROL, sizeof(lc__control)},
              {LC__FRAME_MESSAGE, 1},
              {LC__FRAME_HANDLE, sizeof(lc__control)},
              {LC__FRAME_MESSAGE, 5000}};
  size_t nframes = sizeof(want) / sizeof(want[0]);
  char *buf = malloc(LC__FRAME_HEADER_SIZE * nframes + 5001 +
                     2 * sizeof(lc__control) + 1);
  char payload[5000];
  size_t i, off = 0, total;
  lc__frame f;

  for (i = 0; i < nframes; i++) {
    memset(payload, (int)('a' + i), want[i].len);
    off += put_frame(buf + off, want[i].type, payload, want[i].len);
  }
  total = off;
  /* A first byte of the next frame must not spoil the one before it. */
  buf[total] = 'L';

  off = 0;
  for (i = 0; i < nframes; i++) {
    CHECK_EQ_INT(lc__frame_parse(buf + off, total - off, MAX_PAYLOAD, &f), 1);
    CHECK_EQ_INT(f.type, want[i].type);
    CHECK_EQ_INT(f.payload_len, want[i].len);
    CHECK(f.payload_len == 0 || (f.payload[0] == (char)('a' + i) &&
                                 f.payload[f.payload_len - 1] == (char)('a' + i)));
    off += f.size;
  }
  CHECK_EQ_INT(off, total);
  CHECK_EQ_INT(lc__frame_parse(buf + off, 0, MAX_PAYLOAD, &f), 0);
  CHECK_EQ_INT(lc__frame_parse(buf + off, 1, MAX_PAYLOAD, &f), 0);
  free(buf);
}

static void length_over_limit_is_etoobig_once_header_is_in(void) {
  char h[LC__FRAME_HEADER_SIZE];
  lc__frame f;
  size_t i;

  lc__frame_header(h, LC__FRAME_MESSAGE, 1001);
  for (i = 0; i < sizeof(h); i++)
    CHECK_EQ_INT(lc__frame_parse(h, i, 1000, &f), 0);
  /* No payload needed to refuse it: the sender may never send it all. */
  CHECK_EQ_INT(lc__frame_parse(h, sizeof(h), 1000, &f), LC__FRAME_ETOOBIG);

  /* Exactly the limit is allowed. */
  lc__frame_header(h, LC__FRAME_MESSAGE, 1000);
  CHECK_EQ_INT(lc__frame_parse(h, sizeof(h), 1000, &f), 0);

  lc__frame_header(h, LC__FRAME_CONTROL, 0xffffffffu);
  CHECK_EQ_INT(lc__frame_parse(h, sizeof(h), MAX_PAYLOAD, &f),
               LC__FRAME_ETOOBIG);
}

/* Parses growing prefixes of bad: 0 until byte `at` is in, then err. */
static void check_caught_at(const char *bad, size_t at, int err) {
  lc__frame f;
  size_t i;

  for (i = 0; i < at; i++)
    CHECK_EQ_INT(lc__frame_parse(bad, i, MAX_PAYLOAD, &f), 0);
  for (i = at + 1; i <= LC__FRAME_HEADER_SIZE; i++)
    CHECK_EQ_INT(lc__frame_parse(bad, i, MAX_PAYLOAD, &f), err);
}

static void garbage_is_caught_on_the_first_bad_byte(void) {
  char h[LC__FRAME_HEADER_SIZE];

  check_caught_at("GET / HT", 0, LC__FRAME_EMAGIC);
  check_caught_at("LX\1\0\0\0\0\0", 1, LC__FRAME_EMAGIC);
  check_caught_at("LC\0\0\0\0\0\0", 2, LC__FRAME_ETYPE);
  check_caught_at("LC\10\0\0\0\0\0", 2, LC__FRAME_ETYPE);
  check_caught_at("LC\377\0\0\0\0\0", 2, LC__FRAME_ETYPE);
  check_caught_at("LC\1\1\0\0\0\0", 3, LC__FRAME_ETYPE);
  check_caught_at("LC\3\200\0\0\0\0", 3, LC__FRAME_ETYPE);

  /* A good header is not garbage at any prefix. */
  lc__frame_header(h, LC__FRAME_HANDLE, 4);
  check_caught_at(h, LC__FRAME_HEADER_SIZE, 0);
  lc__frame_header(h, LC__FRAME_STRING, 4);
  check_caught_at(h, LC__FRAME_HEADER_SIZE, 0);
}

static void errors_have_distinct_words(void) {
  const char *magic = lc__frame_strerror(LC__FRAME_EMAGIC);
  const char *type = lc__frame_strerror(LC__FRAME_ETYPE);
  const char *big = lc__frame_strerror(LC__FRAME_ETOOBIG);

  CHECK(strstr(magic, "magic") != NULL);
  CHECK(strstr(type, "type") != NULL);
  CHECK(strstr(big, "limit") != NULL);
  CHECK(strcmp(magic, type) != 0 && strcmp(type, big) != 0);
  CHECK(lc__frame_strerror(-99) != NULL);
}

static void control_check_accepts_a_good_record(void) {
  lc__control c = valid_control(), out;
  char *buf = malloc(sizeof(c) + 1);

  /* At an odd address: the record is copied, never read in place. */
  memcpy(buf + 1, &c, sizeof(c));
  memset(&out, 0xee, sizeof(out));
  CHECK_EQ_INT(lc__control_check(buf + 1, sizeof(c), &out), 0);
  CHECK(memcmp(&out, &c, sizeof(c)) == 0);
  free(buf);

  c.cmd = LC__CTL_ONLINE;
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c), &out), 0);
  c.cmd = LC__CTL_MAX - 1;
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c), &out), 0);
  /* An address filling the field but for its NUL is fine. */
  memset(c.addr, 'a', sizeof(c.addr) - 1);
  c.addr[sizeof(c.addr) - 1] = '\0';
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c), &out), 0);
}

static void control_check_refuses_a_wrong_size(void) {
  lc__control c = valid_control(), out;
  char big[sizeof(lc__control) + 1];

  memcpy(big, &c, sizeof(c));
  big[sizeof(c)] = 0;
  CHECK_EQ_INT(lc__control_check((char *)&c, 0, &out), LC__FRAME_ETYPE);
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c) - 1, &out),
               LC__FRAME_ETYPE);
  CHECK_EQ_INT(lc__control_check(big, sizeof(big), &out), LC__FRAME_ETYPE);
}

static void control_check_refuses_an_unknown_command(void) {
  lc__control c = valid_control(), out;

  c.cmd = 0;
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c), &out), LC__FRAME_ETYPE);
  c.cmd = LC__CTL_MAX;
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c), &out), LC__FRAME_ETYPE);
  c.cmd = 0xffffffffu;
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c), &out), LC__FRAME_ETYPE);
}

static void control_check_refuses_an_addr_without_nul(void) {
  lc__control c = valid_control(), out;

  memset(c.addr, 'x', sizeof(c.addr));
  CHECK_EQ_INT(lc__control_check((char *)&c, sizeof(c), &out), LC__FRAME_ETYPE);
}

int main(void) {
  RUN(header_round_trips);
  RUN(whole_frame_parses_with_its_payload);
  RUN(split_frame_needs_more_until_complete);
  RUN(frames_back_to_back_parse_one_by_one);
  RUN(length_over_limit_is_etoobig_once_header_is_in);
  RUN(garbage_is_caught_on_the_first_bad_byte);
  RUN(errors_have_distinct_words);
  RUN(control_check_accepts_a_good_record);
  RUN(control_check_refuses_a_wrong_size);
  RUN(control_check_refuses_an_unknown_command);
  RUN(control_check_refuses_an_addr_without_nul);
  TEST_EXIT();
}
