/*
 * test_slo_route.c - slo/route.c and slo/silence.c: Alertmanager matcher parsing (the four
 * operators, quoting, anchored regexes, bad input), routing decisions (first match wins,
 * continue, no route, the implicit route), inhibition with `equal`, config errors with their
 * lines, and silences (POST / GET / DELETE in Alertmanager's shape, matching, persistence).
 */
#include "unit.h"
#include "route.h"
#include "silence.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int matches(const char *matcher, const char *label, const char *value)
{
    slo_matcher_t m;
    char err[256];
    if (slo_matcher_parse(matcher, &m, err, sizeof(err)) != 0) {
        return -1;
    }
    slo_route_labels_t l = {0};
    if (label) {
        slo_route_label_set(&l, label, value);
    }
    int r = slo_route_matchers_match(&m, 1, &l);
    slo_matcher_free(&m);
    return r;
}

UNIT_TEST(route_matcher_syntax)
{
    CHECK(matches("severity=\"page\"", "severity", "page") == 1);
    CHECK(matches("severity=\"page\"", "severity", "pager") == 0);
    CHECK(matches("severity!=\"page\"", "severity", "ticket") == 1);
    CHECK(matches("severity!=\"page\"", "severity", "page") == 0);
    /* regexes are anchored: ticket|slack matches the whole value only */
    CHECK(matches("severity=~\"ticket|slack\"", "severity", "slack") == 1);
    CHECK(matches("severity=~\"ticket|slack\"", "severity", "tickets") == 0);
    CHECK(matches("severity=~\"tick\"", "severity", "ticket") == 0);
    CHECK(matches("severity!~\"page.*\"", "severity", "pageteam") == 0);
    CHECK(matches("severity!~\"page.*\"", "severity", "ticket") == 1);
    /* quoting styles, spaces, braces, bare values (Alertmanager's classic syntax) */
    CHECK(matches("  team = 'sre' ", "team", "sre") == 1);
    CHECK(matches("{team=`sre`}", "team", "sre") == 1);
    CHECK(matches("team=sre", "team", "sre") == 1);
    CHECK(matches("team=\"a\\\"b\"", "team", "a\"b") == 1);
    /* an absent label reads as "" */
    CHECK(matches("team=\"\"", NULL, NULL) == 1);
    CHECK(matches("team!=\"\"", NULL, NULL) == 0);
    CHECK(matches("team=~\".*\"", NULL, NULL) == 1);
    /* bad input */
    CHECK(matches("=\"x\"", "a", "b") == -1);
    CHECK(matches("9a=\"x\"", "a", "b") == -1);
    CHECK(matches("team~\"x\"", "a", "b") == -1);
    CHECK(matches("team=~\"(\"", "a", "b") == -1);
    CHECK(matches("team=\"x", "a", "b") == -1);
    CHECK(matches("team=\"x\" extra", "a", "b") == -1);
    CHECK(matches("team=\"x\", b=\"y\"", "a", "b") == -1);
    /* regexes that would make glibc's regcomp copy its tree exponentially are refused */
    CHECK(matches("a=~\"((((((((((((((((((((((x+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\"",
                  "a", "x") == -1);
    CHECK(matches("a=~\"((x{100}){100}){100}\"", "a", "x") == -1);
    CHECK(matches("a=~\"[a-z]+-[0-9]+\"", "a", "api-7") == 1);
    CHECK(matches("a=~\"x{2,3}\"", "a", "xxx") == 1);
    CHECK(matches("a=~\"x+*+\"", "a", "x") == -1);
    CHECK(matches("a=~\"x\\\\++\"", "a", "x++") == 1); /* an escaped + is no quantifier */
    CHECK(matches("a=~\".*-canary\"", "a", "api-canary") == 1);
    slo_matcher_t m;
    char err[256];
    CHECK(slo_matcher_parse("a=~\"(x{100}){100}{100}\"", &m, err, sizeof(err)) != 0);
    CHECK(strstr(err, "repeats too much") != NULL);
    CHECK(slo_matcher_parse("team=~\"(\"", &m, err, sizeof(err)) != 0);
    CHECK(strstr(err, "does not compile") != NULL);
    CHECK(m.name == NULL); /* nothing to free on failure */
}

