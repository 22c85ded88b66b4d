/*
 * proc_normalize.c - the `normalize` processor: brings telemetry to current OpenTelemetry
 * semantic conventions before anything downstream looks at it.
 *   - table-driven attribute renames (old -> current names; built-in table plus config), on
 *     resource, span, span event, log record and data point attributes. When the current name
 *     is already present it wins and the old attribute is removed;
 *   - defaults: service.name (from config, else OTEL_SERVICE_NAME) and
 *     deployment.environment.name when a resource lacks them;
 *   - metric units to UCUM spellings ("seconds" -> "s", "bytes" -> "By", ...);
 *   - string attribute values truncated to a byte limit (on a UTF-8 character boundary);
 *   - timestamps too far in the future or past clamped into the window or flagged.
 * Counters: meltp_normalize_renamed_total{from,to}, meltp_normalize_truncated_total,
 * meltp_normalize_timestamps_total{direction,action}, meltp_normalize_defaults_total{attribute}.
 */
#include "component.h"
#include "otlp.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

/* Semantic-convention migrations (HTTP, network, database, code attributes and the
 * deployment environment). Ambiguous ones (net.host.* vs net.peer.* both becoming server.*)
 * are left to the config table. */
static const char *const default_renames[][2] = {
    {"http.method", "http.request.method"},
    {"http.status_code", "http.response.status_code"},
    {"http.url", "url.full"},
    {"http.target", "url.path"},
    {"http.scheme", "url.scheme"},
    {"http.user_agent", "user_agent.original"},
    {"http.client_ip", "client.address"},
    {"http.request_content_length", "http.request.body.size"},
    {"http.response_content_length", "http.response.body.size"},
    {"net.peer.name", "server.address"},
    {"net.peer.port", "server.port"},
    {"net.sock.peer.addr", "network.peer.address"},
    {"net.sock.peer.port", "network.peer.port"},
    {"net.protocol.name", "network.protocol.name"},
    {"net.protocol.version", "network.protocol.version"},
    {"net.transport", "network.transport"},
    {"db.system", "db.system.name"},
    {"db.statement", "db.query.text"},
    {"db.operation", "db.operation.name"},
    {"db.name", "db.namespace"},
    {"code.function", "code.function.name"},
    {"code.filepath", "code.file.path"},
    {"code.lineno", "code.line.number"},
    {"enduser.id", "user.id"},
    {"message.type", "rpc.message.type"},
    {"faas.execution", "faas.invocation_id"},
    {"deployment.environment", "deployment.environment.name"},
};

/* Non-UCUM unit spellings seen in the wild -> UCUM (case-sensitive, exact). */
static const char *const unit_map[][2] = {
    {"seconds", "s"},      {"second", "s"},        {"sec", "s"},
    {"secs", "s"},         {"milliseconds", "ms"}, {"millisecond", "ms"},
    {"msec", "ms"},        {"millis", "ms"},       {"microseconds", "us"},
    {"microsecond", "us"}, {"usec", "us"},         {"\xce\xbcs", "us"},
    {"\xc2\xb5s", "us"},   {"nanoseconds", "ns"},  {"nanosecond", "ns"},
    {"nsec", "ns"},        {"minutes", "min"},     {"minute", "min"},
    {"hours", "h"},        {"hour", "h"},          {"days", "d"},
    {"day", "d"},          {"bytes", "By"},        {"byte", "By"},
    {"B", "By"},           {"kilobytes", "kBy"},   {"KB", "kBy"},
    {"kB", "kBy"},         {"KiB", "KiBy"},        {"megabytes", "MBy"},
    {"MB", "MBy"},         {"MiB", "MiBy"},        {"gigabytes", "GBy"},
    {"GB", "GBy"},         {"GiB", "GiBy"},        {"bits", "bit"},
    {"percent", "%"},      {"pct", "%"},           {"ratio", "1"},
    {"hertz", "Hz"},       {"celsius", "Cel"},     {"Celsius", "Cel"},
    {"count", "1"},        {"counts", "1"},
};

