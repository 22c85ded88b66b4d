/*
 * fuzz_codec.c - request body decompression (codec_decompress) for gzip, zstd and snappy with
 * the output cap the receivers pass, so bombs and corrupt frames are exercised, then a round
 * trip through codec_compress. Input: one byte picking the codec (mod 3) and the cap (bit 2:
 * a 4 KiB cap instead of 1 MiB, to reach the ETOOBIG paths cheaply), then the compressed body.
 *
 * Oracle: no output past the cap; anything that decompresses compresses again and
 * decompresses to the same bytes.
 */
#include "codec.h"
#include "fuzz.h"

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
    static const codec_t codecs[] = {CODEC_GZIP, CODEC_ZSTD, CODEC_SNAPPY};
    unsigned sel = fuzz_take_byte(&data, &size);
    codec_t c = codecs[(sel & 3) % 3];
    size_t cap = (sel & 4) ? 4096 : (1u << 20);
    uint8_t *out = NULL;
    size_t out_len = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = codec_decompress(c, data, size, cap, a, &out, &out_len, &eb);
    if (rc == MT_OK) {
        if (out_len > cap) {
            FUZZ_ORACLE_FAIL("%s: %zu bytes out past the cap %zu", codec_name(c), out_len, cap);
        }
        uint8_t *z = NULL;
        size_t zn = 0;
        if (codec_compress(c, out, out_len, 1, &z, &zn) == MT_OK) {
            uint8_t *back = NULL;
            size_t back_len = 0;
            mt_errbuf_clear(&eb);
            int rc2 = codec_decompress(c, z, zn, cap, a, &back, &back_len, &eb);
            if (rc2 != MT_OK && rc2 != MT_ENOMEM) {
                FUZZ_ORACLE_FAIL("%s: our own compression of %zu bytes does not decompress: %s",
                                 codec_name(c), out_len, eb.set ? eb.msg : mt_strerror(rc2));
            } else if (rc2 == MT_OK &&
                       (back_len != out_len || (out_len && memcmp(back, out, out_len) != 0))) {
                FUZZ_ORACLE_FAIL("%s: round trip changed %zu bytes", codec_name(c), out_len);
            }
            free(z);
        }
    }
    arena_reset(a);
    return 0;
}
