/*
 * component.h - the component model. Receivers, processors, exporters and extensions are
 * const descriptor structs (type name, config table, callbacks) listed once in
 * component_registry.c. The service (service.c) builds instances from the config, wires
 * receivers -> pipelines -> per-exporter queues, and owns their lifetimes.
 */
#ifndef COMPONENT_H
#define COMPONENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <protobuf-c/protobuf-c.h>

#include "mt.h"
#include "config.h"
#include "arena.h"
#include "telemetry.h"
#include "segstore.h"

typedef struct service service_t;
typedef struct pipeline pipeline_t;
typedef struct exporter exporter_t;
typedef struct receiver receiver_t;
typedef struct processor processor_t;
typedef struct extension extension_t;

#define SIG_BIT(s) (1u << (s))
#define SIG_TML    (SIG_BIT(MT_SIG_TRACES) | SIG_BIT(MT_SIG_METRICS) | SIG_BIT(MT_SIG_LOGS))
#define SIG_ALL    (SIG_TML | SIG_BIT(MT_SIG_PROFILES))

/* ---- batches: what queues hold ------------------------------------------------------- */

/* An immutable, reference-counted, encoded Export<Signal>ServiceRequest. One malloc per
 * request (never per item); fan-out to N exporters shares it. Concatenating two batches of
 * the same signal yields a valid request (protobuf merge rule), which is how batching works
 * without re-encoding. */
/* How a batch's bytes are encoded. OTLP is the internal model; the others are pass-through
 * forms a receiver may keep when every consumer of its pipelines reads them natively
 * (pipeline_accepts_format), so a relay does not translate there and back. */
enum {
    MT_FMT_OTLP = 0, /* Export<Signal>ServiceRequest */
    MT_FMT_PRW1 = 1, /* prometheus.WriteRequest (remote-write 1.0), validated, uncompressed */
};

typedef struct mt_batch {
    _Atomic int refs;
    mt_signal_t signal;
    uint8_t format; /* MT_FMT_*; batches of different formats are never coalesced */
    uint32_t items;
    uint64_t created_ns;
    char tenant[64]; /* X-Scope-OrgID of the request ("" = none); never coalesced across */
    uint64_t seq;    /* record number in a persistent queue's store (0 = in memory only) */
    size_t len;
    uint8_t data[];
} mt_batch_t;

#define MT_TENANT_MAX 63

/* Returns a batch with refs=1 holding `len` uninitialised bytes (fill data[]), or NULL. The
 * bytes are counted in the process memory gauge until the last unref. */
mt_batch_t *batch_alloc(mt_signal_t s, uint32_t items, size_t len);
void batch_ref(mt_batch_t *b);
void batch_unref(mt_batch_t *b); /* accepts NULL */

/* Process-wide bytes held by request bodies and queued batches (memory_limiter input). */
extern _Atomic int64_t mt_mem_in_use;
extern _Atomic int64_t mt_mem_limit; /* 0 = no limit */

/* ---- exporters ------------------------------------------------------------------------ */

/* Settings every exporter gets (queue, retry, timeout). Embedded first in each exporter's
 * config struct so one table covers both. */
/* sending_queue.on_full, in the order of its CFG_T_ENUM values "refuse|drop" */
typedef enum { MT_ON_FULL_REFUSE = 0, MT_ON_FULL_DROP = 1 } mt_on_full_t;
_Static_assert(sizeof(mt_on_full_t) == sizeof(int), "CFG_T_ENUM stores an int");

typedef struct exporter_common {
    int queue_enabled;
    int64_t num_consumers;
    int64_t queue_size; /* batches (requests) */
    int64_t queue_bytes;
    int64_t queue_items;  /* spans / data points / log records queued, 0 = no bound */
    mt_on_full_t on_full; /* sending_queue.on_full: "refuse|drop" */
    char *storage;        /* sending_queue.storage: a file_storage extension id, "" = memory */
    int retry_enabled;
    int64_t initial_interval; /* ms */
    int64_t max_interval;     /* ms */
    int64_t max_elapsed_time; /* ms, 0 = forever */
    double multiplier;
    double randomization_factor;
    int64_t timeout; /* ms */
} exporter_common_t;
extern const cfg_field_t exporter_common_fields[];
extern const size_t exporter_common_nfields;

