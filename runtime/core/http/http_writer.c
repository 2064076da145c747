/*
 * http_writer.c - HTTP/1.1 writers (http_codec.h): status lines and
 * response heads for the server, request lines and heads for the client,
 * chunk frames, the Date header. Every header name and value is checked
 * before a byte is written, so a bad one never leaves half a head.
 */
#include "http_codec.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* What a header line adds to its name and value: ": " and "\r\n". */
#define HEADER_LINE_EXTRA 4

/* Response writing --------------------------------------------------------- */

const char *lc__http_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 416:
    return "Range Not Satisfiable";
  case 417:
    return "Expectation Failed";
  case 422:
    return "Unprocessable Entity";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

static void put2(char *d, int v) {
  d[0] = (char)('0' + v / 10);
  d[1] = (char)('0' + v % 10);
}

/*
 * Formatted by hand: strftime's %a and %b follow the locale, and the header
 * must be English. Workers are single-threaded, so one static cache serves.
 */
const char *lc__http_date(void) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  static char buf[sizeof("Tue, 15 Nov 1994 08:12:31 GMT")];
  static time_t cached = (time_t)-1;
  time_t now = time(NULL);
  struct tm tm;
  int year;

  if (now == cached)
    return buf;
  if (gmtime_r(&now, &tm) == NULL)
    return buf[0] ? buf : "Thu, 01 Jan 1970 00:00:00 GMT";
  year = tm.tm_year + 1900;
  memcpy(buf, days + 3 * tm.tm_wday, 3);
  memcpy(buf + 3, ", ", 2);
  put2(buf + 5, tm.tm_mday);
  buf[7] = ' ';
  memcpy(buf + 8, months + 3 * tm.tm_mon, 3);
  buf[11] = ' ';
  put2(buf + 12, year / 100 % 100);
  put2(buf + 14, year % 100);
  buf[16] = ' ';
  put2(buf + 17, tm.tm_hour);
  buf[19] = ':';
  put2(buf + 20, tm.tm_min);
  buf[22] = ':';
  put2(buf + 23, tm.tm_sec);
  memcpy(buf + 25, " GMT", 5);
  cached = now;
  return buf;
}

/* Writes v in decimal at d; returns the digit count. */
static size_t put_dec(char *d, uint64_t v) {
  char tmp[20];
  size_t n = 0, i;

  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (i = 0; i < n; i++)
    d[i] = tmp[n - 1 - i];
  return n;
}

static size_t put_hex(char *d, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  char tmp[16];
  size_t n = 0, i;

  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v != 0);
  for (i = 0; i < n; i++)
    d[i] = tmp[n - 1 - i];
  return n;
}

static char *put(char *d, const char *s, size_t n) {
  memcpy(d, s, n);
  return d + n;
}

#define PUT_LIT(d, lit) put((d), (lit), sizeof(lit) - 1)

static int is_tchar(unsigned char c) {
  return lc__http_byte_class[c] & LC__HTTP_TCHAR;
}

static int is_token(const char *s, size_t n) {
  size_t i;

  if (n == 0)
    return 0;
  for (i = 0; i < n; i++)
    if (!is_tchar((unsigned char)s[i]))
      return 0;
  return 1;
}

/* A value must not end the header line early or smuggle a new one. */
static int is_safe_value(const char *s, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
      return 0;
  return 1;
}

/* Whether a comma-separated value lists tok (lower-case), in any case. */
static int list_has(const char *v, size_t n, const char *tok, size_t tn) {
  size_t i = 0, start, end;

  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    start = i;
    while (i < n && v[i] != ',')
      i++;
    end = i;
    while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
      end--;
    if (end - start == tn && lc__http_case_equal(v + start, tok, tn))
      return 1;
  }
  return 0;
}

/* What the app's own headers decide. */
typedef struct app_headers {
  int date, length, te, connection;
  int chunked, close;
} app_headers;

static int name_is(const lc__http_header *h, const char *lower, size_t n) {
  return h->name_len == n && lc__http_case_equal(h->name, lower, n);
}

static void app_headers_note(app_headers *app, const lc__http_header *h) {
  if (name_is(h, "date", 4)) {
    app->date = 1;
  } else if (name_is(h, "content-length", 14)) {
    app->length = 1;
  } else if (name_is(h, "transfer-encoding", 17)) {
    app->te = 1;
    app->chunked |= list_has(h->value, h->value_len, "chunked", 7);
  } else if (name_is(h, "connection", 10)) {
    app->connection = 1;
    app->close |= list_has(h->value, h->value_len, "close", 5);
  }
}

/* Checks every header before anything is written; adds up their size. */
static int scan_headers(const lc__http_header *headers, size_t n,
                        app_headers *app, size_t *size) {
  const lc__http_header *h;
  size_t i;

  memset(app, 0, sizeof(*app));
  for (i = 0; i < n; i++) {
    h = &headers[i];
    if (h->name == NULL || !is_token(h->name, h->name_len))
      return UV_EINVAL;
    if (h->value_len != 0 &&
        (h->value == NULL || !is_safe_value(h->value, h->value_len)))
      return UV_EINVAL;
    *size += h->name_len + h->value_len + HEADER_LINE_EXTRA;
    app_headers_note(app, h);
  }
  return 0;
}

