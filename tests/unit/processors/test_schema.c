/*
 * test_schema.c - tests for collector/processors/schema.c: bad schema files give FILE:LINE errors, rules
 * fire with the right action and counts, check and apply agree, cardinality overflow.
 */
#include "unit.h"
#include "schema.h"
#include "otlp.h"

#include <stdlib.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;

static schema_t *load(const char *text, cfg_ctx_t *c)
{
    cfg_ctx_init(c, "main.yaml");
    return schema_load_string("s.yaml", text, strlen(text), c);
}

static int has_err(const cfg_ctx_t *c, const char *needle)
{
    for (size_t i = 0; i < c->nerr; i++) {
        if (strstr(c->errs[i], needle)) {
            return 1;
        }
    }
    for (size_t i = 0; i < c->nerr; i++) {
        fprintf(stderr, "    err: %s\n", c->errs[i]);
    }
    return 0;
}

UNIT_TEST(schema_bad_files)
{
    cfg_ctx_t c;
    CHECK(load("version: 1\ntraces:\n  - name: a\n    span_kind: servr\n", &c) == NULL);
    CHECK(has_err(&c, "s.yaml:4: traces[0].span_kind: \"servr\" is not one of"));
    cfg_ctx_fini(&c);
    CHECK(load("version: 1\nmetrics:\n  - name: a\n    bogus: 1\n  - name: a\n", &c) == NULL);
    CHECK(has_err(&c, "s.yaml:4: metrics[0].bogus: unknown key"));
    CHECK(has_err(&c, "s.yaml:5: metrics[1].name: duplicate rule name \"a\""));
    cfg_ctx_fini(&c);
    CHECK(load("version: 1\nlogs:\n  - name: r\n    attributes:\n      k: {regex: '(['}\n", &c) ==
          NULL);
    CHECK(has_err(&c, "s.yaml:5: logs[0].attributes.k.regex: bad regular expression"));
    cfg_ctx_fini(&c);
    CHECK(load("version: 1\nmetrics:\n  - name: c\n    cardinality_limit: 10\n    action: reject\n",
               &c) == NULL);
    CHECK(has_err(&c, "s.yaml:5: metrics[0].action: cardinality rules take"));
    cfg_ctx_fini(&c);
    CHECK(load("traces:\n  - {action: tag}\n", &c) == NULL);
    CHECK(has_err(&c, "s.yaml:2: traces[0]: name: required"));
    CHECK(has_err(&c, "version: required"));
    cfg_ctx_fini(&c);
    CHECK(load("version: 1\ntraces: [\n", &c) == NULL); /* YAML syntax error keeps FILE:LINE */
    CHECK(has_err(&c, "s.yaml:"));
    cfg_ctx_fini(&c);
    cfg_ctx_init(&c, "main.yaml");
    CHECK(schema_load("/nonexistent/s.yaml", &c) == NULL && c.nerr == 1);
    cfg_ctx_fini(&c);
    /* the shipped example loads */
    cfg_ctx_init(&c, "main.yaml");
    schema_t *sc = schema_load("configs/schemas/example.yaml", &c);
    CHECK(sc != NULL);
    if (!sc) {
        has_err(&c, "-");
    }
    schema_destroy(sc);
    cfg_ctx_fini(&c);
}

/* ---- building requests ------------------------------------------------------------------ */

static kv_t *skv(arena_t *a, const char *k, const char *v)
{
    kv_t *kv = arena_alloc(a, sizeof(*kv));
    av_t *av = arena_alloc(a, sizeof(*av));
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = arena_strndup(a, v, strlen(v));
    kv->key = arena_strndup(a, k, strlen(k));
    kv->value = av;
    return kv;
}

