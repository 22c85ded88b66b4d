/*
 * listener.c - see listener.h. The registry is a short list (one entry per listening
 * address) under one mutex, touched only when services start and stop. The request path
 * takes the listener's read lock for two instructions (load the active binding, count the
 * request on it), so the swap is atomic for requests: each runs entirely on the handler it
 * began with. A replaced binding is waited for by polling its count (1 ms steps, on the main
 * thread, during a reload only): a condition variable would have to outlive the binding for
 * the last request to signal it safely, which is more machinery than a reload deserves.
 */
#include "listener.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct listener_binding {
    listener_t *l;
    void *handler;
    _Atomic int refs; /* requests running on this handler */
};

struct listener {
    char *key;
    void *impl;
    listener_close_fn close;
    int refs;    /* components holding it (registry mutex) */
    int claimed; /* found by this reload's stage: one successor per address */
    pthread_rwlock_t lk;
    listener_binding_t *active, *staged;
    listener_t *next;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static listener_t *reg_head;
static int staging;

listener_t *listener_add(const char *key, void *impl, listener_close_fn close)
{
    listener_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->key = strdup(key))) {
        free(l);
        return NULL;
    }
    l->impl = impl;
    l->close = close;
    l->refs = 1;
    pthread_rwlock_init(&l->lk, NULL);
    pthread_mutex_lock(&reg_mu);
    l->next = reg_head;
    reg_head = l;
    pthread_mutex_unlock(&reg_mu);
    return l;
}

listener_t *listener_add_bound(const char *key, void *impl, listener_close_fn close, void *owner,
                               listener_binding_t **b, mt_errbuf_t *eb)
{
    listener_t *l = listener_add(key, impl, close);
    if (!l) {
        mt_failf(eb, "out of memory");
        close(impl);
        return NULL;
    }
    *b = listener_bind(l, owner);
    if (!*b) {
        mt_failf(eb, "out of memory");
        listener_put(l); /* the last reference: closes impl */
        return NULL;
    }
    return l;
}

int listener_keep(const char *key, int port, listener_keep_fn keep, void *arg, void *owner,
                  listener_t **l, listener_binding_t **b, mt_errbuf_t *eb)
{
    *l = port != 0 ? listener_find(key) : NULL;
    if (!*l) {
        return MT_OK;
    }
    int rc = keep((*l)->impl, arg, eb);
    if (rc == MT_OK && !(*b = listener_bind(*l, owner))) {
        mt_failf(eb, "out of memory");
        rc = MT_ENOMEM;
    }
    if (rc != MT_OK) {
        listener_put(*l);
        *l = NULL;
    }
    return rc;
}

listener_t *listener_find(const char *key)
{
    listener_t *found = NULL;
    pthread_mutex_lock(&reg_mu);
    for (listener_t *l = reg_head; staging && l; l = l->next) {
        if (strcmp(l->key, key) == 0) {
            pthread_rwlock_rdlock(&l->lk);
            int free_slot = l->active && !l->staged && !l->claimed;
            pthread_rwlock_unlock(&l->lk);
            if (free_slot) {
                l->refs++;
                l->claimed = 1;
                found = l;
            }
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return found;
}

/* Drops a reference; returns nonzero when it was the last (l is out of the registry). */
static int drop_ref(listener_t *l)
{
    pthread_mutex_lock(&reg_mu);
    int last = --l->refs == 0;
    if (last) {
        for (listener_t **pp = &reg_head; *pp; pp = &(*pp)->next) {
            if (*pp == l) {
                *pp = l->next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return last;
}

static void close_free(listener_t *l)
{
    /* the server's threads end in close(): no request runs or enters after it */
    l->close(l->impl);
    pthread_rwlock_destroy(&l->lk);
    free(l->key);
    free(l);
}

void listener_put(listener_t *l)
{
    if (l && drop_ref(l)) {
        close_free(l);
    }
}

void listener_release(listener_binding_t *b)
{
    if (!b) {
        return;
    }
    listener_t *l = b->l;
    if (drop_ref(l)) {
        /* the last user: closing the server ends its requests (they leave b), then b goes */
        close_free(l);
        free(b);
        return;
    }
    listener_unbind(b);
}

void *listener_impl(const listener_t *l)
{
    return l->impl;
}

const char *listener_key(const listener_t *l)
{
    return l->key;
}

listener_binding_t *listener_bind(listener_t *l, void *handler)
{
    listener_binding_t *b = calloc(1, sizeof(*b));
    if (!b) {
        return NULL;
    }
    b->l = l;
    b->handler = handler;
    pthread_rwlock_wrlock(&l->lk);
    if (!l->active) {
        l->active = b;
    } else {
        l->staged = b;
    }
    pthread_rwlock_unlock(&l->lk);
    return b;
}

void listener_unbind(listener_binding_t *b)
{
    if (!b) {
        return;
    }
    listener_t *l = b->l;
    pthread_rwlock_wrlock(&l->lk);
    if (l->staged == b) {
        l->staged = NULL;
    }
    if (l->active == b) {
        l->active = NULL;
    }
    pthread_rwlock_unlock(&l->lk);
    /* from here on no request can enter b: wait for those inside */
    while (atomic_load(&b->refs) > 0) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    free(b);
}

void *listener_enter(listener_t *l, listener_binding_t **held)
{
    pthread_rwlock_rdlock(&l->lk);
    listener_binding_t *b = l->active;
    if (b) {
        atomic_fetch_add(&b->refs, 1);
    }
    pthread_rwlock_unlock(&l->lk);
    *held = b;
    return b ? b->handler : NULL;
}

void listener_leave(listener_binding_t *held)
{
    if (held) {
        atomic_fetch_sub(&held->refs, 1);
    }
}

void listener_stage_begin(void)
{
    pthread_mutex_lock(&reg_mu);
    staging = 1;
    pthread_mutex_unlock(&reg_mu);
}

void listener_stage_commit(void)
{
    pthread_mutex_lock(&reg_mu);
    for (listener_t *l = reg_head; l; l = l->next) {
        pthread_rwlock_wrlock(&l->lk);
        if (l->staged) {
            l->active = l->staged; /* the old one is waited for by its owner's unbind */
            l->staged = NULL;
        }
        pthread_rwlock_unlock(&l->lk);
    }
    pthread_mutex_unlock(&reg_mu);
}

void listener_stage_end(void)
{
    pthread_mutex_lock(&reg_mu);
    staging = 0;
    for (listener_t *l = reg_head; l; l = l->next) {
        l->claimed = 0;
    }
    pthread_mutex_unlock(&reg_mu);
}

size_t listener_count(void)
{
    size_t n = 0;
    pthread_mutex_lock(&reg_mu);
    for (listener_t *l = reg_head; l; l = l->next) {
        n++;
    }
    pthread_mutex_unlock(&reg_mu);
    return n;
}
