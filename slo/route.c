/*
 * route.c - SLO alert routing (see route.h): `slo.routes` and `slo.inhibit` parsed once at
 * config load (matchers compiled, notifier names resolved to bit masks), and the two questions
 * the engine asks every evaluation: which routes does this alert go to, and does this firing
 * alert inhibit that one.
 */
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- label sets ------------------------------------------------------------------------- */

void slo_route_label_set(slo_route_labels_t *l, const char *k, const char *v)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->k[i], k)) {
            l->v[i] = v;
            return;
        }
    }
    if (l->n < SLO_ROUTE_MAX_LABELS) {
        l->k[l->n] = k;
        l->v[l->n++] = v;
    }
}

const char *slo_route_label_get(const slo_route_labels_t *l, const char *k)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->k[i], k)) {
            return l->v[i];
        }
    }
    return NULL;
}

int slo_route_matchers_match(const slo_matcher_t *m, size_t n, const slo_route_labels_t *l)
{
    for (size_t i = 0; i < n; i++) {
        if (!slo_matcher_match(&m[i], slo_route_label_get(l, m[i].name))) {
            return 0;
        }
    }
    return 1;
}

/* ---- load ------------------------------------------------------------------------------- */

typedef struct {
    cfg_strlist_t matchers;
    cfg_strlist_t notifiers;
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
    int cont;
} route_cfg_t;

static const cfg_field_t route_fields[] = {
    {"matchers", CFG_T_STRLIST, NULL, 0, offsetof(route_cfg_t, matchers), NULL,
     "Alertmanager matchers on the alert's labels (all must match; none = every alert)"},
    {"notifiers", CFG_T_STRLIST, NULL, 0, offsetof(route_cfg_t, notifiers), NULL,
     "names of slo.notifiers that get the alerts of this route"},
    {"group_wait", CFG_T_DURATION, NULL, 0, offsetof(route_cfg_t, group_wait_ms), NULL,
     "delay before the first notice (default: slo.group_wait)"},
    {"group_interval", CFG_T_DURATION, NULL, 0, offsetof(route_cfg_t, group_interval_ms), NULL,
     "delay between notices when the alert changes (default: slo.group_interval)"},
    {"repeat_interval", CFG_T_DURATION, NULL, 0, offsetof(route_cfg_t, repeat_interval_ms), NULL,
     "re-send a still-firing alert this often (default: slo.repeat_interval)"},
    {"continue", CFG_T_BOOL, "false", 0, offsetof(route_cfg_t, cont), NULL,
     "also try the following routes after this one matched"},
};

typedef struct {
    cfg_strlist_t src, tgt, equal;
} inhibit_cfg_t;

static const cfg_field_t inhibit_fields[] = {
    {"source_matchers", CFG_T_STRLIST, NULL, CFG_REQUIRED, offsetof(inhibit_cfg_t, src), NULL,
     "matchers of the alert that inhibits"},
    {"target_matchers", CFG_T_STRLIST, NULL, CFG_REQUIRED, offsetof(inhibit_cfg_t, tgt), NULL,
     "matchers of the alerts it inhibits"},
    {"equal", CFG_T_STRLIST, NULL, 0, offsetof(inhibit_cfg_t, equal), NULL,
     "labels whose values must be the same in source and target"},
};

/* Compiles the matcher texts of list `key` inside `item`; each error carries the line of its
 * own list entry. Returns the number of errors. */
