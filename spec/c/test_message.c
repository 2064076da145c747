/*
 * test_message.c - the check a message's bytes pass (message.c), against
 * what LuaJIT's own string.buffer encoder writes and decoder reads: every
 * encoding of every kind of value is accepted, every cut or extended one is
 * refused, the tags and shapes we do not send are refused, and whatever the
 * check accepts among many mangled encodings, LuaJIT decodes.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "test.h"

/* Lua expressions whose encodings must pass, with every boundary of the
 * format's counts (string lengths and table sizes around e0, 1fe0). */
static const char *const values[] = {
    "nil", "false", "true", "0", "1", "-1", "2^53", "-2^53", "0.1", "-0.0",
    "0/0", "1/0", "-1/0", "5e-324", "1e308",
    "''", "'x'", "('a'):rep(0xbf)", "('a'):rep(0xc0)", "('a'):rep(0x1fbf)",
    "('a'):rep(0x1fc0)", "('\\0\\255'):rep(40000)",
    "{}", "{1, 2, 3}", "{[0] = 'zero', 1}", "{[0] = 'zero only'}",
    "{1, nil, 3}", "{nil, nil, 3}", "{a = 1, b = {c = {d = true}}}",
    "{1, 2, x = 'y', [3.5] = false, [-1] = 'neg', [true] = 1}",
    "{[{}] = {}}", "(function() local t = {} for i = 1, 300 do t[i] = i end return t end)()",
    "(function() local t = {} for i = 1, 9000 do t['k' .. i] = i end return t end)()",
    "(function() local t = {} for i = 1, 300 do t[i * 1000] = i end return t end)()",
    "(function() local t = {} local c = t for i = 1, 99 do c.x = {} c = c.x end return t end)()",
    "1LL", "-1LL", "0xffffffffffffffffULL", "require('ffi').new('complex', 1, 2)",
    "{n = 1LL, s = 'mixed', {0ULL}}",
};

/* A state as the runtime makes it: with the FFI loaded, which LuaJIT needs
 * to decode 64-bit integers and complex numbers. */
static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();

  luaL_openlibs(L);
  if (luaL_dostring(L, "require('ffi')") != 0)
    lua_pop(L, 1);
  return L;
}

/* Pushes buffer.encode(value of expr). */
static int encode_expr(lua_State *L, const char *expr) {
  char code[512];

  snprintf(code, sizeof(code),
           "return require('string.buffer').encode(%s)", expr);
  if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "  cannot encode %s: %s\n", expr, lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* Encodes the value on top (popped) with buffer.encode; pushes the bytes. */
static int encode_top(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "string.buffer");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "encode");
  lua_remove(L, -2);
  lua_insert(L, -2);
  return lua_pcall(L, 1, 1, 0);
}

/* Whether LuaJIT decodes bytes (the message is left on top on failure). */
static int decodes(lua_State *L, const char *p, size_t len) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "string.buffer");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushlstring(L, p, len);
  if (lua_pcall(L, 1, 1, 0) != 0)
    return 0;
  lua_pop(L, 1);
  return 1;
}

static void every_encoding_is_accepted_and_every_cut_refused(void) {
  lua_State *L = new_state();
  size_t i, cut, len;

  for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    const char *p;
    char *longer;

    if (encode_expr(L, values[i]) != 0) {
      CHECK(!"encodes");
      continue;
    }
    p = lua_tolstring(L, -1, &len);
    if (lc__message_check(p, len) != 0) {
      fprintf(stderr, "  refused: %s\n", values[i]);
      CHECK(!"accepted");
    }
    /* Cut anywhere (every prefix of small ones): refused, as short or, when
     * a table's counts are in, as larger than what is left. */
    for (cut = 0; cut < len; cut += len > 4096 ? len / 97 + 1 : 1) {
      int err = lc__message_check(p, cut);
      CHECK(err == LC__MESSAGE_ESHORT || err == LC__MESSAGE_ECOUNT);
    }
    longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    CHECK_EQ_INT(lc__message_check(longer, len + 1), LC__MESSAGE_ELEFTOVER);
    free(longer);
    lua_pop(L, 1);
  }
  lua_close(L);
}

static void light_userdata_is_refused_but_null_passes(void) {
  lua_State *L = new_state();
  static char somewhere;
  const char *p;
  size_t len;

  lua_pushlightuserdata(L, NULL);
  CHECK_EQ_INT(encode_top(L), 0);
  p = lua_tolstring(L, -1, &len);
  CHECK_EQ_INT(lc__message_check(p, len), 0);
  lua_pop(L, 1);

  lua_createtable(L, 0, 1);
  lua_pushlightuserdata(L, &somewhere);
  lua_setfield(L, -2, "pointer");
  CHECK_EQ_INT(encode_top(L), 0);
  p = lua_tolstring(L, -1, &len);
  CHECK_EQ_INT(lc__message_check(p, len), LC__MESSAGE_ELIGHTUD);
  lua_close(L);
}

/* n tables, each holding the next at t[1] (tag 0c, 2 slots), then nil. */
static char *nested(int n, size_t *len) {
  char *p = malloc((size_t)n * 2 + 1);
  int i;

  for (i = 0; i < n; i++) {
    p[2 * i] = 0x0c;
    p[2 * i + 1] = 0x02;
  }
  p[2 * n] = 0x00;
  *len = (size_t)n * 2 + 1;
  return p;
}

