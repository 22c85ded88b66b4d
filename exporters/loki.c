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
 */
#include "component.h"
#include "otlp.h"
#include "codec.h"
#include "httpc.h"
#include "sb.h"
#include "events.h"
#include "promconv.h"
#include "pbwire.h"

#include <ctype.h>
#include <curl/curl.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>


#define LK_MAX_LABELS 15            /* Loki's max_label_names_per_series default */
#define LK_LABEL_VALUE_MAX 2048     /* Loki's max_label_value_length default */
#define LK_MAX_TENANTS 64           /* distinct tenants in one batch (more are dropped) */
#define LK_TENANT_MAX 150           /* Loki's tenant id length limit */
#define LK_MAX_DEPTH 16             /* AnyValue nesting rendered into text */
#define LK_EVENT_SERVICES 256       /* distinct services with their own events counter */
#define LK_TEXT_MAX (64u << 20)     /* one rendered line / request body */

/* CFG_T_ENUM values, in the order of their "a|b|c" lists in loki_fields */
typedef enum { LOKI_ENC_PROTOBUF = 0, LOKI_ENC_JSON } loki_encoding_t;
typedef enum { LOKI_JSON_GZIP = 0, LOKI_JSON_UNCOMPRESSED } loki_json_compression_t;
typedef enum { LOKI_LINE_RAW = 0, LOKI_LINE_JSON, LOKI_LINE_LOGFMT } loki_line_format_t;

typedef struct loki_cfg {
    exporter_common_t common;
    char *endpoint;
    loki_encoding_t encoding;                 /* "protobuf|json" */
    loki_json_compression_t json_compression; /* "gzip|none" */
    char *tenant_id;
    char *tenant_attr;
    cfg_strlist_t res_labels;
    cfg_strlist_t attr_labels;
    int level_label;
    int event_label;
    int sm;
    int sm_resource;
    loki_line_format_t line_format;           /* "raw|json|logfmt" */
    cfg_strmap_t headers;
    int64_t max_labels;
    int64_t max_response;
    int tls_insecure_skip_verify;
    char *tls_ca_file;
} loki_cfg_t;

static const cfg_field_t loki_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(loki_cfg_t, endpoint), NULL,
     "full push URL, e.g. http://loki:3100/loki/api/v1/push"},
    {"encoding", CFG_T_ENUM, "protobuf", 0, offsetof(loki_cfg_t, encoding), "protobuf|json",
     "protobuf (snappy) or JSON"},
    {"json_compression", CFG_T_ENUM, "gzip", 0, offsetof(loki_cfg_t, json_compression),
     "gzip|none", "body compression for encoding: json (protobuf is always snappy)"},
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
    {"tls.insecure_skip_verify", CFG_T_BOOL, "false", 0,
     offsetof(loki_cfg_t, tls_insecure_skip_verify), NULL, "do not verify the server certificate"},
    {"tls.ca_file", CFG_T_STRING, NULL, 0, offsetof(loki_cfg_t, tls_ca_file), NULL,
     "CA bundle for https"},
};

/* ---- label plan: which label names exist and where their values come from ------------- */

typedef struct lk_spec {
    char key[256];        /* attribute key */
    int slot;
} lk_spec_t;

typedef struct lk_plan {
    char names[LK_MAX_LABELS + 1][128]; /* label names, sorted: slot order = selector order */
    int nslots;
    lk_spec_t res[64], attr[64];
    int nres, nattr;
    int level_slot, kind_slot, svc_slot;
} lk_plan_t;

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
static int sanitize_name(const char *key, size_t klen, char *buf, size_t buflen)
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
static int plan_specs(lk_plan_t *p, const cfg_strlist_t *l, lk_spec_t *out, int *n,
                      char *why, size_t whylen)
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
        } else if (sanitize_name(item, strlen(item), name, sizeof(name)) < 0) {
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
        snprintf(why, whylen, "%d label names configured (labels.resource, labels.attributes, "
                 "level, kind), more than max_labels %lld", p->nslots,
                 (long long)cfg->max_labels);
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
static int tenant_ok(const char *t, size_t n)
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

static void loki_validate(cfg_ctx_t *c, const void *cfgp, const char *path,
                          const cfg_node_t *node)
{
    const loki_cfg_t *cfg = cfgp;
    if (cfg->endpoint && strncmp(cfg->endpoint, "http://", 7) &&
        strncmp(cfg->endpoint, "https://", 8)) {
        cfg_error_key(c, node, path, "endpoint", "\"%s\" is not an http:// or https:// URL",
                      cfg->endpoint);
    }
    if (cfg->max_labels < 1 || cfg->max_labels > LK_MAX_LABELS) {
        cfg_error_key(c, node, path, "max_labels", "must be 1..%d (Loki's limit)",
                      LK_MAX_LABELS);
    }
    lk_plan_t p;
    const char *bad = NULL;
    char why[256];
    if (cfg->max_labels >= 1 && cfg->max_labels <= LK_MAX_LABELS &&
        plan_build(cfg, &p, &bad, why, sizeof(why)) < 0) {
        cfg_error_key(c, node, path, bad, "%s", why);
    }
    if (cfg->tenant_id && !tenant_ok(cfg->tenant_id, strlen(cfg->tenant_id))) {
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

/* ---- state ------------------------------------------------------------------------------ */

typedef struct loki_state {
    lk_plan_t plan;
    struct curl_slist *hdrs;
    char labels[256];                 /* exporter="..." */
    tm_counter_t *c_sent, *c_requests, *c_events_total;
    events_counter_t *ev;             /* meltp_events_received_total{exporter,service} */
} loki_state_t;

static int loki_create(exporter_t *ex, mt_errbuf_t *eb)
{
    loki_cfg_t *cfg = ex->cfg;
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
    h = curl_slist_append(h, cfg->encoding == LOKI_ENC_JSON ? "Content-Type: application/json"
                                           : "Content-Type: application/x-protobuf");
    if (cfg->encoding == LOKI_ENC_PROTOBUF) {
        h = curl_slist_append(h, "Content-Encoding: snappy");
    } else if (cfg->json_compression == LOKI_JSON_GZIP) {
        h = curl_slist_append(h, "Content-Encoding: gzip");
    }
    h = curl_slist_append(h, "User-Agent: meltp/" MELTP_VERSION);
    h = curl_slist_append(h, "Expect:");
    for (size_t i = 0; i < cfg->headers.n; i++) {
        char line[1024];
        snprintf(line, sizeof(line), "%s: %s", cfg->headers.keys[i], cfg->headers.vals[i]);
        h = curl_slist_append(h, line);
    }
    st->hdrs = h;
    snprintf(st->labels, sizeof(st->labels), "exporter=\"%s\"", ex->id ? ex->id : "loki");
    st->ev = events_counter_create(
        "meltp_events_received_total",
        "Log records that are events (event_name or event.name), by service.", st->labels,
        LK_EVENT_SERVICES, EVENTS_LABEL_UTF8);
    if (!st->ev) {
        curl_slist_free_all(st->hdrs);
        free(st);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->c_sent = tm_counter("meltp_loki_entries_sent_total",
                            "Log entries Loki accepted.", st->labels);
    st->c_requests = tm_counter("meltp_loki_requests_total", "Loki push requests sent.",
                                st->labels);
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

static void count_drop(loki_state_t *st, const char *reason, uint64_t n)
{
    if (n) {
        tm_count_reason("meltp_loki_entries_dropped_total",
                        "Log entries Loki did not store, by reason (from its 400 message).",
                        st->labels, reason, n);
    }
}

/* Events per service (events.h): the first LK_EVENT_SERVICES services get their own series,
 * the rest share service="_other". */
static void count_events(loki_state_t *st, const char *svc, size_t n, uint64_t events)
{
    events_counter_add(st->ev, svc, n, events);
}

/* ---- text buffers ----------------------------------------------------------------------- */

/* Text is built in core string builders (sb.h) capped at LK_TEXT_MAX, except the batch's
 * encoded entries (eb), which are unbounded. Malformed wire data met while rendering fails the
 * builder with MT_EINVAL (sb_fail), telling it apart from out of memory. */

/* JSON string body (no quotes); control characters escaped, UTF-8 passed through. */
static void sb_json_esc(sb_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        sb_put(b, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            char q[2] = {'\\', (char)c};
            sb_put(b, q, 2);
        } else if (c == '\n') {
            sb_put(b, "\\n", 2);
        } else if (c == '\r') {
            sb_put(b, "\\r", 2);
        } else if (c == '\t') {
            sb_put(b, "\\t", 2);
        } else {
            sb_put(b, e, 6);
        }
    }
    sb_put(b, s + run, n - run);
}

static void sb_json_str(sb_t *b, const char *s, size_t n)
{
    sb_putc(b, '"');
    sb_json_esc(b, s, n);
    sb_putc(b, '"');
}

static void sb_double(sb_t *b, double v)
{
    char t[64];
    int n = promconv_format_float(v, t, sizeof(t));
    if (n > 0) {
        sb_put(b, t, (size_t)n);
    } else {
        sb_puts(b, "0");
    }
}

/* ---- the OTLP wire: a zero-copy walk of the encoded batch --------------------------------- */

/* The batch is an ExportLogsServiceRequest the receiver already accepted. Instead of
 * unpacking it with protobuf-c (a copy of every string and an object per value), the exporter
 * walks the bytes and reads strings as {ptr,len} slices into them. As protobuf-c's
 * NUL-terminated copies were read with strlen, a string slice ends at its first NUL byte. A
 * malformed field the walk meets (bad varint, length past the end, known field with the wrong
 * wire type, groups) makes the batch undecodable, as protobuf_c_message_unpack did; repeated
 * singular fields keep the last one (for oneof members too). The reader is pbwire.h. */

/* Length of a string field as protobuf-c's copy read with strlen would give it. */
static inline size_t wstrlen(const uint8_t *p, size_t n)
{
    if (n <= 32) {
        size_t i = 0;
        if (n >= 8) {
            /* a word at a time (the last one overlapping) until one holds a zero byte */
            uint64_t w;
            for (; i + 8 <= n; i += 8) {
                memcpy(&w, p + i, 8);
                if ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull) {
                    break;
                }
            }
            if (i == n) {
                return n;
            }
            if (i + 8 > n) {
                i = n - 8;
                memcpy(&w, p + i, 8);
                if (!((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull)) {
                    return n;
                }
            }
        }
        for (; i < n; i++) {
            if (!p[i]) {
                return i;
            }
        }
        return n;
    }
    const uint8_t *z = memchr(p, 0, n);
    return z ? (size_t)(z - p) : n;
}

/* AnyValue: kinds are the oneof field numbers. */
enum { AV_NONE, AV_STR, AV_BOOL, AV_INT, AV_DOUBLE, AV_ARRAY, AV_KVLIST, AV_BYTES, AV_STRINDEX };

typedef struct av {
    int kind;
    const uint8_t *p;      /* string (NUL-cut), bytes, array or kvlist payload */
    size_t n;
    uint64_t v;            /* bool, int, double bits */
} av_t;

static int av_parse(const uint8_t *p, size_t n, av_t *a)
{
    static const uint8_t want[9] = {0, 2, 0, 0, 1, 2, 2, 2, 0};
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    a->kind = AV_NONE;
    a->p = NULL;
    a->n = 0;
    a->v = 0;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num > 8) {
            continue;
        }
        if (f.wt != want[f.num]) {
            return -1;
        }
        a->kind = (int)f.num;
        a->p = f.p;
        a->n = f.num == AV_STR ? wstrlen(f.p, f.n) : f.n;
        a->v = f.v;
    }
    return r;
}

/* KeyValue: key slice and the encoded value (empty when absent). */
static int kv_parse(const uint8_t *p, size_t n, const char **k, size_t *kl, const uint8_t **v,
                    size_t *vl)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    *k = "";
    *kl = 0;
    *v = NULL;
    *vl = 0;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != 2) {
                return -1;
            }
            *k = (const char *)f.p;
            *kl = wstrlen(f.p, f.n);
        } else if (f.num == 2) {
            if (f.wt != 2) {
                return -1;
            }
            *v = f.p;
            *vl = f.n;
        } else if (f.num == 3 && f.wt != 0) {
            return -1;
        }
    }
    return r;
}

