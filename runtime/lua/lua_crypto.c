/*
 * lua_crypto.c - the "luacluster.crypto" module: hashes, HMACs, random bytes
 * and constant-time comparison on OpenSSL 3's libcrypto, with Node's names.
 * lua/crypto.lua publishes it as require("crypto").
 *
 * createHash/createHmac return a digest object, a userdata holding an
 * EVP_MD_CTX (hash) or an EVP_MAC_CTX (HMAC). update() feeds it and returns
 * it, so calls chain; digest() finishes it and frees the context at once —
 * a finished object holds no OpenSSL memory, and a second digest() or a
 * later update() is an error ("Digest already called", as Node). __gc frees
 * a context that was never finished. Both pointers are set to NULL when
 * freed, so each is freed exactly once.
 *
 * Algorithms are looked up by OpenSSL's names and aliases, case-insensitive
 * ("sha256", "SHA256", "sha512", "md5", "sha3-256", "RSA-SHA256"...), as
 * Node does; an unknown one is an argument error that names it.
 */
#include <string.h>
#include <lauxlib.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lua_encoding.h"

#define DIGEST_MT "luacluster.crypto.Digest"

/* randomBytes' upper bound: 1 GiB in one string is already far past any
 * sane use (keys, ids, salts, nonces). */
#define RANDOM_MAX (1 << 30)

typedef struct {
  EVP_MD_CTX *md;   /* a hash being computed, or NULL */
  EVP_MAC_CTX *mac; /* an HMAC being computed, or NULL */
  const EVP_MD *type;
  int hmac;
} lc__digest;

/* Raises a Lua error with OpenSSL's reason for the last failure. */
static int openssl_error(lua_State *L, const char *what) {
  char reason[256];
  unsigned long e = ERR_get_error();

  if (e != 0)
    ERR_error_string_n(e, reason, sizeof(reason));
  else
    strcpy(reason, "unknown error");
  ERR_clear_error();
  return luaL_error(L, "%s: %s", what, reason);
}

/* An argument error: the algorithm named by argument idx is unknown to
 * OpenSSL, or known but not runnable (md4 needs the legacy provider). */
static int unsupported(lua_State *L, int idx) {
  ERR_clear_error();
  return luaL_argerror(L, idx, lua_pushfstring(L,
      "digest method not supported: '%s'", lua_tostring(L, idx)));
}

/* The digest algorithm named by argument idx. */
static const EVP_MD *check_algorithm(lua_State *L, int idx) {
  size_t len;
  const char *name = lc__check_bytes(L, idx, &len);
  const EVP_MD *md = strlen(name) == len ? EVP_get_digestbyname(name) : NULL;

  if (md == NULL)
    unsupported(L, idx);
  return md;
}

static lc__digest *check_digest(lua_State *L) {
  lc__digest *d = luaL_checkudata(L, 1, DIGEST_MT);

  if (d->md == NULL && d->mac == NULL)
    luaL_error(L, "Digest already called");
  return d;
}

static lc__digest *new_digest(lua_State *L, const EVP_MD *type, int hmac) {
  lc__digest *d = lua_newuserdata(L, sizeof(*d));

  d->md = NULL;
  d->mac = NULL;
  d->type = type;
  d->hmac = hmac;
  luaL_getmetatable(L, DIGEST_MT);
  lua_setmetatable(L, -2);
  return d;
}

static void free_contexts(lc__digest *d) {
  EVP_MD_CTX_free(d->md);
  d->md = NULL;
  EVP_MAC_CTX_free(d->mac);
  d->mac = NULL;
}

/* Starts d->mac as an HMAC over d->type keyed with key[0..n); returns 0,
 * -1 when OpenSSL has no memory, -2 when it refuses the digest. */
static int start_hmac(lc__digest *d, const char *key, size_t n) {
  OSSL_PARAM params[2];
  EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);

  d->mac = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
  EVP_MAC_free(hmac); /* the context keeps its own reference */
  if (d->mac == NULL)
    return -1;
  params[0] = OSSL_PARAM_construct_utf8_string(
      OSSL_MAC_PARAM_DIGEST, (char *)EVP_MD_get0_name(d->type), 0);
  params[1] = OSSL_PARAM_construct_end();
  /* key is never NULL (an empty Lua string is ""), which OpenSSL takes as
   * an empty key rather than "keep the previous one". */
  return EVP_MAC_init(d->mac, (const unsigned char *)key, n, params) ? 0 : -2;
}

/* crypto.createHash(algorithm) -> Hash */
static int create_hash(lua_State *L) {
  const EVP_MD *type = check_algorithm(L, 1);
  lc__digest *d = new_digest(L, type, 0);

  d->md = EVP_MD_CTX_new();
  if (d->md == NULL)
    return openssl_error(L, "createHash");
  if (!EVP_DigestInit_ex(d->md, type, NULL))
    return unsupported(L, 1);
  return 1;
}

/* crypto.createHmac(algorithm, key) -> Hmac */
static int create_hmac(lua_State *L) {
  const EVP_MD *type = check_algorithm(L, 1);
  size_t n;
  const char *key = lc__check_bytes(L, 2, &n);
  lc__digest *d = new_digest(L, type, 1);

  switch (start_hmac(d, key, n)) {
  case -1:
    return openssl_error(L, "createHmac");
  case -2:
    return unsupported(L, 1);
  }
  return 1;
}

