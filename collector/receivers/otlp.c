/*
 * receiver_otlp.c - the `otlp` receiver, OTLP/HTTP (OTLP/gRPC is otlp_grpc.c, on the same
 * otlp_process()): POST /v1/traces|metrics|logs with
 * protobuf or JSON bodies, identity/gzip/zstd. Every request is decoded and checked in full
 * before it is acknowledged; 200 means every exporter queue of every pipeline took it (or
 * counted a drop under on_full: drop). Errors answer with a google.rpc.Status in the
 * request's encoding and are counted by reason.
 */
#include "component.h"
#include "server.h"
#include "otlp.h"
#include "otlp_json.h"
#include "codec.h"
#include "recv.h"
#include "otlp_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>

static const cfg_field_t otlp_fields[] = {
    {"protocols.http.endpoint", CFG_T_STRING, "127.0.0.1:4318", 0, offsetof(otlp_rcfg_t, endpoint),
     NULL, "host:port to serve OTLP/HTTP on"},
    {"protocols.http.max_request_body_size", CFG_T_BYTES, "20MiB", 0,
     offsetof(otlp_rcfg_t, max_body), NULL,
     "largest body accepted, checked on the wire and again after decompression (413 above)"},
    {"protocols.http.max_decoded_size", CFG_T_BYTES, "0", 0, offsetof(otlp_rcfg_t, max_decoded),
     NULL,
     "most memory decoding one request may take (decompressed body, JSON tree, decoded "
     "messages); over it 413 decode_limit; 0 = 8 x max_request_body_size"},
    {"protocols.http.traces_url_path", CFG_T_STRING, "/v1/traces", 0,
     offsetof(otlp_rcfg_t, paths[MT_SIG_TRACES]), NULL, "path for traces"},
    {"protocols.http.metrics_url_path", CFG_T_STRING, "/v1/metrics", 0,
     offsetof(otlp_rcfg_t, paths[MT_SIG_METRICS]), NULL, "path for metrics"},
    {"protocols.http.logs_url_path", CFG_T_STRING, "/v1/logs", 0,
     offsetof(otlp_rcfg_t, paths[MT_SIG_LOGS]), NULL, "path for logs"},
    {"protocols.http.profiles_url_path", CFG_T_STRING, "/v1development/profiles", 0,
     offsetof(otlp_rcfg_t, paths[MT_SIG_PROFILES]), NULL,
     "path for profiles (OTLP profiles v1development)"},
    {"protocols.http.threads", CFG_T_INT, "2", 0, offsetof(otlp_rcfg_t, threads), NULL,
     "HTTP worker threads (meltp extension; default: 2)"},
    {"protocols.http.include_metadata", CFG_T_BOOL, "false", 0,
     offsetof(otlp_rcfg_t, include_metadata), NULL, "accepted for compatibility"},
    TLS_SERVER_FIELDS("protocols.http.", otlp_rcfg_t, tls),
    {"protocols.http.auth.authenticator", CFG_T_STRING, "", 0, offsetof(otlp_rcfg_t, auth), NULL,
     "id of a bearertokenauth or basicauth extension: requests without valid credentials get "
     "401 before their body is read"},
    {"protocols.grpc.auth.authenticator", CFG_T_STRING, "", 0, offsetof(otlp_rcfg_t, grpc_auth),
     NULL,
     "id of a bearertokenauth or basicauth extension for gRPC calls (UNAUTHENTICATED before the "
     "message is read); an authenticator set on either protocol guards both"},
    {"protocols.grpc.endpoint", CFG_T_STRING, "127.0.0.1:4317", 0,
     offsetof(otlp_rcfg_t, grpc_endpoint), NULL,
     "host:port to serve OTLP/gRPC on (h2c, HTTP/2 with prior knowledge)"},
    {"protocols.grpc.max_recv_msg_size_mib", CFG_T_INT, "4", 0,
     offsetof(otlp_rcfg_t, grpc_max_recv_mib), NULL,
     "largest message accepted in MiB, checked on its 5-byte prefix and again after "
     "decompression (RESOURCE_EXHAUSTED above)"},
    {"protocols.grpc.max_concurrent_streams", CFG_T_INT, "100", 0,
     offsetof(otlp_rcfg_t, grpc_max_streams), NULL,
     "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls in flight on one connection"},
    {"protocols.grpc.threads", CFG_T_INT, "2", 0, offsetof(otlp_rcfg_t, grpc_threads), NULL,
     "gRPC listener threads, each with its own event loop (meltp extension; default: 2)"},
    TLS_SERVER_FIELDS("protocols.grpc.", otlp_rcfg_t, grpc_tls),
};

