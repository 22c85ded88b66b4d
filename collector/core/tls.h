/*
 * tls.h - TLS settings shared by every listener and every exporter: the `tls` config keys (one
 * table per side, spliced into each component's table with TLS_SERVER_FIELDS /
 * TLS_CLIENT_FIELDS), the checks `check-config` runs on the files they name (FILE:LINE of the
 * key), and the runtime side of a listener: a certificate generation (certificate chain, key,
 * client CA list) re-read every reload_interval, swapped in for new connections only, kept
 * when the new files are bad (the log says why).
 *
 * Listeners are libmicrohttpd daemons built with GnuTLS, so the listener side speaks GnuTLS
 * (server.c hands us each new connection's gnutls session); exporters use libcurl built with
 * OpenSSL, so the client side maps the keys to curl options. tls_server_ssl_ctx() builds an
 * OpenSSL SSL_CTX from the same files for servers that are not libmicrohttpd (nghttp2).
 */
#ifndef TLS_H
#define TLS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "mt.h"

typedef enum { TLS_V1_2 = 0, TLS_V1_3 = 1 } tls_version_t;
#define TLS_VERSION_ENUMS "1.2|1.3"

/* A listener's `tls` section. TLS is on when the section is present (cert_file is then
 * required); tenants_from_certificate maps a client certificate's subject CN or URI SAN to the
 * tenant its requests are bound to (needs client_ca_file). */
typedef struct tls_server_cfg {
    char *cert_file;
    char *key_file;
    char *client_ca_file;
    int min_version; /* tls_version_t */
    int64_t reload_interval_ms;
    cfg_strmap_t tenants_from_certificate;
    int enabled; /* the `tls` section is present (set by tls_server_cfg_check) */
} tls_server_cfg_t;

/* An exporter's or notifier's `tls` section. */
typedef struct tls_client_cfg {
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name_override;
    int min_version; /* tls_version_t */
    int insecure_skip_verify;
} tls_client_cfg_t;

/* Table rows for a listener's tls keys under `prefix` ("" or "protocols.http.") in a struct
 * `type` whose tls_server_cfg_t member is `m`. */
#define TLS_SERVER_FIELDS(prefix, type, m)                                                       \
    {prefix "tls.cert_file",                                                                     \
     CFG_T_STRING,                                                                               \
     NULL,                                                                                       \
     0,                                                                                          \
     offsetof(type, m.cert_file),                                                                \
     NULL,                                                                                       \
     "PEM certificate chain served (required with tls); re-read every reload_interval"},         \
        {prefix "tls.key_file",                                                                  \
         CFG_T_STRING,                                                                           \
         NULL,                                                                                   \
         0,                                                                                      \
         offsetof(type, m.key_file),                                                             \
         NULL,                                                                                   \
         "PEM private key of cert_file (required with tls)"},                                    \
        {prefix "tls.client_ca_file",                                                            \
         CFG_T_STRING,                                                                           \
         NULL,                                                                                   \
         0,                                                                                      \
         offsetof(type, m.client_ca_file),                                                       \
         NULL,                                                                                   \
         "PEM CA certificates: when set, clients must present a certificate signed by one "      \
         "(mTLS); the handshake fails otherwise"},                                               \
        {prefix "tls.min_version",                                                               \
         CFG_T_ENUM,                                                                             \
         "1.2",                                                                                  \
         0,                                                                                      \
         offsetof(type, m.min_version),                                                          \
         TLS_VERSION_ENUMS,                                                                      \
         "oldest TLS version accepted; older ones are refused"},                                 \
        {prefix "tls.reload_interval",                                                           \
         CFG_T_DURATION,                                                                         \
         "1m",                                                                                   \
         0,                                                                                      \
         offsetof(type, m.reload_interval_ms),                                                   \
         NULL,                                                                                   \
         "how often certificate, key and CA files are checked and re-read when changed (new "    \
         "connections get the new certificate; a bad file keeps the old one); 0 = never"},       \
    {                                                                                            \
        prefix "tls.tenants_from_certificate", CFG_T_STRMAP, NULL, 0,                            \
            offsetof(type, m.tenants_from_certificate), NULL,                                    \
            "client certificate subject CN or URI SAN -> tenant: requests on such a connection " \
            "get that tenant, another X-Scope-OrgID is refused with 403 (needs client_ca_file)"  \
    }

/* Table rows for an exporter's tls keys (under "tls.") in a struct `type` whose
 * tls_client_cfg_t member is `m`. */
