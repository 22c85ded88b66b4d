/*
 * test_config.c - tests for collector/core/config.c: YAML loading (env substitution, aliases,
 * duplicate keys, syntax errors with lines), cfg_apply against a small table, and the
 * duration/size/bool parsers.
 */
#include "unit.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static cfg_doc_t *load(const char *text, mt_errbuf_t *eb)
{
    mt_errbuf_clear(eb);
    return cfg_load_string("t.yaml", text, strlen(text), eb);
}

/* Follows a dotted path of map keys (no dots inside keys). */
static const cfg_node_t *at(const cfg_node_t *n, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *tok = strtok(buf, "."); tok && n; tok = strtok(NULL, ".")) {
        n = cfg_map_get(n, tok);
    }
    return n;
}

static const char *scalar(const cfg_node_t *n, const char *path)
{
    n = at(n, path);
    return n && n->kind == CFG_NODE_SCALAR ? n->value : NULL;
}

static int starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *otel_cfg = "receivers:\n"                                            /* 1 */
                              "  otlp:\n"                                               /* 2 */
                              "    protocols:\n"                                        /* 3 */
                              "      http:\n"                                           /* 4 */
                              "        endpoint: ${env:MELTP_T_HTTP:-127.0.0.1:4318}\n" /* 5 */
                              "processors:\n"                                           /* 6 */
                              "  batch: {}\n"                                           /* 7 */
                              "  memory_limiter:\n"                                     /* 8 */
                              "    check_interval: 1s\n"                                /* 9 */
                              "    limit_mib: 512\n"                                    /* 10 */
                              "exporters:\n"                                            /* 11 */
                              "  otlphttp/tempo:\n"                                     /* 12 */
                              "    endpoint: http://127.0.0.1:4318\n"                   /* 13 */
                              "    headers:\n"                                          /* 14 */
                              "      X-Scope-OrgID: lab-dev\n"                          /* 15 */
                              "    sending_queue:\n"                                    /* 16 */
                              "      queue_size: 1000\n"                                /* 17 */
                              "  debug:\n"                                              /* 18 */
                              "service:\n"                                              /* 19 */
                              "  extensions: [health_check]\n"                          /* 20 */
                              "  pipelines:\n"                                          /* 21 */
                              "    traces:\n"                                           /* 22 */
                              "      receivers: [otlp]\n"                               /* 23 */
                              "      processors: [batch]\n"                             /* 24 */
                              "      exporters: [otlphttp/tempo]\n";                    /* 25 */

UNIT_TEST(load_otel_config)
{
    mt_errbuf_t eb;
    unsetenv("MELTP_T_HTTP");
    cfg_doc_t *d = load(otel_cfg, &eb);
    if (!d) {
        fprintf(stderr, "    %s\n", eb.msg);
    }
    REQUIRE(d);
    CHECK_STR(d->file, "t.yaml");
    const cfg_node_t *r = d->root;
    CHECK(r->kind == CFG_NODE_MAP && r->n == 4);
    CHECK_STR(r->keys[0], "receivers");
    CHECK(r->key_lines[3] == 19);
    CHECK_STR(scalar(r, "receivers.otlp.protocols.http.endpoint"), "127.0.0.1:4318");
    CHECK(at(r, "receivers.otlp.protocols.http.endpoint")->line == 5);
    const cfg_node_t *batch = at(r, "processors.batch");
    CHECK(batch && batch->kind == CFG_NODE_MAP && batch->n == 0 && batch->line == 7);
    CHECK_STR(scalar(r, "processors.memory_limiter.limit_mib"), "512");
    CHECK_STR(scalar(r, "exporters.otlphttp/tempo.headers.X-Scope-OrgID"), "lab-dev");
    CHECK(at(r, "exporters.otlphttp/tempo.sending_queue.queue_size")->line == 17);
    const cfg_node_t *dbg = at(r, "exporters.debug");
    CHECK(dbg && dbg->kind == CFG_NODE_NULL && dbg->line == 18);
    const cfg_node_t *ext = at(r, "service.extensions");
    CHECK(ext && ext->kind == CFG_NODE_SEQ && ext->n == 1 && ext->line == 20);
    CHECK_STR(ext->children[0]->value, "health_check");
    CHECK_STR(at(r, "service.pipelines.traces.exporters")->children[0]->value, "otlphttp/tempo");
    CHECK(cfg_map_get(r, "nope") == NULL);
    CHECK(cfg_map_get(ext, "x") == NULL);
    CHECK(cfg_map_get(NULL, "x") == NULL);
    cfg_doc_destroy(d);
    cfg_doc_destroy(NULL);
}