static void otlp_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    otlp_rcfg_t *cfg = cfgp;
    const cfg_node_t *protos = cfg_map_get(node, "protocols");
    cfg->http_enabled = cfg_map_get(protos, "http") != NULL;
    cfg->grpc_present = cfg_map_get(protos, "grpc") != NULL;
    if (!cfg->http_enabled && !cfg->grpc_present) {
        cfg_error_key(c, node, path, "protocols", "at least one of http, grpc is required");
    }
    char host[256];
    int port;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (cfg->http_enabled &&
        http_parse_endpoint(cfg->endpoint, host, sizeof(host), &port, &eb) != MT_OK) {
        cfg_error_key(c, node, path, "protocols.http.endpoint", "%s", eb.msg);
    }
    if (cfg->grpc_present &&
        http_parse_endpoint(cfg->grpc_endpoint, host, sizeof(host), &port, &eb) != MT_OK) {
        cfg_error_key(c, node, path, "protocols.grpc.endpoint", "%s", eb.msg);
    }
    if (cfg->grpc_max_recv_mib < 1 || cfg->grpc_max_recv_mib > 1024) {
        cfg_error_key(c, node, path, "protocols.grpc.max_recv_msg_size_mib", "must be 1..1024");
    }
    if (cfg->grpc_max_streams < 1 || cfg->grpc_max_streams > 10000) {
        cfg_error_key(c, node, path, "protocols.grpc.max_concurrent_streams", "must be 1..10000");
    }
    if (cfg->grpc_threads < 1 || cfg->grpc_threads > 64) {
        cfg_error_key(c, node, path, "protocols.grpc.threads", "must be 1..64");
    }
    if (cfg->max_body <= 0) {
        cfg_error_key(c, node, path, "protocols.http.max_request_body_size", "must be positive");
    }
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (!cfg->paths[s] || cfg->paths[s][0] != '/') {
            char key[64];
            snprintf(key, sizeof(key), "protocols.http.%s_url_path", mt_signal_name(s));
            cfg_error_key(c, node, path, key, "must start with /");
        }
    }
    if (cfg->max_decoded < 0) {
        cfg_error_key(c, node, path, "protocols.http.max_decoded_size", "must be >= 0");
    }
    if (cfg->threads < 1 || cfg->threads > 64) {
        cfg_error_key(c, node, path, "protocols.http.threads", "must be 1..64");
    }
    if (cfg->http_enabled) {
        recv_tls_check(c, node, path, "protocols.http.", &cfg->tls);
    }
    if (cfg->grpc_present) {
        recv_tls_check(c, node, path, "protocols.grpc.", &cfg->grpc_tls);
    }
}

typedef struct req_ctx {
    mt_signal_t sig;
    int json;
    codec_t codec;
    char tenant[MT_TENANT_MAX + 1];
} req_ctx_t;

static void count_request(otlp_state_t *st, int sig, int code, const char *reason, uint64_t items)
{
    recv_count(&st->cnt[sig >= 0 ? sig : 0], code, reason, items, sig >= 0);
}

static void reply_error(otlp_state_t *st, http_req_t *r, int sig, int json, int status,
                        const char *reason, const char *retry_after, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static void reply_error(otlp_state_t *st, http_req_t *r, int sig, int json, int status,
                        const char *reason, const char *retry_after, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int grpc_code = status == 400   ? 3
                    : status == 413 ? 8
                    : status == 429 ? 8
                    : status == 503 ? 14
                    : status == 404 ? 5
                    : status == 403 ? 7
                    : status == 415 ? 3
                    : status == 401 ? 16
                    : status == 403 ? 7
                                    : 2;
    size_t len = 0;
    uint8_t *body = otlp_status_body(json, grpc_code, msg, &len);
    http_respond(r, status, json ? "application/json" : "application/x-protobuf", body, len,
                 retry_after ? "Retry-After" : NULL, retry_after);
    free(body);
    count_request(st, sig, status, reason, 0);
    mt_log(MT_LOG_DEBUG, "receiver %s: %s %s -> %d %s", st->r->id, r->method, r->path, status, msg);
}

static int media_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0) {
        return 0;
    }
    return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

static void otlp_refused(void *arg, http_req_t *r, int status, const char *reason)
{
    otlp_state_t *st = arg;
    const otlp_rcfg_t *cfg = st->r->cfg;
    int sig = -1;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (strcmp(r->path, cfg->paths[s]) == 0) {
            sig = s;
        }
    }
    count_request(st, sig, status, reason, 0);
}

