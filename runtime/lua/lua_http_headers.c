/* HTTP headers from Lua (lua_http_headers.h). */
#include "lua_http_headers.h"

/* Collects the list at idx into out; -1 when there are more than max. */
static int collect_headers(lua_State *L, int idx, lc__http_header *out,
                           int max) {
  int n = 0, i, j, len, vlen;
  size_t name_len;
  const char *name;

  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  len = (int)lua_objlen(L, idx);
  for (i = 1; i < len; i += 2) {
    lua_rawgeti(L, idx, i);
    lua_rawgeti(L, idx, i + 1);
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "header name must be a string");
    name = lua_tolstring(L, -2, &name_len);
    vlen = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 1;
    for (j = 1; j <= vlen; j++) {
      if (lua_istable(L, -1))
        lua_rawgeti(L, -1, j);
      else
        lua_pushvalue(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "header '%s' must be a string", name);
      if (n == max)
        return -1;
      out[n].name = name;
      out[n].name_len = name_len;
      out[n].value = lua_tolstring(L, -1, &out[n].value_len);
      n++;
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return n;
}

/* How many header lines the list at idx makes (a table of values, one each). */
static int count_headers(lua_State *L, int idx) {
  int n = 0, i, len = (int)lua_objlen(L, idx);

  for (i = 2; i <= len; i += 2) {
    lua_rawgeti(L, idx, i);
    n += lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 1;
    lua_pop(L, 1);
  }
  return n;
}

lc__http_header *lc__lua_check_headers(lua_State *L, int idx,
                                       lc__http_header *stack, size_t *n) {
  lc__http_header *headers = stack;
  int count = collect_headers(L, idx, stack, LC__LUA_STACK_HEADERS);

  if (count < 0) {
    int max = count_headers(L, idx);
    headers = lua_newuserdata(L, sizeof(*headers) * (size_t)max);
    count = collect_headers(L, idx, headers, max);
  }
  *n = (size_t)count;
  return headers;
}

void lc__lua_push_headers(lua_State *L, const lc__http_head *head) {
  size_t i;

  lua_createtable(L, 0, (int)head->nheaders);
  for (i = 0; i < head->nheaders; i++) {
    const lc__http_header *f = &head->headers[i];
    lua_pushlstring(L, f->name, f->name_len);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushlstring(L, f->value, f->value_len);
    } else {
      /* A repeated header: joined with ", ", as Node does. */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, f->value, f->value_len);
      lua_concat(L, 3);
    }
    lua_rawset(L, -3);
  }
}
