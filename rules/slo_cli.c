/*
 * cli.c - `meltp slo SUBCOMMAND`: explain (what each alert tier means for a spec: detection
 * and reset times from slo.md 2.3), rules (Sloth-compatible Prometheus rules, optionally with
 * promtool unit tests), dashboards (Grafana JSON) and test-notify (slo/notify.c). Specs are
 * loaded and linted exactly as the engine loads them, so errors read the same.
 */
#include "model.h"
#include "silence.h"
#include "slo.h"
#include "sb.h"
#include "mt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* notify.c provides it; weak so a build without notify.c still links (then test-notify says
 * it is unavailable). */
extern int slo_notify_test_main(int argc, char **argv) __attribute__((weak));

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meltp slo explain [--eval-interval DUR] [--config FILE] [SPEC...]\n"
            "       meltp slo rules [--out RULES.yml] [--tests TESTS.yml] SPEC...\n"
            "       meltp slo dashboards [--out DIR] SPEC...\n"
            "       meltp slo test-notify --config FILE\n"
            "       meltp slo silence --matcher M --duration 2h --comment TEXT [--url URL]\n"
            "       meltp slo simulate --series SERIES.json SPEC...\n"
            "\n"
            "SPEC files may be native meltp (version: meltp/v1), Sloth (version: prometheus/v1)\n"
            "or OpenSLO v1 (apiVersion: openslo/v1), detected per YAML document.\n"
            "rules: writes Prometheus recording and alerting rules to stdout (or --out);\n"
            "  --tests FILE also writes promtool unit tests for them (needs --out: the tests\n"
            "  refer to the rules file by its path relative to FILE).\n"
            "explain --config FILE: also prints each tier's route and notifiers (slo.routes)\n"
            "  for the SPECs, or for the config's slo.specs when none is given.\n"
            "silence: creates (--list, --expire ID) a silence on a running meltp's telemetry\n"
            "  endpoint (default http://127.0.0.1:8888).\n"
            "dashboards: writes one Grafana dashboard per service to DIR (default dashboards/).\n"
            "simulate: feeds the metric series in SERIES.json through the engine with a\n"
            "  simulated clock and prints its ratios and alert states as JSON lines (for\n"
            "  parity tests against the generated rules; format in slo/model.h).\n");
}

/* Loads every spec file; prints errors to stderr. Returns the set or NULL. */
static slo_set_t *load(char **files, int n, int64_t eval_ms)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "meltp slo");
    slo_set_t *set = NULL;
    int rc = slo_specs_load((const char *const *)files, (size_t)n, NULL, eval_ms, &c, &set);
    if (rc != MT_OK) {
        cfg_ctx_print(&c, stderr);
        if (c.nerr == 0) {
            fprintf(stderr, "meltp slo: %s\n", mt_strerror(rc));
        }
    }
    cfg_ctx_fini(&c);
    return set;
}

static const char *period_text(const slo_spec_t *s, char *buf, size_t len)
{
    char d[32];
    if (s->period_kind == SLO_PERIOD_CALENDAR_MONTH) {
        snprintf(buf, len, "calendar month (%s)", s->time_zone);
    } else if (s->period_kind == SLO_PERIOD_CALENDAR_WEEK) {
        snprintf(buf, len, "calendar week (%s)", s->time_zone);
    } else {
        snprintf(buf, len, "%s rolling", slo_fmt_duration(s->period_ms, d, sizeof(d)));
    }
    return buf;
}

/* Human durations for explain: "51.8s", "2.2m", "3.1h". */
static const char *human(int64_t ms, char *buf, size_t len)
{
    double s = (double)ms / 1000.0;
    if (ms < 0) {
        snprintf(buf, len, "never");
    } else if (s < 120) {
        snprintf(buf, len, "%.1fs", s);
    } else if (s < 7200) {
        snprintf(buf, len, "%.1fm", s / 60);
    } else if (s < 172800) {
        snprintf(buf, len, "%.1fh", s / 3600);
    } else {
        snprintf(buf, len, "%.1fd", s / 86400);
    }
    return buf;
}

