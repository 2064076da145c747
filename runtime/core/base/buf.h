/*
 * buf.h - a growable byte buffer with a read offset.
 *
 * Bytes are appended at the end and consumed from the front; consuming only
 * moves an offset, and the buffer compacts itself when it needs room, so a
 * stream of small frames costs no memmove per frame.
 */
#ifndef LC_BUF_H
#define LC_BUF_H

#include <stddef.h>

typedef struct lc__buf {
  char *base;
  size_t off; /* first unread byte */
  size_t len; /* end of the data */
  size_t cap;
} lc__buf;

#define LC__BUF_INIT {NULL, 0, 0, 0}

/* Unread bytes and their count. */
static inline char *lc__buf_data(const lc__buf *b) { return b->base + b->off; }
static inline size_t lc__buf_size(const lc__buf *b) { return b->len - b->off; }

/* Makes room for `extra` more bytes at the end. 0 or UV_ENOMEM. */
int lc__buf_reserve(lc__buf *b, size_t extra);

/* Appends n bytes. 0 or UV_ENOMEM. */
int lc__buf_append(lc__buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. 0 or UV_ENOMEM. */
int lc__buf_puts(lc__buf *b, const char *s);

/* Drops n unread bytes from the front. */
void lc__buf_consume(lc__buf *b, size_t n);

/* Forgets all data, keeps the memory. */
void lc__buf_reset(lc__buf *b);

/* Frees the memory. */
void lc__buf_free(lc__buf *b);

#endif
