/*
 * fuzz_slo_spec.c - the SLO spec loader (slo/spec.c) for every dialect it detects (native
 * meltp/v1, Sloth prometheus/v1, OpenSLO v1 with refs across documents) and the PromQL subset
 * it reads from imported queries and selectors. The PromQL parser is file-local to spec.c, so
 * it is reached the way users reach it: through a spec. Input: one byte picking the mode
 * (mod 4), then:
 *   0 a whole spec file (any dialect, `---` separated documents);
 *   1 "ERROR_QUERY\nTOTAL_QUERY" put into a Sloth events SLI;
 *   2 "GOOD_QUERY\nTOTAL_QUERY" put into an OpenSLO ratioMetric SLI (Prometheus source);
 *   3 a selector put into a native latency SLI's `histogram:`.
 * In modes 1-3 the text is placed in YAML literal blocks (line breaks in it become spaces), so
 * mutations reach the query parser instead of stopping in YAML. Oracle: none beyond "no crash,
 * no leak, no sanitizer report"; every refusal is a message in the context.
 */
#include "fuzz.h"
#include "model.h"

static const char sloth_tpl[] = "version: prometheus/v1\n"
                                "service: fuzz\n"
                                "slos:\n"
                                "  - name: s\n"
                                "    objective: 99.9\n"
                                "    sli:\n"
                                "      events:\n"
                                "        error_query: |-\n"
                                "          %s\n"
                                "        total_query: |-\n"
                                "          %s\n"
                                "    alerting:\n"
                                "      name: FuzzBurn\n";

static const char openslo_tpl[] = "apiVersion: openslo/v1\n"
                                  "kind: SLO\n"
                                  "metadata:\n"
                                  "  name: s\n"
                                  "spec:\n"
                                  "  service: fuzz\n"
                                  "  indicator:\n"
                                  "    metadata:\n"
                                  "      name: i\n"
                                  "    spec:\n"
                                  "      ratioMetric:\n"
                                  "        counter: true\n"
                                  "        good:\n"
                                  "          metricSource:\n"
                                  "            type: Prometheus\n"
                                  "            spec:\n"
                                  "              query: |-\n"
                                  "                %s\n"
                                  "        total:\n"
                                  "          metricSource:\n"
                                  "            type: Prometheus\n"
                                  "            spec:\n"
                                  "              query: |-\n"
                                  "                %s\n"
                                  "  timeWindow:\n"
                                  "    - duration: 28d\n"
                                  "      isRolling: true\n"
                                  "  budgetingMethod: Occurrences\n"
                                  "  objectives:\n"
                                  "    - target: 0.995\n";

static const char native_tpl[] = "version: meltp/v1\n"
                                 "service: fuzz\n"
                                 "slos:\n"
                                 "  - name: latency\n"
                                 "    objective: 99\n"
                                 "    sli:\n"
                                 "      latency:\n"
                                 "        histogram: |-\n"
                                 "          %s\n"
                                 "        threshold: 0.3\n"
                                 "    alerting:\n"
                                 "      name: FuzzLatency\n";

static void load(const char *text, size_t len)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "fuzz-slo.yaml");
    slo_set_t *set = NULL;
    (void)slo_specs_load_string("fuzz-slo.yaml", text, len, 60000, &c, &set);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    unsigned mode = fuzz_take_byte(&data, &size) % 4;
    if (mode == 0) {
        load((const char *)data, size);
        return 0;
    }
    /* one line or two, NUL-free, line breaks flattened so each stays in its literal block */
    char *q = fuzz_cstr(data, size);
    if (!q) {
        return 0;
    }
    if (memchr(data, 0, size)) {
        free(q);
        return 0;
    }
    char *second = strchr(q, '\n');
    if (second) {
        *second++ = 0;
    } else {
        second = q;
    }
    for (char *p = q; p < q + size; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
    char *text = NULL;
    int n;
    if (mode == 1) {
        n = asprintf(&text, sloth_tpl, q, second);
    } else if (mode == 2) {
        n = asprintf(&text, openslo_tpl, q, second);
    } else {
        n = asprintf(&text, native_tpl, q);
    }
    if (n >= 0) {
        load(text, (size_t)n);
        free(text);
    }
    free(q);
    return 0;
}
