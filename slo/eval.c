/*
 * eval.c - SLO arithmetic: the bucket store, window sums, burn rates and budgets, data states,
 * the MWMBR alert state machine, counter reset tracking and the state file. Pure functions of
 * their inputs and now_ms (see eval.h), so the unit tests drive them with a simulated clock.
 */
#include "eval.h"
#include "mt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const int64_t slo_win_ms[SLO_W_PERIOD] = {
    5 * 60000LL, 30 * 60000LL, 3600000LL, 2 * 3600000LL, 6 * 3600000LL, 86400000LL,
    3 * 86400000LL,
};
const char *const slo_win_name[SLO_W_PERIOD] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

static size_t slot_of(int64_t idx, size_t n)
{
    int64_t m = idx % (int64_t)n;
    return (size_t)(m < 0 ? m + (int64_t)n : m);
}

/* ---- store ------------------------------------------------------------------------------ */

void slo_store_init(slo_store_t *s, int counts_bad, int64_t period_ms)
{
    memset(s, 0, sizeof(*s));
    s->counts_bad = counts_bad;
    /* 1h buckets up to 32 days; longer periods get wider buckets so the ring still covers
     * the period plus a day of slack */
    int64_t hours = 1;
    while ((int64_t)(SLO_L2_N - 24 / hours - 1) * hours * 3600000LL < period_ms) {
        hours++;
    }
    s->g2_ms = hours * 3600000LL;
    for (int i = 0; i < 3; i++) {
        s->head[i] = SLO_HEAD_EMPTY;
    }
}

static void ring_add(slo_bucket_t *b, size_t n, int64_t *head, int64_t g, int64_t t, uint64_t a,
                     uint64_t total)
{
    int64_t idx = floor_div(t, g);
    if (*head == SLO_HEAD_EMPTY) {
        *head = idx;
    } else if (idx > *head) {
        if (idx - *head >= (int64_t)n) {
            memset(b, 0, n * sizeof(*b));
        } else {
            for (int64_t i = *head + 1; i <= idx; i++) {
                b[slot_of(i, n)] = (slo_bucket_t){0, 0};
            }
        }
        *head = idx;
    } else if (idx <= *head - (int64_t)n) {
        return; /* older than this ring: the coarser rings still take it */
    }
    slo_bucket_t *k = &b[slot_of(idx, n)];
    k->a += a;
    k->total += total;
}

int slo_store_add(slo_store_t *s, int64_t t_ms, uint64_t a, uint64_t total, int64_t now_ms,
                  int64_t oldest_ms)
{
    if (t_ms > now_ms + SLO_FUTURE_MS) {
        return SLO_ADD_FUTURE;
    }
    if (t_ms < oldest_ms) {
        return SLO_ADD_TOO_OLD;
    }
    ring_add(s->l0, SLO_L0_N, &s->head[0], SLO_L0_MS, t_ms, a, total);
    ring_add(s->l1, SLO_L1_N, &s->head[1], SLO_L1_MS, t_ms, a, total);
    ring_add(s->l2, SLO_L2_N, &s->head[2], s->g2_ms, t_ms, a, total);
    return SLO_ADD_OK;
}

static void ring_sum(const slo_bucket_t *b, size_t n, int64_t head, int64_t g, int64_t from,
                     int64_t to, uint64_t *a, uint64_t *total)
{
    if (head == SLO_HEAD_EMPTY) {
        return;
    }
    int64_t lo = ceil_div(from, g), hi = floor_div(to, g);
    if (hi > head) {
        hi = head;
    }
    if (lo < head - (int64_t)n + 1) {
        lo = head - (int64_t)n + 1;
    }
    for (int64_t i = lo; i <= hi; i++) {
        const slo_bucket_t *k = &b[slot_of(i, n)];
        *a += k->a;
        *total += k->total;
    }
}

