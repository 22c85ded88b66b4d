/*
 * otlp_grpc.c - the `otlp` exporter: OTLP over gRPC, as the OpenTelemetry Collector's exporter
 * of that name. HTTP/2 is libcurl's (the one HTTP client, core/httpc.c): h2c with prior
 * knowledge when tls.insecure is true, else TLS with ALPN h2. Each queue worker owns one easy
 * handle, so one HTTP/2 connection, and sends its requests as successive streams on it (see
 * docs/ARCHITECTURE.md, "The otlp (gRPC) exporter", for why not one multiplexed connection).
 * The queued OTLP protobuf bytes are sent as they are behind the 5-byte gRPC prefix (compressed
 * when `compression` says so); grpc-status and friends come from the trailers, which curl hands
 * to the header callback. UNAVAILABLE, RESOURCE_EXHAUSTED (after RetryInfo's delay),
 * DEADLINE_EXCEEDED, ABORTED and transport errors are retried by the queue; every other status
 * is permanent and its items are dropped with reason grpc_<status name>.
 */
#include "auth.h"
#include "component.h"
#include "codec.h"
#include "grpc.h"
#include "httpc.h"
#include "otlp.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* CFG_T_ENUM values, in the order of the "gzip|zstd|none" list below */
typedef enum { OG_COMP_GZIP = 0, OG_COMP_ZSTD, OG_COMP_NONE } otlp_grpc_compression_t;

/* Largest response message read: gRPC's default receive limit. An Export response is a few
 * bytes; a bigger one is not an OTLP server's. */
#define OG_MAX_RESPONSE (4u << 20)
/* Bytes kept of grpc-message and grpc-status-details-bin (the latter only for RetryInfo). */
#define OG_MSG_MAX      300
#define OG_DETAILS_MAX  1024
#define OG_TENANT_LINE  (sizeof("x-scope-orgid: ") + MT_TENANT_MAX)

typedef struct otlp_grpc_cfg {
    exporter_common_t common;
    char *endpoint;
    otlp_grpc_compression_t compression; /* "gzip|zstd|none" */
    cfg_strmap_t headers;
    int tls_insecure;     /* tls.insecure: h2c */
    tls_client_cfg_t tls; /* the other tls.* keys (core/tls.h) */
    char *auth;           /* resolved by the service into exporter_t.auth */
} otlp_grpc_cfg_t;

static const cfg_field_t otlp_grpc_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(otlp_grpc_cfg_t, endpoint), NULL,
     "host:port of the OTLP/gRPC server (an https:// prefix forces TLS, http:// forces h2c)"},
    {"compression", CFG_T_ENUM, "gzip", 0, offsetof(otlp_grpc_cfg_t, compression), "gzip|zstd|none",
     "message compression (grpc-encoding)"},
    {"headers", CFG_T_STRMAP, NULL, 0, offsetof(otlp_grpc_cfg_t, headers), NULL,
     "extra request metadata, e.g. X-Scope-OrgID (pins the tenant)"},
    {"auth.authenticator", CFG_T_STRING, "", 0, offsetof(otlp_grpc_cfg_t, auth), NULL,
     "id of a bearertokenauth (token) or basicauth (client_auth) extension: every request "
     "carries its authorization metadata"},
    {"tls.insecure", CFG_T_BOOL, "false", 0, offsetof(otlp_grpc_cfg_t, tls_insecure), NULL,
     "true: plain-text HTTP/2 (h2c, prior knowledge); false: TLS"},
    TLS_CLIENT_FIELDS(otlp_grpc_cfg_t, tls),
};

/* gRPC method paths of the OTLP services (opentelemetry-proto), by mt_signal_t. */
static const char *const og_method[MT_SIG_COUNT] = {
    [MT_SIG_TRACES] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    [MT_SIG_METRICS] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    [MT_SIG_LOGS] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    [MT_SIG_PROFILES] =
        "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
};

