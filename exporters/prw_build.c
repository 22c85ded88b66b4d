/*
 * prw_build.c - building requests: the RW 2.0 symbols table and re-shaping, the RW 1.0
 * encoding, and the split of a converted batch into per-shard chunks of at most
 * max_samples_per_send. Part of the exporters/prw module (prw.c).
 */
#include "component.h"
#include "otlp.h"
#include "promconv.h"
#include "codec.h"
#include "httpc.h"
#include "prom_rw2.pb-c.h"
#include "prw_decode.h"
#include "pbwire.h"
#include "prw_int.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

/* ---- RW 2.0 re-shaping: symbols table ------------------------------------------------------ */

typedef struct symtab {
    char **syms;
    size_t n, cap;
    uint32_t *slots; /* open addressing: index+1, 0 = empty */
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
        o->labels_refs =
            arena_alloc(a, (o->n_labels_refs ? o->n_labels_refs : 1) * sizeof(uint32_t));
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
        o->histograms =
            arena_alloc(a, (s->n_histograms ? s->n_histograms : 1) * sizeof(*o->histograms));
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
            o->histograms[k] =
                io__prometheus__write__v2__histogram__unpack(arena_pb_allocator(a), hl, hb);
            if (!o->histograms[k]) {
                return NULL;
            }
        }
        o->n_exemplars = s->n_exemplars;
        o->exemplars =
            arena_alloc(a, (s->n_exemplars ? s->n_exemplars : 1) * sizeof(*o->exemplars));
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
                om->type =
                    (Io__Prometheus__Write__V2__Metadata__MetricType)meta_type_v2((int)md->type);
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
int prw_build_chunks(prw_cfg_t *cfg, int v2, Prometheus__TimeSeries **list, const uint64_t *ghash,
                     size_t n, const promconv_out_t *out, int with_meta, arena_t *a,
                     chunk_t **chunks, size_t *nchunks, size_t *capchunks)
{
    size_t i = 0;
    while (i < n || with_meta) {
        size_t j = i, w = 0;
        uint64_t samples = 0, hists = 0, exs = 0;
        while (j < n) {
            /* take the whole run of series of one point (histogram / summary) at once */
            size_t g = j + 1, gw = prw_series_weight(list[j]);
            uint64_t gh = ghash[j];
            while (g < n && ghash[g] == gh) {
                gw += prw_series_weight(list[g]);
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
