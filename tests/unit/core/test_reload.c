/*
 * test_reload.c - the pieces of a reload without a gap: the config diff (which exporters a
 * reload carries over as they are), the listener registry (collector/core/listener.c) with a
 * server that is not libmicrohttpd, and a reload of a running service: the unchanged
 * exporter's queue is the same object afterwards, the changed one's is new, the receiver's
 * listener is kept.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "component.h"
#include "listener.h"
#include "service.h"

static service_t *load(const char *yaml)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "reload.yaml");
    service_t *s = service_load("reload.yaml", yaml, &c);
    cfg_ctx_print(&c, stderr);
    cfg_ctx_fini(&c);
    return s;
}

#define PIPE                                           \
    "service:\n"                                       \
    "  telemetry: {metrics: {level: none}}\n"          \
    "  extensions: [file_storage/a, file_storage/b]\n" \
    "  pipelines:\n"                                   \
    "    traces: {receivers: [otlp], exporters: [otlphttp, otlphttp/2, file]}\n"
#define RECV "receivers:\n  otlp:\n    protocols: {http: {endpoint: 127.0.0.1:0}}\n"
#define EXTS                                  \
    "extensions:\n"                           \
    "  file_storage/a: {directory: /tmp/a}\n" \
    "  file_storage/b: {directory: %s}\n"

static service_t *loadf(const char *exporters, const char *dir_b)
{
    char yaml[4096];
    char exts[256];
    snprintf(exts, sizeof(exts), EXTS, dir_b);
    snprintf(yaml, sizeof(yaml), "%s%sexporters:\n%s%s", RECV, exts, exporters, PIPE);
    return load(yaml);
}

UNIT_TEST(config_diff_names_the_unchanged_exporters)
{
    service_t *a =
        loadf("  otlphttp: {endpoint: 'http://x:1', timeout: 2s, headers: {a: b, c: d}}\n"
              "  otlphttp/2: {endpoint: 'http://x:2', sending_queue: {storage: "
              "file_storage/b}}\n"
              "  file: {path: /tmp/f.jsonl}\n",
              "/tmp/b");
    /* key order does not matter; a changed value, a changed storage directory do */
    service_t *b =
        loadf("  otlphttp: {timeout: 2s, headers: {c: d, a: b}, endpoint: 'http://x:1'}\n"
              "  otlphttp/2: {endpoint: 'http://x:2', sending_queue: {storage: "
              "file_storage/b}}\n"
              "  file: {path: /tmp/g.jsonl}\n",
              "/tmp/b2");
    REQUIRE(a && b);
    CHECK(service_exporter_unchanged(a, b, "otlphttp"));
    CHECK(!service_exporter_unchanged(a, b, "otlphttp/2")); /* its file_storage moved */
    CHECK(!service_exporter_unchanged(a, b, "file"));
    CHECK(!service_exporter_unchanged(a, b, "nosuch"));
    CHECK(service_exporter_unchanged(a, a, "otlphttp/2"));
    service_t *c =
        loadf("  otlphttp: {endpoint: 'http://x:1', timeout: 3s, headers: {a: b, c: d}}\n"
              "  otlphttp/2: {endpoint: 'http://x:2', sending_queue: {storage: "
              "file_storage/b}}\n"
              "  file: {path: /tmp/f.jsonl}\n",
              "/tmp/b");
    REQUIRE(c);
    CHECK(!service_exporter_unchanged(a, c, "otlphttp"));
    CHECK(service_exporter_unchanged(a, c, "otlphttp/2"));
    CHECK(service_exporter_unchanged(a, c, "file"));
    service_stop_destroy(a);
    service_stop_destroy(b);
    service_stop_destroy(c);
}

/* A stand-in server with no transport: what a gRPC server would register. */
typedef struct fake_srv {
    int closed;
} fake_srv_t;

static void fake_close(void *impl)
{
    ((fake_srv_t *)impl)->closed = 1;
}

typedef struct release_arg {
    listener_binding_t *b;
    _Atomic int done;
} release_arg_t;

static void *release_thread(void *arg)
{
    release_arg_t *ra = arg;
    listener_release(ra->b);
    atomic_store(&ra->done, 1);
    return NULL;
}

