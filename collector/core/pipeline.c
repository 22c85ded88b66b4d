/*
 * pipeline.c - the data path from a decoded request to exporter queues. A request that no
 * processor changes is forwarded as the exact bytes the client sent (protobuf) or as one
 * packing of the decoded message (JSON): one malloc, shared by every queue. Processors that
 * change data work on the decoded message in the request arena and the result is packed once.
 * Processors may drop items (the client then sees partial_success) or reject the request (400).
 */
#include "component.h"
#include "otlp.h"
#include "coverage.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TARGETS   64
#define MAX_OBSERVERS 8

static struct {
    pipeline_observer_fn fn;
    void *arg;
} observers[MAX_OBSERVERS];
static _Atomic int nobservers;

int pipeline_add_observer(pipeline_observer_fn fn, void *arg)
{
    int n = atomic_load(&nobservers);
    if (n >= MAX_OBSERVERS) {
        return MT_ERR;
    }
    observers[n].fn = fn;
    observers[n].arg = arg;
    atomic_store(&nobservers, n + 1);
    return MT_OK;
}

void pipeline_remove_observer(pipeline_observer_fn fn, void *arg)
{
    int n = atomic_load(&nobservers);
    for (int i = 0; i < n; i++) {
        if (observers[i].fn == fn && observers[i].arg == arg) {
            observers[i] = observers[n - 1];
            atomic_store(&nobservers, n - 1);
            return;
        }
    }
}

static void set_tenant(mt_batch_t *b, const char *tenant)
{
    size_t n = tenant ? strlen(tenant) : 0;
    if (n > MT_TENANT_MAX) {
        n = MT_TENANT_MAX;
    }
    memcpy(b->tenant, tenant ? tenant : "", n);
    b->tenant[n] = 0;
}

static mt_batch_t *pack_batch(mt_signal_t s, const ProtobufCMessage *m, uint64_t items,
                              const char *tenant)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    mt_batch_t *b = batch_alloc(s, (uint32_t)items, n);
    if (b) {
        protobuf_c_message_pack(m, b->data);
        set_tenant(b, tenant);
    }
    return b;
}

static mt_batch_t *raw_batch(mt_signal_t s, const uint8_t *raw, size_t len, uint64_t items,
                             const char *tenant)
{
    mt_batch_t *b = batch_alloc(s, (uint32_t)items, len);
    if (b) {
        memcpy(b->data, raw, len);
        set_tenant(b, tenant);
    }
    return b;
}

/* Observers see the request once, as the first pipeline delivered it. */
static void notify_observers(mt_signal_t s, const uint8_t *pb, size_t len, uint64_t items,
                             const char *tenant)
{
    int nobs = atomic_load(&nobservers);
    for (int o = 0; o < nobs; o++) {
        observers[o].fn(observers[o].arg, s, pb, len, items, tenant);
    }
}

/* Reserves room in every queue of every pipeline that has a batch (refusing queues make it
 * all-or-nothing; queues that drop when full count the drop), then commits. MT_OK when
 * queued (res filled), otherwise res says why: MT_AGAIN (a queue is full) or MT_ETOOBIG (the
 * batch is larger than a whole queue). */