#define TLS_CLIENT_FIELDS(type, m)                                                      \
    {"tls.ca_file",                                                                     \
     CFG_T_STRING,                                                                      \
     NULL,                                                                              \
     0,                                                                                 \
     offsetof(type, m.ca_file),                                                         \
     NULL,                                                                              \
     "PEM CA certificates that sign the server's certificate (default: the system's)"}, \
        {"tls.cert_file",                                                               \
         CFG_T_STRING,                                                                  \
         NULL,                                                                          \
         0,                                                                             \
         offsetof(type, m.cert_file),                                                   \
         NULL,                                                                          \
         "PEM client certificate presented to the server (mTLS); needs key_file"},      \
        {"tls.key_file",                                                                \
         CFG_T_STRING,                                                                  \
         NULL,                                                                          \
         0,                                                                             \
         offsetof(type, m.key_file),                                                    \
         NULL,                                                                          \
         "PEM private key of cert_file"},                                               \
        {"tls.server_name_override",                                                    \
         CFG_T_STRING,                                                                  \
         NULL,                                                                          \
         0,                                                                             \
         offsetof(type, m.server_name_override),                                        \
         NULL,                                                                          \
         "name sent in SNI and checked against the server certificate instead of the "  \
         "endpoint's host"},                                                            \
        {"tls.min_version",                                                             \
         CFG_T_ENUM,                                                                    \
         "1.2",                                                                         \
         0,                                                                             \
         offsetof(type, m.min_version),                                                 \
         TLS_VERSION_ENUMS,                                                             \
         "oldest TLS version used"},                                                    \
    {                                                                                   \
        "tls.insecure_skip_verify", CFG_T_BOOL, "false", 0,                             \
            offsetof(type, m.insecure_skip_verify), NULL,                               \
            "do not verify the server certificate (a warning is logged at start)"       \
    }

/* check-config for a listener's tls section (cfg as filled by cfg_apply; `node` the
 * component's node, `prefix` as in TLS_SERVER_FIELDS): required keys, readable files that parse,
 * a key that matches the certificate, a certificate not expired, tenants_from_certificate only
 * with client_ca_file and valid tenant ids. Errors go to c as FILE:LINE: path.key: reason.
 * Sets cfg->enabled when the section is present (call it from the component's validate). */
void tls_server_cfg_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path,
                          const char *prefix, tls_server_cfg_t *cfg);
/* check-config for an exporter's tls section (files parse, cert_file and key_file together). */
void tls_client_cfg_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path,
                          const tls_client_cfg_t *cfg);
static inline int tls_server_enabled(const tls_server_cfg_t *cfg)
{
    return cfg && cfg->enabled;
}

/* ---- listener runtime ---- */

typedef struct tls_server tls_server_t;
/* A connection's TLS state (held from its first handshake to its close). */
typedef struct tls_conn tls_conn_t;

/* Loads the files of cfg (copied) and starts re-reading them every reload_interval. `name`
 * (e.g. "receiver otlp") prefixes log lines. NULL with eb filled when a file is bad. */
tls_server_t *tls_server_create(const tls_server_cfg_t *cfg, const char *name, mt_errbuf_t *eb);
/* Stops the reloader and drops the server's reference to the current generation (connections
 * still open keep theirs). Accepts NULL. */
void tls_server_destroy(tls_server_t *t);
/* GnuTLS priority string of the listener (min_version applied). Static text. */
const char *tls_server_priorities(const tls_server_t *t);
/* The gnutls_certificate_retrieve_function2 the listener's credentials use (MHD's
 * MHD_OPTION_HTTPS_CERT_CALLBACK). */
void *tls_server_cert_callback(void);
/* Re-reads the files now when they changed since the last attempt (force: even when not).
 * Returns MT_OK when nothing changed or the new files are served, MT_EINVAL when the files are
 * bad (the old generation stays; logged; tried again when they change next). */
int tls_server_reload(tls_server_t *t, int force);
/* Whether a and b serve with the same settings (files, client CA, min_version, reload_interval,
 * tenants_from_certificate); two NULLs (plain HTTP) are the same. */
int tls_server_same(const tls_server_t *a, const tls_server_t *b);
/* A reload keeps the running listener of `endpoint`, whose TLS is `kept` (NULL: plain). With
 * the same settings in `offered` the kept TLS stays, its files re-read as on every SIGHUP, and
 * this returns MT_OK; other settings take new daemons, so MT_EINVAL with the reason in eb.
 * Takes `offered` either way. The one rule for the HTTP and the gRPC listeners. */
