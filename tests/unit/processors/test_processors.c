/*
 * test_processors.c - tests for the processors in collector/processors (basic.c: batch,
 * memory_limiter, resource, attributes; normalize.c; validate.c; synthetic_guard.c), each built
 * through its registry descriptor from a YAML string (unit_proc.h) and run on a request written
 * as OTLP/JSON; the result is read back as OTLP/JSON.
 */
#include "unit.h"
#include "unit_proc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otlp.h"
#include "otlp_json.h"

/* Declared in service.c the same way: basic.c exposes them to the service only. */
void processor_batch_settings(const processor_t *p, batch_settings_t *bs);
int64_t processor_memory_limit_bytes(const processor_t *p);

#define ATTR(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"

/* One span named "GET /x" with the given resource and span attribute lists (JSON arrays). */
static char *traces_json(const char *res_attrs, const char *span_attrs)
{
    char *s = NULL;
    if (asprintf(&s,
                 "{\"resourceSpans\":[{\"resource\":{\"attributes\":[%s]},\"scopeSpans\":[{"
                 "\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
                 "\"spanId\":\"0102030405060708\",\"name\":\"GET /x\",\"kind\":2,"
                 "\"startTimeUnixNano\":\"1700000000000000000\","
                 "\"endTimeUnixNano\":\"1700000001000000000\",\"attributes\":[%s]}]}]}]}",
                 res_attrs, span_attrs) < 0) {
        return NULL;
    }
    return s;
}

/* Runs p on `json`; returns the output JSON (caller frees) and checks process returned MT_OK. */
static char *run_ok(processor_t *p, mt_signal_t s, const char *json, proc_result_t *r)
{
    int rc = MT_ERR;
    char *out = unit_proc_run(p, s, json, &rc, r);
    if (rc != MT_OK) {
        free(out);
        return NULL;
    }
    return out;
}

static int has_error_part(const cfg_ctx_t *c, const char *part)
{
    for (size_t i = 0; i < c->nerr; i++) {
        if (strstr(c->errs[i], part)) {
            return 1;
        }
    }
    fprintf(stderr, "    no error contains: %s\n    got:\n", part);
    cfg_ctx_print(c, stderr);
    return 0;
}

/* ---- batch, memory_limiter ------------------------------------------------------------ */

UNIT_TEST(batch_settings_come_from_the_config)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("batch",
                                      "send_batch_size: 100\nsend_batch_max_size: 500\n"
                                      "timeout: 2s\n",
                                      &c);
    REQUIRE(p != NULL);
    CHECK(p->ops->process == NULL); /* configures queues only */
    batch_settings_t bs;
    memset(&bs, 0, sizeof(bs));
    processor_batch_settings(p, &bs);
    CHECK(bs.enabled == 1);
    CHECK(bs.send_batch_size == 100);
    CHECK(bs.send_batch_max_size == 500);
    CHECK(bs.timeout_ms == 2000);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);

    p = unit_proc_create("batch", "", &c);
    REQUIRE(p != NULL);
    processor_batch_settings(p, &bs);
    CHECK(bs.send_batch_size == 8192 && bs.send_batch_max_size == 0 && bs.timeout_ms == 200);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(batch_max_below_size_is_an_error)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("batch",
                                      "send_batch_size: 100\n"
                                      "send_batch_max_size: 50\n",
                                      &c);
    CHECK(p == NULL);
    CHECK(has_error_part(&c, "proc.yaml:2: batch.send_batch_max_size: must be 0 or >= "
                             "send_batch_size"));
    cfg_ctx_fini(&c);
}

/* Found by tests/fuzz/fuzz_config.c: limits past int64_t once shifted to bytes (UB) and
 * percentages past 100 (overflow) were accepted. */
