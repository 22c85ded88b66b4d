/*
 * validate_mode_policy.c - what `meltp validate` checks against: the coverage policy file
 * (rules per service pattern, the most specific one wins), the SLO specs it audits (the series
 * each SLO reads) and the service's processor instances it mirrors. Part of the
 * validate/validate_mode module (validate_mode_int.h).
 */
#include "validate_mode_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
const vm_rule_t *vm_policy_match(const vm_policy_t *p, const char *service)
{
    const vm_rule_t *best = NULL;
    for (size_t i = 0; i < p->nrules; i++) {
        const vm_rule_t *r = &p->rules[i];
        int hit =
            r->exact ? strcmp(r->pattern, service) == 0 : fnmatch(r->pattern, service, 0) == 0;
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

void vm_policy_fini(vm_policy_t *p)
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
                cfg_error(c, v->line, kp,
                          "expected a list of signals "
                          "(metrics, events, logs, traces, profiles)");
                continue;
            }
            for (size_t j = 0; v->kind == CFG_NODE_SEQ && j < v->n; j++) {
                const cfg_node_t *it = v->children[j];
                int sig = it->kind == CFG_NODE_SCALAR ? vr_signal_parse(it->value) : -1;
                if (sig < 0) {
                    cfg_error(c, it->line, kp,
                              "unknown signal \"%s\" (valid: metrics, events, logs, traces, "
                              "profiles)",
                              it->kind == CFG_NODE_SCALAR ? it->value : "");
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
int vm_policy_load(const char *file, vm_policy_t *p, cfg_ctx_t *c)
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
                cfg_error(c, v->line, "pii",
                          "expected a map with detectors, allow_domains, "
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
                            cfg_error(c, pv->line, kp,
                                      "unknown detector \"%s\" (valid: ssn, "
                                      "card, email, phone, mrn)",
                                      names[d]);
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

/* Spec globs: the policy's slo_specs plus `slo.specs` of the config (when the config has one).
 * They load through slo/spec.c, the loader the SLO engine uses, so every dialect it reads
 * (meltp/v1, Sloth prometheus/v1, OpenSLO v1, refs across files) is audited the same way.
 * Every problem goes to c, spec problems as SPEC_FILE:LINE: path: reason. */
void vm_slo_specs_audit(vm_t *v, cfg_ctx_t *c, slo_owner_t **own, size_t *nown)
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
int vm_build_stages(vm_t *v, const service_t *svc, cfg_ctx_t *c)
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
