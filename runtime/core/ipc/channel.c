/* channel.c - IPC frames over a Unix socket with descriptor passing. */
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

#define READ_CHUNK (64 * 1024)
#define READS_PER_WAKEUP 16
/* Buffers over this are freed once empty: a burst of big messages must not
 * pin its memory, while steady traffic keeps its buffer. */
#define KEEP_INBUF_MAX (4 * 1024 * 1024)
/* Pieces gathered into one sendmsg(). */
#define IOV_BATCH 64
/* What the kernel may hold for the peer (it doubles it): a few big
 * messages in flight, so the peer reads while we write. Best effort. */
#define SOCKET_SNDBUF (1024 * 1024)
/* Polling for an answer pays only when sleeping for it costs more than
 * this; gaps over REPLY_GAP_MAX are not answers; one write in PROBE_EVERY
 * sleeps anyway, to go on measuring what sleeping costs. */
#define SPIN_WORTH_NS 20000
#define REPLY_GAP_MAX_NS 1000000
#define PROBE_EVERY 32

static void channel_end(lc__channel *ch, int err, const char *reason);
static int channel_flush(lc__channel *ch);
static void channel_reap(lc__channel *ch);
static void channel_spin_on_read(lc__channel *ch);
static void on_poll(uv_poll_t *handle, int status, int events);

static void channel_watch(lc__channel *ch, int events) {
  if (ch->state != LC__CHANNEL_OPEN || events == ch->polled)
    return;
  ch->polled = events;
  if (events)
    uv_poll_start(&ch->poll, events, on_poll);
  else
    uv_poll_stop(&ch->poll);
}

/* Delivers every whole frame in the input buffer. */
static void channel_deliver(lc__channel *ch) {
  lc__frame f;
  int r, fd, delivered = 0;

  while (ch->state == LC__CHANNEL_OPEN) {
    r = lc__frame_parse(lc__buf_data(&ch->in), lc__buf_size(&ch->in),
                        ch->max_payload, &f);
    if (r == 0)
      break;
    if (r < 0) {
      channel_end(ch, UV_EPROTO, lc__frame_strerror(r));
      return;
    }
    fd = -1;
    if (f.type == LC__FRAME_HANDLE) {
      if (ch->in_nfds == 0) {
        channel_end(ch, UV_EPROTO, "handle frame without a descriptor");
        return;
      }
      fd = ch->in_fds[0];
      ch->in_nfds--;
      memmove(ch->in_fds, ch->in_fds + 1, ch->in_nfds * sizeof(int));
    }
    /* Consume first: the callback may close the channel and its buffer. */
    lc__buf_consume(&ch->in, f.size);
    ch->cb->on_frame(ch, &f, fd);
    delivered = 1;
  }
  if (delivered && ch->state == LC__CHANNEL_OPEN && ch->cb->on_delivered)
    ch->cb->on_delivered(ch);
  if (lc__buf_size(&ch->in) == 0 && ch->in.cap > KEEP_INBUF_MAX)
    lc__buf_free(&ch->in);
}

/* Takes the descriptors a recvmsg() brought. 0, or -1 when they overflow. */
static int channel_take_fds(lc__channel *ch, struct msghdr *msg) {
  struct cmsghdr *cm;
  int *fds, n, i, bad = 0;

  for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    fds = (int *)CMSG_DATA(cm);
    n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (i = 0; i < n; i++) {
      if (ch->in_nfds < LC__CHANNEL_MAX_FDS)
        ch->in_fds[ch->in_nfds++] = fds[i];
      else {
        close(fds[i]);
        bad = 1;
      }
    }
  }
  return bad ? -1 : 0;
}

/*
 * The kernel could not give us the descriptor a message carried: this
 * process is out of descriptors (EMFILE), and the peer keeps its own copy.
 * A load condition, not a broken channel: its HANDLE frame is delivered with
 * LC__CHANNEL_FD_LOST for the owner to refuse. The peer puts one descriptor
 * on each sendmsg() and the kernel returns at most one such message per
 * recvmsg(), so a truncation that brought none lost exactly one, and the
 * placeholder keeps later descriptors with their frames. 0, or -1 when the
 * queue is full.
 */
