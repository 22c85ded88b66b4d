/*
 * validate_mode.c - `meltp validate`: feeds recorded or live telemetry through the configured
 * processors without exporting it and reports, per service x environment, which signals were
 * seen, where a coverage policy is not met, schema violations, PII findings, SLO coverage and
 * how the data would look in Prometheus and Loki. The report model and its writers live in
 * validate_report.c; this file is the CLI, the policy loader, the input decoders and the
 * analysis walk.
 *
 * How processors run: the service is loaded (service_load validates everything and reports
 * FILE:LINE errors) but never started for file inputs. This file takes the service's own
 * instances of the mutating processors of the FIRST pipeline of each signal (config order,
 * service_first_pipeline()) and calls ops->process() on each request, which is what that
 * pipeline does before its exporter queues. `validate` processors are
 * mirrored by a private schema_t that counts violations with schema_check() just before the
 * processor applies its actions, so validation mode and the inline processor see the same data
 * and report the same counts. With --listen the service runs for real (receivers AND exporters,
 * as configured) and a pipeline observer feeds the report with what the first pipeline
 * delivered; point it at a config whose exporters may receive the traffic.
 */
#include "validate_mode.h"
#include "validate_report.h"
#include "validate_pii.h"

#include "component.h"
#include "service.h"
#include "config.h"
#include "otlp.h"
#include "otlp_json.h"
#include "codec.h"
#include "prw_decode.h"
#include "promconv.h"
#include "schema.h"
#include "pii.h"
#include "model.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Limits checked before the work they bound. */
#define VM_MAX_FILE_BYTES ((size_t)512 << 20)    /* one input file as read from disk */
#define VM_MAX_BODY_BYTES ((size_t)256 << 20)    /* one decompressed input */
#define VM_MAX_REQUEST_ARENA ((size_t)1 << 30)   /* arena for one decoded request */
#define VM_MAX_INPUTS 4096
#define VM_MAX_STAGES 32                         /* processors per pipeline we mirror */
#define VM_MAX_SERIES_SEEN 200000                /* Prometheus names remembered for SLO checks */

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

/* ---- policy ------------------------------------------------------------------------------ */

typedef struct vm_rule {
    char *pattern;
    int exact;          /* no glob characters: the service must appear */
    int score;          /* specificity: exact beats any glob, then more literal characters */
    unsigned signals;   /* bit per vr_signal_t */
    char **attrs;
    size_t nattrs;
    int require_slo;
} vm_rule_t;

typedef struct vm_policy {
    vm_rule_t *rules;
    size_t nrules;
    char **slo_specs;   /* globs, already resolved against the policy file's directory */
    size_t nslo_specs;
    unsigned pii_detectors;
    char **allow_domains;
    size_t nallow;
    char **mrn;
    size_t nmrn;
} vm_policy_t;

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct vm_stage {
    processor_t *pr;    /* the service's instance (first pipeline of the signal) */
    schema_t *schema;   /* mirror of a `validate` processor's schema, or NULL */
} vm_stage_t;

typedef struct vm {
    vr_report_t rep;
    vm_policy_t pol;
    cfg_doc_t *doc;                         /* the config, for processor instances */
    const char *config_path;
    vm_stage_t stages[MT_SIG_COUNT][VM_MAX_STAGES];
    size_t nstages[MT_SIG_COUNT];
    schema_t *extra_schema;                 /* --schema, checked after the processors */
    pii_t *pii;
    deltacum_t *dc;
    vr_strset_t series_seen;                /* Prometheus and OTel metric names seen */
    slo_set_t *slos;                        /* the SLO specs audited, or NULL */
    arena_t *scratch;                       /* promconv output, per request */
    pthread_mutex_t mu;                     /* listen mode: observers run on many threads */
    arena_t *listen_arena;
    uint64_t listen_requests;
} vm_t;

static int is_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static int glob_score(const char *p)
{
    if (!is_glob(p)) {
        return INT_MAX;
    }
    int n = 0;
    for (; *p; p++) {
        n += *p != '*' && *p != '?';
    }
    return n;
}

