/*
 * rules_gen.c - Prometheus rules equivalent to meltp's in-process SLO evaluation, named as
 * Sloth names them (slo:sli_error:ratio_rate<W>, slo:period_error_budget_remaining:ratio, ...,
 * labels sloth_id/sloth_service/sloth_slo/sloth_window) so existing Sloth dashboards work, plus
 * promtool unit tests that drive a full outage and a healthy series through those rules.
 * Differences from Sloth, on purpose: the period SLI is the exact event ratio over the period
 * (meltp counts events exactly; Sloth's default averages 5m ratios, slok/sloth#241), and tiers
 * carry `for` / `keep_firing_for` when the spec sets them. Engine parity (each checked by
 * tests/integration/test_slo_parity.py against `meltp slo simulate` under promtool):
 *  - the engine's data-state gate: slo:sli_total:count_period and, with min_events,
 *    slo:sli_total:count<long window> gate every tier; with time slice budgeting both count
 *    time slices with events, as eval.c does;
 *  - calendar periods: the period rules count from the local start of the month or ISO week
 *    (rg_calendar_count: hour chunks summed per period class in a subquery, plus the tail since
 *    the last chunk boundary), in the spec's zone (rg_tz_plan: exact for fixed offsets; DST zones
 *    are checked against the zone and get a NOT EXACT comment where the check fails);
 *  - `no_data: alert`: the engine's <name>NoData alert per group, with its start-up grace
 *    (slo:nodata_watch_start:time, a rule that keeps its own first value per group);
 *  - time slice budgeting: every window's error ratio and the calendar period ratio are slice
 *    ratios (bad slices over slices with events, or the mean of the per-slice ratios), from
 *    subqueries at the slice step (rg_slice_ratio, rg_calendar_slices).
 *  - `no_data: bad | freeze | alert` under occurrence budgeting (rg_nd_fill, nd_ratio): window
 *    ratios without events are 1 (bad) or the rule's own previous value (freeze, alert; 0
 *    before one), for every group seen (slo:nodata_watch_start:time); bad fires a tier whose
 *    long window has no events; freeze/alert tiers read only windows with events and a tier
 *    whose long window has none is held. Under time slices freeze/alert do the same with
 *    closed slices with events in place of events (rg_window_events; calendar sums fall back
 *    to 0 per known group: slice_zero).
 *  - the engine's `invalid` data state: slo:sli_invalid:flag per group while some window's
 *    error ratio is outside [0, 1] (occurrence budgeting; the recorded ratios are clamped to
 *    [0, 1] as the engine's are) or more than 10 counter resets fall in the last hour
 *    (resets(), any budgeting); every alert is gated and held on it.
 *  - holds (eval.c slo_alert_step): a held rule returns its own ALERTS series (own_alerts), so
 *    a pending alert matures and a firing one keeps firing; tiers whose own pending /
 *    keep-firing clock or hold matters get a rule each (mergeable).
 *  - no_data: bad under time slices: every empty slice after a group's first slice with events
 *    is a bad slice (slo:first_slice_end:time, rg_slice_n), for rolling and calendar periods.
 * Exactness holds for samples and evaluations aligned to the evaluation interval with
 * Prometheus 2.x range semantics (both ends inclusive), the assumption of the parity tests.
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

void rg_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
    if (b->err) {
        fprintf(stderr, "meltp: out of memory\n");
        exit(1);
    }
}

/* The shortest decimal that reads back as exactly x: thresholds compare like the engine's
 * doubles (1 - 0.999 is 0.0010000000000000009, and 2 x (1 - 0.9) < 0.2). */
const char *rg_rt(double x, char *buf, size_t len)
{
    for (int p = 10; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, x);
        if (strtod(buf, NULL) == x) {
            break;
        }
    }
    return buf;
}

/* dst takes src's text (dst's old text is freed); src is left empty. */
void rg_sb_move(sb_t *dst, sb_t *src)
{
    free(dst->p);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* YAML single-quoted scalar: only ' needs doubling. */
void rg_yq(sb_t *b, const char *s)
{
    rg_printf(b, "'");
    for (; *s; s++) {
        if (*s == '\'') {
            rg_printf(b, "''");
        } else if (*s == '\n') {
            rg_printf(b, " ");
        } else {
            rg_printf(b, "%c", *s);
        }
    }
    rg_printf(b, "'");
}

/* n lines `key: 'value'` indented by ind spaces (labels and annotations blocks). */
void rg_yaml_pairs(sb_t *b, int ind, const char *const *keys, const char *const *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rg_printf(b, "%*s%s: ", ind, "", keys[i]);
        rg_yq(b, vals[i]);
        rg_printf(b, "\n");
    }
}

