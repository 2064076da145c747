/*
 * lua_redis.c - the "luacluster.redis" module lua/redis.lua builds on: a
 * Redis client (core/redis/redis.h) as one handle, commands encoded from the Lua
 * stack straight into the client's output buffer, replies pushed straight
 * from the parser's arena.
 *
 *   R.setup(spawn, later, ErrorMT)    once, by lua/redis.lua
 *   h = R.new(client, options)        events go to client:_native(...)
 *   h:call(name, args...[, fn])       a command
 *   h:exec(commands[, fn])            MULTI, the commands, EXEC at once
 *   h:subscribe(kind, names...[, fn]) kind 1..4: (p)(un)subscribe
 *   h:quit(), h:close(), h:set_ref(on), h:state()
 *
 * A command with a function last calls it as fn(err, value) in a pooled
 * coroutine (err an error object with code and message); without one it
 * must run in a coroutine, which waits and gets value or nil, err (a
 * string). An argument is a string, a number, or a table spread into
 * arguments (a list's items, or a map's keys and values); anything else
 * is an error naming the argument.
 *
 * Replies: strings and status replies are strings, integers numbers, a
 * nil reply nil (inside an array: R.null, the lightuserdata cjson.null
 * also is), arrays tables, an error reply nil, err (inside an array: an
 * error object).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_binding.h"
#include "redis.h"

#define CLIENT_MT "luacluster.RedisClient"

/* What a command's callback data says (packed with the registry ref). */
#define BY_THREAD 1 /* the ref is a waiting coroutine, else a function */
#define SUB_REPLY 2 /* the reply is a confirmation: give its count */

/* The registry slot of the module's own values (its address is the key). */
static const char setup_key = 0;

typedef struct lc__lua_redis {
  lc__lua_handle base; /* pinned to the Lua client while open */
  lc__redis *r;
  int spawn_ref, later_ref, error_ref; /* the module's, copied at new() */
} lc__lua_redis;

static void client_close(lc__lua_handle *h) {
  lc__redis_close(((lc__lua_redis *)h)->r);
}

static const lc__lua_type client_type = {CLIENT_MT, client_close};

/* Pushing replies ------------------------------------------------------------------ */

/* Pushes Node's error object {code=, message=} for a failure or an error
 * reply: the code is the reply's first word (ERR, WRONGTYPE, ...) or the
 * client's own (ETIMEDOUT, ECONNREFUSED, ...). */
static void push_error_object(lua_State *L, lc__lua_redis *c, int status,
                              const char *message) {
  const char *code = NULL, *sp;

  lua_createtable(L, 0, 2);
  switch (status) {
  case 0:
  case UV_EACCES:
  case UV_EINVAL:
    sp = strchr(message, ' ');
    lua_pushlstring(L, message, sp ? (size_t)(sp - message) : strlen(message));
    break;
  case UV_ECANCELED:
    code = "ERR_CLIENT_CLOSED";
    break;
  case UV_ENOBUFS:
    code = "ERR_OFFLINE_QUEUE_FULL";
    break;
  case UV_EMSGSIZE:
    code = "ERR_REPLY_TOO_LARGE";
    break;
  case UV_EOF:
    code = "ECONNRESET";
    break;
  default:
    code = status == UV_EAI_NONAME || status == UV_EAI_NODATA
               ? "ENOTFOUND"
               : uv_err_name(status);
  }
  if (code != NULL)
    lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lc__lua_push_ref(L, c->error_ref);
  lua_setmetatable(L, -2);
}

static void push_reply(lua_State *L, lc__lua_redis *c,
                       const lc__redis_reply *reply, int top) {
  size_t i;

  switch (reply->type) {
  case LC__REDIS_STRING:
  case LC__REDIS_STATUS:
    lua_pushlstring(L, reply->str, reply->len);
    break;
  case LC__REDIS_INTEGER:
    lua_pushnumber(L, (lua_Number)reply->integer);
    break;
  case LC__REDIS_ARRAY:
    luaL_checkstack(L, 4, "reply nested too deep");
    lua_createtable(L, (int)reply->len, 0);
    for (i = 0; i < reply->len; i++) {
      push_reply(L, c, reply->element[i], 0);
      lua_rawseti(L, -2, (int)i + 1);
    }
    break;
  case LC__REDIS_ERROR:
    push_error_object(L, c, 0, reply->str);
    break;
  default:
    if (top)
      lua_pushnil(L);
    else
      lua_pushlightuserdata(L, NULL);
  }
}

