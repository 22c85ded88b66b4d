/*
 * rules_gen_int.h - PRIVATE to the rules/rules_gen module (rules_gen.c, rules_gen_time.c,
 * rules_gen_states.c, rules_gen_tests.c): the PromQL text helpers, plans and rule-writing
 * helpers its parts share. Other modules use slo.h (slo_rules_write, slo_rules_tests_write)
 * and must not include this header.
 */
#ifndef RULES_RULES_GEN_INT_H
#define RULES_RULES_GEN_INT_H

#include "model.h"
#include "eval.h"
#include "sb.h"

#include <stddef.h>
#include <stdint.h>

/* How a calendar period's time zone becomes PromQL. Prometheus' date functions work in UTC,
 * so local time is time() shifted by the zone's offset: `lo` for a fixed offset; for a zone
 * with DST `lo + delta` in the months whose END falls in DST (dst_end_month[m]), chosen from
 * the month of time() + lo. That is exact for month boundaries when no transition lies within
 * `delta` of a local midnight of the 1st and the months are the same every year (checked for
 * 2010-2069 below: true for the EU, US, Australian rules and most others). Week boundaries
 * (Monday midnight) in a month with a DST change take the month-end offset even when they
 * fall before the change, so their period starts one `delta` early or late: not exact. */
typedef struct {
    int dst;               /* 0: one fixed offset */
    int32_t lo, delta;     /* seconds east of UTC; delta > 0 when dst */
    int dst_end_month[13]; /* 1..12 */
    int month_exact;       /* months exact (fixed offsets always) */
    int64_t chunk_s;       /* sum chunk: 1h, or what divides every offset (30m, 15m) */
    const char *problem;   /* why not exact (NULL = exact for the period kind) */
} tz_plan_t;

/* What one time slice contributes, as a PromQL expression evaluated at the slice's end
 * (slice k is [k x slice, (k+1) x slice); the engine places a sample's increment 1 ms before
 * the sample, so the slice holds the increments of the samples in (k x slice, (k+1) x slice],
 * which is increase(...[slice]) at its end on aligned samples: exact integer differences):
 *  SL_EVENTS  the slice has events: (total > 0), counted with count_over_time;
 *  SL_BAD     Timeslices: 1 when good < timeslice_target x total (eval.c slice_emit, the same
 *             double comparison; a slice without events gives 0), summed with sum_over_time;
 *             RatioTimeslices: the slice's error ratio in millionths, rounded as the engine
 *             stores it (llround(bad / total x 1e6); PromQL round() is floor(x + 0.5), the
 *             same for these non-negative values), only for slices with events. */
enum { SL_EVENTS = 0, SL_BAD };

/* rules_gen.c */
/* Text goes through the core string builder (sb.h); generation runs in a CLI, so out of
 * memory exits (craft convention 11) instead of latching in the builder. */
void rg_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *rg_rt(double x, char *buf, size_t len);
void rg_sb_move(sb_t *dst, sb_t *src);
void rg_yq(sb_t *b, const char *s);
void rg_yaml_pairs(sb_t *b, int ind, const char *const *keys, const char *const *vals, size_t n);
void rg_pq(sb_t *b, const char *s);
void rg_label_name(sb_t *b, const char *s);
void rg_selector(sb_t *b, const slo_selector_t *s, const char *suffix, const char *extra);
void rg_ids(sb_t *b, const slo_spec_t *s);
void rg_by_clause(sb_t *b, const slo_spec_t *s);
void rg_agg_fn(sb_t *b, const slo_spec_t *s, const slo_selector_t *sel, const char *suffix,
               const char *extra, const char *w, const char *fn);
void rg_tpl(sb_t *b, const char *q, const char *w);
void rg_error_ratio(sb_t *b, const slo_spec_t *s, const char *w);
void rg_total_rate(sb_t *b, const slo_spec_t *s, const char *w);

/* rules_gen_time.c */
void rg_present_expr(sb_t *b, const slo_spec_t *s);
const char *rg_ms_dur(int64_t ms, char *buf, size_t len);
void rg_tz_plan(const slo_spec_t *s, tz_plan_t *p);
void rg_local_vec(sb_t *b, const tz_plan_t *p, const char *t);
void rg_calendar_count(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, int bad, int64_t tail_ms);
int rg_timeslices(const slo_spec_t *s);
int64_t rg_slice_ms(const slo_spec_t *s);
int rg_can_be_inconsistent(const slo_spec_t *s);
int rg_invalid_slices(const slo_spec_t *s);
void rg_slice_inconsistent(sb_t *b, const slo_spec_t *s);
void rg_slice_inner(sb_t *b, const slo_spec_t *s, int what);
void rg_slice_count(sb_t *b, const slo_spec_t *s, int64_t w_ms);
int rg_slices_bad(const slo_spec_t *s);
void rg_slice_n(sb_t *b, const slo_spec_t *s, int64_t w_ms);
void rg_first_slice_end(sb_t *b, const slo_spec_t *s);
void rg_slice_ratio(sb_t *b, const slo_spec_t *s, int64_t w_ms, const char *den);
void rg_calendar_slices(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, const char *in,
                        const char *fn);
void rg_period_total(sb_t *b, const slo_spec_t *s, const tz_plan_t *p, int64_t tail_ms);

/* rules_gen_states.c */
uint64_t rg_min_period_events(const slo_spec_t *s);
int64_t rg_nodata_after(const slo_spec_t *s);
void rg_nodata_name(const slo_spec_t *s, char *buf, size_t len);
size_t rg_nodata_labels(const slo_spec_t *s, const char **k, const char **v, size_t cap);
size_t rg_windows(const slo_spec_t *s, int64_t *out, size_t cap);
void rg_indent_block(sb_t *b, const char *text, int ind);
void rg_labels_block(sb_t *b, const slo_kv_t *kv, const char *window, int ind);
void rg_record(sb_t *b, const char *name, const char *expr, const slo_kv_t *labels,
               const char *window);
int rg_mergeable(const slo_spec_t *s, const slo_tier_t *t);
int rg_same_rule(const slo_spec_t *s, const slo_tier_t *a, const slo_tier_t *b);
int rg_needs_tier_label(const slo_spec_t *s, size_t i);
void rg_on_groups(sb_t *b, const slo_spec_t *s);
int rg_nd_fill(const slo_spec_t *s);
void rg_window_events(sb_t *b, const slo_spec_t *s, const char *w, int64_t w_ms);
int rg_labels_use_value(const slo_tier_t *t);
void rg_hold_term(sb_t *b, const slo_spec_t *s, const slo_tier_t *t, int tier_label, const char *op,
                  const char *cond);
void rg_record_ratio(sb_t *b, const slo_spec_t *s, const char *name, const char *window,
                     const char *expr);
int rg_invalid_counts(const slo_spec_t *s);
int rg_invalid_resets(const slo_spec_t *s);
int rg_invalid_flag(const slo_spec_t *s);
void rg_reset_count(sb_t *b, const slo_spec_t *s);
void rg_invalid_term(sb_t *b, const slo_spec_t *s, const char *w);
void rg_clamp_invalid(sb_t *e, const slo_spec_t *s);

#endif