static int channel_lost_fd(lc__channel *ch, const struct msghdr *msg) {
  struct cmsghdr *cm;

  for (cm = CMSG_FIRSTHDR(msg); cm != NULL;
       cm = CMSG_NXTHDR((struct msghdr *)msg, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len > CMSG_LEN(0))
      return 0; /* some arrived: the control buffer was too small for more */
  if (ch->in_nfds == LC__CHANNEL_MAX_FDS)
    return -1;
  ch->in_fds[ch->in_nfds++] = LC__CHANNEL_FD_LOST;
  return 0;
}

/* Room for the next read: at least READ_CHUNK, or the rest of a frame whose
 * header is in, so a big frame lands whole in one buffer. */
static size_t channel_read_room(const lc__channel *ch) {
  size_t have = lc__buf_size(&ch->in), need;

  if (have < LC__FRAME_HEADER_SIZE)
    return READ_CHUNK;
  /* channel_deliver() has checked this header against the limit. */
  need = LC__FRAME_HEADER_SIZE + (size_t)lc__frame_length(lc__buf_data(&ch->in));
  return need > have + READ_CHUNK ? need - have : READ_CHUNK;
}

static void channel_read(lc__channel *ch) {
  char control[CMSG_SPACE(sizeof(int) * 8)];
  struct msghdr msg;
  struct iovec iov;
  ssize_t n;
  size_t room;
  int i;

  for (i = 0; i < READS_PER_WAKEUP && ch->state == LC__CHANNEL_OPEN; i++) {
    if (lc__buf_reserve(&ch->in, channel_read_room(ch)) != 0) {
      channel_end(ch, UV_ENOMEM, "out of memory reading the channel");
      return;
    }
    room = ch->in.cap - ch->in.len;
    iov.iov_base = ch->in.base + ch->in.len;
    iov.iov_len = room;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);

    n = recvmsg(ch->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      /* A peer that closed with our frames unread resets: still an end. */
      if (errno == ECONNRESET)
        channel_end(ch, UV_EOF, "closed by peer");
      else if (errno != EAGAIN && errno != EWOULDBLOCK)
        channel_end(ch, uv_translate_sys_error(errno), "read failed");
      return;
    }
    if (msg.msg_controllen > 0 && channel_take_fds(ch, &msg) != 0) {
      channel_end(ch, UV_EPROTO, "too many descriptors in flight");
      return;
    }
    if ((msg.msg_flags & MSG_CTRUNC) && channel_lost_fd(ch, &msg) != 0) {
      channel_end(ch, UV_EPROTO, "too many descriptors in flight");
      return;
    }
    if (n == 0) {
      channel_end(ch, UV_EOF, "closed by peer");
      return;
    }
    ch->in.len += (size_t)n;
    ch->received += (uint64_t)n;
    channel_spin_on_read(ch);
    channel_deliver(ch);
    if ((size_t)n < room)
      return; /* drained: skip the read that would say EAGAIN */
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  lc__channel *ch = handle->data;

  if (status < 0) {
    /* libuv says EBADF for POLLERR: reading tells the real reason. */
    channel_read(ch);
    if (ch->state == LC__CHANNEL_OPEN)
      channel_end(ch, status, "poll failed");
    return;
  }
  if (events & UV_READABLE)
    channel_read(ch);
  if ((events & UV_WRITABLE) && ch->state == LC__CHANNEL_OPEN) {
    int err = channel_flush(ch);
    if (err) {
      channel_end(ch, err, "write failed");
      return;
    }
    channel_reap(ch);
    if (ch->cb->on_written != NULL)
      ch->cb->on_written(ch, ch->written);
  }
}

/*
 * Waiting for an answer without sleeping. A request/answer exchange over the
 * channel costs two wakeups per round trip; on a VM with idle vCPUs each is
 * tens of microseconds, many times the work. So after a write the loop keeps
 * polling (the idle handle makes its poll non-blocking) for up to spin_ns,
 * but only while that pays:
 *   - answers that came while we slept took over SPIN_WORTH_NS on average:
 *     with busy or shared CPUs waking is cheap, and polling would only take
 *     the CPU from the peer;
 *   - a poll that ends without an answer makes the next ones rarer (after 1,
 *     3, 7 ... writes); an answer while polling resets that.
 * The same idle handle keeps the loop from sleeping on work a callback
 * queued from the flusher (spin_until_ns 0: one turn).
 */
static void on_spin(uv_idle_t *handle) {
  lc__channel *ch = handle->data;

  if (uv_hrtime() < ch->spin_until_ns)
    return;
  uv_idle_stop(handle);
  if (ch->spinning) {
    ch->spinning = 0;
    if (ch->spin_fails < 10)
      ch->spin_fails++;
    ch->spin_skip = (1 << ch->spin_fails) - 1;
  }
}

static void channel_spin_after_write(lc__channel *ch) {
  if (ch->spin_ns == 0 || ch->wake_ns < SPIN_WORTH_NS ||
      ++ch->spin_writes % PROBE_EVERY == 0)
    return;
  if (ch->spin_skip > 0) {
    ch->spin_skip--;
    return;
  }
  ch->spinning = 1;
  ch->spin_until_ns = ch->last_write_ns + ch->spin_ns;
  uv_idle_start(&ch->spin, on_spin);
}

/* Bytes came: an answer while polling, or a measure of what sleeping for
 * one costs. */
static void channel_spin_on_read(lc__channel *ch) {
  uint64_t gap;

  if (ch->spin_ns == 0)
    return;
  if (ch->spinning) {
    ch->spinning = 0;
    ch->spin_fails = 0;
    return;
  }
  gap = uv_hrtime() - ch->last_write_ns;
  if (gap < REPLY_GAP_MAX_NS)
    ch->wake_ns = (ch->wake_ns * 7 + gap) / 8;
}

/* Runs before the loop blocks: writes what this iteration queued, then
 * tells the owner how far writing got (never from inside a send). What the
 * owner queues from there (a send in a send callback) must not wait for the
 * next event: the idle handle keeps this iteration's poll from blocking, and
 * the flusher runs again on the next one. */
static void on_flusher(uv_prepare_t *handle) {
  lc__channel *ch = handle->data;
  uint64_t written = ch->written;
  int err = ch->deferred_err ? ch->deferred_err : channel_flush(ch);

  if (err) {
    channel_end(ch, err, "write failed");
    return;
  }
  channel_reap(ch);
  if (ch->written != written)
    channel_spin_after_write(ch);
  /* Done, or waiting for POLLOUT. */
  uv_prepare_stop(&ch->flusher);
  ch->kicked = 0;
  if (ch->cb->on_written != NULL)
    ch->cb->on_written(ch, ch->written);
  if (ch->state == LC__CHANNEL_OPEN && uv_is_active((uv_handle_t *)&ch->flusher))
    uv_idle_start(&ch->spin, on_spin);
}

/* Appends n copied bytes to the output stream (room is reserved). */
static void out_append(lc__channel *ch, const void *p, size_t n) {
  lc__buf_append(&ch->out, p, n);
  ch->segs[ch->seg_end - 1].len += n;
}

/* Makes room for two more segments (a frame's header run and its payload),
 * moving the unreleased ones to the front first. 0 or UV_ENOMEM. */
static int seg_reserve(lc__channel *ch) {
  if (ch->seg_end + 2 > ch->seg_cap) {
    if (ch->seg_head > 0) {
      size_t n = ch->seg_end - ch->seg_head;
      memmove(ch->segs, ch->segs + ch->seg_head, n * sizeof(*ch->segs));
      ch->seg_cur -= ch->seg_head;
      ch->seg_end = n;
      ch->seg_head = 0;
    }
    if (ch->seg_end + 2 > ch->seg_cap) {
      size_t cap = ch->seg_cap ? ch->seg_cap * 2 : 8;
      lc__channel_seg *p = realloc(ch->segs, cap * sizeof(*p));
      if (p == NULL)
        return UV_ENOMEM;
      ch->segs = p;
      ch->seg_cap = cap;
    }
  }
  return 0;
}

static void seg_push(lc__channel *ch, const char *base, size_t len,
                     lc__channel_release_cb release, void *arg) {
  lc__channel_seg *seg = &ch->segs[ch->seg_end++];

  seg->base = base;
  seg->len = len;
  seg->release = release;
  seg->arg = arg;
}

/* The copied-bytes segment appends go to: the last one while unwritten. */
static void seg_open_copied(lc__channel *ch) {
  if (ch->seg_end == ch->seg_cur || ch->segs[ch->seg_end - 1].base != NULL)
    seg_push(ch, NULL, 0, NULL, NULL);
}

/* Gathers up to `limit` unwritten bytes of the stream into iov. */
static int channel_gather(lc__channel *ch, struct iovec *iov, size_t limit) {
  const char *copied = lc__buf_data(&ch->out);
  size_t i, off = ch->seg_done, n;
  int niov = 0;

  for (i = ch->seg_cur; i < ch->seg_end && niov < IOV_BATCH && limit > 0; i++) {
    const lc__channel_seg *seg = &ch->segs[i];
    n = seg->len - off;
    if (n > limit)
      n = limit;
    if (n > 0) {
      /* Copied bytes are consumed from the buffer as they are written. */
      iov[niov].iov_base = (char *)(seg->base ? seg->base + off : copied);
      iov[niov++].iov_len = n;
      if (seg->base == NULL)
        copied += n;
      limit -= n;
    }
    off = 0;
  }
  return niov;
}

/* Counts n more bytes as written; passes the segments they finish (and
 * empty ones). */
static void channel_advance(lc__channel *ch, size_t n) {
  ch->written += n;
  while (ch->seg_cur < ch->seg_end) {
    lc__channel_seg *seg = &ch->segs[ch->seg_cur];
    size_t take = seg->len - ch->seg_done;
    if (take > n)
      take = n;
    if (seg->base == NULL)
      lc__buf_consume(&ch->out, take);
    ch->seg_done += take;
    n -= take;
    if (ch->seg_done < seg->len)
      break;
    ch->seg_cur++;
    ch->seg_done = 0;
  }
}

/* Gives back the payloads that are written. From the loop only. */
static void channel_reap(lc__channel *ch) {
  while (ch->seg_head < ch->seg_cur) {
    lc__channel_seg *seg = &ch->segs[ch->seg_head++];
    if (seg->release != NULL)
      seg->release(seg->arg);
  }
  if (ch->seg_head == ch->seg_end)
    ch->seg_head = ch->seg_cur = ch->seg_end = 0;
}

/*
 * Writes as much as the socket takes. A HANDLE frame's descriptor rides on
 * the sendmsg() that starts its frame, so writes are cut at frame starts that
 * carry one. Returns 0 (done, or waiting for POLLOUT) or an error to end on.
 */
static int channel_flush(lc__channel *ch) {
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov[IOV_BATCH];
  struct msghdr msg;
  struct cmsghdr *cm;
  lc__channel_fd *head;
  size_t limit;
  ssize_t n;
  int attach;

  while (ch->written < ch->queued) {
    limit = (size_t)(ch->queued - ch->written);
    attach = 0;
    if (ch->out_nfds > 0) {
      head = &ch->out_fds[0];
      if (head->offset == ch->written) {
        attach = 1;
        if (ch->out_nfds > 1)
          limit = (size_t)(ch->out_fds[1].offset - ch->written);
      } else {
        limit = (size_t)(head->offset - ch->written);
      }
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)channel_gather(ch, iov, limit);
    if (attach) {
      memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(cm), &ch->out_fds[0].fd, sizeof(int));
    }
    n = sendmsg(ch->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        channel_watch(ch, ch->polled | UV_WRITABLE);
        return 0;
      }
      return uv_translate_sys_error(errno);
    }
    if (attach) {
      /* The kernel holds its own reference now. */
      close(ch->out_fds[0].fd);
      ch->out_nfds--;
      memmove(ch->out_fds, ch->out_fds + 1,
              ch->out_nfds * sizeof(lc__channel_fd));
    }
    channel_advance(ch, (size_t)n);
    if (ch->spin_ns != 0)
      ch->last_write_ns = uv_hrtime();
  }
  channel_watch(ch, ch->polled & ~UV_WRITABLE);
  if (ch->out.cap > KEEP_INBUF_MAX)
    lc__buf_free(&ch->out);
  return 0;
}

