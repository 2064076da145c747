/*
 * signals.c - signal names both ways, for log lines and for the bindings
 * (process.on("SIGUSR2"), worker:kill("SIGKILL")); and what a process does
 * on a signal its app does not take.
 *
 * Ctrl-C in a terminal and systemd's KillMode=control-group signal the
 * whole process group, workers included. So a worker does not die of
 * SIGTERM or SIGINT: it drains like a disconnect (its servers finish their
 * in-flight requests) and then exits; a second one exits at once. A worker
 * ignores SIGHUP (a terminal hanging up) and SIGUSR2 (a reload signal sent
 * to the group): the master decides. Every process reopens its log file on
 * SIGUSR1, and a master passes it on to its workers. An app listening for
 * a signal (process.on("SIGTERM")) replaces the default action, except
 * SIGUSR1's log reopening, which always runs. Managed mode's master has its
 * own actions (manager.c).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "supervisor.h"
#include "worker_link.h"

typedef struct lc__default_action {
  lc__owner owner; /* first: the handle's data points here */
  uv_signal_t handle;
  lc__core *core;
  int on; /* no listener of the app's took it over */
} lc__default_action;

struct lc__signals {
  lc__default_action sig[5];
  int n;
};

static const struct {
  const char *name;
  int num;
} signal_names[] = {
    {"SIGHUP", SIGHUP},     {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT},
    {"SIGILL", SIGILL},     {"SIGTRAP", SIGTRAP},   {"SIGABRT", SIGABRT},
    {"SIGBUS", SIGBUS},     {"SIGFPE", SIGFPE},     {"SIGKILL", SIGKILL},
    {"SIGUSR1", SIGUSR1},   {"SIGSEGV", SIGSEGV},   {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE},   {"SIGALRM", SIGALRM},   {"SIGTERM", SIGTERM},
    {"SIGCHLD", SIGCHLD},   {"SIGCONT", SIGCONT},   {"SIGSTOP", SIGSTOP},
    {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},   {"SIGTTOU", SIGTTOU},
    {"SIGURG", SIGURG},     {"SIGXCPU", SIGXCPU},   {"SIGXFSZ", SIGXFSZ},
    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH},
    {"SIGIO", SIGIO},       {"SIGSYS", SIGSYS},
};

int lc__signal_number(const char *name) {
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(signal_names); i++)
    if (strcmp(signal_names[i].name, name) == 0)
      return signal_names[i].num;
  return 0;
}

const char *lc__signal_name(int signum) {
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(signal_names); i++)
    if (signal_names[i].num == signum)
      return signal_names[i].name;
  return "SIGUNKNOWN";
}

/* Default actions ------------------------------------------------------------ */

static void on_default_signal(uv_signal_t *handle, int signum) {
  lc__default_action *d = handle->data;
  lc__core *core = d->core;

  if (signum == SIGUSR1) {
    lc__log_reopen();
    if (core->sup != NULL)
      lc__workers_signal(core, SIGUSR1);
    return;
  }
  if (!d->on)
    return; /* the app's listener has it */
  if (signum == SIGHUP || signum == SIGUSR2)
    lc__log(LC__LOG_INFO, "%s ignored (the master decides)",
            lc__signal_name(signum));
  else
    lc__link_stop(core, signum);
}

static void default_owner_close(uv_handle_t *handle) { uv_close(handle, NULL); }

static void signals_free(void *arg) {
  lc__core *core = arg;

  free(core->signals);
  core->signals = NULL;
}

static int signals_watch(lc__core *core, int signum) {
  lc__default_action *d = &core->signals->sig[core->signals->n];
  int err;

  d->owner.close = default_owner_close;
  d->core = core;
  d->on = 1;
  uv_signal_init(&core->loop, &d->handle);
  d->handle.data = d;
  err = uv_signal_start(&d->handle, on_default_signal, signum);
  if (err) {
    uv_close((uv_handle_t *)&d->handle, NULL);
    return err;
  }
  /* Watching a signal keeps no process alive. */
  uv_unref((uv_handle_t *)&d->handle);
  core->signals->n++;
  return 0;
}

int lc__signals_open(lc__core *core) {
  static const int worker_sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGUSR1};
  size_t i;
  int err;

  if (core->signals != NULL || core->role == LC__ROLE_MANAGER)
    return 0;
  core->signals = calloc(1, sizeof(*core->signals));
  if (core->signals == NULL)
    return UV_ENOMEM;
  err = lc__core_on_close(core, signals_free, core);
  if (err) {
    free(core->signals);
    core->signals = NULL;
    return err;
  }
  if (core->role != LC__ROLE_WORKER) /* a script's master: SIGUSR1 only */
    return signals_watch(core, SIGUSR1);
  for (i = 0; i < LC__ARRAY_SIZE(worker_sigs); i++)
    if ((err = signals_watch(core, worker_sigs[i])) != 0)
      return err;
  return 0;
}

void lc__signal_default(lc__core *core, int signum, int on) {
  int i;

  if (core->signals == NULL)
    return;
  for (i = 0; i < core->signals->n; i++)
    if (core->signals->sig[i].handle.signum == signum)
      core->signals->sig[i].on = on;
}
