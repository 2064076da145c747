/*
 * cluster_redis.c - the masters of several hosts as one cluster, over Redis
 * (see cluster_redis.h for the names and formats).
 *
 * Messages: bus.c hands over every broadcast and publish made on this host
 * (lc__cluster_send); they go out as one PUBLISH each on the command
 * client, which takes commands only while it is connected (max_offline 0),
 * so nothing stale is sent after an outage: at most once, as Redis pub/sub
 * itself. The subscriber client hears the broadcast channel always and a
 * topic's channel while this host has a listener for it (bus.c says when),
 * and hands what other masters sent to lc__bus_deliver_remote().
 *
 * Registration and `status --cluster` are in cluster_status.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_int.h"
#include "redis_url.h"

int lc__cluster_name_ok(const char *name) {
  size_t len = strlen(name);

  return len >= 1 && len <= LC__CLUSTER_NAME_MAX &&
         strspn(name, LC__CLUSTER_NAME_CHARS) == len;
}

/* The envelope ---------------------------------------------------------------- */

size_t lc__cluster_envelope(char *out,
                            const uint8_t node[LC__CLUSTER_NODE_SIZE],
                            const lc__bus_record *rec) {
  memcpy(out, LC__CLUSTER_MAGIC, 4);
  memcpy(out + 4, node, LC__CLUSTER_NODE_SIZE);
  return LC__CLUSTER_ENVELOPE_HEAD +
         lc__bus_head(out + LC__CLUSTER_ENVELOPE_HEAD, rec);
}

int lc__cluster_open_envelope(const char *data, size_t len,
                              uint8_t node[LC__CLUSTER_NODE_SIZE],
                              lc__bus_record *rec) {
  int err;

  if (len < LC__CLUSTER_ENVELOPE_HEAD || memcmp(data, LC__CLUSTER_MAGIC, 4))
    return LC__BUS_ESHORT;
  memcpy(node, data + 4, LC__CLUSTER_NODE_SIZE);
  err = lc__bus_parse(data + LC__CLUSTER_ENVELOPE_HEAD,
                      len - LC__CLUSTER_ENVELOPE_HEAD, rec);
  if (err != 0)
    return err;
  if ((rec->op != LC__BUS_BROADCAST && rec->op != LC__BUS_PUBLISH) ||
      rec->host_len == 0)
    return LC__BUS_EFIELD;
  return 0;
}

/* Channels ------------------------------------------------------------------- */

/* "<prefix>broadcast" or "<prefix>topic:<topic>" into c->channel. */
static const char *channel_name(lc__cluster *c, const char *topic,
                                size_t topic_len, size_t *len) {
  lc__buf_reset(&c->channel);
  lc__buf_puts(&c->channel, c->prefix);
  if (topic == NULL) {
    lc__buf_puts(&c->channel, "broadcast");
  } else {
    lc__buf_puts(&c->channel, "topic:");
    lc__buf_append(&c->channel, topic, topic_len);
  }
  *len = lc__buf_size(&c->channel);
  return lc__buf_data(&c->channel);
}

static void on_subscribed(lc__redis *r, int status,
                          const lc__redis_reply *reply, void *data) {
  lc__cluster *c = data;

  (void)r;
  if (status != 0 && !c->core->shutting_down && status != UV_ECANCELED)
    lc__log(LC__LOG_DEBUG, "cluster: a subscription waits for Redis: %s",
            reply && reply->str ? reply->str : uv_strerror(status));
}

static void subscribe(lc__cluster *c, const char *topic, size_t topic_len,
                      int on) {
  size_t len;
  const char *name = channel_name(c, topic, topic_len, &len);
  int err = lc__redis_subscribe(c->sub,
                                on ? LC__REDIS_SUBSCRIBE : LC__REDIS_UNSUBSCRIBE,
                                1, &name, &len, on_subscribed, c);

  if (err != 0)
    lc__log(LC__LOG_WARN, "cluster: cannot %s %.*s: %s",
            on ? "subscribe to" : "unsubscribe from", (int)len, name,
            uv_strerror(err));
}

void lc__cluster_topic(lc__core *core, const char *topic, size_t len, int on) {
  if (core->cluster != NULL && core->cluster->sub != NULL)
    subscribe(core->cluster, topic, len, on);
}

/* Sending --------------------------------------------------------------------- */

/* A message for the other hosts that could not go: counted, and said once
 * per outage. */
static void dropped(lc__cluster *c, const char *why) {
  c->dropped++;
  if (!c->drop_said) {
    c->drop_said = 1;
    lc__log(LC__LOG_WARN, "cluster: Redis at %s: %s: broadcasts and "
            "publishes for other hosts are dropped until it is back (local "
            "delivery goes on)", c->where, why);
  }
}

