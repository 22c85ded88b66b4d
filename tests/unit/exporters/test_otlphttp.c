/*
 * test_otlphttp.c - tests for exporters/otlphttp.c through its descriptor (unit_exp.h): what
 * send() puts on the wire (URL per signal, content type, compression, user headers, tenant)
 * as seen by a recording HTTP sink on 127.0.0.1, and how it classifies answers (partial
 * success, retryable and permanent statuses, Retry-After, transport errors).
 */
#include "unit.h"
#include "unit_exp.h"

#include <stdlib.h>
#include <string.h>

#include "otlp.h"

typedef struct fx {
    unit_sink_t *sink;
    unit_exp_t e;
    uint8_t *data;
    size_t len;
} fx_t;

/* A sink and an otlphttp exporter whose YAML is `yaml` with %d = the sink's port. */
static int fx_open(fx_t *f, const char *yaml_fmt)
{
    memset(f, 0, sizeof(*f));
    f->sink = unit_sink_start();
    if (!f->sink) {
        return -1;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), yaml_fmt, unit_sink_port(f->sink), unit_sink_port(f->sink));
    if (unit_exp_open(&f->e, "otlphttp", yaml) != MT_OK) {
        cfg_ctx_print(&f->e.c, stderr);
        return -1;
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/traces-n1/traces-proto-1.bin", unit_fixtures_dir());
    f->data = unit_read_file(path, &f->len);
    return f->data ? 0 : -1;
}

static void fx_close(fx_t *f)
{
    unit_exp_close(&f->e);
    unit_sink_stop(f->sink);
    free(f->data);
}

static int send_traces(fx_t *f, const char *tenant, send_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->tenant = tenant;
    return f->e.ex.ops->send(&f->e.ex, f->e.ws, MT_SIG_TRACES, f->data, f->len, 1, res);
}

