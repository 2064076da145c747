/* http_framing.c - request framing checked before http-parser (see .h). */
#include "http_codec.h"
#include "hex.h"
#include "http_framing.h"

#include <string.h>

/* Where the next byte is. */
enum {
  FR_START,          /* before a request line (empty lines allowed) */
  FR_START_CR,       /* an empty line's CR */
  FR_REQUEST,        /* in the request line */
  FR_REQUEST_CR,     /* the request line's CR */
  FR_LINE,           /* at the start of a header line or the empty line */
  FR_NAME,           /* in a header name */
  FR_VALUE,          /* in a header value */
  FR_VALUE_CR,       /* a header line's CR */
  FR_END_CR,         /* the empty line's CR */
  FR_WAIT_HEAD,      /* the head ended: waiting for its body's framing */
  FR_BODY,           /* Content-Length bytes */
  FR_CHUNK_SIZE_START,
  FR_CHUNK_SIZE,
  FR_CHUNK_EXT,      /* after the size: extensions, up to CR */
  FR_CHUNK_SIZE_CR,
  FR_CHUNK_DATA,
  FR_CHUNK_DATA_CR,  /* the CRLF that must follow chunk data */
  FR_CHUNK_DATA_LF
};

static int fail(lc__http_framing *f, int status, const char *reason) {
  f->status = status;
  f->reason = reason;
  return -1;
}

static int is_tchar(unsigned char c) {
  return lc__http_byte_class[c] & LC__HTTP_TCHAR;
}

