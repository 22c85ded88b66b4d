/*
 * loki_build.c - building pushes: label names and values, streams per (tenant, label set),
 * records and resources walked into entries, and the per-stream timestamp sort. Part of the
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

/* Sanitised label names of attribute keys, kept across batches: keyed by the raw key bytes,
 * names in a fixed pool (pointers stay valid until the cache is cleared, which only happens
 * between batches, when it is full). */
#define LK_NC_SLOTS 2048u
#define LK_NC_MAX   1536u
#define LK_NC_POOL  (64u << 10)

void loki_scratch_fini(lk_scratch_t *sc)
{
    arena_destroy(sc->a);
    free(sc->pb);
    sb_fini(&sc->tmp);
    sb_fini(&sc->val);
    sb_fini(&sc->eb);
    free(sc->e);
    free(sc->s);
    free(sc->ht);
    free(sc->rkv);
    free(sc->akv);
    free(sc->names.t);
    free(sc->names.pool);
    memset(sc, 0, sizeof(*sc));
}

const char *loki_arena_text(lk_build_t *b, const char *s, size_t n)
{
    return arena_strndup(b->a, s, n);
}

/* Grows a scratch array to hold at least n items. */
static int grow(void **p, size_t *cap, size_t n, size_t item)
{
    if (n <= *cap) {
        return 0;
    }
    size_t nc = *cap ? *cap : 64;
    while (nc < n) {
        nc *= 2;
    }
    void *np = realloc(*p, nc * item);
    if (!np) {
        return -1;
    }
    *p = np;
    *cap = nc;
    return 0;
}

static inline uint64_t key_hash(const char *p, size_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull, w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    return h;
}

/* Sanitised label name of an attribute key (see loki_sanitize_name), cached. Returns the name
 * (valid for the batch) with *nl its length, or NULL with *nl <= 0 when no usable name is left,
 * or NULL with *nl = 1 when out of memory. */
const char *loki_attr_name(lk_build_t *b, const char *key, size_t klen, int *nl)
{
    lk_names_t *nc = &b->sc->names;
    /* records of a batch mostly repeat the same keys: the last name found for a key of this
     * length is checked before hashing */
    uint32_t *memo = &b->name_memo[klen & 15];
    if (*memo) {
        const lk_nc_ent_t *c = &nc->t[*memo - 1];
        if (c->rlen == klen && memcmp(nc->pool + c->off, key, klen) == 0) {
            *nl = c->nlen;
            return c->nlen > 0 ? nc->pool + c->off + c->rlen : NULL;
        }
    }
    uint64_t h = key_hash(key, klen);
    size_t i = 0;
    if (nc->t) {
        i = (size_t)h & (LK_NC_SLOTS - 1);
        while (nc->t[i].used) {
            const lk_nc_ent_t *c = &nc->t[i];
            if (c->h == h && c->rlen == klen && memcmp(nc->pool + c->off, key, klen) == 0) {
                *memo = (uint32_t)i + 1;
                *nl = c->nlen;
                return c->nlen > 0 ? nc->pool + c->off + c->rlen : NULL;
            }
            i = (i + 1) & (LK_NC_SLOTS - 1);
        }
    }
    char name[256];
    int n = loki_sanitize_name(key, klen, name, sizeof(name));
    *nl = n;
    if (nc->t && nc->n < LK_NC_MAX &&
        nc->pool_len + klen + (n > 0 ? (size_t)n : 0) + 1 <= LK_NC_POOL) {
        lk_nc_ent_t *c = &nc->t[i];
        c->h = h;
        c->off = (uint32_t)nc->pool_len;
        c->rlen = (uint32_t)klen;
        c->nlen = n;
        c->used = 1;
        memcpy(nc->pool + nc->pool_len, key, klen);
        if (n > 0) {
            memcpy(nc->pool + nc->pool_len + klen, name, (size_t)n);
        }
        nc->pool_len += klen + (n > 0 ? (size_t)n : 0);
        nc->n++;
        *memo = (uint32_t)i + 1;
        return n > 0 ? nc->pool + c->off + klen : NULL;
    }
    if (n <= 0) {
        return NULL;
    }
    const char *nm = loki_arena_text(b, name, (size_t)n);
    if (!nm) {
        *nl = 1;
    }
    return nm;
}

