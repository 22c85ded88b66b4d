/*
 * auth.h - the authenticator extensions, in the OpenTelemetry Collector's shapes:
 * `bearertokenauth` (token, filename re-read when it changes, scheme, and on receivers
 * `tenants` binding tokens to tenants) and `basicauth` (htpasswd file/inline with bcrypt and
 * {SHA} entries for receivers, client_auth for exporters). Receivers, the self-metrics
 * endpoint and exporters reference one with `auth: {authenticator: <id>}`; the service
 * resolves the id (check-config errors with FILE:LINE) into receiver_t.auth / exporter_t.auth.
 *
 * Secrets never leave this module except in the Authorization header an exporter sends:
 * tokens are compared as SHA-256 digests with CRYPTO_memcmp, verified basic credentials are
 * cached by a digest of the header (bcrypt is slow) in a bounded cache, and no log line or
 * error names a credential.
 */
#ifndef AUTH_H
#define AUTH_H

#include "component.h"

#include <stddef.h>

/* What a server-side check found. */
typedef struct auth_verdict {
    int ok;                         /* the credentials are valid */
    char tenant[MT_TENANT_MAX + 1]; /* the tenant they are bound to, "" when unbound */
} auth_verdict_t;

/* How a component uses an authenticator (what its config must provide). */
typedef enum { AUTH_USE_SERVER = 0, AUTH_USE_CLIENT = 1 } auth_use_t;

/* Nonzero when x is a bearertokenauth or basicauth extension. */
int auth_is_authenticator(const extension_t *x);
/* MT_OK when x's config can serve `use` (a receiver needs tokens or an htpasswd, an exporter
 * a token or client_auth); else MT_EINVAL with the reason in why. */
int auth_usable(const extension_t *x, auth_use_t use, char *why, size_t whylen);

/* Checks the value of a request's Authorization header (NULL when absent) against x, which
 * must be started (an authenticator not started refuses everything). Thread-safe; re-reads
 * token and htpasswd files at most once a second when they changed. */
void auth_server_check(const extension_t *x, const char *authorization, auth_verdict_t *v);
/* The WWW-Authenticate value a 401 from x carries (`Bearer realm="meltp"`, ...). */
const char *auth_challenge(const extension_t *x);

/* Writes the header line "Authorization: <scheme> <credentials>" an exporter sends into out
 * (cleanse it after use). Returns MT_OK, or MT_EINVAL when x has no client credentials now. */
int auth_client_header(const extension_t *x, char *out, size_t cap);

/* A tenant id as Loki and Mimir take it on the write path: 1 to MT_TENANT_MAX characters of
 * letters, digits and ! - _ . * ' ( ), and not "." or ".." ('|' separates several tenants in
 * their queries; a push naming two is refused). The one rule for receivers and config. */
int auth_tenant_valid(const char *id);
#define AUTH_TENANT_RULE "1 to 63 characters of A-Z a-z 0-9 ! - _ . * ' ( ), not . or .."

#endif
