/*
 * upgrade.c - a binary upgrade with no downtime (`luacluster upgrade`, or
 * SIGURG), nginx's idea for the managed master:
 *
 *   old master   execs the binary at its own path again (a package update
 *                replaced it), with the same command line, passing its
 *                listening sockets as LISTEN_FDS (fds 3..; sd_listen.c takes
 *                them as it takes systemd's), its control socket, one end
 *                of a socketpair (the upgrade link) and its shared dicts
 *                (shared_dicts.h: the new master adopts those it declares
 *                again with the same size, values and all).
 *   new master   starts its workers on those sockets (they accept beside the
 *                old ones: nothing is refused), and once every worker is
 *                ready writes "READY" on the link. It says nothing to the
 *                service manager and leaves the control socket alone until
 *                the old master writes "TAKEOVER".
 *   old master   on "READY": stops accepting control connections (the
 *                socket stays, the new master's copy takes them), names the
 *                new master to the service manager (MAINPID=), answers the
 *                upgrade command, writes "TAKEOVER", then drains its workers
 *                and exits as for a stop.
 *
 * A new master that exits, or is not ready within twice --listen-timeout,
 * fails the upgrade: it is stopped (SIGTERM, SIGKILL after --kill-timeout)
 * and the old master goes on serving as if nothing happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dispatch.h"
#include "manager.h"
#include "sd_notify.h"
#include "shared_dicts.h"

extern char **environ;

#define FDS_MAX 64
#define ENV_ROWS 8
#define ENV_ROW (PATH_MAX + 64)
#define NAMES_MAX (FDS_MAX * 97 + 1)

enum { UPGRADE_OLD = 1, UPGRADE_NEW };

struct lc__upgrade {
  lc__owner owner; /* first: every handle's data points here */
  lc__manager *m;
  int side;
  uv_process_t child; /* old side: the new master */
  int has_child;
  uv_pipe_t link;
  int has_link;
  uv_timer_t timer; /* old side: the deadline, then the SIGKILL */
  int has_timer;
  int open; /* handles not closed yet */
  int ready;      /* old: the new master said READY; new: READY sent */
  int failed;     /* old: given up on the new master, which is stopping */
  int taken_over; /* new side: TAKEOVER came (or the old master left) */
  int control_fd; /* new side: the control socket, until TAKEOVER */
  char control_path[108];
  lc__control_client *waiter; /* `luacluster upgrade`, told the outcome */
  char line[32];
  size_t len;
};

static void upgrade_free(lc__upgrade *u) {
  if (u->control_fd >= 0)
    close(u->control_fd);
  free(u);
}

static void upgrade_on_closed(uv_handle_t *handle) {
  lc__upgrade *u = handle->data;

  if (--u->open == 0)
    upgrade_free(u);
}

static void upgrade_owner_close(uv_handle_t *handle) {
  uv_close(handle, upgrade_on_closed);
}

static void close_if_open(uv_handle_t *handle, int *has) {
  if (*has && !uv_is_closing(handle))
    uv_close(handle, upgrade_on_closed);
  *has = 0;
}

/* The upgrade is over (either way): its handles go, the memory with them. */
static void upgrade_end(lc__upgrade *u) {
  lc__core *core = u->m->core;

  if (core->upgrade == u)
    core->upgrade = NULL;
  close_if_open((uv_handle_t *)&u->link, &u->has_link);
  close_if_open((uv_handle_t *)&u->timer, &u->has_timer);
  close_if_open((uv_handle_t *)&u->child, &u->has_child);
  if (u->open == 0)
    upgrade_free(u);
}

static void link_write(lc__upgrade *u, const char *line) {
  uv_buf_t buf = uv_buf_init((char *)line, (unsigned)strlen(line));

  if (u->has_link)
    uv_try_write((uv_stream_t *)&u->link, &buf, 1);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  lc__upgrade *u = handle->data;

  (void)suggested;
  if (u->len >= sizeof(u->line) - 1)
    u->len = 0; /* nothing this long is ours: start over */
  buf->base = u->line + u->len;
  buf->len = sizeof(u->line) - 1 - u->len;
}

