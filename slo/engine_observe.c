/*
 * engine_observe.c - the SLO engine's intake: the pipeline observer decodes every accepted
 * request and counts good/bad/total events from spans, log records (and change events),
 * cumulative or delta sums, explicit and exponential histograms into the per-instance stores,
 * creating grouped instances on first sight. Runs under the engine mutex (see engine.c).
 * Part of the slo/engine module.
 */
#include "engine_int.h"
#include "promnames.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- attribute helpers ------------------------------------------------------------------ */

/* String form of an attribute value into buf (ints and bools formatted); NULL if absent. */
static const char *kv_get(kv_t **kvs, size_t n, const char *key, char *buf, size_t blen)
{
    for (size_t i = 0; i < n; i++) {
        if (kvs[i]->key && strcmp(kvs[i]->key, key) == 0) {
            return slo_pn_value(kvs[i]->value, buf, blen);
        }
    }
    return NULL;
}

static const char *res_get(const resource_t *r, const char *key, char *buf, size_t blen)
{
    return r ? kv_get(r->attributes, r->n_attributes, key, buf, blen) : NULL;
}

/* An item's labels: its own attributes first, then its resource's. */
typedef struct {
    kv_t **kvs;
    size_t n;
    const resource_t *res;
    const char *name;
    char buf[64];
    char jbuf[256];
    const char *le; /* a histogram bucket's `le` (selectors on _bucket series) */
} lookup_t;

/* `job` and `instance` as Prometheus sees an OTLP resource (protocols.md §4): job is
 * service.namespace/service.name (or service.name), instance is service.instance.id. The
 * remote-write receiver puts a series' job and instance there, so selectors on them match
 * remote-write input too. */
static const char *res_job_instance(lookup_t *l, const char *key)
{
    if (!strcmp(key, "instance")) {
        return res_get(l->res, "service.instance.id", l->buf, sizeof(l->buf));
    }
    char nb[64];
    const char *name = res_get(l->res, "service.name", nb, sizeof(nb));
    if (!name) {
        return NULL;
    }
    const char *ns = res_get(l->res, "service.namespace", l->buf, sizeof(l->buf));
    if (ns && *ns) {
        snprintf(l->jbuf, sizeof(l->jbuf), "%s/%s", ns, name);
    } else {
        snprintf(l->jbuf, sizeof(l->jbuf), "%s", name);
    }
    return l->jbuf;
}

static const char *lookup_get(void *ctx, const char *key)
{
    lookup_t *l = ctx;
    if (!strcmp(key, "__name__")) {
        return l->name;
    }
    if (l->le && !strcmp(key, "le")) {
        return l->le;
    }
    /* attribute keys as written or as the exporter's label names (promnames.h) */
    const char *v = slo_pn_attr(l->kvs, l->n, key, l->jbuf, sizeof(l->jbuf));
    if (!v && l->res) {
        v = slo_pn_attr(l->res->attributes, l->res->n_attributes, key, l->jbuf, sizeof(l->jbuf));
    }
    if (!v && (!strcmp(key, "job") || !strcmp(key, "instance"))) {
        v = res_job_instance(l, key);
    }
    return v;
}

/* ---- instances -------------------------------------------------------------------------- */

inst_rec_t *eng_rec_new(slo_engine_t *e, def_t *d, const char *id, char **gvals)
{
    inst_rec_t *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->id = strdup(id);
    for (size_t g = 0; g < SLO_ROUTES_MAX; g++) {
        r->rs[g].notified_tier = -1;
    }
    r->best = -1;
    if (!r->id) {
        free(r);
        return NULL;
    }
    slo_inst_init(&r->in, &d->p, d->counts_bad);
    if (gvals) {
        r->gvals = calloc(d->spec->ngroup_by, sizeof(char *));
        for (size_t i = 0; r->gvals && i < d->spec->ngroup_by; i++) {
            r->gvals[i] = strdup(gvals[i] ? gvals[i] : "");
        }
    }
    /* restored state waiting for this instance */
    for (pending_t **pp = &e->pending; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->id, id)) {
            pending_t *p = *pp;
            r->in = *p->in;
            r->in.first_eval_ms = 0;
            *pp = p->next;
            free(p->id);
            free(p->in);
            free(p);
            break;
        }
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        inst_rec_t **v = realloc(d->insts, nc * sizeof(*v));
        if (!v) {
            free(r->id);
            free(r);
            return NULL;
        }
        d->insts = v;
        d->cap = nc;
    }
    d->insts[d->n++] = r;
    return r;
}

