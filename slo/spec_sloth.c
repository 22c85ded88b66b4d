/*
 * spec_sloth.c - Sloth `prometheus/v1` SLO files: service-level fields and per-SLO event
 * queries read into slo_spec_t. Part of the slo/spec module.
 */
#include "model.h"
#include "spec_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Sloth prometheus/v1                                                                       */

static void sloth_events(ld_t *L, slo_spec_t *s, const cfg_node_t *ev, const char *path)
{
    static const char *const keys[] = {"error_query", "total_query", NULL};
    spec_check_keys(L, ev, path, keys);
    const char *eq = spec_get_str(L, ev, path, "error_query", 1);
    const char *tq = spec_get_str(L, ev, path, "total_query", 1);
    slo_sli_t *q = &s->sli;
    q->kind = SLO_SLI_RATIO;
    if (!eq || !tq) {
        return;
    }
    q->error_query = spec_xstrdup(eq);
    q->total_query = spec_xstrdup(tq);
    agg_query_t a = {0}, b = {0};
    char err[512];
    int ok = 1;
    if (spec_parse_agg_query(eq, 1, &a, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, ev, path, "error_query", "%s", err);
        ok = 0;
    }
    if (spec_parse_agg_query(tq, 1, &b, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, ev, path, "total_query", "%s", err);
        ok = 0;
    }
    if (ok) {
        int same = a.nby == b.nby;
        for (size_t i = 0; same && i < a.nby; i++) {
            same = !strcmp(a.by[i], b.by[i]);
        }
        if (!same) {
            cfg_error_key(L->c, ev, path, "error_query",
                          "error_query and total_query must aggregate by the same labels");
        }
        q->has_bad = q->has_total = 1;
        q->bad = a.sel;
        q->total = b.sel;
        memset(&a.sel, 0, sizeof(a.sel));
        memset(&b.sel, 0, sizeof(b.sel));
        q->use_increase = a.increase;
        for (size_t i = 0; i < b.nby; i++) {
            s->group_by = spec_xrealloc(s->group_by, (s->ngroup_by + 1) * sizeof(char *));
            s->group_by[s->ngroup_by++] = spec_xstrdup(b.by[i]);
        }
    }
    spec_agg_free(&a);
    spec_agg_free(&b);
}

void spec_sloth_doc(ld_t *L, const cfg_node_t *root)
{
    static const char *const top_keys[] = {"version", "service",     "labels",
                                           "slos",    "slo_plugins", NULL};
    spec_check_keys(L, root, "", top_keys);
    if (cfg_map_get(root, "slo_plugins")) {
        cfg_error_key(L->c, root, "", "slo_plugins", "Sloth plugins are not supported");
    }
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
        static const char *const keys[] = {"name", "description", "objective", "labels",
                                           "sli",  "alerting",    "plugins",   NULL};
        spec_check_keys(L, m, p, keys);
        if (cfg_map_get(m, "plugins")) {
            cfg_error_key(L->c, m, p, "plugins", "Sloth plugins are not supported");
        }
        slo_spec_t *s = spec_new(L, SLO_FMT_SLOTH, m->line);
        s->service = spec_xstrdup(service ? service : "");
        s->name = spec_xstrdup(spec_get_str(L, m, p, "name", 1));
        s->description = spec_xstrdup(spec_get_str(L, m, p, "description", 0));
        spec_set_ids(s);
        spec_kv_copy(&s->labels, &svc_labels);
        spec_get_kv(L, m, p, "labels", &s->labels);
        spec_labels_identity_first(s);
        spec_set_objective_pct(L, s, m, p, "objective");

        const cfg_node_t *sli;
        char *sp = spec_xprintf("%s.sli", p);
        if (spec_want_map(L, m, p, "sli", &sli) > 0) {
            static const char *const skeys[] = {"events", "raw", "plugin", NULL};
            spec_check_keys(L, sli, sp, skeys);
            const cfg_node_t *ev;
            if (spec_want_map(L, sli, sp, "events", &ev) > 0) {
                char *ep = spec_xprintf("%s.events", sp);
                sloth_events(L, s, ev, ep);
                free(ep);
            } else if (cfg_map_get(sli, "raw")) {
                cfg_error_key(L->c, sli, sp, "raw",
                              "raw SLIs (an error-ratio query) cannot be evaluated in-process; "
                              "use events with error_query and total_query");
            } else if (cfg_map_get(sli, "plugin")) {
                cfg_error_key(L->c, sli, sp, "plugin", "SLI plugins are not supported");
            } else {
                cfg_error(L->c, sli->line, sp, "expected events");
            }
        } else {
            cfg_error(L->c, m->line, p, "missing required key \"sli\"");
        }
        free(sp);

        alert_opts_t a = {0};
        const cfg_node_t *al;
        char *ap = spec_xprintf("%s.alerting", p);
        if (spec_want_map(L, m, p, "alerting", &al) > 0) {
            static const char *const akeys[] = {"name",       "labels",       "annotations",
                                                "page_alert", "ticket_alert", NULL};
            spec_check_keys(L, al, ap, akeys);
            a.name = spec_xstrdup(spec_get_str(L, al, ap, "name", 0));
            spec_get_kv(L, al, ap, "labels", &a.labels);
            spec_get_kv(L, al, ap, "annotations", &a.annotations);
            spec_get_sev_opts(L, al, ap, "page_alert", &a.page, 0);
            spec_get_sev_opts(L, al, ap, "ticket_alert", &a.ticket, 0);
        }
        if (!a.name) {
            /* Sloth requires alerting.name only when an alert is enabled; we need a name. */
            if (!a.page.disable || !a.ticket.disable) {
                cfg_error(L->c, m->line, ap, "missing required key \"name\"");
            }
            a.name = spec_default_alert_name(s);
        }
        spec_default_tiers(s, &a);
        free(ap);
        spec_alert_opts_free(&a);
        free(p);
    }
    spec_kv_free(&svc_labels);
}
