/*
 * notify.c - SLO alert notifiers (see notify.h): payload builders for Slack, Teams (Adaptive
 * Card and legacy MessageCard) and the Alertmanager v4 webhook, one sender thread with a
 * bounded queue per notifier, retries with exponential backoff and Retry-After, and
 * `meltp slo test-notify`. URLs are secrets: logs name a notifier by "<type>/<index>" only.
 */
#include "notify.h"
#include "telemetry.h"
#include "eval.h"
#include "httpc.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NOTIFY_QUEUE_CAP          64 /* messages waiting per notifier; more are dropped */
#define NOTIFY_MAX_BACKOFF_MS     60000
#define NOTIFY_MAX_RETRY_AFTER_MS 300000

/* ---- formatting helpers ----------------------------------------------------------------- */

static void fmt_pct(char *b, size_t n, double ratio)
{
    snprintf(b, n, "%.2f%%", ratio * 100.0);
}

static void fmt_secs(char *b, size_t n, double s)
{
    if (s < 0) {
        snprintf(b, n, "not burning");
    } else if (s < 3600) {
        snprintf(b, n, "%.0fm", s / 60.0);
    } else if (s < 86400 * 2) {
        snprintf(b, n, "%.1fh", s / 3600.0);
    } else {
        snprintf(b, n, "%.1fd", s / 86400.0);
    }
}

static void fmt_time(char *b, size_t n, int64_t ms)
{
    if (ms <= 0) {
        snprintf(b, n, "0001-01-01T00:00:00Z");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(b, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + k, n - k, ".%03dZ", (int)(ms % 1000));
}

void slo_notify_fmt_time(char *b, size_t n, int64_t ms)
{
    fmt_time(b, n, ms);
}

/* Copies at most max bytes of s, cutting on a UTF-8 boundary, "…" when cut. */
static char *trunc_utf8(const char *s, size_t max)
{
    size_t l = strlen(s);
    if (l <= max) {
        return strdup(s);
    }
    size_t k = max > 3 ? max - 3 : 0;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) {
        k--;
    }
    char *o = malloc(k + 4);
    if (o) {
        memcpy(o, s, k);
        memcpy(o + k, "\xE2\x80\xA6", 4);
    }
    return o;
}

static json_t *jstr_trunc(const char *s, size_t max)
{
    char *t = trunc_utf8(s, max);
    json_t *j = t ? json_string(t) : NULL;
    free(t);
    return j ? j : json_string("");
}

static void burn_text(const slo_alert_msg_t *m, char *b, size_t n)
{
    size_t k = 0;
    b[0] = 0;
    for (int i = 0; i < m->nwin && k + 1 < n; i++) {
        k += (size_t)snprintf(b + k, n - k, "%s%s: %.1fx", i ? ", " : "", m->win[i].name,
                              m->win[i].burn_rate);
    }
    if (!m->nwin) {
        snprintf(b, n, "-");
    }
}

static void title_text(const slo_alert_msg_t *m, char *b, size_t n)
{
    if (m->resolved) {
        snprintf(b, n, "[RESOLVED] %s / %s: SLO error budget burn is over", m->service, m->slo);
    } else {
        snprintf(b, n, "[FIRING:%s] %s / %s: SLO error budget is burning too fast", m->severity,
                 m->service, m->slo);
    }
}

static void summary_text(const slo_alert_msg_t *m, char *b, size_t n)
{
    char burn[256], rem[32], tte[32], spent[32], dur[32];
    burn_text(m, burn, sizeof(burn));
    fmt_pct(rem, sizeof(rem), m->budget_remaining);
    fmt_secs(tte, sizeof(tte), m->tte_s);
    if (m->resolved) {
        fmt_pct(spent, sizeof(spent), m->budget_spent);
        fmt_secs(dur, sizeof(dur), (double)(m->ends_ms - m->starts_ms) / 1000.0);
        snprintf(b, n,
                 "SLO %s (service %s) recovered after %s; the incident spent %s of the "
                 "error budget, %s remains.",
                 m->slo_id, m->service, dur, spent, rem);
    } else {
        snprintf(b, n,
                 "SLO %s (service %s, objective %.4g%%, severity %s): burn rate %s; "
                 "budget remaining %s; exhausted in %s at this rate.",
                 m->slo_id, m->service, m->objective * 100.0, m->severity, burn, rem, tte);
    }
}

static void traces_text(const slo_alert_msg_t *m, char *b, size_t n, const char *sep, const char *q)
{
    size_t k = 0;
    b[0] = 0;
    for (int i = 0; i < m->ntraces && k + 1 < n; i++) {
        k += (size_t)snprintf(b + k, n - k, "%s%s%s%s", i ? sep : "", q, m->traces[i], q);
    }
}

static void changes_text(const slo_alert_msg_t *m, char *b, size_t n, const char *bullet)
{
    size_t k = 0;
    b[0] = 0;
    for (int i = 0; i < m->nchanges && k + 1 < n; i++) {
        char t[40];
        fmt_time(t, sizeof(t), m->changes[i].t_ms);
        k += (size_t)snprintf(b + k, n - k, "%s%s %s%s%s\n", bullet, t, m->changes[i].name,
                              m->changes[i].detail[0] ? ": " : "", m->changes[i].detail);
    }
}

static char *dump(json_t *j, size_t *len)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s) {
        *len = strlen(s);
    }
    return s;
}

/* ---- Slack ------------------------------------------------------------------------------ */

static json_t *slack_field(const char *title, const char *value)
{
    char b[2100];
    snprintf(b, sizeof(b), "*%s*\n%s", title, value);
    return json_pack("{s:s, s:o}", "type", "mrkdwn", "text", jstr_trunc(b, 2000));
}

