/*
 * lua_http.c - the Lua binding of the HTTP server (core/http/http_server.c):
 * requests become Lua tables given to the server's "request" event,
 * lua/http.lua builds req/res objects on them, and responses come back
 * through core.http_write().
 *
 * An HttpConn userdata stands for a connection while it is open (the
 * request objects keep it); its request's seq names the request a response
 * belongs to, so a late answer to a request that timed out goes nowhere.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_http_headers.h"
#include "lua_net.h"


typedef struct lc__lua_http_conn {
  lc__lua_handle base; /* pinned (its own userdata) while the connection is */
  lc__http_conn *hc;
  int req_ref;   /* the request object until its response finishes */
  int drain_ref; /* the response waiting for "drain" */
} lc__lua_http_conn;

static void http_conn_close(lc__lua_handle *h) {
  lc__lua_http_conn *conn = (lc__lua_http_conn *)h;

  lc__http_conn_destroy(conn->hc); /* on_close releases h */
}

static const lc__lua_type http_conn_type = {"luacluster.HttpConn",
                                            http_conn_close};

/* Server settings ------------------------------------------------------------- */

static void opt_number(lua_State *L, const char *name, uint64_t *out) {
  lua_getfield(L, 2, name);
  if (!lua_isnil(L, -1)) {
    lua_Number v = luaL_checknumber(L, -1);
    if (!(v >= 0))
      luaL_error(L, "%s must be a number >= 0", name);
    *out = (uint64_t)v;
  }
  lua_pop(L, 1);
}

static void opt_size(lua_State *L, const char *name, size_t *out) {
  uint64_t v = *out;

  opt_number(L, name, &v);
  *out = (size_t)v;
}

static void set_number(lua_State *L, const char *name, uint64_t v) {
  lua_pushnumber(L, (lua_Number)v);
  lua_setfield(L, -2, name);
}

/* server:configure{keepAliveTimeout=, headersTimeout=, requestTimeout=,
 * maxHeaderSize=, maxUrlSize=, maxHeadersCount=, maxBodySize=} -> the
 * settings after the change */
int lc__lua_http_configure(lua_State *L) {
  lc__lua_server *ls = lc__check_server(L, 1);
  lc__http_server *cfg = &ls->http;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (ls->s->proto != cfg)
    return luaL_error(L, "not an HTTP server");
  opt_number(L, "keepAliveTimeout", &cfg->keep_alive_timeout_ms);
  opt_number(L, "headersTimeout", &cfg->headers_timeout_ms);
  opt_number(L, "requestTimeout", &cfg->request_timeout_ms);
  opt_size(L, "maxHeaderSize", &cfg->limits.max_header_size);
  opt_size(L, "maxUrlSize", &cfg->limits.max_url_size);
  opt_size(L, "maxHeadersCount", &cfg->limits.max_headers);
  opt_number(L, "maxBodySize", &cfg->limits.max_body_size);
  /* The settings now, as Node's server fields read. */
  lua_createtable(L, 0, 7);
  set_number(L, "keepAliveTimeout", cfg->keep_alive_timeout_ms);
  set_number(L, "headersTimeout", cfg->headers_timeout_ms);
  set_number(L, "requestTimeout", cfg->request_timeout_ms);
  set_number(L, "maxHeaderSize", cfg->limits.max_header_size);
  set_number(L, "maxUrlSize", cfg->limits.max_url_size);
  set_number(L, "maxHeadersCount", cfg->limits.max_headers);
  set_number(L, "maxBodySize", cfg->limits.max_body_size);
  return 1;
}

/* Requests -------------------------------------------------------------------- */

/* The binding object of hc, made (and pinned) on its first request. */
static lc__lua_http_conn *conn_of(lc__http_conn *hc, lc_runtime *rt) {
  void **data = lc__http_conn_data(hc);
  lc__lua_http_conn *conn = *data;

  if (conn == NULL) {
    conn = lc__lua_handle_new(rt->L, rt, &http_conn_type, sizeof(*conn));
    conn->hc = hc;
    conn->req_ref = LUA_NOREF;
    conn->drain_ref = LUA_NOREF;
    lc__lua_handle_pin(rt->L, &conn->base, -1);
    lua_pop(rt->L, 1);
    *data = conn;
  }
  return conn;
}

