/*
 * lua_net.c - servers and raw TCP sockets for lua/net.lua and lua/http.lua.
 *
 * A Server userdata wraps an lc__server (tcp.h); a Socket userdata wraps a
 * raw connection. Each belongs to a Lua object (the Server or Socket table),
 * which C holds by a registry ref while it may call back: a server while it
 * listens or closes, a socket while it is open. Everything that happens
 * reaches Lua as handler(object, event, ...), the handler calling
 * object:_native(event, ...).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lua_net.h"

#define SERVER_MT "luacluster.Server"
#define SOCKET_MT "luacluster.Socket"
#define HIGH_WATER_MARK (16 * 1024)

static int net_handler_ref = LUA_NOREF;

/* Calls handler(object at ref, event, <nargs values on the stack>). */
int lc__net_emit(int obj_ref, const char *event, int nargs, int nresults) {
  lua_State *L = lc__rt->L;

  if (obj_ref == LUA_NOREF || lc__rt->exiting) {
    lua_pop(L, nargs);
    return -1;
  }
  lc__lua_push_ref(L, net_handler_ref);
  lc__lua_push_ref(L, obj_ref);
  lua_pushstring(L, event);
  lua_insert(L, -3 - nargs);
  lua_insert(L, -3 - nargs);
  lua_insert(L, -3 - nargs);
  return lc__lua_call(L, nargs + 2, nresults);
}

static int push_error(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, uv_strerror(err));
  lua_pushstring(L, uv_err_name(err));
  return 3;
}

/* Servers ------------------------------------------------------------------ */

static lc__lserver *lserver_of(lc__server *s) { return s->data; }

static void server_unpin(lc__lserver *ls) {
  if (lc__rt->L != NULL)
    lc__lua_unref(lc__rt->L, &ls->obj_ref);
}

static void ls_on_listening(lc__server *s, int status) {
  lc__lserver *ls = lserver_of(s);
  lua_State *L = lc__rt->L;

  if (status == 0) {
    lc__net_emit(ls->obj_ref, "listening", 0, 0);
    return;
  }
  lua_pushstring(L, uv_strerror(status));
  lua_pushstring(L, uv_err_name(status));
  lc__net_emit(ls->obj_ref, "error", 2, 0);
  if (s->state == LC__SERVER_NEW)
    server_unpin(ls);
}

static void ls_on_closed(lc__server *s) {
  lc__lserver *ls = lserver_of(s);

  lc__net_emit(ls->obj_ref, "close", 0, 0);
  server_unpin(ls);
}

static void ls_on_free(lc__server *s) {
  lc__lserver *ls = lserver_of(s);

  if (ls->box != NULL)
    *ls->box = NULL;
  server_unpin(ls);
  free(ls->proto);
  free(ls);
}

/* core.server(object, kind) -> Server; kind is "net" or "http" */
static int server_new(lua_State *L) {
  const char *kind = luaL_checkstring(L, 2);
  const lc__conn_ops *ops;
  lc__server **box;
  lc__lserver *ls;
  lc__server *s;

  luaL_checktype(L, 1, LUA_TTABLE);
  if (strcmp(kind, "net") == 0)
    ops = &lc__net_conn_ops;
  else if (strcmp(kind, "http") == 0)
    ops = &lc__http_conn_ops;
  else
    return luaL_argerror(L, 2, "expected \"net\" or \"http\"");
  ls = calloc(1, sizeof(*ls));
  if (ls == NULL)
    return luaL_error(L, "out of memory");
  ls->obj_ref = LUA_NOREF;
  ls->http = ops == &lc__http_conn_ops;
  if (ls->http && lc__http_server_init(ls) != 0) {
    free(ls);
    return luaL_error(L, "out of memory");
  }
  s = lc__server_new(lc__rt, ops, ls);
  if (s == NULL) {
    free(ls->proto);
    free(ls);
    return luaL_error(L, "out of memory");
  }
  s->on_listening = ls_on_listening;
  s->on_closed = ls_on_closed;
  s->on_free = ls_on_free;
  box = lua_newuserdata(L, sizeof(*box));
  *box = s;
  ls->box = box;
  luaL_getmetatable(L, SERVER_MT);
  lua_setmetatable(L, -2);
  return 1;
}

lc__server *lc__check_server(lua_State *L, int idx) {
  lc__server **box = luaL_checkudata(L, idx, SERVER_MT);

  if (*box == NULL)
    luaL_error(L, "server is released");
  return *box;
}

static int server_gc(lua_State *L) {
  lc__server **box = luaL_checkudata(L, 1, SERVER_MT);
  lc__server *s = *box;

  if (s == NULL)
    return 0;
  lserver_of(s)->box = NULL;
  *box = NULL;
  if (s->state == LC__SERVER_NEW || s->state == LC__SERVER_CLOSED)
    lc__server_free(s);
  else
    lc__server_close(s); /* freed when the runtime ends */
  return 0;
}