/* Loads `yaml` (a document with slo.notifiers / slo.routes / slo.inhibit) into ns and rt;
 * errors (joined by '\n') into errs. */
static int load(const char *yaml, slo_notifiers_t **ns, slo_routes_t **rt, char *errs, size_t n)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_string("routes.yaml", yaml, strlen(yaml), &eb);
    if (!doc) {
        snprintf(errs, n, "%s", eb.msg);
        return -1;
    }
    const cfg_node_t *slo = cfg_map_get(doc->root, "slo");
    cfg_ctx_t c;
    cfg_ctx_init(&c, "routes.yaml");
    *ns = slo_notifiers_load(cfg_map_get(slo, "notifiers"), "slo.notifiers", &c);
    *rt = *ns ? slo_route_load(cfg_map_get(slo, "routes"), cfg_map_get(slo, "inhibit"), *ns, 30000,
                               300000, 14400000, &c)
              : NULL;
    size_t k = 0;
    errs[0] = 0;
    for (size_t i = 0; i < c.nerr && k < n; i++) {
        k += (size_t)snprintf(errs + k, n - k, "%s\n", c.errs[i]);
    }
    int rc = c.nerr ? -1 : 0;
    cfg_ctx_fini(&c);
    cfg_doc_destroy(doc);
    return rc;
}

#define NOTIFIERS                                                               \
    "slo:\n"                                                                    \
    "  notifiers:\n"                                                            \
    "    - {name: oncall, type: teams, webhook_url: http://127.0.0.1:1/t}\n"    \
    "    - {name: sre-slack, type: slack, webhook_url: http://127.0.0.1:1/s}\n" \
    "    - {name: am, type: alertmanager, url: http://127.0.0.1:1/}\n"

static slo_route_labels_t alert(const char *severity, const char *team, const char *id)
{
    slo_route_labels_t l = {0};
    slo_route_label_set(&l, "alertname", "ApiHighErrorRate");
    slo_route_label_set(&l, "severity", severity);
    if (team) {
        slo_route_label_set(&l, "team", team);
    }
    slo_route_label_set(&l, "sloth_id", id);
    return l;
}

