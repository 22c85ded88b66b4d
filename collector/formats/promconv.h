/*
 * promconv.h - OTLP metrics -> Prometheus series, exactly as protocols.md §4 and Prometheus's
 * own OTLP translator (UnderscoreEscapingWithSuffixes) do it: metric names with unit and type
 * suffixes, sanitised labels with collision joining, job / instance / target_info from the
 * resource, scope labels, classic histograms, exponential -> native histograms, summaries,
 * stale markers for NoRecordedValue, exemplars and metadata. Delta sums and histograms are
 * turned into cumulative series through a bounded, expiring state (deltacum_t).
 *
 * The output is a remote-write 1.0 shaped set of Prometheus__TimeSeries (labels sorted by
 * name, no empty values, no duplicates) and Prometheus__MetricMetadata, all allocated from
 * the caller's arena. The remote-write exporter packs it (or re-shapes it into RW 2.0); the
 * pull exporter keeps the latest sample per series.
 */
#ifndef PROMCONV_H
#define PROMCONV_H

#include <stdint.h>
#include "arena.h"
#include "config.h"
#include "mt.h"
#include "otlp_collector.pb-c.h"
#include "prom_rw1.pb-c.h"

typedef struct deltacum deltacum_t;

typedef struct promconv_opts {
    int add_metric_suffixes;             /* unit and _total/_ratio suffixes (default 1) */
    const char *namespace_;              /* prefix "<ns>_" to every metric name, or NULL */
    int resource_to_telemetry;           /* every resource attribute becomes a label */
    const cfg_strlist_t *promote;        /* resource attributes copied to every series, or NULL */
    int scope_labels;                    /* otel_scope_name / _version / _schema_url / attrs */
    int target_info;                     /* emit target_info per (job, instance) (default 1) */
    const cfg_strmap_t *external_labels; /* added to every series unless already present */
    int64_t now_ms;                      /* for target_info timestamps when a batch has none */
} promconv_opts_t;

typedef struct promconv_out {
    Prometheus__TimeSeries **series;
    size_t n_series;
    Prometheus__MetricMetadata **metadata;
    size_t n_metadata;
    uint64_t samples;    /* float samples emitted */
    uint64_t histograms; /* native histogram samples emitted */
    uint64_t exemplars;
    uint64_t dropped_points;      /* data points that could not be converted (counted by reason) */
    const char *last_drop_reason; /* e.g. "no_sum", "scale_too_small", "invalid_name" */
    /* private: growth bookkeeping */
    size_t cap_series, cap_metadata;
} promconv_out_t;

/* Converts one request. `out` is reset first; everything in it (label strings included) lives in
 * `a`, so the request itself may be freed afterwards. Points with identical label sets share one
 * TimeSeries, whose samples are in time order. `dc` may be NULL: then delta points are dropped
 * (counted, reason "delta_without_state"). Other drop reasons: "invalid_name",
 * "invalid_temporality" (sum/histogram with UNSPECIFIED temporality), "no_sum",
 * "scale_too_small", "delta_state_full", "delta_state_oom".
 * Label precedence, lowest first (as Prometheus's createAttributes): point attributes (colliding
 * keys joined with `;`), promoted / resource_to_telemetry attributes (only where absent), scope
 * labels and job / instance (override), external labels (only where absent), then __name__ / le
 * / quantile (override). target_info needs service.name or service.instance.id AND at least one
 * other resource attribute; it is deduplicated per (job, instance) within the request and its
 * timestamp is the resource's latest point (now_ms when it has none). now_ms = 0 means "use the
 * wall clock"; it also stamps points with time 0 and drives delta-state expiry.
 * Returns MT_OK or MT_ENOMEM (check arena_over_cap(a) to tell a cap from real OOM). */
int promconv_convert(const promconv_opts_t *o, deltacum_t *dc,
                     const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req,
                     arena_t *a, promconv_out_t *out);

/* Name and label helpers, exposed for tests and for the pull exporter. Results are written to
 * `buf` (NUL-terminated); they return the length, or -1 when the result would be empty/invalid
 * or does not fit. kind_counter: monotonic sum (gets _total); kind_gauge_ratio: a gauge, which
 * gets _ratio when the unit is exactly "1". Histograms and summaries pass 0, 0 and append
 * _bucket / _sum / _count themselves. A label name of only underscores is invalid. */
int promconv_metric_name(const char *otel_name, const char *unit, int kind_counter,
                         int kind_gauge_ratio, int add_suffixes, const char *ns, char *buf,
                         size_t buflen);
int promconv_label_name(const char *key, char *buf, size_t buflen);

/* The family an OTLP metric becomes (collector/formats/promconv_family.c), decided once for every
 * caller: promconv_convert, the SLO engine's selector matching and validation mode.
 * promconv_family_type returns the PROMETHEUS__METRIC_METADATA__METRIC_TYPE__* (monotonic sum
 * = counter; gauge and non-monotonic sum = gauge unless `prometheus.type` in the metric's
 * metadata says unknown / info / stateset; both histogram kinds = histogram; summary).
 * promconv_family_name writes the family name (histograms and summaries without _bucket /
 * _sum / _count) like promconv_metric_name and returns its length or -1; *type (may be NULL)
 * gets the type. */
int promconv_family_type(const Opentelemetry__Proto__Metrics__V1__Metric *m);
int promconv_family_name(const Opentelemetry__Proto__Metrics__V1__Metric *m, int add_suffixes,
                         const char *ns, char *buf, size_t buflen, int *type);
/* Go's strconv.FormatFloat(v, 'f', -1, 64) for le / quantile label values ("+Inf" for inf). */
int promconv_format_float(double v, char *buf, size_t buflen);

/* The stale marker bit pattern, 0x7ff0000000000002. */
double promconv_stale_nan(void);
int promconv_is_stale(double v);

/* Delta -> cumulative state: per series (family name + kind + final labels) running totals for
 * sums, classic histograms (a changed bucket layout restarts the total) and exponential
 * histograms (merged at the coarser scale). Bounded: at most max_series entries (0 = 100000;
 * new series beyond it are dropped and counted) and entries idle for longer than expiry_ms
 * (<= 0: never) are forgotten. Thread-safe (one mutex). */
deltacum_t *deltacum_create(size_t max_series, int64_t expiry_ms);
void deltacum_destroy(deltacum_t *dc);
size_t deltacum_size(deltacum_t *dc);

/* The remote-write exporter's hand-written WriteRequest encoder (exporters/prw.c): n series
 * and nmd metadata entries packed into the arena, the same wire content protobuf-c gives.
 * NULL when the arena cannot grow. */
uint8_t *prw_pack_v1(Prometheus__TimeSeries **list, size_t n, Prometheus__MetricMetadata **md,
                     size_t nmd, arena_t *a, size_t *len);

#endif
