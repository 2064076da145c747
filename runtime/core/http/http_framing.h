/*
 * http_framing.h - the request framing rules http-parser's lenient build
 * lets through, checked on the raw bytes before the parser sees them.
 *
 * Debian builds http-parser with HTTP_PARSER_STRICT=0: it takes a space
 * before a header's colon as part of the name and still uses the header
 * for framing ("Content-Length : 5"), eats whatever byte follows a CR at
 * the end of a head or a chunk-size line, and takes any two bytes after
 * chunk data as its CRLF. Each of those lets a front end and this server
 * disagree on where a request ends (request smuggling). The framing
 * checker walks the same bytes first, line by line, and refuses:
 *
 *   - a line that does not end in CRLF (a bare LF or a CR alone) in the
 *     head, a chunk-size line or the trailers;
 *   - a header name with a character that is not a token character
 *     (whitespace before the colon included), or a line without a colon;
 *   - a folded header line (obs-fold: a line starting with SP or HTAB);
 *   - chunk data not followed by CRLF, a chunk size that is not hex;
 *   - a request line whose version is not HTTP/1.0 or HTTP/1.1 (505 when it
 *     is another HTTP/x.y, 400 when it is no version at all).
 *
 * It keeps just enough state to know where each head, body and chunk ends;
 * what the bytes mean stays http-parser's business. The reader (in
 * http_codec.c) feeds the parser only the bytes the checker passed, and
 * tells it how the body of each head is framed.
 */
#ifndef LC_HTTP_FRAMING_H
#define LC_HTTP_FRAMING_H

#include <stddef.h>
#include <stdint.h>

typedef struct lc__http_framing {
  int state;          /* where in the stream the next byte is (FR_*) */
  int trailers;       /* header lines are a chunked body's trailers */
  uint64_t remaining; /* body or chunk-data bytes still to pass */
  int digits;         /* hex digits of the chunk size so far */
  char version[9];    /* the request line's last word so far */
  size_t version_len;
  size_t carry;       /* bytes checked but not yet taken by the parser */
  int status;         /* an error waits past the checked bytes: 400, 505 */
  const char *reason;
} lc__http_framing;

void lc__http_framing_init(lc__http_framing *f);

/*
 * Checks the bytes at data[0, len) and returns how many of them may go to
 * the parser now. It stops at the end of a head, where it waits for
 * lc__http_framing_body(), and at a bad byte: then f->status and f->reason
 * say why, and the next call returns 0.
 */
size_t lc__http_framing_check(lc__http_framing *f, const char *data,
                              size_t len);

/* The parser took `taken` of the `checked` bytes the last check passed
 * (fewer when it paused): the rest are passed again without a new check. */
void lc__http_framing_taken(lc__http_framing *f, size_t checked,
                            size_t taken);

/* The head just checked frames its body: chunked, or content_length bytes
 * (0: no body). */
void lc__http_framing_body(lc__http_framing *f, int chunked,
                           uint64_t content_length);

#endif
