/*
 * recv.h - the scaffolding every receiver shares: the request counters (resolved once, bumped
 * lock-free) and the one tenant check. The per-thread decode arena is arena_thread() (arena.h).
 *
 * Tenant policy (every receiver, every transport): a request without X-Scope-OrgID has no
 * tenant; one whose X-Scope-OrgID is not a valid tenant id is refused with 400 "bad_tenant"
 * and never reaches a queue. A valid id follows Loki's and Mimir's rules: 1 to MT_TENANT_MAX
 * letters, digits and ! - _ . * ' ( ), and not "." or ".." (auth_tenant_valid). Credentials
 * bound to a tenant (bearertokenauth `tenants`) give requests without the header that tenant
 * and refuse any other with 403 "tenant_forbidden": recv_tenant / recv_access below.
 */
#ifndef RECV_H
#define RECV_H

#include "arena.h"
#include "auth.h"
#include "component.h"
#include "server.h"
#include "telemetry.h"
#include "tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* HTTP status codes a receiver can answer: 100..599 */
#define RECV_CODE_MIN 100
#define RECV_CODE_MAX 599

#define RECV_REASONS 24 /* refusal reasons cached per label set (more fall back to the registry) */

/* One refusal reason's counters. `reason` is the string literal the receiver passes; it is
 * published last, so a reader that sees it sees the counters. */
typedef struct recv_reason {
    _Atomic(const char *) reason;
    tm_counter_t *requests;        /* meltp_receiver_refused_requests_total{receiver,reason} */
    _Atomic(tm_counter_t *) items; /* meltp_receiver_refused_items_total{<labels>,reason} */
} recv_reason_t;

/* A receiver's request counters for one label set (receiver="id"[,signal="s"]): each code's
 * and each reason's counters are looked up in the registry on first use only, then published
 * for lock-free bumps; the data path takes no global lock. */
typedef struct recv_counters {
    tm_counter_t *items_in; /* meltp_receiver_received_items_total: decoded from valid requests */
    tm_counter_t *items_ok; /* meltp_receiver_accepted_items_total: acknowledged */
    tm_counter_t *bytes;    /* meltp_receiver_received_bytes_total: bodies as on the wire */
    char labels[160];       /* receiver="id",signal="s" */
    char rlabels[96];       /* receiver="id" */
    _Atomic(tm_counter_t *) by_code[RECV_CODE_MAX - RECV_CODE_MIN + 1];
    recv_reason_t reasons[RECV_REASONS];
    pthread_mutex_t mu; /* inserts into reasons[] only */
} recv_counters_t;

void recv_counters_init(recv_counters_t *c, const char *labels, const char *receiver_id);
/* The same for one transport of a receiver with several (refused_requests_total gets
 * transport="<transport>" beside receiver="id"; labels carry it already). */
void recv_counters_init_transport(recv_counters_t *c, const char *labels, const char *receiver_id,
                                  const char *transport);
void recv_counters_fini(recv_counters_t *c);
/* One answered request: meltp_receiver_requests_total{code}; with a reason (a string
 * literal) also refused_requests_total{reason} and, when items_too, refused_items_total. */
void recv_count(recv_counters_t *c, int code, const char *reason, uint64_t items, bool items_too);
/* refused_items_total{<labels>,reason} += items, for a request already counted. */
void recv_count_items(recv_counters_t *c, const char *reason, uint64_t items);

/* The calling HTTP thread's decode arena (created on first use; NULL when out of memory),
 * capped at `cap` bytes for this request (0 = no cap) and charged, block by block, to
 * mt_mem_in_use against mt_mem_limit. A decoder whose allocation fails answers with
 * recv_decode_refusal(). */
arena_t *recv_arena(size_t cap);
/* The per-request decode cap of a receiver: max_decoded_size when set (> 0), otherwise
 * RECV_DECODE_RATIO x max_request_body_size. */
#define RECV_DECODE_RATIO 8
size_t recv_decode_cap(int64_t max_decoded, int64_t max_body);

/* Why a decode into `a` failed for want of memory: 413 "decode_limit" (the request's cap),
 * 503 "memory_limit" (the process limit) or 503 "out_of_memory" (malloc failed). Fills
 * *status, *reason (a string literal) and a message for the client naming the cap. */
void recv_decode_refusal(const arena_t *a, size_t cap, int *status, const char **reason, char *msg,
                         size_t msgcap);
/* After a request: keep one modest arena per thread, give back what a huge request needed. */
void recv_arena_done(arena_t *a);

typedef enum {
    RECV_TENANT_NONE = 0,  /* no X-Scope-OrgID and no bound tenant */
    RECV_TENANT_OK,        /* out holds the tenant id */
    RECV_TENANT_BAD,       /* not a valid tenant id: answer 400 "bad_tenant" (RECV_TENANT_ERR) */
    RECV_TENANT_FORBIDDEN, /* names another tenant than the credentials' one: 403
                            * "tenant_forbidden" (gRPC PERMISSION_DENIED) */
} recv_tenant_t;

#define RECV_TENANT_ERR "invalid X-Scope-OrgID (" AUTH_TENANT_RULE ")"

