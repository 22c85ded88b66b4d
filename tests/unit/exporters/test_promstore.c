/*
 * test_promstore.c - exporters/promstore.c: updates (replace, older samples ignored, stale
 * markers, native histograms), expiry, the max_series bound, value formatting, and the exact
 * text 0.0.4 and OpenMetrics 1.0 renderings (golden strings written from the two format specs
 * and client_golang's encoders: family grouping and order, escaping, HELP/TYPE/UNIT, # EOF).
 */
#include "unit.h"
#include "promstore.h"
#include "mt.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- hand-built remote-write 1.0 shaped input ----------------------------------------- */

#define TS_MAX_LABELS 16

typedef struct tser {
    Prometheus__TimeSeries ts;
    Prometheus__Label lab[TS_MAX_LABELS];
    Prometheus__Label *lp[TS_MAX_LABELS];
    Prometheus__Sample smp[2];
    Prometheus__Sample *sp[2];
} tser_t;

/* name, value, timestamp, then label name/value pairs ending with NULL. */
static tser_t *mk(const char *name, double v, int64_t ts, ...)
{
    tser_t *t = calloc(1, sizeof(*t));
    prometheus__time_series__init(&t->ts);
    size_t n = 0;
    prometheus__label__init(&t->lab[n]);
    t->lab[n].name = "__name__";
    t->lab[n].value = (char *)name;
    n++;
    va_list ap;
    va_start(ap, ts);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL && n < TS_MAX_LABELS) {
        prometheus__label__init(&t->lab[n]);
        t->lab[n].name = (char *)k;
        t->lab[n].value = va_arg(ap, char *);
        n++;
    }
    va_end(ap);
    for (size_t i = 0; i < n; i++) {
        t->lp[i] = &t->lab[i];
    }
    t->ts.labels = t->lp;
    t->ts.n_labels = n;
    prometheus__sample__init(&t->smp[0]);
    t->smp[0].value = v;
    t->smp[0].timestamp = ts;
    t->sp[0] = &t->smp[0];
    t->ts.samples = t->sp;
    t->ts.n_samples = 1;
    return t;
}

static Prometheus__MetricMetadata *mkmeta(Prometheus__MetricMetadata__MetricType type,
                                          const char *name, const char *help, const char *unit)
{
    Prometheus__MetricMetadata *m = calloc(1, sizeof(*m));
    prometheus__metric_metadata__init(m);
    m->type = type;
    m->metric_family_name = (char *)name;
    m->help = (char *)help;
    m->unit = (char *)unit;
    return m;
}

/* Applies series (and metadata) and frees the builders. */
static int put(promstore_t *s, int64_t now, promstore_stats_t *st, tser_t **ts, size_t n,
               Prometheus__MetricMetadata **md, size_t nmd)
{
    Prometheus__TimeSeries *arr[64] = {0};
    for (size_t i = 0; i < n; i++) {
        arr[i] = &ts[i]->ts;
    }
    int rc = promstore_update(s, arr, n, md, nmd, now, st);
    for (size_t i = 0; i < n; i++) {
        free(ts[i]);
    }
    for (size_t i = 0; i < nmd; i++) {
        free(md[i]);
    }
    return rc;
}

static int put1(promstore_t *s, int64_t now, promstore_stats_t *st, tser_t *t)
{
    return put(s, now, st, &t, 1, NULL, 0);
}

/* Rendering as a malloc'd string ("" on failure so CHECK_STR reports it). */
static char *render(promstore_t *s, promstore_fmt_t fmt, int ts, int64_t now)
{
    char *out = NULL;
    size_t len = 0;
    if (promstore_render(s, fmt, ts, now, &out, &len, NULL) != MT_OK || strlen(out) != len) {
        free(out);
        return strdup("<render failed>");
    }
    return out;
}

