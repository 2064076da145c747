/*
 * shdict_segment.c - one segment of a shared dict: its robust lock, the
 * undo log that makes a dead holder's half-done change undoable, and the
 * allocator over its arena.
 *
 * The allocator keeps every block (free or used) in address order with a
 * boundary tag (its size and its predecessor's size), so a freed block
 * merges with free neighbours at once: free space is never two adjacent
 * pieces. Free blocks sit in 128 size classes (4 per power of two) with a
 * bitmap of the non-empty ones; alloc takes the first block of the first
 * class that surely fits, then looks through the request's own class, and
 * splits off the rest. That it merges is what lets eviction produce one
 * block of any size (shdict.c evicts a block's neighbours).
 *
 * Every write here goes through the undo log (lc__shdict_w32), free-list
 * links included, so an interrupted alloc or free is undone like the rest.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "shdict_segment.h"

long lc__shdict_crash_countdown;

void lc__shdict_crash_tick(void) {
  if (--lc__shdict_crash_countdown == 0) {
    kill(getpid(), SIGKILL);
    for (;;)
      pause();
  }
}

/* The undo log ------------------------------------------------------------ */

void lc__shdict_log_append(lc__shdict_segment *s, const void *p, uint32_t n) {
  uint32_t at = s->log_used;
  uint32_t record = 8 + (uint32_t)lc__shdict_align8(n);
  uint32_t off = (uint32_t)((const unsigned char *)p - (unsigned char *)s);
  unsigned char *r = (unsigned char *)s->log + at;

  /* A step is a fixed handful of writes; one that overflows is a bug. */
  if (at + record > LC__SHDICT_LOG_SIZE)
    abort();
  memcpy(r, &off, 4);
  memcpy(r + 4, &n, 4);
  memcpy(r + 8, p, n);
  atomic_signal_fence(memory_order_seq_cst);
  s->log_used = at + record;
  atomic_signal_fence(memory_order_seq_cst);
  LC__SHDICT_CRASH_POINT();
}

/* Puts back what the log saved, newest first, then empties it. Running it
 * twice (its runner killed too) gives the same result. */
void lc__shdict_repair(lc__shdict_segment *s) {
  uint32_t starts[LC__SHDICT_LOG_SIZE / 16];
  uint32_t used = s->log_used, at = 0, n = 0, off, len;
  unsigned char *r;

  if (used > LC__SHDICT_LOG_SIZE)
    used = 0;
  while (at + 8 <= used) {
    r = (unsigned char *)s->log + at;
    memcpy(&off, r, 4);
    memcpy(&len, r + 4, 4);
    if (len > used - at - 8 || off > s->size || len > s->size - off)
      break;
    starts[n++] = at;
    at += 8 + (uint32_t)lc__shdict_align8(len);
  }
  while (n-- > 0) {
    r = (unsigned char *)s->log + starts[n];
    memcpy(&off, r, 4);
    memcpy(&len, r + 4, 4);
    memcpy(lc__shdict_at(s, off), r + 8, len);
  }
  atomic_signal_fence(memory_order_seq_cst);
  s->log_used = 0;
  s->step_freed = 0;
  atomic_signal_fence(memory_order_seq_cst);
}

/* The lock ---------------------------------------------------------------- */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Whether the mutex looks held, without writing its cache line (glibc
 * keeps the owner's tid in its first word). */
static inline int looks_locked(pthread_mutex_t *m) {
#ifdef __GLIBC__
  return __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) != 0;
#else
  (void)m;
  return 0;
#endif
}

/* Locks; when the last holder died with the lock, repairs the segment
 * first. Fails only if the mutex itself is unusable. A holder keeps the
 * lock for well under a microsecond, and glibc's robust mutexes go
 * straight to a futex sleep when taken: spinning a little first spares
 * two system calls and a context switch on each collision. The waiter
 * looks at the lock after 1, 2, 4, ... 1024 pauses (2047 in all, nginx's
 * shmtx spins the same way): looking at every pause took the lock's cache
 * line from its holder each time, and two workers writing one hot key made
 * a fifth of what one makes alone. */
