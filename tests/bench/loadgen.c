/*
 * loadgen.c - the benchmark's OTLP/HTTP load generator. At start it encodes a few distinct
 * ExportTraceServiceRequest bodies of realistic spans (web-service traces: a SERVER span with
 * database, HTTP-client and internal children), then sends them over N keep-alive connections,
 * one thread and one curl easy handle per connection. Without --rate it runs closed-loop (each
 * connection sends its next request as soon as the last one is answered: the saturation test);
 * with --rate it paces requests open-loop on a schedule shared by all connections. At the end it
 * prints one JSON line with counts, throughput and request latency percentiles.
 *
 * With --mode rw it speaks Prometheus remote-write 1.0 instead: --active-series distinct series
 * spread over active-series / series-per-request request templates, sent in turn, one sample
 * per series per request. Each template is packed once with protobuf-c; before each send the
 * connection copies it, patches every sample's value (8 fixed bytes) and timestamp (a varint
 * of constant length, 6 bytes for any millisecond time between 1971 and 2109) in place to the
 * send time, and snappy-compresses the result. That costs a memcpy and one snappy pass per
 * request instead of a protobuf encode, and keeps the bodies honest (fresh timestamps, counters
 * that grow). --rate then counts samples per second.
 *
 *   loadgen --url http://127.0.0.1:4318/v1/traces --connections 4 --spans-per-request 1000
 *           --duration 20 [--rate 100000] [--requests N] [--bodies 8]
 *   loadgen --mode rw --url http://127.0.0.1:9201/api/v1/write --connections 4
 *           --series-per-request 2000 --active-series 100000 --duration 20 [--rate 100000]
 *
 * An https:// URL is verified against --cacert FILE (the TLS phases of bench.sh);
 * --fresh-connections opens a new connection (a full TLS handshake) for every request, to
 * measure what a handshake costs the server.
 */
#include "arena.h"
#include "codec.h"
#include "mt.h"
#include "otlp_collector.pb-c.h"
#include "prom_rw1.pb-c.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>
#include <unistd.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Limits on the command line, so a typo cannot ask for a 100 GB body or 10k threads. */
#define LG_MAX_CONNECTIONS        256
#define LG_MAX_SPANS_PER_REQUEST  100000
#define LG_MAX_BODIES             64
#define LG_MAX_DURATION_S         3600
/* A request that takes longer than this is an error: the benchmark must stay bounded. */
#define LG_REQUEST_TIMEOUT_MS     30000
#define LG_CONNECT_TIMEOUT_MS     5000
/* How many error messages to print to stderr before only counting them. */
#define LG_MAX_ERROR_LOGS         5
/* Remote-write mode: ~175 bytes per packed series, so the cap keeps the templates under
 * about 350 MB. */
#define LG_MAX_ACTIVE_SERIES      2000000
#define LG_MAX_SERIES_PER_REQUEST 100000

/* otlp: OTLP/HTTP protobuf; rw: remote write 1.0; grpc: OTLP/gRPC (the same trace bodies,
 * 5-byte prefixed, one nghttp2 client session per connection (h2c, prior knowledge), one call
 * at a time; libcurl 7.88's HTTP/2 fails every request after the first on a connection whose
 * responses end with trailers, so it cannot drive this mode) */
typedef enum { LG_MODE_OTLP = 0, LG_MODE_RW, LG_MODE_GRPC } lg_mode_t;

typedef struct {
    const char *url;
    lg_mode_t mode;
    int connections;
    int spans_per_request;
    double duration_s;
    double rate; /* spans (rw: samples) per second over all connections; 0 = closed loop */
    long long max_requests; /* 0 = no limit */
    int n_bodies;
    /* remote-write mode */
    int series_per_request;
    int active_series;
    int series_per_target;   /* series one scrape target exposes */
    int targets_per_request; /* targets one request mixes (Prometheus shards by series) */
    const char *cacert;      /* CA file for https:// URLs, NULL: the system's */
    int fresh;               /* a new connection per request */
} lg_opts_t;

typedef struct {
    uint8_t *data;
    size_t len;
} lg_body_t;

/* Per-connection state. Counters are private to the thread and summed at the end, so the
 * hot loop shares nothing but the schedule ticket. */
typedef struct {
    int id;
    CURL *curl;
    struct curl_slist *headers;
    uint32_t *lat_us; /* latency of each successful request, microseconds */
    size_t n_lat, cap_lat;
    long long requests, ok, refused, errors;
    long long items_sent; /* spans, or samples in rw mode, of 2xx-answered requests */
    double max_lag_ms;    /* paced mode: worst delay between a request's slot and its start */
    /* remote-write mode: the patched body and its compressed form, reused per request */
    uint8_t *rw_raw;
    uint8_t *rw_body;
    size_t rw_body_len;
    uint64_t encode_ns; /* time spent patching and compressing */
    int grpc_status;    /* grpc mode: grpc-status of the last answer, -1 = none */
    int http_status;    /* grpc mode: :status of the last answer */
    int fd;             /* grpc mode: the connection, -1 when closed */
    nghttp2_session *h2;
    const uint8_t *gbody; /* grpc mode: the message being sent */
    size_t glen, goff;
    int gdone;                 /* the call's stream closed */
    long long body_bytes_sent; /* compressed bytes of every request sent */
} lg_conn_t;

static lg_opts_t g_opts = {
    .url = NULL,
    .connections = 4,
    .spans_per_request = 1000,
    .duration_s = 10,
    .rate = 0,
    .max_requests = 0,
    .n_bodies = 8,
    .series_per_request = 2000,
    .active_series = 100000,
    .series_per_target = 500,
    .targets_per_request = 20,
};
static lg_body_t g_bodies[LG_MAX_BODIES];
static uint64_t g_t0_ns;       /* monotonic start of the run */
static uint64_t g_deadline_ns; /* no request starts after this */
static uint64_t g_interval_ns; /* paced mode: time between two request slots */
static atomic_llong g_ticket;  /* next request number, shared by all connections */
static atomic_int g_error_logs;

/* ---- building realistic spans ------------------------------------------------------------ */

typedef Opentelemetry__Proto__Common__V1__KeyValue lg_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue lg_any_t;
typedef Opentelemetry__Proto__Trace__V1__Span lg_span_t;

/* xorshift64*: deterministic bodies from a seed, good enough for ids and variety. */
static uint64_t lg_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void *lg_need(void *p)
{
    /* Start-up only: building the bodies is not a request path, so running out of memory
     * here ends the program (craft.md rule 11). */
    if (!p) {
        fprintf(stderr, "loadgen: out of memory building requests\n");
        exit(2);
    }
    return p;
}

static lg_kv_t *lg_kv_str(arena_t *a, const char *key, const char *val)
{
    lg_kv_t *kv = lg_need(arena_alloc(a, sizeof(*kv)));
    lg_any_t *v = lg_need(arena_alloc(a, sizeof(*v)));
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = lg_need(arena_strndup(a, key, strlen(key)));
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = lg_need(arena_strndup(a, val, strlen(val)));
    kv->value = v;
    return kv;
}

static lg_kv_t *lg_kv_int(arena_t *a, const char *key, int64_t val)
{
    lg_kv_t *kv = lg_need(arena_alloc(a, sizeof(*kv)));
    lg_any_t *v = lg_need(arena_alloc(a, sizeof(*v)));
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = lg_need(arena_strndup(a, key, strlen(key)));
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = val;
    kv->value = v;
    return kv;
}

