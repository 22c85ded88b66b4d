/*
 * h2server.c - see h2server.h. One epoll loop per listener thread; each connection's bytes go
 * to nghttp2_session_mem_recv and what the session wants to send comes from
 * nghttp2_session_mem_send, so the socket (or h2tls.c's OpenSSL layer, whose handshake is one
 * more non-blocking step of the loop) stays behind h2_io_t. A connection gets at most
 * H2_READ_BUDGET bytes of work per wake-up (level-triggered epoll), so one busy or hostile
 * client cannot starve the others on its thread. The threads belong to the listener registry;
 * a stream takes its handler from the listener's active binding when its headers are complete
 * and leaves it when it closes.
 */
#include "h2server.h"
#include "h2tls.h"
#include "listener.h"
#include "server.h"

#include <nghttp2/nghttp2.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define H2_MAX_THREADS  64
#define H2_READ_CHUNK   16384
#define H2_READ_BUDGET  (256 * 1024) /* bytes read from one connection per wake-up */
#define H2_WRITE_GATHER 16384        /* bytes gathered into one write */
#define H2_TICK_MS      100          /* deadline and idle sweep */
#define H2_CONN_WINDOW  (16 * 1024 * 1024)
#define H2_RST_BURST    500 /* client RST_STREAMs a connection may send at once ... */
#define H2_RST_RATE     50  /* ... and per second after that (then GOAWAY ENHANCE_YOUR_CALM) */
#define H2_MAX_TRAILERS 8
#define H2_EPOLL_EVENTS 64

typedef struct h2_worker h2_worker_t;
typedef struct h2_daemons h2_daemons_t;

struct h2_stream {
    h2_conn_t *c;
    int32_t id;
    char *hb; /* request headers: name\0value\0 ... */
    size_t hlen, hcap;
    size_t hbytes; /* RFC 9113 size: name + value + 32 per field */
    int too_large;
    int begun;
    int ended;    /* the client's END_STREAM arrived */
    int answered; /* h2_respond was called */
    uint64_t deadline;
    uint64_t last_ns;         /* the request's last bytes (a stalled upload is reset after idle) */
    const h2_handler_t *h;    /* the handler it began on (NULL before, or when none) */
    listener_binding_t *held; /* the binding h belongs to, left when the stream closes */
    void *user;
    uint8_t *body; /* response body */
    size_t blen, boff;
    char *tbuf; /* trailer copies */
    nghttp2_nv tr[H2_MAX_TRAILERS];
    size_t nt;
    h2_stream_t *prev, *next;
};

struct h2_conn {
    h2_worker_t *w;
    int fd;
    const h2_io_t *io;
    void *io_ctx;
    nghttp2_session *sess;
    uint8_t *out; /* bytes the socket did not take yet */
    size_t olen, ooff, ocap;
    uint64_t last_ns;
    double rst_tokens;
    uint64_t rst_ns;
    int closing;     /* close once the output is flushed */
    int handshaking; /* the transport's handshake (TLS) is not done yet */
    int dead;
    uint32_t evmask;
    h2_stream_t *streams;
    h2_conn_t *prev, *next;
};

struct h2_worker {
    h2_daemons_t *s;
    pthread_t th;
    int started;
    int ep, lfd, evfd;
    h2_conn_t *conns;
    h2_conn_t *grave; /* closed during this batch of events, freed after it */
    int nconns;
    int draining;
    uint64_t drain_deadline;
};

/* The threads and sockets serving one address: they belong to the listener registry. */
struct h2_daemons {
    h2_worker_t w[H2_MAX_THREADS];
    int nw;
    h2_limits_t lim;
    int port;
    int lock_fd;
    int grace_ms;
    listener_t *l;     /* its registry entry: streams look their handler up there */
    tls_server_t *tls; /* owned, destroyed after the threads; NULL: h2c */
    nghttp2_option *opt;
    nghttp2_session_callbacks *cbs;
};

