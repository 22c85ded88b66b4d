/*
 * schema_eval.c - the schema evaluator shared by the validate processor (schema_apply) and
 * validation mode (schema_check), plus the per-rule hit counters. Part of the schema module
 * (schema.c loads the rules it evaluates).
 *
 * Evaluation runs in two passes so that check and apply count the same: pass 1 evaluates every
 * non-cardinality rule against every item and marks drops in a per-request bitmap (tags are
 * added at once when applying); pass 2, skipped when a reject fired, feeds the surviving data
 * points to the cardinality rules. Applying then removes the marked items. One rule reports at
 * most one violation per item (its first failing check), so "violations" counts (rule, item)
 * pairs.
 */
#include "schema.h"
#include "schema_int.h"

#include "otlp.h"
#include "promconv.h"
#include "telemetry.h"

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- value helpers ----------------------------------------------------------------------- */

static const kv_t *kv_get(kv_t *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i]->key && !strcmp(kv[i]->key, key)) {
            return kv[i];
        }
    }
    return NULL;
}

static const char *service_of(const resource_t *r)
{
    const kv_t *kv = r ? kv_get(r->attributes, r->n_attributes, "service.name") : NULL;
    if (kv && kv->value &&
        kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
        kv->value->string_value[0]) {
        return kv->value->string_value;
    }
    return "unknown_service";
}

/* Text of a scalar value for enum/regex/length checks; NULL for arrays, maps, bytes. */
static const char *value_text(const av_t *v, char *buf, size_t bl, size_t *len)
{
    if (!v) {
        return NULL;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        *len = strlen(v->string_value);
        return v->string_value;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        *len = (size_t)snprintf(buf, bl, "%lld", (long long)v->int_value);
        return buf;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        *len = (size_t)snprintf(buf, bl, "%.17g", v->double_value);
        return buf;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        *len = (size_t)snprintf(buf, bl, "%s", v->bool_value ? "true" : "false");
        return buf;
    default:
        return NULL;
    }
}

static int type_ok(int t, const av_t *v)
{
    int c = v ? (int)v->value_case : 0;
    switch (t) {
    case VT_STRING:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    case VT_INT:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    case VT_DOUBLE:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    case VT_NUMBER:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE ||
               c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    case VT_BOOL:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    case VT_BYTES:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    case VT_ARRAY:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    case VT_MAP:
        return c == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    default:
        return 1;
    }
}

static int sc_re_match(const regex_t *re, const char *s, size_t n)
{
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)n;
    return regexec(re, s, 1, m, REG_STARTEND) == 0;
}

/* First failing attribute check of rule r on kv[0..n), or NULL. */
static const char *check_attrs(const rule_t *r, kv_t *const *kv, size_t n, const char **attr)
{
    for (size_t i = 0; i < r->nrequired; i++) {
        if (!kv_get(kv, n, r->required[i])) {
            *attr = r->required[i];
            return "missing required attribute";
        }
    }
    for (size_t i = 0; i < r->nspecs; i++) {
        const attr_spec_t *sp = &r->specs[i];
        const kv_t *a = kv_get(kv, n, sp->key);
        if (!a) {
            continue;
        }
        *attr = sp->key;
        if (!type_ok(sp->type, a->value)) {
            return "type";
        }
        char buf[64];
        size_t len = 0;
        const char *t = value_text(a->value, buf, sizeof(buf), &len);
        if (!t) {
            continue;
        }
        if (sp->max_length && (int64_t)len > sp->max_length) {
            return "max_length";
        }
        if (sp->nenums) {
            size_t e = 0;
            while (e < sp->nenums && strcmp(sp->enums[e], t)) {
                e++;
            }
            if (e == sp->nenums) {
                return "enum";
            }
        }
        if (sp->has_re && !sc_re_match(&sp->re, t, len)) {
            return "regex";
        }
    }
    if (r->nallowed) {
        for (size_t i = 0; i < n; i++) {
            const char *k = kv[i]->key;
            int ok = 0;
            for (size_t q = 0; !ok && q < r->nallowed; q++) {
                ok = !strcmp(k, r->allowed[q]);
            }
            for (size_t q = 0; !ok && q < r->nrequired; q++) {
                ok = !strcmp(k, r->required[q]);
            }
            for (size_t q = 0; !ok && q < r->nspecs; q++) {
                ok = !strcmp(k, r->specs[q].key);
            }
            if (!ok) {
                *attr = k;
                return "not allowed";
            }
        }
    }
    *attr = NULL;
    return NULL;
}

