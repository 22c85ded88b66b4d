/*
 * engine_page.c - the SLO engine seen by people: GET /slo and GET /slo/<id> on the telemetry
 * endpoint, one self-contained HTML page (inline CSS and SVG, no scripts, fonts or remote
 * anything, readable with JavaScript off). Per SLO instance: objective, SLI, budget left with
 * a burn-down chart over the period, burn rate per window, the error ratio per minute over the
 * last 6 hours, alert state per tier, time to exhaustion, runbook and dashboard links. Part of
 * the slo/engine module; the numbers are the ones GET /api/v1/slos reports.
 *
 * Everything from outside (service names, group values, URLs in specs) is escaped; links are
 * only written for http(s) URLs. The page is bounded: details for ENG_PAGE_DETAILS instances,
 * a summary row for the others (each has its own /slo/<id> page).
 */
#include "slo.h"
#include "engine_int.h"
#include "sb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENG_PAGE_DETAILS   50          /* instances drawn in full on GET /slo */
#define ENG_PAGE_MAX_BYTES (16u << 20) /* the page never grows past this */
#define ENG_PAGE_MINUTES   360         /* error ratio per minute over the last 6 hours */
#define ENG_PAGE_BURN_PTS  60          /* burn-down points over the period */
#define CHART_W            580
#define CHART_H            170
#define CHART_L            52 /* left margin (y labels) */
#define CHART_B            22 /* bottom margin (x labels) */

/* ---- escaping ----------------------------------------------------------------------------- */

static void esc(sb_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            sb_puts(b, "&amp;");
            break;
        case '<':
            sb_puts(b, "&lt;");
            break;
        case '>':
            sb_puts(b, "&gt;");
            break;
        case '"':
            sb_puts(b, "&quot;");
            break;
        case '\'':
            sb_puts(b, "&#39;");
            break;
        default:
            sb_putc(b, *s);
        }
    }
}

/* An id as a path segment: unreserved bytes as they are, the rest %XX. */
static void pct(sb_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            sb_putc(b, (char)c);
        } else {
            sb_putc(b, '%');
            sb_putc(b, hex[c >> 4]);
            sb_putc(b, hex[c & 15]);
        }
    }
}

static int is_http_url(const char *u)
{
    return u && (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8));
}

static void link(sb_t *b, const char *url, const char *text)
{
    if (is_http_url(url)) {
        sb_puts(b, "<a href=\"");
        esc(b, url);
        sb_puts(b, "\" rel=\"noopener noreferrer\">");
        esc(b, text);
        sb_puts(b, "</a>");
    } else {
        sb_puts(b, "<span class=\"muted\">none</span>");
    }
}

/* ---- numbers ------------------------------------------------------------------------------ */

static void fmt_pct(sb_t *b, double v)
{
    if (!isfinite(v)) {
        sb_puts(b, "&ndash;");
    } else if (fabs(v) >= 0.1 || v == 0) {
        sb_printf(b, "%.2f%%", v * 100);
    } else {
        sb_printf(b, "%.4f%%", v * 100);
    }
}

static void fmt_dur(sb_t *b, int64_t ms)
{
    char buf[64];
    if (ms >= 3600000) {
        ms -= ms % 60000; /* minutes are enough past an hour */
    } else if (ms >= 60000) {
        ms -= ms % 1000;
    }
    sb_puts(b, slo_fmt_duration(ms, buf, sizeof(buf)));
}

static void fmt_time(sb_t *b, int64_t ms, int with_date)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), with_date ? "%Y-%m-%d %H:%M" : "%H:%M", &tm);
    sb_puts(b, buf);
}

/* Bad events and total in [from, to] of an instance's store. */
static void window_bad(const slo_inst_t *in, int64_t from, int64_t to, uint64_t *bad,
                       uint64_t *total)
{
    uint64_t a = 0, t = 0;
    slo_store_sum(&in->store, from, to, &a, &t);
    *total = t;
    *bad = in->store.counts_bad ? a : (t >= a ? t - a : 0);
}

/* ---- charts ------------------------------------------------------------------------------- */

