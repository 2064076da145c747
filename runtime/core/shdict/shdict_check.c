/*
 * shdict_check.c - walks one segment and checks that its blocks, free
 * lists, bucket chains and LRU list agree with each other and with the
 * segment's counters: what must hold between any two steps. The tests
 * run it after every scenario and after every repair.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "shdict_segment.h"

typedef struct walk {
  char *err;
  size_t errlen;
  uint32_t *used; /* entry blocks, in address order */
  size_t nused;
  uint32_t *free; /* free blocks, in address order */
  size_t nfree;
} walk;

static int fail(walk *w, lc__shdict_segment *s, const char *fmt, ...) {
  char what[200];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  if (w->errlen > 0)
    snprintf(w->err, w->errlen, "segment %u: %s", s->index, what);
  return LC__SHDICT_ECORRUPT;
}

static int among(const uint32_t *sorted, size_t n, uint32_t off) {
  size_t lo = 0, hi = n, mid;

  while (lo < hi) {
    mid = (lo + hi) / 2;
    if (sorted[mid] == off)
      return 1;
    if (sorted[mid] < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

static int check_list(walk *w, lc__shdict_segment *s, uint32_t off,
                      lc__shdict_entry *e) {
  const lc__shdict_list *l = (const lc__shdict_list *)(void *)lc__shdict_value_of(e);
  const unsigned char *items = lc__shdict_value_of(e) + sizeof(*l);
  uint32_t at, len, tail_len, count = 0;

  if (e->value_len < sizeof(*l) ||
      l->capacity != e->value_len - sizeof(*l) || l->head > l->tail ||
      l->tail > l->capacity)
    return fail(w, s, "list at %u: bad bounds", off);
  for (at = l->head; at < l->tail; at += len + LC__SHDICT_ITEM_OVERHEAD) {
    if (l->tail - at < LC__SHDICT_ITEM_OVERHEAD)
      return fail(w, s, "list at %u: item cut at %u", off, at);
    memcpy(&len, items + at, 4);
    if (len > l->tail - at - LC__SHDICT_ITEM_OVERHEAD)
      return fail(w, s, "list at %u: item at %u too long", off, at);
    memcpy(&tail_len, items + at + 5 + len, 4);
    if (tail_len != len || items[at + 4] == LC__SHDICT_TNIL ||
        items[at + 4] == LC__SHDICT_TLIST || items[at + 4] > LC__SHDICT_TTABLE)
      return fail(w, s, "list at %u: bad item at %u", off, at);
    count++;
  }
  if (count != l->count || count == 0)
    return fail(w, s, "list at %u: %u items, count says %u", off, count,
                l->count);
  return 0;
}

static int check_entry(walk *w, const lc__shdict *d, lc__shdict_segment *s,
                       uint32_t off) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);
  size_t need = lc__shdict_entry_need(e->key_len, e->value_len);
  uint64_t hash;

  if (e->key_len == 0 || need == 0 || need > lc__shdict_block_size(s, off))
    return fail(w, s, "entry at %u: key/value larger than its block", off);
  hash = lc__shdict_hash(d->seed, lc__shdict_key_of(e), e->key_len);
  if (e->hash != (uint32_t)hash ||
      ((hash >> 40) & (d->segments - 1)) != s->index)
    return fail(w, s, "entry at %u: wrong hash", off);
  switch (e->type) {
  case LC__SHDICT_TBOOLEAN:
    return e->value_len == 1 ? 0 : fail(w, s, "boolean at %u: size", off);
  case LC__SHDICT_TNUMBER:
    return e->value_len == 8 ? 0 : fail(w, s, "number at %u: size", off);
  case LC__SHDICT_TSTRING:
  case LC__SHDICT_TTABLE:
    return 0;
  case LC__SHDICT_TLIST:
    return check_list(w, s, off, e);
  default:
    return fail(w, s, "entry at %u: type %u", off, e->type);
  }
}

/* Address order: sizes, boundary tags, no two free blocks side by side,
 * the counters; fills w->used and w->free. */
static int check_blocks(walk *w, const lc__shdict *d, lc__shdict_segment *s) {
  uint32_t off = s->arena, size, prev = 0, free_bytes = 0;
  int prev_free = 0, rc;

  while (off < s->arena_end) {
    size = lc__shdict_block_size(s, off);
    if (size < LC__SHDICT_BLOCK_MIN || size % 8 != 0 ||
        size > s->arena_end - off)
      return fail(w, s, "block at %u: size %u", off, size);
    if (lc__shdict_block_at(s, off)->prev != prev)
      return fail(w, s, "block at %u: prev %u, not %u", off,
                  lc__shdict_block_at(s, off)->prev, prev);
    if (lc__shdict_block_used(s, off)) {
      if ((rc = check_entry(w, d, s, off)) != 0)
        return rc;
      w->used[w->nused++] = off;
    } else {
      if (prev_free)
        return fail(w, s, "free blocks side by side at %u", off);
      free_bytes += size;
      w->free[w->nfree++] = off;
    }
    prev_free = !lc__shdict_block_used(s, off);
    prev = size;
    off += size;
  }
  if (off != s->arena_end ||
      lc__shdict_block_at(s, off)->size != LC__SHDICT_USED ||
      lc__shdict_block_at(s, off)->prev != prev)
    return fail(w, s, "bad end marker");
  if (free_bytes != s->free_bytes)
    return fail(w, s, "free bytes %u, counter says %u", free_bytes,
                s->free_bytes);
  if (w->nused != s->entries)
    return fail(w, s, "%zu entry blocks, counter says %u", w->nused,
                s->entries);
  return 0;
}

static int check_bins(walk *w, lc__shdict_segment *s) {
  size_t seen = 0, steps;
  uint32_t off, prev;
  unsigned c;
  int marked;

  for (c = 0; c < LC__SHDICT_CLASSES; c++) {
    marked = (s->bitmap[c / 32] >> (c % 32)) & 1;
    if (marked != (s->bins[c] != 0))
      return fail(w, s, "class %u: bitmap disagrees", c);
    prev = 0;
    for (off = s->bins[c], steps = 0; off != 0;
         prev = off, off = lc__shdict_links_at(s, off)->next) {
      if (++steps > w->nfree || !among(w->free, w->nfree, off))
        return fail(w, s, "class %u: %u is no free block", c, off);
      if (lc__shdict_class(lc__shdict_block_size(s, off)) != c ||
          lc__shdict_links_at(s, off)->prev != prev)
        return fail(w, s, "class %u: block %u misfiled", c, off);
      seen++;
    }
  }
  return seen == w->nfree ? 0 : fail(w, s, "free blocks missing from lists");
}

static int same_key(lc__shdict_entry *a, lc__shdict_entry *b) {
  return a->key_len == b->key_len &&
         memcmp(lc__shdict_key_of(a), lc__shdict_key_of(b), a->key_len) == 0;
}

static int check_chains(walk *w, lc__shdict_segment *s) {
  uint32_t *buckets = (uint32_t *)(void *)lc__shdict_at(s, s->buckets);
  uint32_t i, off, other;
  size_t seen = 0;
  lc__shdict_entry *e;

  for (i = 0; i <= s->bucket_mask; i++) {
    for (off = buckets[i]; off != 0; off = e->hash_next) {
      if (++seen > w->nused || !among(w->used, w->nused, off))
        return fail(w, s, "bucket %u: %u is no entry", i, off);
      e = lc__shdict_entry_at(s, off);
      if ((e->hash & s->bucket_mask) != i)
        return fail(w, s, "bucket %u: entry %u belongs elsewhere", i, off);
      for (other = e->hash_next; other != 0 && seen <= w->nused;
           other = lc__shdict_entry_at(s, other)->hash_next)
        if (among(w->used, w->nused, other) &&
            same_key(e, lc__shdict_entry_at(s, other)))
          return fail(w, s, "bucket %u: key twice", i);
    }
  }
  return seen == w->nused ? 0 : fail(w, s, "entries missing from the index");
}

static int check_lru(walk *w, lc__shdict_segment *s) {
  uint32_t off, newer = 0;
  size_t seen = 0;
  lc__shdict_entry *e;

  for (off = s->lru_newest; off != 0; newer = off, off = e->lru_older) {
    if (++seen > w->nused || !among(w->used, w->nused, off))
      return fail(w, s, "LRU: %u is no entry", off);
    e = lc__shdict_entry_at(s, off);
    if (e->lru_newer != newer)
      return fail(w, s, "LRU: %u has a wrong back link", off);
  }
  if (s->lru_oldest != newer)
    return fail(w, s, "LRU: the old end is %u, not %u", s->lru_oldest, newer);
  return seen == w->nused ? 0 : fail(w, s, "entries missing from the LRU");
}

int lc__shdict_check_segment(const lc__shdict *d, lc__shdict_segment *s,
                             char *err, size_t errlen) {
  size_t most = lc__shdict_arena_max(s) / LC__SHDICT_BLOCK_MIN + 1;
  walk w = {err, errlen, NULL, 0, NULL, 0};
  int rc;

  if (s->log_used != 0)
    return fail(&w, s, "undo log not empty");
  w.used = malloc(most * sizeof(uint32_t));
  w.free = malloc(most * sizeof(uint32_t));
  if (w.used == NULL || w.free == NULL)
    rc = -ENOMEM;
  else if ((rc = check_blocks(&w, d, s)) == 0 &&
           (rc = check_bins(&w, s)) == 0 && (rc = check_chains(&w, s)) == 0)
    rc = check_lru(&w, s);
  free(w.used);
  free(w.free);
  return rc;
}
