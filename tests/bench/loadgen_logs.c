/*
 * loadgen_logs.c - OTLP/HTTP logs load for tests/bench/bench_logs.sh (the Loki phase): N
 * threads, one keep-alive libcurl handle each, POST /v1/logs at a fixed total rate of log
 * records per second (or as fast as possible with --rate 0). Bodies are built once up front
 * from the generated OTLP messages: records shaped like the OpenTelemetry JS SDK fixtures
 * (10 services, 4 attributes, trace context on 3 in 4, an event in 1 in 8, mixed severities).
 * Prints one JSON line: records, requests, errors, seconds, client CPU seconds.
 * Built by bench_logs.sh with the Makefile's flags (the Makefile has no rule for it).
 */
#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "otlp_collector.pb-c.h"

#define LG_BODIES 16

static const char *g_url;
static double g_rate = 100000, g_duration = 10;
static int g_conns = 4, g_per_req = 1000;
static uint8_t *g_body[LG_BODIES];
static size_t g_len[LG_BODIES];
static atomic_ullong g_records, g_requests, g_errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;

static kv_t *kv_s(const char *k, const char *v)
{
    kv_t *kv = calloc(1, sizeof(*kv));
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = strdup(k);
    kv->value = calloc(1, sizeof(av_t));
    opentelemetry__proto__common__v1__any_value__init(kv->value);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = strdup(v);
    return kv;
}

static kv_t *kv_i(const char *k, int64_t v)
{
    kv_t *kv = kv_s(k, "");
    free(kv->value->string_value);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = v;
    return kv;
}

/* One ExportLogsServiceRequest of g_per_req records spread over 10 services. Leaks its
 * message tree on purpose: built once per process. */
