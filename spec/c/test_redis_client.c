/*
 * test_redis_client.c - the Redis client from C alone (redis.h), as a
 * managed master (no Lua) would use it, against a real redis-server this
 * test starts on a free port and stops: commands from argv, replies in
 * order and in one write, subscriptions and messages, nothing called back
 * from inside a call, quit and close, every handle closed and freed.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis.h"
#include "test.h"

/* RUN for tests that take the core. */
#define RUN_CORE(test)                                                         \
  do {                                                                         \
    int before_ = test_failures;                                               \
    test(&core);                                                               \
    fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL",     \
            #test);                                                            \
  } while (0)

static pid_t server_pid;
static int server_port;

/* A port nobody listens on now (the kernel's pick). */
static int free_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&a, sizeof(a));
  getsockname(fd, (struct sockaddr *)&a, &len);
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static int server_up(void) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)server_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

static int start_server(void) {
  char port[16];
  int i;

  server_port = free_port();
  snprintf(port, sizeof(port), "%d", server_port);
  server_pid = fork();
  if (server_pid == 0) {
    freopen("/dev/null", "w", stdout);
    execlp("redis-server", "redis-server", "--port", port, "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", (char *)NULL);
    _exit(127);
  }
  for (i = 0; i < 500 && !server_up(); i++)
    usleep(10000);
  return server_up();
}

static void stop_server(void) {
  kill(server_pid, SIGKILL);
  waitpid(server_pid, NULL, 0);
}

/* The owner's side ------------------------------------------------------------ */

typedef struct owner {
  int connects, readies, closed;
  int messages;
  char last_message[64];
  char last_pattern[64];
} owner;

static void on_connect(lc__redis *r) { ((owner *)lc__redis_data(r))->connects++; }
static void on_ready(lc__redis *r) { ((owner *)lc__redis_data(r))->readies++; }
static void on_close(lc__redis *r) { ((owner *)lc__redis_data(r))->closed++; }

static void on_message(lc__redis *r, const lc__redis_message *m) {
  owner *o = lc__redis_data(r);

  o->messages++;
  snprintf(o->last_message, sizeof(o->last_message), "%.*s=%.*s",
           (int)m->channel_len, m->channel, (int)m->len, m->data);
  snprintf(o->last_pattern, sizeof(o->last_pattern), "%.*s",
           (int)m->pattern_len, m->pattern ? m->pattern : "");
}

static const lc__redis_events events = {on_connect, on_ready, NULL, NULL,
                                        NULL,       on_message, on_close};

/* A command's outcome, kept for the checks. */
typedef struct outcome {
  int done, status, type;
  long long integer;
  char str[128];
} outcome;

static void keep(lc__redis *r, int status, const lc__redis_reply *reply,
                 void *data) {
  outcome *o = data;

  (void)r;
  o->done++;
  o->status = status;
  o->type = reply->type;
  o->integer = reply->type == LC__REDIS_ARRAY && reply->len == 3
                   ? reply->element[2]->integer
                   : reply->integer;
  snprintf(o->str, sizeof(o->str), "%s",
           reply->str ? reply->str
                      : reply->type == LC__REDIS_ARRAY ? "(array)" : "");
}

static long long order[2000];
static int ordered;

static void keep_order(lc__redis *r, int status, const lc__redis_reply *reply,
                       void *data) {
  (void)r, (void)data;
  order[ordered++] = status == 0 ? reply->integer : -1;
}

/* Runs the loop until *flag reaches want (or 5 s pass). */
static int run_until(lc__core *core, const int *flag, int want) {
  uint64_t deadline = uv_hrtime() + 5000000000ull;

  while (*flag < want && uv_hrtime() < deadline) {
    uv_update_time(&core->loop);
    uv_run(&core->loop, UV_RUN_NOWAIT);
    usleep(200);
  }
  return *flag >= want;
}

static lc__redis *client(lc__core *core, owner *o, size_t max_offline) {
  lc__redis_options opts;
  lc__redis *r = NULL;

  lc__redis_options_init(&opts);
  opts.port = server_port;
  opts.max_offline = max_offline;
  CHECK_EQ_INT(lc__redis_new(core, &opts, &events, o, &r), 0);
  return r;
}