/* The most specific rule matching `service`, or NULL. Ties go to the earlier rule. */
static const vm_rule_t *policy_match(const vm_policy_t *p, const char *service)
{
    const vm_rule_t *best = NULL;
    for (size_t i = 0; i < p->nrules; i++) {
        const vm_rule_t *r = &p->rules[i];
        int hit = r->exact ? strcmp(r->pattern, service) == 0
                           : fnmatch(r->pattern, service, 0) == 0;
        if (hit && (!best || r->score > best->score)) {
            best = r;
        }
    }
    return best;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static void policy_fini(vm_policy_t *p)
{
    for (size_t i = 0; i < p->nrules; i++) {
        free(p->rules[i].pattern);
        free_strv(p->rules[i].attrs, p->rules[i].nattrs);
    }
    free(p->rules);
    free_strv(p->slo_specs, p->nslo_specs);
    free_strv(p->allow_domains, p->nallow);
    free_strv(p->mrn, p->nmrn);
    memset(p, 0, sizeof(*p));
}

/* `dir` of `path` + "/" + rel, unless rel is absolute. malloc'd. */
static char *resolve_rel(const char *path, const char *rel)
{
    if (rel[0] == '/' || !strchr(path, '/')) {
        return strdup(rel);
    }
    const char *slash = strrchr(path, '/');
    size_t n = (size_t)(slash - path) + 1 + strlen(rel) + 1;
    char *out = malloc(n);
    if (out) {
        snprintf(out, n, "%.*s/%s", (int)(slash - path), path, rel);
    }
    return out;
}

/* Reads a list of scalars (or one scalar) into a malloc'd vector; errors go to c. */
static char **node_strings(cfg_ctx_t *c, const cfg_node_t *n, const char *path, size_t *count)
{
    *count = 0;
    if (!n || n->kind == CFG_NODE_NULL) {
        return NULL;
    }
    if (n->kind == CFG_NODE_SCALAR) {
        char **v = calloc(1, sizeof(*v));
        if (v) {
            v[0] = strdup(n->value);
            *count = 1;
        }
        return v;
    }
    if (n->kind != CFG_NODE_SEQ) {
        cfg_error(c, n->line, path, "expected a list of strings, got a %s", cfg_kind_name(n->kind));
        return NULL;
    }
    char **v = calloc(n->n ? n->n : 1, sizeof(*v));
    for (size_t i = 0; v && i < n->n; i++) {
        const cfg_node_t *it = n->children[i];
        if (it->kind != CFG_NODE_SCALAR || !*it->value) {
            cfg_error(c, it->line, path, "item %zu: expected a non-empty string", i);
            continue;
        }
        v[(*count)++] = strdup(it->value);
    }
    return v;
}

static int key_line(const cfg_node_t *map, size_t i)
{
    return map->key_lines ? map->key_lines[i] : map->line;
}

static void policy_rule(cfg_ctx_t *c, vm_policy_t *p, const char *pattern, int line,
                        const cfg_node_t *n)
{
    char path[512];
    snprintf(path, sizeof(path), "services.%s", pattern);
    if (!*pattern) {
        cfg_error(c, line, "services", "empty service name or glob");
        return;
    }
    if (n->kind != CFG_NODE_MAP && n->kind != CFG_NODE_NULL) {
        cfg_error(c, n->line, path, "expected a map with signals, resource_attributes");
        return;
    }
    vm_rule_t *r = &p->rules[p->nrules++];
    memset(r, 0, sizeof(*r));
    r->pattern = strdup(pattern);
    r->exact = !is_glob(pattern);
    r->score = glob_score(pattern);
    for (size_t i = 0; n->kind == CFG_NODE_MAP && i < n->n; i++) {
        const char *k = n->keys[i];
        const cfg_node_t *v = n->children[i];
        char kp[600];
        snprintf(kp, sizeof(kp), "%s.%s", path, k);
        if (strcmp(k, "signals") == 0) {
            if (v->kind != CFG_NODE_SEQ && v->kind != CFG_NODE_NULL) {
                cfg_error(c, v->line, kp, "expected a list of signals "
                          "(metrics, events, logs, traces, profiles)");
                continue;
            }
            for (size_t j = 0; v->kind == CFG_NODE_SEQ && j < v->n; j++) {
                const cfg_node_t *it = v->children[j];
                int sig = it->kind == CFG_NODE_SCALAR ? vr_signal_parse(it->value) : -1;
                if (sig < 0) {
                    cfg_error(c, it->line, kp,
                              "unknown signal \"%s\" (valid: metrics, events, logs, traces, "
                              "profiles)", it->kind == CFG_NODE_SCALAR ? it->value : "");
                    continue;
                }
                r->signals |= 1u << sig;
            }
        } else if (strcmp(k, "resource_attributes") == 0) {
            r->attrs = node_strings(c, v, kp, &r->nattrs);
        } else if (strcmp(k, "require_slo") == 0) {
            if (v->kind != CFG_NODE_SCALAR || cfg_parse_bool(v->value, &r->require_slo) != MT_OK) {
                cfg_error(c, v->line, kp, "expected true or false");
            }
        } else {
            cfg_error(c, key_line(n, i), kp,
                      "unknown key (valid: signals, resource_attributes, require_slo)");
        }
    }
}

/* Loads the policy file. `c` must be a context made for `file`: every problem is added as
 * POLICY_FILE:LINE: path: reason (a YAML error is printed to stderr as the loader wrote it). */
static int policy_load(const char *file, vm_policy_t *p, cfg_ctx_t *c)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_file(file, &eb);
    if (!doc) {
        fprintf(stderr, "%s\n", eb.msg);
        return MT_EINVAL;
    }
    size_t before = c->nerr;
    const cfg_node_t *root = doc->root;
    if (root->kind != CFG_NODE_MAP) {
        cfg_error(c, root->line, "(root)", "expected a map with services");
        cfg_doc_destroy(doc);
        return MT_EINVAL;
    }
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i];
        const cfg_node_t *v = root->children[i];
        if (strcmp(k, "services") == 0) {
            if (v->kind == CFG_NODE_NULL) {
                continue;
            }
            if (v->kind != CFG_NODE_MAP) {
                cfg_error(c, v->line, "services", "expected a map of service names or globs");
                continue;
            }
            p->rules = calloc(v->n ? v->n : 1, sizeof(*p->rules));
            for (size_t j = 0; p->rules && j < v->n; j++) {
                policy_rule(c, p, v->keys[j], key_line(v, j), v->children[j]);
            }
        } else if (strcmp(k, "slo_specs") == 0) {
            size_t n = 0;
            char **globs = node_strings(c, v, "slo_specs", &n);
            p->slo_specs = calloc(n ? n : 1, sizeof(char *));
            for (size_t j = 0; p->slo_specs && j < n; j++) {
                p->slo_specs[p->nslo_specs++] = resolve_rel(file, globs[j]);
            }
            free_strv(globs, n);
        } else if (strcmp(k, "pii") == 0) {
            if (v->kind != CFG_NODE_MAP && v->kind != CFG_NODE_NULL) {
                cfg_error(c, v->line, "pii", "expected a map with detectors, allow_domains, "
                          "mrn_patterns");
                continue;
            }
            for (size_t j = 0; v->kind == CFG_NODE_MAP && j < v->n; j++) {
                const char *pk = v->keys[j];
                const cfg_node_t *pv = v->children[j];
                char kp[128];
                snprintf(kp, sizeof(kp), "pii.%s", pk);
                if (strcmp(pk, "detectors") == 0) {
                    size_t n = 0;
                    char **names = node_strings(c, pv, kp, &n);
                    for (size_t d = 0; d < n; d++) {
                        int kind = pii_kind_parse(names[d]);
                        if (kind < 0) {
                            cfg_error(c, pv->line, kp, "unknown detector \"%s\" (valid: ssn, "
                                      "card, email, phone, mrn)", names[d]);
                        } else {
                            p->pii_detectors |= PII_BIT(kind);
                        }
                    }
                    free_strv(names, n);
                } else if (strcmp(pk, "allow_domains") == 0) {
                    p->allow_domains = node_strings(c, pv, kp, &p->nallow);
                } else if (strcmp(pk, "mrn_patterns") == 0) {
                    p->mrn = node_strings(c, pv, kp, &p->nmrn);
                } else {
                    cfg_error(c, key_line(v, j), kp,
                              "unknown key (valid: detectors, allow_domains, mrn_patterns)");
                }
            }
        } else {
            cfg_error(c, key_line(root, i), k, "unknown key (valid: services, slo_specs, pii)");
        }
    }
    cfg_doc_destroy(doc);
    return c->nerr > before ? MT_EINVAL : MT_OK;
}

/* ---- SLO specs --------------------------------------------------------------------------- */

/* Prometheus metric names a query text reads: identifiers followed by `{` or `[`, or the whole
 * text when it is a bare name. A heuristic, not a PromQL parser: enough to say "this SLI's
 * series never appeared". */
static void sli_series_from_text(vr_strset_t *out, const char *q)
{
    size_t n = strlen(q);
    if (n && strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") == n &&
        !(q[0] >= '0' && q[0] <= '9')) {
        vr_strset_add(out, q);
        return;
    }
    for (size_t i = 0; i < n;) {
        char ch = q[i];
        int start = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == ':';
        if (!start) {
            if (ch == '"' || ch == '\'') { /* skip label values */
                size_t j = i + 1;
                while (j < n && q[j] != ch) {
                    j += q[j] == '\\' ? 2 : 1;
                }
                i = j + 1;
                continue;
            }
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && ((q[j] >= 'a' && q[j] <= 'z') || (q[j] >= 'A' && q[j] <= 'Z') ||
                         (q[j] >= '0' && q[j] <= '9') || q[j] == '_' || q[j] == ':')) {
            j++;
        }
        size_t k = j;
        while (k < n && q[k] == ' ') {
            k++;
        }
        if (k < n && (q[k] == '{' || q[k] == '[') && j - i < 256) {
            char name[256];
            memcpy(name, q + i, j - i);
            name[j - i] = 0;
            vr_strset_add(out, name);
        }
        if (k < n && q[k] == '{') { /* skip the matchers */
            while (k < n && q[k] != '}') {
                if (q[k] == '"') {
                    k++;
                    while (k < n && q[k] != '"') {
                        k += q[k] == '\\' ? 2 : 1;
                    }
                }
                k++;
            }
        }
        i = k > j ? k : j;
    }
}

/* The series an SLO reads, by name: the query texts imported specs carry (Sloth events,
 * OpenSLO Prometheus queries) and the metric names of the selectors (a histogram is read as
 * NAME_bucket and NAME_count, as the generated rules read it). Span and log SLIs read no
 * Prometheus series: the engine counts those items itself. */
static void sel_series(vr_strset_t *out, const slo_selector_t *sel, const char *suffix)
{
    const char *name = sel->metric;
    for (size_t i = 0; !name && i < sel->nm; i++) {
        if (strcmp(sel->m[i].name, "__name__") == 0 && sel->m[i].op == SLO_MATCH_EQ) {
            name = sel->m[i].value;
        }
    }
    char buf[512];
    if (name && (size_t)snprintf(buf, sizeof(buf), "%s%s", name, suffix) < sizeof(buf)) {
        vr_strset_add(out, buf);
    }
}

