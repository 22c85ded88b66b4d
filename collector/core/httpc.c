/*
 * httpc.c - see httpc.h.
 */
#include "httpc.h"
#include "auth.h"

#include <openssl/crypto.h>
#include "mt.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void httpc_resp_reset(httpc_resp_t *r)
{
    r->len = 0;
    r->truncated = 0;
    r->retry_after_s = 0;
    r->retry_after[0] = 0;
    if (r->body) {
        r->body[0] = 0;
    }
}

void httpc_resp_free(httpc_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    if (r->tls_scratch) {
        tls_curl_scratch_fini(r->tls_scratch);
        free(r->tls_scratch);
        r->tls_scratch = NULL;
    }
}

size_t httpc_on_body(char *p, size_t sz, size_t n, void *ud)
{
    httpc_resp_t *r = ud;
    size_t len = sz * n, take = len;
    if (r->len + take > r->max) {
        take = r->max > r->len ? r->max - r->len : 0;
        r->truncated = 1;
    }
    if (take && r->len + take + 1 > r->cap) {
        size_t nc = (r->len + take + 1) * 2;
        char *np = realloc(r->body, nc);
        if (!np) {
            return 0; /* curl reports a write error */
        }
        r->body = np;
        r->cap = nc;
    }
    if (take) {
        memcpy(r->body + r->len, p, take);
        r->len += take;
        r->body[r->len] = 0;
    }
    return len;
}

int httpc_retry_after(const char *value)
{
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    char *end;
    long secs = strtol(value, &end, 10);
    if (end != value && (*end == 0 || *end == '\r' || *end == '\n' || *end == ' ')) {
        return (int)(secs > 3600 ? 3600 : secs < 0 ? 0 : secs);
    }
    time_t t = curl_getdate(value, NULL);
    if (t < 0) {
        return -1;
    }
    time_t now = time(NULL);
    return t > now ? (int)(t - now > 3600 ? 3600 : t - now) : 0;
}

size_t httpc_on_header(char *p, size_t sz, size_t n, void *ud)
{
    httpc_resp_t *r = ud;
    size_t len = sz * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        const char *v = p + 12, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t')) {
            v++;
        }
        size_t vl = (size_t)(end - v);
        if (vl > sizeof(r->retry_after) - 1) {
            vl = sizeof(r->retry_after) - 1;
        }
        memcpy(r->retry_after, v, vl);
        r->retry_after[vl] = 0;
        int s = httpc_retry_after(r->retry_after);
        if (s > 0) {
            r->retry_after_s = s;
        }
    }
    if (r->on_header) {
        r->on_header(r, p, len);
    }
    return len;
}

void httpc_setup(CURL *c, httpc_resp_t *r, const httpc_opts_t *o)
{
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, httpc_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, httpc_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->connect_timeout_ms > 0) {
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    }
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (o->keepalive) {
        curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    }
    if (o->tls) {
        if (o->tls->server_name_override && !r->tls_scratch) {
            r->tls_scratch = calloc(1, sizeof(*r->tls_scratch));
        }
        if (tls_curl_apply(c, o->tls, o->url, r->tls_scratch) != MT_OK) {
            MT_LOG_EVERY(60, MT_LOG_WARN,
                         "tls.server_name_override: cannot rewrite the endpoint URL; "
                         "connecting by its own name");
        }
    }
}

httpc_opts_t httpc_opts_push(long timeout_ms, const tls_client_cfg_t *tls, const char *url)
{
    return (httpc_opts_t){.timeout_ms = timeout_ms,
                          .connect_timeout_ms = timeout_ms < 10000 ? timeout_ms : 10000,
                          .keepalive = 1,
                          .tls = tls,
                          .url = url};
}

const char *httpc_status_reason(long code, const char *other)
{
    switch (code) {
    case 400:
        return "http_400";
    case 401:
        return "http_401";
    case 403:
        return "http_403";
    case 404:
        return "http_404";
    case 413:
        return "http_413";
    default:
        return other;
    }
}

httpc_worker_t *httpc_worker_create(size_t max_response)
{
    httpc_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->curl = curl_easy_init();
    w->resp.max = max_response;
    return w;
}

void httpc_worker_destroy(httpc_worker_t *w)
{
    if (w) {
        curl_easy_cleanup(w->curl);
        httpc_resp_free(&w->resp);
        free(w);
    }
}

struct curl_slist *httpc_headers_append(struct curl_slist *h, char *const *keys, char *const *vals,
                                        size_t n, int *has_tenant)
{
    h = curl_slist_append(h, "User-Agent: meltp/" MELTP_VERSION);
    h = curl_slist_append(h, "Expect:");
    for (size_t i = 0; i < n; i++) {
        char line[1024];
        snprintf(line, sizeof(line), "%s: %s", keys[i], vals[i]);
        h = curl_slist_append(h, line);
        if (has_tenant && strcasecmp(keys[i], "X-Scope-OrgID") == 0) {
            *has_tenant = 1;
        }
    }
    return h;
}

struct curl_slist *httpc_request_headers(const struct curl_slist *base, const char *tenant,
                                         const struct extension *auth)
{
    if ((!tenant || !*tenant) && !auth) {
        return NULL;
    }
    struct curl_slist *h = NULL;
    for (const struct curl_slist *b = base; b; b = b->next) {
        h = curl_slist_append(h, b->data);
    }
    if (tenant && *tenant) {
        char line[128];
        snprintf(line, sizeof(line), "X-Scope-OrgID: %s", tenant);
        h = curl_slist_append(h, line);
    }
    char line[4096];
    if (auth && auth_client_header(auth, line, sizeof(line)) == MT_OK) {
        h = curl_slist_append(h, line);
    }
    OPENSSL_cleanse(line, sizeof(line));
    return h;
}
