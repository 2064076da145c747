/*
 * shdict.c - the shared dict's operations, with the semantics of
 * OpenResty's ngx.shared.DICT; and the design of the whole.
 *
 * Memory (shdict_memory.c). One memfd, mapped MAP_SHARED by every
 * process: it survives the exec that starts a worker (an anonymous shared
 * mapping would not) and lives while anyone maps it. Page 0 holds a header
 * (magic, version, geometry, hash seed) that attach checks; then come 2^k
 * segments (1..64), each with its own robust process-shared mutex, hash
 * index, LRU list and allocator (shdict_segment.c, shdict_index.c). A
 * key's hash picks its segment, and an operation on a key locks that
 * segment only, briefly: no allocation, no system call, no Lua while it is
 * held. Whole-dict operations (flush_all, flush_expired, get_keys,
 * free_space, check) go one segment at a time.
 *
 * Crash safety. The invariant: outside a step, every segment is
 * consistent (its index, LRU list and blocks agree; lc__shdict_check
 * verifies it), and inside one, its undo log holds the old contents of
 * every byte the step changed that a consistent segment uses. A change
 * is one or more steps; each write first logs what it overwrites
 * (lc__shdict_w32 and friends) and lc__shdict_commit ends the step by
 * emptying the log. Writes that skip the log touch only bytes nobody uses
 * yet (a block this step allocated, a list's room beyond its ends, the
 * `referenced` hint), or are a step's only change and one aligned 8-byte
 * store (incr, a same-size number), which lands whole or not at all.
 * Memory freed in a step is not reused before the step ends (the
 * allocator aborts if asked to), so no write of a step clobbers what its
 * undo needs. A process killed inside a step still holds the segment's
 * mutex; the next locker gets EOWNERDEAD, undoes the log newest-first
 * (lc__shdict_repair: the segment is as before the step) and marks the
 * mutex consistent. A repairer killed while repairing leaves the same log
 * to the next one. Steps end where the state is one a user may see: an
 * eviction is a step of its own; everything a change does to its key (a
 * new block, the relinking, freeing the old block; or the bytes
 * overwritten in place) is one step, so a killed set, incr, push or pop
 * happened entirely or not at all. One exception, as in OpenResty: a set
 * that must evict drops the key's old value first, so a kill there leaves
 * the key absent, as if evicted; a safe_ set keeps the old value.
 *
 * Contention. The lock spins briefly before sleeping (a holder keeps it
 * for well under a microsecond). get, the commonest call, reads without
 * it when it can (get_unlocked): between two loads of the segment's
 * sequence number, which the lock makes odd and the unlock even again. A
 * reader writes nothing shared, so readers in many processes do not take
 * cache lines from each other; a write or a dead holder in between sends
 * the reader to the lock.
 *
 * Time. Expiry uses CLOCK_MONOTONIC milliseconds: one clock for every
 * process of the host (the dict never outlives a boot), and stepping the
 * wall clock (NTP, an operator) neither expires nor revives anything.
 *
 * Errors are OpenResty's strings (lc__shdict_strerror); get and pop
 * report "not found" as a code the binding turns into nil.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "shdict_segment.h"


uint64_t lc__shdict_clock_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Block bytes for key and value, or 0 when no segment could hold them. */
static uint32_t entry_need(const lc__shdict *d, size_t key_len,
                           size_t value_len) {
  size_t need = lc__shdict_entry_need(key_len, value_len);

  if (need == 0 || need > lc__shdict_arena_max(lc__shdict_segment_at(d, 0)))
    return 0;
  return (uint32_t)need;
}

/* Values ------------------------------------------------------------------ */

static int read_value(lc__shdict_entry *e, lc__shdict_value *out, void *buf,
                      size_t cap) {
  const unsigned char *value = lc__shdict_value_of(e);

  out->type = e->type;
  out->flags = e->user_flags;
  out->number = 0;
  out->len = 0;
  switch (e->type) {
  case LC__SHDICT_TLIST:
    return LC__SHDICT_EISLIST;
  case LC__SHDICT_TNUMBER:
    memcpy(&out->number, value, sizeof(double));
    return 0;
  case LC__SHDICT_TBOOLEAN:
    out->number = value[0];
    return 0;
  default:
    out->len = e->value_len;
    if (out->len > cap)
      return LC__SHDICT_ETOOSMALL;
    if (out->len != 0)
      memcpy(buf, value, out->len);
    return 0;
  }
}