void eng_rec_free(inst_rec_t *r, size_t ng)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; r->gvals && i < ng; i++) {
        free(r->gvals[i]);
    }
    free(r->gvals);
    free(r->id);
    free(r);
}

/* The instance for an item, creating its group on first sight (up to max_groups). */
static inst_rec_t *rec_for(slo_engine_t *e, def_t *d, lookup_t *l)
{
    const slo_spec_t *s = d->spec;
    if (!s->ngroup_by) {
        return d->n ? d->insts[0] : NULL;
    }
    const char *vals[SLO_MAX_GROUP_BY];
    char bufs[SLO_MAX_GROUP_BY][64];
    size_t ng = s->ngroup_by < SLO_MAX_GROUP_BY ? s->ngroup_by : SLO_MAX_GROUP_BY;
    for (size_t i = 0; i < ng; i++) {
        const char *v = lookup_get(l, s->group_by[i]);
        snprintf(bufs[i], sizeof(bufs[i]), "%s", v ? v : "");
        vals[i] = bufs[i];
    }
    for (size_t k = 0; k < d->n; k++) {
        inst_rec_t *r = d->insts[k];
        size_t i = 0;
        while (i < ng && r->gvals && !strcmp(r->gvals[i], vals[i])) {
            i++;
        }
        if (i == ng) {
            return r;
        }
    }
    size_t cap = s->max_groups ? s->max_groups : SLO_DEFAULT_MAX_GROUPS;
    if (d->n >= cap) {
        d->groups_dropped++;
        tm_add(e->c_groups, 1);
        return NULL;
    }
    char id[1024];
    size_t k = (size_t)snprintf(id, sizeof(id), "%s{", s->id);
    for (size_t i = 0; i < ng && k < sizeof(id); i++) {
        k += (size_t)snprintf(id + k, sizeof(id) - k, "%s%s=\"%s\"", i ? "," : "", s->group_by[i],
                              vals[i]);
    }
    if (k < sizeof(id)) {
        snprintf(id + k, sizeof(id) - k, "}");
    }
    return eng_rec_new(e, d, id, (char **)vals);
}

static void rec_add(slo_engine_t *e, def_t *d, inst_rec_t *r, int64_t t_ms, uint64_t a,
                    uint64_t total, int64_t now)
{
    int rc = slo_inst_add(&r->in, &d->p, t_ms, a, total, now);
    if (rc == SLO_ADD_TOO_OLD) {
        tm_add(e->c_old, total ? total : a);
        return;
    }
    if (rc == SLO_ADD_FUTURE) {
        tm_add(e->c_future, total ? total : a);
        return;
    }
    uint64_t bad = d->counts_bad ? a : 0, good = d->counts_bad ? 0 : a;
    if (d->counts_bad && total >= a) {
        good = total - a;
    }
    r->cum[0] += good;
    r->cum[1] += bad;
    r->cum[2] += total;
}

static void rec_trace(inst_rec_t *r, const ProtobufCBinaryData *tid)
{
    if (tid->len != 16) {
        return;
    }
    char hex[33];
    for (int i = 0; i < 16; i++) {
        snprintf(hex + 2 * i, 3, "%02x", tid->data[i]);
    }
    for (int i = 0; i < r->ntraces; i++) {
        if (!strcmp(r->traces[i], hex)) {
            return;
        }
    }
    memcpy(r->traces[r->tpos], hex, 33);
    r->tpos = (r->tpos + 1) % SLO_MSG_MAX_TRACES;
    if (r->ntraces < SLO_MSG_MAX_TRACES) {
        r->ntraces++;
    }
}

/* ---- observer: spans -------------------------------------------------------------------- */

static int64_t ns_to_ms(uint64_t ns)
{
    return (int64_t)(ns / 1000000ull);
}

