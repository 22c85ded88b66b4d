/*
 * rules_gen_time.c - event counts, calendar periods (the time zone plan, hour chunks summed
 * per period class) and time slice budgeting (slice ratios, slice counts, calendar slices) as
 * PromQL. Part of the rules/rules_gen module (rules_gen.c).
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
/* Event counts, calendar periods, time slices                                               */

static void events_fn(sb_t *b, const slo_spec_t *s, const char *event, const char *w,
                      const char *fn)
{
    slo_selector_t sel = {.metric = (char *)SLO_EVENTS_METRIC};
    sb_t extra = {0};
    rg_printf(&extra, "sloth_id=");
    rg_pq(&extra, s->id);
    rg_printf(&extra, ",event=\"%s\"", event);
    rg_agg_fn(b, s, &sel, NULL, sb_str(&extra), w, fn);
    sb_fini(&extra);
}

/* The number of bad (bad = 1) or of all events in window w, per group, with increase(): on
 * samples aligned with the window it is the exact difference of the samples at both ends. */
static void count_expr(sb_t *b, const slo_spec_t *s, int bad, const char *w, int64_t w_ms)
{
    const slo_sli_t *q = &s->sli;
    const char *inc = "increase";
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        const char *qq = bad ? q->error_query : q->total_query;
        rg_printf(b, "(");
        rg_tpl(b, qq, w);
        rg_printf(b, ")");
        if (!strstr(qq, "increase(")) {
            rg_printf(b, " * %lld", (long long)(w_ms / 1000));
        }
        return;
    }
    switch (q->kind) {
    case SLO_SLI_RATIO:
        if (bad && q->has_bad) {
            rg_agg_fn(b, s, &q->bad, NULL, NULL, w, inc);
        } else if (bad) { /* good + total: bad = total - good */
            rg_printf(b, "(");
            rg_agg_fn(b, s, &q->total, NULL, NULL, w, inc);
            rg_printf(b, " - ");
            rg_agg_fn(b, s, &q->good, NULL, NULL, w, inc);
            rg_printf(b, ")");
        } else if (q->has_total) {
            rg_agg_fn(b, s, &q->total, NULL, NULL, w, inc);
        } else {
            rg_printf(b, "(");
            rg_agg_fn(b, s, &q->bad, NULL, NULL, w, inc);
            rg_printf(b, " + ");
            rg_agg_fn(b, s, &q->good, NULL, NULL, w, inc);
            rg_printf(b, ")");
        }
        break;
    case SLO_SLI_LATENCY:
        if (bad) {
            char le[64];
            snprintf(le, sizeof(le), "le=\"%.15g\"", q->threshold);
            rg_printf(b, "(");
            rg_agg_fn(b, s, &q->histogram, "_count", NULL, w, inc);
            rg_printf(b, " - ");
            rg_agg_fn(b, s, &q->histogram, "_bucket", le, w, inc);
            rg_printf(b, ")");
        } else {
            rg_agg_fn(b, s, &q->histogram, "_count", NULL, w, inc);
        }
        break;
    case SLO_SLI_SPANS:
    case SLO_SLI_LOGS:
        events_fn(b, s, bad ? "bad" : "total", w, inc);
        break;
    }
}

/* One series per group the engine knows: it creates a group's instance at the first point of
 * any series the SLI reads (engine.c rec_for), baseline samples included. */
void rg_present_expr(sb_t *b, const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    rg_printf(b, "group");
    rg_by_clause(b, s);
    rg_printf(b, " (");
    switch (q->kind) {
    case SLO_SLI_RATIO: {
        const slo_selector_t *sel[3];
        int n = 0;
        if (q->has_total) {
            sel[n++] = &q->total;
        }
        if (q->has_bad) {
            sel[n++] = &q->bad;
        }
        if (q->has_good) {
            sel[n++] = &q->good;
        }
        for (int i = 0; i < n; i++) {
            rg_printf(b, "%s", i ? " or " : "");
            rg_selector(b, sel[i], NULL, NULL);
        }
        break;
    }
    case SLO_SLI_LATENCY:
        rg_selector(b, &q->histogram, "_count", NULL);
        break;
    case SLO_SLI_SPANS:
    case SLO_SLI_LOGS: {
        slo_selector_t sel = {.metric = (char *)SLO_EVENTS_METRIC};
        sb_t extra = {0};
        rg_printf(&extra, "sloth_id=");
        rg_pq(&extra, s->id);
        rg_selector(b, &sel, NULL, sb_str(&extra));
        sb_fini(&extra);
        break;
    }
    }
    rg_printf(b, ")");
}

