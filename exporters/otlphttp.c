/*
 * otlphttp.c - the `otlphttp` exporter: OTLP/HTTP protobuf (or JSON) with libcurl. One easy
 * handle per queue worker keeps its connection alive across requests. Retryable statuses
 * (429, 502, 503, 504) and transport errors return MT_ERETRY with the server's Retry-After;
 * other statuses are permanent and are logged with the server's google.rpc.Status message.
 */
#include "component.h"
#include "otlp.h"
#include "otlp_json.h"
#include "codec.h"
#include "httpc.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

/* CFG_T_ENUM values, in the order of their "a|b|c" lists below */
typedef enum { OH_COMP_GZIP = 0, OH_COMP_ZSTD, OH_COMP_NONE } otlphttp_compression_t;
typedef enum { OH_ENC_PROTO = 0, OH_ENC_JSON } otlphttp_encoding_t;

typedef struct otlphttp_cfg {
    exporter_common_t common;
    char *endpoint;
    char *signal_endpoint[MT_SIG_COUNT];
    otlphttp_compression_t compression; /* "gzip|zstd|none" */
    otlphttp_encoding_t encoding;       /* "proto|json" */
    cfg_strmap_t headers;
    int tls_insecure;
    tls_client_cfg_t tls;
    int64_t max_response;
    char *auth; /* resolved by the service into exporter_t.auth */
} otlphttp_cfg_t;

static const cfg_field_t otlphttp_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, 0, offsetof(otlphttp_cfg_t, endpoint), NULL,
     "base URL; /v1/traces, /v1/metrics, /v1/logs are appended"},
    {"traces_endpoint", CFG_T_STRING, NULL, 0,
     offsetof(otlphttp_cfg_t, signal_endpoint[MT_SIG_TRACES]), NULL, "full URL for traces"},
    {"metrics_endpoint", CFG_T_STRING, NULL, 0,
     offsetof(otlphttp_cfg_t, signal_endpoint[MT_SIG_METRICS]), NULL, "full URL for metrics"},
    {"logs_endpoint", CFG_T_STRING, NULL, 0, offsetof(otlphttp_cfg_t, signal_endpoint[MT_SIG_LOGS]),
     NULL, "full URL for logs"},
    {"profiles_endpoint", CFG_T_STRING, NULL, 0,
     offsetof(otlphttp_cfg_t, signal_endpoint[MT_SIG_PROFILES]), NULL, "full URL for profiles"},
    {"compression", CFG_T_ENUM, "gzip", 0, offsetof(otlphttp_cfg_t, compression), "gzip|zstd|none",
     "request body compression"},
    {"encoding", CFG_T_ENUM, "proto", 0, offsetof(otlphttp_cfg_t, encoding), "proto|json",
     "request encoding"},
    {"headers", CFG_T_STRMAP, NULL, 0, offsetof(otlphttp_cfg_t, headers), NULL,
     "extra request headers, e.g. X-Scope-OrgID"},
    {"auth.authenticator", CFG_T_STRING, "", 0, offsetof(otlphttp_cfg_t, auth), NULL,
     "id of a bearertokenauth (token) or basicauth (client_auth) extension: every request "
     "carries its Authorization header"},
    {"tls.insecure", CFG_T_BOOL, "false", 0, offsetof(otlphttp_cfg_t, tls_insecure), NULL,
     "accepted for compatibility (plain http:// URLs never use TLS)"},
    TLS_CLIENT_FIELDS(otlphttp_cfg_t, tls),
    {"max_response_size", CFG_T_BYTES, "4MiB", 0, offsetof(otlphttp_cfg_t, max_response), NULL,
     "largest response body read"},
};

