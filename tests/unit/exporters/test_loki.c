/*
 * test_loki.c - tests for exporters/loki.c: the label policy (defaults, aliases, the 15-label
 * bound, sanitised names, level and kind), structured metadata, line formats, timestamps and
 * their fallbacks, per-stream ordering, tenants, and Loki's 400 messages. Pushes are decoded
 * with the protobuf-c code generated from proto/loki_push.proto (independent of the
 * exporter's hand-written encoder) or with jansson for JSON, from the real OTLP JS SDK log
 * fixtures and from crafted requests.
 */
#include "unit.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"
#include "config.h"
#include "loki_push.pb-c.h"
#include "otlp_collector.pb-c.h"

/* exporters/loki.c entry points exposed for tests (it has no header: one file, one type) */
typedef int (*loki_push_fn)(void *arg, size_t index, const char *tenant, const uint8_t *body,
                            size_t len, uint64_t entries);
int loki_build(exporter_t *ex, const uint8_t *data, size_t len, const char *req_tenant,
               uint64_t now_ns, int count_events_, uint64_t skip, loki_push_fn fn, void *arg,
               uint64_t *dropped, size_t *npushes);
const char *loki_reason(const char *msg, size_t len, uint64_t *ignored);
const char *loki_level(int sevnum, const char *text);

typedef Opentelemetry__Proto__Common__V1__AnyValue anyvalue_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue keyvalue_t;
typedef Opentelemetry__Proto__Logs__V1__LogRecord logrecord_t;

/* ---- an exporter from YAML ---------------------------------------------------------------- */

typedef struct tex {
    exporter_t ex;
    cfg_field_t *fields;
    size_t nfields;
    cfg_doc_t *doc;
    int nerr;
} tex_t;

static int tex_open(tex_t *t, const char *yaml, int print_errors)
{
    memset(t, 0, sizeof(*t));
    const exporter_ops_t *ops = registry_exporter("loki");
    if (!ops) {
        return -1;
    }
    t->nfields = exporter_common_nfields + ops->nfields;
    t->fields = calloc(t->nfields, sizeof(cfg_field_t));
    memcpy(t->fields, exporter_common_fields, exporter_common_nfields * sizeof(cfg_field_t));
    memcpy(t->fields + exporter_common_nfields, ops->fields, ops->nfields * sizeof(cfg_field_t));
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    t->doc = cfg_load_string("t.yaml", yaml, strlen(yaml), &eb);
    if (!t->doc) {
        fprintf(stderr, "    yaml: %s\n", eb.msg);
        return -1;
    }
    t->ex.ops = ops;
    t->ex.id = (char *)"loki/test";
    t->ex.cfg = calloc(1, ops->cfg_size);
    cfg_ctx_t c;
    cfg_ctx_init(&c, "t.yaml");
    cfg_apply(&c, t->fields, t->nfields, t->doc->root, "exporters.loki", t->ex.cfg);
    ops->validate(&c, t->ex.cfg, "exporters.loki", t->doc->root);
    t->nerr = (int)c.nerr;
    if (c.nerr && print_errors) {
        cfg_ctx_print(&c, stderr);
    }
    cfg_ctx_fini(&c);
    if (t->nerr) {
        return -1;
    }
    return ops->create(&t->ex, &eb) == MT_OK ? 0 : -1;
}

static void tex_close(tex_t *t)
{
    if (t->ex.ops) {
        t->ex.ops->destroy(&t->ex);
    }
    cfg_free_fields(t->fields, t->nfields, t->ex.cfg);
    free(t->ex.cfg);
    free(t->fields);
    cfg_doc_destroy(t->doc);
}

/* ---- collecting pushes ------------------------------------------------------------------- */

#define MAXP 8
typedef struct pushes {
    int n;
    char tenant[MAXP][160];
    uint8_t *body[MAXP];
    size_t len[MAXP];
    uint64_t entries[MAXP];
    Logproto__PushRequest *pr[MAXP];
    json_t *js[MAXP];
} pushes_t;

static int collect(void *arg, size_t index, const char *tenant, const uint8_t *body, size_t len,
                   uint64_t entries)
{
    pushes_t *p = arg;
    (void)index;
    if (p->n >= MAXP) {
        return MT_EPERM;
    }
    snprintf(p->tenant[p->n], sizeof(p->tenant[0]), "%s", tenant);
    p->body[p->n] = malloc(len + 1);
    memcpy(p->body[p->n], body, len);
    p->body[p->n][len] = 0;
    p->len[p->n] = len;
    p->entries[p->n] = entries;
    p->pr[p->n] = logproto__push_request__unpack(NULL, len, body);
    p->js[p->n] = json_loadb((const char *)body, len, 0, NULL);
    p->n++;
    return MT_OK;
}