UNIT_TEST(route_decisions_and_inhibition)
{
    slo_notifiers_t *ns;
    slo_routes_t *rt;
    char errs[2048];
    int rc = load(NOTIFIERS "  routes:\n"
                            "    - matchers: ['severity=\"page\"']\n"
                            "      notifiers: [oncall, am]\n"
                            "      group_wait: 0s\n"
                            "    - matchers: ['severity=~\"ticket|slack\"', 'team=\"sre\"']\n"
                            "      notifiers: [sre-slack]\n"
                            "      group_interval: 10m\n"
                            "      repeat_interval: 12h\n"
                            "      continue: true\n"
                            "    - matchers: ['alertname=~\"Api.*\"']\n"
                            "      notifiers: [am]\n"
                            "  inhibit:\n"
                            "    - source_matchers: ['severity=\"page\"']\n"
                            "      target_matchers: ['severity=\"ticket\"']\n"
                            "      equal: [sloth_id]\n",
                  &ns, &rt, errs, sizeof(errs));
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "%s", errs);
    }
    REQUIRE(rt && ns);
    CHECK(rt->n == 3 && !rt->implicit);
    CHECK(slo_notifiers_find(ns, "sre-slack") == 1);
    CHECK(slo_notifiers_type(ns, 2) == SLO_NT_ALERTMANAGER);
    CHECK(slo_notifiers_resend_ms(ns, 2) == 60000); /* resend_interval default 1m */
    /* route timings: set ones win, the rest come from slo: */
    CHECK(rt->routes[0].group_wait_ms == 0 && rt->routes[0].group_interval_ms == 300000);
    CHECK(rt->routes[1].group_wait_ms == 30000 && rt->routes[1].group_interval_ms == 600000);
    CHECK(rt->routes[1].repeat_interval_ms == 12 * 3600000LL);
    CHECK(rt->routes[0].notifiers == ((1ull << 0) | (1ull << 2)));
    CHECK(rt->routes[1].notifiers == (1ull << 1));

    slo_route_labels_t page = alert("page", "sre", "api-a");
    slo_route_labels_t ticket = alert("ticket", "sre", "api-a");
    slo_route_labels_t other_team = alert("ticket", "web", "api-a");
    slo_route_labels_t info = alert("info", NULL, "api-a");
    /* first match wins: a page stops at route 0 although route 2 matches too */
    CHECK(slo_route_match(rt, &page) == 1u);
    /* continue: the ticket goes to route 1 and on to route 2 */
    CHECK(slo_route_match(rt, &ticket) == ((1u << 1) | (1u << 2)));
    CHECK(slo_route_match(rt, &other_team) == (1u << 2));
    slo_route_labels_t none = {0};
    slo_route_label_set(&none, "alertname", "Other");
    CHECK(slo_route_match(rt, &none) == 0);
    CHECK(slo_route_match(rt, &info) == (1u << 2));

    /* inhibition: a firing page mutes the ticket of the same sloth_id only */
    slo_route_labels_t ticket_b = alert("ticket", "sre", "api-b");
    CHECK(slo_route_is_source(rt, &page));
    CHECK(!slo_route_is_source(rt, &ticket));
    CHECK(slo_route_inhibits(rt, &page, &ticket));
    CHECK(!slo_route_inhibits(rt, &page, &ticket_b));
    CHECK(!slo_route_inhibits(rt, &ticket, &page));
    CHECK(!slo_route_inhibits(rt, &page, &info));
    char d[256];
    slo_route_describe(rt, 1, d, sizeof(d));
    CHECK_STR(d, "slo.routes[1] {severity=~\"ticket|slack\", team=\"sre\"}");
    slo_route_destroy(rt);
    slo_notifiers_destroy(ns);

    /* no routes: one implicit route to every notifier with the slo: timings */
    rc = load(NOTIFIERS, &ns, &rt, errs, sizeof(errs));
    CHECK(rc == 0);
    REQUIRE(rt);
    CHECK(rt->n == 1 && rt->implicit && rt->routes[0].notifiers == 7);
    CHECK(rt->routes[0].group_wait_ms == 30000 && rt->routes[0].repeat_interval_ms == 14400000);
    CHECK(slo_route_match(rt, &none) == 1u);
    slo_route_destroy(rt);
    slo_notifiers_destroy(ns);
}

UNIT_TEST(route_config_errors_carry_lines)
{
    slo_notifiers_t *ns;
    slo_routes_t *rt;
    char errs[4096];
    int rc = load(NOTIFIERS "  routes:\n"                            /* 6 */
                            "    - matchers:\n"                      /* 7 */
                            "        - 'severity=\"page\"'\n"        /* 8 */
                            "        - 'severity=~\"(\"'\n"          /* 9 */
                            "      notifiers: [oncall, pagerduty]\n" /* 10 */
                            "    - matchers: ['sev']\n"              /* 11 */
                            "      notifiers: [am]\n"                /* 12 */
                            "      group_wait: soon\n"               /* 13 */
                            "  inhibit:\n"                           /* 14 */
                            "    - source_matchers: ['a=\"b\"']\n"   /* 15 */
                            "      target_matchers: ['x!!\"y\"']\n", /* 16 */
                  &ns, &rt, errs, sizeof(errs));
    CHECK(rc != 0);
    CHECK(rt == NULL);
    CHECK(strstr(errs, "routes.yaml:9: slo.routes[0]: matchers[1]: bad matcher") != NULL);
    CHECK(strstr(errs, "routes.yaml:10: slo.routes[0]: notifiers[1]: unknown notifier "
                       "\"pagerduty\"") != NULL);
    CHECK(strstr(errs, "routes.yaml:13: slo.routes[1].group_wait") != NULL);
    CHECK(strstr(errs, "routes.yaml:16: slo.inhibit[0]: target_matchers[0]: bad matcher") != NULL);
    if (!strstr(errs, "routes.yaml:9:")) {
        fprintf(stderr, "%s", errs);
    }
    slo_notifiers_destroy(ns);
    /* a duplicate notifier name is refused (routes name notifiers) */
    rc = load("slo:\n"
              "  notifiers:\n"
              "    - {name: a, type: webhook, url: http://127.0.0.1:1/a}\n"
              "    - {name: a, type: webhook, url: http://127.0.0.1:1/b}\n",
              &ns, &rt, errs, sizeof(errs));
    CHECK(rc != 0);
    CHECK(strstr(errs, "routes.yaml:4: slo.notifiers[1].name") != NULL);
    slo_notifiers_destroy(ns);
}

