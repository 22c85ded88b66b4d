/*
 * silence.h - SLO alert silences in Alertmanager's API v2 shape: POST /api/v1/silences
 * ({matchers: [{name, value, isRegex, isEqual}], startsAt, endsAt, createdBy, comment[, id]}),
 * GET /api/v1/silences (the list, each with id and status.state pending|active|expired),
 * GET and DELETE /api/v1/silences/{id} (DELETE expires it, as Alertmanager does). The set is
 * kept in memory behind its own mutex and written to a JSON file in state_dir (tmp, fsync,
 * rename) on every change, and read back at start.
 */
#ifndef SLO_SILENCE_H
#define SLO_SILENCE_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

#define SLO_SILENCE_MAX       1000             /* silences kept (expired ones included) */
#define SLO_SILENCE_MATCHERS  32               /* matchers per silence */
#define SLO_SILENCE_BODY_MAX  16384            /* POST body */
#define SLO_SILENCE_RETENTION (5 * 86400000LL) /* expired silences are forgotten after this */
#define SLO_SILENCE_FILE      "silences.json"
#define SLO_SILENCE_ID_LEN    37 /* UUID text + NUL */

typedef struct slo_silences slo_silences_t;

/* A set persisted at `path` (NULL: in memory only), loaded from it when it exists (an
 * unreadable file is logged and ignored). NULL on out of memory. */
slo_silences_t *slo_silence_create(const char *path);
void slo_silence_destroy(slo_silences_t *s); /* accepts NULL */

/* Serves one request under /api/v1/silences: method, path (after the host) and body.
 * Returns the HTTP status and a malloc'd JSON (or text) body in *out / *outlen (the content
 * type in *ctype). Bad input is a 400 with the reason; nothing is changed then. */
int slo_silence_http(slo_silences_t *s, const char *method, const char *path, const char *body,
                     size_t len, int64_t now_ms, char **out, size_t *outlen, const char **ctype);

/* Ids of the active silences that match l (at most max, into ids); returns how many match. */
size_t slo_silence_match(slo_silences_t *s, const slo_route_labels_t *l, int64_t now_ms,
                         char (*ids)[SLO_SILENCE_ID_LEN], size_t max);

/* How many silences are active at now_ms (0 lets callers skip matching). */
size_t slo_silence_active(slo_silences_t *s, int64_t now_ms);

/* `meltp slo silence ...`: a client of the endpoints above (argv[0] is "silence"). Returns
 * the exit code. */
int slo_silence_cli_main(int argc, char **argv);

#endif