/* Control characters other than HTAB, and DEL. */
static int is_ctl(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* A line's CR must be followed by its LF. */
static int expect_lf(lc__http_framing *f, unsigned char c, int next) {
  if (c != '\n')
    return fail(f, 400, "CR not followed by LF");
  f->state = next;
  return 0;
}

/* The request line ended: its last word must be HTTP/1.0 or HTTP/1.1. */
static int check_version(lc__http_framing *f) {
  const char *v = f->version;

  if (f->version_len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' ||
      v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
    return fail(f, 400, "request line without an HTTP version");
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
    return fail(f, 505, "HTTP version not supported");
  f->state = FR_REQUEST_CR;
  return 0;
}

static int step_request(lc__http_framing *f, unsigned char c) {
  switch (c) {
  case '\r':
    return check_version(f);
  case '\n':
    return fail(f, 400, "line ends in a bare LF");
  case ' ':
    f->version_len = 0;
    return 0;
  default:
    if (f->version_len < 8)
      f->version[f->version_len] = (char)c;
    if (f->version_len < 9)
      f->version_len++;
    return 0;
  }
}

static int step_line_start(lc__http_framing *f, unsigned char c) {
  if (c == '\r') {
    f->state = FR_END_CR;
    return 0;
  }
  if (c == ' ' || c == '\t')
    return fail(f, 400, "folded header line (obs-fold)");
  if (c == '\n')
    return fail(f, 400, "line ends in a bare LF");
  if (c == ':')
    return fail(f, 400, "empty header name");
  if (!is_tchar(c))
    return fail(f, 400, "invalid character in a header name");
  f->state = FR_NAME;
  return 0;
}

static int step_name(lc__http_framing *f, unsigned char c) {
  if (is_tchar(c))
    return 0;
  if (c == ':') {
    f->state = FR_VALUE;
    return 0;
  }
  if (c == ' ' || c == '\t')
    return fail(f, 400, "whitespace between a header name and its colon");
  if (c == '\r' || c == '\n')
    return fail(f, 400, "header line without a colon");
  return fail(f, 400, "invalid character in a header name");
}

static int step_value(lc__http_framing *f, unsigned char c) {
  if (c == '\r') {
    f->state = FR_VALUE_CR;
    return 0;
  }
  if (c == '\n')
    return fail(f, 400, "line ends in a bare LF");
  if (is_ctl(c))
    return fail(f, 400, "invalid character in a header value");
  return 0;
}

/* The empty line: a head ends (its body's framing comes from the parser),
 * or the trailers do, and with them the request. */
static int step_end(lc__http_framing *f, unsigned char c) {
  if (expect_lf(f, c, FR_WAIT_HEAD) != 0)
    return -1;
  if (f->trailers) {
    f->trailers = 0;
    f->state = FR_START;
  }
  return 0;
}

static int step_chunk_size(lc__http_framing *f, unsigned char c) {
  int v = lc__hex_value(c);

  if (v >= 0) {
    if (f->remaining > (UINT64_MAX >> 4))
      return fail(f, 400, "chunk size too large");
    f->remaining = f->remaining * 16 + (uint64_t)v;
    f->state = FR_CHUNK_SIZE;
    return 0;
  }
  if (f->state == FR_CHUNK_SIZE_START)
    return fail(f, 400, "invalid chunk size");
  if (c == '\r') {
    f->state = FR_CHUNK_SIZE_CR;
    return 0;
  }
  if (c == ';' || c == ' ' || c == '\t') {
    f->state = FR_CHUNK_EXT;
    return 0;
  }
  if (c == '\n')
    return fail(f, 400, "line ends in a bare LF");
  return fail(f, 400, "invalid chunk size");
}

static int step_chunk_ext(lc__http_framing *f, unsigned char c) {
  if (c == '\r') {
    f->state = FR_CHUNK_SIZE_CR;
    return 0;
  }
  if (c == '\n')
    return fail(f, 400, "line ends in a bare LF");
  if (is_ctl(c))
    return fail(f, 400, "invalid character in a chunk extension");
  return 0;
}

/* The chunk-size line ended: its data follows, or (size 0) the trailers. */
static int step_chunk_size_end(lc__http_framing *f, unsigned char c) {
  if (expect_lf(f, c, FR_CHUNK_DATA) != 0)
    return -1;
  if (f->remaining == 0) {
    f->trailers = 1;
    f->state = FR_LINE;
  }
  return 0;
}

/* One byte of a line; -1 (with the reason set) when it breaks the rules. */
static int step(lc__http_framing *f, unsigned char c) {
  switch (f->state) {
  case FR_START:
    if (c == '\r')
      f->state = FR_START_CR;
    else if (c == '\n')
      return fail(f, 400, "line ends in a bare LF");
    else {
      f->state = FR_REQUEST;
      f->version_len = 0;
    }
    return 0;
  case FR_START_CR:
    return expect_lf(f, c, FR_START);
  case FR_REQUEST:
    return step_request(f, c);
  case FR_REQUEST_CR:
    return expect_lf(f, c, FR_LINE);
  case FR_LINE:
    return step_line_start(f, c);
  case FR_NAME:
    return step_name(f, c);
  case FR_VALUE:
    return step_value(f, c);
  case FR_VALUE_CR:
    return expect_lf(f, c, FR_LINE);
  case FR_END_CR:
    return step_end(f, c);
  case FR_CHUNK_SIZE_START:
  case FR_CHUNK_SIZE:
    return step_chunk_size(f, c);
  case FR_CHUNK_EXT:
    return step_chunk_ext(f, c);
  case FR_CHUNK_SIZE_CR:
    return step_chunk_size_end(f, c);
  case FR_CHUNK_DATA_CR:
    if (c != '\r')
      return fail(f, 400, "chunk data not followed by CRLF");
    f->state = FR_CHUNK_DATA_LF;
    return 0;
  case FR_CHUNK_DATA_LF:
    if (c != '\n')
      return fail(f, 400, "chunk data not followed by CRLF");
    f->state = FR_CHUNK_SIZE_START;
    return 0;
  default:
    return fail(f, 400, "malformed request");
  }
}

void lc__http_framing_init(lc__http_framing *f) {
  memset(f, 0, sizeof(*f));
  f->state = FR_START;
}

size_t lc__http_framing_check(lc__http_framing *f, const char *data,
                              size_t len) {
  size_t i = 0, n;

  if (f->carry > 0) {
    n = f->carry < len ? f->carry : len;
    f->carry -= n;
    return n;
  }
  if (f->status != 0)
    return 0;
  while (i < len) {
    if (f->state == FR_BODY || f->state == FR_CHUNK_DATA) {
      /* Body bytes pass as they are; only their count matters. */
      n = f->remaining < len - i ? (size_t)f->remaining : len - i;
      f->remaining -= n;
      i += n;
      if (f->remaining == 0)
        f->state = f->state == FR_BODY ? FR_START : FR_CHUNK_DATA_CR;
      continue;
    }
    if (f->state == FR_WAIT_HEAD) {
      /* The parser took the head without saying how its body is framed. */
      if (i == 0)
        fail(f, 400, "malformed request head");
      return i;
    }
    /* Runs of ordinary name and value bytes need no state change. */
    if (f->state == FR_NAME || f->state == FR_VALUE) {
      unsigned char want =
          f->state == FR_NAME ? LC__HTTP_TCHAR : LC__HTTP_VALUE;
      while (i < len && (lc__http_byte_class[(unsigned char)data[i]] & want))
        i++;
      if (i == len)
        break;
    }
    if (step(f, (unsigned char)data[i]) != 0)
      return i;
    i++;
    if (f->state == FR_WAIT_HEAD)
      return i;
  }
  return i;
}

void lc__http_framing_taken(lc__http_framing *f, size_t checked,
                            size_t taken) {
  if (taken < checked)
    f->carry += checked - taken;
}

void lc__http_framing_body(lc__http_framing *f, int chunked,
                           uint64_t content_length) {
  f->remaining = 0;
  if (chunked)
    f->state = FR_CHUNK_SIZE_START;
  else if (content_length > 0) {
    f->state = FR_BODY;
    f->remaining = content_length;
  } else {
    f->state = FR_START;
  }
}
