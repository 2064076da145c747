/*
 * dispatch.c - the master's shared listening sockets and the scheduling
 * policies (DESIGN section 4).
 *
 * A worker's listen() arrives as LISTEN(addr, port, server_id). The master
 * keeps one listener per "addr:port" asked for, and every worker that asked
 * is a subscriber. Then, by the listener's policy:
 *
 *   rr        the master accepts and hands each connection to the next
 *             subscriber, as a HANDLE frame carrying the descriptor;
 *   sticky    as rr, but the client's address picks the subscriber, and a
 *             client keeps it while it lives;
 *   none      every subscriber gets the listening socket and accepts itself;
 *   reuseport every subscriber gets its own SO_REUSEPORT socket on the port;
 *             the master keeps a bound, not listening, socket to hold it.
 *
 * Accepting is a uv_poll_t on the listening socket and accept4(): no handle
 * per connection. The master sends a copy of each connection's descriptor
 * and keeps its own until the worker acknowledges it (ACCEPTED): a worker
 * that dies with connections unread in its channel does not take them
 * along; they go to another worker. A listener with no subscriber stops polling, so clients
 * wait in the kernel's backlog until a worker comes (back); it keeps the
 * master's loop alive only while some worker does. A connection whose
 * handover fails goes to another subscriber, or waits in the master.
 *
 * Running out of descriptors is a load condition, never a reason to drop a
 * worker: when accept() or the copy of a descriptor fails with EMFILE, the
 * master stops accepting for PAUSE_MS and tries again (nginx disables
 * accept for a moment), clients waiting in the backlog meanwhile; a worker
 * that could not receive a connection refuses it (ACCEPTED with EMFILE),
 * gets no new one for PAUSE_MS, and the connection goes to another worker,
 * or waits in the master until one can take it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dispatch.h"
#include "sd_notify.h"
#include "sockets.h"

#define ACCEPTS_PER_WAKEUP 64
#define HELD_MAX 4096 /* connections waiting in the master, per listener */
#define STICKY_SLOTS 4096
#define PAUSE_MS 100

typedef struct lc__sub {
  lc__worker *w;
  uint32_t server_id;
  uint64_t full_until_ms; /* the worker is out of descriptors until then */
} lc__sub;

typedef struct lc__held {
  int fd;
  uint32_t client_hash;
} lc__held;

typedef struct lc__listener {
  lc__owner owner;
  lc__core *core;
  uv_poll_t poll; /* rr and sticky: readable means connections to accept */
  int has_poll;
  int polling;
  int fd;
  int sched;
  uint32_t id;
  char key[96]; /* "host:port" as asked */
  char host[64]; /* as asked */
  int asked_port;
  char addr[64];
  int port;
  uint32_t flags;
  lc__sub *subs;
  size_t nsubs, cap;
  size_t cursor;
  lc__held *held; /* accepted, waiting for a subscriber */
  size_t nheld, cap_held;
  struct {
    uint32_t hash;
    int worker_id;
  } sticky[STICKY_SLOTS];
  struct lc__listener *next;
} lc__listener;

struct lc__dispatch {
  lc__listener *listeners;
  uint32_t next_id;
  uint64_t next_ticket;
  int paused; /* out of descriptors: not accepting until the timer fires */
  struct lc__pause {
    lc__owner owner; /* the timer's data points here */
    uv_timer_t timer;
    lc__core *core;
    int init;
  } pause;
};

static const char *sched_names[] = {NULL, "rr", "none", "reuseport", "sticky"};

int lc__sched_from_name(const char *name) {
  int i;

  for (i = 1; i < (int)LC__ARRAY_SIZE(sched_names); i++)
    if (strcmp(name, sched_names[i]) == 0)
      return i;
  return 0;
}

const char *lc__sched_name(int sched) {
  if (sched < 1 || sched >= (int)LC__ARRAY_SIZE(sched_names))
    return "rr";
  return sched_names[sched];
}

static void listener_free(lc__listener *l) {
  size_t i;

  for (i = 0; i < l->nheld; i++)
    close(l->held[i].fd);
  free(l->held);
  if (l->fd >= 0)
    close(l->fd);
  free(l->subs);
  free(l);
}

static void listener_on_closed(uv_handle_t *handle) {
  listener_free(handle->data);
}

