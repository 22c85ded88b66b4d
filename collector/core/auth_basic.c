/*
 * auth_basic.c - the `basicauth` extension: receivers check `Authorization: Basic ...` against
 * htpasswd entries (`htpasswd.file`, re-read when it changes, and `htpasswd.inline`); exporters
 * send `client_auth.username`/`password`.
 *
 * Entries are bcrypt (`$2y$`, `$2b$`, `$2a$`, verified by libcrypt's crypt_rn) or `{SHA}`
 * (base64 SHA-1, OpenSSL); anything else (MD5 `$apr1$`, plain text) is refused at
 * check-config. bcrypt costs milliseconds by design, so a verified header is remembered in a
 * bounded cache keyed by its SHA-256 (never the header itself): AUTH_CACHE_STRIPES stripes of
 * AUTH_CACHE_WAYS slots, each stripe its own mutex; a reload of the file bumps a generation
 * that invalidates every slot. Wrong credentials are never cached.
 */
#include "auth_int.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define AUTH_CACHE_STRIPES 16
#define AUTH_CACHE_WAYS    64
#define AUTH_CRED_MAX      1024 /* longest decoded user:password looked at */

typedef struct basic_cfg {
    char *htpasswd_file;
    char *htpasswd_inline;
    char *username;
    char *password;
} basic_cfg_t;

static const cfg_field_t basic_fields[] = {
    {"htpasswd.file", CFG_T_STRING, "", 0, offsetof(basic_cfg_t, htpasswd_file), NULL,
     "receivers: htpasswd file of `user:hash` lines (bcrypt $2y$/$2b$ or {SHA}); re-read when "
     "it changes"},
    {"htpasswd.inline", CFG_T_STRING, "", CFG_SECRET, offsetof(basic_cfg_t, htpasswd_inline), NULL,
     "receivers: htpasswd lines in the config (added to the file's)"},
    {"client_auth.username", CFG_T_STRING, "", 0, offsetof(basic_cfg_t, username), NULL,
     "exporters: the user name sent"},
    {"client_auth.password", CFG_T_STRING, "", CFG_SECRET, offsetof(basic_cfg_t, password), NULL,
     "exporters: the password sent (use ${env:VAR})"},
};

typedef struct htuser {
    char *name;
    char *hash;
} htuser_t;

typedef struct cache_slot {
    uint8_t digest[AUTH_DIGEST];
    uint64_t gen; /* 0 = empty */
} cache_slot_t;

typedef struct cache_stripe {
    pthread_mutex_t mu;
    cache_slot_t slot[AUTH_CACHE_WAYS];
} cache_stripe_t;

typedef struct basic_state {
    pthread_rwlock_t lock; /* users: readers check, a changed file writes */
    htuser_t *users;
    size_t nusers;
    auth_file_t file;
    _Atomic uint64_t next_check_ns;
    pthread_mutex_t reload_mu; /* the one thread re-reading the file */
    _Atomic uint64_t gen;      /* bumped when the users change: older cache slots miss */
    cache_stripe_t cache[AUTH_CACHE_STRIPES];
    char *client; /* "Authorization: Basic ..." or NULL */
    const basic_cfg_t *cfg;
    const char *id;
} basic_state_t;

static void users_free(htuser_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u[i].name);
        auth_secret_free(u[i].hash);
    }
    free(u);
}

static int hash_supported(const char *h)
{
    return strncmp(h, "$2y$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2a$", 4) == 0 ||
           strncmp(h, "{SHA}", 5) == 0;
}

/* Parses htpasswd text into *u (appending). Returns MT_OK, or MT_EINVAL with why naming the
 * line (never its hash). */