UNIT_TEST(memory_limiter_limits_that_overflow_bytes_are_errors)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("memory_limiter", "limit_mib: 9000000000000\n", &c);
    CHECK(p == NULL);
    unit_proc_destroy(p);
    CHECK(has_error_part(&c, "memory_limiter.limit_mib: must be at most 1099511627776"));
    cfg_ctx_fini(&c);

    p = unit_proc_create("memory_limiter",
                         "limit_percentage: 50\n"
                         "spike_limit_percentage: 100000000000\n",
                         &c);
    CHECK(p == NULL);
    unit_proc_destroy(p);
    CHECK(has_error_part(&c, "memory_limiter.spike_limit_percentage: must be 0..100"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(memory_limiter_limit_is_limit_minus_spike)
{
    cfg_ctx_t c;
    processor_t *p =
        unit_proc_create("memory_limiter", "limit_mib: 100\nspike_limit_mib: 20\n", &c);
    REQUIRE(p != NULL);
    CHECK(processor_memory_limit_bytes(p) == (int64_t)80 << 20);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);

    p = unit_proc_create("memory_limiter", "check_interval: 1s\n", &c);
    CHECK(p == NULL);
    CHECK(has_error_part(&c, "memory_limiter.limit_mib: one of limit_mib, limit_percentage must "
                             "be > 0"));
    cfg_ctx_fini(&c);

    p = unit_proc_create("memory_limiter", "limit_mib: 10\nspike_limit_mib: 10\n", &c);
    CHECK(p == NULL);
    CHECK(has_error_part(&c, "proc.yaml:2: memory_limiter.spike_limit_mib: must be >= 0 and below "
                             "limit_mib"));
    cfg_ctx_fini(&c);
}

/* ---- resource, attributes --------------------------------------------------------------- */

UNIT_TEST(resource_actions_insert_upsert_update_delete_hash)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("resource",
                                      "attributes:\n"
                                      "  - {key: service.name, action: insert, value: other}\n"
                                      "  - {key: team, action: upsert, value: core}\n"
                                      "  - {key: region, action: update, value: eu}\n"
                                      "  - {key: env, action: delete}\n"
                                      "  - {key: secret, action: hash}\n"
                                      "  - {key: replicas, action: insert, value: 3}\n",
                                      &c);
    cfg_ctx_print(&c, stderr);
    REQUIRE(p != NULL);
    char *in =
        traces_json(ATTR("service.name", "svc") "," ATTR("env", "dev") "," ATTR("secret", "abc"),
                    ATTR("k", "v"));
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_TRACES, in, &r);
    REQUIRE(out != NULL);
    /* insert keeps an existing value */
    CHECK(strstr(out, ATTR("service.name", "svc")) != NULL);
    CHECK(strstr(out, "\"other\"") == NULL);
    CHECK(strstr(out, ATTR("team", "core")) != NULL);
    /* update only changes what exists */
    CHECK(strstr(out, "region") == NULL);
    CHECK(strstr(out, "\"env\"") == NULL);
    /* sha256("abc") */
    CHECK(strstr(out, ATTR("secret",
                           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")) !=
          NULL);
    /* values that look like numbers become ints (JSON int64 is a string) */
    CHECK(strstr(out, "{\"key\":\"replicas\",\"value\":{\"intValue\":\"3\"}}") != NULL);
    /* span attributes are not the resource's */
    CHECK(strstr(out, ATTR("k", "v")) != NULL);
    CHECK(r.dropped == 0 && !r.reject);
    free(out);
    free(in);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(resource_from_attribute_copies_and_creates_missing_resource)
{
    cfg_ctx_t c;
    processor_t *p =
        unit_proc_create("resource",
                         "attributes:\n"
                         "  - {key: host.id, action: upsert, from_attribute: host.name}\n"
                         "  - {key: collector, action: insert, value: meltp}\n",
                         &c);
    REQUIRE(p != NULL);
    char *in = traces_json(ATTR("host.name", "h1"), "");
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_TRACES, in, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, ATTR("host.id", "h1")) != NULL);
    CHECK(strstr(out, ATTR("host.name", "h1")) != NULL);
    free(out);
    /* a resource without attributes (or none at all) gets one */
    const char *logs = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
                       "{\"stringValue\":\"hi\"}}]}]}]}";
    out = run_ok(p, MT_SIG_LOGS, logs, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, "\"resource\":{\"attributes\":[" ATTR("collector", "meltp") "]") != NULL);
    CHECK(strstr(out, "host.id") == NULL); /* from_attribute missing: skipped */
    free(out);
    free(in);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(attributes_act_on_spans_logs_and_points_not_resources)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("attributes",
                                      "actions:\n"
                                      "  - {key: password, action: delete}\n"
                                      "  - {key: checked, action: upsert, value: true}\n",
                                      &c);
    REQUIRE(p != NULL);
    char *in = traces_json(ATTR("password", "r"), ATTR("password", "s") "," ATTR("a", "b"));
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_TRACES, in, &r);
    REQUIRE(out != NULL);
    /* the resource keeps its attribute; the span loses it and gains a bool */
    CHECK(strstr(out, ATTR("password", "r")) != NULL);
    CHECK(strstr(out, ATTR("password", "s")) == NULL);
    CHECK(
        strstr(out, "[" ATTR("a", "b") ",{\"key\":\"checked\",\"value\":{\"boolValue\":true}}]") !=
        NULL);
    free(out);
    free(in);

    const char *metrics =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"gauge\":{"
        "\"dataPoints\":[{\"asDouble\":1,\"attributes\":[" ATTR("password", "p") "]}]}}]}]}]}";
    out = run_ok(p, MT_SIG_METRICS, metrics, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, "password") == NULL);
    CHECK(strstr(out, "\"checked\"") != NULL);
    free(out);

    const char *logs = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"attributes\":[" ATTR(
        "password", "p") "]}]}]}]}";
    out = run_ok(p, MT_SIG_LOGS, logs, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, "password") == NULL);
    CHECK(strstr(out, "\"checked\"") != NULL);
    free(out);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(action_config_errors_name_the_entry)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("attributes",
                                      "actions:\n"                           /* 1 */
                                      "  - key: a\n"                         /* 2 */
                                      "    action: frob\n"                   /* 3 */
                                      "  - {key: b, action: insert}\n"       /* 4 */
                                      "  - {action: delete, colour: red}\n", /* 5 */
                                      &c);
    CHECK(p == NULL);
    CHECK(has_error_part(&c, "proc.yaml:3: attributes.actions[0].action: \"frob\" is not one of "
                             "insert, update, upsert, delete, hash"));
    CHECK(has_error_part(&c, "proc.yaml:4: attributes.actions[1]: action insert needs value or "
                             "from_attribute"));
    CHECK(has_error_part(&c, "attributes.actions[2].colour: unknown key"));
    CHECK(has_error_part(&c, "attributes.actions[2].key: required"));
    cfg_ctx_fini(&c);

    p = unit_proc_create("resource", "", &c);
    CHECK(p == NULL);
    CHECK(c.nerr >= 1); /* attributes is required */
    cfg_ctx_fini(&c);
}

