/*
 * prw.c - the `prometheusremotewrite` exporter: OTLP metrics -> Prometheus remote-write
 * (1.0 by default, 2.0 by option), snappy-compressed, sharded by series hash.
 *
 * Ordering: the queue runs one consumer, so batches are converted in arrival order; inside a
 * batch every series lands in exactly one shard (hash of its label set) and each shard sends
 * its chunks one after another, so samples of a series reach the backend in timestamp order
 * and the backend never sees out-of-order rejects caused by us. Shards send in parallel over
 * one curl multi handle. Each chunk is retried on its own (5xx, 429, transport errors) with
 * backoff honouring Retry-After; other 4xx are permanent and counted per reason with the
 * server's message. A 415 (or a 2xx without the written-count headers) to a 2.0 request
 * switches this exporter to 1.0.
 */
#include "component.h"
#include "otlp.h"
#include "promconv.h"
#include "codec.h"
#include "httpc.h"
#include "prom_rw2.pb-c.h"
#include "prw_decode.h"
#include "pbwire.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

typedef struct prw_cfg {
    exporter_common_t common;
    char *endpoint;
    int message;                  /* 0 prometheus.WriteRequest (1.0), 1 io.prometheus.write.v2.Request */
    cfg_strmap_t headers;
    cfg_strmap_t external_labels;
    char *namespace_;
    int resource_to_telemetry;
    cfg_strlist_t promote;
    int add_metric_suffixes;
    int target_info;
    int scope_labels;
    int send_metadata;
    int64_t max_samples_per_send;
    int64_t shards;
    int64_t dc_max_series;
    int64_t dc_max_stale;
    int tls_insecure_skip_verify;
    char *tls_ca_file;
} prw_cfg_t;

static const cfg_field_t prw_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(prw_cfg_t, endpoint), NULL,
     "remote-write URL, e.g. http://prometheus:9090/api/v1/write"},
    {"protobuf_message", CFG_T_ENUM, "prometheus.WriteRequest", 0, offsetof(prw_cfg_t, message),
     "prometheus.WriteRequest|io.prometheus.write.v2.Request",
     "remote-write 1.0 (default) or 2.0; 2.0 falls back to 1.0 when the server answers 415"},
    {"headers", CFG_T_STRMAP, NULL, 0, offsetof(prw_cfg_t, headers), NULL,
     "extra request headers (e.g. X-Scope-OrgID); reserved remote-write headers cannot be set"},
    {"external_labels", CFG_T_STRMAP, NULL, 0, offsetof(prw_cfg_t, external_labels), NULL,
     "labels added to every series that does not have them"},
    {"namespace", CFG_T_STRING, NULL, 0, offsetof(prw_cfg_t, namespace_), NULL,
     "prefix for every metric name"},
    {"resource_to_telemetry_conversion.enabled", CFG_T_BOOL, "false", 0,
     offsetof(prw_cfg_t, resource_to_telemetry), NULL,
     "copy every resource attribute to every series as a label"},
    {"promote_resource_attributes", CFG_T_STRLIST, NULL, 0, offsetof(prw_cfg_t, promote), NULL,
     "resource attributes copied to every series as labels"},
    {"add_metric_suffixes", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, add_metric_suffixes), NULL,
     "unit and _total / _ratio suffixes"},
    {"target_info.enabled", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, target_info), NULL,
     "send target_info with the other resource attributes"},
    {"add_scope_labels", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, scope_labels), NULL,
     "otel_scope_name, otel_scope_version, otel_scope_schema_url and scope attributes"},
    {"send_metadata", CFG_T_BOOL, "true", 0, offsetof(prw_cfg_t, send_metadata), NULL,
     "send TYPE / HELP / UNIT metadata"},
    {"max_samples_per_send", CFG_T_INT, "2000", 0, offsetof(prw_cfg_t, max_samples_per_send), NULL,
     "samples (a native histogram counts as one) per remote-write request"},
    {"remote_write_queue.num_consumers", CFG_T_INT, "4", 0, offsetof(prw_cfg_t, shards), NULL,
     "shards: concurrent requests, each series always in the same shard"},
    {"delta_to_cumulative.max_series", CFG_T_INT, "100000", 0, offsetof(prw_cfg_t, dc_max_series),
     NULL, "series whose delta points are accumulated; more are dropped and counted"},
    {"delta_to_cumulative.max_stale", CFG_T_DURATION, "5m", 0, offsetof(prw_cfg_t, dc_max_stale),
     NULL, "forget a delta series after this long without points"},
    {"tls.insecure_skip_verify", CFG_T_BOOL, "false", 0,
     offsetof(prw_cfg_t, tls_insecure_skip_verify), NULL, "do not verify the server certificate"},
    {"tls.ca_file", CFG_T_STRING, NULL, 0, offsetof(prw_cfg_t, tls_ca_file), NULL,
     "CA bundle for https"},
};

static const char *reserved_headers[] = {"content-encoding", "content-type", "user-agent",
                                         "x-prometheus-remote-write-version"};

static void prw_validate(cfg_ctx_t *c, const void *cfgp, const char *path, const cfg_node_t *node)
{
    const prw_cfg_t *cfg = cfgp;
    if (cfg->endpoint && strncmp(cfg->endpoint, "http://", 7) &&
        strncmp(cfg->endpoint, "https://", 8)) {
        cfg_error_key(c, node, path, "endpoint", "\"%s\" is not an http:// or https:// URL",
                      cfg->endpoint);
    }
    for (size_t i = 0; i < cfg->headers.n; i++) {
        for (size_t k = 0; k < MT_ARRAY_LEN(reserved_headers); k++) {
            if (strcasecmp(cfg->headers.keys[i], reserved_headers[k]) == 0) {
                cfg_error_key(c, node, path, "headers", "%s is set by remote-write itself",
                              cfg->headers.keys[i]);
            }
        }
    }
    if (cfg->max_samples_per_send < 1) {
        cfg_error_key(c, node, path, "max_samples_per_send", "must be positive");
    }
    if (cfg->shards < 1 || cfg->shards > 64) {
        cfg_error_key(c, node, path, "remote_write_queue.num_consumers", "must be 1..64");
    }
    for (size_t i = 0; i < cfg->external_labels.n; i++) {
        char buf[256];
        if (promconv_label_name(cfg->external_labels.keys[i], buf, sizeof(buf)) < 0 ||
            strcmp(buf, cfg->external_labels.keys[i]) != 0) {
            cfg_error_key(c, node, path, "external_labels", "\"%s\" is not a valid label name",
                          cfg->external_labels.keys[i]);
        }
    }
}

/* Last target_info timestamp per (job, instance): target_info is synthesised from each
 * batch's timestamps, and a batch of older data (backfill, a delayed sender) must not make us
 * send target_info backwards in time, which Prometheus rejects as out of order. A small
 * direct-mapped table: a collision only forgets, and forgetting at worst costs one 400. */
#define TI_SLOTS 4096
typedef struct ti_slot {
    uint64_t key;
    int64_t ts;
} ti_slot_t;

typedef struct prw_state {
    ti_slot_t ti[TI_SLOTS];
    deltacum_t *dc;
    struct curl_slist *hdrs[2];
    _Atomic int use_v1;             /* set after a 415 to a 2.0 request */
    char labels[256];
    tm_counter_t *c_samples, *c_histograms, *c_exemplars, *c_requests;
} prw_state_t;

