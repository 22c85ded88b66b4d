/*
 * test_otlp.c - tests for collector/formats/otlp.c: unpacking every recorded fixture with item counts
 * checked against MANIFEST.json, readable reasons for truncated and mistyped wire data, the
 * nesting guard against a hand-built 100000-deep AnyValue, id length checks, and the
 * response / google.rpc.Status bodies in protobuf and JSON.
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "codec.h"
#include "mt.h"
#include "otlp.h"

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest traces_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest logs_req_t;

static mt_signal_t signal_of(const char *name)
{
    if (strcmp(name, "traces") == 0) {
        return MT_SIG_TRACES;
    }
    if (strcmp(name, "metrics") == 0) {
        return MT_SIG_METRICS;
    }
    return MT_SIG_LOGS;
}

static unsigned char *read_fixture(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/%s", unit_fixtures_dir(), rel);
    return unit_read_file(path, len);
}

UNIT_TEST(unpack_all_fixtures_counts_match_manifest)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/MANIFEST.json", unit_fixtures_dir());
    json_error_t jerr;
    json_t *man = json_load_file(path, 0, &jerr);
    REQUIRE(man);
    json_t *files = json_object_get(man, "files");
    REQUIRE(json_is_array(files));
    size_t idx, checked = 0, by_sig[MT_SIG_COUNT] = {0};
    json_t *f;
    json_array_foreach(files, idx, f)
    {
        const char *file = json_string_value(json_object_get(f, "file"));
        const char *format = json_string_value(json_object_get(f, "format"));
        const char *sig = json_string_value(json_object_get(f, "signal"));
        const char *enc = json_string_value(json_object_get(f, "content_encoding"));
        json_int_t want = json_integer_value(json_object_get(f, "items"));
        if (!file || !format || !sig || strcmp(format, "json") == 0) {
            continue;
        }
        size_t len = 0;
        unsigned char *data = read_fixture(file, &len);
        CHECK(data != NULL);
        if (!data) {
            continue;
        }
        arena_t *a = arena_create(64 * 1024, 0);
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        const uint8_t *body = data;
        size_t body_len = len;
        /* the proto captures keep their Content-Encoding; gRPC .bin files are the message */
        if (strcmp(format, "proto") == 0 && enc && strcmp(enc, "gzip") == 0) {
            uint8_t *out = NULL;
            int rc = codec_decompress(CODEC_GZIP, data, len, 16u << 20, a, &out, &body_len, &eb);
            CHECK(rc == MT_OK);
            body = out;
        }
        CHECK((json_int_t)body_len == json_integer_value(json_object_get(f, "decoded_bytes")));
        mt_signal_t s = signal_of(sig);
        ProtobufCMessage *m = body ? otlp_unpack(s, body, body_len, a, &eb) : NULL;
        CHECK(m != NULL);
        uint64_t items = 0;
        if (m) {
            CHECK(m->descriptor == otlp_request_desc(s));
            CHECK(otlp_check(s, m, &items, &eb) == MT_OK);
        }
        if (!m || (json_int_t)items != want) {
            fprintf(stderr, "    %s: items %llu, manifest %lld: %s\n", file,
                    (unsigned long long)items, (long long)want, eb.msg);
            *unit_failed_ = 1;
        }
        checked++;
        by_sig[s]++;
        arena_destroy(a);
        free(data);
    }
    CHECK(checked >= 30); /* every non-JSON capture: 33 today */
    CHECK(by_sig[MT_SIG_TRACES] > 0 && by_sig[MT_SIG_METRICS] > 0 && by_sig[MT_SIG_LOGS] > 0);
    json_decref(man);
}

UNIT_TEST(truncated_fixture_names_what_failed)
{
    size_t len = 0;
    unsigned char *data = read_fixture("traces-n100/traces-proto-1.bin", &len);
    REQUIRE(data);
    size_t cuts[] = {len / 2, len - 1, len / 3 + 7};
    for (size_t k = 0; k < MT_ARRAY_LEN(cuts); k++) {
        arena_t *a = arena_create(64 * 1024, 0);
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        ProtobufCMessage *m = otlp_unpack(MT_SIG_TRACES, data, cuts[k], a, &eb);
        CHECK(m == NULL);
        CHECK(eb.set);
        /* a field path into the request, or at least the word "truncated" */
        int named = strstr(eb.msg, "resource_spans") || strstr(eb.msg, "resourceSpans") ||
                    strstr(eb.msg, "truncated");
        CHECK(named);
        if (!named) {
            fprintf(stderr, "    cut at %zu: %s\n", cuts[k], eb.msg);
        }
        arena_destroy(a);
    }
    free(data);
}