/* ---- evaluation context --------------------------------------------------------------------- */

typedef struct ev {
    schema_t *sc;
    mt_signal_t sig;
    arena_t *a; /* NULL: check only */
    schema_hit_fn fn;
    void *arg;
    schema_result_t *res;
    uint8_t *drop; /* per item ordinal */
    size_t nitems;
    int oom;
    schema_hit_t h; /* location fields filled by the walker */
} ev_t;

/* Reports one hit for rule r; returns its action. */
static int report(ev_t *e, const rule_t *r, const char *what, const char *attr, uint64_t items)
{
    e->h.rule = r->name;
    e->h.message = r->message;
    e->h.action = r->action;
    e->h.signal = e->sig;
    e->h.what = what;
    e->h.attr = attr;
    e->h.items = items;
    e->res->violations++;
    if (r->action == SCHEMA_ACT_TAG) {
        e->res->tagged += items;
    } else if (r->action == SCHEMA_ACT_OVERFLOW) {
        e->res->overflowed += items;
    } else if (r->action == SCHEMA_ACT_REJECT) {
        if (!e->res->reject) {
            snprintf(e->res->msg, sizeof(e->res->msg), "%s (rule %s: %s%s%s)", r->message, r->name,
                     what, attr ? " " : "", attr ? attr : "");
        }
        e->res->reject = 1;
    } else if (r->action == SCHEMA_ACT_DROP && !e->res->msg[0]) {
        snprintf(e->res->msg, sizeof(e->res->msg), "%s (rule %s)", r->message, r->name);
    }
    if (e->fn) {
        e->fn(e->arg, &e->h);
    }
    return r->action;
}

/* Adds (or appends ",name" to) the tag attribute in an attribute list. */
static void tag_list(ev_t *e, size_t *n, kv_t ***arr, const char *rule)
{
    if (!e->a || e->oom) {
        return;
    }
    const char *key = e->sc->tag_key;
    for (size_t i = 0; i < *n; i++) {
        kv_t *kv = (*arr)[i];
        if (kv->key && !strcmp(kv->key, key) && kv->value &&
            kv->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            size_t ol = strlen(kv->value->string_value), rl = strlen(rule);
            char *s = arena_alloc(e->a, ol + rl + 2);
            kv_t *nkv = arena_alloc(e->a, sizeof(*nkv));
            av_t *nv = arena_alloc(e->a, sizeof(*nv));
            if (!s || !nkv || !nv) {
                e->oom = 1;
                return;
            }
            memcpy(s, kv->value->string_value, ol);
            s[ol] = ',';
            memcpy(s + ol + 1, rule, rl + 1);
            *nv = *kv->value;
            nv->string_value = s;
            *nkv = *kv;
            nkv->value = nv;
            (*arr)[i] = nkv;
            return;
        }
    }
    kv_t **na = arena_alloc(e->a, (*n + 1) * sizeof(kv_t *));
    kv_t *nkv = arena_alloc(e->a, sizeof(*nkv));
    av_t *nv = arena_alloc(e->a, sizeof(*nv));
    if (!na || !nkv || !nv) {
        e->oom = 1;
        return;
    }
    if (*n) {
        memcpy(na, *arr, *n * sizeof(kv_t *));
    }
    opentelemetry__proto__common__v1__key_value__init(nkv);
    opentelemetry__proto__common__v1__any_value__init(nv);
    nkv->key = (char *)key; /* the schema outlives the request; the packer only reads */
    nv->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    nv->string_value = (char *)rule;
    nkv->value = nv;
    na[*n] = nkv;
    *arr = na;
    (*n)++;
}

static resource_t *ensure_res(ev_t *e, resource_t **rp)
{
    if (!*rp && e->a && !e->oom) {
        resource_t *r = arena_alloc(e->a, sizeof(*r));
        if (!r) {
            e->oom = 1;
            return NULL;
        }
        opentelemetry__proto__resource__v1__resource__init(r);
        *rp = r;
    }
    return *rp;
}