static int enqueue_all(pipeline_t **ps, size_t nps, mt_batch_t **per_pipe, uint64_t items,
                       consume_result_t *res)
{
    exq_t *reserved[MAX_TARGETS];
    size_t rbytes[MAX_TARGETS];
    exq_t *dropped_q[MAX_TARGETS];
    uint64_t dropped_items[MAX_TARGETS];
    const char *dropped_why[MAX_TARGETS];
    size_t nres = 0, ndrop = 0;
    for (size_t i = 0; i < nps; i++) {
        pipeline_t *p = ps[i];
        if (!per_pipe[i]) {
            continue;
        }
        uint64_t n = per_pipe[i]->items;
        for (size_t k = 0; k < p->nqueues; k++) {
            exq_t *q = p->queues[k];
            int full = nres == MAX_TARGETS || ndrop == MAX_TARGETS;
            int rc = full ? MT_AGAIN : exq_reserve(q, per_pipe[i]->len, n);
            if (rc == MT_OK) {
                reserved[nres] = q;
                rbytes[nres++] = i;
            } else if (!full && exq_on_full_drop(q)) {
                /* on_full: drop never pushes back, not even for a batch that cannot fit */
                dropped_items[ndrop] = n;
                dropped_why[ndrop] = rc == MT_ETOOBIG ? "batch_too_large" : "queue_full";
                dropped_q[ndrop++] = q;
            } else {
                for (size_t r = 0; r < nres; r++) {
                    exq_unreserve(reserved[r], per_pipe[rbytes[r]]->len,
                                  per_pipe[rbytes[r]]->items);
                }
                tm_add(p->c_refused, items);
                if (rc == MT_ETOOBIG) {
                    res->status = MT_ETOOBIG;
                    snprintf(res->msg, sizeof(res->msg),
                             "a request of %llu items (%zu bytes encoded) is larger than "
                             "exporter %s's whole queue (sending_queue queue_items/queue_bytes); "
                             "send smaller requests",
                             (unsigned long long)n, per_pipe[i]->len, exq_exporter(q)->id);
                    return MT_ETOOBIG;
                }
                res->status = MT_AGAIN;
                snprintf(res->msg, sizeof(res->msg), "exporter %s queue is full; retry later",
                         exq_exporter(q)->id);
                return MT_AGAIN;
            }
        }
    }
    /* persistent queues first: an append can fail (disk full), a memory push cannot. A
     * queue that already wrote keeps the batch when a later one refuses: the client's retry
     * then makes a duplicate there, never a loss anywhere. */
    for (size_t r = 0; r < nres; r++) {
        if (!exq_persistent(reserved[r])) {
            continue;
        }
        if (exq_push_reserved(reserved[r], per_pipe[rbytes[r]]) != MT_OK) {
            for (size_t u = 0; u < nres; u++) {
                if (u > r || !exq_persistent(reserved[u])) { /* not pushed yet */
                    exq_unreserve(reserved[u], per_pipe[rbytes[u]]->len,
                                  per_pipe[rbytes[u]]->items);
                }
            }
            tm_add(ps[rbytes[r]]->c_refused, items);
            res->status = MT_AGAIN;
            snprintf(res->msg, sizeof(res->msg), "exporter %s queue storage is full; retry later",
                     exq_exporter(reserved[r])->id);
            return MT_AGAIN;
        }
    }
    for (size_t r = 0; r < nres; r++) {
        if (!exq_persistent(reserved[r])) {
            exq_push_reserved(reserved[r], per_pipe[rbytes[r]]);
        }
    }
    for (size_t d = 0; d < ndrop; d++) {
        exq_count_drop(dropped_q[d], dropped_items[d], dropped_why[d]);
    }
    res->status = MT_OK;
    return MT_OK;
}

int pipeline_observer_count(void)
{
    return atomic_load(&nobservers);
}

int pipeline_accepts_format(pipeline_t *const *ps, size_t nps, int format)
{
    if (format == MT_FMT_OTLP) {
        return 1;
    }
    for (size_t i = 0; i < nps; i++) {
        if (ps[i]->nprocs > 0) {
            return 0;
        }
        for (size_t k = 0; k < ps[i]->nqueues; k++) {
            exporter_t *ex = exq_exporter(ps[i]->queues[k]);
            if (!ex->ops->accepts_format || !ex->ops->accepts_format(ex, format)) {
                return 0;
            }
        }
    }
    return nps > 0;
}

void pipeline_consume_encoded(pipeline_t **ps, size_t nps, mt_signal_t s, int format,
                              const uint8_t *data, size_t len, uint64_t items, const char *tenant,
                              const ProtobufCMessage *otlp, consume_result_t *res)
{
    mt_batch_t *per_pipe[MAX_TARGETS] = {0};
    memset(res, 0, sizeof(res[0]));
    if (nps > MAX_TARGETS) {
        res->status = MT_EINVAL;
        snprintf(res->msg, sizeof(res->msg), "more than %d pipelines for one signal", MAX_TARGETS);
        return;
    }
    mt_batch_t *b = raw_batch(s, data, len, items, tenant);
    if (!b) {
        res->status = MT_ENOMEM;
        return;
    }
    b->format = (uint8_t)format;
    for (size_t i = 0; i < nps; i++) {
        per_pipe[i] = b; /* no processors: every pipeline shares the one batch */
    }
    int queued = enqueue_all(ps, nps, per_pipe, items, res) == MT_OK;
    if (queued) {
        if (format == MT_FMT_PRW1) {
            coverage_observe_prw(data, len);
        } else if (format == MT_FMT_OTLP) {
            coverage_observe(s, data, len);
        }
    }
    if (queued && otlp && atomic_load(&nobservers) > 0) {
        size_t n = protobuf_c_message_get_packed_size(otlp);
        uint8_t *pb = malloc(n ? n : 1);
        if (pb) {
            protobuf_c_message_pack(otlp, pb);
            notify_observers(s, pb, n, items, tenant);
            free(pb);
        }
    }
    batch_unref(b);
}

