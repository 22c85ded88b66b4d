/*
 * validate_mode_input.c - where `meltp validate` gets its requests: input files (OTLP protobuf
 * or JSON bodies, gzip / zstd, file-exporter JSON lines, remote-write 1.0 / 2.0), each read
 * with a cap and run through the mirrored processors, and --listen mode, where a pipeline
 * observer of the running service feeds the report. Part of the validate/validate_mode module
 * (validate_mode_int.h).
 */
#include "validate_mode_int.h"
#include "otlp_json.h"
#include "codec.h"
#include "prw_decode.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- inputs ---------------------------------------------------------------------------------- */

/* Reads a whole file (capped). Returns MT_OK, or an error with eb filled. */
static int slurp(const char *path, uint8_t **out, size_t *len, mt_errbuf_t *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mt_failf(eb, "%s: %s", path, strerror(errno));
        return MT_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        mt_failf(eb, "%s: not a regular file", path);
        fclose(f);
        return MT_EIO;
    }
    if ((uint64_t)st.st_size > VM_MAX_FILE_BYTES) {
        mt_failf(eb, "%s: larger than %zu bytes", path, VM_MAX_FILE_BYTES);
        fclose(f);
        return MT_ETOOBIG;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        mt_failf(eb, "%s: out of memory", path);
        return MT_ENOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(buf);
        mt_failf(eb, "%s: read error", path);
        return MT_EIO;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return MT_OK;
}

/* gzip / zstd by magic bytes; anything else is taken as it is. */
static int maybe_decompress(const uint8_t *in, size_t len, arena_t *a, const uint8_t **out,
                            size_t *out_len, mt_errbuf_t *eb)
{
    codec_t c = CODEC_NONE;
    if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
        c = CODEC_GZIP;
    } else if (len >= 4 && in[0] == 0x28 && in[1] == 0xb5 && in[2] == 0x2f && in[3] == 0xfd) {
        c = CODEC_ZSTD;
    }
    if (c == CODEC_NONE) {
        *out = in;
        *out_len = len;
        return MT_OK;
    }
    uint8_t *o = NULL;
    int rc = codec_decompress(c, in, len, VM_MAX_BODY_BYTES, a, &o, out_len, eb);
    *out = o;
    return rc;
}

static int looks_json(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) {
        i++;
    }
    return i < n && p[i] == '{';
}

/* Decodes one request body (protobuf or JSON) and runs it. */
static void one_body(vm_t *v, mt_signal_t s, const uint8_t *data, size_t len, int json, arena_t *a,
                     const char *where)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *msg =
        json ? otlp_json_decode(otlp_request_desc(s), (const char *)data, len, a, &eb)
             : otlp_unpack(s, data, len, a, &eb);
    if (msg && !json && otlp_validate_utf8(msg, &eb) != MT_OK) {
        msg = NULL;
    }
    uint64_t items = 0;
    if (msg && otlp_check(s, msg, &items, &eb) != MT_OK) {
        msg = NULL;
    }
    if (!msg) {
        char m[700];
        snprintf(m, sizeof(m), "invalid OTLP %s %s: %s", mt_signal_name(s),
                 json ? "JSON" : "protobuf", eb.msg);
        vr_input_error(&v->rep, where, m);
        return;
    }
    if (items) {
        vm_run_request(v, s, msg, items, a, where);
    }
}

/* Which signal a file-exporter line holds: its first key (resourceSpans, ...). */
static int line_signal(const char *p, size_t n)
{
    static const struct {
        const char *camel, *snake;
        mt_signal_t s;
    } keys[] = {
        {"\"resourceSpans\"", "\"resource_spans\"", MT_SIG_TRACES},
        {"\"resourceMetrics\"", "\"resource_metrics\"", MT_SIG_METRICS},
        {"\"resourceLogs\"", "\"resource_logs\"", MT_SIG_LOGS},
        {"\"resourceProfiles\"", "\"resource_profiles\"", MT_SIG_PROFILES},
    };
    size_t i = 0;
    while (i < n && p[i] != '{') {
        i++;
    }
    i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    for (size_t k = 0; k < MT_ARRAY_LEN(keys); k++) {
        size_t a = strlen(keys[k].camel), b = strlen(keys[k].snake);
        if ((n - i >= a && memcmp(p + i, keys[k].camel, a) == 0) ||
            (n - i >= b && memcmp(p + i, keys[k].snake, b) == 0)) {
            return (int)keys[k].s;
        }
    }
    return -1;
}

