/*
 * test_prw_decode.c - tests for collector/formats/prw_decode.c: the recorded Prometheus 2.42 requests
 * (metadata-only and two data batches), type from metadata vs from the name suffix, classic
 * histogram and summary reassembly, native histograms (integer, float, custom buckets) with
 * the bucket index shift, stale markers, exemplars, job/instance/target_info -> resource, RW
 * 2.0 symbols and labels_refs, and every kind of invalid input refused with a reason.
 * Requests are built with the generated protobuf-c structs and packed.
 */
#include "unit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "codec.h"
#include "mt.h"
#include "prw_decode.h"
#include "prom_rw1.pb-c.h"
#include "prom_rw2.pb-c.h"

typedef Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest mreq_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;

enum {
    GAUGE = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE,
    SUM = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM,
    HIST = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM,
    EXPH = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM,
    SUMMARY = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY
};

/* ---- builders ------------------------------------------------------------------------- */

#define NEW(a, T, INIT)                      \
    ({                                       \
        T *p_ = arena_alloc((a), sizeof(T)); \
        *p_ = (T)INIT;                       \
        p_;                                  \
    })

/* A RW1 series from "k", "v", ..., NULL labels and n (value, timestamp) samples. */
static Prometheus__TimeSeries *ts1(arena_t *a, const char *const *lbl, size_t n, const double *vals,
                                   const int64_t *tss)
{
    Prometheus__TimeSeries *t = NEW(a, Prometheus__TimeSeries, PROMETHEUS__TIME_SERIES__INIT);
    size_t nl = 0;
    while (lbl[2 * nl]) {
        nl++;
    }
    t->labels = arena_alloc(a, (nl + 1) * sizeof(void *));
    for (size_t i = 0; i < nl; i++) {
        Prometheus__Label *l = NEW(a, Prometheus__Label, PROMETHEUS__LABEL__INIT);
        l->name = (char *)lbl[2 * i];
        l->value = (char *)lbl[2 * i + 1];
        t->labels[i] = l;
    }
    t->n_labels = nl;
    t->samples = arena_alloc(a, (n + 1) * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        Prometheus__Sample *s = NEW(a, Prometheus__Sample, PROMETHEUS__SAMPLE__INIT);
        s->value = vals[i];
        s->timestamp = tss[i];
        t->samples[i] = s;
    }
    t->n_samples = n;
    return t;
}

static Prometheus__TimeSeries *one(arena_t *a, const char *const *lbl, double v, int64_t ts)
{
    return ts1(a, lbl, 1, &v, &ts);
}

static Prometheus__MetricMetadata *md1(arena_t *a, const char *fam, int type, const char *help)
{
    Prometheus__MetricMetadata *m =
        NEW(a, Prometheus__MetricMetadata, PROMETHEUS__METRIC_METADATA__INIT);
    m->metric_family_name = (char *)fam;
    m->type = (Prometheus__MetricMetadata__MetricType)type;
    m->help = (char *)help;
    return m;
}

static uint8_t *pack_msg(arena_t *a, const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = arena_alloc(a, *len + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

static int conv1(arena_t *a, Prometheus__TimeSeries **ts, size_t n, Prometheus__MetricMetadata **md,
                 size_t nmd, mreq_t **out, prw_stats_t *st, mt_errbuf_t *eb)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.timeseries = ts;
    wr.n_timeseries = n;
    wr.metadata = md;
    wr.n_metadata = nmd;
    size_t len;
    uint8_t *b = pack_msg(a, &wr.base, &len);
    mt_errbuf_clear(eb);
    return prw_to_otlp(1, b, len, a, out, st, eb);
}

/* ---- readers -------------------------------------------------------------------------- */

static metric_t *find_metric(mreq_t *r, const char *name, int kind)
{
    for (size_t i = 0; r && i < r->n_resource_metrics; i++) {
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                if (strcmp(sm->metrics[k]->name, name) == 0 &&
                    (int)sm->metrics[k]->data_case == kind) {
                    return sm->metrics[k];
                }
            }
        }
    }
    return NULL;
}

static const char *attr(kv_t **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kv[i]->key, key) == 0 &&
            kv[i]->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            return kv[i]->value->string_value;
        }
    }
    return NULL;
}

static size_t count_points(mreq_t *r)
{
    size_t n = 0;
    for (size_t i = 0; r && i < r->n_resource_metrics; i++) {
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                metric_t *m = sm->metrics[k];
                int dc = (int)m->data_case;
                n += dc == GAUGE  ? m->gauge->n_data_points
                     : dc == SUM  ? m->sum->n_data_points
                     : dc == HIST ? m->histogram->n_data_points
                     : dc == EXPH ? m->exponential_histogram->n_data_points
                                  : m->summary->n_data_points;
            }
        }
    }
    return n;
}