#define CHECK_RENDER(s, fmt, ts, now, want)           \
    do {                                              \
        char *got_ = render((s), (fmt), (ts), (now)); \
        CHECK_STR(got_, (want));                      \
        free(got_);                                   \
    } while (0)

#define M(t) PROMETHEUS__METRIC_METADATA__METRIC_TYPE__##t

/* ---- value formatting ----------------------------------------------------------------- */

static int fmt_is(double v, int om, const char *want)
{
    char buf[64];
    int n = promstore_format_value(v, om, buf, sizeof(buf));
    if (n < 0 || strcmp(buf, want) != 0 || (size_t)n != strlen(want)) {
        fprintf(stderr, "    format(%.17g, om=%d) = \"%s\", want \"%s\"\n", v, om, buf, want);
        return 0;
    }
    return 1;
}

UNIT_TEST(format_value_like_go)
{
    /* Go's strconv.FormatFloat(v, 'g', -1, 64), as client_golang writes sample values */
    CHECK(fmt_is(0, 0, "0"));
    CHECK(fmt_is(-0.0, 0, "0"));
    CHECK(fmt_is(1, 0, "1"));
    CHECK(fmt_is(-1, 0, "-1"));
    CHECK(fmt_is(0.5, 0, "0.5"));
    CHECK(fmt_is(-3.25, 0, "-3.25"));
    CHECK(fmt_is(100000, 0, "100000"));
    CHECK(fmt_is(123456, 0, "123456"));
    CHECK(fmt_is(1e6, 0, "1e+06"));
    CHECK(fmt_is(1234567, 0, "1.234567e+06"));
    CHECK(fmt_is(1.7e9, 0, "1.7e+09"));
    CHECK(fmt_is(1e21, 0, "1e+21"));
    CHECK(fmt_is(1.5e300, 0, "1.5e+300"));
    CHECK(fmt_is(0.0001, 0, "0.0001"));
    CHECK(fmt_is(0.00012, 0, "0.00012"));
    CHECK(fmt_is(1e-5, 0, "1e-05"));
    CHECK(fmt_is(1.5e-7, 0, "1.5e-07"));
    CHECK(fmt_is(5e-324, 0, "5e-324"));
    CHECK(fmt_is(0.1 + 0.2, 0, "0.30000000000000004"));
    CHECK(fmt_is(123.456, 0, "123.456"));
    CHECK(fmt_is(NAN, 0, "NaN"));
    CHECK(fmt_is(INFINITY, 0, "+Inf"));
    CHECK(fmt_is(-INFINITY, 0, "-Inf"));
    /* OpenMetrics: client_golang's writeOpenMetricsFloat appends ".0" to integral values */
    CHECK(fmt_is(0, 1, "0.0"));
    CHECK(fmt_is(1, 1, "1.0"));
    CHECK(fmt_is(-1, 1, "-1.0"));
    CHECK(fmt_is(42, 1, "42.0"));
    CHECK(fmt_is(2.5, 1, "2.5"));
    CHECK(fmt_is(1e6, 1, "1e+06"));
    CHECK(fmt_is(NAN, 1, "NaN"));
    CHECK(fmt_is(INFINITY, 1, "+Inf"));
    char small[3];
    CHECK(promstore_format_value(123.5, 0, small, sizeof(small)) == -1);
}

/* ---- updates -------------------------------------------------------------------------- */

