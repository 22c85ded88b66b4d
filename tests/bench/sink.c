/*
 * sink.c - a counting OTLP/HTTP and Prometheus remote-write backend for the benchmark and
 * integration tests. It accepts POST /v1/traces, /v1/metrics and /v1/logs (protobuf or JSON,
 * optionally gzip- or zstd-compressed), counts spans, data points and log records, and answers
 * 200 with an empty Export*ServiceResponse. It also accepts POST /api/v1/write (remote write
 * 1.0 or 2.0, chosen by Content-Type, snappy), counts series, samples, histograms, exemplars
 * and, apart, the samples of `target_info` series, and answers 204 (for 2.0 with the
 * X-Prometheus-Remote-Write-*-Written headers). GET /stats returns the running totals as JSON.
 *
 * It must never be the bottleneck of a benchmark, and on a 2-core machine every CPU cycle it
 * spends is taken from meltp. A full protobuf-c unpack costs about 2 CPU-s per million spans,
 * more than meltp's own budget, so protobuf bodies are counted by walking the wire format
 * (the envelope levels only, spans are skipped by length) and only every --verify-every'th
 * request is also unpacked in full with plain protobuf-c (no arena: the sink shares no code
 * with what it measures), checking the two counts agree. The default verifies every request,
 * which is what integration tests want; bench.sh samples. Remote-write bodies are counted the
 * same way: libsnappy (not meltp's codec) inflates them, a walk counts each series' samples and
 * reads its labels only up to __name__ (to tell target_info apart), and every N'th is unpacked
 * with protobuf-c too. One thread per connection.
 *
 *   sink --port PORT [--verify-every N] [--delay-ms N] [--status CODE]
 *
 * With --port 0 it picks a free port. Either way the first line on stdout is "port N".
 */
#include "otlp_collector.pb-c.h"
#include "prom_rw1.pb-c.h"
#include "prom_rw2.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

/* Caps on what one request may make us hold: wire bytes and decompressed bytes. */
#define SINK_MAX_BODY       (64u << 20)
#define SINK_MAX_DECODED    (256u << 20)
/* Idle keep-alive connections are closed after this, so a dead client cannot pin a thread. */
#define SINK_IDLE_TIMEOUT_S 120

typedef enum {
    SINK_TRACES = 0,
    SINK_METRICS,
    SINK_LOGS,
    SINK_RW, /* POST /api/v1/write */
    SINK_STATS,
    SINK_OTHER
} sink_route_t;

typedef struct {
    sink_route_t route;
    int is_post;
    uint8_t *body;
    size_t len, cap;
    int too_big;
} sink_req_t;

static struct {
    atomic_llong requests; /* export requests answered 2xx */
    atomic_llong rejected; /* export requests answered with --status (not 2xx) */
    atomic_llong errors;   /* bodies that could not be decompressed or decoded */
    atomic_llong items[3]; /* spans, data points, log records */
    atomic_llong bytes;    /* wire bytes of export bodies */
    atomic_llong decoded_bytes;
    /* remote write */
    atomic_llong series, samples, histograms, exemplars;
    atomic_llong target_info_samples; /* included in samples */
} g_stats;

static int g_delay_ms;
static int g_status = 200;
static int g_verify_every = 1;
static atomic_llong g_export_seq; /* picks which requests get the full decode */

/* ---- decoding ----------------------------------------------------------------------------- */

/* Inflates gzip or zlib data into a fresh buffer. Returns NULL on corrupt or oversize input. */
static uint8_t *sink_gunzip(const uint8_t *in, size_t in_len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 32 + MAX_WBITS: detect gzip or zlib headers, both seen in the wild as "gzip". */
    if (inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) {
        return NULL;
    }
    size_t cap = in_len * 4 + 1024, len = 0;
    uint8_t *out = malloc(cap);
    int rc = Z_OK;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    while (out && rc != Z_STREAM_END) {
        if (len == cap) {
            size_t ncap = cap * 2;
            uint8_t *p = ncap <= SINK_MAX_DECODED ? realloc(out, ncap) : NULL;
            if (!p) {
                free(out);
                out = NULL;
                break;
            }
            out = p;
            cap = ncap;
        }
        zs.next_out = out + len;
        zs.avail_out = (uInt)(cap - len);
        rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && zs.avail_out == 0)) {
            free(out);
            out = NULL;
        }
    }
    inflateEnd(&zs);
    *out_len = len;
    return out;
}

