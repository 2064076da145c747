/*
 * sd_notify.h - telling a service manager (systemd) how the master is
 * doing, and the descriptors it passed us (socket activation).
 *
 * Both are plain protocols, implemented here without libsystemd:
 *
 *   notify      one datagram per message to the Unix socket $NOTIFY_SOCKET
 *               ("@name" is an abstract address): "READY=1", "RELOADING=1",
 *               "STOPPING=1", "STATUS=...", "WATCHDOG=1", "MAINPID=N";
 *   activation  listening sockets on descriptors 3.. ($LISTEN_FDS of them,
 *               for the process $LISTEN_PID names).
 *
 * A master reads both once at start and takes them out of its environment,
 * so workers neither inherit the sockets nor talk to the service manager.
 * A binary upgrade (upgrade.c) hands the same things to the new master.
 */
#ifndef LC_SD_NOTIFY_H
#define LC_SD_NOTIFY_H

#include "core.h"

/* Reads (and unsets) NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID; starts
 * the watchdog pings (every half period). 0 or a UV_E* code. */
int lc__notify_init(lc__core *core);
/* Sends one message ("READY=1\nSTATUS=..."), printf-style. Nothing when no
 * service manager listens, or while held (see lc__notify_hold). */
void lc__notify(lc__core *core, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A new master started by a binary upgrade stays quiet until the old one
 * has named it the main process: hold(1) ... hold(0). */
void lc__notify_hold(lc__core *core, int on);
/* What a new master must be given to talk to the same manager: the socket
 * address and the watchdog period (NULL / 0 when none). */
const char *lc__notify_socket(lc__core *core);
uint64_t lc__notify_watchdog_usec(lc__core *core);

/*
 * Script mode: READY=1 once the app's main chunk has run and every worker
 * it forked so far listens. lc__notify_script_started() after the chunk;
 * lc__notify_worker_listening() from the supervisor.
 */
void lc__notify_script_started(lc__core *core);
void lc__notify_worker_listening(lc__core *core);

/* Socket activation --------------------------------------------------------- */

/* Takes the listening sockets passed in LISTEN_FDS (for this pid, or from
 * the master this one upgrades): moves them above the descriptors children
 * get, marks them close-on-exec and unsets LISTEN_*. 0 or a UV_E* code. */
int lc__activation_init(lc__core *core);
/*
 * A passed socket bound to host:port, or -1; for port 0, the one passed
 * under the name of host:0 (an upgrading master's). The caller owns the returned
 * descriptor (non-blocking, close-on-exec). *reuseport says whether it has
 * SO_REUSEPORT; *listening whether it listens already.
 */
int lc__activation_take(lc__core *core, const char *host, int port,
                        int *reuseport, int *listening);
/* Passed sockets no listen() took yet: up to max descriptors into fds and
 * their names (LISTEN_FDNAMES) into names. */
int lc__activation_unused(lc__core *core, int *fds, const char **names,
                          int max);
/* The name a socket for a listen() on host:port is passed under (in
 * LISTEN_FDNAMES, by an upgrading master): "127.0.0.1|0". */
#define LC__PASSED_NAME_MAX 96
void lc__activation_name(const char *host, int port, char *out, size_t size);

#endif