int lc__shdict_lock(lc__shdict_segment *s) {
  int rc = pthread_mutex_trylock(&s->lock), probes, i, pause = 1;

  for (probes = 0; probes < LC__SHDICT_PROBES && rc == EBUSY; probes++) {
    for (i = 0; i < pause; i++)
      cpu_relax();
    if (pause < LC__SHDICT_MAX_PAUSE)
      pause <<= 1;
    if (!looks_locked(&s->lock))
      rc = pthread_mutex_trylock(&s->lock);
  }
  if (rc == EBUSY)
    rc = pthread_mutex_lock(&s->lock);
  if (rc != 0 && rc != EOWNERDEAD)
    return -rc;
  /* Odd from here to the unlock (still odd if the last holder died). */
  __atomic_store_n(&s->seq, s->seq + (s->seq & 1 ? 2 : 1), __ATOMIC_RELAXED);
  atomic_thread_fence(memory_order_release);
  if (rc == EOWNERDEAD) {
    lc__shdict_repair(s);
    s->repairs++;
    pthread_mutex_consistent(&s->lock);
  } else if (s->log_used != 0) { /* a holder left mid-step: never here */
    lc__shdict_repair(s);
  }
  return 0;
}

void lc__shdict_unlock(lc__shdict_segment *s) {
  __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&s->lock);
}

/* Size classes ------------------------------------------------------------ */

/* 4 classes per power of two from 16 bytes: [16,20) [20,24) ... */
unsigned lc__shdict_class(uint32_t size) {
  unsigned top = 31 - (unsigned)__builtin_clz(size);

  return (top - 4) * 4 + ((size >> (top - 2)) & 3);
}

static uint32_t class_floor(unsigned c) {
  unsigned top = c / 4 + 4;

  return (1u << top) | ((uint32_t)(c & 3) << (top - 2));
}

static int first_class_from(lc__shdict_segment *s, unsigned c) {
  unsigned w;
  uint32_t m;

  for (w = c / 32; w < LC__SHDICT_CLASSES / 32; w++) {
    m = s->bitmap[w];
    if (w == c / 32)
      m &= ~0u << (c % 32);
    if (m != 0)
      return (int)(w * 32 + (unsigned)__builtin_ctz(m));
  }
  return -1;
}

static void bin_insert(lc__shdict_segment *s, uint32_t off) {
  unsigned c = lc__shdict_class(lc__shdict_block_size(s, off));
  lc__shdict_links *l = lc__shdict_links_at(s, off);
  uint32_t head = s->bins[c];

  lc__shdict_w32(s, &l->next, head);
  lc__shdict_w32(s, &l->prev, 0);
  if (head != 0)
    lc__shdict_w32(s, &lc__shdict_links_at(s, head)->prev, off);
  lc__shdict_w32(s, &s->bins[c], off);
  lc__shdict_w32(s, &s->bitmap[c / 32], s->bitmap[c / 32] | 1u << (c % 32));
}

/* Unlinks a free block. Its links are logged even when they are already
 * zero (lc__shdict_w32 would skip them): whoever takes the block writes
 * its payload unlogged, and an undo must find them intact. */
static void bin_remove(lc__shdict_segment *s, uint32_t off) {
  static const lc__shdict_links none = {0, 0};
  unsigned c = lc__shdict_class(lc__shdict_block_size(s, off));
  lc__shdict_links *l = lc__shdict_links_at(s, off);

  if (l->prev != 0)
    lc__shdict_w32(s, &lc__shdict_links_at(s, l->prev)->next, l->next);
  else
    lc__shdict_w32(s, &s->bins[c], l->next);
  if (l->next != 0)
    lc__shdict_w32(s, &lc__shdict_links_at(s, l->next)->prev, l->prev);
  if (s->bins[c] == 0)
    lc__shdict_w32(s, &s->bitmap[c / 32],
                   s->bitmap[c / 32] & ~(1u << (c % 32)));
  lc__shdict_wbytes(s, l, &none, sizeof(none), sizeof(none));
}

/* Allocation -------------------------------------------------------------- */

uint32_t lc__shdict_take(lc__shdict_segment *s, uint32_t off, uint32_t need) {
  uint32_t size = lc__shdict_block_size(s, off);
  uint32_t rest = size - need, r;

  bin_remove(s, off);
  if (rest >= LC__SHDICT_BLOCK_MIN) {
    r = off + need;
    lc__shdict_w32(s, &lc__shdict_block_at(s, r)->size, rest);
    lc__shdict_w32(s, &lc__shdict_block_at(s, r)->prev, need);
    lc__shdict_w32(s, &lc__shdict_block_at(s, r + rest)->prev, rest);
    lc__shdict_w32(s, &lc__shdict_block_at(s, off)->size,
                   need | LC__SHDICT_USED);
    bin_insert(s, r);
    size = need;
  } else {
    lc__shdict_w32(s, &lc__shdict_block_at(s, off)->size,
                   size | LC__SHDICT_USED);
  }
  lc__shdict_w32(s, &s->free_bytes, s->free_bytes - size);
  return off;
}