static uint8_t *sink_unzstd(const uint8_t *in, size_t in_len, size_t *out_len)
{
    ZSTD_DStream *zd = ZSTD_createDStream();
    if (!zd) {
        return NULL;
    }
    size_t cap = in_len * 4 + 1024, len = 0;
    uint8_t *out = malloc(cap);
    ZSTD_inBuffer ib = {in, in_len, 0};
    size_t rc = 1;
    /* rc == 0 means a frame ended; stop when the frame is done and all input consumed. */
    while (out && (rc != 0 || ib.pos < ib.size)) {
        if (len == cap) {
            size_t ncap = cap * 2;
            uint8_t *p = ncap <= SINK_MAX_DECODED ? realloc(out, ncap) : NULL;
            if (!p) {
                free(out);
                out = NULL;
                break;
            }
            out = p;
            cap = ncap;
        }
        ZSTD_outBuffer ob = {out + len, cap - len, 0};
        rc = ZSTD_decompressStream(zd, &ob, &ib);
        len += ob.pos;
        if (ZSTD_isError(rc) || (ob.pos == 0 && ib.pos == ib.size && rc != 0 && len < cap)) {
            /* An error, or truncated input: no progress and more output was expected. */
            free(out);
            out = NULL;
        }
    }
    ZSTD_freeDStream(zd);
    *out_len = len;
    return out;
}

/* ---- counting on the wire ---------------------------------------------------------------- */

/* A cursor over the fields of one protobuf message. */
typedef struct {
    const uint8_t *p, *end;
} sink_pbw_t;

static int sink_varint(sink_pbw_t *w, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end) {
            return -1;
        }
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            return 0;
        }
    }
    return -1;
}

/* Advances to the next field. Returns 1 with its number, its wire type in *wt, for
 * length-delimited fields its bytes in *sub and for varints its value in *v; 0 at the end, -1
 * on malformed input. */
