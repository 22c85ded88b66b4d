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
 *
 * This file holds the shared helpers, resources, classification and the conversion passes;
 * prw_decode_load.c reads the wire versions into the neutral form and prw_decode_emit.c builds
 * the OTLP points and metrics (shared declarations: prw_decode_int.h).
 */
#include "prw_decode.h"
#include "prw_decode_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int prwd_fail(ctx_t *c, const char *fmt, ...)
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

int prwd_grow(arena_t *a, void **arr, size_t *cap, size_t need, size_t elsz)
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

/* Appends to a protobuf-c repeated field whose capacity is implied by its count (the next
 * power of two), so no capacity field is needed; amortised O(1). Returns the (possibly moved)
 * array, or NULL when out of memory. */
void *prwd_push_implied(arena_t *a, void *arr, size_t n, void *x)
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

void prwd_key_adds(sb_t *b, const char *s)
{
    sb_put(b, s, strlen(s) + 1);
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    return mt_hash_bytes(MT_FNV_BASIS, p, n);
}

/* Finds key's value slot; with `create` inserts it (value NULL). Returns NULL when absent
 * (without create) or out of memory. */
void **prwd_map_slot(arena_t *a, map_t *m, const void *k, size_t kl, int create)
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
    void **v = prwd_map_slot(NULL, m, s, strlen(s), 0);
    return v ? *v : NULL;
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
int prwd_utf8_valid(const char *str)
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

int prwd_is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits == PRW_STALE_NAN_BITS;
}

uint64_t prwd_ms2ns(int64_t ms)
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
uint64_t prwd_to_count(double v)
{
    if (!(v > 0)) {
        return 0;
    }
    if (v >= 18446744073709551615.0) {
        return UINT64_MAX;
    }
    return (uint64_t)llround(v);
}

const char *prwd_series_desc(ctx_t *c, const ser_t *s, char *buf, size_t n)
{
    MT_UNUSED(c);
    if (s->name && prwd_utf8_valid(s->name)) {
        snprintf(buf, n, "timeseries[%zu] %.120s", s->idx, s->name);
    } else {
        snprintf(buf, n, "timeseries[%zu]", s->idx);
    }
    return buf;
}

kv_t *prwd_mk_kv(ctx_t *c, const char *k, const char *v)
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
int prwd_mk_attrs(ctx_t *c, const ser_t *s, const char *skip, kv_t ***out, size_t *n)
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
        if (!(arr[k++] = prwd_mk_kv(c, l->name, l->value))) {
            return OOM(c);
        }
    }
    *out = arr;
    *n = k;
    return MT_OK;
}

/* ---- resources ----------------------------------------------------------------------------- */

static res_t *get_res(ctx_t *c, const char *job, const char *instance)
{
    job = job ? job : "";
    instance = instance ? instance : "";
    sb_reset(&c->key);
    prwd_key_adds(&c->key, job);
    prwd_key_adds(&c->key, instance);
    if (c->key.err) {
        return NULL;
    }
    void **slot = prwd_map_slot(c->a, &c->res, c->key.p, c->key.len, 1);
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
            if (!ns || !(kv = prwd_mk_kv(c, "service.namespace", ns)) ||
                PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0 ||
                !(kv = prwd_mk_kv(c, "service.name", slash + 1)) ||
                PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0) {
                return NULL;
            }
        } else if (!(kv = prwd_mk_kv(c, "service.name", job)) ||
                   PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0) {
            return NULL;
        }
    }
    if (instance[0] && (!(kv = prwd_mk_kv(c, "service.instance.id", instance)) ||
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
        kv_t *kv = prwd_mk_kv(c, l->name, l->value);
        if (!kv || PUSH(c, r->attrs, r->nattrs, r->cap_attrs, kv) != 0) {
            return OOM(c);
        }
    }
    c->st.samples += s->ns;
    return MT_OK;
}

/* ---- classification ------------------------------------------------------------------------ */

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
            void **slot = base ? prwd_map_slot(c->a, &c->hist_bases, base, strlen(base), 1) : NULL;
            if (!slot) {
                return OOM(c);
            }
            *slot = (void *)1;
        } else if (s->quantile) {
            void **slot = prwd_map_slot(c->a, &c->sum_bases, s->name, strlen(s->name), 1);
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
            macc_t *m = prwd_get_metric(c, s->res, k.name, k.kind, s->help, k.ptype);
            if (!m) {
                return OOM(c);
            }
            rc = k.role == R_NUM ? prwd_emit_number(c, s, &k, m) : prwd_emit_part(c, s, &k, m);
            if (rc != MT_OK) {
                return rc;
            }
        }
        for (size_t j = 0; j < s->nh; j++) {
            if ((rc = prwd_emit_native(c, s, &s->h[j], s->res)) != MT_OK) {
                return rc;
            }
            c->st.histograms++;
        }
    }
    /* 3. exemplars, now that every series has its points */
    for (size_t i = 0; i < c->nser; i++) {
        if (c->ser[i].nx && (rc = prwd_attach_exemplars(c, &c->ser[i])) != MT_OK) {
            return rc;
        }
    }
    /* 4. classic histograms and summaries: from cumulative parts to points */
    for (size_t i = 0; i < c->ngrps; i++) {
        grp_t *g = c->grps[i];
        if (g->m->kind == K_HIST) {
            if ((rc = prwd_finish_hist(c, g)) != MT_OK) {
                return rc;
            }
        } else {
            prwd_finish_summary(g);
        }
    }
    return prwd_assemble(c, out);
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
        rc = prwd_load_v1(&c, pb ? pb : (const uint8_t *)"", len);
    } else if (version == 2) {
        rc = prwd_load_v2(&c, pb ? pb : (const uint8_t *)"", len);
    } else {
        mt_failf(eb, "unsupported remote-write version %d", version);
        return MT_EUNSUPPORTED;
    }
    c.st.series = c.nser;
    if (rc == MT_OK) {
        rc = convert(&c, out);
    }
    if (rc == MT_OK && c.key.err) {
        rc = OOM(&c);
    }
    sb_fini(&c.key);
    if (stats) {
        *stats = c.st;
    }
    if (rc != MT_OK) {
        *out = NULL;
    }
    return rc;
}