char *slo_notify_slack_json(const slo_alert_msg_t *m, size_t *len)
{
    char title[512], summary[1024], burn[256], rem[32], tte[32], obj[32], buf[2048];
    title_text(m, title, sizeof(title));
    summary_text(m, summary, sizeof(summary));
    burn_text(m, burn, sizeof(burn));
    fmt_pct(rem, sizeof(rem), m->budget_remaining);
    fmt_secs(tte, sizeof(tte), m->tte_s);
    snprintf(obj, sizeof(obj), "%.4g%%", m->objective * 100.0);
    json_t *blocks = json_array();
    json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:o, s:b}}", "type", "header", "text",
                                            "type", "plain_text", "text",
                                            jstr_trunc(title, SLO_SLACK_MAX_HEADER), "emoji", 1));
    json_array_append_new(blocks,
                          json_pack("{s:s, s:{s:s, s:o}}", "type", "section", "text", "type",
                                    "mrkdwn", "text", jstr_trunc(summary, SLO_SLACK_MAX_SECTION)));
    json_t *fields = json_array(); /* at most 10 per section */
    json_array_append_new(fields, slack_field("SLO", m->slo_id));
    json_array_append_new(fields, slack_field("Service", m->service));
    json_array_append_new(fields, slack_field("Severity", m->severity));
    json_array_append_new(fields, slack_field("Objective", obj));
    json_array_append_new(fields, slack_field("Burn rate", burn));
    json_array_append_new(fields, slack_field("Budget remaining", rem));
    json_array_append_new(fields, slack_field("Time to exhaustion", tte));
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));
    if (m->ntraces) {
        char t[256];
        traces_text(m, t, sizeof(t), "\n", "`");
        snprintf(buf, sizeof(buf), "*Recent failing traces*\n%s", t);
        json_array_append_new(blocks,
                              json_pack("{s:s, s:{s:s, s:o}}", "type", "section", "text", "type",
                                        "mrkdwn", "text", jstr_trunc(buf, SLO_SLACK_MAX_SECTION)));
    }
    if (m->nchanges) {
        char t[1024];
        changes_text(m, t, sizeof(t), "\xE2\x80\xA2 ");
        snprintf(buf, sizeof(buf), "*Recent changes*\n%s", t);
        json_array_append_new(blocks,
                              json_pack("{s:s, s:{s:s, s:o}}", "type", "section", "text", "type",
                                        "mrkdwn", "text", jstr_trunc(buf, SLO_SLACK_MAX_SECTION)));
    }
    if (m->runbook_url[0] || m->dashboard_url[0]) {
        snprintf(buf, sizeof(buf), "%s%s%s%s%s%s%s", m->runbook_url[0] ? "<" : "", m->runbook_url,
                 m->runbook_url[0] ? "|Runbook>" : "",
                 m->runbook_url[0] && m->dashboard_url[0] ? "  \xC2\xB7  " : "",
                 m->dashboard_url[0] ? "<" : "", m->dashboard_url,
                 m->dashboard_url[0] ? "|Dashboard>" : "");
        json_array_append_new(blocks,
                              json_pack("{s:s, s:[{s:s, s:o}]}", "type", "context", "elements",
                                        "type", "mrkdwn", "text", jstr_trunc(buf, 2000)));
    }
    const char *color = m->resolved                        ? "good"
                        : strcmp(m->severity, "page") == 0 ? "danger"
                                                           : "warning";
    snprintf(buf, sizeof(buf), "%s: %s", title, summary);
    json_t *root =
        json_pack("{s:o, s:[{s:s, s:o, s:o}]}", "text", jstr_trunc(buf, 3000), "attachments",
                  "color", color, "fallback", jstr_trunc(buf, 3000), "blocks", blocks);
    return dump(root, len);
}

/* ---- Teams ------------------------------------------------------------------------------ */

static json_t *fact(const char *k, const char *v, const char *name_key, const char *value_key)
{
    return json_pack("{s:s, s:o}", name_key, k, value_key, jstr_trunc(v, 1000));
}

