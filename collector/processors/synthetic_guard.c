/*
 * proc_guard.c - the `synthetic_guard` processor: keeps real-looking personal data out of a
 * synthetic-data pipeline. Attribute values (resource, span, span event, log record, data point;
 * nested arrays and maps too) and log bodies go through the pii.h detectors; per detector the
 * action is redact (mask in place), hash (SHA-256 hex of the match), drop (the item; the client
 * sees partial_success) or flag (an attribute naming the detectors). Optionally, in listed
 * environments, resources without synthetic=true are dropped whole.
 * Findings are counted in meltp_guard_findings_total{detector, service, action}; values are
 * never logged.
 */
#include "proc_guard.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

enum {
    GA_REDACT = GUARD_REDACT,
    GA_HASH = GUARD_HASH,
    GA_DROP = GUARD_DROP,
    GA_FLAG = GUARD_FLAG,
    GA_COUNT = GUARD_NONE
};
static const char *const ga_names[GA_COUNT + 1] = {"redact", "hash", "drop", "flag", "none"};

#define GUARD_MAX_FINDINGS 32 /* per value; more are handled on the next pass of the caller */
#define GUARD_MAX_DEPTH    8  /* nested arrays / maps scanned */

typedef struct guard_cfg {
    cfg_strlist_t detectors;
    int action;
    cfg_strmap_t detector_actions;
    cfg_strlist_t allowed_email_domains;
    cfg_strlist_t mrn_patterns;
    int scan_log_bodies;
    int scan_resource;
    char *flag_attribute;
    cfg_strlist_t req_envs;
    char *req_attr;
    char *req_value;
    char *env_attr;
    /* built in validate */
    pii_t *pii;
    int act[PII_KIND_COUNT];
} guard_cfg_t;

static const cfg_field_t guard_fields[] = {
    {"detectors", CFG_T_STRLIST, "[ssn, card, email, phone]", 0, offsetof(guard_cfg_t, detectors),
     NULL,
     "detectors to run: ssn, card, email, phone, mrn (mrn is added when mrn_patterns are set)"},
    {"action", CFG_T_ENUM, "redact", 0, offsetof(guard_cfg_t, action), "redact|hash|drop|flag",
     "what to do with a finding"},
    {"detector_actions", CFG_T_STRMAP, NULL, 0, offsetof(guard_cfg_t, detector_actions), NULL,
     "per-detector action overriding `action`, e.g. {ssn: drop, email: hash}"},
    {"allowed_email_domains", CFG_T_STRLIST, NULL, 0, offsetof(guard_cfg_t, allowed_email_domains),
     NULL, "synthetic e-mail domains (subdomains included); RFC 2606 names are always allowed"},
    {"mrn_patterns", CFG_T_STRLIST, NULL, 0, offsetof(guard_cfg_t, mrn_patterns), NULL,
     "medical record number patterns (POSIX extended regular expressions)"},
    {"scan_log_bodies", CFG_T_BOOL, "true", 0, offsetof(guard_cfg_t, scan_log_bodies), NULL,
     "scan log record bodies"},
    {"scan_resource_attributes", CFG_T_BOOL, "true", 0, offsetof(guard_cfg_t, scan_resource), NULL,
     "scan resource attributes (drop then drops the resource's items)"},
    {"flag_attribute", CFG_T_STRING, "otel.pii.detected", 0, offsetof(guard_cfg_t, flag_attribute),
     NULL, "attribute the flag action sets to the detector names"},
    {"require_synthetic.environments", CFG_T_STRLIST, NULL, 0, offsetof(guard_cfg_t, req_envs),
     NULL, "environments where resources must carry the synthetic marker (\"*\" = all)"},
    {"require_synthetic.attribute", CFG_T_STRING, "synthetic", 0, offsetof(guard_cfg_t, req_attr),
     NULL, "resource attribute marking synthetic data"},
    {"require_synthetic.value", CFG_T_STRING, "true", 0, offsetof(guard_cfg_t, req_value), NULL,
     "value the marker must have (string, or bool true)"},
    {"require_synthetic.environment_attribute", CFG_T_STRING, "deployment.environment.name", 0,
     offsetof(guard_cfg_t, env_attr), NULL,
     "resource attribute naming the environment (deployment.environment is the fallback)"},
};

