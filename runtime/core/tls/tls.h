/*
 * tls.h - TLS over connections (OpenSSL 3): contexts, the filter that puts
 * a TLS session between a connection's socket and its protocol, session
 * ticket keys every worker shares, and TLS errors.
 *
 * Where TLS sits: tcp.c reads and writes the socket as it does for any
 * connection. A TLS connection has a filter (tcp.h's lc__conn_filter,
 * tls_conn.c) that hears the socket's events first: it runs the handshake
 * (in this process: whatever the scheduling policy, a worker owns its
 * connections' TLS), decrypts what arrives and gives the plaintext to the
 * protocol's ops (the HTTP server, the HTTP client, raw sockets, cosockets:
 * none of them knows about TLS), and encrypts what the protocol writes. The
 * TLS session itself (tls_engine.c) works on memory only — ciphertext in,
 * plaintext out and back — so a test or a fuzzer drives it without a
 * socket. Contexts (tls_context.c) hold certificates, keys, trust and
 * settings; ticket keys (tls_tickets.c) come from the master, so a session
 * one worker made resumes on any other.
 */
#ifndef LC_TLS_H
#define LC_TLS_H

#include "core.h"
#include "tcp.h"

typedef struct lc__tls_ctx lc__tls_ctx;
typedef struct lc__tls_session lc__tls_session; /* an SSL_SESSION */

/* Defaults */
#define LC__TLS_HANDSHAKE_TIMEOUT_MS 10000 /* a handshake that takes longer is closed */
#define LC__TLS_SESSION_TIMEOUT_S 300      /* a session (ticket) resumes this long */
#define LC__TLS_TICKET_ROTATE_S (12 * 3600) /* a new ticket key this often */

/* Errors (negative, beside UV_E* codes). A certificate check that failed
 * carries OpenSSL's verify code (X509_V_ERR_*), a failure the TLS library
 * reported its reason code (SSL_R_*): lc__tls_strerror() says it in words,
 * lc__tls_err_name() as Node's code. */
#define LC__TLS_EVERIFY(v) (-41000 - (v)) /* 0 < v < 1000 */
#define LC__TLS_EFAILED (-42000)          /* a handshake failed, no reason known */
#define LC__TLS_ENOTTLS (-42001)          /* the peer does not speak TLS */
#define LC__TLS_ESSL(r) (-43000 - (r))    /* 0 < r < 4096 */
int lc__tls_is_error(int err);
/* "certificate has expired", "wrong version number", ... */
const char *lc__tls_strerror(int err, char *buf, size_t size);
/* Node's codes: "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT",
 * "ERR_TLS_CERT_ALTNAME_INVALID", "ERR_SSL_WRONG_VERSION_NUMBER", ... */
const char *lc__tls_err_name(int err, char *buf, size_t size);

/* Contexts ------------------------------------------------------------------- */

/* Protocol versions (OpenSSL's numbers). */
#define LC__TLS1_2 0x0303
#define LC__TLS1_3 0x0304

/* What a context is made of. PEM strings are taken as they are (not
 * paths). Fields a role does not use are ignored. */
typedef struct lc__tls_options {
  const char *key;     /* server (or client certificate): PEM private key */
  size_t key_len;
  const char *cert;    /* PEM: the certificate, then its chain */
  size_t cert_len;
  const char *passphrase; /* for an encrypted key, or NULL */
  const char *ca;      /* PEM CAs: a client trusts these instead of the
                          system's; a server checks client certificates
                          against them */
  size_t ca_len;
  const char *ciphers;      /* TLS 1.2 cipher list; NULL: OpenSSL's */
  const char *ciphersuites; /* TLS 1.3 suites; NULL: OpenSSL's */
  int min_version;     /* LC__TLS1_2 (the default) or LC__TLS1_3 */
  int max_version;     /* 0: the highest there is */
  const char *alpn;    /* protocols in ALPN's wire format (length-prefixed) */
  size_t alpn_len;
  int verify;          /* client: check the server's certificate (default
                          on in every binding); server: ask for a client's */
  int require_cert;    /* server with verify: refuse a client without one */
  uint64_t handshake_timeout_ms; /* 0: LC__TLS_HANDSHAKE_TIMEOUT_MS */
  uint64_t session_timeout_s;    /* server; 0: LC__TLS_SESSION_TIMEOUT_S */
} lc__tls_options;

void lc__tls_options_init(lc__tls_options *o);

/*
 * A new context (one reference). A server context needs key and cert. A
 * client context trusts the system's CAs (ca-certificates, through
 * OpenSSL's default paths) unless ca is given. Returns 0, or an error
 * with its reason in err ("no private key", "the key does not match the
 * certificate", "bad PEM in ca", ...).
 */
int lc__tls_ctx_new(lc__core *core, int server, const lc__tls_options *o,
                    char *err, size_t errlen, lc__tls_ctx **out);
void lc__tls_ctx_ref(lc__tls_ctx *ctx);
void lc__tls_ctx_unref(lc__tls_ctx *ctx);
int lc__tls_ctx_is_server(const lc__tls_ctx *ctx);
/* SNI: a client asking for name (exact, or "*.example.com" for one more
 * label) gets child's certificate and settings. 0 or UV_ENOMEM. */
