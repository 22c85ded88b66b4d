/*
 * sb.c - see sb.h. Everything here is the slow or the less common path; the appends callers
 * make per character or per value are inline in the header.
 */
#include "sb.h"

#include "mt.h"

#include <stdlib.h>

void sb_fini(sb_t *b)
{
    if (b->fixed) {
        b->len = 0;
        b->err = 0;
        if (b->cap) {
            b->p[0] = 0;
        }
        return;
    }
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

char *sb_take(sb_t *b, size_t *len)
{
    if (!b->err && !b->p) {
        sb_room(b, 0); /* "" rather than NULL: NULL means failure */
    }
    char *p = b->err ? NULL : b->p;
    if (len) {
        *len = p ? b->len : 0;
    }
    if (!p) {
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
    return p;
}

int sb_grow_(sb_t *b, size_t n)
{
    if (b->err) {
        return -1;
    }
    if (b->fixed || n > SIZE_MAX / 2 - b->len || (b->max && b->len + n + 1 > b->max)) {
        b->err = MT_ETOOBIG;
        return -1;
    }
    size_t need = b->len + n + 1, nc = b->cap ? b->cap : 256;
    while (nc < need) {
        nc *= 2;
    }
    if (b->max && nc > b->max) {
        nc = b->max; /* the cap is a promise about memory too */
    }
    char *np = realloc(b->p, nc);
    if (!np) {
        b->err = MT_ENOMEM;
        return -1;
    }
    if (!b->p) {
        np[0] = 0;
    }
    b->p = np;
    b->cap = nc;
    return 0;
}

void sb_vprintf(sb_t *b, const char *fmt, va_list ap)
{
    if (b->err) {
        return;
    }
    if (!b->p && sb_room(b, 0) < 0) {
        return;
    }
    va_list aq;
    va_copy(aq, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->p + b->len, room, fmt, aq);
    va_end(aq);
    if (n < 0) {
        sb_fail(b, MT_EINVAL);
        return;
    }
    if ((size_t)n >= room) {
        if (sb_room(b, (size_t)n) < 0) {
            return;
        }
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    }
    b->len += (size_t)n;
}

void sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void sb_u64(sb_t *b, uint64_t v)
{
    char t[24];
    int n = 0;
    do {
        t[23 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_put(b, t + 24 - n, (size_t)n);
}

void sb_i64(sb_t *b, int64_t v)
{
    if (v < 0) {
        sb_putc(b, '-');
        sb_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        sb_u64(b, (uint64_t)v);
    }
}

void sb_base64(sb_t *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (sb_room(b, (n + 2) / 3 * 4) < 0) {
        return;
    }
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    b->len = (size_t)(o - b->p);
    b->p[b->len] = 0;
}

int sb_fread(sb_t *b, FILE *f)
{
    while (!b->err) {
        size_t want = 65536;
        if (b->max) {
            size_t left = b->max > b->len + 1 ? b->max - b->len - 1 : 0;
            if (left == 0) {
                char c; /* full: one more byte means the input does not fit */
                if (fread(&c, 1, 1, f) == 1) {
                    sb_fail(b, MT_ETOOBIG);
                }
                break;
            }
            want = want < left ? want : left;
        }
        if (sb_room(b, want) < 0) {
            break;
        }
        size_t r = fread(b->p + b->len, 1, want, f);
        b->len += r;
        b->p[b->len] = 0;
        if (r < want) {
            break; /* end of input or an error: fread retries short reads itself */
        }
    }
    return ferror(f) ? MT_EIO : b->err;
}
