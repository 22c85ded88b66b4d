/*
 * prw.c - the `prometheusremotewrite` exporter: OTLP metrics -> Prometheus remote-write
 * (1.0 by default, 2.0 by option), snappy-compressed, sharded by series hash.
 *
 * Ordering: the queue runs one consumer, so batches are converted in arrival order; inside a
 * batch every series lands in exactly one shard (hash of its label set) and each shard sends
 * its chunks one after another, so samples of a series reach the backend in timestamp order
 * and the backend never sees out-of-order rejects caused by us. Shards send in parallel over
 * one curl multi handle. Each chunk is retried on its own (5xx, 429, transport errors) with
 * backoff honouring Retry-After; other 4xx are permanent and counted per reason with the
 * server's message. A 415 (or a 2xx without the written-count headers) to a 2.0 request
 * switches this exporter to 1.0.
 *
 * The module's parts (sharing the private prw_int.h): prw.c (configuration, state, series
 * hashing, the exporter descriptor), prw_build.c (RW 1.0 / 2.0 request building, sharding
 * into chunks), prw_send.c (the curl multi sender and send()) and prw_native.c (the
 * remote-write pass-through).
 */
#include "component.h"
#include "otlp.h"
#include "promconv.h"
#include "codec.h"
#include "httpc.h"
#include "prom_rw2.pb-c.h"
#include "prw_decode.h"
#include "pbwire.h"
#include "prw_int.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

static const cfg_field_t prw_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(prw_cfg_t, endpoint), NULL,
     "remote-write URL, e.g. http://prometheus:9090/api/v1/write"},
    {"auth.authenticator", CFG_T_STRING, "", 0, offsetof(prw_cfg_t, auth), NULL,
     "id of a bearertokenauth (token) or basicauth (client_auth) extension: every request "
     "carries its Authorization header"},
    {"protobuf_message", CFG_T_ENUM, "prometheus.WriteRequest", 0, offsetof(prw_cfg_t, message),
     "prometheus.WriteRequest|io.prometheus.write.v2.Request",
     "remote-write 1.0 (default) or 2.0; 2.0 falls back to 1.0 when the server answers 415"},
    {"headers", CFG_T_STRMAP, NULL, 0, offsetof(prw_cfg_t, headers), NULL,
     "extra request headers (e.g. X-Scope-OrgID); reserved remote-write headers cannot be set"},
    {"external_labels", CFG_T_STRMAP, NULL, 0, offsetof(prw_cfg_t, external_labels), NULL,
     "labels added to every series that does not have them"},
    {"namespace", CFG_T_STRING, NULL, 0, offsetof(prw_cfg_t, namespace_), NULL,
     "prefix for every metric name"},
    {"resource_to_telemetry_conversion.enabled", CFG_T_BOOL, "false", 0,
     offsetof(prw_cfg_t, resource_to_telemetry), NULL,
     "copy every resource attribute to every series as a label"},
    {"promote_resource_attributes", CFG_T_STRLIST, NULL, 0, offsetof(prw_cfg_t, promote), NULL,
     "resource attributes copied to every series as labels"},
    {"add_metric_suffixes", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, add_metric_suffixes), NULL,
     "unit and _total / _ratio suffixes"},
    {"target_info.enabled", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, target_info), NULL,
     "send target_info with the other resource attributes"},
    {"add_scope_labels", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, scope_labels), NULL,
     "otel_scope_name, otel_scope_version, otel_scope_schema_url and scope attributes"},
    {"send_metadata", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, send_metadata), NULL,
     "send TYPE / HELP / UNIT metadata"},
    {"max_samples_per_send", CFG_T_INT, "2000", 0, offsetof(prw_cfg_t, max_samples_per_send), NULL,
     "samples (a native histogram counts as one) per remote-write request"},
    {"remote_write_queue.num_consumers", CFG_T_INT, "4", 0, offsetof(prw_cfg_t, shards), NULL,
     "shards: concurrent requests, each series always in the same shard"},
    {"delta_to_cumulative.max_series", CFG_T_INT, "100000", 0, offsetof(prw_cfg_t, dc_max_series),
     NULL, "series whose delta points are accumulated; more are dropped and counted"},
    {"delta_to_cumulative.max_stale", CFG_T_DURATION, "5m", 0, offsetof(prw_cfg_t, dc_max_stale),
     NULL, "forget a delta series after this long without points"},
    TLS_CLIENT_FIELDS(prw_cfg_t, tls),
};