static void build_body(int k)
{
    static const char *lv[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    static const int sev[] = {1, 5, 9, 13, 17, 21};
    Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest req;
    opentelemetry__proto__collector__v1__export_logs_service_request__init(&req);
    int nres = 10;
    req.n_resource_logs = (size_t)nres;
    req.resource_logs = calloc((size_t)nres, sizeof(void *));
    uint64_t t0 = (uint64_t)time(NULL) * 1000000000ull;
    uint32_t x = 12345u + (uint32_t)k * 7919u;
    for (int r = 0; r < nres; r++) {
        Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = calloc(1, sizeof(*rl));
        opentelemetry__proto__logs__v1__resource_logs__init(rl);
        rl->resource = calloc(1, sizeof(*rl->resource));
        opentelemetry__proto__resource__v1__resource__init(rl->resource);
        char svc[64], inst[64];
        snprintf(svc, sizeof(svc), "bench-service-%d", r);
        snprintf(inst, sizeof(inst), "instance-%d", r);
        kv_t **ra = calloc(6, sizeof(kv_t *));
        ra[0] = kv_s("service.name", svc);
        ra[1] = kv_s("service.namespace", "bench");
        ra[2] = kv_s("deployment.environment.name", "prod");
        ra[3] = kv_s("service.instance.id", inst);
        ra[4] = kv_s("host.name", "bench-host");
        ra[5] = kv_s("telemetry.sdk.language", "nodejs");
        rl->resource->attributes = ra;
        rl->resource->n_attributes = 6;
        Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = calloc(1, sizeof(*sl));
        opentelemetry__proto__logs__v1__scope_logs__init(sl);
        int n = g_per_req / nres + (r < g_per_req % nres);
        sl->n_log_records = (size_t)n;
        sl->log_records = calloc((size_t)n, sizeof(void *));
        for (int i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            Opentelemetry__Proto__Logs__V1__LogRecord *lr = calloc(1, sizeof(*lr));
            opentelemetry__proto__logs__v1__log_record__init(lr);
            int l = (int)((x >> 16) % 6);
            lr->time_unix_nano = t0 + (uint64_t)i * 1000000ull;
            lr->observed_time_unix_nano = lr->time_unix_nano + 500000;
            lr->severity_number = sev[l];
            lr->severity_text = (char *)lv[l];
            char msg[160];
            snprintf(msg, sizeof(msg), "%s message %d: user=u%d took %d.%dms handling /api/orders",
                     lv[l], i, (int)(x % 97), (int)(x % 300), (int)(x % 10));
            lr->body = calloc(1, sizeof(av_t));
            opentelemetry__proto__common__v1__any_value__init(lr->body);
            lr->body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            lr->body->string_value = strdup(msg);
            kv_t **la = calloc(5, sizeof(kv_t *));
            la[0] = kv_i("log.index", i);
            la[1] = kv_s("code.function.name", i % 2 ? "processOrder" : "handleRequest");
            char th[32];
            snprintf(th, sizeof(th), "worker-%d", i % 4);
            la[2] = kv_s("thread.name", th);
            la[3] = kv_i("latency.ms", (int64_t)(x % 500));
            lr->attributes = la;
            lr->n_attributes = 4;
            if (i % 4) {
                lr->trace_id.len = 16;
                lr->trace_id.data = malloc(16);
                lr->span_id.len = 8;
                lr->span_id.data = malloc(8);
                for (int b = 0; b < 16; b++) {
                    lr->trace_id.data[b] = (uint8_t)(x >> (b % 4 * 8)) ^ (uint8_t)b;
                }
                for (int b = 0; b < 8; b++) {
                    lr->span_id.data[b] = (uint8_t)(x >> (b % 4 * 8)) ^ (uint8_t)(b + 1);
                }
                lr->flags = 1;
            }
            if (i % 8 == 3) {
                lr->event_name = (char *)"order.created";
            }
            sl->log_records[i] = lr;
        }
        rl->n_scope_logs = 1;
        rl->scope_logs = calloc(1, sizeof(void *));
        rl->scope_logs[0] = sl;
        req.resource_logs[r] = rl;
    }
    g_len[k] =
        opentelemetry__proto__collector__v1__export_logs_service_request__get_packed_size(&req);
    g_body[k] = malloc(g_len[k]);
    opentelemetry__proto__collector__v1__export_logs_service_request__pack(&req, g_body[k]);
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, g_url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    double per_thread = g_rate > 0 ? g_rate / g_conns / g_per_req : 0; /* requests/s */
    double start = now_s(), next = start + (per_thread > 0 ? (double)id / g_conns / per_thread : 0);
    for (int k = (int)id;; k++) {
        double t = now_s();
        if (t - start >= g_duration) {
            break;
        }
        if (per_thread > 0 && t < next) {
            struct timespec ts = {0, (long)((next - t) * 1e9)};
            nanosleep(&ts, NULL);
        }
        next += per_thread > 0 ? 1.0 / per_thread : 0;
        int b = k % LG_BODIES;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)g_body[b]);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)g_len[b]);
        long code = 0;
        CURLcode cr = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (cr != CURLE_OK || code != 200) {
            atomic_fetch_add(&g_errors, 1);
            continue;
        }
        atomic_fetch_add(&g_requests, 1);
        atomic_fetch_add(&g_records, (unsigned long long)g_per_req);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"url", 1, 0, 'u'},         {"rate", 1, 0, 'r'},
                                         {"duration", 1, 0, 'd'},    {"connections", 1, 0, 'c'},
                                         {"per-request", 1, 0, 'n'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            g_url = optarg;
            break;
        case 'r':
            g_rate = atof(optarg);
            break;
        case 'd':
            g_duration = atof(optarg);
            break;
        case 'c':
            g_conns = atoi(optarg);
            break;
        case 'n':
            g_per_req = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: loadgen_logs --url URL [--rate R] [--duration S] "
                            "[--connections N] [--per-request N]\n");
            return 2;
        }
    }
    if (!g_url || g_conns < 1 || g_conns > 64 || g_per_req < 10) {
        fprintf(stderr, "loadgen_logs: --url required; 1..64 connections; >= 10 per request\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int k = 0; k < LG_BODIES; k++) {
        build_body(k);
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now_s();
    pthread_t th[64];
    for (long i = 0; i < g_conns; i++) {
        pthread_create(&th[i], NULL, worker, (void *)i);
    }
    for (int i = 0; i < g_conns; i++) {
        pthread_join(th[i], NULL);
    }
    double secs = now_s() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                          ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                          ru0.ru_stime.tv_usec) /
                     1e6;
    printf("{\"records\":%llu,\"requests\":%llu,\"errors\":%llu,\"seconds\":%.3f,"
           "\"body_bytes\":%zu,\"cpu_seconds\":%.3f}\n",
           (unsigned long long)g_records, (unsigned long long)g_requests,
           (unsigned long long)g_errors, secs, g_len[0], cpu);
    return 0;
}
