/*
 * control_server.c - the managed master's control socket.
 *
 * `luacluster status|reload|stop|scale` (control_client.c) connect to it.
 * The protocol is one line in ("status", "status json", "status cluster",
 * "status cluster json", "reload", "stop", "scale N") and a reply whose first line is OK or ERR. A request is at
 * most 255 bytes, arrives within 5 s of connecting, holds no NUL, and is
 * exactly one of those (no "scale 2abc"); anything else gets an ERR line
 * and a close.
 */
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cluster_redis.h"
#include "control.h"
#include "manager.h"

#define REQUEST_MAX 256
#define REQUEST_TIMEOUT_MS 5000

struct lc__control_client {
  lc__owner owner; /* first: the pipe's data points here */
  uv_pipe_t pipe;
  struct {
    lc__owner owner; /* the timer's data points here */
    uv_timer_t timer;
  } idle;          /* until the request line is in */
  int open;        /* handles not closed yet */
  lc__manager *m;
  char line[REQUEST_MAX];
  size_t len;
  int replied;
};

#define CLIENT_OF_TIMER(t)                                                     \
  ((lc__control_client *)((char *)(t) -                                        \
                          offsetof(lc__control_client, idle.timer)))

/* Server ---------------------------------------------------------------------- */

static void client_on_close(uv_handle_t *handle) {
  lc__control_client *client = handle->type == UV_TIMER
                                   ? CLIENT_OF_TIMER(handle)
                                   : handle->data;

  if (--client->open > 0)
    return;
  if (client->m->reload.waiter == client)
    client->m->reload.waiter = NULL;
  lc__upgrade_forget(client->m, client);
  lc__cluster_status_forget(client->m->core, client);
  free(client);
}

static void client_close(lc__control_client *client) {
  if (!uv_is_closing((uv_handle_t *)&client->pipe))
    uv_close((uv_handle_t *)&client->pipe, client_on_close);
  if (!uv_is_closing((uv_handle_t *)&client->idle.timer))
    uv_close((uv_handle_t *)&client->idle.timer, client_on_close);
}

static void client_owner_close(uv_handle_t *handle) {
  client_close(handle->data);
}

static void idle_owner_close(uv_handle_t *handle) {
  client_close(CLIENT_OF_TIMER(handle));
}

typedef struct lc__reply_req {
  uv_write_t req;
  lc__control_client *client;
  char text[];
} lc__reply_req;

static void on_reply_written(uv_write_t *req, int status) {
  lc__reply_req *r = (lc__reply_req *)req;

  (void)status;
  client_close(r->client);
  free(r);
}

void lc__control_reply(lc__control_client *client, int ok, const char *text) {
  size_t len = strlen(text);
  lc__reply_req *r;
  uv_buf_t buf;

  if (client->replied)
    return;
  client->replied = 1;
  if (client->m->reload.waiter == client)
    client->m->reload.waiter = NULL;
  r = malloc(sizeof(*r) + len + 8);
  if (r == NULL) {
    client_close(client);
    return;
  }
  r->client = client;
  len = (size_t)sprintf(r->text, "%s\n%s%s", ok ? "OK" : "ERR", text,
                        len > 0 && text[len - 1] == '\n' ? "" : "\n");
  buf = uv_buf_init(r->text, (unsigned)len);
  if (uv_write(&r->req, (uv_stream_t *)&client->pipe, &buf, 1,
               on_reply_written) != 0) {
    free(r);
    client_close(client);
  }
}

static const char *worker_state(const lc__slot *slot, const lc__worker *w) {
  if (slot != NULL && slot->incoming == w)
    return "starting";
  return lc__worker_state_name(w->state);
}

static void status_row(lc__buf *out, int json, const lc__slot *slot,
                       const lc__worker *w, const lc__sample *s, uint64_t now,
                       int *first) {
  char row[512];
  uint64_t up = now - w->started_ms;

  if (json)
    snprintf(row, sizeof(row),
             "%s{\"id\":%d,\"instance\":%d,\"pid\":%d,\"state\":\"%s\","
             "\"uptime_ms\":%llu,\"restarts\":%d,\"rss\":%zu,\"cpu\":%.1f,"
             "\"requests\":%llu}",
             *first ? "" : ",", w->id, w->instance, w->pid,
             worker_state(slot, w), (unsigned long long)up,
             slot ? slot->restarts : 0, s ? s->rss : 0,
             s ? s->cpu_percent : 0.0, (unsigned long long)w->requests);
  else
    snprintf(row, sizeof(row), "%-6d %-8d %-8d %-14s %8.1fs %8d %8.1fM %6.1f%% "
             "%10llu\n", w->id, w->instance, w->pid, worker_state(slot, w),
             (double)up / 1000.0, slot ? slot->restarts : 0,
             s ? (double)s->rss / 1048576.0 : 0.0, s ? s->cpu_percent : 0.0,
             (unsigned long long)w->requests);
  *first = 0;
  lc__buf_puts(out, row);
}