static void slo_series(vr_strset_t *out, const slo_spec_t *s)
{
    const slo_sli_t *q = &s->sli;
    const char *texts[] = {q->error_query, q->total_query, q->good_query};
    for (size_t i = 0; i < MT_ARRAY_LEN(texts); i++) {
        if (texts[i]) {
            sli_series_from_text(out, texts[i]);
        }
    }
    if (q->kind == SLO_SLI_RATIO) {
        if (q->has_good) {
            sel_series(out, &q->good, "");
        }
        if (q->has_bad) {
            sel_series(out, &q->bad, "");
        }
        if (q->has_total) {
            sel_series(out, &q->total, "");
        }
    } else if (q->kind == SLO_SLI_LATENCY) {
        sel_series(out, &q->histogram, "_bucket");
        sel_series(out, &q->histogram, "_count");
    }
}

typedef struct slo_owner {
    const char *service; /* borrowed from v->slos */
    vr_slo_t *slo;
} slo_owner_t;

/* Spec globs: the policy's slo_specs plus `slo.specs` of the config (when the config has one).
 * They load through slo/spec.c, the loader the SLO engine uses, so every dialect it reads
 * (meltp/v1, Sloth prometheus/v1, OpenSLO v1, refs across files) is audited the same way.
 * Every problem goes to c, spec problems as SPEC_FILE:LINE: path: reason. */
static void slo_specs_audit(vm_t *v, cfg_ctx_t *c, slo_owner_t **own, size_t *nown)
{
    char **globs = NULL;
    size_t nglobs = 0;
    const cfg_node_t *specs = cfg_map_get(cfg_map_get(v->doc->root, "slo"), "specs");
    size_t nrel = 0;
    char **rel = specs ? node_strings(c, specs, "slo.specs", &nrel) : NULL;
    globs = calloc(nrel + v->pol.nslo_specs + 1, sizeof(char *));
    for (size_t i = 0; globs && i < nrel; i++) {
        globs[nglobs++] = resolve_rel(v->config_path, rel[i]);
    }
    free_strv(rel, nrel);
    for (size_t i = 0; globs && i < v->pol.nslo_specs; i++) {
        globs[nglobs++] = strdup(v->pol.slo_specs[i]);
    }
    for (size_t i = 0; i < nglobs; i++) {
        if (!globs[i]) {
            cfg_error(c, 0, "slo.specs", "out of memory");
        }
    }
    if (!nglobs || c->nerr) {
        free_strv(globs, nglobs);
        return;
    }
    v->rep.have_slo_specs = 1;
    /* paths are already resolved (relative ones against the working directory) */
    if (slo_specs_load((const char *const *)globs, nglobs, NULL, 0, c, &v->slos) != MT_OK) {
        free_strv(globs, nglobs);
        return;
    }
    free_strv(globs, nglobs);
    *own = calloc(v->slos->n ? v->slos->n : 1, sizeof(**own));
    if (!*own) {
        cfg_error(c, 0, "slo.specs", "out of memory");
        return;
    }
    for (size_t i = 0; i < v->slos->n; i++) {
        const slo_spec_t *s = &v->slos->slos[i];
        vr_slo_t *slo = vr_slo_add(&v->rep, s->name, s->file);
        if (!slo) {
            continue;
        }
        (*own)[*nown].service = s->service;
        (*own)[(*nown)++].slo = slo;
        slo->series.limit = 64;
        slo_series(&slo->series, s);
    }
}

/* ---- processors ---------------------------------------------------------------------------- */

/* The schema file a `validate` processor names (its `schema_file` key). Its config struct is
 * private to the processor, so the path is read from the document and opened exactly as the
 * processor opens it (relative to the working directory). */
static const char *validate_schema_path(const cfg_node_t *pnode)
{
    const cfg_node_t *n = cfg_map_get(pnode, "schema_file");
    return n && n->kind == CFG_NODE_SCALAR && *n->value ? n->value : NULL;
}

/* The processor chain of the first pipeline of every signal: the service's own instances (it
 * is loaded, never started, for file inputs), plus a schema mirror for each `validate`. */
static int build_stages(vm_t *v, const service_t *svc, cfg_ctx_t *c)
{
    const cfg_node_t *procs = cfg_map_get(v->doc->root, "processors");
    for (int sig = 0; sig < MT_SIG_COUNT; sig++) {
        const pipeline_t *p = service_first_pipeline(svc, (mt_signal_t)sig);
        for (size_t k = 0; p && k < p->nprocs; k++) {
            processor_t *pr = p->procs[k];
            if (v->nstages[sig] == VM_MAX_STAGES) {
                cfg_error(c, 0, p->id, "more than %d processors", VM_MAX_STAGES);
                return MT_EINVAL;
            }
            vm_stage_t *st = &v->stages[sig][v->nstages[sig]++];
            st->pr = pr;
            if (strcmp(pr->ops->type, "validate") == 0) {
                const char *sf = validate_schema_path(cfg_map_get(procs, pr->id));
                st->schema = sf ? schema_load(sf, c) : NULL;
            }
        }
    }
    return c->nerr ? MT_EINVAL : MT_OK;
}

/* ---- analysis -------------------------------------------------------------------------------- */

static const av_t *attr_get(kv_t **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kvs[i]->key && strcmp(kvs[i]->key, key) == 0) {
            return kvs[i]->value;
        }
    }
    return NULL;
}

static const char *attr_str(kv_t **kvs, size_t n, const char *key)
{
    const av_t *v = attr_get(kvs, n, key);
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
        v->string_value && *v->string_value) {
        return v->string_value;
    }
    return NULL;
}

/* Service and environment of a resource, as the report keys them. */
static void resource_keys(const resource_t *r, const char **service, const char **env)
{
    kv_t **kvs = r ? r->attributes : NULL;
    size_t n = r ? r->n_attributes : 0;
    *service = attr_str(kvs, n, "service.name");
    if (!*service) {
        *service = "unknown_service";
    }
    *env = attr_str(kvs, n, "deployment.environment.name");
    if (!*env) {
        *env = attr_str(kvs, n, "deployment.environment");
    }
    if (!*env) {
        *env = "";
    }
}

/* Finds or creates the service entry and, once per new entry, applies the policy. */
static vr_service_t *service_of(vm_t *v, const char *service, const char *env)
{
    size_t before = v->rep.nservices;
    vr_service_t *s = vr_service_get(&v->rep, service, env);
    if (s && v->rep.nservices > before) {
        const vm_rule_t *r = policy_match(&v->pol, service);
        if (r) {
            s->policy_pattern = r->pattern;
            s->required = r->signals;
            s->require_slo = r->require_slo;
        }
    }
    return s;
}

/* Records that `s` saw a resource: required attributes absent on it are gaps. */
static void check_resource(vm_t *v, vr_service_t *s, const resource_t *r)
{
    s->resources++;
    const vm_rule_t *rule = policy_match(&v->pol, s->service);
    for (size_t i = 0; rule && i < rule->nattrs; i++) {
        const av_t *a = attr_get(r ? r->attributes : NULL, r ? r->n_attributes : 0,
                                 rule->attrs[i]);
        if (!a || a->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET ||
            (a->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
             (!a->string_value || !*a->string_value))) {
            vr_strset_add(&s->missing_attributes, rule->attrs[i]);
        }
    }
}

static void seen(vr_service_t *s, int sig, uint64_t ts, uint64_t n)
{
    if (!n) {
        return;
    }
    if (!ts) {
        ts = mt_wall_ns();
    }
    if (!s->count[sig] || ts < s->first_ns[sig]) {
        s->first_ns[sig] = ts;
    }
    if (!s->count[sig] || ts > s->last_ns[sig]) {
        s->last_ns[sig] = ts;
    }
    s->count[sig] += n;
}

static void analyze_traces(vm_t *v, Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        size_t items = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            items += rs->scope_spans[j]->n_spans;
        }
        if (!items) {
            continue;
        }
        const char *svc, *env;
        resource_keys(rs->resource, &svc, &env);
        vr_service_t *s = service_of(v, svc, env);
        if (!s) {
            continue;
        }
        check_resource(v, s, rs->resource);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                seen(s, VR_TRACES, sp->start_time_unix_nano, 1);
            }
        }
    }
}