static void on_handle_closed(uv_handle_t *handle) {
  lc__channel *ch = handle->data;

  if (--ch->handles_open == 0) {
    ch->state = LC__CHANNEL_RELEASED;
    if (ch->cb->on_release != NULL)
      ch->cb->on_release(ch);
  }
}

/* Ends the channel once: gives back what was not sent, tells the owner. */
static void channel_end(lc__channel *ch, int err, const char *reason) {
  size_t i;

  if (ch->state != LC__CHANNEL_OPEN)
    return;
  ch->state = LC__CHANNEL_CLOSED;
  uv_poll_stop(&ch->poll);
  uv_prepare_stop(&ch->flusher);
  close(ch->fd);
  ch->fd = -1;

  for (i = 0; i < (size_t)ch->in_nfds; i++)
    if (ch->in_fds[i] >= 0)
      close(ch->in_fds[i]);
  ch->in_nfds = 0;
  for (i = 0; i < ch->out_nfds; i++) {
    if (ch->cb->on_unsent != NULL)
      ch->cb->on_unsent(ch, &ch->out_fds[i].control, ch->out_fds[i].fd);
    else
      close(ch->out_fds[i].fd);
  }
  ch->out_nfds = 0;
  free(ch->out_fds);
  ch->out_fds = NULL;
  /* Written or not, every payload goes back to its owner. */
  ch->seg_cur = ch->seg_end;
  channel_reap(ch);
  free(ch->segs);
  ch->segs = NULL;
  ch->seg_cap = 0;
  lc__buf_free(&ch->in);
  lc__buf_free(&ch->out);

  if (ch->cb->on_close != NULL)
    ch->cb->on_close(ch, err, reason);
  uv_close((uv_handle_t *)&ch->poll, on_handle_closed);
  uv_close((uv_handle_t *)&ch->flusher, on_handle_closed);
  uv_close((uv_handle_t *)&ch->spin, on_handle_closed);
}

