/*
 * test_prw.c - tests for exporters/prw.c (prometheusremotewrite) through its descriptor
 * (unit_exp.h) against a recording sink on 127.0.0.1: the remote-write 1.0 request (headers,
 * snappy body decoded back into prometheus.WriteRequest), series names and labels from OTLP
 * metrics (suffixes, job/instance, external labels, namespace, target_info, metadata), splitting
 * by max_samples_per_send, retry of a 5xx inside send, permanent 4xx, the pass-through format
 * check and config validation.
 */
#include "unit.h"
#include "unit_exp.h"

#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp_json.h"
#include "prom_rw1.pb-c.h"

/* Two metrics of service shop (instance i-1): a monotonic cumulative sum with 3 points
 * (path=/a, /b, /c) and a gauge with one point. */
static uint8_t *metrics_pb(size_t *len)
{
    unsigned long long now = 1700000000000000000ull;
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["
             "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"shop\"}},"
             "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"i-1\"}},"
             "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h1\"}}]},"
             "\"scopeMetrics\":[{\"metrics\":["
             "{\"name\":\"requests\",\"description\":\"Requests served.\",\"sum\":{"
             "\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":["
             "{\"timeUnixNano\":\"%llu\",\"asInt\":\"5\",\"attributes\":[{\"key\":\"path\","
             "\"value\":{\"stringValue\":\"/a\"}}]},"
             "{\"timeUnixNano\":\"%llu\",\"asInt\":\"6\",\"attributes\":[{\"key\":\"path\","
             "\"value\":{\"stringValue\":\"/b\"}}]},"
             "{\"timeUnixNano\":\"%llu\",\"asInt\":\"7\",\"attributes\":[{\"key\":\"path\","
             "\"value\":{\"stringValue\":\"/c\"}}]}]}},"
             "{\"name\":\"queue.depth\",\"gauge\":{\"dataPoints\":["
             "{\"timeUnixNano\":\"%llu\",\"asDouble\":2.5}]}}]}]}]}",
             now, now, now, now);
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m =
        otlp_json_decode(otlp_request_desc(MT_SIG_METRICS), json, strlen(json), a, &eb);
    uint8_t *pb = NULL;
    if (m) {
        *len = protobuf_c_message_get_packed_size(m);
        pb = malloc(*len);
        protobuf_c_message_pack(m, pb);
    } else {
        fprintf(stderr, "    metrics_pb: %s\n", eb.msg);
    }
    arena_destroy(a);
    return pb;
}

typedef struct fx {
    unit_sink_t *sink;
    unit_exp_t e;
    uint8_t *data;
    size_t len;
} fx_t;

static int fx_open(fx_t *f, const char *extra)
{
    memset(f, 0, sizeof(*f));
    f->sink = unit_sink_start();
    if (!f->sink) {
        return -1;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "endpoint: http://127.0.0.1:%d/api/v1/write\n"
             "remote_write_queue:\n  num_consumers: 1\n"
             "retry_on_failure:\n  initial_interval: 10ms\n  max_interval: 20ms\n%s",
             unit_sink_port(f->sink), extra ? extra : "");
    if (unit_exp_open(&f->e, "prometheusremotewrite", yaml) != MT_OK) {
        cfg_ctx_print(&f->e.c, stderr);
        return -1;
    }
    f->data = metrics_pb(&f->len);
    return f->data ? 0 : -1;
}

static void fx_close(fx_t *f)
{
    unit_exp_close(&f->e);
    unit_sink_stop(f->sink);
    free(f->data);
}

static int fx_send(fx_t *f, send_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->tenant = "";
    return f->e.ex.ops->send(&f->e.ex, f->e.ws, MT_SIG_METRICS, f->data, f->len, 4, res);
}

static const char *label(const Prometheus__TimeSeries *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_labels; i++) {
        if (!strcmp(ts->labels[i]->name, name)) {
            return ts->labels[i]->value;
        }
    }
    return NULL;
}

/* The series named `name` (with label `k`=`v` when k is not NULL) in request i, or NULL. */
static const Prometheus__TimeSeries *series(const Prometheus__WriteRequest *wr, const char *name,
                                            const char *k, const char *v)
{
    for (size_t i = 0; wr && i < wr->n_timeseries; i++) {
        const char *n = label(wr->timeseries[i], "__name__");
        if (n && !strcmp(n, name) &&
            (!k || (label(wr->timeseries[i], k) && !strcmp(label(wr->timeseries[i], k), v)))) {
            return wr->timeseries[i];
        }
    }
    return NULL;
}

static Prometheus__WriteRequest *decode(const unit_sink_req_t *q)
{
    return prometheus__write_request__unpack(NULL, q->len, q->body);
}

