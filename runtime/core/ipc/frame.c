/* frame.c - IPC frame header codec and control record checks (see frame.h). */
#include "frame.h"

#include <string.h>

void lc__frame_header(char out[LC__FRAME_HEADER_SIZE], int type,
                      uint32_t len) {
  out[0] = 'L';
  out[1] = 'C';
  out[2] = (char)type;
  out[3] = 0;
  out[4] = (char)(len >> 24);
  out[5] = (char)(len >> 16);
  out[6] = (char)(len >> 8);
  out[7] = (char)len;
}

uint32_t lc__frame_length(const char header[LC__FRAME_HEADER_SIZE]) {
  const unsigned char *p = (const unsigned char *)header;

  return (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 |
         (uint32_t)p[7];
}

int lc__frame_parse(const char *data, size_t len, size_t max_payload,
                    lc__frame *f) {
  const unsigned char *p = (const unsigned char *)data;
  uint32_t payload_len;

  /* Check what is already there, so garbage is caught on its first bytes. */
  if (len >= 1 && p[0] != 'L')
    return LC__FRAME_EMAGIC;
  if (len >= 2 && p[1] != 'C')
    return LC__FRAME_EMAGIC;
  if (len >= 3 && (p[2] < LC__FRAME_MESSAGE || p[2] > LC__FRAME_TYPE_MAX))
    return LC__FRAME_ETYPE;
  if (len >= 4 && p[3] != 0)
    return LC__FRAME_ETYPE;
  if (len < LC__FRAME_HEADER_SIZE)
    return 0;

  payload_len = lc__frame_length(data);
  if (payload_len > max_payload)
    return LC__FRAME_ETOOBIG;
  if (len - LC__FRAME_HEADER_SIZE < payload_len)
    return 0;

  f->type = p[2];
  f->payload = data + LC__FRAME_HEADER_SIZE;
  f->payload_len = payload_len;
  f->size = LC__FRAME_HEADER_SIZE + (size_t)payload_len;
  return 1;
}

const char *lc__frame_strerror(int err) {
  switch (err) {
  case LC__FRAME_EMAGIC:
    return "bad frame magic (not a luacluster peer)";
  case LC__FRAME_ETYPE:
    return "unknown frame type";
  case LC__FRAME_ETOOBIG:
    return "frame larger than the message size limit";
  default:
    return "unknown frame error";
  }
}

int lc__control_check(const char *payload, size_t len, lc__control *c) {
  if (len != sizeof(*c))
    return LC__FRAME_ETYPE;
  memcpy(c, payload, sizeof(*c));
  if (c->cmd < LC__CTL_ONLINE || c->cmd >= LC__CTL_MAX)
    return LC__FRAME_ETYPE;
  if (memchr(c->addr, '\0', sizeof(c->addr)) == NULL)
    return LC__FRAME_ETYPE;
  return 0;
}
