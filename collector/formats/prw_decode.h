/*
 * prw_decode.h - Prometheus remote-write (1.0 `prometheus.WriteRequest` and 2.0
 * `io.prometheus.write.v2.Request`) -> OTLP ExportMetricsServiceRequest, the conversion half of
 * the `prometheusremotewrite` receiver, kept apart from HTTP so it can be unit tested.
 *
 * Mapping (the reverse of protocols.md §4, chosen so that RW -> meltp -> RW keeps the series
 * names, see prw_decode.c for the details):
 *   - one ResourceMetrics per (job, instance); job "ns/name" -> service.namespace +
 *     service.name, otherwise service.name = job; instance -> service.instance.id; the labels
 *     of a `target_info` series of the same (job, instance) become resource attributes and the
 *     series itself is not emitted;
 *   - one scope "meltp/prometheusremotewrite";
 *   - type from metadata when sent (RW1 WriteRequest.metadata by family name, RW2 per series),
 *     else from the name: `_total` -> monotonic cumulative Sum without the suffix, `_bucket{le}`
 *     + `_sum` + `_count` -> one Histogram point per (labels, timestamp), `{quantile}` + `_sum` +
 *     `_count` -> Summary, anything else -> Gauge under its own name; OTLP unit stays empty;
 *   - native histograms -> exponential histograms (schema -53 / NHCB -> explicit buckets);
 *   - stale markers -> points flagged NO_RECORDED_VALUE; timestamps ms -> ns.
 */
#ifndef PRW_DECODE_H
#define PRW_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "mt.h"
#include "otlp_collector.pb-c.h"

/* What one request carried, for the receiver's counters and the RW 2.0 response headers. */
typedef struct prw_stats {
    uint64_t series;     /* TimeSeries entries in the request */
    uint64_t samples;    /* float samples accepted (incl. classic histogram / summary parts) */
    uint64_t histograms; /* native histogram samples accepted */
    uint64_t exemplars;  /* exemplars attached to a data point (others are dropped) */
    uint64_t points;     /* OTLP data points produced (the pipeline's item count) */
    uint64_t unsorted;   /* series whose label names came out of order and were sorted */
    /* RW 1.0 exemplars dropped by the conversion, by reason: no sample or histogram of their
     * series in the request, or on a summary (OTLP summaries carry none) */
    uint64_t exemplars_no_sample, exemplars_on_summary;
} prw_stats_t;

/* The stale-marker bit pattern (a NaN); compare bits, never isnan(). */
#define PRW_STALE_NAN_BITS 0x7ff0000000000002ULL

/* Decodes one uncompressed remote-write body (`version` 1 or 2) and converts it. On MT_OK *out
 * is a request allocated in `a` (it lives as long as the arena; it may hold zero resources, e.g.
 * a metadata-only RW1 request) and *stats is filled. Returns MT_EINVAL with eb saying why for
 * bad protobuf or invalid content (duplicate / empty label names, invalid UTF-8, bad symbol
 * references, malformed histograms or a count that disagrees with the buckets, RW 2.0
 * exemplars with no point to attach to), MT_ENOMEM when the arena cannot grow. Label names out
 * of order are sorted (stats->unsorted counts those series). `stats` may be NULL. */
int prw_to_otlp(int version, const uint8_t *pb, size_t len, arena_t *a,
                Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest **out,
                prw_stats_t *stats, mt_errbuf_t *eb);

/* ---- remote-write 1.0 on the wire (prw_wire.c): the pass-through path ---------------------- */

/* One Label as slices into the encoding (not NUL-terminated). */
typedef struct prw_wlabel {
    const uint8_t *name, *value;
    size_t name_len, value_len;
} prw_wlabel_t;

/* Reads one encoded Label message; 0, or -1 when malformed. */
int prw_wire_label(const uint8_t *p, size_t n, prw_wlabel_t *l);

typedef struct prw_wire_stats {
    uint64_t series, samples, histograms, exemplars, metadata;
    uint64_t unsorted; /* series with label names out of order: such a request cannot be
                        * forwarded as it is; the receiver converts it (prw_to_otlp sorts) */
    int complex;       /* holds native histograms, exemplars or le / quantile parts: the rest of its
                  * validation is prw_to_otlp's */
} prw_wire_stats_t;

/* Validates an uncompressed remote-write 1.0 body for forwarding as it is: MT_OK (stats
 * filled), MT_EINVAL with eb saying why (the messages prw_to_otlp gives), MT_ENOMEM. */
int prw_wire_check(const uint8_t *pb, size_t len, prw_wire_stats_t *st, mt_errbuf_t *eb);

#endif
