/*
 * supervisor.c - the master's worker table: spawn, channel, exit.
 *
 * A worker is a fork+exec of /proc/self/exe (so an embedding program's own
 * binary) with one end of a socketpair on descriptor 3, the shared dicts'
 * memfds on 4.. (shared_dicts.h) and its id in the environment. The
 * supervisor turns what arrives on the channel and the process's exit into
 * lc__worker_events for the worker's owner: the Lua cluster module in
 * script mode, the manager in managed mode. Policy (when to restart,
 * reload, stop) belongs to the owners, not here.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dispatch.h"
#include "sd_notify.h"
#include "shared_dicts.h"
#include "message.h"
#include "supervisor.h"
#include "tls.h"

extern char **environ;

/* Room for one of a worker's own variables (LUACLUSTER_EXEC holds a path). */
#define ENV_ROW (PATH_MAX + 64)

static const char *state_names[] = {"starting",      "online",
                                    "listening",     "disconnecting",
                                    "disconnected",  "dead"};

const char *lc__worker_state_name(int state) {
  if (state < 0 || state >= (int)LC__ARRAY_SIZE(state_names))
    return "unknown";
  return state_names[state];
}

static void supervisor_free(void *arg) {
  lc__core *core = arg;

  free(core->sup);
  core->sup = NULL;
}

int lc__supervisor_init(lc__core *core) {
  core->sup = calloc(1, sizeof(*core->sup));
  if (core->sup == NULL)
    return UV_ENOMEM;
  core->sup->next_id = 1;
  if (lc__core_on_close(core, supervisor_free, core) != 0) {
    supervisor_free(core);
    return UV_ENOMEM;
  }
  return lc__bus_init(core);
}

/* Frees the struct once no owner, process handle or channel holds it. */
static void worker_maybe_free(lc__worker *w) {
  lc__worker **pp;

  if (w->owner_refs > 0 || w->process_open ||
      (w->channel.state != 0 && w->channel.state != LC__CHANNEL_RELEASED))
    return;
  if (w->core->sup != NULL) {
    for (pp = &w->core->sup->workers; *pp != NULL; pp = &(*pp)->next) {
      if (*pp == w) {
        *pp = w->next;
        break;
      }
    }
  }
  lc__dispatch_channel_closed(w); /* nothing left after a clean end */
  free(w->inflight);
  free(w);
}

void lc__worker_release(lc__worker *w) {
  w->owner_refs--;
  worker_maybe_free(w);
}

/* Channel events ---------------------------------------------------------- */

static void worker_on_control(lc__worker *w, const lc__control *c) {
  switch (c->cmd) {
  case LC__CTL_ONLINE:
    if (w->state == LC__W_STARTING)
      w->state = LC__W_ONLINE;
    if (w->ev->on_online)
      w->ev->on_online(w);
    break;
  case LC__CTL_LISTEN:
    /* The ticket keys go ahead of the answer, so ahead of any connection
     * (tls_tickets.c). Not at spawn: a worker that exits before its loop
     * ever ran would close its channel with them unread, and the kernel
     * would answer our reads of its last messages with a reset. */
    if (!w->ticket_keys)
      lc__worker_send_ticket_keys(w);
    lc__dispatch_listen(w, c);
    break;
  case LC__CTL_LISTENING:
    if (w->state < LC__W_LISTENING)
      w->state = LC__W_LISTENING;
    if (w->ev->on_listening)
      w->ev->on_listening(w, c->addr, c->port);
    lc__notify_worker_listening(w->core);
    break;
  case LC__CTL_UNLISTEN:
    lc__dispatch_unlisten(w, c->server_id);
    break;
  case LC__CTL_DISCONNECT_REQ:
    lc__worker_disconnect(w);
    break;
  case LC__CTL_ACCEPTED:
    lc__dispatch_accepted(w, c->ticket, c->status);
    break;
  case LC__CTL_PONG:
    w->requests = c->value2;
    w->last_pong_ms = uv_now(&w->core->loop);
    if (w->ev->on_pong)
      w->ev->on_pong(w, c->value, c->value2);
    break;
  default:
    lc__channel_close(&w->channel, UV_EPROTO,
                      "unexpected control command from worker");
  }
}

/* Messages gathered so far go on before anything else happens. */
static void worker_messages_end(lc__worker *w) {
  if (w->ev->on_messages_end && !w->core->shutting_down)
    w->ev->on_messages_end(w);
}

