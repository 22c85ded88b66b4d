/*
 * test_pipeline.c - tests for collector/core/pipeline.c beyond the queue interplay covered in
 * test_queue.c: real processors (built from their descriptors, unit_proc.h) inside pipelines,
 * what each pipeline's exporter receives when one pipeline changes data and another does not,
 * processor rejects and drops, the inspect short cut that forwards the client's bytes, observers,
 * tenants, and the pass-through format checks (pipeline_accepts_format, pipeline_consume_encoded).
 * Exporters are a recorder whose send() keeps a copy of every request.
 */
#include "unit.h"
#include "unit_proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otlp.h"
#include "otlp_json.h"

/* ---- a recording exporter ------------------------------------------------------------- */

#define REC_MAX 8

typedef struct rec {
    pthread_mutex_t mu;
    int n;
    struct {
        uint32_t items;
        int format;
        char tenant[64];
        size_t len;
        uint8_t *data;
    } got[REC_MAX];
    int accepts_prw1;
    char id[64];
    exporter_common_t cc;
    exporter_t ex;
} rec_t;

static int rec_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                    uint32_t items, send_result_t *res)
{
    (void)ws;
    (void)s;
    rec_t *r = ex->state;
    pthread_mutex_lock(&r->mu);
    if (r->n < REC_MAX) {
        r->got[r->n].items = items;
        r->got[r->n].format = res->format;
        snprintf(r->got[r->n].tenant, sizeof(r->got[r->n].tenant), "%s",
                 res->tenant ? res->tenant : "");
        r->got[r->n].len = len;
        r->got[r->n].data = malloc(len ? len : 1);
        memcpy(r->got[r->n].data, data, len);
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
    return MT_OK;
}

static int rec_accepts(exporter_t *ex, int format)
{
    rec_t *r = ex->state;
    return format == MT_FMT_PRW1 && r->accepts_prw1;
}

static const exporter_ops_t rec_ops = {
    .type = "rec",
    .signals = SIG_ALL,
    .help = "records what it is sent",
    .send = rec_send,
    .accepts_format = rec_accepts,
};

static const exporter_ops_t rec_ops_otlp_only = {
    .type = "rec",
    .signals = SIG_ALL,
    .help = "records what it is sent",
    .send = rec_send,
};

static const batch_settings_t no_batching = {0, 0, 0, 0};

typedef struct fixture {
    rec_t *rec;
    exq_t *q;
    pipeline_t *p;
} fixture_t;

/* One pipeline `id` (traces) with processors `procs` and one recording exporter. */
static void fx_init(fixture_t *f, const char *id, processor_t **procs, size_t nprocs,
                    const exporter_ops_t *ops)
{
    rec_t *r = calloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    snprintf(r->id, sizeof(r->id), "rec/%s", id);
    r->cc.queue_enabled = 1;
    r->cc.num_consumers = 1;
    r->cc.queue_size = 8;
    r->cc.initial_interval = 10;
    r->cc.max_interval = 10;
    r->cc.multiplier = 1;
    r->cc.timeout = 1000;
    r->ex.ops = ops ? ops : &rec_ops;
    r->ex.id = r->id;
    r->ex.cfg = &r->cc;
    r->ex.state = r;
    pipeline_t *p = calloc(1, sizeof(*p));
    p->id = strdup(id);
    p->signal = MT_SIG_TRACES;
    char lb[128];
    snprintf(lb, sizeof(lb), "pipeline=\"%s\"", id);
    p->c_refused = tm_counter("meltp_pipeline_refused_items_total", "Items refused.", lb);
    p->c_dropped_proc =
        tm_counter("meltp_pipeline_processor_dropped_items_total", "Items processors removed.", lb);
    p->procs = nprocs ? calloc(nprocs, sizeof(*procs)) : NULL;
    for (size_t i = 0; i < nprocs; i++) {
        p->procs[i] = procs[i];
    }
    p->nprocs = nprocs;
    f->q = exq_create(&r->ex, p, MT_SIG_TRACES, &no_batching);
    p->queues = calloc(1, sizeof(*p->queues));
    p->queues[0] = f->q;
    p->nqueues = 1;
    f->rec = r;
    f->p = p;
}

static void fx_fini(fixture_t *f)
{
    exq_stop(f->q, mt_now_ns() + 2000000000ull);
    exq_destroy(f->q);
    for (int i = 0; i < f->rec->n; i++) {
        free(f->rec->got[i].data);
    }
    pthread_mutex_destroy(&f->rec->mu);
    free(f->rec);
    free(f->p->procs);
    free(f->p->queues);
    free(f->p->id);
    free(f->p);
}

/* Starts delivery and waits until the exporter got `want` requests; returns how many. */
static int fx_wait(fixture_t *f, int want)
{
    uint64_t until = mt_now_ns() + 2000000000ull;
    for (;;) {
        pthread_mutex_lock(&f->rec->mu);
        int n = f->rec->n;
        pthread_mutex_unlock(&f->rec->mu);
        if (n >= want || mt_now_ns() > until) {
            return n;
        }
        usleep(1000);
    }
}

/* The i-th request the exporter got, as OTLP/JSON (caller frees). */
static char *fx_json(fixture_t *f, int i)
{
    arena_t *a = arena_create(64 * 1024, 0);
    pthread_mutex_lock(&f->rec->mu);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(otlp_request_desc(MT_SIG_TRACES), arena_pb_allocator(a),
                                  f->rec->got[i].len, f->rec->got[i].data);
    pthread_mutex_unlock(&f->rec->mu);
    size_t len = 0;
    char *out = m ? otlp_json_encode(m, &len) : NULL;
    arena_destroy(a);
    return out;
}

/* ---- requests --------------------------------------------------------------------------- */

#define ATTR(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"
#define SPAN(id, name, attrs)                                                                \
    "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"01020304050607" id "\"," \
    "\"name\":\"" name "\",\"attributes\":[" attrs "]}"

typedef struct request {
    arena_t *a;
    ProtobufCMessage *req;
    uint8_t *raw;
    size_t len;
    uint64_t items;
} request_t;

/* Decodes `json` (traces) and packs it, as a receiver would have both forms. */
static int req_init(request_t *r, const char *json)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    r->a = arena_create(64 * 1024, 0);
    r->req = otlp_json_decode(otlp_request_desc(MT_SIG_TRACES), json, strlen(json), r->a, &eb);
    if (!r->req || otlp_check(MT_SIG_TRACES, r->req, &r->items, &eb) != MT_OK) {
        fprintf(stderr, "    req_init: %s\n", eb.msg);
        return -1;
    }
    r->len = protobuf_c_message_get_packed_size(r->req);
    r->raw = malloc(r->len ? r->len : 1);
    protobuf_c_message_pack(r->req, r->raw);
    return 0;
}

