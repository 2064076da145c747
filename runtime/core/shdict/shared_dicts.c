/*
 * shared_dicts.c - a process's shared dicts by name: defined in a master,
 * passed to children as inherited descriptors, attached by workers, adopted
 * across a binary upgrade. See shared_dicts.h.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared_dicts.h"

typedef struct lc__dict {
  char name[LC__DICT_NAME_MAX + 1];
  lc__shdict *dict;
} lc__dict;

struct lc__dicts {
  lc__dict defined[LC__DICTS_MAX];
  int n;
  lc__dict passed[LC__DICTS_MAX]; /* an upgrading master's, not adopted yet */
  int npassed;
  int frozen; /* a child got the dicts: defining more is too late */
};

int lc__dict_name_valid(const char *name) {
  size_t i, len = strlen(name);

  if (len == 0 || len > LC__DICT_NAME_MAX || isdigit((unsigned char)name[0]) ||
      name[0] == '-' || strcmp(name, "define") == 0)
    return 0;
  for (i = 0; i < len; i++)
    if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
      return 0;
  return 1;
}

static void dicts_free(void *arg) {
  lc__core *core = arg;
  lc__dicts *d = core->dicts;
  int i;

  for (i = 0; i < d->n; i++)
    lc__shdict_close(d->defined[i].dict);
  for (i = 0; i < d->npassed; i++)
    lc__shdict_close(d->passed[i].dict);
  free(d);
  core->dicts = NULL;
}

/* Reads one "name:fd:size" of LUACLUSTER_SHARED at *p (moving past it and
 * its comma) and attaches it into `into`. 0, or -1 with the reason. */
static int attach_one(const char **p, lc__dict *into, char *err,
                      size_t errlen) {
  const char *s = *p, *colon = strchr(s, ':');
  unsigned long long size;
  size_t len;
  long fd;
  char *end;
  int rc;

  len = colon ? (size_t)(colon - s) : 0;
  if (len == 0 || len > LC__DICT_NAME_MAX) {
    snprintf(err, errlen, "%s: malformed at \"%.40s\"", LC__ENV_SHARED, s);
    return -1;
  }
  memcpy(into->name, s, len);
  into->name[len] = '\0';
  fd = strtol(colon + 1, &end, 10);
  if (*end != ':' || fd < 3 || !lc__dict_name_valid(into->name)) {
    snprintf(err, errlen, "%s: malformed at \"%.40s\"", LC__ENV_SHARED, s);
    return -1;
  }
  size = strtoull(end + 1, &end, 10);
  if ((*end != ',' && *end != '\0') || size > LC__DICT_MAX_SIZE) {
    snprintf(err, errlen, "%s: malformed at \"%.40s\"", LC__ENV_SHARED, s);
    return -1;
  }
  *p = *end == ',' ? end + 1 : end;
  rc = lc__shdict_attach((int)fd, (size_t)size, &into->dict);
  if (rc != 0) {
    close((int)fd);
    snprintf(err, errlen, "shared dict %s (descriptor %ld): %s", into->name,
             fd, lc__shdict_strerror(rc));
    return -1;
  }
  /* Ours now; children get it again through their spawn, never by leak. */
  fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  return 0;
}

/* Attaches every dict of LUACLUSTER_SHARED into list (at most max). */
static int attach_env(const char *value, lc__dict *list, int *n, char *err,
                      size_t errlen) {
  const char *p = value;

  while (*p != '\0') {
    if (*n == LC__DICTS_MAX) {
      snprintf(err, errlen, "%s: more than %d dicts", LC__ENV_SHARED,
               LC__DICTS_MAX);
      return -1;
    }
    if (attach_one(&p, &list[*n], err, errlen) != 0)
      return -1;
    ++*n;
  }
  return 0;
}

/* Whether this master was started by an upgrading one (upgrade.c), which
 * cannot know our pid beforehand: it names itself, our parent. */
static int upgraded_master(void) {
  const char *from = getenv(LC__ENV_UPGRADE_FROM);

  return from != NULL && atoi(from) == (int)getppid();
}

