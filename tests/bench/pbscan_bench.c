/*
 * pbscan_bench.c - measures what validating an OTLP/protobuf request costs on the receive
 * path three ways, on the same bytes: (a) meltp's hand-written wire scanner (otlp_scan: wire
 * types against the schema, lengths, varints, UTF-8, id lengths, nesting, item count, no
 * decode), (b) nanopb callback decoding doing the same work (every string, bytes and repeated
 * field goes to one callback that checks it and counts items; nothing is materialised), (c)
 * protobuf-c's full unpack into an arena plus otlp_check, for reference. It then feeds each a
 * handful of corrupted requests and prints which accept and which refuse.
 *
 * Usage: pbscan_bench [fixtures_dir] [runs]. `make bench-pbscan` builds and runs it; the
 * nanopb code is generated from proto/ at build time (docs/BENCHMARKS.md, docs/ARCHITECTURE.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pb_decode.h>

#include "otlp_collector.pb.h" /* nanopb's */
#include "otlp_collector.pb-c.h"
#include "arena.h"
#include "otlp.h"
#include "otlp_json.h"
#include "pbwire.h"

/* ---- (b) nanopb: one callback for every callback field of every message ---------------- */

/* Nesting limit counted in callback levels (repeated and oneof messages); the scanner counts
 * every message level against 64. */
#define NP_MAX_DEPTH 64

/* Every message the callback may decode into, so one stack buffer fits any of them. */
typedef union np_msg {
    opentelemetry_proto_common_v1_ArrayValue a1;
    opentelemetry_proto_common_v1_KeyValueList a2;
    opentelemetry_proto_common_v1_AnyValue a3;
    opentelemetry_proto_common_v1_KeyValue a4;
    opentelemetry_proto_common_v1_InstrumentationScope a5;
    opentelemetry_proto_common_v1_EntityRef a6;
    opentelemetry_proto_resource_v1_Resource a7;
    opentelemetry_proto_trace_v1_ResourceSpans t1;
    opentelemetry_proto_trace_v1_ScopeSpans t2;
    opentelemetry_proto_trace_v1_Span_Event t3;
    opentelemetry_proto_trace_v1_Span_Link t4;
    opentelemetry_proto_trace_v1_Status t5;
    opentelemetry_proto_trace_v1_Span t6;
    opentelemetry_proto_metrics_v1_ResourceMetrics m1;
    opentelemetry_proto_metrics_v1_ScopeMetrics m2;
    opentelemetry_proto_metrics_v1_Gauge m3;
    opentelemetry_proto_metrics_v1_Sum m4;
    opentelemetry_proto_metrics_v1_Histogram m5;
    opentelemetry_proto_metrics_v1_ExponentialHistogram m6;
    opentelemetry_proto_metrics_v1_Summary m7;
    opentelemetry_proto_metrics_v1_Metric m8;
    opentelemetry_proto_metrics_v1_NumberDataPoint m9;
    opentelemetry_proto_metrics_v1_HistogramDataPoint m10;
    opentelemetry_proto_metrics_v1_ExponentialHistogramDataPoint_Buckets m11;
    opentelemetry_proto_metrics_v1_ExponentialHistogramDataPoint m12;
    opentelemetry_proto_metrics_v1_SummaryDataPoint m13;
    opentelemetry_proto_metrics_v1_SummaryDataPoint_ValueAtQuantile m14;
    opentelemetry_proto_metrics_v1_Exemplar m15;
    opentelemetry_proto_logs_v1_ResourceLogs l1;
    opentelemetry_proto_logs_v1_ScopeLogs l2;
    opentelemetry_proto_logs_v1_LogRecord l3;
    opentelemetry_proto_collector_v1_ExportTraceServiceRequest r1;
    opentelemetry_proto_collector_v1_ExportMetricsServiceRequest r2;
    opentelemetry_proto_collector_v1_ExportLogsServiceRequest r3;
} np_msg_t;

