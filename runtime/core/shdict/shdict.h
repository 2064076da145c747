/*
 * shdict.h - a dictionary in shared memory that every process of a host
 * uses at once: OpenResty's ngx.shared.DICT, as a C library for the
 * bindings (no Lua here).
 *
 * The master creates a dict (lc__shdict_create: a memfd, mapped shared);
 * a worker started by fork+exec inherits the descriptor and maps it again
 * (lc__shdict_attach). The memory lives as long as one process maps it,
 * so it outlives crashed and restarted workers. A process killed at any
 * point, even holding a lock in the middle of a change, leaves a dict that
 * the next process repairs on its own (see shdict.c).
 *
 * Calls take plain arguments and return 0 or a negative code:
 * LC__SHDICT_E* (lc__shdict_strerror gives OpenResty's words: "not found",
 * "exists", "no memory", ...) or -errno for a system call that failed.
 * Keys are 1..65535 bytes of anything. TTLs are milliseconds, 0 = never.
 * Nothing allocates on the hot calls (get, store, incr); get and pop copy
 * strings into the caller's buffer and, when it is too small, say how big
 * it must be (LC__SHDICT_ETOOSMALL, out->len) without changing anything.
 */
#ifndef LC_SHDICT_H
#define LC_SHDICT_H

#include <stddef.h>
#include <stdint.h>

typedef struct lc__shdict lc__shdict;

/* Value types: Lua's type numbers where Lua has the type. */
enum {
  LC__SHDICT_TNIL = 0,     /* only as "no value": delete, cas's "absent" */
  LC__SHDICT_TBOOLEAN = 1, /* number is 0 or 1 */
  LC__SHDICT_TNUMBER = 3,  /* a double */
  LC__SHDICT_TSTRING = 4,  /* bytes */
  LC__SHDICT_TLIST = 5,    /* made by push; get says "value is a list" */
  LC__SHDICT_TTABLE = 6    /* opaque bytes the binding encoded */
};

/* lc__shdict_store's op: one of SET, ADD, REPLACE, maybe | SAFE. */
enum {
  LC__SHDICT_SET = 0,
  LC__SHDICT_ADD = 1,     /* fails "exists" if the key has a live value */
  LC__SHDICT_REPLACE = 2, /* fails "not found" if it has none */
  LC__SHDICT_SAFE = 4     /* evicts no live entry: "no memory" instead */
};

/* Ends of a list. */
enum { LC__SHDICT_LEFT = 0, LC__SHDICT_RIGHT = 1 };

enum {
  LC__SHDICT_ENOTFOUND = -4201, /* "not found" */
  LC__SHDICT_EEXISTS = -4202,   /* "exists" */
  LC__SHDICT_ENOMEM = -4203,    /* "no memory" */
  LC__SHDICT_ENOTNUMBER = -4204,  /* "not a number" */
  LC__SHDICT_ENOTLIST = -4205,  /* "value not a list" */
  LC__SHDICT_EISLIST = -4206,   /* "value is a list" */
  LC__SHDICT_EEMPTYKEY = -4207, /* "empty key" */
  LC__SHDICT_EKEYLEN = -4208,   /* "key too long" */
  LC__SHDICT_EVALUELEN = -4209, /* "value too large" */
  LC__SHDICT_EBADTYPE = -4210,  /* "bad value type" */
  LC__SHDICT_ENIL = -4211,      /* "attempt to add or replace nil values" */
  LC__SHDICT_ECHANGED = -4212,  /* "changed": cas found another value */
  LC__SHDICT_ETOOSMALL = -4213, /* the caller's buffer; out->len says more */
  LC__SHDICT_EBADTTL = -4214,   /* "bad exptime" */
  LC__SHDICT_EBADSIZE = -4215,  /* "bad size": create/attach geometry */
  LC__SHDICT_EBADDICT = -4216,  /* "not a shared dict": attach found other bytes */
  LC__SHDICT_ECORRUPT = -4217   /* "corrupt": lc__shdict_check failed */
};

#define LC__SHDICT_KEY_MAX 65535

/* What get and pop found. */
typedef struct lc__shdict_value {
  int type;       /* LC__SHDICT_T* */
  int stale;      /* get with stale: the value has expired */
  uint32_t flags; /* the user flags stored with it */
  double number;  /* NUMBER, BOOLEAN (0/1) */
  size_t len;     /* STRING, TABLE: bytes (copied to buf if they fit) */
} lc__shdict_value;

/* A value as cas compares and stores it. */
typedef struct lc__shdict_input {
  int type;
  double number;
  const void *data;
  size_t len;
} lc__shdict_input;

/* Creating, attaching ------------------------------------------------------ */

/* A new dict of `size` bytes (at least 32 KiB) in a new memfd named
 * "luacluster:NAME" (close-on-exec: whoever starts a worker passes it on).
 * segments: a power of two up to 64, or 0 to choose from size (segments of
 * at least 64 KiB, up to 16 below 64 MiB, up to 64 of 4 MiB or more). */