#define TAKE_THE_LOCK 1

#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* The entry of key, found without the lock: every offset and length is
 * checked before use, for a read racing a writer may see anything. 0 if
 * absent, TAKE_THE_LOCK if the chain looks wrong. */
static uint32_t find_unlocked(lc__shdict_segment *s, uint64_t hash,
                              const char *key, size_t key_len) {
  uint32_t off = LOAD(*lc__shdict_bucket(s, (uint32_t)hash)), steps = 0;
  uint32_t last = s->arena_end - sizeof(lc__shdict_block) -
                  sizeof(lc__shdict_entry);
  lc__shdict_entry *e;

  for (; off != 0; off = LOAD(e->hash_next)) {
    if (off < s->arena || off > last || off % 8 != 0 || ++steps > 64)
      return TAKE_THE_LOCK;
    e = lc__shdict_entry_at(s, off);
    if (LOAD(e->hash) == (uint32_t)hash && LOAD(e->key_len) == key_len &&
        key_len <= last - off &&
        memcmp(lc__shdict_key_of(e), key, key_len) == 0)
      return off;
  }
  return 0;
}

/* get without the lock, between two reads of the segment's sequence
 * number: if a writer came in between (or died holding the lock), or the
 * entry has not been marked read yet (marking needs the lock), the answer
 * is TAKE_THE_LOCK. A reader then writes nothing shared, so readers of a
 * segment no longer take its lock's cache line from each other. */
static int get_unlocked(lc__shdict_segment *s, uint64_t hash,
                        const char *key, size_t key_len, int stale,
                        lc__shdict_value *out, void *buf, size_t cap) {
  uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE), off, len, at;
  uint64_t now = 0, expires;
  const unsigned char *value;
  lc__shdict_entry *e;
  int rc;

  if (seq & 1)
    return TAKE_THE_LOCK;
  off = find_unlocked(s, hash, key, key_len);
  if (off == TAKE_THE_LOCK)
    return TAKE_THE_LOCK;
  if (off == 0) {
    rc = LC__SHDICT_ENOTFOUND;
  } else {
    e = lc__shdict_entry_at(s, off);
    /* where the value starts, from the key length already checked */
    at = off + (uint32_t)(sizeof(lc__shdict_block) + sizeof(lc__shdict_entry) +
                          lc__shdict_align8(key_len));
    value = lc__shdict_at(s, at);
    len = LOAD(e->value_len);
    expires = LOAD(e->expires);
    out->type = LOAD(e->type);
    out->flags = LOAD(e->user_flags);
    out->number = 0;
    out->len = 0;
    out->stale = expires != 0 && expires <= lc__shdict_now(&now);
    if (!LOAD(e->referenced) || at > s->arena_end || len > s->arena_end - at)
      return TAKE_THE_LOCK;
    if (out->stale && !stale) {
      rc = LC__SHDICT_ENOTFOUND;
    } else if (out->type == LC__SHDICT_TNUMBER && len == 8) {
      memcpy(&out->number, value, sizeof(double));
      rc = 0;
    } else if (out->type == LC__SHDICT_TBOOLEAN && len == 1) {
      out->number = value[0];
      rc = 0;
    } else if (out->type == LC__SHDICT_TSTRING ||
               out->type == LC__SHDICT_TTABLE) {
      out->len = len;
      rc = len > cap ? LC__SHDICT_ETOOSMALL : 0;
      if (rc == 0 && len != 0)
        memcpy(buf, value, len);
    } else if (out->type == LC__SHDICT_TLIST) {
      rc = LC__SHDICT_EISLIST;
    } else {
      return TAKE_THE_LOCK;
    }
  }
  atomic_thread_fence(memory_order_acquire);
  return __atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq ? rc
                                                           : TAKE_THE_LOCK;
}

