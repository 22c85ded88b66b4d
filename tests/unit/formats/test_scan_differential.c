/*
 * test_scan_differential.c - the fast wire scanners against the decoders, on one corpus: the
 * real OTLP and remote-write fixtures and systematic mutations of them (truncation at every
 * offset, every single-bit flip of the small fixtures, over-long varints for tags and lengths,
 * unknown fields of every wire type including groups and the invalid 6 and 7, field number 0,
 * huge field numbers, lengths past the end, oneofs and singular messages sent twice, bools
 * under other wire types). The receiver forwards what the scanner accepts without decoding it,
 * so the two must agree: same verdict, and when accepted the same item count. A scanner
 * "undecided" (MT_EUNSUPPORTED: the receiver decodes) is allowed, but must stay rare.
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "codec.h"
#include "otlp.h"
#include "otlp_json.h"
#include "pbwire.h"
#include "prw_decode.h"

typedef struct diff_stats {
    long cases, accepted, refused, undecided, disagreements;
} diff_stats_t;

static arena_t *g_arena;

/* The decode path's verdict (what the receiver does when the scanner refuses). */
static int decoder_accepts(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    arena_reset(g_arena);
    ProtobufCMessage *m = otlp_unpack(s, d, n, g_arena, &eb);
    if (!m || otlp_validate_utf8(m, &eb) != MT_OK) {
        return 0;
    }
    return otlp_check(s, m, items, &eb) == MT_OK;
}

static void dump(const char *what, const uint8_t *d, size_t n)
{
    fprintf(stderr, "    %s (%zu bytes):", what, n);
    for (size_t i = 0; i < n && i < 48; i++) {
        fprintf(stderr, " %02x", d[i]);
    }
    fprintf(stderr, n > 48 ? " ...\n" : "\n");
}

/* One case through both; returns 1 when they agree. */
static int otlp_case(diff_stats_t *st, mt_signal_t s, const uint8_t *d, size_t n, const char *what)
{
    uint64_t fast = 0, slow = 0;
    int rc = otlp_scan(s, d, n, &fast);
    int ok = decoder_accepts(s, d, n, &slow);
    st->cases++;
    int agree;
    if (rc == MT_EUNSUPPORTED) {
        st->undecided++;
        agree = 1;
    } else if (rc == MT_OK) {
        st->accepted++;
        agree = ok && fast == slow;
    } else {
        st->refused++;
        agree = !ok;
    }
    if (!agree) {
        if (st->disagreements++ < 5) {
            fprintf(stderr, "    %s: scanner %d (%llu items), decoder %s (%llu items)\n", what, rc,
                    (unsigned long long)fast, ok ? "accepts" : "refuses", (unsigned long long)slow);
            dump("request", d, n);
        }
    }
    return agree;
}

static const struct {
    const char *file;
    mt_signal_t sig;
    int small; /* exhaustive truncations and bit flips */
} otlp_fx[] = {
    {"traces-n1/traces-proto-1.bin", MT_SIG_TRACES, 1},
    {"logs-n1/logs-proto-1.bin", MT_SIG_LOGS, 1},
    {"metrics-n1/metrics-proto-1.bin", MT_SIG_METRICS, 1},
    {"traces-n100/traces-proto-1.bin", MT_SIG_TRACES, 0},
    {"logs-n100/logs-proto-1.bin", MT_SIG_LOGS, 0},
    {"metrics-n100/metrics-proto-1.bin", MT_SIG_METRICS, 0},
    {"metrics-n100/metrics-proto-2.bin", MT_SIG_METRICS, 0},
    {"metrics-n100/metrics-proto-3.bin", MT_SIG_METRICS, 0},
    {"metrics-n20-cumulative-x2/metrics-proto-1.bin", MT_SIG_METRICS, 0},
    {"metrics-n20-cumulative-x2/metrics-proto-2.bin", MT_SIG_METRICS, 0},
};

