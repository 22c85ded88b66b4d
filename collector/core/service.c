/*
 * service.c - builds a running collector from a configuration document:
 *   1. load YAML, check the top-level layout;
 *   2. for every receivers/processors/exporters/extensions entry, find its type in the
 *      registry and apply its config table (defaults, unknown keys, types) and validator;
 *   3. check service.pipelines references and signal support;
 *   4. on start: create exporters, one queue per (pipeline, exporter), start workers, start
 *      receivers last so nothing arrives before its queues exist.
 * Stop runs in reverse: receivers first (no new data), then queues drain until the
 * shutdown timeout, then exporters close.
 */
#include "service.h"
#include "coverage.h"
#include "auth.h"
#include "component.h"
#include "listener.h"
#include "server.h"
#include "slo.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

void processor_batch_settings(const processor_t *p, batch_settings_t *bs);
int64_t processor_memory_limit_bytes(const processor_t *p);

typedef struct svc_cfg {
    cfg_strlist_t extensions;
    const cfg_node_t *pipelines;
    char *metrics_address;
    int metrics_level;
    int logs_level;
    int logs_encoding;
    int64_t shutdown_timeout;
    int64_t max_services;
    tls_server_cfg_t metrics_tls;
    char *metrics_auth;
} svc_cfg_t;

static const cfg_field_t svc_fields[] = {
    {"extensions", CFG_T_STRLIST, NULL, 0, offsetof(svc_cfg_t, extensions), NULL,
     "extensions to start"},
    {"pipelines", CFG_T_NODE, NULL, CFG_REQUIRED, offsetof(svc_cfg_t, pipelines), NULL,
     "traces / metrics / logs pipelines (type or type/name)"},
    {"telemetry.metrics.address", CFG_T_STRING, "127.0.0.1:8888", 0,
     offsetof(svc_cfg_t, metrics_address), NULL,
     "host:port serving meltp's own metrics at /metrics (empty = off)"},
    {"telemetry.metrics.level", CFG_T_ENUM, "normal", 0, offsetof(svc_cfg_t, metrics_level),
     "none|basic|normal|detailed", "none turns the metrics endpoint off"},
    {"telemetry.logs.level", CFG_T_ENUM, "info", 0, offsetof(svc_cfg_t, logs_level),
     "error|warn|info|debug", "log level"},
    {"telemetry.logs.encoding", CFG_T_ENUM, "console", 0, offsetof(svc_cfg_t, logs_encoding),
     "console|json", "accepted for compatibility (console only)"},
    {"shutdown_timeout", CFG_T_DURATION, "10s", 0, offsetof(svc_cfg_t, shutdown_timeout), NULL,
     "how long SIGTERM/SIGINT wait for queues to drain (meltp extension)"},
    {"telemetry.metrics.max_services", CFG_T_INT, "1000", 0, offsetof(svc_cfg_t, max_services),
     NULL, "most (service, environment) pairs in meltp_service_items_total (0 = off)"},
    TLS_SERVER_FIELDS("telemetry.metrics.", svc_cfg_t, metrics_tls),
    {"telemetry.metrics.auth.authenticator", CFG_T_STRING, "", 0, offsetof(svc_cfg_t, metrics_auth),
     NULL,
     "id of a bearertokenauth or basicauth extension guarding /metrics and /api/v1/* (401 "
     "without valid credentials)"},
};

struct service {
    cfg_doc_t *doc;
    svc_cfg_t cfg;
    receiver_t **recvs;
    size_t nrecvs;
    processor_t **procs;
    size_t nprocs;
    exporter_t **exps;
    size_t nexps;
    extension_t **exts;
    size_t nexts;
    pipeline_t **pipes;
    size_t npipes;
    cfg_field_t **merged; /* per exporter: common + own table */
    http_server_t *metrics_srv;
    extension_t *metrics_auth; /* telemetry.metrics.auth.authenticator */
    slo_engine_t *slo;
    int64_t mem_limit;
    int started;
    /* reload: exporters and queues this service uses but another one owns (carried over from
     * the running configuration until the commit, then the other way round), and the queues
     * that succeed one of the running configuration's (started at the handover) */
    exporter_t **foreign_exps;
    size_t nforeign_exps;
    exq_t **foreign_qs;
    size_t nforeign_qs;
    struct succession {
        exq_t *q, *pred;
    } * succ;
    size_t nsucc;
    int retiring; /* replaced by a reload: queues left over are "removed", not "shutdown" */
};

static int is_foreign_exp(const service_t *s, const exporter_t *e)
{
    for (size_t i = 0; i < s->nforeign_exps; i++) {
        if (s->foreign_exps[i] == e) {
            return 1;
        }
    }
    return 0;
}

static int is_foreign_q(const service_t *s, const exq_t *q)
{
    for (size_t i = 0; i < s->nforeign_qs; i++) {
        if (s->foreign_qs[i] == q) {
            return 1;
        }
    }
    return 0;
}

static char *idtype(const char *id)
{
    const char *slash = strchr(id, '/');
    return strndup(id, slash ? (size_t)(slash - id) : strlen(id));
}

static int valid_id(const char *id)
{
    /* ids end up in metric labels and log lines: keep them to a safe alphabet */
    if (strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./") !=
            strlen(id) ||
        strlen(id) > 100) {
        return 0;
    }
    const char *slash = strchr(id, '/');
    if (!*id || id == slash) {
        return 0;
    }
    if (slash && (!slash[1] || strchr(slash + 1, '/'))) {
        return 0;
    }
    return 1;
}

static int key_line(const cfg_node_t *map, size_t i)
{
    return map->key_lines ? map->key_lines[i] : map->line;
}

/* Loads one section (receivers, processors, ...) into instances. `kind` picks the registry. */
enum { K_RECV, K_PROC, K_EXP, K_EXT };

