/*
 * eval.h - the SLO engine's arithmetic, free of threads, clocks and I/O so that tests drive it
 * with a simulated clock: a bounded bucket store of good/bad/total event counts per SLO
 * instance, window sums, error ratios, burn rates and budgets (slo.md 2.3), the data-state
 * machine, the MWMBR alert state machine (inactive -> pending -> firing -> resolved), counter
 * reset tracking for cumulative metrics, and the state file (atomic write + rename).
 * Every function takes the current time as `now_ms` (Unix milliseconds); nothing reads a clock.
 */
#ifndef SLO_EVAL_H
#define SLO_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "mt.h"

/* ---- bucket store ----------------------------------------------------------------------
 * Three rings of {a, total} pairs (a = bad events or good events, see counts_bad):
 *   L0: 1-minute buckets over 6h8m   -> windows 5m, 30m, 1h, 2h, 6h (minute resolution)
 *   L1: 10-minute buckets over 3d8h  -> windows 1d, 3d
 *   L2: g2-wide buckets (1h for periods up to 32d, wider for longer ones) over 776 buckets
 *       -> the period (rolling, calendar month or week)
 * Every event is added to all three rings, so each window is one contiguous sum. Fixed size:
 * (368 + 440 + 776) x 16 bytes = 25,344 bytes per instance (the target was <= 32 KiB); a ring
 * slot is valid when its bucket index lies in (head - N, head], so nothing is cleared on read. */
#define SLO_L0_N       368
#define SLO_L1_N       440
#define SLO_L2_N       776
#define SLO_L0_MS      60000LL
#define SLO_L1_MS      600000LL
#define SLO_FUTURE_MS  300000LL /* events later than now + 5 min are dropped ("future") */
#define SLO_HEAD_EMPTY INT64_MIN

typedef struct {
    uint64_t a; /* bad events when counts_bad, else good events */
    uint64_t total;
} slo_bucket_t;

typedef struct {
    int counts_bad;  /* 1: `a` counts bad events (spans, logs, bad counters) */
    int64_t g2_ms;   /* L2 bucket width */
    int64_t head[3]; /* newest bucket index per ring, SLO_HEAD_EMPTY before the first event */
    slo_bucket_t l0[SLO_L0_N];
    slo_bucket_t l1[SLO_L1_N];
    slo_bucket_t l2[SLO_L2_N];
} slo_store_t;

/* The fixed windows every SLO reports, then the period. */
enum {
    SLO_W_5M = 0,
    SLO_W_30M,
    SLO_W_1H,
    SLO_W_2H,
    SLO_W_6H,
    SLO_W_1D,
    SLO_W_3D,
    SLO_W_PERIOD,
    SLO_NWIN
};
extern const int64_t slo_win_ms[SLO_W_PERIOD];
extern const char *const slo_win_name[SLO_W_PERIOD];

enum { SLO_ADD_OK = 0, SLO_ADD_TOO_OLD, SLO_ADD_FUTURE };

/* period_ms sizes the L2 ring (rolling length, or the nominal calendar length). */
void slo_store_init(slo_store_t *s, int counts_bad, int64_t period_ms);
/* Adds `a` (bad or good, per counts_bad) and `total` events that happened at t_ms. Returns
 * SLO_ADD_OK, SLO_ADD_TOO_OLD (before oldest_ms) or SLO_ADD_FUTURE (after now + 5 min). */
int slo_store_add(slo_store_t *s, int64_t t_ms, uint64_t a, uint64_t total, int64_t now_ms,
                  int64_t oldest_ms);
/* Sums events in [from_ms, to_ms] from the finest ring that covers `to_ms - from_ms`;
 * buckets partly before from_ms are left out (the window is at most one bucket short). */
void slo_store_sum(const slo_store_t *s, int64_t from_ms, int64_t to_ms, uint64_t *a,
                   uint64_t *total);

/* ---- evaluation parameters (filled from the model's slo_spec_t by the engine) ----------- */
#define SLO_EV_MAX_TIERS     16
#define SLO_RESET_STORM      10 /* more counter resets than this in the last hour -> invalid */
#define SLO_RESET_SLOTS      60 /* one per minute of that hour */
#define SLO_INVALID_SLICE_MS 3600000LL /* a slice with inconsistent counts: invalid this long */

