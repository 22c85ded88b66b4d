/*
 * pprof_conv.h - profiles between the wire formats Pyroscope speaks and OTLP profiles
 * (v1development): google pprof `profile.proto` -> OTLP and back, the folded text format
 * ("a;b;c 10" lines) -> OTLP, the `name=app{k=v,...}` parameter of Pyroscope's /ingest, and a
 * strict multipart/form-data parser for the bodies Pyroscope SDKs upload. Used by the
 * `pyroscope` receiver and exporter; everything here is pure (no I/O) so unit tests drive it.
 */
#ifndef PPROF_CONV_H
#define PPROF_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "mt.h"
#include "otlp_collector.pb-c.h"
#include "pprof.pb-c.h"

typedef Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest pprof_otlp_req_t;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary pprof_otlp_dict_t;
typedef Opentelemetry__Proto__Profiles__V1development__Profile pprof_otlp_profile_t;

/* Limits checked before the work they bound. */
#define PPROF_MAX_LABELS 64   /* labels in one `name` parameter */
#define PPROF_MAX_FRAMES 4096 /* frames in one folded stack */
#define PPROF_MAX_PARTS  8    /* parts in one multipart body */

typedef struct pprof_label {
    const char *key;
    const char *value;
} pprof_label_t;

/* What the /ingest query string says about a profile. Strings are borrowed. */
typedef struct pprof_meta {
    const char *app;             /* -> resource service.name (required) */
    const pprof_label_t *labels; /* -> resource attributes */
    size_t nlabels;
    uint64_t from_ns, until_ns; /* 0 = not given */
    const char *spy_name;       /* -> resource pyroscope.spy_name; NULL = not given */
    int64_t sample_rate;        /* Hz, folded only (period = 1e9 / rate); <= 0 -> 100 */
    const char *units;          /* folded only: samples|objects|bytes; NULL = samples */
    const char *aggregation;    /* folded only: sum|average; NULL = sum */
    const uint8_t *original;    /* pprof exactly as received (gzip or not), kept as
                                    * Profile.original_payload (format "pprof"); may be NULL */
    size_t original_len;
} pprof_meta_t;

/* Parses Pyroscope's `app.name{k=v,k2=v2}` into the app name and labels (arena memory).
 * Returns MT_OK, or MT_EINVAL with eb saying what is wrong. */
int pprof_parse_name(const char *name, arena_t *a, char **app, pprof_label_t **labels,
                     size_t *nlabels, mt_errbuf_t *eb);

/* Converts a serialized (uncompressed) pprof Profile into an OTLP ExportProfilesServiceRequest
 * allocated from `a`: one dictionary, one ResourceProfiles, one Profile per pprof sample type
 * (samples whose value for that type is 0 are left out). Every reference is checked (string
 * indices, nonzero unique ids, known location/function/mapping ids, value counts). Returns
 * MT_OK with *out and *nprofiles set, MT_EINVAL with eb naming the problem, MT_ENOMEM. */
int pprof_to_otlp(const uint8_t *pb, size_t len, const pprof_meta_t *m, arena_t *a,
                  pprof_otlp_req_t **out, uint64_t *nprofiles, mt_errbuf_t *eb);

/* Converts folded text ("root;caller;leaf count\n", frames root first) - or, with lines != 0,
 * Pyroscope's `lines` format (one stack per line, each counts 1) - into a request with one
 * Profile. Identical stacks are merged. Same returns as pprof_to_otlp. */
int pprof_folded_to_otlp(const char *text, size_t len, int lines, const pprof_meta_t *m, arena_t *a,
                         pprof_otlp_req_t **out, uint64_t *nprofiles, mt_errbuf_t *eb);

/* Converts one OTLP profile (with the request's dictionary) into a serialized pprof Profile:
 * string_table[0] = "", one sample_type, ids 1..n (only what the samples use), location_id
 * leaf first, sample attributes as labels, links as span_id/trace_id labels. Returns MT_OK
 * with *out malloc'd (caller frees), MT_EINVAL with eb when the profile refers to a missing
 * dictionary entry, MT_ENOMEM. */
int pprof_from_otlp(const pprof_otlp_dict_t *d, const pprof_otlp_profile_t *p, uint8_t **out,
                    size_t *len, mt_errbuf_t *eb);

/* One part of a multipart/form-data body; pointers into the body (name/filename in `a`). */
typedef struct pprof_part {
    const char *name;
    const char *filename; /* "" when absent */
    const uint8_t *data;
    size_t len;
} pprof_part_t;

/* Extracts the boundary from a `multipart/form-data; boundary=...` Content-Type. Returns 1 and
 * writes it (NUL-terminated) into out, or 0 when the Content-Type is not multipart/form-data
 * or has no usable boundary (then *why is set). */
int pprof_multipart_boundary(const char *ctype, char *out, size_t outlen, const char **why);

/* Splits a multipart/form-data body strictly (RFC 7578: CRLF line ends, every part has a
 * Content-Disposition: form-data with a name, a closing delimiter is required). Returns MT_OK
 * with up to PPROF_MAX_PARTS parts, or MT_EINVAL with eb. */
int pprof_multipart_parse(const char *boundary, const uint8_t *body, size_t len, arena_t *a,
                          pprof_part_t *parts, size_t *nparts, mt_errbuf_t *eb);

#endif
