/*
 * test_channel.c - the IPC channel (channel.c) over a real socketpair and a
 * real libuv loop: order across many iterations and partial writes,
 * descriptor passing, a peer that writes garbage or goes away, the size
 * limit, and when on_written runs. Every test closes every handle and ends
 * with uv_loop_close() == 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "channel.h"
#include "test.h"

#define MAX_PAYLOAD (1024 * 1024)
#define RECORDED 16

/* One end: what its channel delivered and reported. */
typedef struct peer {
  lc__channel ch;
  int check_seq; /* frames are numbered messages (make_message) */
  uint32_t next_seq;
  int bad_frames;
  int frames;
  int types[RECORDED];
  int fds[RECORDED];
  size_t lens[RECORDED];
  lc__control controls[RECORDED];
  char texts[RECORDED][32];
  int closes, releases, close_err;
  char reason[128];
  int written_calls, written_in_send, in_send;
  uint64_t written;
  int unsent;
  int unsent_fds[RECORDED];
  lc__control unsent_controls[RECORDED];
  const char *in_bases[RECORDED]; /* the read buffer each frame was in */
  int resend_in_written;          /* on_written sends this many frames */
  int delivered_calls, frames_at_delivered;
} peer;

/* A loop with a ticking timer, so a wait never blocks past its deadline. */
typedef struct harness {
  uv_loop_t loop;
  uv_timer_t tick;
} harness;

static void on_tick(uv_timer_t *t) { (void)t; }

static void harness_init(harness *h) {
  uv_loop_init(&h->loop);
  uv_timer_init(&h->loop, &h->tick);
  uv_timer_start(&h->tick, on_tick, 5, 5);
}

/* Closes the tick, runs what is left, and says whether the loop closed:
 * any handle still open (a channel not released) makes this fail. */
static int harness_close(harness *h) {
  int i;

  uv_close((uv_handle_t *)&h->tick, NULL);
  for (i = 0; i < 100 && uv_run(&h->loop, UV_RUN_NOWAIT) != 0; i++)
    ;
  return uv_loop_close(&h->loop);
}

/* Runs the loop until cond holds or 20 s pass; checks cond. */
#define RUN_UNTIL(h, cond)                                                     \
  do {                                                                         \
    uint64_t deadline_ = uv_hrtime() + 20000000000ull;                         \
    while (!(cond) && uv_hrtime() < deadline_)                                 \
      uv_run(&(h)->loop, UV_RUN_ONCE);                                         \
    CHECK(cond);                                                               \
  } while (0)

/* Numbered messages: 4 bytes of sequence number, then bytes derived from
 * it, in sizes from 4 bytes to over LC__CHANNEL_FLUSH_AT. */
static size_t message_size(uint32_t seq) {
  if (seq % 997 == 500)
    return 300 * 1024 + seq % 100;
  return 4 + (seq * 7919u) % 3000;
}

static void make_message(uint32_t seq, char *out, size_t len) {
  size_t i;

  out[0] = (char)(seq >> 24);
  out[1] = (char)(seq >> 16);
  out[2] = (char)(seq >> 8);
  out[3] = (char)seq;
  for (i = 4; i < len; i++)
    out[i] = (char)(seq + i * 13);
}

static int message_ok(uint32_t seq, const char *p, size_t len) {
  const unsigned char *u = (const unsigned char *)p;
  size_t i;

  if (len != message_size(seq) ||
      ((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 |
       u[3]) != seq)
    return 0;
  for (i = 4; i < len; i++)
    if (p[i] != (char)(seq + i * 13))
      return 0;
  return 1;
}

/* Callbacks ---------------------------------------------------------------- */

static void peer_on_frame(lc__channel *ch, const lc__frame *f, int fd) {
  peer *p = ch->data;
  int i = p->frames++;

  if (i < RECORDED) {
    p->in_bases[i] = ch->in.base;
    p->types[i] = f->type;
    p->fds[i] = fd;
    p->lens[i] = f->payload_len;
    if (f->payload_len == sizeof(lc__control))
      memcpy(&p->controls[i], f->payload, sizeof(lc__control));
    snprintf(p->texts[i], sizeof(p->texts[i]), "%.*s",
             (int)(f->payload_len < 31 ? f->payload_len : 31), f->payload);
  } else if (fd >= 0) {
    close(fd);
  }
  if (p->check_seq) {
    if (f->type != LC__FRAME_MESSAGE || fd != -1 ||
        !message_ok(p->next_seq, f->payload, f->payload_len)) {
      if (p->bad_frames++ == 0)
        fprintf(stderr, "  frame %u is not the one expected\n", p->next_seq);
    }
    p->next_seq++;
  }
}

static void peer_on_written(lc__channel *ch, uint64_t written) {
  peer *p = ch->data;

  p->written_calls++;
  if (p->in_send)
    p->written_in_send++;
  p->written = written;
  if (p->resend_in_written > 0) {
    p->resend_in_written--;
    lc__channel_send(ch, LC__FRAME_MESSAGE, "nested", 6, -1);
    lc__channel_kick(ch);
  }
}

static void peer_on_unsent(lc__channel *ch, const lc__control *c, int fd) {
  peer *p = ch->data;

  if (p->unsent < RECORDED) {
    p->unsent_fds[p->unsent] = fd;
    p->unsent_controls[p->unsent] = *c;
  }
  p->unsent++;
}

static void peer_on_close(lc__channel *ch, int err, const char *reason) {
  peer *p = ch->data;

  p->closes++;
  p->close_err = err;
  snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "(null)");
}

