/*
 * lua_copool.c - the keep-alive pools of cosockets (net.tcp():setkeepalive),
 * one per key ("host:port", or connect's pool option) in each Lua state.
 *
 * A pooled connection belongs to no Lua object: its data is an lc__pooled
 * and its ops are the pool's. The most recently pooled is taken first. An
 * idle one that hears anything (the server closing it, stray bytes) or
 * outlives its idle time is closed; it does not keep the process alive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_cosocket.h"

typedef struct lc__copool lc__copool;

/* A connection waiting in a pool (its lc__conn's data). */
typedef struct lc__pooled {
  lc__conn *c;
  lc__copool *pool; /* NULL once it left */
  unsigned reused;
  struct lc__pooled *next;
} lc__pooled;

struct lc__copool {
  lc__copool *next;
  lc__pooled *idle; /* most recently pooled first */
  size_t n;
  char key[300];
};

/* The pools of this Lua state (lc_runtime's cosocket_pools). */
struct lc__copools {
  lc__copool *list;
};

static void pool_unlink(lc__pooled *p) {
  lc__copool *pool = p->pool;
  lc__pooled **pp;

  if (pool == NULL)
    return;
  for (pp = &pool->idle; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      pool->n--;
      break;
    }
  }
  p->pool = NULL;
}

/* An idle pooled connection has nothing to hear: anything ends it. */
static void pl_drop(lc__conn *c) {
  pool_unlink(c->data);
  lc__conn_close(c);
}

static void pl_on_read(lc__conn *c, const char *data, size_t len) {
  (void)data, (void)len;
  pl_drop(c);
}

static void pl_on_error(lc__conn *c, int err) {
  (void)err;
  pool_unlink(c->data);
}

static void pl_on_close(lc__conn *c) {
  lc__pooled *p = c->data;

  pool_unlink(p);
  free(p);
}

static void pl_nothing(lc__conn *c) { (void)c; }

static const lc__conn_ops pooled_ops = {
    pl_nothing, pl_on_read, pl_drop,     pl_drop,
    pl_nothing, pl_nothing, pl_on_error, pl_on_close};

static void pools_free(void *arg) {
  lc_runtime *rt = arg;
  lc__copool *pool;

  if (rt->cosocket_pools == NULL)
    return;
  while ((pool = rt->cosocket_pools->list) != NULL) {
    rt->cosocket_pools->list = pool->next;
    free(pool); /* its connections were closed by the shutdown walk */
  }
  free(rt->cosocket_pools);
  rt->cosocket_pools = NULL;
}

static lc__copool *pool_find(lc_runtime *rt, const char *key, int create) {
  lc__copool *pool;

  if (rt->cosocket_pools == NULL) {
    if (!create)
      return NULL;
    rt->cosocket_pools = calloc(1, sizeof(*rt->cosocket_pools));
    if (rt->cosocket_pools == NULL ||
        lc__core_on_close(&rt->core, pools_free, rt) != 0) {
      free(rt->cosocket_pools);
      rt->cosocket_pools = NULL;
      return NULL;
    }
  }
  for (pool = rt->cosocket_pools->list; pool != NULL; pool = pool->next)
    if (strcmp(pool->key, key) == 0)
      return pool;
  if (!create || (pool = calloc(1, sizeof(*pool))) == NULL)
    return NULL;
  snprintf(pool->key, sizeof(pool->key), "%s", key);
  pool->next = rt->cosocket_pools->list;
  rt->cosocket_pools->list = pool;
  return pool;
}

lc__conn *lc__copool_take(lc_runtime *rt, const char *key, unsigned *reused) {
  lc__copool *pool = pool_find(rt, key, 0);
  lc__pooled *p;
  lc__conn *c;

  while (pool != NULL && (p = pool->idle) != NULL) {
    pool_unlink(p);
    c = p->c;
    if (c->closing)
      continue; /* its on_close frees p */
    *reused = p->reused + 1;
    free(p);
    c->data = NULL;
    uv_ref((uv_handle_t *)&c->tcp);
    return c;
  }
  return NULL;
}

int lc__copool_put(lc_runtime *rt, const char *key, lc__conn *c,
                   unsigned reused, uint64_t idle_ms, size_t max) {
  lc__copool *pool = pool_find(rt, key, 1);
  lc__pooled *p;

  if (pool == NULL || pool->n >= max || (p = calloc(1, sizeof(*p))) == NULL)
    return -1;
  p->c = c;
  p->pool = pool;
  p->reused = reused;
  p->next = pool->idle;
  pool->idle = p;
  pool->n++;
  c->ops = &pooled_ops;
  c->data = p;
  lc__conn_set_timeout(c, idle_ms);
  lc__conn_resume(c);
  uv_unref((uv_handle_t *)&c->tcp);
  return 0;
}
