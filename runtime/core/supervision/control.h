/*
 * control.h - the managed master's control socket: where it lives
 * (control_path.c), the client the `luacluster status|reload|stop|scale`
 * commands use (control_client.c). The server half is manager.h's.
 */
#ifndef LC_CONTROL_H
#define LC_CONTROL_H

#include <stddef.h>

/* The directory control sockets live in: $XDG_RUNTIME_DIR/luacluster when
 * that is set, else /tmp/luacluster-<uid>. */
void lc__control_dir(char *dir, size_t size);
/*
 * Makes sure the control directory is this user's own: creates it (0700)
 * when create is set, then checks, without following a symlink, that it is
 * a directory, owned by us, that neither group nor others may write into,
 * in a parent others cannot swap it in. 0, or -1 with why filled.
 */
int lc__control_dir_check(const char *dir, int create, char *why,
                          size_t why_size);
/* Fills path with the control socket of the app at script_abs. */
int lc__control_default_path(const char *script_abs, char *path, size_t size);
/* A connected Unix socket to path, or -1. */
int lc__control_connect(const char *path);
/* Is something answering on path? */
int lc__control_in_use(const char *path);

/*
 * Sends argv ({"status"[, "--json"]}, {"reload"}, {"stop"}, {"scale", "N"})
 * to the master found by control_path, else LUACLUSTER_CONTROL, else the
 * control socket of script, else the only one running; prints the answer.
 * Returns the exit code.
 */
int lc__control_command(const char *control_path, const char *script,
                        int argc, char **argv);

#endif