static double stale_nan(void)
{
    uint64_t bits = PRW_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* ---- recorded requests ------------------------------------------------------------------ */

static void fixture(int *unit_failed_, int idx, size_t want_series, size_t want_samples)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/promrw/promrw-proto-snappy-%d.bin", unit_fixtures_dir(), idx);
    size_t zlen = 0;
    unsigned char *z = unit_read_file(path, &zlen);
    REQUIRE(z);
    arena_t *a = arena_create(64 * 1024, 0);
    uint8_t *pb = NULL;
    size_t len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(codec_decompress(CODEC_SNAPPY, z, zlen, 20 << 20, a, &pb, &len, &eb) == MT_OK);
    mreq_t *r = NULL;
    prw_stats_t st;
    int rc = prw_to_otlp(1, pb, len, a, &r, &st, &eb);
    if (rc != MT_OK) {
        fprintf(stderr, "    fixture %d: %s\n", idx, eb.msg);
    }
    CHECK(rc == MT_OK);
    CHECK(st.series == want_series);
    CHECK(st.samples == want_samples);
    CHECK(st.points == count_points(r));
    if (want_series == 0) {
        CHECK(r && r->n_resource_metrics == 0);
        CHECK(st.points == 0);
    } else {
        /* classic summaries/histograms fold several samples into one point */
        CHECK(st.points > 0 && st.points < st.samples);
        REQUIRE(r && r->n_resource_metrics == 1);
        Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_metrics[0]->resource;
        CHECK_STR(attr(res->attributes, res->n_attributes, "service.name"), "prometheus");
        CHECK_STR(attr(res->attributes, res->n_attributes, "service.instance.id"),
                  "127.0.0.1:46235");
        CHECK_STR(r->resource_metrics[0]->scope_metrics[0]->scope->name,
                  "meltp/prometheusremotewrite");
        CHECK(find_metric(r, "go_goroutines", GAUGE));
        CHECK(find_metric(r, "go_memstats_alloc_bytes", GAUGE));
        CHECK(find_metric(r, "go_memstats_alloc_bytes", SUM)); /* from ..._total */
        metric_t *gc = find_metric(r, "go_gc_duration_seconds", SUMMARY);
        REQUIRE(gc && gc->summary->n_data_points == 1);
        CHECK(gc->summary->data_points[0]->n_quantile_values == 5);
        CHECK(gc->summary->data_points[0]->quantile_values[0]->quantile == 0);
        CHECK(gc->summary->data_points[0]->quantile_values[4]->quantile == 1);
        CHECK(!find_metric(r, "go_gc_duration_seconds_sum", GAUGE));
        metric_t *h = find_metric(r, "prometheus_remote_storage_sent_batch_duration_seconds", HIST);
        REQUIRE(h && h->histogram->n_data_points == 1);
        Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = h->histogram->data_points[0];
        CHECK(p->n_bucket_counts == p->n_explicit_bounds + 1);
        CHECK(p->n_explicit_bounds == 15); /* 16 `le` series, one of them +Inf */
        uint64_t tot = 0;
        for (size_t i = 0; i < p->n_bucket_counts; i++) {
            tot += p->bucket_counts[i];
        }
        CHECK(tot == p->count);
        CHECK(attr(p->attributes, p->n_attributes, "remote_name") != NULL);
        CHECK(attr(p->attributes, p->n_attributes, "le") == NULL);
        CHECK(attr(p->attributes, p->n_attributes, "job") == NULL);
    }
    arena_destroy(a);
    free(z);
}

UNIT_TEST(fixture_metadata_only)
{
    fixture(unit_failed_, 1, 0, 0);
}
UNIT_TEST(fixture_batch_2)
{
    fixture(unit_failed_, 2, 353, 353);
}
UNIT_TEST(fixture_batch_3)
{
    fixture(unit_failed_, 3, 394, 394);
}

/* ---- types --------------------------------------------------------------------------------- */

UNIT_TEST(type_from_metadata_and_suffix)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ts[] = {
        one(a, (const char *[]){"__name__", "foo", "job", "j", NULL}, 1, 1000),
        one(a, (const char *[]){"__name__", "bar_total", "job", "j", NULL}, 2, 1000),
        one(a, (const char *[]){"__name__", "baz_total", "job", "j", NULL}, 3, 1000),
        one(a, (const char *[]){"__name__", "qux", "job", "j", NULL}, 4, 1000),
        one(a, (const char *[]){"__name__", "om_total", "job", "j", NULL}, 5, 1000),
        one(a, (const char *[]){"__name__", "inf", "job", "j", NULL}, 6, 1000),
    };
    Prometheus__MetricMetadata *md[] = {
        md1(a, "foo", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER, "foo help"),
        md1(a, "bar_total", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE, ""),
        md1(a, "om", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER, "openmetrics family"),
        md1(a, "inf", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO, ""),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 6, md, 4, &r, &st, &eb) == MT_OK);
    metric_t *m = find_metric(r, "foo", SUM);
    REQUIRE(m);
    CHECK(m->sum->is_monotonic);
    CHECK(m->sum->aggregation_temporality == 2); /* AGGREGATION_TEMPORALITY_CUMULATIVE */
    CHECK_STR(m->description, "foo help");
    CHECK_STR(m->unit, "");
    CHECK(find_metric(r, "bar_total", GAUGE)); /* metadata beats the suffix */
    CHECK(find_metric(r, "baz", SUM));         /* suffix without metadata */
    CHECK(find_metric(r, "qux", GAUGE));       /* nothing known: gauge */
    m = find_metric(r, "om", SUM);             /* family found without its _total */
    REQUIRE(m);
    CHECK_STR(m->description, "openmetrics family");
    m = find_metric(r, "inf", GAUGE);
    REQUIRE(m && m->n_metadata == 1);
    CHECK_STR(m->metadata[0]->key, "prometheus.type");
    CHECK_STR(m->metadata[0]->value->string_value, "info");
    CHECK(st.points == 6 && st.samples == 6);
    m = find_metric(r, "baz", SUM);
    REQUIRE(m && m->sum->n_data_points == 1);
    CHECK(m->sum->data_points[0]->as_double == 3);
    CHECK(m->sum->data_points[0]->time_unix_nano == 1000000000ULL);
    arena_destroy(a);
}

/* ---- classic histograms and summaries ------------------------------------------------------ */