static void pushes_free(pushes_t *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->body[i]);
        if (p->pr[i]) {
            logproto__push_request__free_unpacked(p->pr[i], NULL);
        }
        json_decref(p->js[i]);
    }
    memset(p, 0, sizeof(*p));
}

static int run(tex_t *t, const uint8_t *data, size_t len, const char *tenant, pushes_t *p)
{
    memset(p, 0, sizeof(*p));
    uint64_t dropped = 0;
    size_t np = 0;
    return loki_build(&t->ex, data, len, tenant, 1234567890123456789ull, 0, 0, collect, p, &dropped,
                      &np);
}

static const char *sm_get(const Logproto__EntryAdapter *e, const char *name)
{
    for (size_t i = 0; i < e->n_structuredmetadata; i++) {
        if (!strcmp(e->structuredmetadata[i]->name, name)) {
            return e->structuredmetadata[i]->value;
        }
    }
    return NULL;
}

static uint64_t ts_of(const Logproto__EntryAdapter *e)
{
    return e->timestamp
               ? (uint64_t)e->timestamp->seconds * 1000000000ull + (uint64_t)e->timestamp->nanos
               : 0;
}

/* Checks a selector: `{a="x", b="y"}`, valid names, strictly sorted, at most 15. Returns the
 * number of labels or -1. */
static int check_selector(const char *s)
{
    char prev[128] = "";
    int n = 0;
    if (*s++ != '{') {
        return -1;
    }
    while (*s && *s != '}') {
        char name[128];
        size_t k = 0;
        while (*s && *s != '=' && k < sizeof(name) - 1) {
            name[k++] = *s++;
        }
        name[k] = 0;
        if (*s++ != '=' || *s++ != '"' || !k || strcmp(prev, name) >= 0) {
            return -1;
        }
        for (size_t i = 0; i < k; i++) {
            char c = name[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i && c >= '0' && c <= '9'))) {
                return -1;
            }
        }
        snprintf(prev, sizeof(prev), "%s", name);
        while (*s && *s != '"') {
            s += *s == '\\' ? 2 : 1;
        }
        if (*s++ != '"') {
            return -1;
        }
        n++;
        if (*s == ',') {
            s += 2;
        }
    }
    return *s == '}' && n <= 15 ? n : -1;
}

static const char *CFG_BASE = "endpoint: http://127.0.0.1:1/loki/api/v1/push\n";

/* ---- the real SDK fixtures ----------------------------------------------------------------- */

