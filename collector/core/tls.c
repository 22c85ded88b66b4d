/*
 * tls.c - see tls.h. A listener's certificate, key and client CA list form one immutable,
 * reference-counted generation: each connection takes a reference when it is accepted and
 * keeps it until it closes, so a reload never changes what a handshake in progress (or a
 * request in flight) uses; new connections take the newest generation. A reload builds the
 * whole new generation before swapping it in, so a half-written pair of files (certificate
 * replaced, key not yet) is refused as "key does not match" and tried again when the files
 * change next, with the old generation still served.
 *
 * The client certificate is verified by our own callback during the handshake (not by the
 * credentials' trust list, which libmicrohttpd owns and which cannot be swapped under live
 * handshakes), against the CA list of the connection's generation.
 */
#include "tls.h"
#include "tls_int.h"
#include "telemetry.h"

#include <curl/curl.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TLS_MAX_CHAIN 16        /* certificates in a served chain */
#define TLS_MAX_FILE  (1 << 20) /* a PEM file larger than this is refused */
#define TLS_MAX_PEER  8         /* client chain certificates looked at */
#define TLS_NAME_MAX  256       /* CN / URI SAN compared against tenants_from_certificate */

/* ---- files and generations ---- */

typedef struct tls_gen {
    atomic_int refs;
    gnutls_pcert_st pcert[TLS_MAX_CHAIN];
    unsigned npcert;
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t trust; /* NULL without client_ca_file */
    char serial[80];
    gnutls_datum_t pem[3]; /* the files as read (cert, key, CA), for tls_server_ssl_ctx */
    void *ssl_ctx;         /* SSL_CTX built on first use by tls_server_ssl_ctx, or NULL */
} tls_gen_t;

/* Reads a whole file (capped) into a gnutls datum; MT_OK or MT_EINVAL with eb = the reason. */
static int read_file(const char *path, gnutls_datum_t *d, mt_errbuf_t *eb)
{
    d->data = NULL;
    d->size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        mt_failf(eb, "cannot read \"%s\": %s", path, strerror(errno));
        return MT_EINVAL;
    }
    unsigned char *buf = malloc(TLS_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, TLS_MAX_FILE + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || n > TLS_MAX_FILE || n == 0) {
        mt_failf(eb, "\"%s\": %s", path,
                 !buf  ? "out of memory"
                 : err ? "read error"
                 : n   ? "larger than 1 MiB"
                       : "empty file");
        free(buf);
        return MT_EINVAL;
    }
    buf[n] = 0;
    d->data = buf;
    d->size = (unsigned)n;
    return MT_OK;
}

static void gen_free(tls_gen_t *g)
{
    if (!g) {
        return;
    }
    for (unsigned i = 0; i < g->npcert; i++) {
        gnutls_pcert_deinit(&g->pcert[i]);
    }
    if (g->key) {
        gnutls_privkey_deinit(g->key);
    }
    if (g->trust) {
        gnutls_x509_trust_list_deinit(g->trust, 1);
    }
    for (int i = 0; i < 3; i++) {
        if (g->pem[i].data) {
            gnutls_memset(g->pem[i].data, 0, g->pem[i].size);
            free(g->pem[i].data);
        }
    }
    tls_ossl_ctx_free(g->ssl_ctx);
    free(g);
}

static void gen_unref(tls_gen_t *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1) {
        gen_free(g);
    }
}

/* Whether the private key is the one of the certificate's public key. */
static int key_matches(const gnutls_pcert_st *pc, gnutls_privkey_t key)
{
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0) {
        return 0;
    }
    gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
    int ok = gnutls_pubkey_import_privkey(pub, key, 0, 0) >= 0 &&
             gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) >= 0 &&
             gnutls_pubkey_export2(pc->pubkey, GNUTLS_X509_FMT_DER, &b) >= 0 && a.size == b.size &&
             memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    gnutls_pubkey_deinit(pub);
    return ok;
}