void pipeline_consume(pipeline_t **ps, size_t nps, mt_signal_t s, ProtobufCMessage *req,
                      const uint8_t *raw, size_t raw_len, uint64_t items, const char *tenant,
                      arena_t *a, consume_result_t *res)
{
    mt_batch_t *per_pipe[MAX_TARGETS] = {0};
    mt_batch_t *plain = NULL;
    int req_dirty = 0;
    memset(res, 0, sizeof(res[0]));
    if (nps > MAX_TARGETS) {
        /* the service refuses such configs; never truncate silently */
        res->status = MT_EINVAL;
        snprintf(res->msg, sizeof(res->msg), "more than %d pipelines for one signal", MAX_TARGETS);
        return;
    }

    /* 1. one encoded batch per pipeline (shared when unchanged) */
    for (size_t i = 0; i < nps; i++) {
        pipeline_t *p = ps[i];
        int untouched = p->nprocs == 0;
        if (!untouched && raw && !req_dirty) {
            /* processors that can tell from the bytes that they would change nothing spare
             * the decode / re-encode (e.g. synthetic_guard on data without personal data) */
            untouched = 1;
            for (size_t k = 0; k < p->nprocs && untouched; k++) {
                untouched = p->procs[k]->ops->inspect &&
                            !p->procs[k]->ops->inspect(p->procs[k], s, raw, raw_len);
            }
        }
        if (untouched) {
            if (!plain) {
                plain = raw ? raw_batch(s, raw, raw_len, items, tenant)
                            : pack_batch(s, req, items, tenant);
                if (!plain) {
                    res->status = MT_ENOMEM;
                    goto out;
                }
            }
            batch_ref(plain);
            per_pipe[i] = plain;
            continue;
        }
        if (!req) {
            /* the receiver forwarded validated bytes without decoding: decode now */
            req = protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), raw_len,
                                            raw);
            if (!req) {
                res->status = MT_ENOMEM;
                goto out;
            }
        }
        ProtobufCMessage *m = req;
        if (req_dirty) {
            /* an earlier pipeline changed req: start again from its encoding */
            if (!plain) {
                plain = raw ? raw_batch(s, raw, raw_len, items, tenant) : NULL;
            }
            if (!plain) {
                res->status = MT_ENOMEM;
                goto out;
            }
            m = protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), plain->len,
                                          plain->data);
            if (!m) {
                res->status = MT_ENOMEM;
                goto out;
            }
        } else if (!raw && !plain) {
            /* keep an unchanged encoding around in case another pipeline needs one */
            if (nps > 1) {
                plain = pack_batch(s, req, items, tenant);
            }
        }
        uint64_t dropped = 0;
        for (size_t k = 0; k < p->nprocs; k++) {
            proc_result_t pr;
            memset(&pr, 0, sizeof(pr));
            int rc = p->procs[k]->ops->process(p->procs[k], s, m, a, &pr);
            if (rc != MT_OK) {
                res->status = rc;
                snprintf(res->msg, sizeof(res->msg), "processor %s failed: %s", p->procs[k]->id,
                         mt_strerror(rc));
                goto out;
            }
            if (pr.reject) {
                res->status = MT_EINVAL;
                snprintf(res->msg, sizeof(res->msg), "%s", pr.msg);
                goto out;
            }
            if (pr.dropped) {
                dropped += pr.dropped;
                tm_add(p->c_dropped_proc, pr.dropped);
                if (!res->msg[0]) {
                    snprintf(res->msg, sizeof(res->msg), "%s", pr.msg);
                }
            }
        }
        if (m == req) {
            req_dirty = 1;
        }
        if (dropped > res->rejected) {
            res->rejected = dropped;
        }
        uint64_t left = dropped < items ? items - dropped : 0;
        if (left == 0) {
            continue; /* nothing left for this pipeline */
        }
        per_pipe[i] = pack_batch(s, m, left, tenant);
        if (!per_pipe[i]) {
            res->status = MT_ENOMEM;
            goto out;
        }
    }

    /* 2.-4. queue it everywhere or nowhere, then show it to the observers */
    if (enqueue_all(ps, nps, per_pipe, items, res) == MT_OK) {
        int nobs = atomic_load(&nobservers);
        mt_batch_t *b = NULL;
        for (size_t i = 0; i < nps && !b; i++) {
            b = per_pipe[i];
        }
        if (b) {
            coverage_observe(s, b->data, b->len); /* what was queued, after the processors */
        }
        if (nobs <= 0) {
            b = NULL;
        }
        if (b) {
            notify_observers(s, b->data, b->len, b->items, b->tenant);
        }
    }
out:
    for (size_t i = 0; i < nps; i++) {
        batch_unref(per_pipe[i]);
    }
    batch_unref(plain);
}
