/*
 * spec_openslo.c - OpenSLO v1 documents (SLO, SLI, AlertPolicy, ...): collected first, then
 * resolved by name (possibly across files) into slo_spec_t. Part of the slo/spec module.
 */
#include "model.h"
#include "spec_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------- */
/* OpenSLO v1                                                                                */

static const oslo_doc_t *oslo_find(const oslo_list_t *ol, const char *kind, const char *name)
{
    for (size_t i = 0; i < ol->n; i++) {
        if (ol->d[i].kind && ol->d[i].name && !strcmp(ol->d[i].kind, kind) &&
            !strcmp(ol->d[i].name, name)) {
            return &ol->d[i];
        }
    }
    return NULL;
}

/* OpenSLO durations: m h d w, plus M Q Y which only make sense as calendar periods. */
static int oslo_duration(const char *s, int64_t *ms, char *cal_unit)
{
    *cal_unit = 0;
    size_t n = strlen(s);
    if (n >= 2 && (s[n - 1] == 'M' || s[n - 1] == 'Q' || s[n - 1] == 'Y')) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end != s + n - 1 || v <= 0) {
            return MT_EINVAL;
        }
        *cal_unit = s[n - 1];
        *ms = v * (s[n - 1] == 'M' ? 30 : s[n - 1] == 'Q' ? 91 : 365) * 86400000LL;
        return v == 1 ? MT_OK : MT_EUNSUPPORTED;
    }
    return spec_parse_duration(s, ms);
}

/* A metricSource: {metricSourceRef?, type, spec: {query: PROMQL}}; the query is a selector or
 * sum(rate(SEL[...])). */
static int oslo_metric(ld_t *L, const cfg_node_t *holder, const char *path, const char *key,
                       slo_selector_t *sel, char **query, char ***by, size_t *nby)
{
    const cfg_node_t *h;
    if (spec_want_map(L, holder, path, key, &h) <= 0) {
        return 0;
    }
    char *p = spec_xprintf("%s.%s", path, key);
    const cfg_node_t *ms, *spec;
    int rc = -1;
    if (spec_want_map(L, h, p, "metricSource", &ms) <= 0) {
        cfg_error(L->c, h->line, p, "missing metricSource");
        goto out;
    }
    char *mp = spec_xprintf("%s.metricSource", p);
    if (spec_want_map(L, ms, mp, "spec", &spec) <= 0) {
        cfg_error(L->c, ms->line, mp, "missing spec");
        free(mp);
        goto out;
    }
    char *qp = spec_xprintf("%s.spec", mp);
    free(mp);
    const char *qs = spec_get_str(L, spec, qp, "query", 0);
    if (!qs) {
        cfg_error(L->c, spec->line, qp,
                  "missing query (a Prometheus selector or "
                  "sum(rate(SELECTOR[window])))");
        free(qp);
        goto out;
    }
    char err[512];
    *query = spec_xstrdup(qs);
    size_t i = 0;
    while (isspace((unsigned char)qs[i])) {
        i++;
    }
    if (!strncmp(qs + i, "sum", 3) && !spec_is_name_char((unsigned char)qs[i + 3])) {
        agg_query_t a;
        if (spec_parse_agg_query(qs, 0, &a, err, sizeof(err)) != 0) {
            cfg_error_key(L->c, spec, qp, "query", "%s", err);
        } else {
            *sel = a.sel;
            memset(&a.sel, 0, sizeof(a.sel));
            for (size_t k = 0; by && k < a.nby; k++) {
                *by = spec_xrealloc(*by, (*nby + 1) * sizeof(char *));
                (*by)[(*nby)++] = spec_xstrdup(a.by[k]);
            }
            spec_agg_free(&a);
            rc = 1;
        }
    } else if (spec_parse_selector(qs, sel, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, spec, qp, "query", "%s", err);
    } else {
        rc = 1;
    }
    free(qp);
out:
    free(p);
    return rc;
}