static void worker_on_frame(lc__channel *ch, const lc__frame *f, int fd) {
  lc__worker *w = ch->data;
  lc__control c;

  if (f->type == LC__FRAME_MESSAGE || f->type == LC__FRAME_STRING) {
    int err = f->type == LC__FRAME_MESSAGE
                  ? lc__message_check(f->payload, f->payload_len)
                  : 0;
    if (err) {
      lc__channel_close(ch, UV_EPROTO, lc__message_strerror(err));
      return;
    }
    if (w->ev->on_message)
      w->ev->on_message(w, f->type, f->payload, f->payload_len);
    return;
  }
  if (f->type == LC__FRAME_BUS && fd == -1) {
    lc__bus_on_frame(w, f->payload, f->payload_len);
    return;
  }
  worker_messages_end(w);
  if (f->type == LC__FRAME_STATS && fd < 0 &&
      f->payload_len == sizeof(w->stats)) {
    memcpy(&w->stats, f->payload, sizeof(w->stats));
    return;
  }
  if (fd != -1) {
    if (fd >= 0)
      close(fd); /* workers never send descriptors */
    lc__channel_close(ch, UV_EPROTO, "descriptor sent by a worker");
    return;
  }
  if (lc__control_check(f->payload, f->payload_len, &c) != 0) {
    lc__channel_close(ch, UV_EPROTO, "malformed control record");
    return;
  }
  worker_on_control(w, &c);
}

static void worker_on_written(lc__channel *ch, uint64_t written) {
  lc__worker *w = ch->data;

  if (w->ev->on_written)
    w->ev->on_written(w, written);
}

static void worker_on_unsent(lc__channel *ch, const lc__control *c, int fd) {
  lc__dispatch_unsent(ch->data, c, fd);
}

static void worker_on_close(lc__channel *ch, int err, const char *reason) {
  lc__worker *w = ch->data;

  worker_messages_end(w);
  if (w->state < LC__W_DISCONNECTED)
    w->state = LC__W_DISCONNECTED;
  lc__dispatch_worker_gone(w);
  lc__dispatch_channel_closed(w);
  lc__bus_worker_gone(w);
  /* A worker that died with our writes pending shows as EPIPE: an end. */
  if (err != 0 && err != UV_EOF && err != UV_EPIPE && err != UV_ECONNRESET) {
    lc__log(LC__LOG_WARN, "worker %d (pid %d): channel closed: %s (%s)",
            w->id, w->pid, reason, uv_err_name(err));
    if (w->ev->on_error && !w->core->shutting_down)
      w->ev->on_error(w, err, reason);
  }
  if (w->ev->on_disconnect && !w->core->shutting_down)
    w->ev->on_disconnect(w);
}

static void worker_on_release(lc__channel *ch) { worker_maybe_free(ch->data); }

static void worker_on_delivered(lc__channel *ch) { worker_messages_end(ch->data); }

static const lc__channel_cb worker_channel_cb = {
    worker_on_frame,   worker_on_written, worker_on_unsent,
    worker_on_close,   worker_on_release, worker_on_delivered};

/* Process events ---------------------------------------------------------- */

static void on_process_closed(uv_handle_t *handle) {
  lc__worker *w = handle->data;

  w->process_open = 0;
  worker_maybe_free(w);
}

static void worker_owner_close(uv_handle_t *handle) {
  uv_close(handle, on_process_closed);
}

static void on_process_exit(uv_process_t *proc, int64_t status, int signum) {
  lc__worker *w = proc->data;
  lc__core *core = w->core;

  w->dead = 1;
  w->exit_code = status;
  w->exit_signal = signum;
  core->sup->alive--;
  /* What the worker wrote before dying is delivered before its exit. */
  if (w->channel.state == LC__CHANNEL_OPEN) {
    lc__channel_read_now(&w->channel);
    lc__channel_close(&w->channel, UV_EOF, "worker exited");
  }
  w->state = LC__W_DEAD;
  lc__dispatch_worker_gone(w);
  lc__dispatch_update_refs(core);
  w->owner_refs++; /* keep w across the owner's callback */
  if (w->ev->on_exit && !core->shutting_down)
    w->ev->on_exit(w, status, signum);
  uv_close((uv_handle_t *)proc, on_process_closed);
  lc__worker_release(w);
}

/* Spawning ------------------------------------------------------------------ */