UNIT_TEST(wrong_wire_type_is_explained)
{
    /* field 1 (resource_spans, a message) sent as a varint */
    const uint8_t bad[] = {0x08, 0x01};
    arena_t *a = arena_create(1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(otlp_unpack(MT_SIG_TRACES, bad, sizeof(bad), a, &eb) == NULL);
    CHECK(strstr(eb.msg, "wrong wire type") != NULL);
    CHECK(strstr(eb.msg, "field 1") != NULL);
    /* the same deeper down: resourceSpans[0].scopeSpans[0].spans[0].name (field 5, string)
     * sent as a varint */
    const uint8_t deep[] = {0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0x28, 0x01};
    mt_errbuf_clear(&eb);
    CHECK(otlp_unpack(MT_SIG_TRACES, deep, sizeof(deep), a, &eb) == NULL);
    CHECK(strstr(eb.msg, "wrong wire type") != NULL);
    CHECK(strstr(eb.msg, "spans[0]") != NULL);
    /* invalid wire type 7 */
    const uint8_t wt7[] = {0x0f};
    mt_errbuf_clear(&eb);
    CHECK(otlp_unpack(MT_SIG_TRACES, wt7, sizeof(wt7), a, &eb) == NULL);
    CHECK(strstr(eb.msg, "wire type") != NULL);
    /* a length running past the end */
    const uint8_t past[] = {0x0a, 0x7f, 0x00};
    mt_errbuf_clear(&eb);
    CHECK(otlp_unpack(MT_SIG_TRACES, past, sizeof(past), a, &eb) == NULL);
    CHECK(strstr(eb.msg, "past the end") != NULL);
    arena_destroy(a);
}

UNIT_TEST(empty_body_is_an_empty_request)
{
    arena_t *a = arena_create(1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        ProtobufCMessage *m = otlp_unpack((mt_signal_t)s, (const uint8_t *)"", 0, a, &eb);
        REQUIRE(m);
        uint64_t items = 99;
        CHECK(otlp_check((mt_signal_t)s, m, &items, &eb) == MT_OK);
        CHECK(items == 0);
    }
    CHECK(!eb.set);
    arena_destroy(a);
}

/* Writes bytes backwards into a buffer: messages are built inside-out, each layer prefixed
 * with its tag and the length of everything already written. */
typedef struct {
    uint8_t *buf;
    size_t cap, pos; /* data is buf[pos..cap) */
} rbuf_t;

static int rb_prepend(rbuf_t *b, const uint8_t *p, size_t n)
{
    if (n > b->pos) {
        return -1;
    }
    b->pos -= n;
    memcpy(b->buf + b->pos, p, n);
    return 0;
}

static int rb_prepend_varint(rbuf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) {
            tmp[n] |= 0x80;
        }
        n++;
    } while (v);
    return rb_prepend(b, tmp, n);
}

/* Wraps everything written so far as a length-delimited field `fnum`. */
static int rb_wrap(rbuf_t *b, unsigned fnum)
{
    size_t len = b->cap - b->pos;
    if (rb_prepend_varint(b, len) != 0) {
        return -1;
    }
    return rb_prepend_varint(b, (uint64_t)fnum << 3 | 2);
}

