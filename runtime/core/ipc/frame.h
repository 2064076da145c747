/*
 * frame.h - the IPC frame format, with no I/O.
 *
 * Every frame on a master<->worker channel is an 8-byte header and a payload:
 *
 *   0   'L' 'C'        magic: a peer that writes anything else is garbage
 *   2   type           LC__FRAME_MESSAGE, _CONTROL, _HANDLE, _STATS, _STRING
 *                      _BUS or _TLS_KEYS
 *   3   flags          0 (reserved)
 *   4   length         payload bytes, big-endian uint32
 *
 * A user's message is a MESSAGE frame, whose payload is one Lua value in
 * LuaJIT's string.buffer serialization (message.h checks it), or, when the
 * value is a string, a STRING frame carrying its bytes as they are. CONTROL
 * and HANDLE payloads are an lc__control record. A HANDLE frame also carries
 * one descriptor, attached (SCM_RIGHTS) to the write that starts the frame.
 * A BUS frame is cluster messaging (broadcast, publish/subscribe,
 * request/reply): its payload is a bus record (bus.h).
 * A TLS_KEYS frame (master -> worker) carries the session ticket keys
 * (tls.h).
 */
#ifndef LC_FRAME_H
#define LC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define LC__FRAME_HEADER_SIZE 8

enum lc__frame_type {
  LC__FRAME_MESSAGE = 1,
  LC__FRAME_CONTROL = 2,
  LC__FRAME_HANDLE = 3,
  /* worker -> master, after each PONG: an lc__req_stats (core.h) */
  LC__FRAME_STATS = 4,
  /* a user message that is a plain string: its bytes as they are */
  LC__FRAME_STRING = 5,
  /* cluster messaging: a bus record (bus.h) */
  LC__FRAME_BUS = 6,
  /* master -> worker: TLS session ticket keys (tls_tickets.c) */
  LC__FRAME_TLS_KEYS = 7,
  LC__FRAME_TYPE_MAX = LC__FRAME_TLS_KEYS
};

typedef struct lc__frame {
  int type;
  const char *payload;
  size_t payload_len;
  size_t size; /* header + payload: what to consume */
} lc__frame;

/* Writes the header of a frame of `type` with `len` payload bytes. */
void lc__frame_header(char out[LC__FRAME_HEADER_SIZE], int type, uint32_t len);

/* The payload length a whole header announces. */
uint32_t lc__frame_length(const char header[LC__FRAME_HEADER_SIZE]);

/*
 * Looks for one frame at the start of data[0, len).
 * Returns 1 and fills f when a whole frame is there, 0 when more bytes are
 * needed, or a negative code when the bytes cannot be a frame:
 * LC__FRAME_EMAGIC, LC__FRAME_ETYPE, or LC__FRAME_ETOOBIG (the length is over
 * max_payload). lc__frame_strerror() says which in words.
 */
int lc__frame_parse(const char *data, size_t len, size_t max_payload,
                    lc__frame *f);

#define LC__FRAME_EMAGIC (-1)
#define LC__FRAME_ETYPE (-2)
#define LC__FRAME_ETOOBIG (-3)

const char *lc__frame_strerror(int err);

/*
 * The record CONTROL and HANDLE frames carry: master and worker are the same
 * executable, so it travels as a fixed-size struct (as nginx's channel does),
 * checked on arrival by lc__control_check().
 */
enum lc__control_cmd {
  /* worker -> master */
  LC__CTL_ONLINE = 1,     /* the worker's runtime is up */
  LC__CTL_LISTEN,         /* server_id wants addr:port shared */
  LC__CTL_LISTENING,      /* server_id is accepting on addr:port */
  LC__CTL_UNLISTEN,       /* server_id closed */
  LC__CTL_DISCONNECT_REQ, /* the worker wants to disconnect */
  LC__CTL_PONG,           /* heartbeat answer; value = seq, value2 = requests */
  /* master -> worker */
  LC__CTL_LISTEN_REPLY,   /* status, port, mode for server_id */
  LC__CTL_DISCONNECT,     /* stop accepting, finish, then close the channel */
  LC__CTL_PING,           /* heartbeat; value = seq */
  /* HANDLE frames: a descriptor for server_id */
  LC__CTL_CONNECTION,     /* an accepted connection (rr, sticky) */
  LC__CTL_LISTENER,       /* a listening socket to accept on (none, reuseport) */
  /* worker -> master: the CONNECTION with this ticket is taken (status 0)
   * or refused (status < 0: the master gives it to another worker) */
  LC__CTL_ACCEPTED,
  LC__CTL_MAX
};

#define LC__CONTROL_ADDR_SIZE 64

typedef struct lc__control {
  uint32_t cmd;
  uint32_t server_id;
  int32_t status; /* 0 or a negative UV_E* code */
  int32_t port;
  uint32_t flags; /* LC__LISTEN_* */
  uint32_t backlog;
  uint64_t value;
  uint64_t value2;
  uint64_t ticket; /* a CONNECTION's number, for its ACCEPTED */
  char addr[LC__CONTROL_ADDR_SIZE]; /* NUL-terminated */
} lc__control;

#define LC__LISTEN_IPV6ONLY 1u

/* 0 when payload holds a well-formed lc__control (copied to *c), else
 * LC__FRAME_ETYPE. */
int lc__control_check(const char *payload, size_t len, lc__control *c);

#endif
