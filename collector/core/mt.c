/*
 * mt.c - error strings, error buffer, logging and clocks shared by all modules.
 */
#include "mt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <pthread.h>

int mt_log_level = MT_LOG_INFO;

const char *mt_strerror(int err)
{
    switch (err) {
#define MT_X_CASE(name, val, msg) \
    case name:                    \
        return msg;
        MT_ERRORS(MT_X_CASE)
#undef MT_X_CASE
    }
    return "unknown error";
}

void mt_failf(mt_errbuf_t *eb, const char *fmt, ...)
{
    if (!eb || eb->set) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
    eb->set = 1;
}

const char *mt_signal_name(mt_signal_t s)
{
    static const char *n[] = {"traces", "metrics", "logs", "profiles"};
    return (unsigned)s < MT_SIG_COUNT ? n[s] : "unknown";
}

const char *mt_signal_item_name(mt_signal_t s)
{
    static const char *n[] = {"spans", "data_points", "log_records", "profiles"};
    return (unsigned)s < MT_SIG_COUNT ? n[s] : "items";
}

/* Query parameter names whose values are secrets (matched as case-insensitive substrings). */
static const char *const secret_words[] = {"token",   "key",  "secret", "pass",
                                           "pwd",     "auth", "sig",    "credential",
                                           "session", "code", "jwt",    "cookie"};

static int url_stop(char c)
{
    return c == 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' ||
           c == '<' || c == '>' || c == '`';
}

static int secret_name(const char *k, size_t n)
{
    for (size_t w = 0; w < MT_ARRAY_LEN(secret_words); w++) {
        size_t wl = strlen(secret_words[w]);
        for (size_t i = 0; i + wl <= n; i++) {
            if (strncasecmp(k + i, secret_words[w], wl) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

char *mt_redact_urls(const char *in, char *out, size_t cap)
{
    size_t o = 0;
#define PUT(c)             \
    do {                   \
        char c_ = (c);     \
        if (o + 1 < cap) { \
            out[o++] = c_; \
        }                  \
    } while (0)
#define PUTS(s)                             \
    for (const char *p_ = (s); *p_; p_++) { \
        PUT(*p_);                           \
    }
    const char *p = in;
    while (*p) {
        const char *sep = strstr(p, "://");
        if (!sep) {
            PUTS(p);
            break;
        }
        for (; p < sep + 3; p++) {
            PUT(*p);
        }
        /* authority: up to / ? # or the URL's end; its last @ ends the userinfo */
        const char *a = p;
        while (!url_stop(*a) && *a != '/' && *a != '?' && *a != '#') {
            a++;
        }
        const char *at = NULL;
        for (const char *q = p; q < a; q++) {
            if (*q == '@') {
                at = q;
            }
        }
        if (at) {
            PUTS("***");
            p = at;
        }
        for (; p < a; p++) {
            PUT(*p);
        }
        while (!url_stop(*p) && *p != '?') { /* path */
            PUT(*p++);
        }
        if (*p != '?') {
            continue;
        }
        PUT(*p++);
        while (!url_stop(*p) && *p != '#') { /* query: name=value&... */
            const char *k = p;
            while (!url_stop(*p) && *p != '=' && *p != '&' && *p != '#') {
                PUT(*p++);
            }
            int hide = secret_name(k, (size_t)(p - k));
            if (*p == '=') {
                PUT(*p++);
                if (hide) {
                    PUTS("***");
                }
                while (!url_stop(*p) && *p != '&' && *p != '#') {
                    if (!hide) {
                        PUT(*p);
                    }
                    p++;
                }
            }
            if (*p == '&') {
                PUT(*p++);
            }
        }
    }
#undef PUT
#undef PUTS
    if (cap) {
        out[o] = 0;
    }
    return out;
}

void mt_log(int level, const char *fmt, ...)
{
    static const char *lv[] = {"error", "warn", "info", "debug"};
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (level > mt_log_level) {
        return;
    }
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 lv[level < 0   ? 0
                    : level > 3 ? 3
                                : level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    char safe[sizeof(line) + 256];
    if (strstr(line + n, "://")) {
        mt_redact_urls(line, safe, sizeof(safe));
    } else {
        memcpy(safe, line, strlen(line) + 1);
    }
    pthread_mutex_lock(&mu);
    fprintf(stderr, "%s\n", safe);
    pthread_mutex_unlock(&mu);
}

uint64_t mt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mt_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int mt_ratelimit_take(mt_ratelimit_t *rl, uint64_t now_ns, uint64_t interval_ns,
                      uint64_t *suppressed)
{
    uint64_t next = atomic_load_explicit(&rl->next_ns, memory_order_relaxed);
    /* one winner per interval: whoever moves next_ns forward logs, everyone else counts */
    if (now_ns < next ||
        !atomic_compare_exchange_strong(&rl->next_ns, &next, now_ns + interval_ns)) {
        atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
        return 0;
    }
    *suppressed = atomic_exchange(&rl->suppressed, 0);
    return 1;
}

void mt_log_limited(mt_ratelimit_t *rl, uint64_t interval_ns, int level, const char *fmt, ...)
{
    uint64_t dropped;
    if (level > mt_log_level || !mt_ratelimit_take(rl, mt_now_ns(), interval_ns, &dropped)) {
        return;
    }
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (dropped) {
        mt_log(level, "%s (%llu similar suppressed)", msg, (unsigned long long)dropped);
    } else {
        mt_log(level, "%s", msg);
    }
}