static int parse_ga(const char *s)
{
    for (int i = 0; i < GA_COUNT; i++) { /* "none" is not an action one can configure */
        if (!strcmp(s, ga_names[i])) {
            return i;
        }
    }
    return -1;
}

static void guard_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    guard_cfg_t *g = cfgp;
    unsigned det = 0;
    for (size_t i = 0; i < g->detectors.n; i++) {
        int k = pii_kind_parse(g->detectors.items[i]);
        if (k < 0) {
            cfg_error_key(c, node, path, "detectors",
                          "\"%s\" is not one of ssn, card, email, phone, mrn",
                          g->detectors.items[i]);
        } else {
            det |= PII_BIT(k);
        }
    }
    if (g->mrn_patterns.n) {
        det |= PII_BIT(PII_MRN);
    } else if (det & PII_BIT(PII_MRN)) {
        cfg_error_key(c, node, path, "mrn_patterns", "the mrn detector needs at least one pattern");
    }
    for (int k = 0; k < PII_KIND_COUNT; k++) {
        g->act[k] = g->action;
    }
    for (size_t i = 0; i < g->detector_actions.n; i++) {
        int k = pii_kind_parse(g->detector_actions.keys[i]);
        int a = parse_ga(g->detector_actions.vals[i]);
        char key[256];
        snprintf(key, sizeof(key), "detector_actions.%s", g->detector_actions.keys[i]);
        if (k < 0) {
            cfg_error_key(c, node, path, key,
                          "unknown detector (valid: ssn, card, email, phone, mrn)");
        } else if (a < 0) {
            cfg_error_key(c, node, path, key, "\"%s\" is not one of redact, hash, drop, flag",
                          g->detector_actions.vals[i]);
        } else {
            g->act[k] = a;
        }
    }
    if (!g->flag_attribute || !*g->flag_attribute) {
        cfg_error_key(c, node, path, "flag_attribute", "must not be empty");
    }
    if (g->req_envs.n && (!g->req_attr || !*g->req_attr)) {
        cfg_error_key(c, node, path, "require_synthetic.attribute", "must not be empty");
    }
    pii_config_t pc = {
        .detectors = det ? det : PII_BIT(PII_KIND_COUNT), /* nothing enabled: an unused bit */
        .allow_domains = (const char *const *)g->allowed_email_domains.items,
        .n_allow_domains = g->allowed_email_domains.n,
        .mrn_patterns = (const char *const *)g->mrn_patterns.items,
        .n_mrn_patterns = g->mrn_patterns.n,
    };
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    g->pii = pii_create(&pc, &eb);
    if (!g->pii) {
        cfg_error_key(c, node, path, "mrn_patterns", "%s", eb.msg);
    }
}

static void guard_free(void *cfgp)
{
    guard_cfg_t *g = cfgp;
    pii_destroy(g->pii);
    g->pii = NULL;
}

/* ---- per-request state ------------------------------------------------------------------ */

typedef struct gctx {
    const guard_cfg_t *cfg;
    arena_t *a;
    int oom;
    unsigned kinds; /* detectors found in the current item (or resource) */
    int drop;       /* current item must go */
    uint64_t counts[PII_KIND_COUNT][GA_COUNT];
    uint64_t dropped;
    char first[64]; /* first reason, for partial_success */
} gctx_t;