static int is_worker_var(const char *kv) {
  static const char *names[] = {LC__ENV_WORKER_ID, LC__ENV_CHANNEL_FD,
                                LC__ENV_MASTER_PID, LC__ENV_EXEC,
                                LC__ENV_ARGC, LC__ENV_INSTANCE,
                                LC__ENV_MAX_MESSAGE, LC__ENV_SHARED,
                                LC__ENV_LOG};
  size_t i, n;

  for (i = 0; i < LC__ARRAY_SIZE(names); i++) {
    n = strlen(names[i]);
    if (strncmp(kv, names[i], n) == 0 && kv[n] == '=')
      return 1;
  }
  return 0;
}

/* The child's environment: the given (or inherited) one, minus any worker
 * variables it carried, plus this worker's (kept in `own` and `dicts`,
 * which must live until the spawn). */
static char **worker_env(lc__worker *w, const lc__worker_spec *spec,
                         char own[8][ENV_ROW], char *dicts) {
  char **src = spec->env ? spec->env : environ;
  const char *log = w->core->opts.log_path;
  char **env;
  size_t n = 0, i, k = 0;

  while (src[n] != NULL)
    n++;
  env = calloc(n + 10, sizeof(char *)); /* ours, dicts, log, NULL */
  if (env == NULL)
    return NULL;
  for (i = 0; i < n; i++)
    if (!is_worker_var(src[i]))
      env[k++] = src[i];
  snprintf(own[0], ENV_ROW, "%s=%d", LC__ENV_WORKER_ID, w->id);
  snprintf(own[1], ENV_ROW, "%s=%d", LC__ENV_CHANNEL_FD, LC__CHANNEL_CHILD_FD);
  snprintf(own[2], ENV_ROW, "%s=%d", LC__ENV_MASTER_PID, (int)getpid());
  snprintf(own[3], ENV_ROW, "%s=%d", LC__ENV_ARGC, spec->nargs);
  snprintf(own[4], ENV_ROW, "%s=%zu", LC__ENV_MAX_MESSAGE,
           w->core->opts.max_message_size);
  snprintf(own[5], ENV_ROW, "%s=%s", LC__ENV_EXEC, spec->exec);
  snprintf(own[6], ENV_ROW, "%s=%d", LC__ENV_INSTANCE, spec->instance);
  for (i = 0; i < 7; i++)
    env[k++] = own[i];
  if (spec->instance < 0)
    k--; /* only managed workers have an instance number */
  if (dicts[0] != '\0')
    env[k++] = dicts;
  /* A silent worker's output goes nowhere, not to the log file. */
  if (log != NULL && !spec->silent) {
    snprintf(own[7], ENV_ROW, "%s=%s", LC__ENV_LOG, log);
    env[k++] = own[7];
  }
  env[k] = NULL;
  return env;
}

/* argv shows in ps as "luacluster app.lua args..."; the worker takes its
 * script from LUACLUSTER_EXEC and its args from the argv tail. */
static char **worker_args(lc__core *core, const lc__worker_spec *spec) {
  char **args = calloc((size_t)spec->nargs + 3, sizeof(char *));
  int i;

  if (args == NULL)
    return NULL;
  args[0] = (char *)core->exe_path;
  args[1] = (char *)spec->exec;
  for (i = 0; i < spec->nargs; i++)
    args[i + 2] = spec->args[i];
  return args;
}

/* Starts the process with the channel's other end as descriptor 3 and the
 * shared dicts after it. */
static int worker_start_process(lc__worker *w, const lc__worker_spec *spec,
                                int child_fd) {
  uv_process_options_t opts;
  uv_stdio_container_t stdio[4 + LC__DICTS_MAX];
  int dict_fds[LC__DICTS_MAX];
  char own[8][ENV_ROW], dicts[LC__DICTS_ENV_MAX];
  int ndicts = lc__dicts_pass(w->core, LC__CHANNEL_CHILD_FD + 1, dict_fds,
                              dicts);
  char **env = worker_env(w, spec, own, dicts);
  char **args = worker_args(w->core, spec);
  int err = UV_ENOMEM, i;

  if (env != NULL && args != NULL) {
    memset(&opts, 0, sizeof(opts));
    opts.file = "/proc/self/exe";
    opts.args = args;
    opts.env = env;
    opts.exit_cb = on_process_exit;
    opts.stdio = stdio;
    opts.stdio_count = 4 + ndicts;
    stdio[0].flags = UV_INHERIT_FD;
    stdio[0].data.fd = 0;
    stdio[1].flags = spec->silent ? UV_IGNORE : UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = spec->silent ? UV_IGNORE : UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = child_fd;
    for (i = 0; i < ndicts; i++) {
      stdio[4 + i].flags = UV_INHERIT_FD;
      stdio[4 + i].data.fd = dict_fds[i];
    }
    w->process.data = w;
    err = uv_spawn(&w->core->loop, &w->process, &opts);
    /* uv_spawn leaves a handle to close even when it fails. */
    w->process_open = 1;
  }
  free(env);
  free(args);
  return err;
}

