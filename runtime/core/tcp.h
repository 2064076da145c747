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
int lc__conn_write(lc__conn *c, const char *data, size_t len);
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
int lc__conn_peer(lc__conn *c, char *ip, size_t size, int *port);
int lc__conn_local(lc__conn *c, char *ip, size_t size, int *port);
size_t lc__conn_write_queue(const lc__conn *c);

#endif
