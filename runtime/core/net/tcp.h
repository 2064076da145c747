/*
 * tcp.h - TCP transport: servers and connections in the process that uses
 * them.
 *
 * A server accepts on a listening socket of its own (bound here, or handed
 * over by the master), or is given connections one by one that someone else
 * accepted (the master, in rr and sticky). How a server comes to listen in a
 * worker is shared_listen.c's business; this file knows sockets, not the
 * master. Either way a new connection becomes an lc__conn whose protocol ops
 * (raw TCP for net, HTTP for http) say what the bytes mean. A connection
 * this process opens (lc__conn_connect) is the same lc__conn without a
 * server. This file owns the sockets, reading into one shared buffer,
 * writing with backpressure, deadlines and closing.
 *
 * A connection may have a filter between its socket and its protocol (TLS,
 * tls.h): the filter hears the socket's events in the protocol's place and
 * tells the protocol what it should hear (the plaintext); the protocol's
 * lc__conn_write() goes through the filter, which sends what the socket
 * should carry with lc__conn_write_raw(). The protocol does not know it is
 * there.
 */
#ifndef LC_TCP_H
#define LC_TCP_H

#include "core.h"

typedef struct lc__server lc__server;
typedef struct lc__conn lc__conn;

/* What a protocol does with a connection. */
typedef struct lc__conn_ops {
  /* A new connection (accepted, or an outbound one now connected): set up
   * the protocol state. */
  void (*on_open)(lc__conn *c);
  /* Bytes arrived (in a shared buffer: copy what must outlive the call). */
  void (*on_read)(lc__conn *c, const char *data, size_t len);
  /* The peer finished sending. */
  void (*on_eof)(lc__conn *c);
  /* The connection's deadline passed. */
  void (*on_timeout)(lc__conn *c);
  /* Everything written has left. */
  void (*on_drain)(lc__conn *c);
  /* The server is closing: wind the connection down. */
  void (*on_server_close)(lc__conn *c);
  /* A read or write failed, or an outbound connect did (UV_ETIMEDOUT when
   * its timeout passed); the connection closes next. */
  void (*on_error)(lc__conn *c, int err);
  /* The handle is closed: release the protocol state. */
  void (*on_close)(lc__conn *c);
} lc__conn_ops;

/*
 * A layer between a connection's socket and its protocol. Its events are
 * the socket's, seen first; it passes on (to c->ops) what the protocol
 * should see. The protocol's writes reach write(); end() runs when the
 * protocol ends the stream (lc__conn_shutdown, lc__conn_close_when_written)
 * so the filter can send its last bytes first. A server with a filter
 * (s->filter, s->filter_arg) gives it each new connection with attach()
 * before anything else happens on it.
 */
typedef struct lc__conn_filter {
  lc__conn_ops events;
  int (*write)(lc__conn *c, const char *data, size_t len);
  void (*end)(lc__conn *c);
  /* A server's new connection: set c->filter_data up (0), or an error
   * (the connection closes; the protocol never hears of it). */
  int (*attach)(lc__conn *c, void *arg);
  /* The server is freed: let go of its filter_arg. */
  void (*release)(void *arg);
} lc__conn_filter;

enum lc__server_state {
  LC__SERVER_NEW = 0,
  LC__SERVER_BINDING, /* waiting for the master's answer */
  LC__SERVER_LISTENING,
  LC__SERVER_CLOSING, /* no new connections; waiting for the open ones */
  LC__SERVER_CLOSED
};

struct lc__server {
  lc__owner owner;
  uv_poll_t listener; /* when this process accepts: readable listen_fd */
  int listen_fd;
  int has_listener;
  int polling;
  lc__core *core;
  uint32_t id;
  int state;
  const lc__conn_ops *ops;
  void *proto; /* the protocol's settings (an HTTP server's), or NULL */
  const lc__conn_filter *filter; /* every connection's (TLS), or NULL */
  void *filter_arg;              /* given to filter->attach */
  size_t nconns;
  uint64_t requests; /* handled, for the master's status */
  char host[64];
  char addr[64]; /* bound address */
  int port;
  int backlog;
  uint32_t flags;
  uint64_t timeout_ms; /* idle timeout for new connections, 0 = none */
  void *data;          /* the binding's */
  void (*on_listening)(lc__server *s, int status);
  void (*on_closed)(lc__server *s); /* closing finished */
  void (*on_free)(lc__server *s);   /* the binding lets go of s->data */
  /* Set by the sharing layer (shared_listen.c): the server stops taking
   * connections, tell whoever handed them out. */
  void (*on_unlisten)(lc__server *s);
  lc__server *next;
};