int lc__worker_spawn(lc__core *core, const lc__worker_spec *spec,
                     const lc__worker_events *ev, void *data,
                     lc__worker **out) {
  lc__worker *w = calloc(1, sizeof(*w));
  int sv[2], err;

  if (w == NULL)
    return UV_ENOMEM;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    err = uv_translate_sys_error(errno);
    free(w);
    return err;
  }
  w->owner.close = worker_owner_close;
  w->core = core;
  w->id = core->sup->next_id++;
  w->instance = spec->instance;
  w->ev = ev;
  w->data = data;
  err = worker_start_process(w, spec, sv[1]);
  close(sv[1]);
  if (err) {
    close(sv[0]);
    core->sup->next_id--; /* the id was never seen */
    if (w->process_open)
      uv_close((uv_handle_t *)&w->process, on_process_closed); /* frees w */
    else
      free(w);
    return err;
  }
  w->pid = w->process.pid;
  w->started_ms = uv_now(&core->loop);
  w->last_pong_ms = w->started_ms;
  core->sup->alive++;
  err = lc__channel_open(&core->loop, &w->channel, sv[0],
                         core->opts.max_message_size, &worker_channel_cb, w);
  if (err == 0)
    lc__channel_set_spin(&w->channel, core->opts.ipc_spin_us);
  if (err) {
    /* A worker without a channel is of no use: it goes, and its exit is
     * reported as any other. */
    lc__log(LC__LOG_ERROR, "worker %d (pid %d): cannot open its channel: %s; "
            "killing it", w->id, w->pid, uv_strerror(err));
    close(sv[0]);
    uv_process_kill(&w->process, SIGKILL);
  }
  w->owner_refs = 1;
  w->next = core->sup->workers;
  core->sup->workers = w;
  lc__dispatch_update_refs(core);
  *out = w;
  return 0;
}

int lc__worker_send(lc__worker *w, int type, const char *data, size_t len,
                    lc__channel_release_cb release, void *arg) {
  return lc__channel_send_message(&w->channel, type, data, len, release, arg);
}

int lc__worker_connected(const lc__worker *w) {
  return w->channel.state == LC__CHANNEL_OPEN &&
         w->state < LC__W_DISCONNECTING;
}

void lc__worker_disconnect(lc__worker *w) {
  lc__control c;

  w->exited_after_disconnect = 1;
  if (w->channel.state != LC__CHANNEL_OPEN || w->state >= LC__W_DISCONNECTING)
    return;
  w->state = LC__W_DISCONNECTING;
  /* No new connections from here; those already sent are the worker's. */
  lc__dispatch_worker_gone(w);
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_DISCONNECT;
  lc__channel_send_control(&w->channel, &c, -1);
}

int lc__worker_kill(lc__worker *w, int signum) {
  if (w->dead)
    return UV_ESRCH;
  lc__dispatch_worker_gone(w);
  return uv_process_kill(&w->process, signum);
}

void lc__worker_send_ticket_keys(lc__worker *w) {
  char keys[LC__TLS_KEYS_PAYLOAD];

  w->ticket_keys = 1;
  if (w->channel.state != LC__CHANNEL_OPEN)
    return;
  if (lc__tls_tickets_payload(w->core, keys) == 0)
    lc__channel_send(&w->channel, LC__FRAME_TLS_KEYS, keys, sizeof(keys), -1);
  else
    lc__log(LC__LOG_WARN, "worker %d: no TLS ticket keys to give it: its "
            "TLS sessions resume on itself only", w->id);
  explicit_bzero(keys, sizeof(keys));
}

void lc__workers_send_ticket_keys(lc__core *core) {
  lc__worker *w;

  for (w = core->sup ? core->sup->workers : NULL; w != NULL; w = w->next)
    if (w->ticket_keys)
      lc__worker_send_ticket_keys(w);
}

void lc__workers_signal(lc__core *core, int signum) {
  lc__worker *w;

  for (w = core->sup ? core->sup->workers : NULL; w != NULL; w = w->next)
    if (!w->dead)
      uv_process_kill(&w->process, signum);
}
