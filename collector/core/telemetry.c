/*
 * telemetry.c - the registry behind telemetry.h. A linked list under a mutex is enough:
 * lookups happen at start-up or on rare paths, and the data path only touches the atomics
 * through pointers it cached. O(N) lookup; N is a few hundred series at most.
 */
#include "telemetry.h"
#include "mt.h"
#include "sb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/resource.h>

enum { K_COUNTER, K_GAUGE, K_HIST };

typedef struct series {
    struct series *next;
    int kind;
    char *name, *help, *labels;
    tm_counter_t counter;
    tm_hist_t hist;
    tm_gauge_fn fn;
    void *arg;
} series_t;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static series_t *reg_head;

/* Histogram bounds in seconds. */
static const double hist_bounds[TM_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static char *xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p) {
        abort();
    }
    return p;
}

static series_t *find_or_add(int kind, const char *name, const char *help, const char *labels)
{
    series_t *s;
    for (s = reg_head; s; s = s->next) {
        if (s->kind == kind && kind != K_GAUGE && strcmp(s->name, name) == 0 &&
            strcmp(s->labels, labels) == 0) {
            return s;
        }
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        abort();
    }
    s->kind = kind;
    s->name = xstrdup(name);
    s->help = xstrdup(help);
    s->labels = xstrdup(labels);
    /* keep the list sorted by name so families render together */
    series_t **pp = &reg_head;
    while (*pp && strcmp((*pp)->name, name) <= 0) {
        pp = &(*pp)->next;
    }
    s->next = *pp;
    *pp = s;
    return s;
}

tm_counter_t *tm_counter(const char *name, const char *help, const char *labels)
{
    pthread_mutex_lock(&reg_mu);
    series_t *s = find_or_add(K_COUNTER, name, help, labels);
    pthread_mutex_unlock(&reg_mu);
    return &s->counter;
}

tm_hist_t *tm_hist(const char *name, const char *help, const char *labels)
{
    pthread_mutex_lock(&reg_mu);
    series_t *s = find_or_add(K_HIST, name, help, labels);
    pthread_mutex_unlock(&reg_mu);
    return &s->hist;
}

void tm_gauge(const char *name, const char *help, const char *labels, tm_gauge_fn fn, void *arg)
{
    pthread_mutex_lock(&reg_mu);
    series_t *s = find_or_add(K_GAUGE, name, help, labels);
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_unlock(&reg_mu);
}

void tm_gauge_remove(void *arg)
{
    pthread_mutex_lock(&reg_mu);
    series_t **pp = &reg_head;
    while (*pp) {
        series_t *s = *pp;
        if (s->kind == K_GAUGE && s->arg == arg) {
            *pp = s->next;
            free(s->name);
            free(s->help);
            free(s->labels);
            free(s);
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&reg_mu);
}

void tm_hist_observe(tm_hist_t *h, double seconds)
{
    int i = 0;
    while (i < TM_HIST_BUCKETS && seconds > hist_bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void tm_count_reason(const char *name, const char *help, const char *labels, const char *reason,
                     uint64_t n)
{
    char lb[512];
    snprintf(lb, sizeof(lb), "%s%sreason=\"%s\"", labels, *labels ? "," : "", reason);
    tm_add(tm_counter(name, help, lb), n);
}

uint64_t telemetry_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &rss) != 2) {
            rss = 0;
        }
        fclose(f);
    }
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void render_labels(sb_t *b, const char *labels, const char *extra)
{
    if (!*labels && !extra) {
        return;
    }
    sb_printf(b, "{%s%s%s}", labels, *labels && extra ? "," : "", extra ? extra : "");
}

char *telemetry_render(size_t *len)
{
    sb_t b;
    sb_init(&b, 0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    sb_printf(&b,
              "# HELP meltp_process_resident_memory_bytes Resident set size.\n"
              "# TYPE meltp_process_resident_memory_bytes gauge\n"
              "meltp_process_resident_memory_bytes %llu\n"
              "# HELP meltp_process_max_resident_memory_bytes Peak resident set size.\n"
              "# TYPE meltp_process_max_resident_memory_bytes gauge\n"
              "meltp_process_max_resident_memory_bytes %llu\n"
              "# HELP meltp_process_cpu_seconds_total User and system CPU time.\n"
              "# TYPE meltp_process_cpu_seconds_total counter\n"
              "meltp_process_cpu_seconds_total %.3f\n",
              (unsigned long long)telemetry_rss_bytes(), (unsigned long long)ru.ru_maxrss * 1024,
              cpu);
    pthread_mutex_lock(&reg_mu);
    const char *last = "";
    for (series_t *s = reg_head; s; s = s->next) {
        if (strcmp(s->name, last) != 0) {
            const char *type = s->kind == K_COUNTER ? "counter"
                               : s->kind == K_GAUGE ? "gauge"
                                                    : "histogram";
            sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name, type);
            last = s->name;
        }
        if (s->kind == K_COUNTER) {
            sb_printf(&b, "%s", s->name);
            render_labels(&b, s->labels, NULL);
            sb_printf(&b, " %llu\n", (unsigned long long)tm_get(&s->counter));
        } else if (s->kind == K_GAUGE) {
            sb_printf(&b, "%s", s->name);
            render_labels(&b, s->labels, NULL);
            sb_printf(&b, " %.17g\n", s->fn ? s->fn(s->arg) : 0.0);
        } else {
            uint64_t cum = 0;
            for (int i = 0; i <= TM_HIST_BUCKETS; i++) {
                char le[64];
                cum += atomic_load_explicit(&s->hist.buckets[i], memory_order_relaxed);
                if (i < TM_HIST_BUCKETS) {
                    snprintf(le, sizeof(le), "le=\"%g\"", hist_bounds[i]);
                } else {
                    snprintf(le, sizeof(le), "le=\"+Inf\"");
                }
                sb_printf(&b, "%s_bucket", s->name);
                render_labels(&b, s->labels, le);
                sb_printf(&b, " %llu\n", (unsigned long long)cum);
            }
            sb_printf(&b, "%s_sum", s->name);
            render_labels(&b, s->labels, NULL);
            sb_printf(&b, " %.6f\n", atomic_load(&s->hist.sum_us) / 1e6);
            sb_printf(&b, "%s_count", s->name);
            render_labels(&b, s->labels, NULL);
            sb_printf(&b, " %llu\n", (unsigned long long)atomic_load(&s->hist.count));
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return sb_take(&b, len); /* NULL when out of memory */
}
