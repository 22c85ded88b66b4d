/*
 * pprof_conv.c - pprof <-> OTLP profiles, folded text -> OTLP, Pyroscope app names and
 * multipart/form-data bodies (see pprof_conv.h). Decoding allocates from the request arena;
 * pprof_from_otlp uses a private arena and returns one malloc'd buffer. Lookups (pprof ids,
 * strings, stacks, attributes) use one small open-addressing hash keyed by bytes, so every
 * conversion is linear in its input.
 */
#include "pprof_conv.h"
#include "pyro_legacy.h"
#include "otlp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles o_rp_t;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles o_sp_t;
typedef Opentelemetry__Proto__Profiles__V1development__Sample o_sample_t;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType o_vt_t;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping o_mapping_t;
typedef Opentelemetry__Proto__Profiles__V1development__Location o_loc_t;
typedef Opentelemetry__Proto__Profiles__V1development__Line o_line_t;
typedef Opentelemetry__Proto__Profiles__V1development__Function o_func_t;
typedef Opentelemetry__Proto__Profiles__V1development__Stack o_stack_t;
typedef Opentelemetry__Proto__Profiles__V1development__Link o_link_t;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit o_kvu_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue o_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue o_any_t;
typedef Opentelemetry__Proto__Resource__V1__Resource o_res_t;
typedef Perftools__Profiles__Profile p_prof_t;

#define ANY(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

/* ---- a byte-keyed hash (arena memory) -------------------------------------------------- */

typedef struct htab {
    arena_t *a;
    const uint8_t **keys;
    uint32_t *klen;
    int64_t *vals;
    size_t cap, n;
} htab_t;

static uint64_t hash_bytes(const void *p, size_t n)
{
    uint64_t h = mt_fnv1a(MT_FNV_BASIS, p, n);
    return h ^ (h >> 29);
}

static int htab_init(htab_t *t, arena_t *a, size_t hint)
{
    size_t cap = 64;
    while (cap < hint * 2) {
        cap <<= 1;
    }
    t->a = a;
    t->cap = cap;
    t->n = 0;
    t->keys = arena_calloc(a, cap * sizeof(*t->keys));
    t->klen = arena_alloc(a, cap * sizeof(*t->klen));
    t->vals = arena_alloc(a, cap * sizeof(*t->vals));
    return t->keys && t->klen && t->vals ? MT_OK : MT_ENOMEM;
}

/* Returns the slot of key: found (keys[slot] set) or where it goes. */
static size_t htab_slot(const htab_t *t, const void *k, size_t kl)
{
    size_t i = hash_bytes(k, kl) & (t->cap - 1);
    while (t->keys[i] && !(t->klen[i] == kl && memcmp(t->keys[i], k, kl) == 0)) {
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

/* Looks key up; returns its value or -1. */
static int64_t htab_get(const htab_t *t, const void *k, size_t kl)
{
    size_t i = htab_slot(t, k, kl);
    return t->keys[i] ? t->vals[i] : -1;
}

/* Inserts key -> v unless present. The key bytes must outlive the table. Returns the value
 * stored for the key (v if new), or -2 on out of memory. *added says which. */
static int64_t htab_put(htab_t *t, const void *k, size_t kl, int64_t v, int *added)
{
    if ((t->n + 1) * 2 > t->cap) {
        htab_t nt;
        if (htab_init(&nt, t->a, t->cap) != MT_OK) {
            return -2;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (t->keys[i]) {
                size_t s = htab_slot(&nt, t->keys[i], t->klen[i]);
                nt.keys[s] = t->keys[i];
                nt.klen[s] = t->klen[i];
                nt.vals[s] = t->vals[i];
            }
        }
        nt.n = t->n;
        *t = nt;
    }
    size_t i = htab_slot(t, k, kl);
    if (t->keys[i]) {
        *added = 0;
        return t->vals[i];
    }
    t->keys[i] = k;
    t->klen[i] = (uint32_t)kl;
    t->vals[i] = v;
    t->n++;
    *added = 1;
    return v;
}

/* ---- growable pointer arrays (arena) ---------------------------------------------------- */

typedef struct pvec {
    void **v;
    size_t n, cap;
} pvec_t;

static int pvec_push(arena_t *a, pvec_t *p, void *x)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        void **nv = arena_alloc(a, nc * sizeof(*nv));
        if (!nv) {
            return MT_ENOMEM;
        }
        if (p->n) {
            memcpy(nv, p->v, p->n * sizeof(*nv));
        }
        p->v = nv;
        p->cap = nc;
    }
    p->v[p->n++] = x;
    return MT_OK;
}

/* ---- app name ---------------------------------------------------------------------------- */

static char *trim_dup(arena_t *a, const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) {
        s++, n--;
    }
    while (n && isspace((unsigned char)s[n - 1])) {
        n--;
    }
    return arena_strndup(a, s, n);
}

int pprof_parse_name(const char *name, arena_t *a, char **app, pprof_label_t **labels,
                     size_t *nlabels, mt_errbuf_t *eb)
{
    *labels = NULL;
    *nlabels = 0;
    if (!name || !*name) {
        mt_failf(eb, "query parameter name is required (app name with optional {labels})");
        return MT_EINVAL;
    }
    const char *brace = strchr(name, '{');
    size_t applen = brace ? (size_t)(brace - name) : strlen(name);
    *app = trim_dup(a, name, applen);
    if (!*app) {
        return MT_ENOMEM;
    }
    if (!**app) {
        mt_failf(eb, "name \"%.100s\" has no app name before its labels", name);
        return MT_EINVAL;
    }
    if (strchr(*app, '}') || strchr(*app, '=') || strchr(*app, ',')) {
        mt_failf(eb, "app name \"%.100s\" contains one of } = ,", *app);
        return MT_EINVAL;
    }
    if (!brace) {
        return MT_OK;
    }
    const char *end = strchr(brace, '}');
    if (!end || end[1] != 0) {
        mt_failf(eb, "name \"%.100s\": labels must be {k=v,...} at the end", name);
        return MT_EINVAL;
    }
    pprof_label_t *ls = arena_alloc(a, PPROF_MAX_LABELS * sizeof(*ls));
    if (!ls) {
        return MT_ENOMEM;
    }
    size_t n = 0;
    const char *p = brace + 1;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (!eq) {
            /* tolerate "{}" and a trailing comma; anything else is not a pair */
            char *blank = trim_dup(a, p, (size_t)(stop - p));
            if (blank && !*blank) {
                p = stop + 1;
                continue;
            }
            mt_failf(eb, "name \"%.100s\": label \"%.*s\" is not key=value", name,
                     (int)(stop - p > 60 ? 60 : stop - p), p);
            return MT_EINVAL;
        }
        if (n == PPROF_MAX_LABELS) {
            mt_failf(eb, "name has more than %d labels", PPROF_MAX_LABELS);
            return MT_EINVAL;
        }
        char *k = trim_dup(a, p, (size_t)(eq - p));
        char *v = trim_dup(a, eq + 1, (size_t)(stop - eq - 1));
        if (!k || !v) {
            return MT_ENOMEM;
        }
        if (!*k) {
            mt_failf(eb, "name \"%.100s\": empty label name", name);
            return MT_EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            if (strcmp(ls[i].key, k) == 0) {
                mt_failf(eb, "name \"%.100s\": label %s given twice", name, k);
                return MT_EINVAL;
            }
        }
        ls[n].key = k;
        ls[n].value = v;
        n++;
        p = stop + 1;
    }
    *labels = ls;
    *nlabels = n;
    return MT_OK;
}

/* ---- OTLP building blocks ---------------------------------------------------------------- */

