/*
 * sockets.c - listening sockets: resolve a host, bind, listen.
 *
 * Plain socket calls, as redis's anet.c: the master and a worker without a
 * master both make their listening sockets here, so every policy binds the
 * same way and reports errors the same way (negative UV_E* codes).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "sockets.h"

int lc__resolve(const char *host, int port, struct sockaddr_storage *ss) {
  struct addrinfo hints, *res;
  int r;

  memset(ss, 0, sizeof(*ss));
  if (host == NULL || host[0] == '\0')
    host = "0.0.0.0";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  r = getaddrinfo(host, NULL, &hints, &res);
  if (r != 0)
    return UV_EAI_NONAME;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  freeaddrinfo(res);
  return 0;
}

int lc__sockaddr_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  return 0;
}

void lc__sockaddr_ip(const struct sockaddr_storage *ss, char *out,
                     size_t size) {
  out[0] = '\0';
  if (ss->ss_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)ss, out, size);
  else if (ss->ss_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)ss, out, size);
}

int lc__listen_socket(const char *host, int port, int backlog, int flags,
                      int *out_fd, int *out_port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int fd, on = 1, err;

  err = lc__resolve(host, port, &ss);
  if (err)
    return err;
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if ((flags & LC__SOCK_REUSEPORT) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
    goto fail;
  if (ss.ss_family == AF_INET6) {
    int v6only = (flags & LC__SOCK_IPV6ONLY) ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                : sizeof(struct sockaddr_in6);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0)
    goto fail;
  /* Accepted sockets inherit it: one call here instead of one per
   * connection. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  if (!(flags & LC__SOCK_NO_LISTEN) &&
      listen(fd, backlog > 0 ? backlog : 511) != 0)
    goto fail;
  if (out_port != NULL) {
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
      goto fail;
    *out_port = lc__sockaddr_port(&ss);
  }
  *out_fd = fd;
  return 0;

fail:
  err = uv_translate_sys_error(errno);
  close(fd);
  return err;
}

int lc__listen_socket_port(int fd, int *port) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);

  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return uv_translate_sys_error(errno);
  *port = lc__sockaddr_port(&ss);
  return 0;
}
