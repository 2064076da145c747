/*
 * shdict_segment.h - the shared dict's memory layout and the pieces its
 * files share: one segment's header, blocks, entries, list values, the undo
 * log and the allocator. Only shdict*.c include it; shdict.h is the API.
 *
 * Everything below lives in the shared mapping, which each process maps at
 * its own address: links are 32-bit offsets from the start of their
 * segment (0 = none), never pointers. See shdict.c for the design.
 */
#ifndef LC_SHDICT_SEGMENT_H
#define LC_SHDICT_SEGMENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shdict.h"

#define LC__SHDICT_MAGIC UINT64_C(0x3154434944485343) /* "CSHDICT1" */
#define LC__SHDICT_VERSION 1
#define LC__SHDICT_SEGMENT_MAGIC 0x67657364u /* "dseg" */
#define LC__SHDICT_HEADER_SIZE 4096          /* the mapping's first page */
#define LC__SHDICT_LOG_SIZE 4096             /* undo log bytes per segment */
#define LC__SHDICT_CLASSES 128               /* allocator size classes */
#define LC__SHDICT_BLOCK_MIN 16              /* header + free-list links */
#define LC__SHDICT_USED 1u                   /* low bit of a block's size */
#define LC__SHDICT_INPLACE_MAX 1024 /* largest value overwritten in place */
#define LC__SHDICT_PROBES 11        /* looks at a held lock before sleeping */
#define LC__SHDICT_MAX_PAUSE 1024   /* pauses between two looks, at most */

/* The mapping's first page: what attach checks before trusting the rest. */
typedef struct lc__shdict_header {
  uint64_t magic;
  uint32_t version;
  uint32_t segments;      /* a power of two, 1..64 */
  uint64_t total_size;    /* the whole mapping */
  uint64_t segment_size;  /* each segment; segments follow this page */
  uint64_t seed;          /* the key hash's seed, random per dict */
  uint32_t mutex_size;    /* sizeof(pthread_mutex_t) of the creator */
  uint32_t segment_header_size;
  uint32_t entry_size;
  uint32_t log_size;
} lc__shdict_header;

/*
 * One segment: a lock, an undo log, a hash index, an LRU list and an
 * allocator over its own arena. A key's hash picks its segment; nothing
 * ever links across segments.
 */
typedef struct lc__shdict_segment {
  /* One cache line, written by every locker. */
  pthread_mutex_t lock; /* process-shared, robust */
  uint32_t seq;         /* odd while locked: lock-free readers check it */
  uint32_t log_used;    /* undo log bytes; 0 = no change in progress */
  uint32_t step_freed;  /* a block was freed in the current step */
  uint32_t repairs;     /* times a dead holder's change was undone */
  /* Read by everyone, written only at creation. */
  _Alignas(64) uint32_t magic;
  uint32_t index;
  uint32_t size;        /* bytes of this segment */
  uint32_t buckets;     /* offset of the bucket array (uint32_t each) */
  uint32_t bucket_mask;
  uint32_t arena;       /* offset of the first block */
  uint32_t arena_end;   /* offset of the end marker (a used 0-size block) */
  /* Written when entries come and go. */
  _Alignas(64) uint32_t entries; /* live and expired entries, one block each */
  uint32_t free_bytes;  /* sum of free blocks' sizes */
  uint32_t lru_newest;  /* LRU list ends (entry block offsets) */
  uint32_t lru_oldest;
  uint32_t bitmap[LC__SHDICT_CLASSES / 32]; /* classes with free blocks */
  uint32_t bins[LC__SHDICT_CLASSES];        /* free list heads */
  uint64_t log[LC__SHDICT_LOG_SIZE / 8];
} lc__shdict_segment;

/* Every block starts so; the payload follows. */
typedef struct lc__shdict_block {
  uint32_t size; /* bytes with this header, a multiple of 8; | USED */
  uint32_t prev; /* size of the block just before (0 for the first) */
} lc__shdict_block;

/* A free block's payload starts with its free-list links. */
typedef struct lc__shdict_links {
  uint32_t next;
  uint32_t prev;
} lc__shdict_links;