/* Checks the first certificate's validity period and records its serial. */
static int check_leaf(tls_gen_t *g, const char *cert_file, mt_errbuf_t *eb)
{
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) {
        mt_failf(eb, "out of memory");
        return MT_EINVAL;
    }
    int rc = MT_OK;
    if (gnutls_x509_crt_import(crt, &g->pcert[0].cert, GNUTLS_X509_FMT_DER) < 0) {
        mt_failf(eb, "\"%s\": unreadable certificate", cert_file);
        rc = MT_EINVAL;
    } else {
        time_t now = time(NULL);
        time_t na = gnutls_x509_crt_get_expiration_time(crt);
        time_t nb = gnutls_x509_crt_get_activation_time(crt);
        char when[32] = "";
        if (na != (time_t)-1 && na < now) {
            struct tm tm;
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&na, &tm));
            mt_failf(eb, "\"%s\": certificate expired on %s", cert_file, when);
            rc = MT_EINVAL;
        } else if (nb != (time_t)-1 && nb > now + 300) {
            struct tm tm;
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&nb, &tm));
            mt_failf(eb, "\"%s\": certificate not valid before %s", cert_file, when);
            rc = MT_EINVAL;
        }
        unsigned char ser[40];
        size_t sl = sizeof(ser);
        if (gnutls_x509_crt_get_serial(crt, ser, &sl) >= 0) {
            size_t o = 0;
            size_t i = 0;
            while (i + 1 < sl && ser[i] == 0) {
                i++; /* leading zero octets, as openssl prints it */
            }
            for (; i < sl && o + 3 < sizeof(g->serial); i++) {
                o += (size_t)snprintf(g->serial + o, sizeof(g->serial) - o, "%02x", ser[i]);
            }
        }
    }
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* Loads a generation. cert_file/key_file may both be NULL (a CA list alone, for a client
 * check); ca_file may be NULL. Returns the generation (refs = 1) or NULL with eb filled. `which`
 * (when not NULL) names the key the failing file belongs to (0 cert, 1 key, 2 ca). */
