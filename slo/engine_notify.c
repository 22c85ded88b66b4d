/*
 * engine_notify.c - the SLO engine's notices: every evaluation, each tier's alert is routed
 * (slo.routes, computed once per instance since an alert's labels never change), checked
 * against silences and inhibit rules, and each (instance, route) group decides what is due:
 * the first notice after the route's group_wait, an escalation to a more severe tier at the
 * next evaluation (escalation_wait, default 0: a page is never held behind a ticket), a
 * de-escalation after group_interval, a repeat after repeat_interval, one resolved notice at
 * the end. alertmanager notifiers get every firing tier routed to them, re-posted every
 * resend_interval, and its end (they do their own grouping, silencing and inhibition).
 * Part of the slo/engine module.
 */
#include "engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages --------------------------------------------------------------------------- */

static void fill_msg(slo_engine_t *e, const def_t *d, const inst_rec_t *r, int tier,
                     int64_t first_fire_ms, double budget_at_fire, int resolved, int64_t now,
                     slo_alert_msg_t *m)
{
    const slo_spec_t *s = d->spec;
    const slo_tier_t *t = &s->tiers[tier];
    const slo_alert_t *al = &r->in.alerts[tier];
    const slo_result_t *res = &r->last;
    memset(m, 0, sizeof(*m));
    m->resolved = resolved;
    snprintf(m->group_key, sizeof(m->group_key), "{}:{sloth_id=\"%s\"}", r->id);
    snprintf(m->alert_name, sizeof(m->alert_name), "%s", t->alert_name ? t->alert_name : "");
    snprintf(m->slo_id, sizeof(m->slo_id), "%s", r->id);
    snprintf(m->service, sizeof(m->service), "%s", s->service ? s->service : "");
    snprintf(m->slo, sizeof(m->slo), "%s", s->name ? s->name : "");
    snprintf(m->severity, sizeof(m->severity), "%s", t->severity ? t->severity : "");
    snprintf(m->tier, sizeof(m->tier), "%s", t->name ? t->name : "");
    m->objective = s->objective;
    m->nwin = 2;
    slo_fmt_duration(t->short_ms, m->win[0].name, sizeof(m->win[0].name));
    m->win[0].burn_rate = al->short_br;
    slo_fmt_duration(t->long_ms, m->win[1].name, sizeof(m->win[1].name));
    m->win[1].burn_rate = al->long_br;
    m->threshold = t->factor;
    m->budget_remaining = res->budget_remaining;
    m->tte_s = res->tte_s;
    m->starts_ms = first_fire_ms;
    m->ends_ms = resolved ? now : 0;
    m->budget_spent = budget_at_fire - res->budget_remaining;
    if (m->budget_spent < 0) {
        m->budget_spent = 0;
    }
    snprintf(m->runbook_url, sizeof(m->runbook_url), "%s", s->runbook_url ? s->runbook_url : "");
    snprintf(m->dashboard_url, sizeof(m->dashboard_url), "%s",
             s->dashboard_url ? s->dashboard_url : "");
    if (e->cfg.external_url) {
        snprintf(m->generator_url, sizeof(m->generator_url), "%s/api/v1/slos", e->cfg.external_url);
    }
    m->ntraces = r->ntraces;
    for (int i = 0; i < r->ntraces; i++) {
        /* newest first */
        int k = (r->tpos - 1 - i + 2 * SLO_MSG_MAX_TRACES) % SLO_MSG_MAX_TRACES;
        memcpy(m->traces[i], r->traces[k], 33);
    }
    for (size_t i = 0; s->service && i < e->nchanges; i++) {
        const changes_t *c = &e->changes[i];
        if (strcmp(c->service, s->service) != 0) {
            continue;
        }
        for (int j = 0; j < c->n; j++) {
            int k = (c->pos - 1 - j + 2 * SLO_MSG_MAX_CHANGES) % SLO_MSG_MAX_CHANGES;
            memcpy(m->changes[j].name, c->ev[k].name, sizeof(m->changes[j].name));
            memcpy(m->changes[j].detail, c->ev[k].detail, sizeof(m->changes[j].detail));
            m->changes[j].t_ms = c->ev[k].t_ms;
        }
        m->nchanges = c->n;
    }
    for (size_t i = 0; i < t->labels.n && m->nlabels < SLO_MSG_MAX_LABELS; i++, m->nlabels++) {
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", t->labels.keys[i]);
        snprintf(m->lv[m->nlabels], sizeof(m->lv[0]), "%s", t->labels.vals[i]);
    }
    for (size_t i = 0; r->gvals && i < s->ngroup_by && m->nlabels < SLO_MSG_MAX_LABELS;
         i++, m->nlabels++) {
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", s->group_by[i]);
        snprintf(m->lv[m->nlabels], sizeof(m->lv[0]), "%s", r->gvals[i]);
    }
}