/* The value a command gives (a confirmation's count for subscriptions). */
static void push_value(lua_State *L, lc__lua_redis *c,
                       const lc__redis_reply *reply, int flags) {
  if ((flags & SUB_REPLY) && reply->type == LC__REDIS_ARRAY &&
      reply->len == 3 && reply->element[2]->type == LC__REDIS_INTEGER)
    lua_pushnumber(L, (lua_Number)reply->element[2]->integer);
  else
    push_reply(L, c, reply, 1);
}

static void on_command(lc__redis *r, int status, const lc__redis_reply *reply,
                       void *data) {
  lc__lua_redis *c = lc__redis_data(r);
  lc_runtime *rt = c->base.rt;
  lua_State *L = rt->L;
  intptr_t packed = (intptr_t)data;
  int ref = (int)(packed >> 2), flags = (int)(packed & 3);
  int failed = status < 0 || reply->type == LC__REDIS_ERROR;

  if (L == NULL || rt->core.exiting) {
    lc__lua_unref(rt, &ref);
    return;
  }
  if (flags & BY_THREAD) {
    if (failed) {
      lua_pushnil(L);
      lua_pushlstring(L, reply->str, reply->len);
    } else {
      push_value(L, c, reply, flags);
      lua_pushnil(L);
    }
    lc__lua_wake(rt, &ref, 2);
    return;
  }
  lc__lua_push_ref(L, c->spawn_ref);
  lc__lua_push_ref(L, ref);
  lc__lua_unref(rt, &ref);
  if (failed) {
    push_error_object(L, c, status, reply->str);
    lua_pushnil(L);
  } else {
    lua_pushnil(L);
    push_value(L, c, reply, flags);
  }
  lc__lua_call(rt, 3, 0);
}

static void on_ignored(lc__redis *r, int status, const lc__redis_reply *reply,
                       void *data) {
  (void)r, (void)status, (void)reply, (void)data;
}

/* Encoding arguments --------------------------------------------------------------- */

/* Raises "bad argument #n to 'name' (why)" at the caller's line (the
 * methods of lua/redis.lua call these as tail calls). */
static int arg_error(lua_State *L, int n, const char *name, const char *why) {
  luaL_where(L, 1);
  lua_pushfstring(L, "bad argument #%d to '%s' (%s)", n, name, why);
  lua_concat(L, 2);
  return lua_error(L);
}

/* A number as Redis reads it: integers without a point, others with the
 * fewest digits that read back the same. 0, or -1 for NaN. */
static int format_number(lua_Number x, char *out, size_t size) {
  int digits;

  if (x != x)
    return -1;
  if (isinf(x)) {
    snprintf(out, size, x > 0 ? "inf" : "-inf");
    return 0;
  }
  if (x == floor(x) && fabs(x) < 9007199254740992.0) {
    snprintf(out, size, "%lld", (long long)x);
    return 0;
  }
  for (digits = 15; digits <= 17; digits++) {
    snprintf(out, size, "%.*g", digits, x);
    if (strtod(out, NULL) == x)
      break;
  }
  return 0;
}

/* One plain argument (a string or number): its count (1), or an error. */
static int check_scalar(lua_State *L, int idx, int n, const char *name) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    return 1;
  case LUA_TNUMBER:
    if (lua_tonumber(L, idx) != lua_tonumber(L, idx))
      return arg_error(L, n, name, "NaN cannot be sent to Redis");
    return 1;
  case LUA_TTABLE:
    return arg_error(L, n, name, "a nested table cannot be sent to Redis");
  default:
    lua_pushfstring(L, "string or number expected, got %s",
                    luaL_typename(L, idx));
    return arg_error(L, n, name, lua_tostring(L, -1));
  }
}

/* How many arguments the value at idx makes (a table spreads). */
static int count_value(lua_State *L, int idx, int n, const char *name) {
  int len, i, count = 0;

  if (lua_type(L, idx) != LUA_TTABLE)
    return check_scalar(L, idx, n, name);
  len = (int)lua_objlen(L, idx);
  if (len > 0) {
    for (i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, i);
      count += check_scalar(L, lua_gettop(L), n, name);
      lua_pop(L, 1);
    }
    return count;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    count += check_scalar(L, -2, n, name) + check_scalar(L, -1, n, name);
    lua_pop(L, 1);
  }
  return count;
}

