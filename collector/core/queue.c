/*
 * queue.c - one bounded queue and its worker threads per (pipeline, exporter). Receivers
 * reserve room first, push second, so a request is either queued everywhere it must go or
 * refused before anything was enqueued. Workers coalesce queued batches (the batch
 * processor's size/timeout) by concatenating encoded requests, then call the exporter's send
 * with retry and exponential backoff. Each queue has its own mutex: there is no global lock
 * on the data path.
 *
 * Persistence (sending_queue.storage): entries are self-contained encoded requests
 * (mt_batch_t), so a persistent queue appends each pushed batch to a segment store
 * (segstore.c) instead of the ring, and its workers refill the ring from the store, in order,
 * up to queue_size batches at a time. Each batch read back carries its record number, which
 * is confirmed to the store once the send ended (sent or dropped); what was not confirmed is
 * sent again after a restart. Receivers and exporters do not change.
 */
#include "component.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <errno.h>

_Atomic int64_t mt_mem_in_use;
_Atomic int64_t mt_mem_limit;

mt_batch_t *batch_alloc(mt_signal_t s, uint32_t items, size_t len)
{
    mt_batch_t *b = malloc(sizeof(*b) + len);
    if (!b) {
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->signal = s;
    b->format = MT_FMT_OTLP;
    b->items = items;
    b->len = len;
    b->created_ns = mt_now_ns();
    b->tenant[0] = 0;
    b->seq = 0;
    atomic_fetch_add(&mt_mem_in_use, (int64_t)len);
    return b;
}

void batch_ref(mt_batch_t *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void batch_unref(mt_batch_t *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        atomic_fetch_sub(&mt_mem_in_use, (int64_t)b->len);
        free(b);
    }
}

struct exq {
    exporter_t *ex;
    mt_ratelimit_t rl_fail; /* "send failed" lines: one per 5 s per queue, the rest counted */
    char pipe_id[128];      /* a copy: a queue carried across a reload outlives its pipeline */
    mt_signal_t signal;
    batch_settings_t bs;
    exporter_common_t *cc;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    mt_batch_t **ring;
    size_t cap;               /* queue_size: the bound receivers see */
    size_t rcap, head, count; /* ring of queued batches (rcap >= cap: a handover may add) */
    size_t reserved;          /* slots promised to receivers */
    size_t bytes;             /* queued + reserved + in flight */
    uint64_t items;           /* items queued + reserved + in flight */
    int stopping;
    uint64_t deadline_ns;
    int handing_over;        /* exq_handover: workers give their batches back and exit */
    const char *stop_reason; /* what is dropped at the stop deadline is counted as this */
    exq_t *pred;             /* until exq_handover: the queue this one succeeds (ledger) */
    int store_borrowed;      /* store is pred's until the handover (never closed here) */
    pthread_t *workers;
    int nworkers;
    exq_ledger_t led;   /* the loss ledger, under mu */
    seg_store_t *store; /* persistent queue: batches live here, the ring reads ahead */
    size_t ring_bytes;  /* persistent queue: bytes read ahead into the ring */
    char labels[256];
    tm_counter_t *c_sent, *c_sent_bytes, *c_failed, *c_enqueued, *c_retries, *c_corrupt;
    tm_hist_t *h_latency;
};

static double g_queue_len(void *arg)
{
    exq_t *q = arg;
    pthread_mutex_lock(&q->mu);
    double v = (double)q->count;
    pthread_mutex_unlock(&q->mu);
    return v;
}

static double g_queue_bytes(void *arg)
{
    exq_t *q = arg;
    if (q->store) {
        return (double)seg_used_bytes(q->store); /* what queue_bytes bounds: the disk */
    }
    pthread_mutex_lock(&q->mu);
    double v = (double)q->bytes;
    pthread_mutex_unlock(&q->mu);
    return v;
}

static double g_queue_items(void *arg)
{
    exq_ledger_t l;
    exq_ledger(arg, &l);
    return (double)l.queued;
}

/* Records how a queued batch of `items` ended: `sent` delivered, the rest dropped for
 * `reason`. Ledger and Prometheus counters move together, the ledger under the lock so a
 * reader never sees an item in two places or in none. */
static void settle(exq_t *q, uint64_t items, uint64_t sent, const char *reason)
{
    uint64_t dropped = items - sent;
    if (sent) {
        tm_add(q->c_sent, sent);
    }
    if (dropped) {
        tm_count_reason("meltp_exporter_dropped_items_total",
                        "Items the exporter dropped, by reason.", q->labels, reason, dropped);
    }
    pthread_mutex_lock(&q->mu);
    q->led.sent += sent;
    q->led.queued -= items;
    if (dropped) {
        seg_ledger_drop(&q->led, dropped, reason);
    }
    pthread_mutex_unlock(&q->mu);
}

void exq_ledger(const exq_t *q, exq_ledger_t *out)
{
    exq_t *mq = (exq_t *)q;
    pthread_mutex_lock(&mq->mu);
    *out = q->led;
    if (q->pred) {
        /* a reload's successor speaks for its predecessor until the handover merges them;
         * both copied under both locks (successor first, as exq_handover takes them) */
        pthread_mutex_lock(&q->pred->mu);
        seg_ledger_add(out, &q->pred->led);
        pthread_mutex_unlock(&q->pred->mu);
    }
    pthread_mutex_unlock(&mq->mu);
}

const char *exq_pipeline_id(const exq_t *q)
{
    return q->pipe_id;
}
mt_signal_t exq_signal(const exq_t *q)
{
    return q->signal;
}

static double g_queue_cap(void *arg)
{
    return (double)((exq_t *)arg)->cap;
}

/* The queue's gauges; a reload's successor takes the series over (same labels), and gives
 * them back to its predecessor if the reload fails. */
static void register_gauges(exq_t *q)
{
    tm_gauge("meltp_exporter_queue_length", "Batches waiting in the exporter queue.", q->labels,
             g_queue_len, q);
    tm_gauge("meltp_exporter_queue_bytes",
             "Bytes queued, reserved or in flight for the exporter (persistent queues: bytes "
             "of their segment files).",
             q->labels, g_queue_bytes, q);
    tm_gauge("meltp_exporter_queue_items",
             "Items accepted and not yet sent or dropped (in memory, in flight or on disk).",
             q->labels, g_queue_items, q);
    tm_gauge("meltp_exporter_queue_capacity", "Queue capacity in batches.", q->labels, g_queue_cap,
             q);
}

exq_t *exq_create(exporter_t *ex, pipeline_t *p, mt_signal_t s, const batch_settings_t *bs)
{
    exq_t *q = calloc(1, sizeof(*q));
    if (!q) {
        return NULL;
    }
    q->ex = ex;
    snprintf(q->pipe_id, sizeof(q->pipe_id), "%s", p->id);
    q->stop_reason = "shutdown";
    q->signal = s;
    q->bs = *bs;
    q->cc = exporter_common(ex);
    q->cap = q->cc->queue_enabled && q->cc->queue_size > 0 ? (size_t)q->cc->queue_size : 1;
    q->rcap = q->cap;
    q->ring = calloc(q->rcap, sizeof(*q->ring));
    if (!q->ring) {
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    /* deadlines are CLOCK_MONOTONIC (mt_now_ns): the condvar must use the same clock, or
     * every timed wait returns at once and the worker spins */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv_work, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(q->labels, sizeof(q->labels), "exporter=\"%s\",pipeline=\"%s\",signal=\"%s\"", ex->id,
             q->pipe_id, mt_signal_name(s));
    q->c_sent =
        tm_counter("meltp_exporter_sent_items_total", "Items the backend accepted.", q->labels);
    q->c_sent_bytes = tm_counter("meltp_exporter_sent_bytes_total",
                                 "Encoded request bytes sent (before compression).", q->labels);
    q->c_failed = tm_counter("meltp_exporter_send_failed_requests_total",
                             "Send attempts that failed (each retry counts).", q->labels);
    q->c_enqueued =
        tm_counter("meltp_exporter_enqueued_items_total", "Items put in the queue.", q->labels);
    q->c_retries = tm_counter("meltp_exporter_retries_total", "Send retries.", q->labels);
    q->h_latency = tm_hist("meltp_exporter_send_duration_seconds",
                           "Time for one send attempt to the backend.", q->labels);
    register_gauges(q);
    return q;
}

exporter_t *exq_exporter(const exq_t *q)
{
    return q->ex;
}
int exq_persistent(const exq_t *q)
{
    return q->store != NULL;
}

int exq_open_storage(exq_t *q, const char *dir, int fsync, mt_errbuf_t *eb)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        mt_failf(eb, "cannot create %s: %s", dir, strerror(errno));
        return MT_EIO;
    }
    /* <exporter>@<pipeline>, '/' -> '+': neither '@' nor '+' may appear in an id */
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s@%s", dir, q->ex->id, q->pipe_id);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        mt_failf(eb, "storage path too long");
        return MT_EINVAL;
    }
    for (char *c = path + strlen(dir) + 1; *c; c++) {
        if (*c == '/') {
            *c = '+';
        }
    }
    seg_opts_t o = {.dir = path, .fsync = fsync, .max_bytes = (uint64_t)q->cc->queue_bytes};
    /* a quarter of the quota per file, so deleting drained files keeps up with the quota */
    o.segment_bytes = o.max_bytes / 4;
    if (o.segment_bytes > (64u << 20)) {
        o.segment_bytes = 64u << 20;
    }
    if (o.segment_bytes < (64u << 10)) {
        o.segment_bytes = 64u << 10;
    }
    q->store = seg_open(&o, eb);
    if (!q->store) {
        return MT_EIO;
    }
    seg_get_ledger(q->store, &q->led);
    q->c_corrupt = tm_counter("meltp_queue_corrupt_records_total",
                              "Records of a persistent queue found torn or corrupt at start "
                              "(cut off or skipped; counted, never sent).",
                              q->labels);
    tm_add(q->c_corrupt, seg_corrupt_records(q->store));
    if (q->led.queued) {
        mt_log(MT_LOG_INFO, "exporter %s: %llu %s from the last run to send (%s)", q->ex->id,
               (unsigned long long)q->led.queued, mt_signal_item_name(q->signal), path);
    }
    return MT_OK;
}
int exq_on_full_drop(const exq_t *q)
{
    return q->cc->on_full == MT_ON_FULL_DROP;
}