static slo_alert_msg_t *msgs_add(eng_msgs_t *ms, uint64_t to)
{
    if (!to) {
        return NULL;
    }
    if (ms->n == ms->cap) {
        size_t nc = ms->cap ? ms->cap * 2 : 4;
        eng_msg_t *v = realloc(ms->v, nc * sizeof(*v));
        if (!v) {
            mt_log(MT_LOG_ERROR, "slo: out of memory queueing an alert notice");
            return NULL;
        }
        ms->v = v;
        ms->cap = nc;
    }
    ms->v[ms->n].to = to;
    return &ms->v[ms->n++].m;
}

void eng_notify_send(slo_engine_t *e, eng_msgs_t *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        const slo_alert_msg_t *m = &ms->v[i].m;
        mt_log(MT_LOG_INFO, "slo %s: %s alert (%s)", m->slo_id, m->resolved ? "resolved" : "firing",
               m->tier);
        for (size_t k = 0; k < SLO_ROUTE_NOTIFIERS; k++) {
            if (ms->v[i].to & (1ull << k)) {
                slo_notifiers_send_one(e->notifiers, k, m);
            }
        }
    }
    free(ms->v);
    ms->v = NULL;
    ms->n = ms->cap = 0;
}

/* ---- labels and routes ------------------------------------------------------------------ */

/* The no-data alert's name: the burn alert's name with its "BurnRate"/"Burn" suffix replaced
 * by "NoData" (CheckoutAvailabilityBurnRate -> CheckoutAvailabilityNoData). */
static void nodata_name(const slo_spec_t *s, char *out, size_t n)
{
    char base[128];
    const char *an = s->ntiers && s->tiers[0].alert_name ? s->tiers[0].alert_name : s->id;
    snprintf(base, sizeof(base), "%s", an);
    size_t bl = strlen(base);
    if (bl > 8 && !strcmp(base + bl - 8, "BurnRate")) {
        base[bl - 8] = 0;
    } else if (bl > 4 && !strcmp(base + bl - 4, "Burn")) {
        base[bl - 4] = 0;
    }
    snprintf(out, n, "%.100sNoData", base);
}

void eng_alert_labels(const def_t *d, const inst_rec_t *r, int tier, slo_route_labels_t *l,
                      char *nd_name, size_t nd_len)
{
    const slo_spec_t *s = d->spec;
    l->n = 0;
    for (size_t i = 0; i < s->labels.n; i++) {
        slo_route_label_set(l, s->labels.keys[i], s->labels.vals[i]);
    }
    slo_route_label_set(l, "sloth_id", r->id);
    slo_route_label_set(l, "sloth_service", s->service ? s->service : "");
    slo_route_label_set(l, "sloth_slo", s->name ? s->name : "");
    if (tier >= 0) {
        const slo_tier_t *t = &s->tiers[tier];
        slo_route_label_set(l, "alertname", t->alert_name ? t->alert_name : "");
        slo_route_label_set(l, "sloth_severity", t->severity ? t->severity : "");
        slo_route_label_set(l, "severity", t->severity ? t->severity : "");
        slo_route_label_set(l, "burnrate_tier", t->name ? t->name : "");
        for (size_t i = 0; i < t->labels.n; i++) {
            slo_route_label_set(l, t->labels.keys[i], t->labels.vals[i]);
        }
    } else {
        nodata_name(s, nd_name, nd_len);
        slo_route_label_set(l, "alertname", nd_name);
        slo_route_label_set(l, "severity", "ticket");
        slo_route_label_set(l, "burnrate_tier", "no-data");
        for (size_t i = 0; s->ntiers && i < s->tiers[0].labels.n; i++) {
            if (strcmp(s->tiers[0].labels.keys[i], "sloth_severity") != 0) {
                slo_route_label_set(l, s->tiers[0].labels.keys[i], s->tiers[0].labels.vals[i]);
            }
        }
    }
    for (size_t i = 0; r->gvals && i < s->ngroup_by; i++) {
        slo_route_label_set(l, s->group_by[i], r->gvals[i]);
    }
}

