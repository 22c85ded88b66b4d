/*
 * test_auth.c - the authenticator extensions (collector/core/auth.c, auth_basic.c), the one
 * tenant decision and access check of the receivers (recv.c), the URL redaction of every log
 * line (mt.c). Extensions are built from YAML through their own config tables and started
 * as the service starts them. The check-config errors of `auth: {authenticator: ...}`
 * references are in test_service.c.
 */
#include "unit.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "recv.h"

extern const extension_ops_t extension_bearertokenauth_ops, extension_basicauth_ops;

typedef struct ext_fixture {
    cfg_doc_t *doc;
    extension_t x;
} ext_fixture_t;

/* Builds and starts extension `ops` from `yaml`; returns MT_OK or the start's error. */
static int ext_start(ext_fixture_t *f, const extension_ops_t *ops, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    f->doc = cfg_load_string("ext.yaml", yaml, strlen(yaml), &eb);
    if (!f->doc) {
        return MT_EINVAL;
    }
    cfg_ctx_t c;
    cfg_ctx_init(&c, "ext.yaml");
    f->x.ops = ops;
    f->x.id = "auth/test";
    f->x.cfg = calloc(1, ops->cfg_size);
    cfg_apply(&c, ops->fields, ops->nfields, f->doc->root, "extensions.auth/test", f->x.cfg);
    if (ops->validate) {
        ops->validate(&c, f->x.cfg, "extensions.auth/test", f->doc->root);
    }
    int bad = c.nerr > 0;
    if (bad) {
        cfg_ctx_print(&c, stderr);
    }
    cfg_ctx_fini(&c);
    if (bad) {
        return MT_EINVAL;
    }
    return ops->start(&f->x, NULL, &eb);
}

static void ext_stop(ext_fixture_t *f)
{
    if (f->x.state) {
        f->x.ops->stop(&f->x);
    }
    cfg_free_fields(f->x.ops->fields, f->x.ops->nfields, f->x.cfg);
    free(f->x.cfg);
    cfg_doc_destroy(f->doc);
}

static int check(const extension_t *x, const char *authz, const char *want_tenant)
{
    auth_verdict_t v;
    auth_server_check(x, authz, &v);
    return v.ok && strcmp(v.tenant, want_tenant) == 0;
}