static void explain_one(const slo_spec_t *s, int64_t eval_ms, slo_engine_t *routes)
{
    char pb[96], d1[32], d2[32], h1[32], h2[32], h3[32];
    const double B = 1.0 - s->objective;
    printf("SLO %s (%s, %s:%d)\n", s->id, slo_format_name(s->format), s->file, s->line);
    printf("  objective %.10g%%  error budget %.10g%%  period %s  budgeting %s\n",
           s->objective * 100, B * 100, period_text(s, pb, sizeof(pb)),
           slo_budgeting_name(s->budgeting));
    printf("  sli %s  no_data %s  min_events %llu", slo_sli_kind_name(s->sli.kind),
           slo_nodata_name(s->nodata), (unsigned long long)s->min_events);
    if (s->ngroup_by) {
        printf("  group_by");
        for (size_t i = 0; i < s->ngroup_by; i++) {
            printf("%s%s", i ? "," : " ", s->group_by[i]);
        }
        printf(" (max %zu groups)", s->max_groups);
    }
    printf("\n");
    printf("  allowed bad time over the period at 100%% errors: %s\n",
           human((int64_t)((double)s->period_ms * B), h1, sizeof(h1)));
    printf("  %-14s %-8s %-6s %-6s %-9s %-11s %-9s %-11s %-11s %s\n", "tier", "severity", "long",
           "short", "factor", "threshold", "budget%", "detect", "reset", "exhausts");
    for (size_t i = 0; i < s->ntiers; i++) {
        const slo_tier_t *t = &s->tiers[i];
        int64_t det = slo_tier_detection_ms(s, t, 1.0);
        int64_t rst = slo_tier_reset_ms(s, t);
        /* time to spend the whole budget at exactly this burn rate: P / factor */
        int64_t tte = (int64_t)((double)s->period_ms / t->factor);
        printf("  %-14s %-8s %-6s %-6s %-9.6g %-11.6g %-9.4g %-11s %-11s %s%s\n", t->name,
               t->severity, slo_fmt_duration(t->long_ms, d1, sizeof(d1)),
               slo_fmt_duration(t->short_ms, d2, sizeof(d2)), t->factor, slo_tier_threshold(s, t),
               t->budget_percent, human(det, h1, sizeof(h1)), human(rst, h2, sizeof(h2)),
               human(tte, h3, sizeof(h3)), t->enabled ? "" : "  (disabled)");
        printf("    detect_ms=%lld reset_ms=%lld alert=%s\n", (long long)det, (long long)rst,
               t->alert_name);
        if (routes && slo_engine_print_routes(routes, s->id, i, stdout, "    ") != 0) {
            printf("    route: unknown (the config does not load this SLO)\n");
        }
    }
    printf("  detect: time for a full outage (100%% errors) to fire = long x factor x (1 - "
           "objective) + for");
    if (eval_ms > 0) {
        printf(", plus up to one evaluation interval (%s)",
               slo_fmt_duration(eval_ms, d1, sizeof(d1)));
    }
    printf("\n  reset: time after the outage ends until the alert clears = short x (1 - "
           "threshold) + keep_firing_for\n\n");
}

/* A flag of `meltp slo <cmd>` that takes a value: --name (or alias) VALUE stores VALUE in
 * *val, or, for a duration flag (ms set), its milliseconds in *ms. */
typedef struct cli_flag {
    const char *name, *alias;
    const char **val;
    int64_t *ms;
} cli_flag_t;

/* Reads the flags before the operands (argv[1..]; "--" ends them). Returns the index of the
 * first operand, or -1 after saying what was wrong (an unknown flag: with the usage when
 * `usage_too`). */
