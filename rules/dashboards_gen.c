/*
 * dashboards_gen.c - Grafana dashboards for the SLO series (the Sloth-named slo:* series that
 * both the generated rules and meltp's engine export): one dashboard per service, one row per
 * SLO with an overview (SLI and objective over the period, budget remaining, current burn
 * rate), burn rates per alert window against each tier's factor, and the budget over the
 * period. Output is deterministic (uid from the service name) so regenerated files diff cleanly.
 */
#include "model.h"
#include "mt.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* FNV-1a, for a stable dashboard uid: Grafana keys dashboards by uid, so the old basis stays
 * (MT_FNV_BASIS_V0) or re-imported dashboards would appear twice. */
static uint64_t fnv(const char *s)
{
    return mt_fnv1a(MT_FNV_BASIS_V0, s, strlen(s));
}

static json_t *target(const char *expr, const char *legend, const char *ref)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "expr", expr, "legendFormat", legend, "refId",
                     ref, "datasource", "type", "prometheus", "uid", "${datasource}");
}

static json_t *panel(const char *type, const char *title, int x, int y, int w, int h, int *id)
{
    return json_pack("{s:i, s:s, s:s, s:{s:i, s:i, s:i, s:i}, s:{s:s, s:s}, s:[]}", "id", (*id)++,
                     "type", type, "title", title, "gridPos", "x", x, "y", y, "w", w, "h", h,
                     "datasource", "type", "prometheus", "uid", "${datasource}", "targets");
}

static void unit(json_t *p, const char *u, double min, double max, int has_range)
{
    json_t *defaults = json_pack("{s:s}", "unit", u);
    if (has_range) {
        json_object_set_new(defaults, "min", json_real(min));
        json_object_set_new(defaults, "max", json_real(max));
    }
    json_object_set_new(p, "fieldConfig",
                        json_pack("{s:o, s:[]}", "defaults", defaults, "overrides"));
}

static void add_target(json_t *p, const char *expr, const char *legend)
{
    json_t *t = json_object_get(p, "targets");
    char ref[8];
    snprintf(ref, sizeof(ref), "%c", (char)('A' + json_array_size(t)));
    json_array_append_new(t, target(expr, legend, ref));
}

static void slo_row(json_t *panels, const slo_spec_t *s, int *y, int *id)
{
    char sel[1024], expr[4096], title[512], ps[32], w[32];
    snprintf(sel, sizeof(sel), "{sloth_id=\"%s\", sloth_service=\"%s\", sloth_slo=\"%s\"}", s->id,
             s->service, s->name);
    slo_fmt_duration(s->period_ms, ps, sizeof(ps));
    snprintf(title, sizeof(title), "%s - %s (objective %.10g%%)", s->service, s->name,
             s->objective * 100);
    json_array_append_new(panels, json_pack("{s:i, s:s, s:s, s:b, s:{s:i, s:i, s:i, s:i}}", "id",
                                            (*id)++, "type", "row", "title", title, "collapsed", 0,
                                            "gridPos", "x", 0, "y", (*y)++, "w", 24, "h", 1));
    /* overview */
    json_t *p = panel("stat", "SLI over the period", 0, *y, 6, 6, id);
    /* calendar periods have no fixed window: the rules record slo:sli_error:ratio_period */
    if (s->period_kind != SLO_PERIOD_ROLLING) {
        snprintf(expr, sizeof(expr), "1 - slo:sli_error:ratio_period%s", sel);
    } else {
        snprintf(expr, sizeof(expr), "1 - slo:sli_error:ratio_rate%s%s", ps, sel);
    }
    add_target(p, expr, "{{sloth_slo}}");
    unit(p, "percentunit", 0, 1, 0);
    json_array_append_new(panels, p);

    p = panel("stat", "Error budget remaining", 6, *y, 6, 6, id);
    snprintf(expr, sizeof(expr), "slo:period_error_budget_remaining:ratio%s", sel);
    add_target(p, expr, "{{sloth_slo}}");
    unit(p, "percentunit", 0, 0, 0);
    json_array_append_new(panels, p);

    p = panel("stat", "Current burn rate (5m)", 12, *y, 6, 6, id);
    snprintf(expr, sizeof(expr), "slo:current_burn_rate:ratio%s", sel);
    add_target(p, expr, "{{sloth_slo}}");
    unit(p, "none", 0, 0, 0);
    json_array_append_new(panels, p);

    p = panel("stat", "Objective", 18, *y, 6, 6, id);
    snprintf(expr, sizeof(expr), "slo:objective:ratio%s", sel);
    add_target(p, expr, "objective");
    unit(p, "percentunit", 0, 1, 0);
    json_array_append_new(panels, p);
    *y += 6;

    /* burn rate per window, with each enabled tier's factor as a reference line */
    p = panel("timeseries", "Burn rate per window (x budget)", 0, *y, 12, 8, id);
    int64_t seen[2 * SLO_MAX_TIERS + 1];
    size_t ns = 0;
    seen[ns++] = 300000;
    snprintf(expr, sizeof(expr),
             "slo:sli_error:ratio_rate5m%s / on(sloth_id, sloth_slo, sloth_service) group_left "
             "slo:error_budget:ratio%s",
             sel, sel);
    add_target(p, expr, "5m");
    for (size_t i = 0; i < s->ntiers; i++) {
        int64_t ws[2] = {s->tiers[i].short_ms, s->tiers[i].long_ms};
        for (int k = 0; k < 2; k++) {
            int dup = 0;
            for (size_t j = 0; j < ns; j++) {
                dup |= seen[j] == ws[k];
            }
            if (dup || ns >= MT_ARRAY_LEN(seen)) {
                continue;
            }
            seen[ns++] = ws[k];
            slo_fmt_duration(ws[k], w, sizeof(w));
            snprintf(expr, sizeof(expr),
                     "slo:sli_error:ratio_rate%s%s / on(sloth_id, sloth_slo, sloth_service) "
                     "group_left slo:error_budget:ratio%s",
                     w, sel, sel);
            add_target(p, expr, w);
        }
    }
    for (size_t i = 0; i < s->ntiers; i++) {
        if (!s->tiers[i].enabled) {
            continue;
        }
        snprintf(expr, sizeof(expr), "vector(%.10g)", s->tiers[i].factor);
        char legend[128];
        snprintf(legend, sizeof(legend), "%s threshold", s->tiers[i].name);
        add_target(p, expr, legend);
    }
    unit(p, "none", 0, 0, 0);
    json_array_append_new(panels, p);

    /* budget over the period */
    p = panel("timeseries", "Error budget remaining over the period", 12, *y, 12, 8, id);
    snprintf(expr, sizeof(expr), "slo:period_error_budget_remaining:ratio%s", sel);
    add_target(p, expr, "remaining");
    unit(p, "percentunit", 0, 0, 0);
    json_array_append_new(panels, p);
    *y += 8;

    /* alerts firing for this SLO */
    p = panel("timeseries", "Alerts firing", 0, *y, 24, 5, id);
    snprintf(expr, sizeof(expr),
             "sum by (alertname, sloth_severity) (ALERTS{sloth_id=\"%s\", "
             "alertstate=\"firing\"})",
             s->id);
    add_target(p, expr, "{{alertname}} {{sloth_severity}}");
    unit(p, "none", 0, 0, 0);
    json_array_append_new(panels, p);
    *y += 5;
}

