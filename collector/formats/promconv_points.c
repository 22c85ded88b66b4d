/*
 * promconv_points.c - the per-point side of the OTLP -> Prometheus conversion: the labels of
 * one point, the delta state lookup, exemplars, and the conversion of gauges and sums, classic
 * histograms, exponential histograms (as native histograms) and summaries into series.
 * Part of the formats/promconv module (promconv_int.h).
 */
#include "promconv.h"
#include "promconv_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_RECORDED_VALUE      1u
#define DEFAULT_ZERO_THRESHOLD 1e-128
#define EXEMPLAR_MAX_RUNES     128 /* OpenMetrics 1.0 cap on exemplar label text */
#define NATIVE_MAX_SCALE       8
#define NATIVE_MIN_SCALE       (-4)
#define DC_MAX_EXP_BUCKETS     4096 /* widest accumulated exponential bucket range before downscaling */

enum { TEMPO_UNSPEC = 0, TEMPO_DELTA = 1, TEMPO_CUMULATIVE = 2 };

/* ------------------------------------------------------------------------------------------ */
/* Labels of one point                                                                        */

/* Builds c->pl: point attributes, then promoted resource attributes (only where absent), scope
 * labels and job/instance (these win), external labels (only where absent); empty values and
 * __name__ dropped; sorted by name. The order of precedence is Prometheus's createAttributes. */