static void count_flush(gctx_t *g, const char *service)
{
    for (int k = 0; k < PII_KIND_COUNT; k++) {
        for (int a = 0; a < GA_COUNT; a++) {
            if (!g->counts[k][a]) {
                continue;
            }
            char svc[128], labels[256];
            size_t o = 0;
            for (const char *s = service; *s && o + 3 < sizeof(svc); s++) {
                if (*s == '"' || *s == '\\') {
                    svc[o++] = '\\';
                }
                svc[o++] = *s == '\n' ? ' ' : *s;
            }
            svc[o] = 0;
            snprintf(labels, sizeof(labels), "detector=\"%s\",service=\"%s\",action=\"%s\"",
                     pii_kind_name((pii_kind_t)k), svc, ga_names[a]);
            tm_add(tm_counter("meltp_guard_findings_total",
                              "Personal-data findings of synthetic_guard per detector, service "
                              "and action",
                              labels),
                   g->counts[k][a]);
            g->counts[k][a] = 0;
        }
    }
}

static const char *service_of(const resource_t *r)
{
    for (size_t i = 0; r && i < r->n_attributes; i++) {
        kv_t *kv = r->attributes[i];
        if (!strcmp(kv->key, "service.name") && kv->value &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            kv->value->string_value[0]) {
            return kv->value->string_value;
        }
    }
    return "unknown_service";
}

/* Rewrites s[0..n) with redact/hash applied to the findings whose action asks for it. */
static char *rewrite(gctx_t *g, const char *s, size_t n, const pii_finding_t *f, size_t nf)
{
    size_t out = n;
    for (size_t i = 0; i < nf; i++) {
        if (g->cfg->act[f[i].kind] == GA_HASH) {
            out = out - f[i].len + 64;
        }
    }
    char *d = arena_alloc(g->a, out + 1);
    if (!d) {
        g->oom = 1;
        return NULL;
    }
    size_t o = 0, pos = 0;
    for (size_t i = 0; i < nf; i++) {
        memcpy(d + o, s + pos, f[i].off - pos);
        o += f[i].off - pos;
        int act = g->cfg->act[f[i].kind];
        if (act == GA_HASH) {
            unsigned char md[32];
            unsigned int ml = 0;
            static const char hx[] = "0123456789abcdef";
            EVP_Digest(s + f[i].off, f[i].len, md, &ml, EVP_sha256(), NULL);
            for (unsigned k = 0; k < 32; k++) {
                d[o++] = hx[md[k] >> 4];
                d[o++] = hx[md[k] & 15];
            }
        } else {
            memcpy(d + o, s + f[i].off, f[i].len);
            if (act == GA_REDACT) {
                pii_finding_t one = f[i];
                one.off = 0;
                pii_mask(d + o, d + o, f[i].len, &one, 1);
            }
            o += f[i].len;
        }
        pos = f[i].off + f[i].len;
    }
    memcpy(d + o, s + pos, n - pos);
    o += n - pos;
    d[o] = 0;
    return d;
}

/* Scans one string; returns a rewritten copy when redact/hash changed it, else NULL. */
static char *scan_str(gctx_t *g, const char *s, size_t n)
{
    pii_finding_t f[GUARD_MAX_FINDINGS];
    size_t nf = pii_scan(g->cfg->pii, s, n, f, GUARD_MAX_FINDINGS);
    if (!nf) {
        return NULL;
    }
    int change = 0;
    for (size_t i = 0; i < nf; i++) {
        int a = g->cfg->act[f[i].kind];
        g->counts[f[i].kind][a]++;
        g->kinds |= PII_BIT(f[i].kind);
        if (a == GA_DROP) {
            g->drop = 1;
            if (!g->first[0]) {
                snprintf(g->first, sizeof(g->first), "%s", pii_kind_name(f[i].kind));
            }
        }
        change |= a == GA_REDACT || a == GA_HASH;
    }
    if (!change || g->drop) {
        return NULL;
    }
    char *r = rewrite(g, s, n, f, nf);
    if (r && nf == GUARD_MAX_FINDINGS) {
        /* more than fit in one pass: scan the rest again (masked parts no longer match) */
        char *again = scan_str(g, r, strlen(r));
        if (again) {
            r = again;
        }
    }
    return r;
}