/* Event time of a metric point's increment. A cumulative or delta point at time t reports
 * what happened in (previous point or start, t], so its events are placed 1 ms before t:
 * a window [now - W, now] then holds exactly the increments of the points in (now - W, now],
 * as Prometheus' increase()/rate() over [W] does on aligned samples (slo_parity tests).
 * Placed at t, the point at now - W would add the increment of the step before the window. */
static int64_t point_ms(uint64_t tns, int64_t now)
{
    return tns ? ns_to_ms(tns) - 1 : now;
}

static void observe_traces(slo_engine_t *e, const trace_req_t *req, int64_t now)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        char b[64];
        const char *svc = res_get(rs->resource, "service.name", b, sizeof(b));
        if (!svc) {
            continue;
        }
        for (size_t k = 0; k < e->ndefs; k++) {
            def_t *d = &e->defs[k];
            const slo_sli_t *sli = &d->spec->sli;
            if (sli->kind != SLO_SLI_SPANS || !sli->service || strcmp(sli->service, svc) != 0) {
                continue;
            }
            for (size_t j = 0; j < rs->n_scope_spans; j++) {
                const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
                for (size_t m = 0; m < ss->n_spans; m++) {
                    const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[m];
                    if (sli->span_name && strcmp(sli->span_name, sp->name) != 0) {
                        continue;
                    }
                    lookup_t l = {
                        sp->attributes, sp->n_attributes, rs->resource, sp->name, "", "", NULL};
                    if (sli->route) {
                        const char *rt = lookup_get(&l, "http.route");
                        if (!rt || strcmp(rt, sli->route) != 0) {
                            continue;
                        }
                    }
                    int bad;
                    if (sli->spans_mode == SLO_SPANS_LATENCY) {
                        double dur =
                            sp->end_time_unix_nano > sp->start_time_unix_nano
                                ? (double)(sp->end_time_unix_nano - sp->start_time_unix_nano) / 1e6
                                : 0;
                        bad = dur > sli->threshold_ms;
                    } else {
                        bad =
                            sp->status &&
                            sp->status->code ==
                                OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
                        if (!bad && sli->http_5xx_is_error) {
                            const char *st = lookup_get(&l, "http.response.status_code");
                            if (!st) {
                                st = lookup_get(&l, "http.status_code");
                            }
                            bad = st && atoi(st) >= 500;
                        }
                    }
                    inst_rec_t *r = rec_for(e, d, &l);
                    if (!r) {
                        continue;
                    }
                    uint64_t t =
                        sp->end_time_unix_nano ? sp->end_time_unix_nano : sp->start_time_unix_nano;
                    rec_add(e, d, r, ns_to_ms(t), (uint64_t)bad, 1, now);
                    if (bad) {
                        rec_trace(r, &sp->trace_id);
                    }
                }
            }
        }
    }
}

/* ---- observer: logs --------------------------------------------------------------------- */

static void note_change(slo_engine_t *e, const char *svc, const char *name, const char *detail,
                        int64_t t_ms)
{
    changes_t *c = NULL;
    for (size_t i = 0; i < e->nchanges; i++) {
        if (!strcmp(e->changes[i].service, svc)) {
            c = &e->changes[i];
            break;
        }
    }
    if (!c) {
        if (e->nchanges >= ENG_MAX_CHANGE_SERVICES) {
            return;
        }
        c = &e->changes[e->nchanges++];
        memset(c, 0, sizeof(*c));
        snprintf(c->service, sizeof(c->service), "%s", svc);
    }
    snprintf(c->ev[c->pos].name, sizeof(c->ev[c->pos].name), "%s", name);
    snprintf(c->ev[c->pos].detail, sizeof(c->ev[c->pos].detail), "%s", detail ? detail : "");
    c->ev[c->pos].t_ms = t_ms;
    c->pos = (c->pos + 1) % SLO_MSG_MAX_CHANGES;
    if (c->n < SLO_MSG_MAX_CHANGES) {
        c->n++;
    }
}

