/*
 * slo.h - the SLO engine's interface to the rest of meltp. The engine is configured by the
 * top-level `slo:` section of the collector config, sees every accepted request through a
 * pipeline observer, evaluates SLOs in-stream, exports SLO series to metrics exporters, serves
 * GET /api/v1/slos on the telemetry endpoint and sends alerts to notifiers. `meltp slo ...`
 * subcommands (explain, rules, dashboards, test-notify) live behind slo_cli_main().
 */
#ifndef SLO_H
#define SLO_H

#include <stddef.h>
#include "mt.h"
#include "config.h"

typedef struct slo_engine slo_engine_t;
struct exq;

/* Parses and lints the `slo:` section (node is the value of the top-level `slo` key, never
 * NULL here) and every spec file it lists. Every problem goes to `c` as FILE:LINE: path: reason.
 * `config_path` resolves relative spec paths. Returns NULL on errors (or out of memory). */
slo_engine_t *slo_engine_load(const cfg_node_t *node, const char *config_path, cfg_ctx_t *c);

/* The exporter ids `slo.exporters` names (where SLO series go): the service resolves each to
 * its metrics queue and hands the queues to slo_engine_start(). */
size_t slo_engine_exporters(const slo_engine_t *e, char *const **ids);

/* Starts evaluation: registers the pipeline observer, restores state from state_dir, starts
 * the evaluation thread and notifiers. `queues` are the exporter queues of
 * slo_engine_exporters(), in that order; the engine calls nothing in the service.
 * Returns MT_OK or an error with eb filled. */
int slo_engine_start(slo_engine_t *e, struct exq *const *queues, size_t nqueues, mt_errbuf_t *eb);

/* Stops (saves state) and frees. Accepts NULL. */
void slo_engine_stop_destroy(slo_engine_t *e);

/* The GET /api/v1/slos document: malloc'd JSON, length in *len. */
char *slo_engine_api_json(slo_engine_t *e, size_t *len);

/* GET /slo (id NULL: every SLO) and GET /slo/<id> (an instance id, or a spec id for all its
 * groups): a self-contained HTML page (inline CSS and SVG, no scripts). e may be NULL (no
 * `slo:` section). Returns malloc'd HTML (NULL on out of memory), *status 200 or 404. */
char *slo_engine_page_html(slo_engine_t *e, const char *id, size_t *len, int *status);

/* `meltp slo SUBCOMMAND ...`: argv[0] is "slo". Returns the process exit code. */
int slo_cli_main(int argc, char **argv);

#endif
