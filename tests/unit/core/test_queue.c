/*
 * test_queue.c - tests for collector/core/queue.c and pipeline_consume() in collector/core/pipeline.c,
 * driven through a fake exporter whose send() records what it got and can be told to fail
 * (retryable or permanent). Covers reserve/push/deliver order, the capacity limit,
 * coalescing by the batch settings, retry with backoff, drops by reason, draining on stop,
 * and the all-or-nothing rule of pipeline_consume across refusing and dropping queues.
 */
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "component.h"
#include "otlp.h"

/* ---- a fake exporter ------------------------------------------------------------------- */

#define FAKE_MAX_SENT 32

typedef struct fake {
    pthread_mutex_t mu;
    int fail_rc;             /* what send returns while failing */
    int fail_left;           /* sends still to fail; -1 = fail forever */
    const char *reason;      /* res->reason on failure (NULL: let the queue pick) */
    int delay_ms;            /* each send takes this long */
    const char *undecodable; /* a request holding these bytes cannot be decoded (MT_EINVAL) */
    int calls;
    int nsent;
    struct {
        mt_signal_t s;
        uint32_t items;
        size_t len;
        uint8_t data[128];
    } sent[FAKE_MAX_SENT];
    char id[64];
    exporter_common_t cc;
    exporter_t ex;
} fake_t;