static void load_section(service_t *s, cfg_ctx_t *c, int kind, const char *section)
{
    const cfg_node_t *sec = cfg_map_get(s->doc->root, section);
    if (!sec || sec->kind == CFG_NODE_NULL) {
        return;
    }
    if (sec->kind != CFG_NODE_MAP) {
        cfg_error(c, sec->line, section, "expected a map of component ids");
        return;
    }
    size_t n = sec->n;
    void **arr = calloc(n ? n : 1, sizeof(void *));
    if (kind == K_EXP) {
        s->merged = calloc(n ? n : 1, sizeof(cfg_field_t *));
    }
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = sec->keys[i];
        const cfg_node_t *node = sec->children[i];
        int line = key_line(sec, i);
        char path[256];
        snprintf(path, sizeof(path), "%s.%s", section, id);
        if (!valid_id(id)) {
            cfg_error(c, line, path,
                      "invalid component id (use type or type/name; letters, digits, _ - . only)");
            continue;
        }
        if (node->kind != CFG_NODE_MAP && node->kind != CFG_NODE_NULL) {
            cfg_error(c, node->line, path, "expected a map");
            continue;
        }
        char *type = idtype(id);
        const cfg_field_t *fields = NULL;
        size_t nfields = 0, cfg_size = 0;
        const receiver_ops_t *ro = NULL;
        const processor_ops_t *po = NULL;
        const exporter_ops_t *eo = NULL;
        const extension_ops_t *xo = NULL;
        switch (kind) {
        case K_RECV:
            ro = registry_receiver(type);
            if (ro) {
                fields = ro->fields, nfields = ro->nfields, cfg_size = ro->cfg_size;
            }
            break;
        case K_PROC:
            po = registry_processor(type);
            if (po) {
                fields = po->fields, nfields = po->nfields, cfg_size = po->cfg_size;
            }
            break;
        case K_EXP:
            eo = registry_exporter(type);
            if (eo) {
                cfg_field_t *m = calloc(exporter_common_nfields + eo->nfields, sizeof(*m));
                memcpy(m, exporter_common_fields, exporter_common_nfields * sizeof(*m));
                memcpy(m + exporter_common_nfields, eo->fields, eo->nfields * sizeof(*m));
                s->merged[cnt] = m;
                fields = m, nfields = exporter_common_nfields + eo->nfields;
                cfg_size = eo->cfg_size;
            }
            break;
        default:
            xo = registry_extension(type);
            if (xo) {
                fields = xo->fields, nfields = xo->nfields, cfg_size = xo->cfg_size;
            }
        }
        if (!fields) {
            cfg_error(c, line, path, "unknown %s type \"%s\"",
                      kind == K_RECV   ? "receiver"
                      : kind == K_PROC ? "processor"
                      : kind == K_EXP  ? "exporter"
                                       : "extension",
                      type);
            free(type);
            continue;
        }
        free(type);
        void *cfg = calloc(1, cfg_size);
        cfg_apply(c, fields, nfields, node, path, cfg);
        if (kind == K_RECV) {
            if (ro->validate) {
                ro->validate(c, cfg, path, node);
            }
            receiver_t *r = calloc(1, sizeof(*r));
            r->ops = ro, r->id = strdup(id), r->cfg = cfg;
            arr[cnt++] = r;
        } else if (kind == K_PROC) {
            if (po->validate) {
                po->validate(c, cfg, path, node);
            }
            processor_t *p = calloc(1, sizeof(*p));
            p->ops = po, p->id = strdup(id), p->cfg = cfg;
            arr[cnt++] = p;
        } else if (kind == K_EXP) {
            if (eo->validate) {
                eo->validate(c, cfg, path, node);
            }
            exporter_common_t *cc = cfg;
            const cfg_node_t *sq = cfg_map_get(node, "sending_queue");
            if (eo->default_consumers && !cfg_map_get(sq, "num_consumers")) {
                cc->num_consumers = eo->default_consumers;
            }
            if (cc->num_consumers < 1 || cc->num_consumers > 256) {
                cfg_error_key(c, node, path, "sending_queue.num_consumers", "must be 1..256");
            }
            if (cc->queue_size < 1) {
                cfg_error_key(c, node, path, "sending_queue.queue_size", "must be positive");
            }
            if (cc->multiplier < 1.0) {
                cfg_error_key(c, node, path, "retry_on_failure.multiplier", "must be >= 1");
            }
            if (cc->randomization_factor < 0 || cc->randomization_factor > 1) {
                cfg_error_key(c, node, path, "retry_on_failure.randomization_factor",
                              "must be within 0..1");
            }
            if (cc->timeout <= 0) {
                cfg_error_key(c, node, path, "timeout", "must be positive");
            }
            exporter_t *e = calloc(1, sizeof(*e));
            e->ops = eo, e->id = strdup(id), e->cfg = cfg;
            arr[cnt++] = e;
        } else {
            if (xo->validate) {
                xo->validate(c, cfg, path, node);
            }
            extension_t *x = calloc(1, sizeof(*x));
            x->ops = xo, x->id = strdup(id), x->cfg = cfg;
            arr[cnt++] = x;
        }
    }
    switch (kind) {
    case K_RECV:
        s->recvs = (receiver_t **)arr, s->nrecvs = cnt;
        break;
    case K_PROC:
        s->procs = (processor_t **)arr, s->nprocs = cnt;
        break;
    case K_EXP:
        s->exps = (exporter_t **)arr, s->nexps = cnt;
        break;
    default:
        s->exts = (extension_t **)arr, s->nexts = cnt;
    }
}

#define FIND_BY_ID(arr, n, idv)                               \
    ({                                                        \
        __typeof__(arr[0]) found_ = NULL;                     \
        const char *want_ = (idv);                            \
        for (size_t i_ = 0; i_ < (n); i_++) {                 \
            if (want_ && strcmp((arr)[i_]->id, want_) == 0) { \
                found_ = (arr)[i_];                           \
            }                                                 \
        }                                                     \
        found_;                                               \
    })

static const cfg_node_t *list_node(cfg_ctx_t *c, const cfg_node_t *pn, const char *key,
                                   const char *path, int required)
{
    const cfg_node_t *l = cfg_map_get(pn, key);
    if (!l || l->kind == CFG_NODE_NULL || (l->kind == CFG_NODE_SEQ && l->n == 0)) {
        if (required) {
            cfg_error_key(c, pn, path, key, "at least one is required");
        }
        return NULL;
    }
    if (l->kind != CFG_NODE_SEQ) {
        cfg_error_key(c, pn, path, key, "expected a list");
        return NULL;
    }
    return l;
}

