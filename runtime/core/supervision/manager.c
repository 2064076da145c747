/*
 * manager.c - managed mode (`luacluster -w N app.lua`): a master that runs
 * no Lua and keeps N workers serving (DESIGN section 6).
 *
 * Each worker sits in a slot 0..N-1 whose number a replacement inherits
 * (LUACLUSTER_INSTANCE). Signal handlers only record; the loop acts:
 *
 *   crash        restart at once; if it keeps crashing, wait 100 ms, x1.5
 *                each time up to 15 s; the wait resets once a worker has
 *                stayed up 30 s. Exit code 78 (the script cannot load) is
 *                not restarted; nor is an instance whose workers failed
 *                within --min-uptime of starting --max-restarts times in a
 *                row (PM2's rule): it is "errored". When every instance is
 *                left empty so, the master exits 1.
 *   SIGUSR2/HUP  rolling reload (also `luacluster reload`): slot by slot,
 *                start a new worker, wait until it is ready (listening, or
 *                process.send("ready") with --wait-ready), then disconnect
 *                the old one. A new worker that dies or is not ready within
 *                --listen-timeout ends the reload; the old workers serve on.
 *   SIGTERM/INT  graceful stop (also `luacluster stop`; SIGQUIT too):
 *                stop accepting, every worker finishes its in-flight
 *                requests; those still busy after --kill-timeout get
 *                SIGKILL; exit 0. A second SIGINT stops at once.
 *   SIGUSR1      reopen the log file (--log), and every worker its own.
 *   health       every second: a worker over --max-memory is replaced
 *                gracefully. Pings go a quarter of --heartbeat-timeout
 *                apart (at most a second), and a worker whose loop has not
 *                answered for that long is killed and restarted.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_redis.h"
#include "manager.h"
#include "sd_notify.h"
#include "shared_dicts.h"

#define TICK_MS 100
#define SAMPLE_EVERY 10 /* ticks: health checks once a second */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 15000
#define BACKOFF_RESET_MS 30000

static void slot_start(lc__slot *slot);
static void reload_next(lc__manager *m);

/* Workers serving and ready, and whether every live slot has one. */
static int count_ready(lc__manager *m, int *all) {
  int i, n = 0;

  *all = 1;
  for (i = 0; i < m->nslots; i++) {
    lc__slot *slot = m->slots[i];
    if (slot->removed || slot->fatal)
      continue;
    if (slot->w != NULL && slot->w->ready)
      n++;
    else
      *all = 0;
  }
  return n;
}

/* READY=1 the first time every worker is ready (the service is up), and
 * after each reload (ended either way). */
static void notify_ready(lc__manager *m, const char *what) {
  int all, n = count_ready(m, &all);

  if (m->stopping || m->reload.active || (!m->ready_announced && !all))
    return;
  m->ready_announced = 1;
  lc__notify(m->core, "READY=1\nSTATUS=%s%s%d worker(s) ready", what ? what : "",
             what ? "; " : "", n);
  lc__upgrade_on_ready(m);
}

static lc__manager *manager_of(lc__worker *w) { return w->core->manager; }

static void slot_on_closed(uv_handle_t *handle) { free(handle->data); }

static void slot_owner_close(uv_handle_t *handle) {
  uv_close(handle, slot_on_closed);
}

static lc__slot *slot_new(lc__manager *m, int instance) {
  lc__slot *slot = calloc(1, sizeof(*slot));

  if (slot == NULL)
    return NULL;
  slot->owner.close = slot_owner_close;
  slot->m = m;
  slot->instance = instance;
  uv_timer_init(&m->core->loop, &slot->restart_timer);
  slot->restart_timer.data = slot;
  return slot;
}

static int workers_alive(lc__manager *m) {
  lc__retiree *r;
  int i, n = 0;

  for (i = 0; i < m->nslots; i++)
    n += (m->slots[i]->w != NULL) + (m->slots[i]->incoming != NULL);
  for (r = m->retirees; r != NULL; r = r->next)
    n++;
  return n;
}

static void manager_finish_if_done(lc__manager *m) {
  if (m->stopping && workers_alive(m) == 0)
    uv_stop(&m->core->loop);
}

