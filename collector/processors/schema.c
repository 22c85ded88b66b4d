/*
 * schema.c - declarative schema files (see schema.h and configs/schemas/example.yaml): the
 * loader, which turns the YAML into compiled rules (schema_int.h) and reports every mistake as
 * FILE:LINE. The evaluator shared by the validate processor (schema_apply) and validation mode
 * (schema_check) is in schema_eval.c.
 */
#include "schema.h"
#include "schema_int.h"

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const vt_names[] = {"any",  "string", "int",   "double", "number",
                                       "bool", "bytes",  "array", "map"};
static const char *const mtype_names[] = {
    "any",    "gauge", "sum", "counter", "updowncounter", "histogram", "exponential_histogram",
    "summary"};

const char *schema_action_name(int action)
{
    static const char *const n[] = {"tag", "drop", "reject", "overflow"};
    return action >= 0 && action < 4 ? n[action] : "unknown";
}

/* ---- loading ----------------------------------------------------------------------------- */

typedef struct ld {
    cfg_ctx_t *c;
    schema_t *sc;
    int default_action;
} ld_t;

static int kind_is(const cfg_node_t *n, cfg_kind_t k)
{
    return n && n->kind == k;
}

/* dst = a + "." + b, cut at cap (paths in messages only). */
static __attribute__((noinline)) void join(char *dst, size_t cap, const char *a, const char *b)
{
    snprintf(dst, cap, "%s.%s", a, b);
}

static char **strlist(ld_t *l, const cfg_node_t *n, const char *path, size_t *count)
{
    *count = 0;
    if (kind_is(n, CFG_NODE_SCALAR)) {
        char **v = calloc(1, sizeof(char *));
        if (v) {
            v[0] = strdup(n->value);
            *count = 1;
        }
        return v;
    }
    if (!kind_is(n, CFG_NODE_SEQ)) {
        cfg_error(l->c, n ? n->line : 0, path, "expected a list of strings");
        return NULL;
    }
    char **v = calloc(n->n ? n->n : 1, sizeof(char *));
    for (size_t i = 0; v && i < n->n; i++) {
        if (!kind_is(n->children[i], CFG_NODE_SCALAR)) {
            cfg_error(l->c, n->children[i]->line, path, "item %zu: expected a string", i);
            continue;
        }
        v[(*count)++] = strdup(n->children[i]->value);
    }
    return v;
}

