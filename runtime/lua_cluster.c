/*
 * lua_cluster.c - the C half of lua/cluster.lua and process.send().
 *
 * In the master, core.fork() starts a worker through the supervisor and
 * returns a WorkerHandle userdata; what happens to the worker reaches Lua as
 * handler(worker_object, event, ...). In a worker, core.send() writes to the
 * master and the channel's events reach Lua as handler(event, ...).
 *
 * Messages are JSON-encoded here, in the sender, so an unencodable value is
 * a Lua error at the send() that tried it. Send callbacks run once the bytes
 * are written, in order, or with an error when the channel ends first.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WORKER_MT "luacluster.WorkerHandle"

/* Send callbacks, waiting for the channel to write up to their offset. */
typedef struct lc__sendq {
  struct {
    uint64_t offset;
    int ref;
  } *items;
  size_t head, len, cap;
} lc__sendq;

static int sendq_push(lua_State *L, lc__sendq *q, uint64_t offset, int idx) {
  size_t i;

  if (q->head + q->len == q->cap) {
    if (q->head > 0) {
      memmove(q->items, q->items + q->head, q->len * sizeof(*q->items));
      q->head = 0;
    } else {
      size_t cap = q->cap ? q->cap * 2 : 8;
      void *p = realloc(q->items, cap * sizeof(*q->items));
      if (p == NULL)
        return UV_ENOMEM;
      q->items = p;
      q->cap = cap;
    }
  }
  i = q->head + q->len++;
  q->items[i].offset = offset;
  lua_pushvalue(L, idx);
  q->items[i].ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Runs the callbacks whose bytes are written (err == NULL), or all of them
 * with err. */
static void sendq_fire(lua_State *L, lc__sendq *q, uint64_t written,
                       const char *err) {
  while (q->len > 0 && (err != NULL || q->items[q->head].offset <= written)) {
    int ref = q->items[q->head].ref;
    q->head++;
    q->len--;
    lc__lua_push_ref(L, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (err != NULL)
      lua_pushstring(L, err);
    else
      lua_pushnil(L);
    lc__lua_call(L, 1, 0);
  }
  if (q->len == 0)
    q->head = 0;
}

static void sendq_free(lua_State *L, lc__sendq *q) {
  while (q->len > 0) {
    if (L != NULL)
      luaL_unref(L, LUA_REGISTRYINDEX, q->items[q->head].ref);
    q->head++;
    q->len--;
  }
  free(q->items);
  memset(q, 0, sizeof(*q));
}

/* Encodes the value at idx; raises a Lua error naming why it cannot. */
static const char *encode_message(lua_State *L, int idx, size_t *len) {
  const char *json;

  if (lc__json_encode(L, idx, &json, len) != 0)
    luaL_error(L, "cannot send message: %s", lua_tostring(L, -1));
  return json;
}

static void send_error(lua_State *L, int err, size_t len) {
  if (err == UV_EMSGSIZE)
    luaL_error(L, "cannot send message: %d bytes is over the %d-byte limit",
               (int)len, (int)lc__rt->opts.max_message_size);
  luaL_error(L, "cannot send message: %s", uv_strerror(err));
}

/* Master side --------------------------------------------------------------- */

typedef struct lc__lworker {
  lc__worker *w;
  int obj_ref; /* the Lua Worker object, while the worker lives */
  lc__sendq sendq;
} lc__lworker;

static int cluster_handler_ref = LUA_NOREF;

/* Pushes handler, worker object; returns 0 if there is no one to tell. */
static int push_worker_event(lc__worker *w, const char *event) {
  lc__lworker *lw = w->data;
  lua_State *L = lc__rt->L;

  if (lw == NULL || lw->obj_ref == LUA_NOREF || lc__rt->exiting)
    return 0;
  lc__lua_push_ref(L, cluster_handler_ref);
  lc__lua_push_ref(L, lw->obj_ref);
  lua_pushstring(L, event);
  return 1;
}

static void lw_on_online(lc__worker *w) {
  if (push_worker_event(w, "online"))
    lc__lua_call(lc__rt->L, 2, 0);
}

static void lw_on_listening(lc__worker *w, const char *addr, int port) {
  lua_State *L = lc__rt->L;

  if (!push_worker_event(w, "listening"))
    return;
  lua_pushstring(L, addr);
  lua_pushinteger(L, port);
  lc__lua_call(L, 4, 0);
}

static void lw_on_message(lc__worker *w, const char *json, size_t len) {
  lua_State *L = lc__rt->L;

  if (!push_worker_event(w, "message"))
    return;
  if (lc__json_decode(L, json, len) != 0) {
    lc__log(LC__LOG_WARN, "worker %d sent a message that is not JSON (%s)",
            w->id, lua_tostring(L, -1));
    lua_pop(L, 4);
    lc__channel_close(&w->channel, UV_EPROTO, "message is not valid JSON");
    return;
  }
  lc__lua_call(L, 3, 0);
}

static void lw_on_written(lc__worker *w, uint64_t written) {
  lc__lworker *lw = w->data;

  if (lw != NULL && lw->sendq.len > 0)
    sendq_fire(lc__rt->L, &lw->sendq, written, NULL);
}

static void lw_on_disconnect(lc__worker *w) {
  lc__lworker *lw = w->data;

  if (lw != NULL && lw->sendq.len > 0)
    sendq_fire(lc__rt->L, &lw->sendq, 0, "channel closed");
  if (push_worker_event(w, "disconnect"))
    lc__lua_call(lc__rt->L, 2, 0);
}

static void lw_on_error(lc__worker *w, int err, const char *reason) {
  lua_State *L = lc__rt->L;

  if (!push_worker_event(w, "error"))
    return;
  lua_pushfstring(L, "worker %d: %s (%s)", w->id, reason, uv_err_name(err));
  lc__lua_call(L, 3, 0);
}

static void lw_on_exit(lc__worker *w, int64_t code, int signum) {
  lc__lworker *lw = w->data;
  lua_State *L = lc__rt->L;

  if (push_worker_event(w, "exit")) {
    if (signum != 0) {
      lua_pushnil(L);
      lua_pushstring(L, lc__signal_name(signum));
    } else {
      lua_pushnumber(L, (lua_Number)code);
      lua_pushnil(L);
    }
    lc__lua_call(L, 4, 0);
  }
  /* Nothing more will happen to it: Lua may let it go. */
  if (lw != NULL && L != NULL)
    lc__lua_unref(L, &lw->obj_ref);
}

static const lc__worker_events lua_worker_events = {
    lw_on_online,  lw_on_listening, lw_on_message, lw_on_disconnect,
    lw_on_exit,    lw_on_error,     NULL,          lw_on_written};

static lc__lworker *check_lworker(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, WORKER_MT);
}

static lc__worker *check_worker(lua_State *L, int idx) {
  lc__lworker *lw = check_lworker(L, idx);

  if (lw->w == NULL)
    luaL_error(L, "worker handle is released");
  return lw->w;
}

/* Copies a Lua array of strings; NULL on a non-table. */
static char **string_array(lua_State *L, int idx, int *count) {
  char **out;
  int n, i;

  *count = 0;
  if (!lua_istable(L, idx))
    return NULL;
  n = (int)lua_objlen(L, idx);
  out = calloc((size_t)n + 1, sizeof(char *));
  for (i = 0; out != NULL && i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    out[i] = strdup(luaL_optstring(L, -1, ""));
    lua_pop(L, 1);
  }
  *count = n;
  return out;
}

/* {NAME = value} -> "NAME=value" strings. */
static char **env_array(lua_State *L, int idx) {
  char **out;
  size_t n = 0, i = 0;

  if (!lua_istable(L, idx))
    return NULL;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    n++;
    lua_pop(L, 1);
  }
  out = calloc(n + 1, sizeof(char *));
  if (out == NULL)
    return NULL;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && i < n &&
        (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ||
         lua_type(L, -1) == LUA_TBOOLEAN)) {
      const char *k = lua_tostring(L, -2);
      const char *v = lua_type(L, -1) == LUA_TBOOLEAN
                          ? (lua_toboolean(L, -1) ? "true" : "false")
                          : lua_tostring(L, -1);
      out[i] = malloc(strlen(k) + strlen(v) + 2);
      if (out[i] != NULL)
        sprintf(out[i++], "%s=%s", k, v);
    }
    lua_pop(L, 1);
  }
  return out;
}

