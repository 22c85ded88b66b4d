/*
 * processors.c - the built-in processors.
 *   batch           configures how exporter queue workers coalesce requests (size / timeout);
 *                   batching happens after the acknowledgement point, inside each exporter
 *                   queue, so a 200 always means "queued", never "waiting in a batcher".
 *   memory_limiter  a hard process-wide byte limit on request bodies plus queued batches;
 *                   receivers refuse with 503 + Retry-After before decoding when over it.
 *   resource        insert/update/upsert/delete/hash on resource attributes.
 *   attributes      the same actions on span, log record and data point attributes.
 * Mutating processors edit the decoded message in the request arena (no per-item malloc).
 */
#include "component.h"
#include "otlp.h"

#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <unistd.h>
#include <openssl/evp.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;

/* ---- batch ------------------------------------------------------------------------------ */

typedef struct batch_cfg {
    int64_t send_batch_size;
    int64_t send_batch_max_size;
    int64_t timeout;
    cfg_strlist_t metadata_keys;
    int64_t metadata_cardinality_limit;
} batch_cfg_t;

static const cfg_field_t batch_fields[] = {
    {"send_batch_size", CFG_T_INT, "8192", 0, offsetof(batch_cfg_t, send_batch_size), NULL,
     "items that trigger a send"},
    {"send_batch_max_size", CFG_T_INT, "0", 0, offsetof(batch_cfg_t, send_batch_max_size), NULL,
     "upper bound on items per send (0 = no bound)"},
    {"timeout", CFG_T_DURATION, "200ms", 0, offsetof(batch_cfg_t, timeout), NULL,
     "longest a queued request waits for more before it is sent"},
    {"metadata_keys", CFG_T_STRLIST, NULL, 0, offsetof(batch_cfg_t, metadata_keys), NULL,
     "accepted for compatibility (batches are not split by metadata yet)"},
    {"metadata_cardinality_limit", CFG_T_INT, "1000", 0,
     offsetof(batch_cfg_t, metadata_cardinality_limit), NULL, "accepted for compatibility"},
};

static void batch_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    batch_cfg_t *b = cfgp;
    if (b->send_batch_size < 0) {
        cfg_error_key(c, node, path, "send_batch_size", "must not be negative");
    }
    if (b->send_batch_max_size < 0 ||
        (b->send_batch_max_size > 0 && b->send_batch_max_size < b->send_batch_size)) {
        cfg_error_key(c, node, path, "send_batch_max_size", "must be 0 or >= send_batch_size");
    }
}

const processor_ops_t processor_batch_ops = {
    .type = "batch",
    .fields = batch_fields,
    .nfields = MT_ARRAY_LEN(batch_fields),
    .cfg_size = sizeof(batch_cfg_t),
    .signals = SIG_ALL,
    .help = "coalesce requests per exporter queue by size and timeout",
    .validate = batch_validate,
};

void processor_batch_settings(const processor_t *p, batch_settings_t *bs)
{
    const batch_cfg_t *b = p->cfg;
    bs->enabled = 1;
    bs->send_batch_size = b->send_batch_size;
    bs->send_batch_max_size = b->send_batch_max_size;
    bs->timeout_ms = b->timeout;
}

/* ---- memory_limiter --------------------------------------------------------------------- */

/* Largest limit_mib / spike_limit_mib: 1 EiB, so `mib << 20` stays inside int64_t. */
#define MEMLIM_MAX_MIB ((int64_t)1 << 40)

typedef struct memlim_cfg {
    int64_t check_interval;
    int64_t limit_mib;
    int64_t spike_limit_mib;
    int64_t limit_percentage;
    int64_t spike_limit_percentage;
} memlim_cfg_t;

