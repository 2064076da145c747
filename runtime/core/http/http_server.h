/*
 * http_server.h - the HTTP/1.1 server protocol over a connection: keep-alive,
 * pipelining in order, deadlines, write batching, closing without resets.
 *
 * The protocol reports each request to its user (the Lua binding, or a C
 * test) through an lc__http_server_cb table: the head, body pieces, the end,
 * and an abort when the client goes away first. The user answers with
 * lc__http_respond() calls naming the request by its sequence number, so a
 * late answer to a request that timed out goes nowhere.
 */
#ifndef LC_HTTP_SERVER_H
#define LC_HTTP_SERVER_H

#include "http_codec.h"
#include "tcp.h"

typedef struct lc__http_conn lc__http_conn;

typedef struct lc__http_server_cb {
  /* A request's head (its pointers hold only during the call). Returns 0,
   * or an HTTP status to answer with at once (503: nobody listens). */
  int (*on_request)(lc__http_conn *hc, const lc__http_head *head);
  /* A piece of its body; and the end of it. */
  void (*on_body)(lc__http_conn *hc, const char *data, size_t len);
  void (*on_end)(lc__http_conn *hc);
  /* The client went away (FIN or reset) before the current response was
   * finished: a late answer goes nowhere. */
  void (*on_abort)(lc__http_conn *hc);
  /* The response that was told "backlogged" may write again. */
  void (*on_drain)(lc__http_conn *hc);
  /* The connection is gone: let go of hc->data. */
  void (*on_close)(lc__http_conn *hc);
} lc__http_server_cb;

/* An HTTP server's settings (its lc__server's proto). */
typedef struct lc__http_server {
  lc__http_limits limits;
  uint64_t keep_alive_timeout_ms; /* idle between requests; 5 s */
  uint64_t headers_timeout_ms;    /* from a head's first byte; 60 s */
  uint64_t request_timeout_ms;    /* for the handler to answer; 300 s */
  const lc__http_server_cb *cb;
} lc__http_server;

/* The upper bounds of the request duration buckets (core.h's
 * lc__req_stats), in milliseconds; the last bucket has none. */
extern const unsigned lc__stats_bounds_ms[LC__STATS_BUCKETS - 1];

/* What connections of an HTTP server do (the lc__server's ops). */
extern const lc__conn_ops lc__http_server_conn_ops;

/* Fills settings with the defaults. */
void lc__http_server_init(lc__http_server *server,
                          const lc__http_server_cb *cb);

/* A response's head: status, reason (NULL: the standard text), headers. */
typedef struct lc__http_reply {
  int status;
  const char *reason;
  const lc__http_header *headers;
  size_t nheaders;
} lc__http_reply;

/* The chunk would pass the Content-Length the head declared: nothing is
 * written, and the connection closes after this response. */
#define LC__HTTP_TOO_LONG 2

/*
 * Writes to the response of request seq: the head (the first call, from
 * head), then a body chunk, and with finish the end. Returns 0,
 * LC__HTTP_GONE (the connection closed or moved on: nothing written),
 * LC__HTTP_TOO_LONG, or UV_EINVAL when a header name or value is invalid or
 * Content-Length is not a number (nothing written). A response that ends
 * short of its Content-Length closes the connection after it.
 */
int lc__http_respond(lc__http_conn *hc, uint32_t seq,
                     const lc__http_reply *head, const char *chunk,
                     size_t len, int finish);
/* Whether the response's bytes waiting to be sent passed 16 KiB: then
 * on_drain follows once they are out. */
int lc__http_backlogged(lc__http_conn *hc);
/* Ends the connection after what is already written (a handler failed
 * after its head went out): the rest of the response never comes. */
void lc__http_conn_destroy(lc__http_conn *hc);
/* The request being answered (its sequence number). */
uint32_t lc__http_conn_seq(const lc__http_conn *hc);
int lc__http_conn_peer(lc__http_conn *hc, char *ip, size_t size, int *port);
/* The user's pointer for this connection. */
void **lc__http_conn_data(lc__http_conn *hc);
/* Its transport connection (for what TLS settled on: tls.h). */
lc__conn *lc__http_conn_conn(lc__http_conn *hc);
/* The server this connection came from (NULL once it is gone). */
lc__server *lc__http_conn_server(lc__http_conn *hc);

#endif