static void build_pipelines(service_t *s, cfg_ctx_t *c)
{
    const cfg_node_t *pl = s->cfg.pipelines;
    if (!pl) {
        return;
    }
    if (pl->kind != CFG_NODE_MAP || pl->n == 0) {
        cfg_error(c, pl->line, "service.pipelines", "expected a map of pipelines");
        return;
    }
    s->pipes = calloc(pl->n, sizeof(pipeline_t *));
    for (size_t i = 0; i < pl->n; i++) {
        const char *id = pl->keys[i];
        const cfg_node_t *pn = pl->children[i];
        char path[256];
        snprintf(path, sizeof(path), "service.pipelines.%s", id);
        char *type = idtype(id);
        int sig = -1;
        for (int k = 0; k < MT_SIG_COUNT; k++) {
            if (strcmp(type, mt_signal_name(k)) == 0) {
                sig = k;
            }
        }
        if (sig < 0) {
            cfg_error(c, key_line(pl, i), path,
                      "unknown pipeline type \"%s\" (valid: traces, metrics, logs, profiles)",
                      type);
            free(type);
            continue;
        }
        free(type);
        if (pn->kind != CFG_NODE_MAP) {
            cfg_error(c, pn->line, path, "expected a map with receivers, processors, exporters");
            continue;
        }
        for (size_t k = 0; k < pn->n; k++) {
            if (strcmp(pn->keys[k], "receivers") && strcmp(pn->keys[k], "processors") &&
                strcmp(pn->keys[k], "exporters")) {
                cfg_error(c, key_line(pn, k), path,
                          "%s: unknown key (valid: receivers, processors, exporters)", pn->keys[k]);
            }
        }
        char path_r[300], path_p[300], path_e[300];
        snprintf(path_r, sizeof(path_r), "%s.receivers", path);
        snprintf(path_p, sizeof(path_p), "%s.processors", path);
        snprintf(path_e, sizeof(path_e), "%s.exporters", path);
        pipeline_t *p = calloc(1, sizeof(*p));
        p->id = strdup(id);
        p->signal = (mt_signal_t)sig;
        s->pipes[s->npipes++] = p;
        char lb[256];
        snprintf(lb, sizeof(lb), "pipeline=\"%s\"", id);
        p->c_refused = tm_counter("meltp_pipeline_refused_items_total",
                                  "Items refused because a queue was full (on_full: refuse).", lb);
        p->c_dropped_proc =
            tm_counter("meltp_pipeline_processor_dropped_items_total",
                       "Items processors removed (clients saw partial_success).", lb);

        const cfg_node_t *rl = list_node(c, pn, "receivers", path, 1);
        for (size_t k = 0; rl && k < rl->n; k++) {
            const char *rid = rl->children[k]->value ? rl->children[k]->value : "";
            receiver_t *r = FIND_BY_ID(s->recvs, s->nrecvs, rid);
            if (!r) {
                cfg_error(c, rl->children[k]->line, path_r, "\"%s\" is not defined under receivers",
                          rid);
                continue;
            }
            if (!(r->ops->signals & SIG_BIT(sig))) {
                cfg_error(c, rl->children[k]->line, path_r, "%s does not support %s", rid,
                          mt_signal_name(sig));
                continue;
            }
            pipeline_t **np = realloc(r->pipes[sig], (r->npipes[sig] + 1) * sizeof(*np));
            np[r->npipes[sig]++] = p;
            r->pipes[sig] = np;
        }
        const cfg_node_t *prl = list_node(c, pn, "processors", path, 0);
        for (size_t k = 0; prl && k < prl->n; k++) {
            const char *pid = prl->children[k]->value ? prl->children[k]->value : "";
            processor_t *pr = FIND_BY_ID(s->procs, s->nprocs, pid);
            if (!pr) {
                cfg_error(c, prl->children[k]->line, path_p,
                          "\"%s\" is not defined under processors", pid);
                continue;
            }
            if (pr->ops->process) {
                processor_t **np = realloc(p->procs, (p->nprocs + 1) * sizeof(*np));
                np[p->nprocs++] = pr;
                p->procs = np;
            }
        }
        const cfg_node_t *el = list_node(c, pn, "exporters", path, 1);
        if (el && el->n > 64) {
            cfg_error_key(c, pn, path, "exporters", "at most 64 exporters per pipeline");
        }
        for (size_t k = 0; el && k < el->n; k++) {
            const char *eid = el->children[k]->value ? el->children[k]->value : "";
            exporter_t *e = FIND_BY_ID(s->exps, s->nexps, eid);
            if (!e) {
                cfg_error(c, el->children[k]->line, path_e, "\"%s\" is not defined under exporters",
                          eid);
                continue;
            }
            if (!(e->ops->signals & SIG_BIT(sig))) {
                cfg_error(c, el->children[k]->line, path_e, "%s does not support %s", eid,
                          mt_signal_name(sig));
            }
        }
    }
}

static int ext_listed(const service_t *s, const char *id)
{
    for (size_t k = 0; k < s->cfg.extensions.n; k++) {
        if (strcmp(s->cfg.extensions.items[k], id) == 0) {
            return 1;
        }
    }
    return 0;
}

/* sending_queue.storage names a file_storage extension that service.extensions starts. */
static void check_storage_refs(service_t *s, cfg_ctx_t *c)
{
    const cfg_node_t *sec = cfg_map_get(s->doc->root, "exporters");
    for (size_t i = 0; i < s->nexps; i++) {
        const char *id = exporter_common(s->exps[i])->storage;
        if (!id || !*id) {
            continue;
        }
        char path[256];
        snprintf(path, sizeof(path), "exporters.%s", s->exps[i]->id);
        const cfg_node_t *node = cfg_map_get(sec, s->exps[i]->id);
        const char *dir;
        int fsync;
        extension_t *x = FIND_BY_ID(s->exts, s->nexts, id);
        if (!x) {
            cfg_error_key(c, node, path, "sending_queue.storage",
                          "\"%s\" is not defined under extensions", id);
        } else if (file_storage_settings(x, &dir, &fsync) != MT_OK) {
            cfg_error_key(c, node, path, "sending_queue.storage",
                          "\"%s\" is not a file_storage extension", id);
        } else if (!ext_listed(s, id)) {
            cfg_error_key(c, node, path, "sending_queue.storage",
                          "extension \"%s\" is not listed in service.extensions", id);
        } else if (!exporter_common(s->exps[i])->queue_enabled) {
            cfg_error_key(c, node, path, "sending_queue.storage",
                          "needs sending_queue.enabled: true");
        }
    }
}

/* The extension an `auth: {authenticator: <id>}` map inside `node` (at `prefix`, "" or e.g.
 * "protocols.http.") names, checked: defined, an authenticator, listed in service.extensions
 * and configured for `use`. NULL when there is no such key or on error (reported). */
static extension_t *resolve_auth(service_t *s, cfg_ctx_t *c, const cfg_node_t *node,
                                 const char *path, const char *prefix, auth_use_t use)
{
    char key[96];
    snprintf(key, sizeof(key), "%sauth.authenticator", prefix);
    const cfg_node_t *at = node;
    for (const char *k = key; at && k;) {
        const char *dot = strchr(k, '.');
        char part[64];
        snprintf(part, sizeof(part), "%.*s", dot ? (int)(dot - k) : (int)strlen(k), k);
        at = cfg_map_get(at, part);
        k = dot ? dot + 1 : NULL;
    }
    if (!at || at->kind != CFG_NODE_SCALAR || !*at->value) {
        return NULL;
    }
    extension_t *x = FIND_BY_ID(s->exts, s->nexts, at->value);
    char why[256];
    if (!x) {
        cfg_error_key(c, node, path, key, "\"%s\" is not defined under extensions", at->value);
    } else if (!auth_is_authenticator(x)) {
        cfg_error_key(c, node, path, key,
                      "\"%s\" is not an authenticator (bearertokenauth or basicauth)", at->value);
    } else if (!ext_listed(s, x->id)) {
        cfg_error_key(c, node, path, key, "extension \"%s\" is not listed in service.extensions",
                      at->value);
    } else if (auth_usable(x, use, why, sizeof(why)) != MT_OK) {
        cfg_error_key(c, node, path, key, "%s", why);
    } else {
        return x;
    }
    return NULL;
}

/* Every receiver's and exporter's auth.authenticator (receivers: also under protocols.http)
 * and the metrics endpoint's, resolved into their auth pointers. */