UNIT_TEST(update_replace_and_older_ignored)
{
    promstore_t *s = promstore_create(100, 60000);
    REQUIRE(s);
    promstore_stats_t st = {0};
    CHECK(put1(s, 0, &st, mk("g", 1, 1000, "a", "1", NULL)) == MT_OK);
    CHECK(st.added == 1 && promstore_size(s) == 1);
    CHECK(put1(s, 0, &st, mk("g", 2, 2000, "a", "1", NULL)) == MT_OK);
    CHECK(st.updated == 1 && promstore_size(s) == 1);
    CHECK_RENDER(s, PROMSTORE_TEXT, 1, 0, "# TYPE g untyped\ng{a=\"1\"} 2 2000\n");
    /* older than what is stored: ignored */
    CHECK(put1(s, 0, &st, mk("g", 3, 1500, "a", "1", NULL)) == MT_OK);
    CHECK(st.dropped_old == 1);
    CHECK_RENDER(s, PROMSTORE_TEXT, 1, 0, "# TYPE g untyped\ng{a=\"1\"} 2 2000\n");
    /* same timestamp: the later update wins */
    CHECK(put1(s, 0, &st, mk("g", 4, 2000, "a", "1", NULL)) == MT_OK);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "# TYPE g untyped\ng{a=\"1\"} 4\n");
    /* other label value, other series; an empty label value is no label */
    CHECK(put1(s, 0, &st, mk("g", 5, 2000, "a", "2", "b", "", NULL)) == MT_OK);
    CHECK(put1(s, 0, &st, mk("g", 6, 2000, "a", "2", NULL)) == MT_OK);
    CHECK(promstore_size(s) == 2 && st.added == 2);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "# TYPE g untyped\ng{a=\"1\"} 4\ng{a=\"2\"} 6\n");
    /* labels given out of order are the same series */
    CHECK(put1(s, 0, &st, mk("h", 1, 1, "z", "1", "b", "2", NULL)) == MT_OK);
    CHECK(put1(s, 0, &st, mk("h", 7, 2, "b", "2", "z", "1", NULL)) == MT_OK);
    CHECK(promstore_size(s) == 3);
    /* within a batch the newest sample of a series counts */
    tser_t *t = mk("h", 8, 10, "b", "2", "z", "1", NULL);
    prometheus__sample__init(&t->smp[1]);
    t->smp[1].value = 9;
    t->smp[1].timestamp = 5;
    t->sp[1] = &t->smp[1];
    t->ts.n_samples = 2;
    CHECK(put1(s, 0, &st, t) == MT_OK);
    CHECK_RENDER(s, PROMSTORE_TEXT, 1, 0,
                 "# TYPE g untyped\ng{a=\"1\"} 4 2000\ng{a=\"2\"} 6 2000\n"
                 "# TYPE h untyped\nh{b=\"2\",z=\"1\"} 8 10\n");
    /* a series without __name__ is refused */
    tser_t *nn = mk("x", 1, 1, NULL);
    nn->lab[0].name = "job";
    CHECK(put1(s, 0, &st, nn) == MT_OK);
    CHECK(st.dropped_invalid == 1 && promstore_size(s) == 3);
    promstore_destroy(s);
}

UNIT_TEST(stale_marker_removes_series)
{
    union {
        uint64_t u;
        double d;
    } stale = {.u = 0x7ff0000000000002ull};
    promstore_t *s = promstore_create(100, 60000);
    REQUIRE(s);
    promstore_stats_t st = {0};
    put1(s, 0, &st, mk("g", 1, 1000, NULL));
    put1(s, 0, &st, mk("g", 1, 1000, "k", "v", NULL));
    /* an older stale marker is ignored like any older sample */
    put1(s, 0, &st, mk("g", stale.d, 999, NULL));
    CHECK(promstore_size(s) == 2 && st.stale_removed == 0);
    put1(s, 0, &st, mk("g", stale.d, 1001, NULL));
    CHECK(promstore_size(s) == 1 && st.stale_removed == 1);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "# TYPE g untyped\ng{k=\"v\"} 1\n");
    /* a stale marker for an unknown series creates nothing */
    put1(s, 0, &st, mk("other", stale.d, 1001, NULL));
    CHECK(promstore_size(s) == 1 && st.added == 2);
    /* an ordinary NaN is a value, not a marker */
    put1(s, 0, &st, mk("g", NAN, 1002, "k", "v", NULL));
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "# TYPE g untyped\ng{k=\"v\"} NaN\n");
    promstore_destroy(s);
}