/* Drop reasons, "grpc_<name>" for every status code. */
static const char *const og_reason[] = {
#define OG_REASON_(e, v, s) [v] = "grpc_" s,
    GRPC_STATUSES(OG_REASON_)
#undef OG_REASON_
};

static const char *og_status_reason(int code)
{
    return code >= 0 && (size_t)code < MT_ARRAY_LEN(og_reason) ? og_reason[code] : "grpc_unknown";
}

/* The statuses the issue (and the Collector's exporter) retries; RESOURCE_EXHAUSTED waits at
 * least RetryInfo's delay. CANCELLED, OUT_OF_RANGE and DATA_LOSS are permanent here. */
static int og_retryable(int code)
{
    return code == GRPC_UNAVAILABLE || code == GRPC_RESOURCE_EXHAUSTED ||
           code == GRPC_DEADLINE_EXCEEDED || code == GRPC_ABORTED;
}

/* Splits endpoint into the scheme it forces (-1 none, 0 http, 1 https) and host:port.
 * Returns NULL when it is fine, else what is wrong. */
static const char *og_endpoint_parse(const char *ep, int *tls, const char **hostport)
{
    *tls = -1;
    if (strncmp(ep, "https://", 8) == 0) {
        *tls = 1;
        ep += 8;
    } else if (strncmp(ep, "http://", 7) == 0) {
        *tls = 0;
        ep += 7;
    }
    *hostport = ep;
    const char *colon;
    if (*ep == '[') {
        const char *rb = strchr(ep, ']');
        if (!rb || rb == ep + 1 || rb[1] != ':') {
            return "an IPv6 address is written [addr]:port";
        }
        colon = rb + 1;
    } else {
        colon = strchr(ep, ':');
        if (!colon || colon == ep) {
            return "not host:port";
        }
    }
    if (ep[strcspn(ep, "/?#@ ")]) {
        return "not host:port (no path, user or blanks)";
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != 0 || port < 1 || port > 65535) {
        return "the port is not a number in 1..65535";
    }
    return NULL;
}

static void otlp_grpc_validate(cfg_ctx_t *c, const void *cfgp, const char *path,
                               const cfg_node_t *node)
{
    const otlp_grpc_cfg_t *cfg = cfgp;
    int tls;
    const char *hp;
    const char *why = cfg->endpoint ? og_endpoint_parse(cfg->endpoint, &tls, &hp) : NULL;
    if (why) {
        cfg_error_key(c, node, path, "endpoint", "\"%s\": %s", cfg->endpoint, why);
    }
    tls_client_cfg_check(c, node, path, &cfg->tls);
}

typedef struct ogstate {
    char *url[MT_SIG_COUNT];
    int tls;                 /* TLS (ALPN h2) rather than h2c */
    int h2c_reuse_bug;       /* libcurl < 8.0.0: see og_perform */
    int static_tenant;       /* headers pin X-Scope-OrgID: it wins over the request's */
    struct curl_slist *hdrs; /* the request metadata every worker copies */
} ogstate_t;

/* One worker: its easy handle (one HTTP/2 connection), its own copy of the metadata with a
 * tenant node it links at the end per request (no allocation per request for the tenant),
 * the request body being read by curl and what the response said. */
typedef struct ogworker {
    httpc_worker_t *hw;
    int h2c_connected; /* the handle's connection carried a clean h2c exchange (og_perform) */
    int h2c_stale;     /* drop the handle and its connections before the next attempt */
    struct curl_slist *hdrs, *hdrs_last;
    struct curl_slist tenant_node, auth_node;
    char tenant_line[OG_TENANT_LINE];
    char auth_line[4096]; /* authorization metadata, wiped after each request */
    /* request body: prefix then message */
    uint8_t prefix[GRPC_PREFIX_LEN];
    const uint8_t *msg;
    size_t msg_len, sent;
    /* response */
    int status; /* grpc-status, -1 until one arrives */
    int resp_codec;
    char message[OG_MSG_MAX];
    char details[OG_DETAILS_MAX];
} ogworker_t;