static void peer_on_release(lc__channel *ch) {
  peer *p = ch->data;

  p->releases++;
}

static void peer_on_delivered(lc__channel *ch) {
  peer *p = ch->data;

  p->delivered_calls++;
  p->frames_at_delivered = p->frames;
}

static const lc__channel_cb peer_cb = {peer_on_frame,   peer_on_written,
                                       peer_on_unsent,  peer_on_close,
                                       peer_on_release, peer_on_delivered};

/* Opens a channel on each end of a new socketpair. */
static void open_pair(harness *h, peer *a, peer *b) {
  int sv[2];

  memset(a, 0, sizeof(*a));
  memset(b, 0, sizeof(*b));
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ_INT(lc__channel_open(&h->loop, &a->ch, sv[0], MAX_PAYLOAD, &peer_cb, a), 0);
  CHECK_EQ_INT(lc__channel_open(&h->loop, &b->ch, sv[1], MAX_PAYLOAD, &peer_cb, b), 0);
}

/* Opens a channel on one end; the other is returned raw, for a test to
 * write whatever bytes it likes. */
static int open_with_raw_peer(harness *h, peer *a) {
  int sv[2];

  memset(a, 0, sizeof(*a));
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ_INT(lc__channel_open(&h->loop, &a->ch, sv[0], MAX_PAYLOAD, &peer_cb, a), 0);
  /* Non-blocking, so a check that reads it cannot hang the test. */
  fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
  return sv[1];
}

/* A small kernel buffer, so big frames cannot go in one write. */
static void shrink_sndbuf(peer *p) {
  int size = 64 * 1024;

  CHECK_EQ_INT(setsockopt(p->ch.fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)),
               0);
}

static int send_text(peer *p, const char *text) {
  int err;

  p->in_send = 1;
  err = lc__channel_send(&p->ch, LC__FRAME_MESSAGE, text, strlen(text), -1);
  p->in_send = 0;
  return err;
}

/* Frames in order -------------------------------------------------------- */

#define ORDER_COUNT 10000
#define ORDER_PER_TURN 40

typedef struct pump {
  uv_idle_t idle;
  peer *from;
  uint32_t sent;
  int errors;
  int partial_writes; /* sends that left bytes queued past FLUSH_AT */
  char *scratch;
} pump;

/* Sends a few numbered messages each loop iteration. */
static void on_pump(uv_idle_t *idle) {
  pump *pu = idle->data;
  int i;

  for (i = 0; i < ORDER_PER_TURN && pu->sent < ORDER_COUNT; i++) {
    size_t len = message_size(pu->sent);
    make_message(pu->sent, pu->scratch, len);
    pu->from->in_send = 1;
    if (lc__channel_send(&pu->from->ch, LC__FRAME_MESSAGE, pu->scratch, len,
                         -1) != 0)
      pu->errors++;
    pu->from->in_send = 0;
    if (len >= LC__CHANNEL_FLUSH_AT && lc__channel_backlog(&pu->from->ch) > 0)
      pu->partial_writes++;
    pu->sent++;
  }
  if (pu->sent == ORDER_COUNT)
    uv_idle_stop(idle);
}

static void pump_start(harness *h, pump *pu, peer *from) {
  memset(pu, 0, sizeof(*pu));
  pu->from = from;
  pu->scratch = malloc(400 * 1024);
  uv_idle_init(&h->loop, &pu->idle);
  pu->idle.data = pu;
  uv_idle_start(&pu->idle, on_pump);
}

static void frames_arrive_in_order_across_many_iterations(void) {
  harness h;
  peer a, b;
  pump ab, ba;

  harness_init(&h);
  open_pair(&h, &a, &b);
  shrink_sndbuf(&a);
  shrink_sndbuf(&b);
  a.check_seq = b.check_seq = 1;
  pump_start(&h, &ab, &a);
  pump_start(&h, &ba, &b);

  RUN_UNTIL(&h, a.next_seq == ORDER_COUNT && b.next_seq == ORDER_COUNT);
  CHECK_EQ_INT(ab.errors + ba.errors, 0);
  CHECK_EQ_INT(a.bad_frames, 0);
  CHECK_EQ_INT(b.bad_frames, 0);
  CHECK_EQ_INT(a.frames, ORDER_COUNT);
  CHECK_EQ_INT(b.frames, ORDER_COUNT);
  /* The big ones did not fit in the socket at once. */
  CHECK(ab.partial_writes > 0);
  CHECK(ba.partial_writes > 0);
  CHECK_EQ_INT(a.written_in_send + b.written_in_send, 0);
  CHECK_EQ_INT(a.closes + b.closes, 0);

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(b.close_err, UV_EOF);
  uv_close((uv_handle_t *)&ab.idle, NULL);
  uv_close((uv_handle_t *)&ba.idle, NULL);
  CHECK_EQ_INT(harness_close(&h), 0);
  free(ab.scratch);
  free(ba.scratch);
}

