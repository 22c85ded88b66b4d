/*
 * recv.c - shared receiver scaffolding: lock-free request counters and the access decision
 * (authentication, then the one tenant rule).
 * See recv.h.
 */
#include "recv.h"
#include "auth.h"

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

recv_tenant_t recv_tenant(const char *org, const char *bound, char out[MT_TENANT_MAX + 1])
{
    int has_bound = bound && *bound;
    if (!org || !*org) {
        if (!has_bound) {
            return RECV_TENANT_NONE;
        }
        snprintf(out, MT_TENANT_MAX + 1, "%s", bound);
        return RECV_TENANT_OK;
    }
    if (!auth_tenant_valid(org)) {
        return RECV_TENANT_BAD;
    }
    if (has_bound && strcmp(org, bound) != 0) {
        return RECV_TENANT_FORBIDDEN;
    }
    memcpy(out, org, strlen(org) + 1);
    return RECV_TENANT_OK;
}

int recv_access(const extension_t *auth, const char *authorization, const char *org,
                const char *peer_tenant, recv_access_t *a)
{
    memset(a, 0, sizeof(*a));
    auth_verdict_t v = {0, ""};
    if (auth) {
        auth_server_check(auth, authorization, &v);
        if (!v.ok) {
            a->status = 401, a->grpc_code = 16, a->reason = "unauthenticated";
            a->challenge = auth_challenge(auth);
            a->msg = authorization ? "invalid credentials" : "credentials required";
            return 0;
        }
    }
    const char *bound = v.tenant;
    if (peer_tenant && *peer_tenant) {
        if (*bound && strcmp(bound, peer_tenant) != 0) {
            a->status = 403, a->grpc_code = 7, a->reason = "tenant_forbidden";
            a->msg = "the credentials and the certificate are bound to different tenants";
            return 0;
        }
        bound = peer_tenant;
    }
    switch (recv_tenant(org, bound, a->tenant)) {
    case RECV_TENANT_BAD:
        a->status = 400, a->grpc_code = 3, a->reason = "bad_tenant", a->msg = RECV_TENANT_ERR;
        return 0;
    case RECV_TENANT_FORBIDDEN:
        a->status = 403, a->grpc_code = 7, a->reason = "tenant_forbidden";
        a->msg = RECV_TENANT_FORBIDDEN_ERR;
        return 0;
    default:
        a->status = 200;
        return 1;
    }
}

int recv_http_access(const extension_t *auth, http_req_t *r, recv_access_t *a)
{
    /* r->bound_tenant: the tenant an mTLS certificate maps to (tls.tenants_from_certificate) */
    int ok = recv_access(auth, http_header(r, "Authorization"), http_header(r, "X-Scope-OrgID"),
                         r->bound_tenant, a);
    if (ok) {
        memcpy(r->tenant, a->tenant, sizeof(r->tenant));
    } else {
        r->challenge = a->challenge;
    }
    return ok;
}

void recv_server_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *prefix,
                       const char *endpoint, int64_t max_body, int64_t max_decoded, int64_t threads,
                       tls_server_cfg_t *tls)
{
    char host[256], key[96];
    int port;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (http_parse_endpoint(endpoint, host, sizeof(host), &port, &eb) != MT_OK) {
        snprintf(key, sizeof(key), "%sendpoint", prefix);
        cfg_error_key(c, node, path, key, "%s", eb.msg);
    }
    if (max_body <= 0) {
        snprintf(key, sizeof(key), "%smax_request_body_size", prefix);
        cfg_error_key(c, node, path, key, "must be positive");
    }
    recv_tls_check(c, node, path, prefix, tls);
    if (max_decoded < 0) {
        snprintf(key, sizeof(key), "%smax_decoded_size", prefix);
        cfg_error_key(c, node, path, key, "must be >= 0");
    }
    if (threads < 1 || threads > 64) {
        snprintf(key, sizeof(key), "%sthreads", prefix);
        cfg_error_key(c, node, path, key, "must be 1..64");
    }
}

void recv_tls_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *prefix,
                    tls_server_cfg_t *tls)
{
    tls_server_cfg_check(c, node, path, prefix, tls);
    for (size_t i = 0; i < tls->tenants_from_certificate.n; i++) {
        char out[MT_TENANT_MAX + 1];
        if (recv_tenant(tls->tenants_from_certificate.vals[i], NULL, out) != RECV_TENANT_OK) {
            char key[256];
            snprintf(key, sizeof(key), "%stls.tenants_from_certificate.%s", prefix,
                     tls->tenants_from_certificate.keys[i]);
            cfg_error_key(c, node, path, key, "\"%s\" is not a valid tenant id %s",
                          tls->tenants_from_certificate.vals[i], strchr(RECV_TENANT_ERR, '('));
        }
    }
}

int recv_http_start(receiver_t *rv, http_server_t **srv, const char *endpoint, int64_t threads,
                    int64_t max_body, const tls_server_cfg_t *tls, const http_handler_t *h,
                    mt_errbuf_t *eb)
{
    char name[160];
    snprintf(name, sizeof(name), "receiver %s", rv->id);
    *srv = http_server_listen(endpoint, (int)threads, (size_t)max_body, h, tls, name, eb);
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