UNIT_TEST(load_file)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    char path[] = "/tmp/meltp_test_config_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    REQUIRE(f);
    fputs(otel_cfg, f);
    fclose(f);
    cfg_doc_t *d = cfg_load_file(path, &eb);
    REQUIRE(d);
    CHECK_STR(d->file, path);
    CHECK_STR(scalar(d->root, "exporters.otlphttp/tempo.endpoint"), "http://127.0.0.1:4318");
    cfg_doc_destroy(d);
    unlink(path);

    mt_errbuf_clear(&eb);
    CHECK(cfg_load_file("/nonexistent/meltp.yaml", &eb) == NULL);
    CHECK(starts_with(eb.msg, "/nonexistent/meltp.yaml: cannot open: "));
}

UNIT_TEST(scalars_and_nulls)
{
    mt_errbuf_t eb;
    cfg_doc_t *d = load("a:\n"
                        "b: ~\n"
                        "c: null\n"
                        "d: \"\"\n"
                        "e: 'null'\n"
                        "f: \"007\"\n"
                        "g: |\n"
                        "  line1\n"
                        "  line2\n"
                        "h: !!null x\n",
                        &eb);
    REQUIRE(d);
    const cfg_node_t *r = d->root;
    CHECK(at(r, "a")->kind == CFG_NODE_NULL && at(r, "a")->line == 1);
    CHECK(at(r, "a")->value == NULL);
    CHECK(at(r, "b")->kind == CFG_NODE_NULL);
    CHECK(at(r, "c")->kind == CFG_NODE_NULL);
    CHECK_STR(scalar(r, "d"), "");
    CHECK_STR(scalar(r, "e"), "null");
    CHECK_STR(scalar(r, "f"), "007");
    CHECK_STR(scalar(r, "g"), "line1\nline2\n");
    CHECK(at(r, "h")->kind == CFG_NODE_NULL);
    cfg_doc_destroy(d);

    /* empty and comment-only documents have a NULL root node */
    d = load("", &eb);
    REQUIRE(d);
    CHECK(d->root && d->root->kind == CFG_NODE_NULL);
    cfg_doc_destroy(d);
    d = load("# nothing\n", &eb);
    REQUIRE(d);
    CHECK(d->root->kind == CFG_NODE_NULL);
    cfg_doc_destroy(d);
}

