/*
 * bench_shdict.c - the shared dict's C core alone: set, get and incr per
 * second from one process, then from two processes at once on the same
 * dict (their total), both on the same 1024 keys and each on 1024 keys of
 * its own, with small values. No Lua: this is the ceiling the binding
 * works under.
 *
 *   build/bench_shdict [seconds per run, default 1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shdict.h"

#define KEYS 1024 /* per process */

typedef enum { SET_NUMBER, SET_STRING, GET_NUMBER, GET_STRING, INCR } op;

static const char *op_names[] = {"set (number)", "set (16 B string)",
                                 "get (number)", "get (16 B string)", "incr"};

static char keys[2 * KEYS][16];
static size_t key_lens[2 * KEYS];

static double seconds(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs op for `duration` seconds on keys[first, first + KEYS); returns
 * operations done. */
static long run(lc__shdict *d, op which, double duration, unsigned first,
                unsigned offset) {
  static const char value[16] = "0123456789abcdef";
  double end = seconds() + duration, n;
  lc__shdict_value v;
  char buf[64];
  long done = 0;
  unsigned i, k;

  while (seconds() < end) {
    for (i = 0; i < 4096; i++) {
      k = first + (i * 7 + offset) % KEYS;
      switch (which) {
      case SET_NUMBER:
        lc__shdict_store(d, LC__SHDICT_SET, keys[k], key_lens[k],
                         LC__SHDICT_TNUMBER, NULL, 0, i, 0, 0, NULL);
        break;
      case SET_STRING:
        lc__shdict_store(d, LC__SHDICT_SET, keys[k], key_lens[k],
                         LC__SHDICT_TSTRING, value, sizeof(value), 0, 0, 0,
                         NULL);
        break;
      case GET_NUMBER:
      case GET_STRING:
        lc__shdict_get(d, keys[k], key_lens[k], 0, &v, buf, sizeof(buf));
        break;
      case INCR:
        lc__shdict_incr(d, keys[k], key_lens[k], 1, 1, 0, 0, &n, NULL);
        break;
      }
    }
    done += 4096;
  }
  return done;
}

static void fill(lc__shdict *d, int string) {
  unsigned k;

  for (k = 0; k < 2 * KEYS; k++)
    lc__shdict_store(d, LC__SHDICT_SET, keys[k], key_lens[k],
                     string ? LC__SHDICT_TSTRING : LC__SHDICT_TNUMBER,
                     "0123456789abcdef", string ? 16 : 0, k, 0, 0, NULL);
}

/* Both children start together and count for `duration`; the total.
 * With own_keys, the second works on keys of its own. */
static long run_two(lc__shdict *d, op which, double duration, int own_keys) {
  long *counts = mmap(NULL, 2 * sizeof(long), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t pids[2];
  long total;
  int c;

  for (c = 0; c < 2; c++) {
    if ((pids[c] = fork()) == 0) {
      counts[c] = run(d, which, duration, own_keys ? (unsigned)c * KEYS : 0,
                      (unsigned)c * 500);
      _exit(0);
    }
  }
  for (c = 0; c < 2; c++)
    waitpid(pids[c], NULL, 0);
  total = counts[0] + counts[1];
  munmap(counts, 2 * sizeof(long));
  return total;
}

int main(int argc, char **argv) {
  double duration = argc > 1 ? atof(argv[1]) : 1.0;
  long one, same, own;
  lc__shdict *d;
  unsigned k;
  int rc, w;

  for (k = 0; k < 2 * KEYS; k++)
    key_lens[k] = (size_t)snprintf(keys[k], sizeof(keys[k]), "key:%u", k);
  if ((rc = lc__shdict_create("bench", 64 << 20, 0, &d)) != 0) {
    fprintf(stderr, "create: %s\n", lc__shdict_strerror(rc));
    return 1;
  }
  printf("64 MiB dict, %u segments; M ops/s; 2 processes: their total\n",
         lc__shdict_segments(d));
  printf("%-20s %10s %16s %16s\n", "", "1 process", "2, same keys",
         "2, own keys");
  for (w = SET_NUMBER; w <= INCR; w++) {
    fill(d, w == SET_STRING || w == GET_STRING);
    one = run(d, (op)w, duration, 0, 0);
    same = run_two(d, (op)w, duration, 0);
    own = run_two(d, (op)w, duration, 1);
    printf("%-20s %10.1f %10.1f %4.2fx %10.1f %4.2fx\n", op_names[w],
           (double)one / duration / 1e6, (double)same / duration / 1e6,
           (double)same / (double)one, (double)own / duration / 1e6,
           (double)own / (double)one);
  }
  lc__shdict_close(d);
  return 0;
}
