/*
 * promconv_int.h - PRIVATE to the formats/promconv module (promconv.c: conversion context,
 * series, samples, metadata, resources and promconv_convert; promconv_names.c: stale markers,
 * float text, metric and label names, attribute values as label text; promconv_delta.c: the
 * delta -> cumulative state; promconv_points.c: point labels, exemplars and the per-type
 * conversion). The conversion context, the delta state and the helpers the parts share (prefix
 * pc_). Other modules use promconv.h and must not include this header.
 */
#ifndef MELTP_PROMCONV_INT_H
#define MELTP_PROMCONV_INT_H

#include "sb.h"
#include "promconv.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyv_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics rmetrics_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics smetrics_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint numdp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint histdp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint expdp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets expbk_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sumdp_t;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar otel_ex_t;
typedef Prometheus__Label plabel_t;

/* ------------------------------------------------------------------------------------------ */
/* Delta -> cumulative state                                                                  */

enum { DC_SUM = 1, DC_HIST, DC_EXP };

typedef struct dc_buckets {
    int64_t offset; /* OTel bucket index of counts[0] */
    size_t n;
    uint64_t *counts;
} dc_buckets_t;

typedef struct dc_entry {
    struct dc_entry *next;
    uint64_t hash;
    char *key;
    size_t key_len;
    int kind;
    int64_t last_ms;   /* wall time of the last update, for expiry */
    uint64_t start_ns; /* start time of the first point we saw: the series' creation */
    double value;      /* DC_SUM */
    uint64_t count;    /* DC_HIST, DC_EXP */
    double sum;
    int has_sum;
    size_t n_bounds; /* DC_HIST: bounds[n_bounds], counts[n_bounds + 1] */
    double *bounds;
    uint64_t *counts;
    int32_t scale; /* DC_EXP */
    uint64_t zero_count;
    double zero_threshold;
    dc_buckets_t pos, neg;
} dc_entry_t;

struct deltacum {
    pthread_mutex_t mu;
    dc_entry_t **tab;
    size_t nbuckets; /* power of two */
    size_t n;
    size_t max_series;
    int64_t expiry_ms; /* <= 0: never expire */
    int64_t last_sweep_ms;
};

/* ------------------------------------------------------------------------------------------ */
/* Conversion context                                                                         */

typedef struct {
    plabel_t **v;
    size_t n, cap;
} lset_t;

typedef struct pc_series {
    Prometheus__TimeSeries ts; /* first: out->series holds &ts */
    uint64_t hash;
    struct pc_series *next;
    size_t cap_samples, cap_exemplars, cap_histograms;
    int unsorted; /* a sample arrived with an older timestamp than the last one */
} pc_series_t;

/* A string -> pointer map in the arena (open addressing), for metadata and target_info. */
typedef struct {
    const char **keys;
    void **vals;
    size_t cap, n;
} strmap_t;

typedef struct {
    const char *orig;
    char *name;
    const anyv_t *value;
    size_t idx;
} attr_ent_t;

typedef struct {
    lset_t promoted; /* added to each series when its label is not there yet */
    plabel_t *job, *instance;
    int64_t latest_ms;
} pc_res_t;

typedef struct {
    const promconv_opts_t *o;
    deltacum_t *dc;
    arena_t *a;
    promconv_out_t *out;
    int64_t now_ms;
    pc_series_t **tab;
    size_t tab_cap;
    strmap_t meta, tinfo;
    lset_t ext;   /* external labels */
    lset_t scope; /* current scope's labels (override attributes) */
    lset_t pl;    /* current point's labels, sorted, without __name__ */
    lset_t tmp;   /* one series' full label set before it is interned */
    attr_ent_t *ents;
    size_t ents_cap;
    char *key; /* delta state key scratch */
    size_t key_cap;
    int oom;
} pc_ctx_t;

/* ---- Text into a caller's fixed buffer: the core string builder in its fixed mode (sb.h) -- */

typedef sb_t fbuf_t;

/* ---- shared between the parts ------------------------------------------------------------- */

/* promconv.c */
void *pc_ctx_alloc(pc_ctx_t *c, size_t n);
char *pc_ctx_strdup(pc_ctx_t *c, const char *s);
int pc_grow(pc_ctx_t *c, void **arr, size_t *cap, size_t need, size_t elem, size_t used);
int pc_lset_push(pc_ctx_t *c, lset_t *s, plabel_t *l);
plabel_t *pc_mk_label(pc_ctx_t *c, char *name, char *value);
int pc_lset_set(pc_ctx_t *c, lset_t *s, plabel_t *l, int override);
void pc_sort_labels(lset_t *s);
int pc_lset_finish(pc_ctx_t *c, const pc_res_t *r);
pc_series_t *pc_series_for(pc_ctx_t *c, plabel_t *name, plabel_t *extra);
Prometheus__Sample *pc_add_sample(pc_ctx_t *c, pc_series_t *s, double v, int64_t ts);
int pc_add_histogram(pc_ctx_t *c, pc_series_t *s, Prometheus__Histogram *h);
int pc_add_exemplar(pc_ctx_t *c, pc_series_t *s, Prometheus__Exemplar *e);
uint64_t pc_str_hash(const char *s, size_t n);
int pc_add_metadata(pc_ctx_t *c, const char *family, int type, const char *help, const char *unit);
void pc_drop_points(pc_ctx_t *c, size_t n, const char *reason);
int64_t pc_ts_ms(pc_ctx_t *c, pc_res_t *r, uint64_t ns);

/* promconv_names.c */
double pc_plain_value(double v);
void pc_fb_truncate(fbuf_t *b, size_t len);
void pc_unit_parts(const char *unit, const char **m, size_t *mn, const char **p, size_t *pn);
void pc_fb_unit_word(fbuf_t *b, const char *s, size_t n, int per);
char *pc_any_str(pc_ctx_t *c, const anyv_t *v);
char *pc_label_name_dup(pc_ctx_t *c, const char *key);
int pc_key_in(const char *key, const char *const *list);
int pc_attrs_to_lset(pc_ctx_t *c, kv_t *const *attrs, size_t n, const char *const *skip,
                     lset_t *dst);

/* promconv_delta.c */
void pc_dc_entry_clear_state(dc_entry_t *e);
void pc_dc_maybe_sweep_locked(deltacum_t *dc, int64_t now_ms);
dc_entry_t *pc_dc_get_locked(deltacum_t *dc, const char *key, size_t len, uint64_t hash, int kind,
                             int64_t now_ms, int *fresh, const char **why);
int64_t pc_floor_shift(int64_t x, int d);
int64_t pc_bk_merged_width(const dc_buckets_t *dst, int64_t off, size_t n, int d);
int pc_bk_add(dc_buckets_t *dst, int64_t off, const uint64_t *counts, size_t n, int d);
int pc_bk_downscale(dc_buckets_t *b, int d);

/* promconv_points.c */
plabel_t *pc_name_label(pc_ctx_t *c, const char *family, const char *suffix);
int pc_conv_metric(pc_ctx_t *c, pc_res_t *r, const metric_t *m);

#endif