UNIT_TEST(native_histograms_dropped)
{
    promstore_t *s = promstore_create(100, 60000);
    REQUIRE(s);
    promstore_stats_t st = {0};
    tser_t *t = mk("nh_seconds", 0, 0, NULL);
    Prometheus__Histogram h = PROMETHEUS__HISTOGRAM__INIT;
    Prometheus__Histogram *hp = &h;
    t->ts.n_samples = 0;
    t->ts.histograms = &hp;
    t->ts.n_histograms = 1;
    CHECK(put1(s, 0, &st, t) == MT_OK);
    CHECK(st.dropped_native == 1 && promstore_size(s) == 0);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "");
    CHECK_RENDER(s, PROMSTORE_OPENMETRICS, 0, 0, "# EOF\n");
    promstore_destroy(s);
}

UNIT_TEST(expiry)
{
    promstore_t *s = promstore_create(100, 1000);
    REQUIRE(s);
    promstore_stats_t st = {0};
    Prometheus__MetricMetadata *md[] = {mkmeta(M(GAUGE), "a", "A gauge", "")};
    tser_t *ts[] = {mk("a", 1, 1, NULL)};
    put(s, 0, &st, ts, 1, md, 1);
    put1(s, 500, &st, mk("b", 2, 1, NULL));
    /* exactly expiry_ms old: still there */
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 1000,
                 "# HELP a A gauge\n# TYPE a gauge\na 1\n# TYPE b untyped\nb 2\n");
    CHECK(st.expired == 0);
    /* a is older than that now (its metadata too); b is not */
    promstore_stats_t rs = {0};
    char *out;
    size_t len;
    CHECK(promstore_render(s, PROMSTORE_TEXT, 0, 1001, &out, &len, &rs) == MT_OK);
    CHECK_STR(out, "# TYPE b untyped\nb 2\n");
    free(out);
    CHECK(rs.expired == 1 && promstore_size(s) == 1);
    /* an update keeps a series alive */
    put1(s, 1400, &st, mk("b", 3, 2, NULL));
    CHECK(promstore_expire(s, 2400, &st) == 0);
    CHECK(promstore_expire(s, 2401, &st) == 1);
    CHECK(st.expired == 1 && promstore_size(s) == 0);
    /* a series coming back is new, and its family metadata must come again */
    put1(s, 3000, &st, mk("a", 5, 9, NULL));
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 3000, "# TYPE a untyped\na 5\n");
    promstore_destroy(s);
}

UNIT_TEST(max_series_bound)
{
    promstore_t *s = promstore_create(2, 60000);
    REQUIRE(s);
    promstore_stats_t st = {0};
    tser_t *ts[] = {mk("m", 1, 1, "i", "1", NULL), mk("m", 2, 1, "i", "2", NULL),
                    mk("m", 3, 1, "i", "3", NULL)};
    CHECK(put(s, 0, &st, ts, 3, NULL, 0) == MT_OK);
    CHECK(promstore_size(s) == 2 && st.added == 2 && st.dropped_max_series == 1);
    /* existing series still update when full */
    put1(s, 0, &st, mk("m", 20, 2, "i", "2", NULL));
    CHECK(st.updated == 1 && st.dropped_max_series == 1);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "# TYPE m untyped\nm{i=\"1\"} 1\nm{i=\"2\"} 20\n");
    /* room again after a series goes */
    union {
        uint64_t u;
        double d;
    } stale = {.u = 0x7ff0000000000002ull};
    put1(s, 0, &st, mk("m", stale.d, 2, "i", "1", NULL));
    put1(s, 0, &st, mk("m", 3, 3, "i", "3", NULL));
    CHECK(promstore_size(s) == 2 && st.dropped_max_series == 1);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "# TYPE m untyped\nm{i=\"2\"} 20\nm{i=\"3\"} 3\n");
    promstore_destroy(s);
}

/* ---- rendering ------------------------------------------------------------------------ */

