/*
 * loop.c - ending the loop cleanly.
 *
 * At exit every handle is closed through its owner (owner.h), so each is
 * closed exactly once and its memory freed in its own close callback; the
 * loop runs until those callbacks are done and uv_loop_close() succeeds.
 * Only then is the Lua state closed. While this runs, rt->shutting_down
 * keeps close callbacks from calling into Lua.
 */
#include "internal.h"

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

void lc__loop_shutdown(lc_runtime *rt) {
  int i;

  if (rt->loop_closed)
    return;
  rt->loop_closed = 1;
  rt->exiting = 1;
  rt->shutting_down = 1;
  for (i = 0; i < 100; i++) {
    uv_walk(&rt->loop, walk_close, NULL);
    uv_run(&rt->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&rt->loop) == 0)
      return;
  }
  lc__log(LC__LOG_WARN, "event loop did not close cleanly");
}
