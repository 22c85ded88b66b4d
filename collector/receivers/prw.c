/*
 * receiver_prw.c - the `prometheusremotewrite` receiver: POST /api/v1/write with a snappy
 * (block format) body holding a remote-write 1.0 `prometheus.WriteRequest` or, when the
 * Content-Type says `proto=io.prometheus.write.v2.Request`, a 2.0 Request. The body is
 * converted to OTLP metrics (prw_decode.c) and handed to the receiver's metrics pipelines;
 * 204 means every exporter queue took it. Errors answer in plain text (senders log the body
 * verbatim), are counted by reason, and follow the spec's retry contract: 400/413/415 are
 * final, 429/503 carry Retry-After. RW 2.0 requests always get the *-Written headers.
 */
#include "component.h"
#include "server.h"
#include "codec.h"
#include "prw_decode.h"
#include "recv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>

typedef struct prw_rcfg {
    char *endpoint;
    int64_t max_body;
    int64_t max_decoded;
    int64_t threads;
    char *path;
    int passthrough;
    tls_server_cfg_t tls;
    char *auth; /* resolved by the service into receiver_t.auth */
} prw_rcfg_t;

static const cfg_field_t prw_fields[] = {
    {"endpoint", CFG_T_STRING, "127.0.0.1:19291", 0, offsetof(prw_rcfg_t, endpoint), NULL,
     "host:port to serve remote write on"},
    {"max_request_body_size", CFG_T_BYTES, "20MiB", 0, offsetof(prw_rcfg_t, max_body), NULL,
     "largest body accepted, on the wire and after snappy decompression (413 above)"},
    {"max_decoded_size", CFG_T_BYTES, "0", 0, offsetof(prw_rcfg_t, max_decoded), NULL,
     "most memory decoding one request may take (the decompressed body, converted series); "
     "over it 413 decode_limit; 0 = 8 x max_request_body_size"},
    {"auth.authenticator", CFG_T_STRING, "", 0, offsetof(prw_rcfg_t, auth), NULL,
     "id of a bearertokenauth or basicauth extension: requests without valid credentials get "
     "401 before their body is read"},
    {"threads", CFG_T_INT, "2", 0, offsetof(prw_rcfg_t, threads), NULL, "HTTP worker threads"},
    {"path", CFG_T_STRING, "/api/v1/write", 0, offsetof(prw_rcfg_t, path), NULL,
     "URL path senders POST to"},
    {"passthrough", CFG_T_BOOL, "true", 0, offsetof(prw_rcfg_t, passthrough), NULL,
     "forward remote-write 1.0 requests as they came (validated) when every pipeline of this "
     "receiver has no data processors and only exporters that read remote-write natively; "
     "false always converts to OTLP"},
    TLS_SERVER_FIELDS("", prw_rcfg_t, tls),
};

static void prw_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    prw_rcfg_t *cfg = cfgp;
    recv_server_check(c, node, path, "", cfg->endpoint, cfg->max_body, cfg->max_decoded,
                      cfg->threads, &cfg->tls);
    if (!cfg->path || cfg->path[0] != '/') {
        cfg_error_key(c, node, path, "path", "must start with /");
    }
}

typedef struct prw_state {
    http_server_t *srv;
    receiver_t *r;
    int native; /* RW 1.0 requests travel as MT_FMT_PRW1 (see prw_start) */
    char labels[128];
    tm_counter_t *c_unsorted;
    tm_counter_t *c_exm_no_sample, *c_exm_summary; /* RW 1.0 exemplars the conversion drops */
    recv_counters_t cnt;
} prw_state_t;

/* Per request: the schema picked from Content-Type (1 or 2); 2 answers with *-Written. */
typedef struct prw_req {
    int version;
    prw_stats_t written;
    char tenant[MT_TENANT_MAX + 1]; /* X-Scope-OrgID, checked in prw_begin ("" = none) */
} prw_req_t;

static void count_request(prw_state_t *st, int code, const char *reason, uint64_t items)
{
    recv_count(&st->cnt, code, reason, items, true);
}

