/*
 * loki_wire.c - the zero-copy walk of an encoded ExportLogsServiceRequest (AnyValue and
 * KeyValue readers) and the JSON/text rendering of attribute values. Part of the
 * exporters/loki module (loki.c).
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

/* ---- text buffers ----------------------------------------------------------------------- */

/* Text is built in core string builders (sb.h) capped at LK_TEXT_MAX, except the batch's
 * encoded entries (eb), which are unbounded. Malformed wire data met while rendering fails the
 * builder with MT_EINVAL (sb_fail), telling it apart from out of memory. */

/* JSON string body (no quotes); control characters escaped, UTF-8 passed through. */
void loki_json_esc(sb_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        sb_put(b, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            char q[2] = {'\\', (char)c};
            sb_put(b, q, 2);
        } else if (c == '\n') {
            sb_put(b, "\\n", 2);
        } else if (c == '\r') {
            sb_put(b, "\\r", 2);
        } else if (c == '\t') {
            sb_put(b, "\\t", 2);
        } else {
            sb_put(b, e, 6);
        }
    }
    sb_put(b, s + run, n - run);
}

void loki_json_str(sb_t *b, const char *s, size_t n)
{
    sb_putc(b, '"');
    loki_json_esc(b, s, n);
    sb_putc(b, '"');
}

static void sb_double(sb_t *b, double v)
{
    char t[64];
    int n = promconv_format_float(v, t, sizeof(t));
    if (n > 0) {
        sb_put(b, t, (size_t)n);
    } else {
        sb_puts(b, "0");
    }
}

/* ---- the OTLP wire: a zero-copy walk of the encoded batch --------------------------------- */

/* The batch is an ExportLogsServiceRequest the receiver already accepted. Instead of
 * unpacking it with protobuf-c (a copy of every string and an object per value), the exporter
 * walks the bytes and reads strings as {ptr,len} slices into them. As protobuf-c's
 * NUL-terminated copies were read with strlen, a string slice ends at its first NUL byte. A
 * malformed field the walk meets (bad varint, length past the end, known field with the wrong
 * wire type, groups) makes the batch undecodable, as protobuf_c_message_unpack did; repeated
 * singular fields keep the last one (for oneof members too). The reader is pbwire.h. */

int loki_av_parse(const uint8_t *p, size_t n, av_t *a)
{
    static const uint8_t want[9] = {0, 2, 0, 0, 1, 2, 2, 2, 0};
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    a->kind = AV_NONE;
    a->p = NULL;
    a->n = 0;
    a->v = 0;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num > 8) {
            continue;
        }
        if (f.wt != want[f.num]) {
            return -1;
        }
        a->kind = (int)f.num;
        a->p = f.p;
        a->n = f.num == AV_STR ? wstrlen(f.p, f.n) : f.n;
        a->v = f.v;
    }
    return r;
}

/* KeyValue: key slice and the encoded value (empty when absent). */
int loki_kv_parse(const uint8_t *p, size_t n, const char **k, size_t *kl, const uint8_t **v,
                  size_t *vl)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r;
    *k = "";
    *kl = 0;
    *v = NULL;
    *vl = 0;
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != 2) {
                return -1;
            }
            *k = (const char *)f.p;
            *kl = wstrlen(f.p, f.n);
        } else if (f.num == 2) {
            if (f.wt != 2) {
                return -1;
            }
            *v = f.p;
            *vl = f.n;
        } else if (f.num == 3 && f.wt != 0) {
            return -1;
        }
    }
    return r;
}

int loki_wkv_parse(const uint8_t *p, size_t n, wkv_t *kv)
{
    /* the usual shape first: {1: key, 2: {1: string | 3: int}}, one-byte lengths, nothing
     * else; read exactly as the general walk below would */
    if (n >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= n && p[2 + p[1]] == 0x12 &&
        (size_t)p[3 + p[1]] + p[1] + 4 == n && p[3 + p[1]] >= 2) {
        size_t kl = p[1], vl = p[3 + kl];
        const uint8_t *v = p + 4 + kl;
        if (v[0] == 0x0a && (size_t)v[1] + 2 == vl) {
            kv->key = (const char *)p + 2;
            kv->klen = (uint32_t)wstrlen(p + 2, kl);
            kv->v = v;
            kv->vlen = (uint32_t)vl;
            kv->kind = AV_STR;
            kv->is_str = 1;
            kv->iv = 0;
            kv->s = (const char *)v + 2;
            kv->slen = (uint32_t)wstrlen(v + 2, v[1]);
            return 0;
        }
        uint64_t iv;
        if (v[0] == 0x18 && wvarint(v + 1, v + vl, &iv) == v + vl) {
            kv->key = (const char *)p + 2;
            kv->klen = (uint32_t)wstrlen(p + 2, kl);
            kv->v = v;
            kv->vlen = (uint32_t)vl;
            kv->kind = AV_INT;
            kv->is_str = 0;
            kv->iv = iv;
            kv->s = NULL;
            kv->slen = 0;
            return 0;
        }
    }
    size_t kl, vl;
    if (loki_kv_parse(p, n, &kv->key, &kl, &kv->v, &vl) < 0) {
        return -1;
    }
    kv->klen = (uint32_t)kl;
    kv->vlen = (uint32_t)vl;
    av_t a;
    if (loki_av_parse(kv->v, vl, &a) < 0) {
        return -1;
    }
    kv->kind = a.kind;
    kv->iv = a.v;
    kv->is_str = a.kind == AV_STR;
    kv->s = kv->is_str ? (const char *)a.p : NULL;
    kv->slen = kv->is_str ? (uint32_t)a.n : 0;
    return 0;
}

