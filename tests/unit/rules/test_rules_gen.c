/*
 * test_rules_gen.c - tests for rules/rules_gen.c and rules/dashboards_gen.c: rules for tiny
 * specs are generated into memory and read back with meltp's own YAML loader (config.h), so
 * the checks are on the structure (groups, recorded names, labels, alert tiers) and on the exact
 * PromQL of the key expressions; the promtool test file must point at the rules file; the
 * Grafana dashboard is parsed as JSON and its queries must use the recorded names.
 */
#include "unit.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

static const char *const avail_spec = "service: shop\n"
                                      "slos:\n"
                                      "  - name: avail\n"
                                      "    objective: 99.5\n"
                                      "    period: 30d\n"
                                      "    sli: {spans: {type: errors}}\n";

static const char *const latency_spec =
    "service: shop\n"
    "slos:\n"
    "  - name: lat\n"
    "    objective: 99\n"
    "    period: 7d\n"
    "    sli: {latency: {histogram: 'http_server_duration_seconds{job=\"shop\"}', "
    "threshold: 0.25}}\n"
    "    group_by: [route]\n"
    "    alerting: {name: ShopSlow, page: {for: 2m}}\n";

static slo_set_t *load_spec(const char *text)
{
    cfg_ctx_t c;
    cfg_ctx_init(&c, "spec.yaml");
    slo_set_t *set = NULL;
    slo_specs_load_string("spec.yaml", text, strlen(text), 10000, &c, &set);
    cfg_ctx_print(&c, stderr);
    cfg_ctx_fini(&c);
    return set;
}

/* Runs slo_rules_write into memory and parses the result with the config loader. */
static cfg_doc_t *rules_doc(const slo_set_t *set, char **text)
{
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    int rc = slo_rules_write(f, set, &eb);
    fclose(f);
    if (rc != MT_OK) {
        fprintf(stderr, "    slo_rules_write: %s\n", eb.msg);
        return NULL;
    }
    cfg_doc_t *doc = cfg_load_string("rules.yml", *text, len, &eb);
    if (!doc) {
        fprintf(stderr, "    rules do not parse: %s\n", eb.msg);
    }
    return doc;
}

static const char *scalar(const cfg_node_t *map, const char *key)
{
    const cfg_node_t *n = cfg_map_get(map, key);
    return n && n->kind == CFG_NODE_SCALAR ? n->value : NULL;
}

static const cfg_node_t *group(const cfg_doc_t *doc, const char *name)
{
    const cfg_node_t *gs = cfg_map_get(doc->root, "groups");
    for (size_t i = 0; gs && i < gs->n; i++) {
        const char *n = scalar(gs->children[i], "name");
        if (n && !strcmp(n, name)) {
            return gs->children[i];
        }
    }
    return NULL;
}

/* The rules in group `g` with record (or alert) `name`; returns how many, the first in *out. */
static int rules_named(const cfg_node_t *g, const char *kind, const char *name,
                       const cfg_node_t **out)
{
    const cfg_node_t *rs = cfg_map_get(g, "rules");
    int n = 0;
    *out = NULL;
    for (size_t i = 0; rs && i < rs->n; i++) {
        const char *v = scalar(rs->children[i], kind);
        if (v && !strcmp(v, name)) {
            if (!n++) {
                *out = rs->children[i];
            }
        }
    }
    return n;
}