/* Loki under its default OTLP policy: these resource attributes become stream (index) labels,
 * everything else is structured metadata. */
static const struct {
    const char *attr, *label;
} loki_index[] = {
    {"service.name", "service_name"},
    {"service.namespace", "service_namespace"},
    {"deployment.environment.name", "deployment_environment"},
    {"deployment.environment", "deployment_environment"},
    {"k8s.namespace.name", "k8s_namespace_name"},
};

static void loki_name(vr_strset_t *set, const char *key)
{
    char buf[256];
    if (promconv_label_name(key, buf, sizeof(buf)) > 0) {
        vr_strset_add(set, buf);
    }
}

static void analyze_logs(vm_t *v, Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[i];
        size_t items = 0;
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            items += rl->scope_logs[j]->n_log_records;
        }
        if (!items) {
            continue;
        }
        const char *svc, *env;
        resource_keys(rl->resource, &svc, &env);
        vr_service_t *s = service_of(v, svc, env);
        if (!s) {
            continue;
        }
        check_resource(v, s, rl->resource);
        kv_t **rkv = rl->resource ? rl->resource->attributes : NULL;
        size_t rn = rl->resource ? rl->resource->n_attributes : 0;
        vr_log_preview_t *lp = vr_log_get(&v->rep, svc, env);
        if (lp) {
            vr_strset_add(&lp->index_labels, "service_name"); /* Loki: unknown_service if unset */
            for (size_t a = 0; a < rn; a++) {
                const char *label = NULL;
                for (size_t x = 0; x < MT_ARRAY_LEN(loki_index); x++) {
                    if (rkv[a]->key && strcmp(rkv[a]->key, loki_index[x].attr) == 0) {
                        label = loki_index[x].label;
                    }
                }
                if (label) {
                    vr_strset_add(&lp->index_labels, label);
                } else if (rkv[a]->key) {
                    loki_name(&lp->structured_metadata, rkv[a]->key);
                }
            }
        }
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            if (lp && sl->scope && sl->scope->name && *sl->scope->name) {
                vr_strset_add(&lp->structured_metadata, "scope_name");
            }
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                int event = (lr->event_name && *lr->event_name) ||
                            attr_get(lr->attributes, lr->n_attributes, "event.name");
                uint64_t ts = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
                seen(s, event ? VR_EVENTS : VR_LOGS, ts, 1);
                if (!lp) {
                    continue;
                }
                if ((lr->severity_text && *lr->severity_text) || lr->severity_number) {
                    vr_strset_add(&lp->index_labels, "level");
                }
                if (lr->trace_id.len) {
                    vr_strset_add(&lp->structured_metadata, "trace_id");
                }
                if (lr->span_id.len) {
                    vr_strset_add(&lp->structured_metadata, "span_id");
                }
                for (size_t a = 0; a < lr->n_attributes; a++) {
                    if (lr->attributes[a]->key) {
                        loki_name(&lp->structured_metadata, lr->attributes[a]->key);
                    }
                }
            }
        }
    }
}

static void analyze_profiles(vm_t *v,
                             Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *req)
{
    for (size_t i = 0; i < req->n_resource_profiles; i++) {
        const Opentelemetry__Proto__Profiles__V1development__ResourceProfiles *rp =
            req->resource_profiles[i];
        size_t items = 0;
        for (size_t j = 0; j < rp->n_scope_profiles; j++) {
            items += rp->scope_profiles[j]->n_profiles;
        }
        if (!items) {
            continue;
        }
        const char *svc, *env;
        resource_keys(rp->resource, &svc, &env);
        vr_service_t *s = service_of(v, svc, env);
        if (!s) {
            continue;
        }
        check_resource(v, s, rp->resource);
        for (size_t j = 0; j < rp->n_scope_profiles; j++) {
            const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp =
                rp->scope_profiles[j];
            for (size_t k = 0; k < sp->n_profiles; k++) {
                seen(s, VR_PROFILES, sp->profiles[k]->time_unix_nano, 1);
            }
        }
    }
}

typedef struct name_ts {
    const char *name;
    const Prometheus__TimeSeries *ts;
} name_ts_t;

static int cmp_name_ts(const void *a, const void *b)
{
    return strcmp(((const name_ts_t *)a)->name, ((const name_ts_t *)b)->name);
}

/* Adds the series named `name` (if the conversion produced any) to the preview entry. */
static int preview_add(vr_metric_preview_t *m, const name_ts_t *idx, size_t n, const char *name)
{
    name_ts_t key = {name, NULL};
    name_ts_t *hit = bsearch(&key, idx, n, sizeof(*idx), cmp_name_ts);
    if (!hit) {
        return 0;
    }
    while (hit > idx && strcmp(hit[-1].name, name) == 0) {
        hit--;
    }
    vr_strset_add(&m->prometheus, name);
    for (; hit < idx + n && strcmp(hit->name, name) == 0; hit++) {
        for (size_t l = 0; l < hit->ts->n_labels; l++) {
            if (strcmp(hit->ts->labels[l]->name, "__name__") != 0) {
                vr_strset_add(&m->labels, hit->ts->labels[l]->name);
            }
        }
    }
    return 1;
}

static const char *metric_type(const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return "gauge";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return "sum";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return "histogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return "exponential_histogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return "summary";
    default:
        return "empty";
    }
}

/* Data points of a metric and the time of its latest one. */
static size_t metric_points(const Opentelemetry__Proto__Metrics__V1__Metric *m, uint64_t *ts)
{
    *ts = 0;
#define PTS(field)                                                                        \
    do {                                                                                  \
        if (m->field) {                                                                   \
            for (size_t p_ = 0; p_ < m->field->n_data_points; p_++) {                     \
                if (m->field->data_points[p_]->time_unix_nano > *ts) {                    \
                    *ts = m->field->data_points[p_]->time_unix_nano;                      \
                }                                                                         \
            }                                                                             \
            return m->field->n_data_points;                                               \
        }                                                                                 \
    } while (0)
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        PTS(gauge);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        PTS(sum);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        PTS(histogram);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        PTS(exponential_histogram);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        PTS(summary);
        break;
    default:
        break;
    }
#undef PTS
    return 0;
}

static void analyze_metrics(vm_t *v,
                            Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req)
{
    /* the Prometheus view of this request, for the preview and the SLO series check */
    promconv_opts_t o;
    memset(&o, 0, sizeof(o));
    o.add_metric_suffixes = 1;
    o.scope_labels = 1;
    o.target_info = 1;
    promconv_out_t out;
    memset(&out, 0, sizeof(out));
    arena_reset(v->scratch);
    name_ts_t *idx = NULL;
    size_t nidx = 0;
    if (promconv_convert(&o, v->dc, req, v->scratch, &out) == MT_OK && out.n_series) {
        idx = arena_alloc(v->scratch, out.n_series * sizeof(*idx));
        for (size_t i = 0; idx && i < out.n_series; i++) {
            const Prometheus__TimeSeries *ts = out.series[i];
            for (size_t l = 0; l < ts->n_labels; l++) {
                if (strcmp(ts->labels[l]->name, "__name__") == 0) {
                    idx[nidx].name = ts->labels[l]->value;
                    idx[nidx++].ts = ts;
                    vr_strset_add(&v->series_seen, ts->labels[l]->value);
                    break;
                }
            }
            int ti = nidx && idx[nidx - 1].ts == ts && strcmp(idx[nidx - 1].name, "target_info") == 0;
            for (size_t l = 0; ti && l < ts->n_labels; l++) {
                if (strcmp(ts->labels[l]->name, "__name__") != 0) {
                    vr_strset_add(&v->rep.target_info_labels, ts->labels[l]->name);
                }
            }
        }
        if (nidx) {
            qsort(idx, nidx, sizeof(*idx), cmp_name_ts);
        }
    }
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
        const char *svc, *env;
        resource_keys(rm->resource, &svc, &env);
        vr_service_t *s = NULL;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[k];
                uint64_t ts;
                size_t n = metric_points(m, &ts);
                if (!n) {
                    continue;
                }
                if (!s) {
                    s = service_of(v, svc, env);
                    if (!s) {
                        return;
                    }
                    check_resource(v, s, rm->resource);
                }
                seen(s, VR_METRICS, ts, n);
                const char *name = m->name ? m->name : "";
                vr_strset_add(&v->series_seen, name);
                vr_metric_preview_t *mp = vr_metric_get(&v->rep, name, metric_type(m),
                                                        m->unit ? m->unit : "");
                if (!mp) {
                    continue;
                }
                int composite =
                    m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM ||
                    m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY ||
                    m->data_case ==
                        OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
                char base[512], cand[540];
                if (promconv_family_name(m, 1, NULL, base, sizeof(base), NULL) < 0) {
                    continue;
                }
                /* the family too: a latency SLI names a histogram by it (slo/promnames.c);
                 * the converted series' own names were added above */
                vr_strset_add(&v->series_seen, base);
                int found = preview_add(mp, idx, nidx, base);
                static const char *suffix[] = {"_bucket", "_sum", "_count"};
                for (size_t x = 0; composite && x < MT_ARRAY_LEN(suffix); x++) {
                    snprintf(cand, sizeof(cand), "%s%s", base, suffix[x]);
                    found |= preview_add(mp, idx, nidx, cand);
                }
                if (!found) {
                    vr_strset_add(&mp->prometheus, base); /* not converted (e.g. dropped) */
                }
            }
        }
    }
}