UNIT_TEST(deep_nesting_bomb_is_refused)
{
    const int depth = 100000;
    rbuf_t b = {NULL, 4u << 20, 4u << 20};
    b.buf = malloc(b.cap);
    REQUIRE(b.buf);
    int bad = 0;
    /* innermost AnyValue: string_value "x" */
    bad |= rb_prepend(&b, (const uint8_t *)"\x0a\x01x", 3);
    for (int i = 0; i < depth; i++) {
        bad |= rb_wrap(&b, 1); /* ArrayValue.values = AnyValue */
        bad |= rb_wrap(&b, 5); /* AnyValue.array_value = ArrayValue */
    }
    bad |= rb_wrap(&b, 2);                                  /* KeyValue.value */
    bad |= rb_prepend(&b, (const uint8_t *)"\x0a\x01k", 3); /* KeyValue.key = "k" */
    bad |= rb_wrap(&b, 9);                                  /* Span.attributes */
    bad |= rb_wrap(&b, 2);                                  /* ScopeSpans.spans */
    bad |= rb_wrap(&b, 2);                                  /* ResourceSpans.scope_spans */
    bad |= rb_wrap(&b, 1);                                  /* request.resource_spans */
    REQUIRE(bad == 0);
    const uint8_t *data = b.buf + b.pos;
    size_t len = b.cap - b.pos;
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint64_t t0 = mt_now_ns();
    ProtobufCMessage *m = otlp_unpack(MT_SIG_TRACES, data, len, a, &eb);
    CHECK(m == NULL);
    CHECK(strstr(eb.msg, "nesting") != NULL);
    CHECK((mt_now_ns() - t0) / 1000000u < 500);
    /* a shallow version of the same shape is fine */
    rbuf_t s = {b.buf, b.cap, b.cap};
    bad |= rb_prepend(&s, (const uint8_t *)"\x0a\x01x", 3);
    for (int i = 0; i < 10; i++) {
        bad |= rb_wrap(&s, 1);
        bad |= rb_wrap(&s, 5);
    }
    bad |= rb_wrap(&s, 2);
    bad |= rb_prepend(&s, (const uint8_t *)"\x0a\x01k", 3);
    bad |= rb_wrap(&s, 9);
    bad |= rb_wrap(&s, 2);
    bad |= rb_wrap(&s, 2);
    bad |= rb_wrap(&s, 1);
    REQUIRE(bad == 0);
    mt_errbuf_clear(&eb);
    m = otlp_unpack(MT_SIG_TRACES, s.buf + s.pos, s.cap - s.pos, a, &eb);
    CHECK(m != NULL);
    uint64_t items = 0;
    CHECK(m && otlp_check(MT_SIG_TRACES, m, &items, &eb) == MT_OK && items == 1);
    arena_destroy(a);
    free(b.buf);
}