/* Reads the link into u->line; calls fn for each whole line, or with NULL
 * at its end. */
static void link_read(lc__upgrade *u, ssize_t n,
                      void (*fn)(lc__upgrade *u, const char *line)) {
  char *nl;

  if (n < 0) {
    close_if_open((uv_handle_t *)&u->link, &u->has_link);
    fn(u, NULL);
    return;
  }
  u->len += (size_t)n;
  u->line[u->len] = '\0';
  while ((nl = strchr(u->line, '\n')) != NULL) {
    *nl = '\0';
    fn(u, u->line);
    if (u->m->core->upgrade != u)
      return;
    memmove(u->line, nl + 1, u->len - (size_t)(nl + 1 - u->line) + 1);
    u->len -= (size_t)(nl + 1 - u->line);
  }
}

/* The old master's side ------------------------------------------------------ */

static void upgrade_failed(lc__upgrade *u, const char *why) {
  char text[256];

  snprintf(text, sizeof(text), "upgrade failed: the new master %s; this one "
           "(pid %d) keeps serving", why, (int)getpid());
  lc__log(LC__LOG_ERROR, "%s", text);
  if (u->waiter != NULL)
    lc__control_reply(u->waiter, 0, text);
  u->waiter = NULL;
  lc__notify(u->m->core, "STATUS=%s", text);
}

static void on_child_exit(uv_process_t *proc, int64_t status, int signum) {
  lc__upgrade *u = proc->data;
  char why[96];

  if (u->m->core->upgrade != u || u->ready)
    return; /* it took over: its life is its own */
  if (!u->failed) {
    if (signum != 0)
      snprintf(why, sizeof(why), "was killed by %s before it was ready",
               lc__signal_name(signum));
    else
      snprintf(why, sizeof(why), "exited with code %d before it was ready",
               (int)status);
    upgrade_failed(u, why);
  }
  upgrade_end(u);
}

static void on_deadline(uv_timer_t *timer) {
  lc__upgrade *u = timer->data;
  lc__core *core = u->m->core;

  if (!u->has_child)
    return;
  if (!u->failed) {
    char why[96];
    snprintf(why, sizeof(why), "was not ready within %u ms",
             2 * core->opts.listen_timeout_ms);
    upgrade_failed(u, why);
    u->failed = 1; /* the next expiry is the SIGKILL */
    uv_process_kill(&u->child, SIGTERM);
    uv_timer_start(&u->timer, on_deadline, core->opts.kill_timeout_ms, 0);
    return;
  }
  uv_process_kill(&u->child, SIGKILL);
}

/* The new master is ready: it takes over, this one leaves. */
static void hand_over(lc__upgrade *u) {
  lc__manager *m = u->m;
  int pid = u->child.pid;
  char text[128];

  u->ready = 1;
  uv_timer_stop(&u->timer);
  if (m->control_open) {
    /* The socket stays bound: the new master's copy of it answers now. */
    m->control_open = 0;
    m->control_path[0] = '\0';
    /* libuv unlinks the path of a pipe it bound when the handle closes; the
     * path is the new master's now. (pipe_fname is strdup'ed: uv.h.) */
    free((char *)m->control.pipe_fname);
    m->control.pipe_fname = NULL;
    uv_close((uv_handle_t *)&m->control, NULL);
  }
  lc__notify(m->core, "MAINPID=%d\nREADY=1\nSTATUS=upgraded: new master "
             "pid %d", pid, pid);
  lc__notify_hold(m->core, 1); /* the new master speaks from here on */
  snprintf(text, sizeof(text), "upgraded: new master pid %d; the old one "
           "(pid %d) drains its workers", pid, (int)getpid());
  lc__log(LC__LOG_INFO, "%s", text);
  if (u->waiter != NULL)
    lc__control_reply(u->waiter, 1, text);
  u->waiter = NULL;
  link_write(u, "TAKEOVER\n");
  lc__manager_stop(m, "binary upgrade");
}

static void old_on_line(lc__upgrade *u, const char *line) {
  if (line != NULL && strcmp(line, "READY") == 0 && !u->ready && !u->failed)
    hand_over(u);
  /* An end of the link before READY: the exit (on_child_exit) says why. */
}