static av_t *new_str_value(gctx_t *g, char *s)
{
    av_t *v = arena_alloc(g->a, sizeof(*v));
    if (!v) {
        g->oom = 1;
        return NULL;
    }
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = s;
    return v;
}

static int scan_kvs(gctx_t *g, kv_t **kv, size_t n, int depth);

/* Scans one value; returns a replacement when it changed (never mutates shared values). */
static av_t *scan_value(gctx_t *g, av_t *v, int depth)
{
    if (!v || depth > GUARD_MAX_DEPTH || g->oom) {
        return NULL;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        char *r = scan_str(g, v->string_value, strlen(v->string_value));
        return r ? new_str_value(g, r) : NULL;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: {
        /* a card or phone number sent as an integer is still one */
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%lld", (long long)v->int_value);
        if (n < 8) {
            return NULL;
        }
        char *r = scan_str(g, buf, (size_t)n);
        return r ? new_str_value(g, r) : NULL;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        av_t **nv = NULL;
        for (size_t i = 0; arr && i < arr->n_values; i++) {
            av_t *r = scan_value(g, arr->values[i], depth + 1);
            if (r) {
                if (!nv) {
                    nv = arena_alloc(g->a, arr->n_values * sizeof(*nv));
                    if (!nv) {
                        g->oom = 1;
                        return NULL;
                    }
                    memcpy(nv, arr->values, arr->n_values * sizeof(*nv));
                }
                nv[i] = r;
            }
        }
        if (!nv) {
            return NULL;
        }
        Opentelemetry__Proto__Common__V1__ArrayValue *na = arena_alloc(g->a, sizeof(*na));
        av_t *out = arena_alloc(g->a, sizeof(*out));
        if (!na || !out) {
            g->oom = 1;
            return NULL;
        }
        *na = *arr;
        na->values = nv;
        *out = *v;
        out->array_value = na;
        return out;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        Opentelemetry__Proto__Common__V1__KeyValueList *l = v->kvlist_value;
        if (!l || !l->n_values) {
            return NULL;
        }
        kv_t **copy = arena_alloc(g->a, l->n_values * sizeof(*copy));
        if (!copy) {
            g->oom = 1;
            return NULL;
        }
        memcpy(copy, l->values, l->n_values * sizeof(*copy));
        if (!scan_kvs(g, copy, l->n_values, depth + 1)) {
            return NULL;
        }
        Opentelemetry__Proto__Common__V1__KeyValueList *nl = arena_alloc(g->a, sizeof(*nl));
        av_t *out = arena_alloc(g->a, sizeof(*out));
        if (!nl || !out) {
            g->oom = 1;
            return NULL;
        }
        *nl = *l;
        nl->values = copy;
        *out = *v;
        out->kvlist_value = nl;
        return out;
    }
    default:
        return NULL;
    }
}

/* Scans an attribute array, replacing changed entries in place (the array belongs to the
 * request). Returns 1 when something changed. */
static int scan_kvs(gctx_t *g, kv_t **kv, size_t n, int depth)
{
    int changed = 0;
    for (size_t i = 0; i < n && !g->oom; i++) {
        av_t *r = scan_value(g, kv[i]->value, depth);
        if (r) {
            kv_t *nkv = arena_alloc(g->a, sizeof(*nkv));
            if (!nkv) {
                g->oom = 1;
                return changed;
            }
            *nkv = *kv[i];
            nkv->value = r;
            kv[i] = nkv;
            changed = 1;
        }
    }
    return changed;
}

