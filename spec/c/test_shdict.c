/*
 * test_shdict.c - the shared dict's C core (runtime/core/shdict/) with
 * real processes: forked children share the memfd mapping, an exec'd one
 * attaches it from an inherited descriptor, readers race writers without
 * the lock, and children SIGKILLed while holding a segment's lock (at
 * every point of a change, or at random under load) leave a dict the next
 * locker repairs. lc__shdict_check runs after every scenario.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shdict.h"
#include "shdict_segment.h" /* white box: corrupting on purpose */
#include "test.h"

#define KEY(s) (s), strlen(s)
#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

#define CHECK_CONSISTENT(d)                                                    \
  do {                                                                         \
    char err_[256] = "";                                                       \
    int rc_ = lc__shdict_check((d), err_, sizeof(err_));                       \
    if (rc_ != 0)                                                              \
      fprintf(stderr, "%s:%d: inconsistent: %s\n", __FILE__, __LINE__, err_);  \
    CHECK_EQ_INT(rc_, 0);                                                      \
  } while (0)

static uint64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static lc__shdict *new_dict(size_t size, unsigned segments) {
  lc__shdict *d = NULL;
  int rc = lc__shdict_create("test", size, segments, &d);

  if (rc != 0) {
    fprintf(stderr, "create %zu/%u: %s\n", size, segments,
            lc__shdict_strerror(rc));
    exit(2);
  }
  return d;
}

static int store_string(lc__shdict *d, int op, const char *key,
                        const char *value, size_t len, int64_t ttl,
                        int *forcible) {
  return lc__shdict_store(d, op, KEY(key), LC__SHDICT_TSTRING, value, len, 0,
                          ttl, 0, forcible);
}

static int set_string(lc__shdict *d, const char *key, const char *value,
                      int64_t ttl) {
  return store_string(d, LC__SHDICT_SET, key, value, strlen(value), ttl,
                      NULL);
}

static int set_number(lc__shdict *d, const char *key, double n) {
  return lc__shdict_store(d, LC__SHDICT_SET, KEY(key), LC__SHDICT_TNUMBER,
                          NULL, 0, n, 0, 0, NULL);
}

/* The string at key (a static buffer), or NULL. */
static const char *get_string(lc__shdict *d, const char *key) {
  static char buf[8192];
  lc__shdict_value v;

  if (lc__shdict_get(d, KEY(key), 0, &v, buf, sizeof(buf) - 1) != 0 ||
      v.type != LC__SHDICT_TSTRING)
    return NULL;
  buf[v.len] = '\0';
  return buf;
}

static double get_number(lc__shdict *d, const char *key) {
  lc__shdict_value v;

  if (lc__shdict_get(d, KEY(key), 0, &v, NULL, 0) != 0 ||
      v.type != LC__SHDICT_TNUMBER)
    return NAN;
  return v.number;
}

static int present(lc__shdict *d, const char *key) {
  lc__shdict_value v;
  int rc = lc__shdict_get(d, KEY(key), 0, &v, NULL, 0);

  return rc == 0 || rc == LC__SHDICT_ETOOSMALL || rc == LC__SHDICT_EISLIST;
}

static int push_string(lc__shdict *d, const char *key, int end,
                       const char *value, size_t *count) {
  return lc__shdict_push(d, KEY(key), end, LC__SHDICT_TSTRING, value,
                         strlen(value), 0, count);
}

/* Pops a string (a static buffer) or NULL. */
static const char *pop_string(lc__shdict *d, const char *key, int end) {
  static char buf[8192];
  lc__shdict_value v;

  if (lc__shdict_pop(d, KEY(key), end, &v, buf, sizeof(buf) - 1) != 0 ||
      v.type != LC__SHDICT_TSTRING)
    return NULL;
  buf[v.len] = '\0';
  return buf;
}

static int wait_exit_code(pid_t pid) {
  int status;

  while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Creating and attaching -------------------------------------------------- */

/* What an exec'd worker does with the descriptor it inherited. */
static int worker_main(int fd, size_t size) {
  lc__shdict *d;
  const char *s;
  double n;

  if (lc__shdict_attach(fd, size, &d) != 0)
    return 10;
  s = get_string(d, "hello");
  if (s == NULL || strcmp(s, "world") != 0)
    return 11;
  if (lc__shdict_incr(d, KEY("counter"), 1, 0, 0, 0, &n, NULL) != 0 ||
      n != 42)
    return 12;
  if (set_string(d, "from-worker", "hi", 0) != 0)
    return 13;
  lc__shdict_close(d);
  return 0;
}

static void attaches_after_exec(void) {
  lc__shdict *d = new_dict(MIB, 0);
  char size[32];
  pid_t pid;

  CHECK(fcntl(lc__shdict_fd(d), F_GETFD) & FD_CLOEXEC);
  CHECK_EQ_INT(set_string(d, "hello", "world", 0), 0);
  CHECK_EQ_INT(set_number(d, "counter", 41), 0);
  snprintf(size, sizeof(size), "%zu", lc__shdict_capacity(d));
  pid = fork();
  if (pid == 0) {
    if (dup2(lc__shdict_fd(d), 100) != 100) /* the copy is not close-on-exec */
      _exit(3);
    execl("/proc/self/exe", "test_shdict", "--worker", "100", size,
          (char *)NULL);
    _exit(4);
  }
  CHECK_EQ_INT(wait_exit_code(pid), 0);
  CHECK_EQ_STR(get_string(d, "from-worker"), "hi");
  CHECK(get_number(d, "counter") == 42);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void attach_checks_the_memory(void) {
  lc__shdict *d = new_dict(64 * KIB, 0), *a = NULL;
  int other, fd;

  CHECK_EQ_INT(lc__shdict_attach(lc__shdict_fd(d), 128 * KIB, &a),
               LC__SHDICT_EBADSIZE);
  other = memfd_create("zeros", MFD_CLOEXEC);
  CHECK(other >= 0 && ftruncate(other, 64 * KIB) == 0);
  CHECK_EQ_INT(lc__shdict_attach(other, 64 * KIB, &a), LC__SHDICT_EBADDICT);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EBADDICT), "not a shared dict");
  close(other);
  fd = dup(lc__shdict_fd(d));
  CHECK_EQ_INT(lc__shdict_attach(fd, 64 * KIB, &a), 0);
  CHECK_EQ_INT(set_string(a, "via", "attach", 0), 0);
  CHECK_EQ_STR(get_string(d, "via"), "attach");
  lc__shdict_close(a);
  CHECK_EQ_STR(get_string(d, "via"), "attach");
  lc__shdict_close(d);
}

static void create_checks_its_geometry(void) {
  lc__shdict *d = NULL;

  CHECK_EQ_INT(lc__shdict_create("t", 1000, 0, &d), LC__SHDICT_EBADSIZE);
  CHECK_EQ_INT(lc__shdict_create("t", MIB, 3, &d), LC__SHDICT_EBADSIZE);
  CHECK_EQ_INT(lc__shdict_create("t", MIB, 128, &d), LC__SHDICT_EBADSIZE);
  CHECK_EQ_INT(lc__shdict_create("t", 64 * KIB, 8, &d), LC__SHDICT_EBADSIZE);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EBADSIZE), "bad size");
  d = new_dict(MIB, 0);
  CHECK_EQ_INT(lc__shdict_segments(d), 16);
  CHECK_EQ_INT(lc__shdict_capacity(d), MIB);
  CHECK(lc__shdict_free_space(d) > MIB * 8 / 10);
  CHECK(lc__shdict_free_space(d) < MIB);
  CHECK(lc__shdict_max_value(d, 10) > 50 * KIB);
  lc__shdict_close(d);
  d = new_dict(64 * MIB, 0);
  CHECK_EQ_INT(lc__shdict_segments(d), 16);
  CHECK(lc__shdict_max_value(d, 10) > 3 * MIB);
  lc__shdict_close(d);
  d = new_dict(256 * MIB, 0);
  CHECK_EQ_INT(lc__shdict_segments(d), 64);
  lc__shdict_close(d);
  d = new_dict(100 * KIB + 1, 0);
  CHECK_EQ_INT(lc__shdict_capacity(d) % 4096, 0);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* Values ------------------------------------------------------------------ */

