/* message.c - the shape check of a user message's bytes (see message.h). */
#include "message.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

enum {
  TAG_NIL = 0x00,
  TAG_NULL = 0x03,
  TAG_LIGHTUD32 = 0x04,
  TAG_LIGHTUD64 = 0x05,
  TAG_INT = 0x06,
  TAG_NUM = 0x07,
  TAG_TAB = 0x08, /* to 0x0d */
  TAG_DICT_MT = 0x0e,
  TAG_DICT_STR = 0x0f,
  TAG_INT64 = 0x10,
  TAG_UINT64 = 0x11,
  TAG_COMPLEX = 0x12,
  TAG_STR = 0x20 /* + length */
};

typedef struct reader {
  const unsigned char *p, *end;
} reader;

/* Reads a count (LuaJIT's "U124" encoding). 0 or ESHORT. */
static int read_count(reader *r, uint32_t *out) {
  uint32_t v;

  if (r->p >= r->end)
    return LC__MESSAGE_ESHORT;
  v = *r->p++;
  if (v >= 0xe0) {
    if (v != 0xff) {
      if (r->p >= r->end)
        return LC__MESSAGE_ESHORT;
      v = ((v & 0x1f) << 8) + *r->p++ + 0xe0;
    } else {
      if (r->end - r->p < 4)
        return LC__MESSAGE_ESHORT;
      v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 |
          (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
      r->p += 4;
    }
  }
  *out = v;
  return 0;
}

static int skip(reader *r, size_t n) {
  if ((size_t)(r->end - r->p) < n)
    return LC__MESSAGE_ESHORT;
  r->p += n;
  return 0;
}

static int check_value(reader *r, int depth, int is_key);

static int check_table(reader *r, uint32_t tag, int depth) {
  uint32_t narray = 0, nhash = 0, i;
  int err;

  if (depth >= LC__MESSAGE_MAX_DEPTH)
    return LC__MESSAGE_EDEPTH;
  if (tag >= TAG_TAB + 2 && (err = read_count(r, &narray)) != 0)
    return err;
  if ((tag & 1) && (err = read_count(r, &nhash)) != 0)
    return err;
  /* From t[1] on: slot 0 is allocated but not sent. */
  if (tag >= TAG_TAB + 4 && narray > 0)
    narray--;
  if (narray > (size_t)(r->end - r->p) ||
      nhash > (size_t)(r->end - r->p) / 2)
    return LC__MESSAGE_ECOUNT;
  for (i = 0; i < narray; i++)
    if ((err = check_value(r, depth + 1, 0)) != 0)
      return err;
  for (i = 0; i < nhash; i++) {
    if ((err = check_value(r, depth + 1, 1)) != 0 ||
        (err = check_value(r, depth + 1, 0)) != 0)
      return err;
  }
  return 0;
}

static int check_value(reader *r, int depth, int is_key) {
  uint32_t tag;
  double d;
  int err;

  if ((err = read_count(r, &tag)) != 0)
    return err;
  if (tag >= TAG_STR)
    return skip(r, tag - TAG_STR);
  switch (tag) {
  case TAG_NIL:
    return is_key ? LC__MESSAGE_EKEY : 0;
  case 0x01: /* false */
  case 0x02: /* true */
  case TAG_NULL:
    return 0;
  case TAG_LIGHTUD32:
  case TAG_LIGHTUD64:
    return LC__MESSAGE_ELIGHTUD;
  case TAG_INT:
    return skip(r, 4);
  case TAG_NUM:
    if ((err = skip(r, 8)) != 0)
      return err;
    memcpy(&d, r->p - 8, 8); /* the format is little-endian, as we are */
    return is_key && isnan(d) ? LC__MESSAGE_EKEY : 0;
  case TAG_INT64:
  case TAG_UINT64:
    return skip(r, 8);
  case TAG_COMPLEX:
    return skip(r, 16);
  default:
    if (tag >= TAG_TAB && tag < TAG_DICT_MT)
      return check_table(r, tag, depth);
    return LC__MESSAGE_ETAG;
  }
}

int lc__message_check(const char *payload, size_t len) {
  reader r;
  int err;

  r.p = (const unsigned char *)payload;
  r.end = r.p + len;
  if ((err = check_value(&r, 0, 0)) != 0)
    return err;
  return r.p == r.end ? 0 : LC__MESSAGE_ELEFTOVER;
}

const char *lc__message_strerror(int err) {
  switch (err) {
  case LC__MESSAGE_ESHORT:
    return "message ends inside a value";
  case LC__MESSAGE_ELEFTOVER:
    return "bytes after the message's value";
  case LC__MESSAGE_ETAG:
    return "unknown value tag in message";
  case LC__MESSAGE_ELIGHTUD:
    return "a light userdata (a C pointer) cannot be sent";
  case LC__MESSAGE_EDEPTH:
    return "tables nested over 100 levels (a cycle?)";
  case LC__MESSAGE_EKEY:
    return "a nil or NaN table key in message";
  case LC__MESSAGE_ECOUNT:
    return "table size larger than the message";
  default:
    return "malformed message";
  }
}
