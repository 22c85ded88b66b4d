/*
 * validate_pii.c - the PII audit of `meltp validate` (validate_pii.h). It walks a request
 * before the mirrored processors touch it, scans every string the synthetic_guard processor
 * scans (and span names, which it does not), and asks each guard stage of the pipeline what it
 * would do with a finding (proc_guard.h), so a guard that redacts no longer hides the finding:
 * the report says "redact" instead of saying nothing. Only detector kinds and places are
 * recorded, never the value.
 */
#include "validate_pii.h"

#include "otlp.h"
#include "proc_guard.h"

#include <string.h>

#define VP_MAX_FINDINGS 16 /* per scanned string: kinds are what matter, not every match */
#define VP_MAX_DEPTH    16 /* nested AnyValue levels scanned */
#define VP_MAX_GUARDS   32 /* guard stages per pipeline considered (a bit each) */

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

typedef struct vp {
    const pii_t *pii;
    vr_report_t *rep;
    processor_t *guards[VP_MAX_GUARDS];
    size_t nguards;
    uint32_t res_drop;   /* bit per guard that drops the current resource whole */
    const char *service; /* of the current resource */
} vp_t;

/* What the pipeline does with a finding of kind k in s[0..n) (see validate_pii.h). */
static guard_action_t action_for(const vp_t *v, guard_at_t at, int depth, const char *s, size_t n,
                                 pii_kind_t k)
{
    int flagged = 0;
    for (size_t i = 0; i < v->nguards; i++) {
        if (v->res_drop & (1u << i)) {
            return GUARD_DROP;
        }
        if (guard_finds(v->guards[i], at, depth, s, n) & PII_BIT(k)) {
            guard_action_t a = guard_action(v->guards[i], k);
            if (a != GUARD_FLAG) {
                return a; /* later guards see the value masked, hashed or not at all */
            }
            flagged = 1;
        }
    }
    return flagged ? GUARD_FLAG : GUARD_NONE;
}

/* Counts one finding per (string, detector). */
static void scan_str(vp_t *v, guard_at_t at, int depth, const char *s, size_t n, const char *where)
{
    if (!s || !n) {
        return;
    }
    pii_finding_t f[VP_MAX_FINDINGS];
    size_t nf = pii_scan(v->pii, s, n, f, VP_MAX_FINDINGS);
    unsigned kinds = 0;
    for (size_t i = 0; i < nf; i++) {
        kinds |= PII_BIT(f[i].kind);
    }
    for (int k = 0; kinds && k < PII_KIND_COUNT; k++) {
        if (!(kinds & PII_BIT(k))) {
            continue;
        }
        guard_action_t a = action_for(v, at, depth, s, n, (pii_kind_t)k);
        vr_pii_t *p = vr_pii_get(v->rep, pii_kind_name((pii_kind_t)k), v->service, where,
                                 guard_action_name(a));
        if (p) {
            p->count++;
        }
    }
}

static void scan_any(vp_t *v, guard_at_t at, const av_t *a, const char *where, int depth)
{
    if (!a || depth > VP_MAX_DEPTH) {
        return;
    }
    switch (a->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        if (a->string_value) {
            scan_str(v, at, depth, a->string_value, strlen(a->string_value), where);
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        for (size_t i = 0; a->array_value && i < a->array_value->n_values; i++) {
            scan_any(v, at, a->array_value->values[i], where, depth + 1);
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        for (size_t i = 0; a->kvlist_value && i < a->kvlist_value->n_values; i++) {
            scan_any(v, at, a->kvlist_value->values[i]->value, where, depth + 1);
        }
        break;
    default:
        break;
    }
}

/* `prefix`.attributes[key] for every attribute. */
static void scan_attrs(vp_t *v, guard_at_t at, kv_t **kvs, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        char where[320];
        snprintf(where, sizeof(where), "%s.attributes[%.256s]", prefix,
                 kvs[i]->key ? kvs[i]->key : "");
        scan_any(v, at, kvs[i]->value, where, 0);
    }
}

/* Starts a resource: its service (as the report keys it), which guards drop it whole, and
 * its own attributes. */
static void resource_begin(vp_t *v, const resource_t *r)
{
    v->service = "unknown_service";
    for (size_t i = 0; r && i < r->n_attributes; i++) {
        const av_t *a = r->attributes[i]->value;
        if (r->attributes[i]->key && strcmp(r->attributes[i]->key, "service.name") == 0 && a &&
            a->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            a->string_value && *a->string_value) {
            v->service = a->string_value;
        }
    }
    v->res_drop = 0;
    for (size_t i = 0; i < v->nguards; i++) {
        if (guard_drops_resource(v->guards[i], r)) {
            v->res_drop |= 1u << i;
        }
    }
    if (r) {
        scan_attrs(v, GUARD_AT_RESOURCE, r->attributes, r->n_attributes, "resource");
    }
}

static void traces(vp_t *v,
                   const Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        size_t items = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            items += rs->scope_spans[j]->n_spans;
        }
        if (!items) {
            continue; /* the report lists services that sent items */
        }
        resource_begin(v, rs->resource);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                if (sp->name) {
                    scan_str(v, GUARD_AT_OTHER, 0, sp->name, strlen(sp->name), "span.name");
                }
                scan_attrs(v, GUARD_AT_ATTRIBUTE, sp->attributes, sp->n_attributes, "span");
                for (size_t e = 0; e < sp->n_events; e++) {
                    scan_attrs(v, GUARD_AT_ATTRIBUTE, sp->events[e]->attributes,
                               sp->events[e]->n_attributes, "span.events");
                }
            }
        }
    }
}