static int otlp_grpc_create(exporter_t *ex, mt_errbuf_t *eb)
{
    otlp_grpc_cfg_t *cfg = ex->cfg;
    tls_client_warn(&cfg->tls, ex->id);
    ogstate_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    int tls;
    const char *hp;
    if (og_endpoint_parse(cfg->endpoint, &tls, &hp)) {
        free(st);
        mt_failf(eb, "endpoint \"%s\" is not host:port", cfg->endpoint);
        return MT_EINVAL;
    }
    st->tls = tls >= 0 ? tls : !cfg->tls_insecure;
    st->h2c_reuse_bug = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (asprintf(&st->url[s], "%s://%s%s", st->tls ? "https" : "http", hp, og_method[s]) < 0) {
            st->url[s] = NULL;
        }
    }
    char timeout[32], line[64];
    grpc_timeout_format(cfg->common.timeout, timeout, sizeof(timeout));
    snprintf(line, sizeof(line), "grpc-timeout: %s", timeout);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/grpc");
    h = curl_slist_append(h, "TE: trailers");
    h = curl_slist_append(h, "Accept:"); /* curl's default Accept means nothing to gRPC */
    h = curl_slist_append(h, cfg->compression == OG_COMP_GZIP   ? "grpc-encoding: gzip"
                             : cfg->compression == OG_COMP_ZSTD ? "grpc-encoding: zstd"
                                                                : "grpc-encoding: identity");
    h = curl_slist_append(h, "grpc-accept-encoding: identity,gzip,zstd");
    if (cfg->common.timeout > 0) {
        h = curl_slist_append(h, line);
    }
    st->hdrs = httpc_headers_append(h, cfg->headers.keys, cfg->headers.vals, cfg->headers.n,
                                    &st->static_tenant);
    ex->state = st;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (!st->url[s]) {
            mt_failf(eb, "out of memory");
            return MT_ENOMEM;
        }
    }
    return st->hdrs ? MT_OK : MT_ENOMEM;
}

static void otlp_grpc_destroy(exporter_t *ex)
{
    ogstate_t *st = ex->state;
    if (!st) {
        return;
    }
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        free(st->url[s]);
    }
    curl_slist_free_all(st->hdrs);
    free(st);
    ex->state = NULL;
}

/* Metadata that matters to the exporter: grpc-status, grpc-message, grpc-status-details-bin
 * (in the trailers, or in the headers of a trailers-only response) and grpc-encoding. */
static void og_on_header(httpc_resp_t *r, const char *line, size_t len)
{
    ogworker_t *w = r->user;
    const char *colon = memchr(line, ':', len);
    if (!colon) {
        return;
    }
    size_t klen = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    size_t vlen = (size_t)(end - v);
    char *dst = NULL;
    size_t cap = 0;
    if (klen == 11 && strncasecmp(line, "grpc-status", 11) == 0) {
        char num[8];
        if (vlen == 0 || vlen >= sizeof(num)) {
            w->status = GRPC_UNKNOWN;
            return;
        }
        memcpy(num, v, vlen);
        num[vlen] = 0;
        char *e;
        long code = strtol(num, &e, 10);
        w->status = *e == 0 && code >= 0 && code <= GRPC_UNAUTHENTICATED ? (int)code : GRPC_UNKNOWN;
        return;
    } else if (klen == 12 && strncasecmp(line, "grpc-message", 12) == 0) {
        dst = w->message;
        cap = sizeof(w->message);
    } else if (klen == 23 && strncasecmp(line, "grpc-status-details-bin", 23) == 0) {
        dst = w->details;
        cap = sizeof(w->details);
    } else if (klen == 13 && strncasecmp(line, "grpc-encoding", 13) == 0) {
        char name[16];
        snprintf(name, sizeof(name), "%.*s", (int)(vlen < 15 ? vlen : 15), v);
        w->resp_codec = codec_from_name(name);
        return;
    } else {
        return;
    }
    if (vlen >= cap) {
        vlen = cap - 1;
    }
    memcpy(dst, v, vlen);
    dst[vlen] = 0;
    if (dst == w->message) {
        grpc_message_decode(w->message);
    }
}

