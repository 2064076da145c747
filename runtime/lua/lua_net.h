/*
 * lua_net.h - what lua_net.c (servers, raw sockets) and lua_http.c (HTTP
 * requests and responses) share.
 */
#ifndef LC_LUA_NET_H
#define LC_LUA_NET_H

#include "http_server.h"
#include "lua_binding.h"
#include "tcp.h"

/* The binding's side of a server (its lc__server's data). */
typedef struct lc__lua_server {
  lc__lua_handle base; /* pinned: the Lua Server object while it listens */
  lc__server *s;
  lc__http_server http; /* an HTTP server's settings (its s->proto) */
} lc__lua_server;

extern const lc__lua_type lc__server_type;
extern const lc__conn_ops lc__net_conn_ops;

/* A raw TCP socket (net): accepted by a server, or opened by net.connect
 * (lua_tcp_client.c). Its connection's data. */
typedef struct lc__lua_socket {
  lc__lua_handle base; /* pinned: the Lua Socket object while open */
  lc__conn *c;
  int want_drain;
  int had_error;
} lc__lua_socket;

extern const lc__lua_type lc__socket_type;

lc__lua_server *lc__check_server(lua_State *L, int idx);

/* lua_http.c */
/* Sets up an HTTP server's settings with the binding's callbacks. */
void lc__lua_http_server_init(lc__lua_server *ls);
/* server:configure{...} -> the settings now */
int lc__lua_http_configure(lua_State *L);

#endif
