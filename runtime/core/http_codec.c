/* http_codec.c - HTTP/1.1 request reader over http-parser, response writer. */
#include "http_codec.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* Where in a request the reader is (r->state). */
enum {
  ST_IDLE,  /* before the first byte of a request */
  ST_URL,   /* request line */
  ST_FIELD, /* inside a header name */
  ST_VALUE, /* inside a header value */
  ST_BODY,  /* head delivered; body and trailers */
  ST_CLOSED /* after an upgrade or a last request: the rest is ignored */
};

/* The head size counts what the request line and header lines add to the
 * stored bytes: "GET" + " " + url + " HTTP/1.1\r\n", and ": " + "\r\n". */
#define REQUEST_LINE_EXTRA 12
#define HEADER_LINE_EXTRA 4

/*
 * While reading, a field's name and value hold offsets into r->head rather
 * than pointers, because the buffer may move when it grows; the offsets
 * become pointers just before on_head.
 */
#define OFF_TO_FIELD(off) ((const char *)(uintptr_t)(off))
#define FIELD_TO_OFF(p) ((size_t)(uintptr_t)(p))

void lc__http_limits_init(lc__http_limits *limits) {
  limits->max_header_size = 16384;
  limits->max_url_size = 8192;
  limits->max_headers = 100;
  limits->max_body_size = 1048576;
}

/* Request reading ---------------------------------------------------------- */

/* Marks the reader dead; returned by a parser callback, it stops the parser. */
static int reader_fail(lc__http_reader *r, int status, const char *reason) {
  r->status = status;
  r->reason = reason;
  return -1;
}

/* Called when an app callback asked to stop after it. */
static void reader_pause(lc__http_reader *r) {
  r->paused = 1;
  http_parser_pause(&r->parser, 1);
}

static int reader_count_head(lc__http_reader *r, size_t n) {
  r->head_bytes += n;
  if (r->head_bytes > r->limits->max_header_size)
    return reader_fail(r, 431, "header block too large");
  return 0;
}

/* Appends header-name bytes lower-cased, so the app compares them as is. */
static int head_append_lower(lc__buf *b, const char *p, size_t n) {
  char *d;
  size_t i;

  if (n == 0)
    return 0;
  if (lc__buf_reserve(b, n) != 0)
    return UV_ENOMEM;
  d = b->base + b->len;
  for (i = 0; i < n; i++)
    d[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] | 0x20) : p[i];
  b->len += n;
  return 0;
}

/* Starts a new header; the fields array is reused from request to request. */
static int reader_add_field(lc__http_reader *r) {
  lc__http_header *f;
  size_t cap;

  if (r->nfields >= r->limits->max_headers)
    return reader_fail(r, 431, "too many headers");
  if (r->nfields == r->cap_fields) {
    cap = r->cap_fields ? r->cap_fields * 2 : 16;
    f = realloc(r->fields, cap * sizeof(*f));
    if (f == NULL)
      return reader_fail(r, 503, "out of memory");
    r->fields = f;
    r->cap_fields = cap;
  }
  f = &r->fields[r->nfields++];
  f->name = f->value = OFF_TO_FIELD(r->head.len);
  f->name_len = f->value_len = 0;
  r->state = ST_FIELD;
  return reader_count_head(r, HEADER_LINE_EXTRA);
}

static int on_message_begin(http_parser *p) {
  lc__http_reader *r = p->data;

  /* Nothing after an upgrade or a "close" request is read (RFC 7230 6.6). */
  if (r->state == ST_CLOSED)
    return -1;
  r->state = ST_URL;
  lc__buf_reset(&r->head);
  r->nfields = 0;
  r->head_bytes = 0;
  r->body_bytes = 0;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  lc__http_reader *r = p->data;

  /* The method is known by the first url byte; count it once. */
  if (r->head_bytes == 0)
    r->head_bytes = strlen(http_method_str(p->method)) + REQUEST_LINE_EXTRA;
  if (r->head.len + len > r->limits->max_url_size)
    return reader_fail(r, 414, "url too long");
  if (reader_count_head(r, len) != 0)
    return -1;
  if (lc__buf_append(&r->head, at, len) != 0)
    return reader_fail(r, 503, "out of memory");
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  lc__http_reader *r = p->data;

  /* Trailers are counted against the limit but not kept. */
  if (r->state == ST_BODY)
    return reader_count_head(r, len);
  /* Repeated calls continue one name when the data arrived split. */
  if (r->state != ST_FIELD && reader_add_field(r) != 0)
    return -1;
  if (reader_count_head(r, len) != 0)
    return -1;
  if (head_append_lower(&r->head, at, len) != 0)
    return reader_fail(r, 503, "out of memory");
  r->fields[r->nfields - 1].name_len += len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  lc__http_reader *r = p->data;
  lc__http_header *f;

  if (r->state == ST_BODY)
    return reader_count_head(r, len);
  if (r->nfields == 0)
    return reader_fail(r, 400, "header value without a name");
  f = &r->fields[r->nfields - 1];
  if (r->state != ST_VALUE) {
    f->value = OFF_TO_FIELD(r->head.len);
    r->state = ST_VALUE;
  }
  if (reader_count_head(r, len) != 0)
    return -1;
  if (lc__buf_append(&r->head, at, len) != 0)
    return reader_fail(r, 503, "out of memory");
  f->value_len += len;
  return 0;
}

