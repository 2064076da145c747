/*
 * metrics.c - the managed master's Prometheus endpoint (--metrics
 * ADDR:PORT): GET /metrics answers in the text exposition format.
 *
 * The master runs no Lua, so this is the core's own HTTP server protocol
 * (http_server.c) on a core TCP server, with a callback table filled here.
 * What it shows comes from the worker table and the manager's slots; the
 * request counts and durations are what each worker's last heartbeat
 * reported (at most a second old), RSS and CPU are read from /proc at the
 * scrape, and IPC bytes are the master's end of each channel.
 *
 * Per worker, labelled slot (the instance, 0..N-1) and worker (its id):
 * luacluster_worker_requests_total, _requests_in_flight,
 * _request_duration_seconds (a histogram), _restarts_total (of the slot),
 * _resident_memory_bytes, _cpu_seconds_total, _ipc_sent_bytes_total,
 * _ipc_received_bytes_total, _start_time_seconds, and luacluster_worker_info
 * (pid and state as labels). For the master: luacluster_workers,
 * luacluster_master_start_time_seconds, luacluster_reloads_total. Per
 * shared dict (label dict): luacluster_shared_dict_capacity_bytes and
 * luacluster_shared_dict_free_bytes, read from the dict at the scrape.
 * Redis: per worker luacluster_worker_redis_clients and _clients_ready (from
 * its heartbeat), and the master's own (cluster messaging over --redis),
 * luacluster_master_redis_clients and _clients_ready.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_server.h"
#include "manager.h"
#include "sd_notify.h"
#include "shared_dicts.h"
#include "shdict.h"

struct lc__metrics {
  lc__http_server http; /* the server's settings and callbacks */
  lc__server *server;   /* owns this struct: freed with it */
  lc__manager *m;
  char host[64];
  int port; /* as asked (0: any) */
};

/* One worker as the metrics see it. */
typedef struct row {
  const lc__slot *slot; /* NULL for one retiring */
  const lc__worker *w;
  const lc__sample *sample;
} row;

static double wall_now(void) {
  struct timeval tv;

  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int collect(lc__manager *m, row *rows, int max) {
  lc__retiree *r;
  int i, n = 0;

  for (i = 0; i < m->nslots && n < max; i++) {
    lc__slot *slot = m->slots[i];
    if (slot->w != NULL && n < max)
      rows[n++] = (row){slot, slot->w, &slot->sample};
    if (slot->incoming != NULL && n < max)
      rows[n++] = (row){slot, slot->incoming, &slot->incoming_sample};
  }
  for (r = m->retirees; r != NULL && n < max; r = r->next)
    rows[n++] = (row){NULL, r->w, NULL};
  return n;
}

static void family(lc__buf *out, const char *name, const char *type,
                   const char *help) {
  char line[320];

  snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help,
           name, type);
  lc__buf_puts(out, line);
}

static void labels(const row *r, char *out, size_t size) {
  snprintf(out, size, "slot=\"%d\",worker=\"%d\"", r->w->instance, r->w->id);
}

typedef double (*value_fn)(const row *r, lc__manager *m);

static void per_worker(lc__buf *out, lc__manager *m, const row *rows, int n,
                       const char *name, const char *type, const char *help,
                       value_fn fn) {
  char line[320], l[96];
  int i;

  family(out, name, type, help);
  for (i = 0; i < n; i++) {
    labels(&rows[i], l, sizeof(l));
    snprintf(line, sizeof(line), "%s{%s} %.17g\n", name, l, fn(&rows[i], m));
    lc__buf_puts(out, line);
  }
}

static double v_requests(const row *r, lc__manager *m) {
  (void)m;
  return (double)r->w->stats.requests;
}

static double v_in_flight(const row *r, lc__manager *m) {
  (void)m;
  return (double)r->w->stats.in_flight;
}

static double v_redis_clients(const row *r, lc__manager *m) {
  (void)m;
  return (double)r->w->stats.redis_clients;
}

static double v_redis_ready(const row *r, lc__manager *m) {
  (void)m;
  return (double)r->w->stats.redis_ready;
}