static void put_scalar(lua_State *L, lc__redis *r, int idx) {
  char num[64];
  size_t len;
  const char *s;

  if (lua_type(L, idx) == LUA_TNUMBER) {
    format_number(lua_tonumber(L, idx), num, sizeof(num));
    lc__redis_command_arg(r, num, strlen(num));
    return;
  }
  s = lua_tolstring(L, idx, &len);
  lc__redis_command_arg(r, s, len);
}

static void put_value(lua_State *L, lc__redis *r, int idx) {
  int len, i;

  if (lua_type(L, idx) != LUA_TTABLE) {
    put_scalar(L, r, idx);
    return;
  }
  len = (int)lua_objlen(L, idx);
  if (len > 0) {
    for (i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, i);
      put_scalar(L, r, lua_gettop(L));
      lua_pop(L, 1);
    }
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    put_scalar(L, r, -2);
    put_scalar(L, r, lua_gettop(L));
    lua_pop(L, 1);
  }
}

/* The number of arguments of a command: name and the values at
 * first..last (a bad value raises here, before anything is held). */
static int count_args(lua_State *L, const char *name, int first, int last) {
  int i, argc = 1;

  for (i = first; i <= last; i++)
    argc += count_value(L, i, i - first + 1, name);
  return argc;
}

/* Encodes name and the values at first..last (counted: argc) as one
 * command, into the client's output buffer. */
static int encode(lua_State *L, lc__redis *r, const char *name, size_t len,
                  int argc, int first, int last) {
  int i, err = lc__redis_command_begin(r, argc);

  if (err) {
    lc__redis_command_abort(r);
    return err;
  }
  lc__redis_command_arg(r, name, len);
  for (i = first; i <= last; i++)
    put_value(L, r, i);
  return 0;
}

/* Commands --------------------------------------------------------------------------- */

/* The callback's data: a ref to the function at fn_idx (0: none), or to
 * the running coroutine (which must be one: checked by the caller). */
static intptr_t hold(lua_State *L, int fn_idx, int flags) {
  int ref = LUA_NOREF;

  if (fn_idx != 0) {
    lc__lua_set_ref(L, &ref, fn_idx);
  } else {
    lua_pushthread(L);
    lc__lua_set_ref(L, &ref, -1);
    lua_pop(L, 1);
    flags |= BY_THREAD;
  }
  return ((intptr_t)ref << 2) | flags;
}

/* What a call gives once its command is queued (err 0) or not. */
static int issued(lua_State *L, int err, intptr_t data) {
  if (err) {
    int ref = (int)(data >> 2);
    lc__lua_unref_in(L, &ref);
    return luaL_error(L, "redis: %s", uv_strerror(err));
  }
  return (data & BY_THREAD) ? lua_yield(L, 0) : 0;
}

/* A command on a client that is closed: a callback runs on a later turn
 * (R.setup's later), a caller that waits gets nil, "client closed". */
static int refused(lua_State *L, int fn_idx) {
  if (fn_idx == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "client closed");
    return 2;
  }
  lua_pushlightuserdata(L, (void *)&setup_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, -1, 2);
  lua_pushvalue(L, fn_idx);
  lua_pushliteral(L, "ERR_CLIENT_CLOSED");
  lua_pushliteral(L, "client closed");
  lua_call(L, 3, 0);
  return 0;
}

/* The client at 1 and whether it is open; where its callback is (the last
 * argument when a function, else 0: the caller waits, so it must be in a
 * coroutine). */
static lc__lua_redis *check_call(lua_State *L, const char *what, int *fn_idx,
                                 int *open) {
  lc__lua_redis **box = luaL_checkudata(L, 1, CLIENT_MT);
  int top = lua_gettop(L);

  *fn_idx = top > 1 && lua_type(L, top) == LUA_TFUNCTION ? top : 0;
  *open = *box != NULL && !(*box)->base.closing;
  if (*fn_idx == 0) {
    int main_thread = lua_pushthread(L);
    lua_pop(L, 1);
    if (main_thread)
      luaL_error(L, "redis %s() without a callback waits, so it must run "
                    "inside a coroutine (a request handler, a listener or a "
                    "timer callback), not in the main chunk", what);
  }
  return *box;
}