/* ---- normalize -------------------------------------------------------------------------- */

UNIT_TEST(normalize_renames_old_names_and_current_name_wins)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("normalize", "renames:\n  app.old: app.new\n", &c);
    cfg_ctx_print(&c, stderr);
    REQUIRE(p != NULL);
    char *in =
        traces_json(ATTR("deployment.environment", "prod"),
                    ATTR("http.method", "GET") "," ATTR("app.old", "x") "," ATTR(
                        "http.status_code", "old") "," ATTR("http.response.status_code", "new"));
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_TRACES, in, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, ATTR("deployment.environment.name", "prod")) != NULL);
    CHECK(strstr(out, "\"deployment.environment\"") == NULL);
    CHECK(strstr(out, ATTR("http.request.method", "GET")) != NULL);
    CHECK(strstr(out, "\"http.method\"") == NULL);
    CHECK(strstr(out, ATTR("app.new", "x")) != NULL);
    /* both spellings present: the current one is kept, the old one removed */
    CHECK(strstr(out, ATTR("http.response.status_code", "new")) != NULL);
    CHECK(strstr(out, "\"old\"") == NULL);
    free(out);
    free(in);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(normalize_without_default_renames_keeps_old_names)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("normalize", "default_renames: false\n", &c);
    REQUIRE(p != NULL);
    char *in = traces_json("", ATTR("http.method", "GET"));
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_TRACES, in, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, ATTR("http.method", "GET")) != NULL);
    free(out);
    free(in);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(normalize_rename_chain_is_a_config_error)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("normalize", "renames:\n  a: b\n  b: c\n", &c);
    CHECK(p == NULL);
    CHECK(has_error_part(&c, "normalize.renames.b: \"b\" is itself renamed to \"c\": rename "
                             "chains are not allowed"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(normalize_defaults_only_fill_missing_resource_attributes)
{
    cfg_ctx_t c;
    processor_t *p =
        unit_proc_create("normalize", "service_name: fallback\nenvironment: dev\n", &c);
    REQUIRE(p != NULL);
    const char *two = "{\"resourceSpans\":["
                      "{\"resource\":{\"attributes\":[" ATTR(
                          "service.name", "mine") "]},\"scopeSpans\":[]},"
                                                  "{\"resource\":{\"attributes\":[" ATTR(
                                                      "deployment.environment.name",
                                                      "prod") "]},"
                                                              "\"scopeSpans\":[]}]}";
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_TRACES, two, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, ATTR("service.name", "mine")) != NULL);
    CHECK(strstr(out, ATTR("service.name", "fallback")) != NULL);
    CHECK(strstr(out, ATTR("deployment.environment.name", "prod")) != NULL);
    CHECK(strstr(out, ATTR("deployment.environment.name", "dev")) != NULL);
    /* exactly one of each per resource */
    const char *second = strstr(out, "},{\"resource\"");
    REQUIRE(second != NULL);
    CHECK(strstr(second, "fallback") != NULL && strstr(second, "mine") == NULL);
    CHECK(strstr(second, "\"dev\"") == NULL);
    free(out);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(normalize_units_and_value_truncation)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("normalize", "max_value_length: 4\n", &c);
    REQUIRE(p != NULL);
    /* "ab\u00e9cd": a 2-byte character straddles the 4-byte limit and must not be split */
    const char *metrics =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"d\",\"unit\":\"seconds\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1,"
        "\"attributes\":[" ATTR("path", "ab\u00e9cd") "," ATTR(
            "x", "abcdef") "]}]}},"
                           "{\"name\":\"b\",\"unit\":\"bytes\",\"gauge\":{\"dataPoints\":[{"
                           "\"asInt\":\"1\"}]}},"
                           "{\"name\":\"k\",\"unit\":\"{requests}\",\"gauge\":{\"dataPoints\":[{"
                           "\"asInt\":\"1\"}]}}"
                           "]}]}]}";
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_METRICS, metrics, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, "\"unit\":\"s\"") != NULL);
    CHECK(strstr(out, "\"unit\":\"By\"") != NULL);
    CHECK(strstr(out, "\"unit\":\"{requests}\"") != NULL);
    CHECK(strstr(out, ATTR("x", "abcd")) != NULL);
    CHECK(strstr(out, ATTR("path", "ab\xc3\xa9")) != NULL);
    free(out);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(normalize_flags_future_timestamps)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("normalize",
                                      "timestamps:\n  max_future: 1h\n"
                                      "  action: flag\n",
                                      &c);
    REQUIRE(p != NULL);
    /* year 2100 */
    const char *logs =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
        "{\"timeUnixNano\":\"4102444800000000000\",\"body\":{\"stringValue\":\"late\"}},"
        "{\"timeUnixNano\":\"1700000000000000000\",\"body\":{\"stringValue\":\"ok\"}}]}]}]}";
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_LOGS, logs, &r);
    REQUIRE(out != NULL);
    const char *flag = strstr(out, ATTR("otel.timestamp.out_of_range", "future"));
    CHECK(flag != NULL);
    /* only the first record is flagged, and its time is left as it was */
    CHECK(flag && strstr(flag + strlen(ATTR("otel.timestamp.out_of_range", "future")),
                         "out_of_range") == NULL);
    CHECK(flag && strstr(flag, "\"ok\"") != NULL);
    CHECK(strstr(out, "4102444800000000000") != NULL);
    free(out);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

