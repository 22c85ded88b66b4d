/*
 * schema.h - declarative telemetry schemas: a YAML file of named rules per signal (required /
 * allowed attributes and their types, enum values, regexes and lengths; metric name, unit and
 * type conventions; cardinality limits with an overflow series; Loki label limits), loaded once
 * and evaluated against decoded OTLP requests. Shared by the `validate` processor (which applies
 * the rules' actions) and validation mode (which only counts), so both see the same violations
 * for the same input. The file format is documented in configs/schemas/example.yaml.
 *
 * Evaluation is read-only on the schema except for cardinality state (bounded, under a mutex),
 * so one schema_t may be used from many threads.
 */
#ifndef SCHEMA_H
#define SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "mt.h"
#include "arena.h"
#include "config.h"

typedef struct schema schema_t;

/* What a rule asks for when it is violated. */
enum {
    SCHEMA_ACT_TAG = 0,  /* add the tag attribute (default otel.schema.violation) naming the
                           * rule to the offending item; the item is kept */
    SCHEMA_ACT_DROP,     /* remove the item; counted, the client sees partial_success */
    SCHEMA_ACT_REJECT,   /* refuse the whole request: 400 with the rule's message */
    SCHEMA_ACT_OVERFLOW, /* cardinality rules only: move the point to the overflow series
                           * (its attributes become otel.metric.overflow="true") */
};
/* "tag", "drop", "reject", "overflow". */
const char *schema_action_name(int action);

/* One violation, passed to the callback. Everything is borrowed for the callback's duration. */
typedef struct schema_hit {
    const char *rule;    /* rule name from the schema file (metric label, tag value) */
    const char *message; /* the rule's message (the 400 body for reject) */
    int action;          /* SCHEMA_ACT_* */
    mt_signal_t signal;
    const char *service; /* service.name of the resource, "unknown_service" when absent */
    const char *what;    /* static reason, e.g. "missing required attribute", "type",
                            * "enum", "regex", "max_length", "not allowed", "unit", "name",
                            * "metric type", "cardinality", "label cardinality", "loki labels" */
    const char *attr;    /* attribute key or metric name concerned, or NULL. Never a value. */
    int resource_idx;    /* index of the Resource* entry in the request */
    int scope_idx;       /* index of the Scope* entry, -1 for resource-level hits */
    int item_idx;        /* span / metric / log record index, -1 for resource/scope level */
    int point_idx;       /* data point index for data-point hits, else -1 */
    uint64_t items;      /* spans / data points / log records this hit concerns */
} schema_hit_t;

/* Called once per violation, in request order. Must not keep pointers from `hit`. */
typedef void (*schema_hit_fn)(void *arg, const schema_hit_t *hit);

/* Totals of one evaluation. */
typedef struct schema_result {
    uint64_t violations; /* hits reported */
    uint64_t dropped;    /* items removed (apply) or that would be removed (check) */
    uint64_t tagged;     /* items tagged (or that would be) */
    uint64_t overflowed; /* data points moved to an overflow series (or that would be) */
    int reject;          /* a reject rule fired */
    char msg[256];       /* first reject message, else the first drop's rule message */
} schema_result_t;

/* Loads and compiles a schema file. Errors (all of them, not only the first) are added to `c`
 * as "SCHEMA_FILE:LINE: path: reason" - the schema file's own name and lines, whatever c->file
 * is. Returns the schema (free with schema_destroy) or NULL when there was any error. */
schema_t *schema_load(const char *path, cfg_ctx_t *c);
/* Same from memory; `name` stands for the file name in messages. */
schema_t *schema_load_string(const char *name, const char *text, size_t len, cfg_ctx_t *c);
/* Frees the schema and its cardinality state. Accepts NULL. */
void schema_destroy(schema_t *sc);

/* Name the schema was loaded from (borrowed). */
const char *schema_file(const schema_t *sc);
/* Number of rules in the schema. */
size_t schema_rule_count(const schema_t *sc);
/* Name of rule i (borrowed), NULL when out of range. */
const char *schema_rule_name(const schema_t *sc, size_t i);
/* 1 when the schema has rules for signal s (traces, metrics, logs; profiles never). */
int schema_covers(const schema_t *sc, mt_signal_t s);

/* Evaluates every rule against a decoded Export<Signal>ServiceRequest without changing it,
 * calling fn (may be NULL) per violation and filling res (may be NULL). Cardinality rules
 * update the schema's series state exactly as schema_apply does, so check and apply on the same
 * stream report the same counts. When a reject rule fires, cardinality state is not updated
 * (the request would not have been accepted). Returns MT_OK or MT_ENOMEM. */
int schema_check(schema_t *sc, mt_signal_t s, const ProtobufCMessage *req, schema_hit_fn fn,
                 void *arg, schema_result_t *res);

/* Same evaluation as schema_check, then applies the actions to `req` in place (new arrays and
 * strings from arena `a`): tags items, removes dropped items, rewrites overflow points. On
 * reject nothing is changed and res->reject is set. Returns MT_OK or MT_ENOMEM. */
int schema_apply(schema_t *sc, mt_signal_t s, ProtobufCMessage *req, arena_t *a, schema_hit_fn fn,
                 void *arg, schema_result_t *res);

/* Convenience for observers holding an encoded request: decodes `pb` into a scratch arena and
 * runs schema_check. Returns MT_OK, MT_EINVAL (undecodable) or MT_ENOMEM. */
int schema_check_encoded(schema_t *sc, mt_signal_t s, const uint8_t *pb, size_t len,
                         schema_hit_fn fn, void *arg, schema_result_t *res);

/* Bumps meltp_validate_violations_total{rule, service, action} for one hit (the metric the
 * validate processor exports; validation mode may call it too). Looks counters up under a
 * mutex: call once per hit, not per byte. */
void schema_count_hit(const schema_hit_t *hit);
/* Same, adding n at once (for callers that sum hits per request first). */
void schema_count_hit_n(const schema_hit_t *hit, uint64_t n);

/* Forgets all cardinality state (series seen so far). */
void schema_reset_cardinality(schema_t *sc);

#endif