static o_kv_t *kv_str(arena_t *a, const char *k, const char *v)
{
    o_kv_t *kv = arena_alloc(a, sizeof(*kv));
    o_any_t *av = arena_alloc(a, sizeof(*av));
    if (!kv || !av) {
        return NULL;
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = ANY(STRING_VALUE);
    av->string_value = (char *)v;
    kv->key = (char *)k;
    kv->value = av;
    return kv;
}

static o_vt_t *vt_new(arena_t *a, int32_t type, int32_t unit)
{
    o_vt_t *vt = arena_alloc(a, sizeof(*vt));
    if (vt) {
        opentelemetry__proto__profiles__v1development__value_type__init(vt);
        vt->type_strindex = type;
        vt->unit_strindex = unit;
    }
    return vt;
}

/* The request skeleton: dictionary (filled by the caller), one resource with service.name and
 * labels, one scope holding `np` profiles (caller fills). */
static pprof_otlp_req_t *req_new(arena_t *a, const pprof_meta_t *m, size_t np,
                                 pprof_otlp_profile_t ***profiles)
{
    pprof_otlp_req_t *r = arena_alloc(a, sizeof(*r));
    pprof_otlp_dict_t *d = arena_alloc(a, sizeof(*d));
    o_rp_t *rp = arena_alloc(a, sizeof(*rp));
    o_rp_t **rps = arena_alloc(a, sizeof(*rps));
    o_sp_t *sp = arena_alloc(a, sizeof(*sp));
    o_sp_t **sps = arena_alloc(a, sizeof(*sps));
    o_res_t *res = arena_alloc(a, sizeof(*res));
    size_t nattr = 1 + m->nlabels + (m->spy_name ? 1 : 0) +
                   (m->aggregation && strcmp(m->aggregation, "sum") ? 1 : 0);
    o_kv_t **attrs = arena_alloc(a, nattr * sizeof(*attrs));
    pprof_otlp_profile_t **ps = arena_calloc(a, (np ? np : 1) * sizeof(*ps));
    if (!r || !d || !rp || !rps || !sp || !sps || !res || !attrs || !ps) {
        return NULL;
    }
    opentelemetry__proto__collector__v1__export_profiles_service_request__init(r);
    opentelemetry__proto__profiles__v1development__profiles_dictionary__init(d);
    opentelemetry__proto__profiles__v1development__resource_profiles__init(rp);
    opentelemetry__proto__profiles__v1development__scope_profiles__init(sp);
    opentelemetry__proto__resource__v1__resource__init(res);
    size_t n = 0;
    attrs[n++] = kv_str(a, "service.name", m->app);
    for (size_t i = 0; i < m->nlabels; i++) {
        attrs[n++] = kv_str(a, m->labels[i].key, m->labels[i].value);
    }
    if (m->spy_name) {
        attrs[n++] = kv_str(a, "pyroscope.spy_name", m->spy_name);
    }
    if (m->aggregation && strcmp(m->aggregation, "sum")) {
        attrs[n++] = kv_str(a, "pyroscope.aggregation_type", m->aggregation);
    }
    for (size_t i = 0; i < n; i++) {
        if (!attrs[i]) {
            return NULL;
        }
    }
    res->attributes = attrs;
    res->n_attributes = n;
    rp->resource = res;
    rps[0] = rp;
    rp->scope_profiles = sps;
    rp->n_scope_profiles = 1;
    sps[0] = sp;
    sp->profiles = ps;
    sp->n_profiles = np;
    r->resource_profiles = rps;
    r->n_resource_profiles = 1;
    r->dictionary = d;
    *profiles = ps;
    return r;
}

static pprof_otlp_profile_t *profile_new(arena_t *a, const pprof_meta_t *m, const uint8_t id[16])
{
    pprof_otlp_profile_t *p = arena_alloc(a, sizeof(*p));
    if (!p) {
        return NULL;
    }
    opentelemetry__proto__profiles__v1development__profile__init(p);
    p->profile_id.data = (uint8_t *)id;
    p->profile_id.len = 16;
    if (m->original && m->original_len) {
        p->original_payload_format = "pprof";
        p->original_payload.data = (uint8_t *)m->original;
        p->original_payload.len = m->original_len;
    }
    return p;
}

/* 16 random bytes, never all zero (an all-zero profile_id is invalid). */
static uint8_t *new_profile_id(arena_t *a)
{
    uint8_t *id = arena_alloc(a, 16);
    if (!id) {
        return NULL;
    }
    if (getrandom(id, 16, GRND_NONBLOCK) != 16) {
        uint64_t t = mt_wall_ns() ^ (uint64_t)(uintptr_t)id;
        memcpy(id, &t, 8);
        t = hash_bytes(&t, 8);
        memcpy(id + 8, &t, 8);
    }
    id[0] |= 1;
    return id;
}

/* Sets time and duration: the query's from/until win, then the profile's own, then now. */
static void set_times(pprof_otlp_profile_t *p, const pprof_meta_t *m, int64_t t, int64_t d)
{
    if (m->from_ns) {
        p->time_unix_nano = m->from_ns;
        p->duration_nano = m->until_ns > m->from_ns ? m->until_ns - m->from_ns : 0;
    } else {
        p->time_unix_nano = t > 0 ? (uint64_t)t : mt_wall_ns();
        p->duration_nano = d > 0 ? (uint64_t)d : 0;
    }
}

/* Builds Stack entries deduplicated by their location list; returns the stack index. */
static int32_t stack_intern(arena_t *a, htab_t *h, pvec_t *stacks, const int32_t *locs, size_t n)
{
    int32_t *copy = arena_alloc(a, (n ? n : 1) * sizeof(*copy));
    if (!copy) {
        return -2;
    }
    if (n) {
        memcpy(copy, locs, n * sizeof(*copy));
    }
    int added = 0;
    int64_t idx = htab_put(h, copy, n * sizeof(*copy), (int64_t)stacks->n, &added);
    if (idx < 0) {
        return -2;
    }
    if (added) {
        o_stack_t *s = arena_alloc(a, sizeof(*s));
        if (!s) {
            return -2;
        }
        opentelemetry__proto__profiles__v1development__stack__init(s);
        s->location_indices = copy;
        s->n_location_indices = n;
        if (pvec_push(a, stacks, s) != MT_OK) {
            return -2;
        }
    }
    return (int32_t)idx;
}

/* ---- pprof -> OTLP ----------------------------------------------------------------------- */

typedef struct p2o {
    arena_t *a;
    const p_prof_t *p;
    mt_errbuf_t *eb;
} p2o_t;

static int str_ok(p2o_t *c, int64_t i, const char *what)
{
    if (i < 0 || (uint64_t)i >= c->p->n_string_table) {
        mt_failf(c->eb, "pprof: %s refers to string %lld of %zu", what, (long long)i,
                 c->p->n_string_table);
        return 0;
    }
    return 1;
}

/* Maps nonzero unique ids to 1-based dictionary positions. */
static int index_ids(p2o_t *c, htab_t *h, size_t n,
                     const uint64_t *(*idof)(const p_prof_t *, size_t), const char *what)
{
    if (htab_init(h, c->a, n) != MT_OK) {
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const uint64_t *id = idof(c->p, i);
        if (*id == 0) {
            mt_failf(c->eb, "pprof: %s %zu has id 0 (ids must be nonzero)", what, i);
            return MT_EINVAL;
        }
        int added = 0;
        if (htab_put(h, id, sizeof(*id), (int64_t)i + 1, &added) < 0) {
            return MT_ENOMEM;
        }
        if (!added) {
            mt_failf(c->eb, "pprof: %s id %llu is not unique", what, (unsigned long long)*id);
            return MT_EINVAL;
        }
    }
    return MT_OK;
}

static const uint64_t *mapping_id(const p_prof_t *p, size_t i)
{
    return &p->mapping[i]->id;
}
static const uint64_t *function_id(const p_prof_t *p, size_t i)
{
    return &p->function[i]->id;
}
static const uint64_t *location_id(const p_prof_t *p, size_t i)
{
    return &p->location[i]->id;
}

static int32_t lookup_id(const htab_t *h, uint64_t id)
{
    if (id == 0) {
        return 0;
    }
    int64_t v = htab_get(h, &id, sizeof(id));
    return v < 0 ? -1 : (int32_t)v;
}

int pprof_to_otlp(const uint8_t *pb, size_t len, const pprof_meta_t *m, arena_t *a,
                  pprof_otlp_req_t **out, uint64_t *nprofiles, mt_errbuf_t *eb)
{
    p_prof_t *p = perftools__profiles__profile__unpack(arena_pb_allocator(a), len, pb);
    if (!p) {
        if (arena_over_cap(a)) {
            return MT_ENOMEM;
        }
        mt_errbuf_t why;
        mt_errbuf_clear(&why);
        otlp_wire_explain(&perftools__profiles__profile__descriptor, pb, len, &why);
        mt_failf(eb, "corrupt pprof: not a perftools.profiles.Profile%s%s", why.set ? ": " : "",
                 why.set ? why.msg : "");
        return MT_EINVAL;
    }
    p2o_t c = {a, p, eb};
    if (p->n_string_table == 0 || p->string_table[0][0] != 0) {
        mt_failf(eb, "pprof: string_table[0] must be \"\"");
        return MT_EINVAL;
    }
    if (p->n_sample_type == 0) {
        mt_failf(eb, "pprof: no sample_type");
        return MT_EINVAL;
    }
    if (p->n_string_table > INT32_MAX || p->n_location > INT32_MAX - 1 ||
        p->n_function > INT32_MAX - 1 || p->n_mapping > INT32_MAX - 1) {
        mt_failf(eb, "pprof: tables too large");
        return MT_EINVAL;
    }
    for (size_t i = 0; i < p->n_sample_type; i++) {
        if (!str_ok(&c, p->sample_type[i]->type, "sample_type.type") ||
            !str_ok(&c, p->sample_type[i]->unit, "sample_type.unit")) {
            return MT_EINVAL;
        }
    }
    if (p->period_type && (!str_ok(&c, p->period_type->type, "period_type.type") ||
                           !str_ok(&c, p->period_type->unit, "period_type.unit"))) {
        return MT_EINVAL;
    }
    htab_t hm, hf, hl;
    int rc;
    if ((rc = index_ids(&c, &hm, p->n_mapping, mapping_id, "mapping")) != MT_OK ||
        (rc = index_ids(&c, &hf, p->n_function, function_id, "function")) != MT_OK ||
        (rc = index_ids(&c, &hl, p->n_location, location_id, "location")) != MT_OK) {
        return rc;
    }
    /* dictionary tables: element 0 is the zero value, then pprof's entries in order */
    o_mapping_t **maps = arena_alloc(a, (p->n_mapping + 1) * sizeof(*maps));
    o_func_t **funcs = arena_alloc(a, (p->n_function + 1) * sizeof(*funcs));
    o_loc_t **locs = arena_alloc(a, (p->n_location + 1) * sizeof(*locs));
    if (!maps || !funcs || !locs) {
        return MT_ENOMEM;
    }
    for (size_t i = 0; i <= p->n_mapping; i++) {
        o_mapping_t *om = arena_alloc(a, sizeof(*om));
        if (!om) {
            return MT_ENOMEM;
        }
        opentelemetry__proto__profiles__v1development__mapping__init(om);
        if (i) {
            const Perftools__Profiles__Mapping *pm = p->mapping[i - 1];
            if (!str_ok(&c, pm->filename, "mapping.filename") ||
                !str_ok(&c, pm->build_id, "mapping.build_id")) {
                return MT_EINVAL;
            }
            om->memory_start = pm->memory_start;
            om->memory_limit = pm->memory_limit;
            om->file_offset = pm->file_offset;
            om->filename_strindex = (int32_t)pm->filename;
        }
        maps[i] = om;
    }
    for (size_t i = 0; i <= p->n_function; i++) {
        o_func_t *of = arena_alloc(a, sizeof(*of));
        if (!of) {
            return MT_ENOMEM;
        }
        opentelemetry__proto__profiles__v1development__function__init(of);
        if (i) {
            const Perftools__Profiles__Function *pf = p->function[i - 1];
            if (!str_ok(&c, pf->name, "function.name") ||
                !str_ok(&c, pf->system_name, "function.system_name") ||
                !str_ok(&c, pf->filename, "function.filename")) {
                return MT_EINVAL;
            }
            of->name_strindex = (int32_t)pf->name;
            of->system_name_strindex = (int32_t)pf->system_name;
            of->filename_strindex = (int32_t)pf->filename;
            of->start_line = pf->start_line;
        }
        funcs[i] = of;
    }
    for (size_t i = 0; i <= p->n_location; i++) {
        o_loc_t *ol = arena_alloc(a, sizeof(*ol));
        if (!ol) {
            return MT_ENOMEM;
        }
        opentelemetry__proto__profiles__v1development__location__init(ol);
        if (i) {
            const Perftools__Profiles__Location *pl = p->location[i - 1];
            int32_t mi = lookup_id(&hm, pl->mapping_id);
            if (mi < 0) {
                mt_failf(eb, "pprof: location %llu refers to unknown mapping %llu",
                         (unsigned long long)pl->id, (unsigned long long)pl->mapping_id);
                return MT_EINVAL;
            }
            ol->mapping_index = mi;
            ol->address = pl->address;
            if (pl->n_line) {
                ol->lines = arena_alloc(a, pl->n_line * sizeof(*ol->lines));
                if (!ol->lines) {
                    return MT_ENOMEM;
                }
                ol->n_lines = pl->n_line;
            }
            for (size_t j = 0; j < pl->n_line; j++) {
                int32_t fi = lookup_id(&hf, pl->line[j]->function_id);
                if (fi < 0) {
                    mt_failf(eb, "pprof: location %llu refers to unknown function %llu",
                             (unsigned long long)pl->id,
                             (unsigned long long)pl->line[j]->function_id);
                    return MT_EINVAL;
                }
                o_line_t *ln = arena_alloc(a, sizeof(*ln));
                if (!ln) {
                    return MT_ENOMEM;
                }
                opentelemetry__proto__profiles__v1development__line__init(ln);
                ln->function_index = fi;
                ln->line = pl->line[j]->line;
                ln->column = pl->line[j]->column;
                ol->lines[j] = ln;
            }
        }
        locs[i] = ol;
    }
    /* stacks and attributes, deduplicated; zero entries first */
    htab_t hs, ha;
    pvec_t stacks = {0}, attrs = {0};
    if (htab_init(&hs, a, p->n_sample) != MT_OK || htab_init(&ha, a, 64) != MT_OK) {
        return MT_ENOMEM;
    }
    if (stack_intern(a, &hs, &stacks, NULL, 0) != 0) {
        return MT_ENOMEM;
    }
    o_kvu_t *zero_attr = arena_alloc(a, sizeof(*zero_attr));
    if (!zero_attr || pvec_push(a, &attrs, zero_attr) != MT_OK) {
        return MT_ENOMEM;
    }
    opentelemetry__proto__profiles__v1development__key_value_and_unit__init(zero_attr);
    int32_t *sample_stack = arena_alloc(a, (p->n_sample ? p->n_sample : 1) * sizeof(int32_t));
    int32_t **sample_attrs = arena_alloc(a, (p->n_sample ? p->n_sample : 1) * sizeof(int32_t *));
    size_t maxdepth = 0;
    for (size_t i = 0; i < p->n_sample; i++) {
        if (p->sample[i]->n_location_id > maxdepth) {
            maxdepth = p->sample[i]->n_location_id;
        }
    }
    int32_t *tmp = arena_alloc(a, (maxdepth ? maxdepth : 1) * sizeof(int32_t));
    if (!sample_stack || !sample_attrs || !tmp) {
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        if (s->n_value != p->n_sample_type) {
            mt_failf(eb, "pprof: sample %zu has %zu values for %zu sample types", i, s->n_value,
                     p->n_sample_type);
            return MT_EINVAL;
        }
        for (size_t j = 0; j < s->n_location_id; j++) {
            int32_t li = lookup_id(&hl, s->location_id[j]);
            if (li <= 0) {
                mt_failf(eb, "pprof: sample %zu refers to unknown location %llu", i,
                         (unsigned long long)s->location_id[j]);
                return MT_EINVAL;
            }
            tmp[j] = li;
        }
        int32_t si = stack_intern(a, &hs, &stacks, tmp, s->n_location_id);
        if (si < 0) {
            return MT_ENOMEM;
        }
        sample_stack[i] = si;
        sample_attrs[i] = NULL;
        if (s->n_label) {
            sample_attrs[i] = arena_alloc(a, s->n_label * sizeof(int32_t));
            if (!sample_attrs[i]) {
                return MT_ENOMEM;
            }
        }
        for (size_t j = 0; j < s->n_label; j++) {
            const Perftools__Profiles__Label *l = s->label[j];
            if (!str_ok(&c, l->key, "label.key") || !str_ok(&c, l->str, "label.str") ||
                !str_ok(&c, l->num_unit, "label.num_unit")) {
                return MT_EINVAL;
            }
            if (l->key == 0) {
                mt_failf(eb, "pprof: sample %zu has a label without key", i);
                return MT_EINVAL;
            }
            /* key: (key, str, num, num_unit) as 32 bytes */
            int64_t *k = arena_alloc(a, 4 * sizeof(int64_t));
            if (!k) {
                return MT_ENOMEM;
            }
            k[0] = l->key, k[1] = l->str, k[2] = l->str ? 0 : l->num,
            k[3] = l->str ? 0 : l->num_unit;
            int added = 0;
            int64_t ai = htab_put(&ha, k, 4 * sizeof(int64_t), (int64_t)attrs.n, &added);
            if (ai < 0) {
                return MT_ENOMEM;
            }
            if (added) {
                o_kvu_t *kv = arena_alloc(a, sizeof(*kv));
                o_any_t *av = arena_alloc(a, sizeof(*av));
                if (!kv || !av || pvec_push(a, &attrs, kv) != MT_OK) {
                    return MT_ENOMEM;
                }
                opentelemetry__proto__profiles__v1development__key_value_and_unit__init(kv);
                opentelemetry__proto__common__v1__any_value__init(av);
                kv->key_strindex = (int32_t)l->key;
                if (l->str) {
                    av->value_case = ANY(STRING_VALUE);
                    av->string_value = p->string_table[l->str];
                } else {
                    av->value_case = ANY(INT_VALUE);
                    av->int_value = l->num;
                    kv->unit_strindex = (int32_t)l->num_unit;
                }
                kv->value = av;
            }
            sample_attrs[i][j] = (int32_t)ai;
        }
    }
    pprof_otlp_profile_t **profiles;
    pprof_otlp_req_t *r = req_new(a, m, p->n_sample_type, &profiles);
    if (!r) {
        return MT_ENOMEM;
    }
    pprof_otlp_dict_t *d = r->dictionary;
    d->string_table = p->string_table;
    d->n_string_table = p->n_string_table;
    d->mapping_table = maps;
    d->n_mapping_table = p->n_mapping + 1;
    d->function_table = funcs;
    d->n_function_table = p->n_function + 1;
    d->location_table = locs;
    d->n_location_table = p->n_location + 1;
    d->stack_table = (o_stack_t **)stacks.v;
    d->n_stack_table = stacks.n;
    d->attribute_table = (o_kvu_t **)attrs.v;
    d->n_attribute_table = attrs.n;
    o_link_t *zl = arena_alloc(a, sizeof(*zl));
    o_link_t **links = arena_alloc(a, sizeof(*links));
    if (!zl || !links) {
        return MT_ENOMEM;
    }
    opentelemetry__proto__profiles__v1development__link__init(zl);
    links[0] = zl;
    d->link_table = links;
    d->n_link_table = 1;
    for (size_t k = 0; k < p->n_sample_type; k++) {
        /* each sample type is its own OTLP profile with its own id; they share the
         * original payload, which the exporter sends once */
        uint8_t *pid = new_profile_id(a);
        pprof_otlp_profile_t *op = pid ? profile_new(a, m, pid) : NULL;
        if (!op) {
            return MT_ENOMEM;
        }
        op->sample_type =
            vt_new(a, (int32_t)p->sample_type[k]->type, (int32_t)p->sample_type[k]->unit);
        if (p->period_type) {
            op->period_type =
                vt_new(a, (int32_t)p->period_type->type, (int32_t)p->period_type->unit);
        }
        op->period = p->period;
        set_times(op, m, p->time_nanos, p->duration_nanos);
        size_t ns = 0;
        for (size_t i = 0; i < p->n_sample; i++) {
            ns += p->sample[i]->value[k] != 0;
        }
        op->samples = arena_alloc(a, (ns ? ns : 1) * sizeof(*op->samples));
        if (!op->sample_type || (p->period_type && !op->period_type) || !op->samples) {
            return MT_ENOMEM;
        }
        for (size_t i = 0; i < p->n_sample; i++) {
            const Perftools__Profiles__Sample *s = p->sample[i];
            if (s->value[k] == 0) {
                continue;
            }
            o_sample_t *os = arena_alloc(a, sizeof(*os));
            if (!os) {
                return MT_ENOMEM;
            }
            opentelemetry__proto__profiles__v1development__sample__init(os);
            os->stack_index = sample_stack[i];
            os->values = &s->value[k];
            os->n_values = 1;
            os->attribute_indices = sample_attrs[i];
            os->n_attribute_indices = s->n_label;
            op->samples[op->n_samples++] = os;
        }
        profiles[k] = op;
    }
    *out = r;
    *nprofiles = p->n_sample_type;
    return MT_OK;
}

/* ---- folded -> OTLP ---------------------------------------------------------------------- */

typedef struct strtab {
    htab_t h;
    pvec_t v;
} strtab_t;

static int32_t str_intern(arena_t *a, strtab_t *t, const char *s, size_t n)
{
    int64_t idx = htab_get(&t->h, s, n);
    if (idx >= 0) {
        return (int32_t)idx;
    }
    char *copy = arena_strndup(a, s, n);
    int added = 0;
    if (!copy || htab_put(&t->h, copy, n, (int64_t)t->v.n, &added) < 0 ||
        pvec_push(a, &t->v, copy) != MT_OK) {
        return -1;
    }
    return (int32_t)(t->v.n - 1);
}

int pprof_folded_to_otlp(const char *text, size_t len, int lines, const pprof_meta_t *m, arena_t *a,
                         pprof_otlp_req_t **out, uint64_t *nprofiles, mt_errbuf_t *eb)
{
    const char *units = m->units && *m->units ? m->units : "samples";
    const char *aggr = m->aggregation && *m->aggregation ? m->aggregation : "sum";
    if (strcmp(units, "samples") && strcmp(units, "objects") && strcmp(units, "bytes")) {
        mt_failf(eb, "units \"%.40s\" is not samples, objects or bytes", units);
        return MT_EINVAL;
    }
    if (strcmp(aggr, "sum") && strcmp(aggr, "average")) {
        mt_failf(eb, "aggregationType \"%.40s\" is not sum or average", aggr);
        return MT_EINVAL;
    }
    strtab_t st = {0};
    htab_t hfunc, hstack;
    pvec_t funcs = {0}, locs = {0}, stacks = {0}, samples = {0};
    if (htab_init(&st.h, a, 256) != MT_OK || htab_init(&hfunc, a, 256) != MT_OK ||
        htab_init(&hstack, a, 256) != MT_OK) {
        return MT_ENOMEM;
    }
    o_func_t *f0 = arena_calloc(a, sizeof(*f0));
    o_loc_t *l0 = arena_calloc(a, sizeof(*l0));
    int32_t *frames = arena_alloc(a, PPROF_MAX_FRAMES * sizeof(int32_t));
    if (!f0 || !l0 || !frames || str_intern(a, &st, "", 0) != 0 ||
        pvec_push(a, &funcs, f0) != MT_OK || pvec_push(a, &locs, l0) != MT_OK ||
        stack_intern(a, &hstack, &stacks, NULL, 0) != 0) {
        return MT_ENOMEM;
    }
    opentelemetry__proto__profiles__v1development__function__init(f0);
    opentelemetry__proto__profiles__v1development__location__init(l0);
    size_t lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        const char *ls = p;
        p = nl ? nl + 1 : end;
        while (le > ls && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t')) {
            le--;
        }
        if (le == ls) {
            continue;
        }
        int64_t count = 1;
        const char *stack_end = le;
        if (!lines) {
            const char *sp = le;
            while (sp > ls && sp[-1] != ' ') {
                sp--;
            }
            if (sp == ls) {
                mt_failf(eb, "folded line %zu: expected \"frame;frame;... count\"", lineno);
                return MT_EINVAL;
            }
            count = 0;
            for (const char *q = sp; q < le; q++) {
                if (*q < '0' || *q > '9' || count > (INT64_MAX - 9) / 10) {
                    mt_failf(eb, "folded line %zu: count \"%.*s\" is not a non-negative integer",
                             lineno, (int)(le - sp > 30 ? 30 : le - sp), sp);
                    return MT_EINVAL;
                }
                count = count * 10 + (*q - '0');
            }
            stack_end = sp - 1;
            while (stack_end > ls && stack_end[-1] == ' ') {
                stack_end--;
            }
            if (stack_end == ls) {
                mt_failf(eb, "folded line %zu: empty stack", lineno);
                return MT_EINVAL;
            }
        }
        if (count == 0) {
            continue;
        }
        /* frames are root first; OTLP stacks are leaf first: fill from the back */
        size_t nf = 0;
        const char *fs = ls;
        while (fs <= stack_end) {
            const char *semi = memchr(fs, ';', (size_t)(stack_end - fs));
            const char *fe = semi ? semi : stack_end;
            if (fe == fs) {
                mt_failf(eb, "folded line %zu: empty frame name", lineno);
                return MT_EINVAL;
            }
            if (nf == PPROF_MAX_FRAMES) {
                mt_failf(eb, "folded line %zu: more than %d frames", lineno, PPROF_MAX_FRAMES);
                return MT_EINVAL;
            }
            int32_t si = str_intern(a, &st, fs, (size_t)(fe - fs));
            if (si < 0) {
                return MT_ENOMEM;
            }
            /* one function and one location per distinct frame name */
            int added = 0;
            int64_t li = htab_put(&hfunc, st.v.v[si], (size_t)(fe - fs), (int64_t)locs.n, &added);
            if (li < 0) {
                return MT_ENOMEM;
            }
            if (added) {
                o_func_t *f = arena_alloc(a, sizeof(*f));
                o_loc_t *l = arena_alloc(a, sizeof(*l));
                o_line_t *ln = arena_alloc(a, sizeof(*ln));
                o_line_t **lns = arena_alloc(a, sizeof(*lns));
                if (!f || !l || !ln || !lns || pvec_push(a, &funcs, f) != MT_OK ||
                    pvec_push(a, &locs, l) != MT_OK) {
                    return MT_ENOMEM;
                }
                opentelemetry__proto__profiles__v1development__function__init(f);
                opentelemetry__proto__profiles__v1development__location__init(l);
                opentelemetry__proto__profiles__v1development__line__init(ln);
                f->name_strindex = si;
                ln->function_index = (int32_t)(funcs.n - 1);
                lns[0] = ln;
                l->lines = lns;
                l->n_lines = 1;
            }
            frames[nf++] = (int32_t)li;
            if (!semi) {
                break;
            }
            fs = semi + 1;
        }
        for (size_t i = 0; i < nf / 2; i++) {
            int32_t t = frames[i];
            frames[i] = frames[nf - 1 - i];
            frames[nf - 1 - i] = t;
        }
        size_t before = stacks.n;
        int32_t sidx = stack_intern(a, &hstack, &stacks, frames, nf);
        if (sidx < 0) {
            return MT_ENOMEM;
        }
        if (stacks.n == before) {
            /* same stack again: merge into its sample (samples are created in stack order) */
            o_sample_t *s = samples.v[sidx - 1];
            if (s->values[0] > INT64_MAX - count) {
                mt_failf(eb, "folded line %zu: count overflows", lineno);
                return MT_EINVAL;
            }
            s->values[0] += count;
            continue;
        }
        o_sample_t *s = arena_alloc(a, sizeof(*s));
        int64_t *v = arena_alloc(a, sizeof(*v));
        if (!s || !v || pvec_push(a, &samples, s) != MT_OK) {
            return MT_ENOMEM;
        }
        opentelemetry__proto__profiles__v1development__sample__init(s);
        *v = count;
        s->values = v;
        s->n_values = 1;
        s->stack_index = sidx;
    }
    /* sample type from the name's suffix or units; CPU samples carry their period */
    const char *type, *unit;
    pyro_legacy_folded_type(m->app, units, &type, &unit);
    int32_t ti = str_intern(a, &st, type, strlen(type));
    int32_t ui = str_intern(a, &st, unit, strlen(unit));
    int32_t pti = str_intern(a, &st, "cpu", 3);
    int32_t pui = str_intern(a, &st, "nanoseconds", 11);
    pprof_otlp_profile_t **profiles;
    pprof_otlp_req_t *r = req_new(a, m, 1, &profiles);
    uint8_t *pid = new_profile_id(a);
    o_mapping_t *m0 = arena_alloc(a, sizeof(*m0));
    o_mapping_t **maps = arena_alloc(a, sizeof(*maps));
    o_kvu_t *a0 = arena_alloc(a, sizeof(*a0));
    o_kvu_t **attrs = arena_alloc(a, sizeof(*attrs));
    o_link_t *k0 = arena_alloc(a, sizeof(*k0));
    o_link_t **links = arena_alloc(a, sizeof(*links));
    if (ti < 0 || ui < 0 || pti < 0 || pui < 0 || !r || !pid || !m0 || !maps || !a0 || !attrs ||
        !k0 || !links) {
        return MT_ENOMEM;
    }
    opentelemetry__proto__profiles__v1development__mapping__init(m0);
    opentelemetry__proto__profiles__v1development__key_value_and_unit__init(a0);
    opentelemetry__proto__profiles__v1development__link__init(k0);
    maps[0] = m0, attrs[0] = a0, links[0] = k0;
    pprof_meta_t mm = *m;
    mm.original = NULL; /* folded text is not pprof: nothing to forward as-is */
    pprof_otlp_profile_t *op = profile_new(a, &mm, pid);
    if (!op) {
        return MT_ENOMEM;
    }
    op->sample_type = vt_new(a, ti, ui);
    if (!strcmp(type, "samples")) {
        int64_t rate = m->sample_rate > 0 ? m->sample_rate : 100;
        op->period_type = vt_new(a, pti, pui);
        op->period = 1000000000 / rate;
        if (!op->period_type) {
            return MT_ENOMEM;
        }
    }
    if (!op->sample_type) {
        return MT_ENOMEM;
    }
    set_times(op, m, 0, 0);
    op->samples = (o_sample_t **)samples.v;
    op->n_samples = samples.n;
    profiles[0] = op;
    pprof_otlp_dict_t *d = r->dictionary;
    d->string_table = (char **)st.v.v;
    d->n_string_table = st.v.n;
    d->function_table = (o_func_t **)funcs.v;
    d->n_function_table = funcs.n;
    d->location_table = (o_loc_t **)locs.v;
    d->n_location_table = locs.n;
    d->stack_table = (o_stack_t **)stacks.v;
    d->n_stack_table = stacks.n;
    d->mapping_table = maps;
    d->n_mapping_table = 1;
    d->attribute_table = attrs;
    d->n_attribute_table = 1;
    d->link_table = links;
    d->n_link_table = 1;
    *out = r;
    *nprofiles = 1;
    return MT_OK;
}

