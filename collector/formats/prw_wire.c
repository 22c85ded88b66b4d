/*
 * prw_wire.c - remote-write 1.0 on the wire, without protobuf-c: the receiver's validation of
 * a WriteRequest it forwards as it came (the pass-through of a remote-write relay), and the
 * Label reader the exporter's pass-through shares. See prw_decode.h for the contract.
 *
 * The check refuses what prw_to_otlp refuses for plain float series (malformed protobuf,
 * empty / duplicate label names, invalid UTF-8, no __name__, bad metadata) with the same
 * messages, plus NUL bytes in labels (which protobuf-c's C strings would cut short). Label
 * names out of order are counted, not refused: forwarded bytes must carry sorted labels, so the
 * receiver converts such a request (prw_to_otlp sorts, and finds duplicates among them).
 * Classic-histogram and summary parts pass when their `le` / `quantile` is a number the
 * conversion would read, exemplars when their labels are valid. A request with native
 * histograms, or a bound that only the conversion can judge (it depends on how the series is
 * classified), is marked `complex`: the receiver then runs prw_to_otlp on it too.
 */
#include "prw_decode.h"
#include "pbwire.h"
#include "otlp.h"
#include "prom_rw1.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF) and no NUL. */
static int utf8_nonul(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            /* eight ASCII bytes, none of them NUL */
            if (!(w & 0x8080808080808080ull) &&
                !((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c == 0) {
            return 0;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (i + k >= n) {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += k + 1;
    }
    return 1;
}

/* Byte order, as strcmp on NUL-free strings. */
static int slice_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int is(const uint8_t *p, size_t n, const char *lit, size_t ln)
{
    return n == ln && memcmp(p, lit, ln) == 0;
}

int prw_wire_label(const uint8_t *p, size_t n, prw_wlabel_t *l)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    l->name = l->value = (const uint8_t *)"";
    l->name_len = l->value_len = 0;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num == 1 || f.num == 2) {
            if (f.wt != 2) {
                return -1;
            }
            if (f.num == 1) {
                l->name = f.p, l->name_len = f.n;
            } else {
                l->value = f.p, l->value_len = f.n;
            }
        }
    }
    return r;
}

/* A known field of the given number must have this wire type (protobuf-c refuses others). */
static int wt_ok(const wf_t *f, uint32_t num, uint32_t wt)
{
    return f->num != num || f->wt == wt;
}

typedef struct wctx {
    mt_errbuf_t *eb;
    prw_wlabel_t *lab;
    size_t cap;
    const uint8_t *pb;
    size_t len;
} wctx_t;

static int malformed(wctx_t *c)
{
    mt_errbuf_t why;
    mt_errbuf_clear(&why);
    otlp_wire_explain(&prometheus__write_request__descriptor, c->pb, c->len, &why);
    mt_failf(c->eb, "invalid remote-write 1.0 protobuf (prometheus.WriteRequest): %s",
             why.set ? why.msg : "could not decode");
    return MT_EINVAL;
}

static const char *desc(const prw_wlabel_t *name, size_t idx, char *buf, size_t n)
{
    if (name && utf8_nonul(name->value, name->value_len)) {
        snprintf(buf, n, "timeseries[%zu] %.*s", idx,
                 (int)(name->value_len < 120 ? name->value_len : 120), name->value);
    } else {
        snprintf(buf, n, "timeseries[%zu]", idx);
    }
    return buf;
}

/* A classic part's `le` / `quantile` that the conversion's parse accepts whatever the series
 * turns out to be (a bucket, a quantile, or a plain gauge with that attribute): a number
 * strtod reads completely, not NaN, and for `le` not -Inf. */
static int part_bound_ok(const prw_wlabel_t *l)
{
    char buf[64];
    if (l->value_len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, l->value, l->value_len);
    buf[l->value_len] = 0;
    char *end = NULL;
    double d = strtod(buf, &end);
    if (*end || d != d) {
        return 0;
    }
    return !(l->name_len == 2 && d < 0 && d * 0.5 == d); /* le=-Inf */
}