typedef struct send_result {
    const char *tenant; /* in: the batch's tenant (X-Scope-OrgID), "" when none */
    int format;         /* in: MT_FMT_* of data (only formats accepts_format allowed) */
    int retry_after_ms; /* > 0 when the server said when to come back */
    int64_t rejected;   /* partial success: items the server rejected */
    const char *reason; /* short label for dropped/failed metrics */
    char msg[512];      /* server's message, for the log */
} send_result_t;

typedef struct exporter_ops {
    const char *type;
    const cfg_field_t *fields;
    size_t nfields;
    size_t cfg_size; /* sizeof the config struct (starts with exporter_common_t) */
    unsigned signals;
    const char *help;
    /* validate the parsed config beyond the table (no side effects); errors via cfg_error */
    void (*validate)(cfg_ctx_t *c, const void *cfg, const char *path, const cfg_node_t *node);
    int (*create)(exporter_t *ex, mt_errbuf_t *eb);
    void *(*worker_init)(exporter_t *ex);
    void (*worker_fini)(exporter_t *ex, void *ws);
    /* Sends one request. Returns MT_OK, MT_ERETRY (try again later), MT_EPERM (refused for
     * good: dropped) or MT_EINVAL (the bytes themselves cannot be decoded: the queue splits a
     * coalesced batch back into the requests it was made of, sends them one by one and drops
     * only those that fail alone, with res->reason). */
    int (*send)(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                uint32_t items, send_result_t *res);
    void (*destroy)(exporter_t *ex);
    int default_consumers; /* 0 = use exporter_common default */
    /* Optional: nonzero when send() takes batches in `format` (an MT_FMT_* other than OTLP)
     * and the result is what the OTLP form would have given. */
    int (*accepts_format)(exporter_t *ex, int format);
} exporter_ops_t;

struct exporter {
    const exporter_ops_t *ops;
    char *id;                          /* "otlphttp/tempo" */
    void *cfg;                         /* ops->cfg_size bytes, starts with exporter_common_t */
    void *state;                       /* exporter's own */
    _Atomic uint64_t failing_since_ns; /* 0 when healthy */
    _Atomic uint64_t stop_deadline_ns; /* set by shutdown: exporters with their own retry loops
                                        * give up at this time */
    extension_t *auth;      /* auth.authenticator, resolved by the service (NULL = none; auth.h) */
    _Atomic int yield_send; /* set by a reload handing this exporter's queues over:
                                        * exporters with their own retry loops return MT_ERETRY
                                        * from a send that delivered and dropped nothing yet,
                                        * instead of retrying (the successor sends it) */
};

static inline exporter_common_t *exporter_common(exporter_t *ex)
{
    return (exporter_common_t *)ex->cfg;
}

/* ---- exporter queues ------------------------------------------------------------------ */

typedef struct exq exq_t;

typedef struct batch_settings {
    int enabled;
    int64_t send_batch_size;     /* items */
    int64_t send_batch_max_size; /* items, 0 = no limit */
    int64_t timeout_ms;
} batch_settings_t;

exq_t *exq_create(exporter_t *ex, pipeline_t *p, mt_signal_t s, const batch_settings_t *bs);
int exq_start(exq_t *q);
/* Reserves room for one batch of `bytes` and `items`. Returns MT_OK, MT_AGAIN when full, or
 * MT_ETOOBIG when the batch is larger than queue_bytes or queue_items (it never fits). */
int exq_reserve(exq_t *q, size_t bytes, uint64_t items);
void exq_unreserve(exq_t *q, size_t bytes, uint64_t items);
/* Pushes into reserved room; takes a reference on b (a persistent queue writes b to disk
 * instead, and returns once it is there). Returns MT_OK; for a persistent queue also MT_AGAIN
 * when its disk is full and on_full is refuse (nothing was queued or counted), or MT_EIO when
 * the write's fsync failed (queued, but not to be acknowledged). The reservation is gone
 * either way. */
int exq_push_reserved(exq_t *q, mt_batch_t *b);
/* Makes q persistent (before exq_start): its batches go to a segment store in
 * `dir`/<exporter>@<pipeline>, written and (with fsync) synced before exq_push_reserved
 * returns; what the store holds from an earlier run is sent first, and the ledger goes on
 * from where it was. Returns MT_OK or an error with the reason in eb. */