struct lc__conn {
  lc__owner owner;
  uv_tcp_t tcp;
  lc__core *core;
  lc__server *server; /* NULL once the server is gone */
  const lc__conn_ops *ops;
  lc__conn *prev, *next; /* every connection of the process */
  int reading;
  int eof;
  int closing;
  int shutdown; /* a shutdown is queued or done */
  int close_when_written;
  int connecting; /* an outbound connect is under way */
  uint64_t deadline_ms; /* 0: no timeout armed */
  uint64_t timeout_ms;  /* inactivity timeout, re-armed on activity */
  size_t pending_writes;
  size_t linger_bytes;  /* dropped while lingering */
  void *data; /* the protocol's */
  const lc__conn_filter *filter; /* between socket and protocol, or NULL */
  void *filter_data;             /* the filter's */
  uv_connect_t connect_req;
};

/* Servers */
lc__server *lc__server_new(lc__core *core, const lc__conn_ops *ops,
                           void *proto, void *data);
lc__server *lc__server_find(lc__core *core, uint32_t id);
/* Binds host:port here and accepts on it; flags are LC__SOCK_* (sockets.h).
 * 0 or an error. */
int lc__server_bind(lc__server *s, const char *host, int port, int backlog,
                    uint32_t flags);
/* Accepts on a listening socket (the server owns fd from now on). */
int lc__server_accept_on(lc__server *s, int fd);
/* A connection someone else accepted for this server (fd is taken). */
void lc__server_adopt(lc__server *s, int fd);
/* Stops accepting; on_server_close goes to each connection; on_closed
 * once the last connection is gone. */
void lc__server_close(lc__server *s);
/* Frees a server that is closed, or new (never listened). */
void lc__server_free(lc__server *s);

/* Every server of the process */
/* Closes every server, lets connections finish, then calls done. */
void lc__servers_drain(lc__core *core, void (*done)(lc__core *core));
/* Requests handled by every server so far (the heartbeat reports it). */
uint64_t lc__servers_requests(lc__core *core);

/* Connections */
/*
 * Opens a connection to addr (from local, when not NULL) with data as the
 * protocol's pointer: ops->on_open once connected, or ops->on_error (then
 * on_close) when the connect fails or timeout_ms (0: none) passes first.
 * 0 and *out, or an error (nothing was made, nothing is called back).
 */
int lc__conn_connect(lc__core *core, const struct sockaddr *addr,
                     const struct sockaddr *local, const lc__conn_ops *ops,
                     void *data, uint64_t timeout_ms, lc__conn **out);
/* Writes through the connection's filter, if it has one. */
int lc__conn_write(lc__conn *c, const char *data, size_t len);
/* Writes to the socket itself (what a filter sends). */
int lc__conn_write_raw(lc__conn *c, const char *data, size_t len);
/* Puts a filter under the protocol of an open (or connecting) connection
 * (the filter's own set-up has filled c->filter_data). */
void lc__conn_set_filter(lc__conn *c, const lc__conn_filter *filter,
                         void *data);
/* The stream ended above the socket (a filter's end of data, TLS's
 * close_notify): reads stop as at a FIN. */
void lc__conn_end_of_stream(lc__conn *c);
/* Write then send FIN once the queue is empty. */
void lc__conn_shutdown(lc__conn *c);
void lc__conn_close(lc__conn *c);
/* Closes once everything written has left (no lingering: for a peer that
 * will send nothing more). */
void lc__conn_close_when_written(lc__conn *c);
void lc__conn_pause(lc__conn *c);
void lc__conn_resume(lc__conn *c);
/* Arms (ms > 0) or clears the inactivity deadline. */
void lc__conn_set_timeout(lc__conn *c, uint64_t ms);
/* Pushes the deadline on activity. */
void lc__conn_touch(lc__conn *c);
/* The words a client gives for a connection error: "timeout", "closed",
 * "connection refused", "connection reset by peer", "handshake failed",
 * else libuv's text. (OpenResty's cosockets say the same.) */
const char *lc__conn_strerror(int err);
int lc__conn_peer(lc__conn *c, char *ip, size_t size, int *port);
int lc__conn_local(lc__conn *c, char *ip, size_t size, int *port);
size_t lc__conn_write_queue(const lc__conn *c);

#endif
