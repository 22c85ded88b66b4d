/*
 * model.h - the one internal SLO model. Native meltp specs, Sloth `prometheus/v1` files and
 * OpenSLO v1 documents all load (slo/spec.c) into the structs below, after lint; the in-process
 * engine (slo/engine.c), the rule generator (rules/rules_gen.c), the dashboard generator
 * (rules/dashboards_gen.c) and `meltp slo explain` (rules/slo_cli.c) all read the same structs, so
 * what Prometheus evaluates and what meltp evaluates come from one definition.
 *
 * Structs, outermost first:
 *   slo_set_t      every SLO loaded from a list of spec files; owns everything below. Immutable
 *                  after slo_specs_load returns, so threads may read it without locks.
 *   slo_spec_t     one SLO: identity (id = "<service>-<name>", Sloth's sloth_id), objective as
 *                  a ratio (0.999), period (rolling or calendar), budgeting method, SLI, alert
 *                  tiers, no-data policy, minimum event count, grouping, labels, links, origin.
 *   slo_sli_t      what is counted: RATIO (good/bad/total counters), LATENCY (share of a
 *                  histogram at or below a threshold), SPANS (error ratio or duration threshold
 *                  per service [/span name /route]), LOGS (share of records at or above a
 *                  severity per service). Every kind yields good, bad and total event counts.
 *   slo_selector_t a metric name plus label matchers (=, !=, =~, !~), as in a PromQL selector.
 *   slo_matcher_t  one label matcher; regexes are precompiled, anchored as Prometheus does.
 *   slo_tier_t     one multi-window multi-burn-rate alert tier (long AND short window over
 *                  factor x (1 - objective)), with the alert identity it fires under.
 *   slo_kv_t       an ordered list of label (or annotation) pairs.
 *
 * Stability: other modules compile against this header; changes are additive only.
 */
#ifndef SLO_MODEL_H
#define SLO_MODEL_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "mt.h"

/* Limits (craft convention 10). */
#define SLO_MAX_SPECS          4096 /* SLOs per set */
#define SLO_MAX_TIERS          16   /* alert tiers per SLO */
#define SLO_MAX_MATCHERS       32   /* label matchers per selector */
#define SLO_MAX_GROUP_BY       16   /* grouping labels per SLO */
#define SLO_DEFAULT_MAX_GROUPS 1000 /* default cardinality cap of grouped SLOs */

/* The counter the engine is expected to export for SLIs Prometheus cannot compute itself
 * (spans, logs): meltp_slo_events_total{sloth_id, sloth_service, sloth_slo, <group labels>,
 * event="good"|"bad"|"total"}. Generated rules for SPANS and LOGS SLIs read it. */
#define SLO_EVENTS_METRIC "meltp_slo_events_total"

/* Ordered label pairs; keys and values are malloc'd and owned by the set. */
typedef struct {
    size_t n;
    char **keys;
    char **vals;
} slo_kv_t;

typedef enum {
    SLO_MATCH_EQ = 0, /* =  */
    SLO_MATCH_NEQ,    /* != */
    SLO_MATCH_RE,     /* =~ (full match: compiled as ^(?:value)$, POSIX extended) */
    SLO_MATCH_NRE,    /* !~ */
} slo_match_op_t;

typedef struct {
    char *name; /* label name; "__name__" allowed */
    slo_match_op_t op;
    char *value; /* as written (regex source without the anchors) */
    regex_t re;  /* compiled for RE/NRE only (re_ok = 1) */
    int re_ok;
} slo_matcher_t;

/* A metric selector. `metric` is the metric name (NULL when the name is only constrained by
 * __name__ matchers). Matchers never include the `metric` equality itself. */
typedef struct {
    char *metric;
    slo_matcher_t *m;
    size_t nm;
} slo_selector_t;

typedef enum {
    SLO_SLI_RATIO = 0, /* counters: two of good/bad/total (bad = total - good if no bad) */
    SLO_SLI_LATENCY,   /* histogram: good = observations <= threshold, total = count */
    SLO_SLI_SPANS,     /* spans of a service: errors or duration threshold */
    SLO_SLI_LOGS,      /* log records of a service: bad = severity >= min_severity */
} slo_sli_kind_t;

