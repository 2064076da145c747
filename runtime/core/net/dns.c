/*
 * dns.c - name lookups on libuv's thread pool (dns.h).
 *
 * Every lookup in flight is on a list, so the shutdown walk can cancel
 * them: the part owns an idle handle that is never started, only there to
 * be found by the walk (lookups are requests, not handles).
 */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

typedef struct lc__dns {
  lc__owner owner; /* first: the idle handle's data points here */
  uv_idle_t idle;
  lc__core *core;
  lc__dns_req *reqs; /* in flight */
  int open;          /* the idle handle is not closed */
} lc__dns;

struct lc__dns_req {
  uv_getaddrinfo_t req;
  lc__dns *dns;
  lc__dns_cb cb;
  void *data;
  int cancelled;
  lc__dns_req *prev, *next;
};

static void dns_free(void *arg) {
  lc__core *core = arg;

  free(core->dns);
  core->dns = NULL;
}

static void dns_on_closed(uv_handle_t *handle) {
  ((lc__dns *)handle->data)->open = 0;
}

/* The shutdown walk: cancel what has not started (those report
 * UV_EAI_CANCELED, so their users free what they hold). */
static void dns_close(uv_handle_t *handle) {
  lc__dns *dns = handle->data;
  lc__dns_req *r;

  for (r = dns->reqs; r != NULL; r = r->next)
    uv_cancel((uv_req_t *)&r->req);
  uv_close(handle, dns_on_closed);
}

static lc__dns *dns_of(lc__core *core) {
  lc__dns *dns = core->dns;

  if (dns != NULL)
    return dns;
  dns = calloc(1, sizeof(*dns));
  if (dns == NULL || lc__core_on_close(core, dns_free, core) != 0) {
    free(dns);
    return NULL;
  }
  dns->owner.close = dns_close;
  dns->core = core;
  uv_idle_init(&core->loop, &dns->idle);
  uv_unref((uv_handle_t *)&dns->idle);
  dns->idle.data = dns;
  dns->open = 1;
  core->dns = dns;
  return dns;
}

static void unlink_req(lc__dns_req *r) {
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    r->dns->reqs = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  lc__dns_req *r = req->data;

  unlink_req(r);
  if (!r->cancelled)
    r->cb(r, status, status == 0 ? res : NULL, r->data);
  uv_freeaddrinfo(res);
  free(r);
}

int lc__dns_lookup(lc__core *core, const char *host, int family,
                   lc__dns_cb cb, void *data, lc__dns_req **out) {
  lc__dns *dns = dns_of(core);
  struct addrinfo hints;
  lc__dns_req *r;
  int err;

  *out = NULL;
  if (dns == NULL || !dns->open)
    return UV_ENOMEM;
  if (host == NULL || host[0] == '\0')
    return UV_EINVAL;
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return UV_ENOMEM;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  r->dns = dns;
  r->cb = cb;
  r->data = data;
  r->req.data = r;
  err = uv_getaddrinfo(&core->loop, &r->req, on_resolved, host, NULL, &hints);
  if (err) {
    free(r);
    return err;
  }
  r->next = dns->reqs;
  if (dns->reqs != NULL)
    dns->reqs->prev = r;
  dns->reqs = r;
  *out = r;
  return 0;
}

void lc__dns_cancel(lc__dns_req *r) {
  if (r == NULL || r->cancelled)
    return;
  r->cancelled = 1;
  /* Fails once the lookup runs: its result is then dropped. */
  uv_cancel((uv_req_t *)&r->req);
}

int lc__dns_numeric(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (host == NULL)
    return UV_EINVAL;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return UV_EINVAL;
}

const char *lc__dns_error_code(int status) {
  if (status == UV_EAI_NONAME || status == UV_EAI_NODATA)
    return "ENOTFOUND";
  return uv_err_name(status);
}

int lc__dns_pick(const struct addrinfo *res, int port,
                 struct sockaddr_storage *ss) {
  const struct addrinfo *ai, *pick = NULL;

  for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET)
      pick = ai;
  for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET6)
      pick = ai;
  if (pick == NULL)
    return UV_EAI_NODATA;
  memset(ss, 0, sizeof(*ss));
  memcpy(ss, pick->ai_addr, pick->ai_addrlen);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  return 0;
}