static void old_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  link_read(stream->data, n, old_on_line);
}

/* The new master's environment: ours, with what it must be given. */
static char **child_env(lc__core *core, int nfds, const char *names,
                        const char *control, char own[ENV_ROWS][ENV_ROW],
                        char *names_row, char *dicts_row) {
  static const char *drop[] = {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                               "NOTIFY_SOCKET", "WATCHDOG_USEC",
                               "WATCHDOG_PID", LC__ENV_UPGRADE_FROM,
                               LC__ENV_UPGRADE_FD, LC__ENV_CONTROL_FD,
                               LC__ENV_SHARED};
  size_t n = 0, i, j, k = 0, len;
  char **env;
  int rows = 0;

  while (environ[n] != NULL)
    n++;
  env = calloc(n + ENV_ROWS + 3, sizeof(char *));
  if (env == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    for (j = 0; j < LC__ARRAY_SIZE(drop); j++) {
      len = strlen(drop[j]);
      if (strncmp(environ[i], drop[j], len) == 0 && environ[i][len] == '=')
        break;
    }
    if (j == LC__ARRAY_SIZE(drop))
      env[k++] = environ[i];
  }
  snprintf(own[rows++], ENV_ROW, "LISTEN_FDS=%d", nfds);
  snprintf(names_row, NAMES_MAX + 32, "LISTEN_FDNAMES=%s", names);
  env[k++] = names_row;
  if (dicts_row[0] != '\0')
    env[k++] = dicts_row;
  snprintf(own[rows++], ENV_ROW, "%s=%d", LC__ENV_UPGRADE_FROM, (int)getpid());
  snprintf(own[rows++], ENV_ROW, "%s=%d", LC__ENV_UPGRADE_FD, 3 + nfds);
  if (control != NULL)
    snprintf(own[rows++], ENV_ROW, "%s=%d:%s", LC__ENV_CONTROL_FD, 4 + nfds,
             control);
  if (lc__notify_socket(core) != NULL)
    snprintf(own[rows++], ENV_ROW, "NOTIFY_SOCKET=%s", lc__notify_socket(core));
  if (lc__notify_watchdog_usec(core) > 0)
    snprintf(own[rows++], ENV_ROW, "WATCHDOG_USEC=%llu",
             (unsigned long long)lc__notify_watchdog_usec(core));
  for (i = 0; i < (size_t)rows; i++)
    env[k++] = own[i];
  env[k] = NULL;
  return env;
}

/* Our own command line, to run the new binary the same way. */
static char **own_args(char *buf, size_t size) {
  char **args;
  ssize_t n;
  size_t count = 0, i = 0;
  char *p;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return NULL;
  n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0 || (size_t)n >= size - 1)
    return NULL;
  buf[n] = '\0';
  for (p = buf; p < buf + n; p += strlen(p) + 1)
    count++;
  args = calloc(count + 1, sizeof(char *));
  if (args == NULL)
    return NULL;
  for (p = buf; p < buf + n; p += strlen(p) + 1)
    args[i++] = p;
  return args;
}