static double sx(int64_t t, int64_t t0, int64_t t1)
{
    double w = CHART_W - CHART_L - 8;
    return CHART_L + (t1 > t0 ? (double)(t - t0) / (double)(t1 - t0) : 0) * w;
}

static double sy(double v, double lo, double hi)
{
    double h = CHART_H - CHART_B - 8;
    if (hi <= lo) {
        hi = lo + 1;
    }
    return 8 + (1 - (v - lo) / (hi - lo)) * h;
}

static void chart_open(sb_t *b, const char *title, const char *desc)
{
    sb_printf(b,
              "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
              "width=\"%d\" height=\"%d\" role=\"img\"><title>",
              CHART_W, CHART_H, CHART_W, CHART_H);
    esc(b, title);
    sb_puts(b, "</title><desc>");
    esc(b, desc);
    sb_printf(b, "</desc><rect x=\"%d\" y=\"8\" width=\"%d\" height=\"%d\" class=\"plot\"/>",
              CHART_L, CHART_W - CHART_L - 8, CHART_H - CHART_B - 8);
}

/* Y positions of the labels of the chart being drawn, so close lines do not print their labels
 * on top of each other (the line is still drawn; the first label wins). */
typedef struct {
    double y[24];
    int n;
} labels_t;

static int label_free(labels_t *l, double y)
{
    for (int i = 0; i < l->n; i++) {
        if (fabs(l->y[i] - y) < 11) {
            return 0;
        }
    }
    if (l->n < (int)MT_ARRAY_LEN(l->y)) {
        l->y[l->n++] = y;
    }
    return 1;
}

static void hline(sb_t *b, labels_t *l, double y, const char *cls, const char *label)
{
    sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"%s\"/>", CHART_L,
              CHART_W - 8, y, y, cls);
    if (label && label_free(l, y)) {
        sb_printf(b, "<text x=\"%d\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">", CHART_L - 4,
                  y + 4);
        esc(b, label);
        sb_puts(b, "</text>");
    }
}

static void xlabels(sb_t *b, int64_t t0, int64_t t1, int with_date)
{
    sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"lbl\">", CHART_L, CHART_H - 6);
    fmt_time(b, t0, with_date);
    sb_printf(b, "</text><text x=\"%d\" y=\"%d\" class=\"lbl\" text-anchor=\"end\">", CHART_W - 8,
              CHART_H - 6);
    fmt_time(b, t1, with_date);
    sb_puts(b, " UTC</text>");
}

/* Budget left over the period: 1 - bad(start, t] / ((1 - objective) x total(start, now]), so
 * the last point is the budget left now; the dashed line is an even spend to 0 at the end. */
static void chart_burndown(sb_t *b, const slo_inst_t *in, const slo_ev_params_t *p,
                           const slo_result_t *res, int64_t now)
{
    int64_t start = res->period_start_ms, end = start + res->period_ms;
    if (res->period_ms <= 0) {
        start = now - p->period_ms;
        end = now;
    }
    uint64_t bad_all, total_all;
    window_bad(in, start, now, &bad_all, &total_all);
    double allowed = (1 - p->objective) * (double)total_all;
    double v[ENG_PAGE_BURN_PTS + 1];
    int64_t ts[ENG_PAGE_BURN_PTS + 1];
    double lo = 0;
    int n = 0;
    for (int i = 0; i <= ENG_PAGE_BURN_PTS; i++) {
        int64_t t = start + (now - start) * i / ENG_PAGE_BURN_PTS;
        uint64_t bad, total;
        window_bad(in, start, t, &bad, &total);
        ts[n] = t;
        v[n] = allowed > 0 ? 1 - (double)bad / allowed : 1;
        if (v[n] < lo) {
            lo = v[n];
        }
        n++;
    }
    if (lo < -1) {
        lo = -1; /* an overspent budget is drawn to -100 %; the number says the rest */
    }
    labels_t lb = {.n = 0};
    chart_open(b, "Error budget burn-down",
               "Error budget left over the SLO period; the dashed line spends it evenly.");
    hline(b, &lb, sy(1, lo, 1), "grid", "100%");
    hline(b, &lb, sy(0, lo, 1), "zero", "0%");
    if (lo < 0) {
        hline(b, &lb, sy(lo, lo, 1), "grid", lo <= -1 ? "-100%" : NULL);
    }
    sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"ideal\"/>",
              sx(start, start, end), sy(1, lo, 1), sx(end, start, end), sy(0, lo, 1));
    sb_puts(b, "<polyline class=\"budget\" points=\"");
    for (int i = 0; i < n; i++) {
        sb_printf(b, "%.1f,%.1f ", sx(ts[i], start, end), sy(v[i] < lo ? lo : v[i], lo, 1));
    }
    sb_puts(b, "\"/>");
    xlabels(b, start, end, 1);
    sb_puts(b, "</svg><figcaption>Error budget left: ");
    fmt_pct(b, res->budget_remaining);
    sb_puts(b, " of the period's budget (");
    fmt_time(b, start, 1);
    sb_puts(b, " to ");
    fmt_time(b, end, 1);
    sb_puts(b, " UTC).</figcaption></figure>");
}