static int load_matchers(cfg_ctx_t *c, const cfg_node_t *item, const char *path, const char *key,
                         const cfg_strlist_t *texts, slo_matcher_t **out, size_t *n)
{
    const cfg_node_t *list = cfg_map_get(item, key);
    int errs = 0;
    *out = calloc(texts->n ? texts->n : 1, sizeof(**out));
    *n = 0;
    if (!*out) {
        cfg_error(c, item->line, path, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < texts->n; i++) {
        char err[256];
        if (slo_matcher_parse(texts->items[i], &(*out)[*n], err, sizeof(err)) != 0) {
            int line = list && list->kind == CFG_NODE_SEQ && i < list->n ? list->children[i]->line
                                                                         : item->line;
            cfg_error(c, line, path, "%s[%zu]: bad matcher '%s': %s", key, i, texts->items[i], err);
            errs++;
            continue;
        }
        (*n)++;
    }
    return errs;
}

static int load_routes(slo_routes_t *rt, const cfg_node_t *node, const slo_notifiers_t *ns,
                       int64_t gw, int64_t gi, int64_t ri, cfg_ctx_t *c)
{
    if (node->kind != CFG_NODE_SEQ) {
        cfg_error(c, node->line, "slo.routes", "must be a list");
        return 1;
    }
    if (node->n > SLO_ROUTES_MAX) {
        cfg_error(c, node->line, "slo.routes", "at most %d routes", SLO_ROUTES_MAX);
        return 1;
    }
    rt->routes = calloc(node->n ? node->n : 1, sizeof(*rt->routes));
    if (!rt->routes) {
        cfg_error(c, node->line, "slo.routes", "out of memory");
        return 1;
    }
    int errs = 0;
    for (size_t i = 0; i < node->n; i++) {
        const cfg_node_t *item = node->children[i];
        char path[64];
        snprintf(path, sizeof(path), "slo.routes[%zu]", i);
        slo_route_t *r = &rt->routes[rt->n++];
        r->line = item->line;
        route_cfg_t rc;
        int e = cfg_apply(c, route_fields, MT_ARRAY_LEN(route_fields), item, path, &rc);
        errs += e;
        if (!e) {
            errs += load_matchers(c, item, path, "matchers", &rc.matchers, &r->m, &r->nm);
            const cfg_node_t *nl = cfg_map_get(item, "notifiers");
            for (size_t k = 0; k < rc.notifiers.n; k++) {
                int idx = slo_notifiers_find(ns, rc.notifiers.items[k]);
                int line = nl && nl->kind == CFG_NODE_SEQ && k < nl->n ? nl->children[k]->line
                                                                       : item->line;
                if (idx < 0) {
                    cfg_error(c, line, path,
                              "notifiers[%zu]: unknown notifier \"%s\" (name it in "
                              "slo.notifiers with name: %s)",
                              k, rc.notifiers.items[k], rc.notifiers.items[k]);
                    errs++;
                } else if (idx >= SLO_ROUTE_NOTIFIERS) {
                    cfg_error(c, line, path,
                              "notifiers[%zu]: only the first %d notifiers can be "
                              "routed",
                              k, SLO_ROUTE_NOTIFIERS);
                    errs++;
                } else {
                    r->notifiers |= 1ull << idx;
                }
            }
            r->group_wait_ms = cfg_map_get(item, "group_wait") ? rc.group_wait_ms : gw;
            r->group_interval_ms = cfg_map_get(item, "group_interval") ? rc.group_interval_ms : gi;
            r->repeat_interval_ms =
                cfg_map_get(item, "repeat_interval") ? rc.repeat_interval_ms : ri;
            r->cont = rc.cont;
        }
        cfg_free_fields(route_fields, MT_ARRAY_LEN(route_fields), &rc);
    }
    return errs;
}

static int load_inhibit(slo_routes_t *rt, const cfg_node_t *node, cfg_ctx_t *c)
{
    if (node->kind != CFG_NODE_SEQ) {
        cfg_error(c, node->line, "slo.inhibit", "must be a list");
        return 1;
    }
    rt->inh = calloc(node->n ? node->n : 1, sizeof(*rt->inh));
    if (!rt->inh) {
        cfg_error(c, node->line, "slo.inhibit", "out of memory");
        return 1;
    }
    int errs = 0;
    for (size_t i = 0; i < node->n; i++) {
        const cfg_node_t *item = node->children[i];
        char path[64];
        snprintf(path, sizeof(path), "slo.inhibit[%zu]", i);
        slo_inhibit_t *h = &rt->inh[rt->ninh++];
        inhibit_cfg_t ic;
        int e = cfg_apply(c, inhibit_fields, MT_ARRAY_LEN(inhibit_fields), item, path, &ic);
        errs += e;
        if (!e) {
            errs += load_matchers(c, item, path, "source_matchers", &ic.src, &h->src, &h->nsrc);
            errs += load_matchers(c, item, path, "target_matchers", &ic.tgt, &h->tgt, &h->ntgt);
            if (ic.equal.n > SLO_ROUTE_MAX_EQUAL) {
                cfg_error_key(c, item, path, "equal", "at most %d labels", SLO_ROUTE_MAX_EQUAL);
                errs++;
            }
            for (size_t k = 0; k < ic.equal.n && k < SLO_ROUTE_MAX_EQUAL; k++) {
                h->equal[h->nequal++] = ic.equal.items[k];
                ic.equal.items[k] = NULL; /* taken */
            }
        }
        cfg_free_fields(inhibit_fields, MT_ARRAY_LEN(inhibit_fields), &ic);
    }
    return errs;
}

slo_routes_t *slo_route_load(const cfg_node_t *routes, const cfg_node_t *inhibit,
                             const slo_notifiers_t *ns, int64_t gw, int64_t gi, int64_t ri,
                             cfg_ctx_t *c)
{
    slo_routes_t *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        cfg_error(c, routes ? routes->line : 0, "slo.routes", "out of memory");
        return NULL;
    }
    int errs = 0;
    if (routes && routes->kind != CFG_NODE_NULL) {
        errs += load_routes(rt, routes, ns, gw, gi, ri, c);
    } else {
        /* meltp before routes: every notifier gets every alert, with the slo: timings */
        rt->routes = calloc(1, sizeof(*rt->routes));
        if (!rt->routes) {
            free(rt);
            return NULL;
        }
        rt->n = 1;
        rt->implicit = 1;
        size_t nn = slo_notifiers_count(ns);
        for (size_t i = 0; i < nn && i < SLO_ROUTE_NOTIFIERS; i++) {
            rt->routes[0].notifiers |= 1ull << i;
        }
        rt->routes[0].group_wait_ms = gw;
        rt->routes[0].group_interval_ms = gi;
        rt->routes[0].repeat_interval_ms = ri;
    }
    if (inhibit && inhibit->kind != CFG_NODE_NULL) {
        errs += load_inhibit(rt, inhibit, c);
    }
    if (errs) {
        slo_route_destroy(rt);
        return NULL;
    }
    return rt;
}