static int prw_create(exporter_t *ex, mt_errbuf_t *eb)
{
    prw_cfg_t *cfg = ex->cfg;
    /* one consumer keeps batches in order; parallelism comes from the shards */
    cfg->common.num_consumers = 1;
    prw_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->dc = deltacum_create((size_t)cfg->dc_max_series, cfg->dc_max_stale);
    if (!st->dc) {
        free(st);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    for (int v = 0; v < 2; v++) {
        struct curl_slist *h = NULL;
        h = curl_slist_append(h, v ? "Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request"
                                   : "Content-Type: application/x-protobuf");
        h = curl_slist_append(h, "Content-Encoding: snappy");
        h = curl_slist_append(h, v ? "X-Prometheus-Remote-Write-Version: 2.0.0"
                                   : "X-Prometheus-Remote-Write-Version: 0.1.0");
        h = curl_slist_append(h, "User-Agent: meltp/" MELTP_VERSION);
        h = curl_slist_append(h, "Expect:");
        for (size_t i = 0; i < cfg->headers.n; i++) {
            char line[1024];
            snprintf(line, sizeof(line), "%s: %s", cfg->headers.keys[i], cfg->headers.vals[i]);
            h = curl_slist_append(h, line);
        }
        st->hdrs[v] = h;
    }
    st->use_v1 = cfg->message == 0;
    snprintf(st->labels, sizeof(st->labels), "exporter=\"%s\"", ex->id);
    st->c_samples = tm_counter("meltp_prw_samples_sent_total",
                               "Remote-write float samples the backend accepted.", st->labels);
    st->c_histograms = tm_counter("meltp_prw_histograms_sent_total",
                                  "Remote-write native histogram samples the backend accepted.",
                                  st->labels);
    st->c_exemplars = tm_counter("meltp_prw_exemplars_sent_total",
                                 "Remote-write exemplars the backend accepted.", st->labels);
    st->c_requests = tm_counter("meltp_prw_requests_total", "Remote-write requests sent.",
                                st->labels);
    ex->state = st;
    return MT_OK;
}

static void prw_destroy(exporter_t *ex)
{
    prw_state_t *st = ex->state;
    if (st) {
        deltacum_destroy(st->dc);
        curl_slist_free_all(st->hdrs[0]);
        curl_slist_free_all(st->hdrs[1]);
        free(st);
        ex->state = NULL;
    }
}

static void count_drop(prw_state_t *st, const char *reason, uint64_t n)
{
    tm_count_reason("meltp_prw_samples_dropped_total",
                    "Remote-write samples not delivered, by reason.", st->labels, reason, n);
}

/* Hash of the label set: stable shard for a series (within one process). */
static uint64_t series_hash(const Prometheus__TimeSeries *ts)
{
    uint64_t h = MT_FNV_BASIS;
    for (size_t i = 0; i < ts->n_labels; i++) {
        h = mt_hash_bytes(h, ts->labels[i]->name, strlen(ts->labels[i]->name));
        h = (h ^ 0xff) * MT_FNV_PRIME;
        h = mt_hash_bytes(h, ts->labels[i]->value, strlen(ts->labels[i]->value));
        h = (h ^ 0xfe) * MT_FNV_PRIME;
    }
    return h;
}

/* Hash of the metric point a series belongs to: labels without le / quantile and the name
 * without _bucket / _sum / _count. All series of one classic histogram or summary point share
 * it, so they travel in the same shard and request and a receiver can put them back together
 * (each series still always maps to the same shard, so per-series order holds). */
static uint64_t group_hash(const Prometheus__TimeSeries *ts)
{
    static const char *sfx[] = {"_bucket", "_sum", "_count"};
    uint64_t h = MT_FNV_BASIS;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const char *n = ts->labels[i]->name, *v = ts->labels[i]->value;
        if (!strcmp(n, "le") || !strcmp(n, "quantile")) {
            continue;
        }
        size_t vl = strlen(v);
        if (!strcmp(n, "__name__")) {
            for (size_t k = 0; k < 3; k++) {
                size_t sl = strlen(sfx[k]);
                if (vl > sl && !strcmp(v + vl - sl, sfx[k])) {
                    vl -= sl;
                    break;
                }
            }
        }
        h = mt_hash_bytes(h, n, strlen(n));
        h = (h ^ 0xff) * MT_FNV_PRIME;
        h = mt_hash_bytes(h, v, vl);
        h = (h ^ 0xfe) * MT_FNV_PRIME;
    }
    return h;
}