static void values_keep_their_types(void) {
  lc__shdict *d = new_dict(MIB, 0);
  char buf[256], big[100];
  lc__shdict_value v;

  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, KEY("s"),
                                LC__SHDICT_TSTRING, "hello", 5, 0, 0, 7,
                                NULL),
               0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("s"), 0, &v, buf, sizeof(buf)), 0);
  CHECK(v.type == LC__SHDICT_TSTRING && v.len == 5 && v.flags == 7 &&
        !v.stale && memcmp(buf, "hello", 5) == 0);
  CHECK_EQ_INT(set_string(d, "empty", "", 0), 0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("empty"), 0, &v, NULL, 0), 0);
  CHECK(v.type == LC__SHDICT_TSTRING && v.len == 0);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, KEY("t"), LC__SHDICT_TTABLE,
                                "\0\1\2", 3, 0, 0, 0, NULL),
               0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("t"), 0, &v, buf, sizeof(buf)), 0);
  CHECK(v.type == LC__SHDICT_TTABLE && v.len == 3 &&
        memcmp(buf, "\0\1\2", 3) == 0);
  CHECK_EQ_INT(set_number(d, "n", -1.5), 0);
  CHECK(get_number(d, "n") == -1.5);
  CHECK_EQ_INT(set_number(d, "huge", 1e300), 0);
  CHECK(get_number(d, "huge") == 1e300);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, KEY("yes"),
                                LC__SHDICT_TBOOLEAN, NULL, 0, 1, 0, 0, NULL),
               0);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, KEY("no"),
                                LC__SHDICT_TBOOLEAN, NULL, 0, 0, 0, 0, NULL),
               0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("yes"), 0, &v, NULL, 0), 0);
  CHECK(v.type == LC__SHDICT_TBOOLEAN && v.number == 1);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("no"), 0, &v, NULL, 0), 0);
  CHECK(v.type == LC__SHDICT_TBOOLEAN && v.number == 0);
  memset(big, 'b', sizeof(big));
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, "big", big, sizeof(big), 0,
                            NULL),
               0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("big"), 0, &v, buf, 10),
               LC__SHDICT_ETOOSMALL);
  CHECK_EQ_INT(v.len, sizeof(big));
  CHECK_EQ_INT(lc__shdict_get(d, KEY("big"), 0, &v, buf, sizeof(big)), 0);
  CHECK(memcmp(buf, big, sizeof(big)) == 0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("missing"), 0, &v, buf, sizeof(buf)),
               LC__SHDICT_ENOTFOUND);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_ENOTFOUND), "not found");
  CHECK_EQ_INT(set_number(d, "s", 3), 0); /* a string becomes a number */
  CHECK(get_number(d, "s") == 3);
  CHECK_EQ_INT(set_string(d, "s", "back", 0), 0);
  CHECK_EQ_STR(get_string(d, "s"), "back");
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void add_replace_delete(void) {
  lc__shdict *d = new_dict(MIB, 0);
  int forcible = 1;

  CHECK_EQ_INT(store_string(d, LC__SHDICT_ADD, "k", "1", 1, 0, &forcible), 0);
  CHECK_EQ_INT(forcible, 0);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_ADD, "k", "2", 1, 0, NULL),
               LC__SHDICT_EEXISTS);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EEXISTS), "exists");
  CHECK_EQ_INT(store_string(d, LC__SHDICT_ADD | LC__SHDICT_SAFE, "k", "2", 1,
                            0, NULL),
               LC__SHDICT_EEXISTS);
  CHECK_EQ_STR(get_string(d, "k"), "1");
  CHECK_EQ_INT(store_string(d, LC__SHDICT_REPLACE, "k", "3", 1, 0, NULL), 0);
  CHECK_EQ_STR(get_string(d, "k"), "3");
  CHECK_EQ_INT(store_string(d, LC__SHDICT_REPLACE, "nope", "3", 1, 0, NULL),
               LC__SHDICT_ENOTFOUND);
  CHECK(!present(d, "nope"));
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_ADD, KEY("n"), LC__SHDICT_TNIL,
                                NULL, 0, 0, 0, 0, NULL),
               LC__SHDICT_ENIL);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_ENIL),
               "attempt to add or replace nil values");
  CHECK_EQ_INT(lc__shdict_delete(d, KEY("k")), 0);
  CHECK(!present(d, "k"));
  CHECK_EQ_INT(lc__shdict_delete(d, KEY("k")), 0); /* deleting nothing */
  CHECK_EQ_INT(store_string(d, LC__SHDICT_REPLACE, "k", "4", 1, 0, NULL),
               LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(set_string(d, "k", "5", 0), 0);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, KEY("k"), LC__SHDICT_TNIL,
                                NULL, 0, 0, 0, 0, NULL),
               0); /* set to nil deletes */
  CHECK(!present(d, "k"));
  CHECK_EQ_INT(store_string(d, LC__SHDICT_ADD | LC__SHDICT_SAFE, "k", "6", 1,
                            0, NULL),
               0);
  CHECK_EQ_STR(get_string(d, "k"), "6");
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void limits_and_bad_input(void) {
  lc__shdict *d = new_dict(MIB, 1);
  size_t count, max;
  lc__shdict_value v;
  int64_t ttl;
  double n;
  char *big;

  CHECK_EQ_INT(lc__shdict_get(d, "", 0, 0, &v, NULL, 0),
               LC__SHDICT_EEMPTYKEY);
  CHECK_EQ_INT(set_string(d, "", "v", 0), LC__SHDICT_EEMPTYKEY);
  CHECK_EQ_INT(lc__shdict_incr(d, "", 0, 1, 0, 0, 0, &n, NULL),
               LC__SHDICT_EEMPTYKEY);
  CHECK_EQ_INT(push_string(d, "", LC__SHDICT_LEFT, "v", &count),
               LC__SHDICT_EEMPTYKEY);
  CHECK_EQ_INT(lc__shdict_ttl(d, "", 0, &ttl), LC__SHDICT_EEMPTYKEY);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EEMPTYKEY), "empty key");
  big = malloc(2 * MIB);
  memset(big, 'k', 2 * MIB);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, big, 65535,
                                LC__SHDICT_TSTRING, "v", 1, 0, 0, 0, NULL),
               0);
  CHECK_EQ_INT(lc__shdict_get(d, big, 65535, 0, &v, NULL, 0),
               LC__SHDICT_ETOOSMALL);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, big, 65536,
                                LC__SHDICT_TSTRING, "v", 1, 0, 0, 0, NULL),
               LC__SHDICT_EKEYLEN);
  CHECK_EQ_INT(lc__shdict_get(d, big, 65536, 0, &v, NULL, 0),
               LC__SHDICT_EKEYLEN);
  CHECK_EQ_INT(lc__shdict_incr(d, big, 65536, 1, 1, 0, 0, &n, NULL),
               LC__SHDICT_EKEYLEN);
  CHECK_EQ_INT(lc__shdict_push(d, big, 65536, LC__SHDICT_LEFT,
                               LC__SHDICT_TNUMBER, NULL, 0, 1, &count),
               LC__SHDICT_EKEYLEN);
  CHECK_EQ_INT(lc__shdict_pop(d, big, 65536, LC__SHDICT_LEFT, &v, NULL, 0),
               LC__SHDICT_EKEYLEN);
  CHECK_EQ_INT(lc__shdict_llen(d, big, 65536, &count), LC__SHDICT_EKEYLEN);
  CHECK_EQ_INT(lc__shdict_expire(d, big, 65536, 1), LC__SHDICT_EKEYLEN);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EKEYLEN), "key too long");
  CHECK_EQ_INT(lc__shdict_delete(d, big, 65535), 0);
  max = lc__shdict_max_value(d, 3);
  CHECK(max > 900 * KIB && max < MIB);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, "max", big, max, 0, NULL), 0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("max"), 0, &v, big, 2 * MIB), 0);
  CHECK_EQ_INT(v.len, max);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, "max", big, max + 1, 0, NULL),
               LC__SHDICT_EVALUELEN);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EVALUELEN), "value too large");
  CHECK_EQ_INT(lc__shdict_push(d, KEY("list"), LC__SHDICT_LEFT,
                               LC__SHDICT_TSTRING, big, max, 0, &count),
               LC__SHDICT_EVALUELEN);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, KEY("x"), 99, NULL, 0, 0,
                                0, 0, NULL),
               LC__SHDICT_EBADTYPE);
  CHECK_EQ_INT(lc__shdict_store(d, LC__SHDICT_SET, KEY("x"), LC__SHDICT_TLIST,
                                NULL, 0, 0, 0, 0, NULL),
               LC__SHDICT_EBADTYPE);
  CHECK_EQ_INT(lc__shdict_push(d, KEY("x"), LC__SHDICT_LEFT, LC__SHDICT_TNIL,
                               NULL, 0, 0, &count),
               LC__SHDICT_EBADTYPE);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EBADTYPE), "bad value type");
  CHECK_EQ_INT(set_string(d, "x", "v", -1), LC__SHDICT_EBADTTL);
  CHECK_EQ_INT(lc__shdict_expire(d, KEY("max"), -5), LC__SHDICT_EBADTTL);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("x"), 1, 1, 0, -1, &n, NULL),
               LC__SHDICT_EBADTTL);
  CHECK_EQ_STR(lc__shdict_strerror(-ENOENT), strerror(ENOENT));
  free(big);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void incr_adds_to_numbers(void) {
  lc__shdict *d = new_dict(MIB, 0);
  int64_t ttl;
  double n = 0;
  size_t count;
  int forcible = 1;

  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), 1, 0, 0, 0, &n, NULL),
               LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), 1, 1, 10, 0, &n, &forcible), 0);
  CHECK(n == 11 && forcible == 0);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), 1, 1, 10, 0, &n, NULL), 0);
  CHECK(n == 12);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), -2.5, 0, 0, 0, &n, NULL), 0);
  CHECK(n == 9.5 && get_number(d, "c") == 9.5);
  CHECK_EQ_INT(set_string(d, "s", "12", 0), 0);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("s"), 1, 1, 0, 0, &n, NULL),
               LC__SHDICT_ENOTNUMBER);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_ENOTNUMBER), "not a number");
  CHECK_EQ_INT(push_string(d, "l", LC__SHDICT_RIGHT, "x", &count), 0);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("l"), 1, 0, 0, 0, &n, NULL),
               LC__SHDICT_ENOTNUMBER);
  /* init_ttl applies to a new key only */
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("t"), 1, 1, 0, 60000, &n, NULL), 0);
  CHECK(n == 1);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("t"), &ttl), 0);
  CHECK(ttl > 0 && ttl <= 60000);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("t"), 1, 1, 0, 0, &n, NULL), 0);
  CHECK(n == 2);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("t"), &ttl), 0);
  CHECK(ttl > 0);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), 1, 1, 0, 60000, &n, NULL), 0);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("c"), &ttl), 0);
  CHECK_EQ_INT(ttl, 0);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void cas_swaps_only_the_expected_value(void) {
  lc__shdict *d = new_dict(MIB, 0);
  lc__shdict_input v1 = {LC__SHDICT_TSTRING, 0, "one", 3};
  lc__shdict_input v2 = {LC__SHDICT_TSTRING, 0, "two", 3};
  lc__shdict_input n1 = {LC__SHDICT_TNUMBER, 1, NULL, 0};
  lc__shdict_input n2 = {LC__SHDICT_TNUMBER, 2, NULL, 0};
  lc__shdict_input none = {LC__SHDICT_TNIL, 0, NULL, 0};
  lc__shdict_value v;
  int64_t ttl;

  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &v1, &v2, 0, 0, NULL),
               LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &none, &v1, 0, 5, NULL), 0);
  CHECK_EQ_STR(get_string(d, "k"), "one");
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &none, &v2, 0, 0, NULL),
               LC__SHDICT_ECHANGED);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_ECHANGED), "changed");
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &v2, &v1, 0, 0, NULL),
               LC__SHDICT_ECHANGED);
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &n1, &v1, 0, 0, NULL),
               LC__SHDICT_ECHANGED); /* another type */
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &v1, &v2, 60000, 9, NULL), 0);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("k"), 0, &v, NULL, 0),
               LC__SHDICT_ETOOSMALL);
  CHECK(v.len == 3 && v.flags == 9);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("k"), &ttl), 0);
  CHECK(ttl > 0);
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &v2, &n1, 0, 0, NULL), 0);
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &n1, &n2, 0, 0, NULL), 0);
  CHECK(get_number(d, "k") == 2);
  CHECK_EQ_INT(lc__shdict_cas(d, KEY("k"), &n2, &none, 0, 0, NULL), 0);
  CHECK(!present(d, "k")); /* swapping for nil deletes */
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_ETOOSMALL), "buffer too small");
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EBADTTL), "bad exptime");
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_ECORRUPT), "corrupt");
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* Polls until key stops being readable (at most 2 s); returns when. */
static uint64_t wait_gone(lc__shdict *d, const char *key) {
  uint64_t deadline = now_ms() + 2000;

  while (present(d, key) && now_ms() < deadline)
    sleep_ms(1);
  return now_ms();
}

