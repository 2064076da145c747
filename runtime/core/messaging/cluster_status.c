/*
 * cluster_status.c - a cluster's masters registered in Redis, and
 * `luacluster status --cluster` (see cluster_redis.h for the names).
 *
 * Every LC__CLUSTER_REFRESH_MS a master writes its own status (the JSON
 * and the table `luacluster status` prints; a script-mode master, which
 * has no control socket, the same columns it knows) to its hash, renews
 * the hash's expiry and adds its name to the cluster's set, in one
 * MULTI/EXEC. A master that stops renewing it drops out LC__CLUSTER_TTL_MS
 * later; one that stops cleanly removes itself at once.
 *
 * `status --cluster` asks a managed master over its control socket; the
 * master reads the set, then every host's hash (the commands go out in
 * one write), and answers with the hosts sorted by name. A name whose hash
 * has expired is taken out of the set on the way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_int.h"
#include "manager.h"
#include "supervisor.h"

/* JSON and text ------------------------------------------------------------------ */

static void json_string(lc__buf *out, const char *s) {
  char esc[8];

  lc__buf_puts(out, "\"");
  for (; *s != '\0'; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\';
      esc[1] = (char)ch;
      lc__buf_append(out, esc, 2);
    } else if (ch < 0x20) {
      snprintf(esc, sizeof(esc), "\\u%04x", ch);
      lc__buf_puts(out, esc);
    } else {
      lc__buf_append(out, s, 1);
    }
  }
  lc__buf_puts(out, "\"");
}