static const char *label_value(const Prometheus__TimeSeries *ts, const char *name)
{
    for (size_t l = 0; l < ts->n_labels; l++) {
        if (!strcmp(ts->labels[l]->name, name)) {
            return ts->labels[l]->value;
        }
    }
    return NULL;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Same (job, instance): a series of the resource a target_info describes. */
static int same_target(const Prometheus__TimeSeries *a, const Prometheus__TimeSeries *b)
{
    return same_str(label_value(a, "job"), label_value(b, "job")) &&
           same_str(label_value(a, "instance"), label_value(b, "instance"));
}

static size_t series_weight(const Prometheus__TimeSeries *ts)
{
    size_t w = ts->n_samples + ts->n_histograms;
    return w ? w : 1;
}

/* One request body waiting to be sent by a shard. */
typedef struct chunk {
    uint8_t *body;       /* snappy-compressed, malloc'd */
    size_t len;
    uint64_t samples, histograms, exemplars;
    int v2;
} chunk_t;

/* ---- RW 2.0 re-shaping: symbols table ------------------------------------------------------ */

typedef struct symtab {
    char **syms;
    size_t n, cap;
    uint32_t *slots;    /* open addressing: index+1, 0 = empty */
    size_t nslots;
    arena_t *a;
} symtab_t;

static uint64_t str_hash(const char *s)
{
    return mt_fnv1a(MT_FNV_BASIS, s, strlen(s));
}

static int sym_init(symtab_t *t, arena_t *a, size_t expect)
{
    memset(t, 0, sizeof(*t));
    t->a = a;
    t->nslots = 64;
    while (t->nslots < expect * 2) {
        t->nslots *= 2;
    }
    t->slots = arena_calloc(a, t->nslots * sizeof(uint32_t));
    t->cap = expect + 1;
    t->syms = arena_alloc(a, t->cap * sizeof(char *));
    if (!t->slots || !t->syms) {
        return -1;
    }
    t->syms[t->n++] = (char *)"";
    return 0;
}

static int64_t sym_ref(symtab_t *t, const char *s)
{
    if (!*s) {
        return 0;
    }
    size_t mask = t->nslots - 1, i = (size_t)str_hash(s) & mask;
    while (t->slots[i]) {
        if (strcmp(t->syms[t->slots[i] - 1], s) == 0) {
            return t->slots[i] - 1;
        }
        i = (i + 1) & mask;
    }
    if (t->n == t->cap || t->n * 2 >= t->nslots) {
        return -1; /* sized up front; never happens when `expect` was right */
    }
    t->syms[t->n] = (char *)s;
    t->slots[i] = (uint32_t)(t->n + 1);
    return (int64_t)t->n++;
}

static int meta_type_v2(int v1type)
{
    /* the enums have the same numbering (UNKNOWN/UNSPECIFIED = 0 ... STATESET = 7) */
    return v1type;
}

/* Packs series [from, to) of `list` as a v2 Request. */
static uint8_t *pack_v2(Prometheus__TimeSeries **list, size_t n, const promconv_out_t *out,
                        arena_t *a, size_t *len)
{
    size_t expect = 16;
    for (size_t i = 0; i < n; i++) {
        expect += list[i]->n_labels * 2 + 2;
        for (size_t e = 0; e < list[i]->n_exemplars; e++) {
            expect += list[i]->exemplars[e]->n_labels * 2;
        }
    }
    symtab_t t;
    if (sym_init(&t, a, expect) != 0) {
        return NULL;
    }
    Io__Prometheus__Write__V2__TimeSeries **ts = arena_alloc(a, (n ? n : 1) * sizeof(*ts));
    if (!ts) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const Prometheus__TimeSeries *s = list[i];
        Io__Prometheus__Write__V2__TimeSeries *o = arena_alloc(a, sizeof(*o));
        if (!o) {
            return NULL;
        }
        io__prometheus__write__v2__time_series__init(o);
        o->n_labels_refs = s->n_labels * 2;
        o->labels_refs = arena_alloc(a, (o->n_labels_refs ? o->n_labels_refs : 1) * sizeof(uint32_t));
        if (!o->labels_refs) {
            return NULL;
        }
        const char *name = "";
        for (size_t l = 0; l < s->n_labels; l++) {
            o->labels_refs[2 * l] = (uint32_t)sym_ref(&t, s->labels[l]->name);
            o->labels_refs[2 * l + 1] = (uint32_t)sym_ref(&t, s->labels[l]->value);
            if (strcmp(s->labels[l]->name, "__name__") == 0) {
                name = s->labels[l]->value;
            }
        }
        o->n_samples = s->n_samples;
        o->samples = arena_alloc(a, (s->n_samples ? s->n_samples : 1) * sizeof(*o->samples));
        if (!o->samples) {
            return NULL;
        }
        for (size_t k = 0; k < s->n_samples; k++) {
            Io__Prometheus__Write__V2__Sample *sm = arena_alloc(a, sizeof(*sm));
            if (!sm) {
                return NULL;
            }
            io__prometheus__write__v2__sample__init(sm);
            sm->value = s->samples[k]->value;
            sm->timestamp = s->samples[k]->timestamp;
            o->samples[k] = sm;
        }
        o->n_histograms = s->n_histograms;
        o->histograms = arena_alloc(a, (s->n_histograms ? s->n_histograms : 1) * sizeof(*o->histograms));
        if (!o->histograms) {
            return NULL;
        }
        for (size_t k = 0; k < s->n_histograms; k++) {
            /* v1 and v2 Histogram share field numbers 1-16: re-read the v1 encoding as v2 */
            size_t hl = protobuf_c_message_get_packed_size(&s->histograms[k]->base);
            uint8_t *hb = arena_alloc(a, hl ? hl : 1);
            if (!hb) {
                return NULL;
            }
            protobuf_c_message_pack(&s->histograms[k]->base, hb);
            o->histograms[k] = io__prometheus__write__v2__histogram__unpack(arena_pb_allocator(a), hl, hb);
            if (!o->histograms[k]) {
                return NULL;
            }
        }
        o->n_exemplars = s->n_exemplars;
        o->exemplars = arena_alloc(a, (s->n_exemplars ? s->n_exemplars : 1) * sizeof(*o->exemplars));
        if (!o->exemplars) {
            return NULL;
        }
        for (size_t k = 0; k < s->n_exemplars; k++) {
            const Prometheus__Exemplar *e = s->exemplars[k];
            Io__Prometheus__Write__V2__Exemplar *oe = arena_alloc(a, sizeof(*oe));
            if (!oe) {
                return NULL;
            }
            io__prometheus__write__v2__exemplar__init(oe);
            oe->value = e->value;
            oe->timestamp = e->timestamp;
            oe->n_labels_refs = e->n_labels * 2;
            oe->labels_refs = arena_alloc(a, (e->n_labels * 2 + 1) * sizeof(uint32_t));
            if (!oe->labels_refs) {
                return NULL;
            }
            for (size_t l = 0; l < e->n_labels; l++) {
                oe->labels_refs[2 * l] = (uint32_t)sym_ref(&t, e->labels[l]->name);
                oe->labels_refs[2 * l + 1] = (uint32_t)sym_ref(&t, e->labels[l]->value);
            }
            o->exemplars[k] = oe;
        }
        /* per-series metadata: find the family (name, or name minus a type suffix) */
        for (size_t m = 0; out && m < out->n_metadata; m++) {
            const Prometheus__MetricMetadata *md = out->metadata[m];
            size_t fl = strlen(md->metric_family_name);
            if (strncmp(name, md->metric_family_name, fl) == 0 &&
                (name[fl] == 0 || !strcmp(name + fl, "_total") || !strcmp(name + fl, "_bucket") ||
                 !strcmp(name + fl, "_sum") || !strcmp(name + fl, "_count"))) {
                Io__Prometheus__Write__V2__Metadata *om = arena_alloc(a, sizeof(*om));
                if (!om) {
                    return NULL;
                }
                io__prometheus__write__v2__metadata__init(om);
                om->type = (Io__Prometheus__Write__V2__Metadata__MetricType)meta_type_v2((int)md->type);
                om->help_ref = (uint32_t)sym_ref(&t, md->help ? md->help : "");
                om->unit_ref = (uint32_t)sym_ref(&t, md->unit ? md->unit : "");
                o->metadata = om;
                break;
            }
        }
        ts[i] = o;
    }
    Io__Prometheus__Write__V2__Request req = IO__PROMETHEUS__WRITE__V2__REQUEST__INIT;
    req.n_symbols = t.n;
    req.symbols = t.syms;
    req.n_timeseries = n;
    req.timeseries = ts;
    size_t pl = io__prometheus__write__v2__request__get_packed_size(&req);
    uint8_t *buf = arena_alloc(a, pl ? pl : 1);
    if (!buf) {
        return NULL;
    }
    *len = io__prometheus__write__v2__request__pack(&req, buf);
    return buf;
}

/* ---- RW 1.0 encoding ------------------------------------------------------------------------
 * The WriteRequest is written by hand: labels and samples are nearly all of it, and
 * protobuf-c's generic packer (a size pass and a pack pass over descriptors) cost more than the
 * translation. Exemplars, native histograms and metadata, rarer and more involved, are packed
 * by protobuf-c one sub-message at a time. Same wire content as protobuf-c: proto3 defaults
 * (0 value, 0 timestamp, empty strings) are left out. */

static size_t str_field(const char *s)
{
    size_t n = strlen(s);
    return n ? wlen_field(n) : 0;
}

static size_t label_size(const Prometheus__Label *l)
{
    return str_field(l->name) + str_field(l->value);
}

/* A value equal to 0 (-0 too) is left out, as protobuf-c does. */
static size_t sample_size(const Prometheus__Sample *sm)
{
    return (sm->value != 0 ? 9 : 0) + (sm->timestamp ? 1 + vsz((uint64_t)sm->timestamp) : 0);
}

static size_t series_size(const Prometheus__TimeSeries *ts)
{
    size_t n = 0;
    for (size_t i = 0; i < ts->n_labels; i++) {
        n += wlen_field(label_size(ts->labels[i]));
    }
    for (size_t i = 0; i < ts->n_samples; i++) {
        n += wlen_field(sample_size(ts->samples[i]));
    }
    for (size_t i = 0; i < ts->n_exemplars; i++) {
        n += wlen_field(protobuf_c_message_get_packed_size(&ts->exemplars[i]->base));
    }
    for (size_t i = 0; i < ts->n_histograms; i++) {
        n += wlen_field(protobuf_c_message_get_packed_size(&ts->histograms[i]->base));
    }
    return n;
}