static void req_fini(request_t *r)
{
    arena_destroy(r->a);
    free(r->raw);
}

static const char *const two_spans = "{\"resourceSpans\":[{\"resource\":{\"attributes\":[" ATTR(
    "service.name", "svc") "]},"
                           "\"scopeSpans\":[{\"spans\":[" SPAN(
                               "08", "work",
                               ATTR("user", "mail ann@mailbox.io")) "," SPAN("09", "idle",
                                                                             "") "]}]}]}";

/* ---- observers -------------------------------------------------------------------------- */

typedef struct seen {
    int calls;
    uint64_t items;
    char tenant[64];
    char *json;
} seen_t;

static void observe(void *arg, mt_signal_t s, const uint8_t *pb, size_t len, uint64_t items,
                    const char *tenant)
{
    seen_t *o = arg;
    o->calls++;
    o->items = items;
    snprintf(o->tenant, sizeof(o->tenant), "%s", tenant ? tenant : "");
    arena_t *a = arena_create(64 * 1024, 0);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, pb);
    size_t jl = 0;
    free(o->json);
    o->json = m ? otlp_json_encode(m, &jl) : NULL;
    arena_destroy(a);
}

/* ---- tests -------------------------------------------------------------------------------- */

UNIT_TEST(changing_pipeline_and_plain_pipeline_get_their_own_bytes)
{
    cfg_ctx_t c1;
    processor_t *res = unit_proc_create("resource",
                                        "attributes:\n"
                                        "  - {key: team, action: insert, value: a}\n",
                                        &c1);
    REQUIRE(res != NULL);
    fixture_t f1, f2;
    fx_init(&f1, "changed", &res, 1, NULL);
    fx_init(&f2, "plain", NULL, 0, NULL);
    request_t r;
    REQUIRE(req_init(&r, two_spans) == 0);
    seen_t seen = {0};
    int nobs = pipeline_observer_count();
    REQUIRE(pipeline_add_observer(observe, &seen) == MT_OK);
    CHECK(pipeline_observer_count() == nobs + 1);

    pipeline_t *ps[] = {f1.p, f2.p};
    consume_result_t cr;
    pipeline_consume(ps, 2, MT_SIG_TRACES, r.req, r.raw, r.len, r.items, "acme", r.a, &cr);
    CHECK(cr.status == MT_OK);
    CHECK(cr.rejected == 0);
    REQUIRE(exq_start(f1.q) == MT_OK && exq_start(f2.q) == MT_OK);
    REQUIRE(fx_wait(&f1, 1) == 1 && fx_wait(&f2, 1) == 1);
    /* the plain pipeline forwards the client's bytes as they were */
    CHECK(f2.rec->got[0].len == r.len && memcmp(f2.rec->got[0].data, r.raw, r.len) == 0);
    CHECK(f2.rec->got[0].items == 2);
    CHECK_STR(f2.rec->got[0].tenant, "acme");
    char *j1 = fx_json(&f1, 0);
    REQUIRE(j1 != NULL);
    CHECK(strstr(j1, ATTR("team", "a")) != NULL);
    CHECK(f1.rec->got[0].items == 2);
    CHECK_STR(f1.rec->got[0].tenant, "acme");
    /* observers see the request once, as the first pipeline delivered it */
    CHECK(seen.calls == 1);
    CHECK(seen.items == 2);
    CHECK_STR(seen.tenant, "acme");
    CHECK(seen.json && strstr(seen.json, ATTR("team", "a")) != NULL);
    pipeline_remove_observer(observe, &seen);
    CHECK(pipeline_observer_count() == nobs);
    pipeline_consume(ps, 2, MT_SIG_TRACES, r.req, r.raw, r.len, r.items, "", r.a, &cr);
    CHECK(seen.calls == 1); /* removed: not called again */
    free(seen.json);
    free(j1);
    req_fini(&r);
    fx_fini(&f1);
    fx_fini(&f2);
    unit_proc_destroy(res);
    cfg_ctx_fini(&c1);
}

