/*
 * unit_exp.c - see unit_exp.h.
 */
#include "unit_exp.h"
#include "codec.h"
#include "server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int unit_exp_open(unit_exp_t *e, const char *type, const char *yaml)
{
    memset(e, 0, sizeof(*e));
    cfg_ctx_init(&e->c, "exp.yaml");
    const exporter_ops_t *ops = registry_exporter(type);
    if (!ops) {
        cfg_error(&e->c, 0, type, "unknown exporter type");
        return MT_EINVAL;
    }
    e->nfields = exporter_common_nfields + ops->nfields;
    e->fields = calloc(e->nfields, sizeof(cfg_field_t));
    memcpy(e->fields, exporter_common_fields, exporter_common_nfields * sizeof(cfg_field_t));
    memcpy(e->fields + exporter_common_nfields, ops->fields, ops->nfields * sizeof(cfg_field_t));
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    const char *text = yaml && *yaml ? yaml : "{}";
    e->doc = cfg_load_string("exp.yaml", text, strlen(text), &eb);
    if (!e->doc) {
        cfg_error(&e->c, 0, "", "%s", eb.msg);
        return MT_EINVAL;
    }
    char path[64];
    snprintf(path, sizeof(path), "exporters.%s", type);
    e->ex.ops = ops;
    e->ex.id = strdup(path + strlen("exporters."));
    e->ex.cfg = calloc(1, ops->cfg_size);
    cfg_apply(&e->c, e->fields, e->nfields, e->doc->root, path, e->ex.cfg);
    if (ops->validate) {
        ops->validate(&e->c, e->ex.cfg, path, e->doc->root);
    }
    if (e->c.nerr) {
        return MT_EINVAL;
    }
    int rc = ops->create ? ops->create(&e->ex, &eb) : MT_OK;
    if (rc != MT_OK) {
        cfg_error(&e->c, 0, path, "%s", eb.msg);
        return rc;
    }
    e->created = 1;
    e->ws = ops->worker_init ? ops->worker_init(&e->ex) : NULL;
    return MT_OK;
}

void unit_exp_close(unit_exp_t *e)
{
    if (e->created) {
        if (e->ex.ops->worker_fini) {
            e->ex.ops->worker_fini(&e->ex, e->ws);
        }
        if (e->ex.ops->destroy) {
            e->ex.ops->destroy(&e->ex);
        }
    }
    if (e->ex.cfg) {
        cfg_free_fields(e->fields, e->nfields, e->ex.cfg);
    }
    free(e->ex.cfg);
    free(e->ex.id);
    free(e->fields);
    cfg_doc_destroy(e->doc);
    cfg_ctx_fini(&e->c);
    memset(e, 0, sizeof(*e));
}

/* ---- the sink ------------------------------------------------------------------------------ */

struct unit_sink {
    http_server_t *srv;
    pthread_mutex_t mu;
    int n;
    unit_sink_req_t reqs[UNIT_SINK_MAX];
    int status;
    char ctype[64];
    uint8_t body[4096];
    size_t len;
    char retry_after[32];
    int fail_left, fail_status;
};

static void copy_header(http_req_t *r, const char *name, char *out, size_t n)
{
    const char *v = http_header(r, name);
    snprintf(out, n, "%s", v ? v : "");
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    char *q = cls;
    size_t n = strlen(q);
    snprintf(q + n, 512 - n, "%s=%s&", key, value ? value : "");
    return MHD_YES;
}

static void sink_begin(void *arg, http_req_t *r)
{
    (void)arg;
    (void)r; /* take every body */
}

static void sink_complete(void *arg, http_req_t *r)
{
    unit_sink_t *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->n < UNIT_SINK_MAX) {
        unit_sink_req_t *q = &s->reqs[s->n++];
        snprintf(q->method, sizeof(q->method), "%s", r->method);
        snprintf(q->path, sizeof(q->path), "%s", r->path);
        copy_header(r, "Content-Type", q->content_type, sizeof(q->content_type));
        copy_header(r, "Content-Encoding", q->content_encoding, sizeof(q->content_encoding));
        copy_header(r, "X-Scope-OrgID", q->tenant, sizeof(q->tenant));
        copy_header(r, "User-Agent", q->user_agent, sizeof(q->user_agent));
        copy_header(r, "X-Unit", q->custom, sizeof(q->custom));
        q->query[0] = 0;
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg, q->query);
        codec_t c = codec_from_name(q->content_encoding);
        uint8_t *out = r->body;
        size_t olen = r->len;
        arena_t *a = arena_create(1 << 16, 0);
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        if (c != CODEC_NONE &&
            codec_decompress(c, r->body, r->len, 64 << 20, a, &out, &olen, &eb) != MT_OK) {
            out = NULL;
            olen = 0;
        }
        q->body = malloc(olen ? olen : 1);
        if (out && q->body) {
            memcpy(q->body, out, olen);
        }
        q->len = olen;
        arena_destroy(a);
    }
    int status = s->status;
    char ctype[64], ra[32];
    snprintf(ctype, sizeof(ctype), "%s", s->ctype);
    snprintf(ra, sizeof(ra), "%s", s->retry_after);
    uint8_t body[4096];
    size_t len = s->len;
    memcpy(body, s->body, len);
    if (s->fail_left > 0) {
        s->fail_left--;
        status = s->fail_status;
        len = 0;
        ra[0] = 0;
    }
    pthread_mutex_unlock(&s->mu);
    http_respond(r, status, ctype, body, len, ra[0] ? "Retry-After" : NULL, ra[0] ? ra : NULL);
}

unit_sink_t *unit_sink_start(void)
{
    unit_sink_t *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->status = 200;
    snprintf(s->ctype, sizeof(s->ctype), "text/plain");
    http_handler_t h = {.begin = sink_begin, .complete = sink_complete, .arg = s};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    s->srv = http_server_start("127.0.0.1:0", 1, 16 << 20, &h, &eb);
    if (!s->srv) {
        fprintf(stderr, "    sink: %s\n", eb.msg);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void unit_sink_stop(unit_sink_t *s)
{
    if (!s) {
        return;
    }
    http_server_stop(s->srv);
    for (int i = 0; i < s->n; i++) {
        free(s->reqs[i].body);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int unit_sink_port(const unit_sink_t *s)
{
    return http_server_port(s->srv);
}

void unit_sink_reply(unit_sink_t *s, int status, const char *content_type, const void *body,
                     size_t len, const char *retry_after)
{
    pthread_mutex_lock(&s->mu);
    s->status = status;
    snprintf(s->ctype, sizeof(s->ctype), "%s", content_type ? content_type : "text/plain");
    s->len = len < sizeof(s->body) ? len : sizeof(s->body);
    if (body) {
        memcpy(s->body, body, s->len);
    }
    snprintf(s->retry_after, sizeof(s->retry_after), "%s", retry_after ? retry_after : "");
    pthread_mutex_unlock(&s->mu);
}

void unit_sink_fail_next(unit_sink_t *s, int n, int status)
{
    pthread_mutex_lock(&s->mu);
    s->fail_left = n;
    s->fail_status = status;
    pthread_mutex_unlock(&s->mu);
}

int unit_sink_count(unit_sink_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

const unit_sink_req_t *unit_sink_get(unit_sink_t *s, int i)
{
    pthread_mutex_lock(&s->mu);
    const unit_sink_req_t *q = i < s->n ? &s->reqs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return q;
}
