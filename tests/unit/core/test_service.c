/*
 * test_service.c - tests for collector/core/service.c: configurations given as YAML strings go
 * through service_load (the loader `meltp run` uses); errors must name FILE:LINE and the path,
 * every error is collected, and a valid config is wired so that one request reaching a receiver
 * fans out to every exporter of its pipeline (checked end to end with an OTLP/HTTP receiver on
 * a free 127.0.0.1 port and two file exporters).
 */
#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "component.h"
#include "httpc.h"
#include "service.h"

/* Loads `yaml` as file "svc.yaml"; returns the service (or NULL) and leaves errors in c. */
static service_t *load(cfg_ctx_t *c, const char *yaml)
{
    cfg_ctx_init(c, "svc.yaml");
    return service_load("svc.yaml", yaml, c);
}

/* Nonzero when some collected error is exactly `want`. */
static int has_error(const cfg_ctx_t *c, const char *want)
{
    for (size_t i = 0; i < c->nerr; i++) {
        if (strcmp(c->errs[i], want) == 0) {
            return 1;
        }
    }
    fprintf(stderr, "    missing error: %s\n    got:\n", want);
    cfg_ctx_print(c, stderr);
    return 0;
}

#define NO_TELEMETRY "  telemetry:\n    metrics:\n      level: none\n"

UNIT_TEST(load_valid_config_knows_its_exporters)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n"
                            "  otlp:\n"
                            "    protocols:\n"
                            "      http:\n"
                            "exporters:\n"
                            "  debug:\n"
                            "  debug/two:\n"
                            "service:\n"
                            "  shutdown_timeout: 3s\n" NO_TELEMETRY "  pipelines:\n"
                            "    traces:\n"
                            "      receivers: [otlp]\n"
                            "      exporters: [debug, debug/two]\n");
    CHECK(c.nerr == 0);
    REQUIRE(s != NULL);
    CHECK(service_has_exporter(s, "debug"));
    CHECK(service_has_exporter(s, "debug/two"));
    CHECK(!service_has_exporter(s, "debug/three"));
    CHECK(!service_has_exporter(s, "otlp"));
    CHECK(service_shutdown_timeout_ms(s) == 3000);
    /* queues exist only once the service started */
    CHECK(service_exporter_queue(s, "debug", MT_SIG_TRACES) == NULL);
    service_stop_destroy(s);
    cfg_ctx_fini(&c);
}

/* Found by tests/fuzz/fuzz_config.c: the process-wide memory limit was computed from a
 * memory_limiter whose config had just been refused (-64 << 20: UBSan aborts the asan build). */
UNIT_TEST(refused_memory_limiter_sets_no_limit)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n  otlp:\n    protocols:\n      http:\n"
                            "processors:\n  memory_limiter:\n    limit_mib: 512\n"
                            "    spike_limit_mib: -64\n"
                            "exporters:\n  debug:\n"
                            "service:\n  pipelines:\n    logs:\n"
                            "      receivers: [otlp]\n      processors: [memory_limiter]\n"
                            "      exporters: [debug]\n");
    CHECK(s == NULL);
    CHECK(has_error(&c, "svc.yaml:8: processors.memory_limiter.spike_limit_mib: must be >= 0 "
                        "and below limit_mib"));
    service_stop_destroy(s);
    cfg_ctx_fini(&c);
}

UNIT_TEST(shutdown_timeout_defaults_to_ten_seconds)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n  otlp:\n    protocols:\n      http:\n"
                            "exporters:\n  debug:\n"
                            "service:\n  pipelines:\n    logs:\n"
                            "      receivers: [otlp]\n      exporters: [debug]\n");
    REQUIRE(s != NULL);
    CHECK(service_shutdown_timeout_ms(s) == 10000);
    service_stop_destroy(s);
    cfg_ctx_fini(&c);
}

