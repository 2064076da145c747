/*
 * test_tls.c - TLS in the core: the engine over memory (a client and a
 * server engine pumping bytes at each other), session tickets shared
 * between processes (cores) that were given the same keys, certificate
 * and name checks, errors and their names; then the filter on real
 * sockets: a TLS echo server and client through tcp.c, plain HTTP and
 * garbage sent to the TLS port, and a handshake that never finishes.
 * Certificates are made here with OpenSSL's API.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

#include "frame.h"
#include "tls_int.h"

/* Certificates ------------------------------------------------------------------- */

typedef struct pem {
  char key[4096];
  char cert[4096];
} pem;

static void to_pem(BIO *bio, char *out, size_t size) {
  char *data;
  long n = BIO_get_mem_data(bio, &data);

  CHECK(n > 0 && (size_t)n < size);
  memcpy(out, data, (size_t)n);
  out[n] = '\0';
}

/* A P-256 key and a certificate for san, signed by issuer (NULL: itself),
 * valid from days_from to days_to (from now). */
static void make_cert(pem *out, const char *cn, const char *san,
                      const pem *issuer, long days_from, long days_to,
                      int ca) {
  EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  EVP_PKEY *sign_key = key;
  X509 *x = X509_new(), *ix = NULL;
  X509_EXTENSION *ext;
  X509V3_CTX v3;
  BIO *bio;

  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), rand() + 1);
  X509_gmtime_adj(X509_getm_notBefore(x), days_from * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), days_to * 86400);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  if (issuer != NULL) {
    bio = BIO_new_mem_buf(issuer->cert, -1);
    ix = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bio = BIO_new_mem_buf(issuer->key, -1);
    sign_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    X509_set_issuer_name(x, X509_get_subject_name(ix));
  } else {
    X509_set_issuer_name(x, X509_get_subject_name(x));
  }
  X509V3_set_ctx(&v3, ix ? ix : x, x, NULL, NULL, 0);
  if (san != NULL) {
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                            ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(x, sign_key, EVP_sha256());
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
  to_pem(bio, out->key, sizeof(out->key));
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  to_pem(bio, out->cert, sizeof(out->cert));
  BIO_free(bio);
  if (sign_key != key)
    EVP_PKEY_free(sign_key);
  X509_free(ix);
  X509_free(x);
  EVP_PKEY_free(key);
}

static pem ca_pem, server_pem, expired_pem, self_pem;

static void make_certs(void) {
  make_cert(&ca_pem, "test CA", NULL, NULL, -1, 30, 1);
  make_cert(&server_pem, "localhost", "DNS:localhost,IP:127.0.0.1", &ca_pem, -1,
            30, 0);
  make_cert(&expired_pem, "localhost", "DNS:localhost,IP:127.0.0.1", &ca_pem,
            -30, -1, 0);
  make_cert(&self_pem, "localhost", "DNS:localhost", NULL, -1, 30, 0);
}

/* Contexts --------------------------------------------------------------------- */

static lc__core *core_new(void) {
  lc__core *core = calloc(1, sizeof(*core));

  CHECK_EQ_INT(lc__core_init(core), 0);
  return core;
}

static void core_free(lc__core *core) {
  lc__core_close(core);
  free(core);
}

static const char alpn_http[] = "\x08http/1.1";

static lc__tls_ctx *server_ctx(lc__core *core, const pem *p) {
  lc__tls_options o;
  lc__tls_ctx *ctx = NULL;
  char err[256] = "";

  lc__tls_options_init(&o);
  o.key = p->key;
  o.key_len = strlen(p->key);
  o.cert = p->cert;
  o.cert_len = strlen(p->cert);
  o.alpn = alpn_http;
  o.alpn_len = sizeof(alpn_http) - 1;
  o.verify = 0;
  CHECK_EQ_INT(lc__tls_ctx_new(core, 1, &o, err, sizeof(err), &ctx), 0);
  if (err[0])
    fprintf(stderr, "server ctx: %s\n", err);
  return ctx;
}

