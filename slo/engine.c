/*
 * engine.c - the in-stream SLO engine: reads the `slo:` section, loads the specs (model.h),
 * counts good/bad/total events from every accepted request through the pipeline observer
 * (spans, log records, cumulative or delta sums, explicit and exponential histograms) into
 * per-instance bucket stores (eval.h), evaluates every SLO on its own thread each
 * evaluation_interval, drives alert notifications (group_wait, repeat_interval, resolve
 * notices; only the most severe firing tier of an SLO notifies), pushes Sloth-named SLO
 * series into metrics exporter queues, serves GET /api/v1/slos and saves its state.
 * slo_simulate() runs the same observer and evaluator without threads on a simulated clock
 * (`meltp slo simulate`, used by the Prometheus parity test).
 *
 * Locking: one engine mutex guards instances, the counter table and change events. The
 * observer holds it while it adds one request's counts (no I/O under it); the evaluator holds
 * it while computing and building messages and series, then sends outside it. A state save
 * holds it only to copy the instances into a reusable buffer (and only when an instance's gen
 * moved since the last save); checksum, write, fsync and rename happen outside it, under
 * save_mu, which is never taken while mu is held.
 */
#include "slo.h"
#include "model.h"
#include "eval.h"
#include "notify.h"
#include "promnames.h"
#include "component.h"
#include "otlp.h"
#include "telemetry.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest trace_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest logs_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest metrics_req_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyv_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint ndp_t;

#define ENG_MAX_CHANGE_SERVICES 256   /* services whose change events we remember */
#define ENG_STATE_EVERY 6             /* save state every N evaluations (and at stop) ... */
#define ENG_STATE_PER_EVERY 1000      /* ... times one per started thousand instances */
#define ENG_MAX_ZONES 64              /* distinct calendar time zones */
#define ENG_STATE_FILE "slo-state.bin"

/* ---- configuration ---------------------------------------------------------------------- */

typedef struct {
    cfg_strlist_t specs;
    int64_t interval_ms;
    char *state_dir;
    cfg_strlist_t exporters;
    const cfg_node_t *notifiers;
    int64_t group_wait_ms;
    int64_t group_interval_ms;
    int64_t repeat_interval_ms;
    char *external_url;
    int64_t max_series;
} eng_cfg_t;

static const cfg_field_t eng_fields[] = {
    {"specs", CFG_T_STRLIST, NULL, CFG_REQUIRED, offsetof(eng_cfg_t, specs), NULL,
     "spec files or globs (relative to the config file)"},
    {"evaluation_interval", CFG_T_DURATION, "10s", 0, offsetof(eng_cfg_t, interval_ms), NULL,
     "how often every SLO is evaluated"},
    {"state_dir", CFG_T_STRING, "./data/slo", 0, offsetof(eng_cfg_t, state_dir), NULL,
     "buckets and alert states are saved here (atomic rename) and restored at start"},
    {"exporters", CFG_T_STRLIST, NULL, 0, offsetof(eng_cfg_t, exporters), NULL,
     "metrics exporter ids that receive the SLO series"},
    {"notifiers", CFG_T_NODE, NULL, 0, offsetof(eng_cfg_t, notifiers), NULL,
     "list of {type: slack|teams|webhook, webhook_url|url, ...}"},
    {"group_wait", CFG_T_DURATION, "30s", 0, offsetof(eng_cfg_t, group_wait_ms), NULL,
     "delay before the first notice of a new alert (Alertmanager group_wait)"},
    {"group_interval", CFG_T_DURATION, "5m", 0, offsetof(eng_cfg_t, group_interval_ms), NULL,
     "minimum delay between notices of one SLO when it escalates"},
    {"repeat_interval", CFG_T_DURATION, "4h", 0, offsetof(eng_cfg_t, repeat_interval_ms), NULL,
     "re-send a still-firing alert this often"},
    {"external_url", CFG_T_STRING, NULL, 0, offsetof(eng_cfg_t, external_url), NULL,
     "base URL for generatorURL in webhook payloads"},
    {"max_series", CFG_T_INT, "65536", 0, offsetof(eng_cfg_t, max_series), NULL,
     "cumulative metric series tracked for counter deltas"},
};

/* ---- engine state ----------------------------------------------------------------------- */

typedef struct inst_rec {
    char *id;                 /* spec id, or id{k="v",...} for a group */
    char **gvals;             /* spec->ngroup_by values (grouped SLOs) */
    int notified_tier;        /* tier last notified, -1 = none */
    int64_t first_fire_ms;
    int64_t last_sent_ms;
    int64_t nodata_sent_ms;   /* last no-data alert notice, 0 = none outstanding */
    uint64_t saved_gen;       /* in.gen at the last state save */
    double budget_at_fire;
    uint64_t cum[3];          /* good, bad, total since start (meltp_slo_events_total) */
    char traces[SLO_MSG_MAX_TRACES][33];
    int ntraces, tpos;
    slo_inst_t in;            /* large: last */
} inst_rec_t;

typedef struct {
    const slo_spec_t *spec;
    slo_ev_params_t p;
    int counts_bad;
    inst_rec_t **insts;
    size_t n, cap;
    uint64_t groups_dropped;
} def_t;

typedef struct {
    char service[128];
    int n, pos;
    struct {
        char name[64];
        char detail[192];
        int64_t t_ms;
    } ev[SLO_MSG_MAX_CHANGES];
} changes_t;

typedef struct pending {
    char *id;
    slo_inst_t *in;
    struct pending *next;
} pending_t;

struct slo_engine {
    eng_cfg_t cfg;
    slo_set_t *set;
    def_t *defs;
    size_t ndefs;
    unsigned signals;
    slo_notifiers_t *notifiers;
    struct exq **queues;
    size_t nqueues;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    int thread_on, stopping, observing;
    slo_ctr_t ctr;
    uint64_t counted_from_ns;
    changes_t *changes;
    size_t nchanges;
    pending_t *pending;
    char state_path[4096];
    uint64_t ticks;
    unsigned char *state_buf; /* reusable state image (slo_state_image) */
    size_t state_cap;
    pthread_mutex_t save_mu;  /* one writer of the state file at a time */
    struct {
        char *name;
        slo_tz_t *tz;
    } zones[ENG_MAX_ZONES];
    size_t nzones;
    tm_counter_t *c_old, *c_future, *c_groups, *c_series, *c_series_dropped;
};