static void keys_expire(void) {
  lc__shdict *d = new_dict(MIB, 0);
  uint64_t start = now_ms(), gone;
  lc__shdict_value v;
  char buf[16];
  int64_t ttl;
  double n;

  CHECK_EQ_INT(set_string(d, "k", "v", 50), 0);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("k"), &ttl), 0);
  CHECK(ttl > 0 && ttl <= 50);
  CHECK_EQ_STR(get_string(d, "k"), "v");
  gone = wait_gone(d, "k");
  CHECK(gone - start >= 49 && gone - start < 2000);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("k"), 1, &v, buf, sizeof(buf)), 0);
  CHECK(v.stale == 1 && v.len == 1 && buf[0] == 'v');
  CHECK_EQ_INT(lc__shdict_get(d, KEY("k"), 0, &v, buf, sizeof(buf)),
               LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("k"), &ttl), LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(lc__shdict_expire(d, KEY("k"), 100), LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_REPLACE, "k", "w", 1, 0, NULL),
               LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_ADD, "k", "w", 1, 0, NULL), 0);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("k"), &ttl), 0);
  CHECK_EQ_INT(ttl, 0);
  CHECK_EQ_INT(lc__shdict_expire(d, KEY("k"), 30), 0);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("k"), &ttl), 0);
  CHECK(ttl > 0 && ttl <= 30);
  CHECK_EQ_INT(lc__shdict_expire(d, KEY("k"), 0), 0);
  CHECK_EQ_INT(lc__shdict_ttl(d, KEY("k"), &ttl), 0);
  CHECK_EQ_INT(ttl, 0);
  /* a counter with init_ttl expires and starts again */
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), 5, 1, 0, 20, &n, NULL), 0);
  wait_gone(d, "c");
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), 1, 0, 0, 0, &n, NULL),
               LC__SHDICT_ENOTFOUND);
  CHECK_EQ_INT(lc__shdict_incr(d, KEY("c"), 1, 1, 0, 0, &n, NULL), 0);
  CHECK(n == 1);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* Lists ------------------------------------------------------------------- */

