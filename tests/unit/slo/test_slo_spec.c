/*
 * test_slo_spec.c - tests for slo/spec.c (and the maths in model.h): the three spec formats
 * load into the model with exact values, every lint error carries FILE:LINE, the Sloth PromQL
 * subset is accepted or rejected as documented, calendar windows, and the explain formulas
 * match slo.md 2.3. Run from the repository root (the example specs live in rules/slos/).
 */
#include "model.h"
#include "unit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static slo_set_t *load_str(const char *text, cfg_ctx_t *c, int64_t eval_ms)
{
    slo_set_t *set = NULL;
    cfg_ctx_init(c, "cfg.yaml");
    slo_specs_load_string("spec.yaml", text, strlen(text), eval_ms, c, &set);
    return set;
}

/* 1 if some collected error equals `want` exactly. */
static int has_err(const cfg_ctx_t *c, const char *want)
{
    for (size_t i = 0; i < c->nerr; i++) {
        if (!strcmp(c->errs[i], want)) {
            return 1;
        }
    }
    for (size_t i = 0; i < c->nerr; i++) {
        fprintf(stderr, "    got: %s\n", c->errs[i]);
    }
    fprintf(stderr, "    want: %s\n", want);
    return 0;
}

/* 1 if some error starts with `prefix` and contains `part`. */
static int has_err_part(const cfg_ctx_t *c, const char *prefix, const char *part)
{
    for (size_t i = 0; i < c->nerr; i++) {
        if (!strncmp(c->errs[i], prefix, strlen(prefix)) && strstr(c->errs[i], part)) {
            return 1;
        }
    }
    for (size_t i = 0; i < c->nerr; i++) {
        fprintf(stderr, "    got: %s\n", c->errs[i]);
    }
    fprintf(stderr, "    want: %s ... %s\n", prefix, part);
    return 0;
}

static const slo_spec_t *find(const slo_set_t *s, const char *id)
{
    for (size_t i = 0; s && i < s->n; i++) {
        if (!strcmp(s->slos[i].id, id)) {
            return &s->slos[i];
        }
    }
    return NULL;
}

static const char *kv(const slo_kv_t *k, const char *key)
{
    for (size_t i = 0; i < k->n; i++) {
        if (!strcmp(k->keys[i], key)) {
            return k->vals[i];
        }
    }
    return NULL;
}

static int near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

