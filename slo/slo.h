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
#include <stdio.h>
#include "mt.h"
#include "config.h"

typedef struct slo_engine slo_engine_t;
struct exq;
struct slo_set;

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

/* Serves /api/v1/silences[/ID] (POST, GET, DELETE; silence.h) on the telemetry endpoint:
 * returns the HTTP status with a malloc'd body in *out (content type in *ctype). e may be NULL
 * (no slo section: 404). */
int slo_engine_silences_http(slo_engine_t *e, const char *method, const char *path,
                             const char *body, size_t len, char **out, size_t *outlen,
                             const char **ctype);

/* `meltp slo explain --config`: prints, for tier `tier` of the loaded SLO `spec_id`, one line
 * per route its alert takes (matchers, notifiers, timings) and the inhibit rules that may
 * mute it, each line starting with `indent`. Returns 0, or -1 when there is no such tier. */
int slo_engine_print_routes(slo_engine_t *e, const char *spec_id, size_t tier, FILE *out,
                            const char *indent);

/* The SLOs the engine loaded (model.h), owned by the engine. */
const struct slo_set *slo_engine_specs(const slo_engine_t *e);

/* `meltp slo SUBCOMMAND ...`: argv[0] is "slo". Returns the process exit code. */
int slo_cli_main(int argc, char **argv);

#endif