static void log_exit(lc__worker *w, int64_t code, int signum) {
  if (signum != 0)
    lc__log(LC__LOG_WARN, "[worker%d] pid %d killed by %s", w->id, w->pid,
            lc__signal_name(signum));
  else
    lc__log(code == 0 ? LC__LOG_INFO : LC__LOG_WARN,
            "[worker%d] pid %d exited with code %d", w->id, w->pid, (int)code);
}

/* Retiring: disconnect now, SIGKILL at the deadline. */
static void retire(lc__manager *m, lc__worker *w) {
  lc__retiree *r = calloc(1, sizeof(*r));

  w->data = NULL; /* no slot's any more */
  lc__worker_disconnect(w);
  if (r == NULL) {
    lc__worker_kill(w, SIGKILL);
    lc__worker_release(w);
    return;
  }
  r->w = w;
  r->kill_at_ms = uv_now(&m->core->loop) + m->core->opts.kill_timeout_ms;
  r->next = m->retirees;
  m->retirees = r;
}

static void retiree_gone(lc__manager *m, lc__worker *w) {
  lc__retiree **pp, *r;

  for (pp = &m->retirees; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->w == w) {
      r = *pp;
      *pp = r->next;
      free(r);
      break;
    }
  }
  lc__worker_release(w);
}

/* Restarts ------------------------------------------------------------------ */

static void on_restart_timer(uv_timer_t *timer) {
  lc__slot *slot = timer->data;

  if (!slot->m->stopping && !slot->removed && slot->w == NULL)
    slot_start(slot);
}

/* Crashes of this slot within the last BACKOFF_RESET_MS, this one counted. */
static int recent_crashes(lc__slot *slot, uint64_t now) {
  int i, n = 0;

  slot->crash_at[slot->crash_next] = now;
  slot->crash_next = (slot->crash_next + 1) % LC__ARRAY_SIZE(slot->crash_at);
  for (i = 0; i < (int)LC__ARRAY_SIZE(slot->crash_at); i++)
    n += slot->crash_at[i] != 0 && now - slot->crash_at[i] < BACKOFF_RESET_MS;
  return n;
}

/*
 * A worker that was serving and died (killed by someone, or a rare crash)
 * comes back at once; backing off is for workers that cannot get ready, and
 * for any slot that crashes five times within 30 s.
 */
static void schedule_restart(lc__slot *slot, uint64_t uptime_ms, int was_ready) {
  uint64_t now = uv_now(&slot->m->core->loop);

  if (uptime_ms >= BACKOFF_RESET_MS)
    slot->backoff_ms = 0;
  slot->restarts++;
  if (recent_crashes(slot, now) < (int)LC__ARRAY_SIZE(slot->crash_at) &&
      was_ready) {
    slot_start(slot);
    return;
  }
  if (slot->backoff_ms == 0) {
    /* The first crash in a while: restart at once. */
    slot->backoff_ms = BACKOFF_FIRST_MS;
    slot_start(slot);
    return;
  }
  lc__log(LC__LOG_WARN, "instance %d keeps crashing: restarting in %u ms",
          slot->instance, slot->backoff_ms);
  uv_timer_start(&slot->restart_timer, on_restart_timer, slot->backoff_ms, 0);
  slot->backoff_ms = slot->backoff_ms * 3 / 2;
  if (slot->backoff_ms > BACKOFF_MAX_MS)
    slot->backoff_ms = BACKOFF_MAX_MS;
}

/* Replacing (reload, memory) --------------------------------------------- */

static void replace_failed(lc__slot *slot, const char *why) {
  lc__manager *m = slot->m;
  lc__worker *w = slot->incoming;
  char text[256];

  slot->incoming = NULL;
  if (w != NULL) {
    w->data = NULL;
    if (!w->dead)
      lc__worker_kill(w, SIGKILL);
    lc__worker_release(w);
  }
  snprintf(text, sizeof(text), "instance %d: the new worker %s; the old one "
           "keeps serving", slot->instance, why);
  lc__log(LC__LOG_ERROR, "reload failed: %s", text);
  if (m->reload.active && m->reload.index == slot->instance) {
    m->reload.active = 0;
    if (m->reload.waiter != NULL)
      lc__control_reply(m->reload.waiter, 0, text);
    m->reload.waiter = NULL;
    notify_ready(m, "reload failed");
  }
}