UNIT_TEST(proto_gzip_to_the_signal_path_with_headers)
{
    fx_t f;
    REQUIRE(fx_open(&f, "endpoint: http://127.0.0.1:%d\nheaders:\n  X-Unit: hello\n") == 0);
    send_result_t res;
    CHECK(send_traces(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    const unit_sink_req_t *q = unit_sink_get(f.sink, 0);
    CHECK_STR(q->method, "POST");
    CHECK_STR(q->path, "/v1/traces");
    CHECK_STR(q->content_type, "application/x-protobuf");
    CHECK_STR(q->content_encoding, "gzip"); /* the default */
    CHECK_STR(q->custom, "hello");
    CHECK(strncmp(q->user_agent, "meltp/", 6) == 0);
    CHECK_STR(q->tenant, "");
    /* the batch's bytes, unchanged once decompressed */
    CHECK(q->len == f.len && memcmp(q->body, f.data, f.len) == 0);
    CHECK(res.rejected == 0);
    fx_close(&f);
}

UNIT_TEST(json_encoding_without_compression)
{
    fx_t f;
    REQUIRE(fx_open(&f, "endpoint: http://127.0.0.1:%d/\nencoding: json\ncompression: none\n") ==
            0);
    send_result_t res;
    CHECK(send_traces(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    const unit_sink_req_t *q = unit_sink_get(f.sink, 0);
    CHECK_STR(q->path, "/v1/traces"); /* a trailing slash on endpoint is not doubled */
    CHECK_STR(q->content_type, "application/json");
    CHECK_STR(q->content_encoding, "");
    char *body = strndup((const char *)q->body, q->len);
    CHECK(strncmp(body, "{\"resourceSpans\":[", 18) == 0);
    CHECK(strstr(body, "\"fixture-traces\"") != NULL);
    free(body);
    fx_close(&f);
}

UNIT_TEST(zstd_and_per_signal_endpoints)
{
    fx_t f;
    REQUIRE(fx_open(&f, "traces_endpoint: http://127.0.0.1:%d/custom/t\n"
                        "logs_endpoint: http://127.0.0.1:%d/custom/l\ncompression: zstd\n") == 0);
    send_result_t res;
    CHECK(send_traces(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    const unit_sink_req_t *q = unit_sink_get(f.sink, 0);
    CHECK_STR(q->path, "/custom/t");
    CHECK_STR(q->content_encoding, "zstd");
    CHECK(q->len == f.len && memcmp(q->body, f.data, f.len) == 0);
    /* no endpoint for metrics: permanent, nothing sent */
    memset(&res, 0, sizeof(res));
    CHECK(f.e.ex.ops->send(&f.e.ex, f.e.ws, MT_SIG_METRICS, (const uint8_t *)"", 0, 0, &res) ==
          MT_EPERM);
    CHECK_STR(res.reason, "no_endpoint");
    CHECK(unit_sink_count(f.sink) == 1);
    fx_close(&f);
}

UNIT_TEST(request_tenant_is_forwarded_unless_config_pins_one)
{
    fx_t f;
    REQUIRE(fx_open(&f, "endpoint: http://127.0.0.1:%d\n") == 0);
    send_result_t res;
    CHECK(send_traces(&f, "team-a", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    CHECK_STR(unit_sink_get(f.sink, 0)->tenant, "team-a");
    fx_close(&f);

    REQUIRE(fx_open(&f, "endpoint: http://127.0.0.1:%d\nheaders:\n  X-Scope-OrgID: fixed\n") == 0);
    CHECK(send_traces(&f, "team-a", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    CHECK_STR(unit_sink_get(f.sink, 0)->tenant, "fixed");
    fx_close(&f);
}

UNIT_TEST(partial_success_reports_rejected_items)
{
    fx_t f;
    REQUIRE(fx_open(&f, "endpoint: http://127.0.0.1:%d\n") == 0);
    Opentelemetry__Proto__Collector__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    ps.rejected_spans = 3;
    ps.error_message = "three spans too old";
    Opentelemetry__Proto__Collector__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    resp.partial_success = &ps;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&resp.base, buf);
    unit_sink_reply(f.sink, 200, "application/x-protobuf", buf, n, NULL);
    send_result_t res;
    CHECK(send_traces(&f, "", &res) == MT_OK);
    CHECK(res.rejected == 3);
    CHECK_STR(res.msg, "three spans too old");
    fx_close(&f);
}

UNIT_TEST(statuses_are_classified_retryable_or_permanent)
{
    fx_t f;
    REQUIRE(fx_open(&f, "endpoint: http://127.0.0.1:%d\n") == 0);
    send_result_t res;
    unit_sink_reply(f.sink, 503, "text/plain", "busy", 4, "7");
    CHECK(send_traces(&f, "", &res) == MT_ERETRY);
    CHECK_STR(res.reason, "http_retryable");
    CHECK(res.retry_after_ms == 7000);
    CHECK(strstr(res.msg, "HTTP 503: busy") != NULL);

    unit_sink_reply(f.sink, 429, "text/plain", "", 0, NULL);
    CHECK(send_traces(&f, "", &res) == MT_ERETRY);
    CHECK(res.retry_after_ms == 0);

    /* a google.rpc.Status body gives its message */
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = "invalid span id";
    uint8_t buf[128];
    size_t n = google__rpc__status__pack(&st, buf);
    unit_sink_reply(f.sink, 400, "application/x-protobuf", buf, n, NULL);
    CHECK(send_traces(&f, "", &res) == MT_EPERM);
    CHECK_STR(res.reason, "http_400");
    CHECK(strstr(res.msg, "HTTP 400: invalid span id") != NULL);

    unit_sink_reply(f.sink, 401, "text/plain", "who", 3, NULL);
    CHECK(send_traces(&f, "", &res) == MT_EPERM);
    CHECK_STR(res.reason, "http_401");
    unit_sink_reply(f.sink, 500, "text/plain", "", 0, NULL);
    CHECK(send_traces(&f, "", &res) == MT_EPERM);
    CHECK_STR(res.reason, "http_error");
    fx_close(&f);
}

UNIT_TEST(oversized_success_response_is_not_trusted)
{
    fx_t f;
    REQUIRE(fx_open(&f, "endpoint: http://127.0.0.1:%d\nmax_response_size: 16\n") == 0);
    char big[200];
    memset(big, 'x', sizeof(big));
    unit_sink_reply(f.sink, 200, "application/x-protobuf", big, sizeof(big), NULL);
    send_result_t res;
    CHECK(send_traces(&f, "", &res) == MT_EPERM);
    CHECK_STR(res.reason, "response_too_large");
    fx_close(&f);
}

UNIT_TEST(unreachable_endpoint_is_a_retryable_transport_error)
{
    unit_sink_t *s = unit_sink_start();
    REQUIRE(s != NULL);
    int port = unit_sink_port(s);
    unit_sink_stop(s); /* nothing listens there any more */
    char yaml[128];
    snprintf(yaml, sizeof(yaml), "endpoint: http://127.0.0.1:%d\ntimeout: 2s\n", port);
    unit_exp_t e;
    REQUIRE(unit_exp_open(&e, "otlphttp", yaml) == MT_OK);
    send_result_t res;
    memset(&res, 0, sizeof(res));
    CHECK(e.ex.ops->send(&e.ex, e.ws, MT_SIG_LOGS, (const uint8_t *)"", 0, 0, &res) == MT_ERETRY);
    CHECK_STR(res.reason, "transport_error");
    unit_exp_close(&e);
}

UNIT_TEST(config_needs_an_http_url)
{
    unit_exp_t e;
    CHECK(unit_exp_open(&e, "otlphttp", "compression: gzip\n") == MT_EINVAL);
    CHECK(e.c.nerr == 1 && strstr(e.c.errs[0], "exporters.otlphttp.endpoint: required") != NULL);
    unit_exp_close(&e);
    CHECK(unit_exp_open(&e, "otlphttp",
                        "endpoint: http://ok:4318\n"
                        "logs_endpoint: ftp://nope\n") == MT_EINVAL);
    CHECK(e.c.nerr == 1);
    CHECK_STR(e.c.errs[0], "exp.yaml:2: exporters.otlphttp.logs_endpoint: \"ftp://nope\" is not "
                           "an http:// or https:// URL");
    unit_exp_close(&e);
    CHECK(unit_exp_open(&e, "otlphttp", "endpoint: http://ok:4318\ncompression: lz4\n") ==
          MT_EINVAL);
    unit_exp_close(&e);
}
