/*
 * h2server.h - a small HTTP/2 server over libnghttp2 (h2c with prior knowledge), for the
 * OTLP/gRPC receiver. Listener threads each run an epoll loop over their own SO_REUSEPORT
 * socket (the address claimed once per process, as server.c does); every connection has an
 * nghttp2 server session whose limits are set here (concurrent streams, header list size,
 * windows, SETTINGS/PING floods, stream-reset rate: CVE-2023-44487). Requests are handled on
 * the thread that read them, through the callbacks of h2_handler_t. Socket I/O goes through
 * h2_io_t hooks; with a tls_server_t the OpenSSL layer of h2tls.c (ALPN "h2") is used.
 *
 * The listening sockets, threads and open connections belong to the listener registry
 * (listener.h, key "grpc [host]:port"), not to the component: a reload (SIGHUP) that keeps
 * the address keeps them, and only the handler changes. Each stream looks its handler up
 * when its headers are complete (listener_enter) and keeps it until the stream closes
 * (listener_leave), so a call runs entirely on the configuration it began with.
 */
#ifndef H2SERVER_H
#define H2SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "mt.h"
#include "tls.h"

typedef struct h2_server h2_server_t;
typedef struct h2_stream h2_stream_t;
typedef struct h2_conn h2_conn_t;

/* One header field (name, value), both NUL-terminated. */
typedef struct h2_nv {
    const char *name;
    const char *value;
} h2_nv_t;

/* Socket I/O of one connection: plain TCP by default; a TLS layer (OpenSSL, ALPN "h2") sets
 * its own in h2_limits_t.io. open runs once after accept (set the layer's state with
 * h2_conn_set_io_ctx; -1 refuses the connection); recv and send return bytes moved (> 0), 0
 * for end of stream (recv only), or -1 with errno (EAGAIN when the socket is not ready: the
 * loop waits for it to be readable, and writable while output is pending); close runs before
 * the socket is closed (e.g. close_notify, free the state). handshake (optional) runs before
 * any HTTP/2 byte moves, each time the socket is ready, until it returns H2_IO_DONE; the loop
 * waits for what it asks (a connection that does not finish it in H2_HANDSHAKE_TIMEOUT_S is
 * closed). peer_tenant (optional): the tenant the transport bound the client to, or NULL. */
typedef enum { H2_IO_DONE = 0, H2_IO_WANT_READ, H2_IO_WANT_WRITE, H2_IO_FAILED } h2_io_want_t;
#define H2_HANDSHAKE_TIMEOUT_S 10

typedef struct h2_io {
    int (*open)(h2_conn_t *c);
    ssize_t (*recv)(h2_conn_t *c, uint8_t *buf, size_t n);
    ssize_t (*send)(h2_conn_t *c, const uint8_t *buf, size_t n);
    void (*close)(h2_conn_t *c);
    h2_io_want_t (*handshake)(h2_conn_t *c);
    const char *(*peer_tenant)(const h2_conn_t *c);
} h2_io_t;

int h2_conn_fd(const h2_conn_t *c);
void *h2_conn_io_ctx(const h2_conn_t *c);
void h2_conn_set_io_ctx(h2_conn_t *c, void *ctx);
/* The tls_server_t of the connection's listener (NULL: plain TCP). */
tls_server_t *h2_conn_tls(const h2_conn_t *c);

/* Connection- and stream-level events the server counts through h2_handler_t.event. */
#define H2_EVENTS(X)                                                                     \
    X(H2_EV_BAD_PREFACE, "bad_preface")             /* not an HTTP/2 client preface */   \
    X(H2_EV_PROTOCOL_ERROR, "protocol_error")       /* bad frames: connection closed */  \
    X(H2_EV_FLOOD, "flood")                         /* SETTINGS/PING/RST flood */        \
    X(H2_EV_RAPID_RESET, "rapid_reset")             /* streams reset too fast: GOAWAY */ \
    X(H2_EV_HEADERS_TOO_LARGE, "headers_too_large") /* stream refused (431) */           \
    X(H2_EV_STREAM_RESET, "stream_reset")           /* client reset a stream */          \
    X(H2_EV_IDLE_TIMEOUT, "idle_timeout")           /* connection idle too long */       \
    X(H2_EV_TOO_MANY_CONNECTIONS, "too_many_connections")                                \
    X(H2_EV_TLS_HANDSHAKE_FAILED, "tls_handshake_failed") /* incl. no ALPN h2, no cert */

