/*
 * fuzz_message.c - libFuzzer target for what a peer's bytes can be: a
 * stream of frames (frame.c) whose user messages are then checked
 * (message.c), and the whole input checked as one message.
 *
 * Each payload is checked from a heap block of its exact size, so reading a
 * byte past it is an ASan report; the check must answer with one of its
 * codes; and the format being prefix-free, a payload it accepts must not be
 * accepted one byte shorter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "message.h"

#define MAX_PAYLOAD (1024 * 1024)

static void check_payload(const uint8_t *p, size_t len) {
  char *copy = malloc(len ? len : 1);
  int err;

  if (copy == NULL)
    return;
  memcpy(copy, p, len);
  err = lc__message_check(copy, len);
  if (err > 0 || err < LC__MESSAGE_ECOUNT || lc__message_strerror(err) == NULL)
    abort();
  if (err == 0 && len > 0 && lc__message_check(copy, len - 1) == 0)
    abort();
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  lc__frame f;
  lc__control c;

  while (off < size) {
    int r = lc__frame_parse((const char *)data + off, size - off, MAX_PAYLOAD,
                            &f);
    if (r <= 0)
      break;
    if (f.size > size - off || f.payload_len + LC__FRAME_HEADER_SIZE != f.size)
      abort();
    if (f.type == LC__FRAME_MESSAGE)
      check_payload((const uint8_t *)f.payload, f.payload_len);
    else if (f.type == LC__FRAME_CONTROL || f.type == LC__FRAME_HANDLE)
      (void)lc__control_check(f.payload, f.payload_len, &c);
    off += f.size;
  }
  check_payload(data, size);
  return 0;
}