/* One attribute, zero-copy; a string value is resolved once. */
typedef struct wkv {
    const char *key;
    const uint8_t *v;
    const char *s;         /* the value when it is a string */
    uint32_t klen, vlen, slen;
    int is_str, kind;
    uint64_t iv;           /* bool / int value */
} wkv_t;

static int wkv_parse(const uint8_t *p, size_t n, wkv_t *kv)
{
    /* the usual shape first: {1: key, 2: {1: string | 3: int}}, one-byte lengths, nothing
     * else; read exactly as the general walk below would */
    if (n >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= n && p[2 + p[1]] == 0x12 &&
        (size_t)p[3 + p[1]] + p[1] + 4 == n && p[3 + p[1]] >= 2) {
        size_t kl = p[1], vl = p[3 + kl];
        const uint8_t *v = p + 4 + kl;
        if (v[0] == 0x0a && (size_t)v[1] + 2 == vl) {
            kv->key = (const char *)p + 2;
            kv->klen = (uint32_t)wstrlen(p + 2, kl);
            kv->v = v;
            kv->vlen = (uint32_t)vl;
            kv->kind = AV_STR;
            kv->is_str = 1;
            kv->iv = 0;
            kv->s = (const char *)v + 2;
            kv->slen = (uint32_t)wstrlen(v + 2, v[1]);
            return 0;
        }
        uint64_t iv;
        if (v[0] == 0x18 && wvarint(v + 1, v + vl, &iv) == v + vl) {
            kv->key = (const char *)p + 2;
            kv->klen = (uint32_t)wstrlen(p + 2, kl);
            kv->v = v;
            kv->vlen = (uint32_t)vl;
            kv->kind = AV_INT;
            kv->is_str = 0;
            kv->iv = iv;
            kv->s = NULL;
            kv->slen = 0;
            return 0;
        }
    }
    size_t kl, vl;
    if (kv_parse(p, n, &kv->key, &kl, &kv->v, &vl) < 0) {
        return -1;
    }
    kv->klen = (uint32_t)kl;
    kv->vlen = (uint32_t)vl;
    av_t a;
    if (av_parse(kv->v, vl, &a) < 0) {
        return -1;
    }
    kv->kind = a.kind;
    kv->iv = a.v;
    kv->is_str = a.kind == AV_STR;
    kv->s = kv->is_str ? (const char *)a.p : NULL;
    kv->slen = kv->is_str ? (uint32_t)a.n : 0;
    return 0;
}

static void any_json(sb_t *b, const uint8_t *p, size_t n, int depth);

static void kvlist_json(sb_t *b, const uint8_t *p, size_t n, int depth)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r, i = 0;
    sb_putc(b, '{');
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num != 1) {
            continue;
        }
        const char *k;
        const uint8_t *v;
        size_t kl, vl;
        if (f.wt != 2 || kv_parse(f.p, f.n, &k, &kl, &v, &vl) < 0) {
            sb_fail(b, MT_EINVAL);
            return;
        }
        if (i++) {
            sb_putc(b, ',');
        }
        sb_json_str(b, k, kl);
        sb_putc(b, ':');
        any_json(b, v, vl, depth + 1);
    }
    if (r < 0) {
        sb_fail(b, MT_EINVAL);
    }
    sb_putc(b, '}');
}

/* AnyValue as a JSON value (Go's json.Marshal of pdata's AsRaw, as Loki stringifies). */
static void any_json(sb_t *b, const uint8_t *p, size_t n, int depth)
{
    av_t a;
    if (depth > LK_MAX_DEPTH) {
        sb_puts(b, "null");
        return;
    }
    if (av_parse(p, n, &a) < 0) {
        sb_fail(b, MT_EINVAL);
        return;
    }
    switch (a.kind) {
    case AV_STR:
        sb_json_str(b, (const char *)a.p, a.n);
        break;
    case AV_BOOL:
        sb_puts(b, a.v ? "true" : "false");
        break;
    case AV_INT:
        sb_i64(b, (int64_t)a.v);
        break;
    case AV_DOUBLE: {
        double d;
        memcpy(&d, &a.v, sizeof(d));
        if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
            sb_putc(b, '"');
            sb_double(b, d);
            sb_putc(b, '"');
        } else {
            sb_double(b, d);
        }
        break;
    }
    case AV_ARRAY: {
        const uint8_t *q = a.p, *end = a.p + a.n;
        wf_t f;
        int r, i = 0;
        sb_putc(b, '[');
        while ((r = wnext(&q, end, &f)) > 0) {
            if (f.num != 1) {
                continue;
            }
            if (f.wt != 2) {
                sb_fail(b, MT_EINVAL);
                return;
            }
            if (i++) {
                sb_putc(b, ',');
            }
            any_json(b, f.p, f.n, depth + 1);
        }
        if (r < 0) {
            sb_fail(b, MT_EINVAL);
        }
        sb_putc(b, ']');
        break;
    }
    case AV_KVLIST:
        kvlist_json(b, a.p, a.n, depth);
        break;
    case AV_BYTES:
        sb_putc(b, '"');
        sb_base64(b, a.p, a.n);
        sb_putc(b, '"');
        break;
    default:
        sb_puts(b, "null");
    }
}

/* AnyValue as text (pdata's AsString): strings as they are, scalars formatted, maps and
 * arrays as JSON, bytes as base64, nothing as "". */
static void any_text(sb_t *b, const uint8_t *p, size_t n)
{
    av_t a;
    if (av_parse(p, n, &a) < 0) {
        sb_fail(b, MT_EINVAL);
        return;
    }
    switch (a.kind) {
    case AV_STR:
        sb_put(b, (const char *)a.p, a.n);
        break;
    case AV_DOUBLE: {
        double d;
        memcpy(&d, &a.v, sizeof(d));
        sb_double(b, d);
        break;
    }
    case AV_BYTES:
        sb_base64(b, a.p, a.n);
        break;
    case AV_NONE:
    case AV_STRINDEX:
        break;
    default:
        any_json(b, p, n, 0);
    }
}

/* ---- building pushes ---------------------------------------------------------------------- */

typedef struct lk_pair {
    const char *name, *val;
    uint32_t nlen, vlen;
} lk_pair_t;

/* An entry, already encoded (protobuf: the whole `entries` field of its stream, tag and
 * length included; JSON: its `[ts, line, {metadata}]` value) at off in the entry buffer. */
typedef struct lk_entry {
    uint64_t ts;
    size_t off;
    uint32_t stream, len;
} lk_entry_t;

typedef struct lk_stream {
    const char *sel;      /* selector text {a="b", c="d"} */
    uint32_t sel_len, tenant, count, first, fill;
    int unsorted;         /* an entry came with a timestamp older than the one before */
    uint64_t hash, last_ts;
    size_t bytes;         /* its entries' encoded bytes */
    lk_pair_t labels[LK_MAX_LABELS + 1];
    int nlabels;
} lk_stream_t;

/* Sanitised label names of attribute keys, kept across batches: keyed by the raw key bytes,
 * names in a fixed pool (pointers stay valid until the cache is cleared, which only happens
 * between batches, when it is full). */
#define LK_NC_SLOTS 2048u
#define LK_NC_MAX 1536u
#define LK_NC_POOL (64u << 10)

typedef struct lk_nc_ent {
    uint64_t h;
    uint32_t off, rlen;   /* raw key in the pool */
    int32_t nlen;         /* sanitised name follows the raw key; <= 0 no usable name */
    uint32_t used;
} lk_nc_ent_t;

typedef struct lk_names {
    lk_nc_ent_t *t;
    char *pool;
    size_t pool_len, n;
} lk_names_t;

/* Memory a worker keeps between batches: a batch's arena (reset, not freed, so steady state
 * takes no page faults), the entry / stream / hash arrays, attribute views, the name cache and
 * the protobuf body buffer. Buffers grown by an unusually big batch are shrunk afterwards. */
typedef struct lk_scratch {
    arena_t *a;
    size_t arena_first;     /* first block size; grows to what a batch needed */
    uint8_t *pb;
    size_t pb_cap;
    sb_t tmp, val;
    sb_t eb;              /* the batch's encoded entries, in arrival order */
    lk_entry_t *e;
    size_t e_cap;
    lk_stream_t *s;
    size_t s_cap;
    uint32_t *ht;           /* stream hash table: index+1, 0 empty */
    size_t ht_size;
    wkv_t *rkv, *akv;       /* resource / record attributes */
    size_t rkv_cap, akv_cap;
    lk_names_t names;
} lk_scratch_t;

static void scratch_fini(lk_scratch_t *sc)
{
    arena_destroy(sc->a);
    free(sc->pb);
    sb_fini(&sc->tmp);
    sb_fini(&sc->val);
    sb_fini(&sc->eb);
    free(sc->e);
    free(sc->s);
    free(sc->ht);
    free(sc->rkv);
    free(sc->akv);
    free(sc->names.t);
    free(sc->names.pool);
    memset(sc, 0, sizeof(*sc));
}

typedef struct lk_build {
    exporter_t *ex;
    lk_scratch_t *sc;
    arena_t *a;
    sb_t tmp;             /* scratch for a selector or a line */
    sb_t val;             /* scratch for one value (value_text) */
    sb_t eb;              /* encoded entries (see lk_entry_t) */
    lk_entry_t *e;
    size_t ne;
    lk_stream_t *s;
    size_t ns;
    uint32_t *ht;           /* stream hash table: index+1, 0 empty */
    size_t htmask;
    const char *tenants[LK_MAX_TENANTS];
    size_t tlen[LK_MAX_TENANTS];
    size_t ntenants;
    uint64_t dropped;       /* records dropped while building (bad tenants) */
    const char *drop_reason;
    int bad;                /* malformed wire data met */
    uint32_t name_memo[16]; /* name cache slot + 1 of the last key of each length % 16 */
} lk_build_t;

