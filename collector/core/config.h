/*
 * config.h - YAML configuration for meltp: a loader that turns an OpenTelemetry-Collector-style
 * YAML file into a small read-only node tree (with ${env:VAR} substitution and file:line on
 * every node), and a table-driven binder (cfg_apply) that fills a component's config struct
 * from that tree, applying defaults and collecting every error as "FILE:LINE: path.key: reason".
 * The same tables print --help-config (cfg_print_help).
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mt.h"

/* Limits checked before the work they bound (craft convention 10). */
#define CFG_MAX_FILE_BYTES (16u << 20) /* a config file larger than this is refused */
#define CFG_MAX_DEPTH      128         /* maps/lists nested deeper than this are refused */
#define CFG_MAX_NODES      (1u << 20)  /* nodes after alias expansion ("billion laughs") */

typedef enum { CFG_NODE_NULL, CFG_NODE_SCALAR, CFG_NODE_MAP, CFG_NODE_SEQ } cfg_kind_t;

/* One YAML node. The whole tree is owned by its cfg_doc_t and is read-only. A node reached
 * through a YAML alias (*name) is the same object as its anchor, so the tree is a DAG: walk it,
 * never free or modify parts of it. */
typedef struct cfg_node {
    cfg_kind_t kind;
    int line;                   /* 1-based line of the node */
    char *value;                /* SCALAR: text after ${env:...} substitution, NUL-terminated;
                                 * NULL for other kinds */
    size_t n;                   /* MAP: number of pairs; SEQ: number of items */
    char **keys;                /* MAP: keys (not substituted) */
    int *key_lines;             /* MAP: line of each key */
    struct cfg_node **children; /* MAP: values; SEQ: items */
} cfg_node_t;

/* A loaded document. Only cfg_load_* create one (the allocation carries private state after
 * these fields); `file` is the name given to the loader, `root` is never NULL (an empty document
 * has a CFG_NODE_NULL root). */
typedef struct cfg_doc {
    char *file;
    cfg_node_t *root;
} cfg_doc_t;

/* Parses YAML with libyaml's document API (yaml_parser_load), resolving aliases and `<<` merge
 * keys, into a cfg_node tree.
 * - Plain empty values (`key:`), `~` and `null` become CFG_NODE_NULL; quoted scalars always stay
 *   scalars and keep their text ("" is an empty string, "null" the word null).
 * - In every scalar value (not in keys) `${env:VAR}`, `${env:VAR:-default}`, `${VAR}` and
 *   `${VAR:-default}` are replaced by the environment variable; the default applies only when
 *   the variable is unset (set-but-empty stays empty, as in the OpenTelemetry Collector); an
 *   unset variable without default becomes empty; `$$` is a literal `$`; a lone `$` is kept. `${other:...}` (another
 *   config provider), an invalid variable name or a missing `}` is an error. A default cannot
 *   contain `}`.
 * - Duplicate keys in one map, non-scalar keys, NUL bytes in values, recursive aliases, more than
 *   one document and the limits above are errors.
 * Returns the document (free with cfg_doc_destroy), or NULL with eb filled as
 * "FILE:LINE: reason" (or "FILE:LINE: path: reason" when the error belongs to a key). */
cfg_doc_t *cfg_load_file(const char *path, mt_errbuf_t *eb);
/* Same from memory; `name` is used as FILE in messages and copied into doc->file. */
cfg_doc_t *cfg_load_string(const char *name, const char *text, size_t len, mt_errbuf_t *eb);
/* Frees the document and every node in it. Accepts NULL. */
void cfg_doc_destroy(cfg_doc_t *doc);
/* Returns the value of `key` in `map` (first match), or NULL if absent or `map` is not a map. */
const cfg_node_t *cfg_map_get(const cfg_node_t *map, const char *key);
/* "null", "scalar", "map" or "list". */
const char *cfg_kind_name(cfg_kind_t k);

/* Collects every configuration error (not only the first) as "FILE:LINE: path: reason".
 * `file` is borrowed (usually doc->file) and must outlive the context; errs are owned. */
typedef struct cfg_ctx {
    const char *file;
    char **errs;
    size_t nerr;
} cfg_ctx_t;
void cfg_ctx_init(cfg_ctx_t *c, const char *file);
void cfg_ctx_fini(cfg_ctx_t *c);
/* Appends "FILE:LINE: path: reason". line <= 0 drops ":LINE", an empty or NULL path drops
 * "path: ". If memory runs out the message is logged instead of stored. */