int exq_open_storage(exq_t *q, const char *dir, int fsync, mt_errbuf_t *eb);
int exq_persistent(const exq_t *q);
int exq_on_full_drop(const exq_t *q);
exporter_t *exq_exporter(const exq_t *q);
/* Stops accepting, lets workers drain until deadline, then counts what is left as dropped. */
void exq_stop(exq_t *q, uint64_t deadline_ns);
void exq_destroy(exq_t *q);

/* ---- reload (main thread) ---- */
/* exq_stop for a queue a reload removed (its exporter, or the exporter from this pipeline):
 * what cannot be sent by the deadline is dropped as "removed" (a persistent queue keeps it on
 * disk). `exporter_stays`: the exporter lives on in other pipelines (it must not give up). */
void exq_retire(exq_t *q, uint64_t deadline_ns, int exporter_stays);
/* A queue carried into a new configuration takes that pipeline's batch settings. */
void exq_set_batch(exq_t *q, const batch_settings_t *bs);
/* Makes q (created, not started) the successor of pred (same exporter id and pipeline,
 * changed settings): q's ledger includes pred's until exq_handover, and a persistent pred's
 * store is shared (the same directory) instead of opened. */
void exq_succeed(exq_t *q, exq_t *pred);
/* Nonzero when q shares its predecessor's store (exq_succeed). */
int exq_successor_shares_store(const exq_t *q);
/* Once nothing pushes into old any more: stops old's workers (a send in progress ends, or is
 * given back after a failed attempt), moves its batches ahead of q's, its ledger into q's and
 * its store to q, then starts q's workers. Nothing is dropped. Returns exq_start's result. */
int exq_handover(exq_t *old, exq_t *q);
/* Nonzero once exq_handover emptied q into its successor. */
int exq_handed_over(const exq_t *q);
double exq_fill_ratio(const exq_t *q);
/* Counts items this queue was handed but dropped without queuing (on_full: drop): they are
 * accepted and dropped{reason} in the ledger. */
void exq_count_drop(exq_t *q, uint64_t items, const char *reason);

/* The loss ledger of one queue, in items: accepted = sent + sum(dropped) + queued, where
 * queued counts what sits in memory, in flight or on disk. exq_ledger() copies it under the
 * queue lock, so the equation holds in every copy. */
typedef seg_ledger_t exq_ledger_t;
void exq_ledger(const exq_t *q, exq_ledger_t *out);
const char *exq_pipeline_id(const exq_t *q);
mt_signal_t exq_signal(const exq_t *q);

/* ---- processors ----------------------------------------------------------------------- */

/* What a mutating processor did besides changing data. */
typedef struct proc_result {
    uint64_t dropped; /* items it removed: counted, the client sees partial_success */
    int reject;       /* refuse the whole request: 400 with msg */
    char msg[256];    /* first reason (for partial_success / the 400 body) */
} proc_result_t;

typedef struct processor_ops {
    const char *type;
    const cfg_field_t *fields;
    size_t nfields;
    size_t cfg_size;
    unsigned signals;
    const char *help;
    void (*validate)(cfg_ctx_t *c, void *cfg, const char *path, const cfg_node_t *node);
    /* Mutating processors: change the decoded request in place (allocating from a). Returns
     * MT_OK or an error. NULL for processors that only configure the pipeline (batch,
     * memory_limiter). */
    int (*process)(processor_t *pr, mt_signal_t s, ProtobufCMessage *req, arena_t *a,
                   proc_result_t *r);
    /* Optional: looks at the encoded request and returns 0 when process() would change
     * nothing, so a pipeline whose processors all say 0 forwards the bytes undecoded. Must
     * never return 0 when process() would act: when unsure, return 1. */
    int (*inspect)(processor_t *pr, mt_signal_t s, const uint8_t *pb, size_t len);
    void (*free_cfg)(void *cfg);
} processor_ops_t;

struct processor {
    const processor_ops_t *ops;
    char *id;
    void *cfg;
};

/* ---- pipelines ------------------------------------------------------------------------ */

struct pipeline {
    char *id; /* "traces" or "traces/2" */
    mt_signal_t signal;
    processor_t **procs; /* mutating ones only, in order */
    size_t nprocs;
    exq_t **queues;
    size_t nqueues;
    tm_counter_t *c_refused, *c_dropped_proc;
};

typedef struct consume_result {
    int status;        /* MT_OK, MT_AGAIN (refused: full), MT_ENOMEM, MT_EINVAL (rejected) */
    uint64_t rejected; /* items not taken (partial success) */
    char msg[256];
} consume_result_t;

