/*
 * server.h - a thin layer over libmicrohttpd shared by the OTLP receiver, the health check
 * and the self-metrics endpoint: endpoint parsing, request bodies collected under a cap
 * (Content-Length checked before reading, chunked bodies checked while reading), and one
 * call to send a response.
 */
#ifndef SERVER_H
#define SERVER_H

#include <stddef.h>
#include <stdint.h>
#include "mt.h"
#include "tls.h"

#include <sys/socket.h>

typedef struct http_server http_server_t;

typedef struct http_req {
    void *conn; /* struct MHD_Connection * */
    const char *method;
    const char *path;
    uint8_t *body;
    size_t len, cap;
    size_t max_body;
    int too_big; /* body passed max_body: the rest was discarded */
    int responded;
    int64_t accounted; /* bytes counted in mt_mem_in_use for this body */
    void *user;        /* handler's per-request data */
    const void *srv;   /* the http_server_t whose handler runs this request (server.c) */
    void *held;        /* its listener binding, held until the request ends (server.c) */
    uint64_t start_ns;
    /* The tenant the connection's credential is bound to (tls.tenants_from_certificate), NULL
     * when none; valid for the request's life. */
    const char *bound_tenant;
    const char *challenge; /* set: every response carries WWW-Authenticate: challenge */
    char tenant[64];       /* the request's tenant once its access was checked */
} http_req_t;

typedef struct http_handler {
    /* Called once when headers are in. Respond here (http_respond) to refuse early;
     * otherwise the body is collected and complete() runs. */
    void (*begin)(void *arg, http_req_t *r);
    void (*complete)(void *arg, http_req_t *r);
    void *arg;
    /* Optional: the server layer refused the request itself before begin() (status, reason:
     * e.g. 400 "ambiguous_length"), for the handler's counters. */
    void (*refused)(void *arg, http_req_t *r, int status, const char *reason);
} http_handler_t;

/* Parses "host:port" (host may be empty, "0.0.0.0", "localhost", "[::1]") and starts serving
 * with `threads` worker threads. Returns NULL with eb filled when the address is bad or busy.
 * During a reload (listener_stage_begin, listener.h) an address the running configuration
 * already serves is taken over instead: the same sockets and connections, this handler staged
 * until listener_stage_commit swaps it in. */
http_server_t *http_server_start(const char *endpoint, int threads, size_t max_body,
                                 const http_handler_t *h, mt_errbuf_t *eb);
/* The same serving HTTPS with tls (taken: the server destroys it, also on failure), or plain
 * HTTP when tls is NULL. */
struct tls_server;
http_server_t *http_server_start_tls(const char *endpoint, int threads, size_t max_body,
                                     const http_handler_t *h, struct tls_server *tls,
                                     mt_errbuf_t *eb);
/* http_server_start_tls with the TLS of a listener's tls section (plain HTTP when it is not
 * enabled); `name` (e.g. "receiver otlp") prefixes its TLS log lines and labels its metrics. */
http_server_t *http_server_listen(const char *endpoint, int threads, size_t max_body,
                                  const http_handler_t *h, const tls_server_cfg_t *tls,
                                  const char *name, mt_errbuf_t *eb);
/* Accepts NULL; waits for handlers to return. The sockets close only when no configuration
 * uses the address any more. */
void http_server_stop(http_server_t *s);
/* The port actually bound (useful with port 0). */
int http_server_port(const http_server_t *s);

const char *http_header(http_req_t *r, const char *name);
/* Queues the response. extra_name/extra_value add one header (e.g. Retry-After) when set. */
void http_respond(http_req_t *r, int status, const char *content_type, const void *body, size_t len,
                  const char *extra_name, const char *extra_value);

/* Like http_respond with any number of extra headers: `hdrs` is name, value, name, value, ...,
 * NULL (NULL itself means none). */
void http_respond_headers(http_req_t *r, int status, const char *content_type, const void *body,
                          size_t len, const char *const *hdrs);

/* Validates an endpoint string without binding. */
int http_parse_endpoint(const char *endpoint, char *host, size_t hostlen, int *port,
                        mt_errbuf_t *eb);

/* Resolves an endpoint ("host:port") into a socket address (numeric port). Returns MT_OK or
 * MT_EINVAL with eb naming the endpoint. */
int http_endpoint_addr(const char *endpoint, struct sockaddr_storage *sa, socklen_t *salen,
                       int *port, mt_errbuf_t *eb);
/* Sets the port of an IPv4 or IPv6 address (listeners of one server joining the port that
 * the first one's port 0 picked). */
void http_addr_set_port(struct sockaddr_storage *sa, int port);
/* The listener registry key (listener.h) of a resolved address: "<scheme> [host]:port", so
 * "localhost:4318" and "127.0.0.1:4318" are one listener. */
void http_address_key(const struct sockaddr_storage *sa, const char *scheme, char *key, size_t cap);
/* Claims an address for this process before its SO_REUSEPORT listeners bind (one instance
 * per address: a second process on the same port fails with "address in use"). *lock_fd is
 * the lock to close when the server stops (-1 when none). Returns MT_OK or MT_EINVAL. */
int http_claim_address(const struct sockaddr_storage *sa, socklen_t salen, const char *endpoint,
                       int *lock_fd, mt_errbuf_t *eb);

#endif
