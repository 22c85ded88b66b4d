/*
 * test_slo_eval.c - slo/eval.c driven by a simulated clock: exact burn rates, detection and
 * reset times of the MWMBR tiers, low traffic, counter resets, state file round trip,
 * Timeslices and RatioTimeslices budgeting, calendar periods in a time zone (TZif reader), the
 * no-data alert and the two-step state save.
 */
#include "unit.h"
#include "eval.h"
#include "mt.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL
#define T0      (1700000000000LL - 1700000000000LL % DAY_MS) /* midnight UTC */

/* 99.9 %, 30 d, Sloth's four tiers (factors 14.4, 6, 3, 1) */
static void sloth_params(slo_ev_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->objective = 0.999;
    p->period_kind = SLO_PK_ROLLING;
    p->period_ms = 30 * DAY_MS;
    p->ntiers = 4;
    p->tiers[0] = (slo_ev_tier_t){HOUR_MS, 5 * MIN_MS, 14.4, 0, 0, 0, 1};
    p->tiers[1] = (slo_ev_tier_t){6 * HOUR_MS, 30 * MIN_MS, 6, 0, 0, 0, 1};
    p->tiers[2] = (slo_ev_tier_t){DAY_MS, 2 * HOUR_MS, 3, 0, 0, 1, 1};
    p->tiers[3] = (slo_ev_tier_t){3 * DAY_MS, 6 * HOUR_MS, 1, 0, 0, 1, 1};
}

/* feeds `rate` events per second from t0 to t1 (exclusive), a share `err` of them bad */
static void feed(slo_inst_t *in, const slo_ev_params_t *p, int64_t t0, int64_t t1, uint64_t rate,
                 double err)
{
    for (int64_t t = t0; t < t1; t += 1000) {
        uint64_t bad = (uint64_t)llround((double)rate * err);
        slo_inst_add(in, p, t, bad, rate, t);
    }
}

UNIT_TEST(constant_error_ratio_gives_exact_burn_rates)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 1);
    /* 4 days of 100 events/s with 1 % errors: burn rate 10 on every window */
    int64_t end = T0 + 4 * DAY_MS;
    feed(in, &p, T0, end, 100, 0.01);
    slo_result_t r;
    slo_eval_compute(in, &p, end, &r);
    for (int i = 0; i < SLO_NWIN; i++) {
        CHECK(r.w[i].total > 0);
        CHECK(fabs(r.w[i].error_ratio - 0.01) < 1e-12);
        CHECK(fabs(r.w[i].burn_rate - 10.0) < 1e-9);
    }
    /* window sums are exact at bucket boundaries */
    CHECK(r.w[SLO_W_5M].total == 5 * 60 * 100);
    CHECK(r.w[SLO_W_1H].bad == 3600);
    CHECK(r.w[SLO_W_3D].total == 3ull * 86400 * 100);
    CHECK(r.w[SLO_W_PERIOD].total == 4ull * 86400 * 100);
    /* budget: period burn rate 10 -> remaining 1 - 10 = -9; 1h consumed 10 * 1h / 30d */
    CHECK(fabs(r.budget_remaining - (-9.0)) < 1e-9);
    CHECK(fabs(r.w[SLO_W_1H].budget_consumed - 10.0 / 720.0) < 1e-12);
    CHECK(r.tte_s == 0);
    CHECK(r.state == SLO_ST_OK);
    free(in);
}

