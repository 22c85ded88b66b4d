/*
 * test_slo_engine.c - tests for slo/engine.c through its public interface (slo.h): the `slo:`
 * section is loaded from a YAML string with a spec file in a temporary directory, the engine
 * is started (evaluation interval of five minutes, so only the test drives it), spans and log
 * records reach its observer through pipeline_consume on a pipeline without queues, and the
 * GET /api/v1/slos document is read back. State is saved by stop and restored by the next
 * engine started on the same state_dir.
 */
#include "unit.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "component.h"
#include "otlp.h"
#include "otlp_json.h"
#include "service.h"
#include "slo.h"

#define SPEC                                             \
    "service: checkout\n"                                \
    "slos:\n"                                            \
    "  - name: availability\n"                           \
    "    objective: 99\n"                                \
    "    period: 7d\n"                                   \
    "    sli: {spans: {type: errors, http_5xx: true}}\n" \
    "  - name: by-route\n"                               \
    "    objective: 90\n"                                \
    "    period: 7d\n"                                   \
    "    sli: {spans: {type: errors}}\n"                 \
    "    group_by: [http.route]\n"                       \
    "    max_groups: 2\n"                                \
    "  - name: logs\n"                                   \
    "    objective: 95\n"                                \
    "    period: 7d\n"                                   \
    "    sli: {logs: {min_severity: ERROR}}\n"

typedef struct env {
    char dir[64];
    char cfg[128];
    cfg_doc_t *doc;
    cfg_ctx_t c;
} env_t;

/* Writes the spec into a new temporary directory and loads `slo:` with state in dir/state.
 * `extra` is appended to the slo section. Returns the engine or NULL (errors in env->c). */
static slo_engine_t *env_load(env_t *v, const char *spec, const char *extra, int new_dir)
{
    if (new_dir) {
        snprintf(v->dir, sizeof(v->dir), "/tmp/meltp-unit-slo-XXXXXX");
        if (!mkdtemp(v->dir)) {
            return NULL;
        }
    }
    char path[160];
    snprintf(path, sizeof(path), "%s/spec.yaml", v->dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        return NULL;
    }
    fputs(spec, f);
    fclose(f);
    snprintf(v->cfg, sizeof(v->cfg), "%s/meltp.yaml", v->dir);
    char text[1024];
    snprintf(text, sizeof(text),
             "slo:\n  specs: [spec.yaml]\n  evaluation_interval: 5m\n  state_dir: %s/state\n%s",
             v->dir, extra ? extra : "");
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_ctx_init(&v->c, v->cfg);
    v->doc = cfg_load_string(v->cfg, text, strlen(text), &eb);
    if (!v->doc) {
        return NULL;
    }
    return slo_engine_load(cfg_map_get(v->doc->root, "slo"), v->cfg, &v->c);
}

static void env_fini(env_t *v, int remove_dir)
{
    cfg_doc_destroy(v->doc);
    v->doc = NULL;
    cfg_ctx_fini(&v->c);
    if (remove_dir) {
        char p[200];
        snprintf(p, sizeof(p), "%s/state/slo-state.bin", v->dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/state", v->dir);
        rmdir(p);
        snprintf(p, sizeof(p), "%s/spec.yaml", v->dir);
        unlink(p);
        rmdir(v->dir);
    }
}

/* Hands an OTLP/JSON request of signal s to every observer, like a receiver would. */
static int feed(mt_signal_t s, const char *json)
{
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m = otlp_json_decode(otlp_request_desc(s), json, strlen(json), a, &eb);
    uint64_t items = 0;
    if (!m || otlp_check(s, m, &items, &eb) != MT_OK) {
        fprintf(stderr, "    feed: %s\n", eb.msg);
        arena_destroy(a);
        return -1;
    }
    pipeline_t p = {.id = "slo-test", .signal = s}; /* no queues: only observers see it */
    pipeline_t *pp = &p;
    consume_result_t res;
    pipeline_consume(&pp, 1, s, m, NULL, 0, items, "", a, &res);
    arena_destroy(a);
    return res.status == MT_OK ? 0 : -1;
}

/* A span of `svc` ending now; code 2 = ERROR. */
static char *span(char *buf, size_t n, int code, const char *status, const char *route)
{
    unsigned long long now = (unsigned long long)mt_wall_ns();
    snprintf(buf, n,
             "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\","
             "\"name\":\"GET\",\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\","
             "\"status\":{\"code\":%d},\"attributes\":["
             "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"%s\"}},"
             "{\"key\":\"http.route\",\"value\":{\"stringValue\":\"%s\"}}]}",
             now - 1000000ull, now, code, status, route);
    return buf;
}

static int feed_spans(const char *svc, const char *spans)
{
    char *json = NULL;
    if (asprintf(&json,
                 "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                 "\"value\":{\"stringValue\":\"%s\"}}]},\"scopeSpans\":[{\"spans\":[%s]}]}]}",
                 svc, spans) < 0) {
        return -1;
    }
    int rc = feed(MT_SIG_TRACES, json);
    free(json);
    return rc;
}

/* The API document, parsed; the entry with `id` in *slo (borrowed from the returned root). */
static json_t *api(slo_engine_t *e, const char *id, json_t **slo)
{
    size_t len = 0;
    char *body = slo_engine_api_json(e, &len);
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    free(body);
    *slo = NULL;
    json_t *arr = json_object_get(root, "slos");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *it = json_array_get(arr, i);
        if (!strcmp(json_string_value(json_object_get(it, "id")), id)) {
            *slo = it;
        }
    }
    return root;
}