static void check_auth_refs(service_t *s, cfg_ctx_t *c, const cfg_node_t *svc)
{
    char path[256];
    const cfg_node_t *sec = cfg_map_get(s->doc->root, "receivers");
    for (size_t i = 0; i < s->nrecvs; i++) {
        const cfg_node_t *node = cfg_map_get(sec, s->recvs[i]->id);
        snprintf(path, sizeof(path), "receivers.%s", s->recvs[i]->id);
        s->recvs[i]->auth = resolve_auth(s, c, node, path, "", AUTH_USE_SERVER);
        if (!s->recvs[i]->auth) {
            s->recvs[i]->auth = resolve_auth(s, c, node, path, "protocols.http.", AUTH_USE_SERVER);
        }
        if (!s->recvs[i]->auth) { /* otlp: one authenticator guards both protocols */
            s->recvs[i]->auth = resolve_auth(s, c, node, path, "protocols.grpc.", AUTH_USE_SERVER);
        }
    }
    sec = cfg_map_get(s->doc->root, "exporters");
    for (size_t i = 0; i < s->nexps; i++) {
        snprintf(path, sizeof(path), "exporters.%s", s->exps[i]->id);
        s->exps[i]->auth =
            resolve_auth(s, c, cfg_map_get(sec, s->exps[i]->id), path, "", AUTH_USE_CLIENT);
    }
    s->metrics_auth = resolve_auth(s, c, svc, "service", "telemetry.metrics.", AUTH_USE_SERVER);
}

service_t *service_load(const char *path, const char *text, cfg_ctx_t *c)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    service_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->doc = text ? cfg_load_string(path, text, strlen(text), &eb) : cfg_load_file(path, &eb);
    if (!s->doc) {
        cfg_error(c, 0, "", "%s", eb.msg);
        free(s);
        return NULL;
    }
    const cfg_node_t *root = s->doc->root;
    if (!root || root->kind != CFG_NODE_MAP) {
        cfg_error(c, root ? root->line : 1, "(root)",
                  "expected a map with receivers, exporters and service");
        service_stop_destroy(s);
        return NULL;
    }
    static const char *top[] = {"receivers",  "processors", "exporters", "extensions",
                                "connectors", "service",    "slo"};
    for (size_t i = 0; i < root->n; i++) {
        int ok = 0;
        for (size_t k = 0; k < MT_ARRAY_LEN(top); k++) {
            ok |= strcmp(root->keys[i], top[k]) == 0;
        }
        if (!ok) {
            cfg_error(
                c, key_line(root, i), root->keys[i],
                "unknown key (valid: receivers, processors, exporters, extensions, service, slo)");
        }
    }
    const cfg_node_t *conn = cfg_map_get(root, "connectors");
    if (conn && conn->kind == CFG_NODE_MAP && conn->n > 0) {
        cfg_error(c, conn->line, "connectors", "connectors are not supported yet");
    }
    load_section(s, c, K_RECV, "receivers");
    load_section(s, c, K_PROC, "processors");
    load_section(s, c, K_EXP, "exporters");
    load_section(s, c, K_EXT, "extensions");
    const cfg_node_t *svc = cfg_map_get(root, "service");
    if (!svc) {
        cfg_error(c, root->line, "service", "required");
    } else {
        cfg_apply(c, svc_fields, MT_ARRAY_LEN(svc_fields), svc, "service", &s->cfg);
        if (s->cfg.max_services < 0 || s->cfg.max_services > COVERAGE_MAX_SERVICES_CAP) {
            cfg_error(c, svc->line, "service.telemetry.metrics.max_services",
                      "must be between 0 and %d", COVERAGE_MAX_SERVICES_CAP);
        }
        build_pipelines(s, c);
        /* pipeline_consume reserves in at most 64 queues per request */
        for (size_t i = 0; i < s->nrecvs; i++) {
            for (int k = 0; k < MT_SIG_COUNT; k++) {
                size_t total = 0;
                for (size_t j = 0; j < s->recvs[i]->npipes[k]; j++) {
                    const cfg_node_t *el = cfg_map_get(
                        cfg_map_get(s->cfg.pipelines, s->recvs[i]->pipes[k][j]->id), "exporters");
                    total += el && el->kind == CFG_NODE_SEQ ? el->n : 0;
                }
                if (total > 64) {
                    cfg_error(c, svc->line, "service.pipelines",
                              "receiver %s feeds %zu %s exporters; at most 64", s->recvs[i]->id,
                              total, mt_signal_name(k));
                }
            }
        }
        check_storage_refs(s, c);
        check_auth_refs(s, c, svc);
        for (size_t i = 0; i < s->cfg.extensions.n; i++) {
            if (!FIND_BY_ID(s->exts, s->nexts, s->cfg.extensions.items[i])) {
                cfg_error(c, svc->line, "service.extensions",
                          "\"%s\" is not defined under extensions", s->cfg.extensions.items[i]);
            }
        }
        if (s->cfg.metrics_address && *s->cfg.metrics_address && s->cfg.metrics_level != 0) {
            char host[256];
            int port;
            if (http_parse_endpoint(s->cfg.metrics_address, host, sizeof(host), &port, &eb)) {
                cfg_error(c, svc->line, "service.telemetry.metrics.address", "%s", eb.msg);
            }
            tls_server_cfg_check(c, svc, "service", "telemetry.metrics.", &s->cfg.metrics_tls);
            if (s->cfg.metrics_tls.tenants_from_certificate.n) {
                cfg_error_key(c, svc, "service", "telemetry.metrics.tls.tenants_from_certificate",
                              "applies to receivers only");
            }
        }
    }
    const cfg_node_t *slo_node = cfg_map_get(root, "slo");
    if (slo_node && slo_node->kind != CFG_NODE_NULL) {
        s->slo = slo_engine_load(slo_node, path, c);
    }
    if (c->nerr) {
        service_stop_destroy(s);
        return NULL;
    }
    /* a memory_limiter in any pipeline sets the process-wide limit (the smallest wins); only
     * once every config is known valid: a refused one (spike_limit_mib: -64) would overflow */
    for (size_t i = 0; i < s->nprocs; i++) {
        if (strcmp(s->procs[i]->ops->type, "memory_limiter") == 0) {
            int64_t l = processor_memory_limit_bytes(s->procs[i]);
            if (!s->mem_limit || l < s->mem_limit) {
                s->mem_limit = l;
            }
        }
    }
    return s;
}

int64_t service_shutdown_timeout_ms(const service_t *s)
{
    return s->cfg.shutdown_timeout;
}

exq_t *service_exporter_queue(service_t *s, const char *exporter_id, mt_signal_t sig)
{
    for (size_t i = 0; i < s->npipes; i++) {
        if (s->pipes[i]->signal != sig) {
            continue;
        }
        for (size_t k = 0; k < s->pipes[i]->nqueues; k++) {
            if (strcmp(exq_exporter(s->pipes[i]->queues[k])->id, exporter_id) == 0) {
                return s->pipes[i]->queues[k];
            }
        }
    }
    return NULL;
}

const pipeline_t *service_first_pipeline(const service_t *s, mt_signal_t sig)
{
    for (size_t i = 0; i < s->npipes; i++) {
        if (s->pipes[i]->signal == sig) {
            return s->pipes[i];
        }
    }
    return NULL;
}