enum { SLO_PK_ROLLING = 0, SLO_PK_MONTH, SLO_PK_WEEK };
enum { SLO_ND_GOOD = 0, SLO_ND_BAD, SLO_ND_FREEZE, SLO_ND_ALERT };
enum { SLO_BG_OCCURRENCES = 0, SLO_BG_TIMESLICES, SLO_BG_RATIO_TIMESLICES };

/* ---- time zones (calendar periods) --------------------------------------------------------
 * A zone read from a TZif file (v2+, 64-bit transitions) plus its POSIX TZ footer rule
 * (Mm.w.d form) for instants after the last transition, so that slim zone files work too.
 * Parsed by us rather than through setenv("TZ") + localtime_r: setenv races getenv() in other
 * threads (libcurl reads proxy variables on every request), and the rules are immutable data
 * that every thread may read without a lock. */
typedef struct slo_tz slo_tz_t;
/* Loads /usr/share/zoneinfo/NAME (or $TZDIR/NAME). "UTC" and NULL give NULL (= UTC, no file).
 * Returns MT_OK (with *out, NULL for UTC), MT_ENOTFOUND or MT_EINVAL (not a TZif file). */
int slo_tz_load(const char *name, slo_tz_t **out);
void slo_tz_free(slo_tz_t *tz);
/* UTC offset in seconds (east positive) at the instant t_s (Unix seconds). NULL = UTC. */
int32_t slo_tz_offset(const slo_tz_t *tz, int64_t t_s);

typedef struct {
    int64_t long_ms, short_ms;
    double factor; /* burn-rate threshold (error ratio threshold = factor * B) */
    int64_t for_ms, keep_firing_for_ms;
    int rank; /* lower = more severe (page tiers before ticket tiers) */
    int enabled;
} slo_ev_tier_t;

typedef struct {
    double objective;    /* (0,1) */
    int period_kind;     /* SLO_PK_* (calendar periods in tz, below) */
    int64_t period_ms;   /* rolling length; nominal length for calendar periods */
    uint64_t min_events; /* tiers need >= this many events in their long window */
    int nodata;          /* SLO_ND_* */
    size_t ntiers;
    slo_ev_tier_t tiers[SLO_EV_MAX_TIERS];
    /* Added after the first version (fields left 0 keep the old behaviour). */
    const slo_tz_t *tz;      /* calendar periods start at local midnight here; NULL = UTC */
    int budgeting;           /* SLO_BG_* */
    int64_t slice_ms;        /* time slice width (Timeslices, RatioTimeslices); 0 = 1m */
    double slice_target;     /* Timeslices: a slice is good when good/total >= this */
    int64_t slice_grace_ms;  /* a slice closes this long after its end (late events) */
    int64_t nodata_after_ms; /* no_data: alert fires after this long without events; 0 = the
                              * shortest enabled tier's long window (1h without tiers) */
} slo_ev_params_t;

/* Timeslices (slo.md 2.3): the store holds closed slices instead of events. Each slice with
 * data adds one unit: total 1, bad 1 when good/total < slice_target (Timeslices), or total
 * SLO_SLICE_SCALE and bad = round(bad/total x SLO_SLICE_SCALE) (RatioTimeslices, so window
 * sums are the mean of the per-slice ratios). Window counts then read as slices: total = slices
 * with data, good = good slices (RatioTimeslices: sum of per-slice good ratios, rounded).
 * Slices without events are not counted (neither good nor bad: the ratio is bad slices over
 * slices with data), except under no_data: bad, where each empty slice after the first data
 * counts as one bad slice. A window without any slice follows the no-data policy as before. */
#define SLO_SLICE_SCALE 1000000ULL
#define SLO_OPEN_SLICES 8 /* slices accumulating events at once (late + future events) */

/* ---- data states and results ------------------------------------------------------------ */
enum { SLO_ST_OK = 0, SLO_ST_INSUFFICIENT, SLO_ST_NO_DATA, SLO_ST_INVALID };
const char *slo_state_name(int st); /* "ok", "insufficient_data", "no_data", "invalid" */