UNIT_TEST(time_to_exhaustion_and_no_nan)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 1);
    slo_result_t r;
    slo_eval_compute(in, &p, T0, &r);
    CHECK(r.state == SLO_ST_NO_DATA);
    CHECK(r.budget_remaining == 1.0);
    CHECK(r.tte_s == -1);
    for (int i = 0; i < SLO_NWIN; i++) {
        CHECK(!isnan(r.w[i].error_ratio) && !isnan(r.w[i].burn_rate));
    }
    /* 1 day at 0.05 % errors (burn rate 0.5): remaining = 1 - 0.5 = 0.5 over the period so
     * far; TTE at burn rate 0.5 = 0.5 * 30 d / 0.5 = 30 d */
    feed(in, &p, T0, T0 + DAY_MS, 20, 0.0);
    for (int64_t t = T0; t < T0 + DAY_MS; t += 100000) {
        slo_inst_add(in, &p, t, 1, 0, t); /* 1 bad of 2000 events per 100 s */
    }
    slo_eval_compute(in, &p, T0 + DAY_MS, &r);
    CHECK(fabs(r.w[SLO_W_PERIOD].burn_rate - 0.5) < 1e-9);
    CHECK(fabs(r.budget_remaining - 0.5) < 1e-9);
    CHECK(fabs(r.tte_s - 30.0 * 86400) < 1.0);
    free(in);
}

/* A step from 0 to 100 % errors: the page tier fires within one evaluation interval of the
 * theoretical detection time (1h * 14.4 * 0.001 = 51.84 s) and resolves within the short
 * window (5m) after recovery. */
UNIT_TEST(full_outage_pages_on_time_and_resolves)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 1);
    const int64_t interval = 10000;
    int64_t t = T0;
    int64_t outage = T0 + 7 * HOUR_MS, recover = outage + 10 * MIN_MS;
    int64_t fired = -1, slow_fired = -1, resolved = -1;
    int events[SLO_EV_MAX_TIERS];
    slo_result_t r;
    for (; t < recover + HOUR_MS; t += interval) {
        for (int64_t s = t; s < t + interval; s += 1000) {
            int bad = s >= outage && s < recover;
            slo_inst_add(in, &p, s, bad ? 50 : 0, 50, s);
        }
        int64_t now = t + interval;
        int best = slo_eval_run(in, &p, now, &r, events);
        if (events[0] == SLO_EVT_FIRING && fired < 0) {
            fired = now;
            CHECK(best == 0);
        }
        if (events[1] == SLO_EVT_FIRING && slow_fired < 0) {
            slow_fired = now;
        }
        if (events[0] == SLO_EVT_RESOLVED && resolved < 0) {
            resolved = now;
        }
    }
    REQUIRE(fired > 0);
    double detect = (double)(fired - outage) / 1000.0;
    CHECK(fabs(detect - 51.84) <= 10.0);
    REQUIRE(slow_fired > 0);
    CHECK(fabs((double)(slow_fired - outage) / 1000.0 - 129.6) <= 10.0);
    REQUIRE(resolved > 0);
    CHECK(resolved - recover <= 5 * MIN_MS + interval);
    free(in);
}

UNIT_TEST(low_traffic_is_insufficient_data_not_a_page)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 1);
    int events[SLO_EV_MAX_TIERS];
    slo_result_t r;
    int fired = 0;
    /* one request a minute, every fifth fails: 20 % errors, but 99.9 % of 360 events allows
     * fewer than one bad event */
    for (int64_t t = T0; t < T0 + 6 * HOUR_MS; t += MIN_MS) {
        slo_inst_add(in, &p, t, (t / MIN_MS) % 5 == 0, 1, t);
        fired |= slo_eval_run(in, &p, t + 1000, &r, events) >= 0;
    }
    CHECK(r.state == SLO_ST_INSUFFICIENT);
    CHECK(!fired);
    /* min_events gates the tiers too */
    p.min_events = 1000000;
    slo_inst_init(in, &p, 1);
    feed(in, &p, T0, T0 + HOUR_MS, 100, 0.5);
    CHECK(slo_eval_run(in, &p, T0 + HOUR_MS, &r, events) < 0);
    CHECK(r.state == SLO_ST_INSUFFICIENT);
    free(in);
}