/* A PUBLISH's size rides in its callback's data: the cluster is the
 * client's own. */
static void on_published(lc__redis *r, int status,
                         const lc__redis_reply *reply, void *data) {
  lc__cluster *c = lc__redis_data(r);

  c->in_flight--;
  c->in_flight_bytes -= (size_t)(uintptr_t)data;
  if (c->core->shutting_down)
    return;
  if (status != 0) {
    dropped(c, reply && reply->str ? reply->str : uv_strerror(status));
  } else if (c->drop_said && c->in_flight == 0 &&
             lc__redis_state(r) == LC__REDIS_READY) {
    /* A Redis that was slow has caught up. */
    c->drop_said = 0;
    lc__log(LC__LOG_INFO, "cluster: Redis at %s keeps up again: broadcasts "
            "and publishes reach the other hosts (%llu dropped so far)",
            c->where, (unsigned long long)c->dropped);
  }
}

void lc__cluster_send(lc__core *core, const lc__bus_record *rec) {
  lc__cluster *c = core->cluster;
  lc__bus_record r;
  const char *argv[3];
  size_t lens[3], n;

  if (c == NULL || c->pub == NULL)
    return;
  if (lc__redis_state(c->pub) != LC__REDIS_READY) {
    dropped(c, "not connected");
    return;
  }
  if (c->in_flight >= LC__CLUSTER_IN_FLIGHT_MAX ||
      c->in_flight_bytes + rec->body_len > LC__CLUSTER_IN_FLIGHT_BYTES) {
    dropped(c, "not keeping up");
    return;
  }
  r = *rec;
  r.host = c->host;
  r.host_len = strlen(c->host);
  if (lc__buf_reserve(&c->envelope, LC__CLUSTER_ENVELOPE_HEAD +
                                        LC__BUS_HEAD_MAX + r.body_len) != 0) {
    dropped(c, "out of memory");
    return;
  }
  lc__buf_reset(&c->envelope);
  n = lc__cluster_envelope(c->envelope.base, c->node, &r);
  memcpy(c->envelope.base + n, r.body, r.body_len);
  argv[0] = "PUBLISH";
  lens[0] = 7;
  argv[1] = channel_name(c, r.op == LC__BUS_PUBLISH ? r.topic : NULL,
                         r.topic_len, &lens[1]);
  argv[2] = c->envelope.base;
  lens[2] = n + r.body_len;
  if (lc__redis_command_argv(c->pub, 3, argv, lens, on_published,
                             (void *)(uintptr_t)lens[2]) != 0) {
    dropped(c, "cannot queue the command");
  } else {
    c->in_flight++;
    c->in_flight_bytes += lens[2];
  }
  /* A big one's buffer is not kept for the next small ones. */
  if (c->envelope.cap > 1024 * 1024)
    lc__buf_free(&c->envelope);
}

/* Receiving -------------------------------------------------------------------- */

static void on_message(lc__redis *r, const lc__redis_message *m) {
  lc__cluster *c = lc__redis_data(r);
  uint8_t node[LC__CLUSTER_NODE_SIZE];
  lc__bus_record rec;
  int err = lc__cluster_open_envelope(m->data, m->len, node, &rec);
  uint64_t now;

  if (err != 0) {
    now = uv_now(&c->core->loop);
    c->refused++;
    if (c->refused_said_ms == 0 || now - c->refused_said_ms >= 1000) {
      c->refused_said_ms = now;
      lc__log(LC__LOG_WARN, "cluster: dropped a message on %.*s that is not "
              "a luacluster message (%s; %llu so far)", (int)m->channel_len,
              m->channel, lc__bus_strerror(err),
              (unsigned long long)c->refused);
    }
    return;
  }
  if (memcmp(node, c->node, LC__CLUSTER_NODE_SIZE) == 0)
    return; /* ours, back from Redis: delivered here already */
  lc__bus_deliver_remote(c->core, &rec);
}

/* The clients' events ---------------------------------------------------------- */

static const char *role(lc__cluster *c, lc__redis *r) {
  return r == c->sub ? "subscriber" : "commands";
}

static void on_ready(lc__redis *r) {
  lc__cluster *c = lc__redis_data(r);

  if (r == c->pub) {
    if (!c->joined)
      lc__log(LC__LOG_INFO, "cluster %s: joined through Redis at %s as %s",
              c->name, c->where, c->host);
    else
      lc__log(LC__LOG_INFO, "cluster: Redis at %s is back: broadcasts and "
              "publishes reach the other hosts again (%llu dropped so far)",
              c->where, (unsigned long long)c->dropped);
    c->joined = 1;
    c->drop_said = 0;
    lc__cluster_register(c);
  } else if (c->sub_lost) {
    lc__log(LC__LOG_INFO, "cluster: Redis at %s is back: messages from the "
            "other hosts arrive again", c->where);
    c->sub_lost = 0;
  }
}

