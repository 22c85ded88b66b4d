/*
 * validate_mode_analyze.c - the analysis walk of `meltp validate`: for each request, after the
 * mirrored processors ran, the services and environments it shows, the signals seen, Loki
 * stream labels, the Prometheus preview of metrics, SLO series and schema violations.
 * Part of the validate/validate_mode module (validate_mode_int.h).
 */
#include "validate_mode_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- analysis -------------------------------------------------------------------------------- */

static const av_t *attr_get(kv_t **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kvs[i]->key && strcmp(kvs[i]->key, key) == 0) {
            return kvs[i]->value;
        }
    }
    return NULL;
}

static const char *attr_str(kv_t **kvs, size_t n, const char *key)
{
    const av_t *v = attr_get(kvs, n, key);
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
        v->string_value && *v->string_value) {
        return v->string_value;
    }
    return NULL;
}

/* Service and environment of a resource, as the report keys them. */
static void resource_keys(const resource_t *r, const char **service, const char **env)
{
    kv_t **kvs = r ? r->attributes : NULL;
    size_t n = r ? r->n_attributes : 0;
    *service = attr_str(kvs, n, "service.name");
    if (!*service) {
        *service = "unknown_service";
    }
    *env = attr_str(kvs, n, "deployment.environment.name");
    if (!*env) {
        *env = attr_str(kvs, n, "deployment.environment");
    }
    if (!*env) {
        *env = "";
    }
}

/* Finds or creates the service entry and, once per new entry, applies the policy. */
vr_service_t *vm_service_of(vm_t *v, const char *service, const char *env)
{
    size_t before = v->rep.nservices;
    vr_service_t *s = vr_service_get(&v->rep, service, env);
    if (s && v->rep.nservices > before) {
        const vm_rule_t *r = vm_policy_match(&v->pol, service);
        if (r) {
            s->policy_pattern = r->pattern;
            s->required = r->signals;
            s->require_slo = r->require_slo;
        }
    }
    return s;
}

/* Records that `s` saw a resource: required attributes absent on it are gaps. */
static void check_resource(vm_t *v, vr_service_t *s, const resource_t *r)
{
    s->resources++;
    const vm_rule_t *rule = vm_policy_match(&v->pol, s->service);
    for (size_t i = 0; rule && i < rule->nattrs; i++) {
        const av_t *a = attr_get(r ? r->attributes : NULL, r ? r->n_attributes : 0, rule->attrs[i]);
        if (!a || a->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET ||
            (a->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
             (!a->string_value || !*a->string_value))) {
            vr_strset_add(&s->missing_attributes, rule->attrs[i]);
        }
    }
}

static void seen(vr_service_t *s, int sig, uint64_t ts, uint64_t n)
{
    if (!n) {
        return;
    }
    if (!ts) {
        ts = mt_wall_ns();
    }
    if (!s->count[sig] || ts < s->first_ns[sig]) {
        s->first_ns[sig] = ts;
    }
    if (!s->count[sig] || ts > s->last_ns[sig]) {
        s->last_ns[sig] = ts;
    }
    s->count[sig] += n;
}

static void analyze_traces(vm_t *v,
                           Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        size_t items = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            items += rs->scope_spans[j]->n_spans;
        }
        if (!items) {
            continue;
        }
        const char *svc, *env;
        resource_keys(rs->resource, &svc, &env);
        vr_service_t *s = vm_service_of(v, svc, env);
        if (!s) {
            continue;
        }
        check_resource(v, s, rs->resource);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                seen(s, VR_TRACES, sp->start_time_unix_nano, 1);
            }
        }
    }
}

/* Loki under its default OTLP policy: these resource attributes become stream (index) labels,
 * everything else is structured metadata. */
static const struct {
    const char *attr, *label;
} loki_index[] = {
    {"service.name", "service_name"},
    {"service.namespace", "service_namespace"},
    {"deployment.environment.name", "deployment_environment"},
    {"deployment.environment", "deployment_environment"},
    {"k8s.namespace.name", "k8s_namespace_name"},
};

static void loki_name(vr_strset_t *set, const char *key)
{
    char buf[256];
    if (promconv_label_name(key, buf, sizeof(buf)) > 0) {
        vr_strset_add(set, buf);
    }
}