static int tenant_index(lk_build_t *b, const char *t, size_t n)
{
    for (size_t i = 0; i < b->ntenants; i++) {
        if (b->tlen[i] == n && memcmp(b->tenants[i], t, n) == 0) {
            return (int)i;
        }
    }
    if (b->ntenants >= LK_MAX_TENANTS) {
        return -1;
    }
    b->tenants[b->ntenants] = t;
    b->tlen[b->ntenants] = n;
    return (int)b->ntenants++;
}

/* Selector text of a label set (sorted by name: slot order is sorted order). */
static void selector(sb_t *sb, const lk_plan_t *p, const mt_str_t *vals)
{
    sb->len = 0;
    sb_putc(sb, '{');
    int first = 1;
    for (int i = 0; i < p->nslots; i++) {
        if (!vals[i].len) {
            continue;
        }
        if (!first) {
            sb_put(sb, ", ", 2);
        }
        first = 0;
        sb_puts(sb, p->names[i]);
        sb_put(sb, "=\"", 2);
        /* Go string-literal escapes, as Loki's selector parser reads them */
        const char *s = vals[i].ptr;
        size_t run = 0;
        for (size_t k = 0; k < vals[i].len; k++) {
            unsigned char c = (unsigned char)s[k];
            if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
                continue;
            }
            sb_put(sb, s + run, k - run);
            run = k + 1;
            if (c == '"' || c == '\\') {
                char q[2] = {'\\', (char)c};
                sb_put(sb, q, 2);
            } else if (c == '\n') {
                sb_put(sb, "\\n", 2);
            } else if (c == '\t') {
                sb_put(sb, "\\t", 2);
            } else if (c == '\r') {
                sb_put(sb, "\\r", 2);
            } else {
                char x[5];
                snprintf(x, sizeof(x), "\\x%02x", c);
                sb_put(sb, x, 4);
            }
        }
        sb_put(sb, s + run, vals[i].len - run);
        sb_putc(sb, '"');
    }
    sb_putc(sb, '}');
}

/* Room for one more stream: grows the stream array and (at half load) the hash table. */
static int stream_room(lk_build_t *b)
{
    lk_scratch_t *sc = b->sc;
    if (grow((void **)&sc->s, &sc->s_cap, b->ns + 1, sizeof(lk_stream_t)) < 0) {
        return -1;
    }
    b->s = sc->s;
    if ((b->ns + 1) * 2 > sc->ht_size) {
        size_t nsz = sc->ht_size * 2;
        uint32_t *nt = calloc(nsz, sizeof(uint32_t));
        if (!nt) {
            return -1;
        }
        for (size_t k = 0; k < b->ns; k++) {
            size_t i = (size_t)b->s[k].hash & (nsz - 1);
            while (nt[i]) {
                i = (i + 1) & (nsz - 1);
            }
            nt[i] = (uint32_t)(k + 1);
        }
        free(sc->ht);
        sc->ht = b->ht = nt;
        sc->ht_size = nsz;
        b->htmask = nsz - 1;
    }
    return 0;
}

