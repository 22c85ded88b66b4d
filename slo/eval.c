/*
 * eval.c - SLO arithmetic: the bucket store, window sums, burn rates and budgets, data states,
 * the MWMBR alert state machine, counter reset tracking and the state file. Pure functions of
 * their inputs and now_ms (see eval.h), so the unit tests drive them with a simulated clock.
 */
#include "eval.h"
#include "mt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const int64_t slo_win_ms[SLO_W_PERIOD] = {
    5 * 60000LL, 30 * 60000LL, 3600000LL, 2 * 3600000LL, 6 * 3600000LL, 86400000LL, 3 * 86400000LL,
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
    case SLO_ST_OK:
        return "ok";
    case SLO_ST_INSUFFICIENT:
        return "insufficient_data";
    case SLO_ST_NO_DATA:
        return "no_data";
    default:
        return "invalid";
    }
}

const char *slo_alert_state_name(int st)
{
    switch (st) {
    case SLO_AL_PENDING:
        return "pending";
    case SLO_AL_FIRING:
        return "firing";
    default:
        return "inactive";
    }
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* ---- time zones ------------------------------------------------------------------------- */

typedef struct {
    int m, w, d;  /* Mm.w.d: month 1-12, week 1-5 (5 = last), weekday 0 = Sunday */
    int32_t secs; /* local time of day of the change (may be negative or > 24h) */
} tz_rule_t;

struct slo_tz {
    size_t n;
    int64_t *at;  /* transition instants (Unix s), ascending */
    int32_t *off; /* UTC offset from each transition on */
    int32_t off0; /* before the first transition (type 0) */
    int has_rule; /* footer rule usable after the last transition */
    int has_dst;
    int32_t std_off, dst_off;
    tz_rule_t start, end; /* DST starts (in standard time) and ends (in DST) */
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* [+-]hh[:mm[:ss]] -> seconds; NULL on a syntax error */
static const char *tz_hms(const char *s, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
    }
    if (*s < '0' || *s > '9') {
        return NULL;
    }
    long v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i && *s != ':') {
            break;
        }
        if (i) {
            s++;
        }
        char *e;
        v[i] = strtol(s, &e, 10);
        if (e == s || v[i] > 167) {
            return NULL;
        }
        s = e;
    }
    *out = (int32_t)(sign * (v[0] * 3600 + v[1] * 60 + v[2]));
    return s;
}

static const char *tz_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
        s++;
    }
    return s - b >= 3 ? s : NULL;
}

static const char *tz_mrule(const char *s, tz_rule_t *r)
{
    char *e;
    if (*s++ != 'M') {
        return NULL; /* Jn and n forms: not used by current tzdata; fall back */
    }
    r->m = (int)strtol(s, &e, 10);
    if (*e != '.') {
        return NULL;
    }
    r->w = (int)strtol(e + 1, &e, 10);
    if (*e != '.') {
        return NULL;
    }
    r->d = (int)strtol(e + 1, &e, 10);
    if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d < 0 || r->d > 6) {
        return NULL;
    }
    r->secs = 7200;
    s = e;
    if (*s == '/') {
        s = tz_hms(s + 1, &r->secs);
    }
    return s;
}

/* A POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" (the TZif v2+ footer). */
static int tz_parse_rule(struct slo_tz *z, const char *s)
{
    int32_t v;
    if (!(s = tz_name(s)) || !(s = tz_hms(s, &v))) {
        return 0;
    }
    z->std_off = z->dst_off = -v; /* POSIX offsets are west-positive */
    if (!*s) {
        return 1;
    }
    if (!(s = tz_name(s))) {
        return 0;
    }
    z->dst_off = z->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = tz_hms(s, &v))) {
            return 0;
        }
        z->dst_off = -v;
    }
    if (*s++ != ',' || !(s = tz_mrule(s, &z->start)) || *s++ != ',' ||
        !(s = tz_mrule(s, &z->end)) || *s) {
        return 0;
    }
    z->has_dst = 1;
    return 1;
}

