/*
 * lua_cosocket.c - net.tcp(): TCP sockets with OpenResty's cosocket names
 * for code that runs top to bottom in a coroutine.
 *
 *   local s = net.tcp()
 *   s:settimeouts(1000, 1000, 5000)
 *   local ok, err = s:connect("127.0.0.1", 6379)
 *   s:send("PING\r\n")
 *   local line, err, partial = s:receive("*l")
 *   s:setkeepalive(60000, 30)
 *
 * Each call either returns at once (the bytes are already here, the write
 * left at once) or holds the running coroutine until the connection
 * answers, its timeout passes, or it closes. Received bytes wait in the
 * socket's buffer until a receive takes them. One coroutine may read while
 * another writes; two readers (or writers) at once get "socket busy".
 *
 * setkeepalive() puts the connection into a pool of this process
 * (lua_copool.c), keyed by "host:port" (or the pool option of connect); a
 * later connect() to the same key takes it (getreusedtimes() counts).
 *
 * sslhandshake() puts TLS under the socket (core/tls/tls.h): the coroutine
 * waits as for a connect (bounded by the connect timeout) and gets a
 * session object (or true); sends and receives are plaintext from then on.
 * A pooled connection keeps its TLS: a handshake on it returns at once.
 */
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "lua_cosocket.h"
#include "sockets.h"

#define DEFAULT_TIMEOUT_MS 60000 /* OpenResty's lua_socket_*_timeout */
#define DEFAULT_POOL_SIZE 30     /* OpenResty's lua_socket_pool_size */
#define HIGH_WATER_MARK (64 * 1024) /* buffered while nobody reads */
#define MAX_LINE (1024 * 1024)   /* a line or pattern search gives up here */

enum { WANT_NONE, WANT_LINE, WANT_ALL, WANT_COUNT, WANT_UNTIL };

typedef struct lc__cosocket {
  lc__lua_handle base; /* the userdata is the object; not pinned */
  lc__conn *c;
  lc__dns_req *dns;
  lc__buf in;          /* received, not yet taken */
  int eof;
  int failed;          /* a read or write error: the connection goes */
  int handshaking;     /* connect_ref waits for a TLS handshake */
  int want_session;    /* and gets a session (else true) */
  int connect_ref, read_ref, write_ref; /* the coroutines waiting */
  size_t sending;      /* bytes of the waiting send */
  int want;            /* what the reader waits for */
  size_t count;        /* WANT_COUNT: bytes; WANT_UNTIL: at most (0: all) */
  char *pattern;       /* WANT_UNTIL */
  size_t pattern_len;
  int inclusive;
  uint64_t connect_timeout, send_timeout, read_timeout;
  unsigned reused;
  int port;
  char key[300];       /* the pool's name */
} lc__cosocket;

static const lc__conn_ops cosocket_ops;

/* Waking --------------------------------------------------------------------- */

/* Resumes the coroutine at *ref with nil, err[, partial]. */
static void wake_error(lc__cosocket *s, int *ref, const char *err,
                       const char *partial, size_t plen) {
  lua_State *L = s->base.rt->L;
  int n = 2;

  lua_pushnil(L);
  lua_pushstring(L, err);
  if (partial != NULL) {
    lua_pushlstring(L, partial, plen);
    n = 3;
  }
  lc__lua_wake(s->base.rt, ref, n);
}

static void wake_value(lc__cosocket *s, int *ref, const char *data,
                       size_t len) {
  lua_State *L = s->base.rt->L;

  if (data != NULL)
    lua_pushlstring(L, data, len);
  else
    lua_pushinteger(L, (lua_Integer)len);
  lc__lua_wake(s->base.rt, ref, 1);
}

/* Receiving -------------------------------------------------------------------- */

/* The received bytes ("" when there are none: the buffer may have no
 * memory yet). */
static const char *in_data(const lc__cosocket *s) {
  return lc__buf_size(&s->in) > 0 ? lc__buf_data(&s->in) : "";
}

