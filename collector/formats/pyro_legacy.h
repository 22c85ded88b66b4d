/*
 * pyro_legacy.h - how Pyroscope's legacy `/ingest` (server 0.37 and the `og` ingest of current
 * Grafana Pyroscope) names and stores pprof sample types, so that the `pyroscope` receiver and
 * exporter agree with the server. A pprof ingested as `name=app{labels}` is stored per sample
 * type under `app.<display>` (display: `samples` -> `cpu`, `goroutine` -> `goroutines`, ...),
 * only for the types in the server's table (or in a `sample_type_config` part that replaces
 * the table), and cumulative types (alloc_*, contentions, delay) only once a previous profile
 * is known. Folded/lines bodies are stored under `name` verbatim. Pure functions, no I/O.
 */
#ifndef PYRO_LEGACY_H
#define PYRO_LEGACY_H

#include <stddef.h>

/* Most sample types one pprof may carry into a sample_type_config; more are not stored. */
#define PYRO_LEGACY_MAX_TYPES 16

/* One row of the server's default sample-type table (tree.DefaultSampleTypeMapping, v0.37.2). */
typedef struct pyro_legacy_type {
    const char *type;        /* pprof sample type */
    const char *unit;        /* pprof unit meltp gives it when it makes the type up (folded) */
    const char *display;     /* suffix the server appends to the app name */
    const char *units;       /* Pyroscope units (metadata.Units) */
    const char *aggregation; /* "average" or NULL (sum) */
    int sampled;             /* the period gives the sample rate */
} pyro_legacy_type_t;

/* Returns the row for a pprof sample type, or NULL when the server's table has none. */
const pyro_legacy_type_t *pyro_legacy_by_type(const char *type);

/* Returns the row whose display suffix is s[0..len), or NULL. */
const pyro_legacy_type_t *pyro_legacy_by_display(const char *s, size_t len);

/* The sample type a folded/lines profile named `app` gets: when app ends in `.<display>` of a
 * known type (app.cpu, app.alloc_objects, app.inuse_space, ...) that type, so that the name
 * survives pprof ingestion; otherwise the type meltp derives from `units` (samples|objects|
 * bytes -> samples/count, objects/count, space/bytes). Strings are static. */
void pyro_legacy_folded_type(const char *app, const char *units, const char **type,
                             const char **unit);

/* What to send for one pprof whose sample types are types[0..ntypes): the app name
 * app[0..*app_len), cut in *app_len when it ends in `.<display>` of a type the server will
 * append again, and a sample_type_config JSON object naming every type with its display name
 * (the first of two types with one display name wins, as the server would mix them), none
 * cumulative (meltp sends deltas, never a prev_profile). Returns the JSON (malloc'd, caller
 * frees) or NULL when out of memory. */
char *pyro_legacy_plan(const char *app, size_t *app_len, const char *const *types, size_t ntypes);

#endif