void slo_store_sum(const slo_store_t *s, int64_t from_ms, int64_t to_ms, uint64_t *a,
                   uint64_t *total)
{
    *a = *total = 0;
    int64_t w = to_ms - from_ms;
    if (w <= (SLO_L0_N - 8) * SLO_L0_MS) {
        ring_sum(s->l0, SLO_L0_N, s->head[0], SLO_L0_MS, from_ms, to_ms, a, total);
    } else if (w <= (SLO_L1_N - 8) * SLO_L1_MS) {
        ring_sum(s->l1, SLO_L1_N, s->head[1], SLO_L1_MS, from_ms, to_ms, a, total);
    } else {
        ring_sum(s->l2, SLO_L2_N, s->head[2], s->g2_ms, from_ms, to_ms, a, total);
    }
}

/* ---- names ------------------------------------------------------------------------------ */

const char *slo_state_name(int st)
{
    switch (st) {
    case SLO_ST_OK: return "ok";
    case SLO_ST_INSUFFICIENT: return "insufficient_data";
    case SLO_ST_NO_DATA: return "no_data";
    default: return "invalid";
    }
}

const char *slo_alert_state_name(int st)
{
    switch (st) {
    case SLO_AL_PENDING: return "pending";
    case SLO_AL_FIRING: return "firing";
    default: return "inactive";
    }
}

/* ---- evaluation ------------------------------------------------------------------------- */

