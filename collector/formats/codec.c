/*
 * codec.c - gzip via zlib's streaming inflate/deflate, zstd via its streaming API, snappy
 * block format via libsnappy (for remote-write). Output grows geometrically inside the
 * arena, and the cap is checked before each growth.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>
#include <snappy-c.h>

codec_t codec_from_name(const char *name)
{
    if (!name || !*name || strcasecmp(name, "identity") == 0 || strcasecmp(name, "none") == 0) {
        return CODEC_NONE;
    }
    if (strcasecmp(name, "gzip") == 0 || strcasecmp(name, "x-gzip") == 0) {
        return CODEC_GZIP;
    }
    if (strcasecmp(name, "zstd") == 0) {
        return CODEC_ZSTD;
    }
    if (strcasecmp(name, "snappy") == 0) {
        return CODEC_SNAPPY;
    }
    return CODEC_UNKNOWN;
}

const char *codec_name(codec_t c)
{
    static const char *n[] = {"none", "gzip", "zstd", "snappy", "unknown"};
    return n[c <= CODEC_UNKNOWN ? c : CODEC_UNKNOWN];
}

/* Grows the heap output buffer to at least `need` bytes, never past cap + 1 (one extra byte
 * lets us see "more than cap"). realloc gives the old block back, so a bomb costs at most
 * about cap bytes; the finished buffer is handed to the arena (freed on reset). */
static int grow(uint8_t **buf, size_t *cap_now, size_t need, size_t cap)
{
    if (need <= *cap_now) {
        return MT_OK;
    }
    size_t nc = *cap_now ? *cap_now * 2 : 64 * 1024;
    while (nc < need) {
        nc *= 2;
    }
    if (nc > cap + 1) {
        nc = cap + 1;
    }
    if (nc < need) {
        return MT_ETOOBIG;
    }
    uint8_t *nb = realloc(*buf, nc);
    if (!nb) {
        return MT_ENOMEM;
    }
    *buf = nb;
    *cap_now = nc;
    return MT_OK;
}

/* Hands a finished heap buffer (bcap bytes) to the arena, charged to its cap and memory
 * account (arena_charge), or frees it on failure. */
static int finish(arena_t *a, int rc, uint8_t *buf, size_t bcap, size_t used, uint8_t **out,
                  size_t *out_len)
{
    if (rc == MT_OK && arena_charge(a, bcap) != 0) {
        rc = MT_ENOMEM; /* the arena's flags say whether the cap or the limit refused it */
    }
    if (rc == MT_OK && arena_on_release(a, free, buf) != 0) {
        rc = MT_ENOMEM;
    }
    if (rc != MT_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = used;
    return MT_OK;
}

static int gunzip(const uint8_t *in, size_t in_len, size_t cap, arena_t *a, uint8_t **out,
                  size_t *out_len, mt_errbuf_t *eb)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 32) != Z_OK) { /* 32: accept gzip and zlib headers */
        return MT_ENOMEM;
    }
    uint8_t *buf = NULL;
    size_t bcap = 0, used = 0;
    size_t guess = in_len * 4 < cap ? in_len * 4 : cap;
    int rc = grow(&buf, &bcap, guess ? guess : 1, cap);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    int zr = Z_OK;
    while (rc == MT_OK) {
        if (used == bcap) {
            rc = grow(&buf, &bcap, used + 1, cap);
            if (rc != MT_OK) {
                break;
            }
        }
        zs.next_out = buf + used;
        zs.avail_out = (uInt)(bcap - used);
        zr = inflate(&zs, Z_NO_FLUSH);
        used = bcap - zs.avail_out;
        if (used > cap) {
            rc = MT_ETOOBIG;
            break;
        }
        if (zr == Z_STREAM_END) {
            /* concatenated gzip members are legal; continue if input remains */
            if (zs.avail_in > 0) {
                inflateReset(&zs);
                continue;
            }
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            mt_failf(eb, "invalid gzip data: %s", zs.msg ? zs.msg : "corrupt stream");
            rc = MT_EINVAL;
            break;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0) {
            mt_failf(eb, "invalid gzip data: truncated stream");
            rc = MT_EINVAL;
            break;
        }
    }
    inflateEnd(&zs);
    return finish(a, rc, buf, bcap, used, out, out_len);
}

