/*
 * loki_int.h - PRIVATE to the exporters/loki module (loki.c, loki_wire.c, loki_render.c,
 * loki_build.c, loki_encode.c, loki_http.c): the configuration, the push-building state and
 * the helpers its parts share. Nothing outside exporters/loki*.c may include this header.
 */
#ifndef EXPORTERS_LOKI_INT_H
#define EXPORTERS_LOKI_INT_H

#include "component.h"
#include "otlp.h"
#include "codec.h"
#include "httpc.h"
#include "sb.h"
#include "events.h"
#include "promconv.h"
#include "pbwire.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LK_MAX_LABELS      15          /* Loki's max_label_names_per_series default */
#define LK_LABEL_VALUE_MAX 2048        /* Loki's max_label_value_length default */
#define LK_MAX_TENANTS     64          /* distinct tenants in one batch (more are dropped) */
#define LK_TENANT_MAX      150         /* Loki's tenant id length limit */
#define LK_MAX_DEPTH       16          /* AnyValue nesting rendered into text */
#define LK_EVENT_SERVICES  256         /* distinct services with their own events counter */
#define LK_TEXT_MAX        (64u << 20) /* one rendered line / request body */

/* CFG_T_ENUM values, in the order of their "a|b|c" lists in loki_fields */
typedef enum { LOKI_ENC_PROTOBUF = 0, LOKI_ENC_JSON } loki_encoding_t;
typedef enum { LOKI_JSON_GZIP = 0, LOKI_JSON_UNCOMPRESSED } loki_json_compression_t;
typedef enum { LOKI_LINE_RAW = 0, LOKI_LINE_JSON, LOKI_LINE_LOGFMT } loki_line_format_t;

typedef struct loki_cfg {
    exporter_common_t common;
    char *endpoint;
    loki_encoding_t encoding;                 /* "protobuf|json" */
    loki_json_compression_t json_compression; /* "gzip|none" */
    char *tenant_id;
    char *tenant_attr;
    cfg_strlist_t res_labels;
    cfg_strlist_t attr_labels;
    int level_label;
    int event_label;
    int sm;
    int sm_resource;
    loki_line_format_t line_format; /* "raw|json|logfmt" */
    cfg_strmap_t headers;
    int64_t max_labels;
    int64_t max_response;
    tls_client_cfg_t tls;
    char *auth; /* resolved by the service into exporter_t.auth */
} loki_cfg_t;

/* ---- label plan: which label names exist and where their values come from ------------- */

typedef struct lk_spec {
    char key[256]; /* attribute key */
    int slot;
} lk_spec_t;

typedef struct lk_plan {
    char names[LK_MAX_LABELS + 1][128]; /* label names, sorted: slot order = selector order */
    int nslots;
    lk_spec_t res[64], attr[64];
    int nres, nattr;
    int level_slot, kind_slot, svc_slot;
} lk_plan_t;

/* ---- state ------------------------------------------------------------------------------ */

typedef struct loki_state {
    lk_plan_t plan;
    struct curl_slist *hdrs;
    char labels[256]; /* exporter="..." */
    tm_counter_t *c_sent, *c_requests, *c_events_total;
    events_counter_t *ev; /* meltp_events_received_total{exporter,service} */
} loki_state_t;

/* AnyValue: kinds are the oneof field numbers. */
enum { AV_NONE, AV_STR, AV_BOOL, AV_INT, AV_DOUBLE, AV_ARRAY, AV_KVLIST, AV_BYTES, AV_STRINDEX };

typedef struct av {
    int kind;
    const uint8_t *p; /* string (NUL-cut), bytes, array or kvlist payload */
    size_t n;
    uint64_t v; /* bool, int, double bits */
} av_t;

/* One attribute, zero-copy; a string value is resolved once. */
typedef struct wkv {
    const char *key;
    const uint8_t *v;
    const char *s; /* the value when it is a string */
    uint32_t klen, vlen, slen;
    int is_str, kind;
    uint64_t iv; /* bool / int value */
} wkv_t;

/* ---- building pushes ---------------------------------------------------------------------- */

typedef struct lk_pair {
    const char *name, *val;
    uint32_t nlen, vlen;
} lk_pair_t;

/* An entry, already encoded (protobuf: the whole `entries` field of its stream, tag and
 * length included; JSON: its `[ts, line, {metadata}]` value) at off in the entry buffer. */
typedef struct lk_entry {
    uint64_t ts;
    size_t off;
    uint32_t stream, len;
} lk_entry_t;