double exq_fill_ratio(const exq_t *q)
{
    exq_t *mq = (exq_t *)q;
    if (q->store) {
        return q->cc->queue_bytes > 0
                   ? (double)seg_used_bytes(q->store) / (double)q->cc->queue_bytes
                   : 0.0;
    }
    pthread_mutex_lock(&mq->mu);
    double r = (double)(q->count + q->reserved) / (double)q->cap;
    if (q->cc->queue_bytes > 0) {
        double rb = (double)q->bytes / (double)q->cc->queue_bytes;
        if (rb > r) {
            r = rb;
        }
    }
    if (q->cc->queue_items > 0) {
        double ri = (double)q->items / (double)q->cc->queue_items;
        if (ri > r) {
            r = ri;
        }
    }
    pthread_mutex_unlock(&mq->mu);
    return r;
}

void exq_count_drop(exq_t *q, uint64_t items, const char *reason)
{
    tm_count_reason("meltp_exporter_dropped_items_total", "Items the exporter dropped, by reason.",
                    q->labels, reason, items);
    if (q->store) {
        seg_note_drop(q->store, items, reason);
    }
    pthread_mutex_lock(&q->mu);
    q->led.accepted += items;
    seg_ledger_drop(&q->led, items, reason);
    pthread_mutex_unlock(&q->mu);
}

