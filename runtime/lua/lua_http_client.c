/*
 * lua_http_client.c - the Lua binding of the HTTP client (core/http/http_client.h)
 * for lua/luacluster/http_client.lua: agents, requests in Node's style,
 * and fetch.
 *
 * An Agent userdata wraps an lc__http_agent; collecting it (or destroy())
 * closes its idle connections, and the C agent goes once its requests end.
 * An HttpRequest userdata wraps a request whose events go to the Lua
 * ClientRequest it is pinned to, as obj:_native(event, ...). fetch has no
 * Lua object: the coroutine that called it waits, and is woken with the
 * whole response (status, headers, body) or nil and an error string.
 */
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "http_client.h"
#include "lua_binding.h"
#include "lua_http_headers.h"

#define FETCH_MAX_BODY (8 * 1024 * 1024)

/* Agents -------------------------------------------------------------------- */

typedef struct lc__lua_agent {
  lc__lua_handle base;
  lc__http_agent *agent;
} lc__lua_agent;

static void agent_release(void *data) {
  lc__lua_handle_release(data);
}

static void agent_close(lc__lua_handle *h) {
  lc__http_agent_close(((lc__lua_agent *)h)->agent); /* on_free releases h */
}

static const lc__lua_type agent_type = {"luacluster.Agent", agent_close};

static void opt_size(lua_State *L, int idx, const char *name, size_t *out) {
  lua_Number v;

  lua_getfield(L, idx, name);
  if (!lua_isnil(L, -1)) {
    v = luaL_checknumber(L, -1);
    if (!(v >= 0))
      luaL_error(L, "%s must be a number >= 0", name);
    *out = v > 1e15 ? (size_t)1e15 : (size_t)v;
  }
  lua_pop(L, 1);
}

static void opt_ms(lua_State *L, int idx, const char *name, uint64_t *out) {
  size_t v = (size_t)*out;

  opt_size(L, idx, name, &v);
  *out = v;
}

/* core.http_agent{keepAlive=, maxSockets=, maxFreeSockets=, maxQueue=,
 * freeSocketTimeout=, connectTimeout=} -> Agent */
static int http_agent_new(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__http_agent_options opts;
  lc__lua_agent *la;

  luaL_checktype(L, 1, LUA_TTABLE);
  lc__http_agent_options_init(&opts);
  lua_getfield(L, 1, "keepAlive");
  opts.keep_alive = lua_toboolean(L, -1);
  lua_pop(L, 1);
  opt_size(L, 1, "maxSockets", &opts.max_sockets);
  opt_size(L, 1, "maxFreeSockets", &opts.max_free_sockets);
  opt_size(L, 1, "maxQueue", &opts.max_queue);
  opt_ms(L, 1, "freeSocketTimeout", &opts.free_timeout_ms);
  opt_ms(L, 1, "connectTimeout", &opts.connect_timeout_ms);
  if (opts.max_sockets == 0)
    return luaL_error(L, "maxSockets must be at least 1");
  la = lc__lua_handle_new(L, rt, &agent_type, sizeof(*la));
  la->agent = lc__http_agent_new(&rt->core, &opts);
  if (la->agent == NULL) {
    lua_pop(L, 1);
    lc__lua_handle_release(&la->base);
    return luaL_error(L, "out of memory");
  }
  lc__http_agent_set_free_hook(la->agent, agent_release, la);
  return 1;
}

static lc__http_agent *check_agent(lua_State *L, int idx) {
  return ((lc__lua_agent *)lc__lua_handle_check(L, idx, &agent_type))->agent;
}

/* agent:stats([host, port]) -> {sockets=, free=, queued=, connections=} */
static int agent_stats(lua_State *L) {
  lc__http_agent *agent = check_agent(L, 1);
  const char *host = luaL_optstring(L, 2, NULL);
  int port = (int)luaL_optinteger(L, 3, 0);
  lc__http_agent_stats st;

  lc__http_agent_stats_get(agent, host, port, &st);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)st.sockets);
  lua_setfield(L, -2, "sockets");
  lua_pushnumber(L, (lua_Number)st.free);
  lua_setfield(L, -2, "free");
  lua_pushnumber(L, (lua_Number)st.queued);
  lua_setfield(L, -2, "queued");
  lua_pushnumber(L, (lua_Number)st.connections);
  lua_setfield(L, -2, "connections");
  return 1;
}

