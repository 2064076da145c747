/*
 * lua_cluster.c - the C half of lua/cluster.lua and process.send().
 *
 * In the master, core.fork() starts a worker through the supervisor and
 * returns a WorkerHandle userdata; what happens to the worker reaches Lua as
 * handler(worker_object, event, ...). In a worker, core.send() writes to the
 * master and the channel's events reach Lua as handler(event, ...).
 *
 * Messages are encoded here, in the sender (lua_message.c), so a value that
 * cannot cross is a Lua error at the send() that tried it. Send callbacks
 * run once the bytes are written, in order, or with an error when the
 * channel ends first.
 *
 * Received messages are decoded as they come and handed to Lua together,
 * "messages"(list, n), once the frames of a read are through (the core says
 * when, and before anything else the peer's frames cause): one call into
 * Lua for many messages, each still emitted on its own and in order.
 *
 * Sends are bounded: send() returns false once more than SEND_HIGH_WATER
 * bytes wait to be written, and "drain" follows when all of them are (on
 * the worker object in the master, on process in a worker); a send that
 * finds SEND_HARD_CAP bytes waiting fails with an error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "lua_binding.h"
#include "supervisor.h"
#include "worker_link.h"

#define SEND_HIGH_WATER (1024 * 1024)
#define SEND_HARD_CAP (64 * 1024 * 1024)


/* Messages decoded and not yet given to Lua: a table of them. */
typedef struct lc__batch {
  int ref;
  int n;
} lc__batch;

/* Adds the value on top (popped) to the batch. */
static void batch_add(lua_State *L, lc__batch *b) {
  if (b->ref == LUA_NOREF) {
    lua_createtable(L, 16, 1);
    b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
  lua_insert(L, -2);
  lua_rawseti(L, -2, ++b->n);
  lua_pop(L, 1);
}

/* Emits "messages"(list, n) to the object at obj_ref. The Lua side notes
 * in list.next how far it got, so after a listener's error (reported as
 * uncaught) the rest still arrive if the process goes on. */
static void batch_flush(lc_runtime *rt, lc__batch *b, int obj_ref) {
  lua_State *L = rt->L;
  int ref = b->ref, n = b->n, next;

  b->ref = LUA_NOREF;
  b->n = 0;
  if (ref == LUA_NOREF || L == NULL)
    return;
  while (!rt->core.exiting) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushinteger(L, n);
    if (lc__lua_emit(rt, obj_ref, "messages", 2, 0) == 0)
      break;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_getfield(L, -1, "next");
    next = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (next == 0 || next > n)
      break;
  }
  if (rt->L != NULL)
    luaL_unref(rt->L, LUA_REGISTRYINDEX, ref);
}

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
static void sendq_fire(lc_runtime *rt, lc__sendq *q, uint64_t written,
                       const char *err) {
  lua_State *L = rt->L;

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
    lc__lua_call(rt, 1, 0);
  }
  if (q->len == 0)
    q->head = 0;
}

static void sendq_free(lc_runtime *rt, lc__sendq *q) {
  while (q->len > 0) {
    lc__lua_unref(rt, &q->items[q->head].ref);
    q->head++;
    q->len--;
  }
  free(q->items);
  memset(q, 0, sizeof(*q));
}

/* Refuses a send while the hard cap's worth is waiting to be written to
 * worker `id` (0: the master). */
void lc__lua_check_backlog(lua_State *L, uint64_t backlog, int id) {
  char why[200], to[32];

  if (backlog < SEND_HARD_CAP)
    return;
  if (id > 0)
    snprintf(to, sizeof(to), "worker %d", id);
  else
    snprintf(to, sizeof(to), "the master");
  snprintf(why, sizeof(why),
           "cannot send message: %llu bytes already wait to be written to %s "
           "(the limit is %d; wait for \"drain\")",
           (unsigned long long)backlog, to, SEND_HARD_CAP);
  luaL_error(L, "%s", why);
}

void lc__lua_send_error(lua_State *L, int err, size_t len) {
  char why[160];

  if (err == UV_EMSGSIZE)
    snprintf(why, sizeof(why),
             "cannot send message: %zu bytes is over the %zu-byte limit", len,
             (size_t)lc__lua_rt(L)->core.opts.max_message_size);
  else
    snprintf(why, sizeof(why), "cannot send message: %s", uv_strerror(err));
  luaL_error(L, "%s", why);
}

/* Master side --------------------------------------------------------------- */

