/*
 * redis_command.c - a client's commands: issuing, the one write per loop
 * iteration, replies matched in order, deadlines (redis.h).
 *
 * Commands live in one ring, in the order they were issued; the first
 * ring.nsent of them were written and wait for their replies, the rest
 * wait in the output buffer (their bytes, in the same order) for the
 * flusher. The flusher is an idle handle rather than a prepare handle:
 * Lua runs in prepare callbacks too (the channel's write callbacks), and a
 * command issued there would otherwise wait for the next wake-up of the
 * loop; an active idle handle keeps the loop from blocking until it ran.
 *
 * Deadlines: one timer per client, armed for the oldest command's deadline
 * when it fires (not on every command). A command past its deadline is
 * called back with UV_ETIMEDOUT; if it was written it stays in the ring as
 * a tombstone (cb NULL) until its reply comes, and is dropped then. If it
 * was not written (no connection yet, or the connection's set-up still
 * going) its bytes leave the buffer: it is never sent. A tombstone at the head that waits another command_timeout_ms
 * means the connection is broken: it is replaced.
 */
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"

/* The ring -------------------------------------------------------------------- */

lc__redis_cmd *lc__redis_ring_at(lc__redis_ring *q, size_t i) {
  return &q->items[(q->head + i) % q->cap];
}

static int ring_grow(lc__redis_ring *q) {
  size_t cap = q->cap ? q->cap * 2 : 64, i;
  lc__redis_cmd *items = malloc(cap * sizeof(*items));

  if (items == NULL)
    return UV_ENOMEM;
  for (i = 0; i < q->count; i++)
    items[i] = *lc__redis_ring_at(q, i);
  free(q->items);
  q->items = items;
  q->head = 0;
  q->cap = cap;
  return 0;
}

int lc__redis_ring_push(lc__redis_ring *q, const lc__redis_cmd *c, int front) {
  if (q->count == q->cap && ring_grow(q) != 0)
    return UV_ENOMEM;
  if (front) {
    q->head = (q->head + q->cap - 1) % q->cap;
    q->items[q->head] = *c;
  } else {
    q->items[(q->head + q->count) % q->cap] = *c;
  }
  q->count++;
  return 0;
}

void lc__redis_ring_pop(lc__redis_ring *q, lc__redis_cmd *out) {
  *out = q->items[q->head];
  q->head = (q->head + 1) % q->cap;
  q->count--;
  if (q->nsent > 0)
    q->nsent--;
}

/* Removes the i-th command into *out: one just behind the head (what is
 * ahead of it is a connection's few set-up commands), so the ones ahead
 * move up by one. */
static void ring_remove(lc__redis_ring *q, size_t i, lc__redis_cmd *out) {
  *out = *lc__redis_ring_at(q, i);
  for (; i > 0; i--)
    *lc__redis_ring_at(q, i) = *lc__redis_ring_at(q, i - 1);
  q->head = (q->head + 1) % q->cap;
  q->count--;
}

void lc__redis_ring_free(lc__redis_ring *q) {
  free(q->items);
  memset(q, 0, sizeof(*q));
}

/* Completion ------------------------------------------------------------------ */

void lc__redis_complete(lc__redis *r, lc__redis_cmd *c, int status,
                        const lc__redis_reply *reply) {
  lc__redis_reply why;
  lc__redis_cb cb = c->cb;

  if (c->kind != KIND_USER || cb == NULL)
    return;
  c->cb = NULL;
  if (--r->npending == 0)
    lc__redis_update_ref(r);
  if (status < 0) {
    memset(&why, 0, sizeof(why));
    why.type = LC__REDIS_ERROR;
    why.str = lc__redis_words(r, status);
    why.len = strlen(why.str);
    reply = &why;
  }
  cb(r, status, reply, c->data);
}

/* Reports a failure found while issuing, from the flusher. */
static int fail_later(lc__redis *r, lc__redis_cb cb, void *data, int status) {
  if (r->nfailed == r->failed_cap) {
    size_t cap = r->failed_cap ? r->failed_cap * 2 : 8;
    lc__redis_failure *f = realloc(r->failed, cap * sizeof(*f));
    if (f == NULL)
      return UV_ENOMEM;
    r->failed = f;
    r->failed_cap = cap;
  }
  r->failed[r->nfailed].cb = cb;
  r->failed[r->nfailed].data = data;
  r->failed[r->nfailed].status = status;
  r->nfailed++;
  if (r->npending++ == 0)
    lc__redis_update_ref(r);
  lc__redis_flush_soon(r);
  return 0;
}