int lc__tls_ctx_add_name(lc__tls_ctx *ctx, const char *name,
                         lc__tls_ctx *child);
/* SNI beyond the names: asked with the name a client sent when no added
 * name matches; returns a context (a reference the caller keeps alive
 * while connections may use it) or NULL for ctx itself. Called during a
 * handshake, from the loop. */
typedef lc__tls_ctx *(*lc__tls_sni_fn)(void *arg, const char *name);
void lc__tls_ctx_set_sni(lc__tls_ctx *ctx, lc__tls_sni_fn fn, void *arg);

/* Connections -------------------------------------------------------------- */

/* Every connection of server s is TLS with ctx (s takes a reference). */
void lc__tls_server_use(lc__server *s, lc__tls_ctx *ctx);
/* The server's context (a reference it keeps), or NULL. */
lc__tls_ctx *lc__tls_server_ctx(lc__server *s);

/* How a client connection starts TLS. */
typedef struct lc__tls_client_options {
  const char *servername;   /* SNI, and the name the certificate must
                               match (an IP address is matched as one);
                               NULL: no SNI, no name check */
  lc__tls_session *session; /* to resume, or NULL (then the context's
                               cache of this host's last session) */
  uint64_t handshake_timeout_ms; /* 0: the context's */
} lc__tls_client_options;

/*
 * Makes c (connecting, or open: a cosocket's sslhandshake) a TLS client
 * connection: the handshake starts once it is connected, and its protocol
 * hears on_open when the handshake is done, or on_error (an LC__TLS_E*
 * code, UV_ETIMEDOUT, ...) then on_close. Writes made before are sent
 * after the handshake. 0 or UV_ENOMEM (c is untouched).
 */
int lc__tls_client_start(lc__conn *c, lc__tls_ctx *ctx,
                         const lc__tls_client_options *o);
/* Whether c is a TLS connection. */
int lc__tls_conn_is_tls(const lc__conn *c);

/* What a TLS connection settled on (strings are valid while it is open). */
typedef struct lc__tls_info {
  const char *protocol;   /* "TLSv1.3" */
  const char *cipher;     /* "TLS_AES_256_GCM_SHA384" */
  const char *alpn;       /* "http/1.1", or NULL */
  size_t alpn_len;
  const char *servername; /* the SNI name (sent, or received), or NULL */
  int reused;             /* resumed a session (no full handshake) */
  int verify_result;      /* X509_V_OK (0) or why the peer's certificate
                             did not check out */
  int has_peer_cert;
} lc__tls_info;
int lc__tls_conn_info(const lc__conn *c, lc__tls_info *info);
/* The peer certificate's subject and issuer lines, names (DNS:..., IP
 * Address:...), validity dates and SHA-256 fingerprint, into a callback. */
typedef void (*lc__tls_field_fn)(void *arg, const char *name,
                                 const char *value);
int lc__tls_conn_peer_cert(const lc__conn *c, lc__tls_field_fn fn, void *arg);
/* The session to resume later (one reference), or NULL. */
lc__tls_session *lc__tls_conn_session(const lc__conn *c);
void lc__tls_session_free(lc__tls_session *s);

/* Handshakes this process made, as a server and as a client. */
typedef struct lc__tls_stats {
  uint64_t handshakes; /* finished */
  uint64_t resumed;    /* of which resumed a session */
  uint64_t failed;     /* failed, timed out or cut short */
  uint64_t not_tls;    /* a server's peers that did not speak TLS */
} lc__tls_stats;
void lc__tls_stats_get(lc__core *core, lc__tls_stats *out);

/* Session ticket keys (tls_tickets.c) ----------------------------------------- */

/*
 * Session tickets are encrypted with keys this process's master made (or
 * the process itself, when it has no master): a new one every
 * LC__TLS_TICKET_ROTATE_S seconds (LUACLUSTER_TLS_TICKET_ROTATE sets
 * another, in seconds), the one before kept to decrypt for one more
 * period. A master sends them to a worker ahead of its answer to the
 * worker's first listen, and again at each rotation (a LC__FRAME_TLS_KEYS
 * frame), so any worker decrypts a ticket another made.
 */
#define LC__TLS_TICKET_KEYS 2
#define LC__TLS_TICKET_KEY_SIZE 80 /* name 16, AES-256 key 32, HMAC key 32 */
#define LC__TLS_KEYS_PAYLOAD (8 + LC__TLS_TICKET_KEYS * LC__TLS_TICKET_KEY_SIZE)

/* Master: the keys as a LC__FRAME_TLS_KEYS payload (made, and the rotation
 * started, on first use). 0 or an error. */
int lc__tls_tickets_payload(lc__core *core, char out[LC__TLS_KEYS_PAYLOAD]);
/* Worker: the keys from a LC__FRAME_TLS_KEYS payload. 0, or UV_EINVAL for
 * a malformed one. */
int lc__tls_tickets_receive(lc__core *core, const char *payload, size_t len);
/* How many keys this process has been given or made so far (a test's
 * view of rotation). */
uint64_t lc__tls_tickets_generation(lc__core *core);

#endif
