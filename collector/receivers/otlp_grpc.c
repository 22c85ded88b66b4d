/*
 * otlp_grpc.c - OTLP/gRPC for the `otlp` receiver (protocols.grpc): the Export methods of the
 * trace, metrics, logs and (development) profiles services over h2server.c. A call's message
 * (one, 5-byte prefixed) is collected under max_recv_msg_size_mib, judged on its prefix as
 * soon as the 5 bytes are in, then goes through otlp_process(), the path OTLP/HTTP takes; the
 * outcome's HTTP status becomes a gRPC status (OTLP spec: INVALID_ARGUMENT for bad data,
 * RESOURCE_EXHAUSTED with a RetryInfo when a queue or the memory limiter refuses, ...).
 */
#include "grpc.h"
#include "otlp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GRPC_MAX_HEADER_LIST  (16 * 1024)   /* bytes of one call's metadata (431 above) */
#define GRPC_STREAM_WINDOW    (1024 * 1024) /* per-call flow-control window */
#define GRPC_IDLE_TIMEOUT_S   120
#define GRPC_MAX_CONNECTIONS  4096 /* per listener thread, as the HTTP server's */
#define GRPC_RETRY_DELAY_MS   1000 /* RetryInfo.retry_delay of a refusal that invites a retry */
#define GRPC_SHUTDOWN_GRACE   5000 /* ms the calls in flight get to finish at shutdown */
#define GRPC_MAX_DEADLINE_NS  (86400ull * 1000000000ull)
#define GRPC_ACCEPT_ENCODINGS "identity,gzip,zstd"

static const char *const grpc_paths[MT_SIG_COUNT] = {
    [MT_SIG_TRACES] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    [MT_SIG_METRICS] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    [MT_SIG_LOGS] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    [MT_SIG_PROFILES] =
        "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
};

/* One call in flight. */
typedef struct grpc_call {
    mt_signal_t sig;
    codec_t codec;
    char tenant[MT_TENANT_MAX + 1];
    uint8_t prefix[GRPC_PREFIX_LEN];
    size_t plen;
    int compressed;
    uint32_t mlen;
    uint8_t *msg;
    size_t got;
    int64_t accounted; /* bytes charged to mt_mem_in_use */
    uint64_t deadline; /* CLOCK_MONOTONIC ns, 0 = none */
} grpc_call_t;

static const h2_nv_t resp_headers[] = {
    {"content-type", "application/grpc"},
    {"grpc-accept-encoding", GRPC_ACCEPT_ENCODINGS},
};

static void call_free(grpc_call_t *c)
{
    if (c->accounted) {
        atomic_fetch_sub(&mt_mem_in_use, c->accounted);
    }
    free(c->msg);
    free(c);
}

grpc_status_t otlp_grpc_status(int http, const char *reason)
{
    switch (http) {
    case 200:
        return GRPC_OK;
    case 400:
        return GRPC_INVALID_ARGUMENT;
    case 401: /* missing or wrong credentials (recv_access) */
        return GRPC_UNAUTHENTICATED;
    case 403: /* a tenant the credentials are not bound to */
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 413: /* too large, decode_limit, batch_too_large */
    case 429: /* an exporter queue refused (on_full: refuse) */
    case 503: /* the memory limiter refused, or malloc failed */
        return GRPC_RESOURCE_EXHAUSTED;
    case 504:
        return GRPC_DEADLINE_EXCEEDED;
    default:
        return reason && strcmp(reason, "pipeline_error") == 0 ? GRPC_UNAVAILABLE : GRPC_INTERNAL;
    }
}

/* Answers a call with a status and no message (Trailers-Only), counting it like the HTTP
 * transport counts the same refusal (code = the HTTP status it would have answered). */
