/*
 * grpc.c - gRPC wire conventions (grpc.h).
 */
#include "grpc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"

const char *grpc_status_name(int code)
{
    switch (code) {
#define GRPC_NAME_(e, v, s) \
    case v:                 \
        return s;
        GRPC_STATUSES(GRPC_NAME_)
#undef GRPC_NAME_
    }
    return "unknown";
}

int grpc_status_retryable(int code)
{
    switch (code) {
    case GRPC_CANCELLED:
    case GRPC_DEADLINE_EXCEEDED:
    case GRPC_ABORTED:
    case GRPC_OUT_OF_RANGE:
    case GRPC_UNAVAILABLE:
    case GRPC_DATA_LOSS:
    case GRPC_RESOURCE_EXHAUSTED:
        return 1;
    }
    return 0;
}

grpc_status_t grpc_status_from_http(int http_status)
{
    switch (http_status) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    }
    return GRPC_UNKNOWN;
}

void grpc_prefix_put(uint8_t out[GRPC_PREFIX_LEN], int compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int grpc_prefix_get(const uint8_t *p, size_t n, int *compressed, uint32_t *len)
{
    if (n < GRPC_PREFIX_LEN) {
        return 0;
    }
    if (p[0] > 1) {
        return -1;
    }
    *compressed = p[0];
    *len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    return GRPC_PREFIX_LEN;
}

int grpc_timeout_parse(const char *v, int64_t *ns)
{
    int64_t n = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9'; i++) {
        if (i == 8) {
            return -1;
        }
        n = n * 10 + (v[i] - '0');
    }
    if (i == 0 || v[i] == 0 || v[i + 1] != 0) {
        return -1;
    }
    static const struct {
        char unit;
        int64_t ns;
    } units[] = {{'H', 3600000000000LL}, {'M', 60000000000LL}, {'S', 1000000000LL},
                 {'m', 1000000LL},       {'u', 1000LL},        {'n', 1LL}};
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        if (units[k].unit == v[i]) {
            *ns = n > INT64_MAX / units[k].ns ? INT64_MAX : n * units[k].ns;
            return 0;
        }
    }
    return -1;
}

void grpc_timeout_format(int64_t ms, char *buf, size_t cap)
{
    if (ms < 0) {
        ms = 0;
    }
    if (ms <= 99999999) {
        snprintf(buf, cap, "%lldm", (long long)ms);
    } else if (ms / 1000 <= 99999999) {
        snprintf(buf, cap, "%lldS", (long long)(ms / 1000));
    } else {
        snprintf(buf, cap, "%lldM", (long long)(ms / 60000 > 99999999 ? 99999999 : ms / 60000));
    }
}