/* The replacement is ready: it takes the slot, the old worker retires. */
static void replace_done(lc__slot *slot) {
  lc__manager *m = slot->m;
  lc__worker *old = slot->w;

  slot->w = slot->incoming;
  slot->incoming = NULL;
  slot->sample = slot->incoming_sample;
  if (old != NULL) {
    lc__log(LC__LOG_INFO, "[worker%d] replaces [worker%d] (instance %d)",
            slot->w->id, old->id, slot->instance);
    retire(m, old);
  }
  if (m->reload.active && m->reload.index == slot->instance) {
    m->reload.replaced++;
    m->reload.index++;
    reload_next(m);
  }
}

static const lc__worker_events manager_worker_events;

static lc__worker *spawn_for(lc__slot *slot) {
  lc__core *core = slot->m->core;
  lc__worker_spec spec;
  lc__worker *w = NULL;
  int err;

  memset(&spec, 0, sizeof(spec));
  spec.exec = core->script;
  spec.args = core->args;
  spec.nargs = core->nargs;
  spec.instance = slot->instance;
  err = lc__worker_spawn(core, &spec, &manager_worker_events, slot, &w);
  if (err) {
    lc__log(LC__LOG_ERROR, "cannot start a worker for instance %d: %s",
            slot->instance, uv_strerror(err));
    return NULL;
  }
  lc__log(LC__LOG_INFO, "[worker%d] started, pid: %d", w->id, w->pid);
  return w;
}

static void slot_start(lc__slot *slot) {
  slot->w = spawn_for(slot);
  memset(&slot->sample, 0, sizeof(slot->sample));
  if (slot->w == NULL)
    schedule_restart(slot, 0, 0);
}

/* Starts a replacement for the slot's worker; 0, or -1 when one is already
 * on its way. An empty slot just gets a worker. */
static int slot_replace(lc__slot *slot) {
  if (slot->incoming != NULL)
    return -1;
  if (slot->w == NULL) {
    uv_timer_stop(&slot->restart_timer);
    slot_start(slot);
    return 0;
  }
  slot->incoming = spawn_for(slot);
  slot->incoming_since = uv_now(&slot->m->core->loop);
  memset(&slot->incoming_sample, 0, sizeof(slot->incoming_sample));
  if (slot->incoming == NULL) {
    replace_failed(slot, "could not be started");
    return -1;
  }
  return 0;
}

/* Reload ------------------------------------------------------------------------- */

static void reload_next(lc__manager *m) {
  char text[128];

  while (m->reload.index < m->nslots) {
    lc__slot *slot = m->slots[m->reload.index];
    if (slot->removed) {
      m->reload.index++;
      continue;
    }
    if (slot->fatal || slot->errored) {
      /* The code may be fixed now: the instance gets another chance. */
      slot->fatal = slot->errored = 0;
      slot->quick_failures = 0;
      slot->backoff_ms = 0;
    }
    if (slot->w == NULL) {
      /* Empty (between crashes): a fresh start is its reload. */
      slot_replace(slot);
      m->reload.replaced++;
      m->reload.index++;
      continue;
    }
    if (slot_replace(slot) == 0)
      return; /* replace_done() comes back here */
    return;   /* replace_failed() ended the reload */
  }
  m->reload.active = 0;
  snprintf(text, sizeof(text), "reloaded %d worker(s)", m->reload.replaced);
  lc__log(LC__LOG_INFO, "%s", text);
  if (m->reload.waiter != NULL)
    lc__control_reply(m->reload.waiter, 1, text);
  m->reload.waiter = NULL;
  notify_ready(m, text);
}

void lc__manager_reload(lc__manager *m, lc__control_client *waiter) {
  if (m->stopping || m->reload.active) {
    const char *why = m->stopping ? "stopping" : "a reload is in progress";
    lc__log(LC__LOG_WARN, "reload refused: %s", why);
    if (waiter != NULL)
      lc__control_reply(waiter, 0, why);
    return;
  }
  lc__log(LC__LOG_INFO, "rolling reload of %d worker(s)", m->nslots);
  lc__notify(m->core, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
             (unsigned long long)(uv_hrtime() / 1000));
  m->reload.active = 1;
  m->reloads++;
  m->reload.index = 0;
  m->reload.replaced = 0;
  m->reload.waiter = waiter;
  reload_next(m);
}

/* Worker events ---------------------------------------------------------------- */