/* One family of every kind, inserted out of order. */
static promstore_t *all_types_store(void)
{
    promstore_t *s = promstore_create(1000, 60000);
    Prometheus__MetricMetadata *md[] = {
        mkmeta(M(GAUGE), "temp_celsius", "Sensor temperature", "celsius"),
        mkmeta(M(HISTOGRAM), "req_duration_seconds", "Request duration", "seconds"),
        mkmeta(M(COUNTER), "http_requests_total", "Requests handled", ""),
        mkmeta(M(SUMMARY), "rpc_seconds", "RPC latency", "seconds"),
        mkmeta(M(INFO), "target_info", "Target metadata", ""),
    };
    tser_t *ts[] = {
        mk("temp_celsius", 21.5, 1000, NULL),
        mk("req_duration_seconds_count", 3, 1000, "route", "/a", NULL),
        mk("req_duration_seconds_bucket", 3, 1000, "le", "+Inf", "route", "/a", NULL),
        mk("http_requests_total", 1, 1000, "code", "500", "method", "GET", NULL),
        mk("rpc_seconds_sum", 12.5, 1000, NULL),
        mk("req_duration_seconds_bucket", 3, 1000, "le", "10", "route", "/a", NULL),
        mk("rpc_seconds", 0.7, 1000, "quantile", "0.99", NULL),
        mk("req_duration_seconds_sum", 7.25, 1000, "route", "/a", NULL),
        mk("mystery", 42, 1000, NULL),
        mk("req_duration_seconds_bucket", 1, 1000, "le", "0.5", "route", "/a", NULL),
        mk("rpc_seconds_count", 100, 1000, NULL),
        mk("target_info", 1, 1000, "job", "svc", "instance", "i1", "host_name", "h", NULL),
        mk("http_requests_total", 10, 1000, "code", "200", "method", "GET", NULL),
        mk("req_duration_seconds_bucket", 2, 1000, "le", "2.5", "route", "/a", NULL),
        mk("rpc_seconds", 0.1, 1000, "quantile", "0.5", NULL),
    };
    put(s, 0, NULL, ts, MT_ARRAY_LEN(ts), md, MT_ARRAY_LEN(md));
    return s;
}

UNIT_TEST(render_text_all_types)
{
    promstore_t *s = all_types_store();
    REQUIRE(s && promstore_size(s) == 15);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0,
                 "# HELP http_requests_total Requests handled\n"
                 "# TYPE http_requests_total counter\n"
                 "http_requests_total{code=\"200\",method=\"GET\"} 10\n"
                 "http_requests_total{code=\"500\",method=\"GET\"} 1\n"
                 "# TYPE mystery untyped\n"
                 "mystery 42\n"
                 "# HELP req_duration_seconds Request duration\n"
                 "# TYPE req_duration_seconds histogram\n"
                 "req_duration_seconds_bucket{le=\"0.5\",route=\"/a\"} 1\n"
                 "req_duration_seconds_bucket{le=\"2.5\",route=\"/a\"} 2\n"
                 "req_duration_seconds_bucket{le=\"10\",route=\"/a\"} 3\n"
                 "req_duration_seconds_bucket{le=\"+Inf\",route=\"/a\"} 3\n"
                 "req_duration_seconds_sum{route=\"/a\"} 7.25\n"
                 "req_duration_seconds_count{route=\"/a\"} 3\n"
                 "# HELP rpc_seconds RPC latency\n"
                 "# TYPE rpc_seconds summary\n"
                 "rpc_seconds{quantile=\"0.5\"} 0.1\n"
                 "rpc_seconds{quantile=\"0.99\"} 0.7\n"
                 "rpc_seconds_sum 12.5\n"
                 "rpc_seconds_count 100\n"
                 "# HELP target_info Target metadata\n"
                 "# TYPE target_info gauge\n"
                 "target_info{host_name=\"h\",instance=\"i1\",job=\"svc\"} 1\n"
                 "# HELP temp_celsius Sensor temperature\n"
                 "# TYPE temp_celsius gauge\n"
                 "temp_celsius 21.5\n");
    promstore_destroy(s);
}

