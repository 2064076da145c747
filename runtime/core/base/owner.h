/*
 * owner.h - the header of every struct a libuv handle's `data` points at.
 *
 * Every struct set as a handle's `data` starts with an lc__owner (or the data
 * is NULL): at shutdown the loop walk asks each owner to close its handle the
 * owner's way, so memory is still freed in the owner's close callback.
 */
#ifndef LC_OWNER_H
#define LC_OWNER_H

#include <uv.h>

typedef struct lc__owner {
  void (*close)(uv_handle_t *handle);
} lc__owner;

#endif