static const cfg_field_t memlim_fields[] = {
    {"check_interval", CFG_T_DURATION, "1s", 0, offsetof(memlim_cfg_t, check_interval), NULL,
     "accepted for compatibility: meltp checks on every request"},
    {"limit_mib", CFG_T_INT, "0", 0, offsetof(memlim_cfg_t, limit_mib), NULL,
     "hard limit for request bodies plus queued data, in MiB"},
    {"spike_limit_mib", CFG_T_INT, "0", 0, offsetof(memlim_cfg_t, spike_limit_mib), NULL,
     "headroom kept below limit_mib for a burst (refusal starts at limit - spike)"},
    {"limit_percentage", CFG_T_INT, "0", 0, offsetof(memlim_cfg_t, limit_percentage), NULL,
     "limit as a percentage of physical memory (used when limit_mib is 0)"},
    {"spike_limit_percentage", CFG_T_INT, "0", 0, offsetof(memlim_cfg_t, spike_limit_percentage),
     NULL, "spike headroom as a percentage of physical memory"},
};

static void memlim_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    memlim_cfg_t *m = cfgp;
    if (m->limit_mib <= 0 && m->limit_percentage <= 0) {
        cfg_error_key(c, node, path, "limit_mib", "one of limit_mib, limit_percentage must be > 0");
    }
    if (m->limit_mib > MEMLIM_MAX_MIB) {
        cfg_error_key(c, node, path, "limit_mib", "must be at most %lld (1 EiB)",
                      (long long)MEMLIM_MAX_MIB);
    }
    if (m->spike_limit_mib < 0 || (m->limit_mib > 0 && m->spike_limit_mib >= m->limit_mib) ||
        m->spike_limit_mib > MEMLIM_MAX_MIB) {
        cfg_error_key(c, node, path, "spike_limit_mib", "must be >= 0 and below limit_mib");
    }
    if (m->limit_percentage < 0 || m->limit_percentage > 100) {
        cfg_error_key(c, node, path, "limit_percentage", "must be 0..100");
    }
    if (m->spike_limit_percentage < 0 || m->spike_limit_percentage > 100) {
        cfg_error_key(c, node, path, "spike_limit_percentage", "must be 0..100");
    }
}

const processor_ops_t processor_memory_limiter_ops = {
    .type = "memory_limiter",
    .fields = memlim_fields,
    .nfields = MT_ARRAY_LEN(memlim_fields),
    .cfg_size = sizeof(memlim_cfg_t),
    .signals = SIG_ALL,
    .help = "refuse data (503 + Retry-After) while meltp holds more than the limit",
    .validate = memlim_validate,
};

/* Only for a configuration memlim_validate accepted: its bounds keep the arithmetic in range. */
int64_t processor_memory_limit_bytes(const processor_t *p)
{
    const memlim_cfg_t *m = p->cfg;
    int64_t limit = m->limit_mib << 20, spike = m->spike_limit_mib << 20;
    if (limit <= 0) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        int64_t phys = (int64_t)pages * psz;
        limit = phys / 100 * m->limit_percentage;
        spike = phys / 100 * m->spike_limit_percentage;
    }
    return limit - spike;
}

/* ---- attribute actions (resource, attributes) -------------------------------------------- */

enum { ACT_INSERT, ACT_UPDATE, ACT_UPSERT, ACT_DELETE, ACT_HASH };

typedef struct action {
    char *key;
    int op;
    int has_value;
    av_t value; /* value to set (malloc'd strings, owned by the config) */
    char *from_attribute;
} action_t;

typedef struct actions_cfg {
    const cfg_node_t *list; /* raw, parsed in validate */
    action_t *acts;
    size_t nacts;
} actions_cfg_t;

static const cfg_field_t resource_fields[] = {
    {"attributes", CFG_T_NODE, NULL, CFG_REQUIRED, offsetof(actions_cfg_t, list), NULL,
     "list of {key, action: insert|update|upsert|delete|hash, value, from_attribute}"},
};
static const cfg_field_t attributes_fields[] = {
    {"actions", CFG_T_NODE, NULL, CFG_REQUIRED, offsetof(actions_cfg_t, list), NULL,
     "list of {key, action: insert|update|upsert|delete|hash, value, from_attribute}"},
};

static void parse_value(const char *s, av_t *v)
{
    char *end;
    opentelemetry__proto__common__v1__any_value__init(v);
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = s[0] == 't';
        return;
    }
    long long i = strtoll(s, &end, 10);
    if (*s && !*end) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = i;
        return;
    }
    double d = strtod(s, &end);
    if (*s && !*end) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = d;
        return;
    }
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = strdup(s);
}