static void analyze_logs(vm_t *v,
                         Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[i];
        size_t items = 0;
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            items += rl->scope_logs[j]->n_log_records;
        }
        if (!items) {
            continue;
        }
        const char *svc, *env;
        resource_keys(rl->resource, &svc, &env);
        vr_service_t *s = vm_service_of(v, svc, env);
        if (!s) {
            continue;
        }
        check_resource(v, s, rl->resource);
        kv_t **rkv = rl->resource ? rl->resource->attributes : NULL;
        size_t rn = rl->resource ? rl->resource->n_attributes : 0;
        vr_log_preview_t *lp = vr_log_get(&v->rep, svc, env);
        if (lp) {
            vr_strset_add(&lp->index_labels, "service_name"); /* Loki: unknown_service if unset */
            for (size_t a = 0; a < rn; a++) {
                const char *label = NULL;
                for (size_t x = 0; x < MT_ARRAY_LEN(loki_index); x++) {
                    if (rkv[a]->key && strcmp(rkv[a]->key, loki_index[x].attr) == 0) {
                        label = loki_index[x].label;
                    }
                }
                if (label) {
                    vr_strset_add(&lp->index_labels, label);
                } else if (rkv[a]->key) {
                    loki_name(&lp->structured_metadata, rkv[a]->key);
                }
            }
        }
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            if (lp && sl->scope && sl->scope->name && *sl->scope->name) {
                vr_strset_add(&lp->structured_metadata, "scope_name");
            }
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                int event = (lr->event_name && *lr->event_name) ||
                            attr_get(lr->attributes, lr->n_attributes, "event.name");
                uint64_t ts = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
                seen(s, event ? VR_EVENTS : VR_LOGS, ts, 1);
                if (!lp) {
                    continue;
                }
                if ((lr->severity_text && *lr->severity_text) || lr->severity_number) {
                    vr_strset_add(&lp->index_labels, "level");
                }
                if (lr->trace_id.len) {
                    vr_strset_add(&lp->structured_metadata, "trace_id");
                }
                if (lr->span_id.len) {
                    vr_strset_add(&lp->structured_metadata, "span_id");
                }
                for (size_t a = 0; a < lr->n_attributes; a++) {
                    if (lr->attributes[a]->key) {
                        loki_name(&lp->structured_metadata, lr->attributes[a]->key);
                    }
                }
            }
        }
    }
}

static void analyze_profiles(vm_t *v,
                             Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_profiles; i++) {
        const Opentelemetry__Proto__Profiles__V1development__ResourceProfiles *rp =
            req->resource_profiles[i];
        size_t items = 0;
        for (size_t j = 0; j < rp->n_scope_profiles; j++) {
            items += rp->scope_profiles[j]->n_profiles;
        }
        if (!items) {
            continue;
        }
        const char *svc, *env;
        resource_keys(rp->resource, &svc, &env);
        vr_service_t *s = vm_service_of(v, svc, env);
        if (!s) {
            continue;
        }
        check_resource(v, s, rp->resource);
        for (size_t j = 0; j < rp->n_scope_profiles; j++) {
            const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp =
                rp->scope_profiles[j];
            for (size_t k = 0; k < sp->n_profiles; k++) {
                seen(s, VR_PROFILES, sp->profiles[k]->time_unix_nano, 1);
            }
        }
    }
}

typedef struct name_ts {
    const char *name;
    const Prometheus__TimeSeries *ts;
} name_ts_t;

static int cmp_name_ts(const void *a, const void *b)
{
    return strcmp(((const name_ts_t *)a)->name, ((const name_ts_t *)b)->name);
}

/* Adds the series named `name` (if the conversion produced any) to the preview entry. */
static int preview_add(vr_metric_preview_t *m, const name_ts_t *idx, size_t n, const char *name)
{
    name_ts_t key = {name, NULL};
    name_ts_t *hit = bsearch(&key, idx, n, sizeof(*idx), cmp_name_ts);
    if (!hit) {
        return 0;
    }
    while (hit > idx && strcmp(hit[-1].name, name) == 0) {
        hit--;
    }
    vr_strset_add(&m->prometheus, name);
    for (; hit < idx + n && strcmp(hit->name, name) == 0; hit++) {
        for (size_t l = 0; l < hit->ts->n_labels; l++) {
            if (strcmp(hit->ts->labels[l]->name, "__name__") != 0) {
                vr_strset_add(&m->labels, hit->ts->labels[l]->name);
            }
        }
    }
    return 1;
}

static const char *metric_type(const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return "gauge";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return "sum";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return "histogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return "exponential_histogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return "summary";
    default:
        return "empty";
    }
}