static void otlp_begin(void *arg, http_req_t *r)
{
    otlp_state_t *st = arg;
    otlp_rcfg_t *cfg = st->r->cfg;
    int sig = -1;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (strcmp(r->path, cfg->paths[s]) == 0) {
            sig = s;
        }
    }
    const char *ct = http_header(r, "Content-Type");
    int json = ct && media_is(ct, "application/json");
    if (sig < 0) {
        reply_error(st, r, -1, json, 404, "not_found", NULL, "no OTLP endpoint at %s", r->path);
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "method %s not allowed; use POST\n", r->method);
        http_respond(r, 405, "text/plain", msg, strlen(msg), "Allow", "POST");
        count_request(st, sig, 405, "method_not_allowed", 0);
        return;
    }
    recv_access_t ac;
    if (!recv_http_access(st->r->auth, r, &ac)) {
        reply_error(st, r, sig, json, ac.status, ac.reason, NULL, "%s", ac.msg);
        return;
    }
    if (st->r->npipes[sig] == 0) {
        reply_error(st, r, sig, json, 404, "no_pipeline", NULL,
                    "receiver %s is not part of any %s pipeline", st->r->id, mt_signal_name(sig));
        return;
    }
    if (!ct ||
        !(json || media_is(ct, "application/x-protobuf") || media_is(ct, "application/protobuf"))) {
        reply_error(
            st, r, sig, 0, 415, "unsupported_media_type", NULL,
            "unsupported Content-Type \"%s\"; use application/x-protobuf or application/json",
            ct ? ct : "");
        return;
    }
    const char *ce = http_header(r, "Content-Encoding");
    codec_t codec = codec_from_name(ce);
    if (codec != CODEC_NONE && codec != CODEC_GZIP && codec != CODEC_ZSTD) {
        reply_error(st, r, sig, json, 415, "unsupported_encoding", NULL,
                    "unsupported Content-Encoding \"%s\"; use gzip, zstd or identity", ce);
        return;
    }
    const char *cl = http_header(r, "Content-Length");
    unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
    if (clen / 16 > (unsigned long long)cfg->max_body) {
        reply_error(st, r, sig, json, 413, "too_large", NULL,
                    "request body of %llu bytes exceeds max_request_body_size %lld", clen,
                    (long long)cfg->max_body);
        return;
    }
    /* a smaller oversize body is read and discarded by the server layer, then answered
     * 413 in otlp_complete, so the client reliably gets the status */
    int64_t limit = atomic_load(&mt_mem_limit);
    if (limit > 0 && atomic_load(&mt_mem_in_use) + (int64_t)clen > limit) {
        reply_error(st, r, sig, json, 503, "memory_limit", "1",
                    "memory limit reached (%lld bytes in use); retry later",
                    (long long)atomic_load(&mt_mem_in_use));
        return;
    }
    req_ctx_t *rc = calloc(1, sizeof(*rc));
    if (!rc) {
        reply_error(st, r, sig, json, 503, "out_of_memory", "1", "out of memory");
        return;
    }
    rc->sig = (mt_signal_t)sig;
    rc->json = json;
    rc->codec = codec;
    memcpy(rc->tenant, ac.tenant, sizeof(rc->tenant));
    r->user = rc;
}

