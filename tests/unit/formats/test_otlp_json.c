/*
 * test_otlp_json.c - tests for collector/formats/otlp_json.c: protobuf -> JSON -> protobuf round
 * trips over the recorded JavaScript-SDK fixtures, item counts of the JSON fixtures against
 * MANIFEST.json, the OTLP/JSON mapping rules, error paths, and that hostile input fails
 * cleanly (run under ASan+UBSan too).
 */
#include "unit.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "mt.h"
#include "otlp_collector.pb-c.h"
#include "otlp_json.h"

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest traces_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest metrics_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest logs_req_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint ndp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hdp_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyvalue_t;

#define TRACES_DESC (&opentelemetry__proto__collector__v1__export_trace_service_request__descriptor)
#define METRICS_DESC \
    (&opentelemetry__proto__collector__v1__export_metrics_service_request__descriptor)
#define LOGS_DESC (&opentelemetry__proto__collector__v1__export_logs_service_request__descriptor)

/* The request descriptor for a fixture, from the signal its file name starts with. */
static const ProtobufCMessageDescriptor *desc_for_file(const char *base)
{
    if (strncmp(base, "traces", 6) == 0) {
        return TRACES_DESC;
    }
    if (strncmp(base, "metrics", 7) == 0) {
        return METRICS_DESC;
    }
    if (strncmp(base, "logs", 4) == 0) {
        return LOGS_DESC;
    }
    return NULL;
}

/* Spans, metric data points or log records in a request. */
static size_t count_items(const ProtobufCMessage *m)
{
    size_t n = 0;
    if (m->descriptor == TRACES_DESC) {
        const traces_req_t *r = (const traces_req_t *)m;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                n += r->resource_spans[i]->scope_spans[j]->n_spans;
            }
        }
    } else if (m->descriptor == LOGS_DESC) {
        const logs_req_t *r = (const logs_req_t *)m;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
                n += r->resource_logs[i]->scope_logs[j]->n_log_records;
            }
        }
    } else if (m->descriptor == METRICS_DESC) {
        const metrics_req_t *r = (const metrics_req_t *)m;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                    r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    const metric_t *mt = sm->metrics[k];
                    switch (mt->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        n += mt->gauge->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        n += mt->sum->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        n += mt->histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        n += mt->exponential_histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        n += mt->summary->n_data_points;
                        break;
                    default:
                        break;
                    }
                }
            }
        }
    }
    return n;
}

/* Packs into malloc'd memory (caller frees). */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len ? *len : 1);
    if (p) {
        protobuf_c_message_pack(m, p);
    }
    return p;
}

/* Decodes `json` as `desc`; returns NULL and copies the error into err. */
static ProtobufCMessage *dec(const ProtobufCMessageDescriptor *desc, const char *json, arena_t *a,
                             char *err, size_t errcap)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m = otlp_json_decode(desc, json, strlen(json), a, &eb);
    snprintf(err, errcap, "%s", eb.msg);
    if (!m && !eb.set) {
        snprintf(err, errcap, "(no error message)");
    }
    return m;
}

/* Decodes then encodes; returns the malloc'd JSON or NULL. */
static char *reencode(const ProtobufCMessageDescriptor *desc, const char *json)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    ProtobufCMessage *m = dec(desc, json, a, err, sizeof(err));
    char *out = NULL;
    if (m) {
        out = otlp_json_encode(m, NULL);
    } else {
        fprintf(stderr, "    decode failed: %s\n", err);
    }
    arena_destroy(a);
    return out;
}

/* Every non-gzip protobuf fixture: unpack, encode as JSON, decode, pack, and the bytes must
 * equal a re-pack of the original. Encoding the decoded copy must give the same JSON. */