static void mark(ev_t *e, size_t from, size_t count)
{
    for (size_t i = from; i < from + count && i < e->nitems; i++) {
        e->drop[i] = 1;
    }
}

/* Resource rules for one resource holding `items` items starting at ordinal `ord`. */
static void eval_resource(ev_t *e, resource_t **rp, size_t ord, size_t items)
{
    const resource_t *r = *rp;
    for (size_t i = 0; i < e->sc->nrules; i++) {
        const rule_t *ru = &e->sc->rules[i];
        if (ru->target != TGT_RESOURCE || !((ru->signals >> e->sig) & 1)) {
            continue;
        }
        const char *attr;
        const char *what =
            check_attrs(ru, r ? r->attributes : NULL, r ? r->n_attributes : 0, &attr);
        if (!what) {
            continue;
        }
        int act = report(e, ru, what, attr, items);
        if (act == SCHEMA_ACT_DROP) {
            mark(e, ord, items);
        } else if (act == SCHEMA_ACT_TAG && ensure_res(e, rp)) {
            tag_list(e, &(*rp)->n_attributes, &(*rp)->attributes, ru->name);
        }
    }
}

/* ---- metrics data points -------------------------------------------------------------------- */

typedef struct pts {
    size_t n;
    void **p;
    int kind; /* data_case */
} pts_t;

static pts_t metric_pts(const metric_t *m)
{
    pts_t r = {0, NULL, (int)m->data_case};
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        r.n = m->gauge->n_data_points, r.p = (void **)m->gauge->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        r.n = m->sum->n_data_points, r.p = (void **)m->sum->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        r.n = m->histogram->n_data_points, r.p = (void **)m->histogram->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        r.n = m->exponential_histogram->n_data_points;
        r.p = (void **)m->exponential_histogram->data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        r.n = m->summary->n_data_points, r.p = (void **)m->summary->data_points;
        break;
    default:
        break;
    }
    return r;
}

static size_t *pts_count_ptr(metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return &m->gauge->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return &m->sum->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return &m->histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return &m->exponential_histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return &m->summary->n_data_points;
    default:
        return NULL;
    }
}

static int metric_kind(const metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return MT_GAUGE;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum->is_monotonic ? MT_COUNTER : MT_UPDOWN;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return MT_HIST;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return MT_EXPHIST;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return MT_SUMMARY;
    default:
        return MT_ANY;
    }
}

static int is_time_unit(const char *u)
{
    static const char *const t[] = {"ns", "us", "\xc2\xb5s", "ms", "s", "min", "h", "d"};
    for (size_t i = 0; i < MT_ARRAY_LEN(t); i++) {
        if (!strcmp(u, t[i])) {
            return 1;
        }
    }
    return 0;
}

/* Metric-level checks of rule r (name, unit, type); NULL when fine. */
static const char *check_metric(const rule_t *r, const metric_t *m)
{
    const char *name = m->name ? m->name : "";
    const char *unit = m->unit ? m->unit : "";
    int k = metric_kind(m);
    if (r->has_name_re && !sc_re_match(&r->name_re, name, strlen(name))) {
        return "name";
    }
    if (r->name_max_length && (int64_t)strlen(name) > r->name_max_length) {
        return "name length";
    }
    if (r->metric_type != MT_ANY &&
        !(r->metric_type == k ||
          (r->metric_type == MT_SUM && (k == MT_COUNTER || k == MT_UPDOWN)))) {
        return "metric type";
    }
    if (r->unit && strcmp(unit, r->unit)) {
        return "unit";
    }
    if (r->duration_unit && (strstr(name, "duration") || is_time_unit(unit)) &&
        strcmp(unit, r->duration_unit)) {
        return "duration unit";
    }
    if (r->counter_total) {
        char buf[512];
        int n = promconv_metric_name(name, unit, 0, 0, 0, NULL, buf, sizeof(buf));
        int ends = n >= 6 && !strcmp(buf + n - 6, "_total");
        if (k == MT_COUNTER && !ends) {
            return "counter without _total";
        }
        if (k != MT_COUNTER && ends) {
            return "_total on a non-counter";
        }
    }
    return NULL;
}

static int rule_selects(const rule_t *r, const char *name)
{
    return !r->has_match || sc_re_match(&r->match, name ? name : "", name ? strlen(name) : 0);
}

