/*
 * httpc.h - small pieces shared by the exporters that talk HTTP with libcurl: collecting a
 * response body under a cap (the head of an oversize body is kept for the log) and reading
 * Retry-After (seconds or an HTTP date, capped at an hour). Every libcurl client in meltp
 * (exporters, SLO notifiers) installs these callbacks rather than writing its own.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <curl/curl.h>
#include <stddef.h>

#include "tls.h"

typedef struct httpc_resp {
    char *body; /* NUL-terminated, malloc'd, reused between requests */
    size_t len, cap;
    size_t max;            /* keep at most this many bytes */
    int truncated;         /* the body was longer than max */
    int retry_after_s;     /* from Retry-After, 0 when absent */
    char retry_after[128]; /* the raw Retry-After value (leading blanks skipped), "" when absent:
                            * for callers with their own policy (the SLO notifiers) */
    /* Optional: called for every header line as curl hands it over (CRLF included), after
     * Retry-After was looked at; `user` is the caller's. */
    void (*on_header)(struct httpc_resp *r, const char *line, size_t len);
    void *user;
    tls_curl_scratch_t *tls_scratch; /* tls.server_name_override's strings; NULL until needed */
} httpc_resp_t;

/* Forgets the previous response (keeps the buffer, the hook and max). */
void httpc_resp_reset(httpc_resp_t *r);
void httpc_resp_free(httpc_resp_t *r);
/* The body kept so far as a string: "" before any byte arrived. Owned by r. */
static inline const char *httpc_resp_text(const httpc_resp_t *r)
{
    return r->body ? r->body : "";
}

/* An exporter worker's connection: one easy handle (reused, so connections stay open) and
 * its response buffer. */
typedef struct httpc_worker {
    CURL *curl;
    httpc_resp_t resp;
} httpc_worker_t;

/* A worker whose responses are kept up to max_response bytes; NULL when out of memory (the
 * handle itself may be NULL when curl could not make one; the caller fails its requests).
 * Owned by the caller: httpc_worker_destroy (accepts NULL). */
httpc_worker_t *httpc_worker_create(size_t max_response);
void httpc_worker_destroy(httpc_worker_t *w);

/* Appends what every exporter request carries after its own Content-* headers: User-Agent
 * meltp/VERSION, an empty Expect: (no 100-continue round trip) and the n configured headers
 * "keys[i]: vals[i]". Returns the list; *has_tenant (when not NULL) is set to 1 if one of
 * them is X-Scope-OrgID. */
struct curl_slist *httpc_headers_append(struct curl_slist *h, char *const *keys, char *const *vals,
                                        size_t n, int *has_tenant);

/* The header list of one request: NULL when `base` serves as it is (no tenant, no
 * authenticator), else a copy of base (free it after the request) plus "X-Scope-OrgID:
 * tenant" when tenant is set and "Authorization: ..." from authenticator `auth` (auth.h;
 * read per request, so a rotated token file is picked up). */
struct extension;
struct curl_slist *httpc_request_headers(const struct curl_slist *base, const char *tenant,
                                         const struct extension *auth);

/* CURLOPT_WRITEFUNCTION / CURLOPT_HEADERFUNCTION callbacks; userdata is an httpc_resp_t. */
size_t httpc_on_body(char *p, size_t sz, size_t n, void *ud);
size_t httpc_on_header(char *p, size_t sz, size_t n, void *ud);

/* What every meltp request sets on an easy handle besides URL, body and headers. */
typedef struct httpc_opts {
    long timeout_ms;             /* whole request; 0: none */
    long connect_timeout_ms;     /* 0: curl's default */
    int keepalive;               /* TCP keep-alive probes on the connection */
    const tls_client_cfg_t *tls; /* the exporter's tls section; NULL: curl's defaults */
    const char *url;             /* the URL set on the handle (for tls.server_name_override) */
} httpc_opts_t;

/* The options of an exporter that pushes batches: the request timeout, a connect timeout of
 * at most 10 s (a dead endpoint fails fast even under a long timeout), keep-alive, and TLS
 * (tls, borrowed, for requests to url). */
httpc_opts_t httpc_opts_push(long timeout_ms, const tls_client_cfg_t *tls, const char *url);

/* Installs httpc_on_body / httpc_on_header with r as their data, and o's options, plus
 * CURLOPT_NOSIGNAL (meltp's threads must not get SIGALRM). Call after CURLOPT_URL: with
 * tls.server_name_override it rewrites the URL (tls_curl_apply). */
void httpc_setup(CURL *c, httpc_resp_t *r, const httpc_opts_t *o);

/* The drop reason label for a refused request: "http_400", "http_401", "http_403", "http_404"
 * or "http_413" for those statuses, else `other` (each exporter names the rest its own way). */
const char *httpc_status_reason(long code, const char *other);

/* Seconds to wait for a Retry-After value ("120" or an HTTP date), 0..3600; -1 if unparsable. */
int httpc_retry_after(const char *value);

#endif
