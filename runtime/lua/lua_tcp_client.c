/*
 * lua_tcp_client.c - net.connect: outbound raw TCP sockets.
 *
 * A client socket is the same Socket userdata as an accepted one (with the
 * net connection ops of lua_net.c, which emit "connect" once connected), so
 * every socket method works on both. Name lookups happen before, in Lua
 * (dns.lookup): this takes an address.
 */
#include "dns.h"
#include "lua_net.h"

/* core.tcp_connect(object, ip, port, timeout_ms, local_ip) -> Socket |
 * nil, message, code. object hears the socket's events ("connect", or
 * "error" then "close"); timeout_ms (0: none) bounds the connect. */
static int tcp_connect(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  const char *ip = luaL_checkstring(L, 2);
  int port = (int)luaL_checkinteger(L, 3);
  lua_Number timeout = luaL_optnumber(L, 4, 0);
  const char *local_ip = luaL_optstring(L, 5, NULL);
  struct sockaddr_storage addr, local;
  lc__lua_socket *sock;
  int err;

  luaL_checktype(L, 1, LUA_TTABLE);
  if (port <= 0 || port > 65535)
    return luaL_argerror(L, 3, "port must be 1-65535");
  if (lc__dns_numeric(ip, port, &addr) != 0)
    return luaL_argerror(L, 2, "not an IP address");
  if (local_ip != NULL && lc__dns_numeric(local_ip, 0, &local) != 0)
    return luaL_argerror(L, 5, "not an IP address");
  sock = lc__lua_handle_new(L, rt, &lc__socket_type, sizeof(*sock));
  err = lc__conn_connect(&rt->core, (struct sockaddr *)&addr,
                         local_ip ? (struct sockaddr *)&local : NULL,
                         &lc__net_conn_ops, sock,
                         timeout > 0 ? (uint64_t)timeout : 0, &sock->c);
  if (err) {
    lua_pop(L, 1);
    lc__lua_handle_release(&sock->base);
    return lc__lua_push_error(L, err);
  }
  lc__lua_handle_pin(L, &sock->base, 1);
  return 1;
}

/* core.ip_family(s) -> 4, 6, or 0 when s is not an IP address */
static int ip_family(lua_State *L) {
  struct sockaddr_storage ss;
  const char *s = lua_tostring(L, 1);

  if (s == NULL || lc__dns_numeric(s, 0, &ss) != 0)
    lua_pushinteger(L, 0);
  else
    lua_pushinteger(L, ss.ss_family == AF_INET6 ? 6 : 4);
  return 1;
}

void lc__core_tcp_client(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg fns[] = {{"tcp_connect", tcp_connect},
                                 {"ip_family", ip_family},
                                 {NULL, NULL}};

  lc__lua_register(L, rt, fns);
}
