/*
 * test_slo_notify.c - payload shapes and limits of slo/notify.c: Slack (attachment with
 * blocks + text fallback, block and section limits), Teams Adaptive Card 1.4 envelope under
 * 20 KB even with oversized input, legacy MessageCard, Alertmanager v4 webhook.
 */
#include "unit.h"
#include "notify.h"

#include <jansson.h>
#include <stdlib.h>

/* the builder runs before *lenp is read */
#define parse(call, len)    \
    ({                      \
        char *s_ = (call);  \
        parse_(s_, &(len)); \
    })

static json_t *parse_(char *s, const size_t *lenp)
{
    size_t len = *lenp;
    json_error_t err;
    json_t *j = s ? json_loadb(s, len, 0, &err) : NULL;
    free(s);
    return j;
}

UNIT_TEST(slack_payload_shape_and_limits)
{
    slo_alert_msg_t m;
    slo_notify_sample(&m);
    memset(m.slo_id, 'x', sizeof(m.slo_id) - 1); /* long strings get cut, not rejected */
    size_t len;
    json_t *j = parse(slo_notify_slack_json(&m, &len), len);
    REQUIRE(j);
    CHECK(json_is_string(json_object_get(j, "text")));
    json_t *att = json_array_get(json_object_get(j, "attachments"), 0);
    REQUIRE(att);
    CHECK_STR(json_string_value(json_object_get(att, "color")), "danger");
    json_t *blocks = json_object_get(att, "blocks");
    REQUIRE(json_is_array(blocks));
    CHECK(json_array_size(blocks) <= SLO_SLACK_MAX_BLOCKS);
    CHECK_STR(json_string_value(json_object_get(json_array_get(blocks, 0), "type")), "header");
    const char *hdr = json_string_value(
        json_object_get(json_object_get(json_array_get(blocks, 0), "text"), "text"));
    CHECK(hdr && strlen(hdr) <= SLO_SLACK_MAX_HEADER);
    size_t i;
    json_t *b;
    int has_fields = 0, has_trace = 0, has_change = 0, has_links = 0;
    json_array_foreach(blocks, i, b)
    {
        json_t *t = json_object_get(json_object_get(b, "text"), "text");
        if (t) {
            CHECK(strlen(json_string_value(t)) <= SLO_SLACK_MAX_SECTION);
            has_trace |= strstr(json_string_value(t), m.traces[0]) != NULL;
            has_change |= strstr(json_string_value(t), "deployment") != NULL;
        }
        json_t *f = json_object_get(b, "fields");
        if (f) {
            has_fields = 1;
            CHECK(json_array_size(f) <= 10);
        }
        if (!strcmp(json_string_value(json_object_get(b, "type")), "context")) {
            has_links = 1;
        }
    }
    CHECK(has_fields && has_trace && has_change && has_links);
    json_decref(j);
    /* resolved notices are green */
    slo_notify_sample(&m);
    m.resolved = true;
    m.ends_ms = m.starts_ms + 600000;
    m.budget_spent = 0.02;
    j = parse(slo_notify_slack_json(&m, &len), len);
    REQUIRE(j);
    att = json_array_get(json_object_get(j, "attachments"), 0);
    CHECK_STR(json_string_value(json_object_get(att, "color")), "good");
    CHECK(strstr(json_string_value(json_object_get(j, "text")), "2.00%") != NULL);
    json_decref(j);
}

UNIT_TEST(teams_adaptive_card_envelope_under_20kb)
{
    slo_alert_msg_t m;
    slo_notify_sample(&m);
    size_t len;
    json_t *j = parse(slo_notify_teams_json(&m, &len), len);
    REQUIRE(j);
    CHECK(len < SLO_TEAMS_MAX_BYTES);
    CHECK_STR(json_string_value(json_object_get(j, "type")), "message");
    json_t *att = json_array_get(json_object_get(j, "attachments"), 0);
    REQUIRE(att);
    CHECK_STR(json_string_value(json_object_get(att, "contentType")),
              "application/vnd.microsoft.card.adaptive");
    CHECK(json_is_null(json_object_get(att, "contentUrl")));
    json_t *card = json_object_get(att, "content");
    CHECK_STR(json_string_value(json_object_get(card, "type")), "AdaptiveCard");
    CHECK_STR(json_string_value(json_object_get(card, "version")), "1.4");
    CHECK(json_is_array(json_object_get(card, "body")));
    CHECK(json_array_size(json_object_get(card, "actions")) == 2);
    json_decref(j);
    /* oversized input still fits: every text field at its maximum */
    memset(m.slo_id, 'a', sizeof(m.slo_id) - 1);
    memset(m.service, 'b', sizeof(m.service) - 1);
    memset(m.runbook_url, 'c', sizeof(m.runbook_url) - 1);
    memset(m.dashboard_url, 'd', sizeof(m.dashboard_url) - 1);
    m.nchanges = SLO_MSG_MAX_CHANGES;
    for (int i = 0; i < SLO_MSG_MAX_CHANGES; i++) {
        memset(m.changes[i].detail, 'e', sizeof(m.changes[i].detail) - 1);
        m.changes[i].detail[sizeof(m.changes[i].detail) - 1] = 0;
    }
    j = parse(slo_notify_teams_json(&m, &len), len);
    REQUIRE(j);
    CHECK(len < SLO_TEAMS_MAX_BYTES);
    json_decref(j);
}

