/*
 * dispatch.h - the master's shared listening sockets and the scheduling
 * policies (rr, none, reuseport, sticky): what the supervisor and the
 * manager call. See dispatch.c for how the policies work.
 */
#ifndef LC_DISPATCH_H
#define LC_DISPATCH_H

#include "frame.h"
#include "supervisor.h"

int lc__dispatch_init(lc__core *core);
/* A worker asked to share addr:port for its server. */
void lc__dispatch_listen(lc__worker *w, const lc__control *req);
void lc__dispatch_unlisten(lc__worker *w, uint32_t server_id);
/* The worker stops taking connections (draining or gone). */
void lc__dispatch_worker_gone(lc__worker *w);
/* A HANDLE frame that never left: its descriptor is a copy, dropped here. */
void lc__dispatch_unsent(lc__worker *w, const lc__control *c, int fd);
/* The worker took (or refused) the connection with this ticket. */
void lc__dispatch_accepted(lc__worker *w, uint64_t ticket, int status);
/* The worker's channel ended: what it never acknowledged goes elsewhere. */
void lc__dispatch_channel_closed(lc__worker *w);
/* Workers alive changed: listeners keep the loop alive only with workers. */
void lc__dispatch_update_refs(lc__core *core);
/* Managed stop: hand out the connections already waiting, then close every
 * listening socket (clients are refused rather than left waiting). */
void lc__dispatch_stop(lc__core *core);
/* The listening sockets (a binary upgrade passes them on): up to max
 * descriptors into fds and their names (lc__activation_name of the listen
 * asked for) into names; returns how many. */
int lc__dispatch_fds(lc__core *core, int *fds, char (*names)[96], int max);

#endif