/* Sends status + body with Retry-After (when set) and, for RW 2.0 requests, the three
 * X-Prometheus-Remote-Write-*-Written headers. */
static void respond(http_req_t *r, int status, const char *body, size_t len,
                    const char *retry_after, const prw_req_t *rq)
{
    char s[24], h[24], e[24];
    const char *hdrs[10];
    size_t n = 0;
    if (retry_after) {
        hdrs[n++] = "Retry-After";
        hdrs[n++] = retry_after;
    }
    if (rq && rq->version == 2) {
        snprintf(s, sizeof(s), "%llu", (unsigned long long)rq->written.samples);
        snprintf(h, sizeof(h), "%llu", (unsigned long long)rq->written.histograms);
        snprintf(e, sizeof(e), "%llu", (unsigned long long)rq->written.exemplars);
        hdrs[n++] = "X-Prometheus-Remote-Write-Samples-Written";
        hdrs[n++] = s;
        hdrs[n++] = "X-Prometheus-Remote-Write-Histograms-Written";
        hdrs[n++] = h;
        hdrs[n++] = "X-Prometheus-Remote-Write-Exemplars-Written";
        hdrs[n++] = e;
    }
    hdrs[n] = NULL;
    http_respond_headers(r, status, len ? "text/plain; charset=utf-8" : NULL, body, len, hdrs);
}

static void reply_error(prw_state_t *st, http_req_t *r, const prw_req_t *rq, int status,
                        const char *reason, const char *retry_after, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void reply_error(prw_state_t *st, http_req_t *r, const prw_req_t *rq, int status,
                        const char *reason, const char *retry_after, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) - 1 ? (size_t)n : sizeof(msg) - 2;
    msg[len++] = '\n';
    msg[len] = 0;
    respond(r, status, msg, len, retry_after, rq);
    count_request(st, status, reason, 0);
    mt_log(MT_LOG_DEBUG, "receiver %s: %s %s -> %d %s", st->r->id, r->method, r->path, status, msg);
}

/* Case-insensitive compare of a header token [p, p+n) with `want`. */
static int token_is(const char *p, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(p, want, n) == 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++, (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) {
        (*n)--;
    }
}

/* Picks the remote-write version from Content-Type: `application/x-protobuf` (1.0), with
 * `proto=prometheus.WriteRequest` (1.0) or `proto=io.prometheus.write.v2.Request` (2.0).
 * Returns 0 for anything else (-> 415). */
static int version_from_ctype(const char *ct)
{
    if (!ct) {
        return 0;
    }
    const char *semi = strchr(ct, ';');
    const char *p = ct;
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    trim(&p, &n);
    if (!token_is(p, n, "application/x-protobuf")) {
        return 0;
    }
    int version = 1;
    while (semi) {
        const char *param = semi + 1;
        semi = strchr(param, ';');
        size_t pn = semi ? (size_t)(semi - param) : strlen(param);
        trim(&param, &pn);
        if (pn > 6 && strncasecmp(param, "proto=", 6) == 0) {
            const char *v = param + 6;
            size_t vn = pn - 6;
            trim(&v, &vn);
            if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
                v++, vn -= 2;
            }
            if (token_is(v, vn, "prometheus.WriteRequest")) {
                version = 1;
            } else if (token_is(v, vn, "io.prometheus.write.v2.Request")) {
                version = 2;
            } else {
                return 0;
            }
        }
        /* other parameters (charset, ...) are ignored */
    }
    return version;
}

static void prw_refused(void *arg, http_req_t *r, int status, const char *reason)
{
    (void)r;
    count_request(arg, status, reason, 0);
}

