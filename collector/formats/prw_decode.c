/*
 * prw_decode.c - remote-write 1.0 / 2.0 bodies -> OTLP metrics (see prw_decode.h for the
 * mapping). Both wire versions are first brought to one neutral series form (ser_t: validated
 * labels, samples, native histograms, exemplars, metadata type); the conversion then runs in
 * passes: resources and target_info, classic-family discovery, data points, exemplars, and
 * finally the reassembly of classic histograms and summaries into single points.
 *
 * Everything lives in the caller's arena; the only malloc is the key scratch buffer.
 * Naming is chosen for a lossless round trip through meltp's prometheusremotewrite exporter
 * (promconv.h), which appends `_total` to monotonic cumulative sums, `_bucket/_sum/_count` to
 * histograms and summaries, and unit suffixes from the OTLP unit: so counters lose `_total`,
 * classic families lose their part suffix, gauges keep their name, and the unit stays empty.
 */
#include "prw_decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "prom_rw1.pb-c.h"
#include "prom_rw2.pb-c.h"
#include "prw_valid.h"

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
#define PRW_DENSE_BUDGET_MIN (1u << 20)

/* Metric types, numbered as RW1's MetricMetadata.MetricType (RW2 uses the same numbers). */
enum { T_NONE = -1, T_UNKNOWN = 0, T_COUNTER, T_GAUGE, T_HISTOGRAM, T_GAUGEHISTOGRAM, T_SUMMARY,
       T_INFO, T_STATESET };
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
    size_t idx;            /* position in the request, for messages */
    lbl_t *l;              /* sorted by name, validated */
    size_t nl;
    const char *name, *job, *instance, *le, *quantile;
    int mtype;             /* T_NONE when no metadata */
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
    void *pt;               /* hist_pt_t or sum_pt_t */
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

typedef struct sb {
    char *p;
    size_t n, cap;
    int oom;
} sb_t;

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

static int fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx_t *c, const char *fmt, ...)
{
    char buf[MT_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mt_failf(c->eb, "%s", buf);
    return MT_EINVAL;
}

/* ---- small helpers --------------------------------------------------------------------- */

static int grow(arena_t *a, void **arr, size_t *cap, size_t need, size_t elsz)
{
    if (need <= *cap) {
        return 0;
    }
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need) {
        nc *= 2;
    }
    void *p = arena_alloc(a, nc * elsz);
    if (!p) {
        return -1;
    }
    if (*cap) {
        memcpy(p, *arr, *cap * elsz);
    }
    *arr = p;
    *cap = nc;
    return 0;
}

/* Appends x to an arena array with a capacity field; 0 or -1 (out of memory). A statement
 * expression keeps the array's own pointer type (no void ** aliasing). */
#define PUSH(c, arr, n, cap, x)                                                                \
    ({                                                                                         \
        void *p_ = (arr);                                                                      \
        int r_ = grow((c)->a, &p_, &(cap), (n) + 1, sizeof(*(arr)));                           \
        if (r_ == 0) {                                                                         \
            (arr) = p_;                                                                        \
            (arr)[(n)++] = (x);                                                                \
        }                                                                                      \
        r_;                                                                                    \
    })

/* Appends to a protobuf-c repeated field whose capacity is implied by its count (the next
 * power of two), so no capacity field is needed; amortised O(1). Returns the (possibly moved)
 * array, or NULL when out of memory. */
static void *push_implied(arena_t *a, void *arr, size_t n, void *x)
{
    void **v = arr;
    if (n == 0 || (n & (n - 1)) == 0) {
        v = arena_alloc(a, (n ? 2 * n : 1) * sizeof(void *));
        if (!v) {
            return NULL;
        }
        if (n) {
            memcpy(v, arr, n * sizeof(void *));
        }
    }
    v[n] = x;
    return v;
}

#define PUSH_IMPLIED(a, arr, n, x)                                                             \
    ({                                                                                         \
        void *v_ = push_implied((a), (arr), (n), (x));                                         \
        if (v_) {                                                                              \
            (arr) = v_;                                                                        \
            (n)++;                                                                             \
        }                                                                                      \
        v_ ? 0 : -1;                                                                           \
    })

static void sb_reset(sb_t *b) { b->n = 0; }

static void sb_add(sb_t *b, const void *p, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n) {
            nc *= 2;
        }
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* Adds a string with its terminating NUL (an unambiguous separator: strings have no NUL). */
static void sb_adds(sb_t *b, const char *s) { sb_add(b, s, strlen(s) + 1); }

static uint64_t hash_bytes(const void *p, size_t n)
{
    return mt_hash_bytes(1469598103934665603ULL, p, n);
}

/* Finds key's value slot; with `create` inserts it (value NULL). Returns NULL when absent
 * (without create) or out of memory. */
static void **map_slot(arena_t *a, map_t *m, const void *k, size_t kl, int create)
{
    if (create && (m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        ment_t *ne = arena_calloc(a, nc * sizeof(*ne));
        if (!ne) {
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->e[i].k) {
                size_t j = m->e[i].h & (nc - 1);
                while (ne[j].k) {
                    j = (j + 1) & (nc - 1);
                }
                ne[j] = m->e[i];
            }
        }
        m->e = ne;
        m->cap = nc;
    }
    if (!m->cap) {
        return NULL;
    }
    uint64_t h = hash_bytes(k, kl);
    size_t j = h & (m->cap - 1);
    while (m->e[j].k) {
        if (m->e[j].h == h && m->e[j].kl == kl && memcmp(m->e[j].k, k, kl) == 0) {
            return &m->e[j].v;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (!create) {
        return NULL;
    }
    char *kc = arena_alloc(a, kl ? kl : 1);
    if (!kc) {
        return NULL;
    }
    memcpy(kc, k, kl);
    m->e[j].h = h;
    m->e[j].k = kc;
    m->e[j].kl = kl;
    m->e[j].v = NULL;
    m->n++;
    return &m->e[j].v;
}

static void *map_get(map_t *m, const char *s)
{
    void **v = map_slot(NULL, m, s, strlen(s), 0);
    return v ? *v : NULL;
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        int n;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        s += n + 1;
    }
    return 1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && memcmp(s + n - m, suf, m) == 0;
}

static const char *strip(ctx_t *c, const char *s, const char *suf)
{
    return arena_strndup(c->a, s, strlen(s) - strlen(suf));
}

static int is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits == PRW_STALE_NAN_BITS;
}

