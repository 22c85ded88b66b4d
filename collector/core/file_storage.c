/*
 * file_storage.c - the `file_storage` extension (the OpenTelemetry Collector's name and
 * keys): a directory where exporters with `sending_queue.storage: file_storage` keep their
 * queues (collector/core/segstore.c), one subdirectory per exporter queue. The extension only
 * holds the settings and checks the directory at start; the queues open their stores
 * themselves, before the extension starts, so nothing is received before replay is set up.
 */
#include "component.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fs_cfg {
    char *directory;
    int fsync;
    int create_directory;
    int64_t timeout;
} fs_cfg_t;

static const cfg_field_t fs_fields[] = {
    {"directory", CFG_T_STRING, "/var/lib/meltp/file_storage", 0, offsetof(fs_cfg_t, directory),
     NULL, "where the persistent queues live (one subdirectory per exporter queue)"},
    {"fsync", CFG_T_BOOL, "true", 0, offsetof(fs_cfg_t, fsync), NULL,
     "a 200 waits for fdatasync of the write (shared by concurrent requests); false: written "
     "to the page cache only, which survives kill -9 but not a power cut"},
    {"create_directory", CFG_T_BOOL, "true", 0, offsetof(fs_cfg_t, create_directory), NULL,
     "create `directory` when it does not exist"},
    {"timeout", CFG_T_DURATION, "1s", 0, offsetof(fs_cfg_t, timeout), NULL,
     "accepted for compatibility"},
};

extern const extension_ops_t extension_file_storage_ops;

int file_storage_settings(const extension_t *x, const char **dir, int *fsync)
{
    if (!x || x->ops != &extension_file_storage_ops) {
        return MT_EINVAL;
    }
    const fs_cfg_t *c = x->cfg;
    *dir = c->directory;
    *fsync = c->fsync;
    return MT_OK;
}

/* Creates the directory when asked and checks it can be written. The queues call this too
 * (through exq_open_storage's mkdir), so it also runs when the extension is not started. */
static int fs_start(extension_t *x, service_t *svc, mt_errbuf_t *eb)
{
    (void)svc;
    fs_cfg_t *c = x->cfg;
    if (c->create_directory && mkdir(c->directory, 0755) != 0 && errno != EEXIST) {
        mt_failf(eb, "extension %s: cannot create %s: %s", x->id, c->directory, strerror(errno));
        return MT_ERR;
    }
    if (access(c->directory, W_OK | X_OK) != 0) {
        mt_failf(eb, "extension %s: %s is not a writable directory: %s", x->id, c->directory,
                 strerror(errno));
        return MT_ERR;
    }
    x->state = c;
    mt_log(MT_LOG_INFO, "extension %s: queues in %s (fsync %s)", x->id, c->directory,
           c->fsync ? "on" : "off");
    return MT_OK;
}

static void fs_stop(extension_t *x)
{
    x->state = NULL;
}

const extension_ops_t extension_file_storage_ops = {
    .type = "file_storage",
    .fields = fs_fields,
    .nfields = MT_ARRAY_LEN(fs_fields),
    .cfg_size = sizeof(fs_cfg_t),
    .help = "a directory for persistent exporter queues (sending_queue.storage)",
    .start = fs_start,
    .stop = fs_stop,
};