/* agent:destroy(): closes the idle connections; in-flight requests end. */
static int agent_destroy(lua_State *L) {
  lc__lua_agent *la = lc__lua_handle_test(L, 1, &agent_type);

  if (la != NULL)
    lc__lua_handle_close(&la->base);
  return 0;
}

/* Errors ---------------------------------------------------------------------- */

/* Node's code for an error. */
static const char *error_code(int err, char *buf, size_t size) {
  switch (err) {
  case LC__HTTP_EBADRESPONSE:
    return "HPE_INVALID";
  case LC__HTTP_EHEADERSIZE:
    return "HPE_HEADER_OVERFLOW";
  case LC__HTTP_EBODYSIZE:
    return "ERR_BODY_TOO_LARGE";
  case LC__HTTP_EQUEUEFULL:
    return "ERR_QUEUE_FULL";
  default:
    return lc__lua_err_name(err, buf, size);
  }
}

/* A TLS failure in words; a name that does not match says which name. */
static void push_tls_message(lua_State *L, int err, const char *host) {
  char msg[160];

  lc__tls_strerror(err, msg, sizeof(msg));
  if (err == LC__TLS_EVERIFY(62) || err == LC__TLS_EVERIFY(64))
    lua_pushfstring(L, "%s: Host: %s is not in the cert's altnames", msg,
                    host);
  else
    lua_pushstring(L, msg);
}

/* Node's message for an error on a request to host:port. */
static void push_message(lua_State *L, int err, const char *reason,
                         const char *host, int port) {
  switch (err) {
  case LC__HTTP_EBADRESPONSE:
    lua_pushfstring(L, "Parse Error: %s", reason ? reason : "bad response");
    return;
  case LC__HTTP_EHEADERSIZE:
    lua_pushliteral(L, "Parse Error: Header overflow");
    return;
  case LC__HTTP_EBODYSIZE:
    lua_pushliteral(L, "response body over the size limit (maxBodySize)");
    return;
  case LC__HTTP_EQUEUEFULL:
    lua_pushfstring(L, "too many requests waiting for a connection to %s:%d",
                    host, port);
    return;
  }
  if (reason != NULL)
    lua_pushstring(L, reason);
  else if (lc__tls_is_error(err))
    push_tls_message(L, err, host);
  else if (err < -3000 && err > -3100)
    lua_pushfstring(L, "getaddrinfo %s %s", lc__dns_error_code(err), host);
  else
    lua_pushfstring(L, "connect %s %s:%d", uv_err_name(err), host, port);
}

/* The top-to-bottom style's error string. */
static void push_text(lua_State *L, int err, const char *host) {
  switch (err) {
  case LC__HTTP_EBADRESPONSE:
    lua_pushliteral(L, "bad response");
    return;
  case LC__HTTP_EHEADERSIZE:
    lua_pushliteral(L, "response header too large");
    return;
  case LC__HTTP_EBODYSIZE:
    lua_pushliteral(L, "response body too large");
    return;
  case LC__HTTP_EQUEUEFULL:
    lua_pushliteral(L, "too many requests waiting for a connection");
    return;
  case UV_ECONNRESET:
    lua_pushliteral(L, "closed");
    return;
  }
  if (err < -3000 && err > -3100)
    lua_pushfstring(L, "%s could not be resolved (%s)", host,
                    lc__dns_error_code(err));
  else if (lc__tls_is_error(err))
    push_tls_message(L, err, host); /* "certificate has expired", ... */
  else
    lua_pushstring(L, lc__lua_err_text(err));
}

/* Heads ----------------------------------------------------------------------- */