static tls_gen_t *gen_load(const char *cert_file, const char *key_file, const char *ca_file,
                           int *which, mt_errbuf_t *eb)
{
    tls_gen_t *g = calloc(1, sizeof(*g));
    if (!g) {
        mt_failf(eb, "out of memory");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    gnutls_datum_t d;
    int w = 0;
    if (cert_file) {
        if (read_file(cert_file, &d, eb) != MT_OK) {
            goto fail;
        }
        g->npcert = TLS_MAX_CHAIN;
        int rc =
            gnutls_pcert_list_import_x509_raw(g->pcert, &g->npcert, &d, GNUTLS_X509_FMT_PEM, 0);
        g->pem[0] = d;
        if (rc < 0 || g->npcert == 0) {
            g->npcert = 0;
            mt_failf(eb, "\"%s\": no PEM certificate (%s)", cert_file, gnutls_strerror(rc));
            goto fail;
        }
        if (check_leaf(g, cert_file, eb) != MT_OK) {
            goto fail;
        }
    }
    if (key_file) {
        w = 1;
        if (read_file(key_file, &d, eb) != MT_OK) {
            goto fail;
        }
        int rc = gnutls_privkey_init(&g->key);
        if (rc >= 0) {
            rc = gnutls_privkey_import_x509_raw(g->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
        }
        g->pem[1] = d;
        if (rc < 0) {
            mt_failf(eb, "\"%s\": no usable PEM private key (%s)", key_file, gnutls_strerror(rc));
            goto fail;
        }
        if (g->npcert && !key_matches(&g->pcert[0], g->key)) {
            mt_failf(eb, "\"%s\" is not the private key of the certificate in \"%s\"", key_file,
                     cert_file);
            goto fail;
        }
    }
    if (ca_file) {
        w = 2;
        if (read_file(ca_file, &d, eb) != MT_OK) {
            goto fail;
        }
        int rc = gnutls_x509_trust_list_init(&g->trust, 0);
        if (rc >= 0) {
            rc =
                gnutls_x509_trust_list_add_trust_mem(g->trust, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
        }
        g->pem[2] = d;
        if (rc <= 0) {
            mt_failf(eb, "\"%s\": no PEM CA certificate%s%s", ca_file, rc < 0 ? " " : "",
                     rc < 0 ? gnutls_strerror(rc) : "");
            goto fail;
        }
    }
    return g;
fail:
    if (which) {
        *which = w;
    }
    gen_free(g);
    return NULL;
}

/* ---- config checks ---- */

static const cfg_node_t *node_at(const cfg_node_t *node, const char *dotted)
{
    char part[128];
    while (node && *dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        if (n == 0 || n >= sizeof(part)) {
            return NULL;
        }
        memcpy(part, dotted, n);
        part[n] = 0;
        node = cfg_map_get(node, part);
        dotted = dot ? dot + 1 : "";
    }
    return node;
}

static const char *const file_keys[] = {"cert_file", "key_file", "client_ca_file"};

void tls_server_cfg_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path,
                          const char *prefix, tls_server_cfg_t *cfg)
{
    char key[160];
    snprintf(key, sizeof(key), "%stls", prefix);
    cfg->enabled = node_at(node, key) != NULL;
    if (!cfg->enabled) {
        return;
    }
    if (!cfg->cert_file || !cfg->key_file) {
        snprintf(key, sizeof(key), "%stls.%s", prefix, cfg->cert_file ? "key_file" : "cert_file");
        cfg_error_key(c, node, path, key, "required when tls is set");
        return;
    }
    if (cfg->tenants_from_certificate.n && !cfg->client_ca_file) {
        snprintf(key, sizeof(key), "%stls.tenants_from_certificate", prefix);
        cfg_error_key(c, node, path, key, "needs tls.client_ca_file (client certificates)");
    }
    if (cfg->reload_interval_ms < 0) {
        snprintf(key, sizeof(key), "%stls.reload_interval", prefix);
        cfg_error_key(c, node, path, key, "must be >= 0");
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int which = 0;
    tls_gen_t *g = gen_load(cfg->cert_file, cfg->key_file, cfg->client_ca_file, &which, &eb);
    if (!g) {
        snprintf(key, sizeof(key), "%stls.%s", prefix, file_keys[which]);
        cfg_error_key(c, node, path, key, "%s", eb.msg);
    }
    gen_unref(g);
}

void tls_client_cfg_check(cfg_ctx_t *c, const cfg_node_t *node, const char *path,
                          const tls_client_cfg_t *cfg)
{
    if (!!cfg->cert_file != !!cfg->key_file) {
        cfg_error_key(c, node, path, cfg->cert_file ? "tls.key_file" : "tls.cert_file",
                      "tls.cert_file and tls.key_file go together");
        return;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int which = 0;
    tls_gen_t *g = gen_load(cfg->cert_file, cfg->key_file, cfg->ca_file, &which, &eb);
    if (!g) {
        static const char *const keys[] = {"tls.cert_file", "tls.key_file", "tls.ca_file"};
        cfg_error_key(c, node, path, keys[which], "%s", eb.msg);
    }
    gen_unref(g);
}

/* ---- listener runtime ---- */

typedef struct file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int present;
} file_sig_t;

struct tls_server {
    char *name;
    char *files[3]; /* cert, key, client CA (NULL when unset) */
    int min_version;
    int64_t reload_ms;
    cfg_strmap_t tenants; /* copied */
    pthread_mutex_t mu;   /* cur, sig */
    tls_gen_t *cur;
    file_sig_t sig[3]; /* of the last attempt */
    pthread_t thr;
    int have_thr;
    pthread_cond_t cv;
    int stop;
    tm_counter_t *refused_untrusted; /* client certificate not signed by client_ca_file */
    tm_counter_t *reloads_ok, *reloads_failed;
};

struct tls_conn {
    tls_server_t *srv;
    tls_gen_t *gen;
    const char *tenant; /* points into srv->tenants */
    int verified;       /* verify_callback accepted the client's certificate */
};

static void sig_read(const char *path, file_sig_t *s)
{
    struct stat st;
    memset(s, 0, sizeof(*s));
    if (path && stat(path, &st) == 0) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->size = st.st_size;
        s->mtime = st.st_mtim;
        s->present = 1;
    }
}

static int sig_same(const file_sig_t *a, const file_sig_t *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Loads the files when they changed (or force). MT_OK, or MT_EINVAL with eb filled. */
static int do_reload(tls_server_t *t, int force, mt_errbuf_t *eb)
{
    file_sig_t now[3];
    for (int i = 0; i < 3; i++) {
        sig_read(t->files[i], &now[i]);
    }
    pthread_mutex_lock(&t->mu);
    int changed = force;
    for (int i = 0; i < 3; i++) {
        changed |= !sig_same(&now[i], &t->sig[i]);
        t->sig[i] = now[i];
    }
    pthread_mutex_unlock(&t->mu);
    if (!changed) {
        return MT_OK;
    }
    tls_gen_t *g = gen_load(t->files[0], t->files[1], t->files[2], NULL, eb);
    if (!g) {
        tm_add(t->reloads_failed, 1);
        return MT_EINVAL;
    }
    pthread_mutex_lock(&t->mu);
    tls_gen_t *old = t->cur;
    int same = old && strcmp(old->serial, g->serial) == 0;
    t->cur = g;
    pthread_mutex_unlock(&t->mu);
    gen_unref(old);
    tm_add(t->reloads_ok, 1);
    mt_log(same ? MT_LOG_DEBUG : MT_LOG_INFO, "%s: tls: serving certificate serial %s", t->name,
           g->serial);
    return MT_OK;
}

int tls_server_reload(tls_server_t *t, int force)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = do_reload(t, force, &eb);
    if (rc != MT_OK) {
        /* the files may be mid-rotation: they are tried again when they change next */
        mt_log(MT_LOG_ERROR, "%s: tls reload: %s; still serving the previous certificate", t->name,
               eb.msg);
    }
    return rc;
}

static void *reload_main(void *arg)
{
    tls_server_t *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (t->reload_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(t->reload_ms / 1000) + (time_t)(ns / 1000000000);
        ts.tv_nsec = ns % 1000000000;
        while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0) {
        }
        if (t->stop) {
            break;
        }
        pthread_mutex_unlock(&t->mu);
        tls_server_reload(t, 0);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

tls_server_t *tls_server_create(const tls_server_cfg_t *cfg, const char *name, mt_errbuf_t *eb)
{
    tls_server_t *t = calloc(1, sizeof(*t));
    if (!t) {
        mt_failf(eb, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    t->name = strdup(name);
    t->files[0] = dup_or_null(cfg->cert_file);
    t->files[1] = dup_or_null(cfg->key_file);
    t->files[2] = dup_or_null(cfg->client_ca_file);
    t->min_version = cfg->min_version;
    t->reload_ms = cfg->reload_interval_ms;
    size_t n = cfg->tenants_from_certificate.n;
    t->tenants.keys = calloc(n ? n : 1, sizeof(char *));
    t->tenants.vals = calloc(n ? n : 1, sizeof(char *));
    if (!t->name || !t->tenants.keys || !t->tenants.vals) {
        mt_failf(eb, "out of memory");
        tls_server_destroy(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        t->tenants.keys[i] = strdup(cfg->tenants_from_certificate.keys[i]);
        t->tenants.vals[i] = strdup(cfg->tenants_from_certificate.vals[i]);
        t->tenants.n = i + 1;
        if (!t->tenants.keys[i] || !t->tenants.vals[i]) {
            mt_failf(eb, "out of memory");
            tls_server_destroy(t);
            return NULL;
        }
    }
    char labels[200];
    snprintf(labels, sizeof(labels), "listener=\"%s\",reason=\"untrusted_certificate\"", name);
    t->refused_untrusted = tm_counter("meltp_tls_refused_handshakes_total",
                                      "TLS handshakes refused by a listener, by reason", labels);
    snprintf(labels, sizeof(labels), "listener=\"%s\",result=\"ok\"", name);
    t->reloads_ok = tm_counter("meltp_tls_reloads_total",
                               "certificate files (re)loaded by a listener, by result", labels);
    snprintf(labels, sizeof(labels), "listener=\"%s\",result=\"failed\"", name);
    t->reloads_failed = tm_counter("meltp_tls_reloads_total",
                                   "certificate files (re)loaded by a listener, by result", labels);
    mt_errbuf_t e2;
    mt_errbuf_clear(&e2);
    if (do_reload(t, 1, &e2) != MT_OK) {
        mt_failf(eb, "%s: tls: %s", name, e2.msg);
        tls_server_destroy(t);
        return NULL;
    }
    if (t->reload_ms > 0) {
        t->have_thr = pthread_create(&t->thr, NULL, reload_main, t) == 0;
    }
    return t;
}

void tls_server_destroy(tls_server_t *t)
{
    if (!t) {
        return;
    }
    if (t->have_thr) {
        pthread_mutex_lock(&t->mu);
        t->stop = 1;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thr, NULL);
    }
    gen_unref(t->cur);
    for (size_t i = 0; i < t->tenants.n; i++) {
        free(t->tenants.keys[i]);
        free(t->tenants.vals[i]);
    }
    free(t->tenants.keys);
    free(t->tenants.vals);
    for (int i = 0; i < 3; i++) {
        free(t->files[i]);
    }
    free(t->name);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static int str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int tls_server_same(const tls_server_t *a, const tls_server_t *b)
{
    if (!a || !b) {
        return !a && !b;
    }
    if (a->min_version != b->min_version || a->reload_ms != b->reload_ms ||
        a->tenants.n != b->tenants.n) {
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        if (!str_same(a->files[i], b->files[i])) {
            return 0;
        }
    }
    for (size_t i = 0; i < a->tenants.n; i++) {
        if (!str_same(a->tenants.keys[i], b->tenants.keys[i]) ||
            !str_same(a->tenants.vals[i], b->tenants.vals[i])) {
            return 0;
        }
    }
    return 1;
}

int tls_server_adopt(tls_server_t *kept, tls_server_t *offered, const char *endpoint,
                     mt_errbuf_t *eb)
{
    int same = tls_server_same(kept, offered);
    tls_server_destroy(offered);
    if (!same) {
        mt_failf(eb,
                 "endpoint \"%s\": its tls settings changed (on or off, files, client CA, "
                 "min_version or tenants_from_certificate); that takes a restart",
                 endpoint);
        return MT_EINVAL;
    }
    if (kept) {
        tls_server_reload(kept, 1);
    }
    return MT_OK;
}

const char *tls_server_priorities(const tls_server_t *t)
{
    return t->min_version == TLS_V1_3 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                      : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}

void *tls_server_ssl_ctx(tls_server_t *t, mt_errbuf_t *eb)
{
    pthread_mutex_lock(&t->mu);
    tls_gen_t *g = t->cur;
    if (!g->ssl_ctx) {
        g->ssl_ctx =
            tls_ossl_ctx_build(g->pem[0].data, g->pem[0].size, g->pem[1].data, g->pem[1].size,
                               g->pem[2].data, g->pem[2].size, t->min_version, eb);
    }
    void *ctx = g->ssl_ctx ? tls_ossl_ctx_ref(g->ssl_ctx) : NULL;
    pthread_mutex_unlock(&t->mu);
    return ctx;
}

const char *tls_server_tenant_of(const tls_server_t *t, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; names[i] && k < t->tenants.n; k++) {
            if (strcmp(t->tenants.keys[k], names[i]) == 0) {
                return t->tenants.vals[k];
            }
        }
    }
    return NULL;
}

void tls_server_count_untrusted(tls_server_t *t)
{
    tm_add(t->refused_untrusted, 1);
}

void tls_server_serial(tls_server_t *t, char *out, size_t cap)
{
    pthread_mutex_lock(&t->mu);
    snprintf(out, cap, "%s", t->cur ? t->cur->serial : "");
    pthread_mutex_unlock(&t->mu);
}

/* gnutls_certificate_retrieve_function2: the connection's generation. */
static int cert_callback(gnutls_session_t s, const gnutls_datum_t *req_ca, int nreq,
                         const gnutls_pk_algorithm_t *pk, int npk, gnutls_pcert_st **pcert,
                         unsigned int *pcert_length, gnutls_privkey_t *key)
{
    (void)req_ca;
    (void)nreq;
    (void)pk;
    (void)npk;
    tls_conn_t *tc = gnutls_session_get_ptr(s);
    if (!tc || !tc->gen) {
        return -1;
    }
    *pcert = tc->gen->pcert;
    *pcert_length = tc->gen->npcert;
    *key = tc->gen->key;
    return 0;
}

void *tls_server_cert_callback(void)
{
    return (void *)cert_callback;
}

/* The tenant bound to the client certificate: a URI SAN first, then the subject CN. */
static const char *bound_tenant(const tls_server_t *t, gnutls_x509_crt_t crt)
{
    if (!t->tenants.n) {
        return NULL;
    }
    char name[TLS_NAME_MAX];
    for (unsigned i = 0; i < 64; i++) {
        size_t len = sizeof(name) - 1;
        unsigned critical = 0;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, i, name, &len, &critical);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
            break;
        }
        if (type != GNUTLS_SAN_URI) {
            continue;
        }
        name[len < sizeof(name) ? len : sizeof(name) - 1] = 0;
        for (size_t k = 0; k < t->tenants.n; k++) {
            if (strcmp(t->tenants.keys[k], name) == 0) {
                return t->tenants.vals[k];
            }
        }
    }
    size_t len = sizeof(name);
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, name, &len) >= 0) {
        for (size_t k = 0; k < t->tenants.n; k++) {
            if (strcmp(t->tenants.keys[k], name) == 0) {
                return t->tenants.vals[k];
            }
        }
    }
    return NULL;
}