UNIT_TEST(second_changing_pipeline_starts_from_the_original_request)
{
    cfg_ctx_t c1, c2;
    processor_t *px = unit_proc_create("resource",
                                       "attributes:\n"
                                       "  - {key: x, action: insert, value: one}\n",
                                       &c1);
    processor_t *py = unit_proc_create("resource",
                                       "attributes:\n"
                                       "  - {key: y, action: insert, value: two}\n",
                                       &c2);
    REQUIRE(px && py);
    fixture_t f1, f2;
    fx_init(&f1, "x", &px, 1, NULL);
    fx_init(&f2, "y", &py, 1, NULL);
    pipeline_t *ps[] = {f1.p, f2.p};
    consume_result_t cr;
    /* both with the client's bytes (protobuf) and without them (a JSON request) */
    for (int raw = 1; raw >= 0; raw--) {
        request_t r;
        REQUIRE(req_init(&r, two_spans) == 0);
        pipeline_consume(ps, 2, MT_SIG_TRACES, r.req, raw ? r.raw : NULL, raw ? r.len : 0, r.items,
                         "", r.a, &cr);
        CHECK(cr.status == MT_OK);
        req_fini(&r);
    }
    REQUIRE(exq_start(f1.q) == MT_OK && exq_start(f2.q) == MT_OK);
    REQUIRE(fx_wait(&f1, 2) == 2 && fx_wait(&f2, 2) == 2);
    for (int i = 0; i < 2; i++) {
        char *j1 = fx_json(&f1, i), *j2 = fx_json(&f2, i);
        REQUIRE(j1 && j2);
        CHECK(strstr(j1, ATTR("x", "one")) != NULL && strstr(j1, "\"y\"") == NULL);
        CHECK(strstr(j2, ATTR("y", "two")) != NULL);
        CHECK(strstr(j2, "\"x\"") == NULL); /* not what pipeline x did */
        free(j1);
        free(j2);
    }
    fx_fini(&f1);
    fx_fini(&f2);
    unit_proc_destroy(px);
    unit_proc_destroy(py);
    cfg_ctx_fini(&c1);
    cfg_ctx_fini(&c2);
}