int exq_reserve(exq_t *q, size_t bytes, uint64_t items)
{
    int rc = MT_OK;
    /* A batch larger than the whole queue is refused even by an empty queue: admitted, it
     * would hold more than queue_items/queue_bytes allow and keep every other client out
     * until it drained (issue 13: 6.6 M spans into a 2 M-item queue, 429s for 30 s). Waiting
     * cannot help it, so it is MT_ETOOBIG (413: split it), not MT_AGAIN. On disk queue_bytes
     * is the store's quota and queue_items does not apply. */
    if ((q->cc->queue_bytes > 0 && bytes > (size_t)q->cc->queue_bytes) ||
        (!q->store && q->cc->queue_items > 0 && items > (uint64_t)q->cc->queue_items)) {
        return MT_ETOOBIG;
    }
    if (q->store) {
        /* on disk, queue_bytes (the store's quota) is the bound; queue_size and queue_items
         * only bound what is read ahead into memory */
        pthread_mutex_lock(&q->mu);
        int stopping = q->stopping;
        pthread_mutex_unlock(&q->mu);
        return stopping ? MT_AGAIN : seg_reserve(q->store, bytes);
    }
    pthread_mutex_lock(&q->mu);
    if (q->stopping || q->count + q->reserved >= q->cap ||
        (q->cc->queue_bytes > 0 && q->bytes + bytes > (size_t)q->cc->queue_bytes) ||
        (q->cc->queue_items > 0 && q->items + items > (uint64_t)q->cc->queue_items)) {
        rc = MT_AGAIN;
    } else {
        q->reserved++;
        q->bytes += bytes;
        q->items += items;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void exq_unreserve(exq_t *q, size_t bytes, uint64_t items)
{
    if (q->store) {
        seg_unreserve(q->store, bytes);
        return;
    }
    pthread_mutex_lock(&q->mu);
    q->reserved--;
    q->bytes -= bytes;
    q->items -= items;
    pthread_mutex_unlock(&q->mu);
}

/* Persistent push: the batch goes to disk, not to the ring; a worker reads it back. */
static int push_stored(exq_t *q, mt_batch_t *b)
{
    seg_meta_t m;
    memset(&m, 0, sizeof(m));
    m.items = b->items;
    m.signal = (uint8_t)b->signal;
    m.format = b->format;
    snprintf(m.tenant, sizeof(m.tenant), "%s", b->tenant);
    /* counted before the append: a worker may read, send and settle the record while this
     * thread still waits for the fsync, and the ledger must balance all along */
    pthread_mutex_lock(&q->mu);
    q->led.accepted += b->items;
    q->led.queued += b->items;
    pthread_mutex_unlock(&q->mu);
    int rc = seg_append(q->store, &m, b->data, b->len);
    pthread_mutex_lock(&q->mu);
    if (rc == MT_AGAIN) { /* nothing was written */
        q->led.accepted -= b->items;
        q->led.queued -= b->items;
    }
    pthread_cond_signal(&q->cv_work);
    pthread_mutex_unlock(&q->mu);
    if (rc == MT_EIO) {
        /* written but maybe not durable: it will be sent, yet the client must not take this
         * for an acknowledgement; its retry makes a duplicate */
        tm_add(q->c_enqueued, b->items);
        return MT_EIO;
    }
    if (rc != MT_OK) {
        if (q->cc->on_full == MT_ON_FULL_DROP) {
            exq_count_drop(q, b->items, "storage_full");
            return MT_OK;
        }
        return MT_AGAIN;
    }
    tm_add(q->c_enqueued, b->items);
    return MT_OK;
}

int exq_push_reserved(exq_t *q, mt_batch_t *b)
{
    if (q->store) {
        return push_stored(q, b);
    }
    batch_ref(b);
    tm_add(q->c_enqueued, b->items);
    pthread_mutex_lock(&q->mu);
    q->reserved--;
    q->ring[(q->head + q->count) % q->rcap] = b;
    q->count++;
    q->led.accepted += b->items;
    q->led.queued += b->items;
    pthread_cond_signal(&q->cv_work);
    pthread_mutex_unlock(&q->mu);
    return MT_OK;
}

typedef struct read_ctx {
    mt_signal_t signal;
    mt_batch_t *b;
} read_ctx_t;

static void *alloc_read(void *arg, const seg_meta_t *m)
{
    read_ctx_t *rc = arg;
    rc->b = batch_alloc(rc->signal, m->items, m->len);
    return rc->b ? rc->b->data : NULL;
}

/* How much of a persistent queue is read back into memory ahead of the workers: enough to
 * keep every consumer sending and the batch processor coalescing, little enough that a long
 * outage's backlog stays on disk instead of coming back into memory (queue_size batches of
 * 1000 spans would be ~250 MB). The ring always takes one batch, however big. */
#define EXQ_READAHEAD_BYTES (8u << 20)

/* Persistent queue: reads records from the store into the ring, in order, while it has
 * room. One malloc per batch, as on the in-memory path. */
static void refill_locked(exq_t *q)
{
    while (q->store && q->count < q->cap &&
           (q->count == 0 || q->ring_bytes < EXQ_READAHEAD_BYTES)) {
        seg_meta_t m;
        read_ctx_t rc = {q->signal, NULL};
        void *out = NULL;
        int r = seg_next(q->store, &m, alloc_read, &rc, &out);
        if (r != 1) {
            if (r < 0) {
                batch_unref(rc.b);
                mt_log(MT_LOG_ERROR, "exporter %s: cannot read the queue: %s", q->ex->id,
                       mt_strerror(r));
            }
            return;
        }
        mt_batch_t *b = rc.b;
        b->seq = m.seq;
        b->format = m.format;
        snprintf(b->tenant, sizeof(b->tenant), "%s", m.tenant);
        q->ring[(q->head + q->count) % q->rcap] = b;
        q->count++;
        q->ring_bytes += b->len;
    }
}

static mt_batch_t *pop_locked(exq_t *q)
{
    mt_batch_t *b = q->ring[q->head];
    q->ring[q->head] = NULL;
    q->head = (q->head + 1) % q->rcap;
    q->count--;
    if (q->store) {
        q->ring_bytes -= b->len;
    }
    return b;
}

static void abs_deadline(struct timespec *ts, uint64_t mono_ns)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
    ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

/* Sleeps up to ms, waking early when the queue is stopping past its deadline. */
static void backoff_sleep(exq_t *q, int64_t ms)
{
    uint64_t until = mt_now_ns() + (uint64_t)ms * 1000000ull;
    pthread_mutex_lock(&q->mu);
    while (mt_now_ns() < until && !q->handing_over) {
        if (q->stopping && mt_now_ns() >= q->deadline_ns) {
            break;
        }
        uint64_t wake = until;
        if (q->stopping && q->deadline_ns < wake) {
            wake = q->deadline_ns;
        }
        struct timespec ts;
        abs_deadline(&ts, wake);
        pthread_cond_timedwait(&q->cv_work, &q->mu, &ts);
    }
    pthread_mutex_unlock(&q->mu);
}

typedef struct worker {
    exq_t *q;
    void *ws;
    uint8_t *buf;
    size_t buf_cap;
} worker_t;

/* How the send of bs[0..nb) (`items` in all) ended: `sent` delivered, the rest dropped for
 * `reason`. A persistent queue confirms each record to its store; a partial rejection is put
 * on the last records (which items the backend refused is not known). */
static void finish(exq_t *q, mt_batch_t *const *bs, size_t nb, uint64_t items, uint64_t sent,
                   const char *reason)
{
    settle(q, items, sent, reason);
    for (size_t i = 0; q->store && i < nb; i++) {
        uint32_t s = bs[i]->items < sent ? bs[i]->items : (uint32_t)sent;
        sent -= s;
        seg_ack(q->store, bs[i]->seq, s, bs[i]->items - s, reason);
    }
}

/* Sends one coalesced request made of the batches bs[0..nb), retrying per retry_on_failure,
 * and records how it ended. Returns MT_OK when the request was sent or counted as dropped;
 * MT_EINVAL, recording nothing, when nb > 1 and the exporter could not decode it: the caller
 * splits it into its batches; MT_AGAIN, recording nothing, when a reload hands the queue over
 * after a failed attempt: the caller gives the batches back (give_back). */
static int deliver(worker_t *w, const uint8_t *data, size_t len, uint32_t items, const char *tenant,
                   int format, mt_batch_t *const *bs, size_t nb)
{
    exq_t *q = w->q;
    exporter_common_t *cc = q->cc;
    uint64_t start = mt_now_ns();
    double interval = (double)cc->initial_interval;
    for (int attempt = 0;; attempt++) {
        send_result_t res;
        memset(&res, 0, sizeof(res));
        res.tenant = tenant;
        res.format = format;
        uint64_t t0 = mt_now_ns();
        int rc = q->ex->ops->send(q->ex, w->ws, q->signal, data, len, items, &res);
        tm_hist_observe(q->h_latency, (double)(mt_now_ns() - t0) / 1e9);
        if (rc == MT_OK) {
            atomic_store(&q->ex->failing_since_ns, 0);
            uint64_t rej = res.rejected > 0 ? (uint64_t)res.rejected : 0;
            finish(q, bs, nb, items, items - (rej > items ? items : rej), "rejected_by_backend");
            tm_add(q->c_sent_bytes, len);
            if (res.rejected > 0) {
                mt_log(MT_LOG_WARN, "exporter %s: backend rejected %lld of %u %s: %s", q->ex->id,
                       (long long)res.rejected, items, mt_signal_item_name(q->signal), res.msg);
            }
            return MT_OK;
        }
        if (rc == MT_EINVAL && nb > 1) {
            return MT_EINVAL; /* one bad request must not cost the others theirs */
        }
        tm_add(q->c_failed, 1);
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&q->ex->failing_since_ns, &zero, mt_now_ns());
        if (rc != MT_ERETRY || !cc->retry_enabled) {
            finish(q, bs, nb, items, 0,
                   res.reason        ? res.reason
                   : rc == MT_EINVAL ? "decode_error"
                                     : "permanent_error");
            MT_LOG_EVERY(10, MT_LOG_ERROR, "exporter %s: dropping %u %s: %s", q->ex->id, items,
                         mt_signal_item_name(q->signal), res.msg[0] ? res.msg : "permanent error");
            return MT_OK;
        }
        uint64_t now = mt_now_ns();
        int stopping, handing_over;
        uint64_t deadline;
        pthread_mutex_lock(&q->mu);
        stopping = q->stopping;
        deadline = q->deadline_ns;
        handing_over = q->handing_over;
        pthread_mutex_unlock(&q->mu);
        if (handing_over) {
            return MT_AGAIN; /* a reload: the successor queue sends it, nothing recorded */
        }
        if (q->store && stopping && now >= deadline) {
            /* persistent: not dropped, it stays on disk for the next start */
            mt_log(MT_LOG_WARN, "exporter %s: shutting down; %u %s stay queued on disk", q->ex->id,
                   items, mt_signal_item_name(q->signal));
            return MT_OK;
        }
        if ((cc->max_elapsed_time > 0 &&
             now - start > (uint64_t)cc->max_elapsed_time * 1000000ull) ||
            (stopping && now >= deadline)) {
            const char *why = stopping ? q->stop_reason : "retries_exhausted";
            finish(q, bs, nb, items, 0, why);
            mt_log(MT_LOG_ERROR, "exporter %s: dropping %u %s after %d attempts (%s): %s",
                   q->ex->id, items, mt_signal_item_name(q->signal), attempt + 1, why, res.msg);
            return MT_OK;
        }
        /* exponential backoff with jitter; the server's Retry-After wins when larger */
        double jitter = 1.0 + cc->randomization_factor * (2.0 * ((double)rand() / RAND_MAX) - 1.0);
        int64_t wait = (int64_t)(interval * jitter);
        if (res.retry_after_ms > wait) {
            wait = res.retry_after_ms;
        }
        interval *= cc->multiplier;
        if (interval > (double)cc->max_interval) {
            interval = (double)cc->max_interval;
        }
        tm_add(q->c_retries, 1);
        /* a backend that is down fails every retry: say so, not 20 times a second */
        mt_log_limited(&q->rl_fail, 5000000000ull, MT_LOG_WARN,
                       "exporter %s: send failed (%s), retrying in %lld ms", q->ex->id,
                       res.msg[0] ? res.msg : "error", (long long)wait);
        backoff_sleep(q, wait);
    }
}

/* Makes room for `more` batches beyond what the ring holds (a handover may bring more than
 * queue_size); the order is kept. Under q->mu. Returns MT_OK or MT_ENOMEM. */
static int ring_grow_locked(exq_t *q, size_t more)
{
    if (q->count + more <= q->rcap) {
        return MT_OK;
    }
    size_t nc = q->count + more;
    mt_batch_t **nr = calloc(nc, sizeof(*nr));
    if (!nr) {
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < q->count; i++) {
        nr[i] = q->ring[(q->head + i) % q->rcap];
    }
    free(q->ring);
    q->ring = nr;
    q->rcap = nc;
    q->head = 0;
    return MT_OK;
}

/* Puts the batches taken[i] with back[i] set back at the head of the ring, in order: a
 * handover stopped the worker that held them, unsent and unrecorded. */
static void give_back(exq_t *q, mt_batch_t *const *taken, const uint8_t *back, size_t n)
{
    pthread_mutex_lock(&q->mu);
    for (size_t i = n; i-- > 0;) {
        if (!back[i]) {
            continue;
        }
        if (ring_grow_locked(q, 1) != MT_OK) {
            /* cannot happen in practice (the ring had room for these a moment ago); if it
             * does, the batch is lost and must be counted */
            pthread_mutex_unlock(&q->mu);
            settle(q, taken[i]->items, 0, "out_of_memory");
            batch_unref(taken[i]);
            pthread_mutex_lock(&q->mu);
            continue;
        }
        q->head = (q->head + q->rcap - 1) % q->rcap;
        q->ring[q->head] = taken[i];
        q->count++;
        if (q->store) {
            q->ring_bytes += taken[i]->len;
        }
    }
    pthread_mutex_unlock(&q->mu);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    exq_t *q = w->q;
    mt_batch_t *taken[256];
    for (;;) {
        size_t n = 0;
        uint64_t items = 0;
        size_t bytes = 0;
        pthread_mutex_lock(&q->mu);
        for (;;) {
            refill_locked(q);
            if (q->count > 0 || q->stopping) {
                break;
            }
            pthread_cond_wait(&q->cv_work, &q->mu);
        }
        /* a persistent queue stops sending at the deadline: the rest stays on disk; a queue
         * handed over stops at once: the rest goes to its successor */
        if (q->stopping &&
            (q->count == 0 || q->handing_over || (q->store && mt_now_ns() >= q->deadline_ns))) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        taken[n++] = pop_locked(q);
        items = taken[0]->items;
        bytes = taken[0]->len;
        if (q->bs.enabled) {
            uint64_t deadline = taken[0]->created_ns + (uint64_t)q->bs.timeout_ms * 1000000ull;
            while ((int64_t)items < q->bs.send_batch_size && n < MT_ARRAY_LEN(taken)) {
                if (q->count == 0) {
                    refill_locked(q);
                }
                if (q->count > 0) {
                    mt_batch_t *nb = q->ring[q->head];
                    if (strcmp(nb->tenant, taken[0]->tenant) != 0 ||
                        nb->format != taken[0]->format) {
                        break; /* each tenant (and encoding) in its own request */
                    }
                    if (q->bs.send_batch_max_size > 0 &&
                        (int64_t)(items + nb->items) > q->bs.send_batch_max_size) {
                        break;
                    }
                    taken[n++] = pop_locked(q);
                    items += nb->items;
                    bytes += nb->len;
                    continue;
                }
                if (q->stopping || mt_now_ns() >= deadline) {
                    break;
                }
                struct timespec ts;
                abs_deadline(&ts, deadline);
                pthread_cond_timedwait(&q->cv_work, &q->mu, &ts);
            }
        }
        pthread_mutex_unlock(&q->mu);

        const uint8_t *data = taken[0]->data;
        if (n > 1) {
            if (w->buf_cap < bytes) {
                free(w->buf);
                w->buf_cap = bytes + bytes / 4;
                w->buf = malloc(w->buf_cap);
            }
            if (w->buf) {
                size_t off = 0;
                for (size_t i = 0; i < n; i++) {
                    memcpy(w->buf + off, taken[i]->data, taken[i]->len);
                    off += taken[i]->len;
                }
                data = w->buf;
            } else {
                w->buf_cap = 0;
            }
        }
        /* batches a handover takes back (deliver returned MT_AGAIN) */
        uint8_t back[MT_ARRAY_LEN(taken)] = {0};
        size_t nback = 0;
        int rc = MT_OK;
        if (n == 1 || w->buf) {
            rc = deliver(w, data, bytes, (uint32_t)items, taken[0]->tenant, taken[0]->format, taken,
                         n);
        }
        if (rc == MT_AGAIN) {
            memset(back, 1, n);
            nback = n;
        } else if ((n > 1 && !w->buf) || rc == MT_EINVAL) {
            /* no memory to coalesce: one by one rather than lose anything; or the batch keeps
             * its requests (taken[]): resend them one by one, so only the one the exporter
             * cannot decode is dropped */
            if (rc == MT_EINVAL) {
                MT_LOG_EVERY(10, MT_LOG_WARN,
                             "exporter %s: a batch of %zu requests could not be "
                             "decoded; sending them one by one",
                             q->ex->id, n);
            }
            for (size_t i = 0; i < n; i++) {
                if (deliver(w, taken[i]->data, taken[i]->len, taken[i]->items, taken[i]->tenant,
                            taken[i]->format, &taken[i], 1) == MT_AGAIN) {
                    back[i] = 1;
                    nback++;
                }
            }
        }
        /* a big coalescing buffer is not worth keeping between quiet periods */
        if (w->buf_cap > (8u << 20)) {
            free(w->buf);
            w->buf = NULL;
            w->buf_cap = 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (back[i]) { /* still queued: its bytes and items stay counted */
                bytes -= taken[i]->len;
                items -= taken[i]->items;
            }
        }
        if (!q->store) { /* a persistent queue's room is the store's quota */
            pthread_mutex_lock(&q->mu);
            q->bytes -= bytes;
            q->items -= items;
            pthread_mutex_unlock(&q->mu);
        }
        if (nback) {
            give_back(q, taken, back, n);
        }
        for (size_t i = 0; i < n; i++) {
            if (!back[i]) {
                batch_unref(taken[i]);
            }
        }
    }
    if (q->ex->ops->worker_fini) {
        q->ex->ops->worker_fini(q->ex, w->ws);
    }
    free(w->buf);
    free(w);
    return NULL;
}

int exq_start(exq_t *q)
{
    exporter_common_t *cc = q->cc;
    int n = (int)(cc->num_consumers > 0 ? cc->num_consumers : 1);
    if (!cc->queue_enabled) {
        n = 1;
    }
    q->workers = calloc((size_t)n, sizeof(pthread_t));
    if (!q->workers) {
        return MT_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        worker_t *w = calloc(1, sizeof(*w));
        if (!w) {
            return MT_ENOMEM;
        }
        w->q = q;
        w->ws = q->ex->ops->worker_init ? q->ex->ops->worker_init(q->ex) : NULL;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 256 * 1024);
        int rc = pthread_create(&q->workers[i], &at, worker_main, w);
        pthread_attr_destroy(&at);
        if (rc != 0) {
            free(w);
            return MT_ERR;
        }
        q->nworkers++;
    }
    return MT_OK;
}