/* h:call(name, args...[, fn]) */
static int client_call(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  int fn_idx, open, last, argc, err;
  lc__lua_redis *c = check_call(L, name, &fn_idx, &open);
  intptr_t data;

  last = fn_idx ? fn_idx - 1 : lua_gettop(L);
  argc = count_args(L, name, 3, last);
  if (!open)
    return refused(L, fn_idx);
  data = hold(L, fn_idx, 0);
  err = encode(L, c->r, name, len, argc, 3, last);
  if (err == 0)
    err = lc__redis_command_end(c->r, on_command, (void *)data);
  return issued(L, err, data);
}

/* The i-th command of an exec ({name, args...} at 2): checked (r NULL),
 * or encoded and queued (its reply is EXEC's business). */
static int exec_item(lua_State *L, int i, lc__redis *r) {
  int base, m, k, argc, err = 0;
  const char *name;
  size_t len;

  lua_rawgeti(L, 2, i);
  base = lua_gettop(L);
  luaL_checktype(L, base, LUA_TTABLE);
  m = (int)lua_objlen(L, base);
  luaL_checkstack(L, m + 4, "too many arguments");
  for (k = 1; k <= m; k++)
    lua_rawgeti(L, base, k);
  name = luaL_checklstring(L, base + 1, &len);
  argc = count_args(L, name, base + 2, base + m);
  if (r != NULL) {
    err = encode(L, r, name, len, argc, base + 2, base + m);
    if (err == 0)
      err = lc__redis_command_end(r, on_ignored, NULL);
  }
  lua_settop(L, base - 1);
  return err;
}

/* h:exec(commands[, fn]): MULTI, each command ({name, args...}), EXEC,
 * queued together (or refused together); fn or the caller gets EXEC's
 * reply: the list of replies, or nil when a WATCHed key changed. */
static int client_exec(lua_State *L) {
  static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
  static const size_t multi_len[] = {5}, exec_len[] = {4};
  int fn_idx, open, n, i, err = 0;
  lc__lua_redis *c = check_call(L, "exec", &fn_idx, &open);
  intptr_t data;

  luaL_checktype(L, 2, LUA_TTABLE);
  n = (int)lua_objlen(L, 2);
  /* Check every command first: nothing is queued if one is bad. */
  for (i = 1; i <= n; i++)
    exec_item(L, i, NULL);
  if (!open)
    return refused(L, fn_idx);
  data = hold(L, fn_idx, 0);
  if (!lc__redis_can_queue(c->r, (size_t)n + 2))
    /* Refused as a whole: MULTI alone carries the reason to the caller. */
    return issued(L,
                  lc__redis_command_argv(c->r, 1, multi, multi_len, on_command,
                                         (void *)data),
                  data);
  err = lc__redis_command_argv(c->r, 1, multi, multi_len, on_ignored, NULL);
  for (i = 1; err == 0 && i <= n; i++)
    err = exec_item(L, i, c->r);
  if (err == 0)
    err = lc__redis_command_argv(c->r, 1, exec, exec_len, on_command,
                                 (void *)data);
  return issued(L, err, data);
}

/* h:subscribe(kind, names...[, fn]) -> the server's count of
 * subscriptions once every name is confirmed. */
static int client_subscribe(lua_State *L) {
  int kind = (int)luaL_checkinteger(L, 2);
  int fn_idx, open, last, n, i, err;
  lc__lua_redis *c = check_call(L, "subscribe", &fn_idx, &open);
  const char **names;
  size_t *lens;
  intptr_t data;

  last = fn_idx ? fn_idx - 1 : lua_gettop(L);
  n = last - 2;
  for (i = 3; i <= last; i++)
    if (lua_type(L, i) != LUA_TSTRING && lua_type(L, i) != LUA_TNUMBER)
      return arg_error(L, i - 2, "subscribe", "a channel name expected");
  if (kind < LC__REDIS_SUBSCRIBE || kind > LC__REDIS_PUNSUBSCRIBE ||
      (n == 0 && kind <= LC__REDIS_PSUBSCRIBE))
    return luaL_error(L, "subscribe needs at least one channel");
  if (!open)
    return refused(L, fn_idx);
  names = malloc((size_t)(n + 1) * sizeof(*names));
  lens = malloc((size_t)(n + 1) * sizeof(*lens));
  if (names == NULL || lens == NULL) {
    free(names);
    free(lens);
    return luaL_error(L, "out of memory");
  }
  for (i = 0; i < n; i++)
    names[i] = lua_tolstring(L, i + 3, &lens[i]);
  data = hold(L, fn_idx, SUB_REPLY);
  err = lc__redis_subscribe(c->r, kind, n, names, lens, on_command,
                            (void *)data);
  free(names);
  free(lens);
  return issued(L, err, data);
}

