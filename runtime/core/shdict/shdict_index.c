/*
 * shdict_index.c - a segment's entries: the key hash, the bucket chains,
 * the LRU list, expiry, eviction, and putting a value under a key.
 *
 * The LRU list is a CLOCK: a new entry goes to the new end; a read only
 * sets its `referenced` byte (no list surgery, no undo record, no cache
 * line written twice); when eviction meets a referenced entry at the old
 * end, it clears the byte and moves the entry to the new end instead.
 *
 * Making room for n bytes (make_room): expired entries near the old end
 * go first; then, unless the caller is a safe_ one, the oldest entries
 * while the segment's free bytes are short of n; once they are not, the
 * space is there but in pieces, and the next victim's physical neighbours
 * are evicted until the merged block holds n. So a large value always
 * gets its block, at the cost of at most about n bytes of extra evictions.
 */
#include <stdlib.h>
#include <time.h>

#include "shdict_segment.h"

/* The key hash: 16 bytes per round through a 64x64->128 multiply that
 * folds its halves, seeded per dict (a client choosing keys cannot aim at
 * one bucket without the seed). */
static inline uint64_t fold(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;

  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t read64(const unsigned char *p) {
  uint64_t v;

  memcpy(&v, p, 8);
  return v;
}

static inline uint64_t read32(const unsigned char *p) {
  uint32_t v;

  memcpy(&v, p, 4);
  return v;
}

#define K0 UINT64_C(0x9e3779b97f4a7c15)
#define K1 UINT64_C(0xc2b2ae3d27d4eb4f)
#define K2 UINT64_C(0x165667b19e3779f9)
#define K3 UINT64_C(0xd6e8feb86659fd93)

uint64_t lc__shdict_hash(uint64_t seed, const void *key, size_t len) {
  const unsigned char *p = key;
  uint64_t h = seed ^ fold(len ^ K0, K1), a, b;
  size_t n = len;

  for (; n > 16; p += 16, n -= 16)
    h = fold(read64(p) ^ K1 ^ h, read64(p + 8) ^ K2);
  if (n >= 8) {
    a = read64(p);
    b = read64(p + n - 8);
  } else if (n >= 4) {
    a = read32(p);
    b = read32(p + n - 4);
  } else if (n > 0) {
    a = (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1];
    b = 0;
  } else {
    a = b = 0;
  }
  h = fold(a ^ K2 ^ h, b ^ K3);
  return fold(h ^ K0, (uint64_t)len ^ K1);
}

int lc__shdict_to_bytes(lc__shdict_bytes *v, int type, const void *data,
                        size_t len, double number) {
  v->type = type;
  v->number = number;
  switch (type) {
  case LC__SHDICT_TNIL:
    v->data = NULL;
    v->len = 0;
    return 0;
  case LC__SHDICT_TBOOLEAN:
    v->byte = number != 0;
    v->data = &v->byte;
    v->len = 1;
    return 0;
  case LC__SHDICT_TNUMBER:
    v->data = &v->number;
    v->len = sizeof(double);
    return 0;
  case LC__SHDICT_TSTRING:
  case LC__SHDICT_TTABLE:
    if (data == NULL && len != 0)
      return LC__SHDICT_EBADTYPE;
    v->data = data;
    v->len = len;
    return 0;
  default:
    return LC__SHDICT_EBADTYPE;
  }
}

/* Chains and the LRU list ------------------------------------------------- */

/* Adds a filled-in entry block to its bucket and the LRU's new end. Its
 * own payload is fresh memory: written without undo records. */
void lc__shdict_link(lc__shdict_segment *s, uint32_t off) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);
  uint32_t *bucket = lc__shdict_bucket(s, e->hash);

  e->hash_next = *bucket;
  e->lru_newer = 0;
  e->lru_older = s->lru_newest;
  lc__shdict_w32(s, bucket, off);
  if (s->lru_newest != 0)
    lc__shdict_w32(s, &lc__shdict_entry_at(s, s->lru_newest)->lru_newer, off);
  else
    lc__shdict_w32(s, &s->lru_oldest, off);
  lc__shdict_w32(s, &s->lru_newest, off);
  lc__shdict_w32(s, &s->entries, s->entries + 1);
}

static void lru_unlink(lc__shdict_segment *s, lc__shdict_entry *e) {
  if (e->lru_newer != 0)
    lc__shdict_w32(s, &lc__shdict_entry_at(s, e->lru_newer)->lru_older,
                   e->lru_older);
  else
    lc__shdict_w32(s, &s->lru_newest, e->lru_older);
  if (e->lru_older != 0)
    lc__shdict_w32(s, &lc__shdict_entry_at(s, e->lru_older)->lru_newer,
                   e->lru_newer);
  else
    lc__shdict_w32(s, &s->lru_oldest, e->lru_newer);
}

