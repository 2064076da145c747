/*
 * channel.h - one master<->worker IPC channel: frames over a Unix socket.
 *
 * The channel reads and writes frames (frame.h) over one end of a
 * socketpair, watched with a uv_poll_t. It owns the framing and the
 * descriptors in flight; what a frame means is the owner's business. It
 * deals in bytes only.
 *
 * Writes are queued and flushed once per loop iteration (a uv_prepare_t),
 * or at once when the backlog passes LC__CHANNEL_FLUSH_AT: a burst of sends
 * becomes a few large writes, and order is kept. Small payloads are copied
 * into the send buffer; a large one can stay in its owner's memory
 * (lc__channel_send_ref) and go out with writev-style sendmsg() calls that
 * gather it between the headers, so a big message is never copied by us.
 * Each HANDLE frame's descriptor goes with the sendmsg() that starts that
 * frame.
 *
 * Reads go into one buffer that is kept between frames (up to a few MiB) and
 * grown to a whole frame's size as soon as its header is in, so a big frame
 * is received in place and handed to on_frame there.
 *
 * After a write to a peer that answers fast while waking this process is
 * slow (an idle vCPU), the loop may poll for the answer a little instead of
 * sleeping (lc__channel_set_spin; channel.c says when).
 *
 * The channel ends once, for one reason (EOF, an I/O error, garbage from the
 * peer, or lc__channel_close()); on_close then runs with that reason. The
 * memory is the owner's to free after on_release.
 */
#ifndef LC_CHANNEL_H
#define LC_CHANNEL_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "frame.h"
#include "owner.h"

#define LC__CHANNEL_MAX_FDS 64
/* A HANDLE frame's descriptor this process could not receive (it is out of
 * descriptors): the frame arrives with this instead of an fd. */
#define LC__CHANNEL_FD_LOST (-2)
#define LC__CHANNEL_FLUSH_AT (256 * 1024)
/* Payloads from this size on are worth sending in place (send_ref). */
#define LC__CHANNEL_REF_MIN (16 * 1024)

typedef struct lc__channel lc__channel;

typedef struct lc__channel_cb {
  /* One whole frame. fd is the frame's descriptor (HANDLE) or -1; the
   * callee owns it. LC__CHANNEL_FD_LOST for a HANDLE frame whose
   * descriptor could not be received (EMFILE): a load condition, the
   * channel goes on. The channel may be closed from inside. */
  void (*on_frame)(lc__channel *ch, const lc__frame *f, int fd);
  /* Bytes written so far: `written`. Runs from the loop after writes (and
   * after lc__channel_kick()), never inside lc__channel_send(). Optional. */
  void (*on_written)(lc__channel *ch, uint64_t written);
  /* A HANDLE frame that never left when the channel ended; the callee owns
   * fd and may hand it elsewhere. Optional: without it the fd is closed. */
  void (*on_unsent)(lc__channel *ch, const lc__control *c, int fd);
  /* The channel ended: err is UV_EOF for a clean end by the peer, 0 for
   * lc__channel_close(), else why; reason says it in words. */
  void (*on_close)(lc__channel *ch, int err, const char *reason);
  /* The channel's handles are closed: its memory may be freed. */
  void (*on_release)(lc__channel *ch);
  /* The frames one read brought are all delivered (so an owner may hand on
   * what it gathered from them at once). Optional. */
  void (*on_delivered)(lc__channel *ch);
} lc__channel_cb;

/* Gives back the memory a send_ref() payload lived in. */
typedef void (*lc__channel_release_cb)(void *arg);

/* A run of the output stream: bytes of the send buffer (base NULL), or a
 * payload in its owner's memory. */
typedef struct lc__channel_seg {
  const char *base;
  size_t len;
  lc__channel_release_cb release;
  void *arg;
} lc__channel_seg;

typedef struct lc__channel_fd {
  uint64_t offset; /* where its frame starts in the output stream */
  int fd;
  lc__control control;
} lc__channel_fd;

enum { LC__CHANNEL_OPEN = 1, LC__CHANNEL_CLOSED, LC__CHANNEL_RELEASED };

