/*
 * tls_conn.c - the TLS filter of a connection (tls.h): between tcp.c's
 * socket and the protocol's ops.
 *
 * It hears the socket's events first. Until the handshake is done the
 * protocol hears nothing (a server's protocol does not know the connection
 * yet; a client's protocol waits for on_open as for a connect), and the
 * connection's deadline is the handshake's (10 s by default, fixed from
 * the start: a peer that trickles bytes does not push it). Then the
 * protocol hears on_open, and from there on the plaintext of each socket
 * read in one on_read (it fits: plaintext is smaller than its ciphertext),
 * and its writes are encrypted and sent at once.
 *
 * The bytes OpenSSL writes go to the process's output buffer and leave it
 * for the socket right after the call that made them; each call sends only
 * what it appended, so a call made from inside another (an SNI hook that
 * writes elsewhere) never sends the outer call's bytes.
 *
 * A server's first byte says what the peer speaks: a TLS handshake record
 * starts with 22. A peer that sent an HTTP request (an upper-case letter
 * first: "GET /") is answered 400 "The plain HTTP request was sent to
 * HTTPS port", as nginx does, and closed; anything else that is not TLS is
 * closed at once. Handshakes that fail, time out or are cut short are
 * closed, logged at debug level with their reason (a port on the Internet
 * hears scanners all day), and counted; nothing of theirs reaches the app.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "tls_int.h"

#define TLS_RECORD_HANDSHAKE 22
#define KEEP_OUT_MAX (256 * 1024)

static const char plain_http_answer[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 45\r\n"
    "Connection: close\r\n"
    "\r\n"
    "The plain HTTP request was sent to HTTPS port";

typedef struct lc__tls_conn {
  lc__tls_engine engine;
  lc__conn *c;
  int opened;   /* the protocol heard on_open */
  int outbound; /* a client: its protocol hears on_error and on_close even
                   when the handshake never finished */
  int started;  /* the handshake began (a client's hello is out) */
  int dead;     /* failed or refused: what arrives is dropped */
  int eof;      /* the protocol heard the end of the stream */
  int seen;     /* a server's first byte was looked at */
  int in_start; /* inside lc__tls_client_start: a failure is not told
                   (the close that follows is, from the loop) */
  uint64_t handshake_timeout_ms;
  lc__buf early; /* written by the protocol before the handshake was done */
  char servername[256];
  SSL_SESSION *session; /* a client's session to resume, or NULL */
} lc__tls_conn;

static const lc__conn_filter tls_filter;

static lc__tls_conn *tc_of(const lc__conn *c) { return c->filter_data; }

void lc__tls_stats_get(lc__core *core, lc__tls_stats *out) {
  if (core->tls != NULL)
    *out = core->tls->stats;
  else
    memset(out, 0, sizeof(*out));
}

/* Output ---------------------------------------------------------------------- */

/* Where the process's output buffer ends now: what a call appends after it
 * is that call's. */
static size_t tc_mark(lc__tls_conn *tc) { return tc->engine.out->len; }

/* Sends what was appended since mark. 0 or a write error. */
static int tc_send(lc__tls_conn *tc, size_t mark) {
  lc__buf *out = tc->engine.out;
  int err = 0;

  if (out->len > mark) {
    err = lc__conn_write_raw(tc->c, out->base + mark, out->len - mark);
    out->len = mark;
  }
  if (mark == out->off) {
    lc__buf_reset(out);
    if (out->cap > KEEP_OUT_MAX)
      lc__buf_free(out);
  }
  return err;
}

/* Logs ---------------------------------------------------------------------------- */

static void tc_log(lc__tls_conn *tc, const char *what, const char *why) {
  char ip[64] = "?";
  int port = 0;

  lc__conn_peer(tc->c, ip, sizeof(ip), &port);
  lc__log(LC__LOG_DEBUG, "TLS %s %s:%d: %s%s%s",
          tc->outbound ? "connection to" : "connection from", ip, port, what,
          why ? ": " : "", why ? why : "");
}

/* Failing ---------------------------------------------------------------------------- */

/* The handshake (or the stream) failed with err: the protocol hears it if
 * it knows the connection; what OpenSSL said to the peer (an alert) goes
 * out, then the connection closes. */
