/*
 * unit_exp.h - helpers for exporter tests: an exporter built from a YAML string through its
 * registry descriptor the way the service builds one (the common queue/retry table plus the
 * exporter's own, its validator, create, one worker), and a recording HTTP sink on a free
 * 127.0.0.1 port (collector/core/server.c) that answers with a status the test chooses.
 */
#ifndef UNIT_EXP_H
#define UNIT_EXP_H

#include "component.h"

typedef struct unit_exp {
    exporter_t ex;
    void *ws;            /* the worker state send() gets */
    cfg_field_t *fields; /* common + own table */
    size_t nfields;
    cfg_doc_t *doc;
    cfg_ctx_t c; /* config errors, "exp.yaml:LINE: exporters.TYPE.key: reason" */
    int created;
} unit_exp_t;

/* Builds exporter `type` (id "TYPE/test") from `yaml`. Returns MT_OK, or MT_EINVAL with the
 * errors in e->c, or what create returned. Call unit_exp_close in every case. */
int unit_exp_open(unit_exp_t *e, const char *type, const char *yaml);
void unit_exp_close(unit_exp_t *e);

#define UNIT_SINK_MAX 8

typedef struct unit_sink_req {
    char method[8];
    char path[256];
    char content_type[128];
    char content_encoding[32];
    char tenant[128];
    char user_agent[128];
    char custom[128]; /* the X-Unit header, when sent */
    char query[512];  /* decoded query arguments as "k=v&k2=v2&" in arrival order */
    uint8_t *body;    /* decompressed per Content-Encoding (gzip, zstd, snappy) */
    size_t len;
} unit_sink_req_t;

typedef struct unit_sink unit_sink_t;

/* Starts a sink on 127.0.0.1 (free port); NULL on failure. */
unit_sink_t *unit_sink_start(void);
void unit_sink_stop(unit_sink_t *s); /* accepts NULL; frees what was recorded */
int unit_sink_port(const unit_sink_t *s);
/* What the following requests get: status, content type and body of the answer, and an
 * optional Retry-After value (NULL = none). */
void unit_sink_reply(unit_sink_t *s, int status, const char *content_type, const void *body,
                     size_t len, const char *retry_after);
/* The next `n` requests get `status` with an empty body, then unit_sink_reply's answer. */
void unit_sink_fail_next(unit_sink_t *s, int n, int status);
/* Requests recorded so far and the i-th one (valid until unit_sink_stop). */
int unit_sink_count(unit_sink_t *s);
const unit_sink_req_t *unit_sink_get(unit_sink_t *s, int i);

#endif
