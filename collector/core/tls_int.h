/*
 * tls_int.h - private to collector/core/tls*.c: the OpenSSL side of a listener's certificate
 * generation (tls_openssl.c), kept out of tls.c so that file speaks GnuTLS only.
 */
#ifndef TLS_INT_H
#define TLS_INT_H

#include <stddef.h>

#include "mt.h"

/* An SSL_CTX (as void *, one reference owned by the caller) serving the PEM certificate chain
 * and key, refusing versions below min_version (tls_version_t), selecting ALPN "h2", and with
 * ca (may be NULL) requiring a client certificate that verifies against it. NULL with eb
 * filled when OpenSSL refuses the input. */
void *tls_ossl_ctx_build(const void *cert, size_t cert_len, const void *key, size_t key_len,
                         const void *ca, size_t ca_len, int min_version, mt_errbuf_t *eb);
void *tls_ossl_ctx_ref(void *ctx); /* a new reference to ctx; returns ctx */
void tls_ossl_ctx_free(void *ctx); /* drops a reference; accepts NULL */

#endif
