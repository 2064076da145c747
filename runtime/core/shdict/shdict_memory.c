/*
 * shdict_memory.c - a shared dict's memory: creating it (a memfd, mapped
 * shared, laid out), attaching it in another process from the inherited
 * descriptor (checking every header first), its geometry and free space.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shdict_segment.h"

#define MIN_SIZE (32 * 1024)
#define MIN_SEGMENT (16 * 1024)
#define SMALL_SEGMENT (64 * 1024)
#define LARGE_SEGMENT (4 * 1024 * 1024)
#define MAX_SEGMENTS 64

/* Up to 16 segments of 64 KiB or more, then up to 64 of 4 MiB or more:
 * a small dict keeps room for large values, a big one spreads the locks. */
static unsigned default_segments(size_t size) {
  unsigned n = 1;

  while (n < 16 && size / (n * 2) >= SMALL_SEGMENT)
    n *= 2;
  while (n < MAX_SEGMENTS && size / (n * 2) >= LARGE_SEGMENT)
    n *= 2;
  return n;
}

static uint64_t random_seed(void) {
  uint64_t seed;

  if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
    return seed;
  return lc__shdict_clock_ms() * UINT64_C(0x9e3779b97f4a7c15) ^
         (uint64_t)getpid();
}

static int layout(lc__shdict *d) {
  lc__shdict_header *h = (lc__shdict_header *)d->base;
  unsigned i;
  int rc;

  memset(h, 0, LC__SHDICT_HEADER_SIZE);
  h->magic = LC__SHDICT_MAGIC;
  h->version = LC__SHDICT_VERSION;
  h->segments = d->segments;
  h->total_size = d->size;
  h->segment_size = d->segment_size;
  h->seed = d->seed;
  h->mutex_size = sizeof(pthread_mutex_t);
  h->segment_header_size = sizeof(lc__shdict_segment);
  h->entry_size = sizeof(lc__shdict_entry);
  h->log_size = LC__SHDICT_LOG_SIZE;
  for (i = 0; i < d->segments; i++) {
    rc = lc__shdict_segment_init(lc__shdict_segment_at(d, i), i,
                                 d->segment_size);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void release(lc__shdict *d) {
  if (d->base != NULL)
    munmap(d->base, d->size);
  if (d->fd >= 0)
    close(d->fd);
  free(d);
}

int lc__shdict_create(const char *name, size_t size, unsigned segments,
                      lc__shdict **out) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char fd_name[64];
  lc__shdict *d;
  void *base;
  int rc;

  size = (size + page - 1) / page * page;
  if (size < MIN_SIZE)
    return LC__SHDICT_EBADSIZE;
  if (segments == 0)
    segments = default_segments(size);
  if (segments > MAX_SEGMENTS || (segments & (segments - 1)) != 0)
    return LC__SHDICT_EBADSIZE;
  if ((d = calloc(1, sizeof(*d))) == NULL)
    return -ENOMEM;
  d->fd = -1;
  d->size = size;
  d->segments = segments;
  d->segment_size = ((size - LC__SHDICT_HEADER_SIZE) / segments) & ~(size_t)63;
  d->seed = random_seed();
  if (d->segment_size < MIN_SEGMENT || d->segment_size > UINT32_MAX / 2) {
    release(d);
    return LC__SHDICT_EBADSIZE;
  }
  snprintf(fd_name, sizeof(fd_name), "luacluster:%s", name ? name : "");
  if ((d->fd = memfd_create(fd_name, MFD_CLOEXEC)) < 0 ||
      ftruncate(d->fd, (off_t)size) != 0) {
    rc = -errno;
    release(d);
    return rc;
  }
  base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
  if (base == MAP_FAILED) {
    rc = -errno;
    release(d);
    return rc;
  }
  d->base = base;
  if ((rc = layout(d)) != 0) {
    release(d);
    return rc;
  }
  *out = d;
  return 0;
}

/* Whether the header at base is one this build wrote for `size` bytes. */
static int header_valid(const lc__shdict_header *h, size_t size) {
  return h->magic == LC__SHDICT_MAGIC && h->version == LC__SHDICT_VERSION &&
         h->total_size == size && h->segments >= 1 &&
         h->segments <= MAX_SEGMENTS &&
         (h->segments & (h->segments - 1)) == 0 &&
         h->segment_size >= MIN_SEGMENT &&
         h->segment_size <= UINT32_MAX / 2 &&
         LC__SHDICT_HEADER_SIZE + h->segments * h->segment_size <= size &&
         h->mutex_size == sizeof(pthread_mutex_t) &&
         h->segment_header_size == sizeof(lc__shdict_segment) &&
         h->entry_size == sizeof(lc__shdict_entry) &&
         h->log_size == LC__SHDICT_LOG_SIZE;
}

int lc__shdict_attach(int fd, size_t size, lc__shdict **out) {
  const lc__shdict_header *h;
  struct stat st;
  lc__shdict *d;
  void *base;
  unsigned i;

  if (fstat(fd, &st) != 0)
    return -errno;
  if (size < MIN_SIZE || (size_t)st.st_size != size)
    return LC__SHDICT_EBADSIZE;
  base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED)
    return -errno;
  if ((d = calloc(1, sizeof(*d))) == NULL) {
    munmap(base, size);
    return -ENOMEM;
  }
  h = base;
  d->base = base;
  d->size = size;
  d->fd = -1;
  if (!header_valid(h, size)) {
    release(d);
    return LC__SHDICT_EBADDICT;
  }
  d->segments = h->segments;
  d->segment_size = h->segment_size;
  d->seed = h->seed;
  for (i = 0; i < d->segments; i++) {
    if (!lc__shdict_segment_valid(lc__shdict_segment_at(d, i), i,
                                  d->segment_size)) {
      release(d);
      return LC__SHDICT_EBADDICT;
    }
  }
  d->fd = fd;
  *out = d;
  return 0;
}

void lc__shdict_close(lc__shdict *d) {
  if (d != NULL)
    release(d);
}

int lc__shdict_fd(const lc__shdict *d) { return d->fd; }

size_t lc__shdict_capacity(const lc__shdict *d) { return d->size; }

unsigned lc__shdict_segments(const lc__shdict *d) { return d->segments; }

size_t lc__shdict_max_value(const lc__shdict *d, size_t key_len) {
  size_t room = lc__shdict_arena_max(lc__shdict_segment_at(d, 0));
  size_t fixed = lc__shdict_entry_need(key_len, 0);

  return fixed == 0 || fixed > room ? 0 : room - fixed;
}

size_t lc__shdict_free_space(lc__shdict *d) {
  lc__shdict_segment *s;
  size_t total = 0;
  unsigned i;

  for (i = 0; i < d->segments; i++) {
    s = lc__shdict_segment_at(d, i);
    if (lc__shdict_lock(s) != 0)
      continue;
    total += s->free_bytes;
    lc__shdict_unlock(s);
  }
  return total;
}
