/*
 * lua_tls.c - TLS for lua/tls.lua, lua/https.lua and the clients: context
 * objects (core/tls/tls.h contexts made from a Lua options table), TLS on
 * servers and on net sockets, what a TLS connection settled on, sessions,
 * and the words and Node codes of TLS errors for every binding.
 *
 * A TlsContext userdata holds one reference to its C context; servers,
 * connections and agents that use the context hold their own, so it lives
 * while anything uses it. An SNI callback (a Lua function) is called from
 * inside a handshake, from the loop, and must answer at once: it returns
 * a TlsContext or nil (the default). It is dropped when its TlsContext
 * object is collected (the Lua server keeps that object while it lives).
 */
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "lua_net.h"
#include "tls.h"

#define TLS_CONTEXT "luacluster.TlsContext"
#define TLS_SESSION "luacluster.TlsSession"

typedef struct lc__lua_tls_ctx {
  lc__lua_handle base; /* cb_ref: the SNI callback */
  lc__tls_ctx *ctx;
} lc__lua_tls_ctx;

typedef struct lc__lua_tls_session {
  lc__lua_handle base;
  lc__tls_session *session;
} lc__lua_tls_session;

/* Errors, for every binding ------------------------------------------------------ */

const char *lc__lua_err_name(int err, char *buf, size_t size) {
  if (lc__tls_is_error(err))
    return lc__tls_err_name(err, buf, size);
  if (err < -3000 && err > -3100)
    return lc__dns_error_code(err);
  return uv_err_name(err);
}

const char *lc__lua_err_message(int err, char *buf, size_t size) {
  if (lc__tls_is_error(err))
    return lc__tls_strerror(err, buf, size);
  return uv_strerror(err);
}

/* core.tls_error(err) -> message, code: for an error number C reported. */
static int tls_error(lua_State *L) {
  int err = (int)luaL_checkinteger(L, 1);
  char msg[160], name[96];

  lua_pushstring(L, lc__lua_err_message(err, msg, sizeof(msg)));
  lua_pushstring(L, lc__lua_err_name(err, name, sizeof(name)));
  return 2;
}

/* Contexts -------------------------------------------------------------------------- */

static void tls_ctx_close(lc__lua_handle *h) {
  lc__lua_tls_ctx *lc = (lc__lua_tls_ctx *)h;

  lc__tls_ctx_set_sni(lc->ctx, NULL, NULL);
  lc__tls_ctx_unref(lc->ctx);
  lc__lua_handle_release(h);
}

static const lc__lua_type tls_ctx_type = {TLS_CONTEXT, tls_ctx_close};

lc__tls_ctx *lc__lua_check_tls_ctx(lua_State *L, int idx) {
  return ((lc__lua_tls_ctx *)lc__lua_handle_check(L, idx, &tls_ctx_type))->ctx;
}

/* A string option (NULL when absent); raises when it is not a string. */
static const char *opt_string(lua_State *L, int idx, const char *name,
                              size_t *len) {
  const char *s;

  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (len != NULL)
      *len = 0;
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "tls: %s must be a string", name);
  s = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* the options table keeps the string */
  return s;
}

/* A PEM option that may be a list of strings: joined, left on the stack. */
static const char *opt_pem(lua_State *L, int idx, const char *name,
                           size_t *len) {
  luaL_Buffer b;
  int i, n, list;

  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) {
    *len = 0;
    return NULL; /* the nil stays on the stack */
  }
  if (lua_type(L, -1) == LUA_TSTRING)
    return lua_tolstring(L, -1, len);
  if (!lua_istable(L, -1))
    luaL_error(L, "tls: %s must be a PEM string or a list of them", name);
  list = lua_gettop(L);
  n = (int)lua_objlen(L, list);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "tls: %s[%d] must be a PEM string", name, i);
    luaL_addvalue(&b);
    luaL_addchar(&b, '\n');
  }
  luaL_pushresult(&b);
  lua_remove(L, -2); /* the list */
  return lua_tolstring(L, -1, len);
}

static int opt_version(lua_State *L, int idx, const char *name, int dflt) {
  const char *v = opt_string(L, idx, name, NULL);

  if (v == NULL)
    return dflt;
  if (strcmp(v, "TLSv1.2") == 0)
    return LC__TLS1_2;
  if (strcmp(v, "TLSv1.3") == 0)
    return LC__TLS1_3;
  return luaL_error(L, "tls: %s must be \"TLSv1.2\" or \"TLSv1.3\" (got %s)",
                    name, v);
}

