/*
 * redis_reply.c - replies read from a byte stream, and commands encoded
 * (redis.h).
 *
 * hiredis's reader parses RESP; we give it our own object functions, which
 * build the reply in an arena the parser keeps for all replies: nodes in
 * one array, string bytes in one buffer, element pointers in a third. A
 * node refers to its parent by index while the reply is read (the arrays
 * may move as they grow); once hiredis says the reply is complete, one
 * pass turns indexes and offsets into pointers. Nothing is allocated per
 * reply once the arena has grown to the size of the usual ones, and the
 * arena is what the size bound is checked against: the nodes and bytes
 * built so far plus what the reader holds unparsed. A declared length
 * ("*2000000000") costs nothing until the elements arrive.
 *
 * The encoder writes RESP arrays of bulk strings straight into a buffer;
 * spec/c/test_redis_reply.c holds it to hiredis's redisFormatCommandArgv.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/read.h>

#include "redis.h"

/* How a node is tied into its reply while it is read. */
typedef struct node_link {
  size_t parent; /* index + 1, 0 for the root */
  size_t idx;    /* position in the parent */
  size_t off;    /* string bytes: offset in the string buffer */
  size_t base;   /* an array's first slot in the element table */
} node_link;

struct lc__redis_parser {
  redisReader *reader;
  size_t max_reply;
  lc__redis_reply *nodes;
  node_link *links;
  size_t nnodes, cap;
  lc__buf strings;
  lc__redis_reply **elements;
  size_t elements_cap;
  int too_large; /* an object was refused for the bound */
  int done;      /* a reply was handed out: reset the arena first */
  char error[128];
};

/* Bytes the reply being read holds so far (its nodes and strings). */
static size_t built(const lc__redis_parser *p) {
  return p->nnodes * (sizeof(lc__redis_reply) + sizeof(node_link)) +
         lc__buf_size(&p->strings);
}

/* A new node for a read task (NULL refuses it: hiredis then stops with an
 * out-of-memory error, which next() reports for what it was). */
static lc__redis_reply *node_new(const redisReadTask *task, int type,
                                 size_t extra) {
  lc__redis_parser *p = task->privdata;
  lc__redis_reply *n;
  node_link *l;

  if (built(p) + extra + sizeof(*n) + sizeof(*l) > p->max_reply) {
    p->too_large = 1;
    return NULL;
  }
  if (p->nnodes == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    lc__redis_reply *nodes = realloc(p->nodes, cap * sizeof(*nodes));
    node_link *links = nodes ? realloc(p->links, cap * sizeof(*links)) : NULL;

    if (nodes != NULL)
      p->nodes = nodes;
    if (links == NULL)
      return NULL;
    p->links = links;
    p->cap = cap;
  }
  n = &p->nodes[p->nnodes];
  l = &p->links[p->nnodes];
  memset(n, 0, sizeof(*n));
  memset(l, 0, sizeof(*l));
  n->type = type;
  if (task->parent != NULL) {
    l->parent = (size_t)(uintptr_t)task->parent->obj;
    l->idx = (size_t)task->idx;
  }
  p->nnodes++;
  return n;
}

/* The object hiredis keeps for a node: its index + 1 (never NULL). */
static void *node_obj(const redisReadTask *task) {
  return (void *)(uintptr_t)((lc__redis_parser *)task->privdata)->nnodes;
}

static void *create_string(const redisReadTask *task, char *s, size_t len) {
  lc__redis_parser *p = task->privdata;
  int type = task->type == REDIS_REPLY_ERROR    ? LC__REDIS_ERROR
             : task->type == REDIS_REPLY_STATUS ? LC__REDIS_STATUS
                                                : LC__REDIS_STRING;
  lc__redis_reply *n = node_new(task, type, len + 1);

  if (n == NULL)
    return NULL;
  n->len = len;
  p->links[p->nnodes - 1].off = lc__buf_size(&p->strings);
  if (lc__buf_append(&p->strings, s, len) != 0 ||
      lc__buf_append(&p->strings, "", 1) != 0) {
    p->nnodes--;
    return NULL;
  }
  return node_obj(task);
}

static void *create_array(const redisReadTask *task, int elements) {
  lc__redis_reply *n = node_new(task, LC__REDIS_ARRAY, 0);

  if (n == NULL)
    return NULL;
  n->len = (size_t)elements;
  return node_obj(task);
}

static void *create_integer(const redisReadTask *task, long long value) {
  lc__redis_reply *n = node_new(task, LC__REDIS_INTEGER, 0);

  if (n == NULL)
    return NULL;
  n->integer = value;
  return node_obj(task);
}

static void *create_nil(const redisReadTask *task) {
  return node_new(task, LC__REDIS_NIL, 0) ? node_obj(task) : NULL;
}

/* The arena owns every node: nothing to free one by one. */
static void free_object(void *obj) { (void)obj; }

