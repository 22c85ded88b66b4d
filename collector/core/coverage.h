/*
 * coverage.h - live coverage: meltp_service_items_total{service,environment,signal}, the items
 * meltp accepted per service.name, deployment environment and signal (metrics, events, logs,
 * traces, profiles; a log record with an event name counts as an event). Bounded by
 * service.telemetry.metrics.max_services: items of services past the bound are counted in
 * meltp_service_items_overflow_total{signal}. The pipeline calls coverage_observe() with the
 * encoded batch it queued (after the processors), so what is counted is what was accepted.
 */
#ifndef MELTP_COVERAGE_H
#define MELTP_COVERAGE_H

#include "mt.h"

#include <stddef.h>
#include <stdint.h>

/* Longest service name / environment kept in a label; longer values are cut there. */
#define COVERAGE_NAME_MAX         128
#define COVERAGE_ENV_MAX          64
/* Upper bound of max_services (the table is allocated at start). */
#define COVERAGE_MAX_SERVICES_CAP 100000

/* (Re)configures the table: max_services (service, environment) pairs, 0 = off. Call while no
 * receiver runs (service start); counters already registered keep their values. Returns MT_OK
 * or MT_ENOMEM. */
int coverage_configure(int64_t max_services);
/* Frees the table (process exit, tests). */
void coverage_shutdown(void);

/* Counts an encoded Export<signal>ServiceRequest, per resource. Lock-free after the first
 * item of a (service, environment) pair; no allocation. Malformed bytes count what was read. */
void coverage_observe(mt_signal_t s, const uint8_t *pb, size_t len);
/* Counts a remote-write 1.0 WriteRequest passed through as it came: service = the job label
 * (after the last '/'), environment = deployment_environment_name or deployment_environment. */
void coverage_observe_prw(const uint8_t *pb, size_t len);

#endif