static int spawn_child(lc__upgrade *u, int link_fd) {
  lc__manager *m = u->m;
  lc__core *core = m->core;
  uv_process_options_t opts;
  uv_stdio_container_t stdio[FDS_MAX + 5 + LC__DICTS_MAX];
  char own[ENV_ROWS][ENV_ROW];
  static char cmdline[65536], names[NAMES_MAX], names_row[NAMES_MAX + 32];
  static char listener_names[FDS_MAX][96], dicts_row[LC__DICTS_ENV_MAX];
  const char *unused_names[FDS_MAX];
  int fds[FDS_MAX], dict_fds[LC__DICTS_MAX], nfds, nused, ndicts, i, err;
  int control = -1;
  char **env = NULL, **args;
  size_t off = 0;

  /* Each socket goes with the name of the listen() it serves, so the new
   * master's port-0 listens find theirs (sd_listen.c). */
  nused = lc__dispatch_fds(core, fds, listener_names, FDS_MAX - 1);
  fds[nused] = lc__metrics_fd(core, listener_names[nused], 96);
  if (fds[nused] >= 0)
    nused++;
  nfds = nused + lc__activation_unused(core, fds + nused, unused_names,
                                       FDS_MAX - nused);
  names[0] = '\0';
  for (i = 0; i < nfds; i++)
    off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
                            i ? ":" : "",
                            i < nused ? listener_names[i] : unused_names[i - nused]);
  if (m->control_open && uv_fileno((uv_handle_t *)&m->control, &control) != 0)
    control = -1;
  /* The dicts come after the link and the control socket's place. */
  ndicts = lc__dicts_pass(core, 5 + nfds, dict_fds, dicts_row);
  args = own_args(cmdline, sizeof(cmdline));
  if (args != NULL)
    env = child_env(core, nfds, names, control >= 0 ? m->control_path : NULL,
                    own, names_row, dicts_row);
  if (args == NULL || env == NULL) {
    free(args);
    free(env);
    return UV_ENOMEM;
  }
  for (i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  for (i = 0; i < nfds; i++) {
    stdio[3 + i].flags = UV_INHERIT_FD;
    stdio[3 + i].data.fd = fds[i];
  }
  stdio[3 + nfds].flags = UV_INHERIT_FD;
  stdio[3 + nfds].data.fd = link_fd;
  stdio[4 + nfds].flags = control >= 0 ? UV_INHERIT_FD : UV_IGNORE;
  stdio[4 + nfds].data.fd = control;
  for (i = 0; i < ndicts; i++) {
    stdio[5 + nfds + i].flags = UV_INHERIT_FD;
    stdio[5 + nfds + i].data.fd = dict_fds[i];
  }
  memset(&opts, 0, sizeof(opts));
  opts.file = core->exe_path;
  opts.args = args;
  opts.env = env;
  opts.exit_cb = on_child_exit;
  opts.stdio = stdio;
  opts.stdio_count = ndicts > 0 ? 5 + nfds + ndicts : 4 + nfds + (control >= 0);
  u->child.data = u;
  err = uv_spawn(&core->loop, &u->child, &opts);
  /* uv_spawn leaves a handle to close even when it fails. */
  u->has_child = 1;
  u->open++;
  free(args);
  free(env);
  if (err == 0)
    lc__log(LC__LOG_INFO, "binary upgrade: started %s as pid %d with %d "
            "listening socket(s) and %d shared dict(s)", core->exe_path,
            u->child.pid, nfds, ndicts);
  return err;
}

static lc__upgrade *upgrade_new(lc__manager *m, int side) {
  lc__upgrade *u = calloc(1, sizeof(*u));

  if (u == NULL)
    return NULL;
  u->owner.close = upgrade_owner_close;
  u->m = m;
  u->side = side;
  u->control_fd = -1;
  return u;
}

void lc__upgrade_start(lc__manager *m, lc__control_client *waiter) {
  lc__core *core = m->core;
  const char *busy = m->stopping       ? "stopping"
                     : m->reload.active ? "a reload is in progress"
                     : core->upgrade    ? "an upgrade is in progress"
                                        : NULL;
  lc__upgrade *u;
  int sv[2], err;
  char text[160];

  if (busy != NULL) {
    lc__log(LC__LOG_WARN, "upgrade refused: %s", busy);
    if (waiter != NULL)
      lc__control_reply(waiter, 0, busy);
    return;
  }
  u = upgrade_new(m, UPGRADE_OLD);
  if (u == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
    free(u);
    if (waiter != NULL)
      lc__control_reply(waiter, 0, "upgrade failed: out of resources");
    return;
  }
  core->upgrade = u;
  u->waiter = waiter;
  uv_pipe_init(&core->loop, &u->link, 0);
  u->link.data = u;
  u->has_link = 1;
  u->open++;
  uv_pipe_open(&u->link, sv[0]);
  uv_timer_init(&core->loop, &u->timer);
  u->timer.data = u;
  u->has_timer = 1;
  u->open++;
  err = spawn_child(u, sv[1]);
  close(sv[1]);
  if (err) {
    snprintf(text, sizeof(text), "could not be started (%s: %s)",
             core->exe_path, uv_strerror(err));
    upgrade_failed(u, text);
    upgrade_end(u);
    return;
  }
  uv_read_start((uv_stream_t *)&u->link, on_alloc, old_on_read);
  uv_timer_start(&u->timer, on_deadline, 2 * (uint64_t)core->opts.listen_timeout_ms,
                 0);
}

