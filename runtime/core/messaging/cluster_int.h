/*
 * cluster_int.h - what cluster_redis.c (messages) and cluster_status.c
 * (registration, `status --cluster`) share.
 */
#ifndef LC_CLUSTER_INT_H
#define LC_CLUSTER_INT_H

#include "cluster_redis.h"
#include "redis.h"

typedef struct lc__cluster_query lc__cluster_query;

struct lc__cluster {
  lc__owner owner; /* first: the registration timer's data points here */
  uv_timer_t timer;
  int timer_open;
  lc__core *core;
  lc__redis *pub; /* commands: PUBLISH, the registration, status */
  lc__redis *sub; /* the subscriber */
  char name[LC__CLUSTER_NAME_MAX + 1];
  char prefix[LC__CLUSTER_NAME_MAX + 16]; /* "luacluster:<name>:" */
  char hostname[200];
  char host[LC__BUS_HOST_MAX + 1]; /* "<hostname>:<pid>" */
  char where[300];                 /* Redis's address, for the log */
  uint8_t node[LC__CLUSTER_NODE_SIZE];
  uint64_t dropped;   /* sends to other hosts that could not go */
  int drop_said;      /* said so for this outage */
  int joined;         /* the command client was ready once */
  int leaving;        /* the master stops: no more registrations */
  int sub_lost;       /* the subscriber's connection ended */
  uint64_t refused;   /* messages from Redis not in our format */
  uint64_t refused_said_ms;
  int registering;    /* a registration is in flight */
  size_t in_flight;   /* PUBLISHes not answered yet */
  size_t in_flight_bytes;
  lc__buf envelope;   /* the PUBLISH being built */
  lc__buf channel;    /* a channel's name being built */
  lc__cluster_query *queries; /* `status --cluster` in flight */
};

/* cluster_status.c */
int lc__cluster_registry_start(lc__cluster *c);
/* Renews this master's registration now (when the client is ready). */
void lc__cluster_register(lc__cluster *c);
void lc__cluster_status_free(lc__cluster *c);

#endif