static lc__lua_redis *client_of(lua_State *L) {
  lc__lua_redis **box = luaL_checkudata(L, 1, CLIENT_MT);

  return *box != NULL && !(*box)->base.closing ? *box : NULL;
}

static int client_quit(lua_State *L) {
  lc__lua_redis *c = client_of(L);

  if (c != NULL)
    lc__redis_quit(c->r);
  return 0;
}

static int client_close_now(lua_State *L) {
  lc__lua_redis *c = client_of(L);

  if (c != NULL)
    lc__lua_handle_close(&c->base);
  return 0;
}

static int client_set_ref(lua_State *L) {
  lc__lua_redis *c = client_of(L);

  if (c != NULL)
    lc__redis_set_ref(c->r, lua_toboolean(L, 2));
  return 0;
}

static int client_state(lua_State *L) {
  static const char *const names[] = {"?",       "connecting", "ready",
                                      "waiting", "closing",    "closed"};
  lc__lua_redis *c = client_of(L);

  lua_pushstring(L, c != NULL ? names[lc__redis_state(c->r)] : "closed");
  lua_pushinteger(L, c != NULL ? (lua_Integer)lc__redis_subscriptions(c->r)
                               : 0);
  return 2;
}

/* h:stats() -> {commands=, writes=, replies=, connections=} */
static int client_stats(lua_State *L) {
  lc__lua_redis **box = luaL_checkudata(L, 1, CLIENT_MT);
  lc__redis_stats st;

  memset(&st, 0, sizeof(st));
  if (*box != NULL && (*box)->r != NULL)
    lc__redis_get_stats((*box)->r, &st);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)st.commands);
  lua_setfield(L, -2, "commands");
  lua_pushnumber(L, (lua_Number)st.writes);
  lua_setfield(L, -2, "writes");
  lua_pushnumber(L, (lua_Number)st.replies);
  lua_setfield(L, -2, "replies");
  lua_pushnumber(L, (lua_Number)st.connections);
  lua_setfield(L, -2, "connections");
  return 1;
}

/* Events ------------------------------------------------------------------------------ */

static void ev_simple(lc__redis *r, const char *event) {
  lc__lua_handle_emit(lc__redis_data(r), event, 0, 0);
}

static void ev_connect(lc__redis *r) { ev_simple(r, "connect"); }
static void ev_ready(lc__redis *r) { ev_simple(r, "ready"); }
static void ev_end(lc__redis *r) { ev_simple(r, "end"); }

static void ev_error(lc__redis *r, int err, const char *message) {
  lc__lua_redis *c = lc__redis_data(r);
  lua_State *L = c->base.rt->L;

  if (L == NULL || c->base.rt->core.exiting)
    return;
  push_error_object(L, c, err, message);
  lc__lua_handle_emit(&c->base, "error", 1, 0);
}

static void ev_reconnecting(lc__redis *r, uint64_t delay, unsigned attempt) {
  lc__lua_redis *c = lc__redis_data(r);
  lua_State *L = c->base.rt->L;

  if (L == NULL || c->base.rt->core.exiting)
    return;
  lua_pushnumber(L, (lua_Number)delay);
  lua_pushnumber(L, attempt);
  lc__lua_handle_emit(&c->base, "reconnecting", 2, 0);
}

static void ev_message(lc__redis *r, const lc__redis_message *m) {
  lc__lua_redis *c = lc__redis_data(r);
  lua_State *L = c->base.rt->L;

  if (L == NULL || c->base.rt->core.exiting)
    return;
  lua_pushlstring(L, m->channel, m->channel_len);
  lua_pushlstring(L, m->data, m->len);
  if (m->pattern != NULL) {
    lua_pushlstring(L, m->pattern, m->pattern_len);
    lc__lua_handle_emit(&c->base, "pmessage", 3, 0);
  } else {
    lc__lua_handle_emit(&c->base, "message", 2, 0);
  }
}

static void ev_close(lc__redis *r) {
  lc__lua_redis *c = lc__redis_data(r);

  c->r = NULL;
  lc__lua_unref(c->base.rt, &c->spawn_ref);
  lc__lua_unref(c->base.rt, &c->later_ref);
  lc__lua_unref(c->base.rt, &c->error_ref);
  lc__lua_handle_release(&c->base);
}

