/*
 * manager.c - managed mode (`luacluster -w N app.lua`): a master that runs
 * no Lua and keeps N workers serving.
 *
 * Each worker sits in a slot 0..N-1; a replacement inherits the slot's
 * number (LUACLUSTER_INSTANCE), so an app can run a singleton on instance 0.
 * Signal handlers only record; the loop acts (as nginx's master does):
 *
 *   crash        restart at once; if it keeps crashing, wait 100 ms, x1.5
 *                each time up to 15 s; the wait resets once a worker has
 *                stayed up 30 s. Exit code 78 (fatal setup error) is not
 *                restarted.
 *   SIGTERM/INT  graceful stop: every worker disconnects (stops accepting,
 *                finishes in-flight requests); those still alive after
 *                the kill timeout get SIGKILL; then exit 0. A second SIGINT
 *                stops at once.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 15000
#define BACKOFF_RESET_MS 30000

typedef struct lc__slot {
  lc__owner owner;
  uv_timer_t restart_timer;
  lc__manager *m;
  int instance;
  lc__worker *w;
  int restarts;
  unsigned backoff_ms;
  int fatal; /* its worker exited with LC__EXIT_FATAL: leave it empty */
} lc__slot;

struct lc__manager {
  lc__owner owner;
  uv_signal_t signals[4];
  uv_timer_t kill_timer;
  lc_runtime *rt;
  lc__slot **slots;
  int nslots;
  int stopping;
  int exit_code;
};

static void manager_start_worker(lc__slot *slot);

static void log_exit(lc__worker *w, int64_t code, int signum) {
  if (signum != 0)
    lc__log(LC__LOG_WARN, "[worker%d] pid %d killed by %s", w->id, w->pid,
            lc__signal_name(signum));
  else
    lc__log(code == 0 ? LC__LOG_INFO : LC__LOG_WARN,
            "[worker%d] pid %d exited with code %d", w->id, w->pid, (int)code);
}

static int workers_alive(lc__manager *m) {
  int i, n = 0;

  for (i = 0; i < m->nslots; i++)
    n += m->slots[i]->w != NULL;
  return n;
}

static void manager_finish(lc__manager *m) {
  uv_stop(&m->rt->loop);
}

static void on_restart_timer(uv_timer_t *timer) {
  lc__slot *slot = timer->data;

  if (!slot->m->stopping)
    manager_start_worker(slot);
}

static void schedule_restart(lc__slot *slot, uint64_t uptime_ms) {
  lc__manager *m = slot->m;

  if (uptime_ms >= BACKOFF_RESET_MS)
    slot->backoff_ms = 0;
  slot->restarts++;
  if (slot->backoff_ms == 0) {
    /* The first crash in a while: restart at once. */
    slot->backoff_ms = BACKOFF_FIRST_MS;
    manager_start_worker(slot);
    return;
  }
  lc__log(LC__LOG_WARN, "instance %d keeps crashing: restarting in %u ms",
          slot->instance, slot->backoff_ms);
  uv_timer_start(&slot->restart_timer, on_restart_timer, slot->backoff_ms, 0);
  slot->backoff_ms = slot->backoff_ms * 3 / 2;
  if (slot->backoff_ms > BACKOFF_MAX_MS)
    slot->backoff_ms = BACKOFF_MAX_MS;
  (void)m;
}

static void mw_on_exit(lc__worker *w, int64_t code, int signum) {
  lc__slot *slot = w->data;
  lc__manager *m = slot->m;
  uint64_t uptime = uv_now(&m->rt->loop) - w->started_ms;

  log_exit(w, code, signum);
  slot->w = NULL;
  lc__worker_release(w);
  if (m->stopping) {
    if (workers_alive(m) == 0)
      manager_finish(m);
    return;
  }
  if (signum == 0 && code == LC__EXIT_FATAL) {
    lc__log(LC__LOG_ERROR,
            "instance %d: worker cannot start (exit code %d): not restarting",
            slot->instance, LC__EXIT_FATAL);
    slot->fatal = 1;
    if (workers_alive(m) == 0) {
      m->exit_code = 1;
      manager_finish(m);
    }
    return;
  }
  schedule_restart(slot, uptime);
}

static void mw_on_error(lc__worker *w, int err, const char *reason) {
  (void)err;
  lc__log(LC__LOG_WARN, "[worker%d] %s", w->id, reason);
}

static const lc__worker_events manager_worker_events = {
    NULL, NULL, NULL, NULL, mw_on_exit, mw_on_error, NULL, NULL};