static void analyze(vm_t *v, mt_signal_t s, ProtobufCMessage *req)
{
    switch (s) {
    case MT_SIG_TRACES:
        analyze_traces(v, (Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *)req);
        break;
    case MT_SIG_METRICS:
        analyze_metrics(v, (Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *)req);
        break;
    case MT_SIG_LOGS:
        analyze_logs(v, (Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest *)req);
        break;
    case MT_SIG_PROFILES:
        analyze_profiles(v,
                         (Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *)req);
        break;
    default:
        break;
    }
}

/* ---- schema violations --------------------------------------------------------------------- */

typedef struct hit_ctx {
    vm_t *v;
    const ProtobufCMessage *req;
} hit_ctx_t;

/* The item a hit points at, by name (span / metric name; never an attribute value). */
static const char *hit_item_name(const hit_ctx_t *h, const schema_hit_t *hit)
{
    if (hit->resource_idx < 0 || hit->scope_idx < 0 || hit->item_idx < 0) {
        return NULL;
    }
    size_t ri = (size_t)hit->resource_idx, si = (size_t)hit->scope_idx;
    size_t ii = (size_t)hit->item_idx;
    if (hit->signal == MT_SIG_TRACES) {
        const Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r = (const void *)h->req;
        if (ri < r->n_resource_spans && si < r->resource_spans[ri]->n_scope_spans &&
            ii < r->resource_spans[ri]->scope_spans[si]->n_spans) {
            return r->resource_spans[ri]->scope_spans[si]->spans[ii]->name;
        }
    } else if (hit->signal == MT_SIG_METRICS) {
        const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r = (const void *)h->req;
        if (ri < r->n_resource_metrics && si < r->resource_metrics[ri]->n_scope_metrics &&
            ii < r->resource_metrics[ri]->scope_metrics[si]->n_metrics) {
            return r->resource_metrics[ri]->scope_metrics[si]->metrics[ii]->name;
        }
    }
    return NULL;
}

static void on_hit(void *arg, const schema_hit_t *hit)
{
    hit_ctx_t *h = arg;
    vr_violation_t *vi = vr_violation_get(&h->v->rep, hit->rule, hit->service);
    if (!vi) {
        return;
    }
    vi->count++;
    if (vi->nexamples >= VR_MAX_EXAMPLES) {
        return;
    }
    /* examples name the item and the attribute, never a value (it may be personal data) */
    char ex[512];
    const char *item = hit_item_name(h, hit);
    const char *kind = hit->signal == MT_SIG_TRACES ? "span"
                     : hit->signal == MT_SIG_METRICS ? "metric"
                     : hit->signal == MT_SIG_LOGS ? "log record" : "item";
    if (hit->item_idx < 0) {
        kind = hit->scope_idx < 0 ? "resource" : "scope";
    }
    int n = item && *item ? snprintf(ex, sizeof(ex), "%s \"%.128s\": ", kind, item)
                          : snprintf(ex, sizeof(ex), "%s #%d: ", kind,
                                     hit->item_idx >= 0 ? hit->item_idx : hit->resource_idx);
    const char *attr = hit->attr && !(item && strcmp(item, hit->attr) == 0) ? hit->attr : NULL;
    snprintf(ex + n, sizeof(ex) - (size_t)n, "%s%s%.200s", hit->what ? hit->what : "violation",
             attr ? " " : "", attr ? attr : "");
    vr_violation_example(vi, ex);
}

static void check_schema(vm_t *v, schema_t *sc, mt_signal_t s, const ProtobufCMessage *req)
{
    if (!sc || !schema_covers(sc, s)) {
        return;
    }
    hit_ctx_t h = {v, req};
    schema_result_t res;
    memset(&res, 0, sizeof(res));
    if (schema_check(sc, s, req, on_hit, &h, &res) != MT_OK) {
        vr_input_error(&v->rep, "schema", "out of memory while checking the schema");
    }
}

/* ---- one request ----------------------------------------------------------------------------- */

/* Runs the mirrored processors on req (in arena a) and analyzes what is left. */
static void run_request(vm_t *v, mt_signal_t s, ProtobufCMessage *req, uint64_t items,
                        arena_t *a, const char *where)
{
    v->rep.requests++;
    v->rep.items += items;
    /* PII as it arrived: after the processors a redacting guard would hide it */
    processor_t *procs[VM_MAX_STAGES];
    for (size_t i = 0; i < v->nstages[s]; i++) {
        procs[i] = v->stages[s][i].pr;
    }
    vp_scan_request(v->pii, &v->rep, s, req, procs, v->nstages[s]);
    for (size_t i = 0; i < v->nstages[s]; i++) {
        vm_stage_t *st = &v->stages[s][i];
        check_schema(v, st->schema, s, req);
        proc_result_t pr;
        memset(&pr, 0, sizeof(pr));
        int rc = st->pr->ops->process(st->pr, s, req, a, &pr);
        if (rc != MT_OK) {
            char msg[400];
            snprintf(msg, sizeof(msg), "processor %s failed: %s", st->pr->id, mt_strerror(rc));
            vr_input_error(&v->rep, where, msg);
            return;
        }
        if (pr.reject) {
            v->rep.rejected_requests++;
            return;
        }
        v->rep.dropped_by_processors += pr.dropped;
    }
    check_schema(v, v->extra_schema, s, req);
    analyze(v, s, req);
}

/* ---- inputs ---------------------------------------------------------------------------------- */

/* Reads a whole file (capped). Returns MT_OK, or an error with eb filled. */
static int slurp(const char *path, uint8_t **out, size_t *len, mt_errbuf_t *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mt_failf(eb, "%s: %s", path, strerror(errno));
        return MT_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        mt_failf(eb, "%s: not a regular file", path);
        fclose(f);
        return MT_EIO;
    }
    if ((uint64_t)st.st_size > VM_MAX_FILE_BYTES) {
        mt_failf(eb, "%s: larger than %zu bytes", path, VM_MAX_FILE_BYTES);
        fclose(f);
        return MT_ETOOBIG;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        mt_failf(eb, "%s: out of memory", path);
        return MT_ENOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(buf);
        mt_failf(eb, "%s: read error", path);
        return MT_EIO;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return MT_OK;
}