void grpc_message_encode(sb_t *b, const char *msg, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            sb_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_put(b, e, 3);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

void grpc_message_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        int h, l;
        if (r[0] == '%' && (h = hexval(r[1])) >= 0 && (l = hexval(r[2])) >= 0) {
            *w++ = (char)(h << 4 | l);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* Appends a length-delimited field header (one-byte tag) for n payload bytes. */
static void put_len(uint8_t **p, uint32_t field, size_t n)
{
    *(*p)++ = (uint8_t)(field << 3 | 2);
    *p = put_varint(*p, n);
}

void grpc_status_details_put(sb_t *b, int code, const char *msg, int64_t delay_ms)
{
    size_t mlen = msg ? strlen(msg) : 0;
    if (mlen > 4096) {
        mlen = 4096;
    }
    /* Duration{seconds=1, nanos=2} inside RetryInfo{retry_delay=1} inside Any{type_url=1,
     * value=2} inside Status{code=1, message=2, details=3} */
    uint8_t dur[24], *d = dur;
    if (delay_ms >= 0) {
        int64_t s = delay_ms / 1000, nanos = (delay_ms % 1000) * 1000000;
        if (s) {
            *d++ = 1 << 3;
            d = put_varint(d, (uint64_t)s);
        }
        if (nanos) {
            *d++ = 2 << 3;
            d = put_varint(d, (uint64_t)nanos);
        }
    }
    size_t dlen = (size_t)(d - dur);
    size_t ri = wlen_field(dlen);
    size_t url = sizeof(GRPC_RETRY_INFO_URL) - 1;
    size_t any = wlen_field(url) + wlen_field(ri);
    size_t total = (code ? 1 + vsz((uint64_t)code) : 0) + (mlen ? wlen_field(mlen) : 0) +
                   (delay_ms >= 0 ? wlen_field(any) : 0);
    uint8_t *buf = malloc(total ? total : 1), *p = buf;
    if (!buf) {
        sb_fail(b, MT_ENOMEM);
        return;
    }
    if (code) {
        *p++ = 1 << 3;
        p = put_varint(p, (uint64_t)code);
    }
    if (mlen) {
        put_len(&p, 2, mlen);
        memcpy(p, msg, mlen);
        p += mlen;
    }
    if (delay_ms >= 0) {
        put_len(&p, 3, any);
        put_len(&p, 1, url);
        memcpy(p, GRPC_RETRY_INFO_URL, url);
        p += url;
        put_len(&p, 2, ri);
        put_len(&p, 1, dlen);
        memcpy(p, dur, dlen);
        p += dlen;
    }
    size_t start = b->len;
    sb_base64(b, buf, (size_t)(p - buf));
    free(buf);
    while (b->len > start && b->p[b->len - 1] == '=') { /* -bin metadata is sent unpadded */
        b->p[--b->len] = 0;
    }
}

/* Duration{seconds, nanos} in ms. */
static int read_duration(const uint8_t *p, const uint8_t *end, int64_t *ms)
{
    wf_t f;
    int r;
    int64_t s = 0, nanos = 0;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num == 1 && f.wt == 0) {
            s = (int64_t)f.v;
        } else if (f.num == 2 && f.wt == 0) {
            nanos = (int32_t)f.v;
        }
    }
    if (r < 0 || s < 0 || nanos < 0) {
        return -1;
    }
    *ms = s * 1000 + nanos / 1000000;
    return 0;
}

int grpc_status_details_retry_delay(const char *b64, size_t n, int64_t *delay_ms)
{
    if (n == 0 || n > 65536) {
        return -1;
    }
    size_t padded = (n + 3) / 4 * 4;
    char *in = malloc(padded + 1);
    uint8_t *raw = malloc(padded / 4 * 3 + 1);
    int rc = -1;
    if (!in || !raw) {
        goto out;
    }
    memcpy(in, b64, n);
    memset(in + n, '=', padded - n);
    int len = EVP_DecodeBlock(raw, (const unsigned char *)in, (int)padded);
    if (len < 0) {
        goto out;
    }
    len -= (int)(padded - n); /* EVP_DecodeBlock counts the padding as zero bytes */
    const uint8_t *p = raw, *end = raw + len;
    wf_t f;
    while (wnext(&p, end, &f) > 0) {
        if (f.num != 3 || f.wt != 2) {
            continue;
        }
        const uint8_t *a = f.p, *aend = f.p + f.n;
        wf_t g;
        int is_retry = 0;
        const uint8_t *val = NULL;
        size_t vlen = 0;
        while (wnext(&a, aend, &g) > 0) {
            if (g.num == 1 && g.wt == 2 && g.n == sizeof(GRPC_RETRY_INFO_URL) - 1 &&
                memcmp(g.p, GRPC_RETRY_INFO_URL, g.n) == 0) {
                is_retry = 1;
            } else if (g.num == 2 && g.wt == 2) {
                val = g.p;
                vlen = g.n;
            }
        }
        if (is_retry && val) {
            const uint8_t *r = val, *rend = val + vlen;
            wf_t h;
            *delay_ms = 0;
            rc = 0;
            while (wnext(&r, rend, &h) > 0) {
                if (h.num == 1 && h.wt == 2 && read_duration(h.p, h.p + h.n, delay_ms) < 0) {
                    rc = -1;
                }
            }
            goto out;
        }
    }
out:
    free(in);
    free(raw);
    return rc;
}