UNIT_TEST(fixture_proto_roundtrip)
{
    char dirpath[1024];
    snprintf(dirpath, sizeof(dirpath), "%s/otlp-js", unit_fixtures_dir());
    DIR *top = opendir(dirpath);
    REQUIRE(top != NULL);
    int files = 0;
    struct dirent *de;
    while ((de = readdir(top)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char sub[1280];
        snprintf(sub, sizeof(sub), "%s/%s", dirpath, de->d_name);
        DIR *d = opendir(sub);
        if (!d) {
            continue;
        }
        struct dirent *fe;
        while ((fe = readdir(d)) != NULL) {
            const char *nm = fe->d_name;
            size_t nl = strlen(nm);
            if (!strstr(nm, "-proto-") || strstr(nm, "gzip") || nl < 4 ||
                strcmp(nm + nl - 4, ".bin") != 0) {
                continue;
            }
            const ProtobufCMessageDescriptor *desc = desc_for_file(nm);
            CHECK(desc != NULL);
            if (!desc) {
                continue;
            }
            char path[1600];
            snprintf(path, sizeof(path), "%s/%s", sub, nm);
            size_t len;
            unsigned char *buf = unit_read_file(path, &len);
            CHECK(buf != NULL);
            if (!buf) {
                continue;
            }
            ProtobufCMessage *orig = protobuf_c_message_unpack(desc, NULL, len, buf);
            CHECK(orig != NULL);
            if (orig) {
                CHECK(otlp_validate_utf8(orig, NULL) == MT_OK);
                size_t jlen = 0;
                char *json = otlp_json_encode(orig, &jlen);
                CHECK(json != NULL && strlen(json) == jlen);
                CHECK(json && !strchr(json, '\n'));
                arena_t *a = arena_create(1 << 16, 0);
                mt_errbuf_t eb;
                mt_errbuf_clear(&eb);
                ProtobufCMessage *back = json ? otlp_json_decode(desc, json, jlen, a, &eb) : NULL;
                if (!back) {
                    fprintf(stderr, "    %s: %s\n", path, eb.msg);
                }
                CHECK(back != NULL);
                if (back) {
                    size_t l1, l2;
                    uint8_t *p1 = pack(orig, &l1), *p2 = pack(back, &l2);
                    CHECK(l1 == l2 && memcmp(p1, p2, l1) == 0);
                    if (l1 != l2 || memcmp(p1, p2, l1) != 0) {
                        fprintf(stderr, "    %s: round trip differs\n", path);
                    }
                    CHECK(count_items(orig) == count_items(back));
                    char *json2 = otlp_json_encode(back, NULL);
                    CHECK(json2 && strcmp(json, json2) == 0);
                    free(json2);
                    free(p1);
                    free(p2);
                }
                arena_destroy(a);
                free(json);
                protobuf_c_message_free_unpacked(orig, NULL);
            }
            free(buf);
            files++;
        }
        closedir(d);
    }
    closedir(top);
    CHECK(files >= 7);
}

/* Every non-gzip JSON fixture decodes and holds MANIFEST.json's item count; re-encoding
 * and decoding again gives the same protobuf bytes. */
UNIT_TEST(fixture_json_counts)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/MANIFEST.json", unit_fixtures_dir());
    json_error_t jerr;
    json_t *man = json_load_file(path, 0, &jerr);
    REQUIRE(man != NULL);
    json_t *files = json_object_get(man, "files");
    REQUIRE(json_is_array(files));
    int checked = 0;
    size_t i;
    json_t *e;
    json_array_foreach(files, i, e)
    {
        const char *file = json_string_value(json_object_get(e, "file"));
        const char *fmt = json_string_value(json_object_get(e, "format"));
        if (!file || !fmt || strcmp(fmt, "json") != 0 || strstr(file, "gzip") ||
            !json_is_null(json_object_get(e, "content_encoding"))) {
            continue;
        }
        const char *base = strrchr(file, '/');
        const ProtobufCMessageDescriptor *desc = desc_for_file(base ? base + 1 : file);
        CHECK(desc != NULL);
        if (!desc) {
            continue;
        }
        char fp[1280];
        snprintf(fp, sizeof(fp), "%s/otlp-js/%s", unit_fixtures_dir(), file);
        size_t len;
        unsigned char *buf = unit_read_file(fp, &len);
        CHECK(buf != NULL);
        if (!buf) {
            continue;
        }
        arena_t *a = arena_create(1 << 16, 0);
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        ProtobufCMessage *m = otlp_json_decode(desc, (const char *)buf, len, a, &eb);
        if (!m) {
            fprintf(stderr, "    %s: %s\n", file, eb.msg);
        }
        CHECK(m != NULL);
        if (m) {
            size_t want = (size_t)json_integer_value(json_object_get(e, "items"));
            CHECK(count_items(m) == want);
            if (count_items(m) != want) {
                fprintf(stderr, "    %s: %zu items, manifest says %zu\n", file, count_items(m),
                        want);
            }
            size_t jlen;
            char *json = otlp_json_encode(m, &jlen);
            CHECK(json != NULL);
            ProtobufCMessage *m2 = json ? otlp_json_decode(desc, json, jlen, a, &eb) : NULL;
            CHECK(m2 != NULL);
            if (m2) {
                size_t l1, l2;
                uint8_t *p1 = pack(m, &l1), *p2 = pack(m2, &l2);
                CHECK(l1 == l2 && memcmp(p1, p2, l1) == 0);
                free(p1);
                free(p2);
            }
            free(json);
        }
        arena_destroy(a);
        free(buf);
        checked++;
    }
    json_decref(man);
    CHECK(checked >= 7);
}