/* ---- OTLP -> pprof ----------------------------------------------------------------------- */

typedef struct o2p {
    arena_t *a;
    const pprof_otlp_dict_t *d;
    mt_errbuf_t *eb;
    strtab_t st;
    int64_t *str_map;                    /* OTLP string index -> pprof index (0 = not yet) */
    uint64_t *loc_id, *func_id, *map_id; /* OTLP index -> pprof id (0 = not yet) */
    pvec_t locs, funcs, maps;
} o2p_t;

static int64_t o2p_str(o2p_t *c, int32_t i)
{
    if (i <= 0) {
        return 0;
    }
    if ((size_t)i >= c->d->n_string_table) {
        mt_failf(c->eb, "profile refers to string %d of %zu", i, c->d->n_string_table);
        return -1;
    }
    if (!c->str_map[i]) {
        const char *s = c->d->string_table[i];
        int32_t v = str_intern(c->a, &c->st, s, strlen(s));
        if (v < 0) {
            mt_failf(c->eb, "out of memory");
            return -1;
        }
        c->str_map[i] = v;
    }
    return c->str_map[i];
}

static int64_t o2p_cstr(o2p_t *c, const char *s)
{
    int32_t v = str_intern(c->a, &c->st, s, strlen(s));
    if (v < 0) {
        mt_failf(c->eb, "out of memory");
    }
    return v;
}

