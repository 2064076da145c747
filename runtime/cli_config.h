/*
 * cli_config.h - the `luacluster` command's config file (cli_config.c): a
 * Lua file that returns a table (or sets globals) naming the app and the
 * options the flags name. Read with a plain Lua state, on the public API.
 */
#ifndef LC_CLI_CONFIG_H
#define LC_CLI_CONFIG_H

#include <stddef.h>

#include "luacluster.h"

typedef struct lc_cli_config lc_cli_config;

/* A shared dict to declare (--shared NAME=SIZE, or the config's shared =
 * {NAME = SIZE}): given to lc_shared_dict() once the runtime exists. */
#define LC_CLI_SHARED_MAX 64
typedef struct lc_cli_shared {
  char name[65];
  size_t size;
} lc_cli_shared;

typedef struct lc_cli_shared_list {
  lc_cli_shared dicts[LC_CLI_SHARED_MAX];
  int n;
} lc_cli_shared_list;

/* Checks a dict's name and size as lc_shared_dict() will: 0, or -1 with
 * why ("bad name ...", "a shared dict's size is ..."). */
int lc_cli_shared_check(const char *name, unsigned long long size, char *why,
                        size_t n);
/* Parses --shared's NAME=SIZE ("cache=64m"; k, m, g) into list (a name
 * given again gets the new size): 0, or -1 with a one-line reason. */
int lc_cli_shared_parse(const char *arg, lc_cli_shared_list *list, char *why,
                        size_t n);

/*
 * Reads and checks the config file at path into opts (its strings stay
 * valid until lc_cli_config_free) and applies its env to this process's
 * environment. Returns the config, or NULL with the reason in err (it
 * names the file and the key).
 */
lc_cli_config *lc_cli_config_load(const char *path, lc_options *opts,
                                  char *err, size_t errsize);
/* Also compiles the app script, as `luacluster check` does: 0, or -1 with
 * the reason in err. */
int lc_cli_config_check_app(lc_cli_config *cfg, char *err, size_t errsize);
/* The shared dicts the config declares. */
const lc_cli_shared_list *lc_cli_config_shared(const lc_cli_config *cfg);
/* A line describing what would run ("app /x/app.lua, 4 workers, rr"). */
const char *lc_cli_config_summary(lc_cli_config *cfg);
void lc_cli_config_free(lc_cli_config *cfg);

#endif
