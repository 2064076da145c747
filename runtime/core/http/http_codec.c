/*
 * http_codec.c - the HTTP/1.1 reader over http-parser: requests for the
 * server, responses for the client, one set of rules and limits. The
 * writers are in http_writer.c.
 */
#include "http_codec.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* What each byte may be in a head, as a table: the framing checker looks
 * at every byte of every head, the writer at every header name. */
#define T LC__HTTP_TCHAR
#define V LC__HTTP_VALUE
const unsigned char lc__http_byte_class[256] = {
    /* RFC 9110 tchar: a token's letters, digits and !#$%&'*+-.^_`|~ */
    ['a' ... 'z'] = T | V, ['A' ... 'Z'] = T | V,
    ['0' ... '9'] = T | V, ['!'] = T | V,
    ['#'] = T | V, ['$'] = T | V, ['%'] = T | V,
    ['&'] = T | V, ['\''] = T | V, ['*'] = T | V,
    ['+'] = T | V, ['-'] = T | V, ['.'] = T | V,
    ['^'] = T | V, ['_'] = T | V, ['`'] = T | V,
    ['|'] = T | V, ['~'] = T | V,
    /* a value's other visible characters, SP, HTAB and obs-text */
    ['\t'] = V, [' '] = V, ['"'] = V, ['('] = V,
    [')'] = V, [','] = V, ['/'] = V, [':'] = V,
    [';'] = V, ['<'] = V, ['='] = V, ['>'] = V,
    ['?'] = V, ['@'] = V, ['['] = V, ['\\'] = V,
    [']'] = V, ['{'] = V, ['}'] = V, [0x80 ... 0xff] = V,
};
#undef T
#undef V

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
/* "HTTP/1.1 200 " + reason + "\r\n" */
#define STATUS_LINE_EXTRA 15

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

/* A response's reason phrase, kept where a request keeps its url. */
static int on_status(http_parser *p, const char *at, size_t len) {
  lc__http_reader *r = p->data;

  if (r->head_bytes == 0)
    r->head_bytes = STATUS_LINE_EXTRA;
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

int lc__http_case_equal(const char *a, const char *lower, size_t n) {
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
        lc__http_case_equal(fields[i].value, "100-continue", 12))
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
  h.method = r->response ? NULL : http_method_str(p->method);
  h.status = r->response ? (int)p->status_code : 0;
  h.url = base;
  h.major = p->http_major;
  h.minor = p->http_minor;
  h.upgrade = p->upgrade;
  h.keep_alive = !p->upgrade && http_should_keep_alive(p);
  h.expect_continue =
      !r->response && expects_continue(r->fields, r->nfields);
  h.headers = r->fields;
  h.nheaders = r->nfields;
  return r->cb->on_head(r->arg, &h);
}

/* A response's 1xx is skipped (its end resets the reader), and a 101 is
 * refused: the client asked for no protocol switch. A 1xx ends at its
 * empty line, whatever length it declares (RFC 9112 6.3): 1 tells
 * http-parser it has no body. */
static int response_informational(lc__http_reader *r) {
  if (r->parser.status_code == 101)
    return reader_fail(r, 400, "unexpected 101 Switching Protocols");
  r->informational = 1;
  r->state = ST_BODY;
  return 1;
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
  int skip_body = 0;

  if (r->response && p->status_code < 100)
    return reader_fail(r, 400, "bad status code"); /* "HTTP/1.1 0 OK" */
  if (r->response && p->status_code / 100 == 1)
    return response_informational(r);
  if (r->response && r->head_request) {
    /* The length a HEAD answer declares is not sent: skip the body, and
     * know it before the keep-alive decision. */
    skip_body = 1;
    p->flags |= F_SKIPBODY;
  }
  if (!r->response) {
    lc__http_framing_body(&r->framing, chunked,
                          (p->flags & F_CONTENTLENGTH) ? p->content_length : 0);
    if (reader_check_host(r) != 0)
      return -1;
  }
  /* Refuse a declared oversize body before any of it is delivered. */
  if (!skip_body && max != 0 && (p->flags & F_CONTENTLENGTH) && !chunked &&
      p->content_length > max)
    return reader_fail(r, 413, "body too large");
  r->state = ST_BODY;
  /* 1 would tell http-parser to skip the body: only for HEAD answers. */
  if (reader_deliver_head(r) == 1)
    reader_pause(r);
  return skip_body;
}

/* A chunk's size is known at its header: refuse it before its data. */
static int on_chunk_header(http_parser *p) {
  lc__http_reader *r = p->data;
  uint64_t max = r->limits->max_body_size;

  if (r->informational)
    return 0;
  if (max != 0 && p->content_length > max - r->body_bytes)
    return reader_fail(r, 413, "body too large");
  return 0;
}

/* Limits were checked at the head (Content-Length) or chunk header; a
 * response body that ends with the connection is counted here. */
static int on_body(http_parser *p, const char *at, size_t len) {
  lc__http_reader *r = p->data;
  uint64_t max = r->limits->max_body_size;

  if (len == 0)
    return 0;
  if (max != 0 && len > max - r->body_bytes)
    return reader_fail(r, 413, "body too large");
  r->body_bytes += len;
  if (r->cb->on_body(r->arg, at, len) == 1)
    reader_pause(r);
  return 0;
}

static int on_message_complete(http_parser *p) {
  lc__http_reader *r = p->data;

  if (r->informational) {
    r->informational = 0;
    r->state = ST_IDLE;
    return 0;
  }
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
    .on_status = on_status,
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

void lc__http_reader_init_response(lc__http_reader *r,
                                   const lc__http_limits *limits,
                                   const lc__http_reader_cb *cb, void *arg) {
  lc__http_reader_init(r, limits, cb, arg);
  http_parser_init(&r->parser, HTTP_RESPONSE);
  r->parser.data = r;
  r->response = 1;
}

void lc__http_reader_expect(lc__http_reader *r, int head_request) {
  r->head_request = head_request;
}

int lc__http_reader_eof(lc__http_reader *r) {
  enum http_errno err;

  if (r->status != 0 || r->state == ST_IDLE || r->state == ST_CLOSED)
    return r->status;
  /* A zero length tells http-parser the stream ended: a body read until
   * the close completes; anything else was cut short. */
  http_parser_execute(&r->parser, &reader_settings, NULL, 0);
  err = HTTP_PARSER_ERRNO(&r->parser);
  if (r->status == 0 && err != HPE_OK && err != HPE_PAUSED)
    reader_fail(r, 400, r->state == ST_BODY
                            ? "connection closed before the end of the body"
                            : "connection closed inside the head");
  return r->status;
}

int lc__http_reader_keep_alive(const lc__http_reader *r) {
  return r->status == 0 && r->state == ST_IDLE;
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

  if (!r->response)
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
    /* The strict framing rules are for requests (a server's defence
     * against smuggling); responses are taken by http-parser's rules. */
    checked = r->response ? len - done
                          : lc__http_framing_check(&r->framing, data + done,
                                                   len - done);
    if (checked == 0) {
      if (r->framing.status != 0)
        reader_fail(r, r->framing.status, r->framing.reason);
      break;
    }
    n = reader_execute(r, data + done, checked);
    done += n;
    /* Failed, or a callback paused (perhaps right at the end of what was
     * checked): what follows waits, unchecked, for the resume. */
    if (r->status != 0 || n < checked || r->paused)
      break;
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
