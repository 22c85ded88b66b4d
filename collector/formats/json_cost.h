/*
 * json_cost.h - what parsing a JSON text with jansson will cost, found by one pass over the
 * text before parsing. jansson mallocs every value on its own (outside any arena), so the only
 * way to bound a request's JSON tree without replacing the process-wide jansson allocator is
 * to know its size first: the OTLP/JSON decoder charges this estimate to the request's arena
 * (cap and memory limit) and refuses before jansson allocates anything.
 */
#ifndef JSON_COST_H
#define JSON_COST_H

#include <stddef.h>

/* An upper bound of the heap bytes (malloc chunk headers included) json_loadb(s, len, 0) holds
 * at its peak for this text on glibc with jansson 2.13/2.14, measured per token kind (see the
 * constants in json_cost.c and tests/unit/formats/test_json_cost.c, which checks the bound
 * against jansson itself). Works on any bytes: invalid JSON gets a bound for its longest
 * parseable prefix. O(len), no allocation. */
size_t jcost_estimate(const char *s, size_t len);

#endif
