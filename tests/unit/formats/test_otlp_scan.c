/*
 * test_otlp_scan.c - tests for otlp_scan, the validating wire scanner that lets the receiver
 * forward protobuf without decoding it. The key property is differential: whatever the
 * scanner accepts, protobuf-c must decode and otlp_check / otlp_validate_utf8 must accept,
 * with the same item count. Thousands of mutated fixtures check it.
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "otlp.h"
#include "otlp_json.h"

static unsigned char *fx(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/%s", unit_fixtures_dir(), rel);
    return unit_read_file(path, len);
}

static const struct {
    const char *file;
    mt_signal_t sig;
    uint64_t items;
} fixtures[] = {
    {"traces-n1/traces-proto-1.bin", MT_SIG_TRACES, 1},
    {"traces-n100/traces-proto-1.bin", MT_SIG_TRACES, 100},
    {"logs-n1/logs-proto-1.bin", MT_SIG_LOGS, 1},
    {"logs-n100/logs-proto-1.bin", MT_SIG_LOGS, 100},
    {"metrics-n1/metrics-proto-1.bin", MT_SIG_METRICS, 0},
    {"metrics-n100/metrics-proto-1.bin", MT_SIG_METRICS, 0},
};

/* The slow path's verdict: decode, UTF-8, structure. Returns 1 when accepted. */
static int slow_accepts(mt_signal_t s, const uint8_t *d, size_t n, arena_t *a, uint64_t *items)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m = otlp_unpack(s, d, n, a, &eb);
    if (!m || otlp_validate_utf8(m, &eb) != MT_OK) {
        return 0;
    }
    return otlp_check(s, m, items, &eb) == MT_OK;
}

UNIT_TEST(scan_accepts_fixtures_with_the_same_counts)
{
    arena_t *a = arena_create(1 << 16, 0);
    REQUIRE(a);
    for (size_t i = 0; i < MT_ARRAY_LEN(fixtures); i++) {
        size_t n;
        unsigned char *d = fx(fixtures[i].file, &n);
        REQUIRE(d);
        uint64_t fast = 0, slow = 0;
        CHECK(otlp_scan(fixtures[i].sig, d, n, &fast) == MT_OK);
        CHECK(slow_accepts(fixtures[i].sig, d, n, a, &slow));
        CHECK(fast == slow);
        if (fixtures[i].items) {
            CHECK(fast == fixtures[i].items);
        } else {
            CHECK(fast > 0);
        }
        arena_reset(a);
        free(d);
    }
    arena_destroy(a);
}

UNIT_TEST(scan_refuses_bad_wire_data)
{
    uint64_t items;
    /* field 1 (resource_spans, a message) sent as a varint */
    CHECK(otlp_scan(MT_SIG_TRACES, (const uint8_t *)"\x08\x01", 2, &items) == MT_EINVAL);
    /* a length running past the end */
    CHECK(otlp_scan(MT_SIG_TRACES, (const uint8_t *)"\x0a\x05\x00", 3, &items) == MT_EINVAL);
    /* wire type 3 (group) */
    CHECK(otlp_scan(MT_SIG_TRACES, (const uint8_t *)"\x0b", 1, &items) == MT_EINVAL);
    /* field number 0 */
    CHECK(otlp_scan(MT_SIG_TRACES, (const uint8_t *)"\x02\x00", 2, &items) == MT_EINVAL);
    /* an unterminated varint */
    CHECK(otlp_scan(MT_SIG_TRACES, (const uint8_t *)"\x08\xff\xff", 3, &items) == MT_EINVAL);
    /* empty is an empty request */
    CHECK(otlp_scan(MT_SIG_TRACES, (const uint8_t *)"", 0, &items) == MT_OK && items == 0);
    /* unknown fields are skipped: field 15 varint at top level */
    CHECK(otlp_scan(MT_SIG_TRACES, (const uint8_t *)"\x78\x05", 2, &items) == MT_OK);
}

/* ResourceSpans{ScopeSpans{Span{...}}} around span bytes */
static size_t wrap_span(const uint8_t *span, size_t sn, uint8_t *out)
{
    uint8_t ss[256], rs[256];
    size_t n = 0;
    ss[n++] = 0x12; /* ScopeSpans.spans (2) */
    ss[n++] = (uint8_t)sn;
    memcpy(ss + n, span, sn);
    n += sn;
    size_t m = 0;
    rs[m++] = 0x12; /* ResourceSpans.scope_spans (2) */
    rs[m++] = (uint8_t)n;
    memcpy(rs + m, ss, n);
    m += n;
    size_t k = 0;
    out[k++] = 0x0a; /* request.resource_spans (1) */
    out[k++] = (uint8_t)m;
    memcpy(out + k, rs, m);
    return k + m;
}

