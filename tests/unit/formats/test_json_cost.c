/*
 * test_json_cost.c - tests for collector/formats/json_cost.c: the estimate is an upper bound of
 * what jansson really holds at its peak (measured here with a counting allocator), and not a
 * wild one, for the shapes OTLP/JSON bodies have and for the issue-13 reproducers.
 */
#include "unit.h"

#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "json_cost.h"

static size_t jc_cur, jc_peak;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p) {
        jc_cur += malloc_usable_size(p) + 8; /* + the chunk header */
        if (jc_cur > jc_peak) {
            jc_peak = jc_cur;
        }
    }
    return p;
}

static void count_free(void *p)
{
    if (p) {
        jc_cur -= malloc_usable_size(p) + 8;
        free(p);
    }
}

/* Peak heap bytes of json_loadb(text), or 0 when it does not parse. */
static size_t jansson_peak(const char *text, size_t len)
{
    json_set_alloc_funcs(count_malloc, count_free);
    jc_cur = jc_peak = 0;
    json_error_t e;
    json_t *root = json_loadb(text, len, 0, &e);
    size_t peak = root ? jc_peak : 0;
    json_decref(root);
    json_set_alloc_funcs(malloc, free);
    return peak;
}

/* head + n x item (the last one without its trailing comma) + tail, malloc'd */
static char *repeat(const char *head, const char *item, const char *tail, size_t n, size_t *len)
{
    size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
    char *b = malloc(hl + il * n + tl + 1);
    if (!b) {
        return NULL;
    }
    memcpy(b, head, hl);
    size_t o = hl;
    for (size_t i = 0; i < n; i++) {
        memcpy(b + o, item, il);
        o += il;
    }
    o--; /* drop the last comma */
    memcpy(b + o, tail, tl);
    o += tl;
    b[o] = 0;
    *len = o;
    return b;
}

static int bound_holds(const char *head, const char *item, const char *tail, size_t n)
{
    size_t len;
    char *b = repeat(head, item, tail, n, &len);
    if (!b) {
        return 0;
    }
    size_t real = jansson_peak(b, len), est = jcost_estimate(b, len);
    free(b);
    int ok = real > 0 && est >= real && est <= real * 2 + 4096;
    if (!ok) {
        fprintf(stderr, "    %s%s...: jansson %zu bytes, estimate %zu\n", head, item, real, est);
    }
    return ok;
}

UNIT_TEST(estimate_bounds_jansson_for_otlp_shapes)
{
    /* issue 13: empty spans and empty log records, 3 bytes each */
    CHECK(
        bound_holds("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[", "{},", "]}]}]}", 100000));
    CHECK(bound_holds("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[", "{},", "]}]}]}",
                      65537)); /* just past a table doubling */
    /* realistic spans: ids, names, int64 as strings, attributes */
    CHECK(bound_holds("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[",
                      "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":"
                      "\"0102030405060708\",\"name\":\"GET /x\",\"kind\":2,"
                      "\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":"
                      "\"1700000000100000000\",\"attributes\":[{\"key\":\"http.status_code\","
                      "\"value\":{\"intValue\":\"200\"}},{\"key\":\"ok\",\"value\":"
                      "{\"boolValue\":true}}]},",
                      "]}]}]}", 20000));
    /* numbers, empty arrays, nulls, long strings */
    CHECK(bound_holds("[", "[1,2.5,-3e4,null,true],", "]", 50000));
    CHECK(bound_holds("[", "[],", "]", 50000));
    CHECK(bound_holds("{\"a\":[", "\"a long string value, about sixty bytes of log text here\",",
                      "]}", 50000));
}

UNIT_TEST(estimate_handles_escapes_and_junk)
{
    const char *s = "{\"k\\\"ey\":\"v\\\\\",\"n\":[-1,2]}";
    CHECK(jcost_estimate(s, strlen(s)) >= jansson_peak(s, strlen(s)));
    /* unterminated string, bare junk: a finite number, no read past len */
    CHECK(jcost_estimate("\"abc\\", 5) > 0);
    CHECK(jcost_estimate("", 0) == 0);
    char junk[256];
    for (int i = 0; i < 256; i++) {
        junk[i] = (char)i;
    }
    CHECK(jcost_estimate(junk, sizeof(junk)) < 100000);
}
