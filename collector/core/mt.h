/*
 * mt.h - project-wide basics for meltp: the one error enum, the first-error-wins
 * error buffer, {ptr,len} string slices and logging. Every module includes this
 * and nothing heavier, so it stays small.
 */
#ifndef MT_H
#define MT_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <string.h>
#include <stdatomic.h>

/* One list generates the enum and mt_strerror(). 0 is success, errors are negative. */
#define MT_ERRORS(X)                                   \
    X(MT_OK, 0, "ok")                                  \
    X(MT_ERR, -1, "error")                             \
    X(MT_ENOMEM, -2, "out of memory")                  \
    X(MT_AGAIN, -3, "try again later (back-pressure)") \
    X(MT_EINVAL, -4, "invalid input")                  \
    X(MT_ETOOBIG, -5, "too large")                     \
    X(MT_EUNSUPPORTED, -6, "unsupported")              \
    X(MT_EIO, -7, "i/o error")                         \
    X(MT_ERETRY, -8, "retryable failure")              \
    X(MT_EPERM, -9, "permanent failure")               \
    X(MT_ENOTFOUND, -10, "not found")

typedef enum {
#define MT_X_ENUM(name, val, msg) name = (val),
    MT_ERRORS(MT_X_ENUM)
#undef MT_X_ENUM
} mt_err_t;

/* Returns a static description of an mt_err_t. */
const char *mt_strerror(int err);

/* Error buffer: the first message wins so the root cause is never overwritten. */
#define MT_ERRBUF_SIZE 512
typedef struct {
    char msg[MT_ERRBUF_SIZE];
    int set;
} mt_errbuf_t;

void mt_failf(mt_errbuf_t *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void mt_errbuf_clear(mt_errbuf_t *eb)
{
    eb->msg[0] = 0;
    eb->set = 0;
}

/* Hash of n bytes continuing from h, eight bytes at a time (multiply-xorshift): for in-memory
 * tables and shard choice only, never stored or sent, so it may change between versions.
 * About 8x faster than byte-wise FNV-1a on label-sized strings. */
static inline uint64_t mt_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) {
        w |= (uint64_t)s[i] << (8 * i);
    }
    h = (h ^ w ^ ((uint64_t)n << 59)) * k;
    return h ^ (h >> 29);
}

/* 64-bit FNV-1a, chained: h = mt_fnv1a(h, p, n) starting from MT_FNV_BASIS. Byte-wise and
 * stable across versions: the hash for anything stored, sent or shown (ids, checksums), and for
 * small tables where mt_hash_bytes' speed does not matter. */
#define MT_FNV_BASIS    14695981039346656037ull
#define MT_FNV_PRIME    1099511628211ull
/* The offset basis with its last digit lost, as several modules once spelled it. Kept only
 * where such a hash is persisted or sent (SLO state-file checksums, webhook alert
 * fingerprints, Grafana dashboard uids) so that what earlier versions wrote stays valid; new
 * code uses MT_FNV_BASIS. */
#define MT_FNV_BASIS_V0 1469598103934665603ull
static inline uint64_t mt_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ s[i]) * MT_FNV_PRIME;
    }
    return h;
}

/* A borrowed byte range; never NUL-terminated by contract. */
typedef struct {
    const char *ptr;
    size_t len;
} mt_str_t;

/* Signals carried by pipelines. */
typedef enum {
    MT_SIG_TRACES = 0,
    MT_SIG_METRICS,
    MT_SIG_LOGS,
    MT_SIG_PROFILES, /* OTLP profiles v1development */
    MT_SIG_COUNT
} mt_signal_t;
const char *mt_signal_name(mt_signal_t s); /* "traces" */
const char *mt_signal_item_name(
    mt_signal_t s); /* "spans", "data_points", "log_records", "profiles" */

/* Logging to stderr with a level; mt_log_level filters (0 error .. 3 debug). */
enum { MT_LOG_ERROR = 0, MT_LOG_WARN, MT_LOG_INFO, MT_LOG_DEBUG };
extern int mt_log_level;
void mt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies `in` to `out` (cap bytes, NUL-terminated, truncated to fit) with every URL's
 * secrets replaced by "***": the userinfo ("http://alice:secret@host" -> "http://REDACTED@host" (with *** for REDACTED))
 * and the values of query parameters whose name suggests a secret (token, key, secret,
 * password, auth, signature, credential, session, code, ...). mt_log runs every line through
 * it, so no URL meltp prints carries a credential. Returns out. */
char *mt_redact_urls(const char *in, char *out, size_t cap);

/* Rate-limited logging, for lines a client can trigger once per request: at most one line per
 * interval per call site; the lines dropped meanwhile are counted and the next line that goes
 * out says how many ("(N similar suppressed)"). One static mt_ratelimit_t per call site (the
 * MT_LOG_EVERY macro declares it); lock-free, safe from any thread. */
typedef struct {
    _Atomic uint64_t next_ns;
    _Atomic uint64_t suppressed;
} mt_ratelimit_t;
/* Returns 1 when a line may go out at now_ns (and *suppressed = lines dropped since the last
 * one), 0 when it is dropped (and counted). */
int mt_ratelimit_take(mt_ratelimit_t *rl, uint64_t now_ns, uint64_t interval_ns,
                      uint64_t *suppressed);
void mt_log_limited(mt_ratelimit_t *rl, uint64_t interval_ns, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define MT_LOG_EVERY(seconds, level, ...)                                                 \
    do {                                                                                  \
        static mt_ratelimit_t mt_rl_;                                                     \
        mt_log_limited(&mt_rl_, (uint64_t)(seconds)*1000000000ull, (level), __VA_ARGS__); \
    } while (0)

/* Monotonic and wall clocks. */
uint64_t mt_now_ns(void);  /* CLOCK_MONOTONIC */
uint64_t mt_wall_ns(void); /* CLOCK_REALTIME */

#define MELTP_VERSION "0.1.0"

#define MT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MT_UNUSED(x)    ((void)(x))

#endif