static uint64_t ms2ns(int64_t ms)
{
    if (ms <= 0) {
        return 0;
    }
    if (ms > INT64_MAX / 1000000) {
        return UINT64_MAX;
    }
    return (uint64_t)ms * 1000000u;
}

/* A Prometheus float count -> OTLP integer count (negative and NaN -> 0). */
static uint64_t to_count(double v)
{
    if (!(v > 0)) {
        return 0;
    }
    if (v >= 18446744073709551615.0) {
        return UINT64_MAX;
    }
    return (uint64_t)llround(v);
}

static const char *series_desc(ctx_t *c, const ser_t *s, char *buf, size_t n)
{
    MT_UNUSED(c);
    if (s->name && utf8_valid(s->name)) {
        snprintf(buf, n, "timeseries[%zu] %.120s", s->idx, s->name);
    } else {
        snprintf(buf, n, "timeseries[%zu]", s->idx);
    }
    return buf;
}

static kv_t *mk_kv(ctx_t *c, const char *k, const char *v)
{
    kv_t *kv = arena_alloc(c->a, sizeof(*kv));
    anyvalue_t *av = arena_alloc(c->a, sizeof(*av));
    if (!kv || !av) {
        return NULL;
    }
    *kv = (kv_t)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    *av = (anyvalue_t)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)v;
    kv->key = (char *)k;
    kv->value = av;
    return kv;
}

/* The point attributes of a series: every label but __name__, job, instance and `skip`
 * (le / quantile); empty values mean "absent" in Prometheus and are left out. Each point gets
 * its own KeyValues, so processors may change one point without touching another. */
static int mk_attrs(ctx_t *c, const ser_t *s, const char *skip, kv_t ***out, size_t *n)
{
    size_t k = 0;
    kv_t **arr = arena_alloc(c->a, (s->nl ? s->nl : 1) * sizeof(*arr));
    if (!arr) {
        return OOM(c);
    }
    for (size_t i = 0; i < s->nl; i++) {
        const lbl_t *l = &s->l[i];
        if (!l->value[0] || strcmp(l->name, "__name__") == 0 || strcmp(l->name, "job") == 0 ||
            strcmp(l->name, "instance") == 0 || (skip && strcmp(l->name, skip) == 0)) {
            continue;
        }
        if (!(arr[k++] = mk_kv(c, l->name, l->value))) {
            return OOM(c);
        }
    }
    *out = arr;
    *n = k;
    return MT_OK;
}

/* ---- labels ------------------------------------------------------------------------------ */

/* Checks one series' labels (unique, non-empty names, UTF-8; messages number them as sent),
 * sorts them by name when the sender did not (as Prometheus does; counted) and picks out the
 * names the conversion needs. */
static int take_labels(ctx_t *c, ser_t *s)
{
    char d[160];
    for (size_t i = 0; i < s->nl; i++) {
        if (strcmp(s->l[i].name, "__name__") == 0) {
            s->name = s->l[i].value;
        }
    }
    for (size_t pass = 0; pass < 2; pass++) {
        /* pass 0 in the order sent (adjacent duplicates are found in the order the wire check
         * reports them), pass 1 sorted: the duplicates sorting brings together */
        if (pass == 1) {
            if (!prw_valid_sort_labels(s->l, s->nl)) {
                break;
            }
            c->st.unsorted++;
        }
        for (size_t i = 0; i < s->nl; i++) {
            const lbl_t *l = &s->l[i];
            if (pass == 0 && !l->name[0]) {
                return fail(c, "%s: label %zu has an empty name",
                            series_desc(c, s, d, sizeof(d)), i);
            }
            if (pass == 0 && !utf8_valid(l->name)) {
                return fail(c, "%s: label %zu: name is not valid UTF-8",
                            series_desc(c, s, d, sizeof(d)), i);
            }
            if (pass == 0 && !utf8_valid(l->value)) {
                return fail(c, "%s: label \"%.80s\": value is not valid UTF-8",
                            series_desc(c, s, d, sizeof(d)), l->name);
            }
            if (i > 0 && strcmp(s->l[i - 1].name, l->name) == 0) {
                return fail(c, "%s: duplicate label name \"%.80s\"",
                            series_desc(c, s, d, sizeof(d)), l->name);
            }
        }
    }
    for (size_t i = 0; i < s->nl; i++) {
        const lbl_t *l = &s->l[i];
        if (!l->value[0]) {
            continue;
        }
        if (strcmp(l->name, "job") == 0) {
            s->job = l->value;
        } else if (strcmp(l->name, "instance") == 0) {
            s->instance = l->value;
        } else if (strcmp(l->name, "le") == 0) {
            s->le = l->value;
        } else if (strcmp(l->name, "quantile") == 0) {
            s->quantile = l->value;
        }
    }
    if (!s->name || !s->name[0]) {
        return fail(c, "timeseries[%zu]: no __name__ label (or an empty one)", s->idx);
    }
    return MT_OK;
}

