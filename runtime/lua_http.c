/*
 * lua_http.c - the HTTP/1.1 server protocol over a connection, and its Lua
 * binding (lua/http.lua builds req/res objects on it).
 *
 * One request is answered at a time per connection, in order: when a
 * response is still being written (asynchronously) as the next pipelined
 * request arrives, parsing pauses and the unread bytes wait; they are
 * parsed once the response finishes. Responses written while the
 * connection is reading are batched and sent with one write at the end of
 * the read, so pipelined requests get one write for many answers.
 *
 * Deadlines (tcp.c's sweeper) stand for: the idle keep-alive timeout
 * between requests, the header timeout while a head arrives (slow clients
 * get 408), the request timeout while a handler runs, and the grace given
 * to idle connections when the server closes.
 *
 * Closing the server (or a worker's disconnect) never resets a connection:
 * a busy one gets "Connection: close" on its current response; an idle one
 * is closed after a short grace, or answered with "Connection: close" if a
 * request arrives first.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lua_net.h"

#define CONN_MT "luacluster.HttpConn"
#define DRAIN_GRACE_MS 1000
#define STACK_HEADERS 32
#define HIGH_WATER_MARK (16 * 1024)

typedef struct lc__http_server {
  lc__http_limits limits;
  uint64_t keep_alive_timeout_ms;
  uint64_t headers_timeout_ms;
  uint64_t request_timeout_ms;
} lc__http_server;

typedef struct lc__hconn lc__hconn;

struct lc__hconn {
  lc__conn *c;
  lc__http_server *cfg;
  lc__http_reader reader;
  lc__buf pending; /* unparsed bytes, kept while parsing is paused */
  lc__buf out;     /* response bytes waiting for the end of this read */
  lc__hconn **box; /* the HttpConn userdata's slot */
  int ud_ref;      /* the HttpConn userdata, for the connection's life */
  int req_ref;     /* the request object while its body streams */
  int drain_ref;   /* the response waiting for "drain" */
  uint32_t seq;    /* the request being answered */
  int in_read;     /* inside on_read: flush at its end */
  int busy;        /* a request is being answered */
  int complete;    /* its whole request has been read */
  int head_sent;
  int chunked;
  int no_body;
  int keep_alive;  /* the current request allows another */
  int close_after; /* end the connection after the current response */
  int draining;    /* the server is closing */
  int paused;      /* parsing waits for a response to finish */
  int peer_done;   /* the client sent FIN: close once answered */
  int client_close; /* the client did not allow another request */
  int armed;       /* which deadline is set (ARM_*) */
  int major, minor;
  int head_request;
  lc__hconn *resume_next; /* in the resume queue */
  int queued;
};

/* Connections whose parsing resumes at the next loop iteration (a response
 * finished from outside a read: resuming inline would run the next
 * request's handler inside the previous response's finish()). */
static struct {
  lc__owner owner;
  uv_check_t check;
  uv_idle_t idle;
  int init;
  lc__hconn *head;
} resumer;

static void hconn_feed(lc__hconn *h, const char *data, size_t len);
static void hconn_flush(lc__hconn *h);

/* Server settings ------------------------------------------------------------- */

int lc__http_server_init(lc__lserver *ls) {
  lc__http_server *cfg = calloc(1, sizeof(*cfg));

  if (cfg == NULL)
    return UV_ENOMEM;
  lc__http_limits_init(&cfg->limits);
  cfg->keep_alive_timeout_ms = 5000;
  cfg->headers_timeout_ms = 60000;
  cfg->request_timeout_ms = 300000;
  ls->proto = cfg;
  return 0;
}

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

/* server:configure{keepAliveTimeout=, headersTimeout=, requestTimeout=,
 * maxHeaderSize=, maxUrlSize=, maxHeadersCount=, maxBodySize=} -> the
 * settings after the change */