static void lists_push_and_pop(void) {
  lc__shdict *d = new_dict(MIB, 1);
  lc__shdict_value v;
  char item[32], buf[8];
  size_t count;
  int i, ok;

  CHECK_EQ_INT(push_string(d, "l", LC__SHDICT_RIGHT, "a", &count), 0);
  CHECK_EQ_INT(count, 1);
  CHECK_EQ_INT(push_string(d, "l", LC__SHDICT_RIGHT, "b", &count), 0);
  CHECK_EQ_INT(lc__shdict_push(d, KEY("l"), LC__SHDICT_RIGHT,
                               LC__SHDICT_TNUMBER, NULL, 0, 2.5, &count),
               0);
  CHECK_EQ_INT(push_string(d, "l", LC__SHDICT_LEFT, "z", &count), 0);
  CHECK_EQ_INT(count, 4);
  CHECK_EQ_INT(lc__shdict_llen(d, KEY("l"), &count), 0);
  CHECK_EQ_INT(count, 4);
  CHECK_EQ_STR(pop_string(d, "l", LC__SHDICT_LEFT), "z");
  CHECK_EQ_INT(lc__shdict_pop(d, KEY("l"), LC__SHDICT_RIGHT, &v, NULL, 0), 0);
  CHECK(v.type == LC__SHDICT_TNUMBER && v.number == 2.5);
  CHECK_EQ_INT(lc__shdict_get(d, KEY("l"), 0, &v, NULL, 0),
               LC__SHDICT_EISLIST);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_EISLIST), "value is a list");
  CHECK_EQ_INT(set_string(d, "s", "str", 0), 0);
  CHECK_EQ_INT(push_string(d, "s", LC__SHDICT_LEFT, "x", &count),
               LC__SHDICT_ENOTLIST);
  CHECK_EQ_INT(lc__shdict_pop(d, KEY("s"), LC__SHDICT_LEFT, &v, NULL, 0),
               LC__SHDICT_ENOTLIST);
  CHECK_EQ_INT(lc__shdict_llen(d, KEY("s"), &count), LC__SHDICT_ENOTLIST);
  CHECK_EQ_STR(lc__shdict_strerror(LC__SHDICT_ENOTLIST), "value not a list");
  CHECK_EQ_INT(lc__shdict_llen(d, KEY("none"), &count), 0);
  CHECK_EQ_INT(count, 0);
  CHECK_EQ_INT(lc__shdict_pop(d, KEY("none"), LC__SHDICT_LEFT, &v, NULL, 0),
               LC__SHDICT_ENOTFOUND);
  /* a buffer too small pops nothing */
  CHECK_EQ_INT(push_string(d, "l", LC__SHDICT_LEFT, "longer than eight",
                           &count),
               0);
  CHECK_EQ_INT(lc__shdict_pop(d, KEY("l"), LC__SHDICT_LEFT, &v, buf,
                              sizeof(buf)),
               LC__SHDICT_ETOOSMALL);
  CHECK_EQ_INT(v.len, 17);
  CHECK_EQ_INT(lc__shdict_llen(d, KEY("l"), &count), 0);
  CHECK_EQ_INT(count, 3);
  CHECK_EQ_STR(pop_string(d, "l", LC__SHDICT_LEFT), "longer than eight");
  CHECK_EQ_STR(pop_string(d, "l", LC__SHDICT_LEFT), "a");
  CHECK_EQ_STR(pop_string(d, "l", LC__SHDICT_RIGHT), "b");
  CHECK(!present(d, "l")); /* the last pop deletes the key */
  /* growing at both ends, then all the way back */
  for (i = 0; i < 2000; i++) {
    snprintf(item, sizeof(item), "r%d", i);
    CHECK_EQ_INT(push_string(d, "g", LC__SHDICT_RIGHT, item, &count), 0);
    snprintf(item, sizeof(item), "l%d", i);
    CHECK_EQ_INT(push_string(d, "g", LC__SHDICT_LEFT, item, &count), 0);
  }
  CHECK_EQ_INT(count, 4000);
  CHECK_CONSISTENT(d);
  /* l1999 ... l0 r0 ... r1999 */
  for (i = 1999, ok = 1; i >= 0; i--) {
    snprintf(item, sizeof(item), "l%d", i);
    ok &= strcmp(pop_string(d, "g", LC__SHDICT_LEFT), item) == 0;
  }
  for (i = 1999; i >= 0; i--) {
    snprintf(item, sizeof(item), "r%d", i);
    ok &= strcmp(pop_string(d, "g", LC__SHDICT_RIGHT), item) == 0;
  }
  CHECK(ok);
  CHECK(!present(d, "g"));
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void lists_keep_order_and_shrink(void) {
  lc__shdict *d = new_dict(MIB, 1);
  size_t count, before, after;
  char item[32];
  const char *got;
  int i, ok = 1;

  before = lc__shdict_free_space(d);
  for (i = 0; i < 3000; i++) {
    snprintf(item, sizeof(item), "item-%d", i);
    CHECK_EQ_INT(push_string(d, "q", LC__SHDICT_RIGHT, item, &count), 0);
  }
  for (i = 0; i < 2990; i++) {
    snprintf(item, sizeof(item), "item-%d", i);
    got = pop_string(d, "q", LC__SHDICT_LEFT);
    ok &= got != NULL && strcmp(got, item) == 0;
  }
  CHECK(ok);
  after = lc__shdict_free_space(d);
  CHECK(before - after < 2 * KIB); /* 10 items left in a small buffer */
  CHECK_EQ_INT(lc__shdict_llen(d, KEY("q"), &count), 0);
  CHECK_EQ_INT(count, 10);
  /* a list can expire, and a push then starts a new one */
  CHECK_EQ_INT(lc__shdict_expire(d, KEY("q"), 20), 0);
  wait_gone(d, "q");
  CHECK_EQ_INT(lc__shdict_llen(d, KEY("q"), &count), 0);
  CHECK_EQ_INT(count, 0);
  CHECK_EQ_INT(push_string(d, "q", LC__SHDICT_LEFT, "fresh", &count), 0);
  CHECK_EQ_INT(count, 1);
  /* set replaces a list */
  CHECK_EQ_INT(set_string(d, "q", "plain", 0), 0);
  CHECK_EQ_STR(get_string(d, "q"), "plain");
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* The whole dict ---------------------------------------------------------- */

static void flush_all_and_expired(void) {
  lc__shdict *d = new_dict(MIB, 0);
  size_t empty = lc__shdict_free_space(d), count;
  lc__shdict_value v;
  char key[16], buf[16];
  int i, stale = 0;

  for (i = 0; i < 10; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    CHECK_EQ_INT(set_string(d, key, "v", 0), 0);
  }
  CHECK(lc__shdict_free_space(d) < empty);
  CHECK_EQ_INT(lc__shdict_flush_all(d), 0);
  for (i = 0; i < 10; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    CHECK(!present(d, key));
    stale += lc__shdict_get(d, KEY(key), 1, &v, buf, sizeof(buf)) == 0 &&
             v.stale;
  }
  CHECK_EQ_INT(stale, 10);
  CHECK_EQ_INT(lc__shdict_flush_expired(d, 3, &count), 0);
  CHECK_EQ_INT(count, 3);
  CHECK_EQ_INT(lc__shdict_flush_expired(d, 0, &count), 0);
  CHECK_EQ_INT(count, 7);
  CHECK_EQ_INT(lc__shdict_free_space(d), empty);
  CHECK_EQ_INT(lc__shdict_flush_expired(d, 0, &count), 0);
  CHECK_EQ_INT(count, 0);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static int count_key(const char *keys, size_t bytes, const char *want) {
  size_t at = 0;
  uint16_t len;
  int n = 0;

  while (at < bytes) {
    memcpy(&len, keys + at, 2);
    n += len == strlen(want) && memcmp(keys + at + 2, want, len) == 0;
    at += 2 + (size_t)len;
  }
  return n;
}

static void get_keys_bounded(void) {
  lc__shdict *d = new_dict(MIB, 0);
  size_t bytes, count;
  char key[16], *keys = NULL;
  int i, all = 1;

  CHECK_EQ_INT(lc__shdict_get_keys(d, 0, &keys, &bytes, &count), 0);
  CHECK(count == 0 && bytes == 0);
  free(keys);
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "key-%d", i);
    CHECK_EQ_INT(set_string(d, key, "v", 0), 0);
  }
  CHECK_EQ_INT(set_string(d, "short-lived", "v", 1), 0);
  CHECK_EQ_INT(push_string(d, "a-list", LC__SHDICT_LEFT, "v", &count), 0);
  wait_gone(d, "short-lived");
  CHECK_EQ_INT(lc__shdict_get_keys(d, 0, &keys, &bytes, &count), 0);
  CHECK_EQ_INT(count, 101);
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "key-%d", i);
    all &= count_key(keys, bytes, key) == 1;
  }
  CHECK(all);
  CHECK_EQ_INT(count_key(keys, bytes, "a-list"), 1);
  CHECK_EQ_INT(count_key(keys, bytes, "short-lived"), 0);
  free(keys);
  CHECK_EQ_INT(lc__shdict_get_keys(d, 10, &keys, &bytes, &count), 0);
  CHECK_EQ_INT(count, 10);
  free(keys);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* Eviction ---------------------------------------------------------------- */