int lc__dicts_init(lc__core *core, char *err, size_t errlen) {
  const char *value = getenv(LC__ENV_SHARED);
  lc__dicts *d = calloc(1, sizeof(*d));
  int rc = 0, i;

  if (d == NULL || lc__core_on_close(core, dicts_free, core) != 0) {
    free(d);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  core->dicts = d;
  if (value != NULL && core->role == LC__ROLE_WORKER) {
    rc = attach_env(value, d->defined, &d->n, err, errlen);
  } else if (value != NULL && upgraded_master()) {
    /* What cannot be adopted is created anew, so a bad one only warns. */
    if (attach_env(value, d->passed, &d->npassed, err, errlen) != 0)
      lc__log(LC__LOG_WARN, "binary upgrade: %s; the dicts not yet taken "
              "start empty", err);
    for (i = 0; i < d->npassed; i++)
      lc__log(LC__LOG_INFO, "binary upgrade: passed the shared dict %s "
              "(%zu bytes)", d->passed[i].name,
              lc__shdict_capacity(d->passed[i].dict));
  }
  unsetenv(LC__ENV_SHARED);
  return rc;
}

/* Takes the dict an upgrading master passed as name, if it has this
 * size; NULL (and the passed one stays, to be dropped) otherwise. */
static lc__shdict *adopt(lc__dicts *d, const char *name, size_t size) {
  lc__shdict *dict;
  int i;

  for (i = 0; i < d->npassed; i++) {
    if (strcmp(d->passed[i].name, name) != 0)
      continue;
    if (lc__shdict_capacity(d->passed[i].dict) != size) {
      lc__log(LC__LOG_WARN, "shared dict %s: its size changed (%zu to %zu "
              "bytes) across the binary upgrade: it starts empty", name,
              lc__shdict_capacity(d->passed[i].dict), size);
      return NULL;
    }
    dict = d->passed[i].dict;
    d->passed[i] = d->passed[--d->npassed];
    return dict;
  }
  return NULL;
}

static int define_check(lc__core *core, const char *name, size_t size,
                        char *err, size_t errlen) {
  lc__dicts *d = core->dicts;

  if (core->role == LC__ROLE_WORKER) {
    snprintf(err, errlen, "only the master defines shared dicts (a worker "
             "gets the master's: define them under cluster.isMaster)");
    return -1;
  }
  if (d->frozen) {
    snprintf(err, errlen, "too late: shared dicts are defined before the "
             "first worker is forked (each worker gets them as it starts)");
    return -1;
  }
  if (!lc__dict_name_valid(name)) {
    snprintf(err, errlen, "shared dict \"%.80s\": bad name (1 to %d letters, "
             "digits, _ or -, not starting with a digit or -, not "
             "\"define\")", name, LC__DICT_NAME_MAX);
    return -1;
  }
  if (size < LC__DICT_MIN_SIZE || size > LC__DICT_MAX_SIZE) {
    snprintf(err, errlen, "shared dict %s: size %zu bytes is out of range "
             "(32k to 128g)", name, size);
    return -1;
  }
  if (lc__dicts_find(core, name) != NULL) {
    snprintf(err, errlen, "shared dict %s is defined already", name);
    return -1;
  }
  if (d->n == LC__DICTS_MAX) {
    snprintf(err, errlen, "too many shared dicts (%d at most)",
             LC__DICTS_MAX);
    return -1;
  }
  return 0;
}

int lc__dicts_define(lc__core *core, const char *name, size_t size,
                     char *err, size_t errlen) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  lc__dicts *d = core->dicts;
  lc__dict *slot;
  int rc;

  if (define_check(core, name, size, err, errlen) != 0)
    return -1;
  size = (size + page - 1) / page * page;
  slot = &d->defined[d->n];
  snprintf(slot->name, sizeof(slot->name), "%s", name);
  slot->dict = adopt(d, name, size);
  if (slot->dict == NULL &&
      (rc = lc__shdict_create(name, size, 0, &slot->dict)) != 0) {
    snprintf(err, errlen, "shared dict %s: cannot create it (%zu bytes): %s",
             name, size, lc__shdict_strerror(rc));
    return -1;
  }
  d->n++;
  return 0;
}

void lc__dicts_drop_unclaimed(lc__core *core) {
  lc__dicts *d = core->dicts;
  int i;

  for (i = 0; i < d->npassed; i++) {
    lc__log(LC__LOG_INFO, "binary upgrade: the shared dict %s is no longer "
            "declared: dropped", d->passed[i].name);
    lc__shdict_close(d->passed[i].dict);
  }
  d->npassed = 0;
}

int lc__dicts_count(const lc__core *core) {
  return core->dicts != NULL ? core->dicts->n : 0;
}

const char *lc__dicts_name(const lc__core *core, int i) {
  return core->dicts->defined[i].name;
}

lc__shdict *lc__dicts_at(const lc__core *core, int i) {
  return core->dicts->defined[i].dict;
}

lc__shdict *lc__dicts_find(const lc__core *core, const char *name) {
  int i;

  for (i = 0; i < lc__dicts_count(core); i++)
    if (strcmp(core->dicts->defined[i].name, name) == 0)
      return core->dicts->defined[i].dict;
  return NULL;
}

int lc__dicts_pass(lc__core *core, int first_fd, int *fds, char *env) {
  lc__dicts *d = core->dicts;
  size_t off;
  int i;

  env[0] = '\0';
  if (d == NULL)
    return 0;
  d->frozen = 1;
  if (d->n == 0)
    return 0;
  off = (size_t)snprintf(env, LC__DICTS_ENV_MAX, "%s=", LC__ENV_SHARED);
  for (i = 0; i < d->n; i++) {
    fds[i] = lc__shdict_fd(d->defined[i].dict);
    off += (size_t)snprintf(env + off, LC__DICTS_ENV_MAX - off, "%s%s:%d:%zu",
                            i ? "," : "", d->defined[i].name, first_fd + i,
                            lc__shdict_capacity(d->defined[i].dict));
  }
  return d->n;
}