static int unzstd(const uint8_t *in, size_t in_len, size_t cap, arena_t *a, uint8_t **out,
                  size_t *out_len, mt_errbuf_t *eb)
{
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc) {
        return MT_ENOMEM;
    }
    /* refuse frames that ask for huge windows: memory is bounded by us, not the sender */
    ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, 27);
    uint8_t *buf = NULL;
    size_t bcap = 0;
    size_t guess = in_len * 4 < cap ? in_len * 4 : cap;
    int rc = grow(&buf, &bcap, guess ? guess : 1, cap);
    ZSTD_inBuffer ib = {in, in_len, 0};
    ZSTD_outBuffer ob = {buf, bcap, 0};
    size_t zr = 1;
    while (rc == MT_OK) {
        if (ob.pos == ob.size) {
            rc = grow(&buf, &bcap, ob.pos + 1, cap);
            if (rc != MT_OK) {
                break;
            }
            ob.dst = buf;
            ob.size = bcap;
        }
        zr = ZSTD_decompressStream(dc, &ob, &ib);
        if (ZSTD_isError(zr)) {
            mt_failf(eb, "invalid zstd data: %s", ZSTD_getErrorName(zr));
            rc = MT_EINVAL;
            break;
        }
        if (ob.pos > cap) {
            rc = MT_ETOOBIG;
            break;
        }
        if (zr == 0 && ib.pos == ib.size) {
            break; /* frame complete and no more input */
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            mt_failf(eb, "invalid zstd data: truncated frame");
            rc = MT_EINVAL;
            break;
        }
    }
    ZSTD_freeDCtx(dc);
    return finish(a, rc, buf, bcap, ob.pos, out, out_len);
}

static int unsnappy(const uint8_t *in, size_t in_len, size_t cap, arena_t *a, uint8_t **out,
                    size_t *out_len, mt_errbuf_t *eb)
{
    size_t n = 0;
    if (snappy_uncompressed_length((const char *)in, in_len, &n) != SNAPPY_OK) {
        mt_failf(eb, "invalid snappy data: bad length header");
        return MT_EINVAL;
    }
    if (n > cap) {
        return MT_ETOOBIG; /* checked before allocating */
    }
    uint8_t *buf = arena_alloc(a, n ? n : 1);
    if (!buf) {
        return arena_over_cap(a) ? MT_ETOOBIG : MT_ENOMEM;
    }
    if (snappy_uncompress((const char *)in, in_len, (char *)buf, &n) != SNAPPY_OK) {
        mt_failf(eb, "invalid snappy data: corrupt block");
        return MT_EINVAL;
    }
    *out = buf;
    *out_len = n;
    return MT_OK;
}

int codec_decompress(codec_t c, const uint8_t *in, size_t in_len, size_t cap, arena_t *a,
                     uint8_t **out, size_t *out_len, mt_errbuf_t *eb)
{
    switch (c) {
    case CODEC_NONE:
        *out = (uint8_t *)in;
        *out_len = in_len;
        return in_len > cap ? MT_ETOOBIG : MT_OK;
    case CODEC_GZIP:
        return gunzip(in, in_len, cap, a, out, out_len, eb);
    case CODEC_ZSTD:
        return unzstd(in, in_len, cap, a, out, out_len, eb);
    case CODEC_SNAPPY:
        return unsnappy(in, in_len, cap, a, out, out_len, eb);
    default:
        mt_failf(eb, "unsupported content encoding");
        return MT_EUNSUPPORTED;
    }
}

int codec_compress(codec_t c, const uint8_t *in, size_t in_len, int level, uint8_t **out,
                   size_t *out_len)
{
    if (c == CODEC_GZIP) {
        z_stream zs;
        memset(&zs, 0, sizeof(zs));
        if (deflateInit2(&zs, level > 0 ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            return MT_ENOMEM;
        }
        size_t bound = deflateBound(&zs, (uLong)in_len);
        uint8_t *buf = malloc(bound);
        if (!buf) {
            deflateEnd(&zs);
            return MT_ENOMEM;
        }
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)in_len;
        zs.next_out = buf;
        zs.avail_out = (uInt)bound;
        int zr = deflate(&zs, Z_FINISH);
        size_t n = bound - zs.avail_out;
        deflateEnd(&zs);
        if (zr != Z_STREAM_END) {
            free(buf);
            return MT_ERR;
        }
        *out = buf;
        *out_len = n;
        return MT_OK;
    }
    if (c == CODEC_ZSTD) {
        size_t bound = ZSTD_compressBound(in_len);
        uint8_t *buf = malloc(bound);
        if (!buf) {
            return MT_ENOMEM;
        }
        size_t n = ZSTD_compress(buf, bound, in, in_len, level > 0 ? level : 1);
        if (ZSTD_isError(n)) {
            free(buf);
            return MT_ERR;
        }
        *out = buf;
        *out_len = n;
        return MT_OK;
    }
    if (c == CODEC_SNAPPY) {
        size_t bound = snappy_max_compressed_length(in_len);
        uint8_t *buf = malloc(bound);
        if (!buf) {
            return MT_ENOMEM;
        }
        if (snappy_compress((const char *)in, in_len, (char *)buf, &bound) != SNAPPY_OK) {
            free(buf);
            return MT_ERR;
        }
        *out = buf;
        *out_len = bound;
        return MT_OK;
    }
    return MT_EUNSUPPORTED;
}