/* Adds the flag attribute (detector names, comma-separated) when flag findings were made. */
static void flag(gctx_t *g, size_t *n, kv_t ***arr)
{
    unsigned fl = 0;
    for (int k = 0; k < PII_KIND_COUNT; k++) {
        if ((g->kinds & PII_BIT(k)) && g->cfg->act[k] == GA_FLAG) {
            fl |= PII_BIT(k);
        }
    }
    if (!fl || g->oom) {
        return;
    }
    char buf[64];
    size_t o = 0;
    for (int k = 0; k < PII_KIND_COUNT; k++) {
        if (fl & PII_BIT(k)) {
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? "," : "",
                                  pii_kind_name((pii_kind_t)k));
        }
    }
    char *s = arena_strndup(g->a, buf, o);
    kv_t **na = arena_alloc(g->a, (*n + 1) * sizeof(kv_t *));
    kv_t *kv = arena_alloc(g->a, sizeof(*kv));
    av_t *v = s ? new_str_value(g, s) : NULL;
    if (!s || !na || !kv || !v) {
        g->oom = 1;
        return;
    }
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*arr)[i]->key, g->cfg->flag_attribute)) {
            na[w++] = (*arr)[i];
        }
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = g->cfg->flag_attribute;
    kv->value = v;
    na[w++] = kv;
    *arr = na;
    *n = w;
}

static void item_begin(gctx_t *g)
{
    g->kinds = 0;
    g->drop = 0;
}

/* Synthetic marker: 1 when the resource may pass. */
static int synthetic_ok(const guard_cfg_t *c, const resource_t *r)
{
    if (!c->req_envs.n) {
        return 1;
    }
    const char *env = NULL;
    int marked = 0;
    for (size_t i = 0; r && i < r->n_attributes; i++) {
        kv_t *kv = r->attributes[i];
        av_t *v = kv->value;
        if (!v) {
            continue;
        }
        int is_str =
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        if (is_str && (!strcmp(kv->key, c->env_attr) ||
                       (!env && !strcmp(kv->key, "deployment.environment")))) {
            env = v->string_value;
        }
        if (!strcmp(kv->key, c->req_attr)) {
            marked =
                (is_str && !strcmp(v->string_value, c->req_value)) ||
                (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE &&
                 v->bool_value && !strcmp(c->req_value, "true"));
        }
    }
    int listed = 0;
    for (size_t i = 0; i < c->req_envs.n; i++) {
        listed |= !strcmp(c->req_envs.items[i], "*") || (env && !strcmp(c->req_envs.items[i], env));
    }
    return !listed || marked;
}

static int res_begin(gctx_t *g, resource_t *r, int *drop_all)
{
    *drop_all = 0;
    if (!synthetic_ok(g->cfg, r)) {
        *drop_all = 1;
        if (!g->first[0]) {
            snprintf(g->first, sizeof(g->first), "%s", "missing synthetic marker");
        }
        return 1;
    }
    if (g->cfg->scan_resource && r) {
        item_begin(g);
        scan_kvs(g, r->attributes, r->n_attributes, 0);
        flag(g, &r->n_attributes, &r->attributes);
        *drop_all = g->drop;
    }
    return 0;
}

static void count_missing(const char *service, uint64_t n)
{
    char svc[128], labels[256];
    size_t o = 0;
    for (const char *s = service; *s && o + 3 < sizeof(svc); s++) {
        if (*s == '"' || *s == '\\') {
            svc[o++] = '\\';
        }
        svc[o++] = *s == '\n' ? ' ' : *s;
    }
    svc[o] = 0;
    snprintf(labels, sizeof(labels),
             "detector=\"synthetic_missing\",service=\"%s\",action=\"drop\"", svc);
    tm_add(tm_counter("meltp_guard_findings_total",
                      "Personal-data findings of synthetic_guard per detector, service and action",
                      labels),
           n);
}

