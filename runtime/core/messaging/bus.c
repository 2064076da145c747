/*
 * bus.c - cluster messaging: the bus record (see bus.h) and the master's
 * router.
 *
 * The router runs in every master, script or managed mode, on the frames
 * supervisor.c hands it. Broadcasts and publishes are forwarded in C, the
 * body as the sender encoded it; what the master's app must hear (a
 * publish to a topic it subscribed to, a request, a reply) goes to the
 * worker's owner through lc__worker_events.on_bus, in order with that
 * worker's messages. A master with no one to hear requests (managed mode)
 * answers them at once with an error, so a worker's request never waits
 * for its timeout there.
 *
 * A body of LC__CHANNEL_REF_MIN bytes or more that goes to several workers
 * is copied once into a block shared by their channels (refcounted), not
 * once per worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "cluster_redis.h"
#include "message.h"
#include "supervisor.h"

/* What a managed master answers a request with. */
#define NO_LISTENER "no request listener"

struct lc__bus {
  lc__core *core;
  lc__bus_topics topics;
  /* The master's app hears publishes from other hosts here. */
  void (*on_remote)(void *arg, const lc__bus_record *rec);
  void *remote_arg;
  uint64_t dropped;        /* messages a full channel missed */
  uint64_t drop_logged_ms; /* the last "dropped" line (one a second) */
};

/* The record ---------------------------------------------------------------- */

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* Which fields an op has: a topic, a body. */
static int op_has_topic(int op) {
  return op == LC__BUS_PUBLISH || op == LC__BUS_SUBSCRIBE ||
         op == LC__BUS_UNSUBSCRIBE;
}

static int op_has_body(int op) {
  return op != LC__BUS_SUBSCRIBE && op != LC__BUS_UNSUBSCRIBE;
}

static int record_check_fields(const lc__bus_record *r) {
  if (r->op < LC__BUS_BROADCAST || r->op >= LC__BUS_OP_MAX)
    return LC__BUS_EOP;
  if (op_has_topic(r->op) != (r->topic_len > 0) ||
      r->topic_len > LC__BUS_TOPIC_MAX)
    return LC__BUS_EFIELD;
  if (op_has_body(r->op)) {
    if (r->kind != LC__FRAME_MESSAGE && r->kind != LC__FRAME_STRING)
      return LC__BUS_EFIELD;
  } else if (r->kind != 0 || r->body_len != 0) {
    return LC__BUS_EFIELD;
  }
  if (r->flags & ~LC__BUS_ERROR)
    return LC__BUS_EFIELD;
  /* An error reply carries the error's words as a string. */
  if ((r->flags & LC__BUS_ERROR) &&
      (r->op != LC__BUS_REPLY || r->kind != LC__FRAME_STRING))
    return LC__BUS_EFIELD;
  return 0;
}

int lc__bus_parse(const char *payload, size_t len, lc__bus_record *r) {
  const unsigned char *p = (const unsigned char *)payload;
  size_t need;
  int err;

  if (len < LC__BUS_HEAD_SIZE)
    return LC__BUS_ESHORT;
  memset(r, 0, sizeof(*r));
  r->op = p[0];
  r->kind = p[1];
  r->flags = p[2];
  r->host_len = p[3];
  r->topic_len = (size_t)p[4] << 8 | p[5];
  if (p[6] != 0 || p[7] != 0)
    return LC__BUS_EFIELD;
  r->from = get_u32(p + 8);
  r->id = get_u32(p + 12);
  need = LC__BUS_HEAD_SIZE + r->host_len + r->topic_len;
  if (len < need)
    return LC__BUS_ESHORT;
  r->host = r->host_len ? payload + LC__BUS_HEAD_SIZE : NULL;
  r->topic = r->topic_len ? payload + LC__BUS_HEAD_SIZE + r->host_len : NULL;
  r->body = payload + need;
  r->body_len = len - need;
  if ((err = record_check_fields(r)) != 0)
    return err;
  if (r->kind == LC__FRAME_MESSAGE)
    return lc__message_check(r->body, r->body_len);
  return 0;
}