static json_t *teams_card(const slo_alert_msg_t *m, int with_extras, size_t text_max)
{
    char title[512], summary[1024], burn[256], rem[32], tte[32], obj[32];
    title_text(m, title, sizeof(title));
    summary_text(m, summary, sizeof(summary));
    burn_text(m, burn, sizeof(burn));
    fmt_pct(rem, sizeof(rem), m->budget_remaining);
    fmt_secs(tte, sizeof(tte), m->tte_s);
    snprintf(obj, sizeof(obj), "%.4g%%", m->objective * 100.0);
    const char *color = m->resolved                        ? "Good"
                        : strcmp(m->severity, "page") == 0 ? "Attention"
                                                           : "Warning";
    json_t *body = json_array();
    json_array_append_new(body,
                          json_pack("{s:s, s:o, s:s, s:s, s:b, s:s, s:s}", "type", "TextBlock",
                                    "text", jstr_trunc(title, text_max), "weight", "Bolder", "size",
                                    "Medium", "wrap", 1, "color", color, "style", "heading"));
    json_array_append_new(body, json_pack("{s:s, s:o, s:b}", "type", "TextBlock", "text",
                                          jstr_trunc(summary, text_max), "wrap", 1));
    json_t *facts = json_array();
    json_array_append_new(facts, fact("SLO", m->slo_id, "title", "value"));
    json_array_append_new(facts, fact("Service", m->service, "title", "value"));
    json_array_append_new(facts, fact("Severity", m->severity, "title", "value"));
    json_array_append_new(facts, fact("Objective", obj, "title", "value"));
    json_array_append_new(facts, fact("Burn rate", burn, "title", "value"));
    json_array_append_new(facts, fact("Budget remaining", rem, "title", "value"));
    json_array_append_new(facts, fact("Time to exhaustion", tte, "title", "value"));
    json_array_append_new(body, json_pack("{s:s, s:o}", "type", "FactSet", "facts", facts));
    if (with_extras && m->ntraces) {
        char t[256], b[320];
        traces_text(m, t, sizeof(t), ", ", "");
        snprintf(b, sizeof(b), "**Recent failing traces:** %s", t);
        json_array_append_new(body, json_pack("{s:s, s:o, s:b}", "type", "TextBlock", "text",
                                              jstr_trunc(b, text_max), "wrap", 1));
    }
    if (with_extras && m->nchanges) {
        char t[1024], b[1100];
        changes_text(m, t, sizeof(t), "- ");
        snprintf(b, sizeof(b), "**Recent changes:**\n\n%s", t);
        json_array_append_new(body, json_pack("{s:s, s:o, s:b}", "type", "TextBlock", "text",
                                              jstr_trunc(b, text_max), "wrap", 1));
    }
    json_t *actions = json_array();
    if (m->runbook_url[0]) {
        json_array_append_new(actions, json_pack("{s:s, s:s, s:s}", "type", "Action.OpenUrl",
                                                 "title", "Runbook", "url", m->runbook_url));
    }
    if (m->dashboard_url[0]) {
        json_array_append_new(actions, json_pack("{s:s, s:s, s:s}", "type", "Action.OpenUrl",
                                                 "title", "Dashboard", "url", m->dashboard_url));
    }
    json_t *card =
        json_pack("{s:s, s:s, s:s, s:o, s:{s:s}}", "$schema",
                  "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard",
                  "version", "1.4", "body", body, "msteams", "width", "Full");
    if (json_array_size(actions)) {
        json_object_set_new(card, "actions", actions);
    } else {
        json_decref(actions);
    }
    return json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments", "contentType",
                     "application/vnd.microsoft.card.adaptive", "contentUrl", "content", card);
}

char *slo_notify_teams_json(const slo_alert_msg_t *m, size_t *len)
{
    /* shrink until under the limit: drop the extras, then shorten every text */
    static const size_t text_max[] = {4000, 1000, 200};
    for (int extras = 1; extras >= 0; extras--) {
        for (size_t k = 0; k < MT_ARRAY_LEN(text_max); k++) {
            char *s = dump(teams_card(m, extras, text_max[k]), len);
            if (!s || *len < SLO_TEAMS_MAX_BYTES) {
                return s;
            }
            free(s);
        }
    }
    return NULL;
}

char *slo_notify_messagecard_json(const slo_alert_msg_t *m, size_t *len)
{
    char title[512], summary[1024], burn[256], rem[32], tte[32];
    title_text(m, title, sizeof(title));
    summary_text(m, summary, sizeof(summary));
    burn_text(m, burn, sizeof(burn));
    fmt_pct(rem, sizeof(rem), m->budget_remaining);
    fmt_secs(tte, sizeof(tte), m->tte_s);
    json_t *facts = json_array();
    json_array_append_new(facts, fact("SLO", m->slo_id, "name", "value"));
    json_array_append_new(facts, fact("Service", m->service, "name", "value"));
    json_array_append_new(facts, fact("Severity", m->severity, "name", "value"));
    json_array_append_new(facts, fact("Burn rate", burn, "name", "value"));
    json_array_append_new(facts, fact("Budget remaining", rem, "name", "value"));
    json_array_append_new(facts, fact("Time to exhaustion", tte, "name", "value"));
    if (m->ntraces) {
        char t[256];
        traces_text(m, t, sizeof(t), ", ", "");
        json_array_append_new(facts, fact("Recent failing traces", t, "name", "value"));
    }
    if (m->nchanges) {
        char t[1024];
        changes_text(m, t, sizeof(t), "");
        json_array_append_new(facts, fact("Recent changes", t, "name", "value"));
    }
    json_t *actions = json_array();
    if (m->runbook_url[0]) {
        json_array_append_new(actions, json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "@type", "OpenUri",
                                                 "name", "Runbook", "targets", "os", "default",
                                                 "uri", m->runbook_url));
    }
    if (m->dashboard_url[0]) {
        json_array_append_new(actions, json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "@type", "OpenUri",
                                                 "name", "Dashboard", "targets", "os", "default",
                                                 "uri", m->dashboard_url));
    }
    const char *color = m->resolved                        ? "2DC72D"
                        : strcmp(m->severity, "page") == 0 ? "8C1A1A"
                                                           : "FFA500";
    json_t *root = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:[{s:o, s:o, s:b}], s:o}", "@type",
                             "MessageCard", "@context", "http://schema.org/extensions",
                             "themeColor", color, "summary", jstr_trunc(title, 500), "title",
                             jstr_trunc(title, 500), "text", jstr_trunc(summary, 3000), "sections",
                             "activityTitle", jstr_trunc(m->slo_id, 500), "facts", facts,
                             "markdown", 1, "potentialAction", actions);
    return dump(root, len);
}

/* ---- Alertmanager v4 webhook ------------------------------------------------------------ */