/* ---- cardinality ------------------------------------------------------------------------- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t value_hash(const av_t *v)
{
    uint64_t h = MT_FNV_BASIS;
    if (!v) {
        return h;
    }
    int c = (int)v->value_case;
    h = mt_fnv1a(h, &c, sizeof(c));
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return mt_fnv1a(h, v->string_value, strlen(v->string_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return mt_fnv1a(h, &v->int_value, sizeof(v->int_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return mt_fnv1a(h, &v->double_value, sizeof(v->double_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return mt_fnv1a(h, &v->bool_value, sizeof(v->bool_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        return mt_fnv1a(h, v->bytes_value.data, v->bytes_value.len);
    default:
        return h; /* arrays and maps: same hash per type (rare as metric labels) */
    }
}

/* Order-independent hash of an attribute set (sum of per-pair hashes). */
static uint64_t attrs_hash(kv_t *const *kv, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = mt_fnv1a(MT_FNV_BASIS, kv[i]->key, strlen(kv[i]->key));
        sum += mix(h ^ mix(value_hash(kv[i]->value)));
    }
    return sum;
}

static int hset_has(const hset_t *s, uint64_t h)
{
    if (!s->cap) {
        return 0;
    }
    h |= 1;
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->v[i] == h) {
            return 1;
        }
        if (!s->v[i]) {
            return 0;
        }
    }
}

/* Adds h to a set holding at most `limit` entries (capacity fixed at 2*limit rounded up). */
static int hset_add(hset_t *s, uint64_t h, size_t limit)
{
    if (!s->cap) {
        size_t cap = 8;
        while (cap < limit * 2) {
            cap <<= 1;
        }
        if (!(s->v = calloc(cap, sizeof(uint64_t)))) {
            return MT_ENOMEM;
        }
        s->cap = cap;
    }
    h |= 1;
    size_t i = h & (s->cap - 1);
    while (s->v[i] && s->v[i] != h) {
        i = (i + 1) & (s->cap - 1);
    }
    if (!s->v[i]) {
        s->v[i] = h;
        s->n++;
    }
    return MT_OK;
}

static card_ent_t *card_ent(rule_t *r, uint64_t key)
{
    key |= 1;
    if (!r->ents_cap) {
        size_t cap = 16;
        if (!(r->ents = calloc(cap, sizeof(card_ent_t)))) {
            return NULL;
        }
        r->ents_cap = cap;
    }
    size_t i = key & (r->ents_cap - 1);
    while (r->ents[i].key && r->ents[i].key != key) {
        i = (i + 1) & (r->ents_cap - 1);
    }
    if (r->ents[i].key) {
        return &r->ents[i];
    }
    if (r->nents >= SCHEMA_MAX_METRICS_PER_RULE) {
        return NULL;
    }
    if ((r->nents + 1) * 2 > r->ents_cap) {
        /* grow: rehash into a table twice the size */
        size_t ncap = r->ents_cap * 2;
        card_ent_t *ne = calloc(ncap, sizeof(card_ent_t));
        if (!ne) {
            return NULL;
        }
        for (size_t k = 0; k < r->ents_cap; k++) {
            if (r->ents[k].key) {
                size_t j = r->ents[k].key & (ncap - 1);
                while (ne[j].key) {
                    j = (j + 1) & (ncap - 1);
                }
                ne[j] = r->ents[k];
            }
        }
        free(r->ents);
        r->ents = ne;
        r->ents_cap = ncap;
        i = key & (ncap - 1);
        while (ne[i].key) {
            i = (i + 1) & (ncap - 1);
        }
    }
    if (r->nlims && !(r->ents[i].labels = calloc(r->nlims, sizeof(hset_t)))) {
        return NULL;
    }
    r->ents[i].key = key;
    r->nents++;
    return &r->ents[i];
}

typedef enum { CARD_FITS = 0, CARD_OVER_SERIES, CARD_OVER_LABEL } card_verdict_t;

/* Decides whether a point's series fits rule r, or is over the series limit or over a label
 * limit (*label names it). Caller holds sc->mu. */
