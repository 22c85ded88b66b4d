/*
 * test_telemetry.c - tests for collector/core/telemetry.c: counter identity by name and labels,
 * tm_count_reason, histogram bucketing (le is inclusive), gauge callbacks and their removal,
 * and the Prometheus text rendering (HELP/TYPE once per family, sample lines).
 * The registry is process-wide, so every metric here has a name no other suite uses.
 */
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"

/* Occurrences of `needle` in the rendered text. */
static int count_in(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    return n;
}

/* Renders and checks the result is NUL-terminated text of the reported length. */
static char *render(int *unit_failed_)
{
    size_t len = 0;
    char *t = telemetry_render(&len);
    CHECK(t != NULL);
    if (t) {
        CHECK(strlen(t) == len);
    }
    return t;
}

UNIT_TEST(counter_identity_and_add)
{
    tm_counter_t *a = tm_counter("meltp_ut_requests_total", "Requests.", "k=\"a\"");
    tm_counter_t *a2 = tm_counter("meltp_ut_requests_total", "Requests.", "k=\"a\"");
    tm_counter_t *b = tm_counter("meltp_ut_requests_total", "Requests.", "k=\"b\"");
    tm_counter_t *other = tm_counter("meltp_ut_other_total", "Other.", "k=\"a\"");
    REQUIRE(a && b && other);
    CHECK(a == a2);    /* same name and labels: same series */
    CHECK(a != b);     /* labels distinguish */
    CHECK(a != other); /* names distinguish */
    CHECK(tm_get(a) == 0);
    tm_add(a, 1);
    tm_add(a2, 41);
    tm_add(b, 5);
    CHECK(tm_get(a) == 42);
    CHECK(tm_get(b) == 5);
    CHECK(tm_get(other) == 0);
}

UNIT_TEST(count_reason_appends_label)
{
    tm_count_reason("meltp_ut_dropped_total", "Dropped.", "exporter=\"e\"", "queue_full", 3);
    tm_count_reason("meltp_ut_dropped_total", "Dropped.", "exporter=\"e\"", "queue_full", 4);
    tm_count_reason("meltp_ut_dropped_total", "Dropped.", "exporter=\"e\"", "shutdown", 1);
    tm_count_reason("meltp_ut_dropped_total", "Dropped.", "", "bare", 2);
    CHECK(tm_get(tm_counter("meltp_ut_dropped_total", "Dropped.",
                            "exporter=\"e\",reason=\"queue_full\"")) == 7);
    CHECK(tm_get(tm_counter("meltp_ut_dropped_total", "Dropped.",
                            "exporter=\"e\",reason=\"shutdown\"")) == 1);
    /* no leading comma when there are no other labels */
    CHECK(tm_get(tm_counter("meltp_ut_dropped_total", "Dropped.", "reason=\"bare\"")) == 2);
    char *t = render(unit_failed_);
    REQUIRE(t);
    CHECK(strstr(t, "meltp_ut_dropped_total{exporter=\"e\",reason=\"queue_full\"} 7\n") != NULL);
    CHECK(strstr(t, "meltp_ut_dropped_total{reason=\"bare\"} 2\n") != NULL);
    free(t);
}

UNIT_TEST(histogram_buckets)
{
    tm_hist_t *h = tm_hist("meltp_ut_latency_seconds", "Latency.", "op=\"x\"");
    REQUIRE(h);
    CHECK(h == tm_hist("meltp_ut_latency_seconds", "Latency.", "op=\"x\""));
    tm_hist_observe(h, 0.0001); /* first bucket */
    tm_hist_observe(h, 0.0005); /* exactly the first bound: le is inclusive */
    tm_hist_observe(h, 0.003);  /* (0.0025, 0.005] */
    tm_hist_observe(h, 10);     /* exactly the last finite bound */
    tm_hist_observe(h, 100);    /* +Inf */
    CHECK(atomic_load(&h->count) == 5);
    CHECK(atomic_load(&h->buckets[0]) == 2);
    CHECK(atomic_load(&h->buckets[1]) == 0);
    CHECK(atomic_load(&h->buckets[3]) == 1);
    CHECK(atomic_load(&h->buckets[TM_HIST_BUCKETS - 1]) == 1);
    CHECK(atomic_load(&h->buckets[TM_HIST_BUCKETS]) == 1);
    CHECK(atomic_load(&h->sum_us) == 100 + 500 + 3000 + 10000000 + 100000000);

    char *t = render(unit_failed_);
    REQUIRE(t);
    CHECK(strstr(t, "# HELP meltp_ut_latency_seconds Latency.\n") != NULL);
    CHECK(strstr(t, "# TYPE meltp_ut_latency_seconds histogram\n") != NULL);
    /* buckets are cumulative */
    CHECK(strstr(t, "meltp_ut_latency_seconds_bucket{op=\"x\",le=\"0.0005\"} 2\n") != NULL);
    CHECK(strstr(t, "meltp_ut_latency_seconds_bucket{op=\"x\",le=\"0.001\"} 2\n") != NULL);
    CHECK(strstr(t, "meltp_ut_latency_seconds_bucket{op=\"x\",le=\"0.005\"} 3\n") != NULL);
    CHECK(strstr(t, "meltp_ut_latency_seconds_bucket{op=\"x\",le=\"10\"} 4\n") != NULL);
    CHECK(strstr(t, "meltp_ut_latency_seconds_bucket{op=\"x\",le=\"+Inf\"} 5\n") != NULL);
    CHECK(count_in(t, "meltp_ut_latency_seconds_bucket{") == TM_HIST_BUCKETS + 1);
    CHECK(strstr(t, "meltp_ut_latency_seconds_sum{op=\"x\"} 110.003600\n") != NULL);
    CHECK(strstr(t, "meltp_ut_latency_seconds_count{op=\"x\"} 5\n") != NULL);
    free(t);
}