static int64_t o2p_func(o2p_t *c, int32_t i)
{
    if (i <= 0) {
        return 0;
    }
    if ((size_t)i >= c->d->n_function_table) {
        mt_failf(c->eb, "profile refers to function %d of %zu", i, c->d->n_function_table);
        return -1;
    }
    if (!c->func_id[i]) {
        const o_func_t *of = c->d->function_table[i];
        Perftools__Profiles__Function *f = arena_alloc(c->a, sizeof(*f));
        if (!f) {
            return -1;
        }
        perftools__profiles__function__init(f);
        f->id = c->funcs.n + 1;
        if ((f->name = o2p_str(c, of->name_strindex)) < 0 ||
            (f->system_name = o2p_str(c, of->system_name_strindex)) < 0 ||
            (f->filename = o2p_str(c, of->filename_strindex)) < 0) {
            return -1;
        }
        f->start_line = of->start_line;
        if (pvec_push(c->a, &c->funcs, f) != MT_OK) {
            return -1;
        }
        c->func_id[i] = f->id;
    }
    return (int64_t)c->func_id[i];
}

static int64_t o2p_mapping(o2p_t *c, int32_t i)
{
    if (i <= 0) {
        return 0;
    }
    if ((size_t)i >= c->d->n_mapping_table) {
        mt_failf(c->eb, "profile refers to mapping %d of %zu", i, c->d->n_mapping_table);
        return -1;
    }
    if (!c->map_id[i]) {
        const o_mapping_t *om = c->d->mapping_table[i];
        Perftools__Profiles__Mapping *pm = arena_alloc(c->a, sizeof(*pm));
        if (!pm) {
            return -1;
        }
        perftools__profiles__mapping__init(pm);
        pm->id = c->maps.n + 1;
        pm->memory_start = om->memory_start;
        pm->memory_limit = om->memory_limit;
        pm->file_offset = om->file_offset;
        if ((pm->filename = o2p_str(c, om->filename_strindex)) < 0) {
            return -1;
        }
        /* build id travels as a mapping attribute in OTLP */
        for (size_t k = 0; k < om->n_attribute_indices; k++) {
            int32_t ai = om->attribute_indices[k];
            if (ai <= 0 || (size_t)ai >= c->d->n_attribute_table) {
                continue;
            }
            const o_kvu_t *kv = c->d->attribute_table[ai];
            if (kv->key_strindex > 0 && (size_t)kv->key_strindex < c->d->n_string_table &&
                strcmp(c->d->string_table[kv->key_strindex], "process.executable.build_id.gnu") ==
                    0 &&
                kv->value && kv->value->value_case == ANY(STRING_VALUE)) {
                if ((pm->build_id = o2p_cstr(c, kv->value->string_value)) < 0) {
                    return -1;
                }
            }
        }
        /* the has_* flags start true and are cleared by locations lacking the data */
        pm->has_functions = pm->has_filenames = pm->has_line_numbers = 1;
        if (pvec_push(c->a, &c->maps, pm) != MT_OK) {
            return -1;
        }
        c->map_id[i] = pm->id;
    }
    return (int64_t)c->map_id[i];
}

