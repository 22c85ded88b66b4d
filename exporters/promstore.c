/*
 * promstore.c - see promstore.h. Two chained hash tables under one mutex: series keyed by
 * their canonical label set ("name\0value\0" pairs, __name__ first, the rest sorted by name) and
 * families keyed by name. Each series is one malloc holding its key, and its label pointers
 * point into that key, so insert and remove are one allocation each.
 *
 * Families are resolved at render time, not at update time: a series' family depends on the
 * metadata seen (h_bucket belongs to histogram h, x_total to counter x_total or x), and
 * metadata may arrive, change or expire independently of the series. Rendering holds the lock
 * while it sorts and writes: O(N log N) for N series; measured 0.35 s and 22 MB of text for
 * 200k series with 5 labels each (the default bound; updating them all took 0.15 s), which
 * blocks updates for that long once per scrape. Copying out first would double peak memory;
 * with scrapes seconds apart the simple way is the better trade. If it ever matters, keep the
 * rendered lines per series and sort only on insert.
 */
#include "promstore.h"
#include "mt.h"
#include "sb.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_UNKNOWN        PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN
#define T_COUNTER        PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER
#define T_GAUGE          PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE
#define T_HISTOGRAM      PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM
#define T_GAUGEHISTOGRAM PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM
#define T_SUMMARY        PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY
#define T_INFO           PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO
#define T_STATESET       PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET

/* Label sets longer than this are built in a heap scratch buffer instead of on the stack. */
#define PS_STACK_LABELS 64
#define PS_STACK_KEY    4096

/* Common head of both node kinds so one table implementation serves both. */
typedef struct hnode {
    struct hnode *next;
    uint64_t hash;
    int64_t updated_ms;
} hnode_t;

typedef struct htab {
    hnode_t **b;
    size_t nb; /* power of two, or 0 before the first insert */
    size_t n;
} htab_t;

typedef struct pseries {
    hnode_t h;
    double value;
    int64_t ts_ms;
    const char *name;   /* __name__, points into key */
    size_t nlabels;     /* without __name__ */
    const char **lname; /* nlabels entries, pointing into key */
    const char **lval;
    size_t keylen;
    char *key; /* "n\0v\0" pairs: __name__, then the others sorted by name */
} pseries_t;

typedef struct pmeta {
    hnode_t h;
    int type;
    char *name, *help, *unit; /* all in the same allocation */
} pmeta_t;

struct promstore {
    pthread_mutex_t mu;
    htab_t series, meta;
    size_t max_series;
    int64_t expiry_ms;
    _Atomic size_t nseries; /* mirror of series.n for lock-free reads */
};

/* ---- hashing and tables ------------------------------------------------------------- */

static uint64_t fnv1a(const void *p, size_t n)
{
    return mt_hash_bytes(MT_FNV_BASIS, p, n);
}

/* Doubles the bucket array once the load factor passes 1. Failure to grow is harmless (the
 * chains just get longer), so it is not reported. */