/* Exact output for a small span: key order, camelCase, hex ids, 64-bit strings, enums as
 * integers, defaults omitted. */
UNIT_TEST(encode_exact_shape)
{
    const char *in =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"GET /\",\"kind\":2,"
        "\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\","
        "\"parentSpanId\":\"\",\"startTimeUnixNano\":1544712660000000000,"
        "\"endTimeUnixNano\":\"1544712661000000000\",\"droppedAttributesCount\":0,"
        "\"attributes\":[{\"key\":\"a\",\"value\":{\"stringValue\":\"\"}},"
        "{\"key\":\"b\",\"value\":{\"intValue\":0}},"
        "{\"key\":\"c\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"d\",\"value\":{\"bytesValue\":\"aGk=\"}}],"
        "\"status\":{\"code\":2,\"message\":\"x\\\"y\\n\"}}]}]}]}";
    const char *want =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
        "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
        "\"name\":\"GET /\",\"kind\":2,\"startTimeUnixNano\":\"1544712660000000000\","
        "\"endTimeUnixNano\":\"1544712661000000000\","
        "\"attributes\":[{\"key\":\"a\",\"value\":{\"stringValue\":\"\"}},"
        "{\"key\":\"b\",\"value\":{\"intValue\":\"0\"}},"
        "{\"key\":\"c\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"d\",\"value\":{\"bytesValue\":\"aGk=\"}}],"
        "\"status\":{\"message\":\"x\\\"y\\n\",\"code\":2}}]}]}]}";
    char *out = reencode(TRACES_DESC, in);
    CHECK_STR(out, want);
    free(out);
}

UNIT_TEST(hex_ids_case_insensitive)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    const char *up =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
        "\"traceId\":\"0AFF00000000000000000000000000Bc\",\"spanId\":\"DEADbeef00000001\"}]}]}]}";
    traces_req_t *r = (traces_req_t *)dec(TRACES_DESC, up, a, err, sizeof(err));
    REQUIRE(r != NULL);
    span_t *s = r->resource_spans[0]->scope_spans[0]->spans[0];
    CHECK(s->trace_id.len == 16 && s->trace_id.data[0] == 0x0a && s->trace_id.data[1] == 0xff &&
          s->trace_id.data[15] == 0xbc);
    CHECK(s->span_id.len == 8 && s->span_id.data[0] == 0xde && s->span_id.data[7] == 0x01);
    char *out = otlp_json_encode(&r->base, NULL);
    CHECK(out && strstr(out, "\"traceId\":\"0aff00000000000000000000000000bc\""));
    CHECK(out && strstr(out, "\"spanId\":\"deadbeef00000001\""));
    free(out);
    arena_destroy(a);
}

UNIT_TEST(int64_as_number_and_string)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    const char *in = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                     "{\"timeUnixNano\":\"18446744073709551615\",\"observedTimeUnixNano\":42,"
                     "\"severityNumber\":\"9\",\"flags\":\"1\",\"droppedAttributesCount\":3.0,"
                     "\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":-5}},"
                     "{\"key\":\"s\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
                     "{\"key\":\"m\",\"value\":{\"intValue\":9223372036854775807}}]}]}]}]}";
    logs_req_t *r = (logs_req_t *)dec(LOGS_DESC, in, a, err, sizeof(err));
    REQUIRE(r != NULL);
    Opentelemetry__Proto__Logs__V1__LogRecord *lr =
        r->resource_logs[0]->scope_logs[0]->log_records[0];
    CHECK(lr->time_unix_nano == UINT64_MAX);
    CHECK(lr->observed_time_unix_nano == 42);
    CHECK(lr->severity_number == 9);
    CHECK(lr->flags == 1);
    CHECK(lr->dropped_attributes_count == 3);
    REQUIRE(lr->n_attributes == 3);
    CHECK(lr->attributes[0]->value->int_value == -5);
    CHECK(lr->attributes[1]->value->int_value == INT64_MIN);
    CHECK(lr->attributes[2]->value->int_value == INT64_MAX);
    char *out = otlp_json_encode(&r->base, NULL);
    CHECK(out && strstr(out, "\"timeUnixNano\":\"18446744073709551615\""));
    CHECK(out && strstr(out, "\"intValue\":\"-9223372036854775808\""));
    CHECK(out && strstr(out, "\"severityNumber\":9,"));
    CHECK(out && strstr(out, "\"droppedAttributesCount\":3,"));
    free(out);

    /* Out of range, fractions, signs and junk are errors naming the field. */
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":"
         "\"18446744073709551616\"}]}]}]}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: integer out of range"},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"-1\"}]}]}]}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: integer out of range"},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":1.5}]}]}]}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: not an integer"},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"12x\"}]}]}]}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: not an integer"},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"flags\":4294967296}]}]}]}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].flags: integer out of range"},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"droppedAttributesCount\":-1}]}]}]"
         "}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].droppedAttributesCount: integer out of range"},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":2147483648}]}]}]"
         "}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber: integer out of range"},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":\"NOPE\"}]}]}]}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber: unknown enum value \"NOPE\""},
        {"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":\"\"}}]}]}]}",
         "resourceLogs[0].scopeLogs[0].logRecords[0].body.intValue: not an integer"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        CHECK(dec(LOGS_DESC, bad[i].json, a, err, sizeof(err)) == NULL);
        CHECK_STR(err, bad[i].err);
    }
    arena_destroy(a);
}