static double v_restarts(const row *r, lc__manager *m) {
  (void)m;
  return r->slot != NULL ? r->slot->restarts : 0;
}

static double v_rss(const row *r, lc__manager *m) {
  (void)m;
  return r->sample != NULL ? (double)r->sample->rss : 0;
}

static double v_cpu(const row *r, lc__manager *m) {
  (void)m;
  return r->sample != NULL
             ? (double)r->sample->cpu_ticks / (double)sysconf(_SC_CLK_TCK)
             : 0;
}

static double v_ipc_sent(const row *r, lc__manager *m) {
  (void)m;
  return (double)r->w->channel.written;
}

static double v_ipc_received(const row *r, lc__manager *m) {
  (void)m;
  return (double)r->w->channel.received;
}

static double v_start(const row *r, lc__manager *m) {
  uint64_t now = uv_now(&m->core->loop);

  return wall_now() - (double)(now - r->w->started_ms) / 1000.0;
}

static const char *state_of(const row *r) {
  if (r->slot != NULL && r->slot->incoming == r->w)
    return "starting";
  return lc__worker_state_name(r->w->state);
}

static void histogram(lc__buf *out, const row *rows, int n) {
  static const char *name = "luacluster_worker_request_duration_seconds";
  char line[320], l[96];
  uint64_t sum;
  int i, b;

  family(out, name, "histogram",
         "Time from a request's head to the end of its response.");
  for (i = 0; i < n; i++) {
    const lc__req_stats *st = &rows[i].w->stats;
    labels(&rows[i], l, sizeof(l));
    sum = 0;
    for (b = 0; b < LC__STATS_BUCKETS; b++) {
      sum += st->buckets[b];
      if (b < LC__STATS_BUCKETS - 1)
        snprintf(line, sizeof(line), "%s_bucket{%s,le=\"%g\"} %llu\n", name,
                 l, lc__stats_bounds_ms[b] / 1000.0, (unsigned long long)sum);
      else
        snprintf(line, sizeof(line), "%s_bucket{%s,le=\"+Inf\"} %llu\n",
                 name, l, (unsigned long long)sum);
      lc__buf_puts(out, line);
    }
    snprintf(line, sizeof(line), "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name,
             l, (double)st->duration_us_sum / 1e6, name, l,
             (unsigned long long)sum);
    lc__buf_puts(out, line);
  }
}

/* The whole exposition, into out. */
static void master_redis(lc__buf *out, lc__core *core);
static void shared_dicts(lc__buf *out, lc__core *core);

