/*
 * promconv_delta.c - the delta -> cumulative state (deltacum_t) of the OTLP -> Prometheus
 * conversion: a hash table of running totals per delta series, with expiry and a series cap,
 * and the exponential-bucket arithmetic that merges delta points across scales. It is the one
 * piece that outlives a request, so it uses malloc and a mutex, never the arena. Part of the
 * formats/promconv module (promconv_int.h).
 */
#include "promconv.h"
#include "promconv_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Delta -> cumulative state                                                                  */

deltacum_t *deltacum_create(size_t max_series, int64_t expiry_ms)
{
    deltacum_t *dc = calloc(1, sizeof(*dc));
    if (!dc) {
        return NULL;
    }
    dc->nbuckets = 64;
    dc->tab = calloc(dc->nbuckets, sizeof(*dc->tab));
    if (!dc->tab) {
        free(dc);
        return NULL;
    }
    pthread_mutex_init(&dc->mu, NULL);
    dc->max_series = max_series ? max_series : 100000;
    dc->expiry_ms = expiry_ms;
    dc->last_sweep_ms = INT64_MIN;
    return dc;
}

void pc_dc_entry_clear_state(dc_entry_t *e)
{
    free(e->bounds);
    free(e->counts);
    free(e->pos.counts);
    free(e->neg.counts);
    char *key = e->key;
    size_t key_len = e->key_len;
    uint64_t hash = e->hash;
    dc_entry_t *next = e->next;
    memset(e, 0, sizeof(*e));
    e->key = key;
    e->key_len = key_len;
    e->hash = hash;
    e->next = next;
}

static void dc_entry_free(dc_entry_t *e)
{
    pc_dc_entry_clear_state(e);
    free(e->key);
    free(e);
}

void deltacum_destroy(deltacum_t *dc)
{
    if (!dc) {
        return;
    }
    for (size_t i = 0; i < dc->nbuckets; i++) {
        dc_entry_t *e = dc->tab[i];
        while (e) {
            dc_entry_t *next = e->next;
            dc_entry_free(e);
            e = next;
        }
    }
    free(dc->tab);
    pthread_mutex_destroy(&dc->mu);
    free(dc);
}

size_t deltacum_size(deltacum_t *dc)
{
    if (!dc) {
        return 0;
    }
    pthread_mutex_lock(&dc->mu);
    size_t n = dc->n;
    pthread_mutex_unlock(&dc->mu);
    return n;
}

static int dc_expired(const deltacum_t *dc, const dc_entry_t *e, int64_t now_ms)
{
    return dc->expiry_ms > 0 && now_ms - e->last_ms > dc->expiry_ms;
}