/* gnutls_certificate_verify_function: the client's chain against the generation's CA list,
 * for client authentication, in its validity period. Non-zero fails the handshake. */
static int verify_callback(gnutls_session_t s)
{
    tls_conn_t *tc = gnutls_session_get_ptr(s);
    if (!tc || !tc->gen || !tc->gen->trust) {
        return -1;
    }
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0) {
        return -1;
    }
    if (n > TLS_MAX_PEER) {
        n = TLS_MAX_PEER;
    }
    gnutls_x509_crt_t crt[TLS_MAX_PEER];
    unsigned k = 0;
    int ok = 1;
    for (; k < n; k++) {
        if (gnutls_x509_crt_init(&crt[k]) < 0) {
            ok = 0;
            break;
        }
        if (gnutls_x509_crt_import(crt[k], &peers[k], GNUTLS_X509_FMT_DER) < 0) {
            ok = 0;
            k++;
            break;
        }
    }
    unsigned status = 0;
    gnutls_typed_vdata_st vd = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT};
    if (ok &&
        (gnutls_x509_trust_list_verify_crt2(tc->gen->trust, crt, k, &vd, 1, 0, &status, NULL) < 0 ||
         status != 0)) {
        ok = 0;
    }
    if (ok) {
        tc->tenant = bound_tenant(tc->srv, crt[0]);
        tc->verified = 1;
    } else {
        tm_add(tc->srv->refused_untrusted, 1);
        gnutls_datum_t why = {NULL, 0};
        if (status) {
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
        }
        char *w = why.data ? (char *)why.data : NULL;
        for (size_t l = w ? strlen(w) : 0; l > 0 && w[l - 1] == ' '; l--) {
            w[l - 1] = 0;
        }
        MT_LOG_EVERY(10, MT_LOG_WARN, "%s: tls: client certificate refused: %s", tc->srv->name,
                     w ? w : "unreadable certificate");
        gnutls_free(why.data);
    }
    for (unsigned i = 0; i < k; i++) {
        gnutls_x509_crt_deinit(crt[i]);
    }
    return ok ? 0 : -1;
}

