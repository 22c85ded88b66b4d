/*
 * test_pprof_conv.c - tests for collector/formats/pprof_conv.c: Pyroscope app names with labels, a
 * two-sample-type pprof -> OTLP (dictionary, stacks leaf first, labels as attributes, times,
 * original payload) and back to pprof (string_table[0] = "", ids 1..n consistent, values and
 * labels), folded text (merge, root-first order, errors), multipart bodies (good and broken),
 * and invalid pprof refused with a reason.
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "mt.h"
#include "pprof_conv.h"

typedef Perftools__Profiles__Profile pprof_t;

/* A small Go-heap-like pprof: sample types alloc_objects/count and alloc_space/bytes,
 * functions main (1) -> work (2) -> leaf (3), locations 10, 20, 30 (ids not 1..n on purpose). */
static uint8_t *build_pprof(size_t *len, int corrupt_kind)
{
    static char *strs[] = {"",     "alloc_objects", "count",    "alloc_space", "bytes",
                           "main", "work",          "leaf",     "main.go",     "thread",
                           "t1",   "space",         "/bin/app", "bytes_label"};
    Perftools__Profiles__ValueType st0 = PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
                                   st1 = PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
                                   pt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    st0.type = 1, st0.unit = 2, st1.type = 3, st1.unit = 4, pt.type = 11, pt.unit = 4;
    Perftools__Profiles__ValueType *sts[] = {&st0, &st1};
    Perftools__Profiles__Mapping m = PERFTOOLS__PROFILES__MAPPING__INIT;
    m.id = 7, m.memory_start = 0x1000, m.memory_limit = 0x9000, m.filename = 12;
    Perftools__Profiles__Mapping *maps[] = {&m};
    Perftools__Profiles__Function f[3];
    Perftools__Profiles__Function *fs[3];
    Perftools__Profiles__Line ln[3];
    Perftools__Profiles__Line *lns[3];
    Perftools__Profiles__Location l[3];
    Perftools__Profiles__Location *ls[3];
    for (int i = 0; i < 3; i++) {
        perftools__profiles__function__init(&f[i]);
        f[i].id = (uint64_t)(i + 1);
        f[i].name = 5 + i;
        f[i].filename = 8;
        fs[i] = &f[i];
        perftools__profiles__line__init(&ln[i]);
        ln[i].function_id = (uint64_t)(i + 1);
        ln[i].line = 10 * (i + 1);
        lns[i] = &ln[i];
        perftools__profiles__location__init(&l[i]);
        l[i].id = (uint64_t)(10 * (i + 1));
        l[i].mapping_id = 7;
        l[i].address = 0x1100 + (uint64_t)i;
        l[i].line = &lns[i];
        l[i].n_line = 1;
        ls[i] = &l[i];
    }
    /* sample A: leaf <- work <- main, values (3, 300), label thread=t1, bytes_label=512 bytes
     * sample B: work <- main, values (0, 50) */
    uint64_t locA[] = {30, 20, 10}, locB[] = {20, 10};
    int64_t vA[] = {3, 300}, vB[] = {0, 50};
    Perftools__Profiles__Label lab = PERFTOOLS__PROFILES__LABEL__INIT;
    Perftools__Profiles__Label nlab = PERFTOOLS__PROFILES__LABEL__INIT;
    lab.key = 9, lab.str = 10;
    nlab.key = 13, nlab.num = 512, nlab.num_unit = 4;
    Perftools__Profiles__Label *labs[] = {&lab, &nlab};
    Perftools__Profiles__Sample sA = PERFTOOLS__PROFILES__SAMPLE__INIT,
                                sB = PERFTOOLS__PROFILES__SAMPLE__INIT;
    sA.location_id = locA, sA.n_location_id = 3, sA.value = vA, sA.n_value = 2;
    sA.label = labs, sA.n_label = 2;
    sB.location_id = locB, sB.n_location_id = 2, sB.value = vB, sB.n_value = 2;
    Perftools__Profiles__Sample *ss[] = {&sA, &sB};
    pprof_t p = PERFTOOLS__PROFILES__PROFILE__INIT;
    p.sample_type = sts, p.n_sample_type = 2;
    p.sample = ss, p.n_sample = 2;
    p.mapping = maps, p.n_mapping = 1;
    p.location = ls, p.n_location = 3;
    p.function = fs, p.n_function = 3;
    p.string_table = strs, p.n_string_table = MT_ARRAY_LEN(strs);
    p.time_nanos = 1700000000000000000;
    p.duration_nanos = 10000000000;
    p.period_type = &pt;
    p.period = 524288;
    switch (corrupt_kind) {
    case 1:
        strs[0] = "x";
        break; /* string_table[0] not "" */
    case 2:
        locA[0] = 99;
        break; /* unknown location */
    case 3:
        l[1].id = 10;
        break; /* duplicate location id */
    case 4:
        sB.n_value = 1;
        break; /* value count mismatch */
    case 5:
        f[0].name = 99;
        break; /* string index out of range */
    case 6:
        l[0].mapping_id = 8;
        break; /* unknown mapping */
    default:
        break;
    }
    *len = perftools__profiles__profile__get_packed_size(&p);
    uint8_t *out = malloc(*len);
    perftools__profiles__profile__pack(&p, out);
    strs[0] = "";
    return out;
}