static void prw_begin(void *arg, http_req_t *r)
{
    prw_state_t *st = arg;
    prw_rcfg_t *cfg = st->r->cfg;
    if (strcmp(r->path, cfg->path) != 0) {
        reply_error(st, r, NULL, 404, "not_found", NULL, "no remote-write endpoint at %s (use %s)",
                    r->path, cfg->path);
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        char msg[128];
        int n = snprintf(msg, sizeof(msg), "method %s not allowed; use POST\n", r->method);
        const char *hdrs[] = {"Allow", "POST", NULL};
        http_respond_headers(r, 405, "text/plain; charset=utf-8", msg,
                             n > 0 && (size_t)n < sizeof(msg) ? (size_t)n : 0, hdrs);
        count_request(st, 405, "method_not_allowed", 0);
        return;
    }
    recv_access_t ac;
    if (!recv_http_access(st->r->auth, r, &ac)) {
        reply_error(st, r, NULL, ac.status, ac.reason, NULL, "%s", ac.msg);
        return;
    }
    const char *ct = http_header(r, "Content-Type");
    int version = version_from_ctype(ct);
    prw_req_t probe = {version, {0, 0, 0, 0, 0, 0, 0, 0}, ""};
    if (!version) {
        reply_error(st, r, NULL, 415, "unsupported_media_type", NULL,
                    "unsupported Content-Type \"%.200s\"; use application/x-protobuf "
                    "(proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request)",
                    ct ? ct : "");
        return;
    }
    const char *ce = http_header(r, "Content-Encoding");
    if (!ce || codec_from_name(ce) != CODEC_SNAPPY) {
        reply_error(st, r, &probe, 415, "unsupported_encoding", NULL,
                    "unsupported Content-Encoding \"%.100s\"; remote write requires snappy",
                    ce ? ce : "");
        return;
    }
    if (st->r->npipes[MT_SIG_METRICS] == 0) {
        reply_error(st, r, &probe, 404, "no_pipeline", NULL,
                    "receiver %s is not part of any metrics pipeline", st->r->id);
        return;
    }
    const char *cl = http_header(r, "Content-Length");
    unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
    if (clen / 16 > (unsigned long long)cfg->max_body) {
        reply_error(st, r, &probe, 413, "too_large", NULL,
                    "request body of %llu bytes exceeds max_request_body_size %lld", clen,
                    (long long)cfg->max_body);
        return;
    }
    int64_t limit = atomic_load(&mt_mem_limit);
    if (limit > 0 && atomic_load(&mt_mem_in_use) + (int64_t)clen > limit) {
        reply_error(st, r, &probe, 503, "memory_limit", "1",
                    "memory limit reached (%lld bytes in use); retry later",
                    (long long)atomic_load(&mt_mem_in_use));
        return;
    }
    memcpy(probe.tenant, ac.tenant, sizeof(probe.tenant));
    prw_req_t *rq = calloc(1, sizeof(*rq));
    if (!rq) {
        reply_error(st, r, &probe, 503, "out_of_memory", "1", "out of memory");
        return;
    }
    *rq = probe;
    r->user = rq;
}

static const uint8_t framed_magic[10] = {0xff, 0x06, 0x00, 0x00, 0x73,
                                         0x4e, 0x61, 0x50, 0x70, 0x59};

