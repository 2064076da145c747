/*
 * tls_context.c - TLS contexts (tls.h): certificates, keys, trust and
 * settings from PEM strings; SNI; ALPN; a client's cache of sessions; TLS
 * error codes and words; the process's TLS state.
 *
 * Defaults, for both roles: TLS 1.2 at least (1.3 preferred), OpenSSL's
 * cipher lists at its security level 2 (Debian's default configuration:
 * 112-bit keys, no SHA-1 signatures, forward secrecy first), no
 * renegotiation, no compression. A server prefers its own cipher order,
 * issues one TLS 1.3 ticket per handshake and keeps no session cache of its
 * own: sessions resume from tickets (tls_tickets.c), which every worker can
 * read. Its session id context is the certificate's SHA-256, so a session
 * resumes only where the same certificate is served (every worker of an
 * app; not another SNI name, not after the certificate changed).
 *
 * A client checks the server's certificate against the system's CAs
 * (OpenSSL's default paths: Debian's ca-certificates; SSL_CERT_FILE and
 * SSL_CERT_DIR are honoured) or the context's own, and the name it asked
 * for against the certificate's names (tls_conn.c sets it per connection).
 * It keeps the last session of each peer (servername, address and port) to
 * resume the next connection there.
 */
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "tls_int.h"

/* The process's TLS state ---------------------------------------------------- */

static void tls_close_handles(uv_handle_t *handle) {
  lc__tls *tls = handle->data;

  if (tls->tickets.timer_init && !uv_is_closing(handle))
    uv_close(handle, NULL);
}

static void tls_free(void *arg) {
  lc__core *core = arg;
  lc__tls *tls = core->tls;

  BIO_meth_free(tls->bio_method);
  lc__buf_free(&tls->out);
  OPENSSL_cleanse(&tls->tickets.keys, sizeof(tls->tickets.keys));
  free(tls);
  core->tls = NULL;
}

lc__tls *lc__tls_of(lc__core *core) {
  lc__tls *tls = core->tls;

  if (tls != NULL)
    return tls;
  tls = calloc(1, sizeof(*tls));
  if (tls == NULL || lc__core_on_close(core, tls_free, core) != 0) {
    free(tls);
    return NULL;
  }
  tls->owner.close = tls_close_handles;
  tls->core = core;
  core->tls = tls;
  return tls;
}

/* Errors ---------------------------------------------------------------------- */

int lc__tls_is_error(int err) { return err <= -41000 && err > -47096; }

const char *lc__tls_strerror(int err, char *buf, size_t size) {
  const char *s = NULL;

  if (err <= LC__TLS_EVERIFY(0) && err > LC__TLS_EVERIFY(1000)) {
    int v = LC__TLS_EVERIFY(0) - err;
    if (v == X509_V_ERR_HOSTNAME_MISMATCH ||
        v == X509_V_ERR_IP_ADDRESS_MISMATCH)
      s = "Hostname/IP does not match certificate's altnames";
    else
      s = X509_verify_cert_error_string(v);
  } else if (err <= LC__TLS_ESSL(0) && err > LC__TLS_ESSL(4096)) {
    s = ERR_reason_error_string(
        ERR_PACK(ERR_LIB_SSL, 0, LC__TLS_ESSL(0) - err));
  } else if (err == LC__TLS_ENOTTLS) {
    s = "the peer does not speak TLS";
  }
  snprintf(buf, size, "%s", s != NULL ? s : "TLS handshake failed");
  return buf;
}