static void htab_maybe_grow(htab_t *t)
{
    if (t->nb && t->n < t->nb) {
        return;
    }
    size_t nb = t->nb ? t->nb * 2 : 64;
    hnode_t **b = calloc(nb, sizeof(*b));
    if (!b) {
        return;
    }
    for (size_t i = 0; i < t->nb; i++) {
        hnode_t *n = t->b[i];
        while (n) {
            hnode_t *next = n->next;
            size_t k = n->hash & (nb - 1);
            n->next = b[k];
            b[k] = n;
            n = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

static int htab_insert(htab_t *t, hnode_t *n)
{
    htab_maybe_grow(t);
    if (!t->nb) {
        return -1;
    }
    size_t k = n->hash & (t->nb - 1);
    n->next = t->b[k];
    t->b[k] = n;
    t->n++;
    return 0;
}

static void htab_remove(htab_t *t, hnode_t *n)
{
    hnode_t **pp = &t->b[n->hash & (t->nb - 1)];
    while (*pp && *pp != n) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = n->next;
        t->n--;
    }
}

/* Frees every node not updated since `cutoff` (all nodes when cutoff is INT64_MAX). */
static size_t htab_sweep(htab_t *t, int64_t cutoff)
{
    size_t gone = 0;
    for (size_t i = 0; i < t->nb; i++) {
        hnode_t **pp = &t->b[i];
        while (*pp) {
            hnode_t *n = *pp;
            if (n->updated_ms < cutoff) {
                *pp = n->next;
                free(n);
                t->n--;
                gone++;
            } else {
                pp = &n->next;
            }
        }
    }
    return gone;
}

static pseries_t *series_find(promstore_t *s, uint64_t h, const char *key, size_t keylen)
{
    if (!s->series.nb) {
        return NULL;
    }
    for (hnode_t *n = s->series.b[h & (s->series.nb - 1)]; n; n = n->next) {
        pseries_t *ps = (pseries_t *)n;
        if (n->hash == h && ps->keylen == keylen && memcmp(ps->key, key, keylen) == 0) {
            return ps;
        }
    }
    return NULL;
}

static pmeta_t *meta_find(const promstore_t *s, const char *name, size_t len)
{
    if (!s->meta.nb) {
        return NULL;
    }
    uint64_t h = fnv1a(name, len);
    for (hnode_t *n = s->meta.b[h & (s->meta.nb - 1)]; n; n = n->next) {
        pmeta_t *m = (pmeta_t *)n;
        if (n->hash == h && strncmp(m->name, name, len) == 0 && m->name[len] == 0) {
            return m;
        }
    }
    return NULL;
}

/* ---- create / destroy / expire ------------------------------------------------------ */

promstore_t *promstore_create(size_t max_series, int64_t expiry_ms)
{
    promstore_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->max_series = max_series;
    s->expiry_ms = expiry_ms;
    return s;
}

void promstore_destroy(promstore_t *s)
{
    if (!s) {
        return;
    }
    htab_sweep(&s->series, INT64_MAX);
    htab_sweep(&s->meta, INT64_MAX);
    free(s->series.b);
    free(s->meta.b);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static size_t expire_locked(promstore_t *s, int64_t now_ms)
{
    if (s->expiry_ms <= 0) {
        return 0;
    }
    /* "not updated for more than expiry_ms": updated_ms < now - expiry */
    int64_t cutoff = now_ms - s->expiry_ms;
    size_t gone = htab_sweep(&s->series, cutoff);
    htab_sweep(&s->meta, cutoff);
    atomic_store_explicit(&s->nseries, s->series.n, memory_order_relaxed);
    return gone;
}

size_t promstore_expire(promstore_t *s, int64_t now_ms, promstore_stats_t *st)
{
    pthread_mutex_lock(&s->mu);
    size_t gone = expire_locked(s, now_ms);
    pthread_mutex_unlock(&s->mu);
    if (st) {
        st->expired += gone;
    }
    return gone;
}

size_t promstore_size(promstore_t *s)
{
    return atomic_load_explicit(&s->nseries, memory_order_relaxed);
}

/* ---- update ------------------------------------------------------------------------- */

/* Same bit test as promconv_is_stale (Prometheus' value.IsStaleNaN); kept here so the store
 * links and is tested without the translator. */
static int is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b == 0x7ff0000000000002ull;
}

static int label_cmp(const void *a, const void *b)
{
    const Prometheus__Label *x = *(Prometheus__Label *const *)a;
    const Prometheus__Label *y = *(Prometheus__Label *const *)b;
    return strcmp(x->name, y->name);
}

static pseries_t *series_new(const char *key, size_t keylen, size_t nlabels, uint64_t h)
{
    /* labels + __name__ = nlabels + 1 pairs in the key */
    size_t arr = 2 * nlabels * sizeof(const char *);
    pseries_t *ps = malloc(sizeof(*ps) + arr + keylen);
    if (!ps) {
        return NULL;
    }
    memset(ps, 0, sizeof(*ps));
    ps->h.hash = h;
    ps->lname = (const char **)(ps + 1);
    ps->lval = ps->lname + nlabels;
    ps->key = (char *)(ps->lval + nlabels);
    memcpy(ps->key, key, keylen);
    ps->keylen = keylen;
    ps->nlabels = nlabels;
    size_t k = 0;
    for (const char *p = ps->key; p < ps->key + keylen;) {
        const char *n = p;
        const char *v = n + strlen(n) + 1;
        p = v + strlen(v) + 1;
        if (strcmp(n, "__name__") == 0) {
            ps->name = v;
        } else {
            ps->lname[k] = n;
            ps->lval[k] = v;
            k++;
        }
    }
    return ps;
}

/* Applies one series. Returns MT_OK or MT_ENOMEM. */
static int update_one(promstore_t *s, const Prometheus__TimeSeries *ts, int64_t now_ms,
                      promstore_stats_t *st)
{
    if (ts->n_samples == 0) {
        if (ts->n_histograms > 0) {
            st->dropped_native++;
        }
        return MT_OK;
    }
    /* newest sample of the series; equal timestamps: the later one */
    const Prometheus__Sample *smp = ts->samples[0];
    for (size_t i = 1; i < ts->n_samples; i++) {
        if (ts->samples[i]->timestamp >= smp->timestamp) {
            smp = ts->samples[i];
        }
    }

    Prometheus__Label *lstack[PS_STACK_LABELS];
    Prometheus__Label **ls = lstack;
    if (ts->n_labels > PS_STACK_LABELS) {
        ls = malloc(ts->n_labels * sizeof(*ls));
        if (!ls) {
            return MT_ENOMEM;
        }
    }
    size_t nl = 0, keylen = 0;
    int sorted = 1, has_name = 0;
    for (size_t i = 0; i < ts->n_labels; i++) {
        Prometheus__Label *l = ts->labels[i];
        if (!l->name || !*l->name || !l->value || !*l->value) {
            continue; /* an empty value is the same as no label */
        }
        if (nl && strcmp(ls[nl - 1]->name, l->name) > 0) {
            sorted = 0;
        }
        has_name |= strcmp(l->name, "__name__") == 0;
        keylen += strlen(l->name) + strlen(l->value) + 2;
        ls[nl++] = l;
    }
    int rc = MT_OK;
    char kstack[PS_STACK_KEY];
    char *key = keylen <= sizeof(kstack) ? kstack : malloc(keylen);
    if (!has_name) {
        st->dropped_invalid++;
        goto out;
    }
    if (!key) {
        rc = MT_ENOMEM;
        goto out;
    }
    if (!sorted) {
        qsort(ls, nl, sizeof(*ls), label_cmp);
    }
    /* __name__ first, then the others in name order: so that within one family (same
     * __name__) comparing keys orders series exactly by their other labels */
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nl; i++) {
            if ((strcmp(ls[i]->name, "__name__") == 0) != (pass == 0)) {
                continue;
            }
            size_t a = strlen(ls[i]->name) + 1, b = strlen(ls[i]->value) + 1;
            memcpy(key + off, ls[i]->name, a);
            memcpy(key + off + a, ls[i]->value, b);
            off += a + b;
        }
    }
    uint64_t h = fnv1a(key, keylen);
    int stale = is_stale(smp->value);
    pseries_t *ps = series_find(s, h, key, keylen);
    if (ps) {
        if (smp->timestamp < ps->ts_ms) {
            st->dropped_old++;
        } else if (stale) {
            htab_remove(&s->series, &ps->h);
            free(ps);
            st->stale_removed++;
        } else {
            ps->value = smp->value;
            ps->ts_ms = smp->timestamp;
            ps->h.updated_ms = now_ms;
            st->updated++;
        }
    } else if (!stale) {
        if (s->series.n >= s->max_series) {
            st->dropped_max_series++;
        } else if (!(ps = series_new(key, keylen, nl - 1, h))) {
            rc = MT_ENOMEM;
        } else {
            ps->value = smp->value;
            ps->ts_ms = smp->timestamp;
            ps->h.updated_ms = now_ms;
            if (htab_insert(&s->series, &ps->h) != 0) {
                free(ps);
                rc = MT_ENOMEM;
            } else {
                st->added++;
            }
        }
    }
out:
    if (key != kstack) {
        free(key);
    }
    if (ls != lstack) {
        free(ls);
    }
    return rc;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int update_meta(promstore_t *s, const Prometheus__MetricMetadata *md, int64_t now_ms)
{
    const char *name = nz(md->metric_family_name);
    size_t nl = strlen(name);
    if (!nl) {
        return MT_OK;
    }
    const char *help = nz(md->help), *unit = nz(md->unit);
    pmeta_t *m = meta_find(s, name, nl);
    if (m && m->type == (int)md->type && strcmp(m->help, help) == 0 && strcmp(m->unit, unit) == 0) {
        m->h.updated_ms = now_ms;
        return MT_OK;
    }
    if (!m && s->meta.n >= s->max_series) {
        return MT_OK; /* its series render as untyped */
    }
    size_t hl = strlen(help), ul = strlen(unit);
    pmeta_t *nm = malloc(sizeof(*nm) + nl + hl + ul + 3);
    if (!nm) {
        return MT_ENOMEM;
    }
    memset(nm, 0, sizeof(*nm));
    nm->name = (char *)(nm + 1);
    nm->help = nm->name + nl + 1;
    nm->unit = nm->help + hl + 1;
    memcpy(nm->name, name, nl + 1);
    memcpy(nm->help, help, hl + 1);
    memcpy(nm->unit, unit, ul + 1);
    nm->type = (int)md->type;
    nm->h.hash = fnv1a(name, nl);
    nm->h.updated_ms = now_ms;
    if (htab_insert(&s->meta, &nm->h) != 0) {
        free(nm);
        return MT_ENOMEM;
    }
    if (m) {
        htab_remove(&s->meta, &m->h);
        free(m);
    }
    return MT_OK;
}

int promstore_update(promstore_t *s, Prometheus__TimeSeries *const *series, size_t nseries,
                     Prometheus__MetricMetadata *const *meta, size_t nmeta, int64_t now_ms,
                     promstore_stats_t *st)
{
    promstore_stats_t local;
    if (!st) {
        memset(&local, 0, sizeof(local));
        st = &local;
    }
    int rc = MT_OK;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < nmeta; i++) {
        if (update_meta(s, meta[i], now_ms) != MT_OK) {
            rc = MT_ENOMEM;
        }
    }
    for (size_t i = 0; i < nseries; i++) {
        if (update_one(s, series[i], now_ms, st) != MT_OK) {
            rc = MT_ENOMEM;
        }
    }
    atomic_store_explicit(&s->nseries, s->series.n, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- value formatting --------------------------------------------------------------- */

int promstore_format_value(double v, int openmetrics, char *buf, size_t buflen)
{
    const char *fixed = NULL;
    if (isnan(v)) {
        fixed = "NaN";
    } else if (isinf(v)) {
        fixed = v > 0 ? "+Inf" : "-Inf";
    } else if (v == 0) {
        fixed = openmetrics ? "0.0" : "0"; /* -0 too, as client_golang */
    }
    if (fixed) {
        int n = snprintf(buf, buflen, "%s", fixed);
        return n < 0 || (size_t)n >= buflen ? -1 : n;
    }
    /* shortest digits that read back as v (what Go's shortest formatting produces) */
    char e[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) {
            break;
        }
    }
    /* e is "[-]d[.ddd]e[+-]XX": split into sign, digits and decimal exponent */
    char digits[24];
    int nd = 0, neg = 0;
    const char *p = e;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; *p && *p != 'e'; p++) {
        if (*p != '.' && nd < (int)sizeof(digits) - 1) {
            digits[nd++] = *p;
        }
    }
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    char out[64];
    size_t o = 0;
    if (neg) {
        out[o++] = '-';
    }
    if (exp < -4 || exp >= 6) {
        /* %e: Go's 'g' with the shortest precision switches at exponent 6 */
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) {
                out[o++] = digits[i];
            }
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%02d", exp < 0 ? '-' : '+',
                              exp < 0 ? -exp : exp);
    } else {
        int dp = exp + 1; /* digits before the decimal point */
        if (dp <= 0) {
            out[o++] = '0';
        } else {
            for (int i = 0; i < dp; i++) {
                out[o++] = i < nd ? digits[i] : '0';
            }
        }
        if (nd > dp) {
            out[o++] = '.';
            for (int i = dp; i < nd; i++) {
                out[o++] = i < 0 ? '0' : digits[i];
            }
        }
        out[o] = 0;
        if (openmetrics && nd <= dp) {
            out[o++] = '.';
            out[o++] = '0';
        }
    }
    out[o] = 0;
    if (o >= buflen) {
        return -1;
    }
    memcpy(buf, out, o + 1);
    return (int)o;
}

