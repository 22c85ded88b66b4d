/*
 * coverage.c - meltp_service_items_total{service,environment,signal}: see coverage.h.
 *
 * The table is an open-addressing hash of (service, environment) with twice max_services
 * slots, allocated once at start. A slot is claimed with one compare-and-swap (EMPTY -> BUSY),
 * filled, then published (READY); readers that meet a BUSY slot wait for it, since it may be
 * their own key. The first item of a pair registers its five counters with tm_counter() (the
 * registry mutex: once per pair, bounded by max_services); afterwards counting is a lookup and
 * relaxed atomic adds, no lock and no allocation on the receive path. The wire walks read the
 * encoded batch in place (pbwire.h): the cost is one pass over resource and scope headers and
 * the item envelopes, not a decode.
 */
#include "coverage.h"
#include "pbwire.h"
#include "telemetry.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COV_METRICS, COV_EVENTS, COV_LOGS, COV_TRACES, COV_PROFILES, COV_NSIG };
static const char *const cov_sig_name[COV_NSIG] = {"metrics", "events", "logs", "traces",
                                                   "profiles"};
enum { SLOT_EMPTY, SLOT_BUSY, SLOT_READY };

typedef struct {
    _Atomic int state;
    uint64_t hash;
    char svc[COVERAGE_NAME_MAX];
    char env[COVERAGE_ENV_MAX];
    tm_counter_t *c[COV_NSIG];
} cov_slot_t;

static cov_slot_t *cov_slots;
static size_t cov_nslots;
static int64_t cov_max;
static _Atomic int64_t cov_used;
static tm_counter_t *cov_overflow[COV_NSIG];

static const char H_ITEMS[] = "Items accepted per service.name, deployment environment and signal "
                              "(bounded by service.telemetry.metrics.max_services).";
static const char H_OVER[] = "Items of services past service.telemetry.metrics.max_services.";

int coverage_configure(int64_t max_services)
{
    coverage_shutdown();
    if (max_services <= 0) {
        return MT_OK;
    }
    if (max_services > COVERAGE_MAX_SERVICES_CAP) {
        max_services = COVERAGE_MAX_SERVICES_CAP;
    }
    cov_slots = calloc((size_t)max_services * 2, sizeof(*cov_slots));
    if (!cov_slots) {
        return MT_ENOMEM;
    }
    cov_nslots = (size_t)max_services * 2;
    cov_max = max_services;
    atomic_store(&cov_used, 0);
    for (int i = 0; i < COV_NSIG; i++) {
        char lb[32];
        snprintf(lb, sizeof(lb), "signal=\"%s\"", cov_sig_name[i]);
        cov_overflow[i] = tm_counter("meltp_service_items_overflow_total", H_OVER, lb);
    }
    return MT_OK;
}

