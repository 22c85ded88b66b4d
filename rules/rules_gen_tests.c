/*
 * rules_gen_tests.c - promtool unit tests for the generated rules: label values that satisfy
 * or violate the spec's matchers, input series for a full outage and a healthy run, and the
 * expected alerts. Part of the rules/rules_gen module (rules_gen.c).
 */
#include "model.h"
#include "eval.h"
#include "sb.h"
#include "rules_gen_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------- */
/* promtool unit tests                                                                       */

/* Finds a label value that satisfies (want[i] = 1) or violates (0) each matcher on one label.
 * Regexes make this a search: try the literal values the spec mentions, simple readings of
 * each regex, then common label values. Returns a malloc'd value or NULL. */
static char *pick_value(const slo_matcher_t *const *ms, const int *want, size_t n)
{
    sb_t cand = {0};
    const char *fixed[] = {"meltp_test", "500", "503",  "5xx",   "200", "0",    "1", "error",
                           "ERROR",      "ok",  "true", "false", "GET", "POST", "a", ""};
    /* candidates separated by \x01 */
    for (size_t i = 0; i < n; i++) {
        rg_printf(&cand, "%s\x01", ms[i]->value);
        if (ms[i]->op == SLO_MATCH_RE || ms[i]->op == SLO_MATCH_NRE) {
            /* each alternative, with . -> 0 and regex syntax dropped */
            const char *v = ms[i]->value;
            sb_t alt = {0};
            for (const char *p = v;; p++) {
                if (*p == '|' || !*p) {
                    rg_printf(&cand, "%s\x01", sb_str(&alt));
                    alt.len = 0;
                    if (alt.p) {
                        alt.p[0] = 0;
                    }
                    if (!*p) {
                        break;
                    }
                } else if (*p == '.') {
                    rg_printf(&alt, "0");
                } else if (*p == '\\' && p[1]) {
                    p++;
                    rg_printf(&alt, "%c", *p == 'd' ? '0' : *p);
                } else if (*p == '[' && strchr(p, ']')) {
                    rg_printf(&alt, "%c", p[1] == '^' ? 'z' : p[1]);
                    p = strchr(p + 1, ']');
                } else if (!strchr("()^$*+?{}", *p)) {
                    rg_printf(&alt, "%c", *p);
                }
            }
            sb_fini(&alt);
        }
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(fixed); i++) {
        rg_printf(&cand, "%s\x01", fixed[i]);
    }
    char *res = NULL;
    const char *p = sb_str(&cand);
    while (*p && !res) {
        const char *e = strchr(p, '\x01');
        size_t l = (size_t)(e - p);
        char *c = malloc(l + 1);
        if (!c) {
            break;
        }
        memcpy(c, p, l);
        c[l] = 0;
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            ok = slo_matcher_match(ms[i], c) == want[i];
        }
        if (ok) {
            res = c;
        } else {
            free(c);
        }
        p = e + 1;
    }
    /* the last fixed candidate is "": the loop above stops at the first \x01 of an empty one */
    if (!res) {
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            ok = slo_matcher_match(ms[i], "") == want[i];
        }
        if (ok) {
            res = calloc(1, 1);
        }
    }
    sb_fini(&cand);
    return res;
}

/* Builds a series label set (as PromQL text `metric{a="b",...}`) matching every selector in
 * `match` and violating `nomatch` (if not NULL; it must then share the metric name). Group
 * labels get "g1". Returns 0 or -1 when no value could be found. */
/* Group label values chosen for the test series: "g1", or the value a matcher forced. */
typedef struct {
    char v[SLO_MAX_GROUP_BY][128];
} gvals_t;

static void group_name(char *buf, size_t len, const char *attr)
{
    sb_t b = {0};
    rg_label_name(&b, attr);
    snprintf(buf, len, "%s", sb_str(&b));
    sb_fini(&b);
}