UNIT_TEST(native_example)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "cfg.yaml");
    slo_set_t *set = NULL;
    int rc = slo_specs_load_file("rules/slos/patient-api.yaml", 10000, &c, &set);
    cfg_ctx_print(&c, stderr);
    REQUIRE(rc == MT_OK && set && set->n == 2);
    const slo_spec_t *a = find(set, "patient-api-availability");
    REQUIRE(a);
    CHECK(a->format == SLO_FMT_NATIVE);
    CHECK_STR(a->service, "patient-api");
    CHECK_STR(a->name, "availability");
    CHECK(a->line == 11);
    CHECK(near(a->objective, 0.999));
    CHECK(a->period_kind == SLO_PERIOD_ROLLING && a->period_ms == 30LL * 86400000);
    CHECK(a->sli.kind == SLO_SLI_SPANS && a->sli.spans_mode == SLO_SPANS_ERRORS);
    CHECK(a->sli.http_5xx_is_error == 1);
    CHECK_STR(a->sli.service, "patient-api");
    CHECK(a->nodata == SLO_NODATA_FREEZE && a->min_events == 100);
    CHECK_STR(a->runbook_url, "https://runbooks.example.org/patient-api/availability");
    CHECK_STR(kv(&a->labels, "team"), "care-platform");
    CHECK_STR(kv(&a->labels, "sloth_id"), "patient-api-availability");
    REQUIRE(a->ntiers == 4);
    const double factors[] = {14.4, 6, 3, 1};
    const int64_t longs[] = {3600000, 21600000, 86400000, 259200000};
    const int64_t shorts[] = {300000, 1800000, 7200000, 21600000};
    for (int i = 0; i < 4; i++) {
        CHECK(near(a->tiers[i].factor, factors[i]));
        CHECK(a->tiers[i].long_ms == longs[i] && a->tiers[i].short_ms == shorts[i]);
        CHECK(a->tiers[i].enabled);
        CHECK_STR(a->tiers[i].alert_name, "PatientApiAvailabilityBurn");
    }
    CHECK_STR(a->tiers[0].severity, "page");
    CHECK(a->tiers[0].for_ms == 60000 && a->tiers[2].for_ms == 0);
    CHECK_STR(kv(&a->tiers[0].labels, "sloth_severity"), "page");
    CHECK_STR(kv(&a->tiers[0].labels, "routing_key"), "care-oncall");
    CHECK_STR(kv(&a->tiers[3].labels, "channel"), "care-tickets");
    CHECK_STR(kv(&a->tiers[3].annotations, "runbook_url"),
              "https://runbooks.example.org/patient-api/availability");

    const slo_spec_t *l = find(set, "patient-api-latency");
    REQUIRE(l);
    CHECK(near(l->objective, 0.99));
    CHECK(l->period_kind == SLO_PERIOD_CALENDAR_MONTH);
    CHECK_STR(l->time_zone, "Europe/Berlin");
    CHECK(l->sli.kind == SLO_SLI_LATENCY && near(l->sli.threshold, 0.3));
    CHECK_STR(l->sli.histogram.metric, "http_server_request_duration_seconds");
    REQUIRE(l->sli.histogram.nm == 2);
    CHECK(l->sli.histogram.m[1].op == SLO_MATCH_RE);
    CHECK(slo_matcher_match(&l->sli.histogram.m[1], "/patients/42"));
    CHECK(!slo_matcher_match(&l->sli.histogram.m[1], "/doctors/1"));
    CHECK(l->ngroup_by == 1 && !strcmp(l->group_by[0], "route") && l->max_groups == 50);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}

UNIT_TEST(sloth_example)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "cfg.yaml");
    slo_set_t *set = NULL;
    int rc = slo_specs_load_file("rules/slos/sloth-billing.yaml", 10000, &c, &set);
    cfg_ctx_print(&c, stderr);
    REQUIRE(rc == MT_OK && set && set->n == 2);
    const slo_spec_t *s = find(set, "billing-requests-availability");
    REQUIRE(s);
    CHECK(s->format == SLO_FMT_SLOTH && near(s->objective, 0.999));
    CHECK(s->sli.kind == SLO_SLI_RATIO && s->sli.has_bad && s->sli.has_total && !s->sli.has_good);
    CHECK_STR(s->sli.bad.metric, "http_requests_total");
    REQUIRE(s->sli.bad.nm == 2);
    CHECK_STR(s->sli.bad.m[0].name, "job");
    CHECK(s->sli.bad.m[0].op == SLO_MATCH_EQ);
    CHECK_STR(s->sli.bad.m[1].value, "(5..|429)");
    CHECK(slo_matcher_match(&s->sli.bad.m[1], "503"));
    CHECK(slo_matcher_match(&s->sli.bad.m[1], "429"));
    CHECK(!slo_matcher_match(&s->sli.bad.m[1], "5030")); /* anchored like Prometheus */
    CHECK(s->sli.total.nm == 1);
    CHECK_STR(kv(&s->labels, "owner"), "revenue-team");
    CHECK_STR(kv(&s->labels, "category"), "availability");
    REQUIRE(s->ntiers == 4);
    CHECK_STR(s->tiers[0].alert_name, "BillingHighErrorRate");
    CHECK_STR(kv(&s->tiers[0].labels, "sloth_severity"), "page");
    CHECK_STR(kv(&s->tiers[0].labels, "severity"), "pageteam");
    CHECK_STR(kv(&s->tiers[1].labels, "routing_key"), "billing-oncall");
    CHECK_STR(kv(&s->tiers[2].labels, "sloth_severity"), "ticket");
    CHECK_STR(kv(&s->tiers[2].labels, "slack_channel"), "#alerts-billing");
    CHECK_STR(kv(&s->tiers[3].annotations, "runbook"),
              "https://runbooks.example.org/billing/availability");

    const slo_spec_t *j = find(set, "billing-invoice-jobs");
    REQUIRE(j);
    CHECK(j->sli.use_increase == 1);
    CHECK(j->ngroup_by == 1 && !strcmp(j->group_by[0], "queue"));
    CHECK(!j->tiers[0].enabled && !j->tiers[1].enabled && j->tiers[2].enabled);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}

