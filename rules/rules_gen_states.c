/*
 * rules_gen_states.c - the rule-writing helpers and the engine's data states as rules: no-data
 * names, labels and fills, windows, record blocks, tier merging, holds (own ALERTS) and the
 * `invalid` state (counter resets, out-of-range ratios). Part of the rules/rules_gen module
 * (rules_gen.c).
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

/* The smallest event count n with (1 - objective) x n >= 1, as eval.c tests it in doubles. */
uint64_t rg_min_period_events(const slo_spec_t *s)
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
int64_t rg_nodata_after(const slo_spec_t *s)
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
void rg_nodata_name(const slo_spec_t *s, char *buf, size_t len)
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
size_t rg_nodata_labels(const slo_spec_t *s, const char **k, const char **v, size_t cap)
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
size_t rg_windows(const slo_spec_t *s, int64_t *out, size_t cap)
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

void rg_indent_block(sb_t *b, const char *text, int ind)
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

void rg_labels_block(sb_t *b, const slo_kv_t *kv, const char *window, int ind)
{
    rg_printf(b, "%*slabels:\n", ind, "");
    for (size_t i = 0; i < kv->n; i++) {
        rg_printf(b, "%*s%s: ", ind + 2, "", kv->keys[i]);
        rg_yq(b, kv->vals[i]);
        rg_printf(b, "\n");
    }
    if (window) {
        rg_printf(b, "%*ssloth_window: '%s'\n", ind + 2, "", window);
    }
}

void rg_record(sb_t *b, const char *name, const char *expr, const slo_kv_t *labels,
               const char *window)
{
    rg_printf(b, "  - record: %s\n    expr: |\n", name);
    rg_indent_block(b, expr, 6);
    rg_labels_block(b, labels, window, 4);
}

/* Whether a tier may share an alerting rule with others. A rule's state is its own: with
 * `for` or keep_firing_for Prometheus keeps one pending / keep-firing clock per rule where
 * the engine keeps one per tier, and the engine's hold (eval.c slo_alert_step) is per tier:
 * under no_data freeze / alert a tier whose short window is over half its long one can be
 * active when its long window empties. Without those the rule fires exactly when one of its
 * tiers does (the union of the engine's per-tier states), so such tiers merge. */
int rg_mergeable(const slo_spec_t *s, const slo_tier_t *t)
{
    int nd_hold = rg_nd_fill(s) && s->nodata != SLO_NODATA_BAD;
    return t->for_ms == 0 && t->keep_firing_for_ms == 0 &&
           !(nd_hold && t->short_ms * 2 > t->long_ms);
}

/* Tiers that form one alerting rule: the same tier, or mergeable tiers with the same alert
 * name and severity. */
int rg_same_rule(const slo_spec_t *s, const slo_tier_t *a, const slo_tier_t *b)
{
    return a == b || (!strcmp(a->alert_name, b->alert_name) && !strcmp(a->severity, b->severity) &&
                      rg_mergeable(s, a) && rg_mergeable(s, b));
}

/* Whether two rules of this SLO share alert name + severity (then a slo_tier label tells
 * them apart so their alerts do not collide). */
int rg_needs_tier_label(const slo_spec_t *s, size_t i)
{
    for (size_t j = 0; j < s->ntiers; j++) {
        if (!s->tiers[j].enabled || j == i) {
            continue;
        }
        if (!strcmp(s->tiers[j].alert_name, s->tiers[i].alert_name) &&
            !strcmp(s->tiers[j].severity, s->tiers[i].severity) &&
            !rg_same_rule(s, &s->tiers[i], &s->tiers[j])) {
            return 1;
        }
    }
    return 0;
}

/* on(<group labels>): matches one series per group whatever else the series carry. */
void rg_on_groups(sb_t *b, const slo_spec_t *s)
{
    rg_printf(b, "on(");
    for (size_t g = 0; g < s->ngroup_by; g++) {
        rg_printf(b, "%s", g ? ", " : "");
        rg_label_name(b, s->group_by[g]);
    }
    rg_printf(b, ")");
}

/* no_data: bad / freeze / alert: the window ratios the rules record are the engine's for
 * windows without events too (eval.c fill_ratios): 1 (bad), or the previous evaluation's value
 * (freeze, alert; 0 before the group had one), for every group the engine knows
 * (slo:nodata_watch_start:time); under time slices "events" are closed slices with events, and
 * bad also counts every empty slice after the group's first (rg_slices_bad). */
int rg_nd_fill(const slo_spec_t *s)
{
    return s->nodata != SLO_NODATA_GOOD;
}

/* What "the window has events" means to the engine's tiers (window total > 0): events in
 * the window, or, under time slice budgeting, closed slices with events in it. */
void rg_window_events(sb_t *b, const slo_spec_t *s, const char *w, int64_t w_ms)
{
    if (rg_slices_bad(s)) {
        rg_slice_n(b, s, w_ms);
    } else if (rg_timeslices(s)) {
        rg_slice_count(b, s, w_ms);
    } else {
        rg_total_rate(b, s, w);
    }
}

/* Whether a tier label renders from the alert's value (then a held alert, whose value is its
 * ALERTS sample, gets other labels). */
int rg_labels_use_value(const slo_tier_t *t)
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
    rg_pq(b, t->alert_name);
    rg_printf(b, ", sloth_id=");
    rg_pq(b, s->id);
    for (size_t k = 0; k < t->labels.n; k++) {
        if (strstr(t->labels.vals[k], "{{")) {
            continue;
        }
        rg_printf(b, ", ");
        rg_label_name(b, t->labels.keys[k]);
        rg_printf(b, "=");
        rg_pq(b, t->labels.vals[k]);
    }
    if (tier_label) {
        rg_printf(b, ", slo_tier=");
        rg_pq(b, t->name);
    }
    rg_printf(b, "})");
}