/* digest:update(data[, inputEncoding]) -> digest */
static int digest_update(lua_State *L) {
  lc__digest *d = check_digest(L);
  size_t n;
  const char *data = lc__check_bytes(L, 2, &n);
  lc__encoding enc = lc__check_encoding(L, 3, 1);
  int ok;

  if (enc != LC__ENC_BINARY) {
    if (lc__push_decoded(L, data, n, enc) != 0)
      return luaL_argerror(L, 2, lua_tostring(L, -1));
    data = lua_tolstring(L, -1, &n);
  }
  if (d->md != NULL)
    ok = EVP_DigestUpdate(d->md, data, n);
  else
    ok = EVP_MAC_update(d->mac, (const unsigned char *)data, n);
  if (!ok)
    return openssl_error(L, "update");
  lua_settop(L, 1);
  return 1;
}

/* digest:digest([encoding]) -> the digest (raw bytes, hex, base64...) */
static int digest_digest(lua_State *L) {
  lc__digest *d = check_digest(L);
  lc__encoding enc = lc__check_encoding(L, 2, 0);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  size_t maclen = 0;
  int ok;

  if (d->md != NULL) {
    ok = EVP_DigestFinal_ex(d->md, out, &len);
  } else {
    ok = EVP_MAC_final(d->mac, out, &maclen, sizeof(out));
    len = (unsigned int)maclen;
  }
  free_contexts(d);
  if (!ok)
    return openssl_error(L, "digest");
  lc__push_encoded(L, out, len, enc);
  return 1;
}

/* digest:copy() -> an independent digest in the same state (Node's
 * hash.copy()) */
static int digest_copy(lua_State *L) {
  lc__digest *d = check_digest(L);
  lc__digest *c = new_digest(L, d->type, d->hmac);

  if (d->md != NULL) {
    c->md = EVP_MD_CTX_new();
    if (c->md == NULL || !EVP_MD_CTX_copy_ex(c->md, d->md))
      return openssl_error(L, "copy");
  } else {
    c->mac = EVP_MAC_CTX_dup(d->mac);
    if (c->mac == NULL)
      return openssl_error(L, "copy");
  }
  return 1;
}

static int digest_gc(lua_State *L) {
  free_contexts(luaL_checkudata(L, 1, DIGEST_MT));
  return 0;
}

static int digest_tostring(lua_State *L) {
  lc__digest *d = luaL_checkudata(L, 1, DIGEST_MT);

  lua_pushfstring(L, "%s (%s)%s", d->hmac ? "Hmac" : "Hash",
                  EVP_MD_get0_name(d->type),
                  d->md == NULL && d->mac == NULL ? ", digested" : "");
  return 1;
}

/* crypto.hash(algorithm, data[, encoding]) -> the digest, hex by default
 * (Node 21's one-shot crypto.hash). */
static int hash_once(lua_State *L) {
  const EVP_MD *type = check_algorithm(L, 1);
  size_t n;
  const char *data = lc__check_bytes(L, 2, &n);
  lc__encoding enc =
      lua_isnoneornil(L, 3) ? LC__ENC_HEX : lc__check_encoding(L, 3, 0);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;

  if (!EVP_Digest(data, n, out, &len, type, NULL))
    return unsupported(L, 1);
  lc__push_encoded(L, out, len, enc);
  return 1;
}

/* crypto.randomBytes(size) -> size bytes from OpenSSL's CSPRNG */
static int random_bytes(lua_State *L) {
  lua_Number size;
  unsigned char *buf;

  if (lua_type(L, 1) != LUA_TNUMBER)
    return luaL_typerror(L, 1, "number");
  size = lua_tonumber(L, 1);
  if (!(size >= 0 && size <= RANDOM_MAX) || size != (lua_Number)(int)size)
    return luaL_argerror(L, 1, lua_pushfstring(L,
        "size must be an integer from 0 to %d", RANDOM_MAX));
  buf = lua_newuserdata(L, size > 0 ? (size_t)size : 1);
  if (size > 0 && RAND_bytes(buf, (int)size) != 1)
    return openssl_error(L, "randomBytes");
  lua_pushlstring(L, (const char *)buf, (size_t)size);
  return 1;
}

/* crypto.randomUUID() -> an RFC 4122 version 4 UUID, lower-case */
static int random_uuid(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  unsigned char b[16];
  char out[36];
  int i, o = 0;

  if (RAND_bytes(b, sizeof(b)) != 1)
    return openssl_error(L, "randomUUID");
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx */
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = digits[b[i] >> 4];
    out[o++] = digits[b[i] & 15];
  }
  lua_pushlstring(L, out, sizeof(out));
  return 1;
}

/* crypto.timingSafeEqual(a, b) -> boolean, in time that depends only on
 * the length; strings of different lengths are an error, as in Node. */
static int timing_safe_equal(lua_State *L) {
  size_t na, nb;
  const char *a = lc__check_bytes(L, 1, &na);
  const char *b = lc__check_bytes(L, 2, &nb);

  if (na != nb)
    return luaL_error(L, "Input buffers must have the same byte length");
  lua_pushboolean(L, CRYPTO_memcmp(a, b, na) == 0);
  return 1;
}

int lc__open_crypto(lua_State *L) {
  static const luaL_Reg methods[] = {{"update", digest_update},
                                     {"digest", digest_digest},
                                     {"copy", digest_copy},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"createHash", create_hash},
                                 {"createHmac", create_hmac},
                                 {"hash", hash_once},
                                 {"randomBytes", random_bytes},
                                 {"randomUUID", random_uuid},
                                 {"timingSafeEqual", timing_safe_equal},
                                 {NULL, NULL}};

  if (luaL_newmetatable(L, DIGEST_MT)) {
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, digest_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, digest_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  lc__encoding_register(L);
  return 1;
}