/* Unlinks and closes a listener: its socket goes when its handle does. */
static void listener_close(lc__core *core, lc__listener *l) {
  lc__listener **pp;

  for (pp = &core->dispatch->listeners; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == l) {
      *pp = l->next;
      break;
    }
  }
  if (l->has_poll)
    uv_close((uv_handle_t *)&l->poll, listener_on_closed);
  else
    listener_free(l);
}

static void listener_owner_close(uv_handle_t *handle) {
  lc__listener *l = handle->data;

  listener_close(l->core, l);
}

static void dispatch_free(void *arg) {
  lc__core *core = arg;
  /* The loop walk closed (and unlinked) the listeners with a poll; the
   * rest are plain descriptors. */
  lc__listener *l = core->dispatch ? core->dispatch->listeners : NULL;

  while (l != NULL) {
    lc__listener *next = l->next;
    listener_free(l);
    l = next;
  }
  free(core->dispatch);
  core->dispatch = NULL;
}

int lc__dispatch_init(lc__core *core) {
  core->dispatch = calloc(1, sizeof(*core->dispatch));
  if (core->dispatch == NULL)
    return UV_ENOMEM;
  core->dispatch->next_id = 1;
  return lc__core_on_close(core, dispatch_free, core);
}

static lc__listener *find_listener(lc__core *core, const char *key) {
  lc__listener *l;

  for (l = core->dispatch->listeners; l != NULL; l = l->next)
    if (strcmp(l->key, key) == 0)
      return l;
  return NULL;
}

static lc__listener *find_listener_id(lc__core *core, uint32_t id) {
  lc__listener *l;

  for (l = core->dispatch ? core->dispatch->listeners : NULL; l; l = l->next)
    if (l->id == id)
      return l;
  return NULL;
}

/* Choosing a subscriber ------------------------------------------------------ */

static uint32_t hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint32_t h = 2166136261u;
  size_t i;

  for (i = 0; i < n; i++)
    h = (h ^ s[i]) * 16777619u;
  return h ? h : 1;
}