/* What a component holds: its handler and its binding to the daemons of its address. */
struct h2_server {
    h2_handler_t h;
    int port;
    listener_t *l;
    listener_binding_t *b;
};

static const char *const ev_names[] = {
#define H2_EV_NAME_(e, s) s,
    H2_EVENTS(H2_EV_NAME_)
#undef H2_EV_NAME_
};

const char *h2_event_name(h2_event_t ev)
{
    return ev >= 0 && ev < H2_EV_COUNT ? ev_names[ev] : "unknown";
}

/* Connection events go to the handler active now. */
static void daemons_event(h2_daemons_t *d, h2_event_t ev)
{
    listener_binding_t *held;
    const h2_server_t *srv = listener_enter(d->l, &held);
    if (srv && srv->h.event) {
        srv->h.event(srv->h.arg, ev);
    }
    listener_leave(held);
}

static void event(h2_conn_t *c, h2_event_t ev)
{
    daemons_event(c->w->s, ev);
}

/* ---- plain TCP I/O ------------------------------------------------------------------ */

static ssize_t tcp_recv(h2_conn_t *c, uint8_t *buf, size_t n)
{
    ssize_t r;
    do {
        r = recv(c->fd, buf, n, 0);
    } while (r < 0 && errno == EINTR);
    return r;
}

static ssize_t tcp_send(h2_conn_t *c, const uint8_t *buf, size_t n)
{
    ssize_t r;
    do {
        r = send(c->fd, buf, n, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r;
}

static const h2_io_t tcp_io = {NULL, tcp_recv, tcp_send, NULL, NULL, NULL};

int h2_conn_fd(const h2_conn_t *c)
{
    return c->fd;
}

void *h2_conn_io_ctx(const h2_conn_t *c)
{
    return c->io_ctx;
}

void h2_conn_set_io_ctx(h2_conn_t *c, void *ctx)
{
    c->io_ctx = ctx;
}

tls_server_t *h2_conn_tls(const h2_conn_t *c)
{
    return c->w->s->tls;
}

const char *h2_peer_tenant(const h2_stream_t *s)
{
    const h2_conn_t *c = s->c;
    return c->io->peer_tenant ? c->io->peer_tenant(c) : NULL;
}

/* ---- streams ------------------------------------------------------------------------ */

const char *h2_header(const h2_stream_t *s, const char *name)
{
    for (size_t off = 0; off < s->hlen;) {
        const char *n = s->hb + off;
        size_t nl = strlen(n);
        const char *v = n + nl + 1;
        if (strcmp(n, name) == 0) {
            return v;
        }
        off += nl + 1 + strlen(v) + 1;
    }
    return NULL;
}

const char *h2_method(const h2_stream_t *s)
{
    const char *m = h2_header(s, ":method");
    return m ? m : "";
}

const char *h2_path(const h2_stream_t *s)
{
    const char *p = h2_header(s, ":path");
    return p ? p : "";
}

void *h2_user(const h2_stream_t *s)
{
    return s->user;
}

void h2_set_user(h2_stream_t *s, void *user)
{
    s->user = user;
}

void h2_set_deadline(h2_stream_t *s, uint64_t ns)
{
    s->deadline = ns;
}

int h2_answered(const h2_stream_t *s)
{
    return s->answered;
}

static void stream_free(h2_stream_t *s)
{
    h2_conn_t *c = s->c;
    if (s->h && s->h->close) {
        s->h->close(s->h->arg, s);
    }
    listener_leave(s->held);
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        c->streams = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    free(s->hb);
    free(s->body);
    free(s->tbuf);
    free(s);
}

static int header_add(h2_stream_t *s, const uint8_t *name, size_t nl, const uint8_t *value,
                      size_t vl)
{
    size_t need = s->hlen + nl + vl + 2;
    if (need > s->hcap) {
        size_t nc = s->hcap ? s->hcap * 2 : 512;
        while (nc < need) {
            nc *= 2;
        }
        char *nb = realloc(s->hb, nc);
        if (!nb) {
            return -1;
        }
        s->hb = nb;
        s->hcap = nc;
    }
    memcpy(s->hb + s->hlen, name, nl);
    s->hb[s->hlen + nl] = 0;
    memcpy(s->hb + s->hlen + nl + 1, value, vl);
    s->hb[s->hlen + nl + 1 + vl] = 0;
    s->hlen = need;
    return 0;
}

static ssize_t body_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ud;
    h2_stream_t *s = src->ptr;
    size_t n = s->blen - s->boff;
    if (n > len) {
        n = len;
    }
    memcpy(buf, s->body + s->boff, n);
    s->boff += n;
    if (s->boff == s->blen) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->nt) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(sess, id, s->tr, s->nt) != 0) {
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
        }
    }
    return (ssize_t)n;
}