UNIT_TEST(fixture_n100_labels_metadata_lines)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/otlp-js/logs-n100/logs-proto-1.bin", unit_fixtures_dir());
    size_t len = 0;
    uint8_t *data = unit_read_file(path, &len);
    REQUIRE(data);
    tex_t t;
    REQUIRE(tex_open(&t, CFG_BASE, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, len, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0]);
    CHECK_STR(p.tenant[0], "");
    CHECK(p.entries[0] == 100);
    const Logproto__PushRequest *pr = p.pr[0];
    size_t total = 0, events = 0, with_tid = 0, kv_bodies = 0, bytes_bodies = 0;
    for (size_t s = 0; s < pr->n_streams; s++) {
        const Logproto__StreamAdapter *st = pr->streams[s];
        int nl = check_selector(st->labels);
        CHECK(nl >= 4);
        if (nl < 0) {
            fprintf(stderr, "    bad selector %s\n", st->labels);
        }
        CHECK(strstr(st->labels, "service_name=\"fixture-logs") != NULL);
        CHECK(strstr(st->labels, "service_namespace=\"acceptance\"") != NULL);
        CHECK(strstr(st->labels, "deployment_environment=\"test\"") != NULL);
        CHECK(strstr(st->labels, "level=\"") != NULL);
        CHECK(strstr(st->labels, "instance") == NULL); /* high cardinality stays out */
        int is_event = strstr(st->labels, "kind=\"event\"") != NULL;
        for (size_t i = 0; i < st->n_entries; i++) {
            const Logproto__EntryAdapter *e = st->entries[i];
            total++;
            if (i) {
                CHECK(ts_of(e) >= ts_of(st->entries[i - 1]));
            }
            CHECK(ts_of(e) > 1795787040000000000ull && ts_of(e) < 1795787050000000000ull);
            CHECK(sm_get(e, "code_function_name") != NULL);
            CHECK(sm_get(e, "log_index") != NULL);
            CHECK(sm_get(e, "thread_name") != NULL);
            const char *roles = sm_get(e, "user_roles");
            CHECK(roles && !strcmp(roles, "[\"reader\",\"writer\"]"));
            const char *retry = sm_get(e, "retry");
            CHECK(retry && (!strcmp(retry, "true") || !strcmp(retry, "false")));
            const char *tid = sm_get(e, "trace_id");
            if (tid) {
                with_tid++;
                CHECK(strlen(tid) == 32);
                CHECK(sm_get(e, "span_id") && strlen(sm_get(e, "span_id")) == 16);
            }
            if (sm_get(e, "event_name")) {
                events++;
                CHECK_STR(sm_get(e, "event_name"), "acceptance.order.event");
                CHECK(is_event);
            } else {
                CHECK(!is_event);
            }
            if (e->line[0] == '{') {
                kv_bodies++;
                json_t *j = json_loads(e->line, 0, NULL);
                CHECK(j && json_is_object(j));
                CHECK(j && json_integer_value(json_object_get(j, "order_id")) >= 1000);
                CHECK(j && !strcmp(json_string_value(
                                       json_object_get(json_object_get(j, "customer"), "tier")),
                                   "gold"));
                json_decref(j);
            } else if (!strncmp(e->line, "3q2+7", 5)) {
                bytes_bodies++; /* base64 of de ad be ef .. */
            } else if (e->line[0] == '[') {
                CHECK_STR(e->line, "[\"line one\",2,3.5,true]");
            } else {
                CHECK(strstr(e->line, " message ") != NULL);
                CHECK(strstr(e->line, "h\xc3\xa9llo \xe2\x9c\x93") != NULL);
            }
        }
    }
    CHECK(total == 100);
    CHECK(events == 14);
    CHECK(with_tid == 75);
    CHECK(kv_bodies == 17);
    CHECK(bytes_bodies == 16);
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

UNIT_TEST(fixture_n1_exact_entry)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/otlp-js/logs-n1/logs-proto-1.bin", unit_fixtures_dir());
    size_t len = 0;
    uint8_t *data = unit_read_file(path, &len);
    REQUIRE(data);
    tex_t t;
    REQUIRE(tex_open(&t, CFG_BASE, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, len, "tenant-a", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0] && p.pr[0]->n_streams == 1);
    CHECK_STR(p.tenant[0], "tenant-a");
    const Logproto__StreamAdapter *st = p.pr[0]->streams[0];
    CHECK_STR(st->labels, "{deployment_environment=\"test\", level=\"trace\", "
                          "service_name=\"fixture-logs\", service_namespace=\"acceptance\"}");
    REQUIRE(st->n_entries == 1);
    const Logproto__EntryAdapter *e = st->entries[0];
    CHECK(e->timestamp->seconds == 1795787044 && e->timestamp->nanos == 759000000);
    CHECK_STR(e->line, "trace message 0: user=u0 took 0.0ms h\xc3\xa9llo \xe2\x9c\x93");
    CHECK_STR(sm_get(e, "trace_id"), "26c3848747f2cc8a69c26db4bb7309bb");
    CHECK_STR(sm_get(e, "span_id"), "b50e6676cf1fb53b");
    CHECK_STR(sm_get(e, "latency_ms"), "0");
    CHECK_STR(sm_get(e, "log_index"), "0");
    CHECK(st->hash == 0);
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

UNIT_TEST(fixture_json_encoding)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/otlp-js/logs-n100/logs-proto-1.bin", unit_fixtures_dir());
    size_t len = 0;
    uint8_t *data = unit_read_file(path, &len);
    REQUIRE(data);
    tex_t t;
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%sencoding: json\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, len, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.js[0]);
    json_t *streams = json_object_get(p.js[0], "streams");
    REQUIRE(json_is_array(streams));
    size_t total = 0;
    for (size_t s = 0; s < json_array_size(streams); s++) {
        json_t *st = json_array_get(streams, s);
        CHECK(json_string_value(json_object_get(json_object_get(st, "stream"), "service_name")));
        json_t *vals = json_object_get(st, "values");
        const char *prev = NULL;
        for (size_t i = 0; i < json_array_size(vals); i++) {
            json_t *v = json_array_get(vals, i);
            const char *ts = json_string_value(json_array_get(v, 0));
            CHECK(ts && strlen(ts) == 19);
            CHECK(!prev || strcmp(prev, ts) <= 0);
            prev = ts;
            CHECK(json_is_string(json_array_get(v, 1)));
            json_t *md = json_array_get(v, 2);
            CHECK(json_is_object(md));
            CHECK(json_is_string(json_object_get(md, "log_index")));
            total++;
        }
    }
    CHECK(total == 100);
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