int lc__shdict_create(const char *name, size_t size, unsigned segments,
                      lc__shdict **out);
/* Maps a dict made by lc__shdict_create in another process, from its
 * descriptor and size; checks the header. Takes fd only on success. */
int lc__shdict_attach(int fd, size_t size, lc__shdict **out);
/* Unmaps and closes the descriptor; the memory lives on in others. */
void lc__shdict_close(lc__shdict *d);
int lc__shdict_fd(const lc__shdict *d);
size_t lc__shdict_capacity(const lc__shdict *d); /* the mapping's size */
unsigned lc__shdict_segments(const lc__shdict *d);
/* The largest value (bytes) a key of key_len bytes can have. */
size_t lc__shdict_max_value(const lc__shdict *d, size_t key_len);
/* Free bytes in all segments (an upper bound for one value: each value
 * lives in one segment). */
size_t lc__shdict_free_space(lc__shdict *d);

/* Values ------------------------------------------------------------------ */

/* ENOTFOUND for a missing key, or an expired one unless stale (then
 * out->stale = 1); EISLIST; ETOOSMALL with out->len = bytes needed. */
int lc__shdict_get(lc__shdict *d, const char *key, size_t key_len,
                   int stale, lc__shdict_value *out, void *buf, size_t cap);
/* set/add/replace and their safe_ forms (op), delete with TNIL. *forcible
 * = 1 when live entries were evicted to make room. For NUMBER and BOOLEAN,
 * `number` is the value and data/len are unused. */
int lc__shdict_store(lc__shdict *d, int op, const char *key, size_t key_len,
                     int type, const void *data, size_t len, double number,
                     int64_t ttl_ms, uint32_t flags, int *forcible);
int lc__shdict_delete(lc__shdict *d, const char *key, size_t key_len);
/* Adds `by` to a number. A missing key: ENOTFOUND, or with has_init the
 * key becomes init + by (expiring after init_ttl_ms if > 0). */
int lc__shdict_incr(lc__shdict *d, const char *key, size_t key_len,
                    double by, int has_init, double init, int64_t init_ttl_ms,
                    double *result, int *forcible);
/* Stores new_value if the key's live value equals expected (type and
 * bytes); expected TNIL means "absent", new_value TNIL deletes. ECHANGED
 * when it differs, ENOTFOUND when absent. */
int lc__shdict_cas(lc__shdict *d, const char *key, size_t key_len,
                   const lc__shdict_input *expected,
                   const lc__shdict_input *new_value, int64_t ttl_ms,
                   uint32_t flags, int *forcible);
/* The remaining ms (0: no expiry) or ENOTFOUND. */
int lc__shdict_ttl(lc__shdict *d, const char *key, size_t key_len,
                   int64_t *ttl_ms);
int lc__shdict_expire(lc__shdict *d, const char *key, size_t key_len,
                      int64_t ttl_ms);

/* Lists: items are BOOLEAN, NUMBER, STRING or TABLE values. A list is
 * created by the first push and deleted by popping its last item. Lists
 * evict nothing live: a full segment answers "no memory". */
int lc__shdict_push(lc__shdict *d, const char *key, size_t key_len, int end,
                    int type, const void *data, size_t len, double number,
                    size_t *count);
int lc__shdict_pop(lc__shdict *d, const char *key, size_t key_len, int end,
                   lc__shdict_value *out, void *buf, size_t cap);
int lc__shdict_llen(lc__shdict *d, const char *key, size_t key_len,
                    size_t *count);

/* The whole dict, one segment at a time --------------------------------- */

/* Marks every entry expired (get_stale still sees them until reused). */
int lc__shdict_flush_all(lc__shdict *d);
/* Frees up to max expired entries (0: all); *count says how many. */
int lc__shdict_flush_expired(lc__shdict *d, size_t max, size_t *count);
/* Up to max live keys (0: all) in a malloc'd buffer the caller frees:
 * each key is a uint16_t length (native order, unaligned) then its bytes. */
int lc__shdict_get_keys(lc__shdict *d, size_t max, char **keys,
                        size_t *bytes, size_t *count);

/* Walks every segment (locking each) and checks that its index, LRU list
 * and allocator agree; ECORRUPT with a reason in err. */
int lc__shdict_check(lc__shdict *d, char *err, size_t errlen);
/* How many times a dead lock holder's change was undone, all segments. */
uint64_t lc__shdict_repairs(lc__shdict *d);
const char *lc__shdict_strerror(int code);

/* Tests only: when > 0, the process SIGKILLs itself at that many-th crash
 * point of a change (after each undo record, each write, before each
 * commit). Process-local. */
extern long lc__shdict_crash_countdown;

#endif
