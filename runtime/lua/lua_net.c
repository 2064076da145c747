/*
 * lua_net.c - servers and raw TCP sockets for lua/net.lua and lua/http.lua.
 *
 * A Server userdata wraps an lc__server (core/net/tcp.h); a Socket userdata
 * wraps a raw connection. Each belongs to a Lua object (the Server or Socket
 * table), pinned while C may call back: a server while it listens or
 * closes, a socket while it is open. Everything that happens reaches Lua as
 * object:_native(event, ...).
 */
#include <stdlib.h>
#include <string.h>

#include "lua_net.h"
#include "shared_listen.h"

#define HIGH_WATER_MARK (16 * 1024)

/* Servers ------------------------------------------------------------------ */

static void server_close(lc__lua_handle *h) {
  lc__server *s = ((lc__lua_server *)h)->s;

  /* Collected: never listened, or closed (a listening server is pinned). */
  if (s->state == LC__SERVER_NEW || s->state == LC__SERVER_CLOSED)
    lc__server_free(s); /* on_free releases h */
  else
    lc__server_close(s); /* freed with the core */
}

const lc__lua_type lc__server_type = {"luacluster.Server", server_close};

static lc__lua_server *lua_server(lc__server *s) { return s->data; }

/* Emits the server's last event for now and lets the Lua object go first:
 * a listener that calls listen() again pins it anew. */
static void ls_emit_unpinned(lc__lua_server *ls, const char *event,
                             int nargs) {
  int ref = ls->base.self_ref;

  ls->base.self_ref = LUA_NOREF;
  lc__lua_emit(ls->base.rt, ref, event, nargs, 0);
  lc__lua_unref(ls->base.rt, &ref);
}

static void ls_on_listening(lc__server *s, int status) {
  lc__lua_server *ls = lua_server(s);
  lua_State *L = ls->base.rt->L;

  if (status == 0) {
    lc__lua_handle_emit(&ls->base, "listening", 0, 0);
    return;
  }
  lua_pushstring(L, uv_strerror(status));
  lua_pushstring(L, uv_err_name(status));
  if (s->state == LC__SERVER_NEW)
    ls_emit_unpinned(ls, "error", 2);
  else
    lc__lua_handle_emit(&ls->base, "error", 2, 0);
}

static void ls_on_closed(lc__server *s) {
  ls_emit_unpinned(lua_server(s), "close", 0);
}

static void ls_on_free(lc__server *s) {
  lc__lua_handle_release(&lua_server(s)->base);
}

/* core.server(kind) -> Server; kind is "net" or "http" */
static int server_new(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  const char *kind = luaL_checkstring(L, 1);
  int http = strcmp(kind, "http") == 0;
  lc__lua_server *ls;

  if (!http && strcmp(kind, "net") != 0)
    return luaL_argerror(L, 1, "expected \"net\" or \"http\"");
  ls = lc__lua_handle_new(L, rt, &lc__server_type, sizeof(*ls));
  if (http)
    lc__lua_http_server_init(ls);
  ls->s = lc__server_new(&rt->core,
                         http ? &lc__http_server_conn_ops : &lc__net_conn_ops,
                         http ? &ls->http : NULL, ls);
  if (ls->s == NULL) {
    lua_pop(L, 1);
    lc__lua_handle_release(&ls->base);
    return luaL_error(L, "out of memory");
  }
  ls->s->on_listening = ls_on_listening;
  ls->s->on_closed = ls_on_closed;
  ls->s->on_free = ls_on_free;
  return 1;
}

lc__lua_server *lc__check_server(lua_State *L, int idx) {
  return lc__lua_handle_check(L, idx, &lc__server_type);
}

/* server:listen(object, host, port, backlog, ipv6only) -> status | nil, msg, code
 * status: "listening" (now) or "pending" (the master answers later); the
 * object hears the server's events from now on. */
static int server_listen(lua_State *L) {
  lc__lua_server *ls = lc__check_server(L, 1);
  const char *host = luaL_optstring(L, 3, "");
  int port = (int)luaL_checkinteger(L, 4);
  int backlog = (int)luaL_optinteger(L, 5, 511);
  uint32_t flags = lua_toboolean(L, 6) ? LC__LISTEN_IPV6ONLY : 0;
  int r;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (port < 0 || port > 65535)
    return luaL_argerror(L, 4, "port must be 0-65535");
  r = lc__shared_listen(ls->s, host, port, backlog, flags);
  if (r < 0)
    return lc__lua_push_error(L, r);
  lc__lua_handle_pin(L, &ls->base, 2);
  lua_pushstring(L, r == 0 ? "listening" : "pending");
  return 1;
}