static const char *reserved_headers[] = {"content-encoding", "content-type", "user-agent",
                                         "x-prometheus-remote-write-version"};

static void prw_validate(cfg_ctx_t *c, const void *cfgp, const char *path, const cfg_node_t *node)
{
    const prw_cfg_t *cfg = cfgp;
    cfg_check_http_url(c, node, path, "endpoint", cfg->endpoint);
    tls_client_cfg_check(c, node, path, &cfg->tls);
    for (size_t i = 0; i < cfg->headers.n; i++) {
        for (size_t k = 0; k < MT_ARRAY_LEN(reserved_headers); k++) {
            if (strcasecmp(cfg->headers.keys[i], reserved_headers[k]) == 0) {
                cfg_error_key(c, node, path, "headers", "%s is set by remote-write itself",
                              cfg->headers.keys[i]);
            }
        }
    }
    if (cfg->max_samples_per_send < 1) {
        cfg_error_key(c, node, path, "max_samples_per_send", "must be positive");
    }
    if (cfg->shards < 1 || cfg->shards > 64) {
        cfg_error_key(c, node, path, "remote_write_queue.num_consumers", "must be 1..64");
    }
    for (size_t i = 0; i < cfg->external_labels.n; i++) {
        char buf[256];
        if (promconv_label_name(cfg->external_labels.keys[i], buf, sizeof(buf)) < 0 ||
            strcmp(buf, cfg->external_labels.keys[i]) != 0) {
            cfg_error_key(c, node, path, "external_labels", "\"%s\" is not a valid label name",
                          cfg->external_labels.keys[i]);
        }
    }
}

