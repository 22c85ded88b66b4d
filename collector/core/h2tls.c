/*
 * h2tls.c - see h2tls.h.
 */
#include "h2tls.h"
#include "component.h" /* MT_TENANT_MAX */

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H2TLS_MAX_NAMES 16 /* certificate names looked up in tenants_from_certificate */
#define H2TLS_NAME_MAX  256

typedef struct h2tls_conn {
    SSL *ssl;
    char tenant[MT_TENANT_MAX + 1]; /* "" when the certificate binds none */
} h2tls_conn_t;

static const char *ossl_reason(void)
{
    static __thread char buf[160];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return e ? buf : "connection closed during the handshake";
}

static int tls_open(h2_conn_t *c)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    SSL_CTX *ctx = tls_server_ssl_ctx(h2_conn_tls(c), &eb);
    if (!ctx) {
        MT_LOG_EVERY(10, MT_LOG_WARN, "gRPC TLS: no certificate to serve: %s", eb.msg);
        return -1;
    }
    h2tls_conn_t *x = calloc(1, sizeof(*x));
    if (x) {
        x->ssl = SSL_new(ctx);
    }
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (!x || !x->ssl || SSL_set_fd(x->ssl, h2_conn_fd(c)) != 1) {
        if (x) {
            SSL_free(x->ssl);
        }
        free(x);
        return -1;
    }
    SSL_set_accept_state(x->ssl);
    SSL_set_options(x->ssl, SSL_OP_NO_RENEGOTIATION);
    /* h2server retries a write with the bytes it copied aside, possibly fewer at a time */
    SSL_set_mode(x->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    h2_conn_set_io_ctx(c, x);
    return 0;
}

/* The tenant the client certificate is bound to: its URI SANs first, then its subject CN. */
static void peer_tenant(h2tls_conn_t *x, const tls_server_t *t)
{
    X509 *cert = SSL_get1_peer_certificate(x->ssl);
    if (!cert) {
        return;
    }
    char buf[H2TLS_MAX_NAMES][H2TLS_NAME_MAX];
    const char *names[H2TLS_MAX_NAMES];
    size_t n = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n + 1 < H2TLS_MAX_NAMES; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI) {
            continue;
        }
        const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
        int len = ASN1_STRING_length(u);
        if (len <= 0 || len >= H2TLS_NAME_MAX) {
            continue;
        }
        memcpy(buf[n], ASN1_STRING_get0_data(u), (size_t)len);
        buf[n][len] = 0;
        if (strlen(buf[n]) == (size_t)len) { /* no embedded NUL */
            names[n] = buf[n];
            n++;
        }
    }
    GENERAL_NAMES_free(gens);
    int cl = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf[n],
                                       H2TLS_NAME_MAX);
    if (cl > 0 && (size_t)cl == strlen(buf[n])) {
        names[n] = buf[n];
        n++;
    }
    X509_free(cert);
    const char *tenant = tls_server_tenant_of(t, names, n);
    if (tenant) {
        snprintf(x->tenant, sizeof(x->tenant), "%s", tenant);
    }
}

static h2_io_want_t tls_handshake(h2_conn_t *c)
{
    h2tls_conn_t *x = h2_conn_io_ctx(c);
    ERR_clear_error();
    int r = SSL_do_handshake(x->ssl);
    if (r == 1) {
        const unsigned char *p = NULL;
        unsigned int len = 0;
        SSL_get0_alpn_selected(x->ssl, &p, &len);
        if (len != 2 || memcmp(p, "h2", 2) != 0) {
            MT_LOG_EVERY(10, MT_LOG_WARN,
                         "gRPC TLS: a client negotiated no ALPN \"h2\" (gRPC is HTTP/2 only): "
                         "connection closed");
            return H2_IO_FAILED;
        }
        peer_tenant(x, h2_conn_tls(c));
        return H2_IO_DONE;
    }
    int e = SSL_get_error(x->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        return H2_IO_WANT_READ;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        return H2_IO_WANT_WRITE;
    }
    /* a refused client certificate, an old protocol version, a TCP probe: one line now and
     * then (any client causes these at will) */
    long v = SSL_get_verify_result(x->ssl);
    if (v != X509_V_OK) {
        tls_server_count_untrusted(h2_conn_tls(c));
        ERR_clear_error();
        MT_LOG_EVERY(10, MT_LOG_WARN, "gRPC TLS: client certificate refused: %s",
                     X509_verify_cert_error_string(v));
        return H2_IO_FAILED;
    }
    MT_LOG_EVERY(10, MT_LOG_WARN, "gRPC TLS: handshake failed: %s", ossl_reason());
    return H2_IO_FAILED;
}

static ssize_t tls_io_result(h2tls_conn_t *x, int r)
{
    if (r > 0) {
        return r;
    }
    int e = SSL_get_error(x->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        return 0;
    }
    errno = ECONNRESET;
    return -1;
}

static ssize_t tls_recv(h2_conn_t *c, uint8_t *buf, size_t n)
{
    h2tls_conn_t *x = h2_conn_io_ctx(c);
    ERR_clear_error();
    return tls_io_result(x, SSL_read(x->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n)));
}

static ssize_t tls_send(h2_conn_t *c, const uint8_t *buf, size_t n)
{
    h2tls_conn_t *x = h2_conn_io_ctx(c);
    ERR_clear_error();
    return tls_io_result(x, SSL_write(x->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n)));
}

static void tls_close(h2_conn_t *c)
{
    h2tls_conn_t *x = h2_conn_io_ctx(c);
    if (!x) {
        return;
    }
    if (SSL_is_init_finished(x->ssl)) {
        SSL_shutdown(x->ssl); /* close_notify, best effort: the socket is non-blocking */
    }
    ERR_clear_error();
    SSL_free(x->ssl);
    free(x);
    h2_conn_set_io_ctx(c, NULL);
}

static const char *tls_peer_tenant(const h2_conn_t *c)
{
    const h2tls_conn_t *x = h2_conn_io_ctx(c);
    return x && x->tenant[0] ? x->tenant : NULL;
}

static const h2_io_t h2tls = {tls_open,  tls_recv,      tls_send,
                              tls_close, tls_handshake, tls_peer_tenant};

const h2_io_t *h2tls_io(void)
{
    return &h2tls;
}