static int64_t o2p_loc(o2p_t *c, int32_t i)
{
    if (i <= 0 || (size_t)i >= c->d->n_location_table) {
        mt_failf(c->eb, "stack refers to location %d of %zu", i, c->d->n_location_table);
        return -1;
    }
    if (!c->loc_id[i]) {
        const o_loc_t *ol = c->d->location_table[i];
        Perftools__Profiles__Location *pl = arena_alloc(c->a, sizeof(*pl));
        if (!pl) {
            return -1;
        }
        perftools__profiles__location__init(pl);
        pl->id = c->locs.n + 1;
        int64_t mid = o2p_mapping(c, ol->mapping_index);
        if (mid < 0) {
            return -1;
        }
        pl->mapping_id = (uint64_t)mid;
        pl->address = ol->address;
        if (ol->n_lines) {
            pl->line = arena_alloc(c->a, ol->n_lines * sizeof(*pl->line));
            if (!pl->line) {
                return -1;
            }
        }
        int has_func = ol->n_lines > 0, has_file = ol->n_lines > 0, has_line = ol->n_lines > 0;
        for (size_t j = 0; j < ol->n_lines; j++) {
            Perftools__Profiles__Line *ln = arena_alloc(c->a, sizeof(*ln));
            if (!ln) {
                return -1;
            }
            perftools__profiles__line__init(ln);
            int64_t fid = o2p_func(c, ol->lines[j]->function_index);
            if (fid < 0) {
                return -1;
            }
            ln->function_id = (uint64_t)fid;
            ln->line = ol->lines[j]->line;
            ln->column = ol->lines[j]->column;
            pl->line[pl->n_line++] = ln;
            has_func &= fid > 0;
            has_line &= ln->line > 0;
            has_file &=
                fid > 0 && ((Perftools__Profiles__Function *)c->funcs.v[fid - 1])->filename > 0;
        }
        if (mid > 0) {
            Perftools__Profiles__Mapping *pm = c->maps.v[mid - 1];
            pm->has_functions &= has_func;
            pm->has_filenames &= has_file;
            pm->has_line_numbers &= has_line;
            pm->has_inline_frames |= ol->n_lines > 1;
        }
        if (pvec_push(c->a, &c->locs, pl) != MT_OK) {
            return -1;
        }
        c->loc_id[i] = pl->id;
    }
    return (int64_t)c->loc_id[i];
}