static int series(sb_t *out, const char *metric, const slo_selector_t *const *match, size_t nmatch,
                  const slo_selector_t *nomatch, const slo_spec_t *s, const char *extra,
                  gvals_t *gv)
{
    /* collect label names */
    const char *names[4 * SLO_MAX_MATCHERS];
    size_t nn = 0;
    const slo_selector_t *all[8];
    size_t na = 0;
    for (size_t i = 0; i < nmatch; i++) {
        all[na++] = match[i];
    }
    if (nomatch) {
        all[na++] = nomatch;
    }
    for (size_t i = 0; i < na; i++) {
        for (size_t k = 0; k < all[i]->nm; k++) {
            int dup = 0;
            for (size_t j = 0; j < nn; j++) {
                dup |= !strcmp(names[j], all[i]->m[k].name);
            }
            if (!dup && nn < MT_ARRAY_LEN(names)) {
                names[nn++] = all[i]->m[k].name;
            }
        }
    }
    /* Violating `nomatch`: try each of its matchers as the one to break. */
    size_t tries = nomatch ? nomatch->nm : 1;
    for (size_t brk = 0; brk < tries; brk++) {
        sb_t b = {0};
        int ok = 1;
        rg_printf(&b, "%s{", metric);
        int first = 1;
        for (size_t j = 0; j < nn && ok; j++) {
            const slo_matcher_t *ms[4 * SLO_MAX_MATCHERS];
            int want[4 * SLO_MAX_MATCHERS];
            size_t n = 0;
            for (size_t i = 0; i < na; i++) {
                for (size_t k = 0; k < all[i]->nm; k++) {
                    if (strcmp(all[i]->m[k].name, names[j]) != 0) {
                        continue;
                    }
                    if (all[i] == nomatch) {
                        if (k != brk) {
                            continue;
                        }
                        want[n] = 0;
                    } else {
                        want[n] = 1;
                    }
                    ms[n++] = &all[i]->m[k];
                }
            }
            if (!strcmp(names[j], "__name__")) {
                continue;
            }
            char *v = pick_value(ms, want, n);
            if (!v) {
                ok = 0;
                break;
            }
            if (v[0]) {
                rg_printf(&b, "%s%s=", first ? "" : ",", names[j]);
                rg_pq(&b, v);
                first = 0;
            }
            for (size_t g = 0; g < s->ngroup_by && g < SLO_MAX_GROUP_BY; g++) {
                char gn[128];
                group_name(gn, sizeof(gn), s->group_by[g]);
                if (!strcmp(gn, names[j]) && gv) {
                    snprintf(gv->v[g], sizeof(gv->v[g]), "%s", v);
                }
            }
            free(v);
        }
        if (nomatch && nomatch->nm == 0) {
            ok = 0;
        }
        for (size_t g = 0; g < s->ngroup_by && ok && g < SLO_MAX_GROUP_BY; g++) {
            char gn[128];
            group_name(gn, sizeof(gn), s->group_by[g]);
            int set = 0;
            for (size_t j = 0; j < nn; j++) {
                set |= !strcmp(names[j], gn);
            }
            if (set) {
                continue;
            }
            rg_printf(&b, "%s%s=\"g1\"", first ? "" : ",", gn);
            if (gv) {
                snprintf(gv->v[g], sizeof(gv->v[g]), "g1");
            }
            first = 0;
        }
        if (extra) {
            rg_printf(&b, "%s%s", first ? "" : ",", extra);
        }
        rg_printf(&b, "}");
        if (ok) {
            rg_printf(out, "%s", sb_str(&b));
            sb_fini(&b);
            return 0;
        }
        sb_fini(&b);
    }
    return -1;
}

typedef struct {
    sb_t name[4];
    int bad_in_outage[4]; /* 1: increments during the outage; 0: during healthy traffic */
    int always[4];        /* 1: increments in both (totals) */
    int n;
    gvals_t gv; /* group label values of the first series */
} inputs_t;

/* Input series for one SLO such that "outage" makes every event bad and "healthy" makes every
 * event good. Returns -1 when no series can be built (then the SLO gets no test). */