/* Node's names for certificate check failures (its error codes). */
static const char *verify_name(int v) {
  static const struct {
    int v;
    const char *name;
  } names[] = {
      {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, "UNABLE_TO_GET_ISSUER_CERT"},
      {X509_V_ERR_UNABLE_TO_GET_CRL, "UNABLE_TO_GET_CRL"},
      {X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE,
       "UNABLE_TO_DECRYPT_CERT_SIGNATURE"},
      {X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY,
       "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY"},
      {X509_V_ERR_CERT_SIGNATURE_FAILURE, "CERT_SIGNATURE_FAILURE"},
      {X509_V_ERR_CERT_NOT_YET_VALID, "CERT_NOT_YET_VALID"},
      {X509_V_ERR_CERT_HAS_EXPIRED, "CERT_HAS_EXPIRED"},
      {X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD,
       "ERROR_IN_CERT_NOT_BEFORE_FIELD"},
      {X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD,
       "ERROR_IN_CERT_NOT_AFTER_FIELD"},
      {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "DEPTH_ZERO_SELF_SIGNED_CERT"},
      {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, "SELF_SIGNED_CERT_IN_CHAIN"},
      {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
       "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"},
      {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
       "UNABLE_TO_VERIFY_LEAF_SIGNATURE"},
      {X509_V_ERR_CERT_CHAIN_TOO_LONG, "CERT_CHAIN_TOO_LONG"},
      {X509_V_ERR_CERT_REVOKED, "CERT_REVOKED"},
      {X509_V_ERR_INVALID_CA, "INVALID_CA"},
      {X509_V_ERR_PATH_LENGTH_EXCEEDED, "PATH_LENGTH_EXCEEDED"},
      {X509_V_ERR_INVALID_PURPOSE, "INVALID_PURPOSE"},
      {X509_V_ERR_CERT_UNTRUSTED, "CERT_UNTRUSTED"},
      {X509_V_ERR_CERT_REJECTED, "CERT_REJECTED"},
      {X509_V_ERR_HOSTNAME_MISMATCH, "ERR_TLS_CERT_ALTNAME_INVALID"},
      {X509_V_ERR_IP_ADDRESS_MISMATCH, "ERR_TLS_CERT_ALTNAME_INVALID"},
  };
  size_t i;

  for (i = 0; i < LC__ARRAY_SIZE(names); i++)
    if (names[i].v == v)
      return names[i].name;
  return NULL;
}

const char *lc__tls_err_name(int err, char *buf, size_t size) {
  const char *reason;
  size_t i, n;

  if (err <= LC__TLS_EVERIFY(0) && err > LC__TLS_EVERIFY(1000)) {
    reason = verify_name(LC__TLS_EVERIFY(0) - err);
    if (reason != NULL)
      snprintf(buf, size, "%s", reason);
    else
      snprintf(buf, size, "ERR_TLS_CERT_VERIFY_%d", LC__TLS_EVERIFY(0) - err);
    return buf;
  }
  if (err <= LC__TLS_ESSL(0) && err > LC__TLS_ESSL(4096)) {
    /* Node's way: "wrong version number" -> ERR_SSL_WRONG_VERSION_NUMBER */
    reason = ERR_reason_error_string(
        ERR_PACK(ERR_LIB_SSL, 0, LC__TLS_ESSL(0) - err));
    n = (size_t)snprintf(buf, size, "ERR_SSL_%s", reason ? reason : "ERROR");
    for (i = 8; i < n && i < size; i++)
      buf[i] = isalnum((unsigned char)buf[i]) ? (char)toupper((unsigned char)buf[i]) : '_';
    return buf;
  }
  snprintf(buf, size, "%s",
           err == LC__TLS_ENOTTLS ? "ERR_SSL_NOT_TLS" : "ERR_SSL_HANDSHAKE_FAILED");
  return buf;
}

/* What went wrong in OpenSSL, in words, for err. */
static void ssl_reason(char *err, size_t errlen, const char *what) {
  unsigned long code = ERR_peek_last_error();
  char detail[200];

  if (code != 0) {
    ERR_error_string_n(code, detail, sizeof(detail));
    snprintf(err, errlen, "%s (%s)", what, detail);
  } else {
    snprintf(err, errlen, "%s", what);
  }
  ERR_clear_error();
}

/* PEM ------------------------------------------------------------------------- */