static void stop_impl(exq_t *q, uint64_t deadline_ns, int exporter_stays)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    q->deadline_ns = deadline_ns;
    if (!exporter_stays) { /* an exporter other queues still use must not give up */
        atomic_store(&q->ex->stop_deadline_ns, deadline_ns);
    }
    pthread_cond_broadcast(&q->cv_work);
    pthread_mutex_unlock(&q->mu);
    /* workers exit when the queue is empty; past the deadline each remaining batch fails
     * fast (deliver() sees stopping && deadline) and is counted as dropped "shutdown" */
    for (int i = 0; i < q->nworkers; i++) {
        pthread_join(q->workers[i], NULL);
    }
    q->nworkers = 0;
}

void exq_stop(exq_t *q, uint64_t deadline_ns)
{
    stop_impl(q, deadline_ns, 0);
}

void exq_retire(exq_t *q, uint64_t deadline_ns, int exporter_stays)
{
    q->stop_reason = "removed";
    stop_impl(q, deadline_ns, exporter_stays);
}

void exq_set_batch(exq_t *q, const batch_settings_t *bs)
{
    pthread_mutex_lock(&q->mu);
    q->bs = *bs;
    pthread_mutex_unlock(&q->mu);
}

void exq_succeed(exq_t *q, exq_t *pred)
{
    pthread_mutex_lock(&q->mu);
    q->pred = pred;
    if (pred->store && !q->store) {
        q->store = pred->store; /* the same directory: appends from now on go to it */
        q->store_borrowed = 1;
    }
    pthread_mutex_unlock(&q->mu);
}

