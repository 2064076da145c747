/*
 * cluster_redis.h - the masters of several hosts as one cluster, over
 * Redis (--redis URL, --cluster-name NAME).
 *
 * Each master keeps two Redis clients (redis.h): one subscriber, which
 * hears the other hosts' broadcasts and publishes and hands them to the
 * local router (bus.c) to fan out over the channels, and one for
 * commands: PUBLISH of this host's broadcasts and publishes, the
 * registration, `status --cluster`. Redis names, all under
 * "luacluster:<cluster>:":
 *
 *   broadcast           channel: every broadcast
 *   topic:<topic>       channel: publishes to <topic>; a master subscribes
 *                       while a process of its host listens to <topic>
 *   hosts               set of the hosts' names
 *   host:<host>         hash, expiring: json (this master's `status --json`
 *                       and who it is), text (its `status` table), updated
 *                       (ms since the epoch); renewed every 5 s, gone 15 s
 *                       after its master stops renewing it
 *
 * A host is "<hostname>:<master pid>". A message on a channel is an
 * envelope: "LCB1", the sending master's 8 random bytes (a master drops
 * what it sent itself when Redis hands it back), then a bus record (bus.h)
 * naming the sending host, whose body is the message as the sending
 * process encoded it (LuaJIT's string.buffer format, or a string's
 * bytes). Redis pub/sub delivers at most once: a message sent while a
 * host is cut off from Redis does not reach it later.
 *
 * Redis going away never stops local delivery: sends to other hosts are
 * dropped (counted, logged once per outage) until the clients are back,
 * then resume; the subscriptions are renewed by the client.
 */
#ifndef LC_CLUSTER_REDIS_H
#define LC_CLUSTER_REDIS_H

#include "bus.h"
#include "core.h"

#define LC__CLUSTER_NAME_MAX 64
#define LC__CLUSTER_NAME_CHARS                                                 \
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
#define LC__CLUSTER_MAGIC "LCB1"
#define LC__CLUSTER_NODE_SIZE 8
#define LC__CLUSTER_ENVELOPE_HEAD (4 + LC__CLUSTER_NODE_SIZE)
/* PUBLISHes a master lets wait for Redis's answer (a Redis that does not
 * keep up): past either bound, messages for other hosts are dropped. */
#define LC__CLUSTER_IN_FLIGHT_MAX 10000
#define LC__CLUSTER_IN_FLIGHT_BYTES (64 * 1024 * 1024)
/* How often a master renews its registration, and how long it lasts. */
#define LC__CLUSTER_REFRESH_MS 5000
#define LC__CLUSTER_TTL_MS 15000

typedef struct lc__cluster lc__cluster;

/* Whether name is a cluster name: 1 to 64 of LC__CLUSTER_NAME_CHARS. */
int lc__cluster_name_ok(const char *name);

/* Joins the cluster core->opts names (a master with --redis): starts the
 * clients and the registration. 0 or an error (a bad URL: UV_EINVAL). */
int lc__cluster_open(lc__core *core);

/* A broadcast or publish made on this host (rec.from set), for the other
 * hosts. */
void lc__cluster_send(lc__core *core, const lc__bus_record *rec);
/* This host has a first listener of topic (on = 1), or lost its last. */
void lc__cluster_topic(lc__core *core, const char *topic, size_t len, int on);

/* `luacluster status --cluster`: every host's status, as text or JSON;
 * done(arg, ok, text) runs once: before this returns when there is no
 * cluster or Redis is away, else from the loop once Redis answered.
 * forget(arg) drops the answer of a query whose asker went away. */
typedef void (*lc__cluster_status_cb)(void *arg, int ok, const char *text);
void lc__cluster_status(lc__core *core, int json, lc__cluster_status_cb done,
                        void *arg);
void lc__cluster_status_forget(lc__core *core, void *arg);

/* The master is stopping: its registration goes now (best effort). */
void lc__cluster_leave(lc__core *core);

/* The envelope (no I/O) ------------------------------------------------------ */

/* Writes the envelope's head (magic, node) and the record's head to out
 * (LC__CLUSTER_ENVELOPE_HEAD + LC__BUS_HEAD_MAX bytes); returns how many.
 * The body follows. */
size_t lc__cluster_envelope(char *out, const uint8_t node[LC__CLUSTER_NODE_SIZE],
                            const lc__bus_record *rec);
/* Reads an envelope: 0 and *rec (pointing into data) and node, or an
 * error: LC__BUS_ESHORT / LC__BUS_EFIELD for a bad envelope (no magic, no
 * host, an op other than BROADCAST or PUBLISH), or lc__bus_parse's. */
int lc__cluster_open_envelope(const char *data, size_t len,
                              uint8_t node[LC__CLUSTER_NODE_SIZE],
                              lc__bus_record *rec);

#endif