static json_int_t win(json_t *slo, const char *w, const char *field)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(slo, "windows"), w), field));
}

UNIT_TEST(counts_good_and_bad_spans_into_every_window)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, NULL, 1);
    cfg_ctx_print(&v.c, stderr);
    REQUIRE(e != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    REQUIRE(slo_engine_start(e, NULL, 0, &eb) == MT_OK);
    char s1[512], s2[512], s3[512], s4[512], all[2100];
    snprintf(all, sizeof(all), "%s,%s,%s,%s", span(s1, sizeof(s1), 1, "200", "/a"),
             span(s2, sizeof(s2), 2, "200", "/a"), span(s3, sizeof(s3), 0, "503", "/b"),
             span(s4, sizeof(s4), 0, "404", "/b"));
    REQUIRE(feed_spans("checkout", all) == 0);
    REQUIRE(feed_spans("other-service", all) == 0); /* not this spec's service */

    json_t *slo;
    json_t *root = api(e, "checkout-availability", &slo);
    REQUIRE(slo != NULL);
    CHECK_STR(json_string_value(json_object_get(slo, "service")), "checkout");
    CHECK_STR(json_string_value(json_object_get(slo, "slo")), "availability");
    double obj = json_real_value(json_object_get(slo, "objective"));
    CHECK(obj > 0.9899 && obj < 0.9901); /* the spec's 99 (percent) as a ratio */
    /* ERROR status and 5xx are bad; 404 is not an error */
    const char *wins[] = {"5m", "1h", "1d", "1w"}; /* the period is named by its length */
    for (size_t i = 0; i < 4; i++) {
        CHECK(win(slo, wins[i], "total") == 4);
        CHECK(win(slo, wins[i], "good") == 2);
    }
    double er = json_real_value(
        json_object_get(json_object_get(json_object_get(slo, "windows"), "5m"), "error_ratio"));
    CHECK(er > 0.49 && er < 0.51);
    /* burn rate = error ratio / error budget (1 %); the budget is spent 50 times over */
    double burn = json_real_value(
        json_object_get(json_object_get(json_object_get(slo, "windows"), "1h"), "burn_rate"));
    CHECK(burn > 49.9 && burn < 50.1);
    double left = json_real_value(json_object_get(slo, "budget_remaining"));
    CHECK(left > -49.1 && left < -48.9);
    json_decref(root);
    slo_engine_stop_destroy(e);
    env_fini(&v, 1);
}