static int add_label_str(o2p_t *c, pvec_t *labels, const char *k, const char *v)
{
    Perftools__Profiles__Label *l = arena_alloc(c->a, sizeof(*l));
    if (!l) {
        return -1;
    }
    perftools__profiles__label__init(l);
    if ((l->key = o2p_cstr(c, k)) < 0 || (l->str = o2p_cstr(c, v)) < 0) {
        return -1;
    }
    return pvec_push(c->a, labels, l) == MT_OK ? 0 : -1;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char dig[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = dig[b[i] >> 4];
        out[2 * i + 1] = dig[b[i] & 15];
    }
    out[2 * n] = 0;
}

static int o2p_sample(o2p_t *c, const o_sample_t *os, Perftools__Profiles__Sample *ps)
{
    const pprof_otlp_dict_t *d = c->d;
    if (os->stack_index < 0 || (size_t)os->stack_index >= d->n_stack_table) {
        mt_failf(c->eb, "sample refers to stack %d of %zu", os->stack_index, d->n_stack_table);
        return -1;
    }
    const o_stack_t *stk = d->stack_table[os->stack_index];
    if (stk->n_location_indices) {
        ps->location_id = arena_alloc(c->a, stk->n_location_indices * sizeof(uint64_t));
        if (!ps->location_id) {
            return -1;
        }
    }
    for (size_t j = 0; j < stk->n_location_indices; j++) {
        int64_t id = o2p_loc(c, stk->location_indices[j]);
        if (id < 0) {
            return -1;
        }
        ps->location_id[ps->n_location_id++] = (uint64_t)id;
    }
    /* one value: the sum of the sample's values, or the number of timestamps */
    int64_t v = 0;
    if (os->n_values) {
        for (size_t j = 0; j < os->n_values; j++) {
            v += os->values[j];
        }
    } else {
        v = (int64_t)os->n_timestamps_unix_nano;
    }
    int64_t *vp = arena_alloc(c->a, sizeof(*vp));
    if (!vp) {
        return -1;
    }
    *vp = v;
    ps->value = vp;
    ps->n_value = 1;
    pvec_t labels = {0};
    for (size_t j = 0; j < os->n_attribute_indices; j++) {
        int32_t ai = os->attribute_indices[j];
        if (ai < 0 || (size_t)ai >= d->n_attribute_table) {
            mt_failf(c->eb, "sample refers to attribute %d of %zu", ai, d->n_attribute_table);
            return -1;
        }
        const o_kvu_t *kv = d->attribute_table[ai];
        if (ai == 0 || !kv->value) {
            continue;
        }
        Perftools__Profiles__Label *l = arena_alloc(c->a, sizeof(*l));
        if (!l) {
            return -1;
        }
        perftools__profiles__label__init(l);
        if ((l->key = o2p_str(c, kv->key_strindex)) < 0) {
            return -1;
        }
        if (l->key == 0) {
            continue;
        }
        const o_any_t *av = kv->value;
        char buf[64];
        switch (av->value_case) {
        case ANY(STRING_VALUE):
            l->str = o2p_cstr(c, av->string_value);
            break;
        case ANY(STRING_VALUE_STRINDEX):
            l->str = o2p_str(c, av->string_value_strindex);
            break;
        case ANY(INT_VALUE):
            l->num = av->int_value;
            l->num_unit = o2p_str(c, kv->unit_strindex);
            break;
        case ANY(BOOL_VALUE):
            l->str = o2p_cstr(c, av->bool_value ? "true" : "false");
            break;
        case ANY(DOUBLE_VALUE):
            snprintf(buf, sizeof(buf), "%.17g", av->double_value);
            l->str = o2p_cstr(c, buf);
            break;
        default:
            continue; /* arrays, maps, bytes: pprof labels cannot hold them */
        }
        if (l->str < 0 || l->num_unit < 0 || pvec_push(c->a, &labels, l) != MT_OK) {
            return -1;
        }
    }
    if (os->link_index > 0) {
        if ((size_t)os->link_index >= d->n_link_table) {
            mt_failf(c->eb, "sample refers to link %d of %zu", os->link_index, d->n_link_table);
            return -1;
        }
        const o_link_t *lk = d->link_table[os->link_index];
        char h[40];
        if (lk->span_id.len == 8) {
            hex(lk->span_id.data, 8, h);
            if (add_label_str(c, &labels, "span_id", h) < 0) {
                return -1;
            }
        }
        if (lk->trace_id.len == 16) {
            hex(lk->trace_id.data, 16, h);
            if (add_label_str(c, &labels, "trace_id", h) < 0) {
                return -1;
            }
        }
    }
    ps->label = (Perftools__Profiles__Label **)labels.v;
    ps->n_label = labels.n;
    return 0;
}