UNIT_TEST(openslo_example)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "cfg.yaml");
    slo_set_t *set = NULL;
    int rc = slo_specs_load_file("rules/slos/openslo-scheduling.yaml", 10000, &c, &set);
    cfg_ctx_print(&c, stderr);
    REQUIRE(rc == MT_OK && set && set->n == 2);
    const slo_spec_t *b = find(set, "scheduling-booking-availability");
    REQUIRE(b);
    CHECK(b->format == SLO_FMT_OPENSLO && near(b->objective, 0.995));
    CHECK(b->period_kind == SLO_PERIOD_ROLLING && b->period_ms == 28LL * 86400000);
    CHECK(b->budgeting == SLO_BUDGET_OCCURRENCES);
    CHECK(b->sli.kind == SLO_SLI_RATIO && b->sli.has_good && b->sli.has_total);
    CHECK_STR(b->sli.good.metric, "bookings_total");
    CHECK_STR(kv(&b->labels, "team"), "front-desk");
    REQUIRE(b->ntiers == 2);
    CHECK_STR(b->tiers[0].name, "booking-fast-burn");
    CHECK_STR(b->tiers[0].severity, "page");
    CHECK(near(b->tiers[0].factor, 13.44) && b->tiers[0].long_ms == 3600000);
    CHECK(b->tiers[0].short_ms == 300000 && b->tiers[0].for_ms == 120000);
    CHECK_STR(b->tiers[1].severity, "ticket");
    CHECK(near(b->tiers[1].factor, 2.8) && b->tiers[1].long_ms == 86400000);

    const slo_spec_t *l = find(set, "scheduling-search-latency");
    REQUIRE(l);
    CHECK(l->period_kind == SLO_PERIOD_CALENDAR_WEEK && l->period_ms == 7LL * 86400000);
    CHECK_STR(l->time_zone, "America/New_York");
    CHECK(l->calendar_start_s == 1704067200);
    CHECK(l->budgeting == SLO_BUDGET_TIMESLICES && l->timeslice_ms == 300000);
    CHECK(near(l->timeslice_target, 0.95) && near(l->objective, 0.99));
    CHECK(l->sli.kind == SLO_SLI_LATENCY && near(l->sli.threshold, 0.5));
    CHECK_STR(l->sli.histogram.metric, "slot_search_duration_seconds");
    /* Sloth-style scaling for a 7d period: 2% of 168h over 1h */
    CHECK(near(l->tiers[0].factor, 3.36));
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}

UNIT_TEST(calendar_and_timeslices_native)
{
    cfg_ctx_t c;
    slo_set_t *set = load_str("service: s\n"
                              "slos:\n"
                              "  - name: w\n"
                              "    objective: 99.5\n"
                              "    period: {calendar: week, time_zone: Asia/Tokyo}\n"
                              "    budgeting: timeslices\n"
                              "    timeslice: {window: 1m, target: 0.9}\n"
                              "    sli: {logs: {min_severity: WARN}}\n",
                              &c, 10000);
    cfg_ctx_print(&c, stderr);
    REQUIRE(set && set->n == 1);
    const slo_spec_t *s = &set->slos[0];
    CHECK(s->period_kind == SLO_PERIOD_CALENDAR_WEEK && s->period_ms == 7LL * 86400000);
    CHECK_STR(s->time_zone, "Asia/Tokyo");
    CHECK(s->budgeting == SLO_BUDGET_TIMESLICES && s->timeslice_ms == 60000);
    CHECK(s->sli.kind == SLO_SLI_LOGS && s->sli.min_severity == 13);
    CHECK_STR(s->sli.service, "s");
    CHECK_STR(s->tiers[0].alert_name, "SWBurnRate");
    slo_set_destroy(set);
    cfg_ctx_fini(&c);

    set = load_str("service: s\nslos:\n  - name: w\n    objective: 99.5\n"
                   "    period: {calendar: year}\n    sli: {logs: {}}\n",
                   &c, 0);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:5: slos[0].period.calendar: must be month or week, got \"year\""));
    cfg_ctx_fini(&c);

    set = load_str("service: s\nslos:\n  - name: w\n    objective: 99.5\n"
                   "    period: {calendar: month, time_zone: Mars/Olympus}\n    sli: {logs: {}}\n",
                   &c, 0);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:3: s-w: unknown time zone \"Mars/Olympus\""));
    cfg_ctx_fini(&c);
}