static int sink_pbw_next_v(sink_pbw_t *w, uint32_t *field, sink_pbw_t *sub, uint64_t *v, int *wt)
{
    uint64_t key;
    if (w->p == w->end) {
        return 0;
    }
    if (sink_varint(w, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) {
        return -1;
    }
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    *v = 0;
    sub->p = sub->end = NULL;
    switch (key & 7) {
    case 0:
        return sink_varint(w, v) < 0 ? -1 : 1;
    case 1:
        if (w->end - w->p < 8) {
            return -1;
        }
        w->p += 8;
        return 1;
    case 2:
        if (sink_varint(w, v) < 0 || *v > (uint64_t)(w->end - w->p)) {
            return -1;
        }
        sub->p = w->p;
        sub->end = w->p + *v;
        w->p += *v;
        return 1;
    case 5:
        if (w->end - w->p < 4) {
            return -1;
        }
        w->p += 4;
        return 1;
    default:
        return -1; /* groups (3, 4) are not used by OTLP or remote write */
    }
}

/* The same, for callers that need only the number and the bytes. */
static int sink_pbw_next(sink_pbw_t *w, uint32_t *field, sink_pbw_t *sub)
{
    uint64_t v;
    int wt;
    return sink_pbw_next_v(w, field, sub, &v, &wt);
}

/* Counts fields number `path[depth]` found by descending through the length-delimited fields
 * path[0..depth-1]. For metrics, level 3 may be any of several data fields, given in `alts`. */
static long long sink_walk(sink_pbw_t w, const uint32_t *path, int depth, int levels,
                           const uint32_t *alts, int n_alts, int alt_level)
{
    long long items = 0;
    uint32_t f;
    sink_pbw_t sub;
    int rc;
    while ((rc = sink_pbw_next(&w, &f, &sub)) == 1) {
        int match = f == path[depth];
        if (depth == alt_level) {
            match = 0;
            for (int i = 0; i < n_alts; i++) {
                match |= f == alts[i];
            }
        }
        if (!match) {
            continue;
        }
        if (depth == levels - 1) {
            items++;
        } else {
            if (!sub.p) {
                return -1; /* a message field must be length-delimited */
            }
            long long n = sink_walk(sub, path, depth + 1, levels, alts, n_alts, alt_level);
            if (n < 0) {
                return -1;
            }
            items += n;
        }
    }
    return rc < 0 ? -1 : items;
}

/* Counts the items of a protobuf export body from its wire format; -1 when malformed. */
static long long sink_count_wire(sink_route_t route, const uint8_t *p, size_t n)
{
    /* request.resource_* = 1, resource.scope_* = 2, scope.spans / log_records = 2 */
    static const uint32_t spans_or_logs[3] = {1, 2, 2};
    /* request.resource_metrics = 1, .scope_metrics = 2, .metrics = 2, metric.<data> (one of
     * gauge 5, sum 7, histogram 9, exponential_histogram 10, summary 11), .data_points = 1 */
    static const uint32_t metrics[5] = {1, 2, 2, 0, 1};
    static const uint32_t data_fields[5] = {5, 7, 9, 10, 11};
    sink_pbw_t w = {p, p + n};
    if (route == SINK_METRICS) {
        return sink_walk(w, metrics, 0, 5, data_fields, 5, 3);
    }
    return sink_walk(w, spans_or_logs, 0, 3, NULL, 0, -1);
}

/* Counts the items in a protobuf export body by unpacking it in full; -1 when it does not
 * decode. */
static long long sink_count_pb(sink_route_t route, const uint8_t *p, size_t n)
{
    long long items = 0;
    if (route == SINK_TRACES) {
        Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *m =
            opentelemetry__proto__collector__v1__export_trace_service_request__unpack(NULL, n, p);
        if (!m) {
            return -1;
        }
        for (size_t i = 0; i < m->n_resource_spans; i++) {
            for (size_t j = 0; j < m->resource_spans[i]->n_scope_spans; j++) {
                items += (long long)m->resource_spans[i]->scope_spans[j]->n_spans;
            }
        }
        opentelemetry__proto__collector__v1__export_trace_service_request__free_unpacked(m, NULL);
    } else if (route == SINK_METRICS) {
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *m =
            opentelemetry__proto__collector__v1__export_metrics_service_request__unpack(NULL, n, p);
        if (!m) {
            return -1;
        }
        for (size_t i = 0; i < m->n_resource_metrics; i++) {
            Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = m->resource_metrics[i];
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                    Opentelemetry__Proto__Metrics__V1__Metric *mt =
                        rm->scope_metrics[j]->metrics[k];
                    switch (mt->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        items += (long long)mt->gauge->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        items += (long long)mt->sum->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        items += (long long)mt->histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        items += (long long)mt->exponential_histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        items += (long long)mt->summary->n_data_points;
                        break;
                    default:
                        break;
                    }
                }
            }
        }
        opentelemetry__proto__collector__v1__export_metrics_service_request__free_unpacked(m, NULL);
    } else {
        Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *m =
            opentelemetry__proto__collector__v1__export_logs_service_request__unpack(NULL, n, p);
        if (!m) {
            return -1;
        }
        for (size_t i = 0; i < m->n_resource_logs; i++) {
            for (size_t j = 0; j < m->resource_logs[i]->n_scope_logs; j++) {
                items += (long long)m->resource_logs[i]->scope_logs[j]->n_log_records;
            }
        }
        opentelemetry__proto__collector__v1__export_logs_service_request__free_unpacked(m, NULL);
    }
    return items;
}

/* Sums the lengths of the arrays at path[2] under each element of path[0][*].path[1][*]. */
static long long sink_count_json_level(json_t *root, const char *const path[3])
{
    long long items = 0;
    size_t i, j;
    json_t *r, *s;
    json_t *outer = json_object_get(root, path[0]);
    if (outer && !json_is_array(outer)) {
        return -1;
    }
    json_array_foreach(outer, i, r)
    {
        json_t *mid = json_object_get(r, path[1]);
        json_array_foreach(mid, j, s)
        {
            items += (long long)json_array_size(json_object_get(s, path[2]));
        }
    }
    return items;
}

/* OTLP/JSON: counts spans, data points (any metric type) or log records; -1 on bad JSON. */
static long long sink_count_json(sink_route_t route, const uint8_t *p, size_t n)
{
    static const char *const traces[3] = {"resourceSpans", "scopeSpans", "spans"};
    static const char *const logs[3] = {"resourceLogs", "scopeLogs", "logRecords"};
    static const char *const types[] = {"gauge", "sum", "histogram", "exponentialHistogram",
                                        "summary"};
    long long items = 0;
    json_t *root = json_loadb((const char *)p, n, 0, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    if (route == SINK_TRACES) {
        items = sink_count_json_level(root, traces);
    } else if (route == SINK_LOGS) {
        items = sink_count_json_level(root, logs);
    } else {
        size_t i, j, k;
        json_t *rm, *sm, *m;
        json_array_foreach(json_object_get(root, "resourceMetrics"), i, rm)
        {
            json_array_foreach(json_object_get(rm, "scopeMetrics"), j, sm)
            {
                json_array_foreach(json_object_get(sm, "metrics"), k, m)
                {
                    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
                        json_t *d = json_object_get(m, types[t]);
                        items += (long long)json_array_size(json_object_get(d, "dataPoints"));
                    }
                }
            }
        }
    }
    json_decref(root);
    return items;
}