static void otlphttp_validate(cfg_ctx_t *c, const void *cfgp, const char *path,
                              const cfg_node_t *node)
{
    const otlphttp_cfg_t *cfg = cfgp;
    int any = cfg->endpoint != NULL;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        const char *u = cfg->signal_endpoint[s];
        any |= u != NULL;
        if (u) {
            char key[64];
            snprintf(key, sizeof(key), "%s_endpoint", mt_signal_name(s));
            cfg_check_http_url(c, node, path, key, u);
        }
    }
    cfg_check_http_url(c, node, path, "endpoint", cfg->endpoint);
    tls_client_cfg_check(c, node, path, &cfg->tls);
    if (!any) {
        cfg_error_key(c, node, path, "endpoint",
                      "required (or traces_endpoint/metrics_endpoint/logs_endpoint)");
    }
}

typedef struct ohstate {
    int static_tenant; /* headers set X-Scope-OrgID: it wins over the request's */
    char *url[MT_SIG_COUNT];
    struct curl_slist *hdrs[2]; /* [0] proto, [1] json, each with compression and user headers */
} ohstate_t;

typedef httpc_worker_t ohworker_t;

static int otlphttp_create(exporter_t *ex, mt_errbuf_t *eb)
{
    otlphttp_cfg_t *cfg = ex->cfg;
    tls_client_warn(&cfg->tls, ex->id);
    ohstate_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (cfg->signal_endpoint[s]) {
            st->url[s] = strdup(cfg->signal_endpoint[s]);
        } else if (cfg->endpoint) {
            size_t n = strlen(cfg->endpoint);
            int slash = n && cfg->endpoint[n - 1] == '/';
            if (asprintf(&st->url[s], "%s%s", cfg->endpoint, otlp_path(s) + slash) < 0) {
                st->url[s] = NULL;
            }
        }
    }
    const char *ce = cfg->compression == OH_COMP_GZIP   ? "Content-Encoding: gzip"
                     : cfg->compression == OH_COMP_ZSTD ? "Content-Encoding: zstd"
                                                        : NULL;
    for (int j = 0; j < 2; j++) {
        struct curl_slist *h = NULL;
        h = curl_slist_append(h, j ? "Content-Type: application/json"
                                   : "Content-Type: application/x-protobuf");
        if (ce) {
            h = curl_slist_append(h, ce);
        }
        h = httpc_headers_append(h, cfg->headers.keys, cfg->headers.vals, cfg->headers.n,
                                 &st->static_tenant);
        st->hdrs[j] = h;
    }
    ex->state = st;
    return MT_OK;
}

static void otlphttp_destroy(exporter_t *ex)
{
    ohstate_t *st = ex->state;
    if (!st) {
        return;
    }
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        free(st->url[s]);
    }
    curl_slist_free_all(st->hdrs[0]);
    curl_slist_free_all(st->hdrs[1]);
    free(st);
    ex->state = NULL;
}

static void *otlphttp_worker_init(exporter_t *ex)
{
    otlphttp_cfg_t *cfg = ex->cfg;
    return httpc_worker_create((size_t)cfg->max_response);
}

static void otlphttp_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    httpc_worker_destroy(ws);
}

/* Pulls google.rpc.Status.message out of an error body, if it is one. */
static void status_message(const char *body, size_t len, int json, char *out, size_t outlen)
{
    out[0] = 0;
    if (!len) {
        return;
    }
    if (!json) {
        Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, (const uint8_t *)body);
        if (st) {
            snprintf(out, outlen, "%s", st->message ? st->message : "");
            google__rpc__status__free_unpacked(st, NULL);
            if (out[0]) {
                return;
            }
        }
    }
    snprintf(out, outlen, "%.*s", (int)(len > 300 ? 300 : len), body);
}