static int64_t wall_ms(void)
{
    return (int64_t)(mt_wall_ns() / 1000000ull);
}

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
    const char *le;           /* a histogram bucket's `le` (selectors on _bucket series) */
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

static inst_rec_t *rec_new(slo_engine_t *e, def_t *d, const char *id, char **gvals)
{
    inst_rec_t *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->id = strdup(id);
    r->notified_tier = -1;
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

static void rec_free(inst_rec_t *r, size_t ng)
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
    return rec_new(e, d, id, (char **)vals);
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
                    lookup_t l = {sp->attributes, sp->n_attributes, rs->resource, sp->name,
                                  "", "", NULL};
                    if (sli->route) {
                        const char *rt = lookup_get(&l, "http.route");
                        if (!rt || strcmp(rt, sli->route) != 0) {
                            continue;
                        }
                    }
                    int bad;
                    if (sli->spans_mode == SLO_SPANS_LATENCY) {
                        double dur = sp->end_time_unix_nano > sp->start_time_unix_nano
                                         ? (double)(sp->end_time_unix_nano -
                                                    sp->start_time_unix_nano) / 1e6
                                         : 0;
                        bad = dur > sli->threshold_ms;
                    } else {
                        bad = sp->status && sp->status->code ==
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
                    uint64_t t = sp->end_time_unix_nano ? sp->end_time_unix_nano
                                                        : sp->start_time_unix_nano;
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
                uint64_t tns = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
                int64_t t = tns ? ns_to_ms(tns) : now;
                lookup_t l = {lr->attributes, lr->n_attributes, rl->resource, NULL, "", "",
                              NULL};
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
                    } else if (lr->body && lr->body->value_case ==
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
                 ? (double)p->as_int : p->as_double;
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
    int hist = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM &&
               m->histogram;
    if (!hist && (m->data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM || !m->sum)) {
        return;
    }
    const slo_selector_t *sel[3] = {sli->has_good ? &sli->good : NULL,
                                    sli->has_bad ? &sli->bad : NULL,
                                    sli->has_total ? &sli->total : NULL};
    int cumulative = (hist ? m->histogram->aggregation_temporality
                           : m->sum->aggregation_temporality) !=
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
    int hist = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM && m->histogram;
    int expo = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM &&
               m->exponential_histogram;
    if ((!hist && !expo) || slo_pn_match(pn, base) != SLO_PN_SERIES) {
        return;
    }
    int temporality = hist ? (int)m->histogram->aggregation_temporality
                           : (int)m->exponential_histogram->aggregation_temporality;
    int cumulative = temporality !=
                     OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    size_t np = hist ? m->histogram->n_data_points : m->exponential_histogram->n_data_points;
    for (size_t i = 0; i < np; i++) {
        kv_t **kvs;
        size_t nkv;
        uint64_t start, tns;
        double v[2];
        if (hist) {
            const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = m->histogram->data_points[i];
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

static void observe_metrics(slo_engine_t *e, const metrics_req_t *req, int64_t now)
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

static void observer(void *arg, mt_signal_t s, const uint8_t *pb, size_t len, uint64_t items,
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
    ProtobufCMessage *m = protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a),
                                                    len, pb);
    if (m) {
        int64_t now = wall_ms();
        pthread_mutex_lock(&e->mu);
        if (s == MT_SIG_TRACES) {
            observe_traces(e, (const trace_req_t *)m, now);
        } else if (s == MT_SIG_LOGS) {
            observe_logs(e, (const logs_req_t *)m, now);
        } else if (s == MT_SIG_METRICS) {
            observe_metrics(e, (const metrics_req_t *)m, now);
        }
        pthread_mutex_unlock(&e->mu);
    }
    arena_destroy(a);
}

/* ---- load ------------------------------------------------------------------------------- */

static int severity_rank(const char *s)
{
    if (!s) {
        return 2;
    }
    if (!strcmp(s, "page") || !strcmp(s, "critical")) {
        return 0;
    }
    if (!strcmp(s, "ticket") || !strcmp(s, "warning")) {
        return 1;
    }
    return 2;
}

/* The parsed zone of a calendar SLO, shared by every SLO naming it (NULL = UTC; an unknown
 * zone is a spec lint error, so failing here only means the file went away: UTC, warned). */
static const slo_tz_t *eng_zone(slo_engine_t *e, const char *name)
{
    if (!name || !strcmp(name, "UTC")) {
        return NULL;
    }
    for (size_t i = 0; i < e->nzones; i++) {
        if (!strcmp(e->zones[i].name, name)) {
            return e->zones[i].tz;
        }
    }
    slo_tz_t *tz = NULL;
    if (slo_tz_load(name, &tz) != MT_OK) {
        mt_log(MT_LOG_WARN, "slo: cannot read time zone %s; calendar periods use UTC", name);
    }
    if (e->nzones < ENG_MAX_ZONES && (e->zones[e->nzones].name = strdup(name))) {
        e->zones[e->nzones++].tz = tz;
    } else {
        slo_tz_free(tz);
        tz = NULL;
    }
    return tz;
}

static void params_from_spec(slo_engine_t *e, const slo_spec_t *s, slo_ev_params_t *p)
{
    memset(p, 0, sizeof(*p));
    if (s->period_kind != SLO_PERIOD_ROLLING) {
        p->tz = eng_zone(e, s->time_zone);
    }
    p->budgeting = s->budgeting == SLO_BUDGET_TIMESLICES         ? SLO_BG_TIMESLICES
                   : s->budgeting == SLO_BUDGET_RATIO_TIMESLICES ? SLO_BG_RATIO_TIMESLICES
                                                                 : SLO_BG_OCCURRENCES;
    p->slice_ms = s->timeslice_ms;
    p->slice_target = s->timeslice_target;
    /* late events (batching, export intervals): a slice closes one evaluation (at least 10 s)
     * after its end; the simulation (no interval) closes it at once */
    int64_t iv = e->cfg.interval_ms;
    p->slice_grace_ms = iv > 0 ? (iv > 10000 ? iv : 10000) : 0;
    p->objective = s->objective;
    p->period_kind = s->period_kind == SLO_PERIOD_CALENDAR_MONTH  ? SLO_PK_MONTH
                     : s->period_kind == SLO_PERIOD_CALENDAR_WEEK ? SLO_PK_WEEK
                                                                  : SLO_PK_ROLLING;
    p->period_ms = s->period_ms > 0 ? s->period_ms : 30 * 86400000LL;
    p->min_events = s->min_events;
    p->nodata = s->nodata == SLO_NODATA_BAD      ? SLO_ND_BAD
                : s->nodata == SLO_NODATA_FREEZE ? SLO_ND_FREEZE
                : s->nodata == SLO_NODATA_ALERT  ? SLO_ND_ALERT
                                                 : SLO_ND_GOOD;
    p->ntiers = s->ntiers < SLO_EV_MAX_TIERS ? s->ntiers : SLO_EV_MAX_TIERS;
    for (size_t i = 0; i < p->ntiers; i++) {
        const slo_tier_t *t = &s->tiers[i];
        p->tiers[i] = (slo_ev_tier_t){t->long_ms, t->short_ms, t->factor, t->for_ms,
                                      t->keep_firing_for_ms, severity_rank(t->severity),
                                      t->enabled};
    }
}

static void eng_free(slo_engine_t *e)
{
    for (size_t i = 0; i < e->ndefs; i++) {
        for (size_t k = 0; k < e->defs[i].n; k++) {
            rec_free(e->defs[i].insts[k], e->defs[i].spec->ngroup_by);
        }
        free(e->defs[i].insts);
    }
    while (e->pending) {
        pending_t *p = e->pending;
        e->pending = p->next;
        free(p->id);
        free(p->in);
        free(p);
    }
    free(e->defs);
    free(e->changes);
    free(e->state_buf);
    for (size_t i = 0; i < e->nzones; i++) {
        free(e->zones[i].name);
        slo_tz_free(e->zones[i].tz);
    }
    free(e->queues);
    slo_notifiers_destroy(e->notifiers);
    slo_set_destroy(e->set);
    slo_ctr_fini(&e->ctr);
    cfg_free_fields(eng_fields, MT_ARRAY_LEN(eng_fields), &e->cfg);
    free(e);
}

/* Builds one def per SLO of e->set (and the instance of every ungrouped SLO) and the counter
 * table. Returns MT_OK or MT_ENOMEM (the caller frees with eng_free). */
static int eng_defs_init(slo_engine_t *e)
{
    e->defs = calloc(e->set->n ? e->set->n : 1, sizeof(*e->defs));
    e->changes = calloc(ENG_MAX_CHANGE_SERVICES, sizeof(*e->changes));
    if (!e->defs || !e->changes ||
        slo_ctr_init(&e->ctr, (size_t)(e->cfg.max_series > 0 ? e->cfg.max_series : 65536) * 4 / 3) !=
            MT_OK) {
        return MT_ENOMEM;
    }
    e->ndefs = e->set->n;
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        d->spec = &e->set->slos[i];
        params_from_spec(e, d->spec, &d->p);
        const slo_sli_t *sli = &d->spec->sli;
        d->counts_bad = sli->kind == SLO_SLI_SPANS || sli->kind == SLO_SLI_LOGS ||
                        (sli->kind == SLO_SLI_RATIO && sli->has_bad);
        e->signals |= sli->kind == SLO_SLI_SPANS  ? SIG_BIT(MT_SIG_TRACES)
                      : sli->kind == SLO_SLI_LOGS ? SIG_BIT(MT_SIG_LOGS)
                                                  : SIG_BIT(MT_SIG_METRICS);
        if (!d->spec->ngroup_by && !rec_new(e, d, d->spec->id, NULL)) {
            return MT_ENOMEM;
        }
    }
    return MT_OK;
}

slo_engine_t *slo_engine_load(const cfg_node_t *node, const char *config_path, cfg_ctx_t *c)
{
    slo_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        cfg_error(c, node->line, "slo", "out of memory");
        return NULL;
    }
    size_t nerr0 = c->nerr;
    if (node->kind != CFG_NODE_MAP) {
        cfg_error(c, node->line, "slo", "must be a map");
        free(e);
        return NULL;
    }
    cfg_apply(c, eng_fields, MT_ARRAY_LEN(eng_fields), node, "slo", &e->cfg);
    if (e->cfg.interval_ms <= 0 && c->nerr == nerr0) {
        cfg_error_key(c, node, "slo", "evaluation_interval", "must be positive");
    }
    if (c->nerr == nerr0) {
        e->notifiers = slo_notifiers_load(e->cfg.notifiers, "slo.notifiers", c);
    }
    if (c->nerr == nerr0 && e->cfg.specs.n) {
        char *dup = strdup(config_path ? config_path : ".");
        const char *base = dup ? dirname(dup) : ".";
        slo_specs_load((const char *const *)e->cfg.specs.items, e->cfg.specs.n, base,
                       e->cfg.interval_ms, c, &e->set);
        free(dup);
    } else if (c->nerr == nerr0) {
        cfg_error_key(c, node, "slo", "specs", "lists no spec file");
    }
    if (c->nerr != nerr0 || !e->set) {
        if (c->nerr == nerr0) {
            cfg_error(c, node->line, "slo", "cannot load the SLO specs");
        }
        eng_free(e);
        return NULL;
    }
    if (eng_defs_init(e) != MT_OK) {
        cfg_error(c, node->line, "slo", "out of memory");
        eng_free(e);
        return NULL;
    }
    if (slo_notifiers_count(e->notifiers)) {
        e->signals |= SIG_BIT(MT_SIG_LOGS); /* change events for the notices */
    }
    return e;
}

