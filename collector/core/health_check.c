/*
 * health_check.c - the `health_check` extension: GET /healthz answers 200 while the process
 * serves (liveness); GET /readyz (and the configured `path`) answers 200 when ready and 503
 * with the reason when an exporter has failed for longer than the configured time or a queue
 * is more than 90 % full.
 */
#include "component.h"
#include "server.h"
#include "service.h"

#include <stdlib.h>
#include <string.h>
#include <stddef.h>

typedef struct hc_cfg {
    char *endpoint;
    char *path;
    int64_t failure_duration;
    double queue_full_ratio;
    const cfg_node_t *ccp;
    tls_server_cfg_t tls;
} hc_cfg_t;

static const cfg_field_t hc_fields[] = {
    {"endpoint", CFG_T_STRING, "127.0.0.1:13133", 0, offsetof(hc_cfg_t, endpoint), NULL,
     "host:port for /healthz and /readyz"},
    {"path", CFG_T_STRING, "/", 0, offsetof(hc_cfg_t, path), NULL,
     "extra path answering like /readyz (OpenTelemetry Collector compatibility)"},
    {"readiness.exporter_failure_duration", CFG_T_DURATION, "30s", 0,
     offsetof(hc_cfg_t, failure_duration), NULL,
     "not ready while an exporter has been failing for longer than this"},
    {"readiness.queue_full_ratio", CFG_T_DOUBLE, "0.9", 0, offsetof(hc_cfg_t, queue_full_ratio),
     NULL, "not ready while a queue is fuller than this"},
    {"check_collector_pipeline", CFG_T_NODE, NULL, 0, offsetof(hc_cfg_t, ccp), NULL,
     "accepted for compatibility; readiness.* decides"},
    TLS_SERVER_FIELDS("", hc_cfg_t, tls),
};

static void hc_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    hc_cfg_t *cfg = cfgp;
    tls_server_cfg_check(c, node, path, "", &cfg->tls);
    if (cfg->tls.tenants_from_certificate.n) {
        cfg_error_key(c, node, path, "tls.tenants_from_certificate", "applies to receivers only");
    }
}

typedef struct hc_state {
    http_server_t *srv;
    service_t *svc;
    hc_cfg_t *cfg;
} hc_state_t;

/* Answers once the request is complete, not from begin: libmicrohttpd closes the connection
 * after a response queued before the request was read, and probes keep theirs alive. */
static void hc_complete(void *arg, http_req_t *r)
{
    hc_state_t *st = arg;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        http_respond(r, 405, "text/plain", "use GET\n", 8, "Allow", "GET, HEAD");
        return;
    }
    if (strcmp(r->path, "/healthz") == 0) {
        const char *b = "{\"status\":\"ok\"}\n";
        http_respond(r, 200, "application/json", b, strlen(b), NULL, NULL);
        return;
    }
    if (strcmp(r->path, "/readyz") == 0 || strcmp(r->path, st->cfg->path) == 0) {
        char why[256], body[400];
        if (service_ready(st->svc, st->cfg->failure_duration, st->cfg->queue_full_ratio, why,
                          sizeof(why))) {
            snprintf(body, sizeof(body), "{\"status\":\"ready\"}\n");
            http_respond(r, 200, "application/json", body, strlen(body), NULL, NULL);
        } else {
            snprintf(body, sizeof(body), "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", why);
            http_respond(r, 503, "application/json", body, strlen(body), NULL, NULL);
        }
        return;
    }
    http_respond(r, 404, "text/plain", "not found; try /healthz or /readyz\n", 35, NULL, NULL);
}

static void hc_begin(void *arg, http_req_t *r)
{
    (void)arg;
    (void)r;
}

static int hc_start(extension_t *x, service_t *svc, mt_errbuf_t *eb)
{
    hc_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->svc = svc;
    st->cfg = x->cfg;
    http_handler_t h = {.begin = hc_begin, .complete = hc_complete, .arg = st};
    char name[160];
    snprintf(name, sizeof(name), "extension %s", x->id);
    st->srv = http_server_listen(st->cfg->endpoint, 1, 4096, &h, &st->cfg->tls, name, eb);
    if (!st->srv) {
        free(st);
        return MT_ERR;
    }
    x->state = st;
    mt_log(MT_LOG_INFO, "extension %s: %s://%s/healthz and /readyz", x->id,
           tls_server_enabled(&st->cfg->tls) ? "https" : "http", st->cfg->endpoint);
    return MT_OK;
}

static void hc_stop(extension_t *x)
{
    hc_state_t *st = x->state;
    http_server_stop(st->srv);
    free(st);
    x->state = NULL;
}

const extension_ops_t extension_health_check_ops = {
    .type = "health_check",
    .fields = hc_fields,
    .nfields = MT_ARRAY_LEN(hc_fields),
    .cfg_size = sizeof(hc_cfg_t),
    .help = "liveness /healthz and readiness /readyz",
    .start = hc_start,
    .stop = hc_stop,
    .validate = hc_validate,
};
