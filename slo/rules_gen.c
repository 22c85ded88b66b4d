/*
 * rules_gen.c - Prometheus rules equivalent to meltp's in-process SLO evaluation, named as
 * Sloth names them (slo:sli_error:ratio_rate<W>, slo:period_error_budget_remaining:ratio, ...,
 * labels sloth_id/sloth_service/sloth_slo/sloth_window) so existing Sloth dashboards work, plus
 * promtool unit tests that drive a full outage and a healthy series through those rules.
 * Differences from Sloth, on purpose: the period SLI is the exact event ratio over the period
 * (meltp counts events exactly; Sloth's default averages 5m ratios, slok/sloth#241), and tiers
 * carry `for` / `keep_firing_for` when the spec sets them. Engine parity: `min_events` adds
 * slo:sli_total:count<long window> recordings that gate each tier; `no_data: alert` gets the
 * engine's <name>NoData alert after the engine's delay (the other policies get a comment, as
 * Prometheus sees missing data as no error); calendar periods keep the nominal window and get
 * a WARNING comment.
 */
#include "model.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable string; generation runs in a CLI, so out of memory exits (craft convention 11). */
typedef struct {
    char *p;
    size_t n, cap;
} sb_t;

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...)
{
    /* vasprintf, not vsnprintf(NULL, 0, ...): GCC with -fsanitize=undefined warns on that */
    va_list ap;
    char *t = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&t, fmt, ap);
    va_end(ap);
    if (n < 0 || !t) {
        fprintf(stderr, "meltp: out of memory\n");
        exit(1);
    }
    if (b->n + (size_t)n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            fprintf(stderr, "meltp: out of memory\n");
            exit(1);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, t, (size_t)n + 1);
    b->n += (size_t)n;
    free(t);
}

static void sb_free(sb_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static const char *sb_str(sb_t *b)
{
    return b->p ? b->p : "";
}

/* YAML single-quoted scalar: only ' needs doubling. */
static void yq(sb_t *b, const char *s)
{
    sb_printf(b, "'");
    for (; *s; s++) {
        if (*s == '\'') {
            sb_printf(b, "''");
        } else if (*s == '\n') {
            sb_printf(b, " ");
        } else {
            sb_printf(b, "%c", *s);
        }
    }
    sb_printf(b, "'");
}

/* PromQL double-quoted string. */
static void pq(sb_t *b, const char *s)
{
    sb_printf(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            sb_printf(b, "\\%c", *s);
        } else if (*s == '\n') {
            sb_printf(b, "\\n");
        } else {
            sb_printf(b, "%c", *s);
        }
    }
    sb_printf(b, "\"");
}

/* Attribute names (http.route) become label names (http_route) the way promconv does. */
static void label_name(sb_t *b, const char *s)
{
    if (isdigit((unsigned char)*s)) {
        sb_printf(b, "_");
    }
    for (; *s; s++) {
        sb_printf(b, "%c", isalnum((unsigned char)*s) || *s == '_' ? *s : '_');
    }
}

static const char *OPS[] = {"=", "!=", "=~", "!~"};

static void selector(sb_t *b, const slo_selector_t *s, const char *suffix, const char *extra)
{
    sb_printf(b, "%s%s{", s->metric ? s->metric : "", s->metric && suffix ? suffix : "");
    for (size_t i = 0; i < s->nm; i++) {
        sb_printf(b, "%s%s%s", i ? "," : "", s->m[i].name, OPS[s->m[i].op]);
        pq(b, s->m[i].value);
    }
    if (extra) {
        sb_printf(b, "%s%s", s->nm ? "," : "", extra);
    }
    sb_printf(b, "}");
}

static void ids(sb_t *b, const slo_spec_t *s)
{
    sb_printf(b, "{sloth_id=");
    pq(b, s->id);
    sb_printf(b, ", sloth_service=");
    pq(b, s->service);
    sb_printf(b, ", sloth_slo=");
    pq(b, s->name);
    sb_printf(b, "}");
}

