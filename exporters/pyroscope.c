/*
 * pyroscope.c - the `pyroscope` exporter: OTLP profiles -> pprof (profile.proto, gzip) pushed
 * to Pyroscope's `POST <endpoint>/ingest?name=<app>{labels}&from=&until=&spyName=` as
 * multipart/form-data (file fields `profile` and `sample_type_config`), one request per pprof.
 * No `format` parameter: with format=pprof the server reads the whole body as a raw pprof and
 * refuses a multipart one (422 "proto: wrong wireType"); the multipart form is chosen over a
 * raw body because only it carries sample_type_config, without which the server drops every
 * sample type outside its own table (cpu/nanoseconds, wall, ...) and, for want of a previous
 * profile, the cumulative ones (alloc_*, contentions, delay). The server stores each type as
 * `<app>.<display>` (samples -> cpu, ...): an app name that already ends in that suffix
 * (`app.cpu` from a folded client) loses it on the way so it is stored as the client named it
 * (pyro_legacy.c). App names are cut to Pyroscope's [A-Za-z0-9_.-], label names to [A-Za-z0-9_].
 * Profiles that arrived through a pyroscope receiver carry their pprof in original_payload and
 * are forwarded byte for byte (gzipped first if they came in raw); one pprof with several
 * sample types became several OTLP profiles with the same payload and is sent once.
 * Labels: service.name names the app; resource attributes become labels by the label policy
 * (all, or only promote_resource_attributes) plus external_labels. 429/5xx and transport errors
 * retry (MT_ERETRY, Retry-After honoured); other 4xx are permanent with the server's message.
 * A retry resends the whole batch, so profiles of a batch sent before the failure are sent
 * again (Pyroscope has no idempotency key for /ingest).
 */
#include "component.h"
#include "otlp.h"
#include "codec.h"
#include "httpc.h"
#include "pprof_conv.h"
#include "pyro_legacy.h"

#include <curl/curl.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

typedef struct pyro_cfg {
    exporter_common_t common;
    char *endpoint;
    char *tenant_id;
    cfg_strmap_t headers;
    int resource_to_labels;
    cfg_strlist_t promote;
    cfg_strmap_t external_labels;
    char *spy_name;
    tls_client_cfg_t tls;
    int64_t max_response;
    char *auth; /* resolved by the service into exporter_t.auth */
} pyro_cfg_t;

static const cfg_field_t pyro_fields[] = {
    {"endpoint", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(pyro_cfg_t, endpoint), NULL,
     "Pyroscope base URL, e.g. http://pyroscope:4040 (/ingest is appended)"},
    {"auth.authenticator", CFG_T_STRING, "", 0, offsetof(pyro_cfg_t, auth), NULL,
     "id of a bearertokenauth (token) or basicauth (client_auth) extension: every request "
     "carries its Authorization header"},
    {"tenant_id", CFG_T_STRING, NULL, 0, offsetof(pyro_cfg_t, tenant_id), NULL,
     "X-Scope-OrgID to send; default: the tenant the data came in with"},
    {"headers", CFG_T_STRMAP, NULL, 0, offsetof(pyro_cfg_t, headers), NULL,
     "extra request headers"},
    {"resource_to_labels", CFG_T_BOOL, "true", 0, offsetof(pyro_cfg_t, resource_to_labels), NULL,
     "every resource attribute (but service.name and pyroscope.*) becomes a label"},
    {"promote_resource_attributes", CFG_T_STRLIST, NULL, 0, offsetof(pyro_cfg_t, promote), NULL,
     "with resource_to_labels false: only these resource attributes become labels"},
    {"external_labels", CFG_T_STRMAP, NULL, 0, offsetof(pyro_cfg_t, external_labels), NULL,
     "labels added to every profile (resource labels of the same name win)"},
    {"spy_name", CFG_T_STRING, "meltp", 0, offsetof(pyro_cfg_t, spy_name), NULL,
     "spyName sent when the profile does not say (resource pyroscope.spy_name)"},
    TLS_CLIENT_FIELDS(pyro_cfg_t, tls),
    {"max_response_size", CFG_T_BYTES, "64KiB", 0, offsetof(pyro_cfg_t, max_response), NULL,
     "largest response body read"},
};

static int label_value_ok(const char *v)
{
    if (!*v) {
        return 0;
    }
    for (const char *p = v; *p; p++) {
        if (*p == '{' || *p == '}' || *p == ',' || *p == '=' || (unsigned char)*p < 0x20) {
            return 0;
        }
    }
    return 1;
}