typedef enum {
    SLO_SPANS_ERRORS = 0, /* bad = status ERROR (or HTTP status >= 500 if http_5xx_is_error) */
    SLO_SPANS_LATENCY,    /* good = duration <= threshold_ms */
} slo_spans_mode_t;

typedef struct {
    slo_sli_kind_t kind;
    /* RATIO: selectors with metric == NULL and nm == 0 are "not given" (has_* says which). */
    int has_good, has_bad, has_total;
    slo_selector_t good, bad, total;
    /* LATENCY: `histogram` names the histogram (base name, without _bucket/_count/_sum);
     * threshold is in the histogram's unit (e.g. seconds) and should be a bucket bound. */
    slo_selector_t histogram;
    double threshold;
    /* SPANS and LOGS: resource attribute service.name to match (required). */
    char *service;
    /* SPANS: optional span name and http.route filters (NULL = any). */
    char *span_name;
    char *route;
    slo_spans_mode_t spans_mode;
    int http_5xx_is_error; /* SPANS errors: also count http.response.status_code >= 500 */
    double threshold_ms;   /* SPANS latency threshold in milliseconds */
    /* LOGS: OTLP severity number (1..24); records with severity_number >= it are bad. */
    int min_severity;
    /* Imported PromQL (Sloth events, OpenSLO prometheus queries): the query text as written
     * (Sloth with {{.window}}), kept for Sloth-identical generated rules; NULL otherwise.
     * `use_increase` notes increase() instead of rate() (same ratio). */
    char *error_query;
    char *total_query;
    char *good_query;
    int use_increase;
} slo_sli_t;

typedef enum {
    SLO_PERIOD_ROLLING = 0,
    SLO_PERIOD_CALENDAR_MONTH, /* calendar month in time_zone */
    SLO_PERIOD_CALENDAR_WEEK,  /* ISO week (Monday start) in time_zone */
} slo_period_kind_t;

typedef enum {
    SLO_BUDGET_OCCURRENCES = 0,  /* good events / total events */
    SLO_BUDGET_TIMESLICES,       /* good slices / slices; slice good if ratio >= slice_target */
    SLO_BUDGET_RATIO_TIMESLICES, /* mean of per-slice ratios */
} slo_budgeting_t;

typedef enum {
    SLO_NODATA_GOOD = 0, /* windows with no events count as good (default for imports: none) */
    SLO_NODATA_BAD,      /* ... as fully bad */
    SLO_NODATA_FREEZE,   /* budget and burn rates hold their last value */
    SLO_NODATA_ALERT,    /* freeze, and raise a no-data alert */
} slo_nodata_t;

typedef enum { SLO_FMT_NATIVE = 0, SLO_FMT_SLOTH, SLO_FMT_OPENSLO } slo_format_t;

/* One MWMBR tier. It fires when error_ratio(long) > factor*(1-objective) AND
 * error_ratio(short) > factor*(1-objective), held for `for_ms`, and keeps firing for
 * keep_firing_for_ms after the condition clears. Tiers sharing alert_name + severity form one
 * alert (Sloth: page = quick OR slow). */
typedef struct {
    char *name;     /* "page-quick", "page-slow", "ticket-quick", "ticket-slow", ... */
    char *severity; /* "page" | "ticket" (or any word from a native spec) */
    int64_t long_ms;
    int64_t short_ms;
    double factor;         /* burn-rate factor, already scaled to the period */
    double budget_percent; /* budget consumed at trigger (factor = pct/100 * P / long) */
    int enabled;
    int64_t for_ms; /* 0 = none */
    int64_t keep_firing_for_ms;
    char *alert_name;     /* alertname: Sloth alerting.name / native alerting.name; default
                              * CamelCase(service)+CamelCase(name)+"BurnRate" */
    slo_kv_t labels;      /* full alert labels: sloth_severity + alert-wide + tier labels */
    slo_kv_t annotations; /* full annotations (title, runbook_url, ...) */
} slo_tier_t;

