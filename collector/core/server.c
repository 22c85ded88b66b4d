/*
 * server.c - see server.h. libmicrohttpd runs a pool of polling threads (epoll); each request
 * is handled entirely on the thread that read it, so there is no cross-thread hand-off
 * before the pipeline queues.
 */
#include "server.h"
#include "component.h"
#include "listener.h"
#include "tls.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <strings.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <sys/un.h>
#include <unistd.h>

#define HTTP_MAX_DAEMONS 64

/* The daemons serving one address. They belong to the listener registry (listener.h), not to
 * a component: a reload that keeps the address keeps them, with their open connections, and
 * only the handler they dispatch to changes. */
typedef struct http_daemons {
    /* one single-threaded daemon per thread, all on the same port with SO_REUSEPORT: the
     * kernel spreads connections over them by hash, where an MHD thread pool lets whichever
     * thread wakes first accept, often one thread taking every connection */
    struct MHD_Daemon *d[HTTP_MAX_DAEMONS];
    int nd;
    int port;
    int lock_fd;       /* the address's instance lock (see http_claim_address), -1 when none */
    listener_t *l;     /* its registry entry: requests look their handler up there */
    tls_server_t *tls; /* owned, destroyed after the daemons stop; NULL: plain HTTP. A reload
                        * keeps it with the daemons (same tls settings: files re-read) */
} http_daemons_t;

/* What a component holds: its binding to the daemons of its address. The binding's handler
 * is this struct (the callbacks and the body cap of this component). */
struct http_server {
    http_handler_t h;
    size_t max_body;
    int port;
    listener_t *l;
    listener_binding_t *b;
};

/* Writes the numeric host of sa into host; returns its port. */
static int sockaddr_text(const struct sockaddr_storage *sa, char host[INET6_ADDRSTRLEN])
{
    host[0] = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, INET6_ADDRSTRLEN);
        return ntohs(in->sin_port);
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, INET6_ADDRSTRLEN);
    return ntohs(in6->sin6_port);
}

/* One instance per address. SO_REUSEPORT (what spreads connections over our per-thread
 * daemons) would also let a second meltp with the same config bind the same port silently and
 * take half of the traffic. So before our daemons bind, the address is claimed twice:
 *   - a probe socket binds it *without* SO_REUSEPORT and is closed again: that bind fails
 *     with EADDRINUSE while any other process listens there, reuseport or not;
 *   - the probe leaves a race between two meltp starting at once (both probe, both join the
 *     group), so each address also takes a lock held for the server's life: an abstract unix
 *     socket named after it, which the kernel lets only one process bind and frees when the
 *     process dies (no file left behind; per network namespace, like the port itself).
 * One shared listening socket would need no check but gives up the kernel's spreading, and a
 * BPF reuseport program is far more machinery for the same answer. Port 0 (a free port picked
 * by the kernel) needs neither. Returns MT_OK, or MT_EINVAL with eb naming the address. */
int http_claim_address(const struct sockaddr_storage *sa, socklen_t salen, const char *endpoint,
                       int *lock_fd, mt_errbuf_t *eb)
{
    *lock_fd = -1;
    int probe = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        mt_failf(eb, "endpoint \"%s\": socket: %s", endpoint, strerror(errno));
        return MT_EINVAL;
    }
    int one = 1;
    setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TIME_WAIT is no owner */
    if (sa->ss_family == AF_INET6) {
        setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    int rc = bind(probe, (const struct sockaddr *)sa, salen);
    int err = errno;
    close(probe);
    if (rc != 0 && err == EADDRINUSE) {
        mt_failf(eb,
                 "endpoint \"%s\": cannot listen: address in use (another process "
                 "listens there)",
                 endpoint);
        return MT_EINVAL;
    }
    char host[INET6_ADDRSTRLEN];
    int port = sockaddr_text(sa, host);
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    int n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "meltp-listen:[%s]:%d", host, port);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return MT_OK; /* the probe has answered; the lock only closes a narrow race */
    }
    if (bind(fd, (struct sockaddr *)&un,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) != 0) {
        err = errno;
        close(fd);
        if (err == EADDRINUSE) {
            mt_failf(eb,
                     "endpoint \"%s\": cannot listen: address in use (another meltp "
                     "listens there)",
                     endpoint);
            return MT_EINVAL;
        }
        return MT_OK;
    }
    *lock_fd = fd;
    return MT_OK;
}