static int check_exemplar_labels(ctx_t *c, const ser_t *s, const exm_t *x)
{
    char d[160];
    for (size_t i = 0; i < x->nl; i++) {
        if (!x->l[i].name[0] || !utf8_valid(x->l[i].name) || !utf8_valid(x->l[i].value)) {
            return fail(c, "%s: exemplar label %zu: empty name or invalid UTF-8",
                        series_desc(c, s, d, sizeof(d)), i);
        }
    }
    return MT_OK;
}

/* ---- RW1 / RW2 -> neutral form ------------------------------------------------------------ */

/* The two generated Histogram structs have the same field names; one macro copies either. */
#define COPY_SPANS(c, dst, ndst, src, nsrc)                                                    \
    do {                                                                                       \
        (ndst) = (nsrc);                                                                       \
        (dst) = arena_alloc((c)->a, ((nsrc) ? (nsrc) : 1) * sizeof(span_t));                   \
        if (!(dst)) {                                                                          \
            return OOM(c);                                                                     \
        }                                                                                      \
        for (size_t k_ = 0; k_ < (nsrc); k_++) {                                               \
            (dst)[k_].off = (src)[k_]->offset;                                                 \
            (dst)[k_].len = (src)[k_]->length;                                                 \
        }                                                                                      \
    } while (0)

#define COPY_HIST(c, d, h, FLOATCASE, ZFLOATCASE)                                              \
    do {                                                                                       \
        (d)->is_float = (h)->count_case == (FLOATCASE);                                        \
        (d)->count_i = (d)->is_float ? 0 : (h)->count_int;                                     \
        (d)->count_f = (d)->is_float ? (h)->count_float : 0;                                   \
        (d)->sum = (h)->sum;                                                                   \
        (d)->schema = (h)->schema;                                                             \
        (d)->zero_threshold = (h)->zero_threshold;                                             \
        (d)->zc_float = (h)->zero_count_case == (ZFLOATCASE);                                  \
        (d)->zc_i = (d)->zc_float ? 0 : (h)->zero_count_int;                                   \
        (d)->zc_f = (d)->zc_float ? (h)->zero_count_float : 0;                                 \
        COPY_SPANS(c, (d)->pspans, (d)->n_pspans, (h)->positive_spans, (h)->n_positive_spans); \
        COPY_SPANS(c, (d)->nspans, (d)->n_nspans, (h)->negative_spans, (h)->n_negative_spans); \
        (d)->pdeltas = (h)->positive_deltas;                                                   \
        (d)->n_pdeltas = (h)->n_positive_deltas;                                               \
        (d)->ndeltas = (h)->negative_deltas;                                                   \
        (d)->n_ndeltas = (h)->n_negative_deltas;                                               \
        (d)->pcounts = (h)->positive_counts;                                                   \
        (d)->n_pcounts = (h)->n_positive_counts;                                               \
        (d)->ncounts = (h)->negative_counts;                                                   \
        (d)->n_ncounts = (h)->n_negative_counts;                                               \
        (d)->custom = (h)->custom_values;                                                      \
        (d)->n_custom = (h)->n_custom_values;                                                  \
        (d)->ts = (h)->timestamp;                                                              \
    } while (0)

static int load_v1(ctx_t *c, const uint8_t *pb, size_t len)
{
    Prometheus__WriteRequest *wr = (Prometheus__WriteRequest *)protobuf_c_message_unpack(
        &prometheus__write_request__descriptor, arena_pb_allocator(c->a), len, pb);
    if (!wr) {
        mt_errbuf_t why;
        mt_errbuf_clear(&why);
        otlp_wire_explain(&prometheus__write_request__descriptor, pb, len, &why);
        return fail(c, "invalid remote-write 1.0 protobuf (prometheus.WriteRequest): %s",
                    why.set ? why.msg : "could not decode");
    }
    if (otlp_wire_find_nul(&prometheus__write_request__descriptor, pb, len, c->eb)) {
        return MT_EINVAL; /* protobuf-c would cut the string: "x\0A" and "x\0B" collide */
    }
    for (size_t i = 0; i < wr->n_metadata; i++) {
        Prometheus__MetricMetadata *md = wr->metadata[i];
        if (!utf8_valid(md->metric_family_name) || !utf8_valid(md->help) ||
            !utf8_valid(md->unit)) {
            return fail(c, "metadata[%zu]: invalid UTF-8", i);
        }
        meta_t *m = arena_alloc(c->a, sizeof(*m));
        void **slot = map_slot(c->a, &c->meta, md->metric_family_name,
                               strlen(md->metric_family_name), 1);
        if (!m || !slot) {
            return OOM(c);
        }
        m->type = (int)md->type >= T_UNKNOWN && (int)md->type <= T_STATESET ? (int)md->type
                                                                             : T_UNKNOWN;
        m->help = md->help;
        *slot = m;
    }
    c->nser = wr->n_timeseries;
    c->ser = arena_calloc(c->a, (c->nser ? c->nser : 1) * sizeof(ser_t));
    if (!c->ser) {
        return OOM(c);
    }
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        Prometheus__TimeSeries *ts = wr->timeseries[i];
        ser_t *s = &c->ser[i];
        s->idx = i;
        s->mtype = T_NONE;
        s->nl = ts->n_labels;
        s->l = arena_alloc(c->a, (s->nl ? s->nl : 1) * sizeof(lbl_t));
        s->ns = ts->n_samples;
        s->s = arena_alloc(c->a, (s->ns ? s->ns : 1) * sizeof(smp_t));
        s->nh = ts->n_histograms;
        s->h = arena_calloc(c->a, (s->nh ? s->nh : 1) * sizeof(hist_t));
        s->nx = ts->n_exemplars;
        s->x = arena_calloc(c->a, (s->nx ? s->nx : 1) * sizeof(exm_t));
        if (!s->l || !s->s || !s->h || !s->x) {
            return OOM(c);
        }
        for (size_t j = 0; j < s->nl; j++) {
            s->l[j].name = ts->labels[j]->name;
            s->l[j].value = ts->labels[j]->value;
        }
        int rc = take_labels(c, s);
        if (rc != MT_OK) {
            return rc;
        }
        for (size_t j = 0; j < s->ns; j++) {
            s->s[j].v = ts->samples[j]->value;
            s->s[j].ts = ts->samples[j]->timestamp;
            s->s[j].start = 0;
        }
        for (size_t j = 0; j < s->nh; j++) {
            Prometheus__Histogram *h = ts->histograms[j];
            hist_t *d = &s->h[j];
            COPY_HIST(c, d, h, PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT,
                      PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT);
        }
        for (size_t j = 0; j < s->nx; j++) {
            Prometheus__Exemplar *e = ts->exemplars[j];
            exm_t *x = &s->x[j];
            x->v = e->value;
            x->ts = e->timestamp;
            x->nl = e->n_labels;
            x->l = arena_alloc(c->a, (x->nl ? x->nl : 1) * sizeof(lbl_t));
            if (!x->l) {
                return OOM(c);
            }
            for (size_t k = 0; k < x->nl; k++) {
                x->l[k].name = e->labels[k]->name;
                x->l[k].value = e->labels[k]->value;
            }
            if ((rc = check_exemplar_labels(c, s, x)) != MT_OK) {
                return rc;
            }
        }
    }
    return MT_OK;
}

