/*
 * loki_http.c - Loki's answers (the reason and ignored-entry count of an error message) and
 * the HTTP side: per-worker state, one POST per tenant push, the retry memo and send().
 * Part of the exporters/loki module (loki.c).
 */
#include "component.h"
#include "otlp.h"
#include "codec.h"
#include "httpc.h"
#include "sb.h"
#include "events.h"
#include "promconv.h"
#include "pbwire.h"
#include "loki_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

/* ---- Loki's answers ----------------------------------------------------------------------- */

/* Reason label of a Loki error message (validation reasons as Loki names them). */
const char *loki_reason(const char *msg, size_t len, uint64_t *ignored);
const char *loki_reason(const char *msg, size_t len, uint64_t *ignored)
{
    static const struct {
        const char *needle, *reason;
    } map[] = {
        {"too far behind", "too_far_behind"},
        {"out of order", "out_of_order"},
        {"per stream rate limit", "per_stream_rate_limit"},
        {"rate limit", "rate_limited"},
        {"stream limit", "stream_limit"},
        {"max entry size", "line_too_long"},
        {"line too long", "line_too_long"},
        {"timestamp too old", "greater_than_max_sample_age"},
        {"timestamp too new", "too_far_in_future"},
        {"label names; limit", "max_label_names_per_series"},
        {"label name too long", "label_name_too_long"},
        {"label value too long", "label_value_too_long"},
        {"duplicate label name", "duplicate_label_names"},
        {"at least one label pair", "missing_labels"},
        {"error parsing labels", "invalid_labels"},
        {"structured metadata", "disallowed_structured_metadata"},
        {"exceeds", "line_too_long"},
    };
    char low[2048];
    size_t n = len < sizeof(low) - 1 ? len : sizeof(low) - 1;
    for (size_t i = 0; i < n; i++) {
        low[i] = (char)tolower((unsigned char)msg[i]);
    }
    low[n] = 0;
    /* how many entries Loki says it ignored: ingester "total ignored: N out of M" (one per
     * failing stream) and distributor "N errors like: ..." / one line per validation error */
    uint64_t count = 0;
    for (const char *q = low; (q = strstr(q, "total ignored: ")); q += 15) {
        count += strtoull(q + 15, NULL, 10);
    }
    if (!count) {
        const char *q = strstr(low, " errors like: ");
        if (q) {
            const char *d = q;
            while (d > low && isdigit((unsigned char)d[-1])) {
                d--;
            }
            count = strtoull(d, NULL, 10);
        }
    }
    if (ignored) {
        *ignored = count;
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(map); i++) {
        if (strstr(low, map[i].needle)) {
            return map[i].reason;
        }
    }
    return "http_400";
}

/* ---- HTTP --------------------------------------------------------------------------------- */

typedef struct lk_worker {
    CURL *curl;
    httpc_resp_t resp;
    /* the last batch, so a retry only resends the pushes that did not finish */
    const uint8_t *memo_data;
    size_t memo_len;
    uint64_t memo_sig, memo_done, memo_dropped;
    const char *memo_reason;
    lk_scratch_t sc;
    char *z; /* compressed body buffer */
    size_t z_cap;
} lk_worker_t;

void *loki_worker_init(exporter_t *ex)
{
    loki_cfg_t *cfg = ex->cfg;
    lk_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->curl = curl_easy_init();
    w->resp.max = (size_t)(cfg->max_response > 0 ? cfg->max_response : 65536);
    return w;
}

void loki_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    lk_worker_t *w = ws;
    if (w) {
        curl_easy_cleanup(w->curl);
        loki_scratch_fini(&w->sc);
        free(w->z);
        httpc_resp_free(&w->resp);
        free(w);
    }
}

typedef struct lk_send {
    exporter_t *ex;
    lk_worker_t *w;
    send_result_t *res;
    uint64_t sent, dropped;
    const char *drop_reason;
} lk_send_t;