/* Finds or adds the stream for (tenant, label values). Returns its index or -1 (OOM). */
static int stream_for(lk_build_t *b, int tenant, const mt_str_t *vals)
{
    const lk_plan_t *p = &((loki_state_t *)b->ex->state)->plan;
    selector(&b->tmp, p, vals);
    if (b->tmp.err || stream_room(b) < 0) {
        return -1;
    }
    uint64_t h = mt_fnv1a(MT_FNV_BASIS ^ (uint64_t)tenant, b->tmp.p, b->tmp.len);
    size_t i = (size_t)h & b->htmask;
    while (b->ht[i]) {
        lk_stream_t *s = &b->s[b->ht[i] - 1];
        if (s->hash == h && s->tenant == (uint32_t)tenant && s->sel_len == b->tmp.len &&
            memcmp(s->sel, b->tmp.p, b->tmp.len) == 0) {
            return (int)(b->ht[i] - 1);
        }
        i = (i + 1) & b->htmask;
    }
    lk_stream_t *s = &b->s[b->ns];
    memset(s, 0, sizeof(*s));
    s->sel = loki_arena_text(b, b->tmp.p, b->tmp.len);
    if (!s->sel) {
        return -1;
    }
    s->sel_len = (uint32_t)b->tmp.len;
    s->tenant = (uint32_t)tenant;
    s->hash = h;
    for (int k = 0; k < p->nslots; k++) {
        if (vals[k].len) {
            s->labels[s->nlabels].name = p->names[k];
            s->labels[s->nlabels].nlen = (uint32_t)strlen(p->names[k]);
            s->labels[s->nlabels].val = vals[k].ptr;
            s->labels[s->nlabels].vlen = (uint32_t)vals[k].len;
            s->nlabels++;
        }
    }
    b->ht[i] = (uint32_t)++b->ns;
    return (int)(b->ns - 1);
}

/* The stream {service_name="unknown_service"} of a tenant, for records with no label. */
static int unknown_stream(lk_build_t *b, int tenant)
{
    static const char sel[] = "{service_name=\"unknown_service\"}";
    if (stream_room(b) < 0) {
        return -1;
    }
    uint64_t h = mt_fnv1a(MT_FNV_BASIS ^ (uint64_t)tenant, sel, sizeof(sel) - 1);
    size_t i = (size_t)h & b->htmask;
    while (b->ht[i]) {
        lk_stream_t *s = &b->s[b->ht[i] - 1];
        if (s->hash == h && s->tenant == (uint32_t)tenant && s->sel_len == sizeof(sel) - 1 &&
            memcmp(s->sel, sel, sizeof(sel) - 1) == 0) {
            return (int)(b->ht[i] - 1);
        }
        i = (i + 1) & b->htmask;
    }
    lk_stream_t *s = &b->s[b->ns];
    memset(s, 0, sizeof(*s));
    s->sel = sel;
    s->sel_len = sizeof(sel) - 1;
    s->tenant = (uint32_t)tenant;
    s->hash = h;
    s->labels[0] = (lk_pair_t){"service_name", "unknown_service", 12, 15};
    s->nlabels = 1;
    b->ht[i] = (uint32_t)++b->ns;
    return (int)(b->ns - 1);
}

static int key_is(const wkv_t *kv, const char *key, size_t klen)
{
    return kv->klen == klen && memcmp(kv->key, key, klen) == 0;
}

static const wkv_t *find_attr(const wkv_t *kv, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++) {
        if (key_is(&kv[i], key, kl)) {
            return &kv[i];
        }
    }
    return NULL;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char h[513] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                               "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                               "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
                               "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                               "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
                               "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                               "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                               "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    for (size_t i = 0; i < n; i++) {
        memcpy(out + 2 * i, h + 2 * p[i], 2);
    }
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return 0;
        }
    }
    return 1;
}

uint8_t *loki_put_len(uint8_t *p, uint8_t tag, size_t n)
{
    *p++ = tag;
    return put_varint(p, n);
}

size_t loki_ts_inner(uint64_t ts)
{
    uint64_t sec = ts / 1000000000ull, ns = ts % 1000000000ull;
    return (sec ? 1 + vsz(sec) : 0) + (ns ? 1 + vsz(ns) : 0);
}

/* Reads one LogRecord's fields; attributes go to sc->akv. Returns 0 or -1 (malformed/OOM,
 * b->bad tells which). */
