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
/* A line describing what would run ("app /x/app.lua, 4 workers, rr"). */
const char *lc_cli_config_summary(lc_cli_config *cfg);
void lc_cli_config_free(lc_cli_config *cfg);

#endif
