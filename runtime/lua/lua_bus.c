/*
 * lua_bus.c - the C half of cluster messaging (lua/luacluster/messaging.lua):
 * broadcast, publish, subscribe, request and reply over the core's bus
 * (bus.h).
 *
 * In a worker every call becomes a bus record to the master, bounded as
 * process.send() is (false past the high-water mark, an error at the hard
 * cap). In the master, broadcast and publish go to the router, which
 * forwards them to the workers; requests and replies go to one worker.
 * Messages are encoded here, in the sender, so a value that cannot cross
 * is an error at the call that tried it.
 *
 * What arrives (a publish, a request, a reply) reaches Lua as a record
 * table, marked by the metatable core.BUS, in the same batch as the
 * channel's messages, so order is kept between the two.
 */
#include <string.h>

#include "bus.h"
#include "lua_binding.h"
#include "supervisor.h"
#include "worker_link.h"

static const char *const op_names[LC__BUS_OP_MAX] = {
    NULL, "broadcast", "publish", "subscribe", "unsubscribe", "request",
    "reply"};

int lc__lua_bus_push(lc_runtime *rt, lua_State *L, const lc__bus_record *rec) {
  int has_value = rec->op != LC__BUS_SUBSCRIBE &&
                  rec->op != LC__BUS_UNSUBSCRIBE;
  int is_error = (rec->flags & LC__BUS_ERROR) != 0;

  if (has_value && !is_error &&
      lc__message_decode(rt, L, rec->kind, rec->body, rec->body_len) != 0)
    return -1;
  lua_createtable(L, 0, rec->op == LC__BUS_PUBLISH ? 5 : 3);
  if (has_value) {
    if (is_error)
      lua_pushlstring(L, rec->body, rec->body_len);
    else
      lua_pushvalue(L, -2);
    lua_setfield(L, -2, is_error ? "err" : "msg");
    if (!is_error)
      lua_remove(L, -2);
  }
  lua_pushstring(L, op_names[rec->op]);
  lua_setfield(L, -2, "op");
  if (rec->op == LC__BUS_PUBLISH) {
    if (rec->from > 0)
      lua_pushinteger(L, (lua_Integer)rec->from);
    else
      lua_pushliteral(L, "master");
    lua_setfield(L, -2, "from");
  } else {
    lua_pushnumber(L, (lua_Number)rec->id);
    lua_setfield(L, -2, "id");
  }
  if (rec->topic_len > 0) {
    lua_pushlstring(L, rec->topic, rec->topic_len);
    lua_setfield(L, -2, "topic");
  }
  if (rec->host_len > 0) {
    lua_pushlstring(L, rec->host, rec->host_len);
    lua_setfield(L, -2, "host");
  }
  lc__lua_push_ref(L, rt->bus_record_ref);
  lua_setmetatable(L, -2);
  return 0;
}

static const char *check_topic(lua_State *L, int idx, size_t *len) {
  const char *topic;

  luaL_checktype(L, idx, LUA_TSTRING);
  topic = lua_tolstring(L, idx, len);
  if (*len == 0 || *len > LC__BUS_TOPIC_MAX)
    luaL_argerror(L, idx, "a topic is a string of 1 to 1024 bytes");
  return topic;
}

/* A request id: a whole number from 1 to 2^32-1. */
static uint32_t check_id(lua_State *L, int idx) {
  lua_Number n = luaL_checknumber(L, idx);

  if (!(n >= 1 && n <= 4294967295.0) || n != (lua_Number)(uint32_t)n)
    luaL_argerror(L, idx, "a request id is a whole number from 1 to 2^32-1");
  return (uint32_t)n;
}

/* Sends rec to the master, its body encoded from the value at msg_idx
 * (0: none); pushes whether the channel is below its high-water mark. */
static int send_up(lua_State *L, lc_runtime *rt, lc__bus_record *rec,
                   int msg_idx) {
  lc__lua_msg m;
  int err;

  memset(&m, 0, sizeof(m));
  if (!lc__link_connected(&rt->core) || rt->link == NULL)
    return luaL_error(L, "cannot send message: not connected to a master");
  lc__lua_check_backlog(L, lc__link_backlog(&rt->core), 0);
  if (msg_idx > 0) {
    lc__message_encode(L, rt, msg_idx, &m);
    rec->kind = m.type;
    rec->body = m.data;
    rec->body_len = m.len;
  }
  err = lc__link_send_bus(&rt->core, rec, m.release, m.arg);
  if (err) {
    lc__message_unkeep(&m);
    lc__lua_send_error(L, err, m.len);
  }
  return lc__lua_link_pushed(L, rt);
}

static int is_master(lc_runtime *rt) { return rt->core.bus != NULL; }

/* The master's broadcast or publish: the router copies what it keeps, so
 * the encoded bytes go back at once. Pushes whether every worker got it. */
static int route_here(lua_State *L, lc_runtime *rt, const char *topic,
                      size_t topic_len, int msg_idx) {
  lc__lua_msg m;
  int r;

  lc__message_encode(L, rt, msg_idx, &m);
  if (m.len > rt->core.opts.max_message_size) {
    lc__message_unkeep(&m);
    lc__lua_send_error(L, UV_EMSGSIZE, m.len);
  }
  r = topic != NULL
          ? lc__bus_publish(&rt->core, topic, topic_len, m.type, m.data, m.len)
          : lc__bus_broadcast(&rt->core, m.type, m.data, m.len);
  lc__message_unkeep(&m);
  if (r < 0)
    lc__lua_send_error(L, r, m.len);
  lua_pushboolean(L, r == 0);
  return 1;
}