static int parse_flags(int argc, char **argv, const char *cmd, const cli_flag_t *flags,
                       size_t nflags, int usage_too)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--")) {
            return i + 1;
        }
        const cli_flag_t *f = NULL;
        for (size_t k = 0; k < nflags && !f; k++) {
            if ((!strcmp(argv[i], flags[k].name) ||
                 (flags[k].alias && !strcmp(argv[i], flags[k].alias))) &&
                i + 1 < argc) {
                f = &flags[k];
            }
        }
        if (!f) {
            fprintf(stderr, "meltp slo %s: unknown flag %s\n", cmd, argv[i]);
            if (usage_too) {
                usage(stderr);
            }
            return -1;
        }
        i++;
        if (f->ms) {
            if (cfg_parse_duration_ms(argv[i], f->ms) != MT_OK) {
                fprintf(stderr, "meltp slo %s: bad %s\n", cmd, f->name);
                return -1;
            }
        } else {
            *f->val = argv[i];
        }
    }
    return i;
}

/* The `slo:` section of a collector config, loaded as the collector loads it (specs,
 * notifiers, routes; nothing started). NULL after printing the errors. */
static slo_engine_t *load_config_engine(const char *config, cfg_doc_t **doc)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    *doc = cfg_load_file(config, &eb);
    if (!*doc) {
        fprintf(stderr, "%s\n", eb.msg);
        return NULL;
    }
    const cfg_node_t *node = cfg_map_get((*doc)->root, "slo");
    if (!node) {
        fprintf(stderr, "meltp slo explain: %s has no slo section\n", config);
        return NULL;
    }
    cfg_ctx_t c;
    cfg_ctx_init(&c, (*doc)->file);
    slo_engine_t *e = slo_engine_load(node, config, &c);
    cfg_ctx_print(&c, stderr);
    cfg_ctx_fini(&c);
    return e;
}

static int cmd_explain(int argc, char **argv)
{
    int64_t eval_ms = 0;
    const char *config = NULL;
    const cli_flag_t flags[] = {{"--eval-interval", NULL, NULL, &eval_ms},
                                {"--config", "-c", &config, NULL}};
    int i = parse_flags(argc, argv, "explain", flags, MT_ARRAY_LEN(flags), 1);
    if (i < 0) {
        return 2;
    }
    if (i >= argc && !config) {
        usage(stderr);
        return 2;
    }
    cfg_doc_t *doc = NULL;
    slo_engine_t *e = config ? load_config_engine(config, &doc) : NULL;
    if (config && !e) {
        cfg_doc_destroy(doc);
        return 1;
    }
    slo_set_t *set = i < argc ? load(argv + i, argc - i, eval_ms) : NULL;
    const slo_set_t *show = set ? set : (i < argc ? NULL : slo_engine_specs(e));
    if (!show) {
        slo_engine_stop_destroy(e);
        cfg_doc_destroy(doc);
        return 1;
    }
    for (size_t k = 0; k < show->n; k++) {
        explain_one(&show->slos[k], eval_ms, e);
    }
    slo_set_destroy(set);
    slo_engine_stop_destroy(e);
    cfg_doc_destroy(doc);
    return 0;
}

/* Path of `target` relative to the directory of `from` (both as given; absolute-ised). */
static char *relative_to(const char *target, const char *from)
{
    char *t = realpath(target, NULL);
    char *fdup = strdup(from);
    char *slash = fdup ? strrchr(fdup, '/') : NULL;
    char *fdir = NULL;
    if (fdup) {
        if (slash) {
            *slash = 0;
            fdir = realpath(slash == fdup ? "/" : fdup, NULL);
        } else {
            fdir = realpath(".", NULL);
        }
    }
    char *out = NULL;
    if (t && fdir) {
        size_t n = strlen(fdir);
        if (!strncmp(t, fdir, n) && t[n] == '/') {
            out = strdup(t + n + 1);
        } else {
            out = strdup(t);
        }
    }
    free(t);
    free(fdup);
    free(fdir);
    return out ? out : strdup(target);
}