static ProtobufCBinaryData lg_id(arena_t *a, uint64_t *rng, size_t len)
{
    ProtobufCBinaryData b;
    b.len = len;
    b.data = lg_need(arena_alloc(a, len));
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = lg_rand(rng);
        memcpy(b.data + i, &r, len - i < 8 ? len - i : 8);
    }
    return b;
}

/* Attribute slots per span: the largest kind below uses 10. */
#define LG_MAX_ATTRS 10

static lg_span_t *lg_span_new(arena_t *a, ProtobufCBinaryData trace_id, const lg_span_t *parent,
                              uint64_t *rng, const char *name, int kind, uint64_t start_ns,
                              uint64_t dur_ns)
{
    lg_span_t *s = lg_need(arena_alloc(a, sizeof(*s)));
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id = trace_id;
    s->span_id = lg_id(a, rng, 8);
    if (parent) {
        s->parent_span_id = parent->span_id;
    }
    s->flags = 0x101; /* sampled, and the parent-is-remote bit known, as the SDKs send it */
    s->name = lg_need(arena_strndup(a, name, strlen(name)));
    s->kind = kind;
    s->start_time_unix_nano = start_ns;
    s->end_time_unix_nano = start_ns + dur_ns;
    s->attributes = lg_need(arena_alloc(a, LG_MAX_ATTRS * sizeof(lg_kv_t *)));
    s->n_attributes = 0;
    return s;
}

static void lg_attr(lg_span_t *s, lg_kv_t *kv)
{
    if (s->n_attributes < LG_MAX_ATTRS) {
        s->attributes[s->n_attributes++] = kv;
    }
}

static void lg_status(arena_t *a, lg_span_t *s, int code)
{
    Opentelemetry__Proto__Trace__V1__Status *st = lg_need(arena_alloc(a, sizeof(*st)));
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = code;
    s->status = st;
}

static const struct {
    const char *method, *route, *path_fmt;
} lg_routes[] = {
    {"GET", "/api/patients/{id}", "/api/patients/%u"},
    {"GET", "/api/doctors/{id}/schedule", "/api/doctors/%u/schedule"},
    {"POST", "/api/appointments", "/api/appointments"},
    {"PUT", "/api/patients/{id}", "/api/patients/%u"},
    {"GET", "/api/invoices/{id}", "/api/invoices/%u"},
};

static const struct {
    const char *op, *table, *text;
} lg_queries[] = {
    {"SELECT", "patients", "SELECT * FROM patients WHERE id = $1"},
    {"SELECT", "appointments", "SELECT * FROM appointments WHERE doctor_id = $1"},
    {"INSERT", "appointments", "INSERT INTO appointments VALUES ($1, $2, $3)"},
    {"UPDATE", "patients", "UPDATE patients SET phone = $2 WHERE id = $1"},
    {"SELECT", "invoices", "SELECT * FROM invoices WHERE id = $1"},
};

/* Appends one trace (a SERVER span and up to four children) to spans[*n], at most `room`
 * spans. The shapes follow what the OpenTelemetry Node.js auto-instrumentation emits for an
 * Express service backed by PostgreSQL, with semantic-convention 1.26 attribute names. */
