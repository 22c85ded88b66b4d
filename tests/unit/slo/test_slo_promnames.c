/*
 * test_slo_promnames.c - tests for slo/promnames.c and the engine's use of it: OTLP metrics
 * match SLO selectors under the Prometheus names the remote-write exporter gives them (counter
 * _total, unit suffixes, histogram _bucket / _sum / _count, gauges with units and _ratio),
 * names already in Prometheus form still match, and label matchers see sanitised attribute
 * keys. The last test runs a Sloth spec through slo_simulate on semantic-convention names.
 */
#include "model.h"
#include "promnames.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyv_t;

typedef struct {
    metric_t m;
    Opentelemetry__Proto__Metrics__V1__Sum sum;
    Opentelemetry__Proto__Metrics__V1__Gauge gauge;
    Opentelemetry__Proto__Metrics__V1__Histogram hist;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram exph;
    Opentelemetry__Proto__Metrics__V1__Summary summ;
} tmetric_t;

enum { T_COUNTER, T_UPDOWN, T_GAUGE, T_HIST, T_EXPH, T_SUMMARY };

static slo_pn_t names(const char *name, const char *unit, int kind)
{
    tmetric_t t;
    opentelemetry__proto__metrics__v1__metric__init(&t.m);
    t.m.name = (char *)name;
    t.m.unit = (char *)unit;
    switch (kind) {
    case T_COUNTER:
    case T_UPDOWN:
        opentelemetry__proto__metrics__v1__sum__init(&t.sum);
        t.sum.is_monotonic = kind == T_COUNTER;
        t.sum.aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        t.m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        t.m.sum = &t.sum;
        break;
    case T_GAUGE:
        opentelemetry__proto__metrics__v1__gauge__init(&t.gauge);
        t.m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        t.m.gauge = &t.gauge;
        break;
    case T_HIST:
        opentelemetry__proto__metrics__v1__histogram__init(&t.hist);
        t.m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        t.m.histogram = &t.hist;
        break;
    case T_EXPH:
        opentelemetry__proto__metrics__v1__exponential_histogram__init(&t.exph);
        t.m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
        t.m.exponential_histogram = &t.exph;
        break;
    default:
        opentelemetry__proto__metrics__v1__summary__init(&t.summ);
        t.m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
        t.m.summary = &t.summ;
        break;
    }
    slo_pn_t n;
    slo_pn_init(&n, &t.m);
    return n; /* n.raw points at the caller's string literal, not at t */
}

UNIT_TEST(counter_matches_its_prometheus_name)
{
    slo_pn_t n = names("http.requests", "{request}", T_COUNTER);
    CHECK_STR(n.family, "http_requests_total");
    CHECK(slo_pn_match(&n, "http_requests_total") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "http.requests") == SLO_PN_SERIES); /* as sent, still */
    CHECK(slo_pn_match(&n, "http_requests") == SLO_PN_NONE);
    CHECK(slo_pn_match(&n, "http_requests_total_count") == SLO_PN_NONE);
    CHECK(slo_pn_match(&n, NULL) == SLO_PN_NONE);
    /* unit words: bytes per second, _total last */
    n = names("system.network.io", "By/s", T_COUNTER);
    CHECK(slo_pn_match(&n, "system_network_io_bytes_per_second_total") == SLO_PN_SERIES);
}

UNIT_TEST(names_already_in_prometheus_form_still_match)
{
    /* a counter sent under its Prometheus name, and remote-write input (suffix stripped) */
    slo_pn_t n = names("http_requests_total", "", T_COUNTER);
    CHECK(slo_pn_match(&n, "http_requests_total") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "http_requests") == SLO_PN_SERIES);
    n = names("http_requests", "", T_COUNTER);
    CHECK(slo_pn_match(&n, "http_requests_total") == SLO_PN_SERIES);
    /* a histogram already named with its unit */
    n = names("http_server_request_duration_seconds", "s", T_HIST);
    CHECK(slo_pn_match(&n, "http_server_request_duration_seconds") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "http_server_request_duration_seconds_bucket") == SLO_PN_BUCKET);
}

UNIT_TEST(histogram_bucket_sum_count)
{
    slo_pn_t n = names("http.server.request.duration", "s", T_HIST);
    CHECK_STR(n.family, "http_server_request_duration_seconds");
    CHECK(slo_pn_match(&n, "http_server_request_duration_seconds") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "http_server_request_duration_seconds_bucket") == SLO_PN_BUCKET);
    CHECK(slo_pn_match(&n, "http_server_request_duration_seconds_sum") == SLO_PN_SUM);
    CHECK(slo_pn_match(&n, "http_server_request_duration_seconds_count") == SLO_PN_COUNT);
    CHECK(slo_pn_match(&n, "http.server.request.duration") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "http_server_request_duration_seconds_total") == SLO_PN_NONE);
    /* an exponential histogram is a native histogram: no classic series */
    n = names("rpc.duration", "ms", T_EXPH);
    CHECK(slo_pn_match(&n, "rpc_duration_milliseconds") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "rpc_duration_milliseconds_bucket") == SLO_PN_NONE);
    CHECK(slo_pn_match(&n, "rpc_duration_milliseconds_count") == SLO_PN_NONE);
    /* a summary has _sum and _count but no buckets */
    n = names("rpc.latency", "ms", T_SUMMARY);
    CHECK(slo_pn_match(&n, "rpc_latency_milliseconds_count") == SLO_PN_COUNT);
    CHECK(slo_pn_match(&n, "rpc_latency_milliseconds_bucket") == SLO_PN_NONE);
}

