/*
 * fuzz_tls_server.c - libFuzzer target for the TLS server's record path
 * (core/tls/tls_engine.c: our BIO, the bytes OpenSSL did not take kept across
 * feeds, the handshake and reads on top).
 *
 * The first byte picks a mode, the next two where the rest is cut:
 *
 *   0  the rest is what a client sent: fed to a fresh server engine in
 *      three pieces, each followed by a handshake (and reads once it is
 *      done). Any failure must be an LC__TLS_E* error with a reason.
 *   1  a real client finishes a handshake first; then the rest is
 *      plaintext it sends, and its ciphertext reaches the server cut at
 *      the two points (and, inside, one byte at a time for a while): the
 *      server must read back exactly the plaintext.
 *   2  as 1, then the rest goes in raw after the client's records, as if
 *      a peer spoke garbage mid-stream: the server reads the good records
 *      and fails cleanly on the rest.
 *
 * ASan finds nothing, leaks included (every engine is freed per input).
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_int.h"

static lc__core core;
static lc__tls_ctx *server_ctx, *client_ctx;

static void pem_of(BIO *bio, char *out, size_t size) {
  char *data;
  long n = BIO_get_mem_data(bio, &data);

  if (n <= 0 || (size_t)n >= size)
    abort();
  memcpy(out, data, (size_t)n);
  out[n] = '\0';
}

/* A self-signed P-256 certificate for localhost, and the contexts. */
static void setup(void) {
  static char key_pem[2048], cert_pem[2048];
  EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  X509 *x = X509_new();
  lc__tls_options o;
  char err[256];
  BIO *bio;

  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_sign(x, key, EVP_sha256());
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
  pem_of(bio, key_pem, sizeof(key_pem));
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  pem_of(bio, cert_pem, sizeof(cert_pem));
  BIO_free(bio);
  X509_free(x);
  EVP_PKEY_free(key);

  if (lc__core_init(&core) != 0)
    abort();
  lc__tls_options_init(&o);
  o.key = key_pem;
  o.key_len = strlen(key_pem);
  o.cert = cert_pem;
  o.cert_len = strlen(cert_pem);
  o.alpn = "\x08http/1.1";
  o.alpn_len = 9;
  o.verify = 0;
  if (lc__tls_ctx_new(&core, 1, &o, err, sizeof(err), &server_ctx) != 0)
    abort();
  lc__tls_options_init(&o);
  o.ca = cert_pem;
  o.ca_len = strlen(cert_pem);
  if (lc__tls_ctx_new(&core, 0, &o, err, sizeof(err), &client_ctx) != 0)
    abort();
}

static void check_error(const lc__tls_engine *e, int r) {
  if (r < 0 && (!lc__tls_is_error(r) && r != UV_ECONNRESET))
    abort(); /* a failure says what it is */
  if (r < 0 && e->reason[0] == '\0')
    abort();
}

/* Feeds piece to e, then runs the handshake or reads; plaintext goes to
 * plain. Returns the last result. */
static int step(lc__tls_engine *e, const uint8_t *piece, size_t len,
                lc__buf *plain) {
  char buf[4096];
  size_t n;
  int r;

  lc__tls_engine_feed(e, (const char *)piece, len);
  r = lc__tls_engine_handshake(e);
  if (r == 0) {
    while ((r = lc__tls_engine_read(e, buf, sizeof(buf), &n)) == 0)
      lc__buf_append(plain, buf, n);
  }
  if (lc__tls_engine_keep(e) != 0)
    abort();
  return r;
}

static void drain(lc__buf *out) { lc__buf_reset(out); }

static void raw_client(const uint8_t *data, size_t size, size_t cut1,
                       size_t cut2) {
  lc__buf out = LC__BUF_INIT, plain = LC__BUF_INIT;
  lc__tls_engine e;
  size_t cuts[4] = {0, cut1, cut2, size}, i;
  int r = LC__TLS_WANT;

  if (lc__tls_engine_init(&e, server_ctx, &out) != 0)
    abort();
  for (i = 0; i < 3 && r >= 0; i++) {
    r = step(&e, data + cuts[i], cuts[i + 1] - cuts[i], &plain);
    check_error(&e, r);
    drain(&out);
  }
  lc__tls_engine_free(&e);
  lc__buf_free(&out);
  lc__buf_free(&plain);
}