static int fake_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                     uint32_t items, send_result_t *res)
{
    (void)ws;
    fake_t *f = ex->state;
    pthread_mutex_lock(&f->mu);
    int delay = f->delay_ms;
    pthread_mutex_unlock(&f->mu);
    if (delay > 0) {
        usleep((useconds_t)delay * 1000);
    }
    int rc = MT_OK;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    if (f->undecodable && memmem(data, len, f->undecodable, strlen(f->undecodable))) {
        rc = MT_EINVAL;
        res->reason = "decode_error";
        snprintf(res->msg, sizeof(res->msg), "undecodable batch");
    } else if (f->fail_left != 0) {
        rc = f->fail_rc;
        if (f->fail_left > 0) {
            f->fail_left--;
        }
        res->reason = f->reason;
        snprintf(res->msg, sizeof(res->msg), "fake failure");
    } else if (f->nsent < FAKE_MAX_SENT) {
        f->sent[f->nsent].s = s;
        f->sent[f->nsent].items = items;
        f->sent[f->nsent].len = len;
        memcpy(f->sent[f->nsent].data, data, len < 128 ? len : 128);
        f->nsent++;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static const exporter_ops_t fake_ops = {
    .type = "fake",
    .signals = SIG_ALL,
    .help = "records what it is sent",
    .send = fake_send,
};

static fake_t *fake_new(const char *id, int64_t queue_size, int on_full)
{
    fake_t *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    snprintf(f->id, sizeof(f->id), "%s", id);
    f->cc.queue_enabled = 1;
    f->cc.num_consumers = 1;
    f->cc.queue_size = queue_size;
    f->cc.on_full = on_full;
    f->cc.retry_enabled = 1;
    f->cc.initial_interval = 10;
    f->cc.max_interval = 50;
    f->cc.max_elapsed_time = 0;
    f->cc.multiplier = 1.5;
    f->cc.randomization_factor = 0;
    f->cc.timeout = 1000;
    f->ex.ops = &fake_ops;
    f->ex.id = f->id;
    f->ex.cfg = &f->cc;
    f->ex.state = f;
    return f;
}

static void fake_free(fake_t *f)
{
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static void fake_fail(fake_t *f, int rc, int times)
{
    pthread_mutex_lock(&f->mu);
    f->fail_rc = rc;
    f->fail_left = times;
    pthread_mutex_unlock(&f->mu);
}

static int fake_nsent(fake_t *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->nsent;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int fake_calls(fake_t *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->calls;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- helpers --------------------------------------------------------------------------- */

static pipeline_t *pipe_new(const char *id)
{
    pipeline_t *p = calloc(1, sizeof(*p));
    p->id = strdup(id);
    p->signal = MT_SIG_TRACES;
    char lb[128];
    snprintf(lb, sizeof(lb), "pipeline=\"%s\"", id);
    p->c_refused = tm_counter("meltp_pipeline_refused_items_total", "Items refused.", lb);
    return p;
}

static void pipe_free(pipeline_t *p)
{
    free(p->queues);
    free(p->id);
    free(p);
}

static mt_batch_t *batch_of(const char *bytes, uint32_t items)
{
    size_t len = strlen(bytes);
    mt_batch_t *b = batch_alloc(MT_SIG_TRACES, items, len);
    if (b) {
        memcpy(b->data, bytes, len);
    }
    return b;
}

/* Reserves a slot and pushes; drops the caller's reference (the queue keeps its own). */
static int push(exq_t *q, const char *bytes, uint32_t items)
{
    mt_batch_t *b = batch_of(bytes, items);
    if (!b) {
        return MT_ENOMEM;
    }
    int rc = exq_reserve(q, b->len, items);
    if (rc == MT_OK) {
        exq_push_reserved(q, b);
    }
    batch_unref(b);
    return rc;
}

/* An exporter counter for pipeline `pipe`, signal traces; reason NULL for unlabelled ones.
 * The label text is exactly what queue.c builds. */
static uint64_t counter(const char *name, const char *exid, const char *pipe, const char *reason)
{
    char lb[256];
    if (reason) {
        snprintf(lb, sizeof(lb), "exporter=\"%s\",pipeline=\"%s\",signal=\"traces\",reason=\"%s\"",
                 exid, pipe, reason);
    } else {
        snprintf(lb, sizeof(lb), "exporter=\"%s\",pipeline=\"%s\",signal=\"traces\"", exid, pipe);
    }
    return tm_get(tm_counter(name, "", lb));
}

static uint64_t dropped(const char *exid, const char *pipe, const char *reason)
{
    return counter("meltp_exporter_dropped_items_total", exid, pipe, reason);
}

/* Polls until *n reaches want (or the timeout passes); returns the last value. */
static int wait_sent(fake_t *f, int want, int timeout_ms)
{
    uint64_t until = mt_now_ns() + (uint64_t)timeout_ms * 1000000u;
    int n;
    while ((n = fake_nsent(f)) < want && mt_now_ns() < until) {
        usleep(1000);
    }
    return n;
}

static uint64_t wait_counter(const char *exid, const char *pipe, const char *reason, uint64_t want,
                             int timeout_ms)
{
    uint64_t until = mt_now_ns() + (uint64_t)timeout_ms * 1000000u;
    uint64_t v;
    while ((v = dropped(exid, pipe, reason)) < want && mt_now_ns() < until) {
        usleep(1000);
    }
    return v;
}

static void stop_destroy(exq_t *q)
{
    exq_stop(q, mt_now_ns() + 2000000000ull);
    exq_destroy(q);
}

static const batch_settings_t no_batching = {0, 0, 0, 0};

/* The queue logs every failed send; keep test output readable. */
static int quiet(void)
{
    int old = mt_log_level;
    mt_log_level = -1;
    return old;
}

/* ---- tests ----------------------------------------------------------------------------- */

UNIT_TEST(reserve_push_deliver_in_order)
{
    fake_t *f = fake_new("fake/order", 3, 0);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    CHECK(exq_exporter(q) == &f->ex);
    CHECK(exq_on_full_drop(q) == 0);
    CHECK(exq_fill_ratio(q) == 0.0);
    /* filled before the workers start, so order is decided by the queue alone */
    CHECK(push(q, "AA", 1) == MT_OK);
    CHECK(push(q, "BBB", 2) == MT_OK);
    CHECK(push(q, "C", 3) == MT_OK);
    CHECK(exq_fill_ratio(q) == 1.0);
    CHECK(counter("meltp_exporter_enqueued_items_total", f->id, "p", NULL) == 6);
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_sent(f, 3, 1000) == 3);
    pthread_mutex_lock(&f->mu);
    CHECK(f->sent[0].len == 2 && memcmp(f->sent[0].data, "AA", 2) == 0 && f->sent[0].items == 1);
    CHECK(f->sent[1].len == 3 && memcmp(f->sent[1].data, "BBB", 3) == 0 && f->sent[1].items == 2);
    CHECK(f->sent[2].len == 1 && memcmp(f->sent[2].data, "C", 1) == 0 && f->sent[2].items == 3);
    CHECK(f->sent[0].s == MT_SIG_TRACES);
    pthread_mutex_unlock(&f->mu);
    stop_destroy(q);
    CHECK(fake_nsent(f) == 3);
    CHECK(counter("meltp_exporter_sent_items_total", f->id, "p", NULL) == 6);
    CHECK(counter("meltp_exporter_sent_bytes_total", f->id, "p", NULL) == 6);
    CHECK(counter("meltp_exporter_send_failed_requests_total", f->id, "p", NULL) == 0);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(reserve_refuses_when_full)
{
    fake_t *f = fake_new("fake/full", 3, 0);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    /* count + reserved is what counts: 1 queued + 2 reserved = full */
    CHECK(push(q, "x", 1) == MT_OK);
    CHECK(exq_reserve(q, 10, 1) == MT_OK);
    CHECK(exq_reserve(q, 10, 1) == MT_OK);
    CHECK(exq_reserve(q, 10, 1) == MT_AGAIN);
    CHECK(exq_fill_ratio(q) == 1.0);
    /* giving a reservation back makes room for exactly one more */
    exq_unreserve(q, 10, 1);
    CHECK(exq_reserve(q, 10, 1) == MT_OK);
    CHECK(exq_reserve(q, 10, 1) == MT_AGAIN);
    exq_unreserve(q, 10, 1);
    exq_unreserve(q, 10, 1);
    CHECK(exq_fill_ratio(q) > 0.3 && exq_fill_ratio(q) < 0.4);
    /* once stopping, nothing more is accepted */
    REQUIRE(exq_start(q) == MT_OK);
    exq_stop(q, mt_now_ns() + 1000000000ull);
    CHECK(fake_nsent(f) == 1); /* the queued batch was delivered before stop returned */
    CHECK(exq_reserve(q, 10, 1) == MT_AGAIN);
    exq_destroy(q);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(queue_bytes_limit)
{
    fake_t *f = fake_new("fake/bytes", 100, 0);
    f->cc.queue_bytes = 100;
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    CHECK(exq_reserve(q, 60, 1) == MT_OK);
    CHECK(exq_reserve(q, 60, 1) == MT_AGAIN); /* 120 > 100 */
    CHECK(exq_reserve(q, 40, 1) == MT_OK);    /* exactly 100 */
    CHECK(exq_fill_ratio(q) == 1.0);          /* by bytes, not by slots */
    exq_unreserve(q, 60, 1);
    exq_unreserve(q, 40, 1);
    /* a batch larger than the whole queue never fits: refused even by an empty queue (issue
     * 13), with MT_ETOOBIG so the client splits it rather than retries */
    CHECK(exq_reserve(q, 500, 1) == MT_ETOOBIG);
    CHECK(exq_reserve(q, 100, 1) == MT_OK); /* the whole queue is fine */
    exq_unreserve(q, 100, 1);
    exq_destroy(q);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(queue_items_limit)
{
    fake_t *f = fake_new("fake/items", 100, 0);
    f->cc.queue_items = 10;
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    CHECK(exq_reserve(q, 1, 6) == MT_OK);
    CHECK(exq_reserve(q, 1, 6) == MT_AGAIN); /* 12 items > 10 */
    CHECK(exq_reserve(q, 1, 4) == MT_OK);    /* exactly 10 */
    CHECK(exq_fill_ratio(q) == 1.0);
    exq_unreserve(q, 1, 6);
    exq_unreserve(q, 1, 4);
    CHECK(exq_reserve(q, 1, 50) == MT_ETOOBIG); /* larger than the queue: never admitted */
    CHECK(exq_reserve(q, 1, 6) == MT_OK);
    CHECK(exq_reserve(q, 1, 11) == MT_ETOOBIG); /* too big, not just "full": no retry helps */
    exq_unreserve(q, 1, 6);
    exq_destroy(q);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(batches_coalesce_into_one_send)
{
    fake_t *f = fake_new("fake/coalesce", 10, 0);
    pipeline_t *p = pipe_new("p");
    batch_settings_t bs = {1, 5, 0, 100};
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &bs);
    REQUIRE(q);
    CHECK(push(q, "ab", 2) == MT_OK);
    CHECK(push(q, "cd", 2) == MT_OK);
    CHECK(push(q, "ef", 2) == MT_OK); /* 2+2 < 5, so this one is taken too */
    CHECK(push(q, "gh", 2) == MT_OK); /* ... and this one waits for the next send */
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_sent(f, 2, 1000) == 2);
    pthread_mutex_lock(&f->mu);
    CHECK(f->sent[0].len == 6 && memcmp(f->sent[0].data, "abcdef", 6) == 0);
    CHECK(f->sent[0].items == 6);
    CHECK(f->sent[1].len == 2 && memcmp(f->sent[1].data, "gh", 2) == 0);
    CHECK(f->sent[1].items == 2);
    pthread_mutex_unlock(&f->mu);
    stop_destroy(q);
    CHECK(fake_nsent(f) == 2);
    CHECK(counter("meltp_exporter_sent_items_total", f->id, "p", NULL) == 8);
    CHECK(counter("meltp_exporter_sent_bytes_total", f->id, "p", NULL) == 8);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(batch_max_size_splits_between_batches)
{
    fake_t *f = fake_new("fake/maxsize", 10, 0);
    pipeline_t *p = pipe_new("p");
    batch_settings_t bs = {1, 5, 5, 50};
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &bs);
    REQUIRE(q);
    CHECK(push(q, "ab", 2) == MT_OK);
    CHECK(push(q, "cd", 2) == MT_OK);
    CHECK(push(q, "efg", 3) == MT_OK); /* 4 + 3 > 5: starts the next request */
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_sent(f, 2, 1000) == 2);
    pthread_mutex_lock(&f->mu);
    CHECK(f->sent[0].items == 4 && f->sent[0].len == 4 && memcmp(f->sent[0].data, "abcd", 4) == 0);
    CHECK(f->sent[1].items == 3 && f->sent[1].len == 3 && memcmp(f->sent[1].data, "efg", 3) == 0);
    pthread_mutex_unlock(&f->mu);
    stop_destroy(q);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(batch_timeout_sends_partial_batch)
{
    fake_t *f = fake_new("fake/timeout", 10, 0);
    pipeline_t *p = pipe_new("p");
    batch_settings_t bs = {1, 100, 0, 80};
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &bs);
    REQUIRE(q);
    REQUIRE(exq_start(q) == MT_OK);
    uint64_t t0 = mt_now_ns();
    CHECK(push(q, "one", 1) == MT_OK);
    usleep(10000);
    CHECK(push(q, "two", 1) == MT_OK); /* arrives while the worker waits for more */
    CHECK(wait_sent(f, 1, 1000) == 1);
    uint64_t ms = (mt_now_ns() - t0) / 1000000u;
    CHECK(ms >= 70); /* it waited for the batch timeout ... */
    CHECK(ms < 600); /* ... and not much longer */
    pthread_mutex_lock(&f->mu);
    CHECK(f->sent[0].items == 2 && f->sent[0].len == 6 &&
          memcmp(f->sent[0].data, "onetwo", 6) == 0);
    pthread_mutex_unlock(&f->mu);
    stop_destroy(q);
    CHECK(fake_nsent(f) == 1);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(retryable_failure_is_retried_until_ok)
{
    int old = quiet();
    fake_t *f = fake_new("fake/retry", 3, 0);
    fake_fail(f, MT_ERETRY, 3);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    uint64_t t0 = mt_now_ns();
    CHECK(push(q, "retry-me", 4) == MT_OK);
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_sent(f, 1, 1000) == 1);
    uint64_t ms = (mt_now_ns() - t0) / 1000000u;
    /* backoff 10 + 15 + 22.5 ms (no jitter) before the 4th attempt */
    CHECK(ms >= 40);
    CHECK(fake_calls(f) == 4);
    CHECK(atomic_load(&f->ex.failing_since_ns) == 0); /* healthy again after the success */
    usleep(30000);
    stop_destroy(q);
    CHECK(fake_nsent(f) == 1); /* nothing duplicated */
    CHECK(fake_calls(f) == 4);
    pthread_mutex_lock(&f->mu);
    CHECK(f->sent[0].len == 8 && memcmp(f->sent[0].data, "retry-me", 8) == 0);
    CHECK(f->sent[0].items == 4);
    pthread_mutex_unlock(&f->mu);
    CHECK(counter("meltp_exporter_retries_total", f->id, "p", NULL) == 3);
    CHECK(counter("meltp_exporter_send_failed_requests_total", f->id, "p", NULL) == 3);
    CHECK(counter("meltp_exporter_sent_items_total", f->id, "p", NULL) == 4);
    CHECK(dropped(f->id, "p", "retries_exhausted") == 0);
    CHECK(dropped(f->id, "p", "shutdown") == 0);
    pipe_free(p);
    fake_free(f);
    mt_log_level = old;
}

UNIT_TEST(permanent_failure_drops_with_reason)
{
    int old = quiet();
    fake_t *f = fake_new("fake/perm", 3, 0);
    fake_fail(f, MT_EPERM, -1);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    CHECK(push(q, "bad", 7) == MT_OK);
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_counter(f->id, "p", "permanent_error", 7, 1000) == 7);
    CHECK(fake_calls(f) == 1); /* not retried */
    CHECK(atomic_load(&f->ex.failing_since_ns) != 0);
    /* the exporter's own reason wins over the default */
    pthread_mutex_lock(&f->mu);
    f->reason = "http_400";
    pthread_mutex_unlock(&f->mu);
    CHECK(push(q, "bad2", 5) == MT_OK);
    CHECK(wait_counter(f->id, "p", "http_400", 5, 1000) == 5);
    stop_destroy(q);
    CHECK(dropped(f->id, "p", "permanent_error") == 7);
    CHECK(fake_nsent(f) == 0);
    CHECK(fake_calls(f) == 2);
    CHECK(counter("meltp_exporter_sent_items_total", f->id, "p", NULL) == 0);
    pipe_free(p);
    fake_free(f);
    mt_log_level = old;
}

UNIT_TEST(retry_disabled_drops_on_first_failure)
{
    int old = quiet();
    fake_t *f = fake_new("fake/noretry", 3, 0);
    f->cc.retry_enabled = 0;
    fake_fail(f, MT_ERETRY, -1);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    CHECK(push(q, "x", 2) == MT_OK);
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_counter(f->id, "p", "permanent_error", 2, 1000) == 2);
    stop_destroy(q);
    CHECK(fake_calls(f) == 1);
    CHECK(counter("meltp_exporter_retries_total", f->id, "p", NULL) == 0);
    pipe_free(p);
    fake_free(f);
    mt_log_level = old;
}

UNIT_TEST(max_elapsed_time_drops_as_retries_exhausted)
{
    int old = quiet();
    fake_t *f = fake_new("fake/elapsed", 3, 0);
    f->cc.max_elapsed_time = 30;
    fake_fail(f, MT_ERETRY, -1);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    uint64_t t0 = mt_now_ns();
    CHECK(push(q, "doomed", 9) == MT_OK);
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_counter(f->id, "p", "retries_exhausted", 9, 1000) == 9);
    uint64_t ms = (mt_now_ns() - t0) / 1000000u;
    CHECK(ms >= 30);
    CHECK(ms < 500);
    int calls = fake_calls(f);
    CHECK(calls >= 2 && calls <= 6); /* attempts at ~0, 10, 25, 47 ms */
    stop_destroy(q);
    CHECK(fake_calls(f) == calls); /* given up: no more attempts */
    CHECK(fake_nsent(f) == 0);
    CHECK(dropped(f->id, "p", "shutdown") == 0);
    pipe_free(p);
    fake_free(f);
    mt_log_level = old;
}

UNIT_TEST(stop_drains_queue_before_returning)
{
    fake_t *f = fake_new("fake/drain", 3, 0);
    f->delay_ms = 20;
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    CHECK(push(q, "1", 1) == MT_OK);
    CHECK(push(q, "2", 1) == MT_OK);
    CHECK(push(q, "3", 1) == MT_OK);
    REQUIRE(exq_start(q) == MT_OK);
    exq_stop(q, mt_now_ns() + 2000000000ull);
    CHECK(fake_nsent(f) == 3); /* all three delivered by the time stop returned */
    CHECK(exq_fill_ratio(q) == 0.0);
    exq_destroy(q);
    CHECK(dropped(f->id, "p", "shutdown") == 0);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(stop_past_deadline_drops_as_shutdown)
{
    int old = quiet();
    fake_t *f = fake_new("fake/deadline", 3, 0);
    fake_fail(f, MT_ERETRY, -1);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    CHECK(push(q, "a", 1) == MT_OK);
    CHECK(push(q, "b", 2) == MT_OK);
    CHECK(push(q, "c", 4) == MT_OK);
    REQUIRE(exq_start(q) == MT_OK);
    uint64_t t0 = mt_now_ns();
    exq_stop(q, t0 + 60000000ull);
    uint64_t ms = (mt_now_ns() - t0) / 1000000u;
    CHECK(ms < 500); /* retrying forever does not hold up shutdown past its deadline */
    CHECK(dropped(f->id, "p", "shutdown") == 7);
    exq_destroy(q);
    CHECK(dropped(f->id, "p", "shutdown") == 7); /* nothing left over to count twice */
    CHECK(fake_nsent(f) == 0);
    pipe_free(p);
    fake_free(f);
    mt_log_level = old;
}

UNIT_TEST(destroy_counts_unsent_as_shutdown)
{
    fake_t *f = fake_new("fake/destroy", 3, 0);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    int64_t mem0 = atomic_load(&mt_mem_in_use);
    CHECK(push(q, "never", 3) == MT_OK);
    CHECK(push(q, "sent", 2) == MT_OK);
    CHECK(atomic_load(&mt_mem_in_use) == mem0 + 9); /* the queue holds the batches */
    exq_stop(q, mt_now_ns());                       /* no workers were started */
    exq_destroy(q);
    CHECK(dropped(f->id, "p", "shutdown") == 5);
    CHECK(atomic_load(&mt_mem_in_use) == mem0); /* and released them */
    CHECK(fake_calls(f) == 0);
    pipe_free(p);
    fake_free(f);
}

/* ---- pipeline_consume ------------------------------------------------------------------ */

typedef struct {
    unsigned char *raw;
    size_t raw_len;
    arena_t *a;
    ProtobufCMessage *req;
    uint64_t items;
} request_t;

static int load_request(request_t *r)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/traces-n1/traces-proto-1.bin", unit_fixtures_dir());
    memset(r, 0, sizeof(*r));
    r->raw = unit_read_file(path, &r->raw_len);
    if (!r->raw) {
        return -1;
    }
    r->a = arena_create(64 * 1024, 0);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    r->req = otlp_unpack(MT_SIG_TRACES, r->raw, r->raw_len, r->a, &eb);
    if (!r->req || otlp_check(MT_SIG_TRACES, r->req, &r->items, &eb) != MT_OK) {
        return -1;
    }
    return 0;
}

static void free_request(request_t *r)
{
    arena_destroy(r->a);
    free(r->raw);
}

static void attach(pipeline_t *p, exq_t *q)
{
    p->queues = realloc(p->queues, (p->nqueues + 1) * sizeof(*p->queues));
    p->queues[p->nqueues++] = q;
}

UNIT_TEST(consume_refusing_full_queue_is_all_or_nothing)
{
    request_t r;
    REQUIRE(load_request(&r) == 0);
    CHECK(r.items == 1);
    fake_t *fok = fake_new("fake/c-ok", 3, 0);
    fake_t *ffull = fake_new("fake/c-refuse", 1, 0);
    pipeline_t *p1 = pipe_new("p");
    pipeline_t *p2 = pipe_new("p2");
    exq_t *qok = exq_create(&fok->ex, p1, MT_SIG_TRACES, &no_batching);
    exq_t *qfull = exq_create(&ffull->ex, p2, MT_SIG_TRACES, &no_batching);
    REQUIRE(qok && qfull);
    attach(p1, qok);
    attach(p2, qfull);
    CHECK(exq_reserve(qfull, 1, 1) == MT_OK); /* now full */
    uint64_t refused0 = tm_get(p2->c_refused);
    pipeline_t *ps[] = {p1, p2}; /* the queue with room is reserved first */
    consume_result_t res;
    pipeline_consume(ps, 2, MT_SIG_TRACES, r.req, r.raw, r.raw_len, r.items, "", r.a, &res);
    CHECK(res.status == MT_AGAIN);
    CHECK(strstr(res.msg, "fake/c-refuse") != NULL);
    /* the reservation in the other queue was given back: nothing enqueued anywhere */
    CHECK(exq_fill_ratio(qok) == 0.0);
    CHECK(counter("meltp_exporter_enqueued_items_total", fok->id, "p", NULL) == 0);
    CHECK(tm_get(p2->c_refused) == refused0 + r.items);
    CHECK(dropped(ffull->id, "p2", "queue_full") == 0);
    /* room again: the same request now goes everywhere */
    exq_unreserve(qfull, 1, 1);
    pipeline_consume(ps, 2, MT_SIG_TRACES, r.req, r.raw, r.raw_len, r.items, "", r.a, &res);
    CHECK(res.status == MT_OK);
    CHECK(counter("meltp_exporter_enqueued_items_total", fok->id, "p", NULL) == r.items);
    CHECK(counter("meltp_exporter_enqueued_items_total", ffull->id, "p2", NULL) == r.items);
    /* delivered bytes are the client's bytes */
    REQUIRE(exq_start(qok) == MT_OK);
    CHECK(wait_sent(fok, 1, 1000) == 1);
    pthread_mutex_lock(&fok->mu);
    CHECK(fok->sent[0].len == r.raw_len);
    CHECK(memcmp(fok->sent[0].data, r.raw, 128) == 0);
    pthread_mutex_unlock(&fok->mu);
    stop_destroy(qok);
    exq_destroy(qfull); /* never started: its batch counts as shutdown */
    CHECK(dropped(ffull->id, "p2", "shutdown") == r.items);
    pipe_free(p1);
    pipe_free(p2);
    fake_free(fok);
    fake_free(ffull);
    free_request(&r);
}

UNIT_TEST(consume_dropping_full_queue_counts_drop)
{
    request_t r;
    REQUIRE(load_request(&r) == 0);
    fake_t *fok = fake_new("fake/d-ok", 3, 0);
    fake_t *fdrop = fake_new("fake/d-drop", 1, 1);
    pipeline_t *p1 = pipe_new("p");
    pipeline_t *p2 = pipe_new("p2");
    exq_t *qok = exq_create(&fok->ex, p1, MT_SIG_TRACES, &no_batching);
    exq_t *qdrop = exq_create(&fdrop->ex, p2, MT_SIG_TRACES, &no_batching);
    REQUIRE(qok && qdrop);
    CHECK(exq_on_full_drop(qdrop) == 1);
    attach(p1, qok);
    attach(p2, qdrop);
    CHECK(exq_reserve(qdrop, 1, 1) == MT_OK); /* full */
    uint64_t refused0 = tm_get(p2->c_refused);
    pipeline_t *ps[] = {p2, p1}; /* the dropping queue first: it must not stop the other */
    consume_result_t res;
    pipeline_consume(ps, 2, MT_SIG_TRACES, r.req, r.raw, r.raw_len, r.items, "", r.a, &res);
    CHECK(res.status == MT_OK);
    CHECK(dropped(fdrop->id, "p2", "queue_full") == r.items);
    CHECK(tm_get(p2->c_refused) == refused0); /* dropped, not refused */
    CHECK(counter("meltp_exporter_enqueued_items_total", fok->id, "p", NULL) == r.items);
    CHECK(counter("meltp_exporter_enqueued_items_total", fdrop->id, "p2", NULL) == 0);
    CHECK(exq_fill_ratio(qok) > 0.3 && exq_fill_ratio(qok) < 0.4);
    exq_unreserve(qdrop, 1, 1);
    /* without the raw bytes (a JSON request) the batch is the packed message */
    REQUIRE(exq_start(qok) == MT_OK);
    CHECK(wait_sent(fok, 1, 1000) == 1);
    pipeline_consume(&p1, 1, MT_SIG_TRACES, r.req, NULL, 0, r.items, "", r.a, &res);
    CHECK(res.status == MT_OK);
    CHECK(wait_sent(fok, 2, 1000) == 2);
    pthread_mutex_lock(&fok->mu);
    size_t packed = protobuf_c_message_get_packed_size(r.req);
    CHECK(fok->sent[1].len == packed);
    CHECK(fok->sent[1].items == r.items);
    pthread_mutex_unlock(&fok->mu);
    stop_destroy(qok);
    exq_destroy(qdrop);
    CHECK(dropped(fdrop->id, "p2", "shutdown") == 0);
    pipe_free(p1);
    pipe_free(p2);
    fake_free(fok);
    fake_free(fdrop);
    free_request(&r);
}

UNIT_TEST(consume_empty_request_built_by_hand)
{
    /* an empty ExportTraceServiceRequest packs to zero bytes and is still delivered */
    Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest empty =
        OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    fake_t *f = fake_new("fake/empty", 3, 0);
    pipeline_t *p = pipe_new("p");
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &no_batching);
    REQUIRE(q);
    attach(p, q);
    arena_t *a = arena_create(1024, 0);
    consume_result_t res;
    pipeline_consume(&p, 1, MT_SIG_TRACES, &empty.base, NULL, 0, 0, "", a, &res);
    CHECK(res.status == MT_OK);
    CHECK(exq_fill_ratio(q) > 0.3);
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_sent(f, 1, 1000) == 1);
    stop_destroy(q);
    pthread_mutex_lock(&f->mu);
    CHECK(f->sent[0].len == 0 && f->sent[0].items == 0);
    pthread_mutex_unlock(&f->mu);
    arena_destroy(a);
    pipe_free(p);
    fake_free(f);
}

