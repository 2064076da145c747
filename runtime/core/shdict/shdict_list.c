/*
 * shdict_list.c - list values: lpush, rpush, lpop, rpop, llen.
 *
 * A list is one entry whose value is a small header and a buffer with the
 * items packed in the middle (lc__shdict_list): pushing writes into the
 * room at one end and then moves that end, popping moves an end, each a
 * step of two or three logged words. When an end has no room, the list
 * moves to a new block twice its size, centred, in one step with the
 * relinking; when pops leave a big buffer three quarters empty, it moves
 * to a smaller one if a block is at hand. One block per list keeps
 * eviction and repair as simple as for any value, and a list is bounded
 * by its segment like any value.
 *
 * As in OpenResty, pushing evicts no live entry ("no memory" instead),
 * popping the last item deletes the key, and an expired list is gone.
 */
#include "shdict_segment.h"

#define MIN_CAPACITY 64
#define SHRINK_FROM 1024

static lc__shdict_list *list_of(lc__shdict_entry *e) {
  return (lc__shdict_list *)(void *)lc__shdict_value_of(e);
}

static unsigned char *items_of(lc__shdict_entry *e) {
  return lc__shdict_value_of(e) + sizeof(lc__shdict_list);
}

static uint32_t read_u32(const unsigned char *p) {
  uint32_t v;

  memcpy(&v, p, 4);
  return v;
}

static void write_item(unsigned char *at, const lc__shdict_bytes *v) {
  uint32_t len = (uint32_t)v->len;

  memcpy(at, &len, 4);
  at[4] = (unsigned char)v->type;
  if (len != 0)
    memcpy(at + 5, v->data, len);
  memcpy(at + 5 + len, &len, 4);
}

/* Block bytes for a list of this capacity under this key. */
static size_t list_need(size_t key_len, size_t capacity) {
  return lc__shdict_entry_need(key_len, sizeof(lc__shdict_list) + capacity);
}

/* A capacity for `used` bytes: twice that (at least MIN_CAPACITY), or
 * just enough when twice would not fit the segment; 0 if nothing fits. */
static uint32_t capacity_for(lc__shdict_segment *s, size_t key_len,
                             size_t used) {
  size_t cap = lc__shdict_align8(used * 2 < MIN_CAPACITY ? MIN_CAPACITY
                                                         : used * 2);
  size_t max = lc__shdict_arena_max(s);

  if (list_need(key_len, cap) == 0 || list_need(key_len, cap) > max)
    cap = lc__shdict_align8(used);
  if (list_need(key_len, cap) == 0 || list_need(key_len, cap) > max)
    return 0;
  return (uint32_t)cap;
}

/* Fills the fresh block at off with a list entry like the one at old
 * (or new), holding old's items plus item (if any) at `end`, centred. */
static void fill_list(lc__shdict_segment *s, uint32_t off, uint64_t hash,
                      const char *key, size_t key_len, uint32_t capacity,
                      lc__shdict_entry *old, const lc__shdict_bytes *item,
                      int end) {
  uint32_t used = 0, count = 0, size = 0, start;
  unsigned char *items;
  lc__shdict_list *l;
  lc__shdict_entry *e;

  if (old != NULL) {
    used = list_of(old)->tail - list_of(old)->head;
    count = list_of(old)->count;
  }
  if (item != NULL)
    size = (uint32_t)item->len + LC__SHDICT_ITEM_OVERHEAD;
  lc__shdict_fill(s, off, (uint32_t)hash, key, key_len, LC__SHDICT_TLIST,
                  NULL, sizeof(lc__shdict_list) + capacity,
                  old ? old->expires : 0, old ? old->user_flags : 0);
  e = lc__shdict_entry_at(s, off);
  l = list_of(e);
  items = items_of(e);
  start = (capacity - used - size) / 2;
  if (used != 0)
    memcpy(items + start + (end == LC__SHDICT_LEFT ? size : 0),
           items_of(old) + list_of(old)->head, used);
  if (item != NULL)
    write_item(items + start + (end == LC__SHDICT_LEFT ? 0 : used), item);
  l->count = count + (item != NULL);
  l->head = start;
  l->tail = start + used + size;
  l->capacity = capacity;
}

/* Moves the list at off into the block at new (filled by the caller),
 * in the current step. */
static void move_list(lc__shdict_segment *s, uint32_t off, uint32_t moved) {
  lc__shdict_unlink(s, off);
  lc__shdict_link(s, moved);
  lc__shdict_free(s, off);
}

