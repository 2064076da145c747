/*
 * timers.c - the C half of setTimeout/setInterval/setImmediate.
 *
 * core.timer() makes a Timer userdata over a uv_timer_t; lua/timers.lua
 * builds the Node functions on it. Immediates are one uv_check_t (with a
 * uv_idle_t so the loop does not block while some are queued) that calls
 * the Lua queue runner once per loop iteration.
 */
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

#define TIMER_MT "luacluster.Timer"

typedef struct lc__timer {
  lc__lhandle base;
  uv_timer_t timer;
  uint64_t timeout; /* as last started, for refresh() */
} lc__timer;

static void on_timer(uv_timer_t *handle) {
  lc__timer *t = handle->data;
  lua_State *L = lc__rt->L;

  lc__lua_push_ref(L, t->base.cb_ref);
  lc__lhandle_push(L, &t->base);
  /* A one-shot timer is done: nothing holds it but Lua now. */
  if (uv_timer_get_repeat(handle) == 0)
    lc__lhandle_unpin(L, &t->base);
  lc__lua_call(L, 1, 0);
}

/* core.timer() -> Timer */
static int timer_new(lua_State *L) {
  lc__timer *t = lc__lhandle_new(L, sizeof(lc__timer),
                                 offsetof(lc__timer, timer), TIMER_MT);
  uv_timer_init(&lc__rt->loop, &t->timer);
  t->timer.data = t;
  return 1;
}

/* timer:start(ms, repeat_ms, fn(timer)) */
static int timer_start(lua_State *L) {
  lc__timer *t = lc__lhandle_check(L, 1, TIMER_MT);
  lua_Number ms = luaL_checknumber(L, 2);
  lua_Number repeat = luaL_optnumber(L, 3, 0);

  if (!(ms >= 0) || ms > 1e15)
    ms = 1;
  if (!(repeat >= 0) || repeat > 1e15)
    repeat = 0;
  if (!lua_isnoneornil(L, 4))
    lc__lhandle_set_cb(L, &t->base, 4);
  if (t->base.cb_ref == LUA_NOREF)
    return luaL_error(L, "timer:start needs a callback");
  lc__lhandle_pin(L, &t->base, 1);
  /* Count from now, not from the start of this loop iteration: the Lua
   * code that set the timer may have run for a while. */
  uv_update_time(&lc__rt->loop);
  t->timeout = (uint64_t)ms;
  uv_timer_start(&t->timer, on_timer, t->timeout, (uint64_t)repeat);
  lua_settop(L, 1);
  return 1;
}

/* timer:stop() */
static int timer_stop(lua_State *L) {
  lc__timer *t = lc__lhandle_check(L, 1, TIMER_MT);

  uv_timer_stop(&t->timer);
  lc__lhandle_unpin(L, &t->base);
  return 0;
}

/* The timer behind the userdata at idx, or NULL once it is closed: ref,
 * unref and refresh on a cleared timer do nothing, as in Node. */
static lc__timer *open_timer(lua_State *L, int idx) {
  lc__lhandle **box = luaL_checkudata(L, idx, TIMER_MT);

  if (*box == NULL || uv_is_closing((*box)->handle))
    return NULL;
  return (lc__timer *)*box;
}

/* timer:refresh(): starts the countdown again (Node's timeout.refresh()). */
static int timer_refresh(lua_State *L) {
  lc__timer *t = open_timer(L, 1);

  if (t != NULL && t->base.cb_ref != LUA_NOREF) {
    lc__lhandle_pin(L, &t->base, 1);
    uv_update_time(&lc__rt->loop);
    uv_timer_start(&t->timer, on_timer, t->timeout,
                   uv_timer_get_repeat(&t->timer));
  }
  lua_settop(L, 1);
  return 1;
}

/* timer:close(): idempotent, as clearTimeout is. */
static int timer_close(lua_State *L) {
  lc__lhandle **box = luaL_checkudata(L, 1, TIMER_MT);

  if (*box != NULL && !uv_is_closing((*box)->handle)) {
    uv_timer_stop(&((lc__timer *)*box)->timer);
    lc__lhandle_unpin(L, *box);
    lc__lhandle_close(*box);
  }
  return 0;
}

static int timer_ref(lua_State *L) {
  lc__timer *t = open_timer(L, 1);

  if (t != NULL)
    uv_ref((uv_handle_t *)&t->timer);
  lua_settop(L, 1);
  return 1;
}

