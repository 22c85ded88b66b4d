/*
 * receiver_pyroscope.c - the `pyroscope` receiver: Pyroscope's legacy ingest API
 * `POST /ingest?name=app{k=v}&from=&until=&format=&sampleRate=&spyName=&units=&aggregationType=`
 * so existing Pyroscope SDKs can send to meltp. `format=pprof` takes a raw or multipart
 * (`profile` field) pprof body, gzip or not; `format=folded` (the default, alias `groups`) and
 * `format=lines` take text. Profiles become OTLP profiles (pprof_conv.c) for the receiver's
 * `profiles` pipelines; pprof bodies are also kept verbatim in Profile.original_payload so the
 * pyroscope exporter forwards them without re-encoding. Answers follow Pyroscope: 200 with an
 * empty body, 400 with a plain-text reason for bad input, 413 too large, 429/503 back-pressure.
 */
#include "component.h"
#include "server.h"
#include "codec.h"
#include "pprof_conv.h"
#include "recv.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>

typedef struct pyro_rcfg {
    char *endpoint;
    int64_t max_body;
    int64_t max_decoded;
    int64_t threads;
    tls_server_cfg_t tls;
    char *auth; /* resolved by the service into receiver_t.auth */
} pyro_rcfg_t;

static const cfg_field_t pyro_fields[] = {
    {"endpoint", CFG_T_STRING, "127.0.0.1:4040", 0, offsetof(pyro_rcfg_t, endpoint), NULL,
     "host:port to serve POST /ingest on (Pyroscope's default port is 4040)"},
    {"max_request_body_size", CFG_T_BYTES, "20MiB", 0, offsetof(pyro_rcfg_t, max_body), NULL,
     "largest body accepted, on the wire and after gunzip (413 above)"},
    {"max_decoded_size", CFG_T_BYTES, "0", 0, offsetof(pyro_rcfg_t, max_decoded), NULL,
     "most memory decoding one request may take (multipart parts, gunzipped and decoded "
     "profile, OTLP conversion); over it 413 decode_limit; 0 = 8 x max_request_body_size"},
    {"auth.authenticator", CFG_T_STRING, "", 0, offsetof(pyro_rcfg_t, auth), NULL,
     "id of a bearertokenauth or basicauth extension: requests without valid credentials get "
     "401 before their body is read"},
    {"threads", CFG_T_INT, "2", 0, offsetof(pyro_rcfg_t, threads), NULL, "HTTP worker threads"},
    TLS_SERVER_FIELDS("", pyro_rcfg_t, tls),
};

static void pyro_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    pyro_rcfg_t *cfg = cfgp;
    recv_server_check(c, node, path, "", cfg->endpoint, cfg->max_body, cfg->max_decoded,
                      cfg->threads, &cfg->tls);
}

typedef struct pyro_state {
    http_server_t *srv;
    receiver_t *r;
    char labels[128];
    recv_counters_t cnt;
} pyro_state_t;

static void count_request(pyro_state_t *st, int code, const char *reason)
{
    recv_count(&st->cnt, code, reason, 0, false);
}

static void reply_error(pyro_state_t *st, http_req_t *r, int status, const char *reason,
                        const char *retry_after, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void reply_error(pyro_state_t *st, http_req_t *r, int status, const char *reason,
                        const char *retry_after, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) - 1 ? (size_t)n : sizeof(msg) - 2;
    msg[len++] = '\n';
    msg[len] = 0;
    http_respond(r, status, "text/plain; charset=utf-8", msg, len,
                 retry_after ? "Retry-After" : NULL, retry_after);
    count_request(st, status, reason);
    mt_log(MT_LOG_DEBUG, "receiver %s: %s %s -> %d %s", st->r->id, r->method, r->path, status, msg);
}

static void pyro_refused(void *arg, http_req_t *r, int status, const char *reason)
{
    (void)r;
    count_request(arg, status, reason);
}

