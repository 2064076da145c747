/*
 * redis_int.h - what the parts of the Redis client share (redis.c: the
 * connection's life; redis_command.c: commands, replies, deadlines;
 * redis_pubsub.c: subscriptions). Not for the client's users: redis.h.
 */
#ifndef LC_REDIS_INT_H
#define LC_REDIS_INT_H

#include "dns.h"
#include "redis.h"
#include "tcp.h"

/* Who issued a command. */
enum redis_kind {
  KIND_USER = 0, /* through the API: its callback runs once */
  KIND_SETUP,    /* AUTH, SELECT, CLIENT SETNAME on a new connection */
  KIND_RENEW,    /* a subscription renewed on a new connection */
  KIND_QUIT      /* lc__redis_quit() */
};

/* A command waiting for its reply (sent) or for its turn (not yet). */
typedef struct lc__redis_cmd {
  lc__redis_cb cb;   /* NULL once it failed with a timeout (a tombstone) */
  void *data;
  uint64_t deadline; /* loop time in ms; 0: none */
  size_t bytes;      /* its encoding's length in the output buffer */
  uint32_t expect;   /* subscription commands: confirmations to come */
  uint8_t kind;
  uint8_t sub;       /* a (P)(UN)SUBSCRIBE: replies are confirmations */
} lc__redis_cmd;

/* Commands in order: a ring that grows. The first nsent were written. */
typedef struct lc__redis_ring {
  lc__redis_cmd *items;
  size_t head, count, cap;
  size_t nsent;
} lc__redis_ring;

/* A failure found when a command was issued, reported from the flusher. */
typedef struct lc__redis_failure {
  lc__redis_cb cb;
  void *data;
  int status;
} lc__redis_failure;

/* Subscribed names of one kind (channels or patterns). */
typedef struct lc__redis_names {
  char **names;
  size_t *lens;
  size_t n, cap;
} lc__redis_names;

struct lc__redis {
  lc__owner owner; /* first: the data of every handle below */
  lc__core *core;
  lc__redis_options opts; /* the strings are the client's copies */
  const lc__redis_events *ev;
  void *data;
  int state;

  /* The connection */
  lc__conn *conn;          /* NULL between connections */
  lc__dns_req *dns;        /* a lookup under way */
  lc__redis_parser *parser; /* the connection's replies */
  char where[300];         /* host:port, for messages */
  int opened;              /* the TCP connection was made */
  int first_connect;       /* the first attempt is under way */
  int setup_left;          /* AUTH/SELECT/... replies still to come */
  int established;         /* got past the set-up: "end" when it goes */
  int conn_err;            /* why the connection is going */
  int reset;               /* ... we closed it and said why */
  unsigned attempt;        /* reconnects since the last ready */
  uint64_t rng;            /* for the jitter */
  int fatal;               /* AUTH or SELECT refused: UV_EACCES ... */
  char fatal_msg[256];     /* ... and the server's words */
  int last_err;            /* the last error reported (not twice) */
  char last_msg[256];
  char words[320];         /* a failure's words, built for its callback */

  /* Commands */
  lc__buf out;         /* encoded, not yet written */
  lc__redis_ring ring;
  size_t npending;     /* user commands not answered yet */
  size_t building;     /* out's size when a command began, + 1 */
  int building_argc;   /* arguments still to come */
  lc__redis_failure *failed;
  size_t nfailed, failed_cap;
  int quitting;
  lc__redis_stats stats;

  /* Subscriptions */
  lc__redis_names channels, patterns;
  int subscribed; /* the server's last count was not 0 */

  uv_idle_t flusher; /* writes what an iteration issued */
  uv_timer_t timer;  /* command deadlines */
  uv_timer_t retry;  /* the next connection attempt */
  int handles_open;
  int allow_ref;     /* lc__redis_set_ref */
  int refd;          /* the handles keep the loop alive now */
};

/* redis.c */
/* The connection is bad (a protocol error, a broken stream): close it and
 * fail what it carried with err (message: for the log and the event). */
void lc__redis_conn_reset(lc__redis *r, int err, const char *message);
/* A set-up command's reply came. */
void lc__redis_setup_reply(lc__redis *r, const lc__redis_cmd *c,
                           const lc__redis_reply *reply);
/* Re-checks whether the client keeps the loop alive. */
void lc__redis_update_ref(lc__redis *r);
/* Words for a failure status ("timeout", "closed", ...). */
const char *lc__redis_words(lc__redis *r, int status);

/* redis_command.c */
lc__redis_cmd *lc__redis_ring_at(lc__redis_ring *q, size_t i);
int lc__redis_ring_push(lc__redis_ring *q, const lc__redis_cmd *c, int front);
void lc__redis_ring_pop(lc__redis_ring *q, lc__redis_cmd *out);
void lc__redis_ring_free(lc__redis_ring *q);
/* Queues an internal command (QUIT, a renewal) after the rest. */
int lc__redis_internal(lc__redis *r, int kind, int argc, const char **argv,
                       const size_t *lens, uint32_t expect);
/* A subscription command from the API (redis_pubsub.c keeps the names). */
int lc__redis_sub_command(lc__redis *r, const char *verb, int argc,
                          const char **names, const size_t *lens,
                          uint32_t expect, lc__redis_cb cb, void *data);
/* The commands a new connection starts with (AUTH, SELECT, CLIENT
 * SETNAME, renewed subscriptions): added in order, then sent at once
 * ahead of every command that waits. */
typedef struct lc__redis_setup {
  lc__buf bytes;
  lc__redis_cmd cmds[5];
  size_t n;
} lc__redis_setup;
int lc__redis_setup_add(lc__redis_setup *s, int kind, int argc,
                        const char **argv, const size_t *lens,
                        uint32_t expect);
int lc__redis_setup_send(lc__redis *r, lc__redis_setup *s);
/* Writes the output buffer now (set-up) or from the flusher. */
void lc__redis_flush_soon(lc__redis *r);
int lc__redis_write_out(lc__redis *r);
/* Calls back a command that failed (status < 0) or got its reply. */
void lc__redis_complete(lc__redis *r, lc__redis_cmd *c, int status,
                        const lc__redis_reply *reply);
/* Fails every command: those sent (the connection went: err), and with
 * also the unsent ones (the client closes, or the server refused AUTH). */
void lc__redis_fail_sent(lc__redis *r, int err);
void lc__redis_fail_all(lc__redis *r, int err);
/* Replies read on the connection. */
void lc__redis_on_bytes(lc__redis *r, const char *data, size_t len);
void lc__redis_arm_timer(lc__redis *r);
void lc__redis_on_timer(uv_timer_t *timer);
void lc__redis_on_flush(uv_idle_t *idle);

/* redis_pubsub.c */
/* A reply while subscribed that is a message: 1 (reported), else 0. */
int lc__redis_pubsub_message(lc__redis *r, const lc__redis_reply *reply);
/* A confirmation ([kind, name, count]) for the head command: 1, else 0. */
int lc__redis_pubsub_confirm(lc__redis *r, const lc__redis_reply *reply);
/* Adds the renewal of every subscription to a new connection's set-up. */
int lc__redis_pubsub_renew(lc__redis *r, lc__redis_setup *s);
void lc__redis_pubsub_free(lc__redis *r);

#endif
