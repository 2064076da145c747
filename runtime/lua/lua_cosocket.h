/*
 * lua_cosocket.h - what the cosockets (lua_cosocket.c) and their keep-alive
 * pools (lua_copool.c) share.
 */
#ifndef LC_LUA_COSOCKET_H
#define LC_LUA_COSOCKET_H

#include "lua_binding.h"
#include "tcp.h"

/* The most recently pooled connection of key (its data and ops are the
 * caller's to set), or NULL; *reused counts its previous users. */
lc__conn *lc__copool_take(lc_runtime *rt, const char *key, unsigned *reused);
/* Puts c into key's pool for at most idle_ms (0: no limit): 0, or -1 when
 * the pool already holds max (c stays the caller's). */
int lc__copool_put(lc_runtime *rt, const char *key, lc__conn *c,
                   unsigned reused, uint64_t idle_ms, size_t max);

#endif