static void render(lc__manager *m, lc__buf *out) {
  lc__core *core = m->core;
  row rows[512];
  char line[320], l[96];
  int n, i;

  uv_update_time(&core->loop);
  lc__manager_sample(m, uv_now(&core->loop));
  n = collect(m, rows, (int)LC__ARRAY_SIZE(rows));

  family(out, "luacluster_workers", "gauge",
         "Worker processes alive (serving, starting or draining).");
  snprintf(line, sizeof(line), "luacluster_workers %d\n", core->sup->alive);
  lc__buf_puts(out, line);
  family(out, "luacluster_master_start_time_seconds", "gauge",
         "When the master started, in seconds since the epoch.");
  snprintf(line, sizeof(line), "luacluster_master_start_time_seconds %.3f\n",
           wall_now() - (double)(uv_hrtime() - core->start_ns) / 1e9);
  lc__buf_puts(out, line);
  family(out, "luacluster_reloads_total", "counter",
         "Rolling reloads started.");
  snprintf(line, sizeof(line), "luacluster_reloads_total %llu\n",
           (unsigned long long)m->reloads);
  lc__buf_puts(out, line);

  family(out, "luacluster_worker_info", "gauge",
         "A worker: its pid and state (the value is 1).");
  for (i = 0; i < n; i++) {
    labels(&rows[i], l, sizeof(l));
    snprintf(line, sizeof(line),
             "luacluster_worker_info{%s,pid=\"%d\",state=\"%s\"} 1\n", l,
             rows[i].w->pid, state_of(&rows[i]));
    lc__buf_puts(out, line);
  }
  per_worker(out, m, rows, n, "luacluster_worker_requests_total", "counter",
             "HTTP requests the worker answered.", v_requests);
  per_worker(out, m, rows, n, "luacluster_worker_requests_in_flight", "gauge",
             "HTTP requests the worker is answering.", v_in_flight);
  histogram(out, rows, n);
  per_worker(out, m, rows, n, "luacluster_worker_restarts_total", "counter",
             "Restarts of the worker's slot (crashes and health kills).",
             v_restarts);
  per_worker(out, m, rows, n, "luacluster_worker_resident_memory_bytes",
             "gauge", "The worker's resident set size.", v_rss);
  per_worker(out, m, rows, n, "luacluster_worker_cpu_seconds_total",
             "counter", "User and system CPU time the worker used.", v_cpu);
  per_worker(out, m, rows, n, "luacluster_worker_ipc_sent_bytes_total",
             "counter", "Bytes the master wrote to the worker's channel.",
             v_ipc_sent);
  per_worker(out, m, rows, n, "luacluster_worker_ipc_received_bytes_total",
             "counter", "Bytes the master read from the worker's channel.",
             v_ipc_received);
  per_worker(out, m, rows, n, "luacluster_worker_start_time_seconds", "gauge",
             "When the worker started, in seconds since the epoch.", v_start);
  per_worker(out, m, rows, n, "luacluster_worker_redis_clients", "gauge",
             "Redis clients the worker has open.", v_redis_clients);
  per_worker(out, m, rows, n, "luacluster_worker_redis_clients_ready", "gauge",
             "Of those, the ones connected (the others are reconnecting).",
             v_redis_ready);
  master_redis(out, core);
  shared_dicts(out, core);
}

/* The master's own Redis connections (cluster messaging, --redis). */
static void master_redis(lc__buf *out, lc__core *core) {
  char line[128];

  family(out, "luacluster_master_redis_clients", "gauge",
         "Redis connections the master has open (cluster messaging).");
  snprintf(line, sizeof(line), "luacluster_master_redis_clients %llu\n",
           (unsigned long long)core->stats.redis_clients);
  lc__buf_puts(out, line);
  family(out, "luacluster_master_redis_clients_ready", "gauge",
         "Of those, the ones connected (the others are reconnecting).");
  snprintf(line, sizeof(line), "luacluster_master_redis_clients_ready %llu\n",
           (unsigned long long)core->stats.redis_ready);
  lc__buf_puts(out, line);
}

/* The shared dicts: how full each one is. */
static void shared_dicts(lc__buf *out, lc__core *core) {
  int n = lc__dicts_count(core), i;
  char line[192];

  if (n == 0)
    return;
  family(out, "luacluster_shared_dict_capacity_bytes", "gauge",
         "A shared dict's memory for keys and values.");
  for (i = 0; i < n; i++) {
    snprintf(line, sizeof(line),
             "luacluster_shared_dict_capacity_bytes{dict=\"%s\"} %zu\n",
             lc__dicts_name(core, i), lc__shdict_capacity(lc__dicts_at(core, i)));
    lc__buf_puts(out, line);
  }
  family(out, "luacluster_shared_dict_free_bytes", "gauge",
         "A shared dict's free memory (ngx.shared.DICT:free_space()).");
  for (i = 0; i < n; i++) {
    snprintf(line, sizeof(line),
             "luacluster_shared_dict_free_bytes{dict=\"%s\"} %zu\n",
             lc__dicts_name(core, i),
             lc__shdict_free_space(lc__dicts_at(core, i)));
    lc__buf_puts(out, line);
  }
}

/* The HTTP side -------------------------------------------------------------- */

static void answer(lc__http_conn *hc, int status, const char *type,
                   const char *body, size_t len) {
  lc__http_header h[1];
  lc__http_reply reply;

  h[0].name = "Content-Type";
  h[0].name_len = strlen(h[0].name);
  h[0].value = type;
  h[0].value_len = strlen(type);
  memset(&reply, 0, sizeof(reply));
  reply.status = status;
  reply.headers = h;
  reply.nheaders = 1;
  lc__http_respond(hc, lc__http_conn_seq(hc), &reply, body, len, 1);
}