static double gauge_fn(void *arg)
{
    return *(double *)arg;
}

UNIT_TEST(gauge_callback_and_remove)
{
    static double v1 = 42, v2 = 0.5;
    tm_gauge("meltp_ut_queue_length", "Queue length.", "q=\"1\"", gauge_fn, &v1);
    tm_gauge("meltp_ut_queue_length", "Queue length.", "q=\"2\"", gauge_fn, &v2);
    char *t = render(unit_failed_);
    REQUIRE(t);
    CHECK(strstr(t, "# TYPE meltp_ut_queue_length gauge\n") != NULL);
    CHECK(strstr(t, "meltp_ut_queue_length{q=\"1\"} 42\n") != NULL);
    CHECK(strstr(t, "meltp_ut_queue_length{q=\"2\"} 0.5\n") != NULL);
    free(t);
    /* the callback is read at render time */
    v1 = 7;
    t = render(unit_failed_);
    REQUIRE(t);
    CHECK(strstr(t, "meltp_ut_queue_length{q=\"1\"} 7\n") != NULL);
    free(t);
    /* removing by arg takes away that series only */
    tm_gauge_remove(&v1);
    t = render(unit_failed_);
    REQUIRE(t);
    CHECK(strstr(t, "meltp_ut_queue_length{q=\"1\"}") == NULL);
    CHECK(strstr(t, "meltp_ut_queue_length{q=\"2\"} 0.5\n") != NULL);
    free(t);
    tm_gauge_remove(&v2);
    t = render(unit_failed_);
    REQUIRE(t);
    CHECK(strstr(t, "meltp_ut_queue_length") == NULL); /* nor its HELP/TYPE */
    free(t);
    tm_gauge_remove(&v2); /* removing again is harmless */
}

UNIT_TEST(render_families_and_samples)
{
    tm_counter_t *x = tm_counter("meltp_ut_family_total", "A family.", "s=\"x\"");
    tm_counter_t *y = tm_counter("meltp_ut_family_total", "A family.", "s=\"y\"");
    tm_counter_t *plain = tm_counter("meltp_ut_plain_total", "No labels.", "");
    tm_add(x, 1);
    tm_add(y, 2);
    tm_add(plain, 7);
    char *t = render(unit_failed_);
    REQUIRE(t);
    /* HELP and TYPE once per family, before its samples */
    CHECK(count_in(t, "# TYPE meltp_ut_family_total counter\n") == 1);
    CHECK(count_in(t, "# HELP meltp_ut_family_total A family.\n") == 1);
    const char *type = strstr(t, "# TYPE meltp_ut_family_total counter\n");
    const char *sx = strstr(t, "meltp_ut_family_total{s=\"x\"} 1\n");
    const char *sy = strstr(t, "meltp_ut_family_total{s=\"y\"} 2\n");
    CHECK(type && sx && sy && type < sx && type < sy);
    /* no braces without labels */
    CHECK(strstr(t, "\nmeltp_ut_plain_total 7\n") != NULL);
    CHECK(strstr(t, "# TYPE meltp_ut_plain_total counter\n") != NULL);
    /* process metrics are always there */
    CHECK(strstr(t, "# TYPE meltp_process_resident_memory_bytes gauge\n") != NULL);
    CHECK(strstr(t, "# TYPE meltp_process_cpu_seconds_total counter\n") != NULL);
    /* every line is a comment or "name[{labels}] value" */
    int bad = 0;
    for (char *line = t; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            bad++; /* text ends with a newline */
            break;
        }
        if (line[0] != '#') {
            const char *sp = memchr(line, ' ', (size_t)(nl - line));
            if (!sp || sp == line || sp + 1 == nl) {
                bad++;
            }
        }
        line = nl + 1;
    }
    CHECK(bad == 0);
    free(t);
    CHECK(telemetry_rss_bytes() > 0);
}

enum { ADD_THREADS = 4, ADDS = 20000 };

static void *adder(void *arg)
{
    tm_counter_t *c = arg;
    for (int i = 0; i < ADDS; i++) {
        tm_add(c, 1);
    }
    return NULL;
}

UNIT_TEST(concurrent_counter_adds)
{
    /* relaxed atomics still add up: one counter bumped from several threads */
    tm_counter_t *c = tm_counter("meltp_ut_concurrent_total", "Concurrent.", "");
    uint64_t before = tm_get(c);
    pthread_t th[ADD_THREADS];
    for (int i = 0; i < ADD_THREADS; i++) {
        REQUIRE(pthread_create(&th[i], NULL, adder, c) == 0);
    }
    for (int i = 0; i < ADD_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    CHECK(tm_get(c) - before == (uint64_t)ADD_THREADS * ADDS);
}
