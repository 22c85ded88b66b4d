/*
 * auth.c - the authenticator API (auth.h), the pieces both authenticators share (files
 * re-read when they change, digests, the tenant id rule) and the `bearertokenauth` extension.
 *
 * bearertokenauth keeps one source per token: the unbound `token`/`filename` and one per
 * `tenants` entry. A source holds the SHA-256 of its token; a presented token is hashed and
 * compared with every source by CRYPTO_memcmp (no early exit, no length leak). File sources
 * are stat'ed at most once a second by one request thread and re-read when they changed; a
 * file that cannot be read keeps the previous token and says so (without its content).
 */
#include "auth_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- shared pieces ------------------------------------------------------------------- */

int auth_tenant_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n <= MT_TENANT_MAX &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()") ==
               n &&
           strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

int auth_file_changed(auth_file_t *f)
{
    struct stat st;
    if (stat(f->path, &st) != 0) {
        return -1;
    }
    if (f->seen && st.st_dev == f->dev && st.st_ino == f->ino && st.st_size == f->size &&
        st.st_mtim.tv_sec == f->mtime.tv_sec && st.st_mtim.tv_nsec == f->mtime.tv_nsec) {
        return 0;
    }
    f->dev = st.st_dev, f->ino = st.st_ino, f->size = st.st_size, f->mtime = st.st_mtim;
    f->seen = 1;
    return 1;
}

char *auth_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    char *buf = malloc(AUTH_FILE_MAX + 1);
    size_t n = 0;
    ssize_t k = 1;
    while (buf && n <= AUTH_FILE_MAX && (k = read(fd, buf + n, AUTH_FILE_MAX + 1 - n)) > 0) {
        n += (size_t)k;
    }
    int err = !buf ? ENOMEM : k < 0 ? errno : n > AUTH_FILE_MAX ? EFBIG : 0;
    close(fd);
    if (err) {
        auth_secret_free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

void auth_secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void auth_digest(const void *p, size_t n, uint8_t out[AUTH_DIGEST])
{
    unsigned int len = AUTH_DIGEST;
    if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL)) {
        memset(out, 0, AUTH_DIGEST); /* never matches a loaded source (have = 0 paths) */
    }
}

int auth_recheck_due(_Atomic uint64_t *next_ns, pthread_mutex_t *reload_mu)
{
    uint64_t now = mt_now_ns();
    uint64_t next = atomic_load_explicit(next_ns, memory_order_relaxed);
    return now >= next && atomic_compare_exchange_strong(next_ns, &next, now + AUTH_RECHECK_NS) &&
           pthread_mutex_trylock(reload_mu) == 0;
}

void auth_recheck_done(pthread_mutex_t *reload_mu)
{
    pthread_mutex_unlock(reload_mu);
}

size_t auth_trim_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    return n;
}

/* ---- bearertokenauth ----------------------------------------------------------------- */

typedef struct bearer_cfg {
    char *scheme;
    char *token;
    char *filename;
    const cfg_node_t *tenants;
} bearer_cfg_t;

static const cfg_field_t bearer_fields[] = {
    {"scheme", CFG_T_STRING, "Bearer", 0, offsetof(bearer_cfg_t, scheme), NULL,
     "the Authorization scheme sent and expected (`<scheme> <token>`)"},
    {"token", CFG_T_STRING, "", CFG_SECRET, offsetof(bearer_cfg_t, token), NULL,
     "the token (use ${env:VAR}); receivers accept it unbound to any tenant, exporters send it"},
    {"filename", CFG_T_STRING, "", 0, offsetof(bearer_cfg_t, filename), NULL,
     "file holding the token instead of `token` (trailing newline ignored); re-read when it "
     "changes"},
    {"tenants", CFG_T_NODE, NULL, 0, offsetof(bearer_cfg_t, tenants), NULL,
     "receivers: `{TENANT: {token: T} or {filename: F}}`, each token bound to its tenant: a "
     "request without X-Scope-OrgID gets that tenant, one naming another gets 403"},
};

typedef struct bearer_src {
    char tenant[MT_TENANT_MAX + 1]; /* "" for the unbound token */
    const char *literal;            /* the configured token, or NULL for a file */
    auth_file_t file;
    uint8_t digest[AUTH_DIGEST];
    int have; /* a non-empty token is loaded */
} bearer_src_t;