UNIT_TEST(trace_id_length_checked)
{
    uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    Opentelemetry__Proto__Trace__V1__Span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    sp.trace_id.data = tid;
    sp.trace_id.len = 15;
    sp.span_id.data = sid;
    sp.span_id.len = 8;
    sp.name = "s";
    Opentelemetry__Proto__Trace__V1__Span *spans[] = {&sp};
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.spans = spans;
    ss.n_spans = 1;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.scope_spans = sss;
    rs.n_scope_spans = 1;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
    traces_req_t req = OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = rss;
    req.n_resource_spans = 1;

    /* through the wire, as a receiver sees it */
    size_t n = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(n);
    REQUIRE(buf);
    protobuf_c_message_pack(&req.base, buf);
    arena_t *a = arena_create(4096, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m = otlp_unpack(MT_SIG_TRACES, buf, n, a, &eb);
    REQUIRE(m); /* well-formed protobuf: the length rule is otlp_check's */
    uint64_t items = 0;
    CHECK(otlp_check(MT_SIG_TRACES, m, &items, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "traceId") != NULL);
    CHECK(strstr(eb.msg, "resourceSpans[0].scopeSpans[0].spans[0]") != NULL);
    CHECK(strstr(eb.msg, "15") != NULL);

    /* 16 bytes is right, 0 (absent) is tolerated; a 7-byte span id is not */
    sp.trace_id.len = 16;
    mt_errbuf_clear(&eb);
    CHECK(otlp_check(MT_SIG_TRACES, &req.base, &items, &eb) == MT_OK && items == 1);
    sp.trace_id.len = 0;
    CHECK(otlp_check(MT_SIG_TRACES, &req.base, &items, &eb) == MT_OK);
    sp.span_id.len = 7;
    CHECK(otlp_check(MT_SIG_TRACES, &req.base, &items, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "spanId") != NULL);
    sp.span_id.len = 8;
    sp.parent_span_id.data = sid;
    sp.parent_span_id.len = 7;
    mt_errbuf_clear(&eb);
    CHECK(otlp_check(MT_SIG_TRACES, &req.base, &items, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "parentSpanId") != NULL);
    arena_destroy(a);
    free(buf);
}

UNIT_TEST(log_ids_checked)
{
    uint8_t id[16] = {0};
    Opentelemetry__Proto__Logs__V1__LogRecord lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    lr.span_id.data = id;
    lr.span_id.len = 4;
    Opentelemetry__Proto__Logs__V1__LogRecord *lrs[] = {&lr, &lr};
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.log_records = lrs;
    sl.n_log_records = 2;
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sls[] = {&sl};
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
        OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.scope_logs = sls;
    rl.n_scope_logs = 1;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rls[] = {&rl};
    logs_req_t req = OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.resource_logs = rls;
    req.n_resource_logs = 1;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint64_t items = 0;
    CHECK(otlp_check(MT_SIG_LOGS, &req.base, &items, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "resourceLogs[0].scopeLogs[0].logRecords[0].spanId") != NULL);
    lr.span_id.len = 8;
    mt_errbuf_clear(&eb);
    CHECK(otlp_check(MT_SIG_LOGS, &req.base, &items, &eb) == MT_OK);
    CHECK(items == 2);
}

UNIT_TEST(paths_and_descriptors)
{
    CHECK_STR(otlp_path(MT_SIG_TRACES), "/v1/traces");
    CHECK_STR(otlp_path(MT_SIG_METRICS), "/v1/metrics");
    CHECK_STR(otlp_path(MT_SIG_LOGS), "/v1/logs");
    CHECK(otlp_request_desc(MT_SIG_TRACES) ==
          &opentelemetry__proto__collector__v1__export_trace_service_request__descriptor);
    CHECK(otlp_request_desc(MT_SIG_METRICS) ==
          &opentelemetry__proto__collector__v1__export_metrics_service_request__descriptor);
    CHECK(otlp_request_desc(MT_SIG_LOGS) ==
          &opentelemetry__proto__collector__v1__export_logs_service_request__descriptor);
    CHECK(otlp_request_desc(MT_SIG_COUNT) == NULL);
}

UNIT_TEST(response_body_empty_without_partial_success)
{
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        size_t len = 99;
        uint8_t *b = otlp_response_body((mt_signal_t)s, 0, 0, NULL, &len);
        CHECK(b != NULL);
        CHECK(len == 0);
        free(b);
        len = 99;
        b = otlp_response_body((mt_signal_t)s, 0, 0, "", &len);
        CHECK(b != NULL && len == 0);
        free(b);
        len = 0;
        char *j = (char *)otlp_response_body((mt_signal_t)s, 1, 0, NULL, &len);
        REQUIRE(j);
        CHECK(len == 2 && memcmp(j, "{}", 2) == 0);
        free(j);
    }
}

UNIT_TEST(response_body_partial_success_round_trips)
{
    size_t len = 0;
    uint8_t *b = otlp_response_body(MT_SIG_TRACES, 0, 3, "3 spans had bad ids", &len);
    REQUIRE(b);
    CHECK(len > 0);
    Opentelemetry__Proto__Collector__V1__ExportTraceServiceResponse *tr =
        opentelemetry__proto__collector__v1__export_trace_service_response__unpack(NULL, len, b);
    REQUIRE(tr);
    REQUIRE(tr->partial_success);
    CHECK(tr->partial_success->rejected_spans == 3);
    CHECK_STR(tr->partial_success->error_message, "3 spans had bad ids");
    opentelemetry__proto__collector__v1__export_trace_service_response__free_unpacked(tr, NULL);
    free(b);

    b = otlp_response_body(MT_SIG_METRICS, 0, 3, NULL, &len);
    REQUIRE(b);
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceResponse *mr =
        opentelemetry__proto__collector__v1__export_metrics_service_response__unpack(NULL, len, b);
    REQUIRE(mr);
    CHECK(mr->partial_success && mr->partial_success->rejected_data_points == 3);
    opentelemetry__proto__collector__v1__export_metrics_service_response__free_unpacked(mr, NULL);
    free(b);

    b = otlp_response_body(MT_SIG_LOGS, 0, 3, NULL, &len);
    REQUIRE(b);
    Opentelemetry__Proto__Collector__V1__ExportLogsServiceResponse *lr =
        opentelemetry__proto__collector__v1__export_logs_service_response__unpack(NULL, len, b);
    REQUIRE(lr);
    CHECK(lr->partial_success && lr->partial_success->rejected_log_records == 3);
    opentelemetry__proto__collector__v1__export_logs_service_response__free_unpacked(lr, NULL);
    free(b);

    /* a message alone (nothing rejected) still sets partial_success */
    b = otlp_response_body(MT_SIG_LOGS, 0, 0, "warning", &len);
    REQUIRE(b);
    lr = opentelemetry__proto__collector__v1__export_logs_service_response__unpack(NULL, len, b);
    REQUIRE(lr);
    CHECK(lr->partial_success && lr->partial_success->rejected_log_records == 0);
    CHECK(lr->partial_success && strcmp(lr->partial_success->error_message, "warning") == 0);
    opentelemetry__proto__collector__v1__export_logs_service_response__free_unpacked(lr, NULL);
    free(b);
}

