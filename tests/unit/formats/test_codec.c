/*
 * test_codec.c - tests for collector/formats/codec.c: gzip, zstd and snappy round trips, the recorded
 * gzip fixture, compression bombs stopped at the cap without inflating everything, truncated
 * and garbage input rejected with a reason, and Content-Encoding name mapping.
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "codec.h"
#include "mt.h"
#include "otlp_collector.pb-c.h"

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest traces_req_t;

/* Compressible but not trivial: text-like bytes with some variety. */
static uint8_t *sample_data(size_t n)
{
    uint8_t *p = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)("abcdefgh spans traces {}\n"[(x >> 16) % 25]);
    }
    return p;
}

static void round_trip(int *unit_failed_, codec_t c, size_t n)
{
    uint8_t *in = sample_data(n);
    REQUIRE(in);
    uint8_t *z = NULL;
    size_t zlen = 0;
    REQUIRE(codec_compress(c, in, n, 0, &z, &zlen) == MT_OK);
    REQUIRE(z);
    CHECK(zlen > 0);
    if (n > 1000) {
        CHECK(zlen < n); /* it did compress */
    }
    arena_t *a = arena_create(1024, 0);
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = codec_decompress(c, z, zlen, n + 16, a, &out, &out_len, &eb);
    CHECK(rc == MT_OK);
    if (rc != MT_OK) {
        fprintf(stderr, "    %s: %s\n", codec_name(c), eb.msg);
    }
    CHECK(out_len == n);
    CHECK(rc == MT_OK && out_len == n && (n == 0 || memcmp(out, in, n) == 0));
    /* exactly at the cap is still allowed */
    out = NULL;
    rc = codec_decompress(c, z, zlen, n, a, &out, &out_len, &eb);
    CHECK(rc == MT_OK && out_len == n);
    /* one byte short of it is not */
    if (n > 0) {
        rc = codec_decompress(c, z, zlen, n - 1, a, &out, &out_len, &eb);
        CHECK(rc == MT_ETOOBIG);
    }
    arena_destroy(a);
    free(z);
    free(in);
}

UNIT_TEST(gzip_round_trip)
{
    round_trip(unit_failed_, CODEC_GZIP, 100000);
    round_trip(unit_failed_, CODEC_GZIP, 1);
    round_trip(unit_failed_, CODEC_GZIP, 0);
}

UNIT_TEST(zstd_round_trip)
{
    round_trip(unit_failed_, CODEC_ZSTD, 100000);
    round_trip(unit_failed_, CODEC_ZSTD, 1);
    round_trip(unit_failed_, CODEC_ZSTD, 0);
}

UNIT_TEST(snappy_round_trip)
{
    round_trip(unit_failed_, CODEC_SNAPPY, 100000);
    round_trip(unit_failed_, CODEC_SNAPPY, 1);
    round_trip(unit_failed_, CODEC_SNAPPY, 0);
}

UNIT_TEST(gzip_round_trip_larger_than_first_guess)
{
    /* highly compressible: in_len * 4 is far below the output, so the buffer must grow */
    size_t n = 3u << 20;
    uint8_t *in = calloc(1, n);
    REQUIRE(in);
    for (size_t i = 0; i < n; i += 4096) {
        in[i] = (uint8_t)(i >> 12);
    }
    static const codec_t cs[] = {CODEC_GZIP, CODEC_ZSTD};
    for (size_t k = 0; k < 2; k++) {
        uint8_t *z = NULL;
        size_t zlen = 0;
        REQUIRE(codec_compress(cs[k], in, n, 0, &z, &zlen) == MT_OK);
        CHECK(zlen * 4 < n);
        arena_t *a = arena_create(256 * 1024, 0);
        uint8_t *out = NULL;
        size_t out_len = 0;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        CHECK(codec_decompress(cs[k], z, zlen, 8u << 20, a, &out, &out_len, &eb) == MT_OK);
        CHECK(out_len == n && memcmp(out, in, n) == 0);
        arena_destroy(a);
        free(z);
    }
    free(in);
}

