/*
 * kafka_split.c - how the `kafka` exporter cuts an encoded request into messages. Everything
 * but per-trace partitioning works on the wire: a request is a run of resource records
 * (field 1), any run of them is itself a valid request, so a message is a slice of the queued
 * batch and costs no copy. Per-trace partitioning must regroup spans, so it decodes into the
 * worker's arena and packs one request per trace.
 */
#include "kafka_int.h"
#include "otlp.h"
#include "pbwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kx_vec_reserve(kx_vec_t *a, size_t need, size_t elsz)
{
    if (need <= a->cap) {
        return MT_OK;
    }
    size_t cap = a->cap ? a->cap : 16;
    while (cap < need) {
        cap *= 2;
    }
    void *v = realloc(a->v, cap * elsz);
    if (!v) {
        return MT_ENOMEM;
    }
    a->v = v;
    a->cap = cap;
    return MT_OK;
}

void kx_vec_free(kx_vec_t *a)
{
    free(a->v);
    memset(a, 0, sizeof(*a));
}

int kx_entries(const uint8_t *p, size_t n, kx_vec_t *out)
{
    const uint8_t *cur = p, *end = p + n;
    out->n = 0;
    for (;;) {
        const uint8_t *start = cur;
        wf_t f;
        int r = wnext(&cur, end, &f);
        if (r == 0) {
            return MT_OK;
        }
        if (r < 0) {
            return MT_EINVAL;
        }
        if (kx_vec_reserve(out, out->n + 1, sizeof(kx_slice_t)) != MT_OK) {
            return MT_ENOMEM;
        }
        ((kx_slice_t *)out->v)[out->n++] = (kx_slice_t){start, (size_t)(cur - start)};
    }
}

