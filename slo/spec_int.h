/*
 * spec_int.h - PRIVATE to the slo/spec module (spec.c, spec_promql.c, spec_native.c,
 * spec_sloth.c, spec_openslo.c, spec_lint.c): the loader state, the types and the helpers its
 * parts share. Other modules use model.h / slo.h and must not include this header.
 */
#ifndef SLO_SPEC_INT_H
#define SLO_SPEC_INT_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

/* `sum [by (l,...)] ((rate|increase)(SELECTOR[WINDOW])) [by (l,...)]`, the only PromQL shape
 * meltp can evaluate in-process. `window_tpl` set: the window must be the Sloth template
 * {{.window}}; otherwise any duration or the template. */
typedef struct {
    slo_selector_t sel;
    char **by;
    size_t nby;
    int has_by;
    int increase;
} agg_query_t;

typedef struct {
    cfg_ctx_t *c;
    const char *file;
    int64_t eval_ms;
    slo_set_t *set;
} ld_t;

/* Per-severity alert settings from a spec (Sloth page_alert/ticket_alert, native page/ticket). */
typedef struct {
    int disable;
    slo_kv_t labels;
    slo_kv_t annotations;
    int64_t for_ms;
    int64_t keep_ms;
} sev_opts_t;

typedef struct {
    char *name;
    slo_kv_t labels;
    slo_kv_t annotations;
    sev_opts_t page, ticket;
} alert_opts_t;

/* Documents are collected first because SLOs reference SLIs and AlertPolicies by name,
 * possibly in other files. */
typedef struct {
    const cfg_node_t *root;
    const char *kind;
    const char *name;
    char *file;
} oslo_doc_t;

typedef struct {
    oslo_doc_t *d;
    size_t n;
    cfg_doc_t **owned;
    size_t nowned;
} oslo_list_t;

/* spec.c */
void *spec_xmalloc(size_t n);
void *spec_xrealloc(void *p, size_t n);
char *spec_xstrdup(const char *s);
char *spec_xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void spec_kv_copy(slo_kv_t *dst, const slo_kv_t *src);
void spec_kv_free(slo_kv_t *kv);
int spec_parse_duration(const char *s, int64_t *out);
const char *spec_scalar(const cfg_node_t *n);
void spec_check_keys(ld_t *L, const cfg_node_t *map, const char *path, const char *const *allowed);
int spec_want_map(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                  const cfg_node_t **out);
const char *spec_get_str(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                         int required);
int spec_get_double(ld_t *L, const cfg_node_t *map, const char *path, const char *key, double *out);
int spec_get_bool(ld_t *L, const cfg_node_t *map, const char *path, const char *key, int *out);
int spec_get_dur(ld_t *L, const cfg_node_t *map, const char *path, const char *key, int64_t *out);
void spec_get_kv(ld_t *L, const cfg_node_t *map, const char *path, const char *key, slo_kv_t *out);
void spec_get_strlist(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                      char ***out, size_t *nout);
void spec_alert_opts_free(alert_opts_t *a);
void spec_tier_finish(slo_spec_t *s, slo_tier_t *t, const alert_opts_t *a, const sev_opts_t *so);
char *spec_default_alert_name(const slo_spec_t *s);
void spec_default_tiers(slo_spec_t *s, const alert_opts_t *a);
void spec_get_sev_opts(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                       sev_opts_t *o, int native);
slo_spec_t *spec_new(ld_t *L, slo_format_t fmt, int line);
/* The top of a native or Sloth document: *service ("service", required) and *svc_labels
 * ("labels"), and the "slos" list returned; NULL (error reported, *svc_labels freed) when
 * "slos" is not a non-empty list. */
const cfg_node_t *spec_doc_slos(ld_t *L, const cfg_node_t *root, const char **service,
                                slo_kv_t *svc_labels);
/* slos[i] when it is a map, with its path "slos[i]" in *path (malloc'd, the caller frees);
 * NULL (error reported) when it is not. */
const cfg_node_t *spec_doc_slo(ld_t *L, const cfg_node_t *slos, size_t i, char **path);
void spec_set_ids(slo_spec_t *s);
void spec_labels_identity_first(slo_spec_t *s);
void spec_set_objective_pct(ld_t *L, slo_spec_t *s, const cfg_node_t *map, const char *path,
                            const char *key);

/* spec_promql.c */
void spec_selector_free(slo_selector_t *s);
int spec_is_name_start(int c);
int spec_is_name_char(int c);
int spec_parse_selector(const char *s, slo_selector_t *out, char *err, size_t errlen);
void spec_agg_free(agg_query_t *q);
int spec_parse_agg_query(const char *s, int window_tpl, agg_query_t *q, char *err, size_t errlen);

/* spec_native.c */
void spec_native_doc(ld_t *L, const cfg_node_t *root);

/* spec_sloth.c */
void spec_sloth_doc(ld_t *L, const cfg_node_t *root);

/* spec_openslo.c */
void spec_oslo_slo(ld_t *L, const oslo_list_t *ol, const oslo_doc_t *d);

/* spec_lint.c */
void spec_lint_spec(ld_t *L, slo_spec_t *s);

#endif
