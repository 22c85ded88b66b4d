/*
 * pprof_conv.c - pprof <-> OTLP profiles, folded text -> OTLP, Pyroscope app names and
 * multipart/form-data bodies (see pprof_conv.h). Decoding allocates from the request arena;
 * pprof_from_otlp uses a private arena and returns one malloc'd buffer. Lookups (pprof ids,
 * strings, stacks, attributes) use one small open-addressing hash keyed by bytes, so every
 * conversion is linear in its input.
 *
 * The module's parts (sharing the private pprof_conv_int.h): pprof_conv.c (the hash, arrays,
 * app names, OTLP building blocks, pprof -> OTLP), pprof_conv_folded.c (folded -> OTLP),
 * pprof_conv_from_otlp.c (OTLP -> pprof) and pprof_conv_multipart.c (multipart/form-data).
 */
#include "pprof_conv.h"
#include "pyro_legacy.h"
#include "otlp.h"
#include "pprof_conv_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static uint64_t hash_bytes(const void *p, size_t n)
{
    uint64_t h = mt_fnv1a(MT_FNV_BASIS, p, n);
    return h ^ (h >> 29);
}

int pprof_htab_init(htab_t *t, arena_t *a, size_t hint)
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
int64_t pprof_htab_get(const htab_t *t, const void *k, size_t kl)
{
    size_t i = htab_slot(t, k, kl);
    return t->keys[i] ? t->vals[i] : -1;
}

/* Inserts key -> v unless present. The key bytes must outlive the table. Returns the value
 * stored for the key (v if new), or -2 on out of memory. *added says which. */
int64_t pprof_htab_put(htab_t *t, const void *k, size_t kl, int64_t v, int *added)
{
    if ((t->n + 1) * 2 > t->cap) {
        htab_t nt;
        if (pprof_htab_init(&nt, t->a, t->cap) != MT_OK) {
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

int pprof_pvec_push(arena_t *a, pvec_t *p, void *x)
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

o_vt_t *pprof_vt_new(arena_t *a, int32_t type, int32_t unit)
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
pprof_otlp_req_t *pprof_req_new(arena_t *a, const pprof_meta_t *m, size_t np,
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

pprof_otlp_profile_t *pprof_profile_new(arena_t *a, const pprof_meta_t *m, const uint8_t id[16])
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
uint8_t *pprof_new_profile_id(arena_t *a)
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
void pprof_set_times(pprof_otlp_profile_t *p, const pprof_meta_t *m, int64_t t, int64_t d)
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
int32_t pprof_stack_intern(arena_t *a, htab_t *h, pvec_t *stacks, const int32_t *locs, size_t n)
{
    int32_t *copy = arena_alloc(a, (n ? n : 1) * sizeof(*copy));
    if (!copy) {
        return -2;
    }
    if (n) {
        memcpy(copy, locs, n * sizeof(*copy));
    }
    int added = 0;
    int64_t idx = pprof_htab_put(h, copy, n * sizeof(*copy), (int64_t)stacks->n, &added);
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
        if (pprof_pvec_push(a, stacks, s) != MT_OK) {
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
    if (pprof_htab_init(h, c->a, n) != MT_OK) {
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const uint64_t *id = idof(c->p, i);
        if (*id == 0) {
            mt_failf(c->eb, "pprof: %s %zu has id 0 (ids must be nonzero)", what, i);
            return MT_EINVAL;
        }
        int added = 0;
        if (pprof_htab_put(h, id, sizeof(*id), (int64_t)i + 1, &added) < 0) {
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
    int64_t v = pprof_htab_get(h, &id, sizeof(id));
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
    if (pprof_htab_init(&hs, a, p->n_sample) != MT_OK || pprof_htab_init(&ha, a, 64) != MT_OK) {
        return MT_ENOMEM;
    }
    if (pprof_stack_intern(a, &hs, &stacks, NULL, 0) != 0) {
        return MT_ENOMEM;
    }
    o_kvu_t *zero_attr = arena_alloc(a, sizeof(*zero_attr));
    if (!zero_attr || pprof_pvec_push(a, &attrs, zero_attr) != MT_OK) {
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
        int32_t si = pprof_stack_intern(a, &hs, &stacks, tmp, s->n_location_id);
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
            int64_t ai = pprof_htab_put(&ha, k, 4 * sizeof(int64_t), (int64_t)attrs.n, &added);
            if (ai < 0) {
                return MT_ENOMEM;
            }
            if (added) {
                o_kvu_t *kv = arena_alloc(a, sizeof(*kv));
                o_any_t *av = arena_alloc(a, sizeof(*av));
                if (!kv || !av || pprof_pvec_push(a, &attrs, kv) != MT_OK) {
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
    pprof_otlp_req_t *r = pprof_req_new(a, m, p->n_sample_type, &profiles);
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
        uint8_t *pid = pprof_new_profile_id(a);
        pprof_otlp_profile_t *op = pid ? pprof_profile_new(a, m, pid) : NULL;
        if (!op) {
            return MT_ENOMEM;
        }
        op->sample_type =
            pprof_vt_new(a, (int32_t)p->sample_type[k]->type, (int32_t)p->sample_type[k]->unit);
        if (p->period_type) {
            op->period_type =
                pprof_vt_new(a, (int32_t)p->period_type->type, (int32_t)p->period_type->unit);
        }
        op->period = p->period;
        pprof_set_times(op, m, p->time_nanos, p->duration_nanos);
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