UNIT_TEST(tenant_ids_follow_loki_and_mimir)
{
    CHECK(auth_tenant_valid("acme"));
    CHECK(auth_tenant_valid("team-a_1.prod*(x)'!"));
    CHECK(!auth_tenant_valid("a|b")); /* two tenants: Loki and Mimir refuse such a push */
    CHECK(!auth_tenant_valid(""));
    CHECK(!auth_tenant_valid("."));
    CHECK(!auth_tenant_valid(".."));
    CHECK(auth_tenant_valid("..."));
    CHECK(!auth_tenant_valid("a/b"));
    CHECK(!auth_tenant_valid("a b"));
    char big[MT_TENANT_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    CHECK(!auth_tenant_valid(big));
    big[MT_TENANT_MAX] = 0;
    CHECK(auth_tenant_valid(big));
}

UNIT_TEST(the_one_tenant_decision_with_and_without_a_bound_tenant)
{
    char out[MT_TENANT_MAX + 1];
    CHECK(recv_tenant(NULL, NULL, out) == RECV_TENANT_NONE);
    CHECK(recv_tenant("", "", out) == RECV_TENANT_NONE);
    CHECK(recv_tenant("acme", NULL, out) == RECV_TENANT_OK);
    CHECK_STR(out, "acme");
    CHECK(recv_tenant("..", NULL, out) == RECV_TENANT_BAD);
    /* bound: no header gets the bound tenant, the same is fine, another is forbidden */
    CHECK(recv_tenant(NULL, "acme", out) == RECV_TENANT_OK);
    CHECK_STR(out, "acme");
    CHECK(recv_tenant("acme", "acme", out) == RECV_TENANT_OK);
    CHECK(recv_tenant("other", "acme", out) == RECV_TENANT_FORBIDDEN);
    CHECK(recv_tenant("..", "acme", out) == RECV_TENANT_BAD);
}

UNIT_TEST(bearer_tokens_bound_and_unbound)
{
    ext_fixture_t f;
    REQUIRE(ext_start(&f, &extension_bearertokenauth_ops,
                      "token: open-sesame\n"
                      "tenants:\n"
                      "  acme: {token: acme-secret}\n"
                      "  beta: {token: beta-secret}\n") == MT_OK);
    CHECK(check(&f.x, "Bearer open-sesame", ""));
    CHECK(check(&f.x, "bearer   open-sesame  ", "")); /* scheme case-insensitive, blanks */
    CHECK(check(&f.x, "Bearer acme-secret", "acme"));
    CHECK(check(&f.x, "Bearer beta-secret", "beta"));
    CHECK(!check(&f.x, "Bearer open-sesamE", ""));
    CHECK(!check(&f.x, "Bearer open-sesam", ""));
    CHECK(!check(&f.x, "Bearer ", ""));
    CHECK(!check(&f.x, "Basic open-sesame", ""));
    CHECK(!check(&f.x, "Beareropen-sesame", ""));
    CHECK(!check(&f.x, NULL, ""));
    CHECK_STR(auth_challenge(&f.x), "Bearer realm=\"meltp\"");
    char hdr[256];
    CHECK(auth_client_header(&f.x, hdr, sizeof(hdr)) == MT_OK);
    CHECK_STR(hdr, "Authorization: Bearer open-sesame");

    /* the access decision the receivers (and gRPC) call */
    recv_access_t a;
    CHECK(recv_access(&f.x, "Bearer acme-secret", NULL, NULL, &a) == 1);
    CHECK_STR(a.tenant, "acme");
    CHECK(recv_access(&f.x, "Bearer acme-secret", "beta", NULL, &a) == 0);
    CHECK(a.status == 403 && a.grpc_code == 7);
    CHECK_STR(a.reason, "tenant_forbidden");
    CHECK(recv_access(&f.x, "Bearer nope", "acme", NULL, &a) == 0);
    CHECK(a.status == 401 && a.grpc_code == 16);
    CHECK_STR(a.reason, "unauthenticated");
    CHECK_STR(a.challenge, "Bearer realm=\"meltp\"");
    CHECK(strstr(a.msg, "nope") == NULL);
    CHECK(recv_access(&f.x, "Bearer open-sesame", "anyone", NULL, &a) ==
          1); /* unbound: as before */
    CHECK_STR(a.tenant, "anyone");
    /* a transport-bound tenant (mTLS) binds like a token; both must agree */
    CHECK(recv_access(NULL, NULL, NULL, "acme", &a) == 1);
    CHECK_STR(a.tenant, "acme");
    CHECK(recv_access(NULL, NULL, "beta", "acme", &a) == 0);
    CHECK(a.status == 403);
    CHECK(recv_access(&f.x, "Bearer acme-secret", NULL, "acme", &a) == 1);
    CHECK(recv_access(&f.x, "Bearer beta-secret", NULL, "acme", &a) == 0);
    CHECK(a.status == 403 && a.grpc_code == 7);
    CHECK(recv_access(&f.x, "Bearer open-sesame", NULL, "acme", &a) == 1);
    CHECK_STR(a.tenant, "acme");
    CHECK(recv_access(NULL, NULL, "..", NULL, &a) == 0);
    CHECK(a.status == 400);
    CHECK_STR(a.reason, "bad_tenant");
    ext_stop(&f);
}

UNIT_TEST(bearer_token_file_is_reread_when_it_changes)
{
    char path[] = "/tmp/meltp-unit-tokXXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "first-token\n", 12) == 12);
    close(fd);
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "filename: %s\nscheme: Token\n", path);
    ext_fixture_t f;
    REQUIRE(ext_start(&f, &extension_bearertokenauth_ops, yaml) == MT_OK);
    CHECK(check(&f.x, "Token first-token", "")); /* the newline is not part of the token */
    CHECK(!check(&f.x, "Bearer first-token", ""));
    FILE *fp = fopen(path, "w");
    REQUIRE(fp);
    fputs("second-token-longer", fp);
    fclose(fp);
    /* files are looked at most once a second: wait until the new token is taken */
    int ok = 0;
    for (int i = 0; i < 60 && !ok; i++) {
        ok = check(&f.x, "Token second-token-longer", "");
        if (!ok) {
            usleep(50000);
        }
    }
    CHECK(ok);
    CHECK(!check(&f.x, "Token first-token", ""));
    char hdr[256];
    CHECK(auth_client_header(&f.x, hdr, sizeof(hdr)) == MT_OK);
    CHECK_STR(hdr, "Authorization: Token second-token-longer");
    /* a file that turns unreadable keeps the previous token */
    unlink(path);
    usleep(1100000);
    CHECK(check(&f.x, "Token second-token-longer", ""));
    ext_stop(&f);
}

