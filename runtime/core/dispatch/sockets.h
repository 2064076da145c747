/*
 * sockets.h - plain socket calls with errors as negative UV_E* codes, as
 * redis's anet.c: resolve a host, bind and listen. The master and a process
 * without a master make their listening sockets here, so every policy binds
 * the same way and reports errors the same way.
 */
#ifndef LC_SOCKETS_H
#define LC_SOCKETS_H

#include <stddef.h>

#define LC__SOCK_REUSEPORT 1
#define LC__SOCK_IPV6ONLY 2
#define LC__SOCK_NO_LISTEN 4

struct sockaddr_storage;

/* A numeric address, or a name resolved with getaddrinfo() (blocking: for
 * listen addresses only, never on a hot path). */
int lc__resolve(const char *host, int port, struct sockaddr_storage *ss);
int lc__sockaddr_port(const struct sockaddr_storage *ss);
void lc__sockaddr_ip(const struct sockaddr_storage *ss, char *out,
                     size_t size);
/* A listening (or, with LC__SOCK_NO_LISTEN, bound) non-blocking socket. */
int lc__listen_socket(const char *host, int port, int backlog, int flags,
                      int *out_fd, int *out_port);
/* The port a socket is bound to. */
int lc__listen_socket_port(int fd, int *port);

#endif