int pprof_from_otlp(const pprof_otlp_dict_t *d, const pprof_otlp_profile_t *p, uint8_t **out,
                    size_t *len, mt_errbuf_t *eb)
{
    *out = NULL;
    *len = 0;
    if (!d || d->n_string_table == 0) {
        mt_failf(eb, "profile request has no dictionary (string_table is empty)");
        return MT_EINVAL;
    }
    arena_t *a = arena_create(64 * 1024, 0);
    if (!a) {
        return MT_ENOMEM;
    }
    o2p_t c;
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.d = d;
    c.eb = eb;
    int rc = MT_ENOMEM;
    c.str_map = arena_calloc(a, d->n_string_table * sizeof(*c.str_map));
    c.loc_id = arena_calloc(a, (d->n_location_table + 1) * sizeof(uint64_t));
    c.func_id = arena_calloc(a, (d->n_function_table + 1) * sizeof(uint64_t));
    c.map_id = arena_calloc(a, (d->n_mapping_table + 1) * sizeof(uint64_t));
    if (!c.str_map || !c.loc_id || !c.func_id || !c.map_id || htab_init(&c.st.h, a, 256) != MT_OK ||
        str_intern(a, &c.st, "", 0) != 0) {
        goto out;
    }
    p_prof_t pp = PERFTOOLS__PROFILES__PROFILE__INIT;
    Perftools__Profiles__ValueType st = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    Perftools__Profiles__ValueType pt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    Perftools__Profiles__ValueType *stp = &st;
    rc = MT_EINVAL;
    if (p->sample_type) {
        if ((st.type = o2p_str(&c, p->sample_type->type_strindex)) < 0 ||
            (st.unit = o2p_str(&c, p->sample_type->unit_strindex)) < 0) {
            goto out;
        }
    }
    pp.sample_type = &stp;
    pp.n_sample_type = 1;
    pp.default_sample_type = st.type;
    if (p->period_type) {
        if ((pt.type = o2p_str(&c, p->period_type->type_strindex)) < 0 ||
            (pt.unit = o2p_str(&c, p->period_type->unit_strindex)) < 0) {
            goto out;
        }
        pp.period_type = &pt;
    }
    pp.period = p->period;
    pp.time_nanos = (int64_t)p->time_unix_nano;
    pp.duration_nanos = (int64_t)p->duration_nano;
    if (p->n_samples) {
        pp.sample = arena_alloc(a, p->n_samples * sizeof(*pp.sample));
        if (!pp.sample) {
            rc = MT_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < p->n_samples; i++) {
        Perftools__Profiles__Sample *ps = arena_alloc(a, sizeof(*ps));
        if (!ps) {
            rc = MT_ENOMEM;
            goto out;
        }
        perftools__profiles__sample__init(ps);
        if (o2p_sample(&c, p->samples[i], ps) < 0) {
            if (!eb->set) {
                rc = MT_ENOMEM;
            }
            goto out;
        }
        pp.sample[pp.n_sample++] = ps;
    }
    pp.location = (Perftools__Profiles__Location **)c.locs.v;
    pp.n_location = c.locs.n;
    pp.function = (Perftools__Profiles__Function **)c.funcs.v;
    pp.n_function = c.funcs.n;
    pp.mapping = (Perftools__Profiles__Mapping **)c.maps.v;
    pp.n_mapping = c.maps.n;
    pp.string_table = (char **)c.st.v.v;
    pp.n_string_table = c.st.v.n;
    size_t n = perftools__profiles__profile__get_packed_size(&pp);
    *out = malloc(n ? n : 1);
    if (!*out) {
        rc = MT_ENOMEM;
        goto out;
    }
    *len = perftools__profiles__profile__pack(&pp, *out);
    rc = MT_OK;
out:
    arena_destroy(a);
    return rc;
}

/* ---- multipart/form-data ----------------------------------------------------------------- */

int pprof_multipart_boundary(const char *ctype, char *out, size_t outlen, const char **why)
{
    *why = "Content-Type is not multipart/form-data";
    if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
        return 0;
    }
    const char *p = ctype + 19;
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t') {
            p++;
        }
        if (strncasecmp(p, "boundary=", 9) == 0) {
            p += 9;
            size_t n = 0;
            if (*p == '"') {
                const char *q = strchr(p + 1, '"');
                if (!q) {
                    *why = "unterminated quoted boundary";
                    return 0;
                }
                n = (size_t)(q - p - 1);
                p++;
            } else {
                n = strcspn(p, "; \t");
            }
            /* RFC 2046: 1..70 characters */
            if (n == 0 || n > 70 || n >= outlen) {
                *why = "multipart boundary must be 1..70 characters";
                return 0;
            }
            memcpy(out, p, n);
            out[n] = 0;
            return 1;
        }
        p += strcspn(p, ";");
    }
    *why = "multipart/form-data without boundary";
    return 0;
}

