/*
 * arena.c - bump allocator with chained blocks. Blocks grow geometrically so a request
 * that decodes into 1 MB of structs costs a handful of mallocs. Not thread-safe: one
 * arena belongs to one request at a time.
 */
#include "arena.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

typedef struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
} block_t;

typedef struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *arg;
} cleanup_t;

struct arena {
    cleanup_t *cleanups; /* run (newest first) by reset and destroy */
    block_t *head;       /* current block (first in chain) */
    block_t *first;      /* the block kept by arena_reset */
    size_t first_size;
    size_t cap;
    size_t reserved;
    size_t used;
    size_t external; /* arena_charge()d bytes, until reset */
    int over_cap;
    int over_limit;
    _Atomic int64_t *in_use; /* arena_account: process-wide bytes, or NULL */
    _Atomic int64_t *limit;
    ProtobufCAllocator pb;
};

static block_t *block_new(size_t size)
{
    block_t *b = malloc(sizeof(block_t) + size);
    if (!b) {
        return NULL;
    }
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

/* Charges n bytes to the account; -1 (over_limit set, nothing charged) when that would pass
 * a positive limit. The check and the add are two atomics: concurrent requests can overshoot
 * the limit by at most one block each, which the documented headroom covers. */
static int acct_take(arena_t *a, size_t n, int check)
{
    if (!a->in_use) {
        return 0;
    }
    int64_t lim = check ? atomic_load_explicit(a->limit, memory_order_relaxed) : 0;
    if (lim > 0 && atomic_load_explicit(a->in_use, memory_order_relaxed) + (int64_t)n > lim) {
        a->over_limit = 1;
        return -1;
    }
    atomic_fetch_add_explicit(a->in_use, (int64_t)n, memory_order_relaxed);
    return 0;
}

static void acct_give(arena_t *a, size_t n)
{
    if (a->in_use && n) {
        atomic_fetch_sub_explicit(a->in_use, (int64_t)n, memory_order_relaxed);
    }
}

static void *pb_alloc(void *ud, size_t n)
{
    return arena_alloc(ud, n);
}
static void pb_free(void *ud, void *p)
{
    (void)ud;
    (void)p;
}

arena_t *arena_create(size_t first_block, size_t cap)
{
    arena_t *a = calloc(1, sizeof(*a));
    if (!a) {
        return NULL;
    }
    if (first_block < 1024) {
        first_block = 1024;
    }
    a->first = a->head = block_new(first_block);
    if (!a->first) {
        free(a);
        return NULL;
    }
    a->first_size = first_block;
    a->reserved = first_block;
    a->cap = cap;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return a;
}

static void free_chain_except_first(arena_t *a)
{
    block_t *b = a->head;
    while (b && b != a->first) {
        block_t *n = b->next;
        free(b);
        b = n;
    }
}

static void run_cleanups(arena_t *a)
{
    cleanup_t *c = a->cleanups;
    a->cleanups = NULL;
    while (c) {
        cleanup_t *n = c->next;
        c->fn(c->arg);
        c = n;
    }
}

int arena_on_release(arena_t *a, void (*fn)(void *), void *arg)
{
    cleanup_t *c = arena_alloc(a, sizeof(*c));
    if (!c) {
        return -1;
    }
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

void arena_destroy(arena_t *a)
{
    if (!a) {
        return;
    }
    run_cleanups(a);
    free_chain_except_first(a);
    free(a->first);
    acct_give(a, a->reserved + a->external);
    free(a);
}

/* Largest first block a reset will grow to: requests that needed more give it back. */
#define ARENA_KEEP_MAX (4u << 20)

void arena_reset(arena_t *a)
{
    run_cleanups(a);
    /* If the last use needed more than the first block, make the first block that big so the
     * next request of the same shape is served from one block, without malloc/mmap churn. */
    if (a->head != a->first && a->reserved <= ARENA_KEEP_MAX) {
        size_t want = a->reserved;
        free_chain_except_first(a);
        block_t *nb = block_new(want);
        if (nb) {
            free(a->first);
            a->first = nb;
            a->first_size = want;
        }
    } else {
        free_chain_except_first(a);
    }
    /* the account follows: it held reserved + external, it now holds the first block */
    int64_t delta = (int64_t)a->first_size - (int64_t)(a->reserved + a->external);
    if (delta > 0) {
        (void)acct_take(a, (size_t)delta, 0);
    } else {
        acct_give(a, (size_t)-delta);
    }
    a->head = a->first;
    a->first->used = 0;
    a->first->next = NULL;
    a->reserved = a->first_size;
    a->external = 0;
    a->used = 0;
    a->over_cap = 0;
    a->over_limit = 0;
}

void arena_set_cap(arena_t *a, size_t cap)
{
    a->cap = cap;
}

void arena_account(arena_t *a, _Atomic int64_t *in_use, _Atomic int64_t *limit)
{
    acct_give(a, a->reserved + a->external);
    a->in_use = in_use;
    a->limit = limit;
    (void)acct_take(a, a->reserved + a->external, 0);
}

int arena_charge(arena_t *a, size_t n)
{
    if (a->cap && (n > a->cap || a->reserved + a->external > a->cap - n)) {
        a->over_cap = 1;
        return -1;
    }
    if (acct_take(a, n, 1) != 0) {
        return -1;
    }
    a->external += n;
    return 0;
}

void *arena_alloc(arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 4) {
        return NULL; /* no request is that big; refusing here keeps the arithmetic below safe */
    }
    n = (n + 15) & ~(size_t)15;
    if (n == 0) {
        n = 16;
    }
    block_t *b = a->head;
    if (b->size - b->used < n) {
        size_t sz = b->size * 2;
        if (sz < n) {
            sz = n;
        }
        if (sz > 8u << 20 && n < (8u << 20)) {
            sz = 8u << 20; /* stop doubling at 8 MiB blocks */
        }
        size_t held = a->reserved + a->external;
        if (a->cap && held + sz > a->cap) {
            if (held + n > a->cap) {
                a->over_cap = 1;
                return NULL;
            }
            sz = n;
        }
        if (acct_take(a, sz, 1) != 0) {
            return NULL;
        }
        block_t *nb = block_new(sz);
        if (!nb) {
            acct_give(a, sz);
            return NULL;
        }
        nb->next = b;
        a->head = nb;
        a->reserved += sz;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    return p;
}

void *arena_calloc(arena_t *a, size_t n)
{
    void *p = arena_alloc(a, n);
    if (p) {
        memset(p, 0, n);
    }
    return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

size_t arena_used(const arena_t *a)
{
    return a->used;
}
size_t arena_reserved(const arena_t *a)
{
    return a->reserved;
}
int arena_over_cap(const arena_t *a)
{
    return a->over_cap;
}
int arena_over_limit(const arena_t *a)
{
    return a->over_limit;
}
int arena_accounted(const arena_t *a)
{
    return a->in_use != NULL;
}
ProtobufCAllocator *arena_pb_allocator(arena_t *a)
{
    return &a->pb;
}

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static void thread_key_dtor(void *p)
{
    arena_destroy(p);
}
static void thread_key_init(void)
{
    pthread_key_create(&thread_key, thread_key_dtor);
}

arena_t *arena_thread(void)
{
    pthread_once(&thread_once, thread_key_init);
    arena_t *a = pthread_getspecific(thread_key);
    if (!a) {
        a = arena_create(256 * 1024, 0);
        pthread_setspecific(thread_key, a);
    }
    return a;
}

void arena_thread_release(arena_t *a)
{
    /* keep one modest arena per thread; give back what a huge request needed */
    if (arena_reserved(a) > (4u << 20)) {
        arena_destroy(a);
        pthread_setspecific(thread_key, NULL);
    } else {
        arena_reset(a);
    }
}