void lc__shdict_unlink(lc__shdict_segment *s, uint32_t off) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);
  uint32_t *link = lc__shdict_bucket(s, e->hash);

  while (*link != off)
    link = &lc__shdict_entry_at(s, *link)->hash_next;
  lc__shdict_w32(s, link, e->hash_next);
  lru_unlink(s, e);
  lc__shdict_w32(s, &s->entries, s->entries - 1);
}

/* One step: the entry goes and its block is freed. Returns the start of
 * the free block it merged into. */
uint32_t lc__shdict_remove(lc__shdict_segment *s, uint32_t off) {
  uint32_t merged;

  lc__shdict_unlink(s, off);
  merged = lc__shdict_free(s, off);
  lc__shdict_commit(s);
  return merged;
}

static void lru_to_newest(lc__shdict_segment *s, uint32_t off) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);

  lru_unlink(s, e);
  lc__shdict_w32(s, &e->lru_newer, 0);
  lc__shdict_w32(s, &e->lru_older, s->lru_newest);
  if (s->lru_newest != 0)
    lc__shdict_w32(s, &lc__shdict_entry_at(s, s->lru_newest)->lru_newer, off);
  else
    lc__shdict_w32(s, &s->lru_oldest, off);
  lc__shdict_w32(s, &s->lru_newest, off);
}

/* The entry to evict: the oldest one not read since it got there. Read
 * ones get a second chance at the new end (each its own step). */
static uint32_t lru_victim(lc__shdict_segment *s) {
  uint32_t off, turns = s->entries;
  lc__shdict_entry *e;

  while ((off = s->lru_oldest) != 0 && turns-- > 0 && s->entries > 1) {
    e = lc__shdict_entry_at(s, off);
    if (!e->referenced)
      return off;
    lc__shdict_w8(s, &e->referenced, 0);
    lru_to_newest(s, off);
    lc__shdict_commit(s);
  }
  return s->lru_oldest;
}

/* Frees up to max expired entries from the LRU's old end, stopping at the
 * first live one (what OpenResty does before each write). It reads the
 * coarse clock (a few ms behind, 4 times cheaper): sweeping late only
 * means freeing a dead entry a little later. */
unsigned lc__shdict_sweep(lc__shdict_segment *s, unsigned max) {
  uint64_t coarse = 0;
  struct timespec ts;
  lc__shdict_entry *e;
  unsigned n = 0;
  uint32_t off;

  while (n < max && (off = s->lru_oldest) != 0) {
    e = lc__shdict_entry_at(s, off);
    if (e->expires == 0)
      break;
    if (coarse == 0) {
      clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
      coarse = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    }
    if (e->expires > coarse)
      break;
    lc__shdict_remove(s, off);
    n++;
  }
  return n;
}

/* Making room ------------------------------------------------------------- */

static uint32_t evict_around(lc__shdict_segment *s, uint32_t victim,
                             uint32_t need, uint64_t *now, int *forcible) {
  uint32_t free_block = lc__shdict_remove(s, victim), size, next;

  while ((size = lc__shdict_block_size(s, free_block)) < need) {
    next = free_block + size;
    if (next != s->arena_end)
      victim = next;
    else
      victim = free_block - lc__shdict_block_at(s, free_block)->prev;
    if (!lc__shdict_expired(lc__shdict_entry_at(s, victim), now))
      *forcible = 1;
    free_block = lc__shdict_remove(s, victim);
  }
  return lc__shdict_take(s, free_block, need);
}

uint32_t lc__shdict_make_room(lc__shdict_segment *s, uint32_t need,
                              uint64_t *now, int safe, uint32_t keep,
                              int *forcible) {
  uint32_t off = lc__shdict_alloc(s, need), next;
  unsigned looked;
  lc__shdict_entry *e;

  if (off != 0 || need > lc__shdict_arena_max(s))
    return off;
  for (off = s->lru_oldest, looked = 0; off != 0 && looked < 64;
       off = next, looked++) {
    e = lc__shdict_entry_at(s, off);
    next = e->lru_newer;
    if (off == keep || !lc__shdict_expired(e, now))
      continue;
    lc__shdict_remove(s, off);
    if ((off = lc__shdict_alloc(s, need)) != 0)
      return off;
  }
  if (safe)
    return 0;
  while ((off = lru_victim(s)) != 0) {
    if (!lc__shdict_expired(lc__shdict_entry_at(s, off), now))
      *forcible = 1;
    if (s->free_bytes + lc__shdict_block_size(s, off) >= need)
      return evict_around(s, off, need, now, forcible);
    lc__shdict_remove(s, off);
    if ((off = lc__shdict_alloc(s, need)) != 0)
      return off;
  }
  return 0;
}