/* Error ratio per minute over the last 6 hours (gaps where a minute had no events), with the
 * ratio that burns the budget at 1x and each enabled tier's threshold. */
static void chart_minutes(sb_t *b, const slo_inst_t *in, const slo_ev_params_t *p,
                          const slo_spec_t *spec, int64_t now)
{
    static const int64_t M = SLO_L0_MS;
    int64_t last = now / M + 1; /* up to the end of the current (partial) minute */
    int64_t t0 = (last - ENG_PAGE_MINUTES) * M, t1 = last * M;
    double r[ENG_PAGE_MINUTES];
    uint8_t has[ENG_PAGE_MINUTES];
    double hi = 2 * (1 - p->objective);
    for (int i = 0; i < ENG_PAGE_MINUTES; i++) {
        uint64_t bad, total;
        window_bad(in, t0 + i * M, t0 + (i + 1) * M - 1, &bad, &total);
        has[i] = total > 0;
        r[i] = total ? (double)bad / (double)total : 0;
        if (r[i] > hi) {
            hi = r[i];
        }
    }
    for (size_t t = 0; t < p->ntiers; t++) {
        double th = p->tiers[t].factor * (1 - p->objective);
        if (p->tiers[t].enabled && th > hi && th < 2 * hi) {
            hi = th; /* keep a threshold near the data in view */
        }
    }
    if (hi > 1) {
        hi = 1;
    }
    hi *= 1.1;
    chart_open(b, "Error ratio per minute, last 6 hours",
               "Bad events over all events per minute; the lines mark the budget rate and the "
               "alert thresholds.");
    char lbl[32];
    labels_t lb = {.n = 0};
    snprintf(lbl, sizeof(lbl), "%.3g%%", hi * 100);
    hline(b, &lb, sy(hi, 0, hi), "grid", lbl);
    hline(b, &lb, sy(0, 0, hi), "zero", "0%");
    hline(b, &lb, sy(1 - p->objective, 0, hi), "budget", "1x");
    for (size_t t = 0; t < p->ntiers && t < spec->ntiers; t++) {
        double th = p->tiers[t].factor * (1 - p->objective);
        if (p->tiers[t].enabled && th <= hi) {
            snprintf(lbl, sizeof(lbl), "%.3gx", p->tiers[t].factor);
            hline(b, &lb, sy(th, 0, hi), "tier", lbl);
        }
    }
    sb_puts(b, "<path class=\"ratio\" d=\"");
    int pen = 0;
    for (int i = 0; i < ENG_PAGE_MINUTES; i++) {
        if (!has[i]) {
            pen = 0;
            continue;
        }
        sb_printf(b, "%c%.1f,%.1f ", pen ? 'L' : 'M', sx(t0 + i * M + M / 2, t0, t1),
                  sy(r[i], 0, hi));
        pen = 1;
    }
    sb_puts(b, "\"/>");
    xlabels(b, t0, t1, 0);
    sb_puts(b, "</svg><figcaption>Error ratio per minute (the budget burns at 1x on the "
               "<span class=\"k-budget\">budget</span> line; alert tiers at their "
               "<span class=\"k-tier\">thresholds</span>).</figcaption></figure>");
}