/* Sets k0, k1, ... (value_len bytes each) until a set has to evict a live
 * entry; returns that set's index. */
static int fill_until_forcible(lc__shdict *d, const char *prefix,
                               size_t value_len, int limit) {
  char key[32], *value = malloc(value_len);
  int i, forcible = 0;

  memset(value, 'x', value_len);
  for (i = 0; i < limit; i++) {
    snprintf(key, sizeof(key), "%s%d", prefix, i);
    CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, key, value, value_len, 0,
                              &forcible),
                 0);
    if (forcible)
      break;
  }
  free(value);
  return i;
}

static void lru_evicts_the_oldest(void) {
  lc__shdict *d = new_dict(64 * KIB, 1);
  int first = fill_until_forcible(d, "k", 200, 5000);
  char key[32];

  CHECK(first > 100 && first < 5000);
  CHECK(!present(d, "k0"));
  snprintf(key, sizeof(key), "k%d", first);
  CHECK(present(d, key));
  snprintf(key, sizeof(key), "k%d", first - 1);
  CHECK(present(d, key));
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void lru_spares_what_was_read(void) {
  lc__shdict *d = new_dict(64 * KIB, 1);
  char key[32], value[200];
  int i;

  memset(value, 'x', sizeof(value));
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, key, value, sizeof(value), 0,
                              NULL),
                 0);
  }
  CHECK(present(d, "k0")); /* read: a second chance */
  fill_until_forcible(d, "m", 200, 5000);
  CHECK(present(d, "k0"));
  CHECK(!present(d, "k1"));
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void expired_entries_go_first(void) {
  lc__shdict *d = new_dict(64 * KIB, 1);
  char key[32], value[200];
  int i, forcible, any = 0;

  memset(value, 'x', sizeof(value));
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "e%d", i);
    CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, key, value, sizeof(value),
                              20, NULL),
                 0);
  }
  wait_gone(d, "e99");
  for (i = 0; i < 180; i++) { /* more than fit beside the expired ones */
    snprintf(key, sizeof(key), "l%d", i);
    CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, key, value, sizeof(value), 0,
                              &forcible),
                 0);
    any |= forcible;
  }
  CHECK_EQ_INT(any, 0);
  CHECK(present(d, "l0"));
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

static void safe_variants_evict_nothing(void) {
  lc__shdict *d = new_dict(64 * KIB, 1);
  char key[32], value[2000];
  int i, n, rc = 0, forcible = 0, all = 1;

  memset(value, 'x', sizeof(value));
  for (n = 0; n < 5000; n++) {
    snprintf(key, sizeof(key), "k%d", n);
    rc = store_string(d, LC__SHDICT_SET | LC__SHDICT_SAFE, key, value, 200, 0,
                      &forcible);
    if (rc != 0 || forcible)
      break;
  }
  CHECK_EQ_INT(rc, LC__SHDICT_ENOMEM);
  CHECK_EQ_STR(lc__shdict_strerror(rc), "no memory");
  CHECK_EQ_INT(forcible, 0);
  CHECK(n > 100);
  for (i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    all &= present(d, key);
  }
  CHECK(all);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_ADD | LC__SHDICT_SAFE, "new", value,
                            200, 0, NULL),
               LC__SHDICT_ENOMEM);
  /* a safe set that needs a bigger block keeps the old value */
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SET | LC__SHDICT_SAFE, "k0", value,
                            sizeof(value), 0, NULL),
               LC__SHDICT_ENOMEM);
  CHECK(present(d, "k0"));
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, "new", value, 200, 0,
                            &forcible),
               0);
  CHECK_EQ_INT(forcible, 1);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* Free space in small holes, then one large value: it gets a block. */
static void large_value_in_fragmented_space(void) {
  lc__shdict *d = new_dict(256 * KIB, 1);
  int n = fill_until_forcible(d, "k", 24, 20000), i, odd = 0, left = 0;
  size_t big = lc__shdict_max_value(d, 3) / 3;
  char key[32], *value = malloc(big);
  int forcible = 0;

  for (i = 0; i <= n; i += 2) {
    snprintf(key, sizeof(key), "k%d", i);
    CHECK_EQ_INT(lc__shdict_delete(d, KEY(key)), 0);
  }
  CHECK(lc__shdict_free_space(d) > big); /* room enough, but in pieces */
  memset(value, 'v', big);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SAFE, "big", value, big, 0, NULL),
               LC__SHDICT_ENOMEM);
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, "big", value, big, 0,
                            &forcible),
               0);
  CHECK_EQ_INT(forcible, 1);
  for (i = 1; i <= n; i += 2, odd++) {
    snprintf(key, sizeof(key), "k%d", i);
    left += present(d, key);
  }
  CHECK(left > odd / 2); /* evicted what the block needed, not everything */
  CHECK(get_string(d, "big") == NULL); /* larger than the helper's buffer */
  CHECK(present(d, "big"));
  CHECK_CONSISTENT(d);
  free(value);
  lc__shdict_close(d);
}

/* Processes --------------------------------------------------------------- */

#define INCR_CHILDREN 4
#define INCR_ROUNDS 20000

static void incr_totals_from_processes(void) {
  lc__shdict *d = new_dict(MIB, 0);
  pid_t pids[INCR_CHILDREN];
  char key[16];
  double n;
  int c, r, ok = 1;

  for (c = 0; c < INCR_CHILDREN; c++) {
    if ((pids[c] = fork()) == 0) {
      for (r = 0; r < INCR_ROUNDS; r++) {
        snprintf(key, sizeof(key), "c%d", r % 8);
        if (lc__shdict_incr(d, KEY(key), 1, 1, 0, 0, &n, NULL) != 0 ||
            lc__shdict_incr(d, KEY("half"), 0.5, 1, 0, 0, &n, NULL) != 0)
          _exit(1);
      }
      _exit(0);
    }
  }
  for (c = 0; c < INCR_CHILDREN; c++)
    CHECK_EQ_INT(wait_exit_code(pids[c]), 0);
  for (r = 0; r < 8; r++) {
    snprintf(key, sizeof(key), "c%d", r);
    ok &= get_number(d, key) == INCR_CHILDREN * INCR_ROUNDS / 8;
  }
  CHECK(ok);
  CHECK(get_number(d, "half") == INCR_CHILDREN * INCR_ROUNDS * 0.5);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* Crashes at every point of a change ---------------------------------------
 *
 * For each scenario: the dict's contents before and after the change (on
 * dicts of their own), then, for each crash point N of the change, a fresh
 * dict where a child makes the change and SIGKILLs itself at point N with
 * a segment lock held. The next lock repairs; the dict must then be
 * consistent and hold exactly the "before" or the "after" contents
 * (strict scenarios), or only entries of either (those made of several
 * steps, such as evictions).
 */

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The dict's contents as text, one sorted line per key. Destructive:
 * lists are popped to be read. */