UNIT_TEST(pending_for_and_keep_firing_for)
{
    slo_ev_tier_t t = {HOUR_MS, 5 * MIN_MS, 14.4, 2 * MIN_MS, 3 * MIN_MS, 0, 1};
    slo_alert_t a = {0};
    CHECK(slo_alert_step(&a, &t, 1, 0, 1) == SLO_EVT_NONE);
    CHECK(a.state == SLO_AL_PENDING);
    CHECK(slo_alert_step(&a, &t, 1, MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(slo_alert_step(&a, &t, 1, 2 * MIN_MS, 0.9) == SLO_EVT_FIRING);
    CHECK(a.budget_at_fire == 0.9);
    CHECK(slo_alert_step(&a, &t, 0, 3 * MIN_MS, 1) == SLO_EVT_NONE); /* kept firing */
    CHECK(a.state == SLO_AL_FIRING);
    CHECK(slo_alert_step(&a, &t, -1, 4 * MIN_MS, 1) == SLO_EVT_NONE); /* held */
    CHECK(a.state == SLO_AL_FIRING);
    /* the hold counts as true: keep_firing_for runs from the first false evaluation, 5 min */
    CHECK(slo_alert_step(&a, &t, 0, 5 * MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(slo_alert_step(&a, &t, 0, 7 * MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(slo_alert_step(&a, &t, 0, 8 * MIN_MS, 1) == SLO_EVT_RESOLVED);
    CHECK(a.state == SLO_AL_INACTIVE);
    /* held inactive stays inactive */
    CHECK(slo_alert_step(&a, &t, -1, 8 * MIN_MS + 1, 1) == SLO_EVT_NONE);
    CHECK(a.state == SLO_AL_INACTIVE);
    /* held pending still fires once `for` has passed */
    CHECK(slo_alert_step(&a, &t, 1, 9 * MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(slo_alert_step(&a, &t, -1, 10 * MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(a.state == SLO_AL_PENDING);
    CHECK(slo_alert_step(&a, &t, -1, 11 * MIN_MS, 1) == SLO_EVT_FIRING);
    CHECK(slo_alert_step(&a, &t, 0, 14 * MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(slo_alert_step(&a, &t, 0, 17 * MIN_MS, 1) == SLO_EVT_RESOLVED);
    /* a pending alert whose condition clears goes back to inactive without an event */
    CHECK(slo_alert_step(&a, &t, 1, 16 * MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(slo_alert_step(&a, &t, 0, 17 * MIN_MS, 1) == SLO_EVT_NONE);
    CHECK(a.state == SLO_AL_INACTIVE);
}

UNIT_TEST(counter_reset_is_not_errors)
{
    slo_ctr_t c;
    REQUIRE(slo_ctr_init(&c, 16) == MT_OK);
    double v[2], d[2];
    v[0] = 100;
    CHECK(slo_ctr_update(&c, 42, 1000, v, 1, d, 5000, 0) == SLO_CTR_FIRST);
    CHECK(d[0] == 0); /* started before we watched: baseline */
    v[0] = 150;
    CHECK(slo_ctr_update(&c, 42, 1000, v, 1, d, 5000, 0) == SLO_CTR_OK);
    CHECK(d[0] == 50);
    v[0] = 7; /* process restarted: value dropped */
    CHECK(slo_ctr_update(&c, 42, 1000, v, 1, d, 5000, 0) == SLO_CTR_RESET);
    CHECK(d[0] == 7);
    v[0] = 9; /* new start time, value higher than before is still a reset */
    CHECK(slo_ctr_update(&c, 42, 9000, v, 1, d, 5000, 0) == SLO_CTR_RESET);
    CHECK(d[0] == 9);
    v[0] = 3;
    v[1] = 4; /* a series born after we started counts whole */
    CHECK(slo_ctr_update(&c, 43, 6000, v, 2, d, 5000, 0) == SLO_CTR_FIRST);
    CHECK(d[0] == 3 && d[1] == 4);
    slo_ctr_fini(&c);

    /* in the store: good and total counters with a reset in between keep the ratio */
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 0);
    slo_inst_add(in, &p, T0, 50, 50, T0); /* before the reset */
    slo_inst_note_reset(in, T0);
    slo_inst_add(in, &p, T0 + 1000, 7, 7, T0 + 1000); /* post-reset values as deltas */
    slo_result_t r;
    slo_eval_compute(in, &p, T0 + 2000, &r);
    CHECK(r.w[SLO_W_5M].bad == 0);
    CHECK(r.w[SLO_W_5M].good == 57);
    CHECK(r.state != SLO_ST_INVALID);
    for (int i = 0; i < SLO_RESET_STORM; i++) {
        slo_inst_note_reset(in, T0 + 3000);
    }
    slo_eval_compute(in, &p, T0 + 4000, &r);
    CHECK(r.state == SLO_ST_INVALID); /* reset storm */
    /* a rolling hour by the resets' own times: still within it half an hour later, gone an
     * hour later */
    CHECK(slo_inst_resets(in, T0 + 3000 + 30 * MIN_MS) == SLO_RESET_STORM + 1);
    slo_eval_compute(in, &p, T0 + 3000 + 30 * MIN_MS, &r);
    CHECK(r.state == SLO_ST_INVALID);
    CHECK(slo_inst_resets(in, T0 + 3000 + HOUR_MS) == 0);
    slo_eval_compute(in, &p, T0 + 3000 + HOUR_MS, &r);
    CHECK(r.state != SLO_ST_INVALID);
    /* a reset older than the ring is ignored; the ring wraps without stale counts */
    slo_inst_note_reset(in, T0 - 2 * HOUR_MS);
    slo_inst_note_reset(in, T0 + 3 * HOUR_MS);
    CHECK(slo_inst_resets(in, T0 + 3 * HOUR_MS) == 1);
    free(in);
}

UNIT_TEST(good_above_total_is_invalid)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 0);
    slo_inst_add(in, &p, T0, 10, 5, T0);
    slo_result_t r;
    slo_eval_compute(in, &p, T0 + 1000, &r);
    CHECK(r.state == SLO_ST_INVALID);
    CHECK(r.w[SLO_W_5M].error_ratio == 0);
    free(in);
}

UNIT_TEST(old_and_future_events_are_dropped)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 1);
    int64_t now = T0 + 40 * DAY_MS;
    CHECK(slo_inst_add(in, &p, now - 31 * DAY_MS, 1, 1, now) == SLO_ADD_TOO_OLD);
    CHECK(slo_inst_add(in, &p, now + 10 * MIN_MS, 1, 1, now) == SLO_ADD_FUTURE);
    CHECK(slo_inst_add(in, &p, now - 2 * DAY_MS, 1, 4, now) == SLO_ADD_OK);
    CHECK(in->dropped_old == 1 && in->dropped_future == 1);
    slo_result_t r;
    slo_eval_compute(in, &p, now, &r);
    CHECK(r.w[SLO_W_3D].total == 4);
    CHECK(r.w[SLO_W_1D].total == 0);
    CHECK(r.w[SLO_W_PERIOD].total == 4);
    free(in);
}

UNIT_TEST(calendar_periods)
{
    slo_ev_params_t p;
    sloth_params(&p);
    p.period_kind = SLO_PK_MONTH;
    int64_t s, l;
    slo_eval_period(&p, 1709251200000LL + 5 * DAY_MS, &s, &l); /* 2024-03-06 */
    CHECK(s == 1709251200000LL);                               /* 2024-03-01 */
    CHECK(l == 31 * DAY_MS);
    p.period_kind = SLO_PK_WEEK;
    slo_eval_period(&p, 1709251200000LL, &s, &l); /* Friday 2024-03-01 */
    CHECK(s == 1709251200000LL - 4 * DAY_MS);     /* Monday 2024-02-26 */
    CHECK(l == 7 * DAY_MS);
}

static int restored;
static slo_inst_t *restore_into;
static void on_restore(void *arg, const char *id, const slo_inst_t *in)
{
    (void)arg;
    if (strcmp(id, "svc-avail") == 0) {
        *restore_into = *in;
        restored++;
    }
}

UNIT_TEST(restart_keeps_the_budget)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    REQUIRE(a && b);
    slo_inst_init(a, &p, 1);
    feed(a, &p, T0, T0 + 2 * HOUR_MS, 10, 0.0005);
    int ev[SLO_EV_MAX_TIERS];
    slo_result_t ra, rb;
    slo_eval_run(a, &p, T0 + 2 * HOUR_MS, &ra, ev);
    char path[] = "/tmp/slo-state-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    const char *ids[] = {"svc-avail"};
    const slo_inst_t *insts[] = {a};
    REQUIRE(slo_state_save(path, ids, insts, 1) == MT_OK);
    restore_into = b;
    restored = 0;
    REQUIRE(slo_state_load(path, on_restore, NULL) == MT_OK);
    CHECK(restored == 1);
    /* the restored instance keeps counting where the old one stopped */
    feed(b, &p, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS, 10, 0.0005);
    feed(a, &p, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS, 10, 0.0005);
    slo_eval_run(a, &p, T0 + 3 * HOUR_MS, &ra, ev);
    slo_eval_run(b, &p, T0 + 3 * HOUR_MS, &rb, ev);
    CHECK(ra.budget_remaining == rb.budget_remaining);
    CHECK(rb.w[SLO_W_PERIOD].total == 3ull * 3600 * 10);
    /* a corrupt file is refused */
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    fseek(f, 100, SEEK_SET);
    fputc('x', f);
    fclose(f);
    CHECK(slo_state_load(path, on_restore, NULL) == MT_EINVAL);
    unlink(path);
    CHECK(slo_state_load(path, on_restore, NULL) == MT_ENOTFOUND);
    free(a);
    free(b);
}

/* minute m of the run gets `n` events, `bad` of them bad, at second 30 of the minute */
static void minute(slo_inst_t *in, const slo_ev_params_t *p, int m, uint64_t n, uint64_t bad)
{
    int64_t t = T0 + m * MIN_MS + 30000;
    slo_inst_add(in, p, t, bad, n, t);
}

UNIT_TEST(timeslices_count_bad_slices_over_slices_with_data)
{
    slo_ev_params_t p;
    sloth_params(&p);
    p.budgeting = SLO_BG_TIMESLICES;
    p.slice_ms = MIN_MS;
    p.slice_target = 0.99; /* a minute is good at >= 99 % good events */
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    for (int pass = 0; pass < 2; pass++) {
        p.nodata = pass ? SLO_ND_BAD : SLO_ND_GOOD;
        slo_inst_init(in, &p, 1);
        /* minutes 0-9, minute 8 without data; 2 and 5 at 5 % errors (bad), 7 at 0.5 % (good) */
        for (int m = 0; m < 10; m++) {
            if (m != 8) {
                minute(in, &p, m, 200, m == 2 || m == 5 ? 10 : m == 7 ? 1 : 0);
            }
        }
        int ev[SLO_EV_MAX_TIERS];
        slo_result_t r;
        /* before the grace, minute 9 is still open */
        p.slice_grace_ms = 20000;
        slo_eval_run(in, &p, T0 + 10 * MIN_MS - 5000, &r, ev);
        CHECK(r.w[SLO_W_PERIOD].total == (pass ? 9u : 8u));
        p.slice_grace_ms = 0;
        slo_eval_run(in, &p, T0 + 10 * MIN_MS, &r, ev);
        /* period: 9 slices with data, 2 bad; under no_data: bad minute 8 is a 10th, bad one */
        CHECK(r.w[SLO_W_PERIOD].total == (pass ? 10u : 9u));
        CHECK(r.w[SLO_W_PERIOD].bad == (pass ? 3u : 2u));
        CHECK(r.w[SLO_W_PERIOD].good == 7);
        CHECK(fabs(r.w[SLO_W_PERIOD].error_ratio - (pass ? 0.3 : 2.0 / 9.0)) < 1e-12);
        CHECK(fabs(r.w[SLO_W_PERIOD].burn_rate - (pass ? 300.0 : 2000.0 / 9.0)) < 1e-6);
        /* 5m window = minutes 5..9: slice 5 bad, 8 empty */
        CHECK(r.w[SLO_W_5M].total == (pass ? 5u : 4u));
        CHECK(r.w[SLO_W_5M].bad == (pass ? 2u : 1u));
        /* a late event for a judged slice is dropped, not counted into another slice */
        CHECK(slo_inst_add(in, &p, T0 + 3 * MIN_MS, 1, 1, T0 + 10 * MIN_MS + 2) == SLO_ADD_TOO_OLD);
        CHECK(in->dropped_old == 1);
    }
    free(in);
}

UNIT_TEST(ratio_timeslices_mean_of_slice_ratios)
{
    slo_ev_params_t p;
    sloth_params(&p);
    p.budgeting = SLO_BG_RATIO_TIMESLICES;
    p.slice_ms = MIN_MS;
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 0); /* good counts: per-slice good ratios 0.9, 1, 0.5 */
    minute(in, &p, 0, 10, 9);
    minute(in, &p, 1, 1000, 1000);
    minute(in, &p, 2, 4, 2);
    int ev[SLO_EV_MAX_TIERS];
    slo_result_t r;
    slo_eval_run(in, &p, T0 + 3 * MIN_MS, &r, ev);
    /* mean of the bad ratios (0.1 + 0 + 0.5) / 3 = 0.2, whatever each slice's traffic */
    CHECK(fabs(r.w[SLO_W_PERIOD].error_ratio - 0.2) < 1e-12);
    CHECK(r.w[SLO_W_PERIOD].total == 3);
    CHECK(r.w[SLO_W_PERIOD].good == 2); /* 2.4 good slices, rounded */
    CHECK(r.state != SLO_ST_INVALID);
    free(in);
}

UNIT_TEST(inconsistent_slice_counts_whole_and_is_invalid_for_an_hour)
{
    for (int ratio = 0; ratio < 2; ratio++) {
        for (int cb = 0; cb < 2; cb++) {
            slo_ev_params_t p;
            sloth_params(&p);
            p.budgeting = ratio ? SLO_BG_RATIO_TIMESLICES : SLO_BG_TIMESLICES;
            p.slice_ms = MIN_MS;
            slo_inst_t *in = malloc(sizeof(*in));
            REQUIRE(in);
            slo_inst_init(in, &p, cb);
            minute(in, &p, 0, 10, 10); /* all good, or all bad */
            minute(in, &p, 1, 4, 10);  /* more counted than total: inconsistent */
            minute(in, &p, 2, 10, 10);
            int ev[SLO_EV_MAX_TIERS];
            slo_result_t r;
            slo_eval_run(in, &p, T0 + 3 * MIN_MS, &r, ev);
            /* the inconsistent slice counts as a whole good (bad) slice: no bias either way */
            CHECK(r.w[SLO_W_PERIOD].total == 3);
            CHECK(r.w[SLO_W_PERIOD].error_ratio == (cb ? 1.0 : 0.0));
            CHECK(r.state == SLO_ST_INVALID);
            /* invalid until an hour after the slice's end (2 min) */
            slo_eval_compute(in, &p, T0 + 62 * MIN_MS - 1, &r);
            CHECK(r.state == SLO_ST_INVALID);
            slo_eval_compute(in, &p, T0 + 62 * MIN_MS, &r);
            CHECK(r.state != SLO_ST_INVALID);
            free(in);
        }
    }
}

UNIT_TEST(timeslices_full_outage_pages)
{
    slo_ev_params_t p;
    sloth_params(&p);
    p.objective = 0.99; /* 1 % of 1-minute slices: the 1000-slice minimum is not needed */
    p.budgeting = SLO_BG_TIMESLICES;
    p.slice_ms = MIN_MS;
    p.slice_target = 0.95;
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 1);
    int ev[SLO_EV_MAX_TIERS], fired_at = -1;
    slo_result_t r;
    for (int m = 0; m < 4 * 60; m++) {
        minute(in, &p, m, 100, m >= 3 * 60 ? 100 : 0);
        if (slo_eval_run(in, &p, T0 + (m + 1) * MIN_MS, &r, ev) == 0 && fired_at < 0) {
            fired_at = m;
        }
    }
    /* page tier: 14.4 x 1 % = 14.4 % of the 1h and 5m windows' slices bad; the 5m window is
     * exceeded at the first bad slice, the 1h one at slice 9 (9/60 > 0.144) */
    CHECK(fired_at == 3 * 60 + 8);
    CHECK(r.w[SLO_W_1H].total == 60 && r.w[SLO_W_1H].bad == 60);
    free(in);
}

UNIT_TEST(calendar_periods_in_a_time_zone)
{
    slo_tz_t *tz = NULL;
    REQUIRE(slo_tz_load("Europe/Berlin", &tz) == MT_OK);
    REQUIRE(tz);
    slo_ev_params_t p;
    sloth_params(&p);
    p.period_kind = SLO_PK_MONTH;
    p.tz = tz;
    int64_t s, l;
    /* winter: January 2024 starts 2023-12-31 23:00 UTC */
    slo_eval_period(&p, 1705312800000LL, &s, &l); /* 2024-01-15 10:00 UTC */
    CHECK(s == 1704063600000LL);
    CHECK(l == 31 * DAY_MS);
    /* summer: July 2024 starts 2024-06-30 22:00 UTC */
    slo_eval_period(&p, 1721037600000LL, &s, &l); /* 2024-07-15 10:00 UTC */
    CHECK(s == 1719784800000LL);
    /* 2024-02-29 23:30 UTC is already 1 March in Berlin; March is 31 days less the DST hour */
    slo_eval_period(&p, 1709249400000LL, &s, &l);
    CHECK(s == 1709247600000LL);
    CHECK(l == 31 * DAY_MS - HOUR_MS);
    /* after the zone file's last transition the POSIX footer rule applies: July 2040 */
    slo_eval_period(&p, 2224706400000LL + 5 * DAY_MS, &s, &l);
    CHECK(s == 2224706400000LL);
    CHECK(l == 2227384800000LL - 2224706400000LL);
    /* ISO week: Monday 2024-07-15 00:00 CEST = 2024-07-14 22:00 UTC */
    p.period_kind = SLO_PK_WEEK;
    slo_eval_period(&p, 1721037600000LL, &s, &l);
    CHECK(s == 1720994400000LL);
    CHECK(l == 7 * DAY_MS);
    CHECK(slo_tz_offset(tz, 1705312800) == 3600 && slo_tz_offset(tz, 1721037600) == 7200);
    slo_tz_free(tz);
    /* UTC needs no file; an unknown zone is refused (and a spec lint error, test_slo_spec) */
    CHECK(slo_tz_load("UTC", &tz) == MT_OK && tz == NULL);
    CHECK(slo_tz_load("Mars/Olympus", &tz) == MT_ENOTFOUND);
    CHECK(slo_tz_load("../etc/passwd", &tz) == MT_ENOTFOUND);
}

UNIT_TEST(no_data_alert_fires_after_the_shortest_long_window_and_resolves)
{
    slo_ev_params_t p;
    sloth_params(&p);
    p.nodata = SLO_ND_ALERT;
    slo_inst_t *in = malloc(sizeof(*in));
    REQUIRE(in);
    slo_inst_init(in, &p, 1);
    int ev[SLO_EV_MAX_TIERS];
    slo_result_t r;
    /* no data from the first evaluation on: fires after 1h (page-quick's long window) */
    slo_eval_run(in, &p, T0, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_NONE);
    slo_eval_run(in, &p, T0 + HOUR_MS - 1000, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_NONE);
    slo_eval_run(in, &p, T0 + HOUR_MS, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_FIRING);
    CHECK(in->nodata_alert.state == SLO_AL_FIRING);
    slo_eval_run(in, &p, T0 + HOUR_MS + 10000, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_NONE);
    /* data returns: resolved at the next evaluation */
    slo_inst_add(in, &p, T0 + HOUR_MS + 15000, 0, 10, T0 + HOUR_MS + 15000);
    slo_eval_run(in, &p, T0 + HOUR_MS + 20000, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_RESOLVED);
    /* and fires again an hour after the last event */
    slo_eval_run(in, &p, T0 + 2 * HOUR_MS + 14000, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_NONE);
    slo_eval_run(in, &p, T0 + 2 * HOUR_MS + 15000, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_FIRING);
    /* other policies never raise it */
    p.nodata = SLO_ND_FREEZE;
    slo_inst_init(in, &p, 1);
    slo_eval_run(in, &p, T0, &r, ev);
    slo_eval_run(in, &p, T0 + 2 * HOUR_MS, &r, ev);
    CHECK(r.nodata_event == SLO_EVT_NONE && in->nodata_alert.state == SLO_AL_INACTIVE);
    free(in);
}

/* The engine copies the image under its lock and writes it after releasing the lock: what is
 * written is the snapshot, whatever happens to the instances meanwhile. gen tells the engine
 * whether anything changed since the last save. */
UNIT_TEST(state_image_is_a_snapshot_written_without_the_instances)
{
    slo_ev_params_t p;
    sloth_params(&p);
    slo_inst_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    REQUIRE(a && b);
    slo_inst_init(a, &p, 1);
    feed(a, &p, T0, T0 + HOUR_MS, 10, 0.001);
    int ev[SLO_EV_MAX_TIERS];
    slo_result_t r;
    slo_eval_run(a, &p, T0 + HOUR_MS, &r, ev);
    uint64_t g = a->gen;
    slo_eval_run(a, &p, T0 + HOUR_MS + 10000, &r, ev); /* nothing new: nothing to save */
    slo_eval_compute(a, &p, T0 + HOUR_MS + 20000, &r);
    CHECK(a->gen == g);
    const char *ids[] = {"svc-avail"};
    const slo_inst_t *insts[] = {a};
    unsigned char *buf = NULL;
    size_t cap = 0, len = slo_state_image(&buf, &cap, ids, insts, 1);
    REQUIRE(len > sizeof(slo_inst_t));
    CHECK(slo_state_image(&buf, &cap, ids, insts, 1) == len); /* the buffer is reused */
    feed(a, &p, T0 + HOUR_MS, T0 + 2 * HOUR_MS, 10, 0.001);   /* after the snapshot */
    CHECK(a->gen != g);
    char path[] = "/tmp/slo-state-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(slo_state_write(path, buf, len) == MT_OK);
    restore_into = b;
    restored = 0;
    REQUIRE(slo_state_load(path, on_restore, NULL) == MT_OK);
    CHECK(restored == 1);
    slo_eval_compute(b, &p, T0 + HOUR_MS, &r);
    CHECK(r.w[SLO_W_PERIOD].total == 3600ull * 10);
    unlink(path);
    free(buf);
    free(a);
    free(b);
}

UNIT_TEST(instance_memory_is_bounded)
{
    CHECK(sizeof(slo_inst_t) <= 32 * 1024);
}