static card_verdict_t card_admit(rule_t *r, const char *service, const metric_t *m, kv_t *const *kv,
                                 size_t n, const char **label)
{
    uint64_t mk = mt_fnv1a(MT_FNV_BASIS, m->name, strlen(m->name));
    card_ent_t *ce = card_ent(r, mk);
    if (!ce) {
        return CARD_OVER_SERIES; /* too many metrics tracked (or no memory): treat as overflow */
    }
    uint64_t sh = mt_fnv1a(mix(mk), service, strlen(service)) ^ attrs_hash(kv, n);
    if (hset_has(&ce->series, sh)) {
        return CARD_FITS;
    }
    uint64_t vh[32];
    for (size_t i = 0; i < r->nlims && i < 32; i++) {
        const kv_t *a = kv_get(kv, n, r->lim_keys[i]);
        vh[i] = a ? value_hash(a->value) : 0;
        if (a && !hset_has(&ce->labels[i], vh[i]) && ce->labels[i].n >= (size_t)r->lim_vals[i]) {
            *label = r->lim_keys[i];
            return CARD_OVER_LABEL;
        }
    }
    if (r->card_limit && ce->series.n >= (size_t)r->card_limit) {
        return CARD_OVER_SERIES;
    }
    size_t lim = r->card_limit ? (size_t)r->card_limit : SCHEMA_MAX_CARDINALITY;
    if (hset_add(&ce->series, sh, lim) != MT_OK) {
        return CARD_OVER_SERIES;
    }
    for (size_t i = 0; i < r->nlims && i < 32; i++) {
        if (kv_get(kv, n, r->lim_keys[i]) &&
            hset_add(&ce->labels[i], vh[i], (size_t)r->lim_vals[i]) != MT_OK) {
            return CARD_OVER_SERIES;
        }
    }
    return CARD_FITS;
}

void schema_reset_cardinality(schema_t *sc)
{
    pthread_mutex_lock(&sc->mu);
    for (size_t k = 0; k < sc->nrules; k++) {
        rule_t *r = &sc->rules[k];
        for (size_t i = 0; i < r->ents_cap; i++) {
            free(r->ents[i].series.v);
            for (size_t q = 0; r->ents[i].labels && q < r->nlims; q++) {
                free(r->ents[i].labels[q].v);
            }
            free(r->ents[i].labels);
        }
        free(r->ents);
        r->ents = NULL;
        r->nents = r->ents_cap = 0;
    }
    pthread_mutex_unlock(&sc->mu);
}

static void overflow_point(ev_t *e, otlp_pt_head_t *p)
{
    if (!e->a || e->oom) {
        return;
    }
    kv_t **arr = arena_alloc(e->a, sizeof(kv_t *));
    kv_t *kv = arena_alloc(e->a, sizeof(kv_t));
    av_t *v = arena_alloc(e->a, sizeof(av_t));
    if (!arr || !kv || !v) {
        e->oom = 1;
        return;
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = (char *)SCHEMA_OVERFLOW_KEY;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)"true";
    kv->value = v;
    arr[0] = kv;
    p->attributes = arr;
    p->n_attributes = 1;
}

/* ---- walkers ----------------------------------------------------------------------------- */

static size_t count_items(mt_signal_t s, const ProtobufCMessage *req)
{
    size_t n = 0;
    if (s == MT_SIG_TRACES) {
        const Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r = (const void *)req;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                n += r->resource_spans[i]->scope_spans[j]->n_spans;
            }
        }
    } else if (s == MT_SIG_LOGS) {
        const Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *r = (const void *)req;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
                n += r->resource_logs[i]->scope_logs[j]->n_log_records;
            }
        }
    } else if (s == MT_SIG_METRICS) {
        const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r =
            (const void *)req;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                    r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    n += metric_pts(sm->metrics[k]).n;
                }
            }
        }
    }
    return n;
}

static void loc(ev_t *e, int ri, int si, int ii, int pi, const char *service)
{
    e->h.resource_idx = ri;
    e->h.scope_idx = si;
    e->h.item_idx = ii;
    e->h.point_idx = pi;
    e->h.service = service;
}