UNIT_TEST(remote_write_1_request_headers_and_series)
{
    fx_t f;
    REQUIRE(fx_open(&f, "external_labels:\n  cluster: c1\n") == 0);
    send_result_t res;
    CHECK(fx_send(&f, &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    const unit_sink_req_t *q = unit_sink_get(f.sink, 0);
    CHECK_STR(q->path, "/api/v1/write");
    CHECK_STR(q->content_type, "application/x-protobuf");
    CHECK_STR(q->content_encoding, "snappy");
    CHECK(strncmp(q->user_agent, "meltp/", 6) == 0);
    Prometheus__WriteRequest *wr = decode(q);
    REQUIRE(wr != NULL);
    /* a monotonic sum gets _total; attributes become labels; job/instance from the resource */
    const Prometheus__TimeSeries *a = series(wr, "requests_total", "path", "/a");
    REQUIRE(a != NULL);
    CHECK_STR(label(a, "job"), "shop");
    CHECK_STR(label(a, "instance"), "i-1");
    CHECK_STR(label(a, "cluster"), "c1");
    CHECK(label(a, "host_name") == NULL); /* resource attributes stay on target_info */
    REQUIRE(a->n_samples == 1);
    CHECK(a->samples[0]->value == 5.0);
    CHECK(a->samples[0]->timestamp == 1700000000000LL);
    /* labels are sorted by name, as remote-write requires */
    for (size_t i = 1; i < a->n_labels; i++) {
        CHECK(strcmp(a->labels[i - 1]->name, a->labels[i]->name) < 0);
    }
    CHECK(series(wr, "requests_total", "path", "/c") != NULL);
    const Prometheus__TimeSeries *g = series(wr, "queue_depth", NULL, NULL);
    REQUIRE(g != NULL && g->n_samples == 1);
    CHECK(g->samples[0]->value == 2.5);
    const Prometheus__TimeSeries *ti = series(wr, "target_info", NULL, NULL);
    REQUIRE(ti != NULL);
    CHECK_STR(label(ti, "host_name"), "h1");
    CHECK_STR(label(ti, "job"), "shop");
    /* metadata for the families, with the help text */
    int found = 0;
    for (size_t i = 0; i < wr->n_metadata; i++) {
        if (!strcmp(wr->metadata[i]->metric_family_name, "requests_total")) {
            found = 1;
            CHECK(wr->metadata[i]->type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
            CHECK_STR(wr->metadata[i]->help, "Requests served.");
        }
    }
    CHECK(found);
    prometheus__write_request__free_unpacked(wr, NULL);
    fx_close(&f);
}

UNIT_TEST(namespace_suffixes_and_target_info_options)
{
    fx_t f;
    REQUIRE(fx_open(&f, "namespace: app\nadd_metric_suffixes: false\n"
                        "target_info:\n  enabled: false\nsend_metadata: false\n") == 0);
    send_result_t res;
    CHECK(fx_send(&f, &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    Prometheus__WriteRequest *wr = decode(unit_sink_get(f.sink, 0));
    REQUIRE(wr != NULL);
    CHECK(series(wr, "app_requests", "path", "/b") != NULL);
    CHECK(series(wr, "app_requests_total", NULL, NULL) == NULL);
    CHECK(series(wr, "app_queue_depth", NULL, NULL) != NULL);
    CHECK(series(wr, "target_info", NULL, NULL) == NULL);
    CHECK(series(wr, "app_target_info", NULL, NULL) == NULL);
    CHECK(wr->n_metadata == 0);
    prometheus__write_request__free_unpacked(wr, NULL);
    fx_close(&f);
}

UNIT_TEST(max_samples_per_send_splits_requests)
{
    fx_t f;
    REQUIRE(fx_open(&f, "max_samples_per_send: 2\nsend_metadata: false\n") == 0);
    send_result_t res;
    CHECK(fx_send(&f, &res) == MT_OK);
    int n = unit_sink_count(f.sink);
    CHECK(n >= 3); /* 5 samples (3 + 1 + target_info) at most 2 per request */
    size_t samples = 0;
    for (int i = 0; i < n; i++) {
        Prometheus__WriteRequest *wr = decode(unit_sink_get(f.sink, i));
        REQUIRE(wr != NULL);
        size_t in_req = 0;
        for (size_t k = 0; k < wr->n_timeseries; k++) {
            in_req += wr->timeseries[k]->n_samples;
        }
        CHECK(in_req <= 2);
        samples += in_req;
        prometheus__write_request__free_unpacked(wr, NULL);
    }
    CHECK(samples == 5);
    fx_close(&f);
}

UNIT_TEST(server_error_is_retried_inside_send)
{
    fx_t f;
    REQUIRE(fx_open(&f, NULL) == 0);
    int old = mt_log_level;
    mt_log_level = -1; /* the retry is logged */
    unit_sink_fail_next(f.sink, 2, 503);
    send_result_t res;
    CHECK(fx_send(&f, &res) == MT_OK);
    mt_log_level = old;
    CHECK(unit_sink_count(f.sink) == 3);
    /* the retried request is the same request */
    const unit_sink_req_t *a = unit_sink_get(f.sink, 0), *c = unit_sink_get(f.sink, 2);
    CHECK(a->len == c->len && memcmp(a->body, c->body, a->len) == 0);
    fx_close(&f);
}

UNIT_TEST(client_error_is_permanent_and_not_retried)
{
    fx_t f;
    REQUIRE(fx_open(&f, NULL) == 0);
    int old = mt_log_level;
    mt_log_level = -1;
    unit_sink_reply(f.sink, 400, "text/plain", "out of order sample", 19, NULL);
    send_result_t res;
    CHECK(fx_send(&f, &res) == MT_EPERM);
    mt_log_level = old;
    CHECK_STR(res.reason, "all_samples_failed");
    CHECK(unit_sink_count(f.sink) == 1);
    fx_close(&f);
}

UNIT_TEST(only_metrics_are_sent)
{
    fx_t f;
    REQUIRE(fx_open(&f, NULL) == 0);
    send_result_t res;
    memset(&res, 0, sizeof(res));
    CHECK(f.e.ex.ops->send(&f.e.ex, f.e.ws, MT_SIG_TRACES, f.data, f.len, 1, &res) == MT_EPERM);
    CHECK(unit_sink_count(f.sink) == 0);
    /* an undecodable batch: MT_EINVAL, so the queue splits a coalesced one */
    memset(&res, 0, sizeof(res));
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
    CHECK(f.e.ex.ops->send(&f.e.ex, f.e.ws, MT_SIG_METRICS, junk, sizeof(junk), 1, &res) ==
          MT_EINVAL);
    CHECK_STR(res.reason, "decode_error");
    fx_close(&f);
}

UNIT_TEST(pass_through_only_when_options_keep_series_as_they_are)
{
    struct {
        const char *yaml;
        int accepts;
    } cases[] = {
        {"", 1},
        {"namespace: app\n", 0},
        {"add_metric_suffixes: false\n", 0},
        {"resource_to_telemetry_conversion:\n  enabled: true\n", 0},
        {"promote_resource_attributes: [host.name]\n", 0},
        {"protobuf_message: io.prometheus.write.v2.Request\n", 0},
        {"external_labels:\n  cluster: c1\n", 1},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "endpoint: http://127.0.0.1:9/api/v1/write\n%s",
                 cases[i].yaml);
        unit_exp_t e;
        REQUIRE(unit_exp_open(&e, "prometheusremotewrite", yaml) == MT_OK);
        CHECK(e.ex.ops->accepts_format(&e.ex, MT_FMT_PRW1) == cases[i].accepts);
        CHECK(e.ex.ops->accepts_format(&e.ex, MT_FMT_OTLP) == 0);
        unit_exp_close(&e);
    }
}

UNIT_TEST(config_validation_errors)
{
    unit_exp_t e;
    CHECK(unit_exp_open(&e, "prometheusremotewrite",
                        "endpoint: prometheus:9090\n"                /* 1 */
                        "headers:\n  Content-Encoding: gzip\n"       /* 2, 3 */
                        "max_samples_per_send: 0\n"                  /* 4 */
                        "remote_write_queue:\n  num_consumers: 65\n" /* 5, 6 */
                        "external_labels:\n  bad-name: x\n") == MT_EINVAL);
    const char *want[] = {
        "exp.yaml:1: exporters.prometheusremotewrite.endpoint: \"prometheus:9090\" is not an "
        "http:// or https:// URL",
        "exporters.prometheusremotewrite.headers: Content-Encoding is set by remote-write itself",
        "exp.yaml:4: exporters.prometheusremotewrite.max_samples_per_send: must be positive",
        "exp.yaml:6: exporters.prometheusremotewrite.remote_write_queue.num_consumers: must be "
        "1..64",
        "exporters.prometheusremotewrite.external_labels: \"bad-name\" is not a valid label name",
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(want); i++) {
        int found = 0;
        for (size_t k = 0; k < e.c.nerr; k++) {
            found |= strstr(e.c.errs[k], want[i]) != NULL;
        }
        if (!found) {
            fprintf(stderr, "    missing: %s\n", want[i]);
            cfg_ctx_print(&e.c, stderr);
        }
        CHECK(found);
    }
    unit_exp_close(&e);
    CHECK(unit_exp_open(&e, "prometheusremotewrite", "namespace: x\n") == MT_EINVAL);
    CHECK(e.c.nerr == 1 && strstr(e.c.errs[0], "endpoint") != NULL);
    unit_exp_close(&e);
}