static int on_request(lc__http_conn *hc, const lc__http_head *head) {
  lc__server *s = lc__http_conn_server(hc);
  lc__metrics *mt = s != NULL ? s->data : NULL;
  lc__buf out = LC__BUF_INIT;
  int path_ok = (head->url_len == 8 && memcmp(head->url, "/metrics", 8) == 0) ||
                (head->url_len == 1 && head->url[0] == '/');

  if (mt == NULL)
    return 503;
  if (!path_ok) {
    answer(hc, 404, "text/plain", "not found: try /metrics\n", 24);
    return 0;
  }
  if (strcmp(head->method, "GET") != 0 && strcmp(head->method, "HEAD") != 0) {
    answer(hc, 405, "text/plain", "GET /metrics\n", 13);
    return 0;
  }
  render(mt->m, &out);
  answer(hc, 200, "text/plain; version=0.0.4; charset=utf-8",
         lc__buf_data(&out), lc__buf_size(&out));
  lc__buf_free(&out);
  return 0;
}

static void on_body(lc__http_conn *hc, const char *data, size_t len) {
  (void)hc;
  (void)data;
  (void)len;
}

static void on_nothing(lc__http_conn *hc) { (void)hc; }

static const lc__http_server_cb metrics_cb = {
    on_request, on_body, on_nothing, on_nothing, on_nothing, on_nothing};

static void metrics_server_gone(lc__server *s) {
  lc__metrics *mt = s->data;

  if (mt->m->core->metrics == mt)
    mt->m->core->metrics = NULL;
  free(mt);
}

/* Splits "host:port" ("[::1]:9100" too). */
static int split_address(const char *spec, char *host, size_t size,
                         int *port) {
  const char *colon = strrchr(spec, ':');
  char *end;
  long p;

  if (colon == NULL || colon == spec)
    return UV_EINVAL;
  p = strtol(colon + 1, &end, 10);
  if (*end != '\0' || colon[1] == '\0' || p < 0 || p > 65535)
    return UV_EINVAL;
  if (spec[0] == '[' && colon[-1] == ']')
    snprintf(host, size, "%.*s", (int)(colon - spec - 2), spec + 1);
  else
    snprintf(host, size, "%.*s", (int)(colon - spec), spec);
  *port = (int)p;
  return 0;
}

int lc__metrics_start(lc__manager *m) {
  lc__core *core = m->core;
  const char *spec = core->opts.metrics;
  lc__metrics *mt;
  char host[64];
  int port, err;

  if (spec == NULL)
    return 0;
  err = split_address(spec, host, sizeof(host), &port);
  if (err) {
    lc__log(LC__LOG_ERROR, "--metrics %s: wants ADDRESS:PORT", spec);
    return err;
  }
  mt = calloc(1, sizeof(*mt));
  if (mt == NULL)
    return UV_ENOMEM;
  mt->m = m;
  snprintf(mt->host, sizeof(mt->host), "%s", host);
  mt->port = port;
  lc__http_server_init(&mt->http, &metrics_cb);
  mt->server = lc__server_new(core, &lc__http_server_conn_ops, &mt->http, mt);
  if (mt->server == NULL) {
    free(mt);
    return UV_ENOMEM;
  }
  core->metrics = mt;
  mt->server->on_free = metrics_server_gone;
  err = lc__server_bind(mt->server, host, port, 64, 0);
  if (err) {
    lc__log(LC__LOG_ERROR, "cannot serve metrics on %s: %s", spec,
            uv_strerror(err));
    return err;
  }
  uv_unref((uv_handle_t *)&mt->server->listener);
  lc__log(LC__LOG_INFO, "metrics on http://%s:%d/metrics", host,
          mt->server->port);
  return 0;
}

int lc__metrics_fd(lc__core *core, char *name, size_t size) {
  lc__metrics *mt = core->metrics;
  int fd;

  if (mt == NULL || mt->server == NULL || !mt->server->has_listener ||
      uv_fileno((uv_handle_t *)&mt->server->listener, &fd) != 0)
    return -1;
  lc__activation_name(mt->host, mt->port, name, size);
  return fd;
}