UNIT_TEST(group_by_makes_one_instance_per_value_up_to_max_groups)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, NULL, 1);
    REQUIRE(e != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    REQUIRE(slo_engine_start(e, NULL, 0, &eb) == MT_OK);
    char s1[512], s2[512], s3[512], s4[512], all[2100];
    snprintf(all, sizeof(all), "%s,%s,%s,%s", span(s1, sizeof(s1), 2, "200", "/a"),
             span(s2, sizeof(s2), 1, "200", "/a"), span(s3, sizeof(s3), 1, "200", "/b"),
             span(s4, sizeof(s4), 2, "200", "/c"));
    REQUIRE(feed_spans("checkout", all) == 0);
    json_t *a, *b, *c;
    json_t *r1 = api(e, "checkout-by-route{http.route=\"/a\"}", &a);
    json_t *r2 = api(e, "checkout-by-route{http.route=\"/b\"}", &b);
    json_t *r3 = api(e, "checkout-by-route{http.route=\"/c\"}", &c);
    REQUIRE(a && b);
    CHECK(win(a, "1h", "total") == 2 && win(a, "1h", "good") == 1);
    CHECK(win(b, "1h", "total") == 1 && win(b, "1h", "good") == 1);
    CHECK(c == NULL); /* max_groups: 2 */
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
    slo_engine_stop_destroy(e);
    env_fini(&v, 1);
}

UNIT_TEST(log_records_at_or_above_min_severity_are_bad)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, NULL, 1);
    REQUIRE(e != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    REQUIRE(slo_engine_start(e, NULL, 0, &eb) == MT_OK);
    unsigned long long now = (unsigned long long)mt_wall_ns();
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
             "\"value\":{\"stringValue\":\"checkout\"}}]},\"scopeLogs\":[{\"logRecords\":["
             "{\"timeUnixNano\":\"%llu\",\"severityNumber\":9},"
             "{\"timeUnixNano\":\"%llu\",\"severityNumber\":17},"
             "{\"timeUnixNano\":\"%llu\",\"severityNumber\":21}]}]}]}",
             now, now, now);
    REQUIRE(feed(MT_SIG_LOGS, json) == 0);
    json_t *slo;
    json_t *root = api(e, "checkout-logs", &slo);
    REQUIRE(slo != NULL);
    CHECK(win(slo, "5m", "total") == 3);
    CHECK(win(slo, "5m", "good") == 1);
    json_decref(root);
    slo_engine_stop_destroy(e);
    env_fini(&v, 1);
}

UNIT_TEST(api_without_data_reports_no_data_and_a_full_budget)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, NULL, 1);
    REQUIRE(e != NULL);
    /* not started: the document is still served (no lock, no thread) */
    json_t *slo;
    json_t *root = api(e, "checkout-availability", &slo);
    REQUIRE(slo != NULL);
    CHECK(win(slo, "5m", "total") == 0);
    /* no events burn no budget; with no burn there is no time to exhaustion */
    CHECK(json_real_value(json_object_get(slo, "budget_remaining")) == 1.0);
    CHECK(json_is_null(json_object_get(slo, "time_to_exhaustion_s")));
    CHECK_STR(json_string_value(json_object_get(slo, "state")), "no_data");
    CHECK_STR(json_string_value(json_object_get(slo, "alert_state")), "inactive");
    /* grouped SLOs have no instance before their first event */
    size_t n = json_array_size(json_object_get(root, "slos"));
    CHECK(n == 2);
    json_decref(root);
    slo_engine_stop_destroy(e);
    env_fini(&v, 1);
}

UNIT_TEST(state_saved_at_stop_is_restored_by_the_next_engine)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, NULL, 1);
    REQUIRE(e != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    REQUIRE(slo_engine_start(e, NULL, 0, &eb) == MT_OK);
    char s1[512], s2[512], s3[512], all[1600];
    snprintf(all, sizeof(all), "%s,%s,%s", span(s1, sizeof(s1), 1, "200", "/a"),
             span(s2, sizeof(s2), 2, "200", "/a"), span(s3, sizeof(s3), 1, "200", "/a"));
    REQUIRE(feed_spans("checkout", all) == 0);
    slo_engine_stop_destroy(e);
    char state[200];
    snprintf(state, sizeof(state), "%s/state/slo-state.bin", v.dir);
    CHECK(access(state, R_OK) == 0);
    env_fini(&v, 0);

    e = env_load(&v, SPEC, NULL, 0);
    REQUIRE(e != NULL);
    mt_errbuf_clear(&eb);
    REQUIRE(slo_engine_start(e, NULL, 0, &eb) == MT_OK);
    json_t *slo;
    json_t *root = api(e, "checkout-availability", &slo);
    REQUIRE(slo != NULL);
    CHECK(win(slo, "1h", "total") == 3);
    CHECK(win(slo, "1h", "good") == 2);
    json_decref(root);
    /* and it keeps counting on top */
    REQUIRE(feed_spans("checkout", span(s1, sizeof(s1), 1, "200", "/a")) == 0);
    root = api(e, "checkout-availability", &slo);
    REQUIRE(slo != NULL);
    CHECK(win(slo, "1h", "total") == 4);
    json_decref(root);
    slo_engine_stop_destroy(e);
    env_fini(&v, 1);
}