static void answer(otlp_state_t *st, h2_stream_t *s, int sig, int http, const char *reason,
                   int retry, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void answer(otlp_state_t *st, h2_stream_t *s, int sig, int http, const char *reason,
                   int retry, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    grpc_status_t code = otlp_grpc_status(http, reason);
    char cs[8];
    snprintf(cs, sizeof(cs), "%d", (int)code);
    sb_t enc, det;
    sb_init(&enc, 0);
    sb_init(&det, 0);
    grpc_message_encode(&enc, msg, strlen(msg));
    h2_nv_t tr[3] = {{"grpc-status", cs}, {"grpc-message", enc.err ? "" : sb_str(&enc)}};
    size_t nt = 2;
    if (retry) {
        grpc_status_details_put(&det, (int)code, msg, GRPC_RETRY_DELAY_MS);
        if (!det.err) {
            tr[nt++] = (h2_nv_t){"grpc-status-details-bin", sb_str(&det)};
        }
    }
    /* a content-type the server does not speak is answered on the HTTP level */
    int hs = http == 415 && strcmp(reason, "unsupported_media_type") == 0 ? 415 : 200;
    h2_respond(s, hs, resp_headers, MT_ARRAY_LEN(resp_headers), NULL, 0, tr, nt);
    sb_fini(&enc);
    sb_fini(&det);
    recv_count(&st->gcnt[sig >= 0 ? sig : 0], http, reason, 0, sig >= 0);
    mt_log(MT_LOG_DEBUG, "receiver %s: gRPC %s -> %s %s", st->r->id, h2_path(s),
           grpc_status_name((int)code), msg);
}

int otlp_grpc_content_type_ok(const char *ct)
{
    static const char base[] = "application/grpc";
    if (!ct || strncasecmp(ct, base, sizeof(base) - 1) != 0) {
        return 0;
    }
    const char *rest = ct + sizeof(base) - 1;
    return *rest == 0 || *rest == ';' || strncasecmp(rest, "+proto", 6) == 0;
}

static int memory_refused(int64_t more)
{
    int64_t limit = atomic_load(&mt_mem_limit);
    return limit > 0 && atomic_load(&mt_mem_in_use) + more > limit;
}

static void grpc_begin(void *arg, h2_stream_t *s)
{
    otlp_state_t *st = arg;
    const char *path = h2_path(s);
    int sig = -1;
    for (int i = 0; i < MT_SIG_COUNT; i++) {
        if (strcmp(path, grpc_paths[i]) == 0) {
            sig = i;
        }
    }
    if (sig < 0 || strcmp(h2_method(s), "POST") != 0) {
        answer(st, s, -1, 404, "unimplemented", 0, "unknown method %s", path);
        return;
    }
    if (!otlp_grpc_content_type_ok(h2_header(s, "content-type"))) {
        answer(st, s, sig, 415, "unsupported_media_type", 0,
               "unsupported content-type \"%s\"; use application/grpc",
               h2_header(s, "content-type") ? h2_header(s, "content-type") : "");
        return;
    }
    if (st->r->npipes[sig] == 0) {
        answer(st, s, sig, 404, "no_pipeline", 0, "receiver %s is not part of any %s pipeline",
               st->r->id, mt_signal_name(sig));
        return;
    }
    const char *ge = h2_header(s, "grpc-encoding");
    codec_t codec = codec_from_name(ge);
    if (codec != CODEC_NONE && codec != CODEC_GZIP && codec != CODEC_ZSTD) {
        /* the gRPC spec's answer to a compression the server does not support */
        answer(st, s, sig, 404, "unsupported_encoding", 0,
               "grpc-encoding \"%s\" is not supported; use gzip, zstd or identity", ge);
        return;
    }
    grpc_call_t *c = calloc(1, sizeof(*c));
    if (!c) {
        answer(st, s, sig, 503, "out_of_memory", 1, "out of memory");
        return;
    }
    c->sig = (mt_signal_t)sig;
    c->codec = codec;
    /* the one access decision of every receiver: credentials, then the tenant */
    recv_access_t ac;
    if (!recv_access(st->r->auth, h2_header(s, "authorization"), h2_header(s, "x-scope-orgid"),
                     h2_peer_tenant(s), &ac)) {
        free(c);
        answer(st, s, sig, ac.status, ac.reason, 0, "%s", ac.msg);
        return;
    }
    memcpy(c->tenant, ac.tenant, sizeof(c->tenant));
    if (memory_refused(0)) {
        free(c);
        answer(st, s, sig, 503, "memory_limit", 1, "memory limit reached (%lld bytes in use)",
               (long long)atomic_load(&mt_mem_in_use));
        return;
    }
    const char *to = h2_header(s, "grpc-timeout");
    int64_t ns;
    if (to && grpc_timeout_parse(to, &ns) == 0) {
        c->deadline = mt_now_ns() +
                      ((uint64_t)ns < GRPC_MAX_DEADLINE_NS ? (uint64_t)ns : GRPC_MAX_DEADLINE_NS);
        h2_set_deadline(s, c->deadline);
    }
    h2_set_user(s, c);
}

static void refuse_call(otlp_state_t *st, h2_stream_t *s, grpc_call_t *c, int http,
                        const char *reason, int retry, const char *msg)
{
    answer(st, s, c->sig, http, reason, retry, "%s", msg);
}

static void grpc_data(void *arg, h2_stream_t *s, const uint8_t *p, size_t n)
{
    otlp_state_t *st = arg;
    otlp_rcfg_t *cfg = st->r->cfg;
    grpc_call_t *c = h2_user(s);
    if (!c) {
        return;
    }
    while (n > 0 && !h2_answered(s)) {
        if (c->plen < GRPC_PREFIX_LEN) {
            size_t k = GRPC_PREFIX_LEN - c->plen < n ? GRPC_PREFIX_LEN - c->plen : n;
            memcpy(c->prefix + c->plen, p, k);
            c->plen += k;
            p += k;
            n -= k;
            if (c->plen < GRPC_PREFIX_LEN) {
                return;
            }
            if (grpc_prefix_get(c->prefix, c->plen, &c->compressed, &c->mlen) != GRPC_PREFIX_LEN) {
                refuse_call(st, s, c, 400, "bad_frame", 0,
                            "invalid message prefix: compressed flag is neither 0 nor 1");
                return;
            }
            uint64_t max = (uint64_t)cfg->grpc_max_recv_mib << 20;
            if (c->mlen > max) {
                char m[160];
                snprintf(m, sizeof(m),
                         "message of %u bytes exceeds max_recv_msg_size_mib (%lld MiB)", c->mlen,
                         (long long)cfg->grpc_max_recv_mib);
                refuse_call(st, s, c, 413, "too_large", 0, m);
                return;
            }
            if (c->compressed && c->codec == CODEC_NONE) {
                refuse_call(st, s, c, 400, "bad_compression", 0,
                            "compressed message without a grpc-encoding");
                return;
            }
            if (memory_refused(c->mlen)) {
                refuse_call(st, s, c, 503, "memory_limit", 1, "memory limit reached; retry later");
                return;
            }
            c->msg = malloc(c->mlen ? c->mlen : 1);
            if (!c->msg) {
                refuse_call(st, s, c, 503, "out_of_memory", 1, "out of memory");
                return;
            }
            c->accounted = c->mlen;
            atomic_fetch_add(&mt_mem_in_use, c->accounted);
            continue;
        }
        if (c->got >= c->mlen) {
            refuse_call(st, s, c, 400, "bad_frame", 0,
                        "more than one message in a unary call, or bytes past the message");
            return;
        }
        size_t k = c->mlen - c->got < n ? c->mlen - c->got : n;
        memcpy(c->msg + c->got, p, k);
        c->got += k;
        p += k;
        n -= k;
    }
}

static void grpc_end(void *arg, h2_stream_t *s)
{
    otlp_state_t *st = arg;
    otlp_rcfg_t *cfg = st->r->cfg;
    grpc_call_t *c = h2_user(s);
    if (!c) {
        return;
    }
    if (c->plen < GRPC_PREFIX_LEN) {
        refuse_call(st, s, c, 400, "bad_frame", 0, "the call carries no message");
        return;
    }
    if (c->got < c->mlen) {
        answer(st, s, c->sig, 400, "bad_frame", 0,
               "message truncated: its prefix says %u bytes, %zu arrived", c->mlen, c->got);
        return;
    }
    if (c->deadline && mt_now_ns() > c->deadline) {
        refuse_call(st, s, c, 504, "deadline_exceeded", 0, "grpc-timeout passed");
        return;
    }
    otlp_outcome_t o;
    otlp_process(st, &st->gcnt[c->sig], c->sig, 0, c->compressed ? c->codec : CODEC_NONE, c->msg,
                 c->mlen, (size_t)cfg->grpc_max_recv_mib << 20, "max_recv_msg_size_mib", c->tenant,
                 &o);
    if (o.status != 200) {
        answer(st, s, c->sig, o.status, o.reason, o.retry, "%s", o.msg);
        return;
    }
    uint8_t *out = malloc(GRPC_PREFIX_LEN + o.blen);
    if (!out) {
        free(o.body);
        answer(st, s, c->sig, 503, "out_of_memory", 1, "out of memory");
        return;
    }
    grpc_prefix_put(out, 0, (uint32_t)o.blen);
    memcpy(out + GRPC_PREFIX_LEN, o.body, o.blen);
    free(o.body);
    static const h2_nv_t ok[] = {{"grpc-status", "0"}};
    h2_respond(s, 200, resp_headers, MT_ARRAY_LEN(resp_headers), out, GRPC_PREFIX_LEN + o.blen, ok,
               1);
    free(out);
    recv_count(&st->gcnt[c->sig], 200, NULL, 0, false);
    /* the message is no longer needed: give its memory back before the stream closes */
    h2_set_user(s, NULL);
    call_free(c);
}

static void grpc_timeout(void *arg, h2_stream_t *s)
{
    otlp_state_t *st = arg;
    grpc_call_t *c = h2_user(s);
    answer(st, s, c ? (int)c->sig : -1, 504, "deadline_exceeded", 0,
           "grpc-timeout passed before the message arrived");
}

static void grpc_close(void *arg, h2_stream_t *s)
{
    (void)arg;
    grpc_call_t *c = h2_user(s);
    if (c) {
        h2_set_user(s, NULL);
        call_free(c);
    }
}

static void grpc_event(void *arg, h2_event_t ev)
{
    otlp_state_t *st = arg;
    if (ev >= 0 && ev < H2_EV_COUNT && st->h2ev[ev]) {
        tm_add(st->h2ev[ev], 1);
    }
}

int otlp_grpc_start(otlp_state_t *st, mt_errbuf_t *eb)
{
    receiver_t *rv = st->r;
    otlp_rcfg_t *cfg = rv->cfg;
    snprintf(st->grlabels, sizeof(st->grlabels), "receiver=\"%s\",transport=\"grpc\"", rv->id);
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        snprintf(st->glabels[s], sizeof(st->glabels[s]),
                 "receiver=\"%s\",signal=\"%s\",transport=\"grpc\"", rv->id, mt_signal_name(s));
        recv_counters_init_transport(&st->gcnt[s], st->glabels[s], rv->id, "grpc");
    }
    for (int e = 0; e < H2_EV_COUNT; e++) {
        char lb[256];
        snprintf(lb, sizeof(lb), "%s,event=\"%s\"", st->grlabels, h2_event_name(e));
        st->h2ev[e] = tm_counter("meltp_receiver_http2_events_total",
                                 "HTTP/2 connection and stream events of the gRPC transport "
                                 "(protocol errors, floods, resets), by event.",
                                 lb);
    }
    h2_limits_t lim = {
        .max_concurrent_streams = (uint32_t)cfg->grpc_max_streams,
        .max_header_list = GRPC_MAX_HEADER_LIST,
        .window = GRPC_STREAM_WINDOW,
        .idle_timeout_s = GRPC_IDLE_TIMEOUT_S,
        .max_connections = GRPC_MAX_CONNECTIONS,
    };
    h2_handler_t h = {grpc_begin, grpc_data, grpc_end, grpc_timeout, grpc_close, grpc_event, st};
    tls_server_t *tls = NULL;
    if (tls_server_enabled(&cfg->grpc_tls)) {
        char name[160];
        snprintf(name, sizeof(name), "receiver %s (grpc)", rv->id);
        if (!(tls = tls_server_create(&cfg->grpc_tls, name, eb))) {
            otlp_grpc_stop(st);
            return MT_ERR;
        }
    }
    /* a reload that keeps the endpoint takes the running listener over (h2server.h) */
    st->h2 = h2_server_start(cfg->grpc_endpoint, (int)cfg->grpc_threads, &lim, &h, tls, eb);
    if (!st->h2) {
        otlp_grpc_stop(st);
        return MT_ERR;
    }
    mt_log(MT_LOG_INFO, "receiver %s: OTLP/gRPC%s on %s", rv->id, tls ? " over TLS" : "",
           cfg->grpc_endpoint);
    return MT_OK;
}

void otlp_grpc_stop(otlp_state_t *st)
{
    otlp_rcfg_t *cfg = st->r->cfg;
    if (!cfg->grpc_present) {
        return;
    }
    h2_server_stop(st->h2, GRPC_SHUTDOWN_GRACE);
    st->h2 = NULL;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (st->gcnt[s].items_in) {
            recv_counters_fini(&st->gcnt[s]);
            st->gcnt[s].items_in = NULL;
        }
    }
}