static void pyro_begin(void *arg, http_req_t *r)
{
    pyro_state_t *st = arg;
    pyro_rcfg_t *cfg = st->r->cfg;
    if (strcmp(r->path, "/ingest") != 0) {
        reply_error(st, r, 404, "not_found", NULL, "no endpoint at %s (use POST /ingest)", r->path);
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        const char *hdrs[] = {"Allow", "POST", NULL};
        static const char msg[] = "method not allowed; use POST\n";
        http_respond_headers(r, 405, "text/plain; charset=utf-8", msg, sizeof(msg) - 1, hdrs);
        count_request(st, 405, "method_not_allowed");
        return;
    }
    recv_access_t ac;
    if (!recv_http_access(st->r->auth, r, &ac)) {
        reply_error(st, r, ac.status, ac.reason, NULL, "%s", ac.msg);
        return;
    }
    if (st->r->npipes[MT_SIG_PROFILES] == 0) {
        reply_error(st, r, 404, "no_pipeline", NULL,
                    "receiver %s is not part of any profiles pipeline", st->r->id);
        return;
    }
    const char *cl = http_header(r, "Content-Length");
    unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
    if (clen > (unsigned long long)cfg->max_body) {
        reply_error(st, r, 413, "too_large", NULL,
                    "request body of %llu bytes exceeds max_request_body_size %lld", clen,
                    (long long)cfg->max_body);
        return;
    }
    int64_t limit = atomic_load(&mt_mem_limit);
    if (limit > 0 && atomic_load(&mt_mem_in_use) + (int64_t)clen > limit) {
        reply_error(st, r, 503, "memory_limit", "1",
                    "memory limit reached (%lld bytes in use); retry later",
                    (long long)atomic_load(&mt_mem_in_use));
        return;
    }
}

static const char *query(http_req_t *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* Parses a UNIX-seconds query value (Pyroscope also accepts ms/us/ns-sized numbers: scaled
 * by magnitude). Returns 0 when absent; -1 when not a number. */
static int parse_time(const char *v, uint64_t *ns)
{
    *ns = 0;
    if (!v || !*v) {
        return 0;
    }
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || v[0] == '-') {
        return -1;
    }
    /* seconds until ~year 5138; then milliseconds, microseconds, nanoseconds */
    if (x < 100000000000ull) {
        *ns = x * 1000000000ull;
    } else if (x < 100000000000000ull) {
        *ns = x * 1000000ull;
    } else if (x < 100000000000000000ull) {
        *ns = x * 1000ull;
    } else {
        *ns = x;
    }
    return 0;
}

/* Answers a decode that ran out of room in the arena (the request's max_decoded_size: 413
 * decode_limit; the memory limit: 503 memory_limit) and returns 1; 0 when rc is another
 * failure, left to the caller. */
static int refused(pyro_state_t *st, http_req_t *r, const arena_t *a, size_t dcap, int rc)
{
    if (rc == MT_OK || !(arena_over_cap(a) || arena_over_limit(a))) {
        return 0;
    }
    int status;
    const char *reason;
    char msg[256];
    recv_decode_refusal(a, dcap, &status, &reason, msg, sizeof(msg));
    reply_error(st, r, status, reason, status == 503 ? "1" : NULL, "%s", msg);
    return 1;
}