int lc__http_server_configure(lua_State *L) {
  lc__server *s = lc__check_server(L, 1);
  lc__lserver *ls = s->data;
  lc__http_server *cfg = ls->proto;
  uint64_t v;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (!ls->http)
    return luaL_error(L, "not an HTTP server");
  opt_number(L, "keepAliveTimeout", &cfg->keep_alive_timeout_ms);
  opt_number(L, "headersTimeout", &cfg->headers_timeout_ms);
  opt_number(L, "requestTimeout", &cfg->request_timeout_ms);
  v = cfg->limits.max_header_size;
  opt_number(L, "maxHeaderSize", &v);
  cfg->limits.max_header_size = (size_t)v;
  v = cfg->limits.max_url_size;
  opt_number(L, "maxUrlSize", &v);
  cfg->limits.max_url_size = (size_t)v;
  v = cfg->limits.max_headers;
  opt_number(L, "maxHeadersCount", &v);
  cfg->limits.max_headers = (size_t)v;
  opt_number(L, "maxBodySize", &cfg->limits.max_body_size);
  /* The settings now, as Node's server fields read. */
  lua_createtable(L, 0, 7);
  lua_pushnumber(L, (lua_Number)cfg->keep_alive_timeout_ms);
  lua_setfield(L, -2, "keepAliveTimeout");
  lua_pushnumber(L, (lua_Number)cfg->headers_timeout_ms);
  lua_setfield(L, -2, "headersTimeout");
  lua_pushnumber(L, (lua_Number)cfg->request_timeout_ms);
  lua_setfield(L, -2, "requestTimeout");
  lua_pushnumber(L, (lua_Number)cfg->limits.max_header_size);
  lua_setfield(L, -2, "maxHeaderSize");
  lua_pushnumber(L, (lua_Number)cfg->limits.max_url_size);
  lua_setfield(L, -2, "maxUrlSize");
  lua_pushnumber(L, (lua_Number)cfg->limits.max_headers);
  lua_setfield(L, -2, "maxHeadersCount");
  lua_pushnumber(L, (lua_Number)cfg->limits.max_body_size);
  lua_setfield(L, -2, "maxBodySize");
  return 1;
}

/* Deadlines ------------------------------------------------------------------- */

enum { ARM_NONE, ARM_IDLE, ARM_HEAD, ARM_REQUEST, ARM_DRAIN };

/* Sets the deadline for the connection's state, when the state changed. */
static void hconn_arm(lc__hconn *h) {
  uint64_t ms;
  int armed;

  if (h->c->shutdown || h->c->closing)
    return;
  if (h->busy) {
    armed = ARM_REQUEST;
    ms = h->cfg->request_timeout_ms;
  } else if (lc__http_reader_in_head(&h->reader)) {
    armed = ARM_HEAD;
    ms = h->cfg->headers_timeout_ms;
  } else if (h->draining) {
    armed = ARM_DRAIN;
    ms = DRAIN_GRACE_MS;
  } else {
    armed = ARM_IDLE;
    ms = h->cfg->keep_alive_timeout_ms;
  }
  if (armed == h->armed)
    return;
  h->armed = armed;
  lc__conn_set_timeout(h->c, ms);
  /* A head's deadline is fixed from its first byte: a slow client
   * trickling bytes must not push it. */
  if (armed == ARM_HEAD)
    h->c->timeout_ms = 0;
}

/* Responses ------------------------------------------------------------------- */

/* Answers a bad or timed-out request and ends the connection; when part
 * of a response is already out, there is nothing to do but drop it. */
static void hconn_error(lc__hconn *h, int status) {
  if (h->busy && h->head_sent) {
    lc__conn_close(h->c);
    return;
  }
  lc__http_write_error(&h->out, status);
  h->busy = 0;
  h->close_after = 1;
  hconn_flush(h);
}

/* Sends what is batched; ends the connection when the response says so. */
static void hconn_flush(lc__hconn *h) {
  lc__conn *c = h->c;

  if (lc__buf_size(&h->out) > 0) {
    if (lc__conn_write(c, lc__buf_data(&h->out), lc__buf_size(&h->out)) != 0) {
      lc__buf_reset(&h->out);
      lc__conn_close(c);
      return;
    }
    lc__buf_reset(&h->out);
    if (h->out.cap > 256 * 1024)
      lc__buf_free(&h->out);
  }
  if (h->busy || c->closing)
    return;
  if (h->close_after && h->client_close && h->complete &&
      lc__buf_size(&h->pending) == 0) {
    /* The client asked to close and sent nothing more: close once the
     * answer is out, as nginx does; no lingering needed. */
    lc__conn_close_when_written(c);
  } else if (h->close_after ||
             (h->peer_done && !h->paused && lc__buf_size(&h->pending) == 0)) {
    lc__conn_shutdown(c);
  }
}