UNIT_TEST(gzip_fixture_decodes_to_valid_request)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/traces-n1/traces-proto-gzip-1.bin",
             unit_fixtures_dir());
    size_t len = 0;
    uint8_t *gz = unit_read_file(path, &len);
    REQUIRE(gz);
    CHECK(len == 736);
    arena_t *a = arena_create(64 * 1024, 0);
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = codec_decompress(CODEC_GZIP, gz, len, 1u << 20, a, &out, &out_len, &eb);
    CHECK(rc == MT_OK);
    CHECK(out_len == 1030); /* MANIFEST.json: decoded_bytes */
    if (rc == MT_OK) {
        traces_req_t *r = opentelemetry__proto__collector__v1__export_trace_service_request__unpack(
            arena_pb_allocator(a), out_len, out);
        REQUIRE(r);
        size_t spans = 0;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                spans += r->resource_spans[i]->scope_spans[j]->n_spans;
            }
        }
        CHECK(spans == 1); /* MANIFEST.json: items */
    }
    /* the name the header carries maps to the codec that worked */
    CHECK(codec_from_name("gzip") == CODEC_GZIP);
    arena_destroy(a);
    free(gz);
}

/* 64 MiB of zeros decompressed with a 1 MiB cap: refused, quickly, without inflating
 * everything and without reserving much more than the cap. */
static void bomb(int *unit_failed_, codec_t c)
{
    size_t n = 64u << 20;
    uint8_t *zeros = calloc(1, n);
    REQUIRE(zeros);
    uint8_t *z = NULL;
    size_t zlen = 0;
    REQUIRE(codec_compress(c, zeros, n, 0, &z, &zlen) == MT_OK);
    free(zeros);
    CHECK(zlen < n / 500);                    /* it is a bomb */
    arena_t *a = arena_create(256 * 1024, 0); /* as the OTLP receiver creates it */
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint64_t t0 = mt_now_ns();
    int rc = codec_decompress(c, z, zlen, 1u << 20, a, &out, &out_len, &eb);
    uint64_t dt_ms = (mt_now_ns() - t0) / 1000000u;
    CHECK(rc == MT_ETOOBIG);
    CHECK(out == NULL);
    CHECK(dt_ms < 500);
    /* never anywhere near the 64 MiB the bomb expands to. These bounds are loose on purpose:
     * each growth copies into a fresh arena buffer and arena blocks double, so today a 1 MiB
     * cap costs ~3 MiB used and 4-8 MiB reserved, more than codec.h's "at most cap bytes". */
    CHECK(arena_reserved(a) < (16u << 20));
    CHECK(arena_used(a) < (4u << 20));
    arena_destroy(a);
    free(z);
}

UNIT_TEST(gzip_bomb_stops_at_cap)
{
    bomb(unit_failed_, CODEC_GZIP);
}

UNIT_TEST(zstd_bomb_stops_at_cap)
{
    bomb(unit_failed_, CODEC_ZSTD);
}

UNIT_TEST(bomb_with_capped_arena_is_too_big)
{
    /* when the arena's own cap bites first, that is still "too big", not "out of memory" */
    size_t n = 8u << 20;
    uint8_t *zeros = calloc(1, n);
    REQUIRE(zeros);
    uint8_t *z = NULL;
    size_t zlen = 0;
    REQUIRE(codec_compress(CODEC_GZIP, zeros, n, 0, &z, &zlen) == MT_OK);
    free(zeros);
    arena_t *a = arena_create(1024, 512 * 1024);
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(codec_decompress(CODEC_GZIP, z, zlen, 4u << 20, a, &out, &out_len, &eb) == MT_ETOOBIG);
    CHECK(arena_reserved(a) <= 512 * 1024);
    arena_destroy(a);
    free(z);
}

UNIT_TEST(decompressed_buffer_is_charged_to_the_arena)
{
    /* gzip/zstd decompress into a heap buffer the arena frees: it counts against the arena's
     * cap and its memory account like the arena's own blocks (issue 13) */
    size_t n = 1u << 20;
    uint8_t *in = sample_data(n);
    REQUIRE(in);
    static const codec_t cs[] = {CODEC_GZIP, CODEC_ZSTD};
    for (size_t k = 0; k < 2; k++) {
        uint8_t *z = NULL;
        size_t zlen = 0;
        REQUIRE(codec_compress(cs[k], in, n, 0, &z, &zlen) == MT_OK);
        _Atomic int64_t in_use = 0, limit = 0;
        arena_t *a = arena_create(1024, 0);
        arena_account(a, &in_use, &limit);
        uint8_t *out = NULL;
        size_t out_len = 0;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        CHECK(codec_decompress(cs[k], z, zlen, 2 * n, a, &out, &out_len, &eb) == MT_OK);
        CHECK(atomic_load(&in_use) >= (int64_t)(n + 1024));
        arena_reset(a);
        CHECK(atomic_load(&in_use) == 1024);
        arena_set_cap(a, n / 2); /* fits the body limit, not the arena's cap */
        CHECK(codec_decompress(cs[k], z, zlen, 2 * n, a, &out, &out_len, &eb) == MT_ENOMEM);
        CHECK(arena_over_cap(a));
        arena_reset(a);
        arena_set_cap(a, 0);
        atomic_store(&limit, 4096); /* nor the memory limit */
        CHECK(codec_decompress(cs[k], z, zlen, 2 * n, a, &out, &out_len, &eb) == MT_ENOMEM);
        CHECK(arena_over_limit(a));
        arena_destroy(a);
        CHECK(atomic_load(&in_use) == 0);
        free(z);
    }
    free(in);
}

