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
 *    (calendar_count: hour chunks summed per period class in a subquery, plus the tail since
 *    the last chunk boundary), in the spec's zone (tz_plan: exact for fixed offsets; DST zones
 *    are checked against the zone and get a NOT EXACT comment where the check fails);
 *  - `no_data: alert`: the engine's <name>NoData alert per group, with its start-up grace
 *    (slo:nodata_watch_start:time, a rule that keeps its own first value per group);
 *  - time slice budgeting: every window's error ratio and the calendar period ratio are slice
 *    ratios (bad slices over slices with events, or the mean of the per-slice ratios), from
 *    subqueries at the slice step (slice_ratio, calendar_slices).
 *  - `no_data: bad | freeze | alert` under occurrence budgeting (nd_fill, nd_ratio): window
 *    ratios without events are 1 (bad) or the rule's own previous value (freeze, alert; 0
 *    before one), for every group seen (slo:nodata_watch_start:time); bad fires a tier whose
 *    long window has no events; freeze/alert tiers read only windows with events and a tier
 *    whose long window has none is held. Under time slices freeze/alert do the same with
 *    closed slices with events in place of events (window_events; calendar sums fall back
 *    to 0 per known group: slice_zero).
 *  - the engine's `invalid` data state: slo:sli_invalid:flag per group while some window's
 *    error ratio is outside [0, 1] (occurrence budgeting; the recorded ratios are clamped to
 *    [0, 1] as the engine's are) or more than 10 counter resets fall in the last hour
 *    (resets(), any budgeting); every alert is gated and held on it.
 *  - holds (eval.c slo_alert_step): a held rule returns its own ALERTS series (own_alerts), so
 *    a pending alert matures and a firing one keeps firing; tiers whose own pending /
 *    keep-firing clock or hold matters get a rule each (mergeable).
 *  - no_data: bad under time slices: every empty slice after a group's first slice with events
 *    is a bad slice (slo:first_slice_end:time, slice_n), for rolling and calendar periods.
 * Exactness holds for samples and evaluations aligned to the evaluation interval with
 * Prometheus 2.x range semantics (both ends inclusive), the assumption of the parity tests.
 */
#include "model.h"
#include "eval.h"
#include "sb.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Text goes through the core string builder (sb.h); generation runs in a CLI, so out of
 * memory exits (craft convention 11) instead of latching in the builder. */
static void rg_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rg_printf(sb_t *b, const char *fmt, ...)
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
static const char *rt(double x, char *buf, size_t len)
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
static void sb_move(sb_t *dst, sb_t *src)
{
    free(dst->p);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* YAML single-quoted scalar: only ' needs doubling. */
static void yq(sb_t *b, const char *s)
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

/* PromQL double-quoted string. */
static void pq(sb_t *b, const char *s)
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
static void label_name(sb_t *b, const char *s)
{
    if (isdigit((unsigned char)*s)) {
        rg_printf(b, "_");
    }
    for (; *s; s++) {
        rg_printf(b, "%c", isalnum((unsigned char)*s) || *s == '_' ? *s : '_');
    }
}

static const char *OPS[] = {"=", "!=", "=~", "!~"};

static void selector(sb_t *b, const slo_selector_t *s, const char *suffix, const char *extra)
{
    rg_printf(b, "%s%s{", s->metric ? s->metric : "", s->metric && suffix ? suffix : "");
    for (size_t i = 0; i < s->nm; i++) {
        rg_printf(b, "%s%s%s", i ? "," : "", s->m[i].name, OPS[s->m[i].op]);
        pq(b, s->m[i].value);
    }
    if (extra) {
        rg_printf(b, "%s%s", s->nm ? "," : "", extra);
    }
    rg_printf(b, "}");
}

static void ids(sb_t *b, const slo_spec_t *s)
{
    rg_printf(b, "{sloth_id=");
    pq(b, s->id);
    rg_printf(b, ", sloth_service=");
    pq(b, s->service);
    rg_printf(b, ", sloth_slo=");
    pq(b, s->name);
    rg_printf(b, "}");
}

static void by_clause(sb_t *b, const slo_spec_t *s)
{
    if (!s->ngroup_by) {
        return;
    }
    rg_printf(b, " by (");
    for (size_t i = 0; i < s->ngroup_by; i++) {
        if (i) {
            rg_printf(b, ", ");
        }
        label_name(b, s->group_by[i]);
    }
    rg_printf(b, ")");
}

/* sum [by (g)] (FN(SEL[W])) */
static void agg_fn(sb_t *b, const slo_spec_t *s, const slo_selector_t *sel, const char *suffix,
                   const char *extra, const char *w, const char *fn)
{
    rg_printf(b, "sum");
    by_clause(b, s);
    rg_printf(b, " (%s(", fn);
    selector(b, sel, suffix, extra);
    rg_printf(b, "[%s]))", w);
}

/* sum [by (g)] (rate(SEL[W])) */
static void agg(sb_t *b, const slo_spec_t *s, const slo_selector_t *sel, const char *suffix,
                const char *extra, const char *w)
{
    agg_fn(b, s, sel, suffix, extra, w, "rate");
}

/* Sloth query with {{.window}} (any spacing inside the braces) replaced by w. */
static void tpl(sb_t *b, const char *q, const char *w)
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
    pq(&extra, s->id);
    rg_printf(&extra, ",event=\"%s\"", event);
    agg(b, s, &sel, NULL, sb_str(&extra), w);
    sb_fini(&extra);
}

/* The error ratio over window w, as one PromQL expression. */
static void error_ratio(sb_t *b, const slo_spec_t *s, const char *w)
{
    const slo_sli_t *q = &s->sli;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        rg_printf(b, "(");
        tpl(b, q->error_query, w);
        rg_printf(b, ")\n/\n(");
        tpl(b, q->total_query, w);
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
static void total_rate(sb_t *b, const slo_spec_t *s, const char *w)
{
    const slo_sli_t *q = &s->sli;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        rg_printf(b, "(");
        tpl(b, q->total_query, w);
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
    total_rate(b, s, w);
    if (!(s->format == SLO_FMT_SLOTH && q->error_query && q->total_query &&
          strstr(q->total_query, "increase("))) {
        rg_printf(b, " * %lld", (long long)(w_ms / 1000));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Event counts, calendar periods, time slices                                               */

static void events_fn(sb_t *b, const slo_spec_t *s, const char *event, const char *w,
                      const char *fn)
{
    slo_selector_t sel = {.metric = (char *)SLO_EVENTS_METRIC};
    sb_t extra = {0};
    rg_printf(&extra, "sloth_id=");
    pq(&extra, s->id);
    rg_printf(&extra, ",event=\"%s\"", event);
    agg_fn(b, s, &sel, NULL, sb_str(&extra), w, fn);
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
        tpl(b, qq, w);
        rg_printf(b, ")");
        if (!strstr(qq, "increase(")) {
            rg_printf(b, " * %lld", (long long)(w_ms / 1000));
        }
        return;
    }
    switch (q->kind) {
    case SLO_SLI_RATIO:
        if (bad && q->has_bad) {
            agg_fn(b, s, &q->bad, NULL, NULL, w, inc);
        } else if (bad) { /* good + total: bad = total - good */
            rg_printf(b, "(");
            agg_fn(b, s, &q->total, NULL, NULL, w, inc);
            rg_printf(b, " - ");
            agg_fn(b, s, &q->good, NULL, NULL, w, inc);
            rg_printf(b, ")");
        } else if (q->has_total) {
            agg_fn(b, s, &q->total, NULL, NULL, w, inc);
        } else {
            rg_printf(b, "(");
            agg_fn(b, s, &q->bad, NULL, NULL, w, inc);
            rg_printf(b, " + ");
            agg_fn(b, s, &q->good, NULL, NULL, w, inc);
            rg_printf(b, ")");
        }
        break;
    case SLO_SLI_LATENCY:
        if (bad) {
            char le[64];
            snprintf(le, sizeof(le), "le=\"%.15g\"", q->threshold);
            rg_printf(b, "(");
            agg_fn(b, s, &q->histogram, "_count", NULL, w, inc);
            rg_printf(b, " - ");
            agg_fn(b, s, &q->histogram, "_bucket", le, w, inc);
            rg_printf(b, ")");
        } else {
            agg_fn(b, s, &q->histogram, "_count", NULL, w, inc);
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
static void present_expr(sb_t *b, const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    rg_printf(b, "group");
    by_clause(b, s);
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
            selector(b, sel[i], NULL, NULL);
        }
        break;
    }
    case SLO_SLI_LATENCY:
        selector(b, &q->histogram, "_count", NULL);
        break;
    case SLO_SLI_SPANS:
    case SLO_SLI_LOGS: {
        slo_selector_t sel = {.metric = (char *)SLO_EVENTS_METRIC};
        sb_t extra = {0};
        rg_printf(&extra, "sloth_id=");
        pq(&extra, s->id);
        selector(b, &sel, NULL, sb_str(&extra));
        sb_fini(&extra);
        break;
    }
    }
    rg_printf(b, ")");
}

/* Prometheus durations in milliseconds are exact for any length ("3599999ms"). */
static const char *ms_dur(int64_t ms, char *buf, size_t len)
{
    if (ms % 60000 == 0) {
        return slo_fmt_duration(ms, buf, len);
    }
    snprintf(buf, len, "%lldms", (long long)ms);
    return buf;
}

/* How a calendar period's time zone becomes PromQL. Prometheus' date functions work in UTC,
 * so local time is time() shifted by the zone's offset: `lo` for a fixed offset; for a zone
 * with DST `lo + delta` in the months whose END falls in DST (dst_end_month[m]), chosen from
 * the month of time() + lo. That is exact for month boundaries when no transition lies within
 * `delta` of a local midnight of the 1st and the months are the same every year (checked for
 * 2010-2069 below: true for the EU, US, Australian rules and most others). Week boundaries
 * (Monday midnight) in a month with a DST change take the month-end offset even when they
 * fall before the change, so their period starts one `delta` early or late: not exact. */
typedef struct {
    int dst;               /* 0: one fixed offset */
    int32_t lo, delta;     /* seconds east of UTC; delta > 0 when dst */
    int dst_end_month[13]; /* 1..12 */
    int month_exact;       /* months exact (fixed offsets always) */
    int64_t chunk_s;       /* sum chunk: 1h, or what divides every offset (30m, 15m) */
    const char *problem;   /* why not exact (NULL = exact for the period kind) */
} tz_plan_t;

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

static void tz_plan(const slo_spec_t *s, tz_plan_t *p)
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
static void local_vec(sb_t *b, const tz_plan_t *p, const char *t)
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
        rg_printf(b, "vector(0)"); /* not a range: tz_plan reports it as not exact */
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
        local_vec(b, p, t);
        rg_printf(b, ") %% 3");
    } else {
        /* 1970-01-05 was a Monday: weeks start at 4 days + k x 7 days of local time */
        rg_printf(b, "floor((");
        local_vec(b, p, t);
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
    ms_dur(step_s * 1000, st, sizeof(st));
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
            ms_dur((len > 0 ? len : 1) * 1000, rg, sizeof(rg));
            rg_printf(b, "%s%s%s((\n    %s\n    and on() (", n ? "\n  +\n  " : "", many ? "(" : "",
                      fn, inner);
            period_class(b, s, p, tm);
            rg_printf(b, " == %d)\n  )[%s:%s]", k, rg, st);
            if (off) {
                rg_printf(b, " offset %s", ms_dur(off * 1000, of, sizeof(of)));
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
static void calendar_count(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, int bad,
                           int64_t tail_ms)
{
    int64_t c = p->chunk_s;
    char cs[32], ts[32], rg[32];
    ms_dur(c * 1000, cs, sizeof(cs));
    ms_dur(tail_ms, ts, sizeof(ts));
    ms_dur(c * 1000 - 1, rg, sizeof(rg));
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

static int timeslices(const slo_spec_t *s)
{
    return s->budgeting != SLO_BUDGET_OCCURRENCES;
}

static int64_t slice_ms(const slo_spec_t *s)
{
    return s->timeslice_ms > 0 ? s->timeslice_ms : 60000;
}

/* What one time slice contributes, as a PromQL expression evaluated at the slice's end
 * (slice k is [k x slice, (k+1) x slice); the engine places a sample's increment 1 ms before
 * the sample, so the slice holds the increments of the samples in (k x slice, (k+1) x slice],
 * which is increase(...[slice]) at its end on aligned samples: exact integer differences):
 *  SL_EVENTS  the slice has events: (total > 0), counted with count_over_time;
 *  SL_BAD     Timeslices: 1 when good < timeslice_target x total (eval.c slice_emit, the same
 *             double comparison; a slice without events gives 0), summed with sum_over_time;
 *             RatioTimeslices: the slice's error ratio in millionths, rounded as the engine
 *             stores it (llround(bad / total x 1e6); PromQL round() is floor(x + 0.5), the
 *             same for these non-negative values), only for slices with events. */
enum { SL_EVENTS = 0, SL_BAD };

/* The number of good events in window w: the good counter where the SLI has one (fewer
 * selectors in the slice subqueries), else total - bad; exact integers either way. */
static void good_count(sb_t *b, const slo_spec_t *s, const char *w, int64_t w_ms)
{
    const slo_sli_t *q = &s->sli;
    int sloth = s->format == SLO_FMT_SLOTH && q->error_query && q->total_query;
    if (!sloth && q->kind == SLO_SLI_RATIO && q->has_good) {
        agg_fn(b, s, &q->good, NULL, NULL, w, "increase");
    } else if (!sloth && q->kind == SLO_SLI_LATENCY) {
        char le[64];
        snprintf(le, sizeof(le), "le=\"%.15g\"", q->threshold);
        agg_fn(b, s, &q->histogram, "_bucket", le, w, "increase");
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
static int can_be_inconsistent(const slo_spec_t *s)
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
static int invalid_slices(const slo_spec_t *s)
{
    return timeslices(s) && can_be_inconsistent(s);
}

/* An inconsistent slice, evaluated at its end: bad events below 0 (more good than total) or
 * above the total. */
static void slice_inconsistent(sb_t *b, const slo_spec_t *s)
{
    char sw[32];
    int64_t w = slice_ms(s);
    ms_dur(w, sw, sizeof(sw));
    rg_printf(b, "(");
    count_expr(b, s, 1, sw, w);
    rg_printf(b, " < 0 or ");
    count_expr(b, s, 1, sw, w);
    rg_printf(b, " > ");
    count_expr(b, s, 0, sw, w);
    rg_printf(b, ")");
}

static void slice_inner(sb_t *b, const slo_spec_t *s, int what)
{
    char sw[32], tg[40];
    int64_t w = slice_ms(s);
    ms_dur(w, sw, sizeof(sw));
    if (what == SL_EVENTS) {
        rg_printf(b, "(");
        count_expr(b, s, 0, sw, w);
        rg_printf(b, " > 0)");
    } else if (s->budgeting == SLO_BUDGET_RATIO_TIMESLICES && invalid_slices(s)) {
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
        /* the number stays on the right of `*` (see local_vec) */
        double target = s->timeslice_target > 0 ? s->timeslice_target : s->objective;
        rg_printf(b, "(");
        good_count(b, s, sw, w);
        rg_printf(b, " < bool (");
        count_expr(b, s, 0, sw, w);
        rg_printf(b, " * %s))", rt(target, tg, sizeof(tg)));
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
    int64_t w = slice_ms(s), span = w_ms - w; /* slice ends in [now - span, now] */
    char sw[32], rg[32], of[32];
    ms_dur(w, sw, sizeof(sw));
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
        by_clause(b, s);
        rg_printf(b, " (\n");
    }
    for (int64_t off = 0; off <= span; n++) {
        int64_t len = span - off < (SLICE_PIECE - 1) * w ? span - off : (SLICE_PIECE - 1) * w;
        /* a zero range would not parse: 1ms holds the same single step on aligned times */
        ms_dur(len > 0 ? len : 1, rg, sizeof(rg));
        rg_printf(b, "%s%s%s(", n ? "\nor\n" : "", many ? "label_replace(" : "", fn);
        rg_printf(b, "(\n  %s\n)[%s:%s]", inner, rg, sw);
        if (off) {
            rg_printf(b, " offset %s", ms_dur(off, of, sizeof(of)));
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
static void slice_count(sb_t *b, const slo_spec_t *s, int64_t w_ms)
{
    sb_t in = {0};
    slice_inner(&in, s, SL_EVENTS);
    rg_printf(b, "(");
    slice_over(b, s, sb_str(&in), "count_over_time", w_ms);
    rg_printf(b, ")");
    sb_fini(&in);
}

static void on_groups(sb_t *b, const slo_spec_t *s);

/* no_data: bad under time slice budgeting (eval.c close_upto): from a group's first slice with
 * events on, every closed slice counts, an empty one as a bad slice. */
static int slices_bad(const slo_spec_t *s)
{
    return timeslices(s) && s->nodata == SLO_NODATA_BAD;
}

/* slices_bad: the slices the engine counts in the last w_ms, per group: min(w / slice, the
 * slices since the end of the group's first slice with events + 1), from
 * slo:first_slice_end:time (recorded first); 0 for a window shorter than a slice. */
static void slice_n(sb_t *b, const slo_spec_t *s, int64_t w_ms)
{
    sb_t id = {0};
    ids(&id, s);
    int64_t w = slice_ms(s);
    rg_printf(b, "sum");
    by_clause(b, s);
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

/* slices_bad with a calendar period: slice_n over the period, at most the slices since the
 * local start of the month or ISO week (whole seconds of local time since then, from
 * day_of_month or the week number's remainder; offsets keep the remainders positive). */
static void slice_n_calendar(sb_t *b, const slo_spec_t *s, const tz_plan_t *p)
{
    sb_t id = {0};
    ids(&id, s);
    int64_t w = slice_ms(s) / 1000;
    rg_printf(b, "clamp_max(\nsum");
    by_clause(b, s);
    rg_printf(b, " (floor((time() - slo:first_slice_end:time%s) / %lld) + 1),\nscalar(floor((",
              sb_str(&id), (long long)w);
    if (s->period_kind == SLO_PERIOD_CALENDAR_MONTH) {
        rg_printf(b, "(day_of_month(");
        local_vec(b, p, "time()");
        rg_printf(b, ") - 1) * 86400 + (");
        local_vec(b, p, "time()");
        rg_printf(b, " + 864000000) %% 86400");
    } else {
        /* 1970-01-05 was a Monday (period_class) */
        rg_printf(b, "(");
        local_vec(b, p, "time()");
        rg_printf(b, " + 259200 + 604800000) %% 604800");
    }
    rg_printf(b, ") / %lld))\n)", (long long)w);
    sb_fini(&id);
}

/* slices_bad: the end of each group's first slice with events (the engine walks every slice
 * from there), kept by reading the rule's own last value; else the earliest slice end with
 * events among the last few (a lookback of at least 5m, so no evaluation interval misses one). */
static void first_slice_end(sb_t *b, const slo_spec_t *s)
{
    sb_t id = {0}, in = {0};
    ids(&id, s);
    int64_t w = slice_ms(s), r = w > 300000 ? w : 300000;
    char sw[32], rg[32];
    ms_dur(w, sw, sizeof(sw));
    ms_dur(r, rg, sizeof(rg));
    slice_inner(&in, s, SL_EVENTS);
    rg_printf(b, "slo:first_slice_end:time%s\nor ", sb_str(&id));
    on_groups(b, s);
    rg_printf(b, "\nmin_over_time((\n  time() + 0 * %s\n)[%s:%s])", sb_str(&in), rg, sw);
    sb_fini(&id);
    sb_fini(&in);
}

/* The engine's error ratio over the last w_ms under time slice budgeting: bad slices over
 * slices with events (Timeslices), or the sum of the per-slice error ratios in millionths over
 * slices with events x 1e6 (RatioTimeslices: the mean of the slice ratios, divided in the
 * same integer units as eval.c). No slice with events gives no value (0/0), as the
 * Occurrences rules give none without events. */
static void slice_ratio(sb_t *b, const slo_spec_t *s, int64_t w_ms, const char *den)
{
    sb_t in = {0}, cnt = {0};
    slice_inner(&in, s, SL_BAD);
    if (slices_bad(s)) {
        /* (bad slices with events + empty slices) / slices counted, each empty slice a whole
         * bad unit; no slice with events in the window: no sum, so `or 0` per counted group */
        int ratio = s->budgeting == SLO_BUDGET_RATIO_TIMESLICES;
        sb_t n = {0}, ev = {0};
        slice_n(&n, s, w_ms);
        slice_inner(&ev, s, SL_EVENTS);
        rg_printf(b, "(\n(\n");
        slice_over(b, s, sb_str(&in), "sum_over_time", w_ms);
        rg_printf(b, "\nor ");
        on_groups(b, s);
        rg_printf(b, " 0 * %s\n)\n+\n(\n%s\n-\n(\n", sb_str(&n), sb_str(&n));
        slice_over(b, s, sb_str(&ev), "count_over_time", w_ms);
        rg_printf(b, "\nor ");
        on_groups(b, s);
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
            label_name(b, s->group_by[g]);
        }
        rg_printf(b, ")");
        rg_printf(&cnt, "%s", den);
    } else {
        slice_count(&cnt, s, w_ms);
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

static int nd_fill(const slo_spec_t *s);

/* The 0 a calendar slice sum falls back to for a group without slices in it: per group the
 * engine knows (slo:nodata_watch_start:time, recorded under no_data bad / freeze / alert), so
 * a group silent for longer than a chunk keeps its count; else per group reporting now. */
static void slice_zero(sb_t *b, const slo_spec_t *s)
{
    if (nd_fill(s)) {
        sb_t id = {0};
        ids(&id, s);
        rg_printf(b, "sum");
        by_clause(b, s);
        rg_printf(b, " (0 * slo:nodata_watch_start:time%s)", sb_str(&id));
        sb_fini(&id);
        return;
    }
    char sw[32];
    ms_dur(slice_ms(s), sw, sizeof(sw));
    rg_printf(b, "0 * ");
    count_expr(b, s, 0, sw, slice_ms(s));
}

/* fn (count_over_time or sum_over_time) of a per-slice `in` over the closed slices of the
 * current calendar period: slices whose start lies in it and whose end is at most now. */
static void calendar_slices(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, const char *in,
                            const char *fn)
{
    char sw[32], rg[32];
    int64_t w = slice_ms(s), c = p->chunk_s * 1000;
    ms_dur(w, sw, sizeof(sw));
    int64_t range = s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? 32 * 86400 : 8 * 86400;
    rg_printf(b, "(\n");
    if (w >= c || c % w != 0) {
        calendar_over(b, s, p, in, w / 1000, range, fn, 0, NULL);
    } else {
        /* slices per chunk, then chunks by class (a flat [32d:1m] subquery holds too many
         * samples at once for promtool's 10000-sample limit), plus the chunk in progress */
        sb_t per = {0};
        ms_dur(c - 1, rg, sizeof(rg));
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
static void period_total(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, int64_t tail_ms)
{
    if (s->period_kind == SLO_PERIOD_ROLLING) {
        if (slices_bad(s)) {
            slice_n(b, s, s->period_ms);
        } else if (timeslices(s)) {
            slice_count(b, s, s->period_ms);
        } else {
            char ps[32];
            count_expr(b, s, 0, slo_fmt_duration(s->period_ms, ps, sizeof(ps)), s->period_ms);
        }
        return;
    }
    if (!timeslices(s)) {
        calendar_count(b, s, p, 0, tail_ms);
        return;
    }
    if (slices_bad(s)) {
        slice_n_calendar(b, s, p);
        return;
    }
    /* closed slices with events in the period (the open slice is not counted yet) */
    sb_t in = {0};
    slice_inner(&in, s, SL_EVENTS);
    calendar_slices(b, s, p, sb_str(&in), "count_over_time");
    sb_fini(&in);
}

/* The smallest event count n with (1 - objective) x n >= 1, as eval.c tests it in doubles. */
static uint64_t min_period_events(const slo_spec_t *s)
{
    double bfr = 1.0 - s->objective;
    if (bfr < 1e-12) {
        bfr = 1e-12;
    }
    uint64_t n = (uint64_t)ceil(1.0 / bfr);
    while (n > 0 && bfr * (double)(n - 1) >= 1.0) {
        n--;
    }
    while (bfr * (double)n < 1.0) {
        n++;
    }
    return n > s->min_events ? n : s->min_events;
}

/* The engine's no-data delay (eval.c nodata_after): the shortest enabled long window, 1h
 * without tiers. */
static int64_t nodata_after(const slo_spec_t *s)
{
    int64_t m = 0;
    for (size_t i = 0; i < s->ntiers; i++) {
        if (s->tiers[i].enabled && (m == 0 || s->tiers[i].long_ms < m)) {
            m = s->tiers[i].long_ms;
        }
    }
    return m > 0 ? m : 3600000LL;
}

/* The engine's no-data alert name (engine.c nodata_notify): the first tier's alert name with
 * its "BurnRate"/"Burn" suffix replaced by "NoData". */
static void nodata_name(const slo_spec_t *s, char *buf, size_t len)
{
    char base[128];
    snprintf(base, sizeof(base), "%s",
             s->ntiers && s->tiers[0].alert_name ? s->tiers[0].alert_name : s->id);
    size_t bl = strlen(base);
    if (bl > 8 && !strcmp(base + bl - 8, "BurnRate")) {
        base[bl - 8] = 0;
    } else if (bl > 4 && !strcmp(base + bl - 4, "Burn")) {
        base[bl - 4] = 0;
    }
    snprintf(buf, len, "%.100sNoData", base);
}

/* Labels of the no-data alert, as the engine sends them: the SLO labels, the first tier's
 * alert-wide labels without its severity, sloth_severity ticket, burnrate_tier no-data. */
static size_t nodata_labels(const slo_spec_t *s, const char **k, const char **v, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->labels.n && n + 2 < cap; i++) {
        k[n] = s->labels.keys[i];
        v[n++] = s->labels.vals[i];
    }
    for (size_t i = 0; s->ntiers && i < s->tiers[0].labels.n && n + 2 < cap; i++) {
        const char *key = s->tiers[0].labels.keys[i];
        if (!strcmp(key, "sloth_severity") || !strcmp(key, "burnrate_tier")) {
            continue;
        }
        size_t j = 0;
        for (; j < n && strcmp(k[j], key) != 0; j++) {
        }
        k[j] = key;
        v[j] = s->tiers[0].labels.vals[i];
        if (j == n) {
            n++;
        }
    }
    k[n] = "sloth_severity";
    v[n++] = "ticket";
    k[n] = "burnrate_tier";
    v[n++] = "no-data";
    return n;
}

/* Windows to record: every tier window, 5m (current burn rate) and the period; sorted. */
static size_t windows(const slo_spec_t *s, int64_t *out, size_t cap)
{
    size_t n = 0;
    int64_t cand[2 * SLO_MAX_TIERS + 2];
    size_t nc = 0;
    cand[nc++] = 300000;
    for (size_t i = 0; i < s->ntiers && nc + 2 < MT_ARRAY_LEN(cand); i++) {
        cand[nc++] = s->tiers[i].short_ms;
        cand[nc++] = s->tiers[i].long_ms;
    }
    if (s->period_kind == SLO_PERIOD_ROLLING) {
        cand[nc++] = s->period_ms; /* calendar periods get slo:sli_error:ratio_period */
    }
    for (size_t i = 0; i < nc; i++) {
        int dup = 0;
        for (size_t j = 0; j < n; j++) {
            dup |= out[j] == cand[i];
        }
        if (!dup && n < cap && cand[i] > 0) {
            out[n++] = cand[i];
        }
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    return n;
}

static void indent_block(sb_t *b, const char *text, int ind)
{
    rg_printf(b, "%*s", ind, "");
    for (const char *p = text; *p; p++) {
        rg_printf(b, "%c", *p);
        if (*p == '\n' && p[1]) {
            rg_printf(b, "%*s", ind, "");
        }
    }
    rg_printf(b, "\n");
}

static void labels_block(sb_t *b, const slo_kv_t *kv, const char *window, int ind)
{
    rg_printf(b, "%*slabels:\n", ind, "");
    for (size_t i = 0; i < kv->n; i++) {
        rg_printf(b, "%*s%s: ", ind + 2, "", kv->keys[i]);
        yq(b, kv->vals[i]);
        rg_printf(b, "\n");
    }
    if (window) {
        rg_printf(b, "%*ssloth_window: '%s'\n", ind + 2, "", window);
    }
}

static void record(sb_t *b, const char *name, const char *expr, const slo_kv_t *labels,
                   const char *window)
{
    rg_printf(b, "  - record: %s\n    expr: |\n", name);
    indent_block(b, expr, 6);
    labels_block(b, labels, window, 4);
}

static int nd_fill(const slo_spec_t *s);

/* Whether a tier may share an alerting rule with others. A rule's state is its own: with
 * `for` or keep_firing_for Prometheus keeps one pending / keep-firing clock per rule where
 * the engine keeps one per tier, and the engine's hold (eval.c slo_alert_step) is per tier:
 * under no_data freeze / alert a tier whose short window is over half its long one can be
 * active when its long window empties. Without those the rule fires exactly when one of its
 * tiers does (the union of the engine's per-tier states), so such tiers merge. */
static int mergeable(const slo_spec_t *s, const slo_tier_t *t)
{
    int nd_hold = nd_fill(s) && s->nodata != SLO_NODATA_BAD;
    return t->for_ms == 0 && t->keep_firing_for_ms == 0 &&
           !(nd_hold && t->short_ms * 2 > t->long_ms);
}

/* Tiers that form one alerting rule: the same tier, or mergeable tiers with the same alert
 * name and severity. */
static int same_rule(const slo_spec_t *s, const slo_tier_t *a, const slo_tier_t *b)
{
    return a == b || (!strcmp(a->alert_name, b->alert_name) && !strcmp(a->severity, b->severity) &&
                      mergeable(s, a) && mergeable(s, b));
}

/* Whether two rules of this SLO share alert name + severity (then a slo_tier label tells
 * them apart so their alerts do not collide). */
static int needs_tier_label(const slo_spec_t *s, size_t i)
{
    for (size_t j = 0; j < s->ntiers; j++) {
        if (!s->tiers[j].enabled || j == i) {
            continue;
        }
        if (!strcmp(s->tiers[j].alert_name, s->tiers[i].alert_name) &&
            !strcmp(s->tiers[j].severity, s->tiers[i].severity) &&
            !same_rule(s, &s->tiers[i], &s->tiers[j])) {
            return 1;
        }
    }
    return 0;
}

/* on(<group labels>): matches one series per group whatever else the series carry. */
static void on_groups(sb_t *b, const slo_spec_t *s)
{
    rg_printf(b, "on(");
    for (size_t g = 0; g < s->ngroup_by; g++) {
        rg_printf(b, "%s", g ? ", " : "");
        label_name(b, s->group_by[g]);
    }
    rg_printf(b, ")");
}

/* no_data: bad / freeze / alert: the window ratios the rules record are the engine's for
 * windows without events too (eval.c fill_ratios): 1 (bad), or the previous evaluation's value
 * (freeze, alert; 0 before the group had one), for every group the engine knows
 * (slo:nodata_watch_start:time); under time slices "events" are closed slices with events, and
 * bad also counts every empty slice after the group's first (slices_bad). */
static int nd_fill(const slo_spec_t *s)
{
    return s->nodata != SLO_NODATA_GOOD;
}

/* What "the window has events" means to the engine's tiers (window total > 0): events in
 * the window, or, under time slice budgeting, closed slices with events in it. */
static void window_events(sb_t *b, const slo_spec_t *s, const char *w, int64_t w_ms)
{
    if (slices_bad(s)) {
        slice_n(b, s, w_ms);
    } else if (timeslices(s)) {
        slice_count(b, s, w_ms);
    } else {
        total_rate(b, s, w);
    }
}

/* Whether a tier label renders from the alert's value (then a held alert, whose value is its
 * ALERTS sample, gets other labels). */
static int labels_use_value(const slo_tier_t *t)
{
    for (size_t i = 0; i < t->labels.n; i++) {
        const char *v = t->labels.vals[i];
        if (strstr(v, "{{") && (strstr(v, "$value") || strstr(v, ".Value"))) {
            return 1;
        }
    }
    return 0;
}

/* The rule's own alert at the previous evaluation, pending or firing, as one series per
 * group: ALERTS matched on the labels the rule sets (templated ones render from the same
 * group labels, so they are left out of the match). */
static void own_alerts(sb_t *b, const slo_spec_t *s, const slo_tier_t *t, int tier_label)
{
    rg_printf(b, "max without (alertname, alertstate) (ALERTS{alertname=");
    pq(b, t->alert_name);
    rg_printf(b, ", sloth_id=");
    pq(b, s->id);
    for (size_t k = 0; k < t->labels.n; k++) {
        if (strstr(t->labels.vals[k], "{{")) {
            continue;
        }
        rg_printf(b, ", ");
        label_name(b, t->labels.keys[k]);
        rg_printf(b, "=");
        pq(b, t->labels.vals[k]);
    }
    if (tier_label) {
        rg_printf(b, ", slo_tier=");
        pq(b, t->name);
    }
    rg_printf(b, "})");
}

/* The hold appended to a rule's expression: `or` its own alerts (own_alerts) `and` (held
 * while) or `unless` (held until) `cond`, per group. */
static void hold_term(sb_t *b, const slo_spec_t *s, const slo_tier_t *t, int tier_label,
                      const char *op, const char *cond)
{
    rg_printf(b, "\nor ");
    on_groups(b, s);
    rg_printf(b, "\n(\n    ");
    own_alerts(b, s, t, tier_label);
    rg_printf(b, "\n    %s ", op);
    on_groups(b, s);
    rg_printf(b, "\n    %s\n)", cond);
}

/* no_data: bad / freeze / alert (nd_fill): `expr` with a defined value (0/0 gives NaN, which
 * `>= -Inf` drops), else, for freeze/alert, the rule's own previous value (name + window:
 * exactly the series this rule writes), else, for every group the engine knows, 1 (bad) or
 * 0 (freeze, alert: eval.c's ratio before the instance has a last result). */
static void nd_ratio(sb_t *b, const slo_spec_t *s, const char *name, const char *window,
                     const char *expr)
{
    sb_t id = {0};
    ids(&id, s);
    rg_printf(b, "(\n%s\n) >= -Inf", expr);
    if (s->nodata != SLO_NODATA_BAD) {
        rg_printf(b, "\nor ");
        on_groups(b, s);
        rg_printf(b, "\n%s", name);
        id.len -= 1; /* drop "}" */
        id.p[id.len] = 0;
        rg_printf(b, "%s, sloth_window=\"%s\"}", sb_str(&id), window);
        id.len = 0;
        ids(&id, s);
    }
    rg_printf(b, "\nor ");
    on_groups(b, s);
    rg_printf(b, "\n(slo:nodata_watch_start:time%s * 0 + %d)", sb_str(&id),
              s->nodata == SLO_NODATA_BAD ? 1 : 0);
    sb_fini(&id);
}

/* Records an error ratio `expr` under `name`, through nd_ratio where the no-data policy
 * fills windows without events. */
static void record_ratio(sb_t *b, const slo_spec_t *s, const char *name, const char *window,
                         const char *expr)
{
    sb_t f = {0};
    if (nd_fill(s)) {
        nd_ratio(&f, s, name, window, expr);
        expr = sb_str(&f);
    }
    record(b, name, expr, &s->labels, window);
    sb_fini(&f);
}

/* The engine's `invalid` data state (eval.c slo_eval_compute), part one: some window (5m, 30m,
 * 1h, 2h, 6h, 1d, 3d or the period) holds more good (or bad) events than events in total.
 * Modelled for occurrence budgeting and the SLIs that can be inconsistent; under time slices
 * the same SLIs give invalid_slices. */
static int invalid_counts(const slo_spec_t *s)
{
    return !timeslices(s) && can_be_inconsistent(s);
}

/* Part two: a counter-reset storm (more than SLO_RESET_STORM resets in the last hour), for
 * every SLI read from counters, under any budgeting. */
static int invalid_resets(const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    return (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) ||
           q->kind == SLO_SLI_RATIO || q->kind == SLO_SLI_LATENCY;
}

/* Whether the rules keep slo:sli_invalid:flag (then every alert is gated and held on it). */
static int invalid_flag(const slo_spec_t *s)
{
    return invalid_counts(s) || invalid_slices(s) || invalid_resets(s);
}

/* A Sloth query over 1h with its rate() / increase() turned into resets(). */
static void query_resets(sb_t *b, const char *q)
{
    sb_t t = {0};
    tpl(&t, q, "1h");
    const char *p = sb_str(&t);
    while (*p) {
        int boundary = p == sb_str(&t) || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        if (boundary && !strncmp(p, "rate(", 5)) {
            rg_printf(b, "resets(");
            p += 5;
        } else if (boundary && !strncmp(p, "increase(", 9)) {
            rg_printf(b, "resets(");
            p += 9;
        } else {
            rg_printf(b, "%c", *p++);
        }
    }
    sb_fini(&t);
}

/* Counter resets over the last hour per group, as the engine counts them (eval.c
 * slo_inst_resets: every counter series the SLI reads, at the reset sample's time; a
 * histogram by its _count): one term per counter, told apart by a meltp_role label so `or`
 * keeps them all, then summed. */
static void reset_count(sb_t *b, const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    sb_t t[3] = {{0}, {0}, {0}};
    size_t n = 0;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        query_resets(&t[n++], q->error_query);
        query_resets(&t[n++], q->total_query);
    } else if (q->kind == SLO_SLI_LATENCY) {
        agg_fn(&t[n++], s, &q->histogram, "_count", NULL, "1h", "resets");
    } else {
        if (q->has_good) {
            agg_fn(&t[n++], s, &q->good, NULL, NULL, "1h", "resets");
        }
        if (q->has_bad) {
            agg_fn(&t[n++], s, &q->bad, NULL, NULL, "1h", "resets");
        }
        if (q->has_total) {
            agg_fn(&t[n++], s, &q->total, NULL, NULL, "1h", "resets");
        }
    }
    rg_printf(b, "  sum without (meltp_role) (\n");
    for (size_t i = 0; i < n; i++) {
        rg_printf(b, "%s    label_replace(%s, \"meltp_role\", \"%zu\", \"\", \"\")",
                  i ? "\n    or\n" : "", sb_str(&t[i]), i);
        sb_fini(&t[i]);
    }
    rg_printf(b, "\n  ) > %d", SLO_RESET_STORM);
}

/* An error ratio over w outside [0, 1], computed once: |ratio - 0.5| > 0.5 (x/0 with x != 0
 * is +-Inf: outside; 0/0 is NaN: not). */
static void invalid_term(sb_t *b, const slo_spec_t *s, const char *w)
{
    rg_printf(b, "  abs((\n");
    error_ratio(b, s, w);
    rg_printf(b, "\n  ) - 0.5) > 0.5");
}

/* While the data is invalid the engine's window ratios are clamped to [0, 1] (eval.c
 * split_counts: more good than total counts as no errors, more bad as all errors), and a
 * window without events has no ratio of its own (x/0 = +-Inf is dropped like 0/0 = NaN,
 * then filled by nd_ratio where the no-data policy says so). slo:sli_invalid:flag reads the
 * unclamped ratios. */
static void clamp_invalid(sb_t *e, const slo_spec_t *s)
{
    if (!invalid_counts(s)) {
        return;
    }
    sb_t f = {0};
    rg_printf(&f, "clamp(\n(\n%s\n) > -Inf < +Inf,\n0, 1)", sb_str(e));
    sb_move(e, &f);
}

static void spec_rules(sb_t *b, const slo_spec_t *s)
{
    int64_t w[2 * SLO_MAX_TIERS + 2];
    size_t nw = windows(s, w, MT_ARRAY_LEN(w));
    char ws[32], ps[32];
    slo_fmt_duration(s->period_ms, ps, sizeof(ps));

    tz_plan_t tzp;
    memset(&tzp, 0, sizeof(tzp));
    const char *pk = s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? "month" : "week";
    const char *zone = s->time_zone ? s->time_zone : "UTC";
    /* the tail of a calendar period is summed in steps of the evaluation interval */
    int64_t tail_ms = 60000;
    if (s->period_kind != SLO_PERIOD_ROLLING) {
        tz_plan(s, &tzp);
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
                  timeslices(s) ? " Every empty slice after a group's first slice with "
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
    if (s->nodata == SLO_NODATA_ALERT || nd_fill(s)) {
        /* when the engine started watching each group (its no-data grace; with bad/freeze
         * the groups whose empty windows get a ratio): the first evaluation that saw the
         * group, kept by reading the rule's own last value; first in the group, so that the
         * window ratios below see a group at its first evaluation */
        sb_t e = {0}, i2 = {0};
        ids(&i2, s);
        rg_printf(&e, "slo:nodata_watch_start:time%s\nor", sb_str(&i2));
        if (s->ngroup_by) {
            rg_printf(&e, " ");
            on_groups(&e, s);
            rg_printf(&e, "\n(time() + 0 * ");
            present_expr(&e, s);
            rg_printf(&e, ")");
        } else {
            rg_printf(&e, " on()\nvector(time())");
        }
        record(b, "slo:nodata_watch_start:time", sb_str(&e), &s->labels, NULL);
        sb_fini(&i2);
        sb_fini(&e);
    }
    if (slices_bad(s)) {
        sb_t e = {0};
        first_slice_end(&e, s);
        record(b, "slo:first_slice_end:time", sb_str(&e), &s->labels, NULL);
        sb_fini(&e);
    }
    /* rolling period under time slices: the period's slice count first, so that the period's
     * ratio divides by it instead of counting the period's slices a second time */
    int early_total = timeslices(s) && s->period_kind == SLO_PERIOD_ROLLING;
    const char *pw = s->period_kind == SLO_PERIOD_ROLLING ? ps : pk;
    sb_t den = {0};
    if (early_total) {
        sb_t e = {0};
        period_total(&e, s, &tzp, tail_ms);
        record(b, "slo:sli_total:count_period", sb_str(&e), &s->labels, pw);
        sb_fini(&e);
        rg_printf(&den, "slo:sli_total:count_period");
        ids(&den, s);
    }
    for (size_t i = 0; i < nw; i++) {
        slo_fmt_duration(w[i], ws, sizeof(ws));
        sb_t e = {0};
        if (timeslices(s)) { /* slice ratios, as eval.c under time slices */
            slice_ratio(&e, s, w[i], early_total && w[i] == s->period_ms ? sb_str(&den) : NULL);
        } else {
            error_ratio(&e, s, ws);
            clamp_invalid(&e, s);
        }
        char name[64];
        snprintf(name, sizeof(name), "slo:sli_error:ratio_rate%s", ws);
        record_ratio(b, s, name, ws, sb_str(&e));
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
        if (slices_bad(s)) {
            slice_n(&e, s, s->tiers[i].long_ms);
        } else if (timeslices(s)) {
            slice_count(&e, s, s->tiers[i].long_ms);
        } else {
            total_count(&e, s, ws, s->tiers[i].long_ms);
        }
        char name[64];
        snprintf(name, sizeof(name), "slo:sli_total:count%s", ws);
        record(b, name, sb_str(&e), &s->labels, ws);
        sb_fini(&e);
    }

    /* the period: events (slices) for the data-state gate; calendar periods also bad
     * events and the error ratio since the period start */
    sb_fini(&den);
    {
        sb_t e = {0};
        if (!early_total) {
            period_total(&e, s, &tzp, tail_ms);
            record(b, "slo:sli_total:count_period", sb_str(&e), &s->labels, pw);
        }
        if (s->period_kind != SLO_PERIOD_ROLLING && !timeslices(s)) {
            e.len = 0;
            calendar_count(&e, s, &tzp, 1, tail_ms);
            record(b, "slo:sli_bad:count_period", sb_str(&e), &s->labels, pw);
            /* the ratio reads the counts recorded just above (same group, in order) */
            sb_t i2 = {0};
            ids(&i2, s);
            e.len = 0;
            rg_printf(&e, "slo:sli_bad:count_period%s\n/\nslo:sli_total:count_period%s",
                      sb_str(&i2), sb_str(&i2));
            sb_fini(&i2);
            clamp_invalid(&e, s);
            record_ratio(b, s, "slo:sli_error:ratio_period", pw, sb_str(&e));
        } else if (s->period_kind != SLO_PERIOD_ROLLING) {
            /* time slices: count_period counts the closed slices with events in the period;
             * the ratio is over those slices, as eval.c computes it */
            sb_t i2 = {0}, in = {0}, on = {0};
            ids(&i2, s);
            slice_inner(&in, s, SL_BAD);
            on_groups(&on, s);
            e.len = 0;
            calendar_slices(&e, s, &tzp, sb_str(&in), "sum_over_time");
            if (slices_bad(s)) {
                /* no_data: bad: the period's empty slices (counted minus with events) are bad
                 * slices too, each a whole unit */
                sb_t ev = {0}, f = {0};
                slice_inner(&ev, s, SL_EVENTS);
                rg_printf(&f, "(\n%s\n)\n+ %s\n(\n  slo:sli_total:count_period%s\n  - %s\n",
                          sb_str(&e), sb_str(&on), sb_str(&i2), sb_str(&on));
                calendar_slices(&f, s, &tzp, sb_str(&ev), "count_over_time");
                rg_printf(&f, "\n)");
                if (s->budgeting == SLO_BUDGET_RATIO_TIMESLICES) {
                    rg_printf(&f, " * %llu", (unsigned long long)SLO_SLICE_SCALE);
                }
                sb_move(&e, &f);
                sb_fini(&ev);
            }
            if (s->budgeting == SLO_BUDGET_TIMESLICES) {
                record(b, "slo:sli_bad:count_period", sb_str(&e), &s->labels, pw);
                e.len = 0;
                rg_printf(&e, "slo:sli_bad:count_period%s\n/\nslo:sli_total:count_period%s",
                          sb_str(&i2), sb_str(&i2));
                record_ratio(b, s, "slo:sli_error:ratio_period", pw, sb_str(&e));
            } else {
                /* RatioTimeslices: sum of the slice ratios in millionths over slices x 1e6
                 * (eval.c's integer units, so the division is the engine's); the bad count
                 * (the sum of the slice error ratios) follows from it */
                rg_printf(&e, "\n/ %s\n(slo:sli_total:count_period%s * %llu)", sb_str(&on),
                          sb_str(&i2), (unsigned long long)SLO_SLICE_SCALE);
                record_ratio(b, s, "slo:sli_error:ratio_period", pw, sb_str(&e));
                e.len = 0;
                rg_printf(&e, "slo:sli_error:ratio_period%s\n*\nslo:sli_total:count_period%s",
                          sb_str(&i2), sb_str(&i2));
                record(b, "slo:sli_bad:count_period", sb_str(&e), &s->labels, pw);
            }
            sb_fini(&i2);
            sb_fini(&in);
            sb_fini(&on);
        }
        sb_fini(&e);
    }

    sb_t id = {0};
    ids(&id, s);
    sb_t e = {0};
    rg_printf(b, "- name: sloth-slo-meta-recordings-%s\n  rules:\n", s->id);
    rg_printf(&e, "vector(%.10g)", s->objective);
    record(b, "slo:objective:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e, "vector(1-%.10g)", s->objective);
    record(b, "slo:error_budget:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    if (s->period_kind == SLO_PERIOD_CALENDAR_MONTH) {
        rg_printf(&e, "days_in_month(");
        local_vec(&e, &tzp, "time()");
        rg_printf(&e, ")");
    } else {
        rg_printf(&e, "vector(%.10g)", (double)s->period_ms / 86400000.0);
    }
    record(b, "slo:time_period:days", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e,
              "slo:sli_error:ratio_rate5m%s\n/ on(sloth_id, sloth_slo, sloth_service) "
              "group_left\nslo:error_budget:ratio%s",
              sb_str(&id), sb_str(&id));
    record(b, "slo:current_burn_rate:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e,
              "slo:sli_error:ratio_%s%s%s\n/ on(sloth_id, sloth_slo, sloth_service) "
              "group_left\nslo:error_budget:ratio%s",
              s->period_kind == SLO_PERIOD_ROLLING ? "rate" : "",
              s->period_kind == SLO_PERIOD_ROLLING ? ps : "period", sb_str(&id), sb_str(&id));
    record(b, "slo:period_burn_rate:ratio", sb_str(&e), &s->labels, NULL);
    e.len = 0;
    rg_printf(&e, "1 - slo:period_burn_rate:ratio%s", sb_str(&id));
    record(b, "slo:period_error_budget_remaining:ratio", sb_str(&e), &s->labels, NULL);
    if (invalid_flag(s)) {
        /* 1 per group whose data the engine calls invalid: it holds every tier then */
        e.len = 0;
        rg_printf(&e, "max");
        by_clause(&e, s);
        rg_printf(&e, " (\n");
        static const char *const iw[] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};
        for (size_t k = 0; invalid_counts(s) && k < MT_ARRAY_LEN(iw); k++) {
            invalid_term(&e, s, iw[k]);
            rg_printf(&e, "\n  or\n");
        }
        if (!invalid_counts(s)) {
            /* no inconsistent counts possible: the reset storm alone */
        } else if (s->period_kind == SLO_PERIOD_ROLLING) {
            invalid_term(&e, s, ps);
        } else {
            rg_printf(&e,
                      "  max without (sloth_window) (\n    slo:sli_bad:count_period%s > "
                      "slo:sli_total:count_period%s\n    or\n    "
                      "slo:sli_bad:count_period%s < 0\n  )",
                      sb_str(&id), sb_str(&id), sb_str(&id));
        }
        if (invalid_slices(s)) {
            /* a slice with inconsistent counts ended within the last hour */
            char sw[32], rg[32];
            sb_t in = {0};
            ms_dur(slice_ms(s), sw, sizeof(sw));
            ms_dur(SLO_INVALID_SLICE_MS - 1, rg, sizeof(rg));
            slice_inconsistent(&in, s);
            rg_printf(&e, "%s  count_over_time(%s[%s:%s]) > 0", invalid_counts(s) ? "\n  or\n" : "",
                      sb_str(&in), rg, sw);
            sb_fini(&in);
        }
        if (invalid_resets(s)) {
            rg_printf(&e, "%s", invalid_counts(s) || invalid_slices(s) ? "\n  or\n" : "");
            reset_count(&e, s);
        }
        rg_printf(&e, "\n) * 0 + 1");
        record(b, "slo:sli_invalid:flag", sb_str(&e), &s->labels, NULL);
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
        record(b, "sloth_slo_info", "vector(1)", &info, NULL);
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
            if (s->tiers[j].enabled && same_rule(s, &s->tiers[j], t)) {
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
            if (!u->enabled || !same_rule(s, u, t)) {
                continue;
            }
            char sw[32], lw[32], fs[40], bs[40];
            slo_fmt_duration(u->short_ms, sw, sizeof(sw));
            slo_fmt_duration(u->long_ms, lw, sizeof(lw));
            rt(u->factor, fs, sizeof(fs));
            rt(1.0 - s->objective, bs, sizeof(bs));
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
            if (nd_fill(s) && s->nodata != SLO_NODATA_BAD) {
                /* freeze / alert: the recorded ratios keep their last value, but the engine's
                 * tiers read windows without events as ratio 0 (window_ratio): the short
                 * window needs events (then so has the long one, which contains it) */
                rg_printf(&e, "\n    and ");
                on_groups(&e, s);
                rg_printf(&e, "\n    (");
                window_events(&e, s, sw, u->short_ms);
                rg_printf(&e, " > 0)");
            }
            /* the engine's data state: insufficient_data (0 < period count <
             * max(min_events, 1/(1-objective))) holds every tier */
            rg_printf(&e,
                      "\n    and\n    max(slo:sli_total:count_period%s >= %llu or "
                      "slo:sli_total:count_period%s == 0) without (sloth_window)\n)",
                      sb_str(&id), (unsigned long long)min_period_events(s), sb_str(&id));
            if (nd_fill(s) && s->nodata == SLO_NODATA_BAD) {
                /* bad: a long window without events fires the tier, whatever the data state
                 * (eval.c slo_eval_run: cond = 1 before the low-traffic checks) */
                rg_printf(&e,
                          "\nor\n(\n    max(slo:sli_error:ratio_rate%s%s) without "
                          "(sloth_window)\n    unless ",
                          lw, sb_str(&id));
                on_groups(&e, s);
                rg_printf(&e, "\n    (");
                window_events(&e, s, lw, u->long_ms);
                rg_printf(&e, " > 0)\n)");
            }
            nterm++;
        }
        /* the engine's hold (eval.c slo_alert_step, cond -1): an active tier stays active,
         * an inactive one inactive. A held rule returns its own ALERTS series of the previous
         * evaluation, so Prometheus keeps it pending (its `for` still running) or firing */
        int tier_label = needs_tier_label(s, i);
        if (invalid_flag(s)) {
            /* invalid data holds every tier: no tier term counts then */
            sb_t f = {0}, c = {0};
            rg_printf(&f, "(\n%s\n)\nunless ", sb_str(&e));
            on_groups(&f, s);
            rg_printf(&f, "\nslo:sli_invalid:flag%s", sb_str(&id));
            rg_printf(&c, "slo:sli_invalid:flag%s", sb_str(&id));
            hold_term(&f, s, t, tier_label, "and", sb_str(&c));
            sb_move(&e, &f);
            sb_fini(&c);
        }
        if (nd_fill(s) && s->nodata != SLO_NODATA_BAD && !mergeable(s, t)) {
            /* freeze / alert: a tier whose long window has no events is held (a merged rule's
             * tiers are inactive whenever that happens: see mergeable) */
            char lw[32];
            sb_t c = {0};
            slo_fmt_duration(t->long_ms, lw, sizeof(lw));
            rg_printf(&c, "(");
            window_events(&c, s, lw, t->long_ms);
            rg_printf(&c, " > 0)");
            hold_term(&e, s, t, tier_label, "unless", sb_str(&c));
            sb_fini(&c);
        }
        if ((invalid_flag(s) || (nd_fill(s) && s->nodata != SLO_NODATA_BAD)) &&
            labels_use_value(t)) {
            rg_printf(b,
                      "# NOT EQUIVALENT: %s (%s): a label templated on $value renders anew "
                      "while the\n# engine holds the alert, so the held alert is a new one "
                      "to Prometheus.\n",
                      t->alert_name, t->severity);
        }
        rg_printf(b, "  - alert: %s\n    expr: |\n", t->alert_name);
        indent_block(b, sb_str(&e), 6);
        char d[32];
        if (t->for_ms > 0) {
            rg_printf(b, "    for: %s\n", slo_fmt_duration(t->for_ms, d, sizeof(d)));
        }
        if (t->keep_firing_for_ms > 0) {
            rg_printf(b, "    keep_firing_for: %s\n",
                      slo_fmt_duration(t->keep_firing_for_ms, d, sizeof(d)));
        }
        slo_kv_t lab = t->labels;
        labels_block(b, &lab, NULL, 4);
        if (needs_tier_label(s, i)) {
            rg_printf(b, "      slo_tier: ");
            yq(b, t->name);
            rg_printf(b, "\n");
        }
        rg_printf(b, "    annotations:\n");
        for (size_t k = 0; k < t->annotations.n; k++) {
            rg_printf(b, "      %s: ", t->annotations.keys[k]);
            yq(b, t->annotations.vals[k]);
            rg_printf(b, "\n");
        }
    }
    if (s->nodata == SLO_NODATA_ALERT) {
        /* no_data: alert: no event over the engine's delay (absent_over_time of the total
         * counter, or a total that stopped growing) */
        any = 1;
        char an[160], aw[32];
        nodata_name(s, an, sizeof(an));
        slo_fmt_duration(nodata_after(s), aw, sizeof(aw));
        /* per group: watched for at least the delay (the engine's start-up grace), and no
         * event in the last delay (rate() needs two samples of the window to see growth,
         * so an increment whose sample is `after` old no longer counts, as in the engine) */
        e.len = 0;
        rg_printf(&e, "(time() - slo:nodata_watch_start:time%s) >= %lld\nunless on(", sb_str(&id),
                  (long long)(nodata_after(s) / 1000));
        for (size_t g = 0; g < s->ngroup_by; g++) {
            rg_printf(&e, "%s", g ? ", " : "");
            label_name(&e, s->group_by[g]);
        }
        rg_printf(&e, ")\n(");
        total_rate(&e, s, aw);
        rg_printf(&e, " > 0)");
        rg_printf(b, "  - alert: %s\n    expr: |\n", an);
        indent_block(b, sb_str(&e), 6);
        const char *k[160], *v[160];
        size_t n = nodata_labels(s, k, v, MT_ARRAY_LEN(k));
        rg_printf(b, "    labels:\n");
        for (size_t i = 0; i < n; i++) {
            rg_printf(b, "      %s: ", k[i]);
            yq(b, v[i]);
            rg_printf(b, "\n");
        }
        rg_printf(b, "    annotations:\n      title: ");
        sb_t t = {0};
        rg_printf(&t, "%s: no events for %s", s->id, aw);
        yq(b, sb_str(&t));
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
    label_name(&b, attr);
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
                pq(&b, v);
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
        pq(&ex, s->id);
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
    for (size_t i = 0; i < n; i++) {
        rg_printf(b, "              %s: ", k[i]);
        yq(b, v[i]);
        rg_printf(b, "\n");
    }
    for (size_t g = 0; g < s->ngroup_by; g++) {
        rg_printf(b, "              ");
        label_name(b, s->group_by[g]);
        rg_printf(b, ": ");
        yq(b, gv->v[g]);
        rg_printf(b, "\n");
    }
    if (tier_label) {
        rg_printf(b, "              slo_tier: ");
        yq(b, t->name);
        rg_printf(b, "\n");
    }
    rg_printf(b, "            exp_annotations:\n");
    for (size_t i = 0; i < t->annotations.n; i++) {
        rg_printf(b, "              %s: ", t->annotations.keys[i]);
        yq(b, t->annotations.vals[i]);
        rg_printf(b, "\n");
    }
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
    uint64_t need = min_period_events(s);
    if (timeslices(s)) {
        long m = (long)(((int64_t)need * slice_ms(s) + 59999) / 60000) + 2 +
                 (long)((max_for + 59999) / 60000);
        eval_min = m > eval_min ? m : eval_min;
        /* the 5m window holds a slice only when it ends on a slice boundary (eval.c keeps
         * closed slices at their start): evaluate on one */
        long sm = (long)((slice_ms(s) + 59999) / 60000);
        eval_min = (eval_min + sm - 1) / sm * sm;
    }
    long samples = eval_min + 5;
    sb_t id = {0};
    ids(&id, s);
    /* events per minute: enough that the minute before eval_time reaches min_events and
     * the period's event count the engine's data state needs */
    double inc = s->min_events > 60 ? (double)s->min_events : 60.0;
    if (!timeslices(s) && (double)need > inc) {
        inc = (double)need;
    }

    for (int mode = 0; mode < 2; mode++) { /* 0 outage, 1 healthy */
        rg_printf(b, "  - name: '%s %s'\n    interval: 1m\n    input_series:\n", s->id,
                  mode == 0 ? "full outage pages" : "healthy fires nothing");
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || (mode == 0 ? in.bad_in_outage[i] : !in.bad_in_outage[i]);
            rg_printf(b, "      - series: ");
            yq(b, sb_str(&in.name[i]));
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
                pq(&l, s->labels.vals[i]);
            }
            for (size_t g = 0; g < s->ngroup_by; g++) {
                rg_printf(&l, ", ");
                label_name(&l, s->group_by[g]);
                rg_printf(&l, "=");
                pq(&l, in.gv.v[g]);
            }
            rg_printf(&l, ", sloth_window=\"5m\"}");
            yq(b, sb_str(&l));
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
                pq(&l, s->labels.vals[i]);
            }
            char ps[32];
            rg_printf(&l, ", sloth_window=\"%s\"}",
                      s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? "month"
                      : s->period_kind == SLO_PERIOD_CALENDAR_WEEK
                          ? "week"
                          : slo_fmt_duration(s->period_ms, ps, sizeof(ps)));
            yq(b, sb_str(&l));
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
            /* one expected alert per distinct rule (same_rule group) with this name */
            for (size_t j = i; j < s->ntiers; j++) {
                const slo_tier_t *u = &s->tiers[j];
                if (!u->enabled || strcmp(u->alert_name, t->alert_name) != 0) {
                    continue;
                }
                int dup = 0;
                for (size_t k = i; k < j; k++) {
                    dup |= s->tiers[k].enabled && same_rule(s, &s->tiers[k], u);
                }
                if (!dup) {
                    exp_alert(b, s, u, needs_tier_label(s, j), &in.gv);
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
            yq(b, sb_str(&in.name[i]));
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
        nodata_name(s, an, sizeof(an));
        int64_t after = nodata_after(s);
        long after_min = (long)((after + 59999) / 60000);
        rg_printf(b,
                  "  - name: '%s no data alerts after %s'\n    interval: 1m\n"
                  "    input_series:\n",
                  s->id, slo_fmt_duration(after, aw, sizeof(aw)));
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || !in.bad_in_outage[i];
            rg_printf(b, "      - series: ");
            yq(b, sb_str(&in.name[i]));
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
        size_t n = nodata_labels(s, k, v, MT_ARRAY_LEN(k));
        for (size_t i = 0; i < n; i++) {
            rg_printf(b, "              %s: ", k[i]);
            yq(b, v[i]);
            rg_printf(b, "\n");
        }
        for (size_t g = 0; g < s->ngroup_by; g++) {
            rg_printf(b, "              ");
            label_name(b, s->group_by[g]);
            rg_printf(b, ": ");
            yq(b, in.gv.v[g]);
            rg_printf(b, "\n");
        }
        sb_t t = {0};
        rg_printf(&t, "%s: no events for %s", s->id, aw);
        rg_printf(b, "            exp_annotations:\n              title: ");
        yq(b, sb_str(&t));
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
    yq(&b, rules_file);
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