static lc__tls_ctx *client_ctx(lc__core *core, const char *ca, int verify) {
  lc__tls_options o;
  lc__tls_ctx *ctx = NULL;
  char err[256] = "";

  lc__tls_options_init(&o);
  o.ca = ca;
  o.ca_len = ca ? strlen(ca) : 0;
  o.verify = verify;
  o.alpn = alpn_http;
  o.alpn_len = sizeof(alpn_http) - 1;
  CHECK_EQ_INT(lc__tls_ctx_new(core, 0, &o, err, sizeof(err), &ctx), 0);
  if (err[0])
    fprintf(stderr, "client ctx: %s\n", err);
  return ctx;
}

/* Two engines over memory ------------------------------------------------------------ */

typedef struct pair {
  lc__tls_engine client, server;
  lc__buf to_server, to_client; /* what each wrote for the other */
  int client_err, server_err;
} pair;

static void pair_init(pair *p, lc__tls_ctx *cctx, lc__tls_ctx *sctx,
                      const char *host) {
  memset(p, 0, sizeof(*p));
  CHECK_EQ_INT(lc__tls_engine_init(&p->client, cctx, &p->to_server), 0);
  CHECK_EQ_INT(lc__tls_engine_init(&p->server, sctx, &p->to_client), 0);
  if (host != NULL) {
    SSL_set_tlsext_host_name(p->client.ssl, host);
    SSL_set1_host(p->client.ssl, host);
  }
}

static void pair_free(pair *p) {
  lc__tls_engine_free(&p->client);
  lc__tls_engine_free(&p->server);
  lc__buf_free(&p->to_server);
  lc__buf_free(&p->to_client);
}

/* Feeds e what its peer wrote (all of it: it is taken or kept). */
static void feed(lc__tls_engine *e, lc__buf *from) {
  lc__buf copy = *from;

  memset(from, 0, sizeof(*from));
  lc__tls_engine_feed(e, lc__buf_size(&copy) ? lc__buf_data(&copy) : "",
                      lc__buf_size(&copy));
}

static void settle(lc__tls_engine *e, lc__buf *in) {
  CHECK_EQ_INT(lc__tls_engine_keep(e), 0);
  lc__buf_free(in);
}

/* Runs both handshakes to their end (or a failure). 0 when both are done. */
static int pair_handshake(pair *p) {
  int i, rc = LC__TLS_WANT, rs = LC__TLS_WANT;

  for (i = 0; i < 10 && (rc != 0 || rs != 0); i++) {
    lc__buf in = p->to_client;
    feed(&p->client, &p->to_client);
    rc = lc__tls_engine_handshake(&p->client);
    settle(&p->client, &in);
    if (rc < 0) {
      p->client_err = rc;
      return rc;
    }
    in = p->to_server;
    feed(&p->server, &p->to_server);
    rs = lc__tls_engine_handshake(&p->server);
    settle(&p->server, &in);
    if (rs < 0) {
      p->server_err = rs;
      return rs;
    }
  }
  return rc == 0 && rs == 0 ? 0 : -1;
}

/* Reads every plaintext byte e has from what was written for it. */
static int read_all(lc__tls_engine *e, lc__buf *from, lc__buf *plain) {
  lc__buf in = *from;
  char buf[8192];
  size_t n;
  int r;

  feed(e, from);
  while ((r = lc__tls_engine_read(e, buf, sizeof(buf), &n)) == 0)
    lc__buf_append(plain, buf, n);
  settle(e, &in);
  return r;
}