static void traces(gctx_t *g, Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
        const char *svc = service_of(rs->resource);
        int drop_all;
        uint64_t d0 = g->dropped;
        int missing = res_begin(g, rs->resource, &drop_all);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            size_t w = 0;
            for (size_t k = 0; k < ss->n_spans; k++) {
                Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                if (drop_all) {
                    g->dropped++;
                    continue;
                }
                item_begin(g);
                scan_kvs(g, sp->attributes, sp->n_attributes, 0);
                for (size_t e = 0; e < sp->n_events && !g->drop; e++) {
                    Opentelemetry__Proto__Trace__V1__Span__Event *ev = sp->events[e];
                    /* findings are replaced in the event's own attribute array */
                    scan_kvs(g, ev->attributes, ev->n_attributes, 0);
                }
                if (g->drop) {
                    g->dropped++;
                    continue;
                }
                flag(g, &sp->n_attributes, &sp->attributes);
                ss->spans[w++] = sp;
            }
            ss->n_spans = w;
        }
        if (missing) {
            count_missing(svc, g->dropped - d0);
        }
        count_flush(g, svc);
    }
}

static void logs(gctx_t *g, Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
        const char *svc = service_of(rl->resource);
        int drop_all;
        uint64_t d0 = g->dropped;
        int missing = res_begin(g, rl->resource, &drop_all);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            size_t w = 0;
            for (size_t k = 0; k < sl->n_log_records; k++) {
                Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                if (drop_all) {
                    g->dropped++;
                    continue;
                }
                item_begin(g);
                scan_kvs(g, lr->attributes, lr->n_attributes, 0);
                if (g->cfg->scan_log_bodies && lr->body && !g->drop) {
                    av_t *nb = scan_value(g, lr->body, 0);
                    if (nb) {
                        lr->body = nb;
                    }
                }
                if (g->drop) {
                    g->dropped++;
                    continue;
                }
                flag(g, &lr->n_attributes, &lr->attributes);
                sl->log_records[w++] = lr;
            }
            sl->n_log_records = w;
        }
        if (missing) {
            count_missing(svc, g->dropped - d0);
        }
        count_flush(g, svc);
    }
}

static void points(gctx_t *g, size_t *np, void **p, int drop_all)
{
    size_t w = 0;
    for (size_t d = 0; d < *np; d++) {
        otlp_pt_head_t *ph = p[d];
        if (drop_all) {
            g->dropped++;
            continue;
        }
        item_begin(g);
        scan_kvs(g, ph->attributes, ph->n_attributes, 0);
        if (g->drop) {
            g->dropped++;
            continue;
        }
        flag(g, &ph->n_attributes, &ph->attributes);
        p[w++] = ph;
    }
    *np = w;
}

static void metrics(gctx_t *g, Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
        const char *svc = service_of(rm->resource);
        int drop_all;
        uint64_t d0 = g->dropped;
        int missing = res_begin(g, rm->resource, &drop_all);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            size_t w = 0;
            for (size_t k = 0; k < sm->n_metrics; k++) {
                Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[k];
                size_t *np = NULL, before;
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    np = &m->gauge->n_data_points;
                    points(g, np, (void **)m->gauge->data_points, drop_all);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    np = &m->sum->n_data_points;
                    points(g, np, (void **)m->sum->data_points, drop_all);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    np = &m->histogram->n_data_points;
                    points(g, np, (void **)m->histogram->data_points, drop_all);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    np = &m->exponential_histogram->n_data_points;
                    points(g, np, (void **)m->exponential_histogram->data_points, drop_all);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    np = &m->summary->n_data_points;
                    points(g, np, (void **)m->summary->data_points, drop_all);
                    break;
                default:
                    break;
                }
                before = np ? *np : 1;
                if (before) {
                    sm->metrics[w++] = m; /* metrics emptied by drops go too */
                }
            }
            sm->n_metrics = w;
        }
        if (missing) {
            count_missing(svc, g->dropped - d0);
        }
        count_flush(g, svc);
    }
}