static void run_failures(lc__redis *r) {
  lc__redis_cmd c;
  size_t i;

  /* A callback may add more: take them by index until none are left. */
  for (i = 0; i < r->nfailed && r->state != LC__REDIS_CLOSED; i++) {
    memset(&c, 0, sizeof(c));
    c.cb = r->failed[i].cb;
    c.data = r->failed[i].data;
    lc__redis_complete(r, &c, r->failed[i].status, NULL);
  }
  r->nfailed = 0;
}

void lc__redis_fail_sent(lc__redis *r, int err) {
  lc__redis_cmd c;

  while (r->ring.nsent > 0) {
    lc__redis_ring_pop(&r->ring, &c);
    lc__redis_complete(r, &c, err, NULL);
  }
}

void lc__redis_fail_all(lc__redis *r, int err) {
  r->ring.nsent = r->ring.count;
  lc__redis_fail_sent(r, err);
  lc__buf_reset(&r->out);
  run_failures(r);
}

/* Issuing ----------------------------------------------------------------------- */

/* Why a command would be refused now (0: it is taken). */
static int refusal(const lc__redis *r, size_t n) {
  if (r->quitting || r->state >= LC__REDIS_CLOSING)
    return UV_ECANCELED;
  if (r->state == LC__REDIS_READY)
    return 0;
  if (r->fatal)
    return r->fatal;
  if (r->opts.max_offline == 0)
    return r->last_err != 0 ? r->last_err : UV_ENOTCONN;
  if (r->ring.count - r->ring.nsent + n > r->opts.max_offline)
    return UV_ENOBUFS;
  return 0;
}

int lc__redis_can_queue(const lc__redis *r, size_t n) {
  return refusal(r, n) == 0;
}

int lc__redis_command_begin(lc__redis *r, int argc) {
  if (argc < 1)
    return UV_EINVAL;
  if (r->state == LC__REDIS_CLOSED)
    return UV_ECANCELED;
  r->building = lc__buf_size(&r->out) + 1;
  r->building_argc = argc;
  return lc__redis_encode_header(&r->out, argc);
}

void lc__redis_command_arg(lc__redis *r, const char *s, size_t len) {
  if (lc__redis_encode_arg(&r->out, s, len) == 0)
    r->building_argc--;
}

void lc__redis_command_abort(lc__redis *r) {
  if (r->building == 0)
    return;
  r->out.len = r->out.off + (r->building - 1);
  r->building = 0;
}

/* Takes the command just encoded (kind, expect) into the ring. */
static int take(lc__redis *r, lc__redis_cb cb, void *data, int kind,
                uint32_t expect, int sub) {
  size_t start = r->building - 1;
  lc__redis_cmd c;
  int err;

  r->building = 0;
  if (r->building_argc != 0) { /* an argument did not fit in memory */
    r->out.len = r->out.off + start;
    return UV_ENOMEM;
  }
  err = kind == KIND_USER ? refusal(r, 1) : 0;
  if (err) {
    r->out.len = r->out.off + start;
    return cb ? fail_later(r, cb, data, err) : 0;
  }
  memset(&c, 0, sizeof(c));
  c.cb = cb;
  c.data = data;
  c.kind = (uint8_t)kind;
  c.sub = (uint8_t)sub;
  c.expect = expect;
  c.bytes = lc__buf_size(&r->out) - start;
  if (r->opts.command_timeout_ms > 0 && kind != KIND_SETUP)
    c.deadline = uv_now(&r->core->loop) + r->opts.command_timeout_ms;
  if (lc__redis_ring_push(&r->ring, &c, 0) != 0) {
    r->out.len = r->out.off + start;
    return UV_ENOMEM;
  }
  r->stats.commands++;
  if (kind == KIND_USER && r->npending++ == 0)
    lc__redis_update_ref(r);
  if (c.deadline != 0 && !uv_is_active((uv_handle_t *)&r->timer))
    uv_timer_start(&r->timer, lc__redis_on_timer, r->opts.command_timeout_ms,
                   0);
  if (r->state == LC__REDIS_READY)
    lc__redis_flush_soon(r);
  return 0;
}

int lc__redis_command_end(lc__redis *r, lc__redis_cb cb, void *data) {
  if (r->building == 0)
    return UV_EINVAL;
  return take(r, cb, data, KIND_USER, 0, 0);
}

