/*
 * test_tls.c - tests for the config side of collector/core/tls.c: the listener and exporter
 * tls tables spliced into a component table (defaults, min_version values, durations, the
 * tenants map), and the checks check-config runs (section presence, required keys, files that
 * are missing or are not PEM, with the FILE:LINE of the key). Handshakes, reloads and the
 * curl side run against real certificates in tests/integration/test_tls.py.
 */
#include "unit.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tls.h"

typedef struct {
    char *endpoint;
    tls_server_cfg_t tls;
} srv_cfg_t;

static const cfg_field_t srv_fields[] = {
    {"endpoint", CFG_T_STRING, "x:1", 0, offsetof(srv_cfg_t, endpoint), NULL, "e"},
    TLS_SERVER_FIELDS("protocols.http.", srv_cfg_t, tls),
};

typedef struct {
    tls_client_cfg_t tls;
} cli_cfg_t;

static const cfg_field_t cli_fields[] = {TLS_CLIENT_FIELDS(cli_cfg_t, tls)};

/* Applies text to srv_fields (under "r") and runs the tls check; returns the errors joined. */
static int apply_srv(const char *text, srv_cfg_t *out, char *errs, size_t cap)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_string("t.yaml", text, strlen(text), &eb);
    if (!doc) {
        snprintf(errs, cap, "%s", eb.msg);
        return -1;
    }
    cfg_ctx_t c;
    cfg_ctx_init(&c, doc->file);
    memset(out, 0, sizeof(*out));
    cfg_apply(&c, srv_fields, MT_ARRAY_LEN(srv_fields), doc->root, "r", out);
    tls_server_cfg_check(&c, doc->root, "r", "protocols.http.", &out->tls);
    size_t o = 0;
    errs[0] = 0;
    for (size_t i = 0; i < c.nerr && o < cap; i++) {
        o += (size_t)snprintf(errs + o, cap - o, "%s\n", c.errs[i]);
    }
    int n = (int)c.nerr;
    cfg_ctx_fini(&c);
    cfg_doc_destroy(doc);
    return n;
}

UNIT_TEST(tls_server_defaults_and_absent_section)
{
    srv_cfg_t cfg;
    char errs[1024];
    CHECK(apply_srv("endpoint: a:1\n", &cfg, errs, sizeof(errs)) == 0);
    CHECK(!tls_server_enabled(&cfg.tls));
    CHECK(cfg.tls.min_version == TLS_V1_2);
    CHECK(cfg.tls.reload_interval_ms == 60000);
    CHECK(cfg.tls.cert_file == NULL && cfg.tls.tenants_from_certificate.n == 0);
    cfg_free_fields(srv_fields, MT_ARRAY_LEN(srv_fields), &cfg);
}

UNIT_TEST(tls_server_values_and_errors_with_lines)
{
    srv_cfg_t cfg;
    char errs[2048];
    const char *text = "protocols:\n"                        /* 1 */
                       "  http:\n"                           /* 2 */
                       "    tls:\n"                          /* 3 */
                       "      cert_file: /nonexistent.crt\n" /* 4 */
                       "      key_file: /nonexistent.key\n"  /* 5 */
                       "      min_version: \"1.3\"\n"        /* 6 */
                       "      reload_interval: 250ms\n"      /* 7 */
                       "      tenants_from_certificate:\n"   /* 8 */
                       "        client-a: team-a\n";         /* 9 */
    int n = apply_srv(text, &cfg, errs, sizeof(errs));
    CHECK(tls_server_enabled(&cfg.tls));
    CHECK(cfg.tls.min_version == TLS_V1_3);
    CHECK(cfg.tls.reload_interval_ms == 250);
    CHECK(cfg.tls.tenants_from_certificate.n == 1);
    CHECK_STR(cfg.tls.tenants_from_certificate.vals[0], "team-a");
    /* the map without client_ca_file (at the map's first line), and the missing certificate */
    CHECK(n == 2);
    CHECK(strstr(errs, "t.yaml:9: r.protocols.http.tls.tenants_from_certificate: needs") != NULL);
    CHECK(strstr(errs, "t.yaml:4: r.protocols.http.tls.cert_file: cannot read "
                       "\"/nonexistent.crt\"") != NULL);
    cfg_free_fields(srv_fields, MT_ARRAY_LEN(srv_fields), &cfg);

    CHECK(apply_srv("protocols:\n  http:\n    tls:\n      min_version: \"1.1\"\n", &cfg, errs,
                    sizeof(errs)) == 2);
    CHECK(strstr(errs, "t.yaml:4: r.protocols.http.tls.min_version: invalid value") != NULL);
    CHECK(strstr(errs, "r.protocols.http.tls.cert_file: required when tls is set") != NULL);
    cfg_free_fields(srv_fields, MT_ARRAY_LEN(srv_fields), &cfg);

    /* an empty `tls:` is a section too: TLS was asked for, the certificate is missing */
    CHECK(apply_srv("protocols:\n  http:\n    tls:\n", &cfg, errs, sizeof(errs)) == 1);
    CHECK(tls_server_enabled(&cfg.tls));
    CHECK(strstr(errs, "tls.cert_file: required when tls is set") != NULL);
    cfg_free_fields(srv_fields, MT_ARRAY_LEN(srv_fields), &cfg);

    CHECK(apply_srv("protocols:\n  http:\n    tls:\n      ca_file: x\n", &cfg, errs,
                    sizeof(errs)) >= 1);
    CHECK(strstr(errs, "t.yaml:4: r.protocols.http.tls.ca_file: unknown key") != NULL);
    cfg_free_fields(srv_fields, MT_ARRAY_LEN(srv_fields), &cfg);
}

