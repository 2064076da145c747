/*
 * sd_notify.c - the service manager's notify protocol (sd_notify.h), with no
 * libsystemd: one datagram per message to $NOTIFY_SOCKET, and WATCHDOG=1
 * every half of $WATCHDOG_USEC.
 *
 * The socket is opened once, non-blocking: a manager that does not read
 * never stalls the master, a message it cannot take is dropped with one log
 * line. Who says what: the manager (READY=1 once every worker is ready,
 * RELOADING=1 ... READY=1 around a reload, STOPPING=1), the script-mode
 * master (READY=1 once the app ran and its workers listen), and a binary
 * upgrade (MAINPID= for the new master).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sd_notify.h"
#include "supervisor.h"

struct lc__notify_state {
  lc__owner owner; /* first: the watchdog timer's data points here */
  lc__core *core;
  int fd;
  struct sockaddr_un addr;
  socklen_t addr_len;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  uv_timer_t watchdog;
  int has_watchdog;
  uint64_t watchdog_usec;
  int held;
  int warned;
  int script_pending; /* script mode: READY=1 waits for the workers */
};

static void notify_free(void *arg) {
  lc__core *core = arg;
  lc__notify_state *n = core->notify;

  if (n == NULL)
    return;
  /* Runs after the loop closed every handle, the watchdog's included. */
  if (n->fd >= 0)
    close(n->fd);
  free(n);
  core->notify = NULL;
}

static void watchdog_owner_close(uv_handle_t *handle) {
  uv_close(handle, NULL);
}

static void on_watchdog(uv_timer_t *timer) {
  lc__notify_state *n = timer->data;

  lc__notify(n->core, "WATCHDOG=1");
}

/* "@name" is an abstract address (a NUL first byte); anything else a path. */
static int notify_address(lc__notify_state *n, const char *path) {
  size_t len = strlen(path);

  if (len == 0 || len >= sizeof(n->addr.sun_path) ||
      (path[0] != '/' && path[0] != '@'))
    return UV_EINVAL;
  memset(&n->addr, 0, sizeof(n->addr));
  n->addr.sun_family = AF_UNIX;
  memcpy(n->addr.sun_path, path, len);
  if (path[0] == '@')
    n->addr.sun_path[0] = '\0';
  n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                            (path[0] == '@' ? 0 : 1));
  snprintf(n->path, sizeof(n->path), "%s", path);
  return 0;
}

/* The watchdog period, if it is meant for this process. */
static uint64_t watchdog_period(void) {
  const char *usec = getenv("WATCHDOG_USEC");
  const char *pid = getenv("WATCHDOG_PID");
  char *end;
  unsigned long long v;

  if (usec == NULL || *usec == '\0')
    return 0;
  if (pid != NULL && *pid != '\0' && atoi(pid) != (int)getpid())
    return 0;
  v = strtoull(usec, &end, 10);
  return *end == '\0' ? (uint64_t)v : 0;
}

int lc__notify_init(lc__core *core) {
  const char *path = getenv("NOTIFY_SOCKET");
  uint64_t period = watchdog_period();
  lc__notify_state *n;
  int err;

  if (path == NULL || *path == '\0') {
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return 0;
  }
  n = calloc(1, sizeof(*n));
  if (n == NULL)
    return UV_ENOMEM;
  n->owner.close = watchdog_owner_close;
  n->core = core;
  n->fd = -1;
  err = notify_address(n, path);
  if (err) {
    lc__log(LC__LOG_WARN, "NOTIFY_SOCKET=%s is not a socket address: not "
            "notifying the service manager", path);
    free(n);
    return 0;
  }
  n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (n->fd < 0 || lc__core_on_close(core, notify_free, core) != 0) {
    err = n->fd < 0 ? uv_translate_sys_error(errno) : UV_ENOMEM;
    if (n->fd >= 0)
      close(n->fd);
    free(n);
    return err;
  }
  core->notify = n;
  /* Workers are not the service: they neither notify nor feed the dog. */
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  if (period > 0) {
    n->watchdog_usec = period;
    uv_timer_init(&core->loop, &n->watchdog);
    n->watchdog.data = n;
    n->has_watchdog = 1;
    uv_timer_start(&n->watchdog, on_watchdog, period / 2000 ? period / 2000 : 1,
                   period / 2000 ? period / 2000 : 1);
    uv_unref((uv_handle_t *)&n->watchdog);
  }
  return 0;
}

void lc__notify(lc__core *core, const char *fmt, ...) {
  lc__notify_state *n = core->notify;
  char msg[1024];
  va_list ap;
  int len;

  if (n == NULL || n->fd < 0 || n->held)
    return;
  va_start(ap, fmt);
  len = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (len < 0)
    return;
  if (len >= (int)sizeof(msg))
    len = (int)sizeof(msg) - 1;
  if (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL,
             (struct sockaddr *)&n->addr, n->addr_len) < 0 && !n->warned) {
    n->warned = 1;
    lc__log(LC__LOG_WARN, "cannot notify the service manager at %s: %s",
            n->path, strerror(errno));
  }
}

void lc__notify_hold(lc__core *core, int on) {
  if (core->notify != NULL)
    core->notify->held = on;
}

const char *lc__notify_socket(lc__core *core) {
  return core->notify != NULL ? core->notify->path : NULL;
}

uint64_t lc__notify_watchdog_usec(lc__core *core) {
  return core->notify != NULL ? core->notify->watchdog_usec : 0;
}

/* Script mode ------------------------------------------------------------- */

static void script_check_ready(lc__core *core) {
  lc__notify_state *n = core->notify;
  lc__worker *w;
  int count = 0;

  if (n == NULL || !n->script_pending)
    return;
  for (w = core->sup != NULL ? core->sup->workers : NULL; w; w = w->next) {
    if (!w->dead && w->state < LC__W_LISTENING)
      return;
    count += !w->dead;
  }
  n->script_pending = 0;
  lc__notify(core, "READY=1\nSTATUS=running, %d worker(s)", count);
}

void lc__notify_script_started(lc__core *core) {
  if (core->notify == NULL)
    return;
  core->notify->script_pending = 1;
  script_check_ready(core);
}

void lc__notify_worker_listening(lc__core *core) { script_check_ready(core); }