/* Strings every request uses, interned once and kept in a table (the
 * runtime's http_names_ref) rather than hashed again per request. */
enum {
  NAME_METHOD = 1, NAME_URL, NAME_VERSION, NAME_HEADERS, NAME_CONN, NAME_SEQ,
  NAME_V10, NAME_V11, NAME_GET, NAME_POST, NAME_HEAD, NAME_PUT, NAME_DELETE,
  NAME_COUNT
};

static const char *const names[NAME_COUNT] = {
    NULL,   "method", "url", "httpVersion", "headers", "_conn", "_seq",
    "1.0",  "1.1",    "GET", "POST",        "HEAD",    "PUT",   "DELETE"};

static void make_names(lua_State *L, lc_runtime *rt) {
  int i;

  lua_createtable(L, NAME_COUNT, 0);
  for (i = 1; i < NAME_COUNT; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i);
  }
  rt->http_names_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Sets t[names[key]] = the value on top; the names table is at idx. */
static void set_named(lua_State *L, int names_idx, int key) {
  lua_rawgeti(L, names_idx, key);
  lua_insert(L, -2);
  lua_rawset(L, -3);
}

static void push_method(lua_State *L, int names_idx, const char *method) {
  int i;

  for (i = NAME_GET; i <= NAME_DELETE; i++) {
    if (strcmp(method, names[i]) == 0) {
      lua_rawgeti(L, names_idx, i);
      return;
    }
  }
  lua_pushstring(L, method);
}

static void push_version(lua_State *L, int names_idx, int major, int minor) {
  char version[3];

  if (major == 1 && (minor == 0 || minor == 1)) {
    lua_rawgeti(L, names_idx, minor == 0 ? NAME_V10 : NAME_V11);
    return;
  }
  version[0] = (char)('0' + major % 10);
  version[1] = '.';
  version[2] = (char)('0' + minor % 10);
  lua_pushlstring(L, version, 3);
}

/* req = {method, url, httpVersion, headers, _conn, _seq} */
static void push_request(lua_State *L, lc__lua_http_conn *conn,
                         const lc__http_head *head) {
  int names_idx;

  lc__lua_push_ref(L, conn->base.rt->http_names_ref);
  names_idx = lua_gettop(L);
  lua_createtable(L, 0, 8);
  push_method(L, names_idx, head->method);
  set_named(L, names_idx, NAME_METHOD);
  lua_pushlstring(L, head->url, head->url_len);
  set_named(L, names_idx, NAME_URL);
  push_version(L, names_idx, head->major, head->minor);
  set_named(L, names_idx, NAME_VERSION);
  lc__lua_push_headers(L, head);
  set_named(L, names_idx, NAME_HEADERS);
  lc__lua_push_ref(L, conn->base.self_ref);
  set_named(L, names_idx, NAME_CONN);
  lua_pushnumber(L, lc__http_conn_seq(conn->hc));
  set_named(L, names_idx, NAME_SEQ);
  lua_remove(L, names_idx);
}

static int on_request(lc__http_conn *hc, const lc__http_head *head) {
  lc__lua_server *ls = lc__http_conn_server(hc)->data;
  lc_runtime *rt = ls->base.rt;
  lc__lua_http_conn *conn;

  if (ls->base.self_ref == LUA_NOREF || rt->core.exiting)
    return 503;
  conn = conn_of(hc, rt);
  push_request(rt->L, conn, head);
  lc__lua_set_ref(rt->L, &conn->req_ref, -1);
  lc__lua_handle_emit(&ls->base, "request", 1, 0);
  return 0;
}

/* Whether the request object has listeners at all: most requests without a
 * body have none for "data" and "end", and telling them costs a Lua call. */