static nghttp2_nv mknv(const char *n, const char *v)
{
    nghttp2_nv nv = {(uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
    return nv;
}

int h2_respond(h2_stream_t *s, int status, const h2_nv_t *hdrs, size_t nh, const uint8_t *body,
               size_t len, const h2_nv_t *trailers, size_t nt)
{
    if (s->answered || nt > H2_MAX_TRAILERS) {
        return -1;
    }
    s->answered = 1;
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    nghttp2_nv nva[32];
    size_t n = 0;
    nva[n++] = mknv(":status", st);
    for (size_t i = 0; i < nh && n < 24; i++) {
        nva[n++] = mknv(hdrs[i].name, hdrs[i].value);
    }
    nghttp2_session *sess = s->c->sess;
    if (!body || !len) { /* trailers (if any) join the headers: one HEADERS, END_STREAM */
        for (size_t i = 0; i < nt; i++) {
            nva[n++] = mknv(trailers[i].name, trailers[i].value);
        }
        return nghttp2_submit_response(sess, s->id, nva, n, NULL) == 0 ? 0 : -1;
    }
    s->body = malloc(len);
    size_t tl = 0;
    for (size_t i = 0; i < nt; i++) {
        tl += strlen(trailers[i].name) + strlen(trailers[i].value) + 2;
    }
    s->tbuf = nt ? malloc(tl) : NULL;
    if (!s->body || (nt && !s->tbuf)) {
        nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return -1;
    }
    memcpy(s->body, body, len);
    s->blen = len;
    char *p = s->tbuf;
    for (size_t i = 0; i < nt; i++) {
        size_t a = strlen(trailers[i].name), b = strlen(trailers[i].value);
        memcpy(p, trailers[i].name, a + 1);
        memcpy(p + a + 1, trailers[i].value, b + 1);
        s->tr[i] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)p + a + 1, a, b, NGHTTP2_NV_FLAG_NONE};
        p += a + b + 2;
    }
    s->nt = nt;
    nghttp2_data_provider prd;
    prd.source.ptr = s;
    prd.read_callback = body_read;
    return nghttp2_submit_response(sess, s->id, nva, n, &prd) == 0 ? 0 : -1;
}