void lc__upgrade_forget(lc__manager *m, lc__control_client *client) {
  if (m->core->upgrade != NULL && m->core->upgrade->waiter == client)
    m->core->upgrade->waiter = NULL;
}

/* The new master's side ------------------------------------------------------ */

/* TAKEOVER (or the old master went away): the service is ours now. */
static void take_over(lc__upgrade *u) {
  lc__manager *m = u->m;
  lc__core *core = m->core;
  int err;

  if (u->taken_over)
    return;
  u->taken_over = 1;
  lc__notify_hold(core, 0);
  lc__log(LC__LOG_INFO, "binary upgrade: this master (pid %d) took over",
          (int)getpid());
  if (u->control_fd >= 0) {
    snprintf(m->control_path, sizeof(m->control_path), "%s", u->control_path);
    uv_pipe_init(&core->loop, &m->control, 0);
    m->control.data = m;
    err = uv_pipe_open(&m->control, u->control_fd);
    u->control_fd = -1;
    if (err == 0)
      err = lc__control_listen_on(m);
    if (err) {
      lc__log(LC__LOG_WARN, "the control socket %s: %s", m->control_path,
              uv_strerror(err));
      m->control_path[0] = '\0';
    }
  }
  upgrade_end(u);
}

static void new_on_line(lc__upgrade *u, const char *line) {
  if (line == NULL || strcmp(line, "TAKEOVER") == 0)
    take_over(u);
}

static void new_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  link_read(stream->data, n, new_on_line);
}

/* A descriptor named in the environment, made close-on-exec. */
static int env_fd(const char *value) {
  int fd = value != NULL ? atoi(value) : -1;

  if (fd < 3 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return -1;
  return fd;
}

int lc__upgrade_child_init(lc__manager *m) {
  lc__core *core = m->core;
  const char *from = getenv(LC__ENV_UPGRADE_FROM);
  const char *control = getenv(LC__ENV_CONTROL_FD);
  int link = env_fd(getenv(LC__ENV_UPGRADE_FD));
  lc__upgrade *u;

  if (from == NULL || atoi(from) != (int)getppid() || link < 0) {
    unsetenv(LC__ENV_UPGRADE_FROM);
    unsetenv(LC__ENV_UPGRADE_FD);
    unsetenv(LC__ENV_CONTROL_FD);
    return 0;
  }
  u = upgrade_new(m, UPGRADE_NEW);
  if (u == NULL)
    return UV_ENOMEM;
  if (control != NULL && strchr(control, ':') != NULL) {
    u->control_fd = env_fd(control);
    snprintf(u->control_path, sizeof(u->control_path), "%s",
             strchr(control, ':') + 1);
  }
  unsetenv(LC__ENV_UPGRADE_FROM);
  unsetenv(LC__ENV_UPGRADE_FD);
  unsetenv(LC__ENV_CONTROL_FD);
  core->upgrade = u;
  uv_pipe_init(&core->loop, &u->link, 0);
  u->link.data = u;
  u->has_link = 1;
  u->open++;
  uv_pipe_open(&u->link, link);
  uv_read_start((uv_stream_t *)&u->link, on_alloc, new_on_read);
  uv_unref((uv_handle_t *)&u->link);
  lc__notify_hold(core, 1);
  lc__log(LC__LOG_INFO, "binary upgrade: taking over from pid %s", from);
  return 1;
}

void lc__upgrade_on_ready(lc__manager *m) {
  lc__upgrade *u = m->core->upgrade;

  if (u == NULL || u->side != UPGRADE_NEW || u->ready)
    return;
  u->ready = 1;
  link_write(u, "READY\n");
}