/* ---- one instance ------------------------------------------------------------------------- */

static const char *state_class(int st)
{
    return st == SLO_AL_FIRING ? "firing" : st == SLO_AL_PENDING ? "pending" : "ok";
}

static void instance_detail(sb_t *b, const def_t *d, const inst_rec_t *r, int64_t now)
{
    const slo_spec_t *sp = d->spec;
    slo_result_t res;
    slo_eval_compute(&r->in, &d->p, now, &res);
    const slo_win_t *pw = &res.w[SLO_W_PERIOD];
    char pname[16];
    slo_fmt_duration(d->p.period_ms, pname, sizeof(pname));

    sb_puts(b, "<section class=\"slo\" id=\"");
    pct(b, r->id);
    sb_puts(b, "\"><h2><a href=\"/slo/");
    pct(b, r->id);
    sb_puts(b, "\">");
    esc(b, r->id);
    sb_puts(b, "</a></h2>");
    if (sp->description) {
        sb_puts(b, "<p>");
        esc(b, sp->description);
        sb_puts(b, "</p>");
    }
    sb_puts(b, "<dl class=\"facts\"><div><dt>Service</dt><dd>");
    esc(b, sp->service);
    sb_puts(b, "</dd></div><div><dt>Objective</dt><dd>");
    fmt_pct(b, sp->objective);
    sb_puts(b, " over ");
    sb_puts(b, sp->period_kind == SLO_PERIOD_ROLLING ? "a rolling " : "the calendar ");
    esc(b, pname);
    sb_puts(b, "</dd></div><div><dt>SLI (period)</dt><dd>");
    if (pw->total) {
        fmt_pct(b, 1 - pw->error_ratio);
        sb_printf(b, " <span class=\"muted\">(%llu of %llu good)</span>",
                  (unsigned long long)pw->good, (unsigned long long)pw->total);
    } else {
        sb_puts(b, "<span class=\"muted\">no events yet</span>");
    }
    sb_puts(b, "</dd></div><div><dt>Error budget left</dt><dd class=\"");
    sb_puts(b, res.budget_remaining < 0      ? "firing"
               : res.budget_remaining < 0.25 ? "pending"
                                             : "ok");
    sb_puts(b, "\">");
    fmt_pct(b, res.budget_remaining);
    sb_puts(b, "</dd></div><div><dt>Time to exhaustion</dt><dd>");
    if (res.tte_s < 0 || !isfinite(res.tte_s)) {
        sb_puts(b, "not burning");
    } else if (res.budget_remaining <= 0) {
        sb_puts(b, "exhausted");
    } else {
        fmt_dur(b, (int64_t)(res.tte_s * 1000));
        sb_puts(b, " <span class=\"muted\">at the 5m burn rate</span>");
    }
    sb_puts(b, "</dd></div><div><dt>Data</dt><dd>");
    esc(b, slo_state_name(res.state));
    if (r->in.nodata_alert.state == SLO_AL_FIRING) {
        sb_puts(b, " <span class=\"firing\">no-data alert firing</span>");
    }
    sb_puts(b, "</dd></div><div><dt>SLI kind</dt><dd>");
    esc(b, slo_sli_kind_name(sp->sli.kind));
    sb_puts(b, "</dd></div><div><dt>Runbook</dt><dd>");
    link(b, sp->runbook_url, "runbook");
    sb_puts(b, "</dd></div><div><dt>Dashboard</dt><dd>");
    link(b, sp->dashboard_url, "dashboard");
    sb_puts(b, "</dd></div></dl>");

    sb_puts(b, "<div class=\"charts\">");
    chart_burndown(b, &r->in, &d->p, &res, now);
    chart_minutes(b, &r->in, &d->p, sp, now);
    sb_puts(b, "</div>");

    /* burn rate per window */
    sb_puts(b, "<table><caption>Burn rate per window</caption><thead><tr><th>window</th>"
               "<th>events</th><th>error ratio</th><th>burn rate</th><th></th></tr></thead>"
               "<tbody>");
    for (int w = 0; w < SLO_NWIN; w++) {
        const slo_win_t *x = &res.w[w];
        double br = x->total ? x->burn_rate : 0;
        double bar = br > 20 ? 100 : br * 5;
        sb_puts(b, "<tr><td>");
        esc(b, w == SLO_W_PERIOD ? pname : slo_win_name[w]);
        sb_printf(b, "</td><td>%llu</td><td>", (unsigned long long)x->total);
        if (x->total) {
            fmt_pct(b, x->error_ratio);
            sb_printf(b, "</td><td>%.2fx</td>", br);
        } else {
            sb_puts(b, "&ndash;</td><td>&ndash;</td>");
        }
        sb_printf(b,
                  "<td class=\"barcell\"><span class=\"bar %s\" style=\"width:%.0f%%\"></span>"
                  "</td></tr>",
                  br >= 14.4 ? "firing"
                  : br >= 1  ? "pending"
                             : "ok",
                  bar);
    }
    sb_puts(b, "</tbody></table>");

    /* alert state per tier */
    sb_puts(b, "<table><caption>Alerts per tier</caption><thead><tr><th>tier</th><th>alert</th>"
               "<th>severity</th><th>long / short window</th><th>burn rate above</th>"
               "<th>for</th><th>state</th></tr></thead><tbody>");
    if (!sp->ntiers) {
        sb_puts(b, "<tr><td colspan=\"7\" class=\"muted\">no alert tiers</td></tr>");
    }
    for (size_t t = 0; t < sp->ntiers && t < d->p.ntiers; t++) {
        const slo_tier_t *st = &sp->tiers[t];
        int s = st->enabled ? r->in.alerts[t].state : SLO_AL_INACTIVE;
        sb_puts(b, "<tr><td>");
        esc(b, st->name);
        sb_puts(b, "</td><td>");
        esc(b, st->alert_name);
        sb_puts(b, "</td><td>");
        esc(b, st->severity);
        sb_puts(b, "</td><td>");
        fmt_dur(b, st->long_ms);
        sb_puts(b, " / ");
        fmt_dur(b, st->short_ms);
        sb_printf(b, "</td><td>%.3gx</td><td>", st->factor);
        if (st->for_ms > 0) {
            fmt_dur(b, st->for_ms);
        } else {
            sb_puts(b, "&ndash;");
        }
        sb_printf(b, "</td><td class=\"%s\">%s</td></tr>", st->enabled ? state_class(s) : "muted",
                  st->enabled ? slo_alert_state_name(s) : "disabled");
    }
    sb_puts(b, "</tbody></table></section>");
}