static uint8_t *otlp_fixture(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/%s", unit_fixtures_dir(), rel);
    return unit_read_file(path, len);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A varint of value v in exactly k bytes (k >= its minimal size): over-long when padded. */
static size_t put_padded(uint8_t *p, uint64_t v, size_t k)
{
    for (size_t i = 0; i + 1 < k; i++) {
        p[i] = (uint8_t)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    p[k - 1] = (uint8_t)(v & 0x7f);
    return k;
}

static size_t vlen(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Field bytes: tag (fnum, wt) over tk bytes, then a body fitting the wire type; for LEN, the
 * length is over lk bytes (0: minimal) and lies by `lie` bytes. Returns the size. */
static size_t put_field(uint8_t *p, uint64_t fnum, unsigned wt, size_t tk, size_t lk, int lie)
{
    uint64_t tag = fnum << 3 | wt;
    size_t n = put_padded(p, tag, tk ? tk : vlen(tag));
    switch (wt) {
    case 0:
        p[n++] = 0x01;
        break;
    case 1:
        memset(p + n, 0x11, 8), n += 8;
        break;
    case 5:
        memset(p + n, 0x22, 4), n += 4;
        break;
    case 2:
        n += put_padded(p + n, (uint64_t)(3 + lie), lk ? lk : 1);
        memcpy(p + n, "abc", 3), n += 3;
        break;
    default:
        p[n++] = 0x00; /* groups, 6, 7: something after the tag */
        break;
    }
    return n;
}

/* request{resource_spans{scope_spans{span{inner}}}}, lengths fixed up from the inside out. */
static size_t wrap_span(const uint8_t *span, size_t sn, uint8_t *out)
{
    uint8_t a[4096], b[4096];
    uint8_t *e = a;
    *e++ = 0x12; /* ScopeSpans.spans */
    e = put_varint(e, sn);
    memcpy(e, span, sn), e += sn;
    size_t n = (size_t)(e - a);
    e = b;
    *e++ = 0x12; /* ResourceSpans.scope_spans */
    e = put_varint(e, n);
    memcpy(e, a, n), e += n;
    size_t m = (size_t)(e - b);
    e = out;
    *e++ = 0x0a; /* request.resource_spans */
    e = put_varint(e, m);
    memcpy(e, b, m), e += m;
    return (size_t)(e - out);
}

/* Every wire type 0..7, tags of 1..11 bytes, lengths of 1..11 bytes lying by -1/0/+1, field
 * numbers 0, known, unknown and huge, at the top level and inside a span. */
UNIT_TEST(scanner_and_decoder_agree_on_synthetic_fields)
{
    diff_stats_t st = {0};
    g_arena = arena_create(1 << 16, 0);
    REQUIRE(g_arena);
    const uint64_t fnums[] = {
        0, 1, 5, 15, 16, 100, 0x1fffffff, 0x3fffffff, 0xffffffffull, 0x1ffffffffull};
    for (size_t fi = 0; fi < MT_ARRAY_LEN(fnums); fi++) {
        for (unsigned wt = 0; wt < 8; wt++) {
            for (size_t tk = 0; tk <= 11; tk++) {
                if (tk && tk < vlen(fnums[fi] << 3 | wt)) {
                    continue;
                }
                for (size_t lk = 0; lk <= (wt == 2 ? 11u : 0u); lk++) {
                    for (int lie = (wt == 2 ? -1 : 0); lie <= (wt == 2 ? 1 : 0); lie++) {
                        uint8_t f[64], req[256], span[96];
                        size_t fn = put_field(f, fnums[fi], wt, tk, lk, lie);
                        char what[96];
                        snprintf(what, sizeof(what), "field %llu wt %u tag %zu len %zu lie %d",
                                 (unsigned long long)fnums[fi], wt, tk, lk, lie);
                        otlp_case(&st, MT_SIG_TRACES, f, fn, what);
                        /* in a span, before its name */
                        memcpy(span, f, fn);
                        memcpy(span + fn, "\x2a\x02ok", 4);
                        size_t rn = wrap_span(span, fn + 4, req);
                        otlp_case(&st, MT_SIG_TRACES, req, rn, what);
                    }
                }
            }
        }
    }
    /* over-long zero tags: the first byte's number bits are zero but the tag goes on */
    for (size_t k = 1; k <= 11; k++) {
        uint8_t f[16];
        size_t n = put_padded(f, 0, k);
        f[n++] = 0x01;
        otlp_case(&st, MT_SIG_TRACES, f, n, "padded zero tag");
    }
    static const struct {
        const char *what;
        const char *b;
        size_t n;
        mt_signal_t s;
    } cases[] = {
        /* metrics: rm{sm{metric{sum(7){is_monotonic(3) under another wire type}}}} */
        {"bool as fixed32", "\x0a\x0c\x12\x0a\x12\x08\x3a\x06\x1d\x01\x00\x00\x00\x00", 14,
         MT_SIG_METRICS},
        {"bool as LEN", "\x0a\x09\x12\x07\x12\x05\x3a\x03\x1a\x01\x01", 11, MT_SIG_METRICS},
        {"bool as fixed64", "\x0a\x10\x12\x0e\x12\x0c\x3a\x0a\x19\x01\x00\x00\x00\x00\x00\x00\x00",
         18, MT_SIG_METRICS},
        /* metric with gauge(5){dp} and sum(7){dp}: the decoder keeps the sum */
        {"oneof twice", "\x0a\x0e\x12\x0c\x12\x0a\x2a\x02\x0a\x00\x3a\x04\x0a\x00\x0a\x00", 16,
         MT_SIG_METRICS},
        /* span attribute KeyValue{value{}, value{}}: protobuf-c cannot merge them */
        {"singular twice, no oneof", "\x4a\x04\x12\x00\x12\x00", 6, MT_SIG_TRACES},
        {"singular twice, oneof set", "\x4a\x08\x12\x02\x18\x01\x12\x02\x18\x02", 10,
         MT_SIG_TRACES},
        /* span name bad UTF-8 then good: the decoder keeps the good one */
        {"bad string superseded", "\x2a\x01\xff\x2a\x01\x41", 6, MT_SIG_TRACES},
        {"good string superseded by bad", "\x2a\x01\x41\x2a\x01\xff", 6, MT_SIG_TRACES},
        {"short trace id superseded", "\x0a\x01\x01\x0a\x00", 5, MT_SIG_TRACES},
        /* link (13) with a 3-byte trace id */
        {"bad link trace id", "\x6a\x05\x0a\x03\x01\x02\x03", 7, MT_SIG_TRACES},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        uint8_t req[256];
        if (cases[i].s == MT_SIG_TRACES) {
            size_t rn = wrap_span((const uint8_t *)cases[i].b, cases[i].n, req);
            otlp_case(&st, MT_SIG_TRACES, req, rn, cases[i].what);
        } else {
            otlp_case(&st, cases[i].s, (const uint8_t *)cases[i].b, cases[i].n, cases[i].what);
        }
    }
    fprintf(stderr, "    %ld cases: %ld accepted, %ld refused, %ld undecided\n", st.cases,
            st.accepted, st.refused, st.undecided);
    CHECK(st.disagreements == 0);
    CHECK(st.undecided * 20 < st.cases);
    arena_destroy(g_arena);
}

UNIT_TEST(scanner_and_decoder_agree_on_mutated_otlp_fixtures)
{
    diff_stats_t st = {0};
    g_arena = arena_create(1 << 16, 0);
    REQUIRE(g_arena);
    for (size_t i = 0; i < MT_ARRAY_LEN(otlp_fx); i++) {
        size_t n;
        uint8_t *orig = otlp_fixture(otlp_fx[i].file, &n);
        REQUIRE(orig);
        uint8_t *d = malloc(n + 32);
        REQUIRE(d);
        mt_signal_t s = otlp_fx[i].sig;
        uint64_t items = 0;
        CHECK(otlp_scan(s, orig, n, &items) == MT_OK && items > 0);
        otlp_case(&st, s, orig, n, otlp_fx[i].file);
        char what[160];
        if (otlp_fx[i].small) {
            for (size_t cut = 0; cut < n; cut++) {
                snprintf(what, sizeof(what), "%s cut at %zu", otlp_fx[i].file, cut);
                otlp_case(&st, s, orig, cut, what);
            }
            for (size_t pos = 0; pos < n; pos++) {
                for (int bit = 0; bit < 8; bit++) {
                    memcpy(d, orig, n);
                    d[pos] ^= (uint8_t)(1u << bit);
                    snprintf(what, sizeof(what), "%s bit %d of byte %zu", otlp_fx[i].file, bit,
                             pos);
                    otlp_case(&st, s, d, n, what);
                }
            }
        } else {
            for (int k = 0; k < 400; k++) {
                memcpy(d, orig, n);
                size_t len = n;
                int muts = 1 + (int)(rnd() % 3);
                for (int m = 0; m < muts; m++) {
                    size_t pos = (size_t)(rnd() % len);
                    switch (rnd() % 3) {
                    case 0:
                        d[pos] ^= (uint8_t)(1u << (rnd() % 8));
                        break;
                    case 1:
                        d[pos] = (uint8_t)rnd();
                        break;
                    default:
                        len = pos + 1;
                    }
                }
                snprintf(what, sizeof(what), "%s random mutation %d", otlp_fx[i].file, k);
                otlp_case(&st, s, d, len, what);
            }
        }
        /* over-long tags and lengths of an unknown field in front of the real request
         * (protobuf concatenation is a merge, so the request itself stays valid) */
        uint8_t *big = malloc(n + 64);
        REQUIRE(big);
        for (unsigned wt = 0; wt < 8; wt++) {
            for (size_t tk = 2; tk <= 11; tk++) {
                size_t fn = put_field(big, 100, wt, tk, wt == 2 ? tk : 0, 0);
                memcpy(big + fn, orig, n);
                snprintf(what, sizeof(what), "%s after wt %u, %zu-byte tag", otlp_fx[i].file, wt,
                         tk);
                otlp_case(&st, s, big, fn + n, what);
            }
        }
        free(big);
        free(d);
        free(orig);
    }
    fprintf(stderr, "    %ld cases: %ld accepted, %ld refused, %ld undecided\n", st.cases,
            st.accepted, st.refused, st.undecided);
    CHECK(st.disagreements == 0);
    CHECK(st.accepted > 1000 && st.refused > 1000);
    CHECK(st.undecided * 20 < st.cases);
    arena_destroy(g_arena);
}

/* ---- remote-write 1.0: the pass-through's wire check against the conversion ------------- */

/* The receiver's verdict in pass-through mode: the wire check, and the conversion when the
 * check says the request is complex or unsorted (those always go through prw_to_otlp). */
static int rw_case(diff_stats_t *st, const uint8_t *d, size_t n, const char *what)
{
    mt_errbuf_t e1, e2;
    mt_errbuf_clear(&e1);
    mt_errbuf_clear(&e2);
    arena_reset(g_arena);
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r = NULL;
    int conv = prw_to_otlp(1, d, n, g_arena, &r, NULL, &e1);
    prw_wire_stats_t ws;
    int wire = prw_wire_check(d, n, &ws, &e2);
    st->cases++;
    if (wire == MT_OK && (ws.complex || ws.unsorted)) {
        st->undecided++; /* converted by the receiver: the conversion's verdict by definition */
        return 1;
    }
    wire == MT_OK ? st->accepted++ : st->refused++;
    if ((wire == MT_OK) != (conv == MT_OK)) {
        if (st->disagreements++ < 5) {
            fprintf(stderr, "    %s: wire check %d \"%s\", conversion %d \"%s\"\n", what, wire,
                    e2.msg, conv, e1.msg);
        }
        return 0;
    }
    return 1;
}

UNIT_TEST(wire_check_and_conversion_agree_on_mutated_remote_write)
{
    diff_stats_t st = {0};
    g_arena = arena_create(1 << 16, 0);
    REQUIRE(g_arena);
    arena_t *fa = arena_create(1 << 16, 0);
    REQUIRE(fa);
    for (int idx = 1; idx <= 3; idx++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/promrw/promrw-proto-snappy-%d.bin", unit_fixtures_dir(),
                 idx);
        size_t zlen = 0, n = 0;
        unsigned char *z = unit_read_file(path, &zlen);
        REQUIRE(z);
        uint8_t *orig = NULL;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        REQUIRE(codec_decompress(CODEC_SNAPPY, z, zlen, 20 << 20, fa, &orig, &n, &eb) == MT_OK);
        free(z);
        uint8_t *d = malloc(n + 64);
        REQUIRE(d);
        char what[128];
        rw_case(&st, orig, n, "fixture");
        /* truncations: every offset of the first 512 bytes, then every 251st */
        for (size_t cut = 0; cut < n; cut += cut < 512 ? 1 : 251) {
            snprintf(what, sizeof(what), "fixture %d cut at %zu", idx, cut);
            rw_case(&st, orig, cut, what);
        }
        /* single-bit flips: every bit of the first 160 bytes (a few whole series), then
         * every 509th byte */
        for (size_t pos = 0; pos < n; pos += pos < 160 ? 1 : 509) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(d, orig, n);
                d[pos] ^= (uint8_t)(1u << bit);
                snprintf(what, sizeof(what), "fixture %d bit %d of byte %zu", idx, bit, pos);
                rw_case(&st, d, n, what);
            }
        }
        /* an unknown field in front, every wire type, over-long tags and lengths */
        for (unsigned wt = 0; wt < 8; wt++) {
            for (size_t tk = 1; tk <= 11; tk++) {
                for (int lie = wt == 2 ? -1 : 0; lie <= (wt == 2 ? 1 : 0); lie++) {
                    uint8_t *big = malloc(n + 64);
                    REQUIRE(big);
                    size_t fn = put_field(big, 100, wt, tk < 2 ? 0 : tk, wt == 2 ? tk : 0,
                                          wt == 2 ? lie : 0);
                    memcpy(big + fn, orig, n);
                    snprintf(what, sizeof(what), "fixture %d after wt %u %zu-byte tag lie %d", idx,
                             wt, tk, lie);
                    rw_case(&st, big, fn + n, what);
                    free(big);
                }
            }
        }
        free(d);
    }
    fprintf(stderr, "    %ld cases: %ld accepted, %ld refused, %ld converted\n", st.cases,
            st.accepted, st.refused, st.undecided);
    CHECK(st.disagreements == 0);
    CHECK(st.accepted > 100 && st.refused > 100);
    arena_destroy(fa);
    arena_destroy(g_arena);
}