/* ALPNProtocols {"http/1.1", ...}: the wire format, left on the stack. */
static const char *opt_alpn(lua_State *L, int idx, size_t *len) {
  luaL_Buffer b;
  size_t plen;
  const char *p;
  int i, n, list;

  lua_getfield(L, idx, "ALPNProtocols");
  if (lua_isnil(L, -1)) {
    *len = 0;
    return NULL;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "tls: ALPNProtocols must be a list of strings");
  list = lua_gettop(L);
  n = (int)lua_objlen(L, list);
  for (i = 1; i <= n; i++) { /* checked first: the buffer owns the stack */
    lua_rawgeti(L, list, i);
    lua_tolstring(L, -1, &plen);
    if (lua_type(L, -1) != LUA_TSTRING || plen == 0 || plen > 255)
      luaL_error(L, "tls: ALPNProtocols[%d] must be a string of 1-255 bytes", i);
    lua_pop(L, 1);
  }
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    p = lua_tolstring(L, -1, &plen);
    lua_pop(L, 1); /* the list keeps it */
    luaL_addchar(&b, (char)plen);
    luaL_addlstring(&b, p, plen);
  }
  luaL_pushresult(&b);
  lua_remove(L, -2);
  return lua_tolstring(L, -1, len);
}

static uint64_t opt_ms(lua_State *L, int idx, const char *name) {
  lua_Number v;

  lua_getfield(L, idx, name);
  v = lua_isnil(L, -1) ? 0 : luaL_checknumber(L, -1);
  lua_pop(L, 1);
  if (!(v >= 0))
    luaL_error(L, "tls: %s must be a number >= 0", name);
  return (uint64_t)v;
}