static char *dump(lc__shdict *d) {
  char *keys, **names, buf[8192], *text = NULL, *line;
  size_t bytes, count, at, i, len;
  lc__shdict_value v;
  uint16_t klen;
  int64_t ttl;
  FILE *out = open_memstream(&text, &len);
  int rc;

  if (lc__shdict_get_keys(d, 0, &keys, &bytes, &count) != 0)
    return strdup("get_keys failed");
  names = calloc(count + 1, sizeof(*names));
  for (at = 0, i = 0; at < bytes; i++, at += 2 + klen) {
    memcpy(&klen, keys + at, 2);
    names[i] = strndup(keys + at + 2, klen);
  }
  qsort(names, count, sizeof(*names), compare_names);
  for (i = 0; i < count; i++) {
    line = names[i];
    memset(&v, 0, sizeof(v));
    rc = lc__shdict_get(d, KEY(line), 0, &v, buf, sizeof(buf));
    if (rc == LC__SHDICT_EISLIST) {
      fprintf(out, "%s=[", line);
      while (lc__shdict_pop(d, KEY(line), LC__SHDICT_LEFT, &v, buf,
                            sizeof(buf)) == 0)
        fprintf(out, "%d:%.*s:%g,", v.type, (int)v.len, buf, v.number);
      fprintf(out, "]\n");
    } else {
      fprintf(out, "%s=%d:%.*s:%.17g/%u", line, v.type, (int)v.len, buf,
              v.number, v.flags);
      if (rc != 0)
        fprintf(out, " error %d", rc);
      if (lc__shdict_ttl(d, KEY(line), &ttl) == 0 && ttl > 0)
        fprintf(out, " ttl");
      fprintf(out, "\n");
    }
    free(names[i]);
  }
  fclose(out);
  free(names);
  free(keys);
  return text;
}

static int has_line(const char *text, const char *line, size_t len) {
  const char *end;

  for (; *text != '\0'; text = end + 1) {
    end = strchr(text, '\n');
    if ((size_t)(end - text) == len && memcmp(text, line, len) == 0)
      return 1;
  }
  return 0;
}

/* Whether every line of text is a line of a or of b. */
static int lines_from(const char *text, const char *a, const char *b) {
  const char *end;

  for (; *text != '\0'; text = end + 1) {
    end = strchr(text, '\n');
    if (!has_line(a, text, (size_t)(end - text)) &&
        !has_line(b, text, (size_t)(end - text)))
      return 0;
  }
  return 1;
}

typedef struct scenario {
  const char *name;
  size_t size;
  unsigned segments;
  void (*setup)(lc__shdict *d);
  void (*change)(lc__shdict *d);
  int strict;
} scenario;

static void put_keys(lc__shdict *d, const char *prefix, int n, size_t len) {
  char key[32], value[4096];
  int i;

  memset(value, 'a', sizeof(value));
  for (i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "%s%d", prefix, i);
    value[0] = (char)('a' + i % 26);
    store_string(d, LC__SHDICT_SET, key, value, len, 0, NULL);
  }
}

static void setup_some(lc__shdict *d) {
  put_keys(d, "k", 20, 40);
  set_string(d, "same", "aaaa", 0);
  set_number(d, "n", 5);
}

static void set_new_key(lc__shdict *d) { set_string(d, "new", "fresh", 0); }

static void set_in_place(lc__shdict *d) {
  lc__shdict_store(d, LC__SHDICT_SET, KEY("same"), LC__SHDICT_TSTRING, "bbbb",
                   4, 0, 100000, 7, NULL);
}

static void set_number_in_place(lc__shdict *d) { set_number(d, "n", 6); }

static void set_bigger(lc__shdict *d) {
  char value[300];

  memset(value, 'z', sizeof(value));
  store_string(d, LC__SHDICT_SET, "same", value, sizeof(value), 0, NULL);
}

static void delete_key(lc__shdict *d) { lc__shdict_delete(d, KEY("k3")); }

static void incr_key(lc__shdict *d) {
  double n;

  lc__shdict_incr(d, KEY("n"), 2, 0, 0, 0, &n, NULL);
}

static void incr_new_key(lc__shdict *d) {
  double n;

  lc__shdict_incr(d, KEY("m"), 1, 1, 10, 0, &n, NULL);
}

static void cas_key(lc__shdict *d) {
  lc__shdict_input old = {LC__SHDICT_TSTRING, 0, "aaaa", 4};
  lc__shdict_input new_value = {LC__SHDICT_TSTRING, 0, "a longer value", 14};

  lc__shdict_cas(d, KEY("same"), &old, &new_value, 0, 3, NULL);
}

static void expire_key(lc__shdict *d) { lc__shdict_expire(d, KEY("k5"), 100000); }

static void setup_list(lc__shdict *d) {
  size_t count;

  setup_some(d);
  push_string(d, "list", LC__SHDICT_LEFT, "second item", &count);
  push_string(d, "list", LC__SHDICT_LEFT, "first item", &count);
  push_string(d, "one", LC__SHDICT_RIGHT, "only", &count);
}

static void rpush_in_place(lc__shdict *d) {
  size_t count;

  push_string(d, "list", LC__SHDICT_RIGHT, "x", &count);
}

static void lpush_growing(lc__shdict *d) {
  size_t count;

  push_string(d, "list", LC__SHDICT_LEFT,
              "an item too long for the room left at the head", &count);
}

static void lpop_item(lc__shdict *d) { pop_string(d, "list", LC__SHDICT_LEFT); }

static void rpop_last(lc__shdict *d) { pop_string(d, "one", LC__SHDICT_RIGHT); }

/* A list that the next lpop shrinks: pops until free space changes, on a
 * dict of its own, to learn how many pops that takes. */
static int pops_before_shrink = -1;

static void build_long_list(lc__shdict *d) {
  char item[64];
  size_t count;
  int i;

  for (i = 0; i < 200; i++) {
    snprintf(item, sizeof(item), "list item number %d", i);
    push_string(d, "long", LC__SHDICT_RIGHT, item, &count);
  }
}

static void setup_shrinking_list(lc__shdict *d) {
  int i;

  build_long_list(d);
  for (i = 0; i < pops_before_shrink; i++)
    pop_string(d, "long", LC__SHDICT_LEFT);
}

static void lpop_shrinking(lc__shdict *d) {
  pop_string(d, "long", LC__SHDICT_LEFT);
}

static void find_shrink_point(void) {
  lc__shdict *d = new_dict(64 * KIB, 1);
  size_t space;
  int i;

  build_long_list(d);
  for (i = 0; i < 200; i++) {
    space = lc__shdict_free_space(d);
    pop_string(d, "long", LC__SHDICT_LEFT);
    if (lc__shdict_free_space(d) != space)
      break;
  }
  pops_before_shrink = i;
  CHECK(i > 0 && i < 199);
  lc__shdict_close(d);
}

static void setup_full(lc__shdict *d) { fill_until_forcible(d, "f", 100, 5000); }

static void set_evicting(lc__shdict *d) {
  char value[700];

  memset(value, 'e', sizeof(value));
  store_string(d, LC__SHDICT_SET, "evicts", value, sizeof(value), 0, NULL);
}

static void setup_fragmented(lc__shdict *d) {
  int n = fill_until_forcible(d, "f", 24, 5000), i;
  char key[32];

  for (i = 0; i <= n; i += 2) {
    snprintf(key, sizeof(key), "f%d", i);
    lc__shdict_delete(d, KEY(key));
  }
}

static void set_large_fragmented(lc__shdict *d) {
  char value[1500];

  memset(value, 'L', sizeof(value));
  store_string(d, LC__SHDICT_SET, "large", value, sizeof(value), 0, NULL);
}

static void flush_all(lc__shdict *d) { lc__shdict_flush_all(d); }

static void setup_expired(lc__shdict *d) {
  char key[32];
  int i;

  setup_some(d);
  for (i = 0; i < 10; i++) {
    snprintf(key, sizeof(key), "gone%d", i);
    set_string(d, key, "soon", 1);
  }
  sleep_ms(3);
}

static void flush_expired(lc__shdict *d) {
  size_t count;

  lc__shdict_flush_expired(d, 0, &count);
}