static json_t *msg_labels(const slo_alert_msg_t *m)
{
    json_t *l = json_object();
    json_object_set_new(l, "alertname",
                        json_string(m->alert_name[0] ? m->alert_name : "SLOErrorBudgetBurn"));
    json_object_set_new(l, "sloth_id", json_string(m->slo_id));
    json_object_set_new(l, "sloth_service", json_string(m->service));
    json_object_set_new(l, "sloth_slo", json_string(m->slo));
    json_object_set_new(l, "sloth_severity", json_string(m->severity));
    json_object_set_new(l, "burnrate_tier", json_string(m->tier));
    /* what routes match on: the tier's severity unless its labels set one */
    json_object_set_new(l, "severity", json_string(m->severity));
    for (int i = 0; i < m->nlabels && i < SLO_MSG_MAX_LABELS; i++) {
        json_object_set_new(l, m->lk[i], json_string(m->lv[i]));
    }
    return l;
}

static json_t *msg_annotations(const slo_alert_msg_t *m)
{
    char title[512], summary[1024], burn[256], b[64];
    title_text(m, title, sizeof(title));
    summary_text(m, summary, sizeof(summary));
    burn_text(m, burn, sizeof(burn));
    json_t *a = json_object();
    json_object_set_new(a, "title", json_string(title));
    json_object_set_new(a, "summary", json_string(summary));
    json_object_set_new(a, "burn_rates", json_string(burn));
    snprintf(b, sizeof(b), "%.6g", m->budget_remaining);
    json_object_set_new(a, "budget_remaining", json_string(b));
    snprintf(b, sizeof(b), "%.0f", m->tte_s);
    json_object_set_new(a, "time_to_exhaustion_s", json_string(m->tte_s < 0 ? "" : b));
    if (m->resolved) {
        snprintf(b, sizeof(b), "%.6g", m->budget_spent);
        json_object_set_new(a, "budget_spent", json_string(b));
        snprintf(b, sizeof(b), "%.0f", (double)(m->ends_ms - m->starts_ms) / 1000.0);
        json_object_set_new(a, "duration_s", json_string(b));
    }
    if (m->runbook_url[0]) {
        json_object_set_new(a, "runbook_url", json_string(m->runbook_url));
    }
    if (m->dashboard_url[0]) {
        json_object_set_new(a, "dashboard_url", json_string(m->dashboard_url));
    }
    if (m->ntraces) {
        char t[256];
        traces_text(m, t, sizeof(t), ",", "");
        json_object_set_new(a, "trace_ids", json_string(t));
    }
    if (m->nchanges) {
        char t[1024];
        changes_text(m, t, sizeof(t), "");
        json_object_set_new(a, "change_events", json_string(t));
    }
    return a;
}

char *slo_notify_webhook_json(const slo_alert_msg_t *m, size_t *len)
{
    char starts[40], ends[40], fp[17];
    fmt_time(starts, sizeof(starts), m->starts_ms);
    fmt_time(ends, sizeof(ends), m->resolved ? m->ends_ms : 0);
    json_t *labels = msg_labels(m);
    /* fingerprint: hash of the sorted label set, as Alertmanager does */
    char *canon = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = slo_hash(SLO_HASH_INIT, canon ? canon : "", canon ? strlen(canon) : 0);
    free(canon);
    snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)h);
    json_t *ann = msg_annotations(m);
    const char *status = m->resolved ? "resolved" : "firing";
    json_t *alert = json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s}", "status", status, "labels",
                              labels, "annotations", ann, "startsAt", starts, "endsAt", ends,
                              "generatorURL", m->generator_url, "fingerprint", fp);
    json_t *group = json_pack("{s:O, s:s}", "alertname", json_object_get(labels, "alertname"),
                              "sloth_id", m->slo_id);
    json_t *root = json_pack("{s:s, s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:s, s:[o]}", "version", "4",
                             "groupKey", m->group_key, "truncatedAlerts", 0, "status", status,
                             "receiver", "meltp", "groupLabels", group, "commonLabels", labels,
                             "commonAnnotations", ann, "externalURL", "", "alerts", alert);
    return dump(root, len);
}

char *slo_notify_alertmanager_json(const slo_alert_msg_t *m, size_t *len)
{
    char starts[40], ends[40];
    fmt_time(starts, sizeof(starts), m->starts_ms);
    fmt_time(ends, sizeof(ends), m->ends_ms);
    json_t *alert = json_pack("{s:o, s:o, s:s, s:s}", "labels", msg_labels(m), "annotations",
                              msg_annotations(m), "startsAt", starts, "endsAt", ends);
    if (alert && m->generator_url[0]) {
        json_object_set_new(alert, "generatorURL", json_string(m->generator_url));
    }
    return dump(alert ? json_pack("[o]", alert) : NULL, len);
}

int slo_notify_teams_is_legacy(const char *url)
{
    return strstr(url, ".webhook.office.com/") || strstr(url, "outlook.office.com/webhook") ||
           strstr(url, "outlook.office365.com/webhook");
}

void slo_notify_sample(slo_alert_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->group_key, sizeof(m->group_key), "{}:{sloth_id=\"checkout-availability\"}");
    snprintf(m->alert_name, sizeof(m->alert_name), "CheckoutAvailabilityBurn");
    snprintf(m->slo_id, sizeof(m->slo_id), "checkout-availability");
    snprintf(m->service, sizeof(m->service), "checkout");
    snprintf(m->slo, sizeof(m->slo), "availability");
    snprintf(m->severity, sizeof(m->severity), "page");
    snprintf(m->tier, sizeof(m->tier), "page-quick");
    m->objective = 0.999;
    m->nwin = 2;
    snprintf(m->win[0].name, sizeof(m->win[0].name), "5m");
    m->win[0].burn_rate = 20.5;
    snprintf(m->win[1].name, sizeof(m->win[1].name), "1h");
    m->win[1].burn_rate = 15.1;
    m->threshold = 14.4;
    m->budget_remaining = 0.82;
    m->tte_s = 0.82 * 30 * 86400 / 20.5;
    m->starts_ms = 1700000000000LL;
    snprintf(m->runbook_url, sizeof(m->runbook_url), "https://runbooks.example.com/checkout");
    snprintf(m->dashboard_url, sizeof(m->dashboard_url), "https://grafana.example.com/d/slo");
    m->ntraces = 1;
    snprintf(m->traces[0], sizeof(m->traces[0]), "4bf92f3577b34da6a3ce929d0e0e4736");
    m->nchanges = 1;
    snprintf(m->changes[0].name, sizeof(m->changes[0].name), "deployment");
    snprintf(m->changes[0].detail, sizeof(m->changes[0].detail), "checkout v1.2.3");
    m->changes[0].t_ms = 1700000000000LL - 120000;
}

