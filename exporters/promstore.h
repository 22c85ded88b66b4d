/*
 * promstore.h - the series store behind the `prometheus` (pull) exporter: the latest sample of
 * every Prometheus series (label set including __name__) plus the TYPE/HELP/UNIT of every
 * family, bounded in size and forgetting series that stop being updated, rendered on demand
 * in the Prometheus text format 0.0.4 or OpenMetrics 1.0. Kept apart from the exporter (HTTP,
 * config, OTLP translation) so it can be unit tested with hand-built series.
 */
#ifndef PROMSTORE_H
#define PROMSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "prom_rw1.pb-c.h"

typedef struct promstore promstore_t;

typedef enum { PROMSTORE_TEXT = 0, PROMSTORE_OPENMETRICS = 1 } promstore_fmt_t;

#define PROMSTORE_CT_TEXT        "text/plain; version=0.0.4; charset=utf-8"
#define PROMSTORE_CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Counts one promstore_update / promstore_render / promstore_expire call adds to (callers
 * zero it first; every call only adds). */
typedef struct promstore_stats {
    uint64_t added;              /* new series */
    uint64_t updated;            /* samples that replaced a stored value */
    uint64_t stale_removed;      /* series removed by a stale marker */
    uint64_t expired;            /* series removed for not being updated in time */
    uint64_t dropped_max_series; /* new series refused: the store was full */
    uint64_t dropped_native;     /* native histogram series (no text representation) */
    uint64_t dropped_old;        /* samples older than the stored one */
    uint64_t dropped_invalid;    /* series without __name__ */
} promstore_stats_t;

/* Creates an empty store holding at most `max_series` series (and as many families), each
 * forgotten once it has not been updated for more than `expiry_ms` (<= 0: never). Returns NULL
 * when out of memory. */
promstore_t *promstore_create(size_t max_series, int64_t expiry_ms);
/* Frees the store and everything in it. Accepts NULL. */
void promstore_destroy(promstore_t *s);

/* Applies one converted batch (promconv's output, or hand-built): for every series the sample
 * with the newest timestamp replaces the stored one unless the stored one is newer (equal
 * timestamps: the later call wins); a stale marker (0x7ff0000000000002) removes the series;
 * series carrying only native histograms are dropped. Metadata replaces the family's
 * TYPE/HELP/UNIT. Labels are copied (the inputs may live in an arena); labels with empty values
 * are ignored, as Prometheus does. `now_ms` is the (monotonic) arrival time used for expiry.
 * Returns 0 (MT_OK) or MT_ENOMEM when a copy could not be allocated (what was applied stays). */
int promstore_update(promstore_t *s, Prometheus__TimeSeries *const *series, size_t nseries,
                     Prometheus__MetricMetadata *const *meta, size_t nmeta, int64_t now_ms,
                     promstore_stats_t *st);

/* Removes series and families not updated for more than expiry_ms before now_ms. Returns how
 * many series went. */
size_t promstore_expire(promstore_t *s, int64_t now_ms, promstore_stats_t *st);

/* Series currently held (lock-free read, for a gauge). */
size_t promstore_size(promstore_t *s);

/* Expires (as promstore_expire), then writes every series: families sorted by name, each with
 * # HELP (when known) and # TYPE (and # UNIT in OpenMetrics), series sorted by labels, histogram
 * buckets in `le` order with +Inf last followed by _sum and _count, summary quantiles in order
 * followed by _sum and _count. OpenMetrics ends with "# EOF". `timestamps` appends each sample's
 * timestamp (ms in text, seconds in OpenMetrics). On success *out is a malloc'd buffer the
 * caller frees (NUL-terminated, *out_len without the NUL). Returns MT_OK or MT_ENOMEM. */
int promstore_render(promstore_t *s, promstore_fmt_t fmt, int timestamps, int64_t now_ms,
                     char **out, size_t *out_len, promstore_stats_t *st);

/* Writes a sample value as Prometheus does: Go's strconv.FormatFloat(v, 'g', -1, 64) ("0.5",
 * "1e+06", "1.5e-07"), "NaN", "+Inf", "-Inf"; `openmetrics` appends ".0" to integral values
 * written without a decimal point or exponent ("1.0"), as client_golang's OpenMetrics encoder.
 * Returns the length written (buf NUL-terminated; 32 bytes always suffice) or -1. */
int promstore_format_value(double v, int openmetrics, char *buf, size_t buflen);

#endif