/* ---- HTTP --------------------------------------------------------------------------------- */

static enum MHD_Result sink_reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                  const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result sink_stats(struct MHD_Connection *conn)
{
    char buf[768];
    int n = snprintf(
        buf, sizeof(buf),
        "{\"requests\":%lld,\"spans\":%lld,\"data_points\":%lld,\"log_records\":%lld,"
        "\"bytes\":%lld,\"decoded_bytes\":%lld,\"rejected\":%lld,\"errors\":%lld,"
        "\"series\":%lld,\"samples\":%lld,\"histograms\":%lld,\"exemplars\":%lld,"
        "\"target_info_samples\":%lld}\n",
        (long long)atomic_load(&g_stats.requests),
        (long long)atomic_load(&g_stats.items[SINK_TRACES]),
        (long long)atomic_load(&g_stats.items[SINK_METRICS]),
        (long long)atomic_load(&g_stats.items[SINK_LOGS]), (long long)atomic_load(&g_stats.bytes),
        (long long)atomic_load(&g_stats.decoded_bytes), (long long)atomic_load(&g_stats.rejected),
        (long long)atomic_load(&g_stats.errors), (long long)atomic_load(&g_stats.series),
        (long long)atomic_load(&g_stats.samples), (long long)atomic_load(&g_stats.histograms),
        (long long)atomic_load(&g_stats.exemplars),
        (long long)atomic_load(&g_stats.target_info_samples));
    return sink_reply(conn, MHD_HTTP_OK, "application/json", buf, (size_t)n);
}

static enum MHD_Result sink_export(struct MHD_Connection *conn, sink_req_t *rq)
{
    const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    int is_json = ctype && strncasecmp(ctype, "application/json", 16) == 0;
    const uint8_t *data = rq->body;
    size_t len = rq->len;
    uint8_t *decoded = NULL;

    atomic_fetch_add(&g_stats.bytes, (long long)rq->len);
    if (enc && strcasecmp(enc, "gzip") == 0) {
        decoded = sink_gunzip(rq->body, rq->len, &len);
    } else if (enc && strcasecmp(enc, "zstd") == 0) {
        decoded = sink_unzstd(rq->body, rq->len, &len);
    } else if (enc && *enc && strcasecmp(enc, "identity") != 0) {
        atomic_fetch_add(&g_stats.errors, 1);
        return sink_reply(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "text/plain",
                          "unsupported Content-Encoding\n", 29);
    }
    if (enc && (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "zstd") == 0)) {
        if (!decoded) {
            atomic_fetch_add(&g_stats.errors, 1);
            return sink_reply(conn, MHD_HTTP_BAD_REQUEST, "text/plain", "bad compressed body\n",
                              20);
        }
        data = decoded;
    }
    long long items;
    if (is_json) {
        items = sink_count_json(rq->route, data, len);
    } else {
        items = sink_count_wire(rq->route, data, len);
        if (items >= 0 && atomic_fetch_add(&g_export_seq, 1) % g_verify_every == 0) {
            long long full = sink_count_pb(rq->route, data, len);
            if (full != items) {
                fprintf(stderr,
                        "sink: %s body of %zu bytes: full decode counts %lld items, "
                        "wire walk %lld\n",
                        rq->route == SINK_TRACES    ? "traces"
                        : rq->route == SINK_METRICS ? "metrics"
                                                    : "logs",
                        len, full, items);
                items = -1;
            }
        }
    }
    free(decoded);
    if (items < 0) {
        atomic_fetch_add(&g_stats.errors, 1);
        return sink_reply(conn, MHD_HTTP_BAD_REQUEST, "text/plain", "undecodable body\n", 17);
    }
    atomic_fetch_add(&g_stats.decoded_bytes, (long long)len);
    if (g_delay_ms > 0) {
        /* Thread per connection: sleeping here slows only this exporter connection, like a
         * slow backend would. */
        struct timespec ts = {g_delay_ms / 1000, (long)(g_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        }
    }
    if (g_status < 200 || g_status >= 300) {
        atomic_fetch_add(&g_stats.rejected, 1);
        return sink_reply(conn, (unsigned)g_status, "text/plain", "rejected by --status\n", 21);
    }
    atomic_fetch_add(&g_stats.requests, 1);
    atomic_fetch_add(&g_stats.items[rq->route], items);
    /* An empty Export*ServiceResponse encodes to zero bytes in protobuf and "{}" in JSON. */
    if (is_json) {
        return sink_reply(conn, (unsigned)g_status, "application/json", "{}", 2);
    }
    return sink_reply(conn, (unsigned)g_status, "application/x-protobuf", "", 0);
}

