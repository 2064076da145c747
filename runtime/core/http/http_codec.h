/*
 * http_codec.h - HTTP/1.1 reading and writing, with no I/O.
 *
 * The reader wraps http-parser: it feeds bytes, enforces the limits, and
 * reports each message as a head, body pieces and a completion. It reads
 * requests (the server) or responses (the client), with the same rules and
 * limits. The writers build status lines, request lines, header blocks and
 * chunk frames into an lc__buf. The connection protocols (http_server.c,
 * http_client.c) own sockets and timers; this file only knows bytes, so the
 * C unit tests and the fuzz targets drive it directly.
 */
#ifndef LC_HTTP_H
#define LC_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <http_parser.h>

#include "buf.h"
#include "http_framing.h"

/* Limits; a request over one gets the status in brackets and a close (a
 * response over one fails with the same status as its reason). */
typedef struct lc__http_limits {
  size_t max_header_size; /* request line + headers, bytes [431]; 16 KiB */
  size_t max_url_size;    /* bytes [414]; 8 KiB */
  size_t max_headers;     /* header lines [431]; 100 */
  uint64_t max_body_size; /* bytes, 0 = no limit [413]; 1 MiB */
} lc__http_limits;

void lc__http_limits_init(lc__http_limits *limits);

/* What the protocols' write calls return besides 0 and UV_E* codes: the
 * request or response is over (nothing written). */
#define LC__HTTP_GONE 1

typedef struct lc__http_header {
  const char *name; /* lower-cased for requests */
  size_t name_len;
  const char *value;
  size_t value_len;
} lc__http_header;

/* A message's head. Pointers are valid only during on_head. */
typedef struct lc__http_head {
  const char *method; /* a request's "GET", NUL-terminated, static */
  const char *url;    /* a request's url; a response's reason phrase */
  size_t url_len;
  int status;         /* a response's status code */
  int major, minor;
  int keep_alive;      /* the client allows another request after this */
  int expect_continue; /* "Expect: 100-continue" */
  int upgrade;         /* "Connection: upgrade" with "Upgrade:" */
  const lc__http_header *headers;
  size_t nheaders;
} lc__http_head;

/*
 * Callbacks return 0 to go on, or 1 to pause: the reader stops after the
 * callback and lc__http_reader_feed() returns with what it consumed.
 */
typedef struct lc__http_reader_cb {
  int (*on_head)(void *arg, const lc__http_head *head);
  int (*on_body)(void *arg, const char *data, size_t len);
  int (*on_complete)(void *arg);
} lc__http_reader_cb;

typedef struct lc__http_reader {
  http_parser parser;
  lc__http_framing framing; /* checks what the lenient parser lets by */
  const lc__http_limits *limits;
  const lc__http_reader_cb *cb;
  void *arg;
  lc__buf head;            /* url and header bytes of the current request */
  lc__http_header *fields; /* offsets into head while reading */
  size_t nfields, cap_fields;
  size_t head_bytes;       /* bytes of the current head seen */
  uint64_t body_bytes;
  int state;               /* where in a request the reader is */
  int status;              /* error status, once set the reader is dead */
  const char *reason;      /* error in words */
  int paused;
  int response;            /* reads responses */
  int head_request;        /* the response answers HEAD: no body */
  int informational;       /* inside a 1xx response (skipped) */
} lc__http_reader;

void lc__http_reader_init(lc__http_reader *r, const lc__http_limits *limits,
                          const lc__http_reader_cb *cb, void *arg);
/* A reader of responses. 1xx responses (100 Continue, 103 Early Hints) are
 * skipped; a 101 is refused (400), as the client asks for no upgrade. */
void lc__http_reader_init_response(lc__http_reader *r,
                                   const lc__http_limits *limits,
                                   const lc__http_reader_cb *cb, void *arg);
/* Before each response: whether it answers a HEAD request (no body). */
void lc__http_reader_expect(lc__http_reader *r, int head_request);
/*
 * The peer closed the connection: completes a body that ends with the
 * connection (on_complete). Returns 0, or the status (400) when a message
 * was cut short; lc__http_reader_error() then says where.
 */
int lc__http_reader_eof(lc__http_reader *r);
void lc__http_reader_free(lc__http_reader *r);