UNIT_TEST(undecodable_batch_is_split_and_only_the_bad_request_dropped)
{
    int old = quiet();
    fake_t *f = fake_new("fake/split", 10, 0);
    f->undecodable = "XX";
    pipeline_t *p = pipe_new("p");
    batch_settings_t bs = {1, 100, 0, 50};
    exq_t *q = exq_create(&f->ex, p, MT_SIG_TRACES, &bs);
    REQUIRE(q);
    CHECK(push(q, "ab", 2) == MT_OK);
    CHECK(push(q, "XX", 3) == MT_OK); /* the bad one, coalesced between two good ones */
    CHECK(push(q, "cd", 4) == MT_OK);
    REQUIRE(exq_start(q) == MT_OK);
    CHECK(wait_counter(f->id, "p", "decode_error", 3, 2000) == 3);
    CHECK(wait_sent(f, 2, 1000) == 2);
    pthread_mutex_lock(&f->mu);
    CHECK(f->sent[0].len == 2 && memcmp(f->sent[0].data, "ab", 2) == 0 && f->sent[0].items == 2);
    CHECK(f->sent[1].len == 2 && memcmp(f->sent[1].data, "cd", 2) == 0 && f->sent[1].items == 4);
    pthread_mutex_unlock(&f->mu);
    stop_destroy(q);
    CHECK(fake_calls(f) == 4); /* the coalesced send, then each request alone */
    CHECK(dropped(f->id, "p", "decode_error") == 3);
    CHECK(counter("meltp_exporter_sent_items_total", f->id, "p", NULL) == 6);
    pipe_free(p);
    fake_free(f);
    mt_log_level = old;
}