static int parse_htpasswd(const char *text, htuser_t **u, size_t *n, char *why, size_t whylen)
{
    int line = 0;
    for (const char *p = text; p && *p;) {
        line++;
        const char *eol = strchr(p, '\n');
        size_t len = auth_trim_len(p, eol ? (size_t)(eol - p) : strlen(p));
        const char *colon = memchr(p, ':', len);
        if (len > 0 && *p != '#') {
            if (!colon || colon == p) {
                snprintf(why, whylen, "line %d: expected user:hash", line);
                return MT_EINVAL;
            }
            char *hash = strndup(colon + 1, len - (size_t)(colon + 1 - p));
            if (!hash || !hash_supported(hash)) {
                auth_secret_free(hash);
                snprintf(why, whylen,
                         "line %d: unsupported hash (use bcrypt $2y$/$2b$ or {SHA}: htpasswd -B "
                         "or -s)",
                         line);
                return MT_EINVAL;
            }
            htuser_t *nu = realloc(*u, (*n + 1) * sizeof(*nu));
            if (!nu) {
                auth_secret_free(hash);
                snprintf(why, whylen, "out of memory");
                return MT_EINVAL;
            }
            *u = nu;
            nu[*n].name = strndup(p, (size_t)(colon - p));
            nu[*n].hash = hash;
            (*n)++;
        }
        p = eol ? eol + 1 : NULL;
    }
    return MT_OK;
}

/* Loads the inline entries and the file's; MT_OK or MT_EINVAL with why. */
static int load_users(const basic_cfg_t *cfg, htuser_t **u, size_t *n, char *why, size_t whylen)
{
    *u = NULL;
    *n = 0;
    char sub[192];
    if (*cfg->htpasswd_inline &&
        parse_htpasswd(cfg->htpasswd_inline, u, n, sub, sizeof(sub)) != MT_OK) {
        snprintf(why, whylen, "htpasswd.inline: %s", sub);
        goto fail;
    }
    if (*cfg->htpasswd_file) {
        size_t len;
        char *text = auth_read_file(cfg->htpasswd_file, &len);
        if (!text) {
            snprintf(why, whylen, "htpasswd.file: cannot read %s: %s", cfg->htpasswd_file,
                     strerror(errno));
            goto fail;
        }
        int rc = parse_htpasswd(text, u, n, sub, sizeof(sub));
        auth_secret_free(text);
        if (rc != MT_OK) {
            snprintf(why, whylen, "htpasswd.file: %s %s", cfg->htpasswd_file, sub);
            goto fail;
        }
    }
    return MT_OK;
fail:
    users_free(*u, *n);
    *u = NULL;
    *n = 0;
    return MT_EINVAL;
}

static void basic_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    basic_cfg_t *cfg = cfgp;
    htuser_t *u;
    size_t n;
    char why[320];
    if (load_users(cfg, &u, &n, why, sizeof(why)) != MT_OK) {
        const char *key =
            strncmp(why, "htpasswd.file", 13) == 0 ? "htpasswd.file" : "htpasswd.inline";
        cfg_error_key(c, node, path, key, "%s", why + strlen(key) + 2);
        return;
    }
    users_free(u, n);
    if (*cfg->password && !*cfg->username) {
        cfg_error_key(c, node, path, "client_auth.username", "required with client_auth.password");
    }
    if (strchr(cfg->username, ':')) {
        cfg_error_key(c, node, path, "client_auth.username", "must not contain ':'");
    }
}

int basic_usable(const extension_t *x, auth_use_t use, char *why, size_t whylen)
{
    const basic_cfg_t *cfg = x->cfg;
    if (use == AUTH_USE_CLIENT && !*cfg->username) {
        snprintf(why, whylen, "basicauth \"%s\" has no client_auth to send", x->id);
        return MT_EINVAL;
    }
    if (use == AUTH_USE_SERVER && !*cfg->htpasswd_file && !*cfg->htpasswd_inline) {
        snprintf(why, whylen, "basicauth \"%s\" has no htpasswd to check against", x->id);
        return MT_EINVAL;
    }
    return MT_OK;
}

static void basic_free(basic_state_t *st)
{
    if (!st) {
        return;
    }
    users_free(st->users, st->nusers);
    for (int i = 0; i < AUTH_CACHE_STRIPES; i++) {
        pthread_mutex_destroy(&st->cache[i].mu);
    }
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->reload_mu);
    auth_secret_free(st->client);
    free(st);
}

