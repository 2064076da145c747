/*
 * bus_topics.c - the master's topic -> subscribers table (bus.h).
 *
 * A chained hash table of topics (FNV-1a over the name's bytes), doubled
 * when it holds as many topics as buckets. Each topic keeps its
 * subscribers' ids sorted, so the router can ask "is this worker
 * subscribed?" in log time while it walks the workers once. A topic with
 * no subscriber left is freed at once: the table holds only live ones,
 * at most LC__BUS_MAX_TOPICS.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bus.h"

#define MIN_BUCKETS 16

static uint32_t topic_hash(const char *name, size_t len) {
  uint32_t h = 2166136261u;
  size_t i;

  for (i = 0; i < len; i++) {
    h ^= (unsigned char)name[i];
    h *= 16777619u;
  }
  return h;
}

void lc__bus_topics_init(lc__bus_topics *t) { memset(t, 0, sizeof(*t)); }

static void topic_free(lc__bus_topic *topic) {
  free(topic->subs);
  free(topic);
}

void lc__bus_topics_free(lc__bus_topics *t) {
  size_t i;

  for (i = 0; i < t->nbuckets; i++) {
    lc__bus_topic *topic = t->buckets[i], *next;
    for (; topic != NULL; topic = next) {
      next = topic->next;
      topic_free(topic);
    }
  }
  free(t->buckets);
  memset(t, 0, sizeof(*t));
}

/* The slot that points at the topic (or at the NULL ending its chain). */
static lc__bus_topic **topic_slot(const lc__bus_topics *t, const char *name,
                                  size_t len, uint32_t hash) {
  lc__bus_topic **pp = &t->buckets[hash & (t->nbuckets - 1)];

  for (; *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->hash == hash && (*pp)->len == len &&
        memcmp((*pp)->name, name, len) == 0)
      break;
  return pp;
}

const lc__bus_topic *lc__bus_topics_find(const lc__bus_topics *t,
                                         const char *name, size_t len) {
  if (t->count == 0)
    return NULL;
  return *topic_slot(t, name, len, topic_hash(name, len));
}

/* Doubles the buckets (or makes the first ones). 0 or UV_ENOMEM. */
static int topics_grow(lc__bus_topics *t) {
  size_t n = t->nbuckets ? t->nbuckets * 2 : MIN_BUCKETS, i;
  lc__bus_topic **buckets = calloc(n, sizeof(*buckets));

  if (buckets == NULL)
    return UV_ENOMEM;
  for (i = 0; i < t->nbuckets; i++) {
    lc__bus_topic *topic = t->buckets[i], *next;
    for (; topic != NULL; topic = next) {
      next = topic->next;
      topic->next = buckets[topic->hash & (n - 1)];
      buckets[topic->hash & (n - 1)] = topic;
    }
  }
  free(t->buckets);
  t->buckets = buckets;
  t->nbuckets = n;
  return 0;
}

/* Where sub is, or would go, in the topic's sorted ids. */
static size_t sub_index(const lc__bus_topic *topic, int sub) {
  size_t lo = 0, hi = topic->nsubs;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (topic->subs[mid] < sub)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int lc__bus_topic_has(const lc__bus_topic *topic, int sub) {
  size_t i;

  if (topic == NULL)
    return 0;
  i = sub_index(topic, sub);
  return i < topic->nsubs && topic->subs[i] == sub;
}

/* Adds sub to the topic's ids. 1, 0 (there already) or UV_ENOMEM. */
static int topic_join(lc__bus_topic *topic, int sub) {
  size_t i = sub_index(topic, sub);

  if (i < topic->nsubs && topic->subs[i] == sub)
    return 0;
  if (topic->nsubs == topic->cap) {
    size_t cap = topic->cap ? topic->cap * 2 : 4;
    int *p = realloc(topic->subs, cap * sizeof(*p));
    if (p == NULL)
      return UV_ENOMEM;
    topic->subs = p;
    topic->cap = cap;
  }
  memmove(topic->subs + i + 1, topic->subs + i,
          (topic->nsubs - i) * sizeof(*topic->subs));
  topic->subs[i] = sub;
  topic->nsubs++;
  return 1;
}

/* Takes sub out of the topic's ids: 1, or 0 when it was not there. */
static int topic_leave(lc__bus_topic *topic, int sub) {
  size_t i = sub_index(topic, sub);

  if (i == topic->nsubs || topic->subs[i] != sub)
    return 0;
  topic->nsubs--;
  memmove(topic->subs + i, topic->subs + i + 1,
          (topic->nsubs - i) * sizeof(*topic->subs));
  return 1;
}

int lc__bus_topics_add(lc__bus_topics *t, const char *name, size_t len,
                       int sub) {
  uint32_t hash = topic_hash(name, len);
  lc__bus_topic **pp, *topic;
  int r;

  if (len == 0 || len > LC__BUS_TOPIC_MAX)
    return UV_EINVAL;
  if (t->count >= t->nbuckets && topics_grow(t) != 0 && t->nbuckets == 0)
    return UV_ENOMEM; /* a table that cannot grow still works, slower */
  pp = topic_slot(t, name, len, hash);
  if (*pp != NULL)
    return topic_join(*pp, sub);
  if (t->count >= LC__BUS_MAX_TOPICS)
    return UV_ENOSPC;
  topic = calloc(1, sizeof(*topic) + len);
  if (topic == NULL)
    return UV_ENOMEM;
  topic->hash = hash;
  topic->len = len;
  memcpy(topic->name, name, len);
  if ((r = topic_join(topic, sub)) < 0) {
    topic_free(topic);
    return r;
  }
  *pp = topic;
  t->count++;
  return 2;
}

int lc__bus_topics_remove(lc__bus_topics *t, const char *name, size_t len,
                          int sub) {
  lc__bus_topic **pp, *topic;

  if (t->count == 0)
    return 0;
  pp = topic_slot(t, name, len, topic_hash(name, len));
  topic = *pp;
  if (topic == NULL || !topic_leave(topic, sub))
    return 0;
  if (topic->nsubs > 0)
    return 1;
  *pp = topic->next;
  t->count--;
  topic_free(topic);
  return 2;
}

size_t lc__bus_topics_remove_all(lc__bus_topics *t, int sub,
                                 void (*gone)(const char *, size_t, void *),
                                 void *arg) {
  size_t i, left = 0;

  for (i = 0; i < t->nbuckets; i++) {
    lc__bus_topic **pp = &t->buckets[i];
    while (*pp != NULL) {
      lc__bus_topic *topic = *pp;
      if (topic_leave(topic, sub)) {
        left++;
        if (topic->nsubs == 0) {
          if (gone != NULL)
            gone(topic->name, topic->len, arg);
          *pp = topic->next;
          t->count--;
          topic_free(topic);
          continue;
        }
      }
      pp = &topic->next;
    }
  }
  return left;
}