/*
 * Feeds len bytes. Returns how many were consumed: all of them, unless a
 * callback paused (resume, then feed the rest) or the request is bad. On a
 * bad request *status is the HTTP status to answer with (400, 413, 414, 431,
 * 505) and lc__http_reader_error() says why; the reader accepts nothing
 * more.
 */
size_t lc__http_reader_feed(lc__http_reader *r, const char *data, size_t len,
                            int *status);
void lc__http_reader_resume(lc__http_reader *r);
/* After a complete message: the connection may carry another (not
 * closing, no error). */
int lc__http_reader_keep_alive(const lc__http_reader *r);
/* Between messages: no byte of a next one seen yet. */
int lc__http_reader_idle(const lc__http_reader *r);
/* Inside a request's head (for the header-read timeout). */
int lc__http_reader_in_head(const lc__http_reader *r);
const char *lc__http_reader_error(const lc__http_reader *r);

/* Whether n bytes of a equal lower (lower-case ASCII) in any case. */
int lc__http_case_equal(const char *a, const char *lower, size_t n);

/* Response writing (http_writer.c) -------------------------------------------- */

/* "Not Found" for 404; "Unknown" for a code it does not know. */
const char *lc__http_status_text(int status);

/* The Date header value for now (cached, refreshed once a second). */
const char *lc__http_date(void);

typedef struct lc__http_response {
  int status;
  const char *reason;     /* NULL: the standard text */
  int major, minor;       /* the request's version */
  int head_request;       /* answering HEAD: no body bytes */
  int keep_alive;         /* in: the connection may stay open; out: it will */
  int64_t content_length; /* in: known body length, or -1 */
  int chunked;            /* out: the body must be sent in chunks */
  int no_body;            /* out: no body may follow (HEAD, 1xx, 204, 304) */
} lc__http_response;

/*
 * Writes the status line and headers. The writer adds what the app did not
 * set: Date, then Content-Length when the length is known, else
 * Transfer-Encoding: chunked for HTTP/1.1 (HTTP/1.0 ends the body by
 * closing), and Connection: keep-alive/close. An app's own Content-Length,
 * Transfer-Encoding or Connection header decides instead of the writer's.
 * Returns 0, or UV_EINVAL (nothing written) when a name or value holds
 * CR, LF or NUL, or a name is not a token.
 */
int lc__http_write_head(lc__buf *out, lc__http_response *res,
                        const lc__http_header *headers, size_t nheaders);

/* One chunk of a chunked body (nothing for len 0), and the last chunk. */
int lc__http_write_chunk(lc__buf *out, const char *data, size_t len);
int lc__http_write_last_chunk(lc__buf *out);

/* "HTTP/1.1 100 Continue\r\n\r\n" */
int lc__http_write_continue(lc__buf *out);

/* A whole short response for an error status, with Connection: close;
 * answering HEAD, its head only. */
int lc__http_write_error(lc__buf *out, int status, int head_request);

/* Request writing ------------------------------------------------------------ */

typedef struct lc__http_request_line {
  const char *method;     /* a token: "GET" */
  const char *path;       /* "/x?y": no space, CR, LF or NUL */
  size_t path_len;
  const char *host;       /* the Host header when the app sets none */
  size_t host_len;
  int64_t content_length; /* in: the whole body's length, or -1 */
  int keep_alive;         /* in: ask to keep the connection open */
  int chunked;            /* out: the body must be sent in chunks */
} lc__http_request_line;

/*
 * Writes an HTTP/1.1 request line and headers. The writer adds what the
 * app did not set: Host, then Content-Length when the length is known (none
 * for an empty body of GET, HEAD, DELETE, OPTIONS or TRACE), else
 * Transfer-Encoding: chunked, and Connection: keep-alive/close. Returns 0,
 * or UV_EINVAL (nothing written) for a bad method, path, name or value.
 */
int lc__http_write_request_head(lc__buf *out, lc__http_request_line *req,
                                const lc__http_header *headers,
                                size_t nheaders);

/* Byte classes in a head: LC__HTTP_TCHAR for a token (a header name),
 * LC__HTTP_VALUE for a header value's bytes (visible, SP, HTAB, obs-text). */
#define LC__HTTP_TCHAR 1
#define LC__HTTP_VALUE 2
extern const unsigned char lc__http_byte_class[256];

#endif