/* What a receive can take from the buffer now. Returns 1 with *len bytes
 * (of which *skip are dropped: the line end or the pattern) and *found, or
 * 0 when it must wait for more. */
static int take_ready(lc__cosocket *s, size_t *len, size_t *skip, int *found) {
  const char *d = in_data(s), *p;
  size_t n = lc__buf_size(&s->in), safe;

  *skip = 0;
  *found = 0;
  if (n == 0)
    return s->want == WANT_COUNT && s->count == 0 ? (*len = 0, 1) : 0;
  switch (s->want) {
  case WANT_LINE:
    p = memchr(d, '\n', n);
    if (p == NULL)
      return 0;
    *len = (size_t)(p - d);
    *skip = 1;
    if (*len > 0 && d[*len - 1] == '\r') {
      (*len)--;
      (*skip)++;
    }
    return 1;
  case WANT_COUNT:
    if (n < s->count)
      return 0;
    *len = s->count;
    return 1;
  case WANT_UNTIL:
    p = s->pattern_len <= n ? memmem(d, n, s->pattern, s->pattern_len) : NULL;
    if (p != NULL && (s->count == 0 || (size_t)(p - d) <= s->count)) {
      *len = (size_t)(p - d) + (s->inclusive ? s->pattern_len : 0);
      *skip = s->inclusive ? 0 : s->pattern_len;
      *found = 1;
      return 1;
    }
    if (s->count == 0)
      return 0;
    /* With a size: hand out what cannot be the start of the pattern. */
    safe = p != NULL ? (size_t)(p - d)
           : n >= s->pattern_len ? n - s->pattern_len + 1 : 0;
    if (safe < s->count)
      return 0;
    *len = s->count;
    return 1;
  default:
    return 0; /* WANT_ALL waits for the end */
  }
}

/* Pushes what a finished receive returns: data[, found]. */
static int push_taken(lua_State *L, lc__cosocket *s, size_t len, size_t skip,
                      int found) {
  lua_pushlstring(L, in_data(s), len);
  lc__buf_consume(&s->in, len + skip);
  if (s->want == WANT_UNTIL) {
    lua_pushboolean(L, found);
    return 2;
  }
  return 1;
}

static void read_done(lc__cosocket *s) {
  s->want = WANT_NONE;
  free(s->pattern);
  s->pattern = NULL;
  if (s->c != NULL && !s->c->closing) {
    lc__conn_set_timeout(s->c, 0);
    if (lc__buf_size(&s->in) >= HIGH_WATER_MARK)
      lc__conn_pause(s->c);
  }
}

/* Ends the waiting receive with an error; what it had is the partial. The
 * buffer is emptied before the coroutine runs on. */
static void read_fail(lc__cosocket *s, const char *err) {
  lua_State *L = s->base.rt->L;
  int all = s->want == WANT_ALL, n;
  size_t len = lc__buf_size(&s->in);

  read_done(s);
  if (all && strcmp(err, "closed") == 0) {
    /* "*a" reads until the close: that is success. */
    lua_pushlstring(L, in_data(s), len);
    n = 1;
  } else {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushlstring(L, in_data(s), len);
    n = 3;
  }
  lc__buf_consume(&s->in, len);
  lc__lua_wake(s->base.rt, &s->read_ref, n);
}

/* New bytes, or the end: finishes the waiting receive if it can. */
static void read_check(lc__cosocket *s) {
  lua_State *L = s->base.rt->L;
  size_t len, skip;
  int found, n;

  if (s->read_ref == LUA_NOREF)
    return;
  if (take_ready(s, &len, &skip, &found)) {
    n = push_taken(L, s, len, skip, found);
    read_done(s);
    lc__lua_wake(s->base.rt, &s->read_ref, n);
    return;
  }
  if (s->eof || s->failed || s->c == NULL) {
    read_fail(s, "closed");
    return;
  }
  if ((s->want == WANT_LINE || s->want == WANT_UNTIL) &&
      lc__buf_size(&s->in) > MAX_LINE)
    read_fail(s, "line too long");
}