static void eval_traces(ev_t *e, Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r)
{
    size_t ord = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
        const char *svc = service_of(rs->resource);
        size_t cnt = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            cnt += rs->scope_spans[j]->n_spans;
        }
        loc(e, (int)i, -1, -1, -1, svc);
        eval_resource(e, &rs->resource, ord, cnt);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++, ord++) {
                Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                loc(e, (int)i, (int)j, (int)k, -1, svc);
                for (size_t q = 0; q < e->sc->nrules; q++) {
                    const rule_t *ru = &e->sc->rules[q];
                    if (ru->target != TGT_SPAN ||
                        (ru->span_kinds && !((ru->span_kinds >> (unsigned)sp->kind) & 1)) ||
                        !rule_selects(ru, sp->name)) {
                        continue;
                    }
                    const char *attr = NULL, *what = NULL;
                    size_t nl = sp->name ? strlen(sp->name) : 0;
                    if (ru->has_name_re &&
                        !sc_re_match(&ru->name_re, sp->name ? sp->name : "", nl)) {
                        what = "name";
                    } else if (ru->name_max_length && (int64_t)nl > ru->name_max_length) {
                        what = "name length";
                    } else {
                        what = check_attrs(ru, sp->attributes, sp->n_attributes, &attr);
                    }
                    if (!what) {
                        continue;
                    }
                    int act = report(e, ru, what, attr, 1);
                    if (act == SCHEMA_ACT_DROP) {
                        mark(e, ord, 1);
                    } else if (act == SCHEMA_ACT_TAG) {
                        tag_list(e, &sp->n_attributes, &sp->attributes, ru->name);
                    }
                }
            }
        }
    }
}

/* Loki: labels = listed attributes found on the resource or the record. */
static const char *check_loki(const rule_t *r, const resource_t *res, kv_t *const *kv, size_t n,
                              const char **attr)
{
    int64_t count = 0;
    for (size_t i = 0; i < r->nloki; i++) {
        const kv_t *a = kv_get(kv, n, r->loki_labels[i]);
        if (!a && res) {
            a = kv_get(res->attributes, res->n_attributes, r->loki_labels[i]);
        }
        if (!a) {
            continue;
        }
        count++;
        *attr = r->loki_labels[i];
        if ((int64_t)strlen(r->loki_labels[i]) > r->loki_max_name) {
            return "loki label name length";
        }
        char buf[64];
        size_t len = 0;
        if (value_text(a->value, buf, sizeof(buf), &len) && (int64_t)len > r->loki_max_value) {
            return "loki label value length";
        }
    }
    *attr = NULL;
    return count > r->loki_max_labels ? "loki label count" : NULL;
}

static void eval_logs(ev_t *e, Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *r)
{
    size_t ord = 0;
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
        const char *svc = service_of(rl->resource);
        size_t cnt = 0;
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            cnt += rl->scope_logs[j]->n_log_records;
        }
        loc(e, (int)i, -1, -1, -1, svc);
        eval_resource(e, &rl->resource, ord, cnt);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++, ord++) {
                Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                loc(e, (int)i, (int)j, (int)k, -1, svc);
                for (size_t q = 0; q < e->sc->nrules; q++) {
                    const rule_t *ru = &e->sc->rules[q];
                    if (ru->target != TGT_LOG) {
                        continue;
                    }
                    const char *attr = NULL;
                    const char *what = check_attrs(ru, lr->attributes, lr->n_attributes, &attr);
                    if (!what && ru->body_max_length && lr->body) {
                        char buf[64];
                        size_t len = 0;
                        if (value_text(lr->body, buf, sizeof(buf), &len) &&
                            (int64_t)len > ru->body_max_length) {
                            what = "body length";
                        }
                    }
                    if (!what && ru->has_loki) {
                        what =
                            check_loki(ru, rl->resource, lr->attributes, lr->n_attributes, &attr);
                    }
                    if (!what) {
                        continue;
                    }
                    int act = report(e, ru, what, attr, 1);
                    if (act == SCHEMA_ACT_DROP) {
                        mark(e, ord, 1);
                    } else if (act == SCHEMA_ACT_TAG) {
                        tag_list(e, &lr->n_attributes, &lr->attributes, ru->name);
                    }
                }
            }
        }
    }
}