static void push_version(lua_State *L, const lc__http_head *head) {
  char v[3];

  v[0] = (char)('0' + head->major % 10);
  v[1] = '.';
  v[2] = (char)('0' + head->minor % 10);
  lua_pushlstring(L, v, 3);
}

/* Sends the head (line from path and host_header) and a body piece; raises
 * on bad headers. Returns the core's result. */
static int send_request(lua_State *L, lc__http_request *req,
                        const char *method, int path_idx, int host_idx,
                        int headers_idx, const char *body, size_t len,
                        int finish) {
  lc__http_header stack[LC__LUA_STACK_HEADERS], *headers = NULL;
  lc__http_request_line line;
  size_t n = 0;
  int r;

  memset(&line, 0, sizeof(line));
  if (!lua_isnoneornil(L, path_idx)) {
    line.method = method;
    line.path = luaL_checklstring(L, path_idx, &line.path_len);
    line.host = luaL_optlstring(L, host_idx, "", &line.host_len);
    headers = lc__lua_check_headers(L, headers_idx, stack, &n);
  }
  r = lc__http_request_send(req, &line, headers, n, body, len, finish);
  if (r == UV_EINVAL)
    return luaL_error(L, "invalid request: bad method, path, or header name "
                         "or value (CR, LF or NUL, or not a token)");
  if (r < 0)
    return luaL_error(L, "cannot send request: %s", uv_strerror(r));
  return r;
}

/* Reads the request options at idx: timeout, response limits, and for
 * HTTPS the TLS context and server name (which the table keeps). */
static void request_options(lua_State *L, int idx,
                            lc__http_request_options *o, uint64_t max_body) {
  size_t max_headers;

  lc__http_limits_init(&o->limits);
  o->limits.max_body_size = max_body;
  o->timeout_ms = 0;
  o->tls = NULL;
  o->servername = NULL;
  if (lua_isnoneornil(L, idx))
    return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "tls");
  if (!lua_isnil(L, -1))
    o->tls = lc__lua_check_tls_ctx(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "servername");
  if (!lua_isnil(L, -1))
    o->servername = luaL_checkstring(L, -1);
  lua_pop(L, 1);
  opt_ms(L, idx, "timeout", &o->timeout_ms);
  opt_size(L, idx, "maxHeaderSize", &o->limits.max_header_size);
  max_headers = o->limits.max_headers;
  opt_size(L, idx, "maxHeadersCount", &max_headers);
  o->limits.max_headers = max_headers;
  opt_ms(L, idx, "maxBodySize", &o->limits.max_body_size);
}

/* Requests in Node's style ------------------------------------------------------ */

typedef struct lc__lua_request {
  lc__lua_handle base; /* pinned: the ClientRequest object, until close */
  lc__http_request *req;
  char method[24];
  char host[256]; /* for error messages */
  int port;
} lc__lua_request;

static void request_close(lc__lua_handle *h) {
  lc__lua_request *lr = (lc__lua_request *)h;

  lc__http_request_abort(lr->req); /* on_close releases h */
}

static const lc__lua_type request_type = {"luacluster.HttpRequest",
                                          request_close};

static lc__lua_request *lua_request(lc__http_request *req) {
  return lc__http_request_data(req);
}

static int req_on_response(lc__http_request *req, const lc__http_head *head) {
  lc__lua_request *lr = lua_request(req);
  lua_State *L = lr->base.rt->L;

  lua_pushinteger(L, head->status);
  lua_pushlstring(L, head->url, head->url_len);
  push_version(L, head);
  lc__lua_push_headers(L, head);
  lc__lua_handle_emit(&lr->base, "response", 4, 0);
  return 0; /* a pause from Lua went through lc__http_request_pause */
}

static int req_on_body(lc__http_request *req, const char *data, size_t len) {
  lc__lua_request *lr = lua_request(req);

  lua_pushlstring(lr->base.rt->L, data, len);
  lc__lua_handle_emit(&lr->base, "data", 1, 0);
  return 0;
}