/* Data points of a metric and the time of its latest one. */
static size_t metric_points(const Opentelemetry__Proto__Metrics__V1__Metric *m, uint64_t *ts)
{
    *ts = 0;
#define PTS(field)                                                     \
    do {                                                               \
        if (m->field) {                                                \
            for (size_t p_ = 0; p_ < m->field->n_data_points; p_++) {  \
                if (m->field->data_points[p_]->time_unix_nano > *ts) { \
                    *ts = m->field->data_points[p_]->time_unix_nano;   \
                }                                                      \
            }                                                          \
            return m->field->n_data_points;                            \
        }                                                              \
    } while (0)
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        PTS(gauge);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        PTS(sum);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        PTS(histogram);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        PTS(exponential_histogram);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        PTS(summary);
        break;
    default:
        break;
    }
#undef PTS
    return 0;
}

static void analyze_metrics(vm_t *v,
                            Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req)
{
    /* the Prometheus view of this request, for the preview and the SLO series check */
    promconv_opts_t o;
    memset(&o, 0, sizeof(o));
    o.add_metric_suffixes = 1;
    o.scope_labels = 1;
    o.target_info = 1;
    promconv_out_t out;
    memset(&out, 0, sizeof(out));
    arena_reset(v->scratch);
    name_ts_t *idx = NULL;
    size_t nidx = 0;
    if (promconv_convert(&o, v->dc, req, v->scratch, &out) == MT_OK && out.n_series) {
        idx = arena_alloc(v->scratch, out.n_series * sizeof(*idx));
        for (size_t i = 0; idx && i < out.n_series; i++) {
            const Prometheus__TimeSeries *ts = out.series[i];
            for (size_t l = 0; l < ts->n_labels; l++) {
                if (strcmp(ts->labels[l]->name, "__name__") == 0) {
                    idx[nidx].name = ts->labels[l]->value;
                    idx[nidx++].ts = ts;
                    vr_strset_add(&v->series_seen, ts->labels[l]->value);
                    break;
                }
            }
            int ti =
                nidx && idx[nidx - 1].ts == ts && strcmp(idx[nidx - 1].name, "target_info") == 0;
            for (size_t l = 0; ti && l < ts->n_labels; l++) {
                if (strcmp(ts->labels[l]->name, "__name__") != 0) {
                    vr_strset_add(&v->rep.target_info_labels, ts->labels[l]->name);
                }
            }
        }
        if (nidx) {
            qsort(idx, nidx, sizeof(*idx), cmp_name_ts);
        }
    }
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
        const char *svc, *env;
        resource_keys(rm->resource, &svc, &env);
        vr_service_t *s = NULL;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[k];
                uint64_t ts;
                size_t n = metric_points(m, &ts);
                if (!n) {
                    continue;
                }
                if (!s) {
                    s = vm_service_of(v, svc, env);
                    if (!s) {
                        return;
                    }
                    check_resource(v, s, rm->resource);
                }
                seen(s, VR_METRICS, ts, n);
                const char *name = m->name ? m->name : "";
                vr_strset_add(&v->series_seen, name);
                vr_metric_preview_t *mp =
                    vr_metric_get(&v->rep, name, metric_type(m), m->unit ? m->unit : "");
                if (!mp) {
                    continue;
                }
                int composite =
                    m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM ||
                    m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY ||
                    m->data_case ==
                        OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
                char base[512], cand[540];
                if (promconv_family_name(m, 1, NULL, base, sizeof(base), NULL) < 0) {
                    continue;
                }
                /* the family too: a latency SLI names a histogram by it (slo/promnames.c);
                 * the converted series' own names were added above */
                vr_strset_add(&v->series_seen, base);
                int found = preview_add(mp, idx, nidx, base);
                static const char *suffix[] = {"_bucket", "_sum", "_count"};
                for (size_t x = 0; composite && x < MT_ARRAY_LEN(suffix); x++) {
                    snprintf(cand, sizeof(cand), "%s%s", base, suffix[x]);
                    found |= preview_add(mp, idx, nidx, cand);
                }
                if (!found) {
                    vr_strset_add(&mp->prometheus, base); /* not converted (e.g. dropped) */
                }
            }
        }
    }
}

void vm_analyze(vm_t *v, mt_signal_t s, ProtobufCMessage *req)
{
    switch (s) {
    case MT_SIG_TRACES:
        analyze_traces(v, (Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *)req);
        break;
    case MT_SIG_METRICS:
        analyze_metrics(v, (Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *)req);
        break;
    case MT_SIG_LOGS:
        analyze_logs(v, (Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *)req);
        break;
    case MT_SIG_PROFILES:
        analyze_profiles(v,
                         (Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *)req);
        break;
    default:
        break;
    }
}

/* ---- schema violations --------------------------------------------------------------------- */

typedef struct hit_ctx {
    vm_t *v;
    const ProtobufCMessage *req;
} hit_ctx_t;