/* Sets o to a refusal: HTTP status, reason (a string literal), whether a retry is invited. */
static void refuse(otlp_outcome_t *o, int status, const char *reason, int retry, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

static void refuse(otlp_outcome_t *o, int status, const char *reason, int retry, const char *fmt,
                   ...)
{
    o->status = status;
    o->reason = reason;
    o->retry = retry;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
    va_end(ap);
}

void otlp_process(otlp_state_t *st, recv_counters_t *cnt, mt_signal_t sig, int json, codec_t codec,
                  const uint8_t *body, size_t blen, size_t max_len, const char *max_key,
                  const char *tenant, otlp_outcome_t *o)
{
    otlp_rcfg_t *cfg = st->r->cfg;
    memset(o, 0, sizeof(*o));
    tm_add(cnt->bytes, blen);
    size_t dcap = recv_decode_cap(cfg->max_decoded, (int64_t)max_len);
    arena_t *a = recv_arena(dcap);
    if (!a) {
        refuse(o, 503, "out_of_memory", 1, "out of memory");
        return;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint8_t *data = (uint8_t *)body;
    size_t len = blen;
    int rcode = codec_decompress(codec, body ? body : (const uint8_t *)"", blen, max_len, a, &data,
                                 &len, &eb);
    if (rcode != MT_OK && (arena_over_cap(a) || arena_over_limit(a))) {
        goto refused;
    } else if (rcode == MT_ETOOBIG) {
        refuse(o, 413, "too_large", 0, "decompressed body exceeds %s %zu bytes", max_key, max_len);
        goto done;
    } else if (rcode != MT_OK) {
        refuse(o, rcode == MT_ENOMEM ? 503 : 400,
               rcode == MT_ENOMEM ? "out_of_memory" : "bad_compression", rcode == MT_ENOMEM, "%s",
               eb.set ? eb.msg : mt_strerror(rcode));
        goto done;
    }
    recv_ingest_t in;
    recv_otlp_ingest(st->r, cnt, sig, json, data, len, tenant, a, dcap, &in);
    if (in.status != 200) {
        refuse(o, in.status, in.reason, in.status == 429 || in.status >= 500, "%s", in.msg);
        goto done;
    }
    o->status = 200;
    o->body =
        otlp_response_body(sig, json, (int64_t)in.rejected, in.rejected ? in.msg : NULL, &o->blen);
    goto done;
refused : {
    int status;
    const char *reason;
    recv_decode_refusal(a, dcap, &status, &reason, o->msg, sizeof(o->msg));
    o->status = status;
    o->reason = reason;
    o->retry = status == 503;
}
done:
    recv_arena_done(a);
}

static void otlp_complete(void *arg, http_req_t *r)
{
    otlp_state_t *st = arg;
    otlp_rcfg_t *cfg = st->r->cfg;
    req_ctx_t *rc = r->user;
    mt_signal_t sig = rc->sig;
    int json = rc->json;
    codec_t codec = rc->codec;
    char tenant[MT_TENANT_MAX + 1];
    memcpy(tenant, rc->tenant, sizeof(tenant));
    free(rc);
    r->user = NULL;
    if (r->too_big) {
        reply_error(st, r, sig, json, 413, "too_large", NULL,
                    "request body exceeds max_request_body_size %lld bytes",
                    (long long)cfg->max_body);
        return;
    }
    otlp_outcome_t o;
    otlp_process(st, &st->cnt[sig], sig, json, codec, r->body, r->len, (size_t)cfg->max_body,
                 "max_request_body_size", tenant, &o);
    if (o.status != 200) {
        reply_error(st, r, sig, json, o.status, o.reason, o.retry ? "1" : NULL, "%s", o.msg);
        return;
    }
    http_respond(r, 200, json ? "application/json" : "application/x-protobuf", o.body, o.blen, NULL,
                 NULL);
    free(o.body);
    count_request(st, sig, 200, NULL, 0);
}

static int otlp_start(receiver_t *rv, mt_errbuf_t *eb)
{
    otlp_rcfg_t *cfg = rv->cfg;
    otlp_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->r = rv;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        snprintf(st->labels[s], sizeof(st->labels[s]), "receiver=\"%s\",signal=\"%s\"", rv->id,
                 mt_signal_name(s));
        recv_counters_init(&st->cnt[s], st->labels[s], rv->id);
    }
    rv->state = st;
    if (cfg->http_enabled) {
        http_handler_t h = {
            .begin = otlp_begin, .complete = otlp_complete, .arg = st, .refused = otlp_refused};
        if (recv_http_start(rv, &st->srv, cfg->endpoint, cfg->threads, cfg->max_body, &cfg->tls, &h,
                            eb)) {
            return MT_ERR;
        }
        mt_log(MT_LOG_INFO, "receiver %s: OTLP/HTTP on %s", rv->id, cfg->endpoint);
    }
    if (cfg->grpc_present && otlp_grpc_start(st, eb) != MT_OK) {
        recv_http_stop(rv, st->srv, st->cnt, MT_SIG_COUNT);
        return MT_ERR;
    }
    return MT_OK;
}

static void otlp_stop(receiver_t *rv)
{
    otlp_state_t *st = rv->state;
    if (st) {
        otlp_grpc_stop(st); /* GOAWAY, the calls in flight finish */
        recv_http_stop(rv, st->srv, st->cnt, MT_SIG_COUNT);
    }
}

const receiver_ops_t receiver_otlp_ops = {
    .type = "otlp",
    .fields = otlp_fields,
    .nfields = MT_ARRAY_LEN(otlp_fields),
    .cfg_size = sizeof(otlp_rcfg_t),
    .signals = SIG_ALL,
    .help = "OTLP receiver: HTTP (protobuf and JSON) and gRPC; gzip, zstd",
    .validate = otlp_validate,
    .start = otlp_start,
    .stop = otlp_stop,
};