typedef struct {
    /* identity */
    char *id;      /* "<service>-<name>" = sloth_id; unique in the set */
    char *service; /* sloth_service */
    char *name;    /* sloth_slo */
    char *description;
    slo_format_t format;
    char *file; /* spec file */
    int line;   /* line of the SLO in it */

    double objective; /* ratio in (0,1), e.g. 0.999 */

    /* period */
    slo_period_kind_t period_kind;
    int64_t period_ms;        /* rolling length; calendar: nominal 30d (month) / 7d (week), used
                        * to scale tier factors */
    char *time_zone;          /* IANA zone for calendar periods ("UTC" default) */
    int64_t calendar_start_s; /* OpenSLO calendar.startTime (unix s), 0 = none */

    /* budgeting */
    slo_budgeting_t budgeting;
    int64_t timeslice_ms;    /* TIMESLICES / RATIO_TIMESLICES */
    double timeslice_target; /* TIMESLICES: slice good if its good ratio >= this */

    slo_sli_t sli;

    slo_tier_t *tiers;
    size_t ntiers;

    slo_nodata_t nodata;
    uint64_t min_events; /* burn-rate alerts need >= this many events in the long window */

    char **group_by; /* labels (RATIO/LATENCY) or attributes (SPANS/LOGS) */
    size_t ngroup_by;
    size_t max_groups; /* cardinality cap; extra groups are dropped and counted */

    slo_kv_t labels;   /* labels on every SLO series and rule (service + SLO labels) */
    char *runbook_url; /* NULL = none */
    char *dashboard_url;
} slo_spec_t;

typedef struct slo_set {
    slo_spec_t *slos;
    size_t n;
    int64_t eval_interval_ms; /* the interval the set was linted against */
} slo_set_t;

/* Loads every file matching the globs (relative globs resolve against base_dir; NULL = cwd),
 * detecting per YAML document (`---` separated) whether it is native (`meltp/v1` or a top-level
 * `slos:` without `version`), Sloth (`version: prometheus/v1`) or OpenSLO (`apiVersion:
 * openslo/v1`; SLO, SLI, AlertPolicy, AlertCondition, Service and DataSource kinds; refs are
 * resolved across all loaded files). Lints everything against eval_interval_ms (0 = no window
 * check). Every problem is appended to `c` as "FILE:LINE: path: reason" with FILE the spec file
 * (c->file is swapped while a spec is read and restored before return; glob errors use the
 * caller's c->file). Returns MT_OK with *out set (free with slo_set_destroy), or MT_EINVAL /
 * MT_ENOMEM with *out = NULL. A glob matching no file is an error. */
int slo_specs_load(const char *const *globs, size_t n, const char *base_dir,
                   int64_t eval_interval_ms, cfg_ctx_t *c, slo_set_t **out);

/* Same for one file, or for text in memory (`name` is FILE in messages). */
int slo_specs_load_file(const char *path, int64_t eval_interval_ms, cfg_ctx_t *c, slo_set_t **out);
int slo_specs_load_string(const char *name, const char *text, size_t len, int64_t eval_interval_ms,
                          cfg_ctx_t *c, slo_set_t **out);

/* Frees the set and everything in it. Accepts NULL. */
void slo_set_destroy(slo_set_t *s);

/* 1 if a label value matches (value NULL = label absent, which matches as ""), else 0. */
int slo_matcher_match(const slo_matcher_t *m, const char *value);

/* One matcher in Alertmanager's syntax: `name="value"`, `name!="v"`, `name=~"re"`,
 * `name!~"re"` (value quoted "..", '..' or `..`, or bare to the end; optional {braces});
 * regexes anchored as Prometheus does. Fills *m (free with slo_matcher_free) and returns 0, or
 * returns -1 with err set (m is left empty). */