/* core.bus_broadcast(msg) -> true, or false (see send_up, route_here) */
static int bus_broadcast(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__bus_record rec;

  luaL_checkany(L, 1);
  if (is_master(rt))
    return route_here(L, rt, NULL, 0, 1);
  memset(&rec, 0, sizeof(rec));
  rec.op = LC__BUS_BROADCAST;
  return send_up(L, rt, &rec, 1);
}

/* core.bus_publish(topic, msg) -> true, or false */
static int bus_publish(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__bus_record rec;
  size_t len;
  const char *topic = check_topic(L, 1, &len);

  luaL_checkany(L, 2);
  if (is_master(rt))
    return route_here(L, rt, topic, len, 2);
  memset(&rec, 0, sizeof(rec));
  rec.op = LC__BUS_PUBLISH;
  rec.topic = topic;
  rec.topic_len = len;
  return send_up(L, rt, &rec, 2);
}

/* core.bus_subscribe(topic, on): this process (un)subscribes. */
static int bus_subscribe(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__bus_record rec;
  size_t len;
  const char *topic = check_topic(L, 1, &len);
  int on = lua_toboolean(L, 2), err;

  if (is_master(rt)) {
    err = on ? lc__bus_subscribe(&rt->core, topic, len)
             : lc__bus_unsubscribe(&rt->core, topic, len);
    if (err)
      return luaL_error(L, "cannot subscribe to a topic: %s",
                        err == UV_ENOSPC ? "too many topics" : uv_strerror(err));
    return 0;
  }
  memset(&rec, 0, sizeof(rec));
  rec.op = on ? LC__BUS_SUBSCRIBE : LC__BUS_UNSUBSCRIBE;
  rec.topic = topic;
  rec.topic_len = len;
  send_up(L, rt, &rec, 0);
  return 0;
}

/* Sends a REQUEST or REPLY to worker w (the master's side): true, or false
 * when w's channel has ended. */
static int send_down(lua_State *L, lc_runtime *rt, lc__worker *w,
                     lc__bus_record *rec, int msg_idx) {
  lc__lua_msg m;
  int err;

  memset(&m, 0, sizeof(m));
  if (w->channel.state != LC__CHANNEL_OPEN) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lc__lua_check_backlog(L, lc__channel_backlog(&w->channel), w->id);
  if (msg_idx > 0) {
    lc__message_encode(L, rt, msg_idx, &m);
    rec->kind = m.type;
    rec->body = m.data;
    rec->body_len = m.len;
  }
  err = lc__bus_to_worker(w, rec, m.release, m.arg);
  if (err) {
    lc__message_unkeep(&m);
    lc__lua_send_error(L, err, m.len);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.bus_request(id, msg[, worker]): to the master from a worker (true,
 * or false past the high-water mark), or to a worker from the master
 * (true, or false when its channel has ended). */
static int bus_request(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__bus_record rec;

  memset(&rec, 0, sizeof(rec));
  rec.op = LC__BUS_REQUEST;
  rec.id = check_id(L, 1);
  luaL_checkany(L, 2);
  if (!lua_isnoneornil(L, 3))
    return send_down(L, rt, lc__lua_check_worker(L, 3), &rec, 2);
  return send_up(L, rt, &rec, 2);
}

/* core.bus_reply(id, value, err[, worker]): answers request id with value,
 * or with err (a string) when it is not nil. */
static int bus_reply(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__bus_record rec;
  int msg_idx = 2;

  memset(&rec, 0, sizeof(rec));
  rec.op = LC__BUS_REPLY;
  rec.id = check_id(L, 1);
  lua_settop(L, 4);
  if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TSTRING);
    rec.flags = LC__BUS_ERROR;
    msg_idx = 3;
  }
  if (!lua_isnil(L, 4))
    return send_down(L, rt, lc__lua_check_worker(L, 4), &rec, msg_idx);
  if (!lc__link_connected(&rt->core)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  send_up(L, rt, &rec, msg_idx);
  lua_pushboolean(L, 1);
  return 1;
}

/* A publish from another host to a topic the master's app subscribed. */
static void on_remote(void *arg, const lc__bus_record *rec) {
  lc_runtime *rt = arg;

  if (rt->L == NULL || rt->core.exiting || rt->bus_ref == LUA_NOREF)
    return;
  if (lc__lua_bus_push(rt, rt->L, rec) != 0) {
    lc__log(LC__LOG_WARN, "cluster: a message from %.*s does not decode (%s)",
            (int)rec->host_len, rec->host, lua_tostring(rt->L, -1));
    lua_pop(rt->L, 1);
    return;
  }
  lc__lua_emit(rt, rt->bus_ref, "record", 1, 0);
}

/* core.bus_listen(obj): obj:_native("record", rec) hears what other hosts
 * publish to the master's topics. */
static int bus_listen(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);

  luaL_checktype(L, 1, LUA_TTABLE);
  lc__lua_set_ref(L, &rt->bus_ref, 1);
  lc__bus_set_remote(&rt->core, on_remote, rt);
  return 0;
}

void lc__core_bus(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg fns[] = {{"bus_broadcast", bus_broadcast},
                                 {"bus_listen", bus_listen},
                                 {"bus_publish", bus_publish},
                                 {"bus_subscribe", bus_subscribe},
                                 {"bus_request", bus_request},
                                 {"bus_reply", bus_reply},
                                 {NULL, NULL}};

  lc__lua_register(L, rt, fns);
  /* What marks a bus record among a batch's messages. */
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lc__lua_set_ref(L, &rt->bus_record_ref, lua_gettop(L));
  lua_pop(L, 1);
  lua_setfield(L, -2, "BUS");
  lua_pushinteger(L, LC__BUS_TOPIC_MAX);
  lua_setfield(L, -2, "BUS_TOPIC_MAX");
}