static void eval_metrics(ev_t *e,
                         Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r)
{
    size_t ord = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
        const char *svc = service_of(rm->resource);
        size_t cnt = 0;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            for (size_t k = 0; k < rm->scope_metrics[j]->n_metrics; k++) {
                cnt += metric_pts(rm->scope_metrics[j]->metrics[k]).n;
            }
        }
        loc(e, (int)i, -1, -1, -1, svc);
        eval_resource(e, &rm->resource, ord, cnt);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                metric_t *m = sm->metrics[k];
                pts_t pt = metric_pts(m);
                for (size_t q = 0; q < e->sc->nrules; q++) {
                    const rule_t *ru = &e->sc->rules[q];
                    if (ru->target != TGT_METRIC || ru->card_limit || ru->nlims ||
                        !rule_selects(ru, m->name)) {
                        continue;
                    }
                    loc(e, (int)i, (int)j, (int)k, -1, svc);
                    const char *what = check_metric(ru, m);
                    if (what) {
                        int act = report(e, ru, what, m->name, pt.n);
                        if (act == SCHEMA_ACT_DROP) {
                            mark(e, ord, pt.n);
                        } else if (act == SCHEMA_ACT_TAG) {
                            for (size_t d = 0; d < pt.n; d++) {
                                otlp_pt_head_t *ph = pt.p[d];
                                tag_list(e, &ph->n_attributes, &ph->attributes, ru->name);
                            }
                        }
                        continue; /* one violation per rule and item */
                    }
                    for (size_t d = 0; d < pt.n; d++) {
                        otlp_pt_head_t *ph = pt.p[d];
                        const char *attr;
                        what = check_attrs(ru, ph->attributes, ph->n_attributes, &attr);
                        if (!what) {
                            continue;
                        }
                        loc(e, (int)i, (int)j, (int)k, (int)d, svc);
                        int act = report(e, ru, what, attr, 1);
                        if (act == SCHEMA_ACT_DROP) {
                            mark(e, ord + d, 1);
                        } else if (act == SCHEMA_ACT_TAG) {
                            tag_list(e, &ph->n_attributes, &ph->attributes, ru->name);
                        }
                    }
                }
                ord += pt.n;
            }
        }
    }
}

/* Pass 2: cardinality rules over the points pass 1 kept. */
static void eval_cardinality(ev_t *e,
                             Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r)
{
    size_t ord = 0;
    pthread_mutex_lock(&e->sc->mu);
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
        const char *svc = service_of(rm->resource);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                metric_t *m = sm->metrics[k];
                pts_t pt = metric_pts(m);
                for (size_t d = 0; d < pt.n; d++, ord++) {
                    if (e->drop[ord]) {
                        continue;
                    }
                    otlp_pt_head_t *ph = pt.p[d];
                    for (size_t q = 0; q < e->sc->nrules; q++) {
                        rule_t *ru = &e->sc->rules[q];
                        if (ru->target != TGT_METRIC || !(ru->card_limit || ru->nlims) ||
                            !rule_selects(ru, m->name)) {
                            continue;
                        }
                        const char *label = NULL;
                        card_verdict_t over =
                            card_admit(ru, svc, m, ph->attributes, ph->n_attributes, &label);
                        if (over == CARD_FITS) {
                            continue;
                        }
                        loc(e, (int)i, (int)j, (int)k, (int)d, svc);
                        int act = report(
                            e, ru, over == CARD_OVER_LABEL ? "label cardinality" : "cardinality",
                            over == CARD_OVER_LABEL ? label : m->name, 1);
                        if (act == SCHEMA_ACT_DROP) {
                            mark(e, ord, 1);
                            break;
                        } else if (act == SCHEMA_ACT_OVERFLOW) {
                            overflow_point(e, ph);
                            break;
                        } else if (act == SCHEMA_ACT_TAG) {
                            tag_list(e, &ph->n_attributes, &ph->attributes, ru->name);
                        }
                    }
                }
            }
        }
    }
    pthread_mutex_unlock(&e->sc->mu);
}

/* Removes items marked in e->drop (apply mode). */
#define COMPACT(arr, n, ordvar)                           \
    do {                                                  \
        size_t w_ = 0;                                    \
        for (size_t x_ = 0; x_ < (n); x_++, (ordvar)++) { \
            if (!e->drop[ordvar]) {                       \
                (arr)[w_++] = (arr)[x_];                  \
            }                                             \
        }                                                 \
        (n) = w_;                                         \
    } while (0)

