/*
 * loki_sink.c - a counting Loki for tests/bench/bench_logs.sh: POST /loki/api/v1/push with a
 * snappy-compressed logproto.PushRequest, answered 204 like Loki. It decompresses every body
 * and walks the protobuf wire format to count streams and entries (no full decode: it must
 * not be the bottleneck). GET /stats returns {"entries":N,"streams":N,"requests":N,
 * "errors":N}. Built by bench_logs.sh with the Makefile's flags.
 */
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SINK_MAX_BODY (64u << 20)

static atomic_ullong g_entries, g_streams, g_requests, g_errors;
static volatile sig_atomic_t g_stop;

typedef struct req {
    char *buf;
    size_t len, cap;
} req_t;

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int s = 0; s < 64 && *p < end; s += 7) {
        uint8_t c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Counts fields `want` (LEN) of a message; calls back into streams for field 1 at the top. */
static int walk(const uint8_t *p, const uint8_t *end, int top, uint64_t *streams, uint64_t *entries)
{
    while (p < end) {
        uint64_t tag, len;
        if (varint(&p, end, &tag) < 0) {
            return -1;
        }
        switch (tag & 7) {
        case 0:
            if (varint(&p, end, &len) < 0) {
                return -1;
            }
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2:
            if (varint(&p, end, &len) < 0 || len > (uint64_t)(end - p)) {
                return -1;
            }
            if (top && tag >> 3 == 1) {
                (*streams)++;
                if (walk(p, p + len, 0, streams, entries) < 0) {
                    return -1;
                }
            } else if (!top && tag >> 3 == 2) {
                (*entries)++;
            }
            p += len;
            break;
        default:
            return -1;
        }
    }
    return p == end ? 0 : -1;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)cls;
    (void)version;
    if (strcmp(method, "GET") == 0) {
        char out[256];
        snprintf(out, sizeof(out),
                 "{\"entries\":%llu,\"streams\":%llu,\"requests\":%llu,\"errors\":%llu}\n",
                 (unsigned long long)g_entries, (unsigned long long)g_streams,
                 (unsigned long long)g_requests, (unsigned long long)g_errors);
        return reply(c, 200, out);
    }
    req_t *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof(*q));
        *con_cls = q;
        return q ? MHD_YES : MHD_NO;
    }
    if (*size) {
        if (q->len + *size > SINK_MAX_BODY) {
            return MHD_NO;
        }
        if (q->len + *size > q->cap) {
            size_t nc = (q->len + *size) * 2;
            char *np = realloc(q->buf, nc);
            if (!np) {
                return MHD_NO;
            }
            q->buf = np;
            q->cap = nc;
        }
        memcpy(q->buf + q->len, data, *size);
        q->len += *size;
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/loki/api/v1/push") != 0) {
        return reply(c, 404, "404 page not found\n");
    }
    size_t n = 0;
    char *raw = NULL;
    uint64_t streams = 0, entries = 0;
    int ok = snappy_uncompressed_length(q->buf, q->len, &n) == SNAPPY_OK && n <= SINK_MAX_BODY &&
             (raw = malloc(n ? n : 1)) && snappy_uncompress(q->buf, q->len, raw, &n) == SNAPPY_OK &&
             walk((const uint8_t *)raw, (const uint8_t *)raw + n, 1, &streams, &entries) == 0;
    free(raw);
    if (!ok) {
        atomic_fetch_add(&g_errors, 1);
        return reply(c, 400, "malformed push\n");
    }
    atomic_fetch_add(&g_entries, entries);
    atomic_fetch_add(&g_streams, streams);
    atomic_fetch_add(&g_requests, 1);
    return reply(c, 204, "");
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    req_t *q = *con_cls;
    if (q) {
        free(q->buf);
        free(q);
        *con_cls = NULL;
    }
}

static void on_sig(int s)
{
    (void)s;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"port", 1, 0, 'p'}, {0, 0, 0, 0}};
    int o, port = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'p') {
            port = atoi(optarg);
        } else {
            fprintf(stderr, "usage: loki_sink --port PORT\n");
            return 2;
        }
    }
    if (port <= 0) {
        fprintf(stderr, "usage: loki_sink --port PORT\n");
        return 2;
    }
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)port, NULL, NULL, handler, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_THREAD_POOL_SIZE, 2u,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "loki_sink: cannot listen on %d\n", port);
        return 1;
    }
    while (!g_stop) {
        pause();
    }
    MHD_stop_daemon(d);
    return 0;
}