static void observe_logs(slo_engine_t *e, const logs_req_t *req, int64_t now)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[i];
        char b[64];
        const char *svc = res_get(rl->resource, "service.name", b, sizeof(b));
        if (!svc) {
            continue;
        }
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            for (size_t m = 0; m < sl->n_log_records; m++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[m];
                uint64_t tns =
                    lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
                int64_t t = tns ? ns_to_ms(tns) : now;
                lookup_t l = {lr->attributes, lr->n_attributes, rl->resource, NULL, "", "", NULL};
                const char *ev = lr->event_name && *lr->event_name ? lr->event_name : NULL;
                char evb[64];
                if (!ev) {
                    ev = kv_get(lr->attributes, lr->n_attributes, "event.name", evb, sizeof(evb));
                }
                if (ev && e->notifiers) {
                    char db[64], vb[64];
                    const char *detail = lookup_get(&l, "service.version");
                    if (detail) {
                        snprintf(vb, sizeof(vb), "%s", detail);
                        detail = vb;
                    } else if (
                        lr->body &&
                        lr->body->value_case ==
                            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
                        detail = lr->body->string_value;
                    }
                    (void)db;
                    note_change(e, svc, ev, detail, t);
                }
                for (size_t k = 0; k < e->ndefs; k++) {
                    def_t *d = &e->defs[k];
                    const slo_sli_t *sli = &d->spec->sli;
                    if (sli->kind != SLO_SLI_LOGS || !sli->service ||
                        strcmp(sli->service, svc) != 0) {
                        continue;
                    }
                    inst_rec_t *r = rec_for(e, d, &l);
                    if (r) {
                        int bad = (int)lr->severity_number >= sli->min_severity &&
                                  lr->severity_number != 0;
                        rec_add(e, d, r, t, (uint64_t)bad, 1, now);
                        if (bad) {
                            rec_trace(r, &lr->trace_id);
                        }
                    }
                }
            }
        }
    }
}

/* ---- observer: metrics ------------------------------------------------------------------ */

static uint64_t series_key(size_t def_idx, int role, const metric_t *m, const resource_t *res,
                           kv_t **kvs, size_t n)
{
    uint64_t h = slo_hash(SLO_HASH_INIT, &def_idx, sizeof(def_idx));
    h = slo_hash(h, &role, sizeof(role));
    h = slo_hash(h, m->name, strlen(m->name) + 1);
    for (int pass = 0; pass < 2; pass++) {
        kv_t **v = pass ? kvs : (res ? res->attributes : NULL);
        size_t nv = pass ? n : (res ? res->n_attributes : 0);
        for (size_t i = 0; i < nv; i++) {
            char b[64];
            const char *s = kv_get(v, nv, v[i]->key, b, sizeof(b));
            h = slo_hash(h, v[i]->key, strlen(v[i]->key) + 1);
            h = slo_hash(h, s ? s : "", s ? strlen(s) + 1 : 1);
        }
        h = slo_hash(h, "|", 1);
    }
    return h;
}

static uint64_t to_count(double v)
{
    return v > 0 && isfinite(v) ? (uint64_t)llround(v) : 0;
}

/* Deltas of up to two cumulative values (or the values themselves for delta temporality). */
static int deltas(slo_engine_t *e, inst_rec_t *r, uint64_t key, int cumulative, uint64_t start_ns,
                  const double *v, int nv, double *d, int64_t now, int64_t t)
{
    if (!cumulative) {
        for (int i = 0; i < nv; i++) {
            d[i] = v[i];
        }
        return 1;
    }
    int rc = slo_ctr_update(&e->ctr, key, start_ns, v, nv, d, e->counted_from_ns, now);
    if (rc == SLO_CTR_FULL) {
        tm_add(e->c_series, 1);
        return 0;
    }
    if (rc == SLO_CTR_RESET) {
        slo_inst_note_reset(&r->in, t); /* at the sample's time, like its counts */
    }
    return 1;
}

/* The value a ratio selector reads from point i of m (a sum, or a classic histogram's _count,
 * _sum or _bucket series), or 0 when the point's series does not match the selector. */