static void worker_ready(lc__worker *w) {
  lc__slot *slot = w->data;

  w->ready = 1;
  if (slot != NULL && slot->incoming == w)
    replace_done(slot);
  else if (!w->core->manager->ready_announced)
    notify_ready(w->core->manager, NULL);
}

static void managed_worker_on_listening(lc__worker *w, const char *addr,
                                        int port) {
  (void)addr;
  (void)port;
  if (!w->core->opts.wait_ready)
    worker_ready(w);
}

/* process.send("ready") arrives as a STRING frame. */
static void managed_worker_on_message(lc__worker *w, int type, const char *data,
                                      size_t len) {
  if (w->core->opts.wait_ready && type == LC__FRAME_STRING && len == 5 &&
      memcmp(data, "ready", 5) == 0)
    worker_ready(w);
}

/* Every instance is left empty for good (fatal or errored): nothing will
 * serve, so the master ends with an error. */
static void check_all_failed(lc__manager *m) {
  int i;

  for (i = 0; i < m->nslots; i++) {
    lc__slot *slot = m->slots[i];
    if (!slot->removed && !slot->fatal && !slot->errored)
      return;
    if (slot->w != NULL || slot->incoming != NULL)
      return;
  }
  lc__log(LC__LOG_ERROR, "no instance can run: exiting");
  m->exit_code = 1;
  uv_stop(&m->core->loop);
}

/* A worker of the slot ended: counts quick failures; 1 when the slot is
 * errored now (said once), 0 to restart it. */
static int slot_errored(lc__slot *slot, uint64_t uptime_ms) {
  lc__core *core = slot->m->core;

  if (uptime_ms >= core->opts.min_uptime_ms) {
    slot->quick_failures = 0;
    return 0;
  }
  slot->quick_failures++;
  if (core->opts.max_restarts == 0 ||
      slot->quick_failures <= (int)core->opts.max_restarts)
    return 0;
  slot->errored = 1;
  lc__log(LC__LOG_ERROR, "instance %d errored: its worker failed within %u ms "
          "of starting %d times in a row (--min-uptime, --max-restarts); "
          "not restarting it (a reload or scale tries again)", slot->instance,
          core->opts.min_uptime_ms, slot->quick_failures);
  return 1;
}

static void managed_worker_on_exit(lc__worker *w, int64_t code, int signum) {
  lc__manager *m = manager_of(w);
  lc__slot *slot = w->data;
  uint64_t uptime = uv_now(&m->core->loop) - w->started_ms;
  char why[96];

  log_exit(w, code, signum);
  if (slot == NULL) {
    retiree_gone(m, w);
  } else if (slot->incoming == w) {
    if (signum)
      snprintf(why, sizeof(why), "was killed by %s", lc__signal_name(signum));
    else
      snprintf(why, sizeof(why), "exited with code %d", (int)code);
    replace_failed(slot, why);
  } else if (slot->w == w) {
    slot->w = NULL;
    lc__worker_release(w);
    if (!m->stopping && !slot->removed) {
      if (signum == 0 && code == LC__EXIT_FATAL) {
        lc__log(LC__LOG_ERROR, "instance %d: the worker cannot start (exit "
                "code %d): not restarting it", slot->instance, LC__EXIT_FATAL);
        slot->fatal = 1;
        check_all_failed(m);
      } else if (slot_errored(slot, uptime)) {
        check_all_failed(m);
      } else {
        schedule_restart(slot, uptime, w->ready);
      }
    }
  } else {
    lc__worker_release(w);
  }
  manager_finish_if_done(m);
}

static void managed_worker_on_error(lc__worker *w, int err, const char *reason) {
  (void)err;
  lc__log(LC__LOG_WARN, "[worker%d] %s", w->id, reason);
}

static const lc__worker_events manager_worker_events = {
    NULL,
    managed_worker_on_listening,
    managed_worker_on_message,
    NULL,
    managed_worker_on_exit,
    managed_worker_on_error,
    NULL,
    NULL,
    NULL,
    NULL};

/* Health -------------------------------------------------------------------------- */