struct lc__channel {
  lc__owner owner; /* first: handles' data point here */
  uv_poll_t poll;
  uv_prepare_t flusher;
  uv_idle_t spin; /* keeps the loop from blocking while callbacks queued work */
  int fd;
  int state;
  int polled; /* UV_READABLE | UV_WRITABLE being watched */
  int handles_open;
  int deferred_err; /* a write error seen where closing was not safe */
  int kicked;       /* on_written is owed a run */
  /* Polling for answers (channel.c): */
  uint64_t spin_ns;       /* longest poll after a write; 0: never */
  uint64_t spin_until_ns; /* the current poll's end */
  uint64_t last_write_ns;
  uint64_t wake_ns;       /* what answers cost when we slept (average) */
  int spinning;           /* polling, and no answer yet */
  int spin_fails, spin_skip;
  unsigned spin_writes;
  size_t max_payload;
  lc__buf in;
  lc__buf out;      /* copied bytes of the output stream */
  lc__channel_seg *segs; /* the output stream, in order: */
  size_t seg_head;  /* first not given back (written ones wait for the loop) */
  size_t seg_cur;   /* first not wholly written */
  size_t seg_end, seg_cap;
  size_t seg_done;  /* bytes of segs[seg_cur] already written */
  uint64_t queued;  /* bytes ever queued */
  uint64_t written; /* bytes ever written */
  uint64_t received; /* bytes ever read */
  int in_fds[LC__CHANNEL_MAX_FDS];
  int in_nfds;
  lc__channel_fd *out_fds;
  size_t out_nfds, out_cap;
  const lc__channel_cb *cb;
  void *data;
};

/* Starts a channel on socket fd (made non-blocking and close-on-exec). */
int lc__channel_open(uv_loop_t *loop, lc__channel *ch, int fd,
                     size_t max_payload, const lc__channel_cb *cb, void *data);

/*
 * Queues a frame. fd (HANDLE frames, else -1) is the channel's from now on:
 * it is closed once sent. Returns 0, UV_EMSGSIZE when the payload is over the
 * limit, UV_EPIPE when the channel has ended, or UV_ENOMEM.
 */
int lc__channel_send(lc__channel *ch, int type, const void *payload,
                     size_t len, int fd);

/*
 * Queues a frame whose payload is written from where it is: the memory must
 * stay as it is until release(arg) runs: from the loop once the payload is
 * written, or when the channel ends (never inside a send). On an error
 * nothing is queued and release does not run.
 */
int lc__channel_send_ref(lc__channel *ch, int type, const void *payload,
                         size_t len, lc__channel_release_cb release,
                         void *arg);

/* A user message: MESSAGE or STRING bytes, copied (release NULL) or sent
 * in place (lc__channel_send_ref). UV_EINVAL for another type. */
int lc__channel_send_message(lc__channel *ch, int type, const void *data,
                             size_t len, lc__channel_release_cb release,
                             void *arg);

/* A frame whose payload is head (copied) followed by body: copied too when
 * release is NULL, else written from where it is, as with send_ref. */
int lc__channel_send_parts(lc__channel *ch, int type, const void *head,
                           size_t head_len, const void *body, size_t body_len,
                           lc__channel_release_cb release, void *arg);

/* lc__channel_send() of a control record, type CONTROL or (fd >= 0) HANDLE. */
int lc__channel_send_control(lc__channel *ch, const lc__control *c, int fd);

/* Bytes queued or written beyond what is written: the send backlog. */
static inline uint64_t lc__channel_backlog(const lc__channel *ch) {
  return ch->queued - ch->written;
}

/* Reads and delivers whatever the peer has written, without waiting. */
void lc__channel_read_now(lc__channel *ch);

/* Writes what is queued, waiting at most timeout_ms; for exits. */
void lc__channel_flush_sync(lc__channel *ch, int timeout_ms);

/* Ends the channel (on_close runs with err and reason) and closes it. */
void lc__channel_close(lc__channel *ch, int err, const char *reason);

/* Lets the loop poll up to us microseconds for an answer after a write
 * instead of sleeping, when that pays (0: never; the default). */
void lc__channel_set_spin(lc__channel *ch, unsigned us);

/* Makes on_written run at the end of this loop iteration, even when
 * everything is already written (so send callbacks never run inside a
 * send). */
void lc__channel_kick(lc__channel *ch);


#endif