typedef struct lk_stream {
    const char *sel; /* selector text {a="b", c="d"} */
    uint32_t sel_len, tenant, count, first, fill;
    int unsorted; /* an entry came with a timestamp older than the one before */
    uint64_t hash, last_ts;
    size_t bytes; /* its entries' encoded bytes */
    lk_pair_t labels[LK_MAX_LABELS + 1];
    int nlabels;
} lk_stream_t;

typedef struct lk_nc_ent {
    uint64_t h;
    uint32_t off, rlen; /* raw key in the pool */
    int32_t nlen;       /* sanitised name follows the raw key; <= 0 no usable name */
    uint32_t used;
} lk_nc_ent_t;

typedef struct lk_names {
    lk_nc_ent_t *t;
    char *pool;
    size_t pool_len, n;
} lk_names_t;

/* Memory a worker keeps between batches: a batch's arena (reset, not freed, so steady state
 * takes no page faults), the entry / stream / hash arrays, attribute views, the name cache and
 * the protobuf body buffer. Buffers grown by an unusually big batch are shrunk afterwards. */
typedef struct lk_scratch {
    arena_t *a;
    size_t arena_first; /* first block size; grows to what a batch needed */
    uint8_t *pb;
    size_t pb_cap;
    sb_t tmp, val;
    sb_t eb; /* the batch's encoded entries, in arrival order */
    lk_entry_t *e;
    size_t e_cap;
    lk_stream_t *s;
    size_t s_cap;
    uint32_t *ht; /* stream hash table: index+1, 0 empty */
    size_t ht_size;
    wkv_t *rkv, *akv; /* resource / record attributes */
    size_t rkv_cap, akv_cap;
    lk_names_t names;
} lk_scratch_t;

typedef struct lk_build {
    exporter_t *ex;
    lk_scratch_t *sc;
    arena_t *a;
    sb_t tmp; /* scratch for a selector or a line */
    sb_t val; /* scratch for one value (value_text) */
    sb_t eb;  /* encoded entries (see lk_entry_t) */
    lk_entry_t *e;
    size_t ne;
    lk_stream_t *s;
    size_t ns;
    uint32_t *ht; /* stream hash table: index+1, 0 empty */
    size_t htmask;
    const char *tenants[LK_MAX_TENANTS];
    size_t tlen[LK_MAX_TENANTS];
    size_t ntenants;
    uint64_t dropped; /* records dropped while building (bad tenants) */
    const char *drop_reason;
    int bad;                /* malformed wire data met */
    uint32_t name_memo[16]; /* name cache slot + 1 of the last key of each length % 16 */
} lk_build_t;

/* One log record, zero-copy. */
typedef struct wrec {
    uint64_t t, obs;
    int sev;
    const char *sevtext, *ev;
    size_t sevlen, evlen;
    const uint8_t *body, *tid, *sid;
    size_t blen, tidlen, sidlen;
    size_t nattr; /* in sc->akv */
} wrec_t;

/* ---- the build/push driver (shared by send() and the unit tests) ------------------------- */

/* Called once per tenant push with the uncompressed body. Returns MT_OK (delivered or
 * permanently settled) or MT_ERETRY (stop: the batch is retried). */
typedef int (*loki_push_fn)(void *arg, size_t index, const char *tenant, const uint8_t *body,
                            size_t len, uint64_t entries);

/* loki.c */
int loki_sanitize_name(const char *key, size_t klen, char *buf, size_t buflen);
int loki_tenant_ok(const char *t, size_t n);
void loki_count_drop(loki_state_t *st, const char *reason, uint64_t n);
void loki_count_events(loki_state_t *st, const char *svc, size_t n, uint64_t events);

/* loki_wire.c */
void loki_json_esc(sb_t *b, const char *s, size_t n);
void loki_json_str(sb_t *b, const char *s, size_t n);
int loki_av_parse(const uint8_t *p, size_t n, av_t *a);
int loki_kv_parse(const uint8_t *p, size_t n, const char **k, size_t *kl, const uint8_t **v,
                  size_t *vl);
int loki_wkv_parse(const uint8_t *p, size_t n, wkv_t *kv);
void loki_any_json(sb_t *b, const uint8_t *p, size_t n, int depth);
void loki_any_text(sb_t *b, const uint8_t *p, size_t n);

/* loki_build.c */
void loki_scratch_fini(lk_scratch_t *sc);
const char *loki_arena_text(lk_build_t *b, const char *s, size_t n);
const char *loki_attr_name(lk_build_t *b, const char *key, size_t klen, int *nl);
uint8_t *loki_put_len(uint8_t *p, uint8_t tag, size_t n);
size_t loki_ts_inner(uint64_t ts);
int loki_build_entries(lk_build_t *b, const uint8_t *data, size_t len, const char *req_tenant,
                       uint64_t now_ns, int first);
