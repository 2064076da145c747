/*
 * redis_compare.h - for the Redis reply tests and the fuzz target: our
 * reply (redis_reply.c) against the reply hiredis's own reader builds from
 * the same bytes.
 */
#ifndef LC_REDIS_COMPARE_H
#define LC_REDIS_COMPARE_H

#include <hiredis/hiredis.h>
#include <string.h>

#include "redis.h"

/* 1 when ours says what hiredis's says (types, strings, integers, shape). */
static int redis_same(const lc__redis_reply *ours, const redisReply *theirs) {
  size_t i;

  if (ours->type != theirs->type)
    return 0;
  switch (ours->type) {
  case LC__REDIS_STRING:
  case LC__REDIS_STATUS:
  case LC__REDIS_ERROR:
    return ours->len == theirs->len && ours->str[ours->len] == '\0' &&
           memcmp(ours->str, theirs->str, ours->len) == 0;
  case LC__REDIS_INTEGER:
    return ours->integer == theirs->integer;
  case LC__REDIS_NIL:
    return 1;
  case LC__REDIS_ARRAY:
    if (ours->len != theirs->elements)
      return 0;
    for (i = 0; i < ours->len; i++)
      if (!redis_same(ours->element[i], theirs->element[i]))
        return 0;
    return 1;
  }
  return 0;
}

#endif