int http_parse_endpoint(const char *endpoint, char *host, size_t hostlen, int *port,
                        mt_errbuf_t *eb)
{
    if (!endpoint || !*endpoint) {
        mt_failf(eb, "empty endpoint");
        return MT_EINVAL;
    }
    const char *colon;
    const char *h = endpoint;
    size_t hl;
    if (*endpoint == '[') {
        const char *rb = strchr(endpoint, ']');
        if (!rb || rb[1] != ':') {
            mt_failf(eb, "endpoint \"%s\": expected [ipv6]:port", endpoint);
            return MT_EINVAL;
        }
        h = endpoint + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(endpoint, ':');
        if (!colon) {
            mt_failf(eb, "endpoint \"%s\": expected host:port", endpoint);
            return MT_EINVAL;
        }
        hl = (size_t)(colon - endpoint);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535) {
        mt_failf(eb, "endpoint \"%s\": invalid port", endpoint);
        return MT_EINVAL;
    }
    if (hl >= hostlen) {
        mt_failf(eb, "endpoint \"%s\": host too long", endpoint);
        return MT_EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return MT_OK;
}

static void req_free(http_req_t *r)
{
    listener_leave(r->held);
    if (r->accounted) {
        atomic_fetch_sub(&mt_mem_in_use, r->accounted);
    }
    free(r->body);
    free(r);
}

typedef struct framing {
    int cl, te; /* Content-Length and Transfer-Encoding headers seen */
    const char *te_value;
} framing_t;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    framing_t *f = cls;
    if (strcasecmp(key, "Content-Length") == 0) {
        f->cl++;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->te++;
        f->te_value = value;
    }
    return MHD_YES;
}

/* Why a request's body framing is refused (a reason label, *msg for the client), or NULL:
 * Content-Length together with Transfer-Encoding, either header twice, or a
 * Transfer-Encoding other than plain chunked (RFC 9112 6.1, 6.3). */
