/*
 * loki_encode.c - the push encoders (protobuf, JSON) and the build/push driver shared by
 * send() and the unit tests. Part of the exporters/loki module (loki.c).
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

/* ---- encoders ------------------------------------------------------------------------------ */

/* logproto.PushRequest for one tenant: the streams' headers around their entries, already
 * encoded (one copy each). Returns the scratch buffer (valid until the next call) or NULL. */
static uint8_t *encode_pb(lk_build_t *b, uint32_t tenant, size_t *len, uint64_t *entries)
{
    size_t total = 0;
    *entries = 0;
    for (size_t s = 0; s < b->ns; s++) {
        lk_stream_t *st = &b->s[s];
        if (st->tenant != tenant) {
            continue;
        }
        size_t inner = 1 + vsz(st->sel_len) + st->sel_len + st->bytes;
        total += 1 + vsz(inner) + inner;
        *entries += st->count;
    }
    if (total > b->sc->pb_cap) {
        size_t nc = total + total / 4 + 4096;
        uint8_t *np = realloc(b->sc->pb, nc);
        if (!np) {
            return NULL;
        }
        b->sc->pb = np;
        b->sc->pb_cap = nc;
    }
    const uint8_t *eb = (const uint8_t *)b->eb.p;
    uint8_t *buf = b->sc->pb, *p = buf;
    for (size_t s = 0; s < b->ns; s++) {
        lk_stream_t *st = &b->s[s];
        if (st->tenant != tenant) {
            continue;
        }
        p = loki_put_len(p, 0x0a, 1 + vsz(st->sel_len) + st->sel_len + st->bytes);
        p = loki_put_len(p, 0x0a, st->sel_len);
        memcpy(p, st->sel, st->sel_len);
        p += st->sel_len;
        const lk_entry_t *e = &b->e[st->first], *ee = e + st->count;
        while (e < ee) {
            /* entries that sit back to back in the buffer go in one copy */
            size_t off = e->off, n = e->len;
            for (e++; e < ee && e->off == off + n; e++) {
                n += e->len;
            }
            memcpy(p, eb + off, n);
            p += n;
        }
    }
    *len = (size_t)(p - buf);
    return buf;
}

/* The JSON push body for one tenant. Returns a malloc'd buffer or NULL. */
static uint8_t *encode_json(lk_build_t *b, uint32_t tenant, size_t *len, uint64_t *entries)
{
    sb_t sb;
    sb_init(&sb, LK_TEXT_MAX);
    int first_s = 1;
    *entries = 0;
    sb_puts(&sb, "{\"streams\":[");
    for (size_t s = 0; s < b->ns; s++) {
        const lk_stream_t *st = &b->s[s];
        if (st->tenant != tenant) {
            continue;
        }
        sb_puts(&sb, first_s ? "{\"stream\":{" : ",{\"stream\":{");
        first_s = 0;
        for (int k = 0; k < st->nlabels; k++) {
            if (k) {
                sb_putc(&sb, ',');
            }
            loki_json_str(&sb, st->labels[k].name, st->labels[k].nlen);
            sb_putc(&sb, ':');
            loki_json_str(&sb, st->labels[k].val, st->labels[k].vlen);
        }
        sb_puts(&sb, "},\"values\":[");
        for (uint32_t i = 0; i < st->count; i++) {
            const lk_entry_t *e = &b->e[st->first + i];
            if (i) {
                sb_putc(&sb, ',');
            }
            sb_put(&sb, b->eb.p + e->off, e->len);
        }
        sb_puts(&sb, "]}");
        *entries += st->count;
    }
    sb_puts(&sb, "]}");
    return (uint8_t *)sb_take(&sb, len); /* NULL when out of memory or too big */
}

/* Decodes `data` (an ExportLogsServiceRequest), builds every push and hands each one to fn,
 * skipping the pushes whose bit is set in skip (index < 64). Pushes go out in order of the
 * tenant's first appearance, so indexes are stable across retries of the same batch.
 * *dropped gets the records dropped while building (invalid tenants), *npushes the number
 * of pushes. Returns MT_OK, MT_ERETRY (fn asked to stop), MT_EINVAL (undecodable) or
 * MT_ENOMEM. */
int loki_build(exporter_t *ex, const uint8_t *data, size_t len, const char *req_tenant,
               uint64_t now_ns, int count_events_, uint64_t skip, loki_push_fn fn, void *arg,
               uint64_t *dropped, size_t *npushes);
