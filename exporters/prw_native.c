/*
 * prw_native.c - pass-through: remote-write 1.0 batches forwarded as they came, re-sharded by
 * series without a round trip through OTLP. Part of the exporters/prw module (prw.c).
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
    const uint8_t *p; /* TimeSeries payload */
    size_t n;
    uint64_t gh, th, sh; /* group hash, (job, instance) hash, label-set hash */
    uint32_t samples, hists, exs;
    int is_ti;
    int64_t ts0; /* target_info: timestamp of its only sample */
} nser_t;

int prw_accepts_format(exporter_t *ex, int format)
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

/* Hashes of one final label set, computed as prw_series_hash / prw_group_hash / the (job, instance)
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
    ns->th = mt_hash_bytes(mt_hash_bytes(MT_FNV_BASIS, (const char *)job, jl) ^ 0xff,
                           (const char *)inst, il);
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

int prw_send_native(exporter_t *ex, prw_worker_t *w, const uint8_t *data, size_t len,
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
                prw_count_drop(st, "target_info_disabled", ns->samples);
                continue;
            }
            if (ns->is_ti && ns->samples == 1) {
                /* target_info must not go back in time for its (job, instance) */
                ti_slot_t *slot = &st->ti[ns->sh % TI_SLOTS];
                if (slot->key == ns->sh && ns->ts0 <= slot->ts) {
                    prw_count_drop(st, "target_info_not_newer", 1);
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
    if (prw_send_all(ex, w, nshards, res, &ok, &failed)) {
        rc = MT_ERETRY;
        goto out;
    }
    if (failed && !ok) {
        rc = MT_EPERM;
        res->reason = "all_samples_failed";
    }
out:
    prw_drop_chunks(w, nshards);
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
