/*
 * kafka_int.h - the `kafka` exporter's parts: kafka.c (config, producer, send and delivery
 * reports) and kafka_split.c (cutting an encoded request into messages: resource records,
 * partition keys, per-trace regrouping). Private to exporters/kafka*.c.
 */
#ifndef KAFKA_INT_H
#define KAFKA_INT_H

#include "arena.h"
#include "mt.h"

#include <stddef.h>
#include <stdint.h>

/* A growable array, reused across sends (no per-item malloc once it has grown). */
typedef struct kx_vec {
    void *v;
    size_t n, cap;
} kx_vec_t;

/* Makes room for `need` elements of `elsz` bytes; MT_OK or MT_ENOMEM. */
int kx_vec_reserve(kx_vec_t *a, size_t need, size_t elsz);
void kx_vec_free(kx_vec_t *a);

/* A byte range of an encoded request. */
typedef struct kx_slice {
    const uint8_t *p;
    size_t n;
} kx_slice_t;

/* A unit: bytes that are one Export*ServiceRequest and go to one partition (one key). */
typedef struct kx_unit {
    const uint8_t *p;
    size_t n;
    const char *key; /* NULL = no key (spread over partitions) */
    size_t keyn;
} kx_unit_t;

/* Top-level fields of the encoded request [p, p+n) (its resource records) as kx_slice_t in
 * out (tag and length included: consecutive slices are contiguous and any run of them is a
 * valid request). Returns MT_OK or MT_EINVAL on bad wire data. */
int kx_entries(const uint8_t *p, size_t n, kx_vec_t *out);

/* The partition key of one resource record (ResourceSpans/Metrics/Logs, tag included): 16 hex
 * digits of a hash of its resource's attributes, independent of their order, written to
 * key[17]. scratch holds the attribute slices. */
int kx_resource_key(const uint8_t *entry, size_t n, kx_vec_t *scratch, char key[17]);

/* Regroups an encoded ExportTraceServiceRequest into one unit per trace id (key = the id in
 * hex; spans without a valid id share one unit without a key), each a packed request whose
 * resources and scopes are those of its spans, allocated in a. Appends kx_unit_t to units.
 * Returns MT_OK, MT_EINVAL (cannot decode) or MT_ENOMEM. */
int kx_traces_by_id(const uint8_t *data, size_t len, arena_t *a, kx_vec_t *units);

#endif
