/*
 * pbwire.h - the protobuf wire format, read and written by hand where protobuf-c's object
 * model costs too much on a hot path (the Loki exporter's walk of OTLP logs, the remote-write
 * pass-through). Readers return slices into the buffer (zero-copy); they refuse what
 * protobuf_c_message_unpack refuses at this level: bad varints, lengths past the end, groups
 * and invalid wire types. Field-level rules (wire type of a known field, UTF-8) are the
 * caller's.
 */
#ifndef PBWIRE_H
#define PBWIRE_H

#include <stddef.h>
#include <stdint.h>

/* One field as read by wnext(). */
typedef struct wf {
    uint32_t num, wt;
    uint64_t v;       /* varint, fixed64 or fixed32 value */
    const uint8_t *p; /* length-delimited payload */
    size_t n;
} wf_t;

static inline const uint8_t *wvarint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (p < end && *p < 0x80) {
        *v = *p;
        return p + 1;
    }
    uint64_t r = 0;
    for (int shift = 0; shift < 70 && p < end; shift += 7) {
        uint8_t c = *p++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

/* A field's tag read exactly as protobuf-c 1.4 reads it (parse_tag_and_wiretype): at most five
 * bytes; the first byte's field-number bits must not all be zero (so 0x00..0x07 is refused, while
 * an over-long zero such as 80 00 is field number 0, an unknown field); the number is the low 32
 * bits after the wire type. Returns the byte after the tag, or NULL. */
static inline const uint8_t *wtag(const uint8_t *p, const uint8_t *end, uint32_t *num, uint32_t *wt)
{
    if (p >= end || (*p & 0xf8) == 0) {
        return NULL;
    }
    *wt = *p & 7u;
    uint32_t t = (uint32_t)(*p & 0x7f) >> 3;
    if (!(*p & 0x80)) {
        *num = t;
        return p + 1;
    }
    size_t max = (size_t)(end - p) < 5 ? (size_t)(end - p) : 5;
    for (size_t i = 1; i < max; i++) {
        t |= (uint32_t)(p[i] & 0x7f) << (4 + 7 * (i - 1));
        if (!(p[i] & 0x80)) {
            *num = t;
            return p + i + 1;
        }
    }
    return NULL;
}

/* A length prefix read as protobuf-c reads it (scan_length_prefixed_data): at most five bytes,
 * at most INT_MAX, and the payload within [p, end). Returns the payload, or NULL. */
static inline __attribute__((always_inline)) const uint8_t *wlen(const uint8_t *p,
                                                                 const uint8_t *end, size_t *n)
{
    if (p < end && *p < 0x80) {
        if (*p > (size_t)(end - p - 1)) {
            return NULL;
        }
        *n = *p;
        return p + 1;
    }
    uint64_t v = 0;
    size_t max = (size_t)(end - p) < 5 ? (size_t)(end - p) : 5;
    for (size_t i = 0; i < max; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (v > 0x7fffffffu || v > (uint64_t)(end - p - (ptrdiff_t)i - 1)) {
                return NULL;
            }
            *n = (size_t)v;
            return p + i + 1;
        }
    }
    return NULL;
}

/* Next field of a message: 1 (read into *f), 0 at the end, -1 malformed. Accepts exactly what
 * protobuf-c's unpack accepts at the wire level (tests/unit/formats/test_scan_differential.c). */
static inline __attribute__((always_inline)) int wnext(const uint8_t **pp, const uint8_t *end,
                                                       wf_t *f)
{
    const uint8_t *p = *pp;
    if (p >= end) {
        return 0;
    }
    if (!(p = wtag(p, end, &f->num, &f->wt))) {
        return -1;
    }
    f->v = 0;
    f->p = NULL;
    f->n = 0;
    switch (f->wt) {
    case 0:
        if (!(p = wvarint(p, end, &f->v))) {
            return -1;
        }
        break;
    case 1:
        if (end - p < 8) {
            return -1;
        }
        f->v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
               (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
               (uint64_t)p[7] << 56;
        p += 8;
        break;
    case 5:
        if (end - p < 4) {
            return -1;
        }
        f->v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
        p += 4;
        break;
    case 2:
        if (!(p = wlen(p, end, &f->n))) {
            return -1;
        }
        f->p = p;
        p += f->n;
        break;
    default:
        return -1; /* groups (3, 4) and invalid wire types: protobuf-c refuses them too */
    }
    *pp = p;
    return 1;
}

static inline size_t vsz(uint64_t v)
{
    if (v < 0x80) {
        return 1;
    }
    if (v < 0x4000) {
        return 2;
    }
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        *p++ = (uint8_t)v;
        return p;
    }
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Bytes of a length-delimited field with a one-byte tag and a payload of n bytes. */
static inline size_t wlen_field(size_t n)
{
    return 1 + vsz(n) + n;
}

#endif