/* One selected instance, taken under the engine lock: its result for the summary, and for the
 * first ENG_PAGE_DETAILS a copy of the record to draw from once the lock is released. */
typedef struct {
    const def_t *d;
    char *id;
    slo_result_t res;
    int ast;
    inst_rec_t *copy;
} pg_item_t;

static void summary_row(sb_t *b, const pg_item_t *it, int detailed)
{
    sb_puts(b, "<tr><td><a href=\"");
    if (detailed) {
        sb_putc(b, '#');
    } else {
        sb_puts(b, "/slo/");
    }
    pct(b, it->id);
    sb_puts(b, "\">");
    esc(b, it->id);
    sb_puts(b, "</a></td><td>");
    esc(b, it->d->spec->service);
    sb_puts(b, "</td><td>");
    fmt_pct(b, it->d->spec->objective);
    sb_puts(b, "</td><td>");
    if (it->res.w[SLO_W_PERIOD].total) {
        fmt_pct(b, 1 - it->res.w[SLO_W_PERIOD].error_ratio);
    } else {
        sb_puts(b, "&ndash;");
    }
    sb_puts(b, "</td><td>");
    fmt_pct(b, it->res.budget_remaining);
    sb_printf(b, "</td><td>%s</td><td class=\"%s\">%s</td></tr>", slo_state_name(it->res.state),
              state_class(it->ast), slo_alert_state_name(it->ast));
}