UNIT_TEST(classic_histogram_reassembled)
{
    arena_t *a = arena_create(4096, 0);
    double v1[] = {4, 6}, v2[] = {1, 2}, v3[] = {3, 5}, vs[] = {2.5, 4}, vc[] = {4, 6};
    int64_t t[] = {1000, 2000};
    /* buckets deliberately out of order, +Inf first */
    Prometheus__TimeSeries *ts[] = {
        ts1(a, (const char *[]){"__name__", "h_bucket", "code", "200", "le", "+Inf", NULL}, 2, v1,
            t),
        ts1(a, (const char *[]){"__name__", "h_bucket", "code", "200", "le", "0.1", NULL}, 2, v2,
            t),
        ts1(a, (const char *[]){"__name__", "h_bucket", "code", "200", "le", "0.5", NULL}, 2, v3,
            t),
        ts1(a, (const char *[]){"__name__", "h_sum", "code", "200", NULL}, 2, vs, t),
        ts1(a, (const char *[]){"__name__", "h_count", "code", "200", NULL}, 2, vc, t),
        one(a, (const char *[]){"__name__", "lonely_count", NULL}, 7, 1000),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 6, NULL, 0, &r, &st, &eb) == MT_OK);
    metric_t *m = find_metric(r, "h", HIST);
    REQUIRE(m && m->histogram->n_data_points == 2);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = m->histogram->data_points[0];
    REQUIRE(p->n_explicit_bounds == 2 && p->n_bucket_counts == 3);
    CHECK(p->explicit_bounds[0] == 0.1 && p->explicit_bounds[1] == 0.5);
    CHECK(p->bucket_counts[0] == 1 && p->bucket_counts[1] == 2 && p->bucket_counts[2] == 1);
    CHECK(p->count == 4);
    CHECK(p->sum__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM &&
          p->sum == 2.5);
    CHECK(p->time_unix_nano == 1000000000ULL);
    CHECK(p->n_attributes == 1);
    CHECK_STR(attr(p->attributes, p->n_attributes, "code"), "200");
    p = m->histogram->data_points[1];
    CHECK(p->bucket_counts[0] == 2 && p->bucket_counts[1] == 3 && p->bucket_counts[2] == 1);
    CHECK(p->count == 6 && p->sum == 4);
    /* a _count with no buckets or quantiles beside it stays a gauge under its own name */
    CHECK(find_metric(r, "lonely_count", GAUGE));
    CHECK(st.samples == 11 && st.points == 3);
    arena_destroy(a);
}

UNIT_TEST(classic_histogram_from_metadata_without_buckets)
{
    /* senders shard series: the _sum/_count may arrive without their buckets */
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ts[] = {
        one(a, (const char *[]){"__name__", "d_sum", NULL}, 3, 1000),
        one(a, (const char *[]){"__name__", "d_count", NULL}, 2, 1000),
    };
    Prometheus__MetricMetadata *md[] = {
        md1(a, "d", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM, "")};
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 2, md, 1, &r, &st, &eb) == MT_OK);
    metric_t *m = find_metric(r, "d", HIST);
    REQUIRE(m && m->histogram->n_data_points == 1);
    CHECK(m->histogram->data_points[0]->count == 2);
    CHECK(m->histogram->data_points[0]->sum == 3);
    CHECK(m->histogram->data_points[0]->n_bucket_counts == 0);
    arena_destroy(a);
}

UNIT_TEST(summary_reassembled)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ts[] = {
        one(a, (const char *[]){"__name__", "s", "quantile", "0.9", NULL}, 2, 1000),
        one(a, (const char *[]){"__name__", "s", "quantile", "0.5", NULL}, 1, 1000),
        one(a, (const char *[]){"__name__", "s_sum", NULL}, 10, 1000),
        one(a, (const char *[]){"__name__", "s_count", NULL}, 5, 1000),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 4, NULL, 0, &r, &st, &eb) == MT_OK);
    metric_t *m = find_metric(r, "s", SUMMARY);
    REQUIRE(m && m->summary->n_data_points == 1);
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *p = m->summary->data_points[0];
    REQUIRE(p->n_quantile_values == 2);
    CHECK(p->quantile_values[0]->quantile == 0.5 && p->quantile_values[0]->value == 1);
    CHECK(p->quantile_values[1]->quantile == 0.9 && p->quantile_values[1]->value == 2);
    CHECK(p->count == 5 && p->sum == 10);
    CHECK(p->n_attributes == 0);
    CHECK(st.points == 1 && st.samples == 4);
    arena_destroy(a);
}

/* ---- native histograms ----------------------------------------------------------------------- */

static Prometheus__BucketSpan *span(arena_t *a, int32_t off, uint32_t len)
{
    Prometheus__BucketSpan *s = NEW(a, Prometheus__BucketSpan, PROMETHEUS__BUCKET_SPAN__INIT);
    s->offset = off;
    s->length = len;
    return s;
}

static Prometheus__TimeSeries *native(arena_t *a, Prometheus__Histogram *h)
{
    Prometheus__TimeSeries *t =
        ts1(a, (const char *[]){"__name__", "nh", "job", "j", NULL}, 0, NULL, NULL);
    t->histograms = arena_alloc(a, sizeof(void *));
    t->histograms[0] = h;
    t->n_histograms = 1;
    return t;
}

UNIT_TEST(native_histogram_integer)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__Histogram *h = NEW(a, Prometheus__Histogram, PROMETHEUS__HISTOGRAM__INIT);
    Prometheus__BucketSpan *sp[] = {span(a, 4, 1), span(a, 2, 3)};
    int64_t deltas[] = {10, 10, -15, -3};
    Prometheus__BucketSpan *nsp[] = {span(a, -2, 2)};
    int64_t ndeltas[] = {1, 1};
    h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
    h->count_int = 42; /* 2 zero + 37 positive + 3 negative */
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
    h->zero_count_int = 2;
    h->zero_threshold = 1e-128;
    h->sum = 1.5;
    h->schema = 3;
    h->positive_spans = sp;
    h->n_positive_spans = 2;
    h->positive_deltas = deltas;
    h->n_positive_deltas = 4;
    h->negative_spans = nsp;
    h->n_negative_spans = 1;
    h->negative_deltas = ndeltas;
    h->n_negative_deltas = 2;
    h->timestamp = 5000;
    Prometheus__TimeSeries *ts[] = {native(a, h)};
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    int rc = conv1(a, ts, 1, NULL, 0, &r, &st, &eb);
    if (rc != MT_OK) {
        fprintf(stderr, "    %s\n", eb.msg);
    }
    REQUIRE(rc == MT_OK);
    metric_t *m = find_metric(r, "nh", EXPH);
    REQUIRE(m && m->exponential_histogram->n_data_points == 1);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p =
        m->exponential_histogram->data_points[0];
    CHECK(p->scale == 3);
    REQUIRE(p->positive);
    CHECK(p->positive->offset == 3);
    uint64_t want[] = {10, 0, 0, 20, 5, 2};
    REQUIRE(p->positive->n_bucket_counts == 6);
    for (size_t i = 0; i < 6; i++) {
        CHECK(p->positive->bucket_counts[i] == want[i]);
    }
    REQUIRE(p->negative && p->negative->n_bucket_counts == 2);
    CHECK(p->negative->offset == -3);
    CHECK(p->negative->bucket_counts[0] == 1 && p->negative->bucket_counts[1] == 2);
    CHECK(p->count == 42 && p->zero_count == 2 && p->zero_threshold == 1e-128);
    CHECK(p->sum__case ==
              OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM__SUM &&
          p->sum == 1.5);
    CHECK(p->time_unix_nano == 5000000000ULL);
    CHECK(st.histograms == 1 && st.samples == 0 && st.points == 1);

    /* a count that disagrees with the buckets (OTLP forbids it); with a NaN sum the count
     * may exceed them (NaN observations count but fall in no bucket), not fall short */
    h->count_int = 99;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "count 99 but its buckets hold 42") != NULL);
    h->sum = NAN;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_OK);
    h->count_int = 41;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "count 41 but its buckets hold 42") != NULL);
    h->sum = 1.5;
    h->count_int = 42;

    /* deltas that do not match the spans, and deltas that go negative */
    h->n_positive_deltas = 3;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "spans cover 4 buckets") != NULL);
    int64_t neg[] = {1, -2, 0, 0};
    h->positive_deltas = neg;
    h->n_positive_deltas = 4;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "negative") != NULL);
    /* unsupported schema; a huge gap that would need a giant dense array */
    h->positive_deltas = deltas;
    h->schema = 9;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "schema 9") != NULL);
    h->schema = 3;
    sp[1]->offset = 2000000000;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "indices") != NULL);
    arena_destroy(a);
}