/* ---- nghttp2 callbacks ----------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
    h2_conn_t *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    h2_stream_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->c = c;
    s->id = f->hd.stream_id;
    s->last_ns = mt_now_ns();
    s->next = c->streams;
    if (c->streams) {
        c->streams->prev = s;
    }
    c->streams = s;
    nghttp2_session_set_stream_user_data(sess, s->id, s);
    return 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    if (!s || s->begun) {
        return 0; /* trailers of a request: not kept */
    }
    s->hbytes += nl + vl + 32;
    if (s->hbytes > s->c->w->s->lim.max_header_list) {
        s->too_large = 1;
        return 0;
    }
    if (header_add(s, name, nl, value, vl) != 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static void request_end(h2_conn_t *c, h2_stream_t *s)
{
    s->ended = 1;
    (void)c;
    if (s->begun && !s->answered && s->h && s->h->end) {
        s->h->end(s->h->arg, s);
    }
}

static void rst_received(h2_conn_t *c)
{
    event(c, H2_EV_STREAM_RESET);
    uint64_t now = mt_now_ns();
    c->rst_tokens += (double)(now - c->rst_ns) / 1e9 * H2_RST_RATE;
    if (c->rst_tokens > H2_RST_BURST) {
        c->rst_tokens = H2_RST_BURST;
    }
    c->rst_ns = now;
    c->rst_tokens -= 1;
    if (c->rst_tokens < 0 && !c->closing) {
        /* CVE-2023-44487: a client that opens and cancels streams in a loop gets GOAWAY */
        event(c, H2_EV_RAPID_RESET);
        nghttp2_session_terminate_session(c->sess, NGHTTP2_ENHANCE_YOUR_CALM);
        c->closing = 1;
    }
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
    h2_conn_t *c = ud;
    if (f->hd.type == NGHTTP2_RST_STREAM) {
        rst_received(c);
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    h2_stream_t *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    if (!s) {
        return 0;
    }
    if (f->hd.type == NGHTTP2_HEADERS && !s->begun && (f->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
        s->begun = 1;
        if (s->too_large) {
            event(c, H2_EV_HEADERS_TOO_LARGE);
            h2_respond(s, 431, NULL, 0, NULL, 0, NULL, 0);
        } else {
            /* the handler this stream runs on to its end, even when a reload swaps another
             * in meanwhile */
            const h2_server_t *srv = listener_enter(c->w->s->l, &s->held);
            if (!srv) {
                h2_respond(s, 503, NULL, 0, NULL, 0, NULL, 0); /* gRPC: UNAVAILABLE */
            } else {
                s->h = &srv->h;
                if (s->h->begin) {
                    s->h->begin(s->h->arg, s);
                }
            }
        }
    }
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        request_end(c, s);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(sess, id);
    if (s) {
        s->last_ns = mt_now_ns();
    }
    if (s && s->begun && !s->answered && s->h && s->h->data) {
        s->h->data(s->h->arg, s, data, len);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t err, void *ud)
{
    (void)err;
    (void)ud;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(sess, id);
    if (s) {
        nghttp2_session_set_stream_user_data(sess, id, NULL);
        stream_free(s);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
    h2_conn_t *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        if (f->goaway.error_code != NGHTTP2_NO_ERROR) {
            if (f->goaway.error_code != NGHTTP2_ENHANCE_YOUR_CALM) {
                event(c, H2_EV_PROTOCOL_ERROR);
            }
            c->closing = 1;
        }
        return 0;
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        h2_stream_t *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
        if (s && !s->ended) {
            /* answered before the request ended (a refusal): stop the upload */
            nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
        }
    }
    return 0;
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_close(h2_conn_t *c)
{
    if (c->dead) {
        return;
    }
    h2_worker_t *w = c->w;
    c->dead = 1;
    while (c->streams) {
        nghttp2_session_set_stream_user_data(c->sess, c->streams->id, NULL);
        stream_free(c->streams);
    }
    if (c->io->close) {
        c->io->close(c);
    }
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    w->nconns--;
    c->next = w->grave;
    w->grave = c;
}

static void conn_free(h2_conn_t *c)
{
    nghttp2_session_del(c->sess);
    free(c->out);
    free(c);
}

static void conn_events(h2_conn_t *c, uint32_t want)
{
    if (want != c->evmask) {
        struct epoll_event ev = {.events = want, .data.ptr = c};
        epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->evmask = want;
    }
}

/* Appends n bytes to the connection's output (compacted first, grown when needed). */
static int conn_out_append(h2_conn_t *c, const uint8_t *d, size_t n)
{
    if (c->ooff > 0) {
        memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
        c->olen -= c->ooff;
        c->ooff = 0;
    }
    if (c->olen + n > c->ocap) {
        size_t nc = c->ocap ? c->ocap : H2_WRITE_GATHER;
        while (nc < c->olen + n) {
            nc *= 2;
        }
        uint8_t *nb = realloc(c->out, nc);
        if (!nb) {
            return -1;
        }
        c->out = nb;
        c->ocap = nc;
    }
    memcpy(c->out + c->olen, d, n);
    c->olen += n;
    return 0;
}

/* Writes what is pending and what the session has to send, gathered (a response's HEADERS,
 * DATA and trailers, the answers to every stream one read completed) into one write of up to
 * H2_WRITE_GATHER bytes: one segment and one wake-up of the client instead of three. Closes
 * the connection when it is done. */
static void conn_flush(h2_conn_t *c)
{
    for (;;) {
        while (c->olen - c->ooff < H2_WRITE_GATHER) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(c->sess, &d);
            if (n < 0 || (n > 0 && conn_out_append(c, d, (size_t)n) != 0)) {
                conn_close(c);
                return;
            }
            if (n == 0) {
                break;
            }
        }
        if (c->ooff == c->olen) {
            c->ooff = c->olen = 0;
            break;
        }
        ssize_t n = c->io->send(c, c->out + c->ooff, c->olen - c->ooff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_events(c, EPOLLIN | EPOLLOUT);
                return;
            }
            conn_close(c);
            return;
        }
        c->ooff += (size_t)n;
    }
    conn_events(c, EPOLLIN);
    if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess)) {
        conn_close(c);
    } else if (c->closing && !nghttp2_session_want_write(c->sess)) {
        conn_close(c);
    }
}

/* Advances the transport's handshake; once it is done the session's first bytes go out. */
static void conn_handshake(h2_conn_t *c)
{
    switch (c->io->handshake(c)) {
    case H2_IO_DONE:
        c->handshaking = 0;
        c->last_ns = mt_now_ns();
        conn_events(c, EPOLLIN);
        conn_flush(c);
        break;
    case H2_IO_WANT_READ:
        conn_events(c, EPOLLIN);
        break;
    case H2_IO_WANT_WRITE:
        conn_events(c, EPOLLIN | EPOLLOUT);
        break;
    default:
        event(c, H2_EV_TLS_HANDSHAKE_FAILED);
        conn_close(c);
        break;
    }
}

static void conn_read(h2_conn_t *c)
{
    uint8_t buf[H2_READ_CHUNK];
    size_t budget = H2_READ_BUDGET;
    while (budget > 0 && !c->dead && !c->closing) {
        ssize_t n = c->io->recv(c, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->last_ns = mt_now_ns();
        ssize_t rv = nghttp2_session_mem_recv(c->sess, buf, (size_t)n);
        if (rv < 0) {
            event(c, rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC ? H2_EV_BAD_PREFACE
                     : rv == NGHTTP2_ERR_FLOODED        ? H2_EV_FLOOD
                                                        : H2_EV_PROTOCOL_ERROR);
            conn_close(c);
            return;
        }
        budget -= (size_t)n < budget ? (size_t)n : budget;
        if ((size_t)n < sizeof(buf)) {
            break;
        }
    }
}

static void conn_new(h2_worker_t *w, int fd)
{
    h2_daemons_t *srv = w->s;
    h2_conn_t *c = calloc(1, sizeof(*c));
    if (!c || nghttp2_session_server_new2(&c->sess, srv->cbs, c, srv->opt) != 0) {
        free(c);
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->io = srv->lim.io ? srv->lim.io : &tcp_io;
    if (c->io->open && c->io->open(c) != 0) {
        event(c, H2_EV_TLS_HANDSHAKE_FAILED);
        conn_free(c);
        close(fd);
        return;
    }
    c->handshaking = c->io->handshake != NULL;
    c->last_ns = c->rst_ns = mt_now_ns();
    c->rst_tokens = H2_RST_BURST;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->lim.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, srv->lim.window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, srv->lim.max_header_list},
    };
    nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, MT_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    c->evmask = EPOLLIN;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (c->io->close) {
            c->io->close(c);
        }
        conn_free(c);
        close(fd);
        return;
    }
    c->next = w->conns;
    if (w->conns) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->nconns++;
    if (w->draining) {
        nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    }
    if (c->handshaking) {
        conn_handshake(c);
    } else {
        conn_flush(c);
    }
}