static void kvlist_json(sb_t *b, const uint8_t *p, size_t n, int depth)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r, i = 0;
    sb_putc(b, '{');
    while ((r = wnext(&p, end, &f)) > 0) {
        if (f.num != 1) {
            continue;
        }
        const char *k;
        const uint8_t *v;
        size_t kl, vl;
        if (f.wt != 2 || loki_kv_parse(f.p, f.n, &k, &kl, &v, &vl) < 0) {
            sb_fail(b, MT_EINVAL);
            return;
        }
        if (i++) {
            sb_putc(b, ',');
        }
        loki_json_str(b, k, kl);
        sb_putc(b, ':');
        loki_any_json(b, v, vl, depth + 1);
    }
    if (r < 0) {
        sb_fail(b, MT_EINVAL);
    }
    sb_putc(b, '}');
}

/* AnyValue as a JSON value (Go's json.Marshal of pdata's AsRaw, as Loki stringifies). */
void loki_any_json(sb_t *b, const uint8_t *p, size_t n, int depth)
{
    av_t a;
    if (depth > LK_MAX_DEPTH) {
        sb_puts(b, "null");
        return;
    }
    if (loki_av_parse(p, n, &a) < 0) {
        sb_fail(b, MT_EINVAL);
        return;
    }
    switch (a.kind) {
    case AV_STR:
        loki_json_str(b, (const char *)a.p, a.n);
        break;
    case AV_BOOL:
        sb_puts(b, a.v ? "true" : "false");
        break;
    case AV_INT:
        sb_i64(b, (int64_t)a.v);
        break;
    case AV_DOUBLE: {
        double d;
        memcpy(&d, &a.v, sizeof(d));
        if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
            sb_putc(b, '"');
            sb_double(b, d);
            sb_putc(b, '"');
        } else {
            sb_double(b, d);
        }
        break;
    }
    case AV_ARRAY: {
        const uint8_t *q = a.p, *end = a.p + a.n;
        wf_t f;
        int r, i = 0;
        sb_putc(b, '[');
        while ((r = wnext(&q, end, &f)) > 0) {
            if (f.num != 1) {
                continue;
            }
            if (f.wt != 2) {
                sb_fail(b, MT_EINVAL);
                return;
            }
            if (i++) {
                sb_putc(b, ',');
            }
            loki_any_json(b, f.p, f.n, depth + 1);
        }
        if (r < 0) {
            sb_fail(b, MT_EINVAL);
        }
        sb_putc(b, ']');
        break;
    }
    case AV_KVLIST:
        kvlist_json(b, a.p, a.n, depth);
        break;
    case AV_BYTES:
        sb_putc(b, '"');
        sb_base64(b, a.p, a.n);
        sb_putc(b, '"');
        break;
    default:
        sb_puts(b, "null");
    }
}

/* AnyValue as text (pdata's AsString): strings as they are, scalars formatted, maps and
 * arrays as JSON, bytes as base64, nothing as "". */
void loki_any_text(sb_t *b, const uint8_t *p, size_t n)
{
    av_t a;
    if (loki_av_parse(p, n, &a) < 0) {
        sb_fail(b, MT_EINVAL);
        return;
    }
    switch (a.kind) {
    case AV_STR:
        sb_put(b, (const char *)a.p, a.n);
        break;
    case AV_DOUBLE: {
        double d;
        memcpy(&d, &a.v, sizeof(d));
        sb_double(b, d);
        break;
    }
    case AV_BYTES:
        sb_base64(b, a.p, a.n);
        break;
    case AV_NONE:
    case AV_STRINDEX:
        break;
    default:
        loki_any_json(b, p, n, 0);
    }
}