static void prw_complete(void *arg, http_req_t *r)
{
    prw_state_t *st = arg;
    prw_rcfg_t *cfg = st->r->cfg;
    prw_req_t req = *(prw_req_t *)r->user;
    free(r->user);
    r->user = NULL;
    prw_req_t *rq = &req;
    if (r->too_big) {
        reply_error(st, r, rq, 413, "too_large", NULL,
                    "request body exceeds max_request_body_size %lld bytes",
                    (long long)cfg->max_body);
        return;
    }
    tm_add(st->cnt.bytes, r->len);
    if (r->len >= sizeof(framed_magic) &&
        memcmp(r->body, framed_magic, sizeof(framed_magic)) == 0) {
        reply_error(st, r, rq, 400, "bad_compression", NULL,
                    "framed snappy is not supported; remote write uses the snappy block format");
        return;
    }
    size_t dcap = recv_decode_cap(cfg->max_decoded, cfg->max_body);
    arena_t *a = recv_arena(dcap);
    if (!a) {
        reply_error(st, r, rq, 503, "out_of_memory", "1", "out of memory");
        return;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint8_t *data = NULL;
    size_t len = 0;
    /* the snappy header states the decompressed size: checked against the cap before any
     * allocation (codec.c), so a small body cannot claim gigabytes */
    int rcode = codec_decompress(CODEC_SNAPPY, r->body ? r->body : (uint8_t *)"", r->len,
                                 (size_t)cfg->max_body, a, &data, &len, &eb);
    if (arena_over_cap(a) || arena_over_limit(a)) {
        goto refuse; /* no room for the decompressed body under the request's cap or limit */
    } else if (rcode == MT_ETOOBIG) {
        reply_error(st, r, rq, 413, "too_large", NULL,
                    "decompressed body exceeds max_request_body_size %lld bytes",
                    (long long)cfg->max_body);
        goto done;
    } else if (rcode != MT_OK) {
        reply_error(st, r, rq, rcode == MT_ENOMEM ? 503 : 400,
                    rcode == MT_ENOMEM ? "out_of_memory" : "bad_compression",
                    rcode == MT_ENOMEM ? "1" : NULL, "%s", eb.set ? eb.msg : mt_strerror(rcode));
        goto done;
    }
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *msg = NULL;
    prw_stats_t stats;
    memset(&stats, 0, sizeof(stats));
    int native = st->native && rq->version == 1;
    prw_wire_stats_t ws;
    memset(&ws, 0, sizeof(ws));
    if (native && (rcode = prw_wire_check(data, len, &ws, &eb)) == MT_OK && ws.unsorted) {
        /* labels out of order: the bytes cannot go on as they came (receivers downstream
         * refuse them), so this request takes the converting path, which sorts; rare
         * enough that re-encoding the series in place is not worth its code */
        native = 0;
    }
    if (native) {
        /* pass-through: validate on the wire; convert only when the rules for histograms,
         * exemplars and classic parts apply, or an observer (the SLO engine) needs OTLP */
        if (rcode == MT_OK && (ws.complex || pipeline_observer_count() > 0)) {
            rcode = prw_to_otlp(1, data, len, a, &msg, &stats, &eb);
        }
        stats.series = ws.series;
        stats.samples = ws.samples;
        stats.histograms = ws.histograms;
        /* the items of a pass-through batch are its samples and native histograms */
        stats.points = ws.samples + ws.histograms;
    } else {
        rcode = prw_to_otlp(rq->version, data, len, a, &msg, &stats, &eb);
    }
    if (rcode != MT_OK && (rcode == MT_ENOMEM || arena_over_cap(a) || arena_over_limit(a))) {
        goto refuse; /* protobuf-c reports a refused allocation as a decode error */
    }
    if (rcode != MT_OK) {
        int oom = rcode == MT_ENOMEM;
        reply_error(st, r, rq, oom ? 503 : 400, oom ? "out_of_memory" : "invalid_data",
                    oom ? "1" : NULL, "%s", eb.set ? eb.msg : mt_strerror(rcode));
        goto done;
    }
    uint64_t items = stats.points;
    tm_add(st->cnt.items_in, items);
    tm_add(st->c_unsorted, stats.unsorted);
    consume_result_t res;
    memset(&res, 0, sizeof(res));
    if (items == 0 && !(native && ws.metadata > 0)) {
        /* metadata-only requests (and target_info-only ones) carry no data points; passed
         * through, metadata travels on as it came */
        res.status = MT_OK;
    } else {
        /* multi-tenant senders (Mimir/Cortex style) name the tenant in X-Scope-OrgID */
        const char *org = rq->tenant;
        if (native) {
            pipeline_consume_encoded(st->r->pipes[MT_SIG_METRICS], st->r->npipes[MT_SIG_METRICS],
                                     MT_SIG_METRICS, MT_FMT_PRW1, data, len, items, org,
                                     msg ? &msg->base : NULL, &res);
        } else {
            pipeline_consume(st->r->pipes[MT_SIG_METRICS], st->r->npipes[MT_SIG_METRICS],
                             MT_SIG_METRICS, &msg->base, NULL, 0, items, org, a, &res);
        }
    }
    if (res.status == MT_AGAIN) {
        reply_error(st, r, rq, 429, "queue_full", "1", "%s", res.msg);
        recv_count_items(&st->cnt, "queue_full", items);
        goto done;
    }
    if (res.status == MT_ETOOBIG) {
        reply_error(st, r, rq, 413, "batch_too_large", NULL, "%s", res.msg);
        recv_count_items(&st->cnt, "batch_too_large", items);
        goto done;
    }
    if (res.status != MT_OK) {
        reply_error(st, r, rq, 503, res.status == MT_ENOMEM ? "out_of_memory" : "pipeline_error",
                    "1", "%s", res.msg[0] ? res.msg : mt_strerror(res.status));
        goto done;
    }
    tm_add(st->cnt.items_ok, items);
    if (!native) {
        /* converted, the exemplars with nothing to attach to are gone (passed through, the
         * bytes keep them) */
        tm_add(st->c_exm_no_sample, stats.exemplars_no_sample);
        tm_add(st->c_exm_summary, stats.exemplars_on_summary);
    }
    rq->written = stats;
    respond(r, 204, NULL, 0, NULL, rq);
    count_request(st, 204, NULL, 0);
    goto done;
refuse : {
    int status;
    const char *reason;
    char msg[256];
    recv_decode_refusal(a, dcap, &status, &reason, msg, sizeof(msg));
    reply_error(st, r, rq, status, reason, status == 503 ? "1" : NULL, "%s", msg);
}
done:
    recv_arena_done(a);
}

static int prw_start(receiver_t *rv, mt_errbuf_t *eb)
{
    prw_rcfg_t *cfg = rv->cfg;
    prw_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->r = rv;
    snprintf(st->labels, sizeof(st->labels), "receiver=\"%s\",signal=\"metrics\"", rv->id);
    recv_counters_init(&st->cnt, st->labels, rv->id);
    st->c_unsorted = tm_counter("meltp_receiver_prw_unsorted_labels_total",
                                "Remote-write series whose label names came out of order and "
                                "were sorted (such a request is converted, not passed through).",
                                st->labels);
    char lb[sizeof(st->labels) + 32];
    snprintf(lb, sizeof(lb), "%s,reason=\"no_sample\"", st->labels);
    st->c_exm_no_sample = tm_counter("meltp_receiver_dropped_exemplars_total",
                                     "Remote-write 1.0 exemplars accepted with their request but "
                                     "dropped: no sample of their series to attach to "
                                     "(no_sample), or on a summary (summary).",
                                     lb);
    snprintf(lb, sizeof(lb), "%s,reason=\"summary\"", st->labels);
    st->c_exm_summary = tm_counter("meltp_receiver_dropped_exemplars_total",
                                   "Remote-write 1.0 exemplars accepted with their request but "
                                   "dropped: no sample of their series to attach to "
                                   "(no_sample), or on a summary (summary).",
                                   lb);
    rv->state = st;
    /* the queues exist and observers registered before receivers start: this is final */
    st->native =
        cfg->passthrough &&
        pipeline_accepts_format(rv->pipes[MT_SIG_METRICS], rv->npipes[MT_SIG_METRICS], MT_FMT_PRW1);
    http_handler_t h = {
        .begin = prw_begin, .complete = prw_complete, .arg = st, .refused = prw_refused};
    if (recv_http_start(rv, &st->srv, cfg->endpoint, cfg->threads, cfg->max_body, &cfg->tls, &h,
                        eb)) {
        return MT_ERR;
    }
    mt_log(MT_LOG_INFO, "receiver %s: Prometheus remote write on %s%s%s", rv->id, cfg->endpoint,
           cfg->path, st->native ? " (1.0 passed through as received)" : "");
    return MT_OK;
}

static void prw_stop(receiver_t *rv)
{
    prw_state_t *st = rv->state;
    if (st) {
        recv_http_stop(rv, st->srv, &st->cnt, 1);
    }
}

const receiver_ops_t receiver_prometheusremotewrite_ops = {
    .type = "prometheusremotewrite",
    .fields = prw_fields,
    .nfields = MT_ARRAY_LEN(prw_fields),
    .cfg_size = sizeof(prw_rcfg_t),
    .signals = SIG_BIT(MT_SIG_METRICS),
    .help = "Prometheus remote write 1.0 and 2.0 receiver (snappy; -> OTLP metrics)",
    .validate = prw_validate,
    .start = prw_start,
    .stop = prw_stop,
};
