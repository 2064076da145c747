/*
 * worker_link.c - a worker's side of its channel to the master.
 *
 * The worker finds the channel on the descriptor LUACLUSTER_CHANNEL_FD names.
 * It answers heartbeats from C (so a busy Lua loop misses them), hands user
 * messages to the bindings, shared-port replies and descriptors to
 * shared_listen.c, and runs the disconnect handshake: the master stops
 * routing connections to the worker before the worker closes anything, so
 * none is lost in between.
 *
 * A worker never outlives its master: the kernel sends it SIGKILL when the
 * master dies (PR_SET_PDEATHSIG), and the master closing the channel makes
 * it exit 0, as a Node worker does (a broken channel: exit 1).
 *
 * Once drained, a worker that was told to stop (SIGTERM or SIGINT, see
 * signals.c) or that runs in managed mode ends its loop whatever timers
 * remain: nothing keeps a stopped worker waiting for its kill timeout.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "message.h"
#include "shared_listen.h"
#include "tcp.h"
#include "tls.h"
#include "worker_link.h"

struct lc__worker_link {
  lc__core *core;
  lc__channel channel;
  int disconnect_asked; /* this worker asked the master to disconnect */
  int disconnecting;    /* the master said DISCONNECT: draining */
  int stop_signal;      /* told to stop by this signal: exit once drained */
  const lc__link_events *ev;
  void *ev_arg;
};

static void link_send_pong(lc__worker_link *link, uint64_t seq) {
  lc__control c;

  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_PONG;
  c.value = seq;
  c.value2 = lc__servers_requests(link->core);
  lc__channel_send_control(&link->channel, &c, -1);
  /* What the master's metrics show of this worker's requests. */
  lc__channel_send(&link->channel, LC__FRAME_STATS,
                   (const char *)&link->core->stats, sizeof(link->core->stats),
                   -1);
}

static void link_on_drained(lc__core *core) {
  lc__worker_link *link = core->link;

  if (link != NULL && link->channel.state == LC__CHANNEL_OPEN) {
    lc__channel_flush_sync(&link->channel, 1000);
    lc__channel_close(&link->channel, 0, "disconnected");
  }
}

static void link_begin_disconnect(lc__worker_link *link) {
  if (link->disconnecting)
    return;
  link->disconnecting = 1;
  lc__servers_drain(link->core, link_on_drained);
}

/* A control record (fd -1), or a HANDLE frame's record and its descriptor
 * (or LC__CHANNEL_FD_LOST: shared_listen.c refuses the connection). */
static void link_on_control(lc__channel *ch, const lc__control *c, int fd) {
  lc__worker_link *link = ch->data;

  switch (c->cmd) {
  case LC__CTL_PING:
    link_send_pong(link, c->value);
    break;
  case LC__CTL_DISCONNECT:
    link_begin_disconnect(link);
    break;
  case LC__CTL_LISTEN_REPLY:
  case LC__CTL_CONNECTION:
  case LC__CTL_LISTENER:
    if ((c->cmd == LC__CTL_LISTEN_REPLY) != (fd == -1)) {
      if (fd >= 0)
        close(fd);
      lc__channel_close(ch, UV_EPROTO, "descriptor and command disagree");
      return;
    }
    lc__shared_listen_on_control(link->core, c, fd);
    break;
  default:
    if (fd >= 0)
      close(fd);
    lc__channel_close(ch, UV_EPROTO, "unexpected control command from master");
  }
}

/* Messages gathered so far go on before anything else happens. */
static void link_messages_end(lc__worker_link *link) {
  if (link->ev != NULL && link->ev->on_messages_end != NULL &&
      !link->core->exiting)
    link->ev->on_messages_end(link->ev_arg);
}

/* A bus record from the master: only what a master sends a worker. */
static void link_on_bus(lc__worker_link *link, const lc__frame *f) {
  lc__bus_record rec;
  int err = lc__bus_parse(f->payload, f->payload_len, &rec);

  if (err == 0 && rec.op != LC__BUS_PUBLISH && rec.op != LC__BUS_REQUEST &&
      rec.op != LC__BUS_REPLY)
    err = LC__BUS_EOP;
  if (err != 0) {
    lc__channel_close(&link->channel, UV_EPROTO, lc__bus_strerror(err));
    return;
  }
  if (link->ev != NULL && link->ev->on_bus != NULL && !link->core->exiting)
    link->ev->on_bus(link->ev_arg, &rec);
}

static void link_on_frame(lc__channel *ch, const lc__frame *f, int fd) {
  lc__worker_link *link = ch->data;
  lc__control c;

  if (f->type == LC__FRAME_MESSAGE || f->type == LC__FRAME_STRING) {
    int err = f->type == LC__FRAME_MESSAGE
                  ? lc__message_check(f->payload, f->payload_len)
                  : 0;
    if (err) {
      lc__channel_close(ch, UV_EPROTO, lc__message_strerror(err));
      return;
    }
    if (link->ev != NULL && !link->core->exiting)
      link->ev->on_message(link->ev_arg, f->type, f->payload, f->payload_len);
    return;
  }
  if (f->type == LC__FRAME_BUS && fd == -1) {
    link_on_bus(link, f);
    return;
  }
  link_messages_end(link);
  if (f->type == LC__FRAME_TLS_KEYS) {
    if (fd >= 0)
      close(fd);
    if (fd != -1 ||
        lc__tls_tickets_receive(link->core, f->payload, f->payload_len) != 0)
      lc__channel_close(ch, UV_EPROTO, "malformed TLS ticket keys");
    return;
  }
  if (lc__control_check(f->payload, f->payload_len, &c) != 0) {
    if (fd >= 0)
      close(fd);
    lc__channel_close(ch, UV_EPROTO, "malformed control record");
    return;
  }
  link_on_control(ch, &c, fd);
}

