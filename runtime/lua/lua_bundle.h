/* lua_bundle.h - the Lua modules compiled into the binary (see CMakeLists). */
#ifndef LC_LUA_BUNDLE_H
#define LC_LUA_BUNDLE_H

#include <stddef.h>

typedef struct lc__bundle_entry {
  const char *name; /* module name for require() */
  const unsigned char *data;
  size_t size;
} lc__bundle_entry;

extern const lc__bundle_entry lc__bundle[];
extern const size_t lc__bundle_count;

#endif
