/*
 * validate_pii.h - the PII audit of `meltp validate`: scans each request as it arrived, before
 * any processor ran, and adds one report entry per (detector, service, where, action), where
 * action is what the pipeline's synthetic_guard stages do with such a finding. Scanning after
 * the processors would hide exactly what a guard redacts, i.e. the services that leak personal
 * data. Values are never copied into the report.
 */
#ifndef VALIDATE_PII_H
#define VALIDATE_PII_H

#include <stddef.h>

#include "component.h"
#include "pii.h"
#include "validate_report.h"

/* Scans request `req` of signal s with the audit's detectors `pii` (the policy's) and counts
 * the findings in rep. `stages` are the processors of the pipeline the request goes through,
 * in order (only synthetic_guard ones matter; NULL / 0 when none run or they already ran).
 * A finding's action is that of the first guard that redacts, hashes or drops it (or drops its
 * whole resource for a missing synthetic marker), else "flag" when a guard flags it, else
 * "none". */
void vp_scan_request(const pii_t *pii, vr_report_t *rep, mt_signal_t s, const ProtobufCMessage *req,
                     processor_t *const *stages, size_t nstages);

#endif