static void tc_fail(lc__tls_conn *tc, int err, const char *what) {
  lc__conn *c = tc->c;
  lc__tls *tls = c->core->tls;
  char why[160];

  tc->dead = 1;
  if (!tc->opened && tls != NULL)
    tls->stats.failed++;
  if (tc->engine.reason[0] != '\0')
    snprintf(why, sizeof(why), "%s", tc->engine.reason);
  else
    lc__tls_strerror(err, why, sizeof(why));
  tc_log(tc, what, err == UV_ETIMEDOUT || err == UV_ECONNRESET ? NULL : why);
  if ((tc->opened || tc->outbound) && !tc->in_start)
    c->ops->on_error(c, err);
  if (!c->closing) {
    lc__conn_pause(c);
    lc__conn_close_when_written(c);
  }
}

/* A server's first bytes are not a TLS handshake: an HTTP request is told
 * so (nginx's answer), anything else is closed. */
static int tc_not_tls(lc__tls_conn *tc, const char *data) {
  lc__conn *c = tc->c;

  tc->seen = 1;
  if ((unsigned char)data[0] == TLS_RECORD_HANDSHAKE)
    return 0;
  tc->dead = 1;
  c->core->tls->stats.not_tls++;
  lc__conn_pause(c);
  if (data[0] >= 'A' && data[0] <= 'Z') {
    tc_log(tc, "plain HTTP sent to a TLS port", "answered 400");
    lc__conn_write_raw(c, plain_http_answer, sizeof(plain_http_answer) - 1);
    lc__conn_close_when_written(c);
  } else {
    tc_log(tc, "not a TLS handshake", "closed");
    lc__conn_close(c);
  }
  return 1;
}

/* The handshake ------------------------------------------------------------------ */

/* Deadlines: the handshake's is fixed from its start. */
static void tc_arm_handshake(lc__tls_conn *tc) {
  lc__conn_set_timeout(tc->c, tc->handshake_timeout_ms);
  tc->c->timeout_ms = 0;
}

/* The handshake is done: the protocol hears on_open. */
static void tc_opened(lc__tls_conn *tc) {
  lc__conn *c = tc->c;
  lc__tls *tls = c->core->tls;
  size_t mark;
  int err = 0;

  tc->opened = 1;
  tls->stats.handshakes++;
  if (SSL_session_reused(tc->engine.ssl))
    tls->stats.resumed++;
  lc__conn_set_timeout(c, c->server != NULL ? c->server->timeout_ms : 0);
  if (lc__buf_size(&tc->early) > 0) {
    mark = tc_mark(tc);
    err = lc__tls_engine_write(&tc->engine, lc__buf_data(&tc->early),
                               lc__buf_size(&tc->early));
    if (err == 0)
      err = tc_send(tc, mark);
    else
      tc_send(tc, mark);
    lc__buf_free(&tc->early);
  }
  c->ops->on_open(c);
  if (err != 0 && !c->closing) {
    c->ops->on_error(c, err);
    lc__conn_close(c);
  }
}

/* Runs the handshake on what was fed: 0 once it is done (the protocol
 * heard on_open), 1 when it needs more, -1 when the connection failed. */
static int tc_handshake(lc__tls_conn *tc) {
  size_t mark = tc_mark(tc);
  int r = lc__tls_engine_handshake(&tc->engine), err;

  err = tc_send(tc, mark);
  if (r < 0) {
    tc_fail(tc, r, "TLS handshake failed");
    return -1;
  }
  if (err != 0) {
    tc_fail(tc, err, "TLS handshake failed");
    return -1;
  }
  if (r == LC__TLS_WANT)
    return 1;
  tc_opened(tc);
  return tc->c->closing ? -1 : 0;
}

/* A client's hello: the session to resume, then the first flight. */
static void tc_client_begin(lc__tls_conn *tc) {
  lc__tls_engine *e = &tc->engine;
  char ip[64] = "";
  int port = 0;

  tc->started = 1;
  lc__conn_peer(tc->c, ip, sizeof(ip), &port);
  snprintf(e->cache_key, sizeof(e->cache_key), "%s|%s:%d", tc->servername, ip,
           port);
  if (tc->session != NULL && !SSL_SESSION_is_resumable(tc->session)) {
    /* A session taken before its ticket came (TLS 1.3 sends tickets after
     * the handshake): the cache has the one the ticket made. */
    SSL_SESSION_free(tc->session);
    tc->session = NULL;
  }
  if (tc->session == NULL)
    tc->session = lc__tls_cache_get(e->ctx, e->cache_key);
  if (tc->session != NULL)
    SSL_set_session(e->ssl, tc->session);
  tc_arm_handshake(tc);
  tc_handshake(tc);
}