static int ascii_case_equal(const char *a, const char *lower, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if ((a[i] >= 'A' && a[i] <= 'Z' ? a[i] | 0x20 : a[i]) != lower[i])
      return 0;
  return 1;
}

/* Names are lower-cased already; the value is matched in any case. */
static int expects_continue(const lc__http_header *fields, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (fields[i].name_len == 6 && memcmp(fields[i].name, "expect", 6) == 0 &&
        fields[i].value_len == 12 &&
        ascii_case_equal(fields[i].value, "100-continue", 12))
      return 1;
  return 0;
}

/* Turns the stored offsets into pointers and hands the head to the app. */
static int reader_deliver_head(lc__http_reader *r) {
  http_parser *p = &r->parser;
  const char *base = r->head.base ? r->head.base : "";
  lc__http_header *f;
  lc__http_head h;
  size_t i;

  h.url_len = r->nfields ? FIELD_TO_OFF(r->fields[0].name) : r->head.len;
  for (i = 0; i < r->nfields; i++) {
    f = &r->fields[i];
    f->name = base + FIELD_TO_OFF(f->name);
    f->value = base + FIELD_TO_OFF(f->value);
    /* http-parser drops leading whitespace, keeps trailing (RFC 7230 3.2). */
    while (f->value_len > 0 && (f->value[f->value_len - 1] == ' ' ||
                                f->value[f->value_len - 1] == '\t'))
      f->value_len--;
  }
  h.method = http_method_str(p->method);
  h.url = base;
  h.major = p->http_major;
  h.minor = p->http_minor;
  h.upgrade = p->upgrade;
  h.keep_alive = !p->upgrade && http_should_keep_alive(p);
  h.expect_continue = expects_continue(r->fields, r->nfields);
  h.headers = r->fields;
  h.nheaders = r->nfields;
  return r->cb->on_head(r->arg, &h);
}

/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; no request has
 * two (which one would a proxy in front have routed by?). */
static int reader_check_host(lc__http_reader *r) {
  const char *base = r->head.base ? r->head.base : "";
  size_t i, n = 0;

  for (i = 0; i < r->nfields; i++)
    n += r->fields[i].name_len == 4 &&
         memcmp(base + FIELD_TO_OFF(r->fields[i].name), "host", 4) == 0;
  if (n > 1)
    return reader_fail(r, 400, "more than one Host header");
  if (n == 0 && r->parser.http_major == 1 && r->parser.http_minor == 1)
    return reader_fail(r, 400, "HTTP/1.1 request without a Host header");
  return 0;
}

static int on_headers_complete(http_parser *p) {
  lc__http_reader *r = p->data;
  uint64_t max = r->limits->max_body_size;
  int chunked = (p->flags & F_CHUNKED) != 0;

  lc__http_framing_body(&r->framing, chunked,
                        (p->flags & F_CONTENTLENGTH) ? p->content_length : 0);
  if (reader_check_host(r) != 0)
    return -1;
  /* Refuse a declared oversize body before any of it is delivered. */
  if (max != 0 && (p->flags & F_CONTENTLENGTH) && !chunked &&
      p->content_length > max)
    return reader_fail(r, 413, "body too large");
  r->state = ST_BODY;
  /* 0 here, never 1: 1 would tell http-parser to skip the body. */
  if (reader_deliver_head(r) == 1)
    reader_pause(r);
  return 0;
}