static void lg_trace(arena_t *a, uint64_t *rng, uint64_t t_ns, lg_span_t **spans, size_t *n,
                     size_t room)
{
    char buf[128];
    ProtobufCBinaryData tid = lg_id(a, rng, 16);
    unsigned r = (unsigned)lg_rand(rng);
    unsigned route = r % MT_ARRAY_LEN(lg_routes);
    unsigned id = 10000 + (unsigned)(lg_rand(rng) % 90000);
    int failed = (lg_rand(rng) % 50) == 0; /* ~2% of requests fail with a 500 */
    int status_code = failed ? 500 : (lg_rand(rng) % 20 == 0 ? 404 : 200);
    uint64_t dur = 2000000 + lg_rand(rng) % 40000000;

    if (*n >= room) {
        return;
    }
    snprintf(buf, sizeof(buf), "%s %s", lg_routes[route].method, lg_routes[route].route);
    lg_span_t *root =
        lg_span_new(a, tid, NULL, rng, buf,
                    OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER, t_ns, dur);
    lg_attr(root, lg_kv_str(a, "http.request.method", lg_routes[route].method));
    snprintf(buf, sizeof(buf), lg_routes[route].path_fmt, id);
    lg_attr(root, lg_kv_str(a, "url.path", buf));
    lg_attr(root, lg_kv_str(a, "url.scheme", "http"));
    lg_attr(root, lg_kv_str(a, "http.route", lg_routes[route].route));
    lg_attr(root, lg_kv_int(a, "http.response.status_code", status_code));
    lg_attr(root, lg_kv_str(a, "server.address", "patient-api"));
    lg_attr(root, lg_kv_int(a, "server.port", 8080));
    snprintf(buf, sizeof(buf), "10.0.%u.%u", (unsigned)(lg_rand(rng) % 8),
             (unsigned)(lg_rand(rng) % 250 + 2));
    lg_attr(root, lg_kv_str(a, "client.address", buf));
    lg_attr(root, lg_kv_str(a, "user_agent.original", "okhttp/4.12.0"));
    lg_attr(root, lg_kv_str(a, "network.protocol.version", "1.1"));
    if (failed) {
        lg_status(a, root, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
        /* An exception event, as the SDK records when a handler throws. */
        Opentelemetry__Proto__Trace__V1__Span__Event *ev = lg_need(arena_alloc(a, sizeof(*ev)));
        opentelemetry__proto__trace__v1__span__event__init(ev);
        ev->time_unix_nano = t_ns + dur - 100000;
        ev->name = "exception";
        ev->attributes = lg_need(arena_alloc(a, 2 * sizeof(lg_kv_t *)));
        ev->attributes[0] = lg_kv_str(a, "exception.type", "QueryTimeoutError");
        ev->attributes[1] = lg_kv_str(a, "exception.message",
                                      "canceling statement due to "
                                      "statement timeout");
        ev->n_attributes = 2;
        root->events = lg_need(arena_alloc(a, sizeof(*root->events)));
        root->events[0] = ev;
        root->n_events = 1;
    }
    spans[(*n)++] = root;

    /* Children: middleware, a query, sometimes an outbound call, a render step. */
    if (*n < room) {
        lg_span_t *s =
            lg_span_new(a, tid, root, rng, "middleware - jwtAuth",
                        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL,
                        t_ns + 50000, 300000 + lg_rand(rng) % 500000);
        lg_attr(s, lg_kv_str(a, "express.type", "middleware"));
        lg_attr(s, lg_kv_str(a, "express.name", "jwtAuth"));
        spans[(*n)++] = s;
    }
    if (*n < room) {
        unsigned q = (unsigned)(lg_rand(rng) % MT_ARRAY_LEN(lg_queries));
        snprintf(buf, sizeof(buf), "%s clinic.%s", lg_queries[q].op, lg_queries[q].table);
        lg_span_t *s =
            lg_span_new(a, tid, root, rng, buf,
                        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT,
                        t_ns + 1000000, dur / 2);
        lg_attr(s, lg_kv_str(a, "db.system", "postgresql"));
        lg_attr(s, lg_kv_str(a, "db.namespace", "clinic"));
        lg_attr(s, lg_kv_str(a, "db.operation.name", lg_queries[q].op));
        lg_attr(s, lg_kv_str(a, "db.collection.name", lg_queries[q].table));
        lg_attr(s, lg_kv_str(a, "db.query.text", lg_queries[q].text));
        lg_attr(s, lg_kv_str(a, "server.address", "pg-primary"));
        lg_attr(s, lg_kv_int(a, "server.port", 5432));
        if (failed) {
            lg_status(a, s,
                      OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
        }
        spans[(*n)++] = s;
    }
    if (*n < room && (r >> 8) % 2 == 0) {
        lg_span_t *s =
            lg_span_new(a, tid, root, rng, "GET",
                        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT,
                        t_ns + 1000000 + dur / 2, dur / 3);
        lg_attr(s, lg_kv_str(a, "http.request.method", "GET"));
        snprintf(buf, sizeof(buf), "http://insurance/v2/coverage/%u", id);
        lg_attr(s, lg_kv_str(a, "url.full", buf));
        lg_attr(s, lg_kv_int(a, "http.response.status_code", 200));
        lg_attr(s, lg_kv_str(a, "server.address", "insurance"));
        lg_attr(s, lg_kv_int(a, "server.port", 80));
        spans[(*n)++] = s;
    }
    if (*n < room) {
        lg_span_t *s =
            lg_span_new(a, tid, root, rng, "render",
                        OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL,
                        t_ns + dur - 400000, 300000);
        lg_attr(s, lg_kv_str(a, "code.function", "renderJson"));
        spans[(*n)++] = s;
    }
}

/* Encodes body number `idx`: one resource, one scope, `n_spans` spans. */
static lg_body_t lg_encode_body(int idx, size_t n_spans)
{
    lg_body_t out = {NULL, 0};
    arena_t *a = lg_need(arena_create(1 << 20, 0));
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(idx + 1);
    char pod[64];

    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    lg_kv_t *rattrs[10];
    snprintf(pod, sizeof(pod), "patient-api-7d9f8b6c5d-%05x", (unsigned)(lg_rand(&rng) % 0xfffff));
    rattrs[0] = lg_kv_str(a, "service.name", "patient-api");
    rattrs[1] = lg_kv_str(a, "service.version", "2.14.3");
    rattrs[2] = lg_kv_str(a, "deployment.environment.name", "production");
    rattrs[3] = lg_kv_str(a, "host.name", "ip-10-0-3-17.eu-west-1.compute.internal");
    rattrs[4] = lg_kv_str(a, "k8s.namespace.name", "clinic");
    rattrs[5] = lg_kv_str(a, "k8s.deployment.name", "patient-api");
    rattrs[6] = lg_kv_str(a, "k8s.pod.name", pod);
    rattrs[7] = lg_kv_str(a, "telemetry.sdk.language", "nodejs");
    rattrs[8] = lg_kv_str(a, "telemetry.sdk.name", "opentelemetry");
    rattrs[9] = lg_kv_str(a, "telemetry.sdk.version", "1.25.1");
    res.attributes = rattrs;
    res.n_attributes = MT_ARRAY_LEN(rattrs);

    Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
        OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    scope.name = "@opentelemetry/instrumentation-http";
    scope.version = "0.52.1";

    lg_span_t **spans = lg_need(arena_alloc(a, (n_spans + 1) * sizeof(*spans)));
    size_t n = 0;
    /* Spans end a few seconds before start-up, spread over one second, as a batching SDK
     * would have recorded them. */
    uint64_t t = mt_wall_ns() - 5000000000ULL + (uint64_t)idx * 1000000000ULL / LG_MAX_BODIES;
    while (n < n_spans) {
        lg_trace(a, &rng, t, spans, &n, n_spans);
        t += 1000000000ULL / (n_spans / 4 + 1);
    }

    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.scope = &scope;
    ss.spans = spans;
    ss.n_spans = n;
    ss.schema_url = "https://opentelemetry.io/schemas/1.26.0";
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;

    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &res;
    rs.scope_spans = &ssp;
    rs.n_scope_spans = 1;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;

    Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = &rsp;
    req.n_resource_spans = 1;

    out.len =
        opentelemetry__proto__collector__v1__export_trace_service_request__get_packed_size(&req);
    out.data = lg_need(malloc(out.len));
    opentelemetry__proto__collector__v1__export_trace_service_request__pack(&req, out.data);
    arena_destroy(a);
    return out;
}

/* ---- remote-write request templates -------------------------------------------------------- */

/* Where one sample sits in a packed template, and how its value moves from send to send. */
typedef struct {
    uint32_t val_off; /* the 8 little-endian bytes of Sample.value */
    uint32_t ts_off;  /* the varint of Sample.timestamp, g_rw_ts_len bytes */
    double base;      /* value on the first send */
    double step;      /* counters: added per send; gauges: size of the wobble */
    int counter;
} lg_rw_slot_t;

typedef struct {
    uint8_t *raw; /* packed prometheus.WriteRequest, timestamps and values as placeholders */
    size_t len;
    size_t n_slots;
    lg_rw_slot_t *slots;
} lg_rw_tmpl_t;

static lg_rw_tmpl_t *g_rw;
static size_t g_rw_n;       /* templates */
static size_t g_rw_max_len; /* largest template, the size of each connection's scratch copy */
static size_t g_rw_ts_len;  /* bytes of every timestamp varint in the templates */
static int64_t g_rw_t0_ms;  /* the placeholder timestamp */

/* Metric families of a web service and its node, as node_exporter, the Go client and an HTTP
 * middleware expose them. Counters end in _total (meltp's receiver turns those into monotonic
 * sums and its exporter adds the suffix back); the rest are gauges. No _bucket / _sum / _count
 * names: those would be regrouped into histograms, and this benchmark is about plain samples. */
static const struct {
    const char *name;
    int counter;
    double base, step; /* integral values stay integral, as they are in the real exporters */
} lg_rw_metrics[] = {
    {"http_requests_total", 1, 120000, 37},
    {"http_request_errors_total", 1, 800, 1},
    {"http_response_size_bytes_total", 1, 4.2e9, 131072},
    {"process_cpu_seconds_total", 1, 5412.37, 0.41},
    {"node_network_receive_bytes_total", 1, 8.7e11, 2.5e6},
    {"grpc_server_handled_total", 1, 56000, 12},
    {"node_memory_Active_bytes", 0, 3.4e9, 2.0e7},
    {"process_resident_memory_bytes", 0, 2.1e8, 4.0e6},
    {"go_goroutines", 0, 180, 20},
    {"http_requests_in_flight", 0, 12, 6},
};
static const char *const lg_rw_jobs[] = {"patient-api", "scheduler", "billing", "gateway",
                                         "notifications"};
static const char *const lg_rw_methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *const lg_rw_statuses[] = {"200", "201", "204", "400", "404", "500"};
static const char *const lg_rw_routes[] = {
    "/api/patients/:id",
    "/api/patients",
    "/api/doctors/:id/schedule",
    "/api/appointments",
    "/api/appointments/:id",
    "/api/invoices/:id",
    "/api/invoices",
    "/api/insurance/coverage/:id",
    "/healthz",
    "/metrics",
};

static Prometheus__Label *lg_rw_label(arena_t *a, const char *name, const char *value)
{
    Prometheus__Label *l = lg_need(arena_alloc(a, sizeof(*l)));
    prometheus__label__init(l);
    l->name = (char *)name;
    l->value = (char *)value;
    return l;
}

/* Global series s (0 <= s < active series) is series k of scrape target s / series_per_target.
 * Fills ts (labels sorted by name, as remote-write requires) and its slot's value model. */
static void lg_rw_series(arena_t *a, size_t s, Prometheus__TimeSeries *ts, Prometheus__Sample *smp,
                         lg_rw_slot_t *slot)
{
    char buf[96];
    size_t target = s / (size_t)g_opts.series_per_target;
    size_t k = s % (size_t)g_opts.series_per_target;
    const char *job = lg_rw_jobs[target % MT_ARRAY_LEN(lg_rw_jobs)];
    size_t metric = k % MT_ARRAY_LEN(lg_rw_metrics);
    size_t rest = k / MT_ARRAY_LEN(lg_rw_metrics);
    size_t route = rest % MT_ARRAY_LEN(lg_rw_routes);
    rest /= MT_ARRAY_LEN(lg_rw_routes);
    size_t status = rest % MT_ARRAY_LEN(lg_rw_statuses);
    rest /= MT_ARRAY_LEN(lg_rw_statuses);
    size_t method = rest % MT_ARRAY_LEN(lg_rw_methods);
    rest /= MT_ARRAY_LEN(lg_rw_methods);
    uint64_t h = 0x9E3779B97F4A7C15ULL * (uint64_t)(s + 1);
    h ^= h >> 29;

    Prometheus__Label **l = lg_need(arena_alloc(a, 7 * sizeof(*l)));
    l[0] = lg_rw_label(a, "__name__", lg_rw_metrics[metric].name);
    snprintf(buf, sizeof(buf), "10.0.%zu.%zu:8080", target / 250, target % 250 + 2);
    l[1] = lg_rw_label(a, "instance", lg_need(arena_strndup(a, buf, strlen(buf))));
    l[2] = lg_rw_label(a, "job", job);
    l[3] = lg_rw_label(a, "method", lg_rw_methods[method]);
    snprintf(buf, sizeof(buf), "%s-7d9f8b6c5d-%05zx", job, (target * 2654435761u) % 0xfffff);
    l[4] = lg_rw_label(a, "pod", lg_need(arena_strndup(a, buf, strlen(buf))));
    if (rest == 0) {
        l[5] = lg_rw_label(a, "route", lg_rw_routes[route]);
    } else {
        /* Only past 2400 series per target: more routes, so label sets stay distinct. */
        snprintf(buf, sizeof(buf), "/v%zu%s", rest + 1, lg_rw_routes[route]);
        l[5] = lg_rw_label(a, "route", lg_need(arena_strndup(a, buf, strlen(buf))));
    }
    l[6] = lg_rw_label(a, "status", lg_rw_statuses[status]);
    ts->labels = l;
    ts->n_labels = 7;

    slot->counter = lg_rw_metrics[metric].counter;
    /* Each series its own magnitude, 0.5x to 1.5x the family's. */
    double scale = 0.5 + (double)(h % 1000) / 1000.0;
    slot->base = lg_rw_metrics[metric].base * scale;
    slot->step = lg_rw_metrics[metric].step * scale;
    if (lg_rw_metrics[metric].step >= 1) {
        slot->base = floor(slot->base) + 1; /* never 0: proto3 would leave the field out */
        slot->step = floor(slot->step) + 1;
    }
    prometheus__sample__init(smp);
    smp->value = slot->base;
    smp->timestamp = g_rw_t0_ms;
    ts->samples = lg_need(arena_alloc(a, sizeof(*ts->samples)));
    ts->samples[0] = smp;
    ts->n_samples = 1;
}

static int lg_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            return 0;
        }
    }
    return -1;
}

