/*
 * pprof_conv_int.h - PRIVATE to the formats/pprof_conv module (pprof_conv.c,
 * pprof_conv_folded.c, pprof_conv_from_otlp.c, pprof_conv_multipart.c): the OTLP profile type
 * names, the byte-keyed hash, growable arrays and OTLP building blocks its parts share. Other
 * modules use pprof_conv.h and must not include this header.
 */
#ifndef COLLECTOR_FORMATS_PPROF_CONV_INT_H
#define COLLECTOR_FORMATS_PPROF_CONV_INT_H

#include "pprof_conv.h"
#include "pyro_legacy.h"
#include "otlp.h"

#include <stddef.h>
#include <stdint.h>

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

/* ---- growable pointer arrays (arena) ---------------------------------------------------- */

typedef struct pvec {
    void **v;
    size_t n, cap;
} pvec_t;

/* strings interned into a string table (pprof_str_intern) */
typedef struct strtab {
    htab_t h;
    pvec_t v;
} strtab_t;

/* pprof_conv.c */
int pprof_htab_init(htab_t *t, arena_t *a, size_t hint);
int64_t pprof_htab_get(const htab_t *t, const void *k, size_t kl);
int64_t pprof_htab_put(htab_t *t, const void *k, size_t kl, int64_t v, int *added);
int pprof_pvec_push(arena_t *a, pvec_t *p, void *x);
o_vt_t *pprof_vt_new(arena_t *a, int32_t type, int32_t unit);
pprof_otlp_req_t *pprof_req_new(arena_t *a, const pprof_meta_t *m, size_t np,
                                pprof_otlp_profile_t ***profiles);
pprof_otlp_profile_t *pprof_profile_new(arena_t *a, const pprof_meta_t *m, const uint8_t id[16]);
uint8_t *pprof_new_profile_id(arena_t *a);
void pprof_set_times(pprof_otlp_profile_t *p, const pprof_meta_t *m, int64_t t, int64_t d);
int32_t pprof_stack_intern(arena_t *a, htab_t *h, pvec_t *stacks, const int32_t *locs, size_t n);

/* pprof_conv_folded.c */
int32_t pprof_str_intern(arena_t *a, strtab_t *t, const char *s, size_t n);

#endif