UNIT_TEST(native_histogram_float_stale_and_nhcb)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__Histogram *h = NEW(a, Prometheus__Histogram, PROMETHEUS__HISTOGRAM__INIT);
    Prometheus__BucketSpan *sp[] = {span(a, 0, 2)};
    double counts[] = {1.4, 2.6};
    h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
    h->count_float = 4;
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
    h->zero_count_float = 0;
    h->sum = 7;
    h->schema = 0;
    h->positive_spans = sp;
    h->n_positive_spans = 1;
    h->positive_counts = counts;
    h->n_positive_counts = 2;
    h->timestamp = 1000;
    Prometheus__TimeSeries *ts[] = {native(a, h)};
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_OK);
    metric_t *m = find_metric(r, "nh", EXPH);
    REQUIRE(m);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p =
        m->exponential_histogram->data_points[0];
    REQUIRE(p->positive && p->positive->n_bucket_counts == 2);
    CHECK(p->positive->offset == -1);
    CHECK(p->positive->bucket_counts[0] == 1 && p->positive->bucket_counts[1] == 3);
    CHECK(p->count == 4);
    /* float counts are checked too, up to rounding */
    h->count_float = 4.5;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "count 4.5 but its buckets hold 4") != NULL);
    h->count_float = 4 * (1 + 1e-12);
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_OK);
    h->count_float = 4;

    /* stale native histogram: sum carries the marker */
    h->sum = stale_nan();
    REQUIRE(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_OK);
    p = find_metric(r, "nh", EXPH)->exponential_histogram->data_points[0];
    CHECK(p->flags == 1 && p->count == 0 && !p->positive);
    CHECK(p->sum__case ==
          OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM___NOT_SET);

    /* schema -53: custom bounds, indices 0,1 and 3 (= +Inf) */
    Prometheus__Histogram *c = NEW(a, Prometheus__Histogram, PROMETHEUS__HISTOGRAM__INIT);
    Prometheus__BucketSpan *csp[] = {span(a, 0, 2), span(a, 1, 1)};
    int64_t cd[] = {3, -1, 2};
    double cv[] = {1, 2, 5};
    c->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
    c->count_int = 9;
    c->sum = 20;
    c->schema = -53;
    c->positive_spans = csp;
    c->n_positive_spans = 2;
    c->positive_deltas = cd;
    c->n_positive_deltas = 3;
    c->custom_values = cv;
    c->n_custom_values = 3;
    c->timestamp = 1000;
    ts[0] = native(a, c);
    REQUIRE(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_OK);
    m = find_metric(r, "nh", HIST);
    REQUIRE(m && m->histogram->n_data_points == 1);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp = m->histogram->data_points[0];
    REQUIRE(hp->n_explicit_bounds == 3 && hp->n_bucket_counts == 4);
    CHECK(hp->explicit_bounds[2] == 5);
    CHECK(hp->bucket_counts[0] == 3 && hp->bucket_counts[1] == 2 && hp->bucket_counts[2] == 0 &&
          hp->bucket_counts[3] == 4);
    CHECK(hp->count == 9 && hp->sum == 20);
    c->count_int = 8; /* custom buckets: count = sum of the buckets */
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "count 8 but its buckets hold 9") != NULL);
    c->count_int = 9;
    cv[1] = 0.5; /* bounds must increase */
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "increasing") != NULL);
    arena_destroy(a);
}

/* ---- stale markers, exemplars ---------------------------------------------------------------- */

UNIT_TEST(stale_marker_no_recorded_value)
{
    arena_t *a = arena_create(4096, 0);
    double nan_normal;
    uint64_t bits = 0x7ff8000000000001ULL;
    memcpy(&nan_normal, &bits, sizeof(bits));
    double v[] = {1, stale_nan(), nan_normal};
    int64_t t[] = {1000, 2000, 3000};
    Prometheus__TimeSeries *ts[] = {
        ts1(a, (const char *[]){"__name__", "g", NULL}, 3, v, t),
        one(a, (const char *[]){"__name__", "sh_bucket", "le", "1", NULL}, stale_nan(), 1000),
        one(a, (const char *[]){"__name__", "sh_bucket", "le", "+Inf", NULL}, stale_nan(), 1000),
        one(a, (const char *[]){"__name__", "sh_count", NULL}, stale_nan(), 1000),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 4, NULL, 0, &r, &st, &eb) == MT_OK);
    metric_t *m = find_metric(r, "g", GAUGE);
    REQUIRE(m && m->gauge->n_data_points == 3);
    CHECK(m->gauge->data_points[0]->flags == 0 && m->gauge->data_points[0]->as_double == 1);
    CHECK(m->gauge->data_points[1]->flags == 1 && m->gauge->data_points[1]->as_double == 0);
    /* an ordinary NaN is a value, not staleness */
    CHECK(m->gauge->data_points[2]->flags == 0 && isnan(m->gauge->data_points[2]->as_double));
    m = find_metric(r, "sh", HIST);
    REQUIRE(m && m->histogram->n_data_points == 1);
    CHECK(m->histogram->data_points[0]->flags == 1);
    CHECK(m->histogram->data_points[0]->count == 0);
    CHECK(m->histogram->data_points[0]->n_explicit_bounds == 1);
    arena_destroy(a);
}