static void on_resume_check(uv_check_t *handle) {
  lc__hconn *h;

  (void)handle;
  while ((h = resumer.head) != NULL) {
    resumer.head = h->resume_next;
    h->queued = 0;
    h->resume_next = NULL;
    if (h->c->closing || h->busy)
      continue;
    lc__http_reader_resume(&h->reader);
    h->paused = 0;
    h->in_read = 1;
    if (lc__buf_size(&h->pending) > 0) {
      /* Parse a copy: parsing may pause again and keep the rest. */
      lc__buf rest = h->pending;
      memset(&h->pending, 0, sizeof(h->pending));
      hconn_feed(h, lc__buf_data(&rest), lc__buf_size(&rest));
      lc__buf_free(&rest);
    }
    h->in_read = 0;
    hconn_flush(h);
    if (!h->paused && !h->c->closing)
      lc__conn_resume(h->c);
  }
  uv_check_stop(&resumer.check);
  uv_idle_stop(&resumer.idle);
}

static void on_resume_idle(uv_idle_t *handle) { (void)handle; }

static void resumer_close(uv_handle_t *handle) { uv_close(handle, NULL); }

static void hconn_schedule_resume(lc__hconn *h) {
  if (h->queued)
    return;
  if (!resumer.init) {
    resumer.owner.close = resumer_close;
    uv_check_init(&lc__rt->loop, &resumer.check);
    uv_idle_init(&lc__rt->loop, &resumer.idle);
    resumer.check.data = &resumer;
    resumer.idle.data = &resumer;
    resumer.init = 1;
  }
  h->queued = 1;
  h->resume_next = resumer.head;
  resumer.head = h;
  uv_check_start(&resumer.check, on_resume_check);
  uv_idle_start(&resumer.idle, on_resume_idle);
}

static void resumer_forget(lc__hconn *h) {
  lc__hconn **pp;

  for (pp = &resumer.head; *pp != NULL; pp = &(*pp)->resume_next) {
    if (*pp == h) {
      *pp = h->resume_next;
      break;
    }
  }
  h->queued = 0;
}

/* The current response is complete. */
static void hconn_response_done(lc__hconn *h) {
  h->busy = 0;
  h->head_sent = 0;
  h->armed = ARM_NONE;
  if (h->c->server != NULL)
    h->c->server->requests++;
  if (h->close_after)
    return; /* the flush shuts the connection down */
  if (h->complete && h->paused) {
    if (h->in_read) {
      lc__http_reader_resume(&h->reader);
      h->paused = 0;
    } else {
      hconn_schedule_resume(h);
    }
  }
  hconn_arm(h);
}

/* Reading --------------------------------------------------------------------- */

static void push_headers(lua_State *L, const lc__http_head *head) {
  size_t i;

  lua_createtable(L, 0, (int)head->nheaders);
  for (i = 0; i < head->nheaders; i++) {
    const lc__http_header *f = &head->headers[i];
    lua_pushlstring(L, f->name, f->name_len);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushlstring(L, f->value, f->value_len);
    } else {
      /* A repeated header: joined with ", ", as Node does. */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, f->value, f->value_len);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
}

static void push_conn(lua_State *L, lc__hconn *h) {
  if (h->ud_ref == LUA_NOREF) {
    lc__hconn **box = lua_newuserdata(L, sizeof(*box));
    *box = h;
    h->box = box;
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);
    h->ud_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lc__lua_push_ref(L, h->ud_ref);
}