/* Connection ops (a connected cosocket) --------------------------------------- */

static void cs_on_open(lc__conn *c) {
  lc__cosocket *s = c->data;
  lua_State *L = s->base.rt->L;

  if (s->handshaking) {
    s->handshaking = 0;
    lc__conn_set_timeout(c, 0);
    if (s->want_session)
      lc__lua_push_tls_session(L, c);
    else
      lua_pushboolean(L, 1);
  } else {
    lua_pushinteger(L, 1);
  }
  lc__lua_wake(s->base.rt, &s->connect_ref, 1);
}

/* A failed handshake in OpenResty's words: "19: self-signed certificate
 * in certificate chain", "certificate host mismatch", "handshake failed". */
static const char *handshake_error(int err, char *buf, size_t size) {
  int v = LC__TLS_EVERIFY(0) - err;
  char words[128];

  if (err == LC__TLS_EVERIFY(62) || err == LC__TLS_EVERIFY(64))
    return "certificate host mismatch";
  if (lc__tls_is_error(err) && v > 0 && v < 1000) {
    snprintf(buf, size, "%d: %s", v, lc__tls_strerror(err, words, sizeof(words)));
    return buf;
  }
  return lc__lua_err_text(err);
}

static void cs_on_read(lc__conn *c, const char *data, size_t len) {
  lc__cosocket *s = c->data;

  if (lc__buf_append(&s->in, data, len) != 0) {
    s->failed = 1;
    lc__conn_close(c);
    return;
  }
  if (s->read_ref == LUA_NOREF) {
    if (lc__buf_size(&s->in) >= HIGH_WATER_MARK)
      lc__conn_pause(c); /* nobody reads: stop until someone does */
    return;
  }
  read_check(s);
}

static void cs_on_eof(lc__conn *c) {
  lc__cosocket *s = c->data;

  s->eof = 1;
  read_check(s);
}

static void cs_on_timeout(lc__conn *c) {
  lc__cosocket *s = c->data;

  /* A timed-out receive or send leaves the socket usable, as OpenResty's;
   * a receive gives what it had as the partial. */
  if (s->read_ref != LUA_NOREF)
    read_fail(s, "timeout");
  if (s->write_ref != LUA_NOREF)
    wake_error(s, &s->write_ref, "timeout", NULL, 0);
}

static void cs_on_drain(lc__conn *c) {
  lc__cosocket *s = c->data;

  if (s->write_ref != LUA_NOREF) {
    if (s->read_ref == LUA_NOREF)
      lc__conn_set_timeout(c, 0);
    wake_value(s, &s->write_ref, NULL, (size_t)s->count);
  }
}

static void cs_on_server_close(lc__conn *c) { (void)c; }

static void cs_on_error(lc__conn *c, int err) {
  lc__cosocket *s = c->data;

  char buf[160];

  s->failed = 1;
  if (s->connect_ref != LUA_NOREF) {
    wake_error(s, &s->connect_ref,
               s->handshaking ? handshake_error(err, buf, sizeof(buf))
                              : lc__lua_err_text(err),
               NULL, 0);
    return;
  }
  if (s->write_ref != LUA_NOREF)
    wake_error(s, &s->write_ref, lc__lua_err_text(err), NULL, 0);
  if (s->read_ref != LUA_NOREF)
    read_fail(s, err == UV_ECONNRESET ? "connection reset by peer" : "closed");
}

static void cs_on_close(lc__conn *c) {
  lc__cosocket *s = c->data;

  s->c = NULL;
  if (s->connect_ref != LUA_NOREF)
    wake_error(s, &s->connect_ref, "closed", NULL, 0);
  if (s->write_ref != LUA_NOREF)
    wake_error(s, &s->write_ref, "closed", NULL, 0);
  if (s->read_ref != LUA_NOREF)
    read_fail(s, "closed");
  if (s->base.closing)
    lc__lua_handle_release(&s->base);
}