UNIT_TEST(render_openmetrics_all_types)
{
    promstore_t *s = all_types_store();
    REQUIRE(s);
    CHECK_RENDER(s, PROMSTORE_OPENMETRICS, 0, 0,
                 "# HELP http_requests Requests handled\n"
                 "# TYPE http_requests counter\n"
                 "http_requests_total{code=\"200\",method=\"GET\"} 10.0\n"
                 "http_requests_total{code=\"500\",method=\"GET\"} 1.0\n"
                 "# TYPE mystery unknown\n"
                 "mystery 42.0\n"
                 "# HELP req_duration_seconds Request duration\n"
                 "# TYPE req_duration_seconds histogram\n"
                 "# UNIT req_duration_seconds seconds\n"
                 "req_duration_seconds_bucket{le=\"0.5\",route=\"/a\"} 1\n"
                 "req_duration_seconds_bucket{le=\"2.5\",route=\"/a\"} 2\n"
                 "req_duration_seconds_bucket{le=\"10\",route=\"/a\"} 3\n"
                 "req_duration_seconds_bucket{le=\"+Inf\",route=\"/a\"} 3\n"
                 "req_duration_seconds_sum{route=\"/a\"} 7.25\n"
                 "req_duration_seconds_count{route=\"/a\"} 3\n"
                 "# HELP rpc_seconds RPC latency\n"
                 "# TYPE rpc_seconds summary\n"
                 "# UNIT rpc_seconds seconds\n"
                 "rpc_seconds{quantile=\"0.5\"} 0.1\n"
                 "rpc_seconds{quantile=\"0.99\"} 0.7\n"
                 "rpc_seconds_sum 12.5\n"
                 "rpc_seconds_count 100\n"
                 "# HELP target Target metadata\n"
                 "# TYPE target info\n"
                 "target_info{host_name=\"h\",instance=\"i1\",job=\"svc\"} 1.0\n"
                 "# HELP temp_celsius Sensor temperature\n"
                 "# TYPE temp_celsius gauge\n"
                 "# UNIT temp_celsius celsius\n"
                 "temp_celsius 21.5\n"
                 "# EOF\n");
    promstore_destroy(s);
}

UNIT_TEST(render_escaping)
{
    promstore_t *s = promstore_create(10, 60000);
    REQUIRE(s);
    Prometheus__MetricMetadata *md[] = {mkmeta(M(GAUGE), "esc", "a \\ b\nc \"q\"", "")};
    tser_t *ts[] = {mk("esc", 1, 0, "v", "x\\y\"z\nw", NULL)};
    put(s, 0, NULL, ts, 1, md, 1);
    /* text 0.0.4: HELP escapes \ and newline only; label values also " */
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0,
                 "# HELP esc a \\\\ b\\nc \"q\"\n"
                 "# TYPE esc gauge\n"
                 "esc{v=\"x\\\\y\\\"z\\nw\"} 1\n");
    /* OpenMetrics: HELP is an escaped-string, so " is escaped there too */
    CHECK_RENDER(s, PROMSTORE_OPENMETRICS, 0, 0,
                 "# HELP esc a \\\\ b\\nc \\\"q\\\"\n"
                 "# TYPE esc gauge\n"
                 "esc{v=\"x\\\\y\\\"z\\nw\"} 1.0\n"
                 "# EOF\n");
    promstore_destroy(s);
}