const char *lc__bus_strerror(int err) {
  switch (err) {
  case LC__BUS_ESHORT:
    return "bus record shorter than its lengths say";
  case LC__BUS_EOP:
    return "unknown bus operation";
  case LC__BUS_EFIELD:
    return "bus record with a field its operation does not allow";
  default:
    return lc__message_strerror(err);
  }
}

size_t lc__bus_head(char *out, const lc__bus_record *r) {
  unsigned char *p = (unsigned char *)out;
  size_t host_len = r->host_len > LC__BUS_HOST_MAX ? 0 : r->host_len;

  p[0] = (unsigned char)r->op;
  p[1] = (unsigned char)r->kind;
  p[2] = (unsigned char)r->flags;
  p[3] = (unsigned char)host_len;
  p[4] = (unsigned char)(r->topic_len >> 8);
  p[5] = (unsigned char)r->topic_len;
  p[6] = p[7] = 0;
  put_u32(p + 8, r->from);
  put_u32(p + 12, r->id);
  if (host_len > 0)
    memcpy(out + LC__BUS_HEAD_SIZE, r->host, host_len);
  if (r->topic_len > 0)
    memcpy(out + LC__BUS_HEAD_SIZE + host_len, r->topic, r->topic_len);
  return LC__BUS_HEAD_SIZE + host_len + r->topic_len;
}

int lc__bus_send(lc__channel *ch, const lc__bus_record *r,
                 lc__channel_release_cb release, void *arg) {
  char head[LC__BUS_HEAD_MAX];
  size_t n;

  if (r->topic_len > LC__BUS_TOPIC_MAX)
    return UV_EINVAL;
  n = lc__bus_head(head, r);
  return lc__channel_send_parts(ch, LC__FRAME_BUS, head, n, r->body,
                                r->body_len, release, arg);
}

/* Bodies shared by several channels ------------------------------------------ */

typedef struct bus_block {
  size_t refs;
  char data[];
} bus_block;

static void block_release(void *arg) {
  bus_block *b = arg;

  if (--b->refs == 0)
    free(b);
}

/* A block holding a copy of a large body (one ref: the caller's), or NULL
 * for a small one, which each channel copies. */
static bus_block *block_for(const char *body, size_t len) {
  bus_block *b;

  if (len < LC__CHANNEL_REF_MIN || (b = malloc(sizeof(*b) + len)) == NULL)
    return NULL;
  b->refs = 1;
  memcpy(b->data, body, len);
  return b;
}

/* The router ----------------------------------------------------------------- */

static void bus_free(void *arg) {
  lc__core *core = arg;

  if (core->bus != NULL) {
    lc__bus_topics_free(&core->bus->topics);
    free(core->bus);
    core->bus = NULL;
  }
}

int lc__bus_init(lc__core *core) {
  core->bus = calloc(1, sizeof(*core->bus));
  if (core->bus == NULL)
    return UV_ENOMEM;
  core->bus->core = core;
  lc__bus_topics_init(&core->bus->topics);
  if (lc__core_on_close(core, bus_free, core) != 0) {
    bus_free(core);
    return UV_ENOMEM;
  }
  return lc__cluster_open(core);
}

uint64_t lc__bus_dropped(lc__core *core) {
  return core->bus != NULL ? core->bus->dropped : 0;
}

/* A message worker w misses: counted, and said at most once a second. */
static void bus_dropped(lc__bus *bus, lc__worker *w, const char *why) {
  uint64_t now = uv_now(&bus->core->loop);

  bus->dropped++;
  if (bus->drop_logged_ms == 0 || now - bus->drop_logged_ms >= 1000) {
    bus->drop_logged_ms = now;
    lc__log(LC__LOG_WARN, "cluster messaging: worker %d (pid %d) %s, so "
            "broadcasts and publishes skip it (%llu dropped so far)", w->id,
            w->pid, why, (unsigned long long)bus->dropped);
  }
}

/* Whether w takes messages now; a full channel counts a drop. */
static int bus_can_deliver(lc__bus *bus, lc__worker *w) {
  uint64_t backlog;
  char why[128];

  if (w->channel.state != LC__CHANNEL_OPEN || w->dead)
    return 0;
  backlog = lc__channel_backlog(&w->channel);
  if (backlog < LC__BUS_BACKLOG_MAX)
    return 1;
  snprintf(why, sizeof(why), "is not reading: %llu bytes wait to be written "
           "to it", (unsigned long long)backlog);
  bus_dropped(bus, w, why);
  return 0;
}