static void compact(ev_t *e, ProtobufCMessage *req)
{
    size_t ord = 0;
    if (e->sig == MT_SIG_TRACES) {
        Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                    r->resource_spans[i]->scope_spans[j];
                COMPACT(ss->spans, ss->n_spans, ord);
            }
        }
    } else if (e->sig == MT_SIG_LOGS) {
        Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
                Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = r->resource_logs[i]->scope_logs[j];
                COMPACT(sl->log_records, sl->n_log_records, ord);
            }
        }
    } else {
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r = (void *)req;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                    r->resource_metrics[i]->scope_metrics[j];
                size_t w = 0;
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    metric_t *m = sm->metrics[k];
                    pts_t pt = metric_pts(m);
                    size_t *np = pts_count_ptr(m);
                    if (np) {
                        COMPACT(pt.p, *np, ord);
                    }
                    if (!np || *np || !pt.n) {
                        sm->metrics[w++] = m; /* a metric emptied by drops goes too */
                    }
                }
                sm->n_metrics = w;
            }
        }
    }
}

static int eval(schema_t *sc, mt_signal_t s, ProtobufCMessage *req, arena_t *a, schema_hit_fn fn,
                void *arg, schema_result_t *res)
{
    schema_result_t local;
    if (!res) {
        res = &local;
    }
    memset(res, 0, sizeof(*res));
    if (s >= MT_SIG_PROFILES || !schema_covers(sc, s)) {
        return MT_OK;
    }
    ev_t e;
    memset(&e, 0, sizeof(e));
    e.sc = sc, e.sig = s, e.a = a, e.fn = fn, e.arg = arg, e.res = res;
    e.nitems = count_items(s, req);
    e.drop = calloc(e.nitems ? e.nitems : 1, 1);
    if (!e.drop) {
        return MT_ENOMEM;
    }
    if (s == MT_SIG_TRACES) {
        eval_traces(&e, (void *)req);
    } else if (s == MT_SIG_LOGS) {
        eval_logs(&e, (void *)req);
    } else {
        eval_metrics(&e, (void *)req);
        if (!res->reject && sc->has_card) {
            eval_cardinality(&e, (void *)req);
        }
    }
    for (size_t i = 0; i < e.nitems; i++) {
        res->dropped += e.drop[i];
    }
    if (a && res->dropped && !res->reject) {
        compact(&e, req);
    }
    free(e.drop);
    return e.oom ? MT_ENOMEM : MT_OK;
}

int schema_check(schema_t *sc, mt_signal_t s, const ProtobufCMessage *req, schema_hit_fn fn,
                 void *arg, schema_result_t *res)
{
    return eval(sc, s, (ProtobufCMessage *)req, NULL, fn, arg, res); /* a == NULL: no writes */
}

int schema_apply(schema_t *sc, mt_signal_t s, ProtobufCMessage *req, arena_t *a, schema_hit_fn fn,
                 void *arg, schema_result_t *res)
{
    return eval(sc, s, req, a, fn, arg, res);
}

int schema_check_encoded(schema_t *sc, mt_signal_t s, const uint8_t *pb, size_t len,
                         schema_hit_fn fn, void *arg, schema_result_t *res)
{
    if (s >= MT_SIG_PROFILES) {
        if (res) {
            memset(res, 0, sizeof(*res));
        }
        return MT_OK;
    }
    arena_t *a = arena_create(len * 4 + 4096, 0);
    if (!a) {
        return MT_ENOMEM;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, pb);
    int rc = m ? schema_check(sc, s, m, fn, arg, res) : MT_EINVAL;
    arena_destroy(a);
    return rc;
}

/* Label values are escaped for the Prometheus text format and capped. */
static void esc(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            dst[o++] = '\\';
            dst[o++] = *s;
        } else if (*s == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = *s;
        }
    }
    dst[o] = 0;
}

void schema_count_hit(const schema_hit_t *hit)
{
    schema_count_hit_n(hit, 1);
}

void schema_count_hit_n(const schema_hit_t *hit, uint64_t n)
{
    char rule[160], svc[160], labels[512];
    esc(rule, sizeof(rule), hit->rule);
    esc(svc, sizeof(svc), hit->service ? hit->service : "unknown_service");
    snprintf(labels, sizeof(labels), "rule=\"%s\",service=\"%s\",action=\"%s\"", rule, svc,
             schema_action_name(hit->action));
    tm_add(tm_counter("meltp_validate_violations_total",
                      "Schema rule violations seen by the validate processor, per rule, service "
                      "and action",
                      labels),
           n);
}