static void oslo_sli(ld_t *L, slo_spec_t *s, const cfg_node_t *sli_spec, const char *path,
                     const cfg_node_t *objective, const char *opath)
{
    slo_sli_t *q = &s->sli;
    const cfg_node_t *rm, *tm;
    if (spec_want_map(L, sli_spec, path, "ratioMetric", &rm) > 0) {
        char *p = spec_xprintf("%s.ratioMetric", path);
        q->kind = SLO_SLI_RATIO;
        if (cfg_map_get(rm, "raw")) {
            cfg_error_key(L->c, rm, p, "raw",
                          "raw ratio metrics cannot be evaluated in-process; use good|bad + "
                          "total");
        } else {
            char **by = NULL;
            size_t nby = 0;
            q->has_good = oslo_metric(L, rm, p, "good", &q->good, &q->good_query, &by, &nby) > 0;
            q->has_bad = oslo_metric(L, rm, p, "bad", &q->bad, &q->error_query, &by, &nby) > 0;
            char **tby = NULL;
            size_t ntby = 0;
            q->has_total =
                oslo_metric(L, rm, p, "total", &q->total, &q->total_query, &tby, &ntby) > 0;
            if (!cfg_map_get(rm, "total") ||
                (!cfg_map_get(rm, "good") && !cfg_map_get(rm, "bad")) ||
                (cfg_map_get(rm, "good") && cfg_map_get(rm, "bad"))) {
                cfg_error(L->c, rm->line, p, "expected total and exactly one of good, bad");
            }
            s->group_by = tby;
            s->ngroup_by = ntby;
            for (size_t i = 0; i < nby; i++) {
                free(by[i]);
            }
            free(by);
        }
        free(p);
    } else if (spec_want_map(L, sli_spec, path, "thresholdMetric", &tm) > 0) {
        /* A latency SLI: the query names a histogram; the objective's op/value give the
         * threshold (lte/lt: good when at or below value). */
        char *p = spec_xprintf("%s", path);
        q->kind = SLO_SLI_LATENCY;
        if (oslo_metric(L, sli_spec, p, "thresholdMetric", &q->histogram, &q->total_query, NULL,
                        NULL) > 0) {
            if (q->histogram.metric) {
                size_t n = strlen(q->histogram.metric);
                if (n > 7 && !strcmp(q->histogram.metric + n - 7, "_bucket")) {
                    q->histogram.metric[n - 7] = 0;
                }
            }
        }
        const char *op = spec_get_str(L, objective, opath, "op", 0);
        if (!op || (strcmp(op, "lte") != 0 && strcmp(op, "lt") != 0)) {
            cfg_error(L->c, objective->line, opath,
                      "thresholdMetric objectives need op: lte (or lt) and a value: the share of "
                      "observations at or below value is the SLI");
        }
        if (spec_get_double(L, objective, opath, "value", &q->threshold) <= 0 ||
            !(q->threshold > 0)) {
            cfg_error(L->c, objective->line, opath, "value must be a threshold > 0");
        }
        free(p);
    } else {
        cfg_error(L->c, sli_spec->line, path, "expected ratioMetric or thresholdMetric");
    }
}