typedef struct passphrase {
  const char *s;
} passphrase;

static int pem_password(char *buf, int size, int rwflag, void *arg) {
  passphrase *p = arg;
  size_t n;

  (void)rwflag;
  if (p == NULL || p->s == NULL)
    return 0;
  n = strlen(p->s);
  if (n > (size_t)size)
    return 0;
  memcpy(buf, p->s, n);
  return (int)n;
}

/* The certificate, then its chain. */
static int load_cert(SSL_CTX *ssl_ctx, const lc__tls_options *o, char *err,
                     size_t errlen) {
  BIO *bio = BIO_new_mem_buf(o->cert, (int)o->cert_len);
  X509 *x;
  int ok = 0;

  if (bio == NULL)
    return UV_ENOMEM;
  x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
  if (x == NULL) {
    ssl_reason(err, errlen, "cert is not a PEM certificate");
    BIO_free(bio);
    return UV_EINVAL;
  }
  ok = SSL_CTX_use_certificate(ssl_ctx, x);
  X509_free(x);
  while (ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (!SSL_CTX_add0_chain_cert(ssl_ctx, x)) {
      X509_free(x);
      ok = 0;
    }
  }
  BIO_free(bio);
  ERR_clear_error(); /* the end of the PEM list */
  if (!ok) {
    ssl_reason(err, errlen, "cannot use the certificate");
    return UV_EINVAL;
  }
  return 0;
}

static int load_key(SSL_CTX *ssl_ctx, const lc__tls_options *o, char *err,
                    size_t errlen) {
  BIO *bio = BIO_new_mem_buf(o->key, (int)o->key_len);
  passphrase p = {o->passphrase};
  EVP_PKEY *key;
  int ok;

  if (bio == NULL)
    return UV_ENOMEM;
  key = PEM_read_bio_PrivateKey(bio, NULL, pem_password, &p);
  BIO_free(bio);
  if (key == NULL) {
    ssl_reason(err, errlen, o->passphrase != NULL
                                ? "cannot read the key (a wrong passphrase?)"
                                : "key is not a PEM private key (or it is "
                                  "encrypted and no passphrase was given)");
    return UV_EINVAL;
  }
  ok = SSL_CTX_use_PrivateKey(ssl_ctx, key);
  EVP_PKEY_free(key);
  if (!ok || !SSL_CTX_check_private_key(ssl_ctx)) {
    ssl_reason(err, errlen, "the key does not match the certificate");
    return UV_EINVAL;
  }
  return 0;
}

/* Adds the PEM CAs to the context's trust store. */
static int load_ca(SSL_CTX *ssl_ctx, const lc__tls_options *o, int server,
                   char *err, size_t errlen) {
  X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);
  BIO *bio = BIO_new_mem_buf(o->ca, (int)o->ca_len);
  X509 *x;
  int n = 0;

  if (bio == NULL)
    return UV_ENOMEM;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    X509_STORE_add_cert(store, x);
    if (server)
      SSL_CTX_add_client_CA(ssl_ctx, x);
    X509_free(x);
    n++;
  }
  BIO_free(bio);
  ERR_clear_error();
  if (n == 0) {
    snprintf(err, errlen, "ca holds no PEM certificate");
    return UV_EINVAL;
  }
  return 0;
}

/* Server callbacks ------------------------------------------------------------ */