UNIT_TEST(enum_names_and_snake_case_keys)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    const char *in =
        "{\"resource_spans\":[{\"schema_url\":\"u\",\"scope_spans\":[{\"spans\":[{"
        "\"trace_id\":\"00000000000000000000000000000001\",\"parent_span_id\":\"0000000000000002\","
        "\"start_time_unix_nano\":\"7\",\"kind\":\"SPAN_KIND_CLIENT\","
        "\"dropped_attributes_count\":4,\"trace_state\":\"ts\"}]}]}]}";
    traces_req_t *r = (traces_req_t *)dec(TRACES_DESC, in, a, err, sizeof(err));
    REQUIRE(r != NULL);
    CHECK_STR(r->resource_spans[0]->schema_url, "u");
    span_t *s = r->resource_spans[0]->scope_spans[0]->spans[0];
    CHECK(s->trace_id.len == 16 && s->trace_id.data[15] == 1);
    CHECK(s->parent_span_id.len == 8 && s->parent_span_id.data[7] == 2);
    CHECK(s->start_time_unix_nano == 7);
    CHECK(s->kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
    CHECK(s->dropped_attributes_count == 4);
    CHECK_STR(s->trace_state, "ts");
    char *out = otlp_json_encode(&r->base, NULL);
    CHECK_STR(out, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
                   "\"traceId\":\"00000000000000000000000000000001\",\"traceState\":\"ts\","
                   "\"parentSpanId\":\"0000000000000002\",\"kind\":3,\"startTimeUnixNano\":\"7\","
                   "\"droppedAttributesCount\":4}]}],\"schemaUrl\":\"u\"}]}");
    free(out);
    arena_destroy(a);
}

