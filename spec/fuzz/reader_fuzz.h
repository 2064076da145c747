/*
 * reader_fuzz.h - what the two HTTP reader fuzz targets (fuzz_http.c for
 * requests, fuzz_http_response.c for responses) share: the input cut into
 * pieces where its own bytes say, callbacks that pause when its seed byte
 * says, a feed loop that holds the reader to its promises, and the line-end
 * check of written heads.
 */
#ifndef LC_READER_FUZZ_H
#define LC_READER_FUZZ_H

#include <stdint.h>
#include <stdlib.h>

#include "http_codec.h"

#define FUZZ_PIECES 4

/* Which callbacks pause: bit (events % 8) of seed. */
typedef struct fuzz_pauser {
  unsigned seed;
  unsigned events;
  int paused;
} fuzz_pauser;

static int fuzz_maybe_pause(fuzz_pauser *pz) {
  pz->events++;
  pz->paused = ((pz->seed >> (pz->events % 8)) & 1) != 0;
  return pz->paused;
}

/* Ascending ends of FUZZ_PIECES + 1 pieces, from bytes 2.. of the input. */
static void fuzz_cuts(const uint8_t *data, size_t size,
                      size_t cuts[FUZZ_PIECES + 1]) {
  size_t i;

  for (i = 0; i < FUZZ_PIECES; i++)
    cuts[i] = size > 2 + i ? (size * data[2 + i]) / 256 : size;
  cuts[FUZZ_PIECES] = size;
  for (i = 1; i <= FUZZ_PIECES; i++)
    if (cuts[i] < cuts[i - 1])
      cuts[i] = cuts[i - 1];
}

/* Feeds one piece, resuming after pauses; returns the reader's status (0:
 * none). Aborts when the reader takes more than it was given, answers a
 * status it does not promise or without words, answers anything else when
 * fed again after its error, or leaves bytes while neither paused nor
 * failed. */
static int fuzz_feed_piece(lc__http_reader *r, fuzz_pauser *pz,
                           int (*promised)(int), const char *p, size_t len) {
  size_t n;
  int status = 0, again;

  while (len > 0) {
    n = lc__http_reader_feed(r, p, len, &status);
    if (n > len)
      abort();
    if (status != 0) {
      if (!promised(status) || lc__http_reader_error(r) == NULL)
        abort();
      if (lc__http_reader_feed(r, p, len, &again) != 0 || again != status)
        abort();
      return status;
    }
    if (pz->paused) {
      pz->paused = 0;
      lc__http_reader_resume(r);
    } else if (n != len) {
      abort();
    }
    p += n;
    len -= n;
  }
  return 0;
}

/* No CR without LF after it, no LF without CR before it. */
static int fuzz_crlf_ok(const char *s, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
      return 0;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
      return 0;
  }
  return 1;
}

#endif