/* CURLOPT_READFUNCTION: the 5-byte prefix, then the message, without copying the message. */
static size_t og_read(char *buf, size_t sz, size_t n, void *ud)
{
    ogworker_t *w = ud;
    size_t room = sz * n, done = 0;
    while (room > 0 && w->sent < GRPC_PREFIX_LEN + w->msg_len) {
        const uint8_t *src;
        size_t avail;
        if (w->sent < GRPC_PREFIX_LEN) {
            src = w->prefix + w->sent;
            avail = GRPC_PREFIX_LEN - w->sent;
        } else {
            src = w->msg + (w->sent - GRPC_PREFIX_LEN);
            avail = w->msg_len - (w->sent - GRPC_PREFIX_LEN);
        }
        size_t take = avail < room ? avail : room;
        memcpy(buf + done, src, take);
        done += take;
        room -= take;
        w->sent += take;
    }
    return done;
}

/* CURLOPT_SEEKFUNCTION: curl rewinds the body when it sends it again on a fresh connection
 * (the reused one had died). */
static int og_seek(void *ud, curl_off_t off, int origin)
{
    ogworker_t *w = ud;
    if (origin != SEEK_SET || off < 0 || (size_t)off > GRPC_PREFIX_LEN + w->msg_len) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    w->sent = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static void *otlp_grpc_worker_init(exporter_t *ex)
{
    ogstate_t *st = ex->state;
    ogworker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->hw = httpc_worker_create(OG_MAX_RESPONSE);
    for (struct curl_slist *h = st->hdrs; h; h = h->next) {
        struct curl_slist *nh = curl_slist_append(w->hdrs, h->data);
        if (!nh) {
            /* all or nothing: send() fails its requests (retryable) without metadata */
            curl_slist_free_all(w->hdrs);
            w->hdrs = NULL;
            break;
        }
        w->hdrs = nh;
    }
    for (w->hdrs_last = w->hdrs; w->hdrs_last && w->hdrs_last->next;) {
        w->hdrs_last = w->hdrs_last->next;
    }
    w->tenant_node.data = w->tenant_line;
    w->auth_node.data = w->auth_line;
    if (w->hw) {
        w->hw->resp.on_header = og_on_header;
        w->hw->resp.user = w;
    }
    return w;
}

static void otlp_grpc_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    ogworker_t *w = ws;
    if (!w) {
        return;
    }
    if (w->hdrs_last) {
        w->hdrs_last->next = NULL; /* the tenant node is the worker's, not curl's */
    }
    curl_slist_free_all(w->hdrs);
    httpc_worker_destroy(w->hw);
    free(w);
}

/* Reads the response message (prefix + ExportResponse, maybe compressed) for partial_success. */
static int64_t og_partial(ogworker_t *w, mt_signal_t s, char *msg, size_t msglen)
{
    const uint8_t *p = (const uint8_t *)w->hw->resp.body;
    size_t n = w->hw->resp.len;
    int compressed = 0;
    uint32_t mlen = 0;
    msg[0] = 0;
    if (grpc_prefix_get(p, n, &compressed, &mlen) != GRPC_PREFIX_LEN ||
        mlen > n - GRPC_PREFIX_LEN || mlen == 0) {
        return 0;
    }
    p += GRPC_PREFIX_LEN;
    if (!compressed) {
        return otlp_partial_rejected(s, (const char *)p, mlen, msg, msglen);
    }
    if (w->resp_codec != CODEC_GZIP && w->resp_codec != CODEC_ZSTD) {
        return 0;
    }
    arena_t *a = arena_create(64 * 1024, OG_MAX_RESPONSE * 2);
    uint8_t *out = NULL;
    size_t olen = 0;
    mt_errbuf_t eb = {0};
    int64_t rej = 0;
    if (a &&
        codec_decompress(w->resp_codec, p, mlen, OG_MAX_RESPONSE, a, &out, &olen, &eb) == MT_OK) {
        rej = otlp_partial_rejected(s, (const char *)out, olen, msg, msglen);
    }
    arena_destroy(a);
    return rej;
}

