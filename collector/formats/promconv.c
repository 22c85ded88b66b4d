/*
 * promconv.c - OTLP metrics -> Prometheus remote-write 1.0 series, following protocols.md §4
 * and Prometheus's own OTLP translator (UnderscoreEscapingWithSuffixes). One call converts one
 * ExportMetricsServiceRequest into label-sorted TimeSeries and MetricMetadata, all carved from
 * the caller's arena; identical label sets within a request share one TimeSeries.
 *
 * This file holds the conversion context, series, samples and metadata, resources, scopes,
 * target_info and promconv_convert. promconv_names.c renders names, floats and attribute
 * values as label text; promconv_points.c converts the points of each metric type;
 * promconv_delta.c holds the delta -> cumulative state (deltacum_t), the one piece that
 * outlives a request, so it uses malloc and a mutex, never the arena (shared declarations:
 * promconv_int.h).
 */
#include "promconv.h"
#include "promconv_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Conversion context                                                                         */

void *pc_ctx_alloc(pc_ctx_t *c, size_t n)
{
    void *p = arena_alloc(c->a, n ? n : 1);
    if (!p) {
        c->oom = 1;
    }
    return p;
}

static char *ctx_strndup(pc_ctx_t *c, const char *s, size_t n)
{
    char *p = arena_strndup(c->a, s, n);
    if (!p) {
        c->oom = 1;
    }
    return p;
}

char *pc_ctx_strdup(pc_ctx_t *c, const char *s)
{
    return ctx_strndup(c, s, strlen(s));
}

/* Grows an arena array of `elem`-sized items to hold `need`; the old copy stays in the arena
 * (it is freed with it), which costs at most the final size again. */
int pc_grow(pc_ctx_t *c, void **arr, size_t *cap, size_t need, size_t elem, size_t used)
{
    if (need <= *cap) {
        return 0;
    }
    size_t nc = *cap ? *cap * 2 : 4;
    while (nc < need) {
        nc *= 2;
    }
    void *p = pc_ctx_alloc(c, nc * elem);
    if (!p) {
        return -1;
    }
    if (used) {
        memcpy(p, *arr, used * elem);
    }
    *arr = p;
    *cap = nc;
    return 0;
}

int pc_lset_push(pc_ctx_t *c, lset_t *s, plabel_t *l)
{
    if (!l || pc_grow(c, (void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v), s->n) != 0) {
        return -1;
    }
    s->v[s->n++] = l;
    return 0;
}

plabel_t *pc_mk_label(pc_ctx_t *c, char *name, char *value)
{
    if (!name || !value) {
        return NULL;
    }
    plabel_t *l = pc_ctx_alloc(c, sizeof(*l));
    if (!l) {
        return NULL;
    }
    prometheus__label__init(l);
    l->name = name;
    l->value = value;
    return l;
}

/* Sets a label: an existing one of that name is replaced only when `override`. */
int pc_lset_set(pc_ctx_t *c, lset_t *s, plabel_t *l, int override)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i]->name, l->name) == 0) {
            if (override) {
                s->v[i] = l;
            }
            return 0;
        }
    }
    return pc_lset_push(c, s, l);
}

static int label_cmp(const void *x, const void *y)
{
    const plabel_t *a = *(plabel_t *const *)x, *b = *(plabel_t *const *)y;
    return strcmp(a->name, b->name);
}