typedef enum {
#define H2_EV_ENUM_(e, s) e,
    H2_EVENTS(H2_EV_ENUM_)
#undef H2_EV_ENUM_
        H2_EV_COUNT
} h2_event_t;

const char *h2_event_name(h2_event_t ev);

typedef struct h2_handler {
    /* A request's headers are in (h2_method, h2_path, h2_header read them). Respond here
     * (h2_respond) to refuse it; otherwise its body arrives through data(). */
    void (*begin)(void *arg, h2_stream_t *s);
    /* Request body bytes (not called once the stream was answered). */
    void (*data)(void *arg, h2_stream_t *s, const uint8_t *p, size_t n);
    /* The request is complete (END_STREAM), not yet answered: answer it. */
    void (*end)(void *arg, h2_stream_t *s);
    /* The deadline set with h2_set_deadline passed before an answer: answer it. */
    void (*timeout)(void *arg, h2_stream_t *s);
    /* The stream is gone (answered, reset or its connection closed): free h2_user(s). */
    void (*close)(void *arg, h2_stream_t *s);
    void (*event)(void *arg, h2_event_t ev);
    void *arg;
} h2_handler_t;

typedef struct h2_limits {
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t max_header_list;        /* bytes of one request's header fields (431 above) */
    uint32_t window;                 /* SETTINGS_INITIAL_WINDOW_SIZE of each stream */
    int idle_timeout_s;              /* close a connection idle this long */
    int max_connections;             /* per listener thread */
    const h2_io_t *io;               /* NULL: plain TCP (h2c), or h2tls's with a tls_server_t */
} h2_limits_t;

/* Binds endpoint (claimed as server.c claims it) and starts `threads` listener threads, with
 * TLS when `tls` is not NULL (taken over: destroyed with the server, or at once when the
 * start fails or a running server is kept). During a reload (listener_stage_begin) a server
 * already listening on the address is taken over instead, with its connections: h is staged
 * on it; its threads and limits stay (a warning says a change takes a restart), its TLS
 * settings too (the files are re-read; other tls changes fail the start with eb saying so).
 * Returns NULL with eb filled when the address is bad or busy. */
h2_server_t *h2_server_start(const char *endpoint, int threads, const h2_limits_t *lim,
                             const h2_handler_t *h, tls_server_t *tls, mt_errbuf_t *eb);
/* Ends the component's binding. The last user of the listener sends GOAWAY on every
 * connection, lets the streams in flight finish (until `grace_ms`), then closes everything
 * and joins the threads; otherwise (a reload kept the listener) this waits for the streams
 * that run on h. Accepts NULL. */
void h2_server_stop(h2_server_t *s, int grace_ms);
int h2_server_port(const h2_server_t *s);

/* The listening socket of one listener thread: non-blocking, SO_REUSEPORT, bound to sa and
 * listening. The one place a listener is created. Returns the fd or -1 with eb filled. */
int h2_listen_socket(const struct sockaddr_storage *sa, socklen_t salen, const char *endpoint,
                     mt_errbuf_t *eb);

const char *h2_method(const h2_stream_t *s);
const char *h2_path(const h2_stream_t *s);
/* A request header by lower-case name, or NULL. */
const char *h2_header(const h2_stream_t *s, const char *name);
void *h2_user(const h2_stream_t *s);
void h2_set_user(h2_stream_t *s, void *user);
/* Absolute CLOCK_MONOTONIC deadline (ns) after which timeout() runs; 0 = none. */
void h2_set_deadline(h2_stream_t *s, uint64_t ns);
int h2_answered(const h2_stream_t *s);
/* The tenant the connection's TLS client certificate is bound to (tenants_from_certificate),
 * or NULL. */
const char *h2_peer_tenant(const h2_stream_t *s);

/* Answers a stream: `:status`, headers, an optional body (copied) and optional trailers
 * (copied). Without a body the trailers join the headers (one HEADERS frame, gRPC's
 * Trailers-Only). Once the answer is out and the client still sends, the stream is reset
 * (NO_ERROR) so it stops. Returns 0, or -1 when already answered or out of memory (the
 * stream is reset). */
int h2_respond(h2_stream_t *s, int status, const h2_nv_t *hdrs, size_t nh, const uint8_t *body,
               size_t len, const h2_nv_t *trailers, size_t nt);

#endif