typedef struct rename {
    char *from, *to;
    _Atomic(tm_counter_t *) ctr; /* looked up on first use */
} rename_t;

enum { TS_CLAMP, TS_FLAG };

typedef struct norm_cfg {
    cfg_strmap_t renames;
    int default_renames;
    char *service_name;
    char *environment;
    int units;
    int64_t max_value_length;
    int64_t max_future; /* ms, 0 = off */
    int64_t max_past;   /* ms, 0 = off */
    int ts_action;
    char *ts_attribute;
    /* built in validate */
    rename_t *tab;
    size_t ntab;
    int *slots; /* open-addressing index into tab, -1 empty */
    size_t nslots;
    char *svc; /* effective service.name default or NULL */
} norm_cfg_t;

static const cfg_field_t norm_fields[] = {
    {"renames", CFG_T_STRMAP, NULL, 0, offsetof(norm_cfg_t, renames), NULL,
     "extra attribute renames old -> new (override the built-in table)"},
    {"default_renames", CFG_T_BOOL, "true", 0, offsetof(norm_cfg_t, default_renames), NULL,
     "apply the built-in semantic-convention rename table (http.method -> "
     "http.request.method, ...)"},
    {"service_name", CFG_T_STRING, "", 0, offsetof(norm_cfg_t, service_name), NULL,
     "service.name for resources without one (empty: OTEL_SERVICE_NAME, else none)"},
    {"environment", CFG_T_STRING, "", 0, offsetof(norm_cfg_t, environment), NULL,
     "deployment.environment.name for resources without one (empty: none)"},
    {"units", CFG_T_BOOL, "true", 0, offsetof(norm_cfg_t, units), NULL,
     "rewrite metric units to UCUM (seconds -> s, bytes -> By, ...)"},
    {"max_value_length", CFG_T_INT, "0", 0, offsetof(norm_cfg_t, max_value_length), NULL,
     "truncate string attribute values to this many bytes (0 = no limit)"},
    {"timestamps.max_future", CFG_T_DURATION, "0", 0, offsetof(norm_cfg_t, max_future), NULL,
     "timestamps later than now + this are out of range (0 = not checked)"},
    {"timestamps.max_past", CFG_T_DURATION, "0", 0, offsetof(norm_cfg_t, max_past), NULL,
     "timestamps earlier than now - this are out of range (0 = not checked)"},
    {"timestamps.action", CFG_T_ENUM, "clamp", 0, offsetof(norm_cfg_t, ts_action), "clamp|flag",
     "clamp into the window (span durations kept) or flag with an attribute"},
    {"timestamps.flag_attribute", CFG_T_STRING, "otel.timestamp.out_of_range", 0,
     offsetof(norm_cfg_t, ts_attribute), NULL, "attribute set to \"future\" or \"past\" by flag"},
};

static uint64_t str_hash(const char *s)
{
    return mt_fnv1a(MT_FNV_BASIS, s, strlen(s));
}

static int tab_add(norm_cfg_t *n, const char *from, const char *to)
{
    for (size_t i = 0; i < n->ntab; i++) {
        if (!strcmp(n->tab[i].from, from)) {
            free(n->tab[i].to);
            n->tab[i].to = strdup(to); /* config overrides the built-in entry */
            return n->tab[i].to ? 0 : -1;
        }
    }
    rename_t *r = &n->tab[n->ntab];
    r->from = strdup(from);
    r->to = strdup(to);
    atomic_init(&r->ctr, NULL);
    n->ntab++;
    return r->from && r->to ? 0 : -1;
}

