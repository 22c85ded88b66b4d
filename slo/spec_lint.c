/*
 * spec_lint.c - lint of loaded SLO specs: names, metric names, selectors, objectives, windows
 * and tiers, reported as FILE:LINE: path: reason. Part of the slo/spec module.
 */
#include "model.h"
#include "spec_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------------------- */
/* Lint                                                                                      */

static int valid_slo_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        int mid = isalnum(c) || c == '-' || c == '_' || c == '.';
        if (!mid || ((i == 0 || i == n - 1) && !isalnum(c))) {
            return 0;
        }
    }
    return 1;
}

static int valid_metric_name(const char *s)
{
    if (!s || !spec_is_name_start((unsigned char)s[0])) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!spec_is_name_char((unsigned char)*p)) {
            return 0;
        }
    }
    return 1;
}

static void lint_selector(cfg_ctx_t *c, const slo_spec_t *s, const slo_selector_t *sel,
                          const char *what)
{
    if (sel->metric && !sel->metric[0]) {
        cfg_error(c, s->line, s->id, "%s selector can match nothing: empty metric name", what);
    }
    int nonempty = sel->metric != NULL;
    for (size_t i = 0; i < sel->nm; i++) {
        const slo_matcher_t *m = &sel->m[i];
        if (!strcmp(m->name, "__name__") && m->op == SLO_MATCH_EQ && !m->value[0]) {
            cfg_error(c, s->line, s->id,
                      "%s selector can match nothing: __name__=\"\" (every series has a name)",
                      what);
        }
        if (!slo_matcher_match(m, "") || m->op == SLO_MATCH_NEQ) {
            nonempty = 1;
        }
    }
    if (!nonempty) {
        cfg_error(c, s->line, s->id,
                  "%s selector must have a metric name or a matcher that does not match the "
                  "empty string",
                  what);
    }
}

void spec_lint_spec(ld_t *L, slo_spec_t *s)
{
    cfg_ctx_t *c = L->c;
    char buf[32], buf2[32];
    if (s->name && !valid_slo_name(s->name)) {
        cfg_error(c, s->line, s->id,
                  "SLO name \"%s\" must match [A-Za-z0-9][-A-Za-z0-9_.]*"
                  "[A-Za-z0-9]",
                  s->name);
    }
    if (s->service && s->service[0] && !valid_slo_name(s->service)) {
        cfg_error(c, s->line, s->id,
                  "service \"%s\" must match [A-Za-z0-9][-A-Za-z0-9_.]*"
                  "[A-Za-z0-9]",
                  s->service);
    }
    if (s->objective <= 0 || s->objective >= 1) {
        return; /* already reported; the checks below divide by the budget */
    }
    const double B = 1.0 - s->objective;
    for (size_t i = 0; i < s->ntiers; i++) {
        const slo_tier_t *t = &s->tiers[i];
        if (!t->enabled) {
            continue;
        }
        if (t->factor * B >= 1.0) {
            cfg_error(c, s->line, s->id,
                      "alert tier %s can never fire: factor %g x (1 - objective) %g = %g >= 1 "
                      "(disable it or lower the factor)",
                      t->name, t->factor, B, t->factor * B);
        }
        if (t->short_ms > t->long_ms) {
            cfg_error(c, s->line, s->id, "alert tier %s: short window %s longer than long %s",
                      t->name, slo_fmt_duration(t->short_ms, buf, sizeof(buf)),
                      slo_fmt_duration(t->long_ms, buf2, sizeof(buf2)));
        }
        if (t->long_ms > s->period_ms) {
            cfg_error(c, s->line, s->id, "alert tier %s: long window %s longer than the period %s",
                      t->name, slo_fmt_duration(t->long_ms, buf, sizeof(buf)),
                      slo_fmt_duration(s->period_ms, buf2, sizeof(buf2)));
        }
        if (L->eval_ms > 0 && t->short_ms < L->eval_ms) {
            cfg_error(c, s->line, s->id,
                      "alert tier %s: window %s is shorter than the evaluation interval %s",
                      t->name, slo_fmt_duration(t->short_ms, buf, sizeof(buf)),
                      slo_fmt_duration(L->eval_ms, buf2, sizeof(buf2)));
        }
        if (!valid_metric_name(t->alert_name)) {
            cfg_error(c, s->line, s->id, "alert name \"%s\" is not a valid Prometheus name",
                      t->alert_name ? t->alert_name : "");
        }
    }
    if (s->budgeting != SLO_BUDGET_OCCURRENCES && L->eval_ms > 0 && s->timeslice_ms > 0 &&
        s->timeslice_ms < L->eval_ms) {
        cfg_error(c, s->line, s->id, "time slice %s is shorter than the evaluation interval %s",
                  slo_fmt_duration(s->timeslice_ms, buf, sizeof(buf)),
                  slo_fmt_duration(L->eval_ms, buf2, sizeof(buf2)));
    }
    if (s->budgeting == SLO_BUDGET_TIMESLICES &&
        !(s->timeslice_target > 0 && s->timeslice_target <= 1)) {
        cfg_error(c, s->line, s->id, "timeslice target %g out of range (0, 1]",
                  s->timeslice_target);
    }
    if (s->period_kind != SLO_PERIOD_ROLLING) {
        char zp[512];
        struct stat st;
        snprintf(zp, sizeof(zp), "/usr/share/zoneinfo/%s", s->time_zone);
        if (strstr(s->time_zone, "..") || s->time_zone[0] == '/' ||
            (stat("/usr/share/zoneinfo", &st) == 0 && stat(zp, &st) != 0)) {
            cfg_error(c, s->line, s->id, "unknown time zone \"%s\"", s->time_zone);
        }
    }
    const slo_sli_t *q = &s->sli;
    if (q->kind == SLO_SLI_RATIO) {
        if (q->has_good) {
            lint_selector(c, s, &q->good, "good");
        }
        if (q->has_bad) {
            lint_selector(c, s, &q->bad, "bad");
        }
        if (q->has_total) {
            lint_selector(c, s, &q->total, "total");
        }
    } else if (q->kind == SLO_SLI_LATENCY) {
        if (q->histogram.metric || q->histogram.nm) {
            lint_selector(c, s, &q->histogram, "histogram");
        }
    } else if (!q->service || !q->service[0]) {
        cfg_error(c, s->line, s->id, "%s SLI needs a service", slo_sli_kind_name(q->kind));
    }
    if (s->ngroup_by > SLO_MAX_GROUP_BY) {
        cfg_error(c, s->line, s->id, "more than %d group_by labels", SLO_MAX_GROUP_BY);
    }
}