/* ---- rendering ---------------------------------------------------------------------- */

/* Escapes \ and newline, and " when `quote` (label values, OpenMetrics HELP). */
static void sb_escaped(sb_t *b, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\'             ? "\\\\"
                          : *s == '\n'           ? "\\n"
                          : (*s == '"' && quote) ? "\\\""
                                                 : NULL;
        if (rep) {
            sb_put(b, run, (size_t)(s - run));
            sb_put(b, rep, 2);
            run = s + 1;
        }
    }
    sb_put(b, run, (size_t)(s - run));
}

/* One series as rendered: its family and its place in it. */
typedef struct rentry {
    const pseries_t *s;
    const char *fam; /* family name as written in text 0.0.4 (not NUL-terminated) */
    size_t famlen;
    int type;            /* metadata type, T_UNKNOWN when none */
    const pmeta_t *meta; /* HELP/UNIT source, may be NULL */
    const char *skip;    /* label left out when ordering within the family (le, quantile) */
    int role;            /* 0 bucket / quantile / plain sample, 1 _sum, 2 _count */
    double bound;        /* le or quantile value */
} rentry_t;

static int ends_with(const char *s, size_t len, const char *suf, size_t *base)
{
    size_t n = strlen(suf);
    if (len > n && memcmp(s + len - n, suf, n) == 0) {
        *base = len - n;
        return 1;
    }
    return 0;
}

