/*
 * events.h - events (log records with an event name) counted per service for self-telemetry.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include <stddef.h>
#include <stdint.h>

/* Counts the events in an encoded ExportLogsServiceRequest into meltp_events_total{service}
 * and returns how many there were. */
uint64_t events_count_logs(const uint8_t *pb, size_t len);
/* Adds n events for a service (svc may be NULL: unknown_service). */
void events_add(const uint8_t *svc, size_t svcn, uint64_t n);

#endif