static int on_head(void *arg, const lc__http_head *head) {
  lc__hconn *h = arg;
  lc__lserver *ls = h->c->server ? h->c->server->data : NULL;
  lua_State *L = lc__rt->L;
  char version[8];

  h->seq++;
  h->busy = 1;
  h->armed = ARM_NONE;
  h->complete = 0;
  h->head_sent = 0;
  h->keep_alive = head->keep_alive;
  h->major = head->major;
  h->minor = head->minor;
  h->head_request = head->method[0] == 'H' && strcmp(head->method, "HEAD") == 0;
  h->client_close = !head->keep_alive;
  if (h->draining || !head->keep_alive)
    h->close_after = 1;
  hconn_arm(h);
  if (head->expect_continue && head->major == 1 && head->minor >= 1)
    lc__http_write_continue(&h->out);
  if (ls == NULL || ls->obj_ref == LUA_NOREF) {
    hconn_error(h, 503);
    return 1;
  }

  /* req = {method, url, httpVersion, headers, _conn, _seq} */
  lua_createtable(L, 0, 8);
  lua_pushstring(L, head->method);
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, head->url, head->url_len);
  lua_setfield(L, -2, "url");
  version[0] = (char)('0' + head->major % 10);
  version[1] = '.';
  version[2] = (char)('0' + head->minor % 10);
  lua_pushlstring(L, version, 3);
  lua_setfield(L, -2, "httpVersion");
  push_headers(L, head);
  lua_setfield(L, -2, "headers");
  push_conn(L, h);
  lua_setfield(L, -2, "_conn");
  lua_pushnumber(L, h->seq);
  lua_setfield(L, -2, "_seq");
  lua_pushvalue(L, -1);
  h->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lc__net_emit(ls->obj_ref, "request", 1, 0);
  return h->c->closing ? 1 : 0;
}

/* Whether the request object has listeners at all: most requests without a
 * body have none for "data" and "end", and telling them costs a Lua call. */
static int has_listeners(int ref) {
  lua_State *L = lc__rt->L;
  int yes;

  lc__lua_push_ref(L, ref);
  lua_getfield(L, -1, "_events");
  yes = !lua_isnil(L, -1);
  lua_pop(L, 2);
  return yes;
}

static int on_body(void *arg, const char *data, size_t len) {
  lc__hconn *h = arg;

  if (h->req_ref != LUA_NOREF && has_listeners(h->req_ref)) {
    lua_pushlstring(lc__rt->L, data, len);
    lc__net_emit(h->req_ref, "data", 1, 0);
  }
  return h->c->closing ? 1 : 0;
}

static int on_complete(void *arg) {
  lc__hconn *h = arg;
  int ref = h->req_ref;

  h->complete = 1;
  h->req_ref = LUA_NOREF;
  if (ref != LUA_NOREF) {
    if (has_listeners(ref))
      lc__net_emit(ref, "end", 0, 0);
    luaL_unref(lc__rt->L, LUA_REGISTRYINDEX, ref);
  }
  if (h->c->closing || h->close_after)
    return h->busy ? 1 : 0;
  if (h->busy) {
    /* Answer in order: the next request waits for this response. */
    h->paused = 1;
    return 1;
  }
  return 0;
}

static const lc__http_reader_cb reader_cb = {on_head, on_body, on_complete};

static void hconn_feed(lc__hconn *h, const char *data, size_t len) {
  size_t used;
  int status = 0;

  used = lc__http_reader_feed(&h->reader, data, len, &status);
  if (status != 0) {
    lc__log(LC__LOG_DEBUG, "bad request (%d): %s", status,
            lc__http_reader_error(&h->reader));
    hconn_error(h, status);
    return;
  }
  if (used < len && !h->c->closing && !h->close_after) {
    /* Paused: keep the rest for when the response is done. */
    lc__buf_append(&h->pending, data + used, len - used);
    lc__conn_pause(h->c);
  }
  if (!h->busy)
    hconn_arm(h);
}

/* Connection ops -------------------------------------------------------------- */

static void http_on_open(lc__conn *c) {
  lc__lserver *ls = c->server->data;
  lc__hconn *h = calloc(1, sizeof(*h));

  if (h == NULL) {
    lc__conn_close(c);
    return;
  }
  h->c = c;
  h->cfg = ls->proto;
  h->ud_ref = LUA_NOREF;
  h->req_ref = LUA_NOREF;
  h->drain_ref = LUA_NOREF;
  lc__http_reader_init(&h->reader, &h->cfg->limits, &reader_cb, h);
  c->data = h;
  if (c->server->state == LC__SERVER_CLOSING)
    h->draining = 1;
  hconn_arm(h);
}

static void http_on_read(lc__conn *c, const char *data, size_t len) {
  lc__hconn *h = c->data;

  if (h == NULL || (h->close_after && !h->busy))
    return; /* answered with close: the rest is not read */
  if (h->paused) {
    lc__buf_append(&h->pending, data, len);
    lc__conn_pause(c);
    return;
  }
  h->in_read = 1;
  hconn_feed(h, data, len);
  h->in_read = 0;
  hconn_flush(h);
}

