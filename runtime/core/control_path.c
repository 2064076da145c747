/*
 * control_path.c - where a managed master's control socket lives.
 *
 * /tmp/luacluster-<uid>/<app>-<hash>.sock (the hash is of the script's
 * absolute path, so two apps named app.lua do not meet), or wherever
 * --control / LUACLUSTER_CONTROL says.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "control.h"

void lc__control_dir(char *dir, size_t size) {
  snprintf(dir, size, "/tmp/luacluster-%u", (unsigned)getuid());
}

int lc__control_default_path(const char *script_abs, char *path, size_t size) {
  char dir[64], name[64];
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