static void link_on_written(lc__channel *ch, uint64_t written) {
  lc__worker_link *link = ch->data;

  if (link->ev != NULL && !link->core->exiting)
    link->ev->on_written(link->ev_arg, written);
}

static void link_on_close(lc__channel *ch, int err, const char *reason) {
  lc__worker_link *link = ch->data;
  lc__core *core = link->core;

  if (core->shutting_down)
    return;
  link_messages_end(link);
  if (err != 0 && err != UV_EOF)
    lc__log(LC__LOG_ERROR, "channel to the master closed: %s (%s)", reason,
            uv_err_name(err));
  if (link->ev != NULL && !core->exiting)
    link->ev->on_disconnect(link->ev_arg);
  if (!link->disconnecting) {
    /* The master is gone (0, as Node) or broke the protocol (1): nothing
     * to serve for. */
    lc__core_exit(core, err == 0 || err == UV_EOF ? 0 : 1);
  } else if (link->stop_signal || core->instance >= 0) {
    lc__core_finish(core);
  }
}

static void link_on_delivered(lc__channel *ch) { link_messages_end(ch->data); }

static const lc__channel_cb link_channel_cb = {
    link_on_frame, link_on_written, NULL, link_on_close, NULL,
    link_on_delivered};

static void link_free(void *arg) {
  lc__core *core = arg;

  free(core->link);
  core->link = NULL;
}

int lc__link_open(lc__core *core, int fd) {
  const char *master = getenv(LC__ENV_MASTER_PID);
  lc__worker_link *link;
  lc__control c;
  int err;

  /* Die with the master; and if it is already gone, do not start. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (master != NULL && atoi(master) != (int)getppid())
    return UV_ESRCH;
  link = calloc(1, sizeof(*link));
  if (link == NULL)
    return UV_ENOMEM;
  link->core = core;
  err = lc__core_on_close(core, link_free, core);
  if (err == 0)
    err = lc__channel_open(&core->loop, &link->channel, fd,
                           core->opts.max_message_size, &link_channel_cb, link);
  if (err) {
    free(link);
    return err;
  }
  lc__channel_set_spin(&link->channel, core->opts.ipc_spin_us);
  core->link = link;
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_ONLINE;
  lc__channel_send_control(&link->channel, &c, -1);
  return 0;
}

void lc__link_set_events(lc__core *core, const lc__link_events *ev,
                         void *arg) {
  if (core->link != NULL) {
    core->link->ev = ev;
    core->link->ev_arg = arg;
  }
}

int lc__link_send(lc__core *core, int type, const char *data, size_t len,
                  lc__channel_release_cb release, void *arg) {
  if (core->link == NULL)
    return UV_ENOTCONN;
  return lc__channel_send_message(&core->link->channel, type, data, len,
                                  release, arg);
}

int lc__link_send_bus(lc__core *core, const lc__bus_record *rec,
                      lc__channel_release_cb release, void *arg) {
  if (core->link == NULL)
    return UV_ENOTCONN;
  return lc__bus_send(&core->link->channel, rec, release, arg);
}

int lc__link_send_control(lc__core *core, const lc__control *c) {
  if (core->link == NULL)
    return UV_ENOTCONN;
  return lc__channel_send_control(&core->link->channel, c, -1);
}

void lc__link_kick(lc__core *core) {
  if (core->link != NULL)
    lc__channel_kick(&core->link->channel);
}

void lc__link_disconnect(lc__core *core) {
  lc__control c;

  if (!lc__link_connected(core) || core->link->disconnect_asked)
    return;
  /* The master answers DISCONNECT once it routes nothing more here. */
  core->link->disconnect_asked = 1;
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_DISCONNECT_REQ;
  lc__channel_send_control(&core->link->channel, &c, -1);
}

void lc__link_stop(lc__core *core, int signum) {
  lc__worker_link *link = core->link;

  if (link != NULL && link->stop_signal) {
    lc__log(LC__LOG_WARN, "second %s: exiting at once",
            lc__signal_name(signum));
    lc__core_exit(core, 128 + signum);
    return;
  }
  if (link == NULL || link->channel.state != LC__CHANNEL_OPEN) {
    lc__core_finish(core); /* nothing to drain through */
    return;
  }
  link->stop_signal = signum;
  lc__log(LC__LOG_INFO, "%s: finishing in-flight requests, then exiting",
          lc__signal_name(signum));
  if (!link->disconnecting)
    lc__link_disconnect(core);
}

int lc__link_connected(lc__core *core) {
  return core->link != NULL &&
         core->link->channel.state == LC__CHANNEL_OPEN;
}

int lc__link_disconnecting(lc__core *core) {
  return core->link != NULL && core->link->disconnecting;
}

void lc__link_flush(lc__core *core, int timeout_ms) {
  if (lc__link_connected(core))
    lc__channel_flush_sync(&core->link->channel, timeout_ms);
}

uint64_t lc__link_queued(lc__core *core) {
  return core->link != NULL ? core->link->channel.queued : 0;
}

uint64_t lc__link_backlog(lc__core *core) {
  return core->link != NULL ? lc__channel_backlog(&core->link->channel) : 0;
}

void lc__link_fail(lc__core *core, const char *reason) {
  if (lc__link_connected(core))
    lc__channel_close(&core->link->channel, UV_EPROTO, reason);
}