static int read_record(lk_build_t *b, const uint8_t *p, size_t n, wrec_t *r)
{
    lk_scratch_t *sc = b->sc;
    const uint8_t *end = p + n;
    wf_t f;
    int rc;
    memset(r, 0, sizeof(*r));
    r->sevtext = r->ev = "";
    while ((rc = wnext(&p, end, &f)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wt != 1) {
                goto bad;
            }
            r->t = f.v;
            break;
        case 11:
            if (f.wt != 1) {
                goto bad;
            }
            r->obs = f.v;
            break;
        case 2:
            if (f.wt != 0) {
                goto bad;
            }
            r->sev = (int)(int32_t)(uint32_t)f.v;
            break;
        case 3:
            if (f.wt != 2) {
                goto bad;
            }
            r->sevtext = (const char *)f.p;
            r->sevlen = wstrlen(f.p, f.n);
            break;
        case 5:
            if (f.wt != 2) {
                goto bad;
            }
            r->body = f.p;
            r->blen = f.n;
            break;
        case 6:
            if (f.wt != 2) {
                goto bad;
            }
            if (grow((void **)&sc->akv, &sc->akv_cap, r->nattr + 1, sizeof(wkv_t)) < 0) {
                return -1;
            }
            if (loki_wkv_parse(f.p, f.n, &sc->akv[r->nattr]) < 0) {
                goto bad;
            }
            r->nattr++;
            break;
        case 7:
            if (f.wt != 0) {
                goto bad;
            }
            break;
        case 8:
            if (f.wt != 5) {
                goto bad;
            }
            break;
        case 9:
            if (f.wt != 2) {
                goto bad;
            }
            r->tid = f.p;
            r->tidlen = f.n;
            break;
        case 10:
            if (f.wt != 2) {
                goto bad;
            }
            r->sid = f.p;
            r->sidlen = f.n;
            break;
        case 12:
            if (f.wt != 2) {
                goto bad;
            }
            r->ev = (const char *)f.p;
            r->evlen = wstrlen(f.p, f.n);
            break;
        default:
            break;
        }
    }
    if (rc == 0) {
        return 0;
    }
bad:
    b->bad = 1;
    return -1;
}

/* Reads a Resource's attributes (appended to sc->rkv at *nra). */
static int read_resource(lk_build_t *b, const uint8_t *p, size_t n, size_t *nra)
{
    lk_scratch_t *sc = b->sc;
    const uint8_t *end = p + n;
    wf_t f;
    int rc;
    while ((rc = wnext(&p, end, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != 2) {
                break;
            }
            if (grow((void **)&sc->rkv, &sc->rkv_cap, *nra + 1, sizeof(wkv_t)) < 0) {
                return -1;
            }
            if (loki_wkv_parse(f.p, f.n, &sc->rkv[*nra]) < 0) {
                break;
            }
            (*nra)++;
        } else if (f.num == 2 && f.wt != 0) {
            break;
        }
    }
    if (rc == 0) {
        return 0;
    }
    b->bad = 1;
    return -1;
}

/* Records in a ScopeLogs (field 2 occurrences), or -1 when malformed. */
static long count_records(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    wf_t f;
    int rc;
    long c = 0;
    while ((rc = wnext(&p, end, &f)) > 0) {
        if (f.num == 2) {
            if (f.wt != 2) {
                return -1;
            }
            c++;
        } else if ((f.num == 1 || f.num == 3) && f.wt != 2) {
            return -1;
        }
    }
    return rc < 0 ? -1 : c;
}

static int build_fail(const lk_build_t *b)
{
    return b->bad ? MT_EINVAL : MT_ENOMEM;
}