/* ---- crafted requests ------------------------------------------------------------------------ */

typedef struct rec {
    uint64_t t, obs;
    int sev;
    const char *sevtext, *body, *event_name, *attr_k, *attr_v;
} rec_t;

/* One resource (service.name = svc unless NULL, optional tenant attribute) per call; the
 * packed ExportLogsServiceRequest of `nres` resources goes to *out (malloc'd). */
typedef struct res_spec {
    const char *svc, *tenant;
    const rec_t *recs;
    size_t n;
} res_spec_t;

static keyvalue_t *kv_str(const char *k, const char *v)
{
    keyvalue_t *kv = calloc(1, sizeof(*kv));
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = (char *)k;
    kv->value = calloc(1, sizeof(anyvalue_t));
    opentelemetry__proto__common__v1__any_value__init(kv->value);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = (char *)v;
    return kv;
}

static void kv_free(keyvalue_t *kv)
{
    free(kv->value);
    free(kv);
}

static uint8_t *make_req(const res_spec_t *rs, size_t nres, size_t *len)
{
    Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest req;
    opentelemetry__proto__collector__v1__export_logs_service_request__init(&req);
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl[4], *rlp[4];
    Opentelemetry__Proto__Resource__V1__Resource res[4];
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl[4], *slp[4];
    keyvalue_t *rattrs[4][2];
    logrecord_t *recs[4][32];
    anyvalue_t bodies[4][32];
    keyvalue_t *lattrs[4][32][1];
    for (size_t i = 0; i < nres; i++) {
        opentelemetry__proto__logs__v1__resource_logs__init(&rl[i]);
        opentelemetry__proto__resource__v1__resource__init(&res[i]);
        opentelemetry__proto__logs__v1__scope_logs__init(&sl[i]);
        size_t na = 0;
        if (rs[i].svc) {
            rattrs[i][na++] = kv_str("service.name", rs[i].svc);
        }
        if (rs[i].tenant) {
            rattrs[i][na++] = kv_str("tenant", rs[i].tenant);
        }
        res[i].n_attributes = na;
        res[i].attributes = rattrs[i];
        rl[i].resource = &res[i];
        for (size_t r = 0; r < rs[i].n; r++) {
            const rec_t *x = &rs[i].recs[r];
            logrecord_t *lr = recs[i][r] = calloc(1, sizeof(logrecord_t));
            opentelemetry__proto__logs__v1__log_record__init(lr);
            lr->time_unix_nano = x->t;
            lr->observed_time_unix_nano = x->obs;
            lr->severity_number = x->sev;
            if (x->sevtext) {
                lr->severity_text = (char *)x->sevtext;
            }
            opentelemetry__proto__common__v1__any_value__init(&bodies[i][r]);
            bodies[i][r].value_case =
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            bodies[i][r].string_value = (char *)(x->body ? x->body : "");
            lr->body = &bodies[i][r];
            if (x->event_name) {
                lr->event_name = (char *)x->event_name;
            }
            if (x->attr_k) {
                lattrs[i][r][0] = kv_str(x->attr_k, x->attr_v);
                lr->n_attributes = 1;
                lr->attributes = lattrs[i][r];
            }
        }
        sl[i].n_log_records = rs[i].n;
        sl[i].log_records = recs[i];
        slp[i] = &sl[i];
        rl[i].n_scope_logs = 1;
        rl[i].scope_logs = &slp[i];
        rlp[i] = &rl[i];
    }
    req.n_resource_logs = nres;
    req.resource_logs = rlp;
    *len = opentelemetry__proto__collector__v1__export_logs_service_request__get_packed_size(&req);
    uint8_t *out = malloc(*len + 1);
    opentelemetry__proto__collector__v1__export_logs_service_request__pack(&req, out);
    for (size_t i = 0; i < nres; i++) {
        for (size_t a = 0; a < res[i].n_attributes; a++) {
            kv_free(rattrs[i][a]);
        }
        for (size_t r = 0; r < rs[i].n; r++) {
            if (recs[i][r]->n_attributes) {
                kv_free(lattrs[i][r][0]);
            }
            free(recs[i][r]);
        }
    }
    return out;
}