int service_has_exporter(const service_t *s, const char *exporter_id)
{
    for (size_t i = 0; i < s->nexps; i++) {
        if (strcmp(s->exps[i]->id, exporter_id) == 0) {
            return 1;
        }
    }
    return 0;
}

/* GET /api/v1/ledger: one entry per exporter queue (exporter, pipeline, signal) with
 * accepted, sent, dropped{reason} and queued items, each copied under its queue's lock so
 * accepted = sent + dropped + queued holds in every entry. */
static char *ledger_json(service_t *s, size_t *len)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    json_object_set_new(root, "exporters", arr);
    for (size_t i = 0; i < s->npipes; i++) {
        for (size_t k = 0; k < s->pipes[i]->nqueues; k++) {
            exq_t *q = s->pipes[i]->queues[k];
            exq_ledger_t l;
            exq_ledger(q, &l);
            json_t *e = json_object();
            json_t *d = json_object();
            uint64_t dropped = 0;
            for (size_t r = 0; r < l.ndropped; r++) {
                json_object_set_new(d, l.dropped[r].reason,
                                    json_integer((json_int_t)l.dropped[r].items));
                dropped += l.dropped[r].items;
            }
            json_object_set_new(e, "exporter", json_string(exq_exporter(q)->id));
            json_object_set_new(e, "pipeline", json_string(exq_pipeline_id(q)));
            json_object_set_new(e, "signal", json_string(mt_signal_name(exq_signal(q))));
            json_object_set_new(e, "accepted", json_integer((json_int_t)l.accepted));
            json_object_set_new(e, "sent", json_integer((json_int_t)l.sent));
            json_object_set_new(e, "dropped", json_integer((json_int_t)dropped));
            json_object_set_new(e, "dropped_by_reason", d);
            json_object_set_new(e, "queued", json_integer((json_int_t)l.queued));
            json_array_append_new(arr, e);
        }
    }
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    *len = out ? strlen(out) : 0;
    return out;
}

/* The shutdown log line: the ledger of every queue once they have stopped. */
static int is_foreign_q(const service_t *s, const exq_t *q);

static void log_ledger(service_t *s)
{
    for (size_t i = 0; i < s->npipes; i++) {
        for (size_t k = 0; k < s->pipes[i]->nqueues; k++) {
            exq_t *q = s->pipes[i]->queues[k];
            if (is_foreign_q(s, q) || exq_handed_over(q)) {
                continue; /* carried into the configuration that replaced this one */
            }
            exq_ledger_t l;
            exq_ledger(q, &l);
            char why[512];
            size_t off = 0;
            uint64_t dropped = 0;
            why[0] = 0;
            for (size_t r = 0; r < l.ndropped && off < sizeof(why); r++) {
                off +=
                    (size_t)snprintf(why + off, sizeof(why) - off, "%s%s=%llu", r ? "," : "",
                                     l.dropped[r].reason, (unsigned long long)l.dropped[r].items);
                dropped += l.dropped[r].items;
            }
            mt_log(MT_LOG_INFO,
                   "ledger%s: exporter=%s pipeline=%s signal=%s accepted=%llu sent=%llu "
                   "dropped=%llu{%s} queued=%llu",
                   s->retiring ? " (removed by a reload)" : "", exq_exporter(q)->id,
                   exq_pipeline_id(q), mt_signal_name(exq_signal(q)),
                   (unsigned long long)l.accepted, (unsigned long long)l.sent,
                   (unsigned long long)dropped, why, (unsigned long long)l.queued);
        }
    }
}

/* GET /slo and /slo/<id>: the SLO status page (slo/engine_page.c). No scripts, so the policy
 * allows inline styles only. */
static void slo_page(service_t *s, http_req_t *r)
{
    static const char *const hdrs[] = {"Content-Security-Policy",
                                       "default-src 'none'; style-src 'unsafe-inline'; "
                                       "img-src data:; base-uri 'none'; form-action 'none'",
                                       "X-Content-Type-Options", "nosniff", NULL};
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        http_respond(r, 405, "text/plain", "use GET\n", 8, "Allow", "GET, HEAD");
        return;
    }
    size_t len = 0;
    int status = 200;
    char *body =
        slo_engine_page_html(s->slo, r->path[4] == '/' ? r->path + 5 : NULL, &len, &status);
    if (!body) {
        http_respond(r, 503, "text/plain", "out of memory\n", 14, NULL, NULL);
        return;
    }
    http_respond_headers(r, status, "text/html; charset=utf-8", body, len, hdrs);
    free(body);
}

/* /api/v1/silences[/ID] on the telemetry endpoint: the SLO engine's silences. */
static void silences_respond(service_t *s, http_req_t *r)
{
    if (r->too_big) {
        http_respond(r, 413, "text/plain", "silence body too large\n", 23, NULL, NULL);
        return;
    }
    char *out = NULL;
    size_t len = 0;
    const char *ctype = "text/plain";
    int st = slo_engine_silences_http(s->slo, r->method, r->path, (const char *)r->body, r->len,
                                      &out, &len, &ctype);
    if (!out) {
        http_respond(r, 503, "text/plain", "out of memory\n", 14, NULL, NULL);
        return;
    }
    http_respond(r, st, ctype, out, len, NULL, NULL);
    free(out);
}

/* Answers once the request is complete, not from begin: libmicrohttpd closes the connection
 * after a response queued before the request was read, and scrapers keep theirs alive. */
static void metrics_complete(void *arg, http_req_t *r)
{
    service_t *s = arg;
    /* silences take POST and DELETE (slo/silence.c answers 405 to other methods) */
    if (strncmp(r->path, "/api/v1/silence", 15) == 0) {
        silences_respond(s, r);
        return;
    }
    /* every other path (/metrics, /api/v1/ledger, /api/v1/slos, /slo) is read-only */
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        http_respond(r, 405, "text/plain", "use GET\n", 8, "Allow", "GET, HEAD");
        return;
    }
    if (strcmp(r->path, "/api/v1/ledger") == 0) {
        size_t len = 0;
        char *body = ledger_json(s, &len);
        if (!body) {
            http_respond(r, 503, "text/plain", "out of memory\n", 14, NULL, NULL);
            return;
        }
        http_respond(r, 200, "application/json", body, len, NULL, NULL);
        free(body);
        return;
    }
    if (strcmp(r->path, "/api/v1/slos") == 0) {
        size_t len = 0;
        char *body = s->slo ? slo_engine_api_json(s->slo, &len) : NULL;
        if (!body) {
            http_respond(r, 200, "application/json", "{\"slos\":[]}", 11, NULL, NULL);
        } else {
            http_respond(r, 200, "application/json", body, len, NULL, NULL);
        }
        free(body);
        return;
    }
    if (strcmp(r->path, "/slo") == 0 || strncmp(r->path, "/slo/", 5) == 0) {
        slo_page(s, r);
        return;
    }
    if (strcmp(r->path, "/metrics") != 0) {
        http_respond(r, 404, "text/plain", "not found; try /metrics\n", 24, NULL, NULL);
        return;
    }
    size_t len = 0;
    char *body = telemetry_render(&len);
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", body ? body : "",
                 body ? len : 0, NULL, NULL);
    free(body);
}