static const char *arena_text(lk_build_t *b, const char *s, size_t n)
{
    return arena_strndup(b->a, s, n);
}

/* Grows a scratch array to hold at least n items. */
static int grow(void **p, size_t *cap, size_t n, size_t item)
{
    if (n <= *cap) {
        return 0;
    }
    size_t nc = *cap ? *cap : 64;
    while (nc < n) {
        nc *= 2;
    }
    void *np = realloc(*p, nc * item);
    if (!np) {
        return -1;
    }
    *p = np;
    *cap = nc;
    return 0;
}

static inline uint64_t key_hash(const char *p, size_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull, w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    return h;
}

/* Sanitised label name of an attribute key (see sanitize_name), cached. Returns the name (valid
 * for the batch) with *nl its length, or NULL with *nl <= 0 when no usable name is left, or
 * NULL with *nl = 1 when out of memory. */
static const char *attr_name(lk_build_t *b, const char *key, size_t klen, int *nl)
{
    lk_names_t *nc = &b->sc->names;
    /* records of a batch mostly repeat the same keys: the last name found for a key of this
     * length is checked before hashing */
    uint32_t *memo = &b->name_memo[klen & 15];
    if (*memo) {
        const lk_nc_ent_t *c = &nc->t[*memo - 1];
        if (c->rlen == klen && memcmp(nc->pool + c->off, key, klen) == 0) {
            *nl = c->nlen;
            return c->nlen > 0 ? nc->pool + c->off + c->rlen : NULL;
        }
    }
    uint64_t h = key_hash(key, klen);
    size_t i = 0;
    if (nc->t) {
        i = (size_t)h & (LK_NC_SLOTS - 1);
        while (nc->t[i].used) {
            const lk_nc_ent_t *c = &nc->t[i];
            if (c->h == h && c->rlen == klen && memcmp(nc->pool + c->off, key, klen) == 0) {
                *memo = (uint32_t)i + 1;
                *nl = c->nlen;
                return c->nlen > 0 ? nc->pool + c->off + c->rlen : NULL;
            }
            i = (i + 1) & (LK_NC_SLOTS - 1);
        }
    }
    char name[256];
    int n = sanitize_name(key, klen, name, sizeof(name));
    *nl = n;
    if (nc->t && nc->n < LK_NC_MAX &&
        nc->pool_len + klen + (n > 0 ? (size_t)n : 0) + 1 <= LK_NC_POOL) {
        lk_nc_ent_t *c = &nc->t[i];
        c->h = h;
        c->off = (uint32_t)nc->pool_len;
        c->rlen = (uint32_t)klen;
        c->nlen = n;
        c->used = 1;
        memcpy(nc->pool + nc->pool_len, key, klen);
        if (n > 0) {
            memcpy(nc->pool + nc->pool_len + klen, name, (size_t)n);
        }
        nc->pool_len += klen + (n > 0 ? (size_t)n : 0);
        nc->n++;
        *memo = (uint32_t)i + 1;
        return n > 0 ? nc->pool + c->off + klen : NULL;
    }
    if (n <= 0) {
        return NULL;
    }
    const char *nm = arena_text(b, name, (size_t)n);
    if (!nm) {
        *nl = 1;
    }
    return nm;
}

/* Renders an encoded AnyValue as text; strings are borrowed from the batch, anything else is
 * rendered into b->val (valid until the next call) or, with keep, copied into the arena. */
static const char *value_text_in(lk_build_t *b, const uint8_t *p, size_t n, size_t *len,
                                 int keep)
{
    av_t a;
    if (av_parse(p, n, &a) < 0) {
        b->bad = 1;
        return NULL;
    }
    if (a.kind == AV_STR) {
        *len = a.n;
        return (const char *)a.p;
    }
    b->val.len = 0;
    any_text(&b->val, p, n);
    if (b->val.err == MT_EINVAL) {
        b->bad = 1;
        return NULL;
    }
    if (b->val.err) {
        return NULL;
    }
    *len = b->val.len;
    if (!keep) {
        return b->val.p ? b->val.p : "";
    }
    return arena_text(b, b->val.p ? b->val.p : "", b->val.len);
}

static const char *value_text(lk_build_t *b, const uint8_t *p, size_t n, size_t *len)
{
    return value_text_in(b, p, n, len, 1);
}

static const char *kv_text(lk_build_t *b, const wkv_t *kv, size_t *len)
{
    if (kv->is_str) {
        *len = kv->slen;
        return kv->s;
    }
    if (kv->kind == AV_BOOL) {
        *len = kv->iv ? 4 : 5;
        return kv->iv ? "true" : "false";
    }
    if (kv->kind == AV_INT) {
        /* as any_text renders it (sb_i64), without the detour */
        char t[24], *q = t + sizeof(t);
        uint64_t u = (int64_t)kv->iv < 0 ? (uint64_t)0 - kv->iv : kv->iv;
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if ((int64_t)kv->iv < 0) {
            *--q = '-';
        }
        *len = (size_t)(t + sizeof(t) - q);
        return arena_text(b, q, *len);
    }
    return value_text(b, kv->v, kv->vlen, len);
}

/* kv_text for a value copied right away: ints into ibuf, others into b->val, no arena. */
static const char *kv_text_tmp(lk_build_t *b, const wkv_t *kv, size_t *len, char ibuf[24])
{
    if (kv->is_str) {
        *len = kv->slen;
        return kv->s;
    }
    if (kv->kind == AV_BOOL) {
        *len = kv->iv ? 4 : 5;
        return kv->iv ? "true" : "false";
    }
    if (kv->kind == AV_INT) {
        char *q = ibuf + 24;
        uint64_t u = (int64_t)kv->iv < 0 ? (uint64_t)0 - kv->iv : kv->iv;
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if ((int64_t)kv->iv < 0) {
            *--q = '-';
        }
        *len = (size_t)(ibuf + 24 - q);
        return q;
    }
    return value_text_in(b, kv->v, kv->vlen, len, 0);
}

/* Cuts a label value to Loki's limit without splitting a UTF-8 character. */
static size_t cut_utf8(const char *s, size_t n, size_t max)
{
    if (n <= max) {
        return n;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

/* Severity as a level code: 0 none, 1..6 trace..fatal, 7 unknown (text not recognised). */
static const char *const lk_levels[8] = {NULL, "trace", "debug", "info", "warn", "error", "fatal",
                                         "unknown"};
static const uint8_t lk_level_len[8] = {0, 5, 5, 4, 4, 5, 5, 7};

static int level_code(int sevnum, const char *text, size_t n)
{
    if (sevnum >= 1 && sevnum <= 24) {
        return 1 + (sevnum - 1) / 4;
    }
    if (!n) {
        return 0;
    }
    static const struct {
        const char *p;
        uint8_t len, lv;
    } map[] = {{"trace", 5, 1}, {"debug", 5, 2}, {"dbg", 3, 2}, {"info", 4, 3},
               {"notice", 6, 3}, {"warn", 4, 4}, {"err", 3, 5}, {"fatal", 5, 6},
               {"crit", 4, 6}, {"emerg", 5, 6}, {"alert", 5, 6}, {"panic", 5, 6}};
    for (size_t i = 0; i < MT_ARRAY_LEN(map); i++) {
        if (n >= map[i].len && strncasecmp(text, map[i].p, map[i].len) == 0) {
            return map[i].lv;
        }
    }
    return 7;
}

/* Maps severity to Loki's level names. */
const char *loki_level(int sevnum, const char *text);
const char *loki_level(int sevnum, const char *text)
{
    return lk_levels[level_code(sevnum, text, text ? strlen(text) : 0)];
}

static int tenant_index(lk_build_t *b, const char *t, size_t n)
{
    for (size_t i = 0; i < b->ntenants; i++) {
        if (b->tlen[i] == n && memcmp(b->tenants[i], t, n) == 0) {
            return (int)i;
        }
    }
    if (b->ntenants >= LK_MAX_TENANTS) {
        return -1;
    }
    b->tenants[b->ntenants] = t;
    b->tlen[b->ntenants] = n;
    return (int)b->ntenants++;
}

/* Selector text of a label set (sorted by name: slot order is sorted order). */
static void selector(sb_t *sb, const lk_plan_t *p, const mt_str_t *vals)
{
    sb->len = 0;
    sb_putc(sb, '{');
    int first = 1;
    for (int i = 0; i < p->nslots; i++) {
        if (!vals[i].len) {
            continue;
        }
        if (!first) {
            sb_put(sb, ", ", 2);
        }
        first = 0;
        sb_puts(sb, p->names[i]);
        sb_put(sb, "=\"", 2);
        /* Go string-literal escapes, as Loki's selector parser reads them */
        const char *s = vals[i].ptr;
        size_t run = 0;
        for (size_t k = 0; k < vals[i].len; k++) {
            unsigned char c = (unsigned char)s[k];
            if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
                continue;
            }
            sb_put(sb, s + run, k - run);
            run = k + 1;
            if (c == '"' || c == '\\') {
                char q[2] = {'\\', (char)c};
                sb_put(sb, q, 2);
            } else if (c == '\n') {
                sb_put(sb, "\\n", 2);
            } else if (c == '\t') {
                sb_put(sb, "\\t", 2);
            } else if (c == '\r') {
                sb_put(sb, "\\r", 2);
            } else {
                char x[5];
                snprintf(x, sizeof(x), "\\x%02x", c);
                sb_put(sb, x, 4);
            }
        }
        sb_put(sb, s + run, vals[i].len - run);
        sb_putc(sb, '"');
    }
    sb_putc(sb, '}');
}

/* Room for one more stream: grows the stream array and (at half load) the hash table. */
static int stream_room(lk_build_t *b)
{
    lk_scratch_t *sc = b->sc;
    if (grow((void **)&sc->s, &sc->s_cap, b->ns + 1, sizeof(lk_stream_t)) < 0) {
        return -1;
    }
    b->s = sc->s;
    if ((b->ns + 1) * 2 > sc->ht_size) {
        size_t nsz = sc->ht_size * 2;
        uint32_t *nt = calloc(nsz, sizeof(uint32_t));
        if (!nt) {
            return -1;
        }
        for (size_t k = 0; k < b->ns; k++) {
            size_t i = (size_t)b->s[k].hash & (nsz - 1);
            while (nt[i]) {
                i = (i + 1) & (nsz - 1);
            }
            nt[i] = (uint32_t)(k + 1);
        }
        free(sc->ht);
        sc->ht = b->ht = nt;
        sc->ht_size = nsz;
        b->htmask = nsz - 1;
    }
    return 0;
}

/* Finds or adds the stream for (tenant, label values). Returns its index or -1 (OOM). */
static int stream_for(lk_build_t *b, int tenant, const mt_str_t *vals)
{
    const lk_plan_t *p = &((loki_state_t *)b->ex->state)->plan;
    selector(&b->tmp, p, vals);
    if (b->tmp.err || stream_room(b) < 0) {
        return -1;
    }
    uint64_t h = mt_fnv1a(MT_FNV_BASIS ^ (uint64_t)tenant, b->tmp.p, b->tmp.len);
    size_t i = (size_t)h & b->htmask;
    while (b->ht[i]) {
        lk_stream_t *s = &b->s[b->ht[i] - 1];
        if (s->hash == h && s->tenant == (uint32_t)tenant && s->sel_len == b->tmp.len &&
            memcmp(s->sel, b->tmp.p, b->tmp.len) == 0) {
            return (int)(b->ht[i] - 1);
        }
        i = (i + 1) & b->htmask;
    }
    lk_stream_t *s = &b->s[b->ns];
    memset(s, 0, sizeof(*s));
    s->sel = arena_text(b, b->tmp.p, b->tmp.len);
    if (!s->sel) {
        return -1;
    }
    s->sel_len = (uint32_t)b->tmp.len;
    s->tenant = (uint32_t)tenant;
    s->hash = h;
    for (int k = 0; k < p->nslots; k++) {
        if (vals[k].len) {
            s->labels[s->nlabels].name = p->names[k];
            s->labels[s->nlabels].nlen = (uint32_t)strlen(p->names[k]);
            s->labels[s->nlabels].val = vals[k].ptr;
            s->labels[s->nlabels].vlen = (uint32_t)vals[k].len;
            s->nlabels++;
        }
    }
    b->ht[i] = (uint32_t)++b->ns;
    return (int)(b->ns - 1);
}

/* The stream {service_name="unknown_service"} of a tenant, for records with no label. */
static int unknown_stream(lk_build_t *b, int tenant)
{
    static const char sel[] = "{service_name=\"unknown_service\"}";
    if (stream_room(b) < 0) {
        return -1;
    }
    uint64_t h = mt_fnv1a(MT_FNV_BASIS ^ (uint64_t)tenant, sel, sizeof(sel) - 1);
    size_t i = (size_t)h & b->htmask;
    while (b->ht[i]) {
        lk_stream_t *s = &b->s[b->ht[i] - 1];
        if (s->hash == h && s->tenant == (uint32_t)tenant && s->sel_len == sizeof(sel) - 1 &&
            memcmp(s->sel, sel, sizeof(sel) - 1) == 0) {
            return (int)(b->ht[i] - 1);
        }
        i = (i + 1) & b->htmask;
    }
    lk_stream_t *s = &b->s[b->ns];
    memset(s, 0, sizeof(*s));
    s->sel = sel;
    s->sel_len = sizeof(sel) - 1;
    s->tenant = (uint32_t)tenant;
    s->hash = h;
    s->labels[0] = (lk_pair_t){"service_name", "unknown_service", 12, 15};
    s->nlabels = 1;
    b->ht[i] = (uint32_t)++b->ns;
    return (int)(b->ns - 1);
}

static int key_is(const wkv_t *kv, const char *key, size_t klen)
{
    return kv->klen == klen && memcmp(kv->key, key, klen) == 0;
}

static const wkv_t *find_attr(const wkv_t *kv, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++) {
        if (key_is(&kv[i], key, kl)) {
            return &kv[i];
        }
    }
    return NULL;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char h[513] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    for (size_t i = 0; i < n; i++) {
        memcpy(out + 2 * i, h + 2 * p[i], 2);
    }
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return 0;
        }
    }
    return 1;
}