/* ---- remote write -------------------------------------------------------------------------- */

/* What one remote-write body carried. target_info series are counted apart: meltp's exporter
 * adds one per (job, instance) and batch, which a sender never sent. */
typedef struct {
    long long series, samples, histograms, exemplars, target_info_samples;
} sink_rw_count_t;

static int sink_bytes_eq(const sink_pbw_t *s, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(s->end - s->p) == n && memcmp(s->p, lit, n) == 0;
}

/* RW 1.0 prometheus.WriteRequest: timeseries (1) -> labels (1: name 1, value 2), samples (2),
 * exemplars (3), histograms (4). Returns 0, or -1 when malformed. */
static int sink_rw1_walk(const uint8_t *p, size_t n, sink_rw_count_t *c)
{
    sink_pbw_t w = {p, p + n}, ts, sub;
    uint32_t f;
    int rc;
    while ((rc = sink_pbw_next(&w, &f, &ts)) == 1) {
        if (f != 1) {
            continue; /* metadata (3) */
        }
        if (!ts.p) {
            return -1;
        }
        long long samples = 0;
        int is_ti = 0, named = 0, rc2;
        c->series++;
        while ((rc2 = sink_pbw_next(&ts, &f, &sub)) == 1) {
            if (f == 1 && !named) {
                /* Labels until __name__: sorted senders put it first or nearly. */
                sink_pbw_t lab = sub, part, name = {NULL, NULL}, value = {NULL, NULL};
                uint32_t lf;
                int rc3;
                if (!lab.p) {
                    return -1;
                }
                while ((rc3 = sink_pbw_next(&lab, &lf, &part)) == 1) {
                    if (lf == 1) {
                        name = part;
                    } else if (lf == 2) {
                        value = part;
                    }
                }
                if (rc3 < 0) {
                    return -1;
                }
                if (name.p && sink_bytes_eq(&name, "__name__")) {
                    named = 1;
                    is_ti = value.p && sink_bytes_eq(&value, "target_info");
                }
            } else if (f == 2) {
                samples++;
            } else if (f == 3) {
                c->exemplars++;
            } else if (f == 4) {
                c->histograms++;
            }
        }
        if (rc2 < 0) {
            return -1;
        }
        c->samples += samples;
        if (is_ti) {
            c->target_info_samples += samples;
        }
    }
    return rc < 0 ? -1 : 0;
}

/* RW 2.0 io.prometheus.write.v2.Request: symbols (4), timeseries (5) -> labels_refs (1, packed
 * or not), samples (2), histograms (3), exemplars (4). A first pass finds the symbol numbers of
 * "__name__" and "target_info" (symbols may come in any order relative to the series). */