static const char *framing_problem(struct MHD_Connection *c, const char **msg)
{
    framing_t f = {0, 0, NULL};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.cl && f.te) {
        *msg = "request has both Content-Length and Transfer-Encoding; send one\n";
        return "ambiguous_length";
    }
    if (f.cl > 1 || f.te > 1) {
        *msg = "request repeats Content-Length or Transfer-Encoding; send one\n";
        return "ambiguous_length";
    }
    if (f.te && strcasecmp(f.te_value ? f.te_value : "", "chunked") != 0) {
        *msg = "unsupported Transfer-Encoding; only chunked is accepted\n";
        return "unsupported_transfer_encoding";
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    http_daemons_t *dm = cls;
    http_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r) {
            return MHD_NO;
        }
        r->conn = c;
        r->method = method;
        r->path = url;
        r->start_ns = mt_now_ns();
        *con_cls = r;
        /* the handler this request runs on to its end, even when a reload swaps another in */
        http_server_t *s = listener_enter(dm->l, (listener_binding_t **)&r->held);
        r->srv = s;
        if (!s) {
            http_respond(r, 503, "text/plain", "shutting down\n", 14, "Retry-After", "1");
            return MHD_YES;
        }
        r->max_body = s->max_body;
        const char *msg;
        const char *why = framing_problem(c, &msg);
        if (why) {
            /* the body's end is unknowable, or a proxy that reads the framing differently
             * sees another request (smuggling): refuse and close the connection */
            const char *hdrs[] = {"Connection", "close", NULL};
            http_respond_headers(r, 400, "text/plain", msg, strlen(msg), hdrs);
            if (s->h.refused) {
                s->h.refused(s->h.arg, r, 400, why);
            }
            return MHD_YES;
        }
        if (dm->tls) {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
            tls_conn_t *tc = ci ? ci->socket_context : NULL;
            if (!tls_conn_authenticated(tc)) {
                MT_LOG_EVERY(10, MT_LOG_WARN,
                             "http server: request on a connection whose "
                             "client certificate was not verified: refused");
                http_respond(r, 403, "text/plain", "client certificate not verified\n", 32, NULL,
                             NULL);
                return MHD_YES;
            }
            r->bound_tenant = tls_conn_tenant(tc);
        }
        s->h.begin(s->h.arg, r);
        if (!r->responded) {
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl) {
                unsigned long long n = strtoull(cl, NULL, 10);
                if (n > r->max_body) {
                    /* read and discard (bounded) so the client sees the 413 instead of a
                     * reset; far bigger bodies are refused at once */
                    r->too_big = 1;
                    if (n / 16 > r->max_body) {
                        http_respond(r, 413, "text/plain", "request body too large\n", 23, NULL,
                                     NULL);
                    }
                } else if (n > 0) {
                    r->body = malloc((size_t)n);
                    r->cap = r->body ? (size_t)n : 0;
                }
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->responded || r->too_big) {
            return MHD_YES; /* discard */
        }
        if (r->len + n > r->max_body) {
            r->too_big = 1;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t nc = r->cap ? r->cap * 2 : 64 * 1024;
            while (nc < r->len + n) {
                nc *= 2;
            }
            if (nc > r->max_body) {
                nc = r->max_body;
            }
            uint8_t *nb = realloc(r->body, nc);
            if (!nb) {
                http_respond(r, 503, "text/plain", "out of memory\n", 14, "Retry-After", "1");
                return MHD_YES;
            }
            atomic_fetch_add(&mt_mem_in_use, (int64_t)(nc - r->cap));
            r->accounted += (int64_t)(nc - r->cap);
            r->body = nb;
            r->cap = nc;
        } else if (r->accounted == 0 && r->cap) {
            atomic_fetch_add(&mt_mem_in_use, (int64_t)r->cap);
            r->accounted = (int64_t)r->cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (!r->responded) {
        const http_server_t *s = r->srv;
        s->h.complete(s->h.arg, r);
    }
    if (!r->responded) {
        http_respond(r, 500, "text/plain", "no response\n", 12, NULL, NULL);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    http_req_t *r = *con_cls;
    const http_server_t *s = r ? r->srv : NULL;
    if (s && !r->responded && s->h.refused) {
        /* the body never completed and the handler never answered: libmicrohttpd refused a
         * malformed chunked body itself (400; 413 for a chunk size beyond 2^64 - 1), or the
         * client stopped sending until the connection timeout. Counted, with the reason. */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        unsigned status = ci ? ci->http_status : 0;
        if (status >= 400) { /* MHD_REQUEST_TERMINATED_WITH_ERROR, its response sent */
            s->h.refused(s->h.arg, r, (int)status,
                         status == 413 ? "chunk_too_large" : "bad_chunked_body");
        } else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) {
            s->h.refused(s->h.arg, r, 408, "body_timeout");
        }
    }
    if (*con_cls) {
        req_free(*con_cls);
        *con_cls = NULL;
    }
}

/* libmicrohttpd's own error lines go through the rate-limited log at debug level: they are
 * about single connections and any client causes them at will (a TCP health probe that
 * connects and closes reads as "received handshake message out of context" on a TLS port).
 * What matters is logged by meltp itself: a listener that cannot start, a client certificate
 * refused (tls.c). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[256];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = 0;
    MT_LOG_EVERY(10, MT_LOG_DEBUG, "http server: %s", line);
}

/* A TLS connection opens and closes: its state holds the certificate generation its
 * handshake uses (see tls.c) until it closes. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_daemons_t *dm = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        /* NULL when out of memory: the handshake then finds no certificate and fails */
        *socket_context = ci && ci->tls_session ? tls_conn_begin(dm->tls, ci->tls_session) : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        tls_conn_release(*socket_context);
        *socket_context = NULL;
    }
}

static void daemons_close(void *impl)
{
    http_daemons_t *dm = impl;
    for (int i = 0; i < dm->nd; i++) {
        MHD_stop_daemon(dm->d[i]);
    }
    if (dm->lock_fd >= 0) {
        close(dm->lock_fd);
    }
    tls_server_destroy(dm->tls); /* after the daemons: no connection holds it any more */
    free(dm);
}