/* server:close(): stops accepting; "close" follows once connections end. */
static int server_close_method(lua_State *L) {
  lc__server_close(lc__check_server(L, 1)->s);
  return 0;
}

/* server:address() -> ip, port */
static int server_address(lua_State *L) {
  lc__server *s = lc__check_server(L, 1)->s;

  if (s->state != LC__SERVER_LISTENING)
    return 0;
  lua_pushstring(L, s->addr);
  lua_pushinteger(L, s->port);
  return 2;
}

static int server_connections(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc__check_server(L, 1)->s->nconns);
  return 1;
}

/* server:set_timeout(ms): idle timeout of new connections */
static int server_set_timeout(lua_State *L) {
  lc__server *s = lc__check_server(L, 1)->s;
  lua_Number ms = luaL_checknumber(L, 2);

  s->timeout_ms = ms > 0 ? (uint64_t)ms : 0;
  return 0;
}

/* Raw sockets (net) ---------------------------------------------------------- */

static void socket_close(lc__lua_handle *h) {
  lc__lua_socket *sock = (lc__lua_socket *)h;

  lc__conn_close(sock->c); /* on_close releases h */
}

const lc__lua_type lc__socket_type = {"luacluster.Socket", socket_close};

static lc__conn *check_socket(lua_State *L, int idx) {
  return ((lc__lua_socket *)lc__lua_handle_check(L, idx, &lc__socket_type))->c;
}

static void net_on_open(lc__conn *c) {
  lc__lua_server *ls;
  lc_runtime *rt;
  lua_State *L;
  lc__lua_socket *sock;

  if (c->server == NULL) { /* an outbound connection, now connected */
    sock = c->data;
    if (sock != NULL)
      lc__lua_handle_emit(&sock->base, "connect", 0, 0);
    return;
  }
  ls = lua_server(c->server);
  rt = ls->base.rt;
  L = rt->L;
  if (ls->base.self_ref == LUA_NOREF || rt->core.exiting) {
    lc__conn_close(c);
    return;
  }
  sock = lc__lua_handle_new(L, rt, &lc__socket_type, sizeof(*sock));
  sock->c = c;
  c->data = sock;
  /* The server wraps it in a Socket object and returns that. */
  if (lc__lua_handle_emit(&ls->base, "connection", 1, 1) != 0) {
    lc__conn_close(c);
    return;
  }
  if (lua_istable(L, -1))
    lc__lua_handle_pin(L, &sock->base, -1);
  lua_pop(L, 1);
}

static void net_on_read(lc__conn *c, const char *data, size_t len) {
  lc__lua_socket *sock = c->data;

  if (sock == NULL)
    return;
  lua_pushlstring(sock->base.rt->L, data, len);
  lc__lua_handle_emit(&sock->base, "data", 1, 0);
}

static void net_on_eof(lc__conn *c) {
  lc__lua_socket *sock = c->data;

  if (sock != NULL)
    lc__lua_handle_emit(&sock->base, "end", 0, 0);
  /* Node's default (allowHalfOpen false): end our side too. */
  if (!c->closing)
    lc__conn_shutdown(c);
}

static void net_on_timeout(lc__conn *c) {
  lc__lua_socket *sock = c->data;

  if (c->shutdown) { /* lingering after finish(): enough */
    lc__conn_close(c);
    return;
  }
  if (sock != NULL)
    lc__lua_handle_emit(&sock->base, "timeout", 0, 0);
}

static void net_on_drain(lc__conn *c) {
  lc__lua_socket *sock = c->data;

  if (sock != NULL && sock->want_drain) {
    sock->want_drain = 0;
    lc__lua_handle_emit(&sock->base, "drain", 0, 0);
  }
}

static void net_on_server_close(lc__conn *c) {
  (void)c; /* raw connections live on until they end */
}

