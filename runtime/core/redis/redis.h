/*
 * redis.h - a Redis client on the loop, usable from C alone.
 *
 * A client is one connection to one server (host:port, a name looked up
 * through dns.c, never on the loop), made with our own outbound TCP
 * (tcp.c), that every caller of the process shares:
 *
 *   - Commands are queued in the client's output buffer and written by one
 *     idle-phase flusher per loop iteration: everything issued in an
 *     iteration leaves in one write (automatic pipelining). Replies are
 *     matched to commands in order (FIFO).
 *   - hiredis is used for the protocol only: its reader parses replies,
 *     with our own object functions building them into a per-client arena
 *     (no allocation per reply once warm), and its encoder is the
 *     reference our in-place command encoder is tested against.
 *   - Every command has a deadline (command_timeout_ms): past it, its
 *     callback gets UV_ETIMEDOUT and its late reply is dropped when it
 *     comes. A connection whose oldest command got no reply for another
 *     command_timeout_ms after that is considered broken and replaced.
 *   - A lost connection is made again with an exponential backoff with
 *     jitter; AUTH (password, or username and password) and SELECT run
 *     again first, then the subscriptions are renewed. Commands issued
 *     meanwhile wait in a bounded offline queue (max_offline) until the
 *     client is ready or their deadline passes.
 *   - A reply larger than max_reply bytes fails its command with
 *     UV_EMSGSIZE and the connection is replaced (the stream cannot be
 *     resynchronised past a reply that is not read).
 *
 * Callbacks: a command's callback runs exactly once, from the loop, never
 * from inside the call that issued it (a failure found at once, such as a
 * full offline queue, is reported from the next flush). status is 0 with
 * the server's reply (which may be an error reply, LC__REDIS_ERROR), or a
 * negative UV_E* code with reply an LC__REDIS_ERROR reply whose str says
 * why in words ("timeout", "closed", "connection refused", the server's
 * WRONGPASS message, ...). A reply and all it points to live until the
 * callback returns.
 *
 * A client keeps the process alive only while it has work: commands in
 * flight or queued, or subscriptions. An idle client does not (as an
 * idle keep-alive connection does not).
 */
#ifndef LC_REDIS_H
#define LC_REDIS_H

#include "core.h"

typedef struct lc__redis lc__redis;
typedef struct lc__redis_reply lc__redis_reply;

/* Reply types (hiredis's numbers). */
enum lc__redis_type {
  LC__REDIS_STRING = 1,
  LC__REDIS_ARRAY = 2,
  LC__REDIS_INTEGER = 3,
  LC__REDIS_NIL = 4,
  LC__REDIS_STATUS = 5,
  LC__REDIS_ERROR = 6
};

struct lc__redis_reply {
  int type;
  long long integer;          /* LC__REDIS_INTEGER */
  size_t len;                 /* bytes of str, or elements of an array */
  const char *str;            /* STRING, STATUS, ERROR: NUL-terminated */
  lc__redis_reply **element;  /* ARRAY: len elements */
};

typedef struct lc__redis_options {
  const char *host;            /* "127.0.0.1"; a name is looked up */
  int port;                    /* 6379 */
  int db;                      /* SELECT on each connection when not 0 */
  const char *username;        /* AUTH username password (Redis 6 ACL) */
  const char *password;        /* AUTH [username] password; NULL: none */
  const char *name;            /* CLIENT SETNAME on each connection */
  uint64_t connect_timeout_ms; /* 10000: connect, AUTH and SELECT */
  uint64_t command_timeout_ms; /* 10000; 0: commands wait forever */
  uint64_t retry_delay_ms;     /* 100: the first reconnect's delay */
  uint64_t max_retry_delay_ms; /* 2000: the backoff stops growing here */
  size_t max_offline;          /* 10000 commands waiting for a connection;
                                  0: fail at once while not ready */
  size_t max_reply;            /* 64 MiB: the largest reply read */
} lc__redis_options;

/* A pub/sub message: pattern is NULL for a plain "message". */
typedef struct lc__redis_message {
  const char *pattern;
  size_t pattern_len;
  const char *channel;
  size_t channel_len;
  const char *data;
  size_t len;
} lc__redis_message;

/* What the client tells its owner (every field may be NULL). */
typedef struct lc__redis_events {
  /* The TCP connection is up (AUTH and SELECT follow). */
  void (*on_connect)(lc__redis *r);
  /* AUTH, SELECT and resubscription done: commands flow. */
  void (*on_ready)(lc__redis *r);
  /* A connection failed or broke, or AUTH/SELECT was refused. message
   * names the address or carries the server's words. Reported once for
   * the same error in a row (a down server is not reported every retry). */
  void (*on_error)(lc__redis *r, int err, const char *message);
  /* An established connection ended. */
  void (*on_end)(lc__redis *r);
  /* The next connection attempt is in delay_ms (attempt counts from 1). */
  void (*on_reconnecting)(lc__redis *r, uint64_t delay_ms, unsigned attempt);
  /* A message for a subscription. */
  void (*on_message)(lc__redis *r, const lc__redis_message *m);
  /* The client is closed: nothing more is called back, r is freed after. */
  void (*on_close)(lc__redis *r);
} lc__redis_events;

typedef void (*lc__redis_cb)(lc__redis *r, int status,
                             const lc__redis_reply *reply, void *data);