/* The registry key of an address: the resolved form, so "localhost:4318" and
 * "127.0.0.1:4318" are one listener. */
void http_address_key(const struct sockaddr_storage *sa, const char *scheme, char *key, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    int port = sockaddr_text(sa, host);
    snprintf(key, cap, "%s [%s]:%d", scheme, host, port);
}

static void address_key(const struct sockaddr_storage *sa, char *key, size_t cap)
{
    http_address_key(sa, "http", key, cap);
}

/* Starts the daemons for sa (threads of them), registers them under key and binds srv to
 * them before the first daemon accepts (a request must never find the listener without a
 * handler). Returns the listener (one reference, for srv) or NULL with eb filled. */
static listener_t *daemons_start(struct sockaddr_storage sa, socklen_t salen, const char *endpoint,
                                 int threads, const char *key, tls_server_t *tls,
                                 http_server_t *srv, mt_errbuf_t *eb)
{
    char host[INET6_ADDRSTRLEN];
    int port = sockaddr_text(&sa, host);
    http_daemons_t *dm = calloc(1, sizeof(*dm));
    if (!dm) {
        mt_failf(eb, "out of memory");
        return NULL;
    }
    dm->lock_fd = -1;
    dm->port = port;
    dm->tls = tls;
    if (port != 0 && http_claim_address(&sa, salen, endpoint, &dm->lock_fd, eb) != MT_OK) {
        tls_server_destroy(tls);
        free(dm);
        return NULL;
    }
    listener_t *l = listener_add_bound(key, dm, daemons_close, srv, &srv->b, eb);
    if (!l) {
        return NULL;
    }
    dm->l = l;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (tls) {
        flags |= MHD_USE_TLS;
    }
    if (sa.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    for (int i = 0; i < threads; i++) {
        struct MHD_OptionItem opts[12];
        int no = 0;
        /* first, or MHD prints the errors about the other options itself */
        opts[no++] =
            (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa};
        opts[no++] =
            (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, dm};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 4096, NULL};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
        if (tls) {
            /* the certificate comes from a callback, not MHD_OPTION_HTTPS_MEM_CERT, so a
             * reload reaches new connections without restarting the daemon */
            opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                                                 tls_server_cert_callback()};
            opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                                 (void *)tls_server_priorities(tls)};
            opts[no++] =
                (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, dm};
        }
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        dm->d[i] = MHD_start_daemon(flags, 0, NULL, NULL, on_request, dm, MHD_OPTION_ARRAY, opts,
                                    MHD_OPTION_END);
        if (!dm->d[i]) {
            mt_failf(eb, "endpoint \"%s\": cannot listen (address in use or not permitted)",
                     endpoint);
            listener_release(srv->b); /* unbinds, and the last reference closes */
            srv->b = NULL;
            return NULL;
        }
        dm->nd = i + 1;
        if (i == 0) {
            const union MHD_DaemonInfo *di =
                MHD_get_daemon_info(dm->d[0], MHD_DAEMON_INFO_BIND_PORT);
            dm->port = di ? di->port : port;
            /* port 0 picked a free port: the other daemons join that one */
            http_addr_set_port(&sa, dm->port);
        }
    }
    return l;
}

/* What a reload that keeps an address offers its running daemons. */
typedef struct {
    const char *endpoint;
    int threads;
    tls_server_t *tls; /* taken by daemons_keep */
} http_keep_t;

/* A reload keeps the running daemons of the address: what of the new settings they take. */
static int daemons_keep(void *impl, void *arg, mt_errbuf_t *eb)
{
    http_daemons_t *dm = impl;
    const http_keep_t *k = arg;
    if (dm->nd != k->threads) {
        mt_log(MT_LOG_WARN,
               "endpoint \"%s\": kept with its %d threads across the reload (a new thread "
               "count takes effect at restart)",
               k->endpoint, dm->nd);
    }
    /* TLS belongs to the daemons (libmicrohttpd sets it up when they start) */
    return tls_server_adopt(dm->tls, k->tls, k->endpoint, eb);
}

