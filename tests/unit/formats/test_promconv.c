/*
 * test_promconv.c - tests for collector/formats/promconv.c against protocols.md §4: the metric-name
 * examples and unit maps, label sanitising and collision joining, job / instance / target_info,
 * promoted, scope and external labels, classic histograms (cumulative buckets, le text), the
 * exponential -> native example and downscaling, summaries, stale markers, delta -> cumulative
 * state (accumulation, expiry, bound), exemplars, metadata, and every recorded metrics fixture.
 */
#include "unit.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "promconv.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyv_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint ndp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hdp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint edp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets ebk_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sdp_t;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar ex_t;
typedef Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest req_t;

#define NEW(a, T, init)                       \
    ({                                        \
        T *p_ = arena_calloc((a), sizeof(T)); \
        init(p_);                             \
        p_;                                   \
    })

#define T0    1700000000000000000ull /* ns */
#define T0_MS 1700000000000ll

/* ---- request builders ---- */

static anyv_t *any_s(arena_t *a, const char *s)
{
    anyv_t *v = NEW(a, anyv_t, opentelemetry__proto__common__v1__any_value__init);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static anyv_t *any_i(arena_t *a, int64_t i)
{
    anyv_t *v = NEW(a, anyv_t, opentelemetry__proto__common__v1__any_value__init);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static kv_t *kv_any(arena_t *a, const char *k, anyv_t *v)
{
    kv_t *kv = NEW(a, kv_t, opentelemetry__proto__common__v1__key_value__init);
    kv->key = (char *)k;
    kv->value = v;
    return kv;
}

static kv_t *kv_s(arena_t *a, const char *k, const char *s)
{
    return kv_any(a, k, any_s(a, s));
}
static kv_t *kv_i(arena_t *a, const char *k, int64_t i)
{
    return kv_any(a, k, any_i(a, i));
}

/* NULL-terminated list -> array; *n gets the count */
static void **list(arena_t *a, size_t *n, ...)
{
    va_list ap;
    size_t k = 0;
    va_start(ap, n);
    while (va_arg(ap, void *)) {
        k++;
    }
    va_end(ap);
    void **v = arena_calloc(a, (k + 1) * sizeof(void *));
    va_start(ap, n);
    for (size_t i = 0; i < k; i++) {
        v[i] = va_arg(ap, void *);
    }
    va_end(ap);
    *n = k;
    return v;
}
#define LIST(a, nptr, ...) list((a), (nptr), __VA_ARGS__, NULL)

static ndp_t *ndp(arena_t *a, double v, uint64_t t)
{
    ndp_t *p = NEW(a, ndp_t, opentelemetry__proto__metrics__v1__number_data_point__init);
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    p->time_unix_nano = t;
    p->start_time_unix_nano = t ? t - 1000000000ull : 0;
    return p;
}

static metric_t *metric(arena_t *a, const char *name, const char *unit)
{
    metric_t *m = NEW(a, metric_t, opentelemetry__proto__metrics__v1__metric__init);
    m->name = (char *)name;
    m->unit = (char *)unit;
    m->description = (char *)"help text";
    return m;
}

static metric_t *m_gauge(arena_t *a, const char *name, const char *unit, ndp_t *p)
{
    metric_t *m = metric(a, name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = NEW(a, Opentelemetry__Proto__Metrics__V1__Gauge,
                   opentelemetry__proto__metrics__v1__gauge__init);
    m->gauge->data_points = (ndp_t **)LIST(a, &m->gauge->n_data_points, p);
    return m;
}

static metric_t *m_sum(arena_t *a, const char *name, const char *unit, int mono, int temporality,
                       ndp_t *p)
{
    metric_t *m = metric(a, name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = NEW(a, Opentelemetry__Proto__Metrics__V1__Sum,
                 opentelemetry__proto__metrics__v1__sum__init);
    m->sum->is_monotonic = mono;
    m->sum->aggregation_temporality = temporality;
    m->sum->data_points = (ndp_t **)LIST(a, &m->sum->n_data_points, p);
    return m;
}

static hdp_t *hdp(arena_t *a, uint64_t t, uint64_t count, const double *bounds, size_t nb,
                  const uint64_t *counts, size_t nc)
{
    hdp_t *p = NEW(a, hdp_t, opentelemetry__proto__metrics__v1__histogram_data_point__init);
    p->time_unix_nano = t;
    p->count = count;
    p->explicit_bounds = (double *)bounds;
    p->n_explicit_bounds = nb;
    p->bucket_counts = (uint64_t *)counts;
    p->n_bucket_counts = nc;
    return p;
}

static metric_t *m_hist(arena_t *a, const char *name, const char *unit, int temporality, hdp_t *p)
{
    metric_t *m = metric(a, name, unit);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = NEW(a, Opentelemetry__Proto__Metrics__V1__Histogram,
                       opentelemetry__proto__metrics__v1__histogram__init);
    m->histogram->aggregation_temporality = temporality;
    m->histogram->data_points = (hdp_t **)LIST(a, &m->histogram->n_data_points, p);
    return m;
}

#define EBK_INIT opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init

static ebk_t *ebk(arena_t *a, int32_t off, const uint64_t *counts, size_t n)
{
    ebk_t *b = NEW(a, ebk_t, EBK_INIT);
    b->offset = off;
    b->bucket_counts = (uint64_t *)counts;
    b->n_bucket_counts = n;
    return b;
}

static edp_t *edp(arena_t *a, uint64_t t, int32_t scale, uint64_t count, int has_sum, double sum,
                  ebk_t *pos, ebk_t *neg)
{
    edp_t *p =
        NEW(a, edp_t, opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init);
    p->time_unix_nano = t;
    p->scale = scale;
    p->count = count;
    if (has_sum) {
        p->sum__case =
            OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM__SUM;
        p->sum = sum;
    }
    p->positive = pos;
    p->negative = neg;
    return p;
}

static metric_t *m_exp(arena_t *a, const char *name, int temporality, edp_t *p)
{
    metric_t *m = metric(a, name, "s");
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m->exponential_histogram = NEW(a, Opentelemetry__Proto__Metrics__V1__ExponentialHistogram,
                                   opentelemetry__proto__metrics__v1__exponential_histogram__init);
    m->exponential_histogram->aggregation_temporality = temporality;
    m->exponential_histogram->data_points =
        (edp_t **)LIST(a, &m->exponential_histogram->n_data_points, p);
    return m;
}

/* one resource (attrs may be NULL), one scope "lib" 1.0, the given metrics */
static rm_t *rmetrics(arena_t *a, kv_t **attrs, size_t nattrs, metric_t **ms, size_t nm)
{
    rm_t *rm = NEW(a, rm_t, opentelemetry__proto__metrics__v1__resource_metrics__init);
    rm->resource = NEW(a, Opentelemetry__Proto__Resource__V1__Resource,
                       opentelemetry__proto__resource__v1__resource__init);
    rm->resource->attributes = attrs;
    rm->resource->n_attributes = nattrs;
    sm_t *sm = NEW(a, sm_t, opentelemetry__proto__metrics__v1__scope_metrics__init);
    sm->scope = NEW(a, Opentelemetry__Proto__Common__V1__InstrumentationScope,
                    opentelemetry__proto__common__v1__instrumentation_scope__init);
    sm->scope->name = (char *)"lib";
    sm->scope->version = (char *)"1.0";
    sm->metrics = ms;
    sm->n_metrics = nm;
    rm->scope_metrics = (sm_t **)LIST(a, &rm->n_scope_metrics, sm);
    return rm;
}

#define REQ_INIT opentelemetry__proto__collector__v1__export_metrics_service_request__init

static req_t *request(arena_t *a, rm_t *rm)
{
    req_t *r = NEW(a, req_t, REQ_INIT);
    r->resource_metrics = (rm_t **)LIST(a, &r->n_resource_metrics, rm);
    return r;
}

/* a request with one metric and a plain service.name resource */
static req_t *req_of(arena_t *a, metric_t *m)
{
    size_t na, nm;
    kv_t **attrs = (kv_t **)LIST(a, &na, kv_s(a, "service.name", "svc"));
    metric_t **ms = (metric_t **)LIST(a, &nm, m);
    return request(a, rmetrics(a, attrs, na, ms, nm));
}

static promconv_opts_t opts(void)
{
    promconv_opts_t o;
    memset(&o, 0, sizeof(o));
    o.add_metric_suffixes = 1;
    o.target_info = 1;
    o.now_ms = T0_MS + 5000;
    return o;
}

/* ---- output inspection ---- */

static const char *lv(const Prometheus__TimeSeries *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_labels; i++) {
        if (strcmp(ts->labels[i]->name, name) == 0) {
            return ts->labels[i]->value;
        }
    }
    return NULL;
}

/* the series with __name__ = name and every given (label, value) pair (NULL-terminated) */
static Prometheus__TimeSeries *find(const promconv_out_t *out, const char *name, ...)
{
    for (size_t i = 0; i < out->n_series; i++) {
        Prometheus__TimeSeries *ts = out->series[i];
        const char *n = lv(ts, "__name__");
        if (!n || strcmp(n, name) != 0) {
            continue;
        }
        va_list ap;
        va_start(ap, name);
        int ok = 1;
        const char *k;
        while ((k = va_arg(ap, const char *))) {
            const char *v = va_arg(ap, const char *);
            const char *have = lv(ts, k);
            if (!have || strcmp(have, v) != 0) {
                ok = 0;
            }
        }
        va_end(ap);
        if (ok) {
            return ts;
        }
    }
    return NULL;
}

static size_t count_named(const promconv_out_t *out, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < out->n_series; i++) {
        const char *v = lv(out->series[i], "__name__");
        n += v && strcmp(v, name) == 0;
    }
    return n;
}

static double sample(const Prometheus__TimeSeries *ts)
{
    return ts && ts->n_samples ? ts->samples[0]->value : -12345;
}

static const Prometheus__MetricMetadata *meta(const promconv_out_t *out, const char *family)
{
    for (size_t i = 0; i < out->n_metadata; i++) {
        if (strcmp(out->metadata[i]->metric_family_name, family) == 0) {
            return out->metadata[i];
        }
    }
    return NULL;
}

static int name_ok(const char *s, int metric)
{
    if (!s || !*s) {
        return 0;
    }
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
        if (!(alpha || (i > 0 && c >= '0' && c <= '9'))) {
            return 0;
        }
    }
    return 1;
}

/* number of RW 1.0 label-rule violations over all series and exemplars */
static int violations(const promconv_out_t *out)
{
    int bad = 0;
    for (size_t i = 0; i < out->n_series; i++) {
        const Prometheus__TimeSeries *ts = out->series[i];
        bad += !name_ok(lv(ts, "__name__"), 1);
        bad += (ts->n_samples == 0) == (ts->n_histograms == 0);
        for (size_t k = 0; k < ts->n_labels; k++) {
            bad += !name_ok(ts->labels[k]->name, 0) || !ts->labels[k]->value[0];
            if (k > 0 && strcmp(ts->labels[k - 1]->name, ts->labels[k]->name) >= 0) {
                bad++; /* unsorted or duplicate */
            }
        }
        for (size_t k = 1; k < ts->n_samples; k++) {
            bad += ts->samples[k - 1]->timestamp > ts->samples[k]->timestamp;
        }
        for (size_t e = 0; e < ts->n_exemplars; e++) {
            const Prometheus__Exemplar *x = ts->exemplars[e];
            for (size_t k = 0; k < x->n_labels; k++) {
                bad += !name_ok(x->labels[k]->name, 0) || !x->labels[k]->value[0];
                if (k > 0 && strcmp(x->labels[k - 1]->name, x->labels[k]->name) >= 0) {
                    bad++;
                }
            }
        }
    }
    return bad;
}

static uint64_t bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

/* ---- names ---- */

static const char *mname(const char *name, const char *unit, int counter, int gauge)
{
    static char buf[256];
    if (promconv_metric_name(name, unit, counter, gauge, 1, NULL, buf, sizeof(buf)) < 0) {
        return "(invalid)";
    }
    return buf;
}

UNIT_TEST(metric_names_follow_protocols_examples)
{
    CHECK_STR(mname("http.server.duration", "s", 0, 0), "http_server_duration_seconds");
    CHECK_STR(mname("system.network.io", "By", 1, 0), "system_network_io_bytes_total");
    CHECK_STR(mname("requests", "requests/s", 0, 1), "requests_per_second");
    CHECK_STR(mname("packets.dropped", "{packet}", 1, 0), "packets_dropped_total");
    CHECK_STR(mname("net.rate", "{packet}/s", 0, 1), "net_rate_per_second");
    CHECK_STR(mname("cpu.utilization", "1", 0, 1), "cpu_utilization_ratio");
    CHECK_STR(mname("cpu.ratio.used", "1", 0, 1), "cpu_used_ratio");
    CHECK_STR(mname("items", "1", 1, 0), "items_total"); /* counters never get _ratio */
    CHECK_STR(mname("items", "1", 0, 0), "items");       /* histogram with unit 1: nothing */
    CHECK_STR(mname("total.requests", "", 1, 0), "requests_total");
    CHECK_STR(mname("requests.total.count", "", 1, 0), "requests_count_total");
    CHECK_STR(mname("2xx.responses", "", 0, 1), "_2xx_responses");
    CHECK_STR(mname("foo__bar..baz_", "", 0, 1), "foo_bar_baz");
    CHECK_STR(mname("duration.seconds", "s", 0, 0), "duration_seconds"); /* unit token present */
    CHECK_STR(mname("mem", "MiBy", 0, 1), "mem_mebibytes");
    CHECK_STR(mname("disk", "TiBy", 0, 1), "disk_tibibytes");
    CHECK_STR(mname("x", "By/s", 1, 0), "x_bytes_per_second_total");
    CHECK_STR(mname("speed", "km/h", 0, 1), "speed_km_per_hour");
    CHECK_STR(mname("temp", "Cel", 0, 1), "temp_celsius");
    CHECK_STR(mname("odd", "foo.bar", 0, 1), "odd_foo_bar"); /* unknown unit sanitised */
    CHECK_STR(mname("load", "%", 0, 1), "load_percent");
    CHECK_STR(mname("a:b", "", 0, 1), "a:b");
    CHECK_STR(mname("...", "", 0, 1), "(invalid)");
    char buf[64];
    CHECK(promconv_metric_name("up", "", 0, 1, 1, "my.ns", buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "my_ns_up");
    CHECK(promconv_metric_name("calls", "", 1, 0, 1, "app", buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "app_calls_total");
    /* without suffixes: only sanitising, runs of `_` kept */
    CHECK(promconv_metric_name("a.b__c", "s", 1, 0, 0, NULL, buf, sizeof(buf)) > 0);
    CHECK_STR(buf, "a_b__c");
    /* too small a buffer is an error, not a truncated name */
    CHECK(promconv_metric_name("http.server.duration", "s", 0, 0, 1, NULL, buf, 8) == -1);
}

static const char *lname(const char *key)
{
    static char buf[128];
    return promconv_label_name(key, buf, sizeof(buf)) < 0 ? "(invalid)" : buf;
}

UNIT_TEST(label_names_are_sanitised)
{
    CHECK_STR(lname("http.method"), "http_method");
    CHECK_STR(lname("a..b"), "a__b"); /* multiple underscores preserved (Prometheus default) */
    CHECK_STR(lname("123abc"), "key_123abc");
    CHECK_STR(lname("_foo"), "key_foo");
    CHECK_STR(lname("__foo"), "__foo");
    CHECK_STR(lname("\xc3\xbc"
                    "ber"),
              "key_ber"); /* one `_` per UTF-8 character, then `key` */
    CHECK_STR(lname("ok_Name9"), "ok_Name9");
    CHECK_STR(lname(""), "(invalid)");
    CHECK_STR(lname("__"), "(invalid)");
}

UNIT_TEST(format_float_is_go_shortest_fixed)
{
    char buf[400];
    struct {
        double v;
        const char *want;
    } cases[] = {
        {0.5, "0.5"},
        {1, "1"},
        {1000, "1000"},
        {0.005, "0.005"},
        {1e6, "1000000"},
        {0.1, "0.1"},
        {2.5e-7, "0.00000025"},
        {123.456, "123.456"},
        {-2.5, "-2.5"},
        {0, "0"},
        {1e21, "1000000000000000000000"},
        {0.3, "0.3"},
        {1.0 / 3, "0.3333333333333333"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(promconv_format_float(cases[i].v, buf, sizeof(buf)) == (int)strlen(cases[i].want));
        CHECK_STR(buf, cases[i].want);
    }
    CHECK(promconv_format_float(NAN, buf, sizeof(buf)) == 3);
    CHECK_STR(buf, "NaN");
    CHECK(promconv_format_float(5e-324, buf, sizeof(buf)) == 326); /* "0." + 323 zeros + "5" */
    CHECK(promconv_format_float(1e6, buf, 4) == -1);
}

UNIT_TEST(stale_nan_bit_pattern)
{
    double s = promconv_stale_nan();
    CHECK(bits(s) == 0x7ff0000000000002ull);
    CHECK(promconv_is_stale(s));
    CHECK(!promconv_is_stale(NAN));
    CHECK(!promconv_is_stale(1.0));
}

/* ---- labels ---- */

UNIT_TEST(point_attributes_sanitised_joined_and_stringified)
{
    arena_t *a = arena_create(65536, 0);
    ndp_t *p = ndp(a, 1, T0);
    anyv_t *arr = NEW(a, anyv_t, opentelemetry__proto__common__v1__any_value__init);
    arr->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    arr->array_value = NEW(a, Opentelemetry__Proto__Common__V1__ArrayValue,
                           opentelemetry__proto__common__v1__array_value__init);
    arr->array_value->values =
        (anyv_t **)LIST(a, &arr->array_value->n_values, any_i(a, 1), any_s(a, "x\"y"));
    anyv_t *map = NEW(a, anyv_t, opentelemetry__proto__common__v1__any_value__init);
    map->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    map->kvlist_value = NEW(a, Opentelemetry__Proto__Common__V1__KeyValueList,
                            opentelemetry__proto__common__v1__key_value_list__init);
    map->kvlist_value->values =
        (kv_t **)LIST(a, &map->kvlist_value->n_values, kv_i(a, "b", 2), kv_s(a, "a", "s"));
    anyv_t *dbl = NEW(a, anyv_t, opentelemetry__proto__common__v1__any_value__init);
    dbl->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    dbl->double_value = 0.25;
    anyv_t *tiny = NEW(a, anyv_t, opentelemetry__proto__common__v1__any_value__init);
    tiny->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    tiny->double_value = 1e-7;
    anyv_t *bl = NEW(a, anyv_t, opentelemetry__proto__common__v1__any_value__init);
    bl->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    bl->bool_value = 1;
    /* "a_b", "a.b" and "a-b" collide: values joined in byte order of the original keys */
    p->attributes =
        (kv_t **)LIST(a, &p->n_attributes, kv_s(a, "a_b", "under"), kv_s(a, "a.b", "dot"),
                      kv_i(a, "a-b", 42), kv_any(a, "arr", arr), kv_any(a, "map", map),
                      kv_any(a, "d", dbl), kv_any(a, "tiny", tiny), kv_any(a, "flag", bl),
                      kv_s(a, "empty", ""), kv_s(a, "1st", "digit"), kv_s(a, "__name__", "evil"));
    req_t *r = req_of(a, m_gauge(a, "g", "", p));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    Prometheus__TimeSeries *ts = find(&out, "g", NULL);
    REQUIRE(ts);
    CHECK_STR(lv(ts, "a_b"), "42;dot;under");
    CHECK_STR(lv(ts, "arr"), "[1,\"x\\\"y\"]");
    CHECK_STR(lv(ts, "map"), "{\"a\":\"s\",\"b\":2}");
    CHECK_STR(lv(ts, "d"), "0.25");
    CHECK_STR(lv(ts, "tiny"), "1e-7");
    CHECK_STR(lv(ts, "flag"), "true");
    CHECK_STR(lv(ts, "key_1st"), "digit");
    CHECK(lv(ts, "empty") == NULL);
    CHECK_STR(lv(ts, "__name__"), "g"); /* the metric name wins over an attribute */
    CHECK_STR(lv(ts, "job"), "svc");
    CHECK(violations(&out) == 0);
    arena_destroy(a);
}

UNIT_TEST(job_instance_target_info_promote_scope_external)
{
    arena_t *a = arena_create(65536, 0);
    size_t na, nm, na2, nm2;
    kv_t **attrs =
        (kv_t **)LIST(a, &na, kv_s(a, "service.name", "api"), kv_s(a, "service.namespace", "shop"),
                      kv_s(a, "service.instance.id", "i-1"), kv_s(a, "host.name", "h1"),
                      kv_s(a, "deployment.environment", "prod"));
    ndp_t *p1 = ndp(a, 1, T0);
    ndp_t *p2 = ndp(a, 2, T0 + 3000000000ull);
    p2->attributes = (kv_t **)LIST(a, &p2->n_attributes, kv_s(a, "host.name", "own"),
                                   kv_s(a, "cluster", "mine"));
    metric_t **ms = (metric_t **)LIST(a, &nm, m_gauge(a, "one", "", p1), m_gauge(a, "two", "", p2));
    /* a second resource with the same job/instance must not add another target_info */
    kv_t **attrs2 =
        (kv_t **)LIST(a, &na2, kv_s(a, "service.name", "api"), kv_s(a, "service.namespace", "shop"),
                      kv_s(a, "service.instance.id", "i-1"), kv_s(a, "other", "x"));
    metric_t **ms2 = (metric_t **)LIST(a, &nm2, m_gauge(a, "three", "", ndp(a, 3, T0)));
    req_t *r = NEW(a, req_t, REQ_INIT);
    r->resource_metrics = (rm_t **)LIST(a, &r->n_resource_metrics, rmetrics(a, attrs, na, ms, nm),
                                        rmetrics(a, attrs2, na2, ms2, nm2));

    cfg_strlist_t promote = {1, (char *[]){(char *)"host.name"}};
    cfg_strmap_t ext = {2, (char *[]){(char *)"cluster", (char *)"region"},
                        (char *[]){(char *)"c1", (char *)"eu"}};
    promconv_opts_t o = opts();
    o.promote = &promote;
    o.external_labels = &ext;
    o.scope_labels = 1;
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    Prometheus__TimeSeries *one = find(&out, "one", NULL);
    Prometheus__TimeSeries *two = find(&out, "two", NULL);
    REQUIRE(one && two);
    CHECK_STR(lv(one, "job"), "shop/api");
    CHECK_STR(lv(one, "instance"), "i-1");
    CHECK_STR(lv(one, "host_name"), "h1");  /* promoted */
    CHECK_STR(lv(two, "host_name"), "own"); /* the point's own label wins over promotion */
    CHECK_STR(lv(one, "cluster"), "c1");    /* external label */
    CHECK_STR(lv(two, "cluster"), "mine");  /* ... unless the series has it already */
    CHECK_STR(lv(one, "region"), "eu");
    CHECK_STR(lv(one, "otel_scope_name"), "lib");
    CHECK_STR(lv(one, "otel_scope_version"), "1.0");
    CHECK(lv(one, "otel_scope_schema_url") == NULL); /* empty: dropped */
    CHECK(lv(one, "deployment_environment") == NULL);
    CHECK(lv(one, "service_name") == NULL);

    CHECK(count_named(&out, "target_info") == 1);
    Prometheus__TimeSeries *ti = find(&out, "target_info", NULL);
    REQUIRE(ti);
    CHECK_STR(lv(ti, "job"), "shop/api");
    CHECK_STR(lv(ti, "instance"), "i-1");
    CHECK_STR(lv(ti, "host_name"), "h1");
    CHECK_STR(lv(ti, "deployment_environment"), "prod");
    CHECK(lv(ti, "service_name") == NULL && lv(ti, "service_namespace") == NULL &&
          lv(ti, "service_instance_id") == NULL);
    CHECK(lv(ti, "otel_scope_name") == NULL);
    REQUIRE(ti->n_samples == 1);
    CHECK(ti->samples[0]->value == 1);
    CHECK(ti->samples[0]->timestamp == T0_MS + 3000); /* latest point of the resource */
    CHECK(violations(&out) == 0);

    /* resource_to_telemetry: every resource attribute on every series */
    o.resource_to_telemetry = 1;
    o.promote = NULL;
    o.target_info = 0;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    one = find(&out, "one", NULL);
    REQUIRE(one);
    CHECK_STR(lv(one, "service_name"), "api");
    CHECK_STR(lv(one, "deployment_environment"), "prod");
    CHECK(count_named(&out, "target_info") == 0);
    arena_destroy(a);
}

UNIT_TEST(target_info_needs_identity_and_other_attributes)
{
    arena_t *a = arena_create(65536, 0);
    size_t na, nm;
    /* no service.name / instance id: no target_info, no job */
    kv_t **attrs = (kv_t **)LIST(a, &na, kv_s(a, "host.name", "h"));
    metric_t **ms = (metric_t **)LIST(a, &nm, m_gauge(a, "g", "", ndp(a, 1, T0)));
    req_t *r = request(a, rmetrics(a, attrs, na, ms, nm));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(count_named(&out, "target_info") == 0);
    CHECK(lv(find(&out, "g", NULL), "job") == NULL);
    /* service.name only: job but nothing else to describe */
    r = req_of(a, m_gauge(a, "g", "", ndp(a, 1, T0)));
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(count_named(&out, "target_info") == 0);
    CHECK_STR(lv(find(&out, "g", NULL), "job"), "svc");
    arena_destroy(a);
}

/* ---- per type ---- */

UNIT_TEST(counter_gauge_names_values_metadata)
{
    arena_t *a = arena_create(65536, 0);
    size_t nm;
    ndp_t *ip = ndp(a, 0, T0 + 1999999ull); /* ns truncate to ms */
    ip->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    ip->as_int = 7;
    metric_t *info = m_gauge(a, "build", "", ndp(a, 1, 0)); /* time 0 -> now */
    info->metadata = (kv_t **)LIST(a, &info->n_metadata, kv_s(a, "prometheus.type", "info"));
    metric_t **ms = (metric_t **)LIST(a, &nm, m_sum(a, "system.network.io", "By", 1, 2, ip),
                                      m_sum(a, "queue.size", "{item}", 0, 2, ndp(a, 3, T0)),
                                      m_gauge(a, "cpu.utilization", "1", ndp(a, 0.5, T0)), info);
    size_t na;
    kv_t **attrs = (kv_t **)LIST(a, &na, kv_s(a, "service.name", "svc"));
    req_t *r = request(a, rmetrics(a, attrs, na, ms, nm));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    Prometheus__TimeSeries *c = find(&out, "system_network_io_bytes_total", NULL);
    REQUIRE(c && c->n_samples == 1);
    CHECK(c->samples[0]->value == 7);
    CHECK(c->samples[0]->timestamp == T0_MS + 1);
    CHECK(sample(find(&out, "queue_size", NULL)) == 3);
    CHECK(sample(find(&out, "cpu_utilization_ratio", NULL)) == 0.5);
    Prometheus__TimeSeries *b = find(&out, "build", NULL);
    REQUIRE(b && b->n_samples == 1);
    CHECK(b->samples[0]->timestamp == o.now_ms);

    const Prometheus__MetricMetadata *md = meta(&out, "system_network_io_bytes_total");
    REQUIRE(md);
    CHECK(md->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
    CHECK_STR(md->unit, "bytes");
    CHECK_STR(md->help, "help text");
    md = meta(&out, "queue_size");
    REQUIRE(md);
    CHECK(md->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE);
    CHECK_STR(md->unit, "");
    md = meta(&out, "build");
    REQUIRE(md);
    CHECK(md->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO);
    CHECK(out.samples == 4);
    CHECK(violations(&out) == 0);
    arena_destroy(a);
}

UNIT_TEST(classic_histogram_buckets_are_cumulative)
{
    arena_t *a = arena_create(65536, 0);
    static const double bounds[] = {0.5, 1, 1000};
    static const uint64_t counts[] = {1, 2, 3, 4};
    hdp_t *p = hdp(a, T0, 10, bounds, 3, counts, 4);
    p->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
    p->sum = 5.5;
    ex_t *x = NEW(a, ex_t, opentelemetry__proto__metrics__v1__exemplar__init);
    x->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    x->as_double = 0.7;
    x->time_unix_nano = T0 - 5000000ull;
    static uint8_t tid[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                              0,    0,    0,    0,    0,    0,    0,    0x10};
    x->trace_id.data = tid;
    x->trace_id.len = 16;
    p->exemplars = (ex_t **)LIST(a, &p->n_exemplars, x);
    req_t *r = req_of(a, m_hist(a, "http.server.duration", "s", 2, p));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    const char *b = "http_server_duration_seconds_bucket";
    CHECK(sample(find(&out, b, "le", "0.5", NULL)) == 1);
    CHECK(sample(find(&out, b, "le", "1", NULL)) == 3);
    CHECK(sample(find(&out, b, "le", "1000", NULL)) == 6);
    CHECK(sample(find(&out, b, "le", "+Inf", NULL)) == 10);
    CHECK(count_named(&out, b) == 4);
    CHECK(sample(find(&out, "http_server_duration_seconds_sum", NULL)) == 5.5);
    CHECK(sample(find(&out, "http_server_duration_seconds_count", NULL)) == 10);
    /* the exemplar lands in the first bucket whose bound holds it */
    Prometheus__TimeSeries *le1 = find(&out, b, "le", "1", NULL);
    REQUIRE(le1 && le1->n_exemplars == 1);
    CHECK(le1->exemplars[0]->value == 0.7);
    CHECK(le1->exemplars[0]->timestamp == T0_MS - 5);
    REQUIRE(le1->exemplars[0]->n_labels == 1);
    CHECK_STR(le1->exemplars[0]->labels[0]->name, "trace_id");
    CHECK_STR(le1->exemplars[0]->labels[0]->value, "0123456789abcdef0000000000000010");
    CHECK(out.exemplars == 1);
    const Prometheus__MetricMetadata *md = meta(&out, "http_server_duration_seconds");
    REQUIRE(md);
    CHECK(md->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM);
    CHECK_STR(md->unit, "seconds");
    CHECK(violations(&out) == 0);

    /* no sum: no _sum series */
    p->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM___NOT_SET;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(find(&out, "http_server_duration_seconds_sum", NULL) == NULL);
    CHECK(find(&out, "http_server_duration_seconds_count", NULL) != NULL);
    arena_destroy(a);
}

static int spans_are(const Prometheus__BucketSpan *const *s, size_t n, const int32_t *want,
                     size_t nw)
{
    if (n * 2 != nw) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i]->offset != want[2 * i] || (int32_t)s[i]->length != want[2 * i + 1]) {
            return 0;
        }
    }
    return 1;
}

static int deltas_are(const int64_t *d, size_t n, const int64_t *want, size_t nw)
{
    return n == nw && (n == 0 || memcmp(d, want, n * sizeof(*d)) == 0);
}

UNIT_TEST(exponential_histogram_protocols_example)
{
    arena_t *a = arena_create(65536, 0);
    static const uint64_t pc[] = {10, 0, 0, 20, 5, 2};
    static const uint64_t nc[] = {1, 1};
    edp_t *p = edp(a, T0, 0, 40, 1, 12.5, ebk(a, 3, pc, 6), ebk(a, -2, nc, 2));
    p->zero_count = 2;
    req_t *r = req_of(a, m_exp(a, "lat", 2, p));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    Prometheus__TimeSeries *ts = find(&out, "lat_seconds", NULL);
    REQUIRE(ts && ts->n_histograms == 1 && ts->n_samples == 0);
    const Prometheus__Histogram *h = ts->histograms[0];
    CHECK(h->schema == 0);
    CHECK(h->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT && h->count_int == 40);
    CHECK(h->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT &&
          h->zero_count_int == 2);
    CHECK(h->sum == 12.5);
    CHECK(h->zero_threshold == 1e-128);
    CHECK(h->reset_hint == PROMETHEUS__HISTOGRAM__RESET_HINT__UNKNOWN);
    CHECK(h->timestamp == T0_MS);
    static const int32_t ws[] = {4, 1, 2, 3};
    static const int64_t wd[] = {10, 10, -15, -3};
    CHECK(spans_are((const Prometheus__BucketSpan *const *)h->positive_spans, h->n_positive_spans,
                    ws, 4));
    CHECK(deltas_are(h->positive_deltas, h->n_positive_deltas, wd, 4));
    static const int32_t wns[] = {-1, 2};
    static const int64_t wnd[] = {1, 0};
    CHECK(spans_are((const Prometheus__BucketSpan *const *)h->negative_spans, h->n_negative_spans,
                    wns, 2));
    CHECK(deltas_are(h->negative_deltas, h->n_negative_deltas, wnd, 2));
    CHECK(out.histograms == 1);
    CHECK(meta(&out, "lat_seconds")->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM);

    /* an explicit zero threshold is kept */
    p->zero_threshold = 0.001;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(find(&out, "lat_seconds", NULL)->histograms[0]->zero_threshold == 0.001);
    arena_destroy(a);
}

UNIT_TEST(exponential_downscale_and_drops)
{
    arena_t *a = arena_create(65536, 0);
    /* scale 10 -> 8: four OTel buckets per native bucket, floor division for negatives */
    static const uint64_t pc[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint64_t nc[] = {1, 1, 1, 1};
    edp_t *p = edp(a, T0, 10, 40, 1, 1, ebk(a, 0, pc, 8), ebk(a, -3, nc, 4));
    req_t *r = req_of(a, m_exp(a, "lat", 2, p));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    Prometheus__TimeSeries *ts = find(&out, "lat_seconds", NULL);
    REQUIRE(ts && ts->n_histograms == 1);
    const Prometheus__Histogram *h = ts->histograms[0];
    CHECK(h->schema == 8);
    static const int32_t ws[] = {1, 2};
    static const int64_t wd[] = {10, 16}; /* 1+2+3+4, 5+6+7+8 */
    CHECK(spans_are((const Prometheus__BucketSpan *const *)h->positive_spans, h->n_positive_spans,
                    ws, 2));
    CHECK(deltas_are(h->positive_deltas, h->n_positive_deltas, wd, 2));
    static const int32_t wns[] = {0, 2}; /* indices -3..-1 -> -1 (+1 = 0), index 0 -> 1 */
    static const int64_t wnd[] = {3, -2};
    CHECK(spans_are((const Prometheus__BucketSpan *const *)h->negative_spans, h->n_negative_spans,
                    wns, 2));
    CHECK(deltas_are(h->negative_deltas, h->n_negative_deltas, wnd, 2));

    /* scale below -4 and a missing sum drop the point with a reason */
    p->scale = -5;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(out.dropped_points == 1);
    CHECK_STR(out.last_drop_reason, "scale_too_small");
    CHECK(find(&out, "lat_seconds", NULL) == NULL);
    p->scale = 0;
    p->sum__case =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM___NOT_SET;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(out.dropped_points == 1);
    CHECK_STR(out.last_drop_reason, "no_sum");
    arena_destroy(a);
}

UNIT_TEST(summary_quantiles_sum_count)
{
    arena_t *a = arena_create(65536, 0);
    sdp_t *p = NEW(a, sdp_t, opentelemetry__proto__metrics__v1__summary_data_point__init);
    p->time_unix_nano = T0;
    p->count = 4;
    p->sum = 2.5;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q1 =
        NEW(a, Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile,
            opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init);
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q2 =
        NEW(a, Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile,
            opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init);
    q1->quantile = 0.5;
    q1->value = 0.6;
    q2->quantile = 0.99;
    q2->value = 1.2;
    p->quantile_values = (void *)LIST(a, &p->n_quantile_values, q1, q2);
    metric_t *m = metric(a, "rpc.latency", "ms");
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m->summary = NEW(a, Opentelemetry__Proto__Metrics__V1__Summary,
                     opentelemetry__proto__metrics__v1__summary__init);
    m->summary->data_points = (sdp_t **)LIST(a, &m->summary->n_data_points, p);
    req_t *r = req_of(a, m);
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(sample(find(&out, "rpc_latency_milliseconds", "quantile", "0.5", NULL)) == 0.6);
    CHECK(sample(find(&out, "rpc_latency_milliseconds", "quantile", "0.99", NULL)) == 1.2);
    CHECK(sample(find(&out, "rpc_latency_milliseconds_sum", NULL)) == 2.5);
    CHECK(sample(find(&out, "rpc_latency_milliseconds_count", NULL)) == 4);
    const Prometheus__MetricMetadata *md = meta(&out, "rpc_latency_milliseconds");
    REQUIRE(md);
    CHECK(md->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY);
    CHECK_STR(md->unit, "milliseconds");
    CHECK(violations(&out) == 0);

    /* NoRecordedValue: every sample is the stale marker */
    p->flags = 1;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(out.n_series == 4);
    for (size_t i = 0; i < out.n_series; i++) {
        CHECK(bits(sample(out.series[i])) == 0x7ff0000000000002ull);
    }
    arena_destroy(a);
}

UNIT_TEST(no_recorded_value_gives_stale_markers)
{
    arena_t *a = arena_create(65536, 0);
    size_t nm;
    ndp_t *g = ndp(a, 5, T0);
    g->flags = 1;
    static const double bounds[] = {1};
    static const uint64_t counts[] = {1, 1};
    hdp_t *h = hdp(a, T0, 2, bounds, 1, counts, 2);
    h->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
    h->sum = 1;
    h->flags = 1;
    static const uint64_t pc[] = {1};
    edp_t *e = edp(a, T0, 2, 1, 0, 0, ebk(a, 0, pc, 1), NULL);
    e->flags = 1;
    metric_t **ms = (metric_t **)LIST(a, &nm, m_gauge(a, "g", "", g), m_hist(a, "h", "", 2, h),
                                      m_exp(a, "e", 2, e));
    size_t na;
    kv_t **attrs = (kv_t **)LIST(a, &na, kv_s(a, "service.name", "svc"));
    req_t *r = request(a, rmetrics(a, attrs, na, ms, nm));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    size_t n_float = 0;
    for (size_t i = 0; i < out.n_series; i++) {
        const Prometheus__TimeSeries *ts = out.series[i];
        for (size_t k = 0; k < ts->n_samples; k++) {
            CHECK(bits(ts->samples[k]->value) == 0x7ff0000000000002ull);
            n_float++;
        }
    }
    CHECK(n_float == 1 + 2 + 1 + 1); /* gauge, two buckets, _sum, _count */
    Prometheus__TimeSeries *es = find(&out, "e_seconds", NULL);
    REQUIRE(es && es->n_histograms == 1);
    CHECK(bits(es->histograms[0]->sum) == 0x7ff0000000000002ull);
    CHECK(es->histograms[0]->count_int == 0);
    CHECK(es->histograms[0]->n_positive_spans == 0);
    CHECK(out.dropped_points == 0); /* a stale point needs no sum */
    arena_destroy(a);
}

UNIT_TEST(counter_exemplars_carry_ids_and_attributes)
{
    arena_t *a = arena_create(65536, 0);
    ndp_t *p = ndp(a, 9, T0);
    ex_t *x = NEW(a, ex_t, opentelemetry__proto__metrics__v1__exemplar__init);
    x->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT;
    x->as_int = 3;
    x->time_unix_nano = T0 + 2500000ull;
    static uint8_t tid[16] = {0xaa, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static uint8_t sid[8] = {0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 2};
    x->trace_id = (ProtobufCBinaryData){16, tid};
    x->span_id = (ProtobufCBinaryData){8, sid};
    x->filtered_attributes = (kv_t **)LIST(a, &x->n_filtered_attributes, kv_s(a, "user.id", "u7"),
                                           kv_s(a, "trace_id", "spoofed"));
    p->exemplars = (ex_t **)LIST(a, &p->n_exemplars, x);
    req_t *r = req_of(a, m_sum(a, "calls", "", 1, 2, p));
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    Prometheus__TimeSeries *ts = find(&out, "calls_total", NULL);
    REQUIRE(ts && ts->n_exemplars == 1);
    const Prometheus__Exemplar *e = ts->exemplars[0];
    CHECK(e->value == 3);
    CHECK(e->timestamp == T0_MS + 2);
    REQUIRE(e->n_labels == 3);
    CHECK_STR(e->labels[0]->name, "span_id");
    CHECK_STR(e->labels[0]->value, "deadbeef00000002");
    CHECK_STR(e->labels[1]->name, "trace_id");
    CHECK_STR(e->labels[1]->value, "aabb0000000000000000000000000001");
    CHECK_STR(e->labels[2]->name, "user_id");
    CHECK_STR(e->labels[2]->value, "u7");
    /* gauges drop exemplars */
    r = req_of(a, m_gauge(a, "temp", "", p));
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(out.exemplars == 0);
    arena_destroy(a);
}

UNIT_TEST(same_labels_share_one_series_in_time_order)
{
    arena_t *a = arena_create(65536, 0);
    metric_t *m = m_gauge(a, "g", "", ndp(a, 2, T0 + 2000000000ull));
    m->gauge->data_points =
        (ndp_t **)LIST(a, &m->gauge->n_data_points, ndp(a, 2, T0 + 2000000000ull), ndp(a, 1, T0),
                       ndp(a, 3, T0 + 4000000000ull));
    req_t *r = req_of(a, m);
    promconv_opts_t o = opts();
    promconv_out_t out;
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(count_named(&out, "g") == 1);
    Prometheus__TimeSeries *ts = find(&out, "g", NULL);
    REQUIRE(ts && ts->n_samples == 3);
    CHECK(ts->samples[0]->value == 1 && ts->samples[1]->value == 2 && ts->samples[2]->value == 3);
    CHECK(violations(&out) == 0);
    arena_destroy(a);
}

/* ---- delta -> cumulative ---- */

UNIT_TEST(delta_sum_accumulates_across_requests)
{
    deltacum_t *dc = deltacum_create(100, 60000);
    REQUIRE(dc);
    arena_t *a = arena_create(65536, 0);
    promconv_opts_t o = opts();
    promconv_out_t out;
    ndp_t *p = ndp(a, 10, T0);
    req_t *r = req_of(a, m_sum(a, "requests", "", 1, 1, p));
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    CHECK(sample(find(&out, "requests_total", NULL)) == 10);
    CHECK(meta(&out, "requests_total")->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
    p->as_double = 5;
    p->time_unix_nano = T0 + 1000000000ull;
    o.now_ms += 1000;
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    CHECK(sample(find(&out, "requests_total", NULL)) == 15);
    CHECK(deltacum_size(dc) == 1);
    /* an earlier start time (restarted producer) just carries on accumulating */
    p->start_time_unix_nano = T0 - 99000000000ull;
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    CHECK(sample(find(&out, "requests_total", NULL)) == 20);

    /* idle past the expiry: the state is forgotten and the total restarts */
    o.now_ms += 60001;
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    CHECK(sample(find(&out, "requests_total", NULL)) == 5);

    /* without state, delta points are dropped with a reason */
    REQUIRE(promconv_convert(&o, NULL, r, a, &out) == MT_OK);
    CHECK(out.n_series == 0);
    CHECK(out.dropped_points == 1);
    CHECK_STR(out.last_drop_reason, "delta_without_state");
    arena_destroy(a);
    deltacum_destroy(dc);
}

UNIT_TEST(delta_state_is_bounded_and_expires)
{
    deltacum_t *dc = deltacum_create(1, 10000);
    REQUIRE(dc);
    arena_t *a = arena_create(65536, 0);
    promconv_opts_t o = opts();
    promconv_out_t out;
    ndp_t *p1 = ndp(a, 1, T0);
    ndp_t *p2 = ndp(a, 1, T0);
    p2->attributes = (kv_t **)LIST(a, &p2->n_attributes, kv_s(a, "k", "other"));
    metric_t *m = m_sum(a, "ops", "", 1, 1, p1);
    m->sum->data_points = (ndp_t **)LIST(a, &m->sum->n_data_points, p1, p2);
    req_t *r = req_of(a, m);
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    CHECK(deltacum_size(dc) == 1);
    CHECK(out.dropped_points == 1);
    CHECK_STR(out.last_drop_reason, "delta_state_full");
    CHECK(count_named(&out, "ops_total") == 1);
    /* once the first series has been idle past the expiry it makes room */
    o.now_ms += 10001;
    m->sum->data_points = (ndp_t **)LIST(a, &m->sum->n_data_points, p2);
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    CHECK(out.dropped_points == 0);
    CHECK(deltacum_size(dc) == 1);
    CHECK(sample(find(&out, "ops_total", "k", "other", NULL)) == 1);
    arena_destroy(a);
    deltacum_destroy(dc);
}

UNIT_TEST(delta_histograms_accumulate)
{
    deltacum_t *dc = deltacum_create(100, 0);
    REQUIRE(dc);
    arena_t *a = arena_create(65536, 0);
    promconv_opts_t o = opts();
    promconv_out_t out;
    static const double bounds[] = {1};
    static const uint64_t c1[] = {1, 1}, c2[] = {2, 0};
    hdp_t *p = hdp(a, T0, 2, bounds, 1, c1, 2);
    p->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
    p->sum = 3;
    req_t *r = req_of(a, m_hist(a, "d", "", 1, p));
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    p->bucket_counts = (uint64_t *)c2;
    p->sum = 1;
    REQUIRE(promconv_convert(&o, dc, r, a, &out) == MT_OK);
    CHECK(sample(find(&out, "d_bucket", "le", "1", NULL)) == 3);
    CHECK(sample(find(&out, "d_bucket", "le", "+Inf", NULL)) == 4);
    CHECK(sample(find(&out, "d_count", NULL)) == 4);
    CHECK(sample(find(&out, "d_sum", NULL)) == 4);

    /* exponential: scale 1 then scale 0, merged at the coarser scale */
    static const uint64_t e1[] = {1, 1}; /* scale 1 indices 0,1 -> scale 0 index 0 */
    static const uint64_t e2[] = {5};    /* scale 0 index 1 */
    edp_t *ep = edp(a, T0, 1, 2, 1, 2, ebk(a, 0, e1, 2), NULL);
    req_t *er = req_of(a, m_exp(a, "x", 1, ep));
    REQUIRE(promconv_convert(&o, dc, er, a, &out) == MT_OK);
    ep->scale = 0;
    ep->count = 5;
    ep->positive = ebk(a, 1, e2, 1);
    REQUIRE(promconv_convert(&o, dc, er, a, &out) == MT_OK);
    Prometheus__TimeSeries *ts = find(&out, "x_seconds", NULL);
    REQUIRE(ts && ts->n_histograms == 1);
    const Prometheus__Histogram *h = ts->histograms[0];
    CHECK(h->schema == 0);
    CHECK(h->count_int == 7);
    CHECK(h->sum == 4);
    static const int32_t ws[] = {1, 2};
    static const int64_t wd[] = {2, 3};
    CHECK(spans_are((const Prometheus__BucketSpan *const *)h->positive_spans, h->n_positive_spans,
                    ws, 2));
    CHECK(deltas_are(h->positive_deltas, h->n_positive_deltas, wd, 2));
    CHECK(deltacum_size(dc) == 2);
    arena_destroy(a);
    deltacum_destroy(dc);
}

/* ---- fixtures ---- */

/* The exporter's hand-written WriteRequest encoder gives protobuf-c's bytes. */
static int pack_matches_protobuf_c(const promconv_out_t *out, arena_t *a)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.timeseries = out->series;
    wr.n_timeseries = out->n_series;
    wr.metadata = out->metadata;
    wr.n_metadata = out->n_metadata;
    size_t want_len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *want = arena_alloc(a, want_len + 1);
    prometheus__write_request__pack(&wr, want);
    size_t got_len = 0;
    uint8_t *got =
        prw_pack_v1(out->series, out->n_series, out->metadata, out->n_metadata, a, &got_len);
    if (got && got_len == want_len && memcmp(got, want, want_len) == 0) {
        return 1;
    }
    fprintf(stderr, "    hand-packed %zu bytes, protobuf-c %zu", got_len, want_len);
    for (size_t i = 0; got && i < want_len && i < got_len; i++) {
        if (got[i] != want[i]) {
            fprintf(stderr, "; first difference at byte %zu: %02x vs %02x", i, got[i], want[i]);
            break;
        }
    }
    fprintf(stderr, "\n");
    return 0;
}

UNIT_TEST(hand_packed_write_request_edge_values)
{
    arena_t *a = arena_create(65536, 0);
    REQUIRE(a);
    static const double vals[] = {0.0, -0.0, 1.5, -2, 1e300};
    static const int64_t tss[] = {0, 1, -5, 1700000000000LL, 127};
    Prometheus__TimeSeries *ts = NEW(a, Prometheus__TimeSeries, prometheus__time_series__init);
    Prometheus__Label *l[3];
    const char *kv[3][2] = {{"__name__", "x"}, {"empty", ""}, {"k", "v\xc3\xa9"}};
    for (int i = 0; i < 3; i++) {
        l[i] = NEW(a, Prometheus__Label, prometheus__label__init);
        l[i]->name = (char *)kv[i][0];
        l[i]->value = (char *)kv[i][1];
    }
    ts->labels = l;
    ts->n_labels = 3;
    Prometheus__Sample *sm[5];
    for (int i = 0; i < 5; i++) {
        sm[i] = NEW(a, Prometheus__Sample, prometheus__sample__init);
        sm[i]->value = vals[i];
        sm[i]->timestamp = tss[i];
    }
    ts->samples = sm;
    ts->n_samples = 5;
    Prometheus__TimeSeries *list[2] = {
        ts, NEW(a, Prometheus__TimeSeries, prometheus__time_series__init)};
    promconv_out_t out;
    memset(&out, 0, sizeof(out));
    out.series = list;
    out.n_series = 2;
    CHECK(pack_matches_protobuf_c(&out, a));
    arena_destroy(a);
}

UNIT_TEST(every_metrics_fixture_converts_cleanly)
{
    static const char *const files[] = {
        "metrics-n1/metrics-proto-1.bin",
        "metrics-n100/metrics-proto-1.bin",
        "metrics-n100/metrics-proto-2.bin",
        "metrics-n100/metrics-proto-3.bin",
        "metrics-n20-cumulative-x2/metrics-proto-1.bin",
        "metrics-n20-cumulative-x2/metrics-proto-2.bin",
    };
    deltacum_t *dc = deltacum_create(1000, 300000);
    REQUIRE(dc);
    size_t converted = 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/otlp-js/%s", unit_fixtures_dir(), files[i]);
        size_t len = 0;
        unsigned char *data = unit_read_file(path, &len);
        CHECK(data != NULL);
        if (!data) {
            continue;
        }
        arena_t *a = arena_create(len * 8 + 65536, 0);
        req_t *r = opentelemetry__proto__collector__v1__export_metrics_service_request__unpack(
            arena_pb_allocator(a), len, data);
        CHECK(r != NULL);
        if (r) {
            promconv_opts_t o = opts();
            o.scope_labels = 1;
            promconv_out_t out;
            CHECK(promconv_convert(&o, dc, r, a, &out) == MT_OK);
            CHECK(out.n_series > 0);
            CHECK(out.n_metadata > 0);
            CHECK(violations(&out) == 0);
            CHECK(pack_matches_protobuf_c(&out, a));
            if (out.dropped_points) {
                fprintf(stderr, "    %s: %llu dropped (%s)\n", files[i],
                        (unsigned long long)out.dropped_points, out.last_drop_reason);
            }
            converted++;
        }
        arena_destroy(a);
        free(data);
    }
    CHECK(converted == sizeof(files) / sizeof(files[0]));
    deltacum_destroy(dc);
}

/* Many distinct series in one request: the series table rehashes several times on the way.
 * (A series appended before being linked into the table was once linked twice, into a cycle,
 * and the next lookup of that bucket never returned.) */
UNIT_TEST(many_series_survive_rehash)
{
    arena_t *a = arena_create(1 << 20, 0);
    REQUIRE(a);
    enum { N = 5000 };
    metric_t *m = metric(a, "queue.depth", "");
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = NEW(a, Opentelemetry__Proto__Metrics__V1__Gauge,
                   opentelemetry__proto__metrics__v1__gauge__init);
    m->gauge->n_data_points = N;
    m->gauge->data_points = arena_alloc(a, N * sizeof(ndp_t *));
    REQUIRE(m->gauge->data_points);
    for (int i = 0; i < N; i++) {
        ndp_t *p = ndp(a, i, T0_MS * 1000000ull);
        char *v = arena_alloc(a, 16);
        snprintf(v, 16, "q%d", i);
        size_t na;
        p->attributes = (kv_t **)LIST(a, &na, kv_s(a, "queue", v));
        p->n_attributes = na;
        m->gauge->data_points[i] = p;
    }
    promconv_opts_t o = opts();
    promconv_out_t out;
    memset(&out, 0, sizeof(out));
    REQUIRE(promconv_convert(&o, NULL, req_of(a, m), a, &out) == MT_OK);
    CHECK(count_named(&out, "queue_depth") == N);
    CHECK(violations(&out) == 0);
    /* and the same points again in one request land on the same N series (lookups work) */
    arena_destroy(a);
}