UNIT_TEST(corrupt_state_file_is_ignored)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, NULL, 1);
    REQUIRE(e != NULL);
    char p[200];
    snprintf(p, sizeof(p), "%s/state", v.dir);
    REQUIRE(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/state/slo-state.bin", v.dir);
    FILE *f = fopen(p, "w");
    REQUIRE(f != NULL);
    fputs("not a state file at all", f);
    fclose(f);
    int old = mt_log_level;
    mt_log_level = -1; /* the warning is expected */
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(slo_engine_start(e, NULL, 0, &eb) == MT_OK);
    mt_log_level = old;
    json_t *slo;
    json_t *root = api(e, "checkout-availability", &slo);
    CHECK(slo && win(slo, "1h", "total") == 0);
    json_decref(root);
    slo_engine_stop_destroy(e);
    env_fini(&v, 1);
}

UNIT_TEST(config_errors_carry_file_and_line)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, "  colour: blue\n", 1);
    CHECK(e == NULL);
    int found = 0;
    for (size_t i = 0; i < v.c.nerr; i++) {
        found |= strstr(v.c.errs[i], "meltp.yaml:5: slo.colour") != NULL;
    }
    CHECK(found);
    if (!found) {
        cfg_ctx_print(&v.c, stderr);
    }
    env_fini(&v, 1);

    e = env_load(&v,
                 "service: checkout\nslos:\n  - name: x\n    objective: 150\n"
                 "    sli: {spans: {type: errors}}\n",
                 NULL, 1);
    CHECK(e == NULL);
    found = 0;
    for (size_t i = 0; i < v.c.nerr; i++) {
        found |= strstr(v.c.errs[i], "spec.yaml:4:") != NULL;
    }
    CHECK(found);
    if (!found) {
        cfg_ctx_print(&v.c, stderr);
    }
    env_fini(&v, 1);
}

UNIT_TEST(unknown_exporter_for_series_fails_start)
{
    env_t v;
    slo_engine_t *e = env_load(&v, SPEC, "  exporters: [prometheusremotewrite/nowhere]\n", 1);
    REQUIRE(e != NULL);
    char *const *ids;
    REQUIRE(slo_engine_exporters(e, &ids) == 1);
    CHECK_STR(ids[0], "prometheusremotewrite/nowhere");
    slo_engine_stop_destroy(e);
    /* the service resolves the ids to queues before it starts the engine: a service without
     * that exporter refuses to start, naming it */
    char text[1024], path[160];
    snprintf(path, sizeof(path), "%s/svc.yaml", v.dir);
    snprintf(text, sizeof(text),
             "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n"
             "exporters:\n  debug:\n"
             "slo:\n  specs: [%s/spec.yaml]\n  state_dir: %s/state\n"
             "  exporters: [prometheusremotewrite/nowhere]\n"
             "service:\n  pipelines:\n    metrics:\n"
             "      receivers: [otlp]\n      exporters: [debug]\n",
             v.dir, v.dir);
    cfg_ctx_t c;
    cfg_ctx_init(&c, path);
    service_t *s = service_load(path, text, &c);
    if (!s) {
        cfg_ctx_print(&c, stderr);
    }
    REQUIRE(s != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(service_start(s, &eb) != MT_OK);
    CHECK_STR(eb.msg, "slo.exporters: \"prometheusremotewrite/nowhere\" is not an exporter of a "
                      "metrics pipeline");
    service_stop_destroy(s);
    cfg_ctx_fini(&c);
    env_fini(&v, 1);
}