static int cmd_rules(int argc, char **argv)
{
    const char *out = NULL, *tests = NULL;
    const cli_flag_t flags[] = {{"--out", "-o", &out, NULL}, {"--tests", NULL, &tests, NULL}};
    int i = parse_flags(argc, argv, "rules", flags, MT_ARRAY_LEN(flags), 1);
    if (i < 0) {
        return 2;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (tests && !out) {
        fprintf(stderr, "meltp slo rules: --tests needs --out (the tests load the rules file)\n");
        return 2;
    }
    slo_set_t *set = load(argv + i, argc - i, 0);
    if (!set) {
        return 1;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = 0;
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        perror(out);
        slo_set_destroy(set);
        return 1;
    }
    if (slo_rules_write(f, set, &eb) != MT_OK) {
        fprintf(stderr, "meltp slo rules: %s\n", eb.msg);
        rc = 1;
    }
    if (out && fclose(f) != 0) {
        perror(out);
        rc = 1;
    }
    if (rc == 0 && tests) {
        FILE *tf = fopen(tests, "w");
        if (!tf) {
            perror(tests);
            rc = 1;
        } else {
            char *rel = relative_to(out, tests);
            if (slo_rules_tests_write(tf, set, rel, &eb) != MT_OK) {
                fprintf(stderr, "meltp slo rules: %s\n", eb.msg);
                rc = 1;
            }
            free(rel);
            if (fclose(tf) != 0) {
                perror(tests);
                rc = 1;
            }
        }
    }
    slo_set_destroy(set);
    return rc;
}

static int cmd_dashboards(int argc, char **argv)
{
    const char *dir = "dashboards";
    const cli_flag_t flags[] = {{"--out", "-o", &dir, NULL}};
    int i = parse_flags(argc, argv, "dashboards", flags, MT_ARRAY_LEN(flags), 1);
    if (i < 0) {
        return 2;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    slo_set_t *set = load(argv + i, argc - i, 0);
    if (!set) {
        return 1;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = 0;
    if (slo_dashboards_write(dir, set, stdout, &eb) != MT_OK) {
        fprintf(stderr, "meltp slo dashboards: %s\n", eb.msg);
        rc = 1;
    }
    slo_set_destroy(set);
    return rc;
}

static int cmd_simulate(int argc, char **argv)
{
    const char *series = NULL;
    const cli_flag_t flags[] = {{"--series", NULL, &series, NULL}};
    int i = parse_flags(argc, argv, "simulate", flags, MT_ARRAY_LEN(flags), 0);
    if (i < 0) {
        return 2;
    }
    if (!series || i >= argc) {
        fprintf(stderr, "meltp slo simulate: needs --series FILE and at least one SPEC\n");
        return 2;
    }
    FILE *f = fopen(series, "rb");
    if (!f) {
        perror(series);
        return 1;
    }
    sb_t b = {0};
    int rd = sb_fread(&b, f);
    fclose(f);
    if (rd == MT_ENOMEM) {
        sb_fini(&b);
        fprintf(stderr, "meltp: out of memory\n");
        return 1;
    }
    b.err = 0; /* a read error: what was read, as before */
    size_t len = 0;
    char *text = sb_take(&b, &len);
    slo_set_t *set = load(argv + i, argc - i, 0);
    if (!set) {
        free(text);
        return 1;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = slo_simulate(stdout, set, text ? text : "", len, &eb);
    if (rc != MT_OK) {
        fprintf(stderr, "meltp slo simulate: %s: %s\n", series, eb.msg);
    }
    slo_set_destroy(set);
    free(text);
    return rc == MT_OK ? 0 : 1;
}

int slo_cli_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "explain")) {
        return cmd_explain(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "rules")) {
        return cmd_rules(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "dashboards")) {
        return cmd_dashboards(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "simulate")) {
        return cmd_simulate(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "silence")) {
        return slo_silence_cli_main(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "test-notify")) {
        if (!slo_notify_test_main) {
            fprintf(stderr, "meltp slo test-notify: notifiers are not available in this build\n");
            return 2;
        }
        return slo_notify_test_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "meltp slo: unknown subcommand \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
