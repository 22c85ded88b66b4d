/*
 * recv.c - shared receiver scaffolding: lock-free request counters and the tenant check.
 * See recv.h.
 */
#include "recv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(MT_TENANT_MAX == 63, "RECV_TENANT_ERR names the limit");

void recv_counters_init(recv_counters_t *c, const char *labels, const char *receiver_id)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->labels, sizeof(c->labels), "%s", labels);
    snprintf(c->rlabels, sizeof(c->rlabels), "receiver=\"%s\"", receiver_id);
    pthread_mutex_init(&c->mu, NULL);
    c->items_in = tm_counter("meltp_receiver_received_items_total",
                             "Items decoded from valid requests.", labels);
    c->items_ok = tm_counter("meltp_receiver_accepted_items_total",
                             "Items acknowledged to the client.", labels);
    c->bytes = tm_counter("meltp_receiver_received_bytes_total",
                          "Request body bytes received (on the wire).", labels);
}

void recv_counters_init_transport(recv_counters_t *c, const char *labels, const char *receiver_id,
                                  const char *transport)
{
    recv_counters_init(c, labels, receiver_id);
    snprintf(c->rlabels, sizeof(c->rlabels), "receiver=\"%s\",transport=\"%s\"", receiver_id,
             transport);
}

void recv_counters_fini(recv_counters_t *c)
{
    pthread_mutex_destroy(&c->mu);
}

static tm_counter_t *code_counter(recv_counters_t *c, int code)
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
    return t;
}

static void recv_count_items_in(recv_counters_t *c, recv_reason_t *s, const char *reason,
                                uint64_t items, bool items_too);

static const char H_REQ[] = "Requests refused, by reason.";
static const char H_ITEMS[] = "Items refused (not acknowledged), by reason.";

static tm_counter_t *reason_counter(const char *name, const char *help, const char *labels,
                                    const char *reason)
{
    char lb[320];
    snprintf(lb, sizeof(lb), "%s,reason=\"%s\"", labels, reason);
    return tm_counter(name, help, lb);
}

/* The cached slot of a reason, inserting it on first use; NULL when the cache is full. */
static recv_reason_t *reason_slot(recv_counters_t *c, const char *reason, bool items_too)
{
    for (int i = 0; i < RECV_REASONS; i++) {
        const char *r = atomic_load_explicit(&c->reasons[i].reason, memory_order_acquire);
        if (r == reason) {
            return &c->reasons[i];
        }
        if (!r) {
            break;
        }
    }
    recv_reason_t *slot = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < RECV_REASONS && !slot; i++) {
        recv_reason_t *s = &c->reasons[i];
        const char *r = atomic_load_explicit(&s->reason, memory_order_relaxed);
        if (r == reason) {
            slot = s;
        } else if (!r) {
            if (items_too) { /* registered first, as the receivers always did */
                atomic_store_explicit(&s->items,
                                      reason_counter("meltp_receiver_refused_items_total", H_ITEMS,
                                                     c->labels, reason),
                                      memory_order_relaxed);
            }
            s->requests =
                reason_counter("meltp_receiver_refused_requests_total", H_REQ, c->rlabels, reason);
            atomic_store_explicit(&s->reason, reason, memory_order_release);
            slot = s;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return slot;
}

void recv_count(recv_counters_t *c, int code, const char *reason, uint64_t items, bool items_too)
{
    tm_add(code_counter(c, code), 1);
    if (!reason) {
        return;
    }
    recv_reason_t *s = reason_slot(c, reason, items_too);
    recv_count_items_in(c, s, reason, items, items_too);
    if (s) {
        tm_add(s->requests, 1);
    } else {
        tm_count_reason("meltp_receiver_refused_requests_total", H_REQ, c->rlabels, reason, 1);
    }
}

void recv_count_items(recv_counters_t *c, const char *reason, uint64_t items)
{
    recv_count_items_in(c, reason_slot(c, reason, true), reason, items, true);
}

static void recv_count_items_in(recv_counters_t *c, recv_reason_t *s, const char *reason,
                                uint64_t items, bool items_too)
{
    if (!items_too) {
        return;
    }
    if (!s) {
        tm_count_reason("meltp_receiver_refused_items_total", H_ITEMS, c->labels, reason, items);
        return;
    }
    tm_counter_t *t = atomic_load_explicit(&s->items, memory_order_acquire);
    if (!t) {
        t = reason_counter("meltp_receiver_refused_items_total", H_ITEMS, c->labels, reason);
        atomic_store_explicit(&s->items, t, memory_order_release);
    }
    tm_add(t, items);
}

arena_t *recv_arena(size_t cap)
{
    arena_t *a = arena_thread();
    if (!a) {
        return NULL;
    }
    if (!arena_accounted(a)) { /* a new thread arena: charged from now on */
        arena_account(a, &mt_mem_in_use, &mt_mem_limit);
    }
    arena_set_cap(a, cap);
    return a;
}

size_t recv_decode_cap(int64_t max_decoded, int64_t max_body)
{
    if (max_decoded > 0) {
        return (size_t)max_decoded;
    }
    return max_body > 0 ? (size_t)max_body * RECV_DECODE_RATIO : 0;
}

void recv_decode_refusal(const arena_t *a, size_t cap, int *status, const char **reason, char *msg,
                         size_t msgcap)
{
    if (a && arena_over_cap(a)) {
        *status = 413;
        *reason = "decode_limit";
        snprintf(msg, msgcap,
                 "decoding this request needs more than max_decoded_size (%zu bytes); "
                 "send smaller requests",
                 cap);
    } else if (a && arena_over_limit(a)) {
        *status = 503;
        *reason = "memory_limit";
        snprintf(msg, msgcap,
                 "memory limit reached while decoding (%lld bytes in use); retry later",
                 (long long)atomic_load(&mt_mem_in_use));
    } else {
        *status = 503;
        *reason = "out_of_memory";
        snprintf(msg, msgcap, "out of memory");
    }
}

void recv_arena_done(arena_t *a)
{
    if (a) {
        arena_thread_release(a);
    }
}

recv_tenant_t recv_tenant(const char *org, char out[MT_TENANT_MAX + 1])
{
    size_t n = org ? strlen(org) : 0;
    if (n == 0) {
        return RECV_TENANT_NONE;
    }
    if (n > MT_TENANT_MAX ||
        strspn(org, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()|") !=
            n ||
        strcmp(org, ".") == 0 || strcmp(org, "..") == 0) {
        return RECV_TENANT_BAD;
    }
    memcpy(out, org, n + 1);
    return RECV_TENANT_OK;
}

int recv_http_start(receiver_t *rv, http_server_t **srv, const char *endpoint, int64_t threads,
                    int64_t max_body, const http_handler_t *h, mt_errbuf_t *eb)
{
    *srv = http_server_start(endpoint, (int)threads, (size_t)max_body, h, eb);
    if (!*srv) {
        free(rv->state);
        rv->state = NULL;
        return MT_ERR;
    }
    return MT_OK;
}

void recv_http_stop(receiver_t *rv, http_server_t *srv, recv_counters_t *cnt, int ncnt)
{
    http_server_stop(srv);
    for (int i = 0; i < ncnt; i++) {
        recv_counters_fini(&cnt[i]);
    }
    free(rv->state);
    rv->state = NULL;
}