static redisReplyObjectFunctions arena_functions = {
    create_string, create_array, create_integer, create_nil, free_object};

lc__redis_parser *lc__redis_parser_new(size_t max_reply) {
  lc__redis_parser *p = calloc(1, sizeof(*p));

  if (p == NULL)
    return NULL;
  p->reader = redisReaderCreateWithFunctions(&arena_functions);
  if (p->reader == NULL) {
    free(p);
    return NULL;
  }
  p->reader->privdata = p;
  p->max_reply = max_reply;
  return p;
}

void lc__redis_parser_free(lc__redis_parser *p) {
  if (p == NULL)
    return;
  redisReaderFree(p->reader);
  free(p->nodes);
  free(p->links);
  free(p->elements);
  lc__buf_free(&p->strings);
  free(p);
}

const char *lc__redis_parser_error(const lc__redis_parser *p) {
  return p->error;
}

int lc__redis_parser_feed(lc__redis_parser *p, const char *data, size_t len) {
  return redisReaderFeed(p->reader, data, len) == REDIS_OK ? 0 : UV_ENOMEM;
}

/* Empties the arena for the next reply (keeping its memory, unless one
 * large reply grew it far past the usual). */
static void arena_reset(lc__redis_parser *p) {
  p->nnodes = 0;
  lc__buf_reset(&p->strings);
  if (p->strings.cap > 1024 * 1024)
    lc__buf_free(&p->strings);
  if (p->cap > 64 * 1024) {
    free(p->nodes);
    free(p->links);
    free(p->elements);
    p->nodes = NULL;
    p->links = NULL;
    p->elements = NULL;
    p->cap = p->elements_cap = 0;
  }
}

/* The reply is complete: turn indexes and offsets into pointers. */
static int arena_finish(lc__redis_parser *p) {
  size_t i, slots = 0;

  if (p->nnodes > p->elements_cap) {
    lc__redis_reply **e = realloc(p->elements, p->nnodes * sizeof(*e));
    if (e == NULL)
      return UV_ENOMEM;
    p->elements = e;
    p->elements_cap = p->nnodes;
  }
  for (i = 0; i < p->nnodes; i++) {
    lc__redis_reply *n = &p->nodes[i];
    switch (n->type) {
    case LC__REDIS_ARRAY:
      p->links[i].base = slots;
      n->element = p->elements + slots;
      slots += n->len;
      break;
    case LC__REDIS_STRING:
    case LC__REDIS_STATUS:
    case LC__REDIS_ERROR:
      n->str = lc__buf_data(&p->strings) + p->links[i].off;
      break;
    }
  }
  /* Every node but the root fills one slot of its parent. */
  if (slots != p->nnodes - 1)
    return UV_EPROTO;
  for (i = 1; i < p->nnodes; i++) {
    const node_link *l = &p->links[i];
    p->elements[p->links[l->parent - 1].base + l->idx] = &p->nodes[i];
  }
  return 0;
}

int lc__redis_parser_next(lc__redis_parser *p, const lc__redis_reply **out) {
  void *obj = NULL;
  int err;

  *out = NULL;
  if (p->done) {
    p->done = 0;
    arena_reset(p);
  }
  if (redisReaderGetReply(p->reader, &obj) != REDIS_OK) {
    if (p->too_large)
      return UV_EMSGSIZE;
    snprintf(p->error, sizeof(p->error), "%s", p->reader->errstr);
    return p->reader->err == REDIS_ERR_OOM ? UV_ENOMEM : UV_EPROTO;
  }
  if (obj == NULL) {
    /* A reply still coming: what it built and the bytes the reader holds
     * for the rest count against the bound. */
    if (built(p) + (p->reader->len - p->reader->pos) > p->max_reply)
      return UV_EMSGSIZE;
    return 0;
  }
  err = arena_finish(p);
  if (err) {
    snprintf(p->error, sizeof(p->error), "malformed reply");
    return err;
  }
  p->done = 1;
  *out = &p->nodes[0];
  return 1;
}

/* Encoding ------------------------------------------------------------------ */

/* Appends prefix, n in decimal and CR LF. */
static int put_count(lc__buf *b, char prefix, size_t n) {
  char tmp[24];
  char *end = tmp + sizeof(tmp), *s = end;

  *--s = '\n';
  *--s = '\r';
  do {
    *--s = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  *--s = prefix;
  return lc__buf_append(b, s, (size_t)(end - s));
}

int lc__redis_encode_header(lc__buf *b, int argc) {
  return put_count(b, '*', (size_t)argc);
}

int lc__redis_encode_arg(lc__buf *b, const char *s, size_t len) {
  if (lc__buf_reserve(b, len + 24) != 0)
    return UV_ENOMEM;
  put_count(b, '$', len);
  memcpy(b->base + b->len, s, len);
  b->base[b->len + len] = '\r';
  b->base[b->len + len + 1] = '\n';
  b->len += len + 2;
  return 0;
}