static size_t lg_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Finds every Sample's value and timestamp in the packed template, in series order. The
 * layout is what protobuf-c writes for the structs above: WriteRequest.timeseries (1) ->
 * TimeSeries.samples (2) -> Sample.value (1, fixed64) and .timestamp (2, varint). */
static int lg_rw_index(lg_rw_tmpl_t *t)
{
    const uint8_t *p = t->raw, *end = t->raw + t->len;
    size_t n = 0;
    uint64_t key, len;
    while (p < end) {
        if (lg_get_varint(&p, end, &key) < 0 || key != ((1 << 3) | 2) ||
            lg_get_varint(&p, end, &len) < 0 || len > (uint64_t)(end - p)) {
            return -1;
        }
        const uint8_t *q = p, *qend = p + len;
        p = qend;
        int found = 0;
        while (q < qend) {
            uint64_t k2, l2;
            if (lg_get_varint(&q, qend, &k2) < 0 || (k2 & 7) != 2 ||
                lg_get_varint(&q, qend, &l2) < 0 || l2 > (uint64_t)(qend - q)) {
                return -1;
            }
            if ((k2 >> 3) == 2) {
                const uint8_t *r = q, *rend = q + l2;
                if (n >= t->n_slots || rend - r < 9 || r[0] != ((1 << 3) | 1)) {
                    return -1;
                }
                t->slots[n].val_off = (uint32_t)(r + 1 - t->raw);
                r += 9;
                if (r >= rend || r[0] != ((2 << 3) | 0)) {
                    return -1;
                }
                t->slots[n].ts_off = (uint32_t)(r + 1 - t->raw);
                r++;
                const uint8_t *ts = r;
                uint64_t v;
                if (lg_get_varint(&r, rend, &v) < 0 || r != rend || (int64_t)v != g_rw_t0_ms) {
                    return -1;
                }
                g_rw_ts_len = (size_t)(r - ts);
                found++;
                n++;
            }
            q += l2;
        }
        if (found != 1) {
            return -1;
        }
    }
    return n == t->n_slots ? 0 : -1;
}

/* The value series slot takes on send number `cycle` of its template. */
static double lg_rw_value(const lg_rw_slot_t *sl, uint64_t cycle, size_t i)
{
    if (sl->counter) {
        return sl->base + (double)cycle * sl->step;
    }
    uint64_t h = (cycle + 1) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(i + 1) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 31;
    double v = sl->base + (double)(h % 2001) / 1000.0 * sl->step - sl->step;
    if (sl->step >= 1) {
        v = floor(v);
    }
    return v > 0 ? v : sl->step; /* gauges of counts and bytes stay positive */
}

/* Writes template t as it is sent for the cycle'th time at time now_ms into raw (t->len
 * bytes). Returns -1 only if now_ms needs another varint length than the placeholder. */
static int lg_rw_patch(const lg_rw_tmpl_t *t, uint64_t cycle, int64_t now_ms, uint8_t *raw)
{
    uint8_t tsb[10];
    size_t tsn = lg_put_varint(tsb, (uint64_t)now_ms);
    if (tsn != g_rw_ts_len) {
        return -1;
    }
    memcpy(raw, t->raw, t->len);
    for (size_t i = 0; i < t->n_slots; i++) {
        /* protobuf doubles are little-endian IEEE 754, as the hosts this runs on. */
        double v = lg_rw_value(&t->slots[i], cycle, i);
        memcpy(raw + t->slots[i].val_off, &v, 8);
        memcpy(raw + t->slots[i].ts_off, tsb, tsn);
    }
    return 0;
}

/* Unpacks a patched template and checks every sample and the label order: the patching must
 * not be what the benchmark measures the receiver rejecting. Start-up only. */