static void channel_owner_close(uv_handle_t *handle) {
  lc__channel *ch = handle->data;

  channel_end(ch, 0, "shutting down");
}

int lc__channel_open(uv_loop_t *loop, lc__channel *ch, int fd,
                     size_t max_payload, const lc__channel_cb *cb,
                     void *data) {
  int err, flags, sndbuf;

  memset(ch, 0, sizeof(*ch));
  ch->owner.close = channel_owner_close;
  ch->fd = fd;
  ch->cb = cb;
  ch->data = data;
  ch->max_payload = max_payload;

  flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return uv_translate_sys_error(errno);

  err = uv_poll_init(loop, &ch->poll, fd);
  if (err)
    return err;
  uv_prepare_init(loop, &ch->flusher);
  uv_idle_init(loop, &ch->spin);
  ch->poll.data = ch;
  ch->flusher.data = ch;
  ch->spin.data = ch;
  ch->handles_open = 3;
  ch->state = LC__CHANNEL_OPEN;
  /* The flusher and the spin only run while output waits; they must not
   * keep the loop alive on their own. */
  uv_unref((uv_handle_t *)&ch->flusher);
  uv_unref((uv_handle_t *)&ch->spin);
  sndbuf = SOCKET_SNDBUF;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  ch->polled = UV_READABLE;
  uv_poll_start(&ch->poll, UV_READABLE, on_poll);
  return 0;
}