static void http_on_eof(lc__conn *c) {
  lc__hconn *h = c->data;

  /* The client is done sending: answer what it sent, then close. */
  if (h != NULL && (h->busy || h->paused || lc__buf_size(&h->pending) > 0)) {
    h->peer_done = 1;
    return;
  }
  lc__conn_close(c);
}

static void http_on_timeout(lc__conn *c) {
  lc__hconn *h = c->data;

  if (c->shutdown || h == NULL) {
    lc__conn_close(c);
    return;
  }
  if (!h->busy && lc__http_reader_in_head(&h->reader)) {
    hconn_error(h, 408); /* a slow client must not hold the worker */
    return;
  }
  if (h->busy && !h->head_sent) {
    lc__log(LC__LOG_WARN, "request timed out after %llu ms: answering 408",
            (unsigned long long)h->cfg->request_timeout_ms);
    h->seq++; /* the handler's late answer goes nowhere */
    hconn_error(h, 408);
    return;
  }
  lc__conn_close(c);
}

static void http_on_drain(lc__conn *c) {
  lc__hconn *h = c->data;
  int ref;

  if (h == NULL || h->drain_ref == LUA_NOREF)
    return;
  ref = h->drain_ref;
  h->drain_ref = LUA_NOREF;
  lc__net_emit(ref, "drain", 0, 0);
  luaL_unref(lc__rt->L, LUA_REGISTRYINDEX, ref);
}

static void http_on_server_close(lc__conn *c) {
  lc__hconn *h = c->data;

  if (h == NULL)
    return;
  h->draining = 1;
  h->armed = ARM_NONE;
  if (h->busy || !lc__http_reader_idle(&h->reader) ||
      lc__buf_size(&h->pending) > 0)
    h->close_after = 1; /* "Connection: close" on the current response */
  else
    hconn_arm(h); /* idle: closed after a short grace */
}

static void http_on_error(lc__conn *c, int err) {
  (void)c;
  (void)err; /* a client that went away: nothing to tell anyone */
}

static void http_on_close(lc__conn *c) {
  lc__hconn *h = c->data;
  lua_State *L = lc__rt->L;

  if (h == NULL)
    return;
  c->data = NULL;
  if (h->queued)
    resumer_forget(h);
  if (h->box != NULL)
    *h->box = NULL;
  if (L != NULL) {
    if (h->req_ref != LUA_NOREF && !lc__rt->shutting_down)
      lc__net_emit(h->req_ref, "aborted", 0, 0);
    lc__lua_unref(L, &h->req_ref);
    lc__lua_unref(L, &h->drain_ref);
    lc__lua_unref(L, &h->ud_ref);
  }
  lc__http_reader_free(&h->reader);
  lc__buf_free(&h->pending);
  lc__buf_free(&h->out);
  free(h);
}

const lc__conn_ops lc__http_conn_ops = {
    http_on_open,  http_on_read,         http_on_eof,   http_on_timeout,
    http_on_drain, http_on_server_close, http_on_error, http_on_close};

/* Lua: writing responses -------------------------------------------------------- */

static lc__hconn *check_conn(lua_State *L, int idx) {
  lc__hconn **box = luaL_checkudata(L, idx, CONN_MT);
  return *box;
}

/* Collects the flat {name, value, ...} list; a value may be a list of
 * strings, one header line each. The strings stay referenced by the table,
 * so the pointers hold for this call. Returns the count, or -1 when there
 * are more than max. */