/* ---- notifiers -------------------------------------------------------------------------- */

typedef struct {
    char *type;
    char *webhook_url;
    char *url;
    char *url_file;
    char *url_from_file; /* read from url_file at load (malloc'd, secret) */
    int format;
    int64_t timeout_ms;
    int64_t max_retries;
    int64_t initial_backoff_ms;
    int send_resolved;
    char *name;
    tls_client_cfg_t tls;
    int64_t resend_ms;
    char *am_url; /* alertmanager: <url>/api/v2/alerts (malloc'd at load) */
} notifier_cfg_t;

static const cfg_field_t notifier_fields[] = {
    {"type", CFG_T_STRING, NULL, CFG_REQUIRED, offsetof(notifier_cfg_t, type), NULL,
     "slack | teams | webhook | alertmanager"},
    {"webhook_url", CFG_T_STRING, NULL, CFG_SECRET, offsetof(notifier_cfg_t, webhook_url), NULL,
     "Slack or Teams webhook URL (secret)"},
    {"url", CFG_T_STRING, NULL, CFG_SECRET, offsetof(notifier_cfg_t, url), NULL,
     "generic webhook URL (secret); also accepted for slack and teams"},
    {"url_file", CFG_T_STRING, NULL, 0, offsetof(notifier_cfg_t, url_file), NULL,
     "file holding the webhook URL (first line), e.g. a mounted Kubernetes secret"},
    {"format", CFG_T_ENUM, "auto", 0, offsetof(notifier_cfg_t, format), "auto|adaptive|messagecard",
     "teams: Adaptive Card (Workflows) or legacy MessageCard; auto "
     "picks MessageCard for *.webhook.office.com URLs"},
    {"timeout", CFG_T_DURATION, "10s", 0, offsetof(notifier_cfg_t, timeout_ms), NULL,
     "per request"},
    {"max_retries", CFG_T_INT, "5", 0, offsetof(notifier_cfg_t, max_retries), NULL,
     "retries after the first attempt (429, 5xx, transport errors)"},
    {"initial_backoff", CFG_T_DURATION, "1s", 0, offsetof(notifier_cfg_t, initial_backoff_ms), NULL,
     "first retry delay; doubles up to 60s; Retry-After wins"},
    {"send_resolved", CFG_T_BOOL, "true", 0, offsetof(notifier_cfg_t, send_resolved), NULL,
     "also notify when an alert resolves"},
    {"name", CFG_T_STRING, NULL, 0, offsetof(notifier_cfg_t, name), NULL,
     "name in logs and metrics, and in slo.routes (default <type>/<index>)"},
    {"resend_interval", CFG_T_DURATION, "1m", 0, offsetof(notifier_cfg_t, resend_ms), NULL,
     "alertmanager: post a still-firing alert again this often (as Prometheus does)"},
    TLS_CLIENT_FIELDS(notifier_cfg_t, tls),
};

typedef struct notifier {
    notifier_cfg_t cfg;
    slo_notifier_type_t type;
    const char *url; /* points into cfg */
    char label[96];
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slo_alert_msg_t *q[NOTIFY_QUEUE_CAP];
    size_t qhead, qlen;
    int stopping;
    uint64_t stop_deadline_ns;
    tm_counter_t *c_sent, *c_failed, *c_dropped, *c_retries;
} notifier_t;

struct slo_notifiers {
    notifier_t **v;
    size_t n;
};

size_t slo_notifiers_count(const slo_notifiers_t *n)
{
    return n ? n->n : 0;
}

