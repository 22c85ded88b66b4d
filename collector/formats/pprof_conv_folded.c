/*
 * pprof_conv_folded.c - the folded text format ("a;b;c 10" lines) -> OTLP profiles. Part of
 * the formats/pprof_conv module (pprof_conv.c, see pprof_conv.h).
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

/* ---- folded -> OTLP ---------------------------------------------------------------------- */

int32_t pprof_str_intern(arena_t *a, strtab_t *t, const char *s, size_t n)
{
    int64_t idx = pprof_htab_get(&t->h, s, n);
    if (idx >= 0) {
        return (int32_t)idx;
    }
    char *copy = arena_strndup(a, s, n);
    int added = 0;
    if (!copy || pprof_htab_put(&t->h, copy, n, (int64_t)t->v.n, &added) < 0 ||
        pprof_pvec_push(a, &t->v, copy) != MT_OK) {
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
    if (pprof_htab_init(&st.h, a, 256) != MT_OK || pprof_htab_init(&hfunc, a, 256) != MT_OK ||
        pprof_htab_init(&hstack, a, 256) != MT_OK) {
        return MT_ENOMEM;
    }
    o_func_t *f0 = arena_calloc(a, sizeof(*f0));
    o_loc_t *l0 = arena_calloc(a, sizeof(*l0));
    int32_t *frames = arena_alloc(a, PPROF_MAX_FRAMES * sizeof(int32_t));
    if (!f0 || !l0 || !frames || pprof_str_intern(a, &st, "", 0) != 0 ||
        pprof_pvec_push(a, &funcs, f0) != MT_OK || pprof_pvec_push(a, &locs, l0) != MT_OK ||
        pprof_stack_intern(a, &hstack, &stacks, NULL, 0) != 0) {
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
            int32_t si = pprof_str_intern(a, &st, fs, (size_t)(fe - fs));
            if (si < 0) {
                return MT_ENOMEM;
            }
            /* one function and one location per distinct frame name */
            int added = 0;
            int64_t li =
                pprof_htab_put(&hfunc, st.v.v[si], (size_t)(fe - fs), (int64_t)locs.n, &added);
            if (li < 0) {
                return MT_ENOMEM;
            }
            if (added) {
                o_func_t *f = arena_alloc(a, sizeof(*f));
                o_loc_t *l = arena_alloc(a, sizeof(*l));
                o_line_t *ln = arena_alloc(a, sizeof(*ln));
                o_line_t **lns = arena_alloc(a, sizeof(*lns));
                if (!f || !l || !ln || !lns || pprof_pvec_push(a, &funcs, f) != MT_OK ||
                    pprof_pvec_push(a, &locs, l) != MT_OK) {
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
        int32_t sidx = pprof_stack_intern(a, &hstack, &stacks, frames, nf);
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
        if (!s || !v || pprof_pvec_push(a, &samples, s) != MT_OK) {
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
    int32_t ti = pprof_str_intern(a, &st, type, strlen(type));
    int32_t ui = pprof_str_intern(a, &st, unit, strlen(unit));
    int32_t pti = pprof_str_intern(a, &st, "cpu", 3);
    int32_t pui = pprof_str_intern(a, &st, "nanoseconds", 11);
    pprof_otlp_profile_t **profiles;
    pprof_otlp_req_t *r = pprof_req_new(a, m, 1, &profiles);
    uint8_t *pid = pprof_new_profile_id(a);
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
    pprof_otlp_profile_t *op = pprof_profile_new(a, &mm, pid);
    if (!op) {
        return MT_ENOMEM;
    }
    op->sample_type = pprof_vt_new(a, ti, ui);
    if (!strcmp(type, "samples")) {
        int64_t rate = m->sample_rate > 0 ? m->sample_rate : 100;
        op->period_type = pprof_vt_new(a, pti, pui);
        op->period = 1000000000 / rate;
        if (!op->period_type) {
            return MT_ENOMEM;
        }
    }
    if (!op->sample_type) {
        return MT_ENOMEM;
    }
    pprof_set_times(op, m, 0, 0);
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