static int push_http(void *arg, size_t index, const char *tenant, const uint8_t *body, size_t len,
                     uint64_t entries)
{
    lk_send_t *ss = arg;
    exporter_t *ex = ss->ex;
    loki_cfg_t *cfg = ex->cfg;
    loki_state_t *st = ex->state;
    lk_worker_t *w = ss->w;
    send_result_t *res = ss->res;
    uint8_t *z = NULL;
    const uint8_t *out = body;
    size_t zlen = len;
    if (cfg->encoding == LOKI_ENC_PROTOBUF) {
        /* snappy straight into the worker's buffer: no allocation per push */
        size_t need = snappy_max_compressed_length(len);
        if (need > w->z_cap) {
            char *np = realloc(w->z, need);
            if (!np) {
                snprintf(res->msg, sizeof(res->msg), "out of memory compressing the push");
                res->reason = "out_of_memory";
                return MT_ERETRY;
            }
            w->z = np;
            w->z_cap = need;
        }
        zlen = need;
        if (snappy_compress((const char *)body, len, w->z, &zlen) != SNAPPY_OK) {
            snprintf(res->msg, sizeof(res->msg), "snappy compression failed");
            res->reason = "internal";
            return MT_ERETRY;
        }
        out = (const uint8_t *)w->z;
    } else if (cfg->json_compression == LOKI_JSON_GZIP) {
        if (codec_compress(CODEC_GZIP, body, len, 0, &z, &zlen) != MT_OK) {
            snprintf(res->msg, sizeof(res->msg), "compression failed");
            res->reason = "out_of_memory";
            return MT_ERETRY;
        }
        out = z;
    }
    CURL *c = w->curl;
    httpc_resp_reset(&w->resp);
    struct curl_slist *hdrs = httpc_request_headers(st->hdrs, tenant, ex->auth);
    curl_easy_setopt(c, CURLOPT_URL, cfg->endpoint);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)out);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)zlen);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs ? hdrs : st->hdrs);
    httpc_opts_t o = httpc_opts_push((long)cfg->common.timeout, &cfg->tls, cfg->endpoint);
    httpc_setup(c, &w->resp, &o);
    tm_add(st->c_requests, 1);
    CURLcode cr = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    free(z);
    if (cr != CURLE_OK) {
        snprintf(res->msg, sizeof(res->msg), "%s: %s", cfg->endpoint, curl_easy_strerror(cr));
        res->reason = "transport_error";
        return MT_ERETRY;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    const char *body_txt = w->resp.body ? w->resp.body : "";
    if (code >= 200 && code < 300) {
        tm_add(st->c_sent, entries);
        ss->sent += entries;
        w->memo_done |= index < 64 ? 1ull << index : 0;
        return MT_OK;
    }
    snprintf(res->msg, sizeof(res->msg), "%s%s%s: HTTP %ld: %.300s", cfg->endpoint,
             *tenant ? " tenant " : "", tenant, code, body_txt);
    if (code == 429 || code >= 500) {
        res->retry_after_ms = w->resp.retry_after_s * 1000;
        res->reason = code == 429 ? "http_429" : "http_5xx";
        return MT_ERETRY;
    }
    uint64_t n = entries;
    const char *reason;
    if (code == 400) {
        uint64_t ignored = 0;
        reason = loki_reason(body_txt, w->resp.len, &ignored);
        if (ignored && ignored < entries) {
            n = ignored; /* Loki stored the rest */
        }
    } else {
        reason = httpc_status_reason(code, "http_4xx"); /* 400 is read from the body above */
    }
    loki_count_drop(st, reason, n);
    tm_add(st->c_sent, entries - n);
    ss->sent += entries - n;
    ss->dropped += n;
    ss->drop_reason = reason;
    w->memo_dropped += n;
    w->memo_reason = reason;
    w->memo_done |= index < 64 ? 1ull << index : 0;
    mt_log(MT_LOG_ERROR,
           "exporter %s: Loki refused %llu of %llu entries%s%s (%s): HTTP %ld: %.400s", ex->id,
           (unsigned long long)n, (unsigned long long)entries, *tenant ? " for tenant " : "",
           tenant, reason, code, body_txt);
    return MT_OK;
}

static uint64_t batch_sig(const uint8_t *data, size_t len)
{
    uint64_t h = mt_fnv1a(MT_FNV_BASIS, data, len < 256 ? len : 256);
    return mt_fnv1a(h, data + (len > 256 ? len - 256 : 0), len < 256 ? 0 : 256) ^ len;
}

int loki_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
              uint32_t items, send_result_t *res)
{
    lk_worker_t *w = ws;
    if (s != MT_SIG_LOGS || !w || !w->curl) {
        snprintf(res->msg, sizeof(res->msg), "cannot send (no HTTP client)");
        res->reason = "internal";
        return w && w->curl ? MT_EPERM : MT_ERETRY;
    }
    uint64_t sig = batch_sig(data, len);
    int retry = w->memo_data == data && w->memo_len == len && w->memo_sig == sig;
    if (!retry) {
        w->memo_data = data;
        w->memo_len = len;
        w->memo_sig = sig;
        w->memo_done = 0;
        w->memo_dropped = 0;
        w->memo_reason = NULL;
    }
    lk_send_t ss = {.ex = ex, .w = w, .res = res};
    uint64_t dropped = 0;
    size_t npushes = 0;
    int rc = loki_build_with(ex, &w->sc, data, len, res->tenant, mt_wall_ns(), !retry, w->memo_done,
                             push_http, &ss, &dropped, &npushes);
    if (rc == MT_EINVAL) {
        snprintf(res->msg, sizeof(res->msg), "undecodable logs batch");
        res->reason = "decode_error";
        w->memo_data = NULL;
        return MT_EINVAL; /* counted by the queue, which splits a coalesced batch first */
    }
    if (rc == MT_ENOMEM) {
        snprintf(res->msg, sizeof(res->msg), "out of memory building the Loki push");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    if (rc == MT_ERETRY) {
        return MT_ERETRY;
    }
    /* every push settled: delivered, or refused for good. Build-time drops (bad tenants) are
     * re-derived identically on each attempt, counted once. */
    uint64_t lost = w->memo_dropped + dropped;
    const char *reason = w->memo_reason ? w->memo_reason : dropped ? "invalid_tenant" : NULL;
    w->memo_data = NULL;
    if (!lost) {
        return MT_OK;
    }
    if (lost >= items) {
        res->reason = reason ? reason : "http_400";
        return MT_EPERM;
    }
    res->rejected = (int64_t)lost;
    if (!res->msg[0]) {
        snprintf(res->msg, sizeof(res->msg), "%s", reason ? reason : "rejected");
    }
    return MT_OK;
}