static int timer_unref(lua_State *L) {
  lc__timer *t = open_timer(L, 1);

  if (t != NULL)
    uv_unref((uv_handle_t *)&t->timer);
  lua_settop(L, 1);
  return 1;
}

static int timer_has_ref(lua_State *L) {
  lc__lhandle **box = luaL_checkudata(L, 1, TIMER_MT);

  lua_pushboolean(L, *box != NULL && !uv_is_closing((*box)->handle) &&
                         uv_has_ref((*box)->handle));
  return 1;
}

static int timer_active(lua_State *L) {
  lc__lhandle **box = luaL_checkudata(L, 1, TIMER_MT);

  lua_pushboolean(L, *box != NULL && !uv_is_closing((*box)->handle) &&
                         uv_is_active((*box)->handle));
  return 1;
}

/* Immediates ------------------------------------------------------------ */

typedef struct lc__immediates {
  lc__owner owner;
  uv_check_t check;
  uv_idle_t idle;
  int runner_ref;
  int armed;
  int open; /* handles not closed yet */
} lc__immediates;

static lc__immediates *immediates;

static void immediates_on_close(uv_handle_t *handle) {
  lc__immediates *im = handle->data;

  /* Two handles: the memory goes with the second. */
  if (--im->open > 0)
    return;
  if (lc__rt->L != NULL)
    lc__lua_unref(lc__rt->L, &im->runner_ref);
  free(im);
  immediates = NULL;
}

static void immediates_close(uv_handle_t *handle) {
  lc__immediates *im = handle->data;

  if (!uv_is_closing((uv_handle_t *)&im->check)) {
    uv_close((uv_handle_t *)&im->check, immediates_on_close);
    uv_close((uv_handle_t *)&im->idle, immediates_on_close);
  }
}

static void on_idle(uv_idle_t *handle) { (void)handle; }

/* Keeps the loop from blocking (and alive) while ref'd immediates wait. */
static void immediates_keep_alive(lc__immediates *im, int on) {
  if (on)
    uv_idle_start(&im->idle, on_idle);
  else
    uv_idle_stop(&im->idle);
}

static void on_check(uv_check_t *handle) {
  lc__immediates *im = handle->data;
  lua_State *L = lc__rt->L;

  /* The runner returns whether immediates are still queued, and whether
   * any of those is ref'd. If one raised, the rest run next time. */
  lc__lua_push_ref(L, im->runner_ref);
  if (lc__lua_call(L, 0, 2) != 0)
    return;
  if (immediates == NULL || uv_is_closing((uv_handle_t *)&im->check)) {
    lua_pop(L, 2);
    return;
  }
  if (lua_toboolean(L, -2)) {
    immediates_keep_alive(im, lua_toboolean(L, -1));
  } else {
    uv_check_stop(&im->check);
    uv_idle_stop(&im->idle);
    im->armed = 0;
  }
  lua_pop(L, 2);
}

/* core.immediates_arm(runner, keep_alive): runner() runs each iteration
 * until it returns false; keep_alive says whether a ref'd one waits. */
static int immediates_arm(lua_State *L) {
  lc__immediates *im = immediates;

  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (im == NULL) {
    im = calloc(1, sizeof(*im));
    if (im == NULL)
      return luaL_error(L, "out of memory");
    im->owner.close = immediates_close;
    uv_check_init(&lc__rt->loop, &im->check);
    uv_idle_init(&lc__rt->loop, &im->idle);
    /* Only ref'd immediates (the idle handle) keep the loop alive. */
    uv_unref((uv_handle_t *)&im->check);
    im->open = 2;
    im->check.data = im;
    im->idle.data = im;
    lua_pushvalue(L, 1);
    im->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    immediates = im;
  }
  if (!im->armed) {
    im->armed = 1;
    uv_check_start(&im->check, on_check);
  }
  immediates_keep_alive(im, lua_toboolean(L, 2));
  return 0;
}

void lc__core_timers(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"start", timer_start},   {"stop", timer_stop},
      {"refresh", timer_refresh},   {"close", timer_close},
      {"ref", timer_ref},       {"unref", timer_unref},
      {"hasRef", timer_has_ref}, {"active", timer_active},
      {NULL, NULL}};

  if (luaL_newmetatable(L, TIMER_MT)) {
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lc__lhandle_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);

  lua_pushcfunction(L, timer_new);
  lua_setfield(L, -2, "timer");
  lua_pushcfunction(L, immediates_arm);
  lua_setfield(L, -2, "immediates_arm");
}