static const scenario scenarios[] = {
    {"set a new key", 64 * KIB, 1, setup_some, set_new_key, 1},
    {"set in place", 64 * KIB, 1, setup_some, set_in_place, 1},
    {"set a number in place", 64 * KIB, 1, setup_some, set_number_in_place,
     1},
    {"set into a new block", 64 * KIB, 1, setup_some, set_bigger, 1},
    {"delete", 64 * KIB, 1, setup_some, delete_key, 1},
    {"incr", 64 * KIB, 1, setup_some, incr_key, 1},
    {"incr with init", 64 * KIB, 1, setup_some, incr_new_key, 1},
    {"cas", 64 * KIB, 1, setup_some, cas_key, 1},
    {"expire", 64 * KIB, 1, setup_some, expire_key, 1},
    {"rpush in place", 64 * KIB, 1, setup_list, rpush_in_place, 1},
    {"lpush growing the list", 64 * KIB, 1, setup_list, lpush_growing, 1},
    {"lpop", 64 * KIB, 1, setup_list, lpop_item, 1},
    {"rpop of the last item", 64 * KIB, 1, setup_list, rpop_last, 1},
    {"lpop shrinking the list", 64 * KIB, 1, setup_shrinking_list,
     lpop_shrinking, 1},
    {"set evicting the oldest", 64 * KIB, 1, setup_full, set_evicting, 0},
    {"set evicting neighbours", 64 * KIB, 1, setup_fragmented,
     set_large_fragmented, 0},
    {"flush_all", 64 * KIB, 2, setup_some, flush_all, 0},
    {"flush_expired", 64 * KIB, 2, setup_expired, flush_expired, 1},
};

static char *contents(const scenario *sc, int change) {
  lc__shdict *d = new_dict(sc->size, sc->segments);
  char *text;

  sc->setup(d);
  if (change)
    sc->change(d);
  text = dump(d);
  lc__shdict_close(d);
  return text;
}

/* How many crash points the change passes through. */
static long crash_points(const scenario *sc) {
  lc__shdict *d = new_dict(sc->size, sc->segments);
  long points;

  sc->setup(d);
  lc__shdict_crash_countdown = 1L << 40;
  sc->change(d);
  points = (1L << 40) - lc__shdict_crash_countdown;
  lc__shdict_crash_countdown = 0;
  lc__shdict_close(d);
  return points;
}

/* Crashes the change at point n; checks what the next locker sees.
 * Returns 1 if fine, 0 if not, 2 if the change ended before point n (the
 * count varies by a few between dicts: writes that change nothing are
 * skipped, and that depends on the hash seed). */
static int crash_once(const scenario *sc, long n, const char *before,
                      const char *after) {
  lc__shdict *d = new_dict(sc->size, sc->segments);
  int status, ok = 1, done;
  char *text, err[256];
  pid_t pid;

  sc->setup(d);
  if ((pid = fork()) == 0) {
    lc__shdict_crash_countdown = n;
    sc->change(d);
    _exit(0);
  }
  waitpid(pid, &status, 0);
  done = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!done && (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)) {
    fprintf(stderr, "%s: point %ld: the child ended oddly\n", sc->name, n);
    ok = 0;
  }
  if (lc__shdict_check(d, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s: point %ld: %s\n", sc->name, n, err);
    ok = 0;
  }
  ok &= lc__shdict_repairs(d) == (done ? 0 : 1);
  text = dump(d);
  if (sc->strict || done)
    ok &= (!done && strcmp(text, before) == 0) || strcmp(text, after) == 0;
  else
    ok &= lines_from(text, before, after);
  if (!ok)
    fprintf(stderr, "%s: crash at point %ld left:\n%s", sc->name, n, text);
  free(text);
  lc__shdict_close(d);
  return ok ? 1 + done : 0;
}

static void crash_at_every_point(void) {
  const scenario *sc;
  char *before, *after;
  long points, n, step, tried;
  size_t i;
  int rc;

  find_shrink_point();
  for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
    sc = &scenarios[i];
    before = contents(sc, 0);
    after = contents(sc, 1);
    points = crash_points(sc);
    step = points > 300 ? points / 300 : 1;
    for (n = 1, tried = 0, rc = 1; rc == 1; n += step, tried++)
      rc = crash_once(sc, n > points ? points + 8 : n, before, after);
    CHECK_EQ_INT(rc, 2); /* ended by a run that got through */
    CHECK(points > 0 && tried + 8 >= (points < 300 ? points : 300));
    fprintf(stderr, "       %-26s %4ld crash points, %ld tried\n", sc->name,
            points, tried);
    free(before);
    free(after);
  }
}

/* Random kills under load --------------------------------------------------
 *
 * Hammering children move amounts between the 8 numbers of one value with
 * cas (their sum never changes), set keys of random sizes (evicting),
 * incr, push and pop; the parent SIGKILLs one of them every few ms, 60
 * times, and after each kill reads the value: the sum must hold. A prober
 * child times every get meanwhile: no process may wait long on a lock a
 * dead one held.
 */
#define SLOTS 8
#define TOTAL 8000
#define KILLS 60

typedef struct shared_flags {
  volatile int stop;
  volatile long max_wait_us;
  volatile long probes;
} shared_flags;

static int read_slots(lc__shdict *d, double *slots) {
  lc__shdict_value v;

  return lc__shdict_get(d, KEY("inv"), 0, &v, slots, SLOTS * sizeof(double));
}

static double slot_sum(const double *slots) {
  double sum = 0;
  int i;

  for (i = 0; i < SLOTS; i++)
    sum += slots[i];
  return sum;
}

static void hammer(lc__shdict *d, unsigned seed) {
  double slots[SLOTS], moved[SLOTS], n;
  lc__shdict_input old = {LC__SHDICT_TSTRING, 0, slots, sizeof(slots)};
  lc__shdict_input new_value = {LC__SHDICT_TSTRING, 0, moved, sizeof(moved)};
  char key[32], value[3000], buf[3000];
  lc__shdict_value v;
  size_t count;
  int from, to;

  memset(value, 'h', sizeof(value));
  for (;;) {
    if (read_slots(d, slots) == 0) {
      memcpy(moved, slots, sizeof(moved));
      from = rand_r(&seed) % SLOTS;
      to = rand_r(&seed) % SLOTS;
      n = rand_r(&seed) % 10;
      if (moved[from] >= n) {
        moved[from] -= n;
        moved[to] += n;
        lc__shdict_cas(d, KEY("inv"), &old, &new_value, 0, 0, NULL);
      }
    }
    snprintf(key, sizeof(key), "r%d", rand_r(&seed) % 500);
    store_string(d, LC__SHDICT_SET, key, value, 1 + rand_r(&seed) % 2999,
                 rand_r(&seed) % 2 ? 0 : 1 + rand_r(&seed) % 50, NULL);
    snprintf(key, sizeof(key), "c%d", rand_r(&seed) % 16);
    lc__shdict_incr(d, KEY(key), 1, 1, 0, 0, &n, NULL);
    if (rand_r(&seed) % 2)
      push_string(d, "q", rand_r(&seed) % 2, "queued item", &count);
    else
      lc__shdict_pop(d, KEY("q"), rand_r(&seed) % 2, &v, buf, sizeof(buf));
    if (rand_r(&seed) % 8 == 0) {
      snprintf(key, sizeof(key), "r%d", rand_r(&seed) % 500);
      lc__shdict_delete(d, KEY(key));
    }
  }
}

static void probe(lc__shdict *d, shared_flags *flags) {
  struct timespec a, b;
  double slots[SLOTS];
  long us;

  while (!flags->stop) {
    clock_gettime(CLOCK_MONOTONIC, &a);
    read_slots(d, slots);
    clock_gettime(CLOCK_MONOTONIC, &b);
    us = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
    if (us > flags->max_wait_us)
      flags->max_wait_us = us;
    flags->probes++;
  }
}

static pid_t start_hammer(lc__shdict *d, unsigned seed) {
  pid_t pid = fork();

  if (pid == 0) {
    hammer(d, seed);
    _exit(0);
  }
  return pid;
}