static int write_service(const char *dir, const slo_set_t *set, const char *service, FILE *log,
                         mt_errbuf_t *eb)
{
    char uid[32], title[256];
    snprintf(uid, sizeof(uid), "meltp-slo-%08llx",
             (unsigned long long)(fnv(service) & 0xffffffffULL));
    snprintf(title, sizeof(title), "SLOs / %s", service);
    json_t *panels = json_array();
    int y = 0, id = 1;
    for (size_t i = 0; i < set->n; i++) {
        if (!strcmp(set->slos[i].service, service)) {
            slo_row(panels, &set->slos[i], &y, &id);
        }
    }
    json_t *dash = json_pack("{s:s, s:s, s:[s,s,s], s:s, s:i, s:i, s:b, s:{s:s, s:s}, s:s, s:o, "
                             "s:{s:[{s:s, s:s, s:s, s:s, s:{s:s, s:s}}]}, s:{s:[]}}",
                             "uid", uid, "title", title, "tags", "slo", "meltp", "sloth",
                             "timezone", "browser", "schemaVersion", 39, "version", 1, "editable",
                             1, "time", "from", "now-7d", "to", "now", "refresh", "1m", "panels",
                             panels, "templating", "list", "name", "datasource", "type",
                             "datasource", "query", "prometheus", "label", "Data source", "current",
                             "text", "default", "value", "default", "annotations", "list");
    if (!dash) {
        mt_failf(eb, "cannot build the dashboard JSON for %s", service);
        return MT_ENOMEM;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/slo-%s.json", dir, service);
    int rc = json_dump_file(dash, path, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(dash);
    if (rc != 0) {
        mt_failf(eb, "%s: cannot write: %s", path, strerror(errno));
        return MT_EIO;
    }
    if (log) {
        fprintf(log, "%s\n", path);
    }
    return MT_OK;
}

int slo_dashboards_write(const char *dir, const slo_set_t *set, FILE *log, mt_errbuf_t *eb)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        mt_failf(eb, "%s: cannot create: %s", dir, strerror(errno));
        return MT_EIO;
    }
    for (size_t i = 0; i < set->n; i++) {
        int first = 1;
        for (size_t j = 0; j < i; j++) {
            first &= strcmp(set->slos[j].service, set->slos[i].service) != 0;
        }
        if (!first) {
            continue;
        }
        int rc = write_service(dir, set, set->slos[i].service, log, eb);
        if (rc != MT_OK) {
            return rc;
        }
    }
    return MT_OK;
}