/* ---- the page ----------------------------------------------------------------------------- */

static const char page_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem;color:#1d2330;"
    "background:#fafbfc;max-width:1400px}h1{font-size:1.4rem}h2{font-size:1.15rem;margin:0 0 .4rem}"
    "a{color:#1f5fbf}.muted{color:#6b7280}section.slo{background:#fff;border:1px solid #dde1e6;"
    "border-radius:6px;padding:1rem;margin:1rem 0}dl.facts{display:flex;flex-wrap:wrap;gap:.4rem "
    "1.6rem;margin:.6rem 0}dl.facts div{min-width:9rem}dt{font-size:.75rem;color:#6b7280;"
    "text-transform:uppercase}dd{margin:0;font-weight:600}table{border-collapse:collapse;"
    "margin:.6rem 0;font-size:.9rem}caption{text-align:left;font-weight:600;padding:.2rem 0}"
    "th,td{border-bottom:1px solid #e5e7eb;padding:.25rem .6rem;text-align:left}"
    ".charts{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}figcaption{font-size:.8rem;"
    "color:#4b5563;max-width:640px}svg{background:#fff;max-width:100%;height:auto}"
    ".plot{fill:#f8fafc;stroke:#e5e7eb}.grid{stroke:#e5e7eb}.zero{stroke:#9ca3af}"
    ".ideal{stroke:#9ca3af;stroke-dasharray:4 3}.budget{fill:none;stroke:#1f5fbf;stroke-width:2}"
    ".ratio{fill:none;stroke:#b42318;stroke-width:1.2}line.budget{stroke:#d97706;"
    "stroke-dasharray:3 2;stroke-width:1}.tier{stroke:#b42318;stroke-dasharray:6 3;"
    "stroke-width:.8}.lbl{font-size:10px;fill:#4b5563}.ok{color:#067647}.pending{color:#b54708}"
    ".firing{color:#b42318;font-weight:700}.barcell{width:8rem}.bar{display:inline-block;"
    "height:.6rem;min-width:1px;background:currentColor}.k-budget{color:#d97706}"
    ".k-tier{color:#b42318}";

static void page_open(sb_t *b, const char *title, int64_t now)
{
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<meta http-equiv=\"refresh\" content=\"60\"><title>");
    esc(b, title);
    sb_puts(b, "</title><style>");
    sb_puts(b, page_css);
    sb_puts(b, "</style></head><body><header><h1>");
    esc(b, title);
    sb_puts(b, "</h1><p class=\"muted\">Evaluated by meltp at ");
    fmt_time(b, now, 1);
    sb_puts(b, " UTC &middot; <a href=\"/slo\">all SLOs</a> &middot; "
               "<a href=\"/api/v1/slos\">JSON</a> &middot; <a href=\"/metrics\">metrics</a>"
               "</p></header><main>");
}

static int id_selects(const def_t *d, const inst_rec_t *r, const char *id)
{
    return !id || !strcmp(r->id, id) || (d->spec->id && !strcmp(d->spec->id, id));
}

/* Takes what the page shows under the engine lock (results, and record copies for the detailed
 * ones), so the drawing, which sums hundreds of buckets per instance, does not hold up the
 * observers on the data path. Returns the selected items (*nsel of them; an empty array is
 * not NULL), *ninst = every instance; NULL when out of memory. */
