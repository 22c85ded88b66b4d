/*
 * engine_api.c - the SLO engine seen from outside: GET /api/v1/slos as JSON, and
 * slo_simulate() (`meltp slo simulate`), which runs the observer and the evaluator without
 * threads on a simulated clock. Part of the slo/engine module.
 */
#include "slo.h"
#include "engine_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- GET /api/v1/slos ------------------------------------------------------------------- */

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

char *slo_engine_api_json(slo_engine_t *e, size_t *len)
{
    json_t *arr = json_array();
    int64_t now = eng_wall_ms();
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
                json_object_set_new(
                    wins, w == SLO_W_PERIOD ? pw : slo_win_name[w],
                    json_pack("{s:I, s:I, s:o, s:o}", "good", (json_int_t)res.w[w].good, "total",
                              (json_int_t)res.w[w].total, "error_ratio", jnum(res.w[w].error_ratio),
                              "burn_rate", jnum(res.w[w].burn_rate)));
            }
            json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:s, s:f, s:s, s:s, s:s, s:o, s:o, s:o}", "id", r->id,
                          "service", d->spec->service ? d->spec->service : "", "slo",
                          d->spec->name ? d->spec->name : "", "objective", d->spec->objective,
                          "state", slo_state_name(res.state), "alert_state",
                          slo_alert_state_name(ast),
                          /* no_data: alert only; it has no `for`, so never pending */
                          "no_data_alert_state",
                          r->in.nodata_alert.state == SLO_AL_FIRING ? "firing" : "inactive",
                          "budget_remaining", jnum(res.budget_remaining), "time_to_exhaustion_s",
                          res.tte_s < 0 ? json_null() : jnum(res.tte_s), "windows", wins));
            /* a silenced alert still shows as firing, with the silences that mute it */
            char ids[8][SLO_SILENCE_ID_LEN];
            size_t ns = eng_silenced_by(e, d, r, now, ids, 8);
            if (ns) {
                json_t *sb = json_array();
                for (size_t j = 0; j < ns && j < 8; j++) {
                    json_array_append_new(sb, json_string(ids[j]));
                }
                json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "silenced_by",
                                    sb);
            }
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

/* ---- silences and routes ---------------------------------------------------------------- */

int slo_engine_silences_http(slo_engine_t *e, const char *method, const char *path,
                             const char *body, size_t len, char **out, size_t *outlen,
                             const char **ctype)
{
    if (!e || !e->silences) {
        *out = strdup("no slo section: silences need the SLO engine\n");
        *outlen = *out ? strlen(*out) : 0;
        *ctype = "text/plain";
        return *out ? 404 : 503;
    }
    return slo_silence_http(e->silences, method, path, body, len, eng_wall_ms(), out, outlen,
                            ctype);
}

const struct slo_set *slo_engine_specs(const slo_engine_t *e)
{
    return e->set;
}

int slo_engine_print_routes(slo_engine_t *e, const char *spec_id, size_t tier, FILE *out,
                            const char *indent)
{
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        if (strcmp(d->spec->id, spec_id) != 0 || tier >= d->p.ntiers) {
            continue;
        }
        /* a grouped SLO's group labels are unknown here: matchers see them as "" */
        inst_rec_t probe;
        memset(&probe, 0, sizeof(probe));
        probe.id = (char *)d->spec->id;
        slo_route_labels_t l;
        eng_alert_labels(d, &probe, (int)tier, &l, NULL, 0);
        uint32_t mask = slo_route_match(e->routes, &l);
        if (!mask) {
            fprintf(out, "%sroute: none matches (not notified)\n", indent);
        }
        for (size_t g = 0; g < e->routes->n; g++) {
            if (!(mask & (1u << g))) {
                continue;
            }
            const slo_route_t *rt = &e->routes->routes[g];
            char desc[512], gw[16], gi[16], ri[16];
            slo_route_describe(e->routes, g, desc, sizeof(desc));
            fprintf(out, "%sroute: %s -> ", indent, desc);
            int any = 0;
            for (size_t k = 0; k < slo_notifiers_count(e->notifiers) && k < SLO_ROUTE_NOTIFIERS;
                 k++) {
                if (rt->notifiers & (1ull << k)) {
                    fprintf(out, "%s%s", any++ ? ", " : "", slo_notifiers_name(e->notifiers, k));
                }
            }
            fprintf(out, "%s (group_wait %s, group_interval %s, repeat_interval %s)\n",
                    any ? "" : "(no notifiers)",
                    slo_fmt_duration(rt->group_wait_ms, gw, sizeof(gw)),
                    slo_fmt_duration(rt->group_interval_ms, gi, sizeof(gi)),
                    slo_fmt_duration(rt->repeat_interval_ms, ri, sizeof(ri)));
        }
        for (size_t h = 0; h < e->routes->ninh; h++) {
            const slo_inhibit_t *ih = &e->routes->inh[h];
            if (slo_route_matchers_match(ih->tgt, ih->ntgt, &l)) {
                fprintf(out, "%sinhibited by slo.inhibit[%zu] while a matching source fires\n",
                        indent, h);
            }
        }
        return 0;
    }
    return -1;
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
                                    json_pack("{s:I, s:I, s:o}", "good", (json_int_t)res.w[w].good,
                                              "total", (json_int_t)res.w[w].total, "error_ratio",
                                              jnum(res.w[w].error_ratio)));
            }
            json_t *tiers = json_object();
            for (size_t t = 0; t < d->p.ntiers; t++) {
                const slo_tier_t *st = &d->spec->tiers[t];
                json_object_set_new(tiers, st->name ? st->name : "",
                                    json_pack("{s:s, s:s, s:s}", "state",
                                              slo_alert_state_name(r->in.alerts[t].state), "alert",
                                              st->alert_name ? st->alert_name : "", "severity",
                                              st->severity ? st->severity : ""));
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
        json_object_foreach((json_t *)labels, k, v)
        {
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
            delta
                ? OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
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
        eng_observe_metrics(e, &req, t);
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