static void req_on_end(lc__http_request *req) {
  lc__lua_handle_emit(&lua_request(req)->base, "end", 0, 0);
}

static void req_on_error(lc__http_request *req, int err, const char *reason) {
  lc__lua_request *lr = lua_request(req);
  lua_State *L = lr->base.rt->L;

  char name[96];

  lua_pushstring(L, error_code(err, name, sizeof(name)));
  push_message(L, err, reason, lr->host, lr->port);
  lc__lua_handle_emit(&lr->base, "error", 2, 0);
}

static void req_on_timeout(lc__http_request *req) {
  lc__lua_handle_emit(&lua_request(req)->base, "timeout", 0, 0);
}

static void req_on_drain(lc__http_request *req) {
  lc__lua_handle_emit(&lua_request(req)->base, "drain", 0, 0);
}

static void req_on_close(lc__http_request *req) {
  lc__lua_request *lr = lua_request(req);

  lr->req = NULL;
  if (!lr->base.rt->core.shutting_down)
    lc__lua_handle_emit(&lr->base, "close", 0, 0);
  lc__lua_handle_release(&lr->base);
}

static const lc__http_request_cb request_cb = {
    req_on_response, req_on_body,  req_on_end,  req_on_error,
    req_on_timeout,  req_on_drain, req_on_close};

/* core.http_request(agent, object, host, port, method[, options])
 *   -> HttpRequest. object hears response(status, reason, version,
 * headers), data(chunk), end, error(code, message), timeout, drain, close. */
static int http_request_new(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__http_agent *agent = check_agent(L, 1);
  lc__http_request_options o;
  lc__lua_request *lr;
  size_t mlen, hlen;
  int err;

  luaL_checktype(L, 2, LUA_TTABLE);
  o.host = luaL_checklstring(L, 3, &hlen);
  o.port = (int)luaL_checkinteger(L, 4);
  o.method = luaL_checklstring(L, 5, &mlen);
  request_options(L, 6, &o, 0);
  if (mlen >= sizeof(lr->method))
    return luaL_argerror(L, 5, "method too long");
  if (hlen >= sizeof(lr->host))
    return luaL_argerror(L, 3, "host name too long");
  lr = lc__lua_handle_new(L, rt, &request_type, sizeof(*lr));
  memcpy(lr->method, o.method, mlen + 1);
  memcpy(lr->host, o.host, hlen + 1);
  lr->port = o.port;
  err = lc__http_request_new(agent, &o, &request_cb, lr, &lr->req);
  if (err) {
    lua_pop(L, 1);
    lc__lua_handle_release(&lr->base);
    return luaL_error(L, "cannot make the request: %s", uv_strerror(err));
  }
  lc__lua_handle_pin(L, &lr->base, 2);
  return 1;
}

static lc__lua_request *check_request(lua_State *L) {
  return lc__lua_handle_check(L, 1, &request_type);
}

/* req:send(path, host_header, headers, chunk, finish) -> sent, below
 * (path, host_header and headers on the first call only). */