static int build_inputs(const slo_spec_t *s, inputs_t *in)
{
    const slo_sli_t *q = &s->sli;
    memset(in, 0, sizeof(*in));
    if (q->kind == SLO_SLI_SPANS || q->kind == SLO_SLI_LOGS) {
        slo_selector_t sel = {.metric = (char *)SLO_EVENTS_METRIC};
        const slo_selector_t *m[1] = {&sel};
        sb_t ex = {0};
        rg_printf(&ex, "sloth_id=");
        rg_pq(&ex, s->id);
        size_t base = ex.len;
        rg_printf(&ex, ",event=\"bad\"");
        if (series(&in->name[0], SLO_EVENTS_METRIC, m, 1, NULL, s, sb_str(&ex), &in->gv) != 0) {
            sb_fini(&ex);
            return -1;
        }
        ex.len = base;
        rg_printf(&ex, ",event=\"total\"");
        series(&in->name[1], SLO_EVENTS_METRIC, m, 1, NULL, s, sb_str(&ex), NULL);
        sb_fini(&ex);
        in->bad_in_outage[0] = 1;
        in->always[1] = 1;
        in->n = 2;
        return 0;
    }
    if (q->kind == SLO_SLI_LATENCY) {
        const slo_selector_t *m[1] = {&q->histogram};
        char le[64], name[512];
        snprintf(le, sizeof(le), "le=\"%.15g\"", q->threshold);
        snprintf(name, sizeof(name), "%s_bucket", q->histogram.metric);
        if (!q->histogram.metric || series(&in->name[0], name, m, 1, NULL, s, le, &in->gv) != 0) {
            return -1;
        }
        snprintf(name, sizeof(name), "%s_count", q->histogram.metric);
        series(&in->name[1], name, m, 1, NULL, s, NULL, NULL);
        in->bad_in_outage[0] = 0; /* fast bucket grows only when healthy */
        in->always[1] = 1;
        in->n = 2;
        return 0;
    }
    /* RATIO: the "event" selector is bad (or good) and "total" the denominator */
    const slo_selector_t *ev = q->has_bad ? &q->bad : &q->good;
    int ev_is_bad = q->has_bad;
    const slo_selector_t *tot = q->has_total ? &q->total : NULL;
    if (!ev->metric || (tot && !tot->metric)) {
        return -1;
    }
    if (!tot) {
        /* good + bad: two disjoint counters */
        const slo_selector_t *mb[1] = {&q->bad}, *mg[1] = {&q->good};
        if (series(&in->name[0], q->bad.metric, mb, 1,
                   !strcmp(q->bad.metric, q->good.metric) ? &q->good : NULL, s, NULL,
                   &in->gv) != 0 ||
            series(&in->name[1], q->good.metric, mg, 1,
                   !strcmp(q->bad.metric, q->good.metric) ? &q->bad : NULL, s, NULL, NULL) != 0) {
            return -1;
        }
        in->bad_in_outage[0] = 1;
        in->bad_in_outage[1] = 0;
        in->n = 2;
        return 0;
    }
    if (strcmp(ev->metric, tot->metric) != 0) {
        const slo_selector_t *me[1] = {ev}, *mt[1] = {tot};
        if (series(&in->name[0], ev->metric, me, 1, NULL, s, NULL, &in->gv) != 0 ||
            series(&in->name[1], tot->metric, mt, 1, NULL, s, NULL, NULL) != 0) {
            return -1;
        }
        in->bad_in_outage[0] = ev_is_bad;
        in->always[1] = 1;
        in->n = 2;
        return 0;
    }
    /* same counter: one series inside the event selector, one outside it */
    const slo_selector_t *both[2] = {ev, tot}, *only[1] = {tot};
    if (series(&in->name[0], ev->metric, both, 2, NULL, s, NULL, &in->gv) != 0 ||
        series(&in->name[1], tot->metric, only, 1, ev, s, NULL, NULL) != 0) {
        return -1;
    }
    in->bad_in_outage[0] = ev_is_bad;
    in->bad_in_outage[1] = !ev_is_bad;
    in->n = 2;
    return 0;
}

static void inputs_free(inputs_t *in)
{
    for (int i = 0; i < 4; i++) {
        sb_fini(&in->name[i]);
    }
}

/* Expected label set of an alert: the SLI series labels (identity + spec labels + group
 * labels), then the rule's labels. */
