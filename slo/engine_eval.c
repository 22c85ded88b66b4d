/*
 * engine_eval.c - the SLO engine's evaluation: every evaluation_interval the thread evaluates
 * each instance (eval.h), drives alert notifications (group_wait, repeat_interval, resolve
 * notices, no-data alerts) and builds the Sloth-named SLO series pushed into the metrics
 * exporter queues. Part of the slo/engine module.
 */
#include "engine_int.h"
#include "promnames.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- evaluation: SLO series ------------------------------------------------------------- */

typedef struct {
    arena_t *a;
    Opentelemetry__Proto__Metrics__V1__Metric **metrics;
    size_t n, cap;
    uint64_t points;
    uint64_t now_ns, start_ns;
} series_t;

static metric_t *series_metric(series_t *s, const char *name, int sum)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->metrics[i]->name, name)) {
            return s->metrics[i];
        }
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 32;
        metric_t **v = arena_alloc(s->a, nc * sizeof(*v));
        if (!v) {
            return NULL;
        }
        if (s->n) {
            memcpy(v, s->metrics, s->n * sizeof(*v));
        }
        s->metrics = v;
        s->cap = nc;
    }
    metric_t *m = arena_calloc(s->a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = arena_strndup(s->a, name, strlen(name));
    if (sum) {
        Opentelemetry__Proto__Metrics__V1__Sum *g = arena_calloc(s->a, sizeof(*g));
        if (!g) {
            return NULL;
        }
        opentelemetry__proto__metrics__v1__sum__init(g);
        g->is_monotonic = 1;
        g->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        m->sum = g;
    } else {
        Opentelemetry__Proto__Metrics__V1__Gauge *g = arena_calloc(s->a, sizeof(*g));
        if (!g) {
            return NULL;
        }
        opentelemetry__proto__metrics__v1__gauge__init(g);
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        m->gauge = g;
    }
    s->metrics[s->n++] = m;
    return m;
}