static int point_labels(pc_ctx_t *c, pc_res_t *r, kv_t *const *attrs, size_t n)
{
    c->pl.n = 0;
    if (pc_attrs_to_lset(c, attrs, n, NULL, &c->pl) != 0) {
        return -1;
    }
    for (size_t i = 0; i < r->promoted.n; i++) {
        if (pc_lset_set(c, &c->pl, r->promoted.v[i], 0) != 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < c->scope.n; i++) {
        if (pc_lset_set(c, &c->pl, c->scope.v[i], 1) != 0) {
            return -1;
        }
    }
    return pc_lset_finish(c, r);
}

/* Key of a delta series: family, kind and the point's final labels. */
static int delta_key(pc_ctx_t *c, const char *family, int kind, size_t *len)
{
    size_t need = strlen(family) + 4;
    for (size_t i = 0; i < c->pl.n; i++) {
        need += strlen(c->pl.v[i]->name) + strlen(c->pl.v[i]->value) + 2;
    }
    if (pc_grow(c, (void **)&c->key, &c->key_cap, need, 1, 0) != 0) {
        return -1;
    }
    size_t n = 0;
    size_t fl = strlen(family);
    memcpy(c->key, family, fl + 1);
    n += fl + 1;
    c->key[n++] = (char)('0' + kind);
    for (size_t i = 0; i < c->pl.n; i++) {
        size_t a = strlen(c->pl.v[i]->name) + 1, b = strlen(c->pl.v[i]->value) + 1;
        memcpy(c->key + n, c->pl.v[i]->name, a);
        n += a;
        memcpy(c->key + n, c->pl.v[i]->value, b);
        n += b;
    }
    *len = n;
    return 0;
}

/* Locks the delta state and returns the entry for the current point, or NULL (unlocked, drop
 * counted) when there is no state, it is full, or memory ran out. */
static dc_entry_t *delta_entry(pc_ctx_t *c, const char *family, int kind, uint64_t start_ns,
                               int *fresh)
{
    size_t len;
    if (!c->dc) {
        pc_drop_points(c, 1, "delta_without_state");
        return NULL;
    }
    if (delta_key(c, family, kind, &len) != 0) {
        return NULL;
    }
    const char *why = NULL;
    pthread_mutex_lock(&c->dc->mu);
    dc_entry_t *e = pc_dc_get_locked(c->dc, c->key, len, pc_str_hash(c->key, len), kind, c->now_ms,
                                     fresh, &why);
    if (!e) {
        pthread_mutex_unlock(&c->dc->mu);
        pc_drop_points(c, 1, why);
        return NULL;
    }
    /* keep the earliest start we know: a restarted producer may report an earlier one, and
     * the running total simply carries on (protocols.md leaves resets to the consumer) */
    if (*fresh || (start_ns && (e->start_ns == 0 || start_ns < e->start_ns))) {
        e->start_ns = start_ns;
    }
    return e;
}

static void delta_unlock(pc_ctx_t *c)
{
    pthread_mutex_unlock(&c->dc->mu);
}

/* ------------------------------------------------------------------------------------------ */
/* Exemplars                                                                                  */

static int id_empty(ProtobufCBinaryData id)
{
    for (size_t i = 0; i < id.len; i++) {
        if (id.data[i]) {
            return 0;
        }
    }
    return 1;
}

static char *hex_dup(pc_ctx_t *c, ProtobufCBinaryData id)
{
    static const char hex[] = "0123456789abcdef";
    char *s = pc_ctx_alloc(c, id.len * 2 + 1);
    if (!s) {
        return NULL;
    }
    for (size_t i = 0; i < id.len; i++) {
        s[2 * i] = hex[id.data[i] >> 4];
        s[2 * i + 1] = hex[id.data[i] & 15];
    }
    s[id.len * 2] = 0;
    return s;
}

static size_t utf8_runes(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

/* trace_id / span_id (hex) first, then the filtered attributes (sanitised, never overriding
 * the ids) unless the label text would pass the OpenMetrics 128-rune cap. */
static Prometheus__Exemplar *conv_exemplar(pc_ctx_t *c, const otel_ex_t *x, int64_t point_ms)
{
    Prometheus__Exemplar *e = pc_ctx_alloc(c, sizeof(*e));
    if (!e) {
        return NULL;
    }
    prometheus__exemplar__init(e);
    if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT) {
        e->value = (double)x->as_int;
    } else if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE) {
        e->value = x->as_double;
    }
    e->timestamp = x->time_unix_nano ? (int64_t)(x->time_unix_nano / 1000000u) : point_ms;
    lset_t ls = {NULL, 0, 0};
    size_t runes = 0;
    if (x->trace_id.len && !id_empty(x->trace_id)) {
        plabel_t *l = pc_mk_label(c, pc_ctx_strdup(c, "trace_id"), hex_dup(c, x->trace_id));
        if (pc_lset_push(c, &ls, l) != 0) {
            return NULL;
        }
        runes += 8 + x->trace_id.len * 2;
    }
    if (x->span_id.len && !id_empty(x->span_id)) {
        plabel_t *l = pc_mk_label(c, pc_ctx_strdup(c, "span_id"), hex_dup(c, x->span_id));
        if (pc_lset_push(c, &ls, l) != 0) {
            return NULL;
        }
        runes += 7 + x->span_id.len * 2;
    }
    lset_t attrs = {NULL, 0, 0};
    if (pc_attrs_to_lset(c, x->filtered_attributes, x->n_filtered_attributes, NULL, &attrs) != 0) {
        return NULL;
    }
    for (size_t i = 0; i < attrs.n; i++) {
        runes += utf8_runes(attrs.v[i]->name) + utf8_runes(attrs.v[i]->value);
    }
    if (runes <= EXEMPLAR_MAX_RUNES) {
        for (size_t i = 0; i < attrs.n; i++) {
            if (!attrs.v[i]->value[0]) {
                continue;
            }
            if (pc_lset_set(c, &ls, attrs.v[i], 0) != 0) {
                return NULL;
            }
        }
    }
    pc_sort_labels(&ls);
    e->labels = ls.v;
    e->n_labels = ls.n;
    return e;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-type conversion                                                                        */

typedef struct {
    const metric_t *m;
    pc_res_t *r;
    const char *family;
    plabel_t *name_lbl, *bucket_lbl, *sum_lbl, *count_lbl;
} pc_metric_t;

plabel_t *pc_name_label(pc_ctx_t *c, const char *family, const char *suffix)
{
    size_t fl = strlen(family), sl = strlen(suffix);
    char *v = pc_ctx_alloc(c, fl + sl + 1);
    if (!v) {
        return NULL;
    }
    memcpy(v, family, fl);
    memcpy(v + fl, suffix, sl + 1);
    return pc_mk_label(c, pc_ctx_strdup(c, "__name__"), v);
}

static plabel_t *float_label(pc_ctx_t *c, const char *name, double v)
{
    char buf[400];
    if (promconv_format_float(v, buf, sizeof(buf)) < 0) {
        return NULL;
    }
    return pc_mk_label(c, pc_ctx_strdup(c, name), pc_ctx_strdup(c, buf));
}

static double number_value(const numdp_t *p)
{
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
        return (double)p->as_int;
    }
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
        return p->as_double;
    }
    return 0;
}