static void commands_and_replies(lc__core *core) {
  owner o = {0};
  lc__redis *r = client(core, &o, 100);
  const char *set[] = {"SET", "k", "v\r\n\0x"};
  size_t set_len[] = {3, 1, 5};
  const char *get[] = {"GET", "k"};
  const char *incr[] = {"INCR", "n"};
  outcome a = {0}, b = {0}, c = {0};
  lc__redis_stats before, after;
  int i;

  CHECK_EQ_INT(lc__redis_command_argv(r, 3, set, set_len, keep, &a), 0);
  CHECK_EQ_INT(lc__redis_command_argv(r, 2, get, NULL, keep, &b), 0);
  CHECK_EQ_INT(a.done + b.done, 0); /* never from inside the call */
  CHECK(run_until(core, &b.done, 1));
  CHECK_EQ_INT(o.connects, 1);
  CHECK_EQ_INT(o.readies, 1);
  CHECK_EQ_STR(a.str, "OK");
  CHECK_EQ_INT(a.type, LC__REDIS_STATUS);
  CHECK_EQ_INT(b.type, LC__REDIS_STRING);
  CHECK(memcmp(b.str, "v\r\n", 3) == 0);

  /* A thousand commands issued at once: one write, answered in order. */
  lc__redis_get_stats(r, &before);
  for (i = 0; i < 1000; i++)
    lc__redis_command_argv(r, 2, incr, NULL, keep_order, NULL);
  CHECK(run_until(core, &ordered, 1000));
  lc__redis_get_stats(r, &after);
  CHECK_EQ_INT(after.writes - before.writes, 1);
  for (i = 0; i < 1000; i++)
    CHECK_EQ_INT(order[i], i + 1);

  /* An error reply is a reply (status 0). */
  lc__redis_command_argv(r, 2, (const char *[]){"HGET", "k"}, NULL, keep, &c);
  CHECK(run_until(core, &c.done, 1));
  CHECK_EQ_INT(c.status, 0);
  CHECK_EQ_INT(c.type, LC__REDIS_ERROR);

  /* After quit: refused, reported from the loop, then the client closes. */
  memset(&c, 0, sizeof(c));
  lc__redis_quit(r);
  lc__redis_command_argv(r, 2, get, NULL, keep, &c);
  CHECK_EQ_INT(c.done, 0);
  CHECK(run_until(core, &c.done, 1));
  CHECK_EQ_INT(c.status, UV_ECANCELED);
  CHECK_EQ_STR(c.str, "client closed");
  CHECK(run_until(core, &o.closed, 1));
}

static void subscriptions(lc__core *core) {
  owner po = {0}, so = {0};
  lc__redis *pub = client(core, &po, 100), *sub = client(core, &so, 100);
  const char *ch[] = {"news"}, *pat[] = {"price.*"};
  size_t ch_len[] = {4}, pat_len[] = {7};
  outcome s1 = {0}, s2 = {0}, p1 = {0}, p2 = {0}, u = {0};

  CHECK(run_until(core, &so.readies, 1));
  lc__redis_subscribe(sub, LC__REDIS_SUBSCRIBE, 1, ch, ch_len, keep, &s1);
  lc__redis_subscribe(sub, LC__REDIS_PSUBSCRIBE, 1, pat, pat_len, keep, &s2);
  CHECK(run_until(core, &s2.done, 1));
  CHECK_EQ_INT(s1.integer, 1);
  CHECK_EQ_INT(s2.integer, 2);
  CHECK_EQ_INT(lc__redis_subscriptions(sub), 2);

  lc__redis_command_argv(pub, 3, (const char *[]){"PUBLISH", "news", "hi"},
                         NULL, keep, &p1);
  CHECK(run_until(core, &so.messages, 1));
  CHECK_EQ_STR(so.last_message, "news=hi");
  CHECK_EQ_STR(so.last_pattern, "");
  lc__redis_command_argv(pub, 3,
                         (const char *[]){"PUBLISH", "price.eur", "1.1"}, NULL,
                         keep, &p2);
  CHECK(run_until(core, &so.messages, 2));
  CHECK_EQ_STR(so.last_message, "price.eur=1.1");
  CHECK_EQ_STR(so.last_pattern, "price.*");
  CHECK_EQ_INT(p1.integer, 1);

  /* Unsubscribing from all channels: the server's count falls to 1. */
  lc__redis_subscribe(sub, LC__REDIS_UNSUBSCRIBE, 0, NULL, NULL, keep, &u);
  CHECK(run_until(core, &u.done, 1));
  CHECK_EQ_INT(u.integer, 1);
  CHECK_EQ_INT(lc__redis_subscriptions(sub), 1);

  lc__redis_close(sub);
  lc__redis_close(pub);
  CHECK(run_until(core, &so.closed, 1));
  CHECK(run_until(core, &po.closed, 1));
}

static void not_ready_fails_from_the_loop(lc__core *core) {
  owner o = {0};
  lc__redis *r = client(core, &o, 0); /* no offline queue */
  outcome a = {0};

  lc__redis_command_argv(r, 1, (const char *[]){"PING"}, NULL, keep, &a);
  CHECK_EQ_INT(a.done, 0);
  CHECK(run_until(core, &a.done, 1));
  CHECK_EQ_INT(a.status, UV_ENOTCONN);
  CHECK_EQ_STR(a.str, "closed");
  lc__redis_close(r);
  CHECK(run_until(core, &o.closed, 1));
}

static void bad_options_are_refused(lc__core *core) {
  lc__redis_options opts;
  lc__redis *r = (lc__redis *)1;

  lc__redis_options_init(&opts);
  opts.port = 0;
  CHECK_EQ_INT(lc__redis_new(core, &opts, &events, NULL, &r), UV_EINVAL);
  CHECK(r == NULL);
  lc__redis_options_init(&opts);
  opts.username = "alice"; /* a username needs a password */
  CHECK_EQ_INT(lc__redis_new(core, &opts, &events, NULL, &r), UV_EINVAL);
}

int main(void) {
  lc__core core;

  signal(SIGPIPE, SIG_IGN);
  if (!start_server()) {
    fprintf(stderr, "redis-server did not start\n");
    stop_server();
    return 1;
  }
  memset(&core, 0, sizeof(core));
  CHECK_EQ_INT(lc__core_init(&core), 0);
  RUN_CORE(commands_and_replies);
  RUN_CORE(subscriptions);
  RUN_CORE(not_ready_fails_from_the_loop);
  RUN_CORE(bad_options_are_refused);
  lc__core_close(&core);
  stop_server();
  TEST_EXIT();
}