UNIT_TEST(exemplars_attach_to_points)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ex =
        ts1(a, (const char *[]){"__name__", "req_total", "path", "/x", NULL}, 0, NULL, NULL);
    Prometheus__Exemplar *e = NEW(a, Prometheus__Exemplar, PROMETHEUS__EXEMPLAR__INIT);
    Prometheus__Label l1 = PROMETHEUS__LABEL__INIT, l2 = PROMETHEUS__LABEL__INIT,
                      l3 = PROMETHEUS__LABEL__INIT;
    l1.name = "span_id", l1.value = "0102030405060708";
    l2.name = "trace_id", l2.value = "000102030405060708090a0b0c0d0e0f";
    l3.name = "user", l3.value = "u1";
    Prometheus__Label *ls[] = {&l1, &l2, &l3};
    e->labels = ls;
    e->n_labels = 3;
    e->value = 0.25;
    e->timestamp = 1500;
    Prometheus__Exemplar *es[] = {e};
    ex->exemplars = es;
    ex->n_exemplars = 1;
    Prometheus__TimeSeries *ts[] = {
        ex, /* exemplar-only entry first, as senders interleave them */
        one(a, (const char *[]){"__name__", "req_total", "path", "/x", NULL}, 3, 1000),
        one(a, (const char *[]){"__name__", "orphan_total", NULL}, 3, 1000),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 3, NULL, 0, &r, &st, &eb) == MT_OK);
    metric_t *m = find_metric(r, "req", SUM);
    REQUIRE(m && m->sum->n_data_points == 1);
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = m->sum->data_points[0];
    REQUIRE(p->n_exemplars == 1);
    Opentelemetry__Proto__Metrics__V1__Exemplar *x = p->exemplars[0];
    CHECK(x->as_double == 0.25 && x->time_unix_nano == 1500000000ULL);
    CHECK(x->trace_id.len == 16 && x->trace_id.data[15] == 0x0f);
    CHECK(x->span_id.len == 8 && x->span_id.data[0] == 0x01);
    CHECK(x->n_filtered_attributes == 1);
    CHECK_STR(attr(x->filtered_attributes, x->n_filtered_attributes, "user"), "u1");
    CHECK(st.exemplars == 1);
    arena_destroy(a);
}

/* RW 1.0 exemplars that cannot be written are dropped, and counted by reason (issue 13): no
 * sample of their series in the request, or on a summary. */
UNIT_TEST(exemplars_without_data_are_counted)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__Exemplar *e = NEW(a, Prometheus__Exemplar, PROMETHEUS__EXEMPLAR__INIT);
    e->value = 1;
    e->timestamp = 1000;
    Prometheus__Exemplar *es[] = {e, e};
    Prometheus__TimeSeries *alone =
        ts1(a, (const char *[]){"__name__", "lonely_total", NULL}, 0, NULL, NULL);
    alone->exemplars = es;
    alone->n_exemplars = 2;
    Prometheus__TimeSeries *onsum =
        ts1(a, (const char *[]){"__name__", "lat", "quantile", "0.5", NULL}, 0, NULL, NULL);
    onsum->exemplars = es;
    onsum->n_exemplars = 1;
    Prometheus__TimeSeries *ts[] = {
        alone,
        onsum,
        one(a, (const char *[]){"__name__", "lat", "quantile", "0.5", NULL}, 0.2, 1000),
        one(a, (const char *[]){"__name__", "lat_sum", NULL}, 3, 1000),
        one(a, (const char *[]){"__name__", "lat_count", NULL}, 9, 1000),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 5, NULL, 0, &r, &st, &eb) == MT_OK);
    REQUIRE(find_metric(r, "lat", SUMMARY));
    CHECK(st.exemplars == 0);
    CHECK(st.exemplars_no_sample == 2);
    CHECK(st.exemplars_on_summary == 1);
    arena_destroy(a);
}

/* ---- resources ------------------------------------------------------------------------------- */

UNIT_TEST(job_instance_target_info)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ts[] = {
        one(a, (const char *[]){"__name__", "up", "instance", "h:1", "job", "shop/cart", NULL}, 1,
            1000),
        one(a,
            (const char *[]){"__name__", "target_info", "env", "prod", "instance", "h:1", "job",
                             "shop/cart", NULL},
            1, 1000),
        one(a, (const char *[]){"__name__", "up", "instance", "h:2", "job", "solo", NULL}, 0, 1000),
        one(a, (const char *[]){"__name__", "target_info", "env", "dev", "job", "lost", NULL}, 1,
            1000),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 4, NULL, 0, &r, &st, &eb) == MT_OK);
    REQUIRE(r->n_resource_metrics == 2); /* target_info-only resources are not emitted */
    Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_metrics[0]->resource;
    CHECK_STR(attr(res->attributes, res->n_attributes, "service.namespace"), "shop");
    CHECK_STR(attr(res->attributes, res->n_attributes, "service.name"), "cart");
    CHECK_STR(attr(res->attributes, res->n_attributes, "service.instance.id"), "h:1");
    CHECK_STR(attr(res->attributes, res->n_attributes, "env"), "prod");
    res = r->resource_metrics[1]->resource;
    CHECK_STR(attr(res->attributes, res->n_attributes, "service.name"), "solo");
    CHECK(attr(res->attributes, res->n_attributes, "service.namespace") == NULL);
    CHECK_STR(attr(res->attributes, res->n_attributes, "service.instance.id"), "h:2");
    CHECK(!find_metric(r, "target_info", GAUGE));
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p =
        r->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points[0];
    CHECK(p->n_attributes == 0); /* job and instance live on the resource */
    CHECK(st.points == 2);
    arena_destroy(a);
}