static uint8_t *put_len(uint8_t *p, uint8_t tag, size_t n)
{
    *p++ = tag;
    return put_varint(p, n);
}

static size_t ts_inner(uint64_t ts)
{
    uint64_t sec = ts / 1000000000ull, ns = ts % 1000000000ull;
    return (sec ? 1 + vsz(sec) : 0) + (ns ? 1 + vsz(ns) : 0);
}

/* ---- one entry, encoded straight into the entry buffer (b->eb) ----------------------------
 * protobuf: the stream's `entries` field (0x12, length, EntryAdapter{timestamp, line,
 * structuredMetadata...}); the length gets two bytes up front and is fixed at the end (the
 * rare entry under 128 or over 16383 bytes moves once). JSON: ["ts","line",{"k":"v",...}]. */

static void ent_begin(lk_build_t *b, int json, uint64_t ts)
{
    sb_t *eb = &b->eb;
    if (json) {
        sb_put(eb, "[\"", 2);
        sb_u64(eb, ts);
        sb_put(eb, "\",", 2);
        return;
    }
    if (eb->len + 33 > eb->cap && sb_room(eb, 32) < 0) {
        return;
    }
    uint8_t *p = (uint8_t *)eb->p + eb->len;
    *p = 0x12;
    p += 3;
    uint64_t sec = ts / 1000000000ull, ns = ts % 1000000000ull;
    p = put_len(p, 0x0a, ts_inner(ts));
    if (sec) {
        *p++ = 0x08;
        p = put_varint(p, sec);
    }
    if (ns) {
        *p++ = 0x10;
        p = put_varint(p, ns);
    }
    eb->len = (size_t)(p - (uint8_t *)eb->p);
}

static void ent_line(lk_build_t *b, int json, const char *line, size_t n)
{
    sb_t *eb = &b->eb;
    if (json) {
        sb_json_str(eb, line, n);
        return;
    }
    if (!n || (eb->len + n + 12 > eb->cap && sb_room(eb, n + 11) < 0)) {
        return;
    }
    uint8_t *p = put_len((uint8_t *)eb->p + eb->len, 0x12, n);
    memcpy(p, line, n);
    eb->len = (size_t)(p + n - (uint8_t *)eb->p);
}

static inline void ent_pair(lk_build_t *b, int json, const char *name, size_t nl, const char *v,
                     size_t vl, int *npairs)
{
    sb_t *eb = &b->eb;
    if (json) {
        sb_put(eb, *npairs ? "," : ",{", *npairs ? 1 : 2);
        (*npairs)++;
        sb_json_str(eb, name, nl);
        sb_putc(eb, ':');
        sb_json_str(eb, v, vl);
        return;
    }
    if (nl && nl < 128 && vl < 128 && nl + vl + 4 < 128) {
        /* the usual short pair: every length one byte */
        size_t pi = 2 + nl + (vl ? 2 + vl : 0);
        if (eb->len + pi + 3 > eb->cap && sb_room(eb, pi + 2) < 0) {
            return;
        }
        uint8_t *p = (uint8_t *)eb->p + eb->len;
        p[0] = 0x1a;
        p[1] = (uint8_t)pi;
        p[2] = 0x0a;
        p[3] = (uint8_t)nl;
        memcpy(p + 4, name, nl);
        p += 4 + nl;
        if (vl) {
            p[0] = 0x12;
            p[1] = (uint8_t)vl;
            memcpy(p + 2, v, vl);
        }
        eb->len += 2 + pi;
        (*npairs)++;
        return;
    }
    size_t pi = (nl ? 1 + vsz(nl) + nl : 0) + (vl ? 1 + vsz(vl) + vl : 0);
    if (eb->len + pi + 12 > eb->cap && sb_room(eb, pi + 11) < 0) {
        return;
    }
    uint8_t *p = put_len((uint8_t *)eb->p + eb->len, 0x1a, pi);
    if (nl) {
        p = put_len(p, 0x0a, nl);
        memcpy(p, name, nl);
        p += nl;
    }
    if (vl) {
        p = put_len(p, 0x12, vl);
        memcpy(p, v, vl);
        p += vl;
    }
    eb->len = (size_t)(p - (uint8_t *)eb->p);
    (*npairs)++;
}

/* Closes the entry begun at start; returns its encoded size (0 when out of memory). */
static size_t ent_end(lk_build_t *b, int json, size_t start, int npairs)
{
    sb_t *eb = &b->eb;
    if (json) {
        if (npairs) {
            sb_putc(eb, '}');
        }
        sb_putc(eb, ']');
        return eb->err ? 0 : eb->len - start;
    }
    if (eb->err || sb_room(eb, 8) < 0) {
        return 0;
    }
    size_t n = eb->len - start - 3;
    size_t k = vsz(n);
    uint8_t *p = (uint8_t *)eb->p + start;
    if (k != 2) {
        memmove(p + 1 + k, p + 3, n);
    }
    put_varint(p + 1, n);
    eb->len = start + 1 + k + n;
    return 1 + k + n;
}

/* Attribute `kv` as structured metadata (sanitised name, text value). */
static int ent_attr(lk_build_t *b, int json, const wkv_t *kv, int *npairs)
{
    int nl;
    const char *nm = attr_name(b, kv->key, kv->klen, &nl);
    if (!nm) {
        return nl > 0 ? -1 : 0; /* no usable name: skipped (Loki would reject the entry) */
    }
    size_t vl = 0;
    char ibuf[24];
    const char *v = kv_text_tmp(b, kv, &vl, ibuf);
    if (!v) {
        return -1;
    }
    ent_pair(b, json, nm, (size_t)nl, v, vl, npairs);
    return 0;
}

/* logfmt value: bare when safe, else quoted with \" \\ \n escapes. */
static void sb_logfmt_val(sb_t *sb, const char *v, size_t n)
{
    int quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++) {
        unsigned char c = (unsigned char)v[i];
        quote = c <= ' ' || c == '=' || c == '"' || c == '\\';
    }
    if (!quote) {
        sb_put(sb, v, n);
        return;
    }
    sb_putc(sb, '"');
    sb_json_esc(sb, v, n);
    sb_putc(sb, '"');
}

/* One log record, zero-copy. */
typedef struct wrec {
    uint64_t t, obs;
    int sev;
    const char *sevtext, *ev;
    size_t sevlen, evlen;
    const uint8_t *body, *tid, *sid;
    size_t blen, tidlen, sidlen;
    size_t nattr;           /* in sc->akv */
} wrec_t;