static void truncated(int *unit_failed_, codec_t c, const char *want)
{
    size_t n = 50000;
    uint8_t *in = sample_data(n);
    uint8_t *z = NULL;
    size_t zlen = 0;
    REQUIRE(codec_compress(c, in, n, 0, &z, &zlen) == MT_OK);
    arena_t *a = arena_create(1024, 0);
    /* cut at several points: inside the header, in the middle, just before the trailer */
    size_t cuts[] = {1, 5, zlen / 2, zlen - 1};
    for (size_t k = 0; k < MT_ARRAY_LEN(cuts); k++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        int rc = codec_decompress(c, z, cuts[k], 1u << 20, a, &out, &out_len, &eb);
        CHECK(rc == MT_EINVAL);
        CHECK(eb.set && strstr(eb.msg, want) != NULL);
        if (rc != MT_EINVAL || !strstr(eb.msg, want)) {
            fprintf(stderr, "    %s cut at %zu of %zu: rc=%d msg=%s\n", codec_name(c), cuts[k],
                    zlen, rc, eb.msg);
        }
    }
    arena_destroy(a);
    free(z);
    free(in);
}

UNIT_TEST(gzip_truncated_is_einval)
{
    truncated(unit_failed_, CODEC_GZIP, "invalid gzip data");
}

UNIT_TEST(zstd_truncated_is_einval)
{
    truncated(unit_failed_, CODEC_ZSTD, "invalid zstd data");
}

UNIT_TEST(empty_body_is_einval_for_gzip_and_zstd)
{
    arena_t *a = arena_create(1024, 0);
    static const codec_t cs[] = {CODEC_GZIP, CODEC_ZSTD};
    for (size_t k = 0; k < 2; k++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        CHECK(codec_decompress(cs[k], (const uint8_t *)"", 0, 1024, a, &out, &out_len, &eb) ==
              MT_EINVAL);
        CHECK(eb.set);
    }
    arena_destroy(a);
}

UNIT_TEST(garbage_is_einval)
{
    uint8_t junk[4096];
    uint32_t x = 99;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1664525u + 1013904223u;
        junk[i] = (uint8_t)(x >> 24);
    }
    junk[0] = 'X'; /* neither a gzip, zlib nor zstd magic */
    junk[1] = 'Y';
    static const struct {
        codec_t c;
        const char *want;
    } cases[] = {{CODEC_GZIP, "invalid gzip data"}, {CODEC_ZSTD, "invalid zstd data"}};
    arena_t *a = arena_create(1024, 0);
    for (size_t k = 0; k < MT_ARRAY_LEN(cases); k++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        int rc = codec_decompress(cases[k].c, junk, sizeof(junk), 1u << 20, a, &out, &out_len, &eb);
        CHECK(rc == MT_EINVAL);
        CHECK(strstr(eb.msg, cases[k].want) != NULL);
    }
    /* snappy: a plausible length header followed by junk */
    uint8_t sj[64];
    memcpy(sj, junk, sizeof(sj));
    sj[0] = 40; /* varint: 40 bytes uncompressed */
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = codec_decompress(CODEC_SNAPPY, sj, sizeof(sj), 1u << 20, a, &out, &out_len, &eb);
    CHECK(rc == MT_EINVAL);
    CHECK(strstr(eb.msg, "invalid snappy data") != NULL);
    arena_destroy(a);
}