/* ---- invalid input --------------------------------------------------------------------------- */

static void expect_invalid(int *unit_failed_, const char *const *lbl, const char *want)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ts[] = {one(a, lbl, 1, 1000)};
    mreq_t *r = (mreq_t *)1;
    prw_stats_t st;
    mt_errbuf_t eb;
    CHECK(conv1(a, ts, 1, NULL, 0, &r, &st, &eb) == MT_EINVAL);
    CHECK(r == NULL);
    if (!strstr(eb.msg, want)) {
        fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", eb.msg, want);
        *unit_failed_ = 1;
    }
    arena_destroy(a);
}

UNIT_TEST(unsorted_labels_sorted_and_counted)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ts[] = {
        one(a, (const char *[]){"b", "1", "__name__", "x", "a", "2", NULL}, 1, 1000),
        one(a, (const char *[]){"__name__", "y", "a", "1", NULL}, 1, 1000),
    };
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    REQUIRE(conv1(a, ts, 2, NULL, 0, &r, &st, &eb) == MT_OK);
    CHECK(st.unsorted == 1 && st.samples == 2);
    metric_t *m = find_metric(r, "x", GAUGE);
    REQUIRE(m && m->gauge->n_data_points == 1);
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = m->gauge->data_points[0];
    REQUIRE(p->n_attributes == 2);
    CHECK_STR(p->attributes[0]->key, "a");
    CHECK_STR(p->attributes[1]->key, "b");
    arena_destroy(a);
}

UNIT_TEST(invalid_labels_refused)
{
    expect_invalid(unit_failed_, (const char *[]){"__name__", "x", "a", "1", "a", "2", NULL},
                   "duplicate label name \"a\"");
    /* out of order, the duplicate is still found (after sorting) */
    expect_invalid(unit_failed_, (const char *[]){"a", "1", "__name__", "x", "a", "2", NULL},
                   "duplicate label name \"a\"");
    expect_invalid(unit_failed_, (const char *[]){"", "v", "__name__", "x", NULL}, "empty name");
    expect_invalid(unit_failed_, (const char *[]){"__name__", "x", "a", "\xff\xfe", NULL},
                   "not valid UTF-8");
    expect_invalid(unit_failed_, (const char *[]){"__name__", "x", "a", "\xed\xa0\x80", NULL},
                   "not valid UTF-8"); /* a UTF-16 surrogate */
    expect_invalid(unit_failed_, (const char *[]){"a", "1", NULL}, "no __name__");
    expect_invalid(unit_failed_, (const char *[]){"__name__", "h_bucket", "le", "abc", NULL},
                   "le=\"abc\" is not a number");
}

UNIT_TEST(bad_protobuf_refused)
{
    arena_t *a = arena_create(4096, 0);
    mreq_t *r;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    const uint8_t bad[] = {0x0a, 0x10, 0x0a};
    CHECK(prw_to_otlp(1, bad, sizeof(bad), a, &r, NULL, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "remote-write 1.0") != NULL);
    mt_errbuf_clear(&eb);
    CHECK(prw_to_otlp(2, bad, sizeof(bad), a, &r, NULL, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "remote-write 2.0") != NULL);
    /* an empty body is an empty, valid request */
    mt_errbuf_clear(&eb);
    CHECK(prw_to_otlp(1, NULL, 0, a, &r, NULL, &eb) == MT_OK);
    CHECK(r && r->n_resource_metrics == 0);
    arena_destroy(a);
}

/* ---- remote write 2.0 ------------------------------------------------------------------------ */

static int conv2(arena_t *a, char **syms, size_t nsyms, uint32_t *refs, size_t nrefs,
                 Io__Prometheus__Write__V2__Metadata *md, mreq_t **r, prw_stats_t *st,
                 mt_errbuf_t *eb)
{
    Io__Prometheus__Write__V2__Sample s1 = IO__PROMETHEUS__WRITE__V2__SAMPLE__INIT,
                                      s2 = IO__PROMETHEUS__WRITE__V2__SAMPLE__INIT;
    s1.value = 5, s1.timestamp = 2000, s1.start_timestamp = 1000;
    s2.value = 6, s2.timestamp = 3000, s2.start_timestamp = 1000;
    Io__Prometheus__Write__V2__Sample *ss[] = {&s1, &s2};
    Io__Prometheus__Write__V2__TimeSeries t = IO__PROMETHEUS__WRITE__V2__TIME_SERIES__INIT;
    t.labels_refs = refs;
    t.n_labels_refs = nrefs;
    t.samples = ss;
    t.n_samples = 2;
    t.metadata = md;
    Io__Prometheus__Write__V2__TimeSeries *tss[] = {&t};
    Io__Prometheus__Write__V2__Request rq = IO__PROMETHEUS__WRITE__V2__REQUEST__INIT;
    rq.symbols = syms;
    rq.n_symbols = nsyms;
    rq.timeseries = tss;
    rq.n_timeseries = 1;
    size_t len;
    uint8_t *b = pack_msg(a, &rq.base, &len);
    mt_errbuf_clear(eb);
    return prw_to_otlp(2, b, len, a, r, st, eb);
}