/* Routes every tier of r once (its labels never change). */
static void route_rec(slo_engine_t *e, const def_t *d, inst_rec_t *r)
{
    slo_route_labels_t l;
    char nd[128];
    for (size_t t = 0; t < d->p.ntiers; t++) {
        eng_alert_labels(d, r, (int)t, &l, NULL, 0);
        r->tier_routes[t] = slo_route_match(e->routes, &l);
    }
    eng_alert_labels(d, r, -1, &l, nd, sizeof(nd));
    r->nodata_routes = slo_route_match(e->routes, &l);
    r->routed = 1;
}

/* Notifiers (bit mask) of a route set, alertmanager ones excluded or only. */
static uint64_t route_notifiers(const slo_engine_t *e, uint32_t routes, int am)
{
    uint64_t to = 0;
    for (size_t g = 0; g < e->routes->n; g++) {
        if (routes & (1u << g)) {
            to |= e->routes->routes[g].notifiers;
        }
    }
    return am ? to & e->am_notifiers : to & ~e->am_notifiers;
}

/* ---- silences and inhibition ------------------------------------------------------------ */

typedef struct {
    const def_t *d;
    const inst_rec_t *r;
    int tier;
} src_t;

typedef struct {
    src_t *v;
    size_t n, cap;
} srcs_t;

/* Firing alerts that may inhibit others (match some rule's source_matchers). */
static void collect_sources(slo_engine_t *e, srcs_t *ss)
{
    slo_route_labels_t l;
    for (size_t i = 0; i < e->ndefs; i++) {
        const def_t *d = &e->defs[i];
        for (size_t k = 0; k < d->n; k++) {
            const inst_rec_t *r = d->insts[k];
            for (size_t t = 0; r->best >= 0 && t < d->p.ntiers; t++) {
                if (r->in.alerts[t].state != SLO_AL_FIRING) {
                    continue;
                }
                eng_alert_labels(d, r, (int)t, &l, NULL, 0);
                if (!slo_route_is_source(e->routes, &l)) {
                    continue;
                }
                if (ss->n == ss->cap) {
                    size_t nc = ss->cap ? ss->cap * 2 : 16;
                    src_t *v = realloc(ss->v, nc * sizeof(*v));
                    if (!v) {
                        return; /* fewer inhibitions: more notices, never fewer */
                    }
                    ss->v = v;
                    ss->cap = nc;
                }
                ss->v[ss->n++] = (src_t){d, r, (int)t};
            }
        }
    }
}