UNIT_TEST(gauge_with_unit)
{
    slo_pn_t n = names("system.memory.usage", "By", T_GAUGE);
    CHECK(slo_pn_match(&n, "system_memory_usage_bytes") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "system_memory_usage_bytes_total") == SLO_PN_NONE);
    n = names("system.cpu.utilization", "1", T_GAUGE);
    CHECK(slo_pn_match(&n, "system_cpu_utilization_ratio") == SLO_PN_SERIES);
    /* a non-monotonic sum is a gauge: no _total, _ratio for unit 1 */
    n = names("queue.depth", "{item}", T_UPDOWN);
    CHECK(slo_pn_match(&n, "queue_depth") == SLO_PN_SERIES);
    CHECK(slo_pn_match(&n, "queue_depth_total") == SLO_PN_NONE);
    n = names("pool.usage", "1", T_UPDOWN);
    CHECK(slo_pn_match(&n, "pool_usage_ratio") == SLO_PN_SERIES);
}

static void set_kv(kv_t *kv, anyv_t *av, const char *key, const char *s, int64_t i)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    kv->key = (char *)key;
    kv->value = av;
    if (s) {
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        av->string_value = (char *)s;
    } else {
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        av->int_value = i;
    }
}

UNIT_TEST(label_names_are_sanitised_attribute_keys)
{
    kv_t kv[5];
    anyv_t av[5];
    kv_t *kvp[5] = {&kv[0], &kv[1], &kv[2], &kv[3], &kv[4]};
    set_kv(&kv[0], &av[0], "http.response.status_code", NULL, 503);
    set_kv(&kv[1], &av[1], "url_scheme", "https", 0);
    set_kv(&kv[2], &av[2], "a_b", "y", 0);
    set_kv(&kv[3], &av[3], "a.b", "x", 0);
    set_kv(&kv[4], &av[4], "2xx", "n", 0);
    char buf[64];
    CHECK_STR(slo_pn_attr(kvp, 5, "http_response_status_code", buf, sizeof(buf)), "503");
    CHECK_STR(slo_pn_attr(kvp, 5, "http.response.status_code", buf, sizeof(buf)), "503");
    CHECK_STR(slo_pn_attr(kvp, 5, "url_scheme", buf, sizeof(buf)), "https");
    /* two keys, one label: values joined in the byte order of the keys, as exported */
    CHECK_STR(slo_pn_attr(kvp, 5, "a_b", buf, sizeof(buf)), "x;y");
    CHECK_STR(slo_pn_attr(kvp, 5, "key_2xx", buf, sizeof(buf)), "n");
    CHECK(slo_pn_attr(kvp, 5, "http_response", buf, sizeof(buf)) == NULL);
    CHECK(slo_pn_attr(kvp, 5, "status_code", buf, sizeof(buf)) == NULL);
}

/* A Sloth spec in Prometheus names against OTLP counters with semantic-convention names, through
 * the engine's observer (slo_simulate): 10 % of the increments carry a 5xx status. */
UNIT_TEST(sloth_selectors_count_otlp_semconv_counters)
{
    static const char *spec =
        "version: prometheus/v1\n"
        "service: shop\n"
        "slos:\n"
        "  - name: requests\n"
        "    objective: 99\n"
        "    sli:\n"
        "      events:\n"
        "        error_query: sum(rate(http_requests_total{job=\"api\","
        "http_response_status_code=~\"5..\"}[{{.window}}]))\n"
        "        total_query: sum(rate(http_requests_total{job=\"api\"}[{{.window}}]))\n"
        "    alerting:\n"
        "      name: ShopRequests\n"
        "      page_alert: {}\n"
        "      ticket_alert: {}\n";
    static const char *series =
        "{\"start_ms\": 0, \"step_ms\": 60000, \"series\": ["
        "{\"metric\": \"http.requests\", \"labels\": {\"job\": \"api\", "
        "\"http.response.status_code\": \"200\"}, \"values\": [1000, 1090, 1180, 1270]},"
        "{\"metric\": \"http.requests\", \"labels\": {\"job\": \"api\", "
        "\"http.response.status_code\": \"503\"}, \"values\": [100, 110, 120, 130]},"
        "{\"metric\": \"http.requests\", \"labels\": {\"job\": \"batch\", "
        "\"http.response.status_code\": \"503\"}, \"values\": [0, 50, 100, 150]}]}";
    cfg_ctx_t c;
    cfg_ctx_init(&c, "cfg.yaml");
    slo_set_t *set = NULL;
    REQUIRE(slo_specs_load_string("spec.yaml", spec, strlen(spec), 0, &c, &set) == MT_OK);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    REQUIRE(f);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = slo_simulate(f, set, series, strlen(series), &eb);
    fclose(f);
    CHECK(rc == MT_OK);
    /* the last evaluation (3 minutes of increments after the baseline) */
    const char *last = out ? strstr(out, "\"t_ms\":180000") : NULL;
    CHECK(last != NULL);
    CHECK(last && strstr(last, "\"5m\":{\"good\":270,\"total\":300,") != NULL);
    CHECK(last && strstr(last, "\"state\":\"ok\"") != NULL);
    if (last && !strstr(last, "\"5m\":{\"good\":270,\"total\":300,")) {
        fprintf(stderr, "    got: %.300s\n", last);
    }
    free(out);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}
