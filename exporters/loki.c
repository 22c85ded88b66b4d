/*
 * loki.c - the `loki` exporter: OTLP logs -> Loki's push API (POST /loki/api/v1/push),
 * protobuf + snappy by default or JSON (gzip) by option (protocols.md §5).
 *
 * One label policy, configured once, decides what becomes an index label, what goes to
 * structured metadata and how the body becomes the line:
 *   labels.resource     resource attributes -> labels; an entry is `attr` (label = the
 *                       sanitised name) or `attr=label`; for one label the first present
 *                       attribute wins (deployment.environment, then .name)
 *   labels.attributes   log record attributes -> labels (same syntax); keep these bounded
 *   labels.level        `level` from severity_number, else severity_text:
 *                       trace|debug|info|warn|error|fatal (|unknown for unrecognised text)
 *   labels.event_kind   `kind="event"` on events (event_name field or `event.name` attribute)
 *   structured_metadata trace_id, span_id, event_name and the attributes not used as labels
 *   structured_metadata_resource  also the resource attributes not used as labels (as
 *                       Loki's own OTLP endpoint does; off by default: it repeats per line)
 *   line_format         raw (body as text) | json | logfmt; json and logfmt also carry the
 *                       attributes, trace_id and span_id when structured_metadata is off
 * Label names are sanitised like Prometheus's ([a-zA-Z_][a-zA-Z0-9_]*, `__` prefix reserved),
 * values longer than Loki's 2048 bytes are cut at a UTF-8 boundary, and never more than
 * max_labels (<= 15, Loki's max_label_names_per_series) names are configured. A stream with no
 * label at all gets service_name="unknown_service", as Loki's discover_service_name would.
 *
 * Batching: the queue hands one batch of one request tenant. Records are grouped into streams
 * by (tenant, label set); entries are sorted by timestamp per stream (stable, so equal
 * timestamps keep arrival order) and one push is sent per tenant. Timestamps are
 * time_unix_nano, else observed_time_unix_nano, else the time of the send.
 * Tenant (X-Scope-OrgID): the resource attribute `tenant_from_attribute` when present, else
 * the static `tenant_id`, else the incoming request's X-Scope-OrgID, else none. A batch that
 * spans tenants becomes one push per tenant; a retry resends only the pushes that did not
 * finish (a per-worker memo of the last batch), so a 429 for one tenant does not duplicate
 * the others.
 *
 * Status handling (protocols.md §5.4, §9): 2xx delivered; 429, 5xx and transport errors
 * MT_ERETRY (the queue backs off, honouring Retry-After); 400 is permanent: Loki's message is
 * parsed for the reason (too_far_behind, out_of_order, line_too_long, ...) and for how many
 * entries it ignored ("total ignored: N out of M", "N errors like: ..."), which are counted in
 * meltp_loki_entries_dropped_total{reason} and logged; Loki stores the rest of a 400 push, so
 * those are counted as sent. Other 4xx drop the push (reason http_401, http_413, ...).
 *
 * Events are also counted per service: meltp_events_received_total{exporter,service}, once
 * per batch (not per retry).
 *
 * The module's parts (sharing the private loki_int.h): loki.c (configuration, label plan,
 * state, the exporter descriptor), loki_wire.c (the OTLP wire walk), loki_build.c (streams
 * and entries), loki_render.c (entry and line rendering), loki_encode.c (push encoders and the
 * build/push driver) and loki_http.c (Loki's answers, HTTP).
 */
#include "component.h"
#include "otlp.h"
#include "codec.h"
#include "httpc.h"
#include "sb.h"
#include "events.h"
#include "promconv.h"
#include "pbwire.h"
#include "loki_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