static void frame_written_a_byte_at_a_time_arrives_whole(void) {
  harness h;
  peer a;
  int raw;
  size_t i;
  char frame[LC__FRAME_HEADER_SIZE + 5];

  harness_init(&h);
  raw = open_with_raw_peer(&h, &a);
  lc__frame_header(frame, LC__FRAME_MESSAGE, 5);
  memcpy(frame + LC__FRAME_HEADER_SIZE, "whole", 5);
  for (i = 0; i < sizeof(frame); i++) {
    CHECK_EQ_INT(a.frames, 0);
    CHECK_EQ_INT(write(raw, frame + i, 1), 1);
    /* Until the channel has read this byte. */
    RUN_UNTIL(&h, lc__buf_size(&a.ch.in) == i + 1 || a.frames == 1);
  }
  CHECK_EQ_INT(a.frames, 1);
  CHECK_EQ_STR(a.texts[0], "whole");
  CHECK_EQ_INT(a.closes, 0);
  /* Told once the frame was there, not for the reads of its pieces. */
  CHECK_EQ_INT(a.delivered_calls, 1);

  close(raw);
  RUN_UNTIL(&h, a.releases == 1);
  CHECK_EQ_INT(a.close_err, UV_EOF);
  CHECK_EQ_INT(harness_close(&h), 0);
}

static void on_delivered_follows_the_frames_of_a_read(void) {
  harness h;
  peer a;
  int raw;
  char frames[3 * (LC__FRAME_HEADER_SIZE + 2)];
  size_t i, off = 0;

  harness_init(&h);
  raw = open_with_raw_peer(&h, &a);
  for (i = 0; i < 3; i++) {
    lc__frame_header(frames + off, LC__FRAME_STRING, 2);
    memcpy(frames + off + LC__FRAME_HEADER_SIZE, i == 0 ? "m0" : i == 1 ? "m1" : "m2", 2);
    off += LC__FRAME_HEADER_SIZE + 2;
  }
  /* One write, one read: three frames, then one on_delivered. */
  CHECK_EQ_INT(write(raw, frames, sizeof(frames)), sizeof(frames));
  RUN_UNTIL(&h, a.frames == 3);
  CHECK_EQ_INT(a.delivered_calls, 1);
  CHECK_EQ_INT(a.frames_at_delivered, 3);
  CHECK_EQ_STR(a.texts[2], "m2");

  close(raw);
  RUN_UNTIL(&h, a.releases == 1);
  CHECK_EQ_INT(a.delivered_calls, 1);
  CHECK_EQ_INT(harness_close(&h), 0);
}

/* Descriptors ------------------------------------------------------------- */

static lc__control connection_record(uint32_t server_id) {
  lc__control c;

  memset(&c, 0, sizeof(c));
  c.cmd = LC__CTL_CONNECTION;
  c.server_id = server_id;
  return c;
}

static void handle_frames_carry_their_descriptors(void) {
  harness h;
  peer a, b;
  static const int handle_at[3] = {1, 3, 4}; /* frames with a descriptor */
  int pipes[3][2], i;
  lc__control c;
  char got[16];

  harness_init(&h);
  open_pair(&h, &a, &b);
  for (i = 0; i < 3; i++)
    CHECK_EQ_INT(pipe(pipes[i]), 0);

  /* Messages and descriptors interleaved: each descriptor must arrive with
   * its own frame, not with the bytes around it. */
  send_text(&a, "m0");
  c = connection_record(100);
  CHECK_EQ_INT(lc__channel_send_control(&a.ch, &c, pipes[0][1]), 0);
  send_text(&a, "m1");
  c = connection_record(101);
  CHECK_EQ_INT(lc__channel_send_control(&a.ch, &c, pipes[1][1]), 0);
  c = connection_record(102);
  CHECK_EQ_INT(lc__channel_send_control(&a.ch, &c, pipes[2][1]), 0);
  send_text(&a, "m2");

  RUN_UNTIL(&h, b.frames == 6);
  CHECK_EQ_INT(b.types[0], LC__FRAME_MESSAGE);
  CHECK_EQ_INT(b.types[1], LC__FRAME_HANDLE);
  CHECK_EQ_INT(b.types[2], LC__FRAME_MESSAGE);
  CHECK_EQ_INT(b.types[3], LC__FRAME_HANDLE);
  CHECK_EQ_INT(b.types[4], LC__FRAME_HANDLE);
  CHECK_EQ_INT(b.types[5], LC__FRAME_MESSAGE);
  CHECK_EQ_STR(b.texts[2], "m1");
  CHECK_EQ_INT(b.fds[0], -1);
  CHECK_EQ_INT(b.fds[2], -1);
  CHECK_EQ_INT(b.fds[5], -1);

  for (i = 0; i < 3; i++) {
    int k = handle_at[i], fd = b.fds[k];
    char msg[16];

    CHECK(fd >= 0);
    if (fd < 0)
      continue;
    CHECK_EQ_INT(b.controls[k].cmd, LC__CTL_CONNECTION);
    CHECK_EQ_INT(b.controls[k].server_id, 100 + i);
    /* Received close-on-exec: a worker's children do not inherit it. */
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    /* Written through the received copy, read on the original pipe. */
    snprintf(msg, sizeof(msg), "via %d", i);
    CHECK_EQ_INT(write(fd, msg, strlen(msg)), strlen(msg));
    memset(got, 0, sizeof(got));
    CHECK_EQ_INT(read(pipes[i][0], got, sizeof(got) - 1), strlen(msg));
    CHECK_EQ_STR(got, msg);
    /* The sender closed its copy once sent: this one was the last. */
    close(fd);
    CHECK_EQ_INT(read(pipes[i][0], got, sizeof(got)), 0);
    close(pipes[i][0]);
  }

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(harness_close(&h), 0);
}

