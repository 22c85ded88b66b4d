/*
 * otlp_int.h - the `otlp` receiver's private header: its config and state, shared by the
 * OTLP/HTTP transport (otlp.c) and the OTLP/gRPC transport (otlp_grpc.c), and the one
 * request-processing function both call.
 */
#ifndef OTLP_INT_H
#define OTLP_INT_H

#include "codec.h"
#include "grpc.h"
#include "component.h"
#include "h2server.h"
#include "recv.h"
#include "server.h"

typedef struct otlp_rcfg {
    char *endpoint;
    int64_t max_body;
    int64_t max_decoded;
    char *paths[MT_SIG_COUNT];
    int64_t threads;
    int include_metadata;
    char *grpc_endpoint;
    int http_enabled;
    int grpc_present;
    int64_t grpc_max_recv_mib;
    int64_t grpc_max_streams;
    int64_t grpc_threads;
    tls_server_cfg_t tls;      /* protocols.http.tls */
    char *auth;                /* resolved by the service into receiver_t.auth */
    char *grpc_auth;           /* protocols.grpc.auth.authenticator (same) */
    tls_server_cfg_t grpc_tls; /* protocols.grpc.tls (ALPN h2) */
} otlp_rcfg_t;

typedef struct otlp_state {
    http_server_t *srv;
    h2_server_t *h2;
    receiver_t *r;
    char labels[MT_SIG_COUNT][128];
    recv_counters_t cnt[MT_SIG_COUNT]; /* OTLP/HTTP */
    char glabels[MT_SIG_COUNT][160];
    recv_counters_t gcnt[MT_SIG_COUNT]; /* OTLP/gRPC: the same counters, transport="grpc" */
    char grlabels[128];                 /* receiver="id",transport="grpc" */
    tm_counter_t *h2ev[H2_EV_COUNT];    /* meltp_receiver_http2_events_total{event} */
} otlp_state_t;

/* What became of one request: an HTTP status (200, or the refusal's 4xx/5xx, which the gRPC
 * transport maps to a gRPC status), the refusal's reason (a string literal, counted) and
 * message for the client, whether a retry is invited (Retry-After / RetryInfo), and on 200
 * the Export<Signal>ServiceResponse (malloc'd, the caller frees it). */
typedef struct otlp_outcome {
    int status;
    const char *reason;
    int retry;
    char msg[768];
    uint8_t *body;
    size_t blen;
} otlp_outcome_t;

/* The one request path of both transports: decompresses `body` (capped at max_len, the
 * setting named max_key in the refusal), checks
 * and decodes it (scan, or decode with the field path of what is wrong), hands it to the
 * pipelines (the client's bytes when nothing changes them) and builds the response.
 * Counts bytes and items on cnt; the caller counts the request itself (recv_count). */
void otlp_process(otlp_state_t *st, recv_counters_t *cnt, mt_signal_t sig, int json, codec_t codec,
                  const uint8_t *body, size_t blen, size_t max_len, const char *max_key,
                  const char *tenant, otlp_outcome_t *o);

/* OTLP/gRPC (otlp_grpc.c): serves protocols.grpc; stop sends GOAWAY and finishes streams. */
int otlp_grpc_start(otlp_state_t *st, mt_errbuf_t *eb);
/* The gRPC status of an otlp_process() outcome, from its HTTP status and reason (OTLP spec:
 * 400 INVALID_ARGUMENT; 413, 429, 503 RESOURCE_EXHAUSTED; 404 UNIMPLEMENTED; 504
 * DEADLINE_EXCEEDED; a retryable pipeline_error UNAVAILABLE; anything else INTERNAL). */
grpc_status_t otlp_grpc_status(int http, const char *reason);
/* Whether a content-type is gRPC's protobuf one: application/grpc, +proto, or ;params. */
int otlp_grpc_content_type_ok(const char *ct);
void otlp_grpc_stop(otlp_state_t *st);

#endif