/* gzip / zstd by magic bytes; anything else is taken as it is. */
static int maybe_decompress(const uint8_t *in, size_t len, arena_t *a, const uint8_t **out,
                            size_t *out_len, mt_errbuf_t *eb)
{
    codec_t c = CODEC_NONE;
    if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
        c = CODEC_GZIP;
    } else if (len >= 4 && in[0] == 0x28 && in[1] == 0xb5 && in[2] == 0x2f && in[3] == 0xfd) {
        c = CODEC_ZSTD;
    }
    if (c == CODEC_NONE) {
        *out = in;
        *out_len = len;
        return MT_OK;
    }
    uint8_t *o = NULL;
    int rc = codec_decompress(c, in, len, VM_MAX_BODY_BYTES, a, &o, out_len, eb);
    *out = o;
    return rc;
}

static int looks_json(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) {
        i++;
    }
    return i < n && p[i] == '{';
}

/* Decodes one request body (protobuf or JSON) and runs it. */
static void one_body(vm_t *v, mt_signal_t s, const uint8_t *data, size_t len, int json,
                     arena_t *a, const char *where)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *msg = json
        ? otlp_json_decode(otlp_request_desc(s), (const char *)data, len, a, &eb)
        : otlp_unpack(s, data, len, a, &eb);
    if (msg && !json && otlp_validate_utf8(msg, &eb) != MT_OK) {
        msg = NULL;
    }
    uint64_t items = 0;
    if (msg && otlp_check(s, msg, &items, &eb) != MT_OK) {
        msg = NULL;
    }
    if (!msg) {
        char m[700];
        snprintf(m, sizeof(m), "invalid OTLP %s %s: %s", mt_signal_name(s),
                 json ? "JSON" : "protobuf", eb.msg);
        vr_input_error(&v->rep, where, m);
        return;
    }
    if (items) {
        run_request(v, s, msg, items, a, where);
    }
}

/* Which signal a file-exporter line holds: its first key (resourceSpans, ...). */
static int line_signal(const char *p, size_t n)
{
    static const struct {
        const char *camel, *snake;
        mt_signal_t s;
    } keys[] = {
        {"\"resourceSpans\"", "\"resource_spans\"", MT_SIG_TRACES},
        {"\"resourceMetrics\"", "\"resource_metrics\"", MT_SIG_METRICS},
        {"\"resourceLogs\"", "\"resource_logs\"", MT_SIG_LOGS},
        {"\"resourceProfiles\"", "\"resource_profiles\"", MT_SIG_PROFILES},
    };
    size_t i = 0;
    while (i < n && p[i] != '{') {
        i++;
    }
    i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    for (size_t k = 0; k < MT_ARRAY_LEN(keys); k++) {
        size_t a = strlen(keys[k].camel), b = strlen(keys[k].snake);
        if ((n - i >= a && memcmp(p + i, keys[k].camel, a) == 0) ||
            (n - i >= b && memcmp(p + i, keys[k].snake, b) == 0)) {
            return (int)keys[k].s;
        }
    }
    return -1;
}

/* An OTLP/JSON lines file as the `file` exporter writes it. */
static void input_jsonl(vm_t *v, const char *path, const uint8_t *data, size_t len, arena_t *a)
{
    size_t lineno = 0;
    for (size_t off = 0; off < len;) {
        const uint8_t *nl = memchr(data + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - data) : len;
        const char *line = (const char *)data + off;
        size_t n = end - off;
        lineno++;
        off = end + 1;
        size_t ws = 0;
        while (ws < n && (line[ws] == ' ' || line[ws] == '\t' || line[ws] == '\r')) {
            ws++;
        }
        if (ws == n) {
            continue;
        }
        char where[PATH_MAX + 32];
        snprintf(where, sizeof(where), "%s:%zu", path, lineno);
        int s = line_signal(line, n);
        if (s < 0) {
            vr_input_error(&v->rep, where, "not an OTLP/JSON request (expected resourceSpans, "
                           "resourceMetrics, resourceLogs or resourceProfiles first)");
            continue;
        }
        arena_reset(a);
        one_body(v, (mt_signal_t)s, (const uint8_t *)line, n, 1, a, where);
    }
}

/* Remote-write 2.0 bodies use fields 4 (symbols) and 5 (timeseries); 1.0 uses 1 and 3. */
static int prw_version(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t tag = 0;
        int shift = 0;
        while (i < n && shift < 64) {
            tag |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if (!(p[i++] & 0x80)) {
                break;
            }
        }
        uint64_t field = tag >> 3;
        if (field == 4 || field == 5) {
            return 2;
        }
        if (field == 1 || field == 3) {
            return 1;
        }
        if ((tag & 7) != 2) {
            return 1;
        }
        uint64_t l = 0;
        shift = 0;
        while (i < n && shift < 64) {
            l |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if (!(p[i++] & 0x80)) {
                break;
            }
        }
        if (l > n - i) {
            return 1;
        }
        i += (size_t)l;
    }
    return 1;
}

static void input_remotewrite(vm_t *v, const char *path, const uint8_t *data, size_t len,
                              arena_t *a)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint8_t *raw = NULL;
    size_t rlen = 0;
    char m[700];
    if (codec_decompress(CODEC_SNAPPY, data, len, VM_MAX_BODY_BYTES, a, &raw, &rlen, &eb) !=
        MT_OK) {
        snprintf(m, sizeof(m), "remote write: %s", eb.msg);
        vr_input_error(&v->rep, path, m);
        return;
    }
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req = NULL;
    prw_stats_t st;
    if (prw_to_otlp(prw_version(raw, rlen), raw, rlen, a, &req, &st, &eb) != MT_OK) {
        snprintf(m, sizeof(m), "remote write: %s", eb.msg);
        vr_input_error(&v->rep, path, m);
        return;
    }
    if (st.points) {
        run_request(v, MT_SIG_METRICS, &req->base, st.points, a, path);
    }
}

/* One --input argument: "KIND:PATH" or a self-describing OTLP/JSON lines PATH. Returns MT_OK
 * or MT_EIO (unreadable: a usage error, not a finding). */