static struct {
    const uint8_t *base, *end; /* the request being decoded */
    int depth;
    int noinit; /* decode with PB_DECODE_NOINIT over a zeroed struct (variant) */
    int trust;  /* skip the wire type check of callback fields (what nanopb alone does) */
    uint64_t items;
    const pb_msgdesc_t *item[4];
} np;

/* Wanted length of a bytes field (trace/span ids), 0 for any. */
static size_t np_idlen(const pb_field_t *f)
{
    const pb_msgdesc_t *d = f->descriptor;
    unsigned t = f->tag;
    if (d == &opentelemetry_proto_trace_v1_Span_msg) {
        return t == 1 ? 16 : (t == 2 || t == 4) ? 8 : 0;
    }
    if (d == &opentelemetry_proto_trace_v1_Span_Link_msg) {
        return t == 1 ? 16 : t == 2 ? 8 : 0;
    }
    if (d == &opentelemetry_proto_logs_v1_LogRecord_msg) {
        return t == 9 ? 16 : t == 10 ? 8 : 0;
    }
    if (d == &opentelemetry_proto_metrics_v1_Exemplar_msg) {
        return t == 5 ? 16 : t == 4 ? 8 : 0;
    }
    return 0;
}

/* Named by the generator option `* callback_function:"np_cb"` (tests/bench/pbscan.options).
 * nanopb calls it for a LEN record with a substream over the payload (over the input buffer,
 * so the bytes are checked in place and skipped, never copied), and for any other wire type
 * with a stream over a copy of the raw value: nanopb does not check the wire type of callback
 * fields, so the callback tells the two apart by where the stream points. */
bool np_cb(pb_istream_t *is, pb_ostream_t *os, const pb_field_t *f)
{
    (void)os;
    if (!is) {
        return true; /* encoding: not used */
    }
    const uint8_t *p = (const uint8_t *)is->state;
    size_t n = is->bytes_left;
    int in_input = np.trust || (p >= np.base && p <= np.end);
    switch (PB_LTYPE(f->type)) {
    case PB_LTYPE_SUBMESSAGE:
    case PB_LTYPE_SUBMSG_W_CB: {
        if (!in_input || np.depth >= NP_MAX_DEPTH) {
            return false;
        }
        for (int i = 0; i < 4; i++) {
            if (f->submsg_desc == np.item[i]) {
                np.items++;
            }
        }
        np_msg_t m;
        np.depth++;
        bool ok;
        if (np.noinit) {
            memset(&m, 0, sizeof(m));
            ok = pb_decode_ex(is, f->submsg_desc, &m, PB_DECODE_NOINIT);
        } else {
            ok = pb_decode(is, f->submsg_desc, &m);
        }
        np.depth--;
        return ok;
    }
    case PB_LTYPE_STRING:
        return in_input && otlp_utf8_ok(p, n) && pb_read(is, NULL, n);
    case PB_LTYPE_BYTES: {
        size_t want = np_idlen(f);
        if (!in_input || (want && n != 0 && n != want)) {
            return false;
        }
        return pb_read(is, NULL, n);
    }
    case PB_LTYPE_FIXED64:
        return pb_read(is, NULL, 8); /* one element; called again while a packed record lasts */
    case PB_LTYPE_FIXED32:
        return pb_read(is, NULL, 4);
    default: {
        uint64_t v;
        return pb_decode_varint(is, &v);
    }
    }
}