UNIT_TEST(undefined_references_report_file_line_and_path)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n"                   /* 1 */
                            "  otlp:\n"                      /* 2 */
                            "    protocols:\n"               /* 3 */
                            "      http:\n"                  /* 4 */
                            "exporters:\n"                   /* 5 */
                            "  debug:\n"                     /* 6 */
                            "service:\n"                     /* 7 */
                            "  pipelines:\n"                 /* 8 */
                            "    traces:\n"                  /* 9 */
                            "      receivers:\n"             /* 10 */
                            "        - otlp\n"               /* 11 */
                            "        - zipkin\n"             /* 12 */
                            "      processors:\n"            /* 13 */
                            "        - batch\n"              /* 14 */
                            "      exporters:\n"             /* 15 */
                            "        - debug\n"              /* 16 */
                            "        - otlphttp/missing\n"); /* 17 */
    CHECK(s == NULL);
    /* every problem is reported, not only the first */
    CHECK(c.nerr == 3);
    CHECK(has_error(&c, "svc.yaml:12: service.pipelines.traces.receivers: \"zipkin\" is not "
                        "defined under receivers"));
    CHECK(has_error(&c, "svc.yaml:14: service.pipelines.traces.processors: \"batch\" is not "
                        "defined under processors"));
    CHECK(has_error(&c, "svc.yaml:17: service.pipelines.traces.exporters: "
                        "\"otlphttp/missing\" is not defined under exporters"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(unknown_types_and_bad_ids_are_errors)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n"                 /* 1 */
                            "  otlp:\n"                    /* 2 */
                            "    protocols:\n"             /* 3 */
                            "      http:\n"                /* 4 */
                            "processors:\n"                /* 5 */
                            "  frobnicate:\n"              /* 6 */
                            "exporters:\n"                 /* 7 */
                            "  debug:\n"                   /* 8 */
                            "  nosuch/x:\n"                /* 9 */
                            "  debug/a/b:\n"               /* 10 */
                            "service:\n"                   /* 11 */
                            "  pipelines:\n"               /* 12 */
                            "    spans:\n"                 /* 13 */
                            "      receivers: [otlp]\n"    /* 14 */
                            "      exporters: [debug]\n"); /* 15 */
    CHECK(s == NULL);
    CHECK(
        has_error(&c, "svc.yaml:6: processors.frobnicate: unknown processor type \"frobnicate\""));
    CHECK(has_error(&c, "svc.yaml:9: exporters.nosuch/x: unknown exporter type \"nosuch\""));
    CHECK(has_error(&c, "svc.yaml:10: exporters.debug/a/b: invalid component id (use type or "
                        "type/name; letters, digits, _ - . only)"));
    CHECK(has_error(&c, "svc.yaml:13: service.pipelines.spans: unknown pipeline type \"spans\" "
                        "(valid: traces, metrics, logs, profiles)"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(exporter_without_the_signal_is_refused)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n"
                            "  otlp:\n"
                            "    protocols:\n"
                            "      http:\n"
                            "exporters:\n"
                            "  prometheusremotewrite:\n"
                            "    endpoint: http://127.0.0.1:9/api/v1/write\n"
                            "service:\n"                                   /* 8 */
                            "  pipelines:\n"                               /* 9 */
                            "    traces:\n"                                /* 10 */
                            "      receivers: [otlp]\n"                    /* 11 */
                            "      exporters: [prometheusremotewrite]\n"); /* 12 */
    CHECK(s == NULL);
    CHECK(c.nerr == 1);
    CHECK(has_error(&c, "svc.yaml:12: service.pipelines.traces.exporters: prometheusremotewrite "
                        "does not support traces"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(layout_errors_top_level_and_pipeline_keys)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n"               /* 1 */
                            "  otlp:\n"                  /* 2 */
                            "    protocols:\n"           /* 3 */
                            "      http:\n"              /* 4 */
                            "exporters:\n"               /* 5 */
                            "  debug:\n"                 /* 6 */
                            "exporter:\n"                /* 7 */
                            "  debug:\n"                 /* 8 */
                            "service:\n"                 /* 9 */
                            "  pipelines:\n"             /* 10 */
                            "    logs:\n"                /* 11 */
                            "      receivers: [otlp]\n"  /* 12 */
                            "      exports: [debug]\n"); /* 13 */
    CHECK(s == NULL);
    CHECK(has_error(&c, "svc.yaml:7: exporter: unknown key (valid: receivers, processors, "
                        "exporters, extensions, service, slo)"));
    CHECK(has_error(&c, "svc.yaml:13: service.pipelines.logs: exports: unknown key (valid: "
                        "receivers, processors, exporters)"));
    /* the pipeline has no exporters left: that is reported too */
    int found = 0;
    for (size_t i = 0; i < c.nerr; i++) {
        found |=
            strstr(c.errs[i], "service.pipelines.logs.exporters: at least one is required") != NULL;
    }
    CHECK(found);
    cfg_ctx_fini(&c);

    s = load(&c, "receivers:\n  otlp:\n    protocols:\n      http:\n");
    CHECK(s == NULL);
    CHECK(has_error(&c, "svc.yaml:1: service: required"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(exporter_queue_settings_are_checked_at_their_line)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n"             /* 1 */
                            "  otlp:\n"                /* 2 */
                            "    protocols:\n"         /* 3 */
                            "      http:\n"            /* 4 */
                            "exporters:\n"             /* 5 */
                            "  debug:\n"               /* 6 */
                            "    sending_queue:\n"     /* 7 */
                            "      num_consumers: 0\n" /* 8 */
                            "    retry_on_failure:\n"  /* 9 */
                            "      multiplier: 0.5\n"  /* 10 */
                            "    timeout: 0s\n"        /* 11 */
                            "service:\n"
                            "  pipelines:\n"
                            "    metrics:\n"
                            "      receivers: [otlp]\n"
                            "      exporters: [debug]\n");
    CHECK(s == NULL);
    CHECK(c.nerr == 3);
    CHECK(has_error(&c, "svc.yaml:8: exporters.debug.sending_queue.num_consumers: must be 1..256"));
    CHECK(has_error(&c, "svc.yaml:10: exporters.debug.retry_on_failure.multiplier: must be >= 1"));
    CHECK(has_error(&c, "svc.yaml:11: exporters.debug.timeout: must be positive"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(syntax_error_is_reported_with_the_file_name)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n  otlp: [\n");
    CHECK(s == NULL);
    REQUIRE(c.nerr == 1);
    CHECK(strncmp(c.errs[0], "svc.yaml:", 9) == 0);
    cfg_ctx_fini(&c);
}

/* ---- end to end: one request, two exporters ------------------------------------------ */

static long post(const char *url, const char *ctype, const unsigned char *body, size_t len)
{
    CURL *h = curl_easy_init();
    if (!h) {
        return -1;
    }
    httpc_resp_t resp = {.max = 4096};
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
    struct curl_slist *hl = curl_slist_append(NULL, hdr);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httpc_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    httpc_resp_free(&resp);
    return code;
}

/* Waits up to ms for `path` to hold a line containing `needle`; returns the line count. */
static int wait_lines_with(const char *path, const char *needle, int ms)
{
    for (int waited = 0;; waited += 10) {
        size_t len = 0;
        unsigned char *d = unit_read_file(path, &len);
        int lines = 0;
        if (d && strstr((char *)d, needle)) {
            for (size_t i = 0; i < len; i++) {
                lines += d[i] == '\n';
            }
        }
        free(d);
        if (lines > 0 || waited >= ms) {
            return lines;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

UNIT_TEST(start_fans_one_request_out_to_both_exporters)
{
    int port = unit_free_port();
    REQUIRE(port > 0);
    char dir[] = "/tmp/meltp-unit-svc-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char yaml[2048], f1[128], f2[128], f3[128];
    snprintf(f1, sizeof(f1), "%s/a.json", dir);
    snprintf(f2, sizeof(f2), "%s/b.json", dir);
    snprintf(f3, sizeof(f3), "%s/logs.json", dir);
    snprintf(yaml, sizeof(yaml),
             "receivers:\n"
             "  otlp:\n"
             "    protocols:\n"
             "      http:\n"
             "        endpoint: 127.0.0.1:%d\n"
             "exporters:\n"
             "  file/a:\n    path: %s\n"
             "  file/b:\n    path: %s\n"
             "  file/logs:\n    path: %s\n"
             "service:\n" NO_TELEMETRY "  pipelines:\n"
             "    traces:\n"
             "      receivers: [otlp]\n"
             "      exporters: [file/a, file/b]\n"
             "    logs:\n"
             "      receivers: [otlp]\n"
             "      exporters: [file/logs]\n",
             port, f1, f2, f3);
    cfg_ctx_t c;
    service_t *s = load(&c, yaml);
    cfg_ctx_print(&c, stderr);
    REQUIRE(s != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    REQUIRE(service_start(s, &eb) == MT_OK);
    /* one queue per (pipeline, exporter), found by signal */
    CHECK(service_exporter_queue(s, "file/a", MT_SIG_TRACES) != NULL);
    CHECK(service_exporter_queue(s, "file/b", MT_SIG_TRACES) != NULL);
    CHECK(service_exporter_queue(s, "file/a", MT_SIG_LOGS) == NULL);
    CHECK(service_exporter_queue(s, "file/logs", MT_SIG_LOGS) != NULL);
    char why[256] = "";
    CHECK(service_ready(s, 1000, 0.9, why, sizeof(why)) == 1);

    char fx[1024], url[128];
    snprintf(fx, sizeof(fx), "%s/otlp-js/traces-n1/traces-json-1.bin", unit_fixtures_dir());
    size_t len = 0;
    unsigned char *body = unit_read_file(fx, &len);
    REQUIRE(body != NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", port);
    CHECK(post(url, "application/json", body, len) == 200);
    free(body);
    CHECK(wait_lines_with(f1, "fixture-traces", 5000) == 1);
    CHECK(wait_lines_with(f2, "fixture-traces", 5000) == 1);
    service_stop_destroy(s);
    /* the logs pipeline saw nothing */
    size_t l3 = 99;
    unsigned char *d3 = unit_read_file(f3, &l3);
    CHECK(d3 != NULL && l3 == 0);
    free(d3);
    cfg_ctx_fini(&c);
    unlink(f1);
    unlink(f2);
    unlink(f3);
    rmdir(dir);
}

/* auth: {authenticator: <id>} references (service.c resolve_auth) and the authenticators' own
 * checks (auth.c, auth_basic.c), each with FILE:LINE. */
UNIT_TEST(authenticator_references_are_checked_with_file_and_line)
{
    cfg_ctx_t c;
    service_t *s = load(&c, "receivers:\n"                                    /* 1 */
                            "  otlp:\n"                                       /* 2 */
                            "    protocols:\n"                                /* 3 */
                            "      http:\n"                                   /* 4 */
                            "        auth:\n"                                 /* 5 */
                            "          authenticator: nope\n"                 /* 6 */
                            "  prometheusremotewrite:\n"                      /* 7 */
                            "    auth: {authenticator: file_storage}\n"       /* 8 */
                            "exporters:\n"                                    /* 9 */
                            "  otlphttp:\n"                                   /* 10 */
                            "    endpoint: http://127.0.0.1:9\n"              /* 11 */
                            "    auth: {authenticator: bearertokenauth}\n"    /* 12 */
                            "  loki:\n"                                       /* 13 */
                            "    endpoint: http://127.0.0.1:9/p\n"            /* 14 */
                            "    auth: {authenticator: basicauth/unlisted}\n" /* 15 */
                            "extensions:\n"                                   /* 16 */
                            "  file_storage:\n"                               /* 17 */
                            "    directory: /tmp\n"                           /* 18 */
                            "  bearertokenauth:\n"                            /* 19 */
                            "    tenants:\n"                                  /* 20 */
                            "      acme: {token: t1}\n"                       /* 21 */
                            "      \"..\": {token: t2}\n"                     /* 22 */
                            "  basicauth/unlisted:\n"                         /* 23 */
                            "    htpasswd:\n"                                 /* 24 */
                            "      file: /nonexistent/htpasswd\n"             /* 25 */
                            "service:\n"                                      /* 26 */
                            "  extensions: [file_storage, bearertokenauth]\n" /* 27 */
                            "  telemetry:\n"                                  /* 28 */
                            "    metrics:\n"                                  /* 29 */
                            "      auth: {authenticator: missing}\n"          /* 30 */
                            "  pipelines:\n"                                  /* 31 */
                            "    traces:\n"                                   /* 32 */
                            "      receivers: [otlp]\n"                       /* 33 */
                            "      exporters: [otlphttp]\n"                   /* 34 */
                            "    metrics:\n"                                  /* 35 */
                            "      receivers: [prometheusremotewrite]\n"      /* 36 */
                            "      exporters: [otlphttp]\n"                   /* 37 */
                            "    logs:\n"                                     /* 38 */
                            "      receivers: [otlp]\n"                       /* 39 */
                            "      exporters: [loki]\n");                     /* 40 */
    CHECK(s == NULL);
    CHECK(has_error(&c, "svc.yaml:6: receivers.otlp.protocols.http.auth.authenticator: \"nope\" "
                        "is not defined under extensions"));
    CHECK(has_error(&c, "svc.yaml:8: receivers.prometheusremotewrite.auth.authenticator: "
                        "\"file_storage\" is not an authenticator (bearertokenauth or basicauth)"));
    CHECK(has_error(&c, "svc.yaml:12: exporters.otlphttp.auth.authenticator: bearertokenauth "
                        "\"bearertokenauth\" has no token or filename to send"));
    CHECK(has_error(&c, "svc.yaml:15: exporters.loki.auth.authenticator: extension "
                        "\"basicauth/unlisted\" is not listed in service.extensions"));
    CHECK(has_error(&c, "svc.yaml:22: extensions.bearertokenauth.tenants...: not a valid tenant "
                        "id (1 to 63 characters of A-Z a-z 0-9 ! - _ . * ' ( ), not . or ..)"));
    CHECK(has_error(&c, "svc.yaml:25: extensions.basicauth/unlisted.htpasswd.file: cannot read "
                        "/nonexistent/htpasswd: No such file or directory"));
    CHECK(has_error(&c, "svc.yaml:30: service.telemetry.metrics.auth.authenticator: \"missing\" "
                        "is not defined under extensions"));
    cfg_ctx_fini(&c);
}
