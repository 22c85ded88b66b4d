/*
 * fuzz_otlp_json.c - OTLP/JSON decode (otlp_json_decode, the reflection-driven converter the
 * receivers use for application/json), then what the receiver does with a decoded request
 * (otlp_validate_utf8, otlp_check) and the encoder exporters use (otlp_json_encode). Input: one
 * byte picking the signal (mod 4), then the JSON text.
 *
 * Oracle: whatever decodes and validates encodes, and that encoding decodes again to a request
 * with the same item count and the same encoding (a JSON round trip is a fixed point).
 */
#include "fuzz.h"
#include "otlp.h"
#include "otlp_json.h"

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
    const ProtobufCMessageDescriptor *desc = otlp_request_desc(sig);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m = otlp_json_decode(desc, (const char *)data, size, a, &eb);
    uint64_t items = 0;
    if (!m || otlp_validate_utf8(m, &eb) != MT_OK || otlp_check(sig, m, &items, &eb) != MT_OK) {
        arena_reset(a);
        return 0;
    }
    size_t n1 = 0;
    char *j1 = otlp_json_encode(m, &n1);
    if (!j1) {
        arena_reset(a);
        return 0;
    }
    mt_errbuf_clear(&eb);
    ProtobufCMessage *m2 = otlp_json_decode(desc, j1, n1, a, &eb);
    uint64_t items2 = 0;
    if (!m2) {
        if (!arena_over_cap(a)) {
            FUZZ_ORACLE_FAIL("%s: our own encoding does not decode: %s", mt_signal_name(sig),
                             eb.msg);
        }
    } else if (otlp_check(sig, m2, &items2, &eb) != MT_OK || items2 != items) {
        FUZZ_ORACLE_FAIL("%s: round trip changed the items (%llu -> %llu, %s)", mt_signal_name(sig),
                         (unsigned long long)items, (unsigned long long)items2,
                         eb.set ? eb.msg : "");
    } else {
        size_t n2 = 0;
        char *j2 = otlp_json_encode(m2, &n2);
        if (j2 && (n2 != n1 || memcmp(j1, j2, n1) != 0)) {
            FUZZ_ORACLE_FAIL("%s: encode(decode(encode(x))) differs from encode(x)",
                             mt_signal_name(sig));
        }
        free(j2);
    }
    free(j1);
    arena_reset(a);
    return 0;
}