typedef struct {
    uint64_t good, bad, total;
    double error_ratio;     /* bad/total; 0 when total == 0 (never NaN) */
    double burn_rate;       /* error_ratio / (1 - objective) */
    double budget_consumed; /* burn_rate * W / P */
} slo_win_t;

typedef struct {
    slo_win_t w[SLO_NWIN];
    int64_t period_ms; /* actual period length (calendar: this month or week) */
    int64_t period_start_ms;
    double budget_remaining; /* 1 - period burn rate; 1 with no data; may go negative */
    double tte_s;            /* remaining * P / burn_rate(5m); -1 = not burning (never) */
    int state;               /* SLO_ST_* */
    int nodata_event;        /* slo_eval_run, no_data: alert: SLO_EVT_* of the no-data alert */
} slo_result_t;

/* ---- alerts ----------------------------------------------------------------------------- */
enum { SLO_AL_INACTIVE = 0, SLO_AL_PENDING, SLO_AL_FIRING };
const char *slo_alert_state_name(int st); /* "inactive", "pending", "firing" */
enum { SLO_EVT_NONE = 0, SLO_EVT_FIRING, SLO_EVT_RESOLVED };

typedef struct {
    int state;
    int64_t pending_since_ms;
    int64_t fired_at_ms;
    int64_t keep_since_ms; /* firing, condition false since (keep_firing_for), 0 = not */
    int64_t resolved_at_ms;
    double budget_at_fire;    /* budget_remaining when it fired (resolve notice: budget spent) */
    double short_br, long_br; /* burn rates at the last evaluation */
} slo_alert_t;

/* Steps one tier's state machine. cond: 1 true, 0 false, -1 held (true while the alert is
 * pending or firing, else false: an active alert stays active, time still runs).
 * Returns SLO_EVT_FIRING when it starts firing, SLO_EVT_RESOLVED when it stops. */
int slo_alert_step(slo_alert_t *a, const slo_ev_tier_t *t, int cond, int64_t now_ms,
                   double budget_remaining);

/* ---- one SLO instance: buckets + alert states + reset bookkeeping -----------------------
 * A plain struct with no pointers: the state file stores it byte for byte. */
typedef struct {
    slo_store_t store;
    slo_alert_t alerts[SLO_EV_MAX_TIERS];
    /* counter resets per minute of the last hour, by the reset sample's time: slot m % 60
     * counts minute m = (m - 1, m] min; reset_min is the newest minute written */
    int64_t reset_min;
    uint16_t reset_ring[SLO_RESET_SLOTS];
    uint64_t dropped_old, dropped_future;
    slo_result_t last; /* result of the last evaluation (FREEZE policy, API) */
    int has_last;
    /* time slices being filled (Timeslices budgeting); idx = slice start / slice_ms */
    struct {
        int64_t idx; /* SLO_HEAD_EMPTY = free */
        uint64_t a, total;
    } open[SLO_OPEN_SLICES];
    int64_t slice_closed; /* last closed slice index, SLO_HEAD_EMPTY before the first */
    /* no_data: alert */
    slo_alert_t nodata_alert;
    int64_t last_data_ms;     /* arrival time (now_ms) of the last counted event, 0 = never */
    int64_t first_eval_ms;    /* first evaluation, 0 = never */
    int64_t invalid_until_ms; /* time slices: an inconsistent slice ended an hour before this */
    uint64_t gen;             /* bumped on every change worth saving (events, slices, alerts) */
} slo_inst_t;

void slo_inst_init(slo_inst_t *in, const slo_ev_params_t *p, int counts_bad);
/* Adds events at t_ms (see slo_store_add); counts drops. With time slices the events go to
 * their open slice (SLO_ADD_TOO_OLD once the slice has closed). */
int slo_inst_add(slo_inst_t *in, const slo_ev_params_t *p, int64_t t_ms, uint64_t a, uint64_t total,
                 int64_t now_ms);
/* Notes a counter reset seen on a sample at t_ms (reset storms make the instance invalid). */
void slo_inst_note_reset(slo_inst_t *in, int64_t t_ms);
/* Counter resets whose sample time lies in (now - 1h, now] (to the minute). */
uint32_t slo_inst_resets(const slo_inst_t *in, int64_t now_ms);

