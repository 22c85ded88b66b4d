/*
 * pipeline.c - the data path from a decoded request to exporter queues. A request that no
 * processor changes is forwarded as the exact bytes the client sent (protobuf) or as one
 * packing of the decoded message (JSON): one malloc, shared by every queue. Processors that
 * change data work on the decoded message in the request arena and the result is packed once.
 */
#include "component.h"
#include "otlp.h"

#include <string.h>

#define MAX_TARGETS 64

static mt_batch_t *pack_batch(mt_signal_t s, const ProtobufCMessage *m, uint64_t items)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    mt_batch_t *b = batch_alloc(s, (uint32_t)items, n);
    if (b) {
        protobuf_c_message_pack(m, b->data);
    }
    return b;
}

static mt_batch_t *raw_batch(mt_signal_t s, const uint8_t *raw, size_t len, uint64_t items)
{
    mt_batch_t *b = batch_alloc(s, (uint32_t)items, len);
    if (b) {
        memcpy(b->data, raw, len);
    }
    return b;
}

void pipeline_consume(pipeline_t **ps, size_t nps, mt_signal_t s, ProtobufCMessage *req,
                      const uint8_t *raw, size_t raw_len, uint64_t items, arena_t *a,
                      consume_result_t *res)
{
    mt_batch_t *per_pipe[MAX_TARGETS] = {0};
    mt_batch_t *plain = NULL;
    int req_dirty = 0;
    memset(res, 0, sizeof(*res));
    if (nps > MAX_TARGETS) {
        /* the service refuses such configs; never truncate silently */
        res->status = MT_EINVAL;
        snprintf(res->msg, sizeof(res->msg), "more than %d pipelines for one signal", MAX_TARGETS);
        return;
    }

    /* 1. one encoded batch per pipeline (shared when unchanged) */
    for (size_t i = 0; i < nps; i++) {
        pipeline_t *p = ps[i];
        if (p->nprocs == 0) {
            if (!plain) {
                plain = raw ? raw_batch(s, raw, raw_len, items) : pack_batch(s, req, items);
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
                plain = raw ? raw_batch(s, raw, raw_len, items) : NULL;
            }
            if (!plain) {
                res->status = MT_ENOMEM;
                goto out;
            }
            m = protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a),
                                          plain->len, plain->data);
            if (!m) {
                res->status = MT_ENOMEM;
                goto out;
            }
        } else if (!raw && !plain) {
            /* keep an unchanged encoding around in case another pipeline needs one */
            if (nps > 1) {
                plain = pack_batch(s, req, items);
            }
        }
        for (size_t k = 0; k < p->nprocs; k++) {
            int rc = p->procs[k]->ops->process(p->procs[k], s, m, a);
            if (rc != MT_OK) {
                res->status = rc;
                snprintf(res->msg, sizeof(res->msg), "processor %s failed: %s", p->procs[k]->id,
                         mt_strerror(rc));
                goto out;
            }
        }
        if (m == req) {
            req_dirty = 1;
        }
        per_pipe[i] = pack_batch(s, m, items);
        if (!per_pipe[i]) {
            res->status = MT_ENOMEM;
            goto out;
        }
    }

    /* 2. reserve in every queue; refusing queues make it all-or-nothing */
    exq_t *reserved[MAX_TARGETS];
    size_t rbytes[MAX_TARGETS];
    exq_t *dropped[MAX_TARGETS];
    size_t nres = 0, ndrop = 0;
    for (size_t i = 0; i < nps; i++) {
        pipeline_t *p = ps[i];
        for (size_t k = 0; k < p->nqueues; k++) {
            exq_t *q = p->queues[k];
            int full = nres == MAX_TARGETS || ndrop == MAX_TARGETS;
            if (!full && exq_reserve(q, per_pipe[i]->len, items) == MT_OK) {
                reserved[nres] = q;
                rbytes[nres++] = i;
            } else if (!full && exq_on_full_drop(q)) {
                dropped[ndrop++] = q;
            } else {
                for (size_t r = 0; r < nres; r++) {
                    exq_unreserve(reserved[r], per_pipe[rbytes[r]]->len, items);
                }
                tm_add(p->c_refused, items);
                res->status = MT_AGAIN;
                snprintf(res->msg, sizeof(res->msg),
                         "exporter %s queue is full; retry later", exq_exporter(q)->id);
                goto out;
            }
        }
    }
    /* 3. commit */
    for (size_t r = 0; r < nres; r++) {
        exq_push_reserved(reserved[r], per_pipe[rbytes[r]]);
    }
    for (size_t d = 0; d < ndrop; d++) {
        exq_count_drop(dropped[d], items, "queue_full");
    }
    res->status = MT_OK;
out:
    for (size_t i = 0; i < nps; i++) {
        batch_unref(per_pipe[i]);
    }
    batch_unref(plain);
}
