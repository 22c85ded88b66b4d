/*
 * proc_validate.c - the `validate` processor: applies a declarative schema file (schema.h) to
 * traces, metrics and logs. Per rule: tag the item, drop it (the client sees partial_success)
 * or reject the request (400 with the rule's message); cardinality rules move points to an
 * overflow series. Violations are counted in meltp_validate_violations_total{rule, service,
 * action}. The schema, with its cardinality state, lives in the processor's config.
 */
#include "component.h"
#include "schema.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct validate_cfg {
    char *schema_file;
    schema_t *schema;
} validate_cfg_t;

static const cfg_field_t validate_fields[] = {
    {"schema_file", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(validate_cfg_t, schema_file), NULL,
     "path of the schema YAML (see configs/schemas/example.yaml)"},
};

static void validate_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    validate_cfg_t *v = cfgp;
    if (!v->schema_file || !*v->schema_file) {
        return; /* required-key error already reported */
    }
    size_t before = c->nerr;
    v->schema = schema_load(v->schema_file, c);
    if (!v->schema && c->nerr == before) {
        cfg_error_key(c, node, path, "schema_file", "cannot load schema");
    }
}

static void validate_free(void *cfgp)
{
    validate_cfg_t *v = cfgp;
    schema_destroy(v->schema);
    v->schema = NULL;
}

/* Hits are summed per (rule, service, action) during a request and counted once at the end:
 * the counter registry is looked up under a mutex, so not once per item. */
#define AGG_MAX 32
typedef struct agg {
    struct {
        schema_hit_t h;
        uint64_t n;
    } e[AGG_MAX];
    size_t n;
} agg_t;

static void agg_flush(agg_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        schema_count_hit_n(&g->e[i].h, g->e[i].n);
    }
    g->n = 0;
}

static void on_hit(void *arg, const schema_hit_t *h)
{
    agg_t *g = arg;
    for (size_t i = 0; i < g->n; i++) {
        /* rule and message point into the schema; service into the request: both live until
         * the flush at the end of process() */
        if (g->e[i].h.rule == h->rule && g->e[i].h.action == h->action &&
            !strcmp(g->e[i].h.service, h->service)) {
            g->e[i].n++;
            return;
        }
    }
    if (g->n == AGG_MAX) {
        agg_flush(g);
    }
    g->e[g->n].h = *h;
    g->e[g->n].n = 1;
    g->n++;
}

static int validate_process(processor_t *pr, mt_signal_t s, ProtobufCMessage *req, arena_t *a,
                            proc_result_t *r)
{
    validate_cfg_t *v = pr->cfg;
    if (!v->schema) {
        return MT_OK;
    }
    agg_t g;
    g.n = 0;
    schema_result_t res;
    int rc = schema_apply(v->schema, s, req, a, on_hit, &g, &res);
    agg_flush(&g);
    if (rc != MT_OK) {
        return rc;
    }
    if (res.reject) {
        r->reject = 1;
        snprintf(r->msg, sizeof(r->msg), "%s", res.msg);
    } else if (res.dropped) {
        r->dropped = res.dropped;
        snprintf(r->msg, sizeof(r->msg), "%s", res.msg);
    }
    return MT_OK;
}

const processor_ops_t processor_validate_ops = {
    .type = "validate",
    .fields = validate_fields,
    .nfields = MT_ARRAY_LEN(validate_fields),
    .cfg_size = sizeof(validate_cfg_t),
    .signals = SIG_TML,
    .help = "check traces, metrics and logs against a schema file: tag, drop or reject "
            "violations; cardinality limits with an overflow series",
    .validate = validate_validate,
    .process = validate_process,
    .free_cfg = validate_free,
};