static int dec_nanopb_with(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items, int noinit,
                           int trust)
{
    memset(&np, 0, sizeof(np));
    np.noinit = noinit;
    np.trust = trust;
    np.base = d;
    np.end = d + n;
    const pb_msgdesc_t *desc;
    if (s == MT_SIG_TRACES) {
        desc = &opentelemetry_proto_collector_v1_ExportTraceServiceRequest_msg;
        np.item[0] = &opentelemetry_proto_trace_v1_Span_msg;
    } else {
        desc = &opentelemetry_proto_collector_v1_ExportMetricsServiceRequest_msg;
        np.item[0] = &opentelemetry_proto_metrics_v1_NumberDataPoint_msg;
        np.item[1] = &opentelemetry_proto_metrics_v1_HistogramDataPoint_msg;
        np.item[2] = &opentelemetry_proto_metrics_v1_ExponentialHistogramDataPoint_msg;
        np.item[3] = &opentelemetry_proto_metrics_v1_SummaryDataPoint_msg;
    }
    np_msg_t m;
    memset(&m, 0, sizeof(m));
    pb_istream_t is = pb_istream_from_buffer(d, n);
    if (!pb_decode_ex(&is, desc, &m, noinit ? PB_DECODE_NOINIT : 0)) {
        return -1;
    }
    *items = np.items;
    return 0;
}

/* pb_decode as documented: each message struct is set to its defaults first. */
static int dec_nanopb(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    return dec_nanopb_with(s, d, n, items, 0, 0);
}

/* The cheapest nanopb can be made here: memset instead of the per-field default walk. */
static int dec_nanopb_noinit(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    return dec_nanopb_with(s, d, n, items, 1, 0);
}

/* Strictness only: the callback takes the bytes it is given, as a plain nanopb callback would. */
static int dec_nanopb_trusting(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    return dec_nanopb_with(s, d, n, items, 0, 1);
}

/* ---- (a) the scanner, (c) protobuf-c ---------------------------------------------------- */

static int dec_scanner(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    return otlp_scan(s, d, n, items) == MT_OK ? 0 : -1;
}

static arena_t *pbc_arena;

/* What the receiver's slow path does short of UTF-8: unpack into the request arena, count. */
static int dec_protobufc(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    arena_reset(pbc_arena);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(pbc_arena), n, d);
    return m && otlp_check(s, m, items, &eb) == MT_OK ? 0 : -1;
}

/* protobuf-c's unpack alone (the strictness the scanner promises to match at least). */
static int dec_pbc_unpack(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    arena_reset(pbc_arena);
    *items = 0;
    return protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(pbc_arena), n, d)
               ? 0
               : -1;
}

/* The receiver's whole slow path: otlp_unpack (depth check + unpack), UTF-8, otlp_check. */
static int dec_receiver_slow(mt_signal_t s, const uint8_t *d, size_t n, uint64_t *items)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    arena_reset(pbc_arena);
    ProtobufCMessage *m = otlp_unpack(s, d, n, pbc_arena, &eb);
    return m && otlp_validate_utf8(m, &eb) == MT_OK && otlp_check(s, m, items, &eb) == MT_OK ? 0
                                                                                             : -1;
}

typedef int (*dec_fn)(mt_signal_t, const uint8_t *, size_t, uint64_t *);

/* ---- inputs ---------------------------------------------------------------------------- */

/* A growable wire writer for building requests at start-up (not timed). */
typedef struct wb {
    uint8_t *b;
    size_t n, cap;
} wb_t;

static void wb_raw(wb_t *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        if (!w->b) {
            perror("realloc");
            exit(2);
        }
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void wb_varint(wb_t *w, uint64_t v)
{
    uint8_t t[10];
    wb_raw(w, t, (size_t)(put_varint(t, v) - t));
}

static void wb_tag(wb_t *w, unsigned f, unsigned wt)
{
    wb_varint(w, (uint64_t)f << 3 | wt);
}

static void wb_len(wb_t *w, unsigned f, const void *p, size_t n)
{
    wb_tag(w, f, 2);
    wb_varint(w, n);
    wb_raw(w, p, n);
}

static void wb_str(wb_t *w, unsigned f, const char *s)
{
    wb_len(w, f, s, strlen(s));
}

static void wb_sub(wb_t *w, unsigned f, wb_t *child)
{
    wb_len(w, f, child->b, child->n);
    child->n = 0;
}

static void wb_fixed64(wb_t *w, unsigned f, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++) {
        t[i] = (uint8_t)(v >> (8 * i));
    }
    wb_tag(w, f, 1);
    wb_raw(w, t, 8);
}