static void manager_start_worker(lc__slot *slot) {
  lc__manager *m = slot->m;
  lc_runtime *rt = m->rt;
  lc__worker_spec spec;
  int err;

  memset(&spec, 0, sizeof(spec));
  spec.exec = rt->script;
  spec.args = rt->args;
  spec.nargs = rt->nargs;
  spec.instance = slot->instance;
  err = lc__worker_spawn(rt, &spec, &manager_worker_events, slot, &slot->w);
  if (err) {
    lc__log(LC__LOG_ERROR, "cannot start a worker for instance %d: %s",
            slot->instance, uv_strerror(err));
    slot->w = NULL;
    schedule_restart(slot, 0);
    return;
  }
  lc__log(LC__LOG_INFO, "[worker%d] started, pid: %d", slot->w->id,
          slot->w->pid);
}

/* Stopping --------------------------------------------------------------------- */

static void kill_all(lc__manager *m, int signum) {
  int i;

  for (i = 0; i < m->nslots; i++)
    if (m->slots[i]->w != NULL)
      lc__worker_kill(m->slots[i]->w, signum);
}

static void on_kill_timer(uv_timer_t *timer) {
  lc__manager *m = timer->data;

  lc__log(LC__LOG_WARN, "workers still busy after %u ms: killing them",
          m->rt->opts.kill_timeout_ms);
  kill_all(m, SIGKILL);
}

static void manager_stop(lc__manager *m, const char *why) {
  int i;

  if (m->stopping)
    return;
  m->stopping = 1;
  lc__log(LC__LOG_INFO, "%s: stopping %d worker(s)", why, workers_alive(m));
  for (i = 0; i < m->nslots; i++) {
    uv_timer_stop(&m->slots[i]->restart_timer);
    if (m->slots[i]->w != NULL)
      lc__worker_disconnect(m->slots[i]->w);
  }
  if (workers_alive(m) == 0) {
    manager_finish(m);
    return;
  }
  uv_timer_start(&m->kill_timer, on_kill_timer, m->rt->opts.kill_timeout_ms,
                 0);
}

static void on_signal(uv_signal_t *handle, int signum) {
  lc__manager *m = handle->data;

  if (signum == SIGINT && m->stopping) {
    lc__log(LC__LOG_WARN, "second SIGINT: stopping at once");
    kill_all(m, SIGKILL);
    return;
  }
  manager_stop(m, lc__signal_name(signum));
}

/* Setup and teardown ----------------------------------------------------------- */

static void slot_on_closed(uv_handle_t *handle) { free(handle->data); }

static void slot_owner_close(uv_handle_t *handle) {
  uv_close(handle, slot_on_closed);
}

static void manager_owner_close(uv_handle_t *handle) { uv_close(handle, NULL); }

static int count_workers(lc_runtime *rt) {
  int n = rt->opts.workers;

  if (n == LC_WORKERS_MAX || n <= 0)
    n = (int)uv_available_parallelism();
  return n > 0 ? n : 1;
}

int lc__manager_run(lc_runtime *rt) {
  static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
  lc__manager m;
  int i, code;

  memset(&m, 0, sizeof(m));
  m.owner.close = manager_owner_close;
  m.rt = rt;
  rt->manager = &m;
  if (lc__supervisor_init(rt) != 0 || lc__dispatch_init(rt) != 0)
    return 1;
  m.nslots = count_workers(rt);
  m.slots = calloc((size_t)m.nslots, sizeof(*m.slots));
  if (m.slots == NULL)
    return 1;
  for (i = 0; i < (int)LC__ARRAY_SIZE(sigs); i++) {
    uv_signal_init(&rt->loop, &m.signals[i]);
    m.signals[i].data = &m;
    uv_signal_start(&m.signals[i], on_signal, sigs[i]);
    uv_unref((uv_handle_t *)&m.signals[i]);
  }
  uv_timer_init(&rt->loop, &m.kill_timer);
  m.kill_timer.data = &m;
  uv_unref((uv_handle_t *)&m.kill_timer);

  lc__log(LC__LOG_INFO, "No. of worker processes: %d", m.nslots);
  for (i = 0; i < m.nslots; i++) {
    lc__slot *slot = calloc(1, sizeof(*slot));
    if (slot == NULL)
      return 1;
    slot->owner.close = slot_owner_close;
    slot->m = &m;
    slot->instance = i;
    uv_timer_init(&rt->loop, &slot->restart_timer);
    slot->restart_timer.data = slot;
    m.slots[i] = slot;
  }
  for (i = 0; i < m.nslots; i++)
    manager_start_worker(m.slots[i]);

  uv_run(&rt->loop, UV_RUN_DEFAULT);
  code = m.exit_code;
  lc__loop_shutdown(rt);
  free(m.slots);
  lc__dispatch_close(rt);
  lc__supervisor_close(rt);
  rt->manager = NULL;
  return code;
}