/* One log record into an entry. */
static int build_record(lk_build_t *b, const uint8_t *rp, size_t rn, int ti, const mt_str_t *rvals,
                        const uint8_t *rused, size_t nra, int *scache, uint64_t now_ns,
                        uint32_t *seq, uint64_t *nevents)
{
    exporter_t *ex = b->ex;
    const loki_cfg_t *cfg = ex->cfg;
    loki_state_t *st = ex->state;
    const lk_plan_t *p = &st->plan;
    lk_scratch_t *sc = b->sc;
    wrec_t lr;
    if (read_record(b, rp, rn, &lr) < 0) {
        return build_fail(b);
    }
    const wkv_t *attrs = sc->akv;
    uint8_t used[64];
    memset(used, 0, sizeof(used));
    const char *ev = lr.evlen ? lr.ev : NULL;
    size_t evlen = lr.evlen;
    int ev_from_attr = 0;
    mt_str_t vals[LK_MAX_LABELS + 1];
    if (p->nattr) {
        memcpy(vals, rvals, sizeof(vals));
    }
    for (size_t a = 0; a < lr.nattr; a++) {
        const wkv_t *kv = &attrs[a];
        if (!ev && kv->is_str && kv->slen && key_is(kv, "event.name", 10)) {
            ev = kv->s;
            evlen = kv->slen;
            ev_from_attr = 1;
        }
        for (int k = 0; k < p->nattr; k++) {
            if (key_is(kv, p->attr[k].key, strlen(p->attr[k].key))) {
                if (a < 64) {
                    used[a] = 1;
                }
                if (!vals[p->attr[k].slot].len) {
                    size_t vl = 0;
                    const char *v = loki_kv_text(b, kv, &vl);
                    if (!v) {
                        return build_fail(b);
                    }
                    vals[p->attr[k].slot].ptr = v;
                    vals[p->attr[k].slot].len = loki_cut_utf8(v, vl, LK_LABEL_VALUE_MAX);
                }
                break;
            }
        }
    }
    int lv = p->level_slot >= 0 ? loki_level_code(lr.sev, lr.sevtext, lr.sevlen) : 0;
    if (ev) {
        (*nevents)++;
    }
    int isev = ev && p->kind_slot >= 0;
    int si;
    int *cached = p->nattr ? NULL : &scache[lv * 2 + isev];
    if (cached && *cached >= 0) {
        si = *cached;
    } else {
        if (!p->nattr) {
            memcpy(vals, rvals, sizeof(vals));
        }
        if (lv) {
            vals[p->level_slot].ptr = loki_levels[lv];
            vals[p->level_slot].len = loki_level_len[lv];
        }
        if (isev) {
            vals[p->kind_slot].ptr = "event";
            vals[p->kind_slot].len = 5;
        }
        int any = 0;
        for (int k = 0; k < p->nslots; k++) {
            any |= vals[k].len != 0;
        }
        /* Loki refuses a stream without labels: mirror its discover_service_name */
        si = any ? stream_for(b, ti, vals) : unknown_stream(b, ti);
        if (si < 0) {
            return MT_ENOMEM;
        }
        if (cached) {
            *cached = si;
        }
    }
    if (grow((void **)&sc->e, &sc->e_cap, b->ne + 1, sizeof(lk_entry_t)) < 0) {
        return MT_ENOMEM;
    }
    b->e = sc->e;
    uint64_t ts = lr.t ? lr.t : lr.obs ? lr.obs : now_ns;
    (*seq)++;
    int json = cfg->encoding == LOKI_ENC_JSON;
    size_t start = b->eb.len;
    loki_ent_begin(b, json, ts);
    /* line */
    char tid[33], sid[17];
    int has_tid = lr.tidlen == 16 && !all_zero(lr.tid, 16);
    int has_sid = lr.sidlen == 8 && !all_zero(lr.sid, 8);
    if (has_tid) {
        hex(tid, lr.tid, 16);
        tid[32] = 0;
    }
    if (has_sid) {
        hex(sid, lr.sid, 8);
        sid[16] = 0;
    }
    if (cfg->line_format == LOKI_LINE_RAW) {
        size_t ll = 0;
        const char *line = loki_value_text_in(b, lr.body, lr.blen, &ll, 0);
        if (!line) {
            return build_fail(b);
        }
        loki_ent_line(b, json, line, ll);
    } else {
        loki_render_line(b, cfg, &lr, attrs, used, has_tid ? tid : NULL, has_sid ? sid : NULL,
                         ev_from_attr ? NULL : ev, evlen);
        if (b->tmp.err == MT_EINVAL) {
            b->bad = 1;
        }
        if (b->tmp.err) {
            return build_fail(b);
        }
        loki_ent_line(b, json, b->tmp.p ? b->tmp.p : "", b->tmp.len);
    }
    /* structured metadata */
    int npairs = 0;
    if (cfg->sm) {
        if (has_tid) {
            ent_pair(b, json, "trace_id", 8, tid, 32, &npairs);
        }
        if (has_sid) {
            ent_pair(b, json, "span_id", 7, sid, 16, &npairs);
        }
        if (ev && !ev_from_attr) {
            ent_pair(b, json, "event_name", 10, ev, evlen, &npairs);
        }
        for (size_t a = 0; a < lr.nattr; a++) {
            if (!(a < 64 && used[a]) && loki_ent_attr(b, json, &attrs[a], &npairs) < 0) {
                return build_fail(b);
            }
        }
        for (size_t a = 0; cfg->sm_resource && a < nra; a++) {
            int is_label = a < 64 && rused[a];
            if (!is_label && loki_ent_attr(b, json, &sc->rkv[a], &npairs) < 0) {
                return build_fail(b);
            }
        }
    }
    size_t elen = loki_ent_end(b, json, start, npairs);
    if (!elen || elen > UINT32_MAX) {
        return MT_ENOMEM;
    }
    lk_entry_t *e = &b->e[b->ne++];
    e->ts = ts;
    e->off = start;
    e->stream = (uint32_t)si;
    e->len = (uint32_t)elen;
    lk_stream_t *st_ = &b->s[si];
    if (st_->count && ts < st_->last_ts) {
        st_->unsorted = 1;
    }
    st_->last_ts = ts;
    st_->count++;
    st_->bytes += elen;
    return MT_OK;
}