/* Fills this process's descriptor table; returns how many it took (and
 * whether the last open failed with EMFILE in *full). */
static int fill_fds(int *fds, int max, int *full) {
  int n = 0;

  while (n < max && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
    n++;
  *full = n < max && errno == EMFILE;
  return n;
}

/* Writes a frame to a raw socket, with fd attached (or none for -1). */
static void raw_send(int raw, int type, const void *payload, size_t len,
                     int fd) {
  char frame[LC__FRAME_HEADER_SIZE + sizeof(lc__control)];
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *cm;

  CHECK(len <= sizeof(lc__control));
  lc__frame_header(frame, type, (uint32_t)len);
  memcpy(frame + LC__FRAME_HEADER_SIZE, payload, len);
  memset(&msg, 0, sizeof(msg));
  iov.iov_base = frame;
  iov.iov_len = LC__FRAME_HEADER_SIZE + len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  }
  CHECK_EQ_INT(sendmsg(raw, &msg, 0), iov.iov_len);
}

static void raw_send_connection(int raw, uint32_t server_id, int fd) {
  lc__control c = connection_record(server_id);

  raw_send(raw, LC__FRAME_HANDLE, &c, sizeof(c), fd);
  close(fd); /* in flight now: the kernel holds it */
}

/* A process out of descriptors cannot receive one (MSG_CTRUNC): that frame
 * arrives with LC__CHANNEL_FD_LOST, the channel goes on, and descriptors
 * sent later still arrive with their own frames. */
static void descriptor_lost_to_emfile_keeps_the_channel(void) {
  struct rlimit old, low;
  int pipes[3][2], fillers[256], nfill, full, raw, i;
  harness h;
  peer a;
  char got[8];

  harness_init(&h);
  raw = open_with_raw_peer(&h, &a);
  for (i = 0; i < 3; i++)
    CHECK_EQ_INT(pipe2(pipes[i], O_NONBLOCK), 0);
  raw_send(raw, LC__FRAME_MESSAGE, "m0", 2, -1);
  raw_send_connection(raw, 100, pipes[0][1]);
  raw_send(raw, LC__FRAME_MESSAGE, "m1", 2, -1);
  raw_send_connection(raw, 101, pipes[1][1]);

  getrlimit(RLIMIT_NOFILE, &old);
  low = old;
  low.rlim_cur = 200;
  CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
  nfill = fill_fds(fillers, 256, &full);
  CHECK(full); /* the table is full now */
  RUN_UNTIL(&h, a.frames == 4);
  for (i = 0; i < nfill; i++)
    close(fillers[i]);
  setrlimit(RLIMIT_NOFILE, &old);

  raw_send_connection(raw, 102, pipes[2][1]);
  raw_send(raw, LC__FRAME_MESSAGE, "m2", 2, -1);
  RUN_UNTIL(&h, a.frames == 6);

  CHECK_EQ_INT(a.closes, 0);
  CHECK_EQ_STR(a.texts[0], "m0");
  CHECK_EQ_INT(a.fds[1], LC__CHANNEL_FD_LOST);
  CHECK_EQ_INT(a.controls[1].server_id, 100);
  CHECK_EQ_STR(a.texts[2], "m1");
  CHECK_EQ_INT(a.fds[3], LC__CHANNEL_FD_LOST);
  CHECK_EQ_INT(a.controls[4].server_id, 102);
  CHECK(a.fds[4] >= 0);
  CHECK_EQ_STR(a.texts[5], "m2");
  /* The lost ones are gone for good (their pipes see EOF); the last one
   * is the real descriptor. */
  for (i = 0; i < 2; i++) {
    CHECK_EQ_INT(read(pipes[i][0], got, sizeof(got)), 0);
    close(pipes[i][0]);
  }
  if (a.fds[4] >= 0) {
    CHECK_EQ_INT(write(a.fds[4], "x", 1), 1);
    CHECK_EQ_INT(read(pipes[2][0], got, sizeof(got)), 1);
    close(a.fds[4]);
  }
  close(pipes[2][0]);

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1);
  close(raw);
  CHECK_EQ_INT(harness_close(&h), 0);
}

static void unsent_handle_is_given_back_when_the_channel_ends(void) {
  harness h;
  peer a, b;
  lc__control c = connection_record(7);
  int p[2];

  harness_init(&h);
  open_pair(&h, &a, &b);
  CHECK_EQ_INT(pipe(p), 0);
  CHECK_EQ_INT(lc__channel_send_control(&a.ch, &c, p[1]), 0);
  lc__channel_close(&a.ch, 0, "closing before the flush");

  CHECK_EQ_INT(a.unsent, 1);
  CHECK_EQ_INT(a.unsent_fds[0], p[1]);
  CHECK_EQ_INT(a.unsent_controls[0].server_id, 7);
  CHECK_EQ_INT(a.unsent_controls[0].cmd, LC__CTL_CONNECTION);
  /* The callee owns it: still open. */
  CHECK(fcntl(p[1], F_GETFD) != -1);
  close(p[0]);
  close(p[1]);

  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(b.frames, 0);
  CHECK_EQ_INT(harness_close(&h), 0);
}

