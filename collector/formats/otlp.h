/*
 * otlp.h - OTLP message helpers shared by receivers, processors and exporters: the request
 * descriptor per signal, arena-backed unpacking with a readable reason on failure, item
 * counting and structural validation, and the response / google.rpc.Status bodies.
 */
#ifndef OTLP_H
#define OTLP_H

#include <protobuf-c/protobuf-c.h>
#include "otlp_collector.pb-c.h"
#include "rpc_status.pb-c.h"
#include "arena.h"
#include "mt.h"
#include <stddef.h>

/* The head every metric data point type shares (Number, Histogram, ExponentialHistogram,
 * Summary), so a walker can read attributes and times without a switch per type. */
typedef struct otlp_pt_head {
    ProtobufCMessage base;
    size_t n_attributes;
    Opentelemetry__Proto__Common__V1__KeyValue **attributes;
    uint64_t start_time_unix_nano;
    uint64_t time_unix_nano;
} otlp_pt_head_t;
#define OTLP_PT_HEAD_LAYOUT_(T)                                                                 \
    _Static_assert(offsetof(T, attributes) == offsetof(otlp_pt_head_t, attributes) &&           \
                       offsetof(T, time_unix_nano) == offsetof(otlp_pt_head_t, time_unix_nano), \
                   #T " layout")
OTLP_PT_HEAD_LAYOUT_(Opentelemetry__Proto__Metrics__V1__NumberDataPoint);
OTLP_PT_HEAD_LAYOUT_(Opentelemetry__Proto__Metrics__V1__HistogramDataPoint);
OTLP_PT_HEAD_LAYOUT_(Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint);
OTLP_PT_HEAD_LAYOUT_(Opentelemetry__Proto__Metrics__V1__SummaryDataPoint);
#undef OTLP_PT_HEAD_LAYOUT_

/* Export<Signal>ServiceRequest descriptor for a signal. */
const ProtobufCMessageDescriptor *otlp_request_desc(mt_signal_t s);
/* HTTP path ("/v1/traces") of a signal. */
const char *otlp_path(mt_signal_t s);
/* The text of a scalar AnyValue: a string as it is, an int as decimal, a bool as
 * true/false, a double as %g (the latter two written into buf); NULL for NULL, arrays, maps
 * and bytes. */
const char *otlp_value_text(const Opentelemetry__Proto__Common__V1__AnyValue *v, char *buf,
                            size_t blen);

/* Unpacks an Export*ServiceRequest into the arena. On failure returns NULL and eb names the
 * field path and what was wrong with the wire data (found by a second, explaining walk). */
ProtobufCMessage *otlp_unpack(mt_signal_t s, const uint8_t *data, size_t len, arena_t *a,
                              mt_errbuf_t *eb);

/* Validates an encoded Export*ServiceRequest without decoding it (wire structure against the
 * schema, UTF-8, id lengths, nesting) and counts its items. The verdict is the decode path's
 * (otlp_unpack + otlp_validate_utf8 + otlp_check), exactly: MT_OK with the same item count, or
 * MT_EINVAL (no reason: decode for one), or MT_EUNSUPPORTED when only the decoder can tell
 * (duplicated oneofs or singular messages, which protobuf-c keeps or merges): decode it. */
int otlp_scan(mt_signal_t s, const uint8_t *data, size_t len, uint64_t *items);
/* 1 when [p, p+n) is valid UTF-8 as the scanner checks it (no overlongs, no surrogates,
 * <= U+10FFFF), else 0. The scanner's own check, for other wire readers (tests/bench). */
int otlp_utf8_ok(const uint8_t *p, size_t n);
/* Events found by the scan (log records with an event name or an `event.name` attribute),
 * per resource with the resource's service.name as a slice of the request bytes. */
#define OTLP_EVENT_RESOURCES 32
typedef struct otlp_events {
    uint64_t total;
    size_t n;
    int overflow; /* more resources with events than fit: count them with a walk instead */
    struct {
        const uint8_t *svc; /* NULL: no service.name */
        size_t svcn;
        uint64_t count;
    } r[OTLP_EVENT_RESOURCES];
} otlp_events_t;

/* The same, for logs also finding events in the same pass. */
int otlp_scan_events(mt_signal_t s, const uint8_t *data, size_t len, uint64_t *items,
                     otlp_events_t *ev);

/* Calls cb(arg, text, len) for every string value in an encoded (already validated) request
 * and for every AnyValue int_value as decimal text, skipping KeyValue keys. Returns 1 as soon
 * as cb returns nonzero, else 0. Lets processors look at bytes before anything is decoded. */
int otlp_walk_values(mt_signal_t s, const uint8_t *data, size_t len,
                     int (*cb)(void *arg, const char *p, size_t n), void *arg);

/* Counts spans / data points / log records and checks structure (trace and span id lengths).
 * Returns MT_OK, or MT_EINVAL with eb naming the offending item. */
int otlp_check(mt_signal_t s, const ProtobufCMessage *req, uint64_t *items, mt_errbuf_t *eb);

/* Builds the 200 response body (protobuf or JSON). rejected > 0 or a message sets
 * partial_success. Returns a malloc'd body (may be empty: len 0, non-NULL). */
uint8_t *otlp_response_body(mt_signal_t s, int json, int64_t rejected, const char *message,
                            size_t *len);
/* Builds a google.rpc.Status body for an error response. code is the gRPC code
 * (3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE, ...). */
uint8_t *otlp_status_body(int json, int code, const char *message, size_t *len);

/* Finds the first string field (by desc, nested messages included) whose bytes hold a NUL:
 * protobuf-c's C strings end there, so a decoder that goes through them would cut the value
 * short: the remote-write conversion refuses such a request rather than let "x\0A" and "x\0B"
 * both become "x". Returns 1 with eb naming the field ("timeseries[2].labels[0].value holds a
 * NUL byte ..."), else 0 (also for malformed data, which the decoder reports). */
int otlp_wire_find_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                       mt_errbuf_t *eb);

/* Walks encoded protobuf `data` against `desc` and explains the first wire error (used when
 * protobuf-c refuses a message; protobuf-c itself gives no reason). Returns MT_OK when it finds
 * nothing wrong. */
int otlp_wire_explain(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      mt_errbuf_t *eb);

/* Reads partial_success from an Export*ServiceResponse body (protobuf): returns the items the
 * server rejected (0 when none or when the body does not decode) and copies its error_message
 * into msg. Shared by the otlphttp and otlp (gRPC) exporters. */
int64_t otlp_partial_rejected(mt_signal_t s, const char *body, size_t len, char *msg,
                              size_t msglen);

#endif