static const lc__conn_ops cosocket_ops = {
    cs_on_open,  cs_on_read,         cs_on_eof,   cs_on_timeout,
    cs_on_drain, cs_on_server_close, cs_on_error, cs_on_close};

/* The Lua methods ------------------------------------------------------------------ */

static void cosocket_close(lc__lua_handle *h) {
  lc__cosocket *s = (lc__cosocket *)h;

  free(s->pattern);
  s->pattern = NULL;
  lc__buf_free(&s->in);
  if (s->dns != NULL) {
    lc__dns_cancel(s->dns);
    s->dns = NULL;
  }
  if (s->c != NULL) {
    lc__conn_close(s->c); /* cs_on_close wakes the waiting, releases h */
    return;
  }
  /* Closed while its name was looked up: whoever waited is let go (it
   * cannot be resumed from inside this call). */
  lc__lua_unref(h->rt, &s->connect_ref);
  lc__lua_unref(h->rt, &s->read_ref);
  lc__lua_unref(h->rt, &s->write_ref);
  lc__lua_handle_release(h);
}

static const lc__lua_type cosocket_type = {"luacluster.Cosocket",
                                           cosocket_close};

static lc__cosocket *check_cosocket(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);

  if (s == NULL)
    luaL_argerror(L, 1, "a cosocket (net.tcp()) that is not closed");
  return s;
}

/* core.tcp() -> Cosocket */
static int tcp_new(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_new(L, lc__lua_rt(L), &cosocket_type,
                                       sizeof(*s));

  s->connect_ref = s->read_ref = s->write_ref = LUA_NOREF;
  s->connect_timeout = s->send_timeout = s->read_timeout = DEFAULT_TIMEOUT_MS;
  return 1;
}

static uint64_t check_ms(lua_State *L, int idx) {
  lua_Number v = luaL_optnumber(L, idx, -1);

  if (v < 0)
    return (uint64_t)-1; /* keep */
  return (uint64_t)v;
}

/* s:settimeout(ms): all three; s:settimeouts(connect, send, read) */
static int cs_settimeout(lua_State *L) {
  lc__cosocket *s = check_cosocket(L);
  uint64_t ms = check_ms(L, 2);

  if (ms != (uint64_t)-1)
    s->connect_timeout = s->send_timeout = s->read_timeout = ms;
  return 0;
}

static int cs_settimeouts(lua_State *L) {
  lc__cosocket *s = check_cosocket(L);
  uint64_t c = check_ms(L, 2), w = check_ms(L, 3), r = check_ms(L, 4);

  if (c != (uint64_t)-1)
    s->connect_timeout = c;
  if (w != (uint64_t)-1)
    s->send_timeout = w;
  if (r != (uint64_t)-1)
    s->read_timeout = r;
  return 0;
}

static int start_connect(lua_State *L, lc__cosocket *s,
                         const struct sockaddr_storage *ss) {
  int err = lc__conn_connect(&s->base.rt->core, (const struct sockaddr *)ss,
                             NULL, &cosocket_ops, s, s->connect_timeout,
                             &s->c);

  if (err) {
    lc__lua_unref_in(L, &s->connect_ref);
    lua_pushnil(L);
    lua_pushstring(L, lc__lua_err_text(err));
    return 2;
  }
  return lua_yield(L, 0);
}

