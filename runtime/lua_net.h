/*
 * lua_net.h - what lua_net.c (servers, raw sockets) and lua_http.c (the
 * HTTP protocol) share.
 */
#ifndef LC_LUA_NET_H
#define LC_LUA_NET_H

#include "tcp.h"

/* The binding's side of a server (lc__server.data). */
typedef struct lc__lserver {
  int obj_ref;         /* the Lua Server object while it may hear events */
  lc__server **box;    /* its userdata's slot */
  int http;            /* an HTTP server: proto is an lc__http_server */
  void *proto;
} lc__lserver;

extern const lc__conn_ops lc__net_conn_ops;
extern const lc__conn_ops lc__http_conn_ops;

/* handler(object at obj_ref, event, <nargs values on the stack>). */
int lc__net_emit(int obj_ref, const char *event, int nargs, int nresults);
lc__server *lc__check_server(lua_State *L, int idx);

/* lua_http.c */
int lc__http_server_init(lc__lserver *ls);
int lc__http_server_configure(lua_State *L);
void lc__core_http(lua_State *L);

#endif