static const char *dstr(const pprof_otlp_dict_t *d, int32_t i)
{
    return i >= 0 && (size_t)i < d->n_string_table ? d->string_table[i] : "(bad)";
}

static const char *pstr(const pprof_t *p, int64_t i)
{
    return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "(bad)";
}

static const char *res_attr(const pprof_otlp_req_t *r, const char *k)
{
    const Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_profiles[0]->resource;
    for (size_t i = 0; i < res->n_attributes; i++) {
        if (strcmp(res->attributes[i]->key, k) == 0) {
            return res->attributes[i]->value->string_value;
        }
    }
    return NULL;
}

UNIT_TEST(parse_name)
{
    arena_t *a = arena_create(4096, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    char *app;
    pprof_label_t *ls;
    size_t n;
    REQUIRE(pprof_parse_name("my.app.cpu{env=staging, region = us-west-1}", a, &app, &ls, &n,
                             &eb) == MT_OK);
    CHECK_STR(app, "my.app.cpu");
    REQUIRE(n == 2);
    CHECK_STR(ls[0].key, "env");
    CHECK_STR(ls[0].value, "staging");
    CHECK_STR(ls[1].key, "region");
    CHECK_STR(ls[1].value, "us-west-1");
    CHECK(pprof_parse_name("plain", a, &app, &ls, &n, &eb) == MT_OK && n == 0);
    CHECK_STR(app, "plain");
    CHECK(pprof_parse_name("x{}", a, &app, &ls, &n, &eb) == MT_OK && n == 0);
    const char *bad[] = {"", "{a=b}", "x{a=b", "x{a}", "x{a=b,a=c}", "x{=b}", "x{a=b}y", NULL};
    for (int i = 0; bad[i]; i++) {
        mt_errbuf_clear(&eb);
        CHECK(pprof_parse_name(bad[i], a, &app, &ls, &n, &eb) == MT_EINVAL && eb.set);
    }
    CHECK(pprof_parse_name(NULL, a, &app, &ls, &n, &eb) == MT_EINVAL);
    arena_destroy(a);
}

UNIT_TEST(pprof_to_otlp_and_back)
{
    size_t len;
    uint8_t *pb = build_pprof(&len, 0);
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    pprof_label_t labels[] = {{"env", "prod"}};
    pprof_meta_t m = {.app = "svc",
                      .labels = labels,
                      .nlabels = 1,
                      .spy_name = "gospy",
                      .from_ns = 1700000100000000000ull,
                      .until_ns = 1700000110000000000ull,
                      .original = pb,
                      .original_len = len};
    pprof_otlp_req_t *r = NULL;
    uint64_t np = 0;
    int rc = pprof_to_otlp(pb, len, &m, a, &r, &np, &eb);
    if (rc != MT_OK) {
        fprintf(stderr, "    %s\n", eb.msg);
    }
    REQUIRE(rc == MT_OK);
    CHECK(np == 2);
    CHECK_STR(res_attr(r, "service.name"), "svc");
    CHECK_STR(res_attr(r, "env"), "prod");
    CHECK_STR(res_attr(r, "pyroscope.spy_name"), "gospy");
    const pprof_otlp_dict_t *d = r->dictionary;
    /* zero entries first in every table */
    CHECK_STR(d->string_table[0], "");
    CHECK(d->n_stack_table == 3 && d->stack_table[0]->n_location_indices == 0);
    CHECK(d->n_location_table == 4 && d->n_function_table == 4 && d->n_mapping_table == 2);
    CHECK(d->n_attribute_table == 3 && d->n_link_table == 1);
    REQUIRE(r->resource_profiles[0]->scope_profiles[0]->n_profiles == 2);
    pprof_otlp_profile_t *p0 = r->resource_profiles[0]->scope_profiles[0]->profiles[0];
    pprof_otlp_profile_t *p1 = r->resource_profiles[0]->scope_profiles[0]->profiles[1];
    CHECK_STR(dstr(d, p0->sample_type->type_strindex), "alloc_objects");
    CHECK_STR(dstr(d, p1->sample_type->type_strindex), "alloc_space");
    CHECK_STR(dstr(d, p1->sample_type->unit_strindex), "bytes");
    CHECK_STR(dstr(d, p0->period_type->type_strindex), "space");
    CHECK(p0->period == 524288);
    CHECK(p0->time_unix_nano == 1700000100000000000ull);
    CHECK(p0->duration_nano == 10000000000ull);
    CHECK(p0->profile_id.len == 16 && p1->profile_id.len == 16);
    CHECK(memcmp(p0->profile_id.data, p1->profile_id.data, 16) != 0);
    CHECK_STR(p0->original_payload_format, "pprof");
    CHECK(p0->original_payload.len == len);
    /* the zero alloc_objects value of sample B is left out */
    CHECK(p0->n_samples == 1 && p1->n_samples == 2);
    const Opentelemetry__Proto__Profiles__V1development__Sample *s = p1->samples[0];
    CHECK(s->n_values == 1 && s->values[0] == 300);
    const Opentelemetry__Proto__Profiles__V1development__Stack *stk =
        d->stack_table[s->stack_index];
    REQUIRE(stk->n_location_indices == 3);
    /* leaf first: leaf, work, main */
    const char *want[] = {"leaf", "work", "main"};
    for (int i = 0; i < 3; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Location *l =
            d->location_table[stk->location_indices[i]];
        REQUIRE(l->n_lines == 1);
        CHECK_STR(dstr(d, d->function_table[l->lines[0]->function_index]->name_strindex), want[i]);
        CHECK(l->mapping_index == 1);
    }
    REQUIRE(s->n_attribute_indices == 2);
    const Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit *kv =
        d->attribute_table[s->attribute_indices[0]];
    CHECK_STR(dstr(d, kv->key_strindex), "thread");
    CHECK_STR(kv->value->string_value, "t1");
    kv = d->attribute_table[s->attribute_indices[1]];
    CHECK(kv->value->int_value == 512);
    CHECK_STR(dstr(d, kv->unit_strindex), "bytes");

    /* and back: the alloc_space profile as pprof */
    uint8_t *out = NULL;
    size_t olen = 0;
    REQUIRE(pprof_from_otlp(d, p1, &out, &olen, &eb) == MT_OK);
    pprof_t *q = perftools__profiles__profile__unpack(NULL, olen, out);
    REQUIRE(q);
    CHECK_STR(q->string_table[0], "");
    REQUIRE(q->n_sample_type == 1);
    CHECK_STR(pstr(q, q->sample_type[0]->type), "alloc_space");
    CHECK_STR(pstr(q, q->sample_type[0]->unit), "bytes");
    CHECK_STR(pstr(q, q->default_sample_type), "alloc_space");
    CHECK_STR(pstr(q, q->period_type->type), "space");
    CHECK(q->period == 524288 && q->time_nanos == 1700000100000000000 &&
          q->duration_nanos == 10000000000);
    REQUIRE(q->n_sample == 2 && q->n_location == 3 && q->n_function == 3 && q->n_mapping == 1);
    for (size_t i = 0; i < q->n_location; i++) {
        CHECK(q->location[i]->id == i + 1);
        CHECK(q->location[i]->mapping_id == 1);
    }
    for (size_t i = 0; i < q->n_function; i++) {
        CHECK(q->function[i]->id == i + 1);
    }
    CHECK(q->mapping[0]->id == 1 && q->mapping[0]->memory_start == 0x1000);
    CHECK_STR(pstr(q, q->mapping[0]->filename), "/bin/app");
    CHECK(q->mapping[0]->has_functions && q->mapping[0]->has_filenames);
    const Perftools__Profiles__Sample *qs = q->sample[0];
    REQUIRE(qs->n_value == 1 && qs->n_location_id == 3);
    CHECK(qs->value[0] == 300);
    for (int i = 0; i < 3; i++) {
        const Perftools__Profiles__Location *l = q->location[qs->location_id[i] - 1];
        CHECK(l->id == qs->location_id[i]);
        const Perftools__Profiles__Function *f = q->function[l->line[0]->function_id - 1];
        CHECK_STR(pstr(q, f->name), want[i]);
        CHECK_STR(pstr(q, f->filename), "main.go");
    }
    REQUIRE(qs->n_label == 2);
    CHECK_STR(pstr(q, qs->label[0]->key), "thread");
    CHECK_STR(pstr(q, qs->label[0]->str), "t1");
    CHECK(qs->label[1]->num == 512);
    CHECK_STR(pstr(q, qs->label[1]->num_unit), "bytes");
    CHECK(q->sample[1]->value[0] == 50 && q->sample[1]->n_location_id == 2);
    /* no unused strings carried over (e.g. alloc_objects belongs to the other profile) */
    for (size_t i = 0; i < q->n_string_table; i++) {
        CHECK(strcmp(q->string_table[i], "alloc_objects") != 0);
    }
    perftools__profiles__profile__free_unpacked(q, NULL);
    free(out);
    free(pb);
    arena_destroy(a);
}

UNIT_TEST(pprof_invalid)
{
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    pprof_meta_t m = {.app = "svc"};
    pprof_otlp_req_t *r;
    uint64_t np;
    const char *want[] = {NULL,         "string_table[0]",  "unknown location", "not unique",
                          "values for", "refers to string", "unknown mapping"};
    for (int k = 1; k <= 6; k++) {
        size_t len;
        uint8_t *pb = build_pprof(&len, k);
        mt_errbuf_clear(&eb);
        CHECK(pprof_to_otlp(pb, len, &m, a, &r, &np, &eb) == MT_EINVAL);
        if (!strstr(eb.msg, want[k])) {
            fprintf(stderr, "    case %d: \"%s\" lacks \"%s\"\n", k, eb.msg, want[k]);
            CHECK(0);
        }
        free(pb);
        arena_reset(a);
    }
    static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0x01, 0x02};
    mt_errbuf_clear(&eb);
    CHECK(pprof_to_otlp(junk, sizeof(junk), &m, a, &r, &np, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "corrupt pprof") != NULL);
    arena_destroy(a);
}