/* PromQL double-quoted string. */
void rg_pq(sb_t *b, const char *s)
{
    rg_printf(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            rg_printf(b, "\\%c", *s);
        } else if (*s == '\n') {
            rg_printf(b, "\\n");
        } else {
            rg_printf(b, "%c", *s);
        }
    }
    rg_printf(b, "\"");
}

/* Attribute names (http.route) become label names (http_route) the way promconv does. */
void rg_label_name(sb_t *b, const char *s)
{
    if (isdigit((unsigned char)*s)) {
        rg_printf(b, "_");
    }
    for (; *s; s++) {
        rg_printf(b, "%c", isalnum((unsigned char)*s) || *s == '_' ? *s : '_');
    }
}

static const char *OPS[] = {"=", "!=", "=~", "!~"};

void rg_selector(sb_t *b, const slo_selector_t *s, const char *suffix, const char *extra)
{
    rg_printf(b, "%s%s{", s->metric ? s->metric : "", s->metric && suffix ? suffix : "");
    for (size_t i = 0; i < s->nm; i++) {
        rg_printf(b, "%s%s%s", i ? "," : "", s->m[i].name, OPS[s->m[i].op]);
        rg_pq(b, s->m[i].value);
    }
    if (extra) {
        rg_printf(b, "%s%s", s->nm ? "," : "", extra);
    }
    rg_printf(b, "}");
}

void rg_ids(sb_t *b, const slo_spec_t *s)
{
    rg_printf(b, "{sloth_id=");
    rg_pq(b, s->id);
    rg_printf(b, ", sloth_service=");
    rg_pq(b, s->service);
    rg_printf(b, ", sloth_slo=");
    rg_pq(b, s->name);
    rg_printf(b, "}");
}

void rg_by_clause(sb_t *b, const slo_spec_t *s)
{
    if (!s->ngroup_by) {
        return;
    }
    rg_printf(b, " by (");
    for (size_t i = 0; i < s->ngroup_by; i++) {
        if (i) {
            rg_printf(b, ", ");
        }
        rg_label_name(b, s->group_by[i]);
    }
    rg_printf(b, ")");
}

/* sum [by (g)] (FN(SEL[W])) */
void rg_agg_fn(sb_t *b, const slo_spec_t *s, const slo_selector_t *sel, const char *suffix,
               const char *extra, const char *w, const char *fn)
{
    rg_printf(b, "sum");
    rg_by_clause(b, s);
    rg_printf(b, " (%s(", fn);
    rg_selector(b, sel, suffix, extra);
    rg_printf(b, "[%s]))", w);
}

/* sum [by (g)] (rate(SEL[W])) */
static void agg(sb_t *b, const slo_spec_t *s, const slo_selector_t *sel, const char *suffix,
                const char *extra, const char *w)
{
    rg_agg_fn(b, s, sel, suffix, extra, w, "rate");
}

/* Sloth query with {{.window}} (any spacing inside the braces) replaced by w. */
void rg_tpl(sb_t *b, const char *q, const char *w)
{
    while (*q) {
        if (q[0] == '{' && q[1] == '{') {
            const char *e = strstr(q, "}}");
            if (e) {
                const char *k = q + 2;
                while (k < e && isspace((unsigned char)*k)) {
                    k++;
                }
                if (!strncmp(k, ".window", 7)) {
                    rg_printf(b, "%s", w);
                    q = e + 2;
                    continue;
                }
            }
        }
        rg_printf(b, "%c", *q == '\n' ? ' ' : *q);
        q++;
    }
}

static void events_sel(sb_t *b, const slo_spec_t *s, const char *event, const char *w)
{
    slo_selector_t sel = {.metric = (char *)SLO_EVENTS_METRIC};
    sb_t extra = {0};
    rg_printf(&extra, "sloth_id=");
    rg_pq(&extra, s->id);
    rg_printf(&extra, ",event=\"%s\"", event);
    agg(b, s, &sel, NULL, sb_str(&extra), w);
    sb_fini(&extra);
}

