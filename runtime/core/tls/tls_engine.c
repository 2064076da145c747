/*
 * tls_engine.c - one TLS session over memory (tls_int.h).
 *
 * OpenSSL reads and writes through a BIO of our own with no buffer of its
 * own: a read takes from the ciphertext being fed (the connection's read,
 * where it lies: tcp.c's shared buffer), a write appends to the process's
 * output buffer, which the caller sends right after the call. Nothing is
 * copied on the way in, and a connection holds no buffers between reads
 * (OpenSSL's own are released when idle: SSL_MODE_RELEASE_BUFFERS). Bytes
 * OpenSSL did not take by the end of the call that fed them (a caller that
 * stopped reading early) are kept in `carry`.
 *
 * Errors: a failed handshake tells why as an LC__TLS_E* code (the
 * certificate check's result when that is what failed, else OpenSSL's
 * reason), with words in e->reason for logs. OpenSSL's error queue is
 * emptied before and after each call, so one connection's failure never
 * shows up as another's.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "tls_int.h"

/* The BIO --------------------------------------------------------------------- */

static int bio_write(BIO *b, const char *data, int len) {
  lc__tls_engine *e = BIO_get_data(b);

  BIO_clear_retry_flags(b);
  if (len <= 0)
    return 0;
  if (lc__buf_append(e->out, data, (size_t)len) != 0)
    return -1;
  return len;
}