static void pyro_validate(cfg_ctx_t *c, const void *cfgp, const char *path, const cfg_node_t *node)
{
    const pyro_cfg_t *cfg = cfgp;
    cfg_check_http_url(c, node, path, "endpoint", cfg->endpoint);
    tls_client_cfg_check(c, node, path, &cfg->tls);
    if (cfg->tenant_id && (strlen(cfg->tenant_id) > MT_TENANT_MAX || !*cfg->tenant_id)) {
        cfg_error_key(c, node, path, "tenant_id", "must be 1..%d characters", MT_TENANT_MAX);
    }
    for (size_t i = 0; i < cfg->external_labels.n; i++) {
        if (!label_value_ok(cfg->external_labels.vals[i])) {
            cfg_error_key(
                c, node, path, "external_labels",
                "value of %s must be non-empty without { } , =", cfg->external_labels.keys[i]);
        }
    }
    if (cfg->resource_to_labels && cfg->promote.n) {
        cfg_error_key(c, node, path, "promote_resource_attributes",
                      "only applies with resource_to_labels: false");
    }
}

typedef struct pstate {
    char *url;
    struct curl_slist *hdrs;
    int static_tenant;
} pstate_t;

typedef httpc_worker_t pworker_t;

static int pyro_create(exporter_t *ex, mt_errbuf_t *eb)
{
    pyro_cfg_t *cfg = ex->cfg;
    tls_client_warn(&cfg->tls, ex->id);
    pstate_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    size_t n = strlen(cfg->endpoint);
    int slash = n && cfg->endpoint[n - 1] == '/';
    if (asprintf(&st->url, "%s%s", cfg->endpoint, slash ? "ingest" : "/ingest") < 0) {
        free(st);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    struct curl_slist *h = NULL;
    h = httpc_headers_append(h, cfg->headers.keys, cfg->headers.vals, cfg->headers.n,
                             &st->static_tenant);
    if (cfg->tenant_id && !st->static_tenant) {
        char line[128];
        snprintf(line, sizeof(line), "X-Scope-OrgID: %s", cfg->tenant_id);
        h = curl_slist_append(h, line);
        st->static_tenant = 1;
    }
    st->hdrs = h;
    ex->state = st;
    return MT_OK;
}

static void pyro_destroy(exporter_t *ex)
{
    pstate_t *st = ex->state;
    if (st) {
        free(st->url);
        curl_slist_free_all(st->hdrs);
        free(st);
        ex->state = NULL;
    }
}

static void *pyro_worker_init(exporter_t *ex)
{
    pyro_cfg_t *cfg = ex->cfg;
    return httpc_worker_create((size_t)cfg->max_response);
}

static void pyro_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    httpc_worker_destroy(ws);
}

/* ---- labels ------------------------------------------------------------------------------ */

typedef struct namebuf {
    char s[4096];
    size_t n;
    size_t app_len; /* s[0..app_len) is the app name, the labels follow */
    int nlabels;
    int overflow;
} namebuf_t;

