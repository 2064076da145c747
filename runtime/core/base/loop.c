/*
 * loop.c - the core's life: set up, exit, and ending the loop cleanly.
 *
 * At exit every handle is closed through its owner (owner.h), so each is
 * closed exactly once and its memory freed in its own close callback; the
 * loop runs until those callbacks are done and uv_loop_close() succeeds.
 * Only then do the parts free what they hold (the cleanups each registered
 * with lc__core_on_close()), so no part has to know another's teardown.
 * While this runs, core->shutting_down keeps close callbacks from telling
 * anyone.
 */
#include <stdlib.h>

#include "core.h"

struct lc__cleanup {
  void (*fn)(void *arg);
  void *arg;
  lc__cleanup *next;
};

int lc__core_init(lc__core *core) {
  const char *spin = getenv("LUACLUSTER_IPC_SPIN_US");

  core->start_ns = uv_hrtime();
  core->opts.ipc_spin_us = spin != NULL ? (unsigned)strtoul(spin, NULL, 10) : 50;
  return uv_loop_init(&core->loop);
}

int lc__core_on_close(lc__core *core, void (*fn)(void *arg), void *arg) {
  lc__cleanup *c = malloc(sizeof(*c));

  if (c == NULL)
    return UV_ENOMEM;
  c->fn = fn;
  c->arg = arg;
  c->next = core->cleanups;
  core->cleanups = c;
  return 0;
}

void lc__core_exit(lc__core *core, int code) {
  /* The last word wins: process.exit(n) in an "exit" listener overrides. */
  core->exiting = 1;
  core->exit_code = code;
  uv_stop(&core->loop);
}

void lc__core_finish(lc__core *core) {
  core->finished = 1;
  uv_stop(&core->loop);
}

static void walk_close(uv_handle_t *handle, void *arg) {
  lc__owner *owner = handle->data;

  (void)arg;
  if (uv_is_closing(handle))
    return;
  if (owner != NULL && owner->close != NULL)
    owner->close(handle);
  else
    uv_close(handle, NULL);
}

void lc__loop_shutdown(lc__core *core) {
  int i;

  if (core->loop_closed)
    return;
  core->loop_closed = 1;
  core->exiting = 1;
  core->shutting_down = 1;
  for (i = 0; i < 100; i++) {
    uv_walk(&core->loop, walk_close, NULL);
    uv_run(&core->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&core->loop) == 0)
      return;
  }
  lc__log(LC__LOG_WARN, "event loop did not close cleanly");
}

void lc__core_close(lc__core *core) {
  lc__cleanup *c;

  lc__loop_shutdown(core);
  while ((c = core->cleanups) != NULL) {
    core->cleanups = c->next;
    c->fn(c->arg);
    free(c);
  }
}