UNIT_TEST(scan_checks_utf8_and_ids)
{
    uint8_t req[512];
    uint64_t items;
    /* name (5) = "ok" */
    const uint8_t good[] = {0x2a, 0x02, 'o', 'k'};
    size_t n = wrap_span(good, sizeof(good), req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_OK && items == 1);
    const uint8_t bad_utf8[] = {0x2a, 0x02, 0xc3, 0x28};
    n = wrap_span(bad_utf8, sizeof(bad_utf8), req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_EINVAL);
    const uint8_t surrogate[] = {0x2a, 0x03, 0xed, 0xa0, 0x80};
    n = wrap_span(surrogate, sizeof(surrogate), req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_EINVAL);
    const uint8_t overlong[] = {0x2a, 0x02, 0xc0, 0xaf};
    n = wrap_span(overlong, sizeof(overlong), req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_EINVAL);
    const uint8_t multibyte[] = {0x2a, 0x07, 'h', 0xc3, 0xa9, 0xe2, 0x82, 0xac, '!'};
    n = wrap_span(multibyte, sizeof(multibyte), req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_OK);
    /* trace_id (1) of 15 bytes; 16 is fine; 0 is allowed (left for later validation) */
    uint8_t tid[20] = {0x0a, 15};
    n = wrap_span(tid, 17, req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_EINVAL);
    tid[1] = 16;
    n = wrap_span(tid, 18, req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_OK);
    /* span_id (2) of 9 bytes */
    uint8_t sid[12] = {0x12, 9};
    n = wrap_span(sid, 11, req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_EINVAL);
    /* start_time (7, fixed64) sent as a varint: wrong wire type */
    const uint8_t wt[] = {0x38, 0x01};
    n = wrap_span(wt, sizeof(wt), req);
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_EINVAL);
}