static int ratio_point(const metric_t *m, size_t i, slo_pn_part_t part, const slo_selector_t *sel,
                       lookup_t *l, double *v, uint64_t *start, uint64_t *tns)
{
    if (part == SLO_PN_SERIES) {
        const ndp_t *p = m->sum->data_points[i];
        *l = (lookup_t){p->attributes, p->n_attributes, l->res, l->name, "", "", NULL};
        *start = p->start_time_unix_nano;
        *tns = p->time_unix_nano;
        *v = p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
                 ? (double)p->as_int
                 : p->as_double;
        return slo_selector_match(sel, lookup_get, l);
    }
    const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = m->histogram->data_points[i];
    *l = (lookup_t){p->attributes, p->n_attributes, l->res, l->name, "", "", NULL};
    *start = p->start_time_unix_nano;
    *tns = p->time_unix_nano;
    *v = part == SLO_PN_COUNT ? (double)p->count : p->sum;
    return part == SLO_PN_BUCKET ? slo_pn_buckets(p, sel, lookup_get, l, &l->le, v)
                                 : slo_selector_match(sel, lookup_get, l);
}

static void observe_ratio(slo_engine_t *e, size_t di, const metric_t *m, const slo_pn_t *pn,
                          const resource_t *res, int64_t now)
{
    def_t *d = &e->defs[di];
    const slo_sli_t *sli = &d->spec->sli;
    int hist =
        m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM && m->histogram;
    if (!hist && (m->data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM || !m->sum)) {
        return;
    }
    const slo_selector_t *sel[3] = {sli->has_good ? &sli->good : NULL,
                                    sli->has_bad ? &sli->bad : NULL,
                                    sli->has_total ? &sli->total : NULL};
    int cumulative =
        (hist ? m->histogram->aggregation_temporality : m->sum->aggregation_temporality) !=
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    size_t np = hist ? m->histogram->n_data_points : m->sum->n_data_points;
    for (int role = 0; role < 3; role++) {
        slo_pn_part_t part = sel[role] ? slo_pn_match(pn, sel[role]->metric) : SLO_PN_NONE;
        if (part == SLO_PN_NONE || (hist != (part != SLO_PN_SERIES))) {
            continue;
        }
        for (size_t i = 0; i < np; i++) {
            /* the name already matched (raw, Prometheus or _total spelling): the selector sees
             * the spelling it asks for, or slo_selector_match's exact compare undoes it */
            lookup_t l = {NULL, 0, res, sel[role]->metric, "", "", NULL};
            double v, dv;
            uint64_t start, tns;
            if (!ratio_point(m, i, part, sel[role], &l, &v, &start, &tns)) {
                continue;
            }
            inst_rec_t *r = rec_for(e, d, &l);
            if (!r) {
                continue;
            }
            uint64_t key = series_key(di, role, m, res, l.kvs, l.n);
            int64_t t = point_ms(tns, now);
            if (!deltas(e, r, key, cumulative, start, &v, 1, &dv, now, t)) {
                continue;
            }
            uint64_t c = to_count(dv);
            if (!c) {
                continue;
            }
            /* a = bad when a bad counter is given, else good; total from the total counter,
             * or good + bad when there is none */
            if (role == 2) {
                rec_add(e, d, r, t, 0, c, now);
            } else if (role == 1) {
                rec_add(e, d, r, t, c, sli->has_total ? 0 : c, now);
            } else {
                rec_add(e, d, r, t, d->counts_bad ? 0 : c, sli->has_total ? 0 : c, now);
            }
        }
    }
}

/* Observations <= threshold in an exponential histogram: buckets whose upper bound is at or
 * below the threshold (the bucket holding the threshold counts as above it: conservative,
 * error bounded by one bucket of relative width 2^(2^-scale)). */
static double exp_good(const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p,
                       double thr)
{
    double good = 0;
    if (thr >= 0) {
        good += (double)p->zero_count;
        if (p->negative) {
            for (size_t i = 0; i < p->negative->n_bucket_counts; i++) {
                good += (double)p->negative->bucket_counts[i];
            }
        }
    }
    if (p->positive && thr > 0) {
        double inv = ldexp(1.0, -p->scale);
        for (size_t i = 0; i < p->positive->n_bucket_counts; i++) {
            double upper = exp2(((double)p->positive->offset + (double)i + 1) * inv);
            if (upper <= thr * (1 + 1e-12)) {
                good += (double)p->positive->bucket_counts[i];
            }
        }
    }
    return good;
}