/* One ResourceLogs into entries and streams. */
static int build_resource(lk_build_t *b, const uint8_t *p, size_t n, const char *fallback,
                          uint64_t now_ns, int first, uint32_t *seq)
{
    exporter_t *ex = b->ex;
    const loki_cfg_t *cfg = ex->cfg;
    loki_state_t *st = ex->state;
    const lk_plan_t *p_ = &st->plan;
    lk_scratch_t *sc = b->sc;
    const uint8_t *q, *end = p + n;
    wf_t f;
    int rc;
    size_t nra = 0, nrec = 0;
    /* pass 1: the resource (every occurrence: protobuf merges them) and the record count */
    q = p;
    while ((rc = wnext(&q, end, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != 2 || read_resource(b, f.p, f.n, &nra) < 0) {
                b->bad |= f.wt != 2;
                return build_fail(b);
            }
        } else if (f.num == 2) {
            long c = f.wt == 2 ? count_records(f.p, f.n) : -1;
            if (c < 0) {
                b->bad = 1;
                return MT_EINVAL;
            }
            nrec += (size_t)c;
        } else if (f.num == 3 && f.wt != 2) {
            rc = -1;
            break;
        }
    }
    if (rc < 0) {
        b->bad = 1;
        return MT_EINVAL;
    }
    if (!nrec) {
        return MT_OK;
    }
    const wkv_t *ra = sc->rkv;
    /* tenant of this resource */
    const char *tn = fallback;
    size_t tl = strlen(fallback);
    if (cfg->tenant_attr) {
        const wkv_t *kv = find_attr(ra, nra, cfg->tenant_attr);
        if (kv && kv->is_str && kv->slen) {
            tn = kv->s;
            tl = kv->slen;
        }
    }
    if (tl && !loki_tenant_ok(tn, tl)) {
        /* Loki takes exactly one tenant of its alphabet: a `a|b` list or anything else
         * would be refused as a whole push */
        b->dropped += nrec;
        b->drop_reason = "invalid_tenant";
        if (first) {
            loki_count_drop(st, "invalid_tenant", nrec);
            mt_log(MT_LOG_ERROR,
                   "exporter %s: dropping %zu log records: tenant \"%.*s\" "
                   "is not a valid Loki tenant",
                   ex->id, nrec, (int)(tl < 160 ? tl : 160), tn);
        }
        return MT_OK;
    }
    int ti = tenant_index(b, tn, tl);
    if (ti < 0) {
        b->dropped += nrec;
        b->drop_reason = "too_many_tenants";
        if (first) {
            loki_count_drop(st, "too_many_tenants", nrec);
        }
        return MT_OK;
    }
    /* resource label values */
    mt_str_t rvals[LK_MAX_LABELS + 1];
    memset(rvals, 0, sizeof(rvals));
    uint8_t rused[64];
    memset(rused, 0, sizeof(rused));
    for (int k = 0; k < p_->nres; k++) {
        if (rvals[p_->res[k].slot].len) {
            continue;
        }
        size_t kl = strlen(p_->res[k].key);
        for (size_t a = 0; a < nra; a++) {
            if (key_is(&ra[a], p_->res[k].key, kl)) {
                size_t vl = 0;
                const char *v = loki_kv_text(b, &ra[a], &vl);
                if (!v) {
                    return build_fail(b);
                }
                if (vl) {
                    rvals[p_->res[k].slot].ptr = v;
                    rvals[p_->res[k].slot].len = loki_cut_utf8(v, vl, LK_LABEL_VALUE_MAX);
                }
                if (a < 64) {
                    rused[a] = 1;
                }
                break;
            }
        }
    }
    if (p_->svc_slot >= 0 && !rvals[p_->svc_slot].len) {
        rvals[p_->svc_slot].ptr = "unknown_service";
        rvals[p_->svc_slot].len = 15;
    }
    /* stream per (level, kind) of this resource, when no record attribute is a label */
    int scache[16];
    for (int k = 0; k < 16; k++) {
        scache[k] = -1;
    }
    uint64_t nevents = 0;
    /* pass 2: the records, in order */
    q = p;
    while (wnext(&q, end, &f) > 0) {
        if (f.num != 2) {
            continue;
        }
        const uint8_t *s = f.p, *send = f.p + f.n;
        wf_t g;
        while (wnext(&s, send, &g) > 0) {
            if (g.num != 2) {
                continue;
            }
            rc = build_record(b, g.p, g.n, ti, rvals, rused, nra, scache, now_ns, seq, &nevents);
            if (rc != MT_OK) {
                return rc;
            }
        }
    }
    if (first && nevents) {
        const wkv_t *svc_kv = find_attr(ra, nra, "service.name");
        if (svc_kv && svc_kv->is_str) {
            loki_count_events(st, svc_kv->s, svc_kv->slen, nevents);
        } else {
            loki_count_events(st, "unknown_service", 15, nevents);
        }
    }
    return MT_OK;
}