static int otlphttp_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                         uint32_t items, send_result_t *res)
{
    (void)items;
    otlphttp_cfg_t *cfg = ex->cfg;
    ohstate_t *st = ex->state;
    ohworker_t *w = ws;
    if (!w || !w->curl) {
        snprintf(res->msg, sizeof(res->msg), "no HTTP client (out of memory)");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    if (!st->url[s]) {
        snprintf(res->msg, sizeof(res->msg), "no endpoint for %s", mt_signal_name(s));
        res->reason = "no_endpoint";
        return MT_EPERM;
    }
    const uint8_t *body = data;
    size_t blen = len;
    uint8_t *owned = NULL, *json = NULL;
    if (cfg->encoding == OH_ENC_JSON) {
        arena_t *a = arena_create(len * 4 + 4096, 0);
        ProtobufCMessage *m =
            a ? protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, data)
              : NULL;
        size_t jl = 0;
        json = m ? (uint8_t *)otlp_json_encode(m, &jl) : NULL;
        arena_destroy(a);
        if (!json) {
            snprintf(res->msg, sizeof(res->msg), "cannot encode batch as JSON");
            res->reason = "encode_error";
            return MT_EINVAL;
        }
        body = json;
        blen = jl;
    }
    if (cfg->compression != OH_COMP_NONE) {
        if (codec_compress(cfg->compression == OH_COMP_GZIP ? CODEC_GZIP : CODEC_ZSTD, body, blen,
                           0, &owned, &blen) != MT_OK) {
            free(json);
            snprintf(res->msg, sizeof(res->msg), "compression failed");
            res->reason = "out_of_memory";
            return MT_ERETRY;
        }
        body = owned;
    }
    CURL *c = w->curl;
    httpc_resp_reset(&w->resp);
    curl_easy_setopt(c, CURLOPT_URL, st->url[s]);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    /* a gateway forwards the client's tenant unless the config pins one */
    struct curl_slist *tenant_hdrs = httpc_request_headers(
        st->hdrs[cfg->encoding], st->static_tenant ? NULL : res->tenant, ex->auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, tenant_hdrs ? tenant_hdrs : st->hdrs[cfg->encoding]);
    httpc_opts_t o = httpc_opts_push((long)cfg->common.timeout, &cfg->tls, st->url[s]);
    httpc_setup(c, &w->resp, &o);
    CURLcode cr = curl_easy_perform(c);
    curl_slist_free_all(tenant_hdrs);
    free(owned);
    free(json);
    if (cr != CURLE_OK) {
        snprintf(res->msg, sizeof(res->msg), "%s: %s", st->url[s], curl_easy_strerror(cr));
        res->reason = "transport_error";
        if (cr == CURLE_WRITE_ERROR) {
            res->reason = "response_too_large";
            return MT_EPERM;
        }
        return MT_ERETRY;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    char smsg[400];
    if (code >= 200 && code < 300 && w->resp.truncated) {
        /* a response we cannot read whole cannot be trusted (partial_success): permanent */
        snprintf(res->msg, sizeof(res->msg), "%s: response larger than max_response_size",
                 st->url[s]);
        res->reason = "response_too_large";
        return MT_EPERM;
    }
    if (code >= 200 && code < 300) {
        res->rejected = otlp_partial_rejected(s, w->resp.body, w->resp.len, smsg, sizeof(smsg));
        if (res->rejected > 0) {
            snprintf(res->msg, sizeof(res->msg), "%s", smsg);
        }
        return MT_OK;
    }
    const char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    status_message(w->resp.body, w->resp.len, ct && strstr(ct, "json") != NULL, smsg, sizeof(smsg));
    snprintf(res->msg, sizeof(res->msg), "%s: HTTP %ld: %s", st->url[s], code, smsg);
    res->retry_after_ms = w->resp.retry_after_s * 1000;
    if (code == 429 || code == 502 || code == 503 || code == 504) {
        res->reason = "http_retryable";
        return MT_ERETRY;
    }
    res->reason = httpc_status_reason(code, "http_error");
    return MT_EPERM;
}

const exporter_ops_t exporter_otlphttp_ops = {
    .type = "otlphttp",
    .fields = otlphttp_fields,
    .nfields = MT_ARRAY_LEN(otlphttp_fields),
    .cfg_size = sizeof(otlphttp_cfg_t),
    .signals = SIG_ALL,
    .help = "OTLP/HTTP exporter (protobuf or JSON; gzip, zstd)",
    .validate = otlphttp_validate,
    .create = otlphttp_create,
    .worker_init = otlphttp_worker_init,
    .worker_fini = otlphttp_worker_fini,
    .send = otlphttp_send,
    .destroy = otlphttp_destroy,
};