int exq_handed_over(const exq_t *q)
{
    return q->handing_over;
}

int exq_successor_shares_store(const exq_t *q)
{
    return q->store_borrowed;
}

/* Moves what old holds into q (under both locks): the read-ahead of a shared store, or the
 * queued batches in memory, ahead of what q was given since the swap (they are older). */
static uint64_t take_ring_locked(exq_t *q, exq_t *old)
{
    uint64_t lost = 0;
    if (ring_grow_locked(q, old->count) != MT_OK) {
        /* no memory for a bigger ring: the batches are lost, in the ledger here and in the
         * counter by the caller (the registry lock is never taken under a queue's) */
        while (old->count) {
            mt_batch_t *b = pop_locked(old);
            old->led.queued -= b->items;
            seg_ledger_drop(&old->led, b->items, "out_of_memory");
            lost += b->items;
            batch_unref(b);
        }
        return lost;
    }
    for (size_t i = old->count; i-- > 0;) {
        mt_batch_t *b = old->ring[(old->head + i) % old->rcap];
        q->head = (q->head + q->rcap - 1) % q->rcap;
        q->ring[q->head] = b;
        q->count++;
        if (q->store) {
            q->ring_bytes += b->len;
        } else {
            q->bytes += b->len;
            q->items += b->items;
        }
    }
    old->count = 0;
    old->head = 0;
    old->ring_bytes = 0;
    return 0;
}

