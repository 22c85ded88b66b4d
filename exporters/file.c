/*
 * file.c - the `file` exporter: one OTLP/JSON Export<Signal>ServiceRequest per line
 * (lowerCamelCase, the OTLP/JSON mapping), with size-based rotation (path -> path.1 -> ...).
 * Writes from all workers and pipelines sharing this exporter go through one mutex and are
 * flushed per line, so a reader never sees half a line.
 */
#include "component.h"
#include "otlp.h"
#include "otlp_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/stat.h>

typedef struct file_cfg {
    exporter_common_t common;
    char *path;
    int format;
    int64_t max_megabytes;
    int64_t max_backups;
    int64_t max_days;
    int localtime;
    int64_t flush_interval;
} file_cfg_t;

static const cfg_field_t file_fields[] = {
    {"path", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(file_cfg_t, path), NULL,
     "file to append to (directories are created)"},
    {"format", CFG_T_ENUM, "json", 0, offsetof(file_cfg_t, format), "json",
     "json: one OTLP/JSON request per line"},
    {"rotation.max_megabytes", CFG_T_INT, "100", 0, offsetof(file_cfg_t, max_megabytes), NULL,
     "rotate when the file would pass this size"},
    {"rotation.max_backups", CFG_T_INT, "100", 0, offsetof(file_cfg_t, max_backups), NULL,
     "rotated files to keep"},
    {"rotation.max_days", CFG_T_INT, "0", 0, offsetof(file_cfg_t, max_days), NULL,
     "accepted for compatibility"},
    {"rotation.localtime", CFG_T_BOOL, "false", 0, offsetof(file_cfg_t, localtime), NULL,
     "accepted for compatibility"},
    {"flush_interval", CFG_T_DURATION, "1s", 0, offsetof(file_cfg_t, flush_interval), NULL,
     "accepted for compatibility: meltp flushes every line"},
};

static void file_validate(cfg_ctx_t *c, const void *cfgp, const char *path, const cfg_node_t *node)
{
    const file_cfg_t *cfg = cfgp;
    if (cfg->path && !*cfg->path) {
        cfg_error_key(c, node, path, "path", "must not be empty");
    }
    if (cfg->max_megabytes <= 0) {
        cfg_error_key(c, node, path, "rotation.max_megabytes", "must be positive");
    }
}

typedef struct file_state {
    pthread_mutex_t mu;
    FILE *f;
    size_t size;
} file_state_t;

static int mkdirs_for(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return 0;
}

static int file_create(exporter_t *ex, mt_errbuf_t *eb)
{
    file_cfg_t *cfg = ex->cfg;
    file_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    pthread_mutex_init(&st->mu, NULL);
    if (mkdirs_for(cfg->path) != 0) {
        mt_failf(eb, "cannot create directory for %s: %s", cfg->path, strerror(errno));
        free(st);
        return MT_EIO;
    }
    st->f = fopen(cfg->path, "a");
    if (!st->f) {
        mt_failf(eb, "cannot open %s: %s", cfg->path, strerror(errno));
        free(st);
        return MT_EIO;
    }
    struct stat sb;
    if (fstat(fileno(st->f), &sb) == 0) {
        st->size = (size_t)sb.st_size;
    }
    ex->state = st;
    return MT_OK;
}

static void rotate(file_cfg_t *cfg, file_state_t *st)
{
    char from[4200], to[4200];
    fclose(st->f);
    for (int64_t i = cfg->max_backups; i >= 1; i--) {
        if (i == 1) {
            snprintf(from, sizeof(from), "%s", cfg->path);
        } else {
            snprintf(from, sizeof(from), "%s.%lld", cfg->path, (long long)(i - 1));
        }
        snprintf(to, sizeof(to), "%s.%lld", cfg->path, (long long)i);
        rename(from, to);
    }
    if (cfg->max_backups <= 0) {
        remove(cfg->path);
    }
    st->f = fopen(cfg->path, "a");
    st->size = 0;
}

static int file_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                     uint32_t items, send_result_t *res)
{
    (void)ws;
    (void)items;
    file_cfg_t *cfg = ex->cfg;
    file_state_t *st = ex->state;
    arena_t *a = arena_create(len * 4 + 4096, 0);
    if (!a) {
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, data);
    size_t jl = 0;
    char *json = m ? otlp_json_encode(m, &jl) : NULL;
    arena_destroy(a);
    if (!json) {
        snprintf(res->msg, sizeof(res->msg), "cannot encode %s batch as JSON", mt_signal_name(s));
        res->reason = m ? "out_of_memory" : "encode_error";
        return m ? MT_ERETRY : MT_EINVAL;
    }
    int rc = MT_OK;
    pthread_mutex_lock(&st->mu);
    if (st->f && st->size > 0 && st->size + jl + 1 > (size_t)cfg->max_megabytes << 20) {
        rotate(cfg, st);
    }
    if (!st->f || fwrite(json, 1, jl, st->f) != jl || fputc('\n', st->f) == EOF ||
        fflush(st->f) != 0) {
        snprintf(res->msg, sizeof(res->msg), "write %s: %s", cfg->path, strerror(errno));
        res->reason = "write_error";
        rc = MT_ERETRY;
    } else {
        st->size += jl + 1;
    }
    pthread_mutex_unlock(&st->mu);
    free(json);
    return rc;
}

static void file_destroy(exporter_t *ex)
{
    file_state_t *st = ex->state;
    if (st) {
        if (st->f) {
            fclose(st->f);
        }
        pthread_mutex_destroy(&st->mu);
        free(st);
        ex->state = NULL;
    }
}

const exporter_ops_t exporter_file_ops = {
    .type = "file",
    .fields = file_fields,
    .nfields = MT_ARRAY_LEN(file_fields),
    .cfg_size = sizeof(file_cfg_t),
    .signals = SIG_ALL,
    .help = "OTLP/JSON lines to a file, with rotation",
    .validate = file_validate,
    .create = file_create,
    .send = file_send,
    .destroy = file_destroy,
    .default_consumers = 1,
};