UNIT_TEST(env_substitution)
{
    mt_errbuf_t eb;
    setenv("MELTP_T_A", "alpha", 1);
    setenv("MELTP_T_EMPTY", "", 1);
    unsetenv("MELTP_T_UNSET");
    cfg_doc_t *d = load("a: ${env:MELTP_T_A}\n"
                        "b: ${env:MELTP_T_UNSET:-fallback}\n"
                        "c: ${env:MELTP_T_A:-fallback}\n"
                        "d: ${MELTP_T_A}\n"
                        "e: x-${env:MELTP_T_UNSET}-y\n"
                        "f: price $$5 and $${env:MELTP_T_A}\n"
                        "g: \"quoted ${env:MELTP_T_A}\"\n"
                        "h: ${env:MELTP_T_EMPTY:-dflt}\n"
                        "i: cost $5\n"
                        "j: ${env:MELTP_T_UNSET:-}\n"
                        "k: ${env:MELTP_T_UNSET:-http://h:1/p}\n"
                        "${env:MELTP_T_A}: key\n",
                        &eb);
    if (!d) {
        fprintf(stderr, "    %s\n", eb.msg);
    }
    REQUIRE(d);
    const cfg_node_t *r = d->root;
    CHECK_STR(scalar(r, "a"), "alpha");
    CHECK_STR(scalar(r, "b"), "fallback");
    CHECK_STR(scalar(r, "c"), "alpha");
    CHECK_STR(scalar(r, "d"), "alpha");
    CHECK_STR(scalar(r, "e"), "x--y");
    CHECK_STR(scalar(r, "f"), "price $5 and ${env:MELTP_T_A}");
    CHECK_STR(scalar(r, "g"), "quoted alpha");
    CHECK_STR(scalar(r, "h"), ""); /* set but empty: no default, as in the OTel Collector */
    CHECK_STR(scalar(r, "i"), "cost $5");
    CHECK_STR(scalar(r, "j"), "");
    CHECK_STR(scalar(r, "k"), "http://h:1/p");
    CHECK_STR(scalar(r, "${env:MELTP_T_A}"), "key"); /* keys are not substituted */
    cfg_doc_destroy(d);

    CHECK(load("a:\n  b: ${file:/etc/x}\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:2: a.b: unsupported config provider \"file\""));
    CHECK(load("a: ${env:MELTP_T_A\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:1: a: unterminated \"${\""));
    CHECK(load("a:\n  - x\n  - ${1BAD}\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:3: a[1]: invalid environment variable reference"));
    unsetenv("MELTP_T_A");
    unsetenv("MELTP_T_EMPTY");
}

UNIT_TEST(duplicate_keys)
{
    mt_errbuf_t eb;
    CHECK(load("exporters:\n"
               "  otlp:\n"
               "    endpoint: a\n"
               "    timeout: 5s\n"
               "    endpoint: b\n",
               &eb) == NULL);
    CHECK_STR(eb.msg, "t.yaml:5: exporters.otlp.endpoint: duplicate key (first at line 3)");
    CHECK(load("a: 1\nb: 2\na: 3\n", &eb) == NULL);
    CHECK_STR(eb.msg, "t.yaml:3: a: duplicate key (first at line 1)");
    /* the same key in different maps is fine */
    cfg_doc_t *d = load("a: {x: 1}\nb: {x: 2}\n", &eb);
    CHECK(d != NULL);
    cfg_doc_destroy(d);
}

UNIT_TEST(syntax_errors)
{
    mt_errbuf_t eb;
    /* bad indentation on line 4 */
    CHECK(load("receivers:\n  otlp:\n    protocols: {}\n   bad: x\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:4: "));
    /* a key without ':' on line 2 (libyaml notices on line 3; we blame the key) */
    CHECK(load("a: 1\nb\nc: 2\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:2: could not find expected ':'"));
    /* tab indentation */
    CHECK(load("a:\n\tb: 1\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:2: "));
    /* unclosed flow sequence */
    CHECK(load("a: [1, 2\nb: 3\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:2: "));
    CHECK(load("a: 1\nb: *nope\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:2: found undefined alias"));
    CHECK(load("a: 1\n---\nb: 2\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:3: more than one YAML document"));
    CHECK(load("a: \"x\\0y\"\n", &eb) == NULL);
    CHECK_STR(eb.msg, "t.yaml:1: a: NUL byte in value");
    CHECK(load("[1]: x\n", &eb) == NULL);
    CHECK_STR(eb.msg, "t.yaml:1: map key must be a scalar");
}