UNIT_TEST(lint_errors_with_file_line)
{
    cfg_ctx_t c;
    /* objective out of range */
    slo_set_t *set = load_str("service: svc\n"
                              "slos:\n"
                              "  - name: a\n"
                              "    objective: 100\n"
                              "    sli: {spans: {}}\n",
                              &c, 10000);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:4: slos[0].objective: objective 100 out of range: must be a "
                      "percentage in (0, 100)"));
    cfg_ctx_fini(&c);

    /* a tier that can never fire: 90% x 14.4 */
    set = load_str("service: svc\n"
                   "slos:\n"
                   "  - name: a\n"
                   "    objective: 90\n"
                   "    sli: {spans: {}}\n",
                   &c, 10000);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:3: svc-a: alert tier page-quick can never fire: factor 14.4 x "
                      "(1 - objective) 0.1 = 1.44 >= 1 (disable it or lower the factor)"));
    cfg_ctx_fini(&c);

    /* disabling the page alert makes 90% valid */
    set = load_str("service: svc\n"
                   "slos:\n"
                   "  - name: a\n"
                   "    objective: 90\n"
                   "    sli: {spans: {}}\n"
                   "    alerting: {page: {disable: true}}\n",
                   &c, 10000);
    CHECK(set != NULL);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);

    /* window shorter than the evaluation interval */
    set = load_str("service: svc\n"
                   "slos:\n"
                   "  - name: a\n"
                   "    objective: 99\n"
                   "    sli: {spans: {}}\n",
                   &c, 10 * 60000);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:3: svc-a: alert tier page-quick: window 5m is shorter than the "
                      "evaluation interval 10m"));
    cfg_ctx_fini(&c);

    /* duplicate ids */
    set = load_str("service: svc\n"
                   "slos:\n"
                   "  - name: a\n"
                   "    objective: 99\n"
                   "    sli: {spans: {}}\n"
                   "  - name: a\n"
                   "    objective: 99.5\n"
                   "    sli: {spans: {}}\n",
                   &c, 10000);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:6: svc-a: duplicate SLO id \"svc-a\" (first defined at "
                      "spec.yaml:3)"));
    cfg_ctx_fini(&c);

    /* a regex that does not compile */
    set = load_str("service: svc\n"
                   "slos:\n"
                   "  - name: a\n"
                   "    objective: 99\n"
                   "    sli:\n"
                   "      ratio:\n"
                   "        bad: 'http_requests_total{code=~\"5(..\"}'\n"
                   "        total: http_requests_total\n",
                   &c, 10000);
    CHECK(!set);
    CHECK(has_err_part(&c,
                       "spec.yaml:7: slos[0].sli.ratio.bad: label code: regex \"5(..\" does "
                       "not compile",
                       ""));
    cfg_ctx_fini(&c);

    /* __name__="" matches nothing */
    set = load_str("service: svc\n"
                   "slos:\n"
                   "  - name: a\n"
                   "    objective: 99\n"
                   "    sli:\n"
                   "      ratio:\n"
                   "        bad: '{__name__=\"\", code=\"500\"}'\n"
                   "        total: http_requests_total\n",
                   &c, 10000);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:3: svc-a: bad selector can match nothing: __name__=\"\" (every "
                      "series has a name)"));
    cfg_ctx_fini(&c);

    /* unknown keys, missing sli */
    set = load_str("service: svc\n"
                   "slos:\n"
                   "  - name: a\n"
                   "    objectiv: 99\n",
                   &c, 10000);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:4: slos[0]: unknown key \"objectiv\""));
    CHECK(has_err(&c, "spec.yaml:3: slos[0]: missing required key \"objective\""));
    CHECK(has_err(&c, "spec.yaml:3: slos[0]: missing required key \"sli\""));
    cfg_ctx_fini(&c);

    /* OpenSLO target out of range */
    set = load_str(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n"
        "  service: s\n  budgetingMethod: Occurrences\n"
        "  timeWindow: [{duration: 30d, isRolling: true}]\n"
        "  objectives:\n    - target: 99.9\n"
        "  indicator:\n    metadata: {name: i}\n    spec:\n      ratioMetric:\n"
        "        good: {metricSource: {type: Prometheus, spec: {query: 'a_total{x=\"1\"}'}}}\n"
        "        total: {metricSource: {type: Prometheus, spec: {query: a_total}}}\n",
        &c, 10000);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:9: SLO/x.spec.objectives[0].target: objective 99.9 out of "
                      "range: target must be in (0, 1)"));
    cfg_ctx_fini(&c);

    /* an unknown format */
    set = load_str("version: prometheus/v2\nservice: x\n", &c, 0);
    CHECK(!set);
    CHECK(has_err(&c, "spec.yaml:1: version: unsupported \"prometheus/v2\" (supported: meltp/v1, "
                      "prometheus/v1)"));
    cfg_ctx_fini(&c);
}