/* Checks a frame can be queued and makes room for its header, its
 * descriptor slot and `copied` payload bytes. 0 or an error. */
static int channel_prepare(lc__channel *ch, size_t len, size_t copied,
                           int fd) {
  if (ch->state != LC__CHANNEL_OPEN)
    return UV_EPIPE;
  if (len > ch->max_payload)
    return UV_EMSGSIZE;
  if (fd >= 0 && ch->out_nfds == ch->out_cap) {
    size_t cap = ch->out_cap ? ch->out_cap * 2 : 8;
    lc__channel_fd *p = realloc(ch->out_fds, cap * sizeof(*p));
    if (p == NULL)
      return UV_ENOMEM;
    ch->out_fds = p;
    ch->out_cap = cap;
  }
  if (seg_reserve(ch) != 0 ||
      lc__buf_reserve(&ch->out, LC__FRAME_HEADER_SIZE + copied) != 0)
    return UV_ENOMEM;
  seg_open_copied(ch);
  return 0;
}

static void channel_put_header(lc__channel *ch, int type, size_t len) {
  char header[LC__FRAME_HEADER_SIZE];

  lc__frame_header(header, type, (uint32_t)len);
  out_append(ch, header, sizeof(header));
  ch->queued += sizeof(header) + len;
}

/* After a frame is queued: a large backlog is written at once, the rest
 * before the loop blocks. */