UNIT_TEST(aliases_and_merge)
{
    mt_errbuf_t eb;
    cfg_doc_t *d = load("base: &b\n"
                        "  timeout: 5s\n"
                        "  endpoint: x\n"
                        "a: *b\n"
                        "c:\n"
                        "  <<: *b\n"
                        "  endpoint: y\n",
                        &eb);
    if (!d) {
        fprintf(stderr, "    %s\n", eb.msg);
    }
    REQUIRE(d);
    const cfg_node_t *r = d->root;
    CHECK(at(r, "a") == at(r, "base")); /* aliases share the node */
    CHECK_STR(scalar(r, "a.timeout"), "5s");
    CHECK_STR(scalar(r, "c.endpoint"), "y"); /* explicit beats merged */
    CHECK_STR(scalar(r, "c.timeout"), "5s");
    CHECK(at(r, "c")->n == 2);
    cfg_doc_destroy(d);

    CHECK(load("a: &x [*x]\n", &eb) == NULL);
    CHECK(starts_with(eb.msg, "t.yaml:1: a"));
    CHECK(strstr(eb.msg, "recursive alias") != NULL);

    /* "billion laughs": 10^9 nodes after expansion, refused quickly and without the memory */
    CHECK(load("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
               "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
               "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
               "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
               &eb) == NULL);
    CHECK(strstr(eb.msg, "nodes after expanding aliases") != NULL);

    /* nesting cap */
    char deep[2 * (CFG_MAX_DEPTH + 10) + 1];
    size_t k = 0;
    for (int i = 0; i < CFG_MAX_DEPTH + 5; i++) {
        deep[k++] = '[';
    }
    for (int i = 0; i < CFG_MAX_DEPTH + 5; i++) {
        deep[k++] = ']';
    }
    deep[k] = 0;
    CHECK(load(deep, &eb) == NULL);
    CHECK(strstr(eb.msg, "nested deeper than") != NULL);
}

/* ---- cfg_apply ---------------------------------------------------------------------------- */

typedef struct {
    char *endpoint;
    char *token;
    int64_t timeout_ms;
    int64_t max_bytes;
    int64_t queue_size;
    int queue_enabled;
    int on_full;
    double ratio;
    int64_t retries;
    cfg_strmap_t headers;
    cfg_strlist_t tags;
    const cfg_node_t *tls;
} tcfg_t;

static const cfg_field_t tfields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(tcfg_t, endpoint), NULL,
     "where to send"},
    {"token", CFG_T_STRING, NULL, CFG_SECRET, offsetof(tcfg_t, token), NULL, "bearer token"},
    {"timeout", CFG_T_DURATION, "5s", 0, offsetof(tcfg_t, timeout_ms), NULL, "request timeout"},
    {"max_body", CFG_T_BYTES, "4MiB", 0, offsetof(tcfg_t, max_bytes), NULL, "largest body"},
    {"sending_queue.queue_size", CFG_T_INT, "1000", 0, offsetof(tcfg_t, queue_size), NULL,
     "batches held"},
    {"sending_queue.enabled", CFG_T_BOOL, "true", 0, offsetof(tcfg_t, queue_enabled), NULL,
     "queue on/off"},
    {"sending_queue.on_full", CFG_T_ENUM, "refuse", 0, offsetof(tcfg_t, on_full), "refuse|drop",
     "what to do when full"},
    {"ratio", CFG_T_DOUBLE, "0.5", 0, offsetof(tcfg_t, ratio), NULL, "sampling ratio"},
    {"retries", CFG_T_INT, NULL, 0, offsetof(tcfg_t, retries), NULL, "retry count"},
    {"headers", CFG_T_STRMAP, "{X-Default: yes}", 0, offsetof(tcfg_t, headers), NULL,
     "extra headers"},
    {"tags", CFG_T_STRLIST, "[a, b]", 0, offsetof(tcfg_t, tags), NULL, "tags"},
    {"tls", CFG_T_NODE, NULL, 0, offsetof(tcfg_t, tls), NULL, "TLS settings"},
};
#define NTF MT_ARRAY_LEN(tfields)

/* Loads `yaml`, applies the table to exporters.x, returns the error count. */
static int apply_yaml(const char *yaml, cfg_doc_t **dp, cfg_ctx_t *c, tcfg_t *t)
{
    mt_errbuf_t eb;
    *dp = load(yaml, &eb);
    if (!*dp) {
        fprintf(stderr, "    load failed: %s\n", eb.msg);
        return -1;
    }
    cfg_ctx_init(c, (*dp)->file);
    const cfg_node_t *node = at((*dp)->root, "exporters.x");
    return cfg_apply(c, tfields, NTF, node, "exporters.x", t);
}