static void free_array(char **a) {
  size_t i;

  if (a == NULL)
    return;
  for (i = 0; a[i] != NULL; i++)
    free(a[i]);
  free(a);
}

/* core.fork({exec=, args=, env=, silent=}, worker_object) -> WorkerHandle */
static int core_fork(lua_State *L) {
  lc_runtime *rt = lc__rt;
  lc__worker_spec spec;
  lc__lworker *lw;
  lc__worker *w;
  int err;

  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (rt->sup == NULL)
    return luaL_error(L, "cluster.fork() is only for the master");

  memset(&spec, 0, sizeof(spec));
  lua_getfield(L, 1, "exec");
  spec.exec = luaL_optstring(L, -1, rt->script);
  lua_getfield(L, 1, "args");
  spec.args = string_array(L, lua_gettop(L), &spec.nargs);
  lua_getfield(L, 1, "env");
  spec.env = env_array(L, lua_gettop(L));
  lua_getfield(L, 1, "silent");
  spec.silent = lua_toboolean(L, -1);
  spec.instance = -1;

  lw = lua_newuserdata(L, sizeof(*lw));
  memset(lw, 0, sizeof(*lw));
  lw->obj_ref = LUA_NOREF;
  luaL_getmetatable(L, WORKER_MT);
  lua_setmetatable(L, -2);

  err = lc__worker_spawn(rt, &spec, &lua_worker_events, lw, &w);
  free_array(spec.args);
  free_array(spec.env);
  if (err)
    return luaL_error(L, "cannot fork a worker: %s", uv_strerror(err));
  lw->w = w;
  lua_pushvalue(L, 2);
  lw->obj_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static int worker_gc(lua_State *L) {
  lc__lworker *lw = lua_touserdata(L, 1);

  sendq_free(L, &lw->sendq);
  lc__lua_unref(L, &lw->obj_ref);
  if (lw->w != NULL) {
    lw->w->data = NULL;
    lc__worker_release(lw->w);
    lw->w = NULL;
  }
  return 0;
}

/* handle:send(value[, fn(err)]) -> true while the backlog is small */
static int worker_send(lua_State *L) {
  lc__lworker *lw = check_lworker(L, 1);
  lc__worker *w = check_worker(L, 1);
  size_t len;
  const char *json;
  int err;

  luaL_checkany(L, 2);
  json = encode_message(L, 2, &len);
  err = lc__worker_send(w, json, len);
  if (err)
    send_error(L, err, len);
  if (lua_isfunction(L, 3)) {
    sendq_push(L, &lw->sendq, w->channel.queued, 3);
    lc__channel_kick(&w->channel);
  }
  lua_pushboolean(L, lc__channel_backlog(&w->channel) < 64 * 1024 * 1024);
  return 1;
}

static int worker_kill(lua_State *L) {
  lc__worker *w = check_worker(L, 1);
  int signum = SIGTERM;

  if (lua_type(L, 2) == LUA_TNUMBER)
    signum = (int)lua_tointeger(L, 2);
  else if (!lua_isnoneornil(L, 2) &&
           (signum = lc__signal_number(luaL_checkstring(L, 2))) == 0)
    return luaL_argerror(L, 2, "unknown signal");
  lua_pushboolean(L, lc__worker_kill(w, signum) == 0);
  return 1;
}

static int worker_disconnect(lua_State *L) {
  lc__worker_disconnect(check_worker(L, 1));
  return 0;
}

static int worker_info(lua_State *L) {
  lc__worker *w = check_worker(L, 1);

  lua_createtable(L, 0, 8);
  lua_pushinteger(L, w->id);
  lua_setfield(L, -2, "id");
  lua_pushinteger(L, w->pid);
  lua_setfield(L, -2, "pid");
  lua_pushstring(L, lc__worker_state_name(w->state));
  lua_setfield(L, -2, "state");
  lua_pushboolean(L, lc__worker_connected(w));
  lua_setfield(L, -2, "connected");
  lua_pushboolean(L, w->dead);
  lua_setfield(L, -2, "dead");
  lua_pushboolean(L, w->exited_after_disconnect);
  lua_setfield(L, -2, "exitedAfterDisconnect");
  return 1;
}

/* Worker side --------------------------------------------------------------- */

static int channel_handler_ref = LUA_NOREF;
static lc__sendq worker_sendq;

void lc__lua_worker_message(lc_runtime *rt, const char *json, size_t len) {
  lua_State *L = rt->L;

  if (rt->exiting)
    return;
  if (lc__json_decode(L, json, len) != 0) {
    lc__log(LC__LOG_ERROR, "master sent a message that is not JSON (%s)",
            lua_tostring(L, -1));
    lua_pop(L, 1);
    lc__wside_fail(rt, "message is not valid JSON");
    return;
  }
  lc__lua_push_ref(L, channel_handler_ref);
  lua_pushliteral(L, "message");
  lua_pushvalue(L, -3);
  lua_remove(L, -4);
  lc__lua_call(L, 2, 0);
}

void lc__lua_worker_written(lc_runtime *rt, uint64_t written) {
  if (worker_sendq.len > 0 && !rt->exiting)
    sendq_fire(rt->L, &worker_sendq, written, NULL);
}

void lc__lua_worker_disconnect(lc_runtime *rt) {
  lua_State *L = rt->L;

  if (rt->exiting)
    return;
  if (worker_sendq.len > 0)
    sendq_fire(L, &worker_sendq, 0, "channel closed");
  lc__lua_push_ref(L, channel_handler_ref);
  lua_pushliteral(L, "disconnect");
  lc__lua_call(L, 1, 0);
}

/* core.send(value[, fn(err)]): worker -> master */
static int core_send(lua_State *L) {
  lc_runtime *rt = lc__rt;
  size_t len;
  const char *json;
  int err;

  luaL_checkany(L, 1);
  if (!lc__wside_connected(rt))
    return luaL_error(L, "cannot send message: not connected to a master");
  json = encode_message(L, 1, &len);
  err = lc__wside_send(rt, json, len);
  if (err)
    send_error(L, err, len);
  if (lua_isfunction(L, 2)) {
    sendq_push(L, &worker_sendq, lc__wside_queued(rt), 2);
    lc__wside_kick(rt);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int core_disconnect(lua_State *L) {
  (void)L;
  lc__wside_disconnect(lc__rt);
  return 0;
}

static int core_connected(lua_State *L) {
  lua_pushboolean(L, lc__wside_connected(lc__rt) &&
                         !lc__wside_disconnecting(lc__rt));
  return 1;
}

static int set_cluster_handler(lua_State *L) {
  return lc__lua_set_handler(L, &cluster_handler_ref);
}

static int set_channel_handler(lua_State *L) {
  return lc__lua_set_handler(L, &channel_handler_ref);
}

static int core_sched_policy(lua_State *L) {
  lc_runtime *rt = lc__rt;

  if (!lua_isnoneornil(L, 1)) {
    int sched = lc__sched_from_name(luaL_checkstring(L, 1));
    if (sched == 0)
      return luaL_argerror(L, 1,
                           "expected \"rr\", \"none\", \"reuseport\" or \"sticky\"");
    rt->sched = sched;
  }
  lua_pushstring(L, lc__sched_name(rt->sched));
  return 1;
}

void lc__core_cluster(lua_State *L) {
  static const luaL_Reg worker_methods[] = {{"send", worker_send},
                                            {"kill", worker_kill},
                                            {"disconnect", worker_disconnect},
                                            {"info", worker_info},
                                            {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"fork", core_fork},
      {"send", core_send},
      {"disconnect", core_disconnect},
      {"connected", core_connected},
      {"set_cluster_handler", set_cluster_handler},
      {"set_channel_handler", set_channel_handler},
      {"sched_policy", core_sched_policy},
      {NULL, NULL}};

  if (luaL_newmetatable(L, WORKER_MT)) {
    lua_newtable(L);
    luaL_register(L, NULL, worker_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, worker_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_register(L, NULL, fns);
}

void lc__lua_cluster_close(lua_State *L) { sendq_free(L, &worker_sendq); }