/* RSS and CPU ticks of pid from /proc. */
static int read_proc(int pid, size_t *rss, uint64_t *cpu_ticks) {
  char path[64], buf[1024], *p;
  unsigned long utime = 0, stime = 0, pages = 0;
  FILE *f;
  int i;

  snprintf(path, sizeof(path), "/proc/%d/statm", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  if (fscanf(f, "%*s %lu", &pages) != 1)
    pages = 0;
  fclose(f);
  *rss = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);

  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  p = fgets(buf, sizeof(buf), f);
  fclose(f);
  if (p == NULL || (p = strrchr(buf, ')')) == NULL)
    return -1;
  /* After "pid (comm)": fields 3..; utime and stime are 14 and 15. */
  for (i = 3; i < 14 && p != NULL; i++)
    p = strchr(p + 1, ' ');
  if (p == NULL || sscanf(p, " %lu %lu", &utime, &stime) != 2)
    return -1;
  *cpu_ticks = utime + stime;
  return 0;
}

/* Bytes of shared memory pid has resident (RssShmem): the shared dicts'
 * pages it touched, which are the master's, not the worker's. */
static size_t shmem_bytes(int pid) {
  char path[64], line[128];
  unsigned long kb = 0;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  if ((f = fopen(path, "r")) == NULL)
    return 0;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "RssShmem: %lu kB", &kb) == 1)
      break;
  fclose(f);
  return (size_t)kb * 1024;
}

static void sample(lc__worker *w, lc__sample *s, uint64_t now) {
  uint64_t ticks;
  size_t rss, shmem;

  if (w == NULL || w->dead || read_proc(w->pid, &rss, &ticks) != 0)
    return;
  /* A worker's memory is its own: --max-memory must not restart workers
   * because a shared dict filled up. */
  if (lc__dicts_count(w->core) > 0) {
    shmem = shmem_bytes(w->pid);
    rss -= shmem < rss ? shmem : rss;
  }
  if (s->at_ms != 0 && now > s->at_ms)
    s->cpu_percent = (double)(ticks - s->cpu_ticks) * 1000.0 /
                     (double)sysconf(_SC_CLK_TCK) / (double)(now - s->at_ms) *
                     100.0;
  s->cpu_ticks = ticks;
  s->at_ms = now;
  s->rss = rss;
}

void lc__manager_sample(lc__manager *m, uint64_t now) {
  int i;

  for (i = 0; i < m->nslots; i++) {
    /* Too soon after the last sample says nothing about CPU. */
    if (now - m->slots[i]->sample.at_ms >= 200)
      sample(m->slots[i]->w, &m->slots[i]->sample, now);
    if (now - m->slots[i]->incoming_sample.at_ms >= 200)
      sample(m->slots[i]->incoming, &m->slots[i]->incoming_sample, now);
  }
}

static void ping(lc__worker *w, uint64_t seq) {
  lc__control c;

  if (w == NULL || w->channel.state != LC__CHANNEL_OPEN)
    return;
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_PING;
  c.value = seq;
  lc__channel_send_control(&w->channel, &c, -1);
}

/* A worker whose loop has not answered a ping for --heartbeat-timeout is
 * stuck (a Lua busy loop, say): it is killed, and restarted as a crash. */
static void check_heartbeat(lc__manager *m, lc__slot *slot, uint64_t now) {
  lc__core *core = m->core;
  lc__worker *w = slot->w;

  if (m->ticks % m->ping_ticks == 0) {
    ping(w, m->ticks);
    ping(slot->incoming, m->ticks);
  }
  if (w == NULL || m->stopping || core->opts.heartbeat_timeout_ms == 0 ||
      now - w->last_pong_ms <= core->opts.heartbeat_timeout_ms)
    return;
  lc__log(LC__LOG_WARN, "[worker%d] pid %d: no heartbeat for %llu ms (its "
          "event loop is stuck): killing it", w->id, w->pid,
          (unsigned long long)(now - w->last_pong_ms));
  w->last_pong_ms = now; /* once */
  lc__worker_kill(w, SIGKILL);
}

static void check_health(lc__manager *m, lc__slot *slot, uint64_t now) {
  lc__core *core = m->core;
  lc__worker *w = slot->w;

  sample(w, &slot->sample, now);
  sample(slot->incoming, &slot->incoming_sample, now);
  if (w == NULL || m->stopping)
    return;
  if (core->opts.max_memory > 0 && slot->sample.rss > core->opts.max_memory &&
      slot->incoming == NULL) {
    lc__log(LC__LOG_WARN, "[worker%d] pid %d: RSS %zu MiB is over the "
            "--max-memory %zu MiB: replacing it", w->id, w->pid,
            slot->sample.rss >> 20, core->opts.max_memory >> 20);
    slot_replace(slot);
  }
}

