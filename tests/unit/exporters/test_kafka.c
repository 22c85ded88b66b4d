/*
 * test_kafka.c - tests for exporters/kafka_split.c: resource records cut from the wire (every
 * slice a valid request, together the whole), partition keys that ignore attribute order, and
 * per-trace regrouping (every span once, in its own resource and scope, in request order).
 * Requests are built and read back with protobuf-c.
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "kafka_int.h"
#include "otlp_collector.pb-c.h"

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest treq_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans rs_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ss_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Resource__V1__Resource res_t;

#define NRES   3
#define NSCOPE 2
#define NSPAN  4

/* Storage for a request of NRES resources x NSCOPE scopes x NSPAN spans. */
typedef struct built {
    treq_t req;
    rs_t rs[NRES], *rsp[NRES];
    res_t res[NRES];
    kv_t kv[NRES][2], *kvp[NRES][2];
    av_t av[NRES][2];
    char sval[NRES][16];
    ss_t ss[NRES][NSCOPE], *ssp[NRES][NSCOPE];
    span_t sp[NRES][NSCOPE][NSPAN], *spp[NRES][NSCOPE][NSPAN];
    uint8_t tid[NRES][NSCOPE][NSPAN][16], sid[NRES][NSCOPE][NSPAN][8];
} built_t;

/* Span (r, s, i) gets trace (r + s + i) % 3 + 1, and trace id 0 bytes when i == 3 && r == 0.
 * Resource r has attributes {service.name: svc-r, host: h} listed in an order that depends on
 * r (the key must not). */
static uint8_t *build(built_t *b, size_t *len)
{
    memset(b, 0, sizeof(*b));
    b->req = (treq_t)OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    b->req.n_resource_spans = NRES;
    b->req.resource_spans = b->rsp;
    for (int r = 0; r < NRES; r++) {
        b->rs[r] = (rs_t)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
        b->rsp[r] = &b->rs[r];
        b->res[r] = (res_t)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        snprintf(b->sval[r], sizeof(b->sval[r]), "svc-%d", r == 2 ? 1 : r);
        for (int k = 0; k < 2; k++) {
            b->kv[r][k] = (kv_t)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
            b->av[r][k] = (av_t)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
            b->av[r][k].value_case =
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            b->kv[r][k].value = &b->av[r][k];
        }
        int first = r % 2; /* resources 1 and 2 list host first */
        b->kv[r][first].key = "service.name";
        b->av[r][first].string_value = b->sval[r];
        b->kv[r][!first].key = "host";
        b->av[r][!first].string_value = "h";
        b->kvp[r][0] = &b->kv[r][0];
        b->kvp[r][1] = &b->kv[r][1];
        b->res[r].n_attributes = 2;
        b->res[r].attributes = b->kvp[r];
        b->rs[r].resource = &b->res[r];
        b->rs[r].n_scope_spans = NSCOPE;
        b->rs[r].scope_spans = b->ssp[r];
        for (int s = 0; s < NSCOPE; s++) {
            b->ss[r][s] = (ss_t)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
            b->ssp[r][s] = &b->ss[r][s];
            b->ss[r][s].n_spans = NSPAN;
            b->ss[r][s].spans = b->spp[r][s];
            for (int i = 0; i < NSPAN; i++) {
                span_t *sp = &b->sp[r][s][i];
                *sp = (span_t)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
                b->spp[r][s][i] = sp;
                memset(b->tid[r][s][i], (r + s + i) % 3 + 1, 16);
                sp->trace_id.data = b->tid[r][s][i];
                sp->trace_id.len = (i == 3 && r == 0) ? 0 : 16;
                b->sid[r][s][i][0] = (uint8_t)r;
                b->sid[r][s][i][1] = (uint8_t)s;
                b->sid[r][s][i][2] = (uint8_t)i;
                sp->span_id.data = b->sid[r][s][i];
                sp->span_id.len = 8;
                sp->name = "op";
            }
        }
    }
    *len = protobuf_c_message_get_packed_size(&b->req.base);
    uint8_t *buf = malloc(*len);
    protobuf_c_message_pack(&b->req.base, buf);
    return buf;
}

