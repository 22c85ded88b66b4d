/*
 * fuzz_pprof.c - the Pyroscope receive path's parsers (collector/formats/pprof_conv.c,
 * pyro_legacy.c): pprof -> OTLP and, for every profile that produced, OTLP -> pprof (what the
 * pyroscope exporter sends); folded and `lines` text -> OTLP; the multipart/form-data
 * Content-Type and body; the `name=app{k=v}` parameter and the legacy sample-type naming.
 * Input: one byte picking the mode (mod 5), then:
 *   0 a pprof Profile (uncompressed), 1 folded text, 2 `lines` text,
 *   3 a Content-Type line, "\n", then a multipart body (its "profile" part goes through mode 0),
 *   4 a `name` parameter, "\n", then comma-separated pprof sample types.
 *
 * Oracle: a profile pprof_to_otlp produced converts back with pprof_from_otlp (its references
 * are all in the dictionary), and that pprof converts to OTLP again.
 */
#include "fuzz.h"
#include "pprof_conv.h"
#include "pyro_legacy.h"

static void from_pprof(const uint8_t *pb, size_t len, arena_t *a)
{
    pprof_meta_t m;
    memset(&m, 0, sizeof(m));
    m.app = "fuzz";
    m.original = pb;
    m.original_len = len;
    pprof_otlp_req_t *req = NULL;
    uint64_t n = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (pprof_to_otlp(pb, len, &m, a, &req, &n, &eb) != MT_OK || !req->dictionary) {
        return;
    }
    for (size_t r = 0; r < req->n_resource_profiles; r++) {
        for (size_t s = 0; s < req->resource_profiles[r]->n_scope_profiles; s++) {
            const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp =
                req->resource_profiles[r]->scope_profiles[s];
            for (size_t p = 0; p < sp->n_profiles; p++) {
                uint8_t *out = NULL;
                size_t out_len = 0;
                mt_errbuf_clear(&eb);
                int rc = pprof_from_otlp(req->dictionary, sp->profiles[p], &out, &out_len, &eb);
                if (rc == MT_EINVAL) {
                    FUZZ_ORACLE_FAIL("pprof: a profile pprof_to_otlp made does not convert "
                                     "back: %s",
                                     eb.msg);
                } else if (rc == MT_OK) {
                    pprof_otlp_req_t *req2 = NULL;
                    uint64_t n2 = 0;
                    mt_errbuf_clear(&eb);
                    int rc2 = pprof_to_otlp(out, out_len, &m, a, &req2, &n2, &eb);
                    if (rc2 == MT_EINVAL) {
                        FUZZ_ORACLE_FAIL("pprof: pprof_from_otlp's output is refused: %s", eb.msg);
                    }
                }
                free(out);
            }
        }
    }
}

static void multipart(const uint8_t *data, size_t size, arena_t *a)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl) {
        return;
    }
    char *ctype = fuzz_cstr(data, (size_t)(nl - data));
    if (!ctype) {
        return;
    }
    char boundary[80];
    const char *why = NULL;
    int ok = pprof_multipart_boundary(ctype, boundary, sizeof(boundary), &why);
    free(ctype);
    if (!ok) {
        return;
    }
    const uint8_t *body = nl + 1;
    size_t blen = size - (size_t)(body - data);
    pprof_part_t parts[PPROF_MAX_PARTS];
    size_t np = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (pprof_multipart_parse(boundary, body, blen, a, parts, &np, &eb) != MT_OK) {
        return;
    }
    for (size_t i = 0; i < np; i++) {
        if (strcmp(parts[i].name, "profile") == 0 && parts[i].len) {
            from_pprof(parts[i].data, parts[i].len, a);
        }
    }
}

static void name_and_types(const uint8_t *data, size_t size, arena_t *a)
{
    char *s = fuzz_cstr(data, size);
    if (!s) {
        return;
    }
    char *types_text = strchr(s, '\n');
    if (types_text) {
        *types_text++ = 0;
    }
    char *app = NULL;
    pprof_label_t *labels = NULL;
    size_t nlabels = 0;
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    if (pprof_parse_name(s, a, &app, &labels, &nlabels, &eb) == MT_OK) {
        const char *type, *unit;
        pyro_legacy_folded_type(app, nlabels ? labels[0].value : NULL, &type, &unit);
        const char *types[PYRO_LEGACY_MAX_TYPES + 4];
        size_t ntypes = 0;
        for (char *t = types_text; t && ntypes < MT_ARRAY_LEN(types);) {
            types[ntypes++] = t;
            (void)pyro_legacy_by_type(t);
            (void)pyro_legacy_by_display(t, strlen(t));
            t = strchr(t, ',');
            if (t) {
                *t++ = 0;
            }
        }
        size_t app_len = strlen(app);
        free(pyro_legacy_plan(app, &app_len, types, ntypes));
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena_t *a;
    if (!a) {
        fuzz_quiet();
        a = arena_create(1 << 16, FUZZ_ARENA_CAP);
        if (!a) {
            return 0;
        }
    }
    unsigned mode = fuzz_take_byte(&data, &size) % 5;
    if (mode == 0) {
        from_pprof(data, size, a);
    } else if (mode == 1 || mode == 2) {
        pprof_meta_t m;
        memset(&m, 0, sizeof(m));
        m.app = "fuzz";
        pprof_otlp_req_t *req = NULL;
        uint64_t n = 0;
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        (void)pprof_folded_to_otlp((const char *)data, size, mode == 2, &m, a, &req, &n, &eb);
    } else if (mode == 3) {
        multipart(data, size, a);
    } else {
        name_and_types(data, size, a);
    }
    arena_reset(a);
    return 0;
}