static int sink_rw2_walk(const uint8_t *p, size_t n, sink_rw_count_t *c)
{
    sink_pbw_t w = {p, p + n}, sub;
    uint32_t f;
    int rc;
    uint64_t sym = 0, name_ref = UINT64_MAX, ti_ref = UINT64_MAX, v;
    int wt;
    while ((rc = sink_pbw_next_v(&w, &f, &sub, &v, &wt)) == 1) {
        if (f == 4) {
            if (!sub.p) {
                return -1;
            }
            if (sink_bytes_eq(&sub, "__name__")) {
                name_ref = sym;
            } else if (sink_bytes_eq(&sub, "target_info")) {
                ti_ref = sym;
            }
            sym++;
        }
    }
    if (rc < 0) {
        return -1;
    }
    w.p = p;
    while ((rc = sink_pbw_next_v(&w, &f, &sub, &v, &wt)) == 1) {
        if (f != 5) {
            continue;
        }
        if (!sub.p) {
            return -1;
        }
        sink_pbw_t ts = sub;
        long long samples = 0;
        int is_ti = 0, rc2;
        /* labels_refs as a flat list of name, value, name, value, ...; packed runs and single
         * varints may be mixed, so the position in the list carries over. */
        uint64_t n_refs = 0, prev = 0;
        c->series++;
        while ((rc2 = sink_pbw_next_v(&ts, &f, &sub, &v, &wt)) == 1) {
            if (f == 1) {
                if (wt != 0 && wt != 2) {
                    return -1;
                }
                sink_pbw_t packed = sub;
                int single = wt == 0;
                while (single || packed.p < packed.end) {
                    if (!single && sink_varint(&packed, &v) < 0) {
                        return -1;
                    }
                    if (n_refs % 2 == 1 && prev == name_ref && v == ti_ref) {
                        is_ti = 1;
                    }
                    prev = v;
                    n_refs++;
                    if (single) {
                        break;
                    }
                }
            } else if (f == 2) {
                samples++;
            } else if (f == 3) {
                c->histograms++;
            } else if (f == 4) {
                c->exemplars++;
            }
        }
        if (rc2 < 0) {
            return -1;
        }
        c->samples += samples;
        if (is_ti) {
            c->target_info_samples += samples;
        }
    }
    return rc < 0 ? -1 : 0;
}

/* The same counts from a full protobuf-c unpack; -1 when the body does not decode. */
static int sink_rw_full(int version, const uint8_t *p, size_t n, sink_rw_count_t *c)
{
    memset(c, 0, sizeof(*c));
    if (version == 1) {
        Prometheus__WriteRequest *m = prometheus__write_request__unpack(NULL, n, p);
        if (!m) {
            return -1;
        }
        for (size_t i = 0; i < m->n_timeseries; i++) {
            const Prometheus__TimeSeries *ts = m->timeseries[i];
            int is_ti = 0;
            for (size_t j = 0; j < ts->n_labels; j++) {
                if (strcmp(ts->labels[j]->name, "__name__") == 0) {
                    is_ti = strcmp(ts->labels[j]->value, "target_info") == 0;
                    break;
                }
            }
            c->series++;
            c->samples += (long long)ts->n_samples;
            c->histograms += (long long)ts->n_histograms;
            c->exemplars += (long long)ts->n_exemplars;
            c->target_info_samples += is_ti ? (long long)ts->n_samples : 0;
        }
        prometheus__write_request__free_unpacked(m, NULL);
        return 0;
    }
    Io__Prometheus__Write__V2__Request *m = io__prometheus__write__v2__request__unpack(NULL, n, p);
    if (!m) {
        return -1;
    }
    for (size_t i = 0; i < m->n_timeseries; i++) {
        const Io__Prometheus__Write__V2__TimeSeries *ts = m->timeseries[i];
        int is_ti = 0;
        for (size_t j = 0; j + 1 < ts->n_labels_refs; j += 2) {
            uint32_t nr = ts->labels_refs[j], vr = ts->labels_refs[j + 1];
            if (nr < m->n_symbols && vr < m->n_symbols && strcmp(m->symbols[nr], "__name__") == 0) {
                is_ti = strcmp(m->symbols[vr], "target_info") == 0;
            }
        }
        c->series++;
        c->samples += (long long)ts->n_samples;
        c->histograms += (long long)ts->n_histograms;
        c->exemplars += (long long)ts->n_exemplars;
        c->target_info_samples += is_ti ? (long long)ts->n_samples : 0;
    }
    io__prometheus__write__v2__request__free_unpacked(m, NULL);
    return 0;
}

/* Remote-write version from Content-Type (protocols.md 3.4): 1, 2, or 0 when unsupported.
 * No Content-Type at all is taken as 1.0, as Prometheus does. */
