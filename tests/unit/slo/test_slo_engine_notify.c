/*
 * test_slo_engine_notify.c - the engine's notice decisions (slo/engine_notify.c) on a
 * simulated clock: an engine is loaded from YAML with routes, an inhibit rule, three webhook
 * notifiers and an alertmanager one (never started: the test reads the notices the engine
 * decides, eng_notify_collect, instead of sending them), tier alert states are set by hand,
 * and each step checks which notifiers get which notice. Uses the engine's private header, as
 * the decisions are not visible through slo.h without a network and a wall clock.
 */
#include "unit.h"
#include "engine_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALL     (1ull << 0)
#define PAGER   (1ull << 1)
#define TICKETS (1ull << 2)
#define AM      (1ull << 3)

static const char spec[] = "service: api\n"
                           "slos:\n"
                           "  - name: availability\n"
                           "    objective: 99.9\n"
                           "    period: 30d\n"
                           "    sli: {spans: {type: errors}}\n"
                           "    alerting:\n"
                           "      name: ApiBurn\n"
                           "      tiers:\n"
                           "        - {name: page-quick, severity: page, long: 1h, short: 5m, "
                           "factor: 14.4}\n"
                           "        - {name: ticket-slow, severity: ticket, long: 3d, short: 6h, "
                           "factor: 1}\n";

static const char config[] =
    "slo:\n"
    "  specs: [spec.yaml]\n"
    "  evaluation_interval: 10s\n"
    "  state_dir: %s/state\n"
    "  notifiers:\n"
    "    - {name: all, type: webhook, url: http://127.0.0.1:9/a}\n"
    "    - {name: pager, type: webhook, url: http://127.0.0.1:9/p}\n"
    "    - {name: tickets, type: webhook, url: http://127.0.0.1:9/t}\n"
    "    - {name: am, type: alertmanager, url: http://127.0.0.1:9/}\n"
    "  routes:\n"
    "    - {matchers: [], notifiers: [all], continue: true, group_interval: 5m}\n"
    "    - {matchers: ['severity=\"page\"'], notifiers: [pager, am], group_wait: 0s}\n"
    "    - {matchers: ['severity=\"ticket\"'], notifiers: [tickets], group_wait: 0s,\n"
    "       repeat_interval: 20s}\n"
    "  inhibit: [{source_matchers: ['severity=\"page\"'], target_matchers: "
    "['severity=\"ticket\"'], equal: [sloth_id]}]\n";

enum { PAGE = 0, TICKET = 1 };
static const int64_t T = 1800000000000LL;

/* Sets tier t firing (since `since`) or inactive, and r->best as the evaluation would. */
static void set(inst_rec_t *r, int t, int firing, int64_t since)
{
    r->in.alerts[t].state = firing ? SLO_AL_FIRING : SLO_AL_INACTIVE;
    r->in.alerts[t].fired_at_ms = firing ? since : 0;
    r->best = r->in.alerts[PAGE].state == SLO_AL_FIRING     ? PAGE
              : r->in.alerts[TICKET].state == SLO_AL_FIRING ? TICKET
                                                            : -1;
}

/* The notices decided at T + s seconds, as "to:tier:state" words, e.g. "t:ticket-slow:firing". */
static void step(slo_engine_t *e, int s, char *out, size_t n)
{
    eng_msgs_t ms = {0};
    eng_notify_collect(e, T + s * 1000LL, &ms);
    size_t k = 0;
    out[0] = 0;
    static const char names[] = "aptm";
    for (size_t i = 0; i < ms.n && k < n; i++) {
        for (int b = 0; b < 4 && k < n; b++) {
            if (ms.v[i].to & (1ull << b)) {
                k += (size_t)snprintf(out + k, n - k, "%s%c:%s:%s", k ? " " : "", names[b],
                                      ms.v[i].m.tier, ms.v[i].m.resolved ? "resolved" : "firing");
            }
        }
    }
    free(ms.v);
}

static int silence(slo_engine_t *e, const char *method, const char *path, const char *body, int s,
                   char *id)
{
    char *out = NULL;
    size_t len = 0;
    const char *ct;
    int st = slo_silence_http(e->silences, method, path, body, body ? strlen(body) : 0,
                              T + s * 1000LL, &out, &len, &ct);
    if (id && out && strstr(out, "silenceID")) {
        snprintf(id, SLO_SILENCE_ID_LEN, "%.36s", strstr(out, "silenceID") + 12);
    }
    free(out);
    return st;
}

