/*
 * codec.h - request/response body compression: gzip (zlib) and zstd, both directions.
 * Decompression writes into an arena and stops as soon as the output would pass `cap`,
 * so a compression bomb costs at most `cap` bytes and a few milliseconds.
 */
#ifndef CODEC_H
#define CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "mt.h"

typedef enum { CODEC_NONE = 0, CODEC_GZIP, CODEC_ZSTD, CODEC_SNAPPY, CODEC_UNKNOWN } codec_t;

/* Maps a Content-Encoding header value (NULL, empty or identity = none) to a codec. */
codec_t codec_from_name(const char *name);
const char *codec_name(codec_t c);

/* Decompresses `in` into arena memory. Returns MT_OK with *out and *out_len set, MT_ETOOBIG
 * when the output would exceed `cap` (nothing more is inflated), MT_EINVAL for corrupt input
 * (eb says why), MT_ENOMEM when the arena cannot grow. */
int codec_decompress(codec_t c, const uint8_t *in, size_t in_len, size_t cap, arena_t *a,
                     uint8_t **out, size_t *out_len, mt_errbuf_t *eb);

/* Compresses into a malloc'd buffer the caller frees. level <= 0 picks the codec default. */
int codec_compress(codec_t c, const uint8_t *in, size_t in_len, int level, uint8_t **out,
                   size_t *out_len);

#endif