static void by_clause(sb_t *b, const slo_spec_t *s)
{
    if (!s->ngroup_by) {
        return;
    }
    sb_printf(b, " by (");
    for (size_t i = 0; i < s->ngroup_by; i++) {
        if (i) {
            sb_printf(b, ", ");
        }
        label_name(b, s->group_by[i]);
    }
    sb_printf(b, ")");
}

/* sum [by (g)] (rate(SEL[W])) */
static void agg(sb_t *b, const slo_spec_t *s, const slo_selector_t *sel, const char *suffix,
                const char *extra, const char *w)
{
    sb_printf(b, "sum");
    by_clause(b, s);
    sb_printf(b, " (rate(");
    selector(b, sel, suffix, extra);
    sb_printf(b, "[%s]))", w);
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
                    sb_printf(b, "%s", w);
                    q = e + 2;
                    continue;
                }
            }
        }
        sb_printf(b, "%c", *q == '\n' ? ' ' : *q);
        q++;
    }
}

static void events_sel(sb_t *b, const slo_spec_t *s, const char *event, const char *w)
{
    slo_selector_t sel = {.metric = (char *)SLO_EVENTS_METRIC};
    sb_t extra = {0};
    sb_printf(&extra, "sloth_id=");
    pq(&extra, s->id);
    sb_printf(&extra, ",event=\"%s\"", event);
    agg(b, s, &sel, NULL, sb_str(&extra), w);
    sb_free(&extra);
}

/* The error ratio over window w, as one PromQL expression. */
static void error_ratio(sb_t *b, const slo_spec_t *s, const char *w)
{
    const slo_sli_t *q = &s->sli;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        sb_printf(b, "(");
        tpl(b, q->error_query, w);
        sb_printf(b, ")\n/\n(");
        tpl(b, q->total_query, w);
        sb_printf(b, ")");
        return;
    }
    switch (q->kind) {
    case SLO_SLI_RATIO:
        if (q->has_bad && q->has_total) {
            sb_printf(b, "(");
            agg(b, s, &q->bad, NULL, NULL, w);
            sb_printf(b, ")\n/\n(");
            agg(b, s, &q->total, NULL, NULL, w);
            sb_printf(b, ")");
        } else if (q->has_good && q->has_total) {
            sb_printf(b, "(");
            agg(b, s, &q->total, NULL, NULL, w);
            sb_printf(b, " - ");
            agg(b, s, &q->good, NULL, NULL, w);
            sb_printf(b, ")\n/\n(");
            agg(b, s, &q->total, NULL, NULL, w);
            sb_printf(b, ")");
        } else {
            /* good + bad: total = good + bad */
            sb_printf(b, "(");
            agg(b, s, &q->bad, NULL, NULL, w);
            sb_printf(b, ")\n/\n(");
            agg(b, s, &q->bad, NULL, NULL, w);
            sb_printf(b, " + ");
            agg(b, s, &q->good, NULL, NULL, w);
            sb_printf(b, ")");
        }
        break;
    case SLO_SLI_LATENCY: {
        char le[64];
        snprintf(le, sizeof(le), "le=\"%.15g\"", q->threshold);
        sb_printf(b, "(");
        agg(b, s, &q->histogram, "_count", NULL, w);
        sb_printf(b, " - ");
        agg(b, s, &q->histogram, "_bucket", le, w);
        sb_printf(b, ")\n/\n(");
        agg(b, s, &q->histogram, "_count", NULL, w);
        sb_printf(b, ")");
        break;
    }
    case SLO_SLI_SPANS:
    case SLO_SLI_LOGS:
        sb_printf(b, "(");
        events_sel(b, s, "bad", w);
        sb_printf(b, ")\n/\n(");
        events_sel(b, s, "total", w);
        sb_printf(b, ")");
        break;
    }
}