slo_notifiers_t *slo_notifiers_load(const cfg_node_t *node, const char *path, cfg_ctx_t *c)
{
    slo_notifiers_t *ns = calloc(1, sizeof(*ns));
    if (!ns) {
        cfg_error(c, node ? node->line : 0, path, "out of memory");
        return NULL;
    }
    if (!node || node->kind == CFG_NODE_NULL) {
        return ns;
    }
    if (node->kind != CFG_NODE_SEQ) {
        cfg_error(c, node->line, path, "must be a list");
        free(ns);
        return NULL;
    }
    ns->v = calloc(node->n ? node->n : 1, sizeof(*ns->v));
    int errs = 0;
    for (size_t i = 0; ns->v && i < node->n; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s[%zu]", path, i);
        notifier_t *nt = calloc(1, sizeof(*nt));
        if (!nt) {
            errs++;
            break;
        }
        ns->v[ns->n++] = nt;
        const cfg_node_t *item = node->children[i];
        errs += cfg_apply(c, notifier_fields, MT_ARRAY_LEN(notifier_fields), item, p, &nt->cfg);
        size_t before = c->nerr;
        tls_client_cfg_check(c, item, p, &nt->cfg.tls);
        errs += (int)(c->nerr - before);
        if (!nt->cfg.type) {
            continue;
        }
        if (!strcmp(nt->cfg.type, "slack")) {
            nt->type = SLO_NT_SLACK;
        } else if (!strcmp(nt->cfg.type, "teams") || !strcmp(nt->cfg.type, "msteams")) {
            nt->type = SLO_NT_TEAMS;
        } else if (!strcmp(nt->cfg.type, "webhook")) {
            nt->type = SLO_NT_WEBHOOK;
        } else if (!strcmp(nt->cfg.type, "alertmanager")) {
            nt->type = SLO_NT_ALERTMANAGER;
        } else {
            cfg_error_key(c, item, p, "type",
                          "unknown notifier type \"%s\" (valid: slack, "
                          "teams, webhook, alertmanager)",
                          nt->cfg.type);
            errs++;
            continue;
        }
        nt->url = nt->cfg.webhook_url && *nt->cfg.webhook_url ? nt->cfg.webhook_url : nt->cfg.url;
        if ((!nt->url || !*nt->url) && nt->cfg.url_file && *nt->cfg.url_file) {
            /* the URL is a secret: read it from a file, never echo it */
            FILE *f = fopen(nt->cfg.url_file, "r");
            char line[2048];
            if (!f || !fgets(line, sizeof(line), f)) {
                cfg_error_key(c, item, p, "url_file", "cannot read \"%s\"", nt->cfg.url_file);
                if (f) {
                    fclose(f);
                }
                errs++;
                continue;
            }
            fclose(f);
            line[strcspn(line, "\r\n")] = 0;
            nt->cfg.url_from_file = strdup(line);
            nt->url = nt->cfg.url_from_file;
        }
        if (!nt->url || !*nt->url) {
            cfg_error(c, item->line, p,
                      "%s (or url_file) is required (it may be empty when an "
                      "${env:...} variable is unset)",
                      nt->type == SLO_NT_WEBHOOK || nt->type == SLO_NT_ALERTMANAGER
                          ? "url"
                          : "webhook_url");
            errs++;
            continue;
        }
        if (strncmp(nt->url, "http://", 7) != 0 && strncmp(nt->url, "https://", 8) != 0) {
            cfg_error_key(c, item, p, nt->cfg.webhook_url ? "webhook_url" : "url",
                          "must be an http:// or https:// URL (value not shown: secret)");
            errs++;
        }
        if (nt->type == SLO_NT_ALERTMANAGER) {
            /* the base URL, as in Prometheus' alertmanagers: the API path is ours to add */
            size_t ul = strlen(nt->url);
            while (ul && nt->url[ul - 1] == '/') {
                ul--;
            }
            nt->cfg.am_url = malloc(ul + sizeof("/api/v2/alerts"));
            if (!nt->cfg.am_url) {
                cfg_error(c, item->line, p, "out of memory");
                errs++;
                continue;
            }
            memcpy(nt->cfg.am_url, nt->url, ul);
            memcpy(nt->cfg.am_url + ul, "/api/v2/alerts", sizeof("/api/v2/alerts"));
            nt->url = nt->cfg.am_url;
            if (nt->cfg.resend_ms <= 0) {
                cfg_error_key(c, item, p, "resend_interval", "must be positive");
                errs++;
            }
        }
        if (nt->cfg.name && *nt->cfg.name) {
            for (size_t k = 0; k < i; k++) {
                if (ns->v[k]->cfg.name && !strcmp(ns->v[k]->cfg.name, nt->cfg.name)) {
                    cfg_error_key(c, item, p, "name", "\"%s\" is already the name of %s[%zu]",
                                  nt->cfg.name, path, k);
                    errs++;
                }
            }
            snprintf(nt->label, sizeof(nt->label), "%s", nt->cfg.name);
        } else {
            snprintf(nt->label, sizeof(nt->label), "%s/%zu", nt->cfg.type, i);
        }
    }
    if (errs || !ns->v) {
        slo_notifiers_destroy(ns);
        return NULL;
    }
    return ns;
}

static int teams_format(const notifier_t *nt)
{
    if (nt->cfg.format != SLO_TEAMS_AUTO) {
        return nt->cfg.format;
    }
    return slo_notify_teams_is_legacy(nt->url) ? SLO_TEAMS_MESSAGECARD : SLO_TEAMS_ADAPTIVE;
}

static char *payload(const notifier_t *nt, const slo_alert_msg_t *m, size_t *len)
{
    switch (nt->type) {
    case SLO_NT_SLACK:
        return slo_notify_slack_json(m, len);
    case SLO_NT_TEAMS:
        return teams_format(nt) == SLO_TEAMS_MESSAGECARD ? slo_notify_messagecard_json(m, len)
                                                         : slo_notify_teams_json(m, len);
    case SLO_NT_ALERTMANAGER:
        return slo_notify_alertmanager_json(m, len);
    default:
        return slo_notify_webhook_json(m, len);
    }
}

/* Milliseconds a notifier waits for the Retry-After value httpc collected; 0 when absent.
 * Notifiers keep their own policy: fractional seconds count, and an HTTP date means "a while"
 * (30 s) rather than the exporters' parsed date. */
static long retry_after_ms(const httpc_resp_t *r)
{
    if (!r->retry_after[0]) {
        return 0;
    }
    char *end;
    double secs = strtod(r->retry_after, &end);
    return end != r->retry_after && secs >= 0 ? (long)(secs * 1000) : 30000;
}

/* One attempt. Returns 0 success, 1 retryable, 2 permanent. *status gets the HTTP status.
 * The response body is not kept (r->max is 0): a notifier only logs the status. */
