/*
 * signals.c - signal names both ways, for log lines and for the bindings
 * (process.on("SIGUSR2"), worker:kill("SIGKILL")).
 */
#include <signal.h>
#include <string.h>

#include "core.h"

static const struct {
  const char *name;
  int num;
} signal_names[] = {
    {"SIGHUP", SIGHUP},     {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT},
    {"SIGILL", SIGILL},     {"SIGTRAP", SIGTRAP},   {"SIGABRT", SIGABRT},
    {"SIGBUS", SIGBUS},     {"SIGFPE", SIGFPE},     {"SIGKILL", SIGKILL},
    {"SIGUSR1", SIGUSR1},   {"SIGSEGV", SIGSEGV},   {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE},   {"SIGALRM", SIGALRM},   {"SIGTERM", SIGTERM},
    {"SIGCHLD", SIGCHLD},   {"SIGCONT", SIGCONT},   {"SIGSTOP", SIGSTOP},
    {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},   {"SIGTTOU", SIGTTOU},
    {"SIGURG", SIGURG},     {"SIGXCPU", SIGXCPU},   {"SIGXFSZ", SIGXFSZ},
    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH},
    {"SIGIO", SIGIO},       {"SIGSYS", SIGSYS},
};

int lc__signal_number(const char *name) {
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(signal_names); i++)
    if (strcmp(signal_names[i].name, name) == 0)
      return signal_names[i].num;
  return 0;
}

const char *lc__signal_name(int signum) {
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(signal_names); i++)
    if (signal_names[i].num == signum)
      return signal_names[i].name;
  return "SIGUNKNOWN";
}