static void on_tick(uv_timer_t *timer) {
  lc__manager *m = timer->data;
  uint64_t now = uv_now(&m->core->loop);
  lc__retiree *r;
  int i;

  m->ticks++;
  for (r = m->retirees; r != NULL; r = r->next) {
    if (r->kill_at_ms != 0 && now >= r->kill_at_ms && !r->w->dead) {
      lc__log(LC__LOG_WARN, "[worker%d] pid %d still busy after %u ms: "
              "killing it", r->w->id, r->w->pid, m->core->opts.kill_timeout_ms);
      r->kill_at_ms = 0;
      lc__worker_kill(r->w, SIGKILL);
    }
  }
  for (i = 0; i < m->nslots; i++) {
    lc__slot *slot = m->slots[i];
    if (slot->incoming != NULL && !m->stopping &&
        now - slot->incoming_since > m->core->opts.listen_timeout_ms) {
      char why[96];
      snprintf(why, sizeof(why), "was not ready within %u ms",
               m->core->opts.listen_timeout_ms);
      replace_failed(slot, why);
    }
    check_heartbeat(m, slot, now);
    if (m->ticks % SAMPLE_EVERY == 0)
      check_health(m, slot, now);
  }
}

/* Stop and scale ------------------------------------------------------------------- */

void lc__manager_stop(lc__manager *m, const char *why) {
  int i;

  if (m->stopping)
    return;
  m->stopping = 1;
  lc__log(LC__LOG_INFO, "%s: stopping %d worker(s)", why, workers_alive(m));
  lc__notify(m->core, "STOPPING=1\nSTATUS=stopping (%s)", why);
  /* Refuse new connections now; the workers finish what they have. */
  lc__dispatch_stop(m->core);
  lc__cluster_leave(m->core);
  if (m->reload.active) {
    m->reload.active = 0;
    if (m->reload.waiter != NULL)
      lc__control_reply(m->reload.waiter, 0, "stopped during the reload");
    m->reload.waiter = NULL;
  }
  for (i = 0; i < m->nslots; i++) {
    lc__slot *slot = m->slots[i];
    uv_timer_stop(&slot->restart_timer);
    if (slot->incoming != NULL) {
      retire(m, slot->incoming);
      slot->incoming = NULL;
    }
    if (slot->w != NULL) {
      retire(m, slot->w);
      slot->w = NULL;
    }
  }
  manager_finish_if_done(m);
}

int lc__manager_scale(lc__manager *m, int n) {
  lc__slot **slots;
  int i, live = 0;

  if (n < 1 || n > 4096 || m->stopping)
    return UV_EINVAL;
  for (i = 0; i < m->nslots; i++)
    live += !m->slots[i]->removed;
  if (n > m->nslots) {
    slots = realloc(m->slots, (size_t)n * sizeof(*slots));
    if (slots == NULL)
      return UV_ENOMEM;
    m->slots = slots;
    for (i = m->nslots; i < n; i++) {
      lc__slot *slot = slot_new(m, i);
      if (slot == NULL)
        return UV_ENOMEM;
      slot->removed = 1;
      m->slots[i] = slot;
      m->nslots = i + 1;
    }
  }
  lc__log(LC__LOG_INFO, "scaling from %d to %d worker(s)", live, n);
  for (i = 0; i < m->nslots; i++) {
    lc__slot *slot = m->slots[i];
    if (i < n && slot->removed) {
      slot->removed = 0;
      slot->fatal = slot->errored = 0;
      slot->quick_failures = 0;
      slot->backoff_ms = 0;
      slot_start(slot);
    } else if (i >= n && !slot->removed) {
      slot->removed = 1;
      uv_timer_stop(&slot->restart_timer);
      if (slot->incoming != NULL)
        retire(m, slot->incoming);
      if (slot->w != NULL)
        retire(m, slot->w);
      slot->incoming = slot->w = NULL;
    }
  }
  return 0;
}