static int has_listeners(lc_runtime *rt, int ref) {
  lua_State *L = rt->L;
  int yes;

  lc__lua_push_ref(L, ref);
  lua_getfield(L, -1, "_events");
  yes = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (yes) {
    /* Kept chunks go first: new ones queue behind them. */
    lua_getfield(L, -1, "_pending");
    yes = lua_isnil(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return yes;
}

/* Nobody listens yet (a handler that waits before reading the body):
 * chunks are kept in req._pending and the end in req._ended, and
 * lua/http.lua hands them over when listeners come. */
static void keep_for_later(lc_runtime *rt, int ref, const char *data,
                           size_t len) {
  lua_State *L = rt->L;

  lc__lua_push_ref(L, ref);
  if (data == NULL) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "_ended");
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "_pending");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_pending");
  }
  lua_pushlstring(L, data, len);
  lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
  lua_pop(L, 2);
}

static void on_body(lc__http_conn *hc, const char *data, size_t len) {
  lc__lua_http_conn *conn = *lc__http_conn_data(hc);
  lc_runtime *rt;

  if (conn == NULL || conn->req_ref == LUA_NOREF)
    return;
  rt = conn->base.rt;
  if (has_listeners(rt, conn->req_ref)) {
    lua_pushlstring(rt->L, data, len);
    lc__lua_emit(rt, conn->req_ref, "data", 1, 0);
  } else {
    keep_for_later(rt, conn->req_ref, data, len);
  }
}

static void on_end(lc__http_conn *hc) {
  lc__lua_http_conn *conn = *lc__http_conn_data(hc);
  lc_runtime *rt;

  if (conn == NULL || conn->req_ref == LUA_NOREF)
    return;
  rt = conn->base.rt;
  if (has_listeners(rt, conn->req_ref))
    lc__lua_emit(rt, conn->req_ref, "end", 0, 0);
  else
    keep_for_later(rt, conn->req_ref, NULL, 0);
}

/* The request's "aborted" (and its response's "close", from Lua). */
static void on_abort(lc__http_conn *hc) {
  lc__lua_http_conn *conn = *lc__http_conn_data(hc);
  int ref;

  if (conn == NULL || conn->req_ref == LUA_NOREF)
    return;
  ref = conn->req_ref;
  conn->req_ref = LUA_NOREF;
  lc__lua_emit(conn->base.rt, ref, "aborted", 0, 0);
  lc__lua_unref(conn->base.rt, &ref);
}

static void on_drain(lc__http_conn *hc) {
  lc__lua_http_conn *conn = *lc__http_conn_data(hc);
  int ref;

  if (conn == NULL || conn->drain_ref == LUA_NOREF)
    return;
  ref = conn->drain_ref;
  conn->drain_ref = LUA_NOREF;
  lc__lua_emit(conn->base.rt, ref, "drain", 0, 0);
  lc__lua_unref(conn->base.rt, &ref);
}

static void on_close(lc__http_conn *hc) {
  lc__lua_http_conn *conn = *lc__http_conn_data(hc);

  if (conn == NULL)
    return;
  conn->hc = NULL;
  lc__lua_unref(conn->base.rt, &conn->req_ref);
  lc__lua_unref(conn->base.rt, &conn->drain_ref);
  lc__lua_handle_release(&conn->base);
}

static const lc__http_server_cb lua_http_cb = {on_request, on_body, on_end,
                                               on_abort,   on_drain, on_close};

void lc__lua_http_server_init(lc__lua_server *ls) {
  lc__http_server_init(&ls->http, &lua_http_cb);
}

/* Responses ------------------------------------------------------------------- */

/* The response head from status (3), reason (4) and headers (5). Headers
 * past the stack array live in a userdata on the stack for the call. */
static void check_reply(lua_State *L, lc__http_reply *reply,
                        lc__http_header *stack) {
  size_t n;
  lc__http_header *headers = lc__lua_check_headers(L, 5, stack, &n);

  reply->status = (int)luaL_checkinteger(L, 3);
  if (reply->status < 100 || reply->status > 999)
    luaL_error(L, "invalid status code %d", reply->status);
  reply->reason = lua_isstring(L, 4) ? lua_tostring(L, 4) : NULL;
  reply->headers = headers;
  reply->nheaders = n;
}