/* The total event rate over window w: the denominator of error_ratio. */
static void total_rate(sb_t *b, const slo_spec_t *s, const char *w)
{
    const slo_sli_t *q = &s->sli;
    if (s->format == SLO_FMT_SLOTH && q->error_query && q->total_query) {
        sb_printf(b, "(");
        tpl(b, q->total_query, w);
        sb_printf(b, ")");
        return;
    }
    switch (q->kind) {
    case SLO_SLI_RATIO:
        if (q->has_total) {
            agg(b, s, &q->total, NULL, NULL, w);
        } else {
            sb_printf(b, "(");
            agg(b, s, &q->bad, NULL, NULL, w);
            sb_printf(b, " + ");
            agg(b, s, &q->good, NULL, NULL, w);
            sb_printf(b, ")");
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
    if (!(s->format == SLO_FMT_SLOTH && q->error_query && q->total_query
          && strstr(q->total_query, "increase("))) {
        sb_printf(b, " * %lld", (long long)(w_ms / 1000));
    }
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
    cand[nc++] = s->period_ms;
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
    sb_printf(b, "%*s", ind, "");
    for (const char *p = text; *p; p++) {
        sb_printf(b, "%c", *p);
        if (*p == '\n' && p[1]) {
            sb_printf(b, "%*s", ind, "");
        }
    }
    sb_printf(b, "\n");
}

static void labels_block(sb_t *b, const slo_kv_t *kv, const char *window, int ind)
{
    sb_printf(b, "%*slabels:\n", ind, "");
    for (size_t i = 0; i < kv->n; i++) {
        sb_printf(b, "%*s%s: ", ind + 2, "", kv->keys[i]);
        yq(b, kv->vals[i]);
        sb_printf(b, "\n");
    }
    if (window) {
        sb_printf(b, "%*ssloth_window: '%s'\n", ind + 2, "", window);
    }
}

static void record(sb_t *b, const char *name, const char *expr, const slo_kv_t *labels,
                   const char *window)
{
    sb_printf(b, "  - record: %s\n    expr: |\n", name);
    indent_block(b, expr, 6);
    labels_block(b, labels, window, 4);
}

/* Tiers that form one alerting rule: same alert name, severity, for and keep_firing_for. */
static int same_rule(const slo_tier_t *a, const slo_tier_t *b)
{
    return !strcmp(a->alert_name, b->alert_name) && !strcmp(a->severity, b->severity)
           && a->for_ms == b->for_ms && a->keep_firing_for_ms == b->keep_firing_for_ms;
}

/* Whether two rules of this SLO share alert name + severity (then a slo_tier label tells
 * them apart so their alerts do not collide). */
static int needs_tier_label(const slo_spec_t *s, size_t i)
{
    for (size_t j = 0; j < s->ntiers; j++) {
        if (!s->tiers[j].enabled || j == i) {
            continue;
        }
        if (!strcmp(s->tiers[j].alert_name, s->tiers[i].alert_name)
            && !strcmp(s->tiers[j].severity, s->tiers[i].severity)
            && !same_rule(&s->tiers[i], &s->tiers[j])) {
            return 1;
        }
    }
    return 0;
}

static void spec_rules(sb_t *b, const slo_spec_t *s)
{
    int64_t w[2 * SLO_MAX_TIERS + 2];
    size_t nw = windows(s, w, MT_ARRAY_LEN(w));
    char ws[32], ps[32];
    slo_fmt_duration(s->period_ms, ps, sizeof(ps));

    if (s->period_kind != SLO_PERIOD_ROLLING) {
        sb_printf(b,
                  "# WARNING: %s has a calendar %s period (%s); PromQL windows\n# cannot "
                  "follow calendar boundaries, so the period rules below use the nominal\n# "
                  "rolling %s window. meltp's engine and GET /api/v1/slos report the calendar\n"
                  "# period; these rules do not.\n",
                  s->id, s->period_kind == SLO_PERIOD_CALENDAR_MONTH ? "month" : "week",
                  s->time_zone ? s->time_zone : "UTC", ps);
    }
    if (s->nodata != SLO_NODATA_ALERT) {
        sb_printf(b,
                  "# %s: no_data: %s. Prometheus evaluates missing data as no error "
                  "(good):\n# windows without events give no ratio and no alert%s.\n",
                  s->id, slo_nodata_name(s->nodata),
                  s->nodata == SLO_NODATA_GOOD ? ", as the engine does"
                                               : "; only the engine applies this policy");
    }
    sb_printf(b, "- name: sloth-slo-sli-recordings-%s\n  rules:\n", s->id);
    for (size_t i = 0; i < nw; i++) {
        slo_fmt_duration(w[i], ws, sizeof(ws));
        sb_t e = {0};
        error_ratio(&e, s, ws);
        char name[64];
        snprintf(name, sizeof(name), "slo:sli_error:ratio_rate%s", ws);
        record(b, name, sb_str(&e), &s->labels, ws);
        sb_free(&e);
    }
    /* min_events: event counts over each long window gate the alerts, as in the engine */
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
        total_count(&e, s, ws, s->tiers[i].long_ms);
        char name[64];
        snprintf(name, sizeof(name), "slo:sli_total:count%s", ws);
        record(b, name, sb_str(&e), &s->labels, ws);
        sb_free(&e);
    }

    sb_t id = {0};
    ids(&id, s);
    sb_t e = {0};
    sb_printf(b, "- name: sloth-slo-meta-recordings-%s\n  rules:\n", s->id);
    sb_printf(&e, "vector(%.10g)", s->objective);
    record(b, "slo:objective:ratio", sb_str(&e), &s->labels, NULL);
    e.n = 0;
    sb_printf(&e, "vector(1-%.10g)", s->objective);
    record(b, "slo:error_budget:ratio", sb_str(&e), &s->labels, NULL);
    e.n = 0;
    sb_printf(&e, "vector(%.10g)", (double)s->period_ms / 86400000.0);
    record(b, "slo:time_period:days", sb_str(&e), &s->labels, NULL);
    e.n = 0;
    sb_printf(&e,
              "slo:sli_error:ratio_rate5m%s\n/ on(sloth_id, sloth_slo, sloth_service) "
              "group_left\nslo:error_budget:ratio%s",
              sb_str(&id), sb_str(&id));
    record(b, "slo:current_burn_rate:ratio", sb_str(&e), &s->labels, NULL);
    e.n = 0;
    sb_printf(&e,
              "slo:sli_error:ratio_rate%s%s\n/ on(sloth_id, sloth_slo, sloth_service) "
              "group_left\nslo:error_budget:ratio%s",
              ps, sb_str(&id), sb_str(&id));
    record(b, "slo:period_burn_rate:ratio", sb_str(&e), &s->labels, NULL);
    e.n = 0;
    sb_printf(&e, "1 - slo:period_burn_rate:ratio%s", sb_str(&id));
    record(b, "slo:period_error_budget_remaining:ratio", sb_str(&e), &s->labels, NULL);
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

    sb_printf(b, "- name: sloth-slo-alerts-%s\n  rules:\n", s->id);
    int any = 0;
    for (size_t i = 0; i < s->ntiers; i++) {
        const slo_tier_t *t = &s->tiers[i];
        if (!t->enabled) {
            continue;
        }
        int first = 1;
        for (size_t j = 0; j < i; j++) {
            if (s->tiers[j].enabled && same_rule(&s->tiers[j], t)) {
                first = 0;
            }
        }
        if (!first) {
            continue;
        }
        any = 1;
        e.n = 0;
        int nterm = 0;
        for (size_t j = i; j < s->ntiers; j++) {
            const slo_tier_t *u = &s->tiers[j];
            if (!u->enabled || !same_rule(u, t)) {
                continue;
            }
            char sw[32], lw[32];
            slo_fmt_duration(u->short_ms, sw, sizeof(sw));
            slo_fmt_duration(u->long_ms, lw, sizeof(lw));
            sb_printf(&e,
                      "%s(\n    max(slo:sli_error:ratio_rate%s%s > (%.10g * %.10g)) without "
                      "(sloth_window)\n    and\n    max(slo:sli_error:ratio_rate%s%s > (%.10g * "
                      "%.10g)) without (sloth_window)\n)",
                      nterm ? "\nor\n" : "", sw, sb_str(&id), u->factor, 1.0 - s->objective, lw,
                      sb_str(&id), u->factor, 1.0 - s->objective);
            if (s->min_events > 0) {
                /* low traffic is not a page: the long window needs min_events events */
                e.n -= 2;
                e.p[e.n] = 0;
                sb_printf(&e,
                          "\n    and\n    max(slo:sli_total:count%s%s >= %llu) without "
                          "(sloth_window)\n)",
                          lw, sb_str(&id), (unsigned long long)s->min_events);
            }
            nterm++;
        }
        sb_printf(b, "  - alert: %s\n    expr: |\n", t->alert_name);
        indent_block(b, sb_str(&e), 6);
        char d[32];
        if (t->for_ms > 0) {
            sb_printf(b, "    for: %s\n", slo_fmt_duration(t->for_ms, d, sizeof(d)));
        }
        if (t->keep_firing_for_ms > 0) {
            sb_printf(b, "    keep_firing_for: %s\n",
                      slo_fmt_duration(t->keep_firing_for_ms, d, sizeof(d)));
        }
        slo_kv_t lab = t->labels;
        labels_block(b, &lab, NULL, 4);
        if (needs_tier_label(s, i)) {
            sb_printf(b, "      slo_tier: ");
            yq(b, t->name);
            sb_printf(b, "\n");
        }
        sb_printf(b, "    annotations:\n");
        for (size_t k = 0; k < t->annotations.n; k++) {
            sb_printf(b, "      %s: ", t->annotations.keys[k]);
            yq(b, t->annotations.vals[k]);
            sb_printf(b, "\n");
        }
    }
    if (s->nodata == SLO_NODATA_ALERT) {
        /* no_data: alert: no event over the engine's delay (absent_over_time of the total
         * counter, or a total that stopped growing) */
        any = 1;
        char an[160], aw[32];
        nodata_name(s, an, sizeof(an));
        slo_fmt_duration(nodata_after(s), aw, sizeof(aw));
        e.n = 0;
        sb_printf(&e, "absent(\n    ");
        total_rate(&e, s, aw);
        sb_printf(&e, "\n)\nor\nsum(\n    ");
        total_rate(&e, s, aw);
        sb_printf(&e, "\n) == 0");
        sb_printf(b, "  - alert: %s\n    expr: |\n", an);
        indent_block(b, sb_str(&e), 6);
        const char *k[160], *v[160];
        size_t n = nodata_labels(s, k, v, MT_ARRAY_LEN(k));
        sb_printf(b, "    labels:\n");
        for (size_t i = 0; i < n; i++) {
            sb_printf(b, "      %s: ", k[i]);
            yq(b, v[i]);
            sb_printf(b, "\n");
        }
        sb_printf(b, "    annotations:\n      title: ");
        sb_t t = {0};
        sb_printf(&t, "%s: no events for %s", s->id, aw);
        yq(b, sb_str(&t));
        sb_free(&t);
        sb_printf(b, "\n");
    }
    if (!any) {
        /* promtool rejects a group without rules */
        b->n -= strlen("  rules:\n");
        b->p[b->n] = 0;
        sb_printf(b, "  rules: []\n");
    }
    sb_free(&e);
    sb_free(&id);
}

int slo_rules_write(FILE *f, const slo_set_t *set, mt_errbuf_t *eb)
{
    sb_t b = {0};
    sb_printf(&b, "# Generated by meltp slo rules (meltp %s) - Sloth-compatible SLO rules.\n"
                  "# Do not edit: regenerate from the SLO specs.\ngroups:\n",
              MELTP_VERSION);
    for (size_t i = 0; i < set->n; i++) {
        spec_rules(&b, &set->slos[i]);
    }
    int rc = MT_OK;
    if (fwrite(sb_str(&b), 1, b.n, f) != b.n) {
        mt_failf(eb, "write failed");
        rc = MT_EIO;
    }
    sb_free(&b);
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
    const char *fixed[] = {"meltp_test", "500", "503", "5xx", "200", "0", "1", "error", "ERROR",
                           "ok", "true", "false", "GET", "POST", "a", ""};
    /* candidates separated by \x01 */
    for (size_t i = 0; i < n; i++) {
        sb_printf(&cand, "%s\x01", ms[i]->value);
        if (ms[i]->op == SLO_MATCH_RE || ms[i]->op == SLO_MATCH_NRE) {
            /* each alternative, with . -> 0 and regex syntax dropped */
            const char *v = ms[i]->value;
            sb_t alt = {0};
            for (const char *p = v;; p++) {
                if (*p == '|' || !*p) {
                    sb_printf(&cand, "%s\x01", sb_str(&alt));
                    alt.n = 0;
                    if (alt.p) {
                        alt.p[0] = 0;
                    }
                    if (!*p) {
                        break;
                    }
                } else if (*p == '.') {
                    sb_printf(&alt, "0");
                } else if (*p == '\\' && p[1]) {
                    p++;
                    sb_printf(&alt, "%c", *p == 'd' ? '0' : *p);
                } else if (*p == '[' && strchr(p, ']')) {
                    sb_printf(&alt, "%c", p[1] == '^' ? 'z' : p[1]);
                    p = strchr(p + 1, ']');
                } else if (!strchr("()^$*+?{}", *p)) {
                    sb_printf(&alt, "%c", *p);
                }
            }
            sb_free(&alt);
        }
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(fixed); i++) {
        sb_printf(&cand, "%s\x01", fixed[i]);
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
    sb_free(&cand);
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
    sb_free(&b);
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
        sb_printf(&b, "%s{", metric);
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
                sb_printf(&b, "%s%s=", first ? "" : ",", names[j]);
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
            sb_printf(&b, "%s%s=\"g1\"", first ? "" : ",", gn);
            if (gv) {
                snprintf(gv->v[g], sizeof(gv->v[g]), "g1");
            }
            first = 0;
        }
        if (extra) {
            sb_printf(&b, "%s%s", first ? "" : ",", extra);
        }
        sb_printf(&b, "}");
        if (ok) {
            sb_printf(out, "%s", sb_str(&b));
            sb_free(&b);
            return 0;
        }
        sb_free(&b);
    }
    return -1;
}

