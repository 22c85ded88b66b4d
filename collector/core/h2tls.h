/*
 * h2tls.h - the TLS layer of h2server.c: OpenSSL over a non-blocking socket, driven by the
 * server's epoll loop through h2_io_t. Each connection takes the SSL_CTX of its listener's
 * current certificate generation (tls_server_ssl_ctx), so a rotated certificate reaches new
 * connections while open ones keep theirs. ALPN must select "h2" (gRPC is HTTP/2 only): a
 * client that offers no ALPN or another protocol is closed after the handshake. With
 * client_ca_file the client certificate is required and verified by OpenSSL during the
 * handshake; tenants_from_certificate maps its URI SANs, then its subject CN, to the tenant
 * the connection is bound to (h2_peer_tenant).
 */
#ifndef H2TLS_H
#define H2TLS_H

#include "h2server.h"

const h2_io_t *h2tls_io(void);

#endif