UNIT_TEST(listener_registry_keeps_an_address_and_swaps_its_handler)
{
    static fake_srv_t srv; /* outlives the listener: its close() only marks it */
    int h_old = 1, h_new = 2;
    size_t before = listener_count();
    listener_t *l = listener_add("fake [127.0.0.1]:9", &srv, fake_close);
    REQUIRE(l);
    listener_binding_t *b_old = listener_bind(l, &h_old);
    listener_binding_t *held;
    CHECK(listener_enter(l, &held) == &h_old);
    listener_leave(held);
    CHECK(listener_find("fake [127.0.0.1]:9") == NULL); /* only a reload may take it over */

    listener_stage_begin();
    CHECK(listener_find("fake [127.0.0.1]:10") == NULL); /* another address: a new server */
    listener_t *l2 = listener_find("fake [127.0.0.1]:9");
    REQUIRE(l2 == l);
    CHECK(listener_find("fake [127.0.0.1]:9") == NULL); /* one successor per address */
    listener_binding_t *b_new = listener_bind(l2, &h_new);
    /* staged: requests still go to the running handler */
    listener_binding_t *in_flight;
    CHECK(listener_enter(l, &in_flight) == &h_old);
    listener_stage_commit();
    listener_stage_end();
    CHECK(listener_enter(l, &held) == &h_new);
    listener_leave(held);

    /* the old owner's release waits for the request that began on it */
    release_arg_t ra = {b_old, 0};
    pthread_t th;
    pthread_create(&th, NULL, release_thread, &ra);
    nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
    CHECK(!atomic_load(&ra.done));
    listener_leave(in_flight);
    pthread_join(th, NULL);
    CHECK(atomic_load(&ra.done));
    CHECK(!srv.closed); /* the new owner still holds it */
    CHECK(listener_count() == before + 1);
    listener_release(b_new);
    CHECK(srv.closed);
    CHECK(listener_count() == before);
}

UNIT_TEST(listener_staged_binding_of_a_failed_reload_changes_nothing)
{
    static fake_srv_t srv;
    int h_old = 1, h_new = 2;
    listener_t *l = listener_add("fake [127.0.0.1]:11", &srv, fake_close);
    REQUIRE(l);
    listener_binding_t *b_old = listener_bind(l, &h_old);
    listener_stage_begin();
    listener_t *l2 = listener_find("fake [127.0.0.1]:11");
    REQUIRE(l2 == l);
    listener_binding_t *b_new = listener_bind(l2, &h_new);
    listener_release(b_new); /* the new configuration did not start */
    listener_stage_end();
    listener_binding_t *held;
    CHECK(listener_enter(l, &held) == &h_old);
    listener_leave(held);
    CHECK(!srv.closed);
    listener_release(b_old);
    CHECK(srv.closed);
}

#define RUNNING                                                                \
    "receivers:\n  otlp:\n    protocols: {http: {endpoint: '127.0.0.1:%d'}}\n" \
    "exporters:\n"                                                             \
    "  debug: {verbosity: basic}\n"                                            \
    "  debug/2: {verbosity: %s}\n"                                             \
    "service:\n"                                                               \
    "  telemetry: {metrics: {level: none}}\n"                                  \
    "  pipelines:\n"                                                           \
    "    traces: {receivers: [otlp], exporters: [debug, debug/2]}\n"

UNIT_TEST(reload_carries_unchanged_exporters_and_listeners)
{
    char yaml[2048];
    int port = unit_free_port();
    REQUIRE(port > 0);
    snprintf(yaml, sizeof(yaml), RUNNING, port, "basic");
    service_t *old = load(yaml);
    REQUIRE(old);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = service_start(old, &eb);
    if (rc != MT_OK) {
        fprintf(stderr, "    start: %s\n", eb.msg);
        service_stop_destroy(old);
    }
    REQUIRE(rc == MT_OK);
    size_t listeners = listener_count();
    exq_t *q1 = service_exporter_queue(old, "debug", MT_SIG_TRACES);
    exq_t *q2 = service_exporter_queue(old, "debug/2", MT_SIG_TRACES);
    snprintf(yaml, sizeof(yaml), RUNNING, port, "detailed");
    service_t *ns = load(yaml);
    REQUIRE(ns);
    listener_stage_begin();
    rc = service_reload_start(ns, old, &eb);
    CHECK(rc == MT_OK);
    if (rc != MT_OK) {
        fprintf(stderr, "    reload: %s\n", eb.msg);
        service_stop_destroy(ns);
        listener_stage_end();
        service_stop_destroy(old);
        return;
    }
    CHECK(listener_count() == listeners); /* the same port: no second server */
    CHECK(service_exporter_queue(ns, "debug", MT_SIG_TRACES) == q1);
    exq_t *nq2 = service_exporter_queue(ns, "debug/2", MT_SIG_TRACES);
    CHECK(nq2 && nq2 != q2);
    service_reload_commit(ns, old);
    CHECK(listener_count() == listeners);
    CHECK(service_exporter_queue(ns, "debug", MT_SIG_TRACES) == q1);
    exq_ledger_t l;
    exq_ledger(q1, &l);
    CHECK(l.ndropped == 0);
    service_stop_destroy(ns);
    CHECK(listener_count() == listeners - 1);
}