/* Resolves RW2 `labels_refs` pairs into labels. */
static int refs_to_labels(ctx_t *c, const Io__Prometheus__Write__V2__Request *rq,
                          const uint32_t *refs, size_t n, size_t idx, const char *what,
                          lbl_t **out, size_t *nout)
{
    if (n % 2) {
        return fail(c, "timeseries[%zu]: %s labels_refs has an odd length (%zu)", idx, what, n);
    }
    lbl_t *l = arena_alloc(c->a, (n ? n / 2 : 1) * sizeof(lbl_t));
    if (!l) {
        return OOM(c);
    }
    for (size_t k = 0; k < n; k++) {
        if (refs[k] >= rq->n_symbols) {
            return fail(c, "timeseries[%zu]: %s labels_refs[%zu] = %u is out of range "
                        "(%zu symbols)", idx, what, k, refs[k], rq->n_symbols);
        }
    }
    for (size_t k = 0; k < n / 2; k++) {
        l[k].name = rq->symbols[refs[2 * k]];
        l[k].value = rq->symbols[refs[2 * k + 1]];
    }
    *out = l;
    *nout = n / 2;
    return MT_OK;
}

static int load_v2(ctx_t *c, const uint8_t *pb, size_t len)
{
    Io__Prometheus__Write__V2__Request *rq =
        (Io__Prometheus__Write__V2__Request *)protobuf_c_message_unpack(
            &io__prometheus__write__v2__request__descriptor, arena_pb_allocator(c->a), len, pb);
    if (!rq) {
        mt_errbuf_t why;
        mt_errbuf_clear(&why);
        otlp_wire_explain(&io__prometheus__write__v2__request__descriptor, pb, len, &why);
        return fail(c, "invalid remote-write 2.0 protobuf (io.prometheus.write.v2.Request): %s",
                    why.set ? why.msg : "could not decode");
    }
    if (otlp_wire_find_nul(&io__prometheus__write__v2__request__descriptor, pb, len, c->eb)) {
        return MT_EINVAL;
    }
    if (rq->n_symbols > 0 && rq->symbols[0][0] != 0) {
        return fail(c, "symbols[0] must be the empty string");
    }
    for (size_t i = 0; i < rq->n_symbols; i++) {
        if (!utf8_valid(rq->symbols[i])) {
            return fail(c, "symbols[%zu] is not valid UTF-8", i);
        }
    }
    c->nser = rq->n_timeseries;
    c->ser = arena_calloc(c->a, (c->nser ? c->nser : 1) * sizeof(ser_t));
    if (!c->ser) {
        return OOM(c);
    }
    for (size_t i = 0; i < rq->n_timeseries; i++) {
        Io__Prometheus__Write__V2__TimeSeries *ts = rq->timeseries[i];
        ser_t *s = &c->ser[i];
        s->idx = i;
        s->mtype = T_NONE;
        int rc = refs_to_labels(c, rq, ts->labels_refs, ts->n_labels_refs, i, "series", &s->l,
                                &s->nl);
        if (rc != MT_OK || (rc = take_labels(c, s)) != MT_OK) {
            return rc;
        }
        if (ts->metadata) {
            Io__Prometheus__Write__V2__Metadata *md = ts->metadata;
            if (md->help_ref >= rq->n_symbols || md->unit_ref >= rq->n_symbols) {
                return fail(c, "timeseries[%zu]: metadata help_ref/unit_ref out of range", i);
            }
            int t = (int)md->type;
            if (t > T_UNKNOWN && t <= T_STATESET) {
                s->mtype = t;
            }
            s->help = rq->symbols[md->help_ref];
        }
        s->ns = ts->n_samples;
        s->s = arena_alloc(c->a, (s->ns ? s->ns : 1) * sizeof(smp_t));
        s->nh = ts->n_histograms;
        s->h = arena_calloc(c->a, (s->nh ? s->nh : 1) * sizeof(hist_t));
        s->nx = ts->n_exemplars;
        s->x = arena_calloc(c->a, (s->nx ? s->nx : 1) * sizeof(exm_t));
        if (!s->s || !s->h || !s->x) {
            return OOM(c);
        }
        for (size_t j = 0; j < s->ns; j++) {
            s->s[j].v = ts->samples[j]->value;
            s->s[j].ts = ts->samples[j]->timestamp;
            s->s[j].start = ts->samples[j]->start_timestamp;
        }
        for (size_t j = 0; j < s->nh; j++) {
            Io__Prometheus__Write__V2__Histogram *h = ts->histograms[j];
            hist_t *d = &s->h[j];
            COPY_HIST(c, d, h, IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_FLOAT,
                      IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT);
            d->start = h->start_timestamp;
        }
        for (size_t j = 0; j < s->nx; j++) {
            Io__Prometheus__Write__V2__Exemplar *e = ts->exemplars[j];
            exm_t *x = &s->x[j];
            x->v = e->value;
            x->ts = e->timestamp;
            if ((rc = refs_to_labels(c, rq, e->labels_refs, e->n_labels_refs, i, "exemplar",
                                     &x->l, &x->nl)) != MT_OK ||
                (rc = check_exemplar_labels(c, s, x)) != MT_OK) {
                return rc;
            }
        }
    }
    return MT_OK;
}