static void on_error(lc__redis *r, int err, const char *message) {
  lc__cluster *c = lc__redis_data(r);

  (void)err;
  lc__log(LC__LOG_WARN, "cluster: Redis at %s (%s): %s", c->where, role(c, r),
          message);
}

static void on_end(lc__redis *r) {
  lc__cluster *c = lc__redis_data(r);

  if (r == c->sub) {
    c->sub_lost = 1;
    lc__log(LC__LOG_WARN, "cluster: lost Redis at %s: messages from the "
            "other hosts stop until it is back (local delivery goes on)",
            c->where);
  } else {
    dropped(c, "connection lost");
  }
}

static void on_client_close(lc__redis *r) {
  lc__cluster *c = lc__redis_data(r);

  if (r == c->pub)
    c->pub = NULL;
  else
    c->sub = NULL;
}

static const lc__redis_events cluster_redis_events = {
    NULL, on_ready, on_error, on_end, NULL, on_message, on_client_close};

/* Opening and closing ----------------------------------------------------------- */

static void cluster_free(void *arg) {
  lc__core *core = arg;
  lc__cluster *c = core->cluster;

  if (c == NULL)
    return;
  lc__cluster_status_free(c);
  lc__buf_free(&c->envelope);
  lc__buf_free(&c->channel);
  free(c);
  core->cluster = NULL;
}

/* This master's name: "<hostname>:<pid>", and 8 random bytes. */
static void cluster_identity(lc__cluster *c) {
  char hostname[200];
  size_t i, len = sizeof(hostname);

  /* As os.hostname() says it, so cluster.host matches. */
  if (uv_os_gethostname(hostname, &len) != 0)
    snprintf(hostname, sizeof(hostname), "localhost");
  snprintf(c->hostname, sizeof(c->hostname), "%s", hostname);
  snprintf(c->host, sizeof(c->host), "%s:%d", hostname, (int)getpid());
  if (uv_random(NULL, NULL, c->node, sizeof(c->node), 0, NULL) != 0) {
    uint64_t x = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    for (i = 0; i < sizeof(c->node); i++, x >>= 8)
      c->node[i] = (uint8_t)x;
  }
}

static int client_new(lc__cluster *c, const lc__redis_url *u, int subscriber,
                      lc__redis **out) {
  lc__redis_options o;
  char name[LC__CLUSTER_NAME_MAX + 64];
  int err;

  lc__redis_options_init(&o);
  o.host = u->host;
  o.port = u->port;
  o.db = u->db;
  o.username = u->username[0] ? u->username : NULL;
  o.password = u->has_password ? u->password : NULL;
  snprintf(name, sizeof(name), "luacluster-%s-%s", c->name,
           subscriber ? "sub" : "pub");
  o.name = name;
  o.command_timeout_ms = 5000;
  o.retry_delay_ms = 100;
  o.max_retry_delay_ms = 2000;
  /* Nothing waits for Redis: a send while it is away is dropped. The
   * subscriber's few commands may wait for it. */
  o.max_offline = subscriber ? 10000 : 0;
  o.max_reply = c->core->opts.max_message_size + 64 * 1024;
  err = lc__redis_new(c->core, &o, &cluster_redis_events, c, out);
  if (err == 0)
    lc__redis_set_ref(*out, 0); /* Redis never keeps a master running */
  return err;
}

int lc__cluster_open(lc__core *core) {
  lc__redis_url u;
  lc__cluster *c;
  char why[400];
  int err;

  if (core->opts.redis_url == NULL)
    return 0;
  if (lc__redis_url_parse(core->opts.redis_url, &u, why, sizeof(why)) != 0 ||
      core->opts.cluster_name == NULL ||
      !lc__cluster_name_ok(core->opts.cluster_name))
    return UV_EINVAL;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  c->core = core;
  core->cluster = c;
  if ((err = lc__core_on_close(core, cluster_free, core)) != 0) {
    free(c);
    core->cluster = NULL;
    return err;
  }
  snprintf(c->name, sizeof(c->name), "%s", core->opts.cluster_name);
  snprintf(c->prefix, sizeof(c->prefix), "luacluster:%s:", c->name);
  snprintf(c->where, sizeof(c->where), strchr(u.host, ':') ? "[%s]:%d"
           : "%s:%d", u.host, u.port);
  cluster_identity(c);
  if ((err = client_new(c, &u, 0, &c->pub)) != 0 ||
      (err = client_new(c, &u, 1, &c->sub)) != 0 ||
      (err = lc__cluster_registry_start(c)) != 0)
    return err;
  subscribe(c, NULL, 0, 1);
  return 0;
}