/* ---- state ------------------------------------------------------------------------------ */

static void on_restore(void *arg, const char *id, const slo_inst_t *in)
{
    slo_engine_t *e = arg;
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        if (in->store.counts_bad != d->counts_bad) {
            continue;
        }
        slo_inst_t probe;
        slo_inst_init(&probe, &d->p, d->counts_bad);
        if (probe.store.g2_ms != in->store.g2_ms) {
            continue;
        }
        if (!d->spec->ngroup_by) {
            if (!strcmp(d->spec->id, id) && d->n) {
                d->insts[0]->in = *in;
                /* no-data grace restarts with the process: it was not watching meanwhile */
                d->insts[0]->in.first_eval_ms = 0;
                d->insts[0]->saved_gen = in->gen;
                return;
            }
            continue;
        }
        size_t l = strlen(d->spec->id);
        if (!strncmp(id, d->spec->id, l) && id[l] == '{') {
            pending_t *p = calloc(1, sizeof(*p));
            if (p && (p->id = strdup(id)) && (p->in = malloc(sizeof(*in)))) {
                *p->in = *in;
                p->next = e->pending;
                e->pending = p;
            } else if (p) {
                free(p->id);
                free(p);
            }
            return;
        }
    }
}

/* Copies every instance into e->state_buf when one changed since the last save (or `force`).
 * Called with e->mu held: only memcpy happens under it (~27 KB per instance). Returns the
 * image length, 0 = nothing to write. */