static void on_signal(uv_signal_t *handle, int signum) {
  lc__manager *m = handle->data;
  lc__retiree *r;

  if (signum == SIGUSR2 || signum == SIGHUP) {
    lc__manager_reload(m, NULL);
    return;
  }
  if (signum == SIGURG) {
    lc__upgrade_start(m, NULL);
    return;
  }
  if (signum == SIGUSR1) {
    lc__log_reopen();
    lc__workers_signal(m->core, SIGUSR1);
    return;
  }
  if (signum == SIGINT && m->stopping) {
    lc__log(LC__LOG_WARN, "second SIGINT: stopping at once");
    for (r = m->retirees; r != NULL; r = r->next)
      lc__worker_kill(r->w, SIGKILL);
    return;
  }
  lc__manager_stop(m, lc__signal_name(signum));
}

/* Setup and teardown ------------------------------------------------------------- */

static void manager_owner_close(uv_handle_t *handle) { uv_close(handle, NULL); }

static int count_workers(lc__core *core) {
  int n = core->opts.workers;

  if (n == LC__WORKERS_MAX || n <= 0)
    n = (int)uv_available_parallelism();
  return n > 0 ? n : 1;
}

int lc__manager_run(lc__core *core) {
  static const int sigs[] = {SIGTERM, SIGINT, SIGHUP,  SIGQUIT,
                             SIGUSR2, SIGUSR1, SIGURG};
  lc__manager m;
  lc__retiree *r;
  int i, code;

  memset(&m, 0, sizeof(m));
  m.owner.close = manager_owner_close;
  m.core = core;
  core->manager = &m;
  if (lc__supervisor_init(core) != 0 || lc__dispatch_init(core) != 0)
    return 1;
  m.nslots = count_workers(core);
  m.slots = calloc((size_t)m.nslots, sizeof(*m.slots));
  if (m.slots == NULL)
    return 1;
  for (i = 0; i < (int)LC__ARRAY_SIZE(sigs); i++) {
    uv_signal_init(&core->loop, &m.signals[i]);
    m.signals[i].data = &m;
    uv_signal_start(&m.signals[i], on_signal, sigs[i]);
    uv_unref((uv_handle_t *)&m.signals[i]);
  }
  /* Pings a quarter of the heartbeat timeout apart, at most a second:
   * a healthy idle worker always answers in time. */
  m.ping_ticks = SAMPLE_EVERY;
  if (core->opts.heartbeat_timeout_ms > 0) {
    unsigned every = core->opts.heartbeat_timeout_ms / 4 / TICK_MS;
    if (every < 1) {
      lc__log(LC__LOG_WARN, "--heartbeat-timeout %u ms is less than 4 pings "
              "of %d ms: using %d ms", core->opts.heartbeat_timeout_ms,
              TICK_MS, 4 * TICK_MS);
      core->opts.heartbeat_timeout_ms = 4 * TICK_MS;
      every = 1;
    }
    if (every < m.ping_ticks)
      m.ping_ticks = every;
  }
  uv_timer_init(&core->loop, &m.tick);
  m.tick.data = &m;
  uv_timer_start(&m.tick, on_tick, TICK_MS, TICK_MS);
  uv_unref((uv_handle_t *)&m.tick);
  for (i = 0; i < m.nslots; i++)
    if ((m.slots[i] = slot_new(&m, i)) == NULL)
      return 1;

  /* A new master of a binary upgrade gets the control socket later. */
  if (lc__upgrade_child_init(&m) <= 0 && lc__control_listen(&m) == UV_EPERM) {
    m.exit_code = 1; /* an unsafe control directory: start nothing */
  } else if (lc__metrics_start(&m) != 0) {
    m.exit_code = 1;
  } else {
    lc__log(LC__LOG_INFO, "No. of worker processes: %d", m.nslots);
    for (i = 0; i < m.nslots; i++)
      slot_start(m.slots[i]);
    uv_run(&core->loop, UV_RUN_DEFAULT);
  }
  code = m.exit_code;
  lc__control_close(&m);
  /* Whatever still holds a worker lets go (all have exited by now); the
   * slots themselves are freed with their timers by the shutdown. */
  for (i = 0; i < m.nslots; i++) {
    if (m.slots[i]->w != NULL)
      lc__worker_release(m.slots[i]->w);
    if (m.slots[i]->incoming != NULL)
      lc__worker_release(m.slots[i]->incoming);
  }
  while ((r = m.retirees) != NULL) {
    m.retirees = r->next;
    lc__worker_release(r->w);
    free(r);
  }
  lc__core_close(core);
  free(m.slots);
  core->manager = NULL;
  if (m.stopping)
    lc__log(LC__LOG_INFO, "stopped");
  return code;
}
