/*
 * bus.h - cluster messaging beyond Node: broadcast, publish/subscribe and
 * request/reply between the master and its workers, routed by the master
 * in C (so it works in managed mode, where the master runs no Lua).
 *
 * A BUS frame's payload is a record: a 16-byte head, then the name of the
 * host it came from, the topic and the body. The body is a user message's
 * bytes as the sender encoded them (LuaJIT's string.buffer format, or a
 * string's bytes): the master checks them (message.h) but never decodes
 * them.
 *
 *   0   op          LC__BUS_BROADCAST, _PUBLISH, _SUBSCRIBE, _UNSUBSCRIBE,
 *                   _REQUEST or _REPLY
 *   1   kind        the body's encoding: LC__FRAME_MESSAGE or _STRING
 *                   (0 for SUBSCRIBE and UNSUBSCRIBE, which have none)
 *   2   flags       LC__BUS_ERROR: a REPLY whose body is an error's words
 *   3   host_len    0: this host; a record relayed from another host
 *                   names that host
 *   4   topic_len   big-endian u16: PUBLISH, SUBSCRIBE, UNSUBSCRIBE only
 *   6   0 0         reserved
 *   8   from        big-endian u32: the worker it came from, 0 for a
 *                   master (set by the master: a worker cannot pose as
 *                   another)
 *   12  id          big-endian u32: a REQUEST's number, echoed by its REPLY
 *   16  host, topic, body
 *
 * Who sends what:
 *   worker -> master  BROADCAST, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, REQUEST,
 *                     REPLY
 *   master -> worker  PUBLISH (to a subscriber), REQUEST, REPLY; a
 *                     broadcast reaches a worker as a plain MESSAGE or
 *                     STRING frame, so it is a message like any other.
 *
 * The master keeps topic -> subscribers (bus_topics.c; the master itself
 * is subscriber 0) and forwards a publish only to its subscribers, and a
 * broadcast to every worker, the sender included. A subscriber whose
 * channel already has LC__BUS_BACKLOG_MAX bytes waiting misses the message
 * (counted and logged): one worker that does not read must not make the
 * master hold an unbounded queue for it. Order is kept per sender: what
 * one process sends reaches each receiver in the order it was sent.
 */
#ifndef LC_BUS_H
#define LC_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "core.h"

typedef struct lc__worker lc__worker;

enum lc__bus_op {
  LC__BUS_BROADCAST = 1,
  LC__BUS_PUBLISH,
  LC__BUS_SUBSCRIBE,
  LC__BUS_UNSUBSCRIBE,
  LC__BUS_REQUEST,
  LC__BUS_REPLY,
  LC__BUS_OP_MAX
};

#define LC__BUS_ERROR 1u /* flags: a REPLY carrying an error */

#define LC__BUS_HEAD_SIZE 16
#define LC__BUS_HOST_MAX 255
#define LC__BUS_TOPIC_MAX 1024
#define LC__BUS_HEAD_MAX (LC__BUS_HEAD_SIZE + LC__BUS_HOST_MAX + LC__BUS_TOPIC_MAX)
/* Distinct topics the master keeps subscribers for. */
#define LC__BUS_MAX_TOPICS 65536
/* A subscriber with this much waiting on its channel misses messages. */
#define LC__BUS_BACKLOG_MAX (16 * 1024 * 1024)

/* Malformed records (lc__bus_parse); a bad body gives message.h's codes. */
#define LC__BUS_ESHORT (-101) /* shorter than its head and lengths say */
#define LC__BUS_EOP (-102)    /* not an op, or one this side may not get */
#define LC__BUS_EFIELD (-103) /* a field the op does not allow */

typedef struct lc__bus_record {
  int op;
  int kind;
  unsigned flags;
  uint32_t from;
  uint32_t id;
  const char *host;
  size_t host_len;
  const char *topic;
  size_t topic_len;
  const char *body;
  size_t body_len;
} lc__bus_record;

/* Reads a record from payload[0, len), checking its head and its body
 * (message.h). 0, or an LC__BUS_E* or LC__MESSAGE_E* code. */
int lc__bus_parse(const char *payload, size_t len, lc__bus_record *r);
const char *lc__bus_strerror(int err);
/* Writes rec's head, host and topic to out (LC__BUS_HEAD_MAX bytes);
 * returns how many. */
