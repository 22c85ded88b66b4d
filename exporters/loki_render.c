/*
 * loki_render.c - one entry's text: attribute values as text, the level label, the entry
 * encoded straight into the entry buffer (protobuf or JSON) and the raw/json/logfmt line.
 * Part of the exporters/loki module (loki.c).
 */
#include "component.h"
#include "otlp.h"
#include "codec.h"
#include "httpc.h"
#include "sb.h"
#include "events.h"
#include "promconv.h"
#include "pbwire.h"
#include "loki_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

/* Renders an encoded AnyValue as text; strings are borrowed from the batch, anything else is
 * rendered into b->val (valid until the next call) or, with keep, copied into the arena. */
const char *loki_value_text_in(lk_build_t *b, const uint8_t *p, size_t n, size_t *len, int keep)
{
    av_t a;
    if (loki_av_parse(p, n, &a) < 0) {
        b->bad = 1;
        return NULL;
    }
    if (a.kind == AV_STR) {
        *len = a.n;
        return (const char *)a.p;
    }
    b->val.len = 0;
    loki_any_text(&b->val, p, n);
    if (b->val.err == MT_EINVAL) {
        b->bad = 1;
        return NULL;
    }
    if (b->val.err) {
        return NULL;
    }
    *len = b->val.len;
    if (!keep) {
        return b->val.p ? b->val.p : "";
    }
    return loki_arena_text(b, b->val.p ? b->val.p : "", b->val.len);
}

static const char *value_text(lk_build_t *b, const uint8_t *p, size_t n, size_t *len)
{
    return loki_value_text_in(b, p, n, len, 1);
}

const char *loki_kv_text(lk_build_t *b, const wkv_t *kv, size_t *len)
{
    if (kv->is_str) {
        *len = kv->slen;
        return kv->s;
    }
    if (kv->kind == AV_BOOL) {
        *len = kv->iv ? 4 : 5;
        return kv->iv ? "true" : "false";
    }
    if (kv->kind == AV_INT) {
        /* as loki_any_text renders it (sb_i64), without the detour */
        char t[24], *q = t + sizeof(t);
        uint64_t u = (int64_t)kv->iv < 0 ? (uint64_t)0 - kv->iv : kv->iv;
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if ((int64_t)kv->iv < 0) {
            *--q = '-';
        }
        *len = (size_t)(t + sizeof(t) - q);
        return loki_arena_text(b, q, *len);
    }
    return value_text(b, kv->v, kv->vlen, len);
}

/* loki_kv_text for a value copied right away: ints into ibuf, others into b->val, no arena. */
static const char *kv_text_tmp(lk_build_t *b, const wkv_t *kv, size_t *len, char ibuf[24])
{
    if (kv->is_str) {
        *len = kv->slen;
        return kv->s;
    }
    if (kv->kind == AV_BOOL) {
        *len = kv->iv ? 4 : 5;
        return kv->iv ? "true" : "false";
    }
    if (kv->kind == AV_INT) {
        char *q = ibuf + 24;
        uint64_t u = (int64_t)kv->iv < 0 ? (uint64_t)0 - kv->iv : kv->iv;
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if ((int64_t)kv->iv < 0) {
            *--q = '-';
        }
        *len = (size_t)(ibuf + 24 - q);
        return q;
    }
    return loki_value_text_in(b, kv->v, kv->vlen, len, 0);
}