/* An OTLP/JSON lines file as the `file` exporter writes it. */
static void input_jsonl(vm_t *v, const char *path, const uint8_t *data, size_t len, arena_t *a)
{
    size_t lineno = 0;
    for (size_t off = 0; off < len;) {
        const uint8_t *nl = memchr(data + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - data) : len;
        const char *line = (const char *)data + off;
        size_t n = end - off;
        lineno++;
        off = end + 1;
        size_t ws = 0;
        while (ws < n && (line[ws] == ' ' || line[ws] == '\t' || line[ws] == '\r')) {
            ws++;
        }
        if (ws == n) {
            continue;
        }
        char where[PATH_MAX + 32];
        snprintf(where, sizeof(where), "%s:%zu", path, lineno);
        int s = line_signal(line, n);
        if (s < 0) {
            vr_input_error(&v->rep, where,
                           "not an OTLP/JSON request (expected resourceSpans, "
                           "resourceMetrics, resourceLogs or resourceProfiles first)");
            continue;
        }
        arena_reset(a);
        one_body(v, (mt_signal_t)s, (const uint8_t *)line, n, 1, a, where);
    }
}

/* Remote-write 2.0 bodies use fields 4 (symbols) and 5 (timeseries); 1.0 uses 1 and 3. */
static int prw_version(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t tag = 0;
        int shift = 0;
        while (i < n && shift < 64) {
            tag |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if (!(p[i++] & 0x80)) {
                break;
            }
        }
        uint64_t field = tag >> 3;
        if (field == 4 || field == 5) {
            return 2;
        }
        if (field == 1 || field == 3) {
            return 1;
        }
        if ((tag & 7) != 2) {
            return 1;
        }
        uint64_t l = 0;
        shift = 0;
        while (i < n && shift < 64) {
            l |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if (!(p[i++] & 0x80)) {
                break;
            }
        }
        if (l > n - i) {
            return 1;
        }
        i += (size_t)l;
    }
    return 1;
}

static void input_remotewrite(vm_t *v, const char *path, const uint8_t *data, size_t len,
                              arena_t *a)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    uint8_t *raw = NULL;
    size_t rlen = 0;
    char m[700];
    if (codec_decompress(CODEC_SNAPPY, data, len, VM_MAX_BODY_BYTES, a, &raw, &rlen, &eb) !=
        MT_OK) {
        snprintf(m, sizeof(m), "remote write: %s", eb.msg);
        vr_input_error(&v->rep, path, m);
        return;
    }
    Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req = NULL;
    prw_stats_t st;
    if (prw_to_otlp(prw_version(raw, rlen), raw, rlen, a, &req, &st, &eb) != MT_OK) {
        snprintf(m, sizeof(m), "remote write: %s", eb.msg);
        vr_input_error(&v->rep, path, m);
        return;
    }
    if (st.points) {
        vm_run_request(v, MT_SIG_METRICS, &req->base, st.points, a, path);
    }
}

/* One --input argument: "KIND:PATH" or a self-describing OTLP/JSON lines PATH. Returns MT_OK
 * or MT_EIO (unreadable: a usage error, not a finding). */