/* Gauges and sums. `counter` keeps exemplars; `delta` runs the value through the state. */
static int conv_numbers(pc_ctx_t *c, pc_metric_t *pm, numdp_t *const *pts, size_t n, int counter,
                        int delta)
{
    for (size_t i = 0; i < n; i++) {
        const numdp_t *p = pts[i];
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = pc_ts_ms(c, pm->r, p->time_unix_nano);
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        double v = stale ? promconv_stale_nan() : pc_plain_value(number_value(p));
        if (delta && !stale) {
            int fresh;
            dc_entry_t *e = delta_entry(c, pm->family, DC_SUM, p->start_time_unix_nano, &fresh);
            if (!e) {
                if (c->oom) {
                    return -1;
                }
                continue;
            }
            e->value = fresh ? v : e->value + v;
            v = e->value;
            delta_unlock(c);
        }
        pc_series_t *s = pc_series_for(c, pm->name_lbl, NULL);
        if (!pc_add_sample(c, s, v, ts)) {
            return -1;
        }
        for (size_t k = 0; counter && k < p->n_exemplars; k++) {
            if (pc_add_exemplar(c, s, conv_exemplar(c, p->exemplars[k], ts)) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int conv_histograms(pc_ctx_t *c, pc_metric_t *pm, histdp_t *const *pts, size_t n, int delta)
{
    for (size_t i = 0; i < n; i++) {
        const histdp_t *p = pts[i];
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = pc_ts_ms(c, pm->r, p->time_unix_nano);
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        int has_sum =
            p->sum__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
        size_t nb = p->n_explicit_bounds;
        const double *bounds = p->explicit_bounds;
        const uint64_t *counts = p->bucket_counts;
        size_t nc = p->n_bucket_counts;
        uint64_t count = p->count;
        double sum = has_sum ? p->sum : 0;
        uint64_t *acc = NULL;
        dc_entry_t *e = NULL;
        if (delta && !stale) {
            int fresh;
            e = delta_entry(c, pm->family, DC_HIST, p->start_time_unix_nano, &fresh);
            if (!e) {
                if (c->oom) {
                    return -1;
                }
                continue;
            }
            /* new bucket layout: start a new cumulative series rather than mix layouts */
            if (!fresh && (e->n_bounds != nb ||
                           (nb && memcmp(e->bounds, bounds, nb * sizeof(double)) != 0))) {
                pc_dc_entry_clear_state(e);
                e->kind = DC_HIST;
                e->start_ns = p->start_time_unix_nano;
                fresh = 1;
            }
            if (fresh) {
                e->bounds = nb ? malloc(nb * sizeof(double)) : NULL;
                e->counts = calloc(nb + 1, sizeof(uint64_t));
                if ((nb && !e->bounds) || !e->counts) {
                    pc_dc_entry_clear_state(e);
                    delta_unlock(c);
                    pc_drop_points(c, 1, "delta_state_oom");
                    continue;
                }
                if (nb) {
                    memcpy(e->bounds, bounds, nb * sizeof(double));
                }
                e->n_bounds = nb;
                e->has_sum = 1;
            }
            for (size_t k = 0; k <= nb && k < nc; k++) {
                e->counts[k] += counts[k];
            }
            e->count += count;
            e->sum += sum;
            e->has_sum = e->has_sum && has_sum;
            count = e->count;
            sum = e->sum;
            has_sum = e->has_sum;
            /* copy out so the lock is not held while emitting */
            acc = pc_ctx_alloc(c, (nb + 1) * sizeof(*acc));
            if (acc) {
                memcpy(acc, e->counts, (nb + 1) * sizeof(*acc));
            }
            delta_unlock(c);
            if (!acc) {
                return -1;
            }
            counts = acc;
            nc = nb + 1;
        }
        /* buckets: cumulative counts per bound, then +Inf = count; keep the series so
         * exemplars can land in the first bucket whose bound holds their value */
        pc_series_t **bs = pc_ctx_alloc(c, (nb + 1) * sizeof(*bs));
        if (!bs) {
            return -1;
        }
        uint64_t cum = 0;
        for (size_t k = 0; k < nb; k++) {
            if (k < nc) {
                cum += counts[k];
            }
            plabel_t *le = float_label(c, "le", bounds[k]);
            if (!le) {
                return -1;
            }
            bs[k] = pc_series_for(c, pm->bucket_lbl, le);
            if (!pc_add_sample(c, bs[k], stale ? promconv_stale_nan() : (double)cum, ts)) {
                return -1;
            }
        }
        plabel_t *inf = pc_mk_label(c, pc_ctx_strdup(c, "le"), pc_ctx_strdup(c, "+Inf"));
        if (!inf) {
            return -1;
        }
        bs[nb] = pc_series_for(c, pm->bucket_lbl, inf);
        if (!pc_add_sample(c, bs[nb], stale ? promconv_stale_nan() : (double)count, ts)) {
            return -1;
        }
        if (has_sum) {
            double v = stale ? promconv_stale_nan() : pc_plain_value(sum);
            if (!pc_add_sample(c, pc_series_for(c, pm->sum_lbl, NULL), v, ts)) {
                return -1;
            }
        }
        if (!pc_add_sample(c, pc_series_for(c, pm->count_lbl, NULL),
                           stale ? promconv_stale_nan() : (double)count, ts)) {
            return -1;
        }
        for (size_t k = 0; !stale && k < p->n_exemplars; k++) {
            Prometheus__Exemplar *x = conv_exemplar(c, p->exemplars[k], ts);
            if (!x) {
                return -1;
            }
            size_t b = 0;
            while (b < nb && !(x->value <= bounds[b])) {
                b++;
            }
            if (pc_add_exemplar(c, bs[b], x) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Native-histogram spans and deltas for OTel buckets (offset, counts), merged 2^scale_down at
 * a time. OTel array position i is native index floor((offset+i) / 2^scale_down) + 1: OTel
 * buckets are named by their lower bound, Prometheus's by their upper bound. Only non-empty
 * buckets are written, and every run of empty ones starts a new span (protocols.md §4.5:
 * offset 3, [10,0,0,20,5,2] -> spans {4,1},{2,3}, deltas [10,10,-15,-3]). */
static int encode_buckets(pc_ctx_t *c, int64_t offset, const uint64_t *counts, size_t n,
                          int scale_down, Prometheus__BucketSpan ***spans_out, size_t *n_spans,
                          int64_t **deltas_out, size_t *n_deltas)
{
    *n_spans = *n_deltas = 0;
    *spans_out = NULL;
    *deltas_out = NULL;
    if (n == 0) {
        return 0;
    }
    Prometheus__BucketSpan **spans = pc_ctx_alloc(c, n * sizeof(*spans));
    int64_t *deltas = pc_ctx_alloc(c, n * sizeof(*deltas));
    if (!spans || !deltas) {
        return -1;
    }
    size_t ns = 0, nd = 0;
    int64_t prev_idx = 0, prev_count = 0;
    size_t i = 0;
    while (i < n) {
        int64_t idx = pc_floor_shift(offset + (int64_t)i, scale_down) + 1;
        uint64_t sum = 0;
        while (i < n && pc_floor_shift(offset + (int64_t)i, scale_down) + 1 == idx) {
            sum += counts[i];
            i++;
        }
        if (sum == 0) {
            continue;
        }
        if (ns == 0 || idx != prev_idx + 1) {
            Prometheus__BucketSpan *sp = pc_ctx_alloc(c, sizeof(*sp));
            if (!sp) {
                return -1;
            }
            prometheus__bucket_span__init(sp);
            sp->offset = (int32_t)(ns == 0 ? idx : idx - prev_idx - 1);
            spans[ns++] = sp;
        }
        spans[ns - 1]->length++;
        deltas[nd++] = (int64_t)sum - prev_count;
        prev_count = (int64_t)sum;
        prev_idx = idx;
    }
    *spans_out = spans;
    *n_spans = ns;
    *deltas_out = deltas;
    *n_deltas = nd;
    return 0;
}

/* Folds one delta exponential point into its state (scale capped at 8, coarsened further when
 * the accumulated range would pass DC_MAX_EXP_BUCKETS). Caller holds the lock. */
static int exp_accumulate(dc_entry_t *e, int fresh, const expdp_t *p)
{
    const expbk_t *pos = p->positive, *neg = p->negative;
    int32_t ps = p->scale;
    int32_t target = ps > NATIVE_MAX_SCALE ? NATIVE_MAX_SCALE : ps;
    if (!fresh && e->scale < target) {
        target = e->scale;
    }
    if (fresh) {
        e->scale = target;
    }
    for (;;) {
        int ds = e->scale - target, dp = ps - target;
        int64_t wp =
            pc_bk_merged_width(&e->pos, pos ? pos->offset : 0, pos ? pos->n_bucket_counts : 0, dp);
        int64_t wn =
            pc_bk_merged_width(&e->neg, neg ? neg->offset : 0, neg ? neg->n_bucket_counts : 0, dp);
        /* the state's own width only shrinks when downscaled, so checking after the point's
         * merge at `target` is enough once the state is at `target` too */
        if (ds == 0 && wp <= DC_MAX_EXP_BUCKETS && wn <= DC_MAX_EXP_BUCKETS) {
            break;
        }
        if (ds > 0) {
            if (pc_bk_downscale(&e->pos, ds) != 0 || pc_bk_downscale(&e->neg, ds) != 0) {
                return -1;
            }
            e->scale = target;
            continue;
        }
        if (target <= NATIVE_MIN_SCALE) {
            return -1;
        }
        target--;
    }
    int dp = ps - target;
    if ((pos &&
         pc_bk_add(&e->pos, pos->offset, pos->bucket_counts, pos->n_bucket_counts, dp) != 0) ||
        (neg &&
         pc_bk_add(&e->neg, neg->offset, neg->bucket_counts, neg->n_bucket_counts, dp) != 0)) {
        return -1;
    }
    e->count += p->count;
    e->zero_count += p->zero_count;
    e->sum += p->sum;
    if (p->zero_threshold > e->zero_threshold) {
        e->zero_threshold = p->zero_threshold;
    }
    return 0;
}

static int conv_exp_histograms(pc_ctx_t *c, pc_metric_t *pm, expdp_t *const *pts, size_t n,
                               int delta)
{
    for (size_t i = 0; i < n; i++) {
        const expdp_t *p = pts[i];
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        int has_sum = p->sum__case ==
                      OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM__SUM;
        if (p->scale < NATIVE_MIN_SCALE) {
            pc_drop_points(c, 1, "scale_too_small");
            continue;
        }
        if (!stale && !has_sum) {
            pc_drop_points(c, 1, "no_sum");
            continue;
        }
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = pc_ts_ms(c, pm->r, p->time_unix_nano);
        Prometheus__Histogram *h = pc_ctx_alloc(c, sizeof(*h));
        if (!h) {
            return -1;
        }
        prometheus__histogram__init(h);
        h->reset_hint = PROMETHEUS__HISTOGRAM__RESET_HINT__UNKNOWN;
        h->timestamp = ts;
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        h->zero_threshold = p->zero_threshold > 0 ? p->zero_threshold : DEFAULT_ZERO_THRESHOLD;
        if (stale) {
            /* protocols.md §4.5: sum = stale NaN, count 0, no buckets */
            h->schema = p->scale > NATIVE_MAX_SCALE ? NATIVE_MAX_SCALE : p->scale;
            h->sum = promconv_stale_nan();
            h->count_int = 0;
            h->zero_count_int = 0;
        } else if (!delta) {
            int sd = p->scale > NATIVE_MAX_SCALE ? p->scale - NATIVE_MAX_SCALE : 0;
            h->schema = p->scale - sd;
            h->sum = pc_plain_value(p->sum);
            h->count_int = p->count;
            h->zero_count_int = p->zero_count;
            if ((p->positive && encode_buckets(c, p->positive->offset, p->positive->bucket_counts,
                                               p->positive->n_bucket_counts, sd, &h->positive_spans,
                                               &h->n_positive_spans, &h->positive_deltas,
                                               &h->n_positive_deltas) != 0) ||
                (p->negative && encode_buckets(c, p->negative->offset, p->negative->bucket_counts,
                                               p->negative->n_bucket_counts, sd, &h->negative_spans,
                                               &h->n_negative_spans, &h->negative_deltas,
                                               &h->n_negative_deltas) != 0)) {
                return -1;
            }
        } else {
            int fresh;
            dc_entry_t *e = delta_entry(c, pm->family, DC_EXP, p->start_time_unix_nano, &fresh);
            if (!e) {
                if (c->oom) {
                    return -1;
                }
                continue;
            }
            if (exp_accumulate(e, fresh, p) != 0) {
                /* the state may be half-merged: forget it rather than report a wrong total */
                pc_dc_entry_clear_state(e);
                e->kind = DC_EXP;
                delta_unlock(c);
                pc_drop_points(c, 1, "delta_state_oom");
                continue;
            }
            h->schema = e->scale;
            h->sum = pc_plain_value(e->sum);
            h->count_int = e->count;
            h->zero_count_int = e->zero_count;
            if (e->zero_threshold > 0) {
                h->zero_threshold = e->zero_threshold;
            }
            int rc =
                encode_buckets(c, e->pos.offset, e->pos.counts, e->pos.n, 0, &h->positive_spans,
                               &h->n_positive_spans, &h->positive_deltas, &h->n_positive_deltas);
            if (rc == 0) {
                rc = encode_buckets(c, e->neg.offset, e->neg.counts, e->neg.n, 0,
                                    &h->negative_spans, &h->n_negative_spans, &h->negative_deltas,
                                    &h->n_negative_deltas);
            }
            delta_unlock(c);
            if (rc != 0) {
                return -1;
            }
        }
        pc_series_t *s = pc_series_for(c, pm->name_lbl, NULL);
        if (pc_add_histogram(c, s, h) != 0) {
            return -1;
        }
        for (size_t k = 0; !stale && k < p->n_exemplars; k++) {
            if (pc_add_exemplar(c, s, conv_exemplar(c, p->exemplars[k], ts)) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int conv_summaries(pc_ctx_t *c, pc_metric_t *pm, sumdp_t *const *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const sumdp_t *p = pts[i];
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = pc_ts_ms(c, pm->r, p->time_unix_nano);
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        double nan = promconv_stale_nan();
        for (size_t k = 0; k < p->n_quantile_values; k++) {
            const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q =
                p->quantile_values[k];
            if (!q) {
                continue;
            }
            plabel_t *ql = float_label(c, "quantile", q->quantile);
            if (!ql) {
                return -1;
            }
            pc_series_t *s = pc_series_for(c, pm->name_lbl, ql);
            if (!pc_add_sample(c, s, stale ? nan : pc_plain_value(q->value), ts)) {
                return -1;
            }
        }
        if (!pc_add_sample(c, pc_series_for(c, pm->sum_lbl, NULL),
                           stale ? nan : pc_plain_value(p->sum), ts) ||
            !pc_add_sample(c, pc_series_for(c, pm->count_lbl, NULL), stale ? nan : (double)p->count,
                           ts)) {
            return -1;
        }
    }
    return 0;
}

static size_t n_points(const metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

int pc_conv_metric(pc_ctx_t *c, pc_res_t *r, const metric_t *m)
{
    size_t np = n_points(m);
    if (np == 0) {
        return 0;
    }
    int temporality = TEMPO_CUMULATIVE, counter = 0;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        temporality = m->sum->aggregation_temporality;
        counter = m->sum->is_monotonic;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        temporality = m->histogram->aggregation_temporality;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        temporality = m->exponential_histogram->aggregation_temporality;
        break;
    default:
        break;
    }
    if (temporality != TEMPO_CUMULATIVE && temporality != TEMPO_DELTA) {
        /* Prometheus rejects these too ("invalid temporality and type combination") */
        pc_drop_points(c, np, "invalid_temporality");
        return 0;
    }
    const char *unit = m->unit ? m->unit : "";
    const char *name = m->name ? m->name : "";
    size_t cap =
        strlen(name) + 2 * strlen(unit) + (c->o->namespace_ ? strlen(c->o->namespace_) : 0) + 64;
    char *family = pc_ctx_alloc(c, cap);
    if (!family) {
        return -1;
    }
    int type;
    if (promconv_family_name(m, c->o->add_metric_suffixes, c->o->namespace_, family, cap, &type) <
        0) {
        pc_drop_points(c, np, "invalid_name");
        return 0;
    }
    pc_metric_t pm = {m, r, family, NULL, NULL, NULL, NULL};
    pm.name_lbl = pc_name_label(c, family, "");
    pm.bucket_lbl = pc_name_label(c, family, "_bucket");
    pm.sum_lbl = pc_name_label(c, family, "_sum");
    pm.count_lbl = pc_name_label(c, family, "_count");
    if (!pm.name_lbl || !pm.bucket_lbl || !pm.sum_lbl || !pm.count_lbl ||
        pc_add_metadata(c, family, type, m->description, unit) != 0) {
        return -1;
    }
    int delta = temporality == TEMPO_DELTA;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return conv_numbers(c, &pm, m->gauge->data_points, np, 0, 0);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return conv_numbers(c, &pm, m->sum->data_points, np, counter, delta);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return conv_histograms(c, &pm, m->histogram->data_points, np, delta);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return conv_exp_histograms(c, &pm, m->exponential_histogram->data_points, np, delta);
    default:
        return conv_summaries(c, &pm, m->summary->data_points, np);
    }
}