/* Subscription commands (lc__redis_subscribe). */
enum lc__redis_sub {
  LC__REDIS_SUBSCRIBE = 1,
  LC__REDIS_PSUBSCRIBE,
  LC__REDIS_UNSUBSCRIBE,
  LC__REDIS_PUNSUBSCRIBE
};

/* Client states (lc__redis_state). */
enum lc__redis_state {
  LC__REDIS_CONNECTING = 1, /* looking up, connecting, AUTH, SELECT */
  LC__REDIS_READY,
  LC__REDIS_WAITING,        /* between connections (backoff) */
  LC__REDIS_CLOSING,        /* quit or close asked */
  LC__REDIS_CLOSED
};

void lc__redis_options_init(lc__redis_options *o);

/*
 * Makes a client and starts connecting. The options' strings are copied.
 * 0 and *out, or UV_EINVAL (a bad option) / UV_ENOMEM; nothing is called
 * back then.
 */
int lc__redis_new(lc__core *core, const lc__redis_options *o,
                  const lc__redis_events *ev, void *data, lc__redis **out);
/* The owner's pointer given to lc__redis_new. */
void *lc__redis_data(const lc__redis *r);
int lc__redis_state(const lc__redis *r);
/* The last connection error in words ("" when there was none). */
const char *lc__redis_last_error(const lc__redis *r);

/* Issues a command from argc strings. 0, or UV_EINVAL (argc < 1) /
 * UV_ENOMEM / UV_ECANCELED (closing): cb is not called then. */
int lc__redis_command_argv(lc__redis *r, int argc, const char **argv,
                           const size_t *lens, lc__redis_cb cb, void *data);
/*
 * The same, built in place (the bindings encode arguments straight into
 * the output buffer): begin with the number of arguments, add each, then
 * end with the callback; or abort to drop what was added. Nothing else may
 * be issued on r in between.
 */
int lc__redis_command_begin(lc__redis *r, int argc);
void lc__redis_command_arg(lc__redis *r, const char *s, size_t len);
int lc__redis_command_end(lc__redis *r, lc__redis_cb cb, void *data);
void lc__redis_command_abort(lc__redis *r);
/* Whether n more commands would be taken now (not refused as over the
 * offline queue's bound): a transaction is queued whole or not at all. */
int lc__redis_can_queue(const lc__redis *r, size_t n);

/*
 * (P)SUBSCRIBE / (P)UNSUBSCRIBE to names (argc 0 with UNSUBSCRIBE or
 * PUNSUBSCRIBE: all). cb runs once the server confirmed every name, with
 * the last confirmation ([kind, name, count]). Messages go to on_message.
 * The client remembers its subscriptions and renews them on every new
 * connection. A client that subscribes should do nothing else (Redis
 * refuses other commands on a subscribed connection): use a client of its
 * own. Names subscribed to before the first connection is ready go out
 * twice (with the renewal, then with the command): harmless, and the count
 * is the server's. 0 or an error as lc__redis_command_argv.
 */
int lc__redis_subscribe(lc__redis *r, int kind, int argc, const char **names,
                        const size_t *lens, lc__redis_cb cb, void *data);
/* Subscribed channels and patterns (as the client will renew them). */
size_t lc__redis_subscriptions(const lc__redis *r);

/* What a client did so far: commands taken, write calls that sent them
 * (the pipelining at work: commands per write), replies read, connections
 * made. */
typedef struct lc__redis_stats {
  uint64_t commands;
  uint64_t writes;
  uint64_t replies;
  uint64_t connections;
} lc__redis_stats;
void lc__redis_get_stats(const lc__redis *r, lc__redis_stats *out);

/* Sends QUIT after what is queued; the client closes once answered (or
 * once the connection ends). Commands issued after fail (UV_ECANCELED). */
void lc__redis_quit(lc__redis *r);
/* Closes now: commands not answered fail with UV_ECANCELED. */
void lc__redis_close(lc__redis *r);
/* Whether the client may keep the process alive while it has work
 * (default 1; 0: never, as uv_unref). */
void lc__redis_set_ref(lc__redis *r, int ref);

/* Reply parsing and command encoding (redis_reply.c) ------------------------ */

typedef struct lc__redis_parser lc__redis_parser;

/* A reader of replies from a byte stream, with a size bound. */
lc__redis_parser *lc__redis_parser_new(size_t max_reply);
void lc__redis_parser_free(lc__redis_parser *p);
/* Adds bytes read. 0 or UV_ENOMEM. */
int lc__redis_parser_feed(lc__redis_parser *p, const char *data, size_t len);
/*
 * The next complete reply: 1 and *out (valid until the next call), 0 when
 * more bytes are needed, or an error: UV_EMSGSIZE (over max_reply),
 * UV_EPROTO (not RESP; lc__redis_parser_error says how), UV_ENOMEM. After
 * an error the parser is done: make a new one for a new stream.
 */
int lc__redis_parser_next(lc__redis_parser *p, const lc__redis_reply **out);
const char *lc__redis_parser_error(const lc__redis_parser *p);

/* Appends the RESP array header of a command of argc arguments, or one
 * argument (a bulk string), to b. 0 or UV_ENOMEM. */
int lc__redis_encode_header(lc__buf *b, int argc);
int lc__redis_encode_arg(lc__buf *b, const char *s, size_t len);

#endif
