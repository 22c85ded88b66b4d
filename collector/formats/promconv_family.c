/*
 * promconv_family.c - the one place that decides which Prometheus metric family an OTLP metric
 * becomes: its type (counter, gauge, histogram, summary, or a `prometheus.type` hint) and the
 * family name promconv_metric_name gives it. promconv_convert names its series with it, and
 * the SLO engine and validation mode match selectors against the same answer, so the three can
 * never disagree on a name. Kept out of promconv.c, which is already long.
 */
#include "promconv.h"

#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;

/* `prometheus.type` in Metric.metadata (set by Prometheus-aware producers) turns a gauge into
 * unknown / info / stateset; -1 when absent or unrecognised. */
static int type_hint(const metric_t *m)
{
    static const struct {
        const char *name;
        int type;
    } hints[] = {
        {"gauge", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE},
        {"unknown", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN},
        {"info", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO},
        {"stateset", PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET},
    };
    for (size_t i = 0; i < m->n_metadata; i++) {
        const kv_t *kv = m->metadata[i];
        if (!kv || !kv->key || strcmp(kv->key, "prometheus.type") != 0 || !kv->value ||
            kv->value->value_case !=
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            continue;
        }
        for (size_t k = 0; k < MT_ARRAY_LEN(hints); k++) {
            if (strcmp(kv->value->string_value, hints[k].name) == 0) {
                return hints[k].type;
            }
        }
    }
    return -1;
}

int promconv_family_type(const metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (m->sum && m->sum->is_monotonic) {
            return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM;
    default:
        return PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY;
    }
    int hint = type_hint(m); /* gauges and non-monotonic sums */
    return hint >= 0 ? hint : PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
}

int promconv_family_name(const metric_t *m, int add_suffixes, const char *ns, char *buf,
                         size_t buflen, int *type)
{
    int t = promconv_family_type(m);
    if (type) {
        *type = t;
    }
    int counter = t == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
    int gauge = t == PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE;
    return promconv_metric_name(m->name ? m->name : "", m->unit ? m->unit : "", counter, gauge,
                                add_suffixes, ns, buf, buflen);
}