int http_endpoint_addr(const char *endpoint, struct sockaddr_storage *sa, socklen_t *salen,
                       int *port, mt_errbuf_t *eb)
{
    char host[256];
    if (http_parse_endpoint(endpoint, host, sizeof(host), port, eb) != MT_OK) {
        return MT_EINVAL;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", *port);
    int gr = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &ai);
    if (gr != 0 || !ai) {
        mt_failf(eb, "endpoint \"%s\": cannot resolve host: %s", endpoint, gai_strerror(gr));
        return MT_EINVAL;
    }
    *salen = ai->ai_addrlen;
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return MT_OK;
}

void http_addr_set_port(struct sockaddr_storage *sa, int port)
{
    if (sa->ss_family == AF_INET) {
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    }
}

http_server_t *http_server_start(const char *endpoint, int threads, size_t max_body,
                                 const http_handler_t *h, mt_errbuf_t *eb)
{
    return http_server_start_tls(endpoint, threads, max_body, h, NULL, eb);
}

http_server_t *http_server_start_tls(const char *endpoint, int threads, size_t max_body,
                                     const http_handler_t *h, tls_server_t *tls, mt_errbuf_t *eb)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    int port;
    if (http_endpoint_addr(endpoint, &sa, &salen, &port, eb) != MT_OK) {
        tls_server_destroy(tls);
        return NULL;
    }
    if (threads < 1) {
        threads = 1;
    }
    if (threads > HTTP_MAX_DAEMONS) {
        threads = HTTP_MAX_DAEMONS;
    }
    http_server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        mt_failf(eb, "out of memory");
        tls_server_destroy(tls);
        return NULL;
    }
    s->h = *h;
    s->max_body = max_body;
    char key[INET6_ADDRSTRLEN + 32];
    address_key(&sa, key, sizeof(key));
    http_keep_t k = {endpoint, threads, tls};
    if (listener_keep(key, port, daemons_keep, &k, s, &s->l, &s->b, eb) != MT_OK) {
        free(s);
        return NULL;
    }
    if (!s->l && !(s->l = daemons_start(sa, salen, endpoint, threads, key, tls, s, eb))) {
        free(s);
        return NULL;
    }
    s->port = ((http_daemons_t *)listener_impl(s->l))->port;
    return s;
}

http_server_t *http_server_listen(const char *endpoint, int threads, size_t max_body,
                                  const http_handler_t *h, const tls_server_cfg_t *tls,
                                  const char *name, mt_errbuf_t *eb)
{
    tls_server_t *ts = NULL;
    if (tls_server_enabled(tls) && !(ts = tls_server_create(tls, name, eb))) {
        return NULL;
    }
    return http_server_start_tls(endpoint, threads, max_body, h, ts, eb);
}

void http_server_stop(http_server_t *s)
{
    if (!s) {
        return;
    }
    /* the last user closes the daemons; otherwise this waits for the requests that began on
     * this handler (a reload swapped another in) */
    listener_release(s->b);
    free(s);
}

int http_server_port(const http_server_t *s)
{
    return s->port;
}

const char *http_header(http_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void http_respond_headers(http_req_t *r, int status, const char *content_type, const void *body,
                          size_t len, const char *const *hdrs)
{
    if (r->responded) {
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        return;
    }
    if (content_type) {
        MHD_add_response_header(resp, "Content-Type", content_type);
    }
    if (r->challenge) {
        MHD_add_response_header(resp, "WWW-Authenticate", r->challenge);
    }
    for (size_t i = 0; hdrs && hdrs[i] && hdrs[i + 1]; i += 2) {
        MHD_add_response_header(resp, hdrs[i], hdrs[i + 1]);
    }
    MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->responded = 1;
}

void http_respond(http_req_t *r, int status, const char *content_type, const void *body, size_t len,
                  const char *extra_name, const char *extra_value)
{
    const char *hdrs[] = {extra_name, extra_value, NULL};
    http_respond_headers(r, status, content_type, body, len, extra_name ? hdrs : NULL);
}