static const cfg_field_t loki_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(loki_cfg_t, endpoint), NULL,
     "full push URL, e.g. http://loki:3100/loki/api/v1/push"},
    {"auth.authenticator", CFG_T_STRING, "", 0, offsetof(loki_cfg_t, auth), NULL,
     "id of a bearertokenauth (token) or basicauth (client_auth) extension: every request "
     "carries its Authorization header"},
    {"encoding", CFG_T_ENUM, "protobuf", 0, offsetof(loki_cfg_t, encoding), "protobuf|json",
     "protobuf (snappy) or JSON"},
    {"json_compression", CFG_T_ENUM, "gzip", 0, offsetof(loki_cfg_t, json_compression), "gzip|none",
     "body compression for encoding: json (protobuf is always snappy)"},
    {"tenant_id", CFG_T_STRING, NULL, 0, offsetof(loki_cfg_t, tenant_id), NULL,
     "static X-Scope-OrgID; wins over the incoming request's"},
    {"tenant_from_attribute", CFG_T_STRING, NULL, 0, offsetof(loki_cfg_t, tenant_attr), NULL,
     "resource attribute naming the tenant (falls back to tenant_id, then the request's)"},
    {"labels.resource", CFG_T_STRLIST,
     "[service.name, service.namespace, deployment.environment, "
     "deployment.environment.name=deployment_environment, k8s.namespace.name]",
     0, offsetof(loki_cfg_t, res_labels), NULL,
     "resource attributes that become index labels: `attr` or `attr=label_name`"},
    {"labels.attributes", CFG_T_STRLIST, NULL, 0, offsetof(loki_cfg_t, attr_labels), NULL,
     "log record attributes that become index labels (bounded values only)"},
    {"labels.level", CFG_T_BOOL, "true", 0, offsetof(loki_cfg_t, level_label), NULL,
     "`level` label from severity: trace|debug|info|warn|error|fatal|unknown"},
    {"labels.event_kind", CFG_T_BOOL, "true", 0, offsetof(loki_cfg_t, event_label), NULL,
     "`kind=\"event\"` label on events (event_name or an event.name attribute)"},
    {"structured_metadata", CFG_T_BOOL, "true", 0, offsetof(loki_cfg_t, sm), NULL,
     "trace_id, span_id, event_name and non-label attributes as structured metadata"},
    {"structured_metadata_resource", CFG_T_BOOL, "false", 0, offsetof(loki_cfg_t, sm_resource),
     NULL, "also non-label resource attributes as structured metadata"},
    {"line_format", CFG_T_ENUM, "raw", 0, offsetof(loki_cfg_t, line_format), "raw|json|logfmt",
     "the line: body as text, or a JSON / logfmt record (with attributes when "
     "structured_metadata is off)"},
    {"headers", CFG_T_STRMAP, NULL, 0, offsetof(loki_cfg_t, headers), NULL,
     "extra request headers (not X-Scope-OrgID: use tenant_id)"},
    {"max_labels", CFG_T_INT, "15", 0, offsetof(loki_cfg_t, max_labels), NULL,
     "most label names a stream may carry (1..15)"},
    {"max_response_size", CFG_T_BYTES, "64KiB", 0, offsetof(loki_cfg_t, max_response), NULL,
     "largest response body read"},
    TLS_CLIENT_FIELDS(loki_cfg_t, tls),
};

/* Loki (and Prometheus) label name rule; `__` is reserved for Loki itself. */
static int label_name_ok(const char *s)
{
    if (!s || !*s || !(isalpha((unsigned char)*s) || *s == '_') || strncmp(s, "__", 2) == 0) {
        return 0;
    }
    for (; *s; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Sanitised label name of an attribute key into buf; -1 when nothing usable is left. */
int loki_sanitize_name(const char *key, size_t klen, char *buf, size_t buflen)
{
    char tmp[256];
    if (klen >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, key, klen);
    tmp[klen] = 0;
    int n = promconv_label_name(tmp, buf, buflen);
    if (n > 0 && buf[0] == '_' && buf[1] == '_') {
        /* reserved prefix: keep the name visible instead of dropping it */
        if ((size_t)n + 4 > buflen) {
            return -1;
        }
        memmove(buf + 3, buf, (size_t)n + 1);
        memcpy(buf, "key", 3);
        n += 3;
    }
    return n;
}

static int plan_slot(lk_plan_t *p, const char *name)
{
    for (int i = 0; i < p->nslots; i++) {
        if (strcmp(p->names[i], name) == 0) {
            return i;
        }
    }
    if (p->nslots > LK_MAX_LABELS) {
        return -1;
    }
    snprintf(p->names[p->nslots], sizeof(p->names[0]), "%s", name);
    return p->nslots++;
}

/* Parses `attr` / `attr=label` entries into specs. Returns 0 or -1 with why filled. */
static int plan_specs(lk_plan_t *p, const cfg_strlist_t *l, lk_spec_t *out, int *n, char *why,
                      size_t whylen)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *item = l->items[i];
        const char *eq = strrchr(item, '=');
        char name[128];
        if (eq) {
            snprintf(name, sizeof(name), "%s", eq + 1);
            if (!label_name_ok(name)) {
                snprintf(why, whylen, "\"%s\" is not a valid Loki label name", name);
                return -1;
            }
        } else if (loki_sanitize_name(item, strlen(item), name, sizeof(name)) < 0) {
            snprintf(why, whylen, "\"%s\" gives no usable label name", item);
            return -1;
        }
        if ((eq && eq == item) || !*item) {
            snprintf(why, whylen, "\"%s\": empty attribute name", item);
            return -1;
        }
        if (*n >= 64) {
            snprintf(why, whylen, "more than 64 entries");
            return -1;
        }
        int slot = plan_slot(p, name);
        if (slot < 0 || p->nslots > LK_MAX_LABELS) {
            snprintf(why, whylen, "more than %d distinct label names", LK_MAX_LABELS);
            return -1;
        }
        size_t kl = eq ? (size_t)(eq - item) : strlen(item);
        if (kl >= sizeof(out[*n].key)) {
            snprintf(why, whylen, "\"%.64s...\": attribute name too long", item);
            return -1;
        }
        memcpy(out[*n].key, item, kl);
        out[*n].key[kl] = 0;
        out[*n].slot = slot;
        (*n)++;
    }
    return 0;
}