typedef struct {
    sb_t name[4];
    int bad_in_outage[4]; /* 1: increments during the outage; 0: during healthy traffic */
    int always[4];        /* 1: increments in both (totals) */
    int n;
    gvals_t gv;           /* group label values of the first series */
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
        sb_printf(&ex, "sloth_id=");
        pq(&ex, s->id);
        size_t base = ex.n;
        sb_printf(&ex, ",event=\"bad\"");
        if (series(&in->name[0], SLO_EVENTS_METRIC, m, 1, NULL, s, sb_str(&ex), &in->gv) != 0) {
            sb_free(&ex);
            return -1;
        }
        ex.n = base;
        sb_printf(&ex, ",event=\"total\"");
        series(&in->name[1], SLO_EVENTS_METRIC, m, 1, NULL, s, sb_str(&ex), NULL);
        sb_free(&ex);
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
                   !strcmp(q->bad.metric, q->good.metric) ? &q->good : NULL, s, NULL, &in->gv)
                != 0
            || series(&in->name[1], q->good.metric, mg, 1,
                      !strcmp(q->bad.metric, q->good.metric) ? &q->bad : NULL, s, NULL, NULL)
                   != 0) {
            return -1;
        }
        in->bad_in_outage[0] = 1;
        in->bad_in_outage[1] = 0;
        in->n = 2;
        return 0;
    }
    if (strcmp(ev->metric, tot->metric) != 0) {
        const slo_selector_t *me[1] = {ev}, *mt[1] = {tot};
        if (series(&in->name[0], ev->metric, me, 1, NULL, s, NULL, &in->gv) != 0
            || series(&in->name[1], tot->metric, mt, 1, NULL, s, NULL, NULL) != 0) {
            return -1;
        }
        in->bad_in_outage[0] = ev_is_bad;
        in->always[1] = 1;
        in->n = 2;
        return 0;
    }
    /* same counter: one series inside the event selector, one outside it */
    const slo_selector_t *both[2] = {ev, tot}, *only[1] = {tot};
    if (series(&in->name[0], ev->metric, both, 2, NULL, s, NULL, &in->gv) != 0
        || series(&in->name[1], tot->metric, only, 1, ev, s, NULL, NULL) != 0) {
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
        sb_free(&in->name[i]);
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
    sb_printf(b, "          - exp_labels:\n");
    for (size_t i = 0; i < n; i++) {
        sb_printf(b, "              %s: ", k[i]);
        yq(b, v[i]);
        sb_printf(b, "\n");
    }
    for (size_t g = 0; g < s->ngroup_by; g++) {
        sb_printf(b, "              ");
        label_name(b, s->group_by[g]);
        sb_printf(b, ": ");
        yq(b, gv->v[g]);
        sb_printf(b, "\n");
    }
    if (tier_label) {
        sb_printf(b, "              slo_tier: ");
        yq(b, t->name);
        sb_printf(b, "\n");
    }
    sb_printf(b, "            exp_annotations:\n");
    for (size_t i = 0; i < t->annotations.n; i++) {
        sb_printf(b, "              %s: ", t->annotations.keys[i]);
        yq(b, t->annotations.vals[i]);
        sb_printf(b, "\n");
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
        sb_printf(b, "  # %s: no test: could not build input series matching the selectors\n",
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
    long samples = eval_min + 5;
    sb_t id = {0};
    ids(&id, s);
    /* events per minute: enough that the 10 minutes before eval_time reach min_events */
    double inc = s->min_events > 60 ? (double)s->min_events : 60.0;

    for (int mode = 0; mode < 2; mode++) { /* 0 outage, 1 healthy */
        sb_printf(b, "  - name: '%s %s'\n    interval: 1m\n    input_series:\n", s->id,
                  mode == 0 ? "full outage pages" : "healthy fires nothing");
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || (mode == 0 ? in.bad_in_outage[i] : !in.bad_in_outage[i]);
            sb_printf(b, "      - series: ");
            yq(b, sb_str(&in.name[i]));
            sb_printf(b, "\n        values: '0+%.10gx%ld'\n", grows ? inc : 0.0, samples);
        }
        sb_printf(b, "    promql_expr_test:\n      - expr: 'slo:sli_error:ratio_rate5m%s'\n",
                  sb_str(&id));
        sb_printf(b, "        eval_time: %ldm\n        exp_samples:\n          - labels: ", eval_min);
        {
            sb_t l = {0};
            sb_printf(&l, "slo:sli_error:ratio_rate5m{");
            for (size_t i = 0; i < s->labels.n; i++) {
                sb_printf(&l, "%s%s=", i ? ", " : "", s->labels.keys[i]);
                pq(&l, s->labels.vals[i]);
            }
            for (size_t g = 0; g < s->ngroup_by; g++) {
                sb_printf(&l, ", ");
                label_name(&l, s->group_by[g]);
                sb_printf(&l, "=");
                pq(&l, in.gv.v[g]);
            }
            sb_printf(&l, ", sloth_window=\"5m\"}");
            yq(b, sb_str(&l));
            sb_free(&l);
        }
        sb_printf(b, "\n            value: %d\n", mode == 0 ? 1 : 0);
        if (mode == 1 && s->ngroup_by == 0) {
            sb_printf(b, "      - expr: 'slo:period_error_budget_remaining:ratio%s'\n", sb_str(&id));
            sb_printf(b, "        eval_time: %ldm\n        exp_samples:\n          - labels: ",
                      eval_min);
            sb_t l = {0};
            sb_printf(&l, "slo:period_error_budget_remaining:ratio{");
            for (size_t i = 0; i < s->labels.n; i++) {
                sb_printf(&l, "%s%s=", i ? ", " : "", s->labels.keys[i]);
                pq(&l, s->labels.vals[i]);
            }
            char ps[32];
            sb_printf(&l, ", sloth_window=\"%s\"}", slo_fmt_duration(s->period_ms, ps, sizeof(ps)));
            yq(b, sb_str(&l));
            sb_free(&l);
            sb_printf(b, "\n            value: 1\n");
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
                sb_printf(b, "    # %s: annotations use templates; expected alerts not asserted\n",
                          t->alert_name);
                continue;
            }
            if (!header) {
                sb_printf(b, "    alert_rule_test:\n");
                header = 1;
            }
            sb_printf(b, "      - eval_time: %ldm\n        alertname: %s\n        exp_alerts:",
                      eval_min, t->alert_name);
            if (mode == 1) {
                sb_printf(b, " []\n");
                continue;
            }
            sb_printf(b, "\n");
            /* one expected alert per distinct rule (same_rule group) with this name */
            for (size_t j = i; j < s->ntiers; j++) {
                const slo_tier_t *u = &s->tiers[j];
                if (!u->enabled || strcmp(u->alert_name, t->alert_name) != 0) {
                    continue;
                }
                int dup = 0;
                for (size_t k = i; k < j; k++) {
                    dup |= s->tiers[k].enabled && same_rule(&s->tiers[k], u);
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
        sb_printf(b, "  - name: '%s low traffic below min_events fires nothing'\n"
                     "    interval: 1m\n    input_series:\n", s->id);
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || in.bad_in_outage[i];
            sb_printf(b, "      - series: ");
            yq(b, sb_str(&in.name[i]));
            sb_printf(b, "\n        values: '0+%.10gx%ld'\n", grows ? low : 0.0, samples);
        }
        sb_printf(b, "    promql_expr_test:\n      - expr: 'max(slo:sli_error:ratio_rate5m%s)'\n"
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
                sb_printf(b, "      - eval_time: %ldm\n        alertname: %s\n"
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
        sb_printf(b, "  - name: '%s no data alerts after %s'\n    interval: 1m\n"
                     "    input_series:\n", s->id, slo_fmt_duration(after, aw, sizeof(aw)));
        for (int i = 0; i < in.n; i++) {
            int grows = in.always[i] || !in.bad_in_outage[i];
            sb_printf(b, "      - series: ");
            yq(b, sb_str(&in.name[i]));
            sb_printf(b, "\n        values: '0+%.10gx10'\n", grows ? inc : 0.0);
        }
        sb_printf(b, "    alert_rule_test:\n");
        long quiet[2] = {10, 10 + after_min - 2};
        for (int q = 0; q < 2; q++) {
            if (q == 1 && quiet[1] <= quiet[0]) {
                continue;
            }
            sb_printf(b, "      - eval_time: %ldm\n        alertname: %s\n"
                         "        exp_alerts: []\n", quiet[q], an);
        }
        sb_printf(b, "      - eval_time: %ldm\n        alertname: %s\n        exp_alerts:\n"
                     "          - exp_labels:\n", 10 + after_min + 1, an);
        const char *k[160], *v[160];
        size_t n = nodata_labels(s, k, v, MT_ARRAY_LEN(k));
        for (size_t i = 0; i < n; i++) {
            sb_printf(b, "              %s: ", k[i]);
            yq(b, v[i]);
            sb_printf(b, "\n");
        }
        sb_t t = {0};
        sb_printf(&t, "%s: no events for %s", s->id, aw);
        sb_printf(b, "            exp_annotations:\n              title: ");
        yq(b, sb_str(&t));
        sb_printf(b, "\n");
        sb_free(&t);
    }
    sb_free(&id);
    inputs_free(&in);
}

int slo_rules_tests_write(FILE *f, const slo_set_t *set, const char *rules_file,
                          mt_errbuf_t *eb)
{
    sb_t b = {0};
    sb_printf(&b,
              "# Generated by meltp slo rules --tests: promtool unit tests for the generated "
              "rules.\n# Run: promtool test rules THIS_FILE\nrule_files:\n  - ");
    yq(&b, rules_file);
    sb_printf(&b, "\nevaluation_interval: 1m\ntests:\n");
    size_t before = b.n;
    for (size_t i = 0; i < set->n; i++) {
        spec_tests(&b, &set->slos[i]);
    }
    if (b.n == before) {
        sb_printf(&b, "  []\n");
    }
    int rc = MT_OK;
    if (fwrite(sb_str(&b), 1, b.n, f) != b.n) {
        mt_failf(eb, "write failed");
        rc = MT_EIO;
    }
    sb_free(&b);
    return rc;
}