static void engines_talk_both_ways(void) {
  lc__core *core = core_new();
  lc__tls_ctx *sctx = server_ctx(core, &server_pem);
  lc__tls_ctx *cctx = client_ctx(core, ca_pem.cert, 1);
  lc__buf plain = LC__BUF_INIT;
  const unsigned char *alpn;
  unsigned alpn_len;
  char *big = malloc(1 << 20);
  pair p;

  pair_init(&p, cctx, sctx, "localhost");
  CHECK_EQ_INT(pair_handshake(&p), 0);
  CHECK_EQ_STR(SSL_get_version(p.client.ssl), "TLSv1.3");
  SSL_get0_alpn_selected(p.server.ssl, &alpn, &alpn_len);
  CHECK(alpn_len == 8 && memcmp(alpn, "http/1.1", 8) == 0);
  CHECK_EQ_INT(SSL_get_verify_result(p.client.ssl), X509_V_OK);

  CHECK_EQ_INT(lc__tls_engine_write(&p.client, "GET / HTTP/1.1\r\n\r\n", 18), 0);
  CHECK_EQ_INT(read_all(&p.server, &p.to_server, &plain), LC__TLS_WANT);
  CHECK(lc__buf_size(&plain) == 18 &&
        memcmp(lc__buf_data(&plain), "GET / HTTP/1.1\r\n\r\n", 18) == 0);
  lc__buf_reset(&plain);

  /* A megabyte the other way: many records, every byte in order. */
  for (size_t i = 0; i < (1u << 20); i++)
    big[i] = (char)(i * 7);
  CHECK_EQ_INT(lc__tls_engine_write(&p.server, big, 1 << 20), 0);
  CHECK_EQ_INT(read_all(&p.client, &p.to_client, &plain), LC__TLS_WANT);
  CHECK_EQ_INT(lc__buf_size(&plain), 1 << 20);
  CHECK(memcmp(lc__buf_data(&plain), big, 1 << 20) == 0);
  lc__buf_reset(&plain);

  /* close_notify ends the peer's stream. */
  lc__tls_engine_close(&p.client);
  CHECK_EQ_INT(read_all(&p.server, &p.to_server, &plain), LC__TLS_CLOSED);
  CHECK_EQ_INT(lc__tls_engine_write(&p.client, "x", 1), UV_EPIPE);

  lc__buf_free(&plain);
  free(big);
  pair_free(&p);
  lc__tls_ctx_unref(sctx);
  lc__tls_ctx_unref(cctx);
  core_free(core);
}

/* Bytes fed one at a time still make a handshake: records cut anywhere are
 * kept until whole. */