static void actions_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    actions_cfg_t *a = cfgp;
    const cfg_node_t *l = a->list;
    const char *lname = cfg_map_get(node, "actions") ? "actions" : "attributes";
    if (!l) {
        return; /* required-key error already reported */
    }
    if (l->kind != CFG_NODE_SEQ) {
        cfg_error_key(c, node, path, lname, "expected a list of actions");
        return;
    }
    a->acts = calloc(l->n ? l->n : 1, sizeof(action_t));
    if (!a->acts) {
        return;
    }
    static const char *ops[] = {"insert", "update", "upsert", "delete", "hash"};
    for (size_t i = 0; i < l->n; i++) {
        const cfg_node_t *it = l->children[i];
        char p2[512], p3[600];
        snprintf(p2, sizeof(p2), "%s.%s[%zu]", path, lname, i);
        if (it->kind != CFG_NODE_MAP) {
            cfg_error(c, it->line, p2, "expected a map");
            continue;
        }
        action_t *ac = &a->acts[a->nacts++];
        ac->op = -1;
        for (size_t k = 0; k < it->n; k++) {
            const char *key = it->keys[k];
            const cfg_node_t *v = it->children[k];
            if (strcmp(key, "key") && strcmp(key, "action") && strcmp(key, "value") &&
                strcmp(key, "from_attribute")) {
                snprintf(p3, sizeof(p3), "%s.%s", p2, key);
                cfg_error(c, it->key_lines[k], p3,
                          "unknown key (valid: key, action, value, from_attribute)");
                continue;
            }
            if (v->kind != CFG_NODE_SCALAR) {
                snprintf(p3, sizeof(p3), "%s.%s", p2, key);
                cfg_error(c, v->line, p3, "expected a scalar");
                continue;
            }
            if (!strcmp(key, "key")) {
                ac->key = strdup(v->value);
            } else if (!strcmp(key, "action")) {
                for (int o = 0; o < 5; o++) {
                    if (!strcmp(v->value, ops[o])) {
                        ac->op = o;
                    }
                }
                if (ac->op < 0) {
                    snprintf(p3, sizeof(p3), "%s.action", p2);
                    cfg_error(c, v->line, p3,
                              "\"%s\" is not one of insert, update, upsert, delete, hash",
                              v->value);
                    ac->op = ACT_DELETE;
                }
            } else if (!strcmp(key, "value")) {
                parse_value(v->value, &ac->value);
                ac->has_value = 1;
            } else {
                ac->from_attribute = strdup(v->value);
            }
        }
        if (!ac->key || !*ac->key) {
            snprintf(p3, sizeof(p3), "%s.key", p2);
            cfg_error(c, it->line, p3, "required");
        }
        if (ac->op < 0) {
            snprintf(p3, sizeof(p3), "%s.action", p2);
            cfg_error(c, it->line, p3, "required");
        } else if ((ac->op == ACT_INSERT || ac->op == ACT_UPDATE || ac->op == ACT_UPSERT) &&
                   !ac->has_value && !ac->from_attribute) {
            cfg_error(c, it->line, p2, "action %s needs value or from_attribute", ops[ac->op]);
        }
    }
}

static void actions_free(void *cfgp)
{
    actions_cfg_t *a = cfgp;
    for (size_t i = 0; i < a->nacts; i++) {
        free(a->acts[i].key);
        free(a->acts[i].from_attribute);
        if (a->acts[i].value.value_case ==
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            free(a->acts[i].value.string_value);
        }
    }
    free(a->acts);
}

static ssize_t kv_find(kv_t **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kvs[i]->key && strcmp(kvs[i]->key, key) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

static int hash_value(av_t *v, arena_t *a)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    const void *data;
    size_t len;
    char tmp[64];
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        data = v->string_value;
        len = strlen(v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        len = (size_t)snprintf(tmp, sizeof(tmp), "%lld", (long long)v->int_value);
        data = tmp;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        len = (size_t)snprintf(tmp, sizeof(tmp), "%s", v->bool_value ? "true" : "false");
        data = tmp;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        len = (size_t)snprintf(tmp, sizeof(tmp), "%.17g", v->double_value);
        data = tmp;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        data = v->bytes_value.data;
        len = v->bytes_value.len;
        break;
    default:
        return MT_OK; /* arrays and maps are left as they are */
    }
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL)) {
        return MT_ERR;
    }
    char *hex = arena_alloc(a, mdlen * 2 + 1);
    if (!hex) {
        return MT_ENOMEM;
    }
    for (unsigned i = 0; i < mdlen; i++) {
        static const char d[] = "0123456789abcdef";
        hex[2 * i] = d[md[i] >> 4];
        hex[2 * i + 1] = d[md[i] & 15];
    }
    hex[mdlen * 2] = 0;
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = hex;
    return MT_OK;
}

