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

/* A counter family per service, metric{<base labels>,service="..."}: the first max_services
 * services get their own series, the rest share service="_other" so a hostile sender cannot
 * grow the registry without bound. meltp_events_total above is one; the Loki exporter's
 * meltp_events_received_total{exporter} another. Counters are looked up once per new service
 * (under a mutex, as tm_counter takes the registry's); thread-safe. */
typedef struct events_counter events_counter_t;
typedef enum {
    EVENTS_LABEL_ASCII, /* label value keeps printable ASCII; anything else becomes '_' */
    EVENTS_LABEL_UTF8,  /* keeps UTF-8 and control bytes; only '"', '\\' and newline become '_' */
} events_label_t;
/* base_labels may be "" (copied); metric and help must outlive the counter. NULL on OOM. */
events_counter_t *events_counter_create(const char *metric, const char *help,
                                        const char *base_labels, size_t max_services,
                                        events_label_t policy);
/* Adds count for the service svc[0..n) (at most 127 bytes of it name the series). */
void events_counter_add(events_counter_t *ec, const char *svc, size_t n, uint64_t count);
void events_counter_destroy(events_counter_t *ec);

#endif