UNIT_TEST(rw2_symbols_and_refs)
{
    arena_t *a = arena_create(4096, 0);
    char *syms[] = {"",     "__name__", "reqs_total", "instance",       "h:1", "job", "ns/app",
                    "code", "200",      "Requests.",  "gauge_but_total"};
    uint32_t refs[] = {1, 2, 7, 8, 3, 4, 5, 6};
    Io__Prometheus__Write__V2__Metadata md = IO__PROMETHEUS__WRITE__V2__METADATA__INIT;
    md.type = IO__PROMETHEUS__WRITE__V2__METADATA__METRIC_TYPE__METRIC_TYPE_COUNTER;
    md.help_ref = 9;
    mreq_t *r;
    prw_stats_t st;
    mt_errbuf_t eb;
    int rc = conv2(a, syms, 11, refs, 8, &md, &r, &st, &eb);
    if (rc != MT_OK) {
        fprintf(stderr, "    %s\n", eb.msg);
    }
    REQUIRE(rc == MT_OK);
    metric_t *m = find_metric(r, "reqs", SUM);
    REQUIRE(m && m->sum->n_data_points == 2);
    CHECK_STR(m->description, "Requests.");
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = m->sum->data_points[1];
    CHECK(p->as_double == 6 && p->time_unix_nano == 3000000000ULL &&
          p->start_time_unix_nano == 1000000000ULL);
    CHECK_STR(attr(p->attributes, p->n_attributes, "code"), "200");
    Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_metrics[0]->resource;
    CHECK_STR(attr(res->attributes, res->n_attributes, "service.namespace"), "ns");
    CHECK_STR(attr(res->attributes, res->n_attributes, "service.name"), "app");
    CHECK(st.samples == 2 && st.points == 2);

    /* a gauge by metadata keeps its _total */
    uint32_t refs2[] = {1, 10};
    md.type = IO__PROMETHEUS__WRITE__V2__METADATA__METRIC_TYPE__METRIC_TYPE_GAUGE;
    REQUIRE(conv2(a, syms, 11, refs2, 2, &md, &r, &st, &eb) == MT_OK);
    CHECK(find_metric(r, "gauge_but_total", GAUGE));

    /* broken references */
    uint32_t odd[] = {1, 2, 7};
    CHECK(conv2(a, syms, 11, odd, 3, NULL, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "odd length") != NULL);
    uint32_t far[] = {1, 2, 7, 99};
    CHECK(conv2(a, syms, 11, far, 4, NULL, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "out of range") != NULL);
    md.help_ref = 11;
    CHECK(conv2(a, syms, 11, refs, 8, &md, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "help_ref") != NULL);
    char *nonempty[] = {"x", "__name__", "up"};
    uint32_t r3[] = {1, 2};
    CHECK(conv2(a, nonempty, 3, r3, 2, NULL, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "symbols[0]") != NULL);
    /* unsorted via refs (__name__ after job): sorted and counted */
    uint32_t uns[] = {5, 6, 1, 2};
    REQUIRE(conv2(a, syms, 11, uns, 4, NULL, &r, &st, &eb) == MT_OK);
    CHECK(st.unsorted == 1 && find_metric(r, "reqs", SUM));
    /* invalid UTF-8 in a symbol */
    char *badsym[] = {"", "__name__", "up\xc3"};
    CHECK(conv2(a, badsym, 3, r3, 2, NULL, &r, &st, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "UTF-8") != NULL);
    arena_destroy(a);
}

/* ---- the pass-through's wire check agrees with the conversion ------------------------------- */

/* What the receiver decides in pass-through mode: the wire check, plus the conversion when
 * the wire check says the request is complex. Returns the wire check's result code and
 * whether a NUL byte was the reason (the one rule the conversion's C strings cannot see). */
static int passthrough_verdict(const uint8_t *pb, size_t len, arena_t *a, prw_wire_stats_t *ws,
                               mt_errbuf_t *eb, int *nul)
{
    mt_errbuf_clear(eb);
    int rc = prw_wire_check(pb, len, ws, eb);
    *nul = rc == MT_EINVAL && strstr(eb->msg, "NUL") != NULL;
    if (rc == MT_OK && (ws->complex || ws->unsorted)) {
        mreq_t *r;
        rc = prw_to_otlp(1, pb, len, a, &r, NULL, eb);
    }
    return rc;
}

static uint8_t *fixture_body(arena_t *a, int idx, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/promrw/promrw-proto-snappy-%d.bin", unit_fixtures_dir(), idx);
    size_t zlen = 0;
    unsigned char *z = unit_read_file(path, &zlen);
    if (!z) {
        return NULL;
    }
    uint8_t *pb = NULL;
    mt_errbuf_t eb;
    int rc = codec_decompress(CODEC_SNAPPY, z, zlen, 20 << 20, a, &pb, len, &eb);
    free(z);
    return rc == MT_OK ? pb : NULL;
}

UNIT_TEST(wire_check_accepts_fixtures_with_the_conversion_counts)
{
    for (int idx = 1; idx <= 3; idx++) {
        arena_t *a = arena_create(64 * 1024, 0);
        size_t len = 0;
        uint8_t *pb = fixture_body(a, idx, &len);
        REQUIRE(pb);
        prw_wire_stats_t ws;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        CHECK(prw_wire_check(pb, len, &ws, &eb) == MT_OK);
        mreq_t *r;
        prw_stats_t st;
        CHECK(prw_to_otlp(1, pb, len, a, &r, &st, &eb) == MT_OK);
        CHECK(ws.series == st.series);
        CHECK(ws.samples == st.samples);
        CHECK(ws.histograms == st.histograms);
        /* classic histograms and summaries with numeric bounds need no conversion */
        CHECK(!ws.complex);
        CHECK(idx != 1 || ws.metadata > 0);
        arena_destroy(a);
    }
}