/* Reading ------------------------------------------------------------------------ */

/* Hands the plaintext of what was fed to the protocol: as much as fits at
 * once, in as few calls as it takes. */
static void tc_deliver(lc__tls_conn *tc) {
  lc__conn *c = tc->c;
  char *buf = c->core->tls->plain;
  size_t have = 0, n, mark;
  int r;

  for (;;) {
    mark = tc_mark(tc);
    r = lc__tls_engine_read(&tc->engine, buf + have, LC__TLS_PLAIN_SIZE - have,
                            &n);
    tc_send(tc, mark); /* what a read answers (a key update) */
    if (r == 0) {
      have += n;
      if (have < LC__TLS_PLAIN_SIZE)
        continue;
    }
    if (have > 0) {
      c->ops->on_read(c, buf, have);
      have = 0;
      if (c->closing || c->shutdown)
        return;
    }
    if (r == 0)
      continue;
    if (r == LC__TLS_CLOSED) {
      /* close_notify: the end of the stream, as a FIN would be. */
      tc->eof = 1;
      lc__conn_end_of_stream(c);
      c->ops->on_eof(c);
    } else if (r < 0) {
      tc_fail(tc, r, "TLS record refused");
    }
    return;
  }
}

static void tc_on_read(lc__conn *c, const char *data, size_t len) {
  lc__tls_conn *tc = tc_of(c);

  if (tc->dead || tc->eof)
    return;
  if (!tc->seen && !tc->outbound && tc_not_tls(tc, data))
    return;
  lc__tls_engine_feed(&tc->engine, data, len);
  if (!tc->engine.handshaken && tc_handshake(tc) != 0) {
    if (!c->closing && !tc->dead && lc__tls_engine_keep(&tc->engine) != 0)
      lc__conn_close(c);
    return;
  }
  tc_deliver(tc);
  /* What OpenSSL did not take waits for the next read (lingering after a
   * shutdown, nothing more is read). */
  if (!c->closing && !c->shutdown && !tc->dead &&
      lc__tls_engine_keep(&tc->engine) != 0)
    lc__conn_close(c);
}

/* The socket's other events ------------------------------------------------------- */

static void tc_on_open(lc__conn *c) {
  lc__tls_conn *tc = tc_of(c);

  if (tc->outbound)
    tc_client_begin(tc);
  else
    tc_arm_handshake(tc);
}

static void tc_on_eof(lc__conn *c) {
  lc__tls_conn *tc = tc_of(c);

  if (tc->dead) {
    lc__conn_close(c);
    return;
  }
  if (!tc->opened) {
    tc_fail(tc, UV_ECONNRESET, "TLS handshake cut short by the peer");
    lc__conn_close(c);
    return;
  }
  if (tc->eof)
    return;
  tc->eof = 1;
  c->ops->on_eof(c);
}

static void tc_on_timeout(lc__conn *c) {
  lc__tls_conn *tc = tc_of(c);

  if (tc->opened) {
    c->ops->on_timeout(c);
    return;
  }
  if (tc->dead) {
    lc__conn_close(c);
    return;
  }
  tc_fail(tc, UV_ETIMEDOUT, "TLS handshake timed out");
  lc__conn_close(c);
}

static void tc_on_drain(lc__conn *c) {
  if (tc_of(c)->opened)
    c->ops->on_drain(c);
}

static void tc_on_server_close(lc__conn *c) {
  /* A handshake under way goes on (its deadline bounds it); its protocol
   * hears that the server closes when it opens. */
  if (tc_of(c)->opened)
    c->ops->on_server_close(c);
}

static void tc_on_error(lc__conn *c, int err) {
  lc__tls_conn *tc = tc_of(c);

  if (!tc->opened && !tc->dead && c->core->tls != NULL)
    c->core->tls->stats.failed++;
  if (tc->opened || tc->outbound)
    c->ops->on_error(c, err);
}