static size_t state_snapshot(slo_engine_t *e, int force)
{
    size_t n = 0;
    int dirty = force;
    for (size_t i = 0; i < e->ndefs; i++) {
        n += e->defs[i].n;
        for (size_t j = 0; j < e->defs[i].n && !dirty; j++) {
            dirty = e->defs[i].insts[j]->in.gen != e->defs[i].insts[j]->saved_gen;
        }
    }
    if (!dirty) {
        return 0;
    }
    const char **ids = calloc(n ? n : 1, sizeof(*ids));
    const slo_inst_t **insts = calloc(n ? n : 1, sizeof(*insts));
    size_t len = 0;
    if (ids && insts) {
        size_t k = 0;
        for (size_t i = 0; i < e->ndefs; i++) {
            for (size_t j = 0; j < e->defs[i].n; j++) {
                ids[k] = e->defs[i].insts[j]->id;
                insts[k++] = &e->defs[i].insts[j]->in;
            }
        }
        len = slo_state_image(&e->state_buf, &e->state_cap, ids, insts, n);
    }
    if (len) {
        for (size_t i = 0; i < e->ndefs; i++) {
            for (size_t j = 0; j < e->defs[i].n; j++) {
                e->defs[i].insts[j]->saved_gen = e->defs[i].insts[j]->in.gen;
            }
        }
    } else {
        mt_log(MT_LOG_WARN, "slo: out of memory saving state");
    }
    free(ids);
    free(insts);
    return len;
}

/* Saves the state if something changed: snapshot under e->mu, then checksum, write, fsync
 * and rename without it, so the observer never waits for the disk. e->save_mu keeps the
 * buffer and the file to one writer (the evaluation thread, and the final save at stop). */