static int guard_process(processor_t *pr, mt_signal_t s, ProtobufCMessage *req, arena_t *a,
                         proc_result_t *r)
{
    const guard_cfg_t *cfg = pr->cfg;
    if (!cfg->pii) {
        return MT_OK;
    }
    gctx_t g;
    memset(&g, 0, sizeof(g));
    g.cfg = cfg;
    g.a = a;
    if (s == MT_SIG_TRACES) {
        traces(&g, (void *)req);
    } else if (s == MT_SIG_LOGS) {
        logs(&g, (void *)req);
    } else if (s == MT_SIG_METRICS) {
        metrics(&g, (void *)req);
    }
    if (g.oom) {
        return MT_ENOMEM;
    }
    if (g.dropped) {
        r->dropped = g.dropped;
        snprintf(r->msg, sizeof(r->msg), "synthetic_guard: %llu items dropped (%s)",
                 (unsigned long long)g.dropped, g.first[0] ? g.first : "personal data");
    }
    return MT_OK;
}

static int inspect_cb(void *arg, const char *s, size_t n)
{
    pii_finding_t f;
    return pii_scan(arg, s, n, &f, 1) > 0;
}

/* The common case is data without personal data: find that out on the wire, without
 * decoding. Any finding (in any string, a superset of what process() scans) means decode. */
static int guard_inspect(processor_t *pr, mt_signal_t s, const uint8_t *pb, size_t len)
{
    const guard_cfg_t *cfg = pr->cfg;
    if (!cfg->pii) {
        return 0;
    }
    if (cfg->req_envs.n > 0) {
        return 1; /* the synthetic=true requirement needs the resource: decode */
    }
    return otlp_walk_values(s, pb, len, inspect_cb, cfg->pii);
}

/* ---- questions from validation mode (proc_guard.h) ------------------------------------------ */

extern const processor_ops_t processor_synthetic_guard_ops; /* defined below */

const char *guard_action_name(guard_action_t a)
{
    return (unsigned)a <= GA_COUNT ? ga_names[a] : "none";
}

int guard_is(const processor_t *pr)
{
    return pr && pr->ops == &processor_synthetic_guard_ops && pr->cfg;
}

/* Mirrors where traces(), logs(), points() and scan_value() look: item attributes always,
 * resource attributes and log bodies when configured, nested values to GUARD_MAX_DEPTH. */
unsigned guard_finds(const processor_t *pr, guard_at_t at, int depth, const char *s, size_t n)
{
    const guard_cfg_t *cfg = guard_is(pr) ? pr->cfg : NULL;
    if (!cfg || !cfg->pii || depth > GUARD_MAX_DEPTH || at == GUARD_AT_OTHER ||
        (at == GUARD_AT_RESOURCE && !cfg->scan_resource) ||
        (at == GUARD_AT_LOG_BODY && !cfg->scan_log_bodies)) {
        return 0;
    }
    pii_finding_t f[GUARD_MAX_FINDINGS];
    size_t nf = pii_scan(cfg->pii, s, n, f, GUARD_MAX_FINDINGS);
    unsigned kinds = 0;
    for (size_t i = 0; i < nf; i++) {
        kinds |= PII_BIT(f[i].kind);
    }
    return kinds;
}

guard_action_t guard_action(const processor_t *pr, pii_kind_t k)
{
    const guard_cfg_t *cfg = guard_is(pr) ? pr->cfg : NULL;
    return cfg && (unsigned)k < PII_KIND_COUNT ? (guard_action_t)cfg->act[k] : GUARD_NONE;
}

int guard_drops_resource(const processor_t *pr, const resource_t *r)
{
    const guard_cfg_t *cfg = guard_is(pr) ? pr->cfg : NULL;
    return cfg && !synthetic_ok(cfg, r);
}

const processor_ops_t processor_synthetic_guard_ops = {
    .type = "synthetic_guard",
    .fields = guard_fields,
    .nfields = MT_ARRAY_LEN(guard_fields),
    .cfg_size = sizeof(guard_cfg_t),
    .signals = SIG_TML,
    .help = "find real-looking personal data (SSN, card, e-mail, phone, MRN) and redact, hash, "
            "drop or flag it; optionally require synthetic=true resources",
    .validate = guard_validate,
    .process = guard_process,
    .inspect = guard_inspect,
    .free_cfg = guard_free,
};