int tls_server_adopt(tls_server_t *kept, tls_server_t *offered, const char *endpoint,
                     mt_errbuf_t *eb);
/* For servers that are not libmicrohttpd (the nghttp2 gRPC receiver): an OpenSSL SSL_CTX
 * (returned as void *, the caller's reference: SSL_CTX_free) for the current generation, built
 * from the same file contents on first use: certificate chain and key, min_version, ALPN "h2"
 * only, and with client_ca_file a required client certificate verified against it. Take one
 * per new connection (SSL_new(ctx); SSL_CTX_free(ctx)) and rotation works as for the
 * libmicrohttpd listeners. NULL with eb filled when OpenSSL refuses the files. */
void *tls_server_ssl_ctx(tls_server_t *t, mt_errbuf_t *eb);
/* The tenant tenants_from_certificate binds to the first of names[0..n) (a certificate's URI
 * SANs, then its subject CN) that it maps, or NULL. Owned by t. */
const char *tls_server_tenant_of(const tls_server_t *t, const char *const *names, size_t n);
/* Counts a handshake refused because the client certificate did not verify against
 * client_ca_file (meltp_tls_refused_handshakes_total{reason="untrusted_certificate"}), for
 * listeners that verify with OpenSSL (h2tls.c). */
void tls_server_count_untrusted(tls_server_t *t);
/* The serial number of the certificate served now, as lower-case hex (for tests and logs). */
void tls_server_serial(tls_server_t *t, char *out, size_t cap);

/* A new connection's gnutls session (gnutls_session_t): asks for a client certificate when
 * client_ca_file is set and verifies it during the handshake against the CA list of the
 * generation the handshake used. Returns the connection's state (owned by the caller:
 * tls_conn_release at close), or NULL when out of memory (the caller closes the connection). */
tls_conn_t *tls_conn_begin(tls_server_t *t, void *session);
void tls_conn_release(tls_conn_t *tc); /* accepts NULL */
/* The tenant the connection's client certificate is bound to by tenants_from_certificate, or
 * NULL when none (no client certificate, or one not in the map). Owned by tc. */
const char *tls_conn_tenant(const tls_conn_t *tc);
/* 1 when the connection may send requests: no client certificate is required, or
 * verify_callback accepted one. A TLS session resumed without a handshake would skip that
 * callback (libmicrohttpd 0.9.75 enables no resumption; this keeps it safe if one does). */
int tls_conn_authenticated(const tls_conn_t *tc);

/* ---- exporter side ---- */

/* Applies cfg (NULL: nothing) to a libcurl easy handle that will fetch `url`: minimum
 * version, CA file, client certificate, insecure_skip_verify. For server_name_override on an
 * https:// URL, the URL's host is replaced by the name (so SNI, the certificate check and the
 * Host header use it) and CURLOPT_CONNECT_TO sends the connection to the real host; `scratch`
 * keeps that list alive while the handle uses it. Call after CURLOPT_URL. Returns MT_OK, or
 * MT_EINVAL for a URL it cannot rewrite (the handle then keeps the plain URL). */
struct curl_slist;
typedef struct tls_curl_scratch {
    char url[2048];
    char connect_to[600];
    struct curl_slist *connect_list;
} tls_curl_scratch_t;
int tls_curl_apply(void *curl, const tls_client_cfg_t *cfg, const char *url,
                   tls_curl_scratch_t *scratch);
void tls_curl_scratch_fini(tls_curl_scratch_t *s);
/* For clients that are not libcurl (an nghttp2 gRPC exporter): an OpenSSL client SSL_CTX (as
 * void *, the caller's: SSL_CTX_free) with cfg's CA file (default: the system's), client
 * certificate, minimum version, certificate verification unless insecure_skip_verify, and ALPN
 * "h2". NULL with eb filled when a file is refused. */
void *tls_client_ssl_ctx(const tls_client_cfg_t *cfg, mt_errbuf_t *eb);
/* Per connection (an SSL * from that SSL_CTX): SNI and the name the certificate must carry,
 * server_name_override or else `host` (the endpoint's). MT_OK or MT_EINVAL. */
int tls_client_ssl_setup(void *ssl, const tls_client_cfg_t *cfg, const char *host);
/* Logs the start-up warning for insecure_skip_verify (once per component start). */
void tls_client_warn(const tls_client_cfg_t *cfg, const char *component_id);

#endif