int slo_tz_load(const char *name, slo_tz_t **out)
{
    *out = NULL;
    if (!name || !*name || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
        return MT_OK;
    }
    if (strstr(name, "..") || name[0] == '/') {
        return MT_ENOTFOUND;
    }
    const char *dir = getenv("TZDIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return MT_ENOTFOUND;
    }
    unsigned char *b = malloc(1 << 20);
    size_t len = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    struct slo_tz *z = calloc(1, sizeof(*z));
    int rc = MT_EINVAL;
    if (!b || !z) {
        rc = MT_ENOMEM;
        goto out;
    }
    /* RFC 8536: a v1 block (32-bit times), then for v2+ a second header and 64-bit data */
    if (len < 44 || memcmp(b, "TZif", 4) != 0 || b[4] < '2') {
        goto out;
    }
    size_t skip = (size_t)be32(b + 32) * 5 + (size_t)be32(b + 36) * 6 + be32(b + 40) +
                  (size_t)be32(b + 28) * 8 + be32(b + 24) + be32(b + 20);
    const unsigned char *h = b + 44 + skip;
    if (44 + skip + 44 > len || memcmp(h, "TZif", 4) != 0) {
        goto out;
    }
    size_t isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28), timecnt = be32(h + 32),
           typecnt = be32(h + 36), charcnt = be32(h + 40);
    const unsigned char *tt = h + 44, *ti = tt + timecnt * 8, *ty = ti + timecnt;
    const unsigned char *ft = ty + typecnt * 6 + charcnt + leap * 12 + isstd + isut;
    if (typecnt == 0 || ft > b + len) {
        goto out;
    }
    z->n = timecnt;
    z->at = calloc(timecnt ? timecnt : 1, sizeof(*z->at));
    z->off = calloc(timecnt ? timecnt : 1, sizeof(*z->off));
    if (!z->at || !z->off) {
        rc = MT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < timecnt; i++) {
        uint64_t hi = be32(tt + 8 * i), lo = be32(tt + 8 * i + 4);
        z->at[i] = (int64_t)(hi << 32 | lo);
        if (ti[i] >= typecnt) {
            goto out;
        }
        z->off[i] = (int32_t)be32(ty + 6 * ti[i]);
    }
    z->off0 = (int32_t)be32(ty);
    if (ft < b + len && *ft == '\n') {
        const unsigned char *e = memchr(ft + 1, '\n', (size_t)(b + len - ft - 1));
        char rule[128];
        if (e && (size_t)(e - ft - 1) < sizeof(rule)) {
            memcpy(rule, ft + 1, (size_t)(e - ft - 1));
            rule[e - ft - 1] = 0;
            z->has_rule = rule[0] && tz_parse_rule(z, rule);
        }
    }
    *out = z;
    z = NULL;
    rc = MT_OK;
out:
    slo_tz_free(z);
    free(b);
    return rc;
}

void slo_tz_free(slo_tz_t *tz)
{
    if (tz) {
        free(tz->at);
        free(tz->off);
        free(tz);
    }
}

/* UTC instant of a rule's change in year y; `off` is the offset in force before it. */
static int64_t tz_rule_at(const tz_rule_t *r, int y, int32_t off)
{
    struct tm t = {0};
    t.tm_year = y - 1900;
    t.tm_mon = r->m - 1;
    t.tm_mday = 1;
    int64_t first = (int64_t)timegm(&t);
    int dow1 = (int)((floor_div(first, 86400) + 4) % 7); /* 1970-01-01 was a Thursday */
    int day = 1 + (r->d - dow1 + 7) % 7 + (r->w - 1) * 7;
    struct tm n = {0};
    n.tm_year = y - 1900;
    n.tm_mon = r->m;
    n.tm_mday = 1;
    int mdays = (int)(((int64_t)timegm(&n) - first) / 86400);
    while (day > mdays) {
        day -= 7;
    }
    return first + (int64_t)(day - 1) * 86400 + r->secs - off;
}

