/*
 * sb.h - the one growable string builder (curl's dynbuf, Redis' sds in spirit): a malloc'd
 * buffer, NUL-terminated after every write, with an optional cap. A failed allocation or a
 * write past the cap latches an error and turns later writes into no-ops, so a renderer checks
 * once at the end instead of after every append. Binary data is fine (the NUL is extra).
 */
#ifndef SB_H
#define SB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mt.h"

typedef struct sb {
    char *p;    /* NULL until the first write or sb_reserve; then NUL-terminated */
    size_t len; /* bytes written, without the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* 0: no cap; else len + 1 never passes it (the write that would, fails) */
    int err;    /* 0, or the first failure: MT_ENOMEM, MT_ETOOBIG, or the caller's sb_fail */
    int fixed;  /* sb_init_fixed: p is the caller's buffer, never grown nor freed */
} sb_t;

/* An empty builder whose contents (NUL included) may not pass max bytes; 0 = unbounded. A
 * zeroed sb_t is an unbounded empty builder too. */
static inline void sb_init(sb_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

/* A builder over the caller's buffer of cap bytes (a stack buffer on a hot path): no
 * allocation ever; a write that would not fit with its NUL fails with MT_ETOOBIG. cap 0 starts
 * failed. sb_take is not for these; sb_fini just empties them. */
static inline void sb_init_fixed(sb_t *b, char *buf, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->p = buf;
    b->cap = b->max = cap;
    b->fixed = 1;
    if (cap) {
        buf[0] = 0;
    } else {
        b->err = MT_ETOOBIG;
    }
}

/* Frees the buffer; the builder is empty (same max) and usable again. */
void sb_fini(sb_t *b);
/* Empties the builder and clears its error; the memory is kept for the next use. */
static inline void sb_reset(sb_t *b)
{
    b->len = 0;
    b->err = 0;
    if (b->p) {
        b->p[0] = 0;
    }
}
/* Hands the buffer over (the caller frees it) and leaves b empty. Returns NULL after an error
 * (the buffer is freed then), else a string, "" when nothing was written. *len may be NULL. */
char *sb_take(sb_t *b, size_t *len);
/* The contents as a string; "" before the first write. Owned by b. */
static inline const char *sb_str(const sb_t *b)
{
    return b->p ? b->p : "";
}

/* Marks the builder failed with err (e.g. MT_EINVAL: malformed input met while rendering) unless
 * it already failed: the first cause is kept. Later writes are no-ops. */
static inline void sb_fail(sb_t *b, int err)
{
    if (!b->err) {
        b->err = err;
    }
}

/* Slow path of sb_room: grows the buffer (doubling, from 256 bytes). */
int sb_grow_(sb_t *b, size_t n);
/* Makes room for n more bytes and the NUL. Returns 0, or -1 with b->err set. */
static inline int sb_room(sb_t *b, size_t n)
{
    if (b->err) {
        return -1;
    }
    return b->len + n + 1 <= b->cap ? 0 : sb_grow_(b, n);
}

static inline void sb_put(sb_t *b, const void *s, size_t n)
{
    if (sb_room(b, n) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
    }
}

static inline void sb_putc(sb_t *b, char c)
{
    if (sb_room(b, 1) == 0) {
        b->p[b->len++] = c;
        b->p[b->len] = 0;
    }
}

static inline void sb_puts(sb_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(sb_t *b, const char *fmt, va_list ap);
/* Decimal integers, without printf. */
void sb_u64(sb_t *b, uint64_t v);
void sb_i64(sb_t *b, int64_t v);
/* Standard base64 (RFC 4648 alphabet, '=' padding) of n bytes. */
void sb_base64(sb_t *b, const uint8_t *p, size_t n);
/* Appends what is left of f (a file or a pipe) up to the builder's cap. Returns 0, MT_EIO on a
 * read error, or the builder's error: MT_ETOOBIG when f holds more than fits (max - 1 - len
 * bytes), MT_ENOMEM. The caller opens and closes f. */
int sb_fread(sb_t *b, FILE *f);

#endif