/* A peer that breaks the protocol -------------------------------------------- */

static void garbage_from_peer_ends_with_eproto_once(void) {
  harness h;
  peer a;
  int raw;
  char good[LC__FRAME_HEADER_SIZE + 2], c;
  static const char garbage[] = "GET / HTTP/1.1\r\n\r\n";

  harness_init(&h);
  raw = open_with_raw_peer(&h, &a);
  /* A good frame, then garbage where the next frame should start. */
  lc__frame_header(good, LC__FRAME_MESSAGE, 2);
  memcpy(good + LC__FRAME_HEADER_SIZE, "ok", 2);
  CHECK_EQ_INT(write(raw, good, sizeof(good)), sizeof(good));
  CHECK_EQ_INT(write(raw, garbage, sizeof(garbage) - 1), sizeof(garbage) - 1);

  RUN_UNTIL(&h, a.closes > 0);
  CHECK_EQ_INT(a.frames, 1);
  CHECK_EQ_STR(a.texts[0], "ok");
  CHECK_EQ_INT(a.close_err, UV_EPROTO);
  CHECK_EQ_STR(a.reason, lc__frame_strerror(LC__FRAME_EMAGIC));
  /* Disconnected: the peer sees the end. */
  CHECK_EQ_INT(read(raw, &c, 1), 0);
  /* Ended once: a later close or send does not end it again. */
  lc__channel_close(&a.ch, 0, "again");
  CHECK_EQ_INT(send_text(&a, "late"), UV_EPIPE);
  RUN_UNTIL(&h, a.releases == 1);
  CHECK_EQ_INT(a.closes, 1);
  CHECK_EQ_INT(a.releases, 1);
  close(raw);
  CHECK_EQ_INT(harness_close(&h), 0);
}

static void oversized_frame_from_peer_ends_with_eproto(void) {
  harness h;
  peer a;
  int raw;
  char header[LC__FRAME_HEADER_SIZE];

  harness_init(&h);
  raw = open_with_raw_peer(&h, &a);
  /* Refused on the header: the payload never has to come. */
  lc__frame_header(header, LC__FRAME_MESSAGE, MAX_PAYLOAD + 1);
  CHECK_EQ_INT(write(raw, header, sizeof(header)), sizeof(header));

  RUN_UNTIL(&h, a.closes > 0);
  CHECK_EQ_INT(a.frames, 0);
  CHECK_EQ_INT(a.close_err, UV_EPROTO);
  CHECK_EQ_STR(a.reason, lc__frame_strerror(LC__FRAME_ETOOBIG));
  RUN_UNTIL(&h, a.releases == 1);
  CHECK_EQ_INT(a.closes, 1);
  close(raw);
  CHECK_EQ_INT(harness_close(&h), 0);
}

static void handle_frame_without_descriptor_ends_with_eproto(void) {
  harness h;
  peer a;
  int raw;
  lc__control c = connection_record(1);
  char frame[LC__FRAME_HEADER_SIZE + sizeof(lc__control)];

  harness_init(&h);
  raw = open_with_raw_peer(&h, &a);
  lc__frame_header(frame, LC__FRAME_HANDLE, sizeof(c));
  memcpy(frame + LC__FRAME_HEADER_SIZE, &c, sizeof(c));
  CHECK_EQ_INT(write(raw, frame, sizeof(frame)), sizeof(frame));

  RUN_UNTIL(&h, a.closes > 0);
  CHECK_EQ_INT(a.frames, 0);
  CHECK_EQ_INT(a.close_err, UV_EPROTO);
  CHECK(strstr(a.reason, "descriptor") != NULL);
  RUN_UNTIL(&h, a.releases == 1);
  close(raw);
  CHECK_EQ_INT(harness_close(&h), 0);
}

/* The size limit --------------------------------------------------------------- */