static uint32_t client_hash(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return hash_bytes(&((const struct sockaddr_in *)ss)->sin_addr, 4);
  if (ss->ss_family == AF_INET6)
    return hash_bytes(&((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
  return 1;
}

static uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/*
 * Sticky: a client keeps the worker it was given while that worker
 * subscribes; a new client (or one whose worker is gone) gets the
 * highest-scoring subscriber for its address (rendezvous hashing), so most
 * clients stay put when workers come and go.
 */
static lc__sub *pick_sticky(lc__listener *l, uint32_t hash) {
  size_t slot = hash % STICKY_SLOTS, i, best = 0;
  uint32_t score, best_score = 0;

  if (l->sticky[slot].hash == hash) {
    for (i = 0; i < l->nsubs; i++)
      if (l->subs[i].w->id == l->sticky[slot].worker_id)
        return &l->subs[i];
  }
  for (i = 0; i < l->nsubs; i++) {
    score = mix(hash ^ mix((uint32_t)l->subs[i].w->id * 2654435761u));
    if (i == 0 || score > best_score) {
      best = i;
      best_score = score;
    }
  }
  l->sticky[slot].hash = hash;
  l->sticky[slot].worker_id = l->subs[best].w->id;
  return &l->subs[best];
}

/* The next subscriber that can take a connection now; NULL when none (a
 * sticky client's worker that is out of descriptors: it waits for it). */
static lc__sub *pick(lc__listener *l, uint32_t hash, uint64_t now) {
  lc__sub *s;
  size_t i;

  if (l->nsubs == 0)
    return NULL;
  if (l->sched == LC__SCHED_STICKY) {
    s = pick_sticky(l, hash);
    return s->full_until_ms > now ? NULL : s;
  }
  for (i = 0; i < l->nsubs; i++) {
    l->cursor = (l->cursor + 1) % l->nsubs;
    if (l->subs[l->cursor].full_until_ms <= now)
      return &l->subs[l->cursor];
  }
  return NULL;
}

/* Remembers fd as sent to w under ticket; 0 or UV_ENOMEM. */
static int track(lc__worker *w, uint64_t ticket, int fd, lc__listener *l,
                 uint32_t hash) {
  lc__inflight *e;

  if (w->ninflight == w->cap_inflight) {
    size_t cap = w->cap_inflight ? w->cap_inflight * 2 : 16;
    e = realloc(w->inflight, cap * sizeof(*e));
    if (e == NULL)
      return UV_ENOMEM;
    w->inflight = e;
    w->cap_inflight = cap;
  }
  e = &w->inflight[w->ninflight++];
  e->ticket = ticket;
  e->fd = fd;
  e->listener = l->id;
  e->hash = hash;
  return 0;
}

/* Sends a copy of fd to s's worker and keeps fd until it is acknowledged.
 * 0; UV_EMFILE when this process has no descriptor for the copy; UV_EPIPE
 * when the worker's channel cannot take it. */
static int hand_over(lc__listener *l, lc__sub *s, int fd, uint32_t hash) {
  lc__dispatch *d = s->w->core->dispatch;
  lc__control c;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);

  if (copy < 0)
    return errno == EMFILE || errno == ENFILE ? UV_EMFILE
                                              : uv_translate_sys_error(errno);
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_CONNECTION;
  c.server_id = s->server_id;
  c.value = l->id;
  c.value2 = hash;
  c.ticket = ++d->next_ticket;
  if (track(s->w, c.ticket, fd, l, hash) != 0) {
    close(copy);
    return UV_ENOMEM;
  }
  if (lc__channel_send_control(&s->w->channel, &c, copy) != 0) {
    close(copy);
    s->w->ninflight--; /* untrack: fd is still ours to route */
    return UV_EPIPE;
  }
  return 0;
}

static void dispatch_pause(lc__core *core, const char *why);

/* Keeps a connection no worker can take now; 0, or -1 when HELD_MAX wait. */
static int hold(lc__listener *l, int fd, uint32_t hash) {
  if (l->nheld == l->cap_held) {
    size_t cap = l->cap_held ? l->cap_held * 2 : 64;
    lc__held *p;
    if (cap > HELD_MAX || (p = realloc(l->held, cap * sizeof(*p))) == NULL)
      return -1;
    l->held = p;
    l->cap_held = cap;
  }
  l->held[l->nheld].fd = fd;
  l->held[l->nheld].client_hash = hash;
  l->nheld++;
  return 0;
}

/* Hands fd to a subscriber; holds it when none can take it. */
static void route(lc__listener *l, int fd, uint32_t hash) {
  uint64_t now = uv_now(&l->core->loop);
  lc__sub *s;
  size_t tries;
  int err;

  for (tries = l->nsubs; tries > 0; tries--) {
    s = pick(l, hash, now);
    if (s == NULL) {
      /* Every worker is out of descriptors: wait a moment. */
      dispatch_pause(l->core, "out of file descriptors (no worker can take "
                              "a connection)");
      break;
    }
    err = hand_over(l, s, fd, hash);
    if (err == 0)
      return;
    if (err == UV_EMFILE) {
      dispatch_pause(l->core, "out of file descriptors (the master cannot "
                              "pass a connection on)");
      break;
    }
    /* A channel that cannot take it is ending; its worker is leaving. */
    lc__dispatch_worker_gone(s->w);
  }
  if (hold(l, fd, hash) != 0) {
    if (lc__log_due(&l->core->fds_logged_ms, 1000))
      lc__log(LC__LOG_WARN, "listener %s: no worker to take a connection and "
              "%d already waiting; closing it", l->key, HELD_MAX);
    close(fd);
  }
}

static void on_acceptable(uv_poll_t *handle, int status, int events);

static void listener_poll(lc__listener *l, int on) {
  if (on && l->core->dispatch->paused)
    return; /* the pause timer turns it back on */
  if (!l->has_poll || l->polling == on)
    return;
  l->polling = on;
  if (on)
    uv_poll_start(&l->poll, UV_READABLE, on_acceptable);
  else
    uv_poll_stop(&l->poll);
}

/* Gives held connections to subscribers, then accepts again. */
static void listener_resume(lc__listener *l) {
  lc__held *held = l->held;
  size_t n = l->nheld, i;

  if (l->nsubs == 0)
    return;
  /* Routing may hold some again, in a new array. */
  l->held = NULL;
  l->nheld = l->cap_held = 0;
  for (i = 0; i < n; i++)
    route(l, held[i].fd, held[i].client_hash);
  free(held);
  listener_poll(l, 1);
}

static void on_pause_over(uv_timer_t *timer) {
  lc__dispatch *d = ((struct lc__pause *)timer->data)->core->dispatch;
  lc__listener *l, *next;

  d->paused = 0;
  for (l = d->listeners; l != NULL; l = next) {
    next = l->next;
    listener_resume(l); /* may pause again */
  }
}

static void pause_owner_close(uv_handle_t *handle) { uv_close(handle, NULL); }

/*
 * Out of descriptors (ours, or every worker's), or too many connections
 * waiting already: stop accepting for PAUSE_MS; clients wait in the
 * backlog, connections already accepted wait in the master. Said (why) at
 * most once a second.
 */
static void dispatch_pause(lc__core *core, const char *why) {
  lc__dispatch *d = core->dispatch;
  lc__listener *l;

  if (d->paused)
    return;
  d->paused = 1;
  for (l = d->listeners; l != NULL; l = l->next)
    listener_poll(l, 0);
  if (lc__log_due(&core->fds_logged_ms, 1000))
    lc__log(LC__LOG_WARN, "%s: accepting again in %d ms", why, PAUSE_MS);
  if (!d->pause.init) {
    d->pause.init = 1;
    d->pause.owner.close = pause_owner_close;
    d->pause.core = core;
    uv_timer_init(&core->loop, &d->pause.timer);
    d->pause.timer.data = &d->pause;
    uv_unref((uv_handle_t *)&d->pause.timer);
  }
  uv_timer_start(&d->pause.timer, on_pause_over, PAUSE_MS, 0);
}

/* Accepts and routes up to max waiting connections. */
static void accept_batch(lc__listener *l, int max) {
  struct sockaddr_storage ss;
  socklen_t len;
  int i, fd;

  for (i = 0; i < max; i++) {
    if (l->nsubs == 0) {
      listener_poll(l, 0); /* clients wait in the backlog */
      return;
    }
    if (l->core->dispatch->paused)
      return; /* out of descriptors: they wait in the backlog too */
    if (l->nheld >= HELD_MAX / 2) {
      /* Enough wait in the master already: the rest wait in the backlog. */
      dispatch_pause(l->core, "too many connections wait for a worker");
      return;
    }
    len = sizeof(ss);
    fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
                 SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE)
        dispatch_pause(l->core, "out of file descriptors (accept)");
      else if (errno != EAGAIN && errno != EWOULDBLOCK)
        lc__log(LC__LOG_ERROR, "listener %s: accept: %s", l->key,
                strerror(errno));
      return;
    }
    route(l, fd, l->sched == LC__SCHED_STICKY ? client_hash(&ss) : 0);
  }
}