uint32_t lc__shdict_alloc(lc__shdict_segment *s, uint32_t need) {
  unsigned c = lc__shdict_class(need);
  int k;
  uint32_t off;
  unsigned looked;

  /* Memory freed in this step may still be needed by its undo. */
  if (s->step_freed)
    abort();
  k = first_class_from(s, need > class_floor(c) ? c + 1 : c);
  if (k >= 0)
    return lc__shdict_take(s, s->bins[k], need);
  off = s->bins[c];
  for (looked = 0; off != 0 && looked < 16; looked++) {
    if (lc__shdict_block_size(s, off) >= need)
      return lc__shdict_take(s, off, need);
    off = lc__shdict_links_at(s, off)->next;
  }
  return 0;
}

uint32_t lc__shdict_free(lc__shdict_segment *s, uint32_t off) {
  uint32_t size = lc__shdict_block_size(s, off);
  uint32_t total = size, next = off + size, prev;

  lc__shdict_w32(s, &s->free_bytes, s->free_bytes + size);
  if (!lc__shdict_block_used(s, next)) {
    bin_remove(s, next);
    total += lc__shdict_block_size(s, next);
  }
  if (lc__shdict_block_at(s, off)->prev != 0) {
    prev = off - lc__shdict_block_at(s, off)->prev;
    if (!lc__shdict_block_used(s, prev)) {
      bin_remove(s, prev);
      total += lc__shdict_block_size(s, prev);
      off = prev;
    }
  }
  lc__shdict_w32(s, &lc__shdict_block_at(s, off)->size, total);
  lc__shdict_w32(s, &lc__shdict_block_at(s, off + total)->prev, total);
  bin_insert(s, off);
  s->step_freed = 1;
  return off;
}

uint32_t lc__shdict_arena_max(const lc__shdict_segment *s) {
  return s->arena_end - s->arena;
}

/* Setting up -------------------------------------------------------------- */

static uint32_t header_bytes(void) {
  return (uint32_t)((sizeof(lc__shdict_segment) + 63) & ~(size_t)63);
}

static uint32_t bucket_count(size_t size) {
  uint32_t n = 16;

  while ((size_t)n * 2 * 128 <= size)
    n *= 2;
  return n;
}

/* Lays out a fresh segment of `size` bytes: header, buckets, one free
 * block over the whole arena, and an end marker. */
int lc__shdict_segment_init(lc__shdict_segment *s, unsigned index,
                            size_t size) {
  pthread_mutexattr_t attr;
  uint32_t buckets = bucket_count(size), arena;
  int rc;

  memset(s, 0, sizeof(*s));
  if ((rc = pthread_mutexattr_init(&attr)) != 0)
    return -rc;
  rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0)
    rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0)
    rc = pthread_mutex_init(&s->lock, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0)
    return -rc;
  s->magic = LC__SHDICT_SEGMENT_MAGIC;
  s->index = index;
  s->size = (uint32_t)size;
  s->buckets = header_bytes();
  s->bucket_mask = buckets - 1;
  memset(lc__shdict_at(s, s->buckets), 0, (size_t)buckets * 4);
  arena = (uint32_t)lc__shdict_align8(s->buckets + (size_t)buckets * 4);
  s->arena = arena;
  s->arena_end = (uint32_t)((size - sizeof(lc__shdict_block)) & ~(size_t)7);
  lc__shdict_block_at(s, arena)->size = s->arena_end - arena;
  lc__shdict_block_at(s, arena)->prev = 0;
  lc__shdict_block_at(s, s->arena_end)->size = LC__SHDICT_USED;
  lc__shdict_block_at(s, s->arena_end)->prev = s->arena_end - arena;
  s->free_bytes = s->arena_end - arena;
  bin_insert(s, arena);
  lc__shdict_commit(s);
  return 0;
}

/* Room a segment of `size` bytes leaves for blocks (for create's checks). */
size_t lc__shdict_segment_arena(size_t size) {
  size_t arena = lc__shdict_align8(header_bytes() +
                                   (size_t)bucket_count(size) * 4);
  size_t end = (size - sizeof(lc__shdict_block)) & ~(size_t)7;

  return end > arena ? end - arena : 0;
}

/* Whether an attached segment's header is what its creator wrote. */
int lc__shdict_segment_valid(lc__shdict_segment *s, unsigned index,
                             size_t size) {
  uint32_t buckets = bucket_count(size);

  return s->magic == LC__SHDICT_SEGMENT_MAGIC && s->index == index &&
         s->size == size && s->buckets == header_bytes() &&
         s->bucket_mask == buckets - 1 &&
         s->arena == lc__shdict_align8(s->buckets + (size_t)buckets * 4) &&
         s->arena_end == ((size - sizeof(lc__shdict_block)) & ~(size_t)7) &&
         s->log_used <= LC__SHDICT_LOG_SIZE;
}