/* Builds the plan from the config. *bad_key names the offending key on failure. */
static int plan_build(const loki_cfg_t *cfg, lk_plan_t *p, const char **bad_key, char *why,
                      size_t whylen)
{
    memset(p, 0, sizeof(*p));
    *bad_key = "labels.resource";
    if (plan_specs(p, &cfg->res_labels, p->res, &p->nres, why, whylen) < 0) {
        return -1;
    }
    *bad_key = "labels.attributes";
    if (plan_specs(p, &cfg->attr_labels, p->attr, &p->nattr, why, whylen) < 0) {
        return -1;
    }
    *bad_key = "max_labels";
    if ((cfg->level_label && plan_slot(p, "level") < 0) ||
        (cfg->event_label && plan_slot(p, "kind") < 0) || p->nslots > LK_MAX_LABELS) {
        snprintf(why, whylen, "more than %d label names configured", LK_MAX_LABELS);
        return -1;
    }
    if (p->nslots > cfg->max_labels) {
        snprintf(why, whylen,
                 "%d label names configured (labels.resource, labels.attributes, "
                 "level, kind), more than max_labels %lld",
                 p->nslots, (long long)cfg->max_labels);
        return -1;
    }
    /* sort names; remap slots */
    int order[LK_MAX_LABELS + 1], remap[LK_MAX_LABELS + 1];
    for (int i = 0; i < p->nslots; i++) {
        order[i] = i;
    }
    for (int i = 1; i < p->nslots; i++) {
        for (int j = i; j > 0 && strcmp(p->names[order[j - 1]], p->names[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    char sorted[LK_MAX_LABELS + 1][128];
    for (int i = 0; i < p->nslots; i++) {
        remap[order[i]] = i;
        memcpy(sorted[i], p->names[order[i]], sizeof(sorted[i]));
    }
    memcpy(p->names, sorted, sizeof(sorted[0]) * (size_t)p->nslots);
    for (int i = 0; i < p->nres; i++) {
        p->res[i].slot = remap[p->res[i].slot];
    }
    for (int i = 0; i < p->nattr; i++) {
        p->attr[i].slot = remap[p->attr[i].slot];
    }
    p->level_slot = p->kind_slot = p->svc_slot = -1;
    for (int i = 0; i < p->nslots; i++) {
        if (cfg->level_label && !strcmp(p->names[i], "level")) {
            p->level_slot = i;
        }
        if (cfg->event_label && !strcmp(p->names[i], "kind")) {
            p->kind_slot = i;
        }
        if (!strcmp(p->names[i], "service_name")) {
            p->svc_slot = i;
        }
    }
    return 0;
}

/* Loki: tenant ids are at most 150 bytes of [a-zA-Z0-9!._*'()-], not "." or "..". */
int loki_tenant_ok(const char *t, size_t n)
{
    if (n == 0 || n > LK_TENANT_MAX || (n == 1 && t[0] == '.') ||
        (n == 2 && t[0] == '.' && t[1] == '.')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!(isalnum(c) || strchr("!-_.*'()", c))) {
            return 0;
        }
    }
    return 1;
}

static void loki_validate(cfg_ctx_t *c, const void *cfgp, const char *path, const cfg_node_t *node)
{
    const loki_cfg_t *cfg = cfgp;
    cfg_check_http_url(c, node, path, "endpoint", cfg->endpoint);
    tls_client_cfg_check(c, node, path, &cfg->tls);
    if (cfg->max_labels < 1 || cfg->max_labels > LK_MAX_LABELS) {
        cfg_error_key(c, node, path, "max_labels", "must be 1..%d (Loki's limit)", LK_MAX_LABELS);
    }
    lk_plan_t p;
    const char *bad = NULL;
    char why[256];
    if (cfg->max_labels >= 1 && cfg->max_labels <= LK_MAX_LABELS &&
        plan_build(cfg, &p, &bad, why, sizeof(why)) < 0) {
        cfg_error_key(c, node, path, bad, "%s", why);
    }
    if (cfg->tenant_id && !loki_tenant_ok(cfg->tenant_id, strlen(cfg->tenant_id))) {
        cfg_error_key(c, node, path, "tenant_id",
                      "\"%s\" is not a valid Loki tenant (1..150 of [a-zA-Z0-9!._*'()-])",
                      cfg->tenant_id);
    }
    if (cfg->tenant_attr && !*cfg->tenant_attr) {
        cfg_error_key(c, node, path, "tenant_from_attribute", "empty attribute name");
    }
    static const char *reserved[] = {"content-type", "content-encoding", "x-scope-orgid"};
    for (size_t i = 0; i < cfg->headers.n; i++) {
        for (size_t k = 0; k < MT_ARRAY_LEN(reserved); k++) {
            if (strcasecmp(cfg->headers.keys[i], reserved[k]) == 0) {
                cfg_error_key(c, node, path, "headers", "%s is set by the exporter%s",
                              cfg->headers.keys[i], k == 2 ? " (use tenant_id)" : "");
            }
        }
    }
}

static int loki_create(exporter_t *ex, mt_errbuf_t *eb)
{
    loki_cfg_t *cfg = ex->cfg;
    tls_client_warn(&cfg->tls, ex->id);
    loki_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    const char *bad;
    char why[256];
    if (plan_build(cfg, &st->plan, &bad, why, sizeof(why)) < 0) {
        mt_failf(eb, "%s: %s", bad, why);
        free(st);
        return MT_EINVAL;
    }
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, cfg->encoding == LOKI_ENC_JSON
                                 ? "Content-Type: application/json"
                                 : "Content-Type: application/x-protobuf");
    if (cfg->encoding == LOKI_ENC_PROTOBUF) {
        h = curl_slist_append(h, "Content-Encoding: snappy");
    } else if (cfg->json_compression == LOKI_JSON_GZIP) {
        h = curl_slist_append(h, "Content-Encoding: gzip");
    }
    h = httpc_headers_append(h, cfg->headers.keys, cfg->headers.vals, cfg->headers.n, NULL);
    st->hdrs = h;
    snprintf(st->labels, sizeof(st->labels), "exporter=\"%s\"", ex->id ? ex->id : "loki");
    st->ev =
        events_counter_create("meltp_events_received_total",
                              "Log records that are events (event_name or event.name), by service.",
                              st->labels, LK_EVENT_SERVICES, EVENTS_LABEL_UTF8);
    if (!st->ev) {
        curl_slist_free_all(st->hdrs);
        free(st);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->c_sent =
        tm_counter("meltp_loki_entries_sent_total", "Log entries Loki accepted.", st->labels);
    st->c_requests =
        tm_counter("meltp_loki_requests_total", "Loki push requests sent.", st->labels);
    ex->state = st;
    return MT_OK;
}

static void loki_destroy(exporter_t *ex)
{
    loki_state_t *st = ex ? ex->state : NULL;
    if (!st) {
        return;
    }
    curl_slist_free_all(st->hdrs);
    events_counter_destroy(st->ev);
    free(st);
    ex->state = NULL;
}

void loki_count_drop(loki_state_t *st, const char *reason, uint64_t n)
{
    if (n) {
        tm_count_reason("meltp_loki_entries_dropped_total",
                        "Log entries Loki did not store, by reason (from its 400 message).",
                        st->labels, reason, n);
    }
}

/* Events per service (events.h): the first LK_EVENT_SERVICES services get their own series,
 * the rest share service="_other". */
void loki_count_events(loki_state_t *st, const char *svc, size_t n, uint64_t events)
{
    events_counter_add(st->ev, svc, n, events);
}

const exporter_ops_t exporter_loki_ops = {
    .type = "loki",
    .fields = loki_fields,
    .nfields = MT_ARRAY_LEN(loki_fields),
    .cfg_size = sizeof(loki_cfg_t),
    .signals = SIG_BIT(MT_SIG_LOGS),
    .default_consumers =
        2, /* a push is one HTTP request per batch: 2 keep up, each holds buffers */
    .help = "Loki push API (protobuf+snappy or JSON): label policy, structured metadata, tenants",
    .validate = loki_validate,
    .create = loki_create,
    .worker_init = loki_worker_init,
    .worker_fini = loki_worker_fini,
    .send = loki_send,
    .destroy = loki_destroy,
};