/* server:listen(object, host, port, backlog, ipv6only) -> status | nil, msg, code
 * status: "listening" (now) or "pending" (the master answers later). */
static int server_listen(lua_State *L) {
  lc__server *s = lc__check_server(L, 1);
  lc__lserver *ls = lserver_of(s);
  const char *host = luaL_optstring(L, 3, "");
  int port = (int)luaL_checkinteger(L, 4);
  int backlog = (int)luaL_optinteger(L, 5, 511);
  uint32_t flags = lua_toboolean(L, 6) ? LC__LISTEN_IPV6ONLY : 0;
  int r;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (port < 0 || port > 65535)
    return luaL_argerror(L, 4, "port must be 0-65535");
  r = lc__server_listen(s, host, port, backlog, flags);
  if (r < 0)
    return push_error(L, r);
  if (ls->obj_ref == LUA_NOREF) {
    lua_pushvalue(L, 2);
    ls->obj_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushstring(L, r == 0 ? "listening" : "pending");
  return 1;
}

/* server:close(): stops accepting; "close" follows once connections end. */
static int server_close(lua_State *L) {
  lc__server_close(lc__check_server(L, 1));
  return 0;
}

/* server:address() -> ip, port */
static int server_address(lua_State *L) {
  lc__server *s = lc__check_server(L, 1);

  if (s->state != LC__SERVER_LISTENING)
    return 0;
  lua_pushstring(L, s->addr);
  lua_pushinteger(L, s->port);
  return 2;
}

static int server_connections(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc__check_server(L, 1)->nconns);
  return 1;
}

/* server:set_timeout(ms): idle timeout of new connections */
static int server_set_timeout(lua_State *L) {
  lc__server *s = lc__check_server(L, 1);
  lua_Number ms = luaL_checknumber(L, 2);

  s->timeout_ms = ms > 0 ? (uint64_t)ms : 0;
  return 0;
}

/* Raw sockets (net) ---------------------------------------------------------- */

typedef struct lc__lsocket {
  int obj_ref;
  lc__conn **box;
  int want_drain;
  int had_error;
} lc__lsocket;

static lc__conn *check_socket(lua_State *L, int idx) {
  lc__conn **box = luaL_checkudata(L, idx, SOCKET_MT);

  if (*box == NULL)
    luaL_error(L, "socket is closed");
  return *box;
}

static void net_on_open(lc__conn *c) {
  lc__lserver *ls = c->server->data;
  lua_State *L = lc__rt->L;
  lc__lsocket *sock = calloc(1, sizeof(*sock));
  lc__conn **box;

  if (sock == NULL || ls->obj_ref == LUA_NOREF) {
    free(sock);
    lc__conn_close(c);
    return;
  }
  sock->obj_ref = LUA_NOREF;
  c->data = sock;
  box = lua_newuserdata(L, sizeof(*box));
  *box = c;
  sock->box = box;
  luaL_getmetatable(L, SOCKET_MT);
  lua_setmetatable(L, -2);
  /* The server's handler wraps it in a Socket object and returns that. */
  if (lc__net_emit(ls->obj_ref, "connection", 1, 1) != 0) {
    lc__conn_close(c);
    return;
  }
  if (lua_istable(L, -1))
    sock->obj_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_pop(L, 1);
}

static void net_on_read(lc__conn *c, const char *data, size_t len) {
  lc__lsocket *sock = c->data;

  if (sock == NULL)
    return;
  lua_pushlstring(lc__rt->L, data, len);
  lc__net_emit(sock->obj_ref, "data", 1, 0);
}

static void net_on_eof(lc__conn *c) {
  lc__lsocket *sock = c->data;

  if (sock != NULL)
    lc__net_emit(sock->obj_ref, "end", 0, 0);
  /* Node's default (allowHalfOpen false): end our side too. */
  if (!c->closing)
    lc__conn_shutdown(c);
}

static void net_on_timeout(lc__conn *c) {
  lc__lsocket *sock = c->data;

  if (c->shutdown) { /* lingering after finish(): enough */
    lc__conn_close(c);
    return;
  }
  if (sock != NULL)
    lc__net_emit(sock->obj_ref, "timeout", 0, 0);
}

static void net_on_drain(lc__conn *c) {
  lc__lsocket *sock = c->data;

  if (sock != NULL && sock->want_drain) {
    sock->want_drain = 0;
    lc__net_emit(sock->obj_ref, "drain", 0, 0);
  }
}

static void net_on_server_close(lc__conn *c) {
  (void)c; /* raw connections live on until they end */
}

static void net_on_error(lc__conn *c, int err) {
  lc__lsocket *sock = c->data;
  lua_State *L = lc__rt->L;

  if (sock == NULL || err == UV_ECONNRESET || err == UV_EPIPE) {
    if (sock != NULL)
      sock->had_error = 1;
    if (sock == NULL || err == UV_EPIPE)
      return;
  }
  sock->had_error = 1;
  lua_pushstring(L, uv_strerror(err));
  lua_pushstring(L, uv_err_name(err));
  lc__net_emit(sock->obj_ref, "error", 2, 0);
}