/* Computes every window, budget, time to exhaustion and the data state at now_ms. */
void slo_eval_compute(const slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms,
                      slo_result_t *r);
/* Computes (into *r and in->last) and steps every tier. events[i] gets the SLO_EVT_* of
 * tier i. Returns the index of the most severe firing tier, or -1. */
int slo_eval_run(slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms, slo_result_t *r,
                 int *events);
/* Closes every time slice that ended before now_ms - slice_grace_ms (slo_eval_run does it
 * first). Returns the number of slices closed. No-op for Occurrences. */
int slo_inst_close_slices(slo_inst_t *in, const slo_ev_params_t *p, int64_t now_ms);
/* Period bounds at now_ms: [*start, *start + *len). Calendar periods start at local midnight
 * of the 1st (month) or of Monday (week) in p->tz. */
void slo_eval_period(const slo_ev_params_t *p, int64_t now_ms, int64_t *start, int64_t *len);

/* ---- counter reset tracking for cumulative OTLP sums and histograms ---------------------
 * A fixed-capacity open-addressing table keyed by a 64-bit series hash. Each series keeps up
 * to two values (good-or-bad count and total count of a histogram; one value for a counter). */
typedef struct {
    uint64_t key; /* 0 = empty slot */
    uint64_t start_ns;
    double v[2];
    int64_t seen_ms;
} slo_ctr_entry_t;

typedef struct {
    slo_ctr_entry_t *e;
    size_t cap; /* power of two */
    size_t used;
    uint64_t full_drops; /* series not tracked because the table was full */
} slo_ctr_t;

enum { SLO_CTR_FIRST = 0, SLO_CTR_OK, SLO_CTR_RESET, SLO_CTR_FULL };
int slo_ctr_init(slo_ctr_t *c, size_t cap);
void slo_ctr_fini(slo_ctr_t *c);
/* Feeds the next cumulative values (nv of them, 1 or 2) of series `key`. Deltas go to d[].
 * A value drop or a changed start time is a reset: the new value itself is the delta (the
 * counter restarted from zero). The first sample of a series is its baseline (delta 0)
 * unless start_ns >= counted_from_ns (it started while we were watching), then it counts
 * whole. Returns SLO_CTR_*. */
int slo_ctr_update(slo_ctr_t *c, uint64_t key, uint64_t start_ns, const double *v, int nv,
                   double *d, uint64_t counted_from_ns, int64_t now_ms);

/* 64-bit FNV-1a (mt_fnv1a), chained: h = slo_hash(h, p, n); start with SLO_HASH_INIT. The
 * old basis stays: state-file checksums and alert fingerprints are persisted or sent. */
#define SLO_HASH_INIT MT_FNV_BASIS_V0
uint64_t slo_hash(uint64_t h, const void *p, size_t n);

/* ---- state file ---------------------------------------------------------------------------
 * Format: "MTSLOST1", u32 sizeof(slo_inst_t), u32 count, then per instance u16 id length,
 * id bytes, the instance bytes; a trailing FNV-1a checksum of everything before. Written to
 * PATH.tmp, fsync'd and renamed over PATH so a crash leaves the old or the new file. */
int slo_state_save(const char *path, const char *const *ids, const slo_inst_t *const *insts,
                   size_t n);
/* The same in two steps, so that the engine copies under its lock and writes outside it:
 * slo_state_image fills a reusable buffer (*buf grown with realloc, capacity in *cap) with the
 * file body (everything but the checksum) and returns its length, or 0 on out of memory;
 * slo_state_write appends the checksum, writes PATH.tmp, fsyncs and renames it over PATH. */
size_t slo_state_image(unsigned char **buf, size_t *cap, const char *const *ids,
                       const slo_inst_t *const *insts, size_t n);
int slo_state_write(const char *path, const unsigned char *body, size_t len);
/* Calls fn(arg, id, inst) for every instance in the file. Returns MT_OK, MT_ENOTFOUND (no
 * file) or MT_EINVAL (corrupt or from another build: ignored by the caller). */
int slo_state_load(const char *path, void (*fn)(void *arg, const char *id, const slo_inst_t *in),
                   void *arg);

#endif
