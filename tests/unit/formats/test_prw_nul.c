/*
 * test_prw_nul.c - label values holding a NUL byte. protobuf-c hands strings over as C
 * strings, so a converting decoder would see "x\0A" and "x\0B" both as "x" and merge two
 * series into one; every remote-write path refuses such a request instead, naming the field:
 * RW 1.0 and 2.0 conversion (prw_to_otlp) and the 1.0 pass-through (prw_wire_check).
 */
#include "unit.h"

#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "pbwire.h"
#include "prw_decode.h"

/* Appends field fnum (LEN) holding [p, p+n). */
static uint8_t *put_len(uint8_t *o, unsigned fnum, const void *p, size_t n)
{
    *o++ = (uint8_t)(fnum << 3 | 2);
    o = put_varint(o, n);
    memcpy(o, p, n);
    return o + n;
}

/* RW1 TimeSeries{__name__="m", a=<value>, one sample}. */
static size_t rw1_series(uint8_t *out, const char *value, size_t vn)
{
    uint8_t lab[64], ts[160], *e;
    e = put_len(lab, 1, "__name__", 8);
    e = put_len(e, 2, "m", 1);
    uint8_t *t = put_len(ts, 1, lab, (size_t)(e - lab));
    e = put_len(lab, 1, "a", 1);
    e = put_len(e, 2, value, vn);
    t = put_len(t, 1, lab, (size_t)(e - lab));
    /* Sample{value 1.0 (fixed64), timestamp 1000} */
    const uint8_t sample[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xe8, 0x07};
    t = put_len(t, 2, sample, sizeof(sample));
    return (size_t)(put_len(out, 1, ts, (size_t)(t - ts)) - out);
}

UNIT_TEST(rw1_label_value_with_nul_is_refused_not_cut)
{
    arena_t *a = arena_create(1 << 16, 0);
    REQUIRE(a);
    uint8_t req[512];
    size_t n = rw1_series(req, "x\0A", 3);
    n += rw1_series(req + n, "x\0B", 3);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *out = NULL;
    CHECK(prw_to_otlp(1, req, n, a, &out, NULL, &eb) == MT_EINVAL);
    CHECK(strstr(eb.msg, "timeseries[0].labels[1].value holds a NUL byte") != NULL);
    /* the pass-through check refuses it as well */
    prw_wire_stats_t ws;
    mt_errbuf_clear(&eb);
    CHECK(prw_wire_check(req, n, &ws, &eb) == MT_EINVAL && strstr(eb.msg, "NUL"));
    /* and without the NUL both paths take it */
    n = rw1_series(req, "xA", 2);
    n += rw1_series(req + n, "xB", 2);
    mt_errbuf_clear(&eb);
    CHECK(prw_to_otlp(1, req, n, a, &out, NULL, &eb) == MT_OK);
    CHECK(prw_wire_check(req, n, &ws, &eb) == MT_OK && ws.samples == 2);
    arena_destroy(a);
}

UNIT_TEST(rw2_symbol_with_nul_is_refused_not_cut)
{
    arena_t *a = arena_create(1 << 16, 0);
    REQUIRE(a);
    for (int nul = 0; nul < 2; nul++) {
        uint8_t req[256], ts[64], *e = req;
        e = put_len(e, 4, "", 0);
        e = put_len(e, 4, "__name__", 8);
        e = put_len(e, 4, "m", 1);
        e = put_len(e, 4, "a", 1);
        e = put_len(e, 4, nul ? "x\0A" : "xA", nul ? 3 : 2);
        const uint8_t refs[] = {1, 2, 3, 4};
        uint8_t *t = put_len(ts, 1, refs, sizeof(refs));
        const uint8_t sample[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xe8, 0x07};
        t = put_len(t, 2, sample, sizeof(sample));
        e = put_len(e, 5, ts, (size_t)(t - ts));
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *out = NULL;
        int rc = prw_to_otlp(2, req, (size_t)(e - req), a, &out, NULL, &eb);
        if (nul) {
            CHECK(rc == MT_EINVAL);
            CHECK(strstr(eb.msg, "symbols[4] holds a NUL byte") != NULL);
        } else {
            CHECK(rc == MT_OK);
        }
    }
    arena_destroy(a);
}