static void tc_on_close(lc__conn *c) {
  lc__tls_conn *tc = tc_of(c);

  if (tc->opened || tc->outbound)
    c->ops->on_close(c);
  c->filter = NULL;
  c->filter_data = NULL;
  lc__tls_engine_free(&tc->engine);
  lc__buf_free(&tc->early);
  if (tc->session != NULL)
    SSL_SESSION_free(tc->session);
  free(tc);
}

/* The protocol's side ---------------------------------------------------------------- */

static int tc_write(lc__conn *c, const char *data, size_t len) {
  lc__tls_conn *tc = tc_of(c);
  size_t mark;
  int err, sent;

  if (c->closing || c->shutdown || tc->dead)
    return UV_EPIPE;
  if (!tc->opened)
    return lc__buf_append(&tc->early, data, len);
  mark = tc_mark(tc);
  err = lc__tls_engine_write(&tc->engine, data, len);
  sent = tc_send(tc, mark);
  return err != 0 ? err : sent;
}

static void tc_end(lc__conn *c) {
  lc__tls_conn *tc = tc_of(c);
  size_t mark;

  if (!tc->opened || tc->dead)
    return;
  mark = tc_mark(tc);
  lc__tls_engine_close(&tc->engine);
  tc_send(tc, mark);
}

/* Servers --------------------------------------------------------------------------- */

static lc__tls_conn *tc_new(lc__conn *c, lc__tls_ctx *ctx) {
  lc__tls *tls = lc__tls_of(c->core);
  lc__tls_conn *tc = tls != NULL ? calloc(1, sizeof(*tc)) : NULL;

  if (tc == NULL)
    return NULL;
  if (lc__tls_engine_init(&tc->engine, ctx, &tls->out) != 0) {
    free(tc);
    return NULL;
  }
  tc->c = c;
  tc->handshake_timeout_ms = ctx->handshake_timeout_ms;
  return tc;
}

static int tc_attach(lc__conn *c, void *arg) {
  lc__tls_conn *tc = tc_new(c, arg);

  if (tc == NULL) {
    lc__log(LC__LOG_WARN, "TLS: out of memory for a new connection");
    return UV_ENOMEM;
  }
  c->filter_data = tc;
  return 0;
}

static void tc_release(void *arg) { lc__tls_ctx_unref(arg); }

static const lc__conn_filter tls_filter = {
    {tc_on_open, tc_on_read, tc_on_eof, tc_on_timeout, tc_on_drain,
     tc_on_server_close, tc_on_error, tc_on_close},
    tc_write,
    tc_end,
    tc_attach,
    tc_release};

void lc__tls_server_use(lc__server *s, lc__tls_ctx *ctx) {
  if (s->filter == &tls_filter)
    lc__tls_ctx_unref(s->filter_arg);
  s->filter = ctx != NULL ? &tls_filter : NULL;
  s->filter_arg = ctx;
  if (ctx != NULL)
    lc__tls_ctx_ref(ctx);
}

lc__tls_ctx *lc__tls_server_ctx(lc__server *s) {
  return s->filter == &tls_filter ? s->filter_arg : NULL;
}

/* Clients ----------------------------------------------------------------------------- */

/* SNI and the name the certificate must carry (an IP address is checked
 * against the certificate's IP addresses, and is not sent as SNI). */