/* Refuses missing or wrong credentials before the body is read (the connection then closes). */
static void metrics_begin(void *arg, http_req_t *r)
{
    service_t *s = arg;
    if (s->metrics_auth) {
        auth_verdict_t v;
        auth_server_check(s->metrics_auth, http_header(r, "Authorization"), &v);
        if (!v.ok) {
            r->challenge = auth_challenge(s->metrics_auth);
            http_respond(r, 401, "text/plain", "unauthenticated\n", 16, NULL, NULL);
        }
    }
}

/* Finds the processor settings a pipeline's queues use. */
static void pipeline_batch_settings(service_t *s, const char *pid, batch_settings_t *bs)
{
    memset(bs, 0, sizeof(*bs));
    const cfg_node_t *pn = cfg_map_get(s->cfg.pipelines, pid);
    const cfg_node_t *prl = cfg_map_get(pn, "processors");
    for (size_t k = 0; prl && prl->kind == CFG_NODE_SEQ && k < prl->n; k++) {
        processor_t *pr = FIND_BY_ID(s->procs, s->nprocs, prl->children[k]->value);
        if (pr && strcmp(pr->ops->type, "batch") == 0) {
            processor_batch_settings(pr, bs);
        }
    }
}

/* Hands the SLO engine the metrics queues of the exporters its `slo.exporters` names. */
static int start_slo(service_t *s, mt_errbuf_t *eb)
{
    char *const *ids;
    size_t n = slo_engine_exporters(s->slo, &ids);
    exq_t **qs = calloc(n ? n : 1, sizeof(*qs));
    if (!qs) {
        mt_failf(eb, "slo: out of memory");
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        qs[i] = service_exporter_queue(s, ids[i], MT_SIG_METRICS);
        if (!qs[i]) {
            mt_failf(eb, "slo.exporters: \"%s\" is not an exporter of a metrics pipeline", ids[i]);
            free(qs);
            return MT_EINVAL;
        }
    }
    int rc = slo_engine_start(s->slo, qs, n, eb);
    free(qs);
    return rc;
}

/* Appends x to a pointer array; returns MT_OK or MT_ENOMEM. */
static int push_ptr(void ***arr, size_t *n, void *x)
{
    void **na = realloc(*arr, (*n + 1) * sizeof(*na));
    if (!na) {
        return MT_ENOMEM;
    }
    na[(*n)++] = x;
    *arr = na;
    return MT_OK;
}

/* Takes the running configuration's exporter with the same id and settings instead of
 * building s->exps[i] anew; its config copy here is freed. Returns 1 when taken. */
static int carry_exporter(service_t *s, service_t *old, size_t i)
{
    exporter_t *e = s->exps[i];
    if (!old || !service_exporter_unchanged(old, s, e->id)) {
        return 0;
    }
    exporter_t *oe = FIND_BY_ID(old->exps, old->nexps, e->id);
    if (push_ptr((void ***)&s->foreign_exps, &s->nforeign_exps, oe) != MT_OK) {
        return 0;
    }
    cfg_free_fields(s->merged[i], exporter_common_nfields + e->ops->nfields, e->cfg);
    free(e->cfg);
    free(e->id);
    free(e);
    s->exps[i] = oe;
    return 1;
}

/* The queue of (pipeline, exporter) in s, or NULL. */
static exq_t *find_queue(const service_t *s, const char *pipe_id, const char *exp_id)
{
    for (size_t i = 0; s && i < s->npipes; i++) {
        if (strcmp(s->pipes[i]->id, pipe_id) != 0) {
            continue;
        }
        for (size_t k = 0; k < s->pipes[i]->nqueues; k++) {
            if (strcmp(exq_exporter(s->pipes[i]->queues[k])->id, exp_id) == 0) {
                return s->pipes[i]->queues[k];
            }
        }
    }
    return NULL;
}

/* The directory of the file_storage extension exporter e of s queues in, or NULL. */
static const char *storage_dir(const service_t *s, exporter_t *e)
{
    const char *id = exporter_common(e)->storage;
    const char *dir = NULL;
    int fsync;
    if (id && *id && file_storage_settings(FIND_BY_ID(s->exts, s->nexts, id), &dir, &fsync) != 0) {
        dir = NULL;
    }
    return dir;
}

/* Builds the queue of exporter e in pipeline p. With `old` (a reload), the running
 * configuration's queue of the same exporter and pipeline is carried over when the exporter
 * itself was (the same object, workers and all), or else succeeded: the new queue starts at
 * the handover, after the old one's batches moved in. A persistent old queue is succeeded
 * only by a queue in the same directory (it shares the store); otherwise it drains at the
 * commit and what it could not send waits on disk. */
static int start_queue(service_t *s, service_t *old, pipeline_t *p, exporter_t *e,
                       const batch_settings_t *bs, mt_errbuf_t *eb)
{
    exq_t *oq = find_queue(old, p->id, e->id);
    if (oq && exq_exporter(oq) == e) {
        if (push_ptr((void ***)&s->foreign_qs, &s->nforeign_qs, oq) != MT_OK) {
            mt_failf(eb, "out of memory");
            return MT_ERR;
        }
        p->queues[p->nqueues++] = oq;
        return MT_OK;
    }
    exq_t *q = exq_create(e, p, p->signal, bs);
    if (!q) {
        mt_failf(eb, "pipeline %s: cannot start exporter %s", p->id, e->id);
        return MT_ERR;
    }
    const char *dir = storage_dir(s, e);
    const char *odir = oq ? storage_dir(old, exq_exporter(oq)) : NULL;
    int succeed = oq && (!exq_persistent(oq) || (dir && odir && strcmp(dir, odir) == 0));
    if (succeed) {
        exq_succeed(q, oq);
    }
    if (dir && !exq_successor_shares_store(q)) {
        const char *d;
        int fsync;
        extension_t *x = FIND_BY_ID(s->exts, s->nexts, exporter_common(e)->storage);
        mt_errbuf_t e2;
        mt_errbuf_clear(&e2);
        if (file_storage_settings(x, &d, &fsync) != MT_OK ||
            exq_open_storage(q, d, fsync, &e2) != MT_OK) {
            mt_failf(eb, "pipeline %s: exporter %s: %s", p->id, e->id, e2.msg);
            exq_destroy(q);
            return MT_ERR;
        }
    }
    if (succeed) {
        struct succession *ns = realloc(s->succ, (s->nsucc + 1) * sizeof(*ns));
        if (!ns) {
            mt_failf(eb, "out of memory");
            exq_destroy(q);
            return MT_ERR;
        }
        s->succ = ns;
        s->succ[s->nsucc++] = (struct succession){q, oq};
    } else if (exq_start(q) != MT_OK) {
        mt_failf(eb, "pipeline %s: cannot start exporter %s", p->id, e->id);
        exq_destroy(q);
        return MT_ERR;
    }
    p->queues[p->nqueues++] = q;
    return MT_OK;
}