static int request_send(lua_State *L) {
  lc__lua_request *lr = lc__lua_handle_test(L, 1, &request_type);
  size_t len = 0;
  const char *chunk = luaL_optlstring(L, 5, NULL, &len);
  int r;

  if (lr == NULL || lr->req == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  r = send_request(L, lr->req, lr->method, 2, 3, 4, chunk, len,
                   lua_toboolean(L, 6));
  lua_pushboolean(L, r == 0);
  lua_pushboolean(L, r != 0 || !lc__http_request_backlogged(lr->req));
  return 2;
}

static int request_pause(lua_State *L) {
  lc__lua_request *lr = lc__lua_handle_test(L, 1, &request_type);

  if (lr != NULL && lr->req != NULL)
    lc__http_request_pause(lr->req, lua_toboolean(L, 2));
  return 0;
}

static int request_abort(lua_State *L) {
  lc__lua_request *lr = lc__lua_handle_test(L, 1, &request_type);

  if (lr != NULL && lr->req != NULL)
    lc__http_request_abort(lr->req);
  return 0;
}

static int request_set_timeout(lua_State *L) {
  lc__lua_request *lr = check_request(L);
  lua_Number ms = luaL_checknumber(L, 2);

  if (lr->req != NULL)
    lc__http_request_set_timeout(lr->req, ms > 0 ? (uint64_t)ms : 0);
  return 0;
}

static int request_reused(lua_State *L) {
  lc__lua_request *lr = check_request(L);

  lua_pushboolean(L, lr->req != NULL && lc__http_request_reused(lr->req));
  return 1;
}

/* fetch --------------------------------------------------------------------------- */

typedef struct lc__fetch {
  lc_runtime *rt;
  lc__http_request *req;
  int thread_ref;
  int headers_ref;
  int status;
  char *reason;
  lc__buf body;
  char host[256];
} lc__fetch;

static void fetch_wake_error(lc__fetch *f, int err) {
  lua_State *L = f->rt->L;

  lua_pushnil(L);
  push_text(L, err, f->host);
  lc__lua_wake(f->rt, &f->thread_ref, 2);
}

static int fetch_on_response(lc__http_request *req, const lc__http_head *head) {
  lc__fetch *f = lc__http_request_data(req);
  lua_State *L = f->rt->L;

  f->status = head->status;
  free(f->reason);
  f->reason = strndup(head->url, head->url_len);
  lc__lua_push_headers(L, head);
  lc__lua_set_ref(L, &f->headers_ref, -1);
  lua_pop(L, 1);
  return 0;
}

static int fetch_on_body(lc__http_request *req, const char *data, size_t len) {
  lc__fetch *f = lc__http_request_data(req);

  if (lc__buf_append(&f->body, data, len) != 0) {
    fetch_wake_error(f, UV_ENOMEM);
    lc__http_request_abort(req);
  }
  return 0;
}

/* {status=, statusText=, headers=, body=} */
static void fetch_on_end(lc__http_request *req) {
  lc__fetch *f = lc__http_request_data(req);
  lua_State *L = f->rt->L;

  lua_createtable(L, 0, 4);
  lua_pushinteger(L, f->status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, f->reason ? f->reason : "");
  lua_setfield(L, -2, "statusText");
  lc__lua_push_ref(L, f->headers_ref);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, lc__buf_size(&f->body) > 0 ? lc__buf_data(&f->body) : "",
                  lc__buf_size(&f->body));
  lua_setfield(L, -2, "body");
  lc__lua_wake(f->rt, &f->thread_ref, 1);
}

static void fetch_on_error(lc__http_request *req, int err, const char *reason) {
  (void)reason;
  fetch_wake_error(lc__http_request_data(req), err);
}

static void fetch_on_timeout(lc__http_request *req) {
  fetch_wake_error(lc__http_request_data(req), UV_ETIMEDOUT);
  lc__http_request_abort(req);
}

static void fetch_on_drain(lc__http_request *req) { (void)req; }

static void fetch_on_close(lc__http_request *req) {
  lc__fetch *f = lc__http_request_data(req);

  /* Woken already, unless the process is going away. */
  lc__lua_unref(f->rt, &f->thread_ref);
  lc__lua_unref(f->rt, &f->headers_ref);
  lc__buf_free(&f->body);
  free(f->reason);
  free(f);
}

static const lc__http_request_cb fetch_cb = {
    fetch_on_response, fetch_on_body,  fetch_on_end,  fetch_on_error,
    fetch_on_timeout,  fetch_on_drain, fetch_on_close};

/* fetch's limits, as arguments 9-12: timeout (idle ms), maxBodySize (8 MiB
 * when nil), maxHeaderSize, maxHeadersCount; then for HTTPS, 13-14: the
 * TLS context and the server name. */