static void done(cfg_doc_t *d, cfg_ctx_t *c, tcfg_t *t)
{
    cfg_free_fields(tfields, NTF, t);
    cfg_ctx_fini(c);
    cfg_doc_destroy(d);
}

/* Prints the collected errors when their count is not the expected one. */
static void dump_errs(const cfg_ctx_t *c, size_t expected)
{
    for (size_t i = 0; c->nerr != expected && i < c->nerr; i++) {
        fprintf(stderr, "    err: %s\n", c->errs[i]);
    }
}

UNIT_TEST(apply_defaults_and_values)
{
    cfg_doc_t *d;
    cfg_ctx_t c;
    tcfg_t t;
    memset(&t, 0x5a, sizeof(t)); /* cfg_apply must not read what was there */
    int n = apply_yaml("exporters:\n"
                       "  x:\n"
                       "    endpoint: http://h:4318\n"
                       "    sending_queue:\n"
                       "      queue_size: 50\n"
                       "    retries: 3\n"
                       "    tls:\n"
                       "      insecure: true\n",
                       &d, &c, &t);
    dump_errs(&c, 0);
    CHECK(n == 0 && c.nerr == 0);
    CHECK_STR(t.endpoint, "http://h:4318");
    CHECK(t.token == NULL);
    CHECK(t.timeout_ms == 5000);
    CHECK(t.max_bytes == 4 << 20);
    CHECK(t.queue_size == 50);
    CHECK(t.queue_enabled == 1);
    CHECK(t.on_full == 0);
    CHECK(t.ratio == 0.5);
    CHECK(t.retries == 3);
    CHECK(t.headers.n == 1);
    CHECK_STR(t.headers.keys[0], "X-Default");
    CHECK_STR(t.headers.vals[0], "yes");
    CHECK(t.tags.n == 2);
    CHECK_STR(t.tags.items[1], "b");
    CHECK(t.tls && t.tls->kind == CFG_NODE_MAP);
    CHECK_STR(scalar(t.tls, "insecure"), "true");
    done(d, &c, &t);

    memset(&t, 0x5a, sizeof(t));
    n = apply_yaml("exporters:\n"
                   "  x:\n"
                   "    endpoint: 12345\n" /* numbers are fine as strings */
                   "    token: \"s3cret\"\n"
                   "    timeout: 1m30s\n"
                   "    max_body: 64KiB\n"
                   "    ratio: 1e-2\n"
                   "    sending_queue:\n"
                   "      enabled: off\n"
                   "      on_full: drop\n"
                   "    headers:\n"
                   "      X-Scope-OrgID: lab-dev\n"
                   "      Empty:\n"
                   "    tags: []\n"
                   "    retries:\n", /* null keeps the default */
                   &d, &c, &t);
    dump_errs(&c, 0);
    CHECK(n == 0);
    CHECK_STR(t.endpoint, "12345");
    CHECK_STR(t.token, "s3cret");
    CHECK(t.timeout_ms == 90000);
    CHECK(t.max_bytes == 65536);
    CHECK(t.ratio == 0.01);
    CHECK(t.queue_enabled == 0);
    CHECK(t.on_full == 1);
    CHECK(t.queue_size == 1000);
    CHECK(t.retries == 0);
    CHECK(t.headers.n == 2);
    CHECK_STR(t.headers.keys[0], "X-Scope-OrgID");
    CHECK_STR(t.headers.vals[0], "lab-dev");
    CHECK_STR(t.headers.vals[1], "");
    CHECK(t.tags.n == 0);
    CHECK(t.tls == NULL);
    done(d, &c, &t);

    /* A component with no config at all (`x:` or {}) gets the defaults, minus required keys. */
    n = apply_yaml("exporters:\n  x:\n", &d, &c, &t);
    CHECK(n == 1 && c.nerr == 1);
    CHECK_STR(c.errs[0], "t.yaml:2: exporters.x.endpoint: required key is missing");
    CHECK(t.timeout_ms == 5000);
    done(d, &c, &t);

    /* NULL node and NULL path */
    cfg_ctx_init(&c, "f.yaml");
    n = cfg_apply(&c, tfields, NTF, NULL, NULL, &t);
    CHECK(n == 1);
    CHECK_STR(c.errs[0], "f.yaml: endpoint: required key is missing");
    cfg_free_fields(tfields, NTF, &t);
    CHECK(t.tags.n == 0 && t.tags.items == NULL && t.endpoint == NULL);
    cfg_ctx_fini(&c);
}

