/*
 * unit_proc.h - helpers for tests that drive processors through their descriptors the way the
 * service does: the config table and validator from the registry applied to a YAML string, then
 * process() on a request given as OTLP/JSON, with the result encoded back to OTLP/JSON.
 */
#ifndef UNIT_PROC_H
#define UNIT_PROC_H

#include "component.h"

/* Builds processor `type` (id = type) from `yaml`, the body of its config map ("" = empty).
 * Returns NULL when the type is unknown or the config has errors; errors are in c, which the
 * caller inits with file "proc.yaml" here and finis. */
processor_t *unit_proc_create(const char *type, const char *yaml, cfg_ctx_t *c);
void unit_proc_destroy(processor_t *p); /* accepts NULL */

/* Decodes `json` as an Export<s>ServiceRequest, runs p->ops->process on it and returns the
 * result as malloc'd OTLP/JSON (caller frees), or NULL when decoding failed. *rc gets what
 * process returned and *r its proc_result. */
char *unit_proc_run(processor_t *p, mt_signal_t s, const char *json, int *rc, proc_result_t *r);

#endif
