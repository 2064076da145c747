/*
 * lua_encoding.c - hex and base64, for the "hex" and "base64" modules and
 * for crypto's digest encodings.
 *
 * Encoders always succeed. Decoders are strict where it costs nothing to be
 * (a stray character is an error with its position, not silently dropped as
 * Node's Buffer does) and lenient where real data varies: base64 may use
 * either alphabet, may omit its padding, and may be broken into lines (ASCII
 * whitespace is skipped), so a PEM body or a JWT segment decodes as it is.
 */
#include <string.h>
#include <strings.h>
#include <lauxlib.h>

#include "hex.h"
#include "lua_encoding.h"

/* Outputs up to this size are built on the C stack, larger ones in a
 * scratch userdata (freed by the GC even if pushing the result fails). */
#define SMALL_OUTPUT 512

static const char hex_digits[] = "0123456789abcdef";
static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Values of base64 characters (both alphabets), and markers. */
#define B64_BAD -1
#define B64_SPACE -2
#define B64_PAD -3

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  switch (c) {
  case '+':
  case '-':
    return 62;
  case '/':
  case '_':
    return 63;
  case '=':
    return B64_PAD;
  case ' ':
  case '\t':
  case '\r':
  case '\n':
  case '\f':
  case '\v':
    return B64_SPACE;
  default:
    return B64_BAD;
  }
}

/* Room for n output bytes: small ones in stack (a caller's array), larger
 * ones in a scratch userdata pushed on the Lua stack (*pushed set). */
static unsigned char *room(lua_State *L, unsigned char *stack, size_t n,
                           int *pushed) {
  *pushed = n > SMALL_OUTPUT;
  return *pushed ? lua_newuserdata(L, n) : stack;
}

static void push_result(lua_State *L, const unsigned char *out, size_t n,
                        int pushed) {
  lua_pushlstring(L, (const char *)out, n);
  if (pushed)
    lua_remove(L, -2);
}

static size_t hex_encode(unsigned char *out, const unsigned char *p,
                         size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    out[2 * i] = (unsigned char)hex_digits[p[i] >> 4];
    out[2 * i + 1] = (unsigned char)hex_digits[p[i] & 15];
  }
  return 2 * n;
}

static size_t b64_encode(unsigned char *out, const unsigned char *p,
                         size_t n, int url) {
  const char *abc = url ? b64_url : b64_std;
  unsigned char *o = out;
  size_t i;
  unsigned v;

  for (i = 0; i + 2 < n; i += 3) {
    v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
    *o++ = (unsigned char)abc[v >> 18];
    *o++ = (unsigned char)abc[(v >> 12) & 63];
    *o++ = (unsigned char)abc[(v >> 6) & 63];
    *o++ = (unsigned char)abc[v & 63];
  }
  if (i < n) {
    v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
    *o++ = (unsigned char)abc[v >> 18];
    *o++ = (unsigned char)abc[(v >> 12) & 63];
    if (i + 1 < n)
      *o++ = (unsigned char)abc[(v >> 6) & 63];
    else if (!url)
      *o++ = '=';
    if (!url)
      *o++ = '=';
  }
  return (size_t)(o - out);
}

void lc__push_encoded(lua_State *L, const unsigned char *p, size_t n,
                      lc__encoding enc) {
  unsigned char stack[SMALL_OUTPUT], *out;
  size_t len;
  int pushed;

  switch (enc) {
  case LC__ENC_HEX:
    out = room(L, stack, 2 * n, &pushed);
    len = hex_encode(out, p, n);
    break;
  case LC__ENC_BASE64:
  case LC__ENC_BASE64URL:
    out = room(L, stack, (n + 2) / 3 * 4, &pushed);
    len = b64_encode(out, p, n, enc == LC__ENC_BASE64URL);
    break;
  default:
    lua_pushlstring(L, (const char *)p, n);
    return;
  }
  push_result(L, out, len, pushed);
}

static int hex_decode(lua_State *L, const char *s, size_t n) {
  unsigned char stack[SMALL_OUTPUT], *out;
  size_t i;
  int hi, lo, pushed;

  if (n % 2 != 0) {
    lua_pushliteral(L, "invalid hex: odd length");
    return -1;
  }
  if (n == 0) {
    lua_pushliteral(L, "");
    return 0;
  }
  out = room(L, stack, n / 2, &pushed);
  for (i = 0; i < n; i += 2) {
    hi = lc__hex_value((unsigned char)s[i]);
    lo = lc__hex_value((unsigned char)s[i + 1]);
    if (hi < 0 || lo < 0) {
      if (pushed)
        lua_pop(L, 1);
      lua_pushfstring(L, "invalid hex character at position %d",
                      (int)(i + (hi < 0 ? 1 : 2)));
      return -1;
    }
    out[i / 2] = (unsigned char)(hi << 4 | lo);
  }
  push_result(L, out, n / 2, pushed);
  return 0;
}

