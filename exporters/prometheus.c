/*
 * prometheus.c - the `prometheus` (pull) exporter: OTLP metrics are translated by promconv
 * (the same translation as the remote-write path; delta sums and histograms become cumulative
 * through a deltacum_t owned here) and the latest sample of every series is kept in a promstore,
 * served on GET /metrics in the Prometheus text format 0.0.4, or OpenMetrics 1.0 when
 * `enable_open_metrics` is set and the scraper's Accept header asks for it. Series not updated
 * for `metric_expiration` disappear. Config keys follow the OpenTelemetry Collector's
 * prometheus exporter.
 */
#include "component.h"
#include "codec.h"
#include "otlp.h"
#include "promconv.h"
#include "promstore.h"
#include "server.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decoding and translating one batch may use at most this much arena memory (plus a multiple
 * of the encoded size: label sets repeat on every translated series). */
#define PROM_ARENA_BASE_CAP    ((size_t)64 << 20)
#define PROM_ARENA_PER_BYTE    32
/* Expiry also runs on the data path, at most this often, so memory is returned even when
 * nobody scrapes. */
#define PROM_EXPIRE_EVERY_MS   1000
/* Bodies smaller than this are sent uncompressed even when gzip is accepted. */
#define PROM_GZIP_MIN_BYTES    512
/* "max_series reached" is logged at most this often (the counter has every drop). */
#define PROM_FULL_LOG_EVERY_MS 60000

typedef struct prom_cfg {
    exporter_common_t common;
    char *endpoint;
    char *namespace_;
    cfg_strmap_t const_labels;
    int64_t metric_expiration; /* ms */
    int resource_to_telemetry;
    int add_metric_suffixes;
    int enable_open_metrics;
    int send_timestamps;
    int64_t max_series;
} prom_cfg_t;

static const cfg_field_t prom_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(prom_cfg_t, endpoint), NULL,
     "host:port to serve GET /metrics on"},
    {"namespace", CFG_T_STRING, NULL, 0, offsetof(prom_cfg_t, namespace_), NULL,
     "prefix \"<namespace>_\" for every metric name"},
    {"const_labels", CFG_T_STRMAP, NULL, 0, offsetof(prom_cfg_t, const_labels), NULL,
     "labels added to every series (unless the series has the label already)"},
    {"metric_expiration", CFG_T_DURATION, "5m", 0, offsetof(prom_cfg_t, metric_expiration), NULL,
     "a series not updated for this long is no longer exposed"},
    {"resource_to_telemetry_conversion.enabled", CFG_T_BOOL, "false", 0,
     offsetof(prom_cfg_t, resource_to_telemetry), NULL,
     "every resource attribute becomes a label of every series"},
    {"add_metric_suffixes", CFG_T_BOOL, "true", 0, offsetof(prom_cfg_t, add_metric_suffixes), NULL,
     "unit, _total and _ratio suffixes on metric names"},
    {"enable_open_metrics", CFG_T_BOOL, "false", 0, offsetof(prom_cfg_t, enable_open_metrics), NULL,
     "serve OpenMetrics 1.0 to scrapers whose Accept header asks for it (else always text 0.0.4)"},
    {"send_timestamps", CFG_T_BOOL, "false", 0, offsetof(prom_cfg_t, send_timestamps), NULL,
     "write each sample's timestamp (otherwise the scraper uses the scrape time)"},
    {"max_series", CFG_T_INT, "200000", 0, offsetof(prom_cfg_t, max_series), NULL,
     "series kept at most; new series beyond it are dropped and counted"},
};