UNIT_TEST(apply_errors)
{
    cfg_doc_t *d;
    cfg_ctx_t c;
    tcfg_t t;
    int n = apply_yaml("exporters:\n"                        /* 1 */
                       "  x:\n"                              /* 2 */
                       "    bogus: 1\n"                      /* 3 */
                       "    timeout: 5 seconds\n"            /* 4 */
                       "    max_body: lots\n"                /* 5 */
                       "    sending_queue:\n"                /* 6 */
                       "      on_full: block\n"              /* 7 */
                       "      queue_size: 1.5\n"             /* 8 */
                       "      size: 3\n"                     /* 9 */
                       "    retries: 99999999999999999999\n" /* 10 */
                       "    ratio: abc\n"                    /* 11 */
                       "    headers: [a]\n"                  /* 12 */
                       "    tags:\n"                         /* 13 */
                       "      - ok\n"                        /* 14 */
                       "      - {no: 1}\n"                   /* 15 */
                       "    token: [1]\n",                   /* 16 */
                       &d, &c, &t);
    dump_errs(&c, 12);
    CHECK(n == 12 && c.nerr == 12);
    if (c.nerr == 12) {
        CHECK(starts_with(c.errs[0], "t.yaml:3: exporters.x.bogus: unknown key"));
        CHECK_STR(c.errs[0], "t.yaml:3: exporters.x.bogus: unknown key (valid: endpoint, token, "
                             "timeout, max_body, sending_queue, ratio, retries, headers, tags, "
                             "tls)");
        CHECK_STR(c.errs[1], "t.yaml:4: exporters.x.timeout: invalid duration, got "
                             "\"5 seconds\" (use e.g. 200ms, 5s, 1m30s)");
        CHECK_STR(c.errs[2], "t.yaml:5: exporters.x.max_body: invalid size, got \"lots\" "
                             "(use e.g. 1024, 64KiB, 20MiB)");
        CHECK_STR(c.errs[3], "t.yaml:7: exporters.x.sending_queue.on_full: invalid value, got "
                             "\"block\" (expected one of: refuse, drop)");
        CHECK_STR(c.errs[4], "t.yaml:8: exporters.x.sending_queue.queue_size: expected an "
                             "integer, got \"1.5\"");
        CHECK_STR(c.errs[5], "t.yaml:9: exporters.x.sending_queue.size: unknown key (valid: "
                             "queue_size, enabled, on_full)");
        CHECK_STR(c.errs[6], "t.yaml:10: exporters.x.retries: integer out of range, got "
                             "\"99999999999999999999\"");
        CHECK_STR(c.errs[7], "t.yaml:11: exporters.x.ratio: expected a number, got \"abc\"");
        CHECK_STR(c.errs[8], "t.yaml:12: exporters.x.headers: expected a map of strings, got a "
                             "list");
        CHECK_STR(c.errs[9], "t.yaml:15: exporters.x.tags[1]: expected a string, got a map");
        CHECK_STR(c.errs[10], "t.yaml:16: exporters.x.token: expected a string value, got a list");
        /* a missing key is blamed on the map that should hold it (it starts at its first key) */
        CHECK_STR(c.errs[11], "t.yaml:3: exporters.x.endpoint: required key is missing");
    }
    /* failed values keep their defaults */
    CHECK(t.timeout_ms == 5000 && t.queue_size == 1000 && t.headers.n == 1 && t.tags.n == 2);
    done(d, &c, &t);

    /* secrets are never echoed; a prefix that is not a map; a required key with no value */
    n = apply_yaml("exporters:\n"
                   "  x:\n"
                   "    endpoint:\n"
                   "    sending_queue: 5\n"
                   "    timeout: -1s\n",
                   &d, &c, &t);
    dump_errs(&c, 3);
    CHECK(n == 3);
    if (c.nerr == 3) {
        CHECK_STR(c.errs[0], "t.yaml:3: exporters.x.endpoint: required key has no value");
        CHECK_STR(c.errs[1], "t.yaml:4: exporters.x.sending_queue: expected a map, got a scalar");
        CHECK(starts_with(c.errs[2], "t.yaml:5: exporters.x.timeout: invalid duration"));
    }
    done(d, &c, &t);

    static const cfg_field_t sf[] = {
        {"token", CFG_T_INT, NULL, CFG_SECRET, offsetof(tcfg_t, retries), NULL, "secret int"},
    };
    mt_errbuf_t eb;
    d = load("token: hunter2\n", &eb);
    REQUIRE(d);
    cfg_ctx_init(&c, d->file);
    CHECK(cfg_apply(&c, sf, 1, d->root, "", &t) == 1);
    CHECK(c.nerr == 1 && strstr(c.errs[0], "hunter2") == NULL);
    CHECK_STR(c.errs[0], "t.yaml:1: token: expected an integer");
    cfg_ctx_fini(&c);

    /* a component whose config is not a map */
    cfg_ctx_init(&c, d->file);
    CHECK(cfg_apply(&c, tfields, NTF, cfg_map_get(d->root, "token"), "exporters.x", &t) == 1);
    CHECK_STR(c.errs[0], "t.yaml:1: exporters.x: expected a map, got a scalar");
    cfg_free_fields(tfields, NTF, &t);
    cfg_ctx_fini(&c);
    cfg_doc_destroy(d);

    /* a broken default is reported as a table bug */
    static const cfg_field_t bf[] = {
        {"t", CFG_T_DURATION, "5", 0, offsetof(tcfg_t, timeout_ms), NULL, "bad default"},
    };
    cfg_ctx_init(&c, "f.yaml");
    CHECK(cfg_apply(&c, bf, 1, NULL, "p", &t) == 1);
    CHECK(c.nerr == 1 &&
          starts_with(c.errs[0], "f.yaml: p.t: invalid default in the config table"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(ctx_many_errors)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "m.yaml");
    for (int i = 1; i <= 100; i++) {
        cfg_error(&c, i, "a.b", "error %d", i);
    }
    cfg_error(&c, 0, NULL, "no line, no path");
    CHECK(c.nerr == 101);
    CHECK_STR(c.errs[0], "m.yaml:1: a.b: error 1");
    CHECK_STR(c.errs[99], "m.yaml:100: a.b: error 100");
    CHECK_STR(c.errs[100], "m.yaml: no line, no path");
    cfg_ctx_fini(&c);
    CHECK(c.nerr == 0 && c.errs == NULL);
}

UNIT_TEST(print_help)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    cfg_print_help(f, tfields, NTF);
    fclose(f);
    CHECK(strstr(buf, "  endpoint (string, required): where to send\n") != NULL);
    CHECK(strstr(buf, "  token (string, secret): bearer token\n") != NULL);
    CHECK(strstr(buf, "  timeout (duration, default 5s): request timeout\n") != NULL);
    CHECK(strstr(buf, "  sending_queue.on_full (one of refuse|drop, default refuse): ") != NULL);
    free(buf);
}

