/*
 * pprof_conv_from_otlp.c - OTLP profiles -> google pprof `profile.proto` (pprof_from_otlp):
 * string table, functions, mappings, locations and samples with their labels, built in a
 * private arena and returned as one malloc'd buffer. Part of the formats/pprof_conv module
 * (pprof_conv.c, see pprof_conv.h).
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
        int32_t v = pprof_str_intern(c->a, &c->st, s, strlen(s));
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
    int32_t v = pprof_str_intern(c->a, &c->st, s, strlen(s));
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
        if (pprof_pvec_push(c->a, &c->funcs, f) != MT_OK) {
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
        if (pprof_pvec_push(c->a, &c->maps, pm) != MT_OK) {
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
        if (pprof_pvec_push(c->a, &c->locs, pl) != MT_OK) {
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
    return pprof_pvec_push(c->a, labels, l) == MT_OK ? 0 : -1;
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
        if (l->str < 0 || l->num_unit < 0 || pprof_pvec_push(c->a, &labels, l) != MT_OK) {
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
    if (!c.str_map || !c.loc_id || !c.func_id || !c.map_id ||
        pprof_htab_init(&c.st.h, a, 256) != MT_OK || pprof_str_intern(a, &c.st, "", 0) != 0) {
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