static int run_input(vm_t *v, const char *arg, mt_errbuf_t *eb)
{
    /* the first four are mt_signal_t in order; remotewrite: is a kind of its own */
    enum { VM_INPUT_JSONL = -1, VM_INPUT_REMOTEWRITE = MT_SIG_COUNT };
    static const char *kinds[] = {"traces:", "metrics:", "logs:", "profiles:", "remotewrite:"};
    _Static_assert(MT_SIG_COUNT == 4, "kinds[] lists the signals, then remotewrite:");
    int kind = VM_INPUT_JSONL;
    const char *path = arg;
    for (int k = 0; k < (int)MT_ARRAY_LEN(kinds); k++) {
        if (strncmp(arg, kinds[k], strlen(kinds[k])) == 0) {
            kind = k;
            path = arg + strlen(kinds[k]);
        }
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = slurp(path, &buf, &len, eb);
    if (rc != MT_OK) {
        return rc;
    }
    arena_t *fa = arena_create(64 * 1024, VM_MAX_REQUEST_ARENA); /* file-lifetime data */
    arena_t *a = arena_create(256 * 1024, VM_MAX_REQUEST_ARENA); /* per request */
    if (!fa || !a) {
        arena_destroy(fa);
        arena_destroy(a);
        free(buf);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    if (kind == VM_INPUT_REMOTEWRITE) {
        input_remotewrite(v, path, buf, len, a);
    } else {
        const uint8_t *data = NULL;
        size_t dlen = 0;
        mt_errbuf_t de;
        mt_errbuf_clear(&de);
        if (maybe_decompress(buf, len, fa, &data, &dlen, &de) != MT_OK) {
            vr_input_error(&v->rep, path, de.msg);
        } else if (kind == VM_INPUT_JSONL) {
            if (dlen && !looks_json(data, dlen)) {
                vr_input_error(&v->rep, path, "not OTLP/JSON lines; name binary request bodies "
                               "by kind (traces:PATH, metrics:PATH, logs:PATH, profiles:PATH, "
                               "remotewrite:PATH)");
            } else {
                input_jsonl(v, path, data, dlen, a);
            }
        } else {
            one_body(v, (mt_signal_t)kind, data, dlen, looks_json(data, dlen), a, path);
        }
    }
    arena_destroy(a);
    arena_destroy(fa);
    free(buf);
    return MT_OK;
}

/* ---- listen mode ----------------------------------------------------------------------------- */

static void listen_observer(void *arg, mt_signal_t s, const uint8_t *pb, size_t len,
                            uint64_t items, const char *tenant)
{
    (void)tenant;
    vm_t *v = arg;
    pthread_mutex_lock(&v->mu);
    arena_reset(v->listen_arena);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *msg = otlp_unpack(s, pb, len, v->listen_arena, &eb);
    if (msg) {
        v->rep.requests++;
        v->rep.items += items;
        v->listen_requests++;
        /* the pipeline's processors already ran; schemas are checked on what they delivered */
        for (size_t i = 0; i < v->nstages[s]; i++) {
            check_schema(v, v->stages[s][i].schema, s, msg);
        }
        check_schema(v, v->extra_schema, s, msg);
        /* what the pipeline delivered: findings its guards removed are not seen here */
        vp_scan_request(v->pii, &v->rep, s, msg, NULL, 0);
        analyze(v, s, msg);
    } else {
        vr_input_error(&v->rep, "listen", eb.msg);
    }
    pthread_mutex_unlock(&v->mu);
}

static int run_listen(vm_t *v, service_t *svc, int64_t ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before threads start: they inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    v->listen_arena = arena_create(256 * 1024, VM_MAX_REQUEST_ARENA);
    if (!v->listen_arena || pipeline_add_observer(listen_observer, v) != MT_OK) {
        fprintf(stderr, "meltp validate: cannot observe the pipelines\n");
        return 2;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (service_start(svc, &eb) != MT_OK) {
        pipeline_remove_observer(listen_observer, v);
        fprintf(stderr, "meltp validate: cannot start the receivers: %s\n", eb.msg);
        return 2;
    }
    int tty = isatty(STDERR_FILENO);
    uint64_t end = mt_now_ns() + (uint64_t)ms * 1000000ull;
    for (;;) {
        uint64_t now = mt_now_ns();
        if (now >= end) {
            break;
        }
        if (tty) {
            pthread_mutex_lock(&v->mu);
            fprintf(stderr, "\rmeltp validate: listening, %llus left, %llu requests, %llu items, "
                    "%zu services   ", (unsigned long long)((end - now + 999999999ull) / 1000000000ull),
                    (unsigned long long)v->rep.requests, (unsigned long long)v->rep.items,
                    v->rep.nservices);
            pthread_mutex_unlock(&v->mu);
        }
        uint64_t left = end - now;
        uint64_t step = left < 1000000000ull ? left : 1000000000ull;
        struct timespec ts = {(time_t)(step / 1000000000ull), (long)(step % 1000000000ull)};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            break; /* stop early, still report */
        }
    }
    if (tty) {
        fputc('\n', stderr);
    }
    /* stop receivers (and drain exporters) before the observer goes away */
    return 0;
}

/* ---- finishing --------------------------------------------------------------------------------- */

static void finish(vm_t *v, slo_owner_t *own, size_t nown)
{
    vr_report_t *r = &v->rep;
    /* services the policy names exactly but that never appeared */
    for (size_t i = 0; i < v->pol.nrules; i++) {
        const vm_rule_t *rule = &v->pol.rules[i];
        int found = 0;
        for (size_t k = 0; k < r->nservices && !found; k++) {
            found = strcmp(r->services[k]->service, rule->pattern) == 0;
        }
        if (rule->exact && !found) {
            service_of(v, rule->pattern, "");
        }
    }
    for (size_t i = 0; i < r->nservices; i++) {
        vr_service_t *s = r->services[i];
        s->missing = 0;
        for (int k = 0; k < VR_NSIG; k++) {
            if (((s->required >> k) & 1) && !s->count[k]) {
                s->missing |= 1u << k;
            }
        }
    }
    /* SLO coverage: every service seen or named by a spec */
    for (size_t i = 0; i < r->nservices; i++) {
        int any = 0;
        for (int k = 0; k < VR_NSIG; k++) {
            any |= r->services[i]->count[k] > 0;
        }
        vr_slo_cov_t *c = vr_slo_cov_get(r, r->services[i]->service);
        if (c) {
            c->seen |= any;
            c->require_slo |= r->services[i]->require_slo;
        }
    }
    for (size_t i = 0; i < nown; i++) {
        vr_slo_cov_t *c = vr_slo_cov_get(r, own[i].service);
        vr_slo_t **ns = c ? realloc(c->slos, (c->nslos + 1) * sizeof(*ns)) : NULL;
        if (ns) {
            c->slos = ns;
            c->slos[c->nslos++] = own[i].slo;
        }
    }
    for (size_t i = 0; i < r->nslos; i++) {
        vr_slo_t *s = r->slos[i];
        for (size_t k = 0; k < s->series.n; k++) {
            if (!vr_strset_has(&v->series_seen, s->series.v[k])) {
                vr_strset_add(&s->missing_series, s->series.v[k]);
            }
        }
    }
    vr_report_sort(r);
    int ok = r->nviolations == 0 && r->npii == 0 && r->ninput_errors == 0;
    for (size_t i = 0; i < r->nservices; i++) {
        ok &= !r->services[i]->missing && !r->services[i]->missing_attributes.n;
    }
    for (size_t i = 0; i < r->nslo_cov; i++) {
        const vr_slo_cov_t *c = r->slo_cov[i];
        ok &= !(c->require_slo && !c->nslos);
        for (size_t k = 0; c->seen && k < c->nslos; k++) {
            ok &= !c->slos[k]->missing_series.n;
        }
    }
    r->ok = ok;
}

/* ---- CLI ----------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: meltp validate --config FILE [--input PATH...] [--listen DURATION]\n"
          "                      [--policy FILE] [--schema FILE]\n"
          "                      [--format text|json|markdown|junit|html] [--output FILE]\n"
          "\n"
          "Runs the configured processors on recorded or live telemetry without exporting it\n"
          "and reports coverage per service and environment, policy gaps, schema violations,\n"
          "PII findings, SLO coverage and a Prometheus / Loki translation preview.\n"
          "\n"
          "  --input PATH       OTLP/JSON lines as the file exporter writes them; or a request\n"
          "                     body named by kind: traces:PATH metrics:PATH logs:PATH\n"
          "                     profiles:PATH (protobuf or JSON, gzip/zstd detected),\n"
          "                     remotewrite:PATH (snappy protobuf, 1.0 or 2.0). Repeatable;\n"
          "                     several paths may follow one --input.\n"
          "  --listen DURATION  serve the configured receivers for DURATION (e.g. 30s) and\n"
          "                     audit what arrives; exporters run as configured. Ctrl-C ends\n"
          "                     early and still reports.\n"
          "  --policy FILE      coverage policy: services: {NAME_OR_GLOB: {signals: [...],\n"
          "                     resource_attributes: [...], require_slo: bool}}, slo_specs:\n"
          "                     [GLOB...], pii: {detectors, allow_domains, mrn_patterns}\n"
          "  --schema FILE      also check this schema after the processors\n"
          "  --format F         text (default), json, markdown, junit, html\n"
          "  --output FILE      write the report there instead of stdout\n"
          "\n"
          "Exit status: 0 policy met, 1 gaps / violations / PII / input errors, 2 usage or\n"
          "configuration errors.\n", f);
}

typedef struct vm_args {
    const char *config, *policy, *schema, *output;
    const char *inputs[VM_MAX_INPUTS];
    size_t ninputs;
    int64_t listen_ms;
    int format;
} vm_args_t;

/* Returns 0, 1 for --help, or 2 for a usage error (already printed). */
static int parse_args(int argc, char **argv, vm_args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->listen_ms = -1;
    a->format = VR_FMT_TEXT;
    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *val = NULL;
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "meltp validate: unexpected argument \"%s\"\n", arg);
            return 2;
        }
        const char *eq = strchr(arg, '=');
        snprintf(flag, sizeof(flag), "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        }
        if (!val) {
            fprintf(stderr, "meltp validate: %s needs a value\n", flag);
            return 2;
        }
        if (strcmp(flag, "--config") == 0) {
            a->config = val;
        } else if (strcmp(flag, "--policy") == 0) {
            a->policy = val;
        } else if (strcmp(flag, "--schema") == 0) {
            a->schema = val;
        } else if (strcmp(flag, "--output") == 0) {
            a->output = val;
        } else if (strcmp(flag, "--format") == 0) {
            a->format = vr_format_parse(val);
            if (a->format < 0) {
                fprintf(stderr, "meltp validate: unknown format \"%s\" "
                        "(valid: text, json, markdown, junit, html)\n", val);
                return 2;
            }
        } else if (strcmp(flag, "--listen") == 0) {
            if (cfg_parse_duration_ms(val, &a->listen_ms) != MT_OK || a->listen_ms <= 0) {
                fprintf(stderr, "meltp validate: --listen: \"%s\" is not a positive duration "
                        "(e.g. 30s, 5m)\n", val);
                return 2;
            }
        } else if (strcmp(flag, "--input") == 0) {
            for (;;) {
                if (!*val || a->ninputs == VM_MAX_INPUTS) {
                    fprintf(stderr, "meltp validate: %s\n", *val ? "too many inputs"
                                                                 : "--input needs a path");
                    return 2;
                }
                a->inputs[a->ninputs++] = val;
                if (eq || i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                    break;
                }
                val = argv[++i];
            }
        } else {
            fprintf(stderr, "meltp validate: unknown option \"%s\"\n", flag);
            return 2;
        }
    }
    if (!a->config) {
        fprintf(stderr, "meltp validate: --config FILE is required\n");
        return 2;
    }
    if (!a->ninputs && a->listen_ms < 0) {
        fprintf(stderr, "meltp validate: give --input PATH or --listen DURATION\n");
        return 2;
    }
    if (a->ninputs && a->listen_ms >= 0) {
        fprintf(stderr, "meltp validate: --input and --listen cannot be combined\n");
        return 2;
    }
    return 0;
}