static void channel_queued(lc__channel *ch) {
  uint64_t written = ch->written;

  if (ch->queued - ch->written >= LC__CHANNEL_FLUSH_AT &&
      !(ch->polled & UV_WRITABLE)) {
    /* Closing here would run on_close inside the caller's send; leave the
     * error for the flusher to act on. */
    int err = channel_flush(ch);
    if (err)
      ch->deferred_err = err;
  }
  /* The flusher also tells on_written of (and gives back payloads for)
   * what a flush here wrote. */
  if ((!(ch->polled & UV_WRITABLE) &&
       (ch->written < ch->queued || ch->written != written)) ||
      ch->deferred_err)
    uv_prepare_start(&ch->flusher, on_flusher);
}

int lc__channel_send(lc__channel *ch, int type, const void *payload,
                     size_t len, int fd) {
  lc__channel_fd *slot;
  int err;

  if ((err = channel_prepare(ch, len, len, fd)) != 0)
    return err;
  if (fd >= 0) {
    slot = &ch->out_fds[ch->out_nfds++];
    slot->offset = ch->queued;
    slot->fd = fd;
    if (len == sizeof(lc__control))
      memcpy(&slot->control, payload, sizeof(lc__control));
    else
      memset(&slot->control, 0, sizeof(lc__control));
  }
  channel_put_header(ch, type, len);
  out_append(ch, payload, len);
  channel_queued(ch);
  return 0;
}

int lc__channel_send_ref(lc__channel *ch, int type, const void *payload,
                         size_t len, lc__channel_release_cb release,
                         void *arg) {
  int err;

  if ((err = channel_prepare(ch, len, 0, -1)) != 0)
    return err;
  channel_put_header(ch, type, len);
  if (len > 0)
    seg_push(ch, payload, len, release, arg);
  else if (release != NULL)
    seg_push(ch, "", 0, release, arg);
  channel_queued(ch);
  return 0;
}

int lc__channel_send_parts(lc__channel *ch, int type, const void *head,
                           size_t head_len, const void *body, size_t body_len,
                           lc__channel_release_cb release, void *arg) {
  size_t len = head_len + body_len;
  int err;

  if (len < head_len)
    return UV_EMSGSIZE;
  if ((err = channel_prepare(ch, len, head_len + (release ? 0 : body_len),
                             -1)) != 0)
    return err;
  channel_put_header(ch, type, len);
  out_append(ch, head, head_len);
  if (release == NULL)
    out_append(ch, body, body_len);
  else
    seg_push(ch, body_len > 0 ? body : "", body_len, release, arg);
  channel_queued(ch);
  return 0;
}

int lc__channel_send_message(lc__channel *ch, int type, const void *data,
                             size_t len, lc__channel_release_cb release,
                             void *arg) {
  if (type != LC__FRAME_MESSAGE && type != LC__FRAME_STRING)
    return UV_EINVAL;
  if (release == NULL)
    return lc__channel_send(ch, type, data, len, -1);
  return lc__channel_send_ref(ch, type, data, len, release, arg);
}

int lc__channel_send_control(lc__channel *ch, const lc__control *c, int fd) {
  return lc__channel_send(ch, fd >= 0 ? LC__FRAME_HANDLE : LC__FRAME_CONTROL,
                          c, sizeof(*c), fd);
}

void lc__channel_read_now(lc__channel *ch) {
  int i;

  for (i = 0; i < 1024 && ch->state == LC__CHANNEL_OPEN; i++) {
    uint64_t before = ch->in.len + ch->in.off;
    channel_read(ch);
    if (ch->state != LC__CHANNEL_OPEN || ch->in.len + ch->in.off == before)
      break;
  }
}

void lc__channel_flush_sync(lc__channel *ch, int timeout_ms) {
  uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)timeout_ms;
  struct pollfd pfd;

  while (ch->state == LC__CHANNEL_OPEN && ch->written < ch->queued) {
    uint64_t now = uv_hrtime() / 1000000;
    if (now >= deadline || channel_flush(ch) != 0)
      return;
    channel_reap(ch);
    if (ch->written == ch->queued)
      return;
    pfd.fd = ch->fd;
    pfd.events = POLLOUT;
    if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
      return;
  }
}

void lc__channel_close(lc__channel *ch, int err, const char *reason) {
  channel_end(ch, err, reason);
}

void lc__channel_set_spin(lc__channel *ch, unsigned us) {
  ch->spin_ns = (uint64_t)us * 1000;
}

void lc__channel_kick(lc__channel *ch) {
  if (ch->state == LC__CHANNEL_OPEN) {
    ch->kicked = 1;
    uv_prepare_start(&ch->flusher, on_flusher);
  }
}