static void pyro_handle(pyro_state_t *st, http_req_t *r, arena_t *a, size_t dcap)
{
    pyro_rcfg_t *cfg = st->r->cfg;
    size_t cap = (size_t)cfg->max_body;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (r->too_big) {
        reply_error(st, r, 413, "too_large", NULL,
                    "request body exceeds max_request_body_size %lld bytes",
                    (long long)cfg->max_body);
        return;
    }
    tm_add(st->cnt.bytes, r->len);
    pprof_meta_t m;
    memset(&m, 0, sizeof(m));
    char *app;
    pprof_label_t *labels;
    int rc = pprof_parse_name(query(r, "name"), a, &app, &labels, &m.nlabels, &eb);
    if (refused(st, r, a, dcap, rc)) {
        return;
    }
    if (rc != MT_OK) {
        reply_error(st, r, rc == MT_ENOMEM ? 503 : 400,
                    rc == MT_ENOMEM ? "out_of_memory" : "bad_name", NULL, "%s", eb.msg);
        return;
    }
    m.app = app;
    m.labels = labels;
    if (parse_time(query(r, "from"), &m.from_ns) < 0 ||
        parse_time(query(r, "until"), &m.until_ns) < 0) {
        reply_error(st, r, 400, "bad_time", NULL, "from/until must be UNIX timestamps");
        return;
    }
    if (m.until_ns && !m.from_ns) {
        m.from_ns = m.until_ns;
    }
    if (m.from_ns && m.until_ns && m.until_ns < m.from_ns) {
        reply_error(st, r, 400, "bad_time", NULL, "until is before from");
        return;
    }
    const char *sr = query(r, "sampleRate");
    if (sr && *sr) {
        char *end;
        long long v = strtoll(sr, &end, 10);
        if (*end || v <= 0 || v > 1000000000) {
            reply_error(st, r, 400, "bad_sample_rate", NULL,
                        "sampleRate \"%.40s\" is not a positive integer (Hz)", sr);
            return;
        }
        m.sample_rate = v;
    }
    const char *spy = query(r, "spyName");
    m.spy_name = spy && *spy ? spy : NULL;
    m.units = query(r, "units");
    m.aggregation = query(r, "aggregationType");

    const char *ct = http_header(r, "Content-Type");
    const char *format = query(r, "format");
    char boundary[80];
    const char *why = NULL;
    int multipart = pprof_multipart_boundary(ct, boundary, sizeof(boundary), &why);
    if (!format || !*format) {
        if (ct && strncasecmp(ct, "binary/octet-stream+", 20) == 0) {
            reply_error(st, r, 400, "unsupported_format", NULL,
                        "Content-Type %.60s (trie/tree) is not supported; use format=pprof or "
                        "format=folded",
                        ct);
            return;
        }
        format = multipart || (ct && strncasecmp(ct, "multipart/", 10) == 0) ? "pprof" : "folded";
    }
    const uint8_t *body = r->body ? r->body : (const uint8_t *)"";
    size_t blen = r->len;
    pprof_otlp_req_t *req = NULL;
    uint64_t items = 0;
    if (strcmp(format, "pprof") == 0) {
        if (ct && strncasecmp(ct, "multipart/", 10) == 0) {
            if (!multipart) {
                reply_error(st, r, 400, "bad_multipart", NULL, "%s", why);
                return;
            }
            pprof_part_t parts[PPROF_MAX_PARTS];
            size_t np = 0;
            rc = pprof_multipart_parse(boundary, body, blen, a, parts, &np, &eb);
            if (refused(st, r, a, dcap, rc)) {
                return;
            }
            if (rc != MT_OK) {
                reply_error(st, r, rc == MT_ENOMEM ? 503 : 400,
                            rc == MT_ENOMEM ? "out_of_memory" : "bad_multipart", NULL, "%s",
                            eb.msg);
                return;
            }
            const pprof_part_t *prof = NULL;
            for (size_t i = 0; i < np; i++) {
                if (strcmp(parts[i].name, "profile") == 0) {
                    if (prof) {
                        reply_error(st, r, 400, "bad_multipart", NULL,
                                    "multipart body has two \"profile\" fields");
                        return;
                    }
                    prof = &parts[i];
                }
                /* prev_profile and sample_type_config are accepted and not used: the OTLP
                 * profile keeps every sample type of the pprof */
            }
            if (!prof) {
                reply_error(st, r, 400, "bad_multipart", NULL,
                            "multipart body has no \"profile\" field");
                return;
            }
            body = prof->data;
            blen = prof->len;
        }
        m.original = body;
        m.original_len = blen;
        const uint8_t *pb = body;
        size_t pblen = blen;
        if (blen >= 2 && body[0] == 0x1f && body[1] == 0x8b) {
            uint8_t *out = NULL;
            rc = codec_decompress(CODEC_GZIP, body, blen, cap, a, &out, &pblen, &eb);
            if (refused(st, r, a, dcap, rc)) {
                return;
            }
            if (rc == MT_ETOOBIG) {
                reply_error(st, r, 413, "too_large", NULL,
                            "gunzipped profile exceeds max_request_body_size %lld bytes",
                            (long long)cfg->max_body);
                return;
            } else if (rc != MT_OK) {
                reply_error(st, r, rc == MT_ENOMEM ? 503 : 400,
                            rc == MT_ENOMEM ? "out_of_memory" : "bad_compression", NULL,
                            "corrupt gzip profile: %s", eb.set ? eb.msg : mt_strerror(rc));
                return;
            }
            pb = out;
        }
        if (pblen == 0) {
            reply_error(st, r, 400, "invalid_data", NULL, "empty pprof profile");
            return;
        }
        rc = pprof_to_otlp(pb, pblen, &m, a, &req, &items, &eb);
    } else if (strcmp(format, "folded") == 0 || strcmp(format, "groups") == 0 ||
               strcmp(format, "lines") == 0) {
        if (multipart) {
            reply_error(st, r, 400, "unsupported_format", NULL,
                        "format=%s takes a text body, not multipart", format);
            return;
        }
        rc = pprof_folded_to_otlp((const char *)body, blen, strcmp(format, "lines") == 0, &m, a,
                                  &req, &items, &eb);
    } else {
        reply_error(st, r, 400, "unsupported_format", NULL,
                    "format \"%.40s\" is not supported; use pprof, folded or lines", format);
        return;
    }
    if (refused(st, r, a, dcap, rc)) {
        return;
    }
    if (rc != MT_OK) {
        int oom = rc == MT_ENOMEM;
        reply_error(st, r, oom ? 503 : 400, oom ? "out_of_memory" : "invalid_data",
                    oom ? "1" : NULL, "%s", eb.set ? eb.msg : mt_strerror(rc));
        return;
    }
    const char *org = r->tenant; /* decided in pyro_begin, before the body */
    tm_add(st->cnt.items_in, items);
    consume_result_t res;
    memset(&res, 0, sizeof(res));
    pipeline_consume(st->r->pipes[MT_SIG_PROFILES], st->r->npipes[MT_SIG_PROFILES], MT_SIG_PROFILES,
                     &req->base, NULL, 0, items, org, a, &res);
    if (res.status == MT_AGAIN) {
        reply_error(st, r, 429, "queue_full", "1", "%s", res.msg);
        return;
    }
    if (res.status == MT_ETOOBIG) {
        reply_error(st, r, 413, "batch_too_large", NULL, "%s", res.msg);
        return;
    }
    if (res.status == MT_EINVAL) {
        reply_error(st, r, 400, "rejected", NULL, "%s", res.msg);
        return;
    }
    if (res.status != MT_OK) {
        reply_error(st, r, 503, res.status == MT_ENOMEM ? "out_of_memory" : "pipeline_error", "1",
                    "%s", res.msg[0] ? res.msg : mt_strerror(res.status));
        return;
    }
    tm_add(st->cnt.items_ok, items);
    http_respond(r, 200, NULL, "", 0, NULL, NULL);
    count_request(st, 200, NULL);
}