/* The hold appended to a rule's expression: `or` its own alerts (own_alerts) `and` (held
 * while) or `unless` (held until) `cond`, per group. */
void rg_hold_term(sb_t *b, const slo_spec_t *s, const slo_tier_t *t, int tier_label, const char *op,
                  const char *cond)
{
    rg_printf(b, "\nor ");
    rg_on_groups(b, s);
    rg_printf(b, "\n(\n    ");
    own_alerts(b, s, t, tier_label);
    rg_printf(b, "\n    %s ", op);
    rg_on_groups(b, s);
    rg_printf(b, "\n    %s\n)", cond);
}

/* no_data: bad / freeze / alert (rg_nd_fill): `expr` with a defined value (0/0 gives NaN, which
 * `>= -Inf` drops), else, for freeze/alert, the rule's own previous value (name + window:
 * exactly the series this rule writes), else, for every group the engine knows, 1 (bad) or
 * 0 (freeze, alert: eval.c's ratio before the instance has a last result). */
static void nd_ratio(sb_t *b, const slo_spec_t *s, const char *name, const char *window,
                     const char *expr)
{
    sb_t id = {0};
    rg_ids(&id, s);
    rg_printf(b, "(\n%s\n) >= -Inf", expr);
    if (s->nodata != SLO_NODATA_BAD) {
        rg_printf(b, "\nor ");
        rg_on_groups(b, s);
        rg_printf(b, "\n%s", name);
        id.len -= 1; /* drop "}" */
        id.p[id.len] = 0;
        rg_printf(b, "%s, sloth_window=\"%s\"}", sb_str(&id), window);
        id.len = 0;
        rg_ids(&id, s);
    }
    rg_printf(b, "\nor ");
    rg_on_groups(b, s);
    rg_printf(b, "\n(slo:nodata_watch_start:time%s * 0 + %d)", sb_str(&id),
              s->nodata == SLO_NODATA_BAD ? 1 : 0);
    sb_fini(&id);
}

/* Records an error ratio `expr` under `name`, through nd_ratio where the no-data policy
 * fills windows without events. */
void rg_record_ratio(sb_t *b, const slo_spec_t *s, const char *name, const char *window,
                     const char *expr)
{
    sb_t f = {0};
    if (rg_nd_fill(s)) {
        nd_ratio(&f, s, name, window, expr);
        expr = sb_str(&f);
    }
    rg_record(b, name, expr, &s->labels, window);
    sb_fini(&f);
}

/* The engine's `invalid` data state (eval.c slo_eval_compute), part one: some window (5m, 30m,
 * 1h, 2h, 6h, 1d, 3d or the period) holds more good (or bad) events than events in total.
 * Modelled for occurrence budgeting and the SLIs that can be inconsistent; under time slices
 * the same SLIs give invalid_slices. */
int rg_invalid_counts(const slo_spec_t *s)
{
    return !rg_timeslices(s) && rg_can_be_inconsistent(s);
}

/* Part two: a counter-reset storm (more than SLO_RESET_STORM resets in the last hour), for
 * every SLI read from counters, under any budgeting. */
int rg_invalid_resets(const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    return (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) ||
           q->kind == SLO_SLI_RATIO || q->kind == SLO_SLI_LATENCY;
}

/* Whether the rules keep slo:sli_invalid:flag (then every alert is gated and held on it). */
int rg_invalid_flag(const slo_spec_t *s)
{
    return rg_invalid_counts(s) || rg_invalid_slices(s) || rg_invalid_resets(s);
}

/* A Sloth query over 1h with its rate() / increase() turned into resets(). */
static void query_resets(sb_t *b, const char *q)
{
    sb_t t = {0};
    rg_tpl(&t, q, "1h");
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
void rg_reset_count(sb_t *b, const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    sb_t t[3] = {{0}, {0}, {0}};
    size_t n = 0;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        query_resets(&t[n++], q->error_query);
        query_resets(&t[n++], q->total_query);
    } else if (q->kind == SLO_SLI_LATENCY) {
        rg_agg_fn(&t[n++], s, &q->histogram, "_count", NULL, "1h", "resets");
    } else {
        if (q->has_good) {
            rg_agg_fn(&t[n++], s, &q->good, NULL, NULL, "1h", "resets");
        }
        if (q->has_bad) {
            rg_agg_fn(&t[n++], s, &q->bad, NULL, NULL, "1h", "resets");
        }
        if (q->has_total) {
            rg_agg_fn(&t[n++], s, &q->total, NULL, NULL, "1h", "resets");
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
void rg_invalid_term(sb_t *b, const slo_spec_t *s, const char *w)
{
    rg_printf(b, "  abs((\n");
    rg_error_ratio(b, s, w);
    rg_printf(b, "\n  ) - 0.5) > 0.5");
}

/* While the data is invalid the engine's window ratios are clamped to [0, 1] (eval.c
 * split_counts: more good than total counts as no errors, more bad as all errors), and a
 * window without events has no ratio of its own (x/0 = +-Inf is dropped like 0/0 = NaN,
 * then filled by nd_ratio where the no-data policy says so). slo:sli_invalid:flag reads the
 * unclamped ratios. */
void rg_clamp_invalid(sb_t *e, const slo_spec_t *s)
{
    if (!rg_invalid_counts(s)) {
        return;
    }
    sb_t f = {0};
    rg_printf(&f, "clamp(\n(\n%s\n) > -Inf < +Inf,\n0, 1)", sb_str(e));
    rg_sb_move(e, &f);
}
