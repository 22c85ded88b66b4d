/*
 * debug.c - the `debug` exporter: one summary line per batch on stderr; with
 * `verbosity: detailed` the batch itself as OTLP/JSON.
 */
#include "component.h"
#include "otlp.h"
#include "otlp_json.h"

#include <stdlib.h>
#include <stddef.h>

typedef struct debug_cfg {
    exporter_common_t common;
    int verbosity;
    int64_t sampling_initial;
    int64_t sampling_thereafter;
} debug_cfg_t;

static const cfg_field_t debug_fields[] = {
    {"verbosity", CFG_T_ENUM, "basic", 0, offsetof(debug_cfg_t, verbosity), "basic|normal|detailed",
     "basic/normal: a summary line; detailed: the data as JSON"},
    {"sampling_initial", CFG_T_INT, "2", 0, offsetof(debug_cfg_t, sampling_initial), NULL,
     "accepted for compatibility"},
    {"sampling_thereafter", CFG_T_INT, "1", 0, offsetof(debug_cfg_t, sampling_thereafter), NULL,
     "accepted for compatibility"},
};

static int debug_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                      uint32_t items, send_result_t *res)
{
    (void)ws;
    (void)res;
    debug_cfg_t *cfg = ex->cfg;
    mt_log(MT_LOG_INFO, "%s: %s batch: %u %s, %zu bytes", ex->id, mt_signal_name(s), items,
           mt_signal_item_name(s), len);
    if (cfg->verbosity == 2) {
        arena_t *a = arena_create(len * 4 + 4096, 0);
        ProtobufCMessage *m =
            a ? protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, data)
              : NULL;
        size_t jl = 0;
        char *json = m ? otlp_json_encode(m, &jl) : NULL;
        if (json) {
            mt_log(MT_LOG_INFO, "%s: %s", ex->id, json);
        }
        free(json);
        arena_destroy(a);
    }
    return MT_OK;
}

const exporter_ops_t exporter_debug_ops = {
    .type = "debug",
    .fields = debug_fields,
    .nfields = MT_ARRAY_LEN(debug_fields),
    .cfg_size = sizeof(debug_cfg_t),
    .signals = SIG_ALL,
    .help = "log a summary (or the data) of every batch",
    .send = debug_send,
    .default_consumers = 1,
};
