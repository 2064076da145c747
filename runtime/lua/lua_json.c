/*
 * lua_json.c - the message codec.
 *
 * Encoding is ours: Debian's lua-cjson (2.1.0) keeps at most 14 significant
 * digits, so 2^53 or 0.1 + 0.2 would not arrive as sent. Numbers here are
 * written exactly (integers as integers, other doubles with the shortest
 * %.Ng that reads back equal), strings are copied in runs between the bytes
 * that need escaping, and an app gets the same errors cjson would give it
 * in words: a function, userdata, a cycle (nesting over 1000) or NaN cannot
 * be sent. Tables with keys 1..n (holes allowed unless excessively sparse)
 * are arrays; other tables, and sparse ones, are objects; an empty table is
 * {} (as cjson).
 *
 * Decoding is lua-cjson's (linked in), through a private instance so an app
 * that reconfigures require("cjson") changes nothing on the wire.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_binding.h"

extern int luaopen_cjson(lua_State *L);

#define MAX_DEPTH 1000


/* What each byte becomes inside a JSON string: 0 copies it. */
static const char *escapes[256] = {
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005",
    "\\u0006", "\\u0007", "\\b",     "\\t",     "\\n",     "\\u000b",
    "\\f",     "\\r",     "\\u000e", "\\u000f", "\\u0010", "\\u0011",
    "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d",
    "\\u001e", "\\u001f", NULL,      NULL,      "\\\"",    NULL,
    [92] = "\\\\",       [127] = "\\u007f"};

typedef struct lc__encoder {
  lua_State *L;
  lc__buf *out;
  char err[160];
} lc__encoder;

static int fail(lc__encoder *e, const char *fmt, const char *arg) {
  snprintf(e->err, sizeof(e->err), fmt, arg);
  return -1;
}

static void put_string(lc__encoder *e, const char *s, size_t len) {
  size_t i, run = 0;

  lc__buf_reserve(e->out, len + 2);
  lc__buf_append(e->out, "\"", 1);
  for (i = 0; i < len; i++) {
    const char *esc = escapes[(unsigned char)s[i]];
    if (esc == NULL)
      continue;
    lc__buf_append(e->out, s + run, i - run);
    lc__buf_puts(e->out, esc);
    run = i + 1;
  }
  lc__buf_append(e->out, s + run, len - run);
  lc__buf_append(e->out, "\"", 1);
}

static int put_number(lc__encoder *e, double x) {
  char tmp[32];
  int n, precision;

  if (isnan(x) || isinf(x))
    return fail(e, "cannot encode %s (not a JSON number)",
                isnan(x) ? "NaN" : "infinity");
  if (x == floor(x) && fabs(x) < 9007199254740992.0) {
    n = snprintf(tmp, sizeof(tmp), "%lld", (long long)x);
  } else {
    /* The shortest form that reads back as the same double. */
    for (precision = 15; precision <= 17; precision++) {
      n = snprintf(tmp, sizeof(tmp), "%.*g", precision, x);
      if (strtod(tmp, NULL) == x)
        break;
    }
  }
  lc__buf_append(e->out, tmp, (size_t)n);
  return 0;
}

/* The length of the array the table at idx is, 0 for an empty table, or -1
 * for an object. */
static int array_length(lua_State *L, int idx) {
  double max = 0, k;
  int count = 0;

  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER ||
        (k = lua_tonumber(L, -1)) < 1 || k != floor(k) || k > 2147483647.0) {
      lua_pop(L, 1);
      return -1;
    }
    if (k > max)
      max = k;
    count++;
  }
  /* Excessively sparse (cjson's rule): an object with number keys. */
  if (max > 10 && max > 2.0 * count)
    return -1;
  return (int)max;
}

static int put_value(lc__encoder *e, int idx, int depth);