typedef struct bearer_state {
    pthread_rwlock_t lock; /* readers: every check; writer: a changed file */
    bearer_src_t *src;
    size_t n;
    char *client; /* the unbound token as text, for exporters; NULL when none */
    _Atomic uint64_t next_check_ns;
    pthread_mutex_t reload_mu; /* the one thread re-reading files */
    char challenge[96];
    const char *id;
    const char *scheme;
} bearer_state_t;

/* 1 when a configured token can be sent in a header: no blank or control byte (a trailing
 * newline, as files have, is not part of the token). */
static int token_chars_ok(const char *t)
{
    for (size_t i = 0, n = auth_trim_len(t, strlen(t)); i < n; i++) {
        if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Checks one `{token: T}` / `{filename: F}` map under `key`. */
static void bearer_validate_entry(cfg_ctx_t *c, const cfg_node_t *m, const char *path)
{
    if (!m || m->kind != CFG_NODE_MAP) {
        cfg_error(c, m ? m->line : 0, path, "expected a map with token or filename");
        return;
    }
    int have = 0;
    for (size_t i = 0; i < m->n; i++) {
        const cfg_node_t *v = m->children[i];
        int line = m->key_lines ? m->key_lines[i] : m->line;
        char kp[400];
        snprintf(kp, sizeof(kp), "%.300s.%.90s", path, m->keys[i]);
        if (strcmp(m->keys[i], "token") != 0 && strcmp(m->keys[i], "filename") != 0) {
            cfg_error(c, line, kp, "unknown key (valid: token, filename)");
        } else if (v->kind != CFG_NODE_SCALAR || !*v->value) {
            cfg_error(c, v->line, kp, "expected a non-empty string");
        } else if (strcmp(m->keys[i], "token") == 0 && !token_chars_ok(v->value)) {
            cfg_error(c, v->line, kp, "the token has blanks or control characters");
        } else if (strcmp(m->keys[i], "filename") == 0 && access(v->value, R_OK) != 0) {
            cfg_error(c, v->line, kp, "cannot read %s: %s", v->value, strerror(errno));
        } else {
            have++;
        }
    }
    if (have != 1 && m->n <= 2) {
        cfg_error(c, m->line, path, "give exactly one of token, filename");
    }
}

static void bearer_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    bearer_cfg_t *cfg = cfgp;
    if (!cfg->scheme || !*cfg->scheme || strpbrk(cfg->scheme, " \t\r\n:")) {
        cfg_error_key(c, node, path, "scheme", "must be one word (e.g. Bearer)");
    }
    if (!token_chars_ok(cfg->token)) {
        cfg_error_key(c, node, path, "token", "the token has blanks or control characters");
    }
    if (*cfg->token && *cfg->filename) {
        cfg_error_key(c, node, path, "filename", "give token or filename, not both");
    }
    if (*cfg->filename && access(cfg->filename, R_OK) != 0) {
        cfg_error_key(c, node, path, "filename", "cannot read %s: %s", cfg->filename,
                      strerror(errno));
    }
    const cfg_node_t *t = cfg->tenants;
    if (t && t->kind != CFG_NODE_MAP && t->kind != CFG_NODE_NULL) {
        cfg_error_key(c, node, path, "tenants", "expected a map of tenant -> {token|filename}");
        return;
    }
    for (size_t i = 0; t && t->kind == CFG_NODE_MAP && i < t->n; i++) {
        char kp[320];
        snprintf(kp, sizeof(kp), "%.200s.tenants.%.100s", path, t->keys[i]);
        if (!auth_tenant_valid(t->keys[i])) {
            cfg_error(c, t->key_lines ? t->key_lines[i] : t->line, kp,
                      "not a valid tenant id (" AUTH_TENANT_RULE ")");
        }
        bearer_validate_entry(c, t->children[i], kp);
    }
}

/* (Re)loads a source; called with the write lock held or before the state is shared.
 * Returns MT_OK, or an errno-style failure with the previous token kept. */
static int bearer_load(bearer_state_t *st, bearer_src_t *s, int unbound)
{
    char *text = NULL;
    size_t len = 0;
    if (s->literal) {
        len = strlen(s->literal);
    } else {
        text = auth_read_file(s->file.path, &len);
        if (!text) {
            return errno ? errno : EIO;
        }
    }
    const char *tok = s->literal ? s->literal : text;
    len = auth_trim_len(tok, len);
    if (len == 0) {
        auth_secret_free(text);
        return ENODATA;
    }
    for (size_t i = 0; i < len; i++) {
        /* a blank or control byte would end or split the header an exporter sends */
        if ((unsigned char)tok[i] <= ' ' || tok[i] == 0x7f) {
            auth_secret_free(text);
            return EILSEQ;
        }
    }
    auth_digest(tok, len, s->digest);
    s->have = 1;
    if (unbound) {
        char *cp = strndup(tok, len);
        if (cp) {
            auth_secret_free(st->client);
            st->client = cp;
        }
    }
    auth_secret_free(text);
    return MT_OK;
}

static const char *token_error(int rc)
{
    return rc == ENODATA  ? "empty token"
           : rc == EILSEQ ? "the token has blanks or control characters"
                          : strerror(rc);
}

static void bearer_reload(bearer_state_t *st)
{
    for (size_t i = 0; i < st->n; i++) {
        bearer_src_t *s = &st->src[i];
        if (s->literal) {
            continue;
        }
        int ch = auth_file_changed(&s->file);
        int rc = ch < 0 ? errno : 0;
        if (ch == 1) {
            pthread_rwlock_wrlock(&st->lock);
            rc = bearer_load(st, s, !s->tenant[0]);
            pthread_rwlock_unlock(&st->lock);
            if (rc == MT_OK) {
                mt_log(MT_LOG_INFO, "extension %s: token file %s re-read", st->id, s->file.path);
            }
        }
        if (rc != MT_OK) {
            s->file.seen = 0; /* try again at the next look */
            MT_LOG_EVERY(10, MT_LOG_WARN,
                         "extension %s: cannot read token file %s (%s); keeping the previous "
                         "token",
                         st->id, s->file.path, token_error(rc));
        }
    }
}

static void bearer_free(bearer_state_t *st)
{
    if (!st) {
        return;
    }
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->reload_mu);
    OPENSSL_cleanse(st->src, st->n * sizeof(*st->src));
    free(st->src);
    auth_secret_free(st->client);
    free(st);
}

