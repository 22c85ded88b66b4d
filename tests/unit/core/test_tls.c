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

/* ---- the OpenSSL SSL_CTX for non-libmicrohttpd servers, with certificates from `openssl` */

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static int sh(const char *dir, const char *cmd)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    return system(buf);
}

/* Drives a client and a server SSL over a BIO pair until both finish or one fails; returns 1
 * when both completed the handshake. */
static int handshake(SSL *cli, SSL *srv)
{
    BIO *cb, *sb;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(cli, cb, cb);
    SSL_set_bio(srv, sb, sb);
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(cli);
            if (r == 1) {
                cdone = 1;
            } else if (SSL_get_error(cli, r) != SSL_ERROR_WANT_READ) {
                return 0;
            }
        }
        if (!sdone) {
            int r = SSL_do_handshake(srv);
            if (r == 1) {
                sdone = 1;
            } else if (SSL_get_error(srv, r) != SSL_ERROR_WANT_READ) {
                return 0;
            }
        }
    }
    /* TLS 1.3: the server sees the client certificate after the client thinks it is done */
    char b;
    SSL_read(srv, &b, 0);
    return cdone && sdone && SSL_get_verify_result(srv) == X509_V_OK;
}

UNIT_TEST(tls_openssl_ctx_serves_the_generation_with_alpn_h2_and_mtls)
{
    char dir[] = "/tmp/meltp-tls-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=ca", ec);
    if (sh(dir, cmd) != 0) {
        fprintf(stderr, "    no openssl command: skipped\n");
        return;
    }
    for (int i = 0; i < 2; i++) {
        const char *n = i ? "cli" : "srv";
        snprintf(cmd, sizeof(cmd),
                 "openssl req %s -keyout %s.key -out %s.csr -subj /CN=%s && printf "
                 "'extendedKeyUsage=%s\\n' > %s.ext && openssl x509 -req -in %s.csr -CA ca.crt "
                 "-CAkey ca.key -set_serial %d -days 2 -extfile %s.ext -out %s.crt",
                 ec, n, n, i ? "client-a" : "localhost", i ? "clientAuth" : "serverAuth", n, n,
                 4096 + i, n, n);
        CHECK(sh(dir, cmd) == 0);
    }
    char cert[256], key[256], ca[256], ccert[256], ckey[256];
    snprintf(cert, sizeof(cert), "%s/srv.crt", dir);
    snprintf(key, sizeof(key), "%s/srv.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(ccert, sizeof(ccert), "%s/cli.crt", dir);
    snprintf(ckey, sizeof(ckey), "%s/cli.key", dir);
    char *tk[] = {"client-a"}, *tv[] = {"team-a"};
    tls_server_cfg_t cfg = {.cert_file = cert,
                            .key_file = key,
                            .client_ca_file = ca,
                            .min_version = TLS_V1_2,
                            .tenants_from_certificate = {1, tk, tv},
                            .enabled = 1};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    tls_server_t *t = tls_server_create(&cfg, "unit", &eb);
    CHECK(t != NULL);
    char serial[64];
    tls_server_serial(t, serial, sizeof(serial));
    CHECK_STR(serial, "1000");
    const char *names[] = {"spiffe://x", "client-a"};
    CHECK_STR(tls_server_tenant_of(t, names, 2), "team-a");
    CHECK(tls_server_tenant_of(t, names, 1) == NULL);
    SSL_CTX *sctx = tls_server_ssl_ctx(t, &eb);
    CHECK(sctx != NULL);

    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    CHECK(SSL_CTX_load_verify_locations(cctx, ca, NULL) == 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(cctx, alpn, sizeof(alpn));
    /* without a client certificate: refused */
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    CHECK(handshake(c, s) == 0);
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    /* with it, from tls_client_ssl_ctx (as a gRPC exporter would): accepted, h2 selected, the
     * server certificate is the file's, its name checked through server_name_override */
    SSL_CTX_free(cctx);
    tls_client_cfg_t ccfg = {
        .ca_file = ca, .cert_file = ccert, .key_file = ckey, .server_name_override = "wrong.name"};
    cctx = tls_client_ssl_ctx(&ccfg, &eb);
    CHECK(cctx != NULL);
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    CHECK(tls_client_ssl_setup(c, &ccfg, "127.0.0.1") == MT_OK);
    CHECK(handshake(c, s) == 0); /* the certificate names localhost */
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    ccfg.server_name_override = "localhost";
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    CHECK(tls_client_ssl_setup(c, &ccfg, "127.0.0.1") == MT_OK);
    CHECK(handshake(c, s) == 1);
    const unsigned char *proto = NULL;
    unsigned plen = 0;
    SSL_get0_alpn_selected(c, &proto, &plen);
    CHECK(plen == 2 && memcmp(proto, "h2", 2) == 0);
    X509 *peer = SSL_get1_peer_certificate(c);
    CHECK(peer != NULL);
    CHECK(ASN1_INTEGER_get(X509_get0_serialNumber(peer)) == 4096);
    X509_free(peer);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    tls_server_destroy(t);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}
