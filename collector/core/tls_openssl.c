/*
 * tls_openssl.c - the OpenSSL SSL_CTX of a listener generation, for servers that do their own
 * TLS with OpenSSL (the nghttp2 gRPC receiver) rather than through libmicrohttpd's GnuTLS. It
 * is built from the bytes tls.c already read and checked, so both libraries serve the same
 * certificate; see tls_int.h.
 */
#include "tls_int.h"
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h2[] = {2, 'h', '2'};
    unsigned char *o = NULL;
    if (SSL_select_next_proto(&o, outlen, h2, sizeof(h2), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC is HTTP/2 only */
    }
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

static void ossl_fail(mt_errbuf_t *eb, const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    mt_failf(eb, "openssl: %s: %s", what, e ? buf : "failed");
}

void *tls_ossl_ctx_build(const void *cert, size_t cert_len, const void *key, size_t key_len,
                         const void *ca, size_t ca_len, int min_version, mt_errbuf_t *eb)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ossl_fail(eb, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min_version == TLS_V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    BIO *b = BIO_new_mem_buf(cert, (int)cert_len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
    X509_free(x);
    while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { /* takes x */
            X509_free(x);
            ok = 0;
        }
    }
    ERR_clear_error(); /* the end of the chain reads as an error */
    BIO_free(b);
    if (!ok) {
        ossl_fail(eb, "certificate");
        SSL_CTX_free(ctx);
        return NULL;
    }
    b = BIO_new_mem_buf(key, (int)key_len);
    EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ok = pk && SSL_CTX_use_PrivateKey(ctx, pk) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pk);
    if (!ok) {
        ossl_fail(eb, "private key");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        b = BIO_new_mem_buf(ca, (int)ca_len);
        int n = 0;
        while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            n += X509_STORE_add_cert(store, x) == 1;
            X509_free(x);
        }
        ERR_clear_error();
        BIO_free(b);
        if (n == 0) {
            mt_failf(eb, "openssl: no CA certificate in client_ca_file");
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

void *tls_client_ssl_ctx(const tls_client_cfg_t *cfg, mt_errbuf_t *eb)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ossl_fail(eb, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx,
                                  cfg->min_version == TLS_V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    static const unsigned char h2[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, h2, sizeof(h2));
    if (cfg->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = cfg->ca_file ? SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL)
                              : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            ossl_fail(eb, cfg->ca_file ? cfg->ca_file : "the system's CA certificates");
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    if (cfg->cert_file && (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1 ||
                           SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
                           SSL_CTX_check_private_key(ctx) != 1)) {
        ossl_fail(eb, cfg->cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tls_client_ssl_setup(void *ssl, const tls_client_cfg_t *cfg, const char *host)
{
    SSL *s = ssl;
    const char *name = cfg->server_name_override ? cfg->server_name_override : host;
    if (SSL_set_tlsext_host_name(s, name) != 1) {
        return MT_EINVAL;
    }
    if (!cfg->insecure_skip_verify && SSL_set1_host(s, name) != 1) {
        return MT_EINVAL;
    }
    return MT_OK;
}

void *tls_ossl_ctx_ref(void *ctx)
{
    SSL_CTX_up_ref(ctx);
    return ctx;
}

void tls_ossl_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx); /* accepts NULL */
}