void spec_oslo_slo(ld_t *L, const oslo_list_t *ol, const oslo_doc_t *d)
{
    const cfg_node_t *root = d->root;
    char *path = spec_xprintf("SLO/%s", d->name ? d->name : "?");
    char *sp = spec_xprintf("%s.spec", path);
    const cfg_node_t *spec, *md;
    spec_want_map(L, root, path, "metadata", &md);
    if (spec_want_map(L, root, path, "spec", &spec) <= 0) {
        cfg_error(L->c, root->line, path, "missing spec");
        goto out;
    }
    slo_spec_t *s = spec_new(L, SLO_FMT_OPENSLO, root->line);
    const char *svc = spec_get_str(L, spec, sp, "service", 1);
    s->service = spec_xstrdup(svc ? svc : "");
    s->name = spec_xstrdup(d->name ? d->name : "");
    s->description = spec_xstrdup(spec_get_str(L, spec, sp, "description", 0));
    spec_set_ids(s);
    if (md) {
        spec_get_kv(L, md, path, "labels", &s->labels);
    }
    spec_labels_identity_first(s);

    /* time window */
    const cfg_node_t *tw = cfg_map_get(spec, "timeWindow");
    if (!tw || tw->kind != CFG_NODE_SEQ || tw->n != 1 || tw->children[0]->kind != CFG_NODE_MAP) {
        cfg_error(L->c, tw ? tw->line : spec->line, sp, "timeWindow: expected a list of one map");
    } else {
        const cfg_node_t *w = tw->children[0];
        char *wp = spec_xprintf("%s.timeWindow[0]", sp);
        const char *dur = spec_get_str(L, w, wp, "duration", 1);
        int rolling = 1;
        spec_get_bool(L, w, wp, "isRolling", &rolling);
        int64_t ms = 0;
        char cu = 0;
        int rc = dur ? oslo_duration(dur, &ms, &cu) : MT_EINVAL;
        if (dur && rc != MT_OK) {
            cfg_error_key(L->c, w, wp, "duration",
                          "unsupported duration \"%s\" (rolling: m h d w; calendar: 1w or 1M)",
                          dur);
        } else if (dur && rolling) {
            if (cu) {
                cfg_error_key(L->c, w, wp, "duration",
                              "rolling windows in M/Q/Y are ambiguous; write days (e.g. 30d)");
            } else {
                s->period_ms = ms;
            }
        } else if (dur) {
            if (cu == 'M') {
                s->period_kind = SLO_PERIOD_CALENDAR_MONTH;
                s->period_ms = 30LL * 86400000;
            } else if (!cu && ms == 7LL * 86400000) {
                s->period_kind = SLO_PERIOD_CALENDAR_WEEK;
                s->period_ms = ms;
            } else {
                cfg_error_key(L->c, w, wp, "duration",
                              "calendar windows must be 1w or 1M, got \"%s\"", dur);
            }
            const cfg_node_t *cal;
            char *cp = spec_xprintf("%s.calendar", wp);
            if (spec_want_map(L, w, wp, "calendar", &cal) > 0) {
                const char *tz = spec_get_str(L, cal, cp, "timeZone", 0);
                if (tz) {
                    free(s->time_zone);
                    s->time_zone = spec_xstrdup(tz);
                }
                const char *st = spec_get_str(L, cal, cp, "startTime", 0);
                if (st) {
                    struct tm tmv = {0};
                    const char *e = strptime(st, "%Y-%m-%d %H:%M:%S", &tmv);
                    if (!e || *e) {
                        cfg_error_key(L->c, cal, cp, "startTime",
                                      "expected \"YYYY-MM-DD HH:MM:SS\", got \"%s\"", st);
                    } else {
                        s->calendar_start_s = (int64_t)timegm(&tmv);
                    }
                }
            } else {
                cfg_error(L->c, w->line, wp,
                          "calendar windows need calendar: {startTime, "
                          "timeZone}");
            }
            free(cp);
        }
        free(wp);
    }

    const char *bm = spec_get_str(L, spec, sp, "budgetingMethod", 1);
    if (bm) {
        if (!strcmp(bm, "Occurrences")) {
            s->budgeting = SLO_BUDGET_OCCURRENCES;
        } else if (!strcmp(bm, "Timeslices")) {
            s->budgeting = SLO_BUDGET_TIMESLICES;
        } else if (!strcmp(bm, "RatioTimeslices")) {
            s->budgeting = SLO_BUDGET_RATIO_TIMESLICES;
        } else {
            cfg_error_key(L->c, spec, sp, "budgetingMethod",
                          "must be Occurrences, Timeslices or RatioTimeslices");
        }
    }

    /* objectives: one (composite SLOs are not supported) */
    const cfg_node_t *objs = cfg_map_get(spec, "objectives");
    const cfg_node_t *obj = NULL;
    char *op = spec_xprintf("%s.objectives[0]", sp);
    if (!objs || objs->kind != CFG_NODE_SEQ || objs->n == 0 ||
        objs->children[0]->kind != CFG_NODE_MAP) {
        cfg_error(L->c, objs ? objs->line : spec->line, sp, "objectives: expected a list of maps");
    } else {
        if (objs->n > 1) {
            cfg_error(L->c, objs->line, sp, "objectives: only one objective per SLO is supported");
        }
        obj = objs->children[0];
        double v;
        int r1 = spec_get_double(L, obj, op, "target", &v);
        if (r1 > 0) {
            if (!(v > 0 && v < 1)) {
                cfg_error_key(L->c, obj, op, "target",
                              "objective %g out of range: target must be in (0, 1)", v);
            } else {
                s->objective = v;
            }
        } else if (r1 == 0) {
            if (spec_get_double(L, obj, op, "targetPercent", &v) > 0) {
                if (!(v > 0 && v < 100)) {
                    cfg_error_key(L->c, obj, op, "targetPercent",
                                  "objective %g out of range: targetPercent must be in (0, 100)",
                                  v);
                } else {
                    s->objective = v / 100.0;
                }
            } else {
                cfg_error(L->c, obj->line, op, "missing target or targetPercent");
            }
        }
        if (s->budgeting != SLO_BUDGET_OCCURRENCES) {
            if (spec_get_dur(L, obj, op, "timeSliceWindow", &s->timeslice_ms) <= 0) {
                cfg_error(L->c, obj->line, op, "%s needs timeSliceWindow",
                          slo_budgeting_name(s->budgeting));
            }
            if (s->budgeting == SLO_BUDGET_TIMESLICES &&
                spec_get_double(L, obj, op, "timeSliceTarget", &s->timeslice_target) <= 0) {
                cfg_error(L->c, obj->line, op, "Timeslices needs timeSliceTarget");
            }
        }
    }

    /* indicator: inline or by reference */
    const cfg_node_t *ind = NULL;
    const char *iref = spec_get_str(L, spec, sp, "indicatorRef", 0);
    char *ip = NULL;
    if (iref) {
        const oslo_doc_t *sd = oslo_find(ol, "SLI", iref);
        if (!sd) {
            cfg_error_key(L->c, spec, sp, "indicatorRef", "no SLI named \"%s\" was loaded", iref);
        } else {
            ind = sd->root;
            ip = spec_xprintf("SLI/%s", iref);
        }
    } else if (spec_want_map(L, spec, sp, "indicator", &ind) <= 0) {
        cfg_error(L->c, spec->line, sp, "missing indicator or indicatorRef");
        ind = NULL;
    } else {
        ip = spec_xprintf("%s.indicator", sp);
    }
    if (ind && obj) {
        const cfg_node_t *isp;
        char *isp_path = spec_xprintf("%s.spec", ip);
        /* An SLI found by reference lives in another document, maybe another file: report
         * its errors there. */
        const char *saved = L->c->file;
        if (iref) {
            const oslo_doc_t *sd = oslo_find(ol, "SLI", iref);
            L->c->file = sd->file;
        }
        if (spec_want_map(L, ind, ip, "spec", &isp) > 0) {
            oslo_sli(L, s, isp, isp_path, obj, op);
        } else {
            cfg_error(L->c, ind->line, ip, "missing spec");
        }
        L->c->file = saved;
        free(isp_path);
    }
    free(ip);

    /* alert policies: each burnrate condition becomes one tier (OpenSLO allows one condition
     * per policy, OpenSLO#218, so MWMBR is several policies). Without any: Sloth defaults. */
    alert_opts_t a = {0};
    a.name = spec_default_alert_name(s);
    const cfg_node_t *aps = cfg_map_get(spec, "alertPolicies");
    if (aps && aps->kind == CFG_NODE_SEQ && aps->n > 0) {
        s->tiers = spec_xmalloc(aps->n * sizeof(slo_tier_t));
        for (size_t i = 0; i < aps->n && i < SLO_MAX_TIERS; i++) {
            const cfg_node_t *apn = aps->children[i];
            char *pp = spec_xprintf("%s.alertPolicies[%zu]", sp, i);
            const cfg_node_t *pol = apn;
            const char *pref = spec_get_str(L, apn, pp, "alertPolicyRef", 0);
            if (pref) {
                const oslo_doc_t *pd = oslo_find(ol, "AlertPolicy", pref);
                if (!pd) {
                    cfg_error_key(L->c, apn, pp, "alertPolicyRef",
                                  "no AlertPolicy named \"%s\" was loaded", pref);
                    free(pp);
                    continue;
                }
                pol = pd->root;
            }
            const cfg_node_t *pspec = cfg_map_get(pol, "spec");
            const cfg_node_t *pmd = cfg_map_get(pol, "metadata");
            const cfg_node_t *conds = cfg_map_get(pspec, "conditions");
            if (!conds || conds->kind != CFG_NODE_SEQ || conds->n != 1) {
                cfg_error(L->c, pol->line, pp, "AlertPolicy needs exactly one condition");
                free(pp);
                continue;
            }
            const cfg_node_t *cn = conds->children[0];
            const char *cref = spec_get_str(L, cn, pp, "conditionRef", 0);
            if (cref) {
                const oslo_doc_t *cd = oslo_find(ol, "AlertCondition", cref);
                if (!cd) {
                    cfg_error_key(L->c, cn, pp, "conditionRef",
                                  "no AlertCondition named \"%s\" was loaded", cref);
                    free(pp);
                    continue;
                }
                cn = cd->root;
            }
            const cfg_node_t *cspec = cfg_map_get(cn, "spec");
            const cfg_node_t *cond = cfg_map_get(cspec, "condition");
            const char *sev = spec_scalar(cfg_map_get(cspec, "severity"));
            if (!cond || cond->kind != CFG_NODE_MAP) {
                cfg_error(L->c, cn->line, pp, "AlertCondition needs spec.condition");
                free(pp);
                continue;
            }
            char *cp = spec_xprintf("%s.condition", pp);
            const char *kind = spec_get_str(L, cond, cp, "kind", 0);
            if (!kind || strcmp(kind, "burnrate") != 0) {
                cfg_error(L->c, cond->line, cp, "only kind: burnrate conditions are supported");
            }
            slo_tier_t *t = &s->tiers[s->ntiers++];
            memset(t, 0, sizeof(*t));
            const char *pname = pmd ? spec_scalar(cfg_map_get(pmd, "name")) : NULL;
            t->name = spec_xstrdup(pname ? pname : "burnrate");
            t->severity = spec_xstrdup(sev ? sev : "page");
            if (spec_get_double(L, cond, cp, "threshold", &t->factor) <= 0) {
                cfg_error(L->c, cond->line, cp, "missing threshold (the burn-rate factor)");
            }
            if (spec_get_dur(L, cond, cp, "lookbackWindow", &t->long_ms) <= 0) {
                cfg_error(L->c, cond->line, cp, "missing lookbackWindow");
            }
            t->short_ms = t->long_ms / 12; /* the workbook's short window */
            spec_get_dur(L, cond, cp, "alertAfter", &t->for_ms);
            t->budget_percent = t->factor * (double)t->long_ms / (double)s->period_ms * 100.0;
            t->enabled = 1;
            spec_tier_finish(s, t, &a, NULL);
            free(cp);
            free(pp);
        }
    } else {
        spec_default_tiers(s, &a);
    }
    spec_alert_opts_free(&a);
    free(op);
out:
    free(sp);
    free(path);
}
