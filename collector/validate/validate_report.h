/*
 * validate_report.h - the report `meltp validate` builds (coverage per service x environment,
 * policy gaps, schema violations, PII findings, SLO coverage, translation preview) and its
 * writers: text, json, markdown, junit and one self-contained html file. validate_mode.c fills
 * the model; this module only renders it, so every format shows the same facts.
 */
#ifndef VALIDATE_REPORT_H
#define VALIDATE_REPORT_H

#include <stdint.h>
#include <stdio.h>

/* The five signal kinds the report counts. Events are log records with an event name (the
 * event_name field or an `event.name` attribute) and are counted apart from logs. */
typedef enum { VR_METRICS = 0, VR_EVENTS, VR_LOGS, VR_TRACES, VR_PROFILES, VR_NSIG } vr_signal_t;

/* "metrics", "events", ...; vr_signal_parse returns -1 for an unknown name. */
const char *vr_signal_name(int s);
int vr_signal_parse(const char *name);

/* A sorted set of malloc'd strings with a cap (adds beyond it are counted in `overflow`). */
typedef struct vr_strset {
    char **v;
    size_t n, cap_alloc;
    size_t limit;      /* 0 = VR_STRSET_DEFAULT_LIMIT */
    uint64_t overflow; /* distinct strings refused because the set was full */
} vr_strset_t;
#define VR_STRSET_DEFAULT_LIMIT 256

/* Adds a copy of s. Returns 1 when added, 0 when present or refused (full or out of memory). */
int vr_strset_add(vr_strset_t *set, const char *s);
int vr_strset_has(const vr_strset_t *set, const char *s);
void vr_strset_fini(vr_strset_t *set);

typedef struct vr_service {
    char *service;
    char *environment; /* "" when the resources carry none */
    uint64_t count[VR_NSIG];
    uint64_t first_ns[VR_NSIG]; /* item timestamps (wall clock when the item has none) */
    uint64_t last_ns[VR_NSIG];
    uint64_t resources;             /* resources (per request) seen for this service */
    unsigned required;              /* bit per vr_signal_t the policy asks for */
    unsigned missing;               /* required and never seen */
    vr_strset_t missing_attributes; /* required resource attributes absent on some resource */
    const char *policy_pattern;     /* the policy entry that applied (borrowed), or NULL */
    int require_slo;                /* the policy asks for an SLO */
} vr_service_t;

#define VR_MAX_EXAMPLES 3
typedef struct vr_violation {
    char *rule;
    char *service;
    uint64_t count;
    char *examples[VR_MAX_EXAMPLES];
    size_t nexamples;
} vr_violation_t;

typedef struct vr_pii {
    char *detector;
    char *service;
    char *where;        /* e.g. "log.body", "span.attributes[user.ssn]"; never the value */
    const char *action; /* what the pipeline's synthetic_guard stages do with it: "redact",
                         * "hash", "drop", "flag" or "none" (a static string) */
    uint64_t count;
} vr_pii_t;

typedef struct vr_slo {
    char *name;
    char *file;                 /* spec file it came from */
    vr_strset_t series;         /* Prometheus series names its SLI reads */
    vr_strset_t missing_series; /* of those, never seen in the input */
} vr_slo_t;

typedef struct vr_slo_cov {
    char *service;
    int seen;        /* the service sent anything */
    int require_slo; /* the policy asks for one */
    vr_slo_t **slos; /* borrowed from the report's SLO list */
    size_t nslos;
} vr_slo_cov_t;

typedef struct vr_metric_preview {
    char *name; /* OTel metric name */
    char *type; /* gauge, sum, histogram, exponential_histogram, summary */
    char *unit;
    vr_strset_t prometheus; /* series names it becomes */
    vr_strset_t labels;     /* label names on those series (without __name__) */
} vr_metric_preview_t;

typedef struct vr_log_preview {
    char *service;
    char *environment;
    vr_strset_t index_labels;        /* Loki stream labels under the default policy */
    vr_strset_t structured_metadata; /* everything else, per record */
} vr_log_preview_t;

typedef struct vr_input_error {
    char *where; /* "FILE:LINE" or "listen" */
    char *message;
} vr_input_error_t;

/* The whole report. Arrays are owned by the report (vr_report_fini frees them). */
typedef struct vr_report {
    int ok;
    int have_policy;
    int have_slo_specs;
    const char *config_path; /* borrowed */
    const char *policy_path; /* borrowed, may be NULL */
    uint64_t requests, items, dropped_by_processors, rejected_requests;
    vr_service_t **services;
    size_t nservices, cap_services;
    vr_violation_t **violations;
    size_t nviolations, cap_violations;
    vr_pii_t **pii;
    size_t npii, cap_pii;
    vr_slo_t **slos;
    size_t nslos, cap_slos;
    vr_slo_cov_t **slo_cov;
    size_t nslo_cov, cap_slo_cov;
    vr_metric_preview_t **metrics;
    size_t nmetrics, cap_metrics;
    vr_strset_t target_info_labels;
    vr_log_preview_t **logs;
    size_t nlogs, cap_logs;
    vr_input_error_t **input_errors;
    size_t ninput_errors, cap_input_errors;
} vr_report_t;

/* Caps on what one report holds: beyond them new entries are merged or refused (and the
 * refusal is counted), so a hostile or huge input cannot grow the report without bound. */
#define VR_MAX_SERVICES     10000
#define VR_MAX_VIOLATIONS   10000
#define VR_MAX_PII          10000
#define VR_MAX_METRICS      2000
#define VR_MAX_INPUT_ERRORS 100

void vr_report_init(vr_report_t *r);
void vr_report_fini(vr_report_t *r);

/* Finds or adds; return NULL when out of memory or over the cap. */
vr_service_t *vr_service_get(vr_report_t *r, const char *service, const char *environment);
vr_violation_t *vr_violation_get(vr_report_t *r, const char *rule, const char *service);
vr_pii_t *vr_pii_get(vr_report_t *r, const char *detector, const char *service, const char *where,
                     const char *action);
vr_metric_preview_t *vr_metric_get(vr_report_t *r, const char *name, const char *type,
                                   const char *unit);
vr_log_preview_t *vr_log_get(vr_report_t *r, const char *service, const char *environment);
vr_slo_t *vr_slo_add(vr_report_t *r, const char *name, const char *file);
vr_slo_cov_t *vr_slo_cov_get(vr_report_t *r, const char *service);
void vr_input_error(vr_report_t *r, const char *where, const char *message);
/* Adds an example (copied) to a violation unless it already holds VR_MAX_EXAMPLES. */
void vr_violation_example(vr_violation_t *v, const char *example);

/* Sorts every list into its report order (services by name then environment, ...). */
void vr_report_sort(vr_report_t *r);

typedef enum {
    VR_FMT_TEXT = 0,
    VR_FMT_JSON,
    VR_FMT_MARKDOWN,
    VR_FMT_JUNIT,
    VR_FMT_HTML
} vr_format_t;
/* Returns the format for a name, or -1. */
int vr_format_parse(const char *name);

/* Writes the report to f. Returns 0, or -1 when out of memory or on a write error. */
int vr_report_write(const vr_report_t *r, vr_format_t fmt, FILE *f);

#endif
