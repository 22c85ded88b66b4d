/*
 * service.h - one running configuration: components built from a config file, wired into
 * pipelines, started and stopped as a unit. SIGHUP builds a new service and swaps it in.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include "mt.h"
#include "config.h"

typedef struct service service_t;

/* Loads and validates the whole configuration (no socket bound, no file opened). Every
 * problem is added to ctx as "FILE:LINE: path: reason". Returns NULL when there were errors.
 * `text` may be NULL (read `path`), or hold an embedded config named `path`. */
service_t *service_load(const char *path, const char *text, cfg_ctx_t *ctx);
int service_start(service_t *s, mt_errbuf_t *eb);
/* Stops receivers, drains exporter queues for up to the shutdown timeout, frees everything. */
void service_stop_destroy(service_t *s);
/* Fills why and returns 0 when not ready (an exporter failing too long, a queue > 90 % full). */
int service_ready(service_t *s, int64_t failure_ms, double full_ratio, char *why, size_t whylen);
int64_t service_shutdown_timeout_ms(const service_t *s);

/* The queue of exporter `exporter_id` in the first pipeline of signal `sig`, or NULL (for
 * components that produce data themselves, like the SLO engine's series). Push into it with
 * exq_reserve + exq_push_reserved (component.h). Valid while the service runs. */
struct exq;
struct exq *service_exporter_queue(service_t *s, const char *exporter_id, mt_signal_t sig);
/* The first pipeline of a signal in config order (its mutating processors, in order), or NULL.
 * Validation mode runs these instances on recorded input without starting the service. */
const struct pipeline *service_first_pipeline(const service_t *s, mt_signal_t sig);
int service_has_exporter(const service_t *s, const char *exporter_id);

/* ---- reload (SIGHUP), from the main thread ----
 * 1. listener_stage_begin(); 2. service_reload_start(ns, old): starts ns beside old, taking
 * over old's unchanged exporters (object, queues, workers) and the listeners of addresses
 * both use (staged: old still serves everything); on failure service_stop_destroy(ns) and
 * listener_stage_end() leave old untouched. 3. service_reload_commit(ns, old): swaps every
 * listener to ns at once, waits for old's requests in flight, hands changed exporters'
 * queues to their successors, drains removed exporters' queues and destroys old. */
int service_reload_start(service_t *ns, service_t *old, mt_errbuf_t *eb);
void service_reload_commit(service_t *ns, service_t *old);
/* Nonzero when exporter `id` exists in both services with the same settings (its YAML, and
 * the file_storage extension it queues in): a reload carries it over as it is. */
int service_exporter_unchanged(const service_t *old, const service_t *ns, const char *id);

#endif