UNIT_TEST(sorted_per_stream_stable_and_timestamp_fallbacks)
{
    rec_t r[] = {
        {.t = 3000, .sev = 9, .body = "c"},
        {.t = 1000, .sev = 9, .body = "a"},
        {.t = 2000, .sev = 9, .body = "b1"},
        {.t = 2000, .sev = 9, .body = "b2"}, /* same ts: arrival order kept */
        {.t = 0, .obs = 1500, .sev = 9, .body = "observed"},
        {.t = 0, .obs = 0, .sev = 17, .body = "receipt"},
    };
    res_spec_t rs = {"svc", NULL, r, 6};
    size_t len;
    uint8_t *data = make_req(&rs, 1, &len);
    tex_t t;
    REQUIRE(tex_open(&t, CFG_BASE, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, len, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0]);
    REQUIRE(p.pr[0]->n_streams == 2);
    const Logproto__StreamAdapter *info = p.pr[0]->streams[0], *err = p.pr[0]->streams[1];
    CHECK_STR(info->labels, "{level=\"info\", service_name=\"svc\"}");
    CHECK_STR(err->labels, "{level=\"error\", service_name=\"svc\"}");
    REQUIRE(info->n_entries == 5 && err->n_entries == 1);
    const char *want[] = {"a", "observed", "b1", "b2", "c"};
    for (int i = 0; i < 5; i++) {
        CHECK_STR(info->entries[i]->line, want[i]);
    }
    CHECK(ts_of(info->entries[1]) == 1500);
    CHECK(ts_of(err->entries[0]) == 1234567890123456789ull);
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

UNIT_TEST(events_kind_label_and_attribute_labels)
{
    rec_t r[] = {
        {.t = 10, .sevtext = "WARNING", .body = "x", .event_name = "user.login"},
        {.t = 11, .body = "y", .attr_k = "event.name", .attr_v = "order.paid"},
        {.t = 12, .sevtext = "weird", .body = "z", .attr_k = "http.route", .attr_v = "/a"},
    };
    res_spec_t rs = {NULL, NULL, r, 3};
    size_t len;
    uint8_t *data = make_req(&rs, 1, &len);
    tex_t t;
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%slabels:\n  attributes: [http.route]\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, len, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0] && p.pr[0]->n_streams == 3);
    const Logproto__PushRequest *pr = p.pr[0];
    CHECK_STR(pr->streams[0]->labels,
              "{kind=\"event\", level=\"warn\", service_name=\"unknown_service\"}");
    CHECK_STR(sm_get(pr->streams[0]->entries[0], "event_name"), "user.login");
    CHECK_STR(pr->streams[1]->labels, "{kind=\"event\", service_name=\"unknown_service\"}");
    CHECK_STR(sm_get(pr->streams[1]->entries[0], "event_name"), "order.paid");
    CHECK_STR(pr->streams[2]->labels,
              "{http_route=\"/a\", level=\"unknown\", service_name=\"unknown_service\"}");
    CHECK(sm_get(pr->streams[2]->entries[0], "http_route") == NULL); /* a label, not metadata */
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

UNIT_TEST(no_labels_at_all_gets_unknown_service)
{
    rec_t r[] = {{.t = 10, .body = "x"}};
    res_spec_t rs = {NULL, NULL, r, 1};
    size_t len;
    uint8_t *data = make_req(&rs, 1, &len);
    tex_t t;
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%slabels:\n  resource: [host.name]\n  level: false\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, len, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0] && p.pr[0]->n_streams == 1);
    CHECK_STR(p.pr[0]->streams[0]->labels, "{service_name=\"unknown_service\"}");
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