static double label_bound(const pseries_t *ps, const char *name)
{
    for (size_t i = 0; i < ps->nlabels; i++) {
        if (strcmp(ps->lname[i], name) == 0) {
            char *end;
            double v = strtod(ps->lval[i], &end);
            return end != ps->lval[i] && !*end ? v : NAN;
        }
    }
    return NAN;
}

/* Finds the family of a series. Returns 0 when the series cannot be written (a sample named
 * exactly like a histogram family has no place in it). */
static int classify(const promstore_t *s, const pseries_t *ps, rentry_t *e)
{
    const char *n = ps->name;
    size_t len = strlen(n), base;
    memset(e, 0, sizeof(*e));
    e->s = ps;
    e->fam = n;
    e->famlen = len;
    const pmeta_t *m = meta_find(s, n, len);
    if (m) {
        switch (m->type) {
        case T_COUNTER:
        case T_GAUGE:
        case T_INFO:
        case T_STATESET:
            e->type = m->type;
            e->meta = m;
            return 1;
        case T_SUMMARY:
            e->type = T_SUMMARY;
            e->meta = m;
            e->skip = "quantile";
            e->bound = label_bound(ps, "quantile");
            return 1;
        case T_HISTOGRAM:
            return 0;
        default:
            break; /* unknown, gauge histogram: an untyped family of its own (below) */
        }
    }
    static const char *const sufs[] = {"_bucket", "_sum", "_count"};
    for (int r = 0; r < 3; r++) {
        if (!ends_with(n, len, sufs[r], &base)) {
            continue;
        }
        const pmeta_t *bm = meta_find(s, n, base);
        if (bm && (bm->type == T_HISTOGRAM || (bm->type == T_SUMMARY && r > 0))) {
            e->fam = n;
            e->famlen = base;
            e->type = bm->type;
            e->meta = bm;
            e->role = r;
            e->skip = bm->type == T_HISTOGRAM ? "le" : "quantile";
            e->bound = r == 0 ? label_bound(ps, "le") : 0;
            return 1;
        }
    }
    /* counter metadata may name the family without _total (OpenMetrics style), target_info's
     * without _info */
    if (!m && ends_with(n, len, "_total", &base)) {
        const pmeta_t *bm = meta_find(s, n, base);
        if (bm && bm->type == T_COUNTER) {
            e->type = T_COUNTER;
            e->meta = bm;
            return 1;
        }
    }
    if (!m && ends_with(n, len, "_info", &base)) {
        const pmeta_t *bm = meta_find(s, n, base);
        if (bm && bm->type == T_INFO) {
            e->type = T_INFO;
            e->meta = bm;
            return 1;
        }
    }
    e->type = T_UNKNOWN;
    e->meta = m; /* its HELP, if any */
    return 1;
}