int vm_run_input(vm_t *v, const char *arg, mt_errbuf_t *eb)
{
    /* the first four are mt_signal_t in order; remotewrite: is a kind of its own */
    enum { VM_INPUT_JSONL = -1, VM_INPUT_REMOTEWRITE = MT_SIG_COUNT };
    static const char *kinds[] = {"traces:", "metrics:", "logs:", "profiles:", "remotewrite:"};
    _Static_assert(MT_SIG_COUNT == 4, "kinds[] lists the signals, then remotewrite:");
    int kind = VM_INPUT_JSONL;
    const char *path = arg;
    for (int k = 0; k < (int)MT_ARRAY_LEN(kinds); k++) {
        if (strncmp(arg, kinds[k], strlen(kinds[k])) == 0) {
            kind = k;
            path = arg + strlen(kinds[k]);
        }
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = slurp(path, &buf, &len, eb);
    if (rc != MT_OK) {
        return rc;
    }
    arena_t *fa = arena_create(64 * 1024, VM_MAX_REQUEST_ARENA); /* file-lifetime data */
    arena_t *a = arena_create(256 * 1024, VM_MAX_REQUEST_ARENA); /* per request */
    if (!fa || !a) {
        arena_destroy(fa);
        arena_destroy(a);
        free(buf);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    if (kind == VM_INPUT_REMOTEWRITE) {
        input_remotewrite(v, path, buf, len, a);
    } else {
        const uint8_t *data = NULL;
        size_t dlen = 0;
        mt_errbuf_t de;
        mt_errbuf_clear(&de);
        if (maybe_decompress(buf, len, fa, &data, &dlen, &de) != MT_OK) {
            vr_input_error(&v->rep, path, de.msg);
        } else if (kind == VM_INPUT_JSONL) {
            if (dlen && !looks_json(data, dlen)) {
                vr_input_error(&v->rep, path,
                               "not OTLP/JSON lines; name binary request bodies "
                               "by kind (traces:PATH, metrics:PATH, logs:PATH, profiles:PATH, "
                               "remotewrite:PATH)");
            } else {
                input_jsonl(v, path, data, dlen, a);
            }
        } else {
            one_body(v, (mt_signal_t)kind, data, dlen, looks_json(data, dlen), a, path);
        }
    }
    arena_destroy(a);
    arena_destroy(fa);
    free(buf);
    return MT_OK;
}

/* ---- listen mode ----------------------------------------------------------------------------- */

void vm_listen_observer(void *arg, mt_signal_t s, const uint8_t *pb, size_t len, uint64_t items,
                        const char *tenant)
{
    (void)tenant;
    vm_t *v = arg;
    pthread_mutex_lock(&v->mu);
    arena_reset(v->listen_arena);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    ProtobufCMessage *msg = otlp_unpack(s, pb, len, v->listen_arena, &eb);
    if (msg) {
        v->rep.requests++;
        v->rep.items += items;
        v->listen_requests++;
        /* the pipeline's processors already ran; schemas are checked on what they delivered */
        for (size_t i = 0; i < v->nstages[s]; i++) {
            vm_check_schema(v, v->stages[s][i].schema, s, msg);
        }
        vm_check_schema(v, v->extra_schema, s, msg);
        /* what the pipeline delivered: findings its guards removed are not seen here */
        vp_scan_request(v->pii, &v->rep, s, msg, NULL, 0);
        vm_analyze(v, s, msg);
    } else {
        vr_input_error(&v->rep, "listen", eb.msg);
    }
    pthread_mutex_unlock(&v->mu);
}

int vm_run_listen(vm_t *v, service_t *svc, int64_t ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before threads start: they inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    v->listen_arena = arena_create(256 * 1024, VM_MAX_REQUEST_ARENA);
    if (!v->listen_arena || pipeline_add_observer(vm_listen_observer, v) != MT_OK) {
        fprintf(stderr, "meltp validate: cannot observe the pipelines\n");
        return 2;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (service_start(svc, &eb) != MT_OK) {
        pipeline_remove_observer(vm_listen_observer, v);
        fprintf(stderr, "meltp validate: cannot start the receivers: %s\n", eb.msg);
        return 2;
    }
    int tty = isatty(STDERR_FILENO);
    uint64_t end = mt_now_ns() + (uint64_t)ms * 1000000ull;
    for (;;) {
        uint64_t now = mt_now_ns();
        if (now >= end) {
            break;
        }
        if (tty) {
            pthread_mutex_lock(&v->mu);
            fprintf(stderr,
                    "\rmeltp validate: listening, %llus left, %llu requests, %llu items, "
                    "%zu services   ",
                    (unsigned long long)((end - now + 999999999ull) / 1000000000ull),
                    (unsigned long long)v->rep.requests, (unsigned long long)v->rep.items,
                    v->rep.nservices);
            pthread_mutex_unlock(&v->mu);
        }
        uint64_t left = end - now;
        uint64_t step = left < 1000000000ull ? left : 1000000000ull;
        struct timespec ts = {(time_t)(step / 1000000000ull), (long)(step % 1000000000ull)};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            break; /* stop early, still report */
        }
    }
    if (tty) {
        fputc('\n', stderr);
    }
    /* stop receivers (and drain exporters) before the observer goes away */
    return 0;
}