/*
 * core.http_write(conn, seq, status, reason, headers, chunk, finish, res)
 *   -> ok, below
 * Writes the head (first time), a body chunk, and with finish the end of the
 * response. ok is false when the connection is gone or moved on; below is
 * false when more than 16 KiB waits to be sent: then res gets "drain".
 */
static int http_write(lua_State *L) {
  lc__lua_http_conn *conn = lc__lua_handle_test(L, 1, &http_conn_type);
  uint32_t seq = (uint32_t)luaL_checknumber(L, 2);
  size_t len = 0;
  const char *chunk = luaL_optlstring(L, 6, NULL, &len);
  int finish = lua_toboolean(L, 7);
  lc__http_header stack[LC__LUA_STACK_HEADERS];
  lc__http_reply reply;
  int r;

  if (conn == NULL || conn->hc == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  check_reply(L, &reply, stack);
  r = lc__http_respond(conn->hc, seq, &reply, chunk, len, finish);
  if (r == UV_EINVAL)
    return luaL_error(L, "invalid header name or value (CR, LF or NUL, not "
                         "a token, or a Content-Length that is not a "
                         "number)");
  if (r == LC__HTTP_TOO_LONG)
    return luaL_error(L, "write past the declared Content-Length: the "
                         "response is cut off and its connection closes");
  if (r < 0)
    return luaL_error(L, "cannot write response: %s", uv_strerror(r));
  if (r == 0 && finish)
    lc__lua_unref(conn->base.rt, &conn->req_ref); /* nothing to abort now */
  lua_pushboolean(L, r == 0);
  if (r == 0 && !finish && conn->hc != NULL && lua_istable(L, 8) &&
      lc__http_backlogged(conn->hc)) {
    lc__lua_set_ref(L, &conn->drain_ref, 8);
    lua_pushboolean(L, 0);
  } else {
    lua_pushboolean(L, 1);
  }
  return 2;
}

/* core.http_destroy(conn): drop the connection (a handler failed after its
 * head went out). */
static int http_destroy(lua_State *L) {
  lc__lua_http_conn *conn = lc__lua_handle_test(L, 1, &http_conn_type);

  if (conn != NULL && conn->hc != NULL)
    lc__http_conn_destroy(conn->hc);
  return 0;
}

/* core.http_peer(conn) -> ip, port */
static int http_peer(lua_State *L) {
  lc__lua_http_conn *conn = lc__lua_handle_test(L, 1, &http_conn_type);
  char ip[64];
  int port = 0;

  if (conn == NULL || conn->hc == NULL ||
      lc__http_conn_peer(conn->hc, ip, sizeof(ip), &port) != 0)
    return 0;
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

/* core.http_tls(conn[, "cert"]) -> what TLS settled on ({protocol=, ...}),
 * or the peer's certificate; nil when the connection is not TLS. */
static int http_tls(lua_State *L) {
  lc__lua_http_conn *conn = lc__lua_handle_test(L, 1, &http_conn_type);
  lc__conn *c = conn != NULL && conn->hc != NULL ? lc__http_conn_conn(conn->hc)
                                                 : NULL;

  if (lua_isstring(L, 2))
    return lc__lua_push_peer_cert(L, c);
  return lc__lua_push_tls_info(L, c);
}

/* core.http_status_text(code) */
static int http_status_text(lua_State *L) {
  lua_pushstring(L, lc__http_status_text((int)luaL_checkinteger(L, 1)));
  return 1;
}

void lc__core_http(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg no_methods[] = {{NULL, NULL}};
  static const luaL_Reg fns[] = {{"http_write", http_write},
                                 {"http_destroy", http_destroy},
                                 {"http_peer", http_peer},
                                 {"http_tls", http_tls},
                                 {"http_status_text", http_status_text},
                                 {NULL, NULL}};

  lc__lua_handle_class(L, rt, &http_conn_type, no_methods);
  lc__lua_register(L, rt, fns);
  make_names(L, rt);
}