static void on_resolved(lc__dns_req *req, int status,
                        const struct addrinfo *res, void *data) {
  lc__cosocket *s = data;
  struct sockaddr_storage ss;
  char msg[320];
  int err;

  (void)req;
  s->dns = NULL;
  if (status == 0)
    status = lc__dns_pick(res, s->port, &ss);
  if (status != 0) {
    snprintf(msg, sizeof(msg), "%.*s could not be resolved (%s)",
             (int)(strrchr(s->key, ':') - s->key), s->key,
             lc__dns_error_code(status));
    wake_error(s, &s->connect_ref, msg, NULL, 0);
    return;
  }
  err = lc__conn_connect(&s->base.rt->core, (const struct sockaddr *)&ss,
                         NULL, &cosocket_ops, s, s->connect_timeout, &s->c);
  if (err)
    wake_error(s, &s->connect_ref, lc__lua_err_text(err), NULL, 0);
}

/* s:connect(host, port[, {pool=}]) -> 1 | nil, err */
static int cs_connect(lua_State *L) {
  lc__cosocket *s = check_cosocket(L);
  lc_runtime *rt = s->base.rt;
  const char *host = luaL_checkstring(L, 2);
  int port = (int)luaL_checkinteger(L, 3);
  struct sockaddr_storage ss;
  lc__conn *c;
  int err;

  if (port < 1 || port > 65535)
    return luaL_argerror(L, 3, "port must be 1-65535");
  lc__lua_check_coroutine(L, "cosocket connect()");
  if (s->c != NULL || s->dns != NULL || s->connect_ref != LUA_NOREF) {
    lua_pushnil(L);
    lua_pushliteral(L, "already connected");
    return 2;
  }
  snprintf(s->key, sizeof(s->key), "%s:%d", host, port);
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "pool");
    if (lua_isstring(L, -1))
      snprintf(s->key, sizeof(s->key), "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  s->port = port;
  s->eof = s->failed = 0;
  lc__buf_reset(&s->in);
  if ((c = lc__copool_take(rt, s->key, &s->reused)) != NULL) {
    c->ops = &cosocket_ops;
    c->data = s;
    s->c = c;
    lc__conn_set_timeout(c, 0);
    lc__conn_resume(c);
    lua_pushinteger(L, 1);
    return 1;
  }
  s->reused = 0;
  lc__lua_hold_thread(L, "cosocket connect()", &s->connect_ref);
  if (lc__dns_numeric(host, port, &ss) == 0)
    return start_connect(L, s, &ss);
  err = lc__dns_lookup(&rt->core, host, 0, on_resolved, s, &s->dns);
  if (err) {
    lc__lua_unref_in(L, &s->connect_ref);
    lua_pushnil(L);
    lua_pushstring(L, uv_strerror(err));
    return 2;
  }
  return lua_yield(L, 0);
}

static int push_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* s:send(data | {pieces}) -> bytes | nil, err */
static int cs_send(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);
  size_t len, total = 0;
  const char *data;
  int i, n, err = 0;

  if (s == NULL || s->c == NULL || s->c->closing || s->failed)
    return push_closed(L);
  lc__lua_check_coroutine(L, "cosocket send()");
  if (s->write_ref != LUA_NOREF) {
    lua_pushnil(L);
    lua_pushliteral(L, "socket busy writing");
    return 2;
  }
  if (lua_istable(L, 2)) {
    n = (int)lua_objlen(L, 2);
    for (i = 1; i <= n && err == 0; i++) {
      lua_rawgeti(L, 2, i);
      data = lua_tolstring(L, -1, &len);
      if (data == NULL)
        return luaL_error(L, "send: piece %d is not a string", i);
      err = lc__conn_write(s->c, data, len);
      total += len;
      lua_pop(L, 1);
    }
  } else {
    data = luaL_checklstring(L, 2, &len);
    err = lc__conn_write(s->c, data, len);
    total = len;
  }
  if (err) {
    lua_pushnil(L);
    lua_pushstring(L, lc__lua_err_text(err));
    return 2;
  }
  if (lc__conn_write_queue(s->c) == 0) {
    lua_pushinteger(L, (lua_Integer)total);
    return 1;
  }
  /* The kernel took part: wait for the rest to leave. */
  s->sending = total;
  lc__lua_hold_thread(L, "cosocket send()", &s->write_ref);
  if (s->read_ref == LUA_NOREF)
    lc__conn_set_timeout(s->c, s->send_timeout);
  return lua_yield(L, 0);
}

