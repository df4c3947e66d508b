/*
 * iotdisco_lua.c: the Lua 5.4 binding of libiotdisco_ffi, for Prosody's
 * mod_iotdisco (and any other Lua host).
 *
 * `require "iotdisco"` returns a table with `open`, `version` and the return
 * codes of include/iotdisco.h (`OK`, `NOT_MINE`, `EINVAL`, `ESTORAGE`,
 * `EPANIC`, ...). `open(jid, db_path|nil, options|nil)` returns a registry
 * userdata (or nil, message, code) whose methods are
 *
 *   reg:handle(stanza, now_ms)             -> code, {stanza, ...}, err|nil
 *   reg:presence(full_jid, available, now_ms) -> code, {stanza, ...}, err|nil
 *   reg:tick(now_ms)                        -> code, {stanza, ...}, err|nil
 *   reg:next_deadline()                     -> ms | nil (nothing waits)
 *   reg:close()                             (also run by __gc and __close)
 *
 * The table holds, in order, every stanza the engine asked to send during the
 * call; `err` is iotdisco_last_error() when `code` is not OK (NOT_MINE and
 * DROPPED may say why too). Misuse (wrong argument types, a negative time, a
 * closed registry) raises a Lua error.
 *
 * Memory: the send callback runs inside Rust frames, so it must never raise a
 * Lua error (a longjmp across them is undefined behaviour). It therefore only
 * copies the stanza bytes into a C buffer owned by a small "outbox" userdata;
 * after the library call returns, the bytes are turned into Lua strings. The
 * outbox's __gc frees the buffer, so nothing leaks even when building the
 * Lua table runs out of memory. The registry is closed exactly once: by
 * reg:close(), by a to-be-closed variable's __close, or by __gc.
 *
 * Build (see README.md):
 *   gcc -shared -fPIC -O2 -I/usr/include/lua5.4 -Iinclude \
 *       ffi/prosody/iotdisco_lua.c target/release/libiotdisco_ffi.a \
 *       -Wl,--exclude-libs,ALL -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc \
 *       -o iotdisco.so
 * Do not link liblua: the host interpreter provides the Lua API.
 */

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "iotdisco.h"

#define REGISTRY_MT "iotdisco.registry"
#define OUTBOX_MT "iotdisco.outbox"

/* The registry userdata: NULL once closed. */
typedef struct {
    iotdisco_registry *reg;
} lregistry;

/*
 * Stanzas emitted during one library call: their bytes back to back in
 * `buf`, stanza i ending at ends[i]. `oom` is set when a copy could not be
 * made (the stanza is then lost and the call reports an error).
 */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *ends;
    size_t n, ncap;
    int oom;
} outbox;