static int http(slo_silences_t *s, const char *method, const char *path, const char *body,
                int64_t now, json_t **out)
{
    char *o = NULL;
    size_t ol = 0;
    const char *ct = NULL;
    int st = slo_silence_http(s, method, path, body, body ? strlen(body) : 0, now, &o, &ol, &ct);
    *out = o && !strcmp(ct, "application/json") ? json_loadb(o, ol, 0, NULL) : NULL;
    free(o);
    return st;
}

UNIT_TEST(silences_api_match_and_persistence)
{
    char dir[] = "/tmp/meltp-sil-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/silences.json", dir);
    const int64_t now = 1800000000000LL; /* 2027-01-15T08:00:00Z */
    slo_silences_t *s = slo_silence_create(path);
    REQUIRE(s);
    json_t *j;
    /* bad input: each a 400 with the reason, nothing stored */
    CHECK(http(s, "POST", "/api/v1/silences", "{", now, &j) == 400);
    CHECK(http(s, "POST", "/api/v1/silences",
               "{\"matchers\":[],\"endsAt\":\"2027-01-15T10:00:00Z\",\"createdBy\":\"a\","
               "\"comment\":\"c\"}",
               now, &j) == 400);
    CHECK(http(s, "POST", "/api/v1/silences",
               "{\"matchers\":[{\"name\":\"a\",\"value\":\".*\",\"isRegex\":true}],"
               "\"endsAt\":\"2027-01-15T10:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
               now, &j) == 400); /* matches every alert */
    CHECK(http(s, "POST", "/api/v1/silences",
               "{\"matchers\":[{\"name\":\"a\",\"value\":\"(\",\"isRegex\":true}],"
               "\"endsAt\":\"2027-01-15T10:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
               now, &j) == 400);
    CHECK(http(s, "POST", "/api/v1/silences",
               "{\"matchers\":[{\"name\":\"a\",\"value\":\"b\",\"isRegex\":false}],"
               "\"endsAt\":\"2027-01-15T07:00:00Z\",\"createdBy\":\"a\",\"comment\":\"c\"}",
               now, &j) == 400); /* ends in the past */
    CHECK(http(s, "POST", "/api/v1/silences",
               "{\"matchers\":[{\"name\":\"a\",\"value\":\"b\",\"isRegex\":false}],"
               "\"endsAt\":\"2027-01-15T10:00:00Z\",\"comment\":\"c\"}",
               now, &j) == 400); /* no createdBy */
    CHECK(http(s, "GET", "/api/v1/silences", NULL, now, &j) == 200);
    CHECK(json_array_size(j) == 0);
    json_decref(j);
    /* a silence for the api SLO's tickets, with an offset time zone */
    CHECK(http(s, "POST", "/api/v1/silences",
               "{\"matchers\":[{\"name\":\"sloth_id\",\"value\":\"api-availability\","
               "\"isRegex\":false,\"isEqual\":true},{\"name\":\"severity\",\"value\":\"page\","
               "\"isRegex\":false,\"isEqual\":false}],\"startsAt\":\"2027-01-15T09:00:00+01:00\","
               "\"endsAt\":\"2027-01-15T10:00:00.500+01:00\",\"createdBy\":\"sre\","
               "\"comment\":\"chaos drill\"}",
               now, &j) == 200);
    const char *id = json_string_value(json_object_get(j, "silenceID"));
    REQUIRE(id && strlen(id) == 36);
    char sid[SLO_SILENCE_ID_LEN];
    snprintf(sid, sizeof(sid), "%s", id);
    json_decref(j);
    slo_route_labels_t ticket = alert("ticket", "sre", "api-availability");
    slo_route_labels_t page = alert("page", "sre", "api-availability");
    slo_route_labels_t other = alert("ticket", "sre", "web-availability");
    char ids[2][SLO_SILENCE_ID_LEN];
    CHECK(slo_silence_match(s, &ticket, now, ids, 2) == 1);
    CHECK_STR(ids[0], sid);
    CHECK(slo_silence_match(s, &page, now, ids, 2) == 0);
    CHECK(slo_silence_match(s, &other, now, ids, 2) == 0);
    CHECK(slo_silence_match(s, &ticket, now + 3601000, ids, 2) == 0); /* ended at 09:00:00.5Z */
    CHECK(slo_silence_active(s, now) == 1);
    /* the list in Alertmanager's shape */
    CHECK(http(s, "GET", "/api/v1/silences", NULL, now, &j) == 200);
    REQUIRE(json_array_size(j) == 1);
    json_t *x = json_array_get(j, 0);
    CHECK_STR(json_string_value(json_object_get(x, "id")), sid);
    CHECK_STR(json_string_value(json_object_get(json_object_get(x, "status"), "state")), "active");
    CHECK_STR(json_string_value(json_object_get(x, "endsAt")), "2027-01-15T09:00:00.500Z");
    CHECK_STR(json_string_value(json_object_get(x, "createdBy")), "sre");
    CHECK_STR(json_string_value(json_object_get(x, "comment")), "chaos drill");
    json_t *m1 = json_array_get(json_object_get(x, "matchers"), 1);
    CHECK_STR(json_string_value(json_object_get(m1, "name")), "severity");
    CHECK(json_is_false(json_object_get(m1, "isEqual")));
    CHECK(json_is_false(json_object_get(m1, "isRegex")));
    json_decref(j);
    /* persisted: a new set on the same file has it */
    slo_silence_destroy(s);
    s = slo_silence_create(path);
    REQUIRE(s);
    CHECK(slo_silence_match(s, &ticket, now, ids, 2) == 1);
    char p2[128];
    snprintf(p2, sizeof(p2), "/api/v1/silences/%s", sid);
    CHECK(http(s, "GET", p2, NULL, now, &j) == 200);
    CHECK_STR(json_string_value(json_object_get(j, "id")), sid);
    json_decref(j);
    /* DELETE expires it (kept in the list as expired), and that is saved too */
    CHECK(http(s, "DELETE", "/api/v1/silences/nope", NULL, now, &j) == 404);
    CHECK(http(s, "DELETE", p2, NULL, now + 1000, &j) == 200);
    json_decref(j);
    CHECK(slo_silence_match(s, &ticket, now + 2000, ids, 2) == 0);
    slo_silence_destroy(s);
    s = slo_silence_create(path);
    CHECK(http(s, "GET", "/api/v1/silences", NULL, now + 2000, &j) == 200);
    CHECK_STR(json_string_value(
                  json_object_get(json_object_get(json_array_get(j, 0), "status"), "state")),
              "expired");
    json_decref(j);
    CHECK(http(s, "PUT", "/api/v1/silences", "{}", now, &j) == 405);
    CHECK(http(s, "GET", "/api/v1/silencesX", NULL, now, &j) == 404);
    slo_silence_destroy(s);
    unlink(path);
    rmdir(dir);
}
