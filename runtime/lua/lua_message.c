/*
 * lua_message.c - the message codec: Lua values to frames and back.
 *
 * Between luacluster processes a message is one Lua value in LuaJIT's
 * string.buffer serialization (a MESSAGE frame), or, for a string, the
 * string's bytes as they are (a STRING frame). Numbers stay exact doubles
 * (2^53, -0.0, NaN, infinities), 64-bit integer cdata stay integers, and
 * tables keep their holes, so a value arrives as it was sent.
 *
 * Encoding goes into a string.buffer this file keeps (lua/luacluster/
 * message.lua does the Lua part): a small result is copied into the channel
 * and the buffer reused; a large one (LC__CHANNEL_REF_MIN and up) is written
 * from the buffer itself, which the channel gives back once written, to a
 * pool (up to POOL_MAX_BYTES) the next large ones are encoded into: fresh
 * buffers would cost a page fault per 4 KiB. A large string is sent from
 * the Lua string, pinned until written. Decoding reads the bytes where the
 * channel received them (the core has checked them: message.c).
 *
 * What cannot cross (a function, a full or light userdata, a thread, tables
 * nested over 100 levels, which is also what a cycle looks like) is a Lua
 * error in the sender, raised before anything is queued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_binding.h"
#include "message.h"

/* What the pool of buffers back from the channel may hold: enough for the
 * messages in flight up to the senders' high-water mark, so a steady flow
 * of large messages allocates (and page-faults) nothing. */
#define POOL_MAX_BYTES (4 * 1024 * 1024)

/* A large payload in flight: the buffer or string it lies in. */
typedef struct kept {
  lc_runtime *rt;
  int ref;
  int is_buffer;
  size_t len;
} kept;

/* The channel is done with a payload: its buffer goes to the pool (or to
 * the collector), its string is unpinned. No Lua call: this may run from
 * the channel's close. */
static void release_kept(void *arg) {
  kept *k = arg;
  lc_runtime *rt = k->rt;

  if (rt->L != NULL) {
    if (k->is_buffer && rt->codec.npool < LC__CODEC_POOL &&
        rt->codec.pool_bytes + k->len <= POOL_MAX_BYTES) {
      rt->codec.pool_len[rt->codec.npool] = k->len;
      rt->codec.pool[rt->codec.npool++] = k->ref;
      rt->codec.pool_bytes += k->len;
    } else {
      luaL_unref(rt->L, LUA_REGISTRYINDEX, k->ref);
    }
  }
  free(k);
}

/* The buffer to encode into: the current one, one from the pool, or a new
 * one the size of the last handed off (a message like it then needs no
 * growing, and one under the allocator's mmap threshold costs no page
 * faults). */
static int codec_buffer(lua_State *L, lc_runtime *rt) {
  if (rt->codec.buffer_ref == LUA_NOREF) {
    if (rt->codec.npool > 0) {
      rt->codec.npool--;
      rt->codec.buffer_ref = rt->codec.pool[rt->codec.npool];
      rt->codec.pool_bytes -= rt->codec.pool_len[rt->codec.npool];
    } else {
      lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.new_ref);
      lua_pushinteger(L, (lua_Integer)rt->codec.next_size);
      lua_call(L, 1, 1);
      rt->codec.buffer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  return rt->codec.buffer_ref;
}

/* Raises "cannot send message: ..." in words an app can act on. */
static int encode_error(lua_State *L, const char *why) {
  const char *type;
  char name[32];

  if (why == NULL)
    why = "?";
  if (strstr(why, "too deep") != NULL)
    return luaL_error(L, "cannot send message: %s",
                      lc__message_strerror(LC__MESSAGE_EDEPTH));
  if ((type = strstr(why, "cannot serialize '")) != NULL) {
    type += strlen("cannot serialize '");
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(type, "'"), type);
    return luaL_error(L, "cannot send message: a %s cannot be sent%s", name,
                      strcmp(name, "cdata") == 0
                          ? " (only 64-bit integers and complex numbers can)"
                          : "");
  }
  return luaL_error(L, "cannot send message: %s", why);
}

/* Keeps the value at idx (a string) or the current buffer for the
 * channel: m->release and m->arg say how to give it back. */
