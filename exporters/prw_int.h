/*
 * prw_int.h - PRIVATE to the exporters/prw module (prw.c, prw_build.c, prw_send.c,
 * prw_native.c): the configuration, the exporter state, request chunks and the helpers its
 * parts share. Nothing outside exporters/prw*.c may include this header.
 */
#ifndef EXPORTERS_PRW_INT_H
#define EXPORTERS_PRW_INT_H

#include "component.h"
#include "otlp.h"
#include "promconv.h"
#include "codec.h"
#include "httpc.h"
#include "prom_rw2.pb-c.h"
#include "prw_decode.h"
#include "pbwire.h"

#include <stddef.h>
#include <stdint.h>

typedef struct prw_cfg {
    exporter_common_t common;
    char *endpoint;
    int message; /* 0 prometheus.WriteRequest (1.0), 1 io.prometheus.write.v2.Request */
    cfg_strmap_t headers;
    cfg_strmap_t external_labels;
    char *namespace_;
    int resource_to_telemetry;
    cfg_strlist_t promote;
    int add_metric_suffixes;
    int target_info;
    int scope_labels;
    int send_metadata;
    int64_t max_samples_per_send;
    int64_t shards;
    int64_t dc_max_series;
    int64_t dc_max_stale;
    tls_client_cfg_t tls;
    char *auth; /* resolved by the service into exporter_t.auth */
} prw_cfg_t;

/* Last target_info timestamp per (job, instance): target_info is synthesised from each
 * batch's timestamps, and a batch of older data (backfill, a delayed sender) must not make us
 * send target_info backwards in time, which Prometheus rejects as out of order. A small
 * direct-mapped table: a collision only forgets, and forgetting at worst costs one 400. */
#define TI_SLOTS 4096
typedef struct ti_slot {
    uint64_t key;
    int64_t ts;
} ti_slot_t;

typedef struct prw_state {
    ti_slot_t ti[TI_SLOTS];
    deltacum_t *dc;
    struct curl_slist *hdrs[2];
    _Atomic int use_v1; /* set after a 415 to a 2.0 request */
    char labels[256];
    tm_counter_t *c_samples, *c_histograms, *c_exemplars, *c_requests;
} prw_state_t;

/* One request body waiting to be sent by a shard. */
typedef struct chunk {
    uint8_t *body; /* snappy-compressed, malloc'd */
    size_t len;
    uint64_t samples, histograms, exemplars;
    int v2;
} chunk_t;

/* ---- sending: one in-flight request per shard on a curl multi handle ----------------------- */

typedef struct shard {
    CURL *easy;
    chunk_t *chunks;
    size_t n, cap, next; /* next chunk to send */
    int busy;
    uint64_t retry_at_ns; /* > 0: waiting to retry chunk `next` */
    uint64_t first_fail_ns;
    double interval_ms;
    httpc_resp_t resp;           /* the head of the response body, Retry-After */
    int written_hdrs;            /* RW2 response carried X-Prometheus-Remote-Write-*-Written */
    struct curl_slist *req_hdrs; /* this request's headers when they differ from st->hdrs */
} shard_t;

typedef struct prw_worker {
    CURLM *multi;
    shard_t shards[64];
} prw_worker_t;

/* prw.c */
void prw_count_drop(prw_state_t *st, const char *reason, uint64_t n);
uint64_t prw_series_hash(const Prometheus__TimeSeries *ts);
uint64_t prw_group_hash(const Prometheus__TimeSeries *ts);
int prw_same_target(const Prometheus__TimeSeries *a, const Prometheus__TimeSeries *b);
size_t prw_series_weight(const Prometheus__TimeSeries *ts);

/* prw_build.c */
int prw_build_chunks(prw_cfg_t *cfg, int v2, Prometheus__TimeSeries **list, const uint64_t *ghash,
                     size_t n, const promconv_out_t *out, int with_meta, arena_t *a,
                     chunk_t **chunks, size_t *nchunks, size_t *capchunks);

/* prw_send.c */
void *prw_worker_init(exporter_t *ex);
void prw_worker_fini(exporter_t *ex, void *ws);
int prw_send_all(exporter_t *ex, prw_worker_t *w, int nshards, send_result_t *res,
                 uint64_t *ok_samples, uint64_t *failed_samples);
void prw_drop_chunks(prw_worker_t *w, int nshards);
int prw_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
             uint32_t items, send_result_t *res);

/* prw_native.c */
int prw_accepts_format(exporter_t *ex, int format);
int prw_send_native(exporter_t *ex, prw_worker_t *w, const uint8_t *data, size_t len,
                    send_result_t *res);

#endif