static int post_once(const notifier_t *nt, const char *body, size_t len, httpc_resp_t *r,
                     long *status, char *why, size_t whylen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, whylen, "curl init failed");
        return 1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    httpc_resp_reset(r);
    curl_easy_setopt(c, CURLOPT_URL, nt->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    httpc_setup(c, r,
                &(httpc_opts_t){
                    .timeout_ms = (long)nt->cfg.timeout_ms, .tls = &nt->cfg.tls, .url = nt->url});
    curl_easy_setopt(c, CURLOPT_USERAGENT, "meltp/" MELTP_VERSION);
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    int out;
    if (rc != CURLE_OK) {
        /* curl_easy_strerror only: CURLOPT_ERRORBUFFER texts may quote the URL */
        snprintf(why, whylen, "%s", curl_easy_strerror(rc));
        out = 1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (*status >= 200 && *status < 300) {
            out = 0;
        } else {
            snprintf(why, whylen, "HTTP %ld", *status);
            out = (*status == 429 || *status == 408 || *status >= 500) ? 1 : 2;
        }
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out;
}

/* Sleeps up to ms unless the notifier is stopping past its deadline. Returns 1 to give up. */
static int backoff_wait(notifier_t *nt, long ms)
{
    pthread_mutex_lock(&nt->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!nt->stopping) {
        if (pthread_cond_timedwait(&nt->cv, &nt->mu, &ts) != 0) {
            break;
        }
    }
    int give_up = nt->stopping && mt_now_ns() > nt->stop_deadline_ns;
    pthread_mutex_unlock(&nt->mu);
    return give_up;
}

/* Delivers with retries. Returns 0 on success. */
static int deliver(notifier_t *nt, const slo_alert_msg_t *m, int wait, FILE *out)
{
    size_t len = 0;
    char *body = payload(nt, m, &len);
    if (!body) {
        if (nt->c_failed) {
            tm_add(nt->c_failed, 1);
        }
        mt_log(MT_LOG_ERROR, "slo notifier %s: cannot build the payload", nt->label);
        return -1;
    }
    long backoff = (long)(nt->cfg.initial_backoff_ms > 0 ? nt->cfg.initial_backoff_ms : 1000);
    int rc = 2;
    long status = 0;
    char why[160] = "";
    for (int64_t attempt = 0; attempt <= nt->cfg.max_retries; attempt++) {
        httpc_resp_t r = {.max = 0};
        rc = post_once(nt, body, len, &r, &status, why, sizeof(why));
        if (rc != 1 || attempt == nt->cfg.max_retries || !wait) {
            break;
        }
        long ra = retry_after_ms(&r);
        long delay = ra > 0 ? ra : backoff;
        if (delay > NOTIFY_MAX_RETRY_AFTER_MS) {
            delay = NOTIFY_MAX_RETRY_AFTER_MS;
        }
        mt_log(MT_LOG_WARN, "slo notifier %s: %s; retry %lld/%lld in %ld ms", nt->label, why,
               (long long)attempt + 1, (long long)nt->cfg.max_retries, delay);
        if (nt->c_retries) {
            tm_add(nt->c_retries, 1);
        }
        backoff = backoff * 2 > NOTIFY_MAX_BACKOFF_MS ? NOTIFY_MAX_BACKOFF_MS : backoff * 2;
        if (backoff_wait(nt, delay)) {
            break;
        }
    }
    free(body);
    if (rc == 0) {
        if (nt->c_sent) {
            tm_add(nt->c_sent, 1);
        }
        if (out) {
            fprintf(out, "%s: delivered (HTTP %ld)%s\n", nt->label, status,
                    nt->type == SLO_NT_TEAMS ? "; Teams answers 202 before the flow runs: check "
                                               "the channel and the flow's run history"
                                             : "");
        }
        return 0;
    }
    if (nt->c_failed) {
        tm_add(nt->c_failed, 1);
    }
    mt_log(MT_LOG_ERROR, "slo notifier %s: giving up on %s notice for %s: %s", nt->label,
           m->resolved ? "resolved" : "firing", m->slo_id, why);
    if (out) {
        fprintf(out, "%s: FAILED: %s\n", nt->label, why);
    }
    return -1;
}

static void *notifier_main(void *arg)
{
    notifier_t *nt = arg;
    for (;;) {
        pthread_mutex_lock(&nt->mu);
        while (!nt->qlen && !nt->stopping) {
            pthread_cond_wait(&nt->cv, &nt->mu);
        }
        if (!nt->qlen) {
            pthread_mutex_unlock(&nt->mu);
            break;
        }
        slo_alert_msg_t *m = nt->q[nt->qhead];
        nt->qhead = (nt->qhead + 1) % NOTIFY_QUEUE_CAP;
        nt->qlen--;
        int late = nt->stopping && mt_now_ns() > nt->stop_deadline_ns;
        pthread_mutex_unlock(&nt->mu);
        if (late) {
            tm_add(nt->c_dropped, 1);
        } else {
            deliver(nt, m, 1, NULL);
        }
        free(m);
    }
    return NULL;
}

int slo_notifiers_start(slo_notifiers_t *ns, mt_errbuf_t *eb)
{
    for (size_t i = 0; i < ns->n; i++) {
        notifier_t *nt = ns->v[i];
        char labels[160];
        snprintf(labels, sizeof(labels), "notifier=\"%s\"", nt->label);
        nt->c_sent = tm_counter("meltp_slo_notifications_sent_total",
                                "SLO alert notifications delivered", labels);
        nt->c_failed = tm_counter("meltp_slo_notifications_failed_total",
                                  "SLO alert notifications given up after retries", labels);
        nt->c_dropped =
            tm_counter("meltp_slo_notifications_dropped_total",
                       "SLO alert notifications dropped (queue full or shutdown)", labels);
        nt->c_retries = tm_counter("meltp_slo_notification_retries_total",
                                   "SLO alert notification retries", labels);
        pthread_mutex_init(&nt->mu, NULL);
        pthread_cond_init(&nt->cv, NULL);
        if (pthread_create(&nt->thread, NULL, notifier_main, nt) != 0) {
            mt_failf(eb, "slo notifier %s: cannot start its thread", nt->label);
            return MT_ERR;
        }
        nt->started = 1;
        tls_client_warn(&nt->cfg.tls, nt->label);
    }
    return MT_OK;
}

int slo_notifiers_find(const slo_notifiers_t *ns, const char *name)
{
    for (size_t i = 0; ns && i < ns->n; i++) {
        if (ns->v[i]->cfg.name && !strcmp(ns->v[i]->cfg.name, name)) {
            return (int)i;
        }
    }
    return -1;
}

const char *slo_notifiers_name(const slo_notifiers_t *ns, size_t i)
{
    return ns && i < ns->n ? ns->v[i]->label : "";
}

slo_notifier_type_t slo_notifiers_type(const slo_notifiers_t *ns, size_t i)
{
    return ns && i < ns->n ? ns->v[i]->type : SLO_NT_WEBHOOK;
}

int64_t slo_notifiers_resend_ms(const slo_notifiers_t *ns, size_t i)
{
    return ns && i < ns->n ? ns->v[i]->cfg.resend_ms : 0;
}

void slo_notifiers_send_one(slo_notifiers_t *ns, size_t i, const slo_alert_msg_t *m)
{
    if (!ns || i >= ns->n) {
        return;
    }
    notifier_t *nt = ns->v[i];
    if (!nt->started || (m->resolved && !nt->cfg.send_resolved)) {
        return;
    }
    slo_alert_msg_t *c = malloc(sizeof(*c));
    pthread_mutex_lock(&nt->mu);
    if (!c || nt->qlen == NOTIFY_QUEUE_CAP || nt->stopping) {
        pthread_mutex_unlock(&nt->mu);
        free(c);
        tm_add(nt->c_dropped, 1);
        return;
    }
    *c = *m;
    nt->q[(nt->qhead + nt->qlen) % NOTIFY_QUEUE_CAP] = c;
    nt->qlen++;
    pthread_cond_signal(&nt->cv);
    pthread_mutex_unlock(&nt->mu);
}

void slo_notifiers_send(slo_notifiers_t *ns, const slo_alert_msg_t *m)
{
    for (size_t i = 0; ns && i < ns->n; i++) {
        slo_notifiers_send_one(ns, i, m);
    }
}

int slo_notifiers_send_sync(slo_notifiers_t *ns, const slo_alert_msg_t *m, FILE *out)
{
    int failed = 0;
    for (size_t i = 0; ns && i < ns->n; i++) {
        notifier_t *nt = ns->v[i];
        nt->cfg.max_retries = 0;
        failed += deliver(nt, m, 0, out) != 0;
    }
    return failed;
}

void slo_notifiers_destroy(slo_notifiers_t *ns)
{
    if (!ns) {
        return;
    }
    for (size_t i = 0; i < ns->n; i++) {
        notifier_t *nt = ns->v[i];
        if (nt->started) {
            pthread_mutex_lock(&nt->mu);
            nt->stopping = 1;
            nt->stop_deadline_ns = mt_now_ns() + 5000000000ull;
            pthread_cond_broadcast(&nt->cv);
            pthread_mutex_unlock(&nt->mu);
        }
    }
    for (size_t i = 0; i < ns->n; i++) {
        notifier_t *nt = ns->v[i];
        if (nt->started) {
            pthread_join(nt->thread, NULL);
            for (size_t k = 0; k < nt->qlen; k++) {
                free(nt->q[(nt->qhead + k) % NOTIFY_QUEUE_CAP]);
            }
            pthread_mutex_destroy(&nt->mu);
            pthread_cond_destroy(&nt->cv);
        }
        free(nt->cfg.url_from_file);
        free(nt->cfg.am_url);
        cfg_free_fields(notifier_fields, MT_ARRAY_LEN(notifier_fields), &nt->cfg);
        free(nt);
    }
    free(ns->v);
    free(ns);
}

/* ---- meltp slo test-notify -------------------------------------------------------------- */

int slo_notify_test_main(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) && i + 1 < argc) {
            config = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config = argv[i] + 9;
        } else {
            fprintf(stderr, "usage: meltp slo test-notify --config FILE\n");
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "usage: meltp slo test-notify --config FILE\n");
        return 2;
    }
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_file(config, &eb);
    if (!doc) {
        fprintf(stderr, "%s\n", eb.msg);
        return 1;
    }
    const cfg_node_t *slo = cfg_map_get(doc->root, "slo");
    const cfg_node_t *nodes = slo ? cfg_map_get(slo, "notifiers") : NULL;
    cfg_ctx_t c;
    cfg_ctx_init(&c, doc->file);
    slo_notifiers_t *ns = slo_notifiers_load(nodes, "slo.notifiers", &c);
    int rc;
    if (!ns) {
        cfg_ctx_print(&c, stderr);
        rc = 1;
    } else if (!ns->n) {
        fprintf(stderr, "%s: no slo.notifiers configured\n", config);
        rc = 1;
    } else {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        slo_alert_msg_t m;
        slo_notify_sample(&m);
        snprintf(m.tier, sizeof(m.tier), "test");
        snprintf(m.alert_name, sizeof(m.alert_name), "MeltpTestNotification");
        rc = slo_notifiers_send_sync(ns, &m, stdout) ? 1 : 0;
    }
    slo_notifiers_destroy(ns);
    cfg_ctx_fini(&c);
    cfg_doc_destroy(doc);
    return rc;
}
