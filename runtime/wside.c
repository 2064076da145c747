/*
 * wside.c - a worker's side of its channel to the master.
 *
 * The worker finds the channel on the descriptor LUACLUSTER_CHANNEL_FD names.
 * It answers heartbeats from C (so a busy Lua loop misses them), hands user
 * messages to Lua, shared-port replies and descriptors to the servers, and
 * runs the disconnect handshake: the master stops routing connections to the
 * worker before the worker closes anything, so none is lost in between.
 *
 * A worker never outlives its master: the kernel sends it SIGKILL when the
 * master dies (PR_SET_PDEATHSIG), and an unexpected end of the channel makes
 * it exit 0, as a Node worker does.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "internal.h"

struct lc__wside {
  lc__channel channel;
  int disconnect_asked; /* this worker asked the master to disconnect */
  int disconnecting;    /* the master said DISCONNECT: draining */
  int released;
};

static void wside_send_pong(lc_runtime *rt, uint64_t seq) {
  lc__control c;

  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_PONG;
  c.value = seq;
  c.value2 = lc__servers_requests(rt);
  lc__channel_send_control(&rt->wside->channel, &c, -1);
}

static void wside_on_drained(lc_runtime *rt) {
  if (rt->wside != NULL && rt->wside->channel.state == LC__CHANNEL_OPEN) {
    lc__channel_flush_sync(&rt->wside->channel, 1000);
    lc__channel_close(&rt->wside->channel, 0, "disconnected");
  }
}

static void wside_begin_disconnect(lc_runtime *rt) {
  if (rt->wside->disconnecting)
    return;
  rt->wside->disconnecting = 1;
  lc__servers_drain(rt, wside_on_drained);
}

static void wside_on_frame(lc__channel *ch, const lc__frame *f, int fd) {
  lc_runtime *rt = ch->data;
  lc__control c;

  if (f->type == LC__FRAME_MESSAGE) {
    lc__lua_worker_message(rt, f->payload, f->payload_len);
    return;
  }
  if (lc__control_check(f->payload, f->payload_len, &c) != 0) {
    if (fd >= 0)
      close(fd);
    lc__channel_close(ch, UV_EPROTO, "malformed control record");
    return;
  }
  switch (c.cmd) {
  case LC__CTL_PING:
    wside_send_pong(rt, c.value);
    break;
  case LC__CTL_DISCONNECT:
    wside_begin_disconnect(rt);
    break;
  case LC__CTL_LISTEN_REPLY:
  case LC__CTL_CONNECTION:
  case LC__CTL_LISTENER:
    if ((c.cmd == LC__CTL_LISTEN_REPLY) != (fd < 0)) {
      if (fd >= 0)
        close(fd);
      lc__channel_close(ch, UV_EPROTO, "descriptor and command disagree");
      return;
    }
    lc__servers_on_control(rt, &c, fd);
    break;
  default:
    if (fd >= 0)
      close(fd);
    lc__channel_close(ch, UV_EPROTO, "unexpected control command from master");
  }
}

static void wside_on_written(lc__channel *ch, uint64_t written) {
  lc__lua_worker_written(ch->data, written);
}

static void wside_on_close(lc__channel *ch, int err, const char *reason) {
  lc_runtime *rt = ch->data;
  int expected = rt->wside->disconnecting;

  if (rt->shutting_down)
    return;
  if (err != 0 && err != UV_EOF)
    lc__log(LC__LOG_ERROR, "channel to the master closed: %s (%s)", reason,
            uv_err_name(err));
  lc__lua_worker_disconnect(rt);
  if (!expected) {
    /* The master is gone or broke the protocol: nothing to serve for. */
    lc__exit(rt, 0);
  }
}

static void wside_on_release(lc__channel *ch) {
  lc_runtime *rt = ch->data;

  if (rt->wside != NULL)
    rt->wside->released = 1;
}

static const lc__channel_cb wside_channel_cb = {
    wside_on_frame, wside_on_written, NULL, wside_on_close, wside_on_release};

int lc__wside_init(lc_runtime *rt, int fd) {
  const char *master = getenv(LC__ENV_MASTER_PID);
  lc__control c;
  int err;

  /* Die with the master; and if it is already gone, do not start. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (master != NULL && atoi(master) != (int)getppid())
    return UV_ESRCH;

  rt->wside = calloc(1, sizeof(*rt->wside));
  if (rt->wside == NULL)
    return UV_ENOMEM;
  err = lc__channel_open(&rt->loop, &rt->wside->channel, fd,
                         rt->opts.max_message_size, &wside_channel_cb, rt);
  if (err) {
    free(rt->wside);
    rt->wside = NULL;
    return err;
  }
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_ONLINE;
  lc__channel_send_control(&rt->wside->channel, &c, -1);
  return 0;
}

void lc__wside_close(lc_runtime *rt) {
  /* Called after the loop's handles are closed and run. */
  free(rt->wside);
  rt->wside = NULL;
}

int lc__wside_send(lc_runtime *rt, const char *json, size_t len) {
  if (rt->wside == NULL)
    return UV_ENOTCONN;
  return lc__channel_send(&rt->wside->channel, LC__FRAME_MESSAGE, json, len,
                          -1);
}

int lc__wside_send_control(lc_runtime *rt, const lc__control *c) {
  if (rt->wside == NULL)
    return UV_ENOTCONN;
  return lc__channel_send_control(&rt->wside->channel, c, -1);
}

void lc__wside_kick(lc_runtime *rt) {
  if (rt->wside != NULL)
    lc__channel_kick(&rt->wside->channel);
}

void lc__wside_disconnect(lc_runtime *rt) {
  lc__control c;

  if (!lc__wside_connected(rt) || rt->wside->disconnect_asked)
    return;
  /* The master answers DISCONNECT once it routes nothing more here. */
  rt->wside->disconnect_asked = 1;
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_DISCONNECT_REQ;
  lc__channel_send_control(&rt->wside->channel, &c, -1);
}

int lc__wside_connected(lc_runtime *rt) {
  return rt->wside != NULL && rt->wside->channel.state == LC__CHANNEL_OPEN;
}

int lc__wside_disconnecting(lc_runtime *rt) {
  return rt->wside != NULL && rt->wside->disconnecting;
}

void lc__wside_flush(lc_runtime *rt, int timeout_ms) {
  if (lc__wside_connected(rt))
    lc__channel_flush_sync(&rt->wside->channel, timeout_ms);
}

uint64_t lc__wside_queued(lc_runtime *rt) {
  return rt->wside != NULL ? rt->wside->channel.queued : 0;
}

void lc__wside_fail(lc_runtime *rt, const char *reason) {
  if (lc__wside_connected(rt))
    lc__channel_close(&rt->wside->channel, UV_EPROTO, reason);
}