static void norm_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    norm_cfg_t *n = cfgp;
    size_t max = MT_ARRAY_LEN(default_renames) + n->renames.n;
    n->tab = calloc(max ? max : 1, sizeof(rename_t));
    if (!n->tab) {
        cfg_error(c, 0, path, "out of memory");
        return;
    }
    if (n->default_renames) {
        for (size_t i = 0; i < MT_ARRAY_LEN(default_renames); i++) {
            tab_add(n, default_renames[i][0], default_renames[i][1]);
        }
    }
    for (size_t i = 0; i < n->renames.n; i++) {
        char key[300];
        snprintf(key, sizeof(key), "renames.%s", n->renames.keys[i]);
        if (!*n->renames.vals[i] || !strcmp(n->renames.keys[i], n->renames.vals[i])) {
            cfg_error_key(c, node, path, key, "the new name must be non-empty and different");
            continue;
        }
        tab_add(n, n->renames.keys[i], n->renames.vals[i]);
    }
    /* a chain a -> b -> c would make the result depend on attribute order */
    for (size_t i = 0; i < n->ntab; i++) {
        for (size_t k = 0; k < n->ntab; k++) {
            if (!strcmp(n->tab[i].to, n->tab[k].from)) {
                char key[300];
                snprintf(key, sizeof(key), "renames.%s", n->tab[k].from);
                cfg_error_key(c, node, path, key,
                              "\"%s\" is itself renamed to \"%s\": rename chains are not allowed",
                              n->tab[k].from, n->tab[k].to);
            }
        }
    }
    n->nslots = 16;
    while (n->nslots < n->ntab * 2) {
        n->nslots <<= 1;
    }
    n->slots = malloc(n->nslots * sizeof(int));
    if (!n->slots) {
        cfg_error(c, 0, path, "out of memory");
        return;
    }
    for (size_t i = 0; i < n->nslots; i++) {
        n->slots[i] = -1;
    }
    for (size_t i = 0; i < n->ntab; i++) {
        size_t s = str_hash(n->tab[i].from) & (n->nslots - 1);
        while (n->slots[s] >= 0) {
            s = (s + 1) & (n->nslots - 1);
        }
        n->slots[s] = (int)i;
    }
    if (n->max_value_length < 0) {
        cfg_error_key(c, node, path, "max_value_length", "must not be negative");
    }
    if (n->max_future < 0 || n->max_past < 0) {
        cfg_error_key(c, node, path, "timestamps", "durations must not be negative");
    }
    const char *svc =
        n->service_name && *n->service_name ? n->service_name : getenv("OTEL_SERVICE_NAME");
    n->svc = svc && *svc ? strdup(svc) : NULL;
}

static void norm_free(void *cfgp)
{
    norm_cfg_t *n = cfgp;
    for (size_t i = 0; i < n->ntab; i++) {
        free(n->tab[i].from);
        free(n->tab[i].to);
    }
    free(n->tab);
    free(n->slots);
    free(n->svc);
    n->tab = NULL;
    n->slots = NULL;
    n->svc = NULL;
}

static int tab_find(const norm_cfg_t *n, const char *key)
{
    size_t s = str_hash(key) & (n->nslots - 1);
    while (n->slots[s] >= 0) {
        if (!strcmp(n->tab[n->slots[s]].from, key)) {
            return n->slots[s];
        }
        s = (s + 1) & (n->nslots - 1);
    }
    return -1;
}

/* ---- per request ------------------------------------------------------------------------ */

typedef struct nctx {
    norm_cfg_t *cfg;
    arena_t *a;
    int oom;
    uint32_t *renamed; /* per table entry */
    uint64_t truncated, ts[2][2], defaults[2];
    uint64_t now, hi, lo; /* ns; hi/lo = 0 when not checked */
} nctx_t;

static kv_t *kv_copy(nctx_t *x, const kv_t *kv)
{
    kv_t *n = arena_alloc(x->a, sizeof(*n));
    if (!n) {
        x->oom = 1;
        return NULL;
    }
    *n = *kv;
    return n;
}

static ssize_t kv_index(kv_t **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i]->key && !strcmp(kv[i]->key, key)) {
            return (ssize_t)i;
        }
    }
    return -1;
}