typedef struct lc__lua_worker {
  lc__lua_handle base; /* pinned: the Lua Worker object, while it lives */
  lc__worker *w;
  lc__sendq sendq;
  lc__batch batch;
  int want_drain; /* a send returned false: "drain" once all is written */
} lc__lua_worker;

/* The Lua side let go of the handle: so does the binding, and the core's
 * worker goes once nothing else holds it. */
static void worker_close(lc__lua_handle *h) {
  lc__lua_worker *lw = (lc__lua_worker *)h;

  sendq_free(h->rt, &lw->sendq);
  lc__lua_unref(h->rt, &lw->batch.ref);
  if (lw->w != NULL) {
    lw->w->data = NULL;
    lc__worker_release(lw->w);
  }
  lc__lua_handle_release(h);
}

static const lc__lua_type worker_type = {"luacluster.Worker", worker_close};

/* The binding object of w, or NULL once Lua let go of it. */
static lc__lua_worker *lua_worker(lc__worker *w) { return w->data; }

static void worker_emit(lc__worker *w, const char *event, int nargs) {
  lc__lua_worker *lw = lua_worker(w);

  if (lw != NULL)
    lc__lua_handle_emit(&lw->base, event, nargs, 0);
}

static void worker_on_online(lc__worker *w) { worker_emit(w, "online", 0); }

static void worker_on_listening(lc__worker *w, const char *addr, int port) {
  lc__lua_worker *lw = lua_worker(w);

  if (lw == NULL || lw->base.rt->L == NULL)
    return;
  lua_pushstring(lw->base.rt->L, addr);
  lua_pushinteger(lw->base.rt->L, port);
  worker_emit(w, "listening", 2);
}

static void worker_on_message(lc__worker *w, int type, const char *data,
                              size_t len) {
  lc__lua_worker *lw = lua_worker(w);
  lc_runtime *rt;

  if (lw == NULL || lw->base.rt->core.exiting)
    return;
  rt = lw->base.rt;
  if (lc__message_decode(rt, rt->L, type, data, len) != 0) {
    lc__log(LC__LOG_WARN, "worker %d sent a message that does not decode (%s)",
            w->id, lua_tostring(rt->L, -1));
    lua_pop(rt->L, 1);
    lc__channel_close(&w->channel, UV_EPROTO, "message does not decode");
    return;
  }
  batch_add(rt->L, &lw->batch);
}

static void worker_on_bus(lc__worker *w, const lc__bus_record *rec) {
  lc__lua_worker *lw = lua_worker(w);
  lc_runtime *rt;

  if (lw == NULL || lw->base.rt->core.exiting) {
    if (rec->op == LC__BUS_REQUEST)
      lc__bus_refuse(w, rec->id); /* no one here to answer it */
    return;
  }
  rt = lw->base.rt;
  if (lc__lua_bus_push(rt, rt->L, rec) != 0) {
    lc__log(LC__LOG_WARN, "worker %d sent a message that does not decode (%s)",
            w->id, lua_tostring(rt->L, -1));
    lua_pop(rt->L, 1);
    lc__channel_close(&w->channel, UV_EPROTO, "message does not decode");
    return;
  }
  batch_add(rt->L, &lw->batch);
}

static void worker_on_messages_end(lc__worker *w) {
  lc__lua_worker *lw = lua_worker(w);

  if (lw != NULL && lw->batch.n > 0)
    batch_flush(lw->base.rt, &lw->batch, lw->base.self_ref);
}

static void worker_on_written(lc__worker *w, uint64_t written) {
  lc__lua_worker *lw = lua_worker(w);

  if (lw == NULL)
    return;
  if (lw->sendq.len > 0)
    sendq_fire(lw->base.rt, &lw->sendq, written, NULL);
  /* A callback may have let go of the worker object. */
  lw = lua_worker(w);
  if (lw != NULL && lw->want_drain && lc__channel_backlog(&w->channel) == 0) {
    lw->want_drain = 0;
    worker_emit(w, "drain", 0);
  }
}

static void worker_on_disconnect(lc__worker *w) {
  lc__lua_worker *lw = lua_worker(w);

  if (lw != NULL && lw->sendq.len > 0)
    sendq_fire(lw->base.rt, &lw->sendq, 0, "channel closed");
  worker_emit(w, "disconnect", 0);
}

static void worker_on_error(lc__worker *w, int err, const char *reason) {
  lc__lua_worker *lw = lua_worker(w);

  if (lw == NULL || lw->base.rt->L == NULL)
    return;
  lua_pushfstring(lw->base.rt->L, "worker %d: %s (%s)", w->id, reason,
                  uv_err_name(err));
  worker_emit(w, "error", 1);
}