UNIT_TEST(bearer_tokens_with_blanks_or_control_bytes_are_refused)
{
    ext_fixture_t f;
    /* inside a token a line break would split the Authorization header an exporter sends */
    CHECK(ext_start(&f, &extension_bearertokenauth_ops, "token: \"abc\\r\\nX-Evil: 1\"\n") !=
          MT_OK);
    ext_stop(&f);
    CHECK(ext_start(&f, &extension_bearertokenauth_ops, "token: \"two words\"\n") != MT_OK);
    ext_stop(&f);
}

UNIT_TEST(basic_auth_bcrypt_and_sha_entries)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    REQUIRE(crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof(setting)));
    struct crypt_data cd;
    memset(&cd, 0, sizeof(cd));
    const char *bc = crypt_rn("b-pass", setting, &cd, sizeof(cd));
    REQUIRE(bc && bc[0] == '$');
    char yaml[1024];
    /* {SHA} of "password" (htpasswd -s) */
    snprintf(yaml, sizeof(yaml),
             "htpasswd:\n  inline: |\n    # users\n    bob:%s\n    "
             "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
             "client_auth:\n  username: alice\n  password: secret\n",
             bc);
    ext_fixture_t f;
    REQUIRE(ext_start(&f, &extension_basicauth_ops, yaml) == MT_OK);
    CHECK(check(&f.x, "Basic Ym9iOmItcGFzcw==", ""));      /* bob:b-pass */
    CHECK(check(&f.x, "Basic Ym9iOmItcGFzcw==", ""));      /* again: from the cache */
    CHECK(!check(&f.x, "Basic Ym9iOmItcGFzcQ==", ""));     /* bob:b-pasq */
    CHECK(check(&f.x, "basic c2hhOnBhc3N3b3Jk", ""));      /* sha:password */
    CHECK(!check(&f.x, "Basic c2hhOnBhc3N3b3JE", ""));     /* sha:passworD */
    CHECK(!check(&f.x, "Basic bm9ib2R5OnBhc3N3b3Jk", "")); /* nobody:password */
    CHECK(!check(&f.x, "Basic !!!!", ""));
    CHECK(!check(&f.x, "Basic c2hh", "")); /* "sha": no colon */
    CHECK(!check(&f.x, "Bearer c2hhOnBhc3N3b3Jk", ""));
    char hdr[256];
    CHECK(auth_client_header(&f.x, hdr, sizeof(hdr)) == MT_OK);
    CHECK_STR(hdr, "Authorization: Basic YWxpY2U6c2VjcmV0");
    CHECK(strncmp(auth_challenge(&f.x), "Basic realm=\"meltp\"", 19) == 0);
    ext_stop(&f);
}

UNIT_TEST(basic_auth_refuses_unsupported_hashes)
{
    ext_fixture_t f;
    CHECK(ext_start(&f, &extension_basicauth_ops, "htpasswd:\n  inline: \"amy:$apr1$abc$def\"\n") !=
          MT_OK);
    ext_stop(&f);
    CHECK(ext_start(&f, &extension_basicauth_ops, "htpasswd:\n  inline: \"amy:plain\"\n") != MT_OK);
    ext_stop(&f);
    CHECK(ext_start(&f, &extension_basicauth_ops, "htpasswd:\n  file: /nonexistent/htpasswd\n") !=
          MT_OK);
    ext_stop(&f);
}

UNIT_TEST(urls_lose_userinfo_and_query_secrets)
{
    char out[512];
    CHECK_STR(mt_redact_urls("exporter x: http://alice:s3cret@host:4318/v1/traces: refused", out,
                             sizeof(out)),
              "exporter x: http://***@host:4318/v1/traces: refused");
    CHECK_STR(
        mt_redact_urls("https://h/p?access_token=abc&x=1&api_key=k&sig=z#f", out, sizeof(out)),
        "https://h/p?access_token=***&x=1&api_key=***&sig=***#f");
    CHECK_STR(mt_redact_urls("a http://h/x b http://u@h2?password=p c", out, sizeof(out)),
              "a http://h/x b http://***@h2?password=*** c");
    CHECK_STR(mt_redact_urls("no url here: user@example.com", out, sizeof(out)),
              "no url here: user@example.com");
    CHECK_STR(mt_redact_urls("\"http://a:b@h\"", out, sizeof(out)), "\"http://***@h\"");
    /* truncation keeps a terminated string */
    CHECK_STR(mt_redact_urls("http://alice:pw@host/", out, 10), "http://**");
}
