/*
 * proc_guard.h - questions other modules may ask a `synthetic_guard` processor instance without
 * running it: would it find personal data in this value at this place, and what would it do
 * with it. Validation mode scans requests before the processors run and reports, per finding,
 * the action the pipeline's guards take (collector/validate/validate_pii.c). The processor itself is
 * registered as processor_synthetic_guard_ops (component.h).
 */
#ifndef PROC_GUARD_H
#define PROC_GUARD_H

#include <stddef.h>

#include "component.h"
#include "otlp.h"
#include "pii.h"

/* What a guard does with a finding; GUARD_NONE is "no guard acts on it". The values of the
 * four real actions are the processor's own (proc_guard.c indexes its counters with them). */
typedef enum {
    GUARD_REDACT = 0,
    GUARD_HASH,
    GUARD_DROP,
    GUARD_FLAG,
    GUARD_NONE,
} guard_action_t;

/* "redact", "hash", "drop", "flag", "none". */
const char *guard_action_name(guard_action_t a);

/* Where a value sits; the guard scans resource attributes and log bodies only when configured
 * to, item attributes (span, span event, log record, data point) always, nothing else (span
 * names, for one). */
typedef enum {
    GUARD_AT_RESOURCE = 0,
    GUARD_AT_ATTRIBUTE,
    GUARD_AT_LOG_BODY,
    GUARD_AT_OTHER,
} guard_at_t;

/* 1 when pr is a synthetic_guard instance (validated config). */
int guard_is(const processor_t *pr);

/* Detectors of guard pr that report something in s[0..n), a string found at `at`, `depth`
 * levels inside nested arrays / maps (0 = the attribute value or body itself): a PII_BIT set,
 * 0 when pr does not scan there. Allocation-free. */
unsigned guard_finds(const processor_t *pr, guard_at_t at, int depth, const char *s, size_t n);

/* The action guard pr applies to findings of detector k. */
guard_action_t guard_action(const processor_t *pr, pii_kind_t k);

/* 1 when guard pr drops every item of resource r before scanning it (require_synthetic: r is
 * in a listed environment without the synthetic marker). */
int guard_drops_resource(const processor_t *pr,
                         const Opentelemetry__Proto__Resource__V1__Resource *r);

#endif