UNIT_TEST(processor_drop_is_partial_success_and_counted)
{
    cfg_ctx_t c;
    processor_t *g = unit_proc_create("synthetic_guard", "detectors: [email]\naction: drop\n", &c);
    REQUIRE(g != NULL);
    fixture_t f;
    fx_init(&f, "guarded", &g, 1, NULL);
    uint64_t before = tm_get(f.p->c_dropped_proc);
    request_t r;
    REQUIRE(req_init(&r, two_spans) == 0);
    consume_result_t cr;
    pipeline_consume(&f.p, 1, MT_SIG_TRACES, r.req, r.raw, r.len, r.items, "", r.a, &cr);
    CHECK(cr.status == MT_OK);
    CHECK(cr.rejected == 1);
    CHECK(strstr(cr.msg, "synthetic_guard: 1 items dropped") != NULL);
    CHECK(tm_get(f.p->c_dropped_proc) == before + 1);
    REQUIRE(exq_start(f.q) == MT_OK);
    REQUIRE(fx_wait(&f, 1) == 1);
    CHECK(f.rec->got[0].items == 1); /* the queue counts what is left */
    char *j = fx_json(&f, 0);
    CHECK(j && strstr(j, "\"idle\"") && !strstr(j, "\"work\""));
    free(j);
    req_fini(&r);
    fx_fini(&f);
    unit_proc_destroy(g);
    cfg_ctx_fini(&c);
}

UNIT_TEST(everything_dropped_enqueues_nothing_for_that_pipeline)
{
    cfg_ctx_t c;
    processor_t *g = unit_proc_create("synthetic_guard", "detectors: [email]\naction: drop\n", &c);
    REQUIRE(g != NULL);
    fixture_t f;
    fx_init(&f, "all-dropped", &g, 1, NULL);
    request_t r;
    REQUIRE(req_init(&r, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[" SPAN(
                             "08", "a", ATTR("e", "x@mailbox.io")) "]}]}]}") == 0);
    consume_result_t cr;
    pipeline_consume(&f.p, 1, MT_SIG_TRACES, r.req, r.raw, r.len, r.items, "", r.a, &cr);
    CHECK(cr.status == MT_OK);
    CHECK(cr.rejected == 1);
    CHECK(exq_fill_ratio(f.q) == 0.0);
    req_fini(&r);
    fx_fini(&f);
    unit_proc_destroy(g);
    cfg_ctx_fini(&c);
}

