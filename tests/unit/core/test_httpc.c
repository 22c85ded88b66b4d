/*
 * test_httpc.c - tests for collector/core/httpc.c, the one set of libcurl callbacks: the body
 * kept under its cap, Retry-After read into seconds and kept raw, and the caller's header hook
 * (the remote-write exporter's X-Prometheus-Remote-Write-* check) seeing every line.
 */
#include "unit.h"

#include <string.h>

#include "httpc.h"
#include "mt.h"

static void count_rw_headers(httpc_resp_t *r, const char *line, size_t len)
{
    if (len > 26 && strncmp(line, "X-Prometheus-Remote-Write-", 26) == 0) {
        ++*(int *)r->user;
    }
}

static size_t feed(httpc_resp_t *r, const char *line)
{
    return httpc_on_header((char *)line, 1, strlen(line), r);
}

UNIT_TEST(header_hook_and_raw_retry_after)
{
    int seen = 0;
    httpc_resp_t r = {.max = 8, .on_header = count_rw_headers, .user = &seen};
    CHECK(feed(&r, "HTTP/1.1 429 Too Many Requests\r\n") == 32);
    CHECK(feed(&r, "Retry-After:  1.5\r\n") == 19);
    CHECK(feed(&r, "X-Prometheus-Remote-Write-Samples-Written: 3\r\n") == 46);
    CHECK(seen == 1);
    CHECK(strncmp(r.retry_after, "1.5", 3) == 0); /* raw: the notifiers read fractions */
    CHECK(r.retry_after_s == 0);                  /* not whole seconds for the exporters */
    feed(&r, "retry-after: 120\r\n");
    CHECK(r.retry_after_s == 120);
    CHECK(strncmp(r.retry_after, "120", 3) == 0);
    httpc_resp_reset(&r);
    CHECK(r.retry_after[0] == 0 && r.retry_after_s == 0 && r.on_header == count_rw_headers);
    httpc_resp_free(&r);
}

UNIT_TEST(body_kept_under_cap)
{
    httpc_resp_t r = {.max = 5};
    CHECK_STR(httpc_resp_text(&r), "");
    CHECK(httpc_on_body("abc", 1, 3, &r) == 3);
    CHECK(httpc_on_body("defgh", 1, 5, &r) == 5);
    CHECK_STR(httpc_resp_text(&r), "abcde");
    CHECK(r.truncated == 1);
    httpc_resp_t none = {.max = 0}; /* nothing kept, nothing allocated */
    CHECK(httpc_on_body("abc", 1, 3, &none) == 3);
    CHECK(none.body == NULL);
    httpc_resp_free(&r);
}

UNIT_TEST(push_options_cap_the_connect_timeout)
{
    tls_client_cfg_t tls = {.insecure_skip_verify = 1, .ca_file = "/ca.pem"};
    httpc_opts_t o = httpc_opts_push(30000, &tls, "https://x/");
    CHECK(o.timeout_ms == 30000 && o.connect_timeout_ms == 10000 && o.keepalive == 1);
    CHECK(o.tls == &tls && strcmp(o.url, "https://x/") == 0);
    o = httpc_opts_push(2500, NULL, NULL);
    CHECK(o.connect_timeout_ms == 2500 && o.tls == NULL);
}

UNIT_TEST(status_reasons)
{
    CHECK_STR(httpc_status_reason(400, "x"), "http_400");
    CHECK_STR(httpc_status_reason(413, "x"), "http_413");
    CHECK_STR(httpc_status_reason(418, "http_4xx"), "http_4xx");
}

UNIT_TEST(worker_keeps_responses_under_its_cap)
{
    httpc_worker_t *w = httpc_worker_create(4);
    CHECK(w != NULL && w->curl != NULL && w->resp.max == 4);
    CHECK(httpc_on_body("abcdef", 1, 6, &w->resp) == 6);
    CHECK_STR(httpc_resp_text(&w->resp), "abcd");
    CHECK(w->resp.truncated);
    httpc_worker_destroy(w);
    httpc_worker_destroy(NULL);
}

UNIT_TEST(headers_append_common_then_configured)
{
    char *keys[] = {"Authorization", "x-scope-orgid"};
    char *vals[] = {"Bearer t", "acme"};
    int tenant = 0;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: a/b");
    h = httpc_headers_append(h, keys, vals, 1, &tenant);
    CHECK(tenant == 0);
    h = httpc_headers_append(h, keys + 1, vals + 1, 1, &tenant);
    CHECK(tenant == 1);
    const char *want[] = {"Content-Type: a/b",       "User-Agent: meltp/" MELTP_VERSION, "Expect:",
                          "Authorization: Bearer t", "User-Agent: meltp/" MELTP_VERSION, "Expect:",
                          "x-scope-orgid: acme"};
    size_t i = 0;
    for (struct curl_slist *p = h; p; p = p->next, i++) {
        REQUIRE(i < MT_ARRAY_LEN(want));
        CHECK_STR(p->data, want[i]);
    }
    CHECK(i == MT_ARRAY_LEN(want));
    curl_slist_free_all(h);
}