static int valid_label_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_') || (s[0] == '_' && s[1] == '_')) {
        return 0;
    }
    for (; *s; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

static void prom_validate(cfg_ctx_t *c, const void *cfgp, const char *path, const cfg_node_t *node)
{
    const prom_cfg_t *cfg = cfgp;
    if (cfg->endpoint) {
        char host[256];
        int port;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        if (http_parse_endpoint(cfg->endpoint, host, sizeof(host), &port, &eb) != MT_OK) {
            cfg_error_key(c, node, path, "endpoint", "%s", eb.msg);
        }
    }
    if (cfg->metric_expiration <= 0) {
        cfg_error_key(c, node, path, "metric_expiration", "must be positive");
    }
    if (cfg->max_series <= 0) {
        cfg_error_key(c, node, path, "max_series", "must be positive");
    }
    for (size_t i = 0; i < cfg->const_labels.n; i++) {
        char key[300];
        snprintf(key, sizeof(key), "const_labels.%s", cfg->const_labels.keys[i]);
        if (!valid_label_name(cfg->const_labels.keys[i])) {
            cfg_error_key(c, node, path, key,
                          "not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
        } else if (!*cfg->const_labels.vals[i]) {
            cfg_error_key(c, node, path, key,
                          "empty value (a label with an empty value is no label)");
        }
    }
}

typedef struct prom_state {
    prom_cfg_t *cfg;
    promstore_t *store;
    deltacum_t *dc;
    http_server_t *srv;
    const char *id;
    char labels[256]; /* exporter="<id>" for self-metrics */
    tm_counter_t *c_native, *c_max_series, *c_old, *c_invalid, *c_stale, *c_expired;
    tm_counter_t *c_scrapes;
    _Atomic int64_t last_expire_ms;
    _Atomic int64_t last_full_log_ms;
} prom_state_t;

static int64_t mono_ms(void)
{
    return (int64_t)(mt_now_ns() / 1000000u);
}

static void count_stats(prom_state_t *st, const promstore_stats_t *s)
{
    tm_add(st->c_native, s->dropped_native);
    tm_add(st->c_max_series, s->dropped_max_series);
    tm_add(st->c_old, s->dropped_old);
    tm_add(st->c_invalid, s->dropped_invalid);
    tm_add(st->c_stale, s->stale_removed);
    tm_add(st->c_expired, s->expired);
    if (s->dropped_max_series) {
        int64_t now = mono_ms(), last = atomic_load(&st->last_full_log_ms);
        if ((last == 0 || now - last >= PROM_FULL_LOG_EVERY_MS) &&
            atomic_compare_exchange_strong(&st->last_full_log_ms, &last, now)) {
            mt_log(MT_LOG_WARN,
                   "exporter %s: max_series (%lld) reached, new series are dropped "
                   "(meltp_prometheus_exporter_dropped_series_total{reason=\"max_series\"})",
                   st->id, (long long)st->cfg->max_series);
        }
    }
}

/* ---- content negotiation -------------------------------------------------------------- */

/* Highest q among the comma-separated media ranges (or codings) of an Accept-style header that
 * name `want` exactly (case-insensitive, parameters other than q ignored). 0 when none does:
 * wildcards are deliberately not matched, so only an explicit request changes the format. */
static double accept_q(const char *hdr, const char *want)
{
    double best = 0;
    size_t wl = strlen(want);
    const char *p = hdr;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t el = end ? (size_t)(end - p) : strlen(p);
        while (el && (*p == ' ' || *p == '\t')) {
            p++;
            el--;
        }
        size_t tl = 0;
        while (tl < el && p[tl] != ';' && p[tl] != ' ' && p[tl] != '\t') {
            tl++;
        }
        if (tl == wl && strncasecmp(p, want, wl) == 0) {
            double q = 1;
            for (const char *s = p + tl; s < p + el; s++) {
                if (*s == ';') {
                    const char *v = s + 1;
                    while (*v == ' ') {
                        v++;
                    }
                    if ((v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
                        q = strtod(v + 2, NULL);
                    }
                }
            }
            if (q > best) {
                best = q;
            }
        }
        p = end ? end + 1 : NULL;
    }
    return best;
}

static promstore_fmt_t negotiate(const prom_cfg_t *cfg, const char *accept)
{
    if (!cfg->enable_open_metrics || !accept) {
        return PROMSTORE_TEXT;
    }
    double om = accept_q(accept, "application/openmetrics-text");
    double text = accept_q(accept, "text/plain");
    /* Prometheus asks "openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5": the
     * preferred of the two explicit types wins, text on a tie (the format every scraper reads) */
    return om > 0 && om > text ? PROMSTORE_OPENMETRICS : PROMSTORE_TEXT;
}

/* ---- scrape endpoint ------------------------------------------------------------------ */

static void prom_begin(void *arg, http_req_t *r)
{
    prom_state_t *st = arg;
    if (strcmp(r->path, "/metrics") != 0) {
        http_respond(r, 404, "text/plain", "not found; try /metrics\n", 24, NULL, NULL);
        return;
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        http_respond(r, 405, "text/plain", "method not allowed; use GET\n", 28, "Allow",
                     "GET, HEAD");
        return;
    }
    tm_add(st->c_scrapes, 1);
    promstore_fmt_t fmt = negotiate(st->cfg, http_header(r, "Accept"));
    promstore_stats_t s = {0};
    char *body = NULL;
    size_t len = 0;
    int64_t now = mono_ms();
    int rc = promstore_render(st->store, fmt, st->cfg->send_timestamps, now, &body, &len, &s);
    atomic_store(&st->last_expire_ms, now);
    count_stats(st, &s);
    if (rc != MT_OK) {
        http_respond(r, 503, "text/plain", "out of memory\n", 14, "Retry-After", "1");
        return;
    }
    const char *ct = fmt == PROMSTORE_OPENMETRICS ? PROMSTORE_CT_OPENMETRICS : PROMSTORE_CT_TEXT;
    const char *ae = http_header(r, "Accept-Encoding");
    uint8_t *gz = NULL;
    size_t gzlen = 0;
    if (ae && len >= PROM_GZIP_MIN_BYTES && accept_q(ae, "gzip") > 0 &&
        codec_compress(CODEC_GZIP, (const uint8_t *)body, len, 0, &gz, &gzlen) == MT_OK) {
        http_respond(r, 200, ct, gz, gzlen, "Content-Encoding", "gzip");
    } else {
        http_respond(r, 200, ct, body, len, NULL, NULL);
    }
    free(gz);
    free(body);
}

static void prom_complete(void *arg, http_req_t *r)
{
    (void)arg;
    (void)r;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static double series_gauge(void *arg)
{
    prom_state_t *st = arg;
    return (double)promstore_size(st->store);
}

static tm_counter_t *drop_counter(prom_state_t *st, const char *reason)
{
    char lb[400];
    snprintf(lb, sizeof(lb), "%s,reason=\"%s\"", st->labels, reason);
    return tm_counter("meltp_prometheus_exporter_dropped_series_total",
                      "Series samples the prometheus exporter did not keep, by reason.", lb);
}

static void prom_state_free(prom_state_t *st)
{
    if (!st) {
        return;
    }
    http_server_stop(st->srv);
    tm_gauge_remove(st);
    deltacum_destroy(st->dc);
    promstore_destroy(st->store);
    free(st);
}

static int prom_create(exporter_t *ex, mt_errbuf_t *eb)
{
    prom_cfg_t *cfg = ex->cfg;
    prom_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->cfg = cfg;
    st->id = ex->id;
    snprintf(st->labels, sizeof(st->labels), "exporter=\"%s\"", ex->id);
    st->store = promstore_create((size_t)cfg->max_series, cfg->metric_expiration);
    st->dc = deltacum_create((size_t)cfg->max_series, cfg->metric_expiration);
    if (!st->store || !st->dc) {
        prom_state_free(st);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->c_native = drop_counter(st, "native_histogram");
    st->c_max_series = drop_counter(st, "max_series");
    st->c_old = drop_counter(st, "out_of_order");
    st->c_invalid = drop_counter(st, "no_name");
    st->c_stale =
        tm_counter("meltp_prometheus_exporter_stale_series_total",
                   "Series removed by a stale marker (OTLP NoRecordedValue).", st->labels);
    st->c_expired =
        tm_counter("meltp_prometheus_exporter_expired_series_total",
                   "Series removed after metric_expiration without updates.", st->labels);
    st->c_scrapes =
        tm_counter("meltp_prometheus_exporter_scrapes_total",
                   "Requests for /metrics served by the prometheus exporter.", st->labels);
    tm_gauge("meltp_prometheus_exporter_series", "Series the prometheus exporter holds.",
             st->labels, series_gauge, st);
    http_handler_t h = {.begin = prom_begin, .complete = prom_complete, .arg = st};
    st->srv = http_server_start(cfg->endpoint, 1, 4096, &h, eb);
    if (!st->srv) {
        prom_state_free(st);
        return MT_ERR;
    }
    ex->state = st;
    mt_log(MT_LOG_INFO, "exporter %s: scrape endpoint http://%s/metrics", ex->id, cfg->endpoint);
    return MT_OK;
}

static void prom_destroy(exporter_t *ex)
{
    prom_state_free(ex->state);
    ex->state = NULL;
}

static int prom_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                     uint32_t items, send_result_t *res)
{
    (void)ws;
    (void)items;
    prom_cfg_t *cfg = ex->cfg;
    prom_state_t *st = ex->state;
    if (s != MT_SIG_METRICS) {
        return MT_OK; /* not wired: the exporter declares metrics only */
    }
    arena_t *a = arena_create(len * 4 + 65536, PROM_ARENA_BASE_CAP + len * PROM_ARENA_PER_BYTE);
    if (!a) {
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req =
        (const void *)protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len,
                                                data);
    if (!req) {
        int big = arena_over_cap(a);
        arena_destroy(a);
        snprintf(res->msg, sizeof(res->msg), "cannot decode metrics batch%s",
                 big ? " (arena cap)" : "");
        res->reason = big ? "too_large" : "decode_error";
        return big ? MT_EPERM : MT_EINVAL;
    }
    promconv_opts_t o = {
        .add_metric_suffixes = cfg->add_metric_suffixes,
        .namespace_ = cfg->namespace_ && *cfg->namespace_ ? cfg->namespace_ : NULL,
        .resource_to_telemetry = cfg->resource_to_telemetry,
        .promote = NULL,
        .scope_labels = 1, /* otel_scope_name/_version, as the Collector's exporter does */
        .target_info = 1,
        .external_labels = cfg->const_labels.n ? &cfg->const_labels : NULL,
        .now_ms = (int64_t)(mt_wall_ns() / 1000000u),
    };
    promconv_out_t out;
    memset(&out, 0, sizeof(out));
    /* From here on the delta state has seen the batch: a retry would count deltas twice, so
     * failures are permanent (the batch is dropped and counted by the queue). */
    int rc = promconv_convert(&o, st->dc, req, a, &out);
    if (rc != MT_OK) {
        int big = arena_over_cap(a);
        arena_destroy(a);
        snprintf(res->msg, sizeof(res->msg), "cannot translate metrics batch: %s",
                 big ? "arena cap reached" : mt_strerror(rc));
        res->reason = big ? "too_large" : "out_of_memory";
        return MT_EPERM;
    }
    if (out.dropped_points) {
        tm_count_reason("meltp_prometheus_exporter_dropped_points_total",
                        "Data points the OTLP -> Prometheus translation dropped, by reason.",
                        st->labels, out.last_drop_reason ? out.last_drop_reason : "unconvertible",
                        out.dropped_points);
    }
    promstore_stats_t ss = {0};
    int64_t now = mono_ms();
    rc = promstore_update(st->store, out.series, out.n_series, out.metadata, out.n_metadata, now,
                          &ss);
    arena_destroy(a);
    int64_t last = atomic_load(&st->last_expire_ms);
    if (now - last >= PROM_EXPIRE_EVERY_MS &&
        atomic_compare_exchange_strong(&st->last_expire_ms, &last, now)) {
        promstore_expire(st->store, now, &ss);
    }
    count_stats(st, &ss);
    if (rc != MT_OK) {
        snprintf(res->msg, sizeof(res->msg), "out of memory storing series");
        res->reason = "out_of_memory";
        return MT_EPERM;
    }
    return MT_OK;
}

const exporter_ops_t exporter_prometheus_ops = {
    .type = "prometheus",
    .fields = prom_fields,
    .nfields = MT_ARRAY_LEN(prom_fields),
    .cfg_size = sizeof(prom_cfg_t),
    .signals = SIG_BIT(MT_SIG_METRICS),
    .help = "Prometheus scrape endpoint (text 0.0.4 / OpenMetrics) with the latest value of every "
            "series",
    .validate = prom_validate,
    .create = prom_create,
    .send = prom_send,
    .destroy = prom_destroy,
    .default_consumers = 1,
};