/* ---- resources ----------------------------------------------------------------------------- */

static res_t *get_res(ctx_t *c, const char *job, const char *instance)
{
    job = job ? job : "";
    instance = instance ? instance : "";
    sb_reset(&c->key);
    sb_adds(&c->key, job);
    sb_adds(&c->key, instance);
    if (c->key.oom) {
        return NULL;
    }
    void **slot = map_slot(c->a, &c->res, c->key.p, c->key.n, 1);
    if (!slot) {
        return NULL;
    }
    if (*slot) {
        return *slot;
    }
    res_t *r = arena_calloc(c->a, sizeof(*r));
    if (!r || PUSH(c, c->res_list, c->nres, c->cap_res, r) != 0) {
        return NULL;
    }
    r->job = job;
    r->instance = instance;
    kv_t *kv;
    if (job[0]) {
        /* "ns/name" is how the exporter (and Prometheus' OTLP translator) joins
         * service.namespace and service.name; split at the first '/' so it joins back */
        const char *slash = strchr(job, '/');
        if (slash && slash != job && slash[1]) {
            const char *ns = arena_strndup(c->a, job, (size_t)(slash - job));
            if (!ns || !(kv = mk_kv(c, "service.namespace", ns)) ||
                PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0 ||
                !(kv = mk_kv(c, "service.name", slash + 1)) ||
                PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0) {
                return NULL;
            }
        } else if (!(kv = mk_kv(c, "service.name", job)) ||
                   PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0) {
            return NULL;
        }
    }
    if (instance[0] && (!(kv = mk_kv(c, "service.instance.id", instance)) ||
                        PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0)) {
        return NULL;
    }
    *slot = r;
    return r;
}

/* target_info{job, instance, k=v...}: k=v become attributes of that resource. */
static int add_target_info(ctx_t *c, const ser_t *s)
{
    res_t *r = s->res;
    for (size_t i = 0; i < s->nl; i++) {
        const lbl_t *l = &s->l[i];
        if (!l->value[0] || strcmp(l->name, "__name__") == 0 || strcmp(l->name, "job") == 0 ||
            strcmp(l->name, "instance") == 0) {
            continue;
        }
        int dup = 0;
        for (size_t k = 0; k < r->nattrs; k++) {
            dup |= strcmp(r->attrs[k]->key, l->name) == 0;
        }
        if (dup) {
            continue; /* service.* from job/instance win; a repeated target_info adds nothing */
        }
        kv_t *kv = mk_kv(c, l->name, l->value);
        if (!kv || PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0) {
            return OOM(c);
        }
    }
    c->st.samples += s->ns;
    return MT_OK;
}

/* ---- classification ------------------------------------------------------------------------ */

typedef struct cls {
    int kind, role;
    const char *name;   /* OTLP metric name */
    const char *ptype;  /* Metric.metadata prometheus.type, or NULL */
} cls_t;

static const char *const family_suffixes[] = {"_bucket", "_sum", "_count", "_total"};

/* Metadata for a series: RW2 carries it per series; RW1 by family name, which is the series
 * name itself (text format: `foo_total`, gauges) or the name without its part suffix
 * (histograms, summaries, OpenMetrics counters). */
static const meta_t *find_meta(ctx_t *c, const ser_t *s)
{
    if (c->version != 1 || !c->meta.n) {
        return NULL;
    }
    const meta_t *m = map_get(&c->meta, s->name);
    for (size_t i = 0; !m && i < MT_ARRAY_LEN(family_suffixes); i++) {
        if (ends_with(s->name, family_suffixes[i])) {
            const char *fam = strip(c, s->name, family_suffixes[i]);
            m = fam ? map_get(&c->meta, fam) : NULL;
        }
    }
    return m;
}

