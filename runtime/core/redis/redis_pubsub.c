/*
 * redis_pubsub.c - a client's subscriptions (redis.h).
 *
 * The client keeps the channels and patterns it subscribed to, so a new
 * connection renews them (one SUBSCRIBE and one PSUBSCRIBE in its set-up).
 * Replies on a subscribed connection are of three sorts: messages
 * ([message, channel, data], [pmessage, pattern, channel, data]) that
 * nobody asked for, confirmations ([subscribe, name, count], one per name)
 * that answer the subscription command at the head of the ring, and the
 * replies of the few other commands Redis allows there (PING, QUIT).
 * The connection counts as subscribed from the first confirmation with a
 * count above zero until one says zero; only then is a reply shaped like
 * a message taken for one (a message never comes before the confirmation
 * of its subscription).
 */
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"

static int is(const lc__redis_reply *e, const char *word) {
  size_t n = strlen(word);

  return e->type == LC__REDIS_STRING && e->len == n &&
         memcmp(e->str, word, n) == 0;
}

int lc__redis_pubsub_message(lc__redis *r, const lc__redis_reply *reply) {
  lc__redis_message m;
  lc__redis_reply **e = reply->element;
  int i;

  if (reply->type != LC__REDIS_ARRAY || reply->len < 3 || reply->len > 4)
    return 0;
  if (!(reply->len == 3 ? is(e[0], "message") : is(e[0], "pmessage")))
    return 0;
  for (i = 1; i < (int)reply->len; i++)
    if (e[i]->type != LC__REDIS_STRING)
      return 0;
  memset(&m, 0, sizeof(m));
  if (reply->len == 4) {
    m.pattern = e[1]->str;
    m.pattern_len = e[1]->len;
    e++;
  }
  m.channel = e[1]->str;
  m.channel_len = e[1]->len;
  m.data = e[2]->str;
  m.len = e[2]->len;
  if (r->ev->on_message != NULL && !r->core->shutting_down)
    r->ev->on_message(r, &m);
  return 1;
}

int lc__redis_pubsub_confirm(lc__redis *r, const lc__redis_reply *reply) {
  lc__redis_reply **e = reply->element;

  if (reply->type != LC__REDIS_ARRAY || reply->len != 3 ||
      e[2]->type != LC__REDIS_INTEGER)
    return 0;
  if (!is(e[0], "subscribe") && !is(e[0], "psubscribe") &&
      !is(e[0], "unsubscribe") && !is(e[0], "punsubscribe"))
    return 0;
  r->subscribed = e[2]->integer > 0;
  lc__redis_update_ref(r);
  return 1;
}

/* The names ------------------------------------------------------------------------ */

static long names_find(const lc__redis_names *set, const char *s, size_t len) {
  size_t i;

  for (i = 0; i < set->n; i++)
    if (set->lens[i] == len && memcmp(set->names[i], s, len) == 0)
      return (long)i;
  return -1;
}

static int names_add(lc__redis_names *set, const char *s, size_t len) {
  char *copy;

  if (names_find(set, s, len) >= 0)
    return 0;
  if (set->n == set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 8;
    char **names = realloc(set->names, cap * sizeof(*names));
    size_t *lens = names ? realloc(set->lens, cap * sizeof(*lens)) : NULL;
    if (names != NULL)
      set->names = names;
    if (lens == NULL)
      return UV_ENOMEM;
    set->lens = lens;
    set->cap = cap;
  }
  copy = malloc(len + 1);
  if (copy == NULL)
    return UV_ENOMEM;
  memcpy(copy, s, len);
  copy[len] = '\0';
  set->names[set->n] = copy;
  set->lens[set->n] = len;
  set->n++;
  return 0;
}

static void names_remove(lc__redis_names *set, const char *s, size_t len) {
  long i = names_find(set, s, len);

  if (i < 0)
    return;
  free(set->names[i]);
  set->n--;
  set->names[i] = set->names[set->n];
  set->lens[i] = set->lens[set->n];
}

static void names_clear(lc__redis_names *set) {
  while (set->n > 0)
    free(set->names[--set->n]);
}

static void names_free(lc__redis_names *set) {
  names_clear(set);
  free(set->names);
  free(set->lens);
  memset(set, 0, sizeof(*set));
}

void lc__redis_pubsub_free(lc__redis *r) {
  names_free(&r->channels);
  names_free(&r->patterns);
}

size_t lc__redis_subscriptions(const lc__redis *r) {
  return r->channels.n + r->patterns.n;
}

/* Commands ------------------------------------------------------------------------- */

static const char *const verbs[] = {NULL, "SUBSCRIBE", "PSUBSCRIBE",
                                    "UNSUBSCRIBE", "PUNSUBSCRIBE"};

int lc__redis_subscribe(lc__redis *r, int kind, int argc, const char **names,
                        const size_t *lens, lc__redis_cb cb, void *data) {
  lc__redis_names *set =
      kind == LC__REDIS_SUBSCRIBE || kind == LC__REDIS_UNSUBSCRIBE
          ? &r->channels
          : &r->patterns;
  int adding = kind == LC__REDIS_SUBSCRIBE || kind == LC__REDIS_PSUBSCRIBE;
  uint32_t expect = (uint32_t)argc;
  int i, err;

  if (kind < LC__REDIS_SUBSCRIBE || kind > LC__REDIS_PUNSUBSCRIBE ||
      argc < 0 || (adding && argc == 0))
    return UV_EINVAL;
  /* Unsubscribing from all: Redis confirms each name, or once if none. */
  if (argc == 0)
    expect = set->n > 0 ? (uint32_t)set->n : 1;
  if (lc__redis_can_queue(r, 1)) {
    for (i = 0; i < argc; i++) {
      if (!adding) {
        names_remove(set, names[i], lens[i]);
      } else if ((err = names_add(set, names[i], lens[i])) != 0) {
        return err;
      }
    }
    if (argc == 0)
      names_clear(set);
    lc__redis_update_ref(r);
  }
  return lc__redis_sub_command(r, verbs[kind], argc, names, lens, expect, cb,
                               data);
}

/* One renewal command for a set (expecting a confirmation per name). */
static int renew_set(lc__redis_setup *s, const char *verb,
                     const lc__redis_names *set) {
  const char **argv;
  size_t *lens, i;
  int err;

  if (set->n == 0)
    return 0;
  argv = malloc((set->n + 1) * sizeof(*argv));
  lens = malloc((set->n + 1) * sizeof(*lens));
  err = argv && lens ? 0 : UV_ENOMEM;
  if (err == 0) {
    argv[0] = verb;
    lens[0] = strlen(verb);
    for (i = 0; i < set->n; i++) {
      argv[i + 1] = set->names[i];
      lens[i + 1] = set->lens[i];
    }
    err = lc__redis_setup_add(s, KIND_RENEW, (int)set->n + 1, argv, lens,
                              (uint32_t)set->n);
  }
  free(argv);
  free(lens);
  return err;
}

int lc__redis_pubsub_renew(lc__redis *r, lc__redis_setup *s) {
  int err = renew_set(s, "SUBSCRIBE", &r->channels);

  return err ? err : renew_set(s, "PSUBSCRIBE", &r->patterns);
}
