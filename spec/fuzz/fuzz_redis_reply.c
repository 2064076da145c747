/*
 * fuzz_redis_reply.c - libFuzzer target for the Redis reply parser
 * (redis_reply.c): our object functions and arena on top of hiredis's
 * reader, and the size bound.
 *
 * The input is fed in pieces cut where its first bytes say, to a parser
 * with a large bound and to one with a small bound. Every reply must be a
 * well-formed tree, and the large one's replies must be exactly those
 * hiredis's own reader builds from the whole input (unless the input
 * declares an array so large that hiredis's reader would allocate it
 * whole: then only ours runs). The small one must give a prefix of the
 * same replies, then stop with UV_EMSGSIZE or the same error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "../c/redis_compare.h"
#include "redis.h"

#define MAX_REPLIES 4096

static void check_tree(const lc__redis_reply *r, int depth) {
  size_t i;

  if (depth > 16)
    abort();
  switch (r->type) {
  case LC__REDIS_STRING:
  case LC__REDIS_STATUS:
  case LC__REDIS_ERROR:
    if (r->str == NULL || r->str[r->len] != '\0')
      abort();
    break;
  case LC__REDIS_ARRAY:
    for (i = 0; i < r->len; i++) {
      if (r->element[i] == NULL)
        abort();
      check_tree(r->element[i], depth + 1);
    }
    break;
  case LC__REDIS_INTEGER:
  case LC__REDIS_NIL:
    break;
  default:
    abort();
  }
}

/* Would hiredis's default reader allocate a huge array for this input? */
static int declares_huge_array(const uint8_t *data, size_t size) {
  size_t i, j;

  for (i = 0; i < size; i++) {
    long long n = 0;
    if (data[i] != '*')
      continue;
    for (j = i + 1; j < size && data[j] >= '0' && data[j] <= '9'; j++) {
      n = n * 10 + (data[j] - '0');
      if (n > 100000)
        return 1;
    }
  }
  return 0;
}

/* Runs a parser over the input in pieces; its replies are checked against
 * the reference replies (when there are). Returns how it ended. */
static int run(const uint8_t *data, size_t size, size_t bound,
               redisReply **ref, int nref, int ref_end) {
  lc__redis_parser *p = lc__redis_parser_new(bound);
  const lc__redis_reply *r;
  size_t off = 0, piece;
  int seen = 0, n = 0, i = 0;

  while (off < size && n >= 0) {
    piece = 1 + (data[i++ % (size < 4 ? size : 4)] % 97);
    if (piece > size - off)
      piece = size - off;
    if (lc__redis_parser_feed(p, (const char *)data + off, piece) != 0)
      abort();
    off += piece;
    while ((n = lc__redis_parser_next(p, &r)) == 1) {
      check_tree(r, 0);
      if (ref != NULL) {
        if (seen >= nref || !redis_same(r, ref[seen]))
          abort();
      }
      seen++;
    }
  }
  lc__redis_parser_free(p);
  if (ref != NULL) {
    if (bound >= (size_t)1 << 24 && (seen != nref || (n < 0) != (ref_end < 0)))
      abort();
    if (n < 0 && n != UV_EMSGSIZE && n != UV_EPROTO)
      abort();
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  redisReply *ref[MAX_REPLIES];
  redisReader *h;
  void *reply;
  int nref = 0, end = 0, i;

  if (size == 0)
    return 0;
  if (declares_huge_array(data, size)) {
    run(data, size, (size_t)1 << 24, NULL, 0, 0);
    run(data, size, 200, NULL, 0, 0);
    return 0;
  }
  h = redisReaderCreate();
  redisReaderFeed(h, (const char *)data, size);
  while (nref < MAX_REPLIES) {
    if (redisReaderGetReply(h, &reply) != REDIS_OK) {
      end = -1;
      break;
    }
    if (reply == NULL)
      break;
    ref[nref++] = reply;
  }
  if (nref < MAX_REPLIES) {
    run(data, size, (size_t)1 << 24, ref, nref, end);
    run(data, size, 200, ref, nref, end);
  }
  for (i = 0; i < nref; i++)
    freeReplyObject(ref[i]);
  redisReaderFree(h);
  return 0;
}