/* Prometheus durations in milliseconds are exact for any length ("3599999ms"). */
const char *rg_ms_dur(int64_t ms, char *buf, size_t len)
{
    if (ms % 60000 == 0) {
        return slo_fmt_duration(ms, buf, len);
    }
    snprintf(buf, len, "%lldms", (long long)ms);
    return buf;
}

static int32_t tz_off(const slo_tz_t *z, int64_t t)
{
    return slo_tz_offset(z, t);
}

/* UTC instant of local wall time l (as eval.c places period starts). */
static int64_t tz_utc(const slo_tz_t *z, int64_t l)
{
    int64_t u = l - tz_off(z, l);
    return l - tz_off(z, u);
}

static int64_t gcd64(int64_t a, int64_t b)
{
    a = a < 0 ? -a : a;
    b = b < 0 ? -b : b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void rg_tz_plan(const slo_spec_t *s, tz_plan_t *p)
{
    memset(p, 0, sizeof(*p));
    p->chunk_s = 3600;
    p->month_exact = 1;
    slo_tz_t *z = NULL;
    if (s->time_zone && strcmp(s->time_zone, "UTC") != 0 &&
        slo_tz_load(s->time_zone, &z) != MT_OK) {
        p->problem = "the zone file cannot be read here, so UTC is used";
        return;
    }
    /* offsets in force 2010-2069 (every 6 hours catches every transition of real zones) */
    const int64_t from = 1262304000LL, to = 3155760000LL;
    int32_t offs[4];
    int n = 0, many = 0;
    for (int64_t t = from; t < to; t += 6 * 3600) {
        int32_t o = tz_off(z, t);
        int k = 0;
        while (k < n && offs[k] != o) {
            k++;
        }
        if (k == n) {
            if (n == 4) {
                many = 1;
                break;
            }
            offs[n++] = o;
        }
    }
    for (int k = 0; k < n; k++) {
        p->chunk_s = gcd64(p->chunk_s, offs[k]);
    }
    if (p->chunk_s < 60) {
        p->chunk_s = 60;
    }
    p->lo = n ? offs[0] : 0;
    if (n <= 1) {
        slo_tz_free(z);
        return;
    }
    if (n > 2 || many) {
        p->problem = "it has used more than two UTC offsets since 2010";
    }
    p->dst = 1;
    int32_t hi = offs[0];
    for (int k = 1; k < n; k++) {
        p->lo = offs[k] < p->lo ? offs[k] : p->lo;
        hi = offs[k] > hi ? offs[k] : hi;
    }
    p->delta = hi - p->lo;
    /* the offset at local midnight of the 1st of month m + 1 says how month m ends */
    for (int m = 1; m <= 12; m++) {
        struct tm tm = {0};
        tm.tm_year = 2030 - 1900 + (m == 12);
        tm.tm_mon = m % 12;
        tm.tm_mday = 1;
        p->dst_end_month[m] = tz_off(z, tz_utc(z, (int64_t)timegm(&tm))) == hi;
    }
    /* then check the PromQL reading against the zone around every period boundary of
     * 2010-2069, minute by minute: the period of each instant must come out the same */
    int week = s->period_kind == SLO_PERIOD_CALENDAR_WEEK, bad = 0;
    for (int y = 2010; y < 2070 && !bad; y++) {
        for (int k = 0; k < (week ? 53 : 12) && !bad; k++) {
            struct tm tm = {0};
            tm.tm_year = y - 1900;
            tm.tm_mon = week ? 0 : k;
            tm.tm_mday = 1 + (week ? 7 * k : 0);
            int64_t l = (int64_t)timegm(&tm);
            if (week) { /* the Monday of that week */
                int64_t days = l / 86400;
                l = (days - ((days + 3) % 7)) * 86400;
            }
            int64_t bd = tz_utc(z, l);
            for (int64_t t = bd - p->delta - 7200; t <= bd + p->delta + 7200; t += 60) {
                int64_t tl = t + tz_off(z, t), pl;
                time_t tt = (time_t)(t + p->lo);
                struct tm g;
                gmtime_r(&tt, &g);
                pl = t + p->lo + (p->dst_end_month[g.tm_mon + 1] ? p->delta : 0);
                if (week) {
                    bad |= (tl + 259200) / 604800 != (pl + 259200) / 604800;
                } else {
                    time_t a1 = (time_t)tl, a2 = (time_t)pl;
                    struct tm m1, m2;
                    gmtime_r(&a1, &m1);
                    gmtime_r(&a2, &m2);
                    bad |= m1.tm_mon != m2.tm_mon;
                }
            }
        }
    }
    int runs = 0, n1 = 0;
    for (int m = 1; m <= 12; m++) {
        runs += p->dst_end_month[m] && !p->dst_end_month[m == 1 ? 12 : m - 1];
        n1 += p->dst_end_month[m];
    }
    if ((runs != 1 && n1 != 0) || bad) {
        p->month_exact = 0;
        if (!p->problem) {
            p->problem = week ? "a week boundary falls in a month with a DST change before "
                                "that change (the offset is the one at the month's end)"
                              : "a DST change falls within the offset change of a month "
                                "boundary";
        }
    }
    slo_tz_free(z);
}

/* Local time as a one-element vector for the PromQL scalar expression `t`. */
void rg_local_vec(sb_t *b, const tz_plan_t *p, const char *t)
{
    if (!p->dst) {
        if (p->lo) {
            rg_printf(b, "vector(%s + %d)", t, (int)p->lo);
        } else {
            rg_printf(b, "vector(%s)", t);
        }
        return;
    }
    /* no scalar() and no number on the left of `*`: Prometheus 2.42 refuses both inside a
     * subquery here ("would load too many samples") */
    rg_printf(b, "(vector(%s + %d) + (", t, (int)p->lo);
    /* the DST months form a circular range (or its complement does): one month() call */
    int a = 0, n = 0;
    for (int m = 1; m <= 12; m++) {
        n += p->dst_end_month[m];
        if (p->dst_end_month[m] && !p->dst_end_month[m == 1 ? 12 : m - 1]) {
            a = m;
        }
    }
    int runs = 0;
    for (int m = 1; m <= 12; m++) {
        runs += p->dst_end_month[m] && !p->dst_end_month[m == 1 ? 12 : m - 1];
    }
    int inv = 0;
    if (runs == 1 && a + n - 1 > 12) { /* wraps: use the complement, which does not */
        inv = 1;
        a = (a + n - 1) % 12 + 1;
        n = 12 - n;
    }
    if (runs != 1 || n == 0) {
        rg_printf(b, "vector(0)"); /* not a range: rg_tz_plan reports it as not exact */
    } else {
        rg_printf(b, "%s(abs(month(vector(%s + %d)) - %.1f) <= bool %.1f)", inv ? "1 - " : "", t,
                  (int)p->lo, a + (n - 1) / 2.0, (n - 1) / 2.0);
    }
    rg_printf(b, ") * %d)", (int)p->delta);
}

/* The period class of the instant `t` (0, 1, 2): month number or ISO week number mod 3. A
 * sum window of 32 days (8 for weeks) reaches at most three periods, so the classes tell
 * them apart. */
static void period_class(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, const char *t)
{
    if (s->period_kind == SLO_PERIOD_CALENDAR_MONTH) {
        rg_printf(b, "month(");
        rg_local_vec(b, p, t);
        rg_printf(b, ") %% 3");
    } else {
        /* 1970-01-05 was a Monday: weeks start at 4 days + k x 7 days of local time */
        rg_printf(b, "floor((");
        rg_local_vec(b, p, t);
        rg_printf(b, " + 259200) / 604800) %% 3");
    }
}

/* Sum (fn = sum_over_time) or count (count_over_time) of `inner`, evaluated at every multiple
 * of step_s over the last range_s, for the steps whose chunk (t - step, t] lies in the current
 * calendar period: one subquery per period class, the current class picked at time(). */
static void calendar_over(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, const char *inner,
                          int64_t step_s, int64_t range_s, const char *fn, int64_t piece_steps,
                          const char *zero)
{
    char st[32], rg[32], of[32], tm[48];
    rg_ms_dur(step_s * 1000, st, sizeof(st));
    snprintf(tm, sizeof(tm), "time() - %lld", (long long)step_s);
    /* an inner expression with its own subquery is evaluated over the whole range at once:
     * with piece_steps > 0 the range is summed from pieces of at most that many steps (with
     * offsets, each `or zero`), for promtool's 10000-sample limit */
    int many = piece_steps > 0 && range_s >= piece_steps * step_s;
    int64_t plen = many ? (piece_steps - 1) * step_s : range_s;
    rg_printf(b, "(");
    for (int k = 0; k < 3; k++) {
        rg_printf(b, "%s(\n  (", k ? "\nor\n" : "");
        int n = 0;
        for (int64_t off = 0; off <= range_s; n++) {
            int64_t len = range_s - off < plen ? range_s - off : plen;
            rg_ms_dur((len > 0 ? len : 1) * 1000, rg, sizeof(rg));
            rg_printf(b, "%s%s%s((\n    %s\n    and on() (", n ? "\n  +\n  " : "", many ? "(" : "",
                      fn, inner);
            period_class(b, s, p, tm);
            rg_printf(b, " == %d)\n  )[%s:%s]", k, rg, st);
            if (off) {
                rg_printf(b, " offset %s", rg_ms_dur(off * 1000, of, sizeof(of)));
            }
            rg_printf(b, ")");
            if (many) {
                rg_printf(b, " or %s)", zero);
            }
            if (!many) {
                break;
            }
            off += len + step_s;
        }
        rg_printf(b, ")\n  and on() (");
        period_class(b, s, p, "time()");
        rg_printf(b, " == %d)\n)", k);
    }
    rg_printf(b, ")");
}

/* Events (bad = 1) or all events since the start of the current calendar period: whole chunks
 * (1h, or 30m/15m for zones offset by half or quarter hours) from the period start to the
 * last chunk boundary, plus the tail since that boundary in steps of the evaluation interval
 * (class = chunk number mod 2). Exact against the engine when samples and evaluations are
 * aligned to the evaluation interval (Prometheus 2.x ranges include both ends, so adjacent
 * increase() windows share their boundary samples and add up without extrapolation). */
void rg_calendar_count(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, int bad, int64_t tail_ms)
{
    int64_t c = p->chunk_s;
    char cs[32], ts[32], rg[32];
    rg_ms_dur(c * 1000, cs, sizeof(cs));
    rg_ms_dur(tail_ms, ts, sizeof(ts));
    rg_ms_dur(c * 1000 - 1, rg, sizeof(rg));
    int64_t range = s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? 32 * 86400 : 8 * 86400;
    sb_t in = {0}, zero = {0};
    count_expr(&in, s, bad, cs, c * 1000);
    rg_printf(&zero, "0 * ");
    count_expr(&zero, s, 0, cs, c * 1000);
    rg_printf(b, "(\n");
    calendar_over(b, s, p, sb_str(&in), c, range, "sum_over_time", 0, NULL);
    rg_printf(b, "\nor\n%s\n)\n+\n(\n", sb_str(&zero));
    in.len = 0;
    count_expr(&in, s, bad, ts, tail_ms);
    for (int k = 0; k < 2; k++) {
        rg_printf(b,
                  "%s(\n  sum_over_time((\n    %s\n    and on() (floor(vector((time() - %lld) / "
                  "%lld)) %% 2 == %d)\n  )[%s:%s])\n  and on() (floor(vector(time() / %lld)) "
                  "%% 2 == %d)\n)",
                  k ? "\nor\n" : "", sb_str(&in), (long long)(tail_ms / 1000), (long long)c, k, rg,
                  ts, (long long)c, k);
    }
    rg_printf(b, "\nor\n%s\n)", sb_str(&zero));
    sb_fini(&in);
    sb_fini(&zero);
}

int rg_timeslices(const slo_spec_t *s)
{
    return s->budgeting != SLO_BUDGET_OCCURRENCES;
}

int64_t rg_slice_ms(const slo_spec_t *s)
{
    return s->timeslice_ms > 0 ? s->timeslice_ms : 60000;
}

/* The number of good events in window w: the good counter where the SLI has one (fewer
 * selectors in the slice subqueries), else total - bad; exact integers either way. */
static void good_count(sb_t *b, const slo_spec_t *s, const char *w, int64_t w_ms)
{
    const slo_sli_t *q = &s->sli;
    int sloth = s->format == SLO_FMT_SLOTH && q->error_query && q->total_query;
    if (!sloth && q->kind == SLO_SLI_RATIO && q->has_good) {
        rg_agg_fn(b, s, &q->good, NULL, NULL, w, "increase");
    } else if (!sloth && q->kind == SLO_SLI_LATENCY) {
        char le[64];
        snprintf(le, sizeof(le), "le=\"%.15g\"", q->threshold);
        rg_agg_fn(b, s, &q->histogram, "_bucket", le, w, "increase");
    } else {
        rg_printf(b, "(");
        count_expr(b, s, 0, w, w_ms);
        rg_printf(b, " - ");
        count_expr(b, s, 1, w, w_ms);
        rg_printf(b, ")");
    }
}

/* Whether an SLI's counts can be inconsistent (more good, or bad, events than events in
 * total): a total counter beside a good or bad one, a histogram, Sloth queries. */
int rg_can_be_inconsistent(const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        return 1;
    }
    return (q->kind == SLO_SLI_RATIO && q->has_total) || q->kind == SLO_SLI_LATENCY;
}