/* KeyValue{key, value: AnyValue{string_value}} */
static void wb_attr_str(wb_t *w, unsigned f, const char *k, const char *v)
{
    wb_t any = {0}, kv = {0};
    wb_str(&any, 1, v);
    wb_str(&kv, 1, k);
    wb_sub(&kv, 2, &any);
    wb_sub(w, f, &kv);
    free(any.b);
    free(kv.b);
}

static void wb_attr_int(wb_t *w, unsigned f, const char *k, uint64_t v)
{
    wb_t any = {0}, kv = {0};
    wb_tag(&any, 3, 0);
    wb_varint(&any, v);
    wb_str(&kv, 1, k);
    wb_sub(&kv, 2, &any);
    wb_sub(w, f, &kv);
    free(any.b);
    free(kv.b);
}

/* How one span of a built request is spoiled (strictness rows). */
typedef enum {
    SP_OK,
    SP_UNKNOWN_FIELD,    /* valid: unknown field 99 */
    SP_NAME_AS_VARINT,   /* name (string, 5) sent as a varint */
    SP_TRACE_ID_FIXED64, /* trace_id (bytes, 1) sent as fixed64 */
    SP_KIND_AS_LEN,      /* kind (enum, 6) sent as a LEN record */
    SP_GROUP,            /* a start-group record (wire type 3) */
    SP_WIRE_TYPE_7,      /* wire type 7 */
    SP_FIELD_0,          /* field number 0 */
    SP_VARINT_11,        /* kind as an 11-byte varint */
    SP_VARINT_10_OVER,   /* kind as a 10-byte varint with bits above 64 */
    SP_BAD_UTF8,         /* name is not UTF-8 */
    SP_SHORT_TRACE_ID,   /* trace_id of 5 bytes */
    SP_ATTR_PAST_PARENT, /* an attribute's length runs past the span (not past the buffer) */
    SP_DEEP_25,          /* an attribute value nested 25 kvlists deep */
    SP_DEEP_80,          /* ... 80 deep */
} spoil_t;

