/*
 * loadgen.c - the benchmark's OTLP/HTTP load generator. At start it encodes a few distinct
 * ExportTraceServiceRequest bodies of realistic spans (web-service traces: a SERVER span with
 * database, HTTP-client and internal children), then sends them over N keep-alive connections,
 * one thread and one curl easy handle per connection. Without --rate it runs closed-loop (each
 * connection sends its next request as soon as the last one is answered: the saturation test);
 * with --rate it paces requests open-loop on a schedule shared by all connections. At the end it
 * prints one JSON line with counts, throughput and request latency percentiles.
 *
 *   loadgen --url http://127.0.0.1:4318/v1/traces --connections 4 --spans-per-request 1000
 *           --duration 20 [--rate 100000] [--requests N] [--bodies 8]
 */
#include "arena.h"
#include "mt.h"
#include "otlp_collector.pb-c.h"

#include <curl/curl.h>
#include <errno.h>
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
#define LG_MAX_CONNECTIONS 256
#define LG_MAX_SPANS_PER_REQUEST 100000
#define LG_MAX_BODIES 64
#define LG_MAX_DURATION_S 3600
/* A request that takes longer than this is an error: the benchmark must stay bounded. */
#define LG_REQUEST_TIMEOUT_MS 30000
#define LG_CONNECT_TIMEOUT_MS 5000
/* How many error messages to print to stderr before only counting them. */
#define LG_MAX_ERROR_LOGS 5

typedef struct {
    const char *url;
    int connections;
    int spans_per_request;
    double duration_s;
    double rate;            /* spans per second over all connections; 0 = closed loop */
    long long max_requests; /* 0 = no limit */
    int n_bodies;
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
    long long spans_sent;
    double max_lag_ms; /* paced mode: worst delay between a request's slot and its start */
} lg_conn_t;