static void on_acceptable(uv_poll_t *handle, int status, int events) {
  lc__listener *l = handle->data;

  (void)events;
  if (status < 0) {
    lc__log(LC__LOG_ERROR, "listener %s: %s", l->key, uv_strerror(status));
    return;
  }
  accept_batch(l, ACCEPTS_PER_WAKEUP);
}

/* Listening ------------------------------------------------------------------ */

/*
 * A socket passed at start (socket activation, or a binary upgrade) bound to
 * the address asked for: taken instead of binding, so the port never closed.
 * UV_ENOENT when there is none.
 */
static int listener_take_passed(lc__core *core, lc__listener *l,
                                const lc__control *req) {
  int reuseport, listening;
  int fd = lc__activation_take(core, req->addr, req->port, &reuseport,
                               &listening);

  if (fd < 0)
    return UV_ENOENT;
  if (l->sched == LC__SCHED_REUSEPORT && !reuseport) {
    /* Workers could not bind their own sockets beside it: they share it. */
    lc__log(LC__LOG_INFO, "listener %s: the passed socket has no "
            "SO_REUSEPORT: workers accept on it (policy none)", l->key);
    l->sched = LC__SCHED_NONE;
  }
  if (l->sched != LC__SCHED_REUSEPORT && !listening &&
      listen(fd, req->backlog > 0 ? (int)req->backlog : 511) != 0) {
    int err = uv_translate_sys_error(errno);
    close(fd);
    return err;
  }
  l->fd = fd;
  if (lc__listen_socket_port(fd, &l->port) != 0)
    l->port = req->port;
  return 0;
}