static void depth_is_limited_as_luajit_limits_it(void) {
  lua_State *L = new_state();
  size_t len;
  char *ok = nested(LC__MESSAGE_MAX_DEPTH, &len);
  char *deep;

  CHECK_EQ_INT(lc__message_check(ok, len), 0);
  CHECK(decodes(L, ok, len));
  deep = nested(LC__MESSAGE_MAX_DEPTH + 1, &len);
  CHECK_EQ_INT(lc__message_check(deep, len), LC__MESSAGE_EDEPTH);
  CHECK(!decodes(L, deep, len));
  free(ok);
  free(deep);
  lua_close(L);
}

static void shapes_we_never_send_are_refused(void) {
  static const struct {
    const char *bytes;
    size_t len;
    int err;
  } bad[] = {
      {"\x13", 1, LC__MESSAGE_ETAG},
      {"\x1f", 1, LC__MESSAGE_ETAG},
      {"\x0e\x00\x08", 3, LC__MESSAGE_ETAG},     /* metatable dictionary */
      {"\x0f\x00", 2, LC__MESSAGE_ETAG},         /* string dictionary */
      {"\x04\x01\x02\x03\x04", 5, LC__MESSAGE_ELIGHTUD},
      {"\x09\x01\x00\x02", 4, LC__MESSAGE_EKEY}, /* {[nil] = true} */
      {"\x09\x01\x07\x00\x00\x00\x00\x00\x00\xf8\x7f\x02", 12,
       LC__MESSAGE_EKEY},                        /* {[NaN] = true} */
      /* A few bytes that announce a billion array slots or pairs. */
      {"\x0a\xff\x00\x00\x00\x40\x00", 7, LC__MESSAGE_ECOUNT},
      {"\x09\xff\x00\x00\x00\x40\x00\x00", 8, LC__MESSAGE_ECOUNT},
      {"\x0a\x03\x00\x00", 4, LC__MESSAGE_ECOUNT},
      {"\x09\x02\x01\x01\x01", 5, LC__MESSAGE_ECOUNT},
      {"\x0a\xe0", 2, LC__MESSAGE_ESHORT},       /* a count cut short */
      {"\x0a\xff\x01\x00", 4, LC__MESSAGE_ESHORT},
      {"\x24" "abc", 4, LC__MESSAGE_ESHORT},     /* "abcd" minus one */
      {"\x07\x00\x00", 3, LC__MESSAGE_ESHORT},
      {"", 0, LC__MESSAGE_ESHORT},
      {"\x00\x00", 2, LC__MESSAGE_ELEFTOVER},
  };
  lua_State *L = new_state();
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int err = lc__message_check(bad[i].bytes, bad[i].len);
    if (err != bad[i].err)
      fprintf(stderr, "  case %zu: %d, not %d\n", i, err, bad[i].err);
    CHECK_EQ_INT(err, bad[i].err);
    /* LuaJIT would refuse them too, or (counts) allocate before it did. */
    if (bad[i].err != LC__MESSAGE_ECOUNT && bad[i].err != LC__MESSAGE_ELIGHTUD)
      CHECK(!decodes(L, bad[i].bytes, bad[i].len));
  }
  lua_close(L);
}

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t next_random(uint32_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state;
}

static void what_the_check_accepts_luajit_decodes(void) {
  lua_State *L = new_state();
  uint32_t rnd = 0x9e3779b9u;
  int accepted = 0, refused = 0;
  size_t i, round, len;
  char buf[256];

  for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    const char *p;

    if (encode_expr(L, values[i]) != 0)
      continue;
    p = lua_tolstring(L, -1, &len);
    if (len > sizeof(buf)) {
      lua_pop(L, 1);
      continue;
    }
    for (round = 0; round < 20000; round++) {
      size_t n = len, k, flips = 1 + next_random(&rnd) % 3;
      memcpy(buf, p, len);
      for (k = 0; k < flips; k++) {
        uint32_t r = next_random(&rnd);
        if (r % 5 == 0 && n > 1)
          n = 1 + r % (n - 1); /* cut */
        else
          buf[r % n] = (char)(r >> 8); /* mangle a byte */
      }
      if (lc__message_check(buf, n) == 0) {
        accepted++;
        /* A duplicate key is the one thing left to the decoder. */
        if (!decodes(L, buf, n)) {
          const char *why = lua_tostring(L, -1);
          if (why == NULL || strstr(why, "duplicate") == NULL) {
            fprintf(stderr, "  accepted but not decoded (%s): %s\n", values[i],
                    why ? why : "?");
            CHECK(!"decoded");
          }
          lua_pop(L, 1);
        }
      } else {
        refused++;
      }
    }
    lua_pop(L, 1);
  }
  CHECK(accepted > 1000);
  CHECK(refused > 1000);
  lua_close(L);
}

static void errors_have_distinct_words(void) {
  int a, b;

  for (a = LC__MESSAGE_ECOUNT; a <= LC__MESSAGE_ESHORT; a++)
    for (b = a + 1; b <= LC__MESSAGE_ESHORT; b++)
      CHECK(strcmp(lc__message_strerror(a), lc__message_strerror(b)) != 0);
  CHECK(strstr(lc__message_strerror(LC__MESSAGE_ELIGHTUD), "light userdata"));
  CHECK(lc__message_strerror(-99) != NULL);
}

int main(void) {
  RUN(every_encoding_is_accepted_and_every_cut_refused);
  RUN(light_userdata_is_refused_but_null_passes);
  RUN(depth_is_limited_as_luajit_limits_it);
  RUN(shapes_we_never_send_are_refused);
  RUN(what_the_check_accepts_luajit_decodes);
  RUN(errors_have_distinct_words);
  TEST_EXIT();
}