UNIT_TEST(recording_rules_use_sloth_names_and_labels)
{
    slo_set_t *set = load_spec(avail_spec);
    REQUIRE(set != NULL);
    char *text = NULL;
    cfg_doc_t *doc = rules_doc(set, &text);
    REQUIRE(doc != NULL);
    const cfg_node_t *sli = group(doc, "sloth-slo-sli-recordings-shop-avail");
    const cfg_node_t *meta = group(doc, "sloth-slo-meta-recordings-shop-avail");
    const cfg_node_t *alerts = group(doc, "sloth-slo-alerts-shop-avail");
    REQUIRE(sli && meta && alerts);
    /* one error ratio per multi-window window plus the period, each recorded once */
    const char *wins[] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"};
    for (size_t i = 0; i < MT_ARRAY_LEN(wins); i++) {
        char rec[64];
        snprintf(rec, sizeof(rec), "slo:sli_error:ratio_rate%s", wins[i]);
        const cfg_node_t *r;
        CHECK(rules_named(sli, "record", rec, &r) == 1);
        const cfg_node_t *lb = cfg_map_get(r, "labels");
        CHECK_STR(scalar(lb, "sloth_id"), "shop-avail");
        CHECK_STR(scalar(lb, "sloth_service"), "shop");
        CHECK_STR(scalar(lb, "sloth_slo"), "avail");
        CHECK_STR(scalar(lb, "sloth_window"), wins[i]);
    }
    const cfg_node_t *r;
    REQUIRE(rules_named(sli, "record", "slo:sli_error:ratio_rate5m", &r) == 1);
    CHECK_STR(
        scalar(r, "expr"),
        "(sum (rate(meltp_slo_events_total{sloth_id=\"shop-avail\",event=\"bad\"}[5m])))\n"
        "/\n"
        "(sum (rate(meltp_slo_events_total{sloth_id=\"shop-avail\",event=\"total\"}[5m])))\n");
    REQUIRE(rules_named(sli, "record", "slo:sli_total:count_period", &r) == 1);
    CHECK(strstr(scalar(r, "expr"), "increase(meltp_slo_events_total{sloth_id=\"shop-avail\","
                                    "event=\"total\"}[30d])") != NULL);
    /* the objective and budget as Sloth records them */
    REQUIRE(rules_named(meta, "record", "slo:objective:ratio", &r) == 1);
    CHECK_STR(scalar(r, "expr"), "vector(0.995)\n");
    REQUIRE(rules_named(meta, "record", "slo:error_budget:ratio", &r) == 1);
    CHECK_STR(scalar(r, "expr"), "vector(1-0.995)\n");
    REQUIRE(rules_named(meta, "record", "slo:time_period:days", &r) == 1);
    CHECK_STR(scalar(r, "expr"), "vector(30)\n");
    REQUIRE(rules_named(meta, "record", "slo:period_error_budget_remaining:ratio", &r) == 1);
    CHECK(strstr(scalar(r, "expr"), "1 - slo:period_burn_rate:ratio{") != NULL);
    REQUIRE(rules_named(meta, "record", "sloth_slo_info", &r) == 1);
    CHECK_STR(scalar(cfg_map_get(r, "labels"), "sloth_objective"), "99.5");
    free(text);
    cfg_doc_destroy(doc);
    slo_set_destroy(set);
}

UNIT_TEST(alerts_are_multiwindow_burn_rates_per_severity)
{
    slo_set_t *set = load_spec(avail_spec);
    REQUIRE(set != NULL);
    char *text = NULL;
    cfg_doc_t *doc = rules_doc(set, &text);
    REQUIRE(doc != NULL);
    const cfg_node_t *alerts = group(doc, "sloth-slo-alerts-shop-avail");
    REQUIRE(alerts != NULL);
    const cfg_node_t *rs = cfg_map_get(alerts, "rules");
    REQUIRE(rs && rs->n == 2);
    const char *sev[] = {"page", "ticket"};
    /* page: 14.4x over 5m/1h or 6x over 30m/6h; ticket: 3x over 2h/1d or 1x over 6h/3d */
    const char *need[2][4] = {{"ratio_rate5m{", "ratio_rate1h{", "(14.4 * 0.00500", "(6 * 0.00500"},
                              {"ratio_rate2h{", "ratio_rate3d{", "(3 * 0.00500", "(1 * 0.00500"}};
    for (int i = 0; i < 2; i++) {
        const cfg_node_t *a = rs->children[i];
        CHECK_STR(scalar(a, "alert"), "ShopAvailBurnRate");
        CHECK_STR(scalar(cfg_map_get(a, "labels"), "sloth_severity"), sev[i]);
        const char *expr = scalar(a, "expr");
        REQUIRE(expr != NULL);
        for (int k = 0; k < 4; k++) {
            CHECK(strstr(expr, need[i][k]) != NULL);
        }
        /* the engine's data gate: no alert before 200 events (1 / budget) in the period */
        CHECK(strstr(expr, "slo:sli_total:count_period{sloth_id=\"shop-avail\", "
                           "sloth_service=\"shop\", sloth_slo=\"avail\"} >= 200") != NULL);
        CHECK(strstr(scalar(cfg_map_get(a, "annotations"), "title"), sev[i]) != NULL);
    }
    free(text);
    cfg_doc_destroy(doc);
    slo_set_destroy(set);
}

