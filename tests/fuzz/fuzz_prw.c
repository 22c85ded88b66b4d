/*
 * fuzz_prw.c - Prometheus remote-write decoding: prw_to_otlp for 1.0 and 2.0 bodies (the
 * converting path), and for 1.0 also prw_wire_check (the pass-through path, which validates
 * on the wire and forwards the bytes). Input: one byte whose low bit picks the version (0: 1.0,
 * 1: 2.0), then the uncompressed protobuf body (snappy is the codec target's).
 *
 * Oracle (1.0 only), the receiver's reason to trust the wire check: a body the wire check
 * refuses, the converter refuses too; a body it accepts without flagging it `complex` (native
 * histograms, exemplars, classic le / quantile parts, which it leaves to the converter), the
 * converter accepts, with the same number of series and of float samples and the same count of
 * series whose labels came out of order.
 */
#include "fuzz.h"
#include "prw_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena_t *a;
    if (!a) {
        fuzz_quiet();
        a = arena_create(1 << 16, FUZZ_ARENA_CAP);
        if (!a) {
            return 0;
        }
    }
    int version = (fuzz_take_byte(&data, &size) & 1) ? 2 : 1;
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *out = NULL;
    prw_stats_t st;
    memset(&st, 0, sizeof(st));
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int conv = prw_to_otlp(version, data, size, a, &out, &st, &eb);
    if (version == 1 && conv != MT_ENOMEM) {
        char conv_why[sizeof(eb.msg)];
        snprintf(conv_why, sizeof(conv_why), "%s", eb.set ? eb.msg : "");
        prw_wire_stats_t ws;
        memset(&ws, 0, sizeof(ws));
        mt_errbuf_clear(&eb);
        int wire = prw_wire_check(data, size, &ws, &eb);
        if (wire == MT_ENOMEM) {
            /* no verdict */
        } else if (wire != MT_OK && conv == MT_OK) {
            FUZZ_ORACLE_FAIL("rw1: wire check refuses (%s), the converter accepts", eb.msg);
        } else if (wire == MT_OK && !ws.complex && !ws.unsorted && conv != MT_OK) {
            /* (unsorted labels: the receiver converts instead of passing through, so the
             * converter's verdict is the answer) */
            FUZZ_ORACLE_FAIL("rw1: wire check accepts a plain body, the converter refuses (%s)",
                             conv_why);
        } else if (wire == MT_OK && !ws.complex && conv == MT_OK &&
                   (ws.series != st.series || ws.samples != st.samples ||
                    ws.unsorted != st.unsorted)) {
            FUZZ_ORACLE_FAIL("rw1: wire check counts series %llu samples %llu unsorted %llu, "
                             "the converter %llu %llu %llu",
                             (unsigned long long)ws.series, (unsigned long long)ws.samples,
                             (unsigned long long)ws.unsorted, (unsigned long long)st.series,
                             (unsigned long long)st.samples, (unsigned long long)st.unsorted);
        }
    }
    arena_reset(a);
    return 0;
}