/* A used block's payload: one entry, then its key, then (8-aligned) its
 * value. */
typedef struct lc__shdict_entry {
  uint32_t hash_next;  /* next entry of the same bucket */
  uint32_t lru_newer;  /* towards lru_newest */
  uint32_t lru_older;  /* towards lru_oldest */
  uint32_t hash;       /* low 32 bits of the key's hash */
  uint64_t expires;    /* CLOCK_MONOTONIC ms; 0 = never */
  uint32_t user_flags;
  uint32_t value_len;  /* value bytes; a list's: header + capacity */
  uint16_t key_len;
  uint8_t type;        /* LC__SHDICT_T* */
  uint8_t referenced;  /* read since it last reached the LRU's old end */
  uint32_t pad;
} lc__shdict_entry;

/* A list value: items packed in data[head, tail), room on both sides.
 * Each item is [u32 len][u8 type][len bytes][u32 len], so both ends can be
 * popped. */
typedef struct lc__shdict_list {
  uint32_t count;
  uint32_t head;
  uint32_t tail;
  uint32_t capacity;
} lc__shdict_list;

#define LC__SHDICT_ITEM_OVERHEAD 9u

/* The process-local handle. */
struct lc__shdict {
  unsigned char *base;
  size_t size;
  size_t segment_size;
  uint64_t seed;
  unsigned segments;
  int fd;
};

/* Addresses ------------------------------------------------------------- */

static inline unsigned char *lc__shdict_at(lc__shdict_segment *s,
                                           uint32_t off) {
  return (unsigned char *)s + off;
}

static inline lc__shdict_block *lc__shdict_block_at(lc__shdict_segment *s,
                                                    uint32_t off) {
  return (lc__shdict_block *)lc__shdict_at(s, off);
}

static inline uint32_t lc__shdict_block_size(lc__shdict_segment *s,
                                             uint32_t off) {
  return lc__shdict_block_at(s, off)->size & ~LC__SHDICT_USED;
}

static inline int lc__shdict_block_used(lc__shdict_segment *s, uint32_t off) {
  return (lc__shdict_block_at(s, off)->size & LC__SHDICT_USED) != 0;
}

static inline lc__shdict_links *lc__shdict_links_at(lc__shdict_segment *s,
                                                    uint32_t off) {
  return (lc__shdict_links *)(lc__shdict_at(s, off) +
                              sizeof(lc__shdict_block));
}

static inline lc__shdict_entry *lc__shdict_entry_at(lc__shdict_segment *s,
                                                    uint32_t off) {
  return (lc__shdict_entry *)(lc__shdict_at(s, off) +
                              sizeof(lc__shdict_block));
}

static inline size_t lc__shdict_align8(size_t n) { return (n + 7) & ~(size_t)7; }

static inline unsigned char *lc__shdict_key_of(lc__shdict_entry *e) {
  return (unsigned char *)(e + 1);
}

static inline unsigned char *lc__shdict_value_of(lc__shdict_entry *e) {
  return lc__shdict_key_of(e) + lc__shdict_align8(e->key_len);
}

/* Block bytes for an entry with this key and value, 0 past 4 GiB. */
static inline size_t lc__shdict_entry_need(size_t key_len, size_t value_len) {
  size_t n = sizeof(lc__shdict_block) + sizeof(lc__shdict_entry) +
             lc__shdict_align8(key_len) + lc__shdict_align8(value_len);
  return n > UINT32_MAX - 8 ? 0 : n;
}

static inline uint32_t *lc__shdict_bucket(lc__shdict_segment *s,
                                          uint32_t hash) {
  return (uint32_t *)lc__shdict_at(s, s->buckets) + (hash & s->bucket_mask);
}

static inline lc__shdict_segment *lc__shdict_segment_at(const lc__shdict *d,
                                                        unsigned i) {
  return (lc__shdict_segment *)(d->base + LC__SHDICT_HEADER_SIZE +
                                (size_t)i * d->segment_size);
}