UNIT_TEST(processor_reject_refuses_the_whole_request_everywhere)
{
    char path[] = "/tmp/meltp-unit-pipe-schema-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const char *schema = "version: 1\nresource:\n  - name: svc\n    required: [service.name]\n"
                         "    action: reject\n    message: no service\n";
    REQUIRE(write(fd, schema, strlen(schema)) == (ssize_t)strlen(schema));
    close(fd);
    char yaml[128];
    snprintf(yaml, sizeof(yaml), "schema_file: %s\n", path);
    cfg_ctx_t c;
    processor_t *v = unit_proc_create("validate", yaml, &c);
    REQUIRE(v != NULL);
    fixture_t f1, f2;
    fx_init(&f1, "plain2", NULL, 0, NULL);
    fx_init(&f2, "checked", &v, 1, NULL);
    request_t r;
    REQUIRE(req_init(&r, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[" SPAN(
                             "08", "a", "") "]}]}]}") == 0);
    pipeline_t *ps[] = {f1.p, f2.p};
    consume_result_t cr;
    pipeline_consume(ps, 2, MT_SIG_TRACES, r.req, r.raw, r.len, r.items, "", r.a, &cr);
    CHECK(cr.status == MT_EINVAL);
    CHECK(strstr(cr.msg, "no service") != NULL);
    /* the pipeline without the check did not get it either */
    CHECK(exq_fill_ratio(f1.q) == 0.0);
    CHECK(exq_fill_ratio(f2.q) == 0.0);
    req_fini(&r);
    fx_fini(&f1);
    fx_fini(&f2);
    unit_proc_destroy(v);
    cfg_ctx_fini(&c);
    unlink(path);
}

UNIT_TEST(inspect_saying_nothing_to_do_forwards_client_bytes)
{
    cfg_ctx_t c;
    processor_t *g = unit_proc_create("synthetic_guard", "detectors: [email]\n", &c);
    REQUIRE(g != NULL);
    fixture_t f;
    fx_init(&f, "clean", &g, 1, NULL);
    request_t r;
    REQUIRE(req_init(&r, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[" SPAN(
                             "08", "a", ATTR("k", "nothing personal")) "]}]}]}") == 0);
    /* the decoded request is not even needed: raw bytes alone */
    consume_result_t cr;
    pipeline_consume(&f.p, 1, MT_SIG_TRACES, NULL, r.raw, r.len, r.items, "", r.a, &cr);
    CHECK(cr.status == MT_OK);
    /* dirty data without a decoded request: decoded here, redacted */
    request_t d;
    REQUIRE(req_init(&d, two_spans) == 0);
    pipeline_consume(&f.p, 1, MT_SIG_TRACES, NULL, d.raw, d.len, d.items, "", d.a, &cr);
    CHECK(cr.status == MT_OK);
    REQUIRE(exq_start(f.q) == MT_OK);
    REQUIRE(fx_wait(&f, 2) == 2);
    CHECK(f.rec->got[0].len == r.len && memcmp(f.rec->got[0].data, r.raw, r.len) == 0);
    char *j = fx_json(&f, 1);
    CHECK(j && strstr(j, "mail ") && !strstr(j, "ann@mailbox.io"));
    free(j);
    req_fini(&r);
    req_fini(&d);
    fx_fini(&f);
    unit_proc_destroy(g);
    cfg_ctx_fini(&c);
}

UNIT_TEST(accepts_format_needs_no_processors_and_willing_exporters)
{
    cfg_ctx_t c;
    processor_t *res = unit_proc_create("resource",
                                        "attributes:\n"
                                        "  - {key: a, action: delete}\n",
                                        &c);
    REQUIRE(res != NULL);
    fixture_t fa, fb, fp, fo;
    fx_init(&fa, "fmt-a", NULL, 0, NULL);
    fx_init(&fb, "fmt-b", NULL, 0, NULL);
    fx_init(&fp, "fmt-proc", &res, 1, NULL);
    fx_init(&fo, "fmt-otlp", NULL, 0, &rec_ops_otlp_only);
    fa.rec->accepts_prw1 = fb.rec->accepts_prw1 = fp.rec->accepts_prw1 = 1;
    pipeline_t *ab[] = {fa.p, fb.p}, *ap[] = {fa.p, fp.p}, *ao[] = {fa.p, fo.p};
    CHECK(pipeline_accepts_format(ab, 2, MT_FMT_PRW1) == 1);
    CHECK(pipeline_accepts_format(ap, 2, MT_FMT_PRW1) == 0);
    CHECK(pipeline_accepts_format(ao, 2, MT_FMT_PRW1) == 0);
    CHECK(pipeline_accepts_format(ab, 0, MT_FMT_PRW1) == 0);
    CHECK(pipeline_accepts_format(ap, 2, MT_FMT_OTLP) == 1);
    fb.rec->accepts_prw1 = 0;
    CHECK(pipeline_accepts_format(ab, 2, MT_FMT_PRW1) == 0);
    fx_fini(&fa);
    fx_fini(&fb);
    fx_fini(&fp);
    fx_fini(&fo);
    unit_proc_destroy(res);
    cfg_ctx_fini(&c);
}

