/*
 * recv_otlp.c - the one OTLP ingest path: wire validation (otlp_scan), the decode that names
 * what was wrong when the scanner refuses, the hand-over to the pipelines and the per-service
 * event count. The HTTP receiver (otlp.c) and the Kafka receiver (kafka.c) both call it, so a
 * message means the same thing whichever transport brought it. See recv.h.
 */
#include "recv.h"
#include "events.h"
#include "otlp.h"
#include "otlp_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void set(recv_ingest_t *out, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set(recv_ingest_t *out, int status, const char *reason, const char *fmt, ...)
{
    out->status = status;
    out->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->msg, sizeof(out->msg), fmt, ap);
    va_end(ap);
}

/* The request's items were refused after they were counted as received. */
static void refuse_items(recv_counters_t *cnt, recv_ingest_t *out, int status, const char *reason,
                         const char *msg)
{
    set(out, status, reason, "%s", msg);
    recv_count_items(cnt, reason, out->items);
}

static void count_events(const ProtobufCMessage *msg, const uint8_t *data, size_t len,
                         const otlp_events_t *ev, arena_t *a)
{
    if (!msg && ev->total && !ev->overflow) {
        /* events per service, found by the scan itself */
        for (size_t i = 0; i < ev->n; i++) {
            events_add(ev->r[i].svc, ev->r[i].svcn, ev->r[i].count);
        }
    } else if (ev->total || msg) {
        /* JSON (decoded anyway) or many resources: walk the request for their services */
        if (msg) {
            size_t pl = protobuf_c_message_get_packed_size(msg);
            uint8_t *pb = arena_alloc(a, pl ? pl : 1);
            if (pb) {
                protobuf_c_message_pack(msg, pb);
                events_count_logs(pb, pl);
            }
        } else {
            events_count_logs(data, len);
        }
    }
}

void recv_otlp_ingest(receiver_t *r, recv_counters_t *cnt, mt_signal_t sig, int json,
                      const uint8_t *data, size_t len, const char *tenant, arena_t *a, size_t dcap,
                      recv_ingest_t *out)
{
    memset(out, 0, sizeof(*out));
    out->status = 200;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *msg = NULL;
    uint64_t items = 0;
    otlp_events_t ev;
    ev.total = 0;
    int scanned = json ? MT_EUNSUPPORTED : otlp_scan_events(sig, data, len, &items, &ev);
    if (scanned != MT_OK) {
        /* JSON, protobuf the scanner refused (the decode finds the reason and the field
         * path), or protobuf only the decoder can judge (MT_EUNSUPPORTED); valid protobuf
         * takes the fast path: forwarded as it came, decoded only if a processor needs to
         * change it */
        if (json) {
            msg = otlp_json_decode(otlp_request_desc(sig), (const char *)data, len, a, &eb);
        } else {
            msg = otlp_unpack(sig, data, len, a, &eb);
            if (msg && otlp_validate_utf8(msg, &eb) != MT_OK) {
                msg = NULL;
            }
        }
        if (!msg && (arena_over_cap(a) || arena_over_limit(a))) {
            recv_decode_refusal(a, dcap, &out->status, &out->reason, out->msg, sizeof(out->msg));
            return;
        }
        if (!msg) {
            set(out, 400, json ? "bad_json" : "bad_protobuf", "%s%s",
                json ? "invalid OTLP/JSON: " : "invalid OTLP/protobuf: ", eb.msg);
            return;
        }
        if (otlp_check(sig, msg, &items, &eb) != MT_OK) {
            set(out, 400, "invalid_data", "invalid %s: %s", mt_signal_name(sig), eb.msg);
            return;
        }
        if (scanned == MT_EINVAL) {
            /* a scanner bug (test_scan_differential.c says it cannot happen); a client can
             * repeat it per request, so it is rate-limited */
            MT_LOG_EVERY(10, MT_LOG_WARN,
                         "receiver %s: scanner refused a %s request the decoder accepts", r->id,
                         mt_signal_name(sig));
        }
    }
    out->items = items;
    tm_add(cnt->items_in, items);
    consume_result_t res;
    memset(&res, 0, sizeof(res));
    if (items == 0) {
        /* an empty request (or envelopes without items) is valid and carries nothing */
        res.status = MT_OK;
    } else {
        pipeline_consume(r->pipes[sig], r->npipes[sig], sig, msg, json ? NULL : data, len, items,
                         tenant, a, &res);
    }
    if (res.status == MT_AGAIN) {
        refuse_items(cnt, out, 429, "queue_full", res.msg);
        return;
    }
    if (res.status == MT_ETOOBIG) {
        refuse_items(cnt, out, 413, "batch_too_large", res.msg);
        return;
    }
    if (res.status == MT_EINVAL) {
        set(out, 400, "rejected_by_processor", "rejected: %s", res.msg);
        recv_count_items(cnt, "rejected_by_processor", items);
        return;
    }
    if (res.status != MT_OK) {
        set(out, res.status == MT_ENOMEM ? 503 : 500,
            res.status == MT_ENOMEM ? "out_of_memory" : "pipeline_error", "%s",
            res.msg[0] ? res.msg : mt_strerror(res.status));
        return;
    }
    out->rejected = res.rejected;
    if (res.rejected) {
        snprintf(out->msg, sizeof(out->msg), "%s", res.msg);
    }
    tm_add(cnt->items_ok, items - res.rejected);
    if (sig == MT_SIG_LOGS) {
        count_events(msg, data, len, &ev, a);
    }
}
