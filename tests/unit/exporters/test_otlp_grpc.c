/*
 * test_otlp_grpc.c - tests for exporters/otlp_grpc.c (the `otlp` gRPC exporter) through its
 * descriptor (unit_exp.h): which endpoints the config takes, and that a server that is not
 * there, or that does not speak HTTP/2, is a retryable transport error. What goes on the wire
 * and how grpc-status, RetryInfo and partial_success are read is tested against a grpc-js
 * server in tests/integration/test_otlp_grpc_export.py.
 */
#include "unit.h"
#include "unit_exp.h"

#include <stdio.h>
#include <string.h>

/* Whether `yaml` loads; when it does not, its first error contains `want`. */
static int loads(const char *yaml, const char *want)
{
    unit_exp_t e;
    int rc = unit_exp_open(&e, "otlp", yaml);
    int ok = rc == MT_OK;
    if (!ok && want && (e.c.nerr == 0 || !strstr(e.c.errs[0], want))) {
        fprintf(stderr, "  %s: expected an error with \"%s\", got \"%s\"\n", yaml, want,
                e.c.nerr ? e.c.errs[0] : "(none)");
        ok = -1;
    }
    unit_exp_close(&e);
    return ok;
}

UNIT_TEST(config_endpoint_is_host_port)
{
    CHECK(loads("endpoint: otel-gw:4317\n", NULL) == 1);
    CHECK(loads("endpoint: \"[::1]:4317\"\ntls: {insecure: true}\n", NULL) == 1);
    CHECK(loads("endpoint: https://otel-gw:443\n", NULL) == 1);
    CHECK(loads("endpoint: http://127.0.0.1:4317\ncompression: zstd\n", NULL) == 1);
    CHECK(loads("compression: gzip\n", "exporters.otlp.endpoint") == 0);
    CHECK(loads("endpoint: otel-gw\n", "exp.yaml:1: exporters.otlp.endpoint: \"otel-gw\": not "
                                       "host:port") == 0);
    CHECK(loads("endpoint: otel-gw:0\n", "the port is not a number in 1..65535") == 0);
    CHECK(loads("endpoint: otel-gw:4317x\n", "the port is not a number") == 0);
    CHECK(loads("endpoint: http://otel-gw:4317/v1/traces\n", "no path") == 0);
    CHECK(loads("endpoint: \"[::1]\"\n", "[addr]:port") == 0);
    CHECK(loads("endpoint: otel-gw:4317\ncompression: lz4\n", "compression") == 0);
}

static int send_to(const char *yaml, send_result_t *res)
{
    unit_exp_t e;
    if (unit_exp_open(&e, "otlp", yaml) != MT_OK) {
        cfg_ctx_print(&e.c, stderr);
        unit_exp_close(&e);
        return -100;
    }
    memset(res, 0, sizeof(*res));
    res->tenant = "";
    static const uint8_t empty[1];
    int rc = e.ex.ops->send(&e.ex, e.ws, MT_SIG_TRACES, empty, 0, 0, res);
    unit_exp_close(&e);
    return rc;
}

UNIT_TEST(unreachable_or_http1_server_is_a_retryable_transport_error)
{
    unit_sink_t *s = unit_sink_start();
    REQUIRE(s != NULL);
    char yaml[160];
    /* an HTTP/1.1 server (libmicrohttpd) does not understand the HTTP/2 preface */
    snprintf(yaml, sizeof(yaml), "endpoint: 127.0.0.1:%d\ntls: {insecure: true}\ntimeout: 2s\n",
             unit_sink_port(s));
    send_result_t res;
    CHECK(send_to(yaml, &res) == MT_ERETRY);
    CHECK_STR(res.reason, "transport_error");
    unit_sink_stop(s); /* nothing listens there any more */
    CHECK(send_to(yaml, &res) == MT_ERETRY);
    CHECK_STR(res.reason, "transport_error");
    CHECK(strstr(res.msg, "/opentelemetry.proto.collector.trace.v1.TraceService/Export") != NULL);
}