UNIT_TEST(snappy_length_header_over_cap_refused_before_allocating)
{
    /* varint 0xffffffff (4 GiB - 1) and nothing else: the header alone says "too big" */
    const uint8_t hdr[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    arena_t *a = arena_create(1024, 0);
    size_t before = arena_reserved(a);
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = codec_decompress(CODEC_SNAPPY, hdr, sizeof(hdr), 1u << 20, a, &out, &out_len, &eb);
    CHECK(rc == MT_ETOOBIG);
    CHECK(arena_reserved(a) == before);
    CHECK(arena_used(a) == 0);
    /* a real block whose header claims 100000 bytes, cap 1000 */
    uint8_t *in = sample_data(100000);
    uint8_t *z = NULL;
    size_t zlen = 0;
    REQUIRE(codec_compress(CODEC_SNAPPY, in, 100000, 0, &z, &zlen) == MT_OK);
    rc = codec_decompress(CODEC_SNAPPY, z, zlen, 1000, a, &out, &out_len, &eb);
    CHECK(rc == MT_ETOOBIG);
    CHECK(arena_used(a) == 0);
    /* a bad header is invalid, not too big */
    const uint8_t bad[] = {0xff, 0xff};
    mt_errbuf_clear(&eb);
    rc = codec_decompress(CODEC_SNAPPY, bad, sizeof(bad), 1u << 20, a, &out, &out_len, &eb);
    CHECK(rc == MT_EINVAL);
    CHECK(strstr(eb.msg, "snappy") != NULL);
    free(z);
    free(in);
    arena_destroy(a);
}

UNIT_TEST(identity_passes_through_with_cap)
{
    const uint8_t body[] = "plain body";
    arena_t *a = arena_create(1024, 0);
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(codec_decompress(CODEC_NONE, body, 10, 10, a, &out, &out_len, &eb) == MT_OK);
    CHECK(out == body && out_len == 10);
    CHECK(codec_decompress(CODEC_NONE, body, 10, 9, a, &out, &out_len, &eb) == MT_ETOOBIG);
    mt_errbuf_clear(&eb);
    CHECK(codec_decompress(CODEC_UNKNOWN, body, 10, 100, a, &out, &out_len, &eb) ==
          MT_EUNSUPPORTED);
    CHECK(eb.set);
    uint8_t *z = NULL;
    size_t zlen = 0;
    CHECK(codec_compress(CODEC_UNKNOWN, body, 10, 0, &z, &zlen) == MT_EUNSUPPORTED);
    CHECK(z == NULL);
    arena_destroy(a);
}

UNIT_TEST(codec_names)
{
    CHECK(codec_from_name(NULL) == CODEC_NONE);
    CHECK(codec_from_name("") == CODEC_NONE);
    CHECK(codec_from_name("identity") == CODEC_NONE);
    CHECK(codec_from_name("gzip") == CODEC_GZIP);
    CHECK(codec_from_name("GZIP") == CODEC_GZIP);
    CHECK(codec_from_name("x-gzip") == CODEC_GZIP);
    CHECK(codec_from_name("zstd") == CODEC_ZSTD);
    CHECK(codec_from_name("snappy") == CODEC_SNAPPY);
    CHECK(codec_from_name("br") == CODEC_UNKNOWN);
    CHECK(codec_from_name("deflate") == CODEC_UNKNOWN);
    CHECK(codec_from_name("gzip2") == CODEC_UNKNOWN);
    CHECK_STR(codec_name(CODEC_NONE), "none");
    CHECK_STR(codec_name(CODEC_GZIP), "gzip");
    CHECK_STR(codec_name(CODEC_ZSTD), "zstd");
    CHECK_STR(codec_name(CODEC_SNAPPY), "snappy");
    CHECK_STR(codec_name(CODEC_UNKNOWN), "unknown");
    CHECK_STR(codec_name((codec_t)42), "unknown");
}

/* ---- collector/core/httpc.c: Retry-After and capped response bodies ------------------------------ */
#include "httpc.h"

UNIT_TEST(httpc_retry_after_forms)
{
    CHECK(httpc_retry_after("120") == 120);
    CHECK(httpc_retry_after("  7\r\n") == 7);
    CHECK(httpc_retry_after("999999") == 3600);
    CHECK(httpc_retry_after("-5") == 0);
    CHECK(httpc_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0); /* in the past */
    CHECK(httpc_retry_after("Wed, 21 Oct 2099 07:28:00 GMT") == 3600);
    CHECK(httpc_retry_after("soon") == -1);
}

UNIT_TEST(httpc_body_keeps_head_under_cap)
{
    httpc_resp_t r = {0};
    r.max = 8;
    char hdr[] = "Retry-After: 3\r\n";
    CHECK(httpc_on_header(hdr, 1, sizeof(hdr) - 1, &r) == sizeof(hdr) - 1);
    CHECK(r.retry_after_s == 3);
    CHECK(httpc_on_body((char *)"hello ", 1, 6, &r) == 6);
    CHECK(httpc_on_body((char *)"world", 1, 5, &r) == 5); /* consumed, but only 2 kept */
    CHECK(r.len == 8 && r.truncated);
    CHECK_STR(r.body, "hello wo");
    httpc_resp_reset(&r);
    CHECK(r.len == 0 && !r.truncated && r.retry_after_s == 0);
    httpc_resp_free(&r);
}