/* An Exemplar: labels (non-empty names, UTF-8 as the conversion checks them), value, time. */
static int check_exemplar(wctx_t *c, const uint8_t *p, size_t n, size_t idx,
                          const prw_wlabel_t *name)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    size_t i = 0;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (!wt_ok(&f, 1, 2) || !wt_ok(&f, 2, 1) || !wt_ok(&f, 3, 0)) {
            return malformed(c);
        }
        if (f.num != 1) {
            continue;
        }
        prw_wlabel_t l;
        if (prw_wire_label(f.p, f.n, &l) < 0) {
            return malformed(c);
        }
        if (!l.name_len || !utf8_nonul(l.name, l.name_len) || !utf8_nonul(l.value, l.value_len)) {
            char d[160];
            if (memchr(l.name, 0, l.name_len) || memchr(l.value, 0, l.value_len)) {
                mt_failf(c->eb, "%s: exemplar label %zu holds a NUL byte",
                         desc(name, idx, d, sizeof(d)), i);
            } else {
                mt_failf(c->eb, "%s: exemplar label %zu: empty name or invalid UTF-8",
                         desc(name, idx, d, sizeof(d)), i);
            }
            return MT_EINVAL;
        }
        i++;
    }
    return r < 0 ? malformed(c) : MT_OK;
}

static int check_series(wctx_t *c, const uint8_t *p, size_t n, size_t idx, prw_wire_stats_t *st)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    size_t nl = 0, nex = 0;
    struct {
        const uint8_t *p;
        size_t n;
    } ex[8];
    while ((r = wnext(&p, end, &f)) > 0) {
        if (!wt_ok(&f, 1, 2) || !wt_ok(&f, 2, 2) || !wt_ok(&f, 3, 2) || !wt_ok(&f, 4, 2)) {
            return malformed(c);
        }
        if (f.num == 1) {
            if (nl == c->cap) {
                size_t nc = c->cap ? c->cap * 2 : 32;
                prw_wlabel_t *nlab = realloc(c->lab, nc * sizeof(*nlab));
                if (!nlab) {
                    mt_failf(c->eb, "out of memory");
                    return MT_ENOMEM;
                }
                c->lab = nlab;
                c->cap = nc;
            }
            if (prw_wire_label(f.p, f.n, &c->lab[nl++]) < 0) {
                return malformed(c);
            }
        } else if (f.num == 2) {
            const uint8_t *q = f.p, *qe = f.p + f.n;
            wf_t g;
            int rr;
            while ((rr = wnext(&q, qe, &g)) > 0) {
                if (!wt_ok(&g, 1, 1) || !wt_ok(&g, 2, 0)) {
                    return malformed(c);
                }
            }
            if (rr < 0) {
                return malformed(c);
            }
            st->samples++;
        } else if (f.num == 3) {
            st->exemplars++;
            if (nex < MT_ARRAY_LEN(ex)) {
                ex[nex].p = f.p, ex[nex++].n = f.n;
            } else {
                st->complex = 1; /* more than we keep track of: the conversion checks them */
            }
        } else if (f.num == 4) {
            st->histograms++;
            st->complex = 1;
        }
    }
    if (r < 0) {
        return malformed(c);
    }
    const prw_wlabel_t *name = NULL;
    for (size_t i = 0; i < nl; i++) {
        if (is(c->lab[i].name, c->lab[i].name_len, "__name__", 8)) {
            name = &c->lab[i];
        }
    }
    char d[160];
    int sorted = 1;
    for (size_t i = 0; i < nl; i++) {
        const prw_wlabel_t *l = &c->lab[i];
        if (!l->name_len) {
            mt_failf(c->eb, "%s: label %zu has an empty name", desc(name, idx, d, sizeof(d)), i);
            return MT_EINVAL;
        }
        if (!utf8_nonul(l->name, l->name_len)) {
            if (memchr(l->name, 0, l->name_len)) {
                mt_failf(c->eb, "%s: label %zu: name holds a NUL byte",
                         desc(name, idx, d, sizeof(d)), i);
            } else {
                mt_failf(c->eb, "%s: label %zu: name is not valid UTF-8",
                         desc(name, idx, d, sizeof(d)), i);
            }
            return MT_EINVAL;
        }
        if (!utf8_nonul(l->value, l->value_len)) {
            int nul = memchr(l->value, 0, l->value_len) != NULL;
            mt_failf(c->eb, "%s: label \"%.*s\": value %s", desc(name, idx, d, sizeof(d)),
                     (int)(l->name_len < 80 ? l->name_len : 80), l->name,
                     nul ? "holds a NUL byte" : "is not valid UTF-8");
            return MT_EINVAL;
        }
        if (i > 0 && sorted) {
            const prw_wlabel_t *pl = &c->lab[i - 1];
            int cmp = slice_cmp(pl->name, pl->name_len, l->name, l->name_len);
            if (cmp == 0) {
                mt_failf(c->eb, "%s: duplicate label name \"%.*s\"", desc(name, idx, d, sizeof(d)),
                         (int)(l->name_len < 80 ? l->name_len : 80), l->name);
                return MT_EINVAL;
            }
            if (cmp > 0) {
                /* duplicates are no longer adjacent: the conversion, which sorts, finds them */
                sorted = 0;
                st->unsorted++;
            }
        }
        if (l->value_len &&
            (is(l->name, l->name_len, "le", 2) || is(l->name, l->name_len, "quantile", 8)) &&
            !part_bound_ok(l)) {
            st->complex = 1; /* whether it is refused depends on how the conversion reads it */
        }
    }
    if (!name || !name->value_len) {
        mt_failf(c->eb, "timeseries[%zu]: no __name__ label (or an empty one)", idx);
        return MT_EINVAL;
    }
    for (size_t i = 0; i < nex; i++) {
        int rc = check_exemplar(c, ex[i].p, ex[i].n, idx, name);
        if (rc != MT_OK) {
            return rc;
        }
    }
    return MT_OK;
}