UNIT_TEST(engine_notice_routes_escalation_inhibition_silences)
{
    char dir[] = "/tmp/meltp-unit-notify-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[128], text[2048];
    snprintf(path, sizeof(path), "%s/spec.yaml", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(spec, f);
    fclose(f);
    snprintf(text, sizeof(text), config, dir);
    char cfgpath[128];
    snprintf(cfgpath, sizeof(cfgpath), "%s/meltp.yaml", dir);
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_string(cfgpath, text, strlen(text), &eb);
    REQUIRE(doc);
    cfg_ctx_t c;
    cfg_ctx_init(&c, cfgpath);
    slo_engine_t *e = slo_engine_load(cfg_map_get(doc->root, "slo"), cfgpath, &c);
    cfg_ctx_print(&c, stderr);
    REQUIRE(e);
    e->silences = slo_silence_create(NULL);
    REQUIRE(e->silences && e->ndefs == 1 && e->defs[0].n == 1);
    CHECK(e->am_notifiers == AM);
    inst_rec_t *r = e->defs[0].insts[0];
    char got[1024];

    /* 0 s: the ticket fires: its route (group_wait 0s) at once; the catch-all waits 30s */
    set(r, TICKET, 1, T);
    step(e, 0, got, sizeof(got));
    CHECK_STR(got, "t:ticket-slow:firing");
    step(e, 10, got, sizeof(got));
    CHECK_STR(got, "");
    /* 30 s: the catch-all's first notice; the ticket route repeats (repeat_interval 20s) */
    step(e, 30, got, sizeof(got));
    CHECK_STR(got, "a:ticket-slow:firing t:ticket-slow:firing");
    /* 40 s: the page fires: to the pager and Alertmanager, and on the catch-all at once,
     * not held by its group_interval (5m) behind the ticket; the ticket is inhibited */
    set(r, PAGE, 1, T + 40000);
    eng_msgs_t ms = {0};
    eng_notify_collect(e, T + 40000, &ms);
    REQUIRE(ms.n == 3);
    CHECK(ms.v[0].to == ALL && !strcmp(ms.v[0].m.tier, "page-quick"));
    CHECK(ms.v[1].to == PAGER && !strcmp(ms.v[1].m.tier, "page-quick"));
    CHECK(ms.v[2].to == AM && !strcmp(ms.v[2].m.tier, "page-quick"));
    /* Alertmanager: endsAt 4 x max(resend_interval 1m, evaluation_interval) ahead */
    CHECK(ms.v[2].m.ends_ms == T + 40000 + 4 * 60000);
    CHECK(ms.v[2].m.starts_ms == T + 40000);
    free(ms.v);
    /* inhibited: no ticket repeat while the page fires; Alertmanager re-posts after 1m */
    step(e, 60, got, sizeof(got));
    CHECK_STR(got, "");
    step(e, 80, got, sizeof(got));
    CHECK_STR(got, "");
    step(e, 100, got, sizeof(got));
    CHECK_STR(got, "m:page-quick:firing");
    /* 110 s: the page resolves: resolved to the pager and Alertmanager, the still-firing
     * ticket again at once; the catch-all de-escalates only after group_interval */
    set(r, PAGE, 0, 0);
    step(e, 110, got, sizeof(got));
    CHECK_STR(got, "p:page-quick:resolved t:ticket-slow:firing m:page-quick:resolved");
    step(e, 120, got, sizeof(got));
    CHECK_STR(got, "");
    step(e, 340, got, sizeof(got)); /* 40 s + 5m: the catch-all's de-escalation; a repeat */
    CHECK_STR(got, "a:ticket-slow:firing t:ticket-slow:firing");
    /* a silence on the ticket: nothing, and silenced_by names it */
    char id[SLO_SILENCE_ID_LEN] = "";
    CHECK(silence(e, "POST", "/api/v1/silences",
                  "{\"matchers\":[{\"name\":\"severity\",\"value\":\"ticket\",\"isRegex\":false}],"
                  "\"endsAt\":\"2027-01-15T09:00:00Z\",\"createdBy\":\"t\",\"comment\":\"drill\"}",
                  345, id) == 200);
    step(e, 400, got, sizeof(got));
    CHECK_STR(got, "");
    char ids[2][SLO_SILENCE_ID_LEN];
    CHECK(eng_silenced_by(e, &e->defs[0], r, T + 400000, ids, 2) == 1);
    CHECK_STR(ids[0], id);
    /* expired: both groups send the still-firing ticket at once */
    char p[96];
    snprintf(p, sizeof(p), "/api/v1/silences/%s", id);
    CHECK(silence(e, "DELETE", p, NULL, 410, NULL) == 200);
    step(e, 420, got, sizeof(got));
    CHECK_STR(got, "a:ticket-slow:firing t:ticket-slow:firing");
    CHECK(eng_silenced_by(e, &e->defs[0], r, T + 420000, ids, 2) == 0);
    /* the end: one resolved notice per group that was notified */
    set(r, TICKET, 0, 0);
    step(e, 430, got, sizeof(got));
    CHECK_STR(got, "a:ticket-slow:resolved t:ticket-slow:resolved");
    step(e, 440, got, sizeof(got));
    CHECK_STR(got, "");

    /* a ticket that resolves before its group_wait is never sent (catch-all: 30s) */
    set(r, TICKET, 1, T + 500000);
    step(e, 500, got, sizeof(got));
    CHECK_STR(got, "t:ticket-slow:firing");
    set(r, TICKET, 0, 0);
    step(e, 510, got, sizeof(got));
    CHECK_STR(got, "t:ticket-slow:resolved");

    slo_engine_stop_destroy(e);
    cfg_ctx_fini(&c);
    cfg_doc_destroy(doc);
    unlink(path);
    rmdir(dir); /* state/ was never created: the engine did not start */
}
