/*
 * component_registry.c - the one list of component types. Adding a component means its own
 * file plus one line here.
 */
#include "component.h"

#include <string.h>

extern const receiver_ops_t receiver_otlp_ops, receiver_prometheusremotewrite_ops;
extern const receiver_ops_t receiver_pyroscope_ops;
extern const processor_ops_t processor_batch_ops, processor_memory_limiter_ops,
    processor_resource_ops, processor_attributes_ops;
extern const processor_ops_t processor_normalize_ops, processor_validate_ops,
    processor_synthetic_guard_ops;
extern const exporter_ops_t exporter_otlphttp_ops, exporter_file_ops, exporter_debug_ops;
extern const exporter_ops_t exporter_prometheus_ops, exporter_prw_ops;
extern const exporter_ops_t exporter_pyroscope_ops;
extern const exporter_ops_t exporter_loki_ops;
extern const extension_ops_t extension_health_check_ops;

static const receiver_ops_t *const receivers[] = {&receiver_otlp_ops,
                                                  &receiver_prometheusremotewrite_ops,
                                                  &receiver_pyroscope_ops};
static const processor_ops_t *const processors[] = {
    &processor_batch_ops, &processor_memory_limiter_ops, &processor_resource_ops,
    &processor_attributes_ops,
    &processor_normalize_ops, &processor_validate_ops, &processor_synthetic_guard_ops};
static const exporter_ops_t *const exporters[] = {&exporter_otlphttp_ops, &exporter_file_ops,
                                                  &exporter_debug_ops,
                                                  &exporter_prometheus_ops, &exporter_prw_ops,
                                                  &exporter_loki_ops, &exporter_pyroscope_ops};
static const extension_ops_t *const extensions[] = {&extension_health_check_ops};

#define FIND(arr, type)                                                                  \
    for (size_t i = 0; i < MT_ARRAY_LEN(arr); i++) {                                     \
        if (strcmp(arr[i]->type, type) == 0) {                                           \
            return arr[i];                                                               \
        }                                                                                \
    }                                                                                    \
    return NULL

const receiver_ops_t *registry_receiver(const char *type) { FIND(receivers, type); }
const processor_ops_t *registry_processor(const char *type) { FIND(processors, type); }
const exporter_ops_t *registry_exporter(const char *type) { FIND(exporters, type); }
const extension_ops_t *registry_extension(const char *type) { FIND(extensions, type); }

void registry_print_help(FILE *f)
{
    fprintf(f, "receivers:\n");
    for (size_t i = 0; i < MT_ARRAY_LEN(receivers); i++) {
        fprintf(f, "\n%s - %s\n", receivers[i]->type, receivers[i]->help);
        cfg_print_help(f, receivers[i]->fields, receivers[i]->nfields);
    }
    fprintf(f, "\nprocessors:\n");
    for (size_t i = 0; i < MT_ARRAY_LEN(processors); i++) {
        fprintf(f, "\n%s - %s\n", processors[i]->type, processors[i]->help);
        cfg_print_help(f, processors[i]->fields, processors[i]->nfields);
    }
    fprintf(f, "\nexporters (all also take the sending_queue/retry_on_failure/timeout keys below):\n");
    for (size_t i = 0; i < MT_ARRAY_LEN(exporters); i++) {
        fprintf(f, "\n%s - %s\n", exporters[i]->type, exporters[i]->help);
        cfg_print_help(f, exporters[i]->fields, exporters[i]->nfields);
    }
    fprintf(f, "\ncommon exporter settings\n");
    cfg_print_help(f, exporter_common_fields, exporter_common_nfields);
    fprintf(f, "\nextensions:\n");
    for (size_t i = 0; i < MT_ARRAY_LEN(extensions); i++) {
        fprintf(f, "\n%s - %s\n", extensions[i]->type, extensions[i]->help);
        cfg_print_help(f, extensions[i]->fields, extensions[i]->nfields);
    }
}