static void engines_take_records_in_pieces(void) {
  lc__core *core = core_new();
  lc__tls_ctx *sctx = server_ctx(core, &server_pem);
  lc__tls_ctx *cctx = client_ctx(core, ca_pem.cert, 1);
  int rs = LC__TLS_WANT, rc, i;
  size_t k;
  pair p;

  pair_init(&p, cctx, sctx, "localhost");
  rc = lc__tls_engine_handshake(&p.client); /* the hello */
  CHECK_EQ_INT(rc, LC__TLS_WANT);
  for (i = 0; i < 10 && (rc != 0 || rs != 0); i++) {
    lc__buf in = p.to_server;
    memset(&p.to_server, 0, sizeof(p.to_server));
    for (k = 0; k < lc__buf_size(&in); k++) {
      lc__tls_engine_feed(&p.server, lc__buf_data(&in) + k, 1);
      rs = lc__tls_engine_handshake(&p.server);
      CHECK(rs >= 0);
      CHECK_EQ_INT(lc__tls_engine_keep(&p.server), 0);
    }
    lc__buf_free(&in);
    in = p.to_client;
    memset(&p.to_client, 0, sizeof(p.to_client));
    for (k = 0; k < lc__buf_size(&in); k++) {
      lc__tls_engine_feed(&p.client, lc__buf_data(&in) + k, 1);
      rc = lc__tls_engine_handshake(&p.client);
      CHECK(rc >= 0);
      CHECK_EQ_INT(lc__tls_engine_keep(&p.client), 0);
    }
    lc__buf_free(&in);
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(rs, 0);
  pair_free(&p);
  lc__tls_ctx_unref(sctx);
  lc__tls_ctx_unref(cctx);
  core_free(core);
}

/* The client's session after it read the server's ticket. */
static SSL_SESSION *session_from(lc__core *server_core, lc__core *client_core,
                                 int *reused, SSL_SESSION *resume) {
  lc__tls_ctx *sctx = server_ctx(server_core, &server_pem);
  lc__tls_ctx *cctx = client_ctx(client_core, ca_pem.cert, 1);
  lc__buf plain = LC__BUF_INIT;
  SSL_SESSION *s;
  pair p;

  pair_init(&p, cctx, sctx, "localhost");
  if (resume != NULL)
    SSL_set_session(p.client.ssl, resume);
  CHECK_EQ_INT(pair_handshake(&p), 0);
  *reused = SSL_session_reused(p.server.ssl);
  CHECK_EQ_INT(read_all(&p.client, &p.to_client, &plain), LC__TLS_WANT);
  s = SSL_get1_session(p.client.ssl);
  CHECK(SSL_SESSION_is_resumable(s));
  lc__buf_free(&plain);
  pair_free(&p);
  lc__tls_ctx_unref(sctx);
  lc__tls_ctx_unref(cctx);
  return s;
}

/* A master's keys, given to two workers: a ticket one of them made resumes
 * on the other; a process with keys of its own cannot open it. */
static void tickets_resume_across_processes_with_the_same_keys(void) {
  lc__core *master = core_new(), *w1 = core_new(), *w2 = core_new(),
           *other = core_new(), *client = core_new();
  char keys[LC__TLS_KEYS_PAYLOAD];
  SSL_SESSION *s, *s2;
  int reused;

  CHECK_EQ_INT(lc__tls_tickets_payload(master, keys), 0);
  CHECK_EQ_INT(lc__tls_tickets_receive(w1, keys, sizeof(keys)), 0);
  CHECK_EQ_INT(lc__tls_tickets_receive(w2, keys, sizeof(keys)), 0);
  CHECK_EQ_INT(lc__tls_tickets_receive(w2, keys, 3), UV_EINVAL);
  keys[0] ^= 1;
  CHECK_EQ_INT(lc__tls_tickets_receive(w2, keys, sizeof(keys)), UV_EINVAL);

  s = session_from(w1, client, &reused, NULL);
  CHECK_EQ_INT(reused, 0);
  s2 = session_from(w2, client, &reused, s);
  CHECK_EQ_INT(reused, 1);
  SSL_SESSION_free(s2);
  s2 = session_from(other, client, &reused, s);
  CHECK_EQ_INT(reused, 0);
  SSL_SESSION_free(s2);
  SSL_SESSION_free(s);
  core_free(client);
  core_free(other);
  core_free(w2);
  core_free(w1);
  core_free(master);
}

/* Runs core's loop until its ticket keys were made or given n times. */
static void wait_generation(lc__core *core, uint64_t n) {
  uint64_t end = uv_now(&core->loop) + 5000;

  while (lc__tls_tickets_generation(core) < n && uv_now(&core->loop) < end)
    uv_run(&core->loop, UV_RUN_ONCE);
  CHECK_EQ_INT(lc__tls_tickets_generation(core), n);
}

/* After a rotation the key before still opens tickets; two rotations on,
 * it is gone. */
static void tickets_survive_one_rotation(void) {
  lc__core *master, *w = core_new(), *client = core_new();
  char keys[LC__TLS_KEYS_PAYLOAD];
  SSL_SESSION *s, *s2;
  int reused;

  setenv("LUACLUSTER_TLS_TICKET_ROTATE", "0.1", 1);
  master = core_new();
  CHECK_EQ_INT(lc__tls_tickets_payload(master, keys), 0);
  unsetenv("LUACLUSTER_TLS_TICKET_ROTATE");
  /* The rotation timer keeps no process alive; this test's loop it does. */
  uv_ref((uv_handle_t *)&lc__tls_of(master)->tickets.timer);
  CHECK_EQ_INT(lc__tls_tickets_receive(w, keys, sizeof(keys)), 0);
  s = session_from(w, client, &reused, NULL);
  wait_generation(master, 2);
  CHECK_EQ_INT(lc__tls_tickets_payload(master, keys), 0);
  CHECK_EQ_INT(lc__tls_tickets_receive(w, keys, sizeof(keys)), 0);
  s2 = session_from(w, client, &reused, s);
  CHECK_EQ_INT(reused, 1);
  SSL_SESSION_free(s2);
  wait_generation(master, 3);
  CHECK_EQ_INT(lc__tls_tickets_payload(master, keys), 0);
  CHECK_EQ_INT(lc__tls_tickets_receive(w, keys, sizeof(keys)), 0);
  s2 = session_from(w, client, &reused, s);
  CHECK_EQ_INT(reused, 0);
  SSL_SESSION_free(s2);
  SSL_SESSION_free(s);
  core_free(client);
  core_free(w);
  core_free(master);
}

/* Certificate checks ---------------------------------------------------------------- */

static int handshake_error(const pem *server, const char *ca, const char *host) {
  lc__core *core = core_new();
  lc__tls_ctx *sctx = server_ctx(core, server);
  lc__tls_ctx *cctx = client_ctx(core, ca, 1);
  pair p;
  int r;

  pair_init(&p, cctx, sctx, host);
  r = pair_handshake(&p);
  if (r < 0 && p.client_err == 0)
    r = -1; /* the server failed first: not what these tests look for */
  pair_free(&p);
  lc__tls_ctx_unref(sctx);
  lc__tls_ctx_unref(cctx);
  core_free(core);
  return r;
}

static void certificate_checks_fail_with_their_reason(void) {
  char name[64], words[160];

  CHECK_EQ_INT(handshake_error(&server_pem, ca_pem.cert, "localhost"), 0);
  CHECK_EQ_INT(handshake_error(&expired_pem, ca_pem.cert, "localhost"),
               LC__TLS_EVERIFY(X509_V_ERR_CERT_HAS_EXPIRED));
  CHECK_EQ_INT(handshake_error(&self_pem, ca_pem.cert, "localhost"),
               LC__TLS_EVERIFY(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT));
  CHECK_EQ_INT(handshake_error(&server_pem, ca_pem.cert, "example.com"),
               LC__TLS_EVERIFY(X509_V_ERR_HOSTNAME_MISMATCH));
  CHECK_EQ_INT(handshake_error(&server_pem, self_pem.cert, "localhost"),
               LC__TLS_EVERIFY(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));

  CHECK_EQ_STR(lc__tls_err_name(LC__TLS_EVERIFY(X509_V_ERR_CERT_HAS_EXPIRED),
                                name, sizeof(name)),
               "CERT_HAS_EXPIRED");
  CHECK_EQ_STR(lc__tls_err_name(LC__TLS_EVERIFY(X509_V_ERR_HOSTNAME_MISMATCH),
                                name, sizeof(name)),
               "ERR_TLS_CERT_ALTNAME_INVALID");
  CHECK_EQ_STR(lc__tls_err_name(LC__TLS_ESSL(SSL_R_WRONG_VERSION_NUMBER), name,
                                sizeof(name)),
               "ERR_SSL_WRONG_VERSION_NUMBER");
  CHECK_EQ_STR(lc__tls_strerror(LC__TLS_EVERIFY(X509_V_ERR_CERT_HAS_EXPIRED),
                                words, sizeof(words)),
               "certificate has expired");
  CHECK(lc__tls_is_error(LC__TLS_ESSL(SSL_R_WRONG_VERSION_NUMBER)));
  CHECK(!lc__tls_is_error(UV_ECONNRESET));
}

static void bad_contexts_say_why(void) {
  lc__core *core = core_new();
  lc__tls_options o;
  lc__tls_ctx *ctx;
  char err[256];

  lc__tls_options_init(&o);
  CHECK_EQ_INT(lc__tls_ctx_new(core, 1, &o, err, sizeof(err), &ctx), UV_EINVAL);
  CHECK(strstr(err, "needs a key and a cert") != NULL);
  o.key = self_pem.key;
  o.key_len = strlen(self_pem.key);
  o.cert = server_pem.cert;
  o.cert_len = strlen(server_pem.cert);
  CHECK_EQ_INT(lc__tls_ctx_new(core, 1, &o, err, sizeof(err), &ctx), UV_EINVAL);
  CHECK(strstr(err, "does not match") != NULL);
  o.cert = "not a certificate";
  o.cert_len = 17;
  CHECK_EQ_INT(lc__tls_ctx_new(core, 1, &o, err, sizeof(err), &ctx), UV_EINVAL);
  CHECK(strstr(err, "not a PEM certificate") != NULL);
  lc__tls_options_init(&o);
  o.ca = "junk";
  o.ca_len = 4;
  CHECK_EQ_INT(lc__tls_ctx_new(core, 0, &o, err, sizeof(err), &ctx), UV_EINVAL);
  CHECK(strstr(err, "no PEM certificate") != NULL);
  CHECK(ERR_peek_error() == 0); /* nothing left for the next one to find */
  core_free(core);
}

/* A server engine fed what is not TLS fails, and says so. */
static void garbage_fails_the_server_engine(void) {
  lc__core *core = core_new();
  lc__tls_ctx *sctx = server_ctx(core, &server_pem);
  lc__buf out = LC__BUF_INIT;
  lc__tls_engine e;
  int r;

  CHECK_EQ_INT(lc__tls_engine_init(&e, sctx, &out), 0);
  lc__tls_engine_feed(&e, "\x16\x03\x01\x00\x05hello-not-a-hello", 22);
  r = lc__tls_engine_handshake(&e);
  CHECK(r < 0 && lc__tls_is_error(r));
  CHECK(e.reason[0] != '\0');
  lc__tls_engine_free(&e);
  lc__buf_free(&out);
  lc__tls_ctx_unref(sctx);
  core_free(core);
}

/* The filter on real sockets ---------------------------------------------------------- */

typedef struct echo_state {
  lc__core *core;
  lc__buf got;       /* what the client read */
  int opened, closed, errors, last_err;
  lc__tls_info info;
  int server_opened, server_closed;
  char alpn[16];
} echo_state;

static echo_state *echo_of(lc__conn *c) {
  return c->server != NULL ? c->server->data : c->data;
}

static void e_open(lc__conn *c) {
  echo_state *st = echo_of(c);

  if (c->server != NULL) {
    st->server_opened++;
    return;
  }
  st->opened++;
  lc__tls_conn_info(c, &st->info);
  snprintf(st->alpn, sizeof(st->alpn), "%.*s", (int)st->info.alpn_len,
           st->info.alpn ? st->info.alpn : "");
  lc__conn_write(c, "ping", 4);
}

static void e_read(lc__conn *c, const char *data, size_t len) {
  echo_state *st = echo_of(c);

  if (c->server != NULL) {
    lc__conn_write(c, data, len); /* echo */
    return;
  }
  lc__buf_append(&st->got, data, len);
  if (lc__buf_size(&st->got) >= 4)
    lc__conn_shutdown(c);
}

static void e_eof(lc__conn *c) {
  if (c->server != NULL)
    lc__conn_shutdown(c);
  else
    lc__conn_close(c);
}

static void e_timeout(lc__conn *c) { lc__conn_close(c); }
static void e_drain(lc__conn *c) { (void)c; }
static void e_server_close(lc__conn *c) { lc__conn_close(c); }

static void e_error(lc__conn *c, int err) {
  echo_state *st = echo_of(c);

  if (c->server == NULL) {
    st->errors++;
    st->last_err = err;
  }
}

static void e_close(lc__conn *c) {
  echo_state *st = echo_of(c);

  if (c->server != NULL)
    st->server_closed++;
  else
    st->closed++;
}

static const lc__conn_ops echo_ops = {e_open,  e_read,         e_eof,
                                      e_timeout, e_drain,      e_server_close,
                                      e_error, e_close};

static void run_until(lc__core *core, int *flag) {
  uint64_t end = uv_now(&core->loop) + 5000;

  while (!*flag && uv_now(&core->loop) < end)
    uv_run(&core->loop, UV_RUN_ONCE);
}

static lc__server *echo_server(echo_state *st, lc__tls_ctx *ctx) {
  lc__server *s = lc__server_new(st->core, &echo_ops, NULL, st);

  CHECK(s != NULL);
  CHECK_EQ_INT(lc__server_bind(s, "127.0.0.1", 0, 16, 0), 0);
  lc__tls_server_use(s, ctx);
  return s;
}

static lc__conn *connect_to(echo_state *st, lc__server *s) {
  struct sockaddr_in addr;
  lc__conn *c = NULL;

  uv_ip4_addr("127.0.0.1", s->port, &addr);
  CHECK_EQ_INT(lc__conn_connect(st->core, (struct sockaddr *)&addr, NULL,
                                &echo_ops, st, 2000, &c),
               0);
  return c;
}

static void filter_serves_a_tls_echo(void) {
  echo_state st;
  lc__tls_ctx *sctx, *cctx;
  lc__tls_client_options co;
  lc__tls_stats stats;
  lc__server *s;
  lc__conn *c;

  memset(&st, 0, sizeof(st));
  st.core = core_new();
  sctx = server_ctx(st.core, &server_pem);
  cctx = client_ctx(st.core, ca_pem.cert, 1);
  s = echo_server(&st, sctx);
  c = connect_to(&st, s);
  memset(&co, 0, sizeof(co));
  co.servername = "localhost";
  CHECK_EQ_INT(lc__tls_client_start(c, cctx, &co), 0);
  CHECK(lc__tls_conn_is_tls(c));
  run_until(st.core, &st.closed);
  CHECK_EQ_INT(st.opened, 1);
  CHECK_EQ_INT(st.errors, 0);
  CHECK(lc__buf_size(&st.got) == 4 &&
        memcmp(lc__buf_data(&st.got), "ping", 4) == 0);
  CHECK_EQ_STR(st.info.protocol, "TLSv1.3");
  CHECK_EQ_STR(st.alpn, "http/1.1");
  CHECK_EQ_INT(st.info.verify_result, 0);
  run_until(st.core, &st.server_closed);
  lc__tls_stats_get(st.core, &stats);
  CHECK_EQ_INT(stats.handshakes, 2); /* the client's and the server's */

  /* The next connection resumes from the context's cache. */
  st.closed = st.opened = 0;
  lc__buf_reset(&st.got);
  c = connect_to(&st, s);
  CHECK_EQ_INT(lc__tls_client_start(c, cctx, &co), 0);
  run_until(st.core, &st.closed);
  CHECK_EQ_INT(st.info.reused, 1);
  lc__tls_stats_get(st.core, &stats);
  CHECK_EQ_INT(stats.resumed, 2);

  /* A wrong name: the client hears why, the server counts a failure. */
  st.closed = st.opened = 0;
  c = connect_to(&st, s);
  co.servername = "example.com";
  CHECK_EQ_INT(lc__tls_client_start(c, cctx, &co), 0);
  run_until(st.core, &st.closed);
  CHECK_EQ_INT(st.opened, 0);
  CHECK_EQ_INT(st.last_err, LC__TLS_EVERIFY(X509_V_ERR_HOSTNAME_MISMATCH));

  lc__server_close(s);
  lc__buf_free(&st.got);
  lc__tls_ctx_unref(sctx);
  lc__tls_ctx_unref(cctx);
  core_free(st.core);
}

/* A plain socket sends bytes to the TLS port and reads what comes back
 * until the server closes. */
static void raw_exchange(echo_state *st, int port, const char *send_bytes,
                         size_t send_len, char *reply, size_t size) {
  struct sockaddr_in addr;
  int fd = socket(AF_INET, SOCK_STREAM, 0), done = 0;
  size_t got = 0;
  ssize_t n;

  uv_ip4_addr("127.0.0.1", port, &addr);
  CHECK_EQ_INT(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  if (send_bytes != NULL)
    CHECK(write(fd, send_bytes, send_len) == (ssize_t)send_len);
  /* The server runs in this thread: turn the loop while reading. */
  while (!done) {
    uv_run(&st->core->loop, UV_RUN_NOWAIT);
    n = recv(fd, reply + got, size - 1 - got, MSG_DONTWAIT);
    if (n == 0)
      done = 1;
    else if (n > 0)
      got += (size_t)n;
    else
      usleep(1000);
  }
  reply[got] = '\0';
  close(fd);
}

static void filter_refuses_what_is_not_tls(void) {
  echo_state st;
  lc__tls_ctx *sctx;
  lc__tls_stats stats;
  lc__server *s;
  char reply[1024];

  memset(&st, 0, sizeof(st));
  st.core = core_new();
  sctx = server_ctx(st.core, &server_pem);
  s = echo_server(&st, sctx);
  raw_exchange(&st, s->port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, reply,
               sizeof(reply));
  CHECK(strncmp(reply, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
  CHECK(strstr(reply, "The plain HTTP request was sent to HTTPS port") != NULL);
  raw_exchange(&st, s->port, "\x01\x02garbage", 9, reply, sizeof(reply));
  CHECK_EQ_STR(reply, "");
  /* A handshake record holding a ClientHello too short to be one: an
   * alert. */
  raw_exchange(&st, s->port,
               "\x16\x03\x01\x00\x08" "\x01\x00\x00\x04" "\x03\x03\x01\x01",
               13, reply, sizeof(reply));
  CHECK(reply[0] == 21); /* an alert record */
  lc__tls_stats_get(st.core, &stats);
  CHECK_EQ_INT(stats.not_tls, 2);
  CHECK_EQ_INT(stats.failed, 1);
  CHECK_EQ_INT(st.server_opened, 0); /* the protocol never heard of them */
  lc__server_close(s);
  lc__tls_ctx_unref(sctx);
  core_free(st.core);
}

/* A client that connects and says nothing is closed after the handshake
 * timeout. */
static void filter_closes_a_handshake_that_never_ends(void) {
  echo_state st;
  lc__tls_options o;
  lc__tls_ctx *sctx = NULL;
  lc__tls_stats stats;
  lc__server *s;
  char reply[64], err[128];
  uint64_t start;

  memset(&st, 0, sizeof(st));
  st.core = core_new();
  lc__tls_options_init(&o);
  o.key = server_pem.key;
  o.key_len = strlen(server_pem.key);
  o.cert = server_pem.cert;
  o.cert_len = strlen(server_pem.cert);
  o.handshake_timeout_ms = 300;
  CHECK_EQ_INT(lc__tls_ctx_new(st.core, 1, &o, err, sizeof(err), &sctx), 0);
  s = echo_server(&st, sctx);
  start = uv_now(&st.core->loop);
  raw_exchange(&st, s->port, NULL, 0, reply, sizeof(reply));
  CHECK(uv_now(&st.core->loop) - start >= 250);
  CHECK_EQ_STR(reply, "");
  lc__tls_stats_get(st.core, &stats);
  CHECK_EQ_INT(stats.failed, 1);
  lc__server_close(s);
  lc__tls_ctx_unref(sctx);
  core_free(st.core);
}

int main(void) {
  make_certs();
  RUN(engines_talk_both_ways);
  RUN(engines_take_records_in_pieces);
  RUN(tickets_resume_across_processes_with_the_same_keys);
  RUN(tickets_survive_one_rotation);
  RUN(certificate_checks_fail_with_their_reason);
  RUN(bad_contexts_say_why);
  RUN(garbage_fails_the_server_engine);
  RUN(filter_serves_a_tls_echo);
  RUN(filter_refuses_what_is_not_tls);
  RUN(filter_closes_a_handshake_that_never_ends);
  TEST_EXIT();
}