static void accept_all(h2_worker_t *w)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        if (w->nconns >= w->s->lim.max_connections) {
            close(fd);
            daemons_event(w->s, H2_EV_TOO_MANY_CONNECTIONS);
            continue;
        }
        conn_new(w, fd);
    }
}

/* Deadlines and idle connections. */
static void tick(h2_worker_t *w, uint64_t now)
{
    h2_daemons_t *srv = w->s;
    uint64_t idle = (uint64_t)srv->lim.idle_timeout_s * 1000000000ull;
    for (h2_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->handshaking) {
            if (now - c->last_ns > H2_HANDSHAKE_TIMEOUT_S * 1000000000ull) {
                event(c, H2_EV_IDLE_TIMEOUT);
                conn_close(c);
            }
            continue;
        }
        int touched = 0;
        for (h2_stream_t *s = c->streams; s; s = s->next) {
            if (s->deadline && now > s->deadline && s->begun && !s->answered && s->h &&
                s->h->timeout) {
                s->h->timeout(s->h->arg, s);
                touched = 1;
            } else if (idle && s->begun && !s->ended && !s->answered && now - s->last_ns > idle) {
                /* an upload stalled while the connection stays alive (PINGs, other streams):
                 * reset it, so it holds neither memory nor a reload (which waits for the
                 * streams on the old handler) longer than a silent connection could */
                event(c, H2_EV_IDLE_TIMEOUT);
                nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
                s->answered = 1;
                touched = 1;
            }
        }
        if (idle && now - c->last_ns > idle) {
            event(c, H2_EV_IDLE_TIMEOUT);
            nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR);
            c->closing = 1;
            touched = 1;
        }
        if (touched) {
            conn_flush(c);
        }
    }
}