/* The item a hit points at, by name (span / metric name; never an attribute value). */
static const char *hit_item_name(const hit_ctx_t *h, const schema_hit_t *hit)
{
    if (hit->resource_idx < 0 || hit->scope_idx < 0 || hit->item_idx < 0) {
        return NULL;
    }
    size_t ri = (size_t)hit->resource_idx, si = (size_t)hit->scope_idx;
    size_t ii = (size_t)hit->item_idx;
    if (hit->signal == MT_SIG_TRACES) {
        const Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r =
            (const void *)h->req;
        if (ri < r->n_resource_spans && si < r->resource_spans[ri]->n_scope_spans &&
            ii < r->resource_spans[ri]->scope_spans[si]->n_spans) {
            return r->resource_spans[ri]->scope_spans[si]->spans[ii]->name;
        }
    } else if (hit->signal == MT_SIG_METRICS) {
        const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r =
            (const void *)h->req;
        if (ri < r->n_resource_metrics && si < r->resource_metrics[ri]->n_scope_metrics &&
            ii < r->resource_metrics[ri]->scope_metrics[si]->n_metrics) {
            return r->resource_metrics[ri]->scope_metrics[si]->metrics[ii]->name;
        }
    }
    return NULL;
}

static void on_hit(void *arg, const schema_hit_t *hit)
{
    hit_ctx_t *h = arg;
    vr_violation_t *vi = vr_violation_get(&h->v->rep, hit->rule, hit->service);
    if (!vi) {
        return;
    }
    vi->count++;
    if (vi->nexamples >= VR_MAX_EXAMPLES) {
        return;
    }
    /* examples name the item and the attribute, never a value (it may be personal data) */
    char ex[512];
    const char *item = hit_item_name(h, hit);
    const char *kind = hit->signal == MT_SIG_TRACES    ? "span"
                       : hit->signal == MT_SIG_METRICS ? "metric"
                       : hit->signal == MT_SIG_LOGS    ? "log record"
                                                       : "item";
    if (hit->item_idx < 0) {
        kind = hit->scope_idx < 0 ? "resource" : "scope";
    }
    int n = item && *item ? snprintf(ex, sizeof(ex), "%s \"%.128s\": ", kind, item)
                          : snprintf(ex, sizeof(ex), "%s #%d: ", kind,
                                     hit->item_idx >= 0 ? hit->item_idx : hit->resource_idx);
    const char *attr = hit->attr && !(item && strcmp(item, hit->attr) == 0) ? hit->attr : NULL;
    snprintf(ex + n, sizeof(ex) - (size_t)n, "%s%s%.200s", hit->what ? hit->what : "violation",
             attr ? " " : "", attr ? attr : "");
    vr_violation_example(vi, ex);
}

void vm_check_schema(vm_t *v, schema_t *sc, mt_signal_t s, const ProtobufCMessage *req)
{
    if (!sc || !schema_covers(sc, s)) {
        return;
    }
    hit_ctx_t h = {v, req};
    schema_result_t res;
    memset(&res, 0, sizeof(res));
    if (schema_check(sc, s, req, on_hit, &h, &res) != MT_OK) {
        vr_input_error(&v->rep, "schema", "out of memory while checking the schema");
    }
}

/* ---- one request ----------------------------------------------------------------------------- */

/* Runs the mirrored processors on req (in arena a) and analyzes what is left. */
void vm_run_request(vm_t *v, mt_signal_t s, ProtobufCMessage *req, uint64_t items, arena_t *a,
                    const char *where)
{
    v->rep.requests++;
    v->rep.items += items;
    /* PII as it arrived: after the processors a redacting guard would hide it */
    processor_t *procs[VM_MAX_STAGES];
    for (size_t i = 0; i < v->nstages[s]; i++) {
        procs[i] = v->stages[s][i].pr;
    }
    vp_scan_request(v->pii, &v->rep, s, req, procs, v->nstages[s]);
    for (size_t i = 0; i < v->nstages[s]; i++) {
        vm_stage_t *st = &v->stages[s][i];
        vm_check_schema(v, st->schema, s, req);
        proc_result_t pr;
        memset(&pr, 0, sizeof(pr));
        int rc = st->pr->ops->process(st->pr, s, req, a, &pr);
        if (rc != MT_OK) {
            char msg[400];
            snprintf(msg, sizeof(msg), "processor %s failed: %s", st->pr->id, mt_strerror(rc));
            vr_input_error(&v->rep, where, msg);
            return;
        }
        if (pr.reject) {
            v->rep.rejected_requests++;
            return;
        }
        v->rep.dropped_by_processors += pr.dropped;
    }
    vm_check_schema(v, v->extra_schema, s, req);
    vm_analyze(v, s, req);
}