static void exp_alert(sb_t *b, const slo_spec_t *s, const slo_tier_t *t, int tier_label,
                      const gvals_t *gv)
{
    slo_kv_t kv = {0};
    /* built by hand: model.h has no kv API and this is the only place that merges */
    const char *k[128];
    const char *v[128];
    size_t n = 0;
    for (size_t i = 0; i < s->labels.n && n < 128; i++) {
        k[n] = s->labels.keys[i];
        v[n++] = s->labels.vals[i];
    }
    for (size_t i = 0; i < t->labels.n && n < 128; i++) {
        size_t j = 0;
        for (; j < n && strcmp(k[j], t->labels.keys[i]) != 0; j++) {
        }
        k[j] = t->labels.keys[i];
        v[j] = t->labels.vals[i];
        if (j == n) {
            n++;
        }
    }
    (void)kv;
    rg_printf(b, "          - exp_labels:\n");
    rg_yaml_pairs(b, 14, k, v, n);
    for (size_t g = 0; g < s->ngroup_by; g++) {
        rg_printf(b, "              ");
        rg_label_name(b, s->group_by[g]);
        rg_printf(b, ": ");
        rg_yq(b, gv->v[g]);
        rg_printf(b, "\n");
    }
    if (tier_label) {
        rg_printf(b, "              slo_tier: ");
        rg_yq(b, t->name);
        rg_printf(b, "\n");
    }
    rg_printf(b, "            exp_annotations:\n");
    rg_yaml_pairs(b, 14, (const char *const *)t->annotations.keys,
                  (const char *const *)t->annotations.vals, t->annotations.n);
}

static int has_template(const slo_tier_t *t)
{
    for (size_t i = 0; i < t->annotations.n; i++) {
        if (strstr(t->annotations.vals[i], "{{")) {
            return 1;
        }
    }
    for (size_t i = 0; i < t->labels.n; i++) {
        if (strstr(t->labels.vals[i], "{{")) {
            return 1;
        }
    }
    return 0;
}