static int bearer_add(bearer_state_t *st, const char *tenant, const char *literal, const char *file,
                      mt_errbuf_t *eb)
{
    bearer_src_t *s = &st->src[st->n++];
    snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
    s->literal = literal;
    s->file.path = file;
    if (file) {
        (void)auth_file_changed(&s->file);
    }
    int rc = bearer_load(st, s, !tenant[0]);
    if (rc != MT_OK) {
        mt_failf(eb, "extension %s: %s%s: %s", st->id, file ? file : "token",
                 tenant[0] ? " (tenants)" : "", token_error(rc));
        return MT_ERR;
    }
    return MT_OK;
}

static int bearer_start(extension_t *x, service_t *svc, mt_errbuf_t *eb)
{
    (void)svc;
    bearer_cfg_t *cfg = x->cfg;
    const cfg_node_t *t = cfg->tenants && cfg->tenants->kind == CFG_NODE_MAP ? cfg->tenants : NULL;
    bearer_state_t *st = calloc(1, sizeof(*st));
    size_t cap = 1 + (t ? t->n : 0);
    if (!st || !(st->src = calloc(cap, sizeof(*st->src)))) {
        free(st);
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    pthread_rwlock_init(&st->lock, NULL);
    pthread_mutex_init(&st->reload_mu, NULL);
    st->id = x->id;
    st->scheme = cfg->scheme;
    snprintf(st->challenge, sizeof(st->challenge), "%s " AUTH_REALM, cfg->scheme);
    int rc = MT_OK;
    if (*cfg->token || *cfg->filename) {
        rc = bearer_add(st, "", *cfg->token ? cfg->token : NULL, *cfg->token ? NULL : cfg->filename,
                        eb);
    }
    for (size_t i = 0; t && rc == MT_OK && i < t->n; i++) {
        const cfg_node_t *tok = cfg_map_get(t->children[i], "token");
        const cfg_node_t *fn = cfg_map_get(t->children[i], "filename");
        rc = bearer_add(st, t->keys[i], tok ? tok->value : NULL, tok ? NULL : fn->value, eb);
    }
    if (rc != MT_OK) {
        bearer_free(st);
        return MT_ERR;
    }
    x->state = st;
    mt_log(MT_LOG_INFO, "extension %s: %zu bearer token(s), %zu bound to tenants", x->id, st->n,
           t ? t->n : 0);
    return MT_OK;
}

static void bearer_stop(extension_t *x)
{
    bearer_free(x->state);
    x->state = NULL;
}

const extension_ops_t extension_bearertokenauth_ops = {
    .type = "bearertokenauth",
    .fields = bearer_fields,
    .nfields = MT_ARRAY_LEN(bearer_fields),
    .cfg_size = sizeof(bearer_cfg_t),
    .help = "bearer token authenticator: receivers and the metrics endpoint check "
            "`Authorization: <scheme> <token>` (401 otherwise), exporters send it; referenced "
            "as `auth: {authenticator: <id>}`",
    .validate = bearer_validate,
    .start = bearer_start,
    .stop = bearer_stop,
};

static void bearer_check(const extension_t *x, const char *authz, auth_verdict_t *v)
{
    bearer_state_t *st = x->state;
    size_t sl = strlen(st->scheme);
    if (strncasecmp(authz, st->scheme, sl) != 0 || (authz[sl] != ' ' && authz[sl] != '\t')) {
        return;
    }
    const char *tok = authz + sl;
    while (*tok == ' ' || *tok == '\t') {
        tok++;
    }
    size_t len = auth_trim_len(tok, strlen(tok));
    if (len == 0) {
        return;
    }
    if (auth_recheck_due(&st->next_check_ns, &st->reload_mu)) {
        bearer_reload(st);
        auth_recheck_done(&st->reload_mu);
    }
    uint8_t d[AUTH_DIGEST];
    auth_digest(tok, len, d);
    ssize_t found = -1;
    pthread_rwlock_rdlock(&st->lock);
    for (size_t i = 0; i < st->n; i++) {
        int eq = st->src[i].have & (CRYPTO_memcmp(d, st->src[i].digest, AUTH_DIGEST) == 0);
        if (eq && found < 0) {
            found = (ssize_t)i;
        }
    }
    if (found >= 0) {
        v->ok = 1;
        memcpy(v->tenant, st->src[found].tenant, sizeof(v->tenant));
    }
    pthread_rwlock_unlock(&st->lock);
}

static int bearer_client_header(const extension_t *x, char *out, size_t cap)
{
    bearer_state_t *st = x->state;
    if (auth_recheck_due(&st->next_check_ns, &st->reload_mu)) {
        bearer_reload(st);
        auth_recheck_done(&st->reload_mu);
    }
    int rc = MT_EINVAL;
    pthread_rwlock_rdlock(&st->lock);
    if (st->client) {
        int n = snprintf(out, cap, "Authorization: %s %s", st->scheme, st->client);
        rc = n > 0 && (size_t)n < cap ? MT_OK : MT_EINVAL;
    }
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

/* ---- the API ------------------------------------------------------------------------- */

int auth_is_authenticator(const extension_t *x)
{
    return x && (x->ops == &extension_bearertokenauth_ops || x->ops == &extension_basicauth_ops);
}

int auth_usable(const extension_t *x, auth_use_t use, char *why, size_t whylen)
{
    if (x->ops == &extension_basicauth_ops) {
        return basic_usable(x, use, why, whylen);
    }
    const bearer_cfg_t *cfg = x->cfg;
    int unbound = *cfg->token || *cfg->filename;
    int bound = cfg->tenants && cfg->tenants->kind == CFG_NODE_MAP && cfg->tenants->n > 0;
    if (use == AUTH_USE_CLIENT && !unbound) {
        snprintf(why, whylen, "bearertokenauth \"%s\" has no token or filename to send", x->id);
        return MT_EINVAL;
    }
    if (use == AUTH_USE_SERVER && !unbound && !bound) {
        snprintf(why, whylen, "bearertokenauth \"%s\" has no token, filename or tenants", x->id);
        return MT_EINVAL;
    }
    return MT_OK;
}

void auth_server_check(const extension_t *x, const char *authorization, auth_verdict_t *v)
{
    memset(v, 0, sizeof(*v));
    if (!x || !x->state || !authorization) {
        return;
    }
    if (x->ops == &extension_basicauth_ops) {
        basic_check(x, authorization, v);
    } else {
        bearer_check(x, authorization, v);
    }
}

const char *auth_challenge(const extension_t *x)
{
    if (x && x->state && x->ops == &extension_bearertokenauth_ops) {
        return ((const bearer_state_t *)x->state)->challenge;
    }
    if (x && x->state && x->ops == &extension_basicauth_ops) {
        return basic_challenge(x);
    }
    return "Bearer " AUTH_REALM;
}

int auth_client_header(const extension_t *x, char *out, size_t cap)
{
    if (!x || !x->state) {
        return MT_EINVAL;
    }
    return x->ops == &extension_basicauth_ops ? basic_client_header(x, out, cap)
                                              : bearer_client_header(x, out, cap);
}