static void vm_fini(vm_t *v)
{
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        for (size_t i = 0; i < v->nstages[s]; i++) {
            schema_destroy(v->stages[s][i].schema);
        }
    }
    schema_destroy(v->extra_schema);
    pii_destroy(v->pii);
    deltacum_destroy(v->dc);
    vr_strset_fini(&v->series_seen);
    slo_set_destroy(v->slos);
    arena_destroy(v->scratch);
    arena_destroy(v->listen_arena);
    cfg_doc_destroy(v->doc);
    vr_report_fini(&v->rep);
    policy_fini(&v->pol);
    pthread_mutex_destroy(&v->mu);
}

static int config_errors(cfg_ctx_t *c)
{
    cfg_ctx_print(c, stderr);
    cfg_ctx_fini(c);
    return 2;
}

int validate_main(int argc, char **argv)
{
    vm_args_t args;
    int rc = parse_args(argc, argv, &args);
    if (rc) {
        usage(rc == 1 ? stdout : stderr);
        return rc == 1 ? 0 : 2;
    }
    vm_t *v = calloc(1, sizeof(*v));
    if (!v) {
        fprintf(stderr, "meltp validate: out of memory\n");
        return 2;
    }
    pthread_mutex_init(&v->mu, NULL);
    vr_report_init(&v->rep);
    v->config_path = args.config;
    v->rep.config_path = args.config;
    v->rep.policy_path = args.policy;
    v->rep.have_policy = args.policy != NULL;
    v->series_seen.limit = VM_MAX_SERIES_SEEN;
    slo_owner_t *own = NULL;
    size_t nown = 0;
    service_t *svc = NULL;
    int exit_code = 2;

    /* 1. configuration: the service validates it all (FILE:LINE errors), then our copy */
    cfg_ctx_t c;
    cfg_ctx_init(&c, args.config);
    svc = service_load(args.config, NULL, &c);
    if (!svc) {
        exit_code = config_errors(&c);
        goto out;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    v->doc = cfg_load_file(args.config, &eb);
    if (!v->doc) {
        cfg_error(&c, 0, "", "%s", eb.msg);
        exit_code = config_errors(&c);
        goto out;
    }
    int other_errs = 0; /* printed already, with their own file names */
    if (args.policy) {
        cfg_ctx_t pc;
        cfg_ctx_init(&pc, args.policy);
        other_errs += policy_load(args.policy, &v->pol, &pc) != MT_OK;
        cfg_ctx_print(&pc, stderr);
        cfg_ctx_fini(&pc);
    }
    if (!c.nerr && !other_errs) {
        build_stages(v, svc, &c);
    }
    if (!c.nerr && !other_errs && args.schema) {
        v->extra_schema = schema_load(args.schema, &c);
    }
    if (!c.nerr && !other_errs) {
        slo_specs_audit(v, &c, &own, &nown);
    }
    if (!c.nerr && !other_errs) {
        pii_config_t pc;
        memset(&pc, 0, sizeof(pc));
        pc.detectors = v->pol.pii_detectors;
        pc.allow_domains = (const char *const *)v->pol.allow_domains;
        pc.n_allow_domains = v->pol.nallow;
        pc.mrn_patterns = (const char *const *)v->pol.mrn;
        pc.n_mrn_patterns = v->pol.nmrn;
        v->pii = pii_create(&pc, &eb);
        if (!v->pii) {
            fprintf(stderr, "%s: pii: %s\n", args.policy ? args.policy : "meltp validate",
                    eb.msg);
            other_errs++;
        }
    }
    if (c.nerr || other_errs) {
        exit_code = config_errors(&c);
        goto out;
    }
    cfg_ctx_fini(&c);
    v->dc = deltacum_create(0, 0);
    v->scratch = arena_create(256 * 1024, VM_MAX_REQUEST_ARENA);
    if (!v->dc || !v->scratch) {
        fprintf(stderr, "meltp validate: out of memory\n");
        goto out;
    }

    /* 2. data */
    if (args.listen_ms > 0) {
        if (run_listen(v, svc, args.listen_ms) != 0) {
            goto out;
        }
        service_stop_destroy(svc); /* receivers stop first: no observer call after this */
        svc = NULL;
        pipeline_remove_observer(listen_observer, v);
    } else {
        for (size_t i = 0; i < args.ninputs; i++) {
            mt_errbuf_clear(&eb);
            if (run_input(v, args.inputs[i], &eb) != MT_OK) {
                fprintf(stderr, "meltp validate: %s\n", eb.msg);
                goto out;
            }
        }
    }

    /* 3. report */
    finish(v, own, nown);
    FILE *f = stdout;
    if (args.output && !(f = fopen(args.output, "w"))) {
        fprintf(stderr, "meltp validate: %s: %s\n", args.output, strerror(errno));
        goto out;
    }
    int wrc = vr_report_write(&v->rep, (vr_format_t)args.format, f);
    if (f != stdout) {
        wrc |= fclose(f);
    } else {
        fflush(f);
    }
    if (wrc != 0) {
        fprintf(stderr, "meltp validate: cannot write the report\n");
        goto out;
    }
    exit_code = v->rep.ok ? 0 : 1;
out:
    service_stop_destroy(svc);
    free(own);
    vm_fini(v);
    free(v);
    return exit_code;
}