int lc__shdict_get(lc__shdict *d, const char *key, size_t key_len,
                   int stale, lc__shdict_value *out, void *buf, size_t cap) {
  uint64_t hash, now = 0;
  lc__shdict_segment *s;
  lc__shdict_entry *e;
  uint32_t off;
  int rc;

  out->stale = 0;
  if ((rc = lc__shdict_check_key(key_len)) != 0)
    return rc;
  hash = lc__shdict_hash(d->seed, key, key_len);
  s = lc__shdict_segment_of(d, hash);
  rc = get_unlocked(s, hash, key, key_len, stale, out, buf, cap);
  if (rc != TAKE_THE_LOCK)
    return rc;
  out->stale = 0;
  if ((rc = lc__shdict_lock(s)) != 0)
    return rc;
  off = lc__shdict_find(s, hash, key, key_len);
  if (off == 0) {
    rc = LC__SHDICT_ENOTFOUND;
  } else {
    e = lc__shdict_entry_at(s, off);
    out->stale = lc__shdict_expired(e, &now);
    if (out->stale && !stale)
      rc = LC__SHDICT_ENOTFOUND;
    else
      rc = read_value(e, out, buf, cap);
    if (rc != LC__SHDICT_ENOTFOUND && !e->referenced)
      e->referenced = 1;
  }
  lc__shdict_unlock(s);
  return rc;
}

static int store_locked(lc__shdict_segment *s, int op, uint64_t hash,
                        const char *key, size_t key_len,
                        const lc__shdict_bytes *v, int64_t ttl_ms,
                        uint32_t flags, int *forcible) {
  uint64_t now = 0;
  uint32_t off;
  int live;

  lc__shdict_sweep(s, 2);
  off = lc__shdict_find(s, hash, key, key_len);
  live = off != 0 && !lc__shdict_expired(lc__shdict_entry_at(s, off), &now);
  if ((op & LC__SHDICT_ADD) && live)
    return LC__SHDICT_EEXISTS;
  if ((op & LC__SHDICT_REPLACE) && !live)
    return LC__SHDICT_ENOTFOUND;
  if (v->type == LC__SHDICT_TNIL) {
    if (off != 0)
      lc__shdict_remove(s, off);
    return 0;
  }
  return lc__shdict_put(s, hash, key, key_len, v,
                        lc__shdict_expiry(ttl_ms, &now), flags, off,
                        op & LC__SHDICT_SAFE, &now, forcible);
}

int lc__shdict_store(lc__shdict *d, int op, const char *key, size_t key_len,
                     int type, const void *data, size_t len, double number,
                     int64_t ttl_ms, uint32_t flags, int *forcible) {
  lc__shdict_bytes v;
  lc__shdict_segment *s;
  uint64_t hash;
  int rc, ignored;

  if (forcible == NULL)
    forcible = &ignored;
  *forcible = 0;
  if ((rc = lc__shdict_check_key(key_len)) != 0)
    return rc;
  if (type == LC__SHDICT_TNIL &&
      (op & (LC__SHDICT_ADD | LC__SHDICT_REPLACE)))
    return LC__SHDICT_ENIL;
  if ((rc = lc__shdict_to_bytes(&v, type, data, len, number)) != 0)
    return rc;
  if (ttl_ms < 0)
    return LC__SHDICT_EBADTTL;
  if (type != LC__SHDICT_TNIL && entry_need(d, key_len, v.len) == 0)
    return LC__SHDICT_EVALUELEN;
  hash = lc__shdict_hash(d->seed, key, key_len);
  s = lc__shdict_segment_of(d, hash);
  if ((rc = lc__shdict_lock(s)) != 0)
    return rc;
  rc = store_locked(s, op, hash, key, key_len, &v, ttl_ms, flags, forcible);
  lc__shdict_unlock(s);
  return rc;
}

int lc__shdict_delete(lc__shdict *d, const char *key, size_t key_len) {
  return lc__shdict_store(d, LC__SHDICT_SET, key, key_len, LC__SHDICT_TNIL,
                          NULL, 0, 0, 0, 0, NULL);
}