static void pyro_complete(void *arg, http_req_t *r)
{
    pyro_state_t *st = arg;
    pyro_rcfg_t *cfg = st->r->cfg;
    size_t dcap = recv_decode_cap(cfg->max_decoded, cfg->max_body);
    arena_t *a = recv_arena(dcap);
    if (!a) {
        reply_error(st, r, 503, "out_of_memory", "1", "out of memory");
        return;
    }
    pyro_handle(st, r, a, dcap);
    recv_arena_done(a);
}

static int pyro_start(receiver_t *rv, mt_errbuf_t *eb)
{
    pyro_rcfg_t *cfg = rv->cfg;
    pyro_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->r = rv;
    snprintf(st->labels, sizeof(st->labels), "receiver=\"%s\",signal=\"profiles\"", rv->id);
    recv_counters_init(&st->cnt, st->labels, rv->id);
    rv->state = st;
    http_handler_t h = {
        .begin = pyro_begin, .complete = pyro_complete, .arg = st, .refused = pyro_refused};
    if (recv_http_start(rv, &st->srv, cfg->endpoint, cfg->threads, cfg->max_body, &cfg->tls, &h,
                        eb)) {
        return MT_ERR;
    }
    mt_log(MT_LOG_INFO, "receiver %s: Pyroscope ingest on %s/ingest", rv->id, cfg->endpoint);
    return MT_OK;
}

static void pyro_stop(receiver_t *rv)
{
    pyro_state_t *st = rv->state;
    if (st) {
        recv_http_stop(rv, st->srv, &st->cnt, 1);
    }
}

const receiver_ops_t receiver_pyroscope_ops = {
    .type = "pyroscope",
    .fields = pyro_fields,
    .nfields = MT_ARRAY_LEN(pyro_fields),
    .cfg_size = sizeof(pyro_rcfg_t),
    .signals = SIG_BIT(MT_SIG_PROFILES),
    .help = "Pyroscope ingest API (POST /ingest: pprof raw/multipart/gzip, folded, lines; "
            "-> OTLP profiles)",
    .validate = pyro_validate,
    .start = pyro_start,
    .stop = pyro_stop,
};