UNIT_TEST(tls_server_file_that_is_not_pem)
{
    char path[] = "/tmp/meltp-tls-unit-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "hello\n", 6) == 6);
    close(fd);
    char text[512];
    snprintf(text, sizeof(text),
             "protocols:\n  http:\n    tls:\n      key_file: %s\n      cert_file: %s\n", path,
             path);
    srv_cfg_t cfg;
    char errs[1024];
    CHECK(apply_srv(text, &cfg, errs, sizeof(errs)) == 1);
    CHECK(strstr(errs, "t.yaml:5: r.protocols.http.tls.cert_file:") != NULL);
    CHECK(strstr(errs, "no PEM certificate") != NULL);
    cfg_free_fields(srv_fields, MT_ARRAY_LEN(srv_fields), &cfg);
    unlink(path);
}

UNIT_TEST(tls_client_table_and_checks)
{
    const char *text = "tls:\n"                           /* 1 */
                       "  ca_file: /nonexistent-ca.pem\n" /* 2 */
                       "  server_name_override: gw.lab\n" /* 3 */
                       "  insecure_skip_verify: true\n"   /* 4 */
                       "  cert_file: /x.crt\n";           /* 5 */
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_string("c.yaml", text, strlen(text), &eb);
    CHECK(doc != NULL);
    cfg_ctx_t c;
    cfg_ctx_init(&c, doc->file);
    cli_cfg_t cfg;
    CHECK(cfg_apply(&c, cli_fields, MT_ARRAY_LEN(cli_fields), doc->root, "e", &cfg) == 0);
    CHECK(cfg.tls.insecure_skip_verify == 1 && cfg.tls.min_version == TLS_V1_2);
    CHECK_STR(cfg.tls.server_name_override, "gw.lab");
    tls_client_cfg_check(&c, doc->root, "e", &cfg.tls);
    CHECK(c.nerr == 1);
    CHECK(strstr(c.errs[0], "e.tls.key_file: tls.cert_file and tls.key_file go together") != NULL);
    cfg_free_fields(cli_fields, MT_ARRAY_LEN(cli_fields), &cfg);
    cfg_ctx_fini(&c);

    /* without the pair, the CA file is read */
    cfg_ctx_init(&c, doc->file);
    CHECK(cfg_apply(&c, cli_fields, MT_ARRAY_LEN(cli_fields), doc->root, "e", &cfg) == 0);
    free(cfg.tls.cert_file);
    cfg.tls.cert_file = NULL;
    tls_client_cfg_check(&c, doc->root, "e", &cfg.tls);
    CHECK(c.nerr == 1);
    CHECK(strstr(c.errs[0], "c.yaml:2: e.tls.ca_file: cannot read") != NULL);
    cfg_free_fields(cli_fields, MT_ARRAY_LEN(cli_fields), &cfg);
    cfg_ctx_fini(&c);
    cfg_doc_destroy(doc);
}
