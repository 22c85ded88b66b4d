/*
 * otlp_json.h - OTLP/JSON <-> protobuf-c messages (protocols.md §1.3), for any message type.
 * The converter walks ProtobufCMessageDescriptor reflection, so every message in proto/
 * (and any proto added later) works without per-message code. Decoded messages live in
 * the caller's arena; encoded JSON is one malloc'd string.
 */
#ifndef OTLP_JSON_H
#define OTLP_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "arena.h"
#include "mt.h"

/* Deepest message nesting decode and UTF-8 validation accept (the root message is level 1).
 * It bounds recursion on hostile input: 64 levels leave room for ~30 nested AnyValue arrays. */
#define OTLP_JSON_MAX_DEPTH 64

/* Parses OTLP/JSON text into a new message of type `desc`, every allocation from `a`.
 * Returns NULL and fills eb with a reason naming the JSON path (e.g.
 * "resourceSpans[0].scopeSpans[0].spans[3].traceId: invalid hex id (length 31)").
 * Keys may be lowerCamelCase or snake_case; unknown keys and null values are ignored.
 * When the arena runs out (or hits its cap) the reason says "out of memory"; callers can
 * tell the two apart with arena_over_cap(). */
ProtobufCMessage *otlp_json_decode(const ProtobufCMessageDescriptor *desc, const char *json,
                                   size_t len, arena_t *a, mt_errbuf_t *eb);

/* Serialises msg as OTLP/JSON (lowerCamelCase keys, compact, one line, no trailing newline).
 * Returns a malloc'd NUL-terminated string (caller frees) and sets *out_len, or NULL on OOM.
 * Invalid UTF-8 in string fields is written as U+FFFD so the output is always valid JSON;
 * run otlp_validate_utf8() first to reject such input instead. */
char *otlp_json_encode(const ProtobufCMessage *msg, size_t *out_len);

/* Walks every string field of msg recursively; returns MT_OK or MT_EINVAL with eb naming the
 * field path (same path style, lowerCamelCase) of the first string that is not valid UTF-8.
 * Messages nested deeper than OTLP_JSON_MAX_DEPTH are also MT_EINVAL (bounded recursion). */
int otlp_validate_utf8(const ProtobufCMessage *msg, mt_errbuf_t *eb);

#endif