/* service_start, or with `old` the first half of a reload (service_reload_start). */
static int start_impl(service_t *s, service_t *old, mt_errbuf_t *eb)
{
    if (!old) { /* a reload applies them at the commit: a failed one changes nothing */
        mt_log_level = s->cfg.logs_level;
        atomic_store(&mt_mem_limit, s->mem_limit);
    }
    for (size_t i = 0; i < s->nexps; i++) {
        if (carry_exporter(s, old, i)) {
            continue;
        }
        exporter_t *e = s->exps[i];
        if (e->ops->create && e->ops->create(e, eb) != MT_OK) {
            mt_errbuf_t e2;
            mt_errbuf_clear(&e2);
            mt_failf(&e2, "exporter %s: %s", e->id, eb->msg);
            *eb = e2;
            return MT_ERR;
        }
    }
    /* file_storage first: persistent queues open their stores (and replay) right below;
     * authenticators too, before anything sends or serves */
    for (size_t i = 0; i < s->nexts; i++) {
        const char *dir;
        int fsync;
        extension_t *x = s->exts[i];
        if (ext_listed(s, x->id) &&
            (file_storage_settings(x, &dir, &fsync) == MT_OK || auth_is_authenticator(x)) &&
            x->ops->start(x, s, eb) != MT_OK) {
            return MT_ERR;
        }
    }
    for (size_t i = 0; i < s->npipes; i++) {
        pipeline_t *p = s->pipes[i];
        batch_settings_t bs;
        pipeline_batch_settings(s, p->id, &bs);
        const cfg_node_t *el = cfg_map_get(cfg_map_get(s->cfg.pipelines, p->id), "exporters");
        p->queues = calloc(el->n, sizeof(exq_t *));
        for (size_t k = 0; k < el->n; k++) {
            exporter_t *e = FIND_BY_ID(s->exps, s->nexps, el->children[k]->value);
            if (start_queue(s, old, p, e, &bs, eb) != MT_OK) {
                return MT_ERR;
            }
        }
    }
    for (size_t i = 0; i < s->nexts; i++) {
        extension_t *x = s->exts[i];
        if (ext_listed(s, x->id) && !x->state && x->ops->start(x, s, eb) != MT_OK) {
            return MT_ERR;
        }
    }
    if (s->cfg.metrics_address && *s->cfg.metrics_address && s->cfg.metrics_level != 0) {
        http_handler_t h = {.begin = metrics_begin, .complete = metrics_complete, .arg = s};
        /* 16 KiB: the largest body here is a silence (POST /api/v1/silences) */
        s->metrics_srv = http_server_listen(s->cfg.metrics_address, 1, 16384, &h,
                                            &s->cfg.metrics_tls, "service.telemetry.metrics", eb);
        if (!s->metrics_srv) {
            return MT_ERR;
        }
        mt_log(MT_LOG_INFO, "self-metrics on %s://%s/metrics",
               tls_server_enabled(&s->cfg.metrics_tls) ? "https" : "http", s->cfg.metrics_address);
    }
    /* on a reload the engine starts at the commit, after the old one saved its state */
    if (!old && s->slo && start_slo(s, eb) != MT_OK) {
        return MT_ERR;
    }
    /* before the receivers: the table is read lock-free while they run */
    if (coverage_configure(s->cfg.metrics_level != 0 ? s->cfg.max_services : 0) != MT_OK) {
        mt_failf(eb, "service.telemetry.metrics.max_services: out of memory");
        return MT_ENOMEM;
    }

    for (size_t i = 0; i < s->nrecvs; i++) {
        receiver_t *r = s->recvs[i];
        int used = 0;
        for (int k = 0; k < MT_SIG_COUNT; k++) {
            used |= r->npipes[k] > 0;
        }
        if (!used) {
            mt_log(MT_LOG_WARN, "receiver %s is not used by any pipeline; not started", r->id);
            continue;
        }
        if (r->ops->start(r, eb) != MT_OK) {
            mt_errbuf_t e2;
            mt_errbuf_clear(&e2);
            mt_failf(&e2, "receiver %s: %s", r->id, eb->msg);
            *eb = e2;
            return MT_ERR;
        }
    }
    s->started = 1;
    return MT_OK;
}

int service_start(service_t *s, mt_errbuf_t *eb)
{
    return start_impl(s, NULL, eb);
}

int service_ready(service_t *s, int64_t failure_ms, double full_ratio, char *why, size_t whylen)
{
    uint64_t now = mt_now_ns();
    for (size_t i = 0; i < s->nexps; i++) {
        uint64_t since = atomic_load(&s->exps[i]->failing_since_ns);
        if (since && now - since > (uint64_t)failure_ms * 1000000ull) {
            snprintf(why, whylen, "exporter %s has been failing for %llu s", s->exps[i]->id,
                     (unsigned long long)((now - since) / 1000000000ull));
            return 0;
        }
    }
    for (size_t i = 0; i < s->npipes; i++) {
        for (size_t k = 0; k < s->pipes[i]->nqueues; k++) {
            double r = exq_fill_ratio(s->pipes[i]->queues[k]);
            if (r > full_ratio) {
                snprintf(why, whylen, "exporter %s queue in pipeline %s is %.0f%% full",
                         exq_exporter(s->pipes[i]->queues[k])->id, s->pipes[i]->id, r * 100);
                return 0;
            }
        }
    }
    return 1;
}