static int sink_rw_version(const char *ctype)
{
    if (!ctype || !*ctype) {
        return 1;
    }
    if (strncasecmp(ctype, "application/x-protobuf", 22) != 0) {
        return 0;
    }
    const char *rest = ctype + 22;
    while (*rest == ' ' || *rest == '\t') {
        rest++;
    }
    if (!*rest) {
        return 1;
    }
    if (*rest++ != ';') {
        return 0;
    }
    while (*rest == ' ' || *rest == '\t') {
        rest++;
    }
    if (strncasecmp(rest, "proto=", 6) != 0) {
        return 0;
    }
    rest += 6;
    sink_pbw_t msg = {(const uint8_t *)rest, (const uint8_t *)rest + strcspn(rest, " \t;")};
    if (sink_bytes_eq(&msg, "prometheus.WriteRequest")) {
        return 1;
    }
    return sink_bytes_eq(&msg, "io.prometheus.write.v2.Request") ? 2 : 0;
}

/* Answers a remote-write request: 204 and, for 2.0, the written counts (protocols.md 3.4). */
static enum MHD_Result sink_rw_reply(struct MHD_Connection *conn, unsigned status, int version,
                                     const sink_rw_count_t *c, const char *msg)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(msg ? strlen(msg) : 0, (void *)msg, MHD_RESPMEM_MUST_COPY);
    if (!r) {
        return MHD_NO;
    }
    if (msg) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    }
    if (version == 2) {
        char v[32];
        snprintf(v, sizeof(v), "%lld", c ? c->samples : 0);
        MHD_add_response_header(r, "X-Prometheus-Remote-Write-Samples-Written", v);
        snprintf(v, sizeof(v), "%lld", c ? c->histograms : 0);
        MHD_add_response_header(r, "X-Prometheus-Remote-Write-Histograms-Written", v);
        snprintf(v, sizeof(v), "%lld", c ? c->exemplars : 0);
        MHD_add_response_header(r, "X-Prometheus-Remote-Write-Exemplars-Written", v);
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result sink_rw_export(struct MHD_Connection *conn, sink_req_t *rq)
{
    const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    int version = sink_rw_version(ctype);
    size_t len = 0;
    sink_rw_count_t c = {0, 0, 0, 0, 0};

    atomic_fetch_add(&g_stats.bytes, (long long)rq->len);
    if (version == 0 || !enc || strcasecmp(enc, "snappy") != 0) {
        atomic_fetch_add(&g_stats.errors, 1);
        return sink_rw_reply(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, version, NULL,
                             "remote write needs Content-Encoding: snappy and Content-Type: "
                             "application/x-protobuf[;proto=prometheus.WriteRequest|"
                             "io.prometheus.write.v2.Request]\n");
    }
    uint8_t *raw = NULL;
    if (snappy_uncompressed_length((const char *)rq->body, rq->len, &len) == SNAPPY_OK &&
        len <= SINK_MAX_DECODED) {
        raw = malloc(len ? len : 1);
        if (raw &&
            snappy_uncompress((const char *)rq->body, rq->len, (char *)raw, &len) != SNAPPY_OK) {
            free(raw);
            raw = NULL;
        }
    }
    if (!raw) {
        atomic_fetch_add(&g_stats.errors, 1);
        return sink_rw_reply(conn, MHD_HTTP_BAD_REQUEST, version, NULL,
                             "bad snappy block (or over the size cap)\n");
    }
    int ok = (version == 1 ? sink_rw1_walk(raw, len, &c) : sink_rw2_walk(raw, len, &c)) == 0;
    if (ok && atomic_fetch_add(&g_export_seq, 1) % g_verify_every == 0) {
        sink_rw_count_t full;
        if (sink_rw_full(version, raw, len, &full) < 0 || memcmp(&full, &c, sizeof(c)) != 0) {
            fprintf(stderr,
                    "sink: remote-write %d.0 body of %zu bytes: full decode counts "
                    "%lld series %lld samples %lld target_info samples, wire walk %lld "
                    "%lld %lld\n",
                    version, len, full.series, full.samples, full.target_info_samples, c.series,
                    c.samples, c.target_info_samples);
            ok = 0;
        }
    }
    free(raw);
    if (!ok) {
        atomic_fetch_add(&g_stats.errors, 1);
        return sink_rw_reply(conn, MHD_HTTP_BAD_REQUEST, version, NULL, "undecodable body\n");
    }
    atomic_fetch_add(&g_stats.decoded_bytes, (long long)len);
    if (g_delay_ms > 0) {
        struct timespec ts = {g_delay_ms / 1000, (long)(g_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        }
    }
    if (g_status < 200 || g_status >= 300) {
        atomic_fetch_add(&g_stats.rejected, 1);
        return sink_rw_reply(conn, (unsigned)g_status, version, NULL, "rejected by --status\n");
    }
    atomic_fetch_add(&g_stats.requests, 1);
    atomic_fetch_add(&g_stats.series, c.series);
    atomic_fetch_add(&g_stats.samples, c.samples);
    atomic_fetch_add(&g_stats.histograms, c.histograms);
    atomic_fetch_add(&g_stats.exemplars, c.exemplars);
    atomic_fetch_add(&g_stats.target_info_samples, c.target_info_samples);
    /* 204 whatever --status says among the 2xx: remote write answers success with no body. */
    return sink_rw_reply(conn, MHD_HTTP_NO_CONTENT, version, &c, NULL);
}

static enum MHD_Result sink_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)cls;
    (void)version;
    sink_req_t *rq = *con_cls;

    if (!rq) {
        /* First call: only headers are known. Route now, read the body in later calls. */
        rq = calloc(1, sizeof(*rq));
        if (!rq) {
            return MHD_NO;
        }
        rq->is_post = strcmp(method, "POST") == 0;
        if (strcmp(url, "/v1/traces") == 0) {
            rq->route = SINK_TRACES;
        } else if (strcmp(url, "/v1/metrics") == 0) {
            rq->route = SINK_METRICS;
        } else if (strcmp(url, "/v1/logs") == 0) {
            rq->route = SINK_LOGS;
        } else if (strcmp(url, "/api/v1/write") == 0) {
            rq->route = SINK_RW;
        } else if (strcmp(url, "/stats") == 0) {
            rq->route = SINK_STATS;
        } else {
            rq->route = SINK_OTHER;
        }
        *con_cls = rq;
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_big || rq->len + n > SINK_MAX_BODY) {
            rq->too_big = 1; /* keep reading and discarding, answer 413 at the end */
            return MHD_YES;
        }
        if (rq->len + n > rq->cap) {
            size_t ncap = rq->cap ? rq->cap : 64 * 1024;
            while (ncap < rq->len + n) {
                ncap *= 2;
            }
            uint8_t *p = realloc(rq->body, ncap);
            if (!p) {
                return MHD_NO;
            }
            rq->body = p;
            rq->cap = ncap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }

    if (rq->route == SINK_STATS) {
        return sink_stats(conn);
    }
    if (rq->route == SINK_OTHER) {
        return sink_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
    }
    if (!rq->is_post) {
        return sink_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "POST only\n", 10);
    }
    if (rq->too_big) {
        atomic_fetch_add(&g_stats.errors, 1);
        return sink_reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain", "body too large\n", 15);
    }
    if (rq->route == SINK_RW) {
        return sink_rw_export(conn, rq);
    }
    return sink_export(conn, rq);
}