/* ---- synthetic_guard -------------------------------------------------------------------- */

/* Packs a JSON request to protobuf (for inspect); returns malloc'd bytes. */
static uint8_t *pack_json(mt_signal_t s, const char *json, size_t *len)
{
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m = otlp_json_decode(otlp_request_desc(s), json, strlen(json), a, &eb);
    uint8_t *pb = NULL;
    if (m) {
        *len = protobuf_c_message_get_packed_size(m);
        pb = malloc(*len ? *len : 1);
        protobuf_c_message_pack(m, pb);
    }
    arena_destroy(a);
    return pb;
}

UNIT_TEST(guard_redacts_email_and_inspect_tells_clean_from_dirty)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("synthetic_guard", "detectors: [email]\n", &c);
    cfg_ctx_print(&c, stderr);
    REQUIRE(p != NULL);
    REQUIRE(p->ops->inspect != NULL);
    char *dirty = traces_json("", ATTR("user", "write to jane.doe@mailbox.io now"));
    char *clean = traces_json("", ATTR("user", "nobody here"));
    size_t dl = 0, cl = 0;
    uint8_t *dpb = pack_json(MT_SIG_TRACES, dirty, &dl);
    uint8_t *cpb = pack_json(MT_SIG_TRACES, clean, &cl);
    REQUIRE(dpb && cpb);
    CHECK(p->ops->inspect(p, MT_SIG_TRACES, dpb, dl) != 0);
    CHECK(p->ops->inspect(p, MT_SIG_TRACES, cpb, cl) == 0);
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_TRACES, dirty, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, "jane.doe@mailbox.io") == NULL);
    CHECK(strstr(out, "write to ") != NULL && strstr(out, " now\"") != NULL);
    CHECK(r.dropped == 0);
    free(out);
    out = run_ok(p, MT_SIG_TRACES, clean, &r);
    REQUIRE(out != NULL);
    CHECK(strstr(out, ATTR("user", "nobody here")) != NULL);
    free(out);
    free(dpb);
    free(cpb);
    free(dirty);
    free(clean);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(guard_drop_action_removes_the_item_and_reports_it)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("synthetic_guard", "detectors: [email]\naction: drop\n", &c);
    REQUIRE(p != NULL);
    const char *logs = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                       "{\"body\":{\"stringValue\":\"mail bob@corp-mail.de\"}},"
                       "{\"body\":{\"stringValue\":\"fine\"}},"
                       /* documentation domains are synthetic by definition: never a finding */
                       "{\"body\":{\"stringValue\":\"mail test@example.com\"}}]}]}]}";
    proc_result_t r;
    char *out = run_ok(p, MT_SIG_LOGS, logs, &r);
    REQUIRE(out != NULL);
    CHECK(r.dropped == 1);
    CHECK(!r.reject);
    CHECK(strstr(r.msg, "synthetic_guard: 1 items dropped") != NULL);
    CHECK(strstr(out, "bob@corp-mail.de") == NULL);
    CHECK(strstr(out, "\"fine\"") != NULL);
    CHECK(strstr(out, "test@example.com") != NULL);
    free(out);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
}