/* Renames and truncates one attribute list in place (the array belongs to the request). */
static void attrs(nctx_t *x, size_t *np, kv_t **kv)
{
    norm_cfg_t *c = x->cfg;
    for (size_t i = 0; i < *np && !x->oom;) {
        int t = c->ntab ? tab_find(c, kv[i]->key) : -1;
        if (t >= 0) {
            x->renamed[t]++;
            if (kv_index(kv, *np, c->tab[t].to) >= 0) {
                /* the current name is there already: it wins, the old one goes */
                memmove(&kv[i], &kv[i + 1], (*np - i - 1) * sizeof(*kv));
                (*np)--;
                continue;
            }
            kv_t *n = kv_copy(x, kv[i]);
            if (!n) {
                return;
            }
            n->key = c->tab[t].to; /* the config outlives the request; the packer only reads */
            kv[i] = n;
        }
        av_t *v = kv[i]->value;
        if (c->max_value_length && v &&
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            size_t len = strlen(v->string_value), lim = (size_t)c->max_value_length;
            if (len > lim) {
                while (lim > 0 && ((unsigned char)v->string_value[lim] & 0xC0) == 0x80) {
                    lim--; /* never cut a UTF-8 sequence in half */
                }
                av_t *nv = arena_alloc(x->a, sizeof(*nv));
                char *s = arena_strndup(x->a, v->string_value, lim);
                kv_t *n = kv_copy(x, kv[i]);
                if (!nv || !s || !n) {
                    x->oom = 1;
                    return;
                }
                *nv = *v;
                nv->string_value = s;
                n->value = nv;
                kv[i] = n;
                x->truncated++;
            }
        }
        i++;
    }
}

static int add_attr(nctx_t *x, size_t *np, kv_t ***kv, const char *key, const char *val)
{
    kv_t **na = arena_alloc(x->a, (*np + 1) * sizeof(kv_t *));
    kv_t *n = arena_alloc(x->a, sizeof(*n));
    av_t *v = arena_alloc(x->a, sizeof(*v));
    if (!na || !n || !v) {
        x->oom = 1;
        return -1;
    }
    if (*np) {
        memcpy(na, *kv, *np * sizeof(kv_t *));
    }
    opentelemetry__proto__common__v1__key_value__init(n);
    opentelemetry__proto__common__v1__any_value__init(v);
    n->key = (char *)key;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)val;
    n->value = v;
    na[(*np)++] = n;
    *kv = na;
    return 0;
}

static void resource(nctx_t *x, resource_t **rp)
{
    norm_cfg_t *c = x->cfg;
    if (!*rp) {
        if (!c->svc && !(c->environment && *c->environment)) {
            return;
        }
        resource_t *r = arena_alloc(x->a, sizeof(*r));
        if (!r) {
            x->oom = 1;
            return;
        }
        opentelemetry__proto__resource__v1__resource__init(r);
        *rp = r;
    }
    resource_t *r = *rp;
    attrs(x, &r->n_attributes, r->attributes);
    if (c->svc) {
        ssize_t i = kv_index(r->attributes, r->n_attributes, "service.name");
        const av_t *v = i >= 0 ? r->attributes[i]->value : NULL;
        int missing =
            i < 0 || !v ||
            (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
             (!v->string_value[0] || !strncmp(v->string_value, "unknown_service", 15)));
        if (missing) {
            if (i >= 0) {
                memmove(&r->attributes[i], &r->attributes[i + 1],
                        (r->n_attributes - (size_t)i - 1) * sizeof(kv_t *));
                r->n_attributes--;
            }
            add_attr(x, &r->n_attributes, &r->attributes, "service.name", c->svc);
            x->defaults[0]++;
        }
    }
    if (c->environment && *c->environment &&
        kv_index(r->attributes, r->n_attributes, "deployment.environment.name") < 0) {
        add_attr(x, &r->n_attributes, &r->attributes, "deployment.environment.name",
                 c->environment);
        x->defaults[1]++;
    }
}

/* Checks one timestamp pair (start may be NULL). Returns 0 in range, 1 future, 2 past; with
 * clamp, moves the pair into the window keeping its duration. */