/* Applies every action to one attribute list. New arrays and values come from the arena;
 * the config's values are shared read-only (the packer only reads them). */
static int apply_actions(const actions_cfg_t *cfg, size_t *np, kv_t ***arrp, arena_t *a)
{
    for (size_t i = 0; i < cfg->nacts; i++) {
        const action_t *ac = &cfg->acts[i];
        kv_t **arr = *arrp;
        size_t n = *np;
        ssize_t at = kv_find(arr, n, ac->key);
        av_t *src = (av_t *)&ac->value;
        if (ac->from_attribute) {
            ssize_t f = kv_find(arr, n, ac->from_attribute);
            if (f < 0 || !arr[f]->value) {
                continue;
            }
            src = arr[f]->value;
        }
        switch (ac->op) {
        case ACT_DELETE:
            if (at >= 0) {
                memmove(&arr[at], &arr[at + 1], (n - (size_t)at - 1) * sizeof(*arr));
                (*np)--;
            }
            break;
        case ACT_HASH:
            if (at >= 0 && arr[at]->value) {
                av_t *nv = arena_alloc(a, sizeof(*nv));
                if (!nv) {
                    return MT_ENOMEM;
                }
                *nv = *arr[at]->value;
                int rc = hash_value(nv, a);
                if (rc) {
                    return rc;
                }
                kv_t *nkv = arena_alloc(a, sizeof(*nkv));
                if (!nkv) {
                    return MT_ENOMEM;
                }
                *nkv = *arr[at];
                nkv->value = nv;
                arr[at] = nkv;
            }
            break;
        case ACT_UPDATE:
        case ACT_UPSERT:
        case ACT_INSERT:
            if (at >= 0 && ac->op != ACT_INSERT) {
                kv_t *nkv = arena_alloc(a, sizeof(*nkv));
                if (!nkv) {
                    return MT_ENOMEM;
                }
                *nkv = *arr[at];
                nkv->value = src;
                arr[at] = nkv;
            } else if (at < 0 && ac->op != ACT_UPDATE) {
                kv_t **na = arena_alloc(a, (n + 1) * sizeof(*na));
                kv_t *nkv = arena_alloc(a, sizeof(*nkv));
                if (!na || !nkv) {
                    return MT_ENOMEM;
                }
                if (n) {
                    /* an empty list may be NULL, and memcpy from NULL is undefined even for 0 */
                    memcpy(na, arr, n * sizeof(*na));
                }
                opentelemetry__proto__common__v1__key_value__init(nkv);
                nkv->key = ac->key;
                nkv->value = src;
                na[n] = nkv;
                *arrp = na;
                *np = n + 1;
            }
            break;
        }
    }
    return MT_OK;
}

#define APPLY(n, arr)                                  \
    do {                                               \
        int rc_ = apply_actions(cfg, &(n), &(arr), a); \
        if (rc_) {                                     \
            return rc_;                                \
        }                                              \
    } while (0)

static Opentelemetry__Proto__Resource__V1__Resource *ensure_resource(
    Opentelemetry__Proto__Resource__V1__Resource **rp, arena_t *a)
{
    if (!*rp) {
        *rp = arena_alloc(a, sizeof(**rp));
        if (*rp) {
            opentelemetry__proto__resource__v1__resource__init(*rp);
        }
    }
    return *rp;
}