static void random_kills_keep_the_invariant(void) {
  shared_flags *flags = mmap(NULL, sizeof(*flags), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  lc__shdict *d = new_dict(MIB, 0);
  double slots[SLOTS];
  pid_t hammers[2], prober;
  int i, sums_ok = 1, checks_ok = 1;
  unsigned seed = 12345;
  char err[256];

  for (i = 0; i < SLOTS; i++)
    slots[i] = TOTAL / SLOTS;
  CHECK_EQ_INT(store_string(d, LC__SHDICT_SET, "inv", (const char *)slots,
                            sizeof(slots), 0, NULL),
               0);
  memset(flags, 0, sizeof(*flags));
  hammers[0] = start_hammer(d, 1);
  hammers[1] = start_hammer(d, 2);
  if ((prober = fork()) == 0) {
    probe(d, flags);
    _exit(0);
  }
  for (i = 0; i < KILLS; i++) {
    sleep_ms(1 + rand_r(&seed) % 8);
    kill(hammers[i % 2], SIGKILL);
    waitpid(hammers[i % 2], NULL, 0);
    sums_ok &= read_slots(d, slots) == 0 && slot_sum(slots) == TOTAL;
    if (i % 10 == 9 && lc__shdict_check(d, err, sizeof(err)) != 0) {
      fprintf(stderr, "after kill %d: %s\n", i + 1, err);
      checks_ok = 0;
    }
    hammers[i % 2] = start_hammer(d, (unsigned)i + 3);
  }
  kill(hammers[0], SIGKILL);
  kill(hammers[1], SIGKILL);
  waitpid(hammers[0], NULL, 0);
  waitpid(hammers[1], NULL, 0);
  flags->stop = 1;
  CHECK_EQ_INT(wait_exit_code(prober), 0);
  CHECK(sums_ok);
  CHECK(checks_ok);
  CHECK_CONSISTENT(d);
  CHECK(lc__shdict_repairs(d) > 0);
  CHECK(flags->probes > 1000);
  CHECK(flags->max_wait_us < 500000);
  fprintf(stderr, "       %d kills, %llu repairs, %ld probes, longest wait %ld us\n",
          KILLS, (unsigned long long)lc__shdict_repairs(d), flags->probes,
          flags->max_wait_us);
  lc__shdict_close(d);
  munmap(flags, sizeof(*flags));
}

/* Lock-free reads ---------------------------------------------------------
 *
 * A writer rewrites 200 keys with values whose every byte, length and
 * flags agree (and numbers that match their key), in place, in new blocks
 * and through evictions, while two readers get them without the lock as
 * fast as they can: no reader may ever see a value half old, half new.
 */
static int value_is_whole(int k, const lc__shdict_value *v,
                          const unsigned char *buf) {
  size_t i;

  if (v->type == LC__SHDICT_TNUMBER)
    return v->flags == 1 && v->number == k + 0.5;
  if (v->type != LC__SHDICT_TSTRING || v->len != v->flags >> 8)
    return 0;
  for (i = 0; i < v->len; i++)
    if (buf[i] != (v->flags & 0xff))
      return 0;
  return 1;
}

static void rewrite_forever(lc__shdict *d) {
  unsigned char value[400];
  unsigned seed = 7, len, byte;
  char key[32];
  int k;

  for (;;) {
    k = rand_r(&seed) % 200;
    snprintf(key, sizeof(key), "k%d", k);
    if (rand_r(&seed) % 4 == 0) {
      lc__shdict_store(d, LC__SHDICT_SET, KEY(key), LC__SHDICT_TNUMBER, NULL,
                       0, k + 0.5, 0, 1, NULL);
      continue;
    }
    len = rand_r(&seed) % 8 == 0 ? 1 + rand_r(&seed) % 399 : 24;
    byte = rand_r(&seed) & 0xff;
    memset(value, (int)byte, len);
    lc__shdict_store(d, LC__SHDICT_SET, KEY(key), LC__SHDICT_TSTRING, value,
                     len, 0, 0, len << 8 | byte, NULL);
    if (rand_r(&seed) % 16 == 0)
      lc__shdict_delete(d, KEY(key));
  }
}

static int read_for(lc__shdict *d, double seconds, unsigned seed) {
  uint64_t end = now_ms() + (uint64_t)(seconds * 1000);
  unsigned char buf[512];
  lc__shdict_value v;
  long reads = 0, bad = 0;
  char key[32];
  int k, rc;

  while (now_ms() < end) {
    for (int i = 0; i < 1000; i++, reads++) {
      k = rand_r(&seed) % 200;
      snprintf(key, sizeof(key), "k%d", k);
      rc = lc__shdict_get(d, KEY(key), 0, &v, buf, sizeof(buf));
      if (rc == 0 && !value_is_whole(k, &v, buf))
        bad++;
      else if (rc != 0 && rc != LC__SHDICT_ENOTFOUND)
        bad++;
    }
  }
  return bad == 0 && reads > 10000 ? 0 : 1;
}

static void lock_free_reads_are_whole(void) {
  lc__shdict *d = new_dict(64 * KIB, 1);
  pid_t writer, readers[2];
  int i;

  if ((writer = fork()) == 0)
    rewrite_forever(d);
  for (i = 0; i < 2; i++)
    if ((readers[i] = fork()) == 0)
      _exit(read_for(d, 1.0, (unsigned)i + 1));
  for (i = 0; i < 2; i++)
    CHECK_EQ_INT(wait_exit_code(readers[i]), 0);
  kill(writer, SIGKILL);
  waitpid(writer, NULL, 0);
  CHECK_CONSISTENT(d);
  lc__shdict_close(d);
}

/* The checker and the repair, white box ------------------------------------ */

static void checker_finds_damage(void) {
  lc__shdict *d = new_dict(64 * KIB, 1);
  lc__shdict_segment *s = lc__shdict_segment_at(d, 0);
  lc__shdict_entry *e;
  uint32_t saved;
  char err[256];

  put_keys(d, "k", 10, 30);
  CHECK_CONSISTENT(d);
  s->free_bytes += 8;
  CHECK_EQ_INT(lc__shdict_check(d, err, sizeof(err)), LC__SHDICT_ECORRUPT);
  CHECK(strstr(err, "free bytes") != NULL);
  s->free_bytes -= 8;
  e = lc__shdict_entry_at(s, s->lru_newest);
  saved = e->lru_older;
  e->lru_older = s->lru_newest;
  CHECK_EQ_INT(lc__shdict_check(d, err, sizeof(err)), LC__SHDICT_ECORRUPT);
  CHECK(strstr(err, "LRU") != NULL);
  e->lru_older = saved;
  e->hash ^= 1;
  CHECK_EQ_INT(lc__shdict_check(d, err, sizeof(err)), LC__SHDICT_ECORRUPT);
  e->hash ^= 1;
  CHECK_CONSISTENT(d);
  /* a change left half done is undone by the next lock */
  saved = s->free_bytes;
  lc__shdict_w32(s, &s->free_bytes, saved + 16);
  lc__shdict_w32(s, &s->entries, s->entries + 1);
  CHECK(s->log_used > 0);
  CHECK_CONSISTENT(d);
  CHECK_EQ_INT(s->free_bytes, saved);
  CHECK_EQ_INT(s->log_used, 0);
  lc__shdict_close(d);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--worker") == 0)
    return worker_main(atoi(argv[2]), strtoull(argv[3], NULL, 10));
  RUN(attaches_after_exec);
  RUN(attach_checks_the_memory);
  RUN(create_checks_its_geometry);
  RUN(values_keep_their_types);
  RUN(add_replace_delete);
  RUN(limits_and_bad_input);
  RUN(incr_adds_to_numbers);
  RUN(cas_swaps_only_the_expected_value);
  RUN(keys_expire);
  RUN(lists_push_and_pop);
  RUN(lists_keep_order_and_shrink);
  RUN(flush_all_and_expired);
  RUN(get_keys_bounded);
  RUN(lru_evicts_the_oldest);
  RUN(lru_spares_what_was_read);
  RUN(expired_entries_go_first);
  RUN(safe_variants_evict_nothing);
  RUN(large_value_in_fragmented_space);
  RUN(incr_totals_from_processes);
  RUN(lock_free_reads_are_whole);
  RUN(checker_finds_damage);
  RUN(crash_at_every_point);
  RUN(random_kills_keep_the_invariant);
  TEST_EXIT();
}