/* Builds the line of one record into b->tmp (json / logfmt formats). */
static void render_line(lk_build_t *b, const loki_cfg_t *cfg, const wrec_t *r, const wkv_t *attrs,
                        const uint8_t *used, const char *tid, const char *sid, const char *ev,
                        size_t evlen)
{
    sb_t *sb = &b->tmp;
    av_t body;
    if (av_parse(r->body, r->blen, &body) < 0) {
        sb_fail(sb, MT_EINVAL);
        return;
    }
    int kv_body = body.kind == AV_KVLIST;
    int extras = !cfg->sm;
    int first = 1;
    const uint8_t *q, *end;
    wf_t f;
    int rc;
    sb->len = 0;
    if (cfg->line_format == LOKI_LINE_JSON) {
        sb_putc(sb, '{');
        if (kv_body) {
            q = body.p;
            end = body.p + body.n;
            while ((rc = wnext(&q, end, &f)) > 0) {
                const char *k;
                const uint8_t *v;
                size_t kl, vl;
                if (f.num != 1) {
                    continue;
                }
                if (f.wt != 2 || kv_parse(f.p, f.n, &k, &kl, &v, &vl) < 0) {
                    sb_fail(sb, MT_EINVAL);
                    return;
                }
                if (!first) {
                    sb_putc(sb, ',');
                }
                first = 0;
                sb_json_str(sb, k, kl);
                sb_putc(sb, ':');
                any_json(sb, v, vl, 1);
            }
            if (rc < 0) {
                sb_fail(sb, MT_EINVAL);
            }
        } else {
            sb_puts(sb, "\"body\":");
            any_json(sb, r->body, r->blen, 0);
            first = 0;
        }
        if (extras) {
            for (size_t i = 0; i < r->nattr; i++) {
                if (i < 64 && used[i]) {
                    continue;
                }
                const wkv_t *kv = &attrs[i];
                if (!first) {
                    sb_putc(sb, ',');
                }
                first = 0;
                sb_json_str(sb, kv->key, kv->klen);
                sb_putc(sb, ':');
                any_json(sb, kv->v, kv->vlen, 0);
            }
            const char *k[3] = {"trace_id", "span_id", "event_name"};
            const char *v[3] = {tid, sid, ev};
            size_t vl[3] = {tid ? 32 : 0, sid ? 16 : 0, evlen};
            for (int j = 0; j < 3; j++) {
                if (v[j]) {
                    if (!first) {
                        sb_putc(sb, ',');
                    }
                    first = 0;
                    sb_json_str(sb, k[j], strlen(k[j]));
                    sb_putc(sb, ':');
                    sb_json_str(sb, v[j], vl[j]);
                }
            }
        }
        sb_putc(sb, '}');
        return;
    }
    /* logfmt */
    if (kv_body) {
        q = body.p;
        end = body.p + body.n;
        while ((rc = wnext(&q, end, &f)) > 0) {
            const char *k;
            const uint8_t *v;
            size_t kl, vl;
            if (f.num != 1) {
                continue;
            }
            if (f.wt != 2 || kv_parse(f.p, f.n, &k, &kl, &v, &vl) < 0) {
                sb_fail(sb, MT_EINVAL);
                return;
            }
            int nl;
            const char *name = attr_name(b, k, kl, &nl);
            if (!name) {
                if (nl > 0) {
                    sb_fail(sb, MT_ENOMEM);
                    return;
                }
                continue;
            }
            if (!first) {
                sb_putc(sb, ' ');
            }
            first = 0;
            sb_put(sb, name, (size_t)nl);
            sb_putc(sb, '=');
            size_t start = sb->len;
            any_text(sb, v, vl);
            /* re-quote what any_text wrote, if it needs it */
            size_t n = sb->len - start;
            const char *copy = n ? arena_text(b, sb->p + start, n) : NULL;
            sb->len = start;
            sb_logfmt_val(sb, copy ? copy : "", n);
        }
        if (rc < 0) {
            sb_fail(sb, MT_EINVAL);
        }
    } else {
        sb_puts(sb, "msg=");
        size_t start = sb->len;
        any_text(sb, r->body, r->blen);
        size_t n = sb->len - start;
        const char *copy = n ? arena_text(b, sb->p + start, n) : NULL;
        sb->len = start;
        sb_logfmt_val(sb, copy ? copy : "", n);
        first = 0;
    }
    if (extras) {
        for (size_t i = 0; i < r->nattr; i++) {
            if (i < 64 && used[i]) {
                continue;
            }
            const wkv_t *kv = &attrs[i];
            int nl;
            const char *name = attr_name(b, kv->key, kv->klen, &nl);
            if (!name) {
                if (nl > 0) {
                    sb_fail(sb, MT_ENOMEM);
                    return;
                }
                continue;
            }
            size_t vl = 0;
            const char *v = kv_text(b, kv, &vl);
            if (!first) {
                sb_putc(sb, ' ');
            }
            first = 0;
            sb_put(sb, name, (size_t)nl);
            sb_putc(sb, '=');
            sb_logfmt_val(sb, v ? v : "", v ? vl : 0);
        }
        const char *k[3] = {"trace_id", "span_id", "event_name"};
        const char *v[3] = {tid, sid, ev};
        size_t vl[3] = {tid ? 32 : 0, sid ? 16 : 0, evlen};
        for (int j = 0; j < 3; j++) {
            if (v[j]) {
                sb_putc(sb, ' ');
                sb_puts(sb, k[j]);
                sb_putc(sb, '=');
                sb_logfmt_val(sb, v[j], vl[j]);
            }
        }
    }
}

/* Reads one LogRecord's fields; attributes go to sc->akv. Returns 0 or -1 (malformed/OOM,
 * b->bad tells which). */
static int read_record(lk_build_t *b, const uint8_t *p, size_t n, wrec_t *r)
{
    lk_scratch_t *sc = b->sc;
    const uint8_t *end = p + n;
    wf_t f;
    int rc;
    memset(r, 0, sizeof(*r));
    r->sevtext = r->ev = "";
    while ((rc = wnext(&p, end, &f)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wt != 1) {
                goto bad;
            }
            r->t = f.v;
            break;
        case 11:
            if (f.wt != 1) {
                goto bad;
            }
            r->obs = f.v;
            break;
        case 2:
            if (f.wt != 0) {
                goto bad;
            }
            r->sev = (int)(int32_t)(uint32_t)f.v;
            break;
        case 3:
            if (f.wt != 2) {
                goto bad;
            }
            r->sevtext = (const char *)f.p;
            r->sevlen = wstrlen(f.p, f.n);
            break;
        case 5:
            if (f.wt != 2) {
                goto bad;
            }
            r->body = f.p;
            r->blen = f.n;
            break;
        case 6:
            if (f.wt != 2) {
                goto bad;
            }
            if (grow((void **)&sc->akv, &sc->akv_cap, r->nattr + 1, sizeof(wkv_t)) < 0) {
                return -1;
            }
            if (wkv_parse(f.p, f.n, &sc->akv[r->nattr]) < 0) {
                goto bad;
            }
            r->nattr++;
            break;
        case 7:
            if (f.wt != 0) {
                goto bad;
            }
            break;
        case 8:
            if (f.wt != 5) {
                goto bad;
            }
            break;
        case 9:
            if (f.wt != 2) {
                goto bad;
            }
            r->tid = f.p;
            r->tidlen = f.n;
            break;
        case 10:
            if (f.wt != 2) {
                goto bad;
            }
            r->sid = f.p;
            r->sidlen = f.n;
            break;
        case 12:
            if (f.wt != 2) {
                goto bad;
            }
            r->ev = (const char *)f.p;
            r->evlen = wstrlen(f.p, f.n);
            break;
        default:
            break;
        }
    }
    if (rc == 0) {
        return 0;
    }
bad:
    b->bad = 1;
    return -1;
}

/* Reads a Resource's attributes (appended to sc->rkv at *nra). */
static int read_resource(lk_build_t *b, const uint8_t *p, size_t n, size_t *nra)
{
    lk_scratch_t *sc = b->sc;
    const uint8_t *end = p + n;
    wf_t f;
    int rc;
    while ((rc = wnext(&p, end, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != 2) {
                break;
            }
            if (grow((void **)&sc->rkv, &sc->rkv_cap, *nra + 1, sizeof(wkv_t)) < 0) {
                return -1;
            }
            if (wkv_parse(f.p, f.n, &sc->rkv[*nra]) < 0) {
                break;
            }
            (*nra)++;
        } else if (f.num == 2 && f.wt != 0) {
            break;
        }
    }
    if (rc == 0) {
        return 0;
    }
    b->bad = 1;
    return -1;
}

/* Records in a ScopeLogs (field 2 occurrences), or -1 when malformed. */
static long count_records(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    wf_t f;
    int rc;
    long c = 0;
    while ((rc = wnext(&p, end, &f)) > 0) {
        if (f.num == 2) {
            if (f.wt != 2) {
                return -1;
            }
            c++;
        } else if ((f.num == 1 || f.num == 3) && f.wt != 2) {
            return -1;
        }
    }
    return rc < 0 ? -1 : c;
}

static int build_fail(const lk_build_t *b)
{
    return b->bad ? MT_EINVAL : MT_ENOMEM;
}