static int ts_fix(nctx_t *x, uint64_t *start, uint64_t *t)
{
    uint64_t v = *t ? *t : (start ? *start : 0);
    if (!v) {
        return 0;
    }
    int dir = 0;
    uint64_t shift = 0;
    if (x->hi && v > x->hi) {
        dir = 1;
        shift = v - x->now;
    } else if (x->lo && v < x->lo) {
        dir = 2;
        shift = x->lo - v;
    }
    if (!dir) {
        return 0;
    }
    x->ts[dir - 1][x->cfg->ts_action]++;
    if (x->cfg->ts_action == TS_CLAMP) {
        if (dir == 1) {
            if (*t) {
                *t = *t > shift ? *t - shift : 0;
            }
            if (start && *start) {
                *start = *start > shift ? *start - shift : 0;
            }
        } else {
            if (*t) {
                *t += shift;
            }
            if (start && *start) {
                *start += shift;
            }
        }
    }
    return dir;
}

static void ts_flag(nctx_t *x, int dir, size_t *np, kv_t ***kv)
{
    if (dir && x->cfg->ts_action == TS_FLAG && kv_index(*kv, *np, x->cfg->ts_attribute) < 0) {
        add_attr(x, np, kv, x->cfg->ts_attribute, dir == 1 ? "future" : "past");
    }
}

static void points(nctx_t *x, size_t n, void **p)
{
    for (size_t d = 0; d < n; d++) {
        otlp_pt_head_t *ph = p[d];
        attrs(x, &ph->n_attributes, ph->attributes);
        if (x->hi || x->lo) {
            ts_flag(x, ts_fix(x, &ph->start_time_unix_nano, &ph->time_unix_nano), &ph->n_attributes,
                    &ph->attributes);
        }
    }
}