/* Time slice budgeting with such an SLI: eval.c slice_emit counts an inconsistent slice as a
 * whole good (bad) slice (as empty without events in total) and calls the data invalid for
 * the hour after it. */
int rg_invalid_slices(const slo_spec_t *s)
{
    return rg_timeslices(s) && rg_can_be_inconsistent(s);
}

/* An inconsistent slice, evaluated at its end: bad events below 0 (more good than total) or
 * above the total. */
void rg_slice_inconsistent(sb_t *b, const slo_spec_t *s)
{
    char sw[32];
    int64_t w = rg_slice_ms(s);
    rg_ms_dur(w, sw, sizeof(sw));
    rg_printf(b, "(");
    count_expr(b, s, 1, sw, w);
    rg_printf(b, " < 0 or ");
    count_expr(b, s, 1, sw, w);
    rg_printf(b, " > ");
    count_expr(b, s, 0, sw, w);
    rg_printf(b, ")");
}

void rg_slice_inner(sb_t *b, const slo_spec_t *s, int what)
{
    char sw[32], tg[40];
    int64_t w = rg_slice_ms(s);
    rg_ms_dur(w, sw, sizeof(sw));
    if (what == SL_EVENTS) {
        rg_printf(b, "(");
        count_expr(b, s, 0, sw, w);
        rg_printf(b, " > 0)");
    } else if (s->budgeting == SLO_BUDGET_RATIO_TIMESLICES && rg_invalid_slices(s)) {
        /* an inconsistent slice's ratio is clamped to 0 or 1 */
        rg_printf(b, "clamp(round((");
        count_expr(b, s, 1, sw, w);
        rg_printf(b, ") / (");
        count_expr(b, s, 0, sw, w);
        rg_printf(b, " > 0) * %llu), 0, %llu)", (unsigned long long)SLO_SLICE_SCALE,
                  (unsigned long long)SLO_SLICE_SCALE);
    } else if (s->budgeting == SLO_BUDGET_RATIO_TIMESLICES) {
        rg_printf(b, "round((");
        count_expr(b, s, 1, sw, w);
        rg_printf(b, ") / (");
        count_expr(b, s, 0, sw, w);
        rg_printf(b, " > 0) * %llu)", (unsigned long long)SLO_SLICE_SCALE);
    } else {
        /* the number stays on the right of `*` (see rg_local_vec) */
        double target = s->timeslice_target > 0 ? s->timeslice_target : s->objective;
        rg_printf(b, "(");
        good_count(b, s, sw, w);
        rg_printf(b, " < bool (");
        count_expr(b, s, 0, sw, w);
        rg_printf(b, " * %s))", rg_rt(target, tg, sizeof(tg)));
    }
}