/* Turns one encoded request into entries and streams. Returns MT_OK, MT_EINVAL or
 * MT_ENOMEM. */
int loki_build_entries(lk_build_t *b, const uint8_t *data, size_t len, const char *req_tenant,
                       uint64_t now_ns, int first)
{
    const loki_cfg_t *cfg = b->ex->cfg;
    lk_scratch_t *sc = b->sc;
    if (!sc->ht) {
        sc->ht = calloc(64, sizeof(uint32_t));
        if (!sc->ht) {
            return MT_ENOMEM;
        }
        sc->ht_size = 64;
    } else {
        memset(sc->ht, 0, sc->ht_size * sizeof(uint32_t));
    }
    b->ht = sc->ht;
    b->htmask = sc->ht_size - 1;
    b->e = sc->e;
    b->s = sc->s;
    lk_names_t *nc = &sc->names;
    if (!nc->t) {
        nc->t = calloc(LK_NC_SLOTS, sizeof(lk_nc_ent_t));
        nc->pool = malloc(LK_NC_POOL);
        if (!nc->t || !nc->pool) {
            free(nc->t);
            free(nc->pool);
            memset(nc, 0, sizeof(*nc));
        }
    } else if (nc->n >= LK_NC_MAX || nc->pool_len + 1024 > LK_NC_POOL) {
        memset(nc->t, 0, LK_NC_SLOTS * sizeof(lk_nc_ent_t));
        nc->n = nc->pool_len = 0;
    }
    const char *fallback = cfg->tenant_id ? cfg->tenant_id : req_tenant ? req_tenant : "";
    uint32_t seq = 0;
    const uint8_t *p = data, *end = data + len;
    wf_t f;
    int rc;
    while ((rc = wnext(&p, end, &f)) > 0) {
        if (f.num != 1) {
            continue;
        }
        if (f.wt != 2) {
            return MT_EINVAL;
        }
        int r = build_resource(b, f.p, f.n, fallback, now_ns, first, &seq);
        if (r != MT_OK) {
            return r;
        }
    }
    return rc < 0 ? MT_EINVAL : MT_OK;
}

