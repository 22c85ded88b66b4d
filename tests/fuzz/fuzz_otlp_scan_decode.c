/*
 * fuzz_otlp_scan_decode.c - the OTLP/protobuf receive path: the validating wire scanner
 * (otlp_scan_events, what the receiver runs first) against the full decode it falls back to
 * (otlp_unpack + otlp_validate_utf8 + otlp_check). Input: one byte picking the signal (mod 4:
 * traces, metrics, logs, profiles), then an Export*ServiceRequest body.
 *
 * Oracle: the scanner accepts exactly when the decoder accepts, with the same item count.
 * When the scanner refuses what the decoder accepts, the receiver serves the request anyway on
 * the slow path and logs a warning per request; when it accepts what the decoder refuses,
 * invalid data is forwarded. Both are bugs (FUZZ_ORACLE=0 reports them without aborting).
 */
#include "fuzz.h"
#include "otlp.h"
#include "otlp_json.h"

static int count_value(void *arg, const char *p, size_t n)
{
    (void)p;
    *(size_t *)arg += n;
    return 0;
}

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
    mt_signal_t sig = (mt_signal_t)(fuzz_take_byte(&data, &size) % MT_SIG_COUNT);

    uint64_t fast_items = 0;
    otlp_events_t ev;
    ev.total = 0;
    int frc = otlp_scan_events(sig, data, size, &fast_items, &ev);
    int fast = frc == MT_OK;
    uint64_t plain_items = 0;
    int prc = otlp_scan(sig, data, size, &plain_items);
    int plain = prc == MT_OK;
    /* MT_EUNSUPPORTED: the scanner cannot tell (a oneof or a singular message sent twice, a
     * string cut by a NUL): the receiver decodes such a request, so it is no refusal */
    int undecided = frc == MT_EUNSUPPORTED;

    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint64_t slow_items = 0;
    ProtobufCMessage *m = otlp_unpack(sig, data, size, a, &eb);
    int slow =
        m && otlp_validate_utf8(m, &eb) == MT_OK && otlp_check(sig, m, &slow_items, &eb) == MT_OK;
    if (fast) {
        /* what processors do next with bytes the scanner passed: walk every value */
        size_t seen = 0;
        (void)otlp_walk_values(sig, data, size, count_value, &seen);
    }

    if (fast != plain || undecided != (prc == MT_EUNSUPPORTED) ||
        (fast && fast_items != plain_items)) {
        FUZZ_ORACLE_FAIL("%s: otlp_scan_events %s (%llu items) but otlp_scan %s (%llu items)",
                         mt_signal_name(sig), fast ? "accepts" : "refuses",
                         (unsigned long long)fast_items, plain ? "accepts" : "refuses",
                         (unsigned long long)plain_items);
    }
    if (arena_over_cap(a) || undecided) {
        /* the decoder ran out of room, or the scanner left the verdict to the decoder */
    } else if (fast != slow) {
        FUZZ_ORACLE_FAIL("%s: scanner %s, decoder %s (%s)", mt_signal_name(sig),
                         fast ? "accepts" : "refuses", slow ? "accepts" : "refuses",
                         eb.set ? eb.msg : "no reason");
    } else if (fast && fast_items != slow_items) {
        FUZZ_ORACLE_FAIL("%s: scanner counts %llu items, decoder %llu", mt_signal_name(sig),
                         (unsigned long long)fast_items, (unsigned long long)slow_items);
    }
    arena_reset(a);
    return 0;
}