static int opt_bool(lua_State *L, int idx, const char *name, int dflt) {
  int v;

  lua_getfield(L, idx, name);
  v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/*
 * core.tls_context(server, {key=, cert=, ca=, passphrase=, ciphers=,
 * ciphersuites=, minVersion=, maxVersion=, ALPNProtocols=,
 * rejectUnauthorized=, requestCert=, handshakeTimeout=, sessionTimeout=})
 *   -> TlsContext; raises with the reason when the options are wrong.
 */
static int tls_context(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  int server = lua_toboolean(L, 1);
  lc__tls_options o;
  lc__lua_tls_ctx *lc;
  lc__tls_ctx *ctx;
  char err[320];
  int r, top;

  luaL_checktype(L, 2, LUA_TTABLE);
  top = lua_gettop(L);
  lc__tls_options_init(&o);
  o.key = opt_pem(L, 2, "key", &o.key_len);
  o.cert = opt_pem(L, 2, "cert", &o.cert_len);
  o.ca = opt_pem(L, 2, "ca", &o.ca_len);
  o.passphrase = opt_string(L, 2, "passphrase", NULL);
  o.ciphers = opt_string(L, 2, "ciphers", NULL);
  o.ciphersuites = opt_string(L, 2, "ciphersuites", NULL);
  o.min_version = opt_version(L, 2, "minVersion", LC__TLS1_2);
  o.max_version = opt_version(L, 2, "maxVersion", 0);
  o.alpn = opt_alpn(L, 2, &o.alpn_len);
  o.handshake_timeout_ms = opt_ms(L, 2, "handshakeTimeout");
  o.session_timeout_s = opt_ms(L, 2, "sessionTimeout");
  if (server) {
    o.verify = opt_bool(L, 2, "requestCert", 0);
    o.require_cert = o.verify && opt_bool(L, 2, "rejectUnauthorized", 1);
  } else {
    o.verify = opt_bool(L, 2, "rejectUnauthorized", 1);
  }
  r = lc__tls_ctx_new(&rt->core, server, &o, err, sizeof(err), &ctx);
  lua_settop(L, top);
  if (r != 0)
    return luaL_error(L, "tls: %s", err);
  lc = lc__lua_handle_new(L, rt, &tls_ctx_type, sizeof(*lc));
  lc->ctx = ctx;
  return 1;
}

/* ctx:add_name(name, other): SNI for name gives other's certificate. */
static int tls_ctx_add_name(lua_State *L) {
  lc__tls_ctx *ctx = lc__lua_check_tls_ctx(L, 1);
  const char *name = luaL_checkstring(L, 2);
  lc__tls_ctx *other = lc__lua_check_tls_ctx(L, 3);
  int r = lc__tls_ctx_add_name(ctx, name, other);

  if (r == UV_EINVAL)
    return luaL_error(L, "tls: SNI contexts are server contexts");
  if (r != 0)
    return luaL_error(L, "out of memory");
  return 0;
}

/* The SNI callback: fn(servername) -> TlsContext | nil, answered at once. */
static lc__tls_ctx *sni_hook(void *arg, const char *name) {
  lc__lua_tls_ctx *lc = arg;
  lc_runtime *rt = lc->base.rt;
  lua_State *L = rt->L;
  lc__lua_tls_ctx **box;
  lc__tls_ctx *pick = NULL;

  if (L == NULL || rt->core.exiting || lc->base.cb_ref == LUA_NOREF)
    return NULL;
  lc__lua_push_ref(L, lc->base.cb_ref);
  lua_pushstring(L, name);
  if (lc__lua_call(rt, 1, 1) != 0)
    return NULL;
  box = luaL_testudata(L, -1, TLS_CONTEXT);
  if (box != NULL && *box != NULL && lc__tls_ctx_is_server((*box)->ctx))
    pick = (*box)->ctx;
  lua_pop(L, 1);
  return pick; /* the handshake takes a reference at once */
}

/* ctx:set_sni(fn) */
static int tls_ctx_set_sni(lua_State *L) {
  lc__lua_tls_ctx *lc = lc__lua_handle_check(L, 1, &tls_ctx_type);

  lc__lua_handle_set_cb(L, &lc->base, 2);
  lc__tls_ctx_set_sni(lc->ctx, sni_hook, lc);
  return 0;
}

/* Servers and sockets ---------------------------------------------------------------- */

/* core.tls_server_use(server, ctx): its connections are TLS from now on. */
static int tls_server_use(lua_State *L) {
  lc__lua_server *ls = lc__check_server(L, 1);

  lc__tls_server_use(ls->s, lc__lua_check_tls_ctx(L, 2));
  return 0;
}

/*
 * core.tls_start(socket, ctx, servername, session, timeout_ms) -> true |
 * nil, message, code: a net client socket (connecting) becomes TLS; its
 * "connect" comes once the handshake is done.
 */
static int tls_start(lua_State *L) {
  lc__lua_socket *sock = lc__lua_handle_check(L, 1, &lc__socket_type);
  lc__tls_client_options o;
  int err;

  memset(&o, 0, sizeof(o));
  o.servername = luaL_optstring(L, 3, NULL);
  o.session = lc__lua_test_tls_session(L, 4);
  o.handshake_timeout_ms = (uint64_t)luaL_optnumber(L, 5, 0);
  err = lc__tls_client_start(sock->c, lc__lua_check_tls_ctx(L, 2), &o);
  if (err)
    return lc__lua_push_error(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static void session_close(lc__lua_handle *h) {
  lc__tls_session_free(((lc__lua_tls_session *)h)->session);
  lc__lua_handle_release(h);
}

static const lc__lua_type session_type = {TLS_SESSION, session_close};

lc__tls_session *lc__lua_test_tls_session(lua_State *L, int idx) {
  lc__lua_tls_session *s;

  if (lua_isnoneornil(L, idx) || luaL_testudata(L, idx, TLS_SESSION) == NULL)
    return NULL;
  s = lc__lua_handle_test(L, idx, &session_type);
  return s != NULL ? s->session : NULL;
}

int lc__lua_push_tls_session(lua_State *L, lc__conn *c) {
  lc__tls_session *session = lc__tls_conn_session(c);
  lc__lua_tls_session *s;

  if (session == NULL) {
    lua_pushnil(L);
    return 1;
  }
  s = lc__lua_handle_new(L, lc__lua_runtime_of(L), &session_type, sizeof(*s));
  s->session = session;
  return 1;
}

/* Pushes {protocol=, cipher=, alpnProtocol=, servername=, reused=,
 * authorized=, authorizationError=} for a TLS connection, or nil. */
int lc__lua_push_tls_info(lua_State *L, lc__conn *c) {
  lc__tls_info info;
  char name[96];

  if (c == NULL || lc__tls_conn_info(c, &info) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 8);
  lua_pushstring(L, info.protocol);
  lua_setfield(L, -2, "protocol");
  lua_pushstring(L, info.cipher);
  lua_setfield(L, -2, "cipher");
  if (info.alpn != NULL) {
    lua_pushlstring(L, info.alpn, info.alpn_len);
    lua_setfield(L, -2, "alpnProtocol");
  }
  if (info.servername != NULL) {
    lua_pushstring(L, info.servername);
    lua_setfield(L, -2, "servername");
  }
  lua_pushboolean(L, info.reused);
  lua_setfield(L, -2, "reused");
  lua_pushboolean(L, info.has_peer_cert && info.verify_result == 0);
  lua_setfield(L, -2, "authorized");
  if (info.verify_result != 0) {
    lua_pushstring(L, lc__tls_err_name(LC__TLS_EVERIFY(info.verify_result),
                                       name, sizeof(name)));
    lua_setfield(L, -2, "authorizationError");
  }
  return 1;
}

static void set_field(void *arg, const char *name, const char *value) {
  lua_State *L = arg;

  lua_pushstring(L, value);
  lua_setfield(L, -2, name);
}

/* Pushes the peer certificate's fields, or nil. */
int lc__lua_push_peer_cert(lua_State *L, lc__conn *c) {
  lua_newtable(L);
  if (c == NULL || lc__tls_conn_peer_cert(c, set_field, L) != 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 1;
}

static lc__conn *socket_conn(lua_State *L) {
  lc__lua_socket *sock = lc__lua_handle_test(L, 1, &lc__socket_type);

  return sock != NULL ? sock->c : NULL;
}

/* core.tls_info(socket) -> {...} | nil */
static int tls_info(lua_State *L) { return lc__lua_push_tls_info(L, socket_conn(L)); }

/* core.tls_peer_cert(socket) -> {subject=, issuer=, subjectaltname=,
 * valid_from=, valid_to=, fingerprint256=} | nil */
static int tls_peer_cert(lua_State *L) {
  return lc__lua_push_peer_cert(L, socket_conn(L));
}

/* core.tls_session(socket) -> TlsSession | nil */
static int tls_session(lua_State *L) {
  lc__conn *c = socket_conn(L);

  if (c == NULL) {
    lua_pushnil(L);
    return 1;
  }
  return lc__lua_push_tls_session(L, c);
}

/* core.tls_stats() -> {handshakes=, resumed=, failed=, not_tls=, ticket_keys=} */
static int tls_stats(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__tls_stats st;

  lc__tls_stats_get(&rt->core, &st);
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, (lua_Number)st.handshakes);
  lua_setfield(L, -2, "handshakes");
  lua_pushnumber(L, (lua_Number)st.resumed);
  lua_setfield(L, -2, "resumed");
  lua_pushnumber(L, (lua_Number)st.failed);
  lua_setfield(L, -2, "failed");
  lua_pushnumber(L, (lua_Number)st.not_tls);
  lua_setfield(L, -2, "not_tls");
  lua_pushnumber(L, (lua_Number)lc__tls_tickets_generation(&rt->core));
  lua_setfield(L, -2, "ticket_keys");
  return 1;
}

void lc__core_tls(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg ctx_methods[] = {{"add_name", tls_ctx_add_name},
                                        {"set_sni", tls_ctx_set_sni},
                                        {NULL, NULL}};
  static const luaL_Reg session_methods[] = {{NULL, NULL}};
  static const luaL_Reg fns[] = {{"tls_context", tls_context},
                                 {"tls_server_use", tls_server_use},
                                 {"tls_start", tls_start},
                                 {"tls_info", tls_info},
                                 {"tls_peer_cert", tls_peer_cert},
                                 {"tls_session", tls_session},
                                 {"tls_stats", tls_stats},
                                 {"tls_error", tls_error},
                                 {NULL, NULL}};

  lc__lua_handle_class(L, rt, &tls_ctx_type, ctx_methods);
  lc__lua_handle_class(L, rt, &session_type, session_methods);
  lc__lua_register(L, rt, fns);
}