/* The error ratio over window w, as one PromQL expression. */
void rg_error_ratio(sb_t *b, const slo_spec_t *s, const char *w)
{
    const slo_sli_t *q = &s->sli;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        rg_printf(b, "(");
        rg_tpl(b, q->error_query, w);
        rg_printf(b, ")\n/\n(");
        rg_tpl(b, q->total_query, w);
        rg_printf(b, ")");
        return;
    }
    switch (q->kind) {
    case SLO_SLI_RATIO:
        if (q->has_bad && q->has_total) {
            rg_printf(b, "(");
            agg(b, s, &q->bad, NULL, NULL, w);
            rg_printf(b, ")\n/\n(");
            agg(b, s, &q->total, NULL, NULL, w);
            rg_printf(b, ")");
        } else if (q->has_good && q->has_total) {
            rg_printf(b, "(");
            agg(b, s, &q->total, NULL, NULL, w);
            rg_printf(b, " - ");
            agg(b, s, &q->good, NULL, NULL, w);
            rg_printf(b, ")\n/\n(");
            agg(b, s, &q->total, NULL, NULL, w);
            rg_printf(b, ")");
        } else {
            /* good + bad: total = good + bad */
            rg_printf(b, "(");
            agg(b, s, &q->bad, NULL, NULL, w);
            rg_printf(b, ")\n/\n(");
            agg(b, s, &q->bad, NULL, NULL, w);
            rg_printf(b, " + ");
            agg(b, s, &q->good, NULL, NULL, w);
            rg_printf(b, ")");
        }
        break;
    case SLO_SLI_LATENCY: {
        char le[64];
        snprintf(le, sizeof(le), "le=\"%.15g\"", q->threshold);
        rg_printf(b, "(");
        agg(b, s, &q->histogram, "_count", NULL, w);
        rg_printf(b, " - ");
        agg(b, s, &q->histogram, "_bucket", le, w);
        rg_printf(b, ")\n/\n(");
        agg(b, s, &q->histogram, "_count", NULL, w);
        rg_printf(b, ")");
        break;
    }
    case SLO_SLI_SPANS:
    case SLO_SLI_LOGS:
        rg_printf(b, "(");
        events_sel(b, s, "bad", w);
        rg_printf(b, ")\n/\n(");
        events_sel(b, s, "total", w);
        rg_printf(b, ")");
        break;
    }
}

/* The total event rate over window w: the denominator of error_ratio. */
void rg_total_rate(sb_t *b, const slo_spec_t *s, const char *w)
{
    const slo_sli_t *q = &s->sli;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        rg_printf(b, "(");
        rg_tpl(b, q->total_query, w);
        rg_printf(b, ")");
        return;
    }
    switch (q->kind) {
    case SLO_SLI_RATIO:
        if (q->has_total) {
            agg(b, s, &q->total, NULL, NULL, w);
        } else {
            rg_printf(b, "(");
            agg(b, s, &q->bad, NULL, NULL, w);
            rg_printf(b, " + ");
            agg(b, s, &q->good, NULL, NULL, w);
            rg_printf(b, ")");
        }
        break;
    case SLO_SLI_LATENCY:
        agg(b, s, &q->histogram, "_count", NULL, w);
        break;
    case SLO_SLI_SPANS:
    case SLO_SLI_LOGS:
        events_sel(b, s, "total", w);
        break;
    }
}

/* The number of events over window w (rate x seconds; a Sloth query written with increase()
 * already counts events). */
static void total_count(sb_t *b, const slo_spec_t *s, const char *w, int64_t w_ms)
{
    const slo_sli_t *q = &s->sli;
    rg_total_rate(b, s, w);
    if (!(s->format == SLO_FMT_SLOTH && q->error_query && q->total_query &&
          strstr(q->total_query, "increase("))) {
        rg_printf(b, " * %lld", (long long)(w_ms / 1000));
    }
}