int lc__redis_command_argv(lc__redis *r, int argc, const char **argv,
                           const size_t *lens, lc__redis_cb cb, void *data) {
  int i, err = lc__redis_command_begin(r, argc);

  if (err) {
    lc__redis_command_abort(r);
    return err;
  }
  for (i = 0; i < argc; i++)
    lc__redis_command_arg(r, argv[i], lens ? lens[i] : strlen(argv[i]));
  return lc__redis_command_end(r, cb, data);
}

/* A subscription command from the API (redis_pubsub.c adds the names). */
int lc__redis_sub_command(lc__redis *r, const char *verb, int argc,
                          const char **names, const size_t *lens,
                          uint32_t expect, lc__redis_cb cb, void *data) {
  int i, err = lc__redis_command_begin(r, argc + 1);

  if (err) {
    lc__redis_command_abort(r);
    return err;
  }
  lc__redis_command_arg(r, verb, strlen(verb));
  for (i = 0; i < argc; i++)
    lc__redis_command_arg(r, names[i], lens[i]);
  return take(r, cb, data, KIND_USER, expect, 1);
}

int lc__redis_internal(lc__redis *r, int kind, int argc, const char **argv,
                       const size_t *lens, uint32_t expect) {
  int i, err = lc__redis_command_begin(r, argc);

  for (i = 0; err == 0 && i < argc; i++)
    lc__redis_command_arg(r, argv[i], lens[i]);
  if (err) {
    lc__redis_command_abort(r);
    return err;
  }
  return take(r, NULL, NULL, kind, expect, kind == KIND_RENEW);
}

int lc__redis_setup_add(lc__redis_setup *s, int kind, int argc,
                        const char **argv, const size_t *lens,
                        uint32_t expect) {
  lc__redis_cmd *c;
  int i, err;

  if (s->n == LC__ARRAY_SIZE(s->cmds))
    return UV_EINVAL;
  err = lc__redis_encode_header(&s->bytes, argc);
  for (i = 0; err == 0 && i < argc; i++)
    err = lc__redis_encode_arg(&s->bytes, argv[i], lens[i]);
  if (err)
    return err;
  c = &s->cmds[s->n++];
  memset(c, 0, sizeof(*c));
  c->kind = (uint8_t)kind;
  c->sub = kind == KIND_RENEW;
  c->expect = expect;
  return 0;
}

int lc__redis_setup_send(lc__redis *r, lc__redis_setup *s) {
  size_t i;
  int err = 0;

  /* Before every command that waits, in their order. */
  for (i = s->n; err == 0 && i > 0; i--) {
    err = lc__redis_ring_push(&r->ring, &s->cmds[i - 1], 1);
    if (err == 0)
      r->ring.nsent++;
  }
  if (err == 0)
    err = lc__conn_write(r->conn, lc__buf_data(&s->bytes),
                         lc__buf_size(&s->bytes));
  if (err == 0)
    r->stats.writes++;
  lc__buf_free(&s->bytes);
  return err;
}

/* Writing --------------------------------------------------------------------- */

int lc__redis_write_out(lc__redis *r) {
  int err;

  if (lc__buf_size(&r->out) == 0 || r->conn == NULL)
    return 0;
  err = lc__conn_write(r->conn, lc__buf_data(&r->out), lc__buf_size(&r->out));
  if (err)
    return err;
  r->stats.writes++;
  r->ring.nsent = r->ring.count;
  lc__buf_reset(&r->out);
  if (r->out.cap > 1024 * 1024)
    lc__buf_free(&r->out);
  return 0;
}

void lc__redis_flush_soon(lc__redis *r) {
  if (r->state < LC__REDIS_CLOSING)
    uv_idle_start(&r->flusher, lc__redis_on_flush);
}

void lc__redis_on_flush(uv_idle_t *idle) {
  lc__redis *r = idle->data;
  int err;

  uv_idle_stop(idle);
  if (r->nfailed > 0)
    run_failures(r);
  if (r->state != LC__REDIS_READY || r->conn == NULL)
    return;
  err = lc__redis_write_out(r);
  if (err)
    lc__redis_conn_reset(r, err, uv_strerror(err));
}

/* Replies ---------------------------------------------------------------------- */

