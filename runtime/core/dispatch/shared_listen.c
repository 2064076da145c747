/*
 * shared_listen.c - a worker's half of shared listening (the master's half
 * is dispatch.c).
 *
 * In a worker, server:listen() does not bind: it asks the master with
 * LISTEN(server_id, addr, port) and the master answers LISTEN_REPLY with the
 * address it bound and its policy. Then either connections arrive one by one
 * (CONNECTION frames carrying a descriptor, rr and sticky; each is
 * acknowledged with ACCEPTED so the master can give it to another worker if
 * this one dies first), or one LISTENER frame brings a socket to accept on
 * (none, reuseport). LISTENING tells the master the server is ready;
 * UNLISTEN that it stopped. A process with no master binds by itself.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared_listen.h"
#include "sockets.h"
#include "worker_link.h"

static void send_record(lc__server *s, int cmd) {
  lc__control c;

  memset(&c, 0, sizeof(c));
  c.cmd = (uint32_t)cmd;
  c.server_id = s->id;
  c.port = s->port;
  snprintf(c.addr, sizeof(c.addr), "%s", s->addr);
  lc__link_send_control(s->core, &c);
}

static void on_unlisten(lc__server *s) {
  if (lc__link_connected(s->core))
    send_record(s, LC__CTL_UNLISTEN);
}

int lc__shared_listen(lc__server *s, const char *host, int port, int backlog,
                      uint32_t flags) {
  lc__control c;
  int err;

  if (!lc__link_connected(s->core))
    return lc__server_bind(s, host, port, backlog,
                           (flags & LC__LISTEN_IPV6ONLY) ? LC__SOCK_IPV6ONLY : 0);
  if (lc__link_disconnecting(s->core))
    return UV_ECANCELED;
  snprintf(s->host, sizeof(s->host), "%s", host ? host : "");
  s->port = port;
  s->backlog = backlog;
  s->flags = flags;
  s->on_unlisten = on_unlisten;
  s->state = LC__SERVER_BINDING;
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_LISTEN;
  c.server_id = s->id;
  c.port = port;
  c.backlog = (uint32_t)backlog;
  c.flags = flags;
  snprintf(c.addr, sizeof(c.addr), "%s", s->host);
  err = lc__link_send_control(s->core, &c);
  if (err)
    s->state = LC__SERVER_NEW;
  return err ? err : 1;
}

/* Out of descriptors: said once a second, not once a connection. */
static void log_out_of_fds(lc__core *core, const char *what) {
  if (lc__log_due(&core->fds_logged_ms, 1000))
    lc__log(LC__LOG_WARN, "out of file descriptors: %s", what);
}

/* A connection the master accepted: take it (or refuse it) and say so. */
static void take_connection(lc__core *core, lc__server *s,
                            const lc__control *c, int fd) {
  lc__control ack;

  memset(&ack, 0, sizeof(ack));
  ack.cmd = LC__CTL_ACCEPTED;
  ack.ticket = c->ticket;
  if (fd == LC__CHANNEL_FD_LOST) {
    /* The kernel could not give it to us: the master gives it to another
     * worker, or keeps it until one can take it. */
    log_out_of_fds(core, "a connection goes back to the master");
    ack.status = UV_EMFILE;
    lc__link_send_control(core, &ack);
    return;
  }
  /* Also while closing: the master sent it before it knew. A server that
   * is gone refuses it, and the master gives it to another. */
  if (s != NULL && s->state != LC__SERVER_CLOSED) {
    lc__server_adopt(s, fd);
  } else {
    close(fd);
    ack.status = UV_ECANCELED;
  }
  /* Sent before this connection is first read (the channel flushes before
   * the loop polls again): a worker that dies unacknowledged has read
   * nothing from it. */
  lc__link_send_control(core, &ack);
}

static void now_listening(lc__server *s) {
  s->state = LC__SERVER_LISTENING;
  send_record(s, LC__CTL_LISTENING);
  s->on_listening(s, 0);
}

static void listen_failed(lc__server *s, int status) {
  s->state = LC__SERVER_NEW;
  s->on_listening(s, status);
}

void lc__shared_listen_on_control(lc__core *core, const lc__control *c,
                                  int fd) {
  lc__server *s = lc__server_find(core, c->server_id);
  int err;

  if (c->cmd == LC__CTL_CONNECTION) {
    take_connection(core, s, c, fd);
    return;
  }
  if (s == NULL || s->state != LC__SERVER_BINDING) {
    if (fd >= 0)
      close(fd);
    return;
  }
  if (fd == LC__CHANNEL_FD_LOST) {
    /* The socket to accept on never arrived (out of descriptors). */
    log_out_of_fds(core, "the listening socket from the master could not "
                         "be received");
    listen_failed(s, UV_EMFILE);
    return;
  }
  if (c->cmd == LC__CTL_LISTEN_REPLY) {
    if (c->status < 0) {
      listen_failed(s, c->status);
      return;
    }
    s->port = c->port;
    snprintf(s->addr, sizeof(s->addr), "%s", c->addr);
    if (c->value != LC__SCHED_NONE && c->value != LC__SCHED_REUSEPORT)
      now_listening(s); /* else the socket to accept on follows */
    return;
  }
  /* LC__CTL_LISTENER */
  err = lc__server_accept_on(s, fd);
  if (err)
    listen_failed(s, err);
  else
    now_listening(s);
}
