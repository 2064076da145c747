/*
 * worker_link.h - a worker's link to its master: the worker's end of the
 * channel. It answers heartbeats from C, passes the master's shared-port
 * records to shared_listen.c, runs the disconnect handshake, and tells the
 * bindings what concerns them through lc__link_events (as the supervisor
 * tells the master's side through lc__worker_events).
 */
#ifndef LC_WORKER_LINK_H
#define LC_WORKER_LINK_H

#include "bus.h"
#include "channel.h"
#include "core.h"

typedef struct lc__link_events {
  /* A user message from the master: type LC__FRAME_MESSAGE (checked:
   * message.h) or LC__FRAME_STRING, its bytes valid during the call. */
  void (*on_message)(void *arg, int type, const char *data, size_t len);
  /* Bytes written to the master so far went up to `written`. */
  void (*on_written)(void *arg, uint64_t written);
  /* The channel ended (a disconnect, or the master went away). */
  void (*on_disconnect)(void *arg);
  /* The messages since the last call are all there is for now: before
   * anything else the master's frames cause, and after each read. */
  void (*on_messages_end)(void *arg);
  /* Cluster messaging from the master (bus.h): a PUBLISH to a topic this
   * worker subscribed to, a REQUEST or a REPLY; in order with messages. */
  void (*on_bus)(void *arg, const lc__bus_record *rec);
} lc__link_events;

/* Opens the link on the inherited channel descriptor fd. */
int lc__link_open(lc__core *core, int fd);
/* Who hears the link's events (NULL: nobody). */
void lc__link_set_events(lc__core *core, const lc__link_events *ev,
                         void *arg);
/* Worker -> master user message (lc__channel_send_message). 0, UV_EMSGSIZE,
 * UV_EPIPE, UV_ENOTCONN, UV_ENOMEM. */
int lc__link_send(lc__core *core, int type, const char *data, size_t len,
                  lc__channel_release_cb release, void *arg);
int lc__link_send_control(lc__core *core, const lc__control *c);
/* A bus record to the master (lc__bus_send); errors as lc__link_send. */
int lc__link_send_bus(lc__core *core, const lc__bus_record *rec,
                      lc__channel_release_cb release, void *arg);
/* Asks the master to disconnect this worker (cluster.worker:disconnect()). */
void lc__link_disconnect(lc__core *core);
/* The worker was told to stop (SIGTERM/SIGINT no listener took): it drains
 * like a disconnect, then exits; a second stop exits at once. */
void lc__link_stop(lc__core *core, int signum);
int lc__link_connected(lc__core *core);
/* The master said DISCONNECT: the servers drain, then the channel closes. */
int lc__link_disconnecting(lc__core *core);
/* Writes what is queued, waiting at most timeout_ms (for exits). */
void lc__link_flush(lc__core *core, int timeout_ms);
/* Makes on_written run at the end of this iteration. */
void lc__link_kick(lc__core *core);
/* Bytes ever queued on the channel (a send callback's offset). */
uint64_t lc__link_queued(lc__core *core);
/* Bytes queued and not yet written. */
uint64_t lc__link_backlog(lc__core *core);
/* Ends the channel because the master broke the protocol. */
void lc__link_fail(lc__core *core, const char *reason);

#endif