/* Forgets idle entries; caller holds the lock. O(table), so run at most every expiry/2. */
static void dc_sweep_locked(deltacum_t *dc, int64_t now_ms)
{
    dc->last_sweep_ms = now_ms;
    for (size_t i = 0; i < dc->nbuckets; i++) {
        dc_entry_t **pp = &dc->tab[i];
        while (*pp) {
            dc_entry_t *e = *pp;
            if (dc_expired(dc, e, now_ms)) {
                *pp = e->next;
                dc_entry_free(e);
                dc->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

void pc_dc_maybe_sweep_locked(deltacum_t *dc, int64_t now_ms)
{
    if (dc->expiry_ms > 0 &&
        (dc->last_sweep_ms == INT64_MIN || now_ms - dc->last_sweep_ms >= dc->expiry_ms / 2)) {
        dc_sweep_locked(dc, now_ms);
    }
}

static void dc_grow_locked(deltacum_t *dc)
{
    size_t nb = dc->nbuckets * 2;
    dc_entry_t **tab = calloc(nb, sizeof(*tab));
    if (!tab) {
        return; /* longer chains, still correct */
    }
    for (size_t i = 0; i < dc->nbuckets; i++) {
        dc_entry_t *e = dc->tab[i];
        while (e) {
            dc_entry_t *next = e->next;
            size_t h = (size_t)(e->hash & (nb - 1));
            e->next = tab[h];
            tab[h] = e;
            e = next;
        }
    }
    free(dc->tab);
    dc->tab = tab;
    dc->nbuckets = nb;
}

/* Finds or creates the entry for key; caller holds the lock. *fresh is set when the state is
 * new (or was reset because it expired or changed kind). NULL with *why set when full or out
 * of memory. */
dc_entry_t *pc_dc_get_locked(deltacum_t *dc, const char *key, size_t len, uint64_t hash, int kind,
                             int64_t now_ms, int *fresh, const char **why)
{
    size_t h = (size_t)(hash & (dc->nbuckets - 1));
    for (dc_entry_t *e = dc->tab[h]; e; e = e->next) {
        if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0) {
            *fresh = 0;
            if (e->kind != kind || dc_expired(dc, e, now_ms)) {
                pc_dc_entry_clear_state(e);
                e->kind = kind;
                *fresh = 1;
            }
            e->last_ms = now_ms;
            return e;
        }
    }
    if (dc->n >= dc->max_series) {
        dc_sweep_locked(dc, now_ms);
        if (dc->n >= dc->max_series) {
            *why = "delta_state_full";
            return NULL;
        }
    }
    dc_entry_t *e = calloc(1, sizeof(*e));
    char *k = malloc(len ? len : 1);
    if (!e || !k) {
        free(e);
        free(k);
        *why = "delta_state_oom";
        return NULL;
    }
    memcpy(k, key, len);
    e->key = k;
    e->key_len = len;
    e->hash = hash;
    e->kind = kind;
    e->last_ms = now_ms;
    e->next = dc->tab[h];
    dc->tab[h] = e;
    dc->n++;
    if (dc->n > dc->nbuckets) {
        dc_grow_locked(dc);
    }
    *fresh = 1;
    return e;
}

/* floor(x / 2^d) for any sign: the OTel bucket index at a coarser scale. */
int64_t pc_floor_shift(int64_t x, int d)
{
    if (d <= 0) {
        return x;
    }
    if (d > 62) {
        return x >= 0 ? 0 : -1;
    }
    return x >= 0 ? x >> d : -((-x - 1) >> d) - 1;
}

/* Index range [lo, hi] that src (offset, n counts) covers after downscaling by d. */
static void bk_range(int64_t off, size_t n, int d, int64_t *lo, int64_t *hi)
{
    *lo = pc_floor_shift(off, d);
    *hi = pc_floor_shift(off + (int64_t)n - 1, d);
}

/* Width of dst once src (downscaled by d) is merged into it. */
int64_t pc_bk_merged_width(const dc_buckets_t *dst, int64_t off, size_t n, int d)
{
    if (n == 0) {
        return (int64_t)dst->n;
    }
    int64_t lo, hi;
    bk_range(off, n, d, &lo, &hi);
    if (dst->n) {
        int64_t dlo = dst->offset, dhi = dst->offset + (int64_t)dst->n - 1;
        lo = dlo < lo ? dlo : lo;
        hi = dhi > hi ? dhi : hi;
    }
    return hi - lo + 1;
}

/* dst += src downscaled by d (the width was checked by the caller). */
int pc_bk_add(dc_buckets_t *dst, int64_t off, const uint64_t *counts, size_t n, int d)
{
    if (n == 0) {
        return 0;
    }
    int64_t lo, hi;
    bk_range(off, n, d, &lo, &hi);
    if (dst->n) {
        int64_t dlo = dst->offset, dhi = dst->offset + (int64_t)dst->n - 1;
        lo = dlo < lo ? dlo : lo;
        hi = dhi > hi ? dhi : hi;
    }
    size_t w = (size_t)(hi - lo + 1);
    if (!dst->n || lo != dst->offset || w != dst->n) {
        uint64_t *nc = calloc(w, sizeof(*nc));
        if (!nc) {
            return -1;
        }
        for (size_t i = 0; i < dst->n; i++) {
            nc[(size_t)(dst->offset + (int64_t)i - lo)] = dst->counts[i];
        }
        free(dst->counts);
        dst->counts = nc;
        dst->offset = lo;
        dst->n = w;
    }
    for (size_t i = 0; i < n; i++) {
        dst->counts[(size_t)(pc_floor_shift(off + (int64_t)i, d) - lo)] += counts[i];
    }
    return 0;
}

/* Re-buckets b at a scale d steps coarser. */
int pc_bk_downscale(dc_buckets_t *b, int d)
{
    if (d <= 0 || b->n == 0) {
        return 0;
    }
    dc_buckets_t nb = {0, 0, NULL};
    if (pc_bk_add(&nb, b->offset, b->counts, b->n, d) != 0) {
        return -1;
    }
    free(b->counts);
    *b = nb;
    return 0;
}