static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  lc__tls_ctx *ctx = arg;
  unsigned char *sel;

  (void)ssl;
  if (ctx->alpn == NULL ||
      SSL_select_next_proto(&sel, outlen, ctx->alpn, (unsigned)ctx->alpn_len,
                            in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK; /* go on without ALPN */
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* "*.example.com" matches "a.example.com", not "a.b.example.com". */
static int name_matches(const char *pattern, const char *name) {
  const char *dot;

  if (strcasecmp(pattern, name) == 0)
    return 1;
  if (pattern[0] != '*' || pattern[1] != '.')
    return 0;
  dot = strchr(name, '.');
  return dot != NULL && dot != name && strcasecmp(dot, pattern + 1) == 0;
}

int lc__tls_ctx_servername(SSL *ssl, int *alert, void *arg) {
  lc__tls_ctx *ctx = arg, *pick = NULL;
  lc__tls_engine *e = SSL_get_app_data(ssl);
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  size_t i;

  (void)alert;
  if (name == NULL || e == NULL)
    return SSL_TLSEXT_ERR_OK;
  for (i = 0; i < ctx->nnames && pick == NULL; i++)
    if (strcasecmp(ctx->names[i].name, name) == 0)
      pick = ctx->names[i].ctx;
  for (i = 0; i < ctx->nnames && pick == NULL; i++)
    if (name_matches(ctx->names[i].name, name))
      pick = ctx->names[i].ctx;
  if (pick == NULL && ctx->sni_fn != NULL)
    pick = ctx->sni_fn(ctx->sni_arg, name);
  if (pick != NULL && pick != ctx && pick->server && e->sni_ctx == NULL) {
    /* The connection keeps the context it moved to. */
    SSL_set_SSL_CTX(ssl, pick->ssl_ctx);
    lc__tls_ctx_ref(pick);
    e->sni_ctx = pick;
  }
  return SSL_TLSEXT_ERR_OK;
}

/* The session id context: the certificate's SHA-256. */
static void set_session_context(SSL_CTX *ssl_ctx) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  X509 *x = SSL_CTX_get0_certificate(ssl_ctx);

  if (x != NULL && X509_digest(x, EVP_sha256(), md, &len) && len > 0)
    SSL_CTX_set_session_id_context(ssl_ctx, md, len);
  else
    SSL_CTX_set_session_id_context(ssl_ctx, (const unsigned char *)"lc", 2);
}

static int accept_any(int ok, X509_STORE_CTX *store) {
  (void)ok;
  (void)store;
  return 1; /* checked, the result kept: the app decides (requestCert) */
}

static int server_setup(lc__tls_ctx *ctx, const lc__tls_options *o,
                        char *err, size_t errlen) {
  SSL_CTX *s = ctx->ssl_ctx;
  int r;

  if (o->cert == NULL || o->cert_len == 0 || o->key == NULL ||
      o->key_len == 0) {
    snprintf(err, errlen, "a TLS server needs a key and a cert");
    return UV_EINVAL;
  }
  if ((r = load_cert(s, o, err, errlen)) != 0 ||
      (r = load_key(s, o, err, errlen)) != 0)
    return r;
  if (o->ca != NULL && o->ca_len > 0 &&
      (r = load_ca(s, o, 1, err, errlen)) != 0)
    return r;
  if (o->verify)
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER |
                              (o->require_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       o->require_cert ? NULL : accept_any);
  SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(s, 1);
  SSL_CTX_set_timeout(s, (long)(o->session_timeout_s ? o->session_timeout_s
                                                     : LC__TLS_SESSION_TIMEOUT_S));
  SSL_CTX_set_tlsext_ticket_key_evp_cb(s, lc__tls_ticket_cb);
  set_session_context(s);
  SSL_CTX_set_tlsext_servername_callback(s, lc__tls_ctx_servername);
  SSL_CTX_set_tlsext_servername_arg(s, ctx);
  if (o->alpn != NULL && o->alpn_len > 0) {
    ctx->alpn = malloc(o->alpn_len);
    if (ctx->alpn == NULL)
      return UV_ENOMEM;
    memcpy(ctx->alpn, o->alpn, o->alpn_len);
    ctx->alpn_len = o->alpn_len;
    SSL_CTX_set_alpn_select_cb(s, alpn_select, ctx);
  }
  return 0;
}

/* Client sessions ---------------------------------------------------------------- */

/* A new session from the server (after the handshake in TLS 1.3: a ticket
 * it sent): the peer's next connection resumes it. */
static int client_new_session(SSL *ssl, SSL_SESSION *session) {
  lc__tls_engine *e = SSL_get_app_data(ssl);
  lc__tls_ctx *ctx;
  lc__tls_cached *slot = NULL;
  size_t i;

  if (e == NULL || e->cache_key[0] == '\0' || !SSL_SESSION_is_resumable(session))
    return 0;
  ctx = e->ctx;
  for (i = 0; i < ctx->ncache && slot == NULL; i++)
    if (strcmp(ctx->cache[i].key, e->cache_key) == 0)
      slot = &ctx->cache[i];
  if (slot == NULL && ctx->ncache < LC__TLS_SESSION_CACHE) {
    char *key = strdup(e->cache_key);
    if (key == NULL)
      return 0;
    slot = &ctx->cache[ctx->ncache++];
    slot->key = key;
    slot->session = NULL;
  }
  if (slot == NULL) {
    /* Full: the least recently used peer's place. */
    char *key = strdup(e->cache_key);
    if (key == NULL)
      return 0;
    slot = &ctx->cache[0];
    for (i = 1; i < ctx->ncache; i++)
      if (ctx->cache[i].used < slot->used)
        slot = &ctx->cache[i];
    free(slot->key);
    slot->key = key;
  }
  if (slot->session != NULL)
    SSL_SESSION_free(slot->session);
  slot->session = session; /* ours: returning 1 keeps the reference */
  slot->used = ++ctx->cache_clock;
  return 1;
}

SSL_SESSION *lc__tls_cache_get(lc__tls_ctx *ctx, const char *key) {
  size_t i;

  for (i = 0; i < ctx->ncache; i++) {
    if (strcmp(ctx->cache[i].key, key) == 0) {
      ctx->cache[i].used = ++ctx->cache_clock;
      if (!SSL_SESSION_is_resumable(ctx->cache[i].session))
        return NULL;
      SSL_SESSION_up_ref(ctx->cache[i].session);
      return ctx->cache[i].session;
    }
  }
  return NULL;
}

static int client_setup(lc__tls_ctx *ctx, const lc__tls_options *o,
                        char *err, size_t errlen) {
  SSL_CTX *s = ctx->ssl_ctx;
  int r;

  if (o->ca != NULL && o->ca_len > 0) {
    if ((r = load_ca(s, o, 0, err, errlen)) != 0)
      return r;
  } else if (o->verify && !SSL_CTX_set_default_verify_paths(s)) {
    ssl_reason(err, errlen, "cannot load the system's CAs");
    return UV_EINVAL;
  }
  if (o->cert != NULL && o->cert_len > 0) { /* a client certificate */
    if ((r = load_cert(s, o, err, errlen)) != 0 ||
        (r = load_key(s, o, err, errlen)) != 0)
      return r;
  }
  SSL_CTX_set_verify(s, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  if (o->alpn != NULL && o->alpn_len > 0 &&
      SSL_CTX_set_alpn_protos(s, (const unsigned char *)o->alpn,
                              (unsigned)o->alpn_len) != 0) {
    snprintf(err, errlen, "bad ALPN protocol list");
    return UV_EINVAL;
  }
  ctx->cache = calloc(LC__TLS_SESSION_CACHE, sizeof(*ctx->cache));
  if (ctx->cache == NULL)
    return UV_ENOMEM;
  SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT |
                                        SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(s, client_new_session);
  return 0;
}

/* Contexts ------------------------------------------------------------------------- */

void lc__tls_options_init(lc__tls_options *o) {
  memset(o, 0, sizeof(*o));
  o->min_version = TLS1_2_VERSION;
  o->verify = 1;
}

static int common_setup(SSL_CTX *s, const lc__tls_options *o, char *err,
                        size_t errlen) {
  int min = o->min_version ? o->min_version : TLS1_2_VERSION;

  if (min < TLS1_2_VERSION)
    min = TLS1_2_VERSION; /* nothing older than 1.2 */
  if (!SSL_CTX_set_min_proto_version(s, min) ||
      (o->max_version && !SSL_CTX_set_max_proto_version(s, o->max_version))) {
    ssl_reason(err, errlen, "bad TLS version bounds");
    return UV_EINVAL;
  }
  SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
  if (o->ciphers != NULL && !SSL_CTX_set_cipher_list(s, o->ciphers)) {
    ssl_reason(err, errlen, "no cipher in ciphers is usable");
    return UV_EINVAL;
  }
  if (o->ciphersuites != NULL && !SSL_CTX_set_ciphersuites(s, o->ciphersuites)) {
    ssl_reason(err, errlen, "bad TLS 1.3 ciphersuites");
    return UV_EINVAL;
  }
  return 0;
}

int lc__tls_ctx_new(lc__core *core, int server, const lc__tls_options *o,
                    char *err, size_t errlen, lc__tls_ctx **out) {
  lc__tls_ctx *ctx = calloc(1, sizeof(*ctx));
  int r;

  *out = NULL;
  if (ctx == NULL)
    return UV_ENOMEM;
  ctx->core = core;
  ctx->server = server;
  ctx->refs = 1;
  ctx->handshake_timeout_ms = o->handshake_timeout_ms
                                  ? o->handshake_timeout_ms
                                  : LC__TLS_HANDSHAKE_TIMEOUT_MS;
  ERR_clear_error();
  ctx->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx->ssl_ctx == NULL) {
    ssl_reason(err, errlen, "cannot make a TLS context");
    free(ctx);
    return UV_ENOMEM;
  }
  SSL_CTX_set_app_data(ctx->ssl_ctx, ctx);
  r = common_setup(ctx->ssl_ctx, o, err, errlen);
  if (r == 0)
    r = server ? server_setup(ctx, o, err, errlen)
               : client_setup(ctx, o, err, errlen);
  if (r != 0) {
    if (r == UV_ENOMEM)
      snprintf(err, errlen, "out of memory");
    lc__tls_ctx_unref(ctx);
    return r;
  }
  *out = ctx;
  return 0;
}

void lc__tls_ctx_ref(lc__tls_ctx *ctx) { ctx->refs++; }

void lc__tls_ctx_unref(lc__tls_ctx *ctx) {
  size_t i;

  if (ctx == NULL || --ctx->refs > 0)
    return;
  for (i = 0; i < ctx->nnames; i++) {
    free(ctx->names[i].name);
    lc__tls_ctx_unref(ctx->names[i].ctx);
  }
  free(ctx->names);
  for (i = 0; i < ctx->ncache; i++) {
    free(ctx->cache[i].key);
    if (ctx->cache[i].session != NULL)
      SSL_SESSION_free(ctx->cache[i].session);
  }
  free(ctx->cache);
  free(ctx->alpn);
  SSL_CTX_free(ctx->ssl_ctx);
  free(ctx);
}

int lc__tls_ctx_is_server(const lc__tls_ctx *ctx) { return ctx->server; }

int lc__tls_ctx_add_name(lc__tls_ctx *ctx, const char *name,
                         lc__tls_ctx *child) {
  lc__tls_name *names;
  char *copy;

  if (!ctx->server || !child->server)
    return UV_EINVAL;
  names = realloc(ctx->names, (ctx->nnames + 1) * sizeof(*names));
  if (names == NULL)
    return UV_ENOMEM;
  ctx->names = names;
  copy = strdup(name);
  if (copy == NULL)
    return UV_ENOMEM;
  names[ctx->nnames].name = copy;
  names[ctx->nnames].ctx = child;
  ctx->nnames++;
  lc__tls_ctx_ref(child);
  return 0;
}

void lc__tls_ctx_set_sni(lc__tls_ctx *ctx, lc__tls_sni_fn fn, void *arg) {
  ctx->sni_fn = fn;
  ctx->sni_arg = arg;
}