/* fn (count_over_time or sum_over_time) of `inner` over the time slices the engine's window
 * [now - w_ms, now] holds: its store keeps a closed slice at the slice's start, so the window
 * holds the slices that start at or after now - w_ms and have ended by now, i.e. whose end lies
 * in [now - w_ms + slice, now]: a subquery [w_ms - slice:slice]. (Exact for windows summed
 * from minute buckets, up to 6h; longer windows sum 10-minute or hour buckets, exact at
 * evaluations aligned to those, as for event counts.) A subquery of more than a few thousand
 * steps exceeds promtool's 10000-sample limit: long windows are summed from pieces of at most
 * SLICE_PIECE steps (with offsets), each `or 0` (`zero`) so that an empty piece adds 0. */
static void slice_over(sb_t *b, const slo_spec_t *s, const char *inner, const char *fn,
                       int64_t w_ms)
{
    enum { SLICE_PIECE = 1200 };
    int64_t w = rg_slice_ms(s), span = w_ms - w; /* slice ends in [now - span, now] */
    char sw[32], rg[32], of[32];
    rg_ms_dur(w, sw, sizeof(sw));
    if (span < 0) {
        /* a window shorter than a slice never holds a closed slice: no value, as the engine's
         * window has no slices (the expression keeps the rule's type and selectors) */
        rg_printf(b, "(%s((\n  %s\n)[1ms:%s]) and on() (vector(1) < 0))", fn, inner, sw);
        return;
    }
    /* pieces: each tagged with its own slo_piece label, then summed per group, so that the
     * sum has a value whenever any piece has one (a group silent now still has its older
     * slices; a `+` of the pieces would need a zero that exists then) */
    int many = span >= (int64_t)SLICE_PIECE * w;
    int n = 0;
    if (many) {
        rg_printf(b, "sum");
        rg_by_clause(b, s);
        rg_printf(b, " (\n");
    }
    for (int64_t off = 0; off <= span; n++) {
        int64_t len = span - off < (SLICE_PIECE - 1) * w ? span - off : (SLICE_PIECE - 1) * w;
        /* a zero range would not parse: 1ms holds the same single step on aligned times */
        rg_ms_dur(len > 0 ? len : 1, rg, sizeof(rg));
        rg_printf(b, "%s%s%s(", n ? "\nor\n" : "", many ? "label_replace(" : "", fn);
        rg_printf(b, "(\n  %s\n)[%s:%s]", inner, rg, sw);
        if (off) {
            rg_printf(b, " offset %s", rg_ms_dur(off, of, sizeof(of)));
        }
        rg_printf(b, ")");
        if (many) {
            rg_printf(b, ", \"slo_piece\", \"%d\", \"\", \"\")", n);
        }
        off += len + w;
    }
    if (many) {
        rg_printf(b, "\n)");
    }
}