int exq_handover(exq_t *old, exq_t *q)
{
    pthread_mutex_lock(&old->mu);
    old->stopping = 1;
    old->handing_over = 1;
    old->deadline_ns = UINT64_MAX;
    atomic_store(&old->ex->yield_send, 1); /* the old exporter goes with the old service */
    pthread_cond_broadcast(&old->cv_work);
    pthread_mutex_unlock(&old->mu);
    /* each worker ends its send in progress (or gives it back after a failed attempt) */
    for (int i = 0; i < old->nworkers; i++) {
        pthread_join(old->workers[i], NULL);
    }
    old->nworkers = 0;
    if (q->store && !q->store_borrowed && !old->store) {
        /* memory -> disk: the old batches are appended to the successor's store (after what
         * came since the swap) and read back from there like any other record */
        for (;;) {
            pthread_mutex_lock(&old->mu);
            mt_batch_t *b = old->count ? pop_locked(old) : NULL;
            pthread_mutex_unlock(&old->mu);
            if (!b) {
                break;
            }
            seg_meta_t m;
            memset(&m, 0, sizeof(m));
            m.items = b->items;
            m.signal = (uint8_t)b->signal;
            m.format = b->format;
            snprintf(m.tenant, sizeof(m.tenant), "%s", b->tenant);
            if (seg_append(q->store, &m, b->data, b->len) != MT_OK) {
                settle(old, b->items, 0, "storage_full");
            }
            batch_unref(b);
        }
    }
    pthread_mutex_lock(&q->mu);
    pthread_mutex_lock(&old->mu);
    uint64_t lost = take_ring_locked(q, old);
    seg_ledger_add(&q->led, &old->led);
    memset(&old->led, 0, sizeof(old->led));
    if (q->store_borrowed) {
        old->store = NULL; /* q owns it now */
        q->store_borrowed = 0;
    }
    q->pred = NULL;
    pthread_cond_broadcast(&q->cv_work);
    pthread_mutex_unlock(&old->mu);
    pthread_mutex_unlock(&q->mu);
    if (lost) {
        tm_count_reason("meltp_exporter_dropped_items_total",
                        "Items the exporter dropped, by reason.", q->labels, "out_of_memory", lost);
    }
    return exq_start(q);
}

void exq_destroy(exq_t *q)
{
    if (!q) {
        return;
    }
    if (q->store_borrowed) {
        q->store = NULL; /* a reload that failed: the store stays its predecessor's */
    }
    tm_gauge_remove(q);
    if (q->pred) {
        register_gauges(q->pred);
    }
    while (q->count && q->store) {
        batch_unref(pop_locked(q)); /* read ahead; still on disk, unconfirmed */
    }
    seg_close(q->store);
    while (q->count) {
        mt_batch_t *b = pop_locked(q);
        tm_count_reason("meltp_exporter_dropped_items_total",
                        "Items the exporter dropped, by reason.", q->labels, q->stop_reason,
                        b->items);
        q->led.queued -= b->items;
        seg_ledger_drop(&q->led, b->items, q->stop_reason);
        batch_unref(b);
    }
    free(q->workers);
    free(q->ring);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv_work);
    free(q);
}