static void freelist(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static int get_int(ld_t *l, const cfg_node_t *n, const char *path, int64_t min, int64_t max,
                   int64_t *out)
{
    char *end;
    if (!kind_is(n, CFG_NODE_SCALAR)) {
        cfg_error(l->c, n ? n->line : 0, path, "expected an integer");
        return -1;
    }
    long long v = strtoll(n->value, &end, 10);
    if (!*n->value || *end || v < min || v > max) {
        cfg_error(l->c, n->line, path, "\"%s\" is not an integer in %lld..%lld", n->value,
                  (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_bool(ld_t *l, const cfg_node_t *n, const char *path, int *out)
{
    if (!kind_is(n, CFG_NODE_SCALAR) || cfg_parse_bool(n->value, out) != MT_OK) {
        cfg_error(l->c, n ? n->line : 0, path, "expected true or false");
        return -1;
    }
    return 0;
}

static int get_regex(ld_t *l, const cfg_node_t *n, const char *path, regex_t *re)
{
    if (!kind_is(n, CFG_NODE_SCALAR)) {
        cfg_error(l->c, n ? n->line : 0, path, "expected a regular expression");
        return 0;
    }
    int rc = regcomp(re, n->value, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char why[128];
        regerror(rc, re, why, sizeof(why));
        cfg_error(l->c, n->line, path, "bad regular expression: %s", why);
        return 0;
    }
    return 1;
}

static int parse_action(ld_t *l, const cfg_node_t *n, const char *path, int card)
{
    if (!kind_is(n, CFG_NODE_SCALAR)) {
        cfg_error(l->c, n ? n->line : 0, path, "expected tag, drop or reject");
        return SCHEMA_ACT_TAG;
    }
    for (int a = 0; a < 4; a++) {
        if (!strcmp(n->value, schema_action_name(a))) {
            if (a == SCHEMA_ACT_OVERFLOW && !card) {
                cfg_error(l->c, n->line, path,
                          "overflow is only for rules with cardinality_limit or label_limits");
            } else if (a == SCHEMA_ACT_REJECT && card) {
                cfg_error(l->c, n->line, path,
                          "cardinality rules take overflow, drop or tag (not reject)");
            }
            return a;
        }
    }
    cfg_error(l->c, n->line, path, "\"%s\" is not one of tag, drop, reject%s", n->value,
              card ? ", overflow" : "");
    return SCHEMA_ACT_TAG;
}

static void parse_specs(ld_t *l, rule_t *r, const cfg_node_t *n, const char *path)
{
    if (!kind_is(n, CFG_NODE_MAP)) {
        cfg_error(l->c, n ? n->line : 0, path, "expected a map of attribute key -> checks");
        return;
    }
    r->specs = calloc(n->n ? n->n : 1, sizeof(attr_spec_t));
    if (!r->specs) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        char p[512], p2[600];
        join(p, sizeof(p), path, n->keys[i]);
        attr_spec_t *sp = &r->specs[r->nspecs++];
        sp->key = strdup(n->keys[i]);
        const cfg_node_t *m = n->children[i];
        if (kind_is(m, CFG_NODE_NULL)) {
            continue; /* "key:" alone: only declares the attribute (for allowed) */
        }
        if (!kind_is(m, CFG_NODE_MAP)) {
            cfg_error(l->c, m->line, p, "expected a map (type, enum, regex, max_length)");
            continue;
        }
        for (size_t k = 0; k < m->n; k++) {
            const char *key = m->keys[k];
            const cfg_node_t *v = m->children[k];
            join(p2, sizeof(p2), p, key);
            if (!strcmp(key, "type")) {
                int found = 0;
                for (int t = 0; t < (int)MT_ARRAY_LEN(vt_names); t++) {
                    if (kind_is(v, CFG_NODE_SCALAR) && !strcmp(v->value, vt_names[t])) {
                        sp->type = t;
                        found = 1;
                    }
                }
                if (!found) {
                    cfg_error(l->c, v->line, p2,
                              "expected one of string, int, double, number, bool, bytes, "
                              "array, map, any");
                }
            } else if (!strcmp(key, "enum")) {
                sp->enums = strlist(l, v, p2, &sp->nenums);
            } else if (!strcmp(key, "regex")) {
                sp->has_re = get_regex(l, v, p2, &sp->re);
            } else if (!strcmp(key, "max_length")) {
                get_int(l, v, p2, 1, INT32_MAX, &sp->max_length);
            } else {
                cfg_error(l->c, m->key_lines[k], p2,
                          "unknown key (valid: type, enum, regex, max_length)");
            }
        }
    }
}

/* Keys each section's rules accept, besides the common ones. */
static const char *const common_keys[] = {"name",     "description", "action",    "message",
                                          "required", "allowed",     "attributes"};
static const char *const sect_keys[4][12] = {
    [TGT_RESOURCE] = {"signals"},
    [TGT_SPAN] = {"span_kind", "match", "name_pattern", "name_max_length"},
    [TGT_METRIC] = {"match", "name_pattern", "name_max_length", "type", "unit", "duration_unit",
                    "counter_total_suffix", "cardinality_limit", "label_limits"},
    [TGT_LOG] = {"body_max_length", "loki"},
};
static const char *const sect_names[4] = {"resource", "traces", "metrics", "logs"};

static int key_known(int tgt, const char *k)
{
    for (size_t i = 0; i < MT_ARRAY_LEN(common_keys); i++) {
        if (!strcmp(k, common_keys[i])) {
            return 1;
        }
    }
    for (size_t i = 0; i < 12 && sect_keys[tgt][i]; i++) {
        if (!strcmp(k, sect_keys[tgt][i])) {
            return 1;
        }
    }
    return 0;
}

static void parse_loki(ld_t *l, rule_t *r, const cfg_node_t *n, const char *path)
{
    char p[600];
    r->has_loki = 1;
    r->loki_max_labels = 15;  /* Loki's max_label_names_per_series default */
    r->loki_max_name = 1024;  /* max_label_name_length */
    r->loki_max_value = 2048; /* max_label_value_length */
    if (!kind_is(n, CFG_NODE_MAP)) {
        cfg_error(l->c, n ? n->line : 0, path,
                  "expected a map (labels, max_labels, max_name_length, max_value_length)");
        return;
    }
    for (size_t k = 0; k < n->n; k++) {
        join(p, sizeof(p), path, n->keys[k]);
        const cfg_node_t *v = n->children[k];
        if (!strcmp(n->keys[k], "labels")) {
            r->loki_labels = strlist(l, v, p, &r->nloki);
        } else if (!strcmp(n->keys[k], "max_labels")) {
            get_int(l, v, p, 1, 1000, &r->loki_max_labels);
        } else if (!strcmp(n->keys[k], "max_name_length")) {
            get_int(l, v, p, 1, 1 << 20, &r->loki_max_name);
        } else if (!strcmp(n->keys[k], "max_value_length")) {
            get_int(l, v, p, 1, 1 << 20, &r->loki_max_value);
        } else {
            cfg_error(l->c, n->key_lines[k], p,
                      "unknown key (valid: labels, max_labels, max_name_length, "
                      "max_value_length)");
        }
    }
    if (!r->nloki) {
        cfg_error(l->c, n->line, path, "labels: at least one label attribute is required");
    }
}

static void parse_rule(ld_t *l, int tgt, const cfg_node_t *n, const char *path)
{
    schema_t *sc = l->sc;
    if (!kind_is(n, CFG_NODE_MAP)) {
        cfg_error(l->c, n->line, path, "expected a map (a rule)");
        return;
    }
    rule_t *r = &sc->rules[sc->nrules++];
    r->target = tgt;
    r->signals = (1u << MT_SIG_TRACES) | (1u << MT_SIG_METRICS) | (1u << MT_SIG_LOGS);
    r->metric_type = MT_ANY;
    const cfg_node_t *act = NULL;
    int card = cfg_map_get(n, "cardinality_limit") || cfg_map_get(n, "label_limits");
    char p[600];
    for (size_t k = 0; k < n->n; k++) {
        const char *key = n->keys[k];
        const cfg_node_t *v = n->children[k];
        join(p, sizeof(p), path, key);
        if (!key_known(tgt, key)) {
            cfg_error(l->c, n->key_lines[k], p, "unknown key for a %s rule", sect_names[tgt]);
            continue;
        }
        if (card && strcmp(key, "name") && strcmp(key, "description") && strcmp(key, "action") &&
            strcmp(key, "message") && strcmp(key, "match") && strcmp(key, "cardinality_limit") &&
            strcmp(key, "label_limits")) {
            cfg_error(l->c, n->key_lines[k], p,
                      "a cardinality rule takes only name, match, cardinality_limit, "
                      "label_limits, action, message");
            continue;
        }
        if (!strcmp(key, "name")) {
            if (!kind_is(v, CFG_NODE_SCALAR) || !*v->value) {
                cfg_error(l->c, v->line, p, "expected a non-empty name");
                continue;
            }
            for (size_t i = 0; i + 1 < sc->nrules; i++) {
                if (!strcmp(sc->rules[i].name, v->value)) {
                    cfg_error(l->c, v->line, p, "duplicate rule name \"%s\"", v->value);
                }
            }
            r->name = strdup(v->value);
        } else if (!strcmp(key, "description")) {
            /* documentation only */
        } else if (!strcmp(key, "action")) {
            act = v;
        } else if (!strcmp(key, "message")) {
            if (kind_is(v, CFG_NODE_SCALAR)) {
                r->message = strdup(v->value);
            } else {
                cfg_error(l->c, v->line, p, "expected a string");
            }
        } else if (!strcmp(key, "required")) {
            r->required = strlist(l, v, p, &r->nrequired);
        } else if (!strcmp(key, "allowed")) {
            r->allowed = strlist(l, v, p, &r->nallowed);
        } else if (!strcmp(key, "attributes")) {
            parse_specs(l, r, v, p);
        } else if (!strcmp(key, "signals")) {
            size_t ns;
            char **s = strlist(l, v, p, &ns);
            r->signals = 0;
            for (size_t i = 0; i < ns; i++) {
                if (!strcmp(s[i], "traces")) {
                    r->signals |= 1u << MT_SIG_TRACES;
                } else if (!strcmp(s[i], "metrics")) {
                    r->signals |= 1u << MT_SIG_METRICS;
                } else if (!strcmp(s[i], "logs")) {
                    r->signals |= 1u << MT_SIG_LOGS;
                } else {
                    cfg_error(l->c, v->line, p, "\"%s\" is not one of traces, metrics, logs", s[i]);
                }
            }
            freelist(s, ns);
        } else if (!strcmp(key, "span_kind")) {
            static const char *const kinds[] = {"unspecified", "internal", "server",
                                                "client",      "producer", "consumer"};
            size_t ns;
            char **s = strlist(l, v, p, &ns);
            for (size_t i = 0; i < ns; i++) {
                int f = -1;
                for (int q = 0; q < 6; q++) {
                    if (!strcmp(s[i], kinds[q])) {
                        f = q;
                    }
                }
                if (f < 0) {
                    cfg_error(l->c, v->line, p,
                              "\"%s\" is not one of unspecified, internal, server, client, "
                              "producer, consumer",
                              s[i]);
                } else {
                    r->span_kinds |= 1u << f;
                }
            }
            freelist(s, ns);
        } else if (!strcmp(key, "match")) {
            r->has_match = get_regex(l, v, p, &r->match);
        } else if (!strcmp(key, "name_pattern")) {
            r->has_name_re = get_regex(l, v, p, &r->name_re);
        } else if (!strcmp(key, "name_max_length")) {
            get_int(l, v, p, 1, INT32_MAX, &r->name_max_length);
        } else if (!strcmp(key, "type")) {
            int f = -1;
            for (int q = 1; q < (int)MT_ARRAY_LEN(mtype_names); q++) {
                if (kind_is(v, CFG_NODE_SCALAR) && !strcmp(v->value, mtype_names[q])) {
                    f = q;
                }
            }
            if (f < 0) {
                cfg_error(l->c, v->line, p,
                          "expected gauge, sum, counter, updowncounter, histogram, "
                          "exponential_histogram or summary");
            } else {
                r->metric_type = f;
            }
        } else if (!strcmp(key, "unit") || !strcmp(key, "duration_unit")) {
            if (!kind_is(v, CFG_NODE_SCALAR)) {
                cfg_error(l->c, v->line, p, "expected a unit string");
            } else if (key[0] == 'u') {
                r->unit = strdup(v->value);
            } else {
                r->duration_unit = strdup(v->value);
            }
        } else if (!strcmp(key, "counter_total_suffix")) {
            get_bool(l, v, p, &r->counter_total);
        } else if (!strcmp(key, "body_max_length")) {
            get_int(l, v, p, 1, INT32_MAX, &r->body_max_length);
        } else if (!strcmp(key, "loki")) {
            parse_loki(l, r, v, p);
        } else if (!strcmp(key, "cardinality_limit")) {
            get_int(l, v, p, 1, SCHEMA_MAX_CARDINALITY, &r->card_limit);
        } else if (!strcmp(key, "label_limits")) {
            if (!kind_is(v, CFG_NODE_MAP) || !v->n) {
                cfg_error(l->c, v->line, p, "expected a map of label -> limit");
                continue;
            }
            r->lim_keys = calloc(v->n, sizeof(char *));
            r->lim_vals = calloc(v->n, sizeof(int64_t));
            for (size_t i = 0; r->lim_keys && r->lim_vals && i < v->n; i++) {
                char p2[700];
                join(p2, sizeof(p2), p, v->keys[i]);
                r->lim_keys[r->nlims] = strdup(v->keys[i]);
                get_int(l, v->children[i], p2, 1, SCHEMA_MAX_CARDINALITY, &r->lim_vals[r->nlims]);
                r->nlims++;
            }
        }
    }
    if (!r->name) {
        cfg_error(l->c, n->line, path, "name: required");
        char buf[96];
        snprintf(buf, sizeof(buf), "%s[%zu]", sect_names[tgt], sc->nrules - 1);
        r->name = strdup(buf);
    }
    join(p, sizeof(p), path, "action");
    r->action = act    ? parse_action(l, act, p, card)
                : card ? SCHEMA_ACT_OVERFLOW
                       : l->default_action;
    if (!r->message) {
        char buf[512];
        snprintf(buf, sizeof(buf), "schema rule \"%s\" violated", r->name ? r->name : "?");
        r->message = strdup(buf);
    }
    if (card) {
        sc->has_card = 1;
    }
    if (tgt == TGT_RESOURCE) {
        sc->covers |= r->signals;
    } else {
        sc->covers |= 1u << (tgt == TGT_SPAN     ? MT_SIG_TRACES
                             : tgt == TGT_METRIC ? MT_SIG_METRICS
                                                 : MT_SIG_LOGS);
    }
}

static void rule_fini(rule_t *r)
{
    free(r->name);
    free(r->message);
    if (r->has_match) {
        regfree(&r->match);
    }
    if (r->has_name_re) {
        regfree(&r->name_re);
    }
    freelist(r->required, r->nrequired);
    freelist(r->allowed, r->nallowed);
    for (size_t i = 0; i < r->nspecs; i++) {
        free(r->specs[i].key);
        freelist(r->specs[i].enums, r->specs[i].nenums);
        if (r->specs[i].has_re) {
            regfree(&r->specs[i].re);
        }
    }
    free(r->specs);
    free(r->unit);
    free(r->duration_unit);
    freelist(r->loki_labels, r->nloki);
    freelist(r->lim_keys, r->nlims);
    free(r->lim_vals);
    for (size_t i = 0; i < r->ents_cap; i++) {
        free(r->ents[i].series.v);
        for (size_t k = 0; r->ents[i].labels && k < r->nlims; k++) {
            free(r->ents[i].labels[k].v);
        }
        free(r->ents[i].labels);
    }
    free(r->ents);
}

void schema_destroy(schema_t *sc)
{
    if (!sc) {
        return;
    }
    for (size_t i = 0; i < sc->nrules; i++) {
        rule_fini(&sc->rules[i]);
    }
    free(sc->rules);
    free(sc->tag_key);
    free(sc->file);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}

static schema_t *load_doc(cfg_doc_t *doc, cfg_ctx_t *c)
{
    size_t before = c->nerr;
    const char *saved = c->file;
    c->file = doc->file; /* errors name the schema file, whatever file c was made for */
    schema_t *sc = calloc(1, sizeof(*sc));
    const cfg_node_t *root = doc->root;
    ld_t l = {c, sc, SCHEMA_ACT_TAG};
    if (!sc) {
        cfg_error(c, 0, NULL, "out of memory");
        goto out;
    }
    pthread_mutex_init(&sc->mu, NULL);
    sc->file = strdup(doc->file);
    sc->tag_key = strdup(SCHEMA_TAG_DEFAULT);
    if (!kind_is(root, CFG_NODE_MAP)) {
        cfg_error(c, root->line, NULL,
                  "a schema file is a map (version, resource, traces, "
                  "metrics, logs)");
        goto out;
    }
    size_t total = 0;
    for (size_t i = 0; i < root->n; i++) {
        if (kind_is(root->children[i], CFG_NODE_SEQ)) {
            total += root->children[i]->n;
        }
    }
    if (total > SCHEMA_MAX_RULES) {
        cfg_error(c, root->line, NULL, "more than %d rules", SCHEMA_MAX_RULES);
        goto out;
    }
    sc->rules = calloc(total ? total : 1, sizeof(rule_t));
    if (!sc->rules) {
        cfg_error(c, 0, NULL, "out of memory");
        goto out;
    }
    const cfg_node_t *v = cfg_map_get(root, "default_action");
    if (v) {
        l.default_action = parse_action(&l, v, "default_action", 0);
    }
    int have_version = 0;
    for (size_t i = 0; i < root->n; i++) {
        const char *key = root->keys[i];
        const cfg_node_t *n = root->children[i];
        int tgt = -1;
        for (int t = 0; t < 4; t++) {
            if (!strcmp(key, sect_names[t])) {
                tgt = t;
            }
        }
        if (tgt >= 0) {
            if (kind_is(n, CFG_NODE_NULL)) {
                continue;
            }
            if (!kind_is(n, CFG_NODE_SEQ)) {
                cfg_error(c, n->line, key, "expected a list of rules");
                continue;
            }
            for (size_t k = 0; k < n->n; k++) {
                char p[128];
                snprintf(p, sizeof(p), "%s[%zu]", key, k);
                parse_rule(&l, tgt, n->children[k], p);
            }
        } else if (!strcmp(key, "version")) {
            have_version = 1;
            if (!kind_is(n, CFG_NODE_SCALAR) || strcmp(n->value, "1")) {
                cfg_error(c, n->line, key, "only version 1 is supported");
            }
        } else if (!strcmp(key, "tag_attribute")) {
            if (!kind_is(n, CFG_NODE_SCALAR) || !*n->value) {
                cfg_error(c, n->line, key, "expected an attribute key");
            } else {
                free(sc->tag_key);
                sc->tag_key = strdup(n->value);
            }
        } else if (strcmp(key, "default_action") && strcmp(key, "description")) {
            cfg_error(c, root->key_lines[i], key,
                      "unknown key (valid: version, description, tag_attribute, default_action, "
                      "resource, traces, metrics, logs)");
        }
    }
    if (!have_version) {
        cfg_error(c, root->line, "version", "required (version: 1)");
    }
out:
    c->file = saved;
    if (c->nerr > before) {
        schema_destroy(sc);
        return NULL;
    }
    return sc;
}

/* Moves a loader error "FILE:LINE: reason" into c with the same text. */
static void doc_error(cfg_ctx_t *c, const char *name, const mt_errbuf_t *eb)
{
    const char *saved = c->file, *m = eb->msg;
    size_t nl = strlen(name);
    int line = 0;
    c->file = name;
    if (!strncmp(m, name, nl) && m[nl] == ':') {
        char *end;
        m += nl + 1;
        line = (int)strtol(m, &end, 10);
        if (end != m && *end == ':') {
            m = end + 1;
        } else {
            line = 0;
        }
        while (*m == ' ') {
            m++;
        }
    }
    cfg_error(c, line, NULL, "%s", m);
    c->file = saved;
}

schema_t *schema_load(const char *path, cfg_ctx_t *c)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_file(path, &eb);
    if (!doc) {
        doc_error(c, path, &eb);
        return NULL;
    }
    schema_t *sc = load_doc(doc, c);
    cfg_doc_destroy(doc);
    return sc;
}

schema_t *schema_load_string(const char *name, const char *text, size_t len, cfg_ctx_t *c)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_string(name, text, len, &eb);
    if (!doc) {
        doc_error(c, name, &eb);
        return NULL;
    }
    schema_t *sc = load_doc(doc, c);
    cfg_doc_destroy(doc);
    return sc;
}

const char *schema_file(const schema_t *sc)
{
    return sc->file;
}
size_t schema_rule_count(const schema_t *sc)
{
    return sc->nrules;
}
const char *schema_rule_name(const schema_t *sc, size_t i)
{
    return i < sc->nrules ? sc->rules[i].name : NULL;
}
int schema_covers(const schema_t *sc, mt_signal_t s)
{
    return s < MT_SIG_PROFILES && (sc->covers >> s) & 1;
}
