/*
 * validate_mode_int.h - PRIVATE to the validate/validate_mode module (validate_mode.c: the CLI
 * and the final report; validate_mode_policy.c: the policy file, the SLO spec audit and the
 * mirrored processors; validate_mode_analyze.c: the analysis walk over one request;
 * validate_mode_input.c: the input decoders and --listen mode). The run state and the
 * functions the parts share (prefix vm_). Other modules use validate_mode.h and must not
 * include this header.
 */
#ifndef MELTP_VALIDATE_MODE_INT_H
#define MELTP_VALIDATE_MODE_INT_H

#include "validate_report.h"
#include "validate_pii.h"

#include "component.h"
#include "service.h"
#include "config.h"
#include "otlp.h"
#include "promconv.h"
#include "schema.h"
#include "pii.h"
#include "model.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Limits checked before the work they bound. */
#define VM_MAX_FILE_BYTES    ((size_t)512 << 20) /* one input file as read from disk */
#define VM_MAX_BODY_BYTES    ((size_t)256 << 20) /* one decompressed input */
#define VM_MAX_REQUEST_ARENA ((size_t)1 << 30)   /* arena for one decoded request */
#define VM_MAX_INPUTS        4096
#define VM_MAX_STAGES        32     /* processors per pipeline we mirror */
#define VM_MAX_SERIES_SEEN   200000 /* Prometheus names remembered for SLO checks */

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

/* ---- policy ------------------------------------------------------------------------------ */

typedef struct vm_rule {
    char *pattern;
    int exact;        /* no glob characters: the service must appear */
    int score;        /* specificity: exact beats any glob, then more literal characters */
    unsigned signals; /* bit per vr_signal_t */
    char **attrs;
    size_t nattrs;
    int require_slo;
} vm_rule_t;

typedef struct vm_policy {
    vm_rule_t *rules;
    size_t nrules;
    char **slo_specs; /* globs, already resolved against the policy file's directory */
    size_t nslo_specs;
    unsigned pii_detectors;
    char **allow_domains;
    size_t nallow;
    char **mrn;
    size_t nmrn;
} vm_policy_t;

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct vm_stage {
    processor_t *pr;  /* the service's instance (first pipeline of the signal) */
    schema_t *schema; /* mirror of a `validate` processor's schema, or NULL */
} vm_stage_t;

typedef struct vm {
    vr_report_t rep;
    vm_policy_t pol;
    cfg_doc_t *doc; /* the config, for processor instances */
    const char *config_path;
    vm_stage_t stages[MT_SIG_COUNT][VM_MAX_STAGES];
    size_t nstages[MT_SIG_COUNT];
    schema_t *extra_schema; /* --schema, checked after the processors */
    pii_t *pii;
    deltacum_t *dc;
    vr_strset_t series_seen; /* Prometheus and OTel metric names seen */
    slo_set_t *slos;         /* the SLO specs audited, or NULL */
    arena_t *scratch;        /* promconv output, per request */
    pthread_mutex_t mu;      /* listen mode: observers run on many threads */
    arena_t *listen_arena;
    uint64_t listen_requests;
} vm_t;

typedef struct slo_owner {
    const char *service; /* borrowed from v->slos */
    vr_slo_t *slo;
} slo_owner_t;

/* ---- shared between the parts ------------------------------------------------------------ */

/* validate_mode_policy.c */
const vm_rule_t *vm_policy_match(const vm_policy_t *p, const char *service);
void vm_policy_fini(vm_policy_t *p);
int vm_policy_load(const char *file, vm_policy_t *p, cfg_ctx_t *c);
void vm_slo_specs_audit(vm_t *v, cfg_ctx_t *c, slo_owner_t **own, size_t *nown);
int vm_build_stages(vm_t *v, const service_t *svc, cfg_ctx_t *c);

/* validate_mode_analyze.c */
vr_service_t *vm_service_of(vm_t *v, const char *service, const char *env);
void vm_analyze(vm_t *v, mt_signal_t s, ProtobufCMessage *req);
void vm_check_schema(vm_t *v, schema_t *sc, mt_signal_t s, const ProtobufCMessage *req);
void vm_run_request(vm_t *v, mt_signal_t s, ProtobufCMessage *req, uint64_t items, arena_t *a,
                    const char *where);

/* validate_mode_input.c */
int vm_run_input(vm_t *v, const char *arg, mt_errbuf_t *eb);
void vm_listen_observer(void *arg, mt_signal_t s, const uint8_t *pb, size_t len, uint64_t items,
                        const char *tenant);
int vm_run_listen(vm_t *v, service_t *svc, int64_t ms);

#endif