/* One log record into an entry. */
static int build_record(lk_build_t *b, const uint8_t *rp, size_t rn, int ti, const mt_str_t *rvals,
                        const uint8_t *rused, size_t nra, int *scache, uint64_t now_ns,
                        uint32_t *seq, uint64_t *nevents)
{
    exporter_t *ex = b->ex;
    const loki_cfg_t *cfg = ex->cfg;
    loki_state_t *st = ex->state;
    const lk_plan_t *p = &st->plan;
    lk_scratch_t *sc = b->sc;
    wrec_t lr;
    if (read_record(b, rp, rn, &lr) < 0) {
        return build_fail(b);
    }
    const wkv_t *attrs = sc->akv;
    uint8_t used[64];
    memset(used, 0, sizeof(used));
    const char *ev = lr.evlen ? lr.ev : NULL;
    size_t evlen = lr.evlen;
    int ev_from_attr = 0;
    mt_str_t vals[LK_MAX_LABELS + 1];
    if (p->nattr) {
        memcpy(vals, rvals, sizeof(vals));
    }
    for (size_t a = 0; a < lr.nattr; a++) {
        const wkv_t *kv = &attrs[a];
        if (!ev && kv->is_str && kv->slen && key_is(kv, "event.name", 10)) {
            ev = kv->s;
            evlen = kv->slen;
            ev_from_attr = 1;
        }
        for (int k = 0; k < p->nattr; k++) {
            if (key_is(kv, p->attr[k].key, strlen(p->attr[k].key))) {
                if (a < 64) {
                    used[a] = 1;
                }
                if (!vals[p->attr[k].slot].len) {
                    size_t vl = 0;
                    const char *v = kv_text(b, kv, &vl);
                    if (!v) {
                        return build_fail(b);
                    }
                    vals[p->attr[k].slot].ptr = v;
                    vals[p->attr[k].slot].len = cut_utf8(v, vl, LK_LABEL_VALUE_MAX);
                }
                break;
            }
        }
    }
    int lv = p->level_slot >= 0 ? level_code(lr.sev, lr.sevtext, lr.sevlen) : 0;
    if (ev) {
        (*nevents)++;
    }
    int isev = ev && p->kind_slot >= 0;
    int si;
    int *cached = p->nattr ? NULL : &scache[lv * 2 + isev];
    if (cached && *cached >= 0) {
        si = *cached;
    } else {
        if (!p->nattr) {
            memcpy(vals, rvals, sizeof(vals));
        }
        if (lv) {
            vals[p->level_slot].ptr = lk_levels[lv];
            vals[p->level_slot].len = lk_level_len[lv];
        }
        if (isev) {
            vals[p->kind_slot].ptr = "event";
            vals[p->kind_slot].len = 5;
        }
        int any = 0;
        for (int k = 0; k < p->nslots; k++) {
            any |= vals[k].len != 0;
        }
        /* Loki refuses a stream without labels: mirror its discover_service_name */
        si = any ? stream_for(b, ti, vals) : unknown_stream(b, ti);
        if (si < 0) {
            return MT_ENOMEM;
        }
        if (cached) {
            *cached = si;
        }
    }
    if (grow((void **)&sc->e, &sc->e_cap, b->ne + 1, sizeof(lk_entry_t)) < 0) {
        return MT_ENOMEM;
    }
    b->e = sc->e;
    uint64_t ts = lr.t ? lr.t : lr.obs ? lr.obs : now_ns;
    (*seq)++;
    int json = cfg->encoding == LOKI_ENC_JSON;
    size_t start = b->eb.len;
    ent_begin(b, json, ts);
    /* line */
    char tid[33], sid[17];
    int has_tid = lr.tidlen == 16 && !all_zero(lr.tid, 16);
    int has_sid = lr.sidlen == 8 && !all_zero(lr.sid, 8);
    if (has_tid) {
        hex(tid, lr.tid, 16);
        tid[32] = 0;
    }
    if (has_sid) {
        hex(sid, lr.sid, 8);
        sid[16] = 0;
    }
    if (cfg->line_format == LOKI_LINE_RAW) {
        size_t ll = 0;
        const char *line = value_text_in(b, lr.body, lr.blen, &ll, 0);
        if (!line) {
            return build_fail(b);
        }
        ent_line(b, json, line, ll);
    } else {
        render_line(b, cfg, &lr, attrs, used, has_tid ? tid : NULL, has_sid ? sid : NULL,
                    ev_from_attr ? NULL : ev, evlen);
        if (b->tmp.err == MT_EINVAL) {
            b->bad = 1;
        }
        if (b->tmp.err) {
            return build_fail(b);
        }
        ent_line(b, json, b->tmp.p ? b->tmp.p : "", b->tmp.len);
    }
    /* structured metadata */
    int npairs = 0;
    if (cfg->sm) {
        if (has_tid) {
            ent_pair(b, json, "trace_id", 8, tid, 32, &npairs);
        }
        if (has_sid) {
            ent_pair(b, json, "span_id", 7, sid, 16, &npairs);
        }
        if (ev && !ev_from_attr) {
            ent_pair(b, json, "event_name", 10, ev, evlen, &npairs);
        }
        for (size_t a = 0; a < lr.nattr; a++) {
            if (!(a < 64 && used[a]) && ent_attr(b, json, &attrs[a], &npairs) < 0) {
                return build_fail(b);
            }
        }
        for (size_t a = 0; cfg->sm_resource && a < nra; a++) {
            int is_label = a < 64 && rused[a];
            if (!is_label && ent_attr(b, json, &sc->rkv[a], &npairs) < 0) {
                return build_fail(b);
            }
        }
    }
    size_t elen = ent_end(b, json, start, npairs);
    if (!elen || elen > UINT32_MAX) {
        return MT_ENOMEM;
    }
    lk_entry_t *e = &b->e[b->ne++];
    e->ts = ts;
    e->off = start;
    e->stream = (uint32_t)si;
    e->len = (uint32_t)elen;
    lk_stream_t *st_ = &b->s[si];
    if (st_->count && ts < st_->last_ts) {
        st_->unsorted = 1;
    }
    st_->last_ts = ts;
    st_->count++;
    st_->bytes += elen;
    return MT_OK;
}

/* One ResourceLogs into entries and streams. */
static int build_resource(lk_build_t *b, const uint8_t *p, size_t n, const char *fallback,
                          uint64_t now_ns, int first, uint32_t *seq)
{
    exporter_t *ex = b->ex;
    const loki_cfg_t *cfg = ex->cfg;
    loki_state_t *st = ex->state;
    const lk_plan_t *p_ = &st->plan;
    lk_scratch_t *sc = b->sc;
    const uint8_t *q, *end = p + n;
    wf_t f;
    int rc;
    size_t nra = 0, nrec = 0;
    /* pass 1: the resource (every occurrence: protobuf merges them) and the record count */
    q = p;
    while ((rc = wnext(&q, end, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != 2 || read_resource(b, f.p, f.n, &nra) < 0) {
                b->bad |= f.wt != 2;
                return build_fail(b);
            }
        } else if (f.num == 2) {
            long c = f.wt == 2 ? count_records(f.p, f.n) : -1;
            if (c < 0) {
                b->bad = 1;
                return MT_EINVAL;
            }
            nrec += (size_t)c;
        } else if (f.num == 3 && f.wt != 2) {
            rc = -1;
            break;
        }
    }
    if (rc < 0) {
        b->bad = 1;
        return MT_EINVAL;
    }
    if (!nrec) {
        return MT_OK;
    }
    const wkv_t *ra = sc->rkv;
    /* tenant of this resource */
    const char *tn = fallback;
    size_t tl = strlen(fallback);
    if (cfg->tenant_attr) {
        const wkv_t *kv = find_attr(ra, nra, cfg->tenant_attr);
        if (kv && kv->is_str && kv->slen) {
            tn = kv->s;
            tl = kv->slen;
        }
    }
    if (tl && !tenant_ok(tn, tl)) {
        /* Loki takes exactly one tenant of its alphabet: a `a|b` list or anything else
         * would be refused as a whole push */
        b->dropped += nrec;
        b->drop_reason = "invalid_tenant";
        if (first) {
            count_drop(st, "invalid_tenant", nrec);
            mt_log(MT_LOG_ERROR, "exporter %s: dropping %zu log records: tenant \"%.*s\" "
                   "is not a valid Loki tenant", ex->id, nrec, (int)(tl < 160 ? tl : 160), tn);
        }
        return MT_OK;
    }
    int ti = tenant_index(b, tn, tl);
    if (ti < 0) {
        b->dropped += nrec;
        b->drop_reason = "too_many_tenants";
        if (first) {
            count_drop(st, "too_many_tenants", nrec);
        }
        return MT_OK;
    }
    /* resource label values */
    mt_str_t rvals[LK_MAX_LABELS + 1];
    memset(rvals, 0, sizeof(rvals));
    uint8_t rused[64];
    memset(rused, 0, sizeof(rused));
    for (int k = 0; k < p_->nres; k++) {
        if (rvals[p_->res[k].slot].len) {
            continue;
        }
        size_t kl = strlen(p_->res[k].key);
        for (size_t a = 0; a < nra; a++) {
            if (key_is(&ra[a], p_->res[k].key, kl)) {
                size_t vl = 0;
                const char *v = kv_text(b, &ra[a], &vl);
                if (!v) {
                    return build_fail(b);
                }
                if (vl) {
                    rvals[p_->res[k].slot].ptr = v;
                    rvals[p_->res[k].slot].len = cut_utf8(v, vl, LK_LABEL_VALUE_MAX);
                }
                if (a < 64) {
                    rused[a] = 1;
                }
                break;
            }
        }
    }
    if (p_->svc_slot >= 0 && !rvals[p_->svc_slot].len) {
        rvals[p_->svc_slot].ptr = "unknown_service";
        rvals[p_->svc_slot].len = 15;
    }
    /* stream per (level, kind) of this resource, when no record attribute is a label */
    int scache[16];
    for (int k = 0; k < 16; k++) {
        scache[k] = -1;
    }
    uint64_t nevents = 0;
    /* pass 2: the records, in order */
    q = p;
    while (wnext(&q, end, &f) > 0) {
        if (f.num != 2) {
            continue;
        }
        const uint8_t *s = f.p, *send = f.p + f.n;
        wf_t g;
        while (wnext(&s, send, &g) > 0) {
            if (g.num != 2) {
                continue;
            }
            rc = build_record(b, g.p, g.n, ti, rvals, rused, nra, scache, now_ns, seq,
                              &nevents);
            if (rc != MT_OK) {
                return rc;
            }
        }
    }
    if (first && nevents) {
        const wkv_t *svc_kv = find_attr(ra, nra, "service.name");
        if (svc_kv && svc_kv->is_str) {
            count_events(st, svc_kv->s, svc_kv->slen, nevents);
        } else {
            count_events(st, "unknown_service", 15, nevents);
        }
    }
    return MT_OK;
}

/* Turns one encoded request into entries and streams. Returns MT_OK, MT_EINVAL or
 * MT_ENOMEM. */
static int build_entries(lk_build_t *b, const uint8_t *data, size_t len, const char *req_tenant,
                         uint64_t now_ns, int first)
{
    const loki_cfg_t *cfg = b->ex->cfg;
    lk_scratch_t *sc = b->sc;
    if (!sc->ht) {
        sc->ht = calloc(64, sizeof(uint32_t));
        if (!sc->ht) {
            return MT_ENOMEM;
        }
        sc->ht_size = 64;
    } else {
        memset(sc->ht, 0, sc->ht_size * sizeof(uint32_t));
    }
    b->ht = sc->ht;
    b->htmask = sc->ht_size - 1;
    b->e = sc->e;
    b->s = sc->s;
    lk_names_t *nc = &sc->names;
    if (!nc->t) {
        nc->t = calloc(LK_NC_SLOTS, sizeof(lk_nc_ent_t));
        nc->pool = malloc(LK_NC_POOL);
        if (!nc->t || !nc->pool) {
            free(nc->t);
            free(nc->pool);
            memset(nc, 0, sizeof(*nc));
        }
    } else if (nc->n >= LK_NC_MAX || nc->pool_len + 1024 > LK_NC_POOL) {
        memset(nc->t, 0, LK_NC_SLOTS * sizeof(lk_nc_ent_t));
        nc->n = nc->pool_len = 0;
    }
    const char *fallback = cfg->tenant_id ? cfg->tenant_id : req_tenant ? req_tenant : "";
    uint32_t seq = 0;
    const uint8_t *p = data, *end = data + len;
    wf_t f;
    int rc;
    while ((rc = wnext(&p, end, &f)) > 0) {
        if (f.num != 1) {
            continue;
        }
        if (f.wt != 2) {
            return MT_EINVAL;
        }
        int r = build_resource(b, f.p, f.n, fallback, now_ns, first, &seq);
        if (r != MT_OK) {
            return r;
        }
    }
    return rc < 0 ? MT_EINVAL : MT_OK;
}

/* Stable sort of a stream's entries by timestamp: a natural merge sort, as a stream is a few
 * ordered runs (one per request of the batch) far more often than shuffled. Equal timestamps
 * keep arrival order (the left run wins ties). tmp holds n entries. */