/* Observers see every accepted request once, after the processors of its first pipeline, as
 * an encoded Export<Signal>ServiceRequest (the SLO engine, validation mode). They run on the
 * receiving thread: they must be quick and never block. Register before receivers start. */
typedef void (*pipeline_observer_fn)(void *arg, mt_signal_t s, const uint8_t *pb, size_t len,
                                     uint64_t items, const char *tenant);
int pipeline_add_observer(pipeline_observer_fn fn, void *arg);
void pipeline_remove_observer(pipeline_observer_fn fn, void *arg);
int pipeline_observer_count(void);

/* Nonzero when every pipeline in `ps` can carry batches in `format` (MT_FMT_*) as they are:
 * no data processors, and every exporter accepts the format. Fixed once the service started. */
int pipeline_accepts_format(pipeline_t *const *ps, size_t nps, int format);

/* Hands an already validated encoding in a pass-through `format` to every pipeline in `ps`
 * (which must accept it), all-or-nothing like pipeline_consume. Observers see `otlp` (the
 * same data as OTLP, packed here) when it is given; callers pass it when
 * pipeline_observer_count() > 0. */
void pipeline_consume_encoded(pipeline_t **ps, size_t nps, mt_signal_t s, int format,
                              const uint8_t *data, size_t len, uint64_t items, const char *tenant,
                              const ProtobufCMessage *otlp, consume_result_t *res);

/* Hands one request to every pipeline in `ps`. `req` is the decoded request, or NULL when only
 * the validated protobuf encoding `raw` exists (then it is decoded here if a processor needs
 * it). `raw` is NULL for JSON requests; it is reused as-is when no processor changed anything.
 * All-or-nothing across refusing queues: either every queue took the batch (or counted a
 * drop), or none did and the result is MT_AGAIN. */
void pipeline_consume(pipeline_t **ps, size_t nps, mt_signal_t s, ProtobufCMessage *req,
                      const uint8_t *raw, size_t raw_len, uint64_t items, const char *tenant,
                      arena_t *a, consume_result_t *res);

/* ---- receivers ------------------------------------------------------------------------ */

typedef struct receiver_ops {
    const char *type;
    const cfg_field_t *fields;
    size_t nfields;
    size_t cfg_size;
    unsigned signals;
    const char *help;
    void (*validate)(cfg_ctx_t *c, void *cfg, const char *path, const cfg_node_t *node);
    int (*start)(receiver_t *r, mt_errbuf_t *eb);
    void (*stop)(receiver_t *r);
    void (*free_cfg)(void *cfg);
} receiver_ops_t;

struct receiver {
    const receiver_ops_t *ops;
    char *id;
    void *cfg;
    void *state;
    pipeline_t **pipes[MT_SIG_COUNT];
    size_t npipes[MT_SIG_COUNT];
    extension_t *auth; /* auth.authenticator, resolved by the service (NULL = none; auth.h) */
};

/* ---- extensions ----------------------------------------------------------------------- */

typedef struct extension_ops {
    const char *type;
    const cfg_field_t *fields;
    size_t nfields;
    size_t cfg_size;
    const char *help;
    int (*start)(extension_t *e, service_t *svc, mt_errbuf_t *eb);
    void (*stop)(extension_t *e);
    /* Optional: checks beyond the table (like receiver_ops_t.validate). */
    void (*validate)(cfg_ctx_t *c, void *cfg, const char *path, const cfg_node_t *node);
} extension_ops_t;

/* The directory and fsync setting of a file_storage extension; MT_EINVAL when x is another
 * type. (file_storage.c) */
int file_storage_settings(const extension_t *x, const char **dir, int *fsync);

struct extension {
    const extension_ops_t *ops;
    char *id;
    void *cfg;
    void *state;
};

/* ---- registry ------------------------------------------------------------------------- */

const receiver_ops_t *registry_receiver(const char *type);
const processor_ops_t *registry_processor(const char *type);
const exporter_ops_t *registry_exporter(const char *type);
const extension_ops_t *registry_extension(const char *type);
/* How `meltp help-config` prints the reference: plain text, or the Markdown page that
 * docs/CONFIGURATION.md is (`make docs`). */
typedef enum { REGISTRY_HELP_TEXT, REGISTRY_HELP_MARKDOWN } registry_help_format_t;
/* Prints every component type with its config table (and the common exporter keys). */
void registry_print_help(FILE *f, registry_help_format_t fmt);

#endif