static const char *SLOTH_TPL = "version: prometheus/v1\n"
                               "service: s\n"
                               "slos:\n"
                               "  - name: n\n"
                               "    objective: 99\n"
                               "    sli:\n"
                               "      events:\n"
                               "        error_query: '%s'\n"
                               "        total_query: 'sum(rate(req_total[{{.window}}]))'\n"
                               "    alerting: {name: A}\n";

static int sloth_query_ok(const char *q, cfg_ctx_t *c)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), SLOTH_TPL, q);
    slo_set_t *set = load_str(buf, c, 0);
    int ok = set != NULL;
    slo_set_destroy(set);
    return ok;
}

UNIT_TEST(sloth_promql_subset)
{
    cfg_ctx_t c;
    CHECK(sloth_query_ok("sum(rate(req_total{code=~\"5..\"}[{{.window}}]))", &c));
    cfg_ctx_fini(&c);
    CHECK(sloth_query_ok("sum(increase(req_total{code=~\"5..\"}[{{ .window }}]))", &c));
    cfg_ctx_fini(&c);
    CHECK(sloth_query_ok("  sum ( rate ( req_total { code = \"500\" , a != \"b\" } "
                         "[{{.window}}] ) )  ",
                         &c));
    cfg_ctx_fini(&c);
    /* by-grouping must match between both queries */
    CHECK(!sloth_query_ok("sum by (route) (rate(req_total{code=\"500\"}[{{.window}}]))", &c));
    CHECK(has_err(&c, "spec.yaml:8: slos[0].sli.events.error_query: error_query and total_query "
                      "must aggregate by the same labels"));
    cfg_ctx_fini(&c);

    /* rejected shapes */
    const char *bad[] = {
        "rate(req_total[{{.window}}])",
        "sum(rate(req_total[5m]))",
        "sum(rate(req_total[{{.window}}])) / 2",
        "max(rate(req_total[{{.window}}]))",
        "sum(irate(req_total[{{.window}}]))",
        "sum(rate(req_total{code=~\"5(\"}[{{.window}}]))",
        "histogram_quantile(0.99, sum(rate(x_bucket[{{.window}}])) by (le))",
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        CHECK(!sloth_query_ok(bad[i], &c));
        CHECK(has_err_part(&c, "spec.yaml:8: slos[0].sli.events.error_query: unsupported PromQL",
                           "supported: sum(rate(SELECTOR[{{.window}}])), "
                           "sum(increase(SELECTOR[{{.window}}])) and sum by (labels) (...)"));
        cfg_ctx_fini(&c);
    }

    /* group-by accepted when both agree; trailing by form too */
    slo_set_t *set = load_str("version: prometheus/v1\nservice: s\nslos:\n  - name: n\n"
                              "    objective: 99\n    sli:\n      events:\n"
                              "        error_query: sum(rate(e_total[{{.window}}])) by (a, b)\n"
                              "        total_query: sum by (a,b) (rate(t_total[{{.window}}]))\n"
                              "    alerting: {name: A}\n",
                              &c, 0);
    REQUIRE(set);
    CHECK(set->slos[0].ngroup_by == 2 && !strcmp(set->slos[0].group_by[1], "b"));
    CHECK_STR(set->slos[0].sli.bad.metric, "e_total");
    slo_set_destroy(set);
    cfg_ctx_fini(&c);

    /* raw SLIs are refused with a reason */
    set = load_str("version: prometheus/v1\nservice: s\nslos:\n  - name: n\n    objective: 99\n"
                   "    sli:\n      raw:\n        error_ratio_query: x\n    alerting: {name: A}\n",
                   &c, 0);
    CHECK(!set);
    CHECK(has_err_part(&c, "spec.yaml:8: slos[0].sli.raw: raw SLIs", "cannot be evaluated"));
    cfg_ctx_fini(&c);
}