static int bio_read(BIO *b, char *buf, int size) {
  lc__tls_engine *e = BIO_get_data(b);
  size_t n, want = size > 0 ? (size_t)size : 0;

  BIO_clear_retry_flags(b);
  if (lc__buf_size(&e->carry) > 0) {
    n = lc__buf_size(&e->carry) < want ? lc__buf_size(&e->carry) : want;
    memcpy(buf, lc__buf_data(&e->carry), n);
    lc__buf_consume(&e->carry, n);
    return (int)n;
  }
  if (e->in_len > 0) {
    n = e->in_len < want ? e->in_len : want;
    memcpy(buf, e->in, n);
    e->in += n;
    e->in_len -= n;
    return (int)n;
  }
  BIO_set_retry_read(b);
  return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  lc__tls_engine *e = BIO_get_data(b);

  (void)num;
  (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_PENDING:
    return e ? (long)(lc__buf_size(&e->carry) + e->in_len) : 0;
  default:
    return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int bio_destroy(BIO *b) {
  BIO_set_data(b, NULL);
  return 1;
}

BIO_METHOD *lc__tls_bio_method(lc__core *core) {
  lc__tls *tls = lc__tls_of(core);
  BIO_METHOD *m;

  if (tls == NULL)
    return NULL;
  if (tls->bio_method != NULL)
    return tls->bio_method;
  m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "luacluster");
  if (m == NULL || !BIO_meth_set_write(m, bio_write) ||
      !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
      !BIO_meth_set_create(m, bio_create) ||
      !BIO_meth_set_destroy(m, bio_destroy)) {
    BIO_meth_free(m);
    return NULL;
  }
  tls->bio_method = m;
  return m;
}

/* Set-up ---------------------------------------------------------------------- */

int lc__tls_engine_init(lc__tls_engine *e, lc__tls_ctx *ctx, lc__buf *out) {
  BIO_METHOD *m = lc__tls_bio_method(ctx->core);
  BIO *bio;

  memset(e, 0, sizeof(*e));
  e->core = ctx->core;
  e->out = out;
  e->server = ctx->server;
  if (m == NULL)
    return UV_ENOMEM;
  e->ssl = SSL_new(ctx->ssl_ctx);
  bio = e->ssl ? BIO_new(m) : NULL;
  if (bio == NULL) {
    SSL_free(e->ssl);
    e->ssl = NULL;
    ERR_clear_error();
    return UV_ENOMEM;
  }
  BIO_set_data(bio, e);
  SSL_set_bio(e->ssl, bio, bio); /* one BIO both ways: one reference */
  SSL_set_app_data(e->ssl, e);
  if (e->server)
    SSL_set_accept_state(e->ssl);
  else
    SSL_set_connect_state(e->ssl);
  lc__tls_ctx_ref(ctx);
  e->ctx = ctx;
  return 0;
}

void lc__tls_engine_free(lc__tls_engine *e) {
  if (e->ssl != NULL) {
    /* A connection that ends without close_notify (most do: an idle one
     * closed, a reset) leaves its session good to resume: OpenSSL would
     * take it out of use otherwise. A failed one goes. */
    if (e->handshaken && !e->failed)
      SSL_set_shutdown(e->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(e->ssl);
    e->ssl = NULL;
  }
  lc__buf_free(&e->carry);
  if (e->sni_ctx != NULL)
    lc__tls_ctx_unref(e->sni_ctx);
  e->sni_ctx = NULL;
  if (e->ctx != NULL)
    lc__tls_ctx_unref(e->ctx);
  e->ctx = NULL;
}

void lc__tls_engine_feed(lc__tls_engine *e, const char *data, size_t len) {
  e->in = data;
  e->in_len = len;
}

int lc__tls_engine_keep(lc__tls_engine *e) {
  int err = 0;

  if (e->in_len > 0 && !e->failed)
    err = lc__buf_append(&e->carry, e->in, e->in_len);
  e->in = NULL;
  e->in_len = 0;
  return err;
}

/* Errors ---------------------------------------------------------------------- */

/* Why the last call failed: the certificate check's result, or the reason
 * at the bottom of OpenSSL's queue (the first thing that went wrong). */
static int engine_error(lc__tls_engine *e, int ssl_err) {
  unsigned long code = ERR_peek_error();
  long verify = SSL_get_verify_result(e->ssl);
  int err;

  e->failed = 1;
  if ((SSL_get_verify_mode(e->ssl) & SSL_VERIFY_PEER) && verify > 0 &&
      verify < 1000) {
    err = LC__TLS_EVERIFY((int)verify);
  } else if (code != 0 && ERR_GET_LIB(code) == ERR_LIB_SSL &&
             ERR_GET_REASON(code) > 0 && ERR_GET_REASON(code) < 4096) {
    err = LC__TLS_ESSL(ERR_GET_REASON(code));
  } else if (ssl_err == SSL_ERROR_SYSCALL && code == 0) {
    err = UV_ECONNRESET;
  } else {
    err = LC__TLS_EFAILED;
  }
  if (code != 0)
    ERR_error_string_n(code, e->reason, sizeof(e->reason));
  else
    lc__tls_strerror(err, e->reason, sizeof(e->reason));
  ERR_clear_error();
  return err;
}

/* The result of an SSL call that returned r. */
static int engine_result(lc__tls_engine *e, int r) {
  int ssl_err = SSL_get_error(e->ssl, r);

  switch (ssl_err) {
  case SSL_ERROR_WANT_READ:
    ERR_clear_error();
    return LC__TLS_WANT;
  case SSL_ERROR_ZERO_RETURN:
    e->peer_closed = 1;
    ERR_clear_error();
    return LC__TLS_CLOSED;
  default:
    return engine_error(e, ssl_err);
  }
}

/* Calls ------------------------------------------------------------------------- */

int lc__tls_engine_handshake(lc__tls_engine *e) {
  int r;

  if (e->failed)
    return LC__TLS_EFAILED;
  if (e->handshaken)
    return 0;
  ERR_clear_error();
  r = SSL_do_handshake(e->ssl);
  if (r == 1) {
    e->handshaken = 1;
    return 0;
  }
  r = engine_result(e, r);
  return r == LC__TLS_CLOSED ? UV_ECONNRESET : r;
}

int lc__tls_engine_read(lc__tls_engine *e, char *buf, size_t cap, size_t *n) {
  size_t got = 0;
  int r;

  *n = 0;
  if (e->failed)
    return LC__TLS_EFAILED;
  if (e->peer_closed)
    return LC__TLS_CLOSED;
  ERR_clear_error();
  r = SSL_read_ex(e->ssl, buf, cap, &got);
  if (r == 1) {
    *n = got;
    return 0;
  }
  return engine_result(e, 0);
}

int lc__tls_engine_write(lc__tls_engine *e, const char *data, size_t len) {
  size_t written = 0;
  int r;

  if (e->failed || e->closed)
    return UV_EPIPE;
  if (len == 0)
    return 0;
  ERR_clear_error();
  /* The BIO takes everything: the whole of data is encrypted at once. */
  r = SSL_write_ex(e->ssl, data, len, &written);
  if (r == 1 && written == len)
    return 0;
  r = engine_result(e, 0);
  return r < 0 ? r : UV_EPIPE;
}

void lc__tls_engine_close(lc__tls_engine *e) {
  if (e->closed || e->failed || !e->handshaken)
    return;
  e->closed = 1;
  ERR_clear_error();
  SSL_shutdown(e->ssl); /* close_notify; the peer's is not waited for */
  ERR_clear_error();
}