/* Cuts a label value to Loki's limit without splitting a UTF-8 character. */
size_t loki_cut_utf8(const char *s, size_t n, size_t max)
{
    if (n <= max) {
        return n;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

/* Severity as a level code: 0 none, 1..6 trace..fatal, 7 unknown (text not recognised). */
const char *const loki_levels[8] = {NULL,   "trace", "debug", "info",
                                    "warn", "error", "fatal", "unknown"};
const uint8_t loki_level_len[8] = {0, 5, 5, 4, 4, 5, 5, 7};

int loki_level_code(int sevnum, const char *text, size_t n)
{
    if (sevnum >= 1 && sevnum <= 24) {
        return 1 + (sevnum - 1) / 4;
    }
    if (!n) {
        return 0;
    }
    static const struct {
        const char *p;
        uint8_t len, lv;
    } map[] = {{"trace", 5, 1},  {"debug", 5, 2}, {"dbg", 3, 2},   {"info", 4, 3},
               {"notice", 6, 3}, {"warn", 4, 4},  {"err", 3, 5},   {"fatal", 5, 6},
               {"crit", 4, 6},   {"emerg", 5, 6}, {"alert", 5, 6}, {"panic", 5, 6}};
    for (size_t i = 0; i < MT_ARRAY_LEN(map); i++) {
        if (n >= map[i].len && strncasecmp(text, map[i].p, map[i].len) == 0) {
            return map[i].lv;
        }
    }
    return 7;
}

/* Maps severity to Loki's level names. */
const char *loki_level(int sevnum, const char *text);
const char *loki_level(int sevnum, const char *text)
{
    return loki_levels[loki_level_code(sevnum, text, text ? strlen(text) : 0)];
}

/* ---- one entry, encoded straight into the entry buffer (b->eb) ----------------------------
 * protobuf: the stream's `entries` field (0x12, length, EntryAdapter{timestamp, line,
 * structuredMetadata...}); the length gets two bytes up front and is fixed at the end (the
 * rare entry under 128 or over 16383 bytes moves once). JSON: ["ts","line",{"k":"v",...}]. */

void loki_ent_begin(lk_build_t *b, int json, uint64_t ts)
{
    sb_t *eb = &b->eb;
    if (json) {
        sb_put(eb, "[\"", 2);
        sb_u64(eb, ts);
        sb_put(eb, "\",", 2);
        return;
    }
    if (eb->len + 33 > eb->cap && sb_room(eb, 32) < 0) {
        return;
    }
    uint8_t *p = (uint8_t *)eb->p + eb->len;
    *p = 0x12;
    p += 3;
    uint64_t sec = ts / 1000000000ull, ns = ts % 1000000000ull;
    p = loki_put_len(p, 0x0a, loki_ts_inner(ts));
    if (sec) {
        *p++ = 0x08;
        p = put_varint(p, sec);
    }
    if (ns) {
        *p++ = 0x10;
        p = put_varint(p, ns);
    }
    eb->len = (size_t)(p - (uint8_t *)eb->p);
}

void loki_ent_line(lk_build_t *b, int json, const char *line, size_t n)
{
    sb_t *eb = &b->eb;
    if (json) {
        loki_json_str(eb, line, n);
        return;
    }
    if (!n || (eb->len + n + 12 > eb->cap && sb_room(eb, n + 11) < 0)) {
        return;
    }
    uint8_t *p = loki_put_len((uint8_t *)eb->p + eb->len, 0x12, n);
    memcpy(p, line, n);
    eb->len = (size_t)(p + n - (uint8_t *)eb->p);
}

/* Closes the entry begun at start; returns its encoded size (0 when out of memory). */
size_t loki_ent_end(lk_build_t *b, int json, size_t start, int npairs)
{
    sb_t *eb = &b->eb;
    if (json) {
        if (npairs) {
            sb_putc(eb, '}');
        }
        sb_putc(eb, ']');
        return eb->err ? 0 : eb->len - start;
    }
    if (eb->err || sb_room(eb, 8) < 0) {
        return 0;
    }
    size_t n = eb->len - start - 3;
    size_t k = vsz(n);
    uint8_t *p = (uint8_t *)eb->p + start;
    if (k != 2) {
        memmove(p + 1 + k, p + 3, n);
    }
    put_varint(p + 1, n);
    eb->len = start + 1 + k + n;
    return 1 + k + n;
}

/* Attribute `kv` as structured metadata (sanitised name, text value). */
int loki_ent_attr(lk_build_t *b, int json, const wkv_t *kv, int *npairs)
{
    int nl;
    const char *nm = loki_attr_name(b, kv->key, kv->klen, &nl);
    if (!nm) {
        return nl > 0 ? -1 : 0; /* no usable name: skipped (Loki would reject the entry) */
    }
    size_t vl = 0;
    char ibuf[24];
    const char *v = kv_text_tmp(b, kv, &vl, ibuf);
    if (!v) {
        return -1;
    }
    ent_pair(b, json, nm, (size_t)nl, v, vl, npairs);
    return 0;
}

/* logfmt value: bare when safe, else quoted with \" \\ \n escapes. */
static void sb_logfmt_val(sb_t *sb, const char *v, size_t n)
{
    int quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++) {
        unsigned char c = (unsigned char)v[i];
        quote = c <= ' ' || c == '=' || c == '"' || c == '\\';
    }
    if (!quote) {
        sb_put(sb, v, n);
        return;
    }
    sb_putc(sb, '"');
    loki_json_esc(sb, v, n);
    sb_putc(sb, '"');
}

/* Builds the line of one record into b->tmp (json / logfmt formats). */
void loki_render_line(lk_build_t *b, const loki_cfg_t *cfg, const wrec_t *r, const wkv_t *attrs,
                      const uint8_t *used, const char *tid, const char *sid, const char *ev,
                      size_t evlen)
{
    sb_t *sb = &b->tmp;
    av_t body;
    if (loki_av_parse(r->body, r->blen, &body) < 0) {
        sb_fail(sb, MT_EINVAL);
        return;
    }
    int kv_body = body.kind == AV_KVLIST;
    int extras = !cfg->sm;
    int first = 1;
    const uint8_t *q, *end;
    wf_t f;
    int rc;
    sb->len = 0;
    if (cfg->line_format == LOKI_LINE_JSON) {
        sb_putc(sb, '{');
        if (kv_body) {
            q = body.p;
            end = body.p + body.n;
            while ((rc = wnext(&q, end, &f)) > 0) {
                const char *k;
                const uint8_t *v;
                size_t kl, vl;
                if (f.num != 1) {
                    continue;
                }
                if (f.wt != 2 || loki_kv_parse(f.p, f.n, &k, &kl, &v, &vl) < 0) {
                    sb_fail(sb, MT_EINVAL);
                    return;
                }
                if (!first) {
                    sb_putc(sb, ',');
                }
                first = 0;
                loki_json_str(sb, k, kl);
                sb_putc(sb, ':');
                loki_any_json(sb, v, vl, 1);
            }
            if (rc < 0) {
                sb_fail(sb, MT_EINVAL);
            }
        } else {
            sb_puts(sb, "\"body\":");
            loki_any_json(sb, r->body, r->blen, 0);
            first = 0;
        }
        if (extras) {
            for (size_t i = 0; i < r->nattr; i++) {
                if (i < 64 && used[i]) {
                    continue;
                }
                const wkv_t *kv = &attrs[i];
                if (!first) {
                    sb_putc(sb, ',');
                }
                first = 0;
                loki_json_str(sb, kv->key, kv->klen);
                sb_putc(sb, ':');
                loki_any_json(sb, kv->v, kv->vlen, 0);
            }
            const char *k[3] = {"trace_id", "span_id", "event_name"};
            const char *v[3] = {tid, sid, ev};
            size_t vl[3] = {tid ? 32 : 0, sid ? 16 : 0, evlen};
            for (int j = 0; j < 3; j++) {
                if (v[j]) {
                    if (!first) {
                        sb_putc(sb, ',');
                    }
                    first = 0;
                    loki_json_str(sb, k[j], strlen(k[j]));
                    sb_putc(sb, ':');
                    loki_json_str(sb, v[j], vl[j]);
                }
            }
        }
        sb_putc(sb, '}');
        return;
    }
    /* logfmt */
    if (kv_body) {
        q = body.p;
        end = body.p + body.n;
        while ((rc = wnext(&q, end, &f)) > 0) {
            const char *k;
            const uint8_t *v;
            size_t kl, vl;
            if (f.num != 1) {
                continue;
            }
            if (f.wt != 2 || loki_kv_parse(f.p, f.n, &k, &kl, &v, &vl) < 0) {
                sb_fail(sb, MT_EINVAL);
                return;
            }
            int nl;
            const char *name = loki_attr_name(b, k, kl, &nl);
            if (!name) {
                if (nl > 0) {
                    sb_fail(sb, MT_ENOMEM);
                    return;
                }
                continue;
            }
            if (!first) {
                sb_putc(sb, ' ');
            }
            first = 0;
            sb_put(sb, name, (size_t)nl);
            sb_putc(sb, '=');
            size_t start = sb->len;
            loki_any_text(sb, v, vl);
            /* re-quote what loki_any_text wrote, if it needs it */
            size_t n = sb->len - start;
            const char *copy = n ? loki_arena_text(b, sb->p + start, n) : NULL;
            sb->len = start;
            sb_logfmt_val(sb, copy ? copy : "", n);
        }
        if (rc < 0) {
            sb_fail(sb, MT_EINVAL);
        }
    } else {
        sb_puts(sb, "msg=");
        size_t start = sb->len;
        loki_any_text(sb, r->body, r->blen);
        size_t n = sb->len - start;
        const char *copy = n ? loki_arena_text(b, sb->p + start, n) : NULL;
        sb->len = start;
        sb_logfmt_val(sb, copy ? copy : "", n);
        first = 0;
    }
    if (extras) {
        for (size_t i = 0; i < r->nattr; i++) {
            if (i < 64 && used[i]) {
                continue;
            }
            const wkv_t *kv = &attrs[i];
            int nl;
            const char *name = loki_attr_name(b, kv->key, kv->klen, &nl);
            if (!name) {
                if (nl > 0) {
                    sb_fail(sb, MT_ENOMEM);
                    return;
                }
                continue;
            }
            size_t vl = 0;
            const char *v = loki_kv_text(b, kv, &vl);
            if (!first) {
                sb_putc(sb, ' ');
            }
            first = 0;
            sb_put(sb, name, (size_t)nl);
            sb_putc(sb, '=');
            sb_logfmt_val(sb, v ? v : "", v ? vl : 0);
        }
        const char *k[3] = {"trace_id", "span_id", "event_name"};
        const char *v[3] = {tid, sid, ev};
        size_t vl[3] = {tid ? 32 : 0, sid ? 16 : 0, evlen};
        for (int j = 0; j < 3; j++) {
            if (v[j]) {
                sb_putc(sb, ' ');
                sb_puts(sb, k[j]);
                sb_putc(sb, '=');
                sb_logfmt_val(sb, v[j], vl[j]);
            }
        }
    }
}