/* Bit t set: firing tier t of r is silenced or inhibited now. */
static uint32_t muted_tiers(slo_engine_t *e, const def_t *d, const inst_rec_t *r, int silences,
                            const srcs_t *ss, int64_t now)
{
    uint32_t muted = 0;
    slo_route_labels_t l, sl;
    for (size_t t = 0; t < d->p.ntiers; t++) {
        if (r->in.alerts[t].state != SLO_AL_FIRING) {
            continue;
        }
        eng_alert_labels(d, r, (int)t, &l, NULL, 0);
        if (silences && slo_silence_match(e->silences, &l, now, NULL, 0)) {
            muted |= 1u << t;
            continue;
        }
        for (size_t i = 0; i < ss->n; i++) {
            if (ss->v[i].r == r && ss->v[i].tier == (int)t) {
                continue; /* an alert never inhibits itself */
            }
            eng_alert_labels(ss->v[i].d, ss->v[i].r, ss->v[i].tier, &sl, NULL, 0);
            if (slo_route_inhibits(e->routes, &sl, &l)) {
                muted |= 1u << t;
                break;
            }
        }
    }
    return muted;
}

size_t eng_silenced_by(slo_engine_t *e, const def_t *d, const inst_rec_t *r, int64_t now,
                       char (*ids)[SLO_SILENCE_ID_LEN], size_t max)
{
    size_t n = 0;
    slo_route_labels_t l;
    char tmp[SLO_ROUTE_MAX_LABELS][SLO_SILENCE_ID_LEN];
    if (!e->silences || !slo_silence_active(e->silences, now)) {
        return 0;
    }
    for (size_t t = 0; t < d->p.ntiers; t++) {
        if (r->in.alerts[t].state != SLO_AL_FIRING) {
            continue;
        }
        eng_alert_labels(d, r, (int)t, &l, NULL, 0);
        size_t k = slo_silence_match(e->silences, &l, now, tmp, SLO_ROUTE_MAX_LABELS);
        for (size_t j = 0; j < k && j < SLO_ROUTE_MAX_LABELS; j++) {
            int seen = 0;
            for (size_t x = 0; x < n && x < max && !seen; x++) {
                seen = !strcmp(ids[x], tmp[j]);
            }
            if (!seen) {
                if (n < max) {
                    memcpy(ids[n], tmp[j], SLO_SILENCE_ID_LEN);
                }
                n++;
            }
        }
    }
    return n;
}

/* ---- timing ----------------------------------------------------------------------------- */

/* One SLO instance on one route (Alertmanager's aggregation group): the most severe firing
 * tier routed here that is neither silenced nor inhibited is notified. First notice after
 * group_wait (an alert resolving before that is never sent); a more severe tier after
 * escalation_wait (0: at once); a tier that stops being muted while firing at once; a less
 * severe one after group_interval; the same one every repeat_interval; one resolved notice
 * (the last notified tier, with the budget spent and the duration) when none fires. */
static void route_step(slo_engine_t *e, const def_t *d, inst_rec_t *r, size_t g, uint32_t muted,
                       int64_t now, eng_msgs_t *ms)
{
    const slo_route_t *rt = &e->routes->routes[g];
    route_state_t *st = &r->rs[g];
    uint64_t to = rt->notifiers & ~e->am_notifiers;
    int best = -1, any = 0;
    for (size_t t = 0; t < d->p.ntiers; t++) {
        if (!(r->tier_routes[t] & (1u << g)) || r->in.alerts[t].state != SLO_AL_FIRING) {
            continue;
        }
        any = 1;
        if (!(muted & (1u << t)) && (best < 0 || d->p.tiers[t].rank < d->p.tiers[best].rank)) {
            best = (int)t;
        }
    }
    slo_alert_msg_t *m;
    if (best >= 0) {
        if (!st->first_fire_ms) {
            st->first_fire_ms =
                r->in.alerts[best].fired_at_ms ? r->in.alerts[best].fired_at_ms : now;
            st->budget_at_fire = r->in.alerts[best].budget_at_fire;
        }
        int send, nt = st->notified_tier;
        if (nt < 0) {
            send = now - st->first_fire_ms >= rt->group_wait_ms;
        } else if (d->p.tiers[best].rank < d->p.tiers[nt].rank) {
            send = now - st->last_sent_ms >= e->cfg.escalation_wait_ms;
        } else if (st->muted) {
            send = 1; /* the silence ended or the inhibiting alert resolved: still firing */
        } else if (d->p.tiers[best].rank > d->p.tiers[nt].rank) {
            send = now - st->last_sent_ms >= rt->group_interval_ms;
        } else {
            send = now - st->last_sent_ms >= rt->repeat_interval_ms;
        }
        st->muted = 0;
        if (send && (m = msgs_add(ms, to))) {
            fill_msg(e, d, r, best, st->first_fire_ms, st->budget_at_fire, 0, now, m);
            st->notified_tier = best;
            st->last_sent_ms = now;
        }
        return;
    }
    if (any) {
        st->muted = 1; /* firing but muted: nothing now, a resolved notice when it ends */
        return;
    }
    if (st->notified_tier >= 0 && (m = msgs_add(ms, to))) {
        fill_msg(e, d, r, st->notified_tier, st->first_fire_ms, st->budget_at_fire, 1, now, m);
    }
    st->notified_tier = -1;
    st->first_fire_ms = 0;
    st->muted = 0;
}

