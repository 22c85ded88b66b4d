/*
 * test_coverage.c - tests for collector/core/coverage.c: items per (service, environment,
 * signal) from encoded OTLP (events apart from logs, metric points by type, the environment
 * attribute and its fallback), remote-write 1.0 by job, the max_services bound with its
 * overflow counter, label escaping, and concurrent first sightings of the same service.
 */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "coverage.h"
#include "otlp.h"
#include "otlp_json.h"
#include "prom_rw1.pb-c.h"
#include "telemetry.h"

static uint64_t items(const char *svc, const char *env, const char *sig)
{
    char lb[512];
    snprintf(lb, sizeof(lb), "service=\"%s\",environment=\"%s\",signal=\"%s\"", svc, env, sig);
    return tm_get(tm_counter("meltp_service_items_total", "x", lb));
}

static uint64_t overflow(const char *sig)
{
    char lb[64];
    snprintf(lb, sizeof(lb), "signal=\"%s\"", sig);
    return tm_get(tm_counter("meltp_service_items_overflow_total", "x", lb));
}

/* Encodes OTLP/JSON as protobuf and counts it. Returns 0 on success. */
static int observe_json(mt_signal_t s, const char *json)
{
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m = otlp_json_decode(otlp_request_desc(s), json, strlen(json), a, &eb);
    if (!m) {
        fprintf(stderr, "json: %s\n", eb.msg);
        arena_destroy(a);
        return -1;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *pb = malloc(n ? n : 1);
    protobuf_c_message_pack(m, pb);
    coverage_observe(s, pb, n);
    free(pb);
    arena_destroy(a);
    return 0;
}

#define RES(svc, extra)                                                                          \
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"" svc \
    "\"}}" extra "]}"
#define ENV(key, v) ",{\"key\":\"" key "\",\"value\":{\"stringValue\":\"" v "\"}}"

UNIT_TEST(coverage_counts_per_service_environment_and_signal)
{
    REQUIRE(coverage_configure(100) == MT_OK);
    const char *tr = "{\"resourceSpans\":[" RES(
        "cov-a", ENV("deployment.environment.name",
                     "prod")) ","
                              "\"scopeSpans\":[{\"spans\":[{\"name\":\"x\"},{\"name\":\"y\"}]},{"
                              "\"spans\":[{\"name\":"
                              "\"z\"}]}]}," RES(
                                  "cov-b",
                                  ENV("deployment.environment", "old") ENV(
                                      "deployment.environment.name",
                                      "new")) ",\"scopeSpans\":[{\"spans\":[{\"name\":\"x\"}]}]},"
                                              "{\"scopeSpans\":[{\"spans\":[{\"name\":\"x\"}]}]}]}";
    REQUIRE(observe_json(MT_SIG_TRACES, tr) == 0);
    CHECK(items("cov-a", "prod", "traces") == 3);
    CHECK(items("cov-b", "new", "traces") == 1); /* .name wins over the old key */
    CHECK(items("cov-b", "old", "traces") == 0);
    CHECK(items("unknown_service", "", "traces") >= 1);

    const char *logs = "{\"resourceLogs\":[" RES(
        "cov-a", ENV("deployment.environment",
                     "prod")) ","
                              "\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"a\"}},"
                              "{\"eventName\":\"login\"},{\"attributes\":[{\"key\":\"event.name\","
                              "\"value\":{\"stringValue\":\"e\"}}]}]}]}]}";
    REQUIRE(observe_json(MT_SIG_LOGS, logs) == 0);
    CHECK(items("cov-a", "prod", "logs") == 1);
    CHECK(items("cov-a", "prod", "events") == 2);

    const char *met = "{\"resourceMetrics\":[" RES(
        "cov-a", ENV("deployment.environment.name",
                     "prod")) ","
                              "\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\",\"gauge\":{"
                              "\"dataPoints\":[{\"asInt\":"
                              "\"1\"},{\"asInt\":\"2\"}]}},{\"name\":\"h\",\"histogram\":{"
                              "\"aggregationTemporality\":2,"
                              "\"dataPoints\":[{\"count\":\"1\"}]}},{\"name\":\"s\",\"sum\":{"
                              "\"dataPoints\":[{\"asDouble\":"
                              "1}]}}]}]}]}";
    REQUIRE(observe_json(MT_SIG_METRICS, met) == 0);
    CHECK(items("cov-a", "prod", "metrics") == 4);
    CHECK(items("cov-a", "prod", "traces") == 3); /* untouched */
}

UNIT_TEST(coverage_bound_counts_overflow)
{
    REQUIRE(coverage_configure(2) == MT_OK);
    uint64_t o0 = overflow("traces");
    const char *tr = "{\"resourceSpans\":[" RES(
        "cov-b1", "") ",\"scopeSpans\":[{\"spans\":[{"
                      "\"name\":\"x\"}]}]}," RES(
                          "cov-b2", "") ",\"scopeSpans\":[{\"spans\":[{"
                                        "\"name\":\"x\"}]}]}," RES(
                                            "cov-b3", "") ",\"scopeSpans\":[{\"spans\":[{"
                                                          "\"name\":\"x\"},{\"name\":\"y\"}]}]}]}";
    REQUIRE(observe_json(MT_SIG_TRACES, tr) == 0);
    REQUIRE(observe_json(MT_SIG_TRACES, tr) == 0);
    CHECK(items("cov-b1", "", "traces") == 2);
    CHECK(items("cov-b2", "", "traces") == 2);
    CHECK(items("cov-b3", "", "traces") == 0);
    CHECK(overflow("traces") - o0 == 4);
    /* a reconfigure with room takes the new service; old counters keep their values */
    REQUIRE(coverage_configure(10) == MT_OK);
    REQUIRE(observe_json(MT_SIG_TRACES, tr) == 0);
    CHECK(items("cov-b1", "", "traces") == 3);
    CHECK(items("cov-b3", "", "traces") == 2);
    /* off: nothing counted */
    REQUIRE(coverage_configure(0) == MT_OK);
    REQUIRE(observe_json(MT_SIG_TRACES, tr) == 0);
    CHECK(items("cov-b1", "", "traces") == 3);
}

UNIT_TEST(coverage_escapes_and_cuts_labels)
{
    REQUIRE(coverage_configure(10) == MT_OK);
    const char *tr =
        "{\"resourceSpans\":[" RES("cov\\\"q\\\\x\\n", "") ",\"scopeSpans\":[{"
                                                           "\"spans\":[{\"name\":\"x\"}]}]}]}";
    REQUIRE(observe_json(MT_SIG_TRACES, tr) == 0);
    CHECK(items("cov\\\"q\\\\x\\n", "", "traces") == 1);
    char longname[300], json[800], want[COVERAGE_NAME_MAX];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    snprintf(
        json, sizeof(json),
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"%s\"}}]},\"scopeSpans\":[{\"spans\":[{\"name\":\"x\"}]}]}]}",
        longname);
    REQUIRE(observe_json(MT_SIG_TRACES, json) == 0);
    memset(want, 'n', sizeof(want) - 1);
    want[sizeof(want) - 1] = 0;
    CHECK(items(want, "", "traces") == 1);
    /* garbage is not an error: nothing sensible to count */
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2};
    coverage_observe(MT_SIG_TRACES, junk, sizeof(junk));
}