void slo_eval_period(const slo_ev_params_t *p, int64_t now_ms, int64_t *start, int64_t *len)
{
    const int64_t day = 86400000LL;
    if (p->period_kind == SLO_PK_WEEK) {
        int64_t days = floor_div(now_ms, day);
        int64_t dow = ((days + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
        *start = (days - dow) * day;
        *len = 7 * day;
        return;
    }
    if (p->period_kind == SLO_PK_MONTH) {
        time_t t = (time_t)floor_div(now_ms, 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        struct tm m0 = {0};
        m0.tm_year = tm.tm_year;
        m0.tm_mon = tm.tm_mon;
        m0.tm_mday = 1;
        struct tm m1 = m0;
        m1.tm_mon++;
        int64_t a = (int64_t)timegm(&m0), b = (int64_t)timegm(&m1);
        *start = a * 1000;
        *len = (b - a) * 1000;
        return;
    }
    *start = now_ms - p->period_ms;
    *len = p->period_ms;
}

static double budget_fraction(const slo_ev_params_t *p)
{
    double b = 1.0 - p->objective;
    return b > 1e-12 ? b : 1e-12; /* the spec loader refuses objective >= 1; never divide by 0 */
}

/* Fills good/bad/total from a store sum; returns 1 when the counts are inconsistent. */
static int split_counts(const slo_store_t *s, uint64_t a, uint64_t total, slo_win_t *w)
{
    int bad_counts = a > total;
    w->total = total;
    if (s->counts_bad) {
        w->bad = bad_counts ? total : a;
        w->good = total - w->bad;
    } else {
        w->good = bad_counts ? total : a;
        w->bad = total - w->good;
    }
    return bad_counts;
}

static void fill_ratios(const slo_ev_params_t *p, slo_win_t *w, int64_t win_ms, int64_t period_ms,
                        const slo_win_t *frozen)
{
    double b = budget_fraction(p);
    if (w->total == 0) {
        if ((p->nodata == SLO_ND_FREEZE || p->nodata == SLO_ND_ALERT) && frozen) {
            w->error_ratio = frozen->error_ratio;
        } else {
            w->error_ratio = p->nodata == SLO_ND_BAD ? 1.0 : 0.0;
        }
    } else {
        w->error_ratio = (double)w->bad / (double)w->total;
    }
    w->burn_rate = w->error_ratio / b;
    w->budget_consumed = period_ms > 0 ? w->burn_rate * (double)win_ms / (double)period_ms : 0;
}

void slo_eval_compute(const slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms,
                      slo_result_t *r)
{
    memset(r, 0, sizeof(*r));
    int inconsistent = 0;
    int64_t pstart, plen;
    slo_eval_period(p, now_ms, &pstart, &plen);
    r->period_ms = plen;
    r->period_start_ms = pstart;
    const slo_result_t *last = in->has_last ? &in->last : NULL;
    for (int i = 0; i < SLO_NWIN; i++) {
        int64_t from = i == SLO_W_PERIOD ? pstart : now_ms - slo_win_ms[i];
        int64_t wl = i == SLO_W_PERIOD ? plen : slo_win_ms[i];
        uint64_t a, t;
        slo_store_sum(&in->store, from, now_ms, &a, &t);
        inconsistent |= split_counts(&in->store, a, t, &r->w[i]);
        fill_ratios(p, &r->w[i], wl, plen, last ? &last->w[i] : NULL);
    }
    const slo_win_t *pw = &r->w[SLO_W_PERIOD];
    r->budget_remaining = 1.0 - pw->burn_rate;
    double br = r->w[SLO_W_5M].burn_rate;
    if (r->budget_remaining <= 0) {
        r->tte_s = 0;
    } else if (br <= 0) {
        r->tte_s = -1;
    } else {
        r->tte_s = r->budget_remaining * ((double)plen / 1000.0) / br;
    }
    double b = budget_fraction(p);
    uint32_t resets = in->resets + in->resets_prev;
    if (inconsistent || resets > SLO_RESET_STORM) {
        r->state = SLO_ST_INVALID;
    } else if (pw->total == 0) {
        r->state = SLO_ST_NO_DATA;
    } else if (pw->total < p->min_events || b * (double)pw->total < 1.0) {
        r->state = SLO_ST_INSUFFICIENT;
    } else if (r->w[SLO_W_1H].total == 0) {
        r->state = SLO_ST_NO_DATA;
    } else {
        r->state = SLO_ST_OK;
    }
}

int slo_alert_step(slo_alert_t *a, const slo_ev_tier_t *t, int cond, int64_t now_ms,
                   double budget_remaining)
{
    if (cond < 0) {
        return SLO_EVT_NONE;
    }
    if (cond) {
        a->last_true_ms = now_ms;
        if (a->state == SLO_AL_INACTIVE) {
            a->pending_since_ms = now_ms;
            a->state = SLO_AL_PENDING;
        }
        if (a->state == SLO_AL_PENDING && now_ms - a->pending_since_ms >= t->for_ms) {
            a->state = SLO_AL_FIRING;
            a->fired_at_ms = now_ms;
            a->budget_at_fire = budget_remaining;
            return SLO_EVT_FIRING;
        }
        return SLO_EVT_NONE;
    }
    if (a->state == SLO_AL_PENDING) {
        a->state = SLO_AL_INACTIVE;
    } else if (a->state == SLO_AL_FIRING) {
        if (t->keep_firing_for_ms > 0 && now_ms - a->last_true_ms < t->keep_firing_for_ms) {
            return SLO_EVT_NONE;
        }
        a->state = SLO_AL_INACTIVE;
        a->resolved_at_ms = now_ms;
        return SLO_EVT_RESOLVED;
    }
    return SLO_EVT_NONE;
}

static void window_ratio(const slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms,
                         int64_t w_ms, slo_win_t *w)
{
    uint64_t a, t;
    slo_store_sum(&in->store, now_ms - w_ms, now_ms, &a, &t);
    split_counts(&in->store, a, t, w);
    fill_ratios(p, w, w_ms, p->period_ms, NULL);
}

int slo_eval_run(slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms, slo_result_t *r,
                 int *events)
{
    slo_eval_compute(in, p, now_ms, r);
    int best = -1;
    double thr = budget_fraction(p);
    for (size_t i = 0; i < p->ntiers && i < SLO_EV_MAX_TIERS; i++) {
        const slo_ev_tier_t *t = &p->tiers[i];
        slo_alert_t *al = &in->alerts[i];
        events[i] = SLO_EVT_NONE;
        if (!t->enabled) {
            continue;
        }
        slo_win_t lw, sw;
        window_ratio(in, p, now_ms, t->long_ms, &lw);
        window_ratio(in, p, now_ms, t->short_ms, &sw);
        al->long_br = lw.burn_rate;
        al->short_br = sw.burn_rate;
        int cond;
        if (r->state == SLO_ST_INVALID) {
            cond = -1; /* the data cannot be trusted: hold the alert where it is */
        } else if (lw.total == 0) {
            switch (p->nodata) {
            case SLO_ND_BAD: cond = 1; break;
            case SLO_ND_FREEZE:
            case SLO_ND_ALERT: cond = -1; break;
            default: cond = 0; break;
            }
        } else if (r->state == SLO_ST_INSUFFICIENT || lw.total < p->min_events) {
            cond = 0; /* low traffic: a handful of errors is not a page */
        } else {
            cond = lw.error_ratio > t->factor * thr && sw.error_ratio > t->factor * thr;
        }
        events[i] = slo_alert_step(al, t, cond, now_ms, r->budget_remaining);
        if (al->state == SLO_AL_FIRING &&
            (best < 0 || t->rank < p->tiers[best].rank)) {
            best = (int)i;
        }
    }
    in->last = *r;
    in->has_last = 1;
    return best;
}

/* ---- instances -------------------------------------------------------------------------- */

void slo_inst_init(slo_inst_t *in, const slo_ev_params_t *p, int counts_bad)
{
    memset(in, 0, sizeof(*in));
    slo_store_init(&in->store, counts_bad, p->period_ms > 31 * 86400000LL ? p->period_ms
                                                                          : 31 * 86400000LL);
}

int slo_inst_add(slo_inst_t *in, const slo_ev_params_t *p, int64_t t_ms, uint64_t a,
                 uint64_t total, int64_t now_ms)
{
    int64_t start, len;
    slo_eval_period(p, now_ms, &start, &len);
    /* keep what the 3d window needs even when the period is shorter */
    int64_t oldest = start < now_ms - slo_win_ms[SLO_W_3D] ? start : now_ms - slo_win_ms[SLO_W_3D];
    int rc = slo_store_add(&in->store, t_ms, a, total, now_ms, oldest);
    if (rc == SLO_ADD_TOO_OLD) {
        in->dropped_old += total;
    } else if (rc == SLO_ADD_FUTURE) {
        in->dropped_future += total;
    }
    return rc;
}

void slo_inst_note_reset(slo_inst_t *in, int64_t now_ms)
{
    int64_t h = floor_div(now_ms, 3600000LL);
    if (h != in->reset_hour) {
        in->resets_prev = h == in->reset_hour + 1 ? in->resets : 0;
        in->resets = 0;
        in->reset_hour = h;
    }
    in->resets++;
}

/* ---- counter tracking ------------------------------------------------------------------- */

uint64_t slo_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int slo_ctr_init(slo_ctr_t *c, size_t cap)
{
    size_t n = 64;
    while (n < cap) {
        n <<= 1;
    }
    c->e = calloc(n, sizeof(*c->e));
    c->cap = c->e ? n : 0;
    c->used = 0;
    c->full_drops = 0;
    return c->e ? MT_OK : MT_ENOMEM;
}

void slo_ctr_fini(slo_ctr_t *c)
{
    free(c->e);
    c->e = NULL;
    c->cap = c->used = 0;
}

int slo_ctr_update(slo_ctr_t *c, uint64_t key, uint64_t start_ns, const double *v, int nv,
                   double *d, uint64_t counted_from_ns, int64_t now_ms)
{
    if (!key) {
        key = 1;
    }
    for (int i = 0; i < nv; i++) {
        d[i] = 0;
    }
    if (!c->cap) {
        return SLO_CTR_FULL;
    }
    size_t i = (size_t)(key & (c->cap - 1));
    while (c->e[i].key && c->e[i].key != key) {
        i = (i + 1) & (c->cap - 1);
    }
    slo_ctr_entry_t *e = &c->e[i];
    if (!e->key) {
        if (c->used + 1 > c->cap * 3 / 4) {
            c->full_drops++;
            return SLO_CTR_FULL;
        }
        c->used++;
        e->key = key;
        e->start_ns = start_ns;
        e->seen_ms = now_ms;
        int whole = start_ns && counted_from_ns && start_ns >= counted_from_ns;
        for (int k = 0; k < nv && k < 2; k++) {
            e->v[k] = v[k];
            d[k] = whole ? v[k] : 0;
        }
        return SLO_CTR_FIRST;
    }
    int reset = start_ns && e->start_ns && start_ns != e->start_ns;
    for (int k = 0; k < nv && k < 2; k++) {
        reset |= v[k] < e->v[k];
    }
    for (int k = 0; k < nv && k < 2; k++) {
        d[k] = reset ? v[k] : v[k] - e->v[k];
        e->v[k] = v[k];
    }
    e->start_ns = start_ns;
    e->seen_ms = now_ms;
    return reset ? SLO_CTR_RESET : SLO_CTR_OK;
}

/* ---- state file ------------------------------------------------------------------------- */

#define STATE_MAGIC "MTSLOST1"
#define STATE_MAX_BYTES (4ull << 30) /* refuse larger files (16k instances need ~1 GiB) */

int slo_state_save(const char *path, const char *const *ids, const slo_inst_t *const *insts,
                   size_t n)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return MT_EINVAL;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        return MT_EIO;
    }
    uint64_t h = SLO_HASH_INIT;
    int ok = 1;
#define PUT(p, len)                                                                            \
    do {                                                                                       \
        h = slo_hash(h, (p), (len));                                                           \
        ok &= fwrite((p), 1, (len), f) == (len);                                               \
    } while (0)
    uint32_t sz = (uint32_t)sizeof(slo_inst_t), cnt = (uint32_t)n;
    PUT(STATE_MAGIC, 8);
    PUT(&sz, 4);
    PUT(&cnt, 4);
    for (size_t i = 0; i < n && ok; i++) {
        size_t l = strlen(ids[i]);
        uint16_t l16 = (uint16_t)(l > 65535 ? 65535 : l);
        PUT(&l16, 2);
        PUT(ids[i], (size_t)l16);
        PUT(insts[i], sizeof(slo_inst_t));
    }
#undef PUT
    ok &= fwrite(&h, 1, 8, f) == 8;
    ok &= fflush(f) == 0;
    ok &= fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return MT_EIO;
    }
    return MT_OK;
}

