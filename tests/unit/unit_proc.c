/*
 * unit_proc.c - see unit_proc.h.
 */
#include "unit_proc.h"
#include "otlp.h"
#include "otlp_json.h"

#include <stdlib.h>
#include <string.h>

/* The processor and the document its config may point into live and die together. */
typedef struct unit_proc {
    processor_t pr; /* first: the processor_t * handed out is the unit_proc_t * */
    cfg_doc_t *doc;
} unit_proc_t;

processor_t *unit_proc_create(const char *type, const char *yaml, cfg_ctx_t *c)
{
    cfg_ctx_init(c, "proc.yaml");
    const processor_ops_t *ops = registry_processor(type);
    if (!ops) {
        cfg_error(c, 0, type, "unknown processor type");
        return NULL;
    }
    unit_proc_t *u = calloc(1, sizeof(*u));
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    const char *text = yaml && *yaml ? yaml : "{}";
    u->doc = cfg_load_string("proc.yaml", text, strlen(text), &eb);
    if (!u->doc) {
        cfg_error(c, 0, "", "%s", eb.msg);
        free(u);
        return NULL;
    }
    u->pr.ops = ops;
    u->pr.id = strdup(type);
    u->pr.cfg = calloc(1, ops->cfg_size);
    cfg_apply(c, ops->fields, ops->nfields, u->doc->root, type, u->pr.cfg);
    if (ops->validate) {
        ops->validate(c, u->pr.cfg, type, u->doc->root);
    }
    if (c->nerr) {
        unit_proc_destroy(&u->pr);
        return NULL;
    }
    return &u->pr;
}

void unit_proc_destroy(processor_t *p)
{
    if (!p) {
        return;
    }
    unit_proc_t *u = (unit_proc_t *)p;
    if (p->ops->free_cfg) {
        p->ops->free_cfg(p->cfg);
    }
    cfg_free_fields(p->ops->fields, p->ops->nfields, p->cfg);
    free(p->cfg);
    free(p->id);
    cfg_doc_destroy(u->doc);
    free(u);
}

char *unit_proc_run(processor_t *p, mt_signal_t s, const char *json, int *rc, proc_result_t *r)
{
    arena_t *a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    memset(r, 0, sizeof(*r));
    *rc = MT_ERR;
    ProtobufCMessage *m = otlp_json_decode(otlp_request_desc(s), json, strlen(json), a, &eb);
    if (!m) {
        fprintf(stderr, "    unit_proc_run: %s\n", eb.msg);
        arena_destroy(a);
        return NULL;
    }
    *rc = p->ops->process(p, s, m, a, r);
    size_t len = 0;
    char *out = otlp_json_encode(m, &len);
    arena_destroy(a);
    return out;
}