UNIT_TEST(wire_check_refuses_like_the_conversion)
{
    static const char *const cases[][8] = {
        {"__name__", "x", "a", "1", "a", "2", NULL},
        {"a", "1", "__name__", "x", "a", "2", NULL}, /* unsorted: found by the conversion */
        {"", "v", "__name__", "x", NULL},
        {"__name__", "x", "a", "\xff\xfe", NULL},
        {"__name__", "x", "a", "\xed\xa0\x80", NULL},
        {"\xc0\xaf", "x", "__name__", "x", NULL},
        {"a", "1", NULL},
        {"__name__", "", "a", "1", NULL},
        {"__name__", "h_bucket", "le", "abc", NULL},
        {"__name__", "s", "quantile", "x", NULL},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        arena_t *a = arena_create(4096, 0);
        Prometheus__TimeSeries *ts[] = {one(a, cases[i], 1, 1000)};
        Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
        wr.timeseries = ts;
        wr.n_timeseries = 1;
        size_t len;
        uint8_t *pb = pack_msg(a, &wr.base, &len);
        mreq_t *r;
        mt_errbuf_t want, got;
        mt_errbuf_clear(&want);
        CHECK(prw_to_otlp(1, pb, len, a, &r, NULL, &want) == MT_EINVAL);
        prw_wire_stats_t ws;
        int nul;
        CHECK(passthrough_verdict(pb, len, a, &ws, &got, &nul) == MT_EINVAL);
        if (strcmp(want.msg, got.msg) != 0) {
            fprintf(stderr, "    case %zu: conversion says \"%s\", wire check \"%s\"\n", i,
                    want.msg, got.msg);
            *unit_failed_ = 1;
        }
        arena_destroy(a);
    }
}

UNIT_TEST(wire_check_counts_unsorted_series)
{
    arena_t *a = arena_create(4096, 0);
    Prometheus__TimeSeries *ts[] = {
        one(a, (const char *[]){"__name__", "x", "b", "1", "a", "2", NULL}, 1, 1000),
        one(a, (const char *[]){"__name__", "y", NULL}, 1, 1000),
    };
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.timeseries = ts;
    wr.n_timeseries = 2;
    size_t len;
    uint8_t *pb = pack_msg(a, &wr.base, &len);
    prw_wire_stats_t ws;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(prw_wire_check(pb, len, &ws, &eb) == MT_OK);
    CHECK(ws.unsorted == 1 && ws.series == 2 && ws.samples == 2);
    arena_destroy(a);
}

UNIT_TEST(wire_check_exemplars_like_the_conversion)
{
    static const char *const ex_labels[][4] = {
        {"trace_id", "0123456789abcdef0123456789abcdef", NULL, NULL}, /* fine */
        {"", "x", NULL, NULL},                                        /* empty name */
        {"a", "\xff", NULL, NULL},                                    /* bad UTF-8 */
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(ex_labels); i++) {
        arena_t *a = arena_create(4096, 0);
        Prometheus__TimeSeries *t = one(a, (const char *[]){"__name__", "x_total", NULL}, 1, 1000);
        Prometheus__Exemplar *e = NEW(a, Prometheus__Exemplar, PROMETHEUS__EXEMPLAR__INIT);
        Prometheus__Label *l = NEW(a, Prometheus__Label, PROMETHEUS__LABEL__INIT);
        l->name = (char *)ex_labels[i][0];
        l->value = (char *)ex_labels[i][1];
        e->labels = arena_alloc(a, sizeof(void *));
        e->labels[0] = l;
        e->n_labels = 1;
        e->value = 1;
        e->timestamp = 1000;
        t->exemplars = arena_alloc(a, sizeof(void *));
        t->exemplars[0] = e;
        t->n_exemplars = 1;
        Prometheus__TimeSeries *ts[] = {t};
        Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
        wr.timeseries = ts;
        wr.n_timeseries = 1;
        size_t len;
        uint8_t *pb = pack_msg(a, &wr.base, &len);
        mreq_t *r;
        mt_errbuf_t want, got;
        mt_errbuf_clear(&want);
        int conv = prw_to_otlp(1, pb, len, a, &r, NULL, &want);
        prw_wire_stats_t ws;
        mt_errbuf_clear(&got);
        int wire = prw_wire_check(pb, len, &ws, &got);
        CHECK(conv == (i == 0 ? MT_OK : MT_EINVAL));
        CHECK(wire == conv);
        CHECK(!ws.complex || wire != MT_OK);
        CHECK(i == 0 || strcmp(want.msg, got.msg) == 0);
        arena_destroy(a);
    }
}

/* Thousands of corruptions of a real request (truncations, byte flips, inserted bytes): the
 * pass-through accepts exactly what the conversion accepts, NUL bytes in labels aside (the
 * pass-through refuses them; the conversion reads the label up to the NUL). */
UNIT_TEST(wire_check_agrees_with_conversion_on_corrupted_requests)
{
    arena_t *fa = arena_create(64 * 1024, 0);
    size_t len = 0;
    uint8_t *orig = fixture_body(fa, 2, &len);
    REQUIRE(orig && len > 100);
    uint8_t *buf = malloc(len + 8);
    REQUIRE(buf);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int disagree = 0, refused = 0, runs = 3000;
    for (int i = 0; i < runs; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        size_t n = len, at = (size_t)(seed % len);
        memcpy(buf, orig, len);
        switch (i % 3) {
        case 0:
            n = at; /* truncated */
            break;
        case 1:
            buf[at] ^= (uint8_t)(1u << ((seed >> 32) % 8)); /* one bit flipped */
            break;
        default:
            memmove(buf + at + 1, buf + at, len - at); /* one byte inserted */
            buf[at] = (uint8_t)(seed >> 40);
            n = len + 1;
            break;
        }
        arena_t *a = arena_create(64 * 1024, 0);
        mreq_t *r;
        mt_errbuf_t e1, e2;
        mt_errbuf_clear(&e1);
        int conv = prw_to_otlp(1, buf, n, a, &r, NULL, &e1);
        prw_wire_stats_t ws;
        int nul;
        int pt = passthrough_verdict(buf, n, a, &ws, &e2, &nul);
        refused += pt != MT_OK;
        (void)nul; /* the conversion refuses NUL bytes too now: no exception */
        if ((conv == MT_OK) != (pt == MT_OK)) {
            if (disagree++ < 3) {
                fprintf(stderr, "    mutation %d: conversion %d \"%s\", pass-through %d \"%s\"\n",
                        i, conv, e1.msg, pt, e2.msg);
            }
        }
        arena_destroy(a);
    }
    CHECK(disagree == 0);
    CHECK(refused > runs / 4); /* the corruptions did reach the checks */
    free(buf);
    arena_destroy(fa);
}