/* ---- standalone parsers -------------------------------------------------------------------- */

UNIT_TEST(parse_duration)
{
    static const struct {
        const char *in;
        int ok;
        int64_t ms;
    } cases[] = {
        {"0", 1, 0},
        {"0s", 1, 0},
        {"200ms", 1, 200},
        {"5s", 1, 5000},
        {"1m", 1, 60000},
        {"1h", 1, 3600000},
        {"1h30m", 1, 5400000},
        {"1.5s", 1, 1500},
        {".5s", 1, 500},
        {"0.3s", 1, 300},
        {"1m0.5s", 1, 60500},
        {"500us", 1, 1},
        {"1ns", 1, 1},
        {"2000000ns", 1, 2},
        {"1500\xc2\xb5s", 1, 2},
        {"2562047h", 1, 2562047LL * 3600000},
        {"", 0, 0},
        {"5", 0, 0},
        {"-1s", 0, 0},
        {"+1s", 0, 0},
        {"1d", 0, 0},
        {"5 s", 0, 0},
        {" 5s", 0, 0},
        {"s", 0, 0},
        {".s", 0, 0},
        {"1.2.3s", 0, 0},
        {"9999999999h", 0, 0},
        {"2562048h", 0, 0},
        {"1sx", 0, 0},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        int64_t v = -7;
        int rc = cfg_parse_duration_ms(cases[i].in, &v);
        if (cases[i].ok) {
            CHECK(rc == MT_OK);
            CHECK(v == cases[i].ms);
        } else {
            CHECK(rc == MT_EINVAL);
            CHECK(v == -7);
        }
        if ((rc == MT_OK) != cases[i].ok || (cases[i].ok && v != cases[i].ms)) {
            fprintf(stderr, "    duration case \"%s\": rc %d v %lld\n", cases[i].in, rc,
                    (long long)v);
        }
    }
}

