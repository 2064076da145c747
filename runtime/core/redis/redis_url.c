/* redis_url.c - Redis URLs (see redis_url.h). */
#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "redis_url.h"

#define FORM "a Redis URL looks like redis://[user:password@]host[:port][/db]"

/* Copies s[0, len) to out (size 256), %XX decoded; -1 when it does not fit
 * or an escape is broken. */
static int copy_decoded(char out[256], const char *s, size_t len) {
  size_t i, k = 0;

  for (i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi, lo;
      if (i + 2 >= len)
        return -1;
      hi = lc__hex_value((unsigned char)s[i + 1]);
      lo = lc__hex_value((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (k + 1 >= 256)
      return -1;
    out[k++] = (char)c;
  }
  out[k] = '\0';
  return 0;
}

/* A decimal number from s[0, len) within [lo, hi]; -1 otherwise. */
static long number(const char *s, size_t len, long lo, long hi) {
  long v = 0;
  size_t i;

  if (len == 0 || len > 9)
    return -1;
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v >= lo && v <= hi ? v : -1;
}

static int fail(char *why, size_t n, const char *what, const char *url) {
  snprintf(why, n, "%s, got \"%.200s\"%s%s", FORM, url, what ? ": " : "",
           what ? what : "");
  return -1;
}

/* user:password@ (the part before '@'). */
static int parse_auth(const char *s, size_t len, lc__redis_url *out) {
  const char *colon = memchr(s, ':', len);

  if (colon == NULL)
    return -1; /* a user needs a password */
  if (copy_decoded(out->username, s, (size_t)(colon - s)) != 0 ||
      copy_decoded(out->password, colon + 1, len - (size_t)(colon - s) - 1) != 0)
    return -1;
  out->has_password = 1;
  return 0;
}

/* host[:port], host an IPv6 address in brackets or a name/IPv4 address. */
static const char *parse_host(const char *s, size_t len, lc__redis_url *out) {
  const char *port = NULL, *end = s + len;
  size_t hlen;
  long p;

  if (len > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', len);
    if (close == NULL)
      return "an IPv6 address needs its ]";
    hlen = (size_t)(close - s - 1);
    if (close + 1 < end) {
      if (close[1] != ':')
        return "bad characters after the address";
      port = close + 2;
    }
    s++;
  } else {
    const char *colon = memchr(s, ':', len);
    hlen = colon ? (size_t)(colon - s) : len;
    if (colon)
      port = colon + 1;
  }
  if (hlen == 0 || hlen > 255)
    return "no host";
  memcpy(out->host, s, hlen);
  out->host[hlen] = '\0';
  if (strspn(out->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789.-_:") != hlen)
    return "the host has characters a host name does not";
  if (port != NULL) {
    if ((p = number(port, (size_t)(end - port), 1, 65535)) < 0)
      return "the port is a number from 1 to 65535";
    out->port = (int)p;
  }
  return NULL;
}

int lc__redis_url_parse(const char *url, lc__redis_url *out, char *why,
                        size_t n) {
  const char *p, *at, *slash, *end, *err;
  long db;

  memset(out, 0, sizeof(*out));
  out->port = 6379;
  if (url == NULL)
    return fail(why, n, NULL, "");
  if (strncmp(url, "rediss://", 9) == 0)
    return fail(why, n, "rediss:// (TLS) is not supported", url);
  if (strncmp(url, "redis://", 8) != 0)
    return fail(why, n, NULL, url);
  p = url + 8;
  end = p + strlen(p);
  slash = strchr(p, '/');
  if (slash == NULL)
    slash = end;
  at = memchr(p, '@', (size_t)(slash - p));
  if (at != NULL) {
    if (parse_auth(p, (size_t)(at - p), out) != 0)
      return fail(why, n, "the part before @ is user:password (each at most "
                  "255 bytes, %XX escapes allowed)", url);
    p = at + 1;
  }
  if ((err = parse_host(p, (size_t)(slash - p), out)) != NULL)
    return fail(why, n, err, url);
  if (slash < end && slash + 1 < end) {
    if ((db = number(slash + 1, (size_t)(end - slash - 1), 0, 100000)) < 0)
      return fail(why, n, "the path is a database number", url);
    out->db = (int)db;
  }
  return 0;
}
