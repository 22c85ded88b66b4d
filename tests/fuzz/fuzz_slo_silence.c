/*
 * fuzz_slo_silence.c - the SLO alert silences API (slo/silence.c) and the Alertmanager matcher
 * parser (slo/spec_promql.c) behind slo.routes, slo.inhibit and silences: both read untrusted
 * text (a POST /api/v1/silences body from the network, matchers from a config). Input: one
 * byte picking the mode (mod 2), then:
 *   0 a POST /api/v1/silences body, into an in-memory set (no file);
 *   1 one matcher text for slo_matcher_parse.
 * Oracle: a POST answered 200 adds exactly one silence to GET /api/v1/silences (and a refused
 * one none); a parsed matcher parses again from its own name, operator and quoted value to
 * the same matcher. Beyond that: no crash, leak or sanitizer report.
 */
#include "fuzz.h"
#include "silence.h"

#include <jansson.h>

static size_t count(slo_silences_t *s, int64_t now)
{
    char *out = NULL;
    size_t len = 0;
    const char *ct;
    int st = slo_silence_http(s, "GET", "/api/v1/silences", NULL, 0, now, &out, &len, &ct);
    json_t *j = st == 200 && out ? json_loadb(out, len, 0, NULL) : NULL;
    size_t n = json_array_size(j);
    json_decref(j);
    free(out);
    return n;
}

/* Double-quoted with the escapes slo_matcher_parse reads back (\" \\ \n \t). */
static char *quote(const char *v)
{
    char *q = malloc(2 * strlen(v) + 3), *p = q;
    if (!q) {
        return NULL;
    }
    *p++ = '"';
    for (; *v; v++) {
        char c = *v;
        if (c == '"' || c == '\\' || c == '\n' || c == '\t') {
            *p++ = '\\';
            c = c == '\n' ? 'n' : c == '\t' ? 't' : c;
        }
        *p++ = c;
    }
    *p++ = '"';
    *p = 0;
    return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    unsigned mode = fuzz_take_byte(&data, &size) % 2;
    const int64_t now = 1800000000000LL;
    if (mode == 0) {
        slo_silences_t *s = slo_silence_create(NULL);
        if (!s) {
            return 0;
        }
        char *out = NULL;
        size_t len = 0;
        const char *ct;
        int st = slo_silence_http(s, "POST", "/api/v1/silences", (const char *)data, size, now,
                                  &out, &len, &ct);
        free(out);
        size_t n = count(s, now);
        if ((st == 200) != (n == 1)) {
            FUZZ_ORACLE_FAIL("POST answered %d but the list holds %zu silences", st, n);
        }
        slo_silence_destroy(s);
        return 0;
    }
    char *text = fuzz_cstr(data, size);
    if (!text || memchr(data, 0, size)) {
        free(text);
        return 0;
    }
    slo_matcher_t m, again;
    char err[256];
    if (slo_matcher_parse(text, &m, err, sizeof(err)) == 0) {
        char *q = quote(m.value);
        char *t2 = NULL;
        if (q && asprintf(&t2, "%s%s%s", m.name, slo_match_op_text(m.op), q) >= 0) {
            if (slo_matcher_parse(t2, &again, err, sizeof(err)) != 0) {
                FUZZ_ORACLE_FAIL("matcher %s does not parse again: %s", t2, err);
            } else {
                if (strcmp(again.name, m.name) || strcmp(again.value, m.value) ||
                    again.op != m.op) {
                    FUZZ_ORACLE_FAIL("matcher %s parses to another matcher", t2);
                }
                slo_matcher_free(&again);
            }
            free(t2);
        }
        free(q);
        slo_matcher_free(&m);
    }
    free(text);
    return 0;
}
