/*
 * recv.c - shared receiver scaffolding: per-thread arenas, lock-free request counters, the
 * tenant check. See recv.h.
 */
#include "recv.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

_Static_assert(MT_TENANT_MAX == 63, "RECV_TENANT_ERR names the limit");

#define RECV_ARENA_SIZE (256 * 1024)
#define RECV_ARENA_KEEP (4u << 20)

void recv_counters_init(recv_counters_t *c, const char *labels)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->labels, sizeof(c->labels), "%s", labels);
}

void recv_count_code(recv_counters_t *c, int code)
{
    if (code < RECV_CODE_MIN || code > RECV_CODE_MAX) {
        code = 500;
    }
    _Atomic(tm_counter_t *) *slot = &c->by_code[code - RECV_CODE_MIN];
    tm_counter_t *t = atomic_load_explicit(slot, memory_order_acquire);
    if (!t) {
        /* first request with this code: the registry (under its mutex) returns the same
         * counter to every thread that races here */
        char lb[sizeof(c->labels) + 16];
        snprintf(lb, sizeof(lb), "%s,code=\"%d\"", c->labels, code);
        t = tm_counter("meltp_receiver_requests_total", "HTTP requests by status code.", lb);
        atomic_store_explicit(slot, t, memory_order_release);
    }
    tm_add(t, 1);
}

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static void arena_key_dtor(void *p) { arena_destroy(p); }
static void arena_key_init(void) { pthread_key_create(&arena_key, arena_key_dtor); }

arena_t *recv_arena(void)
{
    pthread_once(&arena_once, arena_key_init);
    arena_t *a = pthread_getspecific(arena_key);
    if (!a) {
        a = arena_create(RECV_ARENA_SIZE, 0);
        pthread_setspecific(arena_key, a);
    }
    return a;
}

void recv_arena_done(arena_t *a)
{
    if (!a) {
        return;
    }
    if (arena_reserved(a) > RECV_ARENA_KEEP) {
        arena_destroy(a);
        pthread_setspecific(arena_key, NULL);
    } else {
        arena_reset(a);
    }
}

recv_tenant_t recv_tenant(const char *org, char out[MT_TENANT_MAX + 1])
{
    size_t n = org ? strlen(org) : 0;
    if (n == 0) {
        return RECV_TENANT_NONE;
    }
    if (n > MT_TENANT_MAX ||
        strspn(org, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()|") != n ||
        strcmp(org, ".") == 0 || strcmp(org, "..") == 0) {
        return RECV_TENANT_BAD;
    }
    memcpy(out, org, n + 1);
    return RECV_TENANT_OK;
}