UNIT_TEST(coverage_counts_remote_write_by_job)
{
    REQUIRE(coverage_configure(10) == MT_OK);
    Prometheus__Label l[3] = {PROMETHEUS__LABEL__INIT, PROMETHEUS__LABEL__INIT,
                              PROMETHEUS__LABEL__INIT};
    l[0].name = "__name__";
    l[0].value = "up";
    l[1].name = "job";
    l[1].value = "ns/cov-rw";
    l[2].name = "deployment_environment";
    l[2].value = "stage";
    Prometheus__Label *lp[3] = {&l[0], &l[1], &l[2]};
    Prometheus__Sample sm[2] = {PROMETHEUS__SAMPLE__INIT, PROMETHEUS__SAMPLE__INIT};
    Prometheus__Sample *sp[2] = {&sm[0], &sm[1]};
    Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
    ts.labels = lp;
    ts.n_labels = 3;
    ts.samples = sp;
    ts.n_samples = 2;
    Prometheus__TimeSeries *tsp = &ts;
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.timeseries = &tsp;
    wr.n_timeseries = 1;
    uint8_t buf[256];
    size_t n = prometheus__write_request__pack(&wr, buf);
    coverage_observe_prw(buf, n);
    CHECK(items("cov-rw", "stage", "metrics") == 2);
}

static const char *conc_json;
static void *conc_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        observe_json(MT_SIG_TRACES, conc_json);
    }
    return NULL;
}

UNIT_TEST(coverage_concurrent_first_sightings_share_one_slot)
{
    REQUIRE(coverage_configure(3) == MT_OK);
    conc_json = "{\"resourceSpans\":[" RES(
        "cov-c1", "") ",\"scopeSpans\":[{\"spans\":[{\"name\":"
                      "\"x\"}]}]}," RES("cov-c2",
                                        "") ",\"scopeSpans\":[{\"spans\":[{\"name\":\"x\"}]}]}]}";
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, conc_worker, NULL);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(items("cov-c1", "", "traces") == 200);
    CHECK(items("cov-c2", "", "traces") == 200);
    coverage_configure(0);
}