UNIT_TEST(explain_formulas)
{
    cfg_ctx_t c;
    slo_set_t *set = load_str("service: s\nslos:\n  - name: n\n    objective: 99.9\n"
                              "    sli: {spans: {}}\n"
                              "    alerting: {ticket: {keep_firing_for: 10m}}\n",
                              &c, 0);
    REQUIRE(set);
    const slo_spec_t *s = &set->slos[0];
    /* slo.md 2.3: t = W_long x factor x B / e; 99.9%: 1h/14.4 ~ 52s, 6h/6 ~ 130s, 3d/1 ~ 260s */
    CHECK(slo_tier_detection_ms(s, &s->tiers[0], 1.0) == 51840);
    CHECK(slo_tier_detection_ms(s, &s->tiers[1], 1.0) == 129600);
    CHECK(slo_tier_detection_ms(s, &s->tiers[2], 1.0) == 259200);
    CHECK(slo_tier_detection_ms(s, &s->tiers[3], 1.0) == 259200);
    /* at exactly the threshold it never fires; at 10x the threshold the long window needs 1/10 */
    CHECK(slo_tier_detection_ms(s, &s->tiers[0], slo_tier_threshold(s, &s->tiers[0])) == -1);
    CHECK(slo_tier_detection_ms(s, &s->tiers[0], 0.144) == 360000);
    /* reset: W_short x (1 - threshold) + keep_firing_for */
    CHECK(slo_tier_reset_ms(s, &s->tiers[0]) == llround(300000 * (1 - 0.0144)));
    CHECK(slo_tier_reset_ms(s, &s->tiers[3]) == llround(21600000 * (1 - 0.001)) + 600000);
    CHECK(near(slo_tier_threshold(s, &s->tiers[1]), 6 * (1 - 0.999)));
    char buf[32];
    CHECK_STR(slo_fmt_duration(90 * 60000, buf, sizeof(buf)), "1h30m");
    CHECK_STR(slo_fmt_duration(28LL * 86400000, buf, sizeof(buf)), "28d");
    slo_set_destroy(set);
    cfg_ctx_fini(&c);

    /* 28d Sloth scaling: 13.44, 5.6, 2.8, 0.9333 */
    set = load_str("service: s\nslos:\n  - name: n\n    objective: 99.9\n    period: 28d\n"
                   "    sli: {spans: {}}\n",
                   &c, 0);
    REQUIRE(set);
    CHECK(near(set->slos[0].tiers[0].factor, 13.44));
    CHECK(near(set->slos[0].tiers[1].factor, 5.6));
    CHECK(near(set->slos[0].tiers[2].factor, 2.8));
    CHECK(near(set->slos[0].tiers[3].factor, 0.1 * 28 * 24 / 72));
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}

