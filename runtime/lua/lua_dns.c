/*
 * lua_dns.c - dns.lookup for lua/dns.lua over core/net/dns.c.
 *
 * core.dns_lookup(host, family, all[, fn]):
 *   with fn, fn(code, message, result[, family]) runs once the lookup ends
 *   (code and message on failure; result is an address and its family, or
 *   with all a list of {address=, family=});
 *   without fn, the running coroutine waits and gets address, family (or
 *   the list), or nil and an error string.
 */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "lua_binding.h"
#include "sockets.h"

typedef struct lc__lua_lookup {
  lc_runtime *rt;
  int cb_ref;     /* the callback, or */
  int thread_ref; /* the coroutine that waits */
  int all;
  char host[];
} lc__lua_lookup;

static int family_of(const struct addrinfo *ai) {
  return ai->ai_family == AF_INET6 ? 6 : 4;
}

static void push_address(lua_State *L, const struct addrinfo *ai) {
  char ip[64];

  lc__sockaddr_ip((const struct sockaddr_storage *)ai->ai_addr, ip,
                  sizeof(ip));
  lua_pushstring(L, ip);
}

/* IPv4 addresses first (Node's "ipv4first"), then IPv6. */
static void push_list(lua_State *L, const struct addrinfo *res) {
  const struct addrinfo *ai;
  int pass, n = 0;

  lua_newtable(L);
  for (pass = 4; pass <= 6; pass += 2) {
    for (ai = res; ai != NULL; ai = ai->ai_next) {
      if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
          family_of(ai) != pass)
        continue;
      lua_createtable(L, 0, 2);
      push_address(L, ai);
      lua_setfield(L, -2, "address");
      lua_pushinteger(L, pass);
      lua_setfield(L, -2, "family");
      lua_rawseti(L, -2, ++n);
    }
  }
}

static const struct addrinfo *first(const struct addrinfo *res) {
  const struct addrinfo *ai;

  for (ai = res; ai != NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET)
      return ai;
  for (ai = res; ai != NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET6)
      return ai;
  return NULL;
}

static void on_lookup(lc__dns_req *req, int status,
                      const struct addrinfo *res, void *data) {
  lc__lua_lookup *lk = data;
  lc_runtime *rt = lk->rt;
  lua_State *L = rt->L;
  const struct addrinfo *ai = status == 0 ? first(res) : NULL;

  (void)req;
  if (status == 0 && ai == NULL)
    status = UV_EAI_NODATA;
  if (lk->thread_ref != LUA_NOREF) {
    if (status != 0) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s could not be resolved (%s)", lk->host,
                      lc__dns_error_code(status));
    } else if (lk->all) {
      push_list(L, res);
      lua_pushnil(L);
    } else {
      push_address(L, ai);
      lua_pushinteger(L, family_of(ai));
    }
    lc__lua_wake(rt, &lk->thread_ref, 2);
  } else {
    lc__lua_push_ref(L, lk->cb_ref);
    lc__lua_unref(rt, &lk->cb_ref);
    if (status != 0) {
      lua_pushstring(L, lc__dns_error_code(status));
      lua_pushfstring(L, "getaddrinfo %s %s", lc__dns_error_code(status),
                      lk->host);
      lua_pushnil(L);
      lua_pushnil(L);
    } else {
      lua_pushnil(L);
      lua_pushnil(L);
      if (lk->all) {
        push_list(L, res);
        lua_pushnil(L);
      } else {
        push_address(L, ai);
        lua_pushinteger(L, family_of(ai));
      }
    }
    lc__lua_call(rt, 4, 0);
  }
  free(lk);
}

static int dns_lookup(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  size_t len;
  const char *host = luaL_checklstring(L, 1, &len);
  int family = (int)luaL_optinteger(L, 2, 0);
  int cb_ref = LUA_NOREF, thread_ref = LUA_NOREF;
  lc__lua_lookup *lk;
  lc__dns_req *req;
  int err;

  if (family != 0 && family != 4 && family != 6)
    return luaL_argerror(L, 2, "family must be 0, 4 or 6");
  if (lua_isfunction(L, 4))
    lc__lua_set_ref(L, &cb_ref, 4);
  else
    lc__lua_hold_thread(L, "dns.lookup(host)", &thread_ref);
  lk = malloc(sizeof(*lk) + len + 1);
  if (lk != NULL) {
    lk->rt = rt;
    lk->cb_ref = cb_ref;
    lk->thread_ref = thread_ref;
    lk->all = lua_toboolean(L, 3);
    memcpy(lk->host, host, len + 1);
  }
  err = lk ? lc__dns_lookup(&rt->core, host, family, on_lookup, lk, &req)
           : UV_ENOMEM;
  if (err) {
    lc__lua_unref_in(L, &cb_ref);
    lc__lua_unref_in(L, &thread_ref);
    free(lk);
    return luaL_error(L, "dns.lookup %s: %s", host, uv_strerror(err));
  }
  return thread_ref != LUA_NOREF ? lua_yield(L, 0) : 0;
}

void lc__core_dns(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg fns[] = {{"dns_lookup", dns_lookup}, {NULL, NULL}};

  lc__lua_register(L, rt, fns);
}