static int collect_headers(lua_State *L, int idx, lc__http_header *out,
                           int max) {
  int n = 0, i, j, len, vlen;
  size_t name_len;
  const char *name;

  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  len = (int)lua_objlen(L, idx);
  for (i = 1; i < len; i += 2) {
    lua_rawgeti(L, idx, i);
    lua_rawgeti(L, idx, i + 1);
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "header name must be a string");
    name = lua_tolstring(L, -2, &name_len);
    vlen = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 1;
    for (j = 1; j <= vlen; j++) {
      if (lua_istable(L, -1))
        lua_rawgeti(L, -1, j);
      else
        lua_pushvalue(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "header '%s' must be a string", name);
      if (n == max)
        return -1;
      out[n].name = name;
      out[n].name_len = name_len;
      out[n].value = lua_tolstring(L, -1, &out[n].value_len);
      n++;
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return n;
}

/*
 * core.http_write(conn, seq, status, reason, headers, chunk, finish, res)
 *   -> ok, below
 * Writes the head (first time), a body chunk, and with finish the end of the
 * response. ok is false when the connection is gone or moved on; below is
 * false when more than 16 KiB waits to be sent: then res gets "drain".
 */
static int http_write(lua_State *L) {
  lc__hconn *h = check_conn(L, 1);
  uint32_t seq = (uint32_t)luaL_checknumber(L, 2);
  size_t len = 0;
  const char *chunk = luaL_optlstring(L, 6, NULL, &len);
  int finish = lua_toboolean(L, 7);
  lc__http_header stack[STACK_HEADERS], *headers = stack;
  int n, err;

  if (h == NULL || h->seq != seq || !h->busy || h->c->closing) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!h->head_sent) {
    lc__http_response res;
    n = collect_headers(L, 5, stack, STACK_HEADERS);
    if (n < 0) {
      int max = (int)lua_objlen(L, 5) * 8 + 8;
      headers = lua_newuserdata(L, sizeof(*headers) * (size_t)max);
      n = collect_headers(L, 5, headers, max);
    }
    memset(&res, 0, sizeof(res));
    res.status = (int)luaL_checkinteger(L, 3);
    res.reason = lua_isstring(L, 4) ? lua_tostring(L, 4) : NULL;
    res.major = h->major;
    res.minor = h->minor;
    res.head_request = h->head_request;
    res.keep_alive = h->keep_alive && !h->close_after;
    res.content_length = finish ? (int64_t)len : -1;
    if (res.status < 100 || res.status > 999)
      return luaL_error(L, "invalid status code %d", res.status);
    err = lc__http_write_head(&h->out, &res, headers, (size_t)n);
    if (err == UV_EINVAL)
      return luaL_error(L, "invalid header name or value (CR, LF or NUL, or "
                           "not a token)");
    if (err)
      return luaL_error(L, "cannot write response: %s", uv_strerror(err));
    h->head_sent = 1;
    h->chunked = res.chunked;
    h->no_body = res.no_body;
    if (!res.keep_alive)
      h->close_after = 1;
  }
  if (len > 0 && !h->no_body) {
    if (h->chunked)
      lc__http_write_chunk(&h->out, chunk, len);
    else
      lc__buf_append(&h->out, chunk, len);
  }
  if (finish) {
    if (h->chunked && !h->no_body)
      lc__http_write_last_chunk(&h->out);
    hconn_response_done(h);
  }
  /* Batched until the end of the read, unless a body streams out. */
  if (!h->in_read || lc__buf_size(&h->out) >= HIGH_WATER_MARK)
    hconn_flush(h);
  lua_pushboolean(L, 1);
  if (!finish && !h->c->closing &&
      lc__conn_write_queue(h->c) >= HIGH_WATER_MARK && lua_istable(L, 8)) {
    lc__lua_unref(L, &h->drain_ref);
    lua_pushvalue(L, 8);
    h->drain_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 0);
  } else {
    lua_pushboolean(L, 1);
  }
  return 2;
}

/* core.http_destroy(conn): drop the connection (a handler failed after its
 * head went out). */
static int http_destroy(lua_State *L) {
  lc__hconn *h = check_conn(L, 1);

  if (h != NULL)
    lc__conn_close(h->c);
  return 0;
}

/* core.http_peer(conn) -> ip, port */
static int http_peer(lua_State *L) {
  lc__hconn *h = check_conn(L, 1);
  char ip[64];
  int port = 0;

  if (h == NULL || lc__conn_peer(h->c, ip, sizeof(ip), &port) != 0)
    return 0;
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

/* core.http_status_text(code) */
static int http_status_text(lua_State *L) {
  lua_pushstring(L, lc__http_status_text((int)luaL_checkinteger(L, 1)));
  return 1;
}

void lc__core_http(lua_State *L) {
  static const luaL_Reg fns[] = {{"http_write", http_write},
                                 {"http_destroy", http_destroy},
                                 {"http_peer", http_peer},
                                 {"http_status_text", http_status_text},
                                 {NULL, NULL}};

  luaL_newmetatable(L, CONN_MT);
  lua_pop(L, 1);
  luaL_register(L, NULL, fns);
}