static int check_metadata(wctx_t *c, const uint8_t *p, size_t n, size_t idx)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (!wt_ok(&f, 1, 0) || !wt_ok(&f, 2, 2) || !wt_ok(&f, 4, 2) || !wt_ok(&f, 5, 2)) {
            return malformed(c);
        }
        if ((f.num == 2 || f.num == 4 || f.num == 5) && !utf8_nonul(f.p, f.n)) {
            mt_failf(c->eb, "metadata[%zu]: %s", idx,
                     memchr(f.p, 0, f.n) ? "a NUL byte" : "invalid UTF-8");
            return MT_EINVAL;
        }
    }
    return r < 0 ? malformed(c) : MT_OK;
}

int prw_wire_check(const uint8_t *pb, size_t len, prw_wire_stats_t *st, mt_errbuf_t *eb)
{
    wctx_t c = {eb, NULL, 0, pb ? pb : (const uint8_t *)"", len};
    memset(st, 0, sizeof(*st));
    const uint8_t *p = c.pb, *end = c.pb + len;
    wf_t f;
    int r = 0, rc = MT_OK;
    while (rc == MT_OK && (r = wnext(&p, end, &f)) > 0) {
        if (!wt_ok(&f, 1, 2) || !wt_ok(&f, 3, 2)) {
            rc = malformed(&c);
        } else if (f.num == 1) {
            rc = check_series(&c, f.p, f.n, (size_t)st->series, st);
            st->series++;
        } else if (f.num == 3) {
            rc = check_metadata(&c, f.p, f.n, (size_t)st->metadata);
            st->metadata++;
        }
    }
    if (rc == MT_OK && r < 0) {
        rc = malformed(&c);
    }
    free(c.lab);
    return rc;
}
