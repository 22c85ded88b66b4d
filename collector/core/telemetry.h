/*
 * telemetry.h - meltp's own metrics: counters, gauges and histograms registered once at
 * start-up (or lazily, for rare labels like drop reasons) and bumped lock-free with relaxed
 * atomics on the data path. telemetry_render() writes the Prometheus text format.
 */
#ifndef TELEMETRY_H
#define TELEMETRY_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

typedef struct tm_counter {
    _Atomic uint64_t v;
} tm_counter_t;

#define TM_HIST_BUCKETS 14
typedef struct tm_hist {
    _Atomic uint64_t buckets[TM_HIST_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} tm_hist_t;

typedef double (*tm_gauge_fn)(void *arg);

/* Returns the counter for name{labels}, creating it on first use. `labels` is the inner
 * text of the braces, e.g. `exporter="otlphttp",signal="traces"`. Never NULL (aborts on OOM:
 * registration happens at start-up or on rare error paths). The pointer is valid until
 * telemetry_reset(). */
tm_counter_t *tm_counter(const char *name, const char *help, const char *labels);
tm_hist_t *tm_hist(const char *name, const char *help, const char *labels);
void tm_gauge(const char *name, const char *help, const char *labels, tm_gauge_fn fn, void *arg);
/* Removes every gauge callback registered with this arg (when a component goes away). */
void tm_gauge_remove(void *arg);

static inline void tm_add(tm_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}
static inline uint64_t tm_get(tm_counter_t *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}
void tm_hist_observe(tm_hist_t *h, double seconds);

/* Convenience: counter name{labels,reason="..."} += n. Looks up under a mutex: rare paths only. */
void tm_count_reason(const char *name, const char *help, const char *labels, const char *reason,
                     uint64_t n);

/* Writes every metric in the Prometheus text exposition format (0.0.4). Returns a malloc'd
 * buffer and its length. */
char *telemetry_render(size_t *len);
/* Process resident set size in bytes (from /proc/self/statm). */
uint64_t telemetry_rss_bytes(void);

#endif