static uint8_t *put_str(uint8_t *p, uint8_t tag, const char *s)
{
    size_t n = strlen(s);
    if (!n) {
        return p;
    }
    *p++ = tag;
    p = put_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_msg(uint8_t *p, uint8_t tag, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    *p++ = tag;
    p = put_varint(p, n);
    return p + protobuf_c_message_pack(m, p);
}

static uint8_t *put_series(uint8_t *p, const Prometheus__TimeSeries *ts, size_t size)
{
    *p++ = 0x0a;
    p = put_varint(p, size);
    for (size_t i = 0; i < ts->n_labels; i++) {
        *p++ = 0x0a;
        p = put_varint(p, label_size(ts->labels[i]));
        p = put_str(p, 0x0a, ts->labels[i]->name);
        p = put_str(p, 0x12, ts->labels[i]->value);
    }
    for (size_t i = 0; i < ts->n_samples; i++) {
        const Prometheus__Sample *sm = ts->samples[i];
        *p++ = 0x12;
        p = put_varint(p, sample_size(sm));
        if (sm->value != 0) {
            uint64_t bits;
            memcpy(&bits, &sm->value, 8);
            *p++ = 0x09;
            for (int b = 0; b < 8; b++) {
                *p++ = (uint8_t)(bits >> (8 * b));
            }
        }
        if (sm->timestamp) {
            *p++ = 0x10;
            p = put_varint(p, (uint64_t)sm->timestamp);
        }
    }
    for (size_t i = 0; i < ts->n_exemplars; i++) {
        p = put_msg(p, 0x1a, &ts->exemplars[i]->base);
    }
    for (size_t i = 0; i < ts->n_histograms; i++) {
        p = put_msg(p, 0x22, &ts->histograms[i]->base);
    }
    return p;
}

/* A WriteRequest of n series and nmeta metadata entries, in the arena. */
uint8_t *prw_pack_v1(Prometheus__TimeSeries **list, size_t n, Prometheus__MetricMetadata **md,
                     size_t nmd, arena_t *a, size_t *len)
{
    size_t total = 0;
    size_t *sz = arena_alloc(a, (n + 1) * sizeof(size_t));
    if (!sz) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        sz[i] = series_size(list[i]);
        total += wlen_field(sz[i]);
    }
    for (size_t i = 0; i < nmd; i++) {
        total += wlen_field(protobuf_c_message_get_packed_size(&md[i]->base));
    }
    uint8_t *buf = arena_alloc(a, total ? total : 1), *p = buf;
    if (!buf) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        p = put_series(p, list[i], sz[i]);
    }
    for (size_t i = 0; i < nmd; i++) {
        p = put_msg(p, 0x1a, &md[i]->base);
    }
    *len = (size_t)(p - buf);
    return buf;
}

/* Builds the chunks of one shard: consecutive series up to max_samples_per_send each. */
static int build_chunks(prw_cfg_t *cfg, int v2, Prometheus__TimeSeries **list,
                        const uint64_t *ghash, size_t n, const promconv_out_t *out,
                        int with_meta, arena_t *a, chunk_t **chunks, size_t *nchunks,
                        size_t *capchunks)
{
    size_t i = 0;
    while (i < n || with_meta) {
        size_t j = i, w = 0;
        uint64_t samples = 0, hists = 0, exs = 0;
        while (j < n) {
            /* take the whole run of series of one point (histogram / summary) at once */
            size_t g = j + 1, gw = series_weight(list[j]);
            uint64_t gh = ghash[j];
            while (g < n && ghash[g] == gh) {
                gw += series_weight(list[g]);
                g++;
            }
            if (j > i && w + gw > (size_t)cfg->max_samples_per_send) {
                break;
            }
            for (; j < g; j++) {
                samples += list[j]->n_samples;
                hists += list[j]->n_histograms;
                exs += list[j]->n_exemplars;
            }
            w += gw;
        }
        uint8_t *pb;
        size_t pl = 0;
        if (v2) {
            pb = pack_v2(list + i, j - i, cfg->send_metadata ? out : NULL, a, &pl);
        } else {
            pb = prw_pack_v1(list + i, j - i, with_meta ? out->metadata : NULL,
                             with_meta ? out->n_metadata : 0, a, &pl);
        }
        with_meta = 0;
        if (!pb) {
            return MT_ENOMEM;
        }
        if (*nchunks == *capchunks) {
            size_t nc = *capchunks ? *capchunks * 2 : 8;
            chunk_t *np = realloc(*chunks, nc * sizeof(*np));
            if (!np) {
                return MT_ENOMEM;
            }
            *chunks = np;
            *capchunks = nc;
        }
        chunk_t *ch = &(*chunks)[(*nchunks)++];
        memset(ch, 0, sizeof(*ch));
        if (codec_compress(CODEC_SNAPPY, pb, pl, 0, &ch->body, &ch->len) != MT_OK) {
            (*nchunks)--;
            return MT_ENOMEM;
        }
        ch->samples = samples;
        ch->histograms = hists;
        ch->exemplars = exs;
        ch->v2 = v2;
        i = j;
    }
    return MT_OK;
}

/* ---- sending: one in-flight request per shard on a curl multi handle ----------------------- */

typedef struct shard {
    CURL *easy;
    chunk_t *chunks;
    size_t n, cap, next;     /* next chunk to send */
    int busy;
    uint64_t retry_at_ns;    /* > 0: waiting to retry chunk `next` */
    uint64_t first_fail_ns;
    double interval_ms;
    httpc_resp_t resp;       /* the head of the response body, Retry-After */
    int written_hdrs;        /* RW2 response carried X-Prometheus-Remote-Write-*-Written */
} shard_t;

typedef struct prw_worker {
    CURLM *multi;
    shard_t shards[64];
} prw_worker_t;

/* httpc header hook: an RW 2.0 receiver says how much it wrote in X-Prometheus-Remote-Write-*. */
static void on_header(httpc_resp_t *r, const char *p, size_t len)
{
    shard_t *sh = r->user;
    if (len > 29 && strncasecmp(p, "X-Prometheus-Remote-Write-", 26) == 0) {
        sh->written_hdrs = 1;
    }
}

static void *prw_worker_init(exporter_t *ex)
{
    (void)ex;
    prw_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->multi = curl_multi_init();
    for (int i = 0; i < 64; i++) {
        w->shards[i].easy = NULL;
    }
    return w;
}

static void prw_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    prw_worker_t *w = ws;
    if (!w) {
        return;
    }
    for (int i = 0; i < 64; i++) {
        if (w->shards[i].easy) {
            curl_easy_cleanup(w->shards[i].easy);
        }
        free(w->shards[i].chunks);
        httpc_resp_free(&w->shards[i].resp);
    }
    curl_multi_cleanup(w->multi);
    free(w);
}

static void start_chunk(exporter_t *ex, prw_worker_t *w, shard_t *sh)
{
    prw_cfg_t *cfg = ex->cfg;
    prw_state_t *st = ex->state;
    chunk_t *ch = &sh->chunks[sh->next];
    if (!sh->easy) {
        sh->easy = curl_easy_init();
    }
    CURL *c = sh->easy;
    sh->resp.max = 511; /* enough for the log line's %.300s */
    sh->resp.on_header = on_header;
    sh->resp.user = sh;
    httpc_resp_reset(&sh->resp);
    sh->written_hdrs = 0;
    curl_easy_setopt(c, CURLOPT_URL, cfg->endpoint);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)ch->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ch->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, st->hdrs[ch->v2]);
    curl_easy_setopt(c, CURLOPT_PRIVATE, sh);
    httpc_setup(c, &sh->resp, &(httpc_opts_t){.timeout_ms = (long)cfg->common.timeout,
                                               .tls_insecure = cfg->tls_insecure_skip_verify,
                                               .tls_ca_file = cfg->tls_ca_file});
    curl_multi_add_handle(w->multi, c);
    sh->busy = 1;
    tm_add(st->c_requests, 1);
}

static void chunk_done(shard_t *sh)
{
    free(sh->chunks[sh->next].body);
    sh->chunks[sh->next].body = NULL;
    sh->next++;
    sh->first_fail_ns = 0;
    sh->retry_at_ns = 0;
}