static int cmp_str(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int rentry_cmp(const void *pa, const void *pb)
{
    const rentry_t *a = pa, *b = pb;
    int c = cmp_str(a->fam, a->famlen, b->fam, b->famlen);
    if (c) {
        return c;
    }
    const pseries_t *x = a->s, *y = b->s;
    if (!a->skip && !b->skip) {
        /* one sample name per family: the keys (the same __name__ pair, then "n\0v\0" pairs
         * in name order) compare exactly as the label lists do, and memcmp is faster */
        c = memcmp(x->key, y->key, x->keylen < y->keylen ? x->keylen : y->keylen);
        return c ? c : (x->keylen > y->keylen) - (x->keylen < y->keylen);
    }
    /* labels other than le / quantile, in name order */
    size_t i = 0, j = 0;
    for (;;) {
        while (i < x->nlabels && a->skip && strcmp(x->lname[i], a->skip) == 0) {
            i++;
        }
        while (j < y->nlabels && b->skip && strcmp(y->lname[j], b->skip) == 0) {
            j++;
        }
        if (i == x->nlabels || j == y->nlabels) {
            if (i != x->nlabels || j != y->nlabels) {
                return i == x->nlabels ? -1 : 1;
            }
            break;
        }
        if ((c = strcmp(x->lname[i], y->lname[j])) || (c = strcmp(x->lval[i], y->lval[j]))) {
            return c;
        }
        i++;
        j++;
    }
    if (a->role != b->role) {
        return a->role - b->role;
    }
    if (isnan(a->bound) || isnan(b->bound)) {
        if (isnan(a->bound) != isnan(b->bound)) {
            return isnan(a->bound) ? 1 : -1;
        }
    } else if (a->bound != b->bound) {
        return a->bound < b->bound ? -1 : 1;
    }
    return strcmp(x->name, y->name); /* only ties left: same family, same labels */
}

static const char *text_type(int t)
{
    switch (t) {
    case T_COUNTER:
        return "counter";
    case T_GAUGE:
        return "gauge";
    case T_HISTOGRAM:
        return "histogram";
    case T_SUMMARY:
        return "summary";
    case T_INFO: /* no info or stateset in 0.0.4: their samples are gauges */
    case T_STATESET:
        return "gauge";
    default:
        return "untyped";
    }
}

/* Writes # HELP / # TYPE / # UNIT for the family of `e`. */
static void write_header(sb_t *b, const rentry_t *e, promstore_fmt_t fmt)
{
    const char *help = e->meta && *e->meta->help ? e->meta->help : NULL;
    size_t fl = e->famlen, base;
    const char *type;
    if (fmt == PROMSTORE_TEXT) {
        type = text_type(e->type);
    } else {
        switch (e->type) {
        case T_COUNTER:
            /* OpenMetrics counter x has samples x_total; one whose name lacks the suffix
             * (add_metric_suffixes: false) stays an unknown family of the same name */
            if (ends_with(e->fam, e->famlen, "_total", &base)) {
                fl = base;
                type = "counter";
            } else {
                type = "unknown";
            }
            break;
        case T_INFO:
            if (ends_with(e->fam, e->famlen, "_info", &base)) {
                fl = base;
                type = "info";
            } else {
                type = "gauge";
            }
            break;
        case T_GAUGE:
        case T_STATESET: /* a stateset needs a label named like the family: keep gauges */
            type = "gauge";
            break;
        case T_HISTOGRAM:
            type = "histogram";
            break;
        case T_SUMMARY:
            type = "summary";
            break;
        default:
            type = "unknown";
            break;
        }
    }
    if (help) {
        sb_puts(b, "# HELP ");
        sb_put(b, e->fam, fl);
        sb_puts(b, " ");
        sb_escaped(b, help, fmt == PROMSTORE_OPENMETRICS);
        sb_puts(b, "\n");
    }
    sb_puts(b, "# TYPE ");
    sb_put(b, e->fam, fl);
    sb_puts(b, " ");
    sb_puts(b, type);
    sb_puts(b, "\n");
    /* OpenMetrics: a unit must be the family name's suffix; otherwise it is left out */
    const char *unit = e->meta ? e->meta->unit : "";
    if (fmt == PROMSTORE_OPENMETRICS && *unit && fl > strlen(unit) + 1 &&
        e->fam[fl - strlen(unit) - 1] == '_' &&
        memcmp(e->fam + fl - strlen(unit), unit, strlen(unit)) == 0) {
        sb_puts(b, "# UNIT ");
        sb_put(b, e->fam, fl);
        sb_puts(b, " ");
        sb_puts(b, unit);
        sb_puts(b, "\n");
    }
}

static void write_sample(sb_t *b, const rentry_t *e, promstore_fmt_t fmt, int timestamps)
{
    const pseries_t *ps = e->s;
    sb_puts(b, ps->name);
    if (ps->nlabels) {
        sb_puts(b, "{");
        for (size_t i = 0; i < ps->nlabels; i++) {
            if (i) {
                sb_puts(b, ",");
            }
            sb_puts(b, ps->lname[i]);
            sb_puts(b, "=\"");
            sb_escaped(b, ps->lval[i], 1);
            sb_puts(b, "\"");
        }
        sb_puts(b, "}");
    }
    char v[64];
    double x = ps->value;
    int counts = (e->type == T_HISTOGRAM && e->role != 1) || (e->type == T_SUMMARY && e->role == 2);
    if (counts && isfinite(x) && x == floor(x) && fabs(x) < 9007199254740992.0) {
        /* bucket and count values are integers: written as such, as client_golang does */
        snprintf(v, sizeof(v), " %lld", (long long)x);
    } else {
        v[0] = ' ';
        promstore_format_value(x, fmt == PROMSTORE_OPENMETRICS, v + 1, sizeof(v) - 1);
    }
    sb_puts(b, v);
    if (timestamps) {
        long long t = ps->ts_ms;
        if (fmt == PROMSTORE_TEXT) {
            snprintf(v, sizeof(v), " %lld", t);
        } else {
            unsigned long long a = t < 0 ? (unsigned long long)-(t + 1) + 1 : (unsigned long long)t;
            snprintf(v, sizeof(v), " %s%llu.%03llu", t < 0 ? "-" : "", a / 1000, a % 1000);
        }
        sb_puts(b, v);
    }
    sb_puts(b, "\n");
}

int promstore_render(promstore_t *s, promstore_fmt_t fmt, int timestamps, int64_t now_ms,
                     char **out, size_t *out_len, promstore_stats_t *st)
{
    sb_t b = {0};
    pthread_mutex_lock(&s->mu);
    size_t gone = expire_locked(s, now_ms);
    size_t n = 0;
    rentry_t *es = s->series.n ? malloc(s->series.n * sizeof(*es)) : NULL;
    if (s->series.n && !es) {
        sb_fail(&b, MT_ENOMEM);
    }
    for (size_t i = 0; es && i < s->series.nb; i++) {
        for (hnode_t *h = s->series.b[i]; h; h = h->next) {
            if (classify(s, (const pseries_t *)h, &es[n])) {
                n++;
            }
        }
    }
    if (n) {
        qsort(es, n, sizeof(*es), rentry_cmp);
    }
    for (size_t i = 0; i < n && !b.err; i++) {
        if (i == 0 || cmp_str(es[i].fam, es[i].famlen, es[i - 1].fam, es[i - 1].famlen)) {
            write_header(&b, &es[i], fmt);
        }
        write_sample(&b, &es[i], fmt, timestamps);
    }
    pthread_mutex_unlock(&s->mu);
    free(es);
    if (st) {
        st->expired += gone;
    }
    if (fmt == PROMSTORE_OPENMETRICS) {
        sb_puts(&b, "# EOF\n");
    }
    *out = sb_take(&b, out_len);
    return *out ? MT_OK : MT_ENOMEM;
}