/* Starts a receive: at once when the buffer has it, else waits. */
static int receive(lua_State *L, lc__cosocket *s) {
  size_t len, skip;
  int found;

  if (take_ready(s, &len, &skip, &found)) {
    int n = push_taken(L, s, len, skip, found);
    read_done(s);
    return n;
  }
  if (s->eof || s->failed || s->c == NULL || s->c->closing) {
    size_t n = lc__buf_size(&s->in);
    int all = s->want == WANT_ALL;
    read_done(s);
    if (all) {
      lua_pushlstring(L, in_data(s), n);
    } else {
      lua_pushnil(L);
      lua_pushliteral(L, "closed");
      lua_pushlstring(L, in_data(s), n);
    }
    lc__buf_consume(&s->in, n);
    return all ? 1 : 3;
  }
  lc__lua_hold_thread(L, "cosocket receive()", &s->read_ref);
  lc__conn_set_timeout(s->c, s->read_timeout);
  lc__conn_resume(s->c);
  return lua_yield(L, 0);
}

static int check_readable(lua_State *L, lc__cosocket *s) {
  if (s == NULL || (s->c == NULL && lc__buf_size(&s->in) == 0))
    return push_closed(L);
  lc__lua_check_coroutine(L, "cosocket receive()");
  if (s->read_ref != LUA_NOREF) {
    lua_pushnil(L);
    lua_pushliteral(L, "socket busy reading");
    return 2;
  }
  return 0;
}

/* s:receive(["*l" | "*a" | n]) -> data | nil, err, partial */
static int cs_receive(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);
  int r = check_readable(L, s);

  if (r != 0)
    return r;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, 2);
    if (!(n >= 0))
      return luaL_argerror(L, 2, "a byte count must be >= 0");
    s->want = WANT_COUNT;
    s->count = (size_t)n;
  } else {
    const char *p = luaL_optstring(L, 2, "*l");
    if (strcmp(p, "*l") == 0 || strcmp(p, "l") == 0)
      s->want = WANT_LINE;
    else if (strcmp(p, "*a") == 0 || strcmp(p, "a") == 0)
      s->want = WANT_ALL;
    else
      return luaL_argerror(L, 2, "pattern must be \"*l\", \"*a\" or a number");
  }
  return receive(L, s);
}

/* s:_receive_until(pattern, size, inclusive) -> data, found | nil, err,
 * partial (the iterator of receiveuntil is in lua/luacluster/cosocket.lua) */
static int cs_receive_until(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);
  size_t plen;
  const char *pattern = luaL_checklstring(L, 2, &plen);
  lua_Number size = luaL_optnumber(L, 3, 0);
  int r;

  if (plen == 0)
    return luaL_argerror(L, 2, "the pattern is empty");
  if ((r = check_readable(L, s)) != 0)
    return r;
  s->want = WANT_UNTIL;
  s->count = size > 0 ? (size_t)size : 0;
  s->inclusive = lua_toboolean(L, 4);
  s->pattern = malloc(plen);
  if (s->pattern == NULL)
    return luaL_error(L, "out of memory");
  memcpy(s->pattern, pattern, plen);
  s->pattern_len = plen;
  return receive(L, s);
}

/* s:close() -> 1 | nil, "closed" */
static int cs_close(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);

  if (s == NULL || (s->c == NULL && s->dns == NULL))
    return push_closed(L);
  lc__lua_handle_close(&s->base);
  lua_pushinteger(L, 1);
  return 1;
}

/* s:setkeepalive([idle_ms[, pool_size]]) -> 1 | nil, err: the connection
 * goes to the pool; this object is closed. */