static int lg_rw_verify(const lg_rw_tmpl_t *t, uint64_t cycle, int64_t now_ms)
{
    uint8_t *raw = lg_need(malloc(t->len));
    int ok = lg_rw_patch(t, cycle, now_ms, raw) == 0;
    Prometheus__WriteRequest *wr = ok ? prometheus__write_request__unpack(NULL, t->len, raw) : NULL;
    ok = wr && wr->n_timeseries == t->n_slots;
    for (size_t i = 0; ok && i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        ok = ts->n_samples == 1 && ts->samples[0]->timestamp == now_ms &&
             ts->samples[0]->value == lg_rw_value(&t->slots[i], cycle, i);
        for (size_t j = 1; ok && j < ts->n_labels; j++) {
            ok = strcmp(ts->labels[j - 1]->name, ts->labels[j]->name) < 0 && *ts->labels[j]->value;
        }
    }
    if (wr) {
        prometheus__write_request__free_unpacked(wr, NULL);
    }
    free(raw);
    return ok ? 0 : -1;
}

/* Builds the templates: series s goes to template (s / chunk) % n_templates, with chunk =
 * series_per_request / targets_per_request, so every series is in exactly one template and
 * each request carries targets_per_request chunk-sized runs of series, from as many different
 * targets when chunk divides series_per_target (the defaults: 20 runs of 100 series from 20 of
 * the 200 targets), like one shard of a Prometheus remote-write queue. */
static void lg_rw_build(void)
{
    size_t m = (size_t)g_opts.active_series, per = (size_t)g_opts.series_per_request;
    size_t chunk = per / (size_t)g_opts.targets_per_request; /* divides per, so divides m */
    g_rw_n = m / per;
    g_rw = lg_need(calloc(g_rw_n, sizeof(*g_rw)));
    g_rw_t0_ms = (int64_t)(mt_wall_ns() / 1000000ULL);
    for (size_t t = 0; t < g_rw_n; t++) {
        arena_t *a = lg_need(arena_create(4 << 20, 0));
        Prometheus__TimeSeries **series = lg_need(arena_alloc(a, per * sizeof(*series)));
        lg_rw_tmpl_t *tp = &g_rw[t];
        tp->slots = lg_need(calloc(per, sizeof(*tp->slots)));
        size_t n = 0;
        /* chunk q = t, t + n_templates, ...: its series are q * chunk .. q * chunk + chunk - 1 */
        for (size_t q = t; q * chunk < m && n < per; q += g_rw_n) {
            for (size_t s = q * chunk; s < (q + 1) * chunk && s < m && n < per; s++) {
                Prometheus__TimeSeries *ts = lg_need(arena_alloc(a, sizeof(*ts)));
                Prometheus__Sample *smp = lg_need(arena_alloc(a, sizeof(*smp)));
                prometheus__time_series__init(ts);
                lg_rw_series(a, s, ts, smp, &tp->slots[n]);
                series[n++] = ts;
            }
        }
        tp->n_slots = n; /* per: the chunks t, t + n_templates, ... are targets_per_request */
        Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
        wr.timeseries = series;
        wr.n_timeseries = n;
        tp->len = prometheus__write_request__get_packed_size(&wr);
        tp->raw = lg_need(malloc(tp->len));
        prometheus__write_request__pack(&wr, tp->raw);
        arena_destroy(a);
        if (lg_rw_index(tp) < 0 || lg_rw_verify(tp, 1, g_rw_t0_ms + 15000) < 0) {
            fprintf(stderr,
                    "loadgen: remote-write template %zu does not have the expected "
                    "layout\n",
                    t);
            exit(2);
        }
        if (tp->len > g_rw_max_len) {
            g_rw_max_len = tp->len;
        }
        if (n != per) {
            fprintf(stderr, "loadgen: remote-write template %zu has %zu series, not %zu\n", t, n,
                    per);
            exit(2);
        }
    }
}

/* Prepares request k of a connection in c->rw_body. Returns 0, or -1 on failure. */
static int lg_rw_prepare(lg_conn_t *c, long long k)
{
    const lg_rw_tmpl_t *t = &g_rw[(size_t)k % g_rw_n];
    uint64_t cycle = (uint64_t)k / g_rw_n;
    int64_t now_ms = (int64_t)(mt_wall_ns() / 1000000ULL);
    free(c->rw_body);
    c->rw_body = NULL;
    if (lg_rw_patch(t, cycle, now_ms, c->rw_raw) < 0) {
        return -1;
    }
    return codec_compress(CODEC_SNAPPY, c->rw_raw, t->len, 0, &c->rw_body, &c->rw_body_len) == MT_OK
               ? 0
               : -1;
}

/* ---- sending ------------------------------------------------------------------------------ */

static size_t lg_discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    MT_UNUSED(ptr);
    MT_UNUSED(ud);
    return size * nmemb;
}

/* ---- grpc mode: a minimal nghttp2 client ------------------------------------------------ */

static char g_grpc_host[256], g_grpc_port[16], g_grpc_path[512], g_grpc_authority[300];

/* Splits http://host:port/path for grpc mode. */
static int lg_grpc_url(const char *url)
{
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    const char *slash = strchr(p, '/');
    const char *colon = memchr(p, ':', slash ? (size_t)(slash - p) : strlen(p));
    if (!slash || !colon || (size_t)(colon - p) >= sizeof(g_grpc_host)) {
        return -1;
    }
    snprintf(g_grpc_host, sizeof(g_grpc_host), "%.*s", (int)(colon - p), p);
    snprintf(g_grpc_port, sizeof(g_grpc_port), "%.*s", (int)(slash - colon - 1), colon + 1);
    snprintf(g_grpc_path, sizeof(g_grpc_path), "%s", slash);
    snprintf(g_grpc_authority, sizeof(g_grpc_authority), "%s:%s", g_grpc_host, g_grpc_port);
    return 0;
}

static ssize_t lg_h2_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    lg_conn_t *c = ud;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static int lg_h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                        const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)s;
    (void)f;
    (void)flags;
    (void)vl;
    lg_conn_t *c = ud;
    if (nl == 7 && memcmp(name, ":status", 7) == 0) {
        c->http_status = atoi((const char *)value);
    } else if (nl == 11 && memcmp(name, "grpc-status", 11) == 0) {
        c->grpc_status = atoi((const char *)value);
    }
    return 0;
}

static int lg_h2_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    (void)s;
    (void)id;
    (void)err;
    ((lg_conn_t *)ud)->gdone = 1;
    return 0;
}

static ssize_t lg_h2_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)src;
    lg_conn_t *c = ud;
    size_t n = c->glen - c->goff < len ? c->glen - c->goff : len;
    memcpy(buf, c->gbody + c->goff, n);
    c->goff += n;
    if (c->goff == c->glen) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static void lg_h2_disconnect(lg_conn_t *c)
{
    if (c->h2) {
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static int lg_h2_connect(lg_conn_t *c)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(g_grpc_host, g_grpc_port, &hints, &ai) != 0 || !ai) {
        return -1;
    }
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = c->fd >= 0 && connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    if (!ok) {
        lg_h2_disconnect(c);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {LG_REQUEST_TIMEOUT_MS / 1000, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, lg_h2_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, lg_h2_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, lg_h2_close);
    int rc = nghttp2_session_client_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        lg_h2_disconnect(c);
        return -1;
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 1);
    return 0;
}

