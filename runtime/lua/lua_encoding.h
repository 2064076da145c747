/*
 * lua_encoding.h - hex and base64 for the bindings: the "hex" and "base64"
 * modules' primitives, and the output/input encodings of crypto's digests.
 */
#ifndef LC_LUA_ENCODING_H
#define LC_LUA_ENCODING_H

#include <stddef.h>
#include <lua.h>

/* The encodings a digest can be given in (Node's names). */
typedef enum {
  LC__ENC_BINARY, /* raw bytes: no encoding, "binary", "latin1" */
  LC__ENC_HEX,
  LC__ENC_BASE64,
  LC__ENC_BASE64URL /* URL alphabet, no padding (as Node) */
} lc__encoding;

/* The encoding named by the optional string argument idx (nil: binary);
 * raises a Lua error naming an unknown one. utf8 says whether "utf8" is
 * accepted as raw bytes (for input, where a Lua string already is). */
lc__encoding lc__check_encoding(lua_State *L, int idx, int utf8);

/* Pushes bytes p[0..n) as a string in encoding enc. */
void lc__push_encoded(lua_State *L, const unsigned char *p, size_t n,
                      lc__encoding enc);

/* Pushes the bytes that s[0..n) encodes in enc; returns 0, or -1 with an
 * error message pushed instead when s is not valid in that encoding. */
int lc__push_decoded(lua_State *L, const char *s, size_t n, lc__encoding enc);

/* The string argument idx; a Lua error with its position when it is not a
 * string (numbers are not converted: bytes must be bytes). */
const char *lc__check_bytes(lua_State *L, int idx, size_t *len);

/* Adds hex_encode, hex_decode, base64_encode, base64url_encode and
 * base64_decode to the table on top of the stack. */
void lc__encoding_register(lua_State *L);

#endif
