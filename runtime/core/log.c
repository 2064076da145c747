/*
 * log.c - the one format of the runtime's own log lines:
 *
 *   (host-1234) [2026-11-23 14:00:00.123] [INFO] [worker1] - message
 *
 * INFO and DEBUG go to stdout, WARN and ERROR to stderr. Each line is built
 * whole and written with one call, so lines of several processes sharing a
 * terminal or a pipe do not interleave mid-line.
 */
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

void lc__log(int level, const char *fmt, ...) {
  char line[2048];
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
  n += m;
  if (n > (int)sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';

  if (level >= LC__LOG_WARN) {
    fflush(stdout);
    fwrite(line, 1, (size_t)n, stderr);
    fflush(stderr);
  } else {
    fwrite(line, 1, (size_t)n, stdout);
    fflush(stdout);
  }
}
