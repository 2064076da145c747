/*
 * lua_timers.c - the C half of setTimeout/setInterval/setImmediate.
 *
 * core.timer() makes a Timer userdata over a uv_timer_t; lua/timers.lua
 * builds the Node functions on it. Immediates are one uv_check_t (with a
 * uv_idle_t so the loop does not block while some are queued) that calls
 * the Lua queue runner once per loop iteration.
 */
#include <stdlib.h>

#include "lua_binding.h"

typedef struct lc__timer {
  lc__lua_handle base; /* first: timer.data points here */
  uv_timer_t timer;
  uint64_t timeout; /* as last started, for refresh() */
} lc__timer;

static void timer_on_closed(uv_handle_t *handle) {
  lc__timer *t = handle->data;

  lc__lua_handle_release(&t->base);
}

static void timer_close(lc__lua_handle *h) {
  lc__timer *t = (lc__timer *)h;

  uv_close((uv_handle_t *)&t->timer, timer_on_closed);
}

static void timer_owner_close(uv_handle_t *handle) {
  lc__timer *t = handle->data;

  lc__lua_handle_close(&t->base);
}

static const lc__lua_type timer_type = {"luacluster.Timer", timer_close};

static void on_timer(uv_timer_t *handle) {
  lc__timer *t = handle->data;
  lc_runtime *rt = t->base.rt;
  lua_State *L = rt->L;

  lc__lua_push_ref(L, t->base.cb_ref);
  lc__lua_push_ref(L, t->base.self_ref);
  /* A one-shot timer is done: nothing holds it but Lua now. */
  if (uv_timer_get_repeat(handle) == 0)
    lc__lua_handle_unpin(&t->base);
  lc__lua_call(rt, 1, 0);
}

/* core.timer() -> Timer */
static int timer_new(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__timer *t = lc__lua_handle_new(L, rt, &timer_type, sizeof(lc__timer));

  t->base.owner.close = timer_owner_close;
  uv_timer_init(&rt->core.loop, &t->timer);
  t->timer.data = t;
  return 1;
}

/* timer:start(ms, repeat_ms, fn(timer)) */
static int timer_start(lua_State *L) {
  lc__timer *t = lc__lua_handle_check(L, 1, &timer_type);
  lua_Number ms = luaL_checknumber(L, 2);
  lua_Number repeat = luaL_optnumber(L, 3, 0);

  if (!(ms >= 0) || ms > 1e15)
    ms = 1;
  if (!(repeat >= 0) || repeat > 1e15)
    repeat = 0;
  if (!lua_isnoneornil(L, 4))
    lc__lua_handle_set_cb(L, &t->base, 4);
  if (t->base.cb_ref == LUA_NOREF)
    return luaL_error(L, "timer:start needs a callback");
  lc__lua_handle_pin(L, &t->base, 1);
  /* Count from now, not from the start of this loop iteration: the Lua
   * code that set the timer may have run for a while. */
  uv_update_time(t->timer.loop);
  t->timeout = (uint64_t)ms;
  uv_timer_start(&t->timer, on_timer, t->timeout, (uint64_t)repeat);
  lua_settop(L, 1);
  return 1;
}

/* timer:stop() */
static int timer_stop(lua_State *L) {
  lc__timer *t = lc__lua_handle_check(L, 1, &timer_type);

  uv_timer_stop(&t->timer);
  lc__lua_handle_unpin(&t->base);
  return 0;
}

/* timer:refresh(): starts the countdown again (Node's timeout.refresh()).
 * ref, unref and refresh on a cleared timer do nothing, as in Node. */
static int timer_refresh(lua_State *L) {
  lc__timer *t = lc__lua_handle_test(L, 1, &timer_type);

  if (t != NULL && t->base.cb_ref != LUA_NOREF) {
    lc__lua_handle_pin(L, &t->base, 1);
    uv_update_time(t->timer.loop);
    uv_timer_start(&t->timer, on_timer, t->timeout,
                   uv_timer_get_repeat(&t->timer));
  }
  lua_settop(L, 1);
  return 1;
}

