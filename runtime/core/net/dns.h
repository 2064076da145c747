/*
 * dns.h - name lookups on libuv's thread pool (getaddrinfo), never on the
 * loop.
 *
 * A lookup reports once through its callback, from the loop, never from
 * inside lc__dns_lookup(). It can be cancelled (then it reports nothing).
 * Lookups still in flight when the process ends are cancelled by the
 * shutdown walk: those report UV_EAI_CANCELED (while core->shutting_down).
 */
#ifndef LC_DNS_H
#define LC_DNS_H

#include "core.h"

struct addrinfo;
struct sockaddr_storage;

typedef struct lc__dns_req lc__dns_req;

/* status is 0 with res (a list, IPv4 addresses first unless family asked
 * otherwise), or a UV_EAI_* code with res NULL. res is freed after the
 * call. */
typedef void (*lc__dns_cb)(lc__dns_req *req, int status,
                           const struct addrinfo *res, void *data);

/*
 * Looks host up (family 0: any, 4 or 6). 0 and *out (a handle to cancel
 * it with), or an error (nothing will be called back).
 */
int lc__dns_lookup(lc__core *core, const char *host, int family,
                   lc__dns_cb cb, void *data, lc__dns_req **out);
/* The callback will not be called; the request goes by itself. */
void lc__dns_cancel(lc__dns_req *req);

/* An IP address in text form, as a socket address with port: 0, or
 * UV_EINVAL when host is a name that needs a lookup. */
int lc__dns_numeric(const char *host, int port, struct sockaddr_storage *ss);

/* The address to connect to from a lookup's list, with port: its first IPv4
 * address, else its first IPv6 one. 0, or UV_EAI_NODATA when it has
 * neither. */
int lc__dns_pick(const struct addrinfo *res, int port,
                 struct sockaddr_storage *ss);

/* Node's code for a lookup error: "ENOTFOUND" for a name that does not
 * exist, else libuv's name (EAI_AGAIN, ...). */
const char *lc__dns_error_code(int status);

#endif