static void save_state(slo_engine_t *e, int force)
{
    pthread_mutex_lock(&e->save_mu);
    pthread_mutex_lock(&e->mu);
    size_t len = state_snapshot(e, force);
    pthread_mutex_unlock(&e->mu);
    if (len && slo_state_write(e->state_path, e->state_buf, len) != MT_OK) {
        mt_log(MT_LOG_WARN, "slo: cannot save state to %s: %s", e->state_path, strerror(errno));
    }
    pthread_mutex_unlock(&e->save_mu);
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- evaluation: notifications ---------------------------------------------------------- */

static void fill_msg(slo_engine_t *e, const def_t *d, const inst_rec_t *r, int tier,
                     const slo_result_t *res, int resolved, int64_t now, slo_alert_msg_t *m)
{
    const slo_spec_t *s = d->spec;
    const slo_tier_t *t = &s->tiers[tier];
    const slo_alert_t *al = &r->in.alerts[tier];
    memset(m, 0, sizeof(*m));
    m->resolved = resolved;
    snprintf(m->group_key, sizeof(m->group_key), "{}:{sloth_id=\"%s\"}", r->id);
    snprintf(m->alert_name, sizeof(m->alert_name), "%s", t->alert_name ? t->alert_name : "");
    snprintf(m->slo_id, sizeof(m->slo_id), "%s", r->id);
    snprintf(m->service, sizeof(m->service), "%s", s->service ? s->service : "");
    snprintf(m->slo, sizeof(m->slo), "%s", s->name ? s->name : "");
    snprintf(m->severity, sizeof(m->severity), "%s", t->severity ? t->severity : "");
    snprintf(m->tier, sizeof(m->tier), "%s", t->name ? t->name : "");
    m->objective = s->objective;
    m->nwin = 2;
    slo_fmt_duration(t->short_ms, m->win[0].name, sizeof(m->win[0].name));
    m->win[0].burn_rate = al->short_br;
    slo_fmt_duration(t->long_ms, m->win[1].name, sizeof(m->win[1].name));
    m->win[1].burn_rate = al->long_br;
    m->threshold = t->factor;
    m->budget_remaining = res->budget_remaining;
    m->tte_s = res->tte_s;
    m->starts_ms = r->first_fire_ms;
    m->ends_ms = resolved ? now : 0;
    m->budget_spent = r->budget_at_fire - res->budget_remaining;
    if (m->budget_spent < 0) {
        m->budget_spent = 0;
    }
    snprintf(m->runbook_url, sizeof(m->runbook_url), "%s", s->runbook_url ? s->runbook_url : "");
    snprintf(m->dashboard_url, sizeof(m->dashboard_url), "%s",
             s->dashboard_url ? s->dashboard_url : "");
    if (e->cfg.external_url) {
        snprintf(m->generator_url, sizeof(m->generator_url), "%s/api/v1/slos",
                 e->cfg.external_url);
    }
    m->ntraces = r->ntraces;
    for (int i = 0; i < r->ntraces; i++) {
        /* newest first */
        int k = (r->tpos - 1 - i + 2 * SLO_MSG_MAX_TRACES) % SLO_MSG_MAX_TRACES;
        memcpy(m->traces[i], r->traces[k], 33);
    }
    for (size_t i = 0; s->service && i < e->nchanges; i++) {
        const changes_t *c = &e->changes[i];
        if (strcmp(c->service, s->service) != 0) {
            continue;
        }
        for (int j = 0; j < c->n; j++) {
            int k = (c->pos - 1 - j + 2 * SLO_MSG_MAX_CHANGES) % SLO_MSG_MAX_CHANGES;
            memcpy(m->changes[j].name, c->ev[k].name, sizeof(m->changes[j].name));
            memcpy(m->changes[j].detail, c->ev[k].detail, sizeof(m->changes[j].detail));
            m->changes[j].t_ms = c->ev[k].t_ms;
        }
        m->nchanges = c->n;
    }
    for (size_t i = 0; i < t->labels.n && m->nlabels < SLO_MSG_MAX_LABELS; i++, m->nlabels++) {
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", t->labels.keys[i]);
        snprintf(m->lv[m->nlabels], sizeof(m->lv[0]), "%s", t->labels.vals[i]);
    }
    for (size_t i = 0; r->gvals && i < s->ngroup_by && m->nlabels < SLO_MSG_MAX_LABELS;
         i++, m->nlabels++) {
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", s->group_by[i]);
        snprintf(m->lv[m->nlabels], sizeof(m->lv[0]), "%s", r->gvals[i]);
    }
}

typedef struct {
    slo_alert_msg_t *v;
    size_t n, cap;
} msgs_t;

static slo_alert_msg_t *msgs_add(msgs_t *ms)
{
    if (ms->n == ms->cap) {
        size_t nc = ms->cap ? ms->cap * 2 : 4;
        slo_alert_msg_t *v = realloc(ms->v, nc * sizeof(*v));
        if (!v) {
            return NULL;
        }
        ms->v = v;
        ms->cap = nc;
    }
    return &ms->v[ms->n++];
}

/* Alertmanager-like grouping per SLO instance: the first notice waits group_wait (an alert
 * resolving before that is never sent), an escalation to a more severe tier is sent after
 * group_interval, an unchanged alert repeats every repeat_interval, and the end of the
 * incident sends one resolved notice with the budget spent and the duration. */
static void notify_step(slo_engine_t *e, const def_t *d, inst_rec_t *r, int best,
                        const slo_result_t *res, int64_t now, msgs_t *ms)
{
    slo_alert_msg_t *m;
    if (best >= 0) {
        if (!r->first_fire_ms) {
            r->first_fire_ms = r->in.alerts[best].fired_at_ms ? r->in.alerts[best].fired_at_ms : now;
            r->budget_at_fire = r->in.alerts[best].budget_at_fire;
        }
        int send = 0;
        if (r->notified_tier < 0) {
            send = now - r->first_fire_ms >= e->cfg.group_wait_ms;
        } else if (d->p.tiers[best].rank < d->p.tiers[r->notified_tier].rank) {
            send = now - r->last_sent_ms >= e->cfg.group_interval_ms;
        } else {
            send = now - r->last_sent_ms >= e->cfg.repeat_interval_ms;
        }
        if (send && (m = msgs_add(ms))) {
            fill_msg(e, d, r, best, res, 0, now, m);
            r->notified_tier = best;
            r->last_sent_ms = now;
        }
        return;
    }
    if (r->notified_tier >= 0 && (m = msgs_add(ms))) {
        fill_msg(e, d, r, r->notified_tier, res, 1, now, m);
    }
    r->notified_tier = -1;
    r->first_fire_ms = 0;
}

/* The no-data alert of `no_data: alert` SLOs (eval.c: no event for the shortest long window).
 * alertname: the burn alert's name with its "BurnRate"/"Burn" suffix replaced by "NoData"
 * (CheckoutAvailabilityBurnRate -> CheckoutAvailabilityNoData), severity ticket, tier
 * "no-data", its own group key; notified at once (a data gap is already an hour old), repeated
 * every repeat_interval and resolved when data returns. */
static void nodata_notify(slo_engine_t *e, const def_t *d, inst_rec_t *r,
                          const slo_result_t *res, int64_t now, msgs_t *ms)
{
    const slo_spec_t *s = d->spec;
    const slo_alert_t *al = &r->in.nodata_alert;
    bool resolved;
    if (al->state == SLO_AL_FIRING) {
        if (r->nodata_sent_ms && now - r->nodata_sent_ms < e->cfg.repeat_interval_ms) {
            return;
        }
        resolved = false;
    } else if (r->nodata_sent_ms) {
        resolved = true;
    } else {
        return;
    }
    slo_alert_msg_t *m = msgs_add(ms);
    if (!m) {
        return;
    }
    memset(m, 0, sizeof(*m));
    m->resolved = resolved;
    char base[128];
    const char *an = s->ntiers && s->tiers[0].alert_name ? s->tiers[0].alert_name : s->id;
    snprintf(base, sizeof(base), "%s", an);
    size_t bl = strlen(base);
    if (bl > 8 && !strcmp(base + bl - 8, "BurnRate")) {
        base[bl - 8] = 0;
    } else if (bl > 4 && !strcmp(base + bl - 4, "Burn")) {
        base[bl - 4] = 0;
    }
    snprintf(m->alert_name, sizeof(m->alert_name), "%.100sNoData", base);
    snprintf(m->group_key, sizeof(m->group_key), "{}:{alertname=\"%.100s\",sloth_id=\"%.120s\"}",
             m->alert_name, r->id);
    snprintf(m->slo_id, sizeof(m->slo_id), "%s", r->id);
    snprintf(m->service, sizeof(m->service), "%s", s->service ? s->service : "");
    snprintf(m->slo, sizeof(m->slo), "%s", s->name ? s->name : "");
    snprintf(m->severity, sizeof(m->severity), "ticket");
    snprintf(m->tier, sizeof(m->tier), "no-data");
    m->objective = s->objective;
    m->budget_remaining = res->budget_remaining;
    m->tte_s = -1;
    m->starts_ms = al->fired_at_ms ? al->fired_at_ms : now;
    m->ends_ms = resolved ? now : 0;
    snprintf(m->runbook_url, sizeof(m->runbook_url), "%s", s->runbook_url ? s->runbook_url : "");
    snprintf(m->dashboard_url, sizeof(m->dashboard_url), "%s",
             s->dashboard_url ? s->dashboard_url : "");
    if (e->cfg.external_url) {
        snprintf(m->generator_url, sizeof(m->generator_url), "%s/api/v1/slos",
                 e->cfg.external_url);
    }
    /* the alert-wide labels of the first tier (not its severity), then the group labels */
    for (size_t i = 0; s->ntiers && i < s->tiers[0].labels.n && m->nlabels < SLO_MSG_MAX_LABELS;
         i++) {
        if (!strcmp(s->tiers[0].labels.keys[i], "sloth_severity")) {
            continue;
        }
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", s->tiers[0].labels.keys[i]);
        snprintf(m->lv[m->nlabels++], sizeof(m->lv[0]), "%s", s->tiers[0].labels.vals[i]);
    }
    for (size_t i = 0; r->gvals && i < s->ngroup_by && m->nlabels < SLO_MSG_MAX_LABELS;
         i++, m->nlabels++) {
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", s->group_by[i]);
        snprintf(m->lv[m->nlabels], sizeof(m->lv[0]), "%s", r->gvals[i]);
    }
    r->nodata_sent_ms = resolved ? 0 : now;
}

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
    series_point(s, d, r, "slo:time_period:days", (double)d->p.period_ms / 86400000.0, NULL,
                 NULL, 0);
    series_point(s, d, r, "slo:current_burn_rate:ratio", res->w[SLO_W_5M].burn_rate, NULL, NULL, 0);
    series_point(s, d, r, "slo:period_burn_rate:ratio", res->w[SLO_W_PERIOD].burn_rate, NULL,
                 NULL, 0);
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
    size_t len = opentelemetry__proto__collector__v1__export_metrics_service_request__get_packed_size(&req);
    mt_batch_t *b = batch_alloc(MT_SIG_METRICS, (uint32_t)s->points, len);
    if (b) {
        opentelemetry__proto__collector__v1__export_metrics_service_request__pack(&req, b->data);
    }
    return b;
}