static char *client_header(const basic_cfg_t *cfg)
{
    size_t ul = strlen(cfg->username), pl = strlen(cfg->password);
    char *cred = malloc(ul + pl + 2);
    char *out = malloc(32 + 4 * ((ul + pl + 1 + 2) / 3) + 1);
    if (!cred || !out) {
        free(cred);
        free(out);
        return NULL;
    }
    snprintf(cred, ul + pl + 2, "%s:%s", cfg->username, cfg->password);
    int n = sprintf(out, "Authorization: Basic ");
    EVP_EncodeBlock((unsigned char *)out + n, (const unsigned char *)cred, (int)(ul + pl + 1));
    auth_secret_free(cred);
    return out;
}

static int basic_start(extension_t *x, service_t *svc, mt_errbuf_t *eb)
{
    (void)svc;
    basic_cfg_t *cfg = x->cfg;
    basic_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    pthread_rwlock_init(&st->lock, NULL);
    pthread_mutex_init(&st->reload_mu, NULL);
    for (int i = 0; i < AUTH_CACHE_STRIPES; i++) {
        pthread_mutex_init(&st->cache[i].mu, NULL);
    }
    st->cfg = cfg;
    st->id = x->id;
    atomic_store(&st->gen, 1);
    st->file.path = cfg->htpasswd_file;
    if (*cfg->htpasswd_file) {
        (void)auth_file_changed(&st->file);
    }
    char why[320];
    if (load_users(cfg, &st->users, &st->nusers, why, sizeof(why)) != MT_OK) {
        mt_failf(eb, "extension %s: %s", x->id, why);
        basic_free(st);
        return MT_ERR;
    }
    if (*cfg->username && !(st->client = client_header(cfg))) {
        mt_failf(eb, "out of memory");
        basic_free(st);
        return MT_ENOMEM;
    }
    x->state = st;
    mt_log(MT_LOG_INFO, "extension %s: %zu htpasswd user(s)%s", x->id, st->nusers,
           st->client ? ", client credentials set" : "");
    return MT_OK;
}

static void basic_stop(extension_t *x)
{
    basic_free(x->state);
    x->state = NULL;
}

const extension_ops_t extension_basicauth_ops = {
    .type = "basicauth",
    .fields = basic_fields,
    .nfields = MT_ARRAY_LEN(basic_fields),
    .cfg_size = sizeof(basic_cfg_t),
    .help = "HTTP basic authenticator: receivers and the metrics endpoint check htpasswd "
            "entries (401 otherwise), exporters send client_auth; referenced as "
            "`auth: {authenticator: <id>}`",
    .validate = basic_validate,
    .start = basic_start,
    .stop = basic_stop,
};

const char *basic_challenge(const extension_t *x)
{
    (void)x;
    return "Basic " AUTH_REALM ", charset=\"UTF-8\"";
}

int basic_client_header(const extension_t *x, char *out, size_t cap)
{
    const basic_state_t *st = x->state;
    if (!st->client || strlen(st->client) >= cap) {
        return MT_EINVAL;
    }
    memcpy(out, st->client, strlen(st->client) + 1);
    return MT_OK;
}

static void basic_reload(basic_state_t *st)
{
    if (!*st->cfg->htpasswd_file) {
        return;
    }
    int ch = auth_file_changed(&st->file);
    if (ch == 0) {
        return;
    }
    htuser_t *u = NULL;
    size_t n = 0;
    char why[320];
    if (ch < 0) {
        snprintf(why, sizeof(why), "htpasswd.file: cannot stat %s: %s", st->file.path,
                 strerror(errno));
    } else if (load_users(st->cfg, &u, &n, why, sizeof(why)) == MT_OK) {
        pthread_rwlock_wrlock(&st->lock);
        htuser_t *old = st->users;
        size_t oldn = st->nusers;
        st->users = u, st->nusers = n;
        atomic_fetch_add(&st->gen, 1);
        pthread_rwlock_unlock(&st->lock);
        users_free(old, oldn);
        mt_log(MT_LOG_INFO, "extension %s: %s re-read, %zu user(s)", st->id, st->file.path, n);
        return;
    }
    st->file.seen = 0;
    MT_LOG_EVERY(10, MT_LOG_WARN, "extension %s: %s; keeping the previous users", st->id, why);
}

/* Looks the digest up (hit = 1) or, with insert, remembers it as verified against the users
 * of generation gen. */