static void send_over_limit_is_emsgsize_and_the_channel_still_works(void) {
  harness h;
  peer a, b;
  char *big = calloc(1, MAX_PAYLOAD + 1);
  uint64_t queued;
  int err;

  harness_init(&h);
  open_pair(&h, &a, &b);
  queued = a.ch.queued;
  err = lc__channel_send(&a.ch, LC__FRAME_MESSAGE, big, MAX_PAYLOAD + 1, -1);
  CHECK_EQ_INT(err, UV_EMSGSIZE);
  CHECK_EQ_INT(a.ch.queued, queued); /* nothing of it was queued */
  CHECK_EQ_INT(a.closes, 0);

  CHECK_EQ_INT(send_text(&a, "after"), 0);
  /* Exactly the limit still goes. */
  memset(big, 'x', MAX_PAYLOAD);
  CHECK_EQ_INT(lc__channel_send(&a.ch, LC__FRAME_MESSAGE, big, MAX_PAYLOAD, -1),
               0);
  RUN_UNTIL(&h, b.frames == 2);
  CHECK_EQ_STR(b.texts[0], "after");
  CHECK_EQ_INT(b.lens[1], MAX_PAYLOAD);
  CHECK_EQ_INT(a.closes + b.closes, 0);

  lc__channel_close(&b.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(harness_close(&h), 0);
  free(big);
}

/* The end of the peer ----------------------------------------------------------- */

static void raw_peer_closing_gives_eof(void) {
  harness h;
  peer a;
  int raw;

  harness_init(&h);
  raw = open_with_raw_peer(&h, &a);
  close(raw);
  RUN_UNTIL(&h, a.closes > 0);
  CHECK_EQ_INT(a.close_err, UV_EOF);
  RUN_UNTIL(&h, a.releases == 1);
  CHECK_EQ_INT(a.closes, 1);
  CHECK_EQ_INT(harness_close(&h), 0);
}

static void closing_one_end_gives_the_other_eof(void) {
  harness h;
  peer a, b;

  harness_init(&h);
  open_pair(&h, &a, &b);
  /* What was written before the close still arrives before the EOF. */
  send_text(&b, "last words");
  RUN_UNTIL(&h, lc__channel_backlog(&b.ch) == 0);
  lc__channel_close(&b.ch, 0, "bye");
  CHECK_EQ_INT(b.closes, 1);
  CHECK_EQ_INT(b.close_err, 0);
  CHECK_EQ_STR(b.reason, "bye");

  RUN_UNTIL(&h, a.closes > 0);
  CHECK_EQ_INT(a.frames, 1);
  CHECK_EQ_STR(a.texts[0], "last words");
  CHECK_EQ_INT(a.close_err, UV_EOF);
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(a.closes, 1);
  CHECK_EQ_INT(b.closes, 1);
  CHECK_EQ_INT(harness_close(&h), 0);
}

/* on_written ------------------------------------------------------------------ */

static void on_written_reports_the_total_and_never_runs_inside_send(void) {
  harness h;
  peer a, b;
  size_t big_len = 3 * LC__CHANNEL_FLUSH_AT; /* flushed inside the send */
  char *big = malloc(big_len);
  uint64_t total;
  int calls;

  harness_init(&h);
  open_pair(&h, &a, &b);
  memset(big, 'b', big_len);
  CHECK_EQ_INT(send_text(&a, "one"), 0);
  a.in_send = 1;
  CHECK_EQ_INT(lc__channel_send(&a.ch, LC__FRAME_MESSAGE, big, big_len, -1), 0);
  a.in_send = 0;
  CHECK_EQ_INT(send_text(&a, "three"), 0);
  total = 3 * LC__FRAME_HEADER_SIZE + 3 + big_len + 5;
  CHECK_EQ_INT(a.ch.queued, total);
  CHECK_EQ_INT(a.written_calls, 0);

  RUN_UNTIL(&h, b.frames == 3 && a.written == total);
  CHECK_EQ_INT(a.written, total);
  CHECK_EQ_INT(a.ch.written, total);
  CHECK_EQ_INT(a.written_in_send, 0);

  /* A kick makes it run again, from the loop, with nothing new written. */
  calls = a.written_calls;
  lc__channel_kick(&a.ch);
  CHECK_EQ_INT(a.written_calls, calls);
  RUN_UNTIL(&h, a.written_calls > calls);
  CHECK_EQ_INT(a.written, total);

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(harness_close(&h), 0);
  free(big);
}

/* Payloads sent in place ------------------------------------------------------ */

typedef struct owned {
  char *data;
  size_t len;
  int released;
  int released_in_send;
  peer *by;
} owned;

static void release_owned(void *arg) {
  owned *o = arg;

  o->released++;
  if (o->by != NULL && o->by->in_send)
    o->released_in_send++;
}

static void referenced_payloads_arrive_in_order_and_go_back_once(void) {
  harness h;
  peer a, b;
  owned big[3];
  lc__control c = connection_record(9);
  int p[2], i;

  harness_init(&h);
  open_pair(&h, &a, &b);
  shrink_sndbuf(&a);
  CHECK_EQ_INT(pipe(p), 0);
  for (i = 0; i < 3; i++) {
    big[i].len = (size_t)(i + 1) * 300 * 1024 + 3;
    big[i].data = malloc(big[i].len);
    memset(big[i].data, 'A' + i, big[i].len);
    big[i].released = big[i].released_in_send = 0;
    big[i].by = &a;
  }
  /* Copied and referenced frames, and a descriptor, interleaved. */
  a.in_send = 1;
  CHECK_EQ_INT(lc__channel_send(&a.ch, LC__FRAME_STRING, "s0", 2, -1), 0);
  CHECK_EQ_INT(lc__channel_send_ref(&a.ch, LC__FRAME_MESSAGE, big[0].data,
                                    big[0].len, release_owned, &big[0]), 0);
  CHECK_EQ_INT(lc__channel_send_control(&a.ch, &c, p[1]), 0);
  CHECK_EQ_INT(lc__channel_send_ref(&a.ch, LC__FRAME_STRING, big[1].data,
                                    big[1].len, release_owned, &big[1]), 0);
  CHECK_EQ_INT(lc__channel_send_ref(&a.ch, LC__FRAME_MESSAGE, big[2].data,
                                    big[2].len, release_owned, &big[2]), 0);
  CHECK_EQ_INT(lc__channel_send(&a.ch, LC__FRAME_MESSAGE, "m5", 2, -1), 0);
  a.in_send = 0;
  /* Over LC__CHANNEL_FLUSH_AT: written in part inside the sends, but
   * nothing given back there. */
  CHECK(a.ch.written > 0);
  for (i = 0; i < 3; i++)
    CHECK_EQ_INT(big[i].released, 0);

  RUN_UNTIL(&h, b.frames == 6);
  CHECK_EQ_STR(b.texts[0], "s0");
  CHECK_EQ_INT(b.types[0], LC__FRAME_STRING);
  CHECK_EQ_INT(b.types[1], LC__FRAME_MESSAGE);
  CHECK_EQ_INT(b.lens[1], big[0].len);
  CHECK_EQ_INT(b.types[2], LC__FRAME_HANDLE);
  CHECK(b.fds[2] >= 0);
  CHECK_EQ_INT(b.controls[2].server_id, 9);
  CHECK_EQ_INT(b.types[3], LC__FRAME_STRING);
  CHECK_EQ_INT(b.lens[3], big[1].len);
  CHECK_EQ_INT(b.lens[4], big[2].len);
  CHECK(strncmp(b.texts[4], "CCCCCCCC", 8) == 0);
  CHECK_EQ_STR(b.texts[5], "m5");
  RUN_UNTIL(&h, big[2].released == 1);
  for (i = 0; i < 3; i++) {
    CHECK_EQ_INT(big[i].released, 1);
    CHECK_EQ_INT(big[i].released_in_send, 0);
  }
  if (b.fds[2] >= 0)
    close(b.fds[2]);
  close(p[0]);

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  for (i = 0; i < 3; i++) {
    CHECK_EQ_INT(big[i].released, 1);
    free(big[i].data);
  }
  CHECK_EQ_INT(harness_close(&h), 0);
}

/* A frame in two parts (a bus record's head and its body) arrives as one
 * payload, the body copied or written from where it is. */
static void frames_in_two_parts_arrive_whole(void) {
  harness h;
  peer a, b;
  owned big = {NULL, 200 * 1024, 0, 0, NULL};

  harness_init(&h);
  open_pair(&h, &a, &b);
  big.data = malloc(big.len);
  memset(big.data, 'B', big.len);
  CHECK_EQ_INT(lc__channel_send_parts(&a.ch, LC__FRAME_BUS, "HEAD", 4, "body",
                                      4, NULL, NULL), 0);
  CHECK_EQ_INT(lc__channel_send_parts(&a.ch, LC__FRAME_BUS, "head", 4,
                                      big.data, big.len, release_owned, &big),
               0);
  CHECK_EQ_INT(lc__channel_send_parts(&a.ch, LC__FRAME_BUS, "only", 4, NULL,
                                      0, NULL, NULL), 0);
  CHECK_EQ_INT(lc__channel_send(&a.ch, LC__FRAME_STRING, "after", 5, -1), 0);
  RUN_UNTIL(&h, b.frames == 4);
  CHECK_EQ_INT(b.types[0], LC__FRAME_BUS);
  CHECK_EQ_STR(b.texts[0], "HEADbody");
  CHECK_EQ_INT(b.lens[1], 4 + big.len);
  CHECK(strncmp(b.texts[1], "headBBBB", 8) == 0);
  CHECK_EQ_STR(b.texts[2], "only");
  CHECK_EQ_STR(b.texts[3], "after");
  RUN_UNTIL(&h, big.released == 1);
  /* over the limit, head and body together: nothing is queued */
  CHECK_EQ_INT(lc__channel_send_parts(&a.ch, LC__FRAME_BUS, "h", 1, big.data,
                                      MAX_PAYLOAD, release_owned, &big),
               UV_EMSGSIZE);
  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(big.released, 1);
  free(big.data);
  CHECK_EQ_INT(harness_close(&h), 0);
}

static void unwritten_referenced_payloads_go_back_when_the_channel_ends(void) {
  harness h;
  peer a, b;
  owned big = {NULL, 8 * 1024 * 1024, 0, 0, NULL};

  harness_init(&h);
  open_pair(&h, &a, &b);
  big.data = calloc(1, big.len);
  b.ch.max_payload = big.len;
  a.ch.max_payload = big.len;
  CHECK_EQ_INT(lc__channel_send_ref(&a.ch, LC__FRAME_MESSAGE, big.data, big.len,
                                    release_owned, &big), 0);
  CHECK(a.ch.written < a.ch.queued); /* more than the socket holds */
  CHECK_EQ_INT(big.released, 0);
  lc__channel_close(&a.ch, 0, "closing with the payload unwritten");
  CHECK_EQ_INT(big.released, 1);
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(big.released, 1);
  CHECK_EQ_INT(harness_close(&h), 0);
  free(big.data);
}

static void big_frames_are_read_into_one_kept_buffer(void) {
  harness h;
  peer a, b;
  size_t len = 700 * 1024;
  char *big = malloc(len);
  int i;

  harness_init(&h);
  open_pair(&h, &a, &b);
  for (i = 0; i < 4; i++) {
    memset(big, 'a' + i, len);
    CHECK_EQ_INT(lc__channel_send(&a.ch, LC__FRAME_MESSAGE, big, len, -1), 0);
    RUN_UNTIL(&h, b.frames == i + 1);
    CHECK_EQ_INT(b.lens[i], len);
    CHECK_EQ_INT(b.texts[i][0], 'a' + i);
  }
  /* Every one was handed over in the same buffer: no allocation per frame. */
  CHECK(b.in_bases[1] == b.in_bases[0]);
  CHECK(b.in_bases[2] == b.in_bases[0]);
  CHECK(b.in_bases[3] == b.in_bases[0]);

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(harness_close(&h), 0);
  free(big);
}

/* What a callback sends goes out without waiting for another event. */
static void a_send_from_on_written_does_not_wait_for_an_event(void) {
  harness h;
  peer a, b;
  int i;

  harness_init(&h);
  open_pair(&h, &a, &b);
  /* No ticking timer: an iteration may block unless the channel says not. */
  uv_timer_stop(&h.tick);
  a.resend_in_written = 3;
  CHECK_EQ_INT(send_text(&a, "first"), 0);
  for (i = 0; i < 100 && !(b.frames == 4 && a.resend_in_written == 0 &&
                           a.written == a.ch.queued); i++) {
    /* Owed writes or callbacks: the loop must not sleep. */
    if (a.written != a.ch.queued || a.ch.kicked)
      CHECK_EQ_INT(uv_backend_timeout(&h.loop), 0);
    uv_run(&h.loop, UV_RUN_NOWAIT);
  }
  CHECK_EQ_INT(b.frames, 4);
  CHECK_EQ_STR(b.texts[3], "nested");
  CHECK_EQ_INT(a.resend_in_written, 0);
  CHECK_EQ_INT(a.written, a.ch.queued);

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(harness_close(&h), 0);
}

/* Polling for an answer -------------------------------------------------- */

/* Runs one non-blocking turn; says whether the loop would sleep next. */
static int would_sleep(harness *h) {
  uv_run(&h->loop, UV_RUN_NOWAIT);
  return uv_backend_timeout(&h->loop) != 0;
}

static void polls_for_an_answer_only_while_sleeping_costs_more(void) {
  harness h;
  peer a, b;
  uint64_t t0;

  harness_init(&h);
  open_pair(&h, &a, &b);
  uv_timer_stop(&h.tick);
  lc__channel_set_spin(&a.ch, 50000); /* 50 ms, so a slow test still sees it */

  /* Waking has been cheap: after a write the loop sleeps. */
  CHECK_EQ_INT(send_text(&a, "cheap"), 0);
  CHECK(would_sleep(&h));
  CHECK_EQ_INT(a.ch.written, a.ch.queued);

  /* Answers have cost more than polling: the loop polls, and an answer
   * while it does keeps polling worth it. */
  a.ch.wake_ns = 100000;
  CHECK_EQ_INT(send_text(&a, "ask"), 0);
  CHECK(!would_sleep(&h));
  CHECK_EQ_INT(a.ch.spinning, 1);
  RUN_UNTIL(&h, b.frames == 2);
  send_text(&b, "answer");
  RUN_UNTIL(&h, a.frames == 1);
  CHECK_EQ_INT(a.ch.spinning, 0);
  CHECK_EQ_INT(a.ch.spin_fails, 0);

  /* No answer within the poll: it ends, and the next writes do not poll
   * (after one failure, one write is skipped). */
  a.ch.wake_ns = 100000;
  CHECK_EQ_INT(send_text(&a, "unanswered"), 0);
  CHECK(!would_sleep(&h));
  t0 = uv_hrtime();
  while (uv_hrtime() - t0 < 60000000ull && a.ch.spinning)
    uv_run(&h.loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(a.ch.spinning, 0);
  CHECK_EQ_INT(a.ch.spin_fails, 1);
  CHECK(would_sleep(&h));
  CHECK_EQ_INT(send_text(&a, "skipped"), 0);
  CHECK(would_sleep(&h));
  CHECK_EQ_INT(a.ch.spinning, 0);

  lc__channel_close(&a.ch, 0, "done");
  RUN_UNTIL(&h, a.releases == 1 && b.releases == 1);
  CHECK_EQ_INT(harness_close(&h), 0);
}

int main(void) {
  RUN(frames_arrive_in_order_across_many_iterations);
  RUN(frame_written_a_byte_at_a_time_arrives_whole);
  RUN(on_delivered_follows_the_frames_of_a_read);
  RUN(handle_frames_carry_their_descriptors);
  RUN(descriptor_lost_to_emfile_keeps_the_channel);
  RUN(unsent_handle_is_given_back_when_the_channel_ends);
  RUN(garbage_from_peer_ends_with_eproto_once);
  RUN(oversized_frame_from_peer_ends_with_eproto);
  RUN(handle_frame_without_descriptor_ends_with_eproto);
  RUN(send_over_limit_is_emsgsize_and_the_channel_still_works);
  RUN(raw_peer_closing_gives_eof);
  RUN(closing_one_end_gives_the_other_eof);
  RUN(on_written_reports_the_total_and_never_runs_inside_send);
  RUN(referenced_payloads_arrive_in_order_and_go_back_once);
  RUN(frames_in_two_parts_arrive_whole);
  RUN(unwritten_referenced_payloads_go_back_when_the_channel_ends);
  RUN(big_frames_are_read_into_one_kept_buffer);
  RUN(a_send_from_on_written_does_not_wait_for_an_event);
  RUN(polls_for_an_answer_only_while_sleeping_costs_more);
  TEST_EXIT();
}
