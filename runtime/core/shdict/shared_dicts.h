/*
 * shared_dicts.h - a process's shared dicts by name (shdict.h is one dict).
 *
 *   master   declares them (--shared NAME=SIZE, lc_shared_dict(), or
 *            shared.define() in script mode before the first fork) and
 *            creates each one before any worker exists: the dicts are the
 *            master's, and outlive every worker;
 *   spawn    a worker gets each dict's memfd as a descriptor from 4 on
 *            (its channel is 3), named in LUACLUSTER_SHARED
 *            ("cache:4:67108864,hits:5:1048576": name, descriptor, size);
 *   worker   attaches them at start (lc__dicts_init) and takes the
 *            variable out of its environment;
 *   upgrade  an old master passes its dicts to the new one the same way
 *            (upgrade.c); the new master adopts each one it declares again
 *            with the same size, and drops the rest.
 *
 * The bindings find a dict by name here; the dicts are closed (unmapped)
 * when the core closes. No Lua here.
 */
#ifndef LC_SHARED_DICTS_H
#define LC_SHARED_DICTS_H

#include "core.h"
#include "shdict.h"

#define LC__ENV_SHARED "LUACLUSTER_SHARED"

#define LC__DICTS_MAX 64
#define LC__DICT_NAME_MAX 64
#define LC__DICT_MIN_SIZE ((size_t)32 << 10)
#define LC__DICT_MAX_SIZE ((size_t)128 << 30)
/* Room for LUACLUSTER_SHARED=... naming LC__DICTS_MAX dicts. */
#define LC__DICTS_ENV_MAX (32 + LC__DICTS_MAX * (LC__DICT_NAME_MAX + 32))

typedef struct lc__dicts lc__dicts;

/* A name is 1..64 letters, digits, '_' or '-', not starting with a digit
 * or '-', and not "define" (the shared module's own function). */
int lc__dict_name_valid(const char *name);

/* At start, before anything is defined: a worker attaches the dicts
 * LUACLUSTER_SHARED names; a master started by a binary upgrade keeps its
 * predecessor's for lc__dicts_define to adopt; any other process ignores
 * the variable. Takes it out of the environment. 0, or -1 with the reason
 * in err. */
int lc__dicts_init(lc__core *core, char *err, size_t errlen);

/*
 * A master's new dict `name` of `size` bytes (rounded up to pages). The
 * same name and size passed by an upgrading master is adopted instead,
 * values and all. 0, or -1 with the reason in err: a bad name or size, a
 * name taken, a worker already forked (workers get the dicts at spawn),
 * not a master, or the system's refusal (memfd, mmap).
 */
int lc__dicts_define(lc__core *core, const char *name, size_t size,
                     char *err, size_t errlen);

/* After the declared dicts are defined: what an upgrading master passed
 * and nobody declared again is closed (logged). */
void lc__dicts_drop_unclaimed(lc__core *core);

int lc__dicts_count(const lc__core *core);
const char *lc__dicts_name(const lc__core *core, int i);
lc__shdict *lc__dicts_at(const lc__core *core, int i);
/* The dict called name, or NULL. */
lc__shdict *lc__dicts_find(const lc__core *core, const char *name);

/*
 * What a child is given: every dict's descriptor into fds (the child gets
 * fds[i] as its descriptor first_fd + i) and, when there are any, the
 * "LUACLUSTER_SHARED=..." row naming them into env (LC__DICTS_ENV_MAX
 * bytes). Returns how many (0: env is "").
 */
int lc__dicts_pass(lc__core *core, int first_fd, int *fds, char *env);

#endif
