/*
 * fuzz_config.c - the configuration loader (collector/core/config.c: libyaml's document API,
 * aliases and merge keys, ${env:...} substitution, the limits) and, for what loads, the whole
 * service build from that text (service_load: every component's config table, pipelines, the
 * SLO engine's settings; nothing is started, no socket is bound). Input: YAML text.
 *
 * No oracle beyond "no crash, no leak, no sanitizer report": both must either build or say
 * why. What it finds here is what a typo in a config file would hit at start-up or on SIGHUP.
 */
#include "config.h"
#include "fuzz.h"
#include "service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_string("fuzz.yaml", (const char *)data, size, &eb);
    if (!doc) {
        return 0;
    }
    if (doc->root->kind == CFG_NODE_MAP) {
        (void)cfg_map_get(doc->root, "service");
        (void)cfg_key_line(doc->root, "service.pipelines");
    }
    cfg_doc_destroy(doc);
    if (memchr(data, 0, size)) {
        return 0; /* service_load takes a C string */
    }
    char *text = fuzz_cstr(data, size);
    if (!text) {
        return 0;
    }
    cfg_ctx_t c;
    cfg_ctx_init(&c, "fuzz.yaml");
    service_t *s = service_load("fuzz.yaml", text, &c);
    service_stop_destroy(s);
    cfg_ctx_fini(&c);
    free(text);
    return 0;
}
