/*
 * grpc.h - the gRPC wire conventions shared by the OTLP/gRPC receiver and the `otlp` exporter
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): status codes, the 5-byte
 * message prefix, grpc-timeout, grpc-message percent-encoding and google.rpc.Status with a
 * RetryInfo detail (grpc-status-details-bin). HTTP/2 itself is libnghttp2's or libcurl's job.
 */
#ifndef GRPC_H
#define GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "sb.h"

/* Status codes (grpc/doc/statuscodes.md); X(enum, value, lower-case name for reasons). */
#define GRPC_STATUSES(X)                                  \
    X(GRPC_OK, 0, "ok")                                   \
    X(GRPC_CANCELLED, 1, "cancelled")                     \
    X(GRPC_UNKNOWN, 2, "unknown")                         \
    X(GRPC_INVALID_ARGUMENT, 3, "invalid_argument")       \
    X(GRPC_DEADLINE_EXCEEDED, 4, "deadline_exceeded")     \
    X(GRPC_NOT_FOUND, 5, "not_found")                     \
    X(GRPC_ALREADY_EXISTS, 6, "already_exists")           \
    X(GRPC_PERMISSION_DENIED, 7, "permission_denied")     \
    X(GRPC_RESOURCE_EXHAUSTED, 8, "resource_exhausted")   \
    X(GRPC_FAILED_PRECONDITION, 9, "failed_precondition") \
    X(GRPC_ABORTED, 10, "aborted")                        \
    X(GRPC_OUT_OF_RANGE, 11, "out_of_range")              \
    X(GRPC_UNIMPLEMENTED, 12, "unimplemented")            \
    X(GRPC_INTERNAL, 13, "internal")                      \
    X(GRPC_UNAVAILABLE, 14, "unavailable")                \
    X(GRPC_DATA_LOSS, 15, "data_loss")                    \
    X(GRPC_UNAUTHENTICATED, 16, "unauthenticated")

typedef enum {
#define GRPC_ENUM_(e, v, s) e = v,
    GRPC_STATUSES(GRPC_ENUM_)
#undef GRPC_ENUM_
} grpc_status_t;

/* Bytes of the message prefix: 1 byte compressed flag, 4 bytes big-endian length. */
#define GRPC_PREFIX_LEN     5
/* The type URL of google.rpc.RetryInfo inside google.rpc.Status.details. */
#define GRPC_RETRY_INFO_URL "type.googleapis.com/google.rpc.RetryInfo"

/* Lower-case name ("resource_exhausted"); "unknown" for a code outside 0..16. */
const char *grpc_status_name(int code);
/* Whether the OTLP spec says a client retries this status (UNAVAILABLE, RESOURCE_EXHAUSTED with
 * RetryInfo is the caller's call, DEADLINE_EXCEEDED, ABORTED, CANCELLED, OUT_OF_RANGE, DATA_LOSS). */
int grpc_status_retryable(int code);
/* Status for an HTTP response status when no grpc-status came back (PROTOCOL-HTTP2.md table). */
grpc_status_t grpc_status_from_http(int http_status);

/* Writes the 5-byte prefix of a message of len bytes. */
void grpc_prefix_put(uint8_t out[GRPC_PREFIX_LEN], int compressed, uint32_t len);
/* Reads a prefix from p[0..n): returns GRPC_PREFIX_LEN with *compressed and *len set, 0 when
 * fewer than 5 bytes are there, -1 when the flag byte is neither 0 nor 1. */
int grpc_prefix_get(const uint8_t *p, size_t n, int *compressed, uint32_t *len);

/* Parses a grpc-timeout value ("1-8 digits" + one of H M S m u n) into nanoseconds; 0 on
 * success, -1 when malformed. */
int grpc_timeout_parse(const char *v, int64_t *ns);
/* Formats a timeout in ms as a grpc-timeout value into buf (at least 12 bytes). */
void grpc_timeout_format(int64_t ms, char *buf, size_t cap);

/* Appends msg percent-encoded for grpc-message (bytes outside 0x20..0x7e and '%' as %XX). */
void grpc_message_encode(sb_t *b, const char *msg, size_t n);
/* Decodes a grpc-message value in place (malformed escapes are kept as they are). */
void grpc_message_decode(char *s);

/* Appends the base64 (no padding, as gRPC's -bin metadata) of a google.rpc.Status{code,
 * message, details: [Any{RetryInfo{retry_delay}}]}; delay_ms < 0 leaves the detail out. */
void grpc_status_details_put(sb_t *b, int code, const char *msg, int64_t delay_ms);
/* Reads the RetryInfo delay from a grpc-status-details-bin value (base64, padded or not):
 * 0 with *delay_ms set, -1 when the value holds no RetryInfo or is malformed. */
int grpc_status_details_retry_delay(const char *b64, size_t n, int64_t *delay_ms);

#endif
