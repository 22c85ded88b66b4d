/*
 * spec_native.c - the meltp-native SLO spec dialect: SLI (events or selectors), period and
 * alert tiers read from one YAML document into slo_spec_t. Part of the slo/spec module.
 */
#include "model.h"
#include "spec_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Native format                                                                             */

static int severity_number(const char *s)
{
    static const struct {
        const char *n;
        int v;
    } names[] = {{"TRACE", 1},    {"DEBUG", 5},  {"INFO", 9},   {"WARN", 13},
                 {"WARNING", 13}, {"ERROR", 17}, {"FATAL", 21}, {"CRITICAL", 21}};
    for (size_t i = 0; i < MT_ARRAY_LEN(names); i++) {
        if (!strcasecmp(s, names[i].n)) {
            return names[i].v;
        }
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (end != s && !*end && v >= 1 && v <= 24) {
        return (int)v;
    }
    return 0;
}

static int sel_from_node(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                         slo_selector_t *out)
{
    const char *txt = spec_get_str(L, map, path, key, 0);
    if (!txt) {
        return 0;
    }
    char err[256];
    if (spec_parse_selector(txt, out, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, map, path, key, "%s", err);
        return -1;
    }
    return 1;
}

static void native_sli(ld_t *L, slo_spec_t *s, const cfg_node_t *sli, const char *path,
                       const char *dflt_service)
{
    static const char *const kinds[] = {"ratio", "latency", "spans", "logs", NULL};
    spec_check_keys(L, sli, path, kinds);
    int found = 0;
    for (size_t i = 0; kinds[i]; i++) {
        if (cfg_map_get(sli, kinds[i])) {
            found++;
        }
    }
    if (found != 1) {
        cfg_error(L->c, sli->line, path, "exactly one of ratio, latency, spans, logs is required");
        return;
    }
    const cfg_node_t *m;
    char *p = NULL;
    slo_sli_t *q = &s->sli;
    if (spec_want_map(L, sli, path, "ratio", &m) > 0) {
        p = spec_xprintf("%s.ratio", path);
        static const char *const keys[] = {"good", "bad", "total", NULL};
        spec_check_keys(L, m, p, keys);
        q->kind = SLO_SLI_RATIO;
        q->has_good = sel_from_node(L, m, p, "good", &q->good) > 0;
        q->has_bad = sel_from_node(L, m, p, "bad", &q->bad) > 0;
        q->has_total = sel_from_node(L, m, p, "total", &q->total) > 0;
        if (q->has_good + q->has_bad + q->has_total != 2) {
            cfg_error(L->c, m->line, p, "give exactly two of good, bad, total");
        }
    } else if (spec_want_map(L, sli, path, "latency", &m) > 0) {
        p = spec_xprintf("%s.latency", path);
        static const char *const keys[] = {"histogram", "threshold", NULL};
        spec_check_keys(L, m, p, keys);
        q->kind = SLO_SLI_LATENCY;
        if (sel_from_node(L, m, p, "histogram", &q->histogram) == 0) {
            cfg_error(L->c, m->line, p, "missing required key \"histogram\"");
        }
        if (spec_get_double(L, m, p, "threshold", &q->threshold) == 0) {
            cfg_error(L->c, m->line, p, "missing required key \"threshold\"");
        } else if (!(q->threshold > 0)) {
            cfg_error_key(L->c, m, p, "threshold", "must be > 0");
        }
        /* A selector written with _bucket/_count names the same histogram. */
        if (q->histogram.metric) {
            size_t n = strlen(q->histogram.metric);
            if (n > 7 && !strcmp(q->histogram.metric + n - 7, "_bucket")) {
                q->histogram.metric[n - 7] = 0;
            }
        }
    } else if (spec_want_map(L, sli, path, "spans", &m) > 0) {
        p = spec_xprintf("%s.spans", path);
        static const char *const keys[] = {"service",  "span_name", "route", "type",
                                           "http_5xx", "threshold", NULL};
        spec_check_keys(L, m, p, keys);
        q->kind = SLO_SLI_SPANS;
        const char *svc = spec_get_str(L, m, p, "service", 0);
        q->service = spec_xstrdup(svc ? svc : dflt_service);
        q->span_name = spec_xstrdup(spec_get_str(L, m, p, "span_name", 0));
        q->route = spec_xstrdup(spec_get_str(L, m, p, "route", 0));
        const char *type = spec_get_str(L, m, p, "type", 0);
        int64_t thr = -1;
        spec_get_dur(L, m, p, "threshold", &thr);
        if (!type) {
            type = thr >= 0 ? "latency" : "errors";
        }
        if (!strcmp(type, "errors")) {
            q->spans_mode = SLO_SPANS_ERRORS;
            spec_get_bool(L, m, p, "http_5xx", &q->http_5xx_is_error);
        } else if (!strcmp(type, "latency")) {
            q->spans_mode = SLO_SPANS_LATENCY;
            if (thr <= 0) {
                cfg_error(L->c, m->line, p, "type latency needs a threshold > 0 (e.g. 300ms)");
            }
            q->threshold_ms = (double)thr;
        } else {
            cfg_error_key(L->c, m, p, "type", "must be errors or latency, got \"%s\"", type);
        }
    } else if (spec_want_map(L, sli, path, "logs", &m) > 0) {
        p = spec_xprintf("%s.logs", path);
        static const char *const keys[] = {"service", "min_severity", NULL};
        spec_check_keys(L, m, p, keys);
        q->kind = SLO_SLI_LOGS;
        const char *svc = spec_get_str(L, m, p, "service", 0);
        q->service = spec_xstrdup(svc ? svc : dflt_service);
        const char *sev = spec_get_str(L, m, p, "min_severity", 0);
        q->min_severity = sev ? severity_number(sev) : 17;
        if (!q->min_severity) {
            cfg_error_key(L->c, m, p, "min_severity",
                          "unknown severity \"%s\" (TRACE..FATAL or 1..24)", sev);
        }
    }
    free(p);
}

static void native_period(ld_t *L, slo_spec_t *s, const cfg_node_t *map, const char *path)
{
    const cfg_node_t *n = cfg_map_get(map, "period");
    if (!n || n->kind == CFG_NODE_NULL) {
        return;
    }
    if (n->kind == CFG_NODE_SCALAR) {
        spec_get_dur(L, map, path, "period", &s->period_ms);
        return;
    }
    if (n->kind != CFG_NODE_MAP) {
        cfg_error_key(L->c, map, path, "period", "expected a duration or a map");
        return;
    }
    char *p = spec_xprintf("%s.period", path);
    static const char *const keys[] = {"calendar", "time_zone", "rolling", NULL};
    spec_check_keys(L, n, p, keys);
    const char *cal = spec_get_str(L, n, p, "calendar", 0);
    if (cal) {
        if (!strcmp(cal, "month")) {
            s->period_kind = SLO_PERIOD_CALENDAR_MONTH;
            s->period_ms = 30LL * 86400000;
        } else if (!strcmp(cal, "week")) {
            s->period_kind = SLO_PERIOD_CALENDAR_WEEK;
            s->period_ms = 7LL * 86400000;
        } else {
            cfg_error_key(L->c, n, p, "calendar", "must be month or week, got \"%s\"", cal);
        }
        const char *tz = spec_get_str(L, n, p, "time_zone", 0);
        if (tz) {
            free(s->time_zone);
            s->time_zone = spec_xstrdup(tz);
        }
    } else if (cfg_map_get(n, "rolling")) {
        spec_get_dur(L, n, p, "rolling", &s->period_ms);
    } else {
        cfg_error(L->c, n->line, p, "expected calendar: month|week or rolling: DURATION");
    }
    free(p);
}

static void native_tiers(ld_t *L, slo_spec_t *s, const cfg_node_t *seq, const char *path,
                         const alert_opts_t *a)
{
    if (seq->kind != CFG_NODE_SEQ || seq->n == 0) {
        cfg_error(L->c, seq->line, path, "expected a non-empty list of tiers");
        return;
    }
    if (seq->n > SLO_MAX_TIERS) {
        cfg_error(L->c, seq->line, path, "more than %d tiers", SLO_MAX_TIERS);
        return;
    }
    s->tiers = spec_xmalloc(seq->n * sizeof(slo_tier_t));
    for (size_t i = 0; i < seq->n; i++) {
        const cfg_node_t *m = seq->children[i];
        char *p = spec_xprintf("%s[%zu]", path, i);
        slo_tier_t *t = &s->tiers[s->ntiers++];
        memset(t, 0, sizeof(*t));
        if (m->kind != CFG_NODE_MAP) {
            cfg_error(L->c, m->line, p, "expected a map");
            t->name = spec_xstrdup("?");
            t->severity = spec_xstrdup("page");
            free(p);
            continue;
        }
        static const char *const keys[] = {
            "name", "severity",        "long",    "short",  "factor",      "budget_percent",
            "for",  "keep_firing_for", "disable", "labels", "annotations", NULL};
        spec_check_keys(L, m, p, keys);
        const char *name = spec_get_str(L, m, p, "name", 0);
        const char *sev = spec_get_str(L, m, p, "severity", 0);
        t->severity = spec_xstrdup(sev ? sev : "page");
        t->name = name ? spec_xstrdup(name) : spec_xprintf("%s-%zu", t->severity, i);
        if (spec_get_dur(L, m, p, "long", &t->long_ms) == 0) {
            cfg_error(L->c, m->line, p, "missing required key \"long\"");
        }
        if (spec_get_dur(L, m, p, "short", &t->short_ms) == 0) {
            t->short_ms = t->long_ms / 12; /* the workbook's rule of thumb */
        }
        int hf = spec_get_double(L, m, p, "factor", &t->factor);
        int hp = spec_get_double(L, m, p, "budget_percent", &t->budget_percent);
        if (hf > 0 && hp > 0) {
            cfg_error(L->c, m->line, p, "give factor or budget_percent, not both");
        } else if (hp > 0 && t->long_ms > 0) {
            t->factor = t->budget_percent / 100.0 * (double)s->period_ms / (double)t->long_ms;
        } else if (hf > 0 && t->long_ms > 0) {
            t->budget_percent = t->factor * (double)t->long_ms / (double)s->period_ms * 100.0;
        } else if (hf == 0 && hp == 0) {
            cfg_error(L->c, m->line, p, "missing factor or budget_percent");
        }
        if (hf > 0 && !(t->factor > 0)) {
            cfg_error_key(L->c, m, p, "factor", "must be > 0");
        }
        const sev_opts_t *so = !strcmp(t->severity, "page")     ? &a->page
                               : !strcmp(t->severity, "ticket") ? &a->ticket
                                                                : NULL;
        int dis = so ? so->disable : 0;
        spec_get_bool(L, m, p, "disable", &dis);
        t->enabled = !dis;
        t->for_ms = so ? so->for_ms : 0;
        t->keep_firing_for_ms = so ? so->keep_ms : 0;
        spec_get_dur(L, m, p, "for", &t->for_ms);
        spec_get_dur(L, m, p, "keep_firing_for", &t->keep_firing_for_ms);
        spec_tier_finish(s, t, a, so);
        spec_get_kv(L, m, p, "labels", &t->labels);
        spec_get_kv(L, m, p, "annotations", &t->annotations);
        free(p);
    }
}

void spec_native_doc(ld_t *L, const cfg_node_t *root)
{
    static const char *const top_keys[] = {"version", "service", "labels", "slos", NULL};
    spec_check_keys(L, root, "", top_keys);
    const char *service;
    slo_kv_t svc_labels = {0};
    const cfg_node_t *slos = spec_doc_slos(L, root, &service, &svc_labels);
    if (!slos) {
        return;
    }
    for (size_t i = 0; i < slos->n; i++) {
        char *p;
        const cfg_node_t *m = spec_doc_slo(L, slos, i, &p);
        if (!m) {
            continue;
        }
        static const char *const keys[] = {
            "name",          "description", "objective",  "period",  "budgeting",  "timeslice",
            "sli",           "group_by",    "max_groups", "no_data", "min_events", "runbook_url",
            "dashboard_url", "labels",      "alerting",   NULL};
        spec_check_keys(L, m, p, keys);
        slo_spec_t *s = spec_new(L, SLO_FMT_NATIVE, m->line);
        s->service = spec_xstrdup(service ? service : "");
        s->name = spec_xstrdup(spec_get_str(L, m, p, "name", 1));
        s->description = spec_xstrdup(spec_get_str(L, m, p, "description", 0));
        spec_set_ids(s);
        spec_kv_copy(&s->labels, &svc_labels);
        spec_get_kv(L, m, p, "labels", &s->labels);
        spec_labels_identity_first(s);
        spec_set_objective_pct(L, s, m, p, "objective");
        native_period(L, s, m, p);

        const char *b = spec_get_str(L, m, p, "budgeting", 0);
        if (b) {
            if (!strcasecmp(b, "occurrences")) {
                s->budgeting = SLO_BUDGET_OCCURRENCES;
            } else if (!strcasecmp(b, "timeslices")) {
                s->budgeting = SLO_BUDGET_TIMESLICES;
            } else if (!strcasecmp(b, "ratio_timeslices") || !strcasecmp(b, "ratiotimeslices")) {
                s->budgeting = SLO_BUDGET_RATIO_TIMESLICES;
            } else {
                cfg_error_key(L->c, m, p, "budgeting",
                              "must be occurrences, timeslices or ratio_timeslices");
            }
        }
        const cfg_node_t *ts;
        if (spec_want_map(L, m, p, "timeslice", &ts) > 0) {
            char *tp = spec_xprintf("%s.timeslice", p);
            static const char *const tkeys[] = {"window", "target", NULL};
            spec_check_keys(L, ts, tp, tkeys);
            spec_get_dur(L, ts, tp, "window", &s->timeslice_ms);
            spec_get_double(L, ts, tp, "target", &s->timeslice_target);
            free(tp);
        }
        if (s->budgeting != SLO_BUDGET_OCCURRENCES && s->timeslice_ms <= 0) {
            s->timeslice_ms = 60000;
        }
        if (s->budgeting == SLO_BUDGET_TIMESLICES && s->timeslice_target <= 0) {
            s->timeslice_target = s->objective;
        }

        const cfg_node_t *sli;
        char *sp = spec_xprintf("%s.sli", p);
        if (spec_want_map(L, m, p, "sli", &sli) > 0) {
            native_sli(L, s, sli, sp, s->service);
        } else {
            cfg_error(L->c, m->line, p, "missing required key \"sli\"");
        }
        free(sp);

        spec_get_strlist(L, m, p, "group_by", &s->group_by, &s->ngroup_by);
        double d;
        if (spec_get_double(L, m, p, "max_groups", &d) > 0) {
            if (d < 1 || d != floor(d)) {
                cfg_error_key(L->c, m, p, "max_groups", "must be a positive integer");
            } else {
                s->max_groups = (size_t)d;
            }
        }
        if (spec_get_double(L, m, p, "min_events", &d) > 0) {
            if (d < 0 || d != floor(d)) {
                cfg_error_key(L->c, m, p, "min_events", "must be a non-negative integer");
            } else {
                s->min_events = (uint64_t)d;
            }
        }
        const char *nd = spec_get_str(L, m, p, "no_data", 0);
        if (nd) {
            int k = -1;
            for (int j = 0; j <= SLO_NODATA_ALERT; j++) {
                if (!strcmp(nd, slo_nodata_name((slo_nodata_t)j))) {
                    k = j;
                }
            }
            if (k < 0) {
                cfg_error_key(L->c, m, p, "no_data", "must be good, bad, freeze or alert");
            } else {
                s->nodata = (slo_nodata_t)k;
            }
        }
        s->runbook_url = spec_xstrdup(spec_get_str(L, m, p, "runbook_url", 0));
        s->dashboard_url = spec_xstrdup(spec_get_str(L, m, p, "dashboard_url", 0));

        alert_opts_t a = {0};
        const cfg_node_t *al;
        const cfg_node_t *tiers = NULL;
        char *ap = spec_xprintf("%s.alerting", p);
        if (spec_want_map(L, m, p, "alerting", &al) > 0) {
            static const char *const akeys[] = {"name",   "labels", "annotations", "page",
                                                "ticket", "tiers",  NULL};
            spec_check_keys(L, al, ap, akeys);
            a.name = spec_xstrdup(spec_get_str(L, al, ap, "name", 0));
            spec_get_kv(L, al, ap, "labels", &a.labels);
            spec_get_kv(L, al, ap, "annotations", &a.annotations);
            spec_get_sev_opts(L, al, ap, "page", &a.page, 1);
            spec_get_sev_opts(L, al, ap, "ticket", &a.ticket, 1);
            tiers = cfg_map_get(al, "tiers");
        }
        if (!a.name) {
            a.name = spec_default_alert_name(s);
        }
        if (tiers) {
            char *tp = spec_xprintf("%s.tiers", ap);
            native_tiers(L, s, tiers, tp, &a);
            free(tp);
        } else {
            spec_default_tiers(s, &a);
        }
        free(ap);
        spec_alert_opts_free(&a);
        free(p);
    }
    spec_kv_free(&svc_labels);
}