static uint64_t wall_ms(void) {
  uv_timeval64_t tv;

  if (uv_gettimeofday(&tv) != 0)
    return 0;
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* A script-mode master's status: what its worker table knows. */
static void script_status(lc__core *core, int json, lc__buf *out) {
  uint64_t now = uv_now(&core->loop);
  lc__worker *w;
  char row[512];
  int first = 1;

  if (json) {
    snprintf(row, sizeof(row), "{\"master\":{\"pid\":%d,\"script\":",
             (int)getpid());
    lc__buf_puts(out, row);
    json_string(out, core->script);
    snprintf(row, sizeof(row), ",\"uptime_ms\":%llu},\"workers\":[",
             (unsigned long long)((uv_hrtime() - core->start_ns) / 1000000));
    lc__buf_puts(out, row);
  } else {
    snprintf(row, sizeof(row), "master pid %d, %s (script mode)\n%-6s %-8s "
             "%-14s %9s %10s\n", (int)getpid(), core->script, "id", "pid",
             "state", "uptime", "requests");
    lc__buf_puts(out, row);
  }
  for (w = core->sup->workers; w != NULL; w = w->next) {
    if (w->dead)
      continue;
    if (json)
      snprintf(row, sizeof(row), "%s{\"id\":%d,\"pid\":%d,\"state\":\"%s\","
               "\"uptime_ms\":%llu,\"requests\":%llu}", first ? "" : ",",
               w->id, w->pid, lc__worker_state_name(w->state),
               (unsigned long long)(now - w->started_ms),
               (unsigned long long)w->requests);
    else
      snprintf(row, sizeof(row), "%-6d %-8d %-14s %8.1fs %10llu\n", w->id,
               w->pid, lc__worker_state_name(w->state),
               (double)(now - w->started_ms) / 1000.0,
               (unsigned long long)w->requests);
    lc__buf_puts(out, row);
    first = 0;
  }
  if (json)
    lc__buf_puts(out, "]}");
}

static void host_status(lc__cluster *c, int json, lc__buf *out) {
  if (c->core->manager != NULL)
    lc__control_status(c->core->manager, json, out);
  else
    script_status(c->core, json, out);
}

/* What this master writes to its hash's "json" field. */
static void registration_json(lc__cluster *c, lc__buf *out, uint64_t now) {
  char num[64];

  lc__buf_puts(out, "{\"host\":");
  json_string(out, c->host);
  lc__buf_puts(out, ",\"hostname\":");
  json_string(out, c->hostname);
  lc__buf_puts(out, ",\"cluster\":");
  json_string(out, c->name);
  snprintf(num, sizeof(num), ",\"pid\":%d,\"mode\":\"%s\",\"updated_ms\":%llu",
           (int)getpid(), c->core->manager ? "managed" : "script",
           (unsigned long long)now);
  lc__buf_puts(out, num);
  lc__buf_puts(out, ",\"status\":");
  host_status(c, 1, out);
  lc__buf_puts(out, "}");
}

/* Registration --------------------------------------------------------------------- */

static void on_queued(lc__redis *r, int status, const lc__redis_reply *reply,
                      void *data) {
  (void)r;
  (void)status;
  (void)reply;
  (void)data;
}

static void on_registered(lc__redis *r, int status,
                          const lc__redis_reply *reply, void *data) {
  lc__cluster *c = data;

  (void)r;
  c->registering = 0;
  if (status == 0 && reply->type == LC__REDIS_ERROR &&
      !c->core->shutting_down)
    lc__log(LC__LOG_WARN, "cluster: Redis at %s refused the registration of "
            "%s: %s", c->where, c->host, reply->str);
}

/* "<prefix><what><name>" into out. */
static void key(lc__cluster *c, lc__buf *out, const char *what,
                const char *name, size_t len) {
  lc__buf_reset(out);
  lc__buf_puts(out, c->prefix);
  lc__buf_puts(out, what);
  lc__buf_append(out, name, len);
}

static int command(lc__cluster *c, int argc, const char **argv,
                   const size_t *lens, lc__redis_cb cb, void *data) {
  return lc__redis_command_argv(c->pub, argc, argv, lens, cb, data);
}

void lc__cluster_register(lc__cluster *c) {
  lc__buf json = LC__BUF_INIT, text = LC__BUF_INIT, k = LC__BUF_INIT,
          set = LC__BUF_INIT;
  char updated[32], ttl[32];
  uint64_t now = wall_ms();
  const char *argv[8];
  size_t lens[8];

  if (c->pub == NULL || c->registering || c->leaving ||
      lc__redis_state(c->pub) != LC__REDIS_READY)
    return;
  registration_json(c, &json, now);
  host_status(c, 0, &text);
  key(c, &k, "host:", c->host, strlen(c->host));
  key(c, &set, "hosts", "", 0);
  snprintf(updated, sizeof(updated), "%llu", (unsigned long long)now);
  snprintf(ttl, sizeof(ttl), "%d", LC__CLUSTER_TTL_MS);
  argv[0] = "MULTI";
  command(c, 1, argv, NULL, on_queued, c);
  argv[0] = "HSET";
  argv[1] = lc__buf_data(&k);
  lens[1] = lc__buf_size(&k);
  argv[2] = "json";
  argv[3] = lc__buf_data(&json);
  lens[3] = lc__buf_size(&json);
  argv[4] = "text";
  argv[5] = lc__buf_data(&text);
  lens[5] = lc__buf_size(&text);
  argv[6] = "updated";
  argv[7] = updated;
  lens[0] = 4;
  lens[2] = 4;
  lens[4] = 4;
  lens[6] = 7;
  lens[7] = strlen(updated);
  command(c, 8, argv, lens, on_queued, c);
  argv[0] = "PEXPIRE";
  lens[0] = 7;
  argv[2] = ttl;
  lens[2] = strlen(ttl);
  command(c, 3, argv, lens, on_queued, c);
  argv[0] = "SADD";
  lens[0] = 4;
  argv[1] = lc__buf_data(&set);
  lens[1] = lc__buf_size(&set);
  argv[2] = c->host;
  lens[2] = strlen(c->host);
  command(c, 3, argv, lens, on_queued, c);
  argv[0] = "EXEC";
  if (command(c, 1, argv, NULL, on_registered, c) == 0)
    c->registering = 1;
  lc__buf_free(&json);
  lc__buf_free(&text);
  lc__buf_free(&k);
  lc__buf_free(&set);
}

void lc__cluster_leave(lc__core *core) {
  lc__cluster *c = core->cluster;
  lc__buf k = LC__BUF_INIT;
  const char *argv[3];
  size_t lens[3];

  if (c == NULL || c->leaving)
    return;
  c->leaving = 1;
  if (c->timer_open)
    uv_timer_stop(&c->timer);
  if (c->pub == NULL || lc__redis_state(c->pub) != LC__REDIS_READY)
    return;
  key(c, &k, "hosts", "", 0);
  argv[0] = "SREM";
  argv[1] = lc__buf_data(&k);
  argv[2] = c->host;
  lens[0] = 4;
  lens[1] = lc__buf_size(&k);
  lens[2] = strlen(c->host);
  command(c, 3, argv, lens, on_queued, c);
  key(c, &k, "host:", c->host, strlen(c->host));
  argv[0] = "DEL";
  lens[0] = 3;
  lens[1] = lc__buf_size(&k);
  argv[1] = lc__buf_data(&k);
  command(c, 2, argv, lens, on_queued, c);
  lc__buf_free(&k);
}

static void on_refresh(uv_timer_t *timer) {
  lc__cluster_register(timer->data);
}

static void on_timer_closed(uv_handle_t *handle) {
  lc__cluster *c = handle->data;

  c->timer_open = 0;
}

static void timer_owner_close(uv_handle_t *handle) {
  uv_close(handle, on_timer_closed);
}

int lc__cluster_registry_start(lc__cluster *c) {
  c->owner.close = timer_owner_close;
  uv_timer_init(&c->core->loop, &c->timer);
  c->timer.data = c;
  c->timer_open = 1;
  uv_timer_start(&c->timer, on_refresh, LC__CLUSTER_REFRESH_MS,
                 LC__CLUSTER_REFRESH_MS);
  uv_unref((uv_handle_t *)&c->timer);
  return 0;
}

/* status --cluster ------------------------------------------------------------------ */

typedef struct query_row {
  lc__cluster_query *q;
  char *host;
  char *value;       /* json or text; NULL: the host is gone */
  size_t value_len;
  uint64_t updated;
} query_row;

struct lc__cluster_query {
  lc__cluster *c;
  int json;
  lc__cluster_status_cb done; /* NULL once the asker went away */
  void *arg;
  query_row *rows;
  size_t n, got;
  lc__cluster_query *next;
};

static void query_free(lc__cluster_query *q) {
  lc__cluster_query **pp;
  size_t i;

  for (pp = &q->c->queries; *pp != NULL; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      break;
    }
  for (i = 0; i < q->n; i++) {
    free(q->rows[i].host);
    free(q->rows[i].value);
  }
  free(q->rows);
  free(q);
}

static void query_finish(lc__cluster_query *q, int ok, const char *text) {
  if (q->done != NULL && !q->c->core->shutting_down)
    q->done(q->arg, ok, text);
  query_free(q);
}

static int row_cmp(const void *a, const void *b) {
  return strcmp(((const query_row *)a)->host, ((const query_row *)b)->host);
}

static char *copy(const char *s, size_t len) {
  char *p = malloc(len + 1);

  if (p != NULL) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

/* This master's own row says what is true now, not at its last renewal. */
static void own_row(lc__cluster_query *q, uint64_t now) {
  lc__buf fresh = LC__BUF_INIT;
  size_t i;

  for (i = 0; i < q->n; i++) {
    query_row *row = &q->rows[i];
    if (strcmp(row->host, q->c->host) != 0)
      continue;
    if (q->json)
      registration_json(q->c, &fresh, now);
    else
      host_status(q->c, 0, &fresh);
    free(row->value);
    row->value_len = lc__buf_size(&fresh);
    row->value = copy(lc__buf_data(&fresh), row->value_len);
    row->updated = now;
  }
  lc__buf_free(&fresh);
}

/* Every host's answer is in: the reply, and the gone ones out of the set. */
static void query_compose(lc__cluster_query *q) {
  lc__cluster *c = q->c;
  lc__buf out = LC__BUF_INIT, set = LC__BUF_INIT;
  uint64_t now = wall_ms();
  const char *argv[3];
  size_t lens[3], i, live = 0;
  char line[512];

  qsort(q->rows, q->n, sizeof(*q->rows), row_cmp);
  own_row(q, now);
  for (i = 0; i < q->n; i++)
    live += q->rows[i].value != NULL;
  if (q->json) {
    lc__buf_puts(&out, "{\"cluster\":");
    json_string(&out, c->name);
    lc__buf_puts(&out, ",\"hosts\":[");
  } else {
    snprintf(line, sizeof(line), "cluster %s: %zu host%s (Redis at %s)\n",
             c->name, live, live == 1 ? "" : "s", c->where);
    lc__buf_puts(&out, line);
  }
  key(c, &set, "hosts", "", 0);
  for (i = 0; i < q->n; i++) {
    query_row *row = &q->rows[i];
    if (row->value == NULL) {
      argv[0] = "SREM";
      argv[1] = lc__buf_data(&set);
      argv[2] = row->host;
      lens[0] = 4;
      lens[1] = lc__buf_size(&set);
      lens[2] = strlen(row->host);
      command(c, 3, argv, lens, on_queued, c);
      continue;
    }
    if (q->json) {
      lc__buf_append(&out, row->value, row->value_len);
      lc__buf_puts(&out, --live > 0 ? "," : "");
      continue;
    }
    snprintf(line, sizeof(line), "\nhost %s%s, updated %.1f s ago\n",
             row->host, strcmp(row->host, c->host) == 0 ? " (this one)" : "",
             now > row->updated ? (double)(now - row->updated) / 1000.0 : 0.0);
    lc__buf_puts(&out, line);
    lc__buf_append(&out, row->value, row->value_len);
  }
  lc__buf_puts(&out, q->json ? "]}" : "");
  lc__buf_append(&out, "", 1);
  query_finish(q, 1, lc__buf_data(&out));
  lc__buf_free(&out);
  lc__buf_free(&set);
}

/* HMGET host:<name> json|text updated */
static void on_row(lc__redis *r, int status, const lc__redis_reply *reply,
                   void *data) {
  query_row *row = data;
  lc__cluster_query *q = row->q;

  (void)r;
  if (status == 0 && reply->type == LC__REDIS_ARRAY && reply->len == 2 &&
      reply->element[0]->type == LC__REDIS_STRING) {
    row->value = copy(reply->element[0]->str, reply->element[0]->len);
    row->value_len = reply->element[0]->len;
    if (reply->element[1]->type == LC__REDIS_STRING)
      row->updated = strtoull(reply->element[1]->str, NULL, 10);
  }
  if (++q->got == q->n)
    query_compose(q);
}

/* SMEMBERS hosts: then every host's hash. */
static void on_members(lc__redis *r, int status, const lc__redis_reply *reply,
                       void *data) {
  lc__cluster_query *q = data;
  lc__cluster *c = q->c;
  lc__buf k = LC__BUF_INIT;
  const char *argv[4];
  size_t lens[4], i, n;
  char why[400];

  (void)r;
  if (status != 0 || reply->type != LC__REDIS_ARRAY) {
    snprintf(why, sizeof(why), "Redis at %s: %s", c->where,
             reply && reply->str ? reply->str : "an unexpected reply");
    query_finish(q, 0, why);
    return;
  }
  n = reply->len;
  if (n == 0) {
    snprintf(why, sizeof(why), "cluster %s: 0 hosts (Redis at %s)\n", c->name,
             c->where);
    query_finish(q, 1, why);
    return;
  }
  q->rows = calloc(n, sizeof(*q->rows));
  if (q->rows == NULL) {
    query_finish(q, 0, "out of memory");
    return;
  }
  for (i = 0; i < n; i++) {
    q->rows[i].q = q;
    q->rows[i].host = copy(reply->element[i]->str ? reply->element[i]->str : "",
                           reply->element[i]->str ? reply->element[i]->len : 0);
  }
  q->n = n;
  argv[0] = "HMGET";
  argv[2] = q->json ? "json" : "text";
  argv[3] = "updated";
  lens[0] = 5;
  lens[2] = 4;
  lens[3] = 7;
  for (i = 0; i < n; i++) {
    key(c, &k, "host:", q->rows[i].host ? q->rows[i].host : "",
        q->rows[i].host ? strlen(q->rows[i].host) : 0);
    argv[1] = lc__buf_data(&k);
    lens[1] = lc__buf_size(&k);
    if (q->rows[i].host == NULL ||
        command(c, 4, argv, lens, on_row, &q->rows[i]) != 0)
      q->got++; /* counted as gone */
  }
  lc__buf_free(&k);
  if (q->got == q->n)
    query_compose(q);
}

void lc__cluster_status(lc__core *core, int json, lc__cluster_status_cb done,
                        void *arg) {
  lc__cluster *c = core->cluster;
  lc__cluster_query *q;
  lc__buf k = LC__BUF_INIT;
  const char *argv[2];
  size_t lens[2];
  char why[400];

  if (c == NULL) {
    done(arg, 0, "this master is not in a cluster (it runs without --redis)");
    return;
  }
  if (c->pub == NULL || lc__redis_state(c->pub) != LC__REDIS_READY) {
    snprintf(why, sizeof(why), "Redis at %s is not reachable%s%s", c->where,
             c->pub && lc__redis_last_error(c->pub)[0] ? ": " : "",
             c->pub ? lc__redis_last_error(c->pub) : "");
    done(arg, 0, why);
    return;
  }
  q = calloc(1, sizeof(*q));
  if (q == NULL) {
    done(arg, 0, "out of memory");
    return;
  }
  q->c = c;
  q->json = json;
  q->done = done;
  q->arg = arg;
  q->next = c->queries;
  c->queries = q;
  key(c, &k, "hosts", "", 0);
  argv[0] = "SMEMBERS";
  lens[0] = 8;
  argv[1] = lc__buf_data(&k);
  lens[1] = lc__buf_size(&k);
  if (command(c, 2, argv, lens, on_members, q) != 0)
    query_finish(q, 0, "cannot ask Redis");
  lc__buf_free(&k);
}

void lc__cluster_status_forget(lc__core *core, void *arg) {
  lc__cluster_query *q;

  if (core->cluster == NULL)
    return;
  for (q = core->cluster->queries; q != NULL; q = q->next)
    if (q->arg == arg)
      q->done = NULL;
}

void lc__cluster_status_free(lc__cluster *c) {
  while (c->queries != NULL)
    query_free(c->queries);
}