int32_t slo_tz_offset(const slo_tz_t *z, int64_t t)
{
    if (!z) {
        return 0;
    }
    if (z->n && t < z->at[0]) {
        return z->off0;
    }
    if (z->n && (t < z->at[z->n - 1] || !z->has_rule)) {
        size_t lo = 0, hi = z->n; /* the last transition at or before t */
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (z->at[mid] <= t) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return z->off[lo];
    }
    if (!z->has_rule) {
        return z->off0;
    }
    if (!z->has_dst) {
        return z->std_off;
    }
    time_t lt = (time_t)(t + z->std_off);
    struct tm tm;
    gmtime_r(&lt, &tm);
    int y = tm.tm_year + 1900;
    int64_t s = tz_rule_at(&z->start, y, z->std_off), e = tz_rule_at(&z->end, y, z->dst_off);
    int dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return dst ? z->dst_off : z->std_off;
}

/* UTC instant of local wall time `l` (Unix-style seconds of the local calendar). */
static int64_t tz_local_to_utc(const slo_tz_t *z, int64_t l)
{
    int64_t u = l - slo_tz_offset(z, l);
    return l - slo_tz_offset(z, u);
}

void slo_eval_period(const slo_ev_params_t *p, int64_t now_ms, int64_t *start, int64_t *len)
{
    const int64_t day = 86400;
    if (p->period_kind == SLO_PK_WEEK || p->period_kind == SLO_PK_MONTH) {
        /* local calendar date of now, then local midnight of the period's first day */
        int64_t t = floor_div(now_ms, 1000);
        int64_t lt = t + slo_tz_offset(p->tz, t);
        int64_t l0, l1;
        if (p->period_kind == SLO_PK_WEEK) {
            int64_t days = floor_div(lt, day);
            int64_t dow = ((days + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
            l0 = (days - dow) * day;
            l1 = l0 + 7 * day;
        } else {
            time_t tt = (time_t)lt;
            struct tm tm;
            gmtime_r(&tt, &tm);
            struct tm m0 = {0};
            m0.tm_year = tm.tm_year;
            m0.tm_mon = tm.tm_mon;
            m0.tm_mday = 1;
            struct tm m1 = m0;
            m1.tm_mon++;
            l0 = (int64_t)timegm(&m0);
            l1 = (int64_t)timegm(&m1);
        }
        int64_t a = tz_local_to_utc(p->tz, l0), b = tz_local_to_utc(p->tz, l1);
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

/* One window: sums, ratios, then (RatioTimeslices) counts scaled back to slices. Returns 1
 * when the counts are inconsistent. */
static int win_fill(const slo_inst_t *in, const slo_ev_params_t *p, int64_t from, int64_t to,
                    int64_t win_ms, int64_t period_ms, const slo_win_t *frozen, slo_win_t *w)
{
    uint64_t a, t;
    slo_store_sum(&in->store, from, to, &a, &t);
    int bad = split_counts(&in->store, a, t, w);
    fill_ratios(p, w, win_ms, period_ms, frozen);
    if (p->budgeting == SLO_BG_RATIO_TIMESLICES) {
        w->total /= SLO_SLICE_SCALE;
        w->good = (w->good + SLO_SLICE_SCALE / 2) / SLO_SLICE_SCALE;
        w->good = w->good > w->total ? w->total : w->good;
        w->bad = w->total - w->good;
    }
    return bad;
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
        inconsistent |=
            win_fill(in, p, from, now_ms, wl, plen, last ? &last->w[i] : NULL, &r->w[i]);
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
    if (inconsistent || slo_inst_resets(in, now_ms) > SLO_RESET_STORM ||
        now_ms < in->invalid_until_ms) {
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
        /* held: an active alert stays active (a pending one still fires once `for` has
         * passed, a firing one's keep_firing_for restarts), an inactive one stays inactive:
         * what a Prometheus rule does whose expression returns its own ALERTS series while
         * the hold lasts, so generated rules can do the same (rules_gen.c own_alerts) */
        cond = a->state != SLO_AL_INACTIVE;
    }
    if (cond) {
        a->keep_since_ms = 0;
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
        /* keep_firing_for runs from the first evaluation that found the condition false,
         * as Prometheus counts it (rules/alerting.go KeepFiringSince) */
        if (t->keep_firing_for_ms > 0) {
            if (!a->keep_since_ms) {
                a->keep_since_ms = now_ms;
            }
            if (now_ms - a->keep_since_ms < t->keep_firing_for_ms) {
                return SLO_EVT_NONE;
            }
        }
        a->keep_since_ms = 0;
        a->state = SLO_AL_INACTIVE;
        a->resolved_at_ms = now_ms;
        return SLO_EVT_RESOLVED;
    }
    return SLO_EVT_NONE;
}

static void window_ratio(const slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms,
                         int64_t w_ms, slo_win_t *w)
{
    win_fill(in, p, now_ms - w_ms, now_ms, w_ms, p->period_ms, NULL, w);
}

static int64_t nodata_after(const slo_ev_params_t *p)
{
    if (p->nodata_after_ms > 0) {
        return p->nodata_after_ms;
    }
    int64_t m = 0;
    for (size_t i = 0; i < p->ntiers && i < SLO_EV_MAX_TIERS; i++) {
        if (p->tiers[i].enabled && (m == 0 || p->tiers[i].long_ms < m)) {
            m = p->tiers[i].long_ms;
        }
    }
    return m > 0 ? m : 3600000LL;
}

/* no_data: alert. The no-data alert fires once no event has arrived for nodata_after (the
 * shortest long window: the fastest tier can no longer see anything), counted from the last
 * event or, without one, from the first evaluation of this process (a fresh SLO gets the same
 * grace), and resolves at the first evaluation after data returns. Pyrra's SLOMetricAbsent
 * waits longer (slo.md 1); the shortest long window is the point where burn-rate alerting goes
 * blind, which is what this alert reports. */
static int nodata_step(slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms,
                       double budget_remaining)
{
    if (p->nodata != SLO_ND_ALERT) {
        return SLO_EVT_NONE;
    }
    if (!in->first_eval_ms) {
        in->first_eval_ms = now_ms;
    }
    int64_t after = nodata_after(p);
    int64_t since = in->last_data_ms > in->first_eval_ms ? in->last_data_ms : in->first_eval_ms;
    slo_ev_tier_t t = {after, after, 0, 0, 0, 1, 1};
    return slo_alert_step(&in->nodata_alert, &t, now_ms - since >= after, now_ms, budget_remaining);
}

int slo_eval_run(slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms, slo_result_t *r,
                 int *events)
{
    if (slo_inst_close_slices(in, p, now_ms) > 0) {
        in->gen++;
    }
    slo_eval_compute(in, p, now_ms, r);
    int best = -1, changed = 0;
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
            case SLO_ND_BAD:
                cond = 1;
                break;
            case SLO_ND_FREEZE:
            case SLO_ND_ALERT:
                cond = -1;
                break;
            default:
                cond = 0;
                break;
            }
        } else if (r->state == SLO_ST_INSUFFICIENT || lw.total < p->min_events) {
            cond = 0; /* low traffic: a handful of errors is not a page */
        } else {
            cond = lw.error_ratio > t->factor * thr && sw.error_ratio > t->factor * thr;
        }
        int st0 = al->state;
        events[i] = slo_alert_step(al, t, cond, now_ms, r->budget_remaining);
        changed |= al->state != st0;
        if (al->state == SLO_AL_FIRING && (best < 0 || t->rank < p->tiers[best].rank)) {
            best = (int)i;
        }
    }
    int nst0 = in->nodata_alert.state;
    r->nodata_event = nodata_step(in, p, now_ms, r->budget_remaining);
    if (changed || in->nodata_alert.state != nst0) {
        in->gen++;
    }
    in->last = *r;
    in->has_last = 1;
    return best;
}

/* ---- instances -------------------------------------------------------------------------- */

void slo_inst_init(slo_inst_t *in, const slo_ev_params_t *p, int counts_bad)
{
    memset(in, 0, sizeof(*in));
    slo_store_init(&in->store, counts_bad,
                   p->period_ms > 31 * 86400000LL ? p->period_ms : 31 * 86400000LL);
    for (int i = 0; i < SLO_OPEN_SLICES; i++) {
        in->open[i].idx = SLO_HEAD_EMPTY;
    }
    in->slice_closed = SLO_HEAD_EMPTY;
}

/* Oldest event time the store still takes: the period start, or what the 3d window needs
 * when the period is shorter. */
static int64_t oldest_ms(const slo_ev_params_t *p, int64_t now_ms)
{
    int64_t start, len;
    slo_eval_period(p, now_ms, &start, &len);
    return start < now_ms - slo_win_ms[SLO_W_3D] ? start : now_ms - slo_win_ms[SLO_W_3D];
}

static int64_t slice_width(const slo_ev_params_t *p)
{
    return p->slice_ms > 0 ? p->slice_ms : SLO_L0_MS;
}

/* Adds closed slice `idx` (a/total events; total 0 and a 0 = empty) to the store. */
static void slice_emit(slo_inst_t *in, const slo_ev_params_t *p, int64_t idx, uint64_t a,
                       uint64_t total, int64_t now_ms)
{
    int ratio = p->budgeting == SLO_BG_RATIO_TIMESLICES;
    uint64_t unit = ratio ? SLO_SLICE_SCALE : 1, ra;
    int cb = in->store.counts_bad;
    if (a > total) {
        /* inconsistent counts (more good, or bad, events than events in total): the data is
         * invalid for the hour after the slice, which counts as all good (all bad), or, with
         * no events in total, as empty */
        int64_t until = (idx + 1) * slice_width(p) + SLO_INVALID_SLICE_MS;
        if (until > in->invalid_until_ms) {
            in->invalid_until_ms = until;
        }
        a = total;
    }
    if (total == 0) {
        if (p->nodata != SLO_ND_BAD) {
            return; /* empty slices are not counted */
        }
        ra = cb ? unit : 0;
    } else {
        uint64_t bad = cb ? a : total - a;
        if (ratio) {
            uint64_t bfp = (uint64_t)llround((double)bad / (double)total * (double)unit);
            ra = cb ? bfp : unit - bfp;
        } else {
            double target = p->slice_target > 0 ? p->slice_target : p->objective;
            int is_bad = (double)(total - bad) < target * (double)total;
            ra = cb ? (uint64_t)is_bad : (uint64_t)!is_bad;
        }
    }
    slo_store_add(&in->store, idx * slice_width(p), ra, unit, now_ms, oldest_ms(p, now_ms));
}

/* Closes every slice up to and including `upto`, in order. */
static int close_upto(slo_inst_t *in, const slo_ev_params_t *p, int64_t upto, int64_t now_ms)
{
    int64_t from = in->slice_closed == SLO_HEAD_EMPTY ? INT64_MAX : in->slice_closed + 1;
    for (int i = 0; i < SLO_OPEN_SLICES; i++) {
        if (in->open[i].idx != SLO_HEAD_EMPTY && in->open[i].idx < from) {
            from = in->open[i].idx; /* before the first close: from the first data on */
        }
    }
    if (from == INT64_MAX || from > upto) {
        return 0;
    }
    int n = 0;
    if (p->nodata == SLO_ND_BAD) {
        /* every slice counts: walk them all, but not further back than the store keeps */
        int64_t keep = (now_ms - oldest_ms(p, now_ms)) / slice_width(p) + 1;
        for (int64_t k = upto - from > keep ? upto - keep : from; k <= upto; k++) {
            uint64_t a = 0, t = 0;
            for (int i = 0; i < SLO_OPEN_SLICES; i++) {
                if (in->open[i].idx == k) {
                    a = in->open[i].a;
                    t = in->open[i].total;
                    in->open[i].idx = SLO_HEAD_EMPTY;
                }
            }
            slice_emit(in, p, k, a, t, now_ms);
            n++;
        }
        for (int i = 0; i < SLO_OPEN_SLICES; i++) {
            if (in->open[i].idx != SLO_HEAD_EMPTY && in->open[i].idx <= upto) {
                in->open[i].idx = SLO_HEAD_EMPTY; /* older than the store keeps */
            }
        }
    } else {
        for (;;) { /* open slices <= upto, oldest first */
            int best = -1;
            for (int i = 0; i < SLO_OPEN_SLICES; i++) {
                if (in->open[i].idx != SLO_HEAD_EMPTY && in->open[i].idx <= upto &&
                    (best < 0 || in->open[i].idx < in->open[best].idx)) {
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            slice_emit(in, p, in->open[best].idx, in->open[best].a, in->open[best].total, now_ms);
            in->open[best].idx = SLO_HEAD_EMPTY;
            n++;
        }
    }
    in->slice_closed = upto;
    return n;
}

int slo_inst_close_slices(slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms)
{
    if (p->budgeting == SLO_BG_OCCURRENCES) {
        return 0;
    }
    /* slice k ends at (k + 1) * width; it closes once that is slice_grace_ms in the past */
    return close_upto(in, p, floor_div(now_ms - p->slice_grace_ms, slice_width(p)) - 1, now_ms);
}

static int slice_add(slo_inst_t *in, const slo_ev_params_t *p, int64_t t_ms, uint64_t a,
                     uint64_t total, int64_t now_ms)
{
    if (t_ms > now_ms + SLO_FUTURE_MS) {
        return SLO_ADD_FUTURE;
    }
    int64_t idx = floor_div(t_ms, slice_width(p));
    if (t_ms < oldest_ms(p, now_ms) ||
        (in->slice_closed != SLO_HEAD_EMPTY && idx <= in->slice_closed)) {
        return SLO_ADD_TOO_OLD; /* its slice was already judged */
    }
    int slot = -1, oldest = -1;
    for (int i = 0; i < SLO_OPEN_SLICES; i++) {
        if (in->open[i].idx == idx) {
            slot = i;
            break;
        }
        if (in->open[i].idx == SLO_HEAD_EMPTY) {
            slot = slot < 0 ? i : slot;
        } else if (oldest < 0 || in->open[i].idx < in->open[oldest].idx) {
            oldest = i;
        }
    }
    if (slot >= 0 && in->open[slot].idx != idx && in->open[slot].idx != SLO_HEAD_EMPTY) {
        slot = -1;
    }
    if (slot < 0) {
        /* every slot busy: close the oldest open slice early to make room */
        if (in->open[oldest].idx > idx) {
            return SLO_ADD_TOO_OLD;
        }
        close_upto(in, p, in->open[oldest].idx, now_ms);
        if (idx <= in->slice_closed) {
            return SLO_ADD_TOO_OLD;
        }
        slot = oldest;
    }
    if (in->open[slot].idx != idx) {
        in->open[slot].idx = idx;
        in->open[slot].a = in->open[slot].total = 0;
    }
    in->open[slot].a += a;
    in->open[slot].total += total;
    return SLO_ADD_OK;
}

int slo_inst_add(slo_inst_t *in, const slo_ev_params_t *p, int64_t t_ms, uint64_t a, uint64_t total,
                 int64_t now_ms)
{
    int rc = p->budgeting != SLO_BG_OCCURRENCES
                 ? slice_add(in, p, t_ms, a, total, now_ms)
                 : slo_store_add(&in->store, t_ms, a, total, now_ms, oldest_ms(p, now_ms));
    if (rc == SLO_ADD_TOO_OLD) {
        in->dropped_old += total;
    } else if (rc == SLO_ADD_FUTURE) {
        in->dropped_future += total;
    } else if (a || total) {
        in->last_data_ms = now_ms;
        in->gen++;
    }
    return rc;
}

/* The minute m whose interval (m - 1, m] min holds t: a sample's counts end at its time. */
static int64_t reset_minute(int64_t t_ms)
{
    return ceil_div(t_ms, 60000);
}

static size_t reset_slot(int64_t m)
{
    return (size_t)(m - floor_div(m, SLO_RESET_SLOTS) * SLO_RESET_SLOTS);
}

/* A rolling hour, not clock hours: Prometheus' resets(counter[1h]) counts the same resets
 * (rules_gen.c reset_count), so the generated rules see the same storms. */
void slo_inst_note_reset(slo_inst_t *in, int64_t t_ms)
{
    int64_t m = reset_minute(t_ms);
    if (m > in->reset_min) {
        int64_t k = in->reset_min + 1 > m - SLO_RESET_SLOTS + 1 ? in->reset_min + 1
                                                                : m - SLO_RESET_SLOTS + 1;
        for (; k <= m; k++) {
            in->reset_ring[reset_slot(k)] = 0;
        }
        in->reset_min = m;
    } else if (m <= in->reset_min - SLO_RESET_SLOTS) {
        return; /* older than the ring: outside every hour still evaluated */
    }
    uint16_t *c = &in->reset_ring[reset_slot(m)];
    if (*c < UINT16_MAX) {
        (*c)++;
    }
}

uint32_t slo_inst_resets(const slo_inst_t *in, int64_t now_ms)
{
    int64_t hi = reset_minute(now_ms), lo = reset_minute(now_ms - 3600000LL) + 1;
    if (hi > in->reset_min) {
        hi = in->reset_min;
    }
    if (lo < in->reset_min - SLO_RESET_SLOTS + 1) {
        lo = in->reset_min - SLO_RESET_SLOTS + 1;
    }
    uint32_t n = 0;
    for (int64_t k = lo; k <= hi; k++) {
        n += in->reset_ring[reset_slot(k)];
    }
    return n;
}

/* ---- counter tracking ------------------------------------------------------------------- */

uint64_t slo_hash(uint64_t h, const void *p, size_t n)
{
    return mt_fnv1a(h, p, n);
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

#define STATE_MAGIC     "MTSLOST1"
#define STATE_MAX_BYTES (4ull << 30) /* refuse larger files (16k instances need ~1 GiB) */

size_t slo_state_image(unsigned char **buf, size_t *cap, const char *const *ids,
                       const slo_inst_t *const *insts, size_t n)
{
    size_t need = 16;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);
        need += 2 + (l > 65535 ? 65535 : l) + sizeof(slo_inst_t);
    }
    if (need + 8 > *cap) {
        unsigned char *nb = realloc(*buf, need + 8); /* + 8: room for the checksum */
        if (!nb) {
            return 0;
        }
        *buf = nb;
        *cap = need + 8;
    }
    unsigned char *w = *buf;
    uint32_t sz = (uint32_t)sizeof(slo_inst_t), cnt = (uint32_t)n;
    memcpy(w, STATE_MAGIC, 8);
    memcpy(w + 8, &sz, 4);
    memcpy(w + 12, &cnt, 4);
    w += 16;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);
        uint16_t l16 = (uint16_t)(l > 65535 ? 65535 : l);
        memcpy(w, &l16, 2);
        memcpy(w + 2, ids[i], l16);
        memcpy(w + 2 + l16, insts[i], sizeof(slo_inst_t));
        w += 2 + l16 + sizeof(slo_inst_t);
    }
    return need;
}

int slo_state_write(const char *path, const unsigned char *body, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return MT_EINVAL;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        return MT_EIO;
    }
    uint64_t h = slo_hash(SLO_HASH_INIT, body, len);
    int ok = fwrite(body, 1, len, f) == len;
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

int slo_state_save(const char *path, const char *const *ids, const slo_inst_t *const *insts,
                   size_t n)
{
    unsigned char *buf = NULL;
    size_t cap = 0, len = slo_state_image(&buf, &cap, ids, insts, n);
    int rc = len ? slo_state_write(path, buf, len) : MT_ENOMEM;
    free(buf);
    return rc;
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
