/*
 * httpc.h - small pieces shared by the exporters that talk HTTP with libcurl: collecting a
 * response body under a cap (the head of an oversize body is kept for the log) and reading
 * Retry-After (seconds or an HTTP date, capped at an hour).
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <stddef.h>

typedef struct httpc_resp {
    char *body;          /* NUL-terminated, malloc'd, reused between requests */
    size_t len, cap;
    size_t max;          /* keep at most this many bytes */
    int truncated;       /* the body was longer than max */
    int retry_after_s;   /* from Retry-After, 0 when absent */
} httpc_resp_t;

/* Forgets the previous response (keeps the buffer). */
void httpc_resp_reset(httpc_resp_t *r);
void httpc_resp_free(httpc_resp_t *r);

/* CURLOPT_WRITEFUNCTION / CURLOPT_HEADERFUNCTION callbacks; userdata is an httpc_resp_t. */
size_t httpc_on_body(char *p, size_t sz, size_t n, void *ud);
size_t httpc_on_header(char *p, size_t sz, size_t n, void *ud);

/* Seconds to wait for a Retry-After value ("120" or an HTTP date), 0..3600; -1 if unparsable. */
int httpc_retry_after(const char *value);

#endif