static void net_on_close(lc__conn *c) {
  lc__lsocket *sock = c->data;
  lua_State *L = lc__rt->L;

  if (sock == NULL)
    return;
  c->data = NULL;
  if (sock->box != NULL)
    *sock->box = NULL;
  if (L != NULL) {
    lua_pushboolean(L, sock->had_error);
    lc__net_emit(sock->obj_ref, "close", 1, 0);
    lc__lua_unref(L, &sock->obj_ref);
  }
  free(sock);
}

const lc__conn_ops lc__net_conn_ops = {
    net_on_open,  net_on_read,         net_on_eof,   net_on_timeout,
    net_on_drain, net_on_server_close, net_on_error, net_on_close};

/* socket:write(data) -> below the high-water mark */
static int socket_write(lua_State *L) {
  lc__conn *c = check_socket(L, 1);
  lc__lsocket *sock = c->data;
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int err = lc__conn_write(c, data, len);

  if (err)
    return luaL_error(L, "write: %s", uv_strerror(err));
  lc__conn_touch(c);
  if (lc__conn_write_queue(c) >= HIGH_WATER_MARK) {
    sock->want_drain = 1;
    lua_pushboolean(L, 0);
  } else {
    lua_pushboolean(L, 1);
  }
  return 1;
}

/* socket:finish([data]): write, then end our side. */
static int socket_finish(lua_State *L) {
  lc__conn **box = luaL_checkudata(L, 1, SOCKET_MT);
  size_t len = 0;
  const char *data = luaL_optlstring(L, 2, NULL, &len);

  if (*box == NULL || (*box)->closing || (*box)->shutdown)
    return 0;
  if (data != NULL && len > 0)
    lc__conn_write(*box, data, len);
  lc__conn_shutdown(*box);
  return 0;
}

static int socket_destroy(lua_State *L) {
  lc__conn **box = luaL_checkudata(L, 1, SOCKET_MT);

  if (*box != NULL)
    lc__conn_close(*box);
  return 0;
}

static int socket_set_timeout(lua_State *L) {
  lc__conn *c = check_socket(L, 1);
  lua_Number ms = luaL_checknumber(L, 2);

  lc__conn_set_timeout(c, ms > 0 ? (uint64_t)ms : 0);
  return 0;
}

static int socket_pause(lua_State *L) {
  lc__conn_pause(check_socket(L, 1));
  return 0;
}

static int socket_resume(lua_State *L) {
  lc__conn_resume(check_socket(L, 1));
  return 0;
}

static int socket_peer(lua_State *L) {
  char ip[64];
  int port = 0;

  if (lc__conn_peer(check_socket(L, 1), ip, sizeof(ip), &port) != 0)
    return 0;
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

static int socket_buffered(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc__conn_write_queue(check_socket(L, 1)));
  return 1;
}

static int socket_set_no_delay(lua_State *L) {
  lc__conn *c = check_socket(L, 1);

  uv_tcp_nodelay(&c->tcp, lua_isnone(L, 2) || lua_toboolean(L, 2));
  return 0;
}

static int socket_gc(lua_State *L) {
  lc__conn **box = luaL_checkudata(L, 1, SOCKET_MT);

  if (*box != NULL && (*box)->data != NULL)
    ((lc__lsocket *)(*box)->data)->box = NULL;
  return 0;
}

static int set_net_handler(lua_State *L) {
  return lc__lua_set_handler(L, &net_handler_ref);
}

static void new_class(lua_State *L, const char *mt, const luaL_Reg *methods,
                      lua_CFunction gc) {
  if (luaL_newmetatable(L, mt)) {
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    if (gc != NULL) {
      lua_pushcfunction(L, gc);
      lua_setfield(L, -2, "__gc");
    }
  }
  lua_pop(L, 1);
}

void lc__core_net(lua_State *L) {
  static const luaL_Reg server_methods[] = {
      {"listen", server_listen},
      {"close", server_close},
      {"address", server_address},
      {"connections", server_connections},
      {"set_timeout", server_set_timeout},
      {"configure", lc__http_server_configure},
      {NULL, NULL}};
  static const luaL_Reg socket_methods[] = {
      {"write", socket_write},         {"finish", socket_finish},
      {"destroy", socket_destroy},     {"set_timeout", socket_set_timeout},
      {"pause", socket_pause},         {"resume", socket_resume},
      {"peer", socket_peer},           {"buffered", socket_buffered},
      {"set_no_delay", socket_set_no_delay},
      {NULL, NULL}};

  new_class(L, SERVER_MT, server_methods, server_gc);
  new_class(L, SOCKET_MT, socket_methods, socket_gc);
  lua_pushcfunction(L, server_new);
  lua_setfield(L, -2, "server");
  lua_pushcfunction(L, set_net_handler);
  lua_setfield(L, -2, "set_net_handler");
  lc__core_http(L);
}