static int classify(ctx_t *c, ser_t *s, cls_t *o)
{
    const char *n = s->name;
    int t = s->mtype;
    if (t == T_NONE) {
        const meta_t *m = find_meta(c, s);
        if (m) {
            t = m->type;
            if (!s->help) {
                s->help = m->help;
            }
        }
    }
    o->kind = K_GAUGE;
    o->role = R_NUM;
    o->name = n;
    o->ptype = NULL;
    int bucket = ends_with(n, "_bucket") && s->le;
    int is_sum = ends_with(n, "_sum"), is_count = ends_with(n, "_count");
    const char *suf = is_sum ? "_sum" : "_count";
    switch (t) {
    case T_COUNTER:
        o->kind = K_SUM;
        if (ends_with(n, "_total")) {
            o->name = strip(c, n, "_total");
        }
        break;
    case T_HISTOGRAM:
        if (bucket) {
            o->kind = K_HIST, o->role = R_BUCKET, o->name = strip(c, n, "_bucket");
        } else if (is_sum || is_count) {
            o->kind = K_HIST, o->role = is_sum ? R_SUM : R_COUNT, o->name = strip(c, n, suf);
        }
        break;
    case T_SUMMARY:
        if (is_sum || is_count) {
            o->kind = K_SUMMARY, o->role = is_sum ? R_SUM : R_COUNT, o->name = strip(c, n, suf);
        } else if (s->quantile) {
            o->kind = K_SUMMARY, o->role = R_QUANTILE;
        }
        break;
    case T_GAUGE:
    case T_GAUGEHISTOGRAM: /* classic gauge histograms (_gcount, _gsum) stay plain gauges */
        break;
    case T_UNKNOWN:
        o->ptype = "unknown";
        break;
    case T_INFO:
        o->ptype = "info";
        break;
    case T_STATESET:
        o->ptype = "stateset";
        break;
    default: /* no metadata: go by the name and the sibling series in this request */
        if (ends_with(n, "_total")) {
            o->kind = K_SUM, o->name = strip(c, n, "_total");
        } else if (bucket) {
            o->kind = K_HIST, o->role = R_BUCKET, o->name = strip(c, n, "_bucket");
        } else if (s->quantile) {
            o->kind = K_SUMMARY, o->role = R_QUANTILE;
        } else if (is_sum || is_count) {
            const char *base = strip(c, n, suf);
            if (!base) {
                return OOM(c);
            }
            if (map_get(&c->hist_bases, base)) {
                o->kind = K_HIST, o->role = is_sum ? R_SUM : R_COUNT, o->name = base;
            } else if (map_get(&c->sum_bases, base)) {
                o->kind = K_SUMMARY, o->role = is_sum ? R_SUM : R_COUNT, o->name = base;
            }
        }
        break;
    }
    return o->name ? MT_OK : OOM(c);
}

/* ---- metrics and points --------------------------------------------------------------------- */

static macc_t *get_metric(ctx_t *c, res_t *r, const char *name, int kind, const char *help,
                          const char *ptype)
{
    sb_reset(&c->key);
    sb_add(&c->key, &r, sizeof(r));
    sb_add(&c->key, &kind, sizeof(kind));
    sb_adds(&c->key, name);
    if (c->key.oom) {
        return NULL;
    }
    void **slot = map_slot(c->a, &c->metrics, c->key.p, c->key.n, 1);
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
        sb_adds(&c->key, s->l[i].name);
        sb_adds(&c->key, s->l[i].value);
    }
    if (c->key.oom) {
        return OOM(c);
    }
    void **slot = map_slot(c->a, &c->srefs, c->key.p, c->key.n, 1);
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

static int emit_number(ctx_t *c, ser_t *s, const cls_t *k, macc_t *m)
{
    for (size_t i = 0; i < s->ns; i++) {
        const smp_t *sm = &s->s[i];
        num_pt_t *p = arena_alloc(c->a, sizeof(*p));
        if (!p) {
            return OOM(c);
        }
        *p = (num_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
        int rc = mk_attrs(c, s, NULL, &p->attributes, &p->n_attributes);
        if (rc != MT_OK) {
            return rc;
        }
        p->time_unix_nano = ms2ns(sm->ts);
        p->start_time_unix_nano = ms2ns(sm->start);
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        if (is_stale(sm->v)) {
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
        return fail(c, "%s: %s=\"%.40s\" is not a number", series_desc(c, s, buf, sizeof(buf)),
                    lname, v);
    }
    *out = d;
    return MT_OK;
}

/* Adds one part sample (bucket, quantile, _sum, _count) to the point its family has at
 * that timestamp for the same other labels, creating the point on first sight. */
static int emit_part(ctx_t *c, ser_t *s, const cls_t *k, macc_t *m)
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
            return fail(c, "%s: le=\"-Inf\" is not a bucket bound",
                        series_desc(c, s, buf, sizeof(buf)));
        }
    }
    for (size_t i = 0; i < s->ns; i++) {
        const smp_t *sm = &s->s[i];
        sb_reset(&c->key);
        sb_add(&c->key, &m, sizeof(m));
        sb_add(&c->key, &sm->ts, sizeof(sm->ts));
        for (size_t j = 0; j < s->nl; j++) {
            const lbl_t *l = &s->l[j];
            if (!l->value[0] || strcmp(l->name, "__name__") == 0 ||
                (skip && strcmp(l->name, skip) == 0)) {
                continue;
            }
            sb_adds(&c->key, l->name);
            sb_adds(&c->key, l->value);
        }
        if (c->key.oom) {
            return OOM(c);
        }
        void **slot = map_slot(c->a, &c->groups, c->key.p, c->key.n, 1);
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
                rc = mk_attrs(c, s, skip, &p->attributes, &p->n_attributes);
                p->time_unix_nano = ms2ns(sm->ts);
                g->pt = p;
            } else {
                sum_pt_t *p = arena_alloc(c->a, sizeof(*p));
                if (!p) {
                    return OOM(c);
                }
                *p = (sum_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT;
                rc = mk_attrs(c, s, skip, &p->attributes, &p->n_attributes);
                p->time_unix_nano = ms2ns(sm->ts);
                g->pt = p;
            }
            if (rc != MT_OK) {
                return rc;
            }
            m->pts[m->npts - 1] = g->pt;
            *slot = g;
        }
        if (sm->start) {
            uint64_t st = ms2ns(sm->start);
            if (k->kind == K_HIST) {
                ((hist_pt_t *)g->pt)->start_time_unix_nano = st;
            } else {
                ((sum_pt_t *)g->pt)->start_time_unix_nano = st;
            }
        }
        int stale = is_stale(sm->v);
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
static int finish_hist(ctx_t *c, grp_t *g)
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
            p->bucket_counts[i] = to_count(cum) - to_count(prev);
            prev = cum;
        }
        double total = has_inf ? g->b[nfin].cum : g->has_count ? g->count : prev;
        p->bucket_counts[nfin] = total > prev ? to_count(total) - to_count(prev) : 0;
        prev = total > prev ? total : prev;
    }
    p->count = g->has_count ? to_count(g->count) : to_count(prev);
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