/* ---- evaluation loop -------------------------------------------------------------------- */

static void tick(slo_engine_t *e, int64_t now)
{
    msgs_t ms = {0};
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
            slo_result_t res;
            int best = slo_eval_run(&r->in, &d->p, now, &res, events);
            if (e->notifiers && slo_notifiers_count(e->notifiers)) {
                notify_step(e, d, r, best, &res, now, &ms);
                if (d->p.nodata == SLO_ND_ALERT) {
                    nodata_notify(e, d, r, &res, now, &ms);
                }
            }
            if (s.a) {
                series_inst(&s, d, r, &res);
            }
        }
    }
    size_t ninst = 0;
    for (size_t i = 0; i < e->ndefs; i++) {
        ninst += e->defs[i].n;
    }
    pthread_mutex_unlock(&e->mu);
    /* large SLO sets save less often: the image is ~27 KB per instance */
    uint64_t every = ENG_STATE_EVERY * (1 + ninst / ENG_STATE_PER_EVERY);
    if (++e->ticks % every == 0 && e->state_path[0]) {
        save_state(e, 0);
    }
    for (size_t i = 0; i < ms.n; i++) {
        mt_log(MT_LOG_INFO, "slo %s: %s alert (%s)", ms.v[i].slo_id,
               ms.v[i].resolved ? "resolved" : "firing", ms.v[i].tier);
        slo_notifiers_send(e->notifiers, &ms.v[i]);
    }
    free(ms.v);
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

static void *eval_main(void *arg)
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
        tick(e, wall_ms());
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

size_t slo_engine_exporters(const slo_engine_t *e, char *const **ids)
{
    *ids = e->cfg.exporters.items;
    return e->cfg.exporters.n;
}