void service_stop_destroy(service_t *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->nrecvs; i++) {
        if (s->recvs[i]->state && s->recvs[i]->ops->stop) {
            s->recvs[i]->ops->stop(s->recvs[i]);
        }
    }
    /* receivers are down: the SLO engine sees no more data; it saves its state and may
     * still push final SLO series into the queues drained below */
    slo_engine_stop_destroy(s->slo);
    s->slo = NULL;
    uint64_t deadline = mt_now_ns() + (uint64_t)s->cfg.shutdown_timeout * 1000000ull;
    for (size_t i = 0; i < s->npipes; i++) {
        for (size_t k = 0; k < s->pipes[i]->nqueues; k++) {
            exq_t *q = s->pipes[i]->queues[k];
            if (is_foreign_q(s, q)) {
                continue;
            }
            if (s->retiring) {
                exq_retire(q, deadline, is_foreign_exp(s, exq_exporter(q)));
            } else {
                exq_stop(q, deadline);
            }
        }
    }
    if (s->started) {
        log_ledger(s);
    }
    /* before the extensions: its authenticator must outlive every request */
    http_server_stop(s->metrics_srv);
    s->metrics_srv = NULL;
    for (size_t i = 0; i < s->nexts; i++) {
        if (s->exts[i]->state && s->exts[i]->ops->stop) {
            s->exts[i]->ops->stop(s->exts[i]);
        }
    }
    for (size_t i = 0; i < s->npipes; i++) {
        for (size_t k = 0; k < s->pipes[i]->nqueues; k++) {
            if (!is_foreign_q(s, s->pipes[i]->queues[k])) {
                exq_destroy(s->pipes[i]->queues[k]);
            }
        }
        free(s->pipes[i]->queues);
        free(s->pipes[i]->procs);
        free(s->pipes[i]->id);
        free(s->pipes[i]);
    }
    free(s->pipes);
    for (size_t i = 0; i < s->nexps; i++) {
        exporter_t *e = s->exps[i];
        if (is_foreign_exp(s, e)) {
            free(s->merged[i]); /* the exporter (and its config) lives on in another service */
            continue;
        }
        if (e->ops->destroy) {
            e->ops->destroy(e);
        }
        cfg_free_fields(s->merged[i], exporter_common_nfields + e->ops->nfields, e->cfg);
        free(s->merged[i]);
        free(e->cfg);
        free(e->id);
        free(e);
    }
    free(s->exps);
    free(s->merged);
    free(s->foreign_exps);
    free(s->foreign_qs);
    free(s->succ);
    for (size_t i = 0; i < s->nrecvs; i++) {
        receiver_t *r = s->recvs[i];
        if (r->ops->free_cfg) {
            r->ops->free_cfg(r->cfg);
        }
        cfg_free_fields(r->ops->fields, r->ops->nfields, r->cfg);
        for (int k = 0; k < MT_SIG_COUNT; k++) {
            free(r->pipes[k]);
        }
        free(r->cfg);
        free(r->id);
        free(r);
    }
    free(s->recvs);
    for (size_t i = 0; i < s->nprocs; i++) {
        processor_t *p = s->procs[i];
        if (p->ops->free_cfg) {
            p->ops->free_cfg(p->cfg);
        }
        cfg_free_fields(p->ops->fields, p->ops->nfields, p->cfg);
        free(p->cfg);
        free(p->id);
        free(p);
    }
    free(s->procs);
    for (size_t i = 0; i < s->nexts; i++) {
        extension_t *x = s->exts[i];
        cfg_free_fields(x->ops->fields, x->ops->nfields, x->cfg);
        free(x->cfg);
        free(x->id);
        free(x);
    }
    free(s->exts);
    cfg_free_fields(svc_fields, MT_ARRAY_LEN(svc_fields), &s->cfg);
    cfg_doc_destroy(s->doc);
    free(s);
}

/* ---- reload ------------------------------------------------------------------------------ */

/* Nonzero when two YAML trees say the same thing: same scalars, same lists in order, same
 * maps whatever the key order (lines and anchors do not matter). */
static int node_equal(const cfg_node_t *a, const cfg_node_t *b)
{
    if (!a || !b || a->kind != b->kind || a->n != b->n) {
        return a == b;
    }
    switch (a->kind) {
    case CFG_NODE_NULL:
        return 1;
    case CFG_NODE_SCALAR:
        return strcmp(a->value, b->value) == 0;
    case CFG_NODE_SEQ:
        for (size_t i = 0; i < a->n; i++) {
            if (!node_equal(a->children[i], b->children[i])) {
                return 0;
            }
        }
        return 1;
    case CFG_NODE_MAP:
        for (size_t i = 0; i < a->n; i++) {
            if (!node_equal(a->children[i], cfg_map_get(b, a->keys[i]))) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

int service_exporter_unchanged(const service_t *old, const service_t *ns, const char *id)
{
    const exporter_t *oe = FIND_BY_ID(old->exps, old->nexps, id);
    const exporter_t *ne = FIND_BY_ID(ns->exps, ns->nexps, id);
    if (!oe || !ne) {
        return 0;
    }
    const cfg_node_t *on = cfg_map_get(cfg_map_get(old->doc->root, "exporters"), id);
    const cfg_node_t *nn = cfg_map_get(cfg_map_get(ns->doc->root, "exporters"), id);
    if (!node_equal(on, nn)) {
        return 0;
    }
    /* the same storage id may name another directory now */
    const char *sid = exporter_common((exporter_t *)ne)->storage;
    if (sid && *sid) {
        const cfg_node_t *ox = cfg_map_get(cfg_map_get(old->doc->root, "extensions"), sid);
        const cfg_node_t *nx = cfg_map_get(cfg_map_get(ns->doc->root, "extensions"), sid);
        if (!node_equal(ox, nx)) {
            return 0;
        }
    }
    return 1;
}

int service_reload_start(service_t *ns, service_t *old, mt_errbuf_t *eb)
{
    return start_impl(ns, old, eb);
}

void service_reload_commit(service_t *ns, service_t *old)
{
    /* 1. every kept listener dispatches to the new configuration from now on */
    mt_log_level = ns->cfg.logs_level;
    atomic_store(&mt_mem_limit, ns->mem_limit);
    listener_stage_commit();
    listener_stage_end();
    /* 2. the old receivers end: each waits for the requests that began on it; after this
     * nothing pushes into the old pipelines */
    for (size_t i = 0; i < old->nrecvs; i++) {
        if (old->recvs[i]->state && old->recvs[i]->ops->stop) {
            old->recvs[i]->ops->stop(old->recvs[i]);
        }
    }
    /* 3. the SLO engine: the old one saves its state, the new one restores it */
    slo_engine_stop_destroy(old->slo);
    old->slo = NULL;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (ns->slo && start_slo(ns, &eb) != MT_OK) {
        mt_log(MT_LOG_ERROR, "reload: the SLO engine did not start: %s", eb.msg);
        slo_engine_stop_destroy(ns->slo);
        ns->slo = NULL;
    }
    /* 4. queues: carried ones take their new batch settings; changed exporters' queues hand
     * their batches and ledger to their successors */
    for (size_t i = 0; i < ns->npipes; i++) {
        batch_settings_t bs;
        pipeline_batch_settings(ns, ns->pipes[i]->id, &bs);
        for (size_t k = 0; k < ns->pipes[i]->nqueues; k++) {
            if (is_foreign_q(ns, ns->pipes[i]->queues[k])) {
                exq_set_batch(ns->pipes[i]->queues[k], &bs);
            }
        }
    }
    for (size_t i = 0; i < ns->nsucc; i++) {
        if (exq_handover(ns->succ[i].pred, ns->succ[i].q) != MT_OK) {
            mt_log(MT_LOG_ERROR, "reload: exporter %s: cannot start its queue workers",
                   exq_exporter(ns->succ[i].q)->id);
        }
    }
    /* 5. ownership of what was carried moves to the new service */
    free(old->foreign_exps);
    free(old->foreign_qs);
    old->foreign_exps = ns->foreign_exps;
    old->nforeign_exps = ns->nforeign_exps;
    old->foreign_qs = ns->foreign_qs;
    old->nforeign_qs = ns->nforeign_qs;
    ns->foreign_exps = NULL;
    ns->nforeign_exps = 0;
    ns->foreign_qs = NULL;
    ns->nforeign_qs = 0;
    free(ns->succ);
    ns->succ = NULL;
    ns->nsucc = 0;
    /* 6. what is left of the old one: queues of removed exporters drain (to their backend,
     * until shutdown_timeout; what is left is counted as "removed"), handed-over queues are
     * empty, listeners no longer configured close */
    old->retiring = 1;
    service_stop_destroy(old);
}