/* The iotdisco_send_fn: copies one stanza; never touches the Lua state. */
static void collect(void *user, const char *stanza, size_t len)
{
    outbox *o = (outbox *)user;
    if (o->oom || (stanza == NULL && len > 0))
        return;
    if (o->n == o->ncap) {
        if (o->ncap > SIZE_MAX / 2 / sizeof *o->ends) {
            o->oom = 1;
            return;
        }
        size_t ncap = o->ncap ? o->ncap * 2 : 4;
        size_t *ends = realloc(o->ends, ncap * sizeof *ends);
        if (ends == NULL) {
            o->oom = 1;
            return;
        }
        o->ends = ends;
        o->ncap = ncap;
    }
    if (len > o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 1024;
        while (len > cap - o->len) {
            if (cap > SIZE_MAX / 2) {
                o->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *buf = realloc(o->buf, cap);
        if (buf == NULL) {
            o->oom = 1;
            return;
        }
        o->buf = buf;
        o->cap = cap;
    }
    if (len > 0)
        memcpy(o->buf + o->len, stanza, len);
    o->len += len;
    o->ends[o->n++] = o->len;
}

/* Frees an outbox's buffers now; its __gc then has nothing left to do. */
static void outbox_release(outbox *o)
{
    free(o->buf);
    free(o->ends);
    memset(o, 0, sizeof *o);
}

static int outbox_gc(lua_State *L)
{
    outbox_release((outbox *)luaL_checkudata(L, 1, OUTBOX_MT));
    return 0;
}

/* Pushes a fresh, empty outbox userdata and returns it. */
static outbox *push_outbox(lua_State *L)
{
    outbox *o = (outbox *)lua_newuserdatauv(L, sizeof(outbox), 0);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, OUTBOX_MT);
    return o;
}

static const char *last_error(void)
{
    const char *e = iotdisco_last_error();
    return (e != NULL && *e != '\0') ? e : "unknown error";
}

/*
 * Finishes a handle/presence/tick call whose stanzas are in `o` (a userdata
 * on the stack, so a Lua error below still frees it through __gc). Pushes the
 * code, the table of stanzas and the error message (or nil).
 */
static int finish(lua_State *L, outbox *o, int code)
{
    if (o->oom) {
        /* The engine already acted on the stanza; what it emitted is lost. */
        outbox_release(o);
        return luaL_error(L, "iotdisco: out of memory copying emitted stanzas");
    }
    lua_pushinteger(L, code);
    /*
     * Copy the message first: building the table may run the garbage
     * collector, whose __gc of another registry calls iotdisco_close, which
     * replaces this thread's last error.
     */
    const char *err = code != IOTDISCO_OK ? iotdisco_last_error() : NULL;
    if (err != NULL && *err != '\0')
        lua_pushstring(L, err);
    else
        lua_pushnil(L);
    lua_createtable(L, o->n > INT_MAX ? INT_MAX : (int)o->n, 0);
    size_t start = 0;
    for (size_t i = 0; i < o->n; i++) {
        lua_pushlstring(L, o->buf + start, o->ends[i] - start);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        start = o->ends[i];
    }
    lua_insert(L, -2); /* code, stanzas, err */
    outbox_release(o);
    return 3;
}

static lregistry *check_registry(lua_State *L)
{
    lregistry *r = (lregistry *)luaL_checkudata(L, 1, REGISTRY_MT);
    if (r->reg == NULL)
        luaL_error(L, "iotdisco: the registry is closed");
    return r;
}

static uint64_t check_now(lua_State *L, int arg)
{
    lua_Integer now = luaL_checkinteger(L, arg);
    luaL_argcheck(L, now >= 0, arg, "time must not be negative");
    return (uint64_t)now;
}

/* A string argument that must not contain NUL bytes (it is passed as a C string). */
static const char *check_cstring(lua_State *L, int arg)
{
    size_t len;
    const char *s = luaL_checklstring(L, arg, &len);
    luaL_argcheck(L, strlen(s) == len, arg, "must not contain NUL bytes");
    return s;
}

static const char *opt_cstring(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return NULL;
    return check_cstring(L, arg);
}

/* iotdisco.open(jid, db_path|nil, options|nil) -> registry | nil, message, code */
static int l_open(lua_State *L)
{
    const char *jid = check_cstring(L, 1);
    const char *db_path = opt_cstring(L, 2);
    const char *options = opt_cstring(L, 3);
    /* Allocate the userdata first: if that fails nothing is open yet. */
    lregistry *r = (lregistry *)lua_newuserdatauv(L, sizeof(lregistry), 0);
    r->reg = NULL;
    luaL_setmetatable(L, REGISTRY_MT);
    iotdisco_registry *reg = NULL;
    int code = iotdisco_open(jid, db_path, options, &reg);
    if (code != IOTDISCO_OK || reg == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, last_error());
        lua_pushinteger(L, code);
        return 3;
    }
    r->reg = reg;
    return 1;
}

/* reg:handle(stanza, now_ms) -> code, {stanzas}, err|nil */
static int l_handle(lua_State *L)
{
    lregistry *r = check_registry(L);
    size_t len;
    const char *stanza = luaL_checklstring(L, 2, &len);
    uint64_t now = check_now(L, 3);
    outbox *o = push_outbox(L);
    int code = iotdisco_handle(r->reg, stanza, len, now, collect, o);
    return finish(L, o, code);
}