/* timer:close(): idempotent, as clearTimeout is. */
static int timer_close_method(lua_State *L) {
  lc__timer *t = lc__lua_handle_test(L, 1, &timer_type);

  if (t != NULL) {
    uv_timer_stop(&t->timer);
    lc__lua_handle_unpin(&t->base);
    lc__lua_handle_close(&t->base);
  }
  return 0;
}

static int timer_ref(lua_State *L) {
  lc__timer *t = lc__lua_handle_test(L, 1, &timer_type);

  if (t != NULL)
    uv_ref((uv_handle_t *)&t->timer);
  lua_settop(L, 1);
  return 1;
}

static int timer_unref(lua_State *L) {
  lc__timer *t = lc__lua_handle_test(L, 1, &timer_type);

  if (t != NULL)
    uv_unref((uv_handle_t *)&t->timer);
  lua_settop(L, 1);
  return 1;
}

static int timer_has_ref(lua_State *L) {
  lc__timer *t = lc__lua_handle_test(L, 1, &timer_type);

  lua_pushboolean(L, t != NULL && uv_has_ref((uv_handle_t *)&t->timer));
  return 1;
}

static int timer_active(lua_State *L) {
  lc__timer *t = lc__lua_handle_test(L, 1, &timer_type);

  lua_pushboolean(L, t != NULL && uv_is_active((uv_handle_t *)&t->timer));
  return 1;
}

/* Immediates ------------------------------------------------------------ */

struct lc__immediates {
  lc__owner owner;
  uv_check_t check;
  uv_idle_t idle;
  lc_runtime *rt;
  int runner_ref;
  int armed;
  int open; /* handles not closed yet */
};

static void immediates_on_close(uv_handle_t *handle) {
  lc__immediates *im = handle->data;

  /* Two handles: the memory goes with the second. */
  if (--im->open > 0)
    return;
  lc__lua_unref(im->rt, &im->runner_ref);
  im->rt->immediates = NULL;
  free(im);
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
  lc_runtime *rt = im->rt;
  lua_State *L = rt->L;

  /* The runner returns whether immediates are still queued, and whether
   * any of those is ref'd. If one raised, the rest run next time. */
  lc__lua_push_ref(L, im->runner_ref);
  if (lc__lua_call(rt, 0, 2) != 0)
    return;
  if (rt->immediates == NULL || uv_is_closing((uv_handle_t *)&im->check)) {
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

static lc__immediates *immediates_new(lua_State *L, lc_runtime *rt) {
  lc__immediates *im = calloc(1, sizeof(*im));

  if (im == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  im->owner.close = immediates_close;
  im->rt = rt;
  uv_check_init(&rt->core.loop, &im->check);
  uv_idle_init(&rt->core.loop, &im->idle);
  /* Only ref'd immediates (the idle handle) keep the loop alive. */
  uv_unref((uv_handle_t *)&im->check);
  im->open = 2;
  im->check.data = im;
  im->idle.data = im;
  im->runner_ref = LUA_NOREF;
  lc__lua_set_ref(L, &im->runner_ref, 1);
  rt->immediates = im;
  return im;
}

/* core.immediates_arm(runner, keep_alive): runner() runs each iteration
 * until it returns false; keep_alive says whether a ref'd one waits. */
static int immediates_arm(lua_State *L) {
  lc_runtime *rt = lc__lua_rt(L);
  lc__immediates *im = rt->immediates;

  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (im == NULL)
    im = immediates_new(L, rt);
  if (!im->armed) {
    im->armed = 1;
    uv_check_start(&im->check, on_check);
  }
  immediates_keep_alive(im, lua_toboolean(L, 2));
  return 0;
}

void lc__core_timers(lua_State *L, lc_runtime *rt) {
  static const luaL_Reg methods[] = {
      {"start", timer_start},     {"stop", timer_stop},
      {"refresh", timer_refresh}, {"close", timer_close_method},
      {"ref", timer_ref},         {"unref", timer_unref},
      {"hasRef", timer_has_ref},  {"active", timer_active},
      {NULL, NULL}};
  static const luaL_Reg fns[] = {{"timer", timer_new},
                                 {"immediates_arm", immediates_arm},
                                 {NULL, NULL}};

  lc__lua_handle_class(L, rt, &timer_type, methods);
  lc__lua_register(L, rt, fns);
}
