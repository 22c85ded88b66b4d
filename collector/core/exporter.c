/*
 * exporter.c - the settings every exporter shares (sending_queue, retry_on_failure, timeout),
 * with OpenTelemetry Collector names and defaults, plus meltp's on_full policy.
 */
#include "component.h"

#include <stddef.h>

const cfg_field_t exporter_common_fields[] = {
    {"sending_queue.enabled", CFG_T_BOOL, "true", 0, offsetof(exporter_common_t, queue_enabled),
     NULL, "queue requests and send them from worker threads"},
    {"sending_queue.num_consumers", CFG_T_INT, "4", 0, offsetof(exporter_common_t, num_consumers),
     NULL, "worker threads (concurrent requests) for this exporter"},
    {"sending_queue.queue_size", CFG_T_INT, "1000", 0, offsetof(exporter_common_t, queue_size),
     NULL, "queue capacity in requests (batches)"},
    {"sending_queue.queue_bytes", CFG_T_BYTES, "256MiB", 0,
     offsetof(exporter_common_t, queue_bytes), NULL,
     "queue capacity in bytes, counting queued and in-flight requests"},
    {"sending_queue.queue_items", CFG_T_INT, "2000000", 0, offsetof(exporter_common_t, queue_items),
     NULL, "capacity in items (spans, data points, log records); 0 = no item bound"},
    {"sending_queue.on_full", CFG_T_ENUM, "refuse", 0, offsetof(exporter_common_t, on_full),
     "refuse|drop",
     "refuse: the client gets 429 + Retry-After and nothing is enqueued anywhere; "
     "drop: this exporter counts a queue_full drop, the others still get the data"},
    {"sending_queue.storage", CFG_T_STRING, "", 0, offsetof(exporter_common_t, storage), NULL,
     "id of a file_storage extension: the queue lives on disk (queue_bytes bounds the disk, "
     "a 200 means written and fsynced, what is unsent is sent after a restart); "
     "empty = in memory"},
    {"retry_on_failure.enabled", CFG_T_BOOL, "true", 0, offsetof(exporter_common_t, retry_enabled),
     NULL, "retry retryable failures with exponential backoff"},
    {"retry_on_failure.initial_interval", CFG_T_DURATION, "5s", 0,
     offsetof(exporter_common_t, initial_interval), NULL, "first backoff"},
    {"retry_on_failure.max_interval", CFG_T_DURATION, "30s", 0,
     offsetof(exporter_common_t, max_interval), NULL, "largest backoff"},
    {"retry_on_failure.max_elapsed_time", CFG_T_DURATION, "300s", 0,
     offsetof(exporter_common_t, max_elapsed_time), NULL,
     "give up (and count a retries_exhausted drop) after this long; 0 = never"},
    {"retry_on_failure.multiplier", CFG_T_DOUBLE, "1.5", 0, offsetof(exporter_common_t, multiplier),
     NULL, "backoff growth factor"},
    {"retry_on_failure.randomization_factor", CFG_T_DOUBLE, "0.5", 0,
     offsetof(exporter_common_t, randomization_factor), NULL, "jitter, +/- this fraction"},
    {"timeout", CFG_T_DURATION, "30s", 0, offsetof(exporter_common_t, timeout), NULL,
     "timeout of one send attempt"},
};
const size_t exporter_common_nfields = MT_ARRAY_LEN(exporter_common_fields);