UNIT_TEST(teams_legacy_messagecard)
{
    CHECK(slo_notify_teams_is_legacy("https://acme.webhook.office.com/webhookb2/x"));
    CHECK(!slo_notify_teams_is_legacy("https://prod-1.westeurope.logic.azure.com/workflows/x"));
    slo_alert_msg_t m;
    slo_notify_sample(&m);
    size_t len;
    json_t *j = parse(slo_notify_messagecard_json(&m, &len), len);
    REQUIRE(j);
    CHECK_STR(json_string_value(json_object_get(j, "@type")), "MessageCard");
    CHECK_STR(json_string_value(json_object_get(j, "themeColor")), "8C1A1A");
    CHECK(json_is_string(json_object_get(j, "summary")));
    CHECK(json_array_size(json_object_get(j, "potentialAction")) == 2);
    json_decref(j);
}

UNIT_TEST(webhook_alertmanager_v4)
{
    slo_alert_msg_t m;
    slo_notify_sample(&m);
    size_t len;
    json_t *j = parse(slo_notify_webhook_json(&m, &len), len);
    REQUIRE(j);
    CHECK_STR(json_string_value(json_object_get(j, "version")), "4");
    CHECK_STR(json_string_value(json_object_get(j, "status")), "firing");
    const char *keys[] = {"groupKey",     "truncatedAlerts",   "receiver",    "groupLabels",
                          "commonLabels", "commonAnnotations", "externalURL", "alerts"};
    for (size_t i = 0; i < MT_ARRAY_LEN(keys); i++) {
        CHECK(json_object_get(j, keys[i]) != NULL);
    }
    json_t *a = json_array_get(json_object_get(j, "alerts"), 0);
    REQUIRE(a);
    CHECK_STR(json_string_value(json_object_get(a, "endsAt")), "0001-01-01T00:00:00Z");
    CHECK_STR(json_string_value(json_object_get(a, "startsAt")), "2023-11-14T22:13:20.000Z");
    json_t *l = json_object_get(a, "labels");
    CHECK_STR(json_string_value(json_object_get(l, "sloth_id")), "checkout-availability");
    CHECK_STR(json_string_value(json_object_get(l, "sloth_severity")), "page");
    CHECK(strlen(json_string_value(json_object_get(a, "fingerprint"))) == 16);
    json_decref(j);
    m.resolved = true;
    m.ends_ms = m.starts_ms + 1000;
    j = parse(slo_notify_webhook_json(&m, &len), len);
    REQUIRE(j);
    a = json_array_get(json_object_get(j, "alerts"), 0);
    CHECK_STR(json_string_value(json_object_get(a, "status")), "resolved");
    CHECK_STR(json_string_value(json_object_get(a, "endsAt")), "2023-11-14T22:13:21.000Z");
    CHECK(json_object_get(json_object_get(a, "annotations"), "budget_spent") != NULL);
    json_decref(j);
}

UNIT_TEST(notifier_config_errors_hide_urls)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    const char *y = "n:\n  - {type: slack, webhook_url: 'ftp://hooks.example/T0/SECRET'}\n"
                    "  - {type: pager, url: 'http://x/SECRET2'}\n  - {type: teams}\n";
    cfg_doc_t *doc = cfg_load_string("t.yaml", y, strlen(y), &eb);
    REQUIRE(doc);
    cfg_ctx_t c;
    cfg_ctx_init(&c, doc->file);
    slo_notifiers_t *n = slo_notifiers_load(cfg_map_get(doc->root, "n"), "slo.notifiers", &c);
    CHECK(n == NULL);
    CHECK(c.nerr == 3);
    for (size_t i = 0; i < c.nerr; i++) {
        CHECK(strstr(c.errs[i], "SECRET") == NULL);
    }
    cfg_ctx_fini(&c);
    cfg_doc_destroy(doc);
}