static int prw_create(exporter_t *ex, mt_errbuf_t *eb)
{
    prw_cfg_t *cfg = ex->cfg;
    tls_client_warn(&cfg->tls, ex->id);
    /* one consumer keeps batches in order; parallelism comes from the shards */
    cfg->common.num_consumers = 1;
    prw_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->dc = deltacum_create((size_t)cfg->dc_max_series, cfg->dc_max_stale);
    if (!st->dc) {
        free(st);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    for (int v = 0; v < 2; v++) {
        struct curl_slist *h = NULL;
        h = curl_slist_append(
            h, v ? "Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request"
                 : "Content-Type: application/x-protobuf");
        h = curl_slist_append(h, "Content-Encoding: snappy");
        h = curl_slist_append(h, v ? "X-Prometheus-Remote-Write-Version: 2.0.0"
                                   : "X-Prometheus-Remote-Write-Version: 0.1.0");
        h = httpc_headers_append(h, cfg->headers.keys, cfg->headers.vals, cfg->headers.n, NULL);
        st->hdrs[v] = h;
    }
    st->use_v1 = cfg->message == 0;
    snprintf(st->labels, sizeof(st->labels), "exporter=\"%s\"", ex->id);
    st->c_samples = tm_counter("meltp_prw_samples_sent_total",
                               "Remote-write float samples the backend accepted.", st->labels);
    st->c_histograms =
        tm_counter("meltp_prw_histograms_sent_total",
                   "Remote-write native histogram samples the backend accepted.", st->labels);
    st->c_exemplars = tm_counter("meltp_prw_exemplars_sent_total",
                                 "Remote-write exemplars the backend accepted.", st->labels);
    st->c_requests =
        tm_counter("meltp_prw_requests_total", "Remote-write requests sent.", st->labels);
    ex->state = st;
    return MT_OK;
}

static void prw_destroy(exporter_t *ex)
{
    prw_state_t *st = ex->state;
    if (st) {
        deltacum_destroy(st->dc);
        curl_slist_free_all(st->hdrs[0]);
        curl_slist_free_all(st->hdrs[1]);
        free(st);
        ex->state = NULL;
    }
}

void prw_count_drop(prw_state_t *st, const char *reason, uint64_t n)
{
    tm_count_reason("meltp_prw_samples_dropped_total",
                    "Remote-write samples not delivered, by reason.", st->labels, reason, n);
}

/* Hash of the label set: stable shard for a series (within one process). */
uint64_t prw_series_hash(const Prometheus__TimeSeries *ts)
{
    uint64_t h = MT_FNV_BASIS;
    for (size_t i = 0; i < ts->n_labels; i++) {
        h = mt_hash_bytes(h, ts->labels[i]->name, strlen(ts->labels[i]->name));
        h = (h ^ 0xff) * MT_FNV_PRIME;
        h = mt_hash_bytes(h, ts->labels[i]->value, strlen(ts->labels[i]->value));
        h = (h ^ 0xfe) * MT_FNV_PRIME;
    }
    return h;
}

/* Hash of the metric point a series belongs to: labels without le / quantile and the name
 * without _bucket / _sum / _count. All series of one classic histogram or summary point share
 * it, so they travel in the same shard and request and a receiver can put them back together
 * (each series still always maps to the same shard, so per-series order holds). */
uint64_t prw_group_hash(const Prometheus__TimeSeries *ts)
{
    static const char *sfx[] = {"_bucket", "_sum", "_count"};
    uint64_t h = MT_FNV_BASIS;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const char *n = ts->labels[i]->name, *v = ts->labels[i]->value;
        if (!strcmp(n, "le") || !strcmp(n, "quantile")) {
            continue;
        }
        size_t vl = strlen(v);
        if (!strcmp(n, "__name__")) {
            for (size_t k = 0; k < 3; k++) {
                size_t sl = strlen(sfx[k]);
                if (vl > sl && !strcmp(v + vl - sl, sfx[k])) {
                    vl -= sl;
                    break;
                }
            }
        }
        h = mt_hash_bytes(h, n, strlen(n));
        h = (h ^ 0xff) * MT_FNV_PRIME;
        h = mt_hash_bytes(h, v, vl);
        h = (h ^ 0xfe) * MT_FNV_PRIME;
    }
    return h;
}

static const char *label_value(const Prometheus__TimeSeries *ts, const char *name)
{
    for (size_t l = 0; l < ts->n_labels; l++) {
        if (!strcmp(ts->labels[l]->name, name)) {
            return ts->labels[l]->value;
        }
    }
    return NULL;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Same (job, instance): a series of the resource a target_info describes. */
int prw_same_target(const Prometheus__TimeSeries *a, const Prometheus__TimeSeries *b)
{
    return same_str(label_value(a, "job"), label_value(b, "job")) &&
           same_str(label_value(a, "instance"), label_value(b, "instance"));
}

size_t prw_series_weight(const Prometheus__TimeSeries *ts)
{
    size_t w = ts->n_samples + ts->n_histograms;
    return w ? w : 1;
}

const exporter_ops_t exporter_prw_ops = {
    .type = "prometheusremotewrite",
    .fields = prw_fields,
    .nfields = MT_ARRAY_LEN(prw_fields),
    .cfg_size = sizeof(prw_cfg_t),
    .signals = SIG_BIT(MT_SIG_METRICS),
    .help = "Prometheus remote-write 1.0 / 2.0 with exact OTLP -> Prometheus translation",
    .validate = prw_validate,
    .create = prw_create,
    .worker_init = prw_worker_init,
    .worker_fini = prw_worker_fini,
    .send = prw_send,
    .destroy = prw_destroy,
    .default_consumers = 1,
    .accepts_format = prw_accepts_format,
};
