/*
 * auth_int.h - what the two authenticator files (auth.c: bearertokenauth and the shared
 * pieces; auth_basic.c: basicauth) share. See auth.h.
 */
#ifndef AUTH_INT_H
#define AUTH_INT_H

#include "auth.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define AUTH_DIGEST     32            /* SHA-256 */
#define AUTH_FILE_MAX   (1u << 20)    /* token and htpasswd files larger are refused */
#define AUTH_RECHECK_NS 1000000000ull /* files are looked at (stat) at most this often */
#define AUTH_REALM      "realm=\"meltp\""

extern const extension_ops_t extension_bearertokenauth_ops, extension_basicauth_ops;

/* A file re-read when its identity, size or mtime changes. */
typedef struct auth_file {
    const char *path; /* borrowed from the config */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int seen;
} auth_file_t;

/* 1 when f changed since the last call that returned 1 (or was never read), 0 when not, -1
 * when it cannot be stat'ed (errno set). */
int auth_file_changed(auth_file_t *f);
/* The whole file (at most AUTH_FILE_MAX bytes), NUL-terminated and malloc'd; NULL with errno
 * set (EFBIG when too large). Free secrets with auth_secret_free. */
char *auth_read_file(const char *path, size_t *len);
/* Cleanses then frees a malloc'd secret (accepts NULL). */
void auth_secret_free(char *s);
void auth_digest(const void *p, size_t n, uint8_t out[AUTH_DIGEST]);
/* One winner per AUTH_RECHECK_NS among the threads calling: 1 when the caller should look at
 * its files now; it then holds *reload_mu (a slow reload never overlaps the next one) and
 * calls auth_recheck_done. */
int auth_recheck_due(_Atomic uint64_t *next_ns, pthread_mutex_t *reload_mu);
void auth_recheck_done(pthread_mutex_t *reload_mu);
/* Length of s without trailing blanks and line ends. */
size_t auth_trim_len(const char *s, size_t n);

/* auth_basic.c, dispatched from auth.c */
int basic_usable(const extension_t *x, auth_use_t use, char *why, size_t whylen);
void basic_check(const extension_t *x, const char *authorization, auth_verdict_t *v);
int basic_client_header(const extension_t *x, char *out, size_t cap);
const char *basic_challenge(const extension_t *x);

#endif