/* An instance left empty for good: no worker, state "errored". */
static void errored_row(lc__buf *out, int json, const lc__slot *slot,
                        int *first) {
  char row[256];

  if (json)
    snprintf(row, sizeof(row),
             "%s{\"id\":null,\"instance\":%d,\"pid\":null,\"state\":"
             "\"errored\",\"uptime_ms\":0,\"restarts\":%d,\"rss\":0,"
             "\"cpu\":0.0,\"requests\":0}",
             *first ? "" : ",", slot->instance, slot->restarts);
  else
    snprintf(row, sizeof(row), "%-6s %-8d %-8s %-14s %8.1fs %8d %8.1fM %6.1f%% "
             "%10d\n", "-", slot->instance, "-", "errored", 0.0,
             slot->restarts, 0.0, 0.0, 0);
  *first = 0;
  lc__buf_puts(out, row);
}

void lc__control_status(lc__manager *m, int json, lc__buf *out) {
  uint64_t now;
  lc__retiree *r;
  char head[256];
  int i, first = 1;

  uv_update_time(&m->core->loop);
  now = uv_now(&m->core->loop);
  lc__manager_sample(m, now);
  if (json)
    snprintf(head, sizeof(head),
             "{\"master\":{\"pid\":%d,\"script\":\"%s\",\"uptime_ms\":%llu,"
             "\"stopping\":%s,\"reloading\":%s},\"workers\":[",
             (int)getpid(), m->core->script,
             (unsigned long long)((uv_hrtime() - m->core->start_ns) / 1000000),
             m->stopping ? "true" : "false",
             m->reload.active ? "true" : "false");
  else
    snprintf(head, sizeof(head), "master pid %d, %s%s\n%-6s %-8s %-8s %-14s "
             "%9s %8s %9s %7s %10s\n", (int)getpid(), m->core->script,
             m->stopping ? " (stopping)" : m->reload.active ? " (reloading)"
                                                             : "",
             "id", "instance", "pid", "state", "uptime", "restarts", "rss",
             "cpu", "requests");
  lc__buf_puts(out, head);
  for (i = 0; i < m->nslots; i++) {
    lc__slot *slot = m->slots[i];
    if (slot->w == NULL && slot->incoming == NULL && !slot->removed &&
        (slot->errored || slot->fatal))
      errored_row(out, json, slot, &first);
    if (slot->w != NULL)
      status_row(out, json, slot, slot->w, &slot->sample, now, &first);
    if (slot->incoming != NULL)
      status_row(out, json, slot, slot->incoming, &slot->incoming_sample,
                 now, &first);
  }
  for (r = m->retirees; r != NULL; r = r->next)
    status_row(out, json, NULL, r->w, NULL, now, &first);
  lc__buf_puts(out, json ? "]}" : "");
}

static void reply_status(lc__control_client *client, int json) {
  lc__buf out = LC__BUF_INIT;

  lc__control_status(client->m, json, &out);
  lc__buf_append(&out, "", 1);
  lc__control_reply(client, 1, lc__buf_data(&out));
  lc__buf_free(&out);
}

static void on_cluster_status(void *arg, int ok, const char *text) {
  lc__control_reply(arg, ok, text);
}

/* "scale N": N is digits only, 1 to 4096; -1 otherwise. */
static int scale_count(const char *arg) {
  int n = 0;

  if (*arg == '\0')
    return -1;
  for (; *arg != '\0'; arg++) {
    if (*arg < '0' || *arg > '9' || n > 4096)
      return -1;
    n = n * 10 + (*arg - '0');
  }
  return n >= 1 && n <= 4096 ? n : -1;
}

static void handle_request(lc__control_client *client, char *line) {
  lc__manager *m = client->m;
  char text[128];
  size_t i;
  int n;

  if (strcmp(line, "status") == 0 || strcmp(line, "status json") == 0) {
    reply_status(client, line[6] == ' ');
  } else if (strcmp(line, "status cluster") == 0 ||
             strcmp(line, "status cluster json") == 0) {
    lc__cluster_status(m->core, line[14] == ' ', on_cluster_status, client);
  } else if (strcmp(line, "reload") == 0) {
    lc__manager_reload(m, client);
  } else if (strcmp(line, "upgrade") == 0) {
    lc__upgrade_start(m, client);
  } else if (strcmp(line, "stop") == 0) {
    lc__manager_stop(m, "luacluster stop");
    lc__control_reply(client, 1, "stopping");
  } else if (strncmp(line, "scale ", 6) == 0) {
    n = scale_count(line + 6);
    if (n > 0 && lc__manager_scale(m, n) == 0) {
      snprintf(text, sizeof(text), "scaling to %d worker(s)", n);
      lc__control_reply(client, 1, text);
    } else {
      lc__control_reply(client, 0, "scale wants a count from 1 to 4096");
    }
  } else {
    /* Echoed back printable: garbage must not become terminal escapes. */
    for (i = 0; line[i] != '\0'; i++)
      if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
        line[i] = '?';
    snprintf(text, sizeof(text), "unknown command '%.64s'", line);
    lc__control_reply(client, 0, text);
  }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  lc__control_client *client = handle->data;

  (void)suggested;
  buf->base = client->line + client->len;
  buf->len = sizeof(client->line) - client->len - 1;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  lc__control_client *client = stream->data;
  char *nl;

  (void)buf;
  if (n < 0) {
    client_close(client);
    return;
  }
  if (client->replied)
    return;
  if (memchr(client->line + client->len, '\0', (size_t)n) != NULL) {
    uv_read_stop(stream);
    lc__control_reply(client, 0, "a request holds no NUL byte");
    return;
  }
  client->len += (size_t)n;
  client->line[client->len] = '\0';
  nl = strchr(client->line, '\n');
  if (nl == NULL) {
    if (client->len >= sizeof(client->line) - 1) {
      uv_read_stop(stream);
      lc__control_reply(client, 0, "request too long (255 bytes at most)");
    }
    return;
  }
  *nl = '\0';
  if (nl > client->line && nl[-1] == '\r')
    nl[-1] = '\0';
  uv_read_stop(stream);
  uv_timer_stop(&client->idle.timer); /* a reload may take long: fine */
  handle_request(client, client->line);
}