static void metric(nctx_t *x, Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    if (x->cfg->units && m->unit && m->unit[0]) {
        for (size_t i = 0; i < MT_ARRAY_LEN(unit_map); i++) {
            if (!strcmp(m->unit, unit_map[i][0])) {
                m->unit = (char *)unit_map[i][1]; /* static; the packer only reads */
                break;
            }
        }
    }
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        points(x, m->gauge->n_data_points, (void **)m->gauge->data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        points(x, m->sum->n_data_points, (void **)m->sum->data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        points(x, m->histogram->n_data_points, (void **)m->histogram->data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        points(x, m->exponential_histogram->n_data_points,
               (void **)m->exponential_histogram->data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        points(x, m->summary->n_data_points, (void **)m->summary->data_points);
        break;
    default:
        break;
    }
}

static void flush(nctx_t *x)
{
    norm_cfg_t *c = x->cfg;
    for (size_t i = 0; i < c->ntab; i++) {
        if (!x->renamed[i]) {
            continue;
        }
        tm_counter_t *ctr = atomic_load_explicit(&c->tab[i].ctr, memory_order_acquire);
        if (!ctr) {
            char labels[512];
            snprintf(labels, sizeof(labels), "from=\"%s\",to=\"%s\"", c->tab[i].from, c->tab[i].to);
            ctr = tm_counter("meltp_normalize_renamed_total",
                             "Attributes renamed by the normalize processor", labels);
            atomic_store_explicit(&c->tab[i].ctr, ctr, memory_order_release);
        }
        tm_add(ctr, x->renamed[i]);
    }
    if (x->truncated) {
        tm_add(tm_counter("meltp_normalize_truncated_total",
                          "Attribute values truncated by the normalize processor", ""),
               x->truncated);
    }
    static const char *const dirs[] = {"future", "past"}, *const acts[] = {"clamp", "flag"};
    for (int d = 0; d < 2; d++) {
        for (int a = 0; a < 2; a++) {
            if (x->ts[d][a]) {
                char labels[128];
                snprintf(labels, sizeof(labels), "direction=\"%s\",action=\"%s\"", dirs[d],
                         acts[a]);
                tm_add(tm_counter("meltp_normalize_timestamps_total",
                                  "Out-of-range timestamps found by the normalize processor",
                                  labels),
                       x->ts[d][a]);
            }
        }
    }
    static const char *const defs[] = {"service.name", "deployment.environment.name"};
    for (int d = 0; d < 2; d++) {
        if (x->defaults[d]) {
            char labels[128];
            snprintf(labels, sizeof(labels), "attribute=\"%s\"", defs[d]);
            tm_add(tm_counter("meltp_normalize_defaults_total",
                              "Resource attributes filled in by the normalize processor", labels),
                   x->defaults[d]);
        }
    }
}

static int norm_process(processor_t *pr, mt_signal_t s, ProtobufCMessage *req, arena_t *a,
                        proc_result_t *r)
{
    (void)r;
    nctx_t x;
    memset(&x, 0, sizeof(x));
    x.cfg = pr->cfg;
    x.a = a;
    if (!x.cfg->slots) {
        return MT_OK;
    }
    x.renamed = arena_calloc(a, (x.cfg->ntab ? x.cfg->ntab : 1) * sizeof(uint32_t));
    if (!x.renamed) {
        return MT_ENOMEM;
    }
    if (x.cfg->max_future || x.cfg->max_past) {
        x.now = mt_wall_ns();
        x.hi = x.cfg->max_future ? x.now + (uint64_t)x.cfg->max_future * 1000000u : 0;
        uint64_t back = (uint64_t)x.cfg->max_past * 1000000u;
        x.lo = x.cfg->max_past && back < x.now ? x.now - back : 0;
    }
    if (s == MT_SIG_TRACES) {
        Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *q = (void *)req;
        for (size_t i = 0; i < q->n_resource_spans; i++) {
            Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = q->resource_spans[i];
            resource(&x, &rs->resource);
            for (size_t j = 0; j < rs->n_scope_spans; j++) {
                Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
                for (size_t k = 0; k < ss->n_spans && !x.oom; k++) {
                    Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                    attrs(&x, &sp->n_attributes, sp->attributes);
                    for (size_t e = 0; e < sp->n_events; e++) {
                        attrs(&x, &sp->events[e]->n_attributes, sp->events[e]->attributes);
                    }
                    if (x.hi || x.lo) {
                        ts_flag(&x, ts_fix(&x, &sp->start_time_unix_nano, &sp->end_time_unix_nano),
                                &sp->n_attributes, &sp->attributes);
                    }
                }
            }
        }
    } else if (s == MT_SIG_LOGS) {
        Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *q = (void *)req;
        for (size_t i = 0; i < q->n_resource_logs; i++) {
            Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = q->resource_logs[i];
            resource(&x, &rl->resource);
            for (size_t j = 0; j < rl->n_scope_logs; j++) {
                Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
                for (size_t k = 0; k < sl->n_log_records && !x.oom; k++) {
                    Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                    attrs(&x, &lr->n_attributes, lr->attributes);
                    if (x.hi || x.lo) {
                        ts_flag(&x, ts_fix(&x, NULL, &lr->time_unix_nano), &lr->n_attributes,
                                &lr->attributes);
                    }
                }
            }
        }
    } else if (s == MT_SIG_METRICS) {
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *q = (void *)req;
        for (size_t i = 0; i < q->n_resource_metrics; i++) {
            Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = q->resource_metrics[i];
            resource(&x, &rm->resource);
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics && !x.oom; k++) {
                    metric(&x, rm->scope_metrics[j]->metrics[k]);
                }
            }
        }
    } else if (s == MT_SIG_PROFILES) {
        Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *q = (void *)req;
        for (size_t i = 0; i < q->n_resource_profiles; i++) {
            resource(&x, &q->resource_profiles[i]->resource);
        }
    }
    flush(&x);
    return x.oom ? MT_ENOMEM : MT_OK;
}

const processor_ops_t processor_normalize_ops = {
    .type = "normalize",
    .fields = norm_fields,
    .nfields = MT_ARRAY_LEN(norm_fields),
    .cfg_size = sizeof(norm_cfg_t),
    .signals = SIG_ALL,
    .help = "semantic-convention attribute renames, service/environment defaults, UCUM units, "
            "value truncation, out-of-range timestamps",
    .validate = norm_validate,
    .process = norm_process,
    .free_cfg = norm_free,
};