UNIT_TEST(latency_sli_groups_by_labels_and_keeps_for)
{
    slo_set_t *set = load_spec(latency_spec);
    REQUIRE(set != NULL);
    char *text = NULL;
    cfg_doc_t *doc = rules_doc(set, &text);
    REQUIRE(doc != NULL);
    const cfg_node_t *sli = group(doc, "sloth-slo-sli-recordings-shop-lat");
    REQUIRE(sli != NULL);
    const cfg_node_t *r;
    REQUIRE(rules_named(sli, "record", "slo:sli_error:ratio_rate1h", &r) == 1);
    const char *expr = scalar(r, "expr");
    REQUIRE(expr != NULL);
    /* bad = all - the bucket at the threshold, per group_by label, from the spec's selector */
    CHECK(strstr(expr, "sum by (route) (rate(http_server_duration_seconds_count{job=\"shop\"}[1h]))"
                       " - sum by (route) (rate(http_server_duration_seconds_bucket{job=\"shop\","
                       "le=\"0.25\"}[1h]))") != NULL);
    CHECK(strncmp(expr, "clamp(", 6) == 0);
    /* a 7d period is recorded as such, not as 30d */
    CHECK(rules_named(sli, "record", "slo:sli_error:ratio_rate1w", &r) == 1);
    CHECK(rules_named(sli, "record", "slo:sli_error:ratio_rate30d", &r) == 0);
    const cfg_node_t *alerts = group(doc, "sloth-slo-alerts-shop-lat");
    REQUIRE(alerts != NULL);
    const cfg_node_t *a;
    CHECK(rules_named(alerts, "alert", "ShopSlow", &a) >= 1);
    CHECK(rules_named(alerts, "alert", "ShopLatBurnRate", &a) == 0);
    /* the page tier's `for` is carried over */
    const cfg_node_t *rs = cfg_map_get(alerts, "rules");
    int with_for = 0;
    for (size_t i = 0; rs && i < rs->n; i++) {
        const char *f = scalar(rs->children[i], "for");
        const char *s = scalar(cfg_map_get(rs->children[i], "labels"), "sloth_severity");
        if (f && s && !strcmp(s, "page")) {
            with_for += !strcmp(f, "2m");
        }
    }
    CHECK(with_for >= 1);
    free(text);
    cfg_doc_destroy(doc);
    slo_set_destroy(set);
}

UNIT_TEST(several_slos_get_their_own_groups)
{
    char both[1024];
    snprintf(both, sizeof(both),
             "%s  - name: other\n    objective: 99.9\n    period: 30d\n"
             "    sli: {spans: {type: errors}}\n",
             avail_spec);
    slo_set_t *set = load_spec(both);
    REQUIRE(set && set->n == 2);
    char *text = NULL;
    cfg_doc_t *doc = rules_doc(set, &text);
    REQUIRE(doc != NULL);
    CHECK(group(doc, "sloth-slo-sli-recordings-shop-avail") != NULL);
    CHECK(group(doc, "sloth-slo-sli-recordings-shop-other") != NULL);
    const cfg_node_t *meta = group(doc, "sloth-slo-meta-recordings-shop-other");
    REQUIRE(meta != NULL);
    const cfg_node_t *r;
    REQUIRE(rules_named(meta, "record", "slo:objective:ratio", &r) == 1);
    CHECK_STR(scalar(r, "expr"), "vector(0.999)\n");
    /* group names are unique (Prometheus refuses duplicates) */
    const cfg_node_t *gs = cfg_map_get(doc->root, "groups");
    for (size_t i = 0; gs && i < gs->n; i++) {
        for (size_t k = i + 1; k < gs->n; k++) {
            CHECK(strcmp(scalar(gs->children[i], "name"), scalar(gs->children[k], "name")) != 0);
        }
    }
    free(text);
    cfg_doc_destroy(doc);
    slo_set_destroy(set);
}

UNIT_TEST(promtool_tests_refer_to_the_rules_file)
{
    slo_set_t *set = load_spec(avail_spec);
    REQUIRE(set != NULL);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    CHECK(slo_rules_tests_write(f, set, "shop-rules.yml", &eb) == MT_OK);
    fclose(f);
    cfg_doc_t *doc = cfg_load_string("tests.yml", text, len, &eb);
    REQUIRE(doc != NULL);
    const cfg_node_t *rf = cfg_map_get(doc->root, "rule_files");
    REQUIRE(rf && rf->kind == CFG_NODE_SEQ && rf->n == 1);
    CHECK_STR(rf->children[0]->value, "shop-rules.yml");
    const cfg_node_t *tests = cfg_map_get(doc->root, "tests");
    REQUIRE(tests && tests->kind == CFG_NODE_SEQ && tests->n >= 1);
    /* somewhere the alert is expected to fire */
    CHECK(strstr(text, "ShopAvailBurnRate") != NULL);
    free(text);
    cfg_doc_destroy(doc);
    slo_set_destroy(set);
}

UNIT_TEST(dashboard_per_service_queries_the_recorded_series)
{
    slo_set_t *set = load_spec(avail_spec);
    REQUIRE(set != NULL);
    char dir[] = "/tmp/meltp-unit-dash-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    REQUIRE(slo_dashboards_write(dir, set, NULL, &eb) == MT_OK);
    char path[128];
    snprintf(path, sizeof(path), "%s/slo-shop.json", dir);
    json_error_t je;
    json_t *d = json_load_file(path, 0, &je);
    REQUIRE(d != NULL);
    json_t *panels = json_object_get(d, "panels");
    REQUIRE(json_array_size(panels) > 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(panels, 0), "title")),
              "shop - avail (objective 99.5%)");
    char *all = json_dumps(d, JSON_COMPACT);
    REQUIRE(all != NULL);
    CHECK(strstr(all, "slo:period_error_budget_remaining:ratio") != NULL);
    CHECK(strstr(all, "sloth_id=\\\"shop-avail\\\"") != NULL);
    free(all);
    json_decref(d);
    unlink(path);
    rmdir(dir);
    slo_set_destroy(set);
}