UNIT_TEST(guard_unknown_detector_action_is_an_error)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("synthetic_guard", "detector_actions:\n  email: shred\n", &c);
    CHECK(p == NULL);
    CHECK(has_error_part(&c, "\"shred\" is not one of redact, hash, drop, flag"));
    cfg_ctx_fini(&c);
}

/* ---- validate ----------------------------------------------------------------------------- */

static int write_schema(char *path, size_t n, const char *text)
{
    snprintf(path, n, "/tmp/meltp-unit-schema-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok ? 0 : -1;
}

UNIT_TEST(validate_rejects_drops_and_tags_by_schema)
{
    char path[64], yaml[128];
    REQUIRE(write_schema(path, sizeof(path),
                         "version: 1\n"
                         "resource:\n"
                         "  - name: needs-service\n"
                         "    required: [service.name]\n"
                         "    action: reject\n"
                         "    message: service.name is required\n"
                         "traces:\n"
                         "  - name: no-debug-spans\n"
                         "    match: '^debug'\n"
                         "    name_max_length: 1\n"
                         "    action: drop\n"
                         "  - name: method-required\n"
                         "    required: [http.request.method]\n"
                         "    action: tag\n") == 0);
    snprintf(yaml, sizeof(yaml), "schema_file: %s\n", path);
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("validate", yaml, &c);
    cfg_ctx_print(&c, stderr);
    REQUIRE(p != NULL);
    proc_result_t r;
    int rc = MT_ERR;

    char *in = traces_json("", "");
    char *out = unit_proc_run(p, MT_SIG_TRACES, in, &rc, &r);
    CHECK(rc == MT_OK);
    CHECK(r.reject == 1);
    CHECK_STR(r.msg, "service.name is required (rule needs-service: missing required attribute "
                     "service.name)");
    free(out);
    free(in);

    in = traces_json(ATTR("service.name", "s"), "");
    out = run_ok(p, MT_SIG_TRACES, in, &r);
    REQUIRE(out != NULL);
    CHECK(!r.reject && r.dropped == 0);
    CHECK(strstr(out, ATTR("otel.schema.violation", "method-required")) != NULL);
    free(out);
    free(in);

    const char *debug_span = "{\"resourceSpans\":[{\"resource\":{\"attributes\":[" ATTR(
        "service.name",
        "s") "]},"
             "\"scopeSpans\":[{\"spans\":["
             "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\","
             "\"name\":\"debug-thing\",\"attributes\":[" ATTR(
                 "http.request.method", "GET") "]},"
                                               "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
                                               "\"spanId\":\"0102030405060709\","
                                               "\"name\":\"work\",\"attributes\":[" ATTR(
                                                   "http.request.method", "GET") "]}]}]}]}";
    out = run_ok(p, MT_SIG_TRACES, debug_span, &r);
    REQUIRE(out != NULL);
    CHECK(r.dropped == 1 && !r.reject);
    CHECK(strstr(out, "debug-thing") == NULL);
    CHECK(strstr(out, "\"work\"") != NULL);
    free(out);
    unit_proc_destroy(p);
    cfg_ctx_fini(&c);
    unlink(path);
}

UNIT_TEST(validate_missing_schema_file_is_a_config_error)
{
    cfg_ctx_t c;
    processor_t *p = unit_proc_create("validate", "schema_file: /nonexistent/schema.yaml\n", &c);
    CHECK(p == NULL);
    CHECK(c.nerr >= 1);
    cfg_ctx_fini(&c);
    p = unit_proc_create("validate", "", &c);
    CHECK(p == NULL);
    CHECK(has_error_part(&c, "validate.schema_file"));
    cfg_ctx_fini(&c);
}