static int incr_locked(lc__shdict_segment *s, uint64_t hash, const char *key,
                       size_t key_len, double by, int has_init, double init,
                       int64_t init_ttl_ms, double *result, int *forcible) {
  uint64_t now = 0, bits;
  lc__shdict_bytes v;
  lc__shdict_entry *e;
  uint32_t off;
  double n;
  int rc;

  lc__shdict_sweep(s, 2);
  off = lc__shdict_find(s, hash, key, key_len);
  if (off != 0 && !lc__shdict_expired(lc__shdict_entry_at(s, off), &now)) {
    e = lc__shdict_entry_at(s, off);
    if (e->type != LC__SHDICT_TNUMBER)
      return LC__SHDICT_ENOTNUMBER;
    memcpy(&n, lc__shdict_value_of(e), sizeof(n));
    n += by;
    memcpy(&bits, &n, sizeof(bits));
    lc__shdict_w64_alone((uint64_t *)(void *)lc__shdict_value_of(e), bits);
    lc__shdict_commit(s);
    if (!e->referenced)
      e->referenced = 1;
    *result = n;
    return 0;
  }
  if (!has_init)
    return LC__SHDICT_ENOTFOUND;
  n = init + by;
  lc__shdict_to_bytes(&v, LC__SHDICT_TNUMBER, NULL, 0, n);
  rc = lc__shdict_put(s, hash, key, key_len, &v,
                      lc__shdict_expiry(init_ttl_ms, &now), 0, off, 0, &now,
                      forcible);
  if (rc == 0)
    *result = n;
  return rc;
}

int lc__shdict_incr(lc__shdict *d, const char *key, size_t key_len,
                    double by, int has_init, double init, int64_t init_ttl_ms,
                    double *result, int *forcible) {
  lc__shdict_segment *s;
  uint64_t hash;
  int rc, ignored;

  if (forcible == NULL)
    forcible = &ignored;
  *forcible = 0;
  if ((rc = lc__shdict_check_key(key_len)) != 0)
    return rc;
  if (init_ttl_ms < 0)
    return LC__SHDICT_EBADTTL;
  if (entry_need(d, key_len, sizeof(double)) == 0)
    return LC__SHDICT_EVALUELEN;
  hash = lc__shdict_hash(d->seed, key, key_len);
  s = lc__shdict_segment_of(d, hash);
  if ((rc = lc__shdict_lock(s)) != 0)
    return rc;
  rc = incr_locked(s, hash, key, key_len, by, has_init, init, init_ttl_ms,
                   result, forcible);
  lc__shdict_unlock(s);
  return rc;
}

static int same_value(lc__shdict_entry *e, const lc__shdict_bytes *v) {
  double n;

  if (e->type != v->type)
    return 0;
  if (e->type == LC__SHDICT_TNUMBER) {
    memcpy(&n, lc__shdict_value_of(e), sizeof(n));
    return n == v->number;
  }
  return e->value_len == v->len &&
         (v->len == 0 || memcmp(lc__shdict_value_of(e), v->data, v->len) == 0);
}

int lc__shdict_cas(lc__shdict *d, const char *key, size_t key_len,
                   const lc__shdict_input *expected,
                   const lc__shdict_input *new_value, int64_t ttl_ms,
                   uint32_t flags, int *forcible) {
  lc__shdict_bytes want, v;
  lc__shdict_segment *s;
  uint64_t hash, now = 0;
  uint32_t off;
  int rc, live, ignored;

  if (forcible == NULL)
    forcible = &ignored;
  *forcible = 0;
  if ((rc = lc__shdict_check_key(key_len)) != 0)
    return rc;
  if ((rc = lc__shdict_to_bytes(&want, expected->type, expected->data,
                                expected->len, expected->number)) != 0 ||
      (rc = lc__shdict_to_bytes(&v, new_value->type, new_value->data,
                                new_value->len, new_value->number)) != 0)
    return rc;
  if (ttl_ms < 0)
    return LC__SHDICT_EBADTTL;
  if (v.type != LC__SHDICT_TNIL && entry_need(d, key_len, v.len) == 0)
    return LC__SHDICT_EVALUELEN;
  hash = lc__shdict_hash(d->seed, key, key_len);
  s = lc__shdict_segment_of(d, hash);
  if ((rc = lc__shdict_lock(s)) != 0)
    return rc;
  lc__shdict_sweep(s, 2);
  off = lc__shdict_find(s, hash, key, key_len);
  live = off != 0 && !lc__shdict_expired(lc__shdict_entry_at(s, off), &now);
  if (want.type == LC__SHDICT_TNIL)
    rc = live ? LC__SHDICT_ECHANGED : 0;
  else if (!live)
    rc = LC__SHDICT_ENOTFOUND;
  else if (!same_value(lc__shdict_entry_at(s, off), &want))
    rc = LC__SHDICT_ECHANGED;
  if (rc == 0 && v.type == LC__SHDICT_TNIL && off != 0)
    lc__shdict_remove(s, off);
  else if (rc == 0 && v.type != LC__SHDICT_TNIL)
    rc = lc__shdict_put(s, hash, key, key_len, &v,
                        lc__shdict_expiry(ttl_ms, &now), flags, off, 0, &now,
                        forcible);
  lc__shdict_unlock(s);
  return rc;
}

