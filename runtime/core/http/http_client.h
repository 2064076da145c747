/*
 * http_client.h - the HTTP/1.1 client: requests sent over connections an
 * agent keeps per host:port.
 *
 * An agent (Node's http.Agent) opens connections (looking names up on the
 * thread pool first; TLS ones start their handshake once connected: tls.h),
 * keeps finished ones open for the next request when
 * both sides allow it, and hands them out most recently used first, so the
 * idle ones at the bottom time out and close before the server's own
 * keep-alive timeout (the agent's free-socket timeout, shortened by a
 * "Keep-Alive: timeout=N" the server sends). When every connection allowed
 * is busy, requests wait in a bounded queue.
 *
 * A request reports to its user (the Lua binding, or a C test) through an
 * lc__http_request_cb table: the response's head, body pieces (each may
 * pause the reading: backpressure), the end, an error, an idle timeout,
 * drained writes, and a close that is always the last word. Nothing is
 * called back from inside an lc__http_request_* call: errors found there
 * are told from the loop.
 *
 * An idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) that fails
 * on a reused connection before any byte of its response arrived (the
 * server closed the idle connection as the request went out) is sent once
 * more on a new connection.
 */
#ifndef LC_HTTP_CLIENT_H
#define LC_HTTP_CLIENT_H

#include "http_codec.h"
#include "tcp.h"
#include "tls.h"

typedef struct lc__http_agent lc__http_agent;
typedef struct lc__http_request lc__http_request;

/* Errors besides UV_E* codes (what a request's on_error gets). */
#define LC__HTTP_EBADRESPONSE (-40001) /* malformed: the reason says how */
#define LC__HTTP_EHEADERSIZE (-40002)  /* head over maxHeaderSize / count */
#define LC__HTTP_EBODYSIZE (-40003)    /* body over maxBodySize */
#define LC__HTTP_EQUEUEFULL (-40004)   /* the agent's wait queue is full */

typedef struct lc__http_agent_options {
  int keep_alive;             /* keep connections for later requests */
  size_t max_sockets;         /* connections per host:port */
  size_t max_free_sockets;    /* idle connections kept per host:port */
  size_t max_queue;           /* requests waiting per host:port */
  uint64_t free_timeout_ms;   /* an idle connection closes after this */
  uint64_t connect_timeout_ms; /* for a connection to be made */
} lc__http_agent_options;

/* Node's defaults, bounded: keep-alive off (the binding's globalAgent
 * turns it on), 256 sockets, 256 free, 1024 waiting, 4 s idle, 10 s to
 * connect. */
void lc__http_agent_options_init(lc__http_agent_options *opts);

lc__http_agent *lc__http_agent_new(lc__core *core,
                                   const lc__http_agent_options *opts);
/* Closes the idle connections; the agent goes once its requests are done
 * (on_free, if set, tells its owner when it is freed). */
void lc__http_agent_close(lc__http_agent *agent);
void lc__http_agent_set_free_hook(lc__http_agent *agent,
                                  void (*on_free)(void *data), void *data);

/* Counts for one host:port (or every one with host NULL). */
typedef struct lc__http_agent_stats {
  size_t sockets; /* open or opening, busy or idle */
  size_t free;    /* idle */
  size_t queued;  /* requests waiting for a connection */
  uint64_t connections; /* connections ever opened */
} lc__http_agent_stats;
void lc__http_agent_stats_get(lc__http_agent *agent, const char *host,
                              int port, lc__http_agent_stats *out);

typedef struct lc__http_request_cb {
  /* The response's head (pointers hold during the call). 1: pause. */
  int (*on_response)(lc__http_request *req, const lc__http_head *head);
  /* A piece of its body. 1: pause (lc__http_request_pause(req, 0) goes on). */
  int (*on_body)(lc__http_request *req, const char *data, size_t len);
  /* The whole response was read. */
  void (*on_end)(lc__http_request *req);
  /* The request failed (reason: words, or NULL); only on_close follows. */
  void (*on_error)(lc__http_request *req, int err, const char *reason);
  /* No activity for the request's timeout: the user decides (abort). */
  void (*on_timeout)(lc__http_request *req);
  /* The body writes that lc__http_request_backlogged() reported are out. */
  void (*on_drain)(lc__http_request *req);
  /* The last call: let go of the user's data. */
  void (*on_close)(lc__http_request *req);
} lc__http_request_cb;

/* What a request is and how to read its answer. */
typedef struct lc__http_request_options {
  const char *host;        /* a name (looked up) or an IP address */
  int port;
  const char *method;      /* "GET" */
  lc__tls_ctx *tls;        /* HTTPS: a client context (a reference is
                              taken), or NULL */
  const char *servername;  /* HTTPS: SNI and the name checked (NULL: host) */
  uint64_t timeout_ms;     /* idle time before on_timeout; 0: none */
  lc__http_limits limits;  /* for the response */
} lc__http_request_options;

/*
 * A new request to host:port through agent. It asks for a connection when
 * its head is first sent. 0 and *out, or an error (nothing is called back).
 */
int lc__http_request_new(lc__http_agent *agent,
                         const lc__http_request_options *opts,
                         const lc__http_request_cb *cb, void *data,
                         lc__http_request **out);
void *lc__http_request_data(lc__http_request *req);

/*
 * Sends the head (the first call: line says what; headers are the app's),
 * a piece of the body, and with finish the end of it. With finish on the
 * first call, len is the whole body and goes with a Content-Length; else
 * the body is chunked unless the app set Content-Length. Returns 0,
 * LC__HTTP_GONE (the request is over: nothing sent) or UV_EINVAL (a bad
 * method, path, name or value: nothing sent).
 */
int lc__http_request_send(lc__http_request *req,
                          const lc__http_request_line *line,
                          const lc__http_header *headers, size_t nheaders,
                          const char *body, size_t len, int finish);
/* Whether more than 16 KiB of the body waits to be sent: then on_drain
 * follows once it is out. */
int lc__http_request_backlogged(lc__http_request *req);
/* Stops (pause 1) or restarts reading the response. */
void lc__http_request_pause(lc__http_request *req, int pause);
/* Sets the idle timeout (0: none). */
void lc__http_request_set_timeout(lc__http_request *req, uint64_t ms);
/* Ends the request now: its connection closes unless it was idle; no
 * more callbacks but on_close (from the loop). */
void lc__http_request_abort(lc__http_request *req);
/* Whether it was sent on a connection that served requests before. */
int lc__http_request_reused(const lc__http_request *req);

#endif