int slo_state_load(const char *path, void (*fn)(void *arg, const char *id, const slo_inst_t *in),
                   void *arg)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return errno == ENOENT ? MT_ENOTFOUND : MT_EIO;
    }
    int rc = MT_EINVAL;
    unsigned char *buf = NULL;
    slo_inst_t *inst = NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        goto out;
    }
    long sz = ftell(f);
    if (sz < 24 || (unsigned long long)sz > STATE_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        goto out;
    }
    buf = malloc((size_t)sz);
    inst = malloc(sizeof(*inst));
    if (!buf || !inst) {
        rc = MT_ENOMEM;
        goto out;
    }
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        goto out;
    }
    size_t body = (size_t)sz - 8;
    uint64_t want;
    memcpy(&want, buf + body, 8);
    if (slo_hash(SLO_HASH_INIT, buf, body) != want || memcmp(buf, STATE_MAGIC, 8) != 0) {
        goto out;
    }
    uint32_t isz, cnt;
    memcpy(&isz, buf + 8, 4);
    memcpy(&cnt, buf + 12, 4);
    if (isz != sizeof(slo_inst_t)) {
        goto out;
    }
    size_t off = 16;
    for (uint32_t i = 0; i < cnt; i++) {
        uint16_t l;
        if (off + 2 > body) {
            goto out;
        }
        memcpy(&l, buf + off, 2);
        off += 2;
        if (off + l + isz > body) {
            goto out;
        }
        char id[65536];
        memcpy(id, buf + off, l);
        id[l] = 0;
        off += l;
        memcpy(inst, buf + off, isz);
        off += isz;
        fn(arg, id, inst);
    }
    rc = MT_OK;
out:
    free(buf);
    free(inst);
    fclose(f);
    return rc;
}