static lc__listener *listener_open(lc__core *core, const lc__control *req,
                                   const char *key, int *err) {
  lc__listener *l = calloc(1, sizeof(*l));
  int flags = 0;
  struct sockaddr_storage ss;

  if (l == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  l->owner.close = listener_owner_close;
  l->core = core;
  l->fd = -1;
  l->sched = core->sched;
  l->id = core->dispatch->next_id++;
  l->flags = req->flags;
  snprintf(l->key, sizeof(l->key), "%s", key);
  snprintf(l->host, sizeof(l->host), "%s", req->addr);
  l->asked_port = req->port;
  if (req->flags & LC__LISTEN_IPV6ONLY)
    flags |= LC__SOCK_IPV6ONLY;
  if (l->sched == LC__SCHED_REUSEPORT)
    flags |= LC__SOCK_REUSEPORT | LC__SOCK_NO_LISTEN;
  *err = listener_take_passed(core, l, req);
  if (*err == UV_ENOENT)
    *err = lc__listen_socket(req->addr, req->port, (int)req->backlog, flags,
                             &l->fd, &l->port);
  if (*err) {
    free(l);
    return NULL;
  }
  if (lc__resolve(req->addr, l->port, &ss) == 0)
    lc__sockaddr_ip(&ss, l->addr, sizeof(l->addr));
  if (l->sched == LC__SCHED_RR || l->sched == LC__SCHED_STICKY) {
    *err = uv_poll_init(&core->loop, &l->poll, l->fd);
    if (*err) {
      listener_free(l);
      return NULL;
    }
    l->poll.data = l;
    l->has_poll = 1;
  }
  l->next = core->dispatch->listeners;
  core->dispatch->listeners = l;
  lc__dispatch_update_refs(core);
  return l;
}

static void reply(lc__worker *w, const lc__control *req, int status,
                  const lc__listener *l) {
  lc__control c;

  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_LISTEN_REPLY;
  c.server_id = req->server_id;
  c.status = status;
  if (l != NULL) {
    c.port = l->port;
    c.value = (uint64_t)l->sched;
    snprintf(c.addr, sizeof(c.addr), "%s", l->addr);
  }
  lc__channel_send_control(&w->channel, &c, -1);
}

/* Sends a subscriber of a none/reuseport listener its socket to accept on. */
static int send_listener_socket(lc__listener *l, lc__worker *w,
                                uint32_t server_id) {
  lc__control c;
  int fd, err;

  if (l->sched == LC__SCHED_NONE) {
    fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
      return uv_translate_sys_error(errno);
  } else {
    int flags = LC__SOCK_REUSEPORT;
    if (l->flags & LC__LISTEN_IPV6ONLY)
      flags |= LC__SOCK_IPV6ONLY;
    err = lc__listen_socket(l->addr, l->port, 511, flags, &fd, NULL);
    if (err)
      return err;
  }
  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_LISTENER;
  c.server_id = server_id;
  c.value = l->id;
  return lc__channel_send_control(&w->channel, &c, fd);
}

void lc__dispatch_listen(lc__worker *w, const lc__control *req) {
  lc__core *core = w->core;
  char key[96];
  lc__listener *l;
  size_t i;
  int err = 0;

  if (w->state >= LC__W_DISCONNECTING) {
    reply(w, req, UV_ECANCELED, NULL);
    return;
  }
  snprintf(key, sizeof(key), "%s:%d", req->addr, req->port);
  l = find_listener(core, key);
  if (l == NULL)
    l = listener_open(core, req, key, &err);
  if (l == NULL) {
    lc__log(LC__LOG_WARN, "worker %d: cannot listen on %s: %s", w->id, key,
            uv_strerror(err));
    reply(w, req, err, NULL);
    return;
  }
  for (i = 0; i < l->nsubs; i++)
    if (l->subs[i].w == w && l->subs[i].server_id == req->server_id)
      break;
  if (i == l->nsubs) {
    if (l->nsubs == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 8;
      lc__sub *p = realloc(l->subs, cap * sizeof(*p));
      if (p == NULL) {
        reply(w, req, UV_ENOMEM, NULL);
        return;
      }
      l->subs = p;
      l->cap = cap;
    }
    l->subs[l->nsubs].w = w;
    l->subs[l->nsubs].server_id = req->server_id;
    l->subs[l->nsubs].full_until_ms = 0;
    l->nsubs++;
  }
  reply(w, req, 0, l);
  if (l->sched == LC__SCHED_NONE || l->sched == LC__SCHED_REUSEPORT) {
    err = send_listener_socket(l, w, req->server_id);
    if (err)
      lc__log(LC__LOG_ERROR, "worker %d: cannot pass %s: %s", w->id, key,
              uv_strerror(err));
  } else {
    listener_resume(l);
  }
}

/* Removes w's subscriptions (all of them, or only server_id's). A listener
 * left with no subscriber closes (close_empty) or stops accepting. */
static void remove_subs(lc__worker *w, int all, uint32_t server_id,
                        int close_empty) {
  lc__core *core = w->core;
  lc__listener *l, *next;
  size_t i;
  int removed;

  if (core->dispatch == NULL)
    return;
  for (l = core->dispatch->listeners; l != NULL; l = next) {
    next = l->next;
    removed = 0;
    for (i = 0; i < l->nsubs;) {
      if (l->subs[i].w == w && (all || l->subs[i].server_id == server_id)) {
        l->subs[i] = l->subs[--l->nsubs];
        removed = 1;
        continue;
      }
      i++;
    }
    if (removed && l->nsubs == 0) {
      if (close_empty)
        listener_close(core, l);
      else
        listener_poll(l, 0);
    }
  }
}

void lc__dispatch_unlisten(lc__worker *w, uint32_t server_id) {
  /* The app closed this server: with no one else on it, the port goes. */
  remove_subs(w, 0, server_id, 1);
}

void lc__dispatch_worker_gone(lc__worker *w) {
  /* A crash or a drain: the port stays, for a replacement to come. */
  remove_subs(w, 1, 0, 0);
}

void lc__dispatch_unsent(lc__worker *w, const lc__control *c, int fd) {
  (void)w;
  (void)c;
  /* A copy: the original is in flight and goes elsewhere once the channel
   * has ended (lc__dispatch_channel_closed). */
  close(fd);
}

/* Takes the in-flight entry for ticket out of w's list; its fd, or -1. */
static int untrack(lc__worker *w, uint64_t ticket, lc__inflight *out) {
  size_t i;

  for (i = 0; i < w->ninflight; i++) {
    if (w->inflight[i].ticket == ticket) {
      *out = w->inflight[i];
      w->inflight[i] = w->inflight[--w->ninflight];
      return out->fd;
    }
  }
  return -1;
}

/* A connection that did not reach a worker after all: to another one. */
static void reroute(lc__core *core, const lc__inflight *e) {
  lc__listener *l = core->dispatch ? find_listener_id(core, e->listener) : NULL;

  if (l == NULL) {
    close(e->fd);
    return;
  }
  route(l, e->fd, e->hash);
  listener_poll(l, l->nsubs > 0);
}

/* The worker is out of descriptors: it gets no connection for a moment. */
static void worker_full(lc__worker *w) {
  uint64_t until = uv_now(&w->core->loop) + PAUSE_MS;
  lc__listener *l;
  size_t i;

  for (l = w->core->dispatch->listeners; l != NULL; l = l->next)
    for (i = 0; i < l->nsubs; i++)
      if (l->subs[i].w == w)
        l->subs[i].full_until_ms = until;
}

void lc__dispatch_accepted(lc__worker *w, uint64_t ticket, int status) {
  lc__inflight e;

  if (untrack(w, ticket, &e) < 0)
    return;
  if (status == 0) {
    close(e.fd); /* the worker's copy is the connection now */
    return;
  }
  if (status == UV_EMFILE || status == UV_ENFILE)
    worker_full(w);
  reroute(w->core, &e);
}

void lc__dispatch_channel_closed(lc__worker *w) {
  lc__inflight e;

  lc__dispatch_worker_gone(w);
  while (w->ninflight > 0) {
    e = w->inflight[--w->ninflight];
    reroute(w->core, &e);
  }
}

void lc__dispatch_update_refs(lc__core *core) {
  lc__listener *l;
  int alive = core->sup != NULL && core->sup->alive > 0;

  if (core->dispatch == NULL)
    return;
  for (l = core->dispatch->listeners; l != NULL; l = l->next) {
    if (!l->has_poll)
      continue;
    if (alive)
      uv_ref((uv_handle_t *)&l->poll);
    else
      uv_unref((uv_handle_t *)&l->poll);
  }
}

void lc__dispatch_stop(lc__core *core) {
  lc__listener *l;

  if (core->dispatch == NULL)
    return;
  while ((l = core->dispatch->listeners) != NULL) {
    /* Connections the kernel already completed are routed, not reset. */
    if (l->has_poll && l->nsubs > 0)
      accept_batch(l, 1 << 20);
    listener_close(core, l);
  }
}

int lc__dispatch_fds(lc__core *core, int *fds, char (*names)[96], int max) {
  lc__listener *l;
  int n = 0;

  for (l = core->dispatch ? core->dispatch->listeners : NULL; l && n < max;
       l = l->next) {
    if (l->fd >= 0) {
      lc__activation_name(l->host, l->asked_port, names[n], 96);
      fds[n++] = l->fd;
    }
  }
  return n;
}
