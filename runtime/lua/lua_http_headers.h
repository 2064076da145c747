/*
 * HTTP headers between Lua and C: from Lua, the flat {name, value, ...}
 * list the http module builds for the server's responses and the client's
 * requests (a value may be a list of strings, one header line each); to
 * Lua, a request's or a response's headers as a table.
 */
#ifndef LC_LUA_HTTP_HEADERS_H
#define LC_LUA_HTTP_HEADERS_H

#include <stddef.h>

#include "http_codec.h"
#include "lua_binding.h"

/* How many headers fit in the caller's stack array. */
#define LC__LUA_STACK_HEADERS 32

/* The headers at idx (none or nil: no headers). They point into strings the
 * table keeps referenced, so they hold for the C call. Past the stack array
 * (LC__LUA_STACK_HEADERS entries) they live in a userdata pushed on the
 * stack. Raises on a name or value that is not a string. */
lc__http_header *lc__lua_check_headers(lua_State *L, int idx,
                                       lc__http_header *stack, size_t *n);

/* A message's headers as a table: names as the reader gave them (lower
 * case), a repeated header's values joined with ", " (as Node does). */
void lc__lua_push_headers(lua_State *L, const lc__http_head *head);

#endif