UNIT_TEST(native_custom_tiers_and_multi_doc)
{
    cfg_ctx_t c;
    slo_set_t *set = load_str("# two formats in one file\n"
                              "service: a\n"
                              "slos:\n"
                              "  - name: x\n"
                              "    objective: 99\n"
                              "    sli: {spans: {type: latency, threshold: 250ms, route: /p}}\n"
                              "    alerting:\n"
                              "      tiers:\n"
                              "        - {name: fast, severity: page, long: 1h, short: 5m, "
                              "factor: 10, for: 2m, keep_firing_for: 5m}\n"
                              "        - {name: slow, severity: ticket, long: 6h, "
                              "budget_percent: 5, disable: true}\n"
                              "---\n"
                              "version: prometheus/v1\n"
                              "service: b\n"
                              "slos:\n"
                              "  - name: y\n"
                              "    objective: 99\n"
                              "    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', "
                              "total_query: 'sum(rate(t[{{.window}}]))'}}\n"
                              "    alerting: {name: B}\n",
                              &c, 10000);
    cfg_ctx_print(&c, stderr);
    REQUIRE(set && set->n == 2);
    const slo_spec_t *x = find(set, "a-x");
    REQUIRE(x && x->ntiers == 2);
    CHECK(x->sli.spans_mode == SLO_SPANS_LATENCY && near(x->sli.threshold_ms, 250));
    CHECK_STR(x->sli.route, "/p");
    CHECK(near(x->tiers[0].factor, 10) && x->tiers[0].for_ms == 120000);
    CHECK(x->tiers[0].keep_firing_for_ms == 300000);
    CHECK(x->tiers[1].short_ms == 30 * 60000); /* long / 12 */
    CHECK(near(x->tiers[1].factor, 6) && !x->tiers[1].enabled);
    const slo_spec_t *y = find(set, "b-y");
    REQUIRE(y);
    CHECK(y->line == 15 && y->format == SLO_FMT_SLOTH);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}

/* `meltp slo rules` mirrors the engine: min_events gates every tier on the long-window event
 * count and the period count gates them all (data state), no_data: alert gets the engine's
 * NoData alert per group after the shortest enabled long window, calendar periods get
 * calendar period rules (exact in UTC: no WARNING, no NOT EXACT), other no_data policies get
 * comments. */