/* One resource (service), one scope, n spans; span i gets attribute method=methods[i]. */
static ProtobufCMessage *traces(arena_t *a, const char *service, size_t n,
                                const char *const *methods)
{
    Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *r = arena_alloc(a, sizeof(*r));
    opentelemetry__proto__collector__v1__export_trace_service_request__init(r);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = arena_alloc(a, sizeof(*rs));
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->resource = arena_alloc(a, sizeof(*rs->resource));
    opentelemetry__proto__resource__v1__resource__init(rs->resource);
    if (service) {
        rs->resource->n_attributes = 1;
        rs->resource->attributes = arena_alloc(a, sizeof(kv_t *));
        rs->resource->attributes[0] = skv(a, "service.name", service);
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = arena_alloc(a, sizeof(*ss));
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    ss->n_spans = n;
    ss->spans = arena_alloc(a, n * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        Opentelemetry__Proto__Trace__V1__Span *sp = arena_alloc(a, sizeof(*sp));
        opentelemetry__proto__trace__v1__span__init(sp);
        sp->name = (char *)"op";
        sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
        if (methods[i]) {
            sp->n_attributes = 1;
            sp->attributes = arena_alloc(a, sizeof(kv_t *));
            sp->attributes[0] = skv(a, "http.request.method", methods[i]);
        }
        ss->spans[i] = sp;
    }
    rs->n_scope_spans = 1;
    rs->scope_spans = arena_alloc(a, sizeof(void *));
    rs->scope_spans[0] = ss;
    r->n_resource_spans = 1;
    r->resource_spans = arena_alloc(a, sizeof(void *));
    r->resource_spans[0] = rs;
    return &r->base;
}

static const char *TSCHEMA = "version: 1\n"
                             "resource:\n"
                             "  - name: svc\n"
                             "    required: [service.name]\n"
                             "    action: reject\n"
                             "    message: need a service\n"
                             "traces:\n"
                             "  - name: method-required\n"
                             "    span_kind: server\n"
                             "    required: [http.request.method]\n"
                             "    action: drop\n"
                             "  - name: method-enum\n"
                             "    attributes:\n"
                             "      http.request.method: {type: string, enum: [GET, POST]}\n"
                             "    action: tag\n";

typedef struct hits {
    int n;
    char last_rule[64];
    char svc[64];
} hits_t;

static void on_hit(void *arg, const schema_hit_t *h)
{
    hits_t *x = arg;
    x->n++;
    snprintf(x->last_rule, sizeof(x->last_rule), "%s", h->rule);
    snprintf(x->svc, sizeof(x->svc), "%s", h->service);
}

UNIT_TEST(schema_traces_actions)
{
    cfg_ctx_t c;
    schema_t *sc = load(TSCHEMA, &c);
    REQUIRE(sc);
    cfg_ctx_fini(&c);
    CHECK(schema_covers(sc, MT_SIG_TRACES) && schema_covers(sc, MT_SIG_LOGS) &&
          !schema_covers(sc, MT_SIG_PROFILES));
    arena_t *a = arena_create(1 << 16, 0);
    const char *m[] = {"GET", NULL, "BREW", "POST"};
    ProtobufCMessage *req = traces(a, "cart", 4, m);
    hits_t h = {0};
    schema_result_t res;
    REQUIRE(schema_check(sc, MT_SIG_TRACES, req, on_hit, &h, &res) == MT_OK);
    CHECK(res.violations == 2 && res.dropped == 1 && res.tagged == 1 && !res.reject);
    CHECK(h.n == 2);
    CHECK_STR(h.svc, "cart");
    Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest *tr = (void *)req;
    CHECK(tr->resource_spans[0]->scope_spans[0]->n_spans == 4); /* check does not change */

    schema_result_t res2;
    REQUIRE(schema_apply(sc, MT_SIG_TRACES, req, a, NULL, NULL, &res2) == MT_OK);
    CHECK(res2.violations == res.violations && res2.dropped == res.dropped);
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = tr->resource_spans[0]->scope_spans[0];
    REQUIRE(ss->n_spans == 3);
    /* the BREW span is tagged */
    Opentelemetry__Proto__Trace__V1__Span *brew = ss->spans[1];
    REQUIRE(brew->n_attributes == 2);
    CHECK_STR(brew->attributes[1]->key, "otel.schema.violation");
    CHECK_STR(brew->attributes[1]->value->string_value, "method-enum");
    /* the encoding of the result is valid and decodes to 3 spans */
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(req, buf);
    uint64_t items = 0;
    CHECK(otlp_scan(MT_SIG_TRACES, buf, len, &items) == MT_OK && items == 3);
    free(buf);

    /* no service.name: reject with the rule message */
    ProtobufCMessage *req2 = traces(a, NULL, 1, m);
    REQUIRE(schema_apply(sc, MT_SIG_TRACES, req2, a, NULL, NULL, &res) == MT_OK);
    CHECK(res.reject && strstr(res.msg, "need a service"));
    arena_destroy(a);
    schema_destroy(sc);
}

/* One gauge metric "http.x" with n points, label route=r<i % distinct>. */
static ProtobufCMessage *gauge(arena_t *a, size_t n, size_t distinct, const char *unit)
{
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *r =
        arena_alloc(a, sizeof(*r));
    opentelemetry__proto__collector__v1__export_metrics_service_request__init(r);
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = arena_alloc(a, sizeof(*rm));
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = arena_alloc(a, sizeof(*sm));
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    Opentelemetry__Proto__Metrics__V1__Metric *m = arena_alloc(a, sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = (char *)"http.x.duration";
    m->unit = (char *)unit;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = arena_alloc(a, sizeof(*m->gauge));
    opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
    m->gauge->n_data_points = n;
    m->gauge->data_points = arena_alloc(a, n * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p = arena_alloc(a, sizeof(*p));
        opentelemetry__proto__metrics__v1__number_data_point__init(p);
        char v[32];
        snprintf(v, sizeof(v), "r%zu", i % distinct);
        p->n_attributes = 1;
        p->attributes = arena_alloc(a, sizeof(kv_t *));
        p->attributes[0] = skv(a, "route", v);
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        m->gauge->data_points[i] = p;
    }
    sm->n_metrics = 1;
    sm->metrics = arena_alloc(a, sizeof(void *));
    sm->metrics[0] = m;
    rm->n_scope_metrics = 1;
    rm->scope_metrics = arena_alloc(a, sizeof(void *));
    rm->scope_metrics[0] = sm;
    r->n_resource_metrics = 1;
    r->resource_metrics = arena_alloc(a, sizeof(void *));
    r->resource_metrics[0] = rm;
    return &r->base;
}

UNIT_TEST(schema_metrics_cardinality_and_units)
{
    const char *text = "version: 1\n"
                       "metrics:\n"
                       "  - name: seconds\n"
                       "    duration_unit: s\n"
                       "    action: drop\n"
                       "  - name: card\n"
                       "    match: '^http\\.'\n"
                       "    cardinality_limit: 3\n";
    cfg_ctx_t c;
    schema_t *sc = load(text, &c), *sc2 = schema_load_string("s.yaml", text, strlen(text), &c);
    REQUIRE(sc && sc2);
    cfg_ctx_fini(&c);
    arena_t *a = arena_create(1 << 16, 0);
    /* wrong unit: the whole metric is dropped, cardinality never sees it */
    schema_result_t res;
    REQUIRE(schema_apply(sc, MT_SIG_METRICS, gauge(a, 5, 5, "ms"), a, NULL, NULL, &res) == MT_OK);
    CHECK(res.violations == 1 && res.dropped == 5 && res.overflowed == 0);
    /* 5 distinct series, limit 3: 2 points overflow; check on a second schema counts the same */
    ProtobufCMessage *req = gauge(a, 6, 5, "s");
    schema_result_t chk;
    REQUIRE(schema_check(sc2, MT_SIG_METRICS, req, NULL, NULL, &chk) == MT_OK);
    REQUIRE(schema_apply(sc, MT_SIG_METRICS, req, a, NULL, NULL, &res) == MT_OK);
    CHECK(res.violations == 2 && res.overflowed == 2 && res.dropped == 0);
    CHECK(chk.violations == res.violations && chk.overflowed == res.overflowed);
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *mr = (void *)req;
    Opentelemetry__Proto__Metrics__V1__Gauge *g =
        mr->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge;
    CHECK_STR(g->data_points[3]->attributes[0]->key, "otel.metric.overflow");
    CHECK_STR(g->data_points[3]->attributes[0]->value->string_value, "true");
    CHECK_STR(g->data_points[5]->attributes[0]->key, "route"); /* r0 again: known series */
    /* known series stay admitted on the next request */
    REQUIRE(schema_apply(sc, MT_SIG_METRICS, gauge(a, 3, 3, "s"), a, NULL, NULL, &res) == MT_OK);
    CHECK(res.violations == 0);
    schema_reset_cardinality(sc);
    arena_destroy(a);
    schema_destroy(sc);
    schema_destroy(sc2);
}