static int cs_setkeepalive(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);
  lua_Number idle = luaL_optnumber(L, 2, DEFAULT_TIMEOUT_MS);
  lua_Number size = luaL_optnumber(L, 3, DEFAULT_POOL_SIZE);
  const char *why = NULL;
  lc__conn *c;

  if (s == NULL || s->c == NULL || s->c->closing)
    return push_closed(L);
  if (s->read_ref != LUA_NOREF || s->write_ref != LUA_NOREF)
    why = "socket busy";
  else if (lc__buf_size(&s->in) > 0)
    why = "unread data in buffer";
  else if (s->eof || s->failed)
    why = "closed";
  else if (lc__conn_write_queue(s->c) > 0)
    why = "unsent data";
  if (why != NULL) {
    lc__lua_handle_close(&s->base);
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  /* The connection leaves this object for the pool (or, full, closes). */
  c = s->c;
  if (size >= 1 && lc__copool_put(s->base.rt, s->key, c, s->reused,
                                  idle > 0 ? (uint64_t)idle : 0,
                                  (size_t)size) == 0)
    s->c = NULL;
  lc__lua_handle_close(&s->base);
  lua_pushinteger(L, 1);
  return 1;
}

static int cs_getreusedtimes(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);

  if (s == NULL || s->c == NULL)
    return push_closed(L);
  lua_pushinteger(L, s->reused);
  return 1;
}

/* s:_sslhandshake(ctx, server_name, session, want_session) -> session |
 * true | nil, err (lua/luacluster/cosocket.lua makes ctx from the options) */
static int cs_sslhandshake(lua_State *L) {
  lc__cosocket *s = lc__lua_handle_test(L, 1, &cosocket_type);
  lc__tls_ctx *ctx = lc__lua_check_tls_ctx(L, 2);
  lc__tls_client_options o;
  int err;

  if (s == NULL || s->c == NULL || s->c->closing || s->failed || s->eof)
    return push_closed(L);
  lc__lua_check_coroutine(L, "cosocket sslhandshake()");
  s->want_session = lua_toboolean(L, 5);
  if (lc__tls_conn_is_tls(s->c)) {
    /* A pooled connection that had its handshake. */
    if (s->want_session)
      return lc__lua_push_tls_session(L, s->c);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (s->connect_ref != LUA_NOREF || s->read_ref != LUA_NOREF ||
      s->write_ref != LUA_NOREF) {
    lua_pushnil(L);
    lua_pushliteral(L, "socket busy");
    return 2;
  }
  memset(&o, 0, sizeof(o));
  o.servername = luaL_optstring(L, 3, NULL);
  o.session = lc__lua_test_tls_session(L, 4);
  o.handshake_timeout_ms = s->connect_timeout;
  err = lc__tls_client_start(s->c, ctx, &o);
  if (err) {
    lua_pushnil(L);
    lua_pushstring(L, err == UV_EINVAL ? "bad server name" : uv_strerror(err));
    return 2;
  }
  s->handshaking = 1;
  lc__lua_hold_thread(L, "cosocket sslhandshake()", &s->connect_ref);
  return lua_yield(L, 0);
}

void lc__core_cosocket(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg methods[] = {
      {"settimeout", cs_settimeout},
      {"settimeouts", cs_settimeouts},
      {"connect", cs_connect},
      {"send", cs_send},
      {"receive", cs_receive},
      {"_receive_until", cs_receive_until},
      {"close", cs_close},
      {"setkeepalive", cs_setkeepalive},
      {"getreusedtimes", cs_getreusedtimes},
      {"_sslhandshake", cs_sslhandshake},
      {NULL, NULL}};
  static const luaL_Reg fns[] = {{"tcp", tcp_new}, {NULL, NULL}};

  lc__lua_handle_class(L, rt, &cosocket_type, methods);
  lc__lua_register(L, rt, fns);
  /* The methods, for lua/luacluster/cosocket.lua to add receiveuntil. */
  luaL_getmetatable(L, cosocket_type.name);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "cosocket_methods");
  lua_pop(L, 1);
}
