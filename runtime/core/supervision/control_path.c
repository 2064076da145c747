/*
 * control_path.c - where a managed master's control socket lives.
 *
 * $XDG_RUNTIME_DIR/luacluster/<app>-<hash>.sock, or, without an XDG runtime
 * directory, /tmp/luacluster-<uid>/<app>-<hash>.sock (the hash is of the
 * script's absolute path, so two apps named app.lua do not meet); or
 * wherever --control / LUACLUSTER_CONTROL says.
 *
 * A directory in /tmp can be made by anyone first. Whoever owns or can
 * write the directory can put their own socket where the commands look, and
 * `luacluster stop` would believe it. So the master and the commands use
 * the directory only if it is ours and no one else may write in it,
 * checked on the directory itself, never through a symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "control.h"

void lc__control_dir(char *dir, size_t size) {
  const char *xdg = getenv("XDG_RUNTIME_DIR");

  if (xdg != NULL && xdg[0] == '/' && strlen(xdg) + 12 < size)
    snprintf(dir, size, "%s/luacluster", xdg);
  else
    snprintf(dir, size, "/tmp/luacluster-%u", (unsigned)getuid());
}

/* Others may not replace the directory: its parent is ours, not writable
 * by others, or sticky (as /tmp is). */
static int parent_ok(const char *dir, char *why, size_t why_size) {
  char parent[4096];
  struct stat st;
  char *slash;

  snprintf(parent, sizeof(parent), "%s", dir);
  slash = strrchr(parent, '/');
  if (slash == NULL)
    return 0;
  if (slash == parent)
    slash[1] = '\0';
  else
    *slash = '\0';
  if (stat(parent, &st) != 0) {
    snprintf(why, why_size, "%s: %s", parent, strerror(errno));
    return -1;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX) &&
      st.st_uid != getuid()) {
    snprintf(why, why_size, "its parent %s may be written by others", parent);
    return -1;
  }
  return 0;
}

int lc__control_dir_check(const char *dir, int create, char *why,
                          size_t why_size) {
  struct stat st;
  int fd;

  if (parent_ok(dir, why, why_size) != 0)
    return -1;
  if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(why, why_size, "cannot create it: %s", strerror(errno));
    return -1;
  }
  /* The directory itself, not what a symlink points at. */
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR)
      snprintf(why, why_size, "it is a symlink or not a directory");
    else
      snprintf(why, why_size, "%s", strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0) {
    snprintf(why, why_size, "%s", strerror(errno));
    close(fd);
    return -1;
  }
  close(fd);
  if (st.st_uid != getuid()) {
    snprintf(why, why_size, "it is owned by uid %u, not by us (uid %u)",
             (unsigned)st.st_uid, (unsigned)getuid());
    return -1;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(why, why_size, "group or others may write in it (mode %03o)",
             (unsigned)(st.st_mode & 0777));
    return -1;
  }
  return 0;
}

int lc__control_default_path(const char *script_abs, char *path, size_t size) {
  char dir[4096], name[64];
  const char *base = strrchr(script_abs, '/');
  uint32_t h = 2166136261u;
  const char *p;
  size_t n;

  for (p = script_abs; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  base = base ? base + 1 : script_abs;
  n = strlen(base);
  if (n > 4 && strcmp(base + n - 4, ".lua") == 0)
    n -= 4;
  if (n > 40)
    n = 40;
  snprintf(name, sizeof(name), "%.*s", (int)n, base);
  lc__control_dir(dir, sizeof(dir));
  if ((size_t)snprintf(path, size, "%s/%s-%08x.sock", dir, name, h) >= size)
    return UV_ENAMETOOLONG;
  return 0;
}

/* A connected Unix socket to path, or -1. */
int lc__control_connect(const char *path) {
  struct sockaddr_un sa;
  int fd;

  if (strlen(path) >= sizeof(sa.sun_path))
    return -1;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Is something answering on path? */
int lc__control_in_use(const char *path) {
  int fd = lc__control_connect(path);

  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