static void build_span(wb_t *w, uint64_t i, spoil_t sp)
{
    uint8_t tid[16], sid[8];
    for (int k = 0; k < 16; k++) {
        tid[k] = (uint8_t)(i * 31 + (uint64_t)k + 1);
    }
    for (int k = 0; k < 8; k++) {
        sid[k] = (uint8_t)(i * 7 + (uint64_t)k + 1);
    }
    if (sp == SP_TRACE_ID_FIXED64) {
        wb_fixed64(w, 1, 42);
    } else {
        wb_len(w, 1, tid, sp == SP_SHORT_TRACE_ID ? 5 : 16);
    }
    wb_len(w, 2, sid, 8);
    wb_len(w, 4, sid, 8);
    if (sp == SP_NAME_AS_VARINT) {
        wb_tag(w, 5, 0);
        wb_varint(w, 5);
    } else {
        wb_str(w, 5, sp == SP_BAD_UTF8 ? "GET /api/\xc3\x28" : "GET /api/orders/{id}");
    }
    if (sp == SP_KIND_AS_LEN) {
        wb_len(w, 6, "\x02", 1);
    } else if (sp == SP_VARINT_11) {
        wb_tag(w, 6, 0);
        wb_raw(w, "\x82\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11);
    } else if (sp == SP_VARINT_10_OVER) {
        wb_tag(w, 6, 0);
        wb_raw(w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
    } else {
        wb_tag(w, 6, 0);
        wb_varint(w, 2);
    }
    wb_fixed64(w, 7, 1700000000000000000ull + i * 1000);
    wb_fixed64(w, 8, 1700000000000000000ull + i * 1000 + 12345678);
    wb_attr_str(w, 9, "http.method", "GET");
    wb_attr_str(w, 9, "http.route", "/api/orders/{id}");
    wb_attr_int(w, 9, "http.status_code", 200);
    wb_attr_str(w, 9, "net.peer.name", "orders.internal");
    if (sp == SP_DEEP_25 || sp == SP_DEEP_80) {
        wb_t any = {0}, kv = {0}, list = {0};
        wb_str(&any, 1, "leaf");
        for (int lvl = 0; lvl < (sp == SP_DEEP_25 ? 25 : 80); lvl++) {
            wb_str(&kv, 1, "k");
            wb_sub(&kv, 2, &any);
            wb_sub(&list, 1, &kv);
            wb_sub(&any, 6, &list);
        }
        wb_str(&kv, 1, "deep");
        wb_sub(&kv, 2, &any);
        wb_sub(w, 9, &kv);
        free(any.b);
        free(kv.b);
        free(list.b);
    }
    wb_t st = {0};
    wb_tag(&st, 3, 0);
    wb_varint(&st, 1);
    wb_sub(w, 15, &st);
    free(st.b);
    switch (sp) {
    case SP_UNKNOWN_FIELD:
        wb_tag(w, 99, 0);
        wb_varint(w, 7);
        break;
    case SP_GROUP:
        wb_tag(w, 20, 3);
        break;
    case SP_WIRE_TYPE_7:
        wb_tag(w, 20, 7);
        break;
    case SP_FIELD_0:
        wb_tag(w, 0, 0);
        wb_varint(w, 1);
        break;
    case SP_ATTR_PAST_PARENT:
        wb_tag(w, 9, 2);
        wb_varint(w, 40); /* the span ends after 2 of these bytes; the request goes on */
        wb_raw(w, "\x0a\x00", 2);
        break;
    default:
        break;
    }
}

/* ExportTraceServiceRequest with one resource, one scope and `nspans` spans; the first span
 * spoiled by `sp`. For SP_ATTR_PAST_PARENT a trailing unknown field keeps bytes after it. */
static wb_t build_traces(uint64_t nspans, spoil_t sp)
{
    wb_t req = {0}, rs = {0}, res = {0}, ss = {0}, scope = {0}, span = {0};
    wb_attr_str(&res, 1, "service.name", "checkout");
    wb_attr_str(&res, 1, "service.version", "1.4.2");
    wb_attr_str(&res, 1, "deployment.environment", "prod");
    wb_attr_str(&res, 1, "host.name", "node-17");
    wb_sub(&rs, 1, &res);
    wb_str(&scope, 1, "@opentelemetry/instrumentation-http");
    wb_str(&scope, 2, "0.52.1");
    wb_sub(&ss, 1, &scope);
    for (uint64_t i = 0; i < nspans; i++) {
        build_span(&span, i, i == 0 ? sp : SP_OK);
        wb_sub(&ss, 2, &span);
    }
    wb_sub(&rs, 2, &ss);
    wb_sub(&req, 1, &rs);
    if (sp == SP_ATTR_PAST_PARENT) {
        wb_tag(&req, 100, 2);
        wb_varint(&req, 64);
        uint8_t pad[64] = {0};
        wb_raw(&req, pad, sizeof(pad));
    }
    free(rs.b);
    free(res.b);
    free(ss.b);
    free(scope.b);
    free(span.b);
    return req;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* ---- timing ---------------------------------------------------------------------------- */

/* This thread's CPU time, not wall time: on a shared 2-core host the bench is often
 * descheduled, and wall time would charge that to whichever decoder was running. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define MAX_RUNS 31

/* Iterations of fn that take about 20 ms. */
static long calibrate(dec_fn fn, mt_signal_t s, const uint8_t *d, size_t n)
{
    uint64_t items;
    for (long iters = 1;; iters *= 4) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            fn(s, d, n, &items);
        }
        double dt = now_ns() - t0;
        if (dt > 5e6) {
            return (long)((double)iters * 20e6 / dt) + 1;
        }
    }
}

/* ns one call of fn takes, averaged over `iters` calls. */
static double time_run(dec_fn fn, mt_signal_t s, const uint8_t *d, size_t n, long iters)
{
    uint64_t items;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        fn(s, d, n, &items);
    }
    return (now_ns() - t0) / (double)iters;
}

