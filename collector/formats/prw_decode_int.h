/*
 * prw_decode_int.h - PRIVATE to the prw_decode module (prw_decode.c: helpers, resources,
 * classification and the entry point; prw_decode_load.c: RW1/RW2 -> neutral series form;
 * prw_decode_emit.c: OTLP metrics, points, exemplars and assembly). The neutral series form,
 * the conversion context and the helpers the parts share (prefix prwd_). Other modules use
 * prw_decode.h and must not include this header.
 */
#ifndef MELTP_PRW_DECODE_INT_H
#define MELTP_PRW_DECODE_INT_H

#include "sb.h"
#include "prw_decode.h"

#include "otlp.h"
#include "prw_valid.h"

#include <stddef.h>
#include <stdint.h>

typedef Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest metrics_req_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyvalue_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_pt_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hist_pt_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint exp_pt_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets exp_buckets_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sum_pt_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile quantile_t;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar exemplar_t;

#define PRW_SCOPE_NAME "meltp/prometheusremotewrite"
#define NO_RECORDED_VALUE \
    OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
#define CUMULATIVE \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

/* A native histogram's buckets are expanded to a dense array: this bounds one histogram (schema
 * 8 spans about 2^18 indices over the whole double range, real ones use a few hundred) and
 * the whole request (so a few spans with huge gaps cannot blow the arena up). */
#define PRW_MAX_DENSE_BUCKETS (1u << 18)
#define PRW_DENSE_BUDGET_MIN  (1u << 20)

/* Metric types, numbered as RW1's MetricMetadata.MetricType (RW2 uses the same numbers). */
enum {
    T_NONE = -1,
    T_UNKNOWN = 0,
    T_COUNTER,
    T_GAUGE,
    T_HISTOGRAM,
    T_GAUGEHISTOGRAM,
    T_SUMMARY,
    T_INFO,
    T_STATESET
};
/* OTLP metric kinds we produce. */
enum { K_GAUGE = 0, K_SUM, K_HIST, K_EXPHIST, K_SUMMARY };
/* What a float series contributes to its metric. */
enum { R_NUM = 0, R_BUCKET, R_SUM, R_COUNT, R_QUANTILE };

/* ---- neutral series form ------------------------------------------------------------- */

/* the neutral label and native histogram forms are prw_valid.h's, whose checks read them */
typedef prw_label_t lbl_t;
typedef prw_span_t span_t;
typedef prw_hist_t hist_t;

typedef struct smp {
    double v;
    int64_t ts, start;
} smp_t;

typedef struct exm {
    lbl_t *l;
    size_t nl;
    double v;
    int64_t ts;
} exm_t;

typedef struct res res_t;

typedef struct ser {
    size_t idx; /* position in the request, for messages */
    lbl_t *l;   /* sorted by name, validated */
    size_t nl;
    const char *name, *job, *instance, *le, *quantile;
    int mtype; /* T_NONE when no metadata */
    const char *help;
    smp_t *s;
    size_t ns;
    hist_t *h;
    size_t nh;
    exm_t *x;
    size_t nx;
    res_t *res;
} ser_t;

/* ---- output accumulation ------------------------------------------------------------- */

typedef struct macc {
    const char *name, *help, *ptype;
    int kind;
    void **pts;
    size_t npts, cap;
} macc_t;

struct res {
    const char *job, *instance;
    kv_t **attrs;
    size_t nattrs, cap_attrs;
    macc_t **metrics;
    size_t nmetrics, cap_metrics;
};

typedef struct bucket {
    double le, cum;
} bucket_t;

/* One classic histogram or summary point being reassembled from its part series. */
typedef struct grp {
    macc_t *m;
    void *pt; /* hist_pt_t or sum_pt_t */
    bucket_t *b;
    size_t nb, cap_b;
    quantile_t **q;
    size_t nq, cap_q;
    int has_sum, has_count, stale;
    double sum, count;
} grp_t;