void pc_sort_labels(lset_t *s)
{
    if (s->n > 1) {
        qsort(s->v, s->n, sizeof(*s->v), label_cmp);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Series, samples, metadata                                                                  */

static uint64_t fnv_str(uint64_t h, const char *s)
{
    h = mt_hash_bytes(h, s, strlen(s));
    h ^= 0xff; /* terminator so ("ab","c") and ("a","bc") differ */
    h *= 1099511628211ull;
    return h;
}

static uint64_t labels_hash(plabel_t *const *v, size_t n)
{
    uint64_t h = MT_FNV_BASIS;
    for (size_t i = 0; i < n; i++) {
        h = fnv_str(h, v[i]->name);
        h = fnv_str(h, v[i]->value);
    }
    return h;
}

static int labels_equal(plabel_t *const *a, size_t na, plabel_t *const *b, size_t nb)
{
    if (na != nb) {
        return 0;
    }
    for (size_t i = 0; i < na; i++) {
        if (a[i] != b[i] &&
            (strcmp(a[i]->name, b[i]->name) != 0 || strcmp(a[i]->value, b[i]->value) != 0)) {
            return 0;
        }
    }
    return 1;
}

static int rehash_series(pc_ctx_t *c, size_t cap)
{
    pc_series_t **tab = pc_ctx_alloc(c, cap * sizeof(*tab));
    if (!tab) {
        return -1;
    }
    memset(tab, 0, cap * sizeof(*tab));
    for (size_t i = 0; i < c->out->n_series; i++) {
        pc_series_t *s = (pc_series_t *)c->out->series[i];
        size_t h = (size_t)(s->hash & (cap - 1));
        s->next = tab[h];
        tab[h] = s;
    }
    c->tab = tab;
    c->tab_cap = cap;
    return 0;
}

/* The series with exactly these (sorted, unique) labels, created on first use. The label
 * pointer array is copied; the label structs are shared (they are immutable arena data). */
static pc_series_t *intern_series(pc_ctx_t *c, plabel_t *const *v, size_t n)
{
    uint64_t h = labels_hash(v, n);
    for (pc_series_t *s = c->tab[h & (c->tab_cap - 1)]; s; s = s->next) {
        if (s->hash == h && labels_equal(s->ts.labels, s->ts.n_labels, v, n)) {
            return s;
        }
    }
    promconv_out_t *out = c->out;
    if (pc_grow(c, (void **)&out->series, &out->cap_series, out->n_series + 1, sizeof(*out->series),
                out->n_series) != 0) {
        return NULL;
    }
    pc_series_t *s = pc_ctx_alloc(c, sizeof(*s));
    plabel_t **lv = pc_ctx_alloc(c, (n ? n : 1) * sizeof(*lv));
    if (!s || !lv) {
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    prometheus__time_series__init(&s->ts);
    if (n) {
        memcpy(lv, v, n * sizeof(*lv));
    }
    s->ts.labels = lv;
    s->ts.n_labels = n;
    s->hash = h;
    /* link into the table first: a rehash re-links every series in out->series, so the new
     * one must not be appended before it is linked (it would be linked twice, into a cycle) */
    size_t b = (size_t)(h & (c->tab_cap - 1));
    s->next = c->tab[b];
    c->tab[b] = s;
    out->series[out->n_series++] = &s->ts;
    if (out->n_series > c->tab_cap && rehash_series(c, c->tab_cap * 2) != 0) {
        return NULL;
    }
    return s;
}

/* The series for the current point labels (c->pl) plus __name__ and optionally one more label
 * (le / quantile), which win over point labels of the same name. */
pc_series_t *pc_series_for(pc_ctx_t *c, plabel_t *name, plabel_t *extra)
{
    c->tmp.n = 0;
    if (pc_grow(c, (void **)&c->tmp.v, &c->tmp.cap, c->pl.n + 2, sizeof(*c->tmp.v), 0) != 0) {
        return NULL;
    }
    plabel_t *add[2] = {name, extra};
    for (size_t i = 0; i < c->pl.n; i++) {
        plabel_t *l = c->pl.v[i];
        if (extra && strcmp(l->name, extra->name) == 0) {
            continue;
        }
        c->tmp.v[c->tmp.n++] = l;
    }
    for (int k = 0; k < 2; k++) {
        if (!add[k]) {
            continue;
        }
        size_t pos = c->tmp.n;
        while (pos > 0 && strcmp(c->tmp.v[pos - 1]->name, add[k]->name) > 0) {
            c->tmp.v[pos] = c->tmp.v[pos - 1];
            pos--;
        }
        c->tmp.v[pos] = add[k];
        c->tmp.n++;
    }
    return intern_series(c, c->tmp.v, c->tmp.n);
}

Prometheus__Sample *pc_add_sample(pc_ctx_t *c, pc_series_t *s, double v, int64_t ts)
{
    if (!s) {
        return NULL;
    }
    Prometheus__TimeSeries *t = &s->ts;
    if (pc_grow(c, (void **)&t->samples, &s->cap_samples, t->n_samples + 1, sizeof(*t->samples),
                t->n_samples) != 0) {
        return NULL;
    }
    Prometheus__Sample *smp = pc_ctx_alloc(c, sizeof(*smp));
    if (!smp) {
        return NULL;
    }
    prometheus__sample__init(smp);
    smp->value = v;
    smp->timestamp = ts;
    if (t->n_samples && t->samples[t->n_samples - 1]->timestamp > ts) {
        s->unsorted = 1;
    }
    t->samples[t->n_samples++] = smp;
    c->out->samples++;
    return smp;
}

int pc_add_histogram(pc_ctx_t *c, pc_series_t *s, Prometheus__Histogram *h)
{
    if (!s) {
        return -1;
    }
    Prometheus__TimeSeries *t = &s->ts;
    if (pc_grow(c, (void **)&t->histograms, &s->cap_histograms, t->n_histograms + 1,
                sizeof(*t->histograms), t->n_histograms) != 0) {
        return -1;
    }
    if (t->n_histograms && t->histograms[t->n_histograms - 1]->timestamp > h->timestamp) {
        s->unsorted = 1;
    }
    t->histograms[t->n_histograms++] = h;
    c->out->histograms++;
    return 0;
}

int pc_add_exemplar(pc_ctx_t *c, pc_series_t *s, Prometheus__Exemplar *e)
{
    if (!s || !e) {
        return -1;
    }
    Prometheus__TimeSeries *t = &s->ts;
    if (pc_grow(c, (void **)&t->exemplars, &s->cap_exemplars, t->n_exemplars + 1,
                sizeof(*t->exemplars), t->n_exemplars) != 0) {
        return -1;
    }
    t->exemplars[t->n_exemplars++] = e;
    c->out->exemplars++;
    return 0;
}

uint64_t pc_str_hash(const char *s, size_t n)
{
    return mt_hash_bytes(MT_FNV_BASIS, s, n);
}

/* The value slot for key (NUL-separated pairs allowed: klen gives the length), created empty
 * on first use. Keys must live in the arena. NULL when out of memory. */
static void **strmap_slot(pc_ctx_t *c, strmap_t *m, const char *key, size_t klen, int *created)
{
    if (m->n * 2 >= m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        const char **nk = pc_ctx_alloc(c, nc * sizeof(*nk));
        void **nv = pc_ctx_alloc(c, nc * sizeof(*nv));
        size_t *nl = pc_ctx_alloc(c, nc * sizeof(*nl));
        if (!nk || !nv || !nl) {
            return NULL;
        }
        memset(nk, 0, nc * sizeof(*nk));
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) {
                continue;
            }
            size_t kl = *(const size_t *)(m->keys[i] - sizeof(size_t));
            size_t j = (size_t)(pc_str_hash(m->keys[i], kl) & (nc - 1));
            while (nk[j]) {
                j = (j + 1) & (nc - 1);
            }
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        m->keys = nk;
        m->vals = nv;
        m->cap = nc;
    }
    size_t j = (size_t)(pc_str_hash(key, klen) & (m->cap - 1));
    while (m->keys[j]) {
        size_t kl = *(const size_t *)(m->keys[j] - sizeof(size_t));
        if (kl == klen && memcmp(m->keys[j], key, klen) == 0) {
            *created = 0;
            return &m->vals[j];
        }
        j = (j + 1) & (m->cap - 1);
    }
    /* store the length in front of the key bytes so keys may hold NULs */
    char *k = pc_ctx_alloc(c, sizeof(size_t) + klen + 1);
    if (!k) {
        return NULL;
    }
    memcpy(k, &klen, sizeof(size_t));
    memcpy(k + sizeof(size_t), key, klen);
    k[sizeof(size_t) + klen] = 0;
    m->keys[j] = k + sizeof(size_t);
    m->vals[j] = NULL;
    m->n++;
    *created = 1;
    return &m->vals[j];
}

/* otlptranslator's UnitNamer.Build: the unit word for metadata ("seconds",
 * "bytes_per_second", "" for "1" and annotations). */
static char *unit_word(pc_ctx_t *c, const char *unit)
{
    size_t cap = strlen(unit) * 2 + 32;
    char *buf = pc_ctx_alloc(c, cap);
    if (!buf) {
        return NULL;
    }
    fbuf_t b;
    sb_init_fixed(&b, buf, cap);
    const char *m, *p;
    size_t mn, pn;
    pc_unit_parts(unit, &m, &mn, &p, &pn);
    if (m) {
        pc_fb_unit_word(&b, m, mn, 0);
    }
    if (p) {
        size_t mark = b.len;
        if (b.len) {
            sb_putc(&b, '_');
        }
        size_t ws = b.len;
        pc_fb_unit_word(&b, p, pn, 1);
        if (b.len == ws) {
            pc_fb_truncate(&b, mark);
        }
    }
    return buf;
}

int pc_add_metadata(pc_ctx_t *c, const char *family, int type, const char *help, const char *unit)
{
    int created;
    void **slot = strmap_slot(c, &c->meta, family, strlen(family), &created);
    if (!slot) {
        return -1;
    }
    if (!created) {
        return 0; /* first description of a family wins */
    }
    promconv_out_t *out = c->out;
    if (pc_grow(c, (void **)&out->metadata, &out->cap_metadata, out->n_metadata + 1,
                sizeof(*out->metadata), out->n_metadata) != 0) {
        return -1;
    }
    Prometheus__MetricMetadata *md = pc_ctx_alloc(c, sizeof(*md));
    if (!md) {
        return -1;
    }
    prometheus__metric_metadata__init(md);
    md->type = (Prometheus__MetricMetadata__MetricType)type;
    md->metric_family_name = (char *)family;
    md->help = pc_ctx_strdup(c, help ? help : "");
    md->unit = unit_word(c, unit ? unit : "");
    if (!md->help || !md->unit) {
        return -1;
    }
    *slot = md;
    out->metadata[out->n_metadata++] = md;
    return 0;
}

void pc_drop_points(pc_ctx_t *c, size_t n, const char *reason)
{
    if (n) {
        c->out->dropped_points += n;
        c->out->last_drop_reason = reason;
    }
}

int64_t pc_ts_ms(pc_ctx_t *c, pc_res_t *r, uint64_t ns)
{
    int64_t ms = ns ? (int64_t)(ns / 1000000u) : c->now_ms;
    if (ms > r->latest_ms) {
        r->latest_ms = ms;
    }
    return ms;
}

/* ------------------------------------------------------------------------------------------ */
/* Resource, scope, target_info                                                               */

static const kv_t *find_attr(const Opentelemetry__Proto__Resource__V1__Resource *res,
                             const char *key)
{
    for (size_t i = 0; res && i < res->n_attributes; i++) {
        const kv_t *kv = res->attributes[i];
        if (kv && kv->key && strcmp(kv->key, key) == 0) {
            return kv;
        }
    }
    return NULL;
}

static const char *const identifying_keys[] = {"service.name", "service.namespace",
                                               "service.instance.id", NULL};

static int resource_setup(pc_ctx_t *c, const rmetrics_t *rm, pc_res_t *r)
{
    const Opentelemetry__Proto__Resource__V1__Resource *res = rm->resource;
    memset(r, 0, sizeof(*r));
    r->latest_ms = INT64_MIN;
    const kv_t *svc = find_attr(res, "service.name");
    const kv_t *svc_ns = find_attr(res, "service.namespace");
    const kv_t *inst = find_attr(res, "service.instance.id");
    if (svc) {
        char *name = pc_any_str(c, svc->value);
        char *ns = svc_ns ? pc_any_str(c, svc_ns->value) : NULL;
        char *job = name;
        if (name && ns && *ns) {
            size_t a = strlen(ns), b = strlen(name);
            job = pc_ctx_alloc(c, a + b + 2);
            if (job) {
                memcpy(job, ns, a);
                job[a] = '/';
                memcpy(job + a + 1, name, b + 1);
            }
        }
        if (!job) {
            return -1;
        }
        if (*job) {
            r->job = pc_mk_label(c, pc_ctx_strdup(c, "job"), job);
        }
    }
    if (inst) {
        char *v = pc_any_str(c, inst->value);
        if (!v) {
            return -1;
        }
        if (*v) {
            r->instance = pc_mk_label(c, pc_ctx_strdup(c, "instance"), v);
        }
    }
    if (!res || c->oom) {
        return c->oom ? -1 : 0;
    }
    if (c->o->resource_to_telemetry) {
        return pc_attrs_to_lset(c, res->attributes, res->n_attributes, NULL, &r->promoted);
    }
    const cfg_strlist_t *pl = c->o->promote;
    if (pl && pl->n) {
        /* gather the listed attributes, then sanitise and merge them like point attributes */
        kv_t **sel = pc_ctx_alloc(c, res->n_attributes * sizeof(*sel) + 1);
        if (!sel) {
            return -1;
        }
        size_t n = 0;
        for (size_t i = 0; i < res->n_attributes; i++) {
            const kv_t *kv = res->attributes[i];
            for (size_t k = 0; kv && kv->key && k < pl->n; k++) {
                if (pl->items[k] && strcmp(pl->items[k], kv->key) == 0) {
                    sel[n++] = res->attributes[i];
                    break;
                }
            }
        }
        return pc_attrs_to_lset(c, sel, n, NULL, &r->promoted);
    }
    return 0;
}

static int scope_setup(pc_ctx_t *c, const smetrics_t *sm)
{
    c->scope.n = 0;
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = sm->scope;
    if (!c->o->scope_labels || !sc) {
        return 0;
    }
    /* data that came in through meltp's remote-write receiver has no instrumentation scope:
     * labelling it with our receiver's name would change every relayed series' identity */
    if (sc->name && strcmp(sc->name, "meltp/prometheusremotewrite") == 0) {
        return 0;
    }
    static const char *const fixed[] = {"otel_scope_name", "otel_scope_version",
                                        "otel_scope_schema_url", NULL};
    const char *vals[3] = {sc->name, sc->version, sm->schema_url};
    for (int i = 0; i < 3; i++) {
        if (vals[i] && *vals[i] &&
            pc_lset_push(c, &c->scope,
                         pc_mk_label(c, pc_ctx_strdup(c, fixed[i]), pc_ctx_strdup(c, vals[i]))) !=
                0) {
            return -1;
        }
    }
    for (size_t i = 0; i < sc->n_attributes; i++) {
        const kv_t *kv = sc->attributes[i];
        if (!kv || !kv->key || !*kv->key) {
            continue;
        }
        size_t kl = strlen(kv->key);
        char *pk = pc_ctx_alloc(c, kl + 12);
        if (!pk) {
            return -1;
        }
        memcpy(pk, "otel_scope_", 11);
        memcpy(pk + 11, kv->key, kl + 1);
        char *name = pc_label_name_dup(c, pk);
        if (!name) {
            if (c->oom) {
                return -1;
            }
            continue;
        }
        /* an attribute must not pose as one of the three fixed scope labels */
        if (pc_key_in(name, fixed)) {
            continue;
        }
        if (pc_lset_set(c, &c->scope, pc_mk_label(c, name, pc_any_str(c, kv->value)), 1) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Finishes c->pl for a series of resource r: job and instance win, external labels only where
 * absent, empty values and __name__ dropped, sorted by name (Prometheus's createAttributes). */
int pc_lset_finish(pc_ctx_t *c, const pc_res_t *r)
{
    if ((r->job && pc_lset_set(c, &c->pl, r->job, 1) != 0) ||
        (r->instance && pc_lset_set(c, &c->pl, r->instance, 1) != 0)) {
        return -1;
    }
    for (size_t i = 0; i < c->ext.n; i++) {
        if (pc_lset_set(c, &c->pl, c->ext.v[i], 0) != 0) {
            return -1;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < c->pl.n; i++) {
        plabel_t *l = c->pl.v[i];
        if (l->value[0] && strcmp(l->name, "__name__") != 0) {
            c->pl.v[w++] = l;
        }
    }
    c->pl.n = w;
    pc_sort_labels(&c->pl);
    return 0;
}

/* One target_info sample (value 1) per (job, instance) per request: the resource's other
 * attributes plus job and instance, only when the resource identifies itself (service.name or
 * service.instance.id) and has something besides those to say (Prometheus's rule). */
static int emit_target_info(pc_ctx_t *c, const rmetrics_t *rm, pc_res_t *r)
{
    const Opentelemetry__Proto__Resource__V1__Resource *res = rm->resource;
    if (!c->o->target_info || !res || !(r->job || r->instance)) {
        return 0;
    }
    size_t others = 0;
    for (size_t i = 0; i < res->n_attributes; i++) {
        const kv_t *kv = res->attributes[i];
        if (kv && kv->key && !pc_key_in(kv->key, identifying_keys)) {
            others++;
        }
    }
    if (others == 0) {
        return 0;
    }
    int64_t ts = r->latest_ms == INT64_MIN ? c->now_ms : r->latest_ms;
    const char *job = r->job ? r->job->value : "";
    const char *inst = r->instance ? r->instance->value : "";
    size_t jl = strlen(job), il = strlen(inst);
    char *k = pc_ctx_alloc(c, jl + il + 2);
    if (!k) {
        return -1;
    }
    memcpy(k, job, jl + 1);
    memcpy(k + jl + 1, inst, il + 1);
    int created;
    void **slot = strmap_slot(c, &c->tinfo, k, jl + il + 1, &created);
    if (!slot) {
        return -1;
    }
    if (!created) {
        Prometheus__Sample *smp = *slot;
        if (smp && ts > smp->timestamp) {
            smp->timestamp = ts;
        }
        return 0;
    }
    c->pl.n = 0;
    if (pc_attrs_to_lset(c, res->attributes, res->n_attributes, identifying_keys, &c->pl) != 0) {
        return -1;
    }
    if (pc_lset_finish(c, r) != 0) {
        return -1;
    }
    const char *ns = c->o->namespace_;
    char fam[512];
    if (promconv_metric_name("target_info", "", 0, 0, 0, ns, fam, sizeof(fam)) < 0) {
        snprintf(fam, sizeof(fam), "target_info");
    }
    char *family = pc_ctx_strdup(c, fam);
    if (!family || pc_add_metadata(c, family, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE,
                                   "Target metadata", "") != 0) {
        return -1;
    }
    plabel_t *nl = pc_name_label(c, family, "");
    Prometheus__Sample *smp = nl ? pc_add_sample(c, pc_series_for(c, nl, NULL), 1, ts) : NULL;
    if (!smp) {
        return -1;
    }
    *slot = smp;
    return 0;
}

/* Insertion sort by timestamp: stable (points with equal times keep request order) and cheap
 * for the few samples one series gets per request. */
static void sort_samples(Prometheus__Sample **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        Prometheus__Sample *x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1]->timestamp > x->timestamp) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static void sort_histograms(Prometheus__Histogram **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        Prometheus__Histogram *x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1]->timestamp > x->timestamp) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

int promconv_convert(const promconv_opts_t *o, deltacum_t *dc,
                     const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req,
                     arena_t *a, promconv_out_t *out)
{
    memset(out, 0, sizeof(*out));
    pc_ctx_t c;
    memset(&c, 0, sizeof(c));
    c.o = o;
    c.dc = dc;
    c.a = a;
    c.out = out;
    c.now_ms = o->now_ms ? o->now_ms : (int64_t)(mt_wall_ns() / 1000000u);
    if (rehash_series(&c, 256) != 0) {
        return MT_ENOMEM;
    }
    if (dc) {
        pthread_mutex_lock(&dc->mu);
        pc_dc_maybe_sweep_locked(dc, c.now_ms);
        pthread_mutex_unlock(&dc->mu);
    }
    const cfg_strmap_t *ext = o->external_labels;
    for (size_t i = 0; ext && i < ext->n; i++) {
        if (!ext->keys[i] || !*ext->keys[i] || !ext->vals[i] || !*ext->vals[i]) {
            continue;
        }
        /* configured names are validated by the exporter; they are used as given */
        if (pc_lset_set(
                &c, &c.ext,
                pc_mk_label(&c, pc_ctx_strdup(&c, ext->keys[i]), pc_ctx_strdup(&c, ext->vals[i])),
                0) != 0) {
            return MT_ENOMEM;
        }
    }
    for (size_t i = 0; req && i < req->n_resource_metrics; i++) {
        const rmetrics_t *rm = req->resource_metrics[i];
        if (!rm) {
            continue;
        }
        pc_res_t r;
        if (resource_setup(&c, rm, &r) != 0) {
            return MT_ENOMEM;
        }
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const smetrics_t *sm = rm->scope_metrics[j];
            if (!sm) {
                continue;
            }
            if (scope_setup(&c, sm) != 0) {
                return MT_ENOMEM;
            }
            for (size_t k = 0; k < sm->n_metrics; k++) {
                if (sm->metrics[k] && pc_conv_metric(&c, &r, sm->metrics[k]) != 0) {
                    return MT_ENOMEM;
                }
            }
        }
        c.scope.n = 0;
        if (emit_target_info(&c, rm, &r) != 0) {
            return MT_ENOMEM;
        }
    }
    if (c.oom) {
        return MT_ENOMEM;
    }
    /* remote write wants each series' samples in time order */
    for (size_t i = 0; i < out->n_series; i++) {
        pc_series_t *s = (pc_series_t *)out->series[i];
        if (s->unsorted) {
            sort_samples(s->ts.samples, s->ts.n_samples);
            sort_histograms(s->ts.histograms, s->ts.n_histograms);
        }
    }
    return MT_OK;
}