/* Queues rec for w: a broadcast as a plain message, anything else as a
 * record. The body comes from block when there is one. */
static int bus_forward(lc__worker *w, const lc__bus_record *rec,
                       bus_block *block) {
  lc__channel_release_cb release = block != NULL ? block_release : NULL;
  const char *body = block != NULL ? block->data : rec->body;
  int err;

  if (block != NULL)
    block->refs++;
  if (rec->op == LC__BUS_BROADCAST) {
    err = lc__channel_send_message(&w->channel, rec->kind, body,
                                   rec->body_len, release, block);
  } else {
    lc__bus_record r = *rec;
    r.body = body;
    err = lc__bus_send(&w->channel, &r, release, block);
  }
  if (err != 0 && block != NULL)
    block->refs--;
  return err;
}

/*
 * Delivers a broadcast (to every worker) or a publish (to the topic's
 * subscribers; when the master's app subscribed, it hears one from a
 * worker through `origin`'s on_bus, one from another host through
 * on_remote). One made on this host goes to the other hosts too. Returns
 * how many workers here missed it.
 */
static int bus_route(lc__bus *bus, const lc__bus_record *rec,
                     lc__worker *origin) {
  const lc__bus_topic *topic = NULL;
  bus_block *block;
  lc__worker *w;
  int missed = 0, err;

  if (rec->host_len == 0)
    lc__cluster_send(bus->core, rec);
  if (rec->op == LC__BUS_PUBLISH) {
    topic = lc__bus_topics_find(&bus->topics, rec->topic, rec->topic_len);
    if (topic == NULL)
      return 0;
    if (lc__bus_topic_has(topic, 0)) {
      if (origin != NULL && origin->ev->on_bus != NULL)
        origin->ev->on_bus(origin, rec);
      else if (rec->host_len > 0 && bus->on_remote != NULL)
        bus->on_remote(bus->remote_arg, rec);
    }
  }
  block = block_for(rec->body, rec->body_len);
  for (w = bus->core->sup->workers; w != NULL; w = w->next) {
    if (topic != NULL && !lc__bus_topic_has(topic, w->id))
      continue;
    if (!bus_can_deliver(bus, w)) {
      missed++;
    } else if ((err = bus_forward(w, rec, block)) != 0) {
      /* From another host, a message over this host's size limit. */
      bus_dropped(bus, w, err == UV_EMSGSIZE ? "cannot take a message that "
                  "big (--max-message-size)" : uv_strerror(err));
      missed++;
    }
  }
  if (block != NULL)
    block_release(block);
  return missed;
}

/* Answers a request no one in this master can hear. */
void lc__bus_refuse(lc__worker *w, uint32_t id) {
  lc__bus_record r;

  memset(&r, 0, sizeof(r));
  r.op = LC__BUS_REPLY;
  r.kind = LC__FRAME_STRING;
  r.flags = LC__BUS_ERROR;
  r.id = id;
  r.body = NO_LISTENER;
  r.body_len = strlen(NO_LISTENER);
  lc__bus_send(&w->channel, &r, NULL, NULL);
}

/* Subscribes sub (a worker id, 0: the master's app) to a topic (on) or
 * not; the first subscriber of a topic on this host, and its last, tell
 * the other hosts' link. Returns lc__bus_topics_add's or _remove's. */
static int bus_topic(lc__bus *bus, const char *topic, size_t len, int sub,
                     int on) {
  int r = on ? lc__bus_topics_add(&bus->topics, topic, len, sub)
             : lc__bus_topics_remove(&bus->topics, topic, len, sub);

  if (r == 2)
    lc__cluster_topic(bus->core, topic, len, on);
  return r;
}

static void bus_topic_gone(const char *topic, size_t len, void *arg) {
  lc__cluster_topic(arg, topic, len, 0);
}