int loki_sort_entries(lk_build_t *b);

/* loki_render.c */
const char *loki_value_text_in(lk_build_t *b, const uint8_t *p, size_t n, size_t *len, int keep);
const char *loki_kv_text(lk_build_t *b, const wkv_t *kv, size_t *len);
size_t loki_cut_utf8(const char *s, size_t n, size_t max);
extern const char *const loki_levels[8];
extern const uint8_t loki_level_len[8];
int loki_level_code(int sevnum, const char *text, size_t n);
void loki_ent_begin(lk_build_t *b, int json, uint64_t ts);
void loki_ent_line(lk_build_t *b, int json, const char *line, size_t n);
size_t loki_ent_end(lk_build_t *b, int json, size_t start, int npairs);
int loki_ent_attr(lk_build_t *b, int json, const wkv_t *kv, int *npairs);
void loki_render_line(lk_build_t *b, const loki_cfg_t *cfg, const wrec_t *r, const wkv_t *attrs,
                      const uint8_t *used, const char *tid, const char *sid, const char *ev,
                      size_t evlen);

/* loki_encode.c */
int loki_build_with(exporter_t *ex, lk_scratch_t *sc, const uint8_t *data, size_t len,
                    const char *req_tenant, uint64_t now_ns, int count_events_, uint64_t skip,
                    loki_push_fn fn, void *arg, uint64_t *dropped, size_t *npushes);

/* loki_http.c */
void *loki_worker_init(exporter_t *ex);
void loki_worker_fini(exporter_t *ex, void *ws);
int loki_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
              uint32_t items, send_result_t *res);

/* Length of a string field as protobuf-c's copy read with strlen would give it. */
static inline size_t wstrlen(const uint8_t *p, size_t n)
{
    if (n <= 32) {
        size_t i = 0;
        if (n >= 8) {
            /* a word at a time (the last one overlapping) until one holds a zero byte */
            uint64_t w;
            for (; i + 8 <= n; i += 8) {
                memcpy(&w, p + i, 8);
                if ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull) {
                    break;
                }
            }
            if (i == n) {
                return n;
            }
            if (i + 8 > n) {
                i = n - 8;
                memcpy(&w, p + i, 8);
                if (!((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull)) {
                    return n;
                }
            }
        }
        for (; i < n; i++) {
            if (!p[i]) {
                return i;
            }
        }
        return n;
    }
    const uint8_t *z = memchr(p, 0, n);
    return z ? (size_t)(z - p) : n;
}

static inline void ent_pair(lk_build_t *b, int json, const char *name, size_t nl, const char *v,
                            size_t vl, int *npairs)
{
    sb_t *eb = &b->eb;
    if (json) {
        sb_put(eb, *npairs ? "," : ",{", *npairs ? 1 : 2);
        (*npairs)++;
        loki_json_str(eb, name, nl);
        sb_putc(eb, ':');
        loki_json_str(eb, v, vl);
        return;
    }
    if (nl && nl < 128 && vl < 128 && nl + vl + 4 < 128) {
        /* the usual short pair: every length one byte */
        size_t pi = 2 + nl + (vl ? 2 + vl : 0);
        if (eb->len + pi + 3 > eb->cap && sb_room(eb, pi + 2) < 0) {
            return;
        }
        uint8_t *p = (uint8_t *)eb->p + eb->len;
        p[0] = 0x1a;
        p[1] = (uint8_t)pi;
        p[2] = 0x0a;
        p[3] = (uint8_t)nl;
        memcpy(p + 4, name, nl);
        p += 4 + nl;
        if (vl) {
            p[0] = 0x12;
            p[1] = (uint8_t)vl;
            memcpy(p + 2, v, vl);
        }
        eb->len += 2 + pi;
        (*npairs)++;
        return;
    }
    size_t pi = (nl ? 1 + vsz(nl) + nl : 0) + (vl ? 1 + vsz(vl) + vl : 0);
    if (eb->len + pi + 12 > eb->cap && sb_room(eb, pi + 11) < 0) {
        return;
    }
    uint8_t *p = loki_put_len((uint8_t *)eb->p + eb->len, 0x1a, pi);
    if (nl) {
        p = loki_put_len(p, 0x0a, nl);
        memcpy(p, name, nl);
        p += nl;
    }
    if (vl) {
        p = loki_put_len(p, 0x12, vl);
        memcpy(p, v, vl);
        p += vl;
    }
    eb->len = (size_t)(p - (uint8_t *)eb->p);
    (*npairs)++;
}

#endif