int slo_engine_start(slo_engine_t *e, struct exq *const *queues, size_t nqueues,
                     mt_errbuf_t *eb)
{
    e->counted_from_ns = mt_wall_ns();
    e->c_old = tm_counter("meltp_slo_events_dropped_total",
                          "SLO events not counted, by reason", "reason=\"too_old\"");
    e->c_future = tm_counter("meltp_slo_events_dropped_total",
                             "SLO events not counted, by reason", "reason=\"future\"");
    e->c_groups = tm_counter("meltp_slo_events_dropped_total",
                             "SLO events not counted, by reason", "reason=\"max_groups\"");
    e->c_series = tm_counter("meltp_slo_events_dropped_total",
                             "SLO events not counted, by reason", "reason=\"max_series\"");
    e->c_series_dropped = tm_counter("meltp_slo_series_dropped_total",
                                     "SLO series points not queued (exporter queue full)", "");
    e->queues = calloc(nqueues ? nqueues : 1, sizeof(*e->queues));
    if (!e->queues) {
        mt_failf(eb, "slo: out of memory");
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < nqueues; i++) {
        e->queues[e->nqueues++] = queues[i];
    }
    if (mkdir_p(e->cfg.state_dir) != 0) {
        mt_failf(eb, "slo.state_dir: cannot create %s: %s", e->cfg.state_dir, strerror(errno));
        return MT_EIO;
    }
    snprintf(e->state_path, sizeof(e->state_path), "%s/%s", e->cfg.state_dir, ENG_STATE_FILE);
    int rc = slo_state_load(e->state_path, on_restore, e);
    if (rc == MT_EINVAL) {
        mt_log(MT_LOG_WARN, "slo: ignoring unreadable state file %s (corrupt or from another "
               "build)", e->state_path);
    } else if (rc == MT_OK) {
        mt_log(MT_LOG_INFO, "slo: restored state from %s", e->state_path);
    }
    if (e->notifiers && slo_notifiers_start(e->notifiers, eb) != MT_OK) {
        return MT_ERR;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->save_mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (pthread_create(&e->thr, NULL, eval_main, e) != 0) {
        mt_failf(eb, "slo: cannot start the evaluation thread");
        return MT_ERR;
    }
    e->thread_on = 1;
    if (pipeline_add_observer(observer, e) != MT_OK) {
        mt_failf(eb, "slo: cannot register the pipeline observer");
        return MT_ERR;
    }
    e->observing = 1;
    mt_log(MT_LOG_INFO, "slo: %zu SLOs, evaluated every %lld ms", e->ndefs,
           (long long)e->cfg.interval_ms);
    return MT_OK;
}

void slo_engine_stop_destroy(slo_engine_t *e)
{
    if (!e) {
        return;
    }
    if (e->observing) {
        pipeline_remove_observer(observer, e);
    }
    if (e->thread_on) {
        pthread_mutex_lock(&e->mu);
        e->stopping = 1;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thr, NULL);
        tick(e, wall_ms()); /* final series and notices */
        save_state(e, 0);
        pthread_mutex_destroy(&e->save_mu);
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
    }
    eng_free(e);
}

/* ---- GET /api/v1/slos ------------------------------------------------------------------- */

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

char *slo_engine_api_json(slo_engine_t *e, size_t *len)
{
    json_t *arr = json_array();
    int64_t now = wall_ms();
    int locked = e->thread_on;
    if (locked) {
        pthread_mutex_lock(&e->mu);
    }
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        for (size_t k = 0; k < d->n; k++) {
            inst_rec_t *r = d->insts[k];
            slo_result_t res;
            slo_eval_compute(&r->in, &d->p, now, &res);
            int ast = SLO_AL_INACTIVE;
            for (size_t t = 0; t < d->p.ntiers; t++) {
                if (r->in.alerts[t].state > ast) {
                    ast = r->in.alerts[t].state;
                }
            }
            json_t *wins = json_object();
            char pw[16];
            slo_fmt_duration(d->p.period_ms, pw, sizeof(pw));
            for (int w = 0; w < SLO_NWIN; w++) {
                json_object_set_new(wins, w == SLO_W_PERIOD ? pw : slo_win_name[w],
                                    json_pack("{s:I, s:I, s:o, s:o}", "good",
                                              (json_int_t)res.w[w].good, "total",
                                              (json_int_t)res.w[w].total, "error_ratio",
                                              jnum(res.w[w].error_ratio), "burn_rate",
                                              jnum(res.w[w].burn_rate)));
            }
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:f, s:s, s:s, s:s, s:o, s:o, s:o}", "id", r->id,
                               "service", d->spec->service ? d->spec->service : "", "slo",
                               d->spec->name ? d->spec->name : "", "objective",
                               d->spec->objective, "state", slo_state_name(res.state),
                               "alert_state", slo_alert_state_name(ast),
                               /* no_data: alert only; it has no `for`, so never pending */
                               "no_data_alert_state",
                               r->in.nodata_alert.state == SLO_AL_FIRING ? "firing" : "inactive",
                               "budget_remaining",
                               jnum(res.budget_remaining), "time_to_exhaustion_s",
                               res.tte_s < 0 ? json_null() : jnum(res.tte_s), "windows", wins));
        }
    }
    if (locked) {
        pthread_mutex_unlock(&e->mu);
    }
    json_t *root = json_pack("{s:o}", "slos", arr);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s) {
        *len = strlen(s);
    }
    return s;
}

/* ---- simulation (meltp slo simulate) ----------------------------------------------------- */

/* One input series of the simulation, as the OTLP message the observer reads. */
typedef struct {
    metric_t m;
    Opentelemetry__Proto__Metrics__V1__Sum sum;
    ndp_t p;
    ndp_t *pp;
    kv_t *kv;
    anyv_t *av;
    kv_t **kvp;
    const json_t *values;
} sim_series_t;

static void sim_eval_line(FILE *out, slo_engine_t *e, int64_t now)
{
    json_t *slos = json_array();
    int events[SLO_EV_MAX_TIERS];
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        char pw[16];
        slo_fmt_duration(d->p.period_ms, pw, sizeof(pw));
        for (size_t k = 0; k < d->n; k++) {
            inst_rec_t *r = d->insts[k];
            slo_result_t res;
            slo_eval_run(&r->in, &d->p, now, &res, events);
            json_t *wins = json_object();
            for (int w = 0; w < SLO_NWIN; w++) {
                json_object_set_new(wins, w == SLO_W_PERIOD ? pw : slo_win_name[w],
                                    json_pack("{s:I, s:I, s:o}", "good",
                                              (json_int_t)res.w[w].good, "total",
                                              (json_int_t)res.w[w].total, "error_ratio",
                                              jnum(res.w[w].error_ratio)));
            }
            json_t *tiers = json_object();
            for (size_t t = 0; t < d->p.ntiers; t++) {
                const slo_tier_t *st = &d->spec->tiers[t];
                json_object_set_new(tiers, st->name ? st->name : "",
                                    json_pack("{s:s, s:s, s:s}", "state",
                                              slo_alert_state_name(r->in.alerts[t].state),
                                              "alert", st->alert_name ? st->alert_name : "",
                                              "severity", st->severity ? st->severity : ""));
            }
            json_array_append_new(slos, json_pack("{s:s, s:s, s:o, s:o, s:s}", "id", r->id, "state",
                                                  slo_state_name(res.state), "windows", wins,
                                                  "tiers", tiers, "nodata_alert",
                                                  slo_alert_state_name(r->in.nodata_alert.state)));
        }
    }
    json_t *line = json_pack("{s:I, s:o}", "t_ms", (json_int_t)now, "slos", slos);
    char *txt = json_dumps(line, JSON_COMPACT);
    if (txt) {
        fprintf(out, "%s\n", txt);
        free(txt);
    }
    json_decref(line);
}