int slo_matcher_parse(const char *text, slo_matcher_t *m, char *err, size_t errlen);
/* The same from parts (a silence's {name, value, isRegex, isEqual}). */
int slo_matcher_set(slo_matcher_t *m, const char *name, slo_match_op_t op, const char *value,
                    char *err, size_t errlen);
void slo_matcher_free(slo_matcher_t *m);
/* "=", "!=", "=~" or "!~" (static text). */
const char *slo_match_op_text(slo_match_op_t op);

/* 1 if a series matches the selector. `get(ctx, name)` returns a label's value or NULL;
 * "__name__" is asked for the metric name. */
int slo_selector_match(const slo_selector_t *s, const char *(*get)(void *ctx, const char *name),
                       void *ctx);

/* Error-ratio threshold of a tier: factor * (1 - objective). */
double slo_tier_threshold(const slo_spec_t *s, const slo_tier_t *t);

/* slo.md 2.3, for a step to a constant error ratio `e` (1.0 = full outage): time until the
 * tier fires, max(long, short) window detection + for, in ms; -1 if it never fires
 * (e <= threshold). detect = W * threshold / e for each window, the later of the two. */
int64_t slo_tier_detection_ms(const slo_spec_t *s, const slo_tier_t *t, double e);
/* Time from the end of a full outage lasting at least the long window until the tier stops
 * firing: the short window drains first, W_short * (1 - threshold) (errors leave the window
 * linearly), plus keep_firing_for. */
int64_t slo_tier_reset_ms(const slo_spec_t *s, const slo_tier_t *t);

/* Names for printing. */
const char *slo_format_name(slo_format_t f);       /* "native", "sloth", "openslo" */
const char *slo_sli_kind_name(slo_sli_kind_t k);   /* "ratio", "latency", "spans", "logs" */
const char *slo_nodata_name(slo_nodata_t p);       /* "good", "bad", "freeze", "alert" */
const char *slo_budgeting_name(slo_budgeting_t b); /* "Occurrences", "Timeslices", ... */
/* Formats a duration in Prometheus style ("5m", "1h", "3d", "1h30m") into buf. */
const char *slo_fmt_duration(int64_t ms, char *buf, size_t len);

/* `meltp slo test-notify ...`, provided by slo/notify.c (engine engineer). argv[0] is
 * "test-notify". Returns the process exit code. */
int slo_notify_test_main(int argc, char **argv);

/* Generators (rules/rules_gen.c, rules/dashboards_gen.c). Return MT_OK or an error in eb. */
#include <stdio.h>
int slo_rules_write(FILE *f, const slo_set_t *set, mt_errbuf_t *eb);
/* promtool unit tests for the rules written by slo_rules_write to `rules_file`. */
int slo_rules_tests_write(FILE *f, const slo_set_t *set, const char *rules_file, mt_errbuf_t *eb);
/* Writes one Grafana dashboard JSON per service into dir (slo-<service>.json); the paths
 * written are printed to `log` when not NULL. */
int slo_dashboards_write(const char *dir, const slo_set_t *set, FILE *log, mt_errbuf_t *eb);

/* `meltp slo simulate` (slo/engine.c): feeds metric series given as JSON
 *   {"start_ms": T0, "step_ms": S, "eval_every_ms": E (default S),
 *    "temporality": "cumulative" (default) | "delta",
 *    "series": [{"metric": NAME, "labels": {k: v}, "values": [v0, v1, null, ...]}]}
 * (value i is a Sum point at T0 + i*S; null = no sample) through the engine's own observer
 * code with a simulated clock, evaluating every SLO at T0 + k*E after that step's samples.
 * Writes one JSON line per evaluation to `out`: {"t_ms", "slos": [{"id", "state",
 * "windows": {W: {good, total, error_ratio}}, "tiers": {NAME: {state, alert, severity}},
 * "nodata_alert": "inactive" | "firing"}]}.
 * The first cumulative sample of a series is its baseline. Returns MT_OK or an error in eb. */
int slo_simulate(FILE *out, const slo_set_t *set, const char *json, size_t len, mt_errbuf_t *eb);

#endif