static int push_new(lc__shdict_segment *s, uint64_t hash, const char *key,
                    size_t key_len, int end, const lc__shdict_bytes *v,
                    uint64_t *now) {
  uint32_t capacity = capacity_for(s, key_len,
                                   v->len + LC__SHDICT_ITEM_OVERHEAD);
  uint32_t off;
  int forcible = 0;

  if (capacity == 0)
    return LC__SHDICT_EVALUELEN;
  off = lc__shdict_make_room(s, (uint32_t)list_need(key_len, capacity), now,
                             1, 0, &forcible);
  if (off == 0)
    return LC__SHDICT_ENOMEM;
  fill_list(s, off, hash, key, key_len, capacity, NULL, v, end);
  lc__shdict_link(s, off);
  lc__shdict_commit(s);
  return 0;
}

static int push_grow(lc__shdict_segment *s, uint32_t off, int end,
                     const lc__shdict_bytes *v, uint64_t *now) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);
  lc__shdict_list *l = list_of(e);
  size_t used = l->tail - l->head + v->len + LC__SHDICT_ITEM_OVERHEAD;
  uint32_t capacity = capacity_for(s, e->key_len, used), moved;
  int forcible = 0;

  if (capacity == 0)
    return LC__SHDICT_ENOMEM;
  moved = lc__shdict_make_room(s, (uint32_t)list_need(e->key_len, capacity),
                               now, 1, off, &forcible);
  if (moved == 0)
    return LC__SHDICT_ENOMEM;
  fill_list(s, moved, e->hash, (const char *)lc__shdict_key_of(e), e->key_len,
            capacity, e, v, end);
  move_list(s, off, moved);
  lc__shdict_commit(s);
  return 0;
}

static int push_locked(lc__shdict_segment *s, uint64_t hash, const char *key,
                       size_t key_len, int end, const lc__shdict_bytes *v,
                       size_t *count) {
  uint32_t size = (uint32_t)v->len + LC__SHDICT_ITEM_OVERHEAD, off;
  uint64_t now = 0;
  lc__shdict_entry *e;
  lc__shdict_list *l;
  int rc;

  lc__shdict_sweep(s, 2);
  off = lc__shdict_find(s, hash, key, key_len);
  if (off != 0 && lc__shdict_expired(lc__shdict_entry_at(s, off), &now)) {
    lc__shdict_remove(s, off);
    off = 0;
  }
  if (off == 0) {
    if ((rc = push_new(s, hash, key, key_len, end, v, &now)) == 0)
      *count = 1;
    return rc;
  }
  e = lc__shdict_entry_at(s, off);
  if (e->type != LC__SHDICT_TLIST)
    return LC__SHDICT_ENOTLIST;
  l = list_of(e);
  if (end == LC__SHDICT_LEFT && l->head >= size) {
    write_item(items_of(e) + l->head - size, v);
    lc__shdict_w32(s, &l->head, l->head - size);
  } else if (end == LC__SHDICT_RIGHT && l->capacity - l->tail >= size) {
    write_item(items_of(e) + l->tail, v);
    lc__shdict_w32(s, &l->tail, l->tail + size);
  } else {
    if ((rc = push_grow(s, off, end, v, &now)) != 0)
      return rc;
    off = lc__shdict_find(s, hash, key, key_len);
    *count = list_of(lc__shdict_entry_at(s, off))->count;
    return 0;
  }
  lc__shdict_w32(s, &l->count, l->count + 1);
  lc__shdict_commit(s);
  if (!e->referenced)
    e->referenced = 1;
  *count = l->count;
  return 0;
}

int lc__shdict_push(lc__shdict *d, const char *key, size_t key_len, int end,
                    int type, const void *data, size_t len, double number,
                    size_t *count) {
  lc__shdict_segment *s;
  lc__shdict_bytes v;
  uint64_t hash;
  int rc;

  if ((rc = lc__shdict_check_key(key_len)) != 0)
    return rc;
  if (type == LC__SHDICT_TNIL || type == LC__SHDICT_TLIST ||
      (rc = lc__shdict_to_bytes(&v, type, data, len, number)) != 0)
    return LC__SHDICT_EBADTYPE;
  if (len > UINT32_MAX - LC__SHDICT_ITEM_OVERHEAD ||
      list_need(key_len, v.len + LC__SHDICT_ITEM_OVERHEAD) == 0 ||
      list_need(key_len, v.len + LC__SHDICT_ITEM_OVERHEAD) >
          lc__shdict_arena_max(lc__shdict_segment_at(d, 0)))
    return LC__SHDICT_EVALUELEN;
  hash = lc__shdict_hash(d->seed, key, key_len);
  s = lc__shdict_segment_of(d, hash);
  if ((rc = lc__shdict_lock(s)) != 0)
    return rc;
  rc = push_locked(s, hash, key, key_len, end, &v, count);
  lc__shdict_unlock(s);
  return rc;
}

