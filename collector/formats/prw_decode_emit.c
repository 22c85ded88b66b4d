/*
 * prw_decode_emit.c - the neutral series form -> OTLP: metrics and data points, the
 * reassembly of classic histograms and summaries from their part series, native histograms
 * (NHCB and exponential), exemplars, and the final assembly of resource/scope metrics. Part
 * of the prw_decode module.
 */
#include "prw_decode.h"
#include "prw_decode_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- metrics and points --------------------------------------------------------------------- */

macc_t *prwd_get_metric(ctx_t *c, res_t *r, const char *name, int kind, const char *help,
                        const char *ptype)
{
    sb_reset(&c->key);
    sb_put(&c->key, &r, sizeof(r));
    sb_put(&c->key, &kind, sizeof(kind));
    prwd_key_adds(&c->key, name);
    if (c->key.err) {
        return NULL;
    }
    void **slot = prwd_map_slot(c->a, &c->metrics, c->key.p, c->key.len, 1);
    if (!slot) {
        return NULL;
    }
    macc_t *m = *slot;
    if (!m) {
        m = arena_calloc(c->a, sizeof(*m));
        if (!m || PUSH(c, r->metrics, r->nmetrics, r->cap_metrics, m) != 0) {
            return NULL;
        }
        m->name = name;
        m->kind = kind;
        m->ptype = ptype;
        *slot = m;
    }
    if (!m->help && help && help[0]) {
        m->help = help;
    }
    return m;
}

static int set_sref(ctx_t *c, const ser_t *s, void *pt, int kind)
{
    sb_reset(&c->key);
    for (size_t i = 0; i < s->nl; i++) {
        prwd_key_adds(&c->key, s->l[i].name);
        prwd_key_adds(&c->key, s->l[i].value);
    }
    if (c->key.err) {
        return OOM(c);
    }
    void **slot = prwd_map_slot(c->a, &c->srefs, c->key.p, c->key.len, 1);
    if (!slot) {
        return OOM(c);
    }
    sref_t *r = *slot;
    if (!r && !(r = *slot = arena_alloc(c->a, sizeof(*r)))) {
        return OOM(c);
    }
    r->pt = pt;
    r->kind = kind;
    return MT_OK;
}

int prwd_emit_number(ctx_t *c, ser_t *s, const cls_t *k, macc_t *m)
{
    for (size_t i = 0; i < s->ns; i++) {
        const smp_t *sm = &s->s[i];
        num_pt_t *p = arena_alloc(c->a, sizeof(*p));
        if (!p) {
            return OOM(c);
        }
        *p = (num_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
        int rc = prwd_mk_attrs(c, s, NULL, &p->attributes, &p->n_attributes);
        if (rc != MT_OK) {
            return rc;
        }
        p->time_unix_nano = prwd_ms2ns(sm->ts);
        p->start_time_unix_nano = prwd_ms2ns(sm->start);
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        if (prwd_is_stale(sm->v)) {
            p->flags = NO_RECORDED_VALUE;
            p->as_double = 0;
        } else {
            p->as_double = sm->v;
        }
        if (PUSH(c, m->pts, m->npts, m->cap, p) != 0 || set_sref(c, s, p, k->kind) != MT_OK) {
            return OOM(c);
        }
        c->st.samples++;
    }
    return MT_OK;
}

static int parse_float_label(ctx_t *c, const ser_t *s, const char *lname, const char *v,
                             double *out)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (!v[0] || *end || isnan(d)) {
        char buf[160];
        return prwd_fail(c, "%s: %s=\"%.40s\" is not a number",
                         prwd_series_desc(c, s, buf, sizeof(buf)), lname, v);
    }
    *out = d;
    return MT_OK;
}

/* Adds one part sample (bucket, quantile, _sum, _count) to the point its family has at
 * that timestamp for the same other labels, creating the point on first sight. */
