/*
 * control_client.c - `luacluster status|reload|stop|scale`: finds a running
 * managed master's control socket, sends one request line and prints the
 * reply (see control_server.c for the protocol).
 */
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "control.h"
#include "core.h"

/* The only socket in the control directory, if there is exactly one. */
static int find_only_socket(const char *dir, char *path, size_t size) {
  struct dirent *e;
  DIR *d;
  int found = 0;

  d = opendir(dir);
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    char candidate[PATH_MAX + 256];
    if (n < 6 || strcmp(e->d_name + n - 5, ".sock") != 0)
      continue;
    snprintf(candidate, sizeof(candidate), "%s/%s", dir, e->d_name);
    if (strlen(candidate) >= size || !lc__control_in_use(candidate))
      continue;
    if (found++ == 0)
      memcpy(path, candidate, strlen(candidate) + 1);
    else if (found == 2)
      fprintf(stderr, "  %s\n  %s\n", path, candidate);
    else
      fprintf(stderr, "  %s\n", candidate);
  }
  closedir(d);
  return found;
}

static int resolve_path(const char *control_path, const char *script,
                        char *path, size_t size) {
  char real[PATH_MAX], dir[PATH_MAX], why[256];
  struct stat st;
  int n;

  if (control_path != NULL) {
    snprintf(path, size, "%s", control_path);
    return 0;
  }
  if (getenv(LC__ENV_CONTROL) != NULL) {
    snprintf(path, size, "%s", getenv(LC__ENV_CONTROL));
    return 0;
  }
  /* A socket in a directory someone else controls may answer for them. */
  lc__control_dir(dir, sizeof(dir));
  if (lstat(dir, &st) == 0 &&
      lc__control_dir_check(dir, 0, why, sizeof(why)) != 0) {
    fprintf(stderr, "luacluster: refusing the control directory %s: %s\n",
            dir, why);
    return -1;
  }
  if (script != NULL) {
    if (realpath(script, real) == NULL) {
      fprintf(stderr, "luacluster: cannot open %s: %s\n", script,
              strerror(errno));
      return -1;
    }
    return lc__control_default_path(real, path, size) == 0 ? 0 : -1;
  }
  n = find_only_socket(dir, path, size);
  if (n == 1)
    return 0;
  fprintf(stderr, n == 0 ? "luacluster: no running cluster found (is one "
                           "started with -w?)\n"
                         : "luacluster: several clusters run (above): name "
                           "the app script\n");
  return -1;
}

/* Sends one request line; returns the reply (malloc'd) or NULL. */
static char *request(const char *path, const char *line, int timeout_ms) {
  struct pollfd pfd;
  lc__buf reply = LC__BUF_INIT;
  char buf[4096];
  ssize_t n;
  int fd = lc__control_connect(path);

  if (fd < 0)
    return NULL;
  if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
    close(fd);
    return NULL;
  }
  pfd.fd = fd;
  pfd.events = POLLIN;
  while (poll(&pfd, 1, timeout_ms) > 0) {
    n = read(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    lc__buf_append(&reply, buf, (size_t)n);
  }
  close(fd);
  lc__buf_append(&reply, "", 1);
  return lc__buf_data(&reply);
}

int lc__control_command(const char *control_path, const char *script,
                        int argc, char **argv) {
  char path[PATH_MAX], line[64];
  const char *cmd = argc > 0 ? argv[0] : "";
  char *reply, *text;
  int json = 0, cluster = 0, ok, i;

  for (i = 1; i < argc && strcmp(cmd, "status") == 0; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (strcmp(argv[i], "--cluster") == 0)
      cluster = 1;
  }
  if (strcmp(cmd, "status") == 0)
    snprintf(line, sizeof(line), "status%s%s\n", cluster ? " cluster" : "",
             json ? " json" : "");
  else if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0 ||
           strcmp(cmd, "upgrade") == 0)
    snprintf(line, sizeof(line), "%s\n", cmd);
  else if (strcmp(cmd, "scale") == 0 && argc > 1 &&
           strspn(argv[1], "0123456789") == strlen(argv[1]) &&
           strlen(argv[1]) <= 4 && atoi(argv[1]) > 0)
    snprintf(line, sizeof(line), "scale %d\n", atoi(argv[1]));
  else {
    fprintf(stderr, "luacluster: usage: luacluster status [--json] "
                    "[--cluster] | reload "
                    "| upgrade | stop | scale N  [app.lua]\n");
    return 1;
  }
  if (resolve_path(control_path, script, path, sizeof(path)) != 0)
    return 1;
  /* A reload waits for every worker to be replaced; an upgrade for the new
   * master's. */
  reply = request(path, line, strcmp(cmd, "reload") == 0 ||
                              strcmp(cmd, "upgrade") == 0 ? 600000 : 10000);
  if (reply == NULL || (reply[0] != 'O' && reply[0] != 'E')) {
    fprintf(stderr, "luacluster: no answer from %s: %s\n", path,
            reply == NULL ? strerror(errno) : "empty reply");
    free(reply);
    return 1;
  }
  ok = strncmp(reply, "OK\n", 3) == 0;
  text = strchr(reply, '\n');
  text = text ? text + 1 : reply;
  fputs(text, ok ? stdout : stderr);
  free(reply);
  if (ok && strcmp(cmd, "stop") == 0) {
    /* Stopped when the master is gone: its socket goes with it. */
    for (i = 0; i < 600 && lc__control_in_use(path); i++)
      usleep(100000);
    if (lc__control_in_use(path)) {
      fprintf(stderr, "luacluster: the master is still stopping\n");
      return 1;
    }
    printf("stopped\n");
  }
  return ok ? 0 : 1;
}