static void spec_tests(sb_t *b, const slo_spec_t *s)
{
    inputs_t in;
    if (build_inputs(s, &in) != 0) {
        rg_printf(b, "  # %s: no test: could not build input series matching the selectors\n",
                  s->id);
        inputs_free(&in);
        return;
    }
    /* Evaluate once every tier has had its `for`: 10m of outage plus the longest for. */
    int64_t max_for = 0;
    for (size_t i = 0; i < s->ntiers; i++) {
        if (s->tiers[i].enabled && s->tiers[i].for_ms > max_for) {
            max_for = s->tiers[i].for_ms;
        }
    }
    long eval_min = 10 + (long)((max_for + 59999) / 60000);
    /* the engine's data state holds every tier until the period has max(min_events,
     * 1/(1-objective)) events, or closed time slices: with time slices, wait for them */
    uint64_t need = rg_min_period_events(s);
    if (rg_timeslices(s)) {
        long m = (long)(((int64_t)need * rg_slice_ms(s) + 59999) / 60000) + 2 +
                 (long)((max_for + 59999) / 60000);
        eval_min = m > eval_min ? m : eval_min;
        /* the 5m window holds a slice only when it ends on a slice boundary (eval.c keeps
         * closed slices at their start): evaluate on one */
        long sm = (long)((rg_slice_ms(s) + 59999) / 60000);
        eval_min = (eval_min + sm - 1) / sm * sm;
    }
    long samples = eval_min + 5;
    sb_t id = {0};
    rg_ids(&id, s);
    /* events per minute: enough that the minute before eval_time reaches min_events and
     * the period's event count the engine's data state needs */
    double inc = s->min_events > 60 ? (double)s->min_events : 60.0;
    if (!rg_timeslices(s) && (double)need > inc) {
        inc = (double)need;
    }

    for (int mode = 0; mode < 2; mode++) { /* 0 outage, 1 healthy */
        rg_printf(b, "  - name: '%s %s'\n    interval: 1m\n    input_series:\n", s->id,
                  mode == 0 ? "full outage pages" : "healthy fires nothing");
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || (mode == 0 ? in.bad_in_outage[i] : !in.bad_in_outage[i]);
            rg_printf(b, "      - series: ");
            rg_yq(b, sb_str(&in.name[i]));
            rg_printf(b, "\n        values: '0+%.10gx%ld'\n", grows ? inc : 0.0, samples);
        }
        rg_printf(b, "    promql_expr_test:\n      - expr: 'slo:sli_error:ratio_rate5m%s'\n",
                  sb_str(&id));
        rg_printf(b,
                  "        eval_time: %ldm\n        exp_samples:\n          - labels: ", eval_min);
        {
            sb_t l = {0};
            rg_printf(&l, "slo:sli_error:ratio_rate5m{");
            for (size_t i = 0; i < s->labels.n; i++) {
                rg_printf(&l, "%s%s=", i ? ", " : "", s->labels.keys[i]);
                rg_pq(&l, s->labels.vals[i]);
            }
            for (size_t g = 0; g < s->ngroup_by; g++) {
                rg_printf(&l, ", ");
                rg_label_name(&l, s->group_by[g]);
                rg_printf(&l, "=");
                rg_pq(&l, in.gv.v[g]);
            }
            rg_printf(&l, ", sloth_window=\"5m\"}");
            rg_yq(b, sb_str(&l));
            sb_fini(&l);
        }
        rg_printf(b, "\n            value: %d\n", mode == 0 ? 1 : 0);
        if (mode == 1 && s->ngroup_by == 0) {
            rg_printf(b, "      - expr: 'slo:period_error_budget_remaining:ratio%s'\n",
                      sb_str(&id));
            rg_printf(
                b, "        eval_time: %ldm\n        exp_samples:\n          - labels: ", eval_min);
            sb_t l = {0};
            rg_printf(&l, "slo:period_error_budget_remaining:ratio{");
            for (size_t i = 0; i < s->labels.n; i++) {
                rg_printf(&l, "%s%s=", i ? ", " : "", s->labels.keys[i]);
                rg_pq(&l, s->labels.vals[i]);
            }
            char ps[32];
            rg_printf(&l, ", sloth_window=\"%s\"}",
                      s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? "month"
                      : s->period_kind == SLO_PERIOD_CALENDAR_WEEK
                          ? "week"
                          : slo_fmt_duration(s->period_ms, ps, sizeof(ps)));
            rg_yq(b, sb_str(&l));
            sb_fini(&l);
            rg_printf(b, "\n            value: 1\n");
        }
        /* one alert_rule_test per alert name */
        int header = 0;
        for (size_t i = 0; i < s->ntiers; i++) {
            const slo_tier_t *t = &s->tiers[i];
            if (!t->enabled) {
                continue;
            }
            int seen = 0;
            for (size_t j = 0; j < i; j++) {
                seen |= s->tiers[j].enabled && !strcmp(s->tiers[j].alert_name, t->alert_name);
            }
            if (seen) {
                continue;
            }
            int templ = 0;
            for (size_t j = i; j < s->ntiers; j++) {
                if (s->tiers[j].enabled && !strcmp(s->tiers[j].alert_name, t->alert_name)) {
                    templ |= has_template(&s->tiers[j]);
                }
            }
            if (mode == 0 && templ) {
                rg_printf(b, "    # %s: annotations use templates; expected alerts not asserted\n",
                          t->alert_name);
                continue;
            }
            if (!header) {
                rg_printf(b, "    alert_rule_test:\n");
                header = 1;
            }
            rg_printf(b, "      - eval_time: %ldm\n        alertname: %s\n        exp_alerts:",
                      eval_min, t->alert_name);
            if (mode == 1) {
                rg_printf(b, " []\n");
                continue;
            }
            rg_printf(b, "\n");
            /* one expected alert per distinct rule (rg_same_rule group) with this name */
            for (size_t j = i; j < s->ntiers; j++) {
                const slo_tier_t *u = &s->tiers[j];
                if (!u->enabled || strcmp(u->alert_name, t->alert_name) != 0) {
                    continue;
                }
                int dup = 0;
                for (size_t k = i; k < j; k++) {
                    dup |= s->tiers[k].enabled && rg_same_rule(s, &s->tiers[k], u);
                }
                if (!dup) {
                    exp_alert(b, s, u, rg_needs_tier_label(s, j), &in.gv);
                }
            }
        }
    }
    if (s->min_events > 0) {
        /* 100% errors at a trickle: every long window stays below min_events, so no tier
         * fires although the error ratio is 1 */
        double low = (double)s->min_events / (4.0 * (double)samples);
        rg_printf(b,
                  "  - name: '%s low traffic below min_events fires nothing'\n"
                  "    interval: 1m\n    input_series:\n",
                  s->id);
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || in.bad_in_outage[i];
            rg_printf(b, "      - series: ");
            rg_yq(b, sb_str(&in.name[i]));
            rg_printf(b, "\n        values: '0+%.10gx%ld'\n", grows ? low : 0.0, samples);
        }
        rg_printf(b,
                  "    promql_expr_test:\n      - expr: 'max(slo:sli_error:ratio_rate5m%s)'\n"
                  "        eval_time: %ldm\n        exp_samples:\n          - labels: '{}'\n"
                  "            value: 1\n    alert_rule_test:\n",
                  sb_str(&id), eval_min);
        for (size_t i = 0; i < s->ntiers; i++) {
            const slo_tier_t *t = &s->tiers[i];
            int seen = 0;
            for (size_t j = 0; j < i; j++) {
                seen |= s->tiers[j].enabled && !strcmp(s->tiers[j].alert_name, t->alert_name);
            }
            if (t->enabled && !seen) {
                rg_printf(b,
                          "      - eval_time: %ldm\n        alertname: %s\n"
                          "        exp_alerts: []\n",
                          eval_min, t->alert_name);
            }
        }
    }
    if (s->nodata == SLO_NODATA_ALERT) {
        /* events for 10 minutes, then the series disappear: the NoData alert stays quiet
         * until the engine's delay has passed since the last sample, then fires */
        char an[160], aw[32];
        rg_nodata_name(s, an, sizeof(an));
        int64_t after = rg_nodata_after(s);
        long after_min = (long)((after + 59999) / 60000);
        rg_printf(b,
                  "  - name: '%s no data alerts after %s'\n    interval: 1m\n"
                  "    input_series:\n",
                  s->id, slo_fmt_duration(after, aw, sizeof(aw)));
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || !in.bad_in_outage[i];
            rg_printf(b, "      - series: ");
            rg_yq(b, sb_str(&in.name[i]));
            rg_printf(b, "\n        values: '0+%.10gx10'\n", grows ? inc : 0.0);
        }
        rg_printf(b, "    alert_rule_test:\n");
        long quiet[2] = {10, 10 + after_min - 2};
        for (int q = 0; q < 2; q++) {
            if (q == 1 && quiet[1] <= quiet[0]) {
                continue;
            }
            rg_printf(b,
                      "      - eval_time: %ldm\n        alertname: %s\n"
                      "        exp_alerts: []\n",
                      quiet[q], an);
        }
        rg_printf(b,
                  "      - eval_time: %ldm\n        alertname: %s\n        exp_alerts:\n"
                  "          - exp_labels:\n",
                  10 + after_min + 1, an);
        const char *k[160], *v[160];
        size_t n = rg_nodata_labels(s, k, v, MT_ARRAY_LEN(k));
        rg_yaml_pairs(b, 14, k, v, n);
        for (size_t g = 0; g < s->ngroup_by; g++) {
            rg_printf(b, "              ");
            rg_label_name(b, s->group_by[g]);
            rg_printf(b, ": ");
            rg_yq(b, in.gv.v[g]);
            rg_printf(b, "\n");
        }
        sb_t t = {0};
        rg_printf(&t, "%s: no events for %s", s->id, aw);
        rg_printf(b, "            exp_annotations:\n              title: ");
        rg_yq(b, sb_str(&t));
        rg_printf(b, "\n");
        sb_fini(&t);
    }
    sb_fini(&id);
    inputs_free(&in);
}

int slo_rules_tests_write(FILE *f, const slo_set_t *set, const char *rules_file, mt_errbuf_t *eb)
{
    sb_t b = {0};
    rg_printf(&b, "# Generated by meltp slo rules --tests: promtool unit tests for the generated "
                  "rules.\n# Run: promtool test rules THIS_FILE\nrule_files:\n  - ");
    rg_yq(&b, rules_file);
    rg_printf(&b, "\nevaluation_interval: 1m\ntests:\n");
    size_t before = b.len;
    for (size_t i = 0; i < set->n; i++) {
        spec_tests(&b, &set->slos[i]);
    }
    if (b.len == before) {
        rg_printf(&b, "  []\n");
    }
    int rc = MT_OK;
    if (fwrite(sb_str(&b), 1, b.len, f) != b.len) {
        mt_failf(eb, "write failed");
        rc = MT_EIO;
    }
    sb_fini(&b);
    return rc;
}
