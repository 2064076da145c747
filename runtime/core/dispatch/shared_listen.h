/*
 * shared_listen.h - how a server comes to listen: in a worker, through the
 * master (which owns the port); anywhere else, bound here.
 */
#ifndef LC_SHARED_LISTEN_H
#define LC_SHARED_LISTEN_H

#include "frame.h"
#include "tcp.h"

/*
 * Starts listening. Returns 0 when listening now (no master: bound here),
 * 1 when the master was asked (s->on_listening(s, status) follows from the
 * loop), or a negative error.
 */
int lc__shared_listen(lc__server *s, const char *host, int port, int backlog,
                      uint32_t flags);

/* The master's LISTEN_REPLY, CONNECTION and LISTENER records (with their
 * descriptor, or -1), from the worker's link. */
void lc__shared_listen_on_control(lc__core *core, const lc__control *c,
                                  int fd);

#endif
