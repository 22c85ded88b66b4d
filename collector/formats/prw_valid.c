/*
 * prw_valid.c - content rules for remote-write data that the protobuf shape does not enforce:
 * label names in order (sorted here when a sender did not) and a native histogram's count
 * consistent with its buckets. Kept out of prw_decode.c so the rules read on their own and the
 * conversion stays a conversion; see prw_valid.h for the contracts.
 */
#include "prw_valid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const prw_label_t *)a)->name, ((const prw_label_t *)b)->name);
}

int prw_valid_sort_labels(prw_label_t *l, size_t n)
{
    size_t i = 1;
    while (i < n && strcmp(l[i - 1].name, l[i].name) <= 0) {
        i++;
    }
    if (i >= n) {
        return 0; /* the common case: one pass, no sort */
    }
    /* qsort is not stable, which does not matter: equal names are a duplicate the caller
     * refuses whatever their order */
    qsort(l, n, sizeof(*l), cmp_label);
    return 1;
}

/* Adds the absolute counts of one side of an integer histogram to *total. Returns 0, 1 when a
 * running count goes negative (left to the expansion), 2 on overflow. */
static int add_deltas(const int64_t *d, size_t n, uint64_t *total)
{
    int64_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (__builtin_add_overflow(run, d[i], &run) || run < 0) {
            return 1;
        }
        if (__builtin_add_overflow(*total, (uint64_t)run, total)) {
            return 2;
        }
    }
    return 0;
}

/* Adds one side of a float histogram; 1 when a count is negative or NaN (left to the
 * expansion). */
static int add_counts(const double *c, size_t n, double *total)
{
    for (size_t i = 0; i < n; i++) {
        if (!(c[i] >= 0)) {
            return 1;
        }
        *total += c[i];
    }
    return 0;
}

/* How many buckets one side's spans announce. */
static uint64_t span_buckets(const prw_span_t *sp, size_t n)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        t += sp[i].len;
    }
    return t;
}

int prw_valid_hist_count(const prw_hist_t *h, char *why, size_t n)
{
    int nan_sum = isnan(h->sum);
    /* spans that disagree with the bucket arrays are the expansion's to report, in its words */
    if (span_buckets(h->pspans, h->n_pspans) != (h->is_float ? h->n_pcounts : h->n_pdeltas) ||
        span_buckets(h->nspans, h->n_nspans) != (h->is_float ? h->n_ncounts : h->n_ndeltas)) {
        return 0;
    }
    if (h->is_float) {
        double total = h->zc_float ? h->zc_f : (double)h->zc_i;
        if (add_counts(h->pcounts, h->n_pcounts, &total) ||
            add_counts(h->ncounts, h->n_ncounts, &total)) {
            return 0;
        }
        double c = h->count_f;
        int ok = nan_sum ? !(total > c * (1 + 1e-9))
                         : fabs(c - total) <= 1e-9 * fmax(fabs(c), fabs(total));
        if (!ok) {
            snprintf(why, n, "count %g but its buckets hold %g (zero bucket included)%s", c, total,
                     nan_sum ? "; with a NaN sum the count may only exceed them" : "");
            return -1;
        }
        return 0;
    }
    /* an integer histogram with a float zero count: read it as the expansion would */
    uint64_t total = !h->zc_float                       ? h->zc_i
                     : h->zc_f >= 0 && h->zc_f < 1.8e19 ? (uint64_t)h->zc_f
                                                        : 0;
    int rp = add_deltas(h->pdeltas, h->n_pdeltas, &total);
    int rn = rp ? 0 : add_deltas(h->ndeltas, h->n_ndeltas, &total);
    if (rp == 1 || rn == 1) {
        return 0;
    }
    if (rp == 2 || rn == 2) {
        snprintf(why, n, "count %llu but its buckets hold more than 2^64 observations",
                 (unsigned long long)h->count_i);
        return -1;
    }
    if (nan_sum ? total > h->count_i : total != h->count_i) {
        snprintf(why, n, "count %llu but its buckets hold %llu (zero bucket included)%s",
                 (unsigned long long)h->count_i, (unsigned long long)total,
                 nan_sum ? "; with a NaN sum the count may only exceed them" : "");
        return -1;
    }
    return 0;
}