static int is_event(const Opentelemetry__Proto__Logs__V1__LogRecord *lr)
{
    if (lr->event_name && *lr->event_name) {
        return 1;
    }
    for (size_t i = 0; i < lr->n_attributes; i++) {
        if (lr->attributes[i]->key && strcmp(lr->attributes[i]->key, "event.name") == 0) {
            return 1;
        }
    }
    return 0;
}

static void logs(vp_t *v, const Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *req)
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
        resource_begin(v, rl->resource);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                int event = is_event(lr);
                scan_any(v, GUARD_AT_LOG_BODY, lr->body, event ? "event.body" : "log.body", 0);
                scan_attrs(v, GUARD_AT_ATTRIBUTE, lr->attributes, lr->n_attributes,
                           event ? "event" : "log");
            }
        }
    }
}

/* Data points of a metric; with `scan`, their attributes are scanned too. The point types
 * differ, so each is spelled out. */
#define VP_POINTS(field)                                                             \
    for (size_t p_ = 0; m->field && p_ < m->field->n_data_points; p_++) {            \
        if (scan) {                                                                  \
            scan_attrs(v, GUARD_AT_ATTRIBUTE, m->field->data_points[p_]->attributes, \
                       m->field->data_points[p_]->n_attributes, "metric");           \
        }                                                                            \
        n++;                                                                         \
    }

static size_t metric_points(vp_t *v, const Opentelemetry__Proto__Metrics__V1__Metric *m, int scan)
{
    size_t n = 0;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        VP_POINTS(gauge);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        VP_POINTS(sum);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        VP_POINTS(histogram);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        VP_POINTS(exponential_histogram);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        VP_POINTS(summary);
        break;
    default:
        break;
    }
    return n;
}
#undef VP_POINTS

static void metrics(vp_t *v,
                    const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
        size_t points = 0;
        for (size_t j = 0; j < rm->n_scope_metrics && !points; j++) {
            for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics && !points; k++) {
                points = metric_points(v, rm->scope_metrics[j]->metrics[k], 0);
            }
        }
        if (!points) {
            continue;
        }
        resource_begin(v, rm->resource);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                metric_points(v, sm->metrics[k], 1);
            }
        }
    }
}

static void profiles(vp_t *v,
                     const Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_profiles; i++) {
        const Opentelemetry__Proto__Profiles__V1development__ResourceProfiles *rp =
            req->resource_profiles[i];
        size_t items = 0;
        for (size_t j = 0; j < rp->n_scope_profiles; j++) {
            items += rp->scope_profiles[j]->n_profiles;
        }
        if (items) {
            resource_begin(v, rp->resource);
        }
    }
}

void vp_scan_request(const pii_t *pii, vr_report_t *rep, mt_signal_t s, const ProtobufCMessage *req,
                     processor_t *const *stages, size_t nstages)
{
    if (!pii || !req) {
        return;
    }
    vp_t v;
    memset(&v, 0, sizeof(v));
    v.pii = pii;
    v.rep = rep;
    for (size_t i = 0; i < nstages && v.nguards < VP_MAX_GUARDS; i++) {
        if (guard_is(stages[i])) {
            v.guards[v.nguards++] = stages[i];
        }
    }
    switch (s) {
    case MT_SIG_TRACES:
        traces(&v, (const void *)req);
        break;
    case MT_SIG_LOGS:
        logs(&v, (const void *)req);
        break;
    case MT_SIG_METRICS:
        metrics(&v, (const void *)req);
        break;
    case MT_SIG_PROFILES:
        profiles(&v, (const void *)req);
        break;
    default:
        break;
    }
}