static pg_item_t *collect(slo_engine_t *e, const char *id, int64_t now, size_t *nsel, size_t *ninst)
{
    int locked = e->thread_on;
    if (locked) {
        pthread_mutex_lock(&e->mu);
    }
    size_t n = 0, all = 0;
    for (size_t i = 0; i < e->ndefs; i++) {
        for (size_t k = 0; k < e->defs[i].n; k++) {
            n += id_selects(&e->defs[i], e->defs[i].insts[k], id);
            all++;
        }
    }
    pg_item_t *items = calloc(n ? n : 1, sizeof(*items));
    size_t j = 0;
    int oom = !items;
    for (size_t i = 0; i < e->ndefs && !oom; i++) {
        const def_t *d = &e->defs[i];
        for (size_t k = 0; k < d->n && !oom; k++) {
            const inst_rec_t *r = d->insts[k];
            if (!id_selects(d, r, id)) {
                continue;
            }
            pg_item_t *it = &items[j++];
            it->d = d;
            it->id = strdup(r->id);
            slo_eval_compute(&r->in, &d->p, now, &it->res);
            it->ast = SLO_AL_INACTIVE;
            for (size_t t = 0; t < d->p.ntiers; t++) {
                if (r->in.alerts[t].state > it->ast) {
                    it->ast = r->in.alerts[t].state;
                }
            }
            if (j <= ENG_PAGE_DETAILS) {
                it->copy = malloc(sizeof(*r));
                if (it->copy) {
                    memcpy(it->copy, r, sizeof(*r));
                    it->copy->id = it->id; /* the copy must not point into the engine */
                    it->copy->gvals = NULL;
                }
            }
            oom = !it->id || (j <= ENG_PAGE_DETAILS && !it->copy);
        }
    }
    if (locked) {
        pthread_mutex_unlock(&e->mu);
    }
    if (oom) {
        for (size_t i = 0; items && i < j; i++) {
            free(items[i].id);
            free(items[i].copy);
        }
        free(items);
        return NULL;
    }
    *nsel = n;
    *ninst = all;
    return items;
}

char *slo_engine_page_html(slo_engine_t *e, const char *id, size_t *len, int *status)
{
    sb_t b;
    sb_init(&b, ENG_PAGE_MAX_BYTES);
    int64_t now = eng_wall_ms();
    *status = 200;
    if (id && !*id) {
        id = NULL;
    }
    char title[256];
    snprintf(title, sizeof(title), "%s%s", id ? "SLO " : "Service level objectives", id ? id : "");
    page_open(&b, title, now);
    if (!e) {
        sb_puts(&b, "<p>No SLOs: this meltp has no <code>slo:</code> section "
                    "(docs/SLO.md).</p>");
    } else {
        size_t nsel = 0, ninst = 0;
        pg_item_t *items = collect(e, id, now, &nsel, &ninst);
        if (!items) {
            sb_fail(&b, MT_ENOMEM);
        } else if (id && !nsel) {
            *status = 404;
            sb_puts(&b, "<p>No SLO or group with this id. ");
            sb_puts(&b, "An SLO with no events yet has no instance; see "
                        "<a href=\"/slo\">all SLOs</a>.</p>");
        } else if (!ninst) {
            sb_printf(&b,
                      "<p>%zu SLO spec%s loaded; none has seen an event yet. Instances appear "
                      "with the first matching span, log or metric.</p>",
                      e->ndefs, e->ndefs == 1 ? "" : "s");
        } else {
            sb_puts(&b, "<table class=\"summary\"><caption>Summary</caption><thead><tr>"
                        "<th>SLO</th><th>service</th><th>objective</th><th>SLI (period)</th>"
                        "<th>budget left</th><th>data</th><th>alert</th></tr></thead><tbody>");
            for (size_t i = 0; i < nsel; i++) {
                summary_row(&b, &items[i], items[i].copy != NULL);
            }
            sb_puts(&b, "</tbody></table>");
            for (size_t i = 0; i < nsel && items[i].copy; i++) {
                instance_detail(&b, items[i].d, items[i].copy, now);
            }
            if (nsel > ENG_PAGE_DETAILS) {
                sb_printf(&b,
                          "<p class=\"muted\">%zu more SLO instances: follow their links in "
                          "the summary.</p>",
                          nsel - ENG_PAGE_DETAILS);
            }
        }
        for (size_t i = 0; items && i < nsel; i++) {
            free(items[i].id);
            free(items[i].copy);
        }
        free(items);
    }
    sb_puts(&b, "</main></body></html>\n");
    if (b.err) {
        sb_fini(&b);
        return NULL;
    }
    return sb_take(&b, len);
}