/* reg:presence(full_jid, available, now_ms) -> code, {stanzas}, err|nil */
static int l_presence(lua_State *L)
{
    lregistry *r = check_registry(L);
    const char *jid = check_cstring(L, 2);
    luaL_checkany(L, 3);
    int available = lua_toboolean(L, 3);
    uint64_t now = check_now(L, 4);
    outbox *o = push_outbox(L);
    int code = iotdisco_presence(r->reg, jid, available, now, collect, o);
    return finish(L, o, code);
}

/* reg:forget_presence(jid) -> code, err|nil: the thing unsubscribed; its
 * presence is unknown again (no stanza is ever sent). */
static int l_forget_presence(lua_State *L)
{
    lregistry *r = check_registry(L);
    const char *jid = check_cstring(L, 2);
    int code = iotdisco_forget_presence(r->reg, jid);
    lua_pushinteger(L, code);
    if (code == IOTDISCO_OK)
        lua_pushnil(L);
    else
        lua_pushstring(L, last_error());
    return 2;
}

/* reg:tick(now_ms) -> code, {stanzas}, err|nil */
static int l_tick(lua_State *L)
{
    lregistry *r = check_registry(L);
    uint64_t now = check_now(L, 2);
    outbox *o = push_outbox(L);
    int code = iotdisco_tick(r->reg, now, collect, o);
    return finish(L, o, code);
}

/* reg:next_deadline() -> ms | nil: when reg:tick should next run (nil: nothing waits). */
static int l_next_deadline(lua_State *L)
{
    lregistry *r = check_registry(L);
    uint64_t deadline = IOTDISCO_NO_DEADLINE;
    int code = iotdisco_next_deadline(r->reg, &deadline);
    if (code != IOTDISCO_OK)
        return luaL_error(L, "iotdisco: next_deadline failed (code %d): %s", code, last_error());
    if (deadline == IOTDISCO_NO_DEADLINE || deadline > (uint64_t)LUA_MAXINTEGER)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)deadline);
    return 1;
}

/* reg:close(): closes the registry (flushes a durable one); idempotent. */
static int l_close(lua_State *L)
{
    lregistry *r = (lregistry *)luaL_checkudata(L, 1, REGISTRY_MT);
    if (r->reg != NULL) {
        iotdisco_registry *reg = r->reg;
        r->reg = NULL;
        iotdisco_close(reg);
    }
    return 0;
}

static int l_tostring(lua_State *L)
{
    lregistry *r = (lregistry *)luaL_checkudata(L, 1, REGISTRY_MT);
    lua_pushfstring(L, "iotdisco.registry (%s)", r->reg ? "open" : "closed");
    return 1;
}

/* iotdisco.version() -> string */
static int l_version(lua_State *L)
{
    const char *v = iotdisco_version();
    lua_pushstring(L, v != NULL ? v : "unknown");
    return 1;
}

static const luaL_Reg registry_methods[] = {
    {"handle", l_handle},
    {"presence", l_presence},
    {"forget_presence", l_forget_presence},
    {"tick", l_tick},
    {"next_deadline", l_next_deadline},
    {"close", l_close},
    {NULL, NULL},
};

static const luaL_Reg registry_meta[] = {
    {"__gc", l_close},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"open", l_open},
    {"version", l_version},
    {NULL, NULL},
};

int luaopen_iotdisco(lua_State *L)
{
    luaL_checkversion(L);

    luaL_newmetatable(L, OUTBOX_MT);
    lua_pushcfunction(L, outbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, REGISTRY_MT);
    luaL_setfuncs(L, registry_meta, 0);
    luaL_newlib(L, registry_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newlib(L, functions);
    static const struct {
        const char *name;
        int value;
    } codes[] = {
        {"OK", IOTDISCO_OK},
        {"NOT_MINE", IOTDISCO_NOT_MINE},
        {"EINVAL", IOTDISCO_EINVAL},
        {"ESTORAGE", IOTDISCO_ESTORAGE},
        {"EPANIC", IOTDISCO_EPANIC},
        {"DROPPED", IOTDISCO_DROPPED},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        lua_pushinteger(L, codes[i].value);
        lua_setfield(L, -2, codes[i].name);
    }
    return 1;
}