static int put_table(lc__encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  int n = array_length(L, idx), i, first = 1;

  if (depth > MAX_DEPTH)
    return fail(e, "cannot encode a table nested over %s levels (a cycle?)",
                "1000");
  luaL_checkstack(L, 4, "message too deep");
  if (n > 0) {
    lc__buf_append(e->out, "[", 1);
    for (i = 1; i <= n; i++) {
      if (i > 1)
        lc__buf_append(e->out, ",", 1);
      lua_rawgeti(L, idx, i);
      if (put_value(e, lua_gettop(L), depth + 1) != 0)
        return -1;
      lua_pop(L, 1);
    }
    lc__buf_append(e->out, "]", 1);
    return 0;
  }
  lc__buf_append(e->out, "{", 1);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (!first)
      lc__buf_append(e->out, ",", 1);
    first = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t len;
      const char *k = lua_tolstring(L, -2, &len);
      put_string(e, k, len);
    } else if (lua_type(L, -2) == LUA_TNUMBER) {
      lc__buf_append(e->out, "\"", 1);
      if (put_number(e, lua_tonumber(L, -2)) != 0)
        return -1;
      lc__buf_append(e->out, "\"", 1);
    } else {
      return fail(e, "cannot encode a table key that is a %s",
                  luaL_typename(L, -2));
    }
    lc__buf_append(e->out, ":", 1);
    if (put_value(e, lua_gettop(L), depth + 1) != 0)
      return -1;
    lua_pop(L, 1);
  }
  lc__buf_append(e->out, "}", 1);
  return 0;
}

static int put_value(lc__encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  size_t len;
  const char *s;

  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    lc__buf_puts(e->out, "null");
    return 0;
  case LUA_TBOOLEAN:
    lc__buf_puts(e->out, lua_toboolean(L, idx) ? "true" : "false");
    return 0;
  case LUA_TNUMBER:
    return put_number(e, lua_tonumber(L, idx));
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    put_string(e, s, len);
    return 0;
  case LUA_TTABLE:
    return put_table(e, idx, depth);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) { /* cjson.null */
      lc__buf_puts(e->out, "null");
      return 0;
    }
    /* fall through */
  default:
    return fail(e, "cannot encode a %s", luaL_typename(L, idx));
  }
}

int lc__json_encode(lc_runtime *rt, lua_State *L, int idx, const char **out,
                    size_t *len) {
  lc__buf *buf = &rt->json_out;
  lc__encoder e;

  if (idx < 0)
    idx = lua_gettop(L) + idx + 1;
  e.L = L;
  e.out = buf;
  e.err[0] = '\0';
  lc__buf_reset(buf);
  if (put_value(&e, idx, 0) != 0) {
    lua_pushstring(L, e.err);
    return -1;
  }
  /* As a Lua string: it lives on the caller's stack while it is sent. */
  lua_pushlstring(L, lc__buf_data(buf), lc__buf_size(buf));
  if (buf->cap > 1024 * 1024)
    lc__buf_free(buf);
  *out = lua_tolstring(L, -1, len);
  return 0;
}

int lc__json_decode(lc_runtime *rt, lua_State *L, const char *s, size_t len) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->json_decode_ref);
  lua_pushlstring(L, s, len);
  return lua_pcall(L, 1, 1, 0) != 0 ? -1 : 0;
}

static int json_encode(lua_State *L) {
  const char *s;
  size_t len;

  luaL_checkany(L, 1);
  if (lc__json_encode(lc__lua_rt(L), L, 1, &s, &len) != 0)
    return lua_error(L);
  return 1;
}

static int json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);

  if (lc__json_decode(lc__lua_rt(L), L, s, len) != 0)
    return lua_error(L);
  return 1;
}

void lc__core_json(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg fns[] = {{"encode", json_encode},
                                 {"decode", json_decode},
                                 {NULL, NULL}};

  if (rt->json_decode_ref == LUA_NOREF) {
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "decode");
    rt->json_decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "null");
    lua_setfield(L, -4, "null");
    lua_pop(L, 2);
  }
  lc__lua_register(L, rt, fns);
}