int loki_build_with(exporter_t *ex, lk_scratch_t *sc, const uint8_t *data, size_t len,
                    const char *req_tenant, uint64_t now_ns, int count_events_, uint64_t skip,
                    loki_push_fn fn, void *arg, uint64_t *dropped, size_t *npushes)
{
    loki_cfg_t *cfg = ex->cfg;
    *dropped = 0;
    *npushes = 0;
    size_t want = len * 2 + 65536;
    if (!sc->a || sc->arena_first < want) {
        arena_destroy(sc->a);
        sc->arena_first = want > sc->arena_first ? want : sc->arena_first;
        sc->a = arena_create(sc->arena_first, 0);
        if (!sc->a) {
            sc->arena_first = 0;
            return MT_ENOMEM;
        }
    }
    arena_t *a = sc->a;
    lk_build_t b;
    memset(&b, 0, sizeof(b));
    b.ex = ex;
    b.sc = sc;
    b.a = a;
    b.tmp = sc->tmp;
    b.val = sc->val;
    b.eb = sc->eb;
    b.eb.len = 0;
    b.eb.err = 0;
    b.eb.max = 0; /* may grow past LK_TEXT_MAX */
    /* the encoded entries come to about the input's size: one allocation, no regrowth */
    if (b.eb.cap < len + len / 2 + 4096) {
        sb_room(&b.eb, len + len / 2 + 4096);
        b.eb.err = 0;
    }
    b.tmp.err = b.val.err = 0;
    b.tmp.max = b.val.max = LK_TEXT_MAX;
    int rc = loki_build_entries(&b, data, len, req_tenant, now_ns, count_events_);
    if (rc == MT_OK) {
        rc = loki_sort_entries(&b);
    }
    *dropped = b.dropped;
    if (rc != MT_OK) {
        goto out;
    }
    *npushes = b.ntenants;
    for (size_t t = 0; t < b.ntenants; t++) {
        if (t < 64 && (skip >> t & 1)) {
            continue;
        }
        size_t blen = 0;
        uint64_t entries = 0;
        uint8_t *body = cfg->encoding == LOKI_ENC_PROTOBUF
                            ? encode_pb(&b, (uint32_t)t, &blen, &entries)
                            : encode_json(&b, (uint32_t)t, &blen, &entries);
        if (!body) {
            rc = MT_ENOMEM;
            break;
        }
        if (entries) {
            char tenant[LK_TENANT_MAX + 1];
            snprintf(tenant, sizeof(tenant), "%.*s", (int)b.tlen[t], b.tenants[t]);
            rc = fn(arg, t, tenant, body, blen, entries);
        }
        if (cfg->encoding == LOKI_ENC_JSON) {
            free(body);
        }
        if (rc != MT_OK) {
            break;
        }
    }
out:
    sc->tmp = b.tmp;
    sc->val = b.val;
    sc->eb = b.eb;
    /* keep the next batch in one block: grow the first block to what this one needed */
    size_t used = arena_reserved(a);
    if (used > sc->arena_first && used < (256u << 20)) {
        sc->arena_first = used + used / 4;
        arena_destroy(sc->a);
        sc->a = NULL;
    } else if (sc->arena_first > (16u << 20) && arena_used(a) * 4 < sc->arena_first) {
        /* an unusually big batch does not pin its memory: start smaller next time */
        sc->arena_first = want;
        arena_destroy(sc->a);
        sc->a = NULL;
    } else {
        arena_reset(a);
    }
    if (sc->e_cap > 65536 && sc->e_cap > 4 * b.ne) {
        free(sc->e);
        sc->e = NULL;
        sc->e_cap = 0;
    }
    if (sc->eb.cap > (16u << 20) && sc->eb.cap > 4 * len) {
        sb_fini(&sc->eb);
    }
    if (sc->pb_cap > (16u << 20) && sc->pb_cap > 4 * len) {
        free(sc->pb);
        sc->pb = NULL;
        sc->pb_cap = 0;
    }
    return rc;
}

int loki_build(exporter_t *ex, const uint8_t *data, size_t len, const char *req_tenant,
               uint64_t now_ns, int count_events_, uint64_t skip, loki_push_fn fn, void *arg,
               uint64_t *dropped, size_t *npushes)
{
    lk_scratch_t sc;
    memset(&sc, 0, sizeof(sc));
    int rc = loki_build_with(ex, &sc, data, len, req_tenant, now_ns, count_events_, skip, fn, arg,
                             dropped, npushes);
    loki_scratch_fini(&sc);
    return rc;
}