/* Decodes into out (room for n / 4 * 3 + 3 bytes); returns the length, or
 * -1 with *bad set to the 1-based position of the offending character (or
 * n + 1 when the data is cut short). */
static long b64_decode(unsigned char *out, const char *s, size_t n,
                       size_t *bad) {
  unsigned char *o = out;
  unsigned v = 0;
  int k = 0, pads = 0, d;
  size_t i;

  for (i = 0; i < n; i++) {
    d = b64_value((unsigned char)s[i]);
    if (d == B64_SPACE)
      continue;
    if (d == B64_PAD) {
      if (k < 2 || ++pads + k > 4)
        goto bad;
      continue;
    }
    if (d == B64_BAD || pads > 0)
      goto bad;
    v = v << 6 | (unsigned)d;
    if (++k == 4) {
      *o++ = (unsigned char)(v >> 16);
      *o++ = (unsigned char)(v >> 8);
      *o++ = (unsigned char)v;
      v = 0;
      k = 0;
    }
  }
  if (k == 1) {
    *bad = n + 1;
    return -1;
  }
  if (k >= 2)
    *o++ = (unsigned char)(v >> (k == 2 ? 4 : 10));
  if (k == 3)
    *o++ = (unsigned char)(v >> 2);
  return (long)(o - out);
bad:
  *bad = i + 1;
  return -1;
}

static int base64_decode(lua_State *L, const char *s, size_t n) {
  unsigned char stack[SMALL_OUTPUT], *out;
  size_t bad = 0;
  long len;
  int pushed;

  out = room(L, stack, n / 4 * 3 + 3, &pushed);
  len = b64_decode(out, s, n, &bad);
  if (len < 0) {
    if (pushed)
      lua_pop(L, 1);
    if (bad > n)
      lua_pushliteral(L, "invalid base64: truncated data");
    else
      lua_pushfstring(L, "invalid base64 character at position %d",
                      (int)bad);
    return -1;
  }
  push_result(L, out, (size_t)len, pushed);
  return 0;
}

int lc__push_decoded(lua_State *L, const char *s, size_t n, lc__encoding enc) {
  switch (enc) {
  case LC__ENC_HEX:
    return hex_decode(L, s, n);
  case LC__ENC_BASE64:
  case LC__ENC_BASE64URL:
    return base64_decode(L, s, n);
  default:
    lua_pushlstring(L, s, n);
    return 0;
  }
}

const char *lc__check_bytes(lua_State *L, int idx, size_t *len) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_typerror(L, idx, "string");
  return lua_tolstring(L, idx, len);
}

lc__encoding lc__check_encoding(lua_State *L, int idx, int utf8) {
  const char *name;

  if (lua_isnoneornil(L, idx))
    return LC__ENC_BINARY;
  name = lc__check_bytes(L, idx, NULL);
  if (strcasecmp(name, "hex") == 0)
    return LC__ENC_HEX;
  if (strcasecmp(name, "base64") == 0)
    return LC__ENC_BASE64;
  if (strcasecmp(name, "base64url") == 0)
    return LC__ENC_BASE64URL;
  if (strcasecmp(name, "binary") == 0 || strcasecmp(name, "latin1") == 0)
    return LC__ENC_BINARY;
  if (utf8 && (strcasecmp(name, "utf8") == 0 || strcasecmp(name, "utf-8") == 0))
    return LC__ENC_BINARY;
  luaL_argerror(L, idx, lua_pushfstring(L, "unknown encoding '%s'", name));
  return LC__ENC_BINARY;
}

static int encode_with(lua_State *L, lc__encoding enc) {
  size_t n;
  const char *s = lc__check_bytes(L, 1, &n);

  lc__push_encoded(L, (const unsigned char *)s, n, enc);
  return 1;
}

/* A decoder: the bytes, or nil and why. */
static int decode_with(lua_State *L, lc__encoding enc) {
  size_t n;
  const char *s = lc__check_bytes(L, 1, &n);

  if (lc__push_decoded(L, s, n, enc) == 0)
    return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

static int hex_encode_fn(lua_State *L) { return encode_with(L, LC__ENC_HEX); }
static int hex_decode_fn(lua_State *L) { return decode_with(L, LC__ENC_HEX); }

static int base64_encode_fn(lua_State *L) {
  return encode_with(L, LC__ENC_BASE64);
}

static int base64url_encode_fn(lua_State *L) {
  return encode_with(L, LC__ENC_BASE64URL);
}

static int base64_decode_fn(lua_State *L) {
  return decode_with(L, LC__ENC_BASE64);
}

void lc__encoding_register(lua_State *L) {
  static const luaL_Reg fns[] = {{"hex_encode", hex_encode_fn},
                                 {"hex_decode", hex_decode_fn},
                                 {"base64_encode", base64_encode_fn},
                                 {"base64url_encode", base64url_encode_fn},
                                 {"base64_decode", base64_decode_fn},
                                 {NULL, NULL}};

  luaL_register(L, NULL, fns);
}