/* A chunk's size is known at its header: refuse it before its data. */
static int on_chunk_header(http_parser *p) {
  lc__http_reader *r = p->data;
  uint64_t max = r->limits->max_body_size;

  if (max != 0 && p->content_length > max - r->body_bytes)
    return reader_fail(r, 413, "body too large");
  return 0;
}

/* Limits were checked at the head (Content-Length) or chunk header. */
static int on_body(http_parser *p, const char *at, size_t len) {
  lc__http_reader *r = p->data;

  if (len == 0)
    return 0;
  r->body_bytes += len;
  if (r->cb->on_body(r->arg, at, len) == 1)
    reader_pause(r);
  return 0;
}

static int on_message_complete(http_parser *p) {
  lc__http_reader *r = p->data;

  /* Decided before the callback, which may inspect the reader. */
  if (p->upgrade || !http_should_keep_alive(p))
    r->state = ST_CLOSED;
  else
    r->state = ST_IDLE;
  if (r->cb->on_complete(r->arg) == 1)
    reader_pause(r);
  return 0;
}

static const http_parser_settings reader_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

void lc__http_reader_init(lc__http_reader *r, const lc__http_limits *limits,
                          const lc__http_reader_cb *cb, void *arg) {
  memset(r, 0, sizeof(*r));
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  r->limits = limits;
  r->cb = cb;
  r->arg = arg;
  r->state = ST_IDLE;
  lc__http_framing_init(&r->framing);
}

void lc__http_reader_free(lc__http_reader *r) {
  lc__buf_free(&r->head);
  free(r->fields);
  r->fields = NULL;
  r->nfields = r->cap_fields = 0;
}

/* Runs http-parser over bytes the framing checker passed; an error of the
 * parser's own becomes the reader's. */
static size_t reader_execute(lc__http_reader *r, const char *data,
                             size_t len) {
  size_t n = http_parser_execute(&r->parser, &reader_settings, data, len);
  enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);

  lc__http_framing_taken(&r->framing, len, n);
  if (r->status == 0 && err != HPE_OK && err != HPE_PAUSED &&
      r->state != ST_CLOSED) {
    if (err == HPE_HEADER_OVERFLOW)
      reader_fail(r, 431, "header block too large");
    else
      reader_fail(r, 400, http_errno_description(err));
  }
  return n;
}

size_t lc__http_reader_feed(lc__http_reader *r, const char *data, size_t len,
                            int *status) {
  size_t done = 0, checked, n;

  *status = r->status;
  if (r->status != 0)
    return 0;
  /* A zero length would tell http-parser the stream ended. */
  while (done < len && r->state != ST_CLOSED) {
    checked = lc__http_framing_check(&r->framing, data + done, len - done);
    if (checked == 0) {
      if (r->framing.status != 0)
        reader_fail(r, r->framing.status, r->framing.reason);
      break;
    }
    n = reader_execute(r, data + done, checked);
    done += n;
    if (r->status != 0 || n < checked)
      break; /* failed, or a callback paused */
  }
  if (r->state == ST_CLOSED && r->status == 0)
    return len;
  *status = r->status;
  return done;
}

void lc__http_reader_resume(lc__http_reader *r) {
  if (!r->paused)
    return;
  r->paused = 0;
  /* http-parser asserts when unpausing a parser in an error state. */
  if (HTTP_PARSER_ERRNO(&r->parser) == HPE_PAUSED)
    http_parser_pause(&r->parser, 0);
}

int lc__http_reader_idle(const lc__http_reader *r) {
  return r->status == 0 && (r->state == ST_IDLE || r->state == ST_CLOSED);
}

int lc__http_reader_in_head(const lc__http_reader *r) {
  return r->status == 0 && r->state >= ST_URL && r->state <= ST_VALUE;
}

const char *lc__http_reader_error(const lc__http_reader *r) {
  return r->reason;
}

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

/* RFC 7230 tchar. */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
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
    if (end - start == tn && ascii_case_equal(v + start, tok, tn))
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
  return h->name_len == n && ascii_case_equal(h->name, lower, n);
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

int lc__http_write_error(lc__buf *out, int status) {
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
  d += put_dec(d, (uint64_t)status);
  *d++ = ' ';
  d = put(d, reason, reason_len);
  *d++ = '\n';
  out->len = (size_t)(d - out->base);
  return 0;
}