static int tc_set_name(lc__tls_conn *tc, const char *name) {
  SSL *ssl = tc->engine.ssl;
  struct sockaddr_storage ss;
  int ok;

  snprintf(tc->servername, sizeof(tc->servername), "%s", name);
  if (uv_ip4_addr(name, 0, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(name, 0, (struct sockaddr_in6 *)&ss) == 0)
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
  else
    ok = SSL_set_tlsext_host_name(ssl, name) && SSL_set1_host(ssl, name);
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  ERR_clear_error();
  return ok ? 0 : UV_EINVAL;
}

int lc__tls_client_start(lc__conn *c, lc__tls_ctx *ctx,
                         const lc__tls_client_options *o) {
  lc__tls_conn *tc;

  if (ctx->server)
    return UV_EINVAL;
  tc = tc_new(c, ctx);
  if (tc == NULL)
    return UV_ENOMEM;
  tc->outbound = 1;
  if (o->handshake_timeout_ms != 0)
    tc->handshake_timeout_ms = o->handshake_timeout_ms;
  if (o->servername != NULL && o->servername[0] != '\0' &&
      tc_set_name(tc, o->servername) != 0) {
    lc__tls_engine_free(&tc->engine);
    free(tc);
    return UV_EINVAL;
  }
  if (o->session != NULL) {
    tc->session = (SSL_SESSION *)o->session;
    SSL_SESSION_up_ref(tc->session);
  }
  lc__conn_set_filter(c, &tls_filter, tc);
  if (!c->connecting) {
    tc->in_start = 1;
    tc_client_begin(tc); /* an open connection starts TLS now */
    tc->in_start = 0;
  }
  return 0;
}

int lc__tls_conn_is_tls(const lc__conn *c) { return c->filter == &tls_filter; }

/* What a connection settled on ---------------------------------------------------------- */

int lc__tls_conn_info(const lc__conn *c, lc__tls_info *info) {
  const unsigned char *alpn = NULL;
  unsigned int alpn_len = 0;
  SSL *ssl;

  memset(info, 0, sizeof(*info));
  if (!lc__tls_conn_is_tls(c) || !tc_of(c)->opened)
    return UV_EINVAL;
  ssl = tc_of(c)->engine.ssl;
  info->protocol = SSL_get_version(ssl);
  info->cipher = SSL_get_cipher_name(ssl);
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  info->alpn = alpn_len > 0 ? (const char *)alpn : NULL;
  info->alpn_len = alpn_len;
  info->servername = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  info->reused = SSL_session_reused(ssl);
  info->verify_result = (int)SSL_get_verify_result(ssl);
  info->has_peer_cert = SSL_get0_peer_certificate(ssl) != NULL;
  return 0;
}

/* A BIO's text, to fn as name = value. */
static void emit_bio(BIO *bio, const char *name, lc__tls_field_fn fn,
                     void *arg) {
  char *text;
  long n = BIO_get_mem_data(bio, &text);
  char *copy = malloc((size_t)n + 1);

  if (copy != NULL) {
    memcpy(copy, text, (size_t)n);
    copy[n] = '\0';
    fn(arg, name, copy);
    free(copy);
  }
  (void)BIO_reset(bio);
}

int lc__tls_conn_peer_cert(const lc__conn *c, lc__tls_field_fn fn,
                           void *arg) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  char hex[EVP_MAX_MD_SIZE * 3 + 1];
  X509 *x;
  BIO *bio;
  int loc;

  if (!lc__tls_conn_is_tls(c) || !tc_of(c)->opened)
    return UV_EINVAL;
  x = SSL_get0_peer_certificate(tc_of(c)->engine.ssl);
  if (x == NULL)
    return UV_ENOENT;
  bio = BIO_new(BIO_s_mem());
  if (bio == NULL)
    return UV_ENOMEM;
  X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  emit_bio(bio, "subject", fn, arg);
  X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253);
  emit_bio(bio, "issuer", fn, arg);
  loc = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
  if (loc >= 0 && X509V3_EXT_print(bio, X509_get_ext(x, loc), 0, 0))
    emit_bio(bio, "subjectaltname", fn, arg);
  ASN1_TIME_print(bio, X509_get0_notBefore(x));
  emit_bio(bio, "valid_from", fn, arg);
  ASN1_TIME_print(bio, X509_get0_notAfter(x));
  emit_bio(bio, "valid_to", fn, arg);
  BIO_free(bio);
  if (X509_digest(x, EVP_sha256(), md, &mdlen)) {
    for (i = 0; i < mdlen; i++)
      snprintf(hex + i * 3, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    fn(arg, "fingerprint256", hex);
  }
  ERR_clear_error();
  return 0;
}

lc__tls_session *lc__tls_conn_session(const lc__conn *c) {
  if (!lc__tls_conn_is_tls(c) || !tc_of(c)->opened)
    return NULL;
  return (lc__tls_session *)SSL_get1_session(tc_of(c)->engine.ssl);
}

void lc__tls_session_free(lc__tls_session *s) {
  if (s != NULL)
    SSL_SESSION_free((SSL_SESSION *)s);
}
