/*
 * promnames.h - how the SLO engine sees an OTLP metric: under the name and label names that
 * meltp's prometheusremotewrite exporter writes for it (collector/promconv: family name with
 * unit and type suffixes, _bucket / _sum / _count with `le` for classic histograms, sanitised
 * label names), so that a selector written for Prometheus (a Sloth spec, `meltp slo rules`)
 * matches the same OTLP data in-process. Names already in Prometheus form still match as sent.
 */
#ifndef SLO_PROMNAMES_H
#define SLO_PROMNAMES_H

#include <stddef.h>
#include "model.h"
#include "otlp_collector.pb-c.h"

#define SLO_PN_MAX 256 /* longest family name kept; longer names match only as sent */

/* Which series of a metric a selector's name refers to. */
typedef enum {
    SLO_PN_NONE = 0, /* not this metric */
    SLO_PN_SERIES,   /* the metric itself (counter, gauge, histogram family for latency SLIs) */
    SLO_PN_BUCKET,   /* <family>_bucket of a classic histogram (with `le`) */
    SLO_PN_SUM,      /* <family>_sum of a classic histogram or summary */
    SLO_PN_COUNT,    /* <family>_count of a classic histogram or summary */
} slo_pn_part_t;

/* One metric's names, computed once per metric (not per point) by slo_pn_init. The struct
 * lives on the caller's stack: no allocation. */
typedef struct {
    const char *raw;         /* the OTLP name (borrowed from the metric) */
    char family[SLO_PN_MAX]; /* promconv family name, "" when it has none */
    size_t flen;
    int composite; /* classic histogram or summary: _sum / _count series */
    int buckets;   /* classic histogram: _bucket series */
    int sum_like;  /* sum: a name with or without _total matches (remote-write
                               * input arrives with the suffix stripped) */
} slo_pn_t;

void slo_pn_init(slo_pn_t *n, const Opentelemetry__Proto__Metrics__V1__Metric *m);

/* The series of n that the selector name `want` names, or SLO_PN_NONE. */
slo_pn_part_t slo_pn_match(const slo_pn_t *n, const char *want);

/* A selector on <family>_bucket against a classic histogram point: the sum of the cumulative
 * bucket counts whose `le` (formatted as the exporter writes it, "+Inf" last) the selector
 * accepts, as sum(rate(x_bucket{le=~...})) reads them. *le_slot points at each bound's text
 * while sel is matched through get(ctx, ...), which must answer "le" from it; it is NULL
 * again on return. The bounds are formatted on the stack: no allocation. Returns 1 if any
 * bucket matched (*v then holds the sum), else 0. */
int slo_pn_buckets(const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p,
                   const slo_selector_t *sel, const char *(*get)(void *ctx, const char *name),
                   void *ctx, const char **le_slot, double *v);

/* String form of an attribute value: strings as stored, ints, doubles (%g) and bools formatted
 * into buf; NULL for other kinds (arrays, maps, bytes). */
const char *slo_pn_value(const Opentelemetry__Proto__Common__V1__AnyValue *v, char *buf,
                         size_t blen);

/* The value of label `label` among attributes kvs[0..n): the attribute whose sanitised key
 * (promconv_label_name) is `label`; attributes whose keys sanitise to the same name are joined
 * with `;` in the byte order of their keys, as the exporter does. Strings are returned as
 * stored, other scalars (and joined values) formatted into buf. NULL when no attribute has that label name. */
const char *slo_pn_attr(Opentelemetry__Proto__Common__V1__KeyValue **kvs, size_t n,
                        const char *label, char *buf, size_t blen);

#endif
