/*
 * test_sd_notify.c - the notify protocol (sd_notify.c) and passed sockets
 * (sd_listen.c) in one process: datagrams to a path and to an abstract
 * address, the environment a master takes them out of, the watchdog, and
 * LISTEN_FDS matched by address.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"
#include "sockets.h"
#include "test.h"

/* A datagram socket bound at name ("@x": abstract). */
static int receiver(const char *name) {
  struct sockaddr_un sa;
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
                              strlen(name) + (name[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, name, strlen(name));
  if (name[0] == '@')
    sa.sun_path[0] = '\0';
  else
    unlink(name);
  if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The next datagram, or "" after timeout_ms. */
static const char *next(int fd, int timeout_ms) {
  static char buf[1100];
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ssize_t n;

  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  n = recv(fd, buf, sizeof(buf) - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

static void sends_to(const char *name) {
  lc__core core;
  int fd = receiver(name);

  CHECK(fd >= 0);
  memset(&core, 0, sizeof(core));
  CHECK_EQ_INT(lc__core_init(&core), 0);
  setenv("NOTIFY_SOCKET", name, 1);
  CHECK_EQ_INT(lc__notify_init(&core), 0);
  /* Taken out of the environment: children do not inherit it. */
  CHECK(getenv("NOTIFY_SOCKET") == NULL);
  CHECK_EQ_STR(lc__notify_socket(&core), name);
  lc__notify(&core, "READY=1\nSTATUS=%d worker(s) ready", 3);
  CHECK_EQ_STR(next(fd, 1000), "READY=1\nSTATUS=3 worker(s) ready");
  lc__notify_hold(&core, 1);
  lc__notify(&core, "STOPPING=1");
  lc__notify_hold(&core, 0);
  lc__notify(&core, "STATUS=after");
  CHECK_EQ_STR(next(fd, 1000), "STATUS=after"); /* the held one never left */
  lc__core_close(&core);
  close(fd);
  if (name[0] == '/')
    unlink(name);
}

static void sends_to_a_path(void) {
  char path[64];

  snprintf(path, sizeof(path), "/tmp/lc-test-notify-%d.sock", (int)getpid());
  sends_to(path);
}

static void sends_to_an_abstract_address(void) {
  char name[64];

  snprintf(name, sizeof(name), "@lc-test-notify-%d", (int)getpid());
  sends_to(name);
}

static void without_a_socket_says_nothing(void) {
  lc__core core;

  memset(&core, 0, sizeof(core));
  lc__core_init(&core);
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "1000", 1);
  CHECK_EQ_INT(lc__notify_init(&core), 0);
  CHECK(lc__notify_socket(&core) == NULL);
  CHECK(getenv("WATCHDOG_USEC") == NULL);
  lc__notify(&core, "READY=1"); /* a no-op, not a crash */
  /* A relative path is no address: refused with a log line. */
  setenv("NOTIFY_SOCKET", "relative.sock", 1);
  CHECK_EQ_INT(lc__notify_init(&core), 0);
  CHECK(lc__notify_socket(&core) == NULL);
  lc__core_close(&core);
}

static void on_keep(uv_timer_t *timer) { (void)timer; }

static void feeds_the_watchdog(void) {
  uv_timer_t keep;
  char name[64];
  lc__core core;
  int fd, i, pings = 0;

  snprintf(name, sizeof(name), "@lc-test-watchdog-%d", (int)getpid());
  fd = receiver(name);
  memset(&core, 0, sizeof(core));
  lc__core_init(&core);
  setenv("NOTIFY_SOCKET", name, 1);
  setenv("WATCHDOG_USEC", "40000", 1); /* a ping every 20 ms */
  CHECK_EQ_INT(lc__notify_init(&core), 0);
  CHECK_EQ_INT(lc__notify_watchdog_usec(&core), 40000);
  /* The watchdog's timer is unref'd (it must not keep a master alive):
   * something else keeps the loop running here. */
  uv_timer_init(&core.loop, &keep);
  uv_timer_start(&keep, on_keep, 100000, 0);
  for (i = 0; i < 30; i++) {
    usleep(10000);
    uv_run(&core.loop, UV_RUN_NOWAIT);
  }
  uv_close((uv_handle_t *)&keep, NULL);
  while (strcmp(next(fd, 50), "WATCHDOG=1") == 0)
    pings++;
  CHECK(pings >= 5);
  lc__core_close(&core);
  close(fd);
}

/* A listening socket on 127.0.0.1, moved to descriptor target. */
static int listening_at(int target, int *port) {
  int fd;

  if (lc__listen_socket("127.0.0.1", 0, 16, 0, &fd, port) != 0)
    return -1;
  if (fd != target) {
    dup2(fd, target);
    close(fd);
  }
  return target;
}

static void takes_passed_sockets_by_address(void) {
  lc__core core;
  int port_a, port_b, fd, reuseport, listening, fds[4];
  const char *names[4];
  char pid[16];

  /* Descriptors 3 and 4, as a service manager passes them. */
  CHECK_EQ_INT(listening_at(3, &port_a), 3);
  CHECK_EQ_INT(listening_at(4, &port_b), 4);
  snprintf(pid, sizeof(pid), "%d", (int)getpid());
  setenv("LISTEN_FDS", "2", 1);
  setenv("LISTEN_PID", pid, 1);
  memset(&core, 0, sizeof(core));
  lc__core_init(&core);
  CHECK_EQ_INT(lc__activation_init(&core), 0);
  CHECK(getenv("LISTEN_FDS") == NULL && getenv("LISTEN_PID") == NULL);
  /* Moved off 3 and 4, close-on-exec. */
  CHECK(fcntl(3, F_GETFD) < 0);
  CHECK(fcntl(4, F_GETFD) < 0);
  CHECK_EQ_INT(lc__activation_unused(&core, fds, names, 4), 2);
  CHECK(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
  /* Only the exact address and port match. */
  CHECK_EQ_INT(lc__activation_take(&core, "127.0.0.2", port_b, &reuseport,
                                   &listening), -1);
  CHECK_EQ_INT(lc__activation_take(&core, "127.0.0.1", 0, &reuseport,
                                   &listening), -1);
  fd = lc__activation_take(&core, "127.0.0.1", port_b, &reuseport, &listening);
  CHECK(fd >= 0);
  CHECK(listening && !reuseport);
  /* Taken once. */
  CHECK_EQ_INT(lc__activation_take(&core, "127.0.0.1", port_b, &reuseport,
                                   &listening), -1);
  CHECK_EQ_INT(lc__activation_unused(&core, fds, names, 4), 1);
  close(fd);
  lc__core_close(&core);
  CHECK(port_a != port_b);
}

static void ignores_sockets_for_another_pid(void) {
  lc__core core;
  int port, fds[4];
  const char *names[4];

  CHECK_EQ_INT(listening_at(3, &port), 3);
  setenv("LISTEN_FDS", "1", 1);
  setenv("LISTEN_PID", "1", 1);
  memset(&core, 0, sizeof(core));
  lc__core_init(&core);
  CHECK_EQ_INT(lc__activation_init(&core), 0);
  CHECK_EQ_INT(lc__activation_unused(&core, fds, names, 4), 0);
  CHECK(getenv("LISTEN_FDS") == NULL);
  lc__core_close(&core);
  close(3);
}

/* An upgrading master names each socket by the listen() it serves: a
 * listen on port 0 finds the port it had before. */
static void matches_port_zero_by_name(void) {
  lc__core core;
  int port_a, port_b, fd, reuseport, listening, actual;
  char pid[16], names[256], a[96], b[96];

  CHECK_EQ_INT(listening_at(3, &port_a), 3);
  CHECK_EQ_INT(listening_at(4, &port_b), 4);
  lc__activation_name("127.0.0.1", 0, a, sizeof(a));
  lc__activation_name("::", 0, b, sizeof(b));
  CHECK_EQ_STR(a, "127.0.0.1|0");
  CHECK_EQ_STR(b, "|||0");
  snprintf(names, sizeof(names), "%s:%s", b, a);
  snprintf(pid, sizeof(pid), "%d", (int)getpid());
  setenv("LISTEN_FDS", "2", 1);
  setenv("LISTEN_PID", pid, 1);
  setenv("LISTEN_FDNAMES", names, 1);
  memset(&core, 0, sizeof(core));
  lc__core_init(&core);
  CHECK_EQ_INT(lc__activation_init(&core), 0);
  CHECK(getenv("LISTEN_FDNAMES") == NULL);
  fd = lc__activation_take(&core, "127.0.0.1", 0, &reuseport, &listening);
  CHECK(fd >= 0);
  CHECK_EQ_INT(lc__listen_socket_port(fd, &actual), 0);
  CHECK_EQ_INT(actual, port_b); /* the second one was named 127.0.0.1|0 */
  close(fd);
  lc__core_close(&core);
  CHECK(port_a != port_b);
}

int main(void) {
  RUN(sends_to_a_path);
  RUN(sends_to_an_abstract_address);
  RUN(without_a_socket_says_nothing);
  RUN(feeds_the_watchdog);
  RUN(takes_passed_sockets_by_address);
  RUN(ignores_sockets_for_another_pid);
  RUN(matches_port_zero_by_name);
  TEST_EXIT();
}