static int resource_process(processor_t *pr, mt_signal_t s, ProtobufCMessage *req, arena_t *a,
                            proc_result_t *r)
{
    const actions_cfg_t *cfg = pr->cfg;
    (void)r;
    Opentelemetry__Proto__Resource__V1__Resource **res[1];
    if (s == MT_SIG_TRACES) {
        Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            res[0] = &r->resource_spans[i]->resource;
            if (!ensure_resource(res[0], a)) {
                return MT_ENOMEM;
            }
            APPLY((*res[0])->n_attributes, (*res[0])->attributes);
        }
    } else if (s == MT_SIG_METRICS) {
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            res[0] = &r->resource_metrics[i]->resource;
            if (!ensure_resource(res[0], a)) {
                return MT_ENOMEM;
            }
            APPLY((*res[0])->n_attributes, (*res[0])->attributes);
        }
    } else if (s == MT_SIG_PROFILES) {
        Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_profiles; i++) {
            res[0] = &r->resource_profiles[i]->resource;
            if (!ensure_resource(res[0], a)) {
                return MT_ENOMEM;
            }
            APPLY((*res[0])->n_attributes, (*res[0])->attributes);
        }
    } else {
        Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            res[0] = &r->resource_logs[i]->resource;
            if (!ensure_resource(res[0], a)) {
                return MT_ENOMEM;
            }
            APPLY((*res[0])->n_attributes, (*res[0])->attributes);
        }
    }
    return MT_OK;
}

static int attributes_process(processor_t *pr, mt_signal_t s, ProtobufCMessage *req, arena_t *a,
                              proc_result_t *r)
{
    const actions_cfg_t *cfg = pr->cfg;
    (void)r;
    if (s == MT_SIG_TRACES) {
        Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                    r->resource_spans[i]->scope_spans[j];
                for (size_t k = 0; k < ss->n_spans; k++) {
                    APPLY(ss->spans[k]->n_attributes, ss->spans[k]->attributes);
                }
            }
        }
    } else if (s == MT_SIG_LOGS) {
        Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
                Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = r->resource_logs[i]->scope_logs[j];
                for (size_t k = 0; k < sl->n_log_records; k++) {
                    APPLY(sl->log_records[k]->n_attributes, sl->log_records[k]->attributes);
                }
            }
        }
    } else if (s == MT_SIG_METRICS) {
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                    r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[k];
                    size_t d;
                    switch (m->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        for (d = 0; d < m->gauge->n_data_points; d++) {
                            APPLY(m->gauge->data_points[d]->n_attributes,
                                  m->gauge->data_points[d]->attributes);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        for (d = 0; d < m->sum->n_data_points; d++) {
                            APPLY(m->sum->data_points[d]->n_attributes,
                                  m->sum->data_points[d]->attributes);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        for (d = 0; d < m->histogram->n_data_points; d++) {
                            APPLY(m->histogram->data_points[d]->n_attributes,
                                  m->histogram->data_points[d]->attributes);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        for (d = 0; d < m->exponential_histogram->n_data_points; d++) {
                            APPLY(m->exponential_histogram->data_points[d]->n_attributes,
                                  m->exponential_histogram->data_points[d]->attributes);
                        }
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        for (d = 0; d < m->summary->n_data_points; d++) {
                            APPLY(m->summary->data_points[d]->n_attributes,
                                  m->summary->data_points[d]->attributes);
                        }
                        break;
                    default:
                        break;
                    }
                }
            }
        }
    }
    return MT_OK;
}

const processor_ops_t processor_resource_ops = {
    .type = "resource",
    .fields = resource_fields,
    .nfields = MT_ARRAY_LEN(resource_fields),
    .cfg_size = sizeof(actions_cfg_t),
    .signals = SIG_ALL,
    .help = "insert/update/upsert/delete/hash resource attributes",
    .validate = actions_validate,
    .process = resource_process,
    .free_cfg = actions_free,
};

const processor_ops_t processor_attributes_ops = {
    .type = "attributes",
    .fields = attributes_fields,
    .nfields = MT_ARRAY_LEN(attributes_fields),
    .cfg_size = sizeof(actions_cfg_t),
    .signals = SIG_TML, /* profile attributes live in the dictionary */
    .help = "insert/update/upsert/delete/hash span, log and data point attributes",
    .validate = actions_validate,
    .process = attributes_process,
    .free_cfg = actions_free,
};