UNIT_TEST(folded)
{
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    pprof_meta_t m = {.app = "py.app", .sample_rate = 100};
    static const char text[] = "main;work;leaf 10\r\nmain;other 5\n\nmain;work;leaf 2\nmain 0\n";
    pprof_otlp_req_t *r;
    uint64_t np;
    REQUIRE(pprof_folded_to_otlp(text, sizeof(text) - 1, 0, &m, a, &r, &np, &eb) == MT_OK);
    CHECK(np == 1);
    const pprof_otlp_dict_t *d = r->dictionary;
    const pprof_otlp_profile_t *p = r->resource_profiles[0]->scope_profiles[0]->profiles[0];
    CHECK_STR(dstr(d, p->sample_type->type_strindex), "samples");
    CHECK_STR(dstr(d, p->sample_type->unit_strindex), "count");
    CHECK_STR(dstr(d, p->period_type->type_strindex), "cpu");
    CHECK(p->period == 10000000);
    CHECK(p->original_payload.len == 0);
    REQUIRE(p->n_samples == 2);
    CHECK(p->samples[0]->values[0] == 12 && p->samples[1]->values[0] == 5);
    const Opentelemetry__Proto__Profiles__V1development__Stack *stk =
        d->stack_table[p->samples[0]->stack_index];
    REQUIRE(stk->n_location_indices == 3);
    const Opentelemetry__Proto__Profiles__V1development__Location *leaf =
        d->location_table[stk->location_indices[0]];
    CHECK_STR(dstr(d, d->function_table[leaf->lines[0]->function_index]->name_strindex), "leaf");
    /* "main" is one function and one location shared by both stacks */
    CHECK(d->n_function_table == 5 && d->n_location_table == 5);
    /* round trip to pprof keeps the stack */
    uint8_t *out;
    size_t olen;
    REQUIRE(pprof_from_otlp(d, p, &out, &olen, &eb) == MT_OK);
    pprof_t *q = perftools__profiles__profile__unpack(NULL, olen, out);
    REQUIRE(q && q->n_sample == 2 && q->n_mapping == 0);
    CHECK(q->sample[0]->location_id[0] == 1 && q->sample[0]->value[0] == 12);
    perftools__profiles__profile__free_unpacked(q, NULL);
    free(out);
    /* lines format: each line counts 1 */
    static const char lines[] = "a;b\na;b\nc\n";
    REQUIRE(pprof_folded_to_otlp(lines, sizeof(lines) - 1, 1, &m, a, &r, &np, &eb) == MT_OK);
    p = r->resource_profiles[0]->scope_profiles[0]->profiles[0];
    CHECK(p->n_samples == 2 && p->samples[0]->values[0] == 2);
    /* bytes units */
    pprof_meta_t mb = {.app = "x", .units = "bytes", .aggregation = "average"};
    REQUIRE(pprof_folded_to_otlp("a 1\n", 4, 0, &mb, a, &r, &np, &eb) == MT_OK);
    p = r->resource_profiles[0]->scope_profiles[0]->profiles[0];
    CHECK_STR(dstr(r->dictionary, p->sample_type->unit_strindex), "bytes");
    CHECK(p->period_type == NULL);
    CHECK_STR(res_attr(r, "pyroscope.aggregation_type"), "average");
    const char *bad[] = {"a;b x\n", "a;b\n", "a;;b 1\n", " 1\n", "a -1\n", NULL};
    for (int i = 0; bad[i]; i++) {
        mt_errbuf_clear(&eb);
        CHECK(pprof_folded_to_otlp(bad[i], strlen(bad[i]), 0, &m, a, &r, &np, &eb) == MT_EINVAL &&
              strstr(eb.msg, "line 1"));
    }
    pprof_meta_t mu = {.app = "x", .units = "furlongs"};
    mt_errbuf_clear(&eb);
    CHECK(pprof_folded_to_otlp("a 1\n", 4, 0, &mu, a, &r, &np, &eb) == MT_EINVAL);
    arena_destroy(a);
}