/* The one tenant decision, for every receiver and transport. `org` is the request's
 * X-Scope-OrgID (NULL when absent); `bound` the tenant whatever authenticated the client binds
 * it to (a bearertokenauth `tenants` token; later a certificate), NULL or "" when unbound.
 * Unbound: a valid org is the tenant, none is none. Bound: no org gets the bound tenant, the
 * same org is fine, another one is RECV_TENANT_FORBIDDEN. Copies the tenant into out. */
recv_tenant_t recv_tenant(const char *org, const char *bound, char out[MT_TENANT_MAX + 1]);

/* The access decision of one request, before its body is read: authentication (when the
 * receiver has an authenticator) then the tenant. Transport-neutral so gRPC calls it with
 * metadata: grpc_code is 16 UNAUTHENTICATED, 7 PERMISSION_DENIED or 3 INVALID_ARGUMENT. */
typedef struct recv_access {
    int status;                     /* HTTP status: 200 allowed, else 400, 401 or 403 */
    int grpc_code;                  /* 0 when allowed */
    const char *reason;             /* refusal reason label: "unauthenticated", "tenant_forbidden",
                            * "bad_tenant"; NULL when allowed */
    const char *challenge;          /* WWW-Authenticate value of a 401, else NULL */
    const char *msg;                /* for the client; never names a credential */
    char tenant[MT_TENANT_MAX + 1]; /* the request's tenant when allowed ("" = none) */
} recv_access_t;

/* Decides a request's access from its Authorization value and X-Scope-OrgID (either NULL
 * when absent) with authenticator `auth` (NULL = none: only the tenant is checked).
 * `peer_tenant` is a tenant the transport bound the client to (an mTLS certificate mapped by
 * tenants_from_certificate), NULL or "" when none; when the credentials are bound too, both
 * must name the same tenant (403 otherwise). Returns 1 when allowed (a->tenant set), 0 when
 * refused (a->status, reason, msg set). */
int recv_access(const extension_t *auth, const char *authorization, const char *org,
                const char *peer_tenant, recv_access_t *a);
/* recv_access for an HTTP request: on refusal also sets r->challenge, so the caller's error
 * response carries WWW-Authenticate. */
int recv_http_access(const extension_t *auth, http_req_t *r, recv_access_t *a);

/* check-config for the HTTP server settings every receiver has, under `prefix` ("" or
 * "protocols.http."): endpoint, max_request_body_size, max_decoded_size, threads and the tls
 * section (recv_tls_check). */
void recv_server_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *prefix,
                       const char *endpoint, int64_t max_body, int64_t max_decoded, int64_t threads,
                       tls_server_cfg_t *tls);
/* check-config for a receiver's tls section: tls_server_cfg_check (prefix as there) plus every
 * tenant of tls.tenants_from_certificate a valid tenant id (recv_tenant). */
void recv_tls_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *prefix,
                    tls_server_cfg_t *tls);
#define RECV_TENANT_FORBIDDEN_ERR \
    "X-Scope-OrgID names a tenant other than the one this client's credential is bound to"

/* Starts the HTTP server of receiver rv (its state, rv->state, already set) into *srv, with
 * TLS when the tls section is enabled (NULL: plain HTTP). On
 * failure (eb filled) the state is freed and rv->state reset, as a receiver that did not
 * start leaves nothing behind. Returns MT_OK or MT_ERR. */
int recv_http_start(receiver_t *rv, http_server_t **srv, const char *endpoint, int64_t threads,
                    int64_t max_body, const tls_server_cfg_t *tls, const http_handler_t *h,
                    mt_errbuf_t *eb);
/* Stops an HTTP receiver: stops its server srv (waiting for handlers), finishes its ncnt
 * counter sets and frees rv->state. */
void recv_http_stop(receiver_t *rv, http_server_t *srv, recv_counters_t *cnt, int ncnt);

/* What recv_otlp_ingest made of one OTLP request. */
typedef struct recv_ingest {
    int status;         /* as HTTP: 200 taken (maybe partly, see rejected); 400 invalid; 413 too
                         * large; 429 queue_full; 503 memory/out of memory; 500 pipeline error */
    const char *reason; /* refusal reason (a string literal), NULL on 200 */
    uint64_t items;     /* items of a valid request (0 when it was not valid) */
    uint64_t rejected;  /* items processors dropped (partial success; msg says why) */
    char msg[768];      /* the refusal (or partial success) message for the client / log */
} recv_ingest_t;

/* The one OTLP ingest path (recv_otlp.c): validates `data` (protobuf on the wire, or JSON when
 * `json`) for signal `sig`, decoding into `a` (capped at `dcap`) only when needed, hands it to
 * receiver r's pipelines with `tenant`, and counts received/accepted/refused items in cnt
 * (never the request itself: the caller answers and counts it with recv_count). */
void recv_otlp_ingest(receiver_t *r, recv_counters_t *cnt, mt_signal_t sig, int json,
                      const uint8_t *data, size_t len, const char *tenant, arena_t *a, size_t dcap,
                      recv_ingest_t *out);

#endif