static int slice_cmp(const void *a, const void *b)
{
    const kx_slice_t *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

int kx_resource_key(const uint8_t *entry, size_t n, kx_vec_t *scratch, char key[17])
{
    const uint8_t *cur = entry, *end = entry + n;
    wf_t f;
    scratch->n = 0;
    /* the record itself, then its field 1 (resource), then the resource's field 1 (attributes) */
    if (wnext(&cur, end, &f) <= 0 || f.wt != 2) {
        return MT_EINVAL;
    }
    const uint8_t *rp = f.p, *re = f.p + f.n;
    const uint8_t *res = NULL;
    size_t resn = 0;
    int r;
    while ((r = wnext(&rp, re, &f)) > 0) {
        if (f.num == 1 && f.wt == 2) {
            res = f.p; /* the last one wins, as protobuf merges; good enough for a key */
            resn = f.n;
        }
    }
    if (r < 0) {
        return MT_EINVAL;
    }
    const uint8_t *ap = res, *ae = res ? res + resn : NULL;
    while (res && (r = wnext(&ap, ae, &f)) > 0) {
        if (f.num == 1 && f.wt == 2) {
            if (kx_vec_reserve(scratch, scratch->n + 1, sizeof(kx_slice_t)) != MT_OK) {
                return MT_ENOMEM;
            }
            ((kx_slice_t *)scratch->v)[scratch->n++] = (kx_slice_t){f.p, f.n};
        }
    }
    if (res && r < 0) {
        return MT_EINVAL;
    }
    kx_slice_t *s = scratch->v;
    qsort(s, scratch->n, sizeof(*s), slice_cmp);
    uint64_t h = MT_FNV_BASIS;
    for (size_t i = 0; i < scratch->n; i++) {
        uint32_t len = (uint32_t)s[i].n;
        h = mt_fnv1a(h, &len, sizeof(len));
        h = mt_fnv1a(h, s[i].p, s[i].n);
    }
    snprintf(key, 17, "%016llx", (unsigned long long)h);
    return MT_OK;
}

/* ---- per-trace regrouping --------------------------------------------------------------- */

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest trace_req_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans rspans_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans sspans_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

typedef struct span_ref {
    const span_t *sp;
    uint32_t ri, si, idx;
} span_ref_t;

static int valid_tid(const span_t *s)
{
    return s->trace_id.len == 16;
}

static int ref_cmp(const void *a, const void *b)
{
    const span_ref_t *x = a, *y = b;
    int vx = valid_tid(x->sp), vy = valid_tid(y->sp);
    if (vx != vy) {
        return vx - vy; /* spans without an id first, in one group */
    }
    int c = vx ? memcmp(x->sp->trace_id.data, y->sp->trace_id.data, 16) : 0;
    if (c) {
        return c;
    }
    /* keep the request's order inside a trace (qsort is not stable) */
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int same_trace(const span_t *a, const span_t *b)
{
    if (valid_tid(a) != valid_tid(b)) {
        return 0;
    }
    return !valid_tid(a) || memcmp(a->trace_id.data, b->trace_id.data, 16) == 0;
}

/* Packs refs[lo, hi) (one trace, in request order) as a request into a unit. */
static int pack_group(const trace_req_t *req, const span_ref_t *refs, size_t lo, size_t hi,
                      arena_t *a, kx_vec_t *units)
{
    size_t nspans = hi - lo;
    /* at most one ResourceSpans and ScopeSpans per span */
    rspans_t **rs = arena_alloc(a, nspans * sizeof(*rs));
    span_t **spans = arena_alloc(a, nspans * sizeof(*spans));
    if (!rs || !spans) {
        return MT_ENOMEM;
    }
    trace_req_t out = OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    out.resource_spans = rs;
    rspans_t *cr = NULL;
    sspans_t *cs = NULL;
    uint32_t last_ri = UINT32_MAX, last_si = UINT32_MAX;
    for (size_t i = lo; i < hi; i++) {
        const span_ref_t *r = &refs[i];
        if (r->ri != last_ri) {
            const rspans_t *src = req->resource_spans[r->ri];
            cr = arena_alloc(a, sizeof(*cr));
            /* a resource has at most as many scopes as spans left */
            sspans_t **ss = arena_alloc(a, (hi - i) * sizeof(*ss));
            if (!cr || !ss) {
                return MT_ENOMEM;
            }
            *cr = (rspans_t)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
            cr->resource = src->resource;
            cr->schema_url = src->schema_url;
            cr->scope_spans = ss;
            rs[out.n_resource_spans++] = cr;
            last_ri = r->ri;
            last_si = UINT32_MAX;
        }
        if (r->si != last_si) {
            const sspans_t *src = req->resource_spans[r->ri]->scope_spans[r->si];
            cs = arena_alloc(a, sizeof(*cs));
            if (!cs) {
                return MT_ENOMEM;
            }
            *cs = (sspans_t)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
            cs->scope = src->scope;
            cs->schema_url = src->schema_url;
            cs->spans = spans + (i - lo);
            cr->scope_spans[cr->n_scope_spans++] = cs;
            last_si = r->si;
        }
        spans[i - lo] = (span_t *)r->sp;
        cs->n_spans++;
    }
    size_t len = protobuf_c_message_get_packed_size(&out.base);
    uint8_t *buf = arena_alloc(a, len ? len : 1);
    if (!buf || kx_vec_reserve(units, units->n + 1, sizeof(kx_unit_t)) != MT_OK) {
        return MT_ENOMEM;
    }
    protobuf_c_message_pack(&out.base, buf);
    kx_unit_t *u = &((kx_unit_t *)units->v)[units->n++];
    *u = (kx_unit_t){buf, len, NULL, 0};
    const span_t *first = refs[lo].sp;
    if (valid_tid(first)) {
        char *k = arena_alloc(a, 33);
        if (!k) {
            return MT_ENOMEM;
        }
        for (int j = 0; j < 16; j++) {
            snprintf(k + 2 * j, 3, "%02x", first->trace_id.data[j]);
        }
        u->key = k;
        u->keyn = 32;
    }
    return MT_OK;
}

int kx_traces_by_id(const uint8_t *data, size_t len, arena_t *a, kx_vec_t *units)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    trace_req_t *req = (trace_req_t *)otlp_unpack(MT_SIG_TRACES, data, len, a, &eb);
    if (!req) {
        return arena_over_cap(a) ? MT_ENOMEM : MT_EINVAL;
    }
    size_t n = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            n += req->resource_spans[i]->scope_spans[j]->n_spans;
        }
    }
    span_ref_t *refs = arena_alloc(a, (n ? n : 1) * sizeof(*refs));
    if (!refs) {
        return MT_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const rspans_t *rs = req->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            for (size_t s = 0; s < rs->scope_spans[j]->n_spans; s++, k++) {
                refs[k] = (span_ref_t){rs->scope_spans[j]->spans[s], (uint32_t)i, (uint32_t)j,
                                       (uint32_t)k};
            }
        }
    }
    qsort(refs, n, sizeof(*refs), ref_cmp);
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1;
        while (hi < n && same_trace(refs[lo].sp, refs[hi].sp)) {
            hi++;
        }
        int rc = pack_group(req, refs, lo, hi, a, units);
        if (rc != MT_OK) {
            return rc;
        }
        lo = hi;
    }
    return MT_OK;
}