UNIT_TEST(multipart)
{
    char b[80];
    const char *why;
    CHECK(pprof_multipart_boundary("multipart/form-data; boundary=XyZ", b, sizeof(b), &why));
    CHECK_STR(b, "XyZ");
    CHECK(pprof_multipart_boundary("multipart/form-data; boundary=\"a b\"", b, sizeof(b), &why));
    CHECK_STR(b, "a b");
    CHECK(!pprof_multipart_boundary("multipart/form-data", b, sizeof(b), &why));
    CHECK(!pprof_multipart_boundary("application/octet-stream", b, sizeof(b), &why));
    arena_t *a = arena_create(4096, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    static const char body[] =
        "--XyZ\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n\x01\x02\r\n\x03\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=\"sample_type_config\"\r\n\r\n{}\r\n"
        "--XyZ--\r\n";
    pprof_part_t parts[PPROF_MAX_PARTS];
    size_t n;
    REQUIRE(pprof_multipart_parse("XyZ", (const uint8_t *)body, sizeof(body) - 1, a, parts, &n,
                                  &eb) == MT_OK);
    REQUIRE(n == 2);
    CHECK_STR(parts[0].name, "profile");
    CHECK_STR(parts[0].filename, "profile.pprof");
    CHECK(parts[0].len == 5 && memcmp(parts[0].data, "\x01\x02\r\n\x03", 5) == 0);
    CHECK_STR(parts[1].name, "sample_type_config");
    CHECK(parts[1].len == 2);
    const char *bad[] = {
        "--XyZ\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\nabc",     /* open */
        "--XyZ\r\nContent-Disposition: attachment; name=\"p\"\r\n\r\nx\r\n--XyZ--", /* kind */
        "--XyZ\r\nContent-Type: x\r\n\r\nx\r\n--XyZ--",                             /* no name */
        "garbage",                                                                  /* none */
        "--XyZ\r\nContent-Disposition: form-data; name=\"p\"\r\nx\r\n--XyZ--",      /* hdr */
        "--XyZ--\r\n",                                                              /* empty */
        NULL};
    for (int i = 0; bad[i]; i++) {
        mt_errbuf_clear(&eb);
        int rc = pprof_multipart_parse("XyZ", (const uint8_t *)bad[i], strlen(bad[i]), a, parts, &n,
                                       &eb);
        if (rc != MT_EINVAL || !eb.set) {
            fprintf(stderr, "    bad multipart %d accepted\n", i);
            CHECK(0);
        }
    }
    arena_destroy(a);
}