tls_conn_t *tls_conn_begin(tls_server_t *t, void *session)
{
    tls_conn_t *tc = calloc(1, sizeof(*tc));
    if (!tc) {
        return NULL;
    }
    tc->srv = t;
    pthread_mutex_lock(&t->mu);
    tc->gen = t->cur;
    atomic_fetch_add(&tc->gen->refs, 1);
    pthread_mutex_unlock(&t->mu);
    gnutls_session_t s = session;
    /* libmicrohttpd keeps its connection in the session pointer only for its PSK callback,
     * which meltp does not use; the handshake callbacks above need the connection's state */
    gnutls_session_set_ptr(s, tc);
    if (tc->gen->trust) {
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(s, verify_callback);
    }
    return tc;
}

void tls_conn_release(tls_conn_t *tc)
{
    if (tc) {
        gen_unref(tc->gen);
        free(tc);
    }
}

const char *tls_conn_tenant(const tls_conn_t *tc)
{
    return tc ? tc->tenant : NULL;
}

int tls_conn_authenticated(const tls_conn_t *tc)
{
    return tc && tc->gen && (!tc->gen->trust || tc->verified);
}

/* ---- exporter side ---- */

int tls_curl_apply(void *curl, const tls_client_cfg_t *cfg, const char *url,
                   tls_curl_scratch_t *scratch)
{
    CURL *c = curl;
    if (!cfg) {
        return MT_OK;
    }
    curl_easy_setopt(c, CURLOPT_SSLVERSION,
                     cfg->min_version == TLS_V1_3 ? (long)CURL_SSLVERSION_TLSv1_3
                                                  : (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg->ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (cfg->cert_file) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, cfg->cert_file);
        curl_easy_setopt(c, CURLOPT_SSLKEY, cfg->key_file);
    }
    if (cfg->insecure_skip_verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!cfg->server_name_override || !scratch || !url || strncmp(url, "https://", 8) != 0) {
        return MT_OK;
    }
    /* libcurl has no SNI option: the URL names the override (SNI and certificate check use
     * it) and CURLOPT_CONNECT_TO sends the connection to the endpoint's real host */
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *out = NULL;
    int rc = MT_EINVAL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_HOST, cfg->server_name_override, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK &&
        strlen(out) < sizeof(scratch->url)) {
        snprintf(scratch->url, sizeof(scratch->url), "%s", out);
        snprintf(scratch->connect_to, sizeof(scratch->connect_to), "%s:%s:%s:%s",
                 cfg->server_name_override, port, host, port);
        curl_slist_free_all(scratch->connect_list);
        scratch->connect_list = curl_slist_append(NULL, scratch->connect_to);
        if (scratch->connect_list) {
            curl_easy_setopt(c, CURLOPT_URL, scratch->url);
            curl_easy_setopt(c, CURLOPT_CONNECT_TO, scratch->connect_list);
            rc = MT_OK;
        }
    }
    curl_free(host);
    curl_free(port);
    curl_free(out);
    curl_url_cleanup(u);
    return rc;
}

void tls_curl_scratch_fini(tls_curl_scratch_t *s)
{
    curl_slist_free_all(s->connect_list);
    s->connect_list = NULL;
}

void tls_client_warn(const tls_client_cfg_t *cfg, const char *component_id)
{
    if (cfg && cfg->insecure_skip_verify) {
        mt_log(MT_LOG_WARN,
               "%s: tls.insecure_skip_verify is set: the server's certificate is not verified "
               "(anyone on the path can read and change the data)",
               component_id);
    }
}