UNIT_TEST(rules_min_events_nodata_calendar)
{
    cfg_ctx_t c;
    slo_set_t *set = load_str("service: shop\nslos:\n  - name: cart\n    objective: 99\n"
                              "    period: {calendar: week}\n    min_events: 42\n"
                              "    no_data: alert\n    sli: {spans: {}}\n"
                              "    alerting:\n      name: ShopCartBurnRate\n      tiers:\n"
                              "        - {name: slow, severity: ticket, long: 6h, short: 30m, "
                              "factor: 6}\n"
                              "        - {name: fast, severity: page, long: 30m, short: 5m, "
                              "factor: 14.4}\n",
                              &c, 0);
    REQUIRE(set);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    mt_errbuf_t eb = {0};
    CHECK(slo_rules_write(f, set, &eb) == MT_OK);
    fclose(f);
    REQUIRE(buf);
    CHECK(strstr(buf, "- record: slo:sli_total:count6h\n") != NULL);
    CHECK(strstr(buf, "- record: slo:sli_total:count30m\n") != NULL);
    CHECK(strstr(buf, "[30m])) * 1800\n") != NULL);
    CHECK(strstr(buf, "max(slo:sli_total:count30m{sloth_id=\"shop-cart\", sloth_service=\"shop\", "
                      "sloth_slo=\"cart\"} >= 42) without (sloth_window)") != NULL);
    /* NoData: the engine's name and delay (shortest long window: 30m) */
    CHECK(strstr(buf, "- alert: ShopCartNoData\n") != NULL);
    CHECK(strstr(buf, "(time() - slo:nodata_watch_start:time{sloth_id=\"shop-cart\", "
                      "sloth_service=\"shop\", sloth_slo=\"cart\"}) >= 1800\n") != NULL);
    CHECK(strstr(buf, "event=\"total\"}[30m])) > 0)\n") != NULL);
    CHECK(strstr(buf, "- record: slo:nodata_watch_start:time\n") != NULL);
    /* data state: at least 1/(1 - 0.99) = 100 events in the period (min_events is 42) */
    CHECK(strstr(buf, "slo:sli_total:count_period{sloth_id=\"shop-cart\", sloth_service=\"shop\", "
                      "sloth_slo=\"cart\"} >= 100 or ") != NULL);
    CHECK(strstr(buf, "burnrate_tier: 'no-data'") != NULL);
    CHECK(strstr(buf, "# shop-cart: calendar week in UTC.") != NULL);
    CHECK(strstr(buf, "WARNING") == NULL && strstr(buf, "NOT EXACT") == NULL);
    CHECK(strstr(buf, "- record: slo:sli_error:ratio_period\n") != NULL);
    CHECK(strstr(buf, "ratio_rate1w") == NULL);
    CHECK(strstr(buf, "no_data: alert. Prometheus") == NULL);
    free(buf);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
}

/* A spec file just under the 16 MiB limit loads: the reader used to refuse anything within its
 * 64 KiB read chunk of the limit ("file larger than"), though the file was not. */
UNIT_TEST(spec_file_just_under_the_size_limit)
{
    char path[] = "/tmp/meltp-ut-spec-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    REQUIRE(f);
    FILE *in = fopen("rules/slos/sloth-billing.yaml", "rb");
    REQUIRE(in);
    char buf[4096];
    size_t r;
    while ((r = fread(buf, 1, sizeof(buf), in)) > 0) {
        fwrite(buf, 1, r, f);
    }
    fclose(in);
    long head = ftell(f);
    size_t want = CFG_MAX_FILE_BYTES - 1000; /* inside the last 64 KiB below the limit */
    static char line[1001];
    memset(line, 'x', sizeof(line) - 2);
    line[0] = '#';
    line[sizeof(line) - 2] = '\n';
    for (size_t n = (size_t)head; n + 1000 <= want; n += 1000) {
        fwrite(line, 1, 1000, f);
    }
    fclose(f);
    cfg_ctx_t c;
    cfg_ctx_init(&c, "cfg.yaml");
    slo_set_t *set = NULL;
    int rc = slo_specs_load_file(path, 10000, &c, &set);
    cfg_ctx_print(&c, stderr);
    CHECK(rc == MT_OK && set && set->n > 0);
    CHECK(c.nerr == 0);
    slo_set_destroy(set);
    cfg_ctx_fini(&c);
    unlink(path);
}

UNIT_TEST(slos_list_and_entries_checked_in_native_and_sloth)
{
    static const char *const versions[] = {"meltp/v1", "prometheus/v1"};
    for (size_t v = 0; v < 2; v++) {
        cfg_ctx_t c;
        char text[256];
        snprintf(text, sizeof(text), "version: %s\nservice: svc\nslos: []\n", versions[v]);
        slo_set_t *set = load_str(text, &c, 10000);
        CHECK(!set);
        CHECK(has_err(&c, "spec.yaml:3: slos: expected a non-empty list"));
        cfg_ctx_fini(&c);
        snprintf(text, sizeof(text),
                 "version: %s\nservice: svc\nlabels: {team: a}\nslos:\n  - 42\n", versions[v]);
        set = load_str(text, &c, 10000);
        CHECK(!set);
        CHECK(has_err(&c, "spec.yaml:5: slos[0]: expected a map"));
        cfg_ctx_fini(&c);
    }
}