/* The undo log ------------------------------------------------------------
 *
 * A change to a segment is a series of steps. Each write of a step first
 * appends the bytes it will overwrite to the segment's log, then writes;
 * the step ends with lc__shdict_commit(), which empties the log. A process
 * that dies inside a step leaves a non-empty log; the next locker undoes it
 * from the newest record back (lc__shdict_repair). Only the compiler can
 * reorder our stores as far as another process sees them once this one is
 * dead (a killed process's stores all land), hence signal fences only.
 */
extern long lc__shdict_crash_countdown;
void lc__shdict_crash_tick(void);
void lc__shdict_log_append(lc__shdict_segment *s, const void *p, uint32_t n);

#define LC__SHDICT_CRASH_POINT()                                               \
  do {                                                                         \
    if (__builtin_expect(lc__shdict_crash_countdown > 0, 0))                   \
      lc__shdict_crash_tick();                                                 \
  } while (0)

static inline void lc__shdict_w32(lc__shdict_segment *s, uint32_t *p,
                                  uint32_t v) {
  if (*p == v)
    return;
  lc__shdict_log_append(s, p, sizeof(*p));
  *p = v;
  atomic_signal_fence(memory_order_seq_cst);
  LC__SHDICT_CRASH_POINT();
}

static inline void lc__shdict_w64(lc__shdict_segment *s, uint64_t *p,
                                  uint64_t v) {
  if (*p == v)
    return;
  lc__shdict_log_append(s, p, sizeof(*p));
  *p = v;
  atomic_signal_fence(memory_order_seq_cst);
  LC__SHDICT_CRASH_POINT();
}

static inline void lc__shdict_w8(lc__shdict_segment *s, uint8_t *p,
                                 uint8_t v) {
  if (*p == v)
    return;
  lc__shdict_log_append(s, p, sizeof(*p));
  *p = v;
  atomic_signal_fence(memory_order_seq_cst);
  LC__SHDICT_CRASH_POINT();
}

/* A step whose only change is one aligned 8-byte word needs no undo
 * record: a single store happens entirely or not at all. Never mix it
 * with logged writes in one step (an undo would not know of it). */
static inline void lc__shdict_w64_alone(uint64_t *p, uint64_t v) {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
  atomic_signal_fence(memory_order_seq_cst);
  LC__SHDICT_CRASH_POINT();
}

/* Overwrites n bytes at dst, of which the first `live` were in use before
 * this step and are logged; the rest were dead bytes nobody reads. */
static inline void lc__shdict_wbytes(lc__shdict_segment *s, void *dst,
                                     const void *src, size_t n, size_t live) {
  if (live > n)
    live = n;
  if (live > 0)
    lc__shdict_log_append(s, dst, (uint32_t)live);
  memcpy(dst, src, n);
  atomic_signal_fence(memory_order_seq_cst);
  LC__SHDICT_CRASH_POINT();
}

static inline void lc__shdict_commit(lc__shdict_segment *s) {
  LC__SHDICT_CRASH_POINT();
  atomic_signal_fence(memory_order_seq_cst);
  s->log_used = 0;
  s->step_freed = 0;
  atomic_signal_fence(memory_order_seq_cst);
}

/* Segments and the allocator (shdict_segment.c) ------------------------- */

int lc__shdict_segment_init(lc__shdict_segment *s, unsigned index,
                            size_t size);
size_t lc__shdict_segment_arena(size_t size);
int lc__shdict_segment_valid(lc__shdict_segment *s, unsigned index,
                             size_t size);
int lc__shdict_lock(lc__shdict_segment *s);
void lc__shdict_unlock(lc__shdict_segment *s);
void lc__shdict_repair(lc__shdict_segment *s);

/* A used block of at least `need` bytes (a multiple of 8), or 0. */
uint32_t lc__shdict_alloc(lc__shdict_segment *s, uint32_t need);
/* Makes the free block at off (at least need bytes) used. */
uint32_t lc__shdict_take(lc__shdict_segment *s, uint32_t off, uint32_t need);
/* Frees a used block; returns the start of the free block it became part
 * of. Nothing freed may be allocated again in the same step. */