/* Finds a live key under the lock for ttl and expire. */
static int find_live(lc__shdict *d, const char *key, size_t key_len,
                     lc__shdict_segment **sp, lc__shdict_entry **ep,
                     uint64_t *now) {
  uint64_t hash;
  uint32_t off;
  int rc;

  if ((rc = lc__shdict_check_key(key_len)) != 0)
    return rc;
  hash = lc__shdict_hash(d->seed, key, key_len);
  *sp = lc__shdict_segment_of(d, hash);
  if ((rc = lc__shdict_lock(*sp)) != 0)
    return rc;
  off = lc__shdict_find(*sp, hash, key, key_len);
  if (off == 0 || lc__shdict_expired(lc__shdict_entry_at(*sp, off), now)) {
    lc__shdict_unlock(*sp);
    return LC__SHDICT_ENOTFOUND;
  }
  *ep = lc__shdict_entry_at(*sp, off);
  return 0;
}

int lc__shdict_ttl(lc__shdict *d, const char *key, size_t key_len,
                   int64_t *ttl_ms) {
  lc__shdict_segment *s;
  lc__shdict_entry *e;
  uint64_t now = 0;
  int rc;

  if ((rc = find_live(d, key, key_len, &s, &e, &now)) != 0)
    return rc;
  *ttl_ms = e->expires == 0 ? 0 : (int64_t)(e->expires - lc__shdict_now(&now));
  lc__shdict_unlock(s);
  return 0;
}

int lc__shdict_expire(lc__shdict *d, const char *key, size_t key_len,
                      int64_t ttl_ms) {
  lc__shdict_segment *s;
  lc__shdict_entry *e;
  uint64_t now = 0;
  int rc;

  if (ttl_ms < 0)
    return LC__SHDICT_EBADTTL;
  if ((rc = find_live(d, key, key_len, &s, &e, &now)) != 0)
    return rc;
  lc__shdict_w64(s, &e->expires, lc__shdict_expiry(ttl_ms, &now));
  lc__shdict_commit(s);
  lc__shdict_unlock(s);
  return 0;
}

/* The whole dict ---------------------------------------------------------- */

int lc__shdict_flush_all(lc__shdict *d) {
  lc__shdict_segment *s;
  lc__shdict_entry *e;
  uint32_t off;
  unsigned i;
  int rc;

  for (i = 0; i < d->segments; i++) {
    s = lc__shdict_segment_at(d, i);
    if ((rc = lc__shdict_lock(s)) != 0)
      return rc;
    for (off = s->lru_oldest; off != 0; off = e->lru_newer) {
      e = lc__shdict_entry_at(s, off);
      lc__shdict_w64(s, &e->expires, 1); /* 1 ms after boot: long gone */
      lc__shdict_commit(s);
    }
    lc__shdict_unlock(s);
  }
  return 0;
}

int lc__shdict_flush_expired(lc__shdict *d, size_t max, size_t *count) {
  lc__shdict_segment *s;
  uint32_t off, next;
  uint64_t now = 0;
  unsigned i;
  int rc;

  *count = 0;
  for (i = 0; i < d->segments && (max == 0 || *count < max); i++) {
    s = lc__shdict_segment_at(d, i);
    if ((rc = lc__shdict_lock(s)) != 0)
      return rc;
    for (off = s->lru_oldest; off != 0 && (max == 0 || *count < max);
         off = next) {
      next = lc__shdict_entry_at(s, off)->lru_newer;
      if (lc__shdict_expired(lc__shdict_entry_at(s, off), &now)) {
        lc__shdict_remove(s, off);
        ++*count;
      }
    }
    lc__shdict_unlock(s);
  }
  return 0;
}