UNIT_TEST(tenant_from_attribute_splits_pushes)
{
    rec_t a[] = {{.t = 1, .body = "a1"}, {.t = 2, .body = "a2"}};
    rec_t b[] = {{.t = 3, .body = "b1"}};
    rec_t c[] = {{.t = 4, .body = "c1"}};
    rec_t d[] = {{.t = 5, .body = "bad"}};
    res_spec_t rs[] = {
        {"s", "team-a", a, 2}, {"s", "team-b", b, 1}, {"s", NULL, c, 1}, {"s", "no/slash", d, 1}};
    size_t len;
    uint8_t *data = make_req(rs, 4, &len);
    tex_t t;
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%stenant_from_attribute: tenant\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    pushes_t p;
    memset(&p, 0, sizeof(p));
    uint64_t dropped = 0;
    size_t np = 0;
    CHECK(loki_build(&t.ex, data, len, "from-request", 1, 0, 0, collect, &p, &dropped, &np) ==
          MT_OK);
    CHECK(dropped == 1); /* invalid tenant value */
    REQUIRE(p.n == 3);
    CHECK_STR(p.tenant[0], "team-a");
    CHECK(p.entries[0] == 2);
    CHECK_STR(p.tenant[1], "team-b");
    CHECK_STR(p.tenant[2], "from-request");
    pushes_free(&p);
    /* retry: only the push that did not finish */
    memset(&p, 0, sizeof(p));
    CHECK(loki_build(&t.ex, data, len, "from-request", 1, 0, 0x3, collect, &p, &dropped, &np) ==
          MT_OK);
    CHECK(p.n == 1 && !strcmp(p.tenant[0], "from-request"));
    pushes_free(&p);
    tex_close(&t);
    /* a static tenant_id wins over the request's */
    snprintf(cfg, sizeof(cfg), "%stenant_id: pinned\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    CHECK(run(&t, data, len, "from-request", &p) == MT_OK);
    CHECK(p.n == 1 && !strcmp(p.tenant[0], "pinned") && p.entries[0] == 5);
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

UNIT_TEST(line_formats_without_structured_metadata)
{
    rec_t r[] = {
        {.t = 7, .sev = 13, .body = "disk \"full\"", .attr_k = "path", .attr_v = "/var x"}};
    res_spec_t rs = {"svc", NULL, r, 1};
    size_t len;
    uint8_t *data = make_req(&rs, 1, &len);
    tex_t t;
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%sline_format: logfmt\nstructured_metadata: false\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, len, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0] && p.pr[0]->n_streams == 1);
    const Logproto__EntryAdapter *e = p.pr[0]->streams[0]->entries[0];
    CHECK_STR(e->line, "msg=\"disk \\\"full\\\"\" path=\"/var x\"");
    CHECK(e->n_structuredmetadata == 0);
    pushes_free(&p);
    tex_close(&t);
    snprintf(cfg, sizeof(cfg), "%sline_format: json\nstructured_metadata: false\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    CHECK(run(&t, data, len, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0]);
    e = p.pr[0]->streams[0]->entries[0];
    CHECK_STR(e->line, "{\"body\":\"disk \\\"full\\\"\",\"path\":\"/var x\"}");
    pushes_free(&p);
    tex_close(&t);
    free(data);
}

UNIT_TEST(config_validation)
{
    tex_t t;
    char cfg[1024];
    /* 16 label names: refused */
    snprintf(cfg, sizeof(cfg),
             "%slabels:\n  attributes: [a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11]\n", CFG_BASE);
    CHECK(tex_open(&t, cfg, 0) != 0 && t.nerr == 1);
    tex_close(&t);
    snprintf(cfg, sizeof(cfg), "%smax_labels: 5\n", CFG_BASE);
    CHECK(tex_open(&t, cfg, 0) != 0 && t.nerr == 1); /* the defaults are 6 names */
    tex_close(&t);
    snprintf(cfg, sizeof(cfg), "%smax_labels: 16\n", CFG_BASE);
    CHECK(tex_open(&t, cfg, 0) != 0);
    tex_close(&t);
    snprintf(cfg, sizeof(cfg), "%slabels:\n  resource: [k8s.pod.name=__pod]\n", CFG_BASE);
    CHECK(tex_open(&t, cfg, 0) != 0 && t.nerr == 1);
    tex_close(&t);
    snprintf(cfg, sizeof(cfg), "%sheaders:\n  X-Scope-OrgID: x\n", CFG_BASE);
    CHECK(tex_open(&t, cfg, 0) != 0 && t.nerr == 1);
    tex_close(&t);
    snprintf(cfg, sizeof(cfg), "%stenant_id: \"a|b\"\n", CFG_BASE);
    CHECK(tex_open(&t, cfg, 0) != 0 && t.nerr == 1);
    tex_close(&t);
    CHECK(tex_open(&t, "encoding: json\n", 0) != 0); /* endpoint required */
    tex_close(&t);
    snprintf(cfg, sizeof(cfg), "%slabels:\n  attributes: [a1, a2, a3, a4, a5, a6, a7, a8, a9]\n",
             CFG_BASE);
    CHECK(tex_open(&t, cfg, 1) == 0); /* exactly 15 */
    tex_close(&t);
}

UNIT_TEST(loki_400_messages)
{
    uint64_t n = 0;
    const char *m1 =
        "entry with timestamp 2024-01-01 00:00:00 +0000 UTC ignored, reason: 'entry too far "
        "behind, entry timestamp is: 2024-01-01T00:00:00Z, oldest acceptable timestamp is: "
        "2024-01-01T02:00:00Z',\nuser 'fake', total ignored: 3 out of 10 for stream: {a=\"b\"}";
    CHECK_STR(loki_reason(m1, strlen(m1), &n), "too_far_behind");
    CHECK(n == 3);
    const char *m2 = "5 errors like: Max entry size '10' bytes exceeded for stream '{a=\"b\"}' "
                     "while adding an entry with length '11' bytes";
    CHECK_STR(loki_reason(m2, strlen(m2), &n), "line_too_long");
    CHECK(n == 5);
    const char *m3 = "entry with timestamp x ignored, reason: 'entry out of order' for stream: "
                     "{foo=\"bar\"},\ntotal ignored: 1 out of 1";
    CHECK_STR(loki_reason(m3, strlen(m3), &n), "out_of_order");
    CHECK(n == 1);
    const char *m4 = "Ingestion rate limit exceeded for user x (limit: 10 bytes/sec)";
    CHECK_STR(loki_reason(m4, strlen(m4), &n), "rate_limited");
    const char *m5 = "Maximum active stream limit exceeded when trying to create stream {a=\"b\"}";
    CHECK_STR(loki_reason(m5, strlen(m5), &n), "stream_limit");
    CHECK_STR(loki_reason("something else", 14, &n), "http_400");
    CHECK(n == 0);
}

UNIT_TEST(levels)
{
    CHECK_STR(loki_level(1, NULL), "trace");
    CHECK_STR(loki_level(8, ""), "debug");
    CHECK_STR(loki_level(9, "whatever"), "info");
    CHECK_STR(loki_level(16, NULL), "warn");
    CHECK_STR(loki_level(17, NULL), "error");
    CHECK_STR(loki_level(24, NULL), "fatal");
    CHECK_STR(loki_level(0, "Warning"), "warn");
    CHECK_STR(loki_level(0, "ERR"), "error");
    CHECK_STR(loki_level(0, "critical"), "fatal");
    CHECK_STR(loki_level(0, "verbose"), "unknown");
    CHECK(loki_level(0, "") == NULL);
}

/* ---- the exporter walks the OTLP wire itself (no protobuf-c decode) ------------------------ */

/* Appends a length-delimited field (payload < 128 bytes) to buf at *n. */
static void w_ld(uint8_t *buf, size_t *n, unsigned field, const void *p, size_t len)
{
    buf[(*n)++] = (uint8_t)(field << 3 | 2);
    buf[(*n)++] = (uint8_t)len;
    memcpy(buf + *n, p, len);
    *n += len;
}

UNIT_TEST(wire_walk_field_order_nul_strings_and_bad_input)
{
    /* Resource after its ScopeLogs, a body string with a NUL (protobuf-c's copy ended there),
     * an int attribute, severity 17, time_unix_nano; then the same batch truncated. */
    uint8_t av[64], kv[64], res[64], attr[64], rec[128], sl[160], rl[255], req[260];
    size_t nav = 0, nkv = 0, nres = 0, nattr = 0, nrec = 0, nsl = 0, nrl = 0, nreq = 0;
    w_ld(av, &nav, 1, "wire-svc", 8);
    w_ld(kv, &nkv, 1, "service.name", 12);
    w_ld(kv, &nkv, 2, av, nav);
    w_ld(res, &nres, 1, kv, nkv);
    uint8_t ival[2] = {3 << 3, 42};
    nav = 0;
    w_ld(av, &nav, 1, "ab\0cd", 5);
    nkv = 0;
    w_ld(attr, &nattr, 1, "n.v", 3);
    w_ld(attr, &nattr, 2, ival, 2);
    uint64_t ts = 1700000000123456789ull;
    rec[nrec++] = 1 << 3 | 1;
    for (int i = 0; i < 8; i++) {
        rec[nrec++] = (uint8_t)(ts >> (8 * i));
    }
    w_ld(rec, &nrec, 5, av, nav);
    w_ld(rec, &nrec, 6, attr, nattr);
    rec[nrec++] = 2 << 3;
    rec[nrec++] = 17;
    w_ld(sl, &nsl, 2, rec, nrec);
    w_ld(rl, &nrl, 2, sl, nsl);
    w_ld(rl, &nrl, 1, res, nres);
    w_ld(req, &nreq, 1, rl, nrl);
    tex_t t;
    REQUIRE(tex_open(&t, CFG_BASE, 1) == 0);
    pushes_t p;
    CHECK(run(&t, req, nreq, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0] && p.pr[0]->n_streams == 1);
    const Logproto__StreamAdapter *st = p.pr[0]->streams[0];
    CHECK_STR(st->labels, "{level=\"error\", service_name=\"wire-svc\"}");
    REQUIRE(st->n_entries == 1);
    CHECK_STR(st->entries[0]->line, "ab");
    CHECK_STR(sm_get(st->entries[0], "n_v"), "42");
    CHECK(ts_of(st->entries[0]) == ts);
    pushes_free(&p);
    /* truncated: undecodable, nothing pushed */
    CHECK(run(&t, req, nreq - 1, "", &p) == MT_EINVAL);
    CHECK(p.n == 0);
    pushes_free(&p);
    tex_close(&t);
}

/* Entries are encoded as they arrive and their length prefix fixed afterwards: entries under
 * 128 bytes, over 16383 bytes (a 3-byte length) and in between must all decode, and a batch
 * made of several requests (each in order, overlapping in time) must come out merged by
 * timestamp with arrival order kept on ties, in both encodings. */
#define B2                                                                          \
    "b2: a line of more than 128 bytes, so that its entry needs a two-byte length " \
    "prefix ..................................................................."
UNIT_TEST(entry_lengths_and_merged_requests)
{
    char *big = malloc(20001);
    REQUIRE(big);
    memset(big, 'x', 20000);
    big[20000] = 0;
    rec_t ra[] = {
        {.t = 1000, .sev = 9, .body = "a1"},
        {.t = 3000, .sev = 9, .body = big, .attr_k = "k.a", .attr_v = "v"},
    };
    rec_t rb[] = {
        {.t = 1000, .sev = 9, .body = "b1", .attr_k = "k.b", .attr_v = "w"},
        {.t = 2000, .sev = 9, .body = B2},
        {.t = 3000, .sev = 9, .body = ""},
    };
    res_spec_t rsa = {"svc", NULL, ra, 2}, rsb = {"svc", NULL, rb, 3};
    size_t la, lb;
    uint8_t *da = make_req(&rsa, 1, &la), *db = make_req(&rsb, 1, &lb);
    uint8_t *data = malloc(la + lb);
    REQUIRE(data);
    memcpy(data, da, la);
    memcpy(data + la, db, lb);
    const char *want[] = {"a1", "b1", B2, big, ""};
    tex_t t;
    REQUIRE(tex_open(&t, CFG_BASE, 1) == 0);
    pushes_t p;
    CHECK(run(&t, data, la + lb, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.pr[0] && p.pr[0]->n_streams == 1);
    const Logproto__StreamAdapter *st = p.pr[0]->streams[0];
    REQUIRE(st->n_entries == 5);
    for (int i = 0; i < 5; i++) {
        CHECK_STR(st->entries[i]->line, want[i]);
    }
    CHECK(ts_of(st->entries[3]) == 3000 && ts_of(st->entries[4]) == 3000);
    CHECK_STR(sm_get(st->entries[1], "k_b"), "w");
    CHECK_STR(sm_get(st->entries[3], "k_a"), "v");
    CHECK(sm_get(st->entries[0], "k_a") == NULL);
    pushes_free(&p);
    tex_close(&t);
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%sencoding: json\njson_compression: none\n", CFG_BASE);
    REQUIRE(tex_open(&t, cfg, 1) == 0);
    CHECK(run(&t, data, la + lb, "", &p) == MT_OK);
    REQUIRE(p.n == 1 && p.js[0]);
    json_t *vals =
        json_object_get(json_array_get(json_object_get(p.js[0], "streams"), 0), "values");
    REQUIRE(json_array_size(vals) == 5);
    for (size_t i = 0; i < 5; i++) {
        CHECK_STR(json_string_value(json_array_get(json_array_get(vals, i), 1)), want[i]);
    }
    CHECK_STR(json_string_value(json_array_get(json_array_get(vals, 0), 0)), "1000");
    CHECK(json_array_size(json_array_get(vals, 0)) == 2); /* no metadata: no object */
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_array_get(vals, 1), 2), "k_b")),
              "w");
    pushes_free(&p);
    tex_close(&t);
    free(data);
    free(da);
    free(db);
    free(big);
}