/* alertmanager notifiers, as Prometheus feeds them: every firing tier routed to one is posted
 * with endsAt = now + 4 x max(resend_interval, evaluation_interval) (Alertmanager resolves it
 * by itself if meltp goes away), again every resend_interval, and once with endsAt = now when
 * it stops firing. */
static void am_step(slo_engine_t *e, const def_t *d, inst_rec_t *r, int64_t now, eng_msgs_t *ms)
{
    for (size_t t = 0; t < d->p.ntiers; t++) {
        uint64_t to = route_notifiers(e, r->tier_routes[t], 1);
        if (!to) {
            continue;
        }
        int64_t resend = 0;
        for (size_t k = 0; k < SLO_ROUTE_NOTIFIERS; k++) {
            int64_t v = (to & (1ull << k)) ? slo_notifiers_resend_ms(e->notifiers, k) : 0;
            if (v > 0 && (!resend || v < resend)) {
                resend = v;
            }
        }
        const slo_alert_t *al = &r->in.alerts[t];
        slo_alert_msg_t *m;
        if (al->state == SLO_AL_FIRING) {
            if (r->am_sent_ms[t] && now - r->am_sent_ms[t] < resend) {
                continue;
            }
            if (!r->am_sent_ms[t]) {
                r->am_start_ms[t] = al->fired_at_ms ? al->fired_at_ms : now;
            }
            if ((m = msgs_add(ms, to))) {
                fill_msg(e, d, r, (int)t, r->am_start_ms[t], al->budget_at_fire, 0, now, m);
                int64_t valid = resend > e->cfg.interval_ms ? resend : e->cfg.interval_ms;
                m->ends_ms = now + 4 * valid;
                r->am_sent_ms[t] = now;
            }
        } else if (r->am_sent_ms[t]) {
            if ((m = msgs_add(ms, to))) {
                fill_msg(e, d, r, (int)t, r->am_start_ms[t], al->budget_at_fire, 1, now, m);
            }
            r->am_sent_ms[t] = 0;
        }
    }
}

/* The no-data alert of `no_data: alert` SLOs (eval.c: no event for the shortest long window):
 * severity ticket, tier "no-data", its own group key, routed by its labels (alertname
 * <name>NoData, severity="ticket", burnrate_tier="no-data"); notified at once (a data gap is
 * already an hour old), repeated every repeat_interval, resolved when data returns. */