/* Runs the request: sets every option on the worker's handle (it may be a new one) and performs
 * it. h2c has a libcurl workaround: curl before 8.0 breaks a connection made with
 * CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE when a later request reuses it (it stacks a second HTTP/2
 * layer on it: "Error in the HTTP2 framing layer" from then on, curl#10634, fixed in 8.0.0;
 * Debian 12 has 7.88.1). So once a worker's connection has carried a clean HTTP/2 exchange,
 * its next requests ask for plain CURL_HTTP_VERSION_2_0, which reuses that connection as it
 * is; after anything else (a transport error, a timeout, an HTTP/1 answer) the handle is
 * dropped with its connections and the next attempt starts on a new one with prior knowledge,
 * so no connection is ever asked for prior knowledge twice. If a CURL_HTTP_VERSION_2_0 request
 * had to open a new connection (the server had closed the old one), that connection spoke
 * HTTP/1.1 + Upgrade, which a gRPC server does not read: the request is made again at once. */
static CURLcode og_perform(const ogstate_t *st, const otlp_grpc_cfg_t *cfg, ogworker_t *w,
                           const char *url)
{
    CURLcode cr = CURLE_OK;
    int h2c_workaround = !st->tls && st->h2c_reuse_bug;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (w->h2c_stale || !w->hw->curl) { /* (or an earlier curl_easy_init failed) */
            curl_easy_cleanup(w->hw->curl);
            w->hw->curl = curl_easy_init();
            w->h2c_stale = w->h2c_connected = 0;
        }
        CURL *c = w->hw->curl;
        if (!c) {
            return CURLE_OUT_OF_MEMORY;
        }
        long want = st->tls            ? (long)CURL_HTTP_VERSION_2TLS
                    : w->h2c_connected ? (long)CURL_HTTP_VERSION_2_0
                                       : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
        w->sent = 0;
        w->status = -1;
        w->resp_codec = CODEC_NONE;
        w->message[0] = w->details[0] = 0;
        httpc_resp_reset(&w->hw->resp);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, want);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, og_read);
        curl_easy_setopt(c, CURLOPT_READDATA, w);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, og_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, w);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(GRPC_PREFIX_LEN + w->msg_len));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->hdrs);
        httpc_opts_t o = httpc_opts_push((long)cfg->common.timeout, &cfg->tls, url);
        httpc_setup(c, &w->hw->resp, &o);
        cr = curl_easy_perform(c);
        if (!h2c_workaround) {
            break;
        }
        long version = 0, nconn = 0;
        curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nconn);
        int clean = cr == CURLE_OK && version == CURL_HTTP_VERSION_2_0;
        w->h2c_connected = clean;
        w->h2c_stale = !clean; /* dropped before the next attempt, after send() read its info */
        if (clean || want != CURL_HTTP_VERSION_2_0 || nconn == 0) {
            break;
        }
    }
    return cr;
}