UNIT_TEST(parse_bytes)
{
    static const struct {
        const char *in;
        int ok;
        int64_t v;
    } cases[] = {
        {"0", 1, 0},
        {"1024", 1, 1024},
        {"64KiB", 1, 65536},
        {"20MiB", 1, 20 << 20},
        {"1GiB", 1, 1LL << 30},
        {"10MB", 1, 10000000},
        {"512k", 1, 512000},
        {"512Ki", 1, 524288},
        {"1.5MiB", 1, 1572864},
        {"100 B", 1, 100},
        {"2tib", 1, 2LL << 40},
        {"8EiB", 0, 0},
        {"", 0, 0},
        {"-1", 0, 0},
        {"abc", 0, 0},
        {"10 MiBs", 0, 0},
        {"1e3", 0, 0},
        {"10  MB", 0, 0},
        {"99999999999999999999", 0, 0},
        {"9000000TiB", 0, 0},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        int64_t v = -7;
        int rc = cfg_parse_bytes(cases[i].in, &v);
        CHECK((rc == MT_OK) == cases[i].ok);
        CHECK(v == (cases[i].ok ? cases[i].v : -7));
        if ((rc == MT_OK) != cases[i].ok || (cases[i].ok && v != cases[i].v)) {
            fprintf(stderr, "    bytes case \"%s\": rc %d v %lld\n", cases[i].in, rc, (long long)v);
        }
    }
}

UNIT_TEST(parse_bool)
{
    static const struct {
        const char *in;
        int ok, v;
    } cases[] = {
        {"true", 1, 1},  {"True", 1, 1},  {"yes", 1, 1},   {"on", 1, 1},    {"ON", 1, 1},
        {"false", 1, 0}, {"no", 1, 0},    {"off", 1, 0},   {"FALSE", 1, 0}, {"1", 0, 0},
        {"", 0, 0},      {"maybe", 0, 0}, {"truex", 0, 0},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        int v = -7;
        int rc = cfg_parse_bool(cases[i].in, &v);
        CHECK((rc == MT_OK) == cases[i].ok);
        CHECK(v == (cases[i].ok ? cases[i].v : -7));
    }
}

UNIT_TEST(check_http_url)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "f.yaml");
    cfg_check_http_url(&c, NULL, "exporters.x", "endpoint", NULL);
    cfg_check_http_url(&c, NULL, "exporters.x", "endpoint", "http://a:1");
    cfg_check_http_url(&c, NULL, "exporters.x", "endpoint", "https://a");
    CHECK(c.nerr == 0);
    cfg_check_http_url(&c, NULL, "exporters.x", "logs_endpoint", "ftp://a");
    REQUIRE(c.nerr == 1);
    CHECK_STR(c.errs[0],
              "f.yaml: exporters.x.logs_endpoint: \"ftp://a\" is not an http:// or https:// URL");
    cfg_ctx_fini(&c);
}
