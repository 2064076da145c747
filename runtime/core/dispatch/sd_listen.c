/*
 * sd_listen.c - listening sockets passed at start (sd_notify.h): socket
 * activation by a service manager, or the sockets an old master hands to
 * its successor in a binary upgrade (upgrade.c). Both arrive the same way:
 * LISTEN_FDS descriptors from 3 on.
 *
 * They are for this process when LISTEN_PID is its pid (systemd's rule), or,
 * with no LISTEN_PID, when LUACLUSTER_UPGRADE_FROM names its parent (an old
 * master cannot know its child's pid before the exec). At start they move
 * above the descriptors a worker is given (its channel is 3), become
 * close-on-exec, and LISTEN_* leave the environment: no worker inherits
 * them. A listen() for an address and port one of them is bound to takes
 * it instead of binding (dispatch.c in a master, tcp.c in a single
 * process), so the port never closes while a master restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sd_notify.h"
#include "sockets.h"

#define PASSED_MAX 64

typedef struct lc__passed {
  int fd; /* -1 once taken */
  struct sockaddr_storage addr;
  char name[LC__PASSED_NAME_MAX]; /* from LISTEN_FDNAMES, or "" */
} lc__passed;

struct lc__activation {
  lc__passed sockets[PASSED_MAX];
  int n;
};

static void activation_free(void *arg) {
  lc__core *core = arg;
  int i;

  for (i = 0; core->activation != NULL && i < core->activation->n; i++)
    if (core->activation->sockets[i].fd >= 0)
      close(core->activation->sockets[i].fd);
  free(core->activation);
  core->activation = NULL;
}

/* How many descriptors were passed to this process (0: none for us). */
static int passed_count(void) {
  const char *fds = getenv("LISTEN_FDS");
  const char *pid = getenv("LISTEN_PID");
  const char *from = getenv(LC__ENV_UPGRADE_FROM);
  int n;

  if (fds == NULL || *fds == '\0')
    return 0;
  if (pid != NULL && *pid != '\0') {
    if (atoi(pid) != (int)getpid())
      return 0;
  } else if (from == NULL || atoi(from) != (int)getppid()) {
    return 0;
  }
  n = atoi(fds);
  return n > 0 && n <= PASSED_MAX ? n : 0;
}

static void describe(const struct sockaddr_storage *ss, char *out,
                     size_t size) {
  char ip[64];

  lc__sockaddr_ip(ss, ip, sizeof(ip));
  snprintf(out, size, ss->ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
           lc__sockaddr_port(ss));
}

/* The i-th of LISTEN_FDNAMES ("a:b:c"), or "". */
static void passed_name(int i, char *out, size_t size) {
  const char *p = getenv("LISTEN_FDNAMES"), *end;

  out[0] = '\0';
  while (p != NULL && i-- > 0)
    p = (p = strchr(p, ':')) != NULL ? p + 1 : NULL;
  if (p == NULL)
    return;
  end = strchr(p, ':');
  snprintf(out, size, "%.*s", (int)(end ? (size_t)(end - p) : strlen(p)), p);
}

void lc__activation_name(const char *host, int port, char *out, size_t size) {
  size_t i;

  snprintf(out, size, "%s|%d", host != NULL && *host ? host : "0.0.0.0", port);
  for (i = 0; out[i] != '\0'; i++)
    if (out[i] == ':')
      out[i] = '|'; /* ':' separates LISTEN_FDNAMES */
}

int lc__activation_init(lc__core *core) {
  int n = passed_count(), i, fd, type;
  socklen_t len;
  lc__activation *a;
  char what[96];

  if (n == 0) {
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    return 0;
  }
  a = calloc(1, sizeof(*a));
  if (a == NULL || lc__core_on_close(core, activation_free, core) != 0) {
    free(a);
    return UV_ENOMEM;
  }
  core->activation = a;
  for (i = 0; i < n; i++) {
    /* Above every passed one: 3.. are free for children's descriptors. */
    fd = fcntl(3 + i, F_DUPFD_CLOEXEC, 3 + n);
    if (fd < 0) {
      lc__log(LC__LOG_WARN, "passed descriptor %d: %s", 3 + i,
              strerror(errno));
      continue;
    }
    close(3 + i);
    len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_STREAM) {
      lc__log(LC__LOG_WARN, "passed descriptor %d is not a stream socket: "
              "not used", 3 + i);
      close(fd);
      continue;
    }
    len = sizeof(a->sockets[a->n].addr);
    memset(&a->sockets[a->n].addr, 0, sizeof(a->sockets[a->n].addr));
    if (getsockname(fd, (struct sockaddr *)&a->sockets[a->n].addr, &len) != 0 ||
        (a->sockets[a->n].addr.ss_family != AF_INET &&
         a->sockets[a->n].addr.ss_family != AF_INET6)) {
      lc__log(LC__LOG_WARN, "passed descriptor %d is not a TCP socket: not "
              "used", 3 + i);
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    a->sockets[a->n].fd = fd;
    passed_name(i, a->sockets[a->n].name, sizeof(a->sockets[a->n].name));
    describe(&a->sockets[a->n].addr, what, sizeof(what));
    lc__log(LC__LOG_INFO, "passed a listening socket for %s", what);
    a->n++;
  }
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDNAMES");
  return 0;
}

static int same_address(const struct sockaddr_storage *a,
                        const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family ||
      lc__sockaddr_port(a) != lc__sockaddr_port(b))
    return 0;
  if (a->ss_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                &((const struct sockaddr_in6 *)b)->sin6_addr,
                sizeof(struct in6_addr)) == 0;
}

int lc__activation_take(lc__core *core, const char *host, int port,
                        int *reuseport, int *listening) {
  lc__activation *a = core->activation;
  struct sockaddr_storage want;
  char name[LC__PASSED_NAME_MAX];
  socklen_t len;
  int i, fd, v;

  if (a == NULL || port < 0 || lc__resolve(host, port, &want) != 0)
    return -1;
  /* Port 0 ("any") matches the socket an old master got for the same
   * request, by its name: the port stays what the app was given. */
  lc__activation_name(host, port, name, sizeof(name));
  for (i = 0; i < a->n; i++) {
    if (a->sockets[i].fd < 0)
      continue;
    if (port == 0 ? strcmp(a->sockets[i].name, name) != 0
                  : !same_address(&a->sockets[i].addr, &want))
      continue;
    fd = a->sockets[i].fd;
    a->sockets[i].fd = -1;
    len = sizeof(v);
    *reuseport = getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) == 0 && v;
    len = sizeof(v);
    *listening = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
    return fd;
  }
  return -1;
}

int lc__activation_unused(lc__core *core, int *fds, const char **names,
                          int max) {
  lc__activation *a = core->activation;
  int i, n = 0;

  for (i = 0; a != NULL && i < a->n && n < max; i++) {
    if (a->sockets[i].fd >= 0) {
      names[n] = a->sockets[i].name;
      fds[n++] = a->sockets[i].fd;
    }
  }
  return n;
}
