/*
 * message.h - what a user message's bytes must be, checked with no Lua.
 *
 * A MESSAGE frame's payload is one Lua value in LuaJIT's string.buffer
 * serialization (what buffer.encode() writes; the format is specified with
 * LuaJIT's string buffer library). Master and worker are the same binary,
 * so both ends speak the same LuaJIT: the format needs no version.
 *
 *   value  = nil 00 | false 01 | true 02 | NULL 03 | int 06 i32
 *          | number 07 f64 | int64 10 i64 | uint64 11 u64 | complex 12 f64 f64
 *          | string (20 + length, as a count) bytes
 *          | table (08 + 1 if it has a hash part + 2 if an array part starting
 *            at t[0], or + 4 if one starting at t[1]) [count] [count]
 *            array values, then key/value pairs
 *   count  = one byte below e0; e0-fe and a byte: 13 bits + e0; ff and a
 *            little-endian u32
 *
 * lc__message_check() reads a payload the way LuaJIT's decoder will and
 * refuses what it must not be handed: bytes that end early or run on, unknown
 * tags, light userdata (an address means nothing in another process), the
 * dictionary tags (we use no dictionaries), tables nested deeper than the
 * decoder allows, nil or NaN keys, and counts larger than the bytes left
 * (each array slot or pair takes at least one byte, so a tiny frame cannot
 * make the decoder allocate a huge table).
 */
#ifndef LC_MESSAGE_H
#define LC_MESSAGE_H

#include <stddef.h>

/* LuaJIT's own limit (LJ_SERIALIZE_DEPTH): deeper tables fail to encode. */
#define LC__MESSAGE_MAX_DEPTH 100

#define LC__MESSAGE_ESHORT (-1)    /* the bytes end inside a value */
#define LC__MESSAGE_ELEFTOVER (-2) /* bytes after the value */
#define LC__MESSAGE_ETAG (-3)      /* not a tag this format has */
#define LC__MESSAGE_ELIGHTUD (-4)  /* a light userdata other than NULL */
#define LC__MESSAGE_EDEPTH (-5)    /* tables nested too deep */
#define LC__MESSAGE_EKEY (-6)      /* a nil or NaN table key */
#define LC__MESSAGE_ECOUNT (-7)    /* a count larger than the bytes left */

/* 0 when payload[0, len) is one well-formed value, else an LC__MESSAGE_E*
 * code; lc__message_strerror() says which in words. */
int lc__message_check(const char *payload, size_t len);

const char *lc__message_strerror(int err);

#endif