static int status_allows_body(int status) {
  return status >= 200 && status != 204 && status != 304;
}

/* Decides the framing: res->chunked, res->no_body, res->keep_alive. */
static void decide_framing(lc__http_response *res, const app_headers *app) {
  int http11 = res->major > 1 || (res->major == 1 && res->minor >= 1);

  res->no_body = res->head_request || !status_allows_body(res->status);
  res->chunked = 0;
  if (app->close)
    res->keep_alive = 0;
  if (res->no_body)
    return;
  if (app->te) {
    /* Without chunked last, only closing can end the body (RFC 7230 3.3.3). */
    res->chunked = app->chunked;
    if (!app->chunked)
      res->keep_alive = 0;
  } else if (!app->length && res->content_length < 0) {
    if (http11)
      res->chunked = 1;
    else
      res->keep_alive = 0;
  }
}

/* Worst case of what the writer adds besides the app's headers. */
#define HEAD_EXTRA_MAX                                                         \
  (sizeof("HTTP/1.1 999 \r\n") + sizeof("Date: \r\n") + 29 +                   \
   sizeof("Content-Length: \r\n") + 20 +                                       \
   sizeof("Transfer-Encoding: chunked\r\n") +                                  \
   sizeof("Connection: keep-alive\r\n") + sizeof("\r\n"))

/* The headers the app left to the writer. */
static char *put_default_headers(char *d, const lc__http_response *res,
                                 const app_headers *app) {
  int http11 = res->major > 1 || (res->major == 1 && res->minor >= 1);

  if (!app->date) {
    d = PUT_LIT(d, "Date: ");
    d = put(d, lc__http_date(), 29);
    d = PUT_LIT(d, "\r\n");
  }
  /* HEAD gets the length a GET would have; 1xx, 204 and 304 get none. */
  if (!app->length && !app->te && res->content_length >= 0 &&
      status_allows_body(res->status)) {
    d = PUT_LIT(d, "Content-Length: ");
    d += put_dec(d, (uint64_t)res->content_length);
    d = PUT_LIT(d, "\r\n");
  }
  if (res->chunked && !app->te)
    d = PUT_LIT(d, "Transfer-Encoding: chunked\r\n");
  if (!app->connection) {
    if (!res->keep_alive)
      d = PUT_LIT(d, "Connection: close\r\n");
    else if (!http11)
      d = PUT_LIT(d, "Connection: keep-alive\r\n");
  }
  return d;
}

int lc__http_write_head(lc__buf *out, lc__http_response *res,
                        const lc__http_header *headers, size_t nheaders) {
  const char *reason;
  size_t reason_len, size, i;
  app_headers app;
  char *d;

  if (res->status < 100 || res->status > 999)
    return UV_EINVAL;
  reason = res->reason ? res->reason : lc__http_status_text(res->status);
  reason_len = strlen(reason);
  if (!is_safe_value(reason, reason_len))
    return UV_EINVAL;
  size = HEAD_EXTRA_MAX + reason_len;
  if (scan_headers(headers, nheaders, &app, &size) != 0)
    return UV_EINVAL;
  /* One reservation: nothing is half-written when memory runs out. */
  if (lc__buf_reserve(out, size) != 0)
    return UV_ENOMEM;
  decide_framing(res, &app);

  d = out->base + out->len;
  d = PUT_LIT(d, "HTTP/1.1 ");
  d += put_dec(d, (uint64_t)res->status);
  *d++ = ' ';
  d = put(d, reason, reason_len);
  d = PUT_LIT(d, "\r\n");
  for (i = 0; i < nheaders; i++) {
    d = put(d, headers[i].name, headers[i].name_len);
    d = PUT_LIT(d, ": ");
    if (headers[i].value_len != 0)
      d = put(d, headers[i].value, headers[i].value_len);
    d = PUT_LIT(d, "\r\n");
  }
  d = put_default_headers(d, res, &app);
  d = PUT_LIT(d, "\r\n");
  out->len = (size_t)(d - out->base);
  return 0;
}

int lc__http_write_chunk(lc__buf *out, const char *data, size_t len) {
  char *d;

  if (len == 0)
    return 0;
  if (lc__buf_reserve(out, 16 + 2 + len + 2) != 0)
    return UV_ENOMEM;
  d = out->base + out->len;
  d += put_hex(d, len);
  d = PUT_LIT(d, "\r\n");
  d = put(d, data, len);
  d = PUT_LIT(d, "\r\n");
  out->len = (size_t)(d - out->base);
  return 0;
}

int lc__http_write_last_chunk(lc__buf *out) {
  return lc__buf_append(out, "0\r\n\r\n", 5);
}

int lc__http_write_continue(lc__buf *out) {
  return lc__buf_puts(out, "HTTP/1.1 100 Continue\r\n\r\n");
}