/* Hands what one engine wrote to the other until both handshakes end. */
static int handshake(lc__tls_engine *c, lc__tls_engine *s, lc__buf *c_out,
                     lc__buf *s_out) {
  lc__buf plain = LC__BUF_INIT;
  int rc = LC__TLS_WANT, rs = LC__TLS_WANT, i;

  for (i = 0; i < 8 && (rc != 0 || rs != 0); i++) {
    lc__buf in = *s_out;
    memset(s_out, 0, sizeof(*s_out));
    lc__tls_engine_feed(c, lc__buf_size(&in) ? lc__buf_data(&in) : "",
                        lc__buf_size(&in));
    rc = lc__tls_engine_handshake(c);
    lc__tls_engine_keep(c);
    lc__buf_free(&in);
    in = *c_out;
    memset(c_out, 0, sizeof(*c_out));
    lc__tls_engine_feed(s, lc__buf_size(&in) ? lc__buf_data(&in) : "",
                        lc__buf_size(&in));
    rs = lc__tls_engine_handshake(s);
    lc__tls_engine_keep(s);
    lc__buf_free(&in);
    if (rc < 0 || rs < 0)
      abort(); /* two engines of ours always agree */
  }
  lc__buf_free(&plain);
  return rc == 0 && rs == 0 ? 0 : -1;
}

static void records(const uint8_t *data, size_t size, size_t cut1,
                    size_t cut2, int garbage) {
  lc__buf c_out = LC__BUF_INIT, s_out = LC__BUF_INIT, plain = LC__BUF_INIT;
  lc__tls_engine c, s;
  size_t len, pos, end, i;
  const char *wire;
  int r = 0;

  if (lc__tls_engine_init(&c, client_ctx, &c_out) != 0 ||
      lc__tls_engine_init(&s, server_ctx, &s_out) != 0)
    abort();
  SSL_set1_host(c.ssl, "localhost");
  if (handshake(&c, &s, &c_out, &s_out) != 0)
    abort();
  lc__buf_reset(&s_out); /* its tickets: the client need not read them */
  if (size > 0 && lc__tls_engine_write(&c, (const char *)data, size) != 0)
    abort();
  if (garbage)
    lc__buf_append(&c_out, data, size);
  wire = lc__buf_size(&c_out) ? lc__buf_data(&c_out) : "";
  len = lc__buf_size(&c_out);
  if (cut1 > len)
    cut1 = len;
  if (cut2 < cut1 || cut2 > len)
    cut2 = len;
  /* the first piece whole, the middle a byte at a time (up to 64), then
   * the rest */
  r = step(&s, (const uint8_t *)wire, cut1, &plain);
  for (pos = cut1, i = 0; pos < cut2 && r >= 0; i++) {
    end = i < 64 ? pos + 1 : cut2;
    r = step(&s, (const uint8_t *)wire + pos, end - pos, &plain);
    pos = end;
  }
  if (r >= 0)
    r = step(&s, (const uint8_t *)wire + cut2, len - cut2, &plain);
  check_error(&s, r);
  if (!garbage &&
      (r != LC__TLS_WANT || lc__buf_size(&plain) != size ||
       (size > 0 && memcmp(lc__buf_data(&plain), data, size) != 0)))
    abort(); /* the server reads back exactly what was sent */
  if (garbage && lc__buf_size(&plain) > size)
    abort();
  lc__tls_engine_free(&c);
  lc__tls_engine_free(&s);
  lc__buf_free(&c_out);
  lc__buf_free(&s_out);
  lc__buf_free(&plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  size_t cut1, cut2;

  if (!ready) {
    setup();
    ready = 1;
  }
  if (size < 3)
    return 0;
  cut1 = data[1] * 8u;
  cut2 = cut1 + data[2] * 8u;
  switch (data[0] % 3) {
  case 0:
    data += 3;
    size -= 3;
    raw_client(data, size, cut1 < size ? cut1 : size, cut2 < size ? cut2 : size);
    break;
  case 1:
    records(data + 3, size - 3, cut1, cut2, 0);
    break;
  default:
    records(data + 3, size - 3, cut1, cut2, 1);
    break;
  }
  return 0;
}