static void drain_begin(h2_worker_t *w)
{
    w->draining = 1;
    w->drain_deadline = mt_now_ns() + (uint64_t)w->s->grace_ms * 1000000ull;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, w->lfd, NULL);
    for (h2_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->handshaking) {
            conn_close(c);
            continue;
        }
        nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->sess), NGHTTP2_NO_ERROR,
                              NULL, 0);
        conn_flush(c);
    }
}

static void *worker_main(void *arg)
{
    h2_worker_t *w = arg;
    struct epoll_event evs[H2_EPOLL_EVENTS];
    uint64_t last_tick = mt_now_ns();
    for (;;) {
        int n = epoll_wait(w->ep, evs, H2_EPOLL_EVENTS, H2_TICK_MS);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &w->lfd) {
                accept_all(w);
            } else if (p == &w->evfd) {
                uint64_t v;
                if (read(w->evfd, &v, sizeof(v)) < 0) {
                    v = 0;
                }
                if (!w->draining) {
                    drain_begin(w);
                }
            } else {
                h2_conn_t *c = p;
                if (c->dead) {
                    continue;
                }
                if (c->handshaking) {
                    conn_handshake(c);
                    continue;
                }
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                    conn_read(c);
                }
                if (!c->dead) {
                    conn_flush(c);
                }
            }
        }
        while (w->grave) {
            h2_conn_t *c = w->grave;
            w->grave = c->next;
            conn_free(c);
        }
        uint64_t now = mt_now_ns();
        if (now - last_tick >= H2_TICK_MS * 1000000ull) {
            last_tick = now;
            tick(w, now);
        }
        if (w->draining && (!w->conns || now > w->drain_deadline)) {
            break;
        }
    }
    while (w->conns) {
        conn_close(w->conns);
    }
    while (w->grave) {
        h2_conn_t *c = w->grave;
        w->grave = c->next;
        conn_free(c);
    }
    return NULL;
}