/* ---- decisions -------------------------------------------------------------------------- */

uint32_t slo_route_match(const slo_routes_t *rt, const slo_route_labels_t *l)
{
    uint32_t mask = 0;
    for (size_t i = 0; rt && i < rt->n; i++) {
        const slo_route_t *r = &rt->routes[i];
        if (slo_route_matchers_match(r->m, r->nm, l)) {
            mask |= 1u << i;
            if (!r->cont) {
                break;
            }
        }
    }
    return mask;
}

int slo_route_is_source(const slo_routes_t *rt, const slo_route_labels_t *l)
{
    for (size_t i = 0; rt && i < rt->ninh; i++) {
        if (slo_route_matchers_match(rt->inh[i].src, rt->inh[i].nsrc, l)) {
            return 1;
        }
    }
    return 0;
}

int slo_route_inhibits(const slo_routes_t *rt, const slo_route_labels_t *src,
                       const slo_route_labels_t *tgt)
{
    for (size_t i = 0; rt && i < rt->ninh; i++) {
        const slo_inhibit_t *h = &rt->inh[i];
        if (!slo_route_matchers_match(h->tgt, h->ntgt, tgt) ||
            !slo_route_matchers_match(h->src, h->nsrc, src)) {
            continue;
        }
        int same = 1;
        for (size_t k = 0; k < h->nequal && same; k++) {
            const char *a = slo_route_label_get(src, h->equal[k]);
            const char *b = slo_route_label_get(tgt, h->equal[k]);
            same = !strcmp(a ? a : "", b ? b : "");
        }
        if (same) {
            return 1;
        }
    }
    return 0;
}

void slo_route_describe(const slo_routes_t *rt, size_t i, char *buf, size_t n)
{
    if (!rt || i >= rt->n || rt->implicit) {
        snprintf(buf, n, "(default: no slo.routes)");
        return;
    }
    const slo_route_t *r = &rt->routes[i];
    size_t k = (size_t)snprintf(buf, n, "slo.routes[%zu] {", i);
    for (size_t j = 0; j < r->nm && k < n; j++) {
        k += (size_t)snprintf(buf + k, n - k, "%s%s%s\"%s\"", j ? ", " : "", r->m[j].name,
                              slo_match_op_text(r->m[j].op), r->m[j].value);
    }
    if (k < n) {
        snprintf(buf + k, n - k, "}");
    }
}

void slo_route_destroy(slo_routes_t *rt)
{
    if (!rt) {
        return;
    }
    for (size_t i = 0; i < rt->n; i++) {
        for (size_t k = 0; k < rt->routes[i].nm; k++) {
            slo_matcher_free(&rt->routes[i].m[k]);
        }
        free(rt->routes[i].m);
    }
    for (size_t i = 0; i < rt->ninh; i++) {
        slo_inhibit_t *h = &rt->inh[i];
        for (size_t k = 0; k < h->nsrc; k++) {
            slo_matcher_free(&h->src[k]);
        }
        for (size_t k = 0; k < h->ntgt; k++) {
            slo_matcher_free(&h->tgt[k]);
        }
        free(h->src);
        free(h->tgt);
        for (size_t k = 0; k < h->nequal; k++) {
            free(h->equal[k]);
        }
    }
    free(rt->routes);
    free(rt->inh);
    free(rt);
}