static void sink_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    sink_req_t *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

static void sink_usage(FILE *f)
{
    fprintf(f,
            "usage: sink --port PORT [--verify-every N] [--delay-ms N] [--status CODE]\n"
            "Counting OTLP/HTTP (/v1/traces|metrics|logs) and Prometheus remote-write\n"
            "(/api/v1/write, 1.0 and 2.0) sink on 127.0.0.1. PORT 0 picks a free port; the\n"
            "first line on stdout is \"port N\". GET /stats returns the totals as JSON.\n"
            "  --verify-every N  fully decode 1 protobuf request in N (default 1: all)\n"
            "  --delay-ms N      wait N ms before answering each export\n"
            "  --status CODE     answer exports with CODE (e.g. 503) and count them as rejected\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},   {"delay-ms", required_argument, NULL, 'd'},
        {"status", required_argument, NULL, 's'}, {"verify-every", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int port = -1, o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'd':
            g_delay_ms = atoi(optarg);
            break;
        case 's':
            g_status = atoi(optarg);
            break;
        case 'v':
            g_verify_every = atoi(optarg);
            break;
        case 'h':
            sink_usage(stdout);
            return 0;
        default:
            sink_usage(stderr);
            return 2;
        }
    }
    if (optind != argc || port < 0 || port > 65535 || g_delay_ms < 0 || g_delay_ms > 600000 ||
        g_status < 100 || g_status > 599 || g_verify_every < 1) {
        sink_usage(stderr);
        return 2;
    }

    /* Block the stop signals before MHD starts its threads so they inherit the mask and only
     * sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, sink_handler, NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_NOTIFY_COMPLETED, sink_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)SINK_IDLE_TIMEOUT_S, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "sink: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port %u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