UNIT_TEST(response_body_json_partial_success)
{
    static const struct {
        mt_signal_t s;
        const char *field;
    } cases[] = {{MT_SIG_TRACES, "rejectedSpans"},
                 {MT_SIG_METRICS, "rejectedDataPoints"},
                 {MT_SIG_LOGS, "rejectedLogRecords"}};
    for (size_t k = 0; k < MT_ARRAY_LEN(cases); k++) {
        size_t len = 0;
        char *j = (char *)otlp_response_body(cases[k].s, 1, 3, "bad", &len);
        REQUIRE(j);
        json_error_t jerr;
        json_t *doc = json_loadb(j, len, 0, &jerr);
        CHECK(doc != NULL);
        json_t *ps = json_object_get(doc, "partialSuccess");
        CHECK(json_is_object(ps));
        json_t *rej = json_object_get(ps, cases[k].field);
        /* int64 in OTLP/JSON may be a number or a decimal string */
        int three = (json_is_integer(rej) && json_integer_value(rej) == 3) ||
                    (json_is_string(rej) && strcmp(json_string_value(rej), "3") == 0);
        CHECK(three);
        CHECK_STR(json_string_value(json_object_get(ps, "errorMessage")), "bad");
        json_decref(doc);
        free(j);
    }
}

UNIT_TEST(status_body_round_trips)
{
    size_t len = 0;
    uint8_t *b = otlp_status_body(0, 8, "exporter queue is full", &len);
    REQUIRE(b);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, b);
    REQUIRE(st);
    CHECK(st->code == 8);
    CHECK_STR(st->message, "exporter queue is full");
    CHECK(st->n_details == 0);
    google__rpc__status__free_unpacked(st, NULL);
    free(b);

    b = otlp_status_body(0, 3, NULL, &len);
    REQUIRE(b);
    st = google__rpc__status__unpack(NULL, len, b);
    REQUIRE(st);
    CHECK(st->code == 3);
    CHECK_STR(st->message, "");
    google__rpc__status__free_unpacked(st, NULL);
    free(b);

    char *j = (char *)otlp_status_body(1, 14, "try later", &len);
    REQUIRE(j);
    json_error_t jerr;
    json_t *doc = json_loadb(j, len, 0, &jerr);
    CHECK(doc != NULL);
    CHECK(json_integer_value(json_object_get(doc, "code")) == 14);
    CHECK_STR(json_string_value(json_object_get(doc, "message")), "try later");
    json_decref(doc);
    free(j);
}

UNIT_TEST(value_text_of_scalars)
{
    Opentelemetry__Proto__Common__V1__AnyValue v =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    char buf[32];
    CHECK(otlp_value_text(NULL, buf, sizeof(buf)) == NULL);
    CHECK(otlp_value_text(&v, buf, sizeof(buf)) == NULL);
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = "s";
    CHECK_STR(otlp_value_text(&v, buf, sizeof(buf)), "s");
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v.int_value = -42;
    CHECK_STR(otlp_value_text(&v, buf, sizeof(buf)), "-42");
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v.bool_value = 1;
    CHECK_STR(otlp_value_text(&v, buf, sizeof(buf)), "true");
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v.double_value = 0.25;
    CHECK_STR(otlp_value_text(&v, buf, sizeof(buf)), "0.25");
}
