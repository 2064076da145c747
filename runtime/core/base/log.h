/*
 * log.h - the one format of the runtime's own log lines:
 *
 *   (host-1234) [2026-11-23 14:00:00.123] [INFO] [worker1] - message
 *
 * The log is the process's, as its stderr is: lc__log_init() names who
 * writes (master, worker3) once, at start. With --log FILE, stdout and
 * stderr both go to FILE, and SIGUSR1 reopens it.
 */
#ifndef LC_LOG_H
#define LC_LOG_H

enum lc__log_level { LC__LOG_DEBUG, LC__LOG_INFO, LC__LOG_WARN, LC__LOG_ERROR };

/* Sets the name log lines carry ("master", "worker3"). */
void lc__log_init(const char *who);
/* One runtime log line: (host-pid) [time] [LEVEL] [who] - message. */
void lc__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* LC__LOG_* for "debug", "info", "warn"/"warning", "error"; -1 if unknown. */
int lc__log_level_from_name(const char *name);
/* Sends stdout and stderr (the runtime's lines and the app's output) to
 * the file at path, appending. 0 or a UV_E* code. */
int lc__log_open(const char *path);
/* Opens the log file again (after logrotate moved it): SIGUSR1. */
void lc__log_reopen(void);
/* For a condition that can repeat fast (out of descriptors): 1 when the
 * last line about it, at *last_ms, is every_ms old (and *last_ms is now). */
int lc__log_due(unsigned long long *last_ms, unsigned every_ms);

#endif
