/*
 * redis_url.h - "redis://[user:password@]host[:port][/db]" into client
 * options (redis.h), for the C parts that take a Redis URL (the master's
 * --redis); lua/redis.lua reads the same form for createClient{url=}.
 */
#ifndef LC_REDIS_URL_H
#define LC_REDIS_URL_H

#include <stddef.h>

typedef struct lc__redis_url {
  char host[256];     /* a name or an address (an IPv6 one without []) */
  int port;           /* 6379 when the URL has none */
  int db;             /* 0 when the URL has none */
  char username[256]; /* "" when none */
  char password[256]; /* "" when none */
  int has_password;
} lc__redis_url;

/* 0 and *out, or -1 with why[0, n) saying what is wrong with url. */
int lc__redis_url_parse(const char *url, lc__redis_url *out, char *why,
                        size_t n);

#endif