static void bus_subscription(lc__bus *bus, lc__worker *w,
                             const lc__bus_record *rec) {
  int r;

  if (rec->op == LC__BUS_UNSUBSCRIBE) {
    bus_topic(bus, rec->topic, rec->topic_len, w->id, 0);
    return;
  }
  r = bus_topic(bus, rec->topic, rec->topic_len, w->id, 1);
  if (r < 0)
    lc__log(LC__LOG_WARN, "cluster messaging: worker %d cannot subscribe to "
            "\"%.*s\": %s", w->id, (int)(rec->topic_len > 64 ? 64 :
            rec->topic_len), rec->topic, r == UV_ENOSPC ? "too many topics"
            : uv_strerror(r));
}

void lc__bus_on_frame(lc__worker *w, const char *payload, size_t len) {
  lc__bus *bus = w->core->bus;
  lc__bus_record rec;
  int err = lc__bus_parse(payload, len, &rec);

  if (err == 0 && rec.host_len != 0)
    err = LC__BUS_EFIELD; /* only a master names a host */
  if (err != 0) {
    lc__channel_close(&w->channel, UV_EPROTO, lc__bus_strerror(err));
    return;
  }
  rec.from = (uint32_t)w->id;
  switch (rec.op) {
  case LC__BUS_BROADCAST:
  case LC__BUS_PUBLISH:
    bus_route(bus, &rec, w);
    break;
  case LC__BUS_SUBSCRIBE:
  case LC__BUS_UNSUBSCRIBE:
    bus_subscription(bus, w, &rec);
    break;
  case LC__BUS_REQUEST:
    if (w->ev->on_bus != NULL && !w->core->shutting_down)
      w->ev->on_bus(w, &rec);
    else
      lc__bus_refuse(w, rec.id);
    break;
  case LC__BUS_REPLY:
    if (w->ev->on_bus != NULL && !w->core->shutting_down)
      w->ev->on_bus(w, &rec);
    break;
  }
}

void lc__bus_worker_gone(lc__worker *w) {
  if (w->core->bus != NULL)
    lc__bus_topics_remove_all(&w->core->bus->topics, w->id, bus_topic_gone,
                              w->core);
}

/* The master's own sends ------------------------------------------------------- */

int lc__bus_broadcast(lc__core *core, int kind, const char *body,
                      size_t len) {
  lc__bus_record rec;

  if (core->bus == NULL)
    return 0;
  memset(&rec, 0, sizeof(rec));
  rec.op = LC__BUS_BROADCAST;
  rec.kind = kind;
  rec.body = body;
  rec.body_len = len;
  return bus_route(core->bus, &rec, NULL);
}

int lc__bus_publish(lc__core *core, const char *topic, size_t topic_len,
                    int kind, const char *body, size_t len) {
  lc__bus_record rec;

  if (topic_len == 0 || topic_len > LC__BUS_TOPIC_MAX)
    return UV_EINVAL;
  if (core->bus == NULL)
    return 0;
  memset(&rec, 0, sizeof(rec));
  rec.op = LC__BUS_PUBLISH;
  rec.kind = kind;
  rec.topic = topic;
  rec.topic_len = topic_len;
  rec.body = body;
  rec.body_len = len;
  return bus_route(core->bus, &rec, NULL);
}

int lc__bus_subscribe(lc__core *core, const char *topic, size_t len) {
  int r;

  if (core->bus == NULL)
    return UV_ENOTSUP;
  r = bus_topic(core->bus, topic, len, 0, 1);
  return r < 0 ? r : 0;
}

int lc__bus_unsubscribe(lc__core *core, const char *topic, size_t len) {
  if (core->bus != NULL)
    bus_topic(core->bus, topic, len, 0, 0);
  return 0;
}

void lc__bus_deliver_remote(lc__core *core, const lc__bus_record *rec) {
  if (core->bus != NULL && core->sup != NULL)
    bus_route(core->bus, rec, NULL);
}

void lc__bus_set_remote(lc__core *core,
                        void (*on_remote)(void *arg, const lc__bus_record *rec),
                        void *arg) {
  if (core->bus != NULL) {
    core->bus->on_remote = on_remote;
    core->bus->remote_arg = arg;
  }
}

int lc__bus_to_worker(lc__worker *w, const lc__bus_record *r,
                      lc__channel_release_cb release, void *arg) {
  return lc__bus_send(&w->channel, r, release, arg);
}