UNIT_TEST(render_grouping_and_order)
{
    promstore_t *s = promstore_create(100, 60000);
    REQUIRE(s);
    Prometheus__MetricMetadata *md[] = {mkmeta(M(HISTOGRAM), "lat", "", "")};
    /* two label sets of one histogram interleaved, a family whose name sorts inside the
     * histogram's series names, and labels that sort before and after le */
    tser_t *ts[] = {
        mk("lat_bucket", 5, 0, "a", "y", "le", "+Inf", NULL),
        mk("lat_count", 5, 0, "a", "x", NULL),
        mk("lat_bucket", 1, 0, "a", "x", "le", "100", NULL),
        mk("lat_sum", 1.5, 0, "a", "y", NULL),
        mk("lat_bucket", 0, 0, "a", "x", "le", "20", NULL),
        mk("lat_bucket", 5, 0, "a", "x", "le", "+Inf", NULL),
        mk("lat_bucket", 4, 0, "a", "y", "le", "1e+02", NULL),
        mk("lat_count", 5, 0, "a", "y", NULL),
        mk("lat_sum", 2.5, 0, "a", "x", NULL),
        mk("lat_a", 1, 0, NULL),
        mk("b", 2, 0, "z", "1", NULL),
        mk("b", 1, 0, "y", "1", NULL),
        mk("b", 3, 0, "Y", "1", NULL),
        mk("b", 4, 0, NULL),
        mk("b", 5, 0, "A", "1", "_x", "2", NULL),
        mk("a", 0, 0, NULL),
    };
    put(s, 0, NULL, ts, MT_ARRAY_LEN(ts), md, 1);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0,
                 "# TYPE a untyped\n"
                 "a 0\n"
                 "# TYPE b untyped\n"
                 "b 4\n"
                 "b{A=\"1\",_x=\"2\"} 5\n"
                 "b{Y=\"1\"} 3\n"
                 "b{y=\"1\"} 1\n"
                 "b{z=\"1\"} 2\n"
                 "# TYPE lat histogram\n"
                 "lat_bucket{a=\"x\",le=\"20\"} 0\n"
                 "lat_bucket{a=\"x\",le=\"100\"} 1\n"
                 "lat_bucket{a=\"x\",le=\"+Inf\"} 5\n"
                 "lat_sum{a=\"x\"} 2.5\n"
                 "lat_count{a=\"x\"} 5\n"
                 "lat_bucket{a=\"y\",le=\"1e+02\"} 4\n"
                 "lat_bucket{a=\"y\",le=\"+Inf\"} 5\n"
                 "lat_sum{a=\"y\"} 1.5\n"
                 "lat_count{a=\"y\"} 5\n"
                 "# TYPE lat_a untyped\n"
                 "lat_a 1\n");
    promstore_destroy(s);
}

UNIT_TEST(render_counter_names)
{
    promstore_t *s = promstore_create(100, 60000);
    REQUIRE(s);
    /* metadata naming the counter without _total (OpenMetrics style), a counter without the
     * suffix (add_metric_suffixes: false), and a sample named like a histogram family */
    Prometheus__MetricMetadata *md[] = {mkmeta(M(COUNTER), "jobs", "Jobs run", ""),
                                        mkmeta(M(COUNTER), "plain", "No suffix", ""),
                                        mkmeta(M(HISTOGRAM), "h", "", "")};
    tser_t *ts[] = {mk("jobs_total", 5, 0, NULL), mk("plain", 2, 0, NULL), mk("h", 1, 0, NULL),
                    mk("h_count", 0, 0, NULL)};
    put(s, 0, NULL, ts, MT_ARRAY_LEN(ts), md, MT_ARRAY_LEN(md));
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0,
                 "# TYPE h histogram\n"
                 "h_count 0\n"
                 "# HELP jobs_total Jobs run\n"
                 "# TYPE jobs_total counter\n"
                 "jobs_total 5\n"
                 "# HELP plain No suffix\n"
                 "# TYPE plain counter\n"
                 "plain 2\n");
    CHECK_RENDER(s, PROMSTORE_OPENMETRICS, 0, 0,
                 "# TYPE h histogram\n"
                 "h_count 0\n"
                 "# HELP jobs Jobs run\n"
                 "# TYPE jobs counter\n"
                 "jobs_total 5.0\n"
                 "# HELP plain No suffix\n"
                 "# TYPE plain unknown\n"
                 "plain 2.0\n"
                 "# EOF\n");
    promstore_destroy(s);
}