/* After a pop: moves a big list that is mostly room into a smaller block,
 * if one is free without evicting (in the pop's step). */
static void maybe_shrink(lc__shdict_segment *s, uint32_t off) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);
  lc__shdict_list *l = list_of(e);
  uint32_t used = l->tail - l->head, capacity, moved;

  if (l->capacity < SHRINK_FROM || (size_t)used * 4 >= l->capacity)
    return;
  capacity = capacity_for(s, e->key_len, used);
  if (capacity == 0 || capacity >= l->capacity)
    return;
  moved = lc__shdict_alloc(s, (uint32_t)list_need(e->key_len, capacity));
  if (moved == 0)
    return;
  fill_list(s, moved, e->hash, (const char *)lc__shdict_key_of(e), e->key_len,
            capacity, e, NULL, LC__SHDICT_RIGHT);
  move_list(s, off, moved);
}

static int pop_locked(lc__shdict_segment *s, uint32_t off, int end,
                      lc__shdict_value *out, void *buf, size_t cap) {
  lc__shdict_entry *e = lc__shdict_entry_at(s, off);
  lc__shdict_list *l = list_of(e);
  unsigned char *items = items_of(e), *item;
  uint32_t len;

  if (e->type != LC__SHDICT_TLIST)
    return LC__SHDICT_ENOTLIST;
  if (end == LC__SHDICT_LEFT) {
    item = items + l->head;
    len = read_u32(item);
  } else {
    len = read_u32(items + l->tail - 4);
    item = items + l->tail - 4 - len - 5;
  }
  out->type = item[4];
  out->flags = 0;
  out->number = 0;
  out->len = 0;
  if (out->type == LC__SHDICT_TNUMBER) {
    memcpy(&out->number, item + 5, sizeof(double));
  } else if (out->type == LC__SHDICT_TBOOLEAN) {
    out->number = item[5];
  } else {
    out->len = len;
    if (len > cap)
      return LC__SHDICT_ETOOSMALL;
    if (len != 0)
      memcpy(buf, item + 5, len);
  }
  if (l->count == 1) {
    lc__shdict_remove(s, off);
    return 0;
  }
  if (end == LC__SHDICT_LEFT)
    lc__shdict_w32(s, &l->head, l->head + len + LC__SHDICT_ITEM_OVERHEAD);
  else
    lc__shdict_w32(s, &l->tail, l->tail - len - LC__SHDICT_ITEM_OVERHEAD);
  lc__shdict_w32(s, &l->count, l->count - 1);
  if (!e->referenced)
    e->referenced = 1;
  maybe_shrink(s, off);
  lc__shdict_commit(s);
  return 0;
}

/* Finds key's entry under its segment's lock; *off = 0 if absent or
 * expired. */
static int lock_key(lc__shdict *d, const char *key, size_t key_len,
                    lc__shdict_segment **sp, uint32_t *off) {
  uint64_t hash, now = 0;
  int rc;

  if ((rc = lc__shdict_check_key(key_len)) != 0)
    return rc;
  hash = lc__shdict_hash(d->seed, key, key_len);
  *sp = lc__shdict_segment_of(d, hash);
  if ((rc = lc__shdict_lock(*sp)) != 0)
    return rc;
  *off = lc__shdict_find(*sp, hash, key, key_len);
  if (*off != 0 &&
      lc__shdict_expired(lc__shdict_entry_at(*sp, *off), &now))
    *off = 0;
  return 0;
}

int lc__shdict_pop(lc__shdict *d, const char *key, size_t key_len, int end,
                   lc__shdict_value *out, void *buf, size_t cap) {
  lc__shdict_segment *s;
  uint32_t off;
  int rc;

  out->stale = 0;
  if ((rc = lock_key(d, key, key_len, &s, &off)) != 0)
    return rc;
  rc = off == 0 ? LC__SHDICT_ENOTFOUND
                : pop_locked(s, off, end, out, buf, cap);
  lc__shdict_unlock(s);
  return rc;
}

int lc__shdict_llen(lc__shdict *d, const char *key, size_t key_len,
                    size_t *count) {
  lc__shdict_segment *s;
  lc__shdict_entry *e;
  uint32_t off;
  int rc;

  *count = 0;
  if ((rc = lock_key(d, key, key_len, &s, &off)) != 0)
    return rc;
  if (off != 0) {
    e = lc__shdict_entry_at(s, off);
    if (e->type != LC__SHDICT_TLIST)
      rc = LC__SHDICT_ENOTLIST;
    else
      *count = list_of(e)->count;
  }
  lc__shdict_unlock(s);
  return rc;
}