int slo_simulate(FILE *out, const slo_set_t *set, const char *text, size_t len, mt_errbuf_t *eb)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!doc) {
        mt_failf(eb, "series: line %d: %s", jerr.line, jerr.text);
        return MT_EINVAL;
    }
    json_int_t start = json_integer_value(json_object_get(doc, "start_ms"));
    json_int_t step = json_integer_value(json_object_get(doc, "step_ms"));
    json_int_t every = json_integer_value(json_object_get(doc, "eval_every_ms"));
    const json_t *jser = json_object_get(doc, "series");
    const char *temp = json_string_value(json_object_get(doc, "temporality"));
    int delta = temp && !strcmp(temp, "delta");
    if (step <= 0 || !json_is_array(jser) || !json_array_size(jser)) {
        mt_failf(eb, "series: needs step_ms > 0 and a non-empty series array");
        json_decref(doc);
        return MT_EINVAL;
    }
    if (every <= 0) {
        every = step;
    }
    size_t ns = json_array_size(jser), steps = 0;
    sim_series_t *sv = calloc(ns, sizeof(*sv));
    metric_t **mp = calloc(ns, sizeof(*mp));
    slo_engine_t *e = calloc(1, sizeof(*e));
    int rc = MT_ENOMEM;
    if (!sv || !mp || !e) {
        mt_failf(eb, "out of memory");
        goto out;
    }
    /* an engine without threads, observer, notifiers or state: the simulated clock drives it */
    e->set = (slo_set_t *)set;
    e->cfg.max_series = 65536;
    static tm_counter_t sim_drops; /* the CLI has no self-telemetry to report drops to */
    e->c_old = e->c_future = e->c_groups = e->c_series = e->c_series_dropped = &sim_drops;
    if (eng_defs_init(e) != MT_OK) {
        mt_failf(eb, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ns; i++) {
        const json_t *js = json_array_get(jser, i);
        sim_series_t *s = &sv[i];
        const char *name = json_string_value(json_object_get(js, "metric"));
        const json_t *labels = json_object_get(js, "labels");
        s->values = json_object_get(js, "values");
        if (!name || !json_is_array(s->values)) {
            mt_failf(eb, "series[%zu]: needs metric and values", i);
            rc = MT_EINVAL;
            goto out;
        }
        if (json_array_size(s->values) > steps) {
            steps = json_array_size(s->values);
        }
        size_t nl = json_is_object(labels) ? json_object_size(labels) : 0;
        s->kv = calloc(nl ? nl : 1, sizeof(*s->kv));
        s->av = calloc(nl ? nl : 1, sizeof(*s->av));
        s->kvp = calloc(nl ? nl : 1, sizeof(*s->kvp));
        if (!s->kv || !s->av || !s->kvp) {
            mt_failf(eb, "out of memory");
            goto out;
        }
        const char *k;
        const json_t *v;
        size_t j = 0;
        json_object_foreach((json_t *)labels, k, v) {
            opentelemetry__proto__common__v1__key_value__init(&s->kv[j]);
            opentelemetry__proto__common__v1__any_value__init(&s->av[j]);
            s->kv[j].key = (char *)k;
            s->av[j].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            s->av[j].string_value = (char *)(json_string_value(v) ? json_string_value(v) : "");
            s->kv[j].value = &s->av[j];
            s->kvp[j] = &s->kv[j];
            j++;
        }
        opentelemetry__proto__metrics__v1__metric__init(&s->m);
        opentelemetry__proto__metrics__v1__sum__init(&s->sum);
        opentelemetry__proto__metrics__v1__number_data_point__init(&s->p);
        s->m.name = (char *)name;
        s->m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        s->m.sum = &s->sum;
        s->sum.is_monotonic = 1;
        s->sum.aggregation_temporality =
            delta ? OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
                  : OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        s->pp = &s->p;
        s->sum.data_points = &s->pp;
        s->p.attributes = s->kvp;
        s->p.n_attributes = j;
        s->p.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        mp[i] = &s->m;
    }
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm;
    opentelemetry__proto__metrics__v1__scope_metrics__init(&sm);
    sm.metrics = mp;
    sm.n_metrics = ns;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp = &sm;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm;
    opentelemetry__proto__metrics__v1__resource_metrics__init(&rm);
    rm.scope_metrics = &smp;
    rm.n_scope_metrics = 1;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp = &rm;
    metrics_req_t req;
    opentelemetry__proto__collector__v1__export_metrics_service_request__init(&req);
    req.resource_metrics = &rmp;
    req.n_resource_metrics = 1;
    for (size_t i = 0; i < steps; i++) {
        int64_t t = (int64_t)start + (int64_t)i * (int64_t)step;
        for (size_t k = 0; k < ns; k++) {
            const json_t *v = json_array_get(sv[k].values, i);
            sv[k].sum.n_data_points = json_is_number(v) ? 1 : 0; /* null or short: no sample */
            sv[k].p.as_double = json_number_value(v);
            /* time 0 would mean "now" to the observer; t is Unix ms, possibly 0 */
            sv[k].p.time_unix_nano = (uint64_t)t * 1000000ull;
        }
        observe_metrics(e, &req, t);
        if (((int64_t)i * (int64_t)step) % every == 0) {
            sim_eval_line(out, e, t);
        }
    }
    rc = MT_OK;
out:
    if (e) {
        e->set = NULL; /* the caller's */
        eng_free(e);
    }
    for (size_t i = 0; sv && i < ns; i++) {
        free(sv[i].kv);
        free(sv[i].av);
        free(sv[i].kvp);
    }
    free(sv);
    free(mp);
    json_decref(doc);
    return rc;
}