/* Time slices with events in the last w_ms, as the engine counts them for min_events and the
 * data state (eval.c: with time slices the store holds one unit per closed slice with data). */
void rg_slice_count(sb_t *b, const slo_spec_t *s, int64_t w_ms)
{
    sb_t in = {0};
    rg_slice_inner(&in, s, SL_EVENTS);
    rg_printf(b, "(");
    slice_over(b, s, sb_str(&in), "count_over_time", w_ms);
    rg_printf(b, ")");
    sb_fini(&in);
}

/* no_data: bad under time slice budgeting (eval.c close_upto): from a group's first slice with
 * events on, every closed slice counts, an empty one as a bad slice. */
int rg_slices_bad(const slo_spec_t *s)
{
    return rg_timeslices(s) && s->nodata == SLO_NODATA_BAD;
}

/* rg_slices_bad: the slices the engine counts in the last w_ms, per group: min(w / slice, the
 * slices since the end of the group's first slice with events + 1), from
 * slo:first_slice_end:time (recorded first); 0 for a window shorter than a slice. */
void rg_slice_n(sb_t *b, const slo_spec_t *s, int64_t w_ms)
{
    sb_t id = {0};
    rg_ids(&id, s);
    int64_t w = rg_slice_ms(s);
    rg_printf(b, "sum");
    rg_by_clause(b, s);
    /* slice ends in [now - w_ms + slice, now] (slice_over): w_ms / slice of them when now is
     * on a slice boundary, one fewer between boundaries */
    long long ws = (long long)(w / 1000), wl = (long long)(w_ms / 1000);
    rg_printf(b,
              " (clamp_max(floor((time() - slo:first_slice_end:time%s) / %lld) + 1, "
              "scalar(clamp_min(floor(vector(time() / %lld)) - ceil(vector((time() - %lld) / "
              "%lld)) + 1, 0))))",
              sb_str(&id), ws, ws, wl - ws, ws);
    sb_fini(&id);
}