#define LG_NV(n, v)                                                                    \
    {                                                                                  \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE \
    }

/* One unary call of `len` bytes (prefix included): 0 with c->http_status and c->grpc_status
 * set, -1 when the connection failed (it is reopened on the next call). */
static int lg_grpc_perform(lg_conn_t *c, const uint8_t *data, size_t len, char *err, size_t ecap)
{
    if (c->fd < 0 && lg_h2_connect(c) != 0) {
        snprintf(err, ecap, "cannot connect to %.200s", g_grpc_authority);
        return -1;
    }
    nghttp2_nv nva[] = {
        LG_NV(":method", "POST"),
        LG_NV(":scheme", "http"),
        LG_NV(":path", g_grpc_path),
        LG_NV(":authority", g_grpc_authority),
        LG_NV("content-type", "application/grpc"),
        LG_NV("te", "trailers"),
    };
    c->gbody = data;
    c->glen = len;
    c->goff = 0;
    c->gdone = 0;
    c->http_status = 0;
    c->grpc_status = -1;
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = lg_h2_body};
    if (nghttp2_submit_request(c->h2, NULL, nva, MT_ARRAY_LEN(nva), &prd, c) < 0) {
        snprintf(err, ecap, "nghttp2_submit_request failed");
        lg_h2_disconnect(c);
        return -1;
    }
    uint8_t buf[16384];
    while (!c->gdone) {
        if (nghttp2_session_send(c->h2) != 0) {
            snprintf(err, ecap, "send failed");
            lg_h2_disconnect(c);
            return -1;
        }
        if (c->gdone) {
            break;
        }
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0 || nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0) {
            snprintf(err, ecap, "%s", n == 0 ? "connection closed" : "receive failed");
            lg_h2_disconnect(c);
            return -1;
        }
    }
    nghttp2_session_send(c->h2); /* WINDOW_UPDATEs */
    return 0;
}

static void lg_sleep_until(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000ULL),
                          .tv_nsec = (long)(t_ns % 1000000000ULL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void lg_record_latency(lg_conn_t *c, uint64_t ns)
{
    if (c->n_lat == c->cap_lat) {
        size_t ncap = c->cap_lat ? c->cap_lat * 2 : 4096;
        uint32_t *p = realloc(c->lat_us, ncap * sizeof(*p));
        if (!p) {
            return; /* losing a latency sample is better than stopping the run */
        }
        c->lat_us = p;
        c->cap_lat = ncap;
    }
    uint64_t us = ns / 1000;
    c->lat_us[c->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void lg_log_error(lg_conn_t *c, const char *what)
{
    if (atomic_fetch_add(&g_error_logs, 1) < LG_MAX_ERROR_LOGS) {
        fprintf(stderr, "loadgen: connection %d: %s\n", c->id, what);
    }
}

static void *lg_conn_main(void *arg)
{
    lg_conn_t *c = arg;
    char errbuf[CURL_ERROR_SIZE];

    curl_easy_setopt(c->curl, CURLOPT_URL, g_opts.url);
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, lg_discard);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)LG_REQUEST_TIMEOUT_MS);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)LG_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    c->fd = -1;
    if (g_opts.cacert) {
        curl_easy_setopt(c->curl, CURLOPT_CAINFO, g_opts.cacert);
    }
    if (g_opts.fresh) {
        curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(c->curl, CURLOPT_FORBID_REUSE, 1L);
        /* no TLS session resumption either: every request pays a full handshake */
        curl_easy_setopt(c->curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    }

    for (;;) {
        long long k = atomic_fetch_add(&g_ticket, 1);
        if (g_opts.max_requests > 0 && k >= g_opts.max_requests) {
            break;
        }
        uint64_t start;
        if (g_interval_ns > 0) {
            /* Open loop: request k owns the slot t0 + k * interval whichever connection sends
             * it, so the total rate holds even when one connection is slow. */
            uint64_t slot = g_t0_ns + (uint64_t)k * g_interval_ns;
            if (slot >= g_deadline_ns) {
                break;
            }
            lg_sleep_until(slot);
            start = mt_now_ns();
            double lag_ms = (double)(start - slot) / 1e6;
            if (lag_ms > c->max_lag_ms) {
                c->max_lag_ms = lag_ms;
            }
        } else {
            start = mt_now_ns();
            if (start >= g_deadline_ns) {
                break;
            }
        }

        const uint8_t *data;
        size_t len, items;
        if (g_opts.mode == LG_MODE_RW) {
            /* The encode happens inside the request's slot: it is part of what the client
             * spends, not of the request's latency, which starts below. */
            if (lg_rw_prepare(c, k) < 0) {
                c->requests++;
                c->errors++;
                lg_log_error(c, "cannot encode the remote-write request");
                continue;
            }
            data = c->rw_body;
            len = c->rw_body_len;
            items = g_rw[(size_t)k % g_rw_n].n_slots;
            uint64_t encoded = mt_now_ns();
            c->encode_ns += encoded - start;
            start = encoded;
        } else {
            const lg_body_t *b = &g_bodies[k % g_opts.n_bodies];
            data = b->data;
            len = b->len;
            items = (size_t)g_opts.spans_per_request;
        }
        c->body_bytes_sent += (long long)len;
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, (const char *)data);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        errbuf[0] = 0;
        CURLcode rc;
        if (g_opts.mode == LG_MODE_GRPC) {
            rc = lg_grpc_perform(c, data, len, errbuf, sizeof(errbuf)) == 0 ? CURLE_OK
                                                                            : CURLE_RECV_ERROR;
        } else {
            rc = curl_easy_perform(c->curl);
        }
        uint64_t done = mt_now_ns();
        c->requests++;
        if (rc != CURLE_OK) {
            c->errors++;
            lg_log_error(c, errbuf[0] ? errbuf : curl_easy_strerror(rc));
            if (g_interval_ns == 0) {
                /* Closed loop against a dead server would spin; back off a little. */
                lg_sleep_until(mt_now_ns() + 10000000ULL);
            }
            continue;
        }
        long status = 0;
        if (g_opts.mode == LG_MODE_GRPC) {
            status = c->http_status;
        } else {
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        }
        if (g_opts.mode == LG_MODE_GRPC && status == 200 && c->grpc_status != 0) {
            /* RESOURCE_EXHAUSTED and UNAVAILABLE are back-pressure; the rest are errors */
            status = c->grpc_status == 8 || c->grpc_status == 14 ? 429 : 500;
        }
        if (status >= 200 && status < 300) {
            c->ok++;
            c->items_sent += (long long)items;
            lg_record_latency(c, done - start);
        } else if (status == 429 || status == 503) {
            /* Back-pressure: the collector refused the data, the client would retry later. */
            c->refused++;
        } else {
            char msg[64];
            snprintf(msg, sizeof(msg), "HTTP status %ld", status);
            c->errors++;
            lg_log_error(c, msg);
        }
    }
    lg_h2_disconnect(c);
    return NULL;
}

static int lg_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in milliseconds; 0 when empty. */
static double lg_pct_ms(const uint32_t *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) {
        rank = 1;
    }
    return v[rank - 1] / 1000.0;
}