static const lc__redis_events client_events = {
    ev_connect, ev_ready, ev_error, ev_end, ev_reconnecting, ev_message,
    ev_close};

/* Making clients ---------------------------------------------------------------------- */

static uint64_t opt_ms(lua_State *L, int idx, const char *key, uint64_t def) {
  lua_Number v;

  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return def;
  }
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v >= 0) || v > 1e15)
    luaL_error(L, "redis option %s must be a number >= 0", key);
  return (uint64_t)v;
}

static const char *opt_string(lua_State *L, int idx, const char *key) {
  const char *s;

  lua_getfield(L, idx, key);
  s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the table keeps the string alive */
  return s;
}

/* R.new(client, options) -> handle */
static int redis_new(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__redis_options o;
  lc__lua_redis *c;
  int err;

  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lc__redis_options_init(&o);
  o.host = opt_string(L, 2, "host");
  o.port = (int)opt_ms(L, 2, "port", 6379);
  o.db = (int)opt_ms(L, 2, "db", 0);
  o.username = opt_string(L, 2, "username");
  o.password = opt_string(L, 2, "password");
  o.name = opt_string(L, 2, "name");
  o.connect_timeout_ms = opt_ms(L, 2, "connectTimeout", o.connect_timeout_ms);
  o.command_timeout_ms = opt_ms(L, 2, "commandTimeout", o.command_timeout_ms);
  o.retry_delay_ms = opt_ms(L, 2, "retryDelay", o.retry_delay_ms);
  o.max_retry_delay_ms = opt_ms(L, 2, "maxRetryDelay", o.max_retry_delay_ms);
  o.max_offline = (size_t)opt_ms(L, 2, "maxOfflineQueue", o.max_offline);
  o.max_reply = (size_t)opt_ms(L, 2, "maxReplySize", o.max_reply);
  if (o.host == NULL)
    o.host = "127.0.0.1";
  lua_pushlightuserdata(L, (void *)&setup_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (!lua_istable(L, -1))
    return luaL_error(L, "luacluster.redis: setup() was not called");
  c = lc__lua_handle_new(L, rt, &client_type, sizeof(*c));
  c->spawn_ref = c->later_ref = c->error_ref = LUA_NOREF;
  lua_rawgeti(L, -2, 1);
  lc__lua_set_ref(L, &c->spawn_ref, -1);
  lua_rawgeti(L, -3, 2);
  lc__lua_set_ref(L, &c->later_ref, -1);
  lua_rawgeti(L, -4, 3);
  lc__lua_set_ref(L, &c->error_ref, -1);
  lua_pop(L, 3);
  err = lc__redis_new(&rt->core, &o, &client_events, c, &c->r);
  if (err) {
    lc__lua_unref_in(L, &c->spawn_ref);
    lc__lua_unref_in(L, &c->later_ref);
    lc__lua_unref_in(L, &c->error_ref);
    lc__lua_handle_release(&c->base);
    return luaL_error(L, "redis: %s", err == UV_EINVAL
                                          ? "bad options (host, port, db, "
                                            "timeouts, maxReplySize)"
                                          : uv_strerror(err));
  }
  lc__lua_handle_pin(L, &c->base, 1);
  return 1;
}

/* R.setup(spawn, later, ErrorMT): what the callbacks need. */
static int redis_setup(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_pushlightuserdata(L, (void *)&setup_key);
  lua_createtable(L, 3, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, 3);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return 0;
}

int lc__open_redis(lua_State *L) {
  static const luaL_Reg methods[] = {{"call", client_call},
                                     {"exec", client_exec},
                                     {"subscribe", client_subscribe},
                                     {"quit", client_quit},
                                     {"close", client_close_now},
                                     {"set_ref", client_set_ref},
                                     {"state", client_state},
                                     {"stats", client_stats},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"new", redis_new}, {"setup", redis_setup}, {NULL, NULL}};
  lc_runtime *rt = lc__lua_runtime_of(L);

  lc__lua_handle_class(L, rt, &client_type, methods);
  lua_newtable(L);
  lc__lua_register(L, rt, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  /* The methods, for lua/redis.lua to call without a lookup each time. */
  luaL_getmetatable(L, CLIENT_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "methods");
  lua_pop(L, 1);
  return 1;
}