/* Stable sort of a stream's entries by timestamp: a natural merge sort, as a stream is a few
 * ordered runs (one per request of the batch) far more often than shuffled. Equal timestamps
 * keep arrival order (the left run wins ties). tmp holds n entries. */
static void sort_stream(lk_entry_t *a, size_t n, lk_entry_t *tmp)
{
    lk_entry_t *src = a, *dst = tmp;
    for (;;) {
        size_t i = 0, runs = 0;
        while (i < n) {
            size_t m = i + 1;
            while (m < n && src[m].ts >= src[m - 1].ts) {
                m++;
            }
            size_t j = m;
            if (j < n) {
                j++;
                while (j < n && src[j].ts >= src[j - 1].ts) {
                    j++;
                }
            }
            /* merge src[i..m) and src[m..j) into dst[i..j) */
            size_t l = i, r = m, o = i;
            while (l < m && r < j) {
                dst[o++] = src[r].ts < src[l].ts ? src[r++] : src[l++];
            }
            while (l < m) {
                dst[o++] = src[l++];
            }
            while (r < j) {
                dst[o++] = src[r++];
            }
            runs++;
            i = j;
        }
        lk_entry_t *t = src;
        src = dst;
        dst = t;
        if (runs <= 1) {
            break;
        }
    }
    if (src != a) {
        memcpy(a, src, n * sizeof(*a));
    }
}

/* Groups entries by stream (counting sort, keeps arrival order) and sorts the streams whose
 * timestamps went backwards; streams already in order (the common case) are not looked at. */
int loki_sort_entries(lk_build_t *b)
{
    lk_entry_t *out = arena_alloc(b->a, (b->ne + 1) * sizeof(lk_entry_t));
    if (!out) {
        return MT_ENOMEM;
    }
    uint32_t off = 0;
    for (size_t s = 0; s < b->ns; s++) {
        b->s[s].first = off;
        b->s[s].fill = off;
        off += b->s[s].count;
    }
    for (size_t i = 0; i < b->ne; i++) {
        out[b->s[b->e[i].stream].fill++] = b->e[i];
    }
    lk_entry_t *tmp = NULL;
    for (size_t s = 0; s < b->ns; s++) {
        if (b->s[s].unsorted) {
            if (!tmp && !(tmp = arena_alloc(b->a, (b->ne + 1) * sizeof(lk_entry_t)))) {
                return MT_ENOMEM;
            }
            sort_stream(out + b->s[s].first, b->s[s].count, tmp);
        }
    }
    b->e = out;
    return MT_OK;
}