static void spec_rules(sb_t *b, const slo_spec_t *s)
{
    int64_t w[2 * SLO_MAX_TIERS + 2];
    size_t nw = rg_windows(s, w, MT_ARRAY_LEN(w));
    char ws[32], ps[32];
    slo_fmt_duration(s->period_ms, ps, sizeof(ps));

    tz_plan_t tzp;
    memset(&tzp, 0, sizeof(tzp));
    const char *pk = s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? "month" : "week";
    const char *zone = s->time_zone ? s->time_zone : "UTC";
    /* the tail of a calendar period is summed in steps of the evaluation interval */
    int64_t tail_ms = 60000;
    if (s->period_kind != SLO_PERIOD_ROLLING) {
        rg_tz_plan(s, &tzp);
        if (tzp.chunk_s % 60 != 0) {
            tzp.chunk_s = 3600; /* offsets in seconds: no such zone since 2000, but be safe */
        }
        rg_printf(b,
                  "# %s: calendar %s in %s. The period rules count events from the\n"
                  "# local midnight that starts the %s: whole %llds chunks by period class\n"
                  "# (subqueries), plus the tail since the last chunk boundary in %llds steps.\n",
                  s->id, pk, zone, pk, (long long)tzp.chunk_s, (long long)(tail_ms / 1000));
        if (tzp.problem) {
            rg_printf(b,
                      "# NOT EXACT: %s: %s has DST (offsets %+d s and %+d s) and %s; events\n"
                      "# within %d s of such a period boundary may count in the neighbouring "
                      "period.\n",
                      s->id, zone, (int)tzp.lo, (int)(tzp.lo + tzp.delta), tzp.problem,
                      (int)tzp.delta);
        }
    }
    /* what the engine does with windows without events (eval.c fill_ratios, slo_eval_run,
     * slice_emit) and the rules do not: they see no events as no ratio (0/0) and no alert */
    switch (s->nodata) {
    case SLO_NODATA_GOOD:
        rg_printf(b,
                  "# %s: no_data: good. Windows without events give no ratio and no alert; "
                  "the engine\n# reports ratio 0 there and raises nothing either.\n",
                  s->id);
        break;
    case SLO_NODATA_BAD:
        rg_printf(b,
                  "# %s: no_data: bad. A window without events has error ratio 1 for every "
                  "group seen\n# (slo:nodata_watch_start:time), and a tier whose long window "
                  "has no events fires,\n# as in the engine.%s\n",
                  s->id,
                  rg_timeslices(s) ? " Every empty slice after a group's first slice with "
                                     "events is a bad\n# slice (slo:first_slice_end:time)."
                                   : "");
        break;
    case SLO_NODATA_FREEZE:
    case SLO_NODATA_ALERT:
        rg_printf(b,
                  "# %s: no_data: %s. A window without events keeps the previous "
                  "evaluation's ratio\n# (0 before the group had one), the rule reading its "
                  "own last value; tiers read only\n# windows with events, and a tier whose "
                  "long window has no events is held, as in\n# the engine.\n",
                  s->id, slo_nodata_name(s->nodata));
        break;
    }
    rg_printf(b, "- name: sloth-slo-sli-recordings-%s\n  rules:\n", s->id);
    if (s->nodata == SLO_NODATA_ALERT || rg_nd_fill(s)) {
        /* when the engine started watching each group (its no-data grace; with bad/freeze
         * the groups whose empty windows get a ratio): the first evaluation that saw the
         * group, kept by reading the rule's own last value; first in the group, so that the
         * window ratios below see a group at its first evaluation */
        sb_t e = {0}, i2 = {0};
        rg_ids(&i2, s);
        rg_printf(&e, "slo:nodata_watch_start:time%s\nor", sb_str(&i2));
        if (s->ngroup_by) {
            rg_printf(&e, " ");
            rg_on_groups(&e, s);
            rg_printf(&e, "\n(time() + 0 * ");
            rg_present_expr(&e, s);
            rg_printf(&e, ")");
        } else {
            rg_printf(&e, " on()\nvector(time())");
        }
        rg_record(b, "slo:nodata_watch_start:time", sb_str(&e), &s->labels, NULL);
        sb_fini(&i2);
        sb_fini(&e);
    }
    if (rg_slices_bad(s)) {
        sb_t e = {0};
        rg_first_slice_end(&e, s);
        rg_record(b, "slo:first_slice_end:time", sb_str(&e), &s->labels, NULL);
        sb_fini(&e);
    }
    /* rolling period under time slices: the period's slice count first, so that the period's
     * ratio divides by it instead of counting the period's slices a second time */
    int early_total = rg_timeslices(s) && s->period_kind == SLO_PERIOD_ROLLING;
    const char *pw = s->period_kind == SLO_PERIOD_ROLLING ? ps : pk;
    sb_t den = {0};
    if (early_total) {
        sb_t e = {0};
        rg_period_total(&e, s, &tzp, tail_ms);
        rg_record(b, "slo:sli_total:count_period", sb_str(&e), &s->labels, pw);
        sb_fini(&e);
        rg_printf(&den, "slo:sli_total:count_period");
        rg_ids(&den, s);
    }
    for (size_t i = 0; i < nw; i++) {
        slo_fmt_duration(w[i], ws, sizeof(ws));
        sb_t e = {0};
        if (rg_timeslices(s)) { /* slice ratios, as eval.c under time slices */
            rg_slice_ratio(&e, s, w[i], early_total && w[i] == s->period_ms ? sb_str(&den) : NULL);
        } else {
            rg_error_ratio(&e, s, ws);
            rg_clamp_invalid(&e, s);
        }
        char name[64];
        snprintf(name, sizeof(name), "slo:sli_error:ratio_rate%s", ws);
        rg_record_ratio(b, s, name, ws, sb_str(&e));
        sb_fini(&e);
    }
    /* min_events: event counts (time slices with data, under time slice budgeting) over each
     * long window gate the alerts, as in the engine (eval.c slo_eval_run) */
    for (size_t i = 0; s->min_events > 0 && i < s->ntiers; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++) {
            dup |= s->tiers[j].enabled && s->tiers[j].long_ms == s->tiers[i].long_ms;
        }
        if (!s->tiers[i].enabled || dup) {
            continue;
        }
        slo_fmt_duration(s->tiers[i].long_ms, ws, sizeof(ws));
        sb_t e = {0};
        if (rg_slices_bad(s)) {
            rg_slice_n(&e, s, s->tiers[i].long_ms);
        } else if (rg_timeslices(s)) {
            rg_slice_count(&e, s, s->tiers[i].long_ms);
        } else {
            total_count(&e, s, ws, s->tiers[i].long_ms);
        }
        char name[64];
        snprintf(name, sizeof(name), "slo:sli_total:count%s", ws);
        rg_record(b, name, sb_str(&e), &s->labels, ws);
        sb_fini(&e);
    }

    /* the period: events (slices) for the data-state gate; calendar periods also bad
     * events and the error ratio since the period start */
    sb_fini(&den);
    {
        sb_t e = {0};
        if (!early_total) {
            rg_period_total(&e, s, &tzp, tail_ms);
            rg_record(b, "slo:sli_total:count_period", sb_str(&e), &s->labels, pw);
        }
        if (s->period_kind != SLO_PERIOD_ROLLING && !rg_timeslices(s)) {
            e.len = 0;
            rg_calendar_count(&e, s, &tzp, 1, tail_ms);
            rg_record(b, "slo:sli_bad:count_period", sb_str(&e), &s->labels, pw);
            /* the ratio reads the counts recorded just above (same group, in order) */
            sb_t i2 = {0};
            rg_ids(&i2, s);
            e.len = 0;
            rg_printf(&e, "slo:sli_bad:count_period%s\n/\nslo:sli_total:count_period%s",
                      sb_str(&i2), sb_str(&i2));
            sb_fini(&i2);
            rg_clamp_invalid(&e, s);
            rg_record_ratio(b, s, "slo:sli_error:ratio_period", pw, sb_str(&e));
        } else if (s->period_kind != SLO_PERIOD_ROLLING) {
            /* time slices: count_period counts the closed slices with events in the period;
             * the ratio is over those slices, as eval.c computes it */
            sb_t i2 = {0}, in = {0}, on = {0};
            rg_ids(&i2, s);
            rg_slice_inner(&in, s, SL_BAD);
            rg_on_groups(&on, s);
            e.len = 0;
            rg_calendar_slices(&e, s, &tzp, sb_str(&in), "sum_over_time");
            if (rg_slices_bad(s)) {
                /* no_data: bad: the period's empty slices (counted minus with events) are bad
                 * slices too, each a whole unit */
                sb_t ev = {0}, f = {0};
                rg_slice_inner(&ev, s, SL_EVENTS);
                rg_printf(&f, "(\n%s\n)\n+ %s\n(\n  slo:sli_total:count_period%s\n  - %s\n",
                          sb_str(&e), sb_str(&on), sb_str(&i2), sb_str(&on));
                rg_calendar_slices(&f, s, &tzp, sb_str(&ev), "count_over_time");
                rg_printf(&f, "\n)");
                if (s->budgeting == SLO_BUDGET_RATIO_TIMESLICES) {
                    rg_printf(&f, " * %llu", (unsigned long long)SLO_SLICE_SCALE);
                }
                rg_sb_move(&e, &f);
                sb_fini(&ev);
            }
            if (s->budgeting == SLO_BUDGET_TIMESLICES) {
                rg_record(b, "slo:sli_bad:count_period", sb_str(&e), &s->labels, pw);
                e.len = 0;
                rg_printf(&e, "slo:sli_bad:count_period%s\n/\nslo:sli_total:count_period%s",
                          sb_str(&i2), sb_str(&i2));
                rg_record_ratio(b, s, "slo:sli_error:ratio_period", pw, sb_str(&e));
            } else {
                /* RatioTimeslices: sum of the slice ratios in millionths over slices x 1e6
                 * (eval.c's integer units, so the division is the engine's); the bad count
                 * (the sum of the slice error ratios) follows from it */
                rg_printf(&e, "\n/ %s\n(slo:sli_total:count_period%s * %llu)", sb_str(&on),
                          sb_str(&i2), (unsigned long long)SLO_SLICE_SCALE);
                rg_record_ratio(b, s, "slo:sli_error:ratio_period", pw, sb_str(&e));
                e.len = 0;
                rg_printf(&e, "slo:sli_error:ratio_period%s\n*\nslo:sli_total:count_period%s",
                          sb_str(&i2), sb_str(&i2));
                rg_record(b, "slo:sli_bad:count_period", sb_str(&e), &s->labels, pw);
            }
            sb_fini(&i2);
            sb_fini(&in);
            sb_fini(&on);
        }
        sb_fini(&e);
    }

    sb_t id = {0};
    rg_ids(&id, s);
    sb_t e = {0};
    rg_printf(b, "- name: sloth-slo-meta-recordings-%s\n  rules:\n", s->id);
    rg_printf(&e, "vector(%.10g)", s->objective);
    rg_record(b, "slo:objective:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e, "vector(1-%.10g)", s->objective);
    rg_record(b, "slo:error_budget:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    if (s->period_kind == SLO_PERIOD_CALENDAR_MONTH) {
        rg_printf(&e, "days_in_month(");
        rg_local_vec(&e, &tzp, "time()");
        rg_printf(&e, ")");
    } else {
        rg_printf(&e, "vector(%.10g)", (double)s->period_ms / 86400000.0);
    }
    rg_record(b, "slo:time_period:days", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e,
              "slo:sli_error:ratio_rate5m%s\n/ on(sloth_id, sloth_slo, sloth_service) "
              "group_left\nslo:error_budget:ratio%s",
              sb_str(&id), sb_str(&id));
    rg_record(b, "slo:current_burn_rate:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e,
              "slo:sli_error:ratio_%s%s%s\n/ on(sloth_id, sloth_slo, sloth_service) "
              "group_left\nslo:error_budget:ratio%s",
              s->period_kind == SLO_PERIOD_ROLLING ? "rate" : "",
              s->period_kind == SLO_PERIOD_ROLLING ? ps : "period", sb_str(&id), sb_str(&id));
    rg_record(b, "slo:period_burn_rate:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e, "1 - slo:period_burn_rate:ratio%s", sb_str(&id));
    rg_record(b, "slo:period_error_budget_remaining:ratio", sb_str(&e), &s->labels, NULL);
    if (rg_invalid_flag(s)) {
        /* 1 per group whose data the engine calls invalid: it holds every tier then */
        e.len = 0;
        rg_printf(&e, "max");
        rg_by_clause(&e, s);
        rg_printf(&e, " (\n");
        static const char *const iw[] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};
        for (size_t k = 0; rg_invalid_counts(s) && k < MT_ARRAY_LEN(iw); k++) {
            rg_invalid_term(&e, s, iw[k]);
            rg_printf(&e, "\n  or\n");
        }
        if (!rg_invalid_counts(s)) {
            /* no inconsistent counts possible: the reset storm alone */
        } else if (s->period_kind == SLO_PERIOD_ROLLING) {
            rg_invalid_term(&e, s, ps);
        } else {
            rg_printf(&e,
                      "  max without (sloth_window) (\n    slo:sli_bad:count_period%s > "
                      "slo:sli_total:count_period%s\n    or\n    "
                      "slo:sli_bad:count_period%s < 0\n  )",
                      sb_str(&id), sb_str(&id), sb_str(&id));
        }
        if (rg_invalid_slices(s)) {
            /* a slice with inconsistent counts ended within the last hour */
            char sw[32], rg[32];
            sb_t in = {0};
            rg_ms_dur(rg_slice_ms(s), sw, sizeof(sw));
            rg_ms_dur(SLO_INVALID_SLICE_MS - 1, rg, sizeof(rg));
            rg_slice_inconsistent(&in, s);
            rg_printf(&e, "%s  count_over_time(%s[%s:%s]) > 0",
                      rg_invalid_counts(s) ? "\n  or\n" : "", sb_str(&in), rg, sw);
            sb_fini(&in);
        }
        if (rg_invalid_resets(s)) {
            rg_printf(&e, "%s", rg_invalid_counts(s) || rg_invalid_slices(s) ? "\n  or\n" : "");
            rg_reset_count(&e, s);
        }
        rg_printf(&e, "\n) * 0 + 1");
        rg_record(b, "slo:sli_invalid:flag", sb_str(&e), &s->labels, NULL);
    }
    {
        slo_kv_t info = {0};
        /* sloth_slo_info carries the identity plus mode/spec/objective, as Sloth writes it */
        char obj[32];
        snprintf(obj, sizeof(obj), "%.10g", s->objective * 100);
        const char *keys[] = {"sloth_mode", "sloth_objective", "sloth_spec", "sloth_version"};
        const char *vals[] = {"cli-gen-prom", obj,
                              s->format == SLO_FMT_SLOTH     ? "prometheus/v1"
                              : s->format == SLO_FMT_OPENSLO ? "openslo/v1"
                                                             : "meltp/v1",
                              "meltp-" MELTP_VERSION};
        char *k[4 + 64], *v[4 + 64];
        size_t n = 0;
        for (size_t i = 0; i < s->labels.n && n < 64; i++) {
            k[n] = s->labels.keys[i];
            v[n++] = s->labels.vals[i];
        }
        for (size_t i = 0; i < 4; i++) {
            k[n] = (char *)keys[i];
            v[n++] = (char *)vals[i];
        }
        info.n = n;
        info.keys = k;
        info.vals = v;
        rg_record(b, "sloth_slo_info", "vector(1)", &info, NULL);
    }

    rg_printf(b, "- name: sloth-slo-alerts-%s\n  rules:\n", s->id);
    int any = 0;
    for (size_t i = 0; i < s->ntiers; i++) {
        const slo_tier_t *t = &s->tiers[i];
        if (!t->enabled) {
            continue;
        }
        int first = 1;
        for (size_t j = 0; j < i; j++) {
            if (s->tiers[j].enabled && rg_same_rule(s, &s->tiers[j], t)) {
                first = 0;
            }
        }
        if (!first) {
            continue;
        }
        any = 1;
        e.len = 0;
        int nterm = 0;
        for (size_t j = i; j < s->ntiers; j++) {
            const slo_tier_t *u = &s->tiers[j];
            if (!u->enabled || !rg_same_rule(s, u, t)) {
                continue;
            }
            char sw[32], lw[32], fs[40], bs[40];
            slo_fmt_duration(u->short_ms, sw, sizeof(sw));
            slo_fmt_duration(u->long_ms, lw, sizeof(lw));
            rg_rt(u->factor, fs, sizeof(fs));
            rg_rt(1.0 - s->objective, bs, sizeof(bs));
            rg_printf(&e,
                      "%s(\n    max(slo:sli_error:ratio_rate%s%s > (%s * %s)) without "
                      "(sloth_window)\n    and\n    max(slo:sli_error:ratio_rate%s%s > (%s * "
                      "%s)) without (sloth_window)\n)",
                      nterm ? "\nor\n" : "", sw, sb_str(&id), fs, bs, lw, sb_str(&id), fs, bs);
            e.len -= 2;
            e.p[e.len] = 0;
            if (s->min_events > 0) {
                /* low traffic is not a page: the long window needs min_events events */
                rg_printf(&e,
                          "\n    and\n    max(slo:sli_total:count%s%s >= %llu) without "
                          "(sloth_window)",
                          lw, sb_str(&id), (unsigned long long)s->min_events);
            }
            if (rg_nd_fill(s) && s->nodata != SLO_NODATA_BAD) {
                /* freeze / alert: the recorded ratios keep their last value, but the engine's
                 * tiers read windows without events as ratio 0 (window_ratio): the short
                 * window needs events (then so has the long one, which contains it) */
                rg_printf(&e, "\n    and ");
                rg_on_groups(&e, s);
                rg_printf(&e, "\n    (");
                rg_window_events(&e, s, sw, u->short_ms);
                rg_printf(&e, " > 0)");
            }
            /* the engine's data state: insufficient_data (0 < period count <
             * max(min_events, 1/(1-objective))) holds every tier */
            rg_printf(&e,
                      "\n    and\n    max(slo:sli_total:count_period%s >= %llu or "
                      "slo:sli_total:count_period%s == 0) without (sloth_window)\n)",
                      sb_str(&id), (unsigned long long)rg_min_period_events(s), sb_str(&id));
            if (rg_nd_fill(s) && s->nodata == SLO_NODATA_BAD) {
                /* bad: a long window without events fires the tier, whatever the data state
                 * (eval.c slo_eval_run: cond = 1 before the low-traffic checks) */
                rg_printf(&e,
                          "\nor\n(\n    max(slo:sli_error:ratio_rate%s%s) without "
                          "(sloth_window)\n    unless ",
                          lw, sb_str(&id));
                rg_on_groups(&e, s);
                rg_printf(&e, "\n    (");
                rg_window_events(&e, s, lw, u->long_ms);
                rg_printf(&e, " > 0)\n)");
            }
            nterm++;
        }
        /* the engine's hold (eval.c slo_alert_step, cond -1): an active tier stays active,
         * an inactive one inactive. A held rule returns its own ALERTS series of the previous
         * evaluation, so Prometheus keeps it pending (its `for` still running) or firing */
        int tier_label = rg_needs_tier_label(s, i);
        if (rg_invalid_flag(s)) {
            /* invalid data holds every tier: no tier term counts then */
            sb_t f = {0}, c = {0};
            rg_printf(&f, "(\n%s\n)\nunless ", sb_str(&e));
            rg_on_groups(&f, s);
            rg_printf(&f, "\nslo:sli_invalid:flag%s", sb_str(&id));
            rg_printf(&c, "slo:sli_invalid:flag%s", sb_str(&id));
            rg_hold_term(&f, s, t, tier_label, "and", sb_str(&c));
            rg_sb_move(&e, &f);
            sb_fini(&c);
        }
        if (rg_nd_fill(s) && s->nodata != SLO_NODATA_BAD && !rg_mergeable(s, t)) {
            /* freeze / alert: a tier whose long window has no events is held (a merged rule's
             * tiers are inactive whenever that happens: see mergeable) */
            char lw[32];
            sb_t c = {0};
            slo_fmt_duration(t->long_ms, lw, sizeof(lw));
            rg_printf(&c, "(");
            rg_window_events(&c, s, lw, t->long_ms);
            rg_printf(&c, " > 0)");
            rg_hold_term(&e, s, t, tier_label, "unless", sb_str(&c));
            sb_fini(&c);
        }
        if ((rg_invalid_flag(s) || (rg_nd_fill(s) && s->nodata != SLO_NODATA_BAD)) &&
            rg_labels_use_value(t)) {
            rg_printf(b,
                      "# NOT EQUIVALENT: %s (%s): a label templated on $value renders anew "
                      "while the\n# engine holds the alert, so the held alert is a new one "
                      "to Prometheus.\n",
                      t->alert_name, t->severity);
        }
        rg_printf(b, "  - alert: %s\n    expr: |\n", t->alert_name);
        rg_indent_block(b, sb_str(&e), 6);
        char d[32];
        if (t->for_ms > 0) {
            rg_printf(b, "    for: %s\n", slo_fmt_duration(t->for_ms, d, sizeof(d)));
        }
        if (t->keep_firing_for_ms > 0) {
            rg_printf(b, "    keep_firing_for: %s\n",
                      slo_fmt_duration(t->keep_firing_for_ms, d, sizeof(d)));
        }
        slo_kv_t lab = t->labels;
        rg_labels_block(b, &lab, NULL, 4);
        if (rg_needs_tier_label(s, i)) {
            rg_printf(b, "      slo_tier: ");
            rg_yq(b, t->name);
            rg_printf(b, "\n");
        }
        rg_printf(b, "    annotations:\n");
        rg_yaml_pairs(b, 6, (const char *const *)t->annotations.keys,
                      (const char *const *)t->annotations.vals, t->annotations.n);
    }
    if (s->nodata == SLO_NODATA_ALERT) {
        /* no_data: alert: no event over the engine's delay (absent_over_time of the total
         * counter, or a total that stopped growing) */
        any = 1;
        char an[160], aw[32];
        rg_nodata_name(s, an, sizeof(an));
        slo_fmt_duration(rg_nodata_after(s), aw, sizeof(aw));
        /* per group: watched for at least the delay (the engine's start-up grace), and no
         * event in the last delay (rate() needs two samples of the window to see growth,
         * so an increment whose sample is `after` old no longer counts, as in the engine) */
        e.len = 0;
        rg_printf(&e, "(time() - slo:nodata_watch_start:time%s) >= %lld\nunless on(", sb_str(&id),
                  (long long)(rg_nodata_after(s) / 1000));
        for (size_t g = 0; g < s->ngroup_by; g++) {
            rg_printf(&e, "%s", g ? ", " : "");
            rg_label_name(&e, s->group_by[g]);
        }
        rg_printf(&e, ")\n(");
        rg_total_rate(&e, s, aw);
        rg_printf(&e, " > 0)");
        rg_printf(b, "  - alert: %s\n    expr: |\n", an);
        rg_indent_block(b, sb_str(&e), 6);
        const char *k[160], *v[160];
        size_t n = rg_nodata_labels(s, k, v, MT_ARRAY_LEN(k));
        rg_printf(b, "    labels:\n");
        rg_yaml_pairs(b, 6, k, v, n);
        rg_printf(b, "    annotations:\n      title: ");
        sb_t t = {0};
        rg_printf(&t, "%s: no events for %s", s->id, aw);
        rg_yq(b, sb_str(&t));
        sb_fini(&t);
        rg_printf(b, "\n");
    }
    if (!any) {
        /* promtool rejects a group without rules */
        b->len -= strlen("  rules:\n");
        b->p[b->len] = 0;
        rg_printf(b, "  rules: []\n");
    }
    sb_fini(&e);
    sb_fini(&id);
}

int slo_rules_write(FILE *f, const slo_set_t *set, mt_errbuf_t *eb)
{
    sb_t b = {0};
    rg_printf(&b,
              "# Generated by meltp slo rules (meltp %s) - Sloth-compatible SLO rules.\n"
              "# Do not edit: regenerate from the SLO specs.\ngroups:\n",
              MELTP_VERSION);
    for (size_t i = 0; i < set->n; i++) {
        spec_rules(&b, &set->slos[i]);
    }
    int rc = MT_OK;
    if (fwrite(sb_str(&b), 1, b.len, f) != b.len) {
        mt_failf(eb, "write failed");
        rc = MT_EIO;
    }
    sb_fini(&b);
    return rc;
}