/* ---- server -------------------------------------------------------------------------- */

int h2_listen_socket(const struct sockaddr_storage *sa, socklen_t salen, const char *endpoint,
                     mt_errbuf_t *eb)
{
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mt_failf(eb, "endpoint \"%s\": socket: %s", endpoint, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (sa->ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)sa, salen) != 0 || listen(fd, 1024) != 0) {
        mt_failf(eb, "endpoint \"%s\": cannot listen: %s", endpoint,
                 errno == EADDRINUSE ? "address in use" : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int server_callbacks(h2_daemons_t *s)
{
    if (nghttp2_session_callbacks_new(&s->cbs) != 0 || nghttp2_option_new(&s->opt) != 0) {
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, on_frame_send);
    /* enforce our SETTINGS_MAX_CONCURRENT_STREAMS before the client acknowledged it */
    nghttp2_option_set_max_outbound_ack(s->opt, 1000);
    nghttp2_option_set_max_settings(s->opt, 32);
    nghttp2_option_set_max_continuations(s->opt, 8);
    /* the library's own rapid-reset limit backs ours (H2_RST_*) */
    nghttp2_option_set_stream_reset_rate_limit(s->opt, 1000, 33);
    nghttp2_option_set_max_deflate_dynamic_table_size(s->opt, 4096);
    return 0;
}

static void daemons_close(void *impl)
{
    h2_daemons_t *s = impl;
    for (int i = 0; i < s->nw; i++) {
        uint64_t one = 1;
        if (s->w[i].started && write(s->w[i].evfd, &one, sizeof(one)) < 0) {
            s->w[i].started = 1;
        }
    }
    for (int i = 0; i < s->nw; i++) {
        h2_worker_t *w = &s->w[i];
        if (w->started) {
            pthread_join(w->th, NULL);
        }
        if (w->lfd >= 0) {
            close(w->lfd);
        }
        if (w->evfd >= 0) {
            close(w->evfd);
        }
        if (w->ep >= 0) {
            close(w->ep);
        }
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    tls_server_destroy(s->tls); /* after the threads: no connection uses it any more */
    nghttp2_session_callbacks_del(s->cbs);
    nghttp2_option_del(s->opt);
    free(s);
}

/* Starts `threads` listener threads on sa and registers them under key, with owner's
 * handler bound before the first thread runs (so no early call finds no handler). Returns the
 * listener (one reference, held through owner->b) or NULL with eb filled; tls is taken over. */
static listener_t *daemons_start(struct sockaddr_storage sa, socklen_t salen, int port,
                                 const char *endpoint, int threads, const char *key,
                                 const h2_limits_t *lim, tls_server_t *tls, h2_server_t *owner,
                                 mt_errbuf_t *eb)
{
    h2_daemons_t *s = calloc(1, sizeof(*s));
    if (!s) {
        mt_failf(eb, "out of memory");
        tls_server_destroy(tls);
        return NULL;
    }
    s->lim = *lim;
    s->tls = tls;
    if (tls) {
        s->lim.io = h2tls_io();
    }
    s->lock_fd = -1;
    s->port = port;
    s->grace_ms = 0;
    if (server_callbacks(s) != 0) {
        mt_failf(eb, "out of memory");
        daemons_close(s);
        return NULL;
    }
    if (port != 0 && http_claim_address(&sa, salen, endpoint, &s->lock_fd, eb) != MT_OK) {
        daemons_close(s);
        return NULL;
    }
    listener_t *l = listener_add_bound(key, s, daemons_close, owner, &owner->b, eb);
    if (!l) {
        return NULL;
    }
    s->l = l;
    for (int i = 0; i < threads; i++) {
        h2_worker_t *w = &s->w[i];
        w->s = s;
        w->lfd = w->evfd = w->ep = -1;
        s->nw = i + 1;
        w->lfd = h2_listen_socket(&sa, salen, endpoint, eb);
        if (w->lfd < 0) {
            listener_release(owner->b); /* the last reference: closes what started */
            return NULL;
        }
        if (i == 0) { /* port 0 picked a free port: the other listeners join that one */
            struct sockaddr_storage b;
            socklen_t bl = sizeof(b);
            getsockname(w->lfd, (struct sockaddr *)&b, &bl);
            s->port = ntohs(b.ss_family == AF_INET ? ((struct sockaddr_in *)&b)->sin_port
                                                   : ((struct sockaddr_in6 *)&b)->sin6_port);
            http_addr_set_port(&sa, s->port);
        }
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event le = {.events = EPOLLIN, .data.ptr = &w->lfd};
        struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &w->evfd};
        if (w->ep < 0 || w->evfd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &le) != 0 ||
            epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ee) != 0 ||
            pthread_create(&w->th, NULL, worker_main, w) != 0) {
            mt_failf(eb, "endpoint \"%s\": cannot start a listener thread", endpoint);
            listener_release(owner->b);
            return NULL;
        }
        w->started = 1;
    }
    return l;
}

