/*
 * route.h - SLO alert routing, as Alertmanager routes it: `slo.routes` (matchers in
 * Alertmanager's syntax on an alert's labels, the notifiers to send to, per-route group_wait /
 * group_interval / repeat_interval, `continue`) and `slo.inhibit` (source_matchers,
 * target_matchers, equal). Everything is parsed and compiled once at config load; matching
 * an alert is a few strcmp / regexec calls and allocates nothing. Without `slo.routes` there
 * is one implicit route to every notifier with the `slo:` timings (meltp's behaviour before
 * routes existed).
 */
#ifndef SLO_ROUTE_H
#define SLO_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "model.h"
#include "notify.h"

#define SLO_ROUTES_MAX       32 /* routes (a route set is a uint32_t bit mask) */
#define SLO_ROUTE_NOTIFIERS  64 /* notifiers a route can name (a uint64_t bit mask) */
#define SLO_ROUTE_MAX_LABELS 64 /* labels of one alert seen by matchers */
#define SLO_ROUTE_MAX_EQUAL  16 /* labels of one inhibit rule's `equal` */

/* An alert's labels as matchers see them: borrowed pointers, no allocation. A label set
 * twice keeps its last value; labels past the cap are ignored. */
typedef struct {
    size_t n;
    const char *k[SLO_ROUTE_MAX_LABELS];
    const char *v[SLO_ROUTE_MAX_LABELS];
} slo_route_labels_t;

void slo_route_label_set(slo_route_labels_t *l, const char *k, const char *v);
/* The value of label k, or NULL when absent (matchers read an absent label as ""). */
const char *slo_route_label_get(const slo_route_labels_t *l, const char *k);
/* 1 when every matcher matches l (n == 0 matches everything). */
int slo_route_matchers_match(const slo_matcher_t *m, size_t n, const slo_route_labels_t *l);

typedef struct {
    slo_matcher_t *m;
    size_t nm;
    uint64_t notifiers; /* bit i: notifier i of the slo_notifiers_t */
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
    int cont;
    int line;
} slo_route_t;

typedef struct {
    slo_matcher_t *src, *tgt;
    size_t nsrc, ntgt;
    char *equal[SLO_ROUTE_MAX_EQUAL];
    size_t nequal;
} slo_inhibit_t;

typedef struct {
    slo_route_t *routes;
    size_t n;
    int implicit; /* no slo.routes: routes[0] goes to every notifier */
    slo_inhibit_t *inh;
    size_t ninh;
} slo_routes_t;

/* Parses `routes` and `inhibit` (either may be NULL) against the loaded notifiers; gw/gi/ri
 * are the `slo:` timings a route inherits. Errors go to c as FILE:LINE: slo.routes[i].key:
 * reason (bad matcher, unknown notifier name, ...). Returns the table or NULL on errors. */
slo_routes_t *slo_route_load(const cfg_node_t *routes, const cfg_node_t *inhibit,
                             const slo_notifiers_t *ns, int64_t gw, int64_t gi, int64_t ri,
                             cfg_ctx_t *c);
/* The routes an alert goes to, as a bit mask: the first matching route, plus the following
 * ones while the matched route says `continue: true`. 0 = no route matches. */
uint32_t slo_route_match(const slo_routes_t *rt, const slo_route_labels_t *l);
/* 1 when some inhibit rule's source matchers match l (l may inhibit others). */
int slo_route_is_source(const slo_routes_t *rt, const slo_route_labels_t *l);
/* 1 when a firing alert with labels src inhibits the alert with labels tgt. */
int slo_route_inhibits(const slo_routes_t *rt, const slo_route_labels_t *src,
                       const slo_route_labels_t *tgt);
/* "{severity=\"page\"}" / "(default)" for route i, into buf. */
void slo_route_describe(const slo_routes_t *rt, size_t i, char *buf, size_t n);
void slo_route_destroy(slo_routes_t *rt); /* accepts NULL */

#endif