/* Putting a value --------------------------------------------------------- */

/* Writes a new entry into the fresh block at off (not linked yet). A NULL
 * value leaves the value bytes for the caller. */
void lc__shdict_fill(lc__shdict_segment *s, uint32_t off, uint32_t hash,
                     const char *key, size_t key_len, int type,
                     const void *value, size_t value_len, uint64_t expires,
                     uint32_t flags) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);

  e->hash = hash;
  e->expires = expires;
  e->user_flags = flags;
  e->value_len = (uint32_t)value_len;
  e->key_len = (uint16_t)key_len;
  e->type = (uint8_t)type;
  e->referenced = 0;
  e->pad = 0;
  memcpy(lc__shdict_key_of(e), key, key_len);
  if (value != NULL && value_len != 0)
    memcpy(lc__shdict_value_of(e), value, value_len);
}

/* Whether a new value of need block bytes may overwrite the old entry's:
 * not a list, small enough to log, and filling 3/4 of the block. */
static int fits_in_place(lc__shdict_segment *s, uint32_t off, uint32_t need,
                         size_t value_len) {
  uint32_t size = lc__shdict_block_size(s, off);

  return lc__shdict_entry_at(s, off)->type != LC__SHDICT_TLIST &&
         value_len <= LC__SHDICT_INPLACE_MAX && need <= size &&
         need >= size - size / 4;
}

/* Whether only the value's first 8-byte word changes (same type, length
 * at most 8, expiry and flags): then one store does it, without undo. */
static int one_word_change(const lc__shdict_entry *e,
                           const lc__shdict_bytes *v, uint64_t expires,
                           uint32_t flags) {
  return v->len <= 8 && v->len == e->value_len && v->type == e->type &&
         expires == e->expires && flags == e->user_flags;
}

static void overwrite(lc__shdict_segment *s, uint32_t off,
                      const lc__shdict_bytes *v, uint64_t expires,
                      uint32_t flags) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);
  uint64_t *word = (uint64_t *)(void *)lc__shdict_value_of(e), bits;

  if (!e->referenced)
    e->referenced = 1;
  if (one_word_change(e, v, expires, flags)) {
    bits = *word; /* bytes past the value are padding: kept as they are */
    if (v->len != 0)
      memcpy(&bits, v->data, v->len);
    lc__shdict_w64_alone(word, bits);
    return;
  }
  if (v->len != 0)
    lc__shdict_wbytes(s, lc__shdict_value_of(e), v->data, v->len, e->value_len);
  lc__shdict_w32(s, &e->value_len, (uint32_t)v->len);
  lc__shdict_w8(s, &e->type, (uint8_t)v->type);
  lc__shdict_w64(s, &e->expires, expires);
  lc__shdict_w32(s, &e->user_flags, flags);
}

/* Gives the key (its entry at old, or 0) the value v, in one step: in
 * place when the old block fits, else in a new block that takes the old
 * one's place. Without a block at hand, a safe put keeps the old entry
 * and evicts only expired ones; another drops the old entry first (as
 * OpenResty does) and evicts what it must. */
int lc__shdict_put(lc__shdict_segment *s, uint64_t hash, const char *key,
                   size_t key_len, const lc__shdict_bytes *v,
                   uint64_t expires, uint32_t flags, uint32_t old, int safe,
                   uint64_t *now, int *forcible) {
  uint32_t need = (uint32_t)lc__shdict_entry_need(key_len, v->len), off;

  if (old != 0 && fits_in_place(s, old, need, v->len)) {
    overwrite(s, old, v, expires, flags);
    lc__shdict_commit(s);
    return 0;
  }
  off = lc__shdict_alloc(s, need);
  if (off == 0) {
    if (old != 0 && !safe) {
      lc__shdict_remove(s, old);
      old = 0;
    }
    off = lc__shdict_make_room(s, need, now, safe, old, forcible);
    if (off == 0)
      return LC__SHDICT_ENOMEM;
  }
  lc__shdict_fill(s, off, (uint32_t)hash, key, key_len, v->type, v->data,
                  v->len, expires, flags);
  if (old != 0)
    lc__shdict_unlink(s, old);
  lc__shdict_link(s, off);
  if (old != 0)
    lc__shdict_free(s, old);
  lc__shdict_commit(s);
  return 0;
}