static void nb_put(namebuf_t *b, const char *s, size_t n)
{
    if (b->n + n >= sizeof(b->s)) {
        b->overflow = 1;
        return;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

/* Label names are reduced to [A-Za-z0-9_] (service.namespace -> service_namespace). */
static void label_name(const char *k, char *out, size_t outlen)
{
    size_t i = 0;
    for (; k[i] && i + 1 < outlen; i++) {
        out[i] = isalnum((unsigned char)k[i]) ? k[i] : '_';
    }
    out[i] = 0;
    if (i && isdigit((unsigned char)out[0])) {
        out[0] = '_';
    }
}

static int nb_has(const namebuf_t *b, const char *name)
{
    /* names sit between '{' or ',' and '=' */
    size_t nl = strlen(name);
    for (const char *p = b->s; (p = strstr(p, name)); p++) {
        if (p > b->s && (p[-1] == '{' || p[-1] == ',') && p[nl] == '=') {
            return 1;
        }
    }
    return 0;
}

static void nb_label(namebuf_t *b, const char *key, const char *val)
{
    char name[128];
    label_name(key, name, sizeof(name));
    if (!name[0] || !label_value_ok(val) || nb_has(b, name)) {
        return;
    }
    nb_put(b, b->nlabels ? "," : "{", 1);
    nb_put(b, name, strlen(name));
    nb_put(b, "=", 1);
    nb_put(b, val, strlen(val));
    b->nlabels++;
}

static const char *attr_str(const Opentelemetry__Proto__Common__V1__KeyValue *kv, char *buf,
                            size_t buflen)
{
    return otlp_value_text(kv->value, buf, buflen);
}

/* Builds `service{labels}` and picks the spy name for one resource. */
static void build_name(const pyro_cfg_t *cfg,
                       const Opentelemetry__Proto__Resource__V1__Resource *res, namebuf_t *b,
                       const char **spy)
{
    memset(b, 0, sizeof(*b));
    const char *service = NULL;
    *spy = cfg->spy_name;
    size_t na = res ? res->n_attributes : 0;
    char buf[64];
    for (size_t i = 0; i < na; i++) {
        const Opentelemetry__Proto__Common__V1__KeyValue *kv = res->attributes[i];
        if (!kv->key) {
            continue;
        }
        const char *v = attr_str(kv, buf, sizeof(buf));
        if (strcmp(kv->key, "service.name") == 0 && v && *v && !service) {
            service = kv->value->string_value;
        } else if (strcmp(kv->key, "pyroscope.spy_name") == 0 && v && *v) {
            *spy = kv->value->string_value;
        }
    }
    if (!service || !*service) {
        service = "unknown_service";
    }
    /* Pyroscope refuses an app name with anything but [A-Za-z0-9_.-] (400) */
    for (const char *c = service; *c; c++) {
        char ch = isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-' ? *c : '_';
        nb_put(b, &ch, 1);
    }
    b->app_len = b->n;
    for (size_t i = 0; i < na; i++) {
        const Opentelemetry__Proto__Common__V1__KeyValue *kv = res->attributes[i];
        if (!kv->key || strcmp(kv->key, "service.name") == 0 ||
            strncmp(kv->key, "pyroscope.", 10) == 0) {
            continue;
        }
        int take = cfg->resource_to_labels;
        for (size_t j = 0; !take && j < cfg->promote.n; j++) {
            take = strcmp(cfg->promote.items[j], kv->key) == 0;
        }
        const char *v = take ? attr_str(kv, buf, sizeof(buf)) : NULL;
        if (v) {
            nb_label(b, kv->key, v);
        }
    }
    for (size_t i = 0; i < cfg->external_labels.n; i++) {
        nb_label(b, cfg->external_labels.keys[i], cfg->external_labels.vals[i]);
    }
    nb_put(b, b->nlabels ? "}" : "{}", b->nlabels ? 1 : 2);
}

/* ---- sending ----------------------------------------------------------------------------- */

static const char BOUNDARY[] = "meltp-pprof-7d1f3b9a2c";

/* POSTs one gzipped pprof. Returns MT_OK, MT_ERETRY or MT_EPERM with res filled. */
static int post_one(exporter_t *ex, pworker_t *w, const char *name, const char *spy, uint64_t t_ns,
                    uint64_t dur_ns, const uint8_t *gz, size_t gzlen, const char *stc,
                    send_result_t *res)
{
    pyro_cfg_t *cfg = ex->cfg;
    pstate_t *st = ex->state;
    CURL *c = w->curl;
    char *ename = curl_easy_escape(c, name, 0);
    char *espy = curl_easy_escape(c, spy, 0);
    uint64_t from = t_ns / 1000000000ull;
    uint64_t until = (t_ns + dur_ns) / 1000000000ull;
    if (until <= from) {
        until = from + 1; /* Pyroscope wants a non-empty [from, until) */
    }
    char *url = NULL;
    if (!ename || !espy ||
        asprintf(&url, "%s?name=%s&from=%llu&until=%llu&spyName=%s", st->url, ename,
                 (unsigned long long)from, (unsigned long long)until, espy) < 0) {
        url = NULL;
    }
    curl_free(ename);
    curl_free(espy);
    char head[256];
    int hl =
        snprintf(head, sizeof(head),
                 "--%s\r\nContent-Disposition: form-data; name=\"profile\"; "
                 "filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                 BOUNDARY);
    /* parts without a filename are ignored by the server: both are files */
    char mid[256];
    int ml = snprintf(mid, sizeof(mid),
                      "\r\n--%s\r\nContent-Disposition: form-data; name=\"sample_type_config\"; "
                      "filename=\"sample_type_config.json\"\r\nContent-Type: application/json"
                      "\r\n\r\n",
                      BOUNDARY);
    size_t sl = strlen(stc);
    char tail[64];
    int tl = snprintf(tail, sizeof(tail), "\r\n--%s--\r\n", BOUNDARY);
    size_t blen = (size_t)hl + gzlen + (size_t)ml + sl + (size_t)tl;
    uint8_t *body = malloc(blen);
    if (!url || !body) {
        free(url);
        free(body);
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    memcpy(body, head, (size_t)hl);
    memcpy(body + hl, gz, gzlen);
    memcpy(body + hl + gzlen, mid, (size_t)ml);
    memcpy(body + hl + gzlen + ml, stc, sl);
    memcpy(body + hl + gzlen + ml + sl, tail, (size_t)tl);
    /* a gateway forwards the client's tenant unless the config pins one */
    struct curl_slist *hdrs =
        httpc_request_headers(st->hdrs, st->static_tenant ? NULL : res->tenant, ex->auth);
    if (!hdrs) {
        for (struct curl_slist *h = st->hdrs; h; h = h->next) {
            hdrs = curl_slist_append(hdrs, h->data);
        }
    }
    char line[160];
    snprintf(line, sizeof(line), "Content-Type: multipart/form-data; boundary=%s", BOUNDARY);
    hdrs = curl_slist_append(hdrs, line);
    httpc_resp_reset(&w->resp);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    httpc_opts_t o = httpc_opts_push((long)cfg->common.timeout, &cfg->tls, url);
    httpc_setup(c, &w->resp, &o);
    CURLcode cr = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    free(body);
    if (cr != CURLE_OK) {
        snprintf(res->msg, sizeof(res->msg), "%s: %s", st->url, curl_easy_strerror(cr));
        res->reason = "transport_error";
        free(url);
        return MT_ERETRY;
    }
    free(url);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
        return MT_OK;
    }
    /* Pyroscope answers errors as text or Connect JSON: keep the head of it, on one line */
    char smsg[300];
    sl = w->resp.len < sizeof(smsg) - 1 ? w->resp.len : sizeof(smsg) - 1;
    for (size_t i = 0; i < sl; i++) {
        smsg[i] = w->resp.body[i] == '\n' || w->resp.body[i] == '\r' ? ' ' : w->resp.body[i];
    }
    while (sl && smsg[sl - 1] == ' ') {
        sl--;
    }
    smsg[sl] = 0;
    snprintf(res->msg, sizeof(res->msg), "%s: HTTP %ld: %s", st->url, code, smsg);
    res->retry_after_ms = w->resp.retry_after_s * 1000;
    if (code == 429 || code >= 500) {
        res->reason = code == 429 ? "http_429" : "http_5xx";
        return MT_ERETRY;
    }
    res->reason = httpc_status_reason(code, code == 422 ? "http_422" : "http_error");
    return MT_EPERM;
}

static int is_gzip(const uint8_t *p, size_t n)
{
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static const char *type_name(const pprof_otlp_dict_t *d, const pprof_otlp_profile_t *p)
{
    int32_t i = p->sample_type ? p->sample_type->type_strindex : -1;
    return d && i >= 0 && (size_t)i < d->n_string_table ? d->string_table[i] : NULL;
}

static int same_payload(const pprof_otlp_profile_t *p, const uint8_t *data, size_t len)
{
    return p->original_payload.len == len &&
           (p->original_payload.data == data || memcmp(p->original_payload.data, data, len) == 0);
}

static int pyro_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                     uint32_t items, send_result_t *res)
{
    (void)items;
    pworker_t *w = ws;
    if (!w || !w->curl) {
        snprintf(res->msg, sizeof(res->msg), "no HTTP client (out of memory)");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    if (s != MT_SIG_PROFILES) {
        snprintf(res->msg, sizeof(res->msg), "pyroscope exports profiles only");
        res->reason = "wrong_signal";
        return MT_EPERM;
    }
    arena_t *a = arena_create(len * 4 + 4096, 0);
    if (!a) {
        res->reason = "out_of_memory";
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        return MT_ERETRY;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    pprof_otlp_req_t *req = (pprof_otlp_req_t *)otlp_unpack(MT_SIG_PROFILES, data, len, a, &eb);
    if (!req) {
        arena_destroy(a);
        snprintf(res->msg, sizeof(res->msg), "cannot decode batch: %.400s", eb.msg);
        res->reason = "decode_error";
        return MT_EINVAL;
    }
    int rc = MT_OK;
    int64_t bad = 0;
    char badmsg[300] = "";
    /* the payload last forwarded as-is: the other sample types of the same pprof follow it */
    const uint8_t *last_orig = NULL;
    size_t last_orig_len = 0;
    for (size_t i = 0; i < req->n_resource_profiles && rc == MT_OK; i++) {
        const Opentelemetry__Proto__Profiles__V1development__ResourceProfiles *rp =
            req->resource_profiles[i];
        namebuf_t name;
        const char *spy;
        build_name(ex->cfg, rp->resource, &name, &spy);
        for (size_t j = 0; j < rp->n_scope_profiles && rc == MT_OK; j++) {
            const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp =
                rp->scope_profiles[j];
            for (size_t k = 0; k < sp->n_profiles && rc == MT_OK; k++) {
                const pprof_otlp_profile_t *p = sp->profiles[k];
                uint8_t *raw = NULL, *gz = NULL;
                size_t rawlen = 0, gzlen = 0;
                const uint8_t *send = NULL;
                size_t sendlen = 0;
                if (p->original_payload.len && p->original_payload_format &&
                    strcmp(p->original_payload_format, "pprof") == 0) {
                    if (last_orig && last_orig_len == p->original_payload.len &&
                        memcmp(last_orig, p->original_payload.data, last_orig_len) == 0) {
                        continue; /* already sent with its first sample type */
                    }
                    last_orig = p->original_payload.data;
                    last_orig_len = p->original_payload.len;
                    if (is_gzip(last_orig, last_orig_len)) {
                        send = last_orig;
                        sendlen = last_orig_len;
                    } else {
                        raw = (uint8_t *)last_orig;
                        rawlen = last_orig_len;
                    }
                } else {
                    mt_errbuf_t ceb;
                    mt_errbuf_clear(&ceb);
                    int cr = pprof_from_otlp(req->dictionary, p, &raw, &rawlen, &ceb);
                    if (cr == MT_ENOMEM) {
                        rc = MT_ERETRY;
                        res->reason = "out_of_memory";
                        snprintf(res->msg, sizeof(res->msg), "out of memory");
                        break;
                    }
                    if (cr != MT_OK) {
                        /* one unconvertible profile must not block the rest */
                        bad++;
                        if (!badmsg[0]) {
                            snprintf(badmsg, sizeof(badmsg), "%.280s", ceb.msg);
                        }
                        continue;
                    }
                }
                if (!send) {
                    if (codec_compress(CODEC_GZIP, raw, rawlen, 0, &gz, &gzlen) != MT_OK) {
                        if (raw != last_orig) {
                            free(raw);
                        }
                        rc = MT_ERETRY;
                        res->reason = "out_of_memory";
                        snprintf(res->msg, sizeof(res->msg), "compression failed");
                        break;
                    }
                    if (raw != last_orig) {
                        free(raw);
                    }
                    send = gz;
                    sendlen = gzlen;
                }
                if (name.overflow) {
                    bad++;
                    snprintf(badmsg, sizeof(badmsg), "app name with labels is too long");
                    free(gz);
                    continue;
                }
                /* the sample types of this pprof: one, or those of the OTLP profiles the
                 * receiver made from the same payload (they follow this one) */
                const char *types[PYRO_LEGACY_MAX_TYPES];
                size_t nt = 0;
                types[nt++] = type_name(req->dictionary, p);
                int orig = p->original_payload.len && last_orig == p->original_payload.data;
                for (size_t k2 = k + 1; orig && k2 < sp->n_profiles && nt < PYRO_LEGACY_MAX_TYPES;
                     k2++) {
                    if (!same_payload(sp->profiles[k2], last_orig, last_orig_len)) {
                        break;
                    }
                    types[nt++] = type_name(req->dictionary, sp->profiles[k2]);
                }
                size_t cut = name.app_len;
                char *stc = pyro_legacy_plan(name.s, &cut, types, nt);
                char sendname[sizeof(name.s)];
                snprintf(sendname, sizeof(sendname), "%.*s%s", (int)cut, name.s,
                         name.s + name.app_len);
                rc = stc ? post_one(ex, w, sendname, spy, p->time_unix_nano, p->duration_nano, send,
                                    sendlen, stc, res)
                         : MT_ERETRY;
                if (!stc) {
                    res->reason = "out_of_memory";
                    snprintf(res->msg, sizeof(res->msg), "out of memory");
                }
                free(stc);
                free(gz);
            }
        }
    }
    arena_destroy(a);
    if (rc == MT_OK && bad) {
        res->rejected = bad;
        res->reason = "invalid_profile";
        snprintf(res->msg, sizeof(res->msg), "%lld profile(s) not convertible to pprof: %s",
                 (long long)bad, badmsg);
    }
    return rc;
}

const exporter_ops_t exporter_pyroscope_ops = {
    .type = "pyroscope",
    .fields = pyro_fields,
    .nfields = MT_ARRAY_LEN(pyro_fields),
    .cfg_size = sizeof(pyro_cfg_t),
    .signals = SIG_BIT(MT_SIG_PROFILES),
    .help = "Pyroscope exporter: OTLP profiles -> gzipped pprof + sample_type_config, "
            "multipart POST /ingest",
    .validate = pyro_validate,
    .create = pyro_create,
    .worker_init = pyro_worker_init,
    .worker_fini = pyro_worker_fini,
    .send = pyro_send,
    .destroy = pyro_destroy,
};