static const struct {
    const char *name;
    dec_fn fn;
} decoders[] = {
    {"scanner", dec_scanner},
    {"nanopb", dec_nanopb},
    {"nanopb noinit", dec_nanopb_noinit},
    {"protobuf-c", dec_protobufc},
};
#define NDEC (sizeof(decoders) / sizeof(decoders[0]))

int main(int argc, char **argv)
{
    const char *fx = argc > 1 ? argv[1] : "tests/fixtures/otlp-js";
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    if (runs < 1 || runs > MAX_RUNS) {
        runs = 9;
    }
    pbc_arena = arena_create(1 << 20, 0);
    struct {
        const char *name;
        mt_signal_t sig;
        uint8_t *d;
        size_t n;
    } in[3];
    char path[1024];
    snprintf(path, sizeof(path), "%s/traces-n100/traces-proto-1.bin", fx);
    in[0].name = "traces-n100 (SDK fixture)";
    in[0].sig = MT_SIG_TRACES;
    in[0].d = read_file(path, &in[0].n);
    snprintf(path, sizeof(path), "%s/metrics-n100/metrics-proto-1.bin", fx);
    in[1].name = "metrics-n100 (SDK fixture)";
    in[1].sig = MT_SIG_METRICS;
    in[1].d = read_file(path, &in[1].n);
    wb_t syn = build_traces(1000, SP_OK);
    in[2].name = "synthetic 1000 spans";
    in[2].sig = MT_SIG_TRACES;
    in[2].d = syn.b;
    in[2].n = syn.n;
    if (!in[0].d || !in[1].d || !pbc_arena) {
        fprintf(stderr, "pbscan_bench: cannot read fixtures under %s\n", fx);
        return 2;
    }

    printf("pbscan_bench: median of %d runs, thread CPU ns per request (ns per item)\n\n", runs);
    printf("%-28s %8s %6s", "input", "bytes", "items");
    for (size_t k = 0; k < NDEC; k++) {
        printf(" %20s", decoders[k].name);
    }
    printf("\n");
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t items[NDEC];
        for (size_t k = 0; k < NDEC; k++) {
            items[k] = 0;
            if (decoders[k].fn(in[i].sig, in[i].d, in[i].n, &items[k]) != 0) {
                fprintf(stderr, "%s refused %s\n", decoders[k].name, in[i].name);
                bad = 1;
            }
            if (items[k] != items[0]) {
                fprintf(stderr, "%s counted %llu items in %s, scanner %llu\n", decoders[k].name,
                        (unsigned long long)items[k], in[i].name, (unsigned long long)items[0]);
                bad = 1;
            }
        }
        printf("%-28s %8zu %6llu", in[i].name, in[i].n, (unsigned long long)items[0]);
        /* decoders take turns run by run, so load from other processes on a shared host
         * falls on all of them alike; each figure is the median of its runs */
        long iters[NDEC];
        double r[NDEC][MAX_RUNS];
        for (size_t k = 0; k < NDEC; k++) {
            iters[k] = calibrate(decoders[k].fn, in[i].sig, in[i].d, in[i].n);
        }
        for (int run = 0; run < runs; run++) {
            for (size_t k = 0; k < NDEC; k++) {
                r[k][run] = time_run(decoders[k].fn, in[i].sig, in[i].d, in[i].n, iters[k]);
            }
        }
        for (size_t k = 0; k < NDEC; k++) {
            qsort(r[k], (size_t)runs, sizeof(double), cmp_double);
            double ns = r[k][runs / 2];
            char cell[64];
            snprintf(cell, sizeof(cell), "%.0f (%.1f)", ns, items[0] ? ns / (double)items[0] : 0);
            printf(" %20s", cell);
        }
        printf("\n");
    }

    static const struct {
        const char *name;
        spoil_t sp;
        int trunc; /* 0 none, 1 drop the last byte, 2 cut in half */
    } cases[] = {
        {"valid (10 spans)", SP_OK, 0},
        {"unknown field 99 (valid)", SP_UNKNOWN_FIELD, 0},
        {"truncated by 1 byte", SP_OK, 1},
        {"truncated in half", SP_OK, 2},
        {"wire type 7", SP_WIRE_TYPE_7, 0},
        {"group (wire type 3)", SP_GROUP, 0},
        {"field number 0", SP_FIELD_0, 0},
        {"name (string) as varint", SP_NAME_AS_VARINT, 0},
        {"trace_id (bytes) as fixed64", SP_TRACE_ID_FIXED64, 0},
        {"kind (enum) as LEN record", SP_KIND_AS_LEN, 0},
        {"11-byte varint", SP_VARINT_11, 0},
        {"10-byte varint > 64 bits", SP_VARINT_10_OVER, 0},
        {"name not UTF-8", SP_BAD_UTF8, 0},
        {"trace_id of 5 bytes", SP_SHORT_TRACE_ID, 0},
        {"length past its parent", SP_ATTR_PAST_PARENT, 0},
        {"kvlist nested 25 deep", SP_DEEP_25, 0},
        {"kvlist nested 80 deep", SP_DEEP_80, 0},
    };
    static const struct {
        const char *name;
        dec_fn fn;
    } judges[] = {
        {"scanner", dec_scanner},
        {"nanopb", dec_nanopb},
        {"nanopb, no wt check", dec_nanopb_trusting},
        {"pbc unpack", dec_pbc_unpack},
        {"receiver slow path", dec_receiver_slow},
    };
    printf("\nstrictness on spoiled requests (ok = accepted, REJ = refused)\n\n%-30s", "case");
    for (size_t k = 0; k < sizeof(judges) / sizeof(judges[0]); k++) {
        printf(" %19s", judges[k].name);
    }
    printf("  scanner = nanopb\n");
    int differ = 0;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        wb_t req = build_traces(10, cases[c].sp);
        size_t n = cases[c].trunc == 1 ? req.n - 1 : cases[c].trunc == 2 ? req.n / 2 : req.n;
        printf("%-30s", cases[c].name);
        int verdict[5];
        for (size_t k = 0; k < sizeof(judges) / sizeof(judges[0]); k++) {
            uint64_t items = 0;
            verdict[k] = judges[k].fn(MT_SIG_TRACES, req.b, n, &items) == 0;
            printf(" %19s", verdict[k] ? "ok" : "REJ");
        }
        printf("  %s\n", verdict[0] == verdict[1] ? "yes" : "NO");
        differ += verdict[0] != verdict[1];
        if ((cases[c].sp == SP_OK || cases[c].sp == SP_UNKNOWN_FIELD) && !cases[c].trunc &&
            !(verdict[0] && verdict[1] && verdict[2] && verdict[3] && verdict[4])) {
            fprintf(stderr, "a valid request was refused: %s\n", cases[c].name);
            bad = 1;
        }
        free(req.b);
    }
    printf("\nscanner and nanopb disagree on %d of %zu cases\n", differ,
           sizeof(cases) / sizeof(cases[0]));
    for (int i = 0; i < 2; i++) {
        free(in[i].d);
    }
    free(syn.b);
    arena_destroy(pbc_arena);
    return bad;
}