static void observe_latency(slo_engine_t *e, size_t di, const metric_t *m, const slo_pn_t *pn,
                            const resource_t *res, int64_t now)
{
    def_t *d = &e->defs[di];
    const slo_sli_t *sli = &d->spec->sli;
    const char *base = sli->histogram.metric;
    int hist =
        m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM && m->histogram;
    int expo =
        m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM &&
        m->exponential_histogram;
    if ((!hist && !expo) || slo_pn_match(pn, base) != SLO_PN_SERIES) {
        return;
    }
    int temporality = hist ? (int)m->histogram->aggregation_temporality
                           : (int)m->exponential_histogram->aggregation_temporality;
    int cumulative =
        temporality !=
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    size_t np = hist ? m->histogram->n_data_points : m->exponential_histogram->n_data_points;
    for (size_t i = 0; i < np; i++) {
        kv_t **kvs;
        size_t nkv;
        uint64_t start, tns;
        double v[2];
        if (hist) {
            const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p =
                m->histogram->data_points[i];
            kvs = p->attributes;
            nkv = p->n_attributes;
            start = p->start_time_unix_nano;
            tns = p->time_unix_nano;
            double good = 0;
            for (size_t b = 0; b < p->n_bucket_counts && b < p->n_explicit_bounds; b++) {
                if (p->explicit_bounds[b] <= sli->threshold) {
                    good += (double)p->bucket_counts[b];
                }
            }
            v[0] = good;
            v[1] = (double)p->count;
        } else {
            const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p =
                m->exponential_histogram->data_points[i];
            kvs = p->attributes;
            nkv = p->n_attributes;
            start = p->start_time_unix_nano;
            tns = p->time_unix_nano;
            v[0] = exp_good(p, sli->threshold);
            v[1] = (double)p->count;
        }
        lookup_t l = {kvs, nkv, res, base, "", "", NULL};
        if (!slo_selector_match(&sli->histogram, lookup_get, &l)) {
            continue;
        }
        inst_rec_t *r = rec_for(e, d, &l);
        if (!r) {
            continue;
        }
        double dv[2];
        uint64_t key = series_key(di, 3, m, res, kvs, nkv);
        if (!deltas(e, r, key, cumulative, start, v, 2, dv, now, point_ms(tns, now))) {
            continue;
        }
        uint64_t total = to_count(dv[1]), good = to_count(dv[0]);
        if (total || good) {
            rec_add(e, d, r, point_ms(tns, now), good, total, now);
        }
    }
}

void eng_observe_metrics(slo_engine_t *e, const metrics_req_t *req, int64_t now)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t m = 0; m < sm->n_metrics; m++) {
                /* the Prometheus names, once per metric for all its points and every SLO */
                slo_pn_t pn;
                slo_pn_init(&pn, sm->metrics[m]);
                for (size_t k = 0; k < e->ndefs; k++) {
                    slo_sli_kind_t kind = e->defs[k].spec->sli.kind;
                    if (kind == SLO_SLI_RATIO) {
                        observe_ratio(e, k, sm->metrics[m], &pn, rm->resource, now);
                    } else if (kind == SLO_SLI_LATENCY) {
                        observe_latency(e, k, sm->metrics[m], &pn, rm->resource, now);
                    }
                }
            }
        }
    }
}

void eng_observer(void *arg, mt_signal_t s, const uint8_t *pb, size_t len, uint64_t items,
                  const char *tenant)
{
    (void)items;
    (void)tenant;
    slo_engine_t *e = arg;
    if (!(e->signals & SIG_BIT(s))) {
        return;
    }
    arena_t *a = arena_create(len * 4 + 4096, 0);
    if (!a) {
        return;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, pb);
    if (m) {
        int64_t now = eng_wall_ms();
        pthread_mutex_lock(&e->mu);
        if (s == MT_SIG_TRACES) {
            observe_traces(e, (const trace_req_t *)m, now);
        } else if (s == MT_SIG_LOGS) {
            observe_logs(e, (const logs_req_t *)m, now);
        } else if (s == MT_SIG_METRICS) {
            eng_observe_metrics(e, (const metrics_req_t *)m, now);
        }
        pthread_mutex_unlock(&e->mu);
    }
    arena_destroy(a);
}
