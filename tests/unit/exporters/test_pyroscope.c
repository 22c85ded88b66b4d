/*
 * test_pyroscope.c - tests for exporters/pyroscope.c through its descriptor (unit_exp.h)
 * against a recording sink on 127.0.0.1: the /ingest URL (name with labels, from/until,
 * format, spyName), the multipart body holding a gzipped pprof that decodes back to the
 * samples sent, original payloads forwarded byte for byte, tenant headers, the label policy,
 * answer classification and config validation. Profiles are built with pprof_conv (the
 * receiver's converter).
 */
#include "unit.h"
#include "unit_exp.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "otlp.h"
#include "pprof_conv.h"

#define T0 1700000000000000000ull /* ns */

/* A profiles request for app `app` with labels env=prod, region=eu from folded text. */
static uint8_t *profiles_pb(const char *app, const uint8_t *original, size_t olen, size_t *len)
{
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    pprof_label_t labels[] = {{"env", "prod"}, {"region", "eu"}};
    pprof_meta_t m = {.app = app,
                      .labels = labels,
                      .nlabels = 2,
                      .from_ns = T0,
                      .until_ns = T0 + 10000000000ull,
                      .spy_name = "gospy",
                      .sample_rate = 100,
                      .original = original,
                      .original_len = olen};
    static const char text[] = "main;work;leaf 12\nmain;other 5\n";
    pprof_otlp_req_t *r = NULL;
    uint64_t np = 0;
    uint8_t *pb = NULL;
    if (pprof_folded_to_otlp(text, sizeof(text) - 1, 0, &m, a, &r, &np, &eb) == MT_OK) {
        *len = protobuf_c_message_get_packed_size(&r->base);
        pb = malloc(*len);
        protobuf_c_message_pack(&r->base, pb);
    } else {
        fprintf(stderr, "    profiles_pb: %s\n", eb.msg);
    }
    arena_destroy(a);
    return pb;
}

typedef struct fx {
    unit_sink_t *sink;
    unit_exp_t e;
    uint8_t *data;
    size_t len;
} fx_t;

static int fx_open(fx_t *f, const char *extra)
{
    memset(f, 0, sizeof(*f));
    f->sink = unit_sink_start();
    if (!f->sink) {
        return -1;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "endpoint: http://127.0.0.1:%d\n%s", unit_sink_port(f->sink),
             extra ? extra : "");
    if (unit_exp_open(&f->e, "pyroscope", yaml) != MT_OK) {
        cfg_ctx_print(&f->e.c, stderr);
        return -1;
    }
    f->data = profiles_pb("shop", NULL, 0, &f->len);
    return f->data ? 0 : -1;
}

static void fx_close(fx_t *f)
{
    unit_exp_close(&f->e);
    unit_sink_stop(f->sink);
    free(f->data);
}

static int fx_send(fx_t *f, const char *tenant, send_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->tenant = tenant;
    return f->e.ex.ops->send(&f->e.ex, f->e.ws, MT_SIG_PROFILES, f->data, f->len, 1, res);
}

/* The `profile` part of a recorded request, gunzipped, into arena a. */
static int profile_part(const unit_sink_req_t *q, arena_t *a, uint8_t **gz, size_t *gzlen,
                        uint8_t **pb, size_t *pblen)
{
    char boundary[128];
    const char *why = NULL;
    if (!pprof_multipart_boundary(q->content_type, boundary, sizeof(boundary), &why)) {
        fprintf(stderr, "    content type %s: %s\n", q->content_type, why);
        return -1;
    }
    pprof_part_t parts[PPROF_MAX_PARTS];
    size_t n = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    /* the real /ingest reads a multipart body only without `format`: the gzipped pprof in
     * `profile` and, beside it, the `sample_type_config` JSON (both with a filename) */
    if (pprof_multipart_parse(boundary, q->body, q->len, a, parts, &n, &eb) != MT_OK || n != 2 ||
        strcmp(parts[0].name, "profile") || strcmp(parts[0].filename, "profile.pprof") ||
        strcmp(parts[1].name, "sample_type_config") || !parts[1].filename) {
        fprintf(stderr, "    multipart: %s (%zu parts)\n", eb.msg, n);
        return -1;
    }
    *gz = (uint8_t *)parts[0].data;
    *gzlen = parts[0].len;
    return codec_decompress(CODEC_GZIP, parts[0].data, parts[0].len, 1 << 20, a, pb, pblen, &eb);
}