void coverage_shutdown(void)
{
    free(cov_slots);
    cov_slots = NULL;
    cov_nslots = 0;
    cov_max = 0;
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

/* Copies a label value: cut at max - 1 bytes (never inside a UTF-8 sequence), NUL-terminated. */
static size_t cut(char *dst, size_t max, const uint8_t *p, size_t n)
{
    if (n > max - 1) {
        n = max - 1;
        while (n > 0 && (p[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, p, n);
    dst[n] = 0;
    return n;
}

/* Label text value="..." with \, " and newline escaped (the exposition format's rules). */
static size_t esc(char *out, size_t cap, const char *v)
{
    size_t o = 0;
    for (; *v && o + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = 0;
    return o;
}

static void slot_register(cov_slot_t *sl)
{
    char es[COVERAGE_NAME_MAX * 2 + 1], ee[COVERAGE_ENV_MAX * 2 + 1];
    esc(es, sizeof(es), sl->svc);
    esc(ee, sizeof(ee), sl->env);
    for (int i = 0; i < COV_NSIG; i++) {
        char lb[sizeof(es) + sizeof(ee) + 64];
        snprintf(lb, sizeof(lb), "service=\"%s\",environment=\"%s\",signal=\"%s\"", es, ee,
                 cov_sig_name[i]);
        sl->c[i] = tm_counter("meltp_service_items_total", H_ITEMS, lb);
    }
}

/* The counters of (svc, env), claiming a slot for a new pair; NULL past max_services. */
static cov_slot_t *lookup(const uint8_t *svc, size_t svcn, const uint8_t *env, size_t envn)
{
    char ks[COVERAGE_NAME_MAX], ke[COVERAGE_ENV_MAX];
    cut(ks, sizeof(ks), svc, svcn);
    cut(ke, sizeof(ke), env, envn);
    uint64_t h = fnv(fnv(0xcbf29ce484222325ull, (const uint8_t *)ks, strlen(ks) + 1),
                     (const uint8_t *)ke, strlen(ke));
    for (size_t i = 0; i < cov_nslots; i++) {
        cov_slot_t *sl = &cov_slots[(h + i) % cov_nslots];
        int st = atomic_load_explicit(&sl->state, memory_order_acquire);
        if (st == SLOT_EMPTY) {
            /* reserve a place first, so the bound holds however many threads race here */
            if (atomic_fetch_add(&cov_used, 1) >= cov_max) {
                atomic_fetch_sub(&cov_used, 1);
                return NULL;
            }
            int want = SLOT_EMPTY;
            if (atomic_compare_exchange_strong(&sl->state, &want, SLOT_BUSY)) {
                sl->hash = h;
                memcpy(sl->svc, ks, sizeof(ks));
                memcpy(sl->env, ke, sizeof(ke));
                slot_register(sl);
                atomic_store_explicit(&sl->state, SLOT_READY, memory_order_release);
                return sl;
            }
            atomic_fetch_sub(&cov_used, 1); /* someone else filled this slot: look at it */
            st = want;
        }
        while (st == SLOT_BUSY) {
            sched_yield();
            st = atomic_load_explicit(&sl->state, memory_order_acquire);
        }
        if (sl->hash == h && !strcmp(sl->svc, ks) && !strcmp(sl->env, ke)) {
            return sl;
        }
    }
    return NULL;
}

static void count(const uint8_t *svc, size_t svcn, const uint8_t *env, size_t envn, int sig,
                  uint64_t n)
{
    if (!n) {
        return;
    }
    cov_slot_t *sl = lookup(svc, svcn, env, envn);
    tm_add(sl ? sl->c[sig] : cov_overflow[sig], n);
}

/* ---- OTLP ------------------------------------------------------------------------------- */

/* The string value of AnyValue bytes, if it is one. */
static int any_string(const uint8_t *p, size_t n, const uint8_t **v, size_t *vn)
{
    const uint8_t *end = p + n;
    wf_t f;
    int r, found = 0;
    while ((r = wnext(&p, end, &f)) == 1) {
        if (f.num == 1 && f.wt == 2) {
            *v = f.p;
            *vn = f.n;
            found = 1;
        }
    }
    return found;
}

static int key_is(const wf_t *k, const char *name)
{
    size_t n = strlen(name);
    return k->n == n && !memcmp(k->p, name, n);
}

/* Resource bytes: service.name and the environment (deployment.environment.name, else
 * deployment.environment). */
static void resource_names(const uint8_t *p, size_t n, const uint8_t **svc, size_t *svcn,
                           const uint8_t **env, size_t *envn)
{
    const uint8_t *end = p + n;
    int env_new = 0;
    wf_t f;
    while (wnext(&p, end, &f) == 1) {
        if (f.num != 1 || f.wt != 2) {
            continue;
        }
        const uint8_t *q = f.p, *qe = f.p + f.n;
        wf_t kv, key = {0}, val = {0};
        while (wnext(&q, qe, &kv) == 1) {
            if (kv.wt == 2 && kv.num == 1) {
                key = kv;
            } else if (kv.wt == 2 && kv.num == 2) {
                val = kv;
            }
        }
        const uint8_t *v;
        size_t vn;
        if (!key.p || !val.p || !any_string(val.p, val.n, &v, &vn)) {
            continue;
        }
        if (key_is(&key, "service.name")) {
            *svc = v;
            *svcn = vn;
        } else if (key_is(&key, "deployment.environment.name")) {
            *env = v;
            *envn = vn;
            env_new = 1;
        } else if (!env_new && key_is(&key, "deployment.environment")) {
            *env = v;
            *envn = vn;
        }
    }
}

/* Number of data points in Metric bytes (gauge 5, sum 7, histogram 9, exponential 10,
 * summary 11 hold their points in field 1). */
static uint64_t metric_points(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint64_t pts = 0;
    wf_t f;
    while (wnext(&p, end, &f) == 1) {
        if (f.wt == 2 && (f.num == 5 || f.num == 7 || f.num == 9 || f.num == 10 || f.num == 11)) {
            const uint8_t *q = f.p, *qe = f.p + f.n;
            wf_t d;
            while (wnext(&q, qe, &d) == 1) {
                pts += d.num == 1 && d.wt == 2;
            }
        }
    }
    return pts;
}

/* 1 when LogRecord bytes name an event: event_name (12) or an attribute (6) keyed event.name. */
static int log_is_event(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    wf_t f;
    while (wnext(&p, end, &f) == 1) {
        if (f.wt != 2) {
            continue;
        }
        if (f.num == 12 && f.n > 0) {
            return 1;
        }
        if (f.num == 6 && f.n > 12 && f.p[0] == 0x0a && f.p[1] == 10 &&
            !memcmp(f.p + 2, "event.name", 10)) {
            return 1;
        }
    }
    return 0;
}

void coverage_observe(mt_signal_t s, const uint8_t *pb, size_t len)
{
    if (!cov_slots || !pb) {
        return;
    }
    const uint8_t *p = pb, *end = pb + len;
    wf_t rf;
    while (wnext(&p, end, &rf) == 1) {
        if (rf.num != 1 || rf.wt != 2) {
            continue;
        }
        /* Resource<Signal>: resource = 1, scope_<signal> = 2 */
        const uint8_t *svc = (const uint8_t *)"unknown_service", *env = (const uint8_t *)"";
        size_t svcn = 15, envn = 0;
        uint64_t n[COV_NSIG] = {0};
        const uint8_t *q = rf.p, *qe = rf.p + rf.n;
        wf_t f;
        while (wnext(&q, qe, &f) == 1) {
            if (f.wt != 2) {
                continue;
            }
            if (f.num == 1) {
                resource_names(f.p, f.n, &svc, &svcn, &env, &envn);
                continue;
            }
            if (f.num != 2) {
                continue;
            }
            /* Scope<Signal>: items = 2 */
            const uint8_t *r = f.p, *re = f.p + f.n;
            wf_t it;
            while (wnext(&r, re, &it) == 1) {
                if (it.num != 2 || it.wt != 2) {
                    continue;
                }
                switch (s) {
                case MT_SIG_TRACES:
                    n[COV_TRACES]++;
                    break;
                case MT_SIG_PROFILES:
                    n[COV_PROFILES]++;
                    break;
                case MT_SIG_LOGS:
                    n[log_is_event(it.p, it.n) ? COV_EVENTS : COV_LOGS]++;
                    break;
                default:
                    n[COV_METRICS] += metric_points(it.p, it.n);
                }
            }
        }
        for (int i = 0; i < COV_NSIG; i++) {
            count(svc, svcn, env, envn, i, n[i]);
        }
    }
}

/* ---- remote write 1.0 ------------------------------------------------------------------- */

void coverage_observe_prw(const uint8_t *pb, size_t len)
{
    if (!cov_slots || !pb) {
        return;
    }
    const uint8_t *p = pb, *end = pb + len;
    wf_t ts;
    while (wnext(&p, end, &ts) == 1) {
        if (ts.num != 1 || ts.wt != 2) {
            continue;
        }
        /* TimeSeries: labels = 1 {name = 1, value = 2}, samples = 2, histograms = 4 */
        const uint8_t *svc = (const uint8_t *)"unknown_service", *env = (const uint8_t *)"";
        size_t svcn = 15, envn = 0;
        int env_new = 0;
        uint64_t pts = 0;
        const uint8_t *q = ts.p, *qe = ts.p + ts.n;
        wf_t f;
        while (wnext(&q, qe, &f) == 1) {
            if (f.wt != 2) {
                continue;
            }
            if (f.num == 2 || f.num == 4) {
                pts++;
                continue;
            }
            if (f.num != 1) {
                continue;
            }
            const uint8_t *r = f.p, *re = f.p + f.n;
            wf_t l, name = {0}, val = {0};
            while (wnext(&r, re, &l) == 1) {
                if (l.wt == 2 && l.num == 1) {
                    name = l;
                } else if (l.wt == 2 && l.num == 2) {
                    val = l;
                }
            }
            if (!name.p || !val.p) {
                continue;
            }
            if (key_is(&name, "job")) {
                const uint8_t *slash = memrchr(val.p, '/', val.n);
                svc = slash ? slash + 1 : val.p;
                svcn = val.n - (size_t)(svc - val.p);
            } else if (key_is(&name, "deployment_environment_name")) {
                env = val.p;
                envn = val.n;
                env_new = 1;
            } else if (!env_new && key_is(&name, "deployment_environment")) {
                env = val.p;
                envn = val.n;
            }
        }
        count(svc, svcn, env, envn, COV_METRICS, pts);
    }
}
