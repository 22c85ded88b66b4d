/*
 * notify.h - SLO alert notifiers: Slack incoming webhooks (a coloured attachment holding Block
 * Kit blocks plus a `text` fallback), Microsoft Teams Workflows webhooks (Adaptive Card 1.4 in
 * the {"type":"message","attachments":[...]} envelope, < 20 KB) or legacy Office 365 connector
 * MessageCards, and generic webhooks with the Alertmanager v4 payload. Each notifier has its
 * own thread and a bounded queue, so the engine never blocks on the network; retries back off
 * exponentially and honour Retry-After. Webhook URLs are secrets: they are never logged.
 */
#ifndef SLO_NOTIFY_H
#define SLO_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "mt.h"

#define SLO_MSG_MAX_WINDOWS 4
#define SLO_MSG_MAX_TRACES  3
#define SLO_MSG_MAX_CHANGES 3
#define SLO_MSG_MAX_LABELS  24

/* One alert notice, self-contained (copied into queues). Strings are NUL-terminated and
 * silently truncated to their arrays. */
typedef struct {
    bool resolved; /* false: firing; true: resolved */
    char group_key[256];
    char alert_name[128];
    char slo_id[256];
    char service[128];
    char slo[128];
    char severity[32]; /* "page", "ticket", ... */
    char tier[64];     /* "page-quick" */
    double objective;  /* 0.999 */
    int nwin;
    struct {
        char name[16]; /* "5m" */
        double burn_rate;
    } win[SLO_MSG_MAX_WINDOWS];
    double threshold;           /* burn-rate factor of the tier */
    double budget_remaining;    /* ratio, may be negative */
    double tte_s;               /* -1 = not burning */
    double budget_spent;        /* resolved: budget consumed during the incident (ratio) */
    int64_t starts_ms, ends_ms; /* ends_ms 0 while firing */
    char runbook_url[512];
    char dashboard_url[512];
    char generator_url[512];
    int ntraces;
    char traces[SLO_MSG_MAX_TRACES][33];
    int nchanges;
    struct {
        char name[64];    /* "deployment", "chaos.experiment" */
        char detail[192]; /* service.version, body text, ... */
        int64_t t_ms;
    } changes[SLO_MSG_MAX_CHANGES];
    int nlabels;
    char lk[SLO_MSG_MAX_LABELS][64];
    char lv[SLO_MSG_MAX_LABELS][128];
} slo_alert_msg_t;

typedef enum {
    SLO_NT_SLACK = 0,
    SLO_NT_TEAMS,
    SLO_NT_WEBHOOK,
    SLO_NT_ALERTMANAGER /* posts alerts to <url>/api/v2/alerts; the engine re-posts them */
} slo_notifier_type_t;
enum { SLO_TEAMS_AUTO = 0, SLO_TEAMS_ADAPTIVE, SLO_TEAMS_MESSAGECARD };

typedef struct slo_notifiers slo_notifiers_t;

/* Parses the `notifiers:` list (node may be NULL: no notifiers). Errors go to c as
 * "FILE:LINE: slo.notifiers[i].key: reason"; URLs are never echoed. Returns the set (possibly
 * empty) or NULL on errors. */
slo_notifiers_t *slo_notifiers_load(const cfg_node_t *node, const char *path, cfg_ctx_t *c);
/* Starts one sender thread per notifier. MT_OK or an error in eb. */
int slo_notifiers_start(slo_notifiers_t *n, mt_errbuf_t *eb);
/* Queues a copy of m for every notifier (never blocks; a full queue drops and counts). */
void slo_notifiers_send(slo_notifiers_t *n, const slo_alert_msg_t *m);
size_t slo_notifiers_count(const slo_notifiers_t *n);
/* Index of the notifier named `name` (its `name:` key), or -1. */
int slo_notifiers_find(const slo_notifiers_t *n, const char *name);
/* Name of notifier i in logs and metrics ("<type>/<index>" without a name). */
const char *slo_notifiers_name(const slo_notifiers_t *n, size_t i);
slo_notifier_type_t slo_notifiers_type(const slo_notifiers_t *n, size_t i);
/* alertmanager notifiers: how often a firing alert is posted again (resend_interval). */
int64_t slo_notifiers_resend_ms(const slo_notifiers_t *n, size_t i);
/* Like slo_notifiers_send for notifier i only. */
void slo_notifiers_send_one(slo_notifiers_t *n, size_t i, const slo_alert_msg_t *m);
/* Stops the threads (queued messages get up to ~5 s) and frees. Accepts NULL. */
void slo_notifiers_destroy(slo_notifiers_t *n);
/* Sends m to every notifier now, synchronously, printing one line per notifier to `out`.
 * Returns the number of notifiers that failed. */
int slo_notifiers_send_sync(slo_notifiers_t *n, const slo_alert_msg_t *m, FILE *out);

/* Payload builders (malloc'd JSON, length in *len; NULL on out of memory). */
char *slo_notify_slack_json(const slo_alert_msg_t *m, size_t *len);
char *slo_notify_teams_json(const slo_alert_msg_t *m, size_t *len);       /* Adaptive Card */
char *slo_notify_messagecard_json(const slo_alert_msg_t *m, size_t *len); /* legacy O365 */
char *slo_notify_webhook_json(const slo_alert_msg_t *m, size_t *len);     /* Alertmanager v4 */
/* Alertmanager API v2 POST /api/v2/alerts body: [{labels, annotations, startsAt, endsAt,
 * generatorURL}], endsAt = m->ends_ms (a firing alert's expiry, a resolved alert's end). */
char *slo_notify_alertmanager_json(const slo_alert_msg_t *m, size_t *len);
/* 1 when a Teams URL is a legacy Office 365 connector (webhook.office.com, outlook.office.com) */
int slo_notify_teams_is_legacy(const char *url);

#define SLO_TEAMS_MAX_BYTES   20000
#define SLO_SLACK_MAX_BLOCKS  50
#define SLO_SLACK_MAX_SECTION 3000
#define SLO_SLACK_MAX_HEADER  150

/* RFC 3339 UTC with milliseconds ("2026-01-02T15:04:05.000Z"); ms <= 0 gives Go's zero time
 * "0001-01-01T00:00:00Z", which Alertmanager reads as "not set". */
void slo_notify_fmt_time(char *b, size_t n, int64_t ms);

/* Fills a realistic sample alert (test-notify, tests). */
void slo_notify_sample(slo_alert_msg_t *m);

/* `meltp slo test-notify --config FILE`. */
int slo_notify_test_main(int argc, char **argv);

#endif