static int cache_op(basic_state_t *st, const uint8_t d[AUTH_DIGEST], uint64_t gen, int insert)
{
    cache_stripe_t *cs = &st->cache[d[0] % AUTH_CACHE_STRIPES];
    cache_slot_t *s = &cs->slot[d[1] % AUTH_CACHE_WAYS];
    int hit = 0;
    pthread_mutex_lock(&cs->mu);
    if (insert) {
        memcpy(s->digest, d, AUTH_DIGEST);
        s->gen = gen;
    } else {
        hit = s->gen == gen && CRYPTO_memcmp(s->digest, d, AUTH_DIGEST) == 0;
    }
    pthread_mutex_unlock(&cs->mu);
    return hit;
}

/* 1 when pass matches the htpasswd hash. */
static int verify(const char *pass, const char *hash)
{
    if (strncmp(hash, "{SHA}", 5) == 0) {
        unsigned char d[20];
        unsigned int dl = sizeof(d);
        char b64[64];
        if (!EVP_Digest(pass, strlen(pass), d, &dl, EVP_sha1(), NULL)) {
            return 0;
        }
        int n = EVP_EncodeBlock((unsigned char *)b64, d, (int)dl);
        const char *want = hash + 5;
        return (size_t)n == strlen(want) && CRYPTO_memcmp(b64, want, (size_t)n) == 0;
    }
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd) {
        return 0;
    }
    const char *out = crypt_rn(pass, hash, cd, (int)sizeof(*cd));
    int ok = out && out[0] != '*' && strlen(out) == strlen(hash) &&
             CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
    return ok;
}

void basic_check(const extension_t *x, const char *authz, auth_verdict_t *v)
{
    basic_state_t *st = x->state;
    if (strncasecmp(authz, "Basic", 5) != 0 || (authz[5] != ' ' && authz[5] != '\t')) {
        return;
    }
    const char *b64 = authz + 6;
    while (*b64 == ' ' || *b64 == '\t') {
        b64++;
    }
    size_t bl = auth_trim_len(b64, strlen(b64));
    if (bl == 0 || bl % 4 != 0 || bl / 4 * 3 > AUTH_CRED_MAX) {
        return;
    }
    if (auth_recheck_due(&st->next_check_ns, &st->reload_mu)) {
        basic_reload(st);
        auth_recheck_done(&st->reload_mu);
    }
    uint8_t d[AUTH_DIGEST];
    auth_digest(b64, bl, d);
    uint64_t gen = atomic_load(&st->gen); /* before the users are read */
    if (cache_op(st, d, gen, 0)) {
        v->ok = 1;
        return;
    }
    unsigned char cred[AUTH_CRED_MAX + 4];
    int n = EVP_DecodeBlock(cred, (const unsigned char *)b64, (int)bl);
    if (n < 0) {
        return;
    }
    n -= (b64[bl - 1] == '=') + (b64[bl - 2] == '='); /* DecodeBlock counts padding as zeros */
    cred[n] = 0;
    char *colon = memchr(cred, ':', (size_t)n);
    if (!colon || memchr(cred, 0, (size_t)n)) {
        OPENSSL_cleanse(cred, sizeof(cred));
        return;
    }
    *colon = 0;
    char hash[256] = "";
    int known = 0;
    pthread_rwlock_rdlock(&st->lock);
    for (size_t i = 0; i < st->nusers; i++) {
        size_t hl = strlen(st->users[i].hash);
        if (hl >= sizeof(hash)) {
            continue;
        }
        if (strcmp(st->users[i].name, (const char *)cred) == 0) {
            memcpy(hash, st->users[i].hash, hl + 1);
            known = 1;
            break;
        }
        if (!hash[0] && st->users[i].hash[0] == '$') {
            memcpy(hash, st->users[i].hash, hl + 1); /* the decoy: a bcrypt of the file's */
        }
    }
    pthread_rwlock_unlock(&st->lock);
    /* a name not in the file costs the same bcrypt as a wrong password (against another
     * entry, its result ignored): the time of a 401 does not tell which names exist */
    int ok = hash[0] && verify(colon + 1, hash) && known;
    OPENSSL_cleanse(cred, sizeof(cred));
    OPENSSL_cleanse(hash, sizeof(hash));
    if (ok) {
        cache_op(st, d, gen, 1);
        v->ok = 1;
    }
}