UNIT_TEST(ingest_url_names_the_app_with_labels_and_time_range)
{
    fx_t f;
    REQUIRE(fx_open(&f, "external_labels:\n  cluster: c1\nheaders:\n  X-Unit: p\n") == 0);
    send_result_t res;
    CHECK(fx_send(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    const unit_sink_req_t *q = unit_sink_get(f.sink, 0);
    CHECK_STR(q->method, "POST");
    CHECK_STR(q->path, "/ingest");
    /* no `format`: with format=pprof the real server reads the body as raw pprof */
    CHECK_STR(q->query, "name=shop{env=prod,region=eu,cluster=c1}&from=1700000000&until=1700000010"
                        "&spyName=gospy&");
    CHECK_STR(q->custom, "p");
    CHECK(strncmp(q->content_type, "multipart/form-data; boundary=", 30) == 0);
    fx_close(&f);
}

UNIT_TEST(body_is_a_gzipped_pprof_with_the_samples)
{
    fx_t f;
    REQUIRE(fx_open(&f, NULL) == 0);
    send_result_t res;
    CHECK(fx_send(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    arena_t *a = arena_create(64 * 1024, 0);
    uint8_t *gz, *pb;
    size_t gzlen, pblen;
    REQUIRE(profile_part(unit_sink_get(f.sink, 0), a, &gz, &gzlen, &pb, &pblen) == MT_OK);
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, pblen, pb);
    REQUIRE(p != NULL);
    REQUIRE(p->n_sample == 2);
    int64_t total = p->sample[0]->value[0] + p->sample[1]->value[0];
    CHECK(total == 17);
    /* leaf first: the 12-sample stack is leaf <- work <- main */
    int found = 0;
    for (size_t i = 0; i < p->n_sample; i++) {
        if (p->sample[i]->value[0] == 12) {
            found = p->sample[i]->n_location_id == 3;
        }
    }
    CHECK(found);
    perftools__profiles__profile__free_unpacked(p, NULL);
    arena_destroy(a);
    fx_close(&f);
}

/* A request as the pyroscope receiver makes it from an uploaded pprof: converted with
 * pprof_to_otlp, the upload (gzipped) kept as original_payload. *pprof gets the raw pprof. */
static uint8_t *uploaded_pb(uint8_t **gz, size_t *gzl, uint8_t **pprof, size_t *plen, size_t *len)
{
    /* a pprof to upload: the folded profile's own pprof form */
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    pprof_meta_t m = {.app = "shop", .sample_rate = 100};
    static const char text[] = "main;upload 3\n";
    pprof_otlp_req_t *r = NULL;
    uint64_t np = 0;
    uint8_t *pb = NULL;
    if (pprof_folded_to_otlp(text, sizeof(text) - 1, 0, &m, a, &r, &np, &eb) != MT_OK ||
        pprof_from_otlp(r->dictionary, r->resource_profiles[0]->scope_profiles[0]->profiles[0],
                        pprof, plen, &eb) != MT_OK ||
        codec_compress(CODEC_GZIP, *pprof, *plen, 0, gz, gzl) != MT_OK) {
        arena_destroy(a);
        return NULL;
    }
    arena_reset(a);
    pprof_meta_t um = {.app = "shop", .original = *gz, .original_len = *gzl};
    if (pprof_to_otlp(*pprof, *plen, &um, a, &r, &np, &eb) == MT_OK) {
        *len = protobuf_c_message_get_packed_size(&r->base);
        pb = malloc(*len);
        protobuf_c_message_pack(&r->base, pb);
    } else {
        fprintf(stderr, "    uploaded_pb: %s\n", eb.msg);
    }
    arena_destroy(a);
    return pb;
}

UNIT_TEST(original_payload_is_forwarded_byte_for_byte)
{
    fx_t f;
    REQUIRE(fx_open(&f, NULL) == 0);
    uint8_t *gz = NULL, *pprof = NULL;
    size_t gzl = 0, plen = 0;
    free(f.data);
    f.data = uploaded_pb(&gz, &gzl, &pprof, &plen, &f.len);
    REQUIRE(f.data != NULL);
    send_result_t res;
    CHECK(fx_send(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    arena_t *a = arena_create(64 * 1024, 0);
    uint8_t *sent_gz, *pb;
    size_t sent_len, pblen;
    REQUIRE(profile_part(unit_sink_get(f.sink, 0), a, &sent_gz, &sent_len, &pb, &pblen) == MT_OK);
    CHECK(sent_len == gzl && memcmp(sent_gz, gz, gzl) == 0);
    CHECK(pblen == plen && memcmp(pb, pprof, plen) == 0);
    arena_destroy(a);
    free(gz);
    free(pprof);
    fx_close(&f);
}

UNIT_TEST(label_policy_promote_only_listed_attributes)
{
    fx_t f;
    REQUIRE(fx_open(&f, "resource_to_labels: false\npromote_resource_attributes: [region]\n") == 0);
    send_result_t res;
    CHECK(fx_send(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    CHECK(strncmp(unit_sink_get(f.sink, 0)->query, "name=shop{region=eu}&", 21) == 0);
    fx_close(&f);

    REQUIRE(fx_open(&f, "resource_to_labels: false\n") == 0);
    CHECK(fx_send(&f, "", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    CHECK(strncmp(unit_sink_get(f.sink, 0)->query, "name=shop{}&", 12) == 0);
    fx_close(&f);
}

UNIT_TEST(tenant_from_request_or_config)
{
    fx_t f;
    REQUIRE(fx_open(&f, NULL) == 0);
    send_result_t res;
    CHECK(fx_send(&f, "team-b", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    CHECK_STR(unit_sink_get(f.sink, 0)->tenant, "team-b");
    fx_close(&f);

    REQUIRE(fx_open(&f, "tenant_id: pinned\n") == 0);
    CHECK(fx_send(&f, "team-b", &res) == MT_OK);
    REQUIRE(unit_sink_count(f.sink) == 1);
    CHECK_STR(unit_sink_get(f.sink, 0)->tenant, "pinned");
    fx_close(&f);
}

UNIT_TEST(answers_are_classified)
{
    fx_t f;
    REQUIRE(fx_open(&f, NULL) == 0);
    send_result_t res;
    unit_sink_reply(f.sink, 429, "text/plain", "slow down\n", 10, "3");
    CHECK(fx_send(&f, "", &res) == MT_ERETRY);
    CHECK_STR(res.reason, "http_429");
    CHECK(res.retry_after_ms == 3000);
    CHECK(strstr(res.msg, "HTTP 429: slow down") != NULL);
    unit_sink_reply(f.sink, 502, "text/plain", "", 0, NULL);
    CHECK(fx_send(&f, "", &res) == MT_ERETRY);
    CHECK_STR(res.reason, "http_5xx");
    unit_sink_reply(f.sink, 422, "application/json", "{\"code\":\"invalid\"}", 18, NULL);
    CHECK(fx_send(&f, "", &res) == MT_EPERM);
    CHECK_STR(res.reason, "http_422");
    CHECK(strstr(res.msg, "{\"code\":\"invalid\"}") != NULL);
    /* other signals and undecodable batches are permanent, nothing sent */
    int before = unit_sink_count(f.sink);
    memset(&res, 0, sizeof(res));
    CHECK(f.e.ex.ops->send(&f.e.ex, f.e.ws, MT_SIG_TRACES, f.data, f.len, 1, &res) == MT_EPERM);
    CHECK_STR(res.reason, "wrong_signal");
    const uint8_t junk[] = {0x0a, 0xff, 0xff};
    memset(&res, 0, sizeof(res));
    CHECK(f.e.ex.ops->send(&f.e.ex, f.e.ws, MT_SIG_PROFILES, junk, sizeof(junk), 1, &res) ==
          MT_EINVAL);
    CHECK_STR(res.reason, "decode_error");
    CHECK(unit_sink_count(f.sink) == before);
    fx_close(&f);
}

UNIT_TEST(config_validation_errors)
{
    unit_exp_t e;
    CHECK(unit_exp_open(&e, "pyroscope",
                        "endpoint: pyroscope:4040\n"                         /* 1 */
                        "external_labels:\n  team: 'a,b'\n"                  /* 2, 3 */
                        "promote_resource_attributes: [x]\n") == MT_EINVAL); /* 4 */
    const char *want[] = {
        "exp.yaml:1: exporters.pyroscope.endpoint: \"pyroscope:4040\" is not an http:// or "
        "https:// URL",
        "exporters.pyroscope.external_labels: value of team must be non-empty without { } , =",
        "exp.yaml:4: exporters.pyroscope.promote_resource_attributes: only applies with "
        "resource_to_labels: false",
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(want); i++) {
        int found = 0;
        for (size_t k = 0; k < e.c.nerr; k++) {
            found |= strstr(e.c.errs[k], want[i]) != NULL;
        }
        if (!found) {
            fprintf(stderr, "    missing: %s\n", want[i]);
            cfg_ctx_print(&e.c, stderr);
        }
        CHECK(found);
    }
    unit_exp_close(&e);
}