/* rg_slices_bad with a calendar period: rg_slice_n over the period, at most the slices since the
 * local start of the month or ISO week (whole seconds of local time since then, from
 * day_of_month or the week number's remainder; offsets keep the remainders positive). */
static void slice_n_calendar(sb_t *b, const slo_spec_t *s, const tz_plan_t *p)
{
    sb_t id = {0};
    rg_ids(&id, s);
    int64_t w = rg_slice_ms(s) / 1000;
    rg_printf(b, "clamp_max(\nsum");
    rg_by_clause(b, s);
    rg_printf(b, " (floor((time() - slo:first_slice_end:time%s) / %lld) + 1),\nscalar(floor((",
              sb_str(&id), (long long)w);
    if (s->period_kind == SLO_PERIOD_CALENDAR_MONTH) {
        rg_printf(b, "(day_of_month(");
        rg_local_vec(b, p, "time()");
        rg_printf(b, ") - 1) * 86400 + (");
        rg_local_vec(b, p, "time()");
        rg_printf(b, " + 864000000) %% 86400");
    } else {
        /* 1970-01-05 was a Monday (period_class) */
        rg_printf(b, "(");
        rg_local_vec(b, p, "time()");
        rg_printf(b, " + 259200 + 604800000) %% 604800");
    }
    rg_printf(b, ") / %lld))\n)", (long long)w);
    sb_fini(&id);
}