UNIT_TEST(unknown_keys_and_nulls_ignored)
{
    const char *in = "{\"zzz\":{\"deep\":[1,2,{\"x\":null}]},\"resourceSpans\":[{\"foo\":1,"
                     "\"resource\":null,\"scopeSpans\":[{\"scope\":{\"name\":\"s\",\"extra\":[]},"
                     "\"spans\":null,\"spanz\":[{}]}]}],\"partialSuccess\":{}}";
    char *out = reencode(TRACES_DESC, in);
    CHECK_STR(out, "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":{\"name\":\"s\"}}]}]}");
    free(out);
    char *empty = reencode(LOGS_DESC, "{\"resourceLogs\":null}");
    CHECK_STR(empty, "{}");
    free(empty);
    char *empty2 = reencode(LOGS_DESC, "  {}  ");
    CHECK_STR(empty2, "{}");
    free(empty2);
}

UNIT_TEST(anyvalue_shapes_and_base64)
{
    const char *in = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{"
                     "\"kvlistValue\":{\"values\":["
                     "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":"
                     "\"\\u00e9\\ud83d\\ude00\"},"
                     "{\"doubleValue\":1.5},{\"boolValue\":true},{\"intValue\":\"12\"},{}]}}},"
                     "{\"key\":\"b1\",\"value\":{\"bytesValue\":\"aGk\"}},"
                     "{\"key\":\"b2\",\"value\":{\"bytesValue\":\"-_8=\"}},"
                     "{\"key\":\"b3\",\"value\":{\"bytesValue\":\"\"}}]}}}]}]}]}";
    const char *want = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{"
                       "\"kvlistValue\":{\"values\":["
                       "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":"
                       "\"\xc3\xa9\xf0\x9f\x98\x80\"},"
                       "{\"doubleValue\":1.5},{\"boolValue\":true},{\"intValue\":\"12\"},{}]}}},"
                       "{\"key\":\"b1\",\"value\":{\"bytesValue\":\"aGk=\"}},"
                       "{\"key\":\"b2\",\"value\":{\"bytesValue\":\"+/8=\"}},"
                       "{\"key\":\"b3\",\"value\":{\"bytesValue\":\"\"}}]}}}]}]}]}";
    char *out = reencode(LOGS_DESC, in);
    CHECK_STR(out, want);
    free(out);

    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    CHECK(dec(LOGS_DESC,
              "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
              "{\"bytesValue\":\"a\"}}]}]}]}",
              a, err, sizeof(err)) == NULL);
    CHECK_STR(err, "resourceLogs[0].scopeLogs[0].logRecords[0].body.bytesValue: "
                   "invalid base64 (length 1)");
    CHECK(dec(LOGS_DESC,
              "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
              "{\"bytesValue\":\"ab!d\"}}]}]}]}",
              a, err, sizeof(err)) == NULL);
    CHECK_STR(err, "resourceLogs[0].scopeLogs[0].logRecords[0].body.bytesValue: "
                   "invalid base64 (bad character at 2)");
    arena_destroy(a);
}

UNIT_TEST(error_paths)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{},{},"
         "{\"traceId\":\"0123456789abcdef0123456789abcde\"}]}]}]}",
         "resourceSpans[0].scopeSpans[0].spans[3].traceId: invalid hex id (length 31)"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":\"00000000000000zz\"}]}]}]}",
         "resourceSpans[0].scopeSpans[0].spans[0].spanId: invalid hex id (non-hex character at "
         "14)"},
        {"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"a\"},{\"key\":\"b\"},"
         "{\"key\":\"c\",\"value\":{\"intValue\":true}}]}}]}",
         "resourceSpans[0].resource.attributes[2].value.intValue: expected integer or string"},
        {"{\"resourceSpans\":{}}", "resourceSpans: expected array"},
        {"{\"resourceSpans\":[[]]}", "resourceSpans[0]: expected object"},
        {"{\"resourceSpans\":[null]}", "resourceSpans[0]: expected object"},
        {"{\"resourceSpans\":[{\"schemaUrl\":5}]}", "resourceSpans[0].schemaUrl: expected string"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"status\":\"ok\"}]}]}]}",
         "resourceSpans[0].scopeSpans[0].spans[0].status: expected object"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"value\":"
         "{\"boolValue\":1}}]}]}]}]}",
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.boolValue: expected boolean"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"value\":"
         "{\"doubleValue\":\"abc\"}}]}]}]}]}",
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.doubleValue: invalid number"},
        {"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"value\":"
         "{\"doubleValue\":[]}}]}]}]}]}",
         "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.doubleValue: "
         "expected number or string"},
        {"[]", "(root): expected object"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        CHECK(dec(TRACES_DESC, bad[i].json, a, err, sizeof(err)) == NULL);
        CHECK_STR(err, bad[i].err);
    }
    /* Repeated scalar elements carry their index. */
    CHECK(dec(METRICS_DESC,
              "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":"
              "{\"dataPoints\":[{\"bucketCounts\":[\"1\",2,\"x\"]}]}}]}]}]}",
              a, err, sizeof(err)) == NULL);
    CHECK_STR(err, "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0]."
                   "bucketCounts[2]: not an integer");
    arena_destroy(a);
}

UNIT_TEST(invalid_json)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    CHECK(dec(TRACES_DESC, "{\"resourceSpans\":[}", a, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "invalid JSON at line 1 column", 29) == 0);
    CHECK(dec(TRACES_DESC, "", a, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "invalid JSON", 12) == 0);
    CHECK(dec(TRACES_DESC, "\"str\"", a, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "invalid JSON", 12) == 0);
    /* Invalid UTF-8 in the JSON text is rejected by jansson. */
    CHECK(dec(TRACES_DESC, "{\"resourceSpans\":[{\"schemaUrl\":\"\xff\"}]}", a, err, sizeof(err)) ==
          NULL);
    CHECK(strncmp(err, "invalid JSON", 12) == 0);
    /* \u0000 cannot become a C string. */
    CHECK(dec(TRACES_DESC, "{\"resourceSpans\":[{\"schemaUrl\":\"a\\u0000b\"}]}", a, err,
              sizeof(err)) == NULL);
    CHECK(strncmp(err, "invalid JSON", 12) == 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(otlp_json_decode(TRACES_DESC, NULL, 0, a, &eb) == NULL && eb.set);
    arena_destroy(a);
}

/* Builds `levels` nested arrayValues inside one log record body. */
static char *nested_body(int levels)
{
    size_t cap = (size_t)levels * 40 + 256;
    char *s = malloc(cap);
    size_t n =
        (size_t)snprintf(s, cap, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
    for (int i = 0; i < levels; i++) {
        n += (size_t)snprintf(s + n, cap - n, "{\"arrayValue\":{\"values\":[");
    }
    n += (size_t)snprintf(s + n, cap - n, "{\"intValue\":1}");
    for (int i = 0; i < levels; i++) {
        n += (size_t)snprintf(s + n, cap - n, "]}}");
    }
    snprintf(s + n, cap - n, "}]}]}]}");
    return s;
}

UNIT_TEST(depth_bomb)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    /* Deeper than jansson's own parser cap: a JSON error, not a crash. */
    char *huge = nested_body(10000);
    CHECK(dec(LOGS_DESC, huge, a, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "invalid JSON") != NULL && strstr(err, "depth") != NULL);
    free(huge);
    /* Within jansson's cap but past ours: the error keeps the head and tail of the path. */
    char *deep = nested_body(100);
    CHECK(dec(LOGS_DESC, deep, a, err, sizeof(err)) == NULL);
    const char *head = "resourceLogs[0].scopeLogs[0].logRecords[0].body.arrayValue.values[0]";
    CHECK(strncmp(err, head, strlen(head)) == 0);
    CHECK(strstr(err, "...") != NULL);
    CHECK(strstr(err, ".arrayValue.values[0]: nesting deeper than 64") != NULL);
    CHECK(strlen(err) < MT_ERRBUF_SIZE - 1);
    free(deep);
    /* Root..logRecord are 4 messages, body the 5th, each level adds 2: with 29 levels the
     * innermost AnyValue is message 63 (accepted), with 30 it would be 65. */
    char *ok = nested_body(29);
    CHECK(dec(LOGS_DESC, ok, a, err, sizeof(err)) != NULL);
    free(ok);
    char *over = nested_body(30);
    CHECK(dec(LOGS_DESC, over, a, err, sizeof(err)) == NULL);
    free(over);
    arena_destroy(a);
}

UNIT_TEST(validate_utf8)
{
    /* protobuf-c does not check UTF-8 when unpacking, so a bad string can arrive this way. */
    Opentelemetry__Proto__Common__V1__AnyValue v0 =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__AnyValue v1 =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__KeyValue kv0 =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__KeyValue kv1 =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__KeyValue *kvs[2] = {&kv0, &kv1};
    Opentelemetry__Proto__Logs__V1__LogRecord lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    Opentelemetry__Proto__Logs__V1__LogRecord *lrs[1] = {&lr};
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sls[1] = {&sl};
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
        OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rls[1] = {&rl};
    logs_req_t req = OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    v0.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v0.string_value = "fine \xc3\xa9";
    v1.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v1.string_value = "ok\xed\xa0\x80"; /* an encoded surrogate is not valid UTF-8 */
    kv0.key = "a";
    kv0.value = &v0;
    kv1.key = "b";
    kv1.value = &v1;
    lr.n_attributes = 2;
    lr.attributes = kvs;
    sl.n_log_records = 1;
    sl.log_records = lrs;
    rl.n_scope_logs = 1;
    rl.scope_logs = sls;
    req.n_resource_logs = 1;
    req.resource_logs = rls;

    size_t len;
    uint8_t *wire = pack(&req.base, &len);
    ProtobufCMessage *m = protobuf_c_message_unpack(LOGS_DESC, NULL, len, wire);
    REQUIRE(m != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(otlp_validate_utf8(m, &eb) == MT_EINVAL);
    CHECK_STR(eb.msg, "resourceLogs[0].scopeLogs[0].logRecords[0].attributes[1].value.stringValue: "
                      "invalid UTF-8 at byte 2");
    /* The encoder still writes valid JSON, replacing the bad bytes with U+FFFD. */
    char *json = otlp_json_encode(m, NULL);
    REQUIRE(json != NULL);
    CHECK(strstr(json, "\"stringValue\":\"ok\\ufffd\\ufffd\\ufffd\"") != NULL);
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    CHECK(j != NULL);
    json_decref(j);
    free(json);

    /* Bad key and bad scope name are found too, and valid strings pass. */
    kv1.key = "\x80";
    v1.string_value = "ok";
    mt_errbuf_clear(&eb);
    CHECK(otlp_validate_utf8(&req.base, &eb) == MT_EINVAL);
    CHECK_STR(eb.msg, "resourceLogs[0].scopeLogs[0].logRecords[0].attributes[1].key: "
                      "invalid UTF-8 at byte 0");
    kv1.key = "b";
    mt_errbuf_clear(&eb);
    CHECK(otlp_validate_utf8(&req.base, &eb) == MT_OK);
    CHECK(!eb.set);
    protobuf_c_message_free_unpacked(m, NULL);
    free(wire);
}

UNIT_TEST(double_special_values)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    const char *in =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":["
        "{\"asDouble\":\"NaN\"},{\"asDouble\":\"Infinity\"},{\"asDouble\":\"-Infinity\"},"
        "{\"asDouble\":0.1},{\"asDouble\":-0.0},{\"asDouble\":1e300},{\"asDouble\":5e-324},"
        "{\"asDouble\":3},{\"asDouble\":\"2.5\"},{\"asDouble\":0},{\"asInt\":\"0\"}]}}]}]}]}";
    metrics_req_t *r = (metrics_req_t *)dec(METRICS_DESC, in, a, err, sizeof(err));
    REQUIRE(r != NULL);
    Opentelemetry__Proto__Metrics__V1__Gauge *g =
        r->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge;
    REQUIRE(g->n_data_points == 11);
    CHECK(isnan(g->data_points[0]->as_double));
    CHECK(isinf(g->data_points[1]->as_double) && g->data_points[1]->as_double > 0);
    CHECK(isinf(g->data_points[2]->as_double) && g->data_points[2]->as_double < 0);
    CHECK(g->data_points[3]->as_double == 0.1);
    CHECK(g->data_points[4]->as_double == 0 && signbit(g->data_points[4]->as_double));
    CHECK(g->data_points[5]->as_double == 1e300);
    CHECK(g->data_points[6]->as_double == 5e-324);
    CHECK(g->data_points[7]->as_double == 3);
    CHECK(g->data_points[8]->as_double == 2.5);
    CHECK(g->data_points[9]->value_case ==
          OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    CHECK(g->data_points[10]->value_case ==
          OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    char *out = otlp_json_encode(&r->base, NULL);
    CHECK_STR(out,
              "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":["
              "{\"asDouble\":\"NaN\"},{\"asDouble\":\"Infinity\"},{\"asDouble\":\"-Infinity\"},"
              "{\"asDouble\":0.1},{\"asDouble\":-0.0},{\"asDouble\":1e+300},"
              "{\"asDouble\":4.94065645841247e-324},{\"asDouble\":3},{\"asDouble\":2.5},"
              "{\"asDouble\":0},{\"asInt\":\"0\"}]}}]}]}]}");
    /* And the JSON decodes back to bit-identical doubles. */
    metrics_req_t *r2 = out ? (metrics_req_t *)dec(METRICS_DESC, out, a, err, sizeof(err)) : NULL;
    REQUIRE(r2 != NULL);
    Opentelemetry__Proto__Metrics__V1__Gauge *g2 =
        r2->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge;
    REQUIRE(g2->n_data_points == 11);
    for (size_t i = 0; i < 11; i++) {
        CHECK(memcmp(&g->data_points[i]->as_double, &g2->data_points[i]->as_double, 8) == 0 ||
              (isnan(g->data_points[i]->as_double) && isnan(g2->data_points[i]->as_double)));
    }
    free(out);
    /* Shortest round-trip formatting of awkward values. */
    const double vals[] = {1.0 / 3, 2.0 / 3, 1e21, 123456789.125, -1.7976931348623157e308, 0.3};
    for (size_t i = 0; i < MT_ARRAY_LEN(vals); i++) {
        g->data_points[3]->as_double = vals[i];
        char *o = otlp_json_encode(&r->base, NULL);
        metrics_req_t *r3 = o ? (metrics_req_t *)dec(METRICS_DESC, o, a, err, sizeof(err)) : NULL;
        CHECK(r3 && r3->resource_metrics[0]
                            ->scope_metrics[0]
                            ->metrics[0]
                            ->gauge->data_points[3]
                            ->as_double == vals[i]);
        free(o);
    }
    arena_destroy(a);
}

UNIT_TEST(histogram_sum_presence)
{
    arena_t *a = arena_create(4096, 0);
    char err[MT_ERRBUF_SIZE];
    const char *with = "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\","
                       "\"histogram\":{\"dataPoints\":[{\"count\":\"0\",\"sum\":0,\"min\":0,"
                       "\"bucketCounts\":[\"0\",0],\"explicitBounds\":[1]}],"
                       "\"aggregationTemporality\":2}}]}]}]}";
    const char *without = "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\","
                          "\"histogram\":{\"dataPoints\":[{\"bucketCounts\":[\"0\",0],"
                          "\"explicitBounds\":[1]}],\"aggregationTemporality\":2}}]}]}]}";
    metrics_req_t *rw = (metrics_req_t *)dec(METRICS_DESC, with, a, err, sizeof(err));
    metrics_req_t *ro = (metrics_req_t *)dec(METRICS_DESC, without, a, err, sizeof(err));
    REQUIRE(rw != NULL && ro != NULL);
    hdp_t *pw = rw->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram->data_points[0];
    hdp_t *po = ro->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram->data_points[0];
    CHECK(pw->sum__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM);
    CHECK(pw->min__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN__MIN);
    CHECK(pw->max__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX___NOT_SET);
    CHECK(po->sum__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM___NOT_SET);
    CHECK(po->min__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN___NOT_SET);
    char *ow = otlp_json_encode(&rw->base, NULL);
    char *oo = otlp_json_encode(&ro->base, NULL);
    CHECK_STR(ow, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\","
                  "\"histogram\":{\"dataPoints\":[{\"sum\":0,\"bucketCounts\":[\"0\",\"0\"],"
                  "\"explicitBounds\":[1],\"min\":0}],\"aggregationTemporality\":2}}]}]}]}");
    CHECK_STR(oo, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\","
                  "\"histogram\":{\"dataPoints\":[{\"bucketCounts\":[\"0\",\"0\"],"
                  "\"explicitBounds\":[1]}],\"aggregationTemporality\":2}}]}]}]}");
    /* Presence survives the wire too: the packed forms differ by the sum and min fields. */
    size_t lw, lo;
    uint8_t *bw = pack(&rw->base, &lw), *bo = pack(&ro->base, &lo);
    CHECK(lw > lo);
    ProtobufCMessage *uw = protobuf_c_message_unpack(METRICS_DESC, NULL, lw, bw);
    REQUIRE(uw != NULL);
    char *ow2 = otlp_json_encode(uw, NULL);
    CHECK_STR(ow2, ow);
    free(ow2);
    protobuf_c_message_free_unpacked(uw, NULL);
    free(bw);
    free(bo);
    free(ow);
    free(oo);
    arena_destroy(a);
}

UNIT_TEST(arena_cap_is_an_error)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/traces-n100/traces-json-1.bin", unit_fixtures_dir());
    size_t len;
    unsigned char *buf = unit_read_file(path, &len);
    REQUIRE(buf != NULL);
    arena_t *a = arena_create(1024, 8192);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(otlp_json_decode(TRACES_DESC, (const char *)buf, len, a, &eb) == NULL);
    CHECK(strstr(eb.msg, "out of memory") != NULL);
    CHECK(arena_over_cap(a));
    arena_destroy(a);
    free(buf);
}

/* Every prefix and many single-byte corruptions of a real document must fail or succeed
 * cleanly (the sanitizer build turns any memory error into a failure). */
UNIT_TEST(mutations_do_not_crash)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/metrics-n1/metrics-json-1.bin", unit_fixtures_dir());
    size_t len;
    unsigned char *buf = unit_read_file(path, &len);
    REQUIRE(buf != NULL);
    arena_t *a = arena_create(1 << 16, 0);
    int ok = 0;
    for (size_t n = 0; n <= len; n++) {
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        ProtobufCMessage *m = otlp_json_decode(METRICS_DESC, (const char *)buf, n, a, &eb);
        CHECK(m != NULL || eb.set);
        ok += m != NULL;
        arena_reset(a);
    }
    CHECK(ok >= 1);
    static const char repl[] = "\"{}[]0-,:ex\\n";
    for (size_t i = 0; i < len; i += 3) {
        unsigned char saved = buf[i];
        buf[i] = (unsigned char)repl[i % (sizeof(repl) - 1)];
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        ProtobufCMessage *m = otlp_json_decode(METRICS_DESC, (const char *)buf, len, a, &eb);
        CHECK(m != NULL || eb.set);
        if (m) {
            free(otlp_json_encode(m, NULL));
        }
        buf[i] = saved;
        arena_reset(a);
    }
    arena_destroy(a);
    free(buf);
}
