/*
 * log.c - the one format of the runtime's own log lines:
 *
 *   (host-1234) [2026-11-23 14:00:00.123] [INFO] [worker1] - message
 *
 * INFO and DEBUG go to stdout, WARN and ERROR to stderr. Each line is built
 * whole and written with one call, so lines of several processes sharing a
 * terminal or a pipe do not interleave mid-line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

static char log_host[64];
static char log_who[32] = "master";
static int log_min_level = LC__LOG_INFO;
static char log_path[4096]; /* --log FILE, or empty: the inherited stdout */

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void lc__log_init(const char *who) {
  size_t len = sizeof(log_host);
  const char *env = getenv("LUACLUSTER_LOG_LEVEL");

  if (uv_os_gethostname(log_host, &len) != 0)
    snprintf(log_host, sizeof(log_host), "localhost");
  snprintf(log_who, sizeof(log_who), "%s", who);
  if (env != NULL && lc__log_level_from_name(env) >= 0)
    log_min_level = lc__log_level_from_name(env);
}

int lc__log_level_from_name(const char *name) {
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(level_names); i++)
    if (strcasecmp(name, level_names[i]) == 0)
      return (int)i;
  if (strcasecmp(name, "warning") == 0)
    return LC__LOG_WARN;
  return -1;
}

/* Writes one whole line: WARN and ERROR to stderr, the rest to stdout. */
static void log_write(int level, const char *line, size_t n) {
  if (level >= LC__LOG_WARN) {
    fflush(stdout);
    fwrite(line, 1, n, stderr);
    fflush(stderr);
  } else {
    fwrite(line, 1, n, stdout);
    fflush(stdout);
  }
}

void lc__log(int level, const char *fmt, ...) {
  char line[2048], *big;
  struct timeval tv;
  struct tm tm;
  va_list ap;
  int n, m;

  if (level < log_min_level)
    return;
  if (level < LC__LOG_DEBUG || level > LC__LOG_ERROR)
    level = LC__LOG_ERROR;
  gettimeofday(&tv, NULL);
  localtime_r(&tv.tv_sec, &tm);
  n = snprintf(line, sizeof(line),
               "(%s-%d) [%04d-%02d-%02d %02d:%02d:%02d.%03d] [%s] [%s] - ",
               log_host[0] ? log_host : "localhost", (int)getpid(),
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
               level_names[level], log_who);
  va_start(ap, fmt);
  m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    m = 0;
  if (n + m > (int)sizeof(line) - 2 && (big = malloc((size_t)(n + m) + 2))) {
    /* A long message (an app's console.log of a big value) stays whole. */
    memcpy(big, line, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(big + n, (size_t)m + 1, fmt, ap);
    va_end(ap);
    big[n + m] = '\n';
    log_write(level, big, (size_t)(n + m) + 1);
    free(big);
    return;
  }
  n += m;
  if (n > (int)sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  log_write(level, line, (size_t)n);
}

/* Points stdout and stderr at the file, after what is buffered went out. */
static int log_attach(const char *path) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  int err = 0;

  if (fd < 0)
    return uv_translate_sys_error(errno);
  fflush(stdout);
  fflush(stderr);
  if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
    err = uv_translate_sys_error(errno);
  close(fd);
  return err;
}

int lc__log_open(const char *path) {
  int err;

  if (strlen(path) >= sizeof(log_path))
    return UV_ENAMETOOLONG;
  err = log_attach(path);
  if (err == 0)
    snprintf(log_path, sizeof(log_path), "%s", path);
  return err;
}

void lc__log_reopen(void) {
  int err;

  if (log_path[0] == '\0') {
    lc__log(LC__LOG_INFO, "SIGUSR1: no log file to reopen (no --log)");
    return;
  }
  err = log_attach(log_path);
  if (err)
    lc__log(LC__LOG_ERROR, "cannot reopen the log file %s: %s", log_path,
            uv_strerror(err));
  else
    lc__log(LC__LOG_DEBUG, "reopened the log file %s", log_path);
}

int lc__log_due(unsigned long long *last_ms, unsigned every_ms) {
  unsigned long long now = uv_hrtime() / 1000000;

  if (*last_ms != 0 && now - *last_ms < every_ms)
    return 0;
  *last_ms = now;
  return 1;
}