/* rg_slices_bad: the end of each group's first slice with events (the engine walks every slice
 * from there), kept by reading the rule's own last value; else the earliest slice end with
 * events among the last few (a lookback of at least 5m, so no evaluation interval misses one). */
void rg_first_slice_end(sb_t *b, const slo_spec_t *s)
{
    sb_t id = {0}, in = {0};
    rg_ids(&id, s);
    int64_t w = rg_slice_ms(s), r = w > 300000 ? w : 300000;
    char sw[32], rg[32];
    rg_ms_dur(w, sw, sizeof(sw));
    rg_ms_dur(r, rg, sizeof(rg));
    rg_slice_inner(&in, s, SL_EVENTS);
    rg_printf(b, "slo:first_slice_end:time%s\nor ", sb_str(&id));
    rg_on_groups(b, s);
    rg_printf(b, "\nmin_over_time((\n  time() + 0 * %s\n)[%s:%s])", sb_str(&in), rg, sw);
    sb_fini(&id);
    sb_fini(&in);
}

/* The engine's error ratio over the last w_ms under time slice budgeting: bad slices over
 * slices with events (Timeslices), or the sum of the per-slice error ratios in millionths over
 * slices with events x 1e6 (RatioTimeslices: the mean of the slice ratios, divided in the
 * same integer units as eval.c). No slice with events gives no value (0/0), as the
 * Occurrences rules give none without events. */
void rg_slice_ratio(sb_t *b, const slo_spec_t *s, int64_t w_ms, const char *den)
{
    sb_t in = {0}, cnt = {0};
    rg_slice_inner(&in, s, SL_BAD);
    if (rg_slices_bad(s)) {
        /* (bad slices with events + empty slices) / slices counted, each empty slice a whole
         * bad unit; no slice with events in the window: no sum, so `or 0` per counted group */
        int ratio = s->budgeting == SLO_BUDGET_RATIO_TIMESLICES;
        sb_t n = {0}, ev = {0};
        rg_slice_n(&n, s, w_ms);
        rg_slice_inner(&ev, s, SL_EVENTS);
        rg_printf(b, "(\n(\n");
        slice_over(b, s, sb_str(&in), "sum_over_time", w_ms);
        rg_printf(b, "\nor ");
        rg_on_groups(b, s);
        rg_printf(b, " 0 * %s\n)\n+\n(\n%s\n-\n(\n", sb_str(&n), sb_str(&n));
        slice_over(b, s, sb_str(&ev), "count_over_time", w_ms);
        rg_printf(b, "\nor ");
        rg_on_groups(b, s);
        rg_printf(b, " 0 * %s\n)\n)", sb_str(&n));
        if (ratio) {
            rg_printf(b, " * %llu", (unsigned long long)SLO_SLICE_SCALE);
        }
        rg_printf(b, "\n)\n/\n(%s", sb_str(&n));
        if (ratio) {
            rg_printf(b, " * %llu", (unsigned long long)SLO_SLICE_SCALE);
        }
        rg_printf(b, ")");
        sb_fini(&n);
        sb_fini(&ev);
        sb_fini(&in);
        return;
    }
    rg_printf(b, "(\n");
    slice_over(b, s, sb_str(&in), "sum_over_time", w_ms);
    rg_printf(b, "\n)\n/");
    if (den) { /* the slice count recorded already (the rolling period's count_period) */
        rg_printf(b, " on(");
        for (size_t g = 0; g < s->ngroup_by; g++) {
            rg_printf(b, "%s", g ? ", " : "");
            rg_label_name(b, s->group_by[g]);
        }
        rg_printf(b, ")");
        rg_printf(&cnt, "%s", den);
    } else {
        rg_slice_count(&cnt, s, w_ms);
    }
    if (s->budgeting == SLO_BUDGET_RATIO_TIMESLICES) {
        rg_printf(b, "\n(%s * %llu)", sb_str(&cnt), (unsigned long long)SLO_SLICE_SCALE);
    } else {
        rg_printf(b, "\n%s", sb_str(&cnt));
    }
    sb_fini(&in);
    sb_fini(&cnt);
}

/* Slices per piece of a calendar period sum: the per-chunk subqueries of all chunk steps of a
 * piece are evaluated at once (a month of 1m slices in one piece exceeds promtool's limit; 9300
 * did too for a RatioTimeslices expression, 4800 passes). A month of 5m slices is two pieces. */