uint32_t lc__shdict_free(lc__shdict_segment *s, uint32_t off);
unsigned lc__shdict_class(uint32_t size);
uint32_t lc__shdict_arena_max(const lc__shdict_segment *s);

/* Entries (shdict_index.c) ------------------------------------------------ */

/* A value as bytes: numbers and booleans point into the struct itself. */
typedef struct lc__shdict_bytes {
  int type;
  const void *data;
  size_t len;
  double number;
  unsigned char byte;
} lc__shdict_bytes;

int lc__shdict_to_bytes(lc__shdict_bytes *v, int type, const void *data,
                        size_t len, double number);
uint64_t lc__shdict_hash(uint64_t seed, const void *key, size_t len);
void lc__shdict_link(lc__shdict_segment *s, uint32_t off);
void lc__shdict_unlink(lc__shdict_segment *s, uint32_t off);
uint32_t lc__shdict_remove(lc__shdict_segment *s, uint32_t off);
unsigned lc__shdict_sweep(lc__shdict_segment *s, unsigned max);
uint32_t lc__shdict_make_room(lc__shdict_segment *s, uint32_t need,
                              uint64_t *now, int safe, uint32_t keep,
                              int *forcible);
void lc__shdict_fill(lc__shdict_segment *s, uint32_t off, uint32_t hash,
                     const char *key, size_t key_len, int type,
                     const void *value, size_t value_len, uint64_t expires,
                     uint32_t flags);
int lc__shdict_put(lc__shdict_segment *s, uint64_t hash, const char *key,
                   size_t key_len, const lc__shdict_bytes *v,
                   uint64_t expires, uint32_t flags, uint32_t old, int safe,
                   uint64_t *now, int *forcible);

static inline int lc__shdict_check_key(size_t key_len) {
  if (key_len == 0)
    return LC__SHDICT_EEMPTYKEY;
  if (key_len > LC__SHDICT_KEY_MAX)
    return LC__SHDICT_EKEYLEN;
  return 0;
}

/* The segment of a key: bits 40.. of its hash (the bucket uses the low
 * ones). */
static inline lc__shdict_segment *lc__shdict_segment_of(const lc__shdict *d,
                                                        uint64_t hash) {
  return lc__shdict_segment_at(d, (unsigned)(hash >> 40) &
                                      (d->segments - 1));
}

/* The entry of a key in its segment, or 0. */
static inline uint32_t lc__shdict_find(lc__shdict_segment *s, uint64_t hash,
                                       const char *key, size_t key_len) {
  uint32_t off = *lc__shdict_bucket(s, (uint32_t)hash);
  lc__shdict_entry *e;

  while (off != 0) {
    e = lc__shdict_entry_at(s, off);
    if (e->hash == (uint32_t)hash && e->key_len == key_len &&
        memcmp(lc__shdict_key_of(e), key, key_len) == 0)
      return off;
    off = e->hash_next;
  }
  return 0;
}

/* Time: CLOCK_MONOTONIC in ms, read at most once per call (*now = 0 until
 * someone needs it). */
uint64_t lc__shdict_clock_ms(void);

static inline uint64_t lc__shdict_now(uint64_t *now) {
  if (*now == 0)
    *now = lc__shdict_clock_ms();
  return *now;
}

static inline int lc__shdict_expired(const lc__shdict_entry *e,
                                     uint64_t *now) {
  return e->expires != 0 && e->expires <= lc__shdict_now(now);
}

static inline uint64_t lc__shdict_expiry(int64_t ttl_ms, uint64_t *now) {
  uint64_t t;

  if (ttl_ms <= 0)
    return 0;
  t = lc__shdict_now(now);
  return (uint64_t)ttl_ms > UINT64_MAX - t ? UINT64_MAX : t + (uint64_t)ttl_ms;
}

/* Internal checks (shdict_check.c), called with the lock held. */
int lc__shdict_check_segment(const lc__shdict *d, lc__shdict_segment *s,
                             char *err, size_t errlen);

#endif
