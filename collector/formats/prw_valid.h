/*
 * prw_valid.h - rules remote-write content must follow beyond its protobuf shape, shared by the
 * conversion (prw_decode.c): label order and a native histogram's count. Also the neutral
 * label and native-histogram forms both RW versions are read into, so the checks see one
 * shape.
 */
#ifndef PRW_VALID_H
#define PRW_VALID_H

#include <stddef.h>
#include <stdint.h>

/* One label; both strings are NUL-terminated (protobuf-c strings or RW 2.0 symbols). */
typedef struct prw_label {
    const char *name, *value;
} prw_label_t;

typedef struct prw_span {
    int32_t off;
    uint32_t len;
} prw_span_t;

/* A native histogram, integer (deltas) or float (absolute counts), as either RW version sent
 * it. The arrays point into the decoded request. */
typedef struct prw_hist {
    int is_float;
    uint64_t count_i;
    double count_f;
    double sum;
    int32_t schema;
    double zero_threshold;
    int zc_float;
    uint64_t zc_i;
    double zc_f;
    prw_span_t *pspans, *nspans;
    size_t n_pspans, n_nspans;
    const int64_t *pdeltas, *ndeltas;
    size_t n_pdeltas, n_ndeltas;
    const double *pcounts, *ncounts;
    size_t n_pcounts, n_ncounts;
    const double *custom;
    size_t n_custom;
    int64_t ts, start;
} prw_hist_t;

/* Sorts labels by name in byte order (what Prometheus does with what a sender sent out of
 * order) unless they already are. Returns 1 when it had to sort, 0 when they were in order.
 * Equal names stay adjacent, for the caller's duplicate check. No allocation. */
int prw_valid_sort_labels(prw_label_t *l, size_t n);

/* Checks a native histogram's count against its buckets as Prometheus does: count = zero
 * count + the sum of all bucket counts, except that a histogram whose sum is NaN (a stale
 * marker, or NaN observations) only needs count >= that total. Float histograms compare with a
 * relative tolerance of 1e-9 (their counts come from arithmetic; Prometheus leaves them
 * unchecked for that reason, OTLP still needs the identity). Returns 0 when consistent, -1 with
 * `why` (a phrase such as "count 99 but its buckets hold 23") otherwise. Malformed buckets
 * (spans that disagree with the arrays, counts that go negative) are not judged here: the
 * expansion refuses them with its own message. */
int prw_valid_hist_count(const prw_hist_t *h, char *why, size_t n);

#endif