static int otlp_grpc_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                          uint32_t items, send_result_t *res)
{
    (void)items;
    otlp_grpc_cfg_t *cfg = ex->cfg;
    ogstate_t *st = ex->state;
    ogworker_t *w = ws;
    if (!w || !w->hw || !w->hdrs) {
        snprintf(res->msg, sizeof(res->msg), "no HTTP/2 client (out of memory)");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    uint8_t *owned = NULL;
    size_t blen = len;
    if (cfg->compression != OG_COMP_NONE) {
        if (codec_compress(cfg->compression == OG_COMP_GZIP ? CODEC_GZIP : CODEC_ZSTD, data, len, 0,
                           &owned, &blen) != MT_OK) {
            snprintf(res->msg, sizeof(res->msg), "compression failed");
            res->reason = "out_of_memory";
            return MT_ERETRY;
        }
    }
    if (blen > UINT32_MAX) {
        free(owned);
        snprintf(res->msg, sizeof(res->msg), "message of %zu bytes is over gRPC's 4 GiB", blen);
        res->reason = "message_too_large";
        return MT_EPERM;
    }
    grpc_prefix_put(w->prefix, owned != NULL, (uint32_t)blen);
    w->msg = owned ? owned : data;
    w->msg_len = blen;

    /* a gateway forwards the client's tenant unless the config pins one */
    struct curl_slist *tail = w->hdrs_last;
    tail->next = w->tenant_node.next = w->auth_node.next = NULL;
    if (res->tenant && *res->tenant && !st->static_tenant) {
        snprintf(w->tenant_line, sizeof(w->tenant_line), "x-scope-orgid: %s", res->tenant);
        tail = tail->next = &w->tenant_node;
    }
    int with_auth =
        ex->auth && auth_client_header(ex->auth, w->auth_line, sizeof(w->auth_line)) == MT_OK;
    if (with_auth) {
        tail->next = &w->auth_node;
    }
    const char *url = st->url[s];
    CURLcode cr = og_perform(st, cfg, w, url);
    w->hdrs_last->next = NULL;
    if (with_auth) {
        OPENSSL_cleanse(w->auth_line, sizeof(w->auth_line));
    }
    free(owned);
    w->msg = NULL;
    if (cr != CURLE_OK && w->status < 0) {
        /* connection refused or lost, TLS failure, timeout: the queue tries again */
        snprintf(res->msg, sizeof(res->msg), "%s: %s", url, curl_easy_strerror(cr));
        res->reason = cr == CURLE_OPERATION_TIMEDOUT ? "grpc_deadline_exceeded" : "transport_error";
        return MT_ERETRY;
    }
    long http = 0;
    curl_easy_getinfo(w->hw->curl, CURLINFO_RESPONSE_CODE, &http);
    int code = w->status;
    if (code < 0) {
        /* no grpc-status: a proxy's answer (HTTP status mapped per PROTOCOL-HTTP2.md), or a
         * server that ended the stream without trailers */
        code = http == 200 ? GRPC_INTERNAL : (int)grpc_status_from_http((int)http);
        snprintf(w->message, sizeof(w->message),
                 http == 200 ? "no grpc-status in the response" : "HTTP %ld without grpc-status",
                 http);
    }
    if (code == GRPC_OK) {
        if (w->hw->resp.truncated) {
            snprintf(res->msg, sizeof(res->msg), "%s: response larger than %u bytes", url,
                     OG_MAX_RESPONSE);
            res->reason = "response_too_large";
            return MT_EPERM;
        }
        char pmsg[400];
        res->rejected = og_partial(w, s, pmsg, sizeof(pmsg));
        if (res->rejected > 0) {
            snprintf(res->msg, sizeof(res->msg), "%s", pmsg);
        }
        return MT_OK;
    }
    snprintf(res->msg, sizeof(res->msg), "%s: grpc-status %d (%s): %s", url, code,
             grpc_status_name(code), w->message);
    res->reason = og_status_reason(code);
    if (!og_retryable(code)) {
        return MT_EPERM;
    }
    int64_t delay = 0;
    if (w->details[0] &&
        grpc_status_details_retry_delay(w->details, strlen(w->details), &delay) == 0 && delay > 0) {
        res->retry_after_ms = delay > 3600000 ? 3600000 : (int)delay;
    }
    return MT_ERETRY;
}

const exporter_ops_t exporter_otlp_ops = {
    .type = "otlp",
    .fields = otlp_grpc_fields,
    .nfields = MT_ARRAY_LEN(otlp_grpc_fields),
    .cfg_size = sizeof(otlp_grpc_cfg_t),
    .signals = SIG_ALL,
    .help = "OTLP/gRPC exporter (HTTP/2 h2c or TLS; gzip, zstd)",
    .validate = otlp_grpc_validate,
    .create = otlp_grpc_create,
    .worker_init = otlp_grpc_worker_init,
    .worker_fini = otlp_grpc_worker_fini,
    .send = otlp_grpc_send,
    .destroy = otlp_grpc_destroy,
};