static void on_reply(lc__redis *r, const lc__redis_reply *reply) {
  lc__redis_cmd *head, c;

  if (r->subscribed && lc__redis_pubsub_message(r, reply))
    return;
  if (r->ring.nsent == 0) {
    lc__redis_conn_reset(r, UV_EPROTO, "a reply no command asked for");
    return;
  }
  head = lc__redis_ring_at(&r->ring, 0);
  if (head->sub && lc__redis_pubsub_confirm(r, reply)) {
    if (--head->expect > 0)
      return;
  }
  lc__redis_ring_pop(&r->ring, &c);
  if (c.kind == KIND_SETUP) {
    lc__redis_setup_reply(r, &c, reply);
  } else if (c.kind == KIND_QUIT) {
    lc__conn_close(r->conn);
  } else if (c.kind == KIND_RENEW && reply->type == LC__REDIS_ERROR) {
    lc__log(LC__LOG_WARN, "redis %s:%d: renewing subscriptions: %s",
            r->opts.host, r->opts.port, reply->str);
  } else {
    lc__redis_complete(r, &c, 0, reply);
  }
}

void lc__redis_on_bytes(lc__redis *r, const char *data, size_t len) {
  lc__conn *conn = r->conn;
  const lc__redis_reply *reply;
  int n;

  if (lc__redis_parser_feed(r->parser, data, len) != 0) {
    lc__redis_conn_reset(r, UV_ENOMEM, "out of memory");
    return;
  }
  /* A callback may close the client or the connection: stop then. */
  while (r->conn == conn && !conn->closing) {
    n = lc__redis_parser_next(r->parser, &reply);
    if (n == 0)
      return;
    if (n < 0) {
      if (n == UV_EMSGSIZE && r->ring.nsent > 0) {
        lc__redis_cmd c;
        lc__redis_ring_pop(&r->ring, &c);
        lc__redis_complete(r, &c, UV_EMSGSIZE, NULL);
      }
      lc__redis_conn_reset(r, n, n == UV_EMSGSIZE
                                     ? "a reply over maxReplySize"
                                     : lc__redis_parser_error(r->parser));
      return;
    }
    r->stats.replies++;
    on_reply(r, reply);
  }
}

/* Deadlines --------------------------------------------------------------------- */

void lc__redis_arm_timer(lc__redis *r) {
  uint64_t now = uv_now(&r->core->loop), due = UINT64_MAX;
  size_t i;

  for (i = 0; i < r->ring.count; i++) {
    lc__redis_cmd *c = lc__redis_ring_at(&r->ring, i);
    if (c->kind != KIND_USER || c->deadline == 0)
      continue;
    if (c->cb != NULL) { /* the oldest live command */
      if (c->deadline < due)
        due = c->deadline;
      break;
    }
    if (i == 0 && r->ring.nsent > 0) /* when the connection counts as broken */
      due = c->deadline + r->opts.command_timeout_ms;
  }
  if (due == UINT64_MAX) {
    uv_timer_stop(&r->timer);
    return;
  }
  uv_timer_start(&r->timer, lc__redis_on_timer, due > now ? due - now : 0, 0);
}

void lc__redis_on_timer(uv_timer_t *timer) {
  lc__redis *r = timer->data;
  uint64_t now = uv_now(&r->core->loop);
  lc__redis_cmd *c, gone;
  size_t i = 0;

  while (i < r->ring.count && r->state < LC__REDIS_CLOSING) {
    c = lc__redis_ring_at(&r->ring, i);
    if (c->deadline == 0 || c->kind != KIND_USER) {
      i++;
      continue;
    }
    if (c->cb == NULL) { /* a tombstone */
      if (i == 0 && i < r->ring.nsent &&
          now >= c->deadline + r->opts.command_timeout_ms) {
        lc__redis_conn_reset(r, UV_ETIMEDOUT, "no reply for too long");
        return;
      }
      i++;
      continue;
    }
    if (now < c->deadline)
      break;
    if (i == r->ring.nsent) {
      /* Never written: it leaves the buffer (its bytes come first there)
       * and is not sent. Without a connection, say why there is none. */
      ring_remove(&r->ring, i, &gone);
      lc__buf_consume(&r->out, gone.bytes);
      lc__redis_complete(r, &gone,
                         r->conn == NULL && r->last_err != 0 ? r->last_err
                                                             : UV_ETIMEDOUT,
                         NULL);
      continue;
    }
    gone = *c;
    lc__redis_complete(r, &gone, UV_ETIMEDOUT, NULL);
    lc__redis_ring_at(&r->ring, i)->cb = NULL;
    i++;
  }
  if (r->state < LC__REDIS_CLOSING)
    lc__redis_arm_timer(r);
}