static void fetch_options(lua_State *L, lc__http_request_options *o) {
  lua_Number timeout = luaL_optnumber(L, 9, 0);
  lua_Number body = luaL_optnumber(L, 10, FETCH_MAX_BODY);
  lua_Number head = luaL_optnumber(L, 11, -1);
  lua_Number count = luaL_optnumber(L, 12, -1);

  lc__http_limits_init(&o->limits);
  o->tls = lua_isnoneornil(L, 13) ? NULL : lc__lua_check_tls_ctx(L, 13);
  o->servername = luaL_optstring(L, 14, NULL);
  if (!(timeout >= 0) || !(body >= 0))
    luaL_error(L, "timeout and maxBodySize must be numbers >= 0");
  o->timeout_ms = (uint64_t)timeout;
  o->limits.max_body_size = (uint64_t)body;
  if (head >= 0)
    o->limits.max_header_size = (size_t)head;
  if (count >= 0)
    o->limits.max_headers = (size_t)count;
}

/*
 * core.fetch(agent, host, port, method, path, host_header, headers, body,
 * timeout, maxBodySize, maxHeaderSize, maxHeadersCount[, tls, servername])
 *   -> {status=, statusText=, headers=, body=} | nil, err
 * Waits in the running coroutine for the whole response.
 */
static int http_fetch(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__http_agent *agent = check_agent(L, 1);
  lc__http_header stack[LC__LUA_STACK_HEADERS], *headers;
  lc__http_request_options o;
  lc__http_request_line line;
  size_t len = 0, n, n_host;
  const char *body = luaL_optlstring(L, 8, NULL, &len);
  lc__fetch *f;
  int err;

  lc__lua_check_coroutine(L, "fetch()");
  o.host = luaL_checkstring(L, 2);
  o.port = (int)luaL_checkinteger(L, 3);
  o.method = luaL_checkstring(L, 4);
  memset(&line, 0, sizeof(line));
  line.method = o.method;
  line.path = luaL_checklstring(L, 5, &line.path_len);
  line.host = luaL_checklstring(L, 6, &line.host_len);
  fetch_options(L, &o);
  headers = lc__lua_check_headers(L, 7, stack, &n);
  f = calloc(1, sizeof(*f));
  if (f == NULL)
    return luaL_error(L, "out of memory");
  f->rt = rt;
  f->thread_ref = f->headers_ref = LUA_NOREF;
  n_host = strlen(o.host);
  if (n_host >= sizeof(f->host))
    n_host = sizeof(f->host) - 1;
  memcpy(f->host, o.host, n_host);
  f->host[n_host] = '\0';
  err = lc__http_request_new(agent, &o, &fetch_cb, f, &f->req);
  if (err) {
    free(f);
    lua_pushnil(L);
    lua_pushstring(L, err == UV_EINVAL ? "bad url" : uv_strerror(err));
    return 2;
  }
  /* From here the request owns f (freed by its on_close). */
  err = lc__http_request_send(f->req, &line, headers, n, body, len, 1);
  if (err) {
    lc__http_request_abort(f->req);
    return luaL_error(L, "invalid request: bad method, path, or header name "
                         "or value (CR, LF or NUL, or not a token)");
  }
  lc__lua_hold_thread(L, "fetch()", &f->thread_ref);
  return lua_yield(L, 0);
}

void lc__core_http_client(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg agent_methods[] = {
      {"stats", agent_stats}, {"destroy", agent_destroy}, {NULL, NULL}};
  static const luaL_Reg request_methods[] = {
      {"send", request_send},
      {"pause", request_pause},
      {"abort", request_abort},
      {"set_timeout", request_set_timeout},
      {"reused", request_reused},
      {NULL, NULL}};
  static const luaL_Reg fns[] = {{"http_agent", http_agent_new},
                                 {"http_request", http_request_new},
                                 {"fetch", http_fetch},
                                 {NULL, NULL}};

  lc__lua_handle_class(L, rt, &agent_type, agent_methods);
  lc__lua_handle_class(L, rt, &request_type, request_methods);
  lc__lua_register(L, rt, fns);
}