static void sort_stream(lk_entry_t *a, size_t n, lk_entry_t *tmp)
{
    lk_entry_t *src = a, *dst = tmp;
    for (;;) {
        size_t i = 0, runs = 0;
        while (i < n) {
            size_t m = i + 1;
            while (m < n && src[m].ts >= src[m - 1].ts) {
                m++;
            }
            size_t j = m;
            if (j < n) {
                j++;
                while (j < n && src[j].ts >= src[j - 1].ts) {
                    j++;
                }
            }
            /* merge src[i..m) and src[m..j) into dst[i..j) */
            size_t l = i, r = m, o = i;
            while (l < m && r < j) {
                dst[o++] = src[r].ts < src[l].ts ? src[r++] : src[l++];
            }
            while (l < m) {
                dst[o++] = src[l++];
            }
            while (r < j) {
                dst[o++] = src[r++];
            }
            runs++;
            i = j;
        }
        lk_entry_t *t = src;
        src = dst;
        dst = t;
        if (runs <= 1) {
            break;
        }
    }
    if (src != a) {
        memcpy(a, src, n * sizeof(*a));
    }
}

/* Groups entries by stream (counting sort, keeps arrival order) and sorts the streams whose
 * timestamps went backwards; streams already in order (the common case) are not looked at. */
static int sort_entries(lk_build_t *b)
{
    lk_entry_t *out = arena_alloc(b->a, (b->ne + 1) * sizeof(lk_entry_t));
    if (!out) {
        return MT_ENOMEM;
    }
    uint32_t off = 0;
    for (size_t s = 0; s < b->ns; s++) {
        b->s[s].first = off;
        b->s[s].fill = off;
        off += b->s[s].count;
    }
    for (size_t i = 0; i < b->ne; i++) {
        out[b->s[b->e[i].stream].fill++] = b->e[i];
    }
    lk_entry_t *tmp = NULL;
    for (size_t s = 0; s < b->ns; s++) {
        if (b->s[s].unsorted) {
            if (!tmp && !(tmp = arena_alloc(b->a, (b->ne + 1) * sizeof(lk_entry_t)))) {
                return MT_ENOMEM;
            }
            sort_stream(out + b->s[s].first, b->s[s].count, tmp);
        }
    }
    b->e = out;
    return MT_OK;
}

/* ---- encoders ------------------------------------------------------------------------------ */

/* logproto.PushRequest for one tenant: the streams' headers around their entries, already
 * encoded (one copy each). Returns the scratch buffer (valid until the next call) or NULL. */
static uint8_t *encode_pb(lk_build_t *b, uint32_t tenant, size_t *len, uint64_t *entries)
{
    size_t total = 0;
    *entries = 0;
    for (size_t s = 0; s < b->ns; s++) {
        lk_stream_t *st = &b->s[s];
        if (st->tenant != tenant) {
            continue;
        }
        size_t inner = 1 + vsz(st->sel_len) + st->sel_len + st->bytes;
        total += 1 + vsz(inner) + inner;
        *entries += st->count;
    }
    if (total > b->sc->pb_cap) {
        size_t nc = total + total / 4 + 4096;
        uint8_t *np = realloc(b->sc->pb, nc);
        if (!np) {
            return NULL;
        }
        b->sc->pb = np;
        b->sc->pb_cap = nc;
    }
    const uint8_t *eb = (const uint8_t *)b->eb.p;
    uint8_t *buf = b->sc->pb, *p = buf;
    for (size_t s = 0; s < b->ns; s++) {
        lk_stream_t *st = &b->s[s];
        if (st->tenant != tenant) {
            continue;
        }
        p = put_len(p, 0x0a, 1 + vsz(st->sel_len) + st->sel_len + st->bytes);
        p = put_len(p, 0x0a, st->sel_len);
        memcpy(p, st->sel, st->sel_len);
        p += st->sel_len;
        const lk_entry_t *e = &b->e[st->first], *ee = e + st->count;
        while (e < ee) {
            /* entries that sit back to back in the buffer go in one copy */
            size_t off = e->off, n = e->len;
            for (e++; e < ee && e->off == off + n; e++) {
                n += e->len;
            }
            memcpy(p, eb + off, n);
            p += n;
        }
    }
    *len = (size_t)(p - buf);
    return buf;
}

/* The JSON push body for one tenant. Returns a malloc'd buffer or NULL. */
static uint8_t *encode_json(lk_build_t *b, uint32_t tenant, size_t *len, uint64_t *entries)
{
    sb_t sb;
    sb_init(&sb, LK_TEXT_MAX);
    int first_s = 1;
    *entries = 0;
    sb_puts(&sb, "{\"streams\":[");
    for (size_t s = 0; s < b->ns; s++) {
        const lk_stream_t *st = &b->s[s];
        if (st->tenant != tenant) {
            continue;
        }
        sb_puts(&sb, first_s ? "{\"stream\":{" : ",{\"stream\":{");
        first_s = 0;
        for (int k = 0; k < st->nlabels; k++) {
            if (k) {
                sb_putc(&sb, ',');
            }
            sb_json_str(&sb, st->labels[k].name, st->labels[k].nlen);
            sb_putc(&sb, ':');
            sb_json_str(&sb, st->labels[k].val, st->labels[k].vlen);
        }
        sb_puts(&sb, "},\"values\":[");
        for (uint32_t i = 0; i < st->count; i++) {
            const lk_entry_t *e = &b->e[st->first + i];
            if (i) {
                sb_putc(&sb, ',');
            }
            sb_put(&sb, b->eb.p + e->off, e->len);
        }
        sb_puts(&sb, "]}");
        *entries += st->count;
    }
    sb_puts(&sb, "]}");
    return (uint8_t *)sb_take(&sb, len); /* NULL when out of memory or too big */
}

/* ---- the build/push driver (shared by send() and the unit tests) ------------------------- */

/* Called once per tenant push with the uncompressed body. Returns MT_OK (delivered or
 * permanently settled) or MT_ERETRY (stop: the batch is retried). */
typedef int (*loki_push_fn)(void *arg, size_t index, const char *tenant, const uint8_t *body,
                            size_t len, uint64_t entries);

/* Decodes `data` (an ExportLogsServiceRequest), builds every push and hands each one to fn,
 * skipping the pushes whose bit is set in skip (index < 64). Pushes go out in order of the
 * tenant's first appearance, so indexes are stable across retries of the same batch.
 * *dropped gets the records dropped while building (invalid tenants), *npushes the number
 * of pushes. Returns MT_OK, MT_ERETRY (fn asked to stop), MT_EINVAL (undecodable) or
 * MT_ENOMEM. */
int loki_build(exporter_t *ex, const uint8_t *data, size_t len, const char *req_tenant,
               uint64_t now_ns, int count_events_, uint64_t skip, loki_push_fn fn, void *arg,
               uint64_t *dropped, size_t *npushes);
static int build_with(exporter_t *ex, lk_scratch_t *sc, const uint8_t *data, size_t len,
                      const char *req_tenant, uint64_t now_ns, int count_events_, uint64_t skip,
                      loki_push_fn fn, void *arg, uint64_t *dropped, size_t *npushes)
{
    loki_cfg_t *cfg = ex->cfg;
    *dropped = 0;
    *npushes = 0;
    size_t want = len * 2 + 65536;
    if (!sc->a || sc->arena_first < want) {
        arena_destroy(sc->a);
        sc->arena_first = want > sc->arena_first ? want : sc->arena_first;
        sc->a = arena_create(sc->arena_first, 0);
        if (!sc->a) {
            sc->arena_first = 0;
            return MT_ENOMEM;
        }
    }
    arena_t *a = sc->a;
    lk_build_t b;
    memset(&b, 0, sizeof(b));
    b.ex = ex;
    b.sc = sc;
    b.a = a;
    b.tmp = sc->tmp;
    b.val = sc->val;
    b.eb = sc->eb;
    b.eb.len = 0;
    b.eb.err = 0;
    b.eb.max = 0; /* may grow past LK_TEXT_MAX */
    /* the encoded entries come to about the input's size: one allocation, no regrowth */
    if (b.eb.cap < len + len / 2 + 4096) {
        sb_room(&b.eb, len + len / 2 + 4096);
        b.eb.err = 0;
    }
    b.tmp.err = b.val.err = 0;
    b.tmp.max = b.val.max = LK_TEXT_MAX;
    int rc = build_entries(&b, data, len, req_tenant, now_ns, count_events_);
    if (rc == MT_OK) {
        rc = sort_entries(&b);
    }
    *dropped = b.dropped;
    if (rc != MT_OK) {
        goto out;
    }
    *npushes = b.ntenants;
    for (size_t t = 0; t < b.ntenants; t++) {
        if (t < 64 && (skip >> t & 1)) {
            continue;
        }
        size_t blen = 0;
        uint64_t entries = 0;
        uint8_t *body = cfg->encoding == LOKI_ENC_PROTOBUF ? encode_pb(&b, (uint32_t)t, &blen, &entries)
                                           : encode_json(&b, (uint32_t)t, &blen, &entries);
        if (!body) {
            rc = MT_ENOMEM;
            break;
        }
        if (entries) {
            char tenant[LK_TENANT_MAX + 1];
            snprintf(tenant, sizeof(tenant), "%.*s", (int)b.tlen[t], b.tenants[t]);
            rc = fn(arg, t, tenant, body, blen, entries);
        }
        if (cfg->encoding == LOKI_ENC_JSON) {
            free(body);
        }
        if (rc != MT_OK) {
            break;
        }
    }
out:
    sc->tmp = b.tmp;
    sc->val = b.val;
    sc->eb = b.eb;
    /* keep the next batch in one block: grow the first block to what this one needed */
    size_t used = arena_reserved(a);
    if (used > sc->arena_first && used < (256u << 20)) {
        sc->arena_first = used + used / 4;
        arena_destroy(sc->a);
        sc->a = NULL;
    } else if (sc->arena_first > (16u << 20) && arena_used(a) * 4 < sc->arena_first) {
        /* an unusually big batch does not pin its memory: start smaller next time */
        sc->arena_first = want;
        arena_destroy(sc->a);
        sc->a = NULL;
    } else {
        arena_reset(a);
    }
    if (sc->e_cap > 65536 && sc->e_cap > 4 * b.ne) {
        free(sc->e);
        sc->e = NULL;
        sc->e_cap = 0;
    }
    if (sc->eb.cap > (16u << 20) && sc->eb.cap > 4 * len) {
        sb_fini(&sc->eb);
    }
    if (sc->pb_cap > (16u << 20) && sc->pb_cap > 4 * len) {
        free(sc->pb);
        sc->pb = NULL;
        sc->pb_cap = 0;
    }
    return rc;
}

int loki_build(exporter_t *ex, const uint8_t *data, size_t len, const char *req_tenant,
               uint64_t now_ns, int count_events_, uint64_t skip, loki_push_fn fn, void *arg,
               uint64_t *dropped, size_t *npushes)
{
    lk_scratch_t sc;
    memset(&sc, 0, sizeof(sc));
    int rc = build_with(ex, &sc, data, len, req_tenant, now_ns, count_events_, skip, fn, arg,
                        dropped, npushes);
    scratch_fini(&sc);
    return rc;
}

/* ---- Loki's answers ----------------------------------------------------------------------- */