static lg_opts_t g_opts = {
    .url = NULL,
    .connections = 4,
    .spans_per_request = 1000,
    .duration_s = 10,
    .rate = 0,
    .max_requests = 0,
    .n_bodies = 8,
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
    lg_span_t *root = lg_span_new(a, tid, NULL, rng, buf,
                                  OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER,
                                  t_ns, dur);
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
        ev->attributes[1] = lg_kv_str(a, "exception.message", "canceling statement due to "
                                                              "statement timeout");
        ev->n_attributes = 2;
        root->events = lg_need(arena_alloc(a, sizeof(*root->events)));
        root->events[0] = ev;
        root->n_events = 1;
    }
    spans[(*n)++] = root;

    /* Children: middleware, a query, sometimes an outbound call, a render step. */
    if (*n < room) {
        lg_span_t *s = lg_span_new(a, tid, root, rng, "middleware - jwtAuth",
                                   OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL,
                                   t_ns + 50000, 300000 + lg_rand(rng) % 500000);
        lg_attr(s, lg_kv_str(a, "express.type", "middleware"));
        lg_attr(s, lg_kv_str(a, "express.name", "jwtAuth"));
        spans[(*n)++] = s;
    }
    if (*n < room) {
        unsigned q = (unsigned)(lg_rand(rng) % MT_ARRAY_LEN(lg_queries));
        snprintf(buf, sizeof(buf), "%s clinic.%s", lg_queries[q].op, lg_queries[q].table);
        lg_span_t *s = lg_span_new(a, tid, root, rng, buf,
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
            lg_status(a, s, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
        }
        spans[(*n)++] = s;
    }
    if (*n < room && (r >> 8) % 2 == 0) {
        lg_span_t *s = lg_span_new(a, tid, root, rng, "GET",
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
        lg_span_t *s = lg_span_new(a, tid, root, rng, "render",
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

    Opentelemetry__Proto__Resource__V1__Resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
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

    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.scope = &scope;
    ss.spans = spans;
    ss.n_spans = n;
    ss.schema_url = "https://opentelemetry.io/schemas/1.26.0";
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;

    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &res;
    rs.scope_spans = &ssp;
    rs.n_scope_spans = 1;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;

    Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = &rsp;
    req.n_resource_spans = 1;

    out.len = opentelemetry__proto__collector__v1__export_trace_service_request__get_packed_size(&req);
    out.data = lg_need(malloc(out.len));
    opentelemetry__proto__collector__v1__export_trace_service_request__pack(&req, out.data);
    arena_destroy(a);
    return out;
}

/* ---- sending ------------------------------------------------------------------------------ */

static size_t lg_discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    MT_UNUSED(ptr);
    MT_UNUSED(ud);
    return size * nmemb;
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

        const lg_body_t *b = &g_bodies[k % g_opts.n_bodies];
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, (const char *)b->data);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
        errbuf[0] = 0;
        CURLcode rc = curl_easy_perform(c->curl);
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
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            c->ok++;
            c->spans_sent += g_opts.spans_per_request;
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
    fprintf(f,
            "usage: loadgen --url URL [--connections N] [--spans-per-request N] [--duration S]\n"
            "               [--rate SPANS_PER_SEC] [--requests N] [--bodies N]\n"
            "Sends pre-encoded OTLP/HTTP protobuf trace requests over N keep-alive connections,\n"
            "closed-loop (saturation) or paced at --rate, and prints one JSON line of results.\n");
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
    if (g_opts.connections < 1 || g_opts.connections > LG_MAX_CONNECTIONS ||
        g_opts.spans_per_request < 1 || g_opts.spans_per_request > LG_MAX_SPANS_PER_REQUEST ||
        !(g_opts.duration_s > 0) || g_opts.duration_s > LG_MAX_DURATION_S || g_opts.rate < 0 ||
        g_opts.max_requests < 0 || g_opts.n_bodies < 1 || g_opts.n_bodies > LG_MAX_BODIES) {
        fprintf(stderr, "loadgen: argument out of range (connections 1..%d, spans-per-request "
                        "1..%d, duration 0..%d s, bodies 1..%d)\n",
                LG_MAX_CONNECTIONS, LG_MAX_SPANS_PER_REQUEST, LG_MAX_DURATION_S, LG_MAX_BODIES);
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

    size_t body_bytes = 0;
    for (int i = 0; i < g_opts.n_bodies; i++) {
        g_bodies[i] = lg_encode_body(i, (size_t)g_opts.spans_per_request);
        body_bytes += g_bodies[i].len;
    }
    double avg_body = (double)body_bytes / g_opts.n_bodies;
    fprintf(stderr, "loadgen: %d bodies of %d spans, %.0f bytes each (%.0f bytes/span), "
                    "%d connections, %s\n",
            g_opts.n_bodies, g_opts.spans_per_request, avg_body,
            avg_body / g_opts.spans_per_request, g_opts.connections,
            g_opts.rate > 0 ? "paced" : "closed loop");

    lg_conn_t *conns = lg_need(calloc((size_t)g_opts.connections, sizeof(*conns)));
    pthread_t *threads = lg_need(calloc((size_t)g_opts.connections, sizeof(*threads)));
    for (int i = 0; i < g_opts.connections; i++) {
        conns[i].id = i;
        conns[i].curl = curl_easy_init();
        /* An empty "Expect:" stops curl from waiting for 100-continue before large bodies,
         * which would add a round trip to every request. */
        conns[i].headers = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
        conns[i].headers = curl_slist_append(conns[i].headers, "Expect:");
        if (!conns[i].curl || !conns[i].headers) {
            fprintf(stderr, "loadgen: curl_easy_init failed\n");
            return 2;
        }
    }

    if (g_opts.rate > 0) {
        g_interval_ns = (uint64_t)(1e9 * g_opts.spans_per_request / g_opts.rate);
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

    long long requests = 0, ok = 0, refused = 0, errors = 0, spans = 0;
    double max_lag = 0;
    size_t n_lat = 0;
    for (int i = 0; i < g_opts.connections; i++) {
        requests += conns[i].requests;
        ok += conns[i].ok;
        refused += conns[i].refused;
        errors += conns[i].errors;
        spans += conns[i].spans_sent;
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

    /* One line, flat, numbers only: bench.sh reads it with sed, no JSON parser needed. */
    printf("{\"requests\":%lld,\"ok\":%lld,\"spans_sent\":%lld,\"refused\":%lld,\"errors\":%lld,"
           "\"seconds\":%.3f,\"spans_per_sec\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"max_ms\":%.2f,\"max_lag_ms\":%.2f,\"bytes_per_request\":%.0f,"
           "\"loadgen_cpu_s\":%.2f}\n",
           requests, ok, spans, refused, errors, seconds, seconds > 0 ? spans / seconds : 0,
           lg_pct_ms(lat, n_lat, 50), lg_pct_ms(lat, n_lat, 99), lg_pct_ms(lat, n_lat, 100),
           max_lag, avg_body, cpu);
    fflush(stdout);

    for (int i = 0; i < g_opts.connections; i++) {
        curl_easy_cleanup(conns[i].curl);
        curl_slist_free_all(conns[i].headers);
        free(conns[i].lat_us);
    }
    for (int i = 0; i < g_opts.n_bodies; i++) {
        free(g_bodies[i].data);
    }
    free(lat);
    free(conns);
    free(threads);
    curl_global_cleanup();
    return 0;
}