static void finish_summary(grp_t *g)
{
    sum_pt_t *p = g->pt;
    if (g->nq > 1) {
        qsort(g->q, g->nq, sizeof(*g->q), cmp_quantile);
    }
    p->quantile_values = g->q;
    p->n_quantile_values = g->nq;
    p->count = g->has_count ? to_count(g->count) : 0;
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
static int expand_buckets(ctx_t *c, const ser_t *s, const char *side, const span_t *sp,
                          size_t nsp, const int64_t *deltas, size_t nd, const double *counts,
                          size_t ncnt, int is_float, int64_t *first, uint64_t **out, size_t *nout)
{
    char d[160];
    uint64_t total = 0;
    int64_t lo = 0, hi = 0, pos = 0;
    int any = 0;
    for (size_t i = 0; i < nsp; i++) {
        if (i > 0 && sp[i].off < 0) {
            return fail(c, "%s: native histogram %s span %zu has a negative offset",
                        series_desc(c, s, d, sizeof(d)), side, i);
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
        return fail(c, "%s: native histogram %s spans cover %llu buckets but %zu %s were sent",
                    series_desc(c, s, d, sizeof(d)), side, (unsigned long long)total, have,
                    is_float ? "counts" : "deltas");
    }
    *first = lo;
    *nout = 0;
    *out = NULL;
    if (!any) {
        return MT_OK;
    }
    uint64_t width = (uint64_t)(hi - lo) + 1;
    if (width > PRW_MAX_DENSE_BUCKETS || width > c->dense_budget) {
        return fail(c, "%s: native histogram %s buckets span %llu indices (limit %u)",
                    series_desc(c, s, d, sizeof(d)), side, (unsigned long long)width,
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
                    return fail(c, "%s: native histogram %s bucket count %g is negative",
                                series_desc(c, s, d, sizeof(d)), side, counts[k]);
                }
                v = to_count(counts[k]);
            } else {
                if (__builtin_add_overflow(run, deltas[k], &run) || run < 0) {
                    return fail(c, "%s: native histogram %s bucket deltas give a negative count",
                                series_desc(c, s, d, sizeof(d)), side);
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
    return h->is_float ? to_count(h->count_f) : h->count_i;
}

/* schema -53: custom bucket bounds (NHCB) -> an explicit-bucket OTLP histogram point. */
static int emit_nhcb(ctx_t *c, ser_t *s, const hist_t *h, macc_t *m)
{
    char d[160];
    for (size_t i = 0; i < h->n_custom; i++) {
        if (!isfinite(h->custom[i]) || (i > 0 && !(h->custom[i] > h->custom[i - 1]))) {
            return fail(c, "%s: custom bucket bounds must be finite and strictly increasing",
                        series_desc(c, s, d, sizeof(d)));
        }
    }
    if (h->n_nspans) {
        return fail(c, "%s: custom-bucket histogram with negative buckets",
                    series_desc(c, s, d, sizeof(d)));
    }
    hist_pt_t *p = arena_alloc(c->a, sizeof(*p));
    if (!p) {
        return OOM(c);
    }
    *p = (hist_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    int rc = mk_attrs(c, s, NULL, &p->attributes, &p->n_attributes);
    if (rc != MT_OK) {
        return rc;
    }
    p->time_unix_nano = ms2ns(h->ts);
    p->start_time_unix_nano = ms2ns(h->start);
    if (is_stale(h->sum)) {
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
            return fail(c, "%s: custom-bucket index outside 0..%zu",
                        series_desc(c, s, d, sizeof(d)), h->n_custom);
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
    int rc = positive
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
        return fail(c, "%s: native histogram bucket index out of range",
                    series_desc(c, s, d, sizeof(d)));
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

static int emit_native(ctx_t *c, ser_t *s, const hist_t *h, res_t *r)
{
    char d[160], why[160];
    /* OTLP requires count = zero count + bucket counts; a point that breaks it is refused */
    if (prw_valid_hist_count(h, why, sizeof(why)) != 0) {
        return fail(c, "%s: native histogram %s", series_desc(c, s, d, sizeof(d)), why);
    }
    if (h->schema == -53) {
        macc_t *m = get_metric(c, r, s->name, K_HIST, s->help, NULL);
        if (!m) {
            return OOM(c);
        }
        return emit_nhcb(c, s, h, m);
    }
    if (h->schema < -4 || h->schema > 8) {
        return fail(c, "%s: native histogram schema %d is not supported (-4..8 or -53)",
                    series_desc(c, s, d, sizeof(d)), (int)h->schema);
    }
    macc_t *m = get_metric(c, r, s->name, K_EXPHIST, s->help, NULL);
    exp_pt_t *p = arena_alloc(c->a, sizeof(*p));
    if (!m || !p) {
        return OOM(c);
    }
    *p = (exp_pt_t)OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
    int rc = mk_attrs(c, s, NULL, &p->attributes, &p->n_attributes);
    if (rc != MT_OK) {
        return rc;
    }
    p->time_unix_nano = ms2ns(h->ts);
    p->start_time_unix_nano = ms2ns(h->start);
    p->scale = h->schema;
    p->zero_threshold = h->zero_threshold;
    if (is_stale(h->sum)) {
        p->flags = NO_RECORDED_VALUE;
    } else {
        if ((rc = exp_side(c, s, h, 1, &p->positive)) != MT_OK ||
            (rc = exp_side(c, s, h, 0, &p->negative)) != MT_OK) {
            return rc;
        }
        p->count = hist_count(h);
        p->zero_count = h->zc_float ? to_count(h->zc_f) : h->zc_i;
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
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
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

static int attach_exemplars(ctx_t *c, const ser_t *s)
{
    sb_reset(&c->key);
    for (size_t i = 0; i < s->nl; i++) {
        sb_adds(&c->key, s->l[i].name);
        sb_adds(&c->key, s->l[i].value);
    }
    if (c->key.oom) {
        return OOM(c);
    }
    /* RW senders put exemplars in their own TimeSeries entries; they belong to the latest
     * point of the series with the same labels. Without one (or on a summary) they cannot be
     * written: RW 2.0 must not then answer 2xx, so it refuses; RW 1.0 (no written counts, and
     * Prometheus 1.0 senders queue exemplars apart from their samples) drops them uncounted. */
    void **slot = map_slot(c->a, &c->srefs, c->key.p, c->key.n, 0);
    const sref_t *r = slot ? *slot : NULL;
    if ((!r || r->kind == K_SUMMARY) && c->version == 2) {
        char d[160];
        return fail(c, "%s: %zu exemplar(s) %s; they cannot be written", series_desc(c, s, d,
                    sizeof(d)), s->nx, r ? "on a summary (OTLP summaries carry none)"
                                         : "but no sample or histogram of this series");
    }
    if (!r || r->kind == K_SUMMARY) {
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
        e->time_unix_nano = ms2ns(x->ts);
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
            if (!(attrs[e->n_filtered_attributes++] = mk_kv(c, l->name, l->value))) {
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
        kv_t *kv = mk_kv(c, "prometheus.type", m->ptype);
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
        Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *g =
            arena_alloc(c->a, sizeof(*g));
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

static int assemble(ctx_t *c, metrics_req_t **out)
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
        Opentelemetry__Proto__Common__V1__InstrumentationScope *sc =
            arena_alloc(c->a, sizeof(*sc));
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

static int convert(ctx_t *c, metrics_req_t **out)
{
    int rc;
    /* 1. resources, target_info, and which classic families have buckets / quantiles here */
    for (size_t i = 0; i < c->nser; i++) {
        ser_t *s = &c->ser[i];
        if (!(s->res = get_res(c, s->job, s->instance))) {
            return OOM(c);
        }
        if (strcmp(s->name, "target_info") == 0) {
            if ((rc = add_target_info(c, s)) != MT_OK) {
                return rc;
            }
            continue;
        }
        if (s->le && ends_with(s->name, "_bucket")) {
            const char *base = strip(c, s->name, "_bucket");
            void **slot = base ? map_slot(c->a, &c->hist_bases, base, strlen(base), 1) : NULL;
            if (!slot) {
                return OOM(c);
            }
            *slot = (void *)1;
        } else if (s->quantile) {
            void **slot = map_slot(c->a, &c->sum_bases, s->name, strlen(s->name), 1);
            if (!slot) {
                return OOM(c);
            }
            *slot = (void *)1;
        }
    }
    /* 2. data points */
    for (size_t i = 0; i < c->nser; i++) {
        ser_t *s = &c->ser[i];
        if (strcmp(s->name, "target_info") == 0) {
            continue;
        }
        if (s->ns) {
            cls_t k;
            if ((rc = classify(c, s, &k)) != MT_OK) {
                return rc;
            }
            macc_t *m = get_metric(c, s->res, k.name, k.kind, s->help, k.ptype);
            if (!m) {
                return OOM(c);
            }
            rc = k.role == R_NUM ? emit_number(c, s, &k, m) : emit_part(c, s, &k, m);
            if (rc != MT_OK) {
                return rc;
            }
        }
        for (size_t j = 0; j < s->nh; j++) {
            if ((rc = emit_native(c, s, &s->h[j], s->res)) != MT_OK) {
                return rc;
            }
            c->st.histograms++;
        }
    }
    /* 3. exemplars, now that every series has its points */
    for (size_t i = 0; i < c->nser; i++) {
        if (c->ser[i].nx && (rc = attach_exemplars(c, &c->ser[i])) != MT_OK) {
            return rc;
        }
    }
    /* 4. classic histograms and summaries: from cumulative parts to points */
    for (size_t i = 0; i < c->ngrps; i++) {
        grp_t *g = c->grps[i];
        if (g->m->kind == K_HIST) {
            if ((rc = finish_hist(c, g)) != MT_OK) {
                return rc;
            }
        } else {
            finish_summary(g);
        }
    }
    return assemble(c, out);
}

int prw_to_otlp(int version, const uint8_t *pb, size_t len, arena_t *a, metrics_req_t **out,
                prw_stats_t *stats, mt_errbuf_t *eb)
{
    ctx_t c;
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.eb = eb;
    c.version = version;
    c.dense_budget = PRW_DENSE_BUDGET_MIN + 8 * len;
    *out = NULL;
    int rc;
    if (version == 1) {
        rc = load_v1(&c, pb ? pb : (const uint8_t *)"", len);
    } else if (version == 2) {
        rc = load_v2(&c, pb ? pb : (const uint8_t *)"", len);
    } else {
        mt_failf(eb, "unsupported remote-write version %d", version);
        return MT_EUNSUPPORTED;
    }
    c.st.series = c.nser;
    if (rc == MT_OK) {
        rc = convert(&c, out);
    }
    if (rc == MT_OK && c.key.oom) {
        rc = OOM(&c);
    }
    free(c.key.p);
    if (stats) {
        *stats = c.st;
    }
    if (rc != MT_OK) {
        *out = NULL;
    }
    return rc;
}