static void worker_on_exit(lc__worker *w, int64_t code, int signum) {
  lc__lua_worker *lw = lua_worker(w);
  lua_State *L;

  if (lw == NULL || lw->base.rt->L == NULL)
    return;
  L = lw->base.rt->L;
  if (signum != 0) {
    lua_pushnil(L);
    lua_pushstring(L, lc__signal_name(signum));
  } else {
    lua_pushnumber(L, (lua_Number)code);
    lua_pushnil(L);
  }
  worker_emit(w, "exit", 2);
  /* Nothing more will happen to it: Lua may let it go. */
  lc__lua_handle_unpin(&lw->base);
}

static const lc__worker_events lua_worker_events = {
    worker_on_online,       worker_on_listening, worker_on_message,
    worker_on_disconnect,   worker_on_exit,      worker_on_error,
    NULL,                   worker_on_written,   worker_on_messages_end,
    worker_on_bus};

static lc__lua_worker *check_lua_worker(lua_State *L, int idx) {
  return lc__lua_handle_check(L, idx, &worker_type);
}

static lc__worker *check_worker(lua_State *L, int idx) {
  return check_lua_worker(L, idx)->w;
}

lc__worker *lc__lua_check_worker(lua_State *L, int idx) {
  return check_worker(L, idx);
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

/* core.fork({exec=, args=, env=, silent=}, worker_object) -> Worker handle;
 * the worker object hears the worker's events. */
static int core_fork(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__worker_spec spec;
  lc__lua_worker *lw;
  int err;

  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (rt->core.sup == NULL)
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

  lw = lc__lua_handle_new(L, rt, &worker_type, sizeof(*lw));
  lw->batch.ref = LUA_NOREF;
  err = lc__worker_spawn(&rt->core, &spec, &lua_worker_events, lw, &lw->w);
  free_array(spec.args);
  free_array(spec.env);
  if (err)
    return luaL_error(L, "cannot fork a worker: %s", uv_strerror(err));
  lc__lua_handle_pin(L, &lw->base, 2);
  return 1;
}

/* handle:send(value[, fn(err)]) -> false once the backlog is past the
 * high-water mark ("drain" follows) */
static int worker_send(lua_State *L) {
  lc__lua_worker *lw = check_lua_worker(L, 1);
  lc__worker *w = lw->w;
  lc__lua_msg m;
  int err, below;

  luaL_checkany(L, 2);
  lc__lua_check_backlog(L, lc__channel_backlog(&w->channel), w->id);
  lc__message_encode(L, lc__lua_rt(L), 2, &m);
  err = lc__worker_send(w, m.type, m.data, m.len, m.release, m.arg);
  if (err) {
    lc__message_unkeep(&m);
    lc__lua_send_error(L, err, m.len);
  }
  if (lua_isfunction(L, 3)) {
    sendq_push(L, &lw->sendq, w->channel.queued, 3);
    lc__channel_kick(&w->channel);
  }
  below = lc__channel_backlog(&w->channel) <= SEND_HIGH_WATER;
  if (!below)
    lw->want_drain = 1;
  lua_pushboolean(L, below);
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

/* A worker's channel, as Lua sees it: events go to cluster.worker. */
struct lc__lua_link {
  lc_runtime *rt;
  lc__sendq sendq;
  lc__batch batch;
  int want_drain; /* a send returned false: "drain" once all is written */
};

static void link_on_message(void *arg, int type, const char *data,
                            size_t len) {
  lc__lua_link *ll = arg;
  lc_runtime *rt = ll->rt;
  lua_State *L = rt->L;

  if (lc__message_decode(rt, L, type, data, len) != 0) {
    lc__log(LC__LOG_ERROR, "master sent a message that does not decode (%s)",
            lua_tostring(L, -1));
    lua_pop(L, 1);
    lc__link_fail(&rt->core, "message does not decode");
    return;
  }
  batch_add(L, &ll->batch);
}

static void link_on_bus(void *arg, const lc__bus_record *rec) {
  lc__lua_link *ll = arg;
  lc_runtime *rt = ll->rt;
  lua_State *L = rt->L;

  if (lc__lua_bus_push(rt, L, rec) != 0) {
    lc__log(LC__LOG_ERROR, "master sent a message that does not decode (%s)",
            lua_tostring(L, -1));
    lua_pop(L, 1);
    lc__link_fail(&rt->core, "message does not decode");
    return;
  }
  batch_add(L, &ll->batch);
}

static void link_on_messages_end(void *arg) {
  lc__lua_link *ll = arg;

  if (ll->batch.n > 0)
    batch_flush(ll->rt, &ll->batch, ll->rt->worker_ref);
}

static void link_on_written(void *arg, uint64_t written) {
  lc__lua_link *ll = arg;
  lc_runtime *rt = ll->rt;

  if (ll->sendq.len > 0)
    sendq_fire(rt, &ll->sendq, written, NULL);
  if (rt->link == ll && ll->want_drain && lc__link_backlog(&rt->core) == 0) {
    ll->want_drain = 0;
    lc__lua_emit(rt, rt->worker_ref, "drain", 0, 0);
  }
}

static void link_on_disconnect(void *arg) {
  lc__lua_link *ll = arg;

  if (ll->sendq.len > 0)
    sendq_fire(ll->rt, &ll->sendq, 0, "channel closed");
  lc__lua_emit(ll->rt, ll->rt->worker_ref, "disconnect", 0, 0);
}

static const lc__link_events lua_link_events = {
    link_on_message, link_on_written, link_on_disconnect,
    link_on_messages_end, link_on_bus};

static void link_free(void *arg) {
  lc_runtime *rt = arg;

  lc__link_set_events(&rt->core, NULL, NULL);
  sendq_free(rt, &rt->link->sendq);
  lc__lua_unref(rt, &rt->link->batch.ref);
  free(rt->link);
  rt->link = NULL;
}

int lc__lua_link_open(lc_runtime *rt) {
  rt->link = calloc(1, sizeof(*rt->link));
  if (rt->link == NULL)
    return UV_ENOMEM;
  rt->link->rt = rt;
  rt->link->batch.ref = LUA_NOREF;
  lc__link_set_events(&rt->core, &lua_link_events, rt->link);
  return lc__core_on_close(&rt->core, link_free, rt);
}

/* core.send(value[, fn(err)]): worker -> master; false once the backlog is
 * past the high-water mark ("drain" follows) */
static int core_send(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__lua_msg m;
  int err;

  luaL_checkany(L, 1);
  if (!lc__link_connected(&rt->core) || rt->link == NULL)
    return luaL_error(L, "cannot send message: not connected to a master");
  lc__lua_check_backlog(L, lc__link_backlog(&rt->core), 0);
  lc__message_encode(L, rt, 1, &m);
  err = lc__link_send(&rt->core, m.type, m.data, m.len, m.release, m.arg);
  if (err) {
    lc__message_unkeep(&m);
    lc__lua_send_error(L, err, m.len);
  }
  if (lua_isfunction(L, 2)) {
    sendq_push(L, &rt->link->sendq, lc__link_queued(&rt->core), 2);
    lc__link_kick(&rt->core);
  }
  return lc__lua_link_pushed(L, rt);
}

int lc__lua_link_pushed(lua_State *L, lc_runtime *rt) {
  int below = lc__link_backlog(&rt->core) <= SEND_HIGH_WATER;

  if (!below && rt->link != NULL)
    rt->link->want_drain = 1;
  lua_pushboolean(L, below);
  return 1;
}

static int core_disconnect(lua_State *L) {
  lc__link_disconnect(&lc__lua_rt(L)->core);
  return 0;
}

static int core_connected(lua_State *L) {
  lc__core *core = &lc__lua_rt(L)->core;

  lua_pushboolean(L, lc__link_connected(core) && !lc__link_disconnecting(core));
  return 1;
}

/* core.set_worker(worker): cluster.worker hears the channel's events. */
static int set_worker(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lc__lua_set_ref(L, &lc__lua_rt(L)->worker_ref, 1);
  return 0;
}

static int core_sched_policy(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);

  if (!lua_isnoneornil(L, 1)) {
    int sched = lc__sched_from_name(luaL_checkstring(L, 1));
    if (sched == 0)
      return luaL_argerror(L, 1,
                           "expected \"rr\", \"none\", \"reuseport\" or \"sticky\"");
    rt->core.sched = sched;
  }
  lua_pushstring(L, lc__sched_name(rt->core.sched));
  return 1;
}

void lc__core_cluster(lua_State *L, lc_runtime *rt) {
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
      {"set_worker", set_worker},
      {"sched_policy", core_sched_policy},
      {NULL, NULL}};

  lc__lua_handle_class(L, rt, &worker_type, worker_methods);
  lc__lua_register(L, rt, fns);
}