/* What a reload that keeps an address offers its running daemons. */
typedef struct {
    const char *endpoint;
    int threads;
    const h2_limits_t *lim;
    tls_server_t *tls; /* taken by daemons_keep */
} h2_keep_t;

/* A reload keeps the running daemons of the address: what of the new settings they take. */
static int daemons_keep(void *impl, void *arg, mt_errbuf_t *eb)
{
    h2_daemons_t *d = impl;
    const h2_keep_t *k = arg;
    if (d->nw != k->threads || d->lim.max_concurrent_streams != k->lim->max_concurrent_streams) {
        mt_log(MT_LOG_WARN,
               "endpoint \"%s\": kept with its %d threads and %u concurrent streams across the "
               "reload (a change takes effect at restart)",
               k->endpoint, d->nw, d->lim.max_concurrent_streams);
    }
    /* TLS belongs to the connections */
    return tls_server_adopt(d->tls, k->tls, k->endpoint, eb);
}

h2_server_t *h2_server_start(const char *endpoint, int threads, const h2_limits_t *lim,
                             const h2_handler_t *h, tls_server_t *tls, mt_errbuf_t *eb)
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
    if (threads > H2_MAX_THREADS) {
        threads = H2_MAX_THREADS;
    }
    h2_server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        mt_failf(eb, "out of memory");
        tls_server_destroy(tls);
        return NULL;
    }
    s->h = *h;
    char key[128];
    http_address_key(&sa, "grpc", key, sizeof(key));
    h2_keep_t k = {endpoint, threads, lim, tls};
    if (listener_keep(key, port, daemons_keep, &k, s, &s->l, &s->b, eb) != MT_OK) {
        free(s);
        return NULL;
    }
    if (!s->l &&
        !(s->l = daemons_start(sa, salen, port, endpoint, threads, key, lim, tls, s, eb))) {
        free(s);
        return NULL;
    }
    s->port = ((h2_daemons_t *)listener_impl(s->l))->port;
    return s;
}

void h2_server_stop(h2_server_t *s, int grace_ms)
{
    if (!s) {
        return;
    }
    ((h2_daemons_t *)listener_impl(s->l))->grace_ms = grace_ms;
    /* the last user closes the daemons (GOAWAY, streams finish); otherwise this waits for the
     * streams that began on this handler (a reload swapped another in) */
    listener_release(s->b);
    free(s);
}

int h2_server_port(const h2_server_t *s)
{
    return s->port;
}