void cfg_error(cfg_ctx_t *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes each collected error on its own line to f. */
/* Line of the value at dotted `key` inside map `node` (or of the deepest map found). */
int cfg_key_line(const cfg_node_t *node, const char *key);
/* cfg_error for "path.key: reason" at the line of that key inside `node`. */
void cfg_error_key(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Unless url is NULL or starts with http:// or https://: cfg_error_key "path.key: "<url>" is
 * not an http:// or https:// URL" (the exporters' endpoint check). */
void cfg_check_http_url(cfg_ctx_t *c, const cfg_node_t *node, const char *path, const char *key,
                        const char *url);
void cfg_ctx_print(const cfg_ctx_t *c, FILE *f);

typedef enum {
    CFG_T_STRING, /* char * (malloc'd)                                   */
    CFG_T_INT,    /* int64_t                                             */
    CFG_T_DOUBLE, /* double                                              */
    CFG_T_BOOL,   /* int (0/1): true/false/yes/no/on/off                 */
    CFG_T_DURATION, /* int64_t milliseconds: "200ms" "5s" "1m" "1h" "1h30m" "0"; Go-style units ns us ms s m h */
    CFG_T_BYTES, /* int64_t bytes: "1024" "64KiB" "20MiB" "1GiB" "10MB" "512k"                    */
    CFG_T_ENUM,  /* int: index of the value in `enums` ("refuse|drop")  */
    CFG_T_STRMAP,  /* cfg_strmap_t: map of string -> string (e.g. headers) */
    CFG_T_STRLIST, /* cfg_strlist_t: list of strings                      */
    CFG_T_NODE,    /* const cfg_node_t *: raw node, the component reads it itself */
} cfg_type_t;
typedef struct {
    size_t n;
    char **keys;
    char **vals;
} cfg_strmap_t;
typedef struct {
    size_t n;
    char **items;
} cfg_strlist_t;

#define CFG_REQUIRED 1u
#define CFG_SECRET   2u /* never printed by help/debug dumps, nor echoed in error messages */

typedef struct cfg_field {
    const char *key; /* dotted path inside the component, e.g. "sending_queue.queue_size" */
    cfg_type_t type;
    const char *def; /* default as YAML text, or NULL = no default (zero) */
    unsigned flags;
    size_t offset;     /* offsetof(struct, member) */
    const char *enums; /* CFG_T_ENUM: "a|b|c" */
    const char *desc;  /* one line for --help-config and docs */
} cfg_field_t;

/* Applies defaults, then the values in `node` (a map, a NULL node or NULL) to the struct `out`,
 * walking nested maps by the dotted keys of the table.
 * - Every field of `out` named in the table is overwritten first (its old content is not read
 *   nor freed): with its default, or zero/NULL/empty when `def` is NULL. Defaults of STRMAP and
 *   STRLIST are YAML flow text ("{a: b}", "[x, y]"); CFG_T_NODE fields have no default.
 * - A map whose prefix is in the table is walked; a NULL node where a map is expected is an empty
 *   map. A null value (`key:`) keeps the default of a scalar field and gives an empty STRMAP or
 *   STRLIST; a null entry of a STRMAP is "".
 * - Unknown keys, wrong node kinds, bad numbers/booleans/enum values/durations/sizes and missing
 *   required keys each add an error "FILE:LINE: path.key: reason" where path is `path` (e.g.
 *   "exporters.otlphttp/tempo", may be NULL or "") + "." + the key. Values of CFG_SECRET fields
 *   are never echoed.
 * CFG_T_NODE values point into the document, which must outlive `out`. Returns the number of
 * errors it added (0 = success); `out` may be partly filled either way, so always call
 * cfg_free_fields. */
int cfg_apply(cfg_ctx_t *c, const cfg_field_t *fields, size_t nfields, const cfg_node_t *node,
              const char *path, void *out);
/* Frees what cfg_apply allocated in `out` (strings, maps, lists) and zeroes those fields. */
void cfg_free_fields(const cfg_field_t *fields, size_t nfields, void *out);
/* Prints the table as "  key (type, default X[, required]): desc" lines, for --help-config.
 * Fields without a default omit ", default X"; secret fields never show their default. */
void cfg_print_help(FILE *f, const cfg_field_t *fields, size_t nfields);
/* The name of a field type as help-config prints it ("string", "duration", ...); static text. */
const char *cfg_type_name(cfg_type_t t);

/* Standalone parsers, also used by components: return MT_OK or MT_EINVAL (out untouched).
 * Duration: Go syntax, a sequence of decimal numbers with units ns, us (or µs), ms, s, m, h, e.g.
 *   "300ms", "1.5h", "1h30m"; a bare "0" is allowed; no sign. Sub-millisecond remainders round
 *   up, so a non-zero duration never becomes 0 ms.
 * Bytes: a non-negative decimal number (fraction allowed, rounded to the nearest byte) with an
 *   optional unit, case-insensitive, optional space before it: B; k/kb, m/mb, g/gb, t/tb are
 *   powers of 1000 (SI); ki/kib, mi/mib, gi/gib, ti/tib are powers of 1024.
 * Bool: true/false, yes/no, on/off, case-insensitive. */
int cfg_parse_duration_ms(const char *s, int64_t *out);
int cfg_parse_bytes(const char *s, int64_t *out);
int cfg_parse_bool(const char *s, int *out);

#endif