/* Reason label of a Loki error message (validation reasons as Loki names them). */
const char *loki_reason(const char *msg, size_t len, uint64_t *ignored);
const char *loki_reason(const char *msg, size_t len, uint64_t *ignored)
{
    static const struct {
        const char *needle, *reason;
    } map[] = {
        {"too far behind", "too_far_behind"},
        {"out of order", "out_of_order"},
        {"per stream rate limit", "per_stream_rate_limit"},
        {"rate limit", "rate_limited"},
        {"stream limit", "stream_limit"},
        {"max entry size", "line_too_long"},
        {"line too long", "line_too_long"},
        {"timestamp too old", "greater_than_max_sample_age"},
        {"timestamp too new", "too_far_in_future"},
        {"label names; limit", "max_label_names_per_series"},
        {"label name too long", "label_name_too_long"},
        {"label value too long", "label_value_too_long"},
        {"duplicate label name", "duplicate_label_names"},
        {"at least one label pair", "missing_labels"},
        {"error parsing labels", "invalid_labels"},
        {"structured metadata", "disallowed_structured_metadata"},
        {"exceeds", "line_too_long"},
    };
    char low[2048];
    size_t n = len < sizeof(low) - 1 ? len : sizeof(low) - 1;
    for (size_t i = 0; i < n; i++) {
        low[i] = (char)tolower((unsigned char)msg[i]);
    }
    low[n] = 0;
    /* how many entries Loki says it ignored: ingester "total ignored: N out of M" (one per
     * failing stream) and distributor "N errors like: ..." / one line per validation error */
    uint64_t count = 0;
    for (const char *q = low; (q = strstr(q, "total ignored: ")); q += 15) {
        count += strtoull(q + 15, NULL, 10);
    }
    if (!count) {
        const char *q = strstr(low, " errors like: ");
        if (q) {
            const char *d = q;
            while (d > low && isdigit((unsigned char)d[-1])) {
                d--;
            }
            count = strtoull(d, NULL, 10);
        }
    }
    if (ignored) {
        *ignored = count;
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(map); i++) {
        if (strstr(low, map[i].needle)) {
            return map[i].reason;
        }
    }
    return "http_400";
}

/* ---- HTTP --------------------------------------------------------------------------------- */

typedef struct lk_worker {
    CURL *curl;
    httpc_resp_t resp;
    /* the last batch, so a retry only resends the pushes that did not finish */
    const uint8_t *memo_data;
    size_t memo_len;
    uint64_t memo_sig, memo_done, memo_dropped;
    const char *memo_reason;
    lk_scratch_t sc;
    char *z;                /* compressed body buffer */
    size_t z_cap;
} lk_worker_t;

static void *loki_worker_init(exporter_t *ex)
{
    loki_cfg_t *cfg = ex->cfg;
    lk_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->curl = curl_easy_init();
    w->resp.max = (size_t)(cfg->max_response > 0 ? cfg->max_response : 65536);
    return w;
}

static void loki_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    lk_worker_t *w = ws;
    if (w) {
        curl_easy_cleanup(w->curl);
        scratch_fini(&w->sc);
        free(w->z);
        httpc_resp_free(&w->resp);
        free(w);
    }
}

typedef struct lk_send {
    exporter_t *ex;
    lk_worker_t *w;
    send_result_t *res;
    uint64_t sent, dropped;
    const char *drop_reason;
} lk_send_t;

static int push_http(void *arg, size_t index, const char *tenant, const uint8_t *body,
                     size_t len, uint64_t entries)
{
    lk_send_t *ss = arg;
    exporter_t *ex = ss->ex;
    loki_cfg_t *cfg = ex->cfg;
    loki_state_t *st = ex->state;
    lk_worker_t *w = ss->w;
    send_result_t *res = ss->res;
    uint8_t *z = NULL;
    const uint8_t *out = body;
    size_t zlen = len;
    if (cfg->encoding == LOKI_ENC_PROTOBUF) {
        /* snappy straight into the worker's buffer: no allocation per push */
        size_t need = snappy_max_compressed_length(len);
        if (need > w->z_cap) {
            char *np = realloc(w->z, need);
            if (!np) {
                snprintf(res->msg, sizeof(res->msg), "out of memory compressing the push");
                res->reason = "out_of_memory";
                return MT_ERETRY;
            }
            w->z = np;
            w->z_cap = need;
        }
        zlen = need;
        if (snappy_compress((const char *)body, len, w->z, &zlen) != SNAPPY_OK) {
            snprintf(res->msg, sizeof(res->msg), "snappy compression failed");
            res->reason = "internal";
            return MT_ERETRY;
        }
        out = (const uint8_t *)w->z;
    } else if (cfg->json_compression == LOKI_JSON_GZIP) {
        if (codec_compress(CODEC_GZIP, body, len, 0, &z, &zlen) != MT_OK) {
            snprintf(res->msg, sizeof(res->msg), "compression failed");
            res->reason = "out_of_memory";
            return MT_ERETRY;
        }
        out = z;
    }
    CURL *c = w->curl;
    httpc_resp_reset(&w->resp);
    struct curl_slist *hdrs = NULL;
    if (*tenant) {
        for (struct curl_slist *h = st->hdrs; h; h = h->next) {
            hdrs = curl_slist_append(hdrs, h->data);
        }
        char line[LK_TENANT_MAX + 32];
        snprintf(line, sizeof(line), "X-Scope-OrgID: %s", tenant);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(c, CURLOPT_URL, cfg->endpoint);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)out);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)zlen);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs ? hdrs : st->hdrs);
    httpc_opts_t o = httpc_opts_push((long)cfg->common.timeout, cfg->tls_insecure_skip_verify,
                                     cfg->tls_ca_file);
    httpc_setup(c, &w->resp, &o);
    tm_add(st->c_requests, 1);
    CURLcode cr = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    free(z);
    if (cr != CURLE_OK) {
        snprintf(res->msg, sizeof(res->msg), "%s: %s", cfg->endpoint, curl_easy_strerror(cr));
        res->reason = "transport_error";
        return MT_ERETRY;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    const char *body_txt = w->resp.body ? w->resp.body : "";
    if (code >= 200 && code < 300) {
        tm_add(st->c_sent, entries);
        ss->sent += entries;
        w->memo_done |= index < 64 ? 1ull << index : 0;
        return MT_OK;
    }
    snprintf(res->msg, sizeof(res->msg), "%s%s%s: HTTP %ld: %.300s", cfg->endpoint,
             *tenant ? " tenant " : "", tenant, code, body_txt);
    if (code == 429 || code >= 500) {
        res->retry_after_ms = w->resp.retry_after_s * 1000;
        res->reason = code == 429 ? "http_429" : "http_5xx";
        return MT_ERETRY;
    }
    uint64_t n = entries;
    const char *reason;
    if (code == 400) {
        uint64_t ignored = 0;
        reason = loki_reason(body_txt, w->resp.len, &ignored);
        if (ignored && ignored < entries) {
            n = ignored; /* Loki stored the rest */
        }
    } else {
        reason = httpc_status_reason(code, "http_4xx"); /* 400 is read from the body above */
    }
    count_drop(st, reason, n);
    tm_add(st->c_sent, entries - n);
    ss->sent += entries - n;
    ss->dropped += n;
    ss->drop_reason = reason;
    w->memo_dropped += n;
    w->memo_reason = reason;
    w->memo_done |= index < 64 ? 1ull << index : 0;
    mt_log(MT_LOG_ERROR, "exporter %s: Loki refused %llu of %llu entries%s%s (%s): HTTP %ld: %.400s",
           ex->id, (unsigned long long)n, (unsigned long long)entries,
           *tenant ? " for tenant " : "", tenant, reason, code, body_txt);
    return MT_OK;
}

static uint64_t batch_sig(const uint8_t *data, size_t len)
{
    uint64_t h = mt_fnv1a(MT_FNV_BASIS, data, len < 256 ? len : 256);
    return mt_fnv1a(h, data + (len > 256 ? len - 256 : 0), len < 256 ? 0 : 256) ^ len;
}

static int loki_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                     uint32_t items, send_result_t *res)
{
    lk_worker_t *w = ws;
    if (s != MT_SIG_LOGS || !w || !w->curl) {
        snprintf(res->msg, sizeof(res->msg), "cannot send (no HTTP client)");
        res->reason = "internal";
        return w && w->curl ? MT_EPERM : MT_ERETRY;
    }
    uint64_t sig = batch_sig(data, len);
    int retry = w->memo_data == data && w->memo_len == len && w->memo_sig == sig;
    if (!retry) {
        w->memo_data = data;
        w->memo_len = len;
        w->memo_sig = sig;
        w->memo_done = 0;
        w->memo_dropped = 0;
        w->memo_reason = NULL;
    }
    lk_send_t ss = {.ex = ex, .w = w, .res = res};
    uint64_t dropped = 0;
    size_t npushes = 0;
    int rc = build_with(ex, &w->sc, data, len, res->tenant, mt_wall_ns(), !retry,
                        w->memo_done, push_http, &ss, &dropped, &npushes);
    if (rc == MT_EINVAL) {
        snprintf(res->msg, sizeof(res->msg), "undecodable logs batch");
        res->reason = "decode_error";
        w->memo_data = NULL;
        return MT_EINVAL; /* counted by the queue, which splits a coalesced batch first */
    }
    if (rc == MT_ENOMEM) {
        snprintf(res->msg, sizeof(res->msg), "out of memory building the Loki push");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    if (rc == MT_ERETRY) {
        return MT_ERETRY;
    }
    /* every push settled: delivered, or refused for good. Build-time drops (bad tenants) are
     * re-derived identically on each attempt, counted once. */
    uint64_t lost = w->memo_dropped + dropped;
    const char *reason = w->memo_reason ? w->memo_reason : dropped ? "invalid_tenant" : NULL;
    w->memo_data = NULL;
    if (!lost) {
        return MT_OK;
    }
    if (lost >= items) {
        res->reason = reason ? reason : "http_400";
        return MT_EPERM;
    }
    res->rejected = (int64_t)lost;
    if (!res->msg[0]) {
        snprintf(res->msg, sizeof(res->msg), "%s", reason ? reason : "rejected");
    }
    return MT_OK;
}

const exporter_ops_t exporter_loki_ops = {
    .type = "loki",
    .fields = loki_fields,
    .nfields = MT_ARRAY_LEN(loki_fields),
    .cfg_size = sizeof(loki_cfg_t),
    .signals = SIG_BIT(MT_SIG_LOGS),
    .default_consumers = 2, /* a push is one HTTP request per batch: 2 keep up, each holds buffers */
    .help = "Loki push API (protobuf+snappy or JSON): label policy, structured metadata, tenants",
    .validate = loki_validate,
    .create = loki_create,
    .worker_init = loki_worker_init,
    .worker_fini = loki_worker_fini,
    .send = loki_send,
    .destroy = loki_destroy,
};
