/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

int lc__buf_reserve(lc__buf *b, size_t extra) {
  size_t used = b->len - b->off;
  size_t need, cap;
  char *p;

  if (b->cap - b->len >= extra)
    return 0;
  need = used + extra;
  /* Moving the data to the front is enough while it fills at most half:
   * then each byte moves a bounded number of times. */
  if (need <= b->cap && used <= b->cap / 2) {
    memmove(b->base, b->base + b->off, used);
    b->off = 0;
    b->len = used;
    return 0;
  }
  /* Grow to twice what is needed, so a backlog that stays large does not
   * reallocate (and copy) on every append. */
  cap = b->cap ? b->cap : 256;
  while (cap < 2 * need)
    cap *= 2;
  if (b->off > 0) {
    p = malloc(cap);
    if (p == NULL)
      return UV_ENOMEM;
    memcpy(p, b->base + b->off, used);
    free(b->base);
  } else {
    p = realloc(b->base, cap);
    if (p == NULL)
      return UV_ENOMEM;
  }
  b->base = p;
  b->off = 0;
  b->len = used;
  b->cap = cap;
  return 0;
}

int lc__buf_append(lc__buf *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  if (lc__buf_reserve(b, n) != 0)
    return UV_ENOMEM;
  memcpy(b->base + b->len, p, n);
  b->len += n;
  return 0;
}

int lc__buf_puts(lc__buf *b, const char *s) {
  return lc__buf_append(b, s, strlen(s));
}

void lc__buf_consume(lc__buf *b, size_t n) {
  b->off += n;
  if (b->off >= b->len)
    b->off = b->len = 0;
}

void lc__buf_reset(lc__buf *b) { b->off = b->len = 0; }

void lc__buf_free(lc__buf *b) {
  free(b->base);
  b->base = NULL;
  b->off = b->len = b->cap = 0;
}
