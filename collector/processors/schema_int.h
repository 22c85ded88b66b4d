/*
 * schema_int.h - PRIVATE to the schema module (schema.c: loading, schema_eval.c: evaluation):
 * the compiled rule types and the limits both parts share. Other modules use schema.h and must
 * not include this header.
 */
#ifndef MELTP_SCHEMA_INT_H
#define MELTP_SCHEMA_INT_H

#include "schema.h"

#include "otlp.h"

#include <pthread.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;

#define SCHEMA_MAX_RULES            1024
#define SCHEMA_MAX_METRICS_PER_RULE 4096      /* metric names tracked by one cardinality rule */
#define SCHEMA_MAX_CARDINALITY      (1 << 20) /* largest cardinality_limit / label limit accepted */
#define SCHEMA_TAG_DEFAULT          "otel.schema.violation"
#define SCHEMA_OVERFLOW_KEY         "otel.metric.overflow"

enum { TGT_RESOURCE, TGT_SPAN, TGT_METRIC, TGT_LOG };
enum { VT_ANY, VT_STRING, VT_INT, VT_DOUBLE, VT_NUMBER, VT_BOOL, VT_BYTES, VT_ARRAY, VT_MAP };

enum { MT_ANY = 0, MT_GAUGE, MT_SUM, MT_COUNTER, MT_UPDOWN, MT_HIST, MT_EXPHIST, MT_SUMMARY };

typedef struct attr_spec {
    char *key;
    int type;
    char **enums;
    size_t nenums;
    regex_t re;
    int has_re;
    int64_t max_length;
} attr_spec_t;

/* A set of 64-bit hashes, open addressing; 0 marks an empty slot (hashes are forced odd). */
typedef struct hset {
    uint64_t *v;
    size_t cap, n;
} hset_t;

typedef struct card_ent {
    uint64_t key; /* hash of the metric name; 0 = empty slot */
    hset_t series;
    hset_t *labels; /* one per rule label limit */
} card_ent_t;

typedef struct rule {
    char *name, *message;
    int action;
    int target;
    unsigned signals;    /* resource rules */
    unsigned span_kinds; /* bit per SpanKind, 0 = any */
    regex_t match;
    int has_match;
    regex_t name_re;
    int has_name_re;
    int64_t name_max_length;
    char **required;
    size_t nrequired;
    char **allowed;
    size_t nallowed;
    attr_spec_t *specs;
    size_t nspecs;
    int metric_type;
    char *unit;
    char *duration_unit;
    int counter_total;
    int64_t body_max_length;
    char **loki_labels;
    size_t nloki;
    int64_t loki_max_labels, loki_max_name, loki_max_value;
    int has_loki;
    /* cardinality */
    int64_t card_limit;
    char **lim_keys;
    int64_t *lim_vals;
    size_t nlims;
    card_ent_t *ents;
    size_t nents, ents_cap;
} rule_t;

struct schema {
    char *file;
    char *tag_key;
    rule_t *rules;
    size_t nrules;
    unsigned covers;
    int has_card;
    pthread_mutex_t mu; /* cardinality state */
};

#endif