/* Sends every chunk of every shard; returns the number of samples that were delivered. */
static void send_all(exporter_t *ex, prw_worker_t *w, int nshards, send_result_t *res,
                     uint64_t *ok_samples, uint64_t *failed_samples)
{
    prw_cfg_t *cfg = ex->cfg;
    prw_state_t *st = ex->state;
    exporter_common_t *cc = &cfg->common;
    for (;;) {
        uint64_t now = mt_now_ns();
        int pending = 0;
        uint64_t next_wake = 0;
        for (int i = 0; i < nshards; i++) {
            shard_t *sh = &w->shards[i];
            if (sh->next >= sh->n) {
                continue;
            }
            pending = 1;
            if (sh->busy) {
                continue;
            }
            if (sh->retry_at_ns && sh->retry_at_ns > now) {
                if (!next_wake || sh->retry_at_ns < next_wake) {
                    next_wake = sh->retry_at_ns;
                }
                continue;
            }
            start_chunk(ex, w, sh);
        }
        if (!pending) {
            return;
        }
        int running = 0;
        curl_multi_perform(w->multi, &running);
        int timeout_ms = 100;
        if (next_wake) {
            int64_t d = (int64_t)(next_wake - now) / 1000000;
            timeout_ms = d < 1 ? 1 : d < 100 ? (int)d : 100;
        }
        curl_multi_poll(w->multi, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(w->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(w->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            shard_t *sh = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sh);
            CURLcode cr = msg->data.result;
            curl_multi_remove_handle(w->multi, msg->easy_handle);
            sh->busy = 0;
            chunk_t *ch = &sh->chunks[sh->next];
            long code = 0;
            if (cr == CURLE_OK) {
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            }
            int retry = 0;
            const char *reason = NULL;
            if (cr == CURLE_OK && code >= 200 && code < 300) {
                if (ch->v2 && !sh->written_hdrs) {
                    /* a 1.x receiver decoded our 2.0 message as an empty 1.0 one: treat as 415 */
                    code = 415;
                } else {
                    tm_add(st->c_samples, ch->samples);
                    tm_add(st->c_histograms, ch->histograms);
                    tm_add(st->c_exemplars, ch->exemplars);
                    *ok_samples += ch->samples + ch->histograms;
                    chunk_done(sh);
                    atomic_store(&ex->failing_since_ns, 0);
                    continue;
                }
            }
            if (code == 415 && ch->v2) {
                /* downgrade this exporter to 1.0; the chunk is rebuilt by the caller next time */
                atomic_store(&st->use_v1, 1);
                mt_log(MT_LOG_WARN, "exporter %s: %s does not take remote-write 2.0; using 1.0",
                       ex->id, cfg->endpoint);
                reason = "rw2_unsupported";
            } else if (cr != CURLE_OK) {
                retry = 1;
                reason = "transport_error";
                snprintf(res->msg, sizeof(res->msg), "%s: %s", cfg->endpoint, curl_easy_strerror(cr));
            } else if (code >= 500 || code == 429) {
                retry = 1;
                reason = "http_retryable";
                snprintf(res->msg, sizeof(res->msg), "%s: HTTP %ld: %.300s", cfg->endpoint, code,
                         httpc_resp_text(&sh->resp));
            } else {
                reason = httpc_status_reason(code, "http_4xx");
                mt_log(MT_LOG_ERROR, "exporter %s: %s answered HTTP %ld, dropping %llu samples: %.300s",
                       ex->id, cfg->endpoint, code, (unsigned long long)(ch->samples + ch->histograms),
                       httpc_resp_text(&sh->resp));
            }
            uint64_t t = mt_now_ns();
            uint64_t zero = 0;
            atomic_compare_exchange_strong(&ex->failing_since_ns, &zero, t);
            if (retry && cc->retry_enabled) {
                if (!sh->first_fail_ns) {
                    sh->first_fail_ns = t;
                    sh->interval_ms = (double)cc->initial_interval;
                }
                uint64_t stop_at = atomic_load(&ex->stop_deadline_ns);
                if (stop_at && t >= stop_at) {
                    reason = "shutdown";
                } else if (cc->max_elapsed_time <= 0 ||
                           t - sh->first_fail_ns <= (uint64_t)cc->max_elapsed_time * 1000000ull) {
                    double jitter = 1.0 + cc->randomization_factor * (2.0 * ((double)rand() / RAND_MAX) - 1.0);
                    int64_t wait = (int64_t)(sh->interval_ms * jitter);
                    if (sh->resp.retry_after_s * 1000 > wait) {
                        wait = sh->resp.retry_after_s * 1000;
                    }
                    sh->interval_ms *= cc->multiplier;
                    if (sh->interval_ms > (double)cc->max_interval) {
                        sh->interval_ms = (double)cc->max_interval;
                    }
                    sh->retry_at_ns = t + (uint64_t)wait * 1000000ull;
                    mt_log(MT_LOG_WARN, "exporter %s: %s; retrying in %lld ms", ex->id, res->msg,
                           (long long)wait);
                    continue;
                } else {
                    reason = "retries_exhausted";
                }
            }
            count_drop(st, reason, ch->samples + ch->histograms);
            *failed_samples += ch->samples + ch->histograms;
            chunk_done(sh);
        }
    }
}

/* Frees the chunks a send left unsent (on error) and empties every shard. */
static void drop_chunks(prw_worker_t *w, int nshards)
{
    for (int k = 0; k < nshards; k++) {
        shard_t *sh = &w->shards[k];
        for (size_t i = sh->next; i < sh->n; i++) {
            free(sh->chunks[i].body);
        }
        sh->n = sh->next = 0;
    }
}

/* ---- pass-through: remote-write 1.0 batches forwarded as they came ------------------------
 * A prometheusremotewrite receiver whose pipelines end only in exporters like this one hands
 * over the validated WriteRequest bytes (MT_FMT_PRW1; coalesced batches are concatenated
 * requests, which protobuf reads as one). They are sent on without translation: the series
 * are walked on the wire, hashed exactly as the OTLP path hashes its output (so a series keeps
 * its shard whichever path its samples took), given the external labels they lack, and each
 * shard's request is the series' own bytes behind their tags. Metadata goes once, deduplicated.
 * The OTLP-path options that would change series (namespace, resource attribute promotion,
 * no suffixes, RW 2.0) make accepts_format say no, so the receiver converts instead. */

typedef struct nser {
    const uint8_t *p;    /* TimeSeries payload */
    size_t n;
    uint64_t gh, th, sh; /* group hash, (job, instance) hash, label-set hash */
    uint32_t samples, hists, exs;
    int is_ti;
    int64_t ts0;         /* target_info: timestamp of its only sample */
} nser_t;

static int prw_accepts_format(exporter_t *ex, int format)
{
    const prw_cfg_t *cfg = ex->cfg;
    return format == MT_FMT_PRW1 && cfg->message == 0 &&
           (!cfg->namespace_ || !cfg->namespace_[0]) && !cfg->resource_to_telemetry &&
           cfg->promote.n == 0 && cfg->add_metric_suffixes;
}

static int sl_is(const uint8_t *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static int wl_cmp(const void *a, const void *b)
{
    const prw_wlabel_t *x = a, *y = b;
    int c = memcmp(x->name, y->name, x->name_len < y->name_len ? x->name_len : y->name_len);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Hashes of one final label set, computed as series_hash / group_hash / the (job, instance)
 * hash do on the OTLP path. */
static void nser_hashes(nser_t *ns, const prw_wlabel_t *l, size_t nl)
{
    static const char *sfx[] = {"_bucket", "_sum", "_count"};
    uint64_t h = MT_FNV_BASIS, g = h;
    const uint8_t *job = (const uint8_t *)"", *inst = (const uint8_t *)"";
    size_t jl = 0, il = 0;
    ns->is_ti = 0;
    for (size_t i = 0; i < nl; i++) {
        const char *n = (const char *)l[i].name, *v = (const char *)l[i].value;
        size_t nlen = l[i].name_len, vl = l[i].value_len;
        h = mt_hash_bytes(h, n, nlen);
        h = (h ^ 0xff) * MT_FNV_PRIME;
        h = mt_hash_bytes(h, v, vl);
        h = (h ^ 0xfe) * MT_FNV_PRIME;
        if (sl_is(l[i].name, nlen, "le") || sl_is(l[i].name, nlen, "quantile")) {
            continue;
        }
        if (sl_is(l[i].name, nlen, "__name__")) {
            ns->is_ti = sl_is(l[i].value, vl, "target_info");
            for (size_t k = 0; k < 3; k++) {
                size_t sfl = strlen(sfx[k]);
                if (vl > sfl && !memcmp(v + vl - sfl, sfx[k], sfl)) {
                    vl -= sfl;
                    break;
                }
            }
        } else if (sl_is(l[i].name, nlen, "job")) {
            job = l[i].value, jl = l[i].value_len;
        } else if (sl_is(l[i].name, nlen, "instance")) {
            inst = l[i].value, il = l[i].value_len;
        }
        g = mt_hash_bytes(g, n, nlen);
        g = (g ^ 0xff) * MT_FNV_PRIME;
        g = mt_hash_bytes(g, v, vl);
        g = (g ^ 0xfe) * MT_FNV_PRIME;
    }
    ns->sh = h;
    ns->gh = g;
    ns->th = mt_hash_bytes(mt_hash_bytes(MT_FNV_BASIS, (const char *)job, jl) ^ 0xff, (const char *)inst,
                 il);
}

static uint8_t *put_lfield(uint8_t *p, uint8_t tag, const uint8_t *src, size_t n)
{
    *p++ = tag;
    p = put_varint(p, n);
    memcpy(p, src, n);
    return p + n;
}

/* One series of the batch: walks it, adds the external labels it lacks (re-encoding its
 * labels then), fills ns. MT_OK, MT_EINVAL (malformed: the receiver validated it, so this is
 * a bug), MT_ENOMEM. */
static int native_series(const prw_cfg_t *cfg, const uint8_t *p, size_t n, arena_t *a,
                         prw_wlabel_t **lab, size_t *cap, nser_t *ns)
{
    const uint8_t *q = p, *end = p + n;
    wf_t f;
    int r;
    size_t nl = 0;
    memset(ns, 0, sizeof(*ns));
    ns->p = p;
    ns->n = n;
    while ((r = wnext(&q, end, &f)) > 0) {
        if (f.num == 1 && f.wt == 2) {
            if (nl + cfg->external_labels.n >= *cap) {
                size_t nc = (*cap + cfg->external_labels.n) * 2 + 16;
                prw_wlabel_t *nlab = realloc(*lab, nc * sizeof(*nlab));
                if (!nlab) {
                    return MT_ENOMEM;
                }
                *lab = nlab;
                *cap = nc;
            }
            if (prw_wire_label(f.p, f.n, &(*lab)[nl++]) < 0) {
                return MT_EINVAL;
            }
        } else if (f.num == 2) {
            ns->samples++;
            if (ns->samples == 1) {
                const uint8_t *sq = f.p, *se = f.p + f.n;
                wf_t g;
                while (wnext(&sq, se, &g) > 0) {
                    if (g.num == 2 && g.wt == 0) {
                        ns->ts0 = (int64_t)g.v;
                    }
                }
            }
        } else if (f.num == 3) {
            ns->exs++;
        } else if (f.num == 4) {
            ns->hists++;
        }
    }
    if (r < 0) {
        return MT_EINVAL;
    }
    size_t added = 0;
    const cfg_strmap_t *ext = &cfg->external_labels;
    for (size_t e = 0; e < ext->n; e++) {
        const char *k = ext->keys[e], *v = ext->vals[e];
        if (!k || !*k || !v || !*v) {
            continue;
        }
        int have = 0;
        for (size_t i = 0; i < nl && !have; i++) {
            have = sl_is((*lab)[i].name, (*lab)[i].name_len, k);
        }
        if (!have) {
            prw_wlabel_t *x = &(*lab)[nl + added++];
            x->name = (const uint8_t *)k;
            x->name_len = strlen(k);
            x->value = (const uint8_t *)v;
            x->value_len = strlen(v);
        }
    }
    if (added) {
        nl += added;
        qsort(*lab, nl, sizeof(**lab), wl_cmp);
        /* re-encode: the labels, then every other field as it was */
        size_t need = n;
        for (size_t i = 0; i < nl; i++) {
            size_t ll = wlen_field((*lab)[i].name_len) + wlen_field((*lab)[i].value_len);
            need += wlen_field(ll);
        }
        uint8_t *out = arena_alloc(a, need), *o = out;
        if (!out) {
            return MT_ENOMEM;
        }
        for (size_t i = 0; i < nl; i++) {
            const prw_wlabel_t *l = &(*lab)[i];
            size_t ll = wlen_field(l->name_len) + wlen_field(l->value_len);
            *o++ = 0x0a;
            o = put_varint(o, ll);
            o = put_lfield(o, 0x0a, l->name, l->name_len);
            o = put_lfield(o, 0x12, l->value, l->value_len);
        }
        q = p;
        const uint8_t *fs = q;
        while (wnext(&q, end, &f) > 0) {
            if (f.num != 1) {
                memcpy(o, fs, (size_t)(q - fs));
                o += q - fs;
            }
            fs = q;
        }
        ns->p = out;
        ns->n = (size_t)(o - out);
    }
    nser_hashes(ns, *lab, nl);
    return MT_OK;
}

static int chunk_add(chunk_t **chunks, size_t *nchunks, size_t *capchunks, const uint8_t *pb,
                     size_t pl, uint64_t samples, uint64_t hists, uint64_t exs, int v2)
{
    if (*nchunks == *capchunks) {
        size_t nc = *capchunks ? *capchunks * 2 : 8;
        chunk_t *np = realloc(*chunks, nc * sizeof(*np));
        if (!np) {
            return MT_ENOMEM;
        }
        *chunks = np;
        *capchunks = nc;
    }
    chunk_t *ch = &(*chunks)[*nchunks];
    memset(ch, 0, sizeof(*ch));
    if (codec_compress(CODEC_SNAPPY, pb, pl, 0, &ch->body, &ch->len) != MT_OK) {
        return MT_ENOMEM;
    }
    (*nchunks)++;
    ch->samples = samples;
    ch->histograms = hists;
    ch->exemplars = exs;
    ch->v2 = v2;
    return MT_OK;
}

static int in_run(nser_t *const *list, size_t from, size_t to, uint64_t sh)
{
    for (size_t i = from; i < to; i++) {
        if (list[i]->sh == sh) {
            return 1;
        }
    }
    return 0;
}

/* The chunks of one shard: runs of series up to max_samples_per_send (a point's series
 * together), metadata ahead of the first one when `meta` is given. */
static int native_chunks(const prw_cfg_t *cfg, nser_t *const *list, size_t n,
                         const uint8_t *const *meta, const size_t *meta_len, size_t nmeta,
                         arena_t *a, shard_t *sh)
{
    size_t i = 0;
    int with_meta = nmeta > 0;
    while (i < n || with_meta) {
        size_t j = i, w = 0, bytes = 0;
        uint64_t samples = 0, hists = 0, exs = 0;
        while (j < n) {
            /* a run of one point's series (same group hash); the same series again (the
             * next request's sample of it, after coalescing) starts a new run */
            size_t g = j, gw = 0;
            do {
                size_t sw = list[g]->samples + list[g]->hists;
                gw += sw ? sw : 1;
                g++;
            } while (g < n && list[g]->gh == list[j]->gh && !in_run(list, j, g, list[g]->sh));
            if (j > i && w + gw > (size_t)cfg->max_samples_per_send) {
                break;
            }
            for (; j < g; j++) {
                samples += list[j]->samples;
                hists += list[j]->hists;
                exs += list[j]->exs;
                bytes += wlen_field(list[j]->n);
            }
            w += gw;
        }
        for (size_t m = 0; with_meta && m < nmeta; m++) {
            bytes += wlen_field(meta_len[m]);
        }
        uint8_t *pb = arena_alloc(a, bytes ? bytes : 1), *o = pb;
        if (!pb) {
            return MT_ENOMEM;
        }
        for (size_t k = i; k < j; k++) {
            o = put_lfield(o, 0x0a, list[k]->p, list[k]->n);
        }
        for (size_t m = 0; with_meta && m < nmeta; m++) {
            o = put_lfield(o, 0x1a, meta[m], meta_len[m]);
        }
        with_meta = 0;
        if (chunk_add(&sh->chunks, &sh->n, &sh->cap, pb, (size_t)(o - pb), samples, hists, exs,
                      0) != MT_OK) {
            return MT_ENOMEM;
        }
        i = j;
    }
    return MT_OK;
}

static int prw_send_native(exporter_t *ex, prw_worker_t *w, const uint8_t *data, size_t len,
                           send_result_t *res)
{
    prw_cfg_t *cfg = ex->cfg;
    prw_state_t *st = ex->state;
    int nshards = (int)cfg->shards;
    arena_t *a = arena_create(len + len / 2 + 65536, 0);
    prw_wlabel_t *lab = NULL;
    size_t labcap = 0;
    if (!a) {
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    int rc = MT_OK;
    /* count first, so every array is allocated once */
    size_t nts = 0, nmd = 0;
    const uint8_t *p = data, *end = data + len;
    wf_t f;
    int r;
    while ((r = wnext(&p, end, &f)) > 0) {
        nts += f.num == 1 && f.wt == 2;
        nmd += f.num == 3 && f.wt == 2;
    }
    nser_t *ser = arena_alloc(a, (nts + 1) * sizeof(*ser));
    nser_t **lists = arena_alloc(a, (nts + 1) * sizeof(*lists));
    size_t counts[64] = {0};
    const uint8_t **meta = arena_alloc(a, (nmd + 1) * sizeof(*meta));
    size_t *meta_len = arena_alloc(a, (nmd + 1) * sizeof(*meta_len));
    uint64_t *meta_h = arena_calloc(a, (2 * nmd + 2) * sizeof(*meta_h));
    size_t *head = arena_alloc(a, (nts + 1) * sizeof(size_t)); /* first target_info after i */
    size_t *next = arena_alloc(a, (nts + 1) * sizeof(size_t));
    if (r < 0 || !ser || !lists || !meta || !meta_len || !meta_h || !head || !next) {
        rc = r < 0 ? MT_EINVAL : MT_ENOMEM;
        goto out;
    }
    size_t n = 0, nmeta = 0, hcap = 2 * nmd + 2;
    p = data;
    while (wnext(&p, end, &f) > 0) {
        if (f.num == 1 && f.wt == 2) {
            nser_t *ns = &ser[n];
            if ((rc = native_series(cfg, f.p, f.n, a, &lab, &labcap, ns)) != MT_OK) {
                goto out;
            }
            if (ns->is_ti && !cfg->target_info) {
                count_drop(st, "target_info_disabled", ns->samples);
                continue;
            }
            if (ns->is_ti && ns->samples == 1) {
                /* target_info must not go back in time for its (job, instance) */
                ti_slot_t *slot = &st->ti[ns->sh % TI_SLOTS];
                if (slot->key == ns->sh && ns->ts0 <= slot->ts) {
                    count_drop(st, "target_info_not_newer", 1);
                    continue;
                }
                slot->key = ns->sh;
                slot->ts = ns->ts0;
            }
            n++;
        } else if (f.num == 3 && f.wt == 2 && cfg->send_metadata) {
            /* coalesced requests repeat their metadata: send each entry once */
            uint64_t h = mt_hash_bytes(MT_FNV_BASIS, (const char *)f.p, f.n) | 1;
            size_t j = h % hcap;
            int dup = 0;
            while (meta_h[j] && !dup) {
                dup = meta_h[j] == h;
                j = (j + 1) % hcap;
            }
            if (!dup) {
                meta_h[j] = h;
                meta[nmeta] = f.p;
                meta_len[nmeta++] = f.n;
            }
        }
    }
    /* shards by group hash; a target_info right after the first series of its target */
    const size_t NONE = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        head[i] = NONE;
    }
    for (size_t j = 0; j < n; j++) {
        if (!ser[j].is_ti) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (!ser[i].is_ti && ser[i].th == ser[j].th) {
                next[j] = head[i];
                head[i] = j;
                ser[j].is_ti = 2; /* placed */
                break;
            }
        }
    }
    /* two passes over the series: shard sizes, then one array cut into the shards */
    size_t off[65] = {0};
    for (size_t i = 0; i < n; i++) {
        if (ser[i].is_ti != 2) {
            counts[ser[i].gh % (uint64_t)nshards]++;
            for (size_t j = head[i]; j != NONE; j = next[j]) {
                counts[ser[i].gh % (uint64_t)nshards]++;
            }
        }
    }
    for (int k = 0; k < nshards; k++) {
        off[k + 1] = off[k] + counts[k];
        counts[k] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (ser[i].is_ti == 2) {
            continue;
        }
        int k = (int)(ser[i].gh % (uint64_t)nshards);
        lists[off[k] + counts[k]++] = &ser[i];
        for (size_t j = head[i]; j != NONE; j = next[j]) {
            lists[off[k] + counts[k]++] = &ser[j];
        }
    }
    for (int k = 0; k < nshards; k++) {
        shard_t *sh = &w->shards[k];
        sh->n = sh->next = 0;
        sh->retry_at_ns = sh->first_fail_ns = 0;
        size_t km = k == 0 ? nmeta : 0;
        if (counts[k] || km) {
            rc = native_chunks(cfg, lists + off[k], counts[k], meta, meta_len, km, a, sh);
            if (rc != MT_OK) {
                goto out;
            }
        }
    }
    uint64_t ok = 0, failed = 0;
    send_all(ex, w, nshards, res, &ok, &failed);
    if (failed && !ok) {
        rc = MT_EPERM;
        res->reason = "all_samples_failed";
    }
out:
    drop_chunks(w, nshards);
    free(lab);
    arena_destroy(a);
    if (rc == MT_EINVAL) {
        snprintf(res->msg, sizeof(res->msg), "undecodable remote-write batch");
        res->reason = "decode_error";
        return MT_EINVAL;
    }
    if (rc == MT_ENOMEM) {
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    return rc;
}

static int prw_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                    uint32_t items, send_result_t *res)
{
    (void)items;
    prw_cfg_t *cfg = ex->cfg;
    prw_state_t *st = ex->state;
    prw_worker_t *w = ws;
    if (s != MT_SIG_METRICS || !w || !w->multi) {
        snprintf(res->msg, sizeof(res->msg), "cannot send");
        res->reason = "internal";
        return MT_EPERM;
    }
    if (res->format == MT_FMT_PRW1) {
        return prw_send_native(ex, w, data, len, res);
    }
    arena_t *a = arena_create(len * 8 + 65536, 0);
    if (!a) {
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req =
        (void *)protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, data);
    if (!req) {
        arena_destroy(a);
        snprintf(res->msg, sizeof(res->msg), "undecodable batch");
        res->reason = "decode_error";
        return MT_EINVAL;
    }
    promconv_opts_t o;
    memset(&o, 0, sizeof(o));
    o.add_metric_suffixes = cfg->add_metric_suffixes;
    o.namespace_ = cfg->namespace_;
    o.resource_to_telemetry = cfg->resource_to_telemetry;
    o.promote = &cfg->promote;
    o.scope_labels = cfg->scope_labels;
    o.target_info = cfg->target_info;
    o.external_labels = &cfg->external_labels;
    o.now_ms = (int64_t)(mt_wall_ns() / 1000000ull);
    promconv_out_t out;
    memset(&out, 0, sizeof(out));
    if (promconv_convert(&o, st->dc, req, a, &out) != MT_OK) {
        arena_destroy(a);
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    if (out.dropped_points) {
        tm_count_reason("meltp_prw_points_dropped_total",
                        "OTLP data points that have no Prometheus form, by reason.", st->labels,
                        out.last_drop_reason ? out.last_drop_reason : "unconvertible",
                        out.dropped_points);
    }
    /* drop target_info samples that would go back in time for their (job, instance) */
    size_t keep = 0;
    for (size_t i = 0; i < out.n_series; i++) {
        Prometheus__TimeSeries *ts = out.series[i];
        int is_ti = 0;
        for (size_t l = 0; l < ts->n_labels; l++) {
            if (!strcmp(ts->labels[l]->name, "__name__")) {
                is_ti = !strcmp(ts->labels[l]->value, "target_info");
            }
        }
        if (is_ti && ts->n_samples == 1) {
            uint64_t h = series_hash(ts);
            ti_slot_t *slot = &st->ti[h % TI_SLOTS];
            int64_t t = ts->samples[0]->timestamp;
            if (slot->key == h && t <= slot->ts) {
                continue;
            }
            slot->key = h;
            slot->ts = t;
        }
        out.series[keep++] = ts;
    }
    out.n_series = keep;
    int nshards = (int)cfg->shards;
    /* Distribute series to shards by label hash. A target_info series goes into the same
     * shard and request as the first series of its (job, instance), right after it: a
     * receiver (meltp, or anything that maps target_info to resource attributes) then sees
     * the resource attributes together with data of that resource. */
    size_t *counts = calloc((size_t)nshards, sizeof(size_t));
    Prometheus__TimeSeries ***lists = calloc((size_t)nshards, sizeof(*lists));
    int rc = MT_OK;
    if (!counts || !lists) {
        rc = MT_ENOMEM;
        goto out;
    }
    for (int k = 0; k < nshards; k++) {
        lists[k] = arena_alloc(a, (out.n_series + 1) * sizeof(Prometheus__TimeSeries *));
        if (!lists[k]) {
            rc = MT_ENOMEM;
            goto out;
        }
    }
    uint8_t *is_ti = arena_calloc(a, out.n_series + 1);
    if (!is_ti) {
        rc = MT_ENOMEM;
        goto out;
    }
    /* one group hash per series (shard, and chunk boundaries: a point's series stay together) */
    uint64_t *gh = arena_alloc(a, (out.n_series + 1) * sizeof(uint64_t));
    uint64_t **hl = arena_alloc(a, (size_t)nshards * sizeof(uint64_t *));
    size_t *follow = arena_alloc(a, (out.n_series + 1) * sizeof(size_t)); /* ti -> series */
    size_t *ti_next = arena_alloc(a, (out.n_series + 1) * sizeof(size_t));
    size_t *ti_head = arena_alloc(a, (out.n_series + 1) * sizeof(size_t));
    if (!gh || !hl || !follow || !ti_next || !ti_head) {
        rc = MT_ENOMEM;
        goto out;
    }
    for (int k = 0; k < nshards; k++) {
        hl[k] = arena_alloc(a, (out.n_series + 1) * sizeof(uint64_t));
        if (!hl[k]) {
            rc = MT_ENOMEM;
            goto out;
        }
    }
    const size_t NONE = (size_t)-1;
    size_t nti = 0;
    uint64_t *th = arena_alloc(a, (out.n_series + 1) * sizeof(uint64_t)); /* (job, instance) */
    if (!th) {
        rc = MT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < out.n_series; i++) {
        gh[i] = group_hash(out.series[i]);
        const char *n = NULL, *job = "", *inst = "";
        const Prometheus__TimeSeries *ts = out.series[i];
        for (size_t l = 0; l < ts->n_labels; l++) {
            const char *ln = ts->labels[l]->name;
            if (!strcmp(ln, "__name__")) {
                n = ts->labels[l]->value;
            } else if (!strcmp(ln, "job")) {
                job = ts->labels[l]->value;
            } else if (!strcmp(ln, "instance")) {
                inst = ts->labels[l]->value;
            }
        }
        is_ti[i] = n && !strcmp(n, "target_info");
        nti += is_ti[i];
        th[i] = mt_hash_bytes(mt_hash_bytes(MT_FNV_BASIS, job, strlen(job)) ^ 0xff, inst, strlen(inst));
        ti_head[i] = NONE;
    }
    /* each target_info follows the first series of its (job, instance); O(targets x series) */
    for (size_t j = 0; j < out.n_series; j++) {
        follow[j] = NONE;
        if (!nti || !is_ti[j]) {
            continue;
        }
        for (size_t i = 0; i < out.n_series; i++) {
            if (!is_ti[i] && th[i] == th[j] && same_target(out.series[i], out.series[j])) {
                follow[j] = i;
                ti_next[j] = ti_head[i];
                ti_head[i] = j;
                break;
            }
        }
    }
    for (size_t i = 0; i < out.n_series; i++) {
        if (is_ti[i] && follow[i] != NONE) {
            continue; /* placed right after its series below */
        }
        int k = (int)(gh[i] % (uint64_t)nshards);
        hl[k][counts[k]] = gh[i];
        lists[k][counts[k]++] = out.series[i];
        for (size_t j = ti_head[i]; j != NONE; j = ti_next[j]) {
            hl[k][counts[k]] = gh[j];
            lists[k][counts[k]++] = out.series[j];
        }
    }
    int v2 = !atomic_load(&st->use_v1);
    for (int k = 0; k < nshards; k++) {
        shard_t *sh = &w->shards[k];
        sh->n = sh->next = 0;
        sh->retry_at_ns = sh->first_fail_ns = 0;
        int meta = !v2 && k == 0 && cfg->send_metadata && out.n_metadata > 0;
        if (counts[k] || meta) {
            rc = build_chunks(cfg, v2, lists[k], hl[k], counts[k], &out, meta, a, &sh->chunks,
                              &sh->n, &sh->cap);
            if (rc != MT_OK) {
                goto out;
            }
        }
    }
    uint64_t ok = 0, failed = 0;
    send_all(ex, w, nshards, res, &ok, &failed);
    if (v2 && atomic_load(&st->use_v1)) {
        /* the server refused 2.0: send the same batch again as 1.0 (nothing was written) */
        for (int k = 0; k < nshards; k++) {
            shard_t *sh = &w->shards[k];
            sh->n = sh->next = 0;
            int meta = k == 0 && cfg->send_metadata && out.n_metadata > 0;
            if (counts[k] || meta) {
                rc = build_chunks(cfg, 0, lists[k], hl[k], counts[k], &out, meta, a, &sh->chunks,
                                  &sh->n, &sh->cap);
                if (rc != MT_OK) {
                    goto out;
                }
            }
        }
        ok = failed = 0;
        send_all(ex, w, nshards, res, &ok, &failed);
    }
    if (failed && !ok) {
        rc = MT_EPERM;
        res->reason = "all_samples_failed";
    }
out:
    drop_chunks(w, nshards);
    free(counts);
    free(lists);
    arena_destroy(a);
    if (rc == MT_ENOMEM) {
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    return rc;
}

const exporter_ops_t exporter_prw_ops = {
    .type = "prometheusremotewrite",
    .fields = prw_fields,
    .nfields = MT_ARRAY_LEN(prw_fields),
    .cfg_size = sizeof(prw_cfg_t),
    .signals = SIG_BIT(MT_SIG_METRICS),
    .help = "Prometheus remote-write 1.0 / 2.0 with exact OTLP -> Prometheus translation",
    .validate = prw_validate,
    .create = prw_create,
    .worker_init = prw_worker_init,
    .worker_fini = prw_worker_fini,
    .send = prw_send,
    .destroy = prw_destroy,
    .default_consumers = 1,
    .accepts_format = prw_accepts_format,
};