/* Where exemplars of a series go: its latest data point. */
typedef struct sref {
    void *pt;
    int kind;
} sref_t;

typedef struct ment {
    uint64_t h;
    const char *k;
    size_t kl;
    void *v;
} ment_t;

typedef struct map {
    ment_t *e;
    size_t cap, n;
} map_t;

typedef struct meta {
    int type;
    const char *help;
} meta_t;

typedef struct ctx {
    arena_t *a;
    mt_errbuf_t *eb;
    int version;
    map_t meta, res, metrics, groups, hist_bases, sum_bases, srefs;
    res_t **res_list;
    size_t nres, cap_res;
    grp_t **grps;
    size_t ngrps, cap_grps;
    ser_t *ser;
    size_t nser;
    sb_t key;
    size_t dense_budget;
    prw_stats_t st;
} ctx_t;

#define OOM(c) (mt_failf((c)->eb, "out of memory"), MT_ENOMEM)

/* Appends x to an arena array with a capacity field; 0 or -1 (out of memory). A statement
 * expression keeps the array's own pointer type (no void ** aliasing). */
#define PUSH(c, arr, n, cap, x)                                           \
    ({                                                                    \
        void *p_ = (arr);                                                 \
        int r_ = prwd_grow((c)->a, &p_, &(cap), (n) + 1, sizeof(*(arr))); \
        if (r_ == 0) {                                                    \
            (arr) = p_;                                                   \
            (arr)[(n)++] = (x);                                           \
        }                                                                 \
        r_;                                                               \
    })

#define PUSH_IMPLIED(a, arr, n, x)                          \
    ({                                                      \
        void *v_ = prwd_push_implied((a), (arr), (n), (x)); \
        if (v_) {                                           \
            (arr) = v_;                                     \
            (n)++;                                          \
        }                                                   \
        v_ ? 0 : -1;                                        \
    })

typedef struct cls {
    int kind, role;
    const char *name;  /* OTLP metric name */
    const char *ptype; /* Metric.metadata prometheus.type, or NULL */
} cls_t;

/* prw_decode.c */
int prwd_fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int prwd_grow(arena_t *a, void **arr, size_t *cap, size_t need, size_t elsz);
void *prwd_push_implied(arena_t *a, void *arr, size_t n, void *x);
/* Adds a string to a lookup key with its terminating NUL (an unambiguous separator: strings
 * have no NUL). Keys are built in c->key, a core string builder (sb.h). */
void prwd_key_adds(sb_t *b, const char *s);
void **prwd_map_slot(arena_t *a, map_t *m, const void *k, size_t kl, int create);
int prwd_utf8_valid(const char *str);
int prwd_is_stale(double v);
uint64_t prwd_ms2ns(int64_t ms);
uint64_t prwd_to_count(double v);
const char *prwd_series_desc(ctx_t *c, const ser_t *s, char *buf, size_t n);
kv_t *prwd_mk_kv(ctx_t *c, const char *k, const char *v);
int prwd_mk_attrs(ctx_t *c, const ser_t *s, const char *skip, kv_t ***out, size_t *n);

/* prw_decode_load.c */
int prwd_load_v1(ctx_t *c, const uint8_t *pb, size_t len);
int prwd_load_v2(ctx_t *c, const uint8_t *pb, size_t len);

/* prw_decode_emit.c */
macc_t *prwd_get_metric(ctx_t *c, res_t *r, const char *name, int kind, const char *help,
                        const char *ptype);
int prwd_emit_number(ctx_t *c, ser_t *s, const cls_t *k, macc_t *m);
int prwd_emit_part(ctx_t *c, ser_t *s, const cls_t *k, macc_t *m);
int prwd_finish_hist(ctx_t *c, grp_t *g);
void prwd_finish_summary(grp_t *g);
int prwd_emit_native(ctx_t *c, ser_t *s, const hist_t *h, res_t *r);
int prwd_attach_exemplars(ctx_t *c, const ser_t *s);
int prwd_assemble(ctx_t *c, metrics_req_t **out);

#endif