typedef struct key_buffer {
  char *data;
  size_t len;
  size_t cap;
} key_buffer;

static int append_key(key_buffer *b, const lc__shdict_entry *e) {
  uint16_t len = e->key_len;
  size_t cap;
  char *data;

  if (b->len + 2 + len > b->cap) {
    cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + 2 + len)
      cap *= 2;
    if ((data = realloc(b->data, cap)) == NULL)
      return -ENOMEM;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, &len, 2);
  memcpy(b->data + b->len + 2, lc__shdict_key_of((lc__shdict_entry *)e), len);
  b->len += 2 + (size_t)len;
  return 0;
}

int lc__shdict_get_keys(lc__shdict *d, size_t max, char **keys,
                        size_t *bytes, size_t *count) {
  key_buffer b = {NULL, 0, 0};
  lc__shdict_segment *s;
  lc__shdict_entry *e;
  uint64_t now = 0;
  size_t n = 0;
  uint32_t off;
  unsigned i;
  int rc = 0;

  for (i = 0; i < d->segments && rc == 0 && (max == 0 || n < max); i++) {
    s = lc__shdict_segment_at(d, i);
    if ((rc = lc__shdict_lock(s)) != 0)
      break;
    for (off = s->lru_oldest; off != 0 && (max == 0 || n < max);
         off = e->lru_newer) {
      e = lc__shdict_entry_at(s, off);
      if (lc__shdict_expired(e, &now))
        continue;
      if ((rc = append_key(&b, e)) != 0)
        break;
      n++;
    }
    lc__shdict_unlock(s);
  }
  if (rc != 0) {
    free(b.data);
    return rc;
  }
  *keys = b.data;
  *bytes = b.len;
  *count = n;
  return 0;
}

int lc__shdict_check(lc__shdict *d, char *err, size_t errlen) {
  lc__shdict_segment *s;
  unsigned i;
  int rc;

  for (i = 0; i < d->segments; i++) {
    s = lc__shdict_segment_at(d, i);
    if ((rc = lc__shdict_lock(s)) != 0)
      return rc;
    rc = lc__shdict_check_segment(d, s, err, errlen);
    lc__shdict_unlock(s);
    if (rc != 0)
      return rc;
  }
  return 0;
}

uint64_t lc__shdict_repairs(lc__shdict *d) {
  uint64_t n = 0;
  unsigned i;

  for (i = 0; i < d->segments; i++)
    n += lc__shdict_segment_at(d, i)->repairs;
  return n;
}

const char *lc__shdict_strerror(int code) {
  switch (code) {
  case 0:
    return "ok";
  case LC__SHDICT_ENOTFOUND:
    return "not found";
  case LC__SHDICT_EEXISTS:
    return "exists";
  case LC__SHDICT_ENOMEM:
    return "no memory";
  case LC__SHDICT_ENOTNUMBER:
    return "not a number";
  case LC__SHDICT_ENOTLIST:
    return "value not a list";
  case LC__SHDICT_EISLIST:
    return "value is a list";
  case LC__SHDICT_EEMPTYKEY:
    return "empty key";
  case LC__SHDICT_EKEYLEN:
    return "key too long";
  case LC__SHDICT_EVALUELEN:
    return "value too large";
  case LC__SHDICT_EBADTYPE:
    return "bad value type";
  case LC__SHDICT_ENIL:
    return "attempt to add or replace nil values";
  case LC__SHDICT_ECHANGED:
    return "changed";
  case LC__SHDICT_ETOOSMALL:
    return "buffer too small";
  case LC__SHDICT_EBADTTL:
    return "bad exptime";
  case LC__SHDICT_EBADSIZE:
    return "bad size";
  case LC__SHDICT_EBADDICT:
    return "not a shared dict";
  case LC__SHDICT_ECORRUPT:
    return "corrupt";
  default:
    return code < 0 && code > -4096 ? strerror(-code) : "unknown error";
  }
}