static void keep(lua_State *L, lc_runtime *rt, int idx, lc__lua_msg *m) {
  kept *k = malloc(sizeof(*k));

  if (k == NULL) {
    luaL_error(L, "cannot send message: out of memory");
    return;
  }
  k->rt = rt;
  k->is_buffer = idx == 0;
  k->len = m->len;
  if (k->is_buffer) {
    k->ref = rt->codec.buffer_ref;
    rt->codec.buffer_ref = LUA_NOREF;
    rt->codec.next_size = m->len + 64;
  } else {
    lua_pushvalue(L, idx);
    k->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  m->release = release_kept;
  m->arg = k;
}

static int may_hold_lightud(const char *p, size_t len) {
  size_t i;

  if (len > 512)
    return 1;
  for (i = 0; i < len; i++)
    if (p[i] == 0x04 || p[i] == 0x05)
      return 1;
  return 0;
}

void lc__message_encode(lua_State *L, lc_runtime *rt, int idx,
                        lc__lua_msg *m) {
  int err, buffer;

  memset(m, 0, sizeof(*m));
  if (idx < 0)
    idx = lua_gettop(L) + idx + 1;
  if (lua_type(L, idx) == LUA_TSTRING) {
    m->type = LC__FRAME_STRING;
    m->data = lua_tolstring(L, idx, &m->len);
    if (m->len >= LC__CHANNEL_REF_MIN)
      keep(L, rt, idx, m);
    return;
  }
  m->type = LC__FRAME_MESSAGE;
  /* buf:reset(); buf:encode(value); buf:ref(): the methods called straight
   * from C, no Lua frame. Only encode() can fail. */
  buffer = codec_buffer(L, rt);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.reset_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, buffer);
  lua_call(L, 1, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.encode_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, buffer);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    encode_error(L, lua_tostring(L, -1));
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.ref_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, buffer);
  lua_call(L, 1, 2);
  /* buf:ref() gives a uint8_t * cdata: its payload is the pointer. */
  m->data = *(const char *const *)lua_topointer(L, -2);
  m->len = (size_t)lua_tointeger(L, -1);
  lua_pop(L, 2);
  /* What string.buffer encodes but means nothing in another process: a
   * light userdata, tagged 04 or 05. A small message without such a byte
   * anywhere cannot hold one; the others are read through. */
  if (may_hold_lightud(m->data, m->len) &&
      (err = lc__message_check(m->data, m->len)) != 0) {
    luaL_error(L, "cannot send message: %s", lc__message_strerror(err));
    return;
  }
  if (m->len >= LC__CHANNEL_REF_MIN)
    keep(L, rt, 0, m);
}

void lc__message_unkeep(lc__lua_msg *m) {
  if (m->release != NULL)
    m->release(m->arg);
  m->release = NULL;
}

int lc__message_decode(lc_runtime *rt, lua_State *L, int type,
                       const char *data, size_t len) {
  if (type == LC__FRAME_STRING) {
    lua_pushlstring(L, data, len);
    return 0;
  }
  /* reader:set(address, len):decode(), with the address written in place:
   * set() cannot fail on these arguments; decode() can. */
  *rt->codec.address = data;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.set_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.reader_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.address_ref);
  lua_pushinteger(L, (lua_Integer)len);
  lua_call(L, 3, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.decode_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->codec.reader_ref);
  return lua_pcall(L, 1, 1, 0) != 0 ? -1 : 0;
}

static int field_ref(lua_State *L, const char *name) {
  lua_getfield(L, -1, name);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

void lc__core_message(lua_State *L, lc_runtime *rt) {
  if (rt->codec.encode_ref != LUA_NOREF)
    return;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luacluster.message");
  lua_call(L, 1, 1);
  rt->codec.reset_ref = field_ref(L, "reset");
  rt->codec.encode_ref = field_ref(L, "encode");
  rt->codec.ref_ref = field_ref(L, "ref");
  rt->codec.new_ref = field_ref(L, "new_buffer");
  rt->codec.reader_ref = field_ref(L, "reader");
  rt->codec.set_ref = field_ref(L, "set");
  rt->codec.decode_ref = field_ref(L, "decode");
  lua_getfield(L, -1, "address");
  /* A pointer cdata's payload is the pointer: C writes it there. */
  rt->codec.address = (const char **)lua_topointer(L, -1);
  rt->codec.address_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
}