static void on_request_timeout(uv_timer_t *timer) {
  lc__control_client *client = CLIENT_OF_TIMER(timer);

  uv_read_stop((uv_stream_t *)&client->pipe);
  lc__control_reply(client, 0, "no request within 5 s");
}

static void on_connection(uv_stream_t *server, int status) {
  lc__manager *m = server->data;
  lc__control_client *client;

  if (status < 0)
    return;
  client = calloc(1, sizeof(*client));
  if (client == NULL)
    return;
  client->owner.close = client_owner_close;
  client->idle.owner.close = idle_owner_close;
  client->m = m;
  uv_pipe_init(&m->core->loop, &client->pipe, 0);
  client->pipe.data = client;
  uv_timer_init(&m->core->loop, &client->idle.timer);
  client->idle.timer.data = &client->idle;
  client->open = 2;
  if (uv_accept(server, (uv_stream_t *)&client->pipe) != 0 ||
      uv_read_start((uv_stream_t *)&client->pipe, on_alloc, on_read) != 0) {
    client_close(client);
    return;
  }
  /* A client that says nothing is let go; it keeps no master alive. */
  uv_timer_start(&client->idle.timer, on_request_timeout, REQUEST_TIMEOUT_MS,
                 0);
  uv_unref((uv_handle_t *)&client->idle.timer);
}

int lc__control_listen(lc__manager *m) {
  lc__core *core = m->core;
  char dir[4096], why[256];
  int err;

  if (core->opts.control_path != NULL)
    snprintf(m->control_path, sizeof(m->control_path), "%s",
             core->opts.control_path);
  else if (getenv(LC__ENV_CONTROL) != NULL)
    snprintf(m->control_path, sizeof(m->control_path), "%s",
             getenv(LC__ENV_CONTROL));
  else if (lc__control_default_path(core->script, m->control_path,
                                    sizeof(m->control_path)) != 0)
    return UV_ENAMETOOLONG;
  else {
    /* Our own directory, or no control socket at all (control_path.c). */
    lc__control_dir(dir, sizeof(dir));
    if (lc__control_dir_check(dir, 1, why, sizeof(why)) != 0) {
      lc__log(LC__LOG_ERROR, "refusing the control directory %s: %s (remove "
              "it, or give --control PATH)", dir, why);
      m->control_path[0] = '\0';
      return UV_EPERM;
    }
  }
  if (lc__control_in_use(m->control_path)) {
    lc__log(LC__LOG_WARN, "another master answers on %s: this one runs "
            "without a control socket", m->control_path);
    m->control_path[0] = '\0';
    return UV_EADDRINUSE;
  }
  unlink(m->control_path); /* a stale one from a master that died */
  uv_pipe_init(&core->loop, &m->control, 0);
  m->control.data = m;
  err = uv_pipe_bind(&m->control, m->control_path);
  if (err == 0) {
    chmod(m->control_path, 0600);
    err = uv_listen((uv_stream_t *)&m->control, 16, on_connection);
  }
  if (err) {
    lc__log(LC__LOG_WARN, "no control socket at %s: %s", m->control_path,
            uv_strerror(err));
    uv_close((uv_handle_t *)&m->control, NULL);
    m->control_path[0] = '\0';
    return err;
  }
  uv_unref((uv_handle_t *)&m->control);
  m->control_open = 1;
  return 0;
}

int lc__control_listen_on(lc__manager *m) {
  int err = uv_listen((uv_stream_t *)&m->control, 16, on_connection);

  if (err) {
    uv_close((uv_handle_t *)&m->control, NULL);
    return err;
  }
  uv_unref((uv_handle_t *)&m->control);
  m->control_open = 1;
  return 0;
}

void lc__control_close(lc__manager *m) {
  if (!m->control_open)
    return;
  m->control_open = 0;
  uv_close((uv_handle_t *)&m->control, NULL);
  unlink(m->control_path);
}