int lc__http_write_error(lc__buf *out, int status, int head_request) {
  const char *reason;
  size_t reason_len, body_len;
  char *d;

  if (status < 100 || status > 999)
    return UV_EINVAL;
  reason = lc__http_status_text(status);
  reason_len = strlen(reason);
  body_len = 3 + 1 + reason_len + 1; /* "431 Request ... Large\n" */
  if (lc__buf_reserve(out, 160 + 2 * reason_len) != 0)
    return UV_ENOMEM;
  d = out->base + out->len;
  d = PUT_LIT(d, "HTTP/1.1 ");
  d += put_dec(d, (uint64_t)status);
  *d++ = ' ';
  d = put(d, reason, reason_len);
  d = PUT_LIT(d, "\r\nContent-Type: text/plain\r\nContent-Length: ");
  d += put_dec(d, body_len);
  d = PUT_LIT(d, "\r\nConnection: close\r\nDate: ");
  d = put(d, lc__http_date(), 29);
  d = PUT_LIT(d, "\r\n\r\n");
  if (!head_request) {
    d += put_dec(d, (uint64_t)status);
    *d++ = ' ';
    d = put(d, reason, reason_len);
    *d++ = '\n';
  }
  out->len = (size_t)(d - out->base);
  return 0;
}

/* Request writing ---------------------------------------------------------- */

/* A request target is sent as is: it must not end the line or hide a
 * second one. */
static int is_safe_path(const char *s, size_t n) {
  size_t i;

  if (n == 0)
    return 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
      return 0;
  return 1;
}

/* Methods whose empty body needs no Content-Length (Node's rule). */
static int body_optional(const char *method) {
  static const char *const list[] = {"GET", "HEAD", "DELETE", "OPTIONS",
                                     "TRACE", "CONNECT"};
  size_t i;

  for (i = 0; i < sizeof(list) / sizeof(list[0]); i++)
    if (strcmp(method, list[i]) == 0)
      return 1;
  return 0;
}

/* What the app's own request headers decide. */
typedef struct app_request_headers {
  int host, length, te, connection;
} app_request_headers;

static void note_request_header(app_request_headers *app,
                                const lc__http_header *h) {
  if (name_is(h, "host", 4))
    app->host = 1;
  else if (name_is(h, "content-length", 14))
    app->length = 1;
  else if (name_is(h, "transfer-encoding", 17))
    app->te = 1;
  else if (name_is(h, "connection", 10))
    app->connection = 1;
}

#define REQUEST_EXTRA_MAX                                                      \
  (sizeof(" HTTP/1.1\r\n") + sizeof("Host: \r\n") +                            \
   sizeof("Content-Length: \r\n") + 20 +                                       \
   sizeof("Transfer-Encoding: chunked\r\n") +                                  \
   sizeof("Connection: keep-alive\r\n") + sizeof("\r\n"))

int lc__http_write_request_head(lc__buf *out, lc__http_request_line *req,
                                const lc__http_header *headers,
                                size_t nheaders) {
  size_t method_len, size, i;
  app_request_headers app;
  app_headers ignored;
  char *d;

  method_len = req->method ? strlen(req->method) : 0;
  if (!is_token(req->method ? req->method : "", method_len) ||
      !is_safe_path(req->path, req->path_len) ||
      !is_safe_value(req->host ? req->host : "", req->host_len))
    return UV_EINVAL;
  size = REQUEST_EXTRA_MAX + method_len + req->path_len + req->host_len;
  if (scan_headers(headers, nheaders, &ignored, &size) != 0)
    return UV_EINVAL;
  memset(&app, 0, sizeof(app));
  for (i = 0; i < nheaders; i++)
    note_request_header(&app, &headers[i]);
  if (lc__buf_reserve(out, size) != 0)
    return UV_ENOMEM;
  req->chunked = !app.length && !app.te && req->content_length < 0;
  if (app.te)
    req->chunked = ignored.chunked;

  d = out->base + out->len;
  d = put(d, req->method, method_len);
  *d++ = ' ';
  d = put(d, req->path, req->path_len);
  d = PUT_LIT(d, " HTTP/1.1\r\n");
  if (!app.host && req->host_len > 0) {
    d = PUT_LIT(d, "Host: ");
    d = put(d, req->host, req->host_len);
    d = PUT_LIT(d, "\r\n");
  }
  for (i = 0; i < nheaders; i++) {
    d = put(d, headers[i].name, headers[i].name_len);
    d = PUT_LIT(d, ": ");
    if (headers[i].value_len != 0)
      d = put(d, headers[i].value, headers[i].value_len);
    d = PUT_LIT(d, "\r\n");
  }
  if (!app.length && !app.te && req->content_length >= 0 &&
      !(req->content_length == 0 && body_optional(req->method))) {
    d = PUT_LIT(d, "Content-Length: ");
    d += put_dec(d, (uint64_t)req->content_length);
    d = PUT_LIT(d, "\r\n");
  }
  if (req->chunked && !app.te)
    d = PUT_LIT(d, "Transfer-Encoding: chunked\r\n");
  if (!app.connection)
    d = req->keep_alive ? PUT_LIT(d, "Connection: keep-alive\r\n")
                        : PUT_LIT(d, "Connection: close\r\n");
  d = PUT_LIT(d, "\r\n");
  out->len = (size_t)(d - out->base);
  return 0;
}