static kv_t *mk_kv(arena_t *a, const char *k, const char *v)
{
    kv_t *kv = arena_calloc(a, sizeof(*kv));
    anyv_t *av = arena_calloc(a, sizeof(*av));
    if (!kv || !av) {
        return NULL;
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    kv->key = arena_strndup(a, k, strlen(k));
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = arena_strndup(a, v, strlen(v));
    kv->value = av;
    return kv->key && av->string_value ? kv : NULL;
}

/* Adds one point to metric `name` with the instance's labels (+ extra k=v when given). */
static void series_point(series_t *s, const def_t *d, const inst_rec_t *r, const char *name,
                         double v, const char *xk, const char *xv, int sum)
{
    metric_t *m = series_metric(s, name, sum);
    if (!m || !isfinite(v)) {
        return;
    }
    const slo_spec_t *sp = d->spec;
    size_t cap = 4 + sp->labels.n + sp->ngroup_by;
    ndp_t *p = arena_calloc(s->a, sizeof(*p));
    kv_t **kvs = arena_calloc(s->a, cap * sizeof(*kvs));
    if (!p || !kvs) {
        return;
    }
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    size_t n = 0;
    kvs[n++] = mk_kv(s->a, "sloth_id", r->id);
    kvs[n++] = mk_kv(s->a, "sloth_service", sp->service ? sp->service : "");
    kvs[n++] = mk_kv(s->a, "sloth_slo", sp->name ? sp->name : "");
    if (xk) {
        kvs[n++] = mk_kv(s->a, xk, xv);
    }
    for (size_t i = 0; i < sp->labels.n; i++) {
        kvs[n++] = mk_kv(s->a, sp->labels.keys[i], sp->labels.vals[i]);
    }
    for (size_t i = 0; r->gvals && i < sp->ngroup_by; i++) {
        kvs[n++] = mk_kv(s->a, sp->group_by[i], r->gvals[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (!kvs[i]) {
            return;
        }
    }
    p->attributes = kvs;
    p->n_attributes = n;
    p->time_unix_nano = s->now_ns;
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    size_t *np;
    ndp_t ***pts;
    if (sum) {
        p->start_time_unix_nano = s->start_ns;
        np = &m->sum->n_data_points;
        pts = &m->sum->data_points;
    } else {
        np = &m->gauge->n_data_points;
        pts = &m->gauge->data_points;
    }
    /* grow by doubling inside the arena (old arrays are left behind until the arena goes) */
    if ((*np & (*np - 1)) == 0) {
        size_t nc = *np ? *np * 2 : 1;
        ndp_t **v = arena_alloc(s->a, nc * sizeof(*v));
        if (!v) {
            return;
        }
        if (*np) {
            memcpy(v, *pts, *np * sizeof(*v));
        }
        *pts = v;
    }
    (*pts)[(*np)++] = p;
    s->points++;
}

static void series_inst(series_t *s, const def_t *d, const inst_rec_t *r, const slo_result_t *res)
{
    char name[96], pw[16];
    slo_fmt_duration(d->p.period_ms, pw, sizeof(pw));
    for (int w = 0; w < SLO_NWIN; w++) {
        const char *wn = w == SLO_W_PERIOD ? pw : slo_win_name[w];
        snprintf(name, sizeof(name), "slo:sli_error:ratio_rate%s", wn);
        series_point(s, d, r, name, res->w[w].error_ratio, "sloth_window", wn, 0);
    }
    double b = 1.0 - d->p.objective;
    series_point(s, d, r, "slo:objective:ratio", d->p.objective, NULL, NULL, 0);
    series_point(s, d, r, "slo:error_budget:ratio", b, NULL, NULL, 0);
    series_point(s, d, r, "slo:time_period:days", (double)d->p.period_ms / 86400000.0, NULL, NULL,
                 0);
    series_point(s, d, r, "slo:current_burn_rate:ratio", res->w[SLO_W_5M].burn_rate, NULL, NULL, 0);
    series_point(s, d, r, "slo:period_burn_rate:ratio", res->w[SLO_W_PERIOD].burn_rate, NULL, NULL,
                 0);
    series_point(s, d, r, "slo:period_error_budget_remaining:ratio", res->budget_remaining, NULL,
                 NULL, 0);
    if (d->spec->sli.kind == SLO_SLI_SPANS || d->spec->sli.kind == SLO_SLI_LOGS) {
        static const char *const ev[3] = {"good", "bad", "total"};
        for (int i = 0; i < 3; i++) {
            series_point(s, d, r, SLO_EVENTS_METRIC, (double)r->cum[i], "event", ev[i], 1);
        }
    }
}

static mt_batch_t *series_pack(series_t *s)
{
    if (!s->n) {
        return NULL;
    }
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
    scope.name = "meltp/slo";
    scope.version = MELTP_VERSION;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm;
    opentelemetry__proto__metrics__v1__scope_metrics__init(&sm);
    sm.scope = &scope;
    sm.metrics = s->metrics;
    sm.n_metrics = s->n;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp = &sm;
    resource_t res;
    opentelemetry__proto__resource__v1__resource__init(&res);
    kv_t *rkv = mk_kv(s->a, "service.name", "meltp");
    res.attributes = &rkv;
    res.n_attributes = rkv ? 1 : 0;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm;
    opentelemetry__proto__metrics__v1__resource_metrics__init(&rm);
    rm.resource = &res;
    rm.scope_metrics = &smp;
    rm.n_scope_metrics = 1;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp = &rm;
    metrics_req_t req;
    opentelemetry__proto__collector__v1__export_metrics_service_request__init(&req);
    req.resource_metrics = &rmp;
    req.n_resource_metrics = 1;
    size_t len =
        opentelemetry__proto__collector__v1__export_metrics_service_request__get_packed_size(&req);
    mt_batch_t *b = batch_alloc(MT_SIG_METRICS, (uint32_t)s->points, len);
    if (b) {
        opentelemetry__proto__collector__v1__export_metrics_service_request__pack(&req, b->data);
    }
    return b;
}

/* ---- evaluation loop -------------------------------------------------------------------- */

void eng_tick(slo_engine_t *e, int64_t now)
{
    eng_msgs_t ms = {0};
    series_t s = {0};
    if (e->nqueues) {
        s.a = arena_create(1 << 16, 0);
        s.now_ns = (uint64_t)now * 1000000ull;
        s.start_ns = e->counted_from_ns;
    }
    int events[SLO_EV_MAX_TIERS];
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        for (size_t k = 0; k < d->n; k++) {
            inst_rec_t *r = d->insts[k];
            r->best = slo_eval_run(&r->in, &d->p, now, &r->last, events);
            if (s.a) {
                series_inst(&s, d, r, &r->last);
            }
        }
    }
    /* after every instance is evaluated: inhibition reads the other instances' alerts */
    if (e->routes && slo_notifiers_count(e->notifiers)) {
        eng_notify_collect(e, now, &ms);
    }
    size_t ninst = 0;
    for (size_t i = 0; i < e->ndefs; i++) {
        ninst += e->defs[i].n;
    }
    pthread_mutex_unlock(&e->mu);
    /* large SLO sets save less often: the image is ~27 KB per instance */
    uint64_t every = ENG_STATE_EVERY * (1 + ninst / ENG_STATE_PER_EVERY);
    if (++e->ticks % every == 0 && e->state_path[0]) {
        eng_save_state(e, 0);
    }
    eng_notify_send(e, &ms);
    if (s.a) {
        mt_batch_t *b = series_pack(&s);
        for (size_t q = 0; b && q < e->nqueues; q++) {
            if (exq_reserve(e->queues[q], b->len, b->items) != MT_OK ||
                exq_push_reserved(e->queues[q], b) != MT_OK) {
                tm_add(e->c_series_dropped, b->items);
            }
        }
        batch_unref(b);
        arena_destroy(s.a);
    }
}

void *eng_eval_main(void *arg)
{
    slo_engine_t *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (e->cfg.interval_ms % 1000) * 1000000LL;
        ts.tv_sec += e->cfg.interval_ms / 1000 + ns / 1000000000LL;
        ts.tv_nsec = ns % 1000000000LL;
        while (!e->stopping && pthread_cond_timedwait(&e->cv, &e->mu, &ts) == 0) {
        }
        if (e->stopping) {
            break;
        }
        pthread_mutex_unlock(&e->mu);
        eng_tick(e, eng_wall_ms());
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}