size_t lc__bus_head(char *out, const lc__bus_record *r);
/* Queues rec as a BUS frame: the body copied, or written from where it is
 * when release is given (lc__channel_send_parts). */
int lc__bus_send(lc__channel *ch, const lc__bus_record *r,
                 lc__channel_release_cb release, void *arg);

/* The topic table (bus_topics.c) -------------------------------------------- */

typedef struct lc__bus_topic {
  struct lc__bus_topic *next; /* in its bucket */
  uint32_t hash;
  int *subs; /* subscriber ids, ascending */
  size_t nsubs, cap;
  size_t len;
  char name[]; /* len bytes */
} lc__bus_topic;

typedef struct lc__bus_topics {
  lc__bus_topic **buckets;
  size_t nbuckets;
  size_t count;
} lc__bus_topics;

void lc__bus_topics_init(lc__bus_topics *t);
void lc__bus_topics_free(lc__bus_topics *t);
/* Subscribes sub to the topic: 2 when the topic is new, 1 when sub joins
 * it, 0 when sub was there; UV_ENOSPC past LC__BUS_MAX_TOPICS, UV_ENOMEM,
 * UV_EINVAL for a name of 0 or over LC__BUS_TOPIC_MAX bytes. */
int lc__bus_topics_add(lc__bus_topics *t, const char *name, size_t len,
                       int sub);
/* 2 when sub was the topic's last subscriber (the topic is gone), 1 when
 * it left, 0 when it was not subscribed. */
int lc__bus_topics_remove(lc__bus_topics *t, const char *name, size_t len,
                          int sub);
/* Takes sub out of every topic; calls gone(name, len, arg) for each topic
 * that has no subscriber left (before it is freed). Returns how many
 * topics it left. */
size_t lc__bus_topics_remove_all(lc__bus_topics *t, int sub,
                                 void (*gone)(const char *, size_t, void *),
                                 void *arg);
const lc__bus_topic *lc__bus_topics_find(const lc__bus_topics *t,
                                         const char *name, size_t len);
/* Whether sub is one of topic's subscribers. */
int lc__bus_topic_has(const lc__bus_topic *topic, int sub);

/* The master's router (bus.c) ------------------------------------------------ */

typedef struct lc__bus lc__bus;

/* Sets up the router (a master's; called with the supervisor). */
int lc__bus_init(lc__core *core);
/* A BUS frame from worker w (supervisor.c). */
void lc__bus_on_frame(lc__worker *w, const char *payload, size_t len);
/* w's channel ended: its subscriptions go. */
void lc__bus_worker_gone(lc__worker *w);

/* What the master's own app sends (script mode). Broadcast and publish
 * return how many workers missed the message (a full channel), or an
 * error: UV_EINVAL (a bad topic), UV_ENOMEM. */
int lc__bus_broadcast(lc__core *core, int kind, const char *body, size_t len);
int lc__bus_publish(lc__core *core, const char *topic, size_t topic_len,
                    int kind, const char *body, size_t len);
/* The master's app subscribes (subscriber 0): 0 or an error as
 * lc__bus_topics_add. */
int lc__bus_subscribe(lc__core *core, const char *topic, size_t len);
int lc__bus_unsubscribe(lc__core *core, const char *topic, size_t len);
/* A REQUEST or REPLY to worker w (the channel's send errors). */
int lc__bus_to_worker(lc__worker *w, const lc__bus_record *r,
                      lc__channel_release_cb release, void *arg);

/* A broadcast or publish another host sent (rec.host names it): to the
 * workers here it is for, and to the master's app through the function
 * lc__bus_set_remote() gave, when it subscribed (cluster_redis.c). */
void lc__bus_deliver_remote(lc__core *core, const lc__bus_record *rec);
void lc__bus_set_remote(lc__core *core,
                        void (*on_remote)(void *arg, const lc__bus_record *rec),
                        void *arg);

/* Answers worker w's request id with the error "no request listener": no
 * one in this master hears requests (managed mode, or the app let go of
 * the worker). */
void lc__bus_refuse(lc__worker *w, uint32_t id);

/* Messages dropped so far because a subscriber's channel was full. */
uint64_t lc__bus_dropped(lc__core *core);

#endif