UNIT_TEST(consume_encoded_keeps_format_and_shows_observers_the_otlp_form)
{
    fixture_t f1, f2;
    fx_init(&f1, "enc-1", NULL, 0, NULL);
    fx_init(&f2, "enc-2", NULL, 0, NULL);
    f1.rec->accepts_prw1 = f2.rec->accepts_prw1 = 1;
    request_t r;
    REQUIRE(req_init(&r, two_spans) == 0);
    seen_t seen = {0};
    REQUIRE(pipeline_add_observer(observe, &seen) == MT_OK);
    const uint8_t wire[] = {0x0a, 0x03, 'a', 'b', 'c'};
    pipeline_t *ps[] = {f1.p, f2.p};
    consume_result_t cr;
    pipeline_consume_encoded(ps, 2, MT_SIG_TRACES, MT_FMT_PRW1, wire, sizeof(wire), 2, "t1", r.req,
                             &cr);
    CHECK(cr.status == MT_OK);
    CHECK(seen.calls == 1 && seen.items == 2);
    CHECK_STR(seen.tenant, "t1");
    CHECK(seen.json && strstr(seen.json, "\"idle\"") != NULL);
    pipeline_remove_observer(observe, &seen);
    REQUIRE(exq_start(f1.q) == MT_OK && exq_start(f2.q) == MT_OK);
    REQUIRE(fx_wait(&f1, 1) == 1 && fx_wait(&f2, 1) == 1);
    for (int i = 0; i < 2; i++) {
        fixture_t *f = i ? &f2 : &f1;
        CHECK(f->rec->got[0].format == MT_FMT_PRW1);
        CHECK(f->rec->got[0].len == sizeof(wire));
        CHECK(memcmp(f->rec->got[0].data, wire, sizeof(wire)) == 0);
        CHECK_STR(f->rec->got[0].tenant, "t1");
    }
    free(seen.json);
    req_fini(&r);
    fx_fini(&f1);
    fx_fini(&f2);
}

UNIT_TEST(observer_table_is_bounded)
{
    seen_t s[9];
    int base = pipeline_observer_count();
    int added = 0;
    for (int i = 0; i < 9; i++) {
        added += pipeline_add_observer(observe, &s[i]) == MT_OK;
    }
    CHECK(added == 8 - base);
    CHECK(pipeline_observer_count() == 8);
    for (int i = 0; i < 9; i++) {
        pipeline_remove_observer(observe, &s[i]);
    }
    CHECK(pipeline_observer_count() == base);
}

UNIT_TEST(more_than_64_pipelines_is_refused_not_truncated)
{
    fixture_t f;
    fx_init(&f, "many", NULL, 0, NULL);
    pipeline_t *ps[65];
    for (int i = 0; i < 65; i++) {
        ps[i] = f.p;
    }
    request_t r;
    REQUIRE(req_init(&r, two_spans) == 0);
    consume_result_t cr;
    pipeline_consume(ps, 65, MT_SIG_TRACES, r.req, r.raw, r.len, r.items, "", r.a, &cr);
    CHECK(cr.status == MT_EINVAL);
    CHECK(strstr(cr.msg, "more than 64 pipelines") != NULL);
    CHECK(exq_fill_ratio(f.q) == 0.0);
    req_fini(&r);
    fx_fini(&f);
}