static void nodata_notify(slo_engine_t *e, const def_t *d, inst_rec_t *r, int silences, int64_t now,
                          eng_msgs_t *ms)
{
    const slo_spec_t *s = d->spec;
    const slo_alert_t *al = &r->in.nodata_alert;
    bool resolved;
    if (al->state == SLO_AL_FIRING) {
        if (r->nodata_sent_ms && now - r->nodata_sent_ms < e->cfg.repeat_interval_ms) {
            return;
        }
        resolved = false;
    } else if (r->nodata_sent_ms) {
        resolved = true;
    } else {
        return;
    }
    char nd[128];
    slo_route_labels_t l;
    eng_alert_labels(d, r, -1, &l, nd, sizeof(nd));
    if (!resolved && silences && slo_silence_match(e->silences, &l, now, NULL, 0)) {
        return; /* silenced: not sent, and no resolved notice for it either */
    }
    slo_alert_msg_t *m = msgs_add(ms, route_notifiers(e, r->nodata_routes, 0));
    if (!m) {
        r->nodata_sent_ms = resolved ? 0 : now;
        return;
    }
    memset(m, 0, sizeof(*m));
    m->resolved = resolved;
    snprintf(m->alert_name, sizeof(m->alert_name), "%s", nd);
    snprintf(m->group_key, sizeof(m->group_key), "{}:{alertname=\"%.100s\",sloth_id=\"%.120s\"}",
             m->alert_name, r->id);
    snprintf(m->slo_id, sizeof(m->slo_id), "%s", r->id);
    snprintf(m->service, sizeof(m->service), "%s", s->service ? s->service : "");
    snprintf(m->slo, sizeof(m->slo), "%s", s->name ? s->name : "");
    snprintf(m->severity, sizeof(m->severity), "ticket");
    snprintf(m->tier, sizeof(m->tier), "no-data");
    m->objective = s->objective;
    m->budget_remaining = r->last.budget_remaining;
    m->tte_s = -1;
    m->starts_ms = al->fired_at_ms ? al->fired_at_ms : now;
    m->ends_ms = resolved ? now : 0;
    snprintf(m->runbook_url, sizeof(m->runbook_url), "%s", s->runbook_url ? s->runbook_url : "");
    snprintf(m->dashboard_url, sizeof(m->dashboard_url), "%s",
             s->dashboard_url ? s->dashboard_url : "");
    if (e->cfg.external_url) {
        snprintf(m->generator_url, sizeof(m->generator_url), "%s/api/v1/slos", e->cfg.external_url);
    }
    /* the alert-wide labels of the first tier (not its severity), then the group labels */
    for (size_t i = 0; s->ntiers && i < s->tiers[0].labels.n && m->nlabels < SLO_MSG_MAX_LABELS;
         i++) {
        if (!strcmp(s->tiers[0].labels.keys[i], "sloth_severity")) {
            continue;
        }
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", s->tiers[0].labels.keys[i]);
        snprintf(m->lv[m->nlabels++], sizeof(m->lv[0]), "%s", s->tiers[0].labels.vals[i]);
    }
    for (size_t i = 0; r->gvals && i < s->ngroup_by && m->nlabels < SLO_MSG_MAX_LABELS;
         i++, m->nlabels++) {
        snprintf(m->lk[m->nlabels], sizeof(m->lk[0]), "%s", s->group_by[i]);
        snprintf(m->lv[m->nlabels], sizeof(m->lv[0]), "%s", r->gvals[i]);
    }
    r->nodata_sent_ms = resolved ? 0 : now;
}

void eng_notify_collect(slo_engine_t *e, int64_t now, eng_msgs_t *ms)
{
    srcs_t ss = {0};
    if (e->routes->ninh) {
        collect_sources(e, &ss);
    }
    int silences = e->silences && slo_silence_active(e->silences, now) > 0;
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        for (size_t k = 0; k < d->n; k++) {
            inst_rec_t *r = d->insts[k];
            if (!r->routed) {
                route_rec(e, d, r);
            }
            uint32_t muted = r->best >= 0 ? muted_tiers(e, d, r, silences, &ss, now) : 0;
            uint32_t routes = 0;
            for (size_t t = 0; t < d->p.ntiers; t++) {
                routes |= r->tier_routes[t];
            }
            for (size_t g = 0; g < e->routes->n; g++) {
                if (routes & (1u << g)) {
                    route_step(e, d, r, g, muted, now, ms);
                }
            }
            if (e->am_notifiers) {
                am_step(e, d, r, now, ms);
            }
            if (d->p.nodata == SLO_ND_ALERT) {
                nodata_notify(e, d, r, silences, now, ms);
            }
        }
    }
    free(ss.v);
}
