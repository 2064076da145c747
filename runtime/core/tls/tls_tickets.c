/*
 * tls_tickets.c - session ticket keys shared by every worker (tls.h).
 *
 * A TLS server that resumes sessions from tickets (RFC 5077; TLS 1.3's
 * PSK tickets are the same idea) encrypts the session into the ticket it
 * gives the client, with a key only the server knows. With one key per
 * worker process, a client that comes back through the master's round
 * robin lands on another worker most of the time and gets a full
 * handshake. So the keys are the master's: it makes them (here, in C: a
 * managed master runs no Lua) and hands them to each worker over its
 * channel — ahead of its answer to the worker's first listen, so before
 * any connection or listening socket reaches it — and again at each
 * rotation. A process with no master makes and rotates its own.
 *
 * Rotation: every LC__TLS_TICKET_ROTATE_S seconds (12 h;
 * LUACLUSTER_TLS_TICKET_ROTATE=<seconds> sets another) a new key encrypts
 * new tickets; the one before still decrypts for one more period (a ticket
 * it opens is replaced by one under the new key). A ticket is also bounded
 * by the session timeout (300 s by default). The keys live in memory only:
 * a new master (a binary upgrade) starts with new ones, and its clients do
 * one full handshake each.
 *
 * A key is a 16-byte name (what the ticket says it was made with), an
 * AES-256-CBC key and an HMAC-SHA256 key, all from OpenSSL's CSPRNG.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "supervisor.h"
#include "tls_int.h"

#define PAYLOAD_MAGIC 0x4c43544bu /* "LCTK" */

static uint64_t rotate_ms(void) {
  const char *env = getenv("LUACLUSTER_TLS_TICKET_ROTATE");
  double s = env != NULL ? strtod(env, NULL) : 0;

  if (s >= 0.05)
    return (uint64_t)(s * 1000);
  return (uint64_t)LC__TLS_TICKET_ROTATE_S * 1000;
}

/* A new key in front; the one before is kept to decrypt. */
static int tickets_new_key(lc__tls *tls) {
  lc__tls_ticket_key key;

  if (RAND_bytes((unsigned char *)&key, sizeof(key)) != 1)
    return UV_EIO;
  memmove(&tls->tickets.keys[1], &tls->tickets.keys[0],
          sizeof(key) * (LC__TLS_TICKET_KEYS - 1));
  tls->tickets.keys[0] = key;
  OPENSSL_cleanse(&key, sizeof(key));
  if (tls->tickets.nkeys < LC__TLS_TICKET_KEYS)
    tls->tickets.nkeys++;
  tls->tickets.generation++;
  return 0;
}

static void tickets_encode(lc__tls *tls, char out[LC__TLS_KEYS_PAYLOAD]) {
  uint32_t magic = PAYLOAD_MAGIC, n = (uint32_t)tls->tickets.nkeys;

  memset(out, 0, LC__TLS_KEYS_PAYLOAD);
  memcpy(out, &magic, 4);
  memcpy(out + 4, &n, 4);
  memcpy(out + 8, tls->tickets.keys,
         (size_t)tls->tickets.nkeys * LC__TLS_TICKET_KEY_SIZE);
}

static void on_rotate(uv_timer_t *timer) {
  lc__tls *tls = timer->data;

  if (tls->tickets.given) {
    /* A worker that made a key before its master's came: the master's
     * rotate from now. */
    uv_timer_stop(timer);
    return;
  }
  if (tickets_new_key(tls) != 0) {
    lc__log(LC__LOG_WARN, "TLS ticket keys: no randomness for a new key; "
            "keeping the current one");
    return;
  }
  lc__log(LC__LOG_DEBUG, "TLS ticket keys rotated (generation %llu)",
          (unsigned long long)tls->tickets.generation);
  if (tls->core->sup != NULL)
    lc__workers_send_ticket_keys(tls->core);
}