static void net_on_error(lc__conn *c, int err) {
  lc__lua_socket *sock = c->data;
  char msg[160], name[96];
  lua_State *L;

  if (sock == NULL)
    return;
  sock->had_error = 1;
  /* A client that went away from a server: "close" says so. A socket this
   * process opened hears every error, as in Node. */
  if (c->server != NULL && (err == UV_ECONNRESET || err == UV_EPIPE))
    return;
  L = sock->base.rt->L;
  lua_pushstring(L, lc__lua_err_message(err, msg, sizeof(msg)));
  lua_pushstring(L, lc__lua_err_name(err, name, sizeof(name)));
  lua_pushboolean(L, lc__tls_is_error(err));
  lc__lua_handle_emit(&sock->base, "error", 3, 0);
}

static void net_on_close(lc__conn *c) {
  lc__lua_socket *sock = c->data;

  if (sock == NULL)
    return;
  c->data = NULL;
  sock->c = NULL;
  if (sock->base.rt->L != NULL && !c->core->shutting_down) {
    lua_pushboolean(sock->base.rt->L, sock->had_error);
    lc__lua_handle_emit(&sock->base, "close", 1, 0);
  }
  lc__lua_handle_release(&sock->base);
}

const lc__conn_ops lc__net_conn_ops = {
    net_on_open,  net_on_read,         net_on_eof,   net_on_timeout,
    net_on_drain, net_on_server_close, net_on_error, net_on_close};

/* socket:write(data) -> below the high-water mark */
static int socket_write(lua_State *L) {
  lc__lua_socket *sock = lc__lua_handle_check(L, 1, &lc__socket_type);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int err = lc__conn_write(sock->c, data, len);

  if (err)
    return luaL_error(L, "write: %s", uv_strerror(err));
  lc__conn_touch(sock->c);
  sock->want_drain = lc__conn_write_queue(sock->c) >= HIGH_WATER_MARK;
  lua_pushboolean(L, !sock->want_drain);
  return 1;
}

/* socket:finish([data]): write, then end our side. */
static int socket_finish(lua_State *L) {
  lc__lua_socket *sock = lc__lua_handle_test(L, 1, &lc__socket_type);
  size_t len = 0;
  const char *data = luaL_optlstring(L, 2, NULL, &len);

  if (sock == NULL || sock->c->closing || sock->c->shutdown)
    return 0;
  if (data != NULL && len > 0)
    lc__conn_write(sock->c, data, len);
  lc__conn_shutdown(sock->c);
  return 0;
}

static int socket_destroy(lua_State *L) {
  lc__lua_socket *sock = lc__lua_handle_test(L, 1, &lc__socket_type);

  if (sock != NULL)
    lc__conn_close(sock->c);
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

static int socket_local(lua_State *L) {
  char ip[64];
  int port = 0;

  if (lc__conn_local(check_socket(L, 1), ip, sizeof(ip), &port) != 0)
    return 0;
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

/* socket:set_keep_alive(on, delay_ms): TCP keep-alive probes. */
static int socket_set_keep_alive(lua_State *L) {
  lc__conn *c = check_socket(L, 1);
  lua_Number ms = luaL_optnumber(L, 3, 0);
  unsigned delay = ms >= 1000 ? (unsigned)(ms / 1000) : 1;

  uv_tcp_keepalive(&c->tcp, lua_toboolean(L, 2), delay);
  return 0;
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

void lc__core_net(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg server_methods[] = {
      {"listen", server_listen},
      {"close", server_close_method},
      {"address", server_address},
      {"connections", server_connections},
      {"set_timeout", server_set_timeout},
      {"configure", lc__lua_http_configure},
      {NULL, NULL}};
  static const luaL_Reg socket_methods[] = {
      {"write", socket_write},         {"finish", socket_finish},
      {"destroy", socket_destroy},     {"set_timeout", socket_set_timeout},
      {"pause", socket_pause},         {"resume", socket_resume},
      {"peer", socket_peer},           {"buffered", socket_buffered},
      {"set_no_delay", socket_set_no_delay},
      {"local_address", socket_local}, {"set_keep_alive", socket_set_keep_alive},
      {NULL, NULL}};
  static const luaL_Reg fns[] = {{"server", server_new}, {NULL, NULL}};

  lc__lua_handle_class(L, rt, &lc__server_type, server_methods);
  lc__lua_handle_class(L, rt, &lc__socket_type, socket_methods);
  lc__lua_register(L, rt, fns);
}