int prwd_emit_part(ctx_t *c, ser_t *s, const cls_t *k, macc_t *m)
{
    const char *skip = k->role == R_BUCKET ? "le" : k->role == R_QUANTILE ? "quantile" : NULL;
    double fv = 0;
    if (skip) {
        int rc = parse_float_label(c, s, skip, k->role == R_BUCKET ? s->le : s->quantile, &fv);
        if (rc != MT_OK) {
            return rc;
        }
        if (k->role == R_BUCKET && isinf(fv) && fv < 0) {
            char buf[160];
            return prwd_fail(c, "%s: le=\"-Inf\" is not a bucket bound",
                             prwd_series_desc(c, s, buf, sizeof(buf)));
        }
    }
    for (size_t i = 0; i < s->ns; i++) {
        const smp_t *sm = &s->s[i];
        sb_reset(&c->key);
        sb_put(&c->key, &m, sizeof(m));
        sb_put(&c->key, &sm->ts, sizeof(sm->ts));
        for (size_t j = 0; j < s->nl; j++) {
            const lbl_t *l = &s->l[j];
            if (!l->value[0] || strcmp(l->name, "__name__") == 0 ||
                (skip && strcmp(l->name, skip) == 0)) {
                continue;
            }
            prwd_key_adds(&c->key, l->name);
            prwd_key_adds(&c->key, l->value);
        }
        if (c->key.err) {
            return OOM(c);
        }
        void **slot = prwd_map_slot(c->a, &c->groups, c->key.p, c->key.len, 1);
        if (!slot) {
            return OOM(c);
        }
        grp_t *g = *slot;
        if (!g) {
            g = arena_calloc(c->a, sizeof(*g));
            if (!g || PUSH(c, c->grps, c->ngrps, c->cap_grps, g) != 0 ||
                PUSH(c, m->pts, m->npts, m->cap, NULL) != 0) {
                return OOM(c);
            }
            g->m = m;
            int rc;
            if (k->kind == K_HIST) {
                hist_pt_t *p = arena_alloc(c->a, sizeof(*p));
                if (!p) {
                    return OOM(c);
                }
                *p = (hist_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
                rc = prwd_mk_attrs(c, s, skip, &p->attributes, &p->n_attributes);
                p->time_unix_nano = prwd_ms2ns(sm->ts);
                g->pt = p;
            } else {
                sum_pt_t *p = arena_alloc(c->a, sizeof(*p));
                if (!p) {
                    return OOM(c);
                }
                *p = (sum_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT;
                rc = prwd_mk_attrs(c, s, skip, &p->attributes, &p->n_attributes);
                p->time_unix_nano = prwd_ms2ns(sm->ts);
                g->pt = p;
            }
            if (rc != MT_OK) {
                return rc;
            }
            m->pts[m->npts - 1] = g->pt;
            *slot = g;
        }
        if (sm->start) {
            uint64_t st = prwd_ms2ns(sm->start);
            if (k->kind == K_HIST) {
                ((hist_pt_t *)g->pt)->start_time_unix_nano = st;
            } else {
                ((sum_pt_t *)g->pt)->start_time_unix_nano = st;
            }
        }
        int stale = prwd_is_stale(sm->v);
        g->stale |= stale;
        double v = stale ? 0 : sm->v;
        switch (k->role) {
        case R_BUCKET: {
            int dup = 0;
            for (size_t j = 0; j < g->nb; j++) {
                dup |= g->b[j].le == fv;
            }
            bucket_t b = {fv, v};
            if (!dup && PUSH(c, g->b, g->nb, g->cap_b, b) != 0) {
                return OOM(c);
            }
            break;
        }
        case R_QUANTILE: {
            quantile_t *q = arena_alloc(c->a, sizeof(*q));
            if (!q) {
                return OOM(c);
            }
            *q = (quantile_t)
                OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT;
            q->quantile = fv;
            q->value = v;
            if (PUSH(c, g->q, g->nq, g->cap_q, q) != 0) {
                return OOM(c);
            }
            break;
        }
        case R_SUM:
            g->has_sum = 1;
            g->sum = v;
            break;
        default:
            g->has_count = 1;
            g->count = v;
            break;
        }
        if (set_sref(c, s, g->pt, k->kind) != MT_OK) {
            return OOM(c);
        }
        c->st.samples++;
    }
    return MT_OK;
}

static int cmp_bucket(const void *a, const void *b)
{
    double x = ((const bucket_t *)a)->le, y = ((const bucket_t *)b)->le;
    return x < y ? -1 : x > y;
}

static int cmp_quantile(const void *a, const void *b)
{
    double x = (*(quantile_t *const *)a)->quantile, y = (*(quantile_t *const *)b)->quantile;
    return x < y ? -1 : x > y;
}

/* Turns a reassembled classic histogram's cumulative `le` buckets into OTLP's per-bucket
 * counts: finite bounds become explicit_bounds and the +Inf bucket the last count. */
int prwd_finish_hist(ctx_t *c, grp_t *g)
{
    hist_pt_t *p = g->pt;
    if (g->nb > 1) {
        qsort(g->b, g->nb, sizeof(*g->b), cmp_bucket);
    }
    size_t nfin = 0;
    while (nfin < g->nb && !isinf(g->b[nfin].le)) {
        nfin++;
    }
    int has_inf = nfin < g->nb;
    double prev = 0;
    if (g->nb) {
        p->explicit_bounds = arena_alloc(c->a, (nfin ? nfin : 1) * sizeof(double));
        p->bucket_counts = arena_alloc(c->a, (nfin + 1) * sizeof(uint64_t));
        if (!p->explicit_bounds || !p->bucket_counts) {
            return OOM(c);
        }
        p->n_explicit_bounds = nfin;
        p->n_bucket_counts = nfin + 1;
        for (size_t i = 0; i < nfin; i++) {
            double cum = g->b[i].cum > prev ? g->b[i].cum : prev; /* never decreasing */
            p->explicit_bounds[i] = g->b[i].le;
            p->bucket_counts[i] = prwd_to_count(cum) - prwd_to_count(prev);
            prev = cum;
        }
        double total = has_inf ? g->b[nfin].cum : g->has_count ? g->count : prev;
        p->bucket_counts[nfin] = total > prev ? prwd_to_count(total) - prwd_to_count(prev) : 0;
        prev = total > prev ? total : prev;
    }
    p->count = g->has_count ? prwd_to_count(g->count) : prwd_to_count(prev);
    if (g->has_sum) {
        p->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
        p->sum = g->sum;
    }
    if (g->stale) {
        p->flags = NO_RECORDED_VALUE;
        p->count = 0;
        p->sum = 0;
        for (size_t i = 0; i < p->n_bucket_counts; i++) {
            p->bucket_counts[i] = 0;
        }
    }
    return MT_OK;
}

void prwd_finish_summary(grp_t *g)
{
    sum_pt_t *p = g->pt;
    if (g->nq > 1) {
        qsort(g->q, g->nq, sizeof(*g->q), cmp_quantile);
    }
    p->quantile_values = g->q;
    p->n_quantile_values = g->nq;
    p->count = g->has_count ? prwd_to_count(g->count) : 0;
    p->sum = g->has_sum ? g->sum : 0;
    if (g->stale) {
        p->flags = NO_RECORDED_VALUE;
        p->count = 0;
        p->sum = 0;
        for (size_t i = 0; i < g->nq; i++) {
            g->q[i]->value = 0;
        }
    }
}

/* ---- native histograms ----------------------------------------------------------------------- */

/* Expands spans + deltas (integer histograms) or spans + counts (float histograms) into a
 * dense array starting at Prometheus bucket index *first. */
static int expand_buckets(ctx_t *c, const ser_t *s, const char *side, const span_t *sp, size_t nsp,
                          const int64_t *deltas, size_t nd, const double *counts, size_t ncnt,
                          int is_float, int64_t *first, uint64_t **out, size_t *nout)
{
    char d[160];
    uint64_t total = 0;
    int64_t lo = 0, hi = 0, pos = 0;
    int any = 0;
    for (size_t i = 0; i < nsp; i++) {
        if (i > 0 && sp[i].off < 0) {
            return prwd_fail(c, "%s: native histogram %s span %zu has a negative offset",
                             prwd_series_desc(c, s, d, sizeof(d)), side, i);
        }
        pos += sp[i].off;
        if (sp[i].len) {
            if (!any) {
                lo = pos;
                any = 1;
            }
            hi = pos + sp[i].len - 1;
        }
        pos += sp[i].len;
        total += sp[i].len;
    }
    size_t have = is_float ? ncnt : nd;
    if (total != have || (is_float ? nd : ncnt) != 0) {
        return prwd_fail(c, "%s: native histogram %s spans cover %llu buckets but %zu %s were sent",
                         prwd_series_desc(c, s, d, sizeof(d)), side, (unsigned long long)total,
                         have, is_float ? "counts" : "deltas");
    }
    *first = lo;
    *nout = 0;
    *out = NULL;
    if (!any) {
        return MT_OK;
    }
    uint64_t width = (uint64_t)(hi - lo) + 1;
    if (width > PRW_MAX_DENSE_BUCKETS || width > c->dense_budget) {
        return prwd_fail(c, "%s: native histogram %s buckets span %llu indices (limit %u)",
                         prwd_series_desc(c, s, d, sizeof(d)), side, (unsigned long long)width,
                         PRW_MAX_DENSE_BUCKETS);
    }
    c->dense_budget -= width;
    uint64_t *dense = arena_calloc(c->a, width * sizeof(uint64_t));
    if (!dense) {
        return OOM(c);
    }
    int64_t run = 0;
    size_t k = 0;
    pos = 0;
    for (size_t i = 0; i < nsp; i++) {
        pos += sp[i].off;
        for (uint32_t j = 0; j < sp[i].len; j++, k++, pos++) {
            uint64_t v;
            if (is_float) {
                if (!(counts[k] >= 0)) {
                    return prwd_fail(c, "%s: native histogram %s bucket count %g is negative",
                                     prwd_series_desc(c, s, d, sizeof(d)), side, counts[k]);
                }
                v = prwd_to_count(counts[k]);
            } else {
                if (__builtin_add_overflow(run, deltas[k], &run) || run < 0) {
                    return prwd_fail(c,
                                     "%s: native histogram %s bucket deltas give a negative count",
                                     prwd_series_desc(c, s, d, sizeof(d)), side);
                }
                v = (uint64_t)run;
            }
            dense[pos - lo] = v;
        }
    }
    *out = dense;
    *nout = (size_t)width;
    return MT_OK;
}

static uint64_t hist_count(const hist_t *h)
{
    return h->is_float ? prwd_to_count(h->count_f) : h->count_i;
}

/* schema -53: custom bucket bounds (NHCB) -> an explicit-bucket OTLP histogram point. */
static int emit_nhcb(ctx_t *c, ser_t *s, const hist_t *h, macc_t *m)
{
    char d[160];
    for (size_t i = 0; i < h->n_custom; i++) {
        if (!isfinite(h->custom[i]) || (i > 0 && !(h->custom[i] > h->custom[i - 1]))) {
            return prwd_fail(c, "%s: custom bucket bounds must be finite and strictly increasing",
                             prwd_series_desc(c, s, d, sizeof(d)));
        }
    }
    if (h->n_nspans) {
        return prwd_fail(c, "%s: custom-bucket histogram with negative buckets",
                         prwd_series_desc(c, s, d, sizeof(d)));
    }
    hist_pt_t *p = arena_alloc(c->a, sizeof(*p));
    if (!p) {
        return OOM(c);
    }
    *p = (hist_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    int rc = prwd_mk_attrs(c, s, NULL, &p->attributes, &p->n_attributes);
    if (rc != MT_OK) {
        return rc;
    }
    p->time_unix_nano = prwd_ms2ns(h->ts);
    p->start_time_unix_nano = prwd_ms2ns(h->start);
    if (prwd_is_stale(h->sum)) {
        p->flags = NO_RECORDED_VALUE;
    } else {
        int64_t first;
        uint64_t *dense;
        size_t nd;
        rc = expand_buckets(c, s, "positive", h->pspans, h->n_pspans, h->pdeltas, h->n_pdeltas,
                            h->pcounts, h->n_pcounts, h->is_float, &first, &dense, &nd);
        if (rc != MT_OK) {
            return rc;
        }
        if (nd && (first < 0 || first + (int64_t)nd - 1 > (int64_t)h->n_custom)) {
            return prwd_fail(c, "%s: custom-bucket index outside 0..%zu",
                             prwd_series_desc(c, s, d, sizeof(d)), h->n_custom);
        }
        p->n_explicit_bounds = h->n_custom;
        p->explicit_bounds = (double *)h->custom;
        p->n_bucket_counts = h->n_custom + 1;
        p->bucket_counts = arena_calloc(c->a, p->n_bucket_counts * sizeof(uint64_t));
        if (!p->bucket_counts) {
            return OOM(c);
        }
        for (size_t i = 0; i < nd; i++) {
            p->bucket_counts[first + (int64_t)i] = dense[i];
        }
        p->count = hist_count(h);
        p->sum__case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
        p->sum = h->sum;
    }
    if (PUSH(c, m->pts, m->npts, m->cap, p) != 0 || set_sref(c, s, p, K_HIST) != MT_OK) {
        return OOM(c);
    }
    return MT_OK;
}

static int exp_side(ctx_t *c, const ser_t *s, const hist_t *h, int positive, exp_buckets_t **out)
{
    int64_t first;
    uint64_t *dense;
    size_t nd;
    int rc =
        positive
            ? expand_buckets(c, s, "positive", h->pspans, h->n_pspans, h->pdeltas, h->n_pdeltas,
                             h->pcounts, h->n_pcounts, h->is_float, &first, &dense, &nd)
            : expand_buckets(c, s, "negative", h->nspans, h->n_nspans, h->ndeltas, h->n_ndeltas,
                             h->ncounts, h->n_ncounts, h->is_float, &first, &dense, &nd);
    if (rc != MT_OK) {
        return rc;
    }
    *out = NULL;
    if (!nd) {
        return MT_OK;
    }
    /* Prometheus indexes a bucket by its upper bound (base^k), OTLP by its lower bound
     * (base^(k-1)): index k becomes k-1 */
    if (first - 1 < INT32_MIN) {
        char d[160];
        return prwd_fail(c, "%s: native histogram bucket index out of range",
                         prwd_series_desc(c, s, d, sizeof(d)));
    }
    exp_buckets_t *b = arena_alloc(c->a, sizeof(*b));
    if (!b) {
        return OOM(c);
    }
    *b = (exp_buckets_t)
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    b->offset = (int32_t)(first - 1);
    b->bucket_counts = dense;
    b->n_bucket_counts = nd;
    *out = b;
    return MT_OK;
}

int prwd_emit_native(ctx_t *c, ser_t *s, const hist_t *h, res_t *r)
{
    char d[160], why[160];
    /* OTLP requires count = zero count + bucket counts; a point that breaks it is refused */
    if (prw_valid_hist_count(h, why, sizeof(why)) != 0) {
        return prwd_fail(c, "%s: native histogram %s", prwd_series_desc(c, s, d, sizeof(d)), why);
    }
    if (h->schema == -53) {
        macc_t *m = prwd_get_metric(c, r, s->name, K_HIST, s->help, NULL);
        if (!m) {
            return OOM(c);
        }
        return emit_nhcb(c, s, h, m);
    }
    if (h->schema < -4 || h->schema > 8) {
        return prwd_fail(c, "%s: native histogram schema %d is not supported (-4..8 or -53)",
                         prwd_series_desc(c, s, d, sizeof(d)), (int)h->schema);
    }
    macc_t *m = prwd_get_metric(c, r, s->name, K_EXPHIST, s->help, NULL);
    exp_pt_t *p = arena_alloc(c->a, sizeof(*p));
    if (!m || !p) {
        return OOM(c);
    }
    *p = (exp_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
    int rc = prwd_mk_attrs(c, s, NULL, &p->attributes, &p->n_attributes);
    if (rc != MT_OK) {
        return rc;
    }
    p->time_unix_nano = prwd_ms2ns(h->ts);
    p->start_time_unix_nano = prwd_ms2ns(h->start);
    p->scale = h->schema;
    p->zero_threshold = h->zero_threshold;
    if (prwd_is_stale(h->sum)) {
        p->flags = NO_RECORDED_VALUE;
    } else {
        if ((rc = exp_side(c, s, h, 1, &p->positive)) != MT_OK ||
            (rc = exp_side(c, s, h, 0, &p->negative)) != MT_OK) {
            return rc;
        }
        p->count = hist_count(h);
        p->zero_count = h->zc_float ? prwd_to_count(h->zc_f) : h->zc_i;
        p->sum__case =
            OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM__SUM;
        p->sum = h->sum;
    }
    if (PUSH(c, m->pts, m->npts, m->cap, p) != 0 || set_sref(c, s, p, K_EXPHIST) != MT_OK) {
        return OOM(c);
    }
    return MT_OK;
}

/* ---- exemplars ------------------------------------------------------------------------------- */

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Decodes `want` bytes of hex; returns 0 when the text is not exactly that. */
static int hex_bytes(ctx_t *c, const char *hex, size_t want, ProtobufCBinaryData *out)
{
    if (strlen(hex) != 2 * want) {
        return 0;
    }
    uint8_t *b = arena_alloc(c->a, want);
    if (!b) {
        return 0;
    }
    for (size_t i = 0; i < want; i++) {
        int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
        if (h < 0 || l < 0) {
            return 0;
        }
        b[i] = (uint8_t)(h << 4 | l);
    }
    out->data = b;
    out->len = want;
    return 1;
}

int prwd_attach_exemplars(ctx_t *c, const ser_t *s)
{
    sb_reset(&c->key);
    for (size_t i = 0; i < s->nl; i++) {
        prwd_key_adds(&c->key, s->l[i].name);
        prwd_key_adds(&c->key, s->l[i].value);
    }
    if (c->key.err) {
        return OOM(c);
    }
    /* RW senders put exemplars in their own TimeSeries entries; they belong to the latest
     * point of the series with the same labels. Without one (or on a summary) they cannot be
     * written: RW 2.0 must not then answer 2xx, so it refuses; RW 1.0 (no written counts, and
     * Prometheus 1.0 senders queue exemplars apart from their samples) drops them, counted in
     * the stats for the receiver to report. */
    void **slot = prwd_map_slot(c->a, &c->srefs, c->key.p, c->key.len, 0);
    const sref_t *r = slot ? *slot : NULL;
    if ((!r || r->kind == K_SUMMARY) && c->version == 2) {
        char d[160];
        return prwd_fail(c, "%s: %zu exemplar(s) %s; they cannot be written",
                         prwd_series_desc(c, s, d, sizeof(d)), s->nx,
                         r ? "on a summary (OTLP summaries carry none)"
                           : "but no sample or histogram of this series");
    }
    if (!r) {
        c->st.exemplars_no_sample += s->nx;
        return MT_OK;
    }
    if (r->kind == K_SUMMARY) {
        c->st.exemplars_on_summary += s->nx;
        return MT_OK;
    }
    for (size_t i = 0; i < s->nx; i++) {
        const exm_t *x = &s->x[i];
        exemplar_t *e = arena_alloc(c->a, sizeof(*e));
        kv_t **attrs = arena_alloc(c->a, (x->nl ? x->nl : 1) * sizeof(kv_t *));
        if (!e || !attrs) {
            return OOM(c);
        }
        *e = (exemplar_t)OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__INIT;
        e->time_unix_nano = prwd_ms2ns(x->ts);
        e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
        e->as_double = x->v;
        e->filtered_attributes = attrs;
        for (size_t k = 0; k < x->nl; k++) {
            const lbl_t *l = &x->l[k];
            if (strcmp(l->name, "trace_id") == 0 && !e->trace_id.len &&
                hex_bytes(c, l->value, 16, &e->trace_id)) {
                continue;
            }
            if (strcmp(l->name, "span_id") == 0 && !e->span_id.len &&
                hex_bytes(c, l->value, 8, &e->span_id)) {
                continue;
            }
            if (!(attrs[e->n_filtered_attributes++] = prwd_mk_kv(c, l->name, l->value))) {
                return OOM(c);
            }
        }
        int rc;
        switch (r->kind) {
        case K_GAUGE:
        case K_SUM: {
            num_pt_t *p = r->pt;
            rc = PUSH_IMPLIED(c->a, p->exemplars, p->n_exemplars, e);
            break;
        }
        case K_HIST: {
            hist_pt_t *p = r->pt;
            rc = PUSH_IMPLIED(c->a, p->exemplars, p->n_exemplars, e);
            break;
        }
        default: {
            exp_pt_t *p = r->pt;
            rc = PUSH_IMPLIED(c->a, p->exemplars, p->n_exemplars, e);
            break;
        }
        }
        if (rc != 0) {
            return OOM(c);
        }
        c->st.exemplars++;
    }
    return MT_OK;
}

/* ---- assembly -------------------------------------------------------------------------------- */

static int build_metric(ctx_t *c, const macc_t *m, metric_t **out)
{
    metric_t *mt = arena_alloc(c->a, sizeof(*mt));
    if (!mt) {
        return OOM(c);
    }
    *mt = (metric_t)OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    mt->name = (char *)m->name;
    mt->description = (char *)(m->help ? m->help : "");
    if (m->ptype) {
        kv_t *kv = prwd_mk_kv(c, "prometheus.type", m->ptype);
        mt->metadata = arena_alloc(c->a, sizeof(kv_t *));
        if (!kv || !mt->metadata) {
            return OOM(c);
        }
        mt->metadata[0] = kv;
        mt->n_metadata = 1;
    }
    switch (m->kind) {
    case K_GAUGE: {
        Opentelemetry__Proto__Metrics__V1__Gauge *g = arena_alloc(c->a, sizeof(*g));
        if (!g) {
            return OOM(c);
        }
        *g = (Opentelemetry__Proto__Metrics__V1__Gauge)
            OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
        g->data_points = (num_pt_t **)m->pts;
        g->n_data_points = m->npts;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        mt->gauge = g;
        break;
    }
    case K_SUM: {
        Opentelemetry__Proto__Metrics__V1__Sum *g = arena_alloc(c->a, sizeof(*g));
        if (!g) {
            return OOM(c);
        }
        *g = (Opentelemetry__Proto__Metrics__V1__Sum)OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
        g->data_points = (num_pt_t **)m->pts;
        g->n_data_points = m->npts;
        g->aggregation_temporality = CUMULATIVE;
        g->is_monotonic = 1;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        mt->sum = g;
        break;
    }
    case K_HIST: {
        Opentelemetry__Proto__Metrics__V1__Histogram *g = arena_alloc(c->a, sizeof(*g));
        if (!g) {
            return OOM(c);
        }
        *g = (Opentelemetry__Proto__Metrics__V1__Histogram)
            OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
        g->data_points = (hist_pt_t **)m->pts;
        g->n_data_points = m->npts;
        g->aggregation_temporality = CUMULATIVE;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        mt->histogram = g;
        break;
    }
    case K_EXPHIST: {
        Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *g = arena_alloc(c->a, sizeof(*g));
        if (!g) {
            return OOM(c);
        }
        *g = (Opentelemetry__Proto__Metrics__V1__ExponentialHistogram)
            OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
        g->data_points = (exp_pt_t **)m->pts;
        g->n_data_points = m->npts;
        g->aggregation_temporality = CUMULATIVE;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
        mt->exponential_histogram = g;
        break;
    }
    default: {
        Opentelemetry__Proto__Metrics__V1__Summary *g = arena_alloc(c->a, sizeof(*g));
        if (!g) {
            return OOM(c);
        }
        *g = (Opentelemetry__Proto__Metrics__V1__Summary)
            OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT;
        g->data_points = (sum_pt_t **)m->pts;
        g->n_data_points = m->npts;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
        mt->summary = g;
        break;
    }
    }
    c->st.points += m->npts;
    *out = mt;
    return MT_OK;
}

int prwd_assemble(ctx_t *c, metrics_req_t **out)
{
    metrics_req_t *req = arena_alloc(c->a, sizeof(*req));
    if (!req) {
        return OOM(c);
    }
    *req = (metrics_req_t)OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req->resource_metrics = arena_alloc(c->a, (c->nres ? c->nres : 1) * sizeof(void *));
    if (!req->resource_metrics) {
        return OOM(c);
    }
    for (size_t i = 0; i < c->nres; i++) {
        res_t *r = c->res_list[i];
        if (!r->nmetrics) {
            continue; /* only target_info, or nothing convertible */
        }
        Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = arena_alloc(c->a, sizeof(*rm));
        Opentelemetry__Proto__Resource__V1__Resource *rs = arena_alloc(c->a, sizeof(*rs));
        Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = arena_alloc(c->a, sizeof(*sm));
        Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = arena_alloc(c->a, sizeof(*sc));
        metric_t **ms = arena_alloc(c->a, r->nmetrics * sizeof(*ms));
        Opentelemetry__Proto__Metrics__V1__ScopeMetrics **sms = arena_alloc(c->a, sizeof(*sms));
        if (!rm || !rs || !sm || !sc || !ms || !sms) {
            return OOM(c);
        }
        *rm = (Opentelemetry__Proto__Metrics__V1__ResourceMetrics)
            OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
        *rs = (Opentelemetry__Proto__Resource__V1__Resource)
            OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        *sm = (Opentelemetry__Proto__Metrics__V1__ScopeMetrics)
            OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
        *sc = (Opentelemetry__Proto__Common__V1__InstrumentationScope)
            OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
        sc->name = PRW_SCOPE_NAME;
        sc->version = MELTP_VERSION;
        rs->attributes = r->attrs;
        rs->n_attributes = r->nattrs;
        for (size_t k = 0; k < r->nmetrics; k++) {
            int rc = build_metric(c, r->metrics[k], &ms[k]);
            if (rc != MT_OK) {
                return rc;
            }
        }
        sm->scope = sc;
        sm->metrics = ms;
        sm->n_metrics = r->nmetrics;
        sms[0] = sm;
        rm->resource = rs;
        rm->scope_metrics = sms;
        rm->n_scope_metrics = 1;
        req->resource_metrics[req->n_resource_metrics++] = rm;
    }
    *out = req;
    return MT_OK;
}