UNIT_TEST(render_units_and_timestamps)
{
    promstore_t *s = promstore_create(100, 0);
    REQUIRE(s);
    /* UNIT only when the family name ends with _<unit> */
    Prometheus__MetricMetadata *md[] = {mkmeta(M(GAUGE), "mem_bytes", "", "bytes"),
                                        mkmeta(M(GAUGE), "load", "", "percent"),
                                        mkmeta(M(COUNTER), "io_bytes_total", "", "bytes")};
    tser_t *ts[] = {mk("mem_bytes", 1e9, 1700000000123, NULL), mk("load", 0.25, -1500, NULL),
                    mk("io_bytes_total", 7, 5, NULL)};
    put(s, 0, NULL, ts, MT_ARRAY_LEN(ts), md, MT_ARRAY_LEN(md));
    CHECK_RENDER(s, PROMSTORE_TEXT, 1, 0,
                 "# TYPE io_bytes_total counter\n"
                 "io_bytes_total 7 5\n"
                 "# TYPE load gauge\n"
                 "load 0.25 -1500\n"
                 "# TYPE mem_bytes gauge\n"
                 "mem_bytes 1e+09 1700000000123\n");
    CHECK_RENDER(s, PROMSTORE_OPENMETRICS, 1, 0,
                 "# TYPE io_bytes counter\n"
                 "# UNIT io_bytes bytes\n"
                 "io_bytes_total 7.0 0.005\n"
                 "# TYPE load gauge\n"
                 "load 0.25 -1.500\n"
                 "# TYPE mem_bytes gauge\n"
                 "# UNIT mem_bytes bytes\n"
                 "mem_bytes 1e+09 1700000000.123\n"
                 "# EOF\n");
    /* expiry_ms 0 never expires */
    CHECK(promstore_expire(s, INT64_MAX / 2, NULL) == 0 && promstore_size(s) == 3);
    promstore_destroy(s);
}

UNIT_TEST(metadata_replaced)
{
    promstore_t *s = promstore_create(100, 60000);
    REQUIRE(s);
    Prometheus__MetricMetadata *md1[] = {mkmeta(M(GAUGE), "q", "old", "")};
    tser_t *ts1[] = {mk("q", 1, 1, NULL)};
    put(s, 0, NULL, ts1, 1, md1, 1);
    Prometheus__MetricMetadata *md2[] = {mkmeta(M(GAUGE), "q", "new \\ help", "")};
    put(s, 0, NULL, NULL, 0, md2, 1);
    CHECK_RENDER(s, PROMSTORE_TEXT, 0, 0, "# HELP q new \\\\ help\n# TYPE q gauge\nq 1\n");
    promstore_destroy(s);
    promstore_destroy(NULL);
}

UNIT_TEST(many_series_grow_and_sort)
{
    promstore_t *s = promstore_create(5000, 60000);
    REQUIRE(s);
    char names[3000][8];
    for (int i = 0; i < 3000; i++) {
        snprintf(names[i], sizeof(names[i]), "%04d", (i * 7919) % 3000);
        CHECK(put1(s, 0, NULL, mk("many", i, 0, "i", names[i], NULL)) == MT_OK);
    }
    CHECK(promstore_size(s) == 3000);
    char *out = render(s, PROMSTORE_TEXT, 0, 0);
    /* every line in label order */
    const char *p = strchr(out, '\n') + 1;
    int prev = -1, lines = 0;
    while (*p) {
        int v = atoi(p + strlen("many{i=\""));
        CHECK(v == prev + 1);
        prev = v;
        lines++;
        p = strchr(p, '\n') + 1;
    }
    CHECK(lines == 3000);
    free(out);
    promstore_destroy(s);
}
