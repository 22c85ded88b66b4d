/*
 * promnames.c - the Prometheus view of OTLP metric names and attribute keys for the SLO engine
 * (promnames.h). Every name comes from collector/promconv (promconv_family_name,
 * promconv_label_name): there is no second copy of the translation rules here, only the
 * matching around them.
 */
#include "promnames.h"
#include "promconv.h"
#include "otlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyv_t;

#define PN_MAX_JOIN 8 /* attributes merged into one label; more are left out of the value */

void slo_pn_init(slo_pn_t *n, const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    memset(n, 0, sizeof(*n));
    n->raw = m->name ? m->name : "";
    int type;
    int len = promconv_family_name(m, 1, NULL, n->family, sizeof(n->family), &type);
    if (len < 0) {
        n->family[0] = 0;
        len = 0;
    }
    n->flen = (size_t)len;
    n->buckets = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    n->composite = n->buckets || type == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY;
    n->sum_like = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
}

/* want == a + b (b a suffix, may be "") */
static int eq2(const char *want, size_t lw, const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    return lw == la + lb && memcmp(want, a, la) == 0 && memcmp(want + la, b, lb) == 0;
}

slo_pn_part_t slo_pn_match(const slo_pn_t *n, const char *want)
{
    if (!want) {
        return SLO_PN_NONE;
    }
    size_t lw = strlen(want), lr = strlen(n->raw);
    if (eq2(want, lw, n->raw, lr, "") || (n->flen && eq2(want, lw, n->family, n->flen, ""))) {
        return SLO_PN_SERIES;
    }
    if (n->sum_like &&
        (eq2(want, lw, n->raw, lr, "_total") ||
         (lr == lw + 6 && !strcmp(n->raw + lw, "_total") && !memcmp(want, n->raw, lw)))) {
        return SLO_PN_SERIES;
    }
    if (n->flen && n->buckets && eq2(want, lw, n->family, n->flen, "_bucket")) {
        return SLO_PN_BUCKET;
    }
    if (n->flen && n->composite && eq2(want, lw, n->family, n->flen, "_sum")) {
        return SLO_PN_SUM;
    }
    if (n->flen && n->composite && eq2(want, lw, n->family, n->flen, "_count")) {
        return SLO_PN_COUNT;
    }
    return SLO_PN_NONE;
}

int slo_pn_buckets(const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p,
                   const slo_selector_t *sel, const char *(*get)(void *ctx, const char *name),
                   void *ctx, const char **le_slot, double *v)
{
    double cum = 0;
    int any = 0;
    *v = 0;
    for (size_t b = 0; b < p->n_bucket_counts; b++) {
        char le[400]; /* Go's 'f' format spells out large bounds in full */
        cum += (double)p->bucket_counts[b];
        if (b >= p->n_explicit_bounds) {
            snprintf(le, sizeof(le), "+Inf");
        } else if (promconv_format_float(p->explicit_bounds[b], le, sizeof(le)) < 0) {
            continue;
        }
        *le_slot = le;
        if (slo_selector_match(sel, get, ctx)) {
            *v += cum;
            any = 1;
        }
    }
    *le_slot = NULL;
    return any;
}

const char *slo_pn_value(const anyv_t *v, char *buf, size_t blen)
{
    return otlp_value_text(v, buf, blen);
}

/* Is attribute key `key` label `label`, as written (span and log SLIs ask for http.route) or
 * as the Prometheus label name it becomes? Keys are sanitised on a stack buffer: the matchers
 * of a selector are few, attributes per point too, and this is no dearer than the strcmp it
 * replaces plus one copy. Keys too long for the buffer compare only as written. */
static int key_is(const char *key, const char *label)
{
    char b[SLO_PN_MAX + 8];
    if (!key) {
        return 0;
    }
    if (strcmp(key, label) == 0) {
        return 1;
    }
    return promconv_label_name(key, b, sizeof(b)) >= 0 && strcmp(b, label) == 0;
}

const char *slo_pn_attr(kv_t **kvs, size_t n, const char *label, char *buf, size_t blen)
{
    size_t hit[PN_MAX_JOIN], nh = 0;
    for (size_t i = 0; i < n && nh < PN_MAX_JOIN; i++) {
        if (kvs[i] && key_is(kvs[i]->key, label)) {
            hit[nh++] = i;
        }
    }
    if (nh == 0) {
        return NULL;
    }
    if (nh == 1) {
        return slo_pn_value(kvs[hit[0]]->value, buf, blen);
    }
    /* keys that collide: values joined in the byte order of the keys (insertion sort, nh is
     * tiny) */
    for (size_t i = 1; i < nh; i++) {
        for (size_t j = i; j > 0 && strcmp(kvs[hit[j - 1]]->key, kvs[hit[j]]->key) > 0; j--) {
            size_t t = hit[j];
            hit[j] = hit[j - 1];
            hit[j - 1] = t;
        }
    }
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < nh && k + 1 < blen; i++) {
        char vb[64];
        const char *v = slo_pn_value(kvs[hit[i]]->value, vb, sizeof(vb));
        int w = snprintf(buf + k, blen - k, "%s%s", i ? ";" : "", v ? v : "");
        k += w > 0 ? (size_t)w : 0;
    }
    return buf;
}