#define CAL_PIECE_SLICES 4800

/* The 0 a calendar slice sum falls back to for a group without slices in it: per group the
 * engine knows (slo:nodata_watch_start:time, recorded under no_data bad / freeze / alert), so
 * a group silent for longer than a chunk keeps its count; else per group reporting now. */
static void slice_zero(sb_t *b, const slo_spec_t *s)
{
    if (rg_nd_fill(s)) {
        sb_t id = {0};
        rg_ids(&id, s);
        rg_printf(b, "sum");
        rg_by_clause(b, s);
        rg_printf(b, " (0 * slo:nodata_watch_start:time%s)", sb_str(&id));
        sb_fini(&id);
        return;
    }
    char sw[32];
    rg_ms_dur(rg_slice_ms(s), sw, sizeof(sw));
    rg_printf(b, "0 * ");
    count_expr(b, s, 0, sw, rg_slice_ms(s));
}

/* fn (count_over_time or sum_over_time) of a per-slice `in` over the closed slices of the
 * current calendar period: slices whose start lies in it and whose end is at most now. */
void rg_calendar_slices(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, const char *in,
                        const char *fn)
{
    char sw[32], rg[32];
    int64_t w = rg_slice_ms(s), c = p->chunk_s * 1000;
    rg_ms_dur(w, sw, sizeof(sw));
    int64_t range = s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? 32 * 86400 : 8 * 86400;
    rg_printf(b, "(\n");
    if (w >= c || c % w != 0) {
        calendar_over(b, s, p, in, w / 1000, range, fn, 0, NULL);
    } else {
        /* slices per chunk, then chunks by class (a flat [32d:1m] subquery holds too many
         * samples at once for promtool's 10000-sample limit), plus the chunk in progress */
        sb_t per = {0};
        rg_ms_dur(c - 1, rg, sizeof(rg));
        rg_printf(&per, "%s(%s[%s:%s])", fn, in, rg, sw);
        rg_printf(b, "(\n");
        sb_t zero = {0};
        slice_zero(&zero, s);
        calendar_over(b, s, p, sb_str(&per), p->chunk_s, range, "sum_over_time",
                      CAL_PIECE_SLICES * w / c, sb_str(&zero));
        rg_printf(b, "\nor\n%s\n)\n+\n(\n", sb_str(&zero));
        for (int k = 0; k < 2; k++) {
            rg_printf(b,
                      "%s(\n  %s((\n    %s\n    and on() (floor(vector((time() - "
                      "%lld) / %lld)) %% 2 == %d)\n  )[%s:%s])\n  and on() (floor(vector("
                      "time() / %lld)) %% 2 == %d)\n)",
                      k ? "\nor\n" : "", fn, in, (long long)(w / 1000), (long long)p->chunk_s, k,
                      rg, sw, (long long)p->chunk_s, k);
        }
        rg_printf(b, "\nor\n%s\n)", sb_str(&zero));
        sb_fini(&zero);
        sb_fini(&per);
    }
    sb_t zero = {0};
    slice_zero(&zero, s);
    rg_printf(b, "\nor\n%s\n)", sb_str(&zero));
    sb_fini(&zero);
}

/* The event (or, with time slices, slice) count the engine's data state reads over the
 * period: the engine holds every tier when 0 < count < max(min_events, 1 / (1 - objective))
 * (eval.c: state insufficient_data). */
void rg_period_total(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, int64_t tail_ms)
{
    if (s->period_kind == SLO_PERIOD_ROLLING) {
        if (rg_slices_bad(s)) {
            rg_slice_n(b, s, s->period_ms);
        } else if (rg_timeslices(s)) {
            rg_slice_count(b, s, s->period_ms);
        } else {
            char ps[32];
            count_expr(b, s, 0, slo_fmt_duration(s->period_ms, ps, sizeof(ps)), s->period_ms);
        }
        return;
    }
    if (!rg_timeslices(s)) {
        rg_calendar_count(b, s, p, 0, tail_ms);
        return;
    }
    if (rg_slices_bad(s)) {
        slice_n_calendar(b, s, p);
        return;
    }
    /* closed slices with events in the period (the open slice is not counted yet) */
    sb_t in = {0};
    rg_slice_inner(&in, s, SL_EVENTS);
    rg_calendar_slices(b, s, p, sb_str(&in), "count_over_time");
    sb_fini(&in);
}
