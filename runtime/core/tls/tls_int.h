/*
 * tls_int.h - what the TLS files share (tls_context.c, tls_engine.c,
 * tls_conn.c, tls_tickets.c). Other parts use tls.h.
 */
#ifndef LC_TLS_INT_H
#define LC_TLS_INT_H

#include <openssl/ssl.h>

#include "tls.h"

/* Plaintext handed to a protocol at once, at most (a socket read is 64 KiB
 * of ciphertext: its plaintext fits). */
#define LC__TLS_PLAIN_SIZE (64 * 1024)

/* A client context's cache of sessions to resume, one per peer. */
#define LC__TLS_SESSION_CACHE 256

typedef struct lc__tls_name {
  char *name;       /* "example.com" or "*.example.com" */
  lc__tls_ctx *ctx; /* a reference */
} lc__tls_name;

typedef struct lc__tls_cached {
  char *key; /* "servername|ip:port" */
  SSL_SESSION *session;
  uint64_t used; /* for eviction: the oldest goes */
} lc__tls_cached;

struct lc__tls_ctx {
  lc__core *core;
  SSL_CTX *ssl_ctx;
  int server;
  int refs;
  uint64_t handshake_timeout_ms;
  unsigned char *alpn; /* a server's protocols, wire format */
  size_t alpn_len;
  lc__tls_name *names;
  size_t nnames;
  lc__tls_sni_fn sni_fn;
  void *sni_arg;
  lc__tls_cached *cache; /* a client's sessions */
  size_t ncache;
  uint64_t cache_clock;
};

/* The process's TLS state (core->tls): the BIO method every connection's
 * BIO uses, the shared buffers, and the ticket keys. */
typedef struct lc__tls_ticket_key {
  unsigned char name[16];
  unsigned char aes[32];
  unsigned char hmac[32];
} lc__tls_ticket_key;

struct lc__tls {
  lc__owner owner; /* first: the rotation timer's data points here */
  lc__core *core;
  lc__tls_stats stats;
  BIO_METHOD *bio_method;
  lc__buf out;  /* ciphertext on its way to a socket (drained at once) */
  char plain[LC__TLS_PLAIN_SIZE];
  struct {
    lc__tls_ticket_key keys[LC__TLS_TICKET_KEYS]; /* [0] encrypts */
    int nkeys;
    int given;          /* from a master (else made here, rotated here) */
    uint64_t generation;
    uv_timer_t timer;   /* rotation, where the keys are made */
    int timer_init;
  } tickets;
};

/* The process's TLS state, made on first use; NULL when out of memory. */
lc__tls *lc__tls_of(lc__core *core);

/* One TLS session over memory (tls_engine.c). */
typedef struct lc__tls_engine {
  lc__core *core;
  SSL *ssl;
  lc__tls_ctx *ctx;     /* a reference */
  lc__tls_ctx *sni_ctx; /* the context SNI switched to (a reference) */
  const char *in;       /* ciphertext fed, not yet taken by OpenSSL */
  size_t in_len;
  lc__buf carry;        /* fed bytes kept past the call that fed them */
  lc__buf *out;         /* where ciphertext goes */
  int server;
  int handshaken;
  int failed;           /* a fatal error: nothing more goes in or out */
  int closed;           /* close_notify sent */
  int peer_closed;      /* close_notify received */
  char cache_key[344];  /* a client's key into its context's session cache:
                           servername (256), "|", ip (64), ":", port */
  char reason[160];     /* the last failure, in words, for logs */
} lc__tls_engine;

/* Results of engine calls besides 0 and errors. */
#define LC__TLS_WANT 1   /* more ciphertext is needed */
#define LC__TLS_CLOSED 2 /* the peer sent close_notify: no more data */

int lc__tls_engine_init(lc__tls_engine *e, lc__tls_ctx *ctx, lc__buf *out);
void lc__tls_engine_free(lc__tls_engine *e);
/* Ciphertext from the peer, read by the calls that follow (the bytes must
 * live until lc__tls_engine_keep() or the end of those calls). */
void lc__tls_engine_feed(lc__tls_engine *e, const char *data, size_t len);
/* Copies what OpenSSL has not taken of the fed bytes. */
int lc__tls_engine_keep(lc__tls_engine *e);
/* 0 when the handshake is done, LC__TLS_WANT, or an LC__TLS_E* error. */
int lc__tls_engine_handshake(lc__tls_engine *e);
/* Decrypts into buf: 0 and *n > 0, LC__TLS_WANT, LC__TLS_CLOSED, or an
 * error. */
int lc__tls_engine_read(lc__tls_engine *e, char *buf, size_t cap, size_t *n);
/* Encrypts data into e->out. 0 or an error. */
int lc__tls_engine_write(lc__tls_engine *e, const char *data, size_t len);
/* Queues close_notify (once). */
void lc__tls_engine_close(lc__tls_engine *e);
/* The BIO method (made once per process). */
BIO_METHOD *lc__tls_bio_method(lc__core *core);

/* tls_context.c */
/* The SNI choice for a server engine whose client asked for name. */
int lc__tls_ctx_servername(SSL *ssl, int *alert, void *arg);
/* A client's cache: the session for key (a reference), or NULL. */
SSL_SESSION *lc__tls_cache_get(lc__tls_ctx *ctx, const char *key);

/* tls_tickets.c: encrypts or decrypts a ticket (OpenSSL's callback). */
int lc__tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
                      EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc);

#endif