/* The keys of a process that makes its own (no master gave it any): made
 * once, then rotated by a timer. */
static int tickets_own(lc__tls *tls) {
  uint64_t every;
  int err;

  if (tls->tickets.given || tls->tickets.timer_init)
    return 0;
  if ((err = tickets_new_key(tls)) != 0)
    return err;
  every = rotate_ms();
  uv_timer_init(&tls->core->loop, &tls->tickets.timer);
  tls->tickets.timer.data = tls;
  tls->tickets.timer_init = 1;
  uv_timer_start(&tls->tickets.timer, on_rotate, every, every);
  uv_unref((uv_handle_t *)&tls->tickets.timer); /* keeps nobody alive */
  return 0;
}

int lc__tls_tickets_payload(lc__core *core, char out[LC__TLS_KEYS_PAYLOAD]) {
  lc__tls *tls = lc__tls_of(core);
  int err;

  if (tls == NULL)
    return UV_ENOMEM;
  if ((err = tickets_own(tls)) != 0)
    return err;
  tickets_encode(tls, out);
  return 0;
}

int lc__tls_tickets_receive(lc__core *core, const char *payload, size_t len) {
  lc__tls *tls = lc__tls_of(core);
  uint32_t magic, n;

  if (tls == NULL)
    return UV_ENOMEM;
  if (len != LC__TLS_KEYS_PAYLOAD)
    return UV_EINVAL;
  memcpy(&magic, payload, 4);
  memcpy(&n, payload + 4, 4);
  if (magic != PAYLOAD_MAGIC || n < 1 || n > LC__TLS_TICKET_KEYS)
    return UV_EINVAL;
  memcpy(tls->tickets.keys, payload + 8, (size_t)n * LC__TLS_TICKET_KEY_SIZE);
  tls->tickets.nkeys = (int)n;
  tls->tickets.given = 1;
  tls->tickets.generation++;
  return 0;
}

uint64_t lc__tls_tickets_generation(lc__core *core) {
  return core->tls != NULL ? core->tls->tickets.generation : 0;
}

/* OpenSSL's ticket callback ------------------------------------------------------ */

static int mac_init(EVP_MAC_CTX *mac, const lc__tls_ticket_key *k) {
  OSSL_PARAM params[2];

  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                               (char *)"SHA256", 0);
  params[1] = OSSL_PARAM_construct_end();
  return EVP_MAC_init(mac, k->hmac, sizeof(k->hmac), params);
}

/*
 * enc 1: a new ticket under the current key (name, IV, cipher, MAC), 1.
 * enc 0: the key a ticket names: 1 (current), 2 (the one before, or any in
 * TLS 1.3: the client gets a new ticket), 0 (unknown: a full handshake), -1
 * on error.
 */
int lc__tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
                      EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc) {
  lc__tls_engine *e = SSL_get_app_data(ssl);
  lc__tls *tls = e != NULL ? lc__tls_of(e->core) : NULL;
  const lc__tls_ticket_key *k;
  int i;

  if (tls == NULL)
    return -1;
  if (enc) {
    /* A worker has its master's keys before its first connection; a
     * process with no master makes its own. */
    if (tickets_own(tls) != 0 || tls->tickets.nkeys == 0)
      return -1;
    k = &tls->tickets.keys[0];
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
      return -1;
    memcpy(name, k->name, sizeof(k->name));
    if (!EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k->aes, iv) ||
        !mac_init(mac, k))
      return -1;
    return 1;
  }
  for (i = 0; i < tls->tickets.nkeys; i++) {
    k = &tls->tickets.keys[i];
    if (memcmp(name, k->name, sizeof(k->name)) != 0)
      continue;
    if (!EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, k->aes, iv) ||
        !mac_init(mac, k))
      return -1;
    /* TLS 1.3 tickets are used once: the client gets a new one each time
     * (OpenSSL sends one only when told to renew). */
    return i == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
  }
  return 0;
}