static void lg_usage(FILE *f)
{
    fprintf(f, "usage: loadgen --url URL [--mode otlp|rw|grpc] [--connections N] [--duration S]\n"
               "               [--rate ITEMS_PER_SEC] [--requests N]\n"
               "               [--cacert FILE] [--fresh-connections]\n"
               "  otlp (default), grpc: [--spans-per-request N (1000)] [--bodies N (8)]\n"
               "  (grpc: URL is http://host:port/opentelemetry.proto.collector.trace.v1.\n"
               "   TraceService/Export, h2c)\n"
               "  rw:             [--series-per-request N (2000)] [--active-series M (100000)]\n"
               "                  [--series-per-target N (500)] [--targets-per-request N (20)]\n"
               "Sends OTLP/HTTP protobuf trace requests (otlp) or Prometheus remote-write 1.0\n"
               "requests, one sample per series, timestamped at send time (rw) over N keep-alive\n"
               "connections, closed-loop (saturation) or paced at --rate spans or samples per\n"
               "second, and prints one JSON line of results.\n");
}

static int lg_parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"connections", required_argument, NULL, 'c'},
        {"spans-per-request", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},
        {"requests", required_argument, NULL, 'n'},
        {"bodies", required_argument, NULL, 'b'},
        {"mode", required_argument, NULL, 'm'},
        {"series-per-request", required_argument, NULL, 'S'},
        {"active-series", required_argument, NULL, 'A'},
        {"series-per-target", required_argument, NULL, 'T'},
        {"targets-per-request", required_argument, NULL, 'R'},
        {"cacert", required_argument, NULL, 'C'},
        {"fresh-connections", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            g_opts.url = optarg;
            break;
        case 'c':
            g_opts.connections = atoi(optarg);
            break;
        case 's':
            g_opts.spans_per_request = atoi(optarg);
            break;
        case 'd':
            g_opts.duration_s = atof(optarg);
            break;
        case 'r':
            g_opts.rate = atof(optarg);
            break;
        case 'n':
            g_opts.max_requests = atoll(optarg);
            break;
        case 'b':
            g_opts.n_bodies = atoi(optarg);
            break;
        case 'm':
            if (strcmp(optarg, "otlp") == 0) {
                g_opts.mode = LG_MODE_OTLP;
            } else if (strcmp(optarg, "rw") == 0) {
                g_opts.mode = LG_MODE_RW;
            } else if (strcmp(optarg, "grpc") == 0) {
                g_opts.mode = LG_MODE_GRPC;
            } else {
                fprintf(stderr, "loadgen: --mode is otlp, rw or grpc\n");
                return -1;
            }
            break;
        case 'S':
            g_opts.series_per_request = atoi(optarg);
            break;
        case 'A':
            g_opts.active_series = atoi(optarg);
            break;
        case 'T':
            g_opts.series_per_target = atoi(optarg);
            break;
        case 'R':
            g_opts.targets_per_request = atoi(optarg);
            break;
        case 'C':
            g_opts.cacert = optarg;
            break;
        case 'F':
            g_opts.fresh = 1;
            break;
        case 'h':
            lg_usage(stdout);
            exit(0);
        default:
            lg_usage(stderr);
            return -1;
        }
    }
    if (optind != argc || !g_opts.url) {
        lg_usage(stderr);
        return -1;
    }
    if (g_opts.mode == LG_MODE_GRPC && lg_grpc_url(g_opts.url) != 0) {
        fprintf(stderr,
                "loadgen: --mode grpc needs --url http://host:port/package.Service/Method\n");
        return -1;
    }
    if (g_opts.connections < 1 || g_opts.connections > LG_MAX_CONNECTIONS ||
        g_opts.spans_per_request < 1 || g_opts.spans_per_request > LG_MAX_SPANS_PER_REQUEST ||
        !(g_opts.duration_s > 0) || g_opts.duration_s > LG_MAX_DURATION_S || g_opts.rate < 0 ||
        g_opts.max_requests < 0 || g_opts.n_bodies < 1 || g_opts.n_bodies > LG_MAX_BODIES) {
        fprintf(stderr,
                "loadgen: argument out of range (connections 1..%d, spans-per-request "
                "1..%d, duration 0..%d s, bodies 1..%d)\n",
                LG_MAX_CONNECTIONS, LG_MAX_SPANS_PER_REQUEST, LG_MAX_DURATION_S, LG_MAX_BODIES);
        return -1;
    }
    if (g_opts.mode == LG_MODE_RW &&
        (g_opts.series_per_request < 1 || g_opts.series_per_request > LG_MAX_SERIES_PER_REQUEST ||
         g_opts.active_series < g_opts.series_per_request ||
         g_opts.active_series > LG_MAX_ACTIVE_SERIES ||
         g_opts.active_series % g_opts.series_per_request != 0 || g_opts.series_per_target < 1 ||
         g_opts.targets_per_request < 1 ||
         g_opts.series_per_request % g_opts.targets_per_request != 0)) {
        /* The divisibility makes every template exactly series-per-request series and every
         * active series part of exactly one template (see lg_rw_build). */
        fprintf(stderr,
                "loadgen: remote-write arguments out of range (series-per-request 1..%d, "
                "active-series a multiple of it up to %d, series-per-target >= 1, "
                "targets-per-request a divisor of series-per-request)\n",
                LG_MAX_SERIES_PER_REQUEST, LG_MAX_ACTIVE_SERIES);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (lg_parse_args(argc, argv) < 0) {
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "loadgen: curl_global_init failed\n");
        return 2;
    }

    int rw = g_opts.mode == LG_MODE_RW;
    size_t body_bytes = 0;
    double avg_body = 0; /* rw: the uncompressed protobuf; what is sent is measured later */
    if (rw) {
        uint64_t b0 = mt_now_ns();
        lg_rw_build();
        for (size_t i = 0; i < g_rw_n; i++) {
            body_bytes += g_rw[i].len;
        }
        avg_body = (double)body_bytes / (double)g_rw_n;
        fprintf(stderr,
                "loadgen: %zu templates of %d series (%d active series, %d per target, "
                "%d targets per request), %.0f bytes each before snappy (%.0f "
                "bytes/series), built and checked in %.2f s, %d connections, %s\n",
                g_rw_n, g_opts.series_per_request, g_opts.active_series, g_opts.series_per_target,
                g_opts.targets_per_request, avg_body, avg_body / g_opts.series_per_request,
                (double)(mt_now_ns() - b0) / 1e9, g_opts.connections,
                g_opts.rate > 0 ? "paced" : "closed loop");
    } else {
        for (int i = 0; i < g_opts.n_bodies; i++) {
            g_bodies[i] = lg_encode_body(i, (size_t)g_opts.spans_per_request);
            if (g_opts.mode == LG_MODE_GRPC) { /* the gRPC message prefix: uncompressed */
                lg_body_t b = g_bodies[i];
                uint8_t *p = lg_need(malloc(b.len + 5));
                p[0] = 0;
                p[1] = (uint8_t)(b.len >> 24);
                p[2] = (uint8_t)(b.len >> 16);
                p[3] = (uint8_t)(b.len >> 8);
                p[4] = (uint8_t)b.len;
                memcpy(p + 5, b.data, b.len);
                free(b.data);
                g_bodies[i] = (lg_body_t){p, b.len + 5};
            }
            body_bytes += g_bodies[i].len;
        }
        avg_body = (double)body_bytes / g_opts.n_bodies;
        fprintf(stderr,
                "loadgen: %d bodies of %d spans, %.0f bytes each (%.0f bytes/span), "
                "%d connections, %s\n",
                g_opts.n_bodies, g_opts.spans_per_request, avg_body,
                avg_body / g_opts.spans_per_request, g_opts.connections,
                g_opts.rate > 0 ? "paced" : "closed loop");
    }
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0); /* building the bodies is not part of the load's cost */

    lg_conn_t *conns = lg_need(calloc((size_t)g_opts.connections, sizeof(*conns)));
    pthread_t *threads = lg_need(calloc((size_t)g_opts.connections, sizeof(*threads)));
    for (int i = 0; i < g_opts.connections; i++) {
        conns[i].id = i;
        conns[i].curl = curl_easy_init();
        /* An empty "Expect:" stops curl from waiting for 100-continue before large bodies,
         * which would add a round trip to every request. */
        static const char *const otlp_hdrs[] = {"Content-Type: application/x-protobuf",
                                                "Expect:", NULL};
        static const char *const grpc_hdrs[] = {"Content-Type: application/grpc", "TE: trailers",
                                                "Expect:", NULL};
        /* The reserved headers of remote-write 1.0 (protocols.md 3.1); curl sends the
         * User-Agent set below. */
        static const char *const rw_hdrs[] = {
            "Content-Type: application/x-protobuf", "Content-Encoding: snappy",
            "X-Prometheus-Remote-Write-Version: 0.1.0", "Expect:", NULL};
        int failed = !conns[i].curl;
        const char *const *hdrs = rw                            ? rw_hdrs
                                  : g_opts.mode == LG_MODE_GRPC ? grpc_hdrs
                                                                : otlp_hdrs;
        for (const char *const *h = hdrs; *h && !failed; h++) {
            struct curl_slist *l = curl_slist_append(conns[i].headers, *h);
            failed = !l;
            conns[i].headers = l ? l : conns[i].headers;
        }
        if (rw && !failed) {
            conns[i].rw_raw = malloc(g_rw_max_len);
            failed = !conns[i].rw_raw || curl_easy_setopt(conns[i].curl, CURLOPT_USERAGENT,
                                                          "meltp-loadgen/1") != CURLE_OK;
        }
        if (failed) {
            fprintf(stderr, "loadgen: cannot set up connection %d\n", i);
            return 2;
        }
    }

    if (g_opts.rate > 0) {
        int per = rw ? g_opts.series_per_request : g_opts.spans_per_request;
        g_interval_ns = (uint64_t)(1e9 * per / g_opts.rate);
        if (g_interval_ns == 0) {
            g_interval_ns = 1;
        }
    }
    g_t0_ns = mt_now_ns();
    g_deadline_ns = g_t0_ns + (uint64_t)(g_opts.duration_s * 1e9);
    for (int i = 0; i < g_opts.connections; i++) {
        if (pthread_create(&threads[i], NULL, lg_conn_main, &conns[i]) != 0) {
            fprintf(stderr, "loadgen: pthread_create failed\n");
            return 2;
        }
    }
    for (int i = 0; i < g_opts.connections; i++) {
        pthread_join(threads[i], NULL);
    }
    double seconds = (double)(mt_now_ns() - g_t0_ns) / 1e9;

    long long requests = 0, ok = 0, refused = 0, errors = 0, spans = 0, sent_bytes = 0;
    uint64_t encode_ns = 0;
    double max_lag = 0;
    size_t n_lat = 0;
    for (int i = 0; i < g_opts.connections; i++) {
        requests += conns[i].requests;
        ok += conns[i].ok;
        refused += conns[i].refused;
        errors += conns[i].errors;
        spans += conns[i].items_sent;
        sent_bytes += conns[i].body_bytes_sent;
        encode_ns += conns[i].encode_ns;
        n_lat += conns[i].n_lat;
        if (conns[i].max_lag_ms > max_lag) {
            max_lag = conns[i].max_lag_ms;
        }
    }
    uint32_t *lat = lg_need(malloc((n_lat + 1) * sizeof(*lat)));
    size_t off = 0;
    for (int i = 0; i < g_opts.connections; i++) {
        if (conns[i].n_lat) {
            memcpy(lat + off, conns[i].lat_us, conns[i].n_lat * sizeof(*lat));
        }
        off += conns[i].n_lat;
    }
    qsort(lat, n_lat, sizeof(*lat), lg_cmp_u32);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double setup_cpu = (double)ru0.ru_utime.tv_sec + ru0.ru_utime.tv_usec / 1e6 +
                       (double)ru0.ru_stime.tv_sec + ru0.ru_stime.tv_usec / 1e6;

    /* One line, flat, numbers only: bench.sh reads it with sed, no JSON parser needed. */
    if (rw) {
        /* loadgen_cpu_s is the whole process, as in otlp mode; the load alone is
         * loadgen_cpu_s - setup_cpu_s, and encode_ms the patch + snappy time per request. */
        printf("{\"requests\":%lld,\"ok\":%lld,\"samples_sent\":%lld,\"refused\":%lld,"
               "\"errors\":%lld,\"seconds\":%.3f,\"samples_per_sec\":%.0f,\"p50_ms\":%.2f,"
               "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"max_lag_ms\":%.2f,"
               "\"bytes_per_request\":%.0f,\"raw_bytes_per_request\":%.0f,"
               "\"active_series\":%d,\"series_per_request\":%d,\"templates\":%zu,"
               "\"encode_ms\":%.3f,\"setup_cpu_s\":%.2f,\"loadgen_cpu_s\":%.2f}\n",
               requests, ok, spans, refused, errors, seconds, seconds > 0 ? spans / seconds : 0,
               lg_pct_ms(lat, n_lat, 50), lg_pct_ms(lat, n_lat, 99), lg_pct_ms(lat, n_lat, 100),
               max_lag, requests > 0 ? (double)sent_bytes / (double)requests : 0, avg_body,
               g_opts.active_series, g_opts.series_per_request, g_rw_n,
               requests > 0 ? (double)encode_ns / 1e6 / (double)requests : 0, setup_cpu, cpu);
    } else {
        printf(
            "{\"requests\":%lld,\"ok\":%lld,\"spans_sent\":%lld,\"refused\":%lld,\"errors\":%lld,"
            "\"seconds\":%.3f,\"spans_per_sec\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
            "\"max_ms\":%.2f,\"max_lag_ms\":%.2f,\"bytes_per_request\":%.0f,"
            "\"loadgen_cpu_s\":%.2f}\n",
            requests, ok, spans, refused, errors, seconds, seconds > 0 ? spans / seconds : 0,
            lg_pct_ms(lat, n_lat, 50), lg_pct_ms(lat, n_lat, 99), lg_pct_ms(lat, n_lat, 100),
            max_lag, avg_body, cpu);
    }
    fflush(stdout);

    for (int i = 0; i < g_opts.connections; i++) {
        curl_easy_cleanup(conns[i].curl);
        curl_slist_free_all(conns[i].headers);
        free(conns[i].lat_us);
        free(conns[i].rw_raw);
        free(conns[i].rw_body);
    }
    for (int i = 0; i < g_opts.n_bodies; i++) {
        free(g_bodies[i].data); /* NULL in rw mode */
    }
    for (size_t i = 0; i < g_rw_n; i++) {
        free(g_rw[i].raw);
        free(g_rw[i].slots);
    }
    free(g_rw);
    free(lat);
    free(conns);
    free(threads);
    curl_global_cleanup();
    return 0;
}