UNIT_TEST(entries_are_whole_resources_that_tile_the_request)
{
    built_t b;
    size_t len;
    uint8_t *buf = build(&b, &len);
    kx_vec_t ents = {0};
    REQUIRE(kx_entries(buf, len, &ents) == MT_OK);
    CHECK(ents.n == NRES);
    const kx_slice_t *e = ents.v;
    const uint8_t *p = buf;
    for (size_t i = 0; i < ents.n; i++) {
        CHECK(e[i].p == p); /* contiguous: any run of them is one slice of the request */
        p += e[i].n;
        treq_t *one = opentelemetry__proto__collector__v1__export_trace_service_request__unpack(
            NULL, e[i].n, e[i].p);
        REQUIRE(one);
        CHECK(one->n_resource_spans == 1);
        CHECK(one->resource_spans[0]->n_scope_spans == NSCOPE);
        opentelemetry__proto__collector__v1__export_trace_service_request__free_unpacked(one, NULL);
    }
    CHECK(p == buf + len);
    /* a length past the end is refused, not read */
    CHECK(kx_entries(buf, len - 1, &ents) == MT_EINVAL);
    kx_vec_free(&ents);
    free(buf);
}

UNIT_TEST(resource_key_ignores_attribute_order)
{
    built_t b;
    size_t len;
    uint8_t *buf = build(&b, &len);
    kx_vec_t ents = {0}, scratch = {0};
    REQUIRE(kx_entries(buf, len, &ents) == MT_OK);
    const kx_slice_t *e = ents.v;
    char k0[17], k1[17], k2[17];
    REQUIRE(kx_resource_key(e[0].p, e[0].n, &scratch, k0) == MT_OK);
    REQUIRE(kx_resource_key(e[1].p, e[1].n, &scratch, k1) == MT_OK);
    REQUIRE(kx_resource_key(e[2].p, e[2].n, &scratch, k2) == MT_OK);
    CHECK(strlen(k0) == 16);
    /* resources 1 and 2 have the same attributes listed in another order */
    CHECK_STR(k1, k2);
    CHECK(strcmp(k0, k1) != 0);
    kx_vec_free(&ents);
    kx_vec_free(&scratch);
    free(buf);
}

UNIT_TEST(traces_by_id_regroups_every_span_once_in_order)
{
    built_t b;
    size_t len;
    uint8_t *buf = build(&b, &len);
    arena_t *a = arena_create(4096, 0);
    kx_vec_t units = {0};
    REQUIRE(kx_traces_by_id(buf, len, a, &units) == MT_OK);
    CHECK(units.n == 4); /* traces 1, 2, 3 and the spans without an id */
    int seen[NRES][NSCOPE][NSPAN] = {{{0}}};
    int keyless = 0;
    for (size_t u = 0; u < units.n; u++) {
        const kx_unit_t *un = &((kx_unit_t *)units.v)[u];
        treq_t *q = opentelemetry__proto__collector__v1__export_trace_service_request__unpack(
            NULL, un->n, un->p);
        REQUIRE(q);
        int last = -1;
        for (size_t r = 0; r < q->n_resource_spans; r++) {
            rs_t *rs = q->resource_spans[r];
            REQUIRE(rs->resource && rs->resource->n_attributes == 2);
            for (size_t s = 0; s < rs->n_scope_spans; s++) {
                CHECK(rs->scope_spans[s]->n_spans > 0);
                for (size_t i = 0; i < rs->scope_spans[s]->n_spans; i++) {
                    span_t *sp = rs->scope_spans[s]->spans[i];
                    int ri = sp->span_id.data[0], si = sp->span_id.data[1],
                        ii = sp->span_id.data[2];
                    seen[ri][si][ii]++;
                    /* each span stays under its own resource (svc-1 for resources 1 and 2) */
                    int first = ri % 2;
                    CHECK_STR(rs->resource->attributes[first]->value->string_value, b.sval[ri]);
                    int order = (ri * NSCOPE + si) * NSPAN + ii;
                    CHECK(order > last);
                    last = order;
                    if (un->key) {
                        char want[33];
                        for (int j = 0; j < 16; j++) {
                            snprintf(want + 2 * j, 3, "%02x", sp->trace_id.data[j]);
                        }
                        CHECK(sp->trace_id.len == 16 && un->keyn == 32 &&
                              memcmp(un->key, want, 32) == 0);
                    } else {
                        CHECK(sp->trace_id.len == 0);
                        keyless++;
                    }
                }
            }
        }
        opentelemetry__proto__collector__v1__export_trace_service_request__free_unpacked(q, NULL);
    }
    CHECK(keyless == NSCOPE);
    for (int r = 0; r < NRES; r++) {
        for (int s = 0; s < NSCOPE; s++) {
            for (int i = 0; i < NSPAN; i++) {
                CHECK(seen[r][s][i] == 1);
            }
        }
    }
    CHECK(kx_traces_by_id((const uint8_t *)"\x0a\x05", 2, a, &units) == MT_EINVAL);
    kx_vec_free(&units);
    arena_destroy(a);
    free(buf);
}
