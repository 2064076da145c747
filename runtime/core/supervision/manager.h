/*
 * manager.h - managed mode's master: what manager.c (policy) and
 * control_server.c (the control socket) share.
 */
#ifndef LC_MANAGER_H
#define LC_MANAGER_H

#include "dispatch.h"
#include "supervisor.h"

typedef struct lc__slot lc__slot;
typedef struct lc__control_client lc__control_client;

/* A worker's sampled health, for status. */
typedef struct lc__sample {
  uint64_t cpu_ticks; /* utime + stime at the last sample */
  uint64_t at_ms;
  double cpu_percent;
  size_t rss;
} lc__sample;

struct lc__slot {
  lc__owner owner;
  uv_timer_t restart_timer;
  lc__manager *m;
  int instance;
  lc__worker *w;        /* serving */
  lc__worker *incoming; /* its replacement, until ready */
  uint64_t incoming_since;
  int restarts;
  unsigned backoff_ms;
  int fatal;   /* exited with LC__EXIT_FATAL: left empty */
  int quick_failures; /* in a row, each within --min-uptime of its start */
  int errored; /* --max-restarts quick failures: left empty */
  uint64_t crash_at[5]; /* when its workers last died (a ring) */
  int crash_next;
  int removed; /* scaled away */
  lc__sample sample;
  lc__sample incoming_sample;
};

/* A worker on its way out (replaced, scaled away, or stopping). */
typedef struct lc__retiree {
  lc__worker *w;
  uint64_t kill_at_ms;
  struct lc__retiree *next;
} lc__retiree;

struct lc__manager {
  lc__owner owner;
  uv_signal_t signals[7];
  uv_timer_t tick;
  lc__core *core;
  lc__slot **slots;
  int nslots;
  lc__retiree *retirees;
  int stopping;
  int ready_announced; /* READY=1 went to the service manager */
  uint64_t reloads;    /* rolling reloads started */
  uint64_t stop_kill_at_ms;
  int exit_code;
  uint64_t ticks;
  unsigned ping_ticks; /* heartbeats this many ticks apart */
  /* A rolling reload in progress: the slot being replaced. */
  struct {
    int active;
    int index;
    int replaced;
    lc__control_client *waiter; /* `luacluster reload`, told the outcome */
  } reload;
  /* The control socket. */
  uv_pipe_t control;
  int control_open;
  char control_path[108];
};

/* manager.c */
/* Runs managed mode (-w N) until it stops; returns the exit code. The
 * caller has checked that the script loads. */
int lc__manager_run(lc__core *core);
void lc__manager_reload(lc__manager *m, lc__control_client *waiter);
void lc__manager_stop(lc__manager *m, const char *why);
int lc__manager_scale(lc__manager *m, int n);
/* Reads every worker's RSS and CPU now (status wants fresh figures). */
void lc__manager_sample(lc__manager *m, uint64_t now);

/* upgrade.c: a binary upgrade (`luacluster upgrade`, SIGURG) */
/* Old master: starts the new binary; the outcome goes to waiter. */
void lc__upgrade_start(lc__manager *m, lc__control_client *waiter);
/* The client went away: tell it nothing. */
void lc__upgrade_forget(lc__manager *m, lc__control_client *client);
/* At start: is this master the new one of an upgrade? 1 if so (its control
 * socket then comes from the old master), 0 if not. */
int lc__upgrade_child_init(lc__manager *m);
/* Every worker is ready (the first time). */
void lc__upgrade_on_ready(lc__manager *m);

/* metrics.c: the --metrics endpoint */
/* Serves it, if asked for: 0, or an error (logged). */
int lc__metrics_start(lc__manager *m);
/* Its listening socket and the name to pass it under in an upgrade
 * (lc__activation_name), or -1. */
int lc__metrics_fd(lc__core *core, char *name, size_t size);

/* control_server.c */
int lc__control_listen(lc__manager *m);
/* Accepts on m->control, already opened on an inherited socket. */
int lc__control_listen_on(lc__manager *m);
void lc__control_close(lc__manager *m);
/* Answers a client ("OK\n..." or "ERR\n...") and closes it. */
void lc__control_reply(lc__control_client *client, int ok, const char *text);
/* The `status` table, or its JSON, appended to out. */
void lc__control_status(lc__manager *m, int json, lc__buf *out);

#endif