UNIT_TEST(scan_checks_packed_lengths)
{
    /* metrics: ResourceMetrics{ScopeMetrics{Metric{histogram{dp{bucket_counts packed}}}}} */
    uint8_t dp[] = {0x32, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
    uint8_t buf[128];
    uint64_t items;
    for (int bad = 0; bad < 2; bad++) {
        size_t dpn = sizeof(dp);
        if (bad) {
            dp[1] = 0x0f; /* 15 bytes of fixed64: not whole elements */
            dpn--;
        }
        size_t k = 0;
        uint8_t hist[64], metric[64], sm[64], rm[64];
        size_t hn = 0, mn = 0, smn = 0, rmn = 0;
        hist[hn++] = 0x0a, hist[hn++] = (uint8_t)dpn;
        memcpy(hist + hn, dp, dpn), hn += dpn;
        metric[mn++] = 0x4a, metric[mn++] = (uint8_t)hn; /* Metric.histogram (9) */
        memcpy(metric + mn, hist, hn), mn += hn;
        sm[smn++] = 0x12, sm[smn++] = (uint8_t)mn;
        memcpy(sm + smn, metric, mn), smn += mn;
        rm[rmn++] = 0x12, rm[rmn++] = (uint8_t)smn;
        memcpy(rm + rmn, sm, smn), rmn += smn;
        buf[k++] = 0x0a, buf[k++] = (uint8_t)rmn;
        memcpy(buf + k, rm, rmn), k += rmn;
        int rc = otlp_scan(MT_SIG_METRICS, buf, k, &items);
        if (bad) {
            CHECK(rc == MT_EINVAL);
        } else {
            CHECK(rc == MT_OK && items == 1);
        }
    }
}

/* xorshift, so the mutations are the same on every run */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

UNIT_TEST(scan_is_never_more_lenient_than_the_decoder)
{
    arena_t *a = arena_create(1 << 16, 0);
    REQUIRE(a);
    int accepted = 0, refused = 0, disagreements = 0;
    for (size_t f = 0; f < MT_ARRAY_LEN(fixtures); f++) {
        size_t n;
        unsigned char *orig = fx(fixtures[f].file, &n);
        REQUIRE(orig);
        unsigned char *d = malloc(n);
        REQUIRE(d);
        for (int iter = 0; iter < 600; iter++) {
            memcpy(d, orig, n);
            size_t len = n;
            int kind = (int)(rnd() % 4);
            int muts = 1 + (int)(rnd() % 3);
            for (int k = 0; k < muts; k++) {
                size_t pos = (size_t)(rnd() % len);
                if (kind == 0) {
                    d[pos] ^= (uint8_t)(1u << (rnd() % 8));
                } else if (kind == 1) {
                    d[pos] = (uint8_t)rnd();
                } else if (kind == 2) {
                    d[pos] = (uint8_t)(0x80 | rnd()); /* non-ASCII: UTF-8 trouble */
                } else {
                    len = pos + 1; /* truncate */
                }
            }
            uint64_t fast = 0, slow = 0;
            int fast_ok = otlp_scan(fixtures[f].sig, d, len, &fast) == MT_OK;
            int slow_ok = slow_accepts(fixtures[f].sig, d, len, a, &slow);
            arena_reset(a);
            if (fast_ok) {
                accepted++;
                /* anything forwarded undecoded must be decodable, with the same count */
                if (!slow_ok || fast != slow) {
                    disagreements++;
                }
            } else {
                refused++;
            }
        }
        free(d);
        free(orig);
    }
    CHECK(disagreements == 0);
    CHECK(accepted > 100); /* the mutations are not all fatal: both paths are exercised */
    CHECK(refused > 100);
    arena_destroy(a);
}

typedef struct walk_count {
    int strings;
    int has_needle;
    const char *needle;
} walk_count_t;

static int walk_cb(void *arg, const char *p, size_t n)
{
    walk_count_t *w = arg;
    w->strings++;
    if (w->needle && n == strlen(w->needle) && memcmp(p, w->needle, n) == 0) {
        w->has_needle = 1;
        return 1; /* stop */
    }
    return 0;
}

UNIT_TEST(walk_values_sees_values_not_keys)
{
    uint8_t req[512];
    /* span name (5) "op" and attribute k = "v" / n = 4111111111111111 (int) */
    const uint8_t span[] = {0x2a, 0x02, 'o',  'p',  0x4a, 0x08, 0x0a, 0x01, 'k',  0x12,
                            0x03, 0x0a, 0x01, 'v',  0x4a, 0x0e, 0x0a, 0x01, 'n',  0x12,
                            0x09, 0x18, 0xc7, 0xe3, 0xa3, 0xab, 0x8a, 0xe1, 0xa6, 0x07};
    size_t n = wrap_span(span, sizeof(span), req);
    uint64_t items;
    REQUIRE(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_OK);
    walk_count_t w = {0, 0, NULL};
    CHECK(otlp_walk_values(MT_SIG_TRACES, req, n, walk_cb, &w) == 0);
    CHECK(w.strings == 3); /* "op", "v", the int as text; keys "k" and "n" are skipped */
    walk_count_t k = {0, 0, "k"};
    CHECK(otlp_walk_values(MT_SIG_TRACES, req, n, walk_cb, &k) == 0 && !k.has_needle);
    walk_count_t i = {0, 0, "4111111111111111"};
    CHECK(otlp_walk_values(MT_SIG_TRACES, req, n, walk_cb, &i) == 1 && i.has_needle);
}

UNIT_TEST(utf8_ok_is_the_scanners_check)
{
    /* otlp_utf8_ok is the scanner's own rule, exported for other wire readers (pbscan_bench) */
    CHECK(otlp_utf8_ok((const uint8_t *)"", 0));
    CHECK(otlp_utf8_ok((const uint8_t *)"GET /api/orders/{id}", 20));
    CHECK(otlp_utf8_ok((const uint8_t *)"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    CHECK(!otlp_utf8_ok((const uint8_t *)"GET /api/\xc3\x28", 11)); /* bad continuation */
    CHECK(!otlp_utf8_ok((const uint8_t *)"\xc0\xaf", 2));           /* overlong */
    CHECK(!otlp_utf8_ok((const uint8_t *)"\xed\xa0\x80", 3));       /* surrogate */
    CHECK(!otlp_utf8_ok((const uint8_t *)"\xf4\x90\x80\x80", 4));   /* > U+10FFFF */
    CHECK(!otlp_utf8_ok((const uint8_t *)"abcdefgh\xe2\x82", 10));  /* cut short */
    /* and the scanner refuses what it refuses */
    uint8_t req[64];
    const uint8_t span[] = {0x2a, 0x02, 0xc3, 0x28};
    size_t n = wrap_span(span, sizeof(span), req);
    uint64_t items;
    CHECK(otlp_scan(MT_SIG_TRACES, req, n, &items) == MT_EINVAL);
}
