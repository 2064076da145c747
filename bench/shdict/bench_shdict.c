/*
 * bench_shdict.c - the shared dict's C core alone: set, get and incr per
 * second from one process, then from two processes at once on the same
 * dict (their total), over 1024 keys with small values. No Lua: this is
 * the ceiling the binding works under.
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

#include "core/shdict.h"

#define KEYS 1024

typedef enum { SET_NUMBER, SET_STRING, GET_NUMBER, GET_STRING, INCR } op;

static const char *op_names[] = {"set (number)", "set (16 B string)",
                                 "get (number)", "get (16 B string)", "incr"};

static char keys[KEYS][16];
static size_t key_lens[KEYS];

static double seconds(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs op for `duration` seconds; returns operations done. */
static long run(lc__shdict *d, op which, double duration, unsigned offset) {
  static const char value[16] = "0123456789abcdef";
  double end = seconds() + duration, n;
  lc__shdict_value v;
  char buf[64];
  long done = 0;
  unsigned i, k;

  while (seconds() < end) {
    for (i = 0; i < 4096; i++) {
      k = (i * 7 + offset) % KEYS;
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

  for (k = 0; k < KEYS; k++)
    lc__shdict_store(d, LC__SHDICT_SET, keys[k], key_lens[k],
                     string ? LC__SHDICT_TSTRING : LC__SHDICT_TNUMBER,
                     "0123456789abcdef", string ? 16 : 0, k, 0, 0, NULL);
}

/* Both children start together and count for `duration`; the total. */
static long run_two(lc__shdict *d, op which, double duration) {
  long *counts = mmap(NULL, 2 * sizeof(long), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t pids[2];
  long total;
  int c;

  for (c = 0; c < 2; c++) {
    if ((pids[c] = fork()) == 0) {
      counts[c] = run(d, which, duration, (unsigned)c * 500);
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
  long one, two;
  lc__shdict *d;
  unsigned k;
  int rc, w;

  for (k = 0; k < KEYS; k++)
    key_lens[k] = (size_t)snprintf(keys[k], sizeof(keys[k]), "key:%u", k);
  if ((rc = lc__shdict_create("bench", 64 << 20, 0, &d)) != 0) {
    fprintf(stderr, "create: %s\n", lc__shdict_strerror(rc));
    return 1;
  }
  printf("%-20s %14s %14s %8s\n", "64 MiB dict, 1024 keys", "1 process",
         "2 processes", "ratio");
  for (w = SET_NUMBER; w <= INCR; w++) {
    fill(d, w == SET_STRING || w == GET_STRING);
    one = run(d, (op)w, duration, 0);
    two = run_two(d, (op)w, duration);
    printf("%-20s %11.1f M/s %11.1f M/s %7.2fx\n", op_names[w],
           (double)one / duration / 1e6, (double)two / duration / 1e6,
           (double)two / (double)one);
  }
  lc__shdict_close(d);
  return 0;
}