static const uint8_t *find_bytes(const uint8_t *h, size_t hl, const char *n, size_t nl)
{
    if (nl == 0 || hl < nl) {
        return NULL;
    }
    return memmem(h, hl, n, nl);
}

/* Reads a header parameter like name="x" from a Content-Disposition value. */
static char *disp_param(arena_t *a, const char *v, size_t vl, const char *param)
{
    size_t pl = strlen(param);
    const char *p = v, *end = v + vl;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *se = semi ? semi : end;
        while (p < se && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if ((size_t)(se - p) > pl && strncasecmp(p, param, pl) == 0 && p[pl] == '=') {
            const char *val = p + pl + 1;
            size_t n = (size_t)(se - val);
            if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
                val++, n -= 2;
            }
            return arena_strndup(a, val, n);
        }
        p = se + 1;
    }
    return NULL;
}

int pprof_multipart_parse(const char *boundary, const uint8_t *body, size_t len, arena_t *a,
                          pprof_part_t *parts, size_t *nparts, mt_errbuf_t *eb)
{
    *nparts = 0;
    char delim[80];
    int dl = snprintf(delim, sizeof(delim), "--%s", boundary);
    if (dl <= 2 || (size_t)dl >= sizeof(delim)) {
        mt_failf(eb, "bad multipart boundary");
        return MT_EINVAL;
    }
    /* the body starts with the first delimiter (a preamble is allowed before "\r\n--b") */
    const uint8_t *p;
    if (len >= (size_t)dl && memcmp(body, delim, (size_t)dl) == 0) {
        p = body;
    } else {
        char d2[84];
        int n2 = snprintf(d2, sizeof(d2), "\r\n%s", delim);
        p = find_bytes(body, len, d2, (size_t)n2);
        if (!p) {
            mt_failf(eb, "multipart body has no boundary \"%s\"", boundary);
            return MT_EINVAL;
        }
        p += 2;
    }
    const uint8_t *end = body + len;
    char next[84];
    int nl = snprintf(next, sizeof(next), "\r\n%s", delim);
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            return *nparts ? MT_OK : (mt_failf(eb, "multipart body has no parts"), MT_EINVAL);
        }
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++; /* transport padding */
        }
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            mt_failf(eb, "multipart: delimiter not followed by CRLF");
            return MT_EINVAL;
        }
        p += 2;
        if (*nparts == PPROF_MAX_PARTS) {
            mt_failf(eb, "multipart body has more than %d parts", PPROF_MAX_PARTS);
            return MT_EINVAL;
        }
        /* headers up to an empty line */
        const uint8_t *hend = find_bytes(p, (size_t)(end - p), "\r\n\r\n", 4);
        const uint8_t *hstart = p;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p - 2; /* no headers at all */
        }
        if (!hend) {
            mt_failf(eb, "multipart part %zu: headers not terminated", *nparts + 1);
            return MT_EINVAL;
        }
        pprof_part_t *part = &parts[*nparts];
        memset(part, 0, sizeof(*part));
        const uint8_t *h = hstart;
        while (h < hend) {
            const uint8_t *eol = find_bytes(h, (size_t)(hend - h) + 2, "\r\n", 2);
            const uint8_t *he = eol ? eol : hend;
            const uint8_t *colon = memchr(h, ':', (size_t)(he - h));
            if (!colon) {
                mt_failf(eb, "multipart part %zu: malformed header line", *nparts + 1);
                return MT_EINVAL;
            }
            if ((size_t)(colon - h) == 19 &&
                strncasecmp((const char *)h, "Content-Disposition", 19) == 0) {
                const char *v = (const char *)colon + 1;
                size_t vl = (size_t)((const char *)he - v);
                while (vl && (*v == ' ' || *v == '\t')) {
                    v++, vl--;
                }
                if (vl < 9 || strncasecmp(v, "form-data", 9) != 0) {
                    mt_failf(eb, "multipart part %zu: Content-Disposition is not form-data",
                             *nparts + 1);
                    return MT_EINVAL;
                }
                part->name = disp_param(a, v + 9, vl - 9, "name");
                part->filename = disp_param(a, v + 9, vl - 9, "filename");
            }
            h = he + 2;
        }
        if (!part->name || !*part->name) {
            mt_failf(eb, "multipart part %zu: no Content-Disposition form-data name", *nparts + 1);
            return MT_EINVAL;
        }
        if (!part->filename) {
            part->filename = "";
        }
        const uint8_t *data = hend + 4;
        const uint8_t *de = find_bytes(data, (size_t)(end - data), next, (size_t)nl);
        if (!de) {
            mt_failf(eb, "multipart part \"%.60s\": no closing boundary", part->name);
            return MT_EINVAL;
        }
        part->data = data;
        part->len = (size_t)(de - data);
        (*nparts)++;
        p = de + 2;
    }
}
